//! Value sets as data: which codes carry which fact, medication class, allergen or route.

use std::collections::BTreeMap;

use rustc_hash::FxHashMap;
use std::path::Path;

use pathway_core::{FactValue, StepId};
use pathway_rules::{FactKind, RuleSet};
use serde::Deserialize;

/// The local code systems of the clinical spec.
pub(crate) const FACT_SYSTEM: &str = "urn:pathway:fact";
pub(crate) const VALUE_SYSTEM: &str = "urn:pathway:value";
pub(crate) const STEP_SYSTEM: &str = "urn:pathway:step";

/// A value-set file that does not fit its rule set, or cannot be read.
///
/// ```
/// use pathway_fhir::ValueSets;
/// use pathway_rules::RuleSet;
/// let rs = RuleSet::ms_spasticity().unwrap();
/// let text = pathway_fhir::MS_SPASTICITY_VALUESETS.replace("[conditions.epilepsy]", "[conditions.epilepsi]");
/// let err = ValueSets::from_toml("vs.toml", &text, &rs).unwrap_err();
/// assert_eq!(err.to_string(), "vs.toml: [conditions.epilepsi]: `epilepsi` is not a yes/no fact of rule set ms-spasticity");
/// ```
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{file}: {place}{message}")]
pub struct ValueSetError {
    file: String,
    place: String,
    message: String,
}

impl ValueSetError {
    fn new(file: &str, place: &str, message: String) -> Self {
        ValueSetError {
            file: file.to_owned(),
            place: if place.is_empty() {
                String::new()
            } else {
                format!("{place}: ")
            },
            message,
        }
    }

