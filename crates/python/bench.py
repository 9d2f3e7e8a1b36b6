"""Per-patient cost from Python against `pathway batch`, same machine, same patients.

    python crates/python/bench.py [N]      (after installing the wheel; N default 20000)
"""

import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pathway

ROOT = Path(__file__).resolve().parents[2]
CLI = ROOT / "target" / "release" / "pathway"
N = int(sys.argv[1]) if len(sys.argv) > 1 else 20000
DATE = "2026-11-22"

with tempfile.TemporaryDirectory() as d:
    pop = Path(d) / "pop.ndjson"
    subprocess.run([str(CLI), "generate", str(N), "--out", str(pop), "--date", DATE], check=True, capture_output=True)
    bundles = pop.read_text().splitlines()
    rules = pathway.RuleSet.ms_spasticity()
    t = time.perf_counter()
    subprocess.run([str(CLI), "batch", str(pop), "--out", str(Path(d) / "o.ndjson"), "--date", DATE, "--jobs", "2", "--detail", "summary"], check=True, capture_output=True)
    batch = time.perf_counter() - t
    t = time.perf_counter()
    for b in bundles[:2000]:
        pathway.evaluate_bundle(rules, b, date=DATE, summary=True)
    single = (time.perf_counter() - t) / 2000
    rates = {}
    for w in (1, 2):
        t = time.perf_counter()
        pathway.evaluate_many(rules, bundles, date=DATE, workers=w, summary=True)
        rates[w] = N / (time.perf_counter() - t)
    print(f"{N} patients: pathway batch (2 jobs, --detail summary) {N / batch:,.0f}/s; "
          f"evaluate_bundle(summary) {1e6 * single:,.0f} us per patient; evaluate_many(summary) 1 worker {rates[1]:,.0f}/s, "
          f"2 workers {rates[2]:,.0f}/s ({N / batch / rates[2]:.2f}x of batch)")
