//! Keyring tests with real keys: sharing, unsharing, lazy rotation, and the attacks on epoch keys
//! and on the lazy window.

use crate::trust::Profile;
use crate::trust::{Clock, DeviceKeys, OrgLog, UserId, UserSecret};
use crate::workspace::keyring::*;
use crate::workspace::{Role, WorkspaceId, WorkspaceLog};

use rand::rngs::StdRng;

struct Person {
    keys: DeviceKeys,
    user: UserId,
    secret: UserSecret,
    clock: Clock,
}

/// An org with an admin (owner) and two more users; one shared org log.
fn world() -> (StdRng, OrgLog, Vec<Person>) {
    let mut f = crate::testkit::Fixture::new(3);
    f.add_user(Profile::Standard);
    f.add_user(Profile::Standard);
    let mut people = vec![Person {
        keys: f.admin.keys,
        user: f.admin.user,
        secret: f.admin.secret,
        clock: f.clock,
    }];
    people.extend(f.members.into_iter().map(|m| Person {
        keys: m.keys,
        user: m.user,
        secret: m.secret,
        clock: Clock::default(),
    }));
    (f.rng, f.org, people)
}

fn ring_of(user: UserId, secret: &UserSecret, log: &WorkspaceLog, org: &OrgLog) -> Keyring {
    let s = secret.clone();
    Keyring::open(log, org, user, move |g| {
        (g == s.generation).then(|| s.clone())
    })
}

#[test]
fn an_unshared_member_reads_the_past_but_not_what_follows_and_a_new_member_reads_all() {
    let (mut rng, org, mut p) = world();
    let ws = WorkspaceId([4; 16]);
    let (owner, rest) = p.split_at_mut(1);
    let o = &mut owner[0];
    let (o_user, o_secret) = (o.user, o.secret.clone());
    let mut me = Actor {
        keys: &o.keys,
        clock: &mut o.clock,
    };
    let (mut log, _) = create(&mut rng, &org, &mut me, o.user, 10_000, ws).unwrap();
    let ring = ring_of(o_user, &o_secret, &log, &org);
    assert_eq!(ring.len(), 1);
    share(
        &mut rng,
        &mut log,
        &org,
        &mut me,
        10_010,
        &ring,
        rest[0].user,
        Role::Contributor,
    )
    .unwrap();
    let before = write(
        &mut rng,
        &mut log,
        &org,
        &mut me,
        10_020,
        &ring,
        b"minutes of the 3 May board",
    )
    .unwrap();
    // Bob reads it.
    let bob = ring_of(rest[0].user, &rest[0].secret, &log, &org);
    let e1 = log.get(&id_of(before.last().unwrap())).unwrap().clone();
    assert_eq!(bob.read(&e1).unwrap(), b"minutes of the 3 May board");
    // Unshare Bob: a new epoch without him.
    unshare(&mut rng, &mut log, &org, &mut me, 10_030, rest[0].user).unwrap();
    let ring = ring_of(o_user, &o_secret, &log, &org);
    assert_eq!(ring.len(), 2);
    let after = write(
        &mut rng,
        &mut log,
        &org,
        &mut me,
        10_040,
        &ring,
        b"salary review",
    )
    .unwrap();
    let e2 = log.get(&id_of(after.last().unwrap())).unwrap().clone();
    let bob = ring_of(rest[0].user, &rest[0].secret, &log, &org);
    assert_eq!(
        bob.read(&e1).unwrap(),
        b"minutes of the 3 May board",
        "what he had stays readable"
    );
    assert!(
        matches!(bob.read(&e2), Err(KeyringError::NoKey(_))),
        "nothing after the new epoch"
    );
    // Carol joins later and receives the whole history.
    share(
        &mut rng,
        &mut log,
        &org,
        &mut me,
        10_050,
        &ring,
        rest[1].user,
        Role::Reader,
    )
    .unwrap();
    let carol = ring_of(rest[1].user, &rest[1].secret, &log, &org);
    assert_eq!(carol.read(&e1).unwrap(), b"minutes of the 3 May board");
    assert_eq!(carol.read(&e2).unwrap(), b"salary review");
    assert!(log.state(&org).members.contains_key(&rest[1].user));
    assert!(!log.state(&org).needs_rotation);
}

