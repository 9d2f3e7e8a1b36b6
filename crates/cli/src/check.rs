//! `pathway check`: validate and lint a rule set, the way a compiler reports.

use std::path::Path;

use pathway_fhir::ValueSets;
use pathway_rules::{Diagnostic, RuleSet, Severity};

use crate::common::{self, Fail};

/// Renders a diagnostic with the offending line and a caret under the offending text.
pub fn render(d: &Diagnostic, src: &str) -> String {
    let sev = match d.severity() {
        Severity::Error => "error",
        Severity::Warning => "warning",
    };
    let mut out = format!("{sev}[{}]: {}\n", d.kind().as_str(), d.message());
    match d.location() {
        Some(loc) => {
            out.push_str(&format!("  --> {}:{}:{}\n", d.file(), loc.line, loc.column));
            if let Some(line) = d.line_text() {
                let gutter = loc.line.to_string().len();
                let pad = " ".repeat(gutter);
                let len = d
                    .span()
                    .and_then(|s| src.get(s))
                    .map_or(1, |t| t.lines().next().unwrap_or("").chars().count().max(1));
                let caret_start = " ".repeat(loc.column.saturating_sub(1));
                out.push_str(&format!(
                    "{pad} |\n{} | {line}\n{pad} | {caret_start}{}\n",
                    loc.line,
                    "^".repeat(len)
                ));
            }
        }
        None => out.push_str(&format!("  --> {}\n", d.file())),
    }
    match (d.rule_id(), d.field_name()) {
        (Some(r), Some(f)) => out.push_str(&format!("  = in `{r}`, field `{f}`\n")),
        (Some(r), None) => out.push_str(&format!("  = in `{r}`\n")),
        _ => {}
    }
    out
}

pub fn run(path: &Path, valuesets: Option<&Path>) -> Result<(), Fail> {
    let src = std::fs::read_to_string(path)
        .map_err(|e| Fail::input(format!("{}: {e}", path.display())))?;
    let name = path.display().to_string();
    match RuleSet::from_toml(&name, &src) {
        Err(e) => {
            let mut text = String::new();
            for d in e.diagnostics() {
                text.push_str(&render(d, &src));
                text.push('\n');
            }
            let errors = e
                .diagnostics()
                .iter()
                .filter(|d| d.severity() == Severity::Error)
                .count();
            eprint!("{text}");
            Err(Fail::input(format!(
                "{name}: {errors} error{} found; the rule set cannot be used",
                if errors == 1 { "" } else { "s" }
            )))
        }
        Ok(rs) => {
            let mut text = String::new();
            for d in rs.warnings() {
                text.push_str(&render(d, &src));
                text.push('\n');
            }
            if let Some(vs) = valuesets {
                let vs = ValueSets::load(vs, &rs).map_err(|e| Fail::input(e.to_string()))?;
                for w in vs.warnings() {
                    text.push_str(&format!("warning: {w}\n"));
                }
            }
            text.push_str(&format!(
                "{name}: rule set {} {}: {} steps, {} rules, {} facts; 0 errors, {} warning{}{}",
                rs.stamp().id,
                rs.stamp().version,
                rs.ladder().len(),
                rs.rules().count(),
                rs.facts().len(),
                rs.warnings().len(),
                if rs.warnings().len() == 1 { "" } else { "s" },
                if valuesets.is_some() {
                    "; value sets fit"
                } else {
                    ""
                }
            ));
            common::print(&text)
        }
    }
}
