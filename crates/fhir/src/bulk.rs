//! Streaming readers: NDJSON of Bundles, and FHIR Bulk Data export folders.
//!
//! Both yield one patient at a time. A Bulk Data export is one NDJSON file per resource type,
//! in no particular order, with resources joined to their Patient by reference; to read it
//! with memory that does not grow with the number of patients, the folder is first sorted by
//! patient on disk (bounded runs, then a k-way merge), and patients are read from the merge.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::fs::File;
use std::io::{BufRead, BufReader, BufWriter, Write};
use std::path::{Path, PathBuf};

use serde::Deserialize;
use serde_json::value::RawValue;

use crate::model::{Reference, Text};
use crate::read::{FhirError, Raw, ReadOptions, Reader, Reading, Warning};

/// A problem with one record of a stream, or with the stream itself.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum BulkError {
    /// Reading or writing a file failed.
    #[error("{path}: {message}")]
    Io {
        /// The file.
        path: String,
        /// What went wrong.
        message: String,
    },
    /// One line cannot be read.
    #[error("{path}:{line}: {error}")]
    Line {
        /// The file.
        path: String,
        /// Line number, from 1.
        line: usize,
        /// Why.
        error: FhirError,
    },
    /// One patient's resources cannot be read into a profile.
    #[error("patient {patient}: {error}")]
    Patient {
        /// The patient key.
        patient: String,
        /// Why.
        error: FhirError,
    },
}

fn io(path: &Path, e: &std::io::Error) -> BulkError {
    BulkError::Io {
        path: path.display().to_string(),
        message: e.to_string(),
    }
}

/// Reads NDJSON with one Bundle per line, one patient at a time.
///
/// ```
/// use pathway_core::Date;
/// use pathway_fhir::{BundleLines, ReadOptions, Reader, ValueSets};
/// use pathway_rules::RuleSet;
/// let rs = RuleSet::ms_spasticity().unwrap();
/// let reader = Reader::new(&rs, ValueSets::ms_spasticity(&rs).unwrap());
/// let input = concat!(
///     r#"{"resourceType":"Bundle","entry":[{"resource":{"resourceType":"Patient","id":"a","birthDate":"1970"}}]}"#, "\n",
///     "not json\n",
/// );
/// let opts = ReadOptions::lenient(Date::constant(2026, 11, 22));
/// let results: Vec<_> = BundleLines::new(&reader, input.as_bytes(), "in.ndjson", opts).collect();
/// assert_eq!(results[0].as_ref().unwrap().1.profile.age, 56);
/// assert!(results[1].as_ref().unwrap_err().to_string().starts_with("in.ndjson:2: not valid JSON"));
/// ```
pub struct BundleLines<'a, R> {
    reader: &'a Reader<'a>,
    input: R,
    path: String,
    opts: ReadOptions,
    line: usize,
    buf: Vec<u8>,
}

impl<'a, R: BufRead> BundleLines<'a, R> {
    /// Reads `input`; `path` names it in errors.
    pub fn new(reader: &'a Reader<'a>, input: R, path: &str, opts: ReadOptions) -> Self {
        BundleLines {
            reader,
            input,
            path: path.to_owned(),
            opts,
            line: 0,
            buf: Vec::new(),
        }
    }
}

impl<R: BufRead> Iterator for BundleLines<'_, R> {
    /// The line number and the reading, or the line's error.
    type Item = Result<(usize, Reading), BulkError>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            self.buf.clear();
            match self.input.read_until(b'\n', &mut self.buf) {
                Ok(0) => return None,
                Ok(_) => {}
                Err(e) => return Some(Err(io(Path::new(&self.path), &e))),
            }
            self.line += 1;
            if self.buf.iter().all(u8::is_ascii_whitespace) {
                continue;
            }
            let line = self.line;
            return Some(
                self.reader
                    .read_bundle(&self.buf, &self.opts)
                    .map(|r| (line, r))
                    .map_err(|error| BulkError::Line {
                        path: self.path.clone(),
                        line,
                        error,
                    }),
            );
        }
    }
}

