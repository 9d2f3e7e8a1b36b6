//! The crate's layering, checked: every module file is placed in [`ORDER`], and a module names
//! (`crate::…`, in `use` lines or in paths) only modules placed before it, so imports only point
//! down and can never form a circle. Test code (from a file's first `#[cfg(test)]` on) may reach
//! anywhere, and `lib.rs`, the root that declares and re-exports, is above everything.
//!
//! What it cannot see: a method of an inherent `impl` in another module is called without an
//! import (`Circuit::run` is defined in `evaluate/run.rs`); such impls live above the type they
//! extend, never below it.

use std::path::{Path, PathBuf};

/// The modules, lowest first, by layer, with their files (relative to `src/`).
const ORDER: &[(&str, &str, &str)] = &[
    // layer, module, file
    ("base", "tri", "tri.rs"),
    ("base", "error", "error.rs"),
    ("language", "language::expr", "language/expr.rs"),
    ("language", "language::file", "language/file.rs"),
    ("language", "language", "language/mod.rs"),
    ("model", "model", "model.rs"),
    ("model", "results", "results.rs"),
    ("compile", "compile::cond", "compile/cond.rs"),
    ("compile", "compile::names", "compile/names.rs"),
    ("compile", "compile::graph", "compile/graph.rs"),
    ("compile", "compile::circuit", "compile/circuit.rs"),
    ("compile", "compile::plan", "compile/plan.rs"),
    ("compile", "compile::lint", "compile/lint.rs"),
    ("compile", "compile::compiler", "compile/compiler.rs"),
    ("compile", "compile", "compile/mod.rs"),
    ("ruleset", "ruleset", "ruleset.rs"),
    ("evaluate", "evaluate::prepared", "evaluate/prepared.rs"),
    ("evaluate", "evaluate::run", "evaluate/run.rs"),
    ("evaluate", "evaluate::profile", "evaluate/profile.rs"),
    ("evaluate", "evaluate::decide", "evaluate/decide.rs"),
    ("evaluate", "evaluate", "evaluate/mod.rs"),
    ("generate", "generate", "generate.rs"),
];

/// Files that are in no layer: the root, and this test.
const OUTSIDE: &[&str] = &["lib.rs", "layering.rs"];

fn src() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src")
}

/// The code of a file before its tests, without comments.
fn code(text: &str) -> String {
    let mut out = String::new();
    for line in text.lines() {
        if line.starts_with("#[cfg(test)]") {
            break;
        }
        out.push_str(line.split("//").next().unwrap_or(""));
        out.push('\n');
    }
    out
}

fn ident_end(s: &str) -> usize {
    s.find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .unwrap_or(s.len())
}

/// The paths named after `crate::`, as segments; a group (`crate::a::{b::C, d}`) gives one
/// path per item.
fn crate_paths(code: &str) -> Vec<Vec<String>> {
    fn path(s: &str) -> (Vec<String>, &str) {
        let mut segs = Vec::new();
        let mut rest = s;
        loop {
            let end = ident_end(rest);
            if end == 0 {
                break;
            }
            segs.push(rest[..end].to_owned());
            rest = &rest[end..];
            match rest.strip_prefix("::") {
                Some(r) if r.starts_with(|c: char| c.is_ascii_alphanumeric() || c == '_') => {
                    rest = r;
                }
                _ => break,
            }
        }
        (segs, rest)
    }
    let mut out = Vec::new();
    let mut rest = code;
    while let Some(at) = rest.find("crate::") {
        let before = rest[..at].chars().next_back();
        rest = &rest[at + "crate::".len()..];
        if before.is_some_and(|c| c.is_ascii_alphanumeric() || c == '_') {
            continue;
        }
        let (head, after) = path(rest);
        let group = if head.is_empty() {
            after.strip_prefix('{')
        } else {
            after.strip_prefix("::{")
        };
        match group {
            Some(group) => {
                let inner = &group[..group.find('}').unwrap_or(group.len())];
                for item in inner.split(',').map(str::trim).filter(|i| !i.is_empty()) {
                    let (tail, _) = path(item);
                    out.push(head.iter().cloned().chain(tail).collect());
                }
            }
            None => out.push(head),
        }
    }
    out
}

