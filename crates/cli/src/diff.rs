//! `pathway diff OLD NEW`: what a rule-set change does: rules added, removed and changed (and
//! the other content that decides statuses), then the patients of a population whose statuses
//! change, grouped by step and transition, with the rules deciding and example patients.
//!
//! The population streams through `stream`'s pipeline (as in `batch`): every patient is
//! evaluated under both rule sets on the workers and only the aggregate is kept (counts per
//! group, the rules deciding, the first few patients of each group in input order), so memory
//! does not grow with the population.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use pathway_core::{Date, Profile, Status};
use pathway_fhir::{BulkExport, ReadOptions, Reader, Reading};
use pathway_rules::{
    Effect, Evaluation, IfUnknown, PatientGenerator, Prepared, Rule, RuleSet, Stamp,
};
use serde::Serialize;
use serde_json::{Map, Value, json};

use crate::Content;
use crate::common::{self, Fail};
use crate::stream::{self, Input, Item, Job};

/// The id of the reason listed when no rule indicates a step (the engine's own).
const NO_INDICATION: &str = "pathway.no-indication";
/// Bad records listed in the JSON report at most (all are counted, and printed as they come).
const FAILURES_LISTED: usize = 100;

/// How `diff` reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// For people.
    Text,
    /// For machines (described in `pathway diff --help`).
    Json,
}

/// The shape of `--format json`, for `pathway diff --help` (the README repeats it).
pub const JSON_HELP: &str = r#"JSON report (--format json), keys in this order:
  old, new      the rule sets' stamps: {"id", "version", "hash"}
  rules         {"added": [RULE], "removed": [RULE], "changed": [RULE + "changes"]}
                RULE: {"id", "effect", "steps", "condition", "if-unknown", "text", "sources"}
                (a changed rule as it is now); "changes": {FIELD: {"old", "new"}} for each
                field that differs (effect, steps, condition, if-unknown, unknown-text, text,
                sources)
  content       other changes that can move statuses: [{"kind": "derived" | "fact" |
                "medication" | "step" | "edge", "id", "change": "added" | "removed" |
                "changed", "old"?, "new"?}]
  population    {"source", "seed"? (generated), "read", "evaluated", "failed", "changed"}
  failures      the first 100 bad records: [{"line"?, "error"}]
  groups        [{"step", "from", "to", "direction", "count", "rules", "before", "examples"}]
                from/to: a status, or "absent" (a step only one rule set has); direction:
                "more-permissive", "less-permissive", "as-permissive", "step-added" or
                "step-removed"; rules/before: [{"id", "patients"}], the rules deciding the new
                (old) status, most patients first; examples: the ids of the group's first
                patients in input order (a Bundle's Patient id, "line N" for a profile, "pN"
                for the Nth generated patient, from 0)
                Groups come in ladder order, then by count (largest first), then by names.

Exit codes: 0 when it ran, whether or not statuses change. 1 when --fail-on-change is given
and some patient's status changes (the report is written first); 1 also when no record of the
population could be evaluated, at the first bad record with --fail-fast, or when a rule set or
input is invalid. 2 usage."#;

pub struct Options {
    pub old: PathBuf,
    pub new: PathBuf,
    /// NDJSON of Bundles or profiles, `-`, or a Bulk Data export folder; `None`: generated.
    pub population: Option<String>,
    pub patients: usize,
    pub seed: u64,
    pub valuesets: Option<PathBuf>,
    pub date: Option<String>,
    pub strict: bool,
    pub fail_fast: bool,
    pub fail_on_change: bool,
    pub jobs: Option<usize>,
    pub format: Format,
    pub out: Option<PathBuf>,
    pub examples: usize,
    pub max_record_bytes: usize,
    pub tmpdir: Option<PathBuf>,
}

fn load(path: &Path) -> Result<RuleSet, Fail> {
    let src = std::fs::read_to_string(path)
        .map_err(|e| Fail::input(format!("{}: {e}", path.display())))?;
    RuleSet::from_toml(&path.display().to_string(), &src).map_err(|e| Fail::input(e.to_string()))
}

// ---------------------------------------------------------------------------------------------
// What changed in the rule set.

/// A rule as the report shows it.
#[derive(Debug, Serialize)]
struct RuleOut<'a> {
    id: &'a str,
    effect: Effect,
    steps: Vec<&'a str>,
    condition: &'a str,
    #[serde(rename = "if-unknown")]
    if_unknown: IfUnknown,
    text: &'a str,
    sources: Vec<&'a str>,
}

impl<'a> RuleOut<'a> {
    fn of(r: &'a Rule) -> Self {
        RuleOut {
            id: r.id(),
            effect: r.effect(),
            steps: r.steps().iter().map(|s| s.as_str()).collect(),
            condition: r.condition(),
            if_unknown: r.if_unknown(),
            text: r.text(),
            sources: r.sources().collect(),
        }
    }

    /// One line: effect, steps, condition and text.
    fn line(&self) -> String {
        format!(
            "{} on {} when `{}`: {}",
            self.effect.as_str(),
            self.steps.join(", "),
            self.condition,
            self.text
        )
    }
}

/// A rule whose id both rule sets have, with what differs.
#[derive(Debug, Serialize)]
struct Changed<'a> {
    #[serde(flatten)]
    rule: RuleOut<'a>,
    changes: Map<String, Value>,
    /// The old version, on one line, for people.
    #[serde(skip)]
    was: String,
}

