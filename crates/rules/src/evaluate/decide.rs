//! One step's decision, by word operations over its plan: its status under R23's precedence,
//! which rules are its decisive and context reasons, and which unknown facts could change it
//! (explained once per node and evaluation, [`MissingMemo`]).

use pathway_core::Status;

use crate::compile::circuit::{Circuit, NodeId};
use crate::compile::plan::{StepPlan, Word};
use crate::evaluate::prepared::{Prepared, Val};
use crate::evaluate::run::{Atom, Visits};
use crate::tri::Tri;

/// Why a reason is listed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum RuleRef {
    Rule(u16),
    Applicability,
    NoIndication,
}

/// One word of a step's listed reasons: which of its (up to) 64 rules decided the status,
/// which are listed as context, and which came out true or unknown.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Listed {
    pub(crate) decisive: u64,
    pub(crate) context: u64,
    pub(crate) t: u64,
    pub(crate) u: u64,
}

/// What explaining needs: the circuit, its values and the profile.
#[derive(Clone, Copy)]
pub(crate) struct Explainer<'a> {
    pub(crate) circuit: &'a Circuit,
    pub(crate) values: &'a [Tri],
    pub(crate) p: &'a Prepared,
}

impl Explainer<'_> {
    /// Adds to the bitset `missing` the unknown facts behind node `n`, found once per node
    /// and evaluation (a condition shared by several steps is explained once).
    pub(crate) fn missing(&self, n: NodeId, memo: &mut MissingMemo, missing: &mut [u64]) {
        // A leaf over one fact: the fact itself, if unknown (explaining would find just it).
        if let Some(f) = self.circuit.fact_of_leaf(n) {
            let v = self.p.val(f);
            // An interval is missing only where it leaves the leaf undecided.
            let undecided = self.values.get(n as usize) == Some(&Tri::Unknown);
            if v == Val::Unknown || (matches!(v, Val::Range(_)) && undecided) {
                set_bit(missing, f);
            }
            return;
        }
        let start = match memo.of.get(n as usize) {
            Some(&start) if start != u32::MAX => start as usize,
            _ => {
                memo.tmp.clear();
                self.circuit
                    .explain_with(n, self.values, self.p, &mut memo.tmp, &mut memo.visits);
                let start = memo.facts.len();
                memo.facts.resize(start + missing.len(), 0);
                let set = memo.facts.get_mut(start..).unwrap_or(&mut []);
                for a in &memo.tmp {
                    match *a {
                        Atom::Fact(f) if self.p.val(f).uncertain() => set_bit(set, f),
                        Atom::Med(m) if self.p.medication(m) == Tri::Unknown => {
                            set_bit(set, self.p.fact_count + m);
                        }
                        _ => {}
                    }
                }
                if let Some(slot) = memo.of.get_mut(n as usize) {
                    *slot = u32::try_from(start).unwrap_or(u32::MAX);
                    memo.explained.push(n);
                }
                start
            }
        };
        let set = memo.facts.get(start..).unwrap_or(&[]);
        for (m, s) in missing.iter_mut().zip(set) {
            *m |= s;
        }
    }
}

/// Sets bit `f` of a bitset of one or more words.
pub(crate) fn set_bit(set: &mut [u64], f: u16) {
    if let Some(w) = set.get_mut(usize::from(f / 64)) {
        *w |= 1 << (f % 64);
    }
}

/// The unknown facts behind each node explained so far in one evaluation, as bitsets.
#[derive(Debug, Clone, Default)]
pub(crate) struct MissingMemo {
    /// Per node, where its bitset starts in `facts`; `u32::MAX` when not explained yet.
    pub(crate) of: Vec<u32>,
    /// The nodes explained.
    pub(crate) explained: Vec<NodeId>,
    pub(crate) facts: Vec<u64>,
    pub(crate) tmp: Vec<Atom>,
    pub(crate) visits: Visits,
}

impl MissingMemo {
    /// Forgets every node explained, touching only those (the rest are unset already).
    pub(crate) fn reset(&mut self, nodes: usize) {
        if self.of.len() == nodes {
            for &n in &self.explained {
                if let Some(slot) = self.of.get_mut(n as usize) {
                    *slot = u32::MAX;
                }
            }
        } else {
            self.of.clear();
            self.of.resize(nodes, u32::MAX);
        }
        self.explained.clear();
        self.facts.clear();
    }
}

