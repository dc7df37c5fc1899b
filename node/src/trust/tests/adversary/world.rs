//! The adversary property test's world: honest devices writing through the draft path, the
//! adversaries forging on any past at any time, delivery in random orders and batches, and the
//! invariants checked after every step (see the parent module's doc).

use std::collections::HashSet;

use rand::{RngExt, SeedableRng, rngs::StdRng};

use super::view::{check_adversary, may_write, send};
use super::*;
use crate::trust::admission::profile_set;
use crate::trust::ids::MAX_CLOCK_SKEW_MS;

/// Honest write through the draft path at the next tick (the writer's wall clock told first).
pub(super) fn write(org: &mut Org, dev: &mut Dev, cert: Certificate) -> (Vec<u8>, IngestReport) {
    let now = org.tick();
    dev.log.set_wall(now);
    let bytes = Writer {
        keys: &dev.keys,
        org_key: &org.key,
        clock: &mut dev.clock,
    }
    .draft(&dev.log, now, cert);
    let r = dev.log.ingest(vec![bytes.clone()]);
    (bytes, r)
}

impl World {
    pub(super) fn new(seed: u64, adv_profiles: &[Profile]) -> World {
        let (mut org, mut ada) = new_org(seed);
        let (mut bob, _) = org.add_user(&mut ada, Profile::Admin, "bob");
        let (mut carol, _) = org.add_user(&mut ada, Profile::Standard, "carol");
        let carol2 = org.add_own_device(&mut carol);
        sync(&mut ada, &mut carol);
        sync(&mut ada, &mut bob);
        let mut advs = Vec::new();
        for (i, p) in adv_profiles.iter().enumerate() {
            let (x, _) = org.add_user(&mut ada, *p, &format!("x{i}"));
            advs.push(Adv {
                keys: x.keys,
                user: x.user,
                seen: Vec::new(),
                known: HashSet::new(),
                snapshots: Vec::new(),
                written: Vec::new(),
                cert: 0,
                revoked_from: None,
                demoted_from: None,
            });
        }
        let relay = DeviceKeys::generate(&mut org.rng).id();
        let mut w = World {
            adv_devices: advs.iter().map(|a| a.keys.id()).collect(),
            adv_users: advs.iter().map(|a| a.user).collect(),
            advs,
            hon: vec![ada, bob, carol, carol2],
            org,
            relay,
            unbacked: HashSet::new(),
        };
        w.sync_all();
        for a in &mut w.advs {
            a.observe(&w.hon[0].log);
            let own = |s: &Seen| {
                let e = entry::decode(s.bytes.clone()).unwrap();
                e.body().cert.user_added().is_some_and(|u| u.user == a.user)
            };
            a.cert = a.seen.iter().position(own).unwrap();
        }
        w
    }

    pub(super) fn sync_all(&mut self) {
        let mut all = Vec::new();
        for d in &self.hon {
            all.extend(all_bytes(&d.log));
        }
        for d in &mut self.hon {
            send(&all, &mut d.log);
        }
    }

    /// Ids of the honest devices and users that honest entries may remove (not the founders').
    pub(super) fn targets(&self) -> (Vec<UserId>, Vec<DeviceId>) {
        let founders: Vec<UserId> = self.hon[..FOUNDERS].iter().map(|d| d.user).collect();
        let mut users: Vec<UserId> = self.hon[FOUNDERS..].iter().map(|d| d.user).collect();
        users.retain(|u| !founders.contains(u));
        users.sort_unstable();
        users.dedup();
        users.extend(&self.adv_users);
        let mut devices: Vec<DeviceId> = self.hon[FOUNDERS..].iter().map(|d| d.keys.id()).collect();
        devices.extend(&self.adv_devices);
        (users, devices)
    }

