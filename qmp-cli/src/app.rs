//! What each way of running `qmp` does: one-shot commands, `help`, `compat`, `events`,
//! `job wait`, and the shell.

use std::io::Write as _;
use std::process::ExitCode;

use serde_json::Value;

use crate::args::{self, Request};
use crate::check::Checker;
use crate::cli::{Cli, JobCmd, Sub};
use crate::connect::{self, Session};
use crate::output::{self, Log, Style};
use crate::schema::{self, Family};

/// Exit status: the server answered with an error.
pub const EXIT_QMP_ERROR: u8 = 1;
/// Exit status: bad usage, or arguments refused before sending.
pub const EXIT_USAGE: u8 = 2;
/// Exit status: no connection (or it broke).
pub const EXIT_CONNECTION: u8 = 3;

/// A failure that ends `qmp`, with its exit status.
#[derive(Debug)]
pub struct Failure {
    /// The exit status.
    pub code: u8,
    /// What to print on stderr (after `error: `).
    pub message: String,
}

impl Failure {
    /// A usage failure (status 2).
    pub fn usage(message: impl Into<String>) -> Failure {
        Failure {
            code: EXIT_USAGE,
            message: message.into(),
        }
    }

    /// A connection failure (status 3).
    pub fn connection(message: impl std::fmt::Display) -> Failure {
        Failure {
            code: EXIT_CONNECTION,
            message: message.to_string(),
        }
    }

    /// The failure of a command that was sent: a QMP error (status 1, `Class: description`),
    /// anything else as a connection failure.
    pub fn execute(command: &str, e: &qmp_api::ExecuteError) -> Failure {
        match e.qmp_error() {
            Some(q) => Failure {
                code: EXIT_QMP_ERROR,
                message: format!("{}: {}", q.class, q.desc),
            },
            None => Failure::connection(format!("{command}: {e}")),
        }
    }
}

/// Runs `qmp` as parsed.
pub fn run(cli: Cli) -> ExitCode {
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::from(EXIT_CONNECTION);
        }
    };
    match dispatch(cli, &runtime) {
        Ok(()) => ExitCode::SUCCESS,
        Err(f) => {
            eprintln!("error: {}", f.message);
            ExitCode::from(f.code)
        }
    }
}

fn family(cli: &Cli) -> Family {
    if cli.connect.agent {
        Family::Agent
    } else {
        Family::Qemu
    }
}

fn dispatch(mut cli: Cli, rt: &tokio::runtime::Runtime) -> Result<(), Failure> {
    match cli.sub.take() {
        Some(Sub::Help { command }) => help(&cli, command.as_deref()),
        Some(Sub::Compat { verbose }) => rt.block_on(compat(&cli, verbose)),
        Some(Sub::Events { names }) => rt.block_on(events(&cli, &names)),
        Some(Sub::Job(JobCmd::Wait { id })) => rt.block_on(job_wait(&cli, &id)),
        // `qmp --spawn -- QEMU ARGS`: no command, QEMU's arguments only.
        Some(Sub::Qmp(words)) if words.first().is_some_and(|w| w.starts_with('-')) => {
            cli.qemu_args = words;
            crate::shell::run(&cli, rt)
        }
        Some(Sub::Qmp(mut words)) if cli.hmp => {
            // `-H info block -- QEMU ARGS`: what follows `--` is QEMU's (with --spawn), not
            // part of the HMP line.
            if let Some(at) = words.iter().position(|w| w == "--") {
                cli.qemu_args = words.split_off(at + 1);
                words.pop();
            }
            rt.block_on(one_shot_hmp(&cli, &words.join(" ")))
        }
        Some(Sub::Qmp(words)) => {
            let (request, flags) = one_shot_request(&cli, words)?;
            cli.json |= flags.json;
            cli.wait |= flags.wait;
            cli.no_check |= flags.no_check;
            if !flags.qemu_args.is_empty() {
                cli.qemu_args = flags.qemu_args;
            }
            rt.block_on(one_shot(&cli, request))
        }
        None => {
            if cli.args.is_some() {
                return Err(Failure::usage(
                    "--args needs a command: qmp -s SOCKET COMMAND --args '{...}'",
                ));
            }
            crate::shell::run(&cli, rt)
        }
    }
}