#[derive(Debug, Default, Serialize)]
struct RuleChanges<'a> {
    added: Vec<RuleOut<'a>>,
    removed: Vec<RuleOut<'a>>,
    changed: Vec<Changed<'a>>,
}

/// Another difference that can move statuses: a derived fact, catalogue fact, medication
/// class, step or edge.
#[derive(Debug, Serialize)]
struct ContentChange {
    kind: &'static str,
    id: String,
    change: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    old: Option<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    new: Option<Value>,
}

/// Every rule of a rule set, the applicability rule first, by id.
fn rules_of(rs: &RuleSet) -> Vec<&Rule> {
    std::iter::once(rs.applicability())
        .chain(rs.rules())
        .collect()
}

/// The fields of two versions of a rule that differ, `{field: {"old", "new"}}`.
fn rule_changes(a: &Rule, b: &Rule) -> Map<String, Value> {
    let (va, vb) = (
        serde_json::to_value(a).unwrap_or_default(),
        serde_json::to_value(b).unwrap_or_default(),
    );
    let mut changes = Map::new();
    if let (Value::Object(fa), Value::Object(fb)) = (va, vb) {
        for (k, old) in &fa {
            let new = fb.get(k).cloned().unwrap_or(Value::Null);
            if k != "id" && *old != new {
                changes.insert(k.replace('_', "-"), json!({"old": old, "new": new}));
            }
        }
    }
    changes
}

fn rule_diff<'a>(a: &'a RuleSet, b: &'a RuleSet) -> RuleChanges<'a> {
    let (ra, rb) = (rules_of(a), rules_of(b));
    let find = |rules: &[&'a Rule], id: &str| rules.iter().copied().find(|r| r.id() == id);
    let mut out = RuleChanges::default();
    for r in &ra {
        if find(&rb, r.id()).is_none() {
            out.removed.push(RuleOut::of(r));
        }
    }
    for r in &rb {
        match find(&ra, r.id()) {
            None => out.added.push(RuleOut::of(r)),
            Some(old) if old != *r => out.changed.push(Changed {
                rule: RuleOut::of(r),
                changes: rule_changes(old, r),
                was: RuleOut::of(old).line(),
            }),
            Some(_) => {}
        }
    }
    out
}

/// Differences between two keyed lists of serialisable things.
fn keyed_diff(
    kind: &'static str,
    old: BTreeMap<String, Value>,
    mut new: BTreeMap<String, Value>,
    out: &mut Vec<ContentChange>,
) {
    let mut changes = Vec::new();
    for (id, a) in old {
        match new.remove(&id) {
            None => changes.push(ContentChange {
                kind,
                id,
                change: "removed",
                old: Some(a),
                new: None,
            }),
            Some(b) if a != b => changes.push(ContentChange {
                kind,
                id,
                change: "changed",
                old: Some(a),
                new: Some(b),
            }),
            Some(_) => {}
        }
    }
    for (id, b) in new {
        changes.push(ContentChange {
            kind,
            id,
            change: "added",
            old: None,
            new: Some(b),
        });
    }
    changes.sort_by(|x, y| x.id.cmp(&y.id));
    out.extend(changes);
}

fn value<T: Serialize>(v: &T) -> Value {
    serde_json::to_value(v).unwrap_or_default()
}

/// Derived facts, catalogue facts, medication classes, steps and edges that differ.
fn content_diff(a: &RuleSet, b: &RuleSet) -> Vec<ContentChange> {
    let mut out = Vec::new();
    let derived = |rs: &RuleSet| {
        rs.derived()
            .iter()
            .map(|d| {
                (
                    d.id.clone(),
                    json!({"condition": d.condition, "text": d.text}),
                )
            })
            .collect()
    };
    keyed_diff("derived", derived(a), derived(b), &mut out);
    let facts = |rs: &RuleSet| {
        rs.facts()
            .iter()
            .map(|f| (f.id.clone(), value(f)))
            .collect()
    };
    keyed_diff("fact", facts(a), facts(b), &mut out);
    let meds = |rs: &RuleSet| {
        rs.medications()
            .iter()
            .map(|(k, v)| (k.clone(), json!(v)))
            .collect()
    };
    keyed_diff("medication", meds(a), meds(b), &mut out);
    let steps = |rs: &RuleSet| {
        rs.ladder()
            .steps()
            .map(|s| (s.id.as_str().to_owned(), value(s)))
            .collect()
    };
    keyed_diff("step", steps(a), steps(b), &mut out);
    let edges = |rs: &RuleSet| {
        let mut m: BTreeMap<String, Value> = BTreeMap::new();
        for (from, to, t) in rs.ladder().edges() {
            let key = format!("{} -> {}", from.id.as_str(), to.id.as_str());
            match m.get_mut(&key) {
                Some(Value::Array(list)) => list.push(value(t)),
                _ => {
                    m.insert(key, json!([value(t)]));
                }
            }
        }
        m
    };
    keyed_diff("edge", edges(a), edges(b), &mut out);
    out
}

/// Whether the two rule sets read a FHIR record into the same profile (same id, facts,
/// medication classes and steps), so that a record need be read once.
fn same_reading(a: &RuleSet, b: &RuleSet) -> bool {
    a.stamp().id == b.stamp().id
        && a.facts() == b.facts()
        && a.medications() == b.medications()
        && a.ladder().steps().eq(b.ladder().steps())
}

/// A generated profile cut to what a rule set's catalogue knows (its facts, classes, steps):
/// a generated patient of the old rule set, evaluated under a new one with another catalogue.
fn fit(p: &Profile, rs: &RuleSet) -> Profile {
    let mut p = p.clone();
    p.facts.retain(|k, _| rs.fact(k).is_some());
    p.medications.retain(|m| rs.medications().contains_key(m));
    p.unknown_medications
        .retain(|m| rs.medications().contains_key(m));
    p.hypersensitivities
        .retain(|s| rs.ladder().step(s.as_str()).is_some());
    p.steps
        .retain(|s, _| rs.ladder().step(s.as_str()).is_some());
    p
}

// ---------------------------------------------------------------------------------------------
// The aggregate: patients whose statuses move, by step and transition.

/// One step whose status differs for one patient.
#[derive(Debug, Clone, PartialEq)]
struct Move<'a> {
    /// The step's place in the report's step order.
    step: u16,
    from: Option<Status>,
    to: Option<Status>,
    /// The rules deciding the new status.
    now: Vec<&'a str>,
    /// The rules that decided the old status.
    before: Vec<&'a str>,
}

