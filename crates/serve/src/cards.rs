//! Cards that respect clinicians' attention: by default one card per hook for what needs
//! action now, none for a patient the pathway does not apply to, `info` only when configured.

use pathway_core::Status;
use pathway_fhir::{
    Card, CardSource, Coding, Indicator, Link, Orders, Suggestion, SuggestionAction, card_source,
    order_for, reading_detail, step_detail, summary,
};
use pathway_rules::{Recommendation, RuleSet, StepResult};

use crate::config::CardsConfig;
use crate::feedback::Issued;

/// The override reasons every actionable card offers.
const OVERRIDE_SYSTEM: &str = "urn:pathway:override-reason";

fn override_reasons() -> Vec<Coding> {
    [
        (
            "benefit-outweighs-risk",
            "Benefit outweighs the risk for this patient",
        ),
        ("already-managed", "Already known and managed"),
        ("record-wrong", "The record is wrong or out of date"),
        ("specialist-advice", "Following specialist advice"),
    ]
    .into_iter()
    .map(|(code, display)| Coding {
        system: OVERRIDE_SYSTEM.into(),
        code: code.into(),
        display: Some(display.into()),
    })
    .collect()
}

/// What the cards are built from.
pub struct Ctx<'a> {
    /// The rule set.
    pub rs: &'a RuleSet,
    /// Card settings.
    pub cfg: &'a CardsConfig,
    /// The patient reference (`Patient/123`).
    pub patient: &'a str,
    /// The hook call (for the cards' uuids).
    pub hook_instance: &'a str,
    /// The service id (for feedback).
    pub service: &'a str,
}

impl Ctx<'_> {
    fn uuid(&self, kind: &str) -> String {
        const NS: uuid::Uuid = uuid::Uuid::from_u128(0x1d2c_7f3a_55e1_4c0b_9b2e_61aa_0c4d_e7f9);
        uuid::Uuid::new_v5(&NS, format!("{}|{kind}", self.hook_instance).as_bytes()).to_string()
    }

    fn links(&self, steps: &[&StepResult]) -> Vec<Link> {
        let Some(t) = &self.cfg.explanation_url else {
            return Vec::new();
        };
        steps
            .iter()
            .map(|s| Link {
                label: format!("Why: {}", s.name),
                url: t.replace("{step}", s.step.as_str()),
                kind: "absolute".into(),
            })
            .collect()
    }

    fn card(&self, spec: Spec) -> (Card, Issued) {
        let uuid = self.uuid(&spec.kind);
        let actionable = spec.indicator != Indicator::Info;
        let card = Card {
            uuid: uuid.clone(),
            summary: summary(&spec.summary),
            detail: spec.detail,
            indicator: spec.indicator,
            source: spec.source,
            selection_behavior: (!spec.suggestions.is_empty()).then(|| "any".to_owned()),
            suggestions: spec.suggestions,
            override_reasons: if actionable {
                override_reasons()
            } else {
                Vec::new()
            },
            links: Vec::new(),
        };
        (
            card,
            Issued {
                uuid,
                service: self.service.to_owned(),
                kind: spec.kind,
                rules: spec.rules,
            },
        )
    }

    /// A suggestion to order a step (coded with its RxNorm code), if it has one.
    fn order_suggestion(&self, s: &StepResult, recommended: bool) -> Option<Suggestion> {
        let resource = order_for(self.rs, s, self.patient)?;
        Some(Suggestion {
            label: format!("Order {} instead", s.name),
            uuid: self.uuid(&format!("suggest:{}", s.step)),
            is_recommended: recommended,
            actions: vec![SuggestionAction {
                kind: "create".into(),
                description: format!("Draft an order for {}", s.name),
                resource,
                resource_id: Vec::new(),
            }],
        })
    }
}

/// What a card says, before it gets its uuid and override reasons.
struct Spec {
    kind: String,
    indicator: Indicator,
    summary: String,
    detail: String,
    source: CardSource,
    suggestions: Vec<Suggestion>,
    rules: Vec<String>,
}

fn rule_ids(s: &StepResult) -> Vec<String> {
    s.decisive().map(|r| r.rule.to_string()).collect()
}

fn first_reason(s: &StepResult) -> String {
    s.decisive()
        .next()
        .map_or_else(String::new, |r| r.text.trim_end_matches('.').to_owned())
}