/// Flags that may follow the command name of a one-shot (clap passes everything after the
/// command to us).
#[derive(Debug, Default)]
struct TrailingFlags {
    json: bool,
    wait: bool,
    no_check: bool,
    qemu_args: Vec<String>,
}

/// Reads `COMMAND [key=value | --args JSON | --json | --wait | --no-check]... [-- QEMU ARGS]`.
fn one_shot_request(cli: &Cli, words: Vec<String>) -> Result<(Request, TrailingFlags), Failure> {
    let mut words = words.into_iter();
    let command = words.next().unwrap_or_default();
    let mut flags = TrailingFlags::default();
    let mut args_json = cli.args.clone();
    let mut kv = Vec::new();
    while let Some(w) = words.next() {
        match w.as_str() {
            "--" => {
                flags.qemu_args = words.by_ref().collect();
            }
            "--json" => flags.json = true,
            "--wait" => flags.wait = true,
            "--no-check" => flags.no_check = true,
            "--args" => {
                args_json = Some(words.next().ok_or_else(|| {
                    Failure::usage("--args needs a JSON object: --args '{\"key\": value}'")
                })?);
            }
            other if other.starts_with("--args=") => {
                args_json = Some(other["--args=".len()..].to_string());
            }
            other if other.starts_with("--") && !other.contains('=') => {
                return Err(Failure::usage(format!(
                    "'{other}' after the command: put options before the command name \
                     (qmp [OPTIONS] COMMAND key=value ...)"
                )));
            }
            _ => kv.push(w),
        }
    }
    let base = match &args_json {
        Some(text) => Some(args::parse_args_json(text).map_err(|e| Failure::usage(e.to_string()))?),
        None => None,
    };
    let (arguments, typed) = args::parse_arguments_typed(base, kv.iter().map(String::as_str))
        .map_err(|e| Failure::usage(e.to_string()))?;
    Ok((
        Request {
            command,
            arguments: (!arguments.is_empty() || args_json.is_some()).then_some(arguments),
            typed,
        },
        flags,
    ))
}

async fn connect(cli: &Cli) -> Result<Session, Failure> {
    connect::connect(&cli.connect, &cli.qemu_args)
        .await
        .map_err(Failure::from)
}

impl From<connect::ConnectFailure> for Failure {
    /// Nothing to connect to is bad usage (status 2); the rest are connection failures (3).
    fn from(e: connect::ConnectFailure) -> Failure {
        match e {
            connect::ConnectFailure::NoTarget => Failure::usage(e.to_string()),
            e => Failure::connection(e),
        }
    }
}

/// The checker for a connection: the server's schema when it has `query-qmp-schema`, the
/// built-in one otherwise.
pub async fn checker(cli: &Cli, qmp: &qmp_api::Qmp) -> Result<Checker, Failure> {
    let fam = family(cli);
    // The built-in schema is parsed while the server prepares its own (they take about as
    // long, tens of milliseconds each).
    let built_in = tokio::task::spawn_blocking(move || schema::built_in(fam));
    let reply = if cli.connect.agent {
        None
    } else {
        qmp.raw().execute("query-qmp-schema", None::<()>).await.ok()
    };
    let built_in = built_in
        .await
        .map_err(|e| Failure::usage(format!("loading the built-in schema: {e}")))?
        .map_err(Failure::usage)?;
    let mut checker = Checker::new(built_in, fam);
    if let Some(reply) = reply {
        checker.set_server(qmp.server_version().to_string(), &reply);
    }
    Ok(checker)
}

async fn one_shot(cli: &Cli, request: Request) -> Result<(), Failure> {
    let session = connect(cli).await?;
    let result = one_shot_on(cli, &session, request).await;
    session.close().await;
    result
}