pub(crate) static EMPTY_PLAN: StepPlan = StepPlan {
    rules: Vec::new(),
    nodes: Vec::new(),
    words: Vec::new(),
};

/// What a step's rules add up to.
#[derive(Debug, Default)]
pub(crate) struct Flags {
    excluded: bool,
    continuing: bool,
    has_gate: bool,
    gates_shut: bool,
    gate_false: bool,
    offer: bool,
    caution: bool,
    /// A caution rule's condition is true (not only possibly).
    caution_true: bool,
    /// Some offer rule's condition is true or unknown.
    offer_possible: bool,
    /// Some continue rule's condition is true or unknown.
    continue_possible: bool,
}

impl Flags {
    /// The flags of a step from its plan and the bits of its true and unknown rules.
    #[inline(always)]
    fn of(words: &[Word], bits: &[(u64, u64)]) -> Flags {
        let (mut ex, mut co, mut ga, mut gs, mut gf, mut of, mut ca) = (0, 0, 0, 0, 0, 0, 0);
        let (mut ct, mut op, mut cp) = (0, 0, 0);
        for (m, &(t, u)) in words.iter().zip(bits) {
            ex |= m.exclude & t;
            co |= m.continues & t;
            ga |= m.gate;
            gs |= m.gate & !t;
            gf |= m.gate & !(t | u);
            of |= m.offer & t;
            ca |= (m.caution & t) | (m.caution_if_unknown & u);
            ct |= m.caution & t;
            op |= m.offer & (t | u);
            cp |= m.continues & (t | u);
        }
        Flags {
            excluded: ex != 0,
            continuing: co != 0,
            has_gate: ga != 0,
            gates_shut: gs != 0,
            gate_false: gf != 0,
            offer: of != 0,
            caution: ca != 0,
            caution_true: ct != 0,
            offer_possible: op != 0,
            continue_possible: cp != 0,
        }
    }

    /// Whether some values of the unknown facts would open every gate (or, with no gate, make
    /// an offer rule true).
    fn indicable(&self) -> bool {
        !self.gate_false && (self.has_gate || self.offer_possible)
    }

    /// For a step that is `not-yet`: whether some values of the unknown facts would have it
    /// offered or continued now.
    fn may_leave_not_yet(&self) -> bool {
        self.indicable() || self.continue_possible
    }

    /// Whether some values of the unknown facts would have the step offered, cautioned or
    /// continued now (a true exclusion or a gate that is shut for sure rule that out).
    pub(crate) fn may_be_given(&self) -> bool {
        match self.status() {
            Status::Excluded => false,
            Status::NotYet => self.may_leave_not_yet(),
            _ => true,
        }
    }

    /// R23: excluded > continue > not-yet > caution > offer.
    fn status(&self) -> Status {
        let indicated = !self.gates_shut && (self.has_gate || self.offer);
        if self.excluded {
            Status::Excluded
        } else if self.continuing {
            Status::Continue
        } else if !indicated {
            Status::NotYet
        } else if self.caution {
            Status::Caution
        } else {
            Status::Offer
        }
    }
}

/// For one word of a step's plan: which rules decide the status, which are listed as reasons
/// (decisive or context), and which have unknown conditions whose facts could change it.
#[inline(always)]
pub(crate) fn roles(
    m: &Word,
    t: u64,
    u: u64,
    status: Status,
    current: bool,
    flags: &Flags,
) -> (u64, u64, u64) {
    let all = |b: bool| if b { u64::MAX } else { 0 };
    let decisive = match status {
        Status::Excluded => m.exclude & t,
        Status::Continue => m.continues & t,
        Status::NotYet => m.gate & !t,
        Status::Caution => (m.caution & t) | (m.caution_if_unknown & u),
        Status::Offer => (m.gate | m.offer) & t,
    };
    let offered = status.is_offered();
    let shown = decisive
        | (m.note & t & all(offered || current))
        | (m.caution & (t | u))
        | (m.exclude & u)
        | ((m.gate | m.offer) & t & all(offered));
    // A rule whose condition came out false matters only if it is a gate.
    let fired = t | u | m.gate;
    let listed = shown & fired & !(u & m.silent_if_unknown);
    (
        decisive & listed,
        listed,
        u & could_matter(m, status, flags),
    )
}

