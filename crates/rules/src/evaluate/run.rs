//! Running a compiled [`Circuit`] over a [`Prepared`] profile (one pass over a flat table, one
//! [`Tri`] per node) and explaining a node's value: the [`Atom`]s (facts, age, sex, step
//! records, medication classes, hypersensitivities) that made it come out as it did, each node
//! visited once ([`Visits`]), or once for a whole evaluation ([`AtomMemo`]).

use std::cell::Cell;

use crate::compile::circuit::{Circuit, NodeId, Op, slice, span, state};
use crate::evaluate::prepared::{Prepared, Val};
use crate::tri::Tri;

/// A fact, age, sex, step record, medication class or hypersensitivity that a rule read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Atom {
    Age,
    Sex,
    Fact(u16),
    Step(u16),
    Med(u16),
    Hyper(u16),
}

/// A boolean fact's value (a value of another type reads as false).
fn bool_value(v: Val) -> Tri {
    match v {
        Val::Bool(b) => Tri::from(b),
        Val::Unknown => Tri::Unknown,
        _ => Tri::False,
    }
}

fn sex_bit(s: pathway_core::Sex) -> u8 {
    use pathway_core::Sex;
    match s {
        Sex::Male => 1,
        Sex::Female => 2,
        Sex::Other => 4,
        Sex::Unknown => 8,
    }
}

impl Circuit {
    /// Evaluates the nodes from `values.len()` up to `end` for `p`, appending their values
    /// (`values` holds the values of the nodes before). Starting from empty evaluates the
    /// leaves first, kind by kind, in tight loops.
    pub fn run(&self, p: &Prepared, end: usize, values: &mut Vec<Tri>) {
        let start = values.len();
        let end = end.min(self.nodes.len());
        if start >= end {
            return;
        }
        values.resize(end, Tri::Unknown);
        self.run_over(p, start, end, values);
    }

    /// Evaluates every node for `p` into `values`, overwriting what it held (without
    /// clearing it first: every slot is written).
    pub fn run_all(&self, p: &Prepared, values: &mut Vec<Tri>) {
        let end = self.nodes.len();
        values.resize(end, Tri::Unknown);
        self.run_over(p, 0, end, values);
    }

    fn run_over(&self, p: &Prepared, start: usize, end: usize, values: &mut [Tri]) {
        let mut next = start;
        if start == 0 {
            for (slot, &(s, mask)) in values.iter_mut().zip(&self.steps) {
                *slot = Tri::from(p.state(s) & mask != 0);
            }
            let bools = values.iter_mut().skip(self.steps.len());
            for (slot, &f) in bools.zip(&self.bools) {
                *slot = bool_value(p.val(f));
            }
            next = (self.steps.len() + self.bools.len()).min(end);
        }
        // Cells let each node read earlier nodes while its own slot is written.
        let cells = Cell::from_mut(values).as_slice_of_cells();
        let (Some(nodes), Some(out)) = (self.nodes.get(next..end), cells.get(next..end)) else {
            return;
        };
        for (op, slot) in nodes.iter().zip(out) {
            slot.set(self.value(op, p, cells));
        }
    }

