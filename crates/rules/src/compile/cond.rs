//! Compiled conditions ([`Cond`]): a parsed condition's names resolved to dense indices through
//! a [`Scope`], with its types checked; built-in predicates and reserved names.

use std::ops::Range;

use pathway_core::{Outcome, OutcomeSet};

use crate::error::ErrorKind;
use crate::language::expr::{Arg, Ast, CmpOp, Name, Value};
use crate::model::FactKind;

/// Where a number comes from.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum NumSrc {
    Fact(u16),
    Age,
}

/// A compiled condition.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Cond {
    Const(bool),
    Bool(u16),
    /// The fact's value is known (recorded, or known by its absent policy).
    Known(u16),
    /// The fact's value is known only as an interval (`egfr` reported as `<60`).
    Imprecise(u16),
    Num(NumSrc, CmpOp, f64),
    /// A code fact is one of the codes in the mask (bit i = the fact's i-th value).
    Code(u16, u64),
    /// Sex is one of the mask (bit i = `Sex` in declaration order).
    Sex(u8),
    Derived(u16),
    /// outcome(step) is in the set; `none` says whether "no outcome" matches.
    Outcome {
        step: u16,
        set: OutcomeSet,
        none: bool,
    },
    Current(u16),
    Medication(u16),
    Hypersensitive(u16),
    Unavailable(u16),
    Failed(u16),
    Excluded(u16),
    /// Some escalation edge into the step was taken.
    Escalated(u16),
    /// The escalation edge with this index was taken.
    EscalatedFrom(u16),
    /// Every escalation edge into the step from its own tier was taken.
    Exhausted(u16),
    AdjunctToPartial(u16),
    Controlled(u8),
    Not(Box<Cond>),
    All(Vec<Cond>),
    Any(Vec<Cond>),
}

impl Cond {
    /// Calls `f` on this node and every node below it (not through derived facts).
    pub fn visit(&self, f: &mut impl FnMut(&Cond)) {
        f(self);
        match self {
            Cond::Not(c) => c.visit(f),
            Cond::All(cs) | Cond::Any(cs) => cs.iter().for_each(|c| c.visit(f)),
            _ => {}
        }
    }

    /// Whether this node reads availability (graph predicates that depend on exclusions).
    pub fn reads_availability(&self) -> bool {
        matches!(
            self,
            Cond::Unavailable(_)
                | Cond::Failed(_)
                | Cond::Excluded(_)
                | Cond::Escalated(_)
                | Cond::EscalatedFrom(_)
                | Cond::Exhausted(_)
                | Cond::Controlled(_)
        )
    }
}

/// What a name resolves against.
pub(crate) struct Scope<'a> {
    pub steps: &'a dyn Fn(&str) -> Option<u16>,
    pub facts: &'a dyn Fn(&str) -> Option<(u16, &'a FactKind)>,
    pub derived: &'a dyn Fn(&str) -> Option<u16>,
    pub medications: &'a dyn Fn(&str) -> Option<u16>,
    /// Index of the escalation edge `from -> to`, if the ladder has one.
    pub edge: &'a dyn Fn(u16, u16) -> Option<u16>,
    /// The step a rule is compiled for, if any.
    pub step: Option<u16>,
    pub step_name: Option<&'a str>,
}

/// A resolution error, relative to the condition text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ResolveError {
    pub kind: ErrorKind,
    pub message: String,
    pub span: Range<usize>,
}

fn err<T>(kind: ErrorKind, span: Range<usize>, message: String) -> Result<T, ResolveError> {
    Err(ResolveError {
        kind,
        message,
        span,
    })
}

const SEXES: [&str; 4] = ["male", "female", "other", "unknown"];
const STEP_PREDICATES: [&str; 8] = [
    "current",
    "unavailable",
    "failed",
    "excluded",
    "escalated",
    "exhausted",
    "adjunct-to-partial",
    "hypersensitive",
];

enum Subject {
    Number(NumSrc),
    Code(Codes),
    Bool(Cond),
}

enum Codes {
    Fact(u16, Vec<String>),
    Sex,
    Outcome(u16),
}

