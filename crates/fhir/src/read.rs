//! FHIR R4 resources to a patient [`Profile`] (clinical spec section 3).

use std::borrow::Cow;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt;

use jiff::Timestamp;
use jiff::civil::Date;
use pathway_core::Interval;
use pathway_core::{FactValue, Outcome, Profile, Sex, StepId, StepRecord};
use pathway_rules::{FactKind, Recommendation, RuleSet, Unrecognized};
use serde::Serialize;
use serde::de::DeserializeSeed;
use serde_json::value::RawValue;
use std::marker::PhantomData;

use crate::model::{self, CodeableConcept, Reference, Text};
use crate::valueset::{
    ConditionMap, FACT_SYSTEM, MeasurementMap, ObservationMap, VALUE_SYSTEM, ValueSets, has_words,
    unit_key,
};

/// How to read a record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReadOptions {
    /// The evaluation date: ages and "recent" injuries are computed at it.
    pub date: Date,
    /// Strict: a malformed resource, or one with a `modifierExtension`, is an error. Lenient
    /// (the default for batch work): it is skipped with a warning.
    pub strict: bool,
}

impl ReadOptions {
    /// Strict reading at this date.
    pub fn strict(date: Date) -> Self {
        ReadOptions { date, strict: true }
    }

    /// Lenient reading at this date.
    pub fn lenient(date: Date) -> Self {
        ReadOptions {
            date,
            strict: false,
        }
    }
}

/// Something in the record that was not read as it stands.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Warning {
    /// Index of the Bundle entry (or NDJSON line), when there is one.
    pub entry: Option<usize>,
    /// The resource (`Observation/abc`), when known.
    pub resource: Option<String>,
    /// What happened.
    pub message: String,
}

impl fmt::Display for Warning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (self.entry, &self.resource) {
            (Some(i), Some(r)) => write!(f, "entry {i} ({r}): {}", self.message),
            (Some(i), None) => write!(f, "entry {i}: {}", self.message),
            (None, Some(r)) => write!(f, "{r}: {}", self.message),
            (None, None) => f.write_str(&self.message),
        }
    }
}

/// A record that cannot be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum FhirError {
    /// The input is not JSON.
    #[error("not valid JSON: {message} (line {line}, column {column})")]
    Json {
        /// The parser's message.
        message: String,
        /// Line, from 1.
        line: usize,
        /// Column, from 1.
        column: usize,
    },
    /// The input is JSON but not a Bundle.
    #[error("expected a FHIR Bundle, found resourceType {}", .found.as_deref().unwrap_or("(none)"))]
    NotABundle {
        /// The resourceType found.
        found: Option<String>,
    },
    /// No Patient resource.
    #[error("the record has no Patient resource; a profile needs one")]
    NoPatient,
    /// More than one Patient resource.
    #[error("the record has {count} Patient resources; a profile is for one patient")]
    ManyPatients {
        /// How many.
        count: usize,
    },
    /// The Patient has no usable birthDate (C17).
    #[error("{patient} has no birthDate, so the age cannot be computed")]
    NoBirthDate {
        /// The patient.
        patient: String,
    },
    /// The birthDate is not a FHIR date, or is after the evaluation date.
    #[error("{patient}: birthDate `{value}` {problem}")]
    BadBirthDate {
        /// The patient.
        patient: String,
        /// The value found.
        value: String,
        /// What is wrong.
        problem: &'static str,
    },
    /// A resource does not fit FHIR R4 where Pathway reads it (strict mode).
    #[error("entry {entry} ({resource}): field `{field}`: {message}")]
    Malformed {
        /// Entry index.
        entry: usize,
        /// The resource.
        resource: String,
        /// The field path.
        field: String,
        /// What is wrong.
        message: String,
    },
    /// A resource carries a modifierExtension, which may change its meaning (strict mode).
    #[error(
        "entry {entry} ({resource}) has a modifierExtension that Pathway does not understand; it cannot be read as if it had none"
    )]
    ModifierExtension {
        /// Entry index.
        entry: usize,
        /// The resource.
        resource: String,
    },
}

/// A profile read from FHIR, with what was not read.
#[derive(Debug, Clone, PartialEq)]
pub struct Reading {
    /// The profile.
    pub profile: Profile,
    /// The Patient it is for (`Patient/abc`).
    pub patient: String,
    /// The Patient's name, where the record has one (for reports people read).
    pub patient_name: Option<String>,
    /// Resources skipped or facts made unknown, and why.
    pub warnings: Vec<Warning>,
    /// Resources whose codes matched nothing Pathway reads, or of types it does not read
    /// (ignored and counted).
    pub ignored: usize,
    /// Current medications, active conditions and allergies that matched nothing the value
    /// sets list (clinical spec 3.6 E7): their interactions were not checked.
    pub unrecognized: Vec<Unrecognized>,
}

impl Reading {
    /// Puts what the reading noticed (warnings and unrecognised records) on a
    /// recommendation, where every output format shows it.
    ///
    /// ```
    /// use pathway_core::Date;
    /// use pathway_fhir::{ReadOptions, Reader, ValueSets};
    /// use pathway_rules::RuleSet;
    /// let rs = RuleSet::ms_spasticity().unwrap();
    /// let reader = Reader::new(&rs, ValueSets::ms_spasticity(&rs).unwrap());
    /// let bundle = br#"{"resourceType":"Bundle","entry":[
    ///   {"fullUrl":"urn:uuid:p","resource":{"resourceType":"Patient","id":"p","birthDate":"1980"}},
    ///   {"resource":{"resourceType":"MedicationRequest","id":"m","status":"active","intent":"order",
    ///     "medicationCodeableConcept":{"text":"Sertraline 50 mg tablet"},"subject":{"reference":"urn:uuid:p"}}}]}"#;
    /// let reading = reader.read_bundle(bundle, &ReadOptions::strict(Date::constant(2026, 11, 22))).unwrap();
    /// let mut rec = rs.evaluate(&reading.profile).unwrap();
    /// reading.annotate(&mut rec);
    /// assert_eq!(rec.unrecognized[0].text, "Sertraline 50 mg tablet");
    /// ```
    pub fn annotate(&self, rec: &mut Recommendation) {
        rec.warnings = self.warnings.iter().map(ToString::to_string).collect();
        rec.unrecognized.clone_from(&self.unrecognized);
    }
}

/// One resource of the record, before it is typed.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Raw<'a> {
    pub index: usize,
    pub full_url: Option<&'a str>,
    pub json: &'a RawValue,
}

/// A resource, read (its strings borrowed from the input).
struct Res<'a> {
    index: usize,
    full_url: Option<Text<'a>>,
    /// How the resource is named in provenance and messages (`Observation/abc`).
    label: Cow<'a, str>,
    res: model::Resource<'a>,
    /// Not to be read (a modifierExtension in lenient mode).
    skipped: bool,
}

impl<'a> Res<'a> {
    fn new(index: usize, full_url: Option<Text<'a>>, res: model::Resource<'a>) -> Res<'a> {
        let kind = res.kind();
        // A server's fullUrl ends in `Kind/id` (`https://host/fhir/Observation/1`), and a
        // collection's is often `Kind/id` itself: the label is borrowed from it.
        let borrowed = match (res.id(), &full_url) {
            (Some(id), Some(Text(Cow::Borrowed(u)))) => kind_id_in(u, kind, id),
            _ => None,
        };
        let label = match (borrowed, res.id(), &full_url) {
            (Some(l), _, _) => Cow::Borrowed(l),
            (None, Some(id), _) => {
                // `format!` costs several times this, once per resource.
                let mut l = String::with_capacity(kind.len() + 1 + id.len());
                l.push_str(kind);
                l.push('/');
                l.push_str(id);
                Cow::Owned(l)
            }
            (None, None, Some(u)) => u.0.clone(),
            (None, None, None) => Cow::Owned(format!("{kind} in entry {index}")),
        };
        Res {
            index,
            full_url,
            label,
            res,
            skipped: false,
        }
    }

    fn name(&self) -> String {
        self.label.clone().into_owned()
    }

    /// The strings a reference to this resource may use: its `fullUrl` and `Kind/id` (with
    /// an id, the label is `Kind/id`).
    fn aliases(&self) -> [Option<&str>; 2] {
        [
            self.full_url.as_deref(),
            self.res.id().is_some().then_some(&*self.label),
        ]
    }
}

/// The `Kind/id` at the end of a URL (the whole URL, or after a `/`).
fn kind_id_in<'u>(url: &'u str, kind: &str, id: &str) -> Option<&'u str> {
    let base = url
        .strip_suffix(id)?
        .strip_suffix('/')?
        .strip_suffix(kind)?;
    if base.is_empty() || base.ends_with('/') {
        url.get(base.len()..)
    } else {
        None
    }
}

/// Parses a FHIR date or dateTime to an instant; a date alone is midnight UTC, `YYYY` is
/// 1 January and `YYYY-MM` the first of the month.
pub(crate) fn instant(s: &str) -> Option<Timestamp> {
    if s.contains('T') {
        return s.parse::<Timestamp>().ok();
    }
    date(s).and_then(|d| {
        jiff::tz::Offset::UTC
            .to_timestamp(d.to_datetime(jiff::civil::Time::midnight()))
            .ok()
    })
}

/// Parses a FHIR date (`YYYY`, `YYYY-MM`, `YYYY-MM-DD`; a dateTime's date part).
pub(crate) fn date(s: &str) -> Option<Date> {
    // The common full date, digit by digit (the general way below costs several times it).
    if let Some(&[y1, y2, y3, y4, b'-', m1, m2, b'-', d1, d2]) = s.as_bytes().get(..10)
        && [y1, y2, y3, y4, m1, m2, d1, d2]
            .iter()
            .all(u8::is_ascii_digit)
    {
        let n = |hi: u8, lo: u8| (hi - b'0') * 10 + (lo - b'0');
        let y = i16::from(n(y1, y2)) * 100 + i16::from(n(y3, y4));
        return Date::new(y, n(m1, m2) as i8, n(d1, d2) as i8).ok();
    }
    date_any(s)
}

