//! Introductions that need the organization log: what the relay collects from a device it could
//! not welcome at once (an organization it does not serve yet, or a device that does not count
//! in its copy of the log), between its [`RelayMsg::LogWanted`] and the device's last
//! [`RelayMsg::LogPart`].
//!
//! A device that counts in the relay's log, and whose `Intro` names only heads the relay holds,
//! is welcomed at once and the organization log is then reconciled by the sync engine like any
//! document, so a reconnection carries no log at all. The others send entries, and only those
//! outside the causal past of the relay's heads (a device that wrote while away sends just what
//! it wrote; an admin that revoked this relay sends the revocation, its farewell).
//!
//! A relay revocation: an organization whose log, judged on a scratch copy, does not authorize
//! this relay or revokes it is not served; one whose log comes to revoke it is served no more
//! (its devices are refused and unlinked, nothing more is stored; what is stored is kept)
//! unless entries a device brings, judged on a copy, void the revocation and make the sender
//! active.
//!
//! Invariants: nothing is collected that was not asked for; per device at most
//! [`MAX_LOG_BYTES`] and [`MAX_LOG_ENTRIES`], at most [`MAX_COLLECTING`] devices and
//! [`MAX_TOTAL_BYTES`] at once, [`PART_IDLE_MS`] between parts and [`COLLECT_MAX_MS`] in all;
//! past a bound the device is refused ([`Refusal::LogTooLarge`]) or dropped as silent, and what
//! it sent is forgotten (nothing collected is stored before the relay judges it).
//!
//! [`RelayMsg::LogWanted`]: super::wire::RelayMsg::LogWanted
//! [`RelayMsg::LogPart`]: super::wire::RelayMsg::LogPart

use std::collections::HashMap;

use super::{MAX_ORGS, Relay, RelayError};
use crate::node::now_ms;
use crate::relay::served::{open_served, org_dir};
use crate::relay::wire::{MAX_WANTED_HEADS, Refusal, RelayMsg};
use crate::sync::DocId;
use crate::trust::{DeviceId, OrgId, OrgLog};

/// Bytes of entries collected from one device (a 20,000-user organization's log is about
/// 16 MiB).
pub const MAX_LOG_BYTES: usize = 64 * 1024 * 1024;
/// Entries collected from one device.
pub const MAX_LOG_ENTRIES: usize = 400_000;
/// Devices sending their log at once.
pub const MAX_COLLECTING: usize = 8;
/// Bytes collected from all devices at once.
pub const MAX_TOTAL_BYTES: usize = 128 * 1024 * 1024;
/// Longest wait for the next part.
pub const PART_IDLE_MS: u64 = 20_000;
/// Longest collection in all.
pub const COLLECT_MAX_MS: u64 = 300_000;

struct Collecting {
    org: OrgId,
    entries: Vec<Vec<u8>>,
    bytes: usize,
    started: u64,
    last: u64,
}

/// What a [`RelayMsg::LogPart`](super::wire::RelayMsg::LogPart) did.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Part {
    /// Not asked for: ignored.
    Unasked,
    /// Taken; more to come.
    More,
    /// The last part: the whole answer, to judge.
    Done(OrgId, Vec<Vec<u8>>),
    /// Over a bound: refuse the device (what it sent is dropped).
    Refuse(Refusal),
}

/// The logs being collected.
#[derive(Default)]
pub(super) struct IntroLogs {
    by_peer: HashMap<DeviceId, Collecting>,
    bytes: usize,
}

impl IntroLogs {
    /// Starts collecting `peer`'s log of `org` (after sending it `LogWanted`), or says why not.
    pub(super) fn start(&mut self, peer: DeviceId, org: OrgId, now: u64) -> Result<(), Refusal> {
        self.forget(&peer);
        if self.by_peer.len() >= MAX_COLLECTING {
            return Err(Refusal::LogTooLarge);
        }
        self.by_peer.insert(
            peer,
            Collecting {
                org,
                entries: Vec::new(),
                bytes: 0,
                started: now,
                last: now,
            },
        );
        Ok(())
    }

