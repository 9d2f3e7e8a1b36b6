//! The compiler: a parsed rule-set file ([`Document`]) becomes the parts of a
//! [`RuleSet`](crate::RuleSet), or every problem found, at once, located in the file.
//!
//! It runs in phases, each reporting what it finds and handing the next what it built:
//! the catalogue (ladder, facts, the names conditions resolve against), derived facts,
//! absent policies, applicability, rules, declared assertions; then, only if nothing was
//! wrong, the circuits and per-step plans. Each condition text is parsed once, then
//! resolved for every step it covers.

use std::collections::{BTreeMap, BTreeSet};
use std::ops::Range;
use std::sync::Arc;

use pathway_core::{EdgeKind, Ladder, LadderError, Step, StepId, Transition};
use rustc_hash::FxHashMap;
use toml::Spanned;

use crate::compile::circuit::{Builder, Circuit, Graph, NodeId};
use crate::compile::cond::{Cond, reserved};
use crate::compile::graph::{Chain, DerivedInfo, GraphIndex, MAX_DERIVED_LEVELS, Reads};
use crate::compile::names::{Names, natural_key, valid_name, valid_rule_id};
use crate::compile::plan::{PlanRule, StepPlan};
use crate::error::{Diagnostic, ErrorKind};
use crate::language::expr;
use crate::language::file::{Document, EffectDoc, FactType, RuleDoc, SourceDoc, UnknownDoc};
use crate::model::{
    Absent, Assertion, Derived, Effect, FactDef, FactKind, IfUnknown, Rule, Source,
};

/// Compiles a parsed rule-set file; `text` is the file's text, to locate problems inside
/// strings.
pub(crate) fn compile(text: &str, doc: &Document) -> Result<Parts, Vec<Diagnostic>> {
    Compiler::new(text).compile(doc)
}

/// What the compiler builds: everything of a [`RuleSet`](crate::RuleSet) but the file itself
/// and what is found on demand (stamp, lint warnings).
#[derive(Debug)]
pub(crate) struct Parts {
    pub title: String,
    pub tier_names: Vec<String>,
    pub ladder: Ladder,
    pub sources: BTreeMap<String, Source>,
    pub facts: Vec<FactDef>,
    pub medications: BTreeMap<String, String>,
    pub derived: Vec<Derived>,
    pub applicability: Rule,
    pub rules: Vec<Rule>,
    pub assertions: Vec<Assertion>,
    pub compiled: Compiled,
}

/// Everything evaluation needs, indexed.
#[derive(Debug, Clone)]
pub(crate) struct Compiled {
    /// Fact id to index (hashed: looked up for every fact of every patient).
    pub fact_ix: FxHashMap<String, u16>,
    pub med_ix: BTreeMap<String, u16>,
    /// By class index, how a missing class is listed (`medication:opioid`).
    pub med_names: Vec<String>,
    /// Derived facts' conditions (for lint; evaluation reads the circuit).
    pub derived: Vec<Cond>,
    /// Per step (ladder order): (rule index, condition compiled for that step), for lint.
    pub step_rules: Vec<Vec<(u16, Cond)>>,
    /// Every condition as one circuit. Its first `absent_end` nodes are the facts' absent
    /// policies (they read only settled facts), so preparing a profile can run them alone.
    pub circuit: Circuit,
    pub absent_end: usize,
    /// Per fact, the node of its `absent-unknown-when` condition.
    pub absent_when: Vec<Option<NodeId>>,
    pub applicability: NodeId,
    /// Per declared assertion and step: `(assertion, step, node of its condition)` in
    /// `assert_circuit`, which only checking assertions runs.
    pub assert_nodes: Vec<(u16, u16, NodeId)>,
    pub assert_circuit: Circuit,
    /// Per step (ladder order), its rules laid out for evaluation.
    pub plans: Vec<StepPlan>,
}

struct Compiler<'t> {
    text: &'t str,
    diags: Vec<Diagnostic>,
    /// Each condition text parsed once (a rule's condition is resolved once per step it
    /// covers, and many rules share a condition).
    parsed: FxHashMap<String, Result<expr::Ast, expr::SyntaxError>>,
}

impl<'t> Compiler<'t> {
    fn new(text: &'t str) -> Self {
        Compiler {
            text,
            diags: Vec::new(),
            parsed: FxHashMap::default(),
        }
    }

    fn push(&mut self, d: Diagnostic) {
        self.diags.push(d);
    }

    /// The byte range, in the file, of `inner` within a string value.
    fn inner_span(&self, value: &Spanned<String>, inner: Range<usize>) -> Range<usize> {
        let start = value.span().start;
        let rest = self.text.get(start..).unwrap_or_default();
        let mut open = if rest.starts_with("\"\"\"") || rest.starts_with("'''") {
            3
        } else {
            1
        };
        if open == 3 && rest.get(3..).is_some_and(|r| r.starts_with('\n')) {
            open += 1;
        }
        (start + open + inner.start)..(start + open + inner.end)
    }