    #[inline]
    fn value(&self, op: &Op, p: &Prepared, v: &[Cell<Tri>]) -> Tri {
        let node = |n: NodeId| v.get(n as usize).map_or(Tri::Unknown, Cell::get);
        let any = |a: u32, b: u32| {
            slice(&self.args, a, b)
                .iter()
                .fold(Tri::False, |t, &c| t.or(node(c)))
        };
        match *op {
            Op::Const(b) => Tri::from(b),
            Op::Bool(f) => bool_value(p.val(f)),
            Op::Known(f) => Tri::from(p.val(f) != Val::Unknown),
            Op::Imprecise(f) => Tri::from(matches!(p.val(f), Val::Range(_))),
            Op::Num(f, op, k) => match p.val(f) {
                Val::Num(x) => Tri::from(op.holds(x, f64::from_bits(k))),
                Val::Range(i) => op
                    .decides(&p.range(i), f64::from_bits(k))
                    .map_or(Tri::Unknown, Tri::from),
                Val::Unknown => Tri::Unknown,
                _ => Tri::False,
            },
            Op::Age(op, k) => Tri::from(op.holds(p.age, f64::from_bits(k))),
            Op::Code(f, mask) => match p.val(f) {
                Val::Code(i) => Tri::from(mask & (1u64 << i.min(63)) != 0),
                Val::Unknown => Tri::Unknown,
                _ => Tri::False,
            },
            Op::Sex(mask) => Tri::from(mask & sex_bit(p.sex) != 0),
            Op::Step(s, mask) => Tri::from(p.state(s) & mask != 0),
            Op::Medication(m) => p.medication(m),
            Op::Hypersensitive(s) => Tri::from(p.hypersensitive(s)),
            Op::AdjunctToPartial(a, b) => Tri::from(
                slice(&self.hosts, a, b)
                    .iter()
                    .any(|&h| state::partial_now(p.state(h))),
            ),
            Op::Not(c) => node(c).not(),
            Op::All2(x, y) => node(x).and(node(y)),
            Op::Any2(x, y) => node(x).or(node(y)),
            Op::All(a, b) => slice(&self.args, a, b)
                .iter()
                .fold(Tri::True, |t, &c| t.and(node(c))),
            Op::Any(a, b) | Op::Excluded(a, b) | Op::Controlled(a, b) => any(a, b),
            Op::ByOutcome {
                step,
                set,
                excluded,
            } => {
                if p.state(step) & set != 0 {
                    Tri::True
                } else {
                    node(excluded)
                }
            }
            Op::Fired { from, on, excluded } => {
                if p.state(from) & on != 0 {
                    Tri::True
                } else {
                    excluded.map_or(Tri::False, node)
                }
            }
            Op::Controls { step, excluded } => {
                if state::effective_now(p.state(step)) {
                    node(excluded).not()
                } else {
                    Tri::False
                }
            }
        }
    }

    /// Collects the atoms that make node `n` come out as it did (`values` from [`Circuit::run`]),
    /// each node visited once however often it is shared (so linear in the circuit's size).
    /// Atoms may repeat; callers treat them as a set.
    pub fn explain(&self, n: NodeId, values: &[Tri], p: &Prepared, out: &mut Vec<Atom>) {
        self.explain_with(n, values, p, out, &mut Visits::default());
    }

    /// As [`Circuit::explain`], reusing `visits`' buffers.
    pub fn explain_with(
        &self,
        n: NodeId,
        values: &[Tri],
        p: &Prepared,
        out: &mut Vec<Atom>,
        visits: &mut Visits,
    ) {
        visits.start(self.nodes.len());
        visits.todo.push(n);
        while let Some(n) = visits.todo.pop() {
            if visits.first(n) {
                self.expand(n, values, p, out, &mut visits.todo);
            }
        }
    }

