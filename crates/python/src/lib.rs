//! `pathway._native`: the Rust core for the `pathway` Python package.
//!
//! One patient's result crosses as JSON text (the same shape as the CLI's `--format json`),
//! which the Python layer turns into dicts. A population crosses as columns: `evaluate_table`
//! reads the Bundles where Python or Arrow holds them (no copy of a `bytes` or an Arrow
//! array), reads and evaluates them on every core with the GIL released, and hands back one
//! Arrow table (one row per patient and step) built in Rust, so Python builds no object per
//! patient. Every call that evaluates releases the GIL.
#![forbid(unsafe_code)]

use std::ops::Range;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use arrow_array::builder::{Int64Builder, ListBuilder, StringBuilder};
use arrow_array::{
    Array, ArrayRef, BinaryArray, BinaryViewArray, LargeBinaryArray, LargeStringArray, RecordBatch,
    RecordBatchIterator, RecordBatchReader, StringArray, StringViewArray, make_array,
};
use arrow_pyarrow::{FromPyArrow, IntoPyArrow};
use arrow_schema::{ArrowError, DataType, Field, Schema, SchemaRef};
use pathway_core::{Date, Profile, Status};
use pathway_fhir::{ReadOptions, Reader, Reading, ValueSets as Vs};
use pathway_rules::{Evaluation, Prepared, RuleSet as Rs, Unrecognized};
use pyo3::create_exception;
use pyo3::exceptions::PyException;
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyDict, PyList, PyString, PyTuple};

/// As `pathway batch`: the Bundle parse allocates a lot, and mimalloc serves it faster than
/// the system allocator. Only Rust's allocations go here; Python's objects are untouched.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

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

const NOT_A_BUNDLE: &str = "a Bundle is given as bytes or str (its JSON)";

/// One Bundle as `bytes`, which Rust reads in place. A `str` is encoded to UTF-8 once (the
/// limited API of Python 3.9 gives no view of a `str`'s UTF-8).
fn as_bytes<'py>(obj: &Bound<'py, PyAny>) -> PyResult<Bound<'py, PyBytes>> {
    if let Ok(b) = obj.cast::<PyBytes>() {
        return Ok(b.clone());
    }
    if let Ok(s) = obj.cast::<PyString>() {
        return s.encode_utf8();
    }
    Err(PathwayError::new_err(NOT_A_BUNDLE))
}

/// The Bundles of a population, held where Python or Arrow keeps them.
#[derive(Default)]
struct Population<'py> {
    /// From a list or tuple: each Bundle as `bytes`.
    objects: Vec<Bound<'py, PyBytes>>,
    /// From pyarrow: the arrays (a chunked array's chunks, in order).
    arrays: Vec<ArrayRef>,
}

