//! A rule set's conditions compiled into one circuit, evaluated in a single pass.
//!
//! Every distinct sub-condition of every rule is one node, stored after the nodes it reads.
//! Derived facts, "this step is excluded" and "this escalation edge was taken" are nodes like any
//! other, shared by every condition that reads them. Evaluating a patient is one loop over a
//! flat table, writing one [`Tri`](crate::tri::Tri) per node: no recursion, no memo checks, no pointer chasing,
//! and no allocation once the value buffer has grown. Explanations walk the same nodes and read
//! the values already computed.
//!
//! This file holds the structure and its [`Builder`]; running and explaining a circuit over a
//! patient is evaluation's (`evaluate/run.rs`, an `impl Circuit` one layer up).
//!
//! Architecture invariant: a node reads only nodes with smaller ids. The compiler guarantees it:
//! derived facts are acyclic, and exclusions cannot read availability, which exclusions define.

use pathway_core::OutcomeSet;
use rustc_hash::FxHashMap;

use crate::compile::cond::{Cond, NumSrc};
use crate::compile::graph::EdgeC;
use crate::language::expr::CmpOp;

/// A step's record as one byte: bit `o` for its outcome `o` (declaration order), or
/// [`state::NO_OUTCOME`]; and [`state::CURRENT`].
pub(crate) mod state {
    use pathway_core::{Outcome, OutcomeSet};

    /// No outcome is recorded.
    pub const NO_OUTCOME: u8 = 1 << 6;
    /// The step is current.
    pub const CURRENT: u8 = 1 << 7;

    /// The state bits of an outcome set.
    pub fn outcomes(set: OutcomeSet) -> u8 {
        Outcome::ALL
            .into_iter()
            .filter(|&o| set.contains(o))
            .fold(0, |m, o| m | 1 << (o as u8))
    }

    /// The state of a step record.
    pub fn of(outcome: Option<Outcome>, current: bool) -> u8 {
        let o = outcome.map_or(NO_OUTCOME, |o| 1 << (o as u8));
        if current { o | CURRENT } else { o }
    }

    /// Current with a partial outcome.
    pub fn partial_now(s: u8) -> bool {
        let want = CURRENT | 1 << (Outcome::Partial as u8);
        s & want == want
    }

    /// Current and effective.
    pub fn effective_now(s: u8) -> bool {
        let want = CURRENT | 1 << (Outcome::Effective as u8);
        s & want == want
    }
}

/// The index of a node in a [`Circuit`].
pub(crate) type NodeId = u32;

/// One node. List nodes name their children as a range of [`Circuit::args`] (node ids) or, for
/// adjunct hosts, of [`Circuit::hosts`] (step indices).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum Op {
    Const(bool),
    Bool(u16),
    Known(u16),
    Imprecise(u16),
    /// A numeric fact compared with a constant (the `f64`'s bits, so that nodes hash).
    Num(u16, CmpOp, u64),
    Age(CmpOp, u64),
    Code(u16, u64),
    Sex(u8),
    /// The step's state (see [`state`]) has one of the bits of the mask: an outcome in a
    /// set, no outcome, current.
    Step(u16, u8),
    Medication(u16),
    Hypersensitive(u16),
    /// Some host step (in `hosts`) is current with a partial outcome.
    AdjunctToPartial(u32, u32),
    Not(NodeId),
    All(u32, u32),
    Any(u32, u32),
    /// `All` and `Any` of two children, which most are, with the children inline.
    All2(NodeId, NodeId),
    Any2(NodeId, NodeId),
    /// The step is excluded: some of its exclusions (the children) holds.
    Excluded(u32, u32),
    /// The step's outcome is in the set, or else the step is excluded (`unavailable`, `failed`).
    ByOutcome {
        step: u16,
        set: u8,
        excluded: NodeId,
    },
    /// An escalation edge was taken: the outcome of the step it leaves is in `on`, or else
    /// (for edges that say so) that step is excluded.
    Fired {
        from: u16,
        on: u8,
        excluded: Option<NodeId>,
    },
    /// The step is current, effective and not excluded.
    Controls {
        step: u16,
        excluded: NodeId,
    },
    /// Some step at or above a tier controls the spasticity (children: `Controls` nodes).
    Controlled(u32, u32),
}

