//! Evaluation: one profile against a compiled rule set. Pure: no I/O, no clock.
//!
//! Three layers, so that the hot path allocates nothing:
//! 1. [`RuleSet::prepare`] checks a [`Profile`] against the catalogue and indexes it
//!    ([`Prepared`]);
//! 2. [`RuleSet::evaluate_into`] fills a reusable [`Evaluation`] with every step's status,
//!    the rules behind it, the facts they read and the missing facts, as indices;
//! 3. [`Evaluation::to_recommendation`] (or [`RuleSet::evaluate`], which does all three)
//!    builds the readable, serialisable [`Recommendation`].

use std::sync::Arc;

use pathway_core::{Date, FactValue, Profile, Sex, Status, Step};

use crate::compile::circuit::{AtomMemo, Circuit, NodeId, Visits, state};
use crate::compile::plan::{StepPlan, Word};
use crate::error::ProfileError;
use crate::model::{Absent, Effect, FactKind, Rule};
use crate::results::{FactUse, Reason, Recommendation, StepResult};
use crate::ruleset::RuleSet;
use crate::tri::Tri;

#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Val {
    Bool(bool),
    Num(f64),
    /// A number known only to lie in an interval: its index in `Prepared::ranges` (kept out
    /// of line so that a value stays two words).
    Range(u16),
    Code(u8),
    Unknown,
}

impl Val {
    /// Unknown, or known only as an interval: a fact that may be missing for a rule.
    pub(crate) fn uncertain(self) -> bool {
        matches!(self, Val::Unknown | Val::Range(_))
    }
}

/// A fact, age, sex, step record, medication class or hypersensitivity that a rule read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Atom {
    Age,
    Sex,
    Fact(u16),
    Step(u16),
    Med(u16),
    Hyper(u16),
}

fn at<T: Copy>(v: &[T], i: impl Into<usize>, default: T) -> T {
    v.get(i.into()).copied().unwrap_or(default)
}

/// A profile checked against a rule set's catalogue and indexed for evaluation.
///
/// Reuse one with [`RuleSet::prepare_into`] to evaluate many patients without allocating.
#[derive(Debug, Clone, Default)]
pub struct Prepared {
    vals: Vec<Val>,
    recorded: Vec<bool>,
    pub(crate) age: f64,
    pub(crate) sex: Sex,
    date: Option<Date>,
    /// Per step, its outcome and whether it is current, as one byte (`circuit::state`).
    state: Vec<u8>,
    meds: Vec<Tri>,
    hyper: Vec<bool>,
    /// The catalogue's facts: missing medication classes are listed after them.
    fact_count: u16,
    /// The intervals of `Val::Range` values.
    ranges: Vec<pathway_core::Interval>,
}

impl Prepared {
    pub(crate) fn val(&self, f: u16) -> Val {
        at(&self.vals, f, Val::Unknown)
    }

    pub(crate) fn current(&self, s: u16) -> bool {
        self.state(s) & state::CURRENT != 0
    }

    pub(crate) fn state(&self, s: u16) -> u8 {
        at(&self.state, s, state::NO_OUTCOME)
    }

    pub(crate) fn range(&self, i: u16) -> pathway_core::Interval {
        at(&self.ranges, i, pathway_core::Interval::default())
    }

    pub(crate) fn medication(&self, m: u16) -> Tri {
        at(&self.meds, m, Tri::False)
    }

    pub(crate) fn hypersensitive(&self, s: u16) -> bool {
        at(&self.hyper, s, false)
    }

    /// Copies `src` into `self`, reusing `self`'s buffers (the derived `clone_from` would
    /// allocate anew).
    fn assign(&mut self, src: &Prepared) {
        self.vals.clone_from(&src.vals);
        self.recorded.clone_from(&src.recorded);
        self.age = src.age;
        self.sex = src.sex;
        self.date = src.date;
        self.state.clone_from(&src.state);
        self.meds.clone_from(&src.meds);
        self.hyper.clone_from(&src.hyper);
        self.fact_count = src.fact_count;
        self.ranges.clone_from(&src.ranges);
    }
}

/// Why a reason is listed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum RuleRef {
    Rule(u16),
    Applicability,
    NoIndication,
}

#[derive(Debug, Clone, Copy)]
struct ReasonEval {
    rule: RuleRef,
    decisive: bool,
    condition: Tri,
    /// Where the condition is: the step and the rule's place in the step's plan.
    step: u16,
    at: u16,
}

/// One word of a step's listed reasons: which of its (up to) 64 rules decided the status,
/// which are listed as context, and which came out true or unknown.
#[derive(Debug, Clone, Copy, Default)]
struct Listed {
    decisive: u64,
    context: u64,
    t: u64,
    u: u64,
}

#[derive(Debug, Clone, Copy)]
struct StepEval {
    status: Status,
    current: bool,
    /// A reason that is no rule of the step's plan (applicability, no indication), listed
    /// after the decisive rules and before the context.
    fixed: Option<(RuleRef, Tri)>,
    /// Its words in `Evaluation::listed`.
    words: (u32, u32),
}

