"""Pathway on local Spark: a few thousand generated patients give the statuses `pathway batch`
gives for the same input."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]
DATE = "2026-11-22"
CLI = ROOT / "target" / "debug" / "pathway"

pyspark = pytest.importorskip("pyspark") if os.environ.get("PATHWAY_SPARK") != "1" else __import__("pyspark")
sys.path.insert(0, str(ROOT / "crates" / "python" / "examples"))


def test_spark_statuses_equal_pathway_batch(tmp_path):
    # The executors' Python is this one (the virtualenv with pathway and pyarrow).
    os.environ["PYSPARK_PYTHON"] = sys.executable
    from pyspark.sql import SparkSession
    from spark_population import evaluate_population

    pop = tmp_path / "pop.ndjson"
    subprocess.run([str(CLI), "generate", "2000", "--out", str(pop), "--date", DATE], check=True, capture_output=True)
    # One unreadable record: reported, not dropped.
    with pop.open("a") as f:
        f.write('{"resourceType":"Bundle","entry":[]}\n')
    out = tmp_path / "batch.ndjson"
    subprocess.run(
        [str(CLI), "batch", str(pop), "--out", str(out), "--date", DATE, "--detail", "summary"],
        check=True, capture_output=True,
    )
    expected = {}
    for line in out.read_text().splitlines():
        r = json.loads(line)
        for s in r["result"]["steps"]:
            expected[(r["patient"], s["step"])] = (s["status"], s["rules"], s.get("missing", []))
    spark = (
        SparkSession.builder.master("local[2]").appName("pathway-test")
        .config("spark.ui.enabled", "false").config("spark.sql.shuffle.partitions", "2")
        .getOrCreate()
    )
    # The executors' Python workers import the example module too.
    spark.sparkContext.addPyFile(str(ROOT / "crates" / "python" / "examples" / "spark_population.py"))
    try:
        df = spark.read.text(str(pop)).withColumnRenamed("value", "bundle").repartition(4)
        rows = evaluate_population(df, DATE).collect()
    finally:
        spark.stop()
    got = {(r.patient, r.step): (r.status, list(r.rules), list(r.missing)) for r in rows if r.error is None}
    errors = [r.error for r in rows if r.error is not None]
    assert len(errors) == 1 and "no Patient" in errors[0]
    assert len(got) == 2000 * 15
    assert got == expected