impl<'py> Population<'py> {
    /// A list or tuple of `bytes`/`str`, a pyarrow array of strings or binary (anything with
    /// `__arrow_c_array__`), or a pyarrow chunked array of them.
    fn gather(obj: &Bound<'py, PyAny>) -> PyResult<Population<'py>> {
        let mut p = Population::default();
        if let Ok(list) = obj.cast::<PyList>() {
            p.objects = list.iter().map(|o| as_bytes(&o)).collect::<PyResult<_>>()?;
        } else if let Ok(tuple) = obj.cast::<PyTuple>() {
            p.objects = tuple
                .iter()
                .map(|o| as_bytes(&o))
                .collect::<PyResult<_>>()?;
        } else if obj.hasattr("__arrow_c_array__")? {
            p.arrays.push(array(obj)?);
        } else if obj.hasattr("chunks")? && obj.hasattr("__arrow_c_stream__")? {
            for chunk in obj.getattr("chunks")?.try_iter()? {
                p.arrays.push(array(&chunk?)?);
            }
        } else {
            return Err(PathwayError::new_err(
                "the Bundles are given as a list of bytes or str, or a pyarrow array of strings",
            ));
        }
        Ok(p)
    }

    /// Each record's JSON, in input order; `None` for a null in an Arrow array.
    fn records(&self) -> Vec<Option<&[u8]>> {
        let mut out: Vec<Option<&[u8]>> = self.objects.iter().map(|b| Some(b.as_bytes())).collect();
        for a in &self.arrays {
            let a = a.as_any();
            if let Some(a) = a.downcast_ref::<StringArray>() {
                out.extend(a.iter().map(|v| v.map(str::as_bytes)));
            } else if let Some(a) = a.downcast_ref::<LargeStringArray>() {
                out.extend(a.iter().map(|v| v.map(str::as_bytes)));
            } else if let Some(a) = a.downcast_ref::<StringViewArray>() {
                out.extend(a.iter().map(|v| v.map(str::as_bytes)));
            } else if let Some(a) = a.downcast_ref::<BinaryArray>() {
                out.extend(a.iter());
            } else if let Some(a) = a.downcast_ref::<LargeBinaryArray>() {
                out.extend(a.iter());
            } else if let Some(a) = a.downcast_ref::<BinaryViewArray>() {
                out.extend(a.iter());
            }
        }
        out
    }
}

/// A pyarrow array of strings or binary, in place (the Arrow C data interface; checked, UTF-8
/// included, by `arrow-pyarrow`).
fn array(obj: &Bound<'_, PyAny>) -> PyResult<ArrayRef> {
    let data = arrow_data::ArrayData::from_pyarrow_bound(obj)?;
    match data.data_type() {
        DataType::Utf8
        | DataType::LargeUtf8
        | DataType::Utf8View
        | DataType::Binary
        | DataType::LargeBinary
        | DataType::BinaryView => Ok(make_array(data)),
        other => Err(PathwayError::new_err(format!(
            "the Bundles are given as a pyarrow array of strings or binary, not of {other}"
        ))),
    }
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

fn read_options(d: Date, strict: bool) -> ReadOptions {
    if strict {
        ReadOptions::strict(d)
    } else {
        ReadOptions::lenient(d)
    }
}

fn workers(n: Option<usize>) -> usize {
    n.unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
        .max(1)
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

    fn message(self) -> String {
        match self {
            Failure::Fhir(m) | Failure::Profile(m) | Failure::Json(m) => m,
        }
    }
}

/// Reads and evaluates Bundles into reusable buffers (as `pathway batch`'s workers do).
struct Evaluator<'a> {
    rs: &'a Rs,
    reader: &'a Reader<'a>,
    opts: &'a ReadOptions,
    prepared: Prepared,
    eval: Evaluation,
}

impl<'a> Evaluator<'a> {
    fn new(rs: &'a Rs, reader: &'a Reader<'a>, opts: &'a ReadOptions) -> Self {
        Evaluator {
            rs,
            reader,
            opts,
            prepared: Prepared::default(),
            eval: Evaluation::default(),
        }
    }

    /// Reads one Bundle and evaluates it into `self.eval`; on failure, the patient's id when
    /// the Bundle could be read.
    fn run(&mut self, bytes: &[u8]) -> Result<Reading, (Option<String>, Failure)> {
        let reading = self
            .reader
            .read_bundle(bytes, self.opts)
            .map_err(|e| (None, Failure::Fhir(e.to_string())))?;
        if let Err(e) = self.rs.prepare_into(&reading.profile, &mut self.prepared) {
            return Err((Some(reading.patient), Failure::Profile(e.to_string())));
        }
        self.rs.evaluate_into(&self.prepared, &mut self.eval);
        Ok(reading)
    }