/// The result of [`RuleSet::evaluate_into`]: every step's status with its reasons, the facts
/// they read and the missing facts, held as bitsets over the rule set's rules and facts. Reuse
/// one across patients: once its buffers have grown, evaluation allocates nothing.
///
/// ```
/// use pathway_core::{Date, Profile, Status};
/// use pathway_rules::{Evaluation, Prepared, RuleSet};
/// let rs = RuleSet::ms_spasticity().unwrap();
/// let p = Profile::new(Date::constant(2026, 11, 22), 45)
///     .with_fact("multiple-sclerosis", true)
///     .with_fact("spasticity", true);
/// let (mut prepared, mut eval) = (Prepared::default(), Evaluation::default());
/// rs.prepare_into(&p, &mut prepared).unwrap();
/// rs.evaluate_into(&prepared, &mut eval);
/// let first = eval.steps(&rs).next().unwrap();
/// assert_eq!((first.step.id.as_str(), first.status), ("trigger-review", Status::Offer));
/// assert_eq!(first.reasons().next().unwrap().rule_id(), "R2.trigger-review");
/// assert_eq!(eval.to_recommendation(&rs, &p), rs.evaluate(&p).unwrap());
/// ```
#[derive(Debug, Clone, Default)]
pub struct Evaluation {
    applicable: bool,
    date: Option<Date>,
    steps: Vec<StepEval>,
    listed: Vec<Listed>,
    /// Per step, `fact_words` words: the bitset of its missing facts.
    missing: Vec<u64>,
    fact_words: usize,
    /// The profile evaluated and the value of every circuit node, kept so that the facts
    /// behind a reason can be found on demand.
    prepared: Prepared,
    nodes: Vec<Tri>,
    // Scratch.
    /// A step's true and unknown rules, per word of its plan.
    bits: Vec<(u64, u64)>,
    memo: MissingMemo,
}

/// What explaining needs: the circuit, its values and the profile.
#[derive(Clone, Copy)]
struct Explainer<'a> {
    circuit: &'a Circuit,
    values: &'a [Tri],
    p: &'a Prepared,
}

impl Explainer<'_> {
    /// Adds to the bitset `missing` the unknown facts behind node `n`, found once per node
    /// and evaluation (a condition shared by several steps is explained once).
    fn missing(&self, n: NodeId, memo: &mut MissingMemo, missing: &mut [u64]) {
        // A leaf over one fact: the fact itself, if unknown (explaining would find just it).
        if let Some(f) = self.circuit.fact_of_leaf(n) {
            let v = self.p.val(f);
            // An interval is missing only where it leaves the leaf undecided.
            let undecided = self.values.get(n as usize) == Some(&Tri::Unknown);
            if v == Val::Unknown || (matches!(v, Val::Range(_)) && undecided) {
                set_bit(missing, f);
            }
            return;
        }
        let start = match memo.of.get(n as usize) {
            Some(&start) if start != u32::MAX => start as usize,
            _ => {
                memo.tmp.clear();
                self.circuit
                    .explain_with(n, self.values, self.p, &mut memo.tmp, &mut memo.visits);
                let start = memo.facts.len();
                memo.facts.resize(start + missing.len(), 0);
                let set = memo.facts.get_mut(start..).unwrap_or(&mut []);
                for a in &memo.tmp {
                    match *a {
                        Atom::Fact(f) if self.p.val(f).uncertain() => set_bit(set, f),
                        Atom::Med(m) if self.p.medication(m) == Tri::Unknown => {
                            set_bit(set, self.p.fact_count + m);
                        }
                        _ => {}
                    }
                }
                if let Some(slot) = memo.of.get_mut(n as usize) {
                    *slot = u32::try_from(start).unwrap_or(u32::MAX);
                    memo.explained.push(n);
                }
                start
            }
        };
        let set = memo.facts.get(start..).unwrap_or(&[]);
        for (m, s) in missing.iter_mut().zip(set) {
            *m |= s;
        }
    }
}

/// Sets bit `f` of a bitset of one or more words.
fn set_bit(set: &mut [u64], f: u16) {
    if let Some(w) = set.get_mut(usize::from(f / 64)) {
        *w |= 1 << (f % 64);
    }
}

/// The unknown facts behind each node explained so far in one evaluation, as bitsets.
#[derive(Debug, Clone, Default)]
struct MissingMemo {
    /// Per node, where its bitset starts in `facts`; `u32::MAX` when not explained yet.
    of: Vec<u32>,
    /// The nodes explained.
    explained: Vec<NodeId>,
    facts: Vec<u64>,
    tmp: Vec<Atom>,
    visits: Visits,
}