/// [`date`] for any shape of date.
fn date_any(s: &str) -> Option<Date> {
    let s = s.get(..10.min(s.len()))?;
    let mut parts = s.split('-');
    let y: i16 = parts.next()?.parse().ok()?;
    let m: i8 = parts.next().map_or(Ok(1), str::parse).ok()?;
    let d: i8 = parts.next().map_or(Ok(1), str::parse).ok()?;
    if parts.next().is_some() {
        return None;
    }
    Date::new(y, m, d).ok()
}

/// Whole years from `birth` to `on`.
pub(crate) fn age(birth: Date, on: Date) -> Option<u16> {
    if birth > on {
        return None;
    }
    let mut years = i32::from(on.year()) - i32::from(birth.year());
    if (on.month(), on.day()) < (birth.month(), birth.day()) {
        years -= 1;
    }
    u16::try_from(years).ok()
}

fn status_is(cc: Option<&CodeableConcept>, codes: &[&str]) -> bool {
    cc.is_some_and(|c| codes.iter().any(|x| c.has_code(x)))
}

/// The fact a deceased Patient sets, where the rule set has it (E6).
const DECEASED: &str = "deceased";

/// An observed value of a fact.
struct Observed<'m> {
    at: Option<Timestamp>,
    value: FactValue,
    from: &'m str,
}

/// One step record (MedicationStatement or Procedure).
struct StepRec<'m> {
    /// `fullUrl` and `Kind/id`, as references to it may spell them.
    aliases: [Option<&'m str>; 2],
    step: StepId,
    current: bool,
    declined: bool,
    /// The record, marked when its drug was matched by name.
    from: Cow<'m, str>,
}

impl StepRec<'_> {
    fn is(&self, reference: &str) -> bool {
        self.aliases.contains(&Some(reference))
    }
}

/// One outcome Observation.
struct OutcomeObs<'m> {
    at: Option<Timestamp>,
    focus: Vec<&'m str>,
    outcome: Outcome,
    from: &'m str,
}

/// Reads records into profiles for one rule set and its value sets.
///
/// ```
/// use pathway_core::Date;
/// use pathway_fhir::{ReadOptions, Reader, ValueSets};
/// use pathway_rules::RuleSet;
///
/// let rs = RuleSet::ms_spasticity().unwrap();
/// let reader = Reader::new(&rs, ValueSets::ms_spasticity(&rs).unwrap());
/// let bundle = br#"{"resourceType":"Bundle","type":"collection","entry":[
///   {"fullUrl":"urn:uuid:p","resource":{"resourceType":"Patient","id":"p","gender":"male","birthDate":"1980-05"}},
///   {"resource":{"resourceType":"Condition","id":"ms","clinicalStatus":{"coding":[{"code":"active"}]},
///     "code":{"coding":[{"system":"http://snomed.info/sct","code":"24700007"}]},"subject":{"reference":"urn:uuid:p"}}}]}"#;
/// let reading = reader.read_bundle(bundle, &ReadOptions::strict(Date::constant(2026, 11, 22))).unwrap();
/// assert_eq!(reading.profile.age, 46);
/// assert_eq!(reading.profile.facts["multiple-sclerosis"], true.into());
/// assert_eq!(reading.profile.provenance["multiple-sclerosis"], ["Condition/ms"]);
/// ```
#[derive(Debug, Clone)]
pub struct Reader<'r> {
    rs: &'r RuleSet,
    pub(crate) vs: std::sync::Arc<ValueSets>,
}

impl<'r> Reader<'r> {
    /// A reader for a rule set with its value sets.
    pub fn new(rs: &'r RuleSet, vs: ValueSets) -> Self {
        Reader {
            rs,
            vs: std::sync::Arc::new(vs),
        }
    }

    /// A reader sharing value sets loaded once (making one costs nothing then).
    ///
    /// ```
    /// use std::sync::Arc;
    /// use pathway_fhir::{Reader, ValueSets};
    /// use pathway_rules::RuleSet;
    /// let rs = RuleSet::ms_spasticity().unwrap();
    /// let vs = Arc::new(ValueSets::ms_spasticity(&rs).unwrap());
    /// let a = Reader::shared(&rs, Arc::clone(&vs));
    /// let b = Reader::shared(&rs, vs);
    /// assert_eq!(a.ruleset().stamp(), b.ruleset().stamp());
    /// ```
    pub fn shared(rs: &'r RuleSet, vs: std::sync::Arc<ValueSets>) -> Self {
        Reader { rs, vs }
    }

    /// The rule set.
    pub fn ruleset(&self) -> &'r RuleSet {
        self.rs
    }

    /// Reads one R4 Bundle (`collection`, `searchset`, `transaction`, `document`, ...).
    pub fn read_bundle(&self, json: &[u8], opts: &ReadOptions) -> Result<Reading, FhirError> {
        // The fast path: the whole Bundle in one pass. Anything it cannot read (malformed
        // JSON, a field of the wrong type anywhere) goes the careful way below, which says
        // which entry and field are at fault.
        // UTF-8 is checked once here, not again for every string.
        if let Ok(text) = std::str::from_utf8(json)
            && let Ok(fast) = serde_json::from_str::<model::FastBundle>(text)
            && fast.resource_type.as_deref() == Some("Bundle")
        {
            let mut resources = Vec::with_capacity(fast.entry.len());
            resources.extend(
                fast.entry
                    .into_iter()
                    .enumerate()
                    .filter_map(|(index, e)| Some(Res::new(index, e.full_url, e.resource?))),
            );
            return self.map(resources, Vec::new(), opts);
        }
        let bundle: model::Bundle<'_> =
            serde_json::from_slice(json).map_err(|e| FhirError::Json {
                message: json_message(&e),
                line: e.line(),
                column: e.column(),
            })?;
        if bundle.resource_type.as_deref() != Some("Bundle") {
            return Err(FhirError::NotABundle {
                found: bundle.resource_type,
            });
        }
        let _ = bundle.kind;
        let raws: Vec<Raw<'_>> = bundle
            .entry
            .iter()
            .enumerate()
            .filter_map(|(index, e)| {
                Some(Raw {
                    index,
                    full_url: e.full_url.as_deref(),
                    json: e.resource?,
                })
            })
            .collect();
        self.read_resources(&raws, opts)
    }

    /// Reads a set of resources that belong to one patient, one at a time.
    pub(crate) fn read_resources(
        &self,
        raws: &[Raw<'_>],
        opts: &ReadOptions,
    ) -> Result<Reading, FhirError> {
        let mut warnings = Vec::new();
        let mut resources = Vec::with_capacity(raws.len());
        for raw in raws {
            let kind = match peek_head(raw.json)
                .map_or_else(|| parse(raw.json, PhantomData::<model::Head>), Ok)
            {
                Ok(h) => h.resource_type.unwrap_or_default(),
                Err((field, message)) => {
                    let resource = format!("entry {}", raw.index);
                    skip(opts, &mut warnings, raw.index, resource, field, message)?;
                    continue;
                }
            };
            let full_url = raw.full_url.map(|u| Text(Cow::Borrowed(u)));
            let Some(&read) = model::READ_TYPES.iter().find(|t| **t == kind) else {
                // Not read: only counted.
                let res = model::Resource::unread(kind, None);
                resources.push(Res::new(raw.index, full_url, res));
                continue;
            };
            match parse(raw.json, model::As(read)) {
                Ok(res) => resources.push(Res::new(raw.index, full_url, res)),
                Err((field, message)) => {
                    // Name it by its id, which a field of the wrong type elsewhere does not hide.
                    #[derive(serde::Deserialize)]
                    struct IdOnly {
                        id: Option<String>,
                    }
                    let id = serde_json::from_str::<IdOnly>(raw.json.get())
                        .ok()
                        .and_then(|h| h.id);
                    let named = model::Resource::unread(kind.clone(), id);
                    let resource = Res::new(raw.index, full_url, named).name();
                    if kind == "Patient" {
                        // Without its Patient a record cannot be read at all.
                        return Err(FhirError::Malformed {
                            entry: raw.index,
                            resource,
                            field,
                            message,
                        });
                    }
                    skip(opts, &mut warnings, raw.index, resource, field, message)?;
                }
            }
        }
        self.map(resources, warnings, opts)
    }

    /// Maps read resources to a profile.
    fn map(
        &self,
        resources: Vec<Res<'_>>,
        mut warnings: Vec<Warning>,
        opts: &ReadOptions,
    ) -> Result<Reading, FhirError> {
        let mut resources = resources;
        for res in &mut resources {
            if !res.res.has_modifier_extension() {
                continue;
            }
            if opts.strict {
                return Err(FhirError::ModifierExtension {
                    entry: res.index,
                    resource: res.name(),
                });
            }
            warnings.push(Warning {
                entry: Some(res.index),
                resource: Some(res.name()),
                message: "has a modifierExtension that may change its meaning; skipped".into(),
            });
            res.skipped = true;
        }
        resources.retain(|r| !r.skipped);
        let mut m = Mapper {
            reader: self,
            opts,
            warnings,
            ignored: 0,
            profile: Profile::new(opts.date, 0),
            facts: Vec::with_capacity(resources.len()),
            provenance: Vec::with_capacity(resources.len() + 2),
            patient_refs: [None; 2],
            observed: Vec::with_capacity(resources.len()),
            conditional: Vec::new(),
            records: Vec::new(),
            outcomes: Vec::new(),
            medications: HashMap::new(),
            unrecognized: Vec::new(),
            no_patient: BTreeMap::new(),
            patient_name: None,
        };
        m.patient(&resources)?;
        for r in &resources {
            if let model::Resource::Medication(med) = &r.res {
                for a in r.aliases().into_iter().flatten() {
                    m.medications.insert(a, med);
                }
            }
        }
        for r in &resources {
            use model::Resource as R;
            match &r.res {
                R::Condition(c) => m.condition(r, c),
                R::Observation(o) => m.observation(r, o),
                R::MedicationStatement(ms) => m.medication_statement(r, ms),
                R::MedicationRequest(mr) => m.medication_request(r, mr),
                R::MedicationAdministration(ma) => m.medication_administration(r, ma),
                R::Procedure(p) => m.procedure(r, p),
                R::AllergyIntolerance(a) => m.allergy(r, a),
                R::Patient(_) | R::Medication(_) => {}
                R::Unread(..) => m.ignored += 1,
            }
        }
        Ok(m.finish())
    }
}

