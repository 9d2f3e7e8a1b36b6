//! Pathway benchmarks (criterion). Run with `cargo bench`; see BENCHMARKS.md.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    missing_docs
)]

use std::hint::black_box;
use std::path::Path;
use std::time::{Duration, Instant};

use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use pathway::fhir::{ReadOptions, Reader, ValueSets, ehr_shaped, to_bundle};
use pathway::rules::{Evaluation, MS_SPASTICITY_TOML, PatientGenerator, Prepared};
use pathway::{Date, Outcome, Profile, RuleSet, Sex, StepRecord};

const DATE: Date = Date::constant(2026, 11, 22);

fn ruleset() -> RuleSet {
    RuleSet::ms_spasticity().expect("the shipped rule set loads")
}

fn fixture_profile(name: &str) -> Profile {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fixtures/patients")
        .join(name);
    serde_json::from_str(&std::fs::read_to_string(path).expect("fixture")).expect("profile")
}

/// The archetypal patients: new, first line failed, many comorbidities, missing data.
fn archetypes() -> Vec<(&'static str, Profile)> {
    let comorbid = fixture_profile("first-line-failed.json")
        .with_fact("hepatic-impairment", true)
        .with_fact("renal-impairment", true)
        .with_fact("epilepsy", true)
        .with_fact("heart-disease", true)
        .with_fact("sleep-apnea", true)
        .with_fact("falls-risk", true)
        .with_fact("depression-suicidality", true)
        .with_fact("relies-on-tone", true)
        .with_medication("opioid")
        .with_medication("cns-depressant")
        .with_hypersensitivity("gabapentin")
        .with_step("tizanidine", StepRecord::past(Outcome::Ineffective))
        .with_step("dantrolene", StepRecord::current(None));
    let missing = Profile::new(DATE, 34)
        .with_sex(Sex::Female)
        .with_fact("multiple-sclerosis", true)
        .with_fact("spasticity", true);
    vec![
        ("new", fixture_profile("new-patient.json")),
        (
            "first-line-failed",
            fixture_profile("first-line-failed.json"),
        ),
        ("many-comorbidities", comorbid),
        ("missing-data", missing),
    ]
}

fn load(c: &mut Criterion) {
    // Freeing the rule set is inside the clock here (`scaling/load` frees it after).
    c.bench_function("load/parse+validate+compile", |b| {
        b.iter(|| RuleSet::from_toml("ms.toml", black_box(MS_SPASTICITY_TOML)).expect("loads"))
    });
    // The content hash, computed the first time the stamp is asked for (on a rule set that
    // has not computed it yet).
    let fresh = RuleSet::from_toml("ms.toml", MS_SPASTICITY_TOML).expect("loads");
    c.bench_function("load/first-stamp", |b| {
        b.iter_batched_ref(
            || fresh.clone(),
            |rs| rs.stamp().hash.len(),
            BatchSize::SmallInput,
        )
    });
}

