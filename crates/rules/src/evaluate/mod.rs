//! Evaluation: one profile against a compiled rule set. Pure: no I/O, no clock.
//!
//! Three layers, so that the hot path allocates nothing:
//! 1. [`RuleSet::prepare`] checks a [`Profile`] against the catalogue and indexes it
//!    ([`Prepared`]);
//! 2. [`RuleSet::evaluate_into`] fills a reusable [`Evaluation`] with every step's status,
//!    the rules behind it, the facts they read and the missing facts, as indices;
//! 3. [`Evaluation::to_recommendation`] (or [`RuleSet::evaluate`], which does all three)
//!    builds the readable, serialisable [`Recommendation`].
//!
//! Files, lowest first: `prepared.rs` (the indexed profile), `run.rs` (running and explaining
//! the circuit), `profile.rs` (preparing a profile), `decide.rs` (one step's status, reasons
//! and missing facts); this one holds [`Evaluation`], its views and the [`Recommendation`].

mod decide;
mod prepared;
mod profile;
mod run;

use std::sync::Arc;

use pathway_core::{Date, Profile, Status, Step};

use crate::compile::circuit::NodeId;
use crate::error::ProfileError;
use crate::evaluate::decide::{
    EMPTY_PLAN, Explainer, Listed, MissingMemo, RuleRef, Sink, StepIn, decide, ones, step_flags,
};
pub use crate::evaluate::prepared::Prepared;
use crate::evaluate::prepared::Val;
use crate::evaluate::run::{Atom, AtomMemo};
use crate::model::{Effect, Rule};
use crate::results::{FactUse, Reason, Recommendation, StepResult};
use crate::ruleset::RuleSet;
use crate::tri::Tri;

#[derive(Debug, Clone, Copy)]
struct ReasonEval {
    rule: RuleRef,
    decisive: bool,
    condition: Tri,
    /// Where the condition is: the step and the rule's place in the step's plan.
    step: u16,
    at: u16,
}

#[derive(Debug, Clone, Copy)]
struct StepEval {
    status: Status,
    current: bool,
    /// A reason that is no rule of the step's plan (applicability, no indication), listed
    /// after the decisive rules and before the context.
    fixed: Option<(RuleRef, Tri)>,
    /// Its words in `Evaluation::listed`.
    words: (u32, u32),
}

/// The result of [`RuleSet::evaluate_into`]: every step's status with its reasons, the facts
/// they read and the missing facts, held as bitsets over the rule set's rules and facts. Reuse
/// one across patients: once its buffers have grown, evaluation allocates nothing.
///
/// ```
/// use pathway_core::{Date, Profile, Status};
/// use pathway_rules::{Evaluation, Prepared, RuleSet};
/// let rs = RuleSet::ms_spasticity().unwrap();
/// let p = Profile::new(Date::constant(2026, 11, 22), 45)
///     .with_fact("multiple-sclerosis", true)
///     .with_fact("spasticity", true);
/// let (mut prepared, mut eval) = (Prepared::default(), Evaluation::default());
/// rs.prepare_into(&p, &mut prepared).unwrap();
/// rs.evaluate_into(&prepared, &mut eval);
/// let first = eval.steps(&rs).next().unwrap();
/// assert_eq!((first.step.id.as_str(), first.status), ("trigger-review", Status::Offer));
/// assert_eq!(first.reasons().next().unwrap().rule_id(), "R2.trigger-review");
/// assert_eq!(eval.to_recommendation(&rs, &p), rs.evaluate(&p).unwrap());
/// ```
#[derive(Debug, Clone, Default)]
pub struct Evaluation {
    applicable: bool,
    date: Option<Date>,
    steps: Vec<StepEval>,
    listed: Vec<Listed>,
    /// Per step, `fact_words` words: the bitset of its missing facts.
    missing: Vec<u64>,
    fact_words: usize,
    /// The profile evaluated and the value of every circuit node, kept so that the facts
    /// behind a reason can be found on demand.
    prepared: Prepared,
    nodes: Vec<Tri>,
    // Scratch.
    /// A step's true and unknown rules, per word of its plan.
    bits: Vec<(u64, u64)>,
    memo: MissingMemo,
}