    /// Parses and resolves a condition; reports and returns `None` on error.
    fn condition(
        &mut self,
        names: &Names,
        src: &Spanned<String>,
        step: Option<u16>,
        owner: &str,
        field: &str,
    ) -> Option<Cond> {
        let text = src.get_ref();
        if !self.parsed.contains_key(text.as_str()) {
            self.parsed.insert(text.clone(), expr::parse(text));
        }
        let ast = match self.parsed.get(text.as_str())? {
            Ok(a) => a,
            Err(e) => {
                // Reported once for each place the text is written.
                let d = Diagnostic::new(ErrorKind::Condition, e.message.clone())
                    .rule(owner)
                    .field(field)
                    .at(self.inner_span(src, e.span.clone()));
                if !self.diags.contains(&d) {
                    self.push(d);
                }
                return None;
            }
        };
        let resolved = names.resolve(ast, step);
        match resolved {
            Ok(c) => Some(c),
            Err(e) => {
                let span = self.inner_span(src, e.span);
                let hint = names.did_you_mean(e.kind, &e.message);
                let d = Diagnostic::new(e.kind, format!("{}{hint}", e.message))
                    .rule(owner)
                    .field(field)
                    .at(span);
                if !self.diags.contains(&d) {
                    self.push(d);
                }
                None
            }
        }
    }

    fn check_sources(
        &mut self,
        doc_sources: &BTreeMap<String, SourceDoc>,
        owner: &Spanned<String>,
        keys: &[Spanned<String>],
    ) {
        if keys.is_empty() {
            self.push(
                Diagnostic::new(
                    ErrorKind::MissingSource,
                    format!(
                        "`{}` cites no source; every rule needs `source = [..]`",
                        owner.get_ref()
                    ),
                )
                .rule(owner.get_ref())
                .field("source")
                .at(owner.span()),
            );
        }
        for k in keys {
            if !doc_sources.contains_key(k.get_ref()) {
                self.push(
                    Diagnostic::new(
                        ErrorKind::UnknownSource,
                        format!("source `{}` is not declared under [sources]", k.get_ref()),
                    )
                    .rule(owner.get_ref())
                    .field("source")
                    .at(k.span()),
                );
            }
        }
    }

    fn ladder(&mut self, doc: &Document) -> Option<Ladder> {
        let mut b = Ladder::builder();
        for s in &doc.steps {
            if !valid_name(s.id.get_ref()) {
                self.push(
                    Diagnostic::new(
                        ErrorKind::Syntax,
                        format!(
                            "step id `{}` must be lower-case words joined by `-`",
                            s.id.get_ref()
                        ),
                    )
                    .field("id")
                    .at(s.id.span()),
                );
            }
            b = b.step(Step {
                id: StepId::from(s.id.get_ref().as_str()),
                tier: s.tier,
                kind: s.kind,
                name: s.name.clone(),
                codes: s.codes.clone(),
            });
            if s.entry {
                b = b.entry(s.id.get_ref());
            }
        }
        for e in &doc.edges {
            let t = match e.kind {
                EdgeKind::Escalation => {
                    Transition::escalation(e.on.iter().copied().collect(), e.or_excluded)
                }
                k => {
                    if !e.on.is_empty() || e.or_excluded {
                        let at = e.from.first().map_or(0..0, Spanned::span);
                        self.push(
                            Diagnostic::new(
                                ErrorKind::InvalidRule,
                                "only escalation edges take `on` and `or-excluded`",
                            )
                            .field("on")
                            .at(at),
                        );
                    }
                    Transition::plain(k)
                }
            };
            for f in &e.from {
                for t2 in &e.to {
                    b = b.edge(f.get_ref(), t2.get_ref(), t);
                }
            }
        }
        match b.build() {
            Ok(l) => Some(l),
            Err(errors) => {
                for e in errors {
                    let span = self.ladder_span(doc, &e);
                    let mut d = Diagnostic::new(
                        if matches!(e, LadderError::UnknownStep { .. }) {
                            ErrorKind::UnknownStep
                        } else if matches!(e, LadderError::DuplicateStep { .. }) {
                            ErrorKind::Duplicate
                        } else {
                            ErrorKind::Ladder
                        },
                        e.to_string(),
                    );
                    if let Some(s) = span {
                        d = d.at(s);
                    }
                    self.push(d);
                }
                None
            }
        }
    }

