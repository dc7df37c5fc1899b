//! Log output of the binaries (`cloison`, `cloison-bootstrap`): one subscriber set-up, to
//! stderr, as text or JSON lines ([`LogFormat`], both binaries' `--log-format`), filtered by
//! `RUST_LOG` or the given default ([`init`]), or by a filter and format that `cloison`'s
//! configuration merged ([`init_with`]).
//!
//! Invariant: no control character of a logged value reaches the log raw. Names and paths in
//! log fields come from other members; the stock formatter escapes the message but writes a
//! `%path` field as is, so every field goes through `control::shown::escape`.
//!
//! [`Throttle`] rate-limits warnings that a periodic task would repeat (a mirror's bad ignore
//! rule, read again every round): an identical one is logged at most once per period, and the
//! next one logged says how many were suppressed.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use crate::control::shown::escape;

/// Keys a [`Throttle`] remembers at most (the oldest are forgotten first).
pub const THROTTLE_KEYS: usize = 1024;

/// Rate limit for repeated warnings, by key (e.g. the mirror and the warning's text).
#[derive(Debug)]
pub struct Throttle {
    every: Duration,
    /// Key → when it was last logged, and how many were suppressed since.
    seen: HashMap<String, (Instant, u64)>,
}

impl Throttle {
    /// At most one warning per key per `every`.
    pub fn new(every: Duration) -> Throttle {
        Throttle {
            every,
            seen: HashMap::new(),
        }
    }

    /// Whether a warning with this key is logged at `now`: `Some(n)` (log it, saying that `n`
    /// identical ones were suppressed since the last), or `None` (suppressed, counted).
    pub fn admit(&mut self, key: &str, now: Instant) -> Option<u64> {
        if let Some((last, suppressed)) = self.seen.get_mut(key) {
            if now.saturating_duration_since(*last) < self.every {
                *suppressed += 1;
                return None;
            }
            let n = *suppressed;
            *last = now;
            *suppressed = 0;
            return Some(n);
        }
        if self.seen.len() >= THROTTLE_KEYS {
            let every = self.every;
            self.seen
                .retain(|_, (last, _)| now.saturating_duration_since(*last) < every);
            if self.seen.len() >= THROTTLE_KEYS
                && let Some(oldest) = self
                    .seen
                    .iter()
                    .min_by_key(|(_, (last, _))| *last)
                    .map(|(k, _)| k.clone())
            {
                self.seen.remove(&oldest);
            }
        }
        self.seen.insert(key.to_owned(), (now, 0));
        Some(0)
    }
}

/// The format of log lines on stderr (`--log-format`).
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize, clap::ValueEnum,
)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line.
    Json,
}

/// Installs the subscriber (a second call does nothing): filtered by `RUST_LOG`, else
/// `default_filter`.
pub fn init(default_filter: &str, format: LogFormat) {
    let filter = std::env::var("RUST_LOG")
        .ok()
        .filter(|f| valid_filter(f))
        .unwrap_or_else(|| default_filter.to_owned());
    init_with(&filter, format);
}

/// Installs the subscriber with this filter (`RUST_LOG` syntax; an invalid one falls back to
/// `warn`), as text lines or one JSON object per line (tracing-subscriber's formatter, which
/// escapes control characters as JSON does). A second call does nothing.
pub fn init_with(filter: &str, format: LogFormat) {
    use tracing_subscriber::util::SubscriberInitExt;
    let _ = subscriber(filter, format == LogFormat::Json, std::io::stderr).try_init();
}

/// The subscriber [`init_with`] installs, writing to `writer`.
pub fn subscriber<W>(
    filter: &str,
    json: bool,
    writer: W,
) -> Box<dyn tracing::Subscriber + Send + Sync>
where
    W: for<'w> tracing_subscriber::fmt::MakeWriter<'w> + Send + Sync + 'static,
{
    use tracing_subscriber::{EnvFilter, fmt, prelude::*};
    let filter = EnvFilter::try_new(filter).unwrap_or_else(|_| EnvFilter::new("warn"));
    let registry = tracing_subscriber::registry().with(filter);
    if json {
        Box::new(registry.with(fmt::layer().json().with_writer(writer)))
    } else {
        Box::new(registry.with(fmt::layer().fmt_fields(fields()).with_writer(writer)))
    }
}

/// Whether `filter` is a valid `RUST_LOG`-style filter.
pub fn valid_filter(filter: &str) -> bool {
    tracing_subscriber::EnvFilter::try_new(filter).is_ok()
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

    #[test]
    fn a_repeated_warning_is_logged_once_per_period_with_the_count_suppressed() {
        let mut t = Throttle::new(Duration::from_secs(60));
        let t0 = Instant::now();
        assert_eq!(t.admit("ws1 bad rule", t0), Some(0));
        for s in 1..=5 {
            assert_eq!(
                t.admit("ws1 bad rule", t0 + Duration::from_secs(s * 10)),
                None
            );
        }
        // Another key is not held back by the first.
        assert_eq!(
            t.admit("ws2 bad rule", t0 + Duration::from_secs(1)),
            Some(0)
        );
        // A period later: logged again, with the count of those suppressed.
        assert_eq!(
            t.admit("ws1 bad rule", t0 + Duration::from_secs(60)),
            Some(5)
        );
        assert_eq!(t.admit("ws1 bad rule", t0 + Duration::from_secs(61)), None);
        // The map stays bounded however many keys come.
        for i in 0..(THROTTLE_KEYS * 2) {
            t.admit(&format!("k{i}"), t0 + Duration::from_secs(2));
        }
        assert!(t.seen.len() <= THROTTLE_KEYS);
    }

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
        let name = "evil\u{1b}[31mred.txt";
        tracing::subscriber::with_default(sub, || {
            tracing::warn!(path = %name, "landed {name}");
        });
        let out = String::from_utf8_lossy(&buf.0.lock().unwrap()).into_owned();
        assert!(out.contains("path=evil\\u{1b}[31mred.txt"), "{out}");
        assert!(
            !out.contains('\u{1b}'),
            "a raw escape reached the log: {out:?}"
        );
        // JSON lines (`--log-format json`): one object per line, the escape as JSON writes it.
        let buf = Buf::default();
        let w = buf.clone();
        tracing::subscriber::with_default(subscriber("warn", true, move || w.clone()), || {
            tracing::warn!(path = %name, "landed {name}");
            tracing::info!("filtered out");
        });
        let out = String::from_utf8_lossy(&buf.0.lock().unwrap()).into_owned();
        assert!(
            !out.contains('\u{1b}'),
            "a raw escape reached the log: {out:?}"
        );
        let lines: Vec<&str> = out.lines().collect();
        assert_eq!(lines.len(), 1, "{out}");
        let v: serde_json::Value = serde_json::from_str(lines[0]).unwrap();
        assert_eq!(v["fields"]["path"], name);
        assert_eq!(v["level"], "WARN");
    }
}
