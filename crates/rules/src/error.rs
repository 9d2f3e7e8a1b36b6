//! Typed errors: problems in a rule set (with file, line and column) and problems in a profile.

use std::fmt;
use std::ops::Range;

/// What kind of problem a [`Diagnostic`] reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorKind {
    /// The file is not valid TOML, or a field is missing, unknown or of the wrong type.
    Syntax,
    /// A condition cannot be parsed.
    Condition,
    /// A name that is not a step of the ladder.
    UnknownStep,
    /// A name that is not a fact, derived fact or predicate.
    UnknownFact,
    /// A code that is not one of a fact's values.
    UnknownValue,
    /// A medication class that is not declared.
    UnknownMedication,
    /// A source key that is not declared.
    UnknownSource,
    /// A rule cites no source.
    MissingSource,
    /// A rule id, fact or derived fact defined twice, or a name used for two things.
    Duplicate,
    /// A test that does not fit the type of what it tests (a yes/no fact compared with a number).
    TypeMismatch,
    /// A field that does not fit the rule's effect (a gate with `when`, a rule with no steps).
    InvalidRule,
    /// The ladder is not valid (cycle, unreachable step, a tier that goes backwards).
    Ladder,
    /// Definitions that depend on themselves, or an exclusion that reads availability.
    Circular,
    /// A warning from the linter: the rule set is valid but probably not what was meant.
    Lint,
}

impl ErrorKind {
    /// A short stable name, used in messages (`error[unknown-step]`).
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorKind::Syntax => "syntax",
            ErrorKind::Condition => "condition",
            ErrorKind::UnknownStep => "unknown-step",
            ErrorKind::UnknownFact => "unknown-fact",
            ErrorKind::UnknownValue => "unknown-value",
            ErrorKind::UnknownMedication => "unknown-medication",
            ErrorKind::UnknownSource => "unknown-source",
            ErrorKind::MissingSource => "missing-source",
            ErrorKind::Duplicate => "duplicate",
            ErrorKind::TypeMismatch => "type-mismatch",
            ErrorKind::InvalidRule => "invalid-rule",
            ErrorKind::Ladder => "ladder",
            ErrorKind::Circular => "circular",
            ErrorKind::Lint => "lint",
        }
    }
}

/// How serious a diagnostic is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Severity {
    /// The rule set cannot be used.
    Error,
    /// The rule set works but probably not as intended.
    Warning,
}

/// A line and column, both counted from 1; the column counts characters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Location {
    /// Line, from 1.
    pub line: usize,
    /// Column, from 1.
    pub column: usize,
}

/// One problem found in a rule set, the way a compiler reports it.
///
/// ```
/// use pathway_rules::{ErrorKind, RuleSet};
/// let text = include_str!("../../../fixtures/rulesets/ms-spasticity.toml")
///     .replace(r#"steps = ["tizanidine"]"#, r#"steps = ["tizanidin"]"#);
/// let err = RuleSet::from_toml("ms.toml", &text).unwrap_err();
/// let d = &err.diagnostics()[0];
/// assert_eq!(d.kind(), ErrorKind::UnknownStep);
/// assert!(d.to_string().starts_with("ms.toml:"));
/// assert!(d.message().contains("tizanidin"));
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostic {
    severity: Severity,
    kind: ErrorKind,
    message: String,
    file: String,
    rule: Option<String>,
    field: Option<String>,
    span: Option<Range<usize>>,
    location: Option<Location>,
    line_text: Option<String>,
}

impl Diagnostic {
    pub(crate) fn new(kind: ErrorKind, message: impl Into<String>) -> Diagnostic {
        Diagnostic {
            severity: if kind == ErrorKind::Lint {
                Severity::Warning
            } else {
                Severity::Error
            },
            kind,
            message: message.into(),
            file: String::new(),
            rule: None,
            field: None,
            span: None,
            location: None,
            line_text: None,
        }
    }

    pub(crate) fn rule(mut self, id: &str) -> Self {
        self.rule = Some(id.to_owned());
        self
    }

    pub(crate) fn field(mut self, field: &str) -> Self {
        self.field = Some(field.to_owned());
        self
    }

    pub(crate) fn at(mut self, span: Range<usize>) -> Self {
        self.span = Some(span);
        self
    }

    /// Fills in the file name, line, column and line text from the source.
    pub(crate) fn locate(self, file: &str, src: &str) -> Self {
        self.locate_in(file, &Lines::of(src))
    }

    /// As [`Diagnostic::locate`], with the source's lines indexed once for many diagnostics.
    pub(crate) fn locate_in(mut self, file: &str, lines: &Lines<'_>) -> Self {
        self.file = file.to_owned();
        if let Some(span) = &self.span {
            let src = lines.src;
            let start = span.start.min(src.len());
            // The number of line starts at or before `start` is the line number.
            let line = lines.starts.partition_point(|&s| s <= start);
            let line_start = lines
                .starts
                .get(line.saturating_sub(1))
                .copied()
                .unwrap_or(0);
            let column = src
                .get(line_start..start)
                .unwrap_or_default()
                .chars()
                .count()
                + 1;
            self.location = Some(Location { line, column });
            self.line_text = src
                .get(line_start..)
                .and_then(|rest| rest.lines().next())
                .map(str::to_owned);
        }
        self
    }

    /// Error or warning.
    pub fn severity(&self) -> Severity {
        self.severity
    }

    /// What kind of problem it is.
    pub fn kind(&self) -> ErrorKind {
        self.kind
    }

    /// The message, one sentence.
    pub fn message(&self) -> &str {
        &self.message
    }

    /// The file the rule set was read from.
    pub fn file(&self) -> &str {
        &self.file
    }

