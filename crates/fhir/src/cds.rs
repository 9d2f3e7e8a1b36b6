//! Out: a CDS Hooks 2.0 response and a FHIR R4 `RequestGroup`, as serde types of our own.

use pathway_core::{Status, StepKind};
use pathway_rules::{Effect, Recommendation, RuleSet, StepResult};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

const RXNORM: &str = "http://www.nlm.nih.gov/research/umls/rxnorm";
const STEP_SYSTEM: &str = "urn:pathway:step";
/// CDS Hooks 2.0: the summary is fewer than 140 characters.
pub const SUMMARY_MAX: usize = 139;
/// Namespace of Pathway's name-based (v5) card and suggestion ids.
const NAMESPACE: uuid::Uuid = uuid::Uuid::from_u128(0x6b1f_3c2e_9d4a_4e57_8a61_2f0c_7d3e_9b15);

/// A CDS Hooks 2.0 response.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CdsResponse {
    /// The cards; present even when empty.
    pub cards: Vec<Card>,
}

/// How urgent a card is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Indicator {
    /// For information.
    Info,
    /// Needs attention.
    Warning,
    /// Act now.
    Critical,
}

/// A code.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Coding {
    /// Code system.
    pub system: String,
    /// Code.
    pub code: String,
    /// Display.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub display: Option<String>,
}

/// Where a card's guidance comes from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CardSource {
    /// Short label.
    pub label: String,
    /// What the card is about (the step).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub topic: Option<Coding>,
}

/// An action a suggestion proposes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SuggestionAction {
    /// `create`.
    #[serde(rename = "type")]
    pub kind: String,
    /// What it does.
    pub description: String,
    /// The draft resource.
    #[serde(default, skip_serializing_if = "Value::is_null")]
    pub resource: Value,
    /// For a `delete` action: the resources to remove (`MedicationRequest/draft-1`).
    #[serde(default, rename = "resourceId", skip_serializing_if = "Vec::is_empty")]
    pub resource_id: Vec<String>,
}

/// A suggestion on a card.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Suggestion {
    /// Button label.
    pub label: String,
    /// Stable id.
    pub uuid: String,
    /// Whether it is the recommended choice.
    pub is_recommended: bool,
    /// The actions.
    pub actions: Vec<SuggestionAction>,
}

/// A CDS Hooks card.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Card {
    /// Stable id: the same input gives the same id.
    pub uuid: String,
    /// At most 140 characters.
    pub summary: String,
    /// Markdown: the why and why-not.
    pub detail: String,
    /// Urgency.
    pub indicator: Indicator,
    /// Source.
    pub source: CardSource,
    /// Draft orders for offered steps.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub suggestions: Vec<Suggestion>,
    /// Required when there are suggestions.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub selection_behavior: Option<String>,
    /// Reasons a clinician may give for not following the card (CDS Hooks 2.0).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub override_reasons: Vec<Coding>,
    /// Links to more about the card.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub links: Vec<Link>,
}

/// A link on a card (CDS Hooks 2.0): `absolute` for a page.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Link {
    /// What the link is.
    pub label: String,
    /// Where it goes.
    pub url: String,
    /// `absolute` or `smart`.
    #[serde(rename = "type")]
    pub kind: String,
}

/// The Markdown explanation of one step's status: each reason with its role, the facts and
/// records behind it, its rule and its sources; then the missing facts.
pub fn step_detail(rs: &RuleSet, s: &StepResult) -> String {
    markdown(rs, s)
}

/// A card's source: the rule set, and the step as the card's topic.
pub fn card_source(rs: &RuleSet, s: Option<&StepResult>) -> CardSource {
    source(rs, s)
}

/// A draft order for a step that a suggestion can carry: a MedicationRequest coded with the
/// step's RxNorm code (and its local code). `None` for a step with no RxNorm code (a
/// local-only code is never a suggestion's sole coding) and for non-drug steps.
pub fn order_for(rs: &RuleSet, s: &StepResult, patient: &str) -> Option<Value> {
    let step = rs.ladder().step(s.step.as_str())?;
    let rx = step.codes.iter().any(|c| c.system == RXNORM);
    (rx && matches!(step.kind, StepKind::Drug | StepKind::Injection))
        .then(|| draft(rs, s, patient, None))
}

/// A summary cut to the CDS Hooks limit (under 140 characters), marked where it was cut.
pub fn summary(s: &str) -> String {
    clip(s, SUMMARY_MAX)
}

