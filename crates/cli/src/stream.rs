//! The streaming machinery `batch` and `diff` share: one thread reads records into chunks, N
//! workers process a chunk at a time, and the main thread takes the results in input order.
//!
//! Chunks keep the cost of handing work between threads small next to the work; at most
//! `WINDOW_PER_JOB` chunks per worker are in flight (read but not yet taken), so memory stays
//! flat however large the input.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{BufRead, BufReader};
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{SyncSender, sync_channel};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::common::Fail;

/// Records per chunk.
pub const CHUNK: usize = 64;
/// Chunks in flight at most (read but not yet taken), per worker.
const WINDOW_PER_JOB: u64 = 4;

/// The number of workers: `--jobs`, or every core.
pub fn jobs(arg: Option<usize>) -> usize {
    arg.unwrap_or_else(|| std::thread::available_parallelism().map_or(2, |n| n.get()))
        .max(1)
}

/// One record to process.
pub enum Item<R> {
    /// A line of NDJSON: its bytes in the chunk's buffer.
    Line(Range<usize>),
    /// A record already read (a patient of a Bulk Data export, a generated patient).
    Read(Box<R>),
    /// A record that could not be read, and why.
    Failed(String),
}

/// A chunk of records, in input order; lines are stored in one buffer.
pub struct Job<R> {
    /// The lines' bytes.
    pub buf: Vec<u8>,
    /// The records with their line numbers (for NDJSON).
    pub items: Vec<(Option<usize>, Item<R>)>,
    /// The place of the first record in the input (0 for the first record of all); the
    /// others follow it, one each.
    pub first: u64,
}

impl<R> Default for Job<R> {
    fn default() -> Self {
        Job {
            buf: Vec::new(),
            items: Vec::new(),
            first: 0,
        }
    }
}

/// Fills chunks and sends them, waiting while too many are in flight.
pub struct Feeder<'a, R> {
    tx: SyncSender<(u64, Job<R>)>,
    seq: u64,
    /// Records pushed so far.
    count: u64,
    chunk: Job<R>,
    /// Chunks in flight at most.
    window: u64,
    taken: &'a AtomicU64,
    stop: &'a AtomicBool,
    /// Bytes of input read, for the progress bar.
    read: &'a AtomicU64,
}

impl<R> Feeder<'_, R> {
    /// Adds a record; sends the chunk when it is full. Returns false when told to stop.
    pub fn push(&mut self, line: Option<usize>, item: Item<R>) -> bool {
        if self.chunk.items.is_empty() {
            self.chunk.first = self.count;
        }
        self.count += 1;
        self.chunk.items.push((line, item));
        self.chunk.items.len() < CHUNK || self.flush()
    }

    /// Sends the chunk (if it holds anything). Returns false when told to stop.
    pub fn flush(&mut self) -> bool {
        if self.chunk.items.is_empty() {
            return true;
        }
        while self.seq.saturating_sub(self.taken.load(Ordering::Acquire)) >= self.window {
            if self.stop.load(Ordering::Acquire) {
                return false;
            }
            std::thread::yield_now();
        }
        let job = std::mem::take(&mut self.chunk);
        let seq = self.seq;
        self.seq += 1;
        !self.stop.load(Ordering::Acquire) && self.tx.send((seq, job)).is_ok()
    }
}

