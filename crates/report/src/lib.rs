//! # pathway-report
//!
//! Renders a [`Recommendation`] for a person to read: grouped by tier, one line per step with
//! its status, the decisive reasons in plain language, notes, and the missing facts that could
//! change the answer.
//!
//! ```
//! use pathway_core::{Date, Profile};
//! use pathway_report::TextReport;
//! use pathway_rules::RuleSet;
//!
//! let rs = RuleSet::ms_spasticity().unwrap();
//! let p = Profile::new(Date::constant(2026, 11, 22), 45)
//!     .with_fact("multiple-sclerosis", true)
//!     .with_fact("spasticity", true);
//! let text = TextReport::new(&rs).render(&rs.evaluate(&p).unwrap());
//! assert!(text.contains("Aggravating factors"));
//! assert!(text.contains("OFFER     Look for and treat aggravating factors"));
//! assert!(text.contains("Summary\n  Offer now: Look for and treat aggravating factors"));
//! assert!(text.contains("Legend: why = the rule that decided the status"));
//! assert!(text.contains("References\n  CK: ") && text.contains("\n  NG220: NICE NG220"));
//! ```
#![forbid(unsafe_code)]

pub mod graph;

use std::fmt::Write as _;

use pathway_core::Status;
use pathway_rules::{Effect, Recommendation, RuleSet};

/// A plain-text report, optionally with ANSI colour.
#[derive(Debug, Clone)]
pub struct TextReport<'a> {
    rs: &'a RuleSet,
    colour: bool,
    width: usize,
    patient: Option<String>,
}

/// What each reason's role means, in plain words: the legend printed with every report.
pub const ROLE_LEGEND: &str = LEGEND;

const LEGEND: &str = "why = the rule that decided the status; met / needs = what the step's gate \
requires, met or still needed; check = a rule that may apply but a fact it reads is not \
recorded (please check it); also = another rule that holds but did not decide; note = \
information.";

/// The label and ANSI colour of a status.
fn label(s: Status) -> (&'static str, &'static str) {
    match s {
        Status::Continue => ("CONTINUE", "\x1b[1;34m"),
        Status::Offer => ("OFFER", "\x1b[1;32m"),
        Status::Caution => ("CAUTION", "\x1b[1;33m"),
        Status::NotYet => ("NOT YET", "\x1b[2m"),
        Status::Excluded => ("EXCLUDED", "\x1b[1;31m"),
    }
}

impl<'a> TextReport<'a> {
    /// A report for results of this rule set (it names the tiers).
    pub fn new(rs: &'a RuleSet) -> Self {
        TextReport {
            rs,
            colour: false,
            width: 100,
            patient: None,
        }
    }

    /// Colour the statuses (for a terminal).
    #[must_use]
    pub fn colour(mut self, on: bool) -> Self {
        self.colour = on;
        self
    }

    /// Name the patient in the header (an identifier, a name, or both).
    #[must_use]
    pub fn patient(mut self, who: impl Into<String>) -> Self {
        self.patient = Some(who.into());
        self
    }

    /// Wrap text at this many columns (at least 60).
    #[must_use]
    pub fn width(mut self, width: usize) -> Self {
        self.width = width.max(60);
        self
    }

    fn paint(&self, code: &str, text: &str) -> String {
        if self.colour {
            format!("{code}{text}\x1b[0m")
        } else {
            text.to_owned()
        }
    }

