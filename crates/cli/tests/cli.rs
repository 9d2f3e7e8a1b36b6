//! The real `pathway` binary on fixtures: every subcommand, every error path, and the JSON
//! output validated against the tool's own schemas.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    missing_docs
)]

use std::path::PathBuf;
use std::process::Output;

use assert_cmd::Command;
use serde_json::Value;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn fixture(p: &str) -> String {
    root().join("fixtures").join(p).display().to_string()
}

fn pathway(args: &[&str]) -> Output {
    Command::cargo_bin("pathway")
        .unwrap()
        .args(args)
        .output()
        .unwrap()
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn schema(kind: &str) -> Value {
    let o = pathway(&["schema", kind]);
    assert!(o.status.success(), "{}", stderr(&o));
    serde_json::from_slice(&o.stdout).unwrap()
}

fn assert_valid(schema: &Value, instance: &Value) {
    let v = jsonschema::validator_for(schema).expect("a valid JSON Schema");
    let errors: Vec<String> = v
        .iter_errors(instance)
        .map(|e| format!("{} at {}", e, e.instance_path()))
        .collect();
    assert!(errors.is_empty(), "{errors:?}");
}

const DATE: &str = "2026-11-22";

#[test]
fn evaluate_a_bundle_as_text_for_people() {
    let o = pathway(&[
        "evaluate",
        &fixture("fhir/bundles/v24-opioid-night-spasms.json"),
        "--date",
        DATE,
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let text = stdout(&o);
    assert!(text.contains("Oral drugs"), "{text}");
    assert!(text.contains("CONTINUE  Baclofen, oral"), "{text}");
    assert!(text.contains("CAUTION   Diazepam"), "{text}");
    assert!(!text.contains("\u{1b}["), "no colour when not a terminal");
}

#[test]
fn evaluate_json_is_valid_against_its_schema_for_bundles_and_profiles() {
    let result = schema("result");
    for input in [
        fixture("fhir/bundles/v13-no-pregnancy-status.json"),
        fixture("patients/first-line-failed.json"),
    ] {
        let o = pathway(&["evaluate", &input, "--format", "json", "--date", DATE]);
        assert!(o.status.success(), "{}", stderr(&o));
        let v: Value = serde_json::from_slice(&o.stdout).unwrap();
        assert_valid(&result, &v);
        assert_eq!(v["ruleset"]["id"], "ms-spasticity");
        assert_eq!(v["steps"].as_array().unwrap().len(), 15);
        for s in v["steps"].as_array().unwrap() {
            for key in ["step", "tier", "status", "reasons", "missing"] {
                assert!(s.get(key).is_some(), "{key} missing in {s}");
            }
        }
    }
}

#[test]
fn evaluate_reads_standard_input_and_the_other_formats() {
    let bundle = std::fs::read(fixture("fhir/bundles/v24-opioid-night-spasms.json")).unwrap();
    for (format, check) in [("cds-hooks", "cards"), ("fhir", "action")] {
        let o = Command::cargo_bin("pathway")
            .unwrap()
            .args(["evaluate", "-", "--format", format, "--date", DATE])
            .write_stdin(bundle.clone())
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", stderr(&o));
        let v: Value = serde_json::from_slice(&o.stdout).unwrap();
        assert!(v[check].is_array(), "{format}: {v}");
    }
}

#[test]
fn fhir_outputs_of_a_profile_name_the_patient_given_never_an_invented_one() {
    let profile = fixture("patients/first-line-failed.json");
    for format in ["fhir", "cds-hooks"] {
        // A profile names no patient: refused, not written about `Patient/unknown`.
        let o = pathway(&["evaluate", &profile, "--format", format]);
        assert_eq!(o.status.code(), Some(2), "{format}");
        assert!(
            stderr(&o).contains("names no patient: pass --patient Patient/<id>"),
            "{}",
            stderr(&o)
        );
        assert!(stdout(&o).is_empty());
        let o = pathway(&[
            "evaluate",
            &profile,
            "--format",
            format,
            "--patient",
            "Patient/p-17",
        ]);
        assert!(o.status.success(), "{}", stderr(&o));
        assert!(stdout(&o).contains("\"Patient/p-17\""), "{format}");
        assert!(!stdout(&o).contains("Patient/unknown"), "{format}");
    }
    // The text report names the patient given.
    let o = pathway(&[
        "evaluate",
        &profile,
        "--patient",
        "Patient/p-17",
        "--colour",
        "never",
    ]);
    assert!(stdout(&o).contains("Patient/p-17"), "{}", stdout(&o));
    // Not a reference; a Bundle about someone else.
    let o = pathway(&[
        "evaluate",
        &profile,
        "--format",
        "fhir",
        "--patient",
        "p-17",
    ]);
    assert_eq!(o.status.code(), Some(2));
    let bundle = fixture("fhir/bundles/v24-opioid-night-spasms.json");
    let o = pathway(&[
        "evaluate",
        &bundle,
        "--date",
        DATE,
        "--patient",
        "Patient/other",
    ]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stderr(&o).contains("not Patient/other (--patient)"),
        "{}",
        stderr(&o)
    );
}

#[test]
fn shipped_profiles_are_valid_against_the_profile_schema() {
    let profile = schema("profile");
    for entry in std::fs::read_dir(root().join("fixtures/patients")).unwrap() {
        let v: Value =
            serde_json::from_str(&std::fs::read_to_string(entry.unwrap().path()).unwrap()).unwrap();
        assert_valid(&profile, &v);
    }
    // The rule-set schema compiles.
    jsonschema::validator_for(&schema("ruleset")).unwrap();
}

#[test]
fn evaluate_errors_are_one_sentence_with_the_file_and_exit_1() {
    let dir = tempfile::tempdir().unwrap();
    let write = |name: &str, text: &str| {
        let p = dir.path().join(name);
        std::fs::write(&p, text).unwrap();
        p.display().to_string()
    };
    let cases = [
        (write("garbage.json", "{nope"), "not valid JSON"),
        (
            write("obs.json", r#"{"resourceType":"Observation"}"#),
            "expected a FHIR Bundle or a Pathway profile",
        ),
        (
            write(
                "profile.json",
                r#"{"date":"2026-11-22","age":40,"facts":{"egrf":20}}"#,
            ),
            "profile fact `egrf` is not in the catalogue",
        ),
        (
            write("nopatient.json", r#"{"resourceType":"Bundle","entry":[]}"#),
            "no Patient resource",
        ),
        (
            dir.path().join("missing.json").display().to_string(),
            "No such file",
        ),
    ];
    for (path, needle) in cases {
        let o = pathway(&["evaluate", &path, "--date", DATE]);
        assert_eq!(o.status.code(), Some(1), "{path}");
        let err = stderr(&o);
        assert!(
            err.starts_with("pathway: ") && err.contains(needle),
            "{path}: {err}"
        );
        assert!(err.contains(path.rsplit('/').next().unwrap()), "{err}");
        assert_eq!(err.trim_end().lines().count(), 1, "{err}");
    }
}

#[test]
fn usage_errors_exit_2() {
    assert_eq!(pathway(&["evaluate"]).status.code(), Some(2));
    assert_eq!(
        pathway(&["evaluate", "x.json", "--format", "xml"])
            .status
            .code(),
        Some(2)
    );
    assert_eq!(pathway(&["frobnicate"]).status.code(), Some(2));
    let o = pathway(&[
        "evaluate",
        &fixture("patients/new-patient.json"),
        "--date",
        "2026-13-01",
    ]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("--date `2026-13-01` is not a date"));
}

#[test]
fn check_reports_where_a_deliberate_mistake_is() {
    let text = std::fs::read_to_string(fixture("rulesets/ms-spasticity.toml"))
        .unwrap()
        .replacen(
            r#"steps = ["tizanidine", "dantrolene"]"#,
            r#"steps = ["tizanidin", "dantrolene"]"#,
            1,
        );
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("broken.toml");
    std::fs::write(&path, &text).unwrap();
    let o = pathway(&["check", path.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(1));
    let err = stderr(&o);
    let line = text
        .lines()
        .position(|l| l.contains("tizanidin\""))
        .unwrap()
        + 1;
    assert!(err.contains(&format!("broken.toml:{line}:10")), "{err}");
    assert!(
        err.contains("error[unknown-step]: `tizanidin` is not a step of the ladder"),
        "{err}"
    );
    assert!(
        err.contains("|          ^^^^^^^^^^^"),
        "caret under the name: {err}"
    );
    assert!(err.contains("in `R8.second-line`, field `steps`"), "{err}");
    assert!(
        err.trim_end()
            .ends_with("1 error found; the rule set cannot be used"),
        "{err}"
    );
}

#[test]
fn check_refuses_a_condition_nested_too_deep_with_its_place_instead_of_aborting() {
    let base = std::fs::read_to_string(fixture("rulesets/illustration-knee-pain.toml")).unwrap();
    let dir = tempfile::tempdir().unwrap();
    for (name, condition, column) in [
        (
            "parens.toml",
            format!("{}pregnant{}", "(".repeat(5_000), ")".repeat(5_000)),
            8 + 64 + 1,
        ),
        (
            "nots.toml",
            format!("{}pregnant", "not ".repeat(16_000)),
            8 + 4 * 64 + 1,
        ),
    ] {
        let text = format!(
            "{base}\n[[rule]]\nid = \"X1\"\nsteps = [\"exercise\"]\neffect = \"exclude\"\nwhen = \"{condition}\"\ntext = \"x\"\nsource = [\"ILL\"]\n"
        );
        let path = dir.path().join(name);
        std::fs::write(&path, &text).unwrap();
        let o = pathway(&["check", path.to_str().unwrap()]);
        assert_eq!(o.status.code(), Some(1), "exits 1, not a crash");
        let err = stderr(&o);
        let line = text.lines().count() - 2;
        let at = format!("{name}:{line}:{column}");
        assert!(err.contains(&at), "{at} in {err}");
        assert!(
            err.contains("error[condition]: the condition nests more than 64 levels deep"),
            "{err}"
        );
        assert!(err.contains("in `X1`, field `when`"), "{err}");
    }
}

#[test]
fn check_passes_the_shipped_content_and_shows_warnings() {
    let o = pathway(&[
        "check",
        &fixture("rulesets/ms-spasticity.toml"),
        "--valuesets",
        &fixture("valuesets/ms-spasticity.toml"),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(
        stdout(&o).contains("0 errors, 0 warnings; value sets fit"),
        "{}",
        stdout(&o)
    );
    let text = std::fs::read_to_string(fixture("rulesets/ms-spasticity.toml"))
        .unwrap()
        .replacen(
            r#"when = "fever"
text = "Avoid massage with a fever.""#,
            r#"when = "fever and not fever"
text = "Avoid massage with a fever.""#,
            1,
        );
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("lint.toml");
    std::fs::write(&path, text).unwrap();
    let o = pathway(&["check", path.to_str().unwrap()]);
    assert!(o.status.success());
    assert!(
        stdout(&o).contains("warning[lint]: this rule can never fire"),
        "{}",
        stdout(&o)
    );
}

#[test]
fn graph_in_every_format_with_a_patient() {
    let dir = tempfile::tempdir().unwrap();
    for (format, start) in [
        ("svg", "<svg"),
        ("html", "<!DOCTYPE html>"),
        ("dot", "digraph"),
        ("mermaid", "flowchart"),
    ] {
        let out = dir.path().join(format!("ladder.{format}"));
        let o = pathway(&[
            "graph",
            "--patient",
            &fixture("fhir/bundles/v24-opioid-night-spasms.json"),
            "--date",
            DATE,
            "--format",
            format,
            "--out",
            out.to_str().unwrap(),
        ]);
        assert!(o.status.success(), "{}", stderr(&o));
        let text = std::fs::read_to_string(&out).unwrap();
        assert!(text.starts_with(start), "{format}");
        assert!(text.contains("CAUTION"), "{format}: coloured by status");
    }
    let o = pathway(&["graph", "--format", "svg"]);
    assert!(o.status.success() && stdout(&o).starts_with("<svg"));
}

#[test]
fn batch_streams_reports_bad_lines_and_summarises() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("pop.ndjson");
    let o = pathway(&[
        "generate",
        "200",
        "--out",
        input.to_str().unwrap(),
        "--date",
        DATE,
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let mut text = std::fs::read_to_string(&input).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    let mut broken = lines[..10].join("\n");
    broken.push_str("\n{\"resourceType\":\"Bundle\"}\n");
    broken.push_str(&lines[10..].join("\n"));
    text = broken;
    std::fs::write(&input, &text).unwrap();
    let out = dir.path().join("out.ndjson");
    let o = pathway(&[
        "batch",
        input.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
        "--date",
        DATE,
        "--jobs",
        "2",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("pop.ndjson:11: the record has no Patient resource"),
        "{}",
        stderr(&o)
    );
    let summary = stdout(&o);
    assert!(
        summary.starts_with("200 patients evaluated, 1 bad records skipped"),
        "{summary}"
    );
    assert!(summary.contains("trigger-review"), "{summary}");
    let results: Vec<Value> = std::fs::read_to_string(&out)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(results.len(), 200);
    // In input order, with the line they came from.
    let order: Vec<u64> = results
        .iter()
        .map(|r| r["line"].as_u64().unwrap())
        .collect();
    assert!(order.windows(2).all(|w| w[0] < w[1]));
    let schema = schema("result");
    assert_valid(&schema, &results[0]["result"]);
    // --fail-fast stops at the bad record.
    let o = pathway(&[
        "batch",
        input.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
        "--date",
        DATE,
        "--fail-fast",
    ]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("--fail-fast"), "{}", stderr(&o));
    // Exactly the records before the bad one were written, though it sits mid-chunk.
    let written: Vec<u64> = std::fs::read_to_string(&out)
        .unwrap()
        .lines()
        .map(|l| {
            serde_json::from_str::<Value>(l).unwrap()["line"]
                .as_u64()
                .unwrap()
        })
        .collect();
    assert_eq!(written, (1..=10).collect::<Vec<u64>>());
}

#[test]
fn batch_reads_a_bulk_data_export_folder() {
    let dir = tempfile::tempdir().unwrap();
    let bundle: Value = serde_json::from_str(
        &std::fs::read_to_string(fixture("fhir/bundles/v24-opioid-night-spasms.json")).unwrap(),
    )
    .unwrap();
    let export = dir.path().join("export");
    std::fs::create_dir(&export).unwrap();
    let mut files: std::collections::BTreeMap<String, String> = Default::default();
    for e in bundle["entry"].as_array().unwrap() {
        let mut r = e["resource"].clone();
        // Bulk exports refer to the patient as Patient/<id>.
        if r.get("subject").is_some() {
            r["subject"] = serde_json::json!({"reference": "Patient/v24-patient-1"});
        }
        if let Some(focus) = r.get_mut("focus") {
            let full = focus[0]["reference"].as_str().unwrap().to_owned();
            let target = bundle["entry"]
                .as_array()
                .unwrap()
                .iter()
                .find(|x| x["fullUrl"] == full.as_str())
                .unwrap();
            focus[0]["reference"] = format!(
                "{}/{}",
                target["resource"]["resourceType"].as_str().unwrap(),
                target["resource"]["id"].as_str().unwrap()
            )
            .into();
        }
        let kind = r["resourceType"].as_str().unwrap().to_owned();
        let f = files.entry(kind).or_default();
        f.push_str(&r.to_string());
        f.push('\n');
    }
    for (kind, text) in files {
        std::fs::write(export.join(format!("{kind}.ndjson")), text).unwrap();
    }
    let out = dir.path().join("out.ndjson");
    let o = pathway(&[
        "batch",
        export.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
        "--date",
        DATE,
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let line: Value = serde_json::from_str(
        std::fs::read_to_string(&out)
            .unwrap()
            .lines()
            .next()
            .unwrap(),
    )
    .unwrap();
    assert_eq!(line["patient"], "Patient/v24-patient-1");
    let diazepam = line["result"]["steps"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["step"] == "diazepam")
        .unwrap();
    assert_eq!(diazepam["status"], "caution");
}

#[test]
fn batch_input_errors_exit_1() {
    let dir = tempfile::tempdir().unwrap();
    let o = pathway(&[
        "batch",
        "/no/such.ndjson",
        "--out",
        dir.path().join("o").to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("/no/such.ndjson"), "{}", stderr(&o));
}

#[test]
fn batch_summary_detail_lists_statuses_decisive_rules_and_missing() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("pop.ndjson");
    assert!(
        pathway(&[
            "generate",
            "50",
            "--out",
            input.to_str().unwrap(),
            "--date",
            DATE
        ])
        .status
        .success()
    );
    let out = dir.path().join("out.ndjson");
    let o = pathway(&[
        "batch",
        input.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
        "--date",
        DATE,
        "--detail",
        "summary",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let text = std::fs::read_to_string(&out).unwrap();
    assert_eq!(text.lines().count(), 50);
    for l in text.lines() {
        let v: Value = serde_json::from_str(l).unwrap();
        let steps = v["result"]["steps"].as_array().unwrap();
        assert_eq!(steps.len(), 15);
        assert!(
            steps
                .iter()
                .all(|s| s["status"].is_string() && !s["rules"].as_array().unwrap().is_empty()),
            "{l}"
        );
    }
}

#[test]
fn serve_starts_answers_discovery_and_refuses_without_trust() {
    use std::io::{BufRead, BufReader, Read, Write};
    let db = tempfile::tempdir().unwrap();
    let mut child = std::process::Command::new(assert_cmd::cargo::cargo_bin("pathway"))
        .args(["serve", "--port", "0"])
        .env("PATHWAY_FEEDBACK_DB", db.path().join("f.sqlite"))
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut err = BufReader::new(child.stderr.take().unwrap());
    let mut line = String::new();
    err.read_line(&mut line).unwrap();
    let addr = line
        .trim()
        .strip_prefix("pathway: CDS Hooks service on http://")
        .and_then(|a| a.strip_suffix("/cds-services"))
        .unwrap_or_else(|| panic!("{line}"))
        .to_owned();
    let request = |req: String| {
        let mut s = std::net::TcpStream::connect(&addr).unwrap();
        s.write_all(req.as_bytes()).unwrap();
        let mut out = String::new();
        s.read_to_string(&mut out).unwrap();
        out
    };
    let discovery = request(format!(
        "GET /cds-services HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    ));
    assert!(discovery.starts_with("HTTP/1.1 200"), "{discovery}");
    assert!(discovery.contains("pathway-order-sign"));
    // No trusted client and no --insecure-dev: hook calls are refused.
    let body = r#"{"hook":"patient-view","hookInstance":"x","context":{"patientId":"p"}}"#;
    let hook = request(format!(
        "POST /cds-services/pathway-patient-view HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    ));
    assert!(hook.starts_with("HTTP/1.1 401"), "{hook}");
    child.kill().unwrap();
    child.wait().unwrap();
}

#[test]
fn feedback_report_without_a_database_says_so() {
    let dir = tempfile::tempdir().unwrap();
    let out = pathway(&[
        "feedback",
        "report",
        "--db",
        &dir.path().join("none.sqlite").display().to_string(),
    ]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("no feedback database"));
}

#[test]
fn batch_exits_1_when_nothing_could_be_evaluated_and_writes_to_stdout_with_dash() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("bad.ndjson");
    std::fs::write(&input, "{\"resourceType\":\"Bundle\"}\nnot json\n").unwrap();
    let o = pathway(&[
        "batch",
        input.to_str().unwrap(),
        "--out",
        "-",
        "--date",
        DATE,
    ]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("no record could be evaluated (2 bad records)"),
        "{}",
        stderr(&o)
    );
    assert!(stderr(&o).contains("WARNING: 100% of the records could not be evaluated"));
    assert!(
        !std::path::Path::new("-").exists(),
        "`-` is standard output, not a file"
    );
    // Good records to standard output, the summary to standard error.
    let good = dir.path().join("good.ndjson");
    let o = pathway(&[
        "generate",
        "20",
        "--out",
        good.to_str().unwrap(),
        "--date",
        DATE,
    ]);
    assert!(o.status.success());
    let o = pathway(&[
        "batch",
        good.to_str().unwrap(),
        "--out",
        "-",
        "--date",
        DATE,
        "--detail",
        "summary",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(stdout(&o).lines().count(), 20);
    let summary = stderr(&o);
    assert!(
        summary
            .contains("20 patients evaluated, 0 bad records skipped; results in standard output"),
        "{summary}"
    );
    assert!(
        summary.contains("the pathway does not apply to"),
        "{summary}"
    );
    assert!(summary.contains("have records not recognised"), "{summary}");
}

#[test]
fn batch_reports_a_record_over_the_size_limit_without_holding_it() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("pop.ndjson");
    let o = pathway(&[
        "generate",
        "3",
        "--out",
        input.to_str().unwrap(),
        "--date",
        DATE,
    ]);
    assert!(o.status.success());
    let mut text = std::fs::read_to_string(&input).unwrap();
    text.push_str(&format!(
        "{{\"resourceType\":\"Bundle\",\"x\":\"{}\"}}\n",
        "a".repeat(100_000)
    ));
    std::fs::write(&input, text).unwrap();
    let o = pathway(&[
        "batch",
        input.to_str().unwrap(),
        "--out",
        dir.path().join("o").to_str().unwrap(),
        "--date",
        DATE,
        "--max-record-bytes",
        "65536",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("pop.ndjson:4: the record is longer than 65536 bytes"),
        "{}",
        stderr(&o)
    );
    assert!(stdout(&o).starts_with("3 patients evaluated, 1 bad records skipped"));
}

#[test]
fn misspelt_names_get_a_suggestion_and_truncated_files_say_so() {
    let dir = tempfile::tempdir().unwrap();
    let text = std::fs::read_to_string(fixture("rulesets/ms-spasticity.toml"))
        .unwrap()
        .replace("when = \"epilepsy\"", "when = \"epilepsi\"");
    let broken = dir.path().join("broken.toml");
    std::fs::write(&broken, text).unwrap();
    let o = pathway(&["check", broken.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stderr(&o).contains("did you mean `epilepsy`?"),
        "{}",
        stderr(&o)
    );
    let bundle =
        std::fs::read_to_string(fixture("fhir/bundles/v24-opioid-night-spasms.json")).unwrap();
    let cut = dir.path().join("cut.json");
    std::fs::write(&cut, &bundle[..300]).unwrap();
    let o = pathway(&["evaluate", cut.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(1));
    let err = stderr(&o);
    assert!(err.contains("truncated?"), "{err}");
    assert_eq!(
        err.matches("line").count() + err.matches(":14:").count(),
        1,
        "the position once: {err}"
    );
}

#[test]
fn value_set_errors_give_line_and_column() {
    let dir = tempfile::tempdir().unwrap();
    let text = std::fs::read_to_string(fixture("valuesets/ms-spasticity.toml"))
        .unwrap()
        .replace("[conditions.epilepsy]", "[conditions.epilepsi]");
    let line = text
        .lines()
        .position(|l| l == "[conditions.epilepsi]")
        .unwrap()
        + 1;
    let vs = dir.path().join("vs.toml");
    std::fs::write(&vs, text).unwrap();
    let o = pathway(&[
        "check",
        &fixture("rulesets/ms-spasticity.toml"),
        "--valuesets",
        vs.to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stderr(&o).contains(&format!(
            "vs.toml: line {line}, column 1: [conditions.epilepsi]"
        )),
        "{}",
        stderr(&o)
    );
}

#[test]
fn test_runs_the_shipped_cases_and_catches_a_weakened_exclusion() {
    let o = pathway(&[
        "test",
        &fixture("rulesets/ms-spasticity.toml"),
        "--coverage",
    ]);
    assert!(o.status.success(), "{}{}", stdout(&o), stderr(&o));
    let out = stdout(&o);
    assert!(out.trim_end().ends_with("20 passed, 0 failed"), "{out}");
    assert!(out.contains("coverage: "), "{out}");
    // The strong-inhibitor exclusion turned into a caution: V22 fails, naming the step.
    let dir = tempfile::tempdir().unwrap();
    let text = std::fs::read_to_string(fixture("rulesets/ms-spasticity.toml")).unwrap();
    let weakened = text.replacen(
        "id = \"R20.tizanidine.cyp1a2-inhibitor\"\nsteps = [\"tizanidine\"]\neffect = \"exclude\"",
        "id = \"R20.tizanidine.cyp1a2-inhibitor\"\nsteps = [\"tizanidine\"]\neffect = \"caution\"",
        1,
    );
    assert_ne!(weakened, text);
    let broken = dir.path().join("weakened.toml");
    std::fs::write(&broken, weakened).unwrap();
    let o = pathway(&[
        "test",
        broken.to_str().unwrap(),
        "--cases",
        &fixture("rulesets/ms-spasticity.cases.toml"),
    ]);
    assert_eq!(o.status.code(), Some(1));
    let out = stdout(&o);
    assert!(out.contains("FAIL V22"), "{out}");
    assert!(
        out.contains("tizanidine: expected not offered (not-yet or excluded), got caution"),
        "{out}"
    );
    assert!(out.trim_end().ends_with("19 passed, 1 failed"), "{out}");
}

#[test]
fn verify_holds_for_the_shipped_rule_set_and_finds_deliberate_breakage() {
    let shipped = fixture("rulesets/ms-spasticity.toml");
    let o = pathway(&["verify", &shipped, "--patients", "60"]);
    assert!(o.status.success(), "{}", stdout(&o));
    assert!(stdout(&o).trim_end().ends_with("5 passed, 0 failed"));
    let text = std::fs::read_to_string(&shipped).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let broken = [
        (
            "a declined rule removed",
            text.replacen(
                "[[rule]]\nid = \"R16.declined\"\ntiers = [1, 2, 3, 4]\neffect = \"exclude\"\nwhen = \"outcome = declined\"\ntext = \"The person declined this step.\"\nsource = [\"PRODUCT\", \"NG220\"]\n",
                "",
                1,
            ),
            "FAIL declined-or-not-tolerated-is-never-offered",
        ),
        (
            "an exclusion turned into a caution",
            text.replacen(
                "id = \"R20.tizanidine.cyp1a2-inhibitor\"\nsteps = [\"tizanidine\"]\neffect = \"exclude\"",
                "id = \"R20.tizanidine.cyp1a2-inhibitor\"\nsteps = [\"tizanidine\"]\neffect = \"caution\"",
                1,
            ),
            "assertion A.tizanidine.strong-cyp1a2-inhibitor",
        ),
        (
            "an if-unknown relaxed",
            text.replacen(
                "effect = \"caution\"\nwhen = \"pregnant\"\ntext = \"Pregnancy (or",
                "effect = \"caution\"\nwhen = \"pregnant\"\nif-unknown = \"ignore\"\ntext = \"Pregnancy (or",
                1,
            ),
            "assertion A.pregnancy",
        ),
    ];
    for (what, rules, expected) in broken {
        assert_ne!(rules, text, "{what}: the fixture changed");
        let path = dir.path().join("broken.toml");
        std::fs::write(&path, rules).unwrap();
        let o = pathway(&["verify", path.to_str().unwrap(), "--patients", "300"]);
        assert_eq!(o.status.code(), Some(1), "{what}: {}", stdout(&o));
        let out = stdout(&o);
        assert!(out.contains(expected), "{what}: {out}");
        assert!(out.contains("counterexample (profile):"), "{what}: {out}");
        assert!(
            out.contains("counterexample (FHIR Bundle):"),
            "{what}: {out}"
        );
    }
}

#[test]
fn test_and_verify_work_on_a_second_rule_set_written_only_through_the_format() {
    let rules = fixture("rulesets/illustration-knee-pain.toml");
    let o = pathway(&["test", &rules, "--coverage"]);
    assert!(o.status.success(), "{}", stdout(&o));
    assert!(stdout(&o).trim_end().ends_with("3 passed, 0 failed"));
    let o = pathway(&["verify", &rules, "--patients", "100"]);
    assert!(o.status.success(), "{}", stdout(&o));
    // Its declined rule removed: verify finds it, with a counterexample profile.
    let text = std::fs::read_to_string(&rules).unwrap();
    let i = text.find("[[rule]]\nid = \"I5.declined\"").unwrap();
    let j = i + text[i..].find("source = [\"ILL\"]\n").unwrap() + "source = [\"ILL\"]\n".len();
    let dir = tempfile::tempdir().unwrap();
    let broken = dir.path().join("broken.toml");
    std::fs::write(&broken, format!("{}{}", &text[..i], &text[j..])).unwrap();
    let o = pathway(&["verify", broken.to_str().unwrap(), "--patients", "100"]);
    assert_eq!(o.status.code(), Some(1), "{}", stdout(&o));
    assert!(stdout(&o).contains("FAIL declined-or-not-tolerated-is-never-offered"));
    assert!(stdout(&o).contains("counterexample (profile):"));
}

// ---- pathway diff -------------------------------------------------------------------------

const MS: &str = "rulesets/ms-spasticity.toml";
const KNEE: &str = "rulesets/illustration-knee-pain.toml";
const KNEE_VALUESETS: &str = "valuesets/illustration-knee-pain.toml";

/// A copy of a shipped rule set with one rule's effect changed, written in `dir`.
fn edited(dir: &std::path::Path, ruleset: &str, rule: &str, from: &str, to: &str) -> String {
    let text = std::fs::read_to_string(fixture(ruleset)).unwrap();
    let i = text.find(&format!("id = \"{rule}\"\n")).unwrap();
    let j = i + text[i..].find("\n\n").unwrap();
    let block = text[i..j].replacen(
        &format!("effect = \"{from}\""),
        &format!("effect = \"{to}\""),
        1,
    );
    assert_ne!(block, text[i..j], "{rule} has effect {from}");
    let path = dir.join(format!("{rule}.toml"));
    std::fs::write(&path, format!("{}{block}{}", &text[..i], &text[j..])).unwrap();
    path.display().to_string()
}

/// `pathway diff ... --format json`, which must succeed.
fn diff_json(args: &[&str]) -> Value {
    let mut all = vec!["diff"];
    all.extend_from_slice(args);
    all.extend_from_slice(&["--format", "json"]);
    let o = pathway(&all);
    assert!(o.status.success(), "{}", stderr(&o));
    serde_json::from_slice(&o.stdout).unwrap()
}

/// The group of a step and transition in a JSON report.
fn group<'a>(report: &'a Value, step: &str, from: &str, to: &str) -> &'a Value {
    report["groups"]
        .as_array()
        .unwrap()
        .iter()
        .find(|g| g["step"] == step && g["from"] == from && g["to"] == to)
        .unwrap_or_else(|| panic!("no group {step} {from} -> {to} in {report:#}"))
}

/// Writes `count` generated patients of a rule set as Bundles and as profiles (the same
/// patients: same seed and date); returns their paths.
fn population(
    dir: &std::path::Path,
    ruleset: &str,
    valuesets: Option<&str>,
    count: usize,
    seed: u64,
) -> (String, String) {
    let mut paths = Vec::new();
    for format in ["bundles", "profiles"] {
        let path = dir.join(format!("{format}-{seed}.ndjson"));
        let (n, s, p) = (
            count.to_string(),
            seed.to_string(),
            path.display().to_string(),
        );
        let rules = fixture(ruleset);
        let mut args = vec![
            "generate",
            &n,
            "--seed",
            &s,
            "--date",
            DATE,
            "--format",
            format,
            "--out",
            &p,
            "--ruleset",
            &rules,
        ];
        let vs = valuesets.map(fixture);
        if let Some(vs) = &vs {
            args.extend_from_slice(&["--valuesets", vs]);
        }
        let o = pathway(&args);
        assert!(o.status.success(), "{}", stderr(&o));
        paths.push(p);
    }
    (paths[0].clone(), paths[1].clone())
}

#[test]
fn diff_shows_an_exclusion_turned_into_a_caution_in_text_and_json_on_both_rule_sets() {
    let dir = tempfile::tempdir().unwrap();
    for (ruleset, rule, step, patients) in [
        (MS, "R20.tizanidine.cyp1a2-inhibitor", "tizanidine", "1500"),
        (KNEE, "I6.medicine-a.bleed", "medicine-a", "4000"),
    ] {
        let old = fixture(ruleset);
        let new = edited(dir.path(), ruleset, rule, "exclude", "caution");
        // Seed 4: among 4,000 knee-pain patients, some escalated with a stomach bleed.
        let o = pathway(&["diff", &old, &new, "--patients", patients, "--seed", "4"]);
        assert!(o.status.success(), "{}", stderr(&o));
        let out = stdout(&o);
        assert!(
            out.contains(&format!("~ changed {rule}: effect exclude -> caution")),
            "{out}"
        );
        assert!(
            out.contains("rules: 1 changed, 0 added, 0 removed"),
            "{out}"
        );
        let line = out
            .lines()
            .find(|l| {
                l.trim_start()
                    .starts_with(&format!("{step} excluded -> caution:"))
            })
            .unwrap_or_else(|| panic!("{out}"));
        assert!(line.contains("[more permissive]"), "{line}");
        assert!(line.contains(rule), "{line}");
        assert!(line.contains(&format!("(was rule {rule})")), "{line}");

        let report = diff_json(&[&old, &new, "--patients", patients, "--seed", "4"]);
        assert_eq!(report["old"]["id"], report["new"]["id"]);
        assert_ne!(report["old"]["hash"], report["new"]["hash"]);
        let changed = &report["rules"]["changed"];
        assert_eq!(changed.as_array().unwrap().len(), 1, "{changed:#}");
        assert_eq!(changed[0]["id"], rule);
        assert_eq!(changed[0]["effect"], "caution");
        assert_eq!(changed[0]["steps"], serde_json::json!([step]));
        assert_eq!(
            changed[0]["changes"],
            serde_json::json!({"effect": {"old": "exclude", "new": "caution"}})
        );
        assert_eq!(report["content"], serde_json::json!([]));
        let p = &report["population"];
        assert_eq!(p["source"], "generated");
        assert_eq!(p["read"], patients.parse::<u64>().unwrap());
        assert_eq!(p["evaluated"], p["read"]);
        assert_eq!(p["failed"], 0);
        let g = group(&report, step, "excluded", "caution");
        assert_eq!(g["direction"], "more-permissive");
        assert!(
            g["rules"]
                .as_array()
                .unwrap()
                .iter()
                .any(|r| r["id"] == rule)
        );
        assert_eq!(
            g["before"],
            serde_json::json!([{"id": rule, "patients": g["count"]}])
        );
        let examples = g["examples"].as_array().unwrap();
        assert!(!examples.is_empty() && examples.len() <= 5);
        assert!(
            examples
                .iter()
                .all(|e| e.as_str().unwrap().starts_with('p'))
        );
        // Every patient counted in a group changed; the groups come in ladder order.
        let groups = report["groups"].as_array().unwrap();
        let changed_patients = p["changed"].as_u64().unwrap();
        assert!(
            groups
                .iter()
                .all(|g| g["count"].as_u64().unwrap() <= changed_patients)
        );
        let rs = pathway_rules::RuleSet::load(&old).unwrap();
        let places: Vec<usize> = groups
            .iter()
            .map(|g| rs.ladder().position(g["step"].as_str().unwrap()).unwrap())
            .collect();
        assert!(places.windows(2).all(|w| w[0] <= w[1]), "{places:?}");
        // --out writes the same report.
        let file = dir.path().join("report.json");
        let o = pathway(&[
            "diff",
            &old,
            &new,
            "--patients",
            patients,
            "--seed",
            "4",
            "--format",
            "json",
            "--out",
            file.to_str().unwrap(),
        ]);
        assert!(o.status.success() && o.stdout.is_empty(), "{}", stderr(&o));
        let written: Value =
            serde_json::from_str(&std::fs::read_to_string(&file).unwrap()).unwrap();
        assert_eq!(written, report);
    }
}

/// A report's groups with profile examples (`line N`) named as the Bundles name the same
/// patients (`p{N-1}`).
fn groups_by_patient(report: &Value) -> Value {
    let mut groups = report["groups"].clone();
    for g in groups.as_array_mut().unwrap() {
        for e in g["examples"].as_array_mut().unwrap() {
            if let Some(n) = e.as_str().unwrap().strip_prefix("line ") {
                *e = format!("p{}", n.parse::<u64>().unwrap() - 1).into();
            }
        }
    }
    groups
}

#[test]
fn diff_gives_the_same_groups_for_bundles_profiles_and_generated_patients_on_both_rule_sets() {
    let dir = tempfile::tempdir().unwrap();
    for (ruleset, valuesets, rule, count) in [
        (MS, None, "R20.tizanidine.cyp1a2-inhibitor", 1200),
        (KNEE, Some(KNEE_VALUESETS), "I6.medicine-a.bleed", 3000),
    ] {
        let old = fixture(ruleset);
        let new = edited(dir.path(), ruleset, rule, "exclude", "caution");
        let (bundles, profiles) = population(dir.path(), ruleset, valuesets, count, 11);
        let vs = valuesets.map(fixture);
        let run = |population: &str| {
            let mut args = vec![
                old.as_str(),
                new.as_str(),
                "--population",
                population,
                "--date",
                DATE,
            ];
            if let Some(vs) = &vs {
                args.extend_from_slice(&["--valuesets", vs]);
            }
            diff_json(&args)
        };
        let (from_bundles, from_profiles) = (run(&bundles), run(&profiles));
        for r in [&from_bundles, &from_profiles] {
            assert_eq!(r["population"]["read"], count as u64);
            assert_eq!(r["population"]["failed"], 0, "{:#}", r["failures"]);
        }
        assert!(from_bundles["population"]["changed"].as_u64().unwrap() > 0);
        assert_eq!(
            from_bundles["population"]["changed"],
            from_profiles["population"]["changed"]
        );
        let groups = groups_by_patient(&from_bundles);
        assert_eq!(groups, groups_by_patient(&from_profiles), "{ruleset}");
        let examples = group(
            &from_bundles,
            if ruleset == MS {
                "tizanidine"
            } else {
                "medicine-a"
            },
            "excluded",
            "not-yet",
        )["examples"]
            .clone();
        assert!(examples[0].as_str().unwrap().starts_with('p'), "{examples}");
        // The generated population of the same seed and date: the same patients, same ids.
        let c = count.to_string();
        let generated = diff_json(&[&old, &new, "--patients", &c, "--seed", "11", "--date", DATE]);
        assert_eq!(generated["groups"], from_bundles["groups"], "{ruleset}");
        // A mixed file (Bundles and profiles, line by line) gives the same groups too.
        let mixed = dir.path().join("mixed.ndjson");
        let b = std::fs::read_to_string(&bundles).unwrap();
        let p = std::fs::read_to_string(&profiles).unwrap();
        let lines: String = b
            .lines()
            .zip(p.lines())
            .enumerate()
            .map(|(i, (b, p))| format!("{}\n", if i % 2 == 0 { b } else { p }))
            .collect();
        std::fs::write(&mixed, lines).unwrap();
        let from_mixed = run(mixed.to_str().unwrap());
        assert_eq!(groups_by_patient(&from_mixed), groups, "{ruleset}");
    }
}

#[test]
fn diff_of_identical_rule_sets_changes_nothing_even_with_fail_on_change() {
    for ruleset in [MS, KNEE] {
        let rules = fixture(ruleset);
        let o = pathway(&[
            "diff",
            &rules,
            &rules,
            "--patients",
            "300",
            "--fail-on-change",
        ]);
        assert!(o.status.success(), "{}", stderr(&o));
        let out = stdout(&o);
        assert!(
            out.contains("rules: 0 changed, 0 added, 0 removed"),
            "{out}"
        );
        assert!(
            out.contains("patients: 0 of 300 change some status"),
            "{out}"
        );
        let report = diff_json(&[&rules, &rules, "--patients", "300"]);
        assert_eq!(report["old"], report["new"]);
        assert_eq!(
            report["rules"],
            serde_json::json!({"added": [], "removed": [], "changed": []})
        );
        assert_eq!(report["groups"], serde_json::json!([]));
        assert_eq!(report["population"]["changed"], 0);
    }
}

#[test]
fn diff_fails_on_change_when_asked_and_its_report_does_not_depend_on_the_jobs() {
    let dir = tempfile::tempdir().unwrap();
    let old = fixture(MS);
    let new = edited(
        dir.path(),
        MS,
        "R20.tizanidine.cyp1a2-inhibitor",
        "exclude",
        "caution",
    );
    let (bundles, _) = population(dir.path(), MS, None, 700, 5);
    let mut reports = Vec::new();
    for jobs in ["1", "2", "3"] {
        for format in ["text", "json"] {
            let o = pathway(&[
                "diff",
                &old,
                &new,
                "--population",
                &bundles,
                "--date",
                DATE,
                "--jobs",
                jobs,
                "--format",
                format,
            ]);
            assert!(o.status.success(), "{}", stderr(&o));
            reports.push((format, jobs, o.stdout));
        }
    }
    for (format, jobs, r) in &reports[2..] {
        let first = if *format == "text" {
            &reports[0].2
        } else {
            &reports[1].2
        };
        assert_eq!(r, first, "{format} with {jobs} jobs");
    }
    // --fail-on-change: exit 1 when some patient changes, with the report written.
    let o = pathway(&[
        "diff",
        &old,
        &new,
        "--population",
        &bundles,
        "--date",
        DATE,
        "--fail-on-change",
    ]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stdout(&o).contains("tizanidine excluded -> "),
        "{}",
        stdout(&o)
    );
    assert!(
        stderr(&o).contains("change status (--fail-on-change)"),
        "{}",
        stderr(&o)
    );
}

#[test]
fn diff_reports_bad_records_and_reads_standard_input_and_bulk_exports() {
    let dir = tempfile::tempdir().unwrap();
    let old = fixture(MS);
    let new = edited(
        dir.path(),
        MS,
        "R20.tizanidine.cyp1a2-inhibitor",
        "exclude",
        "caution",
    );
    let (bundles, profiles) = population(dir.path(), MS, None, 150, 3);
    let b = std::fs::read_to_string(&bundles).unwrap();
    let p = std::fs::read_to_string(&profiles).unwrap();
    let mut text = String::new();
    text.push_str(p.lines().next().unwrap());
    text.push_str("\nnot json\n");
    text.push_str("{\"resourceType\":\"Patient\",\"id\":\"x\"}\n");
    text.push_str("{\"date\":\"2026-11-22\",\"age\":40,\"facts\":{\"no-such-fact\":true}}\n");
    text.push('\n');
    text.push_str("{\"resourceType\":\"Bundle\"}\n");
    text.push_str(b.lines().nth(1).unwrap());
    text.push('\n');
    let input = dir.path().join("bad.ndjson");
    std::fs::write(&input, &text).unwrap();
    let path = input.to_str().unwrap();
    let o = pathway(&["diff", &old, &new, "--population", path, "--date", DATE]);
    assert!(o.status.success(), "{}", stderr(&o));
    let err = stderr(&o);
    for expected in [
        "bad.ndjson:2: not valid JSON",
        "bad.ndjson:3: expected a FHIR Bundle or a Pathway profile, found a FHIR Patient",
        "bad.ndjson:4: the old rule set",
        "no-such-fact",
        "bad.ndjson:6: the record has no Patient resource",
    ] {
        assert!(err.contains(expected), "{expected}: {err}");
    }
    assert!(
        stdout(&o).contains("bad.ndjson: 6 read, 2 evaluated, 4 failed"),
        "{}",
        stdout(&o)
    );
    let report = diff_json(&[&old, &new, "--population", path, "--date", DATE]);
    let lines: Vec<u64> = report["failures"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["line"].as_u64().unwrap())
        .collect();
    assert_eq!(lines, vec![2, 3, 4, 6]);
    // --fail-fast stops at the first.
    let o = pathway(&["diff", &old, &new, "--population", path, "--fail-fast"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("--fail-fast"), "{}", stderr(&o));
    // Nothing could be evaluated: exit 1.
    let o = Command::cargo_bin("pathway")
        .unwrap()
        .args(["diff", &old, &new, "--population", "-"])
        .write_stdin("not json\n{}\n")
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stderr(&o).contains("standard input:1: not valid JSON"),
        "{}",
        stderr(&o)
    );
    assert!(
        stderr(&o).contains("no record could be evaluated"),
        "{}",
        stderr(&o)
    );
    // Profiles on standard input.
    let o = Command::cargo_bin("pathway")
        .unwrap()
        .args(["diff", &old, &new, "--population", "-", "--format", "json"])
        .write_stdin(p.clone())
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    let from_stdin: Value = serde_json::from_slice(&o.stdout).unwrap();
    let from_file = diff_json(&[&old, &new, "--population", &profiles]);
    assert_eq!(from_stdin["groups"], from_file["groups"]);
    // The same patients as a Bulk Data export folder: one NDJSON file per resource type.
    let export = dir.path().join("export");
    std::fs::create_dir(&export).unwrap();
    let mut files: std::collections::BTreeMap<String, String> = Default::default();
    for line in b.lines() {
        let bundle: Value = serde_json::from_str(line).unwrap();
        for e in bundle["entry"].as_array().unwrap() {
            let r = &e["resource"];
            let f = files
                .entry(r["resourceType"].as_str().unwrap().to_owned())
                .or_default();
            f.push_str(&r.to_string());
            f.push('\n');
        }
    }
    for (kind, text) in files {
        std::fs::write(export.join(format!("{kind}.ndjson")), text).unwrap();
    }
    let from_bulk = diff_json(&[
        &old,
        &new,
        "--population",
        export.to_str().unwrap(),
        "--date",
        DATE,
    ]);
    let from_bundles = diff_json(&[&old, &new, "--population", &bundles, "--date", DATE]);
    assert_eq!(from_bulk["population"]["read"], 150);
    // The export is read in patient-id order: the same groups and counts, examples aside.
    let counts = |r: &Value| -> Vec<(String, String, String, u64)> {
        r["groups"]
            .as_array()
            .unwrap()
            .iter()
            .map(|g| {
                (
                    g["step"].as_str().unwrap().to_owned(),
                    g["from"].as_str().unwrap().to_owned(),
                    g["to"].as_str().unwrap().to_owned(),
                    g["count"].as_u64().unwrap(),
                )
            })
            .collect()
    };
    assert!(!counts(&from_bulk).is_empty());
    assert_eq!(counts(&from_bulk), counts(&from_bundles));
    // A rule set without fitting value sets reads profiles, and says why it cannot read Bundles.
    let knee = fixture(KNEE);
    let (kb, kp) = population(dir.path(), KNEE, Some(KNEE_VALUESETS), 20, 2);
    let kb_first = std::fs::read_to_string(&kb)
        .unwrap()
        .lines()
        .next()
        .unwrap()
        .to_owned();
    let mixed = dir.path().join("knee.ndjson");
    std::fs::write(
        &mixed,
        format!("{}{kb_first}\n", std::fs::read_to_string(&kp).unwrap()),
    )
    .unwrap();
    let o = pathway(&[
        "diff",
        &knee,
        &knee,
        "--population",
        mixed.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("knee.ndjson:21: cannot read a FHIR Bundle"),
        "{}",
        stderr(&o)
    );
    assert!(stderr(&o).contains("--valuesets"), "{}", stderr(&o));
    assert!(
        stdout(&o).contains("21 read, 20 evaluated, 1 failed"),
        "{}",
        stdout(&o)
    );
}

#[test]
fn diff_help_documents_the_json_report_and_exit_codes() {
    let o = pathway(&["diff", "--help"]);
    assert!(o.status.success());
    let help = stdout(&o);
    for key in [
        "--population",
        "--fail-on-change",
        "--jobs",
        "JSON report",
        "groups",
        "examples",
        "Exit codes",
    ] {
        assert!(help.contains(key), "{key}: {help}");
    }
}