/// The kinds of list node, for hash-consing by children.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum ListKind {
    All,
    Any,
    Excluded,
    Controlled,
}

/// The compiled conditions of a rule set.
#[derive(Debug, Clone, Default)]
pub(crate) struct Circuit {
    pub(crate) nodes: Vec<Op>,
    pub(crate) args: Vec<NodeId>,
    pub(crate) hosts: Vec<u16>,
    /// The first nodes are the step-record leaves, then the boolean-fact leaves (also as
    /// these tables, for tight loops), then the other leaves, then everything else.
    pub(crate) steps: Vec<(u16, u8)>,
    pub(crate) bools: Vec<u16>,
}

/// The ladder's structure, as the circuit builder needs it.
pub(crate) struct Graph<'a> {
    pub derived: &'a [Cond],
    /// Per step, the conditions of its exclusions.
    pub exclusions: Vec<Vec<&'a Cond>>,
    pub edges: &'a [EdgeC],
    pub incoming: &'a [Vec<u16>],
    pub within_tier: &'a [Vec<u16>],
    pub adjunct_hosts: &'a [Vec<u16>],
    pub tiers: &'a [u8],
}

/// Builds a [`Circuit`] from compiled conditions, sharing equal nodes.
pub(crate) struct Builder<'a> {
    g: Graph<'a>,
    c: Circuit,
    ops: FxHashMap<Op, NodeId>,
    /// List nodes by children and kind (the last element).
    lists: FxHashMap<Vec<NodeId>, NodeId>,
    derived: Vec<Option<NodeId>>,
    excluded: Vec<Option<NodeId>>,
}

pub(crate) fn slice<T>(v: &[T], a: u32, b: u32) -> &[T] {
    v.get(a as usize..b as usize).unwrap_or(&[])
}

pub(crate) fn span(start: usize, end: usize) -> (u32, u32) {
    (
        u32::try_from(start).unwrap_or(u32::MAX),
        u32::try_from(end).unwrap_or(u32::MAX),
    )
}

impl<'a> Builder<'a> {
    pub fn new(g: Graph<'a>) -> Self {
        let (nd, ns) = (g.derived.len(), g.tiers.len());
        Builder {
            g,
            c: Circuit::default(),
            ops: FxHashMap::default(),
            lists: FxHashMap::default(),
            derived: vec![None; nd],
            excluded: vec![None; ns],
        }
    }

    /// The number of nodes so far: nodes below it read only each other.
    pub fn len(&self) -> usize {
        self.c.nodes.len()
    }

    /// The circuit, with its leaves moved to the front (grouped by kind), and how node ids
    /// moved.
    pub fn finish(self) -> (Circuit, Remap) {
        let old = self.c;
        let class = |op: &Op| match op {
            Op::Step(..) => 0,
            Op::Bool(_) => 1,
            op if op.is_leaf() => 2,
            _ => 3,
        };
        let mut order: Vec<usize> = (0..old.nodes.len()).collect();
        // Stable within a class: the other nodes keep their order, so each still comes after
        // the nodes it reads.
        order.sort_by_key(|&i| (old.nodes.get(i).map_or(3, class), i));
        let mut map = vec![0; order.len()];
        for (new, &i) in order.iter().enumerate() {
            if let Some(slot) = map.get_mut(i) {
                *slot = NodeId::try_from(new).unwrap_or(NodeId::MAX);
            }
        }
        let leaves = old.nodes.iter().filter(|op| op.is_leaf()).count();
        let remap = Remap { map, leaves };
        let args: Vec<NodeId> = old.args.iter().map(|&n| remap.node(n)).collect();
        let pair = |a: u32, b: u32| match slice(&args, a, b) {
            &[x, y] => Some((x, y)),
            _ => None,
        };
        let nodes: Vec<Op> = order
            .iter()
            .filter_map(|&i| old.nodes.get(i))
            .map(|op| match op.remapped(|n| remap.node(n)) {
                Op::All(a, b) => pair(a, b).map_or(Op::All(a, b), |(x, y)| Op::All2(x, y)),
                Op::Any(a, b) => pair(a, b).map_or(Op::Any(a, b), |(x, y)| Op::Any2(x, y)),
                op => op,
            })
            .collect();
        let steps = nodes
            .iter()
            .map_while(|op| match *op {
                Op::Step(s, mask) => Some((s, mask)),
                _ => None,
            })
            .collect::<Vec<_>>();
        let bools = nodes
            .iter()
            .skip(steps.len())
            .map_while(|op| match *op {
                Op::Bool(f) => Some(f),
                _ => None,
            })
            .collect();
        let circuit = Circuit {
            nodes,
            args,
            hosts: old.hosts,
            steps,
            bools,
        };
        (circuit, remap)
    }
}

