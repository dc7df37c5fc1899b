//! The daemon's configuration: one merge of four sources, in this order of precedence:
//! command-line flags, then environment variables, then the config file, then built-in
//! defaults. `cloison run`, `cloison sync --foreground` and `cloison config show` use it; the
//! other commands take only their logging from it, without the file.
//!
//! The file is TOML: `$CLOISON_CONFIG` (or `--config`) if set, else `config.toml` in the device
//! home, so each device on a machine has its own and a copy of the home carries it. Every key is
//! optional (`listen`, `peers`, `mdns`, `log_format`, `log`, `max_send_kibps`,
//! `max_recv_kibps`); an unknown key is an error naming it. A missing file at the default place means defaults; a file named explicitly must exist.
//!
//! Invariants: the merge is a pure function of its inputs ([`merge`]: flags, an environment
//! lookup, the file's text), so tests check the precedence without touching the process; a
//! file that does not parse, or holds a value that does not (a multiaddress, a log filter), is
//! refused with its path, line, column and reason, before anything starts; the file is read up
//! to [`MAX_FILE`] bytes. A bandwidth limit is a whole number of KiB/s up to [`MAX_KIBPS`],
//! 0 meaning unlimited, whichever source gives it ([`kibps`] is the one check).

use std::io::Read;
use std::ops::Range;
use std::path::{Path, PathBuf};

use cloison_node::daemon::Bandwidth;
use cloison_node::net::{Multiaddr, mdns_allowed_by};
use serde::{Deserialize, Serialize};

/// The file's name in the device home.
pub const FILE_NAME: &str = "config.toml";
/// The environment variables the merge reads besides `CLOISON_MDNS` and `RUST_LOG` (the demo's
/// daemons run without them, so a user's settings do not leak into it).
pub const ENV_VARS: [&str; 6] = [
    "CLOISON_CONFIG",
    "CLOISON_LISTEN",
    "CLOISON_PEERS",
    "CLOISON_LOG_FORMAT",
    "CLOISON_MAX_SEND_KIBPS",
    "CLOISON_MAX_RECV_KIBPS",
];
/// The largest config file read (a config is a few hundred bytes).
pub const MAX_FILE: u64 = 64 * 1024;
/// The largest bandwidth limit, in KiB/s (16 GiB/s: above any link; keeps byte rates far from
/// overflow).
pub const MAX_KIBPS: u64 = 16 << 20;

/// Where a value came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Source {
    /// A command-line flag.
    Flag,
    /// An environment variable.
    Env,
    /// The config file.
    File,
    /// The built-in default.
    Default,
}

pub use cloison_node::logs::LogFormat;

/// One merged value and where it came from (`name`: the flag or variable, if any).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Setting<T> {
    /// The value.
    pub value: T,
    /// Its source.
    pub source: Source,
    /// The flag or environment variable that gave it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<&'static str>,
}

/// The merged configuration.
#[derive(Clone, Debug, Serialize)]
pub struct Config {
    /// The config file's path, whether or not it exists.
    pub file: PathBuf,
    /// Whether the file was read.
    pub file_read: bool,
    /// Addresses to listen on.
    pub listen: Setting<Vec<String>>,
    /// Peers to dial at start.
    pub peers: Setting<Vec<String>>,
    /// LAN discovery.
    pub mdns: Setting<bool>,
    /// Log line format.
    pub log_format: Setting<LogFormat>,
    /// Log filter (`RUST_LOG` syntax).
    pub log: Setting<String>,
    /// Send limit on block data, KiB/s (0: unlimited).
    pub max_send_kibps: Setting<u64>,
    /// Receive limit on block data, KiB/s (0: unlimited).
    pub max_recv_kibps: Setting<u64>,
}

impl Config {
    /// The listen addresses, parsed (checked by the merge already).
    pub fn listen_addrs(&self) -> Vec<Multiaddr> {
        self.listen
            .value
            .iter()
            .filter_map(|a| a.parse().ok())
            .collect()
    }

    /// The bandwidth limits (0 is none).
    pub fn bandwidth(&self) -> Bandwidth {
        let limit = |k: u64| (k > 0).then_some(k);
        Bandwidth {
            send_kibps: limit(self.max_send_kibps.value),
            recv_kibps: limit(self.max_recv_kibps.value),
        }
    }

    /// The peers, parsed (checked by the merge already).
    pub fn peer_addrs(&self) -> Vec<Multiaddr> {
        self.peers
            .value
            .iter()
            .filter_map(|a| a.parse().ok())
            .collect()
    }
}

