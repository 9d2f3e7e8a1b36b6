//! Per step, its rules laid out for evaluation: in the order their reasons are listed, with one
//! bitset per effect and unknown policy, so that a step's status, its decisive and context
//! reasons and the rules whose missing facts matter are a few word operations.
//!
//! Bit `i` of every set is the step's `i`-th rule in listing order (effect rank, then rule id),
//! 64 rules to a [`Word`]. Walking set bits from low to high therefore lists reasons in order
//! without sorting.

use crate::compile::circuit::NodeId;
use crate::model::{Effect, IfUnknown};
use crate::tri::Tri;

/// One rule of a step, as the compiler hands it over.
#[derive(Debug, Clone, Copy)]
pub(crate) struct PlanRule {
    /// Index in the rule set's rules.
    pub rule: u16,
    pub effect: Effect,
    pub policy: IfUnknown,
    /// The condition, compiled for this step.
    pub node: NodeId,
}

/// Which of 64 rules have which effect and policy.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Word {
    pub exclude: u64,
    pub continues: u64,
    pub gate: u64,
    pub offer: u64,
    pub caution: u64,
    pub note: u64,
    /// Exclusions and cautions whose unknown gives caution (R21).
    pub caution_if_unknown: u64,
    /// Rules whose unknown is not listed as a reason (R21e).
    pub silent_if_unknown: u64,
}

/// A step's rules in listing order.
#[derive(Debug, Clone, Default)]
pub(crate) struct StepPlan {
    /// The rules (indices in the rule set's rules) in listing order.
    pub rules: Vec<u16>,
    /// Their condition nodes, in the same order.
    pub nodes: Vec<NodeId>,
    /// Their effects and policies, 64 rules to a word.
    pub words: Vec<Word>,
}

/// The order of effects among a step's reasons.
fn rank(e: Effect) -> u8 {
    match e {
        Effect::Exclude => 0,
        Effect::Continue => 1,
        Effect::Gate => 2,
        Effect::Caution => 3,
        Effect::Offer => 4,
        Effect::Note => 5,
    }
}

impl StepPlan {
    /// Lays out a step's rules (each rule at most once).
    pub fn new(mut rules: Vec<PlanRule>) -> StepPlan {
        rules.sort_by_key(|r| (rank(r.effect), r.rule));
        let mut words = vec![Word::default(); rules.len().div_ceil(64)];
        for (i, r) in rules.iter().enumerate() {
            let Some(w) = words.get_mut(i / 64) else {
                continue;
            };
            let bit = 1u64 << (i % 64);
            let set = match r.effect {
                Effect::Exclude => &mut w.exclude,
                Effect::Continue => &mut w.continues,
                Effect::Gate => &mut w.gate,
                Effect::Offer => &mut w.offer,
                Effect::Caution => &mut w.caution,
                Effect::Note => &mut w.note,
            };
            *set |= bit;
            if matches!(r.effect, Effect::Caution | Effect::Exclude)
                && r.policy == IfUnknown::Caution
            {
                w.caution_if_unknown |= bit;
            }
            if r.policy == IfUnknown::Ignore {
                w.silent_if_unknown |= bit;
            }
        }
        StepPlan {
            nodes: rules.iter().map(|r| r.node).collect(),
            rules: rules.iter().map(|r| r.rule).collect(),
            words,
        }
    }

    /// Appends to `out`, per word, the bitsets of the rules whose condition is true and of
    /// those whose condition is unknown, reading node values from `values`.
    #[inline]
    pub fn values(&self, values: &[Tri], out: &mut Vec<(u64, u64)>) {
        out.clear();
        out.extend(
            self.nodes
                .chunks(64)
                .map(|chunk| word_values(chunk, values)),
        );
    }

    /// The true and unknown bitsets of a plan of one word (at most 64 rules).
    #[inline]
    pub fn one_word(&self, values: &[Tri]) -> (u64, u64) {
        word_values(self.nodes.get(..64).unwrap_or(&self.nodes), values)
    }
}

/// The true and unknown bitsets of up to 64 rules with condition nodes `chunk`.
#[inline(always)]
fn word_values(chunk: &[NodeId], values: &[Tri]) -> (u64, u64) {
    let (mut t, mut u) = (0u64, 0u64);
    // Last rule first, shifting left: rule i ends at bit i, with no variable shifts.
    for &n in chunk.iter().rev() {
        // False = 0, Unknown = 1, True = 2.
        let v = values.get(n as usize).map_or(1, |&v| v as u64);
        t = (t << 1) | (v >> 1);
        u = (u << 1) | (v & 1);
    }
    (t, u)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(rule: u16, effect: Effect, policy: IfUnknown) -> PlanRule {
        PlanRule {
            rule,
            effect,
            policy,
            node: u32::from(rule),
        }
    }

    #[test]
    fn rules_are_laid_out_by_effect_then_rule_id() {
        let plan = StepPlan::new(vec![
            rule(7, Effect::Offer, IfUnknown::NoEffect),
            rule(3, Effect::Caution, IfUnknown::Ignore),
            rule(9, Effect::Exclude, IfUnknown::Caution),
            rule(1, Effect::Offer, IfUnknown::NoEffect),
        ]);
        assert_eq!(plan.rules, [9, 3, 1, 7]);
        assert_eq!(plan.nodes, [9, 3, 1, 7]);
        let w = plan.words[0];
        assert_eq!((w.exclude, w.caution, w.offer), (0b0001, 0b0010, 0b1100));
        assert_eq!(
            (w.caution_if_unknown, w.silent_if_unknown),
            (0b0001, 0b0010)
        );
    }

    #[test]
    fn values_become_true_and_unknown_bits_64_to_a_word() {
        let rules: Vec<PlanRule> = (0..70)
            .map(|i| rule(i, Effect::Offer, IfUnknown::NoEffect))
            .collect();
        let plan = StepPlan::new(rules);
        let values: Vec<Tri> = (0..70)
            .map(|i| [Tri::False, Tri::Unknown, Tri::True][i % 3])
            .collect();
        let mut out = Vec::new();
        plan.values(&values, &mut out);
        assert_eq!(out.len(), 2);
        for i in 0..70 {
            let (t, u) = out[i / 64];
            let bit = 1u64 << (i % 64);
            assert_eq!(t & bit != 0, values[i] == Tri::True, "rule {i}");
            assert_eq!(u & bit != 0, values[i] == Tri::Unknown, "rule {i}");
        }
    }
}