impl Scope<'_> {
    pub fn resolve(&self, ast: &Ast) -> Result<Cond, ResolveError> {
        Ok(match ast {
            Ast::Bool(b) => Cond::Const(*b),
            Ast::Not(a) => Cond::Not(Box::new(self.resolve(a)?)),
            Ast::And(items) => Cond::All(
                items
                    .iter()
                    .map(|a| self.resolve(a))
                    .collect::<Result<_, _>>()?,
            ),
            Ast::Or(items) => Cond::Any(
                items
                    .iter()
                    .map(|a| self.resolve(a))
                    .collect::<Result<_, _>>()?,
            ),
            Ast::Term { name, args } => match self.subject(name, args.as_deref())? {
                Subject::Bool(c) => c,
                Subject::Number(_) => {
                    return err(
                        ErrorKind::TypeMismatch,
                        name.span.clone(),
                        format!(
                            "`{}` is a number, not yes/no; compare it, for example `{} < 60`",
                            name.text, name.text
                        ),
                    );
                }
                Subject::Code(_) => {
                    return err(
                        ErrorKind::TypeMismatch,
                        name.span.clone(),
                        format!(
                            "`{}` is a code, not yes/no; test it, for example `{} = <code>` or `{} in [..]`",
                            name.text, name.text, name.text
                        ),
                    );
                }
            },
            Ast::Compare {
                name,
                args,
                op,
                value,
                value_span,
            } => match (self.subject(name, args.as_deref())?, value) {
                (Subject::Number(src), Value::Number(n)) => Cond::Num(src, *op, *n),
                (Subject::Number(_), Value::Name(v)) => {
                    return err(
                        ErrorKind::TypeMismatch,
                        v.span.clone(),
                        format!(
                            "`{}` is a number and cannot be compared with the code `{}`",
                            name.text, v.text
                        ),
                    );
                }
                (Subject::Code(codes), Value::Name(v)) => {
                    let negated = match op {
                        CmpOp::Eq => false,
                        CmpOp::Ne => true,
                        _ => {
                            return err(
                                ErrorKind::TypeMismatch,
                                name.span.start..value_span.end,
                                format!(
                                    "`{}` is a code; codes are tested with `=`, `!=` or `in`, not `{op}`",
                                    name.text
                                ),
                            );
                        }
                    };
                    self.membership(name, codes, std::slice::from_ref(v), negated)?
                }
                (Subject::Code(_), Value::Number(n)) => {
                    return err(
                        ErrorKind::TypeMismatch,
                        value_span.clone(),
                        format!(
                            "`{}` is a code and cannot be compared with the number {n}",
                            name.text
                        ),
                    );
                }
                (Subject::Bool(_), _) => {
                    return err(
                        ErrorKind::TypeMismatch,
                        value_span.clone(),
                        format!(
                            "`{}` is yes/no and cannot be compared with a value; write `{}` or `not {}`",
                            name.text, name.text, name.text
                        ),
                    );
                }
            },
            Ast::In {
                name,
                args,
                negated,
                values,
            } => match self.subject(name, args.as_deref())? {
                Subject::Code(codes) => self.membership(name, codes, values, *negated)?,
                _ => {
                    return err(
                        ErrorKind::TypeMismatch,
                        name.span.clone(),
                        format!("`{}` is not a code; `in [..]` tests codes only", name.text),
                    );
                }
            },
        })
    }

    fn membership(
        &self,
        name: &Name,
        codes: Codes,
        values: &[Name],
        negated: bool,
    ) -> Result<Cond, ResolveError> {
        let allowed: Vec<String> = match &codes {
            Codes::Fact(_, vals) => vals.clone(),
            Codes::Sex => SEXES.iter().map(|s| (*s).to_owned()).collect(),
            Codes::Outcome(_) => Outcome::ALL
                .iter()
                .map(|o| o.as_str().to_owned())
                .chain(std::iter::once("none".to_owned()))
                .collect(),
        };
        let mut mask: u64 = 0;
        for v in values {
            match allowed.iter().position(|a| *a == v.text) {
                Some(i) => mask |= 1 << i,
                None => {
                    return err(
                        ErrorKind::UnknownValue,
                        v.span.clone(),
                        format!(
                            "`{}` is not a value of `{}`; allowed: {}",
                            v.text,
                            name.text,
                            allowed.join(", ")
                        ),
                    );
                }
            }
        }
        let all = if allowed.len() >= 64 {
            u64::MAX
        } else {
            (1u64 << allowed.len()) - 1
        };
        if negated {
            mask = !mask & all;
        }
        Ok(match codes {
            Codes::Fact(ix, _) => Cond::Code(ix, mask),
            Codes::Sex => Cond::Sex(u8::try_from(mask & 0xf).unwrap_or(0)),
            Codes::Outcome(step) => {
                let set = Outcome::ALL
                    .iter()
                    .enumerate()
                    .filter(|(i, _)| mask & (1 << i) != 0)
                    .map(|(_, o)| *o)
                    .collect();
                Cond::Outcome {
                    step,
                    set,
                    none: mask & (1 << Outcome::ALL.len()) != 0,
                }
            }
        })
    }

    /// The step a predicate applies to: its argument, or the rule's own step.
    fn step_arg(&self, name: &Name, args: Option<&[Arg]>) -> Result<u16, ResolveError> {
        match args {
            None | Some([]) => match self.step {
                Some(s) => Ok(s),
                None => err(
                    ErrorKind::InvalidRule,
                    name.span.clone(),
                    format!(
                        "`{}` needs a step here (there is no rule step): write `{}(<step>)`",
                        name.text, name.text
                    ),
                ),
            },
            Some([Arg::Name(step)]) => match (self.steps)(&step.text) {
                Some(s) => Ok(s),
                None => err(
                    ErrorKind::UnknownStep,
                    step.span.clone(),
                    format!("`{}` is not a step of the ladder", step.text),
                ),
            },
            Some([a, ..]) => err(
                ErrorKind::InvalidRule,
                a.span(),
                format!("`{}` takes one step id", name.text),
            ),
        }
    }

    fn one_name<'n>(
        &self,
        name: &Name,
        args: Option<&'n [Arg]>,
        what: &str,
    ) -> Result<&'n Name, ResolveError> {
        match args {
            Some([Arg::Name(n)]) => Ok(n),
            _ => err(
                ErrorKind::InvalidRule,
                name.span.clone(),
                format!(
                    "`{}` takes one {what}: `{}(<{what}>)`",
                    name.text, name.text
                ),
            ),
        }
    }

    fn subject(&self, name: &Name, args: Option<&[Arg]>) -> Result<Subject, ResolveError> {
        let text = name.text.as_str();
        let no_args = |s: Subject| -> Result<Subject, ResolveError> {
            match args {
                None => Ok(s),
                Some(a) => err(
                    ErrorKind::InvalidRule,
                    a.first().map_or(name.span.clone(), Arg::span),
                    format!("`{text}` takes no arguments"),
                ),
            }
        };
        match text {
            "age" => return no_args(Subject::Number(NumSrc::Age)),
            "known" | "imprecise" => {
                let fact = self.one_name(name, args, "fact")?;
                return match (self.facts)(&fact.text) {
                    Some((ix, _)) if text == "known" => Ok(Subject::Bool(Cond::Known(ix))),
                    Some((ix, _)) => Ok(Subject::Bool(Cond::Imprecise(ix))),
                    None => err(
                        ErrorKind::UnknownFact,
                        fact.span.clone(),
                        format!("`{}` is not a fact of the catalogue", fact.text),
                    ),
                };
            }
            "sex" => return no_args(Subject::Code(Codes::Sex)),
            "outcome" => return Ok(Subject::Code(Codes::Outcome(self.step_arg(name, args)?))),
            "medication" => {
                let class = self.one_name(name, args, "medication class")?;
                return match (self.medications)(&class.text) {
                    Some(m) => Ok(Subject::Bool(Cond::Medication(m))),
                    None => err(
                        ErrorKind::UnknownMedication,
                        class.span.clone(),
                        format!("`{}` is not a declared medication class", class.text),
                    ),
                };
            }
            "escalated-from" => {
                let from = self.step_arg(name, args)?;
                let Some(to) = self.step else {
                    return err(
                        ErrorKind::InvalidRule,
                        name.span.clone(),
                        "`escalated-from` can only be used in a rule for a step".into(),
                    );
                };
                return match (self.edge)(from, to) {
                    Some(e) => Ok(Subject::Bool(Cond::EscalatedFrom(e))),
                    None => err(
                        ErrorKind::Ladder,
                        name.span.start
                            ..args
                                .and_then(|a| a.last())
                                .map_or(name.span.end, |a| a.span().end + 1),
                        format!(
                            "the ladder has no escalation edge into `{}` from that step",
                            self.step_name.unwrap_or("?")
                        ),
                    ),
                };
            }
            "controlled" => {
                return match args {
                    Some([Arg::Number(n, _)]) if n.fract() == 0.0 && (0.0..=255.0).contains(n) => {
                        Ok(Subject::Bool(Cond::Controlled(*n as u8)))
                    }
                    _ => err(
                        ErrorKind::InvalidRule,
                        name.span.clone(),
                        "`controlled` takes the lowest tier that counts: `controlled(2)`".into(),
                    ),
                };
            }
            t if STEP_PREDICATES.contains(&t) => {
                let s = self.step_arg(name, args)?;
                let c = match t {
                    "current" => Cond::Current(s),
                    "unavailable" => Cond::Unavailable(s),
                    "failed" => Cond::Failed(s),
                    "excluded" => Cond::Excluded(s),
                    "escalated" => Cond::Escalated(s),
                    "exhausted" => Cond::Exhausted(s),
                    "adjunct-to-partial" => Cond::AdjunctToPartial(s),
                    _ => Cond::Hypersensitive(s),
                };
                return Ok(Subject::Bool(c));
            }
            _ => {}
        }
        if let Some((ix, kind)) = (self.facts)(text) {
            return no_args(match kind {
                FactKind::Bool => Subject::Bool(Cond::Bool(ix)),
                FactKind::Number { .. } => Subject::Number(NumSrc::Fact(ix)),
                FactKind::Code { values, .. } => Subject::Code(Codes::Fact(ix, values.clone())),
            });
        }
        if let Some(ix) = (self.derived)(text) {
            return no_args(Subject::Bool(Cond::Derived(ix)));
        }
        err(
            ErrorKind::UnknownFact,
            name.span.clone(),
            format!("`{text}` is not a fact, derived fact or predicate of this rule set"),
        )
    }
}

/// Built-in names other than the step predicates.
const OTHER_BUILTINS: [&str; 8] = [
    "age",
    "known",
    "imprecise",
    "sex",
    "outcome",
    "medication",
    "escalated-from",
    "controlled",
];

/// Whether a name is taken by the language, so that no fact or derived fact may use it.
pub(crate) fn reserved(name: &str) -> bool {
    STEP_PREDICATES.contains(&name) || OTHER_BUILTINS.contains(&name)
}
