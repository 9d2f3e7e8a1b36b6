//! A loaded, validated and compiled rule set: [`RuleSet`], assembled from the compiler's
//! [`Parts`] and the file they came from; loading, the accessors, the content stamp and the
//! lint warnings (both found on demand). Evaluating one is `evaluate/`'s.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::{Arc, OnceLock};

use pathway_core::Ladder;

use crate::compile::compiler::{Compiled, Parts, compile};
use crate::compile::names::natural_cmp;
use crate::error::{Diagnostic, ErrorKind, LoadError};
use crate::language::file::Document;
use crate::model::{Assertion, Derived, FactDef, Rule, Source, Stamp};

/// A validated, compiled rule set: a ladder, a fact catalogue, derived facts and rules.
///
/// Load it once, evaluate many patients with [`RuleSet::evaluate`].
///
/// ```
/// use pathway_rules::RuleSet;
/// let rs = RuleSet::ms_spasticity().unwrap();
/// assert_eq!(rs.stamp().id, "ms-spasticity");
/// assert_eq!(rs.ladder().len(), 15);
/// assert!(rs.rules().all(|r| r.sources().count() > 0));
/// ```
#[derive(Debug, Clone)]
pub struct RuleSet {
    /// Id, version and content hash, the hash computed the first time the stamp is asked for
    /// (loading and evaluating do not need it; it costs about a tenth of a load).
    stamp: OnceLock<Stamp>,
    pub(crate) title: String,
    pub(crate) tier_names: Vec<String>,
    pub(crate) ladder: Ladder,
    pub(crate) sources: BTreeMap<String, Source>,
    pub(crate) facts: Vec<FactDef>,
    pub(crate) medications: BTreeMap<String, String>,
    pub(crate) derived: Vec<Derived>,
    pub(crate) applicability: Rule,
    pub(crate) rules: Vec<Rule>,
    pub(crate) assertions: Vec<Assertion>,
    pub(crate) compiled: Compiled,
    /// Lint warnings, found the first time they are asked for (loading does not need them).
    warnings: OnceLock<Vec<Diagnostic>>,
    /// The file name and text, to locate warnings.
    origin: Option<Arc<(String, String)>>,
    doc: Document,
}

impl RuleSet {
    /// The rule set's declared assertions (`[[assert]]`), in file order.
    ///
    /// ```
    /// let rs = pathway_rules::RuleSet::ms_spasticity().unwrap();
    /// assert!(rs.assertions().iter().any(|a| a.id() == "A.tizanidine.strong-cyp1a2-inhibitor"));
    /// ```
    pub fn assertions(&self) -> &[Assertion] {
        &self.assertions
    }
}

/// The shipped MS spasticity rule set, as text.
pub const MS_SPASTICITY_TOML: &str = include_str!("../../../fixtures/rulesets/ms-spasticity.toml");

impl RuleSet {
    /// The MS spasticity rule set shipped in `fixtures/rulesets/ms-spasticity.toml`, built in.
    pub fn ms_spasticity() -> Result<RuleSet, LoadError> {
        RuleSet::from_toml("fixtures/rulesets/ms-spasticity.toml", MS_SPASTICITY_TOML)
    }

