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
/// // The tiers are ranked left to right in order.
/// assert!(dot.contains("\"trigger-review\" -> \"stretching-program\" [style=invis"));
/// assert!(dot.contains("\"botulinum-toxin\" -> \"rhizotomy\" [style=invis"));
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
        // Only edges that go forward along the ladder decide the layout's ranks.
        let forward = a.tier < b.tier || (a.tier == b.tier && t.kind == EdgeKind::Escalation);
        let constraint = if forward { "" } else { ", constraint=false" };
        let _ = writeln!(out, "  \"{}\" -> \"{}\" [{style}{constraint}];", a.id, b.id);
    }
    // Tiers left to right in order: an invisible chain through one step of each column.
    let pos = columns(ladder);
    let mut firsts: BTreeMap<usize, &str> = BTreeMap::new();
    for (s, (c, _)) in ladder.steps().zip(&pos) {
        firsts.entry(*c).or_insert(s.id.as_str());
    }
    let chain: Vec<&str> = firsts.into_values().collect();
    for w in chain.windows(2) {
        if let [a, b] = w {
            let _ = writeln!(out, "  \"{a}\" -> \"{b}\" [style=invis, weight=10];");
        }
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

const BOX_W: usize = 150;
const COL_GAP: usize = 64;
const ROW_GAP: usize = 40;
const MARGIN: usize = 24;
const TOP: usize = 96;
/// Space between parallel lanes of edges in a channel.
const LANE: usize = 4;
/// Characters per line of a box's text.
const NAME_CHARS: usize = 22;
const REASON_CHARS: usize = 30;

/// A box of the picture: where a step is drawn.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rect {
    /// Left.
    pub x: usize,
    /// Top.
    pub y: usize,
    /// Width.
    pub w: usize,
    /// Height.
    pub h: usize,
}

impl Rect {
    /// Whether an axis-aligned segment passes through the box's inside (touching its edge
    /// does not count).
    pub fn crossed_by(&self, (x1, y1): (usize, usize), (x2, y2): (usize, usize)) -> bool {
        let (lx, hx) = (x1.min(x2), x1.max(x2));
        let (ly, hy) = (y1.min(y2), y1.max(y2));
        lx < self.x + self.w && hx > self.x && ly < self.y + self.h && hy > self.y
    }
}

/// One edge of the picture as drawn: the steps it joins and its path, a polyline of
/// horizontal and vertical segments that runs only in the gaps between boxes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Route {
    /// Index of the step it leaves.
    pub from: usize,
    /// Index of the step it reaches.
    pub to: usize,
    /// The points of the polyline.
    pub points: Vec<(usize, usize)>,
}

/// Where everything goes: one box per step (ladder order) and one route per drawn edge.
#[derive(Debug, Clone)]
pub struct Layout {
    /// Per step.
    pub boxes: Vec<Rect>,
    /// Per edge drawn (an alternative pair is drawn once).
    pub routes: Vec<Route>,
    /// Width and height of the picture.
    pub size: (usize, usize),
}

/// The lines of text in a step's box.
fn box_lines(s: &pathway_core::Step, r: Option<&StepResult>) -> (Vec<String>, Vec<String>) {
    let name = wrap(&s.name, NAME_CHARS);
    let reason = r
        .map(|r| wrap(&one_line(r), REASON_CHARS))
        .unwrap_or_default();
    (name, reason)
}

fn box_height(name: usize, reason: usize, with_status: bool) -> usize {
    12 + name * 14 + if with_status { 14 + reason * 11 } else { 0 } + 6
}

