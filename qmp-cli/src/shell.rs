//! The interactive shell: qmp-shell's input language with line editing, persistent history,
//! completion from the schema (the server's when it has `query-qmp-schema`), events printed
//! while the prompt waits, `transaction(` mode, HMP passthrough and `help`.

use std::borrow::Cow;
use std::collections::VecDeque;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use rustyline::completion::{Completer, Pair};
use rustyline::error::ReadlineError;
use rustyline::highlight::Highlighter;
use rustyline::hint::Hinter;
use rustyline::history::DefaultHistory;
use rustyline::validate::Validator;
use rustyline::{Context, Editor, ExternalPrinter, Helper};
use serde_json::{Map, Value};

use crate::app::{self, Failure};
use crate::args::{Line, Transaction};
use crate::check::Checker;
use crate::cli::Cli;
use crate::output::{self, Log, Style};
use crate::schema::{self, Family};

/// Words the shell itself understands.
/// (`quit` is QMP's: it stops QEMU, as in qmp-shell; `exit` leaves the shell.)
const SHELL_WORDS: &[&str] = &["help", "hmp", "exit", "transaction("];

/// The completions of `line` (the text before the cursor): where the completed word starts,
/// and the candidates that replace it. The first word completes to commands (and the shell's
/// own words); later words to argument names (`path=`, `file.` for nested objects, dotted
/// below them) and, after `=`, to enum values (and `true`/`false`). In a transaction
/// (`in_transaction`, or after `transaction(` on the line) the first word is an action type
/// and the others its data's members.
///
/// ```
/// use qmp_cli::{check::Checker, schema::{self, Family}, shell::completions};
/// let checker = Checker::new(schema::built_in(Family::Qemu)?, Family::Qemu);
/// let (start, words) = completions(&checker, false, "block-job-set-speed dev");
/// assert_eq!((start, words), (20, vec!["device=".to_string()]));
/// # Ok::<(), String>(())
/// ```
pub fn completions(checker: &Checker, in_transaction: bool, line: &str) -> (usize, Vec<String>) {
    let helper = ShellHelper {
        checker: Arc::new(checker.clone()),
        in_transaction: Arc::new(AtomicBool::new(in_transaction)),
    };
    let (start, pairs) = helper.candidates(line);
    (start, pairs.into_iter().map(|p| p.replacement).collect())
}

/// Completion from a schema.
struct ShellHelper {
    checker: Arc<Checker>,
    /// Whether a `transaction(` is open (lines are actions).
    in_transaction: Arc<AtomicBool>,
}

impl ShellHelper {
    fn commands(&self) -> Vec<String> {
        let (schema, _) = self.checker.schema();
        let mut names: Vec<String> = schema.commands().map(|c| c.name.clone()).collect();
        names.extend(SHELL_WORDS.iter().map(|w| w.to_string()));
        names.sort_unstable();
        names.dedup();
        names
    }

    /// The candidates for the word being typed: `(start of the word, candidates)`.
    fn candidates(&self, line: &str) -> (usize, Vec<Pair>) {
        let start = line
            .rfind(|c: char| c.is_whitespace())
            .map(|i| i + 1)
            .unwrap_or(0);
        let word = &line[start..];
        let before: Vec<&str> = line[..start].split_whitespace().collect();
        let pair = |s: String| Pair {
            display: s.clone(),
            replacement: s,
        };
        let in_transaction = self.in_transaction.load(Ordering::Relaxed);
        let (schema, _) = self.checker.schema();
        // In `transaction(` mode a line is an action: its type, then its data's members.
        let (in_transaction, before) = match before.as_slice() {
            ["transaction(", rest @ ..] => (true, rest.to_vec()),
            _ => (in_transaction, before),
        };
        if in_transaction {
            let list = match before.as_slice() {
                [] => schema::transaction_actions(schema)
                    .into_iter()
                    .filter(|a| a.starts_with(word))
                    .map(pair)
                    .collect(),
                [kind, given @ ..] => self
                    .argument_words(schema::action_members(schema, kind), given, word)
                    .into_iter()
                    .map(pair)
                    .collect(),
            };
            return (start, list);
        }
        // The first word: a command (or, after "help", a command to explain).
        let command = match before.as_slice() {
            [] => {
                let list = self
                    .commands()
                    .into_iter()
                    .filter(|c| c.starts_with(word))
                    .map(pair)
                    .collect();
                return (start, list);
            }
            ["help"] => {
                let (schema, _) = self.checker.schema();
                let mut list: Vec<Pair> = schema
                    .commands()
                    .filter(|c| c.name.starts_with(word))
                    .map(|c| pair(c.name.clone()))
                    .collect();
                list.sort_by(|a, b| a.display.cmp(&b.display));
                return (start, list);
            }
            [first, ..] => *first,
        };
        let list = self.argument_words(schema::top_members(schema, command), &before[1..], word);
        (start, list.into_iter().map(pair).collect())
    }

