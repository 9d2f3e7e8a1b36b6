//! `pathway test`: a rule set's test cases, written by informaticists as data, run the way a
//! test runner runs tests.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use pathway_core::{Profile, Status};
use pathway_fhir::{ReadOptions, Reader};
use pathway_rules::{Recommendation, RuleSet};
use serde::Deserialize;

use crate::common::{self, Fail};

/// The cases file.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Cases {
    #[serde(default, rename = "case")]
    cases: Vec<Case>,
}

/// One case: a patient (a FHIR Bundle or a profile) and what is expected of it.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Case {
    id: String,
    #[serde(default)]
    title: String,
    date: Option<String>,
    bundle: Option<PathBuf>,
    profile: Option<PathBuf>,
    /// Steps offered: continue, offer or caution.
    #[serde(default)]
    offer: Vec<String>,
    /// Steps not offered: not-yet or excluded.
    #[serde(default)]
    exclude: Vec<String>,
    /// Steps exactly at caution.
    #[serde(default)]
    caution: Vec<String>,
    /// Exact statuses.
    #[serde(default)]
    status: BTreeMap<String, Status>,
}

/// The cases file of a rule set: `NAME.cases.toml` beside `NAME.toml`.
pub fn default_cases(ruleset: &Path) -> PathBuf {
    let stem = ruleset
        .file_stem()
        .map_or_else(|| "ruleset".into(), |s| s.to_string_lossy().into_owned());
    ruleset.with_file_name(format!("{stem}.cases.toml"))
}

/// What one expectation found wrong.
struct Failure {
    step: String,
    expected: String,
    got: Status,
    rules: Vec<String>,
}

fn check(case: &Case, rec: &Recommendation) -> Vec<Failure> {
    let mut out = Vec::new();
    let mut expect = |step: &str, expected: &str, ok: fn(Status) -> bool| match rec.step(step) {
        Some(s) if ok(s.status) => {}
        Some(s) => out.push(Failure {
            step: step.to_owned(),
            expected: expected.to_owned(),
            got: s.status,
            rules: s.decisive().map(|r| r.rule.to_string()).collect(),
        }),
        None => out.push(Failure {
            step: step.to_owned(),
            expected: format!("{expected} (no such step)"),
            got: Status::NotYet,
            rules: Vec::new(),
        }),
    };
    for s in &case.offer {
        expect(
            s,
            "offered (continue, offer or caution)",
            Status::is_offered,
        );
    }
    for s in &case.exclude {
        expect(s, "not offered (not-yet or excluded)", |x| !x.is_offered());
    }
    for s in &case.caution {
        expect(s, "caution", |x| x == Status::Caution);
    }
    for (step, want) in &case.status {
        match rec.step(step) {
            Some(s) if s.status == *want => {}
            Some(s) => out.push(Failure {
                step: step.clone(),
                expected: want.as_str().to_owned(),
                got: s.status,
                rules: s.decisive().map(|r| r.rule.to_string()).collect(),
            }),
            None => out.push(Failure {
                step: step.clone(),
                expected: format!("{} (no such step)", want.as_str()),
                got: Status::NotYet,
                rules: Vec::new(),
            }),
        }
    }
    out
}

