//! The `cloison` command: argument types ([`args`]), dispatch ([`run`]), output ([`output`]),
//! progress bars ([`progress`]), the daemon's entry ([`daemon`]) and the demo ([`demo`]).
//!
//! Invariant: every command is a `control::Request` run by `control::exec` (in the daemon, or
//! on the store when no daemon runs); this module only parses, asks for the passphrase, and
//! formats.

mod args;
mod daemon;
mod demo;
mod demo_enrol;
mod enrol;
mod output;
mod progress;
mod run;

use clap::Parser;

/// Entry point: parse, run, report.
pub fn main() -> std::process::ExitCode {
    let cli = args::Cli::parse();
    init_tracing(cli.verbose);
    match run::run(cli) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

fn init_tracing(verbose: u8) {
    use tracing_subscriber::{EnvFilter, fmt, prelude::*};
    let default = match verbose {
        0 => "warn",
        1 => "info",
        _ => "debug",
    };
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default));
    let _ = tracing_subscriber::registry()
        .with(filter)
        .with(fmt::layer().with_writer(std::io::stderr))
        .try_init();
}
