//! Log output of the binaries (`cloison`, `cloison-bootstrap`): one subscriber set-up, to
//! stderr, filtered by `RUST_LOG` or the given default.
//!
//! Invariant: no control character of a logged value reaches the log raw. Names and paths in
//! log fields come from other members; the stock formatter escapes the message but writes a
//! `%path` field as is, so every field goes through `control::shown::escape`.

use crate::control::shown::escape;

/// Installs the subscriber (a second call does nothing).
pub fn init(default_filter: &str) {
    use tracing_subscriber::{EnvFilter, fmt, prelude::*};
    let filter =
        EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default_filter));
    let _ = tracing_subscriber::registry()
        .with(filter)
        .with(
            fmt::layer()
                .fmt_fields(fields())
                .with_writer(std::io::stderr),
        )
        .try_init();
}

/// How log lines write their fields: every value (and the message) through [`escape`].
pub fn fields() -> impl for<'w> tracing_subscriber::fmt::FormatFields<'w> + Send + Sync + 'static {
    use tracing_subscriber::field::MakeExt;
    tracing_subscriber::fmt::format::debug_fn(|w, field, value| {
        let v = format!("{value:?}");
        if field.name() == "message" {
            write!(w, "{}", escape(&v))
        } else {
            write!(w, "{field}={}", escape(&v))
        }
    })
    .delimited(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Logs quote names too. The stock formatter escapes the message but writes a `%path`
    /// field raw (found by this test); [`fields`] escapes both.
    #[test]
    fn logs_escape_names_too() {
        use std::sync::{Arc, Mutex};
        #[derive(Clone, Default)]
        struct Buf(Arc<Mutex<Vec<u8>>>);
        impl std::io::Write for Buf {
            fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
                self.0
                    .lock()
                    .map_err(|_| std::io::Error::other("poisoned"))?
                    .extend_from_slice(b);
                Ok(b.len())
            }
            fn flush(&mut self) -> std::io::Result<()> {
                Ok(())
            }
        }
        let buf = Buf::default();
        let w = buf.clone();
        let sub = tracing_subscriber::fmt()
            .with_ansi(false)
            .fmt_fields(fields())
            .with_writer(move || w.clone())
            .finish();
        tracing::subscriber::with_default(sub, || {
            let name = "evil\u{1b}[31mred.txt";
            tracing::warn!(path = %name, "landed {name}");
        });
        let out = String::from_utf8_lossy(&buf.0.lock().unwrap()).into_owned();
        assert!(out.contains("path=evil\\u{1b}[31mred.txt"), "{out}");
        assert!(
            !out.contains('\u{1b}'),
            "a raw escape reached the log: {out:?}"
        );
    }
}