impl RuleSet {
    /// Evaluates a prepared profile into `out`, reusing its buffers.
    pub fn evaluate_into(&self, p: &Prepared, out: &mut Evaluation) {
        let c = &self.compiled;
        let Evaluation {
            applicable,
            date,
            steps,
            listed,
            missing,
            fact_words,
            prepared,
            nodes,
            bits,
            memo,
        } = out;
        let n = self.ladder.len();
        let fw = (self.facts.len() + c.med_ix.len()).div_ceil(64).max(1);
        memo.reset(c.circuit.len());
        steps.clear();
        listed.clear();
        missing.clear();
        missing.resize(n * fw, 0);
        *fact_words = fw;
        prepared.assign(p);
        *date = p.date;
        // The whole circuit in one pass (the step rules' values go unused when the pathway
        // does not apply: rarer, and cheaper than a second pass for every patient).
        c.circuit.run_all(p, nodes);
        let app = nodes
            .get(c.applicability as usize)
            .copied()
            .unwrap_or(Tri::Unknown);
        *applicable = app == Tri::True;
        let ex = Explainer {
            circuit: &c.circuit,
            values: nodes,
            p,
        };
        for (i, set) in (0..n).zip(missing.chunks_exact_mut(fw)) {
            let words_start = listed.len();
            let step = u16::try_from(i).unwrap_or(u16::MAX);
            let current = p.current(step);
            let plan = c.plans.get(i).map_or(&EMPTY_PLAN, |x| x);
            let (status, fixed) = if app != Tri::True {
                // R1 unknown: for a step it could open now, its facts are missing, and so are
                // those the step's own status would turn on once it applies.
                if app == Tri::Unknown && step_flags(plan, nodes, bits).may_be_given() {
                    ex.missing(c.applicability, memo, set);
                    let input = StepIn { ex, plan, current };
                    let mut out = Sink {
                        memo,
                        listed,
                        missing: set,
                    };
                    decide(&input, bits, &mut out);
                    listed.truncate(words_start);
                }
                (Status::NotYet, Some((RuleRef::Applicability, app)))
            } else {
                let input = StepIn { ex, plan, current };
                let mut out = Sink {
                    memo,
                    listed,
                    missing: set,
                };
                decide(&input, bits, &mut out)
            };
            steps.push(StepEval {
                status,
                current,
                fixed,
                words: (
                    u32::try_from(words_start).unwrap_or(u32::MAX),
                    u32::try_from(listed.len()).unwrap_or(u32::MAX),
                ),
            });
        }
    }

    /// Evaluates one patient: a status for every step of the ladder, in ladder order, with
    /// the rules, facts and sources behind each, and the missing facts that could change it.
    ///
    /// Pure: no I/O and no clock (the date is the profile's); the same profile gives the same
    /// result, byte for byte.
    ///
    /// ```
    /// use pathway_core::{Date, Outcome, Profile, Sex, Status, StepRecord};
    /// let rs = pathway_rules::RuleSet::ms_spasticity().unwrap();
    /// let p = Profile::new(Date::constant(2026, 11, 22), 60)
    ///     .with_sex(Sex::Female)
    ///     .with_fact("multiple-sclerosis", true)
    ///     .with_fact("spasticity", true)
    ///     .with_fact("spasticity-distribution", "generalized")
    ///     .with_fact("spasticity-severity", 2)
    ///     .with_fact("functional-impact", true)
    ///     .with_fact("relies-on-tone", false)
    ///     .with_fact("egfr", 90.0)
    ///     .with_step("baclofen", StepRecord::past(Outcome::NotTolerated))
    ///     .with_step("gabapentin", StepRecord::past(Outcome::Ineffective));
    /// let rec = rs.evaluate(&p).unwrap();
    /// // Both first-line drugs are used up, so the second line opens (R8).
    /// assert_eq!(rec.status("tizanidine"), Some(Status::Offer));
    /// assert_eq!(rec.status("baclofen"), Some(Status::Excluded));
    /// let why = &rec.step("tizanidine").unwrap().reasons[0];
    /// assert_eq!(&*why.rule, "R8.second-line");
    /// ```
    pub fn evaluate(&self, profile: &Profile) -> Result<Recommendation, ProfileError> {
        let prepared = self.prepare(profile)?;
        let mut eval = Evaluation::default();
        self.evaluate_into(&prepared, &mut eval);
        Ok(eval.to_recommendation(self, profile))
    }
}

/// A declared assertion that does not hold for an evaluated patient.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Violation<'a> {
    /// The assertion.
    pub assertion: &'a crate::model::Assertion,
    /// The step.
    pub step: &'a str,
    /// The step's status.
    pub status: Status,
    /// How the assertion's condition came out (true, or unknown with an offer or continue).
    pub condition: Tri,
}

