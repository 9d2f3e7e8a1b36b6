//! `pathway diff OLD NEW`: what a rule-set change does: rules added, removed and changed, then
//! the patients of a population whose statuses change, grouped by step and transition.

use std::collections::BTreeMap;
use std::path::Path;

use pathway_core::Profile;
use pathway_rules::{PatientGenerator, RuleSet};

use crate::common::{self, Fail};

fn load(path: &Path) -> Result<RuleSet, Fail> {
    let src = std::fs::read_to_string(path)
        .map_err(|e| Fail::input(format!("{}: {e}", path.display())))?;
    RuleSet::from_toml(&path.display().to_string(), &src).map_err(|e| Fail::input(e.to_string()))
}

/// The population: profiles from an NDJSON file (one profile per line), or generated.
fn population(
    file: Option<&Path>,
    rs: &RuleSet,
    n: usize,
    seed: u64,
) -> Result<Vec<(String, Profile)>, Fail> {
    match file {
        None => Ok(PatientGenerator::new(rs, seed)
            .take(n)
            .enumerate()
            .map(|(i, p)| (format!("generated-{i}"), p))
            .collect()),
        Some(f) => {
            let text = std::fs::read_to_string(f)
                .map_err(|e| Fail::input(format!("{}: {e}", f.display())))?;
            text.lines()
                .enumerate()
                .filter(|(_, l)| !l.trim().is_empty())
                .map(|(i, l)| {
                    serde_json::from_str::<Profile>(l)
                        .map(|p| (format!("{}:{}", f.display(), i + 1), p))
                        .map_err(|e| {
                            Fail::input(format!("{}:{}: not a profile: {e}", f.display(), i + 1))
                        })
                })
                .collect()
        }
    }
}

pub fn run(
    old: &Path,
    new: &Path,
    file: Option<&Path>,
    patients: usize,
    seed: u64,
) -> Result<(), Fail> {
    let (a, b) = (load(old)?, load(new)?);
    let mut out = format!(
        "rule set {} {} -> {} {}\n\nrules:\n",
        a.stamp().id,
        a.stamp().version,
        b.stamp().id,
        b.stamp().version
    );
    let rules = |rs: &RuleSet| -> BTreeMap<String, String> {
        rs.rules()
            .map(|r| {
                (
                    r.id().to_owned(),
                    format!(
                        "{:?} on {} when `{}`: {}",
                        r.effect(),
                        r.steps()
                            .iter()
                            .map(|s| s.as_str())
                            .collect::<Vec<_>>()
                            .join(", "),
                        r.condition(),
                        r.text()
                    ),
                )
            })
            .collect()
    };
    let (ra, rb) = (rules(&a), rules(&b));
    let mut changes = 0;
    for (id, text) in &ra {
        match rb.get(id) {
            None => {
                changes += 1;
                out.push_str(&format!("  - removed {id}: {text}\n"));
            }
            Some(t) if t != text => {
                changes += 1;
                out.push_str(&format!(
                    "  ~ changed {id}:\n      was {text}\n      now {t}\n"
                ));
            }
            Some(_) => {}
        }
    }
    for (id, text) in &rb {
        if !ra.contains_key(id) {
            changes += 1;
            out.push_str(&format!("  + added {id}: {text}\n"));
        }
    }
    if changes == 0 {
        out.push_str("  (none)\n");
    }
    let people = population(file, &a, patients, seed)?;
    // (step's place on the ladder, step, from, to) -> (count, examples, rules deciding the new
    // status), in ladder order.
    type Move = (usize, String, &'static str, &'static str);
    type Seen = (usize, Vec<String>, BTreeMap<String, usize>);
    let mut moves: BTreeMap<Move, Seen> = BTreeMap::new();
    let mut changed = 0usize;
    for (who, p) in &people {
        let (Ok(x), Ok(y)) = (a.evaluate(p), b.evaluate(p)) else {
            continue;
        };
        let mut any = false;
        for (i, (s, t)) in x.steps.iter().zip(&y.steps).enumerate() {
            if s.status != t.status {
                any = true;
                let e = moves
                    .entry((i, s.step.to_string(), s.status.as_str(), t.status.as_str()))
                    .or_default();
                e.0 += 1;
                if e.1.len() < 3 {
                    e.1.push(who.clone());
                }
                for r in t.decisive() {
                    *e.2.entry(r.rule.to_string()).or_default() += 1;
                }
            }
        }
        changed += usize::from(any);
    }
    out.push_str(&format!(
        "\npatients: {changed} of {} change some status\n",
        people.len()
    ));
    for ((_, step, from, to), (n, examples, why)) in &moves {
        let mut why: Vec<(&String, &usize)> = why.iter().collect();
        why.sort_by(|p, q| q.1.cmp(p.1));
        out.push_str(&format!(
            "  {step} {from} -> {to}: {n} patient{} (now decided by {}; e.g. {})\n",
            if *n == 1 { "" } else { "s" },
            why.iter()
                .take(3)
                .map(|(r, _)| r.as_str())
                .collect::<Vec<_>>()
                .join(", "),
            examples.join(", ")
        ));
    }
    common::print(out.trim_end())
}
