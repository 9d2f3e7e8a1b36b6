//! Outcomes of a tried step and sets of them.

use std::fmt;

use serde::{Deserialize, Serialize};

/// The latest recorded outcome of a step (clinical spec section 3.4, D1).
///
/// ```
/// use pathway_core::Outcome;
/// let o: Outcome = serde_json::from_str("\"not-tolerated\"").unwrap();
/// assert_eq!(o, Outcome::NotTolerated);
/// assert_eq!(o.to_string(), "not-tolerated");
/// ```
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Outcome {
    /// The step controls spasticity.
    Effective,
    /// Some benefit, not full control (also: a current step with no outcome yet).
    Partial,
    /// No useful benefit after an adequate trial.
    Ineffective,
    /// Stopped for adverse effects.
    NotTolerated,
    /// The person declined it.
    Declined,
}

impl Outcome {
    /// Every outcome, in declaration order.
    pub const ALL: [Outcome; 5] = [
        Outcome::Effective,
        Outcome::Partial,
        Outcome::Ineffective,
        Outcome::NotTolerated,
        Outcome::Declined,
    ];

    /// The kebab-case name used in files and output.
    ///
    /// ```
    /// assert_eq!(pathway_core::Outcome::Declined.as_str(), "declined");
    /// ```
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Effective => "effective",
            Outcome::Partial => "partial",
            Outcome::Ineffective => "ineffective",
            Outcome::NotTolerated => "not-tolerated",
            Outcome::Declined => "declined",
        }
    }

    /// Parses a kebab-case name.
    ///
    /// ```
    /// use pathway_core::Outcome;
    /// assert_eq!(Outcome::parse("partial"), Some(Outcome::Partial));
    /// assert_eq!(Outcome::parse("better"), None);
    /// ```
    pub fn parse(s: &str) -> Option<Outcome> {
        Outcome::ALL.into_iter().find(|o| o.as_str() == s)
    }

    fn bit(self) -> u8 {
        1 << (self as u8)
    }
}

impl fmt::Display for Outcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A set of [`Outcome`]s, for example the outcomes on which an escalation edge is taken.
///
/// Serialises as a list in declaration order.
///
/// ```
/// use pathway_core::{Outcome, OutcomeSet};
/// let set: OutcomeSet = [Outcome::Partial, Outcome::Ineffective].into_iter().collect();
/// assert!(set.contains(Outcome::Partial));
/// assert!(!set.contains(Outcome::Declined));
/// assert_eq!(serde_json::to_string(&set).unwrap(), r#"["partial","ineffective"]"#);
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct OutcomeSet(u8);

impl OutcomeSet {
    /// The empty set.
    pub const EMPTY: OutcomeSet = OutcomeSet(0);

    /// D4 "unavailable": tried without full control, or cannot be used.
    pub const UNAVAILABLE: OutcomeSet = OutcomeSet(0b11110);

    /// D9 "failed" (for surgery): partial does not count.
    pub const FAILED: OutcomeSet = OutcomeSet(0b11100);

    /// Whether `o` is in the set.
    pub fn contains(self, o: Outcome) -> bool {
        self.0 & o.bit() != 0
    }

    /// The set with `o` added.
    #[must_use]
    pub fn with(self, o: Outcome) -> OutcomeSet {
        OutcomeSet(self.0 | o.bit())
    }

    /// Whether the set is empty.
    pub fn is_empty(self) -> bool {
        self.0 == 0
    }

    /// The members, in declaration order.
    pub fn iter(self) -> impl Iterator<Item = Outcome> {
        Outcome::ALL.into_iter().filter(move |o| self.contains(*o))
    }
}

impl FromIterator<Outcome> for OutcomeSet {
    fn from_iter<I: IntoIterator<Item = Outcome>>(iter: I) -> Self {
        iter.into_iter().fold(OutcomeSet::EMPTY, OutcomeSet::with)
    }
}

impl Serialize for OutcomeSet {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(self.iter())
    }
}

#[cfg(feature = "schema")]
impl schemars::JsonSchema for OutcomeSet {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "OutcomeSet".into()
    }

    fn json_schema(generator: &mut schemars::SchemaGenerator) -> schemars::Schema {
        <Vec<Outcome>>::json_schema(generator)
    }
}

impl<'de> Deserialize<'de> for OutcomeSet {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Ok(Vec::<Outcome>::deserialize(d)?.into_iter().collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for o in Outcome::ALL {
            assert_eq!(Outcome::parse(o.as_str()), Some(o));
        }
    }

    #[test]
    fn derived_sets_match_the_spec() {
        let unavailable: Vec<_> = OutcomeSet::UNAVAILABLE.iter().collect();
        assert_eq!(
            unavailable,
            [
                Outcome::Partial,
                Outcome::Ineffective,
                Outcome::NotTolerated,
                Outcome::Declined
            ]
        );
        assert!(!OutcomeSet::FAILED.contains(Outcome::Partial));
        assert!(OutcomeSet::FAILED.contains(Outcome::Declined));
    }
}
