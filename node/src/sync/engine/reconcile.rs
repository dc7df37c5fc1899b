//! Set reconciliation and asking for items: the negentropy sessions of the [`Engine`], and the
//! `Offer`/`Want` bookkeeping that makes every missing item cross once.
//!
//! Invariants: at most one session per (peer, document); when both sides start one, the session of
//! the smaller device id survives; an id is asked from one peer at a time (`inflight`, released on
//! arrival or after `INFLIGHT_MS`), and never when already held.

use negentropy::{Id, Negentropy, NegentropyStorageVector};

use super::{Engine, Event, FRAME};
use crate::sync::msg::{DocId, MAX_IDS, Msg, MsgError};
use crate::trust::DeviceId;

impl Engine {
    pub(super) fn storage(&self, doc: DocId) -> Option<NegentropyStorageVector> {
        let items = self.replica.reconcile_set(doc);
        let mut s = NegentropyStorageVector::with_capacity(items.len());
        for (t, id) in items {
            s.insert(t, Id::from_byte_array(id)).ok()?;
        }
        s.seal().ok()?;
        Some(s)
    }

    pub(super) fn initiate(&mut self, peer: DeviceId, doc: DocId) {
        let Some(storage) = self.storage(doc) else {
            return;
        };
        let Ok(mut neg) = Negentropy::owned(storage, FRAME) else {
            return;
        };
        let Ok(body) = neg.initiate() else { return };
        if let Some(link) = self.links.get_mut(&peer) {
            link.sessions.insert(doc, neg);
            self.send(peer, &Msg::Reconcile { doc, body });
        }
    }

    pub(super) fn on_reconcile(&mut self, peer: DeviceId, doc: DocId, body: &[u8]) {
        if !self.may_share(&peer, doc) {
            return;
        }
        let ours = self
            .links
            .get(&peer)
            .is_some_and(|l| l.sessions.contains_key(&doc));
        if ours {
            if self.cfg.me < peer {
                return; // both initiated: ours survives, theirs is abandoned on their side
            }
            if let Some(l) = self.links.get_mut(&peer) {
                l.sessions.remove(&doc);
            }
        }
        // The responder's storage is kept while the set does not change: a device serving several
        // catching-up peers, or one peer over several rounds, sorts its items once.
        let key = self.replica.reconcile_key(doc);
        if self.neg_cache.get(&doc).is_none_or(|(k, _)| *k != key) {
            let Some(storage) = self.storage(doc) else {
                return;
            };
            self.neg_cache.insert(doc, (key, storage));
        }
        let Some((_, storage)) = self.neg_cache.get(&doc) else {
            return;
        };
        let reply = Negentropy::borrowed(storage, FRAME).and_then(|mut n| n.reconcile(body));
        match reply {
            Ok(body) => self.send(peer, &Msg::ReconcileReply { doc, body }),
            Err(e) => {
                tracing::warn!(peer = %peer.short(), "bad reconciliation message: {e}");
                self.events.push_back(Event::BadMessage {
                    peer,
                    error: MsgError::Malformed,
                });
            }
        }
    }

    pub(super) fn on_reply(&mut self, peer: DeviceId, doc: DocId, body: &[u8]) {
        let Some(link) = self.links.get_mut(&peer) else {
            return;
        };
        let Some(neg) = link.sessions.get_mut(&doc) else {
            return;
        };
        let (mut have, mut need) = (Vec::new(), Vec::new());
        let next = match neg.reconcile_with_ids(body, &mut have, &mut need) {
            Ok(n) => n,
            Err(e) => {
                tracing::warn!(peer = %peer.short(), "bad reconciliation reply: {e}");
                link.sessions.remove(&doc);
                return;
            }
        };
        match next {
            Some(body) => self.send(peer, &Msg::Reconcile { doc, body }),
            None => {
                link.sessions.remove(&doc);
            }
        }
        // What the peer lacks is offered, unless we only listen to it.
        let have: Vec<[u8; 32]> = if self.listening(&peer) {
            Vec::new()
        } else {
            have.iter().map(|i| *i.as_bytes()).collect()
        };
        for chunk in have.chunks(MAX_IDS) {
            self.send(
                peer,
                &Msg::Offer {
                    doc,
                    ids: chunk.to_vec(),
                },
            );
        }
        let need: Vec<[u8; 32]> = need.iter().map(|i| *i.as_bytes()).collect();
        self.want(peer, doc, need);
    }

    /// Asks `peer` for the ids among `ids` that nobody is already sending us.
    pub(super) fn want(&mut self, peer: DeviceId, doc: DocId, ids: Vec<[u8; 32]>) {
        let now = self.now;
        let replica = &self.replica;
        let inflight = self.inflight.entry(doc).or_default();
        let need: Vec<[u8; 32]> = ids
            .into_iter()
            .filter(|id| !inflight.contains_key(id) && !replica.holds(doc, id))
            .collect();
        for id in &need {
            inflight.insert(*id, (peer, now));
        }
        for chunk in need.chunks(MAX_IDS) {
            self.send(
                peer,
                &Msg::Want {
                    doc,
                    ids: chunk.to_vec(),
                },
            );
        }
    }
}
