//! `cloison demo`: the whole story on this machine (written below).

use anyhow::{Result, bail};

/// Runs the demo.
pub fn run(_keep: bool) -> Result<()> {
    bail!("the demo is not written yet")
}
