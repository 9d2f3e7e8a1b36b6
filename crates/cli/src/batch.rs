//! `pathway batch`: evaluate a population on every core, streaming, in input order.
//!
//! One thread reads records in chunks, N workers read FHIR and evaluate a chunk at a time, the
//! main thread writes results in input order. Chunks keep the cost of handing work between
//! threads small next to the work; at most `WINDOW_PER_JOB` chunks per worker are in flight,
//! so memory stays flat however large the input.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{BufRead, BufReader, BufWriter, Write};
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, SyncSender, sync_channel};
use std::sync::{Arc, Mutex};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use pathway_core::Status;
use pathway_fhir::{BulkExport, ReadOptions, Reader, Reading};
use pathway_rules::RuleSet;
use serde::Serialize;

use crate::Content;
use crate::common::{self, Fail};

/// Records per chunk.
const CHUNK: usize = 64;
/// Chunks in flight at most (read but not yet written), per worker.
const WINDOW_PER_JOB: u64 = 4;

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

/// One record to evaluate.
enum Item {
    /// A line of NDJSON (a Bundle): its bytes in the chunk's buffer.
    Line(Range<usize>),
    /// A patient already read from a Bulk Data export.
    Read(Box<Reading>),
    /// A record that could not be read.
    Failed(String),
}

/// A chunk of records, in input order; lines are stored in one buffer.
#[derive(Default)]
struct Job {
    seq: u64,
    buf: Vec<u8>,
    items: Vec<(Option<usize>, Item)>,
}

/// A chunk evaluated: the output lines in one buffer, and for each record either its line's
/// range in that buffer or why it could not be evaluated; statuses of the records evaluated,
/// one per step each, in order.
struct Done<'a> {
    seq: u64,
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
    /// Evaluates chunks until there are no more or the results are no longer wanted.
    fn run(mut self, jobs: &Mutex<Receiver<Job>>, tx: &SyncSender<Done<'a>>) {
        loop {
            let job = match jobs.lock() {
                Ok(rx) => rx.recv(),
                Err(_) => return,
            };
            let Ok(job) = job else { return };
            if tx.send(self.chunk(job)).is_err() {
                return;
            }
        }
    }

    /// Evaluates a chunk.
    fn chunk(&mut self, job: Job) -> Done<'a> {
        let mut out = Vec::with_capacity(job.items.len() * 2048);
        let mut statuses = Vec::with_capacity(job.items.len() * self.rs.ladder().len());
        let mut stats = Vec::with_capacity(job.items.len());
        let results = job
            .items
            .into_iter()
            .map(|item| self.record(item, &job.buf, &mut out, &mut statuses, &mut stats))
            .collect();
        Done {
            seq: job.seq,
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
        (line, item): (Option<usize>, Item),
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

/// Fills chunks and sends them, waiting while too many are in flight.
struct Feeder<'a> {
    tx: SyncSender<Job>,
    seq: u64,
    chunk: Job,
    /// Chunks in flight at most.
    window: u64,
    written: &'a AtomicU64,
    stop: &'a AtomicBool,
}

impl Feeder<'_> {
    /// Adds a record; sends the chunk when it is full. Returns false when told to stop.
    fn push(&mut self, line: Option<usize>, item: Item) -> bool {
        self.chunk.items.push((line, item));
        self.chunk.items.len() < CHUNK || self.flush()
    }

    /// Sends the chunk (if it holds anything). Returns false when told to stop.
    fn flush(&mut self) -> bool {
        if self.chunk.items.is_empty() {
            return true;
        }
        while self
            .seq
            .saturating_sub(self.written.load(Ordering::Acquire))
            >= self.window
        {
            if self.stop.load(Ordering::Acquire) {
                return false;
            }
            std::thread::yield_now();
        }
        let mut job = std::mem::take(&mut self.chunk);
        job.seq = self.seq;
        self.seq += 1;
        !self.stop.load(Ordering::Acquire) && self.tx.send(job).is_ok()
    }
}

