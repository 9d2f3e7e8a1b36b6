//! The ladder's structure and the derived facts' dependencies, indexed for compiling: escalation
//! edges and the edges into each step, same-tier escalations (`exhausted`), adjunct hosts and
//! tiers ([`GraphIndex`]); which derived facts are on a cycle and how deep each builds on
//! others ([`DerivedInfo::chains`]), and what a condition reads through derived facts
//! ([`Reads`]).

use std::collections::{BTreeMap, BTreeSet};

use pathway_core::{EdgeKind, Ladder, OutcomeSet, Step};
use rustc_hash::FxHashMap;

use crate::compile::cond::{Cond, NumSrc};
use crate::language::file::Document;

/// An escalation edge, compiled.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct EdgeC {
    pub from: u16,
    pub on: OutcomeSet,
    pub or_excluded: bool,
}

/// The ladder's edges, indexed for evaluation: escalation edges, the escalation edges into each
/// step, the same-tier escalation edges behind each step (`exhausted`), adjunct hosts and tiers.
#[derive(Debug, Default)]
pub(crate) struct GraphIndex {
    pub edges: Vec<EdgeC>,
    pub edge_ix: BTreeMap<(u16, u16), u16>,
    pub incoming: Vec<Vec<u16>>,
    pub within_tier: Vec<Vec<u16>>,
    pub adjunct_hosts: Vec<Vec<u16>>,
    pub tiers: Vec<u8>,
}

impl GraphIndex {
    pub fn of(l: &Ladder) -> GraphIndex {
        let n = l.len();
        let mut g = GraphIndex {
            incoming: vec![Vec::new(); n],
            within_tier: vec![Vec::new(); n],
            adjunct_hosts: vec![Vec::new(); n],
            tiers: l.steps().map(|s| s.tier).collect(),
            ..GraphIndex::default()
        };
        let pos = |s: &Step| {
            l.position(s.id.as_str())
                .and_then(|p| u16::try_from(p).ok())
        };
        for (a, b, t) in l.edges() {
            let (Some(pa), Some(pb)) = (pos(a), pos(b)) else {
                continue;
            };
            match t.kind {
                EdgeKind::Escalation => {
                    let ix = u16::try_from(g.edges.len()).unwrap_or(u16::MAX);
                    g.edges.push(EdgeC {
                        from: pa,
                        on: t.on,
                        or_excluded: t.or_excluded,
                    });
                    g.edge_ix.entry((pa, pb)).or_insert(ix);
                    if let Some(v) = g.incoming.get_mut(usize::from(pb)) {
                        v.push(ix);
                    }
                }
                EdgeKind::Adjunct => {
                    if let Some(v) = g.adjunct_hosts.get_mut(usize::from(pb)) {
                        v.push(pa);
                    }
                }
                EdgeKind::Sequence | EdgeKind::Alternative => {}
            }
        }
        for (i, s) in l.steps().enumerate() {
            let list: Vec<u16> = l
                .escalations_within_tier(s.id.as_str())
                .into_iter()
                .filter_map(|(a, b, _)| g.edge_ix.get(&(pos(a)?, pos(b)?)).copied())
                .collect();
            if let Some(v) = g.within_tier.get_mut(i) {
                *v = list;
            }
        }
        for v in &mut g.adjunct_hosts {
            v.sort_unstable();
            v.dedup();
        }
        g
    }

    /// When the graph did not build: only the declared escalation edges, so that names still
    /// resolve and one ladder error does not cascade into every rule that names an edge.
    pub fn declared(doc: &Document, steps: &FxHashMap<String, u16>) -> GraphIndex {
        let mut g = GraphIndex::default();
        for e in doc.edges.iter().filter(|e| e.kind == EdgeKind::Escalation) {
            for f in &e.from {
                for t in &e.to {
                    if let (Some(&a), Some(&b)) = (steps.get(f.get_ref()), steps.get(t.get_ref())) {
                        g.edge_ix.entry((a, b)).or_insert(0);
                    }
                }
            }
        }
        g
    }
}

/// What a condition reads, through derived facts.
#[derive(Debug, Default, Clone)]
pub(crate) struct Reads {
    pub availability: bool,
    pub facts: BTreeSet<u16>,
}

/// How many levels of derived facts may build on each other: far above what people write (the
/// shipped rule set uses 2), and low enough that compiling and explaining a condition, which
/// descend through derived facts, stay shallow.
pub(crate) const MAX_DERIVED_LEVELS: usize = 16;