    pub(super) fn honest(&mut self, by: usize, act: Act, target: usize) {
        let by = by % self.hon.len();
        let (users, devices) = self.targets();
        let room = self.hon.len() < MAX_HONEST;
        let d = &mut self.hon[by];
        let st = d.log.state().clone();
        let active = st.is_active(&d.keys.id());
        let admin = st
            .users
            .get(&d.user)
            .is_some_and(|u| u.profile == Profile::Admin);
        let mut newcomer = None;
        let cert = match act {
            Act::AddUser(a) if room => {
                let w = Writer {
                    keys: &d.keys,
                    org_key: &self.org.key,
                    clock: &mut Clock::default(),
                };
                let p = if a { Profile::Admin } else { Profile::Standard };
                let (m, c) = crate::testkit::newcomer(
                    &mut self.org.rng,
                    &w,
                    &self.org.org,
                    p,
                    "h",
                    "h@example.org",
                );
                newcomer = Some((m.keys, m.user, m.secret));
                Some(c)
            }
            Act::AddDevice if room => {
                let keys = DeviceKeys::generate(&mut self.org.rng);
                let claimed = author::claim_device(&keys, &self.org.org, &d.keys.id());
                let c = Writer {
                    keys: &d.keys,
                    org_key: &self.org.key,
                    clock: &mut Clock::default(),
                }
                .device_added(&mut self.org.rng, &self.org.org, d.user, &claimed, "phone")
                .unwrap();
                newcomer = Some((keys, d.user, d.secret.clone()));
                Some(c)
            }
            Act::AddUser(_) | Act::AddDevice => None,
            Act::SetProfile(profile) => (!users.is_empty()).then(|| Certificate::ProfileChanged {
                user: users[target % users.len()],
                profile,
            }),
            Act::RevokeUser => (!users.is_empty()).then(|| Certificate::UserRevoked {
                user: users[target % users.len()],
            }),
            Act::RevokeDevice => (!devices.is_empty()).then(|| Certificate::DeviceRevoked {
                device: devices[target % devices.len()],
            }),
        };
        if let Some(cert) = cert {
            let own_device = matches!(act, Act::AddDevice);
            if active && (admin || own_device) {
                let ok = d.log.may_write(&d.keys.id(), &cert);
                assert!(ok.is_ok(), "inv 4: honest device {by} ({act:?}): {ok:?}");
            }
            let (bytes, r) = write(&mut self.org, d, cert);
            let id = id_of(&bytes);
            if !(active && (admin || own_device)) {
                self.unbacked.insert(id);
            }
            if active && (admin || own_device) {
                let wall = self.org.now;
                if let Err(why) = may_write(d, &bytes, &r, wall) {
                    panic!("inv 4: honest device {by} ({act:?}, active, admin {admin}): {why}");
                }
            }
            if let Some((keys, user, secret)) = newcomer
                && d.log.contains(&id)
            {
                let log = d.log.clone();
                self.hon.push(Dev {
                    keys,
                    user,
                    clock: Clock::default(),
                    log,
                    secret,
                });
            }
        }
    }

