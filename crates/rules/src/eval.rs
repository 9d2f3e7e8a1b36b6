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

use pathway_core::{Date, FactValue, Outcome, OutcomeSet, Profile, Sex, Status, Step};

use crate::cond::{Cond, NumSrc};
use crate::error::ProfileError;
use crate::recommendation::{FactUse, Reason, Recommendation, StepResult};
use crate::ruleset::{Absent, Effect, FactKind, IfUnknown, Rule, RuleSet};
use crate::tri::Tri;

#[derive(Debug, Clone, Copy, PartialEq)]
enum Val {
    Bool(bool),
    Num(f64),
    Code(u8),
    Unknown,
}

/// A fact, age, sex, step record, medication class or hypersensitivity that a rule read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Atom {
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

fn sex_bit(s: Sex) -> u8 {
    match s {
        Sex::Male => 1,
        Sex::Female => 2,
        Sex::Other => 4,
        Sex::Unknown => 8,
    }
}

/// A profile checked against a rule set's catalogue and indexed for evaluation.
///
/// Reuse one with [`RuleSet::prepare_into`] to evaluate many patients without allocating.
#[derive(Debug, Clone, Default)]
pub struct Prepared {
    vals: Vec<Val>,
    recorded: Vec<bool>,
    age: f64,
    sex: Sex,
    date: Option<Date>,
    outcome: Vec<Option<Outcome>>,
    current: Vec<bool>,
    meds: Vec<bool>,
    hyper: Vec<bool>,
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
    /// Where the condition is: the step and the index in its compiled rule list.
    step: u16,
    at: u16,
}

#[derive(Debug, Clone, Copy)]
struct StepEval {
    status: Status,
    current: bool,
    reasons: (u32, u32),
    missing: (u32, u32),
}

/// The result of [`RuleSet::evaluate_into`]: every step's status with its reasons, the facts
/// they read and the missing facts, held as indices into the rule set. Reuse one across
/// patients: once its buffers have grown, evaluation allocates nothing.
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
    reasons: Vec<ReasonEval>,
    missing: Vec<u16>,
    /// The profile evaluated, kept so that the facts behind a reason can be found on demand.
    prepared: Prepared,
    derived: Vec<Option<Tri>>,
    absolute: Vec<Option<Tri>>,
    // Scratch.
    values: Vec<Tri>,
    is_true: crate::ruleset::Bits,
    is_unknown: crate::ruleset::Bits,
    fired: Vec<(u16, Tri)>,
    listed: Vec<(u8, u16, u16, bool, Tri)>,
    tmp: Vec<Atom>,
}

/// Evaluation state over a prepared profile.
struct Ctx<'a> {
    rs: &'a RuleSet,
    p: &'a Prepared,
    derived: &'a mut Vec<Option<Tri>>,
    absolute: &'a mut Vec<Option<Tri>>,
}

impl<'a> Ctx<'a> {
    fn outcome_of(&self, s: u16) -> Option<Outcome> {
        self.p.outcome.get(usize::from(s)).copied().flatten()
    }

