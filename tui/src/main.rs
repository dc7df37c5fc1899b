//! `cloison-tui`: the admin terminal UI. Connects to the daemon of `--home` (or
//! `CLOISON_HOME`, or the default home) through its control socket; see the crate docs.

use std::path::PathBuf;
use std::sync::mpsc;

use anyhow::{Context, Result};
use clap::{CommandFactory, Parser};
use cloison_tui::app::Ui;
use cloison_tui::worker::{ChannelPort, Worker};
use tuirealm::terminal::{CrosstermTerminalAdapter, TerminalAdapter};

/// The Cloison admin terminal UI (a client of a running `cloison run`).
#[derive(Parser)]
#[command(name = "cloison-tui", version, about)]
struct Args {
    /// The device's home directory (the daemon's `--home`).
    #[arg(long, env = "CLOISON_HOME", value_name = "DIR")]
    home: Option<PathBuf>,
    /// Without one, the UI starts.
    #[command(subcommand)]
    doc: Option<cloison_node::manual::DocCommand>,
}

fn main() -> std::process::ExitCode {
    let mut args = Args::parse();
    let result = match args.doc.take() {
        Some(doc) => cloison_node::manual::run(doc, Args::command(), &mut std::io::stdout().lock())
            .map_err(anyhow::Error::from),
        None => run(args),
    };
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("cloison-tui: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

fn resolve_home(home: Option<PathBuf>) -> Result<PathBuf> {
    if let Some(h) = home {
        return Ok(h);
    }
    let dirs = directories::ProjectDirs::from("", "", "cloison")
        .context("cannot find a home directory: pass --home or set CLOISON_HOME")?;
    Ok(dirs.data_dir().to_owned())
}

fn run(args: Args) -> Result<()> {
    let home = resolve_home(args.home)?;
    let home = std::path::absolute(&home).unwrap_or(home);
    let base = std::env::current_dir().context("cannot read the current directory")?;
    let (tx, rx) = mpsc::channel();
    let worker = Worker::start(home, tx);
    let mut terminal = CrosstermTerminalAdapter::new().context("cannot open the terminal")?;
    terminal.enable_raw_mode().context("cannot set raw mode")?;
    terminal
        .enter_alternate_screen()
        .context("cannot enter the alternate screen")?;
    Ui::new(
        terminal,
        None,
        Box::new(ChannelPort(rx)),
        Some(worker),
        base,
    )
    .map_err(anyhow::Error::from)
    .and_then(|mut ui| {
        let r = ui.run();
        let _ = ui.terminal.leave_alternate_screen();
        let _ = ui.terminal.disable_raw_mode();
        r
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cli() {
        Args::command().debug_assert();
    }
}
