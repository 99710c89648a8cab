//! `qmp-codegen`: import, check and generate code from QAPI schemas.
//!
//! ```text
//! qmp-codegen import PATH -o FILE [--source-name NAME]
//! qmp-codegen check PATH
//! qmp-codegen generate PATH -o DIR [--no-docs]
//! ```

use std::path::PathBuf;
use std::process::ExitCode;

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
}

fn parse_args(args: &[String]) -> Result<Cmd, String> {
    let Some((sub, rest)) = args.split_first() else {
        return Err("missing subcommand (import, check or generate)".into());
    };
    match sub.as_str() {
        "-h" | "--help" | "help" => Ok(Cmd::Help),
        "import" => {
            let mut input = None;
            let mut output = None;
            let mut source_name = None;
            let mut it = rest.iter();
            while let Some(a) = it.next() {
                match a.as_str() {
                    "-h" | "--help" => return Ok(Cmd::Help),
                    "-o" | "--output" => {
                        output = Some(PathBuf::from(
                            it.next().ok_or("option -o needs a file name")?,
                        ))
                    }
                    "--source-name" => {
                        source_name = Some(
                            it.next()
                                .ok_or("option --source-name needs a value")?
                                .clone(),
                        )
                    }
                    s if s.starts_with('-') && s.len() > 1 => {
                        return Err(format!("import: unknown option '{s}'"))
                    }
                    s => {
                        if input.is_some() {
                            return Err(format!("import: unexpected extra argument '{s}'"));
                        }
                        input = Some(PathBuf::from(s));
                    }
                }
            }
            Ok(Cmd::Import {
                input: input.ok_or("import: missing input PATH")?,
                output: output.ok_or("import: missing -o FILE")?,
                source_name,
            })
        }
        "check" => {
            let mut input = None;
            for a in rest {
                match a.as_str() {
                    "-h" | "--help" => return Ok(Cmd::Help),
                    s if s.starts_with('-') && s.len() > 1 => {
                        return Err(format!("check: unknown option '{s}'"))
                    }
                    s => {
                        if input.is_some() {
                            return Err(format!("check: unexpected extra argument '{s}'"));
                        }
                        input = Some(PathBuf::from(s));
                    }
                }
            }
            Ok(Cmd::Check {
                input: input.ok_or("check: missing input PATH")?,
            })
        }
        "generate" => {
            let mut input = None;
            let mut output = None;
            let mut prose = true;
            let mut it = rest.iter();
            while let Some(a) = it.next() {
                match a.as_str() {
                    "-h" | "--help" => return Ok(Cmd::Help),
                    "-o" | "--output" => {
                        output = Some(PathBuf::from(
                            it.next().ok_or("option -o needs a directory")?,
                        ))
                    }
                    "--no-docs" => prose = false,
                    s if s.starts_with('-') && s.len() > 1 => {
                        return Err(format!("generate: unknown option '{s}'"))
                    }
                    s => {
                        if input.is_some() {
                            return Err(format!("generate: unexpected extra argument '{s}'"));
                        }
                        input = Some(PathBuf::from(s));
                    }
                }
            }
            Ok(Cmd::Generate {
                input: input.ok_or("generate: missing input PATH")?,
                output: output.ok_or("generate: missing -o DIR")?,
                prose,
            })
        }
        other => Err(format!(
            "unknown subcommand '{other}' (expected import, check or generate)"
        )),
    }
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
            let schema = qmp_codegen::load_path(&input).map_err(|e| e.to_string())?;
            let files = qmp_codegen::Config::new()
                .prose(prose)
                .generate(&schema)
                .map_err(|e| e.to_string())?;
            let (written, changed) =
                qmp_codegen::write_if_changed(&output, &files).map_err(|e| e.to_string())?;
            for (path, lines) in &written {
                eprintln!("{}: {lines} lines", path.display());
            }
            eprintln!("{changed} of {} files changed", written.len());
            Ok(())
        }
    }
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
