//! The five statuses a step can have (clinical spec section 5) and their precedence (R23).

use std::fmt;

use serde::{Deserialize, Serialize};

/// What the engine says about one step for one patient.
///
/// ```
/// use pathway_core::Status;
/// assert_eq!(Status::NotYet.to_string(), "not-yet");
/// // R23: excluded > continue > not-yet > caution > offer.
/// assert!(Status::Excluded.precedence() > Status::Continue.precedence());
/// assert!(Status::NotYet.precedence() > Status::Caution.precedence());
/// ```
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Status {
    /// A current therapy that is working (effective or partial): keep it.
    Continue,
    /// Recommended now; no contraindication or interaction found.
    Offer,
    /// May be offered, but something needs a clinician's review.
    Caution,
    /// Not indicated yet: a prerequisite is not met, or spasticity is controlled.
    NotYet,
    /// Must not be offered.
    Excluded,
}

impl Status {
    /// Every status, from most to least permissive.
    pub const ALL: [Status; 5] = [
        Status::Offer,
        Status::Continue,
        Status::Caution,
        Status::NotYet,
        Status::Excluded,
    ];

    /// Rank under rule R23: when several rules apply, the highest rank wins.
    pub fn precedence(self) -> u8 {
        match self {
            Status::Offer => 0,
            Status::Caution => 1,
            Status::NotYet => 2,
            Status::Continue => 3,
            Status::Excluded => 4,
        }
    }

    /// How much the status lets a clinician do without further review; used to state safety
    /// properties such as "an unknown fact never makes a step more permissive".
    /// `continue` and `offer` rank alike: both mean "go ahead".
    ///
    /// ```
    /// use pathway_core::Status;
    /// assert!(Status::Offer.permissiveness() > Status::Caution.permissiveness());
    /// assert!(Status::Caution.permissiveness() > Status::NotYet.permissiveness());
    /// assert!(Status::NotYet.permissiveness() > Status::Excluded.permissiveness());
    /// ```
    pub fn permissiveness(self) -> u8 {
        match self {
            Status::Excluded => 0,
            Status::NotYet => 1,
            Status::Caution => 2,
            Status::Continue | Status::Offer => 3,
        }
    }

    /// What the status says about now: `excluded` and `not-yet` both say "not offered now", so
    /// both read as `not-yet`. A fact is missing for a step only where some value of it could
    /// change this (R24).
    ///
    /// ```
    /// use pathway_core::Status;
    /// assert_eq!(Status::Excluded.now(), Status::NotYet);
    /// assert_eq!(Status::Caution.now(), Status::Caution);
    /// ```
    pub fn now(self) -> Status {
        match self {
            Status::Excluded => Status::NotYet,
            s => s,
        }
    }

    /// Whether the vignette contract counts the status as offered (continue, offer, caution).
    pub fn is_offered(self) -> bool {
        matches!(self, Status::Continue | Status::Offer | Status::Caution)
    }

    /// The kebab-case name used in output.
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Continue => "continue",
            Status::Offer => "offer",
            Status::Caution => "caution",
            Status::NotYet => "not-yet",
            Status::Excluded => "excluded",
        }
    }
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn precedence_is_a_total_order_matching_r23() {
        let order = [
            Status::Excluded,
            Status::Continue,
            Status::NotYet,
            Status::Caution,
            Status::Offer,
        ];
        for w in order.windows(2) {
            assert!(w[0].precedence() > w[1].precedence(), "{:?}", w);
        }
    }

    #[test]
    fn offered_matches_the_vignette_contract() {
        let offered: Vec<_> = Status::ALL.into_iter().filter(|s| s.is_offered()).collect();
        assert_eq!(offered, [Status::Offer, Status::Continue, Status::Caution]);
    }
}
