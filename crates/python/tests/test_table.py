"""evaluate_table, the columnar fast path: the same results as `pathway batch --detail summary`
and as evaluate_many, whatever form the Bundles come in; bad records are rows, not crashes."""

import json
import os
import subprocess
import threading
from pathlib import Path

import pytest

import pathway

pa = pytest.importorskip("pyarrow")
pc = pytest.importorskip("pyarrow.compute")

ROOT = Path(__file__).resolve().parents[3]
SPEC = ROOT.parent / "shared" / "spec" / "vignettes.json"
CLI = ROOT / "target" / "debug" / "pathway"
DATE = "2026-11-22"
COLUMNS = ["record", "patient", "step", "status", "rules", "missing", "error"]


def vignettes():
    v = json.loads(SPEC.read_text())
    return v if isinstance(v, list) else v["vignettes"]


def cli():
    if not CLI.exists():
        if os.environ.get("CI"):
            pytest.fail(f"{CLI} is missing (cargo build -p pathway-cli)")
        pytest.skip(f"{CLI} is missing (cargo build -p pathway-cli)")
    return CLI


@pytest.fixture(scope="module")
def rules():
    return pathway.RuleSet.ms_spasticity()


@pytest.fixture(scope="module")
def population(tmp_path_factory):
    """1,000 generated patients as NDJSON, and `pathway batch --detail summary` of them."""
    d = tmp_path_factory.mktemp("population")
    pop, out = d / "pop.ndjson", d / "batch.ndjson"
    subprocess.run([str(cli()), "generate", "1000", "--out", str(pop), "--date", DATE], check=True, capture_output=True)
    subprocess.run(
        [str(cli()), "batch", str(pop), "--out", str(out), "--date", DATE, "--detail", "summary"],
        check=True, capture_output=True,
    )
    return pop.read_bytes().splitlines(), [json.loads(line) for line in out.read_text().splitlines()]


def batch_rows(lines):
    """`pathway batch --detail summary` output as the table's rows."""
    return [
        (i, r["patient"], s["step"], s["status"], s["rules"], s.get("missing", []), None)
        for i, r in enumerate(lines)
        for s in r["result"]["steps"]
    ]


def rows(table):
    d = table.to_pydict()
    return list(zip(*(d[c] for c in COLUMNS)))


def test_schema_is_typed_and_one_row_per_patient_and_step(rules, population):
    bundles, _ = population
    table = pathway.evaluate_table(rules, bundles[:10], date=DATE)
    assert isinstance(table, pa.Table)
    assert table.schema == pa.schema(
        [
            ("record", pa.int64()),
            ("patient", pa.string()),
            ("step", pa.string()),
            ("status", pa.string()),
            ("rules", pa.list_(pa.string())),
            ("missing", pa.list_(pa.string())),
            ("error", pa.string()),
        ]
    )
    assert table.num_rows == 10 * 15
    assert table.column("record").to_pylist() == [i for i in range(10) for _ in range(15)]
    assert table.column("error").null_count == table.num_rows


def test_a_generated_population_equals_pathway_batch(rules, population):
    bundles, batch = population
    assert rows(pathway.evaluate_table(rules, bundles, date=DATE)) == batch_rows(batch)


def test_the_vignettes_equal_pathway_batch_and_evaluate_bundle(rules, tmp_path):
    texts = [json.dumps(v["bundle"]) for v in vignettes()]
    table = pathway.evaluate_table(rules, texts, date=DATE)
    expected = []
    for i, text in enumerate(texts):
        r = pathway.evaluate_bundle(rules, text, date=DATE, summary=True)
        expected += [(i, r["patient"], s["step"], s["status"], s["rules"], s["missing"], None) for s in r["steps"]]
    assert rows(table) == expected
    pop, out = tmp_path / "v.ndjson", tmp_path / "o.ndjson"
    pop.write_text("\n".join(texts) + "\n")
    subprocess.run(
        [str(cli()), "batch", str(pop), "--out", str(out), "--date", DATE, "--detail", "summary"],
        check=True, capture_output=True,
    )
    assert rows(table) == batch_rows([json.loads(line) for line in out.read_text().splitlines()])


