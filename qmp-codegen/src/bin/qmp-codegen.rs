//! `qmp-codegen`: import, check and generate code from QAPI schemas.
//!
//! ```text
//! qmp-codegen import PATH -o FILE [--source-name NAME]
//! qmp-codegen check PATH
//! qmp-codegen generate PATH -o DIR [--no-docs]
//! qmp-codegen merge [VERSION=]PATH... -o FILE [--report]
//! ```

use std::path::PathBuf;
use std::process::ExitCode;

use qmp_codegen::history::{self, MergeInput, Merged, TypeChangeKind, Version};

const USAGE: &str = "\
Usage:
  qmp-codegen import PATH -o FILE [--source-name NAME]
      Write the normalized schema (facts only, no doc prose) read from PATH: a QAPI root
      file (e.g. qapi/qapi-schema.json) or a query-qmp-schema dump.
      --source-name NAME  the source recorded in the file (default: the path from the
                          qemu-X.Y.Z/qga-X.Y.Z directory on, else the file name)
  qmp-codegen check PATH
      Load and check PATH (QAPI root file, query-qmp-schema dump, or normalized schema) and
      print the number of definitions per kind. Exit code 1 if the schema is broken.
  qmp-codegen generate PATH -o DIR [--no-docs]
      Generate the typed API's Rust files (types.rs, commands.rs, events.rs, schema.rs) from
      PATH (any input kind) into DIR, as qmp-api's build script does. Files already up to date
      are left untouched. --no-docs leaves the schema's doc prose out.
  qmp-codegen merge [VERSION=]PATH... -o FILE [--report]
      Merge the schemas of several versions of one family (e.g. every
      qemu-X.Y.Z/qapi/qapi-schema.json) into one normalized schema with a version history
      (see schema/README.md). A version is taken from the qemu-X.Y.Z/qga-X.Y.Z directory in
      its PATH, or given as 9.2=PATH. --report prints what changed between versions: type
      changes and how many members the requirement rules make optional.
  qmp-codegen --help
      Show this help.
";

/// A parsed command line.
enum Cmd {
    Help,
    Import {
        input: PathBuf,
        output: PathBuf,
        source_name: Option<String>,
    },
    Check {
        input: PathBuf,
    },
    Generate {
        input: PathBuf,
        output: PathBuf,
        prose: bool,
    },
    Merge {
        inputs: Vec<(Version, PathBuf)>,
        output: PathBuf,
        report: bool,
    },
}

/// The arguments of `merge`: `-o FILE`, `--report`, and one or more `[VERSION=]PATH`.
fn parse_merge(args: &[String]) -> Result<Cmd, String> {
    let mut inputs = Vec::new();
    let mut output = None;
    let mut report = false;
    let mut it = args.iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "-h" | "--help" => return Ok(Cmd::Help),
            "-o" | "--output" => match it.next() {
                Some(v) => output = Some(PathBuf::from(v)),
                None => return Err(format!("option {a} needs a file name")),
            },
            "--report" => report = true,
            s if s.starts_with('-') && s.len() > 1 => {
                return Err(format!("merge: unknown option '{s}'"))
            }
            s => {
                let (version, path) = match s.split_once('=') {
                    Some((v, p)) if Version::parse(v).is_some() => (Version::parse(v), p),
                    _ => (Version::from_path(s), s),
                };
                let Some(version) = version else {
                    return Err(format!(
                        "merge: cannot tell the version of '{s}': its path has no \
                         qemu-X.Y.Z or qga-X.Y.Z directory; write it as X.Y={s}"
                    ));
                };
                inputs.push((version, PathBuf::from(path)));
            }
        }
    }
    if inputs.is_empty() {
        return Err("merge: missing input PATHs (one per version)".into());
    }
    Ok(Cmd::Merge {
        inputs,
        output: output.ok_or("merge: missing -o FILE")?,
        report,
    })
}

