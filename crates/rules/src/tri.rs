//! Three-valued (Kleene) logic: a condition over an unknown fact is itself unknown.

/// True, false or unknown.
///
/// `and` is the minimum and `or` the maximum under `False < Unknown < True`.
///
/// ```
/// use pathway_rules::Tri;
/// assert_eq!(Tri::True.and(Tri::Unknown), Tri::Unknown);
/// assert_eq!(Tri::False.and(Tri::Unknown), Tri::False);
/// assert_eq!(Tri::True.or(Tri::Unknown), Tri::True);
/// assert_eq!(Tri::Unknown.not(), Tri::Unknown);
/// ```
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "lowercase")]
pub enum Tri {
    /// Definitely false.
    False,
    /// Depends on a fact that is not known.
    Unknown,
    /// Definitely true.
    True,
}

impl Tri {
    /// Kleene conjunction.
    #[must_use]
    pub fn and(self, other: Tri) -> Tri {
        self.min(other)
    }

    /// Kleene disjunction.
    #[must_use]
    pub fn or(self, other: Tri) -> Tri {
        self.max(other)
    }

    /// Kleene negation.
    #[allow(clippy::should_implement_trait)]
    #[must_use]
    pub fn not(self) -> Tri {
        match self {
            Tri::False => Tri::True,
            Tri::Unknown => Tri::Unknown,
            Tri::True => Tri::False,
        }
    }
}

impl From<bool> for Tri {
    fn from(b: bool) -> Tri {
        if b { Tri::True } else { Tri::False }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn tri() -> impl Strategy<Value = Tri> {
        prop_oneof![Just(Tri::False), Just(Tri::Unknown), Just(Tri::True)]
    }

    proptest! {
        #[test]
        fn de_morgan(a in tri(), b in tri()) {
            prop_assert_eq!(a.and(b).not(), a.not().or(b.not()));
            prop_assert_eq!(a.or(b).not(), a.not().and(b.not()));
        }

        #[test]
        fn agrees_with_bool_on_known_values(a: bool, b: bool) {
            prop_assert_eq!(Tri::from(a).and(Tri::from(b)), Tri::from(a && b));
            prop_assert_eq!(Tri::from(a).or(Tri::from(b)), Tri::from(a || b));
        }

        /// Replacing an operand with Unknown moves the result to Unknown or leaves it:
        /// unknown never flips a definite answer.
        #[test]
        fn unknown_is_sound(a in tri(), b in tri()) {
            for (x, y) in [(a.and(b), Tri::Unknown.and(b)), (a.or(b), Tri::Unknown.or(b))] {
                prop_assert!(y == x || y == Tri::Unknown);
            }
        }
    }
}