    fn rule(&self, r: u16) -> Option<&'a Rule> {
        self.rs.rules.get(usize::from(r))
    }

    fn absolute(&mut self, s: u16) -> Tri {
        if let Some(Some(t)) = self.absolute.get(usize::from(s)) {
            return *t;
        }
        let rs = self.rs;
        let mut t = Tri::False;
        if let Some(list) = rs.compiled.step_rules.get(usize::from(s)) {
            for (r, c) in list {
                if self.rule(*r).is_some_and(|r| r.effect == Effect::Exclude) {
                    t = t.or(self.tri(c));
                }
            }
        }
        if let Some(slot) = self.absolute.get_mut(usize::from(s)) {
            *slot = Some(t);
        }
        t
    }

    fn by_outcome_or_absolute(&mut self, s: u16, set: OutcomeSet) -> Tri {
        match self.outcome_of(s) {
            Some(o) if set.contains(o) => Tri::True,
            _ => self.absolute(s),
        }
    }

    fn fired(&mut self, e: u16) -> Tri {
        let Some(edge) = self.rs.compiled.edges.get(usize::from(e)).copied() else {
            return Tri::False;
        };
        match self.outcome_of(edge.from) {
            Some(o) if edge.on.contains(o) => Tri::True,
            _ if edge.or_excluded => self.absolute(edge.from),
            _ => Tri::False,
        }
    }

    fn controls(&mut self, s: u16) -> Tri {
        if at(&self.p.current, s, false) && self.outcome_of(s) == Some(Outcome::Effective) {
            self.absolute(s).not()
        } else {
            Tri::False
        }
    }

    fn host_partial(&self, h: u16) -> bool {
        at(&self.p.current, h, false) && self.outcome_of(h) == Some(Outcome::Partial)
    }

    /// The value of a leaf condition (one that reads the profile directly), or `None`.
    #[inline]
    fn leaf(&self, c: &Cond) -> Option<Tri> {
        Some(match c {
            Cond::Const(b) => Tri::from(*b),
            Cond::Bool(f) => match at(&self.p.vals, *f, Val::Unknown) {
                Val::Bool(b) => Tri::from(b),
                Val::Unknown => Tri::Unknown,
                _ => Tri::False,
            },
            Cond::Known(f) => Tri::from(at(&self.p.vals, *f, Val::Unknown) != Val::Unknown),
            Cond::Num(src, op, k) => match src {
                NumSrc::Age => Tri::from(op.holds(self.p.age, *k)),
                NumSrc::Fact(f) => match at(&self.p.vals, *f, Val::Unknown) {
                    Val::Num(x) => Tri::from(op.holds(x, *k)),
                    Val::Unknown => Tri::Unknown,
                    _ => Tri::False,
                },
            },
            Cond::Code(f, mask) => match at(&self.p.vals, *f, Val::Unknown) {
                Val::Code(i) => Tri::from(mask & (1u64 << i.min(63)) != 0),
                Val::Unknown => Tri::Unknown,
                _ => Tri::False,
            },
            Cond::Sex(mask) => Tri::from(mask & sex_bit(self.p.sex) != 0),
            Cond::Outcome { step, set, none } => Tri::from(match self.outcome_of(*step) {
                Some(o) => set.contains(o),
                None => *none,
            }),
            Cond::Current(s) => Tri::from(at(&self.p.current, *s, false)),
            Cond::Medication(m) => Tri::from(at(&self.p.meds, *m, false)),
            Cond::Hypersensitive(s) => Tri::from(at(&self.p.hyper, *s, false)),
            _ => return None,
        })
    }

    /// The value of a condition: leaves inline, the rest in [`Ctx::tri_deep`].
    #[inline]
    fn tri(&mut self, c: &'a Cond) -> Tri {
        match self.leaf(c) {
            Some(t) => t,
            None => self.tri_deep(c),
        }
    }

    #[inline(never)]
    fn tri_deep(&mut self, c: &'a Cond) -> Tri {
        let comp = &self.rs.compiled;
        match c {
            Cond::Derived(d) => {
                if let Some(Some(t)) = self.derived.get(usize::from(*d)) {
                    return *t;
                }
                let t = match comp.derived.get(usize::from(*d)) {
                    Some(dc) => self.tri(dc),
                    None => Tri::False,
                };
                if let Some(slot) = self.derived.get_mut(usize::from(*d)) {
                    *slot = Some(t);
                }
                t
            }
            Cond::Unavailable(s) => self.by_outcome_or_absolute(*s, OutcomeSet::UNAVAILABLE),
            Cond::Failed(s) => self.by_outcome_or_absolute(*s, OutcomeSet::FAILED),
            Cond::Excluded(s) => self.absolute(*s),
            Cond::Escalated(s) => {
                let mut t = Tri::False;
                for &e in comp
                    .incoming
                    .get(usize::from(*s))
                    .map_or(&[][..], Vec::as_slice)
                {
                    t = t.or(self.fired(e));
                }
                t
            }
            Cond::EscalatedFrom(e) => self.fired(*e),
            Cond::Exhausted(s) => {
                let mut t = Tri::True;
                for &e in comp
                    .within_tier
                    .get(usize::from(*s))
                    .map_or(&[][..], Vec::as_slice)
                {
                    t = t.and(self.fired(e));
                }
                t
            }
            Cond::AdjunctToPartial(s) => Tri::from(
                comp.adjunct_hosts
                    .get(usize::from(*s))
                    .is_some_and(|hs| hs.iter().any(|&h| self.host_partial(h))),
            ),
            Cond::Controlled(tier) => {
                let mut t = Tri::False;
                for (s, &st) in comp.tiers.iter().enumerate() {
                    if st >= *tier {
                        t = t.or(self.controls(u16::try_from(s).unwrap_or(u16::MAX)));
                    }
                }
                t
            }
            Cond::Not(inner) => self.tri(inner).not(),
            Cond::All(cs) => {
                let mut t = Tri::True;
                for c in cs {
                    t = t.and(self.tri(c));
                    if t == Tri::False {
                        break;
                    }
                }
                t
            }
            Cond::Any(cs) => {
                let mut t = Tri::False;
                for c in cs {
                    t = t.or(self.tri(c));
                    if t == Tri::True {
                        break;
                    }
                }
                t
            }
            // Leaves are handled by `leaf`; reaching one here cannot happen.
            leaf => self.leaf(leaf).unwrap_or(Tri::Unknown),
        }
    }

    /// Collects the atoms that make `c` come out as it does.
    fn explain(&mut self, c: &'a Cond, out: &mut Vec<Atom>) {
        let comp = &self.rs.compiled;
        let v = self.tri(c);
        match c {
            Cond::Const(_) => {}
            Cond::Bool(f)
            | Cond::Known(f)
            | Cond::Code(f, _)
            | Cond::Num(NumSrc::Fact(f), _, _) => {
                out.push(Atom::Fact(*f));
            }
            Cond::Num(NumSrc::Age, _, _) => out.push(Atom::Age),
            Cond::Sex(_) => out.push(Atom::Sex),
            Cond::Derived(d) => {
                if let Some(dc) = comp.derived.get(usize::from(*d)) {
                    self.explain(dc, out);
                }
            }
            Cond::Outcome { step, .. } | Cond::Current(step) => out.push(Atom::Step(*step)),
            Cond::Medication(m) => out.push(Atom::Med(*m)),
            Cond::Hypersensitive(s) => out.push(Atom::Hyper(*s)),
            Cond::Unavailable(s) | Cond::Failed(s) => {
                out.push(Atom::Step(*s));
                let set = if matches!(c, Cond::Failed(_)) {
                    OutcomeSet::FAILED
                } else {
                    OutcomeSet::UNAVAILABLE
                };
                if !self.outcome_of(*s).is_some_and(|o| set.contains(o)) {
                    self.explain_absolute(*s, out);
                }
            }
            Cond::Excluded(s) => self.explain_absolute(*s, out),
            Cond::Escalated(s) => {
                for &e in comp
                    .incoming
                    .get(usize::from(*s))
                    .map_or(&[][..], Vec::as_slice)
                {
                    if v == Tri::False || self.fired(e) == v {
                        self.explain_edge(e, out);
                    }
                }
            }
            Cond::EscalatedFrom(e) => self.explain_edge(*e, out),
            Cond::Exhausted(s) => {
                for &e in comp
                    .within_tier
                    .get(usize::from(*s))
                    .map_or(&[][..], Vec::as_slice)
                {
                    if v == Tri::True || self.fired(e) == v {
                        self.explain_edge(e, out);
                    }
                }
            }
            Cond::AdjunctToPartial(s) => {
                for &h in comp
                    .adjunct_hosts
                    .get(usize::from(*s))
                    .map_or(&[][..], Vec::as_slice)
                {
                    let recorded = at(&self.p.current, h, false) || self.outcome_of(h).is_some();
                    if (v == Tri::True && self.host_partial(h)) || (v == Tri::False && recorded) {
                        out.push(Atom::Step(h));
                    }
                }
            }
            Cond::Controlled(tier) => {
                for (s, &st) in comp.tiers.iter().enumerate() {
                    let s = u16::try_from(s).unwrap_or(u16::MAX);
                    if st >= *tier
                        && at(&self.p.current, s, false)
                        && self.outcome_of(s) == Some(Outcome::Effective)
                    {
                        out.push(Atom::Step(s));
                        self.explain_absolute(s, out);
                    }
                }
            }
            Cond::Not(inner) => self.explain(inner, out),
            Cond::All(cs) => {
                for c in cs {
                    if v == Tri::True || self.tri(c) == v {
                        self.explain(c, out);
                    }
                }
            }
            Cond::Any(cs) => {
                for c in cs {
                    if v == Tri::False || self.tri(c) == v {
                        self.explain(c, out);
                    }
                }
            }
        }
    }

    fn explain_absolute(&mut self, s: u16, out: &mut Vec<Atom>) {
        let v = self.absolute(s);
        if v == Tri::False {
            return;
        }
        let rs = self.rs;
        if let Some(list) = rs.compiled.step_rules.get(usize::from(s)) {
            for (r, c) in list {
                if self.rule(*r).is_some_and(|r| r.effect == Effect::Exclude) && self.tri(c) == v {
                    self.explain(c, out);
                }
            }
        }
    }

    fn explain_edge(&mut self, e: u16, out: &mut Vec<Atom>) {
        let Some(edge) = self.rs.compiled.edges.get(usize::from(e)).copied() else {
            return;
        };
        out.push(Atom::Step(edge.from));
        let decided = self
            .outcome_of(edge.from)
            .is_some_and(|o| edge.on.contains(o));
        if !decided && edge.or_excluded {
            self.explain_absolute(edge.from, out);
        }
    }
}

