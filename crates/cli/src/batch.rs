//! `pathway batch`: evaluate a population on every core, streaming, in input order.
//!
//! One thread reads records in chunks, N workers read FHIR and evaluate a chunk at a time, the
//! main thread writes results in input order (the machinery is `stream`'s, shared with
//! `diff`), so memory stays flat however large the input.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{BufWriter, Write};
use std::ops::Range;
use std::path::{Path, PathBuf};

use pathway_core::Status;
use pathway_fhir::{BulkExport, ReadOptions, Reader, Reading};
use pathway_rules::RuleSet;
use serde::Serialize;

use crate::Content;
use crate::common::{self, Fail};
use crate::stream::{self, Input, Item, Job};

pub struct Options {
    pub input: String,
    pub out: PathBuf,
    pub content: Content,
    pub date: Option<String>,
    pub fail_fast: bool,
    pub strict: bool,
    pub jobs: Option<usize>,
    pub detail: crate::Detail,
    /// The longest record read; a longer line is a bad record.
    pub max_record_bytes: usize,
    /// Where a Bulk export is sorted (default: `TMPDIR`, else the system's).
    pub tmpdir: Option<PathBuf>,
    /// Above this share of bad records, the summary says so plainly.
    pub max_failed_share: f64,
}

/// A chunk evaluated: the output lines in one buffer, and for each record either its line's
/// range in that buffer or why it could not be evaluated; statuses of the records evaluated,
/// one per step each, in order.
struct Done<'a> {
    out: Vec<u8>,
    results: Vec<Result<Range<usize>, String>>,
    statuses: Vec<Status>,
    /// Per record evaluated, in order: what the summary counts.
    stats: Vec<Stats<'a>>,
}

/// What the run's summary counts of one record.
struct Stats<'a> {
    applicable: bool,
    /// Facts missing for some step, each once (`true`: a medication class).
    missing: Vec<(&'a str, bool)>,
    /// Records of the patient's that matched nothing.
    unrecognized: usize,
}

/// One line of the output file.
#[derive(Serialize)]
struct OutLine<'a, T> {
    patient: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    line: Option<usize>,
    result: T,
}

/// The summary of one step (`--detail summary`).
#[derive(Serialize)]
struct StepSummary<'a> {
    step: &'a str,
    status: Status,
    rules: Vec<&'a str>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    missing: Vec<&'a str>,
}

/// The summary of one patient.
#[derive(Serialize)]
struct Summary<'a> {
    ruleset: &'a pathway_rules::Stamp,
    applicable: bool,
    steps: Vec<StepSummary<'a>>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    warnings: Vec<String>,
    #[serde(skip_serializing_if = "<[_]>::is_empty")]
    unrecognized: &'a [pathway_rules::Unrecognized],
}

/// What every worker shares, and one worker's reusable buffers.
struct Worker<'a> {
    rs: &'a RuleSet,
    reader: &'a Reader<'a>,
    opts: &'a ReadOptions,
    /// How the input is named in messages.
    source: &'a str,
    detail: crate::Detail,
    prepared: pathway_rules::Prepared,
    eval: pathway_rules::Evaluation,
}