    fn ladder_span(&self, doc: &Document, e: &LadderError) -> Option<Range<usize>> {
        let edge_with = |from: &str, to: &str| {
            doc.edges
                .iter()
                .find(|e| {
                    e.from.iter().any(|f| f.get_ref() == from)
                        && e.to.iter().any(|t| t.get_ref() == to)
                })
                .and_then(|e| e.from.iter().find(|f| f.get_ref() == from))
                .map(Spanned::span)
        };
        match e {
            LadderError::DuplicateStep { step } => doc
                .steps
                .iter()
                .filter(|s| s.id.get_ref() == step.as_str())
                .nth(1)
                .map(|s| s.id.span()),
            LadderError::UnknownStep { unknown, .. } => doc
                .edges
                .iter()
                .flat_map(|e| e.from.iter().chain(e.to.iter()))
                .find(|s| s.get_ref() == unknown.as_str())
                .map(Spanned::span),
            LadderError::Unreachable { step } => doc
                .steps
                .iter()
                .find(|s| s.id.get_ref() == step.as_str())
                .map(|s| s.id.span()),
            LadderError::TierBackwards { from, to, .. }
            | LadderError::EmptyEscalation { from, to } => edge_with(from.as_str(), to.as_str()),
            LadderError::Cycle { steps } => doc
                .edges
                .iter()
                .filter(|e| e.kind.is_ordering())
                .find_map(|e| {
                    e.from.iter().find(|f| {
                        steps.iter().any(|s| s.as_str() == f.get_ref())
                            && e.to
                                .iter()
                                .any(|t| steps.iter().any(|s| s.as_str() == t.get_ref()))
                    })
                })
                .map(Spanned::span),
            _ => doc.steps.first().map(|s| s.id.span()),
        }
    }

    fn facts(&mut self, doc: &Document) -> Vec<FactDef> {
        let mut out = Vec::new();
        for (id, f) in &doc.facts {
            let at = f.ty.span();
            let bad = |c: &mut Self, msg: String| {
                c.push(
                    Diagnostic::new(ErrorKind::InvalidRule, msg)
                        .rule(id)
                        .at(at.clone()),
                );
            };
            if !valid_name(id) || reserved(id) {
                bad(
                    self,
                    format!(
                        "`{id}` cannot name a fact: use lower-case words joined by `-`, not a built-in name"
                    ),
                );
            }
            if doc.derived.contains_key(id) {
                self.push(
                    Diagnostic::new(
                        ErrorKind::Duplicate,
                        format!("`{id}` is both a fact and a derived fact"),
                    )
                    .rule(id)
                    .at(at.clone()),
                );
            }
            let ty = *f.ty.get_ref();
            if ty != FactType::Code && (!f.values.is_empty() || !f.unknown_values.is_empty()) {
                bad(self, format!("fact `{id}`: only code facts take `values`"));
            }
            if ty != FactType::Number
                && (f.min.is_some() || f.max.is_some() || f.integer || f.unit.is_some())
            {
                bad(
                    self,
                    format!(
                        "fact `{id}`: only number facts take `min`, `max`, `integer` or `unit`"
                    ),
                );
            }
            let kind = match ty {
                FactType::Bool => FactKind::Bool,
                FactType::Number => FactKind::Number {
                    min: f.min,
                    max: f.max,
                    integer: f.integer,
                    unit: f.unit.clone(),
                },
                FactType::Code => {
                    let distinct: BTreeSet<_> = f.values.iter().collect();
                    if f.values.is_empty()
                        || distinct.len() != f.values.len()
                        || f.values.len() > 63
                    {
                        bad(
                            self,
                            format!("fact `{id}`: a code fact needs 1 to 63 distinct `values`"),
                        );
                    }
                    for u in &f.unknown_values {
                        if !f.values.contains(u) {
                            bad(
                                self,
                                format!(
                                    "fact `{id}`: unknown value `{u}` is not one of its `values`"
                                ),
                            );
                        }
                    }
                    FactKind::Code {
                        values: f.values.clone(),
                        unknown_values: f.unknown_values.clone(),
                    }
                }
            };
            let absent = match (&f.absent, &f.absent_unknown_when) {
                (Some(_), Some(_)) => {
                    bad(
                        self,
                        format!("fact `{id}`: give `absent` or `absent-unknown-when`, not both"),
                    );
                    Absent::Unknown
                }
                (None, Some(w)) => {
                    if ty != FactType::Bool {
                        bad(
                            self,
                            format!("fact `{id}`: `absent-unknown-when` is for yes/no facts"),
                        );
                    }
                    Absent::UnknownWhen(w.get_ref().clone())
                }
                (None, None) => Absent::Unknown,
                (Some(a), None) => match (a.get_ref().as_str(), ty) {
                    ("unknown", _) => Absent::Unknown,
                    ("false", FactType::Bool) => Absent::False,
                    (other, _) => {
                        self.push(
                            Diagnostic::new(
                                ErrorKind::InvalidRule,
                                format!("fact `{id}`: `absent` is `unknown` or (for yes/no facts) `false`, not `{other}`"),
                            )
                            .rule(id)
                            .field("absent")
                            .at(a.span()),
                        );
                        Absent::Unknown
                    }
                },
            };
            out.push(FactDef {
                id: id.clone(),
                kind,
                text: f.text.clone(),
                absent,
            });
        }
        out
    }

