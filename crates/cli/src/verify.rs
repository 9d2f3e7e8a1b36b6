//! `pathway verify`: safety properties checked on a rule set over generated patients, from the
//! rule set's own fact catalogue. Nothing here is specific to one pathway.

use std::path::Path;

use pathway_core::{FactValue, Outcome, Profile, Status, StepKind, StepRecord};
use pathway_rules::{FactKind, PatientGenerator, Recommendation, RuleSet};

use crate::common::{self, Fail};

/// A property: `None` when it holds for the profile, else what went wrong and the rules
/// involved.
type Property = fn(&RuleSet, &Profile) -> Option<Broken>;

/// A property that does not hold.
struct Broken {
    what: String,
    rules: Vec<String>,
}

const PROPERTIES: [(&str, &str, Property); 5] = [
    (
        "declared-assertions-hold",
        "every `[[assert]]` of the rule set holds: where its condition holds, its steps are never in the statuses it rules out (where it may hold, never offered)",
        assertions_hold,
    ),
    (
        "unknown-is-never-more-permissive",
        "replacing a known fact with unknown never gives a step a more permissive status than any value of the fact would, and where some value would change the status, the fact is listed as missing",
        unknown_is_monotone,
    ),
    (
        "offered-steps-say-why",
        "every step that is offered, offered with caution or continued has a rule that decided it",
        offered_steps_say_why,
    ),
    (
        "declined-or-not-tolerated-is-never-offered",
        "a step declined or not tolerated is never offered again (assessment steps excepted)",
        declined_never_offered,
    ),
    (
        "deterministic",
        "the same profile gives the same result, also after a JSON round trip",
        deterministic,
    ),
];

fn eval(rs: &RuleSet, p: &Profile) -> Option<Recommendation> {
    rs.evaluate(p).ok()
}

/// The values a fact can take, for trying each: every code, both answers, and a spread of
/// numbers across the fact's range.
fn completions(kind: &FactKind) -> Vec<FactValue> {
    match kind {
        FactKind::Bool => vec![true.into(), false.into()],
        FactKind::Code {
            values,
            unknown_values,
        } => values
            .iter()
            .filter(|v| !unknown_values.contains(v))
            .map(|v| FactValue::Code(v.clone()))
            .collect(),
        FactKind::Number {
            min, max, integer, ..
        } => {
            let lo = min.unwrap_or(0.0);
            let hi = max.unwrap_or(lo + 200.0);
            let mut v: Vec<f64> = (0..=40)
                .map(|i| lo + (hi - lo) * f64::from(i) / 40.0)
                .map(|x| if *integer { x.round() } else { x })
                .collect();
            v.dedup();
            v.into_iter().map(FactValue::Number).collect()
        }
    }
}

fn unknown_is_monotone(rs: &RuleSet, p: &Profile) -> Option<Broken> {
    for (fact, value) in &p.facts {
        if *value == FactValue::Unknown {
            continue;
        }
        let def = rs.fact(fact)?;
        let unknown = eval(rs, &p.clone().with_fact(fact, FactValue::Unknown))?;
        let known: Vec<Recommendation> = completions(&def.kind)
            .into_iter()
            .filter_map(|v| eval(rs, &p.clone().with_fact(fact, v)))
            .collect();
        for (i, s) in unknown.steps.iter().enumerate() {
            let statuses: Vec<Status> = known
                .iter()
                .filter_map(|r| r.steps.get(i).map(|x| x.status))
                .collect();
            let best = statuses.iter().map(|x| x.permissiveness()).max()?;
            let rules = s.rules.iter().map(ToString::to_string).collect();
            if s.status.permissiveness() > best {
                return Some(Broken {
                    what: format!(
                        "step {}: with `{fact}` unknown it is {}, more permissive than any value gives",
                        s.step, s.status
                    ),
                    rules,
                });
            }
            if statuses.iter().any(|x| *x != s.status) && !s.missing.contains(fact) {
                return Some(Broken {
                    what: format!(
                        "step {}: some value of `{fact}` changes its status ({}), but `{fact}` is not listed as missing",
                        s.step, s.status
                    ),
                    rules,
                });
            }
        }
    }
    None
}

fn assertions_hold(rs: &RuleSet, p: &Profile) -> Option<Broken> {
    let prepared = rs.prepare(p).ok()?;
    let mut eval = pathway_rules::Evaluation::default();
    rs.evaluate_into(&prepared, &mut eval);
    let v = eval.violations(rs).into_iter().next()?;
    let rules = eval
        .steps(rs)
        .find(|s| s.step.id.as_str() == v.step)
        .map(|s| {
            s.reasons()
                .filter(|r| r.decisive())
                .map(|r| r.rule_id().to_owned())
                .collect()
        })
        .unwrap_or_default();
    Some(Broken {
        what: format!(
            "assertion {} ({}): its condition `{}` is {:?} for step {}, whose status is {}",
            v.assertion.id(),
            v.assertion.text(),
            v.assertion.condition(),
            v.condition,
            v.step,
            v.status
        ),
        rules,
    })
}

