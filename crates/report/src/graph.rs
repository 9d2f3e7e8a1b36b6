//! The ladder as a picture: Graphviz DOT, Mermaid, and self-contained SVG and HTML.
//!
//! With a recommendation, each step is coloured by its status and annotated with its
//! one-line reason.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use pathway_core::{EdgeKind, Ladder, Status};
use pathway_rules::{Recommendation, RuleSet, StepResult};

/// Fill colour and label of a status.
fn status_style(s: Status) -> (&'static str, &'static str, &'static str) {
    match s {
        Status::Offer => ("#d3f2d3", "#1f7a1f", "OFFER"),
        Status::Caution => ("#fff0bf", "#8a6100", "CAUTION"),
        Status::Continue => ("#d8e6ff", "#1f4f9a", "CONTINUE"),
        Status::NotYet => ("#eeeeee", "#555555", "NOT YET"),
        Status::Excluded => ("#f8d0d0", "#9a1f1f", "EXCLUDED"),
    }
}

/// Escapes text for XML and HTML.
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

fn clip(s: &str, n: usize) -> String {
    if s.chars().count() <= n {
        s.to_owned()
    } else {
        let mut t: String = s.chars().take(n.saturating_sub(1)).collect();
        t.push('…');
        t
    }
}

/// The one-line reason of a step: its first decisive reason, first sentence.
pub fn one_line(s: &StepResult) -> String {
    s.decisive()
        .next()
        .map(|r| {
            let t: &str = &r.text;
            t.split(". ")
                .next()
                .unwrap_or(t)
                .trim_end_matches('.')
                .to_owned()
        })
        .unwrap_or_default()
}

/// Layout columns: by tier, then by depth along escalation edges within the tier.
fn columns(ladder: &Ladder) -> Vec<(usize, usize)> {
    let mut depth: BTreeMap<String, usize> = BTreeMap::new();
    for s in ladder.steps() {
        let d = ladder
            .predecessors(s.id.as_str(), EdgeKind::Escalation)
            .filter(|p| p.tier == s.tier)
            .filter_map(|p| depth.get(p.id.as_str()).map(|d| d + 1))
            .max()
            .unwrap_or(0);
        depth.insert(s.id.to_string(), d);
    }
    let mut keys: Vec<(u8, usize)> = ladder
        .steps()
        .map(|s| (s.tier, depth.get(s.id.as_str()).copied().unwrap_or(0)))
        .collect();
    let mut distinct = keys.clone();
    distinct.sort_unstable();
    distinct.dedup();
    let mut row_in_col: BTreeMap<usize, usize> = BTreeMap::new();
    keys.drain(..)
        .map(|k| {
            let col = distinct.iter().position(|d| *d == k).unwrap_or(0);
            let row = row_in_col.entry(col).or_insert(0);
            let out = (col, *row);
            *row += 1;
            out
        })
        .collect()
}

/// The steps of each tier, in ladder order.
fn by_tier(ladder: &Ladder) -> BTreeMap<u8, Vec<&pathway_core::Step>> {
    let mut tiers: BTreeMap<u8, Vec<&pathway_core::Step>> = BTreeMap::new();
    for s in ladder.steps() {
        tiers.entry(s.tier).or_default().push(s);
    }
    tiers
}

fn status_of<'a>(rec: Option<&'a Recommendation>, id: &str) -> Option<&'a StepResult> {
    rec.and_then(|r| r.step(id))
}

