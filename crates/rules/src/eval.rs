//! Evaluation: one profile against a compiled rule set. Pure: no I/O, no clock.

use std::collections::BTreeSet;
use std::sync::Arc;

use pathway_core::{FactValue, Outcome, OutcomeSet, Profile, Sex, Status};

use crate::cond::{Cond, NumSrc};
use crate::error::ProfileError;
use crate::recommendation::{FactUse, Reason, Recommendation, StepResult};
use crate::ruleset::{Absent, Effect, FactKind, IfUnknown, RuleSet};
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

struct Eval<'a> {
    rs: &'a RuleSet,
    profile: &'a Profile,
    vals: Vec<Val>,
    recorded: Vec<bool>,
    age: f64,
    sex: Sex,
    outcome: Vec<Option<Outcome>>,
    current: Vec<bool>,
    meds: Vec<bool>,
    hyper: Vec<bool>,
    derived: Vec<Option<Tri>>,
    absolute: Vec<Option<Tri>>,
}

fn sex_bit(s: Sex) -> u8 {
    match s {
        Sex::Male => 1,
        Sex::Female => 2,
        Sex::Other => 4,
        Sex::Unknown => 8,
    }
}

impl<'a> Eval<'a> {
    fn new(rs: &'a RuleSet, profile: &'a Profile) -> Result<Eval<'a>, ProfileError> {
        let c = &rs.compiled;
        let ruleset = || rs.stamp.id.clone();
        let mut vals = vec![Val::Unknown; rs.facts.len()];
        let mut recorded = vec![false; rs.facts.len()];
        for (id, v) in &profile.facts {
            let Some(&ix) = c.fact_ix.get(id) else {
                return Err(ProfileError::UnknownFact {
                    fact: id.clone(),
                    ruleset: ruleset(),
                });
            };
            let Some(def) = rs.facts.get(usize::from(ix)) else {
                continue;
            };
            let wrong = || ProfileError::WrongType {
                fact: id.clone(),
                expected: def.kind.describe(),
                found: v.to_string(),
            };
            let val = match (&def.kind, v) {
                (_, FactValue::Unknown) => Val::Unknown,
                (FactKind::Bool, FactValue::Bool(b)) => Val::Bool(*b),
                (
                    FactKind::Number {
                        min, max, integer, ..
                    },
                    FactValue::Number(n),
                ) => {
                    let below = min.is_some_and(|m| *n < m);
                    let above = max.is_some_and(|m| *n > m);
                    if !n.is_finite() || below || above || (*integer && n.fract() != 0.0) {
                        let lo = min.map_or("-inf".to_owned(), |m| m.to_string());
                        let hi = max.map_or("+inf".to_owned(), |m| m.to_string());
                        let whole = if *integer { ", whole numbers" } else { "" };
                        return Err(ProfileError::OutOfRange {
                            fact: id.clone(),
                            value: *n,
                            range: format!("{lo} to {hi}{whole}"),
                        });
                    }
                    Val::Num(*n)
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
                _ => return Err(wrong()),
            };
            if let Some(slot) = vals.get_mut(usize::from(ix)) {
                *slot = val;
            }
            if let Some(slot) = recorded.get_mut(usize::from(ix)) {
                *slot = true;
            }
        }
        let n = rs.ladder.len();
        let mut outcome = vec![None; n];
        let mut current = vec![false; n];
        for (id, rec) in &profile.steps {
            let Some(p) = rs.ladder.position(id.as_str()) else {
                return Err(ProfileError::UnknownStep {
                    field: "steps",
                    step: id.to_string(),
                    ruleset: ruleset(),
                });
            };
            if let Some(o) = outcome.get_mut(p) {
                *o = rec.effective_outcome();
            }
            if let Some(cur) = current.get_mut(p) {
                *cur = rec.current;
            }
        }
        let mut hyper = vec![false; n];
        for id in &profile.hypersensitivities {
            match rs
                .ladder
                .position(id.as_str())
                .and_then(|p| hyper.get_mut(p))
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
        let mut meds = vec![false; c.med_ix.len()];
        for m in &profile.medications {
            match c.med_ix.get(m).and_then(|&i| meds.get_mut(usize::from(i))) {
                Some(slot) => *slot = true,
                None => {
                    return Err(ProfileError::UnknownMedication {
                        class: m.clone(),
                        ruleset: ruleset(),
                    });
                }
            }
        }
        let mut e = Eval {
            rs,
            profile,
            vals,
            recorded,
            age: f64::from(profile.age),
            sex: profile.sex,
            outcome,
            current,
            meds,
            hyper,
            derived: vec![None; c.derived.len()],
            absolute: vec![None; n],
        };
        // What "not recorded" means, fact by fact.
        for (i, def) in rs.facts.iter().enumerate() {
            if at(&e.recorded, i, true) {
                continue;
            }
            let v = match &def.absent {
                Absent::Unknown => Val::Unknown,
                Absent::False => Val::Bool(false),
                Absent::UnknownWhen(_) => match c.absent_when.get(i).and_then(Option::as_ref) {
                    Some(cond) => match e.tri(cond) {
                        Tri::False => Val::Bool(false),
                        _ => Val::Unknown,
                    },
                    None => Val::Unknown,
                },
            };
            if let Some(slot) = e.vals.get_mut(i) {
                *slot = v;
            }
        }
        // Derived values computed while resolving absent facts may have read them: start afresh.
        e.derived.iter_mut().for_each(|d| *d = None);
        e.absolute.iter_mut().for_each(|d| *d = None);
        Ok(e)
    }

    fn outcome_of(&self, s: u16) -> Option<Outcome> {
        self.outcome.get(usize::from(s)).copied().flatten()
    }

    fn absolute(&mut self, s: u16) -> Tri {
        if let Some(Some(t)) = self.absolute.get(usize::from(s)) {
            return *t;
        }
        let rs = self.rs;
        let mut t = Tri::False;
        if let Some(list) = rs.compiled.step_rules.get(usize::from(s)) {
            for (r, c) in list {
                if rs
                    .rules
                    .get(usize::from(*r))
                    .is_some_and(|r| r.effect == Effect::Exclude)
                {
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
        if at(&self.current, s, false) && self.outcome_of(s) == Some(Outcome::Effective) {
            self.absolute(s).not()
        } else {
            Tri::False
        }
    }

    fn host_partial(&self, h: u16) -> bool {
        at(&self.current, h, false) && self.outcome_of(h) == Some(Outcome::Partial)
    }

    fn tri(&mut self, c: &'a Cond) -> Tri {
        let rs = self.rs;
        let comp = &rs.compiled;
        match c {
            Cond::Const(b) => Tri::from(*b),
            Cond::Bool(f) => match at(&self.vals, *f, Val::Unknown) {
                Val::Bool(b) => Tri::from(b),
                Val::Unknown => Tri::Unknown,
                _ => Tri::False,
            },
            Cond::Known(f) => Tri::from(at(&self.vals, *f, Val::Unknown) != Val::Unknown),
            Cond::Num(src, op, k) => match src {
                NumSrc::Age => Tri::from(op.holds(self.age, *k)),
                NumSrc::Fact(f) => match at(&self.vals, *f, Val::Unknown) {
                    Val::Num(x) => Tri::from(op.holds(x, *k)),
                    Val::Unknown => Tri::Unknown,
                    _ => Tri::False,
                },
            },
            Cond::Code(f, mask) => match at(&self.vals, *f, Val::Unknown) {
                Val::Code(i) => Tri::from(mask & (1u64 << i.min(63)) != 0),
                Val::Unknown => Tri::Unknown,
                _ => Tri::False,
            },
            Cond::Sex(mask) => Tri::from(mask & sex_bit(self.sex) != 0),
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
            Cond::Outcome { step, set, none } => Tri::from(match self.outcome_of(*step) {
                Some(o) => set.contains(o),
                None => *none,
            }),
            Cond::Current(s) => Tri::from(at(&self.current, *s, false)),
            Cond::Medication(m) => Tri::from(at(&self.meds, *m, false)),
            Cond::Hypersensitive(s) => Tri::from(at(&self.hyper, *s, false)),
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
                    let recorded = self.profile.steps.contains_key(
                        self.rs
                            .ladder
                            .step_at(usize::from(h))
                            .map_or("", |s| s.id.as_str()),
                    );
                    if (v == Tri::True && self.host_partial(h)) || (v == Tri::False && recorded) {
                        out.push(Atom::Step(h));
                    }
                }
            }
            Cond::Controlled(tier) => {
                for (s, &st) in comp.tiers.iter().enumerate() {
                    let s = u16::try_from(s).unwrap_or(u16::MAX);
                    if st >= *tier
                        && at(&self.current, s, false)
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
                if rs
                    .rules
                    .get(usize::from(*r))
                    .is_some_and(|r| r.effect == Effect::Exclude)
                    && self.tri(c) == v
                {
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

    fn describe(&self, a: Atom) -> FactUse {
        let rs = self.rs;
        let step_id = |s: u16| {
            rs.ladder
                .step_at(usize::from(s))
                .map_or("?", |s| s.id.as_str())
        };
        let (fact, value) = match a {
            Atom::Age => ("age".to_owned(), self.profile.age.to_string()),
            Atom::Sex => ("sex".to_owned(), self.sex.as_str().to_owned()),
            Atom::Fact(f) => {
                let id = rs.facts.get(usize::from(f)).map_or("?", |d| d.id.as_str());
                let value = match self.profile.facts.get(id) {
                    Some(v) => v.to_string(),
                    None => match at(&self.vals, f, Val::Unknown) {
                        Val::Bool(false) => "not recorded (false)".to_owned(),
                        _ => "not recorded".to_owned(),
                    },
                };
                (id.to_owned(), value)
            }
            Atom::Step(s) => {
                let id = step_id(s);
                let value = match self.profile.steps.get(id) {
                    None => "never tried".to_owned(),
                    Some(r) => match (r.current, r.outcome) {
                        (true, Some(o)) => format!("current, {o}"),
                        (true, None) => "current, no outcome yet (partial)".to_owned(),
                        (false, Some(o)) => o.to_string(),
                        (false, None) => "stopped, no outcome".to_owned(),
                    },
                };
                (format!("step:{id}"), value)
            }
            Atom::Med(m) => {
                let class = rs
                    .compiled
                    .med_ix
                    .iter()
                    .find(|(_, i)| **i == m)
                    .map_or("?", |(k, _)| k.as_str());
                let v = if at(&self.meds, m, false) {
                    "current"
                } else {
                    "none"
                };
                (format!("medication:{class}"), v.to_owned())
            }
            Atom::Hyper(s) => {
                let v = if at(&self.hyper, s, false) {
                    "recorded"
                } else {
                    "none"
                };
                (format!("hypersensitivity:{}", step_id(s)), v.to_owned())
            }
        };
        let from = self
            .profile
            .provenance
            .get(&fact)
            .cloned()
            .unwrap_or_default();
        FactUse { fact, value, from }
    }

    fn missing_of(&self, atoms: &[Atom], into: &mut BTreeSet<String>) {
        for a in atoms {
            if let Atom::Fact(f) = a
                && at(&self.vals, *f, Val::Bool(false)) == Val::Unknown
                && let Some(d) = self.rs.facts.get(usize::from(*f))
            {
                into.insert(d.id.clone());
            }
        }
    }
}

/// A rule's result for one step, before it is turned into a reason.
struct Fired<'a> {
    rule: u16,
    cond: &'a Cond,
    value: Tri,
}

impl RuleSet {
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
        let mut e = Eval::new(self, profile)?;
        let comp = &self.compiled;
        let applicable = e.tri(&comp.applicability);
        let mut steps = Vec::with_capacity(self.ladder.len());
        let mut all_missing = BTreeSet::new();
        for (i, step) in self.ladder.steps().enumerate() {
            let mut missing = BTreeSet::new();
            let mut reasons = Vec::new();
            let status = if applicable != Tri::True {
                let mut atoms = Vec::new();
                e.explain(&comp.applicability, &mut atoms);
                if applicable == Tri::Unknown {
                    e.missing_of(&atoms, &mut missing);
                }
                let r = &self.applicability;
                reasons.push(Reason {
                    rule: r.id.clone(),
                    effect: Effect::Gate,
                    decisive: true,
                    condition: applicable,
                    text: r.text.clone(),
                    sources: r.sources.clone(),
                    facts: describe_all(&e, atoms),
                });
                Status::NotYet
            } else {
                let fired: Vec<Fired<'_>> = comp
                    .step_rules
                    .get(i)
                    .map_or(&[][..], Vec::as_slice)
                    .iter()
                    .map(|(r, c)| Fired {
                        rule: *r,
                        cond: c,
                        value: e.tri(c),
                    })
                    .collect();
                let current = at(&e.current, i, false);
                self.decide(&mut e, &fired, current, &mut reasons, &mut missing)
            };
            all_missing.extend(missing.iter().cloned());
            let rules = reasons.iter().map(|r| r.rule.clone()).collect();
            let sources: BTreeSet<Arc<str>> = reasons
                .iter()
                .flat_map(|r| r.sources.iter().cloned())
                .collect();
            steps.push(StepResult {
                step: step.id.clone(),
                name: step.name.clone(),
                tier: step.tier,
                status,
                current: at(&e.current, i, false),
                reasons,
                rules,
                sources: sources.into_iter().collect(),
                missing: missing.into_iter().collect(),
            });
        }
        Ok(Recommendation {
            ruleset: self.stamp.clone(),
            date: profile.date,
            applicable: applicable == Tri::True,
            steps,
            missing: all_missing.into_iter().collect(),
            warnings: Vec::new(),
        })
    }

    /// R23: the status of one step from its rules' results, with the reasons behind it.
    fn decide<'a>(
        &'a self,
        e: &mut Eval<'a>,
        fired: &[Fired<'a>],
        current: bool,
        reasons: &mut Vec<Reason>,
        missing: &mut BTreeSet<String>,
    ) -> Status {
        let rule = |f: &Fired<'_>| self.rules.get(usize::from(f.rule));
        let effect = |f: &Fired<'_>| rule(f).map_or(Effect::Note, |r| r.effect);
        let policy = |f: &Fired<'_>| rule(f).map_or(IfUnknown::NoEffect, |r| r.if_unknown);
        let is = |f: &Fired<'_>, eff: Effect, v: Tri| effect(f) == eff && f.value == v;

        let excluded = fired.iter().any(|f| is(f, Effect::Exclude, Tri::True));
        let continuing = fired.iter().any(|f| is(f, Effect::Continue, Tri::True));
        let gates: Vec<&Fired<'_>> = fired.iter().filter(|f| effect(f) == Effect::Gate).collect();
        let gates_open = gates.iter().all(|f| f.value == Tri::True);
        let any_gate_shut = gates.iter().any(|f| f.value == Tri::False);
        let indicated = gates_open
            && (!gates.is_empty() || fired.iter().any(|f| is(f, Effect::Offer, Tri::True)));
        let cautious = |f: &Fired<'_>| {
            (effect(f) == Effect::Caution && f.value == Tri::True)
                || (matches!(effect(f), Effect::Caution | Effect::Exclude)
                    && f.value == Tri::Unknown
                    && policy(f) == IfUnknown::Caution)
        };
        let caution = fired.iter().any(cautious);
        let status = if excluded {
            Status::Excluded
        } else if continuing {
            Status::Continue
        } else if !indicated {
            Status::NotYet
        } else if caution {
            Status::Caution
        } else {
            Status::Offer
        };

        let mut listed: Vec<(u8, &Fired<'_>, bool)> = Vec::new();
        for f in fired {
            let eff = effect(f);
            let decisive = match status {
                Status::Excluded => is(f, Effect::Exclude, Tri::True),
                Status::Continue => is(f, Effect::Continue, Tri::True),
                Status::NotYet => eff == Effect::Gate && f.value != Tri::True,
                Status::Caution => cautious(f),
                Status::Offer => {
                    matches!(eff, Effect::Gate | Effect::Offer) && f.value == Tri::True
                }
            };
            let shown = decisive
                || match (eff, f.value) {
                    (Effect::Note, Tri::True) => status.is_offered() || current,
                    (Effect::Caution, Tri::True | Tri::Unknown) => true,
                    (Effect::Exclude, Tri::Unknown) => true,
                    (Effect::Gate | Effect::Offer, Tri::True) => status.is_offered(),
                    _ => false,
                };
            let could_matter = match eff {
                Effect::Note => false,
                // R21a: a possible contraindication is listed whatever the gates say; one whose
                // rule waives the caution (R21d, R21e) only where it could turn an offer into a
                // caution.
                Effect::Exclude | Effect::Caution => {
                    policy(f) == IfUnknown::Caution || status == Status::Offer
                }
                // R12, R24: an open question behind a gate that is shut anyway changes nothing.
                Effect::Gate | Effect::Offer | Effect::Continue => !any_gate_shut && !excluded,
            };
            if could_matter && f.value == Tri::Unknown {
                let mut atoms = Vec::new();
                e.explain(f.cond, &mut atoms);
                e.missing_of(&atoms, missing);
            }
            if shown {
                let rank = match eff {
                    Effect::Exclude => 0,
                    Effect::Continue => 1,
                    Effect::Gate => 2,
                    Effect::Caution => 3,
                    Effect::Offer => 4,
                    Effect::Note => 5,
                };
                listed.push((rank, f, decisive));
            }
        }
        listed.sort_by_key(|(rank, f, decisive)| (!*decisive, *rank, f.rule));
        let silent_unknown_note =
            |f: &Fired<'_>| f.value == Tri::Unknown && policy(f) == IfUnknown::Ignore;
        for (_, f, decisive) in listed {
            let Some(r) = rule(f) else { continue };
            if silent_unknown_note(f) {
                continue;
            }
            let mut atoms = Vec::new();
            e.explain(f.cond, &mut atoms);
            let text = match (&r.unknown_text, f.value) {
                (Some(t), Tri::Unknown) => t.clone(),
                _ => r.text.clone(),
            };
            reasons.push(Reason {
                rule: r.id.clone(),
                effect: r.effect,
                decisive,
                condition: f.value,
                text,
                sources: r.sources.clone(),
                facts: describe_all(e, atoms),
            });
        }
        if status == Status::NotYet && !reasons.iter().any(|r| r.decisive) {
            reasons.insert(
                0,
                Reason {
                    rule: Arc::from("pathway.no-indication"),
                    effect: Effect::Gate,
                    decisive: true,
                    condition: Tri::False,
                    text: Arc::from(
                        "No rule of this rule set indicates this step for this patient.",
                    ),
                    sources: Vec::new(),
                    facts: Vec::new(),
                },
            );
        }
        status
    }
}

fn describe_all(e: &Eval<'_>, mut atoms: Vec<Atom>) -> Vec<FactUse> {
    atoms.sort_unstable();
    atoms.dedup();
    atoms.into_iter().map(|a| e.describe(a)).collect()
}