/// The cards of a patient-view: what needs action now (a current therapy that must be
/// reviewed, the next steps that need caution) in one card, and what could not be read.
pub fn patient_view(ctx: &Ctx<'_>, rec: &Recommendation) -> Vec<(Card, Issued)> {
    let mut out = Vec::new();
    if let Some(c) = not_read(ctx, rec) {
        out.push(c);
    }
    if !rec.applicable {
        return out;
    }
    let wants = |st: Status| ctx.cfg.statuses.contains(&st);
    let review: Vec<&StepResult> = rec
        .steps
        .iter()
        .filter(|s| s.current && s.status == Status::Excluded && wants(Status::Excluded))
        .collect();
    let next: Vec<&StepResult> = rec
        .steps
        .iter()
        .filter(|s| !s.current && matches!(s.status, Status::Offer | Status::Caution))
        .filter(|s| s.tier > 0)
        .collect();
    let cautious: Vec<&StepResult> = next
        .iter()
        .copied()
        .filter(|s| s.status == Status::Caution && wants(Status::Caution))
        .collect();
    let indicator = if !review.is_empty() {
        Indicator::Critical
    } else if !cautious.is_empty() {
        Indicator::Warning
    } else {
        Indicator::Info
    };
    if indicator == Indicator::Info && (!ctx.cfg.info || next.is_empty()) {
        return out;
    }
    let mut parts = Vec::new();
    for s in &review {
        parts.push(format!("review {} now", s.name));
    }
    // Caution first (what needs a clinician's review), then what may be offered.
    let names = |st: Status| -> Vec<&str> {
        next.iter()
            .filter(|s| s.status == st)
            .map(|s| s.name.as_str())
            .collect()
    };
    let (caution, offer) = (names(Status::Caution), names(Status::Offer));
    if !caution.is_empty() {
        parts.push(format!("offer with caution: {}", caution.join(", ")));
    }
    if !offer.is_empty() {
        parts.push(format!("may offer: {}", offer.join(", ")));
    }
    let mut detail = String::new();
    for s in review.iter().chain(&next) {
        detail.push_str(&format!(
            "### {} ({})\n{}\n",
            s.name,
            s.status,
            step_detail(ctx.rs, s)
        ));
    }
    let suggestions = next
        .iter()
        .filter_map(|s| ctx.order_suggestion(s, false))
        .collect();
    let rules = review
        .iter()
        .chain(&cautious)
        .flat_map(|s| rule_ids(s))
        .collect();
    let mut first = parts.join("; ");
    if let Some(c) = first.get_mut(..1) {
        c.make_ascii_uppercase();
    }
    let (mut card, issued) = ctx.card(Spec {
        kind: "pathway".to_owned(),
        indicator,
        summary: format!("Spasticity: {first}"),
        detail,
        source: card_source(ctx.rs, None),
        suggestions,
        rules,
    });
    card.links = ctx.links(&review.iter().chain(&cautious).copied().collect::<Vec<_>>());
    out.push((card, issued));
    out
}