/// Where a derived fact stands among the others.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Chain {
    /// It reads itself, through others or directly.
    Cycle,
    /// It builds on a cycle without being on it.
    OnCycle,
    /// The longest chain of derived facts it builds on, itself included (1 = reads none).
    Levels(usize),
}

/// Dependency information over derived facts.
pub(crate) struct DerivedInfo<'c> {
    conds: &'c [Cond],
}

impl<'c> DerivedInfo<'c> {
    pub fn new(conds: &'c [Cond]) -> Self {
        DerivedInfo { conds }
    }

    /// The derived facts that derived fact `i` reads directly, each once.
    fn deps(&self, i: usize) -> Vec<usize> {
        let mut out = Vec::new();
        if let Some(c) = self.conds.get(i) {
            c.visit(&mut |n| {
                if let Cond::Derived(d) = n {
                    out.push(usize::from(*d));
                }
            });
        }
        out.sort_unstable();
        out.dedup();
        out
    }

    /// Per derived fact, whether it is on a cycle, and otherwise how long its longest chain of
    /// derived facts is; linear in the size of the derived facts, without recursion.
    pub fn chains(&self) -> Vec<Chain> {
        let n = self.conds.len();
        let deps: Vec<Vec<usize>> = (0..n).map(|i| self.deps(i)).collect();
        let mut g = petgraph::Graph::<(), ()>::with_capacity(n, 0);
        let ix: Vec<_> = (0..n).map(|_| g.add_node(())).collect();
        for (i, ds) in deps.iter().enumerate() {
            for &d in ds {
                if let (Some(&a), Some(&b)) = (ix.get(i), ix.get(d)) {
                    g.add_edge(a, b, ());
                }
            }
        }
        let mut out = vec![Chain::OnCycle; n];
        for scc in petgraph::algo::kosaraju_scc(&g) {
            let cyclic = scc.len() > 1
                || scc.first().is_some_and(|&a| {
                    deps.get(a.index())
                        .is_some_and(|ds| ds.contains(&a.index()))
                });
            if cyclic {
                for a in scc {
                    if let Some(slot) = out.get_mut(a.index()) {
                        *slot = Chain::Cycle;
                    }
                }
            }
        }
        // Levels in dependency order (Kahn's algorithm); what builds on a cycle keeps `OnCycle`.
        let mut users: Vec<Vec<usize>> = vec![Vec::new(); n];
        let mut waiting: Vec<usize> = deps.iter().map(Vec::len).collect();
        for (i, ds) in deps.iter().enumerate() {
            for &d in ds {
                if let Some(u) = users.get_mut(d) {
                    u.push(i);
                }
            }
        }
        let mut level = vec![1usize; n];
        let mut ready: Vec<usize> = (0..n).filter(|&i| waiting.get(i) == Some(&0)).collect();
        while let Some(i) = ready.pop() {
            let l = level.get(i).copied().unwrap_or(1);
            if let Some(slot) = out.get_mut(i) {
                *slot = Chain::Levels(l);
            }
            for &u in users.get(i).map_or(&[][..], Vec::as_slice) {
                if let Some(lu) = level.get_mut(u) {
                    *lu = (*lu).max(l + 1);
                }
                if let Some(w) = waiting.get_mut(u) {
                    *w -= 1;
                    if *w == 0 {
                        ready.push(u);
                    }
                }
            }
        }
        out
    }

    /// What `c` reads; call only when there is no cycle.
    pub fn reads(&mut self, c: &Cond) -> Reads {
        let mut r = Reads::default();
        let mut todo = vec![c.clone()];
        let mut seen = BTreeSet::new();
        while let Some(c) = todo.pop() {
            c.visit(&mut |n| {
                if n.reads_availability() {
                    r.availability = true;
                }
                match n {
                    Cond::Bool(f)
                    | Cond::Known(f)
                    | Cond::Imprecise(f)
                    | Cond::Code(f, _)
                    | Cond::Num(NumSrc::Fact(f), _, _) => {
                        r.facts.insert(*f);
                    }
                    Cond::Derived(d) => {
                        if seen.insert(*d)
                            && let Some(dc) = self.conds.get(usize::from(*d))
                        {
                            todo.push(dc.clone());
                        }
                    }
                    _ => {}
                }
            });
        }
        r
    }
}
