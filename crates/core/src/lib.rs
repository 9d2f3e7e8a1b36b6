//! # pathway-core
//!
//! The vocabulary every other Pathway crate speaks: the treatment ladder as a validated
//! [`petgraph`] state graph ([`Ladder`]), the patient [`Profile`] with unknown as a state of its
//! own, step [`Outcome`]s and the five [`Status`]es of the output contract.
//!
//! Architecture invariant: this crate knows nothing about file formats, FHIR or HTTP, and does
//! no I/O.
//!
//! ```
//! use pathway_core::{EdgeKind, Ladder, Outcome, OutcomeSet, Step, StepKind, Transition};
//!
//! let ladder = Ladder::builder()
//!     .step(Step::new("stretching-program", 1, StepKind::Therapy, "Stretching"))
//!     .step(Step::new("baclofen", 2, StepKind::Drug, "Baclofen, oral"))
//!     .entry("stretching-program")
//!     .edge(
//!         "stretching-program",
//!         "baclofen",
//!         Transition::escalation([Outcome::Partial, Outcome::Ineffective].into_iter().collect(), false),
//!     )
//!     .build()
//!     .expect("a valid ladder");
//! let next: Vec<_> = ladder.next_on("stretching-program", Outcome::Ineffective).collect();
//! assert_eq!(next[0].id.as_str(), "baclofen");
//! ```
#![forbid(unsafe_code)]

mod ladder;
mod outcome;
mod profile;
mod status;

pub use ladder::{
    Code, EdgeKind, Ladder, LadderBuilder, LadderError, Step, StepId, StepKind, Transition,
};
pub use outcome::{Outcome, OutcomeSet};
pub use profile::{Date, FactValue, Interval, Profile, Sex, StepRecord};
pub use status::Status;