    /// Takes one part from `peer`.
    pub(super) fn part(
        &mut self,
        peer: DeviceId,
        entries: Vec<Vec<u8>>,
        last: bool,
        now: u64,
    ) -> Part {
        let Some(c) = self.by_peer.get_mut(&peer) else {
            return Part::Unasked;
        };
        let bytes: usize = entries.iter().map(Vec::len).sum();
        if c.bytes + bytes > MAX_LOG_BYTES
            || c.entries.len() + entries.len() > MAX_LOG_ENTRIES
            || self.bytes + bytes > MAX_TOTAL_BYTES
        {
            self.forget(&peer);
            return Part::Refuse(Refusal::LogTooLarge);
        }
        c.bytes += bytes;
        c.entries.extend(entries);
        c.last = now;
        self.bytes += bytes;
        if !last {
            return Part::More;
        }
        match self.by_peer.remove(&peer) {
            Some(c) => {
                self.bytes -= c.bytes;
                Part::Done(c.org, c.entries)
            }
            None => Part::Unasked,
        }
    }

    /// Drops what `peer` sent (it left, or was refused).
    pub(super) fn forget(&mut self, peer: &DeviceId) {
        if let Some(c) = self.by_peer.remove(peer) {
            self.bytes -= c.bytes;
        }
    }

    /// The devices silent for [`PART_IDLE_MS`] or collecting for [`COLLECT_MAX_MS`]: forgotten
    /// here, for the caller to drop.
    pub(super) fn expire(&mut self, now: u64) -> Vec<DeviceId> {
        let late: Vec<DeviceId> = self
            .by_peer
            .iter()
            .filter(|(_, c)| {
                now.saturating_sub(c.last) >= PART_IDLE_MS
                    || now.saturating_sub(c.started) >= COLLECT_MAX_MS
            })
            .map(|(p, _)| *p)
            .collect();
        for p in &late {
            self.forget(p);
        }
        late
    }

    /// Bytes held now.
    #[cfg(test)]
    fn bytes(&self) -> usize {
        self.bytes
    }
}

impl Relay {
    /// A part of a device's log, after our `LogWanted`.
    pub(super) fn on_log_part(&mut self, from: DeviceId, entries: Vec<Vec<u8>>, last: bool) {
        match self.intro_logs.part(from, entries, last, now_ms()) {
            Part::Unasked => {
                *self.refused.entry("unasked_log".into()).or_default() += 1;
                tracing::debug!(peer = %from.short(), "log part not asked for: dropped");
            }
            Part::More => {
                if let Some(t) = self.pending.get_mut(&from) {
                    *t = now_ms();
                }
            }
            Part::Done(org, entries) => {
                *self
                    .introductions
                    .entry("log_entries_received".into())
                    .or_default() += entries.len() as u64;
                if let Err(e) = self.judge_intro(from, org, entries) {
                    tracing::error!("introduction: {e}");
                }
            }
            Part::Refuse(r) => self.refuse(from, r),
        }
    }

    /// An `Intro`: welcome a device that counts here and brings nothing new, else ask for the
    /// log this relay lacks.
    pub(super) fn on_intro(&mut self, from: DeviceId, org: OrgId, their_heads: &[[u8; 32]]) {
        let heads = match self.orgs.get(&org) {
            Some(s) => {
                let log = &s.engine.replica().org;
                let st = log.state();
                let nothing_new = their_heads
                    .iter()
                    .all(|h| s.engine.replica().holds(DocId::Org, h));
                if !s.revoked
                    && st.relays.contains_key(&self.me)
                    && st.is_active(&from)
                    && nothing_new
                {
                    *self
                        .introductions
                        .entry("welcomed_at_once".into())
                        .or_default() += 1;
                    self.welcome(from, org);
                    return;
                }
                let heads = log.heads();
                if heads.len() <= MAX_WANTED_HEADS {
                    heads.into_iter().map(|h| h.0).collect()
                } else {
                    Vec::new()
                }
            }
            None => Vec::new(),
        };
        match self.intro_logs.start(from, org, now_ms()) {
            Ok(()) => {
                *self.introductions.entry("log_asked".into()).or_default() += 1;
                self.replies.push((from, RelayMsg::LogWanted { heads }));
            }
            Err(r) => self.refuse(from, r),
        }
    }