fn stable_uuid(rec: &Recommendation, patient: &str, key: &str) -> String {
    let name = format!("{}|{}|{}|{key}", rec.ruleset.hash, patient, rec.date);
    uuid::Uuid::new_v5(&NAMESPACE, name.as_bytes()).to_string()
}

/// Cuts to at most `max` characters, ending with an ellipsis when cut.
fn clip(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        return s.to_owned();
    }
    let mut out: String = s.chars().take(max.saturating_sub(1)).collect();
    out = out.trim_end().to_owned();
    out.push('…');
    out
}

fn first_sentence(s: &str) -> &str {
    s.split_once(". ")
        .map_or(s, |(a, _)| a)
        .trim_end_matches('.')
}

/// Sets a member of a JSON object (does nothing to anything else).
pub(crate) fn set(v: &mut Value, key: &str, x: Value) {
    if let Some(o) = v.as_object_mut() {
        o.insert(key.to_owned(), x);
    }
}

/// The step's codes as FHIR codings (RxNorm and SNOMED first, the local code last).
fn codings(rs: &RuleSet, step: &str) -> Vec<Value> {
    let Some(s) = rs.ladder().step(step) else {
        return Vec::new();
    };
    let mut v: Vec<&pathway_core::Code> = s.codes.iter().collect();
    v.sort_by_key(|c| c.system == STEP_SYSTEM);
    v.iter()
        .map(|c| {
            let mut j = json!({"system": c.system, "code": c.code});
            if let Some(d) = &c.display {
                set(&mut j, "display", json!(d));
            }
            j
        })
        .collect()
}

/// A draft MedicationRequest (a drug with an RxNorm code) or ServiceRequest for a step.
fn draft(rs: &RuleSet, s: &StepResult, patient: &str, id: Option<&str>) -> Value {
    let step = rs.ladder().step(s.step.as_str());
    let drug = step.is_some_and(|st| {
        matches!(st.kind, StepKind::Drug | StepKind::Injection)
            && st.codes.iter().any(|c| c.system == RXNORM)
    });
    let concept = json!({"coding": codings(rs, s.step.as_str()), "text": s.name});
    let why: Vec<&str> = s.decisive().map(|r| &*r.text).collect();
    let mut r = if drug {
        json!({"resourceType": "MedicationRequest", "status": "draft", "intent": "proposal",
            "medicationCodeableConcept": concept, "subject": {"reference": patient}})
    } else {
        json!({"resourceType": "ServiceRequest", "status": "draft", "intent": "proposal",
            "code": concept, "subject": {"reference": patient}})
    };
    if !why.is_empty() {
        set(&mut r, "note", json!([{"text": why.join(" ")}]));
    }
    if let Some(id) = id {
        set(&mut r, "id", json!(id));
    }
    r
}

/// The why and why-not of a step, in markdown.
fn markdown(rs: &RuleSet, s: &StepResult) -> String {
    let mut md = String::new();
    for r in &s.reasons {
        let role = r.role().label();
        let mut chars = role.chars();
        let label: String = chars
            .next()
            .map(|c| c.to_ascii_uppercase())
            .into_iter()
            .chain(chars)
            .collect();
        md.push_str(&format!("- **{label}:** {}", r.text));
        let facts: Vec<String> = r
            .facts
            .iter()
            .filter(|f| !f.value.starts_with("not recorded (false)"))
            .map(|f| {
                if f.from.is_empty() {
                    format!("{} = {}", f.fact, f.value)
                } else {
                    format!("{} = {} ({})", f.fact, f.value, f.from.join(", "))
                }
            })
            .collect();
        if !facts.is_empty() && r.effect != Effect::Note {
            md.push_str(&format!(" _[{}]_", facts.join("; ")));
        }
        let cites: Vec<String> = r
            .sources
            .iter()
            .map(|k| {
                rs.sources()
                    .get(&**k)
                    .map_or_else(|| k.to_string(), |src| format!("{k}: {}", src.citation))
            })
            .collect();
        md.push_str(&format!(" — `{}`; {}\n", r.rule, cites.join("; ")));
    }
    if !s.missing.is_empty() {
        md.push_str(&format!("- **Missing:** {}\n", s.missing.join(", ")));
    }
    md
}

