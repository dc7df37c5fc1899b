//! Progress bars for transfers: shown on stderr only for transfers that last more than a
//! second, never with `--json` or when stderr is not a terminal (indicatif hides itself then).

use std::time::{Duration, Instant};

use cloison_node::node::Progress;
use indicatif::{ProgressBar, ProgressStyle};

/// A bar that appears after one second.
pub struct Bar {
    start: Instant,
    quiet: bool,
    bar: Option<ProgressBar>,
}

impl Bar {
    /// A bar; `quiet` never shows one.
    pub fn new(quiet: bool) -> Bar {
        Bar {
            start: Instant::now(),
            quiet,
            bar: None,
        }
    }

    /// New figures.
    pub fn update(&mut self, p: Progress) {
        if self.quiet {
            return;
        }
        if self.bar.is_none() && self.start.elapsed() >= Duration::from_secs(1) {
            let bar = ProgressBar::new(p.total_bytes);
            if let Ok(style) = ProgressStyle::with_template(
                "{bar:40} {bytes}/{total_bytes} {binary_bytes_per_sec} {msg}",
            ) {
                bar.set_style(style);
            }
            self.bar = Some(bar);
        }
        if let Some(bar) = &self.bar {
            bar.set_length(p.total_bytes);
            bar.set_position(p.bytes);
            bar.set_message(format!("{}/{} files", p.files, p.total_files));
        }
    }

    /// Clears the bar.
    pub fn finish(&mut self) {
        if let Some(bar) = self.bar.take() {
            bar.finish_and_clear();
        }
    }
}