/// What the command line said (absent or empty: not given).
#[derive(Clone, Debug, Default)]
pub struct Flags {
    /// `--config FILE`.
    pub config: Option<PathBuf>,
    /// `--listen` (repeatable).
    pub listen: Vec<String>,
    /// `--peer` (repeatable).
    pub peers: Vec<String>,
    /// `--no-mdns`.
    pub no_mdns: bool,
    /// `--log-format`.
    pub log_format: Option<LogFormat>,
    /// `-v` count.
    pub verbose: u8,
    /// `--max-send-kibps`.
    pub max_send_kibps: Option<u64>,
    /// `--max-recv-kibps`.
    pub max_recv_kibps: Option<u64>,
}

/// Why a configuration is refused.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file cannot be read.
    #[error("cannot read the config file {path}: {reason}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        reason: String,
    },
    /// The file does not parse, or a value in it is invalid.
    #[error("invalid config file {path}, line {line}, column {column}: {reason}")]
    File {
        /// The file.
        path: PathBuf,
        /// 1-based line.
        line: usize,
        /// 1-based column (in characters).
        column: usize,
        /// Why.
        reason: String,
    },
    /// An environment variable or a flag holds an invalid value.
    #[error("{name}: {reason}")]
    Value {
        /// The variable or flag.
        name: &'static str,
        /// Why.
        reason: String,
    },
}

/// The file's keys, all optional; spans locate bad values.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileKeys {
    listen: Option<Vec<toml::Spanned<String>>>,
    peers: Option<Vec<toml::Spanned<String>>>,
    mdns: Option<bool>,
    log_format: Option<LogFormat>,
    log: Option<toml::Spanned<String>>,
    max_send_kibps: Option<toml::Spanned<u64>>,
    max_recv_kibps: Option<toml::Spanned<u64>>,
}

/// The default listen addresses: an ephemeral TCP and QUIC port on every interface.
pub const DEFAULT_LISTEN: [&str; 2] = ["/ip4/0.0.0.0/tcp/0", "/ip4/0.0.0.0/udp/0/quic-v1"];
/// The default log filter, and those of `-v` and `-vv`.
const LOG_LEVELS: [&str; 3] = ["warn", "info", "debug"];

/// The config file's path: `--config`, else `CLOISON_CONFIG`, else `config.toml` in `home`;
/// and whether it was named explicitly (then it must exist).
pub fn path(home: &Path, flags: &Flags, env: &dyn Fn(&str) -> Option<String>) -> (PathBuf, bool) {
    let named = flags.config.clone().or_else(|| {
        env("CLOISON_CONFIG")
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
    });
    match named {
        Some(p) => (p, true),
        None => (home.join(FILE_NAME), false),
    }
}

/// Reads the config file (none if it is missing at the default place) and merges.
pub fn load(
    home: &Path,
    flags: &Flags,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Config, ConfigError> {
    let (file, explicit) = path(home, flags, env);
    let text = read(&file, explicit)?;
    merge(flags, env, &file, text.as_deref())
}

/// The merge without the file (the commands other than the daemon's: logging only).
pub fn without_file(flags: &Flags, env: &dyn Fn(&str) -> Option<String>) -> Config {
    let none = Flags {
        listen: Vec::new(),
        peers: Vec::new(),
        ..flags.clone()
    };
    // Without a file, only the listen, peer and mDNS values can be refused; none is given.
    merge(&none, env, Path::new(""), None).unwrap_or_else(|_| defaults(Path::new("")))
}

fn read(file: &Path, explicit: bool) -> Result<Option<String>, ConfigError> {
    let err = |reason: String| ConfigError::Read {
        path: file.to_owned(),
        reason,
    };
    let f = match std::fs::File::open(file) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound && !explicit => return Ok(None),
        Err(e) => return Err(err(e.to_string())),
    };
    let mut bytes = Vec::new();
    f.take(MAX_FILE + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| err(e.to_string()))?;
    if bytes.len() as u64 > MAX_FILE {
        return Err(err(format!("larger than {MAX_FILE} bytes")));
    }
    String::from_utf8(bytes)
        .map(Some)
        .map_err(|_| err("not UTF-8 text".into()))
}

fn defaults(file: &Path) -> Config {
    Config {
        file: file.to_owned(),
        file_read: false,
        listen: Setting::default(DEFAULT_LISTEN.iter().map(|s| s.to_string()).collect()),
        peers: Setting::default(Vec::new()),
        mdns: Setting::default(true),
        log_format: Setting::default(LogFormat::Text),
        log: Setting::default(LOG_LEVELS[0].to_owned()),
        max_send_kibps: Setting::default(0),
        max_recv_kibps: Setting::default(0),
    }
}

impl<T> Setting<T> {
    fn default(value: T) -> Setting<T> {
        Setting {
            value,
            source: Source::Default,
            name: None,
        }
    }

