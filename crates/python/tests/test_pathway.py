"""The Python binding: results equal the CLI's, errors are typed, evaluate_many uses threads."""

import json
import subprocess
from pathlib import Path

import pytest

import pathway

ROOT = Path(__file__).resolve().parents[3]
SPEC = ROOT.parent / "shared" / "spec" / "vignettes.json"
DATE = "2026-11-22"


def vignettes():
    v = json.loads(SPEC.read_text())
    return v if isinstance(v, list) else v["vignettes"]


@pytest.fixture(scope="module")
def rules():
    return pathway.RuleSet.ms_spasticity()


def test_three_lines(rules):
    bundle = (ROOT / "fixtures/fhir/bundles/v24-opioid-night-spasms.json").read_bytes()
    result = pathway.evaluate_bundle(rules, bundle, date=DATE)
    statuses = {s["step"]: s["status"] for s in result["steps"]}
    assert statuses["diazepam"] == "caution"
    assert rules.id == "ms-spasticity" and rules.version == "1.1.0"


def test_every_vignette_meets_its_expectation_and_equals_the_cli(rules, tmp_path):
    cli = ROOT / "target" / "debug" / "pathway"
    for v in vignettes():
        result = pathway.evaluate_bundle(rules, json.dumps(v["bundle"]), date=DATE)
        status = {s["step"]: s["status"] for s in result["steps"]}
        for step in v["expect"].get("offer", []):
            assert status[step] in ("continue", "offer", "caution"), (v["id"], step)
        for step in v["expect"].get("exclude", []):
            assert status[step] in ("not-yet", "excluded"), (v["id"], step)
        for step in v["expect"].get("caution", []):
            assert status[step] == "caution", (v["id"], step)
        if cli.exists():
            path = tmp_path / f"{v['id']}.json"
            path.write_text(json.dumps(v["bundle"]))
            out = subprocess.run(
                [str(cli), "evaluate", str(path), "--date", DATE, "--format", "json"],
                check=True, capture_output=True, text=True,
            ).stdout
            expected = json.loads(out)
            result.pop("patient")
            assert result == expected, v["id"]


def test_profiles_and_typed_errors(rules):
    r = pathway.evaluate_profile(
        rules, {"date": DATE, "age": 40, "facts": {"multiple-sclerosis": True, "spasticity": True}}
    )
    assert r["applicable"] is True
    with pytest.raises(pathway.ProfileError, match="unknown field"):
        pathway.evaluate_profile(rules, {"date": DATE, "age": 40, "sx": "f"})
    with pytest.raises(pathway.FhirError, match="no Patient"):
        pathway.evaluate_bundle(rules, b'{"resourceType":"Bundle","entry":[]}', date=DATE)
    with pytest.raises(pathway.PathwayError, match="YYYY-MM-DD"):
        pathway.evaluate_bundle(rules, b"{}", date="22/11/2026")
    with pytest.raises(pathway.RuleSetError):
        pathway.RuleSet.load("/no/such/ruleset.toml")
    assert issubclass(pathway.FhirError, pathway.PathwayError)


def test_evaluate_many_keeps_order_reports_failures_and_releases_the_gil(rules):
    bundles = [json.dumps(v["bundle"]) for v in vignettes()] * 25
    bundles.insert(3, "not json")
    results = pathway.evaluate_many(rules, bundles, date=DATE, workers=2)
    assert len(results) == len(bundles)
    assert results[3][0] is None and "JSON" in results[3][1]
    first = pathway.evaluate_bundle(rules, bundles[0], date=DATE)
    assert results[0][0] == first
    # The GIL is released while it works: this thread keeps running during the call. (Checked
    # by progress, not by a timed assertion.) Held, the GIL would let this loop run for one
    # switch interval at most (5 ms: a few hundred thousand turns); released, for the whole
    # call (about a second: tens of millions).
    import threading

    started, done = threading.Event(), threading.Event()

    def work():
        started.set()
        pathway.evaluate_many(rules, bundles * 8, date=DATE, workers=2)
        done.set()

    worker = threading.Thread(target=work)
    worker.start()
    started.wait()
    spins = 0
    while not done.is_set():
        spins += 1
    worker.join()
    assert spins > 1_000_000, spins