impl Evaluation {
    /// The declared assertions of the rule set this evaluation ran on that do not hold: a
    /// true condition with a status the assertion rules out, or an unknown one with `offer`
    /// where the assertion rules that out (unknown gives at most caution; a current step may
    /// continue, C4).
    ///
    /// ```
    /// use pathway_core::{Date, Profile};
    /// use pathway_rules::{Evaluation, RuleSet};
    /// let rs = RuleSet::ms_spasticity().unwrap();
    /// let p = Profile::new(Date::constant(2026, 11, 22), 50).with_fact("multiple-sclerosis", true);
    /// let mut e = Evaluation::default();
    /// rs.evaluate_into(&rs.prepare(&p).unwrap(), &mut e);
    /// assert!(e.violations(&rs).is_empty());
    /// ```
    pub fn violations<'a>(&'a self, rs: &'a RuleSet) -> Vec<Violation<'a>> {
        let mut out = Vec::new();
        if rs.compiled.assert_nodes.is_empty() {
            return out;
        }
        // The assertions' own circuit, over the profile this evaluation kept.
        let mut values = Vec::new();
        rs.compiled
            .assert_circuit
            .run_all(&self.prepared, &mut values);
        for &(a, t, node) in &rs.compiled.assert_nodes {
            let (Some(assertion), Some(step), Some(&value)) = (
                rs.assertions.get(usize::from(a)),
                self.steps.get(usize::from(t)),
                values.get(node as usize),
            ) else {
                continue;
            };
            let id = rs
                .ladder
                .step_at(usize::from(t))
                .map_or("?", |s| s.id.as_str());
            let status = step.status;
            let broken = match value {
                Tri::True => assertion.never.contains(&status),
                // A possible row: at most caution for a step not yet given. A current step
                // keeps `continue` (C4: R21's unknowns do not change continue).
                Tri::Unknown => status == Status::Offer && assertion.never.contains(&status),
                Tri::False => false,
            };
            if broken && self.applicable {
                out.push(Violation {
                    assertion,
                    step: id,
                    status,
                    condition: value,
                });
            }
        }
        out
    }
}

/// One step of an [`Evaluation`], borrowing its texts from the rule set.
#[derive(Debug, Clone, Copy)]
pub struct StepView<'a> {
    /// The step.
    pub step: &'a Step,
    /// Its status.
    pub status: Status,
    /// Whether it is current.
    pub current: bool,
    eval: &'a Evaluation,
    rs: &'a RuleSet,
    /// Its place on the ladder.
    index: u16,
    fixed: Option<(RuleRef, Tri)>,
    words: (u32, u32),
}

/// One reason of a [`StepView`].
#[derive(Debug, Clone, Copy)]
pub struct ReasonView<'a> {
    rs: &'a RuleSet,
    eval: &'a Evaluation,
    r: ReasonEval,
}

const NO_INDICATION_ID: &str = "pathway.no-indication";
const NO_INDICATION_TEXT: &str = "No rule of this rule set indicates this step for this patient.";

impl<'a> ReasonView<'a> {
    fn rule(&self) -> Option<&'a Rule> {
        match self.r.rule {
            RuleRef::Rule(i) => self.rs.rules.get(usize::from(i)),
            RuleRef::Applicability => Some(&self.rs.applicability),
            RuleRef::NoIndication => None,
        }
    }

    /// The rule id.
    pub fn rule_id(&self) -> &'a str {
        self.rule().map_or(NO_INDICATION_ID, |r| &r.id)
    }

    /// The rule's effect.
    pub fn effect(&self) -> Effect {
        match self.r.rule {
            RuleRef::Rule(_) => self.rule().map_or(Effect::Gate, |r| r.effect),
            _ => Effect::Gate,
        }
    }

    /// Whether it decided the status.
    pub fn decisive(&self) -> bool {
        self.r.decisive
    }

    /// How its condition came out.
    pub fn condition(&self) -> Tri {
        self.r.condition
    }

    /// The plain-language text (the rule's `unknown-text` when its condition is unknown).
    pub fn text(&self) -> &'a str {
        match self.rule() {
            Some(r) => match (&r.unknown_text, self.r.condition) {
                (Some(t), Tri::Unknown) => t,
                _ => &r.text,
            },
            None => NO_INDICATION_TEXT,
        }
    }

    /// The facts its condition read (catalogue facts, `age`, `sex`, `step:<id>`,
    /// `medication:<class>`, `hypersensitivity:<step>`), found on demand.
    pub fn facts(&self) -> Vec<String> {
        self.eval
            .atoms_of(self.rs, &self.r)
            .into_iter()
            .map(|a| atom_name(self.rs, a))
            .collect()
    }
}

