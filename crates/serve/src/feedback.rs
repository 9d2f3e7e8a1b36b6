//! Feedback (CDS Hooks 2.0): what clinicians did with each card, stored durably in SQLite,
//! and the report a CDS governance committee reviews.

use std::path::Path;
use std::sync::Mutex;

use rusqlite::{Connection, params};
use serde::Deserialize;

use crate::error::{Refusal, StartError};

/// The feedback store.
pub struct Store {
    db: Mutex<Connection>,
}

/// A card issued, as remembered for feedback: its uuid, service, the rule ids behind it and
/// its summary (no patient data).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Issued {
    /// The card's uuid.
    pub uuid: String,
    /// The service that issued it.
    pub service: String,
    /// What kind of card (`order:tizanidine`, `review`, `next-steps`, `not-read`).
    pub kind: String,
    /// The rules behind it.
    pub rules: Vec<String>,
}

/// One feedback item of a POST to `/cds-services/{id}/feedback`.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Item {
    /// The card's uuid.
    pub card: String,
    /// `accepted` or `overridden`.
    pub outcome: String,
    /// Why it was overridden.
    #[serde(default)]
    pub override_reason: Option<OverrideReason>,
    /// When.
    #[serde(default)]
    pub outcome_timestamp: Option<String>,
    /// Suggestions accepted.
    #[serde(default)]
    pub accepted_suggestions: Vec<serde_json::Value>,
}

/// An override reason.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct OverrideReason {
    /// The reason, as a Coding.
    #[serde(default)]
    pub reason: Option<serde_json::Value>,
    /// Free text.
    #[serde(default)]
    pub user_comment: Option<String>,
}

/// The body of a feedback POST.
#[derive(Debug, Deserialize)]
pub struct Body {
    /// The items.
    pub feedback: Vec<Item>,
}

/// One line of the report: a rule or a card kind with its outcomes.
#[derive(Debug, Clone, PartialEq)]
pub struct ReportLine {
    /// The rule id or card kind.
    pub key: String,
    /// Cards issued.
    pub issued: u64,
    /// Feedback received: accepted.
    pub accepted: u64,
    /// Feedback received: overridden.
    pub overridden: u64,
    /// The most common override reason, with its count.
    pub top_reason: Option<(String, u64)>,
}

impl Store {
    /// Opens (or creates) the store.
    pub fn open(path: &Path) -> Result<Store, StartError> {
        let err = |e: rusqlite::Error| StartError::Feedback {
            path: path.display().to_string(),
            message: e.to_string(),
        };
        let db = Connection::open(path).map_err(err)?;
        db.execute_batch(
            "PRAGMA journal_mode = WAL;
             PRAGMA synchronous = NORMAL;
             CREATE TABLE IF NOT EXISTS card (
               uuid TEXT PRIMARY KEY, service TEXT NOT NULL, kind TEXT NOT NULL,
               rules TEXT NOT NULL, first_issued TEXT NOT NULL, times INTEGER NOT NULL DEFAULT 1);
             CREATE TABLE IF NOT EXISTS feedback (
               id INTEGER PRIMARY KEY, service TEXT NOT NULL, card TEXT NOT NULL,
               outcome TEXT NOT NULL, reason_code TEXT, reason_display TEXT, comment TEXT,
               accepted_suggestions INTEGER NOT NULL, outcome_time TEXT, received TEXT NOT NULL);",
        )
        .map_err(err)?;
        Ok(Store { db: Mutex::new(db) })
    }

    /// Remembers issued cards (to relate feedback to rules).
    pub fn issued(&self, cards: &[Issued], now: &str) {
        let Ok(mut db) = self.db.lock() else { return };
        let Ok(tx) = db.transaction() else { return };
        for c in cards {
            let _ = tx.execute(
                "INSERT INTO card (uuid, service, kind, rules, first_issued) VALUES (?1, ?2, ?3, ?4, ?5)
                 ON CONFLICT(uuid) DO UPDATE SET times = times + 1",
                params![c.uuid, c.service, c.kind, c.rules.join(" "), now],
            );
        }
        let _ = tx.commit();
    }

