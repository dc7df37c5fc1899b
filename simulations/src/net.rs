//! The network model: a topology of links and, per link, latency, jitter, bandwidth and state.
//!
//! Link kinds: `Lan` (inside a site: 1-3 ms, 100 Mbit/s), `Wan` (direct between sites and to the
//! relay: 30-80 ms, 20 Mbit/s) and `Bundle` (the air-gapped site's gateway and one device of a
//! connected site; up only during a bundle session).
//!
//! Invariants: while a link is up it is reliable and ordered in each direction: a message leaves
//! once the previous one is serialized (`bytes / rate`) and never arrives before the previous one
//! (per-direction FIFO). A link going down bumps its `epoch`: messages of an older epoch are
//! discarded on arrival (a lost connection loses what was in flight). Times are microseconds.

use std::collections::BTreeSet;

use rand::RngExt;
use rand::rngs::StdRng;

use crate::config::SimConfig;
use crate::world::{World, shuffle};

/// Kind of link.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LinkKind {
    /// Inside a site.
    Lan,
    /// Between sites, or to the relay.
    Wan,
    /// A bundle session (air-gapped site).
    Bundle,
}

/// One link between nodes `a` and `b` (node `devices` is the relay).
#[derive(Debug, Clone)]
pub struct Link {
    /// One end.
    pub a: usize,
    /// The other end.
    pub b: usize,
    /// Kind.
    pub kind: LinkKind,
    /// One-way latency, µs.
    pub latency_us: u64,
    /// Jitter bound, µs (uniform in `0..=jitter`).
    pub jitter_us: u64,
    /// Bandwidth, bytes per second.
    pub rate: u64,
    /// Whether the connection is up.
    pub up: bool,
    /// Connection generation.
    pub epoch: u32,
    /// An engine asked to close this connection: stays down until an end comes back online.
    pub refused: bool,
    /// A bundle session is open (bundle links only).
    pub session: bool,
    /// Per direction (0: a to b, 1: b to a): when the sender finishes serializing.
    pub free_at: [u64; 2],
    /// Per direction: arrival time of the last message sent.
    pub last_arrival: [u64; 2],
    /// Messages in flight (both directions).
    pub inflight: u32,
}

impl Link {
    /// A link of `kind` between `a` and `b`, down, with latency drawn from `rng`.
    pub fn new(a: usize, b: usize, kind: LinkKind, rng: &mut StdRng) -> Link {
        let (latency_us, jitter_us, rate) = match kind {
            LinkKind::Lan => (rng.random_range(1_000..=3_000), 500, 12_500_000),
            LinkKind::Wan => (rng.random_range(30_000..=80_000), 5_000, 2_500_000),
            LinkKind::Bundle => (1_000, 0, 12_500_000),
        };
        Link {
            a,
            b,
            kind,
            latency_us,
            jitter_us,
            rate,
            up: false,
            epoch: 0,
            refused: false,
            session: false,
            free_at: [0; 2],
            last_arrival: [0; 2],
            inflight: 0,
        }
    }

    /// The other end.
    pub fn other(&self, n: usize) -> usize {
        if n == self.a { self.b } else { self.a }
    }

    /// Direction index of a message sent by `from`.
    pub fn dir(&self, from: usize) -> usize {
        usize::from(from != self.a)
    }

    /// Schedules a message of `len` bytes sent by `from` at `now`: its arrival time.
    pub fn schedule(&mut self, from: usize, len: usize, now: u64, rng: &mut StdRng) -> u64 {
        let d = self.dir(from);
        let ser = (len as u64 * 1_000_000).div_ceil(self.rate);
        let done = self.free_at[d].max(now) + ser;
        self.free_at[d] = done;
        let jitter = if self.jitter_us > 0 {
            rng.random_range(0..=self.jitter_us)
        } else {
            0
        };
        let at = (done + self.latency_us + jitter).max(self.last_arrival[d]);
        self.last_arrival[d] = at;
        self.inflight += 1;
        at
    }