    fn file(value: T) -> Setting<T> {
        Setting {
            value,
            source: Source::File,
            name: None,
        }
    }

    fn named(source: Source, name: &'static str, value: T) -> Setting<T> {
        Setting {
            value,
            source,
            name: Some(name),
        }
    }
}

/// Merges flags over the environment over the file (`text`, read from `file`) over defaults.
pub fn merge(
    flags: &Flags,
    env: &dyn Fn(&str) -> Option<String>,
    file: &Path,
    text: Option<&str>,
) -> Result<Config, ConfigError> {
    let mut c = defaults(file);
    // The file.
    if let Some(text) = text {
        let keys = parse_file(file, text)?;
        c.file_read = true;
        if let Some(l) = keys.listen {
            c.listen = Setting::file(addrs_in_file(file, text, l)?);
        }
        if let Some(p) = keys.peers {
            c.peers = Setting::file(addrs_in_file(file, text, p)?);
        }
        if let Some(m) = keys.mdns {
            c.mdns = Setting::file(m);
        }
        if let Some(f) = keys.log_format {
            c.log_format = Setting::file(f);
        }
        if let Some(l) = keys.log {
            if !cloison_node::logs::valid_filter(l.get_ref()) {
                return Err(at(file, text, l.span(), "not a valid log filter".into()));
            }
            c.log = Setting::file(l.into_inner());
        }
        if let Some(k) = keys.max_send_kibps {
            let v = kibps(*k.get_ref()).map_err(|r| at(file, text, k.span(), r))?;
            c.max_send_kibps = Setting::file(v);
        }
        if let Some(k) = keys.max_recv_kibps {
            let v = kibps(*k.get_ref()).map_err(|r| at(file, text, k.span(), r))?;
            c.max_recv_kibps = Setting::file(v);
        }
    }
    // The environment (an empty variable is not set).
    let var = |name: &str| env(name).filter(|v| !v.trim().is_empty());
    if let Some(v) = var("CLOISON_LISTEN") {
        c.listen = Setting::named(
            Source::Env,
            "CLOISON_LISTEN",
            addrs("CLOISON_LISTEN", split(&v))?,
        );
    }
    if let Some(v) = var("CLOISON_PEERS") {
        c.peers = Setting::named(
            Source::Env,
            "CLOISON_PEERS",
            addrs("CLOISON_PEERS", split(&v))?,
        );
    }
    if let Some(v) = var("CLOISON_MDNS") {
        c.mdns = Setting::named(Source::Env, "CLOISON_MDNS", mdns_allowed_by(Some(&v)));
    }
    if let Some(v) = var("CLOISON_LOG_FORMAT") {
        let f = match v.trim().to_ascii_lowercase().as_str() {
            "text" => LogFormat::Text,
            "json" => LogFormat::Json,
            _ => {
                return Err(ConfigError::Value {
                    name: "CLOISON_LOG_FORMAT",
                    reason: format!("{v:?} is neither \"text\" nor \"json\""),
                });
            }
        };
        c.log_format = Setting::named(Source::Env, "CLOISON_LOG_FORMAT", f);
    }
    for (name, slot) in [
        ("CLOISON_MAX_SEND_KIBPS", &mut c.max_send_kibps),
        ("CLOISON_MAX_RECV_KIBPS", &mut c.max_recv_kibps),
    ] {
        if let Some(v) = var(name) {
            let k = v
                .trim()
                .parse::<u64>()
                .map_err(|_| format!("{v:?} is not a whole number of KiB/s"))
                .and_then(kibps)
                .map_err(|reason| ConfigError::Value { name, reason })?;
            *slot = Setting::named(Source::Env, name, k);
        }
    }
    // An invalid RUST_LOG is ignored, as it always was.
    if let Some(v) = var("RUST_LOG").filter(|v| cloison_node::logs::valid_filter(v)) {
        c.log = Setting::named(Source::Env, "RUST_LOG", v);
    }
    // The flags.
    if !flags.listen.is_empty() {
        c.listen = Setting::named(
            Source::Flag,
            "--listen",
            addrs("--listen", flags.listen.clone())?,
        );
    }
    if !flags.peers.is_empty() {
        c.peers = Setting::named(
            Source::Flag,
            "--peer",
            addrs("--peer", flags.peers.clone())?,
        );
    }
    if flags.no_mdns {
        c.mdns = Setting::named(Source::Flag, "--no-mdns", false);
    }
    if let Some(f) = flags.log_format {
        c.log_format = Setting::named(Source::Flag, "--log-format", f);
    }
    for (name, flag, slot) in [
        (
            "--max-send-kibps",
            flags.max_send_kibps,
            &mut c.max_send_kibps,
        ),
        (
            "--max-recv-kibps",
            flags.max_recv_kibps,
            &mut c.max_recv_kibps,
        ),
    ] {
        if let Some(k) = flag {
            let k = kibps(k).map_err(|reason| ConfigError::Value { name, reason })?;
            *slot = Setting::named(Source::Flag, name, k);
        }
    }
    if flags.verbose > 0 {
        let level = LOG_LEVELS[usize::from(flags.verbose).min(LOG_LEVELS.len() - 1)];
        c.log = Setting::named(Source::Flag, "-v", level.to_owned());
    }
    Ok(c)
}