impl<'a> Worker<'a> {
    /// Evaluates a chunk.
    fn chunk(&mut self, job: Job<Reading>) -> Done<'a> {
        let mut out = Vec::with_capacity(job.items.len() * 2048);
        let mut statuses = Vec::with_capacity(job.items.len() * self.rs.ladder().len());
        let mut stats = Vec::with_capacity(job.items.len());
        let results = job
            .items
            .into_iter()
            .map(|item| self.record(item, &job.buf, &mut out, &mut statuses, &mut stats))
            .collect();
        Done {
            out,
            results,
            statuses,
            stats,
        }
    }

    /// Evaluates one record, appending its output line to `out` and its statuses to
    /// `statuses`; `buf` holds the chunk's lines.
    fn record(
        &mut self,
        (line, item): (Option<usize>, Item<Reading>),
        buf: &[u8],
        out: &mut Vec<u8>,
        statuses: &mut Vec<Status>,
        stats: &mut Vec<Stats<'a>>,
    ) -> Result<Range<usize>, String> {
        let (rs, source) = (self.rs, self.source);
        let where_ = |line: Option<usize>| match line {
            Some(l) => format!("{source}:{l}"),
            None => source.to_owned(),
        };
        let r = match item {
            Item::Line(range) => self
                .reader
                .read_bundle(buf.get(range).unwrap_or_default(), self.opts)
                .map_err(|e| format!("{}: {e}", where_(line)))?,
            Item::Read(r) => *r,
            Item::Failed(m) => return Err(m),
        };
        rs.prepare_into(&r.profile, &mut self.prepared)
            .map_err(|e| format!("{}: {} {e}", where_(line), r.patient))?;
        rs.evaluate_into(&self.prepared, &mut self.eval);
        let warnings: Vec<String> = r.warnings.iter().map(ToString::to_string).collect();
        let start = out.len();
        let written = match self.detail {
            crate::Detail::Full => {
                let mut rec = self.eval.to_recommendation(rs, &r.profile);
                rec.warnings = warnings;
                rec.unrecognized.clone_from(&r.unrecognized);
                serde_json::to_writer(
                    &mut *out,
                    &OutLine {
                        patient: &r.patient,
                        line,
                        result: &rec,
                    },
                )
            }
            crate::Detail::Summary => {
                let steps = self
                    .eval
                    .steps(rs)
                    .map(|s| StepSummary {
                        step: s.step.id.as_str(),
                        status: s.status,
                        rules: s
                            .reasons()
                            .filter(|x| x.decisive())
                            .map(|x| x.rule_id())
                            .collect(),
                        missing: s.missing().collect(),
                    })
                    .collect();
                let summary = Summary {
                    ruleset: rs.stamp(),
                    applicable: self.eval.applicable(),
                    steps,
                    warnings,
                    unrecognized: &r.unrecognized,
                };
                serde_json::to_writer(
                    &mut *out,
                    &OutLine {
                        patient: &r.patient,
                        line,
                        result: &summary,
                    },
                )
            }
        };
        if let Err(e) = written {
            out.truncate(start);
            return Err(e.to_string());
        }
        out.push(b'\n');
        statuses.extend(self.eval.statuses());
        // Names borrowed from the rule set (they outlive this evaluation's buffers).
        let mut missing: Vec<(&'a str, bool)> = Vec::new();
        for s in self.eval.steps(rs) {
            for m in s.missing() {
                let name = match m.strip_prefix("medication:") {
                    Some(class) => rs
                        .medications()
                        .keys()
                        .find(|k| k.as_str() == class)
                        .map(|k| (k.as_str(), true)),
                    None => rs.fact(m).map(|f| (f.id.as_str(), false)),
                };
                if let Some(n) = name
                    && !missing.contains(&n)
                {
                    missing.push(n);
                }
            }
        }
        stats.push(Stats {
            applicable: self.eval.applicable(),
            missing,
            unrecognized: r.unrecognized.len(),
        });
        Ok(start..out.len())
    }
}