    /// Takes the connection down: in-flight messages will be discarded.
    pub fn down(&mut self) {
        self.up = false;
        self.epoch += 1;
        self.free_at = [0; 2];
        self.last_arrival = [0; 2];
        self.inflight = 0;
    }
}

/// The topology: links, and which link joins two nodes.
pub struct Topology {
    /// All links.
    pub links: Vec<Link>,
    /// Bundle links.
    pub bundles: Vec<usize>,
}

/// Lays out the links of `cfg` over `world` (node `world.devices.len()` is the relay).
pub fn build(cfg: &SimConfig, world: &World, rng: &mut StdRng) -> Topology {
    let n = world.devices.len();
    let mut by_site: Vec<Vec<usize>> = vec![Vec::new(); cfg.sites];
    for (i, d) in world.devices.iter().enumerate() {
        by_site[d.site].push(i);
    }
    let mut pairs: BTreeSet<(usize, usize)> = BTreeSet::new();
    let mut links = Vec::new();
    let mut add = |a: usize, b: usize, kind, links: &mut Vec<Link>, rng: &mut StdRng| {
        let key = (a.min(b), a.max(b));
        if a != b && pairs.insert(key) {
            links.push(Link::new(key.0, key.1, kind, rng));
        }
    };
    // LAN, a sparse overlay: each device links to about k/2 random devices of its team (plus a
    // ring, so every team is connected for sure) and k/2 random devices of its site (which carry
    // the organization log between teams).
    for team in &world.teams {
        let devs = &team.devices;
        for (k, &i) in devs.iter().enumerate() {
            if devs.len() > 1 {
                add(
                    i,
                    devs[(k + 1) % devs.len()],
                    LinkKind::Lan,
                    &mut links,
                    rng,
                );
            }
            for _ in 0..(cfg.lan_k / 2).min(devs.len().saturating_sub(1)) {
                let j = devs[rng.random_range(0..devs.len())];
                add(i, j, LinkKind::Lan, &mut links, rng);
            }
        }
    }
    for site in &by_site {
        for &i in site {
            for _ in 0..(cfg.lan_k - cfg.lan_k / 2).min(site.len().saturating_sub(1)) {
                let j = site[rng.random_range(0..site.len())];
                add(i, j, LinkKind::Lan, &mut links, rng);
            }
        }
    }
    let online: Vec<usize> = (0..cfg.sites).filter(|s| !cfg.is_airgapped(*s)).collect();
    // Direct WAN links between online sites.
    if online.len() > 1 {
        for &s in &online {
            for &i in &by_site[s] {
                for _ in 0..cfg.wan_links {
                    let other = online[rng.random_range(0..online.len())];
                    if other != s && !by_site[other].is_empty() {
                        let j = by_site[other][rng.random_range(0..by_site[other].len())];
                        add(i, j, LinkKind::Wan, &mut links, rng);
                    }
                }
            }
        }
    }
    // Relay: WAN links from the devices of online sites (all, or a few per site).
    if cfg.relay {
        for &s in &online {
            let mut devs = by_site[s].clone();
            if let Some(g) = cfg.relay_per_site {
                shuffle(&mut devs, rng);
                devs.truncate(g);
                devs.sort_unstable();
            }
            for i in devs {
                add(i, n, LinkKind::Wan, &mut links, rng);
            }
        }
    }
    // Bundles: the air-gapped site's gateway (its first device) and a device of a connected site.
    let mut bundles = Vec::new();
    if cfg.airgapped
        && let (Some(&gw), Some(&s)) = (by_site[cfg.sites - 1].first(), online.first())
        && let Some(&peer) = by_site[s].first()
    {
        bundles.push(links.len());
        add(gw, peer, LinkKind::Bundle, &mut links, rng);
    }
    Topology { links, bundles }
}