    /// Renders the recommendation.
    pub fn render(&self, rec: &Recommendation) -> String {
        let mut out = String::new();
        let short = rec.ruleset.hash.get(..19).unwrap_or(&rec.ruleset.hash);
        if let Some(who) = &self.patient {
            let _ = writeln!(out, "Patient: {who}");
        }
        let _ = writeln!(
            out,
            "Evaluated {} with rule set {} {} ({short})",
            rec.date, rec.ruleset.id, rec.ruleset.version
        );
        if let Some(why) = rec.not_applicable_because() {
            let _ = writeln!(out, "The pathway does not apply: {why}");
            if !rec.missing.is_empty() {
                let _ = writeln!(out, "Missing: {}", rec.missing.join(", "));
            }
            return out;
        }
        // The summary first: what to continue, offer, offer with caution, and what is excluded.
        let _ = writeln!(out);
        let _ = writeln!(out, "{}", self.paint("\x1b[1m", "Summary"));
        let names = |st: Status| -> Vec<&str> {
            rec.steps
                .iter()
                .filter(|s| s.status == st)
                .map(|s| s.name.as_str())
                .collect()
        };
        for (st, title) in [
            (Status::Continue, "Continue"),
            (Status::Offer, "Offer now"),
            (Status::Caution, "Offer with caution"),
        ] {
            let n = names(st);
            if !n.is_empty() {
                for (i, l) in wrap(&format!("{title}: {}.", n.join(", ")), self.width - 2)
                    .iter()
                    .enumerate()
                {
                    let _ = writeln!(out, "{}{l}", if i == 0 { "  " } else { "    " });
                }
            }
        }
        let excluded: Vec<String> = rec
            .steps
            .iter()
            .filter(|s| s.status == Status::Excluded)
            .map(|s| match s.decisive().next() {
                Some(r) => format!("{} ({})", s.name, r.text.trim_end_matches('.')),
                None => s.name.clone(),
            })
            .collect();
        if !excluded.is_empty() {
            for (i, l) in wrap(
                &format!("Excluded: {}.", excluded.join("; ")),
                self.width - 2,
            )
            .iter()
            .enumerate()
            {
                let _ = writeln!(out, "{}{l}", if i == 0 { "  " } else { "    " });
            }
        }
        let mut tier = None;
        for s in &rec.steps {
            if tier != Some(s.tier) {
                tier = Some(s.tier);
                let _ = writeln!(out);
                let title = self.rs.tier_name(s.tier);
                let _ = writeln!(out, "{}", self.paint("\x1b[1m", &title));
            }
            let (text, code) = label(s.status);
            let _ = writeln!(
                out,
                "  {} {}",
                self.paint(code, &format!("{text:<9}")),
                s.name
            );
            let indent = "            ";
            for r in &s.reasons {
                let mark = format!("{}:", r.role().label());
                let mut line = format!("{mark} {}", r.text);
                let facts: Vec<String> = r
                    .facts
                    .iter()
                    .filter(|f| !f.value.starts_with("not recorded (false)"))
                    .map(|f| format!("{} = {}", f.fact, f.value))
                    .collect();
                if !facts.is_empty() && r.effect != Effect::Note {
                    let _ = write!(line, " [{}]", facts.join("; "));
                }
                let _ = write!(line, " ({}; {})", r.rule, r.sources.join(", "));
                for (i, l) in wrap(&line, self.width.saturating_sub(indent.len()))
                    .iter()
                    .enumerate()
                {
                    let pad = if i == 0 {
                        indent.to_owned()
                    } else {
                        format!("{indent}  ")
                    };
                    let _ = writeln!(out, "{pad}{l}");
                }
            }
            if !s.missing.is_empty() {
                let line = format!("missing: {}", s.missing.join(", "));
                let _ = writeln!(out, "{indent}{}", self.paint("\x1b[35m", &line));
            }
        }
        if !rec.unrecognized.is_empty() {
            let _ = writeln!(out);
            let _ = writeln!(
                out,
                "not recognised ({}; their interactions and contraindications were not checked):",
                rec.unrecognized.len()
            );
            for u in &rec.unrecognized {
                let _ = writeln!(out, "  {u}");
            }
        }
        if !rec.warnings.is_empty() {
            let _ = writeln!(out);
            for w in &rec.warnings {
                let _ = writeln!(out, "warning: {w}");
            }
        }
        let _ = writeln!(out);
        for l in wrap(&format!("Legend: {LEGEND}"), self.width) {
            let _ = writeln!(out, "{l}");
        }
        // Every source cited, expanded.
        let cited = crate::cited_sources(rec);
        if !cited.is_empty() {
            let _ = writeln!(out);
            let _ = writeln!(out, "{}", self.paint("\x1b[1m", "References"));
            for k in cited {
                let text = self
                    .rs
                    .sources()
                    .get(k)
                    .map_or_else(String::new, |src| src.citation.clone());
                for (i, l) in wrap(&format!("{k}: {text}"), self.width - 2)
                    .iter()
                    .enumerate()
                {
                    let _ = writeln!(out, "{}{l}", if i == 0 { "  " } else { "    " });
                }
            }
        }
        out
    }
}

/// Every source key the recommendation's reasons cite, sorted, each once.
pub fn cited_sources(rec: &Recommendation) -> Vec<&str> {
    let mut cited: Vec<&str> = rec
        .steps
        .iter()
        .flat_map(|s| {
            s.reasons
                .iter()
                .flat_map(|r| r.sources.iter().map(|k| &**k))
        })
        .collect();
    cited.sort_unstable();
    cited.dedup();
    cited
}

/// Greedy word wrap.
fn wrap(text: &str, width: usize) -> Vec<String> {
    let mut lines = Vec::new();
    let mut line = String::new();
    for word in text.split_whitespace() {
        if !line.is_empty() && line.len() + 1 + word.len() > width {
            lines.push(std::mem::take(&mut line));
        }
        if !line.is_empty() {
            line.push(' ');
        }
        line.push_str(word);
    }
    if !line.is_empty() {
        lines.push(line);
    }
    lines
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wrap_keeps_words_whole_and_lines_short() {
        let lines = wrap("aaa bbb ccc ddd", 7);
        assert_eq!(lines, ["aaa bbb", "ccc ddd"]);
        assert_eq!(wrap("", 10), Vec::<String>::new());
        assert_eq!(
            wrap("averyveryverylongword x", 5),
            ["averyveryverylongword", "x"]
        );
    }
}