fn offered_steps_say_why(rs: &RuleSet, p: &Profile) -> Option<Broken> {
    let rec = eval(rs, p)?;
    rec.steps
        .iter()
        .find(|s| s.status.is_offered() && s.decisive().next().is_none())
        .map(|s| Broken {
            what: format!(
                "step {} is {} with no rule that decided it",
                s.step, s.status
            ),
            rules: s.rules.iter().map(ToString::to_string).collect(),
        })
}

fn declined_never_offered(rs: &RuleSet, p: &Profile) -> Option<Broken> {
    for step in rs.ladder().steps() {
        if step.kind == StepKind::Assessment {
            continue;
        }
        for outcome in [Outcome::Declined, Outcome::NotTolerated] {
            for current in [false, true] {
                let q = p.clone().with_step(
                    step.id.as_str(),
                    StepRecord {
                        current,
                        outcome: Some(outcome),
                    },
                );
                let rec = eval(rs, &q)?;
                let s = rec.step(step.id.as_str())?;
                if s.status.is_offered() {
                    return Some(Broken {
                        what: format!(
                            "step {} {} ({}) is {}",
                            step.id,
                            outcome,
                            if current { "current" } else { "past" },
                            s.status
                        ),
                        rules: s.rules.iter().map(ToString::to_string).collect(),
                    });
                }
            }
        }
    }
    None
}

fn deterministic(rs: &RuleSet, p: &Profile) -> Option<Broken> {
    let a = serde_json::to_string(&eval(rs, p)?).ok()?;
    let b = serde_json::to_string(&eval(rs, p)?).ok()?;
    let back: Profile = serde_json::from_str(&serde_json::to_string(p).ok()?).ok()?;
    let c = serde_json::to_string(&eval(rs, &back)?).ok()?;
    (a != b || a != c).then(|| Broken {
        what: "two evaluations of the same profile differ".into(),
        rules: Vec::new(),
    })
}

/// The smallest profile (by removing facts, medications, allergies and step records one at a
/// time) for which the property still fails.
fn shrink(rs: &RuleSet, p: Profile, prop: Property) -> Profile {
    let mut best = p;
    loop {
        let mut smaller = None;
        let candidates = best
            .facts
            .keys()
            .map(|k| {
                let mut q = best.clone();
                q.facts.remove(k);
                q
            })
            .chain(best.medications.iter().map(|m| {
                let mut q = best.clone();
                q.medications.remove(m);
                q
            }))
            .chain(best.hypersensitivities.iter().map(|h| {
                let mut q = best.clone();
                q.hypersensitivities.remove(h);
                q
            }))
            .chain(best.steps.keys().map(|s| {
                let mut q = best.clone();
                q.steps.remove(s);
                q
            }));
        for q in candidates {
            if prop(rs, &q).is_some() {
                smaller = Some(q);
                break;
            }
        }
        match smaller {
            Some(q) => best = q,
            None => return best,
        }
    }
}

pub fn run(
    ruleset: &Path,
    valuesets: Option<&Path>,
    patients: usize,
    seed: u64,
) -> Result<(), Fail> {
    let src = std::fs::read_to_string(ruleset)
        .map_err(|e| Fail::input(format!("{}: {e}", ruleset.display())))?;
    let rs = RuleSet::from_toml(&ruleset.display().to_string(), &src)
        .map_err(|e| Fail::input(e.to_string()))?;
    let mut report = format!(
        "verifying rule set {} {} on {patients} generated patients (seed {seed})\n",
        rs.stamp().id,
        rs.stamp().version
    );
    let (mut held, mut failed) = (0usize, 0usize);
    for (name, text, prop) in PROPERTIES {
        let found = PatientGenerator::new(&rs, seed)
            .take(patients)
            .find(|p| prop(&rs, p).is_some());
        let Some(p) = found else {
            held += 1;
            report.push_str(&format!("ok   {name}: {text}\n"));
            continue;
        };
        failed += 1;
        let small = shrink(&rs, p, prop);
        let broken = prop(&rs, &small);
        report.push_str(&format!("FAIL {name}: {text}\n"));
        if let Some(b) = broken {
            report.push_str(&format!("     {}\n", b.what));
            if !b.rules.is_empty() {
                report.push_str(&format!("     rules involved: {}\n", b.rules.join(", ")));
            }
        }
        report.push_str(&format!(
            "     counterexample (profile):\n{}\n",
            serde_json::to_string_pretty(&small).unwrap_or_default()
        ));
        let vs = match valuesets {
            Some(f) => pathway_fhir::ValueSets::load(f, &rs).ok(),
            None => pathway_fhir::ValueSets::ms_spasticity(&rs).ok(),
        };
        if let Some(vs) = vs {
            let reader = pathway_fhir::Reader::new(&rs, vs);
            let bundle = pathway_fhir::to_bundle(&reader, &small, "counterexample");
            report.push_str(&format!(
                "     counterexample (FHIR Bundle):\n{}\n",
                serde_json::to_string(&bundle).unwrap_or_default()
            ));
        }
    }
    report.push_str(&format!("\n{held} passed, {failed} failed"));
    common::print(&report)?;
    if failed > 0 {
        return Err(Fail::input(String::new()));
    }
    Ok(())
}