impl<'a> Builder<'a> {
    fn push(&mut self, op: Op) -> NodeId {
        let id = NodeId::try_from(self.c.nodes.len()).unwrap_or(NodeId::MAX);
        self.c.nodes.push(op);
        id
    }

    fn op(&mut self, op: Op) -> NodeId {
        if let Some(&id) = self.ops.get(&op) {
            return id;
        }
        let id = self.push(op);
        self.ops.insert(op, id);
        id
    }

    fn list(&mut self, kind: ListKind, children: Vec<NodeId>) -> NodeId {
        // Keyed by the children with the kind appended, so a lookup borrows the key.
        let mut key = children;
        key.push(NodeId::MAX - kind as NodeId);
        if let Some(&id) = self.lists.get(key.as_slice()) {
            return id;
        }
        let children = key.get(..key.len() - 1).unwrap_or(&[]);
        let start = self.c.args.len();
        self.c.args.extend_from_slice(children);
        let (a, b) = span(start, self.c.args.len());
        let id = self.push(match kind {
            ListKind::All => Op::All(a, b),
            ListKind::Any => Op::Any(a, b),
            ListKind::Excluded => Op::Excluded(a, b),
            ListKind::Controlled => Op::Controlled(a, b),
        });
        self.lists.insert(key, id);
        id
    }

    fn excluded(&mut self, s: u16) -> NodeId {
        if let Some(Some(id)) = self.excluded.get(usize::from(s)) {
            return *id;
        }
        // Built once per step (memoised below), so the list can be moved out.
        let conds = self
            .g
            .exclusions
            .get_mut(usize::from(s))
            .map(std::mem::take)
            .unwrap_or_default();
        let children = conds.into_iter().map(|c| self.cond(c)).collect();
        let id = self.list(ListKind::Excluded, children);
        if let Some(slot) = self.excluded.get_mut(usize::from(s)) {
            *slot = Some(id);
        }
        id
    }

    fn fired(&mut self, e: u16) -> NodeId {
        let Some(edge) = self.g.edges.get(usize::from(e)).copied() else {
            return self.op(Op::Const(false));
        };
        let excluded = edge.or_excluded.then(|| self.excluded(edge.from));
        self.op(Op::Fired {
            from: edge.from,
            on: state::outcomes(edge.on),
            excluded,
        })
    }