    /// One Bundle's full result as JSON, with the reading's warnings and unrecognised records
    /// on it and the patient's id.
    fn json(&mut self, bytes: &[u8]) -> Result<String, Failure> {
        let reading = self
            .reader
            .read_bundle(bytes, self.opts)
            .map_err(|e| Failure::Fhir(e.to_string()))?;
        let mut rec = self
            .rs
            .evaluate(&reading.profile)
            .map_err(|e| Failure::Profile(e.to_string()))?;
        reading.annotate(&mut rec);
        let mut v = serde_json::to_value(&rec).map_err(|e| Failure::Json(e.to_string()))?;
        if let Some(o) = v.as_object_mut() {
            o.insert("patient".into(), reading.patient.into());
        }
        serde_json::to_string(&v).map_err(|e| Failure::Json(e.to_string()))
    }
}

/// Runs `work` over `0..len` in chunks of `chunk` on `workers` threads, each with its own
/// `state`; the chunks' results in order. Chunks are handed out as threads free up, so a
/// slower core (shared with other work) takes fewer.
fn in_chunks<S, T: Send>(
    len: usize,
    workers: usize,
    chunk: usize,
    state: impl Fn() -> S + Sync,
    work: impl Fn(&mut S, Range<usize>) -> T + Sync,
) -> Result<Vec<T>, Failure> {
    let chunk = chunk.max(1);
    let chunks = len.div_ceil(chunk);
    let next = AtomicUsize::new(0);
    let mut done: Vec<(usize, T)> = Vec::with_capacity(chunks);
    let mut failed = false;
    std::thread::scope(|scope| {
        let handles: Vec<_> = (0..workers.clamp(1, chunks.max(1)))
            .map(|_| {
                scope.spawn(|| {
                    let mut s = state();
                    let mut out = Vec::new();
                    loop {
                        let i = next.fetch_add(1, Ordering::Relaxed);
                        if i >= chunks {
                            break out;
                        }
                        let start = i * chunk;
                        out.push((i, work(&mut s, start..len.min(start + chunk))));
                    }
                })
            })
            .collect();
        for h in handles {
            match h.join() {
                Ok(part) => done.extend(part),
                Err(_) => failed = true,
            }
        }
    });
    if failed {
        return Err(Failure::Json("a worker failed".into()));
    }
    done.sort_unstable_by_key(|(i, _)| *i);
    Ok(done.into_iter().map(|(_, t)| t).collect())
}

/// How many records a worker takes at a time: enough chunks to balance the threads, few
/// enough that a large population is a few hundred record batches.
fn chunk_size(len: usize, workers: usize) -> usize {
    (len / (workers * 16).max(1)).clamp(16, 1024)
}

/// One record's outcome as Python sees it: `(result, None)` or `(None, why it failed)`.
type Outcome = (Option<Py<PyAny>>, Option<String>);

/// Summaries of a chunk of records, compact and with no Python in them: made by a worker with
/// the GIL released, turned into dicts by the thread that holds it.
#[derive(Default)]
struct Summaries {
    /// Rule ids and fact names, one after another.
    names: String,
    /// Per step, in order: its status, then how many decisive rules and missing facts.
    steps: Vec<(Status, u16, u16)>,
    /// The rule ids and missing facts of the steps, in order, as ranges of `names`.
    spans: Vec<Range<usize>>,
    records: Vec<Result<Compact, String>>,
}

/// The per-patient part of a summary.
struct Compact {
    patient: String,
    applicable: bool,
    warnings: Vec<String>,
    unrecognized: Vec<Unrecognized>,
}

impl Summaries {
    /// Room for `records` records of `steps` steps (as `Columns::new`: a buffer that outgrows
    /// its room is reallocated, and fresh memory costs page faults).
    fn with_capacity(records: usize, steps: usize) -> Summaries {
        let rows = records * steps;
        Summaries {
            names: String::with_capacity(rows * 32),
            steps: Vec::with_capacity(rows),
            spans: Vec::with_capacity(rows * 2),
            records: Vec::with_capacity(records),
        }
    }

    fn add(&mut self, ev: &mut Evaluator<'_>, bytes: Option<&[u8]>) {
        match bytes.map(|b| ev.run(b)) {
            Some(Ok(reading)) => self.ok(ev, reading),
            Some(Err((_, f))) => self.records.push(Err(f.message())),
            None => self
                .records
                .push(Err("no Bundle: the value is null".into())),
        }
    }