fn atom_name(rs: &RuleSet, a: Atom) -> String {
    let step_id = |s: u16| {
        rs.ladder
            .step_at(usize::from(s))
            .map_or("?", |s| s.id.as_str())
    };
    match a {
        Atom::Age => "age".to_owned(),
        Atom::Sex => "sex".to_owned(),
        Atom::Fact(f) => rs
            .facts
            .get(usize::from(f))
            .map_or("?", |d| d.id.as_str())
            .to_owned(),
        Atom::Step(s) => format!("step:{}", step_id(s)),
        Atom::Med(m) => format!(
            "medication:{}",
            rs.compiled
                .med_ix
                .iter()
                .find(|(_, i)| **i == m)
                .map_or("?", |(k, _)| k.as_str())
        ),
        Atom::Hyper(s) => format!("hypersensitivity:{}", step_id(s)),
    }
}

impl<'a> StepView<'a> {
    /// The reasons: decisive first, then context and notes.
    pub fn reasons(&self) -> impl Iterator<Item = ReasonView<'a>> + 'a {
        let (rs, eval, step) = (self.rs, self.eval, self.index);
        let words = eval
            .listed
            .get(self.words.0 as usize..self.words.1 as usize)
            .unwrap_or(&[]);
        let of_rules = move |decisive: bool| {
            words.iter().enumerate().flat_map(move |(w, l)| {
                let set = if decisive { l.decisive } else { l.context };
                ones(set).map(move |i| {
                    let bit = 1u64 << i;
                    let at = w * 64 + i;
                    ReasonEval {
                        rule: RuleRef::Rule(plan_rule(rs, step, at)),
                        decisive,
                        condition: if l.t & bit != 0 {
                            Tri::True
                        } else if l.u & bit != 0 {
                            Tri::Unknown
                        } else {
                            Tri::False
                        },
                        step,
                        at: u16::try_from(at).unwrap_or(u16::MAX),
                    }
                })
            })
        };
        let fixed = self.fixed.map(|(rule, condition)| ReasonEval {
            rule,
            decisive: true,
            condition,
            step,
            at: u16::MAX,
        });
        of_rules(true)
            .chain(fixed)
            .chain(of_rules(false))
            .map(move |r| ReasonView { rs, eval, r })
    }

    /// The ids of the facts that are missing and could change the status, in catalogue order.
    pub fn missing(&self) -> impl Iterator<Item = &'a str> + 'a {
        let rs = self.rs;
        let fw = self.eval.fact_words;
        let start = usize::from(self.index) * fw;
        self.eval
            .missing
            .get(start..start + fw)
            .unwrap_or(&[])
            .iter()
            .enumerate()
            .flat_map(|(w, &set)| ones(set).map(move |i| w * 64 + i))
            .filter_map(move |f| {
                rs.facts.get(f).map(|d| d.id.as_str()).or_else(|| {
                    let m = f.checked_sub(rs.facts.len())?;
                    rs.compiled.med_names.get(m).map(String::as_str)
                })
            })
    }
}

/// The rule at place `at` of step `step`'s plan.
fn plan_rule(rs: &RuleSet, step: u16, at: usize) -> u16 {
    rs.compiled
        .plans
        .get(usize::from(step))
        .and_then(|p| p.rules.get(at))
        .copied()
        .unwrap_or(u16::MAX)
}

impl Evaluation {
    /// Whether the pathway applies (R1).
    pub fn applicable(&self) -> bool {
        self.applicable
    }