/// Just enough of a resource to find its patient.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct KeyHead<'a> {
    #[serde(borrow)]
    resource_type: Option<Text<'a>>,
    #[serde(borrow)]
    id: Option<Text<'a>>,
    #[serde(borrow)]
    subject: Option<Reference<'a>>,
    #[serde(borrow)]
    patient: Option<Reference<'a>>,
}

/// The patient key of a resource: a Patient's id, or the id its subject or patient refers to.
fn patient_key(h: &KeyHead<'_>) -> Option<String> {
    if h.resource_type.as_deref() == Some("Patient") {
        return h.id.as_deref().map(str::to_owned);
    }
    let r = h
        .subject
        .as_ref()
        .or(h.patient.as_ref())?
        .reference
        .as_deref()?;
    Some(match r.rfind("Patient/") {
        Some(i) => r.get(i + 8..).unwrap_or(r).to_owned(),
        None => r.to_owned(),
    })
}

/// One sorted line of a run: `key \t file \t line \t json`.
#[derive(Debug, PartialEq, Eq, PartialOrd, Ord)]
struct Keyed {
    key: String,
    file: usize,
    line: usize,
    json: String,
}

impl Keyed {
    fn write(&self, out: &mut impl Write) -> std::io::Result<()> {
        writeln!(
            out,
            "{}\t{}\t{}\t{}",
            self.key, self.file, self.line, self.json
        )
    }

    fn parse(s: &str) -> Option<Keyed> {
        let mut it = s.splitn(4, '\t');
        Some(Keyed {
            key: it.next()?.to_owned(),
            file: it.next()?.parse().ok()?,
            line: it.next()?.parse().ok()?,
            json: it.next()?.trim_end_matches('\n').to_owned(),
        })
    }
}

struct Run {
    lines: std::io::Lines<BufReader<File>>,
}

/// A FHIR Bulk Data export folder, read one patient at a time.
///
/// `open` sorts the folder by patient into a temporary folder (in runs of at most
/// `run_bytes`), so memory stays bounded whatever the size of the export; iterating then
/// merges the runs and yields one [`Reading`] per patient, in patient-id order.
pub struct BulkExport<'a> {
    reader: &'a Reader<'a>,
    opts: ReadOptions,
    files: Vec<PathBuf>,
    runs: Vec<Run>,
    heap: BinaryHeap<Reverse<(Keyed, usize)>>,
    skipped: Vec<Warning>,
    /// Medication resources, which name no patient: `(id, JSON)`, given to each patient whose
    /// records reference them (spec 3.6 E2).
    medications: Vec<(String, Box<RawValue>)>,
    _tmp: tempfile::TempDir,
}

impl<'a> BulkExport<'a> {
    /// Sorts the export in `dir` (every `*.ndjson` file) by patient.
    ///
    /// A line that is not JSON is skipped with a warning (lenient) or is an error naming the
    /// file and line (strict). A resource that names no patient is counted and reported once
    /// per read type (unread types, such as an Organization, are only counted), except a
    /// `Medication`, which is kept and read with every patient whose records reference it.
    pub fn open(
        reader: &'a Reader<'a>,
        dir: &Path,
        opts: ReadOptions,
        run_bytes: usize,
    ) -> Result<Self, BulkError> {
        Self::open_in(reader, dir, opts, run_bytes, None)
    }

