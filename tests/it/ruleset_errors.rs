//! Corrupted rule sets: every problem is a typed diagnostic naming the rule, the field and the
//! line; never a panic.

use pathway::rules::{Diagnostic, ErrorKind, LoadError, MS_SPASTICITY_TOML, RuleSet};
use proptest::prelude::*;

use crate::support::only;

fn load(text: &str) -> Result<RuleSet, LoadError> {
    RuleSet::from_toml("ms.toml", text)
}

/// Replaces the first occurrence of `from` (which must exist) and loads the result.
fn mutate(from: &str, to: &str) -> (String, LoadError) {
    assert!(
        MS_SPASTICITY_TOML.contains(from),
        "fixture no longer contains {from:?}"
    );
    let text = MS_SPASTICITY_TOML.replacen(from, to, 1);
    let err = load(&text).expect_err("the mutation should be rejected");
    (text, err)
}

/// The diagnostic's line and column point at `needle` in the mutated text.
fn points_at(text: &str, d: &Diagnostic, needle: &str) {
    let loc = d.location().expect("a location");
    let line = text.lines().nth(loc.line - 1).unwrap();
    assert_eq!(d.line_text(), Some(line));
    let col = line
        .find(needle)
        .unwrap_or_else(|| panic!("{needle:?} not on line {line:?}"));
    assert_eq!(loc.column, col + 1, "{d}");
}

#[test]
fn the_shipped_rule_set_loads_without_warnings() {
    let rs = load(MS_SPASTICITY_TOML).unwrap();
    assert!(rs.warnings().is_empty(), "{:?}", rs.warnings());
}

#[test]
fn unknown_step_in_a_rule() {
    let (text, err) = mutate(
        r#"steps = ["tizanidine", "dantrolene"]"#,
        r#"steps = ["tizanidin", "dantrolene"]"#,
    );
    let d = only(&err);
    assert_eq!(d.kind(), ErrorKind::UnknownStep);
    assert_eq!(d.rule_id(), Some("R8.second-line"));
    assert_eq!(d.field_name(), Some("steps"));
    points_at(&text, d, "\"tizanidin\"");
    assert!(d.to_string().starts_with("ms.toml:"), "{d}");
}

#[test]
fn misspelt_fact_names_the_rule_field_and_column() {
    let (text, err) = mutate(
        r#"when = "epilepsy"
text = "Epilepsy: baclofen"#,
        r#"when = "epilepsi"
text = "Epilepsy: baclofen"#,
    );
    let d = only(&err);
    assert_eq!(d.kind(), ErrorKind::UnknownFact);
    assert_eq!(d.rule_id(), Some("R20.baclofen.epilepsy"));
    assert_eq!(d.field_name(), Some("when"));
    points_at(&text, d, "epilepsi\"");
}

#[test]
fn type_mismatches() {
    for (from, to, needle) in [
        (
            r#"when = "pregnant"
text = "Pregnancy: only"#,
            r#"when = "pregnant < 3"
text = "Pregnancy: only"#,
            "3\"",
        ),
        (
            r#"when = "imprecise(egfr) and egfr < 25""#,
            r#"when = "imprecise(egfr) and egfr = focal""#,
            "focal",
        ),
        (
            r#"when = "hepatic-impairment"
text = "Hepatic impairment: moderate"#,
            r#"when = "spasticity-distribution"
text = "Hepatic impairment: moderate"#,
            "spasticity-distribution\"",
        ),
    ] {
        let (text, err) = mutate(from, to);
        let d = only(&err);
        assert_eq!(d.kind(), ErrorKind::TypeMismatch, "{d}");
        points_at(&text, d, needle);
    }
}

#[test]
fn unknown_code_value_lists_the_allowed_ones() {
    let (_, err) = mutate(
        "spasticity-distribution = focal or",
        "spasticity-distribution = focall or",
    );
    let d = only(&err);
    assert_eq!(d.kind(), ErrorKind::UnknownValue);
    assert!(
        d.message()
            .contains("allowed: focal, multifocal, generalized"),
        "{d}"
    );
}