    /// Reads and loads a rule-set file.
    ///
    /// ```
    /// let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../fixtures/rulesets/ms-spasticity.toml");
    /// let rs = pathway_rules::RuleSet::load(path).unwrap();
    /// assert_eq!(rs.stamp().id, "ms-spasticity");
    /// let err = pathway_rules::RuleSet::load("/no/such/file.toml").unwrap_err();
    /// assert!(err.to_string().contains("/no/such/file.toml"));
    /// ```
    pub fn load(path: impl AsRef<Path>) -> Result<RuleSet, LoadError> {
        let path = path.as_ref();
        let name = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|e| {
            LoadError::new(
                &name,
                vec![
                    Diagnostic::new(ErrorKind::Syntax, format!("cannot read the file: {e}"))
                        .locate(&name, ""),
                ],
            )
        })?;
        RuleSet::from_toml(&name, &text)
    }

    /// Loads a rule set from TOML text; `file` names it in diagnostics.
    ///
    /// Every problem found is reported at once, with line and column.
    pub fn from_toml(file: &str, text: &str) -> Result<RuleSet, LoadError> {
        let doc: Document = toml::from_str(text).map_err(|e| {
            let mut d = Diagnostic::new(ErrorKind::Syntax, e.message().trim_end());
            if let Some(span) = e.span() {
                d = d.at(span);
            }
            LoadError::new(file, vec![d.locate(file, text)])
        })?;
        let parts = compile(text, &doc).map_err(|ds| {
            let lines = crate::error::Lines::of(text);
            LoadError::new(
                file,
                ds.into_iter().map(|d| d.locate_in(file, &lines)).collect(),
            )
        })?;
        Ok(RuleSet::assemble(
            parts,
            doc,
            Arc::new((file.to_owned(), text.to_owned())),
        ))
    }

    /// A rule set from the compiler's parts and the file they came from.
    fn assemble(parts: Parts, doc: Document, origin: Arc<(String, String)>) -> RuleSet {
        let Parts {
            title,
            tier_names,
            ladder,
            sources,
            facts,
            medications,
            derived,
            applicability,
            rules,
            assertions,
            compiled,
        } = parts;
        RuleSet {
            stamp: OnceLock::new(),
            title,
            tier_names,
            ladder,
            sources,
            facts,
            medications,
            derived,
            applicability,
            rules,
            assertions,
            compiled,
            warnings: OnceLock::new(),
            origin: Some(origin),
            doc,
        }
    }

    /// The rule set as TOML text; loading it again gives an equal rule set.
    ///
    /// ```
    /// use pathway_rules::RuleSet;
    /// let rs = RuleSet::ms_spasticity().unwrap();
    /// let again = RuleSet::from_toml("again.toml", &rs.to_toml()).unwrap();
    /// assert_eq!(rs.stamp(), again.stamp());
    /// ```
    pub fn to_toml(&self) -> String {
        toml::to_string(&self.doc).unwrap_or_default()
    }

    /// Id, version and content hash.
    ///
    /// The hash is computed the first time the stamp is asked for, and kept.
    pub fn stamp(&self) -> &Stamp {
        self.stamp.get_or_init(|| Stamp {
            id: self.doc.ruleset.id.clone(),
            version: self.doc.ruleset.version.clone(),
            hash: hash(&self.doc),
        })
    }

    /// The rule set's id (without computing the stamp's hash).
    pub(crate) fn id(&self) -> &str {
        &self.doc.ruleset.id
    }

    /// The title.
    pub fn title(&self) -> &str {
        &self.title
    }

    /// The display name of a tier (`Tier 2` when the rule set names none).
    ///
    /// ```
    /// let rs = pathway_rules::RuleSet::ms_spasticity().unwrap();
    /// assert_eq!(rs.tier_name(2), "Oral drugs");
    /// assert_eq!(rs.tier_name(9), "Tier 9");
    /// ```
    pub fn tier_name(&self, tier: u8) -> String {
        self.tier_names
            .get(usize::from(tier))
            .cloned()
            .unwrap_or_else(|| format!("Tier {tier}"))
    }

    /// The ladder.
    pub fn ladder(&self) -> &Ladder {
        &self.ladder
    }

    /// The rules, in natural order of their ids (`R2` before `R15`).
    pub fn rules(&self) -> impl Iterator<Item = &Rule> {
        self.rules.iter()
    }

    /// The rule with this id.
    pub fn rule(&self, id: &str) -> Option<&Rule> {
        self.rules
            .binary_search_by(|r| natural_cmp(&r.id, id))
            .ok()
            .and_then(|i| self.rules.get(i))
    }

    /// The applicability rule (R1): where it does not hold, every step is `not-yet`.
    pub fn applicability(&self) -> &Rule {
        &self.applicability
    }

    /// The fact catalogue, sorted by id.
    pub fn facts(&self) -> &[FactDef] {
        &self.facts
    }

    /// A catalogue fact.
    pub fn fact(&self, id: &str) -> Option<&FactDef> {
        self.compiled
            .fact_ix
            .get(id)
            .and_then(|&i| self.facts.get(usize::from(i)))
    }

    /// Derived facts, sorted by id.
    pub fn derived(&self) -> &[Derived] {
        &self.derived
    }

    /// Declared medication classes with their descriptions.
    pub fn medications(&self) -> &BTreeMap<String, String> {
        &self.medications
    }

    /// Cited sources by key.
    pub fn sources(&self) -> &BTreeMap<String, Source> {
        &self.sources
    }

    /// Lint warnings: conditions that can never hold, steps no rule can offer, rules that
    /// exclude and offer a step on the same condition. The rule set is usable either way.
    ///
    /// They are found the first time they are asked for (as `pathway check` does), not while
    /// loading.
    ///
    /// ```
    /// let rs = pathway_rules::RuleSet::ms_spasticity().unwrap();
    /// assert!(rs.warnings().is_empty());
    /// ```
    pub fn warnings(&self) -> &[Diagnostic] {
        self.warnings.get_or_init(|| {
            let c = &self.compiled;
            let found = crate::compile::lint::lint(
                &self.ladder,
                &self.rules,
                &c.step_rules,
                &c.derived,
                &self.doc,
            );
            match self.origin.as_deref() {
                Some((file, text)) => {
                    let lines = crate::error::Lines::of(text);
                    found
                        .into_iter()
                        .map(|d| d.locate_in(file, &lines))
                        .collect()
                }
                None => found,
            }
        })
    }
}

