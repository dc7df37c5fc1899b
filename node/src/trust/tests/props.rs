//! Property test: every delivery order and batch size gives the same verdicts and the same state.

use proptest::prelude::*;
use rand::{SeedableRng, rngs::StdRng};

use super::*;

// ---- property test: every delivery order gives the same verdicts and the same state ----

#[derive(Debug, Clone)]
enum Op {
    AddUser {
        by: usize,
        admin: bool,
    },
    AddDevice {
        by: usize,
    },
    Promote {
        by: usize,
        target: usize,
    },
    RevokeDevice {
        by: usize,
        target: usize,
    },
    RevokeUser {
        by: usize,
        target: usize,
    },
    Sync {
        a: usize,
        b: usize,
    },
    /// Records invitation `n` (a small pool, so that ids collide and closes race).
    Invite {
        by: usize,
        n: u8,
        user: bool,
    },
    Close {
        by: usize,
        n: u8,
        used: bool,
    },
    /// Authorizes (or revokes) relay `n` (a small pool, so that authorizations and
    /// revocations of one relay race).
    Relay {
        by: usize,
        n: u8,
        revoke: bool,
    },
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        3 => (0..8usize, any::<bool>()).prop_map(|(by, admin)| Op::AddUser { by, admin }),
        2 => (0..8usize).prop_map(|by| Op::AddDevice { by }),
        1 => (0..8usize, 0..8usize).prop_map(|(by, target)| Op::Promote { by, target }),
        1 => (0..8usize, 0..8usize).prop_map(|(by, target)| Op::RevokeDevice { by, target }),
        1 => (0..8usize, 0..8usize).prop_map(|(by, target)| Op::RevokeUser { by, target }),
        3 => (0..8usize, 0..8usize).prop_map(|(a, b)| Op::Sync { a, b }),
        1 => (0..8usize, 0..4u8, any::<bool>()).prop_map(|(by, n, user)| Op::Invite { by, n, user }),
        1 => (0..8usize, 0..4u8, any::<bool>()).prop_map(|(by, n, used)| Op::Close { by, n, used }),
        1 => (0..8usize, 0..2u8, any::<bool>()).prop_map(|(by, n, revoke)| Op::Relay { by, n, revoke }),
    ]
}

/// Runs random concurrent histories over several devices; returns every entry written
/// (including refused ones, which any device may receive too).
fn run_history(seed: u64, ops: &[Op]) -> (OrgId, Vec<Vec<u8>>) {
    let (mut org, ada) = new_org(seed);
    let mut devs = vec![ada];
    let mut written = vec![org.genesis.clone()];
    for op in ops {
        let n = devs.len();
        match *op {
            Op::AddUser { by, admin } => {
                let by = by % n;
                let mut d = std::mem::replace(&mut devs[by], dummy(&org));
                let profile = if admin {
                    Profile::Admin
                } else {
                    Profile::Standard
                };
                if d.log.state().is_active(&d.keys.id())
                    && d.log.state().users[&d.user].profile == Profile::Admin
                {
                    let (new, es) = org.add_user(&mut d, profile, "u");
                    written.extend(es);
                    devs.push(new);
                }
                devs[by] = d;
            }
            Op::AddDevice { by } => {
                let by = by % n;
                let mut d = std::mem::replace(&mut devs[by], dummy(&org));
                if d.log.state().is_active(&d.keys.id()) {
                    let new = org.add_own_device(&mut d);
                    written.push(all_bytes(&d.log).pop().unwrap());
                    devs.push(new);
                }
                devs[by] = d;
            }
            Op::Promote { by, target }
            | Op::RevokeDevice { by, target }
            | Op::RevokeUser { by, target } => {
                let (by, target) = (by % n, target % n);
                let cert = match op {
                    Op::Promote { .. } => Certificate::ProfileChanged {
                        user: devs[target].user,
                        profile: Profile::Admin,
                    },
                    Op::RevokeDevice { .. } => Certificate::DeviceRevoked {
                        device: devs[target].keys.id(),
                    },
                    _ => Certificate::UserRevoked {
                        user: devs[target].user,
                    },
                };
                let (bytes, _) = org.try_write(&mut devs[by], cert);
                written.push(bytes);
            }
            Op::Invite { by, n: slot, user } => {
                let by = by % n;
                let invited = if user {
                    entry::Invited::User {
                        profile: Profile::Standard,
                    }
                } else {
                    entry::Invited::Device {
                        user: devs[by].user,
                    }
                };
                let cert = Writer {
                    keys: &devs[by].keys,
                    org_key: &org.key,
                    clock: &mut Clock::default(),
                }
                .invitation_recorded(
                    &mut org.rng,
                    &org.org,
                    [slot; 16],
                    invited,
                    org.now + 60_000,
                    user.then_some("x@example.org"),
                )
                .unwrap();
                let (bytes, _) = org.try_write(&mut devs[by], cert);
                written.push(bytes);
            }
            Op::Close { by, n: slot, used } => {
                let by = by % n;
                let reason = if used {
                    entry::CloseReason::Used
                } else {
                    entry::CloseReason::Cancelled
                };
                let cert = Certificate::InvitationClosed {
                    id: [slot; 16],
                    reason,
                };
                let (bytes, _) = org.try_write(&mut devs[by], cert);
                written.push(bytes);
            }
            Op::Relay {
                by,
                n: slot,
                revoke,
            } => {
                let by = by % n;
                let relay = DeviceKeys::from_secrets(&[slot + 100; 32], &[1; 32]).id();
                let cert = if revoke {
                    author::relay_revoked(relay)
                } else {
                    author::relay_authorized(relay, vec!["/ip4/127.0.0.1/tcp/1".into()])
                };
                let (bytes, _) = org.try_write(&mut devs[by], cert);
                written.push(bytes);
            }
            Op::Sync { a, b } => {
                let (a, b) = (a % n, b % n);
                if a != b {
                    let ab = all_bytes(&devs[a].log);
                    let ba = all_bytes(&devs[b].log);
                    devs[b].log.ingest(ab);
                    devs[a].log.ingest(ba);
                }
            }
        }
    }
    (org.org, written)
}