    /// Checks one rule and compiles its condition for each of its steps.
    fn rule(
        &mut self,
        doc: &Document,
        names: &Names,
        r: &RuleDoc,
        derived_info: &mut DerivedInfo<'_>,
        cyclic: bool,
    ) -> (Rule, Vec<(u16, Cond)>) {
        let id = r.id.get_ref().as_str();
        let mut compiled = Vec::new();
        if r.text.trim().is_empty() {
            self.push(
                Diagnostic::new(
                    ErrorKind::InvalidRule,
                    "the rule has no plain-language `text`",
                )
                .rule(id)
                .field("text")
                .at(r.id.span()),
            );
        }
        self.check_sources(&doc.sources, &r.id, &r.source);
        let effect = match r.effect.get_ref() {
            EffectDoc::Exclude => Effect::Exclude,
            EffectDoc::Continue => Effect::Continue,
            EffectDoc::Gate => Effect::Gate,
            EffectDoc::Caution => Effect::Caution,
            EffectDoc::Offer => Effect::Offer,
            EffectDoc::Note => Effect::Note,
        };
        let (cond_src, field) = match (effect, &r.when, &r.requires) {
            (Effect::Gate, None, Some(q)) => (Some(q), "requires"),
            (Effect::Gate, _, _) => {
                self.push(
                    Diagnostic::new(
                        ErrorKind::InvalidRule,
                        "a gate states what it `requires` (and has no `when`)",
                    )
                    .rule(id)
                    .field("requires")
                    .at(r.effect.span()),
                );
                (None, "requires")
            }
            (_, Some(w), None) => (Some(w), "when"),
            (e, _, _) => {
                self.push(
                    Diagnostic::new(
                        ErrorKind::InvalidRule,
                        format!("a rule with effect `{}` states `when` it applies (and has no `requires`)", e.as_str()),
                    )
                    .rule(id)
                    .field("when")
                    .at(r.effect.span()),
                );
                (None, "when")
            }
        };
        let if_unknown = match (
            effect,
            r.if_unknown.as_ref().map(|u| (*u.get_ref(), u.span())),
        ) {
            (Effect::Gate, None) => IfUnknown::NotYet,
            (Effect::Exclude | Effect::Caution, None | Some((UnknownDoc::Caution, _))) => {
                IfUnknown::Caution
            }
            (Effect::Caution, Some((UnknownDoc::Note, _))) => IfUnknown::Note,
            (Effect::Caution, Some((UnknownDoc::Ignore, _))) => IfUnknown::Ignore,
            (Effect::Offer | Effect::Continue | Effect::Note, None) => IfUnknown::NoEffect,
            (e, Some((_, span))) => {
                self.push(
                    Diagnostic::new(
                        ErrorKind::InvalidRule,
                        format!(
                            "`if-unknown` does not fit effect `{}`: exclusions may only say `caution` (R21: a possible absolute contraindication gives caution); cautions may say `caution`, `note` or `ignore`",
                            e.as_str()
                        ),
                    )
                    .rule(id)
                    .field("if-unknown")
                    .at(span),
                );
                IfUnknown::Caution
            }
        };
        if (if_unknown == IfUnknown::Note) != r.unknown_text.is_some() {
            self.push(
                Diagnostic::new(
                    ErrorKind::InvalidRule,
                    "`unknown-text` goes with `if-unknown = \"note\"`, and that needs it",
                )
                .rule(id)
                .field("unknown-text")
                .at(r.id.span()),
            );
        }
        // The steps the rule applies to, in ladder order.
        let mut targets: BTreeSet<u16> = BTreeSet::new();
        match (r.steps.is_empty(), r.tiers.is_empty()) {
            (true, true) | (false, false) => self.push(
                Diagnostic::new(
                    ErrorKind::InvalidRule,
                    "a rule names its `steps` or its `tiers` (one of the two)",
                )
                .rule(id)
                .field("steps")
                .at(r.id.span()),
            ),
            (false, true) => {
                for s in &r.steps {
                    match names.steps.get(s.get_ref()) {
                        Some(&p) => {
                            targets.insert(p);
                        }
                        None => self.push(
                            Diagnostic::new(
                                ErrorKind::UnknownStep,
                                format!(
                                    "`{}` is not a step of the ladder{}",
                                    s.get_ref(),
                                    names.did_you_mean(
                                        ErrorKind::UnknownStep,
                                        &format!("`{}`", s.get_ref())
                                    )
                                ),
                            )
                            .rule(id)
                            .field("steps")
                            .at(s.span()),
                        ),
                    }
                }
            }
            (true, false) => {
                for (i, s) in doc.steps.iter().enumerate() {
                    if r.tiers.contains(&s.tier) {
                        targets.insert(u16::try_from(i).unwrap_or(u16::MAX));
                    }
                }
                if targets.is_empty() {
                    self.push(
                        Diagnostic::new(
                            ErrorKind::UnknownStep,
                            format!("no step has tier {:?}", r.tiers),
                        )
                        .rule(id)
                        .field("tiers")
                        .at(r.id.span()),
                    );
                }
            }
        }
        if let Some(src) = cond_src {
            for &t in &targets {
                let Some(c) = self.condition(names, src, Some(t), id, field) else {
                    break;
                };
                if effect == Effect::Exclude && !cyclic && derived_info.reads(&c).availability {
                    self.push(
                        Diagnostic::new(
                            ErrorKind::Circular,
                            "an exclusion cannot read availability (`unavailable`, `failed`, `excluded`, `escalated`, `exhausted`, `controlled`): availability is defined by exclusions",
                        )
                        .rule(id)
                        .field(field)
                        .at(src.span()),
                    );
                    break;
                }
                compiled.push((t, c));
            }
        }
        let rule = Rule {
            id: Arc::from(id),
            effect,
            steps: targets
                .iter()
                .filter_map(|&t| doc.steps.get(usize::from(t)))
                .map(|s| StepId::from(s.id.get_ref().as_str()))
                .collect(),
            condition: cond_src.map(|s| s.get_ref().clone()).unwrap_or_default(),
            if_unknown,
            unknown_text: r.unknown_text.as_deref().map(Arc::from),
            text: Arc::from(r.text.as_str()),
            sources: r
                .source
                .iter()
                .map(|s| Arc::from(s.get_ref().as_str()))
                .collect(),
        };
        (rule, compiled)
    }