/// `cloison config show`: one line per setting (value, then where it came from), or one JSON
/// document.
pub fn render(c: &Config, json: bool) -> Result<String, serde_json::Error> {
    if json {
        return Ok(serde_json::to_string_pretty(c)? + "\n");
    }
    fn row<T>(out: &mut String, key: &str, s: &Setting<T>, value: String) {
        let source = match s.source {
            Source::Flag => "flag",
            Source::Env => "env",
            Source::File => "file",
            Source::Default => "default",
        };
        let name = s.name.map(|n| format!(" ({n})")).unwrap_or_default();
        out.push_str(&format!("{key:<14} {value:<40} {source}{name}\n"));
    }
    let list = |v: &[String]| match v.is_empty() {
        true => "(none)".to_owned(),
        false => v.join(" "),
    };
    let mut out = format!(
        "config file: {} ({})\n",
        c.file.display(),
        if c.file_read { "read" } else { "absent" }
    );
    row(&mut out, "listen", &c.listen, list(&c.listen.value));
    row(&mut out, "peers", &c.peers, list(&c.peers.value));
    row(&mut out, "mdns", &c.mdns, c.mdns.value.to_string());
    let format = match c.log_format.value {
        LogFormat::Text => "text",
        LogFormat::Json => "json",
    };
    row(&mut out, "log_format", &c.log_format, format.to_owned());
    row(&mut out, "log", &c.log, c.log.value.clone());
    let limit = |k: u64| match k {
        0 => "0 (unlimited)".to_owned(),
        k => format!("{k} KiB/s"),
    };
    let (send, recv) = (&c.max_send_kibps, &c.max_recv_kibps);
    row(&mut out, "max_send_kibps", send, limit(send.value));
    row(&mut out, "max_recv_kibps", recv, limit(recv.value));
    Ok(out)
}

/// The one check of a bandwidth limit: at most [`MAX_KIBPS`] (0: unlimited).
pub fn kibps(k: u64) -> Result<u64, String> {
    match k <= MAX_KIBPS {
        true => Ok(k),
        false => Err(format!("{k} KiB/s is above the largest limit, {MAX_KIBPS}")),
    }
}

fn parse_file(file: &Path, text: &str) -> Result<FileKeys, ConfigError> {
    toml::from_str(text).map_err(|e| {
        let span = e.span().unwrap_or(0..0);
        at(file, text, span, e.message().trim().to_owned())
    })
}

/// Checks that each entry is a multiaddress; an error points at the bad one.
fn addrs_in_file(
    file: &Path,
    text: &str,
    list: Vec<toml::Spanned<String>>,
) -> Result<Vec<String>, ConfigError> {
    list.into_iter()
        .map(|a| match a.get_ref().parse::<Multiaddr>() {
            Ok(_) => Ok(a.into_inner()),
            Err(e) => Err(at(
                file,
                text,
                a.span(),
                format!("{:?} is not a multiaddress ({e})", a.get_ref()),
            )),
        })
        .collect()
}

fn addrs(name: &'static str, list: Vec<String>) -> Result<Vec<String>, ConfigError> {
    for a in &list {
        if let Err(e) = a.parse::<Multiaddr>() {
            return Err(ConfigError::Value {
                name,
                reason: format!("{a:?} is not a multiaddress ({e})"),
            });
        }
    }
    Ok(list)
}

/// A list in one variable: separated by commas or white space.
fn split(v: &str) -> Vec<String> {
    v.split(|c: char| c == ',' || c.is_whitespace())
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect()
}

/// The error at byte `span` of `text`, as a 1-based line and column.
fn at(file: &Path, text: &str, span: Range<usize>, reason: String) -> ConfigError {
    let start = span.start.min(text.len());
    let before = text.get(..start).unwrap_or_default();
    let line = before.matches('\n').count() + 1;
    let column = before
        .rsplit('\n')
        .next()
        .unwrap_or_default()
        .chars()
        .count()
        + 1;
    ConfigError::File {
        path: file.to_owned(),
        line,
        column,
        reason,
    }
}

#[cfg(test)]
#[path = "config_tests.rs"]
mod tests;