/// Graphviz DOT.
///
/// ```
/// let rs = pathway_rules::RuleSet::ms_spasticity().unwrap();
/// let dot = pathway_report::graph::dot(&rs, None);
/// assert!(dot.starts_with("digraph ladder {"));
/// assert!(dot.contains("\"baclofen\" -> \"tizanidine\""));
/// ```
pub fn dot(rs: &RuleSet, rec: Option<&Recommendation>) -> String {
    let ladder = rs.ladder();
    let mut out = String::from(
        "digraph ladder {\n  rankdir=LR;\n  node [shape=box, style=\"rounded,filled\", fontname=\"Helvetica\", fillcolor=\"white\"];\n",
    );
    let tiers = by_tier(ladder);
    for (tier, steps) in tiers {
        let _ = writeln!(
            out,
            "  subgraph cluster_tier{tier} {{\n    label=\"{}\";",
            rs.tier_name(tier).replace('"', "'")
        );
        for s in steps {
            let mut label = s.name.replace('"', "'");
            let mut attrs = String::new();
            if let Some(r) = status_of(rec, s.id.as_str()) {
                let (fill, _, text) = status_style(r.status);
                let _ = write!(
                    label,
                    "\\n{text}: {}",
                    clip(&one_line(r), 60).replace('"', "'")
                );
                let _ = write!(attrs, ", fillcolor=\"{fill}\"");
            }
            let _ = writeln!(out, "    \"{}\" [label=\"{label}\"{attrs}];", s.id);
        }
        out.push_str("  }\n");
    }
    for (a, b, t) in ladder.edges() {
        let style = match t.kind {
            EdgeKind::Escalation => {
                let on: Vec<&str> = t.on.iter().map(|o| o.as_str()).collect();
                format!("label=\"{}\"", on.join(", "))
            }
            EdgeKind::Sequence => "style=dashed".to_owned(),
            EdgeKind::Alternative => "style=dotted, dir=none".to_owned(),
            EdgeKind::Adjunct => "style=dashed, color=\"#2a8a8a\", label=\"adjunct\"".to_owned(),
        };
        let _ = writeln!(out, "  \"{}\" -> \"{}\" [{style}];", a.id, b.id);
    }
    out.push_str("}\n");
    out
}

/// A Mermaid flowchart.
///
/// ```
/// let rs = pathway_rules::RuleSet::ms_spasticity().unwrap();
/// let m = pathway_report::graph::mermaid(&rs, None);
/// assert!(m.starts_with("flowchart LR"));
/// ```
pub fn mermaid(rs: &RuleSet, rec: Option<&Recommendation>) -> String {
    let ladder = rs.ladder();
    let node = |id: &str| id.replace('-', "_");
    let mut out = String::from("flowchart LR\n");
    let tiers = by_tier(ladder);
    for (tier, steps) in tiers {
        let _ = writeln!(
            out,
            "  subgraph tier{tier}[\"{}\"]",
            rs.tier_name(tier).replace('"', "'")
        );
        for s in steps {
            let mut label = s.name.replace('"', "'");
            if let Some(r) = status_of(rec, s.id.as_str()) {
                let (_, _, text) = status_style(r.status);
                let _ = write!(
                    label,
                    "<br/><b>{text}</b>: {}",
                    clip(&one_line(r), 60).replace('"', "'")
                );
            }
            let _ = writeln!(out, "    {}[\"{label}\"]", node(s.id.as_str()));
        }
        out.push_str("  end\n");
    }
    let mut seen_alt = Vec::new();
    for (a, b, t) in ladder.edges() {
        let (x, y) = (node(a.id.as_str()), node(b.id.as_str()));
        match t.kind {
            EdgeKind::Escalation => {
                let on: Vec<&str> = t.on.iter().map(|o| o.as_str()).collect();
                let _ = writeln!(out, "  {x} -->|{}| {y}", on.join(", "));
            }
            EdgeKind::Sequence => {
                let _ = writeln!(out, "  {x} -.-> {y}");
            }
            EdgeKind::Alternative => {
                let pair = if x < y {
                    (x.clone(), y.clone())
                } else {
                    (y.clone(), x.clone())
                };
                if !seen_alt.contains(&pair) {
                    let _ = writeln!(out, "  {x} -. alternative .- {y}");
                    seen_alt.push(pair);
                }
            }
            EdgeKind::Adjunct => {
                let _ = writeln!(out, "  {x} -.->|adjunct| {y}");
            }
        }
    }
    if let Some(rec) = rec {
        for st in Status::ALL {
            let (fill, stroke, _) = status_style(st);
            let _ = writeln!(
                out,
                "  classDef {} fill:{fill},stroke:{stroke}",
                st.as_str().replace('-', "_")
            );
        }
        for s in &rec.steps {
            let _ = writeln!(
                out,
                "  class {} {}",
                node(s.step.as_str()),
                s.status.as_str().replace('-', "_")
            );
        }
    }
    out
}

const BOX_W: usize = 190;
const BOX_H: usize = 74;
const COL_GAP: usize = 70;
const ROW_GAP: usize = 26;
const MARGIN: usize = 30;
const TOP: usize = 70;

