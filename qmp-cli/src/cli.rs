//! The command line (clap derive).

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

/// Where to find the server: one of `--spawn`, `--listen`, `--tcp`, `--socket` (in that
/// order of precedence; `$QMP_SOCKET` is the default socket).
#[derive(Debug, Clone, Args)]
pub struct ConnectOpts {
    /// The QMP server's unix socket.
    #[arg(short, long, env = "QMP_SOCKET", value_name = "PATH", global = true)]
    pub socket: Option<PathBuf>,
    /// Connect over TCP instead.
    #[arg(long, value_name = "HOST:PORT", global = true)]
    pub tcp: Option<String>,
    /// Use TLS on the TCP connection (QEMU's chardev `tls-creds`).
    #[arg(long, global = true)]
    pub tls: bool,
    /// The CA certificate (PEM) that signed QEMU's server certificate.
    #[arg(
        long,
        value_name = "FILE",
        default_value = "/etc/pki/qemu/ca-cert.pem",
        global = true
    )]
    pub tls_ca: PathBuf,
    /// The name QEMU's certificate is checked against (default: the host of --tcp).
    #[arg(long, value_name = "NAME", global = true)]
    pub tls_name: Option<String>,
    /// A client certificate (PEM), for QEMU's `verify-peer=on`; needs --tls-key.
    #[arg(long, value_name = "FILE", global = true, requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,
    /// The client certificate's private key (PEM).
    #[arg(long, value_name = "FILE", global = true, requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,
    /// Wait for QEMU to connect to a socket created at PATH (`-qmp unix:PATH` without
    /// `server=on`).
    #[arg(long, value_name = "PATH", global = true)]
    pub listen: Option<PathBuf>,
    /// Start a guest-free QEMU on a private socket (`-machine none` unless QEMU ARGS follow
    /// `--`) and stop it on exit.
    #[arg(long, global = true)]
    pub spawn: bool,
    /// The QEMU binary --spawn starts (`qemu-storage-daemon` works too).
    #[arg(
        long,
        value_name = "BINARY",
        default_value = "qemu-system-x86_64",
        global = true
    )]
    pub qemu: PathBuf,
    /// The server is a guest agent (qemu-ga): its schema, no QMP negotiation.
    #[arg(long, global = true)]
    pub agent: bool,
    /// Seconds to wait for the connection and for each command (0: no limit).
    #[arg(long, value_name = "SECONDS", default_value_t = 30.0, global = true)]
    pub timeout: f64,
}

/// `qmp`: run QMP commands against QEMU from the shell, or work in an interactive shell that
/// knows the schema.
#[derive(Debug, Parser)]
#[command(
    name = "qmp",
    version,
    disable_help_subcommand = true,
    about = "Run QMP commands against QEMU, or open a shell that knows the schema",
    long_about = "Run QMP commands against QEMU, or open a shell that knows the schema.\n\n\
        One-shot:   qmp -s SOCKET COMMAND [key=value ...]   (dotted keys nest: file.driver=file)\n\
        Shell:      qmp -s SOCKET\n\
        Spawn:      qmp --spawn [--qemu BINARY] [COMMAND ...] [-- QEMU ARGS]\n\n\
        Values are JSON when they parse as JSON, strings otherwise. Arguments are checked \
        against the built-in schema (QEMU 2.12 to 10.0) and the server's own before sending.\n\n\
        Exit status: 0 success, 1 the server answered with an error (class and description on \
        stderr), 2 bad usage or arguments refused before sending, 3 connection failure.",
    after_help = "Run 'qmp help COMMAND' to see a command's arguments."
)]
pub struct Cli {
    /// How to reach the server.
    #[command(flatten)]
    pub connect: ConnectOpts,
    /// Print replies and events as one JSON line each, without colour, even on a terminal.
    #[arg(long, global = true)]
    pub json: bool,
    /// The command's arguments as a JSON object (key=value words are merged over it).
    #[arg(long, value_name = "JSON")]
    pub args: Option<String>,
    /// After a job-creating command, follow the job (`job-id`) to its end, with a progress bar
    /// on a terminal.
    #[arg(long)]
    pub wait: bool,
    /// Send without checking the arguments against any schema.
    #[arg(long)]
    pub no_check: bool,
    /// HMP: the command words are a human monitor command line (`qmp -H info status`); in the
    /// shell, start in HMP mode.
    #[arg(short = 'H', long)]
    pub hmp: bool,
    /// Append every message sent and received (commands, replies, events) to FILE as JSON
    /// lines.
    #[arg(short = 'l', long, value_name = "FILE", global = true)]
    pub log: Option<PathBuf>,
    /// Shell: the history file (default: $XDG_STATE_HOME or ~/.local/state, qmp/history).
    #[arg(long, value_name = "FILE")]
    pub history: Option<PathBuf>,
    /// What to do (a QMP command name runs that command).
    #[command(subcommand)]
    pub sub: Option<Sub>,
    /// QEMU arguments for --spawn (given after `--`, at the end of the line).
    #[arg(skip)]
    pub qemu_args: Vec<String>,
}

/// What `qmp` does.
#[derive(Debug, Subcommand)]
pub enum Sub {
    /// Show a command's arguments, types, versions and reference link; with no command, list
    /// the commands.
    Help {
        /// The QMP command.
        command: Option<String>,
    },
    /// Print events as JSON lines until interrupted (all events, or those named).
    Events {
        /// Event names (`STOP`, `JOB_STATUS_CHANGE`).
        names: Vec<String>,
    },
    /// Print the compatibility report between the built-in schema and the server's: commands,
    /// events and top-level arguments (`--verbose`: everything).
    Compat {
        /// Also reply and event members, nested arguments and enum values.
        #[arg(long)]
        verbose: bool,
    },
    /// Block jobs.
    #[command(subcommand)]
    Job(JobCmd),
    /// A QMP command and its key=value arguments.
    #[command(external_subcommand)]
    Qmp(Vec<String>),
}

/// `qmp job ...`.
#[derive(Debug, Subcommand)]
pub enum JobCmd {
    /// Follow a running job to its end (completing it when it becomes ready), with a
    /// progress bar on a terminal.
    Wait {
        /// The job id.
        id: String,
    },
}
