//! The treatment ladder as a `petgraph` state graph.
//!
//! Nodes are [`Step`]s; edges are [`Transition`]s of four kinds:
//!
//! * [`EdgeKind::Escalation`]: move up from one step to the next when the first one ends in one
//!   of the edge's outcomes (or, if `or_excluded`, cannot be used at all);
//! * [`EdgeKind::Sequence`]: the target comes after the source with no outcome needed
//!   (for example "review aggravating factors, then start physiotherapy");
//! * [`EdgeKind::Alternative`]: the two steps stand in for each other (baclofen, gabapentin);
//! * [`EdgeKind::Adjunct`]: the target may be added on top of the source (a benzodiazepine at
//!   night on top of a partially effective antispasticity drug).
//!
//! Architecture invariant: a [`Ladder`] that exists is valid. [`LadderBuilder::build`] rejects
//! duplicate ids, edges to unknown steps, cycles among escalation and sequence edges, steps
//! unreachable from an entry, and escalation or sequence edges that go down a tier.

use std::collections::BTreeSet;
use std::fmt;

use petgraph::Direction;
use petgraph::graph::{DiGraph, EdgeReference, NodeIndex};
use petgraph::visit::{Bfs, EdgeFiltered, EdgeRef};
use rustc_hash::FxHashMap;
use serde::{Deserialize, Serialize};

use crate::outcome::{Outcome, OutcomeSet};

/// The identifier of a step, such as `baclofen` (clinical spec section 1).
///
/// ```
/// use pathway_core::StepId;
/// let id = StepId::from("baclofen");
/// assert_eq!(id.as_str(), "baclofen");
/// assert_eq!(id.to_string(), "baclofen");
/// ```
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct StepId(String);

impl StepId {
    /// The id as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl From<&str> for StepId {
    fn from(s: &str) -> Self {
        StepId(s.to_owned())
    }
}

impl From<String> for StepId {
    fn from(s: String) -> Self {
        StepId(s)
    }
}

impl std::borrow::Borrow<str> for StepId {
    fn borrow(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for StepId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// What sort of intervention a step is.
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum StepKind {
    /// A review or assessment (look for aggravating factors).
    Assessment,
    /// A non-drug therapy (physiotherapy, orthoses).
    Therapy,
    /// A complementary therapy beside the ladder (massage).
    Complementary,
    /// A drug.
    Drug,
    /// An injection or an implanted pump.
    Injection,
    /// An operation.
    Surgery,
}

/// A code for a step in some code system (SNOMED CT, RxNorm, the local `urn:pathway:step`).
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Code {
    /// The code system URI.
    pub system: String,
    /// The code.
    pub code: String,
    /// A human-readable display, if known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub display: Option<String>,
}

/// One step of the ladder.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Step {
    /// The step id.
    pub id: StepId,
    /// The tier: 0 review, 1 non-drug, 2 oral drugs, 3 injections and pumps, 4 surgery.
    pub tier: u8,
    /// What sort of step it is.
    pub kind: StepKind,
    /// The display name.
    pub name: String,
    /// Codes that identify the step in a record.
    #[serde(default)]
    pub codes: Vec<Code>,
}

impl Step {
    /// A step with no codes.
    ///
    /// ```
    /// use pathway_core::{Step, StepKind};
    /// let s = Step::new("baclofen", 2, StepKind::Drug, "Baclofen, oral");
    /// assert_eq!(s.tier, 2);
    /// ```
    pub fn new(id: &str, tier: u8, kind: StepKind, name: &str) -> Step {
        Step {
            id: StepId::from(id),
            tier,
            kind,
            name: name.to_owned(),
            codes: Vec::new(),
        }
    }
}

/// The kind of an edge between two steps.
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum EdgeKind {
    /// Move up when the source ends in one of the edge's outcomes.
    Escalation,
    /// The target follows the source with no outcome needed.
    Sequence,
    /// The two steps stand in for each other.
    Alternative,
    /// The target may be added on top of the source.
    Adjunct,
}

impl EdgeKind {
    /// Whether edges of this kind order the ladder (no cycles, never down a tier).
    pub fn is_ordering(self) -> bool {
        matches!(self, EdgeKind::Escalation | EdgeKind::Sequence)
    }
}

/// An edge of the ladder.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Transition {
    /// The kind of edge.
    pub kind: EdgeKind,
    /// For escalation edges: the outcomes of the source on which the edge is taken.
    #[serde(default)]
    pub on: OutcomeSet,
    /// For escalation edges: the edge is also taken when the source is excluded by an absolute
    /// contraindication (it "cannot be used").
    #[serde(default)]
    pub or_excluded: bool,
}

