//! The daemon's folder mirrors: which run, when their next round is due, and the control
//! requests about them (`sync`, `sync --list`, `sync --stop`).
//!
//! A round is due when the watcher saw a change in the directory (notify, debounced
//! [`DEBOUNCE`]), when something arrived for the workspace (an item or blocks, at most every
//! [`ARRIVAL_GAP`]), right after a round that changed something (to settle follow-ups such as
//! conflict copies), and every [`FULL_SCAN`] as a safety net (inotify can overflow or run out of
//! watches). Rounds run on the daemon task like long requests: under `block_in_place`, pumping
//! the network between batches ([`super::Io::pump`]), so peers keep being served.
//!
//! Warnings a round repeats (a failing round, an action that fails again, a bad ignore rule) are
//! logged through a [`Throttle`]: each identical one at most once per [`WARN_EVERY`] per mirror,
//! with the count of those suppressed. A missing `.cloisonignore` is no warning at all.
//!
//! Invariants: a failing round is logged and retried later, never fatal; a stopped mirror's
//! watcher is dropped with it; registered mirrors are restored at start.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use notify_debouncer_full::notify::{RecommendedWatcher, RecursiveMode};
use notify_debouncer_full::{DebounceEventResult, Debouncer, RecommendedCache, new_debouncer};
use tokio::sync::mpsc;

use crate::control::{MirrorInfo, Request, Response};
use crate::logs::Throttle;
use crate::node::folder::{Mirror, RoundReport};
use crate::node::{Node, NodeError, now_ms};
use crate::workspace::WorkspaceId;

/// The watcher's debounce.
pub const DEBOUNCE: Duration = Duration::from_millis(100);
/// The safety-net full scan.
pub const FULL_SCAN: Duration = Duration::from_secs(10);
/// Least time between rounds started by arrivals (blocks arrive in streams).
pub const ARRIVAL_GAP: Duration = Duration::from_millis(100);
/// Least time between two logs of the same warning of a mirror.
pub const WARN_EVERY: Duration = Duration::from_secs(60);

struct Running {
    mirror: Mirror,
    _watcher: Option<Debouncer<RecommendedWatcher, RecommendedCache>>,
    due: Instant,
    mark: (Option<u64>, usize),
    last_round: Option<Instant>,
    last_round_ms: Option<u64>,
    totals: RoundReport,
    /// Kept in the store (false for `sync --foreground`).
    persistent: bool,
}

/// The running mirrors.
pub(super) struct Mirrors {
    running: BTreeMap<WorkspaceId, Running>,
    tx: mpsc::UnboundedSender<WorkspaceId>,
    /// Watcher events (the workspace whose directory changed).
    pub(super) rx: mpsc::UnboundedReceiver<WorkspaceId>,
    /// Repeated warnings of the rounds.
    warnings: Throttle,
}

impl Mirrors {
    pub(super) fn new() -> Mirrors {
        let (tx, rx) = mpsc::unbounded_channel();
        Mirrors {
            running: BTreeMap::new(),
            tx,
            rx,
            warnings: Throttle::new(WARN_EVERY),
        }
    }

    /// Logs a round's warning unless the same one of the same mirror was logged less than
    /// [`WARN_EVERY`] ago.
    fn warn(&mut self, w: WorkspaceId, what: &str, text: &str) {
        let key = format!("{w} {what} {text}");
        if let Some(n) = self.warnings.admit(&key, Instant::now()) {
            if n > 0 {
                tracing::warn!(ws = %w, "{what}: {text} ({n} identical warnings suppressed)");
            } else {
                tracing::warn!(ws = %w, "{what}: {text}");
            }
        }
    }

    /// Starts the registered mirrors and `extra` (not persisted).
    pub(super) fn restore(&mut self, node: &mut Node, extra: &[(WorkspaceId, PathBuf)]) {
        let registered = node.mirrors().unwrap_or_else(|e| {
            tracing::error!("cannot read the registered mirrors: {e}");
            Vec::new()
        });
        for (w, dir) in registered {
            if let Err(e) = self.start(node, w, &dir, true) {
                tracing::warn!(ws = %w, dir = %dir.display(), "mirror not started: {e}");
            }
        }
        for (w, dir) in extra {
            if let Err(e) = self.start(node, *w, dir, false) {
                tracing::error!(ws = %w, dir = %dir.display(), "mirror not started: {e}");
            }
        }
    }

    fn start(
        &mut self,
        node: &mut Node,
        w: WorkspaceId,
        dir: &Path,
        persistent: bool,
    ) -> Result<(), NodeError> {
        let mirror = node.open_mirror(w, dir)?;
        let tx = self.tx.clone();
        let watcher = match new_debouncer(DEBOUNCE, None, move |res: DebounceEventResult| {
            if res.is_ok_and(|evs| !evs.is_empty()) {
                let _ = tx.send(w);
            }
        }) {
            Ok(mut deb) => match deb.watch(dir, RecursiveMode::Recursive) {
                Ok(()) => Some(deb),
                Err(e) => {
                    tracing::warn!(dir = %dir.display(), "no watcher (full scans only): {e}");
                    None
                }
            },
            Err(e) => {
                tracing::warn!("no watcher (full scans only): {e}");
                None
            }
        };
        tracing::info!(ws = %w, dir = %dir.display(), "mirror started");
        self.running.insert(
            w,
            Running {
                mirror,
                _watcher: watcher,
                due: Instant::now(),
                mark: node.arrival_mark(w),
                last_round: None,
                last_round_ms: None,
                totals: RoundReport::default(),
                persistent,
            },
        );
        Ok(())
    }

