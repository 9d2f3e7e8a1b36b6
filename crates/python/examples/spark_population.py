"""A population in a Spark DataFrame through Pathway: one row per patient and step.

The DataFrame holds one FHIR R4 Bundle (JSON text) per row, column ``bundle``; each executor
loads the rule set once and evaluates its partitions with ``evaluate_many`` (threads, the GIL
released). The result has a typed schema:

    patient STRING, step STRING, status STRING, rules ARRAY<STRING>, missing ARRAY<STRING>,
    error STRING (why a record could not be evaluated; then step and status are null)

Run: ``python spark_population.py INPUT.ndjson OUTPUT_DIR [DATE]`` (NDJSON of Bundles, as
``pathway generate`` writes), or import ``evaluate_population(df, date)``.
"""

from __future__ import annotations

import sys
from typing import Iterator

import pyarrow as pa

SCHEMA = "patient STRING, step STRING, status STRING, rules ARRAY<STRING>, missing ARRAY<STRING>, error STRING"

_ARROW = pa.schema(
    [
        ("patient", pa.string()),
        ("step", pa.string()),
        ("status", pa.string()),
        ("rules", pa.list_(pa.string())),
        ("missing", pa.list_(pa.string())),
        ("error", pa.string()),
    ]
)


def _evaluate(batches: Iterator[pa.RecordBatch], date: str) -> Iterator[pa.RecordBatch]:
    import pathway  # on the executor

    rules = pathway.RuleSet.ms_spasticity()  # once per task, not per row
    for batch in batches:
        bundles = batch.column("bundle").to_pylist()
        rows = {name: [] for name in _ARROW.names}

        def add(patient, step, status, rules_, missing, error):
            for k, v in zip(_ARROW.names, (patient, step, status, rules_, missing, error)):
                rows[k].append(v)

        for result, error in pathway.evaluate_many(rules, bundles, date=date, summary=True):
            if result is None:
                add(None, None, None, [], [], error)
                continue
            for s in result["steps"]:
                add(result["patient"], s["step"], s["status"], s["rules"], s["missing"], None)
        yield pa.RecordBatch.from_pydict(rows, schema=_ARROW)


def evaluate_population(df, date: str):
    """One row per patient and step, for a DataFrame with a ``bundle`` column of JSON text."""
    return df.select("bundle").mapInArrow(lambda it: _evaluate(it, date), SCHEMA)


def main() -> None:
    import os

    from pyspark.sql import SparkSession

    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    source, out = sys.argv[1], sys.argv[2]
    date = sys.argv[3] if len(sys.argv) > 3 else "2026-11-22"
    spark = SparkSession.builder.master("local[2]").appName("pathway").getOrCreate()
    spark.sparkContext.addPyFile(__file__)  # the executors import this module
    df = spark.read.text(source).withColumnRenamed("value", "bundle")
    evaluate_population(df, date).write.mode("overwrite").parquet(out)
    spark.stop()


if __name__ == "__main__":
    main()
