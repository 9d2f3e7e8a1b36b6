//! What every subcommand shares: loading content and input, dates, errors, output.

use std::io::{IsTerminal, Read, Write};
use std::path::Path;

use pathway_core::{Date, Profile};
use pathway_fhir::{ReadOptions, Reader, Reading, ValueSets};
use pathway_rules::RuleSet;
use serde::Deserialize;

use crate::Content;

/// A failure: a message for stderr and an exit code (1 input, 2 usage).
#[derive(Debug)]
pub struct Fail {
    pub message: String,
    pub code: u8,
}

impl Fail {
    /// Invalid input or rule set: exit 1.
    pub fn input(message: impl Into<String>) -> Fail {
        Fail {
            message: message.into(),
            code: 1,
        }
    }

    /// Bad usage: exit 2.
    pub fn usage(message: impl Into<String>) -> Fail {
        Fail {
            message: message.into(),
            code: 2,
        }
    }
}

/// When to colour text.
#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum Colour {
    /// On a terminal, unless NO_COLOR is set.
    Auto,
    /// Always.
    Always,
    /// Never.
    Never,
}

impl Colour {
    pub fn on(self, terminal: bool) -> bool {
        match self {
            Colour::Always => true,
            Colour::Never => false,
            Colour::Auto => terminal && std::env::var_os("NO_COLOR").is_none(),
        }
    }
}

/// The rule set: the file given, or the shipped one.
pub fn ruleset(content: &Content) -> Result<RuleSet, Fail> {
    match &content.ruleset {
        Some(p) => RuleSet::load(p).map_err(|e| Fail::input(e.to_string())),
        None => RuleSet::ms_spasticity().map_err(|e| Fail::input(e.to_string())),
    }
}

/// The value sets: the file given, or the shipped ones (which fit the shipped rule set only).
pub fn valuesets(content: &Content, rs: &RuleSet) -> Result<ValueSets, Fail> {
    match &content.valuesets {
        Some(p) => ValueSets::load(p, rs).map_err(|e| Fail::input(e.to_string())),
        None => ValueSets::ms_spasticity(rs).map_err(|e| {
            Fail::input(format!(
                "{e}; pass --valuesets with value sets for rule set {}",
                rs.stamp().id
            ))
        }),
    }
}

/// Parses `--date`, or today (UTC).
pub fn date(arg: Option<&str>) -> Result<Date, Fail> {
    match arg {
        Some(s) => s
            .parse::<Date>()
            .map_err(|e| Fail::usage(format!("--date `{s}` is not a date (YYYY-MM-DD): {e}"))),
        None => Ok(jiff::Timestamp::now()
            .to_zoned(jiff::tz::TimeZone::UTC)
            .date()),
    }
}

/// Reads a file, or standard input for `-`.
pub fn read_input(input: &str) -> Result<Vec<u8>, Fail> {
    let mut buf = Vec::new();
    if input == "-" {
        std::io::stdin()
            .read_to_end(&mut buf)
            .map_err(|e| Fail::input(format!("standard input: {e}")))?;
    } else {
        buf = std::fs::read(input).map_err(|e| Fail::input(format!("{input}: {e}")))?;
    }
    Ok(buf)
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Kind {
    resource_type: Option<String>,
}

/// A patient read from a FHIR Bundle or a Pathway profile, detected from the content.
pub struct Patient {
    pub profile: Profile,
    /// The Patient's reference (`Patient/abc`); a profile names none.
    pub reference: Option<String>,
    pub warnings: Vec<String>,
    pub unrecognized: Vec<pathway_rules::Unrecognized>,
    /// The Patient's name, where the record has one.
    pub name: Option<String>,
}

/// What a JSON record is: a FHIR resource of this `resourceType`, or (`None`) a Pathway
/// profile.
pub fn record_kind(bytes: &[u8]) -> Result<Option<String>, serde_json::Error> {
    serde_json::from_slice::<Kind>(bytes).map(|k| k.resource_type)
}

/// Why a text is not valid JSON, in a few words (without the position).
pub fn json_problem(e: &serde_json::Error) -> String {
    if e.is_eof() {
        "the file ends before the JSON does (truncated?)".to_owned()
    } else {
        let m = e.to_string();
        m.split(" at line ").next().unwrap_or(&m).to_owned()
    }
}

/// Reads one patient from `bytes` (named `name` in errors).
pub fn patient(
    name: &str,
    bytes: &[u8],
    rs: &RuleSet,
    content: &Content,
    date: Option<&str>,
    strict: bool,
) -> Result<Patient, Fail> {
    let kind = record_kind(bytes).map_err(|e| {
        Fail::input(format!(
            "{name}:{}:{}: not valid JSON: {}",
            e.line(),
            e.column(),
            json_problem(&e)
        ))
    })?;
    match kind.as_deref() {
        Some("Bundle") => {
            let d = self::date(date)?;
            let reader = Reader::new(rs, valuesets(content, rs)?);
            let opts = if strict {
                ReadOptions::strict(d)
            } else {
                ReadOptions::lenient(d)
            };
            let Reading {
                profile,
                patient,
                warnings,
                unrecognized,
                patient_name,
                ..
            } = reader
                .read_bundle(bytes, &opts)
                .map_err(|e| Fail::input(format!("{name}: {e}")))?;
            Ok(Patient {
                profile,
                reference: Some(patient),
                warnings: warnings.iter().map(ToString::to_string).collect(),
                unrecognized,
                name: patient_name,
            })
        }
        Some(other) => Err(Fail::input(format!(
            "{name}: expected a FHIR Bundle or a Pathway profile, found a FHIR {other}"
        ))),
        None => {
            let mut profile: Profile = serde_json::from_slice(bytes)
                .map_err(|e| Fail::input(format!("{name}: not a Pathway profile: {e}")))?;
            if date.is_some() {
                profile.date = self::date(date)?;
            }
            Ok(Patient {
                profile,
                reference: None,
                warnings: Vec::new(),
                unrecognized: Vec::new(),
                name: None,
            })
        }
    }
}

/// Pretty JSON.
pub fn pretty<T: serde::Serialize>(v: &T) -> Result<String, Fail> {
    serde_json::to_string_pretty(v).map_err(|e| Fail::input(format!("cannot write JSON: {e}")))
}

/// Prints to standard output; a closed pipe is not an error.
pub fn print(text: &str) -> Result<(), Fail> {
    let mut out = std::io::stdout().lock();
    match writeln!(out, "{text}") {
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        Err(e) => Err(Fail::input(format!("standard output: {e}"))),
        Ok(()) => Ok(()),
    }
}

/// Writes to a file, or prints.
pub fn write_or_print(out: Option<&Path>, text: &str) -> Result<(), Fail> {
    match out {
        // `-` is standard output, for every `--out`.
        Some(p) if p.as_os_str() == "-" => print(text),
        Some(p) => {
            std::fs::write(p, text).map_err(|e| Fail::input(format!("{}: {e}", p.display())))
        }
        None => print(text),
    }
}

/// Whether standard output is a terminal.
pub fn stdout_is_terminal() -> bool {
    std::io::stdout().is_terminal()
}
