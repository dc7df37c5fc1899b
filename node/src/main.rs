//! `cloison`: the command line of a Cloison device.
//!
//! Parsing (clap, no I/O) lives in `cli::args`; running a parsed command lives in `cli::run`.
//! Errors print to stderr with a non-zero exit code; data goes to stdout (tables, or one JSON
//! document with `--json`).

mod cli;

fn main() -> std::process::ExitCode {
    cli::main()
}
