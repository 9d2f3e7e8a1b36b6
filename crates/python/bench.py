"""Per-patient cost from Python and on local Spark against `pathway batch`: same patients, same
machine, measurements interleaved so that load from elsewhere falls on all of them alike.

    python crates/python/bench.py [N] [--repeat R] [--spark] [--cli PATH]

after installing the wheel (with pyarrow) and building the CLI (`cargo build --release -p
pathway-cli`). N generated patients (default 20,000), R rounds (default 3). Prints a Markdown
table: per way of running, the wall time per patient (the best round, the least disturbed by
other work on the machine, and the median), the CPU time per patient, and the ratio of its
throughput to `pathway batch`'s (best to best, median to median).
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pathway

ROOT = Path(__file__).resolve().parents[2]
DATE = "2026-11-22"


def cpu(who: int) -> float:
    r = resource.getrusage(who)
    return r.ru_utime + r.ru_stime


def timed(f, n: int, children: bool = False):
    """(wall seconds, CPU seconds) of f(), per patient."""
    who = resource.RUSAGE_CHILDREN if children else resource.RUSAGE_SELF
    c, t = cpu(who), time.perf_counter()
    f()
    return (time.perf_counter() - t) / n, (cpu(who) - c) / n


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("n", nargs="?", type=int, default=20000)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--spark", action="store_true", help="also on local[2] Spark (needs pyspark, Java 17)")
    ap.add_argument("--cli", default=str(ROOT / "target" / "release" / "pathway"))
    a = ap.parse_args()
    n, cli = a.n, a.cli
    import pyarrow as pa

    with tempfile.TemporaryDirectory() as d:
        pop = Path(d) / "pop.ndjson"
        subprocess.run([cli, "generate", str(n), "--out", str(pop), "--date", DATE], check=True, capture_output=True)
        raw = pop.read_bytes()
        lines = raw.splitlines()
        texts = [b.decode() for b in lines]
        column = pa.array(texts, pa.string())
        rules = pathway.RuleSet.ms_spasticity()
        single = lines[:2000]

        def batch():
            subprocess.run(
                [cli, "batch", str(pop), "--out", os.devnull, "--date", DATE, "--jobs", "2", "--detail", "summary"],
                check=True, capture_output=True,
            )

        ways = {
            "`pathway batch --jobs 2 --detail summary` (the file)": (batch, n, True),
            "`evaluate_table`, 2 workers, list of `bytes`": (lambda: pathway.evaluate_table(rules, lines, DATE, workers=2), n, False),
            "`evaluate_table`, 2 workers, list of `str`": (lambda: pathway.evaluate_table(rules, texts, DATE, workers=2), n, False),
            "`evaluate_table`, 2 workers, pyarrow string array": (lambda: pathway.evaluate_table(rules, column, DATE, workers=2), n, False),
            "`evaluate_table`, 2 workers, from the file (read + split + evaluate)": (
                lambda: pathway.evaluate_table(rules, pop.read_bytes().splitlines(), DATE, workers=2), n, False),
            "`evaluate_table`, 1 worker, list of `bytes`": (lambda: pathway.evaluate_table(rules, lines, DATE, workers=1), n, False),
            "`evaluate_many(summary=True)`, 2 workers (dicts)": (
                lambda: pathway.evaluate_many(rules, lines, DATE, workers=2, summary=True), n, False),
            "`evaluate_many(summary=True)`, 1 worker (dicts)": (
                lambda: pathway.evaluate_many(rules, lines, DATE, workers=1, summary=True), n, False),
            "`evaluate_bundle(summary=True)`, one call at a time": (
                lambda: [pathway.evaluate_bundle(rules, b, DATE, summary=True) for b in single], len(single), False),
        }
        spark = None
        if a.spark:
            spark, run_spark = start_spark(pop)
            ways["Spark `local[2]`: `evaluate_population` (mapInArrow, 1 worker per task), noop sink"] = (
                lambda: run_spark("evaluate"), n, False)
            ways["Spark `local[2]`: the same, the rows dropped in Python (none back to the JVM)"] = (
                lambda: run_spark("evaluate, drop the rows"), n, False)
            ways["Spark `local[2]`: Bundles handed to Python and dropped (no evaluation)"] = (
                lambda: run_spark("drop the Bundles"), n, False)
            ways["Spark `local[2]`: reading the file only, noop sink"] = (lambda: run_spark("read"), n, False)
        times = {k: [] for k in ways}
        for w in ways.values():  # warm up: page cache, the rule set's value sets, Spark's JIT
            w[0]()
        for _ in range(a.repeat):
            for k, (f, count, children) in ways.items():
                times[k].append(timed(f, count, children))
        if spark is not None:
            spark.stop()

    first = times[next(iter(ways))]
    base_best, base_med = min(w for w, _ in first), statistics.median(w for w, _ in first)
    print(f"{n:,} generated patients, {len(raw) / n:,.0f} bytes of Bundle each, {a.repeat} rounds, "
          f"{os.cpu_count()} cores; CPU time of Spark's JVM is not counted\n")
    print("| | per patient: best, median | patients/s, best | CPU per patient (median) | throughput vs batch: best, median |")
    print("|---|---|---|---|---|")
    for k, ts in times.items():
        walls = [w for w, _ in ts]
        best, med = min(walls), statistics.median(walls)
        cpus = statistics.median(c for _, c in ts)
        print(f"| {k} | {1e6 * best:,.1f} us, {1e6 * med:,.1f} us | {1 / best:,.0f} | {1e6 * cpus:,.1f} us | "
              f"{base_best / best:.2f}x, {base_med / med:.2f}x |")


def start_spark(pop: Path):
    os.environ["PYSPARK_PYTHON"] = sys.executable
    sys.path.insert(0, str(ROOT / "crates" / "python" / "examples"))
    from pyspark.sql import SparkSession
    from spark_population import SCHEMA, _evaluate, evaluate_population

    spark = (
        SparkSession.builder.master("local[2]").appName("pathway-bench")
        .config("spark.ui.enabled", "false")
        # Splits of 8 MB (about 1,300 Bundles): a task per split, two at a time.
        .config("spark.sql.files.maxPartitionBytes", str(8 << 20))
        .getOrCreate()
    )
    spark.sparkContext.setLogLevel("ERROR")
    spark.sparkContext.addPyFile(str(ROOT / "crates" / "python" / "examples" / "spark_population.py"))

    def drop(batches):
        for _ in batches:
            pass
        return iter(())

    def evaluate_and_drop(batches):
        for _ in _evaluate(batches, DATE, 1):
            pass
        return iter(())

    def run(mode: str):
        df = spark.read.text(str(pop)).withColumnRenamed("value", "bundle")
        out = {
            "evaluate": lambda: evaluate_population(df, DATE),
            "evaluate, drop the rows": lambda: df.select("bundle").mapInArrow(evaluate_and_drop, SCHEMA),
            "drop the Bundles": lambda: df.select("bundle").mapInArrow(drop, SCHEMA),
            "read": lambda: df,
        }[mode]()
        out.write.format("noop").mode("overwrite").save()

    return spark, run


if __name__ == "__main__":
    main()
