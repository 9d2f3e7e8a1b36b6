//! From a parsed rule-set file to what evaluation runs: names resolved, conditions compiled
//! into one circuit, per-step plans; and the lint over the compiled conditions.

pub(crate) mod circuit;
pub(crate) mod compiler;
pub(crate) mod cond;
pub(crate) mod graph;
pub(crate) mod lint;
pub(crate) mod names;
pub(crate) mod plan;