/// A status's code in a group key: its place in `Status::ALL`, or 5 for none.
fn code(s: Option<Status>) -> u8 {
    s.and_then(|s| Status::ALL.iter().position(|x| *x == s))
        .map_or(5, |i| i as u8)
}

fn status_name(s: Option<Status>) -> &'static str {
    s.map_or("absent", Status::as_str)
}

/// Patients moving from one status to another on one step.
#[derive(Debug, Clone, PartialEq)]
struct Group<'a> {
    from: Option<Status>,
    to: Option<Status>,
    count: u64,
    /// Rule id -> patients of the group whose new status it decides.
    now: BTreeMap<&'a str, u64>,
    /// Rule id -> patients of the group whose old status it decided.
    before: BTreeMap<&'a str, u64>,
    /// The patients with the smallest places in the input, sorted by place.
    examples: Vec<(u64, String)>,
}

impl Group<'_> {
    /// Keeps the patient at `place` if it is among the `keep` first.
    fn example(&mut self, place: u64, patient: impl Into<String>, keep: usize) {
        if keep == 0
            || (self.examples.len() >= keep && self.examples.last().is_some_and(|l| l.0 < place))
        {
            return;
        }
        let at = self.examples.partition_point(|e| e.0 < place);
        self.examples.insert(at, (place, patient.into()));
        self.examples.truncate(keep);
    }

    fn direction(&self) -> &'static str {
        match (self.from, self.to) {
            (None, _) => "step-added",
            (_, None) => "step-removed",
            (Some(a), Some(b)) => match b.permissiveness().cmp(&a.permissiveness()) {
                std::cmp::Ordering::Greater => "more-permissive",
                std::cmp::Ordering::Less => "less-permissive",
                std::cmp::Ordering::Equal => "as-permissive",
            },
        }
    }
}

/// What `diff` keeps of a population: bounded by the number of groups (steps x statuses
/// squared), whatever the number of patients.
#[derive(Debug, Clone, PartialEq)]
struct Tally<'a> {
    /// Example patients kept per group.
    keep: usize,
    evaluated: u64,
    changed: u64,
    groups: BTreeMap<(u16, u8, u8), Group<'a>>,
}

impl<'a> Tally<'a> {
    fn new(keep: usize) -> Self {
        Tally {
            keep,
            evaluated: 0,
            changed: 0,
            groups: BTreeMap::new(),
        }
    }

    /// Counts one patient evaluated (at `place` in the input), with the steps that moved.
    fn add(&mut self, place: u64, patient: &str, moves: Vec<Move<'a>>) {
        self.evaluated += 1;
        self.changed += u64::from(!moves.is_empty());
        for m in moves {
            let g = self
                .groups
                .entry((m.step, code(m.from), code(m.to)))
                .or_insert_with(|| Group {
                    from: m.from,
                    to: m.to,
                    count: 0,
                    now: BTreeMap::new(),
                    before: BTreeMap::new(),
                    examples: Vec::new(),
                });
            g.count += 1;
            for r in m.now {
                *g.now.entry(r).or_default() += 1;
            }
            for r in m.before {
                *g.before.entry(r).or_default() += 1;
            }
            g.example(place, patient, self.keep);
        }
    }

    /// Adds another part of the population (in any order: the result is the same).
    fn merge(&mut self, other: Tally<'a>) {
        self.evaluated += other.evaluated;
        self.changed += other.changed;
        for (key, o) in other.groups {
            match self.groups.get_mut(&key) {
                None => {
                    let mut o = o;
                    o.examples.truncate(self.keep);
                    self.groups.insert(key, o);
                }
                Some(g) => {
                    g.count += o.count;
                    for (r, n) in o.now {
                        *g.now.entry(r).or_default() += n;
                    }
                    for (r, n) in o.before {
                        *g.before.entry(r).or_default() += n;
                    }
                    for (place, p) in o.examples {
                        g.example(place, p, self.keep);
                    }
                }
            }
        }
    }