/// What draft orders (CDS Hooks `draftOrders`) propose, read with the value sets as a record
/// is read: the steps they order and the medication classes of the drugs they order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Orders {
    /// Per ordered step, the order resources that order it (`MedicationRequest/draft-1`).
    pub steps: BTreeMap<StepId, Vec<String>>,
    /// Per medication class, the order resources whose drug is in it.
    pub classes: BTreeMap<String, Vec<String>>,
    /// Orders whose drug matched nothing the value sets list.
    pub unrecognized: Vec<Unrecognized>,
}

impl Reader<'_> {
    /// Reads draft orders (a Bundle of MedicationRequests, or the resources themselves as a
    /// JSON array) as the steps and medication classes they propose. Each order is read as
    /// if it were active, with the same code and name matching as a record (spec 3.6 E2).
    ///
    /// ```
    /// use pathway_core::Date;
    /// use pathway_fhir::{Reader, ValueSets};
    /// use pathway_rules::RuleSet;
    /// let rs = RuleSet::ms_spasticity().unwrap();
    /// let reader = Reader::new(&rs, ValueSets::ms_spasticity(&rs).unwrap());
    /// let orders = serde_json::json!({"resourceType": "Bundle", "entry": [{"resource": {
    ///     "resourceType": "MedicationRequest", "id": "d1", "status": "draft", "intent": "order",
    ///     "medicationCodeableConcept": {"text": "tizanidine 4 mg tablet"}}}]});
    /// let o = reader.read_orders(&orders, Date::constant(2026, 11, 22)).unwrap();
    /// assert_eq!(o.steps["tizanidine"], ["MedicationRequest/d1"]);
    /// ```
    pub fn read_orders(&self, orders: &serde_json::Value, date: Date) -> Result<Orders, FhirError> {
        let resources: Vec<&serde_json::Value> = match orders {
            serde_json::Value::Array(a) => a.iter().collect(),
            serde_json::Value::Object(o)
                if o.get("resourceType").and_then(|t| t.as_str()) == Some("Bundle") =>
            {
                o.get("entry")
                    .and_then(|e| e.as_array())
                    .map(|e| e.iter().filter_map(|x| x.get("resource")).collect())
                    .unwrap_or_default()
            }
            other => vec![other],
        };
        let mut out = Orders::default();
        for (i, r) in resources.into_iter().enumerate() {
            let kind = r.get("resourceType").and_then(|t| t.as_str()).unwrap_or("");
            if !matches!(
                kind,
                "MedicationRequest" | "MedicationStatement" | "MedicationAdministration"
            ) {
                continue;
            }
            let id = r
                .get("id")
                .and_then(|x| x.as_str())
                .map_or_else(|| format!("order-{i}"), str::to_owned);
            let mut order = r.clone();
            if let Some(o) = order.as_object_mut() {
                o.insert("resourceType".into(), "MedicationRequest".into());
                o.insert("id".into(), serde_json::Value::String(id.clone()));
                o.insert("status".into(), "active".into());
                o.insert("intent".into(), "order".into());
                for k in ["subject", "authoredOn", "doNotPerform"] {
                    o.remove(k);
                }
            }
            let bundle = serde_json::json!({"resourceType": "Bundle", "entry": [
                {"resource": {"resourceType": "Patient", "id": "order", "birthDate": "1900"}},
                {"resource": order}]});
            let reading =
                self.read_bundle(bundle.to_string().as_bytes(), &ReadOptions::lenient(date))?;
            let label = format!("{kind}/{id}");
            for step in reading.profile.steps.keys() {
                out.steps
                    .entry(step.clone())
                    .or_default()
                    .push(label.clone());
            }
            for class in &reading.profile.medications {
                out.classes
                    .entry(class.clone())
                    .or_default()
                    .push(label.clone());
            }
            for mut u in reading.unrecognized {
                u.resource.clone_from(&label);
                out.unrecognized.push(u);
            }
        }
        Ok(out)
    }
}

/// A JSON error in words, without serde_json's position (given separately): a file that
/// ends early says so, rather than what token it expected next.
pub(crate) fn json_message(e: &serde_json::Error) -> String {
    if e.is_eof() {
        return "the input ends before the JSON does (a truncated file?)".to_owned();
    }
    let m = e.to_string();
    m.split(" at line ").next().unwrap_or(&m).to_owned()
}

/// Parses one resource (or its head) with `seed`; only a failure is parsed again, to find the
/// field at fault: `(field path, message)`.
fn parse<'a, S: DeserializeSeed<'a> + Copy>(
    raw: &'a RawValue,
    seed: S,
) -> Result<S::Value, (String, String)> {
    let mut de = serde_json::Deserializer::from_str(raw.get());
    if let Ok(t) = seed.deserialize(&mut de).and_then(|t| de.end().map(|()| t)) {
        return Ok(t);
    }
    let mut de = serde_json::Deserializer::from_str(raw.get());
    let mut track = serde_path_to_error::Track::new();
    let result = seed.deserialize(serde_path_to_error::Deserializer::new(&mut de, &mut track));
    match result.and_then(|t| de.end().map(|()| t)) {
        Ok(t) => Ok(t),
        Err(e) => {
            let path = track.path().to_string();
            let inner = e.to_string();
            // serde_json appends " at line L column C" relative to the resource.
            let message = inner.split(" at line ").next().unwrap_or(&inner).to_owned();
            Err((
                if path == "." {
                    "(resource)".to_owned()
                } else {
                    path
                },
                message,
            ))
        }
    }
}

/// The resource type, read without parsing when it comes first (as FHIR JSON writers put
/// it); `None` means "parse the head".
fn peek_head(raw: &RawValue) -> Option<model::Head> {
    let rest = raw.get().trim_start().strip_prefix('{')?.trim_start();
    let rest = rest
        .strip_prefix("\"resourceType\"")?
        .trim_start()
        .strip_prefix(':')?;
    let rest = rest.trim_start().strip_prefix('"')?;
    let kind = rest.get(..rest.find('"')?)?;
    (!kind.contains('\\')).then(|| model::Head {
        resource_type: Some(kind.to_owned()),
    })
}

/// Reports a resource that could not be read: an error when strict, a warning otherwise.
fn skip(
    opts: &ReadOptions,
    warnings: &mut Vec<Warning>,
    entry: usize,
    resource: String,
    field: String,
    message: String,
) -> Result<(), FhirError> {
    if opts.strict {
        return Err(FhirError::Malformed {
            entry,
            resource,
            field,
            message,
        });
    }
    warnings.push(Warning {
        entry: Some(entry),
        resource: Some(resource),
        message: format!("field `{field}`: {message}; skipped"),
    });
    Ok(())
}