fn wrap(text: &str, width: usize) -> Vec<String> {
    let mut lines = Vec::new();
    let mut line = String::new();
    for w in text.split_whitespace() {
        if !line.is_empty() && line.chars().count() + 1 + w.chars().count() > width {
            lines.push(std::mem::take(&mut line));
        }
        if !line.is_empty() {
            line.push(' ');
        }
        line.push_str(w);
    }
    if !line.is_empty() {
        lines.push(line);
    }
    lines
}

/// A self-contained SVG of the ladder (no external tool, font or script).
///
/// ```
/// let rs = pathway_rules::RuleSet::ms_spasticity().unwrap();
/// let svg = pathway_report::graph::svg(&rs, None);
/// assert!(svg.starts_with("<svg"));
/// assert!(svg.contains("Baclofen, oral"));
/// ```
pub fn svg(rs: &RuleSet, rec: Option<&Recommendation>) -> String {
    let ladder = rs.ladder();
    let pos = columns(ladder);
    let ncols = pos.iter().map(|p| p.0).max().unwrap_or(0) + 1;
    let nrows = pos.iter().map(|p| p.1).max().unwrap_or(0) + 1;
    let width = MARGIN * 2 + ncols * BOX_W + (ncols.saturating_sub(1)) * COL_GAP + 50;
    let height = TOP + nrows * (BOX_H + ROW_GAP) + 90;
    let xy = |i: usize| -> (usize, usize) {
        let (c, r) = pos.get(i).copied().unwrap_or((0, 0));
        (MARGIN + c * (BOX_W + COL_GAP), TOP + r * (BOX_H + ROW_GAP))
    };
    let mut out = String::new();
    let _ = writeln!(
        out,
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{width}\" height=\"{height}\" viewBox=\"0 0 {width} {height}\" font-family=\"Helvetica, Arial, sans-serif\" role=\"img\" aria-label=\"{}\">",
        escape(rs.title())
    );
    out.push_str("<defs><marker id=\"arrow\" viewBox=\"0 0 10 10\" refX=\"10\" refY=\"5\" markerWidth=\"7\" markerHeight=\"7\" orient=\"auto-start-reverse\"><path d=\"M0,0 L10,5 L0,10 z\" fill=\"#444\"/></marker>\
<marker id=\"arrow-adj\" viewBox=\"0 0 10 10\" refX=\"10\" refY=\"5\" markerWidth=\"6\" markerHeight=\"6\" orient=\"auto\"><path d=\"M0,0 L10,5 L0,10 z\" fill=\"#2a8a8a\"/></marker></defs>\n");
    out.push_str("<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n");
    let _ = writeln!(
        out,
        "<text x=\"{MARGIN}\" y=\"28\" font-size=\"18\" font-weight=\"bold\">{}</text>",
        escape(rs.title())
    );
    if let Some(r) = rec {
        let _ = writeln!(
            out,
            "<text x=\"{MARGIN}\" y=\"48\" font-size=\"12\" fill=\"#555\">Evaluated {} with rule set {} {}</text>",
            r.date,
            escape(&r.ruleset.id),
            escape(&r.ruleset.version)
        );
    }
    // Tier headings over their first column.
    let mut headed = Vec::new();
    for (i, s) in ladder.steps().enumerate() {
        if headed.contains(&s.tier) {
            continue;
        }
        headed.push(s.tier);
        let (x, _) = xy(i);
        let _ = writeln!(
            out,
            "<text x=\"{x}\" y=\"{}\" font-size=\"11\" fill=\"#777\">TIER {}: {}</text>",
            TOP - 8,
            s.tier,
            escape(&clip(&rs.tier_name(s.tier).to_uppercase(), 24))
        );
    }
    // Edges under the boxes.
    let index: BTreeMap<&str, usize> = ladder
        .steps()
        .enumerate()
        .map(|(i, s)| (s.id.as_str(), i))
        .collect();
    for (a, b, t) in ladder.edges() {
        let (Some(&ia), Some(&ib)) = (index.get(a.id.as_str()), index.get(b.id.as_str())) else {
            continue;
        };
        if t.kind == EdgeKind::Alternative && ia > ib {
            continue;
        }
        let (ax, ay) = xy(ia);
        let (bx, by) = xy(ib);
        let (x1, y1, x2, y2) = if ax == bx {
            (ax + BOX_W, ay + BOX_H / 2, bx + BOX_W, by + BOX_H / 2)
        } else if ax < bx {
            (ax + BOX_W, ay + BOX_H / 2, bx, by + BOX_H / 2)
        } else {
            (ax, ay + BOX_H / 2, bx + BOX_W, by + BOX_H / 2)
        };
        // Cubic control points: a loop out to the right within a column, else an S-curve.
        let (c1, c2) = if ax == bx {
            (x1 + 45, x2 + 45)
        } else if ax < bx {
            let bend = (x2 - x1) / 2;
            (x1 + bend, x2 - bend)
        } else {
            let bend = (x1 - x2) / 2;
            (x1 - bend, x2 + bend)
        };
        let (stroke, dash, marker, width) = match t.kind {
            EdgeKind::Escalation => ("#444", "", "url(#arrow)", "1.6"),
            EdgeKind::Sequence => ("#888", "6 4", "url(#arrow)", "1.2"),
            EdgeKind::Alternative => ("#999", "2 4", "", "1.2"),
            EdgeKind::Adjunct => ("#2a8a8a", "4 3", "url(#arrow-adj)", "1"),
        };
        let on: Vec<&str> = t.on.iter().map(|o| o.as_str()).collect();
        let kind = match t.kind {
            EdgeKind::Escalation => format!(
                "escalation on {}{}",
                on.join(", "),
                if t.or_excluded { " or if excluded" } else { "" }
            ),
            EdgeKind::Sequence => "sequence".into(),
            EdgeKind::Alternative => "alternative".into(),
            EdgeKind::Adjunct => "adjunct".into(),
        };
        let _ = writeln!(
            out,
            "<path d=\"M{x1},{y1} C{c1},{y1} {c2},{y2} {x2},{y2}\" fill=\"none\" stroke=\"{stroke}\" stroke-width=\"{width}\"{}{}><title>{} → {}: {}</title></path>",
            if dash.is_empty() {
                String::new()
            } else {
                format!(" stroke-dasharray=\"{dash}\"")
            },
            if marker.is_empty() {
                String::new()
            } else {
                format!(" marker-end=\"{marker}\"")
            },
            escape(&a.name),
            escape(&b.name),
            escape(&kind)
        );
    }
    // Boxes.
    for (i, s) in ladder.steps().enumerate() {
        let (x, y) = xy(i);
        let r = status_of(rec, s.id.as_str());
        let (fill, stroke, label) =
            r.map_or(("#ffffff", "#444444", ""), |r| status_style(r.status));
        let tip = r.map_or_else(
            || s.name.clone(),
            |r| {
                let reasons: Vec<String> = r
                    .reasons
                    .iter()
                    .map(|x| format!("{} ({})", x.text, x.rule))
                    .collect();
                format!("{}: {}\n{}", s.name, r.status, reasons.join("\n"))
            },
        );
        let _ = writeln!(out, "<g><title>{}</title>", escape(&tip));
        let _ = writeln!(
            out,
            "<rect x=\"{x}\" y=\"{y}\" width=\"{BOX_W}\" height=\"{BOX_H}\" rx=\"8\" fill=\"{fill}\" stroke=\"{stroke}\" stroke-width=\"1.5\"/>"
        );
        let mut ty = y + 16;
        for line in wrap(&s.name, 28).iter().take(2) {
            let _ = writeln!(
                out,
                "<text x=\"{}\" y=\"{ty}\" font-size=\"12\" font-weight=\"bold\">{}</text>",
                x + 8,
                escape(line)
            );
            ty += 14;
        }
        if let Some(r) = r {
            let _ = writeln!(
                out,
                "<text x=\"{}\" y=\"{ty}\" font-size=\"10\" font-weight=\"bold\" fill=\"{stroke}\">{label}</text>",
                x + 8
            );
            ty += 12;
            let lines = wrap(&one_line(r), 36);
            for (k, line) in lines.iter().take(2).enumerate() {
                let more = k == 1 && lines.len() > 2;
                let text = if more {
                    let head: String = line.chars().take(35).collect();
                    format!("{}…", head.trim_end().trim_end_matches('…'))
                } else {
                    clip(line, 38)
                };
                let _ = writeln!(
                    out,
                    "<text x=\"{}\" y=\"{ty}\" font-size=\"9\" fill=\"#333\">{}</text>",
                    x + 8,
                    escape(&text)
                );
                ty += 11;
            }
        }
        out.push_str("</g>\n");
    }
    // Legend.
    let ly = height - 50;
    let mut lx = MARGIN;
    if rec.is_some() {
        for st in Status::ALL {
            let (fill, stroke, text) = status_style(st);
            let _ = writeln!(
                out,
                "<rect x=\"{lx}\" y=\"{ly}\" width=\"14\" height=\"14\" fill=\"{fill}\" stroke=\"{stroke}\"/><text x=\"{}\" y=\"{}\" font-size=\"11\">{text}</text>",
                lx + 20,
                ly + 11
            );
            lx += 110;
        }
    }
    let legend = [
        ("#444", "", "escalation"),
        ("#888", "6 4", "sequence"),
        ("#999", "2 4", "alternative"),
        ("#2a8a8a", "4 3", "adjunct"),
    ];
    for (stroke, dash, text) in legend {
        let _ = writeln!(
            out,
            "<line x1=\"{lx}\" y1=\"{}\" x2=\"{}\" y2=\"{}\" stroke=\"{stroke}\" stroke-width=\"1.6\" stroke-dasharray=\"{dash}\"/><text x=\"{}\" y=\"{}\" font-size=\"11\">{text}</text>",
            ly + 7,
            lx + 30,
            ly + 7,
            lx + 36,
            ly + 11
        );
        lx += 120;
    }
    out.push_str("</svg>\n");
    out
}

