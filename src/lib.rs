//! facade
pub use pathway_core as core;
pub use pathway_rules as rules;