struct Mapper<'m, 'r, 'a> {
    reader: &'m Reader<'r>,
    opts: &'m ReadOptions,
    warnings: Vec<Warning>,
    ignored: usize,
    /// Age, sex, medications, hypersensitivities and steps; facts and provenance are
    /// gathered below and put in at the end.
    profile: Profile,
    /// Facts set so far, in the order set. A record sets a few dozen at most, where a
    /// linear search beats a map, and the profile's map is built once, from sorted input.
    facts: Vec<(&'m str, FactValue)>,
    /// Where each fact came from, as `(key, resource)` in the order found; grouped by key
    /// at the end (a map insert per pair was the single largest cost of mapping).
    provenance: Vec<(Cow<'m, str>, Cow<'m, str>)>,
    /// How references to the Patient may spell it (`fullUrl`, `Patient/id`).
    patient_refs: [Option<&'m str>; 2],
    /// Observations of facts, in record order; grouped by fact at the end.
    observed: Vec<(&'m str, Observed<'m>)>,
    /// Facts from Conditions that count only when no Observation exists (C15).
    conditional: Vec<(&'m str, &'m str)>,
    records: Vec<StepRec<'m>>,
    outcomes: Vec<OutcomeObs<'m>>,
    /// Medication resources by the strings a reference may use.
    medications: HashMap<&'m str, &'m model::Medication<'a>>,
    /// Records that matched nothing (E7).
    unrecognized: Vec<Unrecognized>,
    /// Per resource type, how many records named another patient or none (E6).
    no_patient: BTreeMap<&'static str, usize>,
    patient_name: Option<String>,
}

impl<'m, 'a> Mapper<'m, '_, 'a> {
    fn warn(&mut self, r: &Res<'_>, message: impl Into<String>) {
        self.warnings.push(Warning {
            entry: Some(r.index),
            resource: Some(r.name()),
            message: message.into(),
        });
    }

    fn provenance(&mut self, key: impl Into<Cow<'m, str>>, from: impl Into<Cow<'m, str>>) {
        self.provenance.push((key.into(), from.into()));
    }

    /// The value a fact has been given so far.
    fn fact(&self, fact: &str) -> Option<&FactValue> {
        self.facts.iter().find(|(f, _)| *f == fact).map(|(_, v)| v)
    }

    fn set_fact(&mut self, fact: &'m str, value: FactValue) {
        match self.facts.iter_mut().find(|(f, _)| *f == fact) {
            Some((_, v)) => *v = value,
            None => self.facts.push((fact, value)),
        }
    }

    /// Whether a subject reference points at the patient; warns and says no otherwise.
    fn belongs(
        &mut self,
        r: &Res<'_>,
        subject: Option<&Reference<'_>>,
        kind: &'static str,
    ) -> bool {
        let Some(reference) = subject.and_then(|s| s.reference.as_deref()) else {
            return true;
        };
        let ok = self.patient_refs.into_iter().flatten().any(|p| {
            reference == p
                || (p.starts_with("Patient/")
                    && reference
                        .strip_suffix(p)
                        .is_some_and(|base| base.ends_with('/')))
        });
        if !ok {
            let _ = r;
            self.not_this_patient(kind);
        }
        ok
    }

    fn patient(&mut self, resources: &'m [Res<'a>]) -> Result<(), FhirError> {
        let patients: Vec<(&Res<'_>, &model::Patient<'_>)> = resources
            .iter()
            .filter_map(|r| match &r.res {
                model::Resource::Patient(patient) => Some((r, &**patient)),
                _ => None,
            })
            .collect();
        let (p, patient) = match patients.as_slice() {
            [] => return Err(FhirError::NoPatient),
            [p] => *p,
            _ => {
                return Err(FhirError::ManyPatients {
                    count: patients.len(),
                });
            }
        };
        self.patient_refs = p.aliases();
        let birth = patient
            .birth_date
            .as_deref()
            .ok_or_else(|| FhirError::NoBirthDate { patient: p.name() })?;
        let bad = |problem| FhirError::BadBirthDate {
            patient: p.name(),
            value: birth.to_owned(),
            problem,
        };
        let born =
            date(birth).ok_or_else(|| bad("is not a FHIR date (YYYY, YYYY-MM or YYYY-MM-DD)"))?;
        self.profile.age =
            age(born, self.opts.date).ok_or_else(|| bad("is after the evaluation date"))?;
        self.profile.sex = match patient.gender.as_deref() {
            Some("male") => Sex::Male,
            Some("female") => Sex::Female,
            Some("other") => Sex::Other,
            _ => Sex::Unknown,
        };
        self.patient_name = patient.name.iter().find_map(model::HumanName::display);
        self.provenance("age", &*p.label);
        self.provenance("sex", &*p.label);
        // E6: a deceased patient: the rule set decides what it means (R1).
        let died = patient.deceased_boolean == Some(true)
            || patient
                .deceased_date_time
                .as_deref()
                .and_then(date)
                .is_some_and(|d| d <= self.opts.date);
        if self.reader.rs.fact(DECEASED).is_some() {
            if died {
                self.set_true(DECEASED, &p.label);
            } else if patient.deceased_boolean == Some(false) {
                self.set_fact(DECEASED, FactValue::Bool(false));
            }
        } else if died {
            self.warnings.push(Warning {
                entry: Some(p.index),
                resource: Some(p.name()),
                message: format!(
                    "the patient has died, but rule set {} has no `{DECEASED}` fact to say so",
                    self.reader.rs.stamp().id
                ),
            });
        }
        Ok(())
    }

    fn set_true(&mut self, fact: &'m str, from: &'m str) {
        self.set_fact(fact, FactValue::Bool(true));
        self.provenance(fact, from);
    }

    /// Whether a record's clinical time is after the evaluation date (E8): such a record is
    /// not read, so that an evaluation is a view of the record as it stood on that date.
    fn after_date(&self, times: &[Option<&str>]) -> bool {
        times
            .iter()
            .flatten()
            .next()
            .and_then(|t| date(t))
            .is_some_and(|d| d > self.opts.date)
    }

    /// Notes a resource of a read type that belongs to no patient or another one: counted per
    /// type and reported once per type at the end (E6), not once per record.
    fn not_this_patient(&mut self, kind: &'static str) {
        *self.no_patient.entry(kind).or_default() += 1;
    }

    fn unrecognized(&mut self, r: &Res<'_>, kind: &str, cc: Option<&CodeableConcept<'_>>) {
        let codes = cc
            .map(|c| c.codes().map(|(s, c)| format!("{s}|{c}")).collect())
            .unwrap_or_default();
        self.unrecognized.push(Unrecognized {
            resource: r.name(),
            kind: kind.to_owned(),
            text: cc.map(|c| c.label().to_owned()).unwrap_or_default(),
            codes,
        });
    }

    /// Sets a fact unknown unless a record already made it true.
    fn set_unknown(&mut self, fact: &'m str, from: impl Into<Cow<'m, str>>) {
        if self.fact(fact) != Some(&FactValue::Bool(true)) {
            self.set_fact(fact, FactValue::Unknown);
        }
        self.provenance(fact, from);
    }

    fn condition(&mut self, r: &'m Res<'a>, c: &model::Condition<'_>) {
        if !self.belongs(r, c.subject.as_ref(), "Condition") {
            return;
        }
        if status_is(
            c.verification_status.as_ref(),
            &["refuted", "entered-in-error"],
        ) {
            return;
        }
        let onset = c
            .onset_date_time
            .as_deref()
            .or(c.onset_period.as_ref().and_then(|p| p.start.as_deref()));
        if self.after_date(&[onset, c.recorded_date.as_deref()]) {
            return;
        }
        // E3: active, recurrence and relapse are active; so is an absent clinicalStatus (an
        // encounter diagnosis) with no abatement. An abatement on or before the date ends it.
        let abated_on = c
            .abatement_date_time
            .as_deref()
            .or(c.abatement_period.as_ref().and_then(|p| p.start.as_deref()));
        let abated_undated = c.abatement_age.is_some()
            || c.abatement_range.is_some()
            || c.abatement_string.is_some();
        let abated = abated_on
            .and_then(date)
            .is_some_and(|d| d <= self.opts.date);
        let active = match &c.clinical_status {
            Some(cs) => {
                ["active", "recurrence", "relapse"]
                    .iter()
                    .any(|x| cs.has_code(x))
                    && !abated
            }
            None => abated_on.is_none() && !abated_undated,
        };
        if !active {
            return;
        }
        let possible = status_is(
            c.verification_status.as_ref(),
            &["provisional", "differential", "unconfirmed"],
        );
        let from: &'m str = &r.label;
        let reader = self.reader;
        let mut matched: Vec<&ConditionMap> = Vec::new();
        if let Some(code) = &c.code {
            for (system, code) in code.codes() {
                reader.vs.condition_facts(system, code, |m| matched.push(m));
            }
        }
        if matched.is_empty() {
            // E3.2: a keyword makes the fact possible (unknown), never true.
            let words = self.keywords(c.code.as_ref());
            if words.is_empty() {
                self.ignored += 1;
                self.unrecognized(r, "condition", c.code.as_ref());
                return;
            }
            for (fact, word) in words {
                let label = c.code.as_ref().map_or("", |cc| cc.label());
                let coded = c
                    .code
                    .as_ref()
                    .and_then(|cc| cc.codes().next())
                    .map(|(s, k)| format!(" ({} {k})", system_name(s)))
                    .unwrap_or_default();
                self.set_unknown(fact, format!("{from} (by name: \"{word}\")"));
                self.warn(
                    r,
                    format!("confirm: '{label}'{coded} may be {fact} (the word \"{word}\"); `{fact}` is unknown"),
                );
            }
            return;
        }
        for m in matched {
            if possible {
                self.set_unknown(&m.fact, from);
                self.warn(
                    r,
                    format!(
                        "not confirmed (provisional, differential or unconfirmed): `{}` is unknown",
                        m.fact
                    ),
                );
                continue;
            }
            if m.unless_observed {
                self.conditional.push((&m.fact, from));
                continue;
            }
            match m.within_days {
                None => self.set_true(&m.fact, from),
                Some(days) => match onset.and_then(date) {
                    Some(d) => {
                        let since = (self.opts.date - d).get_days();
                        if since <= i32::try_from(days).unwrap_or(i32::MAX) {
                            self.set_true(&m.fact, from);
                        }
                    }
                    None => {
                        // C16: no onset date, so it may be recent: unknown, never false.
                        if self.fact(&m.fact) != Some(&FactValue::Bool(true)) {
                            self.set_unknown(&m.fact, from);
                            self.warn(r, format!("no onset date: `{}` is unknown", m.fact));
                        }
                    }
                },
            }
        }
    }

    /// The condition facts whose keywords a concept's text or displays have, with the word.
    fn keywords(&self, cc: Option<&CodeableConcept<'_>>) -> Vec<(&'m str, &'m str)> {
        let vs: &'m ValueSets = &self.reader.vs;
        let Some(cc) = cc else { return Vec::new() };
        let mut out: Vec<(&'m str, &'m str)> = Vec::new();
        for text in cc.words() {
            let lower = text.to_lowercase();
            for (word, fact) in &vs.keywords {
                if !out.iter().any(|(f, _)| *f == fact.as_str()) && has_words(&lower, word) {
                    out.push((fact.as_str(), word.as_str()));
                }
            }
        }
        out
    }

    fn observation(&mut self, r: &'m Res<'a>, o: &'m model::Observation<'a>) {
        if !self.belongs(r, o.subject.as_ref(), "Observation") {
            return;
        }
        if !matches!(o.status.as_deref(), Some("final" | "amended" | "corrected")) {
            return;
        }
        let Some(code) = &o.code else {
            self.ignored += 1;
            return;
        };
        let effective = o
            .effective_date_time
            .as_deref()
            .or(o.effective_instant.as_deref())
            .or(o.effective_period.as_ref().and_then(|p| p.start.as_deref()));
        if self.after_date(&[effective]) {
            return;
        }
        let at = effective.and_then(instant);
        if code
            .codes()
            .any(|(s, c)| s == FACT_SYSTEM && c == "outcome")
        {
            let outcome = o.value_codeable_concept.as_ref().and_then(|v| {
                v.codes()
                    .find(|(s, _)| *s == VALUE_SYSTEM)
                    .and_then(|(_, c)| Outcome::parse(c))
            });
            let Some(outcome) = outcome else {
                self.warn(
                    r,
                    "outcome Observation without a urn:pathway:value outcome; skipped",
                );
                return;
            };
            let focus: Vec<&str> = o
                .focus
                .iter()
                .filter_map(|f| f.reference.as_deref())
                .collect();
            if focus.is_empty() {
                self.warn(r, "outcome Observation without a focus; skipped");
                return;
            }
            self.outcomes.push(OutcomeObs {
                at,
                focus,
                outcome,
                from: &r.label,
            });
            return;
        }
        let reader = self.reader;
        if let Some(m) = code
            .codes()
            .find_map(|(s, c)| reader.vs.measurements.get(s, c))
        {
            self.measurement(r, m, o, at);
            return;
        }
        let map: Option<&ObservationMap> = code
            .codes()
            .find_map(|(s, c)| reader.vs.observations.get(s, c));
        let Some(map) = map else {
            self.ignored += 1;
            return;
        };
        if let (Some(days), Some(at)) = (map.valid_days, at) {
            let oldest = self.opts.date - jiff::Span::new().days(i64::from(days));
            if at < start_of(oldest) {
                self.warn(
                    r,
                    format!("`{}` recorded more than {days} days before the evaluation date; not counted", map.fact),
                );
                return;
            }
        }
        match self.value(map, o) {
            Ok((value, note)) => {
                if let Some(note) = note {
                    self.warn(r, note);
                }
                self.observed.push((
                    &map.fact,
                    Observed {
                        at,
                        value,
                        from: &r.label,
                    },
                ));
            }
            Err(Unread::Skip(why)) => self.warn(r, format!("`{}`: {why}; skipped", map.fact)),
            Err(Unread::Unknown(why)) => {
                // E4: the fact is unknown as of this Observation; an older one is never used
                // instead.
                self.warn(
                    r,
                    format!(
                        "`{}`: {why}; the fact is unknown as of this record",
                        map.fact
                    ),
                );
                self.observed.push((
                    &map.fact,
                    Observed {
                        at,
                        value: FactValue::Unknown,
                        from: &r.label,
                    },
                ));
            }
        }
    }

    /// A measurement at or above its threshold, recent enough, makes its fact true (fever
    /// from a body temperature, E4); below it, it says nothing.
    fn measurement(
        &mut self,
        r: &'m Res<'a>,
        m: &'m MeasurementMap,
        o: &model::Observation<'_>,
        at: Option<Timestamp>,
    ) {
        let Some(at) = at else {
            self.warn(
                r,
                format!("`{}`: a measurement without a time; skipped", m.fact),
            );
            return;
        };
        let end = start_of(self.opts.date.tomorrow().unwrap_or(self.opts.date));
        let window = jiff::SignedDuration::from_hours(i64::from(m.within_hours) + 24);
        if end.duration_since(at) > window {
            return;
        }
        let Some(q) = &o.value_quantity else {
            return;
        };
        let (Some(v), Some(unit)) = (q.value, q.code.as_deref().or(q.unit.as_deref())) else {
            return;
        };
        let unit = unit_key(unit);
        let Some((threshold, _)) = m.at_least.iter().find(|(_, u)| *u == unit) else {
            self.warn(
                r,
                format!("`{}`: unit `{unit}` not understood; skipped", m.fact),
            );
            return;
        };
        // A `<` comparator puts the value below what it says: it cannot reach the threshold.
        let below = matches!(q.comparator.as_deref(), Some("<" | "<="));
        if v >= *threshold && !below {
            self.set_true(&m.fact, &r.label);
        }
    }

    /// The fact value an Observation carries, with a note to pass on.
    fn value(
        &self,
        map: &ObservationMap,
        o: &model::Observation<'_>,
    ) -> Result<(FactValue, Option<String>), Unread> {
        if o.data_absent_reason.is_some() {
            return Err(Unread::Unknown(
                "a dataAbsentReason instead of a value".into(),
            ));
        }
        if let Some(cc) = &o.value_codeable_concept {
            for (s, c) in cc.codes() {
                if let Some(v) = map.answers.get(s, c) {
                    return Ok((v.clone(), None));
                }
            }
            if let FactKind::Code { values, .. } = &map.kind {
                for (s, c) in cc.codes() {
                    if s == VALUE_SYSTEM && values.iter().any(|v| v == c) {
                        return Ok((FactValue::Code(c.to_owned()), None));
                    }
                }
                return Err(Unread::Unknown(format!(
                    "coded value is not one of {}",
                    values.join(", ")
                )));
            }
            return Err(Unread::Unknown(format!(
                "coded value `{}` is not one of the answers the value sets list",
                cc.codes()
                    .map(|(s, c)| format!("{s}|{c}"))
                    .collect::<Vec<_>>()
                    .join(", ")
            )));
        }
        let mut note = None;
        let number = match (o.value_integer, &o.value_quantity, &o.value_string) {
            (Some(i), _, _) => Some(Num::Exact(i as f64)),
            (None, Some(q), _) => {
                let unit = q.code.as_deref().or(q.unit.as_deref());
                if !map.units.is_empty() {
                    let key = unit.map(unit_key);
                    let exact = key.as_ref().is_some_and(|k| map.units.contains(k));
                    let approx = key
                        .as_ref()
                        .is_some_and(|k| map.approximate_units.contains(k));
                    if approx {
                        note = Some(format!(
                            "`{}` in `{}` (creatinine clearance) is read against the same thresholds",
                            map.fact,
                            unit.unwrap_or_default()
                        ));
                    } else if !exact {
                        return Err(Unread::Skip(format!(
                            "unit `{}` is not one the value sets list",
                            unit.unwrap_or("(none)"),
                        )));
                    }
                }
                match (q.value, q.comparator.as_deref()) {
                    (Some(v), None) => Some(Num::Exact(v)),
                    (Some(v), Some(c)) => Some(Num::Interval(interval(c, v).ok_or_else(|| {
                        Unread::Unknown(format!("comparator `{c}` not understood"))
                    })?)),
                    (None, _) => None,
                }
            }
            (None, None, Some(text)) if matches!(map.kind, FactKind::Number { .. }) => {
                Some(parse_number(text).ok_or_else(|| {
                    Unread::Unknown(format!("value `{}` is not a number", &**text))
                })?)
            }
            _ => None,
        };
        let value = match (&map.kind, o.value_boolean, number) {
            (FactKind::Bool, Some(b), _) => FactValue::Bool(b),
            (
                FactKind::Number {
                    min, max, integer, ..
                },
                None,
                Some(Num::Exact(n)),
            ) => {
                let out = min.is_some_and(|m| n < m) || max.is_some_and(|m| n > m);
                if out || !n.is_finite() || (*integer && n.fract() != 0.0) {
                    return Err(Unread::Unknown(format!(
                        "value {n} is outside the fact's range"
                    )));
                }
                FactValue::Number(n)
            }
            (
                FactKind::Number {
                    min,
                    max,
                    integer: false,
                    ..
                },
                None,
                Some(Num::Interval(i)),
            ) => {
                // An interval that leaves no value of the fact's range cannot be right.
                let above = i
                    .low()
                    .zip(*max)
                    .is_some_and(|((l, o), m)| l > m || (o && l == m));
                let below = i
                    .high()
                    .zip(*min)
                    .is_some_and(|((h, o), m)| h < m || (o && h == m));
                if above || below {
                    return Err(Unread::Unknown(format!(
                        "value {i} is outside the fact's range"
                    )));
                }
                FactValue::Interval(i)
            }
            _ => {
                return Err(Unread::Unknown(format!(
                    "no value of the fact's type ({})",
                    map.kind.describe()
                )));
            }
        };
        Ok((value, note))
    }

    /// The step a code (with dosage routes) names, if any.
    fn step_for(
        &self,
        cc: &CodeableConcept<'_>,
        routes: &[&CodeableConcept<'_>],
    ) -> Option<StepId> {
        let vs = &self.reader.vs;
        let step = cc.codes().find_map(|(s, c)| vs.steps.get(s, c))?.clone();
        Some(self.by_route(step, routes))
    }

    /// The step a drug step becomes by its route (intrathecal baclofen), or itself.
    fn by_route(&self, step: StepId, routes: &[&CodeableConcept<'_>]) -> StepId {
        for route in &self.reader.vs.routes {
            if route.drug == step
                && routes.iter().any(|r| {
                    r.codes()
                        .any(|(s, c)| route.routes.iter().any(|k| k.0 == s && k.1 == c))
                })
            {
                return route.step.clone();
            }
        }
        step
    }

    /// The concepts that say which drug a medication record is (E2): its own concept, or the
    /// Medication it references (in the Bundle or contained), with its ingredients.
    fn drug_concepts(
        &self,
        concept: Option<&'m CodeableConcept<'a>>,
        reference: Option<&Reference<'_>>,
        contained: &[&'a RawValue],
    ) -> Result<Vec<Concept<'m, 'a>>, String> {
        let mut out = Vec::new();
        if let Some(c) = concept {
            out.push(Concept::Borrowed(c));
            return Ok(out);
        }
        let Some(target) = reference.and_then(|x| x.reference.as_deref()) else {
            return Ok(out);
        };
        self.resolve(target, contained, &mut out, 0)?;
        Ok(out)
    }

    /// Adds the codes of the Medication a reference names, and of its ingredients.
    fn resolve(
        &self,
        target: &str,
        contained: &[&'a RawValue],
        out: &mut Vec<Concept<'m, 'a>>,
        depth: usize,
    ) -> Result<(), String> {
        if depth > 3 {
            return Ok(());
        }
        if let Some(id) = target.strip_prefix('#') {
            for raw in contained {
                let json: &'a str = raw.get();
                let Ok(med) = serde_json::from_str::<model::ContainedMedication<'a>>(json) else {
                    continue;
                };
                if med.resource_type.as_deref() != Some("Medication")
                    || med.id.as_deref() != Some(id)
                {
                    continue;
                }
                if let Some(c) = med.code {
                    out.push(Concept::Owned(c));
                }
                for i in med.ingredient {
                    if let Some(t) = i
                        .item_reference
                        .as_ref()
                        .and_then(|x| x.reference.as_deref())
                    {
                        self.resolve(t, contained, out, depth + 1)?;
                    }
                    if let Some(c) = i.item_codeable_concept {
                        out.push(Concept::Owned(c));
                    }
                }
                return Ok(());
            }
            return Err(format!(
                "medicationReference `{target}` names no contained Medication"
            ));
        }
        let Some(&med): Option<&&'m model::Medication<'a>> = self.medications.get(target) else {
            return Err(format!(
                "medicationReference `{target}` does not resolve to a Medication in the record"
            ));
        };
        if let Some(c) = &med.code {
            out.push(Concept::Borrowed(c));
        }
        for i in &med.ingredient {
            if let Some(c) = &i.item_codeable_concept {
                out.push(Concept::Borrowed(c));
            }
            if let Some(t) = i
                .item_reference
                .as_ref()
                .and_then(|x| x.reference.as_deref())
            {
                self.resolve(t, contained, out, depth + 1)?;
            }
        }
        Ok(())
    }

    /// Which steps and medication classes a drug's concepts name (E2): by code first, then by
    /// name; `by_name` holds the words a name match found.
    fn identify(&self, concepts: &[Concept<'_, '_>], routes: &[&CodeableConcept<'_>]) -> Drug<'m> {
        let vs: &'m ValueSets = &self.reader.vs;
        let mut d = Drug::default();
        let add = |d: &mut Drug<'m>, ing: u16| {
            if let Some(i) = vs.ingredients.get(usize::from(ing)) {
                if let Some(s) = &i.step
                    && !d.steps.contains(s)
                {
                    d.steps.push(s.clone());
                }
                for c in &i.classes {
                    if !d.classes.contains(&c.as_str()) {
                        d.classes.push(c.as_str());
                    }
                }
                d.matched = true;
            }
        };
        for c in concepts {
            for (system, code) in c.get().codes() {
                if let Some(s) = vs.steps.get(system, code) {
                    if !d.steps.contains(s) {
                        d.steps.push(s.clone());
                    }
                    d.matched = true;
                }
                if let Some(ings) = vs.drug_codes.get(system, code) {
                    for &i in ings {
                        add(&mut d, i);
                    }
                }
            }
        }
        if !d.matched {
            for c in concepts {
                for text in c.get().words() {
                    let lower = text.to_lowercase();
                    for (name, ing) in &vs.drug_names {
                        if has_words(&lower, name) {
                            add(&mut d, *ing);
                            if !d.by_name.contains(&name.as_str()) {
                                d.by_name.push(name.as_str());
                            }
                        }
                    }
                }
            }
        }
        // A drug step given by a route that makes it another step (intrathecal baclofen), or
        // a product of that other step: the other step.
        let steps = std::mem::take(&mut d.steps);
        for s in steps {
            let s = self.by_route(s, routes);
            if !d.steps.contains(&s) {
                d.steps.push(s);
            }
        }
        let routed: Vec<StepId> = vs
            .routes
            .iter()
            .filter(|r| d.steps.contains(&r.step))
            .map(|r| r.drug.clone())
            .collect();
        d.steps.retain(|s| !routed.contains(s));
        d
    }

    /// Reads one medication record of any of the three types (E1, E2).
    fn medication(
        &mut self,
        r: &'m Res<'a>,
        concepts: Result<Vec<Concept<'m, 'a>>, String>,
        routes: &[&CodeableConcept<'_>],
        state: MedState,
    ) {
        let concepts = match concepts {
            Ok(c) => c,
            Err(why) => {
                self.warn(r, format!("{why}; skipped"));
                return;
            }
        };
        if state == MedState::Ignored {
            return;
        }
        let drug = self.identify(&concepts, routes);
        let from: Cow<'m, str> = if drug.by_name.is_empty() {
            Cow::Borrowed(&r.label)
        } else {
            Cow::Owned(format!(
                "{} (by name: \"{}\")",
                r.label,
                drug.by_name.join("\", \"")
            ))
        };
        if !drug.matched {
            self.ignored += 1;
            if matches!(state, MedState::Current | MedState::Unknown) {
                let first = concepts.first().map(Concept::get);
                self.unrecognized(r, "medication", first);
            }
            return;
        }
        for step in &drug.steps {
            match state {
                MedState::Current | MedState::Past | MedState::Declined => {
                    self.records.push(StepRec {
                        aliases: r.aliases(),
                        step: step.clone(),
                        current: state == MedState::Current,
                        declined: state == MedState::Declined,
                        from: from.clone(),
                    });
                }
                MedState::Unknown => self.warn(
                    r,
                    format!("status `unknown`: whether {step} is current cannot be told; not read as a step record"),
                ),
                MedState::Ignored => {}
            }
        }
        for class in &drug.classes {
            match state {
                MedState::Current => {
                    self.profile.medications.insert((*class).to_owned());
                    self.provenance(format!("medication:{class}"), from.clone());
                }
                MedState::Unknown => {
                    self.profile.unknown_medications.insert((*class).to_owned());
                    self.provenance(format!("medication:{class}"), from.clone());
                }
                _ => {}
            }
        }
    }

    fn medication_statement(&mut self, r: &'m Res<'a>, ms: &'m model::MedicationStatement<'a>) {
        if !self.belongs(r, ms.subject.as_ref(), "MedicationStatement") {
            return;
        }
        let effective = ms.effective_date_time.as_deref().or(ms
            .effective_period
            .as_ref()
            .and_then(|p| p.start.as_deref()));
        if self.after_date(&[effective, ms.date_asserted.as_deref()]) {
            return;
        }
        let state = match ms.status.as_deref().unwrap_or("") {
            "active" | "intended" | "on-hold" => MedState::Current,
            "completed" | "stopped" => MedState::Past,
            "not-taken" => MedState::Declined,
            "unknown" => MedState::Unknown,
            "entered-in-error" => MedState::Ignored,
            other => {
                self.warn(
                    r,
                    format!("status `{other}` is not a current, past or declined record; skipped"),
                );
                return;
            }
        };
        let routes: Vec<&CodeableConcept<'_>> =
            ms.dosage.iter().filter_map(|d| d.route.as_ref()).collect();
        let concepts = self.drug_concepts(
            ms.medication_codeable_concept.as_ref(),
            ms.medication_reference.as_ref(),
            &ms.contained,
        );
        self.medication(r, concepts, &routes, state);
    }

    fn medication_request(&mut self, r: &'m Res<'a>, mr: &'m model::MedicationRequest<'a>) {
        if !self.belongs(r, mr.subject.as_ref(), "MedicationRequest") {
            return;
        }
        if self.after_date(&[mr.authored_on.as_deref()]) {
            return;
        }
        let proposal = matches!(mr.intent.as_deref(), Some("proposal" | "option"));
        let state = match mr.status.as_deref().unwrap_or("") {
            _ if proposal || mr.do_not_perform == Some(true) => MedState::Ignored,
            "active" | "on-hold" => MedState::Current,
            "completed" | "stopped" => MedState::Past,
            "cancelled" | "draft" | "entered-in-error" | "unknown" => MedState::Ignored,
            other => {
                self.warn(
                    r,
                    format!("status `{other}` is not a current or past order; skipped"),
                );
                return;
            }
        };
        let routes: Vec<&CodeableConcept<'_>> = mr
            .dosage_instruction
            .iter()
            .filter_map(|d| d.route.as_ref())
            .collect();
        let concepts = self.drug_concepts(
            mr.medication_codeable_concept.as_ref(),
            mr.medication_reference.as_ref(),
            &mr.contained,
        );
        self.medication(r, concepts, &routes, state);
    }

    fn medication_administration(
        &mut self,
        r: &'m Res<'a>,
        ma: &'m model::MedicationAdministration<'a>,
    ) {
        if !self.belongs(r, ma.subject.as_ref(), "MedicationAdministration") {
            return;
        }
        let effective = ma.effective_date_time.as_deref().or(ma
            .effective_period
            .as_ref()
            .and_then(|p| p.start.as_deref()));
        if self.after_date(&[effective]) {
            return;
        }
        let state = match ma.status.as_deref().unwrap_or("") {
            "in-progress" => MedState::Current,
            "completed" | "stopped" => MedState::Past,
            "not-done" => MedState::Declined,
            "entered-in-error" | "unknown" => MedState::Ignored,
            other => {
                self.warn(r, format!("status `{other}` is not a current, past or declined administration; skipped"));
                return;
            }
        };
        let routes: Vec<&CodeableConcept<'_>> =
            ma.dosage.iter().filter_map(|d| d.route.as_ref()).collect();
        let concepts = self.drug_concepts(
            ma.medication_codeable_concept.as_ref(),
            ma.medication_reference.as_ref(),
            &ma.contained,
        );
        self.medication(r, concepts, &routes, state);
    }

    fn procedure(&mut self, r: &'m Res<'a>, p: &model::Procedure<'_>) {
        if !self.belongs(r, p.subject.as_ref(), "Procedure") {
            return;
        }
        let performed = p
            .performed_date_time
            .as_deref()
            .or(p.performed_period.as_ref().and_then(|x| x.start.as_deref()));
        if self.after_date(&[performed]) {
            return;
        }
        let step = p
            .code
            .iter()
            .chain(p.used_code.iter())
            .find_map(|c| self.step_for(c, &[]));
        let Some(step) = step else {
            self.ignored += 1;
            return;
        };
        // Section 3.4: in-progress = current; completed or stopped = past; not-done = declined.
        let (current, declined) = match p.status.as_deref().unwrap_or("") {
            "in-progress" => (true, false),
            "not-done" => (false, true),
            "completed" | "stopped" | "on-hold" => (false, false),
            "entered-in-error" | "preparation" => return,
            other => {
                self.warn(
                    r,
                    format!("status `{other}` is not a current, past or declined record; skipped"),
                );
                return;
            }
        };
        self.records.push(StepRec {
            aliases: r.aliases(),
            step,
            current,
            declined,
            from: Cow::Borrowed(&r.label),
        });
    }

    fn allergy(&mut self, r: &'m Res<'a>, a: &model::AllergyIntolerance<'_>) {
        if !self.belongs(r, a.patient.as_ref(), "AllergyIntolerance") {
            return;
        }
        if self.after_date(&[a.recorded_date.as_deref()]) {
            return;
        }
        // E5: counts when clinicalStatus is active or absent; unconfirmed counts too.
        let active = a
            .clinical_status
            .as_ref()
            .is_none_or(|c| c.has_code("active"));
        if !active
            || status_is(
                a.verification_status.as_ref(),
                &["refuted", "entered-in-error"],
            )
        {
            return;
        }
        let vs = &self.reader.vs;
        let Some(cc) = a.code.as_ref() else {
            self.ignored += 1;
            self.unrecognized(r, "allergy", None);
            return;
        };
        if cc.codes().any(|(s, c)| vs.no_allergy.get(s, c).is_some()) {
            return;
        }
        let mut steps: Vec<StepId> = cc
            .codes()
            .filter_map(|(s, c)| vs.allergens.get(s, c).or_else(|| vs.steps.get(s, c)))
            .cloned()
            .collect();
        let drug = self.identify(&[Concept::Borrowed(cc)], &[]);
        // An allergy to a drug is to it whatever the route: baclofen, not intrathecal baclofen.
        for s in drug.steps {
            let s = vs
                .routes
                .iter()
                .find(|r| r.step == s)
                .map_or(s, |r| r.drug.clone());
            steps.push(s);
        }
        steps.sort();
        steps.dedup();
        if steps.is_empty() && !drug.matched {
            self.ignored += 1;
            self.unrecognized(r, "allergy", Some(cc));
            return;
        }
        let from: Cow<'m, str> = if drug.by_name.is_empty() {
            Cow::Borrowed(&r.label)
        } else {
            Cow::Owned(format!(
                "{} (by name: \"{}\")",
                r.label,
                drug.by_name.join("\", \"")
            ))
        };
        for step in steps {
            self.provenance(format!("hypersensitivity:{step}"), from.clone());
            self.profile.hypersensitivities.insert(step);
        }
    }

    fn finish(mut self) -> Reading {
        // Observed facts: the latest effective time wins; disagreeing records at that time make
        // the fact unknown.
        let mut observed = std::mem::take(&mut self.observed);
        // Stable: records of one fact and time stay in record order.
        observed.sort_by(|a, b| a.0.cmp(b.0).then(a.1.at.cmp(&b.1.at)));
        for obs in observed.chunk_by(|a, b| a.0 == b.0) {
            let Some(&(fact, Observed { at: latest, .. })) = obs.last() else {
                continue;
            };
            // Sorted by time, so the latest records are the group's tail.
            let top = obs
                .get(obs.partition_point(|(_, o)| o.at < latest)..)
                .unwrap_or_default();
            let first = top
                .first()
                .map(|(_, o)| o.value.clone())
                .unwrap_or(FactValue::Unknown);
            let agree = top.iter().all(|(_, o)| o.value == first);
            let value = if agree {
                first
            } else {
                let names: Vec<&str> = top.iter().map(|(_, o)| o.from).collect();
                self.warnings.push(Warning {
                    entry: None,
                    resource: None,
                    message: format!(
                        "`{fact}`: records of the same time disagree ({}); the fact is unknown",
                        names.join(", ")
                    ),
                });
                FactValue::Unknown
            };
            // A Condition may already have set a yes/no fact (night spasms): true wins.
            if !(self.fact(fact) == Some(&FactValue::Bool(true)) && value == FactValue::Bool(false))
            {
                self.set_fact(fact, value);
            }
            for (_, o) in top {
                self.provenance(fact, o.from);
            }
        }
        let conditional = std::mem::take(&mut self.conditional);
        for (fact, from) in conditional {
            if self.fact(fact).is_none() {
                self.set_true(fact, from);
            }
        }
        // Step records and outcomes (section 3.4, C5-C7).
        let mut steps: BTreeMap<StepId, (bool, bool)> = BTreeMap::new();
        for rec in &self.records {
            let e = steps.entry(rec.step.clone()).or_default();
            e.0 |= rec.current;
            e.1 |= rec.declined;
        }
        let mut used_outcomes = BTreeSet::new();
        let records = std::mem::take(&mut self.records);
        for (step, (current, declined)) in steps {
            let mine: Vec<&StepRec<'_>> = records
                .iter()
                .filter(|r| r.step == step && (!current || r.current))
                .collect();
            let best = self
                .outcomes
                .iter()
                .enumerate()
                .filter(|(_, o)| o.focus.iter().any(|f| mine.iter().any(|r| r.is(f))))
                .max_by_key(|(i, o)| (o.at, *i))
                .map(|(i, o)| (i, o.outcome, o.from));
            let outcome = match &best {
                Some((i, o, _)) => {
                    used_outcomes.insert(*i);
                    Some(*o)
                }
                None if declined && !current => Some(Outcome::Declined),
                None => None,
            };
            let key = format!("step:{step}");
            for r in records.iter().filter(|r| r.step == step) {
                self.provenance(key.clone(), r.from.clone());
            }
            if let Some((_, _, from)) = best {
                self.provenance(key, from);
            }
            self.profile
                .steps
                .insert(step, StepRecord { current, outcome });
        }
        for (i, o) in self.outcomes.iter().enumerate() {
            let known = records.iter().any(|r| o.focus.iter().any(|f| r.is(f)));
            if !known && !used_outcomes.contains(&i) {
                self.warnings.push(Warning {
                    entry: None,
                    resource: Some(o.from.to_owned()),
                    message: "outcome Observation whose focus is not a step record in the record; skipped".into(),
                });
            }
        }
        let refs = || self.patient_refs.into_iter().flatten();
        let patient = refs()
            .find(|r| r.starts_with("Patient/"))
            .or_else(|| refs().next())
            .unwrap_or_default()
            .to_owned();
        self.profile.facts = self
            .facts
            .into_iter()
            .map(|(f, v)| (f.to_owned(), v))
            .collect();
        for (kind, n) in std::mem::take(&mut self.no_patient) {
            self.warnings.push(Warning {
                entry: None,
                resource: None,
                message: format!(
                    "{n} {kind} record{} of another patient; skipped",
                    if n == 1 { "" } else { "s" }
                ),
            });
        }
        self.profile.provenance = group_provenance(self.provenance);
        Reading {
            profile: self.profile,
            patient,
            warnings: self.warnings,
            ignored: self.ignored,
            unrecognized: self.unrecognized,
            patient_name: self.patient_name,
        }
    }
}

/// A concept that says which drug a record is: borrowed from the record, or parsed from a
/// contained Medication.
enum Concept<'m, 'a> {
    Borrowed(&'m CodeableConcept<'a>),
    Owned(CodeableConcept<'a>),
}

impl<'a> Concept<'_, 'a> {
    fn get(&self) -> &CodeableConcept<'a> {
        match self {
            Concept::Borrowed(c) => c,
            Concept::Owned(c) => c,
        }
    }
}

/// What a medication record was found to be.
#[derive(Debug, Default)]
struct Drug<'m> {
    steps: Vec<StepId>,
    classes: Vec<&'m str>,
    /// Some code or name matched.
    matched: bool,
    /// The names a name match found (empty for a code match).
    by_name: Vec<&'m str>,
}

