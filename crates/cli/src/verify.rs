//! `pathway verify`: safety properties checked on a rule set over generated patients, from the
//! rule set's own fact catalogue. The properties, and the shrinking of a counterexample, are
//! `pathway-testkit`'s (what a Rust integrator property-tests with); this prints them and
//! writes a counterexample as a FHIR Bundle, which needs the FHIR crate the testkit does not
//! depend on.

use std::path::Path;

use pathway_rules::{PatientGenerator, RuleSet};
use pathway_testkit::invariants::{self, Property};

use crate::common::{self, Fail};

pub fn run(
    ruleset: &Path,
    valuesets: Option<&Path>,
    patients: usize,
    seed: u64,
) -> Result<(), Fail> {
    let src = std::fs::read_to_string(ruleset)
        .map_err(|e| Fail::input(format!("{}: {e}", ruleset.display())))?;
    let rs = RuleSet::from_toml(&ruleset.display().to_string(), &src)
        .map_err(|e| Fail::input(e.to_string()))?;
    let mut report = format!(
        "verifying rule set {} {} on {patients} generated patients (seed {seed})\n",
        rs.stamp().id,
        rs.stamp().version
    );
    let (mut held, mut failed) = (0usize, 0usize);
    for property in Property::ALL {
        let (name, text) = (property.name(), property.description());
        let found = PatientGenerator::new(&rs, seed)
            .take(patients)
            .find(|p| property.check(&rs, p).is_err());
        let Some(p) = found else {
            held += 1;
            report.push_str(&format!("ok   {name}: {text}\n"));
            continue;
        };
        failed += 1;
        let small = invariants::shrink(&rs, p, property);
        report.push_str(&format!("FAIL {name}: {text}\n"));
        if let Err(b) = property.check(&rs, &small) {
            report.push_str(&format!("     {}\n", b.observed));
            if !b.rules.is_empty() {
                report.push_str(&format!("     rules involved: {}\n", b.rules.join(", ")));
            }
        }
        report.push_str(&format!(
            "     counterexample (profile):\n{}\n",
            serde_json::to_string_pretty(&small).unwrap_or_default()
        ));
        let vs = match valuesets {
            Some(f) => pathway_fhir::ValueSets::load(f, &rs).ok(),
            None => pathway_fhir::ValueSets::ms_spasticity(&rs).ok(),
        };
        if let Some(vs) = vs {
            let reader = pathway_fhir::Reader::new(&rs, vs);
            let bundle = pathway_fhir::to_bundle(&reader, &small, "counterexample");
            report.push_str(&format!(
                "     counterexample (FHIR Bundle):\n{}\n",
                serde_json::to_string(&bundle).unwrap_or_default()
            ));
        }
    }
    report.push_str(&format!("\n{held} passed, {failed} failed"));
    common::print(&report)?;
    if failed > 0 {
        return Err(Fail::input(String::new()));
    }
    Ok(())
}