fn evaluate(c: &mut Criterion) {
    let rs = ruleset();
    let mut g = c.benchmark_group("evaluate");
    let mut eval = Evaluation::default();
    let mut prepared = Prepared::default();
    for (name, p) in archetypes() {
        let ready = rs.prepare(&p).expect("valid");
        // The engine: statuses with their reasons, facts read and missing facts (indices into
        // the rule set, texts borrowed), into a reused buffer.
        g.bench_function(format!("{name}/explained"), |b| {
            b.iter(|| {
                rs.evaluate_into(black_box(&ready), &mut eval);
                eval.statuses().count()
            })
        });
        g.bench_function(format!("{name}/prepare+explained"), |b| {
            b.iter(|| {
                rs.prepare_into(black_box(&p), &mut prepared)
                    .expect("valid");
                rs.evaluate_into(&prepared, &mut eval);
                eval.statuses().count()
            })
        });
        // Everything as readable, serialisable text (what `evaluate` returns).
        g.bench_function(format!("{name}/recommendation"), |b| {
            b.iter(|| rs.evaluate(black_box(&p)).expect("evaluates"))
        });
    }
    // 100,000 varied patients, cycled through: the per-patient figure over a population.
    let pool: Vec<Profile> = PatientGenerator::new(&rs, 7).take(100_000).collect();
    let mut i = 0usize;
    g.bench_function("varied-100k/prepare+explained", |b| {
        b.iter(|| {
            i = (i + 1) % pool.len();
            rs.prepare_into(black_box(&pool[i]), &mut prepared)
                .expect("valid");
            rs.evaluate_into(&prepared, &mut eval);
            eval.statuses().count()
        })
    });
    let ready: Vec<Prepared> = pool
        .iter()
        .take(20_000)
        .map(|p| rs.prepare(p).expect("valid"))
        .collect();
    g.bench_function("varied-20k/explained", |b| {
        b.iter(|| {
            i = (i + 1) % ready.len();
            rs.evaluate_into(black_box(&ready[i]), &mut eval);
            eval.statuses().count()
        })
    });
    // The per-patient median over all 100,000: each patient's `evaluate_into` is timed on its
    // own (its `prepare_into` just before, untimed), and the sample's figure is the median of
    // those times. Criterion then reports the median per patient (the figures above are means
    // over patients, which the costlier patients with many unknowns pull up). Reading the clock
    // twice costs about 30 ns on this machine: `explained-median` subtracts that cost, measured
    // the same way on an empty region just before each sample; `explained-median-with-timer`
    // leaves it in.
    let mut times: Vec<Duration> = Vec::new();
    for (name, correct) in [
        ("varied-100k/explained-median", true),
        ("varied-100k/explained-median-with-timer", false),
    ] {
        g.bench_function(name, |b| {
            b.iter_custom(|iters| {
                let timer = if correct {
                    median_of(&mut times, 10_000, |_| {
                        let start = Instant::now();
                        black_box(());
                        start.elapsed()
                    })
                } else {
                    Duration::ZERO
                };
                let median = median_of(&mut times, iters, |_| {
                    i = (i + 1) % pool.len();
                    rs.prepare_into(&pool[i], &mut prepared).expect("valid");
                    let start = Instant::now();
                    rs.evaluate_into(black_box(&prepared), &mut eval);
                    black_box(eval.statuses().count());
                    start.elapsed().saturating_sub(timer)
                });
                median * u32::try_from(iters).unwrap_or(u32::MAX)
            })
        });
    }
    g.bench_function("varied-100k/recommendation", |b| {
        b.iter(|| {
            i = (i + 1) % pool.len();
            rs.evaluate(black_box(&pool[i])).expect("evaluates")
        })
    });
    g.finish();
}

/// The median of `n` timings, reusing `times`.
fn median_of(times: &mut Vec<Duration>, n: u64, mut time: impl FnMut(u64) -> Duration) -> Duration {
    times.clear();
    times.extend((0..n).map(&mut time));
    times.sort_unstable();
    times.get(times.len() / 2).copied().unwrap_or_default()
}

