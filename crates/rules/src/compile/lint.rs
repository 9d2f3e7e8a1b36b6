//! Warnings about a valid rule set that is probably not what its author meant.

use std::collections::BTreeMap;
use std::ops::Range;

use pathway_core::Ladder;
use toml::Spanned;

use crate::compile::cond::{Cond, NumSrc};
use crate::error::{Diagnostic, ErrorKind};
use crate::language::expr::CmpOp;
use crate::language::file::Document;
use crate::model::{Effect, Rule};

/// At most this many distinct leaves are enumerated; larger conditions are assumed satisfiable.
const MAX_LEAVES: usize = 16;

/// At most this many node visits are spent deciding one condition (its size, derived facts
/// counted once, times the assignments of its leaves); larger ones are assumed satisfiable.
const MAX_WORK: usize = 1 << 22;

/// Decides whether conditions over one rule set's derived facts can hold, reusing its buffers
/// from one condition to the next (so each costs only what it touches).
pub(crate) struct Decider<'d> {
    derived: &'d [Cond],
    /// Per derived fact: expanded already (when collecting leaves), or its value under the
    /// current assignment.
    seen: Vec<bool>,
    memo: Vec<Option<bool>>,
    /// The derived facts whose slots above are set.
    touched: Vec<usize>,
}

impl<'d> Decider<'d> {
    pub(crate) fn new(derived: &'d [Cond]) -> Self {
        Decider {
            derived,
            seen: vec![false; derived.len()],
            memo: vec![None; derived.len()],
            touched: Vec::new(),
        }
    }

    fn reset(&mut self) {
        for &d in &self.touched {
            if let (Some(s), Some(m)) = (self.seen.get_mut(d), self.memo.get_mut(d)) {
                *s = false;
                *m = None;
            }
        }
        self.touched.clear();
    }

    /// Whether some consistent assignment of the leaves makes `c` true. Conditions with too
    /// many leaves, or too large to enumerate, are assumed satisfiable.
    pub(crate) fn satisfiable(&mut self, c: &Cond) -> bool {
        self.reset();
        let mut leaves = Vec::new();
        let mut size = 0;
        let few = self.leaves(c, &mut leaves, &mut size);
        self.reset();
        if !few {
            return true;
        }
        let assignments = 1u32 << leaves.len();
        if size.saturating_mul(assignments as usize) > MAX_WORK {
            return true;
        }
        (0..assignments).any(|bits| {
            self.reset();
            consistent(&leaves, bits) && self.value(c, &leaves, bits)
        })
    }

    /// Collects the distinct leaves of `c` (free yes/no variables), expanding each derived
    /// fact once, and counts its nodes; false as soon as there are too many leaves.
    fn leaves<'c>(&mut self, c: &'c Cond, out: &mut Vec<&'c Cond>, size: &mut usize) -> bool
    where
        'd: 'c,
    {
        *size += 1;
        match c {
            Cond::Not(x) => self.leaves(x, out, size),
            Cond::All(xs) | Cond::Any(xs) => xs.iter().all(|x| self.leaves(x, out, size)),
            Cond::Const(_) => true,
            Cond::Derived(d) => {
                let d = usize::from(*d);
                let derived = self.derived;
                match (self.seen.get_mut(d), derived.get(d)) {
                    (Some(seen), Some(dc)) if !*seen => {
                        *seen = true;
                        self.touched.push(d);
                        self.leaves(dc, out, size)
                    }
                    _ => true,
                }
            }
            leaf => {
                // Distinct leaves stay few, so this scan is short.
                if !out.contains(&leaf) {
                    out.push(leaf);
                }
                out.len() <= MAX_LEAVES
            }
        }
    }

    /// The value of `c` under the assignment `bits` of `leaves`; each derived fact's value is
    /// computed once per assignment.
    fn value(&mut self, c: &Cond, leaves: &[&Cond], bits: u32) -> bool {
        match c {
            Cond::Const(b) => *b,
            Cond::Not(x) => !self.value(x, leaves, bits),
            Cond::All(xs) => xs.iter().all(|x| self.value(x, leaves, bits)),
            Cond::Any(xs) => xs.iter().any(|x| self.value(x, leaves, bits)),
            Cond::Derived(d) => {
                let d = usize::from(*d);
                match self.memo.get(d) {
                    Some(Some(v)) => return *v,
                    Some(None) => {}
                    None => return false,
                }
                // Rule sets with cycles never reach the linter; were one here, it reads false.
                if let Some(slot) = self.memo.get_mut(d) {
                    *slot = Some(false);
                    self.touched.push(d);
                }
                let derived = self.derived;
                let v = derived
                    .get(d)
                    .is_some_and(|dc| self.value(dc, leaves, bits));
                if let Some(slot) = self.memo.get_mut(d) {
                    *slot = Some(v);
                }
                v
            }
            leaf => leaves
                .iter()
                .position(|l| *l == leaf)
                .is_some_and(|i| bits & (1 << i) != 0),
        }
    }
}