fn feed_lines(
    mut input: impl BufRead,
    feeder: &mut Feeder<'_>,
    read: &AtomicU64,
    source: &str,
    max: usize,
) {
    let mut n = 0usize;
    loop {
        // Each line is read straight into its chunk's buffer, up to `max` bytes.
        let start = feeder.chunk.buf.len();
        match read_line_bounded(&mut input, &mut feeder.chunk.buf, max) {
            Ok(Line::End) => break,
            Ok(Line::TooLong(k)) => {
                n += 1;
                read.fetch_add(k as u64, Ordering::Relaxed);
                feeder.chunk.buf.truncate(start);
                let item = Item::Failed(format!(
                    "{source}:{n}: the record is longer than {max} bytes (--max-record-bytes); skipped"
                ));
                if !feeder.push(Some(n), item) {
                    return;
                }
            }
            Ok(Line::Read(k)) => {
                n += 1;
                read.fetch_add(k as u64, Ordering::Relaxed);
                let end = feeder.chunk.buf.len();
                let blank = feeder
                    .chunk
                    .buf
                    .get(start..)
                    .is_none_or(|l| l.iter().all(u8::is_ascii_whitespace));
                if blank {
                    feeder.chunk.buf.truncate(start);
                    continue;
                }
                if !feeder.push(Some(n), Item::Line(start..end)) {
                    return;
                }
            }
            Err(e) => {
                feeder.push(None, Item::Failed(format!("{source}: {e}")));
                break;
            }
        }
    }
    feeder.flush();
}

/// What reading one line gave.
#[derive(Debug, PartialEq, Eq)]
enum Line {
    /// The end of the input.
    End,
    /// A line of this many bytes, appended to the buffer.
    Read(usize),
    /// A line of this many bytes, longer than allowed: passed over, not kept.
    TooLong(usize),
}