impl Transition {
    /// An escalation edge taken on `on` (and on exclusion if `or_excluded`).
    pub fn escalation(on: OutcomeSet, or_excluded: bool) -> Transition {
        Transition {
            kind: EdgeKind::Escalation,
            on,
            or_excluded,
        }
    }

    /// An edge of a kind that carries no outcomes.
    pub fn plain(kind: EdgeKind) -> Transition {
        Transition {
            kind,
            on: OutcomeSet::EMPTY,
            or_excluded: false,
        }
    }
}

/// A problem that makes a ladder invalid.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum LadderError {
    /// Two steps share an id.
    #[error("step `{step}` is defined more than once")]
    DuplicateStep {
        /// The repeated id.
        step: StepId,
    },
    /// An edge names a step that is not defined.
    #[error("edge {from} -> {to} names unknown step `{unknown}`")]
    UnknownStep {
        /// The source of the edge as written.
        from: StepId,
        /// The target of the edge as written.
        to: StepId,
        /// The id that is not defined.
        unknown: StepId,
    },
    /// An entry names a step that is not defined.
    #[error("entry step `{step}` is not defined")]
    UnknownEntry {
        /// The id that is not defined.
        step: StepId,
    },
    /// The ladder has no entry step.
    #[error("the ladder has no entry step")]
    NoEntry,
    /// Escalation and sequence edges go round in a circle.
    #[error("escalation edges form a cycle through {}", join(steps))]
    Cycle {
        /// The steps on the cycle, in ladder order.
        steps: Vec<StepId>,
    },
    /// A step cannot be reached from any entry.
    #[error("step `{step}` cannot be reached from an entry step")]
    Unreachable {
        /// The unreachable step.
        step: StepId,
    },
    /// An escalation or sequence edge goes down a tier.
    #[error("edge {from} (tier {from_tier}) -> {to} (tier {to_tier}) goes down a tier")]
    TierBackwards {
        /// The source step.
        from: StepId,
        /// Its tier.
        from_tier: u8,
        /// The target step.
        to: StepId,
        /// Its tier.
        to_tier: u8,
    },
    /// An escalation edge that is never taken.
    #[error("escalation edge {from} -> {to} lists no outcome and is not taken on exclusion")]
    EmptyEscalation {
        /// The source step.
        from: StepId,
        /// The target step.
        to: StepId,
    },
}

fn join(steps: &[StepId]) -> String {
    steps
        .iter()
        .map(StepId::as_str)
        .collect::<Vec<_>>()
        .join(", ")
}

/// Collects steps, entries and edges, then checks them all at once.
///
/// ```
/// use pathway_core::{Ladder, Outcome, OutcomeSet, Step, StepKind, Transition};
/// let on: OutcomeSet = [Outcome::Ineffective].into_iter().collect();
/// let ladder = Ladder::builder()
///     .step(Step::new("stretching", 1, StepKind::Therapy, "Stretching"))
///     .step(Step::new("baclofen", 2, StepKind::Drug, "Baclofen"))
///     .entry("stretching")
///     .edge("stretching", "baclofen", Transition::escalation(on, false))
///     .build()
///     .unwrap();
/// assert_eq!(ladder.len(), 2);
/// ```
#[derive(Debug, Default, Clone)]
pub struct LadderBuilder {
    steps: Vec<Step>,
    entries: Vec<StepId>,
    edges: Vec<(StepId, StepId, Transition)>,
}