fn source(rs: &RuleSet, s: Option<&StepResult>) -> CardSource {
    CardSource {
        label: format!("Pathway: {} {}", rs.title(), rs.stamp().version),
        topic: s.map(|s| Coding {
            system: STEP_SYSTEM.to_owned(),
            code: s.step.to_string(),
            display: Some(s.name.clone()),
        }),
    }
}

/// A CDS Hooks 2.0 response for a recommendation: a card for each step to continue, offer or
/// offer with caution (with a draft order to accept), a critical card for each current therapy
/// that is now excluded, a card listing the missing facts, and one card with every step not
/// offered and why not. Card and suggestion ids are stable for the same input.
///
/// ```
/// use pathway_core::{Date, Profile};
/// use pathway_fhir::{cds_hooks, Indicator};
/// use pathway_rules::RuleSet;
/// let rs = RuleSet::ms_spasticity().unwrap();
/// let p = Profile::new(Date::constant(2026, 11, 22), 45)
///     .with_fact("multiple-sclerosis", true)
///     .with_fact("spasticity", true);
/// let rec = rs.evaluate(&p).unwrap();
/// let response = cds_hooks(&rec, &rs, "Patient/p");
/// assert!(response.cards.iter().all(|c| c.summary.chars().count() < 140));
/// assert_eq!(response.cards[0].indicator, Indicator::Info);
/// assert_eq!(response, cds_hooks(&rec, &rs, "Patient/p"));
/// ```
pub fn cds_hooks(rec: &Recommendation, rs: &RuleSet, patient: &str) -> CdsResponse {
    let mut cards = Vec::new();
    // E7: what could not be read is said on every response, first, so that nobody takes an
    // unchecked medication for a checked one.
    if let Some((summary, detail, meds)) = reading_notes(rec) {
        cards.push(Card {
            uuid: stable_uuid(rec, patient, "not-read"),
            summary: clip(&summary, SUMMARY_MAX),
            detail,
            indicator: if meds {
                Indicator::Warning
            } else {
                Indicator::Info
            },
            source: source(rs, None),
            suggestions: Vec::new(),
            selection_behavior: None,
            override_reasons: Vec::new(),
            links: Vec::new(),
        });
    }
    if let Some(why) = rec.not_applicable_because() {
        cards.push(Card {
            uuid: stable_uuid(rec, patient, "not-applicable"),
            summary: clip(
                "MS spasticity pathway does not apply: no MS spasticity recorded",
                SUMMARY_MAX,
            ),
            detail: why.to_owned(),
            indicator: Indicator::Info,
            source: source(rs, None),
            suggestions: Vec::new(),
            selection_behavior: None,
            override_reasons: Vec::new(),
            links: Vec::new(),
        });
        return CdsResponse { cards };
    }
    for s in &rec.steps {
        let (indicator, summary, suggest) = match (s.status, s.current) {
            (Status::Continue, _) => (Indicator::Info, format!("Continue {}", s.name), false),
            (Status::Offer, _) => (Indicator::Info, format!("Offer {}", s.name), true),
            (Status::Caution, _) => {
                let why = s
                    .decisive()
                    .next()
                    .map_or(String::new(), |r| format!(": {}", first_sentence(&r.text)));
                (
                    Indicator::Warning,
                    format!("Offer with caution {}{why}", s.name),
                    true,
                )
            }
            (Status::Excluded, true) => {
                let why = s
                    .decisive()
                    .next()
                    .map_or(String::new(), |r| format!(": {}", first_sentence(&r.text)));
                (
                    Indicator::Critical,
                    format!("Review {} now{why}", s.name),
                    false,
                )
            }
            _ => continue,
        };
        let suggestions = if suggest {
            vec![Suggestion {
                label: format!("Order {}", s.name),
                uuid: stable_uuid(rec, patient, &format!("suggest:{}", s.step)),
                is_recommended: s.status == Status::Offer,
                actions: vec![SuggestionAction {
                    kind: "create".into(),
                    description: format!("Draft order: {}", s.name),
                    resource: draft(rs, s, patient, None),
                    resource_id: Vec::new(),
                }],
            }]
        } else {
            Vec::new()
        };
        cards.push(Card {
            uuid: stable_uuid(rec, patient, &format!("step:{}", s.step)),
            summary: clip(&summary, SUMMARY_MAX),
            detail: markdown(rs, s),
            indicator,
            source: source(rs, Some(s)),
            selection_behavior: (!suggestions.is_empty()).then(|| "at-most-one".to_owned()),
            suggestions,
            override_reasons: Vec::new(),
            links: Vec::new(),
        });
    }
    if !rec.missing.is_empty() {
        let mut detail =
            String::from("Facts that are not recorded and could change the advice:\n\n");
        for m in &rec.missing {
            let steps: Vec<&str> = rec
                .steps
                .iter()
                .filter(|s| s.missing.contains(m))
                .map(|s| s.name.as_str())
                .collect();
            detail.push_str(&format!("- **{m}**: {}\n", steps.join(", ")));
        }
        cards.push(Card {
            uuid: stable_uuid(rec, patient, "missing"),
            summary: clip(
                &format!("Record to firm up the advice: {}", rec.missing.join(", ")),
                SUMMARY_MAX,
            ),
            detail,
            indicator: Indicator::Warning,
            source: source(rs, None),
            suggestions: Vec::new(),
            selection_behavior: None,
            override_reasons: Vec::new(),
            links: Vec::new(),
        });
    }
    let held: Vec<&StepResult> = rec
        .steps
        .iter()
        .filter(|s| !(s.status.is_offered() || s.status == Status::Excluded && s.current))
        .collect();
    if !held.is_empty() {
        let mut detail = String::new();
        for s in &held {
            detail.push_str(&format!(
                "### {} ({})\n{}\n",
                s.name,
                s.status,
                markdown(rs, s)
            ));
        }
        cards.push(Card {
            uuid: stable_uuid(rec, patient, "not-offered"),
            summary: clip(
                &format!(
                    "{} steps are not offered now (not yet or excluded): see why",
                    held.len()
                ),
                SUMMARY_MAX,
            ),
            detail,
            indicator: Indicator::Info,
            source: source(rs, None),
            suggestions: Vec::new(),
            selection_behavior: None,
            override_reasons: Vec::new(),
            links: Vec::new(),
        });
    }
    CdsResponse { cards }
}