/// R24, made precise: the unknown rules whose facts could change what the step's status says
/// now. A fact is missing when, for some values of the step's other unknown facts, its own
/// value moves the status between continue, offer, caution and not offered now (`not-yet` and
/// `excluded` are one outcome here: neither is offered, so a question that could only move one
/// to the other changes nothing). True and false rules stay so whatever an unknown fact turns
/// out to be, so only unknown rules are weighed.
#[inline(always)]
pub(crate) fn could_matter(m: &Word, status: Status, flags: &Flags) -> u64 {
    let all = |b: bool| if b { u64::MAX } else { 0 };
    // A recorded caution keeps the step at caution whatever an unknown one turns out to be.
    let cautions = m.caution & all(!flags.caution_true);
    match status {
        Status::Excluded => 0,
        // C4: only an exclusion overrides a continuing step.
        Status::Continue => m.exclude,
        // R12: an open question behind a gate that is shut anyway changes nothing, and
        // neither does a possible exclusion of a step that cannot be offered now.
        Status::NotYet => {
            m.continues
                | (m.exclude & all(flags.may_leave_not_yet()))
                | ((m.gate | m.offer | cautions) & all(flags.indicable()))
        }
        Status::Caution => m.exclude | m.continues | cautions,
        Status::Offer => m.exclude | m.continues | m.caution,
    }
}

/// What a step's decision reads: the explainer, the step's plan and whether it is current.
#[derive(Clone, Copy)]
pub(crate) struct StepIn<'a> {
    pub(crate) ex: Explainer<'a>,
    pub(crate) plan: &'a StepPlan,
    pub(crate) current: bool,
}

/// Where a step's decision writes: its listed reasons and missing facts (and the memo of the
/// latter).
pub(crate) struct Sink<'a> {
    pub(crate) memo: &'a mut MissingMemo,
    pub(crate) listed: &'a mut Vec<Listed>,
    pub(crate) missing: &'a mut [u64],
}

/// The status of one step, with the reasons behind it (decisive first, then context, each in
/// plan order: by effect, then rule id) and its missing facts; the reason that is no rule, if
/// any.
pub(crate) fn decide(
    input: &StepIn<'_>,
    bits: &mut Vec<(u64, u64)>,
    out: &mut Sink<'_>,
) -> (Status, Option<(RuleRef, Tri)>) {
    let plan = input.plan;
    let values = input.ex.values;
    // Nearly every step has at most 64 rules: a copy of the code for one word, with its
    // loops unrolled away and its bits in registers.
    if let [w] = plan.words.as_slice() {
        let b = plan.one_word(values);
        return decide_words(
            input,
            std::slice::from_ref(w),
            std::slice::from_ref(&b),
            out,
        );
    }
    plan.values(values, bits);
    decide_words(input, &plan.words, bits, out)
}

/// The flags of a step's rules, without listing anything.
pub(crate) fn step_flags(plan: &StepPlan, values: &[Tri], bits: &mut Vec<(u64, u64)>) -> Flags {
    if let [w] = plan.words.as_slice() {
        let b = plan.one_word(values);
        return Flags::of(std::slice::from_ref(w), std::slice::from_ref(&b));
    }
    plan.values(values, bits);
    Flags::of(&plan.words, bits)
}

#[inline(always)]
pub(crate) fn decide_words(
    input: &StepIn<'_>,
    words: &[Word],
    bits: &[(u64, u64)],
    out: &mut Sink<'_>,
) -> (Status, Option<(RuleRef, Tri)>) {
    let StepIn { ex, plan, current } = *input;
    let flags = Flags::of(words, bits);
    let status = flags.status();
    let mut any_decisive = 0;
    for (w, (m, &(t, u))) in words.iter().zip(bits).enumerate() {
        let (decisive, listed, unknown) = roles(m, t, u, status, current, &flags);
        for i in ones(unknown) {
            if let Some(&node) = plan.nodes.get(w * 64 + i) {
                ex.missing(node, out.memo, out.missing);
            }
        }
        any_decisive |= decisive;
        out.listed.push(Listed {
            decisive,
            context: listed & !decisive,
            t,
            u,
        });
    }
    let fixed = (status == Status::NotYet && any_decisive == 0)
        .then_some((RuleRef::NoIndication, Tri::False));
    (status, fixed)
}

/// The index of every set bit, lowest first.
pub(crate) fn ones(mut set: u64) -> impl Iterator<Item = usize> {
    std::iter::from_fn(move || {
        (set != 0).then(|| {
            let i = set.trailing_zeros() as usize;
            set &= set - 1;
            i
        })
    })
}