    /// The statuses, in ladder order.
    pub fn statuses(&self) -> impl Iterator<Item = Status> + '_ {
        self.steps.iter().map(|s| s.status)
    }

    /// The steps with their reasons, borrowing texts from `rs` (the rule set that evaluated).
    pub fn steps<'a>(&'a self, rs: &'a RuleSet) -> impl Iterator<Item = StepView<'a>> + 'a {
        rs.ladder
            .steps()
            .zip(&self.steps)
            .enumerate()
            .map(move |(i, (step, s))| StepView {
                step,
                status: s.status,
                current: s.current,
                eval: self,
                rs,
                index: u16::try_from(i).unwrap_or(u16::MAX),
                fixed: s.fixed,
                words: s.words,
            })
    }

    /// The atoms behind a reason, computed from the kept profile and memo.
    fn atoms_of(&self, rs: &RuleSet, r: &ReasonEval) -> Vec<Atom> {
        let Some(node) = Self::node_of(rs, r) else {
            return Vec::new();
        };
        let mut atoms = Vec::new();
        rs.compiled
            .circuit
            .explain(node, &self.nodes, &self.prepared, &mut atoms);
        atoms.sort_unstable();
        atoms.dedup();
        atoms
    }

    /// As [`Evaluation::atoms_of`], sharing what was found at each node with the other reasons
    /// of this evaluation.
    fn atoms_memo(&self, rs: &RuleSet, r: &ReasonEval, memo: &mut AtomMemo) -> Vec<Atom> {
        match Self::node_of(rs, r) {
            Some(node) => rs
                .compiled
                .circuit
                .explain_memo(node, &self.nodes, &self.prepared, memo)
                .to_vec(),
            None => Vec::new(),
        }
    }

    /// The circuit node of a reason's condition.
    fn node_of(rs: &RuleSet, r: &ReasonEval) -> Option<NodeId> {
        let c = &rs.compiled;
        match r.rule {
            RuleRef::Applicability => Some(c.applicability),
            RuleRef::NoIndication => None,
            RuleRef::Rule(_) => c
                .plans
                .get(usize::from(r.step))
                .and_then(|plan| plan.nodes.get(usize::from(r.at)))
                .copied(),
        }
    }

    fn describe(&self, rs: &RuleSet, profile: &Profile, a: Atom) -> FactUse {
        let fact = atom_name(rs, a);
        let value = match a {
            Atom::Age => profile.age.to_string(),
            Atom::Sex => profile.sex.as_str().to_owned(),
            Atom::Fact(f) => match profile.facts.get(&fact) {
                Some(v) => v.to_string(),
                None => match self.prepared.val(f) {
                    Val::Bool(false) => "not recorded (false)".to_owned(),
                    _ => "not recorded".to_owned(),
                },
            },
            Atom::Step(s) => {
                let id = rs
                    .ladder
                    .step_at(usize::from(s))
                    .map_or("?", |s| s.id.as_str());
                match profile.steps.get(id) {
                    None => "never tried".to_owned(),
                    Some(r) => match (r.current, r.outcome) {
                        (true, Some(o)) => format!("current, {o}"),
                        (true, None) => "current, no outcome yet (partial)".to_owned(),
                        (false, Some(o)) => o.to_string(),
                        (false, None) => "stopped, no outcome".to_owned(),
                    },
                }
            }
            Atom::Med(m) => match self.prepared.medication(m) {
                Tri::True => "current",
                Tri::Unknown => "possibly current (status unknown)",
                Tri::False => "none",
            }
            .to_owned(),
            Atom::Hyper(s) => if self.prepared.hypersensitive(s) {
                "recorded"
            } else {
                "none"
            }
            .to_owned(),
        };
        let from = profile.provenance.get(&fact).cloned().unwrap_or_default();
        FactUse { fact, value, from }
    }

    /// The readable, serialisable result; `profile` is the one that was evaluated (it supplies
    /// the values as recorded and their provenance).
    pub fn to_recommendation(&self, rs: &RuleSet, profile: &Profile) -> Recommendation {
        let mut all_missing = std::collections::BTreeSet::new();
        let mut memo = AtomMemo::default();
        let steps = self
            .steps(rs)
            .map(|view| {
                let reasons: Vec<Reason> = view
                    .reasons()
                    .map(|r| Reason {
                        rule: r
                            .rule()
                            .map_or_else(|| Arc::from(NO_INDICATION_ID), |x| x.id.clone()),
                        effect: r.effect(),
                        decisive: r.decisive(),
                        condition: r.condition(),
                        text: match r.rule() {
                            Some(x) => match (&x.unknown_text, r.condition()) {
                                (Some(t), Tri::Unknown) => t.clone(),
                                _ => x.text.clone(),
                            },
                            None => Arc::from(NO_INDICATION_TEXT),
                        },
                        sources: r.rule().map_or_else(Vec::new, |x| x.sources.clone()),
                        facts: self
                            .atoms_memo(rs, &r.r, &mut memo)
                            .into_iter()
                            .map(|a| self.describe(rs, profile, a))
                            .collect(),
                    })
                    .collect();
                let missing: Vec<String> = view.missing().map(str::to_owned).collect();
                all_missing.extend(missing.iter().cloned());
                let mut sources: Vec<Arc<str>> = reasons
                    .iter()
                    .flat_map(|r| r.sources.iter().cloned())
                    .collect();
                sources.sort_unstable();
                sources.dedup();
                StepResult {
                    step: view.step.id.clone(),
                    name: view.step.name.clone(),
                    tier: view.step.tier,
                    status: view.status,
                    current: view.current,
                    rules: reasons.iter().map(|r| r.rule.clone()).collect(),
                    reasons,
                    sources,
                    missing,
                }
            })
            .collect();
        Recommendation {
            ruleset: rs.stamp().clone(),
            date: self.date.unwrap_or(profile.date),
            applicable: self.applicable,
            steps,
            missing: all_missing.into_iter().collect(),
            warnings: Vec::new(),
            unrecognized: Vec::new(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use pathway_core::Date;

    /// The memoised explanation finds, at every node, what a walk from that node finds.
    #[test]
    fn memoised_explanation_equals_the_walk_at_every_node() {
        let rs = RuleSet::ms_spasticity().unwrap();
        let circuit = &rs.compiled.circuit;
        for p in crate::PatientGenerator::new(&rs, 5).take(200) {
            let mut e = Evaluation::default();
            rs.evaluate_into(&rs.prepare(&p).unwrap(), &mut e);
            let mut memo = AtomMemo::default();
            // Nodes in an order that reaches shared ones both first and later.
            for n in (0..circuit.len()).rev().chain(0..circuit.len()) {
                let n = NodeId::try_from(n).unwrap();
                let mut walk = Vec::new();
                circuit.explain(n, &e.nodes, &e.prepared, &mut walk);
                walk.sort_unstable();
                walk.dedup();
                let memoised = circuit.explain_memo(n, &e.nodes, &e.prepared, &mut memo);
                assert_eq!(memoised, walk.as_slice(), "node {n}");
            }
        }
    }

    #[test]
    fn bits_are_listed_lowest_first() {
        assert_eq!(ones(0).count(), 0);
        assert_eq!(ones(0b1010_0001).collect::<Vec<_>>(), [0, 5, 7]);
        assert_eq!(ones(1 << 63).collect::<Vec<_>>(), [63]);
    }

    /// Missing facts are a bitset of one or more words per step: a fact past the 64th is
    /// found, listed once and in catalogue order.
    #[test]
    fn missing_facts_past_the_first_word_are_listed_in_catalogue_order() {
        let mut text = crate::MS_SPASTICITY_TOML.to_owned();
        for i in 0..70 {
            text.push_str(&format!(
                "\n[facts.extra-{i:02}]\ntype = \"bool\"\ntext = \"Extra fact {i}\"\n"
            ));
        }
        text.push_str(
            "\n[[rule]]\nid = \"X1\"\nsteps = [\"massage\"]\neffect = \"caution\"\n\
             when = \"extra-69 or extra-68 or extra-00\"\ntext = \"Extra.\"\nsource = [\"CK\"]\n\
             \n[[rule]]\nid = \"X2\"\nsteps = [\"massage\"]\neffect = \"caution\"\n\
             when = \"extra-69 and true\"\ntext = \"Extra.\"\nsource = [\"CK\"]\n",
        );
        let rs = RuleSet::from_toml("extra.toml", &text).unwrap();
        assert!(rs.facts.len() > 64 + 38);
        let p = Profile::new(Date::constant(2026, 11, 22), 50)
            .with_fact("multiple-sclerosis", true)
            .with_fact("spasticity", true);
        let (prepared, mut eval) = (rs.prepare(&p).unwrap(), Evaluation::default());
        rs.evaluate_into(&prepared, &mut eval);
        let massage = eval
            .steps(&rs)
            .find(|s| s.step.id.as_str() == "massage")
            .unwrap();
        let missing: Vec<&str> = massage.missing().collect();
        let extra: Vec<&str> = missing
            .iter()
            .copied()
            .filter(|m| m.starts_with("extra-"))
            .collect();
        assert_eq!(extra, ["extra-00", "extra-68", "extra-69"]);
        let ix = |id: &str| rs.facts.iter().position(|f| f.id == id).unwrap();
        assert!(ix("extra-69") >= 64);
        assert!(
            missing.windows(2).all(|w| ix(w[0]) < ix(w[1])),
            "{missing:?}"
        );
        let rec = eval.to_recommendation(&rs, &p);
        assert_eq!(rec, rs.evaluate(&p).unwrap());
        assert!(rec.missing.contains(&"extra-69".to_owned()));
    }
}