/// A FHIR R4 reference.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Reference {
    /// `Patient/abc` or `#contained-id`.
    pub reference: String,
}

/// A FHIR R4 CodeableConcept.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CodeableConcept {
    /// Codings.
    pub coding: Vec<Value>,
    /// Text.
    pub text: String,
}

/// A FHIR R4 RelatedArtifact (a citation).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RelatedArtifact {
    /// `citation`.
    #[serde(rename = "type")]
    pub kind: String,
    /// The source key.
    pub label: String,
    /// The citation.
    pub citation: String,
}

/// One action of a RequestGroup: an offered or cautioned step.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RequestAction {
    /// The step id.
    pub id: String,
    /// `Offer` or `Offer with caution`.
    pub prefix: String,
    /// The step's name.
    pub title: String,
    /// Why (and, for caution, what to review).
    pub description: String,
    /// The step's codes.
    pub code: Vec<CodeableConcept>,
    /// The sources behind it.
    pub documentation: Vec<RelatedArtifact>,
    /// The contained draft order.
    pub resource: Reference,
}

/// An annotation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Annotation {
    /// Text.
    pub text: String,
}

/// A FHIR R4 RequestGroup with one action per offered or cautioned step.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RequestGroup {
    /// `RequestGroup`.
    pub resource_type: String,
    /// `draft`.
    pub status: String,
    /// `proposal`.
    pub intent: String,
    /// The patient.
    pub subject: Reference,
    /// The evaluation date.
    pub authored_on: String,
    /// The rule set, as `urn:pathway:ruleset:<id>|<version>`.
    pub instantiates_uri: Vec<String>,
    /// The rule set's content hash.
    pub note: Vec<Annotation>,
    /// Draft MedicationRequests and ServiceRequests the actions point to (absent when
    /// empty: FHIR JSON has no empty arrays).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub contained: Vec<Value>,
    /// One per offered or cautioned step, in ladder order (absent when empty).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub action: Vec<RequestAction>,
}