fn parse_args(args: &[String]) -> Result<Cmd, String> {
    let Some((sub, rest)) = args.split_first() else {
        return Err("missing subcommand (import, check, generate or merge)".into());
    };
    match sub.as_str() {
        "-h" | "--help" | "help" => Ok(Cmd::Help),
        "import" => {
            let mut output = None;
            let mut source_name = None;
            let Some(input) = walk("import", rest, |option, value| match option {
                "-o" | "--output" => {
                    output = Some(PathBuf::from(value("a file name")?));
                    Ok(())
                }
                "--source-name" => {
                    source_name = Some(value("a value")?.to_owned());
                    Ok(())
                }
                _ => Err(OptionError::Unknown),
            })?
            else {
                return Ok(Cmd::Help);
            };
            Ok(Cmd::Import {
                input,
                output: output.ok_or("import: missing -o FILE")?,
                source_name,
            })
        }
        "check" => match walk("check", rest, |_, _| Err(OptionError::Unknown))? {
            Some(input) => Ok(Cmd::Check { input }),
            None => Ok(Cmd::Help),
        },
        "generate" => {
            let mut output = None;
            let mut prose = true;
            let Some(input) = walk("generate", rest, |option, value| match option {
                "-o" | "--output" => {
                    output = Some(PathBuf::from(value("a directory")?));
                    Ok(())
                }
                "--no-docs" => {
                    prose = false;
                    Ok(())
                }
                _ => Err(OptionError::Unknown),
            })?
            else {
                return Ok(Cmd::Help);
            };
            Ok(Cmd::Generate {
                input,
                output: output.ok_or("generate: missing -o DIR")?,
                prose,
            })
        }
        "merge" => parse_merge(rest),
        other => Err(format!(
            "unknown subcommand '{other}' (expected import, check, generate or merge)"
        )),
    }
}

/// Why an option handler refused an option.
enum OptionError {
    /// The subcommand has no such option.
    Unknown,
    /// The option lacks its value; the message says which.
    Invalid(String),
}

impl From<String> for OptionError {
    fn from(message: String) -> Self {
        OptionError::Invalid(message)
    }
}

/// Walks one subcommand's arguments: `--help`, the options `on_option` knows, and exactly one
/// input PATH, which it returns (`None` for `--help`). `on_option` gets the option and a
/// function that takes its value, naming what the value is ("a file name") for the error
/// when the command line ends first.
fn walk<'a>(
    sub: &str,
    args: &'a [String],
    mut on_option: impl FnMut(
        &str,
        &mut dyn FnMut(&str) -> Result<&'a str, String>,
    ) -> Result<(), OptionError>,
) -> Result<Option<PathBuf>, String> {
    let mut input = None;
    let mut it = args.iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "-h" | "--help" => return Ok(None),
            s if s.starts_with('-') && s.len() > 1 => {
                let mut value = |what: &str| match it.next() {
                    Some(v) => Ok(v.as_str()),
                    None => Err(format!("option {s} needs {what}")),
                };
                match on_option(s, &mut value) {
                    Ok(()) => {}
                    Err(OptionError::Unknown) => {
                        return Err(format!("{sub}: unknown option '{s}'"))
                    }
                    Err(OptionError::Invalid(e)) => return Err(e),
                }
            }
            s => {
                if input.is_some() {
                    return Err(format!("{sub}: unexpected extra argument '{s}'"));
                }
                input = Some(PathBuf::from(s));
            }
        }
    }
    input
        .map(Some)
        .ok_or_else(|| format!("{sub}: missing input PATH"))
}