    fn edges(&mut self, kind: ListKind, table: fn(&Graph<'a>) -> &'a [Vec<u16>], s: u16) -> NodeId {
        let edges = table(&self.g)
            .get(usize::from(s))
            .map_or(&[][..], Vec::as_slice);
        let children = edges.iter().map(|&e| self.fired(e)).collect();
        self.list(kind, children)
    }

    /// The node of a condition, adding what is not there yet.
    pub fn cond(&mut self, c: &'a Cond) -> NodeId {
        match c {
            Cond::Const(b) => self.op(Op::Const(*b)),
            Cond::Bool(f) => self.op(Op::Bool(*f)),
            Cond::Known(f) => self.op(Op::Known(*f)),
            Cond::Imprecise(f) => self.op(Op::Imprecise(*f)),
            Cond::Num(NumSrc::Fact(f), op, k) => self.op(Op::Num(*f, *op, k.to_bits())),
            Cond::Num(NumSrc::Age, op, k) => self.op(Op::Age(*op, k.to_bits())),
            Cond::Code(f, mask) => self.op(Op::Code(*f, *mask)),
            Cond::Sex(mask) => self.op(Op::Sex(*mask)),
            Cond::Outcome { step, set, none } => {
                let none = if *none { state::NO_OUTCOME } else { 0 };
                self.op(Op::Step(*step, state::outcomes(*set) | none))
            }
            Cond::Current(s) => self.op(Op::Step(*s, state::CURRENT)),
            Cond::Medication(m) => self.op(Op::Medication(*m)),
            Cond::Hypersensitive(s) => self.op(Op::Hypersensitive(*s)),
            Cond::AdjunctToPartial(s) => {
                let hosts = self
                    .g
                    .adjunct_hosts
                    .get(usize::from(*s))
                    .map_or(&[][..], Vec::as_slice);
                // Hosts are few; equal lists are not worth sharing.
                let start = self.c.hosts.len();
                self.c.hosts.extend_from_slice(hosts);
                let (a, b) = span(start, self.c.hosts.len());
                self.push(Op::AdjunctToPartial(a, b))
            }
            Cond::Derived(d) => {
                if let Some(Some(id)) = self.derived.get(usize::from(*d)) {
                    return *id;
                }
                let id = match self.g.derived.get(usize::from(*d)) {
                    Some(dc) => self.cond(dc),
                    None => self.op(Op::Const(false)),
                };
                if let Some(slot) = self.derived.get_mut(usize::from(*d)) {
                    *slot = Some(id);
                }
                id
            }
            Cond::Unavailable(s) | Cond::Failed(s) => {
                let set = if matches!(c, Cond::Failed(_)) {
                    OutcomeSet::FAILED
                } else {
                    OutcomeSet::UNAVAILABLE
                };
                let excluded = self.excluded(*s);
                self.op(Op::ByOutcome {
                    step: *s,
                    set: state::outcomes(set),
                    excluded,
                })
            }
            Cond::Excluded(s) => self.excluded(*s),
            Cond::Escalated(s) => self.edges(ListKind::Any, |g| g.incoming, *s),
            Cond::EscalatedFrom(e) => self.fired(*e),
            Cond::Exhausted(s) => self.edges(ListKind::All, |g| g.within_tier, *s),
            Cond::Controlled(tier) => {
                let mut children = Vec::new();
                for (s, &st) in self.g.tiers.iter().enumerate() {
                    let s = u16::try_from(s).unwrap_or(u16::MAX);
                    if st >= *tier {
                        let excluded = self.excluded(s);
                        children.push(self.op(Op::Controls { step: s, excluded }));
                    }
                }
                self.list(ListKind::Controlled, children)
            }
            Cond::Not(inner) => {
                let inner = self.cond(inner);
                self.op(Op::Not(inner))
            }
            Cond::All(cs) => {
                let children = cs.iter().map(|c| self.cond(c)).collect();
                self.list(ListKind::All, children)
            }
            Cond::Any(cs) => {
                let children = cs.iter().map(|c| self.cond(c)).collect();
                self.list(ListKind::Any, children)
            }
        }
    }
}

/// How [`Builder::finish`] renumbered the nodes.
pub(crate) struct Remap {
    map: Vec<NodeId>,
    leaves: usize,
}

impl Remap {
    /// The new id of a node.
    pub fn node(&self, old: NodeId) -> NodeId {
        self.map.get(old as usize).copied().unwrap_or(NodeId::MAX)
    }

    /// The new end of the nodes that were below `old_end`: all leaves, and the other nodes
    /// that were below it (they kept their order).
    pub fn end(&self, old_end: usize) -> usize {
        let moved = self
            .map
            .iter()
            .take(old_end)
            .filter(|&&n| n as usize >= self.leaves)
            .count();
        self.leaves + moved
    }
}

impl Op {
    fn is_leaf(&self) -> bool {
        !matches!(
            self,
            Op::Not(_)
                | Op::All(..)
                | Op::Any(..)
                | Op::All2(..)
                | Op::Any2(..)
                | Op::Excluded(..)
                | Op::ByOutcome { .. }
                | Op::Fired { .. }
                | Op::Controls { .. }
                | Op::Controlled(..)
        )
    }

    /// The same node with the ids it names (not its argument ranges) mapped by `f`.
    fn remapped(self, f: impl Fn(NodeId) -> NodeId) -> Op {
        match self {
            Op::Not(c) => Op::Not(f(c)),
            Op::ByOutcome {
                step,
                set,
                excluded,
            } => Op::ByOutcome {
                step,
                set,
                excluded: f(excluded),
            },
            Op::Fired { from, on, excluded } => Op::Fired {
                from,
                on,
                excluded: excluded.map(f),
            },
            Op::Controls { step, excluded } => Op::Controls {
                step,
                excluded: f(excluded),
            },
            op => op,
        }
    }
}

impl Circuit {
    /// The number of nodes.
    pub fn len(&self) -> usize {
        self.nodes.len()
    }