    /// A record read and evaluated into `ev`.
    fn ok(&mut self, ev: &Evaluator<'_>, reading: Reading) {
        for s in ev.eval.steps(ev.rs) {
            let mut name = |n: &str| {
                let start = self.names.len();
                self.names.push_str(n);
                self.spans.push(start..self.names.len());
            };
            let (mut rules, mut missing) = (0u16, 0u16);
            for r in s.reasons().filter(|r| r.decisive()) {
                name(r.rule_id());
                rules = rules.saturating_add(1);
            }
            for m in s.missing() {
                name(m);
                missing = missing.saturating_add(1);
            }
            self.steps.push((s.status, rules, missing));
        }
        self.records.push(Ok(Compact {
            patient: reading.patient,
            applicable: ev.eval.applicable(),
            warnings: reading.warnings.iter().map(ToString::to_string).collect(),
            unrecognized: reading.unrecognized,
        }));
    }
}

/// Builds summary dicts (the keys and values of `evaluate_bundle(..., summary=True)`), with
/// the strings that recur (keys, step ids, statuses, rule ids, fact names) made once.
struct Dicts<'py> {
    py: Python<'py>,
    keys: [Bound<'py, PyString>; 13],
    steps: Vec<Bound<'py, PyString>>,
    statuses: Vec<Bound<'py, PyString>>,
    names: std::collections::HashMap<Box<str>, Bound<'py, PyString>>,
}

impl<'py> Dicts<'py> {
    fn new(py: Python<'py>, rs: &Rs) -> Dicts<'py> {
        let s = |t: &str| PyString::intern(py, t);
        Dicts {
            py,
            keys: [
                "patient",
                "applicable",
                "steps",
                "warnings",
                "unrecognized",
                "step",
                "status",
                "rules",
                "missing",
                "resource",
                "kind",
                "text",
                "codes",
            ]
            .map(s),
            steps: rs.ladder().steps().map(|st| s(st.id.as_str())).collect(),
            statuses: Status::ALL.iter().map(|st| s(st.as_str())).collect(),
            names: std::collections::HashMap::new(),
        }
    }

    fn name(&mut self, n: &str) -> Bound<'py, PyString> {
        if let Some(v) = self.names.get(n) {
            return v.clone();
        }
        let v = PyString::new(self.py, n);
        self.names.insert(n.into(), v.clone());
        v
    }

    /// The next `count` names of a chunk, as a list.
    fn names(
        &mut self,
        all: &str,
        spans: &mut impl Iterator<Item = Range<usize>>,
        count: u16,
    ) -> PyResult<Bound<'py, PyList>> {
        let l = PyList::empty(self.py);
        for span in spans.take(usize::from(count)) {
            l.append(self.name(all.get(span).unwrap_or_default()))?;
        }
        Ok(l)
    }

    /// The chunk's results as `(dict, None)` or `(None, error)`, in order.
    fn build(&mut self, c: Summaries) -> PyResult<Vec<Outcome>> {
        let py = self.py;
        let [
            k_patient,
            k_applicable,
            k_steps,
            k_warnings,
            k_unrecognized,
            k_step,
            k_status,
            k_rules,
            k_missing,
            k_resource,
            k_kind,
            k_text,
            k_codes,
        ] = self.keys.clone();
        let mut steps = c.steps.into_iter();
        let mut spans = c.spans.into_iter();
        let mut out = Vec::with_capacity(c.records.len());
        for rec in c.records {
            let rec = match rec {
                Ok(r) => r,
                Err(e) => {
                    out.push((None, Some(e)));
                    continue;
                }
            };
            let list = PyList::empty(py);
            for step_id in self.steps.clone() {
                let Some((status, rules, missing)) = steps.next() else {
                    break;
                };
                let d = PyDict::new(py);
                d.set_item(&k_step, step_id)?;
                let at = Status::ALL.iter().position(|x| *x == status).unwrap_or(0);
                d.set_item(&k_status, self.statuses.get(at))?;
                d.set_item(&k_rules, self.names(&c.names, &mut spans, rules)?)?;
                d.set_item(&k_missing, self.names(&c.names, &mut spans, missing)?)?;
                list.append(d)?;
            }
            let unrecognized = PyList::empty(py);
            for u in &rec.unrecognized {
                let d = PyDict::new(py);
                d.set_item(&k_resource, &u.resource)?;
                d.set_item(&k_kind, &u.kind)?;
                d.set_item(&k_text, &u.text)?;
                d.set_item(&k_codes, &u.codes)?;
                unrecognized.append(d)?;
            }
            let d = PyDict::new(py);
            d.set_item(&k_patient, rec.patient)?;
            d.set_item(&k_applicable, rec.applicable)?;
            d.set_item(&k_steps, list)?;
            d.set_item(&k_warnings, rec.warnings)?;
            d.set_item(&k_unrecognized, unrecognized)?;
            out.push((Some(d.into_any().unbind()), None));
        }
        Ok(out)
    }
}

