//! `pathway`: evaluate patients, check rule sets, draw the ladder, screen populations.
//!
//! Exit codes: 0 ok, 1 invalid input or rule set, 2 usage.
#![forbid(unsafe_code)]

mod batch;
mod check;
mod common;
mod diff;
mod evaluate;
mod serve;
mod stream;
mod test;
mod verify;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand, ValueEnum};

use crate::common::Fail;

/// The binary allocates many small, short-lived strings per patient (FHIR parsing, results);
/// mimalloc serves them faster than the system allocator. Library users choose their own.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Rule-based decision support for the MS spasticity treatment ladder.
#[derive(Debug, Parser)]
#[command(name = "pathway", version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

/// How FHIR records are read, the same for every command: lenient by default (a malformed
/// resource is skipped and the result says so), strict on request (it is an error).
#[derive(Debug, Clone, Copy, clap::Args)]
pub struct Strictness {
    /// Fail on a malformed FHIR resource (or one with a modifierExtension).
    #[arg(long, conflicts_with = "lenient")]
    pub strict: bool,
    /// Skip a malformed FHIR resource with a warning in the result (the default).
    #[arg(long)]
    pub lenient: bool,
}

/// Where the rule set and value sets come from.
#[derive(Debug, Clone, clap::Args)]
pub struct Content {
    /// Rule set (TOML); default: the shipped MS spasticity rule set.
    #[arg(long, value_name = "PATH")]
    pub ruleset: Option<PathBuf>,
    /// Value sets for FHIR input (TOML); default: the shipped ones.
    #[arg(long, value_name = "PATH")]
    pub valuesets: Option<PathBuf>,
}

/// Output of `evaluate`.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum Format {
    /// For people: grouped by tier, the why and why-not.
    Text,
    /// The stable machine contract (see `pathway schema result`).
    Json,
    /// A CDS Hooks 2.0 response.
    CdsHooks,
    /// A FHIR R4 RequestGroup.
    Fhir,
}

/// Output of `graph`.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum GraphFormat {
    /// Graphviz DOT.
    Dot,
    /// Mermaid flowchart.
    Mermaid,
    /// Self-contained SVG.
    Svg,
    /// Self-contained HTML page (SVG and a table of reasons).
    Html,
}

/// How much `batch` writes per patient.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Detail {
    /// The full result with every reason, fact and source.
    Full,
    /// Per step: status, decisive rule ids and missing facts.
    Summary,
}

/// What `generate` writes.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum GenerateFormat {
    /// FHIR R4 Bundles, one per line.
    Bundles,
    /// Pathway profiles, one per line.
    Profiles,
}