fn fhir(c: &mut Criterion) {
    let rs = ruleset();
    let reader = Reader::new(&rs, ValueSets::ms_spasticity(&rs).expect("value sets"));
    let written: Vec<serde_json::Value> = PatientGenerator::new(&rs, 11)
        .take(1000)
        .enumerate()
        .map(|(i, p)| to_bundle(&reader, &p, &format!("p{i}")))
        .collect();
    let bundles: Vec<Vec<u8>> = written.iter().map(|b| b.to_string().into_bytes()).collect();
    // The same patients as an EHR exports them: each resource also carries meta, narrative,
    // identifiers, categories, displays and the like, which are parsed past, not read. Same
    // resources, about four times the bytes: the two figures separate the cost per resource
    // from the cost per byte.
    let ehr: Vec<Vec<u8>> = written
        .iter()
        .map(|b| ehr_shaped(b).to_string().into_bytes())
        .collect();
    let mean = |set: &[Vec<u8>]| set.iter().map(Vec::len).sum::<usize>() / set.len();
    let opts = ReadOptions::lenient(DATE);
    let mut g = c.benchmark_group("fhir");
    let mut i = 0usize;
    let (mut prepared, mut eval) = (Prepared::default(), Evaluation::default());
    let mut explained = |bytes: &[u8]| {
        let r = reader.read_bundle(bytes, &opts).expect("reads");
        rs.prepare_into(&r.profile, &mut prepared).expect("valid");
        rs.evaluate_into(&prepared, &mut eval);
        eval.statuses().count()
    };
    let dense = mean(&bundles);
    g.bench_function(format!("bundle-{dense}B/parse+map"), |b| {
        b.iter(|| {
            i = (i + 1) % bundles.len();
            reader
                .read_bundle(black_box(&bundles[i]), &opts)
                .expect("reads")
        })
    });
    for (set, name) in [(&bundles, "bundle"), (&ehr, "ehr-bundle")] {
        g.bench_function(format!("{name}-{}B/parse+map+explained", mean(set)), |b| {
            b.iter(|| {
                i = (i + 1) % set.len();
                explained(black_box(&set[i]))
            })
        });
    }
    g.bench_function(format!("bundle-{dense}B/parse+map+recommendation"), |b| {
        b.iter(|| {
            i = (i + 1) % bundles.len();
            let r = reader
                .read_bundle(black_box(&bundles[i]), &opts)
                .expect("reads");
            rs.evaluate(&r.profile).expect("evaluates")
        })
    });
    g.finish();

    // Batch through the library on every core: parse, map, evaluate and serialise.
    let threads = std::thread::available_parallelism().map_or(2, |n| n.get());
    let mut g = c.benchmark_group("batch");
    g.throughput(Throughput::Elements(bundles.len() as u64));
    g.sample_size(20);
    g.bench_function(
        format!("{}-bundles-{threads}-threads", bundles.len()),
        |b| {
            b.iter(|| {
                std::thread::scope(|s| {
                    for chunk in bundles.chunks(bundles.len().div_ceil(threads)) {
                        let (rs, reader, opts) = (&rs, &reader, &opts);
                        s.spawn(move || {
                            let mut out = Vec::with_capacity(1 << 16);
                            for bytes in chunk {
                                let r = reader.read_bundle(bytes, opts).expect("reads");
                                let rec = rs.evaluate(&r.profile).expect("evaluates");
                                out.clear();
                                serde_json::to_writer(&mut out, &rec).expect("serialises");
                            }
                            out.len()
                        });
                    }
                })
            })
        },
    );
    g.finish();
}

/// The shipped rule set with its rules repeated `n` times (same steps).
fn more_rules(n: usize) -> String {
    let start = MS_SPASTICITY_TOML.find("\n[[rule]]\n").expect("rules");
    let rules = &MS_SPASTICITY_TOML[start..];
    let mut text = MS_SPASTICITY_TOML.to_owned();
    for k in 1..n {
        text.push_str(&rules.replace("\nid = \"", &format!("\nid = \"copy{k}.")));
    }
    text
}

/// The shipped rule set with its ladder (and rules) repeated `n` times: n x the steps.
fn more_steps(n: usize) -> String {
    let steps_at = MS_SPASTICITY_TOML.find("\n[[step]]\n").expect("steps");
    let facts_at = MS_SPASTICITY_TOML.find("\n[facts.").expect("facts");
    let rules_at = MS_SPASTICITY_TOML.find("\n[[rule]]\n").expect("rules");
    let ladder = &MS_SPASTICITY_TOML[steps_at..facts_at];
    let rules = &MS_SPASTICITY_TOML[rules_at..];
    let rs = ruleset();
    let mut ids: Vec<String> = rs.ladder().steps().map(|s| s.id.to_string()).collect();
    ids.sort_by_key(|s| std::cmp::Reverse(s.len()));
    let rename = |text: &str, k: usize| {
        let mut t = text.to_owned();
        for id in &ids {
            t = t
                .replace(&format!("\"{id}\""), &format!("\"{id}-x{k}\""))
                .replace(&format!("({id})"), &format!("({id}-x{k})"));
        }
        t
    };
    let mut text = MS_SPASTICITY_TOML.to_owned();
    for k in 1..n {
        text.push_str(&rename(ladder, k));
        text.push_str(&rename(rules, k).replace("\nid = \"R", &format!("\nid = \"x{k}.R")));
    }
    text
}