impl LadderBuilder {
    /// Adds a step; steps keep the order in which they are added.
    #[must_use]
    pub fn step(mut self, step: Step) -> Self {
        self.steps.push(step);
        self
    }

    /// Marks a step as an entry of the ladder.
    #[must_use]
    pub fn entry(mut self, id: &str) -> Self {
        self.entries.push(StepId::from(id));
        self
    }

    /// Adds an edge.
    #[must_use]
    pub fn edge(mut self, from: &str, to: &str, t: Transition) -> Self {
        self.edges.push((StepId::from(from), StepId::from(to), t));
        self
    }

    /// Validates and builds the ladder; on failure returns every problem found.
    pub fn build(self) -> Result<Ladder, Vec<LadderError>> {
        let mut errors = Vec::new();
        let mut graph: DiGraph<Step, Transition> = DiGraph::new();
        let mut index = FxHashMap::default();
        for step in self.steps {
            if index.contains_key(&step.id) {
                errors.push(LadderError::DuplicateStep { step: step.id });
                continue;
            }
            let id = step.id.clone();
            let ix = graph.add_node(step);
            index.insert(id, ix);
        }
        let mut entries = Vec::new();
        for e in self.entries {
            match index.get(&e) {
                Some(ix) if !entries.contains(ix) => entries.push(*ix),
                Some(_) => {}
                None => errors.push(LadderError::UnknownEntry { step: e }),
            }
        }
        if entries.is_empty() && !index.is_empty() {
            errors.push(LadderError::NoEntry);
        }
        for (from, to, t) in self.edges {
            let (f, g) = match (index.get(&from), index.get(&to)) {
                (Some(f), Some(g)) => (*f, *g),
                (f, _) => {
                    let unknown = if f.is_none() {
                        from.clone()
                    } else {
                        to.clone()
                    };
                    errors.push(LadderError::UnknownStep { from, to, unknown });
                    continue;
                }
            };
            if t.kind == EdgeKind::Escalation && t.on.is_empty() && !t.or_excluded {
                errors.push(LadderError::EmptyEscalation {
                    from: from.clone(),
                    to: to.clone(),
                });
            }
            if let (Some(a), Some(b)) = (graph.node_weight(f), graph.node_weight(g))
                && t.kind.is_ordering()
                && b.tier < a.tier
            {
                errors.push(LadderError::TierBackwards {
                    from: from.clone(),
                    from_tier: a.tier,
                    to: to.clone(),
                    to_tier: b.tier,
                });
            }
            graph.add_edge(f, g, t);
        }
        let ladder = Ladder {
            graph,
            index,
            entries,
        };
        errors.extend(ladder.cycles());
        if !ladder.entries.is_empty() {
            errors.extend(ladder.unreachable());
        }
        if errors.is_empty() {
            Ok(ladder)
        } else {
            Err(errors)
        }
    }
}

/// A validated treatment ladder.
///
/// Steps are numbered densely in the order they were added; that number is their
/// [`Ladder::position`], and every query that returns several steps returns them in that order.
///
/// ```
/// use pathway_core::{EdgeKind, Ladder, Outcome, OutcomeSet, Step, StepKind, Transition};
/// let unavailable = OutcomeSet::UNAVAILABLE;
/// let ladder = Ladder::builder()
///     .step(Step::new("baclofen", 2, StepKind::Drug, "Baclofen"))
///     .step(Step::new("gabapentin", 2, StepKind::Drug, "Gabapentin"))
///     .step(Step::new("tizanidine", 2, StepKind::Drug, "Tizanidine"))
///     .entry("baclofen")
///     .entry("gabapentin")
///     .edge("baclofen", "tizanidine", Transition::escalation(unavailable, true))
///     .edge("gabapentin", "tizanidine", Transition::escalation(unavailable, true))
///     .edge("baclofen", "gabapentin", Transition::plain(EdgeKind::Alternative))
///     .build()
///     .unwrap();
/// let next: Vec<_> = ladder.next_on("baclofen", Outcome::NotTolerated).map(|s| s.id.as_str()).collect();
/// assert_eq!(next, ["tizanidine"]);
/// let before: Vec<_> = ladder
///     .predecessors("tizanidine", EdgeKind::Escalation)
///     .map(|s| s.id.as_str())
///     .collect();
/// assert_eq!(before, ["baclofen", "gabapentin"]);
/// assert_eq!(ladder.tier("tizanidine"), Some(2));
/// ```
#[derive(Debug, Clone)]
pub struct Ladder {
    graph: DiGraph<Step, Transition>,
    /// Step id to node (hashed: looked up for every step a patient record names).
    index: FxHashMap<StepId, NodeIndex>,
    entries: Vec<NodeIndex>,
}