/// The cards of order-select and order-sign: an ordered step that is excluded (critical),
/// needs caution or is not indicated yet (warning); an ordered drug that makes a current
/// step excluded or cautioned (critical or warning). An order for a step that is `offer`
/// raises nothing.
pub fn orders(
    ctx: &Ctx<'_>,
    rec: &Recommendation,
    with_orders: Option<&Recommendation>,
    orders: &Orders,
) -> Vec<(Card, Issued)> {
    let mut out = Vec::new();
    if let Some(c) = not_read(ctx, rec) {
        out.push(c);
    }
    if !rec.applicable {
        return out;
    }
    for (step, resources) in &orders.steps {
        let Some(s) = rec.step(step.as_str()) else {
            continue;
        };
        let (indicator, what) = match s.status {
            Status::Excluded => (Indicator::Critical, "must not be given"),
            Status::Caution => (Indicator::Warning, "needs caution"),
            Status::NotYet => (Indicator::Warning, "is not indicated yet"),
            Status::Offer | Status::Continue => continue,
        };
        let reason = first_reason(s);
        let mut suggestions: Vec<Suggestion> = rec
            .steps
            .iter()
            .filter(|a| a.tier == s.tier && a.step != s.step && !a.current)
            .filter(|a| matches!(a.status, Status::Offer | Status::Caution))
            .filter_map(|a| ctx.order_suggestion(a, false))
            .collect();
        suggestions.push(Suggestion {
            label: format!("Remove the order for {}", s.name),
            uuid: ctx.uuid(&format!("remove:{step}")),
            is_recommended: indicator == Indicator::Critical,
            actions: vec![SuggestionAction {
                kind: "delete".into(),
                description: format!("Remove the draft order for {}", s.name),
                resource: serde_json::Value::Null,
                resource_id: resources.clone(),
            }],
        });
        let (mut card, issued) = ctx.card(Spec {
            kind: format!("order:{step}"),
            indicator,
            summary: format!("{} {what}: {reason}", s.name),
            detail: step_detail(ctx.rs, s),
            source: card_source(ctx.rs, Some(s)),
            suggestions,
            rules: rule_ids(s),
        });
        card.links = ctx.links(&[s]);
        out.push((card, issued));
    }
    // An ordered drug that changes a current step (fluvoxamine while on tizanidine).
    if let Some(after) = with_orders {
        let ordered: Vec<&str> = orders.classes.keys().map(String::as_str).collect();
        for (before, now) in rec.steps.iter().zip(&after.steps) {
            if !before.current || orders.steps.contains_key(&before.step) {
                continue;
            }
            let (indicator, what) = match (before.status, now.status) {
                (b, Status::Excluded) if b != Status::Excluded => {
                    (Indicator::Critical, "must then be stopped")
                }
                (Status::Continue | Status::Offer, Status::Caution) => {
                    (Indicator::Warning, "then needs caution")
                }
                _ => continue,
            };
            let new_rules: Vec<String> = now
                .decisive()
                .filter(|r| !before.rules.contains(&r.rule))
                .map(|r| r.rule.to_string())
                .collect();
            let reason = now
                .decisive()
                .find(|r| !before.rules.contains(&r.rule))
                .map_or_else(
                    || first_reason(now),
                    |r| r.text.trim_end_matches('.').to_owned(),
                );
            let (mut card, issued) = ctx.card(Spec {
                kind: format!("interaction:{}", now.step),
                indicator,
                summary: format!(
                    "Ordered {}: current {} {what}: {reason}",
                    ordered.join(", "),
                    now.name
                ),
                detail: step_detail(ctx.rs, now),
                source: card_source(ctx.rs, Some(now)),
                suggestions: Vec::new(),
                rules: if new_rules.is_empty() {
                    rule_ids(now)
                } else {
                    new_rules
                },
            });
            card.links = ctx.links(&[now]);
            out.push((card, issued));
        }
    }
    if ctx.cfg.info && !orders.unrecognized.is_empty() {
        let mut detail = String::from("**Not recognised** (not checked against the pathway):\n");
        for u in &orders.unrecognized {
            detail.push_str(&format!("- {u}\n"));
        }
        out.push(ctx.card(Spec {
            kind: "orders-not-read".to_owned(),
            indicator: Indicator::Info,
            summary: format!(
                "{} order(s) not recognised: not checked",
                orders.unrecognized.len()
            ),
            detail,
            source: card_source(ctx.rs, None),
            suggestions: Vec::new(),
            rules: Vec::new(),
        }));
    }
    out
}

/// A card for what the record held that was not read: a warning when current medications
/// could not be recognised (their interactions were not checked), otherwise `info`.
fn not_read(ctx: &Ctx<'_>, rec: &Recommendation) -> Option<(Card, Issued)> {
    let meds: Vec<_> = rec
        .unrecognized
        .iter()
        .filter(|u| u.kind == "medication")
        .collect();
    let others = rec.unrecognized.len() - meds.len() + rec.warnings.len();
    if meds.is_empty() && (others == 0 || !ctx.cfg.info) {
        return None;
    }
    let detail = reading_detail(rec);
    let (indicator, text) = if meds.is_empty() {
        (
            Indicator::Info,
            format!("{others} part(s) of the record not read as recorded"),
        )
    } else {
        (
            Indicator::Warning,
            format!(
                "{} current medication(s) not recognised: interactions not checked",
                meds.len()
            ),
        )
    };
    Some(ctx.card(Spec {
        kind: "not-read".to_owned(),
        indicator,
        summary: text.to_owned(),
        detail,
        source: card_source(ctx.rs, None),
        suggestions: Vec::new(),
        rules: Vec::new(),
    }))
}