    /// Judges a device that was not welcomed at once, on the entries it sent.
    fn judge_intro(
        &mut self,
        from: DeviceId,
        org: OrgId,
        entries: Vec<Vec<u8>>,
    ) -> Result<(), RelayError> {
        // A new organization is served only if its log, judged on a copy, makes the sender active.
        let newly_served = !self.orgs.contains_key(&org);
        if newly_served {
            if self.orgs.len() >= MAX_ORGS {
                self.refuse(from, Refusal::NotAuthorized);
                return Ok(());
            }
            // Nothing is stored for an organization that does not authorize us.
            let mut scratch = OrgLog::new(org);
            scratch.ingest(entries.clone());
            let st = scratch.state();
            if st.revoked_relays.contains_key(&self.me) {
                self.refuse(from, Refusal::RelayRevoked);
                return Ok(());
            }
            if !st.relays.contains_key(&self.me) {
                self.refuse(from, Refusal::NotAuthorized);
                return Ok(());
            }
            if !st.is_active(&from) {
                self.refuse(from, Refusal::NotActive);
                return Ok(());
            }
            let served = open_served(self.me, &org_dir(&self.data, &org), org)?;
            tracing::info!(org = %hex::encode(&org.0[..6]), "now serving an organization");
            self.orgs.insert(org, served);
        }
        let Some(s) = self.orgs.get_mut(&org) else {
            return Ok(());
        };
        let fresh: Vec<Vec<u8>> = entries
            .into_iter()
            .filter(|b| {
                !s.engine
                    .replica()
                    .holds(DocId::Org, blake3::hash(b).as_bytes())
            })
            .collect();
        // Entries are taken only from a device that counts once they are in: active in the
        // relay's own state, or in that state with the entries added, judged on a copy first
        // (a newly enrolled device brings its certificate; an honest device brings the
        // revocation that voids a revoked one's forgeries, which may have reached the relay
        // first). A stranger's or a revoked device's entries are neither stored nor passed on.
        if s.revoked {
            // Served no more: nothing is taken, unless the entries (judged on a copy) void the
            // revocation and make the sender active.
            let me = self.me;
            let back = s
                .engine
                .replica()
                .org
                .state_with(&fresh)
                .is_some_and(|st| st.relays.contains_key(&me) && st.is_active(&from));
            if !back {
                self.refuse(from, Refusal::RelayRevoked);
                return Ok(());
            }
            s.revoked = false;
            tracing::warn!(org = %hex::encode(&org.0[..6]), "revocation voided: serving the organization again");
        }
        let takes = newly_served || s.engine.replica().org.counts_with(&from, &fresh);
        if takes && !fresh.is_empty() {
            let _ = s.engine.handle_local(now_ms(), DocId::Org, fresh);
        }
        let st = s.engine.replica().org.state();
        let (authorized, active) = (st.relays.contains_key(&self.me), st.is_active(&from));
        if st.revoked_relays.contains_key(&self.me) {
            // This introduction brought the revocation (the turn then cuts the others off).
            self.unlink(from);
            self.refuse(from, Refusal::RelayRevoked);
        } else if !authorized {
            self.refuse(from, Refusal::NotAuthorized);
        } else if !active {
            self.refuse(from, Refusal::NotActive);
        } else {
            self.welcome(from, org);
        }
        Ok(())
    }

    /// Links a device that counts to its organization's engine and welcomes it.
    pub(super) fn welcome(&mut self, from: DeviceId, org: OrgId) {
        self.pending.remove(&from);
        self.intro_logs.forget(&from);
        if let Some(old) = self.peer_org.insert(from, org)
            && old != org
            && let Some(o) = self.orgs.get_mut(&old)
        {
            o.engine.handle_disconnected(from);
        }
        // The welcome goes out first (replies are sent before the engine's transmits).
        self.replies.push((from, RelayMsg::Welcome));
        if let Some(s) = self.orgs.get_mut(&org) {
            s.engine.handle_connected(now_ms(), from);
        }
        tracing::info!(peer = %from.short(), org = %hex::encode(&org.0[..6]), "device welcomed");
    }

