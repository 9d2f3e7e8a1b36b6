//! The rule language, as written: the condition language ([`expr`]: lexer and parser) and the
//! TOML document model of a rule-set file ([`file`](mod@file)). Knows nothing of what names mean.

pub(crate) mod expr;
pub(crate) mod file;
