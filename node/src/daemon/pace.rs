//! The daemon's bandwidth limits (`cloison run --max-send-kibps/--max-recv-kibps`) and meters.
//!
//! Send: block data (the engine's [`Transmit::bulk`] messages) waits in one FIFO queue and
//! leaves at the send limit, each message once the `sync::rate::Bucket` covers it; every other message (hellos,
//! reconciliation, items, block requests) goes at once, so a long transfer never starves
//! synchronisation. Receive: the engine paces its block requests ([`Engine::set_recv_limit`]),
//! and peers send only blocks asked for, so the limit holds whatever the sender's speed. Both
//! limits count block bytes; the meters count every sync message, in and out.
//!
//! Invariants: the queue holds at most [`MAX_QUEUED`] bytes (past it a block answer is dropped
//! and counted; its requester times out and asks again), and a peer's queued messages are
//! dropped when it disconnects; without a send limit nothing is queued.
//!
//! [`Engine::set_recv_limit`]: crate::sync::Engine::set_recv_limit

use std::collections::VecDeque;

use crate::control::BandwidthInfo;
use crate::sync::Transmit;
use crate::sync::rate::{Bucket, KIB, Meter};
use crate::trust::DeviceId;

/// The most block data queued for the send limit, in bytes.
pub const MAX_QUEUED: u64 = 64 << 20;

/// Bandwidth limits, in KiB/s (`None`: unlimited).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Bandwidth {
    /// Block data sent.
    pub send_kibps: Option<u64>,
    /// Block data received.
    pub recv_kibps: Option<u64>,
}

impl Bandwidth {
    /// The receive limit in bytes per second, for the engine.
    pub fn recv_bytes_per_s(&self) -> Option<u64> {
        self.recv_kibps.map(|k| k.saturating_mul(KIB))
    }
}

/// The send queue and the meters.
pub(super) struct Pace {
    limits: Bandwidth,
    send: Option<Bucket>,
    queue: VecDeque<Transmit>,
    queued: u64,
    sent: Meter,
    received: Meter,
    /// Block answers dropped because the queue was full.
    pub(super) dropped: u64,
}

impl Pace {
    pub(super) fn new(limits: Bandwidth, now: u64) -> Pace {
        Pace {
            limits,
            send: limits
                .send_kibps
                .map(|k| Bucket::new(k.saturating_mul(KIB), now)),
            queue: VecDeque::new(),
            queued: 0,
            sent: Meter::default(),
            received: Meter::default(),
            dropped: 0,
        }
    }

    /// Takes a transmit from the engine: returns it if it may go now, else queues it.
    pub(super) fn admit(&mut self, now: u64, t: Transmit) -> Option<Transmit> {
        if !t.bulk || self.send.is_none() {
            return Some(t);
        }
        let len = t.bytes.len() as u64;
        if self.queued.saturating_add(len) > MAX_QUEUED {
            self.dropped += 1;
            tracing::debug!(peer = %t.peer.short(), "send queue full: block answer dropped");
            return None;
        }
        self.queued += len;
        self.queue.push_back(t);
        self.due(now)
    }

    /// The next queued transmit the send limit lets go now.
    pub(super) fn due(&mut self, now: u64) -> Option<Transmit> {
        let bucket = self.send.as_mut()?;
        let len = self.queue.front()?.bytes.len() as u64;
        if !bucket.ready(now, len) {
            return None;
        }
        let t = self.queue.pop_front()?;
        bucket.take(now, len);
        self.queued -= len;
        Some(t)
    }

    /// When queued data may next go (none if nothing waits).
    pub(super) fn wake_at(&self) -> Option<u64> {
        match (&self.send, self.queue.is_empty()) {
            (Some(b), false) => Some(b.ready_at()),
            _ => None,
        }
    }

    /// Drops what was queued for `peer` (it left).
    pub(super) fn forget(&mut self, peer: &DeviceId) {
        let queued = &mut self.queued;
        self.queue.retain(|t| {
            let keep = t.peer != *peer;
            if !keep {
                *queued -= t.bytes.len() as u64;
            }
            keep
        });
    }

    /// Counts bytes handed to the network.
    pub(super) fn on_sent(&mut self, now: u64, bytes: usize) {
        self.sent.add(now, bytes as u64);
    }

    /// Counts bytes received from peers.
    pub(super) fn on_received(&mut self, now: u64, bytes: usize) {
        self.received.add(now, bytes as u64);
    }

    /// For `cloison status`.
    pub(super) fn info(&self, now: u64) -> BandwidthInfo {
        BandwidthInfo {
            max_send_kibps: self.limits.send_kibps,
            max_recv_kibps: self.limits.recv_kibps,
            send_bytes_per_s: self.sent.rate(now),
            recv_bytes_per_s: self.received.rate(now),
            send_queued: self.queued,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(peer: u8, len: usize, bulk: bool) -> Transmit {
        Transmit {
            peer: DeviceId([peer; 32]),
            bytes: vec![0; len],
            bulk,
        }
    }

    #[test]
    fn only_block_data_waits_for_the_send_limit() {
        let mut p = Pace::new(
            Bandwidth {
                send_kibps: Some(100),
                recv_kibps: None,
            },
            0,
        );
        // A block within the burst (25 KiB) goes at once, the next waits for its cost.
        assert!(p.admit(0, t(1, 20 << 10, true)).is_some());
        assert!(p.admit(0, t(1, 200 << 10, true)).is_none());
        // A control message goes at once, past the waiting block.
        assert!(p.admit(0, t(1, 100, false)).is_some());
        let at = p.wake_at().unwrap();
        assert!(at > 1_000, "{at}");
        assert!(p.due(at - 1).is_none());
        assert!(p.due(at).is_some());
        assert_eq!(p.info(at).send_queued, 0);
        assert_eq!(p.wake_at(), None);
    }

    #[test]
    fn a_gone_peer_s_queue_is_dropped_and_the_queue_is_bounded() {
        let mut p = Pace::new(
            Bandwidth {
                send_kibps: Some(1),
                recv_kibps: None,
            },
            0,
        );
        for _ in 0..80 {
            assert!(p.admit(0, t(2, 1 << 20, true)).is_none());
        }
        assert!(p.queued <= MAX_QUEUED);
        assert!(p.dropped > 0);
        p.forget(&DeviceId([2; 32]));
        assert_eq!(p.queued, 0);
        assert_eq!(p.wake_at(), None);
    }

    #[test]
    fn without_a_limit_nothing_waits() {
        let mut p = Pace::new(Bandwidth::default(), 0);
        for _ in 0..100 {
            assert!(p.admit(0, t(1, 8 << 20, true)).is_some());
        }
        assert_eq!(p.wake_at(), None);
    }
}