fn rank(e: Effect) -> u8 {
    match e {
        Effect::Exclude => 0,
        Effect::Continue => 1,
        Effect::Gate => 2,
        Effect::Caution => 3,
        Effect::Offer => 4,
        Effect::Note => 5,
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
        let ruleset = || self.stamp.id.clone();
        let n = self.ladder.len();
        let p = into;
        p.vals.clear();
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
        p.outcome.clear();
        p.outcome.resize(n, None);
        p.current.clear();
        p.current.resize(n, false);
        for (id, rec) in &profile.steps {
            let Some(i) = self.ladder.position(id.as_str()) else {
                return Err(ProfileError::UnknownStep {
                    field: "steps",
                    step: id.to_string(),
                    ruleset: ruleset(),
                });
            };
            if let Some(o) = p.outcome.get_mut(i) {
                *o = rec.effective_outcome();
            }
            if let Some(cur) = p.current.get_mut(i) {
                *cur = rec.current;
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
        p.meds.resize(c.med_ix.len(), false);
        for m in &profile.medications {
            match c
                .med_ix
                .get(m)
                .and_then(|&i| p.meds.get_mut(usize::from(i)))
            {
                Some(slot) => *slot = true,
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
        // are settled already (checked when the rule set was compiled).
        let mut derived = vec![None; c.derived.len()];
        let mut absolute = vec![None; n];
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
        for (i, def) in self.facts.iter().enumerate() {
            if at(&p.recorded, i, true) || !matches!(def.absent, Absent::UnknownWhen(_)) {
                continue;
            }
            let Some(cond) = c.absent_when.get(i).and_then(Option::as_ref) else {
                continue;
            };
            derived.iter_mut().for_each(|d| *d = None);
            let t = {
                let mut ctx = Ctx {
                    rs: self,
                    p,
                    derived: &mut derived,
                    absolute: &mut absolute,
                };
                ctx.tri(cond)
            };
            if t == Tri::False
                && let Some(slot) = p.vals.get_mut(i)
            {
                *slot = Val::Bool(false);
            }
        }
        Ok(())
    }

    /// Evaluates a prepared profile into `out`, reusing its buffers.
    pub fn evaluate_into(&self, p: &Prepared, out: &mut Evaluation) {
        let Evaluation {
            applicable,
            date,
            steps,
            reasons,
            missing,
            prepared,
            derived,
            absolute,
            values,
            is_true,
            is_unknown,
            fired,
            listed,
            tmp,
        } = out;
        steps.clear();
        reasons.clear();
        missing.clear();
        prepared.clone_from(p);
        *date = p.date;
        derived.clear();
        derived.resize(self.compiled.derived.len(), None);
        absolute.clear();
        absolute.resize(self.ladder.len(), None);
        let mut ctx = Ctx {
            rs: self,
            p,
            derived,
            absolute,
        };
        let app = ctx.tri(&self.compiled.applicability);
        *applicable = app == Tri::True;
        values.clear();
        *is_true = [0; 4];
        *is_unknown = [0; 4];
        if app == Tri::True {
            for (k, c) in self.compiled.conds.iter().enumerate() {
                let v = ctx.tri(c);
                values.push(v);
                let (w, bit) = (k / 64, 1u64 << (k % 64));
                let set = match v {
                    Tri::True => is_true.get_mut(w),
                    Tri::Unknown => is_unknown.get_mut(w),
                    Tri::False => None,
                };
                if let Some(x) = set {
                    *x |= bit;
                }
            }
        }
        for i in 0..self.ladder.len() {
            let reasons_start = reasons.len();
            let missing_start = missing.len();
            let current = at(&p.current, i, false);
            let step = u16::try_from(i).unwrap_or(u16::MAX);
            let status = if app != Tri::True {
                if app == Tri::Unknown {
                    tmp.clear();
                    ctx.explain(&self.compiled.applicability, tmp);
                    push_missing(&ctx, tmp, missing);
                }
                reasons.push(ReasonEval {
                    rule: RuleRef::Applicability,
                    decisive: true,
                    condition: app,
                    step,
                    at: 0,
                });
                Status::NotYet
            } else {
                let list = self
                    .compiled
                    .step_rules
                    .get(i)
                    .map_or(&[][..], Vec::as_slice);
                let meta = self.compiled.meta.get(i).map_or(&[][..], Vec::as_slice);
                // Keep only what can matter to the answer: a rule whose condition came out
                // false matters only if it is a gate.
                fired.clear();
                let masked = self.compiled.masks.get(i);
                let mut flags = match masked {
                    Some(m) => Flags::of(m, is_true, is_unknown),
                    None => Flags::default(),
                };
                for (j, &(eff, pol, k)) in meta.iter().enumerate() {
                    let v = values.get(k as usize).copied().unwrap_or(Tri::Unknown);
                    if masked.is_none() {
                        flags.add(eff, pol, v);
                    }
                    if v != Tri::False || eff == Effect::Gate {
                        fired.push((u16::try_from(j).unwrap_or(u16::MAX), v));
                    }
                }
                decide(
                    &mut ctx, step, list, meta, fired, &flags, current, listed, tmp, reasons,
                    missing,
                )
            };
            if let Some(tail) = missing.get_mut(missing_start..) {
                tail.sort_unstable();
            }
            dedup_from(missing, missing_start);
            steps.push(StepEval {
                status,
                current,
                reasons: (
                    u32::try_from(reasons_start).unwrap_or(u32::MAX),
                    u32::try_from(reasons.len()).unwrap_or(u32::MAX),
                ),
                missing: (
                    u32::try_from(missing_start).unwrap_or(u32::MAX),
                    u32::try_from(missing.len()).unwrap_or(u32::MAX),
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

fn dedup_from(v: &mut Vec<u16>, start: usize) {
    let mut w = start;
    for r in start..v.len() {
        let x = at(v, r, 0);
        if w == start || at(v, w - 1, u16::MAX) != x {
            if let Some(slot) = v.get_mut(w) {
                *slot = x;
            }
            w += 1;
        }
    }
    v.truncate(w);
}

fn push_missing(ctx: &Ctx<'_>, atoms: &[Atom], missing: &mut Vec<u16>) {
    for a in atoms {
        if let Atom::Fact(f) = a
            && at(&ctx.p.vals, *f, Val::Bool(false)) == Val::Unknown
        {
            missing.push(*f);
        }
    }
}

/// What a step's rules add up to, accumulated while they are evaluated.
#[derive(Debug, Default)]
struct Flags {
    excluded: bool,
    continuing: bool,
    has_gate: bool,
    gates_shut: bool,
    gate_false: bool,
    offer: bool,
    caution: bool,
}

fn cautious(eff: Effect, pol: IfUnknown, v: Tri) -> bool {
    (eff == Effect::Caution && v == Tri::True)
        || (matches!(eff, Effect::Caution | Effect::Exclude)
            && v == Tri::Unknown
            && pol == IfUnknown::Caution)
}

impl Flags {
    /// The flags of a step from its masks and the bitsets of true and unknown conditions.
    fn of(
        m: &crate::ruleset::StepMasks,
        t: &crate::ruleset::Bits,
        u: &crate::ruleset::Bits,
    ) -> Flags {
        let word = |a: &crate::ruleset::Bits, i: usize| a.get(i).copied().unwrap_or(0);
        let (mut ex, mut co, mut ga, mut gs, mut gf, mut of, mut ca) = (0, 0, 0, 0, 0, 0, 0);
        for w in 0..4 {
            let (x, y) = (word(t, w), word(u, w));
            ex |= word(&m.exclude, w) & x;
            co |= word(&m.continues, w) & x;
            ga |= word(&m.gate, w);
            gs |= word(&m.gate, w) & !x;
            gf |= word(&m.gate, w) & !(x | y);
            of |= word(&m.offer, w) & x;
            ca |= (word(&m.caution, w) & x) | (word(&m.caution_if_unknown, w) & y);
        }
        Flags {
            excluded: ex != 0,
            continuing: co != 0,
            has_gate: ga != 0,
            gates_shut: gs != 0,
            gate_false: gf != 0,
            offer: of != 0,
            caution: ca != 0,
        }
    }

    /// The same flags, one rule at a time (rule sets too large for the masks).
    fn add(&mut self, eff: Effect, pol: IfUnknown, v: Tri) {
        match eff {
            Effect::Exclude if v == Tri::True => self.excluded = true,
            Effect::Continue if v == Tri::True => self.continuing = true,
            Effect::Gate => {
                self.has_gate = true;
                self.gates_shut |= v != Tri::True;
                self.gate_false |= v == Tri::False;
            }
            Effect::Offer if v == Tri::True => self.offer = true,
            _ => {}
        }
        self.caution |= cautious(eff, pol, v);
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

/// The status of one step, with the reasons behind it and its missing facts. `fired` holds
/// the rules that did not come out false, and every gate.
#[allow(clippy::too_many_arguments)]
fn decide<'a>(
    ctx: &mut Ctx<'a>,
    step: u16,
    list: &'a [(u16, Cond)],
    meta: &[(Effect, IfUnknown, u32)],
    fired: &[(u16, Tri)],
    flags: &Flags,
    current: bool,
    listed: &mut Vec<(u8, u16, u16, bool, Tri)>,
    tmp: &mut Vec<Atom>,
    reasons: &mut Vec<ReasonEval>,
    missing: &mut Vec<u16>,
) -> Status {
    let status = flags.status();
    let (any_gate_shut, excluded) = (flags.gate_false, flags.excluded);
    listed.clear();
    for &(j, v) in fired {
        let (Some(&(eff, pol, _)), Some((r, c))) =
            (meta.get(usize::from(j)), list.get(usize::from(j)))
        else {
            continue;
        };
        let decisive = match status {
            Status::Excluded => eff == Effect::Exclude && v == Tri::True,
            Status::Continue => eff == Effect::Continue && v == Tri::True,
            Status::NotYet => eff == Effect::Gate && v != Tri::True,
            Status::Caution => cautious(eff, pol, v),
            Status::Offer => matches!(eff, Effect::Gate | Effect::Offer) && v == Tri::True,
        };
        let shown = decisive
            || match (eff, v) {
                (Effect::Note, Tri::True) => status.is_offered() || current,
                (Effect::Caution, Tri::True | Tri::Unknown) => true,
                (Effect::Exclude, Tri::Unknown) => true,
                (Effect::Gate | Effect::Offer, Tri::True) => status.is_offered(),
                _ => false,
            };
        if v == Tri::Unknown {
            let could_matter = match eff {
                Effect::Note => false,
                // R21a: a possible contraindication is listed whatever the gates say; one whose
                // rule waives the caution (R21d, R21e) only where it could turn an offer into a
                // caution.
                Effect::Exclude | Effect::Caution => {
                    pol == IfUnknown::Caution || status == Status::Offer
                }
                // R12, R24: an open question behind a gate that is shut anyway changes nothing.
                Effect::Gate | Effect::Offer | Effect::Continue => !any_gate_shut && !excluded,
            };
            if could_matter {
                tmp.clear();
                ctx.explain(c, tmp);
                push_missing(ctx, tmp, missing);
            }
        }
        let silent = v == Tri::Unknown && pol == IfUnknown::Ignore;
        if shown && !silent {
            listed.push((rank(eff), *r, j, decisive, v));
        }
    }
    listed.sort_unstable_by_key(|&(rank, r, _, decisive, _)| (!decisive, rank, r));
    if status == Status::NotYet && !listed.iter().any(|l| l.3) {
        reasons.push(ReasonEval {
            rule: RuleRef::NoIndication,
            decisive: true,
            condition: Tri::False,
            step,
            at: u16::MAX,
        });
    }
    for &(_, r, j, decisive, v) in listed.iter() {
        reasons.push(ReasonEval {
            rule: RuleRef::Rule(r),
            decisive,
            condition: v,
            step,
            at: j,
        });
    }
    status
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
    reasons: (u32, u32),
    missing: (u32, u32),
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
        let (rs, eval) = (self.rs, self.eval);
        eval.reasons
            .get(self.reasons.0 as usize..self.reasons.1 as usize)
            .unwrap_or(&[])
            .iter()
            .map(move |r| ReasonView { rs, eval, r: *r })
    }

    /// The ids of the facts that are missing and could change the status.
    pub fn missing(&self) -> impl Iterator<Item = &'a str> + 'a {
        let rs = self.rs;
        self.eval
            .missing
            .get(self.missing.0 as usize..self.missing.1 as usize)
            .unwrap_or(&[])
            .iter()
            .filter_map(move |f| rs.facts.get(usize::from(*f)).map(|d| d.id.as_str()))
    }
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
            .map(move |(step, s)| StepView {
                step,
                status: s.status,
                current: s.current,
                eval: self,
                rs,
                reasons: s.reasons,
                missing: s.missing,
            })
    }

    /// The atoms behind a reason, computed from the kept profile and memo.
    fn atoms_of(&self, rs: &RuleSet, r: &ReasonEval) -> Vec<Atom> {
        let cond = match r.rule {
            RuleRef::Applicability => Some(&rs.compiled.applicability),
            RuleRef::NoIndication => None,
            RuleRef::Rule(_) => rs
                .compiled
                .step_rules
                .get(usize::from(r.step))
                .and_then(|l| l.get(usize::from(r.at)))
                .map(|(_, c)| c),
        };
        let Some(cond) = cond else { return Vec::new() };
        let (mut derived, mut absolute) = (self.derived.clone(), self.absolute.clone());
        let mut ctx = Ctx {
            rs,
            p: &self.prepared,
            derived: &mut derived,
            absolute: &mut absolute,
        };
        let mut atoms = Vec::new();
        ctx.explain(cond, &mut atoms);
        atoms.sort_unstable();
        atoms.dedup();
        atoms
    }

    fn describe(&self, rs: &RuleSet, profile: &Profile, a: Atom) -> FactUse {
        let fact = atom_name(rs, a);
        let value = match a {
            Atom::Age => profile.age.to_string(),
            Atom::Sex => profile.sex.as_str().to_owned(),
            Atom::Fact(f) => match profile.facts.get(&fact) {
                Some(v) => v.to_string(),
                None => match at(&self.prepared.vals, f, Val::Unknown) {
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
            Atom::Med(m) => if at(&self.prepared.meds, m, false) {
                "current"
            } else {
                "none"
            }
            .to_owned(),
            Atom::Hyper(s) => if at(&self.prepared.hyper, s, false) {
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
                            .atoms_of(rs, &r.r)
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
            ruleset: rs.stamp.clone(),
            date: self.date.unwrap_or(profile.date),
            applicable: self.applicable,
            steps,
            missing: all_missing.into_iter().collect(),
            warnings: Vec::new(),
        }
    }
}