pub fn run(o: &Options) -> Result<(), Fail> {
    let rs = common::ruleset(&o.content)?;
    let vs = common::valuesets(&o.content, &rs)?;
    let reader = Reader::new(&rs, vs);
    let date = common::date(o.date.as_deref())?;
    let opts = if o.strict {
        ReadOptions::strict(date)
    } else {
        ReadOptions::lenient(date)
    };
    let jobs = stream::jobs(o.jobs);
    // Open everything before starting, so that a bad path is one clear error.
    let (input, source) = Input::open(&o.input)?;
    let bulk = match &input {
        Input::Folder(dir) => {
            let b = BulkExport::open_in(&reader, dir, opts, 64 << 20, o.tmpdir.as_deref())
                .map_err(|e| Fail::input(e.to_string()))?;
            for w in b.skipped() {
                eprintln!("pathway: skipped {w}");
            }
            Some(b)
        }
        _ => None,
    };
    let total = input.size();
    // `-` is standard output; the summary then goes to standard error.
    let to_stdout = o.out.as_os_str() == "-";
    let sink: Box<dyn Write> = if to_stdout {
        Box::new(std::io::stdout().lock())
    } else {
        Box::new(
            File::create(&o.out).map_err(|e| Fail::input(format!("{}: {e}", o.out.display())))?,
        )
    };
    let mut out = BufWriter::with_capacity(1 << 20, sink);

    let mut patients = 0u64;
    let mut errors = 0u64;
    let mut counts = vec![[0u64; 5]; rs.ladder().len()];
    let mut not_applicable = 0u64;
    let mut with_missing = 0u64;
    let mut with_unrecognized = 0u64;
    let mut unrecognized = 0u64;
    let mut missing_counts: BTreeMap<(&str, bool), u64> = BTreeMap::new();
    let mut failure: Option<Fail> = None;

    let source_ref = source.as_str();
    let max_record = o.max_record_bytes;
    let feed = move |feeder: &mut stream::Feeder<'_, Reading>| match bulk {
        Some(b) => stream::feed_records(b.map(|r| r.map_err(|e| e.to_string())), feeder),
        None => input.feed_lines(feeder, source_ref, max_record),
    };
    let workers = (0..jobs)
        .map(|_| {
            let mut worker = Worker {
                rs: &rs,
                reader: &reader,
                opts: &opts,
                source: source_ref,
                detail: o.detail,
                prepared: Default::default(),
                eval: Default::default(),
            };
            move |job| worker.chunk(job)
        })
        .collect();
    let steps = rs.ladder().len();
    stream::run(feed, workers, total, |d: Done<'_>, bar| {
        let mut statuses = d.statuses.chunks(steps.max(1));
        let mut stats = d.stats.into_iter();
        for result in d.results {
            if failure.is_some() {
                break;
            }
            match result {
                Ok(range) => {
                    let line = d.out.get(range).unwrap_or_default();
                    if let Err(e) = out.write_all(line) {
                        failure = Some(Fail::input(format!("{}: {e}", o.out.display())));
                        continue;
                    }
                    patients += 1;
                    if let Some(st) = stats.next() {
                        not_applicable += u64::from(!st.applicable);
                        with_missing += u64::from(!st.missing.is_empty());
                        with_unrecognized += u64::from(st.unrecognized > 0);
                        unrecognized += st.unrecognized as u64;
                        for m in st.missing {
                            *missing_counts.entry(m).or_default() += 1;
                        }
                    }
                    for (c, s) in counts.iter_mut().zip(statuses.next().unwrap_or_default()) {
                        let k = Status::ALL.iter().position(|x| x == s).unwrap_or(0);
                        if let Some(slot) = c.get_mut(k) {
                            *slot += 1;
                        }
                    }
                }
                Err(message) => {
                    errors += 1;
                    bar.suspend(|| eprintln!("pathway: {message}"));
                    if o.fail_fast {
                        failure = Some(Fail::input(format!(
                            "stopped at the first bad record (--fail-fast): {message}"
                        )));
                    }
                }
            }
        }
        bar.set_message(format!("{patients} patients, {errors} errors"));
        failure.is_none()
    });
    out.flush()
        .map_err(|e| Fail::input(format!("{}: {e}", o.out.display())))?;
    if let Some(f) = failure {
        return Err(f);
    }
    let total_records = patients + errors;
    let share = if total_records == 0 {
        0.0
    } else {
        errors as f64 / total_records as f64
    };
    let mut top: Vec<((&str, bool), u64)> = missing_counts.into_iter().collect();
    top.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
    let top: Vec<String> = top
        .iter()
        .take(5)
        .map(|((name, med), n)| {
            let name = if *med {
                format!("medication:{name}")
            } else {
                (*name).to_owned()
            };
            format!("{name} ({n})")
        })
        .collect();
    let mut table = format!(
        "{patients} patients evaluated, {errors} bad records skipped; results in {}\n\
         the pathway does not apply to {not_applicable}; {with_missing} have facts missing that could change a step{}\n\
         {with_unrecognized} have records not recognised ({unrecognized} records: their interactions were not checked)\n",
        if to_stdout {
            "standard output".to_owned()
        } else {
            o.out.display().to_string()
        },
        if top.is_empty() {
            String::new()
        } else {
            format!(" (most often: {})", top.join(", "))
        },
    );
    if errors > 0 && share > o.max_failed_share {
        table.push_str(&format!(
            "WARNING: {:.0}% of the records could not be evaluated (more than {:.0}%): check the input\n",
            share * 100.0,
            o.max_failed_share * 100.0
        ));
    }
    table.push_str(&format!("\n{:<22}", "step"));
    for s in Status::ALL {
        table.push_str(&format!("{:>10}", s.as_str()));
    }
    table.push('\n');
    for (step, c) in rs.ladder().steps().zip(&counts) {
        table.push_str(&format!("{:<22}", step.id.as_str()));
        for n in c {
            table.push_str(&format!("{n:>10}"));
        }
        table.push('\n');
    }
    if to_stdout {
        eprintln!("{}", table.trim_end());
    } else {
        common::print(table.trim_end())?;
    }
    if patients == 0 && errors > 0 {
        return Err(Fail::input(format!(
            "no record could be evaluated ({errors} bad record{})",
            if errors == 1 { "" } else { "s" }
        )));
    }
    Ok(())
}

/// `pathway generate`: synthetic patients as NDJSON.
pub fn generate(
    count: usize,
    out: &Path,
    format: crate::GenerateFormat,
    seed: u64,
    date: Option<&str>,
    content: &Content,
) -> Result<(), Fail> {
    let rs = common::ruleset(content)?;
    // Value sets are needed only to write Bundles.
    let reader = match format {
        crate::GenerateFormat::Bundles => Some(Reader::new(&rs, common::valuesets(content, &rs)?)),
        crate::GenerateFormat::Profiles => None,
    };
    let date = common::date(date)?;
    let file = File::create(out).map_err(|e| Fail::input(format!("{}: {e}", out.display())))?;
    let mut w = BufWriter::with_capacity(1 << 20, file);
    let bad = |e: std::io::Error| Fail::input(format!("{}: {e}", out.display()));
    let generator = pathway_rules::PatientGenerator::new(&rs, seed).date(date);
    for (i, p) in generator.take(count).enumerate() {
        match &reader {
            Some(reader) => {
                let b = pathway_fhir::to_bundle(reader, &p, &format!("p{i}"));
                serde_json::to_writer(&mut w, &b).map_err(|e| Fail::input(e.to_string()))?;
            }
            None => {
                serde_json::to_writer(&mut w, &p).map_err(|e| Fail::input(e.to_string()))?;
            }
        }
        w.write_all(b"\n").map_err(bad)?;
    }
    w.flush().map_err(bad)?;
    common::print(&format!(
        "wrote {count} synthetic patients to {}",
        out.display()
    ))
}
