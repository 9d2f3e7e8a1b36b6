//! Loads the shipped MS spasticity rule set and the demo patients in `fixtures/patients`,
//! and prints for each a readable summary grouped by tier.
//!
//! Run with `cargo run --example pathway`.

use std::error::Error;
use std::path::Path;

use pathway::report::TextReport;
use pathway::{Profile, RuleSet};

fn main() -> Result<(), Box<dyn Error>> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let rs = RuleSet::load(root.join("fixtures/rulesets/ms-spasticity.toml"))?;
    println!(
        "Pathway: {} (rule set {} {}, {} steps, {} rules)\n",
        rs.title(),
        rs.stamp().id,
        rs.stamp().version,
        rs.ladder().len(),
        rs.rules().count()
    );
    let mut files: Vec<_> = std::fs::read_dir(root.join("fixtures/patients"))?
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .collect();
    files.sort();
    let colour = std::env::var_os("NO_COLOR").is_none()
        && std::io::IsTerminal::is_terminal(&std::io::stdout());
    for path in files {
        let text = std::fs::read_to_string(&path)?;
        let profile: Profile =
            serde_json::from_str(&text).map_err(|e| format!("{}: {e}", path.display()))?;
        let rec = rs.evaluate(&profile)?;
        let name = path
            .file_stem()
            .map(|s| s.to_string_lossy())
            .unwrap_or_default();
        println!(
            "=== {name}: {} years, {} ===",
            profile.age,
            profile.sex.as_str()
        );
        println!("{}", TextReport::new(&rs).colour(colour).render(&rec));
    }
    Ok(())
}