    /// As [`BulkExport::open`], sorting in a temporary folder made inside `tmp` (the export
    /// is patient data: a site chooses where it may be written); `None` is `TMPDIR` or the
    /// system's. The folder is removed when the export is dropped.
    pub fn open_in(
        reader: &'a Reader<'a>,
        dir: &Path,
        opts: ReadOptions,
        run_bytes: usize,
        tmp: Option<&Path>,
    ) -> Result<Self, BulkError> {
        let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
            .map_err(|e| io(dir, &e))?
            .filter_map(Result::ok)
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|x| x == "ndjson"))
            .collect();
        files.sort();
        let tmp = match tmp {
            Some(parent) => tempfile::Builder::new()
                .prefix("pathway-bulk-")
                .tempdir_in(parent)
                .map_err(|e| io(parent, &e))?,
            None => tempfile::Builder::new()
                .prefix("pathway-bulk-")
                .tempdir()
                .map_err(|e| io(dir, &e))?,
        };
        let mut skipped = Vec::new();
        let mut medications = Vec::new();
        let mut no_patient: std::collections::BTreeMap<String, usize> =
            std::collections::BTreeMap::new();
        let mut buffer: Vec<Keyed> = Vec::new();
        let mut bytes = 0usize;
        let mut run_paths = Vec::new();
        let flush =
            |buffer: &mut Vec<Keyed>, run_paths: &mut Vec<PathBuf>| -> Result<(), BulkError> {
                if buffer.is_empty() {
                    return Ok(());
                }
                buffer.sort_unstable();
                let path = tmp.path().join(format!("run-{}.tsv", run_paths.len()));
                let file = File::create(&path).map_err(|e| io(&path, &e))?;
                let mut w = BufWriter::new(file);
                for k in buffer.drain(..) {
                    k.write(&mut w).map_err(|e| io(&path, &e))?;
                }
                w.flush().map_err(|e| io(&path, &e))?;
                run_paths.push(path);
                Ok(())
            };
        for (fi, path) in files.iter().enumerate() {
            let file = File::open(path).map_err(|e| io(path, &e))?;
            for (li, line) in BufReader::new(file).lines().enumerate() {
                let line = line.map_err(|e| io(path, &e))?;
                if line.trim().is_empty() {
                    continue;
                }
                let problem = match serde_json::from_str::<KeyHead>(&line) {
                    Ok(h) => match patient_key(&h) {
                        // E6: a resource that names no patient is counted per type and
                        // reported once per read type, not once per line; unread types (an
                        // Organization, a Practitioner) are only counted.
                        None if h.resource_type.as_deref() == Some("Medication") => {
                            match (
                                h.id.as_deref(),
                                serde_json::from_str::<Box<RawValue>>(&line),
                            ) {
                                (Some(id), Ok(raw)) => medications.push((id.to_owned(), raw)),
                                _ => *no_patient.entry("Medication".to_owned()).or_default() += 1,
                            }
                            None
                        }
                        None => {
                            let kind = h.resource_type.as_deref().unwrap_or("(no type)");
                            *no_patient.entry(kind.to_owned()).or_default() += 1;
                            None
                        }
                        Some(key) if !key.contains('\t') => {
                            bytes += line.len() + key.len();
                            buffer.push(Keyed {
                                key,
                                file: fi,
                                line: li + 1,
                                json: line,
                            });
                            None
                        }
                        _ => Some("the resource refers to no patient".to_owned()),
                    },
                    Err(e) => Some(format!("not valid JSON: {e}")),
                };
                if let Some(message) = problem {
                    if opts.strict {
                        return Err(BulkError::Line {
                            path: path.display().to_string(),
                            line: li + 1,
                            error: FhirError::Malformed {
                                entry: li + 1,
                                resource: path.display().to_string(),
                                field: "(resource)".into(),
                                message,
                            },
                        });
                    }
                    skipped.push(Warning {
                        entry: Some(li + 1),
                        resource: Some(path.display().to_string()),
                        message: format!("{message}; skipped"),
                    });
                }
                if bytes >= run_bytes {
                    flush(&mut buffer, &mut run_paths)?;
                    bytes = 0;
                }
            }
        }
        flush(&mut buffer, &mut run_paths)?;
        for (kind, n) in no_patient {
            if crate::model::READ_TYPES.contains(&kind.as_str()) {
                skipped.push(Warning {
                    entry: None,
                    resource: None,
                    message: format!(
                        "{n} {kind} resource{} name no patient; skipped",
                        if n == 1 { "" } else { "s" }
                    ),
                });
            }
        }
        let mut runs = Vec::new();
        let mut heap = BinaryHeap::new();
        for path in &run_paths {
            let file = File::open(path).map_err(|e| io(path, &e))?;
            let mut run = Run {
                lines: BufReader::new(file).lines(),
            };
            if let Some(k) = next_keyed(&mut run, path)? {
                heap.push(Reverse((k, runs.len())));
            }
            runs.push(run);
        }
        Ok(BulkExport {
            reader,
            opts,
            files,
            runs,
            heap,
            skipped,
            medications,
            _tmp: tmp,
        })
    }

    /// Lines skipped while sorting (lenient mode), with file and line.
    pub fn skipped(&self) -> &[Warning] {
        &self.skipped
    }

    fn pop(&mut self) -> Result<Option<Keyed>, BulkError> {
        let Some(Reverse((k, run))) = self.heap.pop() else {
            return Ok(None);
        };
        if let Some(r) = self.runs.get_mut(run)
            && let Some(next) = next_keyed(r, Path::new("(sorted run)"))?
        {
            self.heap.push(Reverse((next, run)));
        }
        Ok(Some(k))
    }
}