    /// The directory changed.
    pub(super) fn touched(&mut self, w: WorkspaceId) {
        if let Some(r) = self.running.get_mut(&w) {
            r.due = r.due.min(Instant::now());
        }
    }

    /// Something may have changed the workspaces (a control request ran): every mirror looks.
    pub(super) fn poke_all(&mut self) {
        let now = Instant::now();
        for r in self.running.values_mut() {
            r.due = r.due.min(now);
        }
    }

    /// When the next round is due.
    pub(super) fn next_due(&self) -> Option<Instant> {
        self.running.values().map(|r| r.due).min()
    }

    /// Marks mirrors due whose workspace received something.
    fn check_arrivals(&mut self, node: &Node) {
        for (w, r) in &mut self.running {
            let mark = node.arrival_mark(*w);
            if mark != r.mark {
                r.mark = mark;
                let earliest = r.last_round.map_or_else(Instant::now, |t| t + ARRIVAL_GAP);
                r.due = r.due.min(earliest);
            }
        }
    }

    fn infos(&self, node: &mut Node) -> Result<Vec<MirrorInfo>, NodeError> {
        let mut out = node.mirror_infos()?;
        for info in &mut out {
            if let Some((_, r)) = self.running.iter().find(|(w, _)| w.to_string() == info.ws) {
                fill(info, r);
            }
        }
        for (w, r) in &self.running {
            if !r.persistent {
                let mut info = MirrorInfo {
                    ws: w.to_string(),
                    name: node
                        .workspace_info(*w)
                        .map(|i| i.name)
                        .unwrap_or_else(|_| w.to_string()),
                    dir: r.mirror.dir.display().to_string(),
                    running: true,
                    read_only: r.mirror.read_only,
                    last_round_ms: None,
                    totals: RoundReport::default(),
                };
                fill(&mut info, r);
                out.push(info);
            }
        }
        Ok(out)
    }
}

fn fill(info: &mut MirrorInfo, r: &Running) {
    info.running = true;
    info.read_only = r.mirror.read_only;
    info.last_round_ms = r.last_round_ms;
    info.totals = r.totals.clone();
}

impl super::Daemon {
    /// Answers the mirror requests; `None` for any other request.
    pub(super) fn mirror_call(&mut self, req: &Request) -> Option<Result<Response, NodeError>> {
        Some(match req {
            Request::SyncAdd { ws, dir } => (|| {
                let w = self.node.find_workspace(ws)?;
                let dir = self.node.register_mirror(w, dir)?;
                self.mirrors.running.remove(&w);
                self.mirrors.start(&mut self.node, w, &dir, true)?;
                Ok(Response::Message(format!(
                    "mirroring {} to {ws}",
                    dir.display()
                )))
            })(),
            Request::SyncList => self.mirrors.infos(&mut self.node).map(Response::Mirrors),
            Request::SyncStop { ws } => (|| {
                let w = self.node.find_workspace(ws)?;
                let was_running = self.mirrors.running.remove(&w).is_some();
                match self.node.unregister_mirror(w) {
                    Err(NodeError::NotFound { .. }) if was_running => {}
                    other => other?,
                }
                Ok(Response::Message(format!("stopped mirroring {ws}")))
            })(),
            _ => return None,
        })
    }

    /// Runs the rounds that are due.
    pub(super) fn mirror_turn(&mut self) {
        self.mirrors.check_arrivals(&self.node);
        let now = Instant::now();
        let due: Vec<WorkspaceId> = self
            .mirrors
            .running
            .iter()
            .filter(|(_, r)| r.due <= now)
            .map(|(w, _)| *w)
            .collect();
        for w in due {
            let super::Daemon { node, io, mirrors } = self;
            let Some(r) = mirrors.running.get_mut(&w) else {
                continue;
            };
            let rt = tokio::runtime::Handle::current();
            let result = tokio::task::block_in_place(|| {
                node.mirror_round(&mut r.mirror, &mut |n| io.pump(n, &rt))
            });
            r.last_round = Some(Instant::now());
            r.last_round_ms = Some(now_ms());
            r.mark = node.arrival_mark(w);
            r.due = Instant::now() + FULL_SCAN;
            let mut warnings = Vec::new();
            match result {
                Ok(rep) => {
                    if rep.changed() {
                        tracing::info!(
                            ws = %w,
                            up = rep.uploaded,
                            down = rep.downloaded,
                            moved = rep.moved,
                            deleted = rep.deleted,
                            conflicts = rep.conflicts,
                            "mirror round"
                        );
                        r.due = Instant::now();
                    } else if rep.pending > 0 || rep.unsettled > 0 {
                        r.due = Instant::now() + ARRIVAL_GAP * 2;
                    }
                    for s in &rep.skipped {
                        if !r.totals.skipped.contains(s) {
                            tracing::info!(ws = %w, "mirror skipped {s}");
                        }
                    }
                    r.totals.add(&rep);
                    warnings.extend(
                        rep.ignore_problems
                            .into_iter()
                            .map(|p| ("mirror ignore rules", p)),
                    );
                    warnings.extend(rep.errors.into_iter().map(|e| ("mirror", e)));
                }
                Err(e) => warnings.push(("mirror round failed", e.to_string())),
            }
            for (what, text) in warnings {
                mirrors.warn(w, what, &text);
            }
            // Settle and transmit what the round wrote.
            let rt = tokio::runtime::Handle::current();
            tokio::task::block_in_place(|| self.io.pump(&mut self.node, &rt));
        }
    }
}