fn dummy(org: &Org) -> Dev {
    Dev {
        keys: DeviceKeys::from_secrets(&[1; 32], &[1; 32]),
        user: UserId([0; 16]),
        clock: Clock::default(),
        log: OrgLog::new(org.org),
        secret: UserSecret::from_bytes(0, &[1; 32]),
    }
}

/// Ingests `entries` in the given order and batch sizes; returns verdicts and state.
fn replay(
    org: OrgId,
    entries: &[Vec<u8>],
    order: &[usize],
    batch: usize,
) -> (Vec<(EntryId, bool)>, OrgState) {
    let mut log = OrgLog::new(org);
    let mut admitted = std::collections::BTreeSet::new();
    for chunk in order.chunks(batch.max(1)) {
        let r = log.ingest(chunk.iter().map(|i| entries[*i].clone()).collect());
        admitted.extend(r.admitted);
        // Ask for the state between batches, so later batches take the incremental path
        // (`Derived::try_extend`) that must agree with a full recomputation.
        let _ = log.state();
    }
    let verdicts = entries
        .iter()
        .map(|e| {
            let id = EntryId(*blake3::hash(e).as_bytes());
            (id, log.contains(&id))
        })
        .collect();
    assert_eq!(log.pending_len(), 0);
    (verdicts, log.state().clone())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]
    #[test]
    fn every_delivery_order_gives_the_same_verdicts_and_state(
        seed in 0u64..1_000,
        ops in proptest::collection::vec(op(), 1..40),
        perm_seed in any::<u64>(),
        batch in 1usize..16,
    ) {
        let (org, entries) = run_history(seed, &ops);
        let in_order: Vec<usize> = (0..entries.len()).collect();
        let (v1, s1) = replay(org, &entries, &in_order, entries.len());
        let mut shuffled = in_order.clone();
        let mut r = StdRng::seed_from_u64(perm_seed);
        for i in (1..shuffled.len()).rev() {
            let j = (rand::Rng::next_u64(&mut r) % (i as u64 + 1)) as usize;
            shuffled.swap(i, j);
        }
        let (v2, s2) = replay(org, &entries, &shuffled, batch);
        prop_assert_eq!(v1, v2);
        prop_assert_eq!(&s1, &s2);
        // A revoked relay is never authorized.
        prop_assert!(s1.relays.keys().all(|r| !s1.revoked_relays.contains_key(r)));
    }
}