    /// The groups in report order: by step, then count (largest first), then from and to.
    fn sorted(&self) -> Vec<(u16, &Group<'a>)> {
        let mut v: Vec<(u16, &Group<'a>)> = self.groups.iter().map(|(k, g)| (k.0, g)).collect();
        v.sort_by(|(sa, a), (sb, b)| {
            sa.cmp(sb)
                .then(b.count.cmp(&a.count))
                .then(status_name(a.from).cmp(status_name(b.from)))
                .then(status_name(a.to).cmp(status_name(b.to)))
        });
        v
    }
}

/// Rule ids with their patients, most patients first, then by id.
fn ranked<'a>(m: &BTreeMap<&'a str, u64>) -> Vec<(&'a str, u64)> {
    let mut v: Vec<(&str, u64)> = m.iter().map(|(r, n)| (*r, *n)).collect();
    v.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(b.0)));
    v
}

// ---------------------------------------------------------------------------------------------
// The population, on every core.

/// A step of either rule set, with its place in each ladder; in the new ladder's order, then
/// the steps only the old one has.
struct StepPair<'a> {
    id: &'a str,
    old: Option<usize>,
    new: Option<usize>,
}

fn step_pairs<'a>(a: &'a RuleSet, b: &'a RuleSet) -> Vec<StepPair<'a>> {
    let mut v: Vec<StepPair<'a>> = b
        .ladder()
        .steps()
        .enumerate()
        .map(|(i, s)| StepPair {
            id: s.id.as_str(),
            old: a.ladder().position(s.id.as_str()),
            new: Some(i),
        })
        .collect();
    for (i, s) in a.ladder().steps().enumerate() {
        if b.ladder().step(s.id.as_str()).is_none() {
            v.push(StepPair {
                id: s.id.as_str(),
                old: Some(i),
                new: None,
            });
        }
    }
    v
}

/// The FHIR readers: the old rule set's, and the new one's when it reads records differently.
struct Readers<'a> {
    old: Reader<'a>,
    new: Option<Reader<'a>>,
}

fn readers<'a>(
    a: &'a RuleSet,
    b: &'a RuleSet,
    valuesets: Option<&Path>,
) -> Result<Readers<'a>, String> {
    let content = Content {
        ruleset: None,
        valuesets: valuesets.map(Path::to_owned),
    };
    let vs = |rs: &RuleSet, which: &str| {
        common::valuesets(&content, rs).map_err(|f| format!("{which} rule set: {}", f.message))
    };
    let old = Reader::new(a, vs(a, "the old")?);
    let new = if same_reading(a, b) {
        None
    } else {
        Some(Reader::new(b, vs(b, "the new")?))
    };
    Ok(Readers { old, new })
}

/// A record already read.
enum Record {
    /// A patient of a Bulk Data export, read for the old rule set and, when the new one reads
    /// records differently, for the new one.
    Bulk(Box<Reading>, Option<Box<Reading>>),
    /// The nth generated patient.
    Generated(u64, Profile),
}

/// What every worker shares.
struct Ctx<'a> {
    old: &'a RuleSet,
    new: &'a RuleSet,
    old_name: &'a str,
    new_name: &'a str,
    readers: &'a Result<Readers<'a>, String>,
    opts: ReadOptions,
    /// `--date`, which a profile's own date gives way to.
    date: Option<Date>,
    source: &'a str,
    pairs: &'a [StepPair<'a>],
    /// Whether the two catalogues differ (generated patients are then fitted to each).
    fit: bool,
    keep: usize,
}

/// A chunk's results: its part of the aggregate, and its bad records in input order.
struct Part<'a> {
    tally: Tally<'a>,
    failures: Vec<(Option<usize>, String)>,
}

/// One worker's reusable buffers.
struct Worker<'a> {
    ctx: &'a Ctx<'a>,
    prepared: [Prepared; 2],
    eval: [Evaluation; 2],
    statuses: [Vec<Status>; 2],
}

/// A Patient's id from its reference (`Patient/abc` is `abc`).
fn patient_id(reference: &str) -> String {
    reference
        .strip_prefix("Patient/")
        .unwrap_or(reference)
        .to_owned()
}

/// A rule id borrowed from the rule set (it outlives the evaluation's buffers).
fn intern<'a>(rs: &'a RuleSet, id: &str) -> &'a str {
    if rs.applicability().id() == id {
        return rs.applicability().id();
    }
    rs.rule(id).map_or(NO_INDICATION, Rule::id)
}

/// The rules deciding a step's status.
fn decisive<'a>(rs: &'a RuleSet, eval: &Evaluation, step: Option<usize>) -> Vec<&'a str> {
    let Some(i) = step else { return Vec::new() };
    eval.steps(rs)
        .nth(i)
        .map(|s| {
            s.reasons()
                .filter(|r| r.decisive())
                .map(|r| intern(rs, r.rule_id()))
                .collect()
        })
        .unwrap_or_default()
}