/// Summaries of many records as dicts: workers read and evaluate chunks with the GIL released
/// while this thread, holding it only for that, turns finished chunks into dicts.
fn summary_dicts(
    py: Python<'_>,
    rs: &Rs,
    reader: &Reader<'_>,
    opts: &ReadOptions,
    records: &[Option<&[u8]>],
    workers: usize,
) -> PyResult<Vec<Outcome>> {
    let len = records.len();
    let chunk = chunk_size(len, workers);
    let chunks = len.div_ceil(chunk);
    let next = AtomicUsize::new(0);
    let steps = rs.ladder().len();
    let mut dicts = Dicts::new(py, rs);
    let mut parts: Vec<Option<Vec<Outcome>>> = (0..chunks).map(|_| None).collect();
    let (tx, mut rx) = std::sync::mpsc::channel::<(usize, Summaries)>();
    let mut built: PyResult<()> = Ok(());
    let failed = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..workers.clamp(1, chunks.max(1)))
            .map(|_| {
                let tx = tx.clone();
                let next = &next;
                scope.spawn(move || {
                    let mut ev = Evaluator::new(rs, reader, opts);
                    loop {
                        let i = next.fetch_add(1, Ordering::Relaxed);
                        if i >= chunks {
                            break;
                        }
                        let start = i * chunk;
                        let mut s = Summaries::with_capacity(chunk, steps);
                        for b in records
                            .get(start..len.min(start + chunk))
                            .unwrap_or_default()
                        {
                            s.add(&mut ev, *b);
                        }
                        if tx.send((i, s)).is_err() {
                            break;
                        }
                    }
                })
            })
            .collect();
        drop(tx);
        loop {
            // Wait with the GIL released; build with it held.
            let (got, back) = py.detach(move || (rx.recv(), rx));
            rx = back;
            let Ok((i, s)) = got else { break };
            match dicts.build(s) {
                Ok(p) => {
                    if let Some(slot) = parts.get_mut(i) {
                        *slot = Some(p);
                    }
                }
                Err(e) => {
                    built = Err(e);
                    next.store(chunks, Ordering::Relaxed);
                    break;
                }
            }
        }
        drop(rx);
        handles.into_iter().any(|h| h.join().is_err())
    });
    built?;
    if failed || parts.iter().any(Option::is_none) {
        return Err(PathwayError::new_err("a worker failed"));
    }
    Ok(parts.into_iter().flatten().flatten().collect())
}

