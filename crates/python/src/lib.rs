//! `pathway._native`: the Rust core for the `pathway` Python package. Results cross as JSON
//! text (the same shape as the CLI's `--format json`); the Python layer turns them into
//! dicts. Every call that evaluates releases the GIL.
#![forbid(unsafe_code)]

use std::sync::Arc;

use pathway_core::{Date, Profile};
use pathway_fhir::{ReadOptions, Reader, ValueSets as Vs};
use pathway_rules::RuleSet as Rs;
use pyo3::create_exception;
use pyo3::exceptions::PyException;
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyString};

create_exception!(
    _native,
    PathwayError,
    PyException,
    "Any error from Pathway."
);
create_exception!(
    _native,
    RuleSetError,
    PathwayError,
    "A rule set that cannot be loaded."
);
create_exception!(
    _native,
    ValueSetError,
    PathwayError,
    "Value sets that cannot be loaded."
);
create_exception!(
    _native,
    FhirError,
    PathwayError,
    "A FHIR record that cannot be read."
);
create_exception!(
    _native,
    ProfileError,
    PathwayError,
    "A profile that does not fit the rule set."
);

/// A loaded rule set.
#[pyclass(frozen, module = "pathway._native")]
struct RuleSet {
    rs: Arc<Rs>,
    /// Its shipped value sets, loaded the first time a Bundle needs them.
    shipped: std::sync::OnceLock<Result<Arc<Vs>, String>>,
}

impl RuleSet {
    fn new(rs: Rs) -> RuleSet {
        RuleSet {
            rs: Arc::new(rs),
            shipped: std::sync::OnceLock::new(),
        }
    }
}

#[pymethods]
impl RuleSet {
    /// The shipped MS spasticity rule set.
    #[staticmethod]
    fn ms_spasticity() -> PyResult<RuleSet> {
        Rs::ms_spasticity()
            .map(RuleSet::new)
            .map_err(|e| RuleSetError::new_err(e.to_string()))
    }

    /// A rule set from a TOML file.
    #[staticmethod]
    fn load(path: &str) -> PyResult<RuleSet> {
        Rs::load(path)
            .map(RuleSet::new)
            .map_err(|e| RuleSetError::new_err(e.to_string()))
    }

    /// The rule set's id.
    #[getter]
    fn id(&self) -> String {
        self.rs.stamp().id.clone()
    }

    /// The rule set's version.
    #[getter]
    fn version(&self) -> String {
        self.rs.stamp().version.clone()
    }

    fn __repr__(&self) -> String {
        format!(
            "RuleSet({} {})",
            self.rs.stamp().id,
            self.rs.stamp().version
        )
    }
}

/// Value sets: how FHIR records carry the rule set's facts.
#[pyclass(frozen, module = "pathway._native")]
struct ValueSets {
    vs: Arc<Vs>,
    ruleset: String,
}

#[pymethods]
impl ValueSets {
    /// The value sets shipped for the MS spasticity rule set.
    #[staticmethod]
    fn ms_spasticity(ruleset: &RuleSet) -> PyResult<ValueSets> {
        Vs::ms_spasticity(&ruleset.rs)
            .map(|vs| ValueSets {
                vs: Arc::new(vs),
                ruleset: ruleset.rs.stamp().id.clone(),
            })
            .map_err(|e| ValueSetError::new_err(e.to_string()))
    }

    /// Value sets from a TOML file, checked against the rule set.
    #[staticmethod]
    fn load(path: &str, ruleset: &RuleSet) -> PyResult<ValueSets> {
        Vs::load(path, &ruleset.rs)
            .map(|vs| ValueSets {
                vs: Arc::new(vs),
                ruleset: ruleset.rs.stamp().id.clone(),
            })
            .map_err(|e| ValueSetError::new_err(e.to_string()))
    }
}

fn text_of(obj: &Bound<'_, PyAny>) -> PyResult<Vec<u8>> {
    if let Ok(b) = obj.downcast::<PyBytes>() {
        return Ok(b.as_bytes().to_vec());
    }
    if let Ok(s) = obj.downcast::<PyString>() {
        return Ok(s.to_cow()?.as_bytes().to_vec());
    }
    Err(PathwayError::new_err(
        "a Bundle is given as bytes or str (its JSON)",
    ))
}