/// Lays the ladder out: columns by tier, then by depth along escalation edges within a tier;
/// rows of one height for all columns, so that the gaps between rows run across the whole
/// picture. Every edge is routed in those gaps and in the gaps between columns, each in a
/// lane of its own, so no edge passes under a box it does not join.
///
/// ```
/// let rs = pathway_rules::RuleSet::ms_spasticity().unwrap();
/// let l = pathway_report::graph::layout(&rs, None);
/// for r in &l.routes {
///     for w in r.points.windows(2) {
///         for (i, b) in l.boxes.iter().enumerate() {
///             assert!(i == r.from || i == r.to || !b.crossed_by(w[0], w[1]));
///         }
///     }
/// }
/// ```
pub fn layout(rs: &RuleSet, rec: Option<&Recommendation>) -> Layout {
    let ladder = rs.ladder();
    let pos = columns(ladder);
    let ncols = pos.iter().map(|p| p.0).max().unwrap_or(0) + 1;
    let nrows = pos.iter().map(|p| p.1).max().unwrap_or(0) + 1;
    let row_h = ladder
        .steps()
        .map(|s| {
            let (n, r) = box_lines(s, status_of(rec, s.id.as_str()));
            box_height(n.len(), r.len(), rec.is_some())
        })
        .max()
        .unwrap_or(60);
    let index: BTreeMap<&str, usize> = ladder
        .steps()
        .enumerate()
        .map(|(i, s)| (s.id.as_str(), i))
        .collect();
    // The edges drawn, with the channels each uses: vertical channel k is the gap left of
    // column k, horizontal channel g the gap above row g. Counted first, so that every gap
    // is wide enough for a lane per edge.
    let drawn: Vec<(usize, usize)> = ladder
        .edges()
        .filter_map(|(a, b, t)| {
            let (&ia, &ib) = (index.get(a.id.as_str())?, index.get(b.id.as_str())?);
            (!(t.kind == EdgeKind::Alternative && ia > ib)).then_some((ia, ib))
        })
        .collect();
    let mut vneed = vec![0usize; ncols + 1];
    let mut hneed = vec![0usize; nrows + 1];
    let need = |k: usize, v: &mut Vec<usize>| {
        if let Some(n) = v.get_mut(k) {
            *n += 1;
        }
    };
    for &(ia, ib) in &drawn {
        let (Some(&(ca, _)), Some(&(cb, rb))) = (pos.get(ia), pos.get(ib)) else {
            continue;
        };
        if ca == cb || cb == ca + 1 {
            need(ca + 1, &mut vneed);
        } else if ca < cb {
            need(ca + 1, &mut vneed);
            need(cb, &mut vneed);
            need(rb, &mut hneed);
        } else {
            need(ca, &mut vneed);
            need(cb + 1, &mut vneed);
            need(rb, &mut hneed);
        }
    }
    let vgap: Vec<usize> = vneed.iter().map(|n| (12 + n * LANE).max(COL_GAP)).collect();
    let hgap: Vec<usize> = hneed.iter().map(|n| (10 + n * LANE).max(ROW_GAP)).collect();
    let col_x = |c: usize| MARGIN + vgap.iter().take(c + 1).sum::<usize>() + c * BOX_W;
    let row_y = |r: usize| TOP + hgap.iter().take(r + 1).sum::<usize>() + r * row_h;
    let boxes: Vec<Rect> = pos
        .iter()
        .map(|&(c, r)| Rect {
            x: col_x(c),
            y: row_y(r),
            w: BOX_W,
            h: row_h,
        })
        .collect();
    let width = col_x(ncols) + MARGIN;
    let height = row_y(nrows) + 70;
    let mut vlanes = vec![0usize; ncols + 1];
    let mut hlanes = vec![0usize; nrows + 1];
    // Ports along each box's left and right side, so edges meeting a box do not share a line.
    let mut ports_in = vec![0usize; boxes.len()];
    let mut ports_out = vec![0usize; boxes.len()];
    let vlane = |k: usize, lanes: &mut Vec<usize>| {
        let n = lanes.get(k).copied().unwrap_or(0);
        if let Some(l) = lanes.get_mut(k) {
            *l += 1;
        }
        // Channel k spans from the right of column k-1 to the left of column k.
        col_x(k) - vgap.get(k).copied().unwrap_or(COL_GAP) + 6 + n * LANE
    };
    let hlane = |g: usize, lanes: &mut Vec<usize>| {
        let n = lanes.get(g).copied().unwrap_or(0);
        if let Some(l) = lanes.get_mut(g) {
            *l += 1;
        }
        row_y(g) - hgap.get(g).copied().unwrap_or(ROW_GAP) + 5 + n * LANE
    };
    // Right-side ports and left-side ports sit on different lines (3 px apart), so an edge
    // leaving one column and one entering the next never run along the same line.
    let port = |b: &Rect, n: &mut usize, left: bool| {
        let slots = (b.h - 16) / 6;
        let y = b.y + if left { 11 } else { 8 } + (*n % slots.max(1)) * 6;
        *n += 1;
        y
    };
    let mut routes = Vec::new();
    for (a, b, t) in ladder.edges() {
        let (Some(&ia), Some(&ib)) = (index.get(a.id.as_str()), index.get(b.id.as_str())) else {
            continue;
        };
        if t.kind == EdgeKind::Alternative && ia > ib {
            continue;
        }
        let (Some(&(ca, _)), Some(&(cb, rb))) = (pos.get(ia), pos.get(ib)) else {
            continue;
        };
        let (Some(ba), Some(bb)) = (boxes.get(ia).copied(), boxes.get(ib).copied()) else {
            continue;
        };
        let mut points = Vec::new();
        if ca == cb {
            // Within a column: out of the right side and back in, in the channel beside it.
            let ya = port(&ba, ports_out.get_mut(ia).unwrap_or(&mut 0), false);
            let yb = port(&bb, ports_out.get_mut(ib).unwrap_or(&mut 0), false);
            let x = vlane(ca + 1, &mut vlanes);
            points.extend([(ba.x + ba.w, ya), (x, ya), (x, yb), (bb.x + bb.w, yb)]);
        } else if ca < cb {
            let ya = port(&ba, ports_out.get_mut(ia).unwrap_or(&mut 0), false);
            let yb = port(&bb, ports_in.get_mut(ib).unwrap_or(&mut 0), true);
            let xa = vlane(ca + 1, &mut vlanes);
            if cb == ca + 1 {
                points.extend([(ba.x + ba.w, ya), (xa, ya), (xa, yb), (bb.x, yb)]);
            } else {
                // Across columns: along the gap above the target's row.
                let y = hlane(rb, &mut hlanes);
                let xb = vlane(cb, &mut vlanes);
                points.extend([
                    (ba.x + ba.w, ya),
                    (xa, ya),
                    (xa, y),
                    (xb, y),
                    (xb, yb),
                    (bb.x, yb),
                ]);
            }
        } else {
            // Backwards: out of the left side, into the right side.
            let ya = port(&ba, ports_in.get_mut(ia).unwrap_or(&mut 0), true);
            let yb = port(&bb, ports_out.get_mut(ib).unwrap_or(&mut 0), false);
            let xa = vlane(ca, &mut vlanes);
            let y = hlane(rb, &mut hlanes);
            let xb = vlane(cb + 1, &mut vlanes);
            points.extend([
                (ba.x, ya),
                (xa, ya),
                (xa, y),
                (xb, y),
                (xb, yb),
                (bb.x + bb.w, yb),
            ]);
        }
        points.dedup();
        routes.push(Route {
            from: ia,
            to: ib,
            points,
        });
    }
    Layout {
        boxes,
        routes,
        size: (width, height),
    }
}