impl MissingMemo {
    /// Forgets every node explained, touching only those (the rest are unset already).
    fn reset(&mut self, nodes: usize) {
        if self.of.len() == nodes {
            for &n in &self.explained {
                if let Some(slot) = self.of.get_mut(n as usize) {
                    *slot = u32::MAX;
                }
            }
        } else {
            self.of.clear();
            self.of.resize(nodes, u32::MAX);
        }
        self.explained.clear();
        self.facts.clear();
    }
}

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

    /// Evaluates a prepared profile into `out`, reusing its buffers.
    pub fn evaluate_into(&self, p: &Prepared, out: &mut Evaluation) {
        let c = &self.compiled;
        let Evaluation {
            applicable,
            date,
            steps,
            listed,
            missing,
            fact_words,
            prepared,
            nodes,
            bits,
            memo,
        } = out;
        let n = self.ladder.len();
        let fw = (self.facts.len() + c.med_ix.len()).div_ceil(64).max(1);
        memo.reset(c.circuit.len());
        steps.clear();
        listed.clear();
        missing.clear();
        missing.resize(n * fw, 0);
        *fact_words = fw;
        prepared.assign(p);
        *date = p.date;
        // The whole circuit in one pass (the step rules' values go unused when the pathway
        // does not apply: rarer, and cheaper than a second pass for every patient).
        c.circuit.run_all(p, nodes);
        let app = nodes
            .get(c.applicability as usize)
            .copied()
            .unwrap_or(Tri::Unknown);
        *applicable = app == Tri::True;
        let ex = Explainer {
            circuit: &c.circuit,
            values: nodes,
            p,
        };
        for (i, set) in (0..n).zip(missing.chunks_exact_mut(fw)) {
            let words_start = listed.len();
            let step = u16::try_from(i).unwrap_or(u16::MAX);
            let current = p.current(step);
            let plan = c.plans.get(i).map_or(&EMPTY_PLAN, |x| x);
            let (status, fixed) = if app != Tri::True {
                // R1 unknown: for a step it could open now, its facts are missing, and so are
                // those the step's own status would turn on once it applies.
                if app == Tri::Unknown && step_flags(plan, nodes, bits).may_be_given() {
                    ex.missing(c.applicability, memo, set);
                    let input = StepIn { ex, plan, current };
                    let mut out = Sink {
                        memo,
                        listed,
                        missing: set,
                    };
                    decide(&input, bits, &mut out);
                    listed.truncate(words_start);
                }
                (Status::NotYet, Some((RuleRef::Applicability, app)))
            } else {
                let input = StepIn { ex, plan, current };
                let mut out = Sink {
                    memo,
                    listed,
                    missing: set,
                };
                decide(&input, bits, &mut out)
            };
            steps.push(StepEval {
                status,
                current,
                fixed,
                words: (
                    u32::try_from(words_start).unwrap_or(u32::MAX),
                    u32::try_from(listed.len()).unwrap_or(u32::MAX),
                ),
            });
        }
    }

    /// Evaluates one patient: a status for every step of the ladder, in ladder order, with
    /// the rules, facts and sources behind each, and the missing facts that could change it.
    ///
    /// Pure: no I/O and no clock (the date is the profile's); the same profile gives the same
    /// result, byte for byte.
    ///
    /// ```
    /// use pathway_core::{Date, Outcome, Profile, Sex, Status, StepRecord};
    /// let rs = pathway_rules::RuleSet::ms_spasticity().unwrap();
    /// let p = Profile::new(Date::constant(2026, 11, 22), 60)
    ///     .with_sex(Sex::Female)
    ///     .with_fact("multiple-sclerosis", true)
    ///     .with_fact("spasticity", true)
    ///     .with_fact("spasticity-distribution", "generalized")
    ///     .with_fact("spasticity-severity", 2)
    ///     .with_fact("functional-impact", true)
    ///     .with_fact("relies-on-tone", false)
    ///     .with_fact("egfr", 90.0)
    ///     .with_step("baclofen", StepRecord::past(Outcome::NotTolerated))
    ///     .with_step("gabapentin", StepRecord::past(Outcome::Ineffective));
    /// let rec = rs.evaluate(&p).unwrap();
    /// // Both first-line drugs are used up, so the second line opens (R8).
    /// assert_eq!(rec.status("tizanidine"), Some(Status::Offer));
    /// assert_eq!(rec.status("baclofen"), Some(Status::Excluded));
    /// let why = &rec.step("tizanidine").unwrap().reasons[0];
    /// assert_eq!(&*why.rule, "R8.second-line");
    /// ```
    pub fn evaluate(&self, profile: &Profile) -> Result<Recommendation, ProfileError> {
        let prepared = self.prepare(profile)?;
        let mut eval = Evaluation::default();
        self.evaluate_into(&prepared, &mut eval);
        Ok(eval.to_recommendation(self, profile))
    }
}

static EMPTY_PLAN: StepPlan = StepPlan {
    rules: Vec::new(),
    nodes: Vec::new(),
    words: Vec::new(),
};

/// What a step's rules add up to.
#[derive(Debug, Default)]
struct Flags {
    excluded: bool,
    continuing: bool,
    has_gate: bool,
    gates_shut: bool,
    gate_false: bool,
    offer: bool,
    caution: bool,
    /// A caution rule's condition is true (not only possibly).
    caution_true: bool,
    /// Some offer rule's condition is true or unknown.
    offer_possible: bool,
    /// Some continue rule's condition is true or unknown.
    continue_possible: bool,
}