    pub(super) fn forge(
        &mut self,
        a: usize,
        what: Forgery,
        target: usize,
        past: Past,
        when: When,
        pick: u64,
    ) {
        let mut rng = StdRng::seed_from_u64(pick);
        let wall = self.org.now;
        let adv = &self.advs[a];
        let parents: Vec<usize> = match past {
            Past::Empty => Vec::new(),
            Past::Genesis => vec![0],
            Past::Subset(k) => {
                let mut v: Vec<usize> = (0..=k)
                    .map(|_| rng.random_range(0..adv.seen.len()))
                    .collect();
                // Mostly with its own certificate, so that the entry is admitted.
                if !pick.is_multiple_of(4) {
                    v.push(adv.cert);
                }
                v.sort_unstable();
                v.dedup();
                v
            }
            Past::Recent(k) => {
                let n = adv.seen.len();
                let mut v: Vec<usize> = (n.saturating_sub(k as usize + 1)..n).collect();
                v.push(adv.cert);
                v.sort_unstable();
                v.dedup();
                v
            }
            Past::Snapshot(k) => {
                let n = adv.snapshots.len();
                adv.snapshots[n - 1 - (k as usize % n)].clone()
            }
        };
        let after = parents
            .iter()
            .map(|p| adv.seen[*p].time)
            .max()
            .unwrap_or_default();
        let time = match when {
            When::Small => Hlc(1 + pick % 1_000),
            When::AfterParents => Hlc(after.0 + 1),
            When::WithinSkew => Hlc((wall + pick % MAX_CLOCK_SKEW_MS) << 16),
            When::SkewEdge => Hlc(((wall + MAX_CLOCK_SKEW_MS) << 16) | 0xffff),
            When::BeyondSkew => Hlc((wall + MAX_CLOCK_SKEW_MS + 1 + pick % 200) << 16),
            When::FarFuture => Hlc(Hlc::MAX.0 - pick % 2 * 1_000),
        };
        let hon_users: Vec<UserId> = self.hon.iter().map(|d| d.user).collect();
        let all_users: Vec<UserId> = hon_users.iter().chain(&self.adv_users).copied().collect();
        let hon_devices: Vec<DeviceId> = self.hon.iter().map(|d| d.keys.id()).collect();
        let all_devices: Vec<DeviceId> = hon_devices
            .iter()
            .chain(&self.adv_devices)
            .copied()
            .collect();
        let w = Writer {
            keys: &adv.keys,
            org_key: &self.org.key,
            clock: &mut Clock::default(),
        };
        let mut certs = Vec::new();
        match what {
            Forgery::Profile(profile) => certs.push(Certificate::ProfileChanged {
                user: all_users[target % all_users.len()],
                profile,
            }),
            Forgery::GrantAccomplice => certs.push(Certificate::ProfileChanged {
                user: self.adv_users[(a + 1) % self.advs.len()],
                profile: Profile::Admin,
            }),
            Forgery::RevokeUser => certs.push(Certificate::UserRevoked {
                user: all_users[target % all_users.len()],
            }),
            Forgery::RevokeDevice => certs.push(Certificate::DeviceRevoked {
                device: all_devices[target % all_devices.len()],
            }),
            Forgery::ClaimDevice(as_own) => {
                let honest: Vec<entry::DeviceAdded> = adv
                    .seen
                    .iter()
                    .filter_map(|s| {
                        let e = entry::decode(s.bytes.clone()).ok()?;
                        let (d, _) = e.body().cert.device_added()?;
                        hon_devices.contains(&d.device).then(|| d.clone())
                    })
                    .collect();
                let mut d = honest[target % honest.len()].clone();
                if as_own {
                    d.user = adv.user;
                }
                certs.push(Certificate::DeviceAdded(d));
            }
            Forgery::AddUser(p) => {
                let (m, c) = crate::testkit::newcomer(
                    &mut self.org.rng,
                    &w,
                    &self.org.org,
                    p,
                    "acc",
                    "a@x.org",
                );
                self.adv_devices.push(m.keys.id());
                self.adv_users.push(m.user);
                certs.push(c);
            }
            Forgery::OwnDevice => {
                let keys = DeviceKeys::generate(&mut self.org.rng);
                let claimed = author::claim_device(&keys, &self.org.org, &adv.keys.id());
                let c = w
                    .device_added(&mut self.org.rng, &self.org.org, adv.user, &claimed, "x")
                    .unwrap();
                self.adv_devices.push(keys.id());
                certs.push(c);
            }
            Forgery::Flood(n) => {
                for _ in 0..n {
                    let mut id = [0u8; 16];
                    rng.fill(&mut id);
                    certs.push(Certificate::InvitationRecorded(entry::InvitationRecorded {
                        id,
                        invited: entry::Invited::Device { user: adv.user },
                        expires_ms: time.millis().saturating_add(1_000),
                        greeter: adv.keys.id(),
                        private: Vec::new(),
                    }));
                }
            }
        }
        let pb: Vec<Vec<u8>> = parents.iter().map(|p| adv.seen[*p].bytes.clone()).collect();
        for cert in certs {
            let bytes = forge(&self.org, &self.advs[a].keys, &pb, time, cert);
            // The adversaries collude: each sees what the other writes.
            for x in &mut self.advs {
                x.see(bytes.clone());
            }
            self.advs[a].written.push(bytes);
        }
    }

    pub(super) fn deliver(&mut self, a: usize, to: usize, pick: u64, batch: usize) {
        let mut rng = StdRng::seed_from_u64(pick);
        let to = to % self.hon.len();
        let all = pick.is_multiple_of(3);
        let mut v: Vec<Vec<u8>> = self.advs[a]
            .written
            .iter()
            .filter(|_| all || rng.random_bool(0.5))
            .cloned()
            .collect();
        shuffle(&mut v, &mut rng);
        for chunk in v.chunks(batch) {
            self.hon[to].log.ingest(chunk.to_vec());
        }
    }