    /// Completions of `word` among arguments `top` (dotted below them), or of an enum value
    /// after `=`; arguments in `given` words are not offered again.
    fn argument_words(
        &self,
        top: Vec<&qmp_codegen::model::Member>,
        given: &[&str],
        word: &str,
    ) -> Vec<String> {
        let (schema, _) = self.checker.schema();
        let mut list: Vec<String> = Vec::new();
        if let Some((key, value)) = word.split_once('=') {
            list.extend(
                schema::enum_values_below(schema, top, key)
                    .into_iter()
                    .filter(|v| v.starts_with(value))
                    .map(|v| format!("{key}={v}")),
            );
        } else {
            let parts: Vec<&str> = word.split('.').collect();
            let (last, path) = parts.split_last().unwrap_or((&"", &[]));
            let prefix: String = path.iter().map(|p| format!("{p}.")).collect();
            let given: Vec<&str> = given
                .iter()
                .filter_map(|w| w.split_once('=').map(|(k, _)| k))
                .collect();
            for m in schema::members_below(schema, top, path) {
                if !m.name.starts_with(last) {
                    continue;
                }
                let full = format!("{prefix}{}", m.name);
                if given.contains(&full.as_str()) {
                    continue;
                }
                if schema::members_of(schema, &m.ty).is_empty() {
                    list.push(format!("{full}="));
                } else {
                    list.push(format!("{full}."));
                    list.push(format!("{full}="));
                }
            }
        }
        list.sort_unstable();
        list.dedup();
        list
    }
}

impl Completer for ShellHelper {
    type Candidate = Pair;

    fn complete(
        &self,
        line: &str,
        pos: usize,
        _ctx: &Context<'_>,
    ) -> rustyline::Result<(usize, Vec<Pair>)> {
        Ok(self.candidates(&line[..pos]))
    }
}

impl Hinter for ShellHelper {
    type Hint = String;
}

impl Highlighter for ShellHelper {
    fn highlight_prompt<'b, 's: 'b, 'p: 'b>(
        &'s self,
        prompt: &'p str,
        _default: bool,
    ) -> Cow<'b, str> {
        Cow::Borrowed(prompt)
    }
}

impl Validator for ShellHelper {}

impl Helper for ShellHelper {}

/// Where the history is kept: `--history`, else `$XDG_STATE_HOME/qmp/history`, else
/// `~/.local/state/qmp/history`.
fn history_path(cli: &Cli) -> Option<PathBuf> {
    if let Some(p) = &cli.history {
        return Some(p.clone());
    }
    let state = std::env::var_os("XDG_STATE_HOME")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".local/state")))?;
    Some(state.join("qmp").join("history"))
}

/// Runs the shell until `exit`, end of input (Ctrl-D) or a lost connection.
///
/// # Errors
///
/// A connection failure, or a terminal that cannot be used.
pub fn run(cli: &Cli, rt: &tokio::runtime::Runtime) -> Result<(), Failure> {
    let session = rt.block_on(connect(cli))?;
    let result = shell(cli, rt, &session);
    rt.block_on(session.close());
    result
}

async fn connect(cli: &Cli) -> Result<crate::connect::Session, Failure> {
    crate::connect::connect(&cli.connect, &cli.qemu_args)
        .await
        .map_err(Failure::from)
}