async fn one_shot_on(cli: &Cli, session: &Session, mut request: Request) -> Result<(), Failure> {
    let qmp = &session.qmp;
    if !cli.no_check {
        let checker = checker(cli, qmp).await?;
        checker.coerce(&mut request);
        checker
            .check(&request.command, request.arguments.as_ref())
            .map_err(|e| Failure::usage(e.to_string()))?;
    }
    let style = Style::for_stdout(cli.json);
    let arguments = request.arguments_value();
    let log = Log::open(cli.log.as_deref()).map_err(Failure::usage)?;
    if cli.wait {
        let log = std::sync::Arc::new(log);
        if matches!(request.command.as_str(), "migrate" | "migrate-incoming") {
            return crate::progress::run_migration(qmp, &request, style, &log).await;
        }
        return crate::progress::run_job_command(qmp, &request, style, &log).await;
    }
    let reply = execute(qmp, &log, &request.command, arguments).await;
    let reply = reply.map_err(|e| Failure::execute(&request.command, &e))?;
    print_value(style, &reply);
    Ok(())
}

/// Runs one command, logging it and its reply to `log`.
pub async fn execute(
    qmp: &qmp_api::Qmp,
    log: &Log,
    command: &str,
    arguments: Option<Value>,
) -> Result<Value, qmp_api::ExecuteError> {
    log.request(command, arguments.as_ref());
    let reply = qmp.raw().execute(command, arguments).await;
    log.reply(reply.as_ref());
    reply
}

/// Runs an HMP command line through `human-monitor-command` and prints its text as is.
async fn one_shot_hmp(cli: &Cli, line: &str) -> Result<(), Failure> {
    let session = connect(cli).await?;
    let result = async {
        let log = Log::open(cli.log.as_deref()).map_err(Failure::usage)?;
        let args = serde_json::json!({ "command-line": line });
        let reply = execute(&session.qmp, &log, "human-monitor-command", Some(args))
            .await
            .map_err(|e| Failure::execute("human-monitor-command", &e))?;
        let mut out = std::io::stdout().lock();
        let _ = write!(out, "{}", reply.as_str().unwrap_or_default());
        let _ = out.flush();
        Ok(())
    }
    .await;
    session.close().await;
    result
}

/// Prints text on stdout; a closed stdout (`qmp compat | head`) is not an error.
fn print_text(text: &str) {
    let mut out = std::io::stdout().lock();
    let _ = out.write_all(text.as_bytes());
    let _ = out.flush();
}

/// Prints a reply or event on stdout in `style`.
pub fn print_value(style: Style, value: &Value) {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{}", style.format(value));
    let _ = out.flush();
}

fn help(cli: &Cli, command: Option<&str>) -> Result<(), Failure> {
    let fam = family(cli);
    let merged = schema::built_in(fam).map_err(Failure::usage)?;
    let Some(command) = command else {
        let mut names: Vec<&str> = merged.schema.commands().map(|c| c.name.as_str()).collect();
        names.sort_unstable();
        print_text(&format!("{}\n", names.join("\n")));
        return Ok(());
    };
    match schema::help_text(merged, fam, command) {
        Some(text) => {
            print_text(&text);
            Ok(())
        }
        None => {
            let names = merged.schema.commands().map(|c| c.name.as_str());
            let hint = schema::nearest(command, names)
                .map(|n| format!("; did you mean '{n}'?"))
                .unwrap_or_default();
            Err(Failure::usage(format!(
                "no command '{command}' in the built-in schema{hint} (run 'qmp help' for the list)"
            )))
        }
    }
}