impl Flags {
    /// The flags of a step from its plan and the bits of its true and unknown rules.
    #[inline(always)]
    fn of(words: &[Word], bits: &[(u64, u64)]) -> Flags {
        let (mut ex, mut co, mut ga, mut gs, mut gf, mut of, mut ca) = (0, 0, 0, 0, 0, 0, 0);
        let (mut ct, mut op, mut cp) = (0, 0, 0);
        for (m, &(t, u)) in words.iter().zip(bits) {
            ex |= m.exclude & t;
            co |= m.continues & t;
            ga |= m.gate;
            gs |= m.gate & !t;
            gf |= m.gate & !(t | u);
            of |= m.offer & t;
            ca |= (m.caution & t) | (m.caution_if_unknown & u);
            ct |= m.caution & t;
            op |= m.offer & (t | u);
            cp |= m.continues & (t | u);
        }
        Flags {
            excluded: ex != 0,
            continuing: co != 0,
            has_gate: ga != 0,
            gates_shut: gs != 0,
            gate_false: gf != 0,
            offer: of != 0,
            caution: ca != 0,
            caution_true: ct != 0,
            offer_possible: op != 0,
            continue_possible: cp != 0,
        }
    }

    /// Whether some values of the unknown facts would open every gate (or, with no gate, make
    /// an offer rule true).
    fn indicable(&self) -> bool {
        !self.gate_false && (self.has_gate || self.offer_possible)
    }

    /// For a step that is `not-yet`: whether some values of the unknown facts would have it
    /// offered or continued now.
    fn may_leave_not_yet(&self) -> bool {
        self.indicable() || self.continue_possible
    }

    /// Whether some values of the unknown facts would have the step offered, cautioned or
    /// continued now (a true exclusion or a gate that is shut for sure rule that out).
    fn may_be_given(&self) -> bool {
        match self.status() {
            Status::Excluded => false,
            Status::NotYet => self.may_leave_not_yet(),
            _ => true,
        }
    }

    /// R23: excluded > continue > not-yet > caution > offer.
    fn status(&self) -> Status {
        let indicated = !self.gates_shut && (self.has_gate || self.offer);
        if self.excluded {
            Status::Excluded
        } else if self.continuing {
            Status::Continue
        } else if !indicated {
            Status::NotYet
        } else if self.caution {
            Status::Caution
        } else {
            Status::Offer
        }
    }
}

/// For one word of a step's plan: which rules decide the status, which are listed as reasons
/// (decisive or context), and which have unknown conditions whose facts could change it.
#[inline(always)]
fn roles(
    m: &Word,
    t: u64,
    u: u64,
    status: Status,
    current: bool,
    flags: &Flags,
) -> (u64, u64, u64) {
    let all = |b: bool| if b { u64::MAX } else { 0 };
    let decisive = match status {
        Status::Excluded => m.exclude & t,
        Status::Continue => m.continues & t,
        Status::NotYet => m.gate & !t,
        Status::Caution => (m.caution & t) | (m.caution_if_unknown & u),
        Status::Offer => (m.gate | m.offer) & t,
    };
    let offered = status.is_offered();
    let shown = decisive
        | (m.note & t & all(offered || current))
        | (m.caution & (t | u))
        | (m.exclude & u)
        | ((m.gate | m.offer) & t & all(offered));
    // A rule whose condition came out false matters only if it is a gate.
    let fired = t | u | m.gate;
    let listed = shown & fired & !(u & m.silent_if_unknown);
    (
        decisive & listed,
        listed,
        u & could_matter(m, status, flags),
    )
}

/// R24, made precise: the unknown rules whose facts could change what the step's status says
/// now. A fact is missing when, for some values of the step's other unknown facts, its own
/// value moves the status between continue, offer, caution and not offered now (`not-yet` and
/// `excluded` are one outcome here: neither is offered, so a question that could only move one
/// to the other changes nothing). True and false rules stay so whatever an unknown fact turns
/// out to be, so only unknown rules are weighed.
#[inline(always)]
fn could_matter(m: &Word, status: Status, flags: &Flags) -> u64 {
    let all = |b: bool| if b { u64::MAX } else { 0 };
    // A recorded caution keeps the step at caution whatever an unknown one turns out to be.
    let cautions = m.caution & all(!flags.caution_true);
    match status {
        Status::Excluded => 0,
        // C4: only an exclusion overrides a continuing step.
        Status::Continue => m.exclude,
        // R12: an open question behind a gate that is shut anyway changes nothing, and
        // neither does a possible exclusion of a step that cannot be offered now.
        Status::NotYet => {
            m.continues
                | (m.exclude & all(flags.may_leave_not_yet()))
                | ((m.gate | m.offer | cautions) & all(flags.indicable()))
        }
        Status::Caution => m.exclude | m.continues | cautions,
        Status::Offer => m.exclude | m.continues | m.caution,
    }
}

/// What a step's decision reads: the explainer, the step's plan and whether it is current.
#[derive(Clone, Copy)]
struct StepIn<'a> {
    ex: Explainer<'a>,
    plan: &'a StepPlan,
    current: bool,
}

/// Where a step's decision writes: its listed reasons and missing facts (and the memo of the
/// latter).
struct Sink<'a> {
    memo: &'a mut MissingMemo,
    listed: &'a mut Vec<Listed>,
    missing: &'a mut [u64],
}