/// What a medication record's status makes it (E1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum MedState {
    Current,
    Past,
    Declined,
    /// `unknown`: its classes are unknown.
    Unknown,
    Ignored,
}

/// Why an Observation's value was not read.
enum Unread {
    /// The Observation is passed over (an unknown unit): an older one may stand.
    Skip(String),
    /// The fact is unknown as of this Observation (E4).
    Unknown(String),
}

/// A number as recorded: exact, or only an interval.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Num {
    Exact(f64),
    Interval(Interval),
}

/// The interval a comparator and value give (`<` 60: below 60).
fn interval(comparator: &str, v: f64) -> Option<Interval> {
    if !v.is_finite() {
        return None;
    }
    let mut i = Interval::default();
    match comparator {
        "<" => i.lt = Some(v),
        "<=" => i.le = Some(v),
        ">" => i.gt = Some(v),
        ">=" => i.ge = Some(v),
        _ => return None,
    }
    Some(i)
}

/// A number written as text: `55`, `<60`, `> 90`, `>=90`.
fn parse_number(text: &str) -> Option<Num> {
    let t = text.trim();
    let (comparator, rest) = ["<=", ">=", "<", ">"]
        .iter()
        .find_map(|c| t.strip_prefix(c).map(|r| (Some(*c), r)))
        .unwrap_or((None, t));
    let v: f64 = rest.trim().parse().ok()?;
    match comparator {
        None if v.is_finite() => Some(Num::Exact(v)),
        None => None,
        Some(c) => interval(c, v).map(Num::Interval),
    }
}