fn next_keyed(run: &mut Run, path: &Path) -> Result<Option<Keyed>, BulkError> {
    match run.lines.next() {
        None => Ok(None),
        Some(Err(e)) => Err(io(path, &e)),
        Some(Ok(l)) => Ok(Keyed::parse(&l)),
    }
}

impl Iterator for BulkExport<'_> {
    /// One patient's reading, or why that patient could not be read.
    type Item = Result<Reading, BulkError>;

    fn next(&mut self) -> Option<Self::Item> {
        let first = match self.pop() {
            Ok(Some(k)) => k,
            Ok(None) => return None,
            Err(e) => return Some(Err(e)),
        };
        let key = first.key.clone();
        let mut group = vec![first];
        while self.heap.peek().is_some_and(|Reverse((k, _))| k.key == key) {
            match self.pop() {
                Ok(Some(k)) => group.push(k),
                Ok(None) => break,
                Err(e) => return Some(Err(e)),
            }
        }
        let mut raws_owned: Vec<(usize, Box<RawValue>)> = Vec::with_capacity(group.len());
        for k in &group {
            match serde_json::from_str::<Box<RawValue>>(&k.json) {
                Ok(raw) => raws_owned.push((k.line, raw)),
                Err(e) => {
                    let path = self
                        .files
                        .get(k.file)
                        .map_or_else(String::new, |p| p.display().to_string());
                    return Some(Err(BulkError::Line {
                        path,
                        line: k.line,
                        error: FhirError::Json {
                            message: e.to_string(),
                            line: k.line,
                            column: e.column(),
                        },
                    }));
                }
            }
        }
        let mut raws: Vec<Raw<'_>> = raws_owned
            .iter()
            .map(|(line, json)| Raw {
                index: *line,
                full_url: None,
                json,
            })
            .collect();
        // The shared Medications this patient's records reference, as part of its record.
        if !self.medications.is_empty() {
            let referenced = |id: &str| {
                let needle = format!("Medication/{id}\"");
                group.iter().any(|k| k.json.contains(&needle))
            };
            raws.extend(
                self.medications
                    .iter()
                    .filter(|(id, _)| referenced(id))
                    .map(|(_, json)| Raw {
                        index: 0,
                        full_url: None,
                        json,
                    }),
            );
        }
        Some(
            self.reader
                .read_resources(&raws, &self.opts)
                .map_err(|error| BulkError::Patient {
                    patient: key,
                    error,
                }),
        )
    }
}