/// The status of one step, with the reasons behind it (decisive first, then context, each in
/// plan order: by effect, then rule id) and its missing facts; the reason that is no rule, if
/// any.
fn decide(
    input: &StepIn<'_>,
    bits: &mut Vec<(u64, u64)>,
    out: &mut Sink<'_>,
) -> (Status, Option<(RuleRef, Tri)>) {
    let plan = input.plan;
    let values = input.ex.values;
    // Nearly every step has at most 64 rules: a copy of the code for one word, with its
    // loops unrolled away and its bits in registers.
    if let [w] = plan.words.as_slice() {
        let b = plan.one_word(values);
        return decide_words(
            input,
            std::slice::from_ref(w),
            std::slice::from_ref(&b),
            out,
        );
    }
    plan.values(values, bits);
    decide_words(input, &plan.words, bits, out)
}

/// The flags of a step's rules, without listing anything.
fn step_flags(plan: &StepPlan, values: &[Tri], bits: &mut Vec<(u64, u64)>) -> Flags {
    if let [w] = plan.words.as_slice() {
        let b = plan.one_word(values);
        return Flags::of(std::slice::from_ref(w), std::slice::from_ref(&b));
    }
    plan.values(values, bits);
    Flags::of(&plan.words, bits)
}

#[inline(always)]
fn decide_words(
    input: &StepIn<'_>,
    words: &[Word],
    bits: &[(u64, u64)],
    out: &mut Sink<'_>,
) -> (Status, Option<(RuleRef, Tri)>) {
    let StepIn { ex, plan, current } = *input;
    let flags = Flags::of(words, bits);
    let status = flags.status();
    let mut any_decisive = 0;
    for (w, (m, &(t, u))) in words.iter().zip(bits).enumerate() {
        let (decisive, listed, unknown) = roles(m, t, u, status, current, &flags);
        for i in ones(unknown) {
            if let Some(&node) = plan.nodes.get(w * 64 + i) {
                ex.missing(node, out.memo, out.missing);
            }
        }
        any_decisive |= decisive;
        out.listed.push(Listed {
            decisive,
            context: listed & !decisive,
            t,
            u,
        });
    }
    let fixed = (status == Status::NotYet && any_decisive == 0)
        .then_some((RuleRef::NoIndication, Tri::False));
    (status, fixed)
}

/// A declared assertion that does not hold for an evaluated patient.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Violation<'a> {
    /// The assertion.
    pub assertion: &'a crate::model::Assertion,
    /// The step.
    pub step: &'a str,
    /// The step's status.
    pub status: Status,
    /// How the assertion's condition came out (true, or unknown with an offer or continue).
    pub condition: Tri,
}

impl Evaluation {
    /// The declared assertions of the rule set this evaluation ran on that do not hold: a
    /// true condition with a status the assertion rules out, or an unknown one with `offer`
    /// where the assertion rules that out (unknown gives at most caution; a current step may
    /// continue, C4).
    ///
    /// ```
    /// use pathway_core::{Date, Profile};
    /// use pathway_rules::{Evaluation, RuleSet};
    /// let rs = RuleSet::ms_spasticity().unwrap();
    /// let p = Profile::new(Date::constant(2026, 11, 22), 50).with_fact("multiple-sclerosis", true);
    /// let mut e = Evaluation::default();
    /// rs.evaluate_into(&rs.prepare(&p).unwrap(), &mut e);
    /// assert!(e.violations(&rs).is_empty());
    /// ```
    pub fn violations<'a>(&'a self, rs: &'a RuleSet) -> Vec<Violation<'a>> {
        let mut out = Vec::new();
        if rs.compiled.assert_nodes.is_empty() {
            return out;
        }
        // The assertions' own circuit, over the profile this evaluation kept.
        let mut values = Vec::new();
        rs.compiled
            .assert_circuit
            .run_all(&self.prepared, &mut values);
        for &(a, t, node) in &rs.compiled.assert_nodes {
            let (Some(assertion), Some(step), Some(&value)) = (
                rs.assertions.get(usize::from(a)),
                self.steps.get(usize::from(t)),
                values.get(node as usize),
            ) else {
                continue;
            };
            let id = rs
                .ladder
                .step_at(usize::from(t))
                .map_or("?", |s| s.id.as_str());
            let status = step.status;
            let broken = match value {
                Tri::True => assertion.never.contains(&status),
                // A possible row: at most caution for a step not yet given. A current step
                // keeps `continue` (C4: R21's unknowns do not change continue).
                Tri::Unknown => status == Status::Offer && assertion.never.contains(&status),
                Tri::False => false,
            };
            if broken && self.applicable {
                out.push(Violation {
                    assertion,
                    step: id,
                    status,
                    condition: value,
                });
            }
        }
        out
    }
}

/// One step of an [`Evaluation`], borrowing its texts from the rule set.
#[derive(Debug, Clone, Copy)]
pub struct StepView<'a> {
    /// The step.
    pub step: &'a Step,
    /// Its status.
    pub status: Status,
    /// Whether it is current.
    pub current: bool,
    eval: &'a Evaluation,
    rs: &'a RuleSet,
    /// Its place on the ladder.
    index: u16,
    fixed: Option<(RuleRef, Tri)>,
    words: (u32, u32),
}

