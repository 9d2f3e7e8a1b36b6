//! Checking a [`Profile`] against a rule set's catalogue and indexing it: [`RuleSet::prepare`]
//! and [`RuleSet::prepare_into`] fill a [`Prepared`], settling what each fact that is not
//! recorded means (its absent policy, conditional ones by running the circuit's first nodes).

use pathway_core::{FactValue, Profile};

use crate::compile::circuit::state;
use crate::error::ProfileError;
use crate::evaluate::prepared::{Prepared, Val, at};
use crate::model::{Absent, FactKind};
use crate::ruleset::RuleSet;
use crate::tri::Tri;

impl RuleSet {
    /// Checks a profile against the catalogue and indexes it for evaluation.
    pub fn prepare(&self, profile: &Profile) -> Result<Prepared, ProfileError> {
        let mut p = Prepared::default();
        self.prepare_into(profile, &mut p)?;
        Ok(p)
    }

    /// As [`RuleSet::prepare`], reusing `into`'s buffers. On error `into` is unspecified.
    pub fn prepare_into(&self, profile: &Profile, into: &mut Prepared) -> Result<(), ProfileError> {
        let c = &self.compiled;
        let ruleset = || self.id().to_owned();
        let n = self.ladder.len();
        let p = into;
        p.vals.clear();
        p.ranges.clear();
        p.vals.resize(self.facts.len(), Val::Unknown);
        p.recorded.clear();
        p.recorded.resize(self.facts.len(), false);
        for (id, v) in &profile.facts {
            let Some(&ix) = c.fact_ix.get(id) else {
                return Err(ProfileError::UnknownFact {
                    fact: id.clone(),
                    ruleset: ruleset(),
                });
            };
            let Some(def) = self.facts.get(usize::from(ix)) else {
                continue;
            };
            let val = match (&def.kind, v) {
                (_, FactValue::Unknown) => Val::Unknown,
                (FactKind::Bool, FactValue::Bool(b)) => Val::Bool(*b),
                (FactKind::Number { min, max, .. }, FactValue::Interval(i)) => {
                    // The interval must leave some number of the fact's range: `<270` of an
                    // eGFR (0-250) is any eGFR, and is read so.
                    let above_all = i
                        .low()
                        .zip(*max)
                        .is_some_and(|((l, open), m)| l > m || (open && l == m));
                    let below_all = i
                        .high()
                        .zip(*min)
                        .is_some_and(|((h, open), m)| h < m || (open && h == m));
                    if i.is_empty_or_unbounded() || above_all || below_all {
                        let lo = min.map_or("-inf".to_owned(), |m| m.to_string());
                        let hi = max.map_or("+inf".to_owned(), |m| m.to_string());
                        return Err(ProfileError::BadInterval {
                            fact: id.clone(),
                            value: i.to_string(),
                            range: format!("{lo} to {hi}"),
                        });
                    }
                    p.ranges.push(*i);
                    Val::Range(u16::try_from(p.ranges.len() - 1).unwrap_or(u16::MAX))
                }
                (
                    FactKind::Number {
                        min, max, integer, ..
                    },
                    FactValue::Number(x),
                ) => {
                    let below = min.is_some_and(|m| *x < m);
                    let above = max.is_some_and(|m| *x > m);
                    if !x.is_finite() || below || above || (*integer && x.fract() != 0.0) {
                        let lo = min.map_or("-inf".to_owned(), |m| m.to_string());
                        let hi = max.map_or("+inf".to_owned(), |m| m.to_string());
                        let whole = if *integer { ", whole numbers" } else { "" };
                        return Err(ProfileError::OutOfRange {
                            fact: id.clone(),
                            value: *x,
                            range: format!("{lo} to {hi}{whole}"),
                        });
                    }
                    Val::Num(*x)
                }
                (
                    FactKind::Code {
                        values,
                        unknown_values,
                    },
                    FactValue::Code(s),
                ) => match values.iter().position(|x| x == s) {
                    Some(_) if unknown_values.contains(s) => Val::Unknown,
                    Some(i) => Val::Code(u8::try_from(i).unwrap_or(u8::MAX)),
                    None => {
                        return Err(ProfileError::UnknownCode {
                            fact: id.clone(),
                            value: s.clone(),
                            allowed: values.join(", "),
                        });
                    }
                },
                _ => {
                    return Err(ProfileError::WrongType {
                        fact: id.clone(),
                        expected: def.kind.describe(),
                        found: v.to_string(),
                    });
                }
            };
            if let Some(slot) = p.vals.get_mut(usize::from(ix)) {
                *slot = val;
            }
            if let Some(slot) = p.recorded.get_mut(usize::from(ix)) {
                *slot = true;
            }
        }
        p.state.clear();
        p.state.resize(n, state::NO_OUTCOME);
        for (id, rec) in &profile.steps {
            let Some(i) = self.ladder.position(id.as_str()) else {
                return Err(ProfileError::UnknownStep {
                    field: "steps",
                    step: id.to_string(),
                    ruleset: ruleset(),
                });
            };
            if let Some(slot) = p.state.get_mut(i) {
                *slot = state::of(rec.effective_outcome(), rec.current);
            }
        }
        p.hyper.clear();
        p.hyper.resize(n, false);
        for id in &profile.hypersensitivities {
            match self
                .ladder
                .position(id.as_str())
                .and_then(|i| p.hyper.get_mut(i))
            {
                Some(h) => *h = true,
                None => {
                    return Err(ProfileError::UnknownStep {
                        field: "hypersensitivities",
                        step: id.to_string(),
                        ruleset: ruleset(),
                    });
                }
            }
        }
        p.meds.clear();
        p.meds.resize(c.med_ix.len(), Tri::False);
        p.fact_count = u16::try_from(self.facts.len()).unwrap_or(u16::MAX);
        // A class that is current is true whatever else says it may be.
        let classes = profile
            .unknown_medications
            .iter()
            .map(|m| (m, Tri::Unknown))
            .chain(profile.medications.iter().map(|m| (m, Tri::True)));
        for (m, value) in classes {
            match c
                .med_ix
                .get(m)
                .and_then(|&i| p.meds.get_mut(usize::from(i)))
            {
                Some(slot) => *slot = value,
                None => {
                    return Err(ProfileError::UnknownMedication {
                        class: m.clone(),
                        ruleset: ruleset(),
                    });
                }
            }
        }
        p.age = f64::from(profile.age);
        p.sex = profile.sex;
        p.date = Some(profile.date);
        // What "not recorded" means, fact by fact. Conditional policies read only facts that
        // are settled already (checked when the rule set was compiled), which the circuit's
        // first nodes compute.
        for (i, def) in self.facts.iter().enumerate() {
            if at(&p.recorded, i, true) {
                continue;
            }
            let v = match &def.absent {
                Absent::Unknown => Val::Unknown,
                Absent::False => Val::Bool(false),
                Absent::UnknownWhen(_) => Val::Unknown,
            };
            if let Some(slot) = p.vals.get_mut(i) {
                *slot = v;
            }
        }
        let mut settled: Vec<Tri> = Vec::new();
        for (i, def) in self.facts.iter().enumerate() {
            if at(&p.recorded, i, true) || !matches!(def.absent, Absent::UnknownWhen(_)) {
                continue;
            }
            let Some(node) = c.absent_when.get(i).copied().flatten() else {
                continue;
            };
            if settled.is_empty() {
                c.circuit.run(p, c.absent_end, &mut settled);
            }
            if settled.get(node as usize) == Some(&Tri::False)
                && let Some(slot) = p.vals.get_mut(i)
            {
                *slot = Val::Bool(false);
            }
        }
        Ok(())
    }
}
