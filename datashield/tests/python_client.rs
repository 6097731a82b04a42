//! The published Python clients (`datashield`, `datashield-opal`, `datashield-base` from PyPI,
//! pinned in tests/clients/requirements.txt) run a whole analysis against the server over real
//! HTTP, and base R computes every statistic again from the same file: they must agree.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;

use serde_json::Value;
use trellis_datashield::catalogue::Catalogue;
use trellis_datashield::http::{AppState, Authenticator, Tokens, router};
use trellis_datashield::profile::Profile;
use trellis_datashield::session::{Limits, Service};

const TOKEN: &str = "analyst-token";

/// A small deterministic generator, so the same cohort is written every run.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> f64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// Writes `cohort/people.csv` (400 rows) and its data dictionary under `dir`.
fn write_cohort(dir: &Path) -> PathBuf {
    let mut rng = Rng(0x5eed_1234_abcd_0001);
    let mut csv = String::from("age,bmi,sex,site,diabetes,visits,smoker\n");
    for _ in 0..400 {
        let age = 18 + (rng.next() * 72.0) as i32;
        let male = rng.next() < 0.5;
        let site = ["north", "south", "east"][(rng.next() * 3.0) as usize % 3];
        let bmi = if rng.next() < 0.05 {
            "NA".to_owned()
        } else {
            format!(
                "{:.1}",
                18.0 + 0.12 * f64::from(age)
                    + 6.0 * rng.next()
                    + if site == "east" { 1.5 } else { 0.0 }
            )
        };
        let logit = -4.0 + 0.05 * f64::from(age) + if male { 0.6 } else { 0.0 };
        let diabetes = u8::from(rng.next() < 1.0 / (1.0 + (-logit).exp()));
        // A Poisson count by inversion, mean exp(0.3 + 0.015 age).
        let lambda = (0.3 + 0.015 * f64::from(age)).exp();
        let (mut visits, mut p, u) = (0, (-lambda).exp(), rng.next());
        let mut cumulative = p;
        while u > cumulative && visits < 30 {
            visits += 1;
            p *= lambda / f64::from(visits);
            cumulative += p;
        }
        let smoker = if rng.next() < 0.3 { "TRUE" } else { "FALSE" };
        csv.push_str(&format!(
            "{age},{bmi},{},{site},{diabetes},{visits},{smoker}\n",
            if male { "M" } else { "F" }
        ));
    }
    let project = dir.join("cohort");
    std::fs::create_dir_all(&project).unwrap();
    let path = project.join("people.csv");
    std::fs::write(&path, csv).unwrap();
    std::fs::write(
        project.join("people.dictionary.yaml"),
        "columns:\n- {name: sex, type: categorical, levels: [F, M]}\n- {name: site, type: categorical, levels: [north, south, east]}\n- {name: bmi, type: numeric}\n",
    )
    .unwrap();
    path
}

/// Starts the server on a loopback port; returns its base URL.
async fn serve(data: &Path) -> String {
    let catalogue = Catalogue::load(data).expect("the cohort loads");
    let service = Arc::new(Service::new(
        catalogue,
        vec![Profile::default_named("default")],
        Limits::default(),
        20261129,
    ));
    let tokens = Tokens::default().with_user("analyst", TOKEN);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    tokio::spawn(async move {
        axum::serve(
            listener,
            router(AppState {
                service,
                auth: Arc::new(Authenticator::from(tokens)),
            }),
        )
        .await
        .unwrap()
    });
    format!("http://{address}")
}

fn client_python() -> String {
    let setup = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/clients/setup.sh");
    let output = Command::new(&setup)
        .output()
        .expect("run tests/clients/setup.sh");
    assert!(
        output.status.success(),
        "installing the DataSHIELD clients from PyPI failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).unwrap().trim().to_owned()
}

fn ok<'a>(results: &'a Value, step: &str) -> &'a Value {
    let result = &results[step];
    assert!(result.get("ok").is_some(), "step {step} failed: {result}");
    &result["ok"]["trellis"]
}

fn error<'a>(results: &'a Value, step: &str) -> &'a Value {
    let result = &results[step];
    assert!(
        result.get("error").is_some(),
        "step {step} should have failed, got {result}"
    );
    result
}

fn close(ours: f64, r: f64, tolerance: f64, what: &str) {
    let scale = r.abs().max(1e-300);
    assert!(
        ((ours - r) / scale).abs() <= tolerance,
        "{what}: ours {ours}, R {r}"
    );
}