/// Reads one line into `buf`, keeping at most `max` bytes of it: a longer line is read to its
/// end and dropped, so memory never holds more than `max` of it.
fn read_line_bounded(
    input: &mut impl BufRead,
    buf: &mut Vec<u8>,
    max: usize,
) -> std::io::Result<Line> {
    let start = buf.len();
    let mut total = 0usize;
    let mut too_long = false;
    loop {
        let available = match input.fill_buf() {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        if available.is_empty() {
            break;
        }
        let (chunk, done) = match available.iter().position(|&b| b == b'\n') {
            Some(i) => (available.get(..=i).unwrap_or(available), true),
            None => (available, false),
        };
        let len = chunk.len();
        total += len;
        if !too_long {
            if total > max {
                too_long = true;
                buf.truncate(start);
            } else {
                buf.extend_from_slice(chunk);
            }
        }
        input.consume(len);
        if done {
            break;
        }
    }
    Ok(match (total, too_long) {
        (0, _) => Line::End,
        (k, true) => Line::TooLong(k),
        (k, false) => Line::Read(k),
    })
}

fn feed_bulk(bulk: BulkExport<'_>, feeder: &mut Feeder<'_>) {
    for r in bulk {
        let item = match r {
            Ok(reading) => Item::Read(Box::new(reading)),
            Err(e) => Item::Failed(e.to_string()),
        };
        if !feeder.push(None, item) {
            return;
        }
    }
    feeder.flush();
}

fn progress(total: Option<u64>) -> ProgressBar {
    let target = ProgressDrawTarget::stderr_with_hz(10);
    match total {
        Some(len) => {
            let bar = ProgressBar::with_draw_target(Some(len), target);
            if let Ok(style) = ProgressStyle::with_template(
                "{spinner} [{elapsed_precise}] {wide_bar} {bytes}/{total_bytes} {msg}",
            ) {
                bar.set_style(style);
            }
            bar
        }
        None => {
            let bar = ProgressBar::with_draw_target(None, target);
            if let Ok(style) = ProgressStyle::with_template("{spinner} [{elapsed_precise}] {msg}") {
                bar.set_style(style);
            }
            bar
        }
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
    let jobs = o
        .jobs
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(2, |n| n.get()))
        .max(1);
    let input_path = Path::new(&o.input);
    let is_dir = input_path.is_dir();
    let source = if o.input == "-" {
        "standard input".to_owned()
    } else {
        o.input.clone()
    };
    // Open everything before starting, so that a bad path is one clear error.
    let bulk = if is_dir {
        let b = BulkExport::open_in(&reader, input_path, opts, 64 << 20, o.tmpdir.as_deref())
            .map_err(|e| Fail::input(e.to_string()))?;
        for w in b.skipped() {
            eprintln!("pathway: skipped {w}");
        }
        Some(b)
    } else {
        None
    };
    let file = if !is_dir && o.input != "-" {
        Some(File::open(input_path).map_err(|e| Fail::input(format!("{}: {e}", o.input)))?)
    } else {
        None
    };
    let total = file
        .as_ref()
        .and_then(|f| f.metadata().ok())
        .map(|m| m.len());
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

    let (job_tx, job_rx) = sync_channel::<Job>(jobs * 2);
    let job_rx = Mutex::new(job_rx);
    let (done_tx, done_rx) = sync_channel::<Done>(jobs * 2);
    let written = AtomicU64::new(0);
    let stop = AtomicBool::new(false);
    let bytes_read = Arc::new(AtomicU64::new(0));
    let bar = progress(total);

    let mut patients = 0u64;
    let mut errors = 0u64;
    let mut counts = vec![[0u64; 5]; rs.ladder().len()];
    let mut not_applicable = 0u64;
    let mut with_missing = 0u64;
    let mut with_unrecognized = 0u64;
    let mut unrecognized = 0u64;
    let mut missing_counts: BTreeMap<(&str, bool), u64> = BTreeMap::new();
    let mut failure: Option<Fail> = None;

    std::thread::scope(|scope| {
        let feeder_bytes = Arc::clone(&bytes_read);
        let (written_ref, stop_ref, source_ref) = (&written, &stop, source.as_str());
        let max_record = o.max_record_bytes;
        scope.spawn(move || {
            let mut feeder = Feeder {
                tx: job_tx,
                seq: 0,
                chunk: Job::default(),
                window: WINDOW_PER_JOB * jobs as u64,
                written: written_ref,
                stop: stop_ref,
            };
            match (bulk, file) {
                (Some(b), _) => feed_bulk(b, &mut feeder),
                (None, Some(f)) => feed_lines(
                    BufReader::with_capacity(1 << 20, f),
                    &mut feeder,
                    &feeder_bytes,
                    source_ref,
                    max_record,
                ),
                (None, None) => feed_lines(
                    std::io::stdin().lock(),
                    &mut feeder,
                    &feeder_bytes,
                    source_ref,
                    max_record,
                ),
            }
        });
        for _ in 0..jobs {
            let tx = done_tx.clone();
            let worker = Worker {
                rs: &rs,
                reader: &reader,
                opts: &opts,
                source: source.as_str(),
                detail: o.detail,
                prepared: Default::default(),
                eval: Default::default(),
            };
            let rx = &job_rx;
            scope.spawn(move || worker.run(rx, &tx));
        }
        drop(done_tx);
        let mut pending: BTreeMap<u64, Done> = BTreeMap::new();
        let mut next = 0u64;
        let steps = rs.ladder().len();
        for done in done_rx.iter() {
            pending.insert(done.seq, done);
            while let Some(d) = pending.remove(&next) {
                next += 1;
                written.store(next, Ordering::Release);
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
                                stop.store(true, Ordering::Release);
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
                            for (c, s) in counts.iter_mut().zip(statuses.next().unwrap_or_default())
                            {
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
                                stop.store(true, Ordering::Release);
                            }
                        }
                    }
                }
                if total.is_some() {
                    bar.set_position(bytes_read.load(Ordering::Relaxed));
                }
                bar.set_message(format!("{patients} patients, {errors} errors"));
                bar.tick();
            }
        }
    });
    bar.finish_and_clear();
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
) -> Result<(), Fail> {
    let rs = RuleSet::ms_spasticity().map_err(|e| Fail::input(e.to_string()))?;
    let vs = pathway_fhir::ValueSets::ms_spasticity(&rs).map_err(|e| Fail::input(e.to_string()))?;
    let reader = Reader::new(&rs, vs);
    let date = common::date(date)?;
    let file = File::create(out).map_err(|e| Fail::input(format!("{}: {e}", out.display())))?;
    let mut w = BufWriter::with_capacity(1 << 20, file);
    let bad = |e: std::io::Error| Fail::input(format!("{}: {e}", out.display()));
    let generator = pathway_rules::PatientGenerator::new(&rs, seed).date(date);
    for (i, p) in generator.take(count).enumerate() {
        match format {
            crate::GenerateFormat::Bundles => {
                let b = pathway_fhir::to_bundle(&reader, &p, &format!("p{i}"));
                serde_json::to_writer(&mut w, &b).map_err(|e| Fail::input(e.to_string()))?;
            }
            crate::GenerateFormat::Profiles => {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_longer_than_the_limit_are_passed_over_without_being_kept() {
        let mut input = std::io::BufReader::with_capacity(4, &b"abc\nabcdefghij\nxy"[..]);
        let mut buf = Vec::new();
        assert_eq!(
            read_line_bounded(&mut input, &mut buf, 5).unwrap(),
            Line::Read(4)
        );
        assert_eq!(buf, b"abc\n");
        assert_eq!(
            read_line_bounded(&mut input, &mut buf, 5).unwrap(),
            Line::TooLong(11)
        );
        assert_eq!(buf, b"abc\n", "the long line is not kept");
        assert_eq!(
            read_line_bounded(&mut input, &mut buf, 5).unwrap(),
            Line::Read(2)
        );
        assert_eq!(
            read_line_bounded(&mut input, &mut buf, 5).unwrap(),
            Line::End
        );
    }
}
