//! A profile as evaluation reads it: [`Prepared`] holds, per catalogue fact, its value
//! ([`Val`]), per step one state byte (outcome and current), the medication classes and
//! hypersensitivities, by index. Filled by [`RuleSet::prepare_into`](crate::RuleSet::prepare_into).

use pathway_core::{Date, Sex};

use crate::compile::circuit::state;
use crate::tri::Tri;

/// A fact's value, indexed.
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

pub(crate) fn at<T: Copy>(v: &[T], i: impl Into<usize>, default: T) -> T {
    v.get(i.into()).copied().unwrap_or(default)
}

/// A profile checked against a rule set's catalogue and indexed for evaluation.
///
/// Reuse one with [`RuleSet::prepare_into`](crate::RuleSet::prepare_into) to evaluate many patients without allocating.
#[derive(Debug, Clone, Default)]
pub struct Prepared {
    pub(crate) vals: Vec<Val>,
    pub(crate) recorded: Vec<bool>,
    pub(crate) age: f64,
    pub(crate) sex: Sex,
    pub(crate) date: Option<Date>,
    /// Per step, its outcome and whether it is current, as one byte (`circuit::state`).
    pub(crate) state: Vec<u8>,
    pub(crate) meds: Vec<Tri>,
    pub(crate) hyper: Vec<bool>,
    /// The catalogue's facts: missing medication classes are listed after them.
    pub(crate) fact_count: u16,
    /// The intervals of `Val::Range` values.
    pub(crate) ranges: Vec<pathway_core::Interval>,
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
    pub(crate) fn assign(&mut self, src: &Prepared) {
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