/// The module a path names: the longest prefix that is a module of [`ORDER`].
fn module_of(path: &[String]) -> Option<usize> {
    (1..=path.len()).rev().find_map(|n| {
        let name = path[..n].join("::");
        ORDER.iter().position(|(_, m, _)| *m == name)
    })
}

fn rs_files(dir: &Path, out: &mut Vec<String>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let p = entry.unwrap().path();
        if p.is_dir() {
            rs_files(&p, out);
        } else if p.extension().is_some_and(|e| e == "rs") {
            let rel = p.strip_prefix(src()).unwrap();
            out.push(rel.to_string_lossy().replace('\\', "/"));
        }
    }
}

#[test]
fn every_module_file_has_a_place_in_the_layers() {
    let mut files = Vec::new();
    rs_files(&src(), &mut files);
    files.sort();
    let unplaced: Vec<&String> = files
        .iter()
        .filter(|f| !OUTSIDE.contains(&f.as_str()) && !ORDER.iter().any(|(_, _, p)| p == f))
        .collect();
    assert!(
        unplaced.is_empty(),
        "place these files in ORDER (src/layering.rs) and in ARCHITECTURE.md: {unplaced:?}"
    );
    for (_, _, f) in ORDER {
        assert!(
            files.iter().any(|x| x == f),
            "{f} is in ORDER but not in src/"
        );
    }
}

#[test]
fn imports_only_point_down() {
    let mut wrong = Vec::new();
    for (i, (layer, module, file)) in ORDER.iter().enumerate() {
        let text = std::fs::read_to_string(src().join(file)).unwrap();
        let code = code(&text);
        if code.contains("super::") {
            wrong.push(format!(
                "{file}: `super::` outside tests; name the module (`crate::…`)"
            ));
        }
        for path in crate_paths(&code) {
            let shown = path.join("::");
            match module_of(&path) {
                None => wrong.push(format!(
                    "{file}: `crate::{shown}` goes through the crate root; name the module that defines it"
                )),
                Some(j) if j >= i => {
                    let (to_layer, to, _) = ORDER[j];
                    wrong.push(format!(
                        "{file} ({layer}: {module}) imports `crate::{shown}` ({to_layer}: {to}), which is not below it"
                    ));
                }
                Some(_) => {}
            }
        }
    }
    assert!(
        wrong.is_empty(),
        "imports that do not point down:\n{}",
        wrong.join("\n")
    );
}

#[test]
fn the_scanner_reads_paths_groups_and_comments() {
    let code = code(
        "use crate::compile::cond::{Cond, NumSrc};\n\
         use crate::{model::Effect, tri::Tri};\n\
         // use crate::generate::PatientGenerator;\n\
         let x: pathway_crate::Y = crate::language::expr::parse(s);\n\
         #[cfg(test)]\n\
         use crate::RuleSet;\n",
    );
    let paths: Vec<String> = crate_paths(&code).iter().map(|p| p.join("::")).collect();
    assert_eq!(
        paths,
        [
            "compile::cond::Cond",
            "compile::cond::NumSrc",
            "model::Effect",
            "tri::Tri",
            "language::expr::parse",
        ]
    );
    let module = |p: &str| module_of(&p.split("::").map(String::from).collect::<Vec<_>>());
    assert_eq!(
        module("compile::cond::Cond").map(|i| ORDER[i].1),
        Some("compile::cond")
    );
    assert_eq!(
        module("evaluate::Evaluation").map(|i| ORDER[i].1),
        Some("evaluate")
    );
    assert_eq!(module("RuleSet"), None);
}