#[test]
fn tampered_content_does_not_open() {
    let (mut rng, org, mut p) = world();
    let o = &mut p[0];
    let mut me = Actor {
        keys: &o.keys,
        clock: &mut o.clock,
    };
    let (mut log, _) = create(
        &mut rng,
        &org,
        &mut me,
        o.user,
        10_000,
        WorkspaceId([5; 16]),
    )
    .unwrap();
    let ring = Keyring::open(&log, &org, o.user, |g| (g == 0).then(|| o.secret.clone()));
    let b = write(&mut rng, &mut log, &org, &mut me, 10_020, &ring, b"x").unwrap();
    let e = log.get(&id_of(b.last().unwrap())).unwrap();
    assert_eq!(ring.read(e).unwrap(), b"x");
    // A device of another user holds no key.
    let other = Keyring::open(&log, &org, UserId([9; 16]), |_| None);
    assert!(matches!(other.read(e), Err(KeyringError::NoKey(_))));
}

#[test]
fn the_owner_rotates_lazily_after_a_revocation_and_a_user_key_rotation() {
    use crate::trust::Certificate;
    use crate::trust::author::{self, Writer};
    let mut f = crate::testkit::Fixture::new(11);
    let bob = f.add_user(Profile::Standard);
    let carol = f.add_user(Profile::Standard);
    let (bob_user, carol_user) = (f.members[bob].user, f.members[carol].user);
    let ws = WorkspaceId([6; 16]);
    let owner_secret = f.admin.secret.clone();
    let owner = |g: u32| (g == 0).then(|| owner_secret.clone());
    let mut clock = Clock::default();
    let (mut log, _first_ring) = {
        let mut me = Actor {
            keys: &f.admin.keys,
            clock: &mut clock,
        };
        let (mut log, _) = create(&mut f.rng, &f.org, &mut me, f.admin.user, 10_000, ws).unwrap();
        let ring = Keyring::open(&log, &f.org, f.admin.user, owner);
        share(
            &mut f.rng,
            &mut log,
            &f.org,
            &mut me,
            10_010,
            &ring,
            bob_user,
            Role::Contributor,
        )
        .unwrap();
        share(
            &mut f.rng,
            &mut log,
            &f.org,
            &mut me,
            10_020,
            &ring,
            carol_user,
            Role::Reader,
        )
        .unwrap();
        (log, ring)
    };
    assert!(!log.state(&f.org).needs_rotation);
    // Nothing to do yet.
    let mut me = Actor {
        keys: &f.admin.keys,
        clock: &mut clock,
    };
    assert!(
        maintain(
            &mut f.rng,
            &mut log,
            &f.org,
            &mut me,
            f.admin.user,
            10_030,
            owner
        )
        .unwrap()
        .is_empty()
    );
    // The admin revokes Bob from the organization; Carol's device rotates her user key.
    let org_id = f.org.org();
    let e = Writer {
        keys: &f.admin.keys,
        org_key: &f.org_key,
        clock: &mut f.clock,
    }
    .draft(&f.org, 20_000, Certificate::UserRevoked { user: bob_user });
    assert!(f.org.ingest(vec![e]).is_clean());
    let carol_next = UserSecret::generate(1, &mut f.rng);
    let rot = author::rotation(
        &mut f.rng,
        &org_id,
        carol_user,
        &f.members[carol].secret,
        &carol_next,
        &[(
            f.members[carol].keys.id(),
            f.members[carol].keys.exchange_public(),
        )],
    )
    .unwrap();
    let e = Writer {
        keys: &f.members[carol].keys,
        org_key: &f.org_key,
        clock: &mut Clock::default(),
    }
    .draft(&f.org, 20_010, rot);
    assert!(f.org.ingest(vec![e]).is_clean());
    let st = log.state(&f.org);
    assert!(st.needs_rotation);
    assert!(!st.members.contains_key(&bob_user));
    // Carol (a READER) cannot do it; the owner does, on his next pass.
    let mut carol_me = Actor {
        keys: &f.members[carol].keys,
        clock: &mut Clock::default(),
    };
    assert!(
        maintain(
            &mut f.rng,
            &mut log,
            &f.org,
            &mut carol_me,
            carol_user,
            20_020,
            |_| None
        )
        .unwrap()
        .is_empty()
    );
    let mut me = Actor {
        keys: &f.admin.keys,
        clock: &mut clock,
    };
    let written = maintain(
        &mut f.rng,
        &mut log,
        &f.org,
        &mut me,
        f.admin.user,
        20_030,
        owner,
    )
    .unwrap();
    assert_eq!(written.len(), 1, "one new epoch");
    let st = log.state(&f.org);
    assert!(!st.needs_rotation);
    let ep = st.current_epoch().unwrap();
    assert!(!ep.recipients.contains_key(&bob_user));
    assert_eq!(
        ep.recipients.get(&carol_user),
        Some(&1),
        "sealed to Carol's new key"
    );
    let ring = Keyring::open(&log, &f.org, f.admin.user, owner);
    let b = write(
        &mut f.rng, &mut log, &f.org, &mut me, 20_040, &ring, b"after",
    )
    .unwrap();
    let e = log.get(&id_of(b.last().unwrap())).unwrap();
    let carol_ring = Keyring::open(&log, &f.org, carol_user, |g| {
        (g == 1).then(|| carol_next.clone())
    });
    assert_eq!(carol_ring.read(e).unwrap(), b"after");
    let bob_secret = f.members[bob].secret.clone();
    let bob_ring = Keyring::open(&log, &f.org, bob_user, move |g| {
        (g == 0).then(|| bob_secret.clone())
    });
    assert!(bob_ring.read(e).is_err());
}