fn shell(
    cli: &Cli,
    rt: &tokio::runtime::Runtime,
    session: &crate::connect::Session,
) -> Result<(), Failure> {
    let qmp = &session.qmp;
    let checker = Arc::new(rt.block_on(app::checker(cli, qmp))?);
    let config = rustyline::Config::builder()
        .completion_type(rustyline::CompletionType::List)
        .auto_add_history(false)
        .max_history_size(10_000)
        .map_err(|e| Failure::usage(format!("history size: {e}")))?
        .build();
    let mut editor: Editor<ShellHelper, DefaultHistory> = Editor::with_config(config)
        .map_err(|e| Failure::usage(format!("cannot use the terminal: {e}")))?;
    let in_transaction = Arc::new(AtomicBool::new(false));
    editor.set_helper(Some(ShellHelper {
        checker: checker.clone(),
        in_transaction: in_transaction.clone(),
    }));
    let history = history_path(cli);
    if let Some(path) = &history {
        if let Some(dir) = path.parent() {
            let _ = std::fs::create_dir_all(dir);
        }
        let _ = editor.load_history(path);
    }
    let log = Arc::new(Log::open(cli.log.as_deref()).map_err(Failure::usage)?);
    let style = Style::for_stdout(cli.json);
    let event_style = Style {
        pretty: false,
        colour: style.colour,
    };

    // While the prompt waits, a lost connection interrupts the editor (SIGINT, which the
    // editor turns into `Interrupted`); outside the editor, this handler keeps a stray SIGINT
    // from ending the process.
    let _sigint = {
        let _rt = rt.enter();
        tokio::signal::unix::signal(tokio::signal::unix::SignalKind::interrupt()).ok()
    };
    let at_prompt = Arc::new(AtomicBool::new(false));

    // Events are printed above the prompt as they arrive, without waiting for input.
    let events = match editor.create_external_printer() {
        Ok(mut printer) => {
            let mut stream = qmp.raw().subscribe();
            let client = qmp.raw().clone();
            let log = log.clone();
            let at_prompt = at_prompt.clone();
            Some(rt.spawn(async move {
                while let Some(ev) = stream.next().await {
                    let text = match ev {
                        Ok(ev) => {
                            let ev = output::event_json(&ev);
                            log.event(&ev);
                            event_style.format(&ev)
                        }
                        Err(e) => format!("warning: {e}"),
                    };
                    if printer.print(format!("{text}\n")).is_err() {
                        return;
                    }
                }
                // Leave at once, not at the next command: the loop reports it.
                // (Until the editor waits: a command running now fails, or the loop sees the
                // end before its next prompt, and this task is stopped.)
                client.closed().await;
                while !at_prompt.load(Ordering::SeqCst) {
                    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                }
                let _ = nix::sys::signal::kill(
                    nix::unistd::Pid::this(),
                    nix::sys::signal::Signal::SIGINT,
                );
            }))
        }
        Err(_) => None,
    };

    let agent = checker.family() == Family::Agent;
    let version = if agent {
        "guest agent".to_string()
    } else {
        format!("QEMU {}", qmp.server_version())
    };
    println!("Connected to {version}. Tab completes commands and arguments; 'help' lists commands, 'help COMMAND' explains one; 'exit' or Ctrl-D leaves.");

    let mut hmp_mode = cli.hmp;
    let mut transaction = Transaction::default();
    // Lines not run yet: a paste the editor returned as one multi-line text is run line by
    // line, in order. (Typed-ahead bytes stay in the editor's buffer between lines: the
    // `buffer-redux` feature keeps them.)
    let mut pending: VecDeque<String> = VecDeque::new();
    let result = loop {
        in_transaction.store(transaction.is_open(), Ordering::Relaxed);
        let prompt = if transaction.is_open() {
            "(transaction) "
        } else if hmp_mode {
            "(HMP) "
        } else if agent {
            "(QGA) "
        } else {
            "(QEMU) "
        };
        if let Some(reason) = qmp.raw().disconnect_reason() {
            break Err(Failure::connection(format!(
                "the server closed the connection ({reason})"
            )));
        }
        let line = match pending.pop_front() {
            Some(line) => line,
            None => match read_line(&mut editor, prompt, &at_prompt) {
                Ok(text) => {
                    let mut lines = text.split(['\n', '\r']).map(str::to_string);
                    let first = lines.next().unwrap_or_default();
                    pending.extend(lines);
                    first
                }
                Err(ReadlineError::Interrupted) => {
                    // Ctrl-C, or the connection ended (checked at the top of the loop).
                    transaction.abort();
                    pending.clear();
                    continue;
                }
                Err(ReadlineError::Eof) => break Ok(()),
                Err(e) => break Err(Failure::usage(format!("reading input: {e}"))),
            },
        };
        let trimmed = line.trim();
        if trimmed.is_empty() {
            continue;
        }
        let _ = editor.add_history_entry(trimmed);
        if let Some(path) = &history {
            let _ = editor.save_history(path);
        }
        if !transaction.is_open() {
            match trimmed {
                "exit" => break Ok(()),
                "help" => {
                    print_command_list(&checker);
                    continue;
                }
                _ => {}
            }
            if let Some(cmd) = trimmed.strip_prefix("help ") {
                match schema::help_text(checker.built_in(), checker.family(), cmd.trim()) {
                    Some(text) => print!("{text}"),
                    None => eprintln!("error: no command '{}' in the built-in schema", cmd.trim()),
                }
                continue;
            }
            if hmp_mode && trimmed == "qmp" {
                hmp_mode = false;
                continue;
            }
            let hmp_line = if hmp_mode {
                trimmed.strip_prefix("qmp ").is_none().then_some(trimmed)
            } else {
                trimmed
                    .strip_prefix("hmp ")
                    .or((trimmed == "hmp").then_some(""))
            };
            if let Some(hmp) = hmp_line {
                if trimmed == "hmp" {
                    hmp_mode = true;
                    println!("HMP mode: lines go to the human monitor; 'qmp COMMAND ...' runs a QMP command, 'qmp' alone goes back.");
                    continue;
                }
                run_hmp(rt, qmp, &log, hmp);
                continue;
            }
        }
        let text = if hmp_mode {
            trimmed.strip_prefix("qmp ").unwrap_or(trimmed)
        } else {
            trimmed
        };
        let mut request = match transaction.line(text) {
            Ok(Line::Pending) => continue,
            Ok(Line::Send(r)) => r,
            Err(e) => {
                eprintln!("error: {e}");
                continue;
            }
        };
        if !cli.no_check {
            checker.coerce(&mut request);
            if let Err(e) = checker.check(&request.command, request.arguments.as_ref()) {
                eprintln!("error: {e}");
                continue;
            }
        }
        let reply = rt.block_on(app::execute(
            qmp,
            &log,
            &request.command,
            request.arguments_value(),
        ));
        let quit = request.command == "quit";
        match reply {
            Ok(v) => {
                app::print_value(style, &v);
                if quit {
                    // QEMU closes the monitor as it exits; the shell ends with it.
                    let closed = qmp.raw().closed();
                    let _ = rt.block_on(async {
                        tokio::time::timeout(std::time::Duration::from_secs(5), closed).await
                    });
                    break Ok(());
                }
            }
            Err(qmp_api::ExecuteError::Disconnected { .. }) if quit => break Ok(()),
            Err(e) => {
                let f = Failure::execute(&request.command, &e);
                eprintln!("error: {}", f.message);
                if f.code == app::EXIT_CONNECTION && qmp.raw().disconnect_reason().is_some() {
                    break Err(f);
                }
            }
        }
    };
    if let Some(task) = events {
        task.abort();
    }
    result
}