impl Ladder {
    /// Starts a ladder.
    pub fn builder() -> LadderBuilder {
        LadderBuilder::default()
    }

    /// The number of steps.
    pub fn len(&self) -> usize {
        self.graph.node_count()
    }

    /// Whether the ladder has no steps.
    pub fn is_empty(&self) -> bool {
        self.graph.node_count() == 0
    }

    /// The steps in ladder order.
    pub fn steps(&self) -> impl Iterator<Item = &Step> {
        self.graph.node_weights()
    }

    /// The step with this id.
    pub fn step(&self, id: &str) -> Option<&Step> {
        self.index
            .get(id)
            .and_then(|ix| self.graph.node_weight(*ix))
    }

    /// The step at a position (see [`Ladder::position`]).
    pub fn step_at(&self, position: usize) -> Option<&Step> {
        self.graph.node_weight(NodeIndex::new(position))
    }

    /// The dense position of a step in ladder order.
    pub fn position(&self, id: &str) -> Option<usize> {
        self.index.get(id).map(|ix| ix.index())
    }

    /// A step's tier.
    pub fn tier(&self, id: &str) -> Option<u8> {
        self.step(id).map(|s| s.tier)
    }

    /// The entry steps, in ladder order.
    pub fn entry_steps(&self) -> impl Iterator<Item = &Step> {
        let mut e = self.entries.clone();
        e.sort();
        e.into_iter().filter_map(|ix| self.graph.node_weight(ix))
    }

    /// Steps reached from `id` by an escalation edge taken on `outcome`, in ladder order.
    pub fn next_on(&self, id: &str, outcome: Outcome) -> impl Iterator<Item = &Step> {
        self.neighbours(id, Direction::Outgoing, move |t| {
            t.kind == EdgeKind::Escalation && t.on.contains(outcome)
        })
    }

    /// Steps that reach `id` by an edge of `kind`, in ladder order.
    pub fn predecessors(&self, id: &str, kind: EdgeKind) -> impl Iterator<Item = &Step> {
        self.neighbours(id, Direction::Incoming, move |t| t.kind == kind)
    }

    /// Steps that `id` reaches by an edge of `kind`, in ladder order.
    pub fn successors(&self, id: &str, kind: EdgeKind) -> impl Iterator<Item = &Step> {
        self.neighbours(id, Direction::Outgoing, move |t| t.kind == kind)
    }

    /// Every edge as `(from, to, transition)`, in the order the edges were added.
    pub fn edges(&self) -> impl Iterator<Item = (&Step, &Step, &Transition)> {
        self.graph.edge_references().filter_map(|e| {
            Some((
                self.graph.node_weight(e.source())?,
                self.graph.node_weight(e.target())?,
                e.weight(),
            ))
        })
    }

