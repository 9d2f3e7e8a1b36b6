//! Realistic random patients for a rule set: for property tests, benchmarks and load tests.

use pathway_core::{Date, FactValue, Outcome, Profile, Sex, StepKind, StepRecord};

use crate::model::{Absent, FactKind};
use crate::ruleset::RuleSet;

/// Generates varied, valid profiles for a rule set, reproducibly from a seed.
///
/// Every generated profile passes [`RuleSet::evaluate`]'s checks: facts come from the
/// catalogue with values of the right type and range. Most patients have MS spasticity; facts
/// are sometimes missing or recorded as unknown; comorbidities, medication classes,
/// hypersensitivities and step histories are sprinkled in.
///
/// ```
/// use pathway_rules::{PatientGenerator, RuleSet};
/// let rs = RuleSet::ms_spasticity().unwrap();
/// let mut g = PatientGenerator::new(&rs, 42);
/// let a = g.profile();
/// assert!(rs.evaluate(&a).is_ok());
/// // Same seed, same patients.
/// assert_eq!(PatientGenerator::new(&rs, 42).profile(), a);
/// ```
#[derive(Debug, Clone)]
pub struct PatientGenerator<'a> {
    rs: &'a RuleSet,
    rng: fastrand::Rng,
    date: Date,
}

impl<'a> PatientGenerator<'a> {
    /// A generator with this seed; profiles are dated 2026-11-22.
    pub fn new(rs: &'a RuleSet, seed: u64) -> Self {
        PatientGenerator {
            rs,
            rng: fastrand::Rng::with_seed(seed),
            date: Date::constant(2026, 11, 22),
        }
    }

    /// Sets the evaluation date of the profiles.
    #[must_use]
    pub fn date(mut self, date: Date) -> Self {
        self.date = date;
        self
    }

    fn chance(&mut self, p: f64) -> bool {
        self.rng.f64() < p
    }

    /// A value of the fact's type, biased towards the thresholds rules use.
    fn value(&mut self, kind: &FactKind) -> FactValue {
        match kind {
            FactKind::Bool => FactValue::Bool(self.chance(0.5)),
            FactKind::Number {
                min, max, integer, ..
            } => {
                let lo = min.unwrap_or(0.0);
                let hi = max.unwrap_or(lo + 150.0);
                let mut x = lo + self.rng.f64() * (hi - lo);
                if *integer {
                    x = x.round();
                } else {
                    x = (x * 10.0).round() / 10.0;
                }
                FactValue::Number(x.clamp(lo, hi))
            }
            FactKind::Code { values, .. } => {
                let i = self.rng.usize(..values.len().max(1));
                values
                    .get(i)
                    .map_or(FactValue::Unknown, |v| FactValue::Code(v.clone()))
            }
        }
    }

    /// The next patient.
    pub fn profile(&mut self) -> Profile {
        let age = if self.chance(0.05) {
            self.rng.u16(8..18)
        } else {
            self.rng.u16(18..90)
        };
        let sex = match self.rng.u8(..20) {
            0..=8 => Sex::Male,
            9..=17 => Sex::Female,
            18 => Sex::Other,
            _ => Sex::Unknown,
        };
        let mut p = Profile::new(self.date, age).with_sex(sex);
        let rs = self.rs;
        for f in &rs.facts {
            let comorbidity = f.kind == FactKind::Bool && f.absent == Absent::False;
            let value = if f.id == "multiple-sclerosis" || f.id == "spasticity" {
                Some(FactValue::Bool(self.chance(0.95)))
            } else if comorbidity {
                // Problem-list facts: usually absent (= false), sometimes present.
                self.chance(0.08).then_some(FactValue::Bool(true))
            } else if self.chance(0.12) {
                None
            } else if self.chance(0.04) {
                Some(FactValue::Unknown)
            } else {
                Some(self.value(&f.kind))
            };
            if let Some(v) = value {
                p = p.with_fact(&f.id, v);
            }
        }
        let classes: Vec<String> = rs.medications.keys().cloned().collect();
        for c in classes {
            if self.chance(0.1) {
                p = p.with_medication(&c);
            }
        }
        let steps: Vec<(String, bool)> = rs
            .ladder
            .steps()
            .map(|s| {
                (
                    s.id.to_string(),
                    matches!(s.kind, StepKind::Drug | StepKind::Injection),
                )
            })
            .collect();
        for (s, drug) in steps {
            if drug && self.chance(0.02) {
                p = p.with_hypersensitivity(&s);
            }
            if self.chance(0.22) {
                let outcome = (!self.chance(0.1)).then(|| {
                    let i = self.rng.usize(..Outcome::ALL.len());
                    Outcome::ALL.get(i).copied().unwrap_or(Outcome::Partial)
                });
                let record = if self.chance(0.4) {
                    StepRecord::current(outcome)
                } else {
                    StepRecord {
                        current: false,
                        outcome,
                    }
                };
                p = p.with_step(&s, record);
            }
        }
        p
    }
}

impl Iterator for PatientGenerator<'_> {
    type Item = Profile;

    fn next(&mut self) -> Option<Profile> {
        Some(self.profile())
    }
}