    /// Tells every honest replica the wall time and lets due future entries in.
    pub(super) fn tick_walls(&mut self) {
        for d in &mut self.hon {
            d.log.set_wall(self.org.now);
            if d.log.has_due() {
                d.log.release_due();
            }
        }
    }

    pub(super) fn step(&mut self, op: &Op) {
        let n = self.hon.len();
        match *op {
            Op::Honest { by, act, target } => self.honest(by, act, target),
            Op::Sync { a, b } => {
                let (a, b) = (a % n, b % n);
                let (ab, ba) = (all_bytes(&self.hon[a].log), all_bytes(&self.hon[b].log));
                send(&ab, &mut self.hon[b].log);
                send(&ba, &mut self.hon[a].log);
            }
            Op::SyncAll => self.sync_all(),
            Op::Observe { adv, from } => {
                let adv = adv % self.advs.len();
                self.advs[adv].observe(&self.hon[from % n].log);
            }
            Op::Forge {
                adv,
                what,
                target,
                past,
                when,
                pick,
            } => self.forge(adv % self.advs.len(), what, target, past, when, pick),
            Op::Deliver {
                adv,
                to,
                pick,
                batch,
            } => self.deliver(adv % self.advs.len(), to, pick, batch),
        }
        self.tick_walls();
        self.check();
    }

    /// Invariants 1 to 4 on every honest replica (see the module doc).
    pub(super) fn check(&mut self) {
        let views: Vec<View> = self.hon.iter().map(|d| View::of(&d.log)).collect();
        for i in 0..views.len() {
            for j in i + 1..views.len() {
                if views[i].sorted == views[j].sorted {
                    assert_eq!(
                        self.hon[i].log.state(),
                        self.hon[j].log.state(),
                        "inv 1: replicas {i} and {j} hold the same entries, states differ"
                    );
                }
            }
        }
        let founders = [self.hon[0].keys.id(), self.hon[1].keys.id()];
        let hon_devices: HashSet<DeviceId> = self.hon.iter().map(|d| d.keys.id()).collect();
        for (ri, (d, v)) in self.hon.iter().zip(&views).enumerate() {
            let st = d.log.state();
            for x in &self.advs {
                check_adversary(ri, v, st, x, &founders, &self.unbacked);
            }
            for h in &self.hon {
                if let Some(ds) = st.devices.get(&h.keys.id()) {
                    assert_eq!(
                        ds.user, h.user,
                        "inv 2c: replica {ri}: an honest device changed owner"
                    );
                }
                if let Some(u) = st.users.get(&h.user) {
                    assert!(
                        u.devices.iter().all(|d| hon_devices.contains(d)),
                        "inv 2c: replica {ri}: honest user {:?} has a device no honest entry added",
                        h.user
                    );
                }
            }
        }
        // Invariant 3: mark where every honest replica holds a founder removal of X.
        for x in &mut self.advs {
            let everywhere = |x: &Adv, revoke: bool| {
                views
                    .iter()
                    .all(|v| !v.founder_removals(x, &founders, revoke).is_empty())
            };
            if x.revoked_from.is_none() && everywhere(x, true) {
                x.revoked_from = Some(x.written.len());
            }
            if x.demoted_from.is_none() && everywhere(x, false) {
                x.demoted_from = Some(x.written.len());
            }
        }
        for (ri, (d, v)) in self.hon.iter().zip(&views).enumerate() {
            let st = d.log.state();
            for x in &self.advs {
                let regranted = v.bodies.iter().any(|b| {
                    b.author != x.keys.id() && profile_set(b, &x.user) == Some(Profile::Admin)
                });
                let late = |from: Option<usize>| from.map_or(&[][..], |f| &x.written[f..]);
                for (from, revoked) in [(x.revoked_from, true), (x.demoted_from, false)] {
                    // (A founder removal can itself be voided by a removal that counts.)
                    let counts = v
                        .founder_removals(x, &founders, revoked)
                        .iter()
                        .any(|r| v.kept[*r]);
                    if (!revoked && regranted) || !counts {
                        continue;
                    }
                    // (An entry X signs again, byte for byte, is not late: found by the test.)
                    let early: HashSet<EntryId> = from
                        .map_or(&[][..], |f| &x.written[..f])
                        .iter()
                        .map(|e| id_of(e))
                        .collect();
                    for e in late(from) {
                        if early.contains(&id_of(e)) {
                            continue;
                        }
                        let Some(p) = v.pos.get(&id_of(e)) else {
                            continue;
                        };
                        let admin = v.needs_admin(*p, st, &x.user);
                        // A confession (X removing its own user's devices or profile) still
                        // counts: it takes rights only from X.
                        assert!(
                            !v.kept[*p] || !(revoked || admin) || v.confession(*p, st),
                            "inv 3: replica {ri}: {:?} by X (removed everywhere, revoked: {revoked}) counts",
                            v.bodies[*p].cert
                        );
                    }
                }
            }
        }
        // Invariant 4: every honest active admin can write now.
        for (i, d) in self.hon.iter().enumerate() {
            let st = d.log.state();
            let admin = st
                .users
                .get(&d.user)
                .is_some_and(|u| u.profile == Profile::Admin);
            if !st.is_active(&d.keys.id()) || !admin {
                continue;
            }
            let mut log = d.log.clone();
            let wall = self.org.now;
            log.set_wall(wall);
            let cert = author::relay_authorized(self.relay, vec!["/ip4/127.0.0.1/tcp/1".into()]);
            let bytes = Writer {
                keys: &d.keys,
                org_key: &self.org.key,
                clock: &mut d.clock.clone(),
            }
            .draft(&log, wall, cert);
            let r = log.ingest(vec![bytes.clone()]);
            let dev = Dev {
                log,
                keys: DeviceKeys::from_secrets(&d.keys.secrets().0, &d.keys.secrets().1),
                user: d.user,
                clock: Clock::default(),
                secret: d.secret.clone(),
            };
            if let Err(why) = may_write(&dev, &bytes, &r, wall) {
                panic!(
                    "inv 4: honest admin {i} (active, admin in its own state) cannot write: {why}"
                );
            }
        }
    }

