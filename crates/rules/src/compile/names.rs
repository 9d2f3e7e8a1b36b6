//! The names of a rule set and the rules they follow: the tables that resolve a condition's
//! names to indices ([`Names`], with a "did you mean" for slips), what makes a valid step, fact
//! or rule id, and the natural order of rule ids (`R2` before `R15`).

use std::collections::BTreeMap;

use rustc_hash::FxHashMap;

use crate::compile::cond::{Cond, ResolveError, Scope};
use crate::error::ErrorKind;
use crate::language::expr::Ast;
use crate::model::FactDef;

/// Orders rule ids the way people read them: runs of digits compare as numbers, so `R2` <
/// `R8` < `R15` < `R20.baclofen`.
pub(crate) fn natural_cmp(a: &str, b: &str) -> std::cmp::Ordering {
    fn chunks(s: &str) -> impl Iterator<Item = (bool, &str)> {
        let mut rest = s;
        std::iter::from_fn(move || {
            let first = rest.chars().next()?;
            let digit = first.is_ascii_digit();
            let end = rest
                .find(|c: char| c.is_ascii_digit() != digit)
                .unwrap_or(rest.len());
            let (head, tail) = rest.split_at(end);
            rest = tail;
            Some((digit, head))
        })
    }
    let mut x = chunks(a);
    let mut y = chunks(b);
    loop {
        match (x.next(), y.next()) {
            (None, None) => return a.cmp(b),
            (None, Some(_)) => return std::cmp::Ordering::Less,
            (Some(_), None) => return std::cmp::Ordering::Greater,
            (Some((true, p)), Some((true, q))) => {
                let p = p.trim_start_matches('0');
                let q = q.trim_start_matches('0');
                let o = p.len().cmp(&q.len()).then_with(|| p.cmp(q));
                if o.is_ne() {
                    return o;
                }
            }
            (Some((_, p)), Some((_, q))) => {
                let o = p.cmp(q);
                if o.is_ne() {
                    return o;
                }
            }
        }
    }
}

/// A key that sorts like [`natural_cmp`]: runs of digits left-padded to 20 places.
pub(crate) fn natural_key(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 20);
    let mut rest = s;
    while !rest.is_empty() {
        let digits = rest
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(rest.len());
        let (run, tail) = rest.split_at(digits);
        if !run.is_empty() {
            let trimmed = run.trim_start_matches('0');
            out.extend(std::iter::repeat_n(
                '0',
                20usize.saturating_sub(trimmed.len()),
            ));
            out.push_str(trimmed);
        }
        let other = tail
            .find(|c: char| c.is_ascii_digit())
            .unwrap_or(tail.len());
        let (text, tail) = tail.split_at(other);
        out.push_str(text);
        rest = tail;
    }
    out
}

pub(crate) fn valid_name(s: &str) -> bool {
    let mut chars = s.chars();
    chars.next().is_some_and(|c| c.is_ascii_lowercase())
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
}

pub(crate) fn valid_rule_id(s: &str) -> bool {
    let mut chars = s.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphanumeric())
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | '_'))
}

/// Names to indices, for resolving conditions (hashed: every name in every condition is
/// looked up).
pub(crate) struct Names {
    pub steps: FxHashMap<String, u16>,
    pub facts: FxHashMap<String, u16>,
    pub fact_defs: Vec<FactDef>,
    pub derived: FxHashMap<String, u16>,
    pub meds: BTreeMap<String, u16>,
    pub edges: BTreeMap<(u16, u16), u16>,
}

impl Names {
    /// "; did you mean `x`?" for a name that is not known, when one known name of the same
    /// kind is close to it.
    pub fn did_you_mean(&self, kind: ErrorKind, message: &str) -> String {
        let Some(name) = message.split('`').nth(1) else {
            return String::new();
        };
        let candidates: Vec<&str> = match kind {
            ErrorKind::UnknownStep => self.steps.keys().map(String::as_str).collect(),
            ErrorKind::UnknownFact => self
                .facts
                .keys()
                .chain(self.derived.keys())
                .map(String::as_str)
                .collect(),
            ErrorKind::UnknownMedication => self.meds.keys().map(String::as_str).collect(),
            _ => return String::new(),
        };
        suggestion(name, &candidates).map_or_else(String::new, |c| format!("; did you mean `{c}`?"))
    }

    /// Resolves a parsed condition against these names, for `step` (a rule's condition is
    /// resolved once per step it covers) or for no step (derived facts, applicability).
    pub fn resolve(&self, ast: &Ast, step: Option<u16>) -> Result<Cond, ResolveError> {
        let step_name = step.and_then(|s| {
            self.steps
                .iter()
                .find(|(_, v)| **v == s)
                .map(|(k, _)| k.as_str())
        });
        let steps = |s: &str| self.steps.get(s).copied();
        let facts = |s: &str| {
            self.facts
                .get(s)
                .and_then(|&i| self.fact_defs.get(usize::from(i)).map(|f| (i, &f.kind)))
        };
        let derived = |s: &str| self.derived.get(s).copied();
        let meds = |s: &str| self.meds.get(s).copied();
        let edge = |a: u16, b: u16| self.edges.get(&(a, b)).copied();
        let scope = Scope {
            steps: &steps,
            facts: &facts,
            derived: &derived,
            medications: &meds,
            edge: &edge,
            step,
            step_name,
        };
        scope.resolve(ast)
    }
}

/// The known name closest to `name`, if it is close enough to be a slip (at most a third of
/// its letters different, and at least one).
pub(crate) fn suggestion<'c>(name: &str, candidates: &[&'c str]) -> Option<&'c str> {
    let limit = (name.chars().count() / 3).max(1);
    candidates
        .iter()
        .map(|c| (strsim::levenshtein(name, c), *c))
        .filter(|(d, _)| *d <= limit)
        .min()
        .map(|(_, c)| c)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn natural_order_reads_numbers_as_numbers() {
        let mut ids = ["R20.b", "R8.x", "R15.c", "R2.a", "R20.a", "R100", "Rx"];
        ids.sort_by(|a, b| natural_cmp(a, b));
        assert_eq!(
            ids,
            ["R2.a", "R8.x", "R15.c", "R20.a", "R20.b", "R100", "Rx"]
        );
        assert_eq!(natural_cmp("R08", "R8"), std::cmp::Ordering::Less);
        let mut keyed = ["R20.b", "R8.x", "R15.c", "R2.a", "R20.a", "R100", "Rx"];
        keyed.sort_by_key(|s| natural_key(s));
        let pad = |n: &str| format!("{n:0>20}");
        assert_eq!(
            natural_key("007ab12.c0"),
            format!("{}ab{}.c{}", pad("7"), pad("12"), pad(""))
        );
        assert_eq!(natural_key(""), "");
        assert_eq!(
            keyed,
            ["R2.a", "R8.x", "R15.c", "R20.a", "R20.b", "R100", "Rx"]
        );
    }

    #[test]
    fn close_names_are_suggested_and_far_ones_are_not() {
        let known = ["tizanidine", "dantrolene", "baclofen"];
        assert_eq!(suggestion("tizanidin", &known), Some("tizanidine"));
        assert_eq!(suggestion("baklofen", &known), Some("baclofen"));
        assert_eq!(suggestion("aspirin", &known), None);
    }
}