fn date(d: &str) -> PyResult<Date> {
    d.parse::<Date>()
        .map_err(|e| PathwayError::new_err(format!("date `{d}` is not YYYY-MM-DD: {e}")))
}

fn value_sets(rs: &RuleSet, vs: Option<&ValueSets>) -> PyResult<Arc<Vs>> {
    match vs {
        Some(v) if v.ruleset == rs.rs.stamp().id => Ok(Arc::clone(&v.vs)),
        Some(v) => Err(ValueSetError::new_err(format!(
            "the value sets are for rule set {}, not {}",
            v.ruleset,
            rs.rs.stamp().id
        ))),
        None => rs
            .shipped
            .get_or_init(|| {
                Vs::ms_spasticity(&rs.rs)
                    .map(Arc::new)
                    .map_err(|e| e.to_string())
            })
            .clone()
            .map_err(ValueSetError::new_err),
    }
}

/// Why one Bundle could not be evaluated.
enum Failure {
    Fhir(String),
    Profile(String),
    Json(String),
}

impl Failure {
    fn into_py(self) -> PyErr {
        match self {
            Failure::Fhir(m) => FhirError::new_err(m),
            Failure::Profile(m) => ProfileError::new_err(m),
            Failure::Json(m) => PathwayError::new_err(m),
        }
    }
}

/// Reads and evaluates one Bundle: the result as JSON, with the reading's warnings and
/// unrecognised records on it.
fn one(
    rs: &Rs,
    reader: &Reader<'_>,
    bytes: &[u8],
    opts: &ReadOptions,
    summary: bool,
) -> Result<String, Failure> {
    let reading = reader
        .read_bundle(bytes, opts)
        .map_err(|e| Failure::Fhir(e.to_string()))?;
    if summary {
        // Per step: status, decisive rule ids, missing facts (as `pathway batch --detail
        // summary`), from the compact evaluation.
        let p = rs
            .prepare(&reading.profile)
            .map_err(|e| Failure::Profile(e.to_string()))?;
        let mut eval = pathway_rules::Evaluation::default();
        rs.evaluate_into(&p, &mut eval);
        let steps: Vec<serde_json::Value> = eval
            .steps(rs)
            .map(|s| {
                serde_json::json!({
                    "step": s.step.id.as_str(),
                    "status": s.status,
                    "rules": s.reasons().filter(|r| r.decisive()).map(|r| r.rule_id()).collect::<Vec<_>>(),
                    "missing": s.missing().collect::<Vec<_>>(),
                })
            })
            .collect();
        let v = serde_json::json!({
            "patient": reading.patient,
            "applicable": eval.applicable(),
            "steps": steps,
            "warnings": reading.warnings.iter().map(ToString::to_string).collect::<Vec<_>>(),
            "unrecognized": reading.unrecognized,
        });
        return serde_json::to_string(&v).map_err(|e| Failure::Json(e.to_string()));
    }
    let mut rec = rs
        .evaluate(&reading.profile)
        .map_err(|e| Failure::Profile(e.to_string()))?;
    reading.annotate(&mut rec);
    let mut v = serde_json::to_value(&rec).map_err(|e| Failure::Json(e.to_string()))?;
    if let Some(o) = v.as_object_mut() {
        o.insert("patient".into(), reading.patient.into());
    }
    serde_json::to_string(&v).map_err(|e| Failure::Json(e.to_string()))
}

/// Evaluates one FHIR R4 Bundle (bytes or str) at `date`; the result as JSON text.
#[pyfunction]
#[pyo3(signature = (ruleset, bundle, date, valuesets=None, strict=false, summary=false))]
fn evaluate_bundle(
    py: Python<'_>,
    ruleset: &RuleSet,
    bundle: &Bound<'_, PyAny>,
    date: &str,
    valuesets: Option<&ValueSets>,
    strict: bool,
    summary: bool,
) -> PyResult<String> {
    let bytes = text_of(bundle)?;
    let d = self::date(date)?;
    let vs = value_sets(ruleset, valuesets)?;
    let rs = Arc::clone(&ruleset.rs);
    let opts = if strict {
        ReadOptions::strict(d)
    } else {
        ReadOptions::lenient(d)
    };
    py.detach(move || {
        let reader = Reader::shared(&rs, vs);
        one(&rs, &reader, &bytes, &opts, summary)
    })
    .map_err(Failure::into_py)
}