pub fn run(
    ruleset: &Path,
    cases: Option<&Path>,
    valuesets: Option<&Path>,
    coverage: bool,
) -> Result<(), Fail> {
    let src = std::fs::read_to_string(ruleset)
        .map_err(|e| Fail::input(format!("{}: {e}", ruleset.display())))?;
    let rs = RuleSet::from_toml(&ruleset.display().to_string(), &src)
        .map_err(|e| Fail::input(e.to_string()))?;
    let path = cases.map_or_else(|| default_cases(ruleset), Path::to_path_buf);
    let text = std::fs::read_to_string(&path).map_err(|e| {
        Fail::input(format!(
            "{}: {e} (test cases: `NAME.cases.toml` beside the rule set, or --cases FILE)",
            path.display()
        ))
    })?;
    let doc: Cases = toml::from_str(&text)
        .map_err(|e| Fail::input(format!("{}: {}", path.display(), e.message().trim())))?;
    let base = path.parent().unwrap_or(Path::new("."));
    // Value sets are needed only for FHIR cases: a problem with them fails those cases.
    let vs = match valuesets {
        Some(p) => pathway_fhir::ValueSets::load(p, &rs).map_err(|e| e.to_string()),
        None => pathway_fhir::ValueSets::ms_spasticity(&rs).map_err(|_| {
            format!(
                "rule set {} has no shipped value sets: give --valuesets for FHIR cases",
                rs.stamp().id
            )
        }),
    };
    let mut passed = 0usize;
    let mut failed = 0usize;
    let mut decisive: BTreeSet<String> = BTreeSet::new();
    let mut report = String::new();
    for case in &doc.cases {
        let result = evaluate(&rs, vs.as_ref(), base, case);
        match result {
            Err(e) => {
                failed += 1;
                report.push_str(&format!("FAIL {}: {e}\n", case.id));
            }
            Ok(rec) => {
                for s in &rec.steps {
                    decisive.extend(s.decisive().map(|r| r.rule.to_string()));
                }
                let failures = check(case, &rec);
                if failures.is_empty() {
                    passed += 1;
                    report.push_str(&format!("ok   {} {}\n", case.id, case.title));
                } else {
                    failed += 1;
                    report.push_str(&format!("FAIL {} {}\n", case.id, case.title));
                    for f in failures {
                        report.push_str(&format!(
                            "     {}: expected {}, got {} (decisive: {})\n",
                            f.step,
                            f.expected,
                            f.got,
                            if f.rules.is_empty() {
                                "-".to_owned()
                            } else {
                                f.rules.join(", ")
                            }
                        ));
                    }
                }
            }
        }
    }
    if coverage {
        let never: Vec<&str> = rs
            .rules()
            .map(|r| r.id())
            .filter(|id| !decisive.contains(*id))
            .collect();
        let total = rs.rules().count();
        report.push_str(&format!(
            "\ncoverage: {} of {total} rules decided some case's status; never decisive ({}):\n",
            total - never.len(),
            never.len()
        ));
        for id in never {
            report.push_str(&format!("  {id}\n"));
        }
    }
    report.push_str(&format!("\n{passed} passed, {failed} failed"));
    common::print(&report)?;
    if failed > 0 {
        return Err(Fail::input(String::new()));
    }
    Ok(())
}

fn evaluate(
    rs: &RuleSet,
    vs: Result<&pathway_fhir::ValueSets, &String>,
    base: &Path,
    case: &Case,
) -> Result<Recommendation, String> {
    let date = match &case.date {
        Some(d) => Some(
            d.parse::<pathway_core::Date>()
                .map_err(|e| format!("date `{d}`: {e}"))?,
        ),
        None => None,
    };
    let profile: Profile = match (&case.bundle, &case.profile) {
        (Some(b), None) => {
            let p = base.join(b);
            let bytes = std::fs::read(&p).map_err(|e| format!("{}: {e}", p.display()))?;
            let vs = vs.map_err(Clone::clone)?;
            let reader = Reader::new(rs, vs.clone());
            let date = date.ok_or("a FHIR case needs a `date`")?;
            reader
                .read_bundle(&bytes, &ReadOptions::strict(date))
                .map_err(|e| format!("{}: {e}", p.display()))?
                .profile
        }
        (None, Some(f)) => {
            let p = base.join(f);
            let text = std::fs::read_to_string(&p).map_err(|e| format!("{}: {e}", p.display()))?;
            let mut profile: Profile =
                serde_json::from_str(&text).map_err(|e| format!("{}: {e}", p.display()))?;
            if let Some(d) = date {
                profile.date = d;
            }
            profile
        }
        _ => return Err("a case names one `bundle` or one `profile`".into()),
    };
    rs.evaluate(&profile).map_err(|e| e.to_string())
}