impl<'a> Worker<'a> {
    fn chunk(&mut self, job: Job<Record>) -> Part<'a> {
        let mut part = Part {
            tally: Tally::new(self.ctx.keep),
            failures: Vec::new(),
        };
        let first = job.first;
        for (i, (line, item)) in job.items.into_iter().enumerate() {
            if let Err(e) = self.record(first + i as u64, line, item, &job.buf, &mut part.tally) {
                part.failures.push((line, e));
            }
        }
        part
    }

    /// Evaluates one record under both rule sets and counts it.
    fn record(
        &mut self,
        place: u64,
        line: Option<usize>,
        item: Item<Record>,
        buf: &[u8],
        tally: &mut Tally<'a>,
    ) -> Result<(), String> {
        let ctx = self.ctx;
        let at = || match line {
            Some(l) => format!("{}:{l}", ctx.source),
            None => ctx.source.to_owned(),
        };
        let (id, a, b): (String, Profile, Option<Profile>) = match item {
            Item::Failed(m) => return Err(m),
            Item::Line(range) => {
                let bytes = buf.get(range).unwrap_or_default();
                let trimmed = bytes.trim_ascii_start();
                let kind = if trimmed.starts_with(br#"{"resourceType":"Bundle""#) {
                    Some("Bundle".to_owned())
                } else {
                    common::record_kind(bytes).map_err(|e| {
                        format!(
                            "{}: not valid JSON: {} (column {})",
                            at(),
                            common::json_problem(&e),
                            e.column()
                        )
                    })?
                };
                match kind.as_deref() {
                    Some("Bundle") => {
                        let readers = ctx
                            .readers
                            .as_ref()
                            .map_err(|e| format!("{}: cannot read a FHIR Bundle: {e}", at()))?;
                        let ra = readers
                            .old
                            .read_bundle(bytes, &ctx.opts)
                            .map_err(|e| format!("{}: {e}", at()))?;
                        let rb = match &readers.new {
                            Some(r) => Some(
                                r.read_bundle(bytes, &ctx.opts)
                                    .map_err(|e| format!("{}: {e}", at()))?
                                    .profile,
                            ),
                            None => None,
                        };
                        (patient_id(&ra.patient), ra.profile, rb)
                    }
                    Some(other) => {
                        return Err(format!(
                            "{}: expected a FHIR Bundle or a Pathway profile, found a FHIR {other}",
                            at()
                        ));
                    }
                    None => {
                        let mut p: Profile = serde_json::from_slice(bytes)
                            .map_err(|e| format!("{}: not a Pathway profile: {e}", at()))?;
                        if let Some(d) = ctx.date {
                            p.date = d;
                        }
                        let id =
                            line.map_or_else(|| format!("record {place}"), |l| format!("line {l}"));
                        (id, p, None)
                    }
                }
            }
            Item::Read(r) => match *r {
                Record::Bulk(a, b) => (patient_id(&a.patient), a.profile, b.map(|r| r.profile)),
                Record::Generated(n, p) if ctx.fit => {
                    (format!("p{n}"), fit(&p, ctx.old), Some(fit(&p, ctx.new)))
                }
                Record::Generated(n, p) => (format!("p{n}"), p, None),
            },
        };
        let pb = b.as_ref().unwrap_or(&a);
        // A profile is named by its line, which `at` gives already.
        let who = if line.is_some() && id.starts_with("line ") {
            String::new()
        } else {
            format!(" {id}:")
        };
        let [pa_, pb_] = &mut self.prepared;
        ctx.old.prepare_into(&a, pa_).map_err(|e| {
            format!(
                "{}:{who} the old rule set ({}) cannot evaluate it: {e}",
                at(),
                ctx.old_name
            )
        })?;
        ctx.new.prepare_into(pb, pb_).map_err(|e| {
            format!(
                "{}:{who} the new rule set ({}) cannot evaluate it: {e}",
                at(),
                ctx.new_name
            )
        })?;
        let [ea, eb] = &mut self.eval;
        ctx.old.evaluate_into(pa_, ea);
        ctx.new.evaluate_into(pb_, eb);
        let [sa, sb] = &mut self.statuses;
        sa.clear();
        sa.extend(ea.statuses());
        sb.clear();
        sb.extend(eb.statuses());
        let mut moves = Vec::new();
        for (k, pair) in ctx.pairs.iter().enumerate() {
            let from = pair.old.and_then(|i| sa.get(i)).copied();
            let to = pair.new.and_then(|i| sb.get(i)).copied();
            if from != to {
                moves.push(Move {
                    step: u16::try_from(k).unwrap_or(u16::MAX),
                    from,
                    to,
                    now: decisive(ctx.new, eb, pair.new),
                    before: decisive(ctx.old, ea, pair.old),
                });
            }
        }
        tally.add(place, &id, moves);
        Ok(())
    }
}

// ---------------------------------------------------------------------------------------------
// The report.

#[derive(Serialize)]
struct RankedRule<'a> {
    id: &'a str,
    patients: u64,
}

#[derive(Serialize)]
struct GroupOut<'a> {
    step: &'a str,
    from: &'static str,
    to: &'static str,
    direction: &'static str,
    count: u64,
    rules: Vec<RankedRule<'a>>,
    before: Vec<RankedRule<'a>>,
    examples: Vec<&'a str>,
}

#[derive(Serialize)]
struct PopulationOut<'a> {
    source: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    seed: Option<u64>,
    read: u64,
    evaluated: u64,
    failed: u64,
    changed: u64,
}

#[derive(Serialize)]
struct FailureOut<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    line: Option<usize>,
    error: &'a str,
}

#[derive(Serialize)]
struct Report<'a> {
    old: &'a Stamp,
    new: &'a Stamp,
    rules: &'a RuleChanges<'a>,
    content: &'a [ContentChange],
    population: PopulationOut<'a>,
    failures: Vec<FailureOut<'a>>,
    groups: Vec<GroupOut<'a>>,
}

fn ranked_out<'a>(m: &BTreeMap<&'a str, u64>) -> Vec<RankedRule<'a>> {
    ranked(m)
        .into_iter()
        .map(|(id, patients)| RankedRule { id, patients })
        .collect()
}

/// The first characters of a content hash, for people.
fn short(hash: &str) -> &str {
    hash.get(..19).unwrap_or(hash)
}

