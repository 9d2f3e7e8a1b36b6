//! `pathway evaluate` and `pathway graph`.

use std::path::Path;

use pathway_report::TextReport;
use pathway_report::graph;

use crate::common::{self, Colour, Fail};
use crate::{Content, Format, GraphFormat};

pub fn run(
    input: &str,
    content: &Content,
    date: Option<&str>,
    format: Format,
    strict: bool,
    colour: Colour,
    reference: Option<&str>,
) -> Result<(), Fail> {
    let rs = common::ruleset(content)?;
    let bytes = common::read_input(input)?;
    let name = if input == "-" {
        "standard input"
    } else {
        input
    };
    let mut patient = common::patient(name, &bytes, &rs, content, date, strict)?;
    if let Some(r) = reference {
        if !r.starts_with("Patient/") || r.len() <= "Patient/".len() {
            return Err(Fail::usage(format!(
                "--patient `{r}` is not a Patient reference (Patient/<id>)"
            )));
        }
        match &patient.reference {
            Some(own) if own != r => {
                return Err(Fail::input(format!(
                    "{name}: the record is about {own}, not {r} (--patient)"
                )));
            }
            _ => patient.reference = Some(r.to_owned()),
        }
    }
    // FHIR outputs name their subject: never an invented one.
    let subject = || {
        patient.reference.clone().ok_or_else(|| {
            Fail::usage(format!(
                "{name} is a profile, which names no patient: pass --patient Patient/<id> for the {} format",
                if matches!(format, Format::Fhir) { "fhir" } else { "cds-hooks" }
            ))
        })
    };
    let mut rec = rs
        .evaluate(&patient.profile)
        .map_err(|e| Fail::input(format!("{name}: {e}")))?;
    rec.warnings = std::mem::take(&mut patient.warnings);
    rec.unrecognized = std::mem::take(&mut patient.unrecognized);
    let text = match format {
        Format::Text => {
            let report = TextReport::new(&rs).colour(colour.on(common::stdout_is_terminal()));
            // A profile names no patient; a Bundle's Patient is named.
            match who(&patient) {
                None => report.render(&rec),
                Some(w) => report.patient(w).render(&rec),
            }
        }
        Format::Json => common::pretty(&rec)?,
        Format::CdsHooks => common::pretty(&pathway_fhir::cds_hooks(&rec, &rs, &subject()?))?,
        Format::Fhir => common::pretty(&pathway_fhir::request_group(&rec, &rs, &subject()?))?,
    };
    common::print(text.trim_end())
}

pub fn graph(
    patient: Option<&str>,
    content: &Content,
    date: Option<&str>,
    format: GraphFormat,
    out: Option<&Path>,
) -> Result<(), Fail> {
    let rs = common::ruleset(content)?;
    let mut who = None;
    let rec = match patient {
        Some(input) => {
            let bytes = common::read_input(input)?;
            let p = common::patient(input, &bytes, &rs, content, date, false)?;
            who = self::who(&p);
            let mut rec = rs
                .evaluate(&p.profile)
                .map_err(|e| Fail::input(format!("{input}: {e}")))?;
            rec.warnings = p.warnings;
            rec.unrecognized = p.unrecognized;
            Some(rec)
        }
        None => None,
    };
    let text = match format {
        GraphFormat::Dot => graph::dot(&rs, rec.as_ref()),
        GraphFormat::Mermaid => graph::mermaid(&rs, rec.as_ref()),
        GraphFormat::Svg => graph::svg_for(&rs, rec.as_ref(), who.as_deref()),
        GraphFormat::Html => graph::html_for(&rs, rec.as_ref(), who.as_deref()),
    };
    common::write_or_print(out, text.trim_end())
}

/// How a report names the patient: the name and reference where the record has them.
fn who(p: &common::Patient) -> Option<String> {
    match (&p.name, &p.reference) {
        (None, None) => None,
        (Some(n), None) => Some(n.clone()),
        (None, Some(r)) => Some(r.clone()),
        (Some(n), Some(r)) => Some(format!("{n} ({r})")),
    }
}
