//! Shell completions and manual pages of the binaries (`cloison`, `cloison-bootstrap`,
//! `cloison-tui`), generated from their clap definitions (clap_complete, clap_mangen), so they
//! cannot drift from what the binaries accept.
//!
//! Each binary flattens [`DocCommand`] into its subcommands and hands it to [`run`] with its own
//! `clap::Command`: `completions SHELL` prints a completion script, `man` prints the main page,
//! `man --out DIR` writes one page per command and subcommand (`cloison.1`,
//! `cloison-workspace.1`, `cloison-workspace-create.1`, ...).

use std::io::Write;
use std::path::{Path, PathBuf};

use clap::Subcommand;
pub use clap_complete::Shell;

/// The documentation subcommands every binary has.
#[derive(Debug, Clone, Subcommand)]
pub enum DocCommand {
    /// Print a shell completion script (e.g. `cloison completions bash >
    /// ~/.local/share/bash-completion/completions/cloison`).
    Completions {
        /// bash, zsh, fish, elvish or powershell.
        shell: Shell,
    },
    /// Print the manual page (roff), or write one page per command into a directory.
    Man {
        /// Write `NAME.1` for the command and each subcommand into this directory.
        #[arg(long, value_name = "DIR")]
        out: Option<PathBuf>,
    },
}

/// Runs a [`DocCommand`] for the binary whose definition is `cmd`, writing to `stdout`.
pub fn run(doc: DocCommand, cmd: clap::Command, stdout: &mut dyn Write) -> std::io::Result<()> {
    match doc {
        DocCommand::Completions { shell } => {
            completions(cmd, shell, stdout);
            Ok(())
        }
        // Without `help`, as in the pages `--out` writes (clap_mangen::generate_to).
        DocCommand::Man { out: None } => {
            clap_mangen::Man::new(cmd.disable_help_subcommand(true)).render(stdout)
        }
        DocCommand::Man { out: Some(dir) } => {
            let n = man_pages(cmd, &dir)?;
            writeln!(stdout, "{n} manual page(s) written to {}", dir.display())
        }
    }
}

/// Writes the completion script of `cmd` for `shell`.
pub fn completions(mut cmd: clap::Command, shell: Shell, out: &mut dyn Write) {
    let name = cmd.get_name().to_owned();
    clap_complete::generate(shell, &mut cmd, name, out);
}

/// Writes one manual page per command and (visible) subcommand into `dir` (created if missing);
/// returns how many.
pub fn man_pages(cmd: clap::Command, dir: &Path) -> std::io::Result<usize> {
    std::fs::create_dir_all(dir)?;
    fn count(c: &clap::Command) -> usize {
        1 + c
            .get_subcommands()
            .filter(|s| !s.is_hide_set() && s.get_name() != "help")
            .map(count)
            .sum::<usize>()
    }
    let cmd = cmd.disable_help_subcommand(true);
    let n = count(&cmd);
    clap_mangen::generate_to(cmd, dir)?;
    Ok(n)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, clap::Parser)]
    #[command(name = "demo", version, about = "A demo.")]
    struct Demo {
        #[command(subcommand)]
        command: DemoCommand,
    }

    #[derive(Debug, clap::Subcommand)]
    enum DemoCommand {
        /// Say hello.
        Hello,
        #[command(flatten)]
        Doc(DocCommand),
    }

    #[test]
    fn completions_and_pages_cover_every_subcommand() {
        use clap::CommandFactory;
        Demo::command().debug_assert();
        let mut script = Vec::new();
        completions(Demo::command(), Shell::Bash, &mut script);
        let script = String::from_utf8(script).unwrap();
        assert!(script.contains("complete -F"), "{script}");
        assert!(script.contains("hello") && script.contains("completions"));
        let dir = tempfile::tempdir().unwrap();
        let n = man_pages(Demo::command(), dir.path()).unwrap();
        let mut names: Vec<String> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        assert_eq!(
            names,
            ["demo-completions.1", "demo-hello.1", "demo-man.1", "demo.1"]
        );
        assert_eq!(n, names.len());
        let mut page = Vec::new();
        run(DocCommand::Man { out: None }, Demo::command(), &mut page).unwrap();
        let page = String::from_utf8(page).unwrap();
        assert!(
            page.contains(".SH NAME") && page.contains(".SH SYNOPSIS"),
            "{page}"
        );
    }
}