    /// Stores one POST's feedback: one row per item.
    pub fn record(&self, service: &str, body: &Body, now: &str) -> Result<usize, Refusal> {
        for item in &body.feedback {
            if !matches!(item.outcome.as_str(), "accepted" | "overridden") {
                return Err(Refusal::bad_request(format!(
                    "feedback outcome `{}` is not `accepted` or `overridden`",
                    item.outcome
                )));
            }
            if item.card.trim().is_empty() {
                return Err(Refusal::bad_request("feedback without a card uuid"));
            }
        }
        let mut db = self
            .db
            .lock()
            .map_err(|_| Refusal::bad_request("the feedback store is unavailable"))?;
        let tx = db
            .transaction()
            .map_err(|e| Refusal::bad_request(format!("cannot store feedback: {e}")))?;
        for item in &body.feedback {
            let reason = item.override_reason.as_ref();
            let coding = reason.and_then(|r| r.reason.as_ref());
            let text = |k: &str| {
                coding
                    .and_then(|c| c.get(k))
                    .and_then(|v| v.as_str())
                    .map(str::to_owned)
            };
            tx.execute(
                "INSERT INTO feedback (service, card, outcome, reason_code, reason_display, comment,
                   accepted_suggestions, outcome_time, received) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
                params![
                    service,
                    item.card,
                    item.outcome,
                    text("code"),
                    text("display"),
                    reason.and_then(|r| r.user_comment.clone()),
                    i64::try_from(item.accepted_suggestions.len()).unwrap_or(i64::MAX),
                    item.outcome_timestamp,
                    now
                ],
            )
            .map_err(|e| Refusal::bad_request(format!("cannot store feedback: {e}")))?;
        }
        tx.commit()
            .map_err(|e| Refusal::bad_request(format!("cannot store feedback: {e}")))?;
        Ok(body.feedback.len())
    }

    /// Acceptance and override per rule and per card kind, most issued first.
    pub fn report(&self) -> Result<(Vec<ReportLine>, Vec<ReportLine>), String> {
        let db = self
            .db
            .lock()
            .map_err(|_| "the store is unavailable".to_owned())?;
        let mut cards = db
            .prepare("SELECT c.uuid, c.kind, c.rules, c.times, f.outcome, f.reason_code, f.reason_display FROM card c LEFT JOIN feedback f ON f.card = c.uuid")
            .map_err(|e| e.to_string())?;
        type Row = (
            String,
            String,
            String,
            u64,
            Option<String>,
            Option<String>,
            Option<String>,
        );
        let rows: Vec<Row> = cards
            .query_map([], |r| {
                Ok((
                    r.get(0)?,
                    r.get(1)?,
                    r.get(2)?,
                    r.get::<_, i64>(3).map(|t| u64::try_from(t).unwrap_or(0))?,
                    r.get(4)?,
                    r.get(5)?,
                    r.get(6)?,
                ))
            })
            .map_err(|e| e.to_string())?
            .collect::<Result<_, _>>()
            .map_err(|e| e.to_string())?;
        let mut by_rule: std::collections::BTreeMap<String, Acc> =
            std::collections::BTreeMap::new();
        let mut by_kind: std::collections::BTreeMap<String, Acc> =
            std::collections::BTreeMap::new();
        let mut counted: std::collections::BTreeSet<String> = std::collections::BTreeSet::new();
        for (uuid, kind, rules, times, outcome, code, display) in rows {
            let reason = code.map(|c| match display {
                Some(d) => format!("{c} ({d})"),
                None => c,
            });
            // A card's issue count is counted once, however many feedback rows it has.
            let first = counted.insert(uuid);
            let add = |a: &mut Acc| {
                if first {
                    a.issued += times;
                }
                a.add(outcome.as_deref(), reason.as_deref());
            };
            add(by_kind.entry(kind.clone()).or_default());
            for r in rules.split_whitespace() {
                add(by_rule.entry(r.to_owned()).or_default());
            }
        }
        Ok((finish(by_rule), finish(by_kind)))
    }
}

#[derive(Default)]
struct Acc {
    issued: u64,
    accepted: u64,
    overridden: u64,
    reasons: std::collections::BTreeMap<String, u64>,
}

impl Acc {
    fn add(&mut self, outcome: Option<&str>, reason: Option<&str>) {
        match outcome {
            Some("accepted") => self.accepted += 1,
            Some("overridden") => {
                self.overridden += 1;
                *self
                    .reasons
                    .entry(reason.unwrap_or("(no reason)").to_owned())
                    .or_default() += 1;
            }
            _ => {}
        }
    }
}

fn finish(map: std::collections::BTreeMap<String, Acc>) -> Vec<ReportLine> {
    let mut v: Vec<ReportLine> = map
        .into_iter()
        .map(|(key, a)| ReportLine {
            key,
            issued: a.issued,
            accepted: a.accepted,
            overridden: a.overridden,
            top_reason: a.reasons.into_iter().max_by_key(|(_, n)| *n),
        })
        .collect();
    v.sort_by(|a, b| b.issued.cmp(&a.issued).then(a.key.cmp(&b.key)));
    v
}

/// The report as text: per rule and per card kind, issued, accepted and overridden with rates.
pub fn render(by_rule: &[ReportLine], by_kind: &[ReportLine]) -> String {
    let mut out = String::new();
    let pct = |n: u64, d: u64| {
        if d == 0 {
            "-".to_owned()
        } else {
            format!("{:.0}%", 100.0 * n as f64 / d as f64)
        }
    };
    for (title, lines) in [("card kind", by_kind), ("rule", by_rule)] {
        out.push_str(&format!(
            "{title:<44} {:>7} {:>9} {:>9} {:>8} {:>8}  top override reason\n",
            "issued", "accepted", "overrode", "accept%", "overr%"
        ));
        for l in lines {
            let answered = l.accepted + l.overridden;
            out.push_str(&format!(
                "{:<44} {:>7} {:>9} {:>9} {:>8} {:>8}  {}\n",
                l.key,
                l.issued,
                l.accepted,
                l.overridden,
                pct(l.accepted, answered),
                pct(l.overridden, answered),
                l.top_reason
                    .as_ref()
                    .map_or(String::new(), |(r, n)| format!("{r} ({n})"))
            ));
        }
        out.push('\n');
    }
    out
}