#[test]
fn duplicate_rule_id_points_at_the_second() {
    let (text, err) = mutate(
        r#"id = "R20.baclofen.psychosis""#,
        r#"id = "R20.baclofen.epilepsy""#,
    );
    let d = only(&err);
    assert_eq!(d.kind(), ErrorKind::Duplicate);
    assert_eq!(d.rule_id(), Some("R20.baclofen.epilepsy"));
    let second = text.rfind(r#"id = "R20.baclofen.epilepsy""#).unwrap();
    let first = text.find(r#"id = "R20.baclofen.epilepsy""#).unwrap();
    assert!(first < second);
    assert_eq!(
        d.location().unwrap().line,
        text[..second].lines().count() + 1
    );
}

#[test]
fn escalation_cycle_is_a_ladder_error() {
    let text = format!(
        "{MS_SPASTICITY_TOML}\n[[edge]]\nfrom = [\"tizanidine\"]\nto = [\"baclofen\"]\nkind = \"escalation\"\non = [\"ineffective\"]\n"
    );
    let err = load(&text).unwrap_err();
    let d = only(&err);
    assert_eq!(d.kind(), ErrorKind::Ladder);
    assert!(d.message().contains("cycle"), "{d}");
    assert!(
        d.message().contains("baclofen") && d.message().contains("tizanidine"),
        "{d}"
    );
}

#[test]
fn a_tier_that_goes_backwards() {
    let text = format!(
        "{MS_SPASTICITY_TOML}\n[[edge]]\nfrom = [\"rhizotomy\"]\nto = [\"massage\"]\nkind = \"sequence\"\n"
    );
    let d = load(&text).unwrap_err().diagnostics()[0].clone();
    assert_eq!(d.kind(), ErrorKind::Ladder);
    assert!(d.message().contains("goes down a tier"), "{d}");
}

#[test]
fn unreachable_step() {
    let text = MS_SPASTICITY_TOML.replacen(
        "[[step]]\nid = \"tenotomy\"",
        "[[step]]\nid = \"island\"\ntier = 4\nkind = \"surgery\"\nname = \"Island\"\n\n[[step]]\nid = \"tenotomy\"",
        1,
    );
    let err = load(&text).unwrap_err();
    let ds: Vec<_> = err
        .diagnostics()
        .iter()
        .filter(|d| d.kind() == ErrorKind::Ladder)
        .collect();
    assert!(
        ds.iter()
            .any(|d| d.message().contains("`island` cannot be reached")),
        "{err}"
    );
}

#[test]
fn missing_and_unknown_sources() {
    let (_, err) = mutate(r#"source = ["SPC-baclofen"]"#, "source = []");
    assert_eq!(only(&err).kind(), ErrorKind::MissingSource);
    let (_, err) = mutate(
        r#"source = ["SPC-baclofen"]"#,
        r#"source = ["SPC-bacloffen"]"#,
    );
    assert_eq!(only(&err).kind(), ErrorKind::UnknownSource);
}

#[test]
fn gate_fields_and_if_unknown_are_checked() {
    let (_, err) = mutate(r#"requires = "exhausted""#, r#"when = "exhausted""#);
    assert_eq!(only(&err).kind(), ErrorKind::InvalidRule);
    let (_, err) = mutate(
        r#"when = "hepatic-impairment"
text = "Active hepatic"#,
        r#"when = "hepatic-impairment"
if-unknown = "ignore"
text = "Active hepatic"#,
    );
    let d = only(&err);
    assert_eq!(d.kind(), ErrorKind::InvalidRule);
    assert!(
        d.message().contains("exclusions may only say `caution`"),
        "{d}"
    );
}

#[test]
fn exclusions_may_not_read_availability() {
    let (_, err) = mutate(
        r#"when = "hepatic-impairment"
text = "Active hepatic"#,
        r#"when = "hepatic-impairment or unavailable(baclofen)"
text = "Active hepatic"#,
    );
    assert_eq!(only(&err).kind(), ErrorKind::Circular);
}

#[test]
fn derived_facts_may_not_depend_on_themselves() {
    let (_, err) = mutate(
        r#"when = "functional-impact or spasticity-pain or night-spasms""#,
        r#"when = "functional-impact or troublesome""#,
    );
    assert_eq!(only(&err).kind(), ErrorKind::Circular);
}

#[test]
fn unknown_fields_and_bad_toml_are_syntax_errors_with_a_line() {
    let (text, err) = mutate(
        "effect = \"exclude\"\nwhen = \"fever\"",
        "efect = \"exclude\"\nwhen = \"fever\"",
    );
    let d = only(&err);
    assert_eq!(d.kind(), ErrorKind::Syntax);
    assert!(d.message().contains("efect"), "{d}");
    let line = text.lines().position(|l| l.starts_with("efect")).unwrap() + 1;
    assert_eq!(d.location().unwrap().line, line);
    let err = load("[ruleset\nid = 1").unwrap_err();
    assert_eq!(only(&err).kind(), ErrorKind::Syntax);
}

#[test]
fn several_problems_are_reported_at_once_in_file_order() {
    let text = MS_SPASTICITY_TOML
        .replacen(r#"when = "epilepsy""#, r#"when = "epilepsi""#, 1)
        .replacen(r#"source = ["SPC-baclofen"]"#, r#"source = ["NOPE"]"#, 1);
    let err = load(&text).unwrap_err();
    assert!(err.diagnostics().len() >= 2, "{err}");
    let lines: Vec<_> = err
        .diagnostics()
        .iter()
        .map(|d| d.location().unwrap().line)
        .collect();
    assert!(lines.windows(2).all(|w| w[0] <= w[1]));
    assert!(
        err.to_string().starts_with("rule set ms.toml has 2 errors"),
        "{err}"
    );
}

/// The `[[rule]]` blocks of the shipped file, as (start, end) byte ranges.
fn rule_ranges() -> Vec<(usize, usize)> {
    let starts: Vec<usize> = MS_SPASTICITY_TOML
        .match_indices("[[rule]]\n")
        .map(|(i, _)| i)
        .collect();
    starts
        .iter()
        .enumerate()
        .map(|(k, &s)| {
            (
                s,
                starts
                    .get(k + 1)
                    .copied()
                    .unwrap_or(MS_SPASTICITY_TOML.len()),
            )
        })
        .collect()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    /// An unknown step anywhere in a rule's `steps` is named, with its rule.
    #[test]
    fn any_unknown_step_is_named(pick: usize) {
        let ranges = rule_ranges();
        let (s, e) = ranges[pick % ranges.len()];
        let block = &MS_SPASTICITY_TOML[s..e];
        prop_assume!(block.contains("\nsteps = [\""));
        let id = block.split('"').nth(1).unwrap();
        let broken = block.replacen("steps = [\"", "steps = [\"no-such-step\", \"", 1);
        let text = format!("{}{}{}", &MS_SPASTICITY_TOML[..s], broken, &MS_SPASTICITY_TOML[e..]);
        let err = load(&text).unwrap_err();
        let d = only(&err);
        prop_assert_eq!(d.kind(), ErrorKind::UnknownStep);
        prop_assert_eq!(d.rule_id(), Some(id));
        prop_assert!(d.message().contains("no-such-step"));
    }

    /// Duplicating any rule is a duplicate-id error naming it.
    #[test]
    fn any_duplicate_rule_is_named(pick: usize) {
        let ranges = rule_ranges();
        let (s, e) = ranges[pick % ranges.len()];
        let block = &MS_SPASTICITY_TOML[s..e];
        let id = block.split('"').nth(1).unwrap();
        let text = format!("{MS_SPASTICITY_TOML}\n{block}");
        let err = load(&text).unwrap_err();
        let d = only(&err);
        prop_assert_eq!(d.kind(), ErrorKind::Duplicate);
        prop_assert_eq!(d.rule_id(), Some(id));
    }

    /// Comparing a yes/no fact with a number in any rule's condition is a type mismatch.
    #[test]
    fn any_type_mismatch_is_named(pick: usize) {
        let ranges = rule_ranges();
        let (s, e) = ranges[pick % ranges.len()];
        let block = &MS_SPASTICITY_TOML[s..e];
        let field = if block.contains("\nwhen = \"") { "when" } else { "requires" };
        let broken = block.replacen(&format!("\n{field} = \""), &format!("\n{field} = \"fever > 2 or "), 1);
        let text = format!("{}{}{}", &MS_SPASTICITY_TOML[..s], broken, &MS_SPASTICITY_TOML[e..]);
        let err = load(&text).unwrap_err();
        let d = only(&err);
        prop_assert_eq!(d.kind(), ErrorKind::TypeMismatch);
        prop_assert_eq!(d.field_name(), Some(field));
    }

    /// Whatever is done to the text, loading returns (a rule set or an error), never panics.
    #[test]
    fn random_corruption_never_panics(pos: usize, len in 0usize..40, junk in "[ -~\\n]{0,12}") {
        let text = MS_SPASTICITY_TOML;
        let mut start = pos % text.len();
        while !text.is_char_boundary(start) { start -= 1; }
        let mut end = (start + len).min(text.len());
        while !text.is_char_boundary(end) { end -= 1; }
        let corrupted = format!("{}{}{}", &text[..start], junk, &text[end..]);
        if let Err(e) = load(&corrupted) {
            prop_assert!(!e.diagnostics().is_empty());
            for d in e.diagnostics() {
                prop_assert!(!d.message().is_empty());
            }
        }
    }
}

#[test]
fn lints_warn_about_dead_rules_unofferable_steps_and_contradictions() {
    let warnings = |text: &str| -> Vec<String> {
        load(text)
            .unwrap()
            .warnings()
            .iter()
            .map(ToString::to_string)
            .collect()
    };
    let dead = MS_SPASTICITY_TOML.replacen(
        r#"when = "epilepsy"
text = "Epilepsy: baclofen"#,
        r#"when = "epilepsy and egfr < 30 and egfr > 60"
text = "Epilepsy: baclofen"#,
        1,
    );
    let w = warnings(&dead);
    assert_eq!(w.len(), 1, "{w:?}");
    assert!(
        w[0].contains("can never fire") && w[0].contains("R20.baclofen.epilepsy"),
        "{w:?}"
    );
    assert!(w[0].starts_with("ms.toml:"), "{w:?}");

    let shut = MS_SPASTICITY_TOML.replacen(
        r#"requires = "exhausted""#,
        r#"requires = "exhausted and not exhausted""#,
        1,
    );
    let w = warnings(&shut);
    assert!(w.iter().any(|x| x.contains("gate can never open")), "{w:?}");
    assert!(
        w.iter()
            .any(|x| x.contains("no rule can ever offer step `tizanidine`")),
        "{w:?}"
    );

    let clash = format!(
        "{MS_SPASTICITY_TOML}\n[[rule]]\nid = \"X.offer\"\nsteps = [\"massage\"]\neffect = \"offer\"\nwhen = \"fever\"\ntext = \"x\"\nsource = [\"CK\"]\n"
    );
    let w = warnings(&clash);
    assert!(
        w.iter()
            .any(|x| x.contains("same condition") && x.contains("R20.massage.fever")),
        "{w:?}"
    );
}