/// One reason of a [`StepView`].
#[derive(Debug, Clone, Copy)]
pub struct ReasonView<'a> {
    rs: &'a RuleSet,
    eval: &'a Evaluation,
    r: ReasonEval,
}

const NO_INDICATION_ID: &str = "pathway.no-indication";
const NO_INDICATION_TEXT: &str = "No rule of this rule set indicates this step for this patient.";

impl<'a> ReasonView<'a> {
    fn rule(&self) -> Option<&'a Rule> {
        match self.r.rule {
            RuleRef::Rule(i) => self.rs.rules.get(usize::from(i)),
            RuleRef::Applicability => Some(&self.rs.applicability),
            RuleRef::NoIndication => None,
        }
    }

    /// The rule id.
    pub fn rule_id(&self) -> &'a str {
        self.rule().map_or(NO_INDICATION_ID, |r| &r.id)
    }

    /// The rule's effect.
    pub fn effect(&self) -> Effect {
        match self.r.rule {
            RuleRef::Rule(_) => self.rule().map_or(Effect::Gate, |r| r.effect),
            _ => Effect::Gate,
        }
    }

    /// Whether it decided the status.
    pub fn decisive(&self) -> bool {
        self.r.decisive
    }

    /// How its condition came out.
    pub fn condition(&self) -> Tri {
        self.r.condition
    }

    /// The plain-language text (the rule's `unknown-text` when its condition is unknown).
    pub fn text(&self) -> &'a str {
        match self.rule() {
            Some(r) => match (&r.unknown_text, self.r.condition) {
                (Some(t), Tri::Unknown) => t,
                _ => &r.text,
            },
            None => NO_INDICATION_TEXT,
        }
    }

    /// The facts its condition read (catalogue facts, `age`, `sex`, `step:<id>`,
    /// `medication:<class>`, `hypersensitivity:<step>`), found on demand.
    pub fn facts(&self) -> Vec<String> {
        self.eval
            .atoms_of(self.rs, &self.r)
            .into_iter()
            .map(|a| atom_name(self.rs, a))
            .collect()
    }
}

fn atom_name(rs: &RuleSet, a: Atom) -> String {
    let step_id = |s: u16| {
        rs.ladder
            .step_at(usize::from(s))
            .map_or("?", |s| s.id.as_str())
    };
    match a {
        Atom::Age => "age".to_owned(),
        Atom::Sex => "sex".to_owned(),
        Atom::Fact(f) => rs
            .facts
            .get(usize::from(f))
            .map_or("?", |d| d.id.as_str())
            .to_owned(),
        Atom::Step(s) => format!("step:{}", step_id(s)),
        Atom::Med(m) => format!(
            "medication:{}",
            rs.compiled
                .med_ix
                .iter()
                .find(|(_, i)| **i == m)
                .map_or("?", |(k, _)| k.as_str())
        ),
        Atom::Hyper(s) => format!("hypersensitivity:{}", step_id(s)),
    }
}

impl<'a> StepView<'a> {
    /// The reasons: decisive first, then context and notes.
    pub fn reasons(&self) -> impl Iterator<Item = ReasonView<'a>> + 'a {
        let (rs, eval, step) = (self.rs, self.eval, self.index);
        let words = eval
            .listed
            .get(self.words.0 as usize..self.words.1 as usize)
            .unwrap_or(&[]);
        let of_rules = move |decisive: bool| {
            words.iter().enumerate().flat_map(move |(w, l)| {
                let set = if decisive { l.decisive } else { l.context };
                ones(set).map(move |i| {
                    let bit = 1u64 << i;
                    let at = w * 64 + i;
                    ReasonEval {
                        rule: RuleRef::Rule(plan_rule(rs, step, at)),
                        decisive,
                        condition: if l.t & bit != 0 {
                            Tri::True
                        } else if l.u & bit != 0 {
                            Tri::Unknown
                        } else {
                            Tri::False
                        },
                        step,
                        at: u16::try_from(at).unwrap_or(u16::MAX),
                    }
                })
            })
        };
        let fixed = self.fixed.map(|(rule, condition)| ReasonEval {
            rule,
            decisive: true,
            condition,
            step,
            at: u16::MAX,
        });
        of_rules(true)
            .chain(fixed)
            .chain(of_rules(false))
            .map(move |r| ReasonView { rs, eval, r })
    }

    /// The ids of the facts that are missing and could change the status, in catalogue order.
    pub fn missing(&self) -> impl Iterator<Item = &'a str> + 'a {
        let rs = self.rs;
        let fw = self.eval.fact_words;
        let start = usize::from(self.index) * fw;
        self.eval
            .missing
            .get(start..start + fw)
            .unwrap_or(&[])
            .iter()
            .enumerate()
            .flat_map(|(w, &set)| ones(set).map(move |i| w * 64 + i))
            .filter_map(move |f| {
                rs.facts.get(f).map(|d| d.id.as_str()).or_else(|| {
                    let m = f.checked_sub(rs.facts.len())?;
                    rs.compiled.med_names.get(m).map(String::as_str)
                })
            })
    }
}

