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
/// assert!(err.to_string().starts_with("vs.toml: line "));
/// assert!(err.to_string().ends_with(", column 1: [conditions.epilepsi]: `epilepsi` is not a yes/no fact of rule set ms-spasticity"));
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
    measurements: BTreeMap<String, MeasurementDoc>,
    #[serde(default)]
    ingredients: BTreeMap<String, IngredientDoc>,
    #[serde(default)]
    allergies: AllergiesDoc,
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
    /// SNOMED CT descendants of the listed codes, as an explicit expansion (C1).
    #[serde(default)]
    descendants: Vec<CodeDoc>,
    /// Words that make the fact possible (unknown) when found in a display or text (E3).
    #[serde(default)]
    keywords: Vec<String>,
    /// Whether a name match may make the fact possible at all (indications never are).
    #[serde(default = "yes")]
    by_name: bool,
}

fn yes() -> bool {
    true
}

/// A code with what it is and where it was verified.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct CodeDoc {
    code: String,
    display: String,
    /// The listed code it is a kind of.
    #[serde(default)]
    of: Option<String>,
    source: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct MeasurementDoc {
    codes: Vec<String>,
    /// The fact is true at or above any of these (value and UCUM unit).
    at_least: Vec<Threshold>,
    /// Only measurements this many hours before the end of the evaluation date count.
    within_hours: u32,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Threshold {
    value: f64,
    unit: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct IngredientDoc {
    /// Ingredient codes (RxNorm IN/PIN/MIN, SNOMED substance).
    #[serde(default)]
    codes: Vec<String>,
    /// The step whose drug it is.
    #[serde(default)]
    step: Option<String>,
    /// The medication classes it belongs to.
    #[serde(default)]
    classes: Vec<String>,
    /// Ingredient and brand names, matched as whole words.
    #[serde(default)]
    names: Vec<String>,
    /// Product codes (RxNorm SCD, SBD, GPCK, BPCK) that contain it.
    #[serde(default)]
    products: Vec<CodeDoc>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct AllergiesDoc {
    /// Codes that record the absence of an allergy.
    #[serde(default)]
    no_known: Vec<String>,
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
    /// Units accepted for the same thresholds with a note (`mL/min`: creatinine clearance).
    #[serde(default)]
    approximate_units: Vec<String>,
    /// A value older than this many days counts as not recorded.
    valid_days: Option<u32>,
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

/// A measurement that makes a yes/no fact true at or above a threshold (fever from a body
/// temperature).
#[derive(Debug, Clone)]
pub(crate) struct MeasurementMap {
    pub fact: String,
    /// `(value, normalised unit)`.
    pub at_least: Vec<(f64, String)>,
    pub within_hours: u32,
}

/// One ingredient of the value sets: the step whose drug it is and the classes it is in.
#[derive(Debug, Clone)]
pub(crate) struct Ingredient {
    pub step: Option<StepId>,
    pub classes: Vec<String>,
}

/// Lower case with spaces removed: how units are compared.
pub(crate) fn unit_key(u: &str) -> String {
    u.chars()
        .filter(|c| !c.is_whitespace())
        .flat_map(char::to_lowercase)
        .collect()
}

/// Whether `phrase` (lower case) occurs in `lower` (a text already in lower case, once for
/// all the phrases tried) as whole words.
///
/// Words are runs of letters and digits; `baclofen` is found in `baclofen 10 mg oral
/// tablet` and in `[lioresal]`, not in `gablofen`.
pub(crate) fn has_words(lower: &str, phrase: &str) -> bool {
    if phrase.is_empty() {
        return false;
    }
    let mut from = 0;
    while let Some(i) = lower.get(from..).and_then(|t| t.find(phrase)) {
        let start = from + i;
        let end = start + phrase.len();
        let before = lower.get(..start).and_then(|t| t.chars().next_back());
        let after = lower.get(end..).and_then(|t| t.chars().next());
        if !before.is_some_and(char::is_alphanumeric) && !after.is_some_and(char::is_alphanumeric) {
            return true;
        }
        from = start + phrase.len().max(1);
    }
    false
}

/// How an Observation code sets a fact.
#[derive(Debug, Clone)]
pub(crate) struct ObservationMap {
    pub fact: String,
    pub kind: FactKind,
    pub answers: CodeMap<FactValue>,
    /// Normalised ([`unit_key`]).
    pub units: Vec<String>,
    /// Normalised; read with a note.
    pub approximate_units: Vec<String>,
    pub valid_days: Option<u32>,
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
    /// `(lower-case words, fact)`: a Condition whose display or text has them makes the fact
    /// possible.
    pub(crate) keywords: Vec<(String, String)>,
    pub(crate) observations: CodeMap<ObservationMap>,
    pub(crate) measurements: CodeMap<MeasurementMap>,
    pub(crate) ingredients: Vec<Ingredient>,
    /// Ingredient and product codes to ingredients (indices into `ingredients`).
    pub(crate) drug_codes: CodeMap<Vec<u16>>,
    /// `(lower-case name, ingredient)`.
    pub(crate) drug_names: Vec<(String, u16)>,
    pub(crate) no_allergy: CodeMap<()>,
    pub(crate) allergens: CodeMap<StepId>,
    pub(crate) steps: CodeMap<StepId>,
    pub(crate) routes: Vec<RouteMap>,
    /// What `pathway check` should say about the file (a code listed under two facts).
    warnings: Vec<String>,
}

/// Where a place (`[conditions.epilepsy]`, `[allergens] baclofen`) is in the file: the line
/// and column of its table header, or of the key inside the table.
fn locate(text: &str, place: &str) -> Option<(usize, usize)> {
    let (table, key) = match place.split_once("] ") {
        Some((t, k)) => (format!("{t}]"), Some(k)),
        None => (place.to_owned(), None),
    };
    let header = text.find(&table)?;
    let at = match key {
        Some(k) => {
            let rest = text.get(header..)?;
            header + rest.find(&format!("\n{k}")).map_or(0, |i| i + 1)
        }
        None => header,
    };
    let before = text.get(..at)?;
    let line = before.matches('\n').count() + 1;
    let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    Some((line, column))
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
        approximate_units: Vec::new(),
        valid_days: None,
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
                    let before = text.get(..s.start).unwrap_or_default();
                    let line = before.matches('\n').count() + 1;
                    let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
                    format!("line {line}, column {column}")
                })
                .unwrap_or_default();
            ValueSetError::new(file, &at, e.message().trim().to_owned())
        })?;
        // Problems found after parsing are placed at their table (or key) in the file.
        let err = |place: &str, m: String| {
            let at = locate(text, place)
                .map_or_else(String::new, |(l, c)| format!("line {l}, column {c}: "));
            ValueSetError::new(file, &format!("{at}{place}"), m)
        };
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
            keywords: Vec::new(),
            observations: CodeMap::default(),
            measurements: CodeMap::default(),
            ingredients: Vec::new(),
            drug_codes: CodeMap::default(),
            drug_names: Vec::new(),
            no_allergy: CodeMap::default(),
            allergens: CodeMap::default(),
            steps: CodeMap::default(),
            routes: Vec::new(),
            warnings: Vec::new(),
        };
        // Which fact each condition code was listed under, to warn about a code under two.
        let mut listed: BTreeMap<Key, String> = BTreeMap::new();
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
            let listed_codes: Vec<&String> = c
                .codes
                .iter()
                .chain(c.descendants.iter().map(|d| &d.code))
                .collect();
            for d in &c.descendants {
                if let Some(of) = &d.of
                    && !c.codes.contains(of)
                    && !c.descendants.iter().any(|x| x.code == *of)
                {
                    return Err(err(
                        &place,
                        format!(
                            "descendant `{}` is of `{of}`, which is not one of the fact's codes",
                            d.code
                        ),
                    ));
                }
                if d.display.trim().is_empty() || d.source.trim().is_empty() {
                    return Err(err(
                        &place,
                        format!("descendant `{}` needs a display and a source", d.code),
                    ));
                }
            }
            for code in listed_codes {
                let k = key(&place, code)?;
                if let Some(other) = listed.get(&k)
                    && other != fact
                    && !(c.unless_observed
                        || doc.conditions.get(other).is_some_and(|o| o.unless_observed))
                {
                    vs.warnings.push(format!(
                        "{place}: `{code}` is also listed under [conditions.{other}]; a record with it sets both"
                    ));
                }
                listed.insert(k.clone(), fact.clone());
                vs.conditions.entry(k).push(map.clone());
            }
            for p in &c.prefixes {
                let (system, prefix) = key(&place, p)?;
                vs.prefixes.push((system, prefix, map.clone()));
            }
            if c.by_name {
                for w in &c.keywords {
                    let w = w.trim().to_lowercase();
                    if w.is_empty() {
                        return Err(err(&place, "an empty keyword matches nothing".into()));
                    }
                    vs.keywords.push((w, fact.clone()));
                }
            } else if !c.keywords.is_empty() {
                return Err(err(
                    &place,
                    "keywords are given but `by-name = false`".into(),
                ));
            }
        }
        for (fact, m) in &doc.measurements {
            let place = format!("[measurements.{fact}]");
            if !rs.fact(fact).is_some_and(|f| f.kind == FactKind::Bool) {
                return Err(err(
                    &place,
                    format!(
                        "`{fact}` is not a yes/no fact of rule set {}",
                        rs.stamp().id
                    ),
                ));
            }
            if m.at_least.is_empty() || m.at_least.iter().any(|t| !t.value.is_finite()) {
                return Err(err(
                    &place,
                    "`at-least` needs one finite threshold or more".into(),
                ));
            }
            let map = MeasurementMap {
                fact: fact.clone(),
                at_least: m
                    .at_least
                    .iter()
                    .map(|t| (t.value, unit_key(&t.unit)))
                    .collect(),
                within_hours: m.within_hours,
            };
            for c in &m.codes {
                vs.measurements.insert(key(&place, c)?, map.clone());
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
            map.units = o.units.iter().map(|u| unit_key(u)).collect();
            map.approximate_units = o.approximate_units.iter().map(|u| unit_key(u)).collect();
            map.valid_days = o.valid_days;
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
        for (id, ing) in &doc.ingredients {
            let place = format!("[ingredients.{id}]");
            let index = u16::try_from(vs.ingredients.len())
                .map_err(|_| err(&place, "more than 65,535 ingredients".into()))?;
            for class in &ing.classes {
                if !rs.medications().contains_key(class) {
                    return Err(err(
                        &place,
                        format!(
                            "`{class}` is not a medication class of rule set {}",
                            rs.stamp().id
                        ),
                    ));
                }
            }
            let step = ing.step.as_deref().map(|s| step(&place, s)).transpose()?;
            if step.is_none() && ing.classes.is_empty() {
                return Err(err(
                    &place,
                    "names neither a `step` nor `classes`: it would match and mean nothing".into(),
                ));
            }
            for code in ing.codes.iter().chain(ing.products.iter().map(|p| &p.code)) {
                let v = vs.drug_codes.entry(key(&place, code)?);
                if !v.contains(&index) {
                    v.push(index);
                }
            }
            for p in &ing.products {
                if p.display.trim().is_empty() || p.source.trim().is_empty() {
                    return Err(err(
                        &place,
                        format!("product `{}` needs a display and a source", p.code),
                    ));
                }
            }
            for n in &ing.names {
                let n = n.trim().to_lowercase();
                if n.is_empty() {
                    return Err(err(&place, "an empty name matches nothing".into()));
                }
                vs.drug_names.push((n, index));
            }
            vs.ingredients.push(Ingredient {
                step,
                classes: ing.classes.clone(),
            });
        }
        for c in &doc.allergies.no_known {
            vs.no_allergy.insert(key("[allergies]", c)?, ());
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

    /// What a reviewer of the file should know that does not stop it loading (a code listed
    /// under two facts).
    ///
    /// ```
    /// use pathway_fhir::ValueSets;
    /// use pathway_rules::RuleSet;
    /// let rs = RuleSet::ms_spasticity().unwrap();
    /// assert!(ValueSets::ms_spasticity(&rs).unwrap().warnings().is_empty());
    /// ```
    pub fn warnings(&self) -> &[String] {
        &self.warnings
    }

    /// Every Observation code the value sets read, as `(system, code)`, sorted: what a FHIR
    /// search for the patient's Observations needs to ask for.
    ///
    /// ```
    /// use pathway_fhir::ValueSets;
    /// use pathway_rules::RuleSet;
    /// let rs = RuleSet::ms_spasticity().unwrap();
    /// let vs = ValueSets::ms_spasticity(&rs).unwrap();
    /// let codes = vs.observation_codes();
    /// assert!(codes.contains(&("http://loinc.org".to_owned(), "98979-8".to_owned())));
    /// assert!(codes.contains(&("urn:pathway:fact".to_owned(), "outcome".to_owned())));
    /// ```
    pub fn observation_codes(&self) -> Vec<(String, String)> {
        let mut v: Vec<(String, String)> = self
            .observations
            .iter()
            .map(|(k, _)| k)
            .chain(self.measurements.iter().map(|(k, _)| k))
            .map(|(s, c)| (s.to_owned(), c.to_owned()))
            .chain(std::iter::once((
                FACT_SYSTEM.to_owned(),
                "outcome".to_owned(),
            )))
            .collect();
        v.sort();
        v.dedup();
        v
    }

    /// A code that records a current medication of `class` and of nothing else (for writing
    /// profiles as records), lowest first.
    pub(crate) fn class_code(&self, class: &str) -> Option<(&str, &str)> {
        self.drug_codes
            .iter()
            .filter(|(_, ings)| {
                ings.iter().all(|&i| {
                    self.ingredients
                        .get(usize::from(i))
                        .is_some_and(|g| g.step.is_none() && g.classes == [class])
                })
            })
            .map(|(k, _)| k)
            .min()
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

#[cfg(test)]
mod tests {
    use super::has_words;

    #[test]
    fn names_match_as_whole_words_only() {
        assert!(has_words("baclofen 10 mg oral tablet", "baclofen"));
        assert!(has_words("tablet [lioresal]", "lioresal"));
        assert!(!has_words("gablofen 50 mcg/ml", "baclofen"));
        assert!(has_words(
            "lioresal intrathecal 0.05 mg",
            "lioresal intrathecal"
        ));
        assert!(!has_words("baclofenx", "baclofen"));
        assert!(!has_words("anything", ""));
    }
}
