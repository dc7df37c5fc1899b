//! The `cloison` command: argument types ([`args`]), the daemon's configuration ([`config`]:
//! flags, environment, config file, defaults), dispatch ([`run`]), output ([`output`]),
//! progress bars ([`progress`]), the daemon's entry ([`daemon`]) and the demo ([`demo`]).
//!
//! Invariant: every command is a `control::Request` run by `control::exec` (in the daemon, or
//! on the store when no daemon runs); this module only parses, asks for the passphrase, and
//! formats.

mod args;
mod config;
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
    match run::run(cli) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            // Errors quote names and paths that other members chose.
            let text = format!("{e:#}");
            eprintln!("error: {}", cloison_node::control::shown::escape(&text));
            std::process::ExitCode::FAILURE
        }
    }
}