    /// The file.
    pub fn file(&self) -> &str {
        &self.file
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Doc {
    valueset: Header,
    #[serde(default)]
    systems: BTreeMap<String, String>,
    #[serde(default)]
    conditions: BTreeMap<String, ConditionDoc>,
    #[serde(default)]
    observations: BTreeMap<String, ObservationDoc>,
    #[serde(default)]
    medications: BTreeMap<String, Vec<String>>,
    #[serde(default)]
    allergens: BTreeMap<String, Vec<String>>,
    #[serde(default)]
    routes: BTreeMap<String, RouteDoc>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Header {
    id: String,
    version: String,
    ruleset: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct ConditionDoc {
    #[serde(default)]
    codes: Vec<String>,
    #[serde(default)]
    prefixes: Vec<String>,
    within_days: Option<u32>,
    #[serde(default)]
    unless_observed: bool,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct ObservationDoc {
    codes: Vec<String>,
    #[serde(default, rename = "true")]
    yes: Vec<String>,
    #[serde(default, rename = "false")]
    no: Vec<String>,
    #[serde(default)]
    unknown: Vec<String>,
    #[serde(default)]
    units: Vec<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RouteDoc {
    drug: String,
    routes: Vec<String>,
}

/// A `(system, code)` pair.
pub(crate) type Key = (String, String);

/// Values by `(system, code)`, looked up with borrowed strings (no allocation per lookup).
#[derive(Debug, Clone)]
pub(crate) struct CodeMap<V> {
    map: FxHashMap<String, FxHashMap<String, V>>,
}

impl<V> Default for CodeMap<V> {
    fn default() -> Self {
        CodeMap {
            map: FxHashMap::default(),
        }
    }
}

impl<V> CodeMap<V> {
    pub fn get(&self, system: &str, code: &str) -> Option<&V> {
        self.map.get(system)?.get(code)
    }

    pub fn insert(&mut self, (system, code): Key, v: V) {
        self.map.entry(system).or_default().insert(code, v);
    }

    pub fn entry(&mut self, (system, code): Key) -> &mut V
    where
        V: Default,
    {
        self.map.entry(system).or_default().entry(code).or_default()
    }

    /// Every `(system, code)` with its value, in no particular order.
    pub fn iter(&self) -> impl Iterator<Item = ((&str, &str), &V)> {
        self.map
            .iter()
            .flat_map(|(s, m)| m.iter().map(move |(c, v)| ((s.as_str(), c.as_str()), v)))
    }
}

/// How a Condition code sets a fact.
#[derive(Debug, Clone)]
pub(crate) struct ConditionMap {
    pub fact: String,
    pub within_days: Option<u32>,
    pub unless_observed: bool,
}

/// How an Observation code sets a fact.
#[derive(Debug, Clone)]
pub(crate) struct ObservationMap {
    pub fact: String,
    pub kind: FactKind,
    pub answers: CodeMap<FactValue>,
    pub units: Vec<String>,
}

/// A route that turns one step's drug into another step.
#[derive(Debug, Clone)]
pub(crate) struct RouteMap {
    pub drug: StepId,
    pub routes: Vec<Key>,
    pub step: StepId,
}

/// Compiled value sets for one rule set.
///
/// ```
/// use pathway_fhir::ValueSets;
/// use pathway_rules::RuleSet;
/// let rs = RuleSet::ms_spasticity().unwrap();
/// let vs = ValueSets::ms_spasticity(&rs).unwrap();
/// assert_eq!(vs.id(), "ms-spasticity-fhir");
/// ```
#[derive(Debug, Clone)]
pub struct ValueSets {
    id: String,
    version: String,
    pub(crate) conditions: CodeMap<Vec<ConditionMap>>,
    pub(crate) prefixes: Vec<(String, String, ConditionMap)>,
    pub(crate) observations: CodeMap<ObservationMap>,
    pub(crate) medications: CodeMap<String>,
    pub(crate) allergens: CodeMap<StepId>,
    pub(crate) steps: CodeMap<StepId>,
    pub(crate) routes: Vec<RouteMap>,
}

/// The shipped value sets, as text.
pub const MS_SPASTICITY_VALUESETS: &str =
    include_str!("../../../fixtures/valuesets/ms-spasticity.toml");

fn fact_observation(kind: &FactKind, fact: &str) -> ObservationMap {
    ObservationMap {
        fact: fact.to_owned(),
        kind: kind.clone(),
        answers: CodeMap::default(),
        units: Vec::new(),
    }
}

impl ValueSets {
    /// The value sets shipped for the MS spasticity rule set, built in.
    pub fn ms_spasticity(rs: &RuleSet) -> Result<ValueSets, ValueSetError> {
        ValueSets::from_toml(
            "fixtures/valuesets/ms-spasticity.toml",
            MS_SPASTICITY_VALUESETS,
            rs,
        )
    }

    /// Reads a value-set file.
    pub fn load(path: impl AsRef<Path>, rs: &RuleSet) -> Result<ValueSets, ValueSetError> {
        let name = path.as_ref().display().to_string();
        let text = std::fs::read_to_string(path.as_ref())
            .map_err(|e| ValueSetError::new(&name, "", format!("cannot read the file: {e}")))?;
        ValueSets::from_toml(&name, &text, rs)
    }

    /// Loads value sets from TOML and checks them against the rule set: every fact, class and
    /// step they name must exist there.
    pub fn from_toml(file: &str, text: &str, rs: &RuleSet) -> Result<ValueSets, ValueSetError> {
        let doc: Doc = toml::from_str(text).map_err(|e| {
            let at = e
                .span()
                .map(|s| {
                    let line = text
                        .get(..s.start)
                        .unwrap_or_default()
                        .matches('\n')
                        .count()
                        + 1;
                    format!("line {line}")
                })
                .unwrap_or_default();
            ValueSetError::new(file, &at, e.message().trim().to_owned())
        })?;
        let err = |place: &str, m: String| ValueSetError::new(file, place, m);
        if doc.valueset.ruleset != rs.stamp().id {
            return Err(err(
                "[valueset]",
                format!(
                    "written for rule set `{}`, not `{}`",
                    doc.valueset.ruleset,
                    rs.stamp().id
                ),
            ));
        }
        let key = |place: &str, s: &str| -> Result<Key, ValueSetError> {
            let (alias, code) = s
                .split_once(':')
                .ok_or_else(|| err(place, format!("`{s}` is not `alias:code`")))?;
            let system = doc
                .systems
                .get(alias)
                .ok_or_else(|| err(place, format!("`{alias}` is not an alias under [systems]")))?;
            Ok((system.clone(), code.to_owned()))
        };
        let step = |place: &str, id: &str| -> Result<StepId, ValueSetError> {
            rs.ladder().step(id).map(|s| s.id.clone()).ok_or_else(|| {
                err(
                    place,
                    format!("`{id}` is not a step of rule set {}", rs.stamp().id),
                )
            })
        };
        let mut vs = ValueSets {
            id: doc.valueset.id.clone(),
            version: doc.valueset.version.clone(),
            conditions: CodeMap::default(),
            prefixes: Vec::new(),
            observations: CodeMap::default(),
            medications: CodeMap::default(),
            allergens: CodeMap::default(),
            steps: CodeMap::default(),
            routes: Vec::new(),
        };
        for (fact, c) in &doc.conditions {
            let place = format!("[conditions.{fact}]");
            if !rs.fact(fact).is_some_and(|f| f.kind == FactKind::Bool) {
                return Err(err(
                    &place,
                    format!(
                        "`{fact}` is not a yes/no fact of rule set {}",
                        rs.stamp().id
                    ),
                ));
            }
            let map = ConditionMap {
                fact: fact.clone(),
                within_days: c.within_days,
                unless_observed: c.unless_observed,
            };
            for code in &c.codes {
                vs.conditions.entry(key(&place, code)?).push(map.clone());
            }
            for p in &c.prefixes {
                let (system, prefix) = key(&place, p)?;
                vs.prefixes.push((system, prefix, map.clone()));
            }
        }
        // Every catalogue fact can be recorded with the local fact code.
        for f in rs.facts() {
            vs.observations.insert(
                (FACT_SYSTEM.to_owned(), f.id.clone()),
                fact_observation(&f.kind, &f.id),
            );
        }
        for (fact, o) in &doc.observations {
            let place = format!("[observations.{fact}]");
            let def = rs.fact(fact).ok_or_else(|| {
                err(
                    &place,
                    format!("`{fact}` is not a fact of rule set {}", rs.stamp().id),
                )
            })?;
            let mut map = fact_observation(&def.kind, fact);
            let answers = [
                (&o.yes, FactValue::Bool(true)),
                (&o.no, FactValue::Bool(false)),
                (&o.unknown, FactValue::Unknown),
            ];
            for (codes, value) in answers {
                for c in codes {
                    if def.kind != FactKind::Bool && value != FactValue::Unknown {
                        return Err(err(
                            &place,
                            format!("`{fact}` is not yes/no: it takes no true/false answers"),
                        ));
                    }
                    map.answers.insert(key(&place, c)?, value.clone());
                }
            }
            map.units = o.units.clone();
            for c in o
                .codes
                .iter()
                .map(|c| key(&place, c))
                .collect::<Result<Vec<_>, _>>()?
            {
                vs.observations.insert(c, map.clone());
            }
            vs.observations
                .insert((FACT_SYSTEM.to_owned(), fact.clone()), map);
        }
        for (class, codes) in &doc.medications {
            let place = format!("[medications] {class}");
            if !rs.medications().contains_key(class) {
                return Err(err(
                    &place,
                    format!(
                        "`{class}` is not a medication class of rule set {}",
                        rs.stamp().id
                    ),
                ));
            }
            for c in codes {
                vs.medications.insert(key(&place, c)?, class.clone());
            }
        }
        for s in rs.ladder().steps() {
            for c in &s.codes {
                vs.steps
                    .insert((c.system.clone(), c.code.clone()), s.id.clone());
            }
            vs.steps
                .insert((STEP_SYSTEM.to_owned(), s.id.to_string()), s.id.clone());
        }
        for (target, r) in &doc.routes {
            let place = format!("[routes.{target}]");
            let route = RouteMap {
                drug: step(&place, &r.drug)?,
                routes: r
                    .routes
                    .iter()
                    .map(|c| key(&place, c))
                    .collect::<Result<_, _>>()?,
                step: step(&place, target)?,
            };
            vs.routes.push(route);
        }
        for (s, codes) in &doc.allergens {
            let place = format!("[allergens] {s}");
            let id = step(&place, s)?;
            for c in codes {
                vs.allergens.insert(key(&place, c)?, id.clone());
            }
        }
        Ok(vs)
    }

    /// The value-set id.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// The value-set version.
    pub fn version(&self) -> &str {
        &self.version
    }

    /// Calls `f` with each Condition mapping of a code: exact codes, then prefixes.
    pub(crate) fn condition_facts<'s>(
        &'s self,
        system: &str,
        code: &str,
        mut f: impl FnMut(&'s ConditionMap),
    ) {
        if let Some(v) = self.conditions.get(system, code) {
            v.iter().for_each(&mut f);
        }
        for (s, p, m) in &self.prefixes {
            if s == system && code.starts_with(p.as_str()) {
                f(m);
            }
        }
    }
}
