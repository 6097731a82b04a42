"""Writes the benchmark cohort: N rows (default 1,000,000), deterministic, with its dictionary.
Usage: generate.py DIR [N]"""
import math
import os
import random
import sys

out, n = sys.argv[1], int(sys.argv[2]) if len(sys.argv) > 2 else 1_000_000
rng = random.Random(20261129)
os.makedirs(os.path.join(out, "bench"), exist_ok=True)
with open(os.path.join(out, "bench", "cohort.csv"), "w") as f:
    f.write("age,bmi,sex,site,smoker,diabetes\n")
    for _ in range(n):
        age = rng.randint(18, 90)
        male = rng.random() < 0.5
        site = rng.choice(("north", "south", "east"))
        smoker = rng.random() < 0.3
        bmi = "NA" if rng.random() < 0.02 else f"{18 + 0.12 * age + 6 * rng.random() + (1.5 if site == 'east' else 0):.2f}"
        p = 1 / (1 + math.exp(-(-4 + 0.05 * age + (0.6 if male else 0) + (0.4 if smoker else 0))))
        f.write(f"{age},{bmi},{'M' if male else 'F'},{site},{'TRUE' if smoker else 'FALSE'},{int(rng.random() < p)}\n")
with open(os.path.join(out, "bench", "cohort.dictionary.yaml"), "w") as f:
    f.write("columns:\n- {name: sex, type: categorical, levels: [F, M]}\n"
            "- {name: site, type: categorical, levels: [north, south, east]}\n- {name: bmi, type: numeric}\n")