    /// Organizations whose log now revokes this relay: served no more (each welcomed device of
    /// theirs is refused and cut off; the allowlist, recomputed after, drops them all).
    pub(super) fn apply_revocations(&mut self) {
        let me = self.me;
        let mut newly = Vec::new();
        for (org, s) in &mut self.orgs {
            let revoked = s
                .engine
                .replica()
                .org
                .state()
                .revoked_relays
                .contains_key(&me);
            if revoked && !s.revoked {
                newly.push(*org);
            }
            s.revoked = revoked;
        }
        for org in newly {
            tracing::warn!(org = %hex::encode(&org.0[..6]), "the organization revoked this relay: no longer serving it (stored data kept)");
            let peers: Vec<DeviceId> = self
                .peer_org
                .iter()
                .filter(|(_, o)| **o == org)
                .map(|(p, _)| *p)
                .collect();
            for p in peers {
                self.unlink(p);
                self.refuse(p, Refusal::RelayRevoked);
            }
        }
    }

    /// Forgets which organization welcomed `peer` and unlinks it from that engine.
    pub(super) fn unlink(&mut self, peer: DeviceId) {
        if let Some(org) = self.peer_org.remove(&peer)
            && let Some(s) = self.orgs.get_mut(&org)
        {
            s.engine.handle_disconnected(peer);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dev(n: u8) -> DeviceId {
        DeviceId([n; 32])
    }

    #[test]
    fn only_what_was_asked_is_collected_and_handed_over_whole() {
        let mut l = IntroLogs::default();
        let org = OrgId([1; 32]);
        assert_eq!(l.part(dev(1), vec![vec![1]], true, 0), Part::Unasked);
        l.start(dev(1), org, 0).unwrap();
        assert_eq!(l.part(dev(1), vec![vec![1], vec![2]], false, 1), Part::More);
        assert_eq!(l.bytes(), 2);
        assert_eq!(
            l.part(dev(1), vec![vec![3]], true, 2),
            Part::Done(org, vec![vec![1], vec![2], vec![3]])
        );
        assert_eq!(l.bytes(), 0);
        assert_eq!(l.part(dev(1), vec![vec![4]], true, 3), Part::Unasked);
    }

    #[test]
    fn every_bound_refuses_or_drops_and_frees_what_was_held() {
        let mut l = IntroLogs::default();
        let org = OrgId([1; 32]);
        // Per device, by bytes.
        l.start(dev(1), org, 0).unwrap();
        let big = vec![vec![0u8; 1024 * 1024]; 63];
        assert_eq!(l.part(dev(1), big, false, 1), Part::More);
        assert_eq!(
            l.part(dev(1), vec![vec![0u8; 2 * 1024 * 1024]], false, 2),
            Part::Refuse(Refusal::LogTooLarge)
        );
        assert_eq!(l.bytes(), 0);
        // Per device, by entries.
        l.start(dev(2), org, 0).unwrap();
        assert_eq!(
            l.part(dev(2), vec![vec![]; MAX_LOG_ENTRIES + 1], false, 1),
            Part::Refuse(Refusal::LogTooLarge)
        );
        // Devices at once.
        for n in 0..MAX_COLLECTING as u8 {
            l.start(dev(10 + n), org, 0).unwrap();
        }
        assert_eq!(l.start(dev(99), org, 0), Err(Refusal::LogTooLarge));
        // In all, by bytes: two devices of 60 MiB fit, a third is refused.
        let mut l = IntroLogs::default();
        for n in 1..=3 {
            l.start(dev(n), org, 0).unwrap();
        }
        let sixty = || vec![vec![0u8; 1024 * 1024]; 60];
        assert_eq!(l.part(dev(1), sixty(), false, 1), Part::More);
        assert_eq!(l.part(dev(2), sixty(), false, 1), Part::More);
        assert_eq!(
            l.part(dev(3), sixty(), false, 1),
            Part::Refuse(Refusal::LogTooLarge)
        );
        // A device that left frees its bytes; silent or slow ones expire.
        l.forget(&dev(1));
        assert_eq!(l.bytes(), 60 * 1024 * 1024);
        l.start(dev(4), org, 0).unwrap();
        assert_eq!(
            l.part(dev(4), vec![vec![1]], false, PART_IDLE_MS),
            Part::More
        );
        let mut gone = l.expire(PART_IDLE_MS + 1);
        gone.sort();
        assert_eq!(gone, vec![dev(2)]);
        assert_eq!(l.expire(COLLECT_MAX_MS), vec![dev(4)]);
        assert_eq!(l.bytes(), 0);
    }
}