/// Person 0 creates workspace `ws` at 10 000 ms and shares it, with keys, with each
/// `(person, role)`, 10 ms apart.
fn owner_shares(
    rng: &mut StdRng,
    org: &OrgLog,
    p: &mut [Person],
    ws: WorkspaceId,
    with: &[(usize, Role)],
) -> WorkspaceLog {
    let users: Vec<UserId> = p.iter().map(|x| x.user).collect();
    let o = &mut p[0];
    let mut me = Actor {
        keys: &o.keys,
        clock: &mut o.clock,
    };
    let (mut log, _) = create(rng, org, &mut me, o.user, 10_000, ws).unwrap();
    let ring = ring_of(o.user, &o.secret, &log, org);
    for (k, (i, role)) in with.iter().enumerate() {
        let now = 10_010 + 10 * k as u64;
        share(rng, &mut log, org, &mut me, now, &ring, users[*i], *role).unwrap();
    }
    log
}

/// Person 0 removes person `who` at `now` (no rotation).
fn owner_removes(log: &mut WorkspaceLog, org: &OrgLog, p: &mut [Person], now: u64, who: usize) {
    use crate::workspace::AccessChange;
    use crate::workspace::envelope::encode_payload;
    let user = p[who].user;
    let o = &mut p[0];
    let mut me = Actor {
        keys: &o.keys,
        clock: &mut o.clock,
    };
    let change = encode_payload(&AccessChange::Remove { user });
    raw(
        log,
        org,
        &mut me,
        now,
        crate::workspace::Kind::Access,
        change,
    );
}

/// Writes an envelope with the log's draft and admits it (a hostile device can sign anything
/// admission accepts).
fn raw(
    log: &mut WorkspaceLog,
    org: &OrgLog,
    me: &mut Actor<'_>,
    now: u64,
    kind: crate::workspace::Kind,
    payload: Vec<u8>,
) -> Vec<u8> {
    let b = log
        .draft(org, me.keys, me.clock, now, kind, None, |_| payload)
        .unwrap();
    let r = log.ingest(vec![b.clone()], org);
    assert!(r.is_clean() && r.admitted.len() == 1, "{:?}", r.refused);
    b
}

