//! The one integration-test binary (one link, not one per file).

mod support;
mod vignettes;