fn hash(doc: &Document) -> String {
    // The canonical content, serialised part by part into one buffer (rules in id order, so
    // the order of rules in the file does not change the hash), then hashed at once.
    let mut buf = Vec::with_capacity(96 * 1024);
    let parts: [&dyn erased::Part; 8] = [
        &doc.ruleset,
        &doc.sources,
        &doc.medications,
        &doc.applicability,
        &doc.steps,
        &doc.edges,
        &doc.facts,
        &doc.derived,
    ];
    for p in parts {
        p.write(&mut buf);
    }
    let mut rules: Vec<&crate::language::file::RuleDoc> = doc.rules.iter().collect();
    rules.sort_by(|a, b| a.id.get_ref().cmp(b.id.get_ref()));
    for r in rules {
        erased::Part::write(r, &mut buf);
    }
    format!("blake3:{}", blake3::hash(&buf).to_hex())
}

/// Serialising heterogeneous parts into one buffer.
mod erased {
    pub trait Part {
        fn write(&self, buf: &mut Vec<u8>);
    }

    impl<T: serde::Serialize> Part for T {
        fn write(&self, buf: &mut Vec<u8>) {
            // Writing to a Vec cannot fail; a serialisation error would only drop bytes.
            let _ = serde_json::to_writer(&mut *buf, self);
            buf.push(b'\n');
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_stamp_is_computed_once_on_first_use_and_is_the_hash_of_the_canonical_document() {
        let rs = RuleSet::ms_spasticity().unwrap();
        assert!(rs.stamp.get().is_none(), "loading does not hash");
        let before = rs.clone();
        let stamp = rs.stamp().clone();
        assert_eq!(stamp.hash, hash(&rs.doc));
        assert!(stamp.hash.starts_with("blake3:") && stamp.hash.len() == 7 + 64);
        assert_eq!(
            (&*stamp.id, &*stamp.version),
            (rs.id(), &*rs.doc.ruleset.version)
        );
        // Kept, and a clone taken before the first use computes the same stamp.
        assert!(std::ptr::eq(rs.stamp(), rs.stamp()));
        assert_eq!(before.stamp(), &stamp);
    }
}