    /// Compiles a parsed rule-set file in phases: the catalogue (ladder, facts and names),
    /// derived facts, absent policies, applicability, rules, declared assertions; then, if
    /// nothing was wrong, the circuits and plans. Every problem found is returned at once.
    fn compile(mut self, doc: &Document) -> Result<Parts, Vec<Diagnostic>> {
        let Catalogue {
            ladder,
            names,
            graph,
        } = self.catalogue(doc);
        let derived_conds = self.derived(doc, &names);
        let mut derived_info = DerivedInfo::new(&derived_conds);
        self.derived_cycles(doc, &derived_info);
        let cyclic = self.diags.iter().any(|d| d.kind() == ErrorKind::Circular);
        let absent_when = self.absent_policies(doc, &names, &mut derived_info, cyclic);
        let (applicability, app_cond) = self.applicability(doc, &names);
        let (rules, step_rules) = self.rules(doc, &names, &mut derived_info, cyclic);
        let (assertions, assert_conds) = self.assertions(doc, &names);
        let Some(ladder) = ladder else {
            return Err(self.diags);
        };
        if !self.diags.is_empty() {
            return Err(self.diags);
        }
        let conds = Conditions {
            derived: &derived_conds,
            absent_when: &absent_when,
            applicability: &app_cond,
            rules: &rules,
            step_rules: &step_rules,
            assertions: &assert_conds,
        };
        let circuits = circuits(&conds, &graph);
        Ok(Parts {
            title: doc.ruleset.title.clone(),
            tier_names: doc.ruleset.tier_names.clone(),
            ladder,
            sources: doc
                .sources
                .iter()
                .map(|(k, s)| {
                    (
                        k.clone(),
                        Source {
                            key: k.clone(),
                            citation: s.citation.clone(),
                        },
                    )
                })
                .collect(),
            facts: names.fact_defs,
            medications: doc.medications.clone(),
            derived: doc
                .derived
                .iter()
                .map(|(id, d)| Derived {
                    id: id.clone(),
                    condition: d.when.get_ref().clone(),
                    text: d.text.clone(),
                })
                .collect(),
            applicability,
            rules,
            assertions,
            compiled: Compiled {
                fact_ix: names.facts,
                med_names: {
                    let mut v: Vec<(u16, String)> = names
                        .meds
                        .iter()
                        .map(|(k, &i)| (i, format!("medication:{k}")))
                        .collect();
                    v.sort();
                    v.into_iter().map(|(_, n)| n).collect()
                },
                med_ix: names.meds,
                derived: derived_conds,
                step_rules,
                circuit: circuits.circuit,
                absent_end: circuits.absent_end,
                absent_when: circuits.absent_when,
                applicability: circuits.applicability,
                assert_nodes: circuits.assert_nodes,
                assert_circuit: circuits.assert_circuit,
                plans: circuits.plans,
            },
        })
    }