/// The rule at place `at` of step `step`'s plan.
fn plan_rule(rs: &RuleSet, step: u16, at: usize) -> u16 {
    rs.compiled
        .plans
        .get(usize::from(step))
        .and_then(|p| p.rules.get(at))
        .copied()
        .unwrap_or(u16::MAX)
}

/// The index of every set bit, lowest first.
fn ones(mut set: u64) -> impl Iterator<Item = usize> {
    std::iter::from_fn(move || {
        (set != 0).then(|| {
            let i = set.trailing_zeros() as usize;
            set &= set - 1;
            i
        })
    })
}

impl Evaluation {
    /// Whether the pathway applies (R1).
    pub fn applicable(&self) -> bool {
        self.applicable
    }

    /// The statuses, in ladder order.
    pub fn statuses(&self) -> impl Iterator<Item = Status> + '_ {
        self.steps.iter().map(|s| s.status)
    }

    /// The steps with their reasons, borrowing texts from `rs` (the rule set that evaluated).
    pub fn steps<'a>(&'a self, rs: &'a RuleSet) -> impl Iterator<Item = StepView<'a>> + 'a {
        rs.ladder
            .steps()
            .zip(&self.steps)
            .enumerate()
            .map(move |(i, (step, s))| StepView {
                step,
                status: s.status,
                current: s.current,
                eval: self,
                rs,
                index: u16::try_from(i).unwrap_or(u16::MAX),
                fixed: s.fixed,
                words: s.words,
            })
    }

    /// The atoms behind a reason, computed from the kept profile and memo.
    fn atoms_of(&self, rs: &RuleSet, r: &ReasonEval) -> Vec<Atom> {
        let Some(node) = Self::node_of(rs, r) else {
            return Vec::new();
        };
        let mut atoms = Vec::new();
        rs.compiled
            .circuit
            .explain(node, &self.nodes, &self.prepared, &mut atoms);
        atoms.sort_unstable();
        atoms.dedup();
        atoms
    }

    /// As [`Evaluation::atoms_of`], sharing what was found at each node with the other reasons
    /// of this evaluation.
    fn atoms_memo(&self, rs: &RuleSet, r: &ReasonEval, memo: &mut AtomMemo) -> Vec<Atom> {
        match Self::node_of(rs, r) {
            Some(node) => rs
                .compiled
                .circuit
                .explain_memo(node, &self.nodes, &self.prepared, memo)
                .to_vec(),
            None => Vec::new(),
        }
    }

    /// The circuit node of a reason's condition.
    fn node_of(rs: &RuleSet, r: &ReasonEval) -> Option<NodeId> {
        let c = &rs.compiled;
        match r.rule {
            RuleRef::Applicability => Some(c.applicability),
            RuleRef::NoIndication => None,
            RuleRef::Rule(_) => c
                .plans
                .get(usize::from(r.step))
                .and_then(|plan| plan.nodes.get(usize::from(r.at)))
                .copied(),
        }
    }

    fn describe(&self, rs: &RuleSet, profile: &Profile, a: Atom) -> FactUse {
        let fact = atom_name(rs, a);
        let value = match a {
            Atom::Age => profile.age.to_string(),
            Atom::Sex => profile.sex.as_str().to_owned(),
            Atom::Fact(f) => match profile.facts.get(&fact) {
                Some(v) => v.to_string(),
                None => match self.prepared.val(f) {
                    Val::Bool(false) => "not recorded (false)".to_owned(),
                    _ => "not recorded".to_owned(),
                },
            },
            Atom::Step(s) => {
                let id = rs
                    .ladder
                    .step_at(usize::from(s))
                    .map_or("?", |s| s.id.as_str());
                match profile.steps.get(id) {
                    None => "never tried".to_owned(),
                    Some(r) => match (r.current, r.outcome) {
                        (true, Some(o)) => format!("current, {o}"),
                        (true, None) => "current, no outcome yet (partial)".to_owned(),
                        (false, Some(o)) => o.to_string(),
                        (false, None) => "stopped, no outcome".to_owned(),
                    },
                }
            }
            Atom::Med(m) => match self.prepared.medication(m) {
                Tri::True => "current",
                Tri::Unknown => "possibly current (status unknown)",
                Tri::False => "none",
            }
            .to_owned(),
            Atom::Hyper(s) => if self.prepared.hypersensitive(s) {
                "recorded"
            } else {
                "none"
            }
            .to_owned(),
        };
        let from = profile.provenance.get(&fact).cloned().unwrap_or_default();
        FactUse { fact, value, from }
    }

    /// The readable, serialisable result; `profile` is the one that was evaluated (it supplies
    /// the values as recorded and their provenance).
    pub fn to_recommendation(&self, rs: &RuleSet, profile: &Profile) -> Recommendation {
        let mut all_missing = std::collections::BTreeSet::new();
        let mut memo = AtomMemo::default();
        let steps = self
            .steps(rs)
            .map(|view| {
                let reasons: Vec<Reason> = view
                    .reasons()
                    .map(|r| Reason {
                        rule: r
                            .rule()
                            .map_or_else(|| Arc::from(NO_INDICATION_ID), |x| x.id.clone()),
                        effect: r.effect(),
                        decisive: r.decisive(),
                        condition: r.condition(),
                        text: match r.rule() {
                            Some(x) => match (&x.unknown_text, r.condition()) {
                                (Some(t), Tri::Unknown) => t.clone(),
                                _ => x.text.clone(),
                            },
                            None => Arc::from(NO_INDICATION_TEXT),
                        },
                        sources: r.rule().map_or_else(Vec::new, |x| x.sources.clone()),
                        facts: self
                            .atoms_memo(rs, &r.r, &mut memo)
                            .into_iter()
                            .map(|a| self.describe(rs, profile, a))
                            .collect(),
                    })
                    .collect();
                let missing: Vec<String> = view.missing().map(str::to_owned).collect();
                all_missing.extend(missing.iter().cloned());
                let mut sources: Vec<Arc<str>> = reasons
                    .iter()
                    .flat_map(|r| r.sources.iter().cloned())
                    .collect();
                sources.sort_unstable();
                sources.dedup();
                StepResult {
                    step: view.step.id.clone(),
                    name: view.step.name.clone(),
                    tier: view.step.tier,
                    status: view.status,
                    current: view.current,
                    rules: reasons.iter().map(|r| r.rule.clone()).collect(),
                    reasons,
                    sources,
                    missing,
                }
            })
            .collect();
        Recommendation {
            ruleset: rs.stamp().clone(),
            date: self.date.unwrap_or(profile.date),
            applicable: self.applicable,
            steps,
            missing: all_missing.into_iter().collect(),
            warnings: Vec::new(),
            unrecognized: Vec::new(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use pathway_core::Date;

    /// The memoised explanation finds, at every node, what a walk from that node finds.
    #[test]
    fn memoised_explanation_equals_the_walk_at_every_node() {
        let rs = RuleSet::ms_spasticity().unwrap();
        let circuit = &rs.compiled.circuit;
        for p in crate::PatientGenerator::new(&rs, 5).take(200) {
            let mut e = Evaluation::default();
            rs.evaluate_into(&rs.prepare(&p).unwrap(), &mut e);
            let mut memo = AtomMemo::default();
            // Nodes in an order that reaches shared ones both first and later.
            for n in (0..circuit.len()).rev().chain(0..circuit.len()) {
                let n = NodeId::try_from(n).unwrap();
                let mut walk = Vec::new();
                circuit.explain(n, &e.nodes, &e.prepared, &mut walk);
                walk.sort_unstable();
                walk.dedup();
                let memoised = circuit.explain_memo(n, &e.nodes, &e.prepared, &mut memo);
                assert_eq!(memoised, walk.as_slice(), "node {n}");
            }
        }
    }

    #[test]
    fn bits_are_listed_lowest_first() {
        assert_eq!(ones(0).count(), 0);
        assert_eq!(ones(0b1010_0001).collect::<Vec<_>>(), [0, 5, 7]);
        assert_eq!(ones(1 << 63).collect::<Vec<_>>(), [63]);
    }

    /// Missing facts are a bitset of one or more words per step: a fact past the 64th is
    /// found, listed once and in catalogue order.
    #[test]
    fn missing_facts_past_the_first_word_are_listed_in_catalogue_order() {
        let mut text = crate::MS_SPASTICITY_TOML.to_owned();
        for i in 0..70 {
            text.push_str(&format!(
                "\n[facts.extra-{i:02}]\ntype = \"bool\"\ntext = \"Extra fact {i}\"\n"
            ));
        }
        text.push_str(
            "\n[[rule]]\nid = \"X1\"\nsteps = [\"massage\"]\neffect = \"caution\"\n\
             when = \"extra-69 or extra-68 or extra-00\"\ntext = \"Extra.\"\nsource = [\"CK\"]\n\
             \n[[rule]]\nid = \"X2\"\nsteps = [\"massage\"]\neffect = \"caution\"\n\
             when = \"extra-69 and true\"\ntext = \"Extra.\"\nsource = [\"CK\"]\n",
        );
        let rs = RuleSet::from_toml("extra.toml", &text).unwrap();
        assert!(rs.facts.len() > 64 + 38);
        let p = Profile::new(Date::constant(2026, 11, 22), 50)
            .with_fact("multiple-sclerosis", true)
            .with_fact("spasticity", true);
        let (prepared, mut eval) = (rs.prepare(&p).unwrap(), Evaluation::default());
        rs.evaluate_into(&prepared, &mut eval);
        let massage = eval
            .steps(&rs)
            .find(|s| s.step.id.as_str() == "massage")
            .unwrap();
        let missing: Vec<&str> = massage.missing().collect();
        let extra: Vec<&str> = missing
            .iter()
            .copied()
            .filter(|m| m.starts_with("extra-"))
            .collect();
        assert_eq!(extra, ["extra-00", "extra-68", "extra-69"]);
        let ix = |id: &str| rs.facts.iter().position(|f| f.id == id).unwrap();
        assert!(ix("extra-69") >= 64);
        assert!(
            missing.windows(2).all(|w| ix(w[0]) < ix(w[1])),
            "{missing:?}"
        );
        let rec = eval.to_recommendation(&rs, &p);
        assert_eq!(rec, rs.evaluate(&p).unwrap());
        assert!(rec.missing.contains(&"extra-69".to_owned()));
    }
}