    /// The escalation edges that lead into `id` from steps of the same tier, directly or
    /// through other steps of that tier, as `(from, to, transition)` in ladder order.
    ///
    /// This is what "every earlier line of this tier is used up" reads: for tizanidine, the
    /// edges from baclofen and gabapentin; for a third-line drug, the edges into and out of
    /// the second line as well.
    pub fn escalations_within_tier(&self, id: &str) -> Vec<(&Step, &Step, &Transition)> {
        let Some(&start) = self.index.get(id) else {
            return Vec::new();
        };
        let Some(tier) = self.graph.node_weight(start).map(|s| s.tier) else {
            return Vec::new();
        };
        let mut seen = BTreeSet::from([start]);
        let mut stack = vec![start];
        let mut edges = Vec::new();
        while let Some(n) = stack.pop() {
            for e in self.graph.edges_directed(n, Direction::Incoming) {
                let src = e.source();
                let same_tier = self.graph.node_weight(src).is_some_and(|s| s.tier == tier);
                if e.weight().kind == EdgeKind::Escalation && same_tier {
                    edges.push(e);
                    if seen.insert(src) {
                        stack.push(src);
                    }
                }
            }
        }
        edges.sort_by_key(|e| (e.source(), e.target()));
        edges
            .into_iter()
            .filter_map(|e| {
                Some((
                    self.graph.node_weight(e.source())?,
                    self.graph.node_weight(e.target())?,
                    e.weight(),
                ))
            })
            .collect()
    }

    fn neighbours(
        &self,
        id: &str,
        dir: Direction,
        keep: impl Fn(&Transition) -> bool,
    ) -> impl Iterator<Item = &Step> {
        let mut found: Vec<NodeIndex> = match self.index.get(id) {
            Some(&ix) => self
                .graph
                .edges_directed(ix, dir)
                .filter(|e| keep(e.weight()))
                .map(|e| match dir {
                    Direction::Incoming => e.source(),
                    Direction::Outgoing => e.target(),
                })
                .collect(),
            None => Vec::new(),
        };
        found.sort();
        found.dedup();
        found
            .into_iter()
            .filter_map(|ix| self.graph.node_weight(ix))
    }