    /// Phase 1: the ladder, the fact catalogue, and the names conditions resolve against.
    fn catalogue(&mut self, doc: &Document) -> Catalogue {
        let ladder = self.ladder(doc);
        let steps: FxHashMap<String, u16> = doc
            .steps
            .iter()
            .enumerate()
            .rev() // the first definition wins
            .map(|(i, s)| (s.id.get_ref().clone(), u16::try_from(i).unwrap_or(u16::MAX)))
            .collect();
        let fact_defs = self.facts(doc);
        let facts: FxHashMap<String, u16> = fact_defs
            .iter()
            .enumerate()
            .map(|(i, f)| (f.id.clone(), u16::try_from(i).unwrap_or(u16::MAX)))
            .collect();
        for (id, d) in &doc.derived {
            if !valid_name(id) || reserved(id) {
                self.push(
                    Diagnostic::new(
                        ErrorKind::InvalidRule,
                        format!("`{id}` cannot name a derived fact"),
                    )
                    .rule(id)
                    .at(d.when.span()),
                );
            }
        }
        let derived_ix: FxHashMap<String, u16> = doc
            .derived
            .keys()
            .enumerate()
            .map(|(i, k)| (k.clone(), u16::try_from(i).unwrap_or(u16::MAX)))
            .collect();
        let meds: BTreeMap<String, u16> = doc
            .medications
            .keys()
            .enumerate()
            .map(|(i, k)| (k.clone(), u16::try_from(i).unwrap_or(u16::MAX)))
            .collect();
        let graph = match &ladder {
            Some(l) => GraphIndex::of(l),
            None => GraphIndex::declared(doc, &steps),
        };
        let names = Names {
            steps,
            facts,
            fact_defs,
            derived: derived_ix,
            meds,
            edges: graph.edge_ix.clone(),
        };
        Catalogue {
            ladder,
            names,
            graph,
        }
    }

    /// Phase 2: derived facts' conditions (a broken one reads as `false`, reported) and their
    /// sources.
    fn derived(&mut self, doc: &Document, names: &Names) -> Vec<Cond> {
        let mut derived_conds = Vec::new();
        for (id, d) in &doc.derived {
            let c = self.condition(names, &d.when, None, id, "when");
            derived_conds.push(c.unwrap_or(Cond::Const(false)));
            for s in &d.source {
                if !doc.sources.contains_key(s.get_ref()) {
                    self.push(
                        Diagnostic::new(
                            ErrorKind::UnknownSource,
                            format!("source `{}` is not declared under [sources]", s.get_ref()),
                        )
                        .rule(id)
                        .field("source")
                        .at(s.span()),
                    );
                }
            }
        }
        derived_conds
    }

    /// Derived facts that depend on themselves, or build on derived facts too deep.
    fn derived_cycles(&mut self, doc: &Document, derived_info: &DerivedInfo<'_>) {
        let chains = derived_info.chains();
        for ((id, d), chain) in doc.derived.iter().zip(&chains) {
            let message = match chain {
                Chain::Cycle => format!("derived fact `{id}` depends on itself"),
                // Only the first fact past the limit on each chain is reported.
                Chain::Levels(n) if *n == MAX_DERIVED_LEVELS + 1 => format!(
                    "derived fact `{id}` builds on derived facts more than {MAX_DERIVED_LEVELS} deep (a derived fact that reads another is a level); write part of the chain out"
                ),
                Chain::Levels(_) | Chain::OnCycle => continue,
            };
            let kind = match chain {
                Chain::Cycle => ErrorKind::Circular,
                _ => ErrorKind::Condition,
            };
            self.push(
                Diagnostic::new(kind, message)
                    .rule(id)
                    .field("when")
                    .at(d.when.span()),
            );
        }
    }

    /// Phase 3: per fact, its `absent-unknown-when` condition, which may read only facts
    /// that are settled before it (checked unless derived facts are cyclic).
    fn absent_policies(
        &mut self,
        doc: &Document,
        names: &Names,
        derived_info: &mut DerivedInfo<'_>,
        cyclic: bool,
    ) -> Vec<Option<Cond>> {
        let mut absent_when = vec![None; names.fact_defs.len()];
        for (i, (id, f)) in doc.facts.iter().enumerate() {
            let Some(w) = &f.absent_unknown_when else {
                continue;
            };
            let Some(c) = self.condition(names, w, None, id, "absent-unknown-when") else {
                continue;
            };
            let conditional: BTreeSet<u16> = doc
                .facts
                .values()
                .enumerate()
                .filter(|(_, f)| f.absent_unknown_when.is_some())
                .filter_map(|(j, _)| u16::try_from(j).ok())
                .collect();
            let reads = if cyclic {
                Reads::default()
            } else {
                derived_info.reads(&c)
            };
            if reads.availability || reads.facts.iter().any(|f| conditional.contains(f)) {
                self.push(
                    Diagnostic::new(
                        ErrorKind::Circular,
                        format!("fact `{id}`: `absent-unknown-when` may read only facts that are always known or unknown when absent, not availability"),
                    )
                    .rule(id)
                    .field("absent-unknown-when")
                    .at(w.span()),
                );
            }
            if let Some(slot) = absent_when.get_mut(i) {
                *slot = Some(c);
            }
        }
        absent_when
    }