/// Evaluates one FHIR R4 Bundle (bytes or str) at `date`: the full result as JSON text, or
/// (`summary`) the summary as a dict.
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
) -> PyResult<Py<PyAny>> {
    let bytes = as_bytes(bundle)?;
    let bytes = bytes.as_bytes();
    let opts = read_options(self::date(date)?, strict);
    let vs = value_sets(ruleset, valuesets)?;
    let rs = &*ruleset.rs;
    if !summary {
        let json = py
            .detach(|| {
                let reader = Reader::shared(rs, vs);
                Evaluator::new(rs, &reader, &opts).json(bytes)
            })
            .map_err(Failure::into_py)?;
        return Ok(PyString::new(py, &json).into_any().unbind());
    }
    let one = py
        .detach(|| {
            let reader = Reader::shared(rs, vs);
            let mut ev = Evaluator::new(rs, &reader, &opts);
            let reading = ev.run(bytes).map_err(|(_, f)| f)?;
            let mut s = Summaries::default();
            s.ok(&ev, reading);
            Ok(s)
        })
        .map_err(Failure::into_py)?;
    match Dicts::new(py, rs).build(one)?.pop() {
        Some((Some(d), _)) => Ok(d),
        _ => Err(PathwayError::new_err("no result")),
    }
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
/// per Bundle, in input order, `(result, None)` or `(None, error message)`: the result is the
/// full result as JSON text, or (`summary`) the summary as a dict.
#[pyfunction]
#[allow(clippy::too_many_arguments)]
#[pyo3(signature = (ruleset, bundles, date, valuesets=None, workers=None, strict=false, summary=false))]
fn evaluate_many(
    py: Python<'_>,
    ruleset: &RuleSet,
    bundles: &Bound<'_, PyAny>,
    date: &str,
    valuesets: Option<&ValueSets>,
    workers: Option<usize>,
    strict: bool,
    summary: bool,
) -> PyResult<Vec<Outcome>> {
    let population = Population::gather(bundles)?;
    let records = population.records();
    let opts = read_options(self::date(date)?, strict);
    let vs = value_sets(ruleset, valuesets)?;
    let rs = &*ruleset.rs;
    let n = self::workers(workers);
    let reader = Reader::shared(rs, vs);
    if summary {
        return summary_dicts(py, rs, &reader, &opts, &records, n);
    }
    let parts = py
        .detach(|| {
            in_chunks(
                records.len(),
                n,
                chunk_size(records.len(), n),
                || Evaluator::new(rs, &reader, &opts),
                |ev, range| {
                    records
                        .get(range)
                        .unwrap_or_default()
                        .iter()
                        .map(|b| match b {
                            Some(b) => ev.json(b).map_err(Failure::message),
                            None => Err("no Bundle: the value is null".to_owned()),
                        })
                        .collect::<Vec<_>>()
                },
            )
        })
        .map_err(Failure::into_py)?;
    Ok(parts
        .into_iter()
        .flatten()
        .map(|r| match r {
            Ok(j) => (Some(PyString::new(py, &j).into_any().unbind()), None),
            Err(e) => (None, Some(e)),
        })
        .collect())
}

/// The columns of `evaluate_table`: one row per patient and step, or one row for a record
/// that could not be evaluated.
fn table_schema() -> SchemaRef {
    let list = || DataType::List(Arc::new(Field::new("item", DataType::Utf8, true)));
    Arc::new(Schema::new(vec![
        Field::new("record", DataType::Int64, true),
        Field::new("patient", DataType::Utf8, true),
        Field::new("step", DataType::Utf8, true),
        Field::new("status", DataType::Utf8, true),
        Field::new("rules", list(), true),
        Field::new("missing", list(), true),
        Field::new("error", DataType::Utf8, true),
    ]))
}

/// One chunk's rows, built in place.
struct Columns {
    record: Int64Builder,
    patient: StringBuilder,
    step: StringBuilder,
    status: StringBuilder,
    rules: ListBuilder<StringBuilder>,
    missing: ListBuilder<StringBuilder>,
    error: StringBuilder,
}

impl Columns {
    /// Builders sized for `rows` rows with room to spare (generated patients average 13 bytes
    /// of patient id, 11 of step id, 7 of status, 1.2 rule ids of 18 bytes and 0.15 missing
    /// facts of 13 bytes a row): a builder that outgrows its buffer reallocates it, and fresh
    /// memory for large buffers costs page faults.
    fn new(rows: usize) -> Columns {
        Columns {
            record: Int64Builder::with_capacity(rows),
            patient: StringBuilder::with_capacity(rows, rows * 24),
            step: StringBuilder::with_capacity(rows, rows * 16),
            status: StringBuilder::with_capacity(rows, rows * 8),
            rules: ListBuilder::with_capacity(
                StringBuilder::with_capacity(rows * 2, rows * 40),
                rows,
            ),
            missing: ListBuilder::with_capacity(
                StringBuilder::with_capacity(rows / 2, rows * 8),
                rows,
            ),
            error: StringBuilder::with_capacity(rows, 0),
        }
    }

    /// The rows of one record: its steps, or one row with why it failed.
    fn add(&mut self, ev: &mut Evaluator<'_>, record: usize, bytes: Option<&[u8]>) {
        let record = i64::try_from(record).unwrap_or(i64::MAX);
        let failure = match bytes.map(|b| ev.run(b)) {
            Some(Ok(reading)) => {
                for s in ev.eval.steps(ev.rs) {
                    self.record.append_value(record);
                    self.patient.append_value(&reading.patient);
                    self.step.append_value(s.step.id.as_str());
                    self.status.append_value(s.status.as_str());
                    for r in s.reasons().filter(|r| r.decisive()) {
                        self.rules.values().append_value(r.rule_id());
                    }
                    self.rules.append(true);
                    for m in s.missing() {
                        self.missing.values().append_value(m);
                    }
                    self.missing.append(true);
                    self.error.append_null();
                }
                return;
            }
            Some(Err(failed)) => failed,
            None => (None, Failure::Fhir("no Bundle: the value is null".into())),
        };
        let (patient, why) = failure;
        self.record.append_value(record);
        self.patient.append_option(patient);
        self.step.append_null();
        self.status.append_null();
        self.rules.append(true);
        self.missing.append(true);
        self.error.append_value(why.message());
    }

    fn finish(mut self, schema: SchemaRef) -> Result<RecordBatch, ArrowError> {
        let columns: Vec<ArrayRef> = vec![
            Arc::new(self.record.finish()),
            Arc::new(self.patient.finish()),
            Arc::new(self.step.finish()),
            Arc::new(self.status.finish()),
            Arc::new(self.rules.finish()),
            Arc::new(self.missing.finish()),
            Arc::new(self.error.finish()),
        ];
        RecordBatch::try_new(schema, columns)
    }
}

/// Evaluates a population into a `pyarrow.Table`, one row per patient and step (`record`,
/// `patient`, `step`, `status`, `rules`, `missing`, `error`), on `workers` threads (default:
/// every core) with the GIL released. The Bundles are read where they are held: a list of
/// `bytes` (or `str`, encoded once), or a pyarrow array or chunked array of strings or binary.
#[pyfunction]
#[pyo3(signature = (ruleset, bundles, date, valuesets=None, workers=None, strict=false))]
fn evaluate_table<'py>(
    py: Python<'py>,
    ruleset: &RuleSet,
    bundles: &Bound<'py, PyAny>,
    date: &str,
    valuesets: Option<&ValueSets>,
    workers: Option<usize>,
    strict: bool,
) -> PyResult<Bound<'py, PyAny>> {
    let population = Population::gather(bundles)?;
    let records = population.records();
    let opts = read_options(self::date(date)?, strict);
    let vs = value_sets(ruleset, valuesets)?;
    let rs = &*ruleset.rs;
    let n = self::workers(workers);
    let schema = table_schema();
    let steps = rs.ladder().len().max(1);
    let batches = py
        .detach(|| {
            let reader = Reader::shared(rs, vs);
            in_chunks(
                records.len(),
                n,
                chunk_size(records.len(), n),
                || Evaluator::new(rs, &reader, &opts),
                |ev, range| {
                    let mut cols = Columns::new(range.len() * steps);
                    for i in range {
                        cols.add(ev, i, records.get(i).copied().flatten());
                    }
                    cols.finish(Arc::clone(&schema))
                },
            )
        })
        .map_err(Failure::into_py)?;
    let reader: Box<dyn RecordBatchReader + Send> =
        Box::new(RecordBatchIterator::new(batches, schema));
    reader.into_pyarrow(py)?.call_method0("read_all")
}

#[pymodule]
fn _native(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<RuleSet>()?;
    m.add_class::<ValueSets>()?;
    m.add_function(wrap_pyfunction!(evaluate_bundle, m)?)?;
    m.add_function(wrap_pyfunction!(evaluate_profile, m)?)?;
    m.add_function(wrap_pyfunction!(evaluate_many, m)?)?;
    m.add_function(wrap_pyfunction!(evaluate_table, m)?)?;
    let py = m.py();
    m.add("PathwayError", py.get_type::<PathwayError>())?;
    m.add("RuleSetError", py.get_type::<RuleSetError>())?;
    m.add("ValueSetError", py.get_type::<ValueSetError>())?;
    m.add("FhirError", py.get_type::<FhirError>())?;
    m.add("ProfileError", py.get_type::<ProfileError>())?;
    Ok(())
}