/// A bound of an interval and whether it is strict.
type Bound = (f64, bool);

/// Whether an assignment of the leaves is consistent: numeric comparisons on the same number
/// leave a non-empty interval, and code tests on the same fact a non-empty set of codes.
fn consistent(leaves: &[&Cond], bits: u32) -> bool {
    let mut bounds: BTreeMap<String, (Bound, Bound)> = BTreeMap::new();
    let mut codes: BTreeMap<String, u64> = BTreeMap::new();
    for (i, leaf) in leaves.iter().enumerate() {
        let on = bits & (1 << i) != 0;
        match leaf {
            Cond::Num(src, op, k) => {
                let key = match src {
                    NumSrc::Age => "age".to_owned(),
                    NumSrc::Fact(f) => format!("f{f}"),
                };
                let op = if on {
                    *op
                } else {
                    match op {
                        CmpOp::Lt => CmpOp::Ge,
                        CmpOp::Le => CmpOp::Gt,
                        CmpOp::Gt => CmpOp::Le,
                        CmpOp::Ge => CmpOp::Lt,
                        CmpOp::Eq => CmpOp::Ne,
                        CmpOp::Ne => CmpOp::Eq,
                    }
                };
                let b = bounds
                    .entry(key)
                    .or_insert(((f64::NEG_INFINITY, false), (f64::INFINITY, false)));
                let raise = |lo: &mut (f64, bool), v: f64, strict: bool| {
                    if v > lo.0 || (v == lo.0 && strict) {
                        *lo = (v, strict);
                    }
                };
                let lower = |hi: &mut (f64, bool), v: f64, strict: bool| {
                    if v < hi.0 || (v == hi.0 && strict) {
                        *hi = (v, strict);
                    }
                };
                match op {
                    CmpOp::Lt => lower(&mut b.1, *k, true),
                    CmpOp::Le => lower(&mut b.1, *k, false),
                    CmpOp::Gt => raise(&mut b.0, *k, true),
                    CmpOp::Ge => raise(&mut b.0, *k, false),
                    CmpOp::Eq => {
                        raise(&mut b.0, *k, false);
                        lower(&mut b.1, *k, false);
                    }
                    CmpOp::Ne => {}
                }
            }
            Cond::Code(f, mask) => {
                let m = codes.entry(format!("f{f}")).or_insert(u64::MAX);
                *m &= if on { *mask } else { !*mask };
            }
            Cond::Sex(mask) => {
                let m = codes.entry("sex".into()).or_insert(0b1111);
                *m &= if on {
                    u64::from(*mask)
                } else {
                    !u64::from(*mask)
                };
            }
            _ => {}
        }
    }
    let intervals_ok = bounds
        .values()
        .all(|((lo, ls), (hi, hs))| lo < hi || (lo == hi && !ls && !hs));
    intervals_ok && codes.values().all(|m| *m != 0)
}

/// Whether some consistent assignment of the leaves makes the condition true. Conditions with
/// too many leaves are assumed satisfiable.
#[cfg(test)]
fn satisfiable(c: &Cond, derived: &[Cond]) -> bool {
    Decider::new(derived).satisfiable(c)
}

fn condition_span(doc: &Document, id: &str) -> Option<Range<usize>> {
    doc.rules
        .iter()
        .find(|r| r.id.get_ref() == id)
        .and_then(|r| r.when.as_ref().or(r.requires.as_ref()))
        .map(Spanned::span)
}