/// Midnight UTC at the start of a date.
fn start_of(d: Date) -> Timestamp {
    jiff::tz::Offset::UTC
        .to_timestamp(d.to_datetime(jiff::civil::Time::midnight()))
        .unwrap_or(Timestamp::MIN)
}

/// A short name for a code system in messages.
fn system_name(system: &str) -> &str {
    match system {
        "http://snomed.info/sct" => "SNOMED",
        "http://hl7.org/fhir/sid/icd-10-cm" => "ICD-10-CM",
        "http://www.nlm.nih.gov/research/umls/rxnorm" => "RxNorm",
        "http://loinc.org" => "LOINC",
        other => other,
    }
}

/// `(key, resource)` pairs to the profile's provenance: per key, each resource once, in the
/// order first found.
fn group_provenance(mut pairs: Vec<(Cow<'_, str>, Cow<'_, str>)>) -> BTreeMap<String, Vec<String>> {
    // Stable, so each key's resources keep their order.
    pairs.sort_by(|a, b| a.0.cmp(&b.0));
    let mut grouped: Vec<(String, Vec<String>)> = Vec::new();
    for (key, from) in pairs {
        match grouped.last_mut() {
            Some((k, froms)) if **k == *key => {
                if !froms.iter().any(|f| *f == *from) {
                    froms.push(from.into_owned());
                }
            }
            _ => grouped.push((key.into_owned(), vec![from.into_owned()])),
        }
    }
    // Sorted input: the map is built in one pass.
    grouped.into_iter().collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn provenance_is_grouped_by_key_each_resource_once_in_order_found() {
        let pairs = [
            ("spasms", "Observation/b"),
            ("age", "Patient/p"),
            ("spasms", "Observation/a"),
            ("spasms", "Observation/b"),
            ("sex", "Patient/p"),
        ]
        .map(|(k, f)| (Cow::Borrowed(k), Cow::Borrowed(f)))
        .to_vec();
        let p = group_provenance(pairs);
        assert_eq!(
            p.into_iter().collect::<Vec<_>>(),
            [
                ("age".to_owned(), vec!["Patient/p".to_owned()]),
                ("sex".to_owned(), vec!["Patient/p".to_owned()]),
                (
                    "spasms".to_owned(),
                    vec!["Observation/b".to_owned(), "Observation/a".to_owned()]
                ),
            ]
        );
    }

    #[test]
    fn partial_dates_and_ages() {
        let on = Date::constant(2026, 11, 22);
        assert_eq!(date("1980"), Some(Date::constant(1980, 1, 1)));
        assert_eq!(date("1980-05"), Some(Date::constant(1980, 5, 1)));
        assert_eq!(
            date("1980-05-31T10:00:00Z"),
            Some(Date::constant(1980, 5, 31))
        );
        assert_eq!(date("1980-13"), None);
        assert_eq!(date("1980-02-30"), None);
        assert_eq!(date("1980-00-10"), None);
        assert_eq!(date("1980-1-5"), Some(Date::constant(1980, 1, 5)));
        assert_eq!(date("0999-12-31"), Some(Date::constant(999, 12, 31)));
        assert_eq!(date("born"), None);
        assert_eq!(age(Date::constant(1981, 11, 22), on), Some(45));
        assert_eq!(age(Date::constant(1981, 11, 23), on), Some(44));
        assert_eq!(age(Date::constant(2027, 1, 1), on), None);
    }

    #[test]
    fn labels_are_found_at_the_end_of_server_urls() {
        let at = |u| kind_id_in(u, "Observation", "o1");
        assert_eq!(
            at("https://ehr.example/fhir/Observation/o1"),
            Some("Observation/o1")
        );
        assert_eq!(at("Observation/o1"), Some("Observation/o1"));
        assert_eq!(at("https://ehr.example/fhir/XObservation/o1"), None);
        assert_eq!(at("https://ehr.example/fhir/Observation/xo1"), None);
        assert_eq!(at("urn:uuid:o1"), None);
    }

    proptest::proptest! {
        #[test]
        fn full_dates_read_digit_by_digit_as_the_general_way_reads_them(
            s in "[0-9]{4}-[0-9]{2}-[0-9]{2}(T[0-9:]{0,8}Z?)?"
        ) {
            proptest::prop_assert_eq!(date(&s), date_any(&s));
        }
    }

    #[test]
    fn instants_order_dates_and_date_times() {
        let a = instant("2026-11-20").unwrap();
        let b = instant("2026-11-20T08:00:00+01:00").unwrap();
        let c = instant("2026-11-21").unwrap();
        assert!(a < b && b < c);
        assert_eq!(
            instant("2026-11-20T08:00:00"),
            None,
            "a time needs a zone in FHIR"
        );
    }
}