/// Greedy word wrap on characters (a word longer than the line is kept whole).
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

/// A self-contained SVG of the ladder (no external tool, font or script). It scales to the
/// width it is given (`max-width: 100%`), so it fits a 1,280 px screen; every edge runs in the
/// gaps between boxes, with an arrowhead on every escalation, sequence and adjunct edge.
///
/// ```
/// let rs = pathway_rules::RuleSet::ms_spasticity().unwrap();
/// let svg = pathway_report::graph::svg(&rs, None);
/// assert!(svg.starts_with("<svg"));
/// assert!(svg.contains("Baclofen, oral"));
/// ```
pub fn svg(rs: &RuleSet, rec: Option<&Recommendation>) -> String {
    svg_for(rs, rec, None)
}

/// As [`svg`], naming the patient in the header.
pub fn svg_for(rs: &RuleSet, rec: Option<&Recommendation>, patient: Option<&str>) -> String {
    let ladder = rs.ladder();
    let l = layout(rs, rec);
    let (width, height) = l.size;
    let mut out = String::new();
    let _ = writeln!(
        out,
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{width}\" height=\"{height}\" viewBox=\"0 0 {width} {height}\" style=\"max-width:100%;height:auto\" font-family=\"Helvetica, Arial, sans-serif\" role=\"img\" aria-label=\"{}\">",
        escape(rs.title())
    );
    out.push_str("<defs><marker id=\"arrow\" viewBox=\"0 0 10 10\" refX=\"10\" refY=\"5\" markerWidth=\"7\" markerHeight=\"7\" orient=\"auto\"><path d=\"M0,0 L10,5 L0,10 z\" fill=\"#444\"/></marker>\
<marker id=\"arrow-seq\" viewBox=\"0 0 10 10\" refX=\"10\" refY=\"5\" markerWidth=\"6\" markerHeight=\"6\" orient=\"auto\"><path d=\"M0,0 L10,5 L0,10 z\" fill=\"#888\"/></marker>\
<marker id=\"arrow-adj\" viewBox=\"0 0 10 10\" refX=\"10\" refY=\"5\" markerWidth=\"6\" markerHeight=\"6\" orient=\"auto\"><path d=\"M0,0 L10,5 L0,10 z\" fill=\"#2a8a8a\"/></marker></defs>\n");
    out.push_str("<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n");
    let _ = writeln!(
        out,
        "<text x=\"{MARGIN}\" y=\"28\" font-size=\"18\" font-weight=\"bold\">{}</text>",
        escape(rs.title())
    );
    let stamp = rs.stamp();
    let short = stamp.hash.get(..19).unwrap_or(&stamp.hash);
    let header = match (rec, patient) {
        (Some(r), Some(p)) => format!(
            "{} · evaluated {} · rule set {} {} ({short})",
            p, r.date, stamp.id, stamp.version
        ),
        (Some(r), None) => format!(
            "Evaluated {} · rule set {} {} ({short})",
            r.date, stamp.id, stamp.version
        ),
        _ => format!("Rule set {} {} ({short})", stamp.id, stamp.version),
    };
    let _ = writeln!(
        out,
        "<text x=\"{MARGIN}\" y=\"48\" font-size=\"12\" fill=\"#555\">{}</text>",
        escape(&header)
    );
    // Tier headings over their columns, wrapped to the columns' width (never cut).
    let mut tiers: BTreeMap<u8, (usize, usize)> = BTreeMap::new();
    for (s, b) in ladder.steps().zip(&l.boxes) {
        let e = tiers.entry(s.tier).or_insert((b.x, b.x + b.w));
        e.0 = e.0.min(b.x);
        e.1 = e.1.max(b.x + b.w);
    }
    for (tier, (x0, x1)) in &tiers {
        let text = format!("TIER {tier}: {}", rs.tier_name(*tier).to_uppercase());
        let lines = wrap(&text, (x1 - x0) / 7);
        for (k, line) in lines.iter().enumerate() {
            let y = TOP + 10 + 13 * k - 13 * lines.len();
            let _ = writeln!(
                out,
                "<text x=\"{x0}\" y=\"{y}\" font-size=\"11\" fill=\"#777\">{}</text>",
                escape(line)
            );
        }
    }
    // Boxes first, edges above them: an edge never hides under a box, and runs only in gaps.
    let steps: Vec<&pathway_core::Step> = ladder.steps().collect();
    for (s, b) in steps.iter().zip(&l.boxes) {
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
        let _ = writeln!(
            out,
            "<g class=\"step\" data-step=\"{}\"><title>{}</title>",
            escape(s.id.as_str()),
            escape(&tip)
        );
        let _ = writeln!(
            out,
            "<rect x=\"{}\" y=\"{}\" width=\"{}\" height=\"{}\" rx=\"8\" fill=\"{fill}\" stroke=\"{stroke}\" stroke-width=\"1.5\"/>",
            b.x, b.y, b.w, b.h
        );
        let (name, reason) = box_lines(s, r);
        let mut ty = b.y + 16;
        for line in &name {
            let _ = writeln!(
                out,
                "<text x=\"{}\" y=\"{ty}\" font-size=\"12\" font-weight=\"bold\">{}</text>",
                b.x + 8,
                escape(line)
            );
            ty += 14;
        }
        if r.is_some() {
            let _ = writeln!(
                out,
                "<text x=\"{}\" y=\"{ty}\" font-size=\"10\" font-weight=\"bold\" fill=\"{stroke}\">{label}</text>",
                b.x + 8
            );
            ty += 12;
            for line in &reason {
                let _ = writeln!(
                    out,
                    "<text x=\"{}\" y=\"{ty}\" font-size=\"9\" fill=\"#333\">{}</text>",
                    b.x + 8,
                    escape(line)
                );
                ty += 11;
            }
        }
        out.push_str("</g>\n");
    }
    let edges: Vec<_> = ladder
        .edges()
        .filter(|(a, b, t)| {
            let ia = steps.iter().position(|s| s.id == a.id);
            let ib = steps.iter().position(|s| s.id == b.id);
            !(t.kind == EdgeKind::Alternative && ia > ib)
        })
        .collect();
    for ((a, b, t), route) in edges.iter().zip(&l.routes) {
        let (stroke, dash, marker, width) = match t.kind {
            EdgeKind::Escalation => ("#444", "", "url(#arrow)", "1.6"),
            EdgeKind::Sequence => ("#888", "6 4", "url(#arrow-seq)", "1.2"),
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
        let pts: Vec<String> = route
            .points
            .iter()
            .map(|(x, y)| format!("{x},{y}"))
            .collect();
        let _ = writeln!(
            out,
            "<polyline class=\"edge\" data-from=\"{}\" data-to=\"{}\" points=\"{}\" fill=\"none\" stroke=\"{stroke}\" stroke-width=\"{width}\"{}{}><title>{} → {}: {}</title></polyline>",
            escape(a.id.as_str()),
            escape(b.id.as_str()),
            pts.join(" "),
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
    // Legend.
    let ly = height - 44;
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
            lx += 100;
        }
    }
    let legend = [
        (
            "#444",
            "",
            "url(#arrow)",
            "escalation (on the outcomes shown on hover)",
        ),
        ("#888", "6 4", "url(#arrow-seq)", "sequence"),
        ("#999", "2 4", "", "alternative"),
        ("#2a8a8a", "4 3", "url(#arrow-adj)", "adjunct"),
    ];
    for (stroke, dash, marker, text) in legend {
        let _ = writeln!(
            out,
            "<line x1=\"{lx}\" y1=\"{}\" x2=\"{}\" y2=\"{}\" stroke=\"{stroke}\" stroke-width=\"1.6\" stroke-dasharray=\"{dash}\"{}/><text x=\"{}\" y=\"{}\" font-size=\"11\">{text}</text>",
            ly + 7,
            lx + 30,
            ly + 7,
            if marker.is_empty() {
                String::new()
            } else {
                format!(" marker-end=\"{marker}\"")
            },
            lx + 36,
            ly + 11
        );
        lx += 36 + text.len() * 6 + 16;
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
    html_for(rs, rec, None)
}

/// As [`html`], naming the patient (an identifier, a name, or both).
pub fn html_for(rs: &RuleSet, rec: Option<&Recommendation>, patient: Option<&str>) -> String {
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
    if let Some(rec) = rec {
        // The summary first: what to continue, offer, offer with caution, and what is
        // excluded and why.
        if let Some(p) = patient {
            let _ = writeln!(out, "<p><strong>Patient:</strong> {}</p>", escape(p));
        }
        out.push_str("<h2>Summary</h2><ul>\n");
        if let Some(why) = rec.not_applicable_because() {
            let _ = writeln!(out, "<li>The pathway does not apply: {}</li>", escape(why));
        }
        for (st, title) in [
            (Status::Continue, "Continue"),
            (Status::Offer, "Offer now"),
            (Status::Caution, "Offer with caution"),
        ] {
            let names: Vec<String> = rec
                .steps
                .iter()
                .filter(|s| s.status == st && rec.applicable)
                .map(|s| escape(&s.name))
                .collect();
            if !names.is_empty() {
                let _ = writeln!(
                    out,
                    "<li><strong>{title}:</strong> {}</li>",
                    names.join(", ")
                );
            }
        }
        let excluded: Vec<String> = rec
            .steps
            .iter()
            .filter(|s| s.status == Status::Excluded)
            .map(|s| format!("{} ({})", escape(&s.name), escape(&one_line(s))))
            .collect();
        if !excluded.is_empty() {
            let _ = writeln!(
                out,
                "<li><strong>Excluded:</strong> {}</li>",
                excluded.join("; ")
            );
        }
        out.push_str("</ul>\n");
    }
    let _ = writeln!(
        out,
        "<div class=\"svg\">{}</div>",
        svg_for(rs, rec, patient)
    );
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
        let _ = writeln!(
            out,
            "<p class=\"rule\"><strong>Legend:</strong> {}</p>",
            escape(crate::ROLE_LEGEND)
        );
        let cited = crate::cited_sources(rec);
        if !cited.is_empty() {
            out.push_str("<h2>References</h2><dl>\n");
            for k in cited {
                let text = rs.sources().get(k).map_or("", |src| src.citation.as_str());
                let _ = writeln!(out, "<dt>{}</dt><dd>{}</dd>", escape(k), escape(text));
            }
            out.push_str("</dl>\n");
        }
    }
    out.push_str("</body></html>\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use pathway_core::{Date, Profile};

    fn rec(rs: &RuleSet) -> Recommendation {
        let p = Profile::new(Date::constant(2026, 11, 22), 45)
            .with_fact("multiple-sclerosis", true)
            .with_fact("spasticity", true)
            .with_fact("spasticity-severity", 3)
            .with_fact("spasticity-distribution", "generalized");
        rs.evaluate(&p).unwrap()
    }

    #[test]
    fn no_edge_passes_under_a_box_it_does_not_join() {
        let rs = RuleSet::ms_spasticity().unwrap();
        for r in [None, Some(rec(&rs))] {
            let l = layout(&rs, r.as_ref());
            let alternatives = rs
                .ladder()
                .edges()
                .filter(|(_, _, t)| t.kind == EdgeKind::Alternative)
                .count();
            assert_eq!(
                l.routes.len(),
                rs.ladder().edges().count() - alternatives / 2,
                "an alternative pair is drawn once"
            );
            for route in &l.routes {
                for w in route.points.windows(2) {
                    let (a, b) = (w[0], w[1]);
                    assert!(
                        a.0 == b.0 || a.1 == b.1,
                        "segments are horizontal or vertical"
                    );
                    for (i, bx) in l.boxes.iter().enumerate() {
                        assert!(
                            !bx.crossed_by(a, b),
                            "edge {}->{} crosses box {i} at {a:?}-{b:?}",
                            route.from,
                            route.to
                        );
                    }
                }
                // It starts and ends on the sides of the boxes it joins.
                let (first, last) = (route.points[0], *route.points.last().unwrap());
                let (fa, fb) = (l.boxes[route.from], l.boxes[route.to]);
                assert!(first.0 == fa.x || first.0 == fa.x + fa.w);
                assert!(last.0 == fb.x || last.0 == fb.x + fb.w);
            }
        }
    }

    #[test]
    fn no_two_edges_share_a_stretch_of_line() {
        let rs = RuleSet::ms_spasticity().unwrap();
        let l = layout(&rs, Some(&rec(&rs)));
        type Point = (usize, usize);
        let segs: Vec<(usize, Point, Point)> = l
            .routes
            .iter()
            .enumerate()
            .flat_map(|(i, r)| r.points.windows(2).map(move |w| (i, w[0], w[1])))
            .collect();
        for (i, a1, a2) in &segs {
            for (j, b1, b2) in &segs {
                if i >= j {
                    continue;
                }
                let horizontal = a1.1 == a2.1 && b1.1 == b2.1 && a1.1 == b1.1;
                let vertical = a1.0 == a2.0 && b1.0 == b2.0 && a1.0 == b1.0;
                let overlap = |p: usize, q: usize, r: usize, s: usize| {
                    p.max(q).min(r.max(s)) > p.min(q).max(r.min(s))
                };
                if horizontal {
                    assert!(
                        !overlap(a1.0, a2.0, b1.0, b2.0),
                        "edges {i} and {j} share a horizontal stretch at y={}",
                        a1.1
                    );
                }
                if vertical {
                    assert!(
                        !overlap(a1.1, a2.1, b1.1, b2.1),
                        "edges {i} and {j} share a vertical stretch at x={}",
                        a1.0
                    );
                }
            }
        }
    }

    #[test]
    fn the_html_report_opens_with_a_summary_and_ends_with_the_legend_and_references() {
        let rs = RuleSet::ms_spasticity().unwrap();
        let page = html_for(&rs, Some(&rec(&rs)), Some("Jane Doe (Patient/p1)"));
        let at = |needle: &str| page.find(needle).unwrap_or_else(|| panic!("{needle}"));
        assert!(at("<strong>Patient:</strong> Jane Doe (Patient/p1)") < at("<svg"));
        assert!(at("<h2>Summary</h2>") < at("<svg"));
        assert!(at("<strong>Offer now:</strong>") < at("<svg"));
        assert!(at("<strong>Legend:</strong>") > at("<table>"));
        assert!(at("<h2>References</h2>") > at("<table>"));
        assert!(page.contains("<dt>NG220</dt>"));
        assert!(page.contains("Jane Doe (Patient/p1) · evaluated 2026-11-22"));
    }

    #[test]
    fn the_picture_fits_a_1280_px_screen_and_reasons_are_never_cut() {
        let rs = RuleSet::ms_spasticity().unwrap();
        let r = rec(&rs);
        let svg = svg(&rs, Some(&r));
        assert!(svg.contains("style=\"max-width:100%;height:auto\""));
        assert!(!svg.contains('…'), "reasons wrap, they are not cut");
        let l = layout(&rs, Some(&r));
        // At 1,280 px the scale keeps 12 px names at least 9 px.
        assert!(l.size.0 * 3 <= 1280 * 4, "{}", l.size.0);
    }
}
