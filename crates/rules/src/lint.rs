//! Warnings about a valid rule set that is probably not what its author meant.

use std::collections::BTreeMap;
use std::ops::Range;

use pathway_core::Ladder;
use toml::Spanned;

use crate::cond::{Cond, NumSrc};
use crate::error::{Diagnostic, ErrorKind};
use crate::expr::CmpOp;
use crate::file::Document;
use crate::ruleset::{Effect, Rule};

/// At most this many distinct leaves are enumerated; larger conditions are assumed satisfiable.
const MAX_LEAVES: usize = 16;

/// A leaf of a condition, treated as a free yes/no variable (derived facts are expanded).
fn leaves<'c>(c: &'c Cond, derived: &'c [Cond], out: &mut Vec<&'c Cond>, depth: usize) {
    match c {
        Cond::Not(x) => leaves(x, derived, out, depth),
        Cond::All(xs) | Cond::Any(xs) => xs.iter().for_each(|x| leaves(x, derived, out, depth)),
        Cond::Const(_) => {}
        Cond::Derived(d) if depth < 8 => {
            if let Some(dc) = derived.get(usize::from(*d)) {
                leaves(dc, derived, out, depth + 1);
            }
        }
        leaf => {
            if !out.contains(&leaf) {
                out.push(leaf);
            }
        }
    }
}

fn value(c: &Cond, derived: &[Cond], leaves: &[&Cond], bits: u32, depth: usize) -> bool {
    match c {
        Cond::Const(b) => *b,
        Cond::Not(x) => !value(x, derived, leaves, bits, depth),
        Cond::All(xs) => xs.iter().all(|x| value(x, derived, leaves, bits, depth)),
        Cond::Any(xs) => xs.iter().any(|x| value(x, derived, leaves, bits, depth)),
        Cond::Derived(d) if depth < 8 => derived
            .get(usize::from(*d))
            .is_some_and(|dc| value(dc, derived, leaves, bits, depth + 1)),
        leaf => leaves
            .iter()
            .position(|l| *l == leaf)
            .is_some_and(|i| bits & (1 << i) != 0),
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
pub(crate) fn satisfiable(c: &Cond, derived: &[Cond]) -> bool {
    let mut ls = Vec::new();
    leaves(c, derived, &mut ls, 0);
    if ls.len() > MAX_LEAVES {
        return true;
    }
    (0u32..(1u32 << ls.len())).any(|bits| consistent(&ls, bits) && value(c, derived, &ls, bits, 0))
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
    let mut reported: Vec<&str> = Vec::new();
    for (i, step) in ladder.steps().enumerate() {
        let Some(list) = step_rules.get(i) else {
            continue;
        };
        let rule = |r: u16| rules.get(usize::from(r));
        for (r, c) in list {
            let Some(rule) = rule(*r) else { continue };
            if !reported.contains(&&*rule.id) && !satisfiable(c, derived) {
                reported.push(&rule.id);
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
        let gates_can_open = list.iter().all(|(r, c)| {
            rule(*r).is_none_or(|x| x.effect != Effect::Gate) || satisfiable(c, derived)
        });
        let has_reason = list.iter().any(|(r, c)| {
            rule(*r).is_some_and(|x| matches!(x.effect, Effect::Gate | Effect::Offer))
                && satisfiable(c, derived)
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