    /// The atoms behind node `n`, sorted and each once, found once per node for all the
    /// explanations of one evaluation (`memo`): linear in the circuit however many rules share
    /// its nodes.
    pub fn explain_memo<'m>(
        &self,
        n: NodeId,
        values: &[Tri],
        p: &Prepared,
        memo: &'m mut AtomMemo,
    ) -> &'m [Atom] {
        if memo.at.len() != self.nodes.len() {
            memo.at.clear();
            memo.at.resize(self.nodes.len(), None);
            memo.store.clear();
        }
        memo.stack.clear();
        memo.stack.push((n, false));
        while let Some((m, done)) = memo.stack.pop() {
            if memo.at.get(m as usize).is_none_or(Option::is_some) {
                continue;
            }
            memo.own.clear();
            memo.kids.clear();
            self.expand(m, values, p, &mut memo.own, &mut memo.kids);
            if !done {
                // Children first (a circuit has no cycles: a node reads only earlier nodes).
                memo.stack.push((m, true));
                for &k in &memo.kids {
                    if memo.at.get(k as usize).is_some_and(Option::is_none) {
                        memo.stack.push((k, false));
                    }
                }
                continue;
            }
            for &k in &memo.kids {
                if let Some(&Some((a, b))) = memo.at.get(k as usize) {
                    memo.own.extend_from_slice(slice(&memo.store, a, b));
                }
            }
            memo.own.sort_unstable();
            memo.own.dedup();
            let start = memo.store.len();
            memo.store.extend_from_slice(&memo.own);
            if let Some(slot) = memo.at.get_mut(m as usize) {
                *slot = Some(span(start, memo.store.len()));
            }
        }
        match memo.at.get(n as usize) {
            Some(&Some((a, b))) => slice(&memo.store, a, b),
            _ => &[],
        }
    }

    /// What explaining node `n` finds there: its own atoms (into `out`) and the children that
    /// explain it (into `todo`).
    fn expand(
        &self,
        n: NodeId,
        values: &[Tri],
        p: &Prepared,
        out: &mut Vec<Atom>,
        todo: &mut Vec<NodeId>,
    ) {
        let node = |n: NodeId| values.get(n as usize).copied().unwrap_or(Tri::Unknown);
        let Some(op) = self.nodes.get(n as usize) else {
            return;
        };
        let v = node(n);
        // A conjunction is explained by all its children when true, else by those that made
        // it false (or unknown); a disjunction the other way round.
        let mut list = |children: &[NodeId], all: Tri| {
            for &c in children.iter().rev() {
                if v == all || values.get(c as usize) == Some(&v) {
                    todo.push(c);
                }
            }
        };
        match *op {
            Op::Const(_) => {}
            Op::Bool(f) | Op::Known(f) | Op::Imprecise(f) | Op::Code(f, _) | Op::Num(f, _, _) => {
                out.push(Atom::Fact(f))
            }
            Op::Age(..) => out.push(Atom::Age),
            Op::Sex(_) => out.push(Atom::Sex),
            Op::Step(step, _) => out.push(Atom::Step(step)),
            Op::Medication(m) => out.push(Atom::Med(m)),
            Op::Hypersensitive(s) => out.push(Atom::Hyper(s)),
            Op::AdjunctToPartial(a, b) => {
                for &h in slice(&self.hosts, a, b) {
                    let partial = state::partial_now(p.state(h));
                    let recorded = p.state(h) & state::NO_OUTCOME == 0 || p.current(h);
                    if (v == Tri::True && partial) || (v == Tri::False && recorded) {
                        out.push(Atom::Step(h));
                    }
                }
            }
            Op::Not(c) => todo.push(c),
            Op::All(a, b) => list(slice(&self.args, a, b), Tri::True),
            Op::All2(x, y) => list(&[x, y], Tri::True),
            Op::Any(a, b) => list(slice(&self.args, a, b), Tri::False),
            Op::Any2(x, y) => list(&[x, y], Tri::False),
            Op::Excluded(a, b) => {
                if v != Tri::False {
                    for &c in slice(&self.args, a, b).iter().rev() {
                        if node(c) == v {
                            todo.push(c);
                        }
                    }
                }
            }
            Op::ByOutcome {
                step,
                set,
                excluded,
            } => {
                out.push(Atom::Step(step));
                if p.state(step) & set == 0 {
                    todo.push(excluded);
                }
            }
            Op::Fired { from, on, excluded } => {
                out.push(Atom::Step(from));
                let decided = p.state(from) & on != 0;
                if let (false, Some(x)) = (decided, excluded) {
                    todo.push(x);
                }
            }
            Op::Controls { step, excluded } => {
                if state::effective_now(p.state(step)) {
                    out.push(Atom::Step(step));
                    todo.push(excluded);
                }
            }
            Op::Controlled(a, b) => {
                todo.extend(slice(&self.args, a, b).iter().rev());
            }
        }
    }
}

/// The atoms found behind each node so far in one evaluation (see [`Circuit::explain_memo`]).
#[derive(Debug, Clone, Default)]
pub(crate) struct AtomMemo {
    /// Per node, its atoms' range in `store`, once found.
    at: Vec<Option<(u32, u32)>>,
    store: Vec<Atom>,
    stack: Vec<(NodeId, bool)>,
    own: Vec<Atom>,
    kids: Vec<NodeId>,
}

/// Which nodes one explanation has visited, kept between explanations so that starting a new
/// one costs nothing (a node counts as visited when it carries the current stamp).
#[derive(Debug, Clone, Default)]
pub(crate) struct Visits {
    stamps: Vec<u32>,
    stamp: u32,
    todo: Vec<NodeId>,
}

impl Visits {
    /// Starts an explanation over a circuit of `nodes` nodes.
    fn start(&mut self, nodes: usize) {
        self.todo.clear();
        if self.stamps.len() != nodes || self.stamp == u32::MAX {
            self.stamps.clear();
            self.stamps.resize(nodes, 0);
            self.stamp = 0;
        }
        self.stamp += 1;
    }

    /// Whether this is the first visit of `n` in the current explanation.
    fn first(&mut self, n: NodeId) -> bool {
        match self.stamps.get_mut(n as usize) {
            Some(s) if *s != self.stamp => {
                *s = self.stamp;
                true
            }
            _ => false,
        }
    }
}