/// What `schema` prints.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum SchemaKind {
    /// The rule-set file.
    Ruleset,
    /// The patient profile.
    Profile,
    /// The result of `evaluate --format json`.
    Result,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Evaluate one patient: a FHIR R4 Bundle or a Pathway profile (JSON), from a file or `-`.
    Evaluate {
        /// The input file, or `-` for standard input.
        input: String,
        #[command(flatten)]
        content: Content,
        /// Evaluation date (YYYY-MM-DD); default: today (UTC), or the profile's own date.
        #[arg(long, value_name = "YYYY-MM-DD")]
        date: Option<String>,
        /// Output format.
        #[arg(long, value_enum, default_value_t = Format::Text)]
        format: Format,
        #[command(flatten)]
        strictness: Strictness,
        /// Colour: auto (on a terminal, unless NO_COLOR is set), always or never.
        #[arg(long, value_enum, default_value_t = common::Colour::Auto)]
        colour: common::Colour,
        /// The patient a profile describes (`Patient/<id>`): the subject of the `fhir` and
        /// `cds-hooks` formats, which a profile alone cannot name. A Bundle names its own.
        #[arg(long, value_name = "REFERENCE")]
        patient: Option<String>,
    },
    /// Validate and lint a rule set; report problems with file, line and column.
    Check {
        /// The rule set (TOML).
        ruleset: PathBuf,
        /// Also check value sets against it.
        #[arg(long, value_name = "PATH")]
        valuesets: Option<PathBuf>,
    },
    /// Draw the ladder; with a patient, colour each step by its status.
    Graph {
        /// A patient to evaluate (FHIR Bundle or profile).
        #[arg(long, value_name = "FILE")]
        patient: Option<String>,
        #[command(flatten)]
        content: Content,
        /// Evaluation date for the patient (YYYY-MM-DD).
        #[arg(long, value_name = "YYYY-MM-DD")]
        date: Option<String>,
        /// Picture format.
        #[arg(long, value_enum, default_value_t = GraphFormat::Svg)]
        format: GraphFormat,
        /// Write here instead of standard output.
        #[arg(long, short, value_name = "FILE")]
        out: Option<PathBuf>,
    },
    /// Evaluate a population: NDJSON of Bundles, or a FHIR Bulk Data export folder.
    Batch {
        /// NDJSON file of Bundles (or `-`), or a Bulk Data export folder.
        input: String,
        /// Where to write one JSON result per patient (NDJSON); `-` for standard output.
        #[arg(long, short, value_name = "FILE")]
        out: PathBuf,
        #[command(flatten)]
        content: Content,
        /// Evaluation date (YYYY-MM-DD); default: today (UTC).
        #[arg(long, value_name = "YYYY-MM-DD")]
        date: Option<String>,
        /// Stop at the first bad record.
        #[arg(long)]
        fail_fast: bool,
        #[command(flatten)]
        strictness: Strictness,
        /// Worker threads; default: every core.
        #[arg(long, value_name = "N")]
        jobs: Option<usize>,
        /// What each result line holds: the full result (as `evaluate --format json`), or a
        /// summary (per step: status, decisive rule ids, missing facts).
        #[arg(long, value_enum, default_value_t = Detail::Full)]
        detail: Detail,
        /// The longest record (line) read, in bytes; a longer one is reported as a bad record.
        #[arg(long, value_name = "BYTES", default_value_t = 64 << 20)]
        max_record_bytes: usize,
        /// Where a Bulk Data export is sorted (patient data: choose a protected place); default
        /// TMPDIR, else the system's temporary folder. Removed when done.
        #[arg(long, value_name = "DIR")]
        tmpdir: Option<PathBuf>,
        /// Above this share of bad records (0-1), the summary warns plainly.
        #[arg(long, value_name = "SHARE", default_value_t = 0.05)]
        max_failed_share: f64,
    },
    /// Write synthetic patients (reproducible from a seed), for trying `batch` and `diff` and
    /// for load tests: patients of the shipped rule set, or of `--ruleset` (Bundles then need
    /// value sets that fit it, `--valuesets`).
    Generate {
        /// How many patients.
        count: usize,
        #[command(flatten)]
        content: Content,
        /// Where to write them (NDJSON).
        #[arg(long, short, value_name = "FILE")]
        out: PathBuf,
        /// FHIR Bundles (default) or Pathway profiles.
        #[arg(long, value_enum, default_value_t = GenerateFormat::Bundles)]
        format: GenerateFormat,
        /// Random seed.
        #[arg(long, default_value_t = 1)]
        seed: u64,
        /// Evaluation date of the patients (YYYY-MM-DD); default: today (UTC).
        #[arg(long, value_name = "YYYY-MM-DD")]
        date: Option<String>,
    },
    /// Run a rule set's test cases (patients with expected statuses) like a test runner.
    Test {
        /// The rule set (TOML).
        ruleset: PathBuf,
        /// The test cases (TOML); default: `NAME.cases.toml` beside the rule set.
        #[arg(long, value_name = "FILE")]
        cases: Option<PathBuf>,
        /// Value sets for FHIR cases; default: the shipped ones.
        #[arg(long, value_name = "FILE")]
        valuesets: Option<PathBuf>,
        /// Also report which rules no case makes decisive.
        #[arg(long)]
        coverage: bool,
    },
    /// Check safety properties of a rule set over generated patients; print a shrunk
    /// counterexample (as a profile and a FHIR Bundle) for any that fails; exit 1 then.
    Verify {
        /// The rule set (TOML).
        ruleset: PathBuf,
        /// Value sets, for writing a counterexample as a FHIR Bundle; default: the shipped ones.
        #[arg(long, value_name = "FILE")]
        valuesets: Option<PathBuf>,
        /// How many patients to generate.
        #[arg(long, default_value_t = 300)]
        patients: usize,
        /// Random seed (the same seed, the same patients).
        #[arg(long, default_value_t = 1)]
        seed: u64,
    },
    /// What a rule-set change does: rules added, removed or changed, then the patients of a
    /// population whose statuses change, grouped by step and transition.
    ///
    /// The population is NDJSON whose lines are FHIR Bundles (read as `batch` reads them) or
    /// Pathway profiles, a Bulk Data export folder, `-` for standard input, or (by default)
    /// patients generated from the old rule set. It is streamed on every core; only the
    /// groups are kept (with their first example patients in input order), so memory does not
    /// grow with the population and the report is the same whatever `--jobs`.
    #[command(after_long_help = diff::JSON_HELP)]
    Diff {
        /// The rule set before (TOML).
        old: PathBuf,
        /// The rule set after (TOML).
        new: PathBuf,
        /// NDJSON of FHIR Bundles or Pathway profiles (one per line, detected per line), `-`
        /// for standard input, or a Bulk Data export folder; default: generated patients.
        #[arg(long, value_name = "FILE")]
        population: Option<String>,
        /// How many patients to generate when no population is given.
        #[arg(long, default_value_t = 2000, conflicts_with = "population")]
        patients: usize,
        /// Random seed for the generated population.
        #[arg(long, default_value_t = 1, conflicts_with = "population")]
        seed: u64,
        /// Value sets for FHIR input, used with both rule sets; default: the shipped ones.
        #[arg(long, value_name = "PATH")]
        valuesets: Option<PathBuf>,
        /// Evaluation date (YYYY-MM-DD) for Bundles (default: today, UTC), profiles (default:
        /// their own date) and generated patients (default: 2026-11-22).
        #[arg(long, value_name = "YYYY-MM-DD")]
        date: Option<String>,
        #[command(flatten)]
        strictness: Strictness,
        /// Stop at the first bad record (otherwise it is reported and skipped).
        #[arg(long)]
        fail_fast: bool,
        /// Exit 1 when some patient's status changes (for CI of rule sets).
        #[arg(long)]
        fail_on_change: bool,
        /// Worker threads; default: every core. The report does not depend on it.
        #[arg(long, value_name = "N")]
        jobs: Option<usize>,
        /// Report format: text for people, or JSON (its shape is under --help).
        #[arg(long, value_enum, default_value_t = diff::Format::Text)]
        format: diff::Format,
        /// Write the report here instead of standard output (`-`: standard output).
        #[arg(long, short, value_name = "FILE")]
        out: Option<PathBuf>,
        /// Example patients listed per group (the first ones in input order).
        #[arg(long, value_name = "N", default_value_t = 5)]
        examples: usize,
        /// The longest record (line) read, in bytes; a longer one is reported as a bad record.
        #[arg(long, value_name = "BYTES", default_value_t = 64 << 20)]
        max_record_bytes: usize,
        /// Where a Bulk Data export is sorted (patient data: choose a protected place); default
        /// TMPDIR, else the system's temporary folder. Removed when done.
        #[arg(long, value_name = "DIR")]
        tmpdir: Option<PathBuf>,
    },
    /// Run the CDS Hooks 2.0 service an EHR calls (patient-view, order-select, order-sign).
    Serve {
        /// Port to listen on (on the configured address; default 8080).
        #[arg(long, value_name = "N")]
        port: Option<u16>,
        /// Configuration file (TOML); `PATHWAY_*` environment variables and flags override it.
        #[arg(long, value_name = "FILE", env = "PATHWAY_CONFIG")]
        config: Option<PathBuf>,
        /// Accept hook calls without a verified JWT. Development only: never in production.
        #[arg(long)]
        insecure_dev: bool,
    },
    /// Clinicians' feedback on cards, as stored by `serve`.
    Feedback {
        #[command(subcommand)]
        command: FeedbackCommand,
    },
    /// Print a JSON Schema.
    Schema {
        /// Which document.
        #[arg(value_enum)]
        kind: SchemaKind,
    },
}

