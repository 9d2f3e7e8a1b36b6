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
) -> Result<(), Fail> {
    let rs = common::ruleset(content)?;
    let bytes = common::read_input(input)?;
    let name = if input == "-" {
        "standard input"
    } else {
        input
    };
    let patient = common::patient(name, &bytes, &rs, content, date, strict)?;
    let mut rec = rs
        .evaluate(&patient.profile)
        .map_err(|e| Fail::input(format!("{name}: {e}")))?;
    rec.warnings = patient.warnings;
    rec.unrecognized = patient.unrecognized;
    let text = match format {
        Format::Text => {
            let report = TextReport::new(&rs).colour(colour.on(common::stdout_is_terminal()));
            // A profile names no patient; a Bundle's Patient is named.
            match (&patient.name, patient.reference.as_str()) {
                (None, "Patient/unknown") => report.render(&rec),
                (None, r) => report.patient(r).render(&rec),
                (Some(n), r) => report.patient(format!("{n} ({r})")).render(&rec),
            }
        }
        Format::Json => common::pretty(&rec)?,
        Format::CdsHooks => {
            common::pretty(&pathway_fhir::cds_hooks(&rec, &rs, &patient.reference))?
        }
        Format::Fhir => {
            common::pretty(&pathway_fhir::request_group(&rec, &rs, &patient.reference))?
        }
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
            who = match (&p.name, p.reference.as_str()) {
                (None, "Patient/unknown") => None,
                (None, r) => Some(r.to_owned()),
                (Some(n), r) => Some(format!("{n} ({r})")),
            };
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
