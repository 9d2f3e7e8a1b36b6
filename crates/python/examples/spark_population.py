"""A population in a Spark DataFrame through Pathway: one row per patient and step.

The DataFrame holds one FHIR R4 Bundle (JSON text) per row, column ``bundle``; each executor's
Python worker loads the rule set once and hands each Arrow batch's ``bundle`` column to
``evaluate_table``, which reads it in place, evaluates it with the GIL released and returns the
rows as an Arrow table built in Rust (no Python object per patient). The result has a typed
schema:

    patient STRING, step STRING, status STRING, rules ARRAY<STRING>, missing ARRAY<STRING>,
    error STRING (why a record could not be evaluated; then step and status are null)

Run: ``python spark_population.py INPUT.ndjson OUTPUT_DIR [DATE]`` (NDJSON of Bundles, as
``pathway generate`` writes), or import ``evaluate_population(df, date)``.
"""

from __future__ import annotations

import functools
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


@functools.lru_cache(maxsize=None)
def _rules():
    """The rule set, once per executor's Python worker (Spark reuses a worker across tasks):
    loading it and its value sets takes a few milliseconds."""
    import pathway  # on the executor

    return pathway.RuleSet.ms_spasticity()


def _evaluate(batches: Iterator[pa.RecordBatch], date: str, workers: int) -> Iterator[pa.RecordBatch]:
    import pathway  # on the executor

    rules = _rules()
    for batch in batches:
        table = pathway.evaluate_table(rules, batch.column("bundle"), date=date, workers=workers)
        # The table's own `record` column (the row's place in this batch) is not kept.
        yield from table.select(_ARROW.names).to_batches()


def evaluate_population(df, date: str, workers: int = 1):
    """One row per patient and step, for a DataFrame with a ``bundle`` column of JSON text.

    ``workers``: threads per task. Spark already runs one task per core, so 1 keeps each core
    busy without oversubscribing it; more helps only when there are fewer partitions than cores.
    """
    return df.select("bundle").mapInArrow(lambda it: _evaluate(it, date, workers), SCHEMA)


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