    /// Phase 4: the applicability rule (R1) and its condition.
    fn applicability(&mut self, doc: &Document, names: &Names) -> (Rule, Cond) {
        let app = &doc.applicability;
        self.check_sources(&doc.sources, &app.id, &app.source);
        let app_cond = self
            .condition(names, &app.when, None, app.id.get_ref(), "when")
            .unwrap_or(Cond::Const(false));
        let applicability = Rule {
            id: Arc::from(app.id.get_ref().as_str()),
            effect: Effect::Gate,
            steps: Vec::new(),
            condition: app.when.get_ref().clone(),
            if_unknown: IfUnknown::NotYet,
            unknown_text: None,
            text: Arc::from(app.text.as_str()),
            sources: app
                .source
                .iter()
                .map(|s| Arc::from(s.get_ref().as_str()))
                .collect(),
        };
        (applicability, app_cond)
    }

    /// Phase 5: the rules, in id order, and per step (ladder order) the conditions of its
    /// rules compiled for it, as `(rule index, condition)`.
    fn rules(
        &mut self,
        doc: &Document,
        names: &Names,
        derived_info: &mut DerivedInfo<'_>,
        cyclic: bool,
    ) -> (Vec<Rule>, Vec<Vec<(u16, Cond)>>) {
        let mut order: Vec<usize> = (0..doc.rules.len()).collect();
        // Natural order, ties broken by the id itself (never by position in the file).
        order.sort_by_cached_key(|&i| {
            let id = doc
                .rules
                .get(i)
                .map(|r| r.id.get_ref().clone())
                .unwrap_or_default();
            (natural_key(&id), id, i)
        });
        let mut rules = Vec::new();
        let mut step_rules: Vec<Vec<(u16, Cond)>> = vec![Vec::new(); doc.steps.len()];
        let mut seen_ids: BTreeMap<&str, Range<usize>> = BTreeMap::new();
        for &ri in &order {
            let Some(r) = doc.rules.get(ri) else { continue };
            let id = r.id.get_ref().as_str();
            if !valid_rule_id(id) {
                self.push(
                    Diagnostic::new(
                        ErrorKind::Syntax,
                        format!("rule id `{id}` must be letters, digits, `-`, `.` or `_`"),
                    )
                    .rule(id)
                    .field("id")
                    .at(r.id.span()),
                );
            }
            if let Some(first) = seen_ids.get(id) {
                let later = if first.start < r.id.span().start {
                    r.id.span()
                } else {
                    first.clone()
                };
                self.push(
                    Diagnostic::new(
                        ErrorKind::Duplicate,
                        format!("rule id `{id}` is used more than once"),
                    )
                    .rule(id)
                    .field("id")
                    .at(later),
                );
                continue;
            }
            seen_ids.insert(id, r.id.span());
            let rule_ix = u16::try_from(rules.len()).unwrap_or(u16::MAX);
            let (rule, compiled) = self.rule(doc, names, r, derived_info, cyclic);
            for (t, c) in compiled {
                if let Some(v) = step_rules.get_mut(usize::from(t)) {
                    v.push((rule_ix, c));
                }
            }
            rules.push(rule);
        }
        (rules, step_rules)
    }

    /// Phase 6: declared assertions, compiled like rules for every step they name, as
    /// `(assertion, step, condition)`.
    fn assertions(
        &mut self,
        doc: &Document,
        names: &Names,
    ) -> (Vec<Assertion>, Vec<(u16, u16, Cond)>) {
        let mut assertions: Vec<Assertion> = Vec::new();
        let mut assert_conds: Vec<(u16, u16, Cond)> = Vec::new();
        for a in &doc.asserts {
            let id = a.id.get_ref().as_str();
            let ai = u16::try_from(assertions.len()).unwrap_or(u16::MAX);
            if a.never.is_empty() || a.steps.is_empty() {
                self.push(
                    Diagnostic::new(
                        ErrorKind::InvalidRule,
                        "an assertion names its `steps` and the statuses they are `never`",
                    )
                    .rule(id)
                    .field("never")
                    .at(a.id.span()),
                );
            }
            let mut steps = Vec::new();
            for st in &a.steps {
                match names.steps.get(st.get_ref()) {
                    Some(&t) => {
                        if let Some(c) = self.condition(names, &a.when, Some(t), id, "when") {
                            assert_conds.push((ai, t, c));
                        }
                        steps.push(StepId::from(st.get_ref().as_str()));
                    }
                    None => self.push(
                        Diagnostic::new(
                            ErrorKind::UnknownStep,
                            format!(
                                "`{}` is not a step of the ladder{}",
                                st.get_ref(),
                                names.did_you_mean(
                                    ErrorKind::UnknownStep,
                                    &format!("`{}`", st.get_ref())
                                )
                            ),
                        )
                        .rule(id)
                        .field("steps")
                        .at(st.span()),
                    ),
                }
            }
            assertions.push(Assertion {
                id: id.to_owned(),
                steps,
                condition: a.when.get_ref().clone(),
                never: a.never.clone(),
                text: a.text.clone(),
            });
        }
        (assertions, assert_conds)
    }
}