/// Evaluates a Pathway profile given as JSON text; the result as JSON text.
#[pyfunction]
fn evaluate_profile(py: Python<'_>, ruleset: &RuleSet, profile: &str) -> PyResult<String> {
    let p: Profile = serde_json::from_str(profile)
        .map_err(|e| ProfileError::new_err(format!("not a Pathway profile: {e}")))?;
    let rs = Arc::clone(&ruleset.rs);
    py.detach(move || {
        let rec = rs
            .evaluate(&p)
            .map_err(|e| Failure::Profile(e.to_string()))?;
        serde_json::to_string(&rec).map_err(|e| Failure::Json(e.to_string()))
    })
    .map_err(Failure::into_py)
}

/// Evaluates many Bundles on `workers` threads (default: every core) with the GIL released;
/// per Bundle, `(result JSON, None)` or `(None, error message)`, in input order.
#[pyfunction]
#[allow(clippy::too_many_arguments)]
#[pyo3(signature = (ruleset, bundles, date, valuesets=None, workers=None, strict=false, summary=false))]
fn evaluate_many(
    py: Python<'_>,
    ruleset: &RuleSet,
    bundles: Vec<Bound<'_, PyAny>>,
    date: &str,
    valuesets: Option<&ValueSets>,
    workers: Option<usize>,
    strict: bool,
    summary: bool,
) -> PyResult<Vec<(Option<String>, Option<String>)>> {
    let inputs: Vec<Vec<u8>> = bundles.iter().map(text_of).collect::<PyResult<_>>()?;
    let d = self::date(date)?;
    let vs = value_sets(ruleset, valuesets)?;
    let rs = Arc::clone(&ruleset.rs);
    let opts = if strict {
        ReadOptions::strict(d)
    } else {
        ReadOptions::lenient(d)
    };
    let n = workers
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
        .max(1);
    Ok(py.detach(move || {
        let reader = Reader::shared(&rs, vs);
        let chunk = inputs.len().div_ceil(n).max(1);
        let mut out: Vec<(Option<String>, Option<String>)> = Vec::with_capacity(inputs.len());
        std::thread::scope(|scope| {
            let handles: Vec<_> = inputs
                .chunks(chunk)
                .map(|part| {
                    let (rs, reader, opts) = (&rs, &reader, &opts);
                    scope.spawn(move || {
                        part.iter()
                            .map(|b| match one(rs, reader, b, opts, summary) {
                                Ok(j) => (Some(j), None),
                                Err(Failure::Fhir(m) | Failure::Profile(m) | Failure::Json(m)) => {
                                    (None, Some(m))
                                }
                            })
                            .collect::<Vec<_>>()
                    })
                })
                .collect();
            for h in handles {
                match h.join() {
                    Ok(part) => out.extend(part),
                    Err(_) => out.push((None, Some("a worker failed".into()))),
                }
            }
        });
        out
    }))
}

#[pymodule]
fn _native(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<RuleSet>()?;
    m.add_class::<ValueSets>()?;
    m.add_function(wrap_pyfunction!(evaluate_bundle, m)?)?;
    m.add_function(wrap_pyfunction!(evaluate_profile, m)?)?;
    m.add_function(wrap_pyfunction!(evaluate_many, m)?)?;
    let py = m.py();
    m.add("PathwayError", py.get_type::<PathwayError>())?;
    m.add("RuleSetError", py.get_type::<RuleSetError>())?;
    m.add("ValueSetError", py.get_type::<ValueSetError>())?;
    m.add("FhirError", py.get_type::<FhirError>())?;
    m.add("ProfileError", py.get_type::<ProfileError>())?;
    Ok(())
}
