//! `qmp`: see `qmp --help`.

use clap::Parser;

fn main() -> std::process::ExitCode {
    qmp_cli::app::run(qmp_cli::cli::Cli::parse())
}