/// The linter: conditions that can never hold, steps that can never be offered, and rules
/// with the same condition and opposite effects.
pub(crate) fn lint(
    ladder: &Ladder,
    rules: &[Rule],
    step_rules: &[Vec<(u16, Cond)>],
    derived: &[Cond],
    doc: &Document,
) -> Vec<Diagnostic> {
    let mut out = Vec::new();
    let mut reported = vec![false; rules.len()];
    let mut decider = Decider::new(derived);
    for (i, step) in ladder.steps().enumerate() {
        let Some(list) = step_rules.get(i) else {
            continue;
        };
        let rule = |r: u16| rules.get(usize::from(r));
        let sat: Vec<bool> = list.iter().map(|(_, c)| decider.satisfiable(c)).collect();
        for ((r, _), &sat) in list.iter().zip(&sat) {
            let Some(rule) = rule(*r) else { continue };
            let seen = reported.get_mut(usize::from(*r));
            if !sat && seen.as_ref().is_some_and(|s| !**s) {
                if let Some(s) = seen {
                    *s = true;
                }
                let what = if rule.effect == Effect::Gate {
                    "this gate can never open: its `requires` can never hold"
                } else {
                    "this rule can never fire: its condition can never hold"
                };
                let mut d = Diagnostic::new(ErrorKind::Lint, what).rule(&rule.id);
                if let Some(s) = condition_span(doc, &rule.id) {
                    d = d.at(s);
                }
                out.push(d);
            }
        }
        let gates_can_open = list
            .iter()
            .zip(&sat)
            .all(|((r, _), &sat)| rule(*r).is_none_or(|x| x.effect != Effect::Gate) || sat);
        let has_reason = list.iter().zip(&sat).any(|((r, _), &sat)| {
            rule(*r).is_some_and(|x| matches!(x.effect, Effect::Gate | Effect::Offer)) && sat
        });
        if !(gates_can_open && has_reason) {
            let mut d = Diagnostic::new(
                ErrorKind::Lint,
                format!("no rule can ever offer step `{}`", step.id),
            )
            .rule(step.id.as_str());
            if let Some(s) = doc
                .steps
                .iter()
                .find(|s| s.id.get_ref() == step.id.as_str())
            {
                d = d.at(s.id.span());
            }
            out.push(d);
        }
        // Same condition, opposite effects.
        for (a, (ra, ca)) in list.iter().enumerate() {
            for (rb, cb) in list.iter().skip(a + 1) {
                let (Some(x), Some(y)) = (rule(*ra), rule(*rb)) else {
                    continue;
                };
                let opposite = |p: Effect, q: Effect| {
                    p == Effect::Exclude && matches!(q, Effect::Offer | Effect::Continue)
                };
                if ca == cb && (opposite(x.effect, y.effect) || opposite(y.effect, x.effect)) {
                    let mut d = Diagnostic::new(
                        ErrorKind::Lint,
                        format!(
                            "`{}` ({}) and `{}` ({}) have the same condition on step `{}`: one of them is dead",
                            x.id,
                            x.effect.as_str(),
                            y.id,
                            y.effect.as_str(),
                            step.id
                        ),
                    )
                    .rule(&y.id);
                    if let Some(s) = condition_span(doc, &y.id) {
                        d = d.at(s);
                    }
                    out.push(d);
                }
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn num(k: f64, op: CmpOp) -> Cond {
        Cond::Num(NumSrc::Fact(0), op, k)
    }

    #[test]
    fn contradictions_are_found() {
        let a = Cond::Bool(1);
        assert!(!satisfiable(
            &Cond::All(vec![a.clone(), Cond::Not(Box::new(a.clone()))]),
            &[]
        ));
        assert!(satisfiable(
            &Cond::Any(vec![a.clone(), Cond::Not(Box::new(a))]),
            &[]
        ));
        assert!(!satisfiable(
            &Cond::All(vec![num(30.0, CmpOp::Lt), num(60.0, CmpOp::Gt)]),
            &[]
        ));
        assert!(satisfiable(
            &Cond::All(vec![num(60.0, CmpOp::Lt), num(30.0, CmpOp::Gt)]),
            &[]
        ));
        assert!(!satisfiable(
            &Cond::All(vec![num(60.0, CmpOp::Lt), num(60.0, CmpOp::Ge)]),
            &[]
        ));
        assert!(satisfiable(
            &Cond::All(vec![num(60.0, CmpOp::Le), num(60.0, CmpOp::Ge)]),
            &[]
        ));
        assert!(!satisfiable(
            &Cond::All(vec![Cond::Code(2, 0b01), Cond::Code(2, 0b10)]),
            &[]
        ));
        assert!(!satisfiable(&Cond::Const(false), &[]));
    }

    #[test]
    fn derived_facts_are_expanded() {
        let derived = vec![Cond::Bool(1)];
        let c = Cond::All(vec![Cond::Derived(0), Cond::Not(Box::new(Cond::Bool(1)))]);
        assert!(!satisfiable(&c, &derived));
    }
}