    /// The rule (or fact, derived fact, step) the problem is in.
    pub fn rule_id(&self) -> Option<&str> {
        self.rule.as_deref()
    }

    /// The field of the rule the problem is in (`when`, `steps`, `source`).
    pub fn field_name(&self) -> Option<&str> {
        self.field.as_deref()
    }

    /// Line and column of the offending text, when known.
    pub fn location(&self) -> Option<Location> {
        self.location
    }

    /// Byte range of the offending text in the file, when known.
    pub fn span(&self) -> Option<Range<usize>> {
        self.span.clone()
    }

    /// The whole line that holds the offending text, when known.
    pub fn line_text(&self) -> Option<&str> {
        self.line_text.as_deref()
    }
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.file)?;
        if let Some(Location { line, column }) = self.location {
            write!(f, ":{line}:{column}")?;
        }
        let sev = match self.severity {
            Severity::Error => "error",
            Severity::Warning => "warning",
        };
        write!(f, ": {sev}[{}]: {}", self.kind.as_str(), self.message)?;
        match (&self.rule, &self.field) {
            (Some(r), Some(fl)) => write!(f, " (in `{r}`, field `{fl}`)"),
            (Some(r), None) => write!(f, " (in `{r}`)"),
            (None, Some(fl)) => write!(f, " (field `{fl}`)"),
            (None, None) => Ok(()),
        }
    }
}

/// A rule set that could not be loaded: every problem found, in file order.
///
/// Its `Display` prints one diagnostic a line.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}", render(.file, .diagnostics))]
pub struct LoadError {
    file: String,
    diagnostics: Vec<Diagnostic>,
}

/// Where each line of a source text starts, to locate many diagnostics in one pass.
pub(crate) struct Lines<'a> {
    src: &'a str,
    starts: Vec<usize>,
}

impl<'a> Lines<'a> {
    pub(crate) fn of(src: &'a str) -> Self {
        let starts = std::iter::once(0)
            .chain(src.match_indices('\n').map(|(i, _)| i + 1))
            .collect();
        Lines { src, starts }
    }
}

fn render(file: &str, ds: &[Diagnostic]) -> String {
    let errors = ds.iter().filter(|d| d.severity == Severity::Error).count();
    let mut s = format!(
        "rule set {file} has {errors} error{}",
        if errors == 1 { "" } else { "s" }
    );
    for d in ds {
        s.push('\n');
        s.push_str(&d.to_string());
    }
    s
}

impl LoadError {
    pub(crate) fn new(file: &str, mut diagnostics: Vec<Diagnostic>) -> LoadError {
        diagnostics.sort_by_key(|d| (d.span.as_ref().map_or(usize::MAX, |s| s.start), d.severity));
        LoadError {
            file: file.to_owned(),
            diagnostics,
        }
    }

    /// The file that failed to load.
    pub fn file(&self) -> &str {
        &self.file
    }

    /// Every problem found (errors and any warnings), in file order.
    pub fn diagnostics(&self) -> &[Diagnostic] {
        &self.diagnostics
    }
}

/// A profile that does not fit the rule set it is evaluated against.
///
/// ```
/// use pathway_core::{Date, Profile};
/// use pathway_rules::{ProfileError, RuleSet};
/// let rs = RuleSet::ms_spasticity().unwrap();
/// let p = Profile::new(Date::constant(2026, 11, 22), 40).with_fact("egrf", 50.0);
/// let err = rs.evaluate(&p).unwrap_err();
/// assert!(matches!(err, ProfileError::UnknownFact { .. }));
/// assert_eq!(err.to_string(), "profile fact `egrf` is not in the catalogue of rule set ms-spasticity");
/// ```
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum ProfileError {
    /// A fact the catalogue does not declare.
    #[error("profile fact `{fact}` is not in the catalogue of rule set {ruleset}")]
    UnknownFact {
        /// The fact id.
        fact: String,
        /// The rule set id.
        ruleset: String,
    },
    /// A fact value of the wrong type.
    #[error("profile fact `{fact}` should be {expected}, found `{found}`")]
    WrongType {
        /// The fact id.
        fact: String,
        /// What the catalogue declares.
        expected: &'static str,
        /// The value found.
        found: String,
    },
    /// A number outside the fact's range, or not a whole number where one is required.
    #[error("profile fact `{fact}` is {value}, outside its range {range}")]
    OutOfRange {
        /// The fact id.
        fact: String,
        /// The value found.
        value: f64,
        /// The allowed range, in words.
        range: String,
    },
    /// An interval with no bound, a bound that is not finite or outside the fact's range, or
    /// bounds that leave no number.
    #[error(
        "profile fact `{fact}` has interval `{value}`, which is empty, unbounded or outside {range}"
    )]
    BadInterval {
        /// The fact id.
        fact: String,
        /// The interval, as written.
        value: String,
        /// The allowed range, in words.
        range: String,
    },
    /// A code that is not one of the fact's values.
    #[error("profile fact `{fact}` has value `{value}`; allowed: {allowed}")]
    UnknownCode {
        /// The fact id.
        fact: String,
        /// The value found.
        value: String,
        /// The allowed values.
        allowed: String,
    },
    /// A step id that is not on the ladder.
    #[error("profile {field} names `{step}`, which is not a step of rule set {ruleset}")]
    UnknownStep {
        /// `steps` or `hypersensitivities`.
        field: &'static str,
        /// The id found.
        step: String,
        /// The rule set id.
        ruleset: String,
    },
    /// A medication class the rule set does not declare.
    #[error("profile medication class `{class}` is not declared by rule set {ruleset}")]
    UnknownMedication {
        /// The class found.
        class: String,
        /// The rule set id.
        ruleset: String,
    },
}