/// Reads a line, with `at_prompt` set while the editor waits.
fn read_line(
    editor: &mut Editor<ShellHelper, DefaultHistory>,
    prompt: &str,
    at_prompt: &AtomicBool,
) -> rustyline::Result<String> {
    at_prompt.store(true, Ordering::SeqCst);
    let line = editor.readline(prompt);
    at_prompt.store(false, Ordering::SeqCst);
    line
}

fn print_command_list(checker: &Checker) {
    let (schema, against) = checker.schema();
    let mut names: Vec<&str> = schema.commands().map(|c| c.name.as_str()).collect();
    names.sort_unstable();
    println!("Commands of {against} ({}):", names.len());
    println!("{}", names.join("  "));
    println!("\nShell: help COMMAND, hmp HMP-COMMAND (hmp alone, or -H: HMP mode), transaction( ... ), exit (quit stops QEMU)");
    println!(
        "Arguments: key=value, nested with dots (file.driver=file), values are JSON or strings."
    );
}

fn run_hmp(rt: &tokio::runtime::Runtime, qmp: &qmp_api::Qmp, log: &Log, line: &str) {
    let mut args = Map::new();
    args.insert("command-line".into(), Value::String(line.to_string()));
    let reply = app::execute(qmp, log, "human-monitor-command", Some(Value::Object(args)));
    match rt.block_on(reply) {
        Ok(Value::String(s)) => print!("{s}"),
        Ok(other) => println!("{other}"),
        Err(e) => eprintln!(
            "error: {}",
            Failure::execute("human-monitor-command", &e).message
        ),
    }
}