fn scaling(c: &mut Criterion) {
    let base = ruleset();
    let pool: Vec<Profile> = PatientGenerator::new(&base, 3).take(10_000).collect();
    let mut g = c.benchmark_group("scaling");
    for (name, text) in [
        ("1x", MS_SPASTICITY_TOML.to_owned()),
        ("10x-rules", more_rules(10)),
        ("10x-steps", more_steps(10)),
    ] {
        let rs = RuleSet::from_toml(name, &text).unwrap_or_else(|e| panic!("{e}"));
        let mut i = 0usize;
        let ready: Vec<Prepared> = pool.iter().map(|p| rs.prepare(p).expect("valid")).collect();
        let mut eval = Evaluation::default();
        let label = format!(
            "explained/{name}-{}-steps-{}-rules",
            rs.ladder().len(),
            rs.rules().count()
        );
        g.bench_function(label, |b| {
            b.iter(|| {
                i = (i + 1) % ready.len();
                rs.evaluate_into(black_box(&ready[i]), &mut eval);
                eval.statuses().count()
            })
        });
        g.bench_function(format!("load/{name}"), |b| {
            b.iter_batched(
                || text.clone(),
                |t| RuleSet::from_toml("x", &t).expect("loads"),
                BatchSize::SmallInput,
            )
        });
    }
    g.finish();
}

/// The illustration rule set with derived facts `d0 .. d9`, each `d(i-1) or ...` `k` times,
/// and one exclusion on them: the file grows with k, the paths through it as k^9.
fn shared_chain(k: usize) -> String {
    let mut t = format!(
        "{ILLUSTRATION}\n[derived.d0]\nwhen = \"pregnant and kidney-function < 30\"\ntext = \"d0\"\n"
    );
    for i in 1..=9 {
        let when = vec![format!("d{}", i - 1); k].join(" or ");
        t.push_str(&format!(
            "[derived.d{i}]\nwhen = \"{when}\"\ntext = \"d{i}\"\n"
        ));
    }
    t + &exclusion("d9 and knee-pain")
}

/// The illustration rule set with one exclusion on an `or` of `n` distinct comparisons.
fn wide_or(n: usize) -> String {
    let condition = (0..n)
        .map(|i| format!("kidney-function > {}.{i:06}", 100 + i % 40))
        .collect::<Vec<_>>()
        .join(" or ");
    format!("{ILLUSTRATION}\n{}", exclusion(&condition))
}

fn exclusion(condition: &str) -> String {
    format!(
        "[[rule]]\nid = \"X1\"\nsteps = [\"exercise\"]\neffect = \"exclude\"\nwhen = \"{condition}\"\ntext = \"x\"\nsource = [\"ILL\"]\n"
    )
}

const ILLUSTRATION: &str = include_str!("../fixtures/rulesets/illustration-knee-pain.toml");

/// Rule sets that used to take the tool down (issue 17), at growing sizes. Throughput is per
/// byte of rule file: a flat figure across sizes means cost linear in the size.
fn adversarial(c: &mut Criterion) {
    let mut g = c.benchmark_group("adversarial");
    g.sample_size(10);
    // Pregnancy and kidney function unknown: every shared node takes part in the explanation.
    let patient = Profile::new(DATE, 40).with_fact("knee-pain", true);
    let cases = [2, 4, 8, 16]
        .map(|k| (format!("shared-chain-k{k}"), shared_chain(k)))
        .into_iter()
        .chain([25_000, 50_000, 100_000, 200_000].map(|n| (format!("or-{n}"), wide_or(n))));
    for (name, text) in cases {
        g.throughput(Throughput::Bytes(text.len() as u64));
        g.bench_function(format!("load+lint/{name}"), |b| {
            b.iter(|| {
                let rs = RuleSet::from_toml("x.toml", black_box(&text)).expect("loads");
                rs.warnings().len()
            })
        });
        let rs = RuleSet::from_toml("x.toml", &text).expect("loads");
        g.bench_function(format!("evaluate-explained/{name}"), |b| {
            b.iter(|| rs.evaluate(black_box(&patient)).expect("evaluates"))
        });
    }
    g.finish();
}

