//! Receive-only links: how a device that believes a peer revoked can still learn that it is not.
//!
//! A stale device that took a revoked admin's forged revocations first believes the honest
//! devices revoked; the entries that void the forgeries (the revocation of the forger) can only
//! come from them. So a device of the organization that does not count here (certified, then
//! revoked or voided) is not refused at the connection: it gets a *listening* link, on which
//! this side
//! - sends nothing it holds: no `Hello`, no items, no `Offer`, no block, no workspace id (it
//!   only runs the organization log's reconciliation as initiator, so it learns which entries
//!   the peer has that it lacks, and `Want`s them);
//! - takes only organization entries signed by a device of the organization, held aside (at
//!   most [`LISTEN_BYTES`] received) and taken into the
//!   log only if, with them added, the peer counts ([`OrgLog::counts_with`], the relay's rule
//!   for an `Intro`): then the link becomes a full one. A revoked device's own entries never
//!   make it count, so nothing it sends is stored;
//! - ends after [`LISTEN_IDLE_MS`] without items or [`LISTEN_MAX_MS`] in all, after
//!   [`LISTEN_TRIALS`] failed judgements, or past [`LISTEN_BYTES`]; the peer is then refused
//!   for [`LISTEN_COOLDOWN_MS`]. At most [`MAX_LISTENING`] such links at once.
//!
//! A relay (`Config::relay`) never listens: it judges a device by its `Intro` instead.
//!
//! [`OrgLog::counts_with`]: crate::trust::OrgLog::counts_with

use super::{Engine, Event};
use crate::sync::msg::DocId;
use crate::trust::DeviceId;

/// Bytes of organization entries a listening link holds aside (the relay's `Intro` limit).
pub const LISTEN_BYTES: usize = 8 * 1024 * 1024;
/// A listening link ends after this long without items.
pub const LISTEN_IDLE_MS: u64 = 15_000;
/// A listening link ends after this long in any case.
pub const LISTEN_MAX_MS: u64 = 120_000;
/// Judgements (each on a copy of the log) a listening link may ask for.
pub const LISTEN_TRIALS: u32 = 4;
/// How long a peer whose listening link ended without it coming to count is refused.
pub const LISTEN_COOLDOWN_MS: u64 = 60_000;
/// Listening links at once.
pub const MAX_LISTENING: usize = 16;

/// The state of a listening link.
#[derive(Debug)]
pub(super) struct Listen {
    started: u64,
    until: u64,
    held: Vec<Vec<u8>>,
    bytes: usize,
    trials: u32,
}

impl Listen {
    fn new(now: u64) -> Listen {
        Listen {
            started: now,
            until: now + LISTEN_IDLE_MS,
            held: Vec::new(),
            bytes: 0,
            trials: 0,
        }
    }
}

/// What a peer may have with us.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Standing {
    /// An active device or an authorized relay: everything it shares with us.
    Full,
    /// A device of the organization that does not count here: a listening link.
    Listen,
    /// A stranger, or a peer refused for now.
    Refuse,
}

impl Engine {
    /// What `peer` may have with us; `linked` if it already has a link (the cap on listening
    /// links and the cool-down apply to new links only).
    pub(super) fn standing(&mut self, peer: &DeviceId, linked: bool) -> Standing {
        if self.may_talk(peer) {
            return Standing::Full;
        }
        let certified = self.replica.org.state().devices.contains_key(peer);
        let cooling = self.cooldown.get(peer).is_some_and(|t| *t > self.now);
        let room = self.links.values().filter(|l| l.listen.is_some()).count() < MAX_LISTENING;
        if !self.cfg.relay && certified && (linked || (!cooling && room)) {
            Standing::Listen
        } else {
            Standing::Refuse
        }
    }

    /// Whether our link to `peer` is a listening one.
    pub(super) fn listening(&self, peer: &DeviceId) -> bool {
        self.links.get(peer).is_some_and(|l| l.listen.is_some())
    }

    /// Peers linked to us by a listening link.
    pub fn listening_peers(&self) -> Vec<DeviceId> {
        self.links
            .iter()
            .filter(|(_, l)| l.listen.is_some())
            .map(|(p, _)| *p)
            .collect()
    }

    /// Opens a listening link to `peer` (or turns a full one into one): we ask for what it has.
    pub(super) fn listen_to(&mut self, peer: DeviceId) {
        let now = self.now;
        let link = self.links.entry(peer).or_default();
        link.sessions.clear();
        link.listen = Some(Listen::new(now));
        tracing::info!(peer = %peer.short(), "listening only: the peer does not count here");
        self.initiate(peer, DocId::Org);
    }