    fn cycles(&self) -> Vec<LadderError> {
        let ordering = EdgeFiltered::from_fn(&self.graph, |e: EdgeReference<'_, Transition>| {
            e.weight().kind.is_ordering()
        });
        let mut out = Vec::new();
        for mut scc in petgraph::algo::kosaraju_scc(&ordering) {
            let self_loop = scc.len() == 1
                && scc.first().is_some_and(|&n| {
                    self.graph
                        .edges_connecting(n, n)
                        .any(|e| e.weight().kind.is_ordering())
                });
            if scc.len() > 1 || self_loop {
                scc.sort();
                let steps = scc
                    .into_iter()
                    .filter_map(|n| self.graph.node_weight(n).map(|s| s.id.clone()))
                    .collect();
                out.push(LadderError::Cycle { steps });
            }
        }
        out.sort_by_key(ToString::to_string);
        out
    }

    fn unreachable(&self) -> Vec<LadderError> {
        let mut reached = BTreeSet::new();
        for &entry in &self.entries {
            let mut bfs = Bfs::new(&self.graph, entry);
            while let Some(n) = bfs.next(&self.graph) {
                reached.insert(n);
            }
        }
        self.graph
            .node_indices()
            .filter(|n| !reached.contains(n))
            .filter_map(|n| self.graph.node_weight(n))
            .map(|s| LadderError::Unreachable { step: s.id.clone() })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(id: &str, tier: u8) -> Step {
        Step::new(id, tier, StepKind::Drug, id)
    }

    fn esc() -> Transition {
        Transition::escalation(OutcomeSet::UNAVAILABLE, true)
    }

    #[test]
    fn duplicate_ids_are_rejected() {
        let err = Ladder::builder()
            .step(s("a", 1))
            .step(s("a", 1))
            .entry("a")
            .build()
            .unwrap_err();
        assert_eq!(err, [LadderError::DuplicateStep { step: "a".into() }]);
    }

    #[test]
    fn edge_to_unknown_step_is_named() {
        let err = Ladder::builder()
            .step(s("a", 1))
            .entry("a")
            .edge("a", "b", esc())
            .build()
            .unwrap_err();
        assert_eq!(
            err,
            [LadderError::UnknownStep {
                from: "a".into(),
                to: "b".into(),
                unknown: "b".into()
            }]
        );
        assert_eq!(err[0].to_string(), "edge a -> b names unknown step `b`");
    }

    #[test]
    fn cycles_among_escalations_are_rejected_but_alternatives_may_loop() {
        let err = Ladder::builder()
            .step(s("a", 1))
            .step(s("b", 1))
            .step(s("c", 1))
            .entry("a")
            .edge("a", "b", esc())
            .edge("b", "c", esc())
            .edge("c", "b", esc())
            .build()
            .unwrap_err();
        assert_eq!(
            err,
            [LadderError::Cycle {
                steps: vec!["b".into(), "c".into()]
            }]
        );
        let ok = Ladder::builder()
            .step(s("a", 1))
            .step(s("b", 1))
            .entry("a")
            .edge("a", "b", Transition::plain(EdgeKind::Alternative))
            .edge("b", "a", Transition::plain(EdgeKind::Alternative))
            .build();
        assert!(ok.is_ok());
    }

    #[test]
    fn self_loop_is_a_cycle() {
        let err = Ladder::builder()
            .step(s("a", 1))
            .entry("a")
            .edge("a", "a", esc())
            .build()
            .unwrap_err();
        assert!(matches!(err.as_slice(), [LadderError::Cycle { .. }]));
    }

    #[test]
    fn unreachable_steps_and_backwards_tiers_are_reported_together() {
        let err = Ladder::builder()
            .step(s("a", 2))
            .step(s("b", 1))
            .step(s("island", 3))
            .entry("a")
            .edge("a", "b", esc())
            .build()
            .unwrap_err();
        assert!(err.contains(&LadderError::TierBackwards {
            from: "a".into(),
            from_tier: 2,
            to: "b".into(),
            to_tier: 1
        }));
        assert!(err.contains(&LadderError::Unreachable {
            step: "island".into()
        }));
    }

    #[test]
    fn no_entry_is_an_error() {
        let err = Ladder::builder().step(s("a", 1)).build().unwrap_err();
        assert_eq!(err, [LadderError::NoEntry]);
    }

    #[test]
    fn escalation_without_outcomes_is_rejected() {
        let err = Ladder::builder()
            .step(s("a", 1))
            .step(s("b", 1))
            .entry("a")
            .edge("a", "b", Transition::escalation(OutcomeSet::EMPTY, false))
            .build()
            .unwrap_err();
        assert!(matches!(
            err.as_slice(),
            [LadderError::EmptyEscalation { .. }]
        ));
    }

    #[test]
    fn escalations_within_tier_follow_the_lines_of_a_tier_only() {
        let ladder = Ladder::builder()
            .step(s("stretch", 1))
            .step(s("bac", 2))
            .step(s("gab", 2))
            .step(s("tiz", 2))
            .step(s("diaz", 2))
            .step(s("itb", 3))
            .entry("stretch")
            .edge("stretch", "bac", esc())
            .edge("stretch", "gab", esc())
            .edge("bac", "tiz", esc())
            .edge("gab", "tiz", esc())
            .edge("tiz", "diaz", esc())
            .edge("bac", "itb", esc())
            .build()
            .unwrap();
        let pairs = |id| -> Vec<(String, String)> {
            ladder
                .escalations_within_tier(id)
                .into_iter()
                .map(|(a, b, _)| (a.id.to_string(), b.id.to_string()))
                .collect()
        };
        let p = |a: &str, b: &str| (a.to_owned(), b.to_owned());
        assert_eq!(pairs("tiz"), [p("bac", "tiz"), p("gab", "tiz")]);
        assert_eq!(
            pairs("diaz"),
            [p("bac", "tiz"), p("gab", "tiz"), p("tiz", "diaz")]
        );
        assert!(pairs("bac").is_empty(), "tier-1 edges do not count");
        assert!(
            pairs("itb").is_empty(),
            "tier-2 edges do not count for tier 3"
        );
    }
}