/// What the catalogue phase finds: the ladder (if it is valid), the names and the graph index.
struct Catalogue {
    ladder: Option<Ladder>,
    names: Names,
    graph: GraphIndex,
}

/// The compiled conditions of a rule set that had no errors, for building its circuits.
struct Conditions<'c> {
    derived: &'c [Cond],
    absent_when: &'c [Option<Cond>],
    applicability: &'c Cond,
    rules: &'c [Rule],
    step_rules: &'c [Vec<(u16, Cond)>],
    assertions: &'c [(u16, u16, Cond)],
}

/// What the circuit phase builds (see [`Compiled`]).
struct Circuits {
    circuit: Circuit,
    absent_end: usize,
    absent_when: Vec<Option<NodeId>>,
    applicability: NodeId,
    assert_nodes: Vec<(u16, u16, NodeId)>,
    assert_circuit: Circuit,
    plans: Vec<StepPlan>,
}

/// Phase 7: one circuit for every condition (absent policies first, as `prepare` reads only
/// them; then applicability, then the rules; equal sub-conditions are one node), per step its
/// plan, and the declared assertions' own circuit.
fn circuits(conds: &Conditions<'_>, graph: &GraphIndex) -> Circuits {
    let Conditions {
        derived: derived_conds,
        absent_when,
        applicability: app_cond,
        rules,
        step_rules,
        assertions: assert_conds,
    } = *conds;
    // Per step, the conditions of its exclusions (what `excluded(x)` and availability read).
    let exclusions = || -> Vec<Vec<&Cond>> {
        step_rules
            .iter()
            .map(|list| {
                list.iter()
                    .filter(|(r, _)| {
                        rules
                            .get(usize::from(*r))
                            .is_some_and(|x: &Rule| x.effect == Effect::Exclude)
                    })
                    .map(|(_, c)| c)
                    .collect()
            })
            .collect()
    };
    let view = || Graph {
        derived: derived_conds,
        exclusions: exclusions(),
        edges: &graph.edges,
        incoming: &graph.incoming,
        within_tier: &graph.within_tier,
        adjunct_hosts: &graph.adjunct_hosts,
        tiers: &graph.tiers,
    };
    let mut b = Builder::new(view());
    let absent_nodes: Vec<Option<NodeId>> = absent_when
        .iter()
        .map(|c| c.as_ref().map(|c| b.cond(c)))
        .collect();
    let absent_end = b.len();
    let app_node = b.cond(app_cond);
    let plan_rules: Vec<Vec<PlanRule>> = step_rules
        .iter()
        .map(|list| {
            list.iter()
                .map(|(r, c)| {
                    let (effect, policy) = rules
                        .get(usize::from(*r))
                        .map_or((Effect::Note, IfUnknown::NoEffect), |x| {
                            (x.effect, x.if_unknown)
                        });
                    PlanRule {
                        rule: *r,
                        effect,
                        policy,
                        node: b.cond(c),
                    }
                })
                .collect()
        })
        .collect();
    let (circuit, remap) = b.finish();
    // Declared assertions get a circuit of their own, run only when asked (verify), so
    // that they cost evaluation nothing.
    let mut ab = Builder::new(view());
    let assert_raw: Vec<(u16, u16, NodeId)> = assert_conds
        .iter()
        .map(|(a, t, c)| (*a, *t, ab.cond(c)))
        .collect();
    let (assert_circuit, aremap) = ab.finish();
    let assert_nodes: Vec<(u16, u16, NodeId)> = assert_raw
        .into_iter()
        .map(|(a, t, n)| (a, t, aremap.node(n)))
        .collect();
    let plans: Vec<StepPlan> = plan_rules
        .into_iter()
        .map(|list| {
            StepPlan::new(
                list.into_iter()
                    .map(|r| PlanRule {
                        node: remap.node(r.node),
                        ..r
                    })
                    .collect(),
            )
        })
        .collect();
    let absent_nodes: Vec<Option<NodeId>> = absent_nodes
        .into_iter()
        .map(|n| n.map(|n| remap.node(n)))
        .collect();
    Circuits {
        circuit,
        absent_end: remap.end(absent_end),
        absent_when: absent_nodes,
        applicability: remap.node(app_node),
        assert_nodes,
        assert_circuit,
        plans,
    }
}