    /// Ends a listening link: the shell disconnects, and the peer is refused for a while.
    pub(super) fn end_listen(&mut self, peer: DeviceId, why: &'static str) {
        tracing::info!(peer = %peer.short(), why, "listening link ended");
        self.links.remove(&peer);
        self.release_asked_of(&peer);
        self.cooldown.insert(peer, self.now + LISTEN_COOLDOWN_MS);
        self.events.push_back(Event::Disconnect { peer });
    }

    /// Items from a peer on a listening link: organization entries are held aside and judged
    /// once nothing more is awaited from it; anything else is dropped.
    pub(super) fn on_items_listening(&mut self, peer: DeviceId, doc: DocId, items: Vec<Vec<u8>>) {
        if doc != DocId::Org {
            tracing::debug!(peer = %peer.short(), "workspace items from a listening link dropped");
            return;
        }
        let mut awaited = false;
        if let Some(ids) = self.inflight.get_mut(&doc) {
            for b in &items {
                ids.remove(blake3::hash(b).as_bytes());
            }
            awaited = ids.values().any(|(p, _)| *p == peer);
        }
        let now = self.now;
        let Some(l) = self.links.get_mut(&peer).and_then(|l| l.listen.as_mut()) else {
            return;
        };
        l.bytes += items.iter().map(Vec::len).sum::<usize>();
        if l.bytes > LISTEN_BYTES {
            self.end_listen(peer, "too many bytes");
            return;
        }
        let replica = &self.replica;
        let Some(l) = self.links.get_mut(&peer).and_then(|l| l.listen.as_mut()) else {
            return;
        };
        l.until = (now + LISTEN_IDLE_MS).min(l.started + LISTEN_MAX_MS);
        l.held.extend(items.into_iter().filter(|b| {
            !replica.holds(doc, blake3::hash(b).as_bytes()) && replica.org.signed_by_member(b)
        }));
        if !awaited {
            self.judge_listening(peer);
        }
    }

    /// Judges what a listening link holds aside: taken in (and the link made full by
    /// `after_ingest`) if the peer then counts; kept aside otherwise, until the link ends.
    fn judge_listening(&mut self, peer: DeviceId) {
        let Some(l) = self.links.get_mut(&peer).and_then(|l| l.listen.as_mut()) else {
            return;
        };
        if l.held.is_empty() {
            return;
        }
        if l.trials >= LISTEN_TRIALS {
            self.end_listen(peer, "judged too often");
            return;
        }
        l.trials += 1;
        let held = std::mem::take(&mut l.held);
        if self.replica.org.counts_with(&peer, &held) {
            tracing::info!(peer = %peer.short(), "the peer's entries make it count: link made full");
            self.on_items(peer, DocId::Org, held);
        } else if let Some(l) = self.links.get_mut(&peer).and_then(|l| l.listen.as_mut()) {
            l.held = held;
        }
    }

    /// Ends the listening links that are due (a last judgement first), and forgets expired
    /// cool-downs.
    pub(super) fn listen_tick(&mut self) {
        let now = self.now;
        let due: Vec<DeviceId> = self
            .links
            .iter()
            .filter(|(_, l)| l.listen.as_ref().is_some_and(|l| l.until <= now))
            .map(|(p, _)| *p)
            .collect();
        for peer in due {
            self.judge_listening(peer);
            if self.listening(&peer) {
                self.end_listen(peer, "timed out");
            }
        }
        self.cooldown.retain(|_, t| *t > now);
    }

    /// When the next listening link is due.
    pub(super) fn listen_deadline(&self) -> Option<u64> {
        self.links
            .values()
            .filter_map(|l| l.listen.as_ref().map(|l| l.until))
            .min()
    }

    /// After the organization changed: a linked peer that no longer counts gets a listening
    /// link (or is cut off, if it is not a device of the organization or we are a relay); a
    /// listening peer that now counts gets a full one.
    pub(super) fn restand_links(&mut self) {
        let peers: Vec<DeviceId> = self.links.keys().copied().collect();
        for p in peers {
            match (self.standing(&p, true), self.listening(&p)) {
                (Standing::Full, true) => {
                    if let Some(l) = self.links.get_mut(&p) {
                        l.listen = None;
                    }
                    self.hello(p);
                }
                (Standing::Listen, false) => self.listen_to(p),
                (Standing::Refuse, _) => {
                    self.links.remove(&p);
                    self.events.push_back(Event::Disconnect { peer: p });
                }
                _ => {}
            }
        }
    }
}