fn numbers(value: &Value) -> Vec<f64> {
    match value {
        Value::Array(items) => items.iter().flat_map(numbers).collect(),
        Value::Number(n) => vec![n.as_f64().unwrap()],
        other => panic!("expected numbers, got {other}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_whole_analysis_through_the_published_python_clients_agrees_with_base_r() {
    let python = client_python();
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("datashield-python-client");
    let _ = std::fs::remove_dir_all(&dir);
    let csv = write_cohort(&dir.join("data"));
    let url = serve(&dir.join("data")).await;
    let work = dir.join("work");
    std::fs::create_dir_all(&work).unwrap();
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/clients/analysis.py");
    let output = tokio::process::Command::new(&python)
        .arg(&script)
        .args([&url, TOKEN, "cohort.people", work.to_str().unwrap()])
        .env("MPLBACKEND", "Agg")
        .output()
        .await
        .unwrap();
    assert!(
        output.status.success(),
        "the analysis failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let results: Value = serde_json::from_slice(&output.stdout).expect("the analysis prints JSON");
    // Kept for whoever reads a failure.
    std::fs::write(
        dir.join("results.json"),
        serde_json::to_string_pretty(&results).unwrap(),
    )
    .unwrap();

    let expected: Value = serde_json::from_str(&common::rscript(&format!(
        r#"
        d <- read.csv("{csv}", na.strings = c("", "NA"))
        d$sex <- factor(d$sex, levels = c("F", "M"))
        d$site <- factor(d$site, levels = c("north", "south", "east"))
        fit <- function(f, family) {{
          m <- glm(f, family = family, data = d)
          s <- coef(summary(m))
          list(names = rownames(s), estimates = unname(s[, 1]), se = unname(s[, 2]), deviance = deviance(m))
        }}
        xt <- table(d$sex, d$site)
        ok <- complete.cases(d$age, d$bmi)
        out <- list(
          mean = mean(d$bmi, na.rm = TRUE), nvalid = sum(!is.na(d$bmi)), nmissing = sum(is.na(d$bmi)), ntotal = nrow(d),
          sum = sum(d$bmi, na.rm = TRUE), sum_squares = sum(d$bmi^2, na.rm = TRUE),
          quantile_means = unname(c(quantile(d$bmi, c(0.05, 0.1, 0.25, 0.5, 0.75, 0.9, 0.95), na.rm = TRUE), mean(d$bmi, na.rm = TRUE))),
          site_counts = as.vector(table(d$site)), sex_site = as.vector(t(xt)), sex_totals = as.vector(rowSums(xt)),
          cor = cor(d$age[ok], d$bmi[ok]),
          gaussian = fit(bmi ~ age + site, gaussian()), binomial = fit(diabetes ~ age + sex, binomial()),
          poisson = fit(visits ~ age, poisson()),
          older_rows = sum(d$age >= 50), age_mean2 = mean(d$age * 2)
        )
        cat(jsonlite::toJSON(out, digits = NA, auto_unbox = TRUE))
        "#,
        csv = csv.display()
    )))
    .expect("R prints JSON");

    // The catalogue, the profile and the methods, as the client lists them.
    assert_eq!(
        results["profiles"]["ok"]["trellis"],
        serde_json::json!({"available": ["default"], "current": "default"})
    );
    assert_eq!(
        ok(&results, "tables"),
        &serde_json::json!(["cohort.people"])
    );
    let methods: Vec<String> =
        serde_json::from_value(results["aggregate_methods"]["ok"].clone()).unwrap();
    assert!(
        methods.iter().any(|m| m == "meanDS") && methods.iter().any(|m| m == "glmDS2"),
        "{methods:?}"
    );
    assert_eq!(ok(&results, "ls"), &serde_json::json!(["D"]));

    // Metadata.
    assert_eq!(ok(&results, "classes"), &serde_json::json!(["integer"]));
    assert_eq!(
        ok(&results, "class_frame"),
        &serde_json::json!(["data.frame"])
    );
    assert_eq!(ok(&results, "length"), &serde_json::json!(400));
    assert_eq!(ok(&results, "dimensions"), &serde_json::json!([400, 7]));
    assert_eq!(
        ok(&results, "levels")["Levels"],
        serde_json::json!(["north", "south", "east"])
    );
    assert_eq!(ok(&results, "is_valid"), &serde_json::json!(true));
    assert_eq!(ok(&results, "num_na"), &expected["nmissing"]);

    // Descriptives, against R.
    let mean = ok(&results, "mean");
    close(
        mean["EstimatedMean"].as_f64().unwrap(),
        expected["mean"].as_f64().unwrap(),
        1e-13,
        "meanDS",
    );
    assert_eq!(mean["Nvalid"], expected["nvalid"]);
    assert_eq!(mean["Nmissing"], expected["nmissing"]);
    assert_eq!(mean["Ntotal"], expected["ntotal"]);
    let var = ok(&results, "var");
    close(
        var["Sum"].as_f64().unwrap(),
        expected["sum"].as_f64().unwrap(),
        1e-13,
        "varDS Sum",
    );
    close(
        var["SumOfSquares"].as_f64().unwrap(),
        expected["sum_squares"].as_f64().unwrap(),
        1e-13,
        "varDS SumOfSquares",
    );
    for (ours, r) in numbers(ok(&results, "quantile_means"))
        .iter()
        .zip(numbers(&expected["quantile_means"]))
    {
        close(*ours, r, 1e-13, "quantileMeanDS");
    }
    let frequencies = &ok(&results, "frequencies")["table"][0];
    let site_counts = numbers(&expected["site_counts"]);
    for (level, count) in ["north", "south", "east"].iter().zip(&site_counts) {
        assert_eq!(
            frequencies[level].as_f64(),
            Some(*count),
            "table1DDS {level}"
        );
    }
    assert_eq!(
        frequencies["Total"].as_f64(),
        Some(site_counts.iter().sum())
    );
    let crosstab = ok(&results, "crosstab");
    assert_eq!(crosstab["message"], "valid Table", "{crosstab}");
    let inner: Vec<f64> = crosstab["table"].as_array().unwrap()[..2]
        .iter()
        .flat_map(|row| ["north", "south", "east"].map(|c| row[c].as_f64().unwrap()))
        .collect();
    assert_eq!(inner, numbers(&expected["sex_site"]));
    let correlation = ok(&results, "correlation");
    assert!(
        correlation.is_object(),
        "corDS returns its sums: {correlation}"
    );

    // Histograms: the range is widened by seeded noise; the bins' counts add up to the rows.
    let range = numbers(ok(&results, "histogram_range"));
    assert_eq!(range.len(), 2);
    assert!(range[0] <= 18.0 && range[1] >= 89.0, "{range:?}");
    let histogram = ok(&results, "histogram");
    let counts = numbers(&histogram["value"][0]["value"][1]["value"]);
    assert_eq!(counts.len(), 10);
    assert_eq!(
        results["histogram_plot"]["ok"],
        serde_json::json!(["image_b64", "output_path"])
    );

    // GLMs fitted by the client's own iterations against ours, against R's glm().
    for family in ["gaussian", "binomial", "poisson"] {
        let fit = &results[format!("glm_{family}")];
        assert!(fit.get("ok").is_some(), "glm {family}: {fit}");
        let text = fit["ok"].to_string();
        for (estimate, name) in numbers(&expected[family]["estimates"])
            .iter()
            .zip(expected[family]["names"].as_array().unwrap())
        {
            let name = name.as_str().unwrap();
            assert!(
                text.contains(
                    &name
                        .replace("age", "D$age")
                        .replace("site", "D$site")
                        .replace("sex", "D$sex")
                ) || text.contains(name),
                "glm {family}: {name} missing in {text}"
            );
            assert!(
                numbers_in(&fit["ok"])
                    .iter()
                    .any(|x| ((x - estimate) / estimate.abs().max(1e-12)).abs() < 1e-6),
                "glm {family}: no coefficient near R's {name} = {estimate} in {text}"
            );
        }
    }

    // Assignments and the session's symbols.
    assert!(
        results["assign_expr"].get("ok").is_some(),
        "{}",
        results["assign_expr"]
    );
    close(
        ok(&results, "mean_assigned")["EstimatedMean"]
            .as_f64()
            .unwrap(),
        expected["age_mean2"].as_f64().unwrap(),
        1e-13,
        "meanDS(D$age*2)",
    );
    assert!(
        results["as_factor"].get("ok").is_some(),
        "{}",
        results["as_factor"]
    );
    assert_eq!(ok(&results, "subset_dimensions")[0], expected["older_rows"]);
    assert!(
        error(&results, "tiny")
            .to_string()
            .contains("nfilter.subset"),
        "{}",
        results["tiny"]
    );
    assert_eq!(
        ok(&results, "rm"),
        &serde_json::json!(["D", "older", "visitsf"]),
        "the symbol removed, and nothing else"
    );
    assert_eq!(
        ok(&results, "rm_ds")["return.message"],
        serde_json::json!("Object <visitsf> successfully deleted")
    );
    assert_eq!(
        ok(&results, "ls_after_rm_ds"),
        &serde_json::json!(["D", "older"])
    );

    // Refusals carry what refused them.
    assert!(
        error(&results, "refused_unknown_function")
            .to_string()
            .contains("system"),
        "{}",
        results["refused_unknown_function"]
    );
    assert!(
        error(&results, "refused_nested_function")
            .to_string()
            .contains("get"),
        "{}",
        results["refused_nested_function"]
    );
    assert!(
        error(&results, "refused_parse")
            .to_string()
            .to_lowercase()
            .contains("parse")
            || error(&results, "refused_parse")
                .to_string()
                .contains("expected"),
        "{}",
        results["refused_parse"]
    );
    error(&results, "refused_top_level_operator");
    assert!(
        error(&results, "failed_missing_symbol")
            .to_string()
            .contains("nothere"),
        "{}",
        results["failed_missing_symbol"]
    );
}

fn numbers_in(value: &Value) -> Vec<f64> {
    match value {
        Value::Array(items) => items.iter().flat_map(numbers_in).collect(),
        Value::Object(map) => map.values().flat_map(numbers_in).collect(),
        Value::Number(n) => vec![n.as_f64().unwrap()],
        _ => Vec::new(),
    }
}