/// Attack 6d: a MANAGER seals to a new member a key of its own under the id of an existing
/// epoch, before the honest share arrives. The new member must not use it.
#[test]
fn attack_6d_a_forged_epoch_key_is_refused_by_the_commitment() {
    use crate::seal::{self, EpochKey, EpochKeysContext};
    use crate::workspace::envelope::encode_keys;
    use crate::workspace::{EpochKeys, Kind, SealedKeys};
    let (mut rng, org, mut p) = world();
    let ws = WorkspaceId([7; 16]);
    let (owner, rest) = p.split_at_mut(1);
    let (o, bob, carol) = (&mut owner[0], &rest[0], &rest[1]);
    let o_secret = o.secret.clone();
    let mut me = Actor {
        keys: &o.keys,
        clock: &mut o.clock,
    };
    let (mut log, _) = create(&mut rng, &org, &mut me, o.user, 10_000, ws).unwrap();
    let ring = ring_of(o.user, &o_secret, &log, &org);
    let epoch = log.state(&org).current_epoch().unwrap().id;
    share(
        &mut rng,
        &mut log,
        &org,
        &mut me,
        10_010,
        &ring,
        bob.user,
        Role::Manager,
    )
    .unwrap();
    // The grant to Carol, without keys yet.
    share(
        &mut rng,
        &mut log,
        &org,
        &mut me,
        10_020,
        &Keyring::default(),
        carol.user,
        Role::Reader,
    )
    .unwrap();
    // Bob shares a key he made up, named as the current epoch.
    let bogus = EpochKey::generate(&mut rng);
    let ctx = EpochKeysContext {
        org: org.org(),
        workspace: ws.0,
        user: carol.user,
    };
    let blob =
        seal::seal_epoch_key(&mut rng, &ctx, &carol.secret.public(), 0, epoch.0, &bogus).unwrap();
    let mut bob_clock = Clock::default();
    let mut bob_me = Actor {
        keys: &bob.keys,
        clock: &mut bob_clock,
    };
    raw(
        &mut log,
        &org,
        &mut bob_me,
        10_030,
        Kind::Keys,
        encode_keys(&EpochKeys {
            commitment: None,
            sealed: vec![SealedKeys {
                user: carol.user,
                generation: 0,
                epochs: vec![epoch],
                blob,
            }],
        }),
    );
    // The honest share follows; the owner writes.
    share_keys(&mut rng, &mut log, &org, &mut me, 10_040, &ring, carol.user).unwrap();
    let b = write(&mut rng, &mut log, &org, &mut me, 10_050, &ring, b"budget").unwrap();
    let e = log.get(&id_of(b.last().unwrap())).unwrap().clone();
    let carol_ring = ring_of(carol.user, &carol.secret, &log, &org);
    assert_eq!(
        carol_ring.read(&e).unwrap(),
        b"budget",
        "the forged key was used"
    );
}

/// Attack 7 (lazy window): after a removal and before any rotation, a CONTRIBUTOR does not write
/// under the epoch the removed member holds.
#[test]
fn attack_7_a_contributor_does_not_write_under_an_epoch_awaiting_rotation() {
    let (mut rng, org, mut p) = world();
    let ws = WorkspaceId([8; 16]);
    let mut log = owner_shares(
        &mut rng,
        &org,
        &mut p,
        ws,
        &[(1, Role::Contributor), (2, Role::Reader)],
    );
    // Carol is removed; no OWNER or MANAGER has rotated yet.
    owner_removes(&mut log, &org, &mut p, 10_030, 2);
    assert!(log.state(&org).needs_rotation);
    let rest = &p[1..];
    let bob_ring = ring_of(rest[0].user, &rest[0].secret, &log, &org);
    let mut bob_clock = Clock::default();
    let mut bob = Actor {
        keys: &rest[0].keys,
        clock: &mut bob_clock,
    };
    let r = write(&mut rng, &mut log, &org, &mut bob, 10_040, &bob_ring, b"x");
    assert!(
        r.is_err(),
        "a contributor wrote under an epoch awaiting rotation"
    );
}

/// Attack 7 (lazy window): an OWNER's write rotates first, so the removed member cannot read it.
#[test]
fn attack_7_an_owners_write_rotates_first() {
    let (mut rng, org, mut p) = world();
    let ws = WorkspaceId([9; 16]);
    let mut log = owner_shares(&mut rng, &org, &mut p, ws, &[(2, Role::Reader)]);
    owner_removes(&mut log, &org, &mut p, 10_020, 2);
    let (owner, rest) = p.split_at_mut(1);
    let o = &mut owner[0];
    let o_secret = o.secret.clone();
    let ring = ring_of(o.user, &o_secret, &log, &org);
    let mut me = Actor {
        keys: &o.keys,
        clock: &mut o.clock,
    };
    let carol = rest[1].user;
    let b = write(&mut rng, &mut log, &org, &mut me, 10_030, &ring, b"after").unwrap();
    let e = log.get(&id_of(b.last().unwrap())).unwrap().clone();
    assert!(!log.state(&org).needs_rotation);
    let carol_ring = ring_of(carol, &rest[1].secret, &log, &org);
    assert!(carol_ring.read(&e).is_err(), "the removed member reads it");
    let ring = ring_of(o.user, &o_secret, &log, &org);
    assert_eq!(ring.read(&e).unwrap(), b"after");
}