/// Rules with their patients, for people: the three deciding most, and how many more.
fn rules_named(list: &[(&str, u64)]) -> String {
    const SHOWN: usize = 3;
    match list {
        [] => "no rule".to_owned(),
        [(r, _)] => format!("rule {r}"),
        _ => {
            let mut s = format!(
                "rules {}",
                list.iter()
                    .take(SHOWN)
                    .map(|(r, n)| format!("{r} ({n})"))
                    .collect::<Vec<_>>()
                    .join(", ")
            );
            if list.len() > SHOWN {
                s.push_str(&format!(" and {} more", list.len() - SHOWN));
            }
            s
        }
    }
}

fn text(r: &Report<'_>, population: &str) -> String {
    let mut out = format!(
        "rule set {} {} ({}) -> {} {} ({})\n\n",
        r.old.id,
        r.old.version,
        short(&r.old.hash),
        r.new.id,
        r.new.version,
        short(&r.new.hash)
    );
    let rc = r.rules;
    out.push_str(&format!(
        "rules: {} changed, {} added, {} removed\n",
        rc.changed.len(),
        rc.added.len(),
        rc.removed.len()
    ));
    for c in &rc.changed {
        let what: Vec<String> = c
            .changes
            .iter()
            .map(|(k, v)| match (&v["old"], &v["new"]) {
                (Value::String(a), Value::String(b)) if a.len() + b.len() < 40 => {
                    format!("{k} {a} -> {b}")
                }
                _ => format!("{k} changed"),
            })
            .collect();
        out.push_str(&format!(
            "  ~ changed {}: {}\n      was: {}\n      now: {}\n",
            c.rule.id,
            what.join("; "),
            c.was,
            c.rule.line()
        ));
    }
    for a in &rc.added {
        out.push_str(&format!("  + added {}: {}\n", a.id, a.line()));
    }
    for a in &rc.removed {
        out.push_str(&format!("  - removed {}: {}\n", a.id, a.line()));
    }
    if !r.content.is_empty() {
        out.push_str(&format!(
            "\nother content: {} change{}\n",
            r.content.len(),
            if r.content.len() == 1 { "" } else { "s" }
        ));
        for c in r.content {
            let sign = match c.change {
                "added" => '+',
                "removed" => '-',
                _ => '~',
            };
            let show = |v: &Option<Value>| match v {
                Some(Value::Object(o)) if c.kind == "derived" => {
                    format!(
                        "`{}`",
                        o.get("condition").and_then(Value::as_str).unwrap_or("")
                    )
                }
                Some(v) => v.to_string(),
                None => String::new(),
            };
            match c.change {
                "changed" => out.push_str(&format!(
                    "  {sign} {} {}: {} -> {}\n",
                    c.kind,
                    c.id,
                    show(&c.old),
                    show(&c.new)
                )),
                "added" => {
                    out.push_str(&format!("  {sign} {} {}: {}\n", c.kind, c.id, show(&c.new)))
                }
                _ => out.push_str(&format!("  {sign} {} {}\n", c.kind, c.id)),
            }
        }
    }
    let p = &r.population;
    out.push_str(&format!(
        "\npopulation: {population}: {} read, {} evaluated, {} failed\n",
        p.read, p.evaluated, p.failed
    ));
    out.push_str(&format!(
        "patients: {} of {} change some status\n",
        p.changed, p.evaluated
    ));
    for g in &r.groups {
        let now: Vec<(&str, u64)> = g.rules.iter().map(|x| (x.id, x.patients)).collect();
        let before: Vec<(&str, u64)> = g.before.iter().map(|x| (x.id, x.patients)).collect();
        let mark = match g.direction {
            "more-permissive" => " [more permissive]",
            "less-permissive" => " [less permissive]",
            _ => "",
        };
        out.push_str(&format!(
            "  {} {} -> {}: {} patient{}{mark}, {}{}{}\n",
            g.step,
            g.from,
            g.to,
            g.count,
            if g.count == 1 { "" } else { "s" },
            rules_named(&now),
            if before.is_empty() {
                String::new()
            } else {
                format!(" (was {})", rules_named(&before))
            },
            if g.examples.is_empty() {
                String::new()
            } else {
                format!("; e.g. {}", g.examples.join(", "))
            }
        ));
    }
    out
}