/// What `feedback` does.
#[derive(Debug, Subcommand)]
enum FeedbackCommand {
    /// Acceptance and override rates per rule and per card kind.
    Report {
        /// The feedback database (default: the configuration's, or `pathway-feedback.sqlite`).
        #[arg(long, value_name = "FILE")]
        db: Option<PathBuf>,
    },
}

fn run(cli: Cli) -> Result<(), Fail> {
    match cli.command {
        Command::Evaluate {
            input,
            content,
            date,
            format,
            strictness,
            colour,
            patient,
        } => evaluate::run(
            &input,
            &content,
            date.as_deref(),
            format,
            strictness.strict,
            colour,
            patient.as_deref(),
        ),
        Command::Check { ruleset, valuesets } => check::run(&ruleset, valuesets.as_deref()),
        Command::Graph {
            patient,
            content,
            date,
            format,
            out,
        } => evaluate::graph(
            patient.as_deref(),
            &content,
            date.as_deref(),
            format,
            out.as_deref(),
        ),
        Command::Batch {
            input,
            out,
            content,
            date,
            fail_fast,
            strictness,
            jobs,
            detail,
            max_record_bytes,
            tmpdir,
            max_failed_share,
        } => batch::run(&batch::Options {
            input,
            out,
            content,
            date,
            fail_fast,
            strict: strictness.strict,
            jobs,
            detail,
            max_record_bytes,
            tmpdir,
            max_failed_share,
        }),
        Command::Generate {
            count,
            content,
            out,
            format,
            seed,
            date,
        } => batch::generate(count, &out, format, seed, date.as_deref(), &content),
        Command::Test {
            ruleset,
            cases,
            valuesets,
            coverage,
        } => test::run(&ruleset, cases.as_deref(), valuesets.as_deref(), coverage),
        Command::Verify {
            ruleset,
            valuesets,
            patients,
            seed,
        } => verify::run(&ruleset, valuesets.as_deref(), patients, seed),
        Command::Diff {
            old,
            new,
            population,
            patients,
            seed,
            valuesets,
            date,
            strictness,
            fail_fast,
            fail_on_change,
            jobs,
            format,
            out,
            examples,
            max_record_bytes,
            tmpdir,
        } => diff::run(&diff::Options {
            old,
            new,
            population,
            patients,
            seed,
            valuesets,
            date,
            strict: strictness.strict,
            fail_fast,
            fail_on_change,
            jobs,
            format,
            out,
            examples,
            max_record_bytes,
            tmpdir,
        }),
        Command::Serve {
            port,
            config,
            insecure_dev,
        } => serve::run(port, config.as_deref(), insecure_dev),
        Command::Feedback {
            command: FeedbackCommand::Report { db },
        } => serve::report(db.as_deref()),
        Command::Schema { kind } => {
            let schema = match kind {
                SchemaKind::Ruleset => pathway_rules::schema::ruleset(),
                SchemaKind::Profile => pathway_rules::schema::profile(),
                SchemaKind::Result => pathway_rules::schema::result(),
            };
            common::print(&common::pretty(&schema)?)
        }
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(f) => {
            if !f.message.is_empty() {
                eprintln!("pathway: {}", f.message);
            }
            ExitCode::from(f.code)
        }
    }
}