fn run(cmd: Cmd) -> Result<(), String> {
    match cmd {
        Cmd::Help => {
            print!("{USAGE}");
            Ok(())
        }
        Cmd::Import {
            input,
            output,
            source_name,
        } => {
            let mut schema = qmp_codegen::load_path(&input).map_err(|e| e.to_string())?;
            if let Some(n) = source_name {
                schema.source = Some(n);
            }
            let text = qmp_codegen::normalized::to_string(&schema);
            std::fs::write(&output, text)
                .map_err(|e| format!("{}: cannot write: {e}", output.display()))?;
            eprintln!("{}: {}", output.display(), schema.counts());
            Ok(())
        }
        Cmd::Check { input } => {
            let schema = qmp_codegen::load_path(&input).map_err(|e| e.to_string())?;
            println!("{}", schema.counts());
            Ok(())
        }
        Cmd::Generate {
            input,
            output,
            prose,
        } => {
            let files = qmp_codegen::Config::new()
                .prose(prose)
                .generate_path(&input)
                .map_err(|e| e.to_string())?;
            let (written, changed) =
                qmp_codegen::write_if_changed(&output, &files).map_err(|e| e.to_string())?;
            for (path, lines) in &written {
                eprintln!("{}: {lines} lines", path.display());
            }
            eprintln!("{changed} of {} files changed", written.len());
            Ok(())
        }
        Cmd::Merge {
            inputs,
            output,
            report,
        } => merge(inputs, output, report),
    }
}

fn merge(inputs: Vec<(Version, PathBuf)>, output: PathBuf, report: bool) -> Result<(), String> {
    let mut loaded = Vec::with_capacity(inputs.len());
    for (version, path) in inputs {
        let schema = qmp_codegen::load_path(&path).map_err(|e| e.to_string())?;
        let source = schema
            .source
            .clone()
            .unwrap_or_else(|| qmp_codegen::source_name(&path));
        loaded.push(MergeInput::new(version, source, schema));
    }
    let merged = history::merge(loaded).map_err(|e| e.to_string())?;
    let text = merged.to_normalized();
    std::fs::write(&output, text)
        .map_err(|e| format!("{}: cannot write: {e}", output.display()))?;
    let m = Merged::new(&merged);
    let h = m.history();
    eprintln!(
        "{}: {} versions ({} to {}), {}",
        output.display(),
        h.versions.len(),
        h.versions
            .first()
            .map(|v| v.version.to_string())
            .unwrap_or_default(),
        h.versions
            .last()
            .map(|v| v.version.to_string())
            .unwrap_or_default(),
        merged.schema.counts()
    );
    if report {
        print_report(&m);
    }
    Ok(())
}

/// What `merge --report` prints: type changes by kind, then requirement figures.
fn print_report(m: &Merged<'_>) {
    let h = m.history();
    println!("type changes (merged type; other types with their versions):");
    for c in m.type_changes() {
        let merged = c
            .merged
            .as_ref()
            .map_or("none".to_string(), |t| t.to_string());
        for (t, set, kind) in &c.others {
            let t = t.as_ref().map_or("none".to_string(), |t| t.to_string());
            let kind = match kind {
                TypeChangeKind::Integer { covered: true } => "integer, covered",
                TypeChangeKind::Integer { covered: false } => "integer, NOT covered",
                TypeChangeKind::String => "string",
                TypeChangeKind::Object => "object",
                TypeChangeKind::Widened => "widened",
                TypeChangeKind::Incompatible => "INCOMPATIBLE",
            };
            let sent = c.sent.intersection(*set);
            let accepted = c.accepted.intersection(*set);
            println!(
                "  {}: {merged}; {t} in {} [{kind}; sent by QEMU in {}, accepted in {}]",
                c.path,
                h.format_set(*set),
                h.format_set(sent),
                h.format_set(accepted)
            );
        }
    }
    let reqs = m.requirements();
    let mut replies = (0, 0);
    let mut arguments = (0, 0);
    for (p, r) in &reqs {
        let declared = m.schema().get(p.owner()).map(|_| ()).is_some();
        if !declared {
            continue;
        }
        if let Some(x) = r.in_replies {
            replies.0 += 1;
            replies.1 += usize::from(!x);
        }
        if let Some(x) = r.in_arguments {
            arguments.0 += 1;
            arguments.1 += usize::from(!x);
        }
    }
    println!(
        "members in what QEMU sends: {} ({} optional); in arguments: {} ({} optional)",
        replies.0, replies.1, arguments.0, arguments.1
    );
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let cmd = match parse_args(&args) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("qmp-codegen: {e}\n\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    match run(cmd) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("qmp-codegen: error: {e}");
            ExitCode::FAILURE
        }
    }
}