    /// The fact a node reads when it is a leaf over one catalogue fact.
    pub fn fact_of_leaf(&self, n: NodeId) -> Option<u16> {
        match self.nodes.get(n as usize)? {
            Op::Bool(f) | Op::Known(f) | Op::Imprecise(f) | Op::Code(f, _) | Op::Num(f, _, _) => {
                Some(*f)
            }
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::RuleSet;

    fn children(c: &Circuit, op: &Op) -> Vec<NodeId> {
        match *op {
            Op::Not(n) => vec![n],
            Op::All2(x, y) | Op::Any2(x, y) => vec![x, y],
            Op::All(a, b) | Op::Any(a, b) | Op::Excluded(a, b) | Op::Controlled(a, b) => {
                slice(&c.args, a, b).to_vec()
            }
            Op::ByOutcome { excluded, .. } | Op::Controls { excluded, .. } => vec![excluded],
            Op::Fired { excluded, .. } => excluded.into_iter().collect(),
            _ => Vec::new(),
        }
    }

    #[test]
    fn step_state_bits_answer_outcome_and_current_questions() {
        use pathway_core::Outcome;
        let partial_now = state::of(Some(Outcome::Partial), true);
        let failed = state::outcomes(OutcomeSet::FAILED);
        assert!(state::partial_now(partial_now));
        assert!(!state::partial_now(state::of(
            Some(Outcome::Partial),
            false
        )));
        assert!(!state::effective_now(partial_now));
        assert!(state::effective_now(state::of(
            Some(Outcome::Effective),
            true
        )));
        // FAILED is ineffective, not tolerated or declined; partial is not a failure.
        assert_eq!(partial_now & failed, 0);
        for o in [
            Outcome::Ineffective,
            Outcome::NotTolerated,
            Outcome::Declined,
        ] {
            assert_ne!(state::of(Some(o), false) & failed, 0, "{o}");
        }
        // No outcome recorded is its own bit, and matches no outcome set.
        let never = state::of(None, false);
        assert_eq!(never, state::NO_OUTCOME);
        assert_eq!(never & state::outcomes(OutcomeSet::UNAVAILABLE), 0);
        assert_ne!(state::of(None, true) & state::CURRENT, 0);
    }

    #[test]
    fn every_node_reads_only_earlier_nodes() {
        let rs = RuleSet::ms_spasticity().unwrap();
        let c = &rs.compiled;
        for (i, op) in c.circuit.nodes.iter().enumerate() {
            for child in children(&c.circuit, op) {
                assert!((child as usize) < i, "node {i} ({op:?}) reads node {child}");
            }
        }
        // Absent policies come first, so they can be run on their own.
        assert!(c.absent_end <= c.circuit.len());
        assert!(
            c.absent_when
                .iter()
                .flatten()
                .all(|&n| (n as usize) < c.absent_end)
        );
    }

    #[test]
    fn equal_conditions_share_one_node() {
        let rs = RuleSet::ms_spasticity().unwrap();
        let c = &rs.compiled;
        let mut seen = std::collections::HashSet::new();
        for op in &c.circuit.nodes {
            let key = (std::mem::discriminant(op), children(&c.circuit, op), *op);
            let shared = match op {
                // List nodes are keyed by their children, leaves by themselves.
                Op::All(..)
                | Op::Any(..)
                | Op::All2(..)
                | Op::Any2(..)
                | Op::Excluded(..)
                | Op::Controlled(..) => seen.insert((key.0, key.1, None)),
                Op::AdjunctToPartial(..) => true,
                _ => seen.insert((key.0, key.1, Some(key.2))),
            };
            assert!(shared, "{op:?} appears twice");
        }
        // The same condition written on several rules is one node.
        let mut b = Builder::new(Graph {
            derived: &[],
            exclusions: Vec::new(),
            edges: &[],
            incoming: &[],
            within_tier: &[],
            adjunct_hosts: &[],
            tiers: &[],
        });
        let x = Cond::All(vec![Cond::Bool(0), Cond::Not(Box::new(Cond::Bool(1)))]);
        let y = x.clone();
        assert_eq!(b.cond(&x), b.cond(&y));
        assert_eq!(b.len(), 4);
    }
}