pub fn run(o: &Options) -> Result<(), Fail> {
    let (a, b) = (load(&o.old)?, load(&o.new)?);
    let (old_name, new_name) = (o.old.display().to_string(), o.new.display().to_string());
    let rules = rule_diff(&a, &b);
    let content = content_diff(&a, &b);
    let pairs = step_pairs(&a, &b);
    let date = o
        .date
        .as_deref()
        .map(|d| common::date(Some(d)))
        .transpose()?;
    let read_date = match date {
        Some(d) => d,
        None => common::date(None)?,
    };
    let opts = if o.strict {
        ReadOptions::strict(read_date)
    } else {
        ReadOptions::lenient(read_date)
    };
    let jobs = stream::jobs(o.jobs);
    // The population's input, opened before anything starts (a bad path is one clear error);
    // the value sets are needed only if Bundles come, so a failure to load them is kept and
    // reported on each Bundle.
    let input = o.population.as_deref().map(Input::open).transpose()?;
    let readers = match &input {
        Some(_) => readers(&a, &b, o.valuesets.as_deref()),
        None => Err("no population file".to_owned()),
    };
    let (source, described, seed) = match &input {
        Some((_, name)) => (name.clone(), name.clone(), None),
        None => (
            "generated".to_owned(),
            format!(
                "{} patients generated from the old rule set (seed {})",
                o.patients, o.seed
            ),
            Some(o.seed),
        ),
    };
    let bulk = match &input {
        Some((Input::Folder(dir), _)) => {
            let rd = readers
                .as_ref()
                .map_err(|e| Fail::input(format!("{source}: {e}")))?;
            let open = |reader| {
                BulkExport::open_in(reader, dir, opts, 64 << 20, o.tmpdir.as_deref())
                    .map_err(|e| Fail::input(e.to_string()))
            };
            let first = open(&rd.old)?;
            for w in first.skipped() {
                eprintln!("pathway: skipped {w}");
            }
            let second = rd.new.as_ref().map(open).transpose()?;
            Some((first, second))
        }
        _ => None,
    };
    let total = input.as_ref().and_then(|(i, _)| i.size());
    let ctx = Ctx {
        old: &a,
        new: &b,
        old_name: &old_name,
        new_name: &new_name,
        readers: &readers,
        opts,
        date,
        source: &source,
        pairs: &pairs,
        fit: !same_reading(&a, &b),
        keep: o.examples,
    };
    let (max_record, patients, seed_value) = (o.max_record_bytes, o.patients, o.seed);
    let (old_ref, source_ref) = (&a, source.as_str());
    let feed = move |feeder: &mut stream::Feeder<'_, Record>| match (input, bulk) {
        (_, Some((first, None))) => stream::feed_records(
            first.map(|r| {
                r.map(|x| Record::Bulk(Box::new(x), None))
                    .map_err(|e| e.to_string())
            }),
            feeder,
        ),
        (_, Some((first, Some(second)))) => stream::feed_records(
            first.zip(second).map(|pair| match pair {
                (Ok(x), Ok(y)) if x.patient == y.patient => {
                    Ok(Record::Bulk(Box::new(x), Some(Box::new(y))))
                }
                (Ok(x), Ok(y)) => Err(format!(
                    "{} and {}: the export was read differently for the two rule sets",
                    x.patient, y.patient
                )),
                (Err(e), _) | (_, Err(e)) => Err(e.to_string()),
            }),
            feeder,
        ),
        (Some((i, _)), None) => i.feed_lines(feeder, source_ref, max_record),
        (None, None) => {
            let mut g = PatientGenerator::new(old_ref, seed_value);
            if let Some(d) = date {
                g = g.date(d);
            }
            stream::feed_records(
                g.take(patients)
                    .enumerate()
                    .map(|(n, p)| Ok(Record::Generated(n as u64, p))),
                feeder,
            );
        }
    };
    let workers = (0..jobs)
        .map(|_| {
            let mut w = Worker {
                ctx: &ctx,
                prepared: Default::default(),
                eval: Default::default(),
                statuses: Default::default(),
            };
            move |job| w.chunk(job)
        })
        .collect();
    let mut tally = Tally::new(o.examples);
    let mut failed = 0u64;
    let mut failures: Vec<(Option<usize>, String)> = Vec::new();
    let mut failure: Option<Fail> = None;
    stream::run(feed, workers, total, |part: Part<'_>, bar| {
        for (line, message) in part.failures {
            failed += 1;
            bar.suspend(|| eprintln!("pathway: {message}"));
            if o.fail_fast {
                failure = Some(Fail::input(format!(
                    "stopped at the first bad record (--fail-fast): {message}"
                )));
                return false;
            }
            if failures.len() < FAILURES_LISTED {
                failures.push((line, message));
            }
        }
        tally.merge(part.tally);
        bar.set_message(format!(
            "{} patients, {} changed, {failed} errors",
            tally.evaluated, tally.changed
        ));
        true
    });
    if let Some(f) = failure {
        return Err(f);
    }
    let groups = tally
        .sorted()
        .into_iter()
        .map(|(step, g)| GroupOut {
            step: pairs.get(usize::from(step)).map_or("?", |p| p.id),
            from: status_name(g.from),
            to: status_name(g.to),
            direction: g.direction(),
            count: g.count,
            rules: ranked_out(&g.now),
            before: ranked_out(&g.before),
            examples: g.examples.iter().map(|(_, p)| p.as_str()).collect(),
        })
        .collect();
    let report = Report {
        old: a.stamp(),
        new: b.stamp(),
        rules: &rules,
        content: &content,
        population: PopulationOut {
            source: &source,
            seed,
            read: tally.evaluated + failed,
            evaluated: tally.evaluated,
            failed,
            changed: tally.changed,
        },
        failures: failures
            .iter()
            .map(|(line, error)| FailureOut { line: *line, error })
            .collect(),
        groups,
    };
    let written = match o.format {
        Format::Text => text(&report, &described),
        Format::Json => common::pretty(&report)?,
    };
    common::write_or_print(o.out.as_deref(), written.trim_end())?;
    if tally.evaluated == 0 && failed > 0 {
        return Err(Fail::input(format!(
            "no record could be evaluated ({failed} bad record{})",
            if failed == 1 { "" } else { "s" }
        )));
    }
    if o.fail_on_change && tally.changed > 0 {
        return Err(Fail::input(format!(
            "{} patient{} change status (--fail-on-change)",
            tally.changed,
            if tally.changed == 1 { "" } else { "s" }
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const RULES: [&str; 4] = ["R1", "R2", "R3", "R4"];

    /// A patient's moves, made up from its number (deterministic, varied).
    fn moves(n: u64) -> Vec<Move<'static>> {
        let mut v = Vec::new();
        for step in 0..3u16 {
            if (n + u64::from(step)).is_multiple_of(3) {
                continue;
            }
            let from = Status::ALL.get((n % 5) as usize).copied();
            let to = if n.is_multiple_of(7) {
                None
            } else {
                Status::ALL.get(((n / 5) % 5) as usize).copied()
            };
            v.push(Move {
                step,
                from,
                to,
                now: vec![RULES[(n % 4) as usize]],
                before: vec![RULES[((n + 1) % 4) as usize], RULES[((n + 2) % 4) as usize]],
            });
        }
        v
    }

    fn tally(places: impl Iterator<Item = u64>) -> Tally<'static> {
        let mut t = Tally::new(5);
        for n in places {
            t.add(n, &format!("p{n}"), moves(n));
        }
        t
    }

    #[test]
    fn merged_parts_equal_the_whole_whatever_the_split_and_order() {
        let whole = tally(0..500);
        assert!(whole.changed > 0 && whole.groups.len() > 5);
        for size in [1u64, 7, 64, 499] {
            let mut parts: Vec<Tally<'static>> = (0..500u64)
                .step_by(size as usize)
                .map(|start| tally(start..(start + size).min(500)))
                .collect();
            // Merged last part first, as threads may finish.
            parts.reverse();
            let mut merged = Tally::new(5);
            for p in parts {
                merged.merge(p);
            }
            assert_eq!(merged, whole, "chunks of {size}");
        }
    }

    #[test]
    fn examples_are_the_smallest_places_seen_in_any_order() {
        let mut t = Tally::new(3);
        let m = || {
            vec![Move {
                step: 0,
                from: Some(Status::Excluded),
                to: Some(Status::Caution),
                now: vec!["R20.x"],
                before: vec!["R20.x"],
            }]
        };
        for place in [9u64, 4, 12, 1, 7, 3] {
            t.add(place, &format!("p{place}"), m());
        }
        let g = t.groups.values().next().unwrap();
        assert_eq!(g.count, 6);
        assert_eq!(
            g.examples,
            vec![(1, "p1".into()), (3, "p3".into()), (4, "p4".into())]
        );
        assert_eq!(g.now.get("R20.x"), Some(&6));
        assert_eq!(g.direction(), "more-permissive");
        assert_eq!(t.evaluated, 6);
        assert_eq!(t.changed, 6);
        // A patient with no move is evaluated, not changed.
        t.add(0, "p0", Vec::new());
        assert_eq!((t.evaluated, t.changed), (7, 6));
        // No examples kept when none are asked for.
        let mut none = Tally::new(0);
        none.add(1, "p1", m());
        assert!(none.groups.values().all(|g| g.examples.is_empty()));
    }

    #[test]
    fn groups_come_by_step_then_count_then_names() {
        let mut t = Tally::new(5);
        let m = |step, from, to| Move {
            step,
            from,
            to,
            now: Vec::new(),
            before: Vec::new(),
        };
        let (o, c, x) = (
            Some(Status::Offer),
            Some(Status::Caution),
            Some(Status::Excluded),
        );
        t.add(0, "a", vec![m(1, o, c), m(0, x, c)]);
        t.add(1, "b", vec![m(1, x, c)]);
        t.add(2, "c", vec![m(1, x, c), m(0, None, o)]);
        let order: Vec<(u16, &str, &str, u64)> = t
            .sorted()
            .into_iter()
            .map(|(s, g)| (s, status_name(g.from), status_name(g.to), g.count))
            .collect();
        assert_eq!(
            order,
            vec![
                (0, "absent", "offer", 1),
                (0, "excluded", "caution", 1),
                (1, "excluded", "caution", 2),
                (1, "offer", "caution", 1),
            ]
        );
        assert_eq!(
            ranked(&BTreeMap::from([("b", 2), ("a", 2), ("c", 5)])),
            vec![("c", 5), ("a", 2), ("b", 2)]
        );
    }

    #[test]
    fn a_changed_rule_names_the_fields_that_differ() {
        let text = pathway_rules::MS_SPASTICITY_TOML;
        let edited = text.replacen(
            "id = \"R20.tizanidine.cyp1a2-inhibitor\"\nsteps = [\"tizanidine\"]\neffect = \"exclude\"",
            "id = \"R20.tizanidine.cyp1a2-inhibitor\"\nsteps = [\"tizanidine\"]\neffect = \"caution\"",
            1,
        );
        assert_ne!(edited, text);
        let a = RuleSet::from_toml("old.toml", text).unwrap();
        let b = RuleSet::from_toml("new.toml", &edited).unwrap();
        let d = rule_diff(&a, &b);
        assert!(d.added.is_empty() && d.removed.is_empty());
        assert_eq!(d.changed.len(), 1);
        let c = &d.changed[0];
        assert_eq!(c.rule.id, "R20.tizanidine.cyp1a2-inhibitor");
        assert_eq!(
            Value::Object(c.changes.clone()),
            json!({"effect": {"old": "exclude", "new": "caution"}})
        );
        assert!(content_diff(&a, &b).is_empty());
        assert!(same_reading(&a, &b));
        let same = rule_diff(&a, &a);
        assert!(same.added.is_empty() && same.removed.is_empty() && same.changed.is_empty());
    }
}