/// A FHIR R4 RequestGroup for a recommendation.
///
/// ```
/// use pathway_core::{Date, Profile};
/// use pathway_rules::RuleSet;
/// let rs = RuleSet::ms_spasticity().unwrap();
/// let p = Profile::new(Date::constant(2026, 11, 22), 45)
///     .with_fact("multiple-sclerosis", true)
///     .with_fact("spasticity", true);
/// let rg = pathway_fhir::request_group(&rs.evaluate(&p).unwrap(), &rs, "Patient/p");
/// assert_eq!((rg.status.as_str(), rg.intent.as_str()), ("draft", "proposal"));
/// assert!(rg.action.iter().any(|a| a.id == "stretching-program"));
/// ```
pub fn request_group(rec: &Recommendation, rs: &RuleSet, patient: &str) -> RequestGroup {
    let mut contained = Vec::new();
    let mut action = Vec::new();
    for s in rec
        .steps
        .iter()
        .filter(|s| rec.applicable && matches!(s.status, Status::Offer | Status::Caution))
    {
        let id = format!("step-{}", s.step);
        contained.push(draft(rs, s, patient, Some(&id)));
        let mut description: Vec<String> = s.decisive().map(|r| r.text.to_string()).collect();
        if !s.missing.is_empty() {
            description.push(format!("Missing: {}.", s.missing.join(", ")));
        }
        let mut keys: Vec<&str> = s.sources.iter().map(|k| &**k).collect();
        keys.dedup();
        action.push(RequestAction {
            id: s.step.to_string(),
            prefix: if s.status == Status::Caution {
                "Offer with caution".into()
            } else {
                "Offer".into()
            },
            title: s.name.clone(),
            description: description.join(" "),
            code: vec![CodeableConcept {
                coding: codings(rs, s.step.as_str()),
                text: s.name.clone(),
            }],
            documentation: keys
                .into_iter()
                .map(|k| RelatedArtifact {
                    kind: "citation".into(),
                    label: k.to_owned(),
                    citation: rs
                        .sources()
                        .get(k)
                        .map_or_else(String::new, |x| x.citation.clone()),
                })
                .collect(),
            resource: Reference {
                reference: format!("#{id}"),
            },
        });
    }
    RequestGroup {
        resource_type: "RequestGroup".into(),
        status: "draft".into(),
        intent: "proposal".into(),
        subject: Reference {
            reference: patient.to_owned(),
        },
        authored_on: rec.date.to_string(),
        instantiates_uri: vec![format!(
            "urn:pathway:ruleset:{}|{}",
            rec.ruleset.id, rec.ruleset.version
        )],
        note: std::iter::once(Annotation {
            text: format!(
                "Generated by Pathway from rule set {} {} ({}).",
                rec.ruleset.id, rec.ruleset.version, rec.ruleset.hash
            ),
        })
        .chain(rec.not_applicable_because().map(|why| Annotation {
            text: format!("The pathway does not apply, so no step is proposed: {why}"),
        }))
        .chain(reading_notes(rec).map(|(summary, detail, _)| Annotation {
            text: format!("{summary}\n\n{detail}"),
        }))
        .collect(),
        contained,
        action,
    }
}

/// What the record held that was not read, in Markdown: the unrecognised records and the
/// warnings (empty when there are none). Shared by every card and note that says so.
pub fn reading_detail(rec: &Recommendation) -> String {
    let mut detail = String::new();
    if !rec.unrecognized.is_empty() {
        detail.push_str(
            "**Not recognised** (their interactions and contraindications were not checked):\n",
        );
        for u in &rec.unrecognized {
            detail.push_str(&format!("- {u}\n"));
        }
    }
    if !rec.warnings.is_empty() {
        detail.push_str("**Not read as recorded:**\n");
        for w in &rec.warnings {
            detail.push_str(&format!("- {w}\n"));
        }
    }
    detail
}

/// What the record held that was not read: `(summary, markdown detail, whether a current
/// medication is among it)`, or `None` when everything was read.
fn reading_notes(rec: &Recommendation) -> Option<(String, String, bool)> {
    if rec.unrecognized.is_empty() && rec.warnings.is_empty() {
        return None;
    }
    let meds = rec.unrecognized.iter().any(|u| u.kind == "medication");
    let detail = reading_detail(rec);
    let n = rec.unrecognized.len();
    let summary = match (n, rec.warnings.len()) {
        (0, w) => format!("{w} part(s) of the record were not read as recorded: see which"),
        (n, 0) => format!("{n} record(s) not recognised: not checked for interactions"),
        (n, w) => format!("{n} record(s) not recognised and {w} not read as recorded: not checked"),
    };
    Some((summary, detail, meds))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clip_counts_characters_and_marks_the_cut() {
        assert_eq!(clip("short", SUMMARY_MAX), "short");
        let long = "é".repeat(200);
        let c = clip(&long, SUMMARY_MAX);
        assert_eq!(c.chars().count(), SUMMARY_MAX);
        assert!(c.ends_with('…'));
    }
}