#[cfg(test)]
mod fast_path_tests {
    use super::*;

    #[test]
    fn generated_and_vignette_shaped_bundles_take_the_one_pass_path() {
        let rs = RuleSet::ms_spasticity().unwrap();
        let reader = Reader::new(&rs, crate::ValueSets::ms_spasticity(&rs).unwrap());
        for p in pathway_rules::PatientGenerator::new(&rs, 5).take(50) {
            let b = crate::to_bundle(&reader, &p, "x").to_string();
            let r = serde_json::from_str::<model::FastBundle>(&b);
            assert!(r.is_ok(), "{:?}", r.err());
        }
    }

    const PATIENT: &str = r#"{"fullUrl":"urn:uuid:p","resource":{"resourceType":"Patient","id":"p1","gender":"female","birthDate":"1980-05"}}"#;

    #[test]
    fn a_resource_whose_type_comes_last_is_read_the_careful_way_alike() {
        let rs = RuleSet::ms_spasticity().unwrap();
        let reader = Reader::new(&rs, crate::ValueSets::ms_spasticity(&rs).unwrap());
        let opts = ReadOptions::strict(Date::constant(2026, 11, 22));
        let first = format!(
            r#"{{"resourceType":"Bundle","entry":[{PATIENT},{{"resource":{{"resourceType":"Condition","id":"c1",
              "clinicalStatus":{{"coding":[{{"code":"active"}}]}},
              "code":{{"coding":[{{"system":"http://snomed.info/sct","code":"24700007"}}]}},"subject":{{"reference":"urn:uuid:p"}}}}}}]}}"#
        );
        let last = format!(
            r#"{{"resourceType":"Bundle","entry":[{PATIENT},{{"resource":{{"id":"c1",
              "clinicalStatus":{{"coding":[{{"code":"active"}}]}},
              "code":{{"coding":[{{"system":"http://snomed.info/sct","code":"24700007"}}]}},"subject":{{"reference":"urn:uuid:p"}},
              "resourceType":"Condition"}}}}]}}"#
        );
        assert!(serde_json::from_str::<model::FastBundle>(&first).is_ok());
        assert!(serde_json::from_str::<model::FastBundle>(&last).is_err());
        let a = reader.read_bundle(first.as_bytes(), &opts).unwrap();
        let b = reader.read_bundle(last.as_bytes(), &opts).unwrap();
        assert_eq!(a, b);
        assert_eq!(b.profile.provenance["multiple-sclerosis"], ["Condition/c1"]);
    }

    #[test]
    fn a_field_a_type_does_not_read_cannot_make_it_malformed() {
        // Each type is parsed with only its own fields: a Patient's odd `status` or an
        // Observation's odd `gender` is passed over, as any unknown field is, on both paths.
        let rs = RuleSet::ms_spasticity().unwrap();
        let reader = Reader::new(&rs, crate::ValueSets::ms_spasticity(&rs).unwrap());
        let opts = ReadOptions::strict(Date::constant(2026, 11, 22));
        let bundle = |patient_extra: &str, condition_extra: &str| {
            format!(
                r#"{{"resourceType":"Bundle","entry":[{{"fullUrl":"urn:uuid:p","resource":{{"resourceType":"Patient","id":"p1",
                  "gender":"female","birthDate":"1980-05"{patient_extra}}}}},
                  {{"resource":{{"resourceType":"Condition","id":"c1","clinicalStatus":{{"coding":[{{"code":"active"}}]}},
                  "code":{{"coding":[{{"system":"http://snomed.info/sct","code":"24700007"}}]}},
                  "subject":{{"reference":"urn:uuid:p"}}{condition_extra}}}}}]}}"#
            )
        };
        let plain = reader
            .read_bundle(bundle("", "").as_bytes(), &opts)
            .unwrap();
        let odd = bundle(
            r#","status":5,"focus":"x""#,
            r#","gender":1,"valueBoolean":"no""#,
        );
        assert_eq!(reader.read_bundle(odd.as_bytes(), &opts).unwrap(), plain);
        // Where the type reads the field, a wrong type is still an error naming it.
        let bad = bundle("", r#","onsetDateTime":20"#);
        let err = reader.read_bundle(bad.as_bytes(), &opts).unwrap_err();
        assert!(
            matches!(&err, FhirError::Malformed { entry: 1, field, .. } if field == "onsetDateTime"),
            "{err:?}"
        );
    }

    #[test]
    fn escaped_strings_are_read_like_plain_ones() {
        // Strings are borrowed from the input; escaped ones are unescaped into owned copies.
        let rs = RuleSet::ms_spasticity().unwrap();
        let reader = Reader::new(&rs, crate::ValueSets::ms_spasticity(&rs).unwrap());
        let opts = ReadOptions::strict(Date::constant(2026, 11, 22));
        let plain = br#"{"resourceType":"Bundle","entry":[
          {"fullUrl":"urn:uuid:p","resource":{"resourceType":"Patient","id":"p1","gender":"female","birthDate":"1980-05"}},
          {"resource":{"resourceType":"Condition","id":"c1","clinicalStatus":{"coding":[{"code":"active"}]},
            "code":{"coding":[{"system":"http://snomed.info/sct","code":"24700007"}]},"subject":{"reference":"urn:uuid:p"}}}]}"#;
        let escaped = br#"{"resourceType":"Bundle","entry":[
          {"fullUrl":"urn:uuid:p","resource":{"resourceType":"Patient","id":"p1","gender":"female","birthDate":"1980-05"}},
          {"resource":{"resourceType":"Condition","id":"c1","clinicalStatus":{"coding":[{"code":"active"}]},
            "code":{"coding":[{"system":"http:\/\/snomed.info\/sct","code":"24700007"}]},"subject":{"reference":"urn:uuid:p"}}}]}"#;
        let a = reader.read_bundle(plain, &opts).unwrap();
        let b = reader.read_bundle(escaped, &opts).unwrap();
        assert_eq!(a, b);
        assert_eq!(b.profile.facts["multiple-sclerosis"], FactValue::Bool(true));
        assert_eq!(b.profile.provenance["multiple-sclerosis"], ["Condition/c1"]);
        assert_eq!(b.profile.sex, Sex::Female);
    }
}