/// A self-contained HTML page: the SVG and, with a recommendation, every step's status with
/// its reasons, sources and missing facts.
///
/// ```
/// let rs = pathway_rules::RuleSet::ms_spasticity().unwrap();
/// let html = pathway_report::graph::html(&rs, None);
/// assert!(html.starts_with("<!DOCTYPE html>"));
/// assert!(!html.contains("<script src"));
/// ```
pub fn html(rs: &RuleSet, rec: Option<&Recommendation>) -> String {
    let mut out = String::from("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">");
    let _ = write!(out, "<title>{}</title>", escape(rs.title()));
    out.push_str("<style>body{font-family:Helvetica,Arial,sans-serif;margin:24px;color:#222}table{border-collapse:collapse;margin-top:16px;width:100%}td,th{border:1px solid #ccc;padding:6px 8px;vertical-align:top;text-align:left;font-size:13px}th{background:#f4f4f4}.st{font-weight:bold;white-space:nowrap}.rule{color:#666;font-size:11px}.svg{overflow-x:auto}</style></head><body>\n");
    let _ = writeln!(out, "<h1>{}</h1>", escape(rs.title()));
    let _ = writeln!(
        out,
        "<p>Rule set {} {} <code>{}</code></p>",
        escape(&rs.stamp().id),
        escape(&rs.stamp().version),
        escape(&rs.stamp().hash)
    );
    let _ = writeln!(out, "<div class=\"svg\">{}</div>", svg(rs, rec));
    if let Some(rec) = rec {
        let _ = writeln!(out, "<h2>Each step, {}</h2>", rec.date);
        out.push_str("<table><tr><th>Step</th><th>Status</th><th>Why</th><th>Missing</th></tr>\n");
        for s in &rec.steps {
            let (fill, stroke, label) = status_style(s.status);
            let mut why = String::new();
            for r in &s.reasons {
                let facts: Vec<String> = r
                    .facts
                    .iter()
                    .filter(|f| !f.value.starts_with("not recorded (false)"))
                    .map(|f| escape(&format!("{} = {}", f.fact, f.value)))
                    .collect();
                let _ = write!(
                    why,
                    "<div>{}{} <span class=\"rule\">{} · {}</span></div>",
                    escape(&r.text),
                    if facts.is_empty() {
                        String::new()
                    } else {
                        format!(" <em>[{}]</em>", facts.join("; "))
                    },
                    escape(&r.rule),
                    escape(&r.sources.join(", "))
                );
            }
            let _ = writeln!(
                out,
                "<tr><td>{}</td><td class=\"st\" style=\"background:{fill};color:{stroke}\">{label}</td><td>{why}</td><td>{}</td></tr>",
                escape(&s.name),
                escape(&s.missing.join(", "))
            );
        }
        out.push_str("</table>\n");
    }
    out.push_str("</body></html>\n");
    out
}
