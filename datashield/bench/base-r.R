# Base R's time for the same computations on the same data, the peer of client.py's figures.
# Usage: Rscript base-r.R CSV REPEAT; prints JSON.
args <- commandArgs(trailingOnly = TRUE)
repeat_n <- as.integer(args[2])
d <- read.csv(args[1], na.strings = c("", "NA"))
d$sex <- factor(d$sex, levels = c("F", "M"))
d$site <- factor(d$site, levels = c("north", "south", "east"))
timed <- function(f) {
  times <- vapply(seq_len(repeat_n), function(i) { t <- proc.time()[["elapsed"]]; f(); proc.time()[["elapsed"]] - t }, 0)
  c(median(times), min(times), max(times))
}
out <- list(
  meanDS = timed(function() mean(d$bmi, na.rm = TRUE)),
  table2DDS = timed(function() table(d$sex, d$site)),
  quantileMeanDS = timed(function() c(quantile(d$bmi, c(0.05, 0.1, 0.25, 0.5, 0.75, 0.9, 0.95), na.rm = TRUE), mean(d$bmi, na.rm = TRUE))),
  glm_gaussian = timed(function() glm(bmi ~ age + sex + site + smoker, family = gaussian(), data = d)),
  glm_binomial = timed(function() glm(diabetes ~ age + sex + site + smoker, family = binomial(), data = d)),
  table_bytes = as.numeric(object.size(d))
)
cat(jsonlite::toJSON(out, digits = NA, auto_unbox = TRUE))