/// The summary of a compatibility report: commands, events and top-level arguments, and
/// how many other differences `--verbose` would show.
fn compat_summary(
    full: qmp_codegen::compat::CompatReport,
) -> (qmp_codegen::compat::CompatReport, usize) {
    use qmp_codegen::compat::{Entry, EntryKind};
    let top = |kind: EntryKind, path: &str| match kind {
        EntryKind::Command | EntryKind::Event => true,
        EntryKind::Argument => !path
            .split_once('.')
            .is_some_and(|(_, rest)| rest.contains('.')),
        _ => false,
    };
    let total = full.only_built_in.len() + full.only_server.len() + full.requirement_changes.len();
    let keep = |list: Vec<Entry>| -> Vec<Entry> {
        list.into_iter().filter(|e| top(e.kind, &e.path)).collect()
    };
    let summary = qmp_codegen::compat::CompatReport {
        only_built_in: keep(full.only_built_in),
        only_server: keep(full.only_server),
        requirement_changes: full
            .requirement_changes
            .into_iter()
            .filter(|c| top(c.kind, &c.path))
            .collect(),
        ..full
    };
    let shown =
        summary.only_built_in.len() + summary.only_server.len() + summary.requirement_changes.len();
    (summary, total - shown)
}

async fn compat(cli: &Cli, verbose: bool) -> Result<(), Failure> {
    if cli.connect.agent {
        return Err(Failure::usage(
            "compat needs query-qmp-schema, which a guest agent does not have",
        ));
    }
    let session = connect(cli).await?;
    let result = async {
        let reply = session
            .qmp
            .raw()
            .execute("query-qmp-schema", None::<()>)
            .await
            .map_err(|e| Failure::execute("query-qmp-schema", &e))?;
        let name = format!("QEMU {} (query-qmp-schema)", session.qmp.server_version());
        let server = qmp_codegen::introspect::from_value(&name, &reply)
            .map_err(|e| Failure::connection(format!("the server's schema: {e}")))?;
        let built_in = schema::built_in(Family::Qemu).map_err(Failure::usage)?;
        let report = qmp_codegen::compat::report(&built_in.schema, &server);
        if verbose {
            print_text(&report.to_string());
        } else {
            let (summary, more) = compat_summary(report);
            print_text(&summary.to_string());
            if more > 0 {
                print_text(&format!(
                    "\n({more} more differences in reply and event members, nested arguments \
                     and enum values: qmp compat --verbose)\n"
                ));
            }
        }
        Ok(())
    }
    .await;
    session.close().await;
    result
}

async fn events(cli: &Cli, names: &[String]) -> Result<(), Failure> {
    let session = connect(cli).await?;
    let qmp = &session.qmp;
    if !cli.no_check && !names.is_empty() {
        let checker = checker(cli, qmp).await?;
        for n in names {
            checker
                .check_event(n)
                .map_err(|e| Failure::usage(e.to_string()))?;
        }
    }
    let log = Log::open(cli.log.as_deref()).map_err(Failure::usage)?;
    let mut stream = if names.is_empty() {
        qmp.raw().subscribe()
    } else {
        qmp.raw().subscribe_to(names.iter().map(String::as_str))
    };
    // One JSON line per event, flushed at once: a pipe reader sees each event as it comes.
    let style = if cli.json {
        Style::LINE
    } else {
        Style {
            pretty: false,
            colour: Style::for_stdout(false).colour,
        }
    };
    let result = loop {
        tokio::select! {
            ev = stream.next() => match ev {
                Some(Ok(ev)) => {
                    let ev = output::event_json(&ev);
                    log.event(&ev);
                    print_value(style, &ev);
                }
                Some(Err(e)) => eprintln!("warning: {e}"),
                None => {
                    let reason = qmp.raw().closed().await;
                    break Err(Failure::connection(format!("the server closed the connection: {reason}")));
                }
            },
            _ = tokio::signal::ctrl_c() => break Ok(()),
        }
    };
    session.close().await;
    result
}

async fn job_wait(cli: &Cli, id: &str) -> Result<(), Failure> {
    let log = std::sync::Arc::new(Log::open(cli.log.as_deref()).map_err(Failure::usage)?);
    let session = connect(cli).await?;
    let style = Style::for_stdout(cli.json);
    let result = crate::progress::wait_existing(&session.qmp, id, style, &log).await;
    session.close().await;
    result
}