    /// End of a run: everyone syncs; convergence by replay, and the state without X's late
    /// entries (invariant 3), where nothing else builds on them.
    pub(super) fn finish(&mut self, pick: u64) {
        self.sync_all();
        self.tick_walls();
        self.check();
        let log = &self.hon[0].log;
        let st = log.state();
        let mut order = all_bytes(log);
        let mut rng = StdRng::seed_from_u64(pick);
        shuffle(&mut order, &mut rng);
        let mut fresh = OrgLog::new(self.org.org);
        for chunk in order.chunks(rng.random_range(1..20)) {
            fresh.ingest(chunk.to_vec());
            let _ = fresh.state();
        }
        assert_eq!(
            fresh.state(),
            st,
            "inv 1: a fresh replica in another order differs"
        );
        let (v, founders) = (
            View::of(log),
            [self.hon[0].keys.id(), self.hon[1].keys.id()],
        );
        for x in &self.advs {
            let Some(from) = x.revoked_from else { continue };
            if !v
                .founder_removals(x, &founders, true)
                .iter()
                .any(|r| v.kept[*r])
            {
                continue;
            }
            // X's late entries but its confessions, which still count (see invariant 3).
            let early: HashSet<EntryId> = x.written[..from].iter().map(|e| id_of(e)).collect();
            let late: HashSet<EntryId> = x.written[from..]
                .iter()
                .map(|e| id_of(e))
                .filter(|id| !early.contains(id))
                .filter(|id| v.pos.get(id).is_none_or(|p| !v.confession(*p, st)))
                .collect();
            let others_on_late = log.entries().any(|e| {
                !late.contains(&e.id()) && e.body().parents.iter().any(|p| late.contains(p))
            });
            if others_on_late || !log.entries().any(|e| late.contains(&e.id())) {
                continue;
            }
            let mut without = OrgLog::new(self.org.org);
            without.ingest(
                log.entries()
                    .filter(|e| !late.contains(&e.id()))
                    .map(|e| e.bytes().to_vec())
                    .collect(),
            );
            let (mut a, mut b) = (st.clone(), without.state().clone());
            a.dropped.clear();
            b.dropped.clear();
            assert_eq!(
                a, b,
                "inv 3: X's entries written after its revocation changed the state"
            );
        }
    }
}