/// Feeds the lines of NDJSON, each read straight into its chunk's buffer, at most `max` bytes
/// of it (a longer line is a failed record); blank lines are passed over.
pub fn feed_lines<R>(
    mut input: impl BufRead,
    feeder: &mut Feeder<'_, R>,
    source: &str,
    max: usize,
) {
    let mut n = 0usize;
    loop {
        let start = feeder.chunk.buf.len();
        match read_line_bounded(&mut input, &mut feeder.chunk.buf, max) {
            Ok(Line::End) => break,
            Ok(Line::TooLong(k)) => {
                n += 1;
                feeder.read.fetch_add(k as u64, Ordering::Relaxed);
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
                feeder.read.fetch_add(k as u64, Ordering::Relaxed);
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

/// Feeds records already read (or why each could not be).
pub fn feed_records<R>(
    records: impl Iterator<Item = Result<R, String>>,
    feeder: &mut Feeder<'_, R>,
) {
    for r in records {
        let item = match r {
            Ok(record) => Item::Read(Box::new(record)),
            Err(e) => Item::Failed(e),
        };
        if !feeder.push(None, item) {
            return;
        }
    }
    feeder.flush();
}

/// What reading one line gave.
#[derive(Debug, PartialEq, Eq)]
pub enum Line {
    /// The end of the input.
    End,
    /// A line of this many bytes, appended to the buffer.
    Read(usize),
    /// A line of this many bytes, longer than allowed: passed over, not kept.
    TooLong(usize),
}

/// Reads one line into `buf`, keeping at most `max` bytes of it: a longer line is read to its
/// end and dropped, so memory never holds more than `max` of it.
pub fn read_line_bounded(
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

/// Where a population comes from.
pub enum Input {
    /// A FHIR Bulk Data export folder.
    Folder(PathBuf),
    /// An NDJSON file, opened, with its size.
    File(File, Option<u64>),
    /// NDJSON on standard input (`-`).
    Stdin,
}

impl Input {
    /// Opens `input` (a file, a folder, or `-`), so that a bad path is one clear error before
    /// anything starts. Returns it with the name messages give it.
    pub fn open(input: &str) -> Result<(Input, String), Fail> {
        if input == "-" {
            return Ok((Input::Stdin, "standard input".to_owned()));
        }
        let path = Path::new(input);
        if path.is_dir() {
            return Ok((Input::Folder(path.to_owned()), input.to_owned()));
        }
        let file = File::open(path).map_err(|e| Fail::input(format!("{input}: {e}")))?;
        let size = file.metadata().ok().map(|m| m.len());
        Ok((Input::File(file, size), input.to_owned()))
    }

    /// The size in bytes, where known (for the progress bar).
    pub fn size(&self) -> Option<u64> {
        match self {
            Input::File(_, size) => *size,
            _ => None,
        }
    }

    /// Feeds NDJSON lines from the file or standard input; a folder feeds nothing (it is
    /// read by the caller, through a `BulkExport`).
    pub fn feed_lines<R>(self, feeder: &mut Feeder<'_, R>, source: &str, max: usize) {
        match self {
            Input::File(f, _) => {
                feed_lines(BufReader::with_capacity(1 << 20, f), feeder, source, max)
            }
            Input::Stdin => feed_lines(std::io::stdin().lock(), feeder, source, max),
            Input::Folder(_) => {
                feeder.flush();
            }
        }
    }
}

/// A progress bar on standard error (drawn only on a terminal): bytes read out of `total`
/// where known, else a spinner.
pub fn progress(total: Option<u64>) -> ProgressBar {
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

/// Runs the pipeline: `feed` (on a thread of its own) fills chunks, each of `workers` (one
/// thread each) turns a chunk into a result, and `take` (on this thread) receives the results
/// in input order, with the progress bar (`total` input bytes, where known). When `take`
/// returns false, reading stops and no more results are taken.
pub fn run<R, D, W, F, T>(feed: F, workers: Vec<W>, total: Option<u64>, mut take: T)
where
    R: Send,
    D: Send,
    W: FnMut(Job<R>) -> D + Send,
    F: FnOnce(&mut Feeder<'_, R>) + Send,
    T: FnMut(D, &ProgressBar) -> bool,
{
    let jobs = workers.len().max(1);
    let (job_tx, job_rx) = sync_channel::<(u64, Job<R>)>(jobs * 2);
    let job_rx = Mutex::new(job_rx);
    let (done_tx, done_rx) = sync_channel::<(u64, D)>(jobs * 2);
    let taken = AtomicU64::new(0);
    let stop = AtomicBool::new(false);
    let read = AtomicU64::new(0);
    let bar = progress(total);
    std::thread::scope(|scope| {
        let (taken_ref, stop_ref, read_ref) = (&taken, &stop, &read);
        scope.spawn(move || {
            let mut feeder = Feeder {
                tx: job_tx,
                seq: 0,
                count: 0,
                chunk: Job::default(),
                window: WINDOW_PER_JOB * jobs as u64,
                taken: taken_ref,
                stop: stop_ref,
                read: read_ref,
            };
            feed(&mut feeder);
        });
        for mut work in workers {
            let tx = done_tx.clone();
            let rx = &job_rx;
            scope.spawn(move || {
                loop {
                    let job = match rx.lock() {
                        Ok(rx) => rx.recv(),
                        Err(_) => return,
                    };
                    let Ok((seq, job)) = job else { return };
                    if tx.send((seq, work(job))).is_err() {
                        return;
                    }
                }
            });
        }
        drop(done_tx);
        let mut pending: BTreeMap<u64, D> = BTreeMap::new();
        let mut next = 0u64;
        let mut going = true;
        for (seq, done) in done_rx.iter() {
            pending.insert(seq, done);
            while let Some(d) = pending.remove(&next) {
                next += 1;
                taken.store(next, Ordering::Release);
                if going && !take(d, &bar) {
                    going = false;
                    stop.store(true, Ordering::Release);
                }
                if total.is_some() {
                    bar.set_position(read.load(Ordering::Relaxed));
                }
                bar.tick();
            }
        }
    });
    bar.finish_and_clear();
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

    #[test]
    fn results_are_taken_in_input_order_whatever_the_workers() {
        let input: String = (1..=1000).map(|i| format!("{i}\n\n")).collect();
        for workers in [1, 3] {
            let mut seen: Vec<(u64, usize, u64)> = Vec::new();
            let work = |job: Job<()>| -> Vec<(u64, usize, u64)> {
                job.items
                    .iter()
                    .enumerate()
                    .map(|(i, (line, item))| {
                        let Item::Line(r) = item else {
                            panic!("a line")
                        };
                        let n: u64 = std::str::from_utf8(&job.buf[r.clone()])
                            .unwrap()
                            .trim()
                            .parse()
                            .unwrap();
                        (job.first + i as u64, line.unwrap(), n)
                    })
                    .collect()
            };
            run(
                |f: &mut Feeder<'_, ()>| feed_lines(input.as_bytes(), f, "in", 100),
                vec![work; workers],
                None,
                |d, _| {
                    seen.extend(d);
                    true
                },
            );
            assert_eq!(seen.len(), 1000);
            for (k, (ordinal, line, n)) in seen.iter().enumerate() {
                assert_eq!(*ordinal, k as u64);
                assert_eq!(*n, k as u64 + 1);
                assert_eq!(*line, 2 * k + 1, "blank lines count as lines");
            }
        }
    }
}