def test_the_same_table_from_every_form_of_input_and_any_number_of_workers(rules, population):
    bundles = population[0][:300]
    texts = [b.decode() for b in bundles]
    reference = pathway.evaluate_table(rules, bundles, date=DATE, workers=1)
    forms = {
        "str": texts,
        "tuple": tuple(bundles),
        "generator": (b for b in bundles),
        "string array": pa.array(texts, pa.string()),
        "large_string array": pa.array(texts, pa.large_string()),
        "string_view array": pa.array(texts, pa.string_view()),
        "binary array": pa.array(bundles, pa.binary()),
        "chunked array": pa.chunked_array([pa.array(texts[:100]), pa.array(texts[100:])]),
    }
    for name, form in forms.items():
        assert pathway.evaluate_table(rules, form, date=DATE).equals(reference), name
    for workers in (2, 3, 8):
        assert pathway.evaluate_table(rules, bundles, date=DATE, workers=workers).equals(reference), workers


def test_equals_evaluate_many_summary(rules, population):
    bundles = population[0][:200]
    table = rows(pathway.evaluate_table(rules, bundles, date=DATE))
    expected = []
    for i, (r, e) in enumerate(pathway.evaluate_many(rules, bundles, date=DATE, summary=True)):
        assert e is None
        expected += [(i, r["patient"], s["step"], s["status"], s["rules"], s["missing"], None) for s in r["steps"]]
    assert table == expected


def test_bad_records_are_rows_with_the_reason(rules, population):
    good = population[0][0]
    bundles = [b"not json", good, b'{"resourceType":"Bundle","entry":[]}', good]
    table = pathway.evaluate_table(rules, bundles, date=DATE, workers=2)
    assert table.num_rows == 1 + 15 + 1 + 15
    errors = table.filter(pc.is_valid(table.column("error"))).to_pylist()
    assert [e["record"] for e in errors] == [0, 2]
    many = pathway.evaluate_many(rules, bundles, date=DATE)
    assert [e["error"] for e in errors] == [many[0][1], many[2][1]]
    assert "JSON" in errors[0]["error"] and "no Patient" in errors[1]["error"]
    for e in errors:
        assert e["step"] is None and e["status"] is None and e["rules"] == [] and e["missing"] == []
    # The good records around them are whole.
    assert rows(table.filter(pc.equal(table.column("record"), 3))) == [
        (3,) + r[1:] for r in rows(table.filter(pc.equal(table.column("record"), 1)))
    ]
    # A null in an Arrow column is a bad record too.
    nulls = pathway.evaluate_table(rules, pa.array([None, good.decode()]), date=DATE)
    assert nulls.num_rows == 16 and nulls.column("error")[0].as_py().startswith("no Bundle")


def test_wrong_inputs_are_typed_errors(rules):
    with pytest.raises(pathway.PathwayError, match="bytes or str"):
        pathway.evaluate_table(rules, [b"{}", 3], date=DATE)
    with pytest.raises(pathway.PathwayError, match="strings or binary"):
        pathway.evaluate_table(rules, pa.array([1, 2]), date=DATE)
    with pytest.raises(pathway.PathwayError, match="YYYY-MM-DD"):
        pathway.evaluate_table(rules, [b"{}"], date="22/11/2026")
    with pytest.raises(pathway.PathwayError, match="list of Bundles"):
        pathway.evaluate_table(rules, b'{"resourceType":"Bundle"}', date=DATE)
    with pytest.raises(pathway.PathwayError, match="list of Bundles"):
        pathway.evaluate_many(rules, '{"resourceType":"Bundle"}', date=DATE)
    empty = pathway.evaluate_table(rules, [], date=DATE)
    assert empty.num_rows == 0 and empty.column_names == COLUMNS


def test_the_gil_is_released(rules, population):
    # As for evaluate_many: this thread keeps running while the table is built (progress, not
    # time: held, the GIL would let this loop run for one switch interval at most).
    bundles = population[0] * 10
    started, done = threading.Event(), threading.Event()

    def work():
        started.set()
        pathway.evaluate_table(rules, bundles, date=DATE, workers=2)
        done.set()

    worker = threading.Thread(target=work)
    worker.start()
    started.wait()
    spins = 0
    while not done.is_set():
        spins += 1
    worker.join()
    assert spins > 1_000_000, spins