/// A random rule set over the illustration's facts: `n` derived facts, each an `and`/`or` of
/// two to four terms drawn from the facts and earlier derived facts (so sub-conditions are
/// shared, as people write them, within the 16-level limit), and `n / 2` rules over them.
fn random_rules(n: usize, seed: u64) -> String {
    let mut rng = fastrand::Rng::with_seed(seed);
    let leaves = [
        "pregnant",
        "knee-pain",
        "stomach-bleed",
        "kidney-function < 30",
        "kidney-function >= 60",
        "medication(blood-thinner)",
        "age >= 65",
    ];
    let mut levels: Vec<usize> = Vec::new();
    let mut t = ILLUSTRATION.to_owned();
    for i in 0..n {
        let k = rng.usize(2..=4);
        let mut level = 1;
        let terms: Vec<String> = (0..k)
            .map(|_| {
                let shallow: Vec<usize> = (0..i).filter(|&j| levels[j] < 15).collect();
                if !shallow.is_empty() && rng.bool() {
                    let j = shallow[rng.usize(..shallow.len())];
                    level = level.max(levels[j] + 1);
                    let neg = if rng.u8(..4) == 0 { "not " } else { "" };
                    format!("{neg}d{j}")
                } else {
                    leaves[rng.usize(..leaves.len())].to_owned()
                }
            })
            .collect();
        levels.push(level);
        let op = if rng.bool() { " and " } else { " or " };
        t.push_str(&format!(
            "[derived.d{i}]\nwhen = \"({})\"\ntext = \"d{i}\"\n",
            terms.join(op)
        ));
    }
    for r in 0..n / 2 {
        let (step, effect) = [
            ("exercise", "exclude"),
            ("exercise", "caution"),
            ("medicine-a", "exclude"),
            ("medicine-b", "caution"),
        ][r % 4];
        t.push_str(&format!(
            "[[rule]]\nid = \"G{r}\"\nsteps = [\"{step}\"]\neffect = \"{effect}\"\nwhen = \"d{} or d{}\"\ntext = \"g\"\nsource = [\"ILL\"]\n",
            rng.usize(..n),
            rng.usize(..n)
        ));
    }
    t
}

/// The property behind `adversarial`: over rule sets of growing size (the families above and
/// random ones), loading with lint and evaluating with explanations cost no more per byte of
/// rule file at the largest size than a fixed multiple (3x) of what they cost at the smallest.
/// Prints the table; fails the bench run if the property does not hold.
fn growth(_: &mut Criterion) {
    let patient = Profile::new(DATE, 40).with_fact("knee-pain", true);
    let families: Vec<(&str, Vec<String>)> = vec![
        ("shared-chain", [2, 4, 8, 16].map(shared_chain).to_vec()),
        (
            "or",
            [25_000, 50_000, 100_000, 200_000].map(wide_or).to_vec(),
        ),
        (
            "random",
            [100, 200, 400, 800, 1_600]
                .map(|n| random_rules(n, 7))
                .to_vec(),
        ),
    ];
    let mut times = Vec::new();
    println!("growth: ns per byte of rule file (median of 5), load+lint and evaluate");
    for (family, texts) in families {
        let mut per_byte = Vec::new();
        for text in &texts {
            let load = median_of(&mut times, 5, |_| {
                let start = Instant::now();
                let rs = RuleSet::from_toml("x.toml", black_box(text)).expect("loads");
                black_box(rs.warnings().len());
                start.elapsed()
            });
            let rs = RuleSet::from_toml("x.toml", text).expect("loads");
            let eval = median_of(&mut times, 5, |_| {
                let start = Instant::now();
                black_box(rs.evaluate(black_box(&patient)).expect("evaluates"));
                start.elapsed()
            });
            let bytes = text.len() as f64;
            let row = (
                load.as_nanos() as f64 / bytes,
                eval.as_nanos() as f64 / bytes,
            );
            println!(
                "  {family:>12} {:>9} bytes  load+lint {:>8.1}  evaluate {:>8.3}",
                text.len(),
                row.0,
                row.1
            );
            per_byte.push(row);
        }
        let (first, last) = (per_byte[0], per_byte[per_byte.len() - 1]);
        for (what, a, b) in [
            ("load+lint", first.0, last.0),
            ("evaluate", first.1, last.1),
        ] {
            assert!(
                b <= 3.0 * a,
                "{family}: {what} costs {:.1}x as much per byte at the largest size",
                b / a
            );
        }
    }
}

criterion_group!(benches, load, evaluate, fhir, scaling, adversarial, growth);
criterion_main!(benches);