def test_summary_results_equal_the_batch_summary(rules, tmp_path):
    cli = ROOT / "target" / "debug" / "pathway"
    v = vignettes()[0]
    s = pathway.evaluate_bundle(rules, json.dumps(v["bundle"]), date=DATE, summary=True)
    full = pathway.evaluate_bundle(rules, json.dumps(v["bundle"]), date=DATE)
    assert [x["status"] for x in s["steps"]] == [x["status"] for x in full["steps"]]
    if cli.exists():
        path = tmp_path / "one.ndjson"
        path.write_text(json.dumps(v["bundle"]) + "\n")
        out = tmp_path / "o.ndjson"
        subprocess.run([str(cli), "batch", str(path), "--out", str(out), "--date", DATE, "--detail", "summary"], check=True, capture_output=True)
        batch = json.loads(out.read_text())["result"]
        assert [(x["step"], x["status"], x["rules"], x.get("missing", [])) for x in batch["steps"]] == [
            (x["step"], x["status"], x["rules"], x["missing"]) for x in s["steps"]
        ]


def test_summary_dicts_equal_the_batch_summary_whole(rules, tmp_path):
    # Summaries are built as dicts in Rust (not decoded from JSON): every key, warnings and
    # unrecognised records included, as `pathway batch --detail summary` writes them.
    bundles = [v["bundle"] for v in vignettes()]
    odd = json.loads(json.dumps(bundles[0]))
    ref = next(e["fullUrl"] for e in odd["entry"] if e["resource"]["resourceType"] == "Patient")
    odd["entry"].append({"fullUrl": "urn:uuid:0d4b2a7e-1111-4c1c-9d1a-000000000001", "resource": {
        "resourceType": "MedicationStatement", "id": "m-unknown", "status": "active", "subject": {"reference": ref},
        "medicationCodeableConcept": {"coding": [{"system": "http://www.nlm.nih.gov/research/umls/rxnorm",
                                                  "code": "312940", "display": "Sertraline 50 MG Oral Tablet"}]}}})
    odd["entry"].append({"fullUrl": "urn:uuid:0d4b2a7e-1111-4c1c-9d1a-000000000002", "resource": {
        "resourceType": "Condition", "id": "bad", "subject": {"reference": ref}, "clinicalStatus": 5}})
    texts = [json.dumps(b) for b in bundles + [odd]]
    many = pathway.evaluate_many(rules, texts, date=DATE, workers=2, summary=True)
    assert [pathway.evaluate_bundle(rules, t, date=DATE, summary=True) for t in texts] == [r for r, _ in many]
    assert many[-1][0]["unrecognized"][0]["resource"] == "MedicationStatement/m-unknown"
    assert "Condition/bad" in many[-1][0]["warnings"][0]
    cli = ROOT / "target" / "debug" / "pathway"
    if cli.exists():
        path, out = tmp_path / "v.ndjson", tmp_path / "o.ndjson"
        path.write_text("\n".join(texts) + "\n")
        subprocess.run([str(cli), "batch", str(path), "--out", str(out), "--date", DATE, "--detail", "summary"], check=True, capture_output=True)
        for (r, _), line in zip(many, out.read_text().splitlines()):
            b = json.loads(line)
            res = b["result"]
            assert r == {
                "patient": b["patient"],
                "applicable": res["applicable"],
                "steps": [{"step": s["step"], "status": s["status"], "rules": s["rules"], "missing": s.get("missing", [])}
                          for s in res["steps"]],
                "warnings": res.get("warnings", []),
                "unrecognized": res.get("unrecognized", []),
            }
