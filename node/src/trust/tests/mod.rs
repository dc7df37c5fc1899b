//! Scenario, rejection, frozen-vector and property tests of the trust core.

use rand::{SeedableRng, rngs::StdRng};

use super::author::{self, Newcomer, UserSecretPublic, Writer};
use super::entry::{self, Certificate, EntryBody};
use super::*;

/// A frozen vector from `trust/vectors/NAME` (the files were written once, by hand, when the
/// format version was bumped; a test never writes them).
macro_rules! frozen {
    ($name:literal, $current:expr) => {
        include_str!(concat!("../vectors/", $name))
            .trim()
            .to_owned()
    };
}

/// A device in a test organization, with its own log.
struct Dev {
    keys: DeviceKeys,
    user: UserId,
    clock: Clock,
    log: OrgLog,
    secret: UserSecret,
}

struct Org {
    org: OrgId,
    key: OrgKey,
    genesis: Vec<u8>,
    rng: StdRng,
    now: u64,
}

fn new_org(seed: u64) -> (Org, Dev) {
    let mut rng = StdRng::seed_from_u64(seed);
    let mut clock = Clock::default();
    let n = author::create_org(
        &mut rng,
        1_000,
        &mut clock,
        "Hospital",
        &Newcomer {
            name: "Ada",
            email: "ada@example.org",
            device_label: "ada-laptop",
        },
    )
    .unwrap();
    let mut log = OrgLog::new(n.org);
    assert!(log.ingest(vec![n.genesis.clone()]).is_clean());
    let dev = Dev {
        keys: n.device,
        user: n.user,
        clock,
        log,
        secret: n.user_secret,
    };
    (
        Org {
            org: n.org,
            key: n.org_key,
            genesis: n.genesis,
            rng,
            now: 2_000,
        },
        dev,
    )
}

impl Org {
    fn tick(&mut self) -> u64 {
        self.now += 10;
        self.now
    }

    /// Writes `cert` as `dev`, ingests it locally, returns the bytes.
    fn write(&mut self, dev: &mut Dev, cert: Certificate) -> Vec<u8> {
        let (bytes, r) = self.try_write(dev, cert);
        assert!(r.is_clean(), "own entry refused: {:?}", r.rejected);
        bytes
    }

    /// Writes `cert` as `dev` and returns what its own log said.
    fn try_write(&mut self, dev: &mut Dev, cert: Certificate) -> (Vec<u8>, IngestReport) {
        let now = self.tick();
        let bytes = Writer {
            keys: &dev.keys,
            org_key: &self.key,
            clock: &mut dev.clock,
        }
        .draft(&dev.log, now, cert);
        let r = dev.log.ingest(vec![bytes.clone()]);
        (bytes, r)
    }

    /// `by` adds a new user with one device; the new device gets a copy of `by`'s log.
    fn add_user(&mut self, by: &mut Dev, profile: Profile, name: &str) -> (Dev, Vec<Vec<u8>>) {
        let w = Writer {
            keys: &by.keys,
            org_key: &self.key,
            clock: &mut Clock::default(),
        };
        let email = format!("{name}@example.org");
        let (m, c) = crate::testkit::newcomer(&mut self.rng, &w, &self.org, profile, name, &email);
        let (keys, user, secret) = (m.keys, m.user, m.secret);
        let e1 = self.write(by, c);
        let mut log = OrgLog::new(self.org);
        let all: Vec<Vec<u8>> = by.log.entries().map(|e| e.bytes().to_vec()).collect();
        assert!(log.ingest(all).is_clean());
        (
            Dev {
                keys,
                user,
                clock: Clock::default(),
                log,
                secret,
            },
            vec![e1],
        )
    }

    /// The certificate by which `by` adds a fresh device to its own user, and that device's keys.
    fn device_cert(&mut self, by: &Dev) -> (DeviceKeys, Certificate) {
        let keys = DeviceKeys::generate(&mut self.rng);
        let w = Writer {
            keys: &by.keys,
            org_key: &self.key,
            clock: &mut Clock::default(),
        };
        let claimed = author::claim_device(&keys, &self.org, &by.keys.id());
        let c = w
            .device_added(&mut self.rng, &self.org, by.user, &claimed, "phone")
            .unwrap();
        (keys, c)
    }

    /// `by` moves its user key to `generation`, sealed to itself only; returns the new secret
    /// (not yet in `by.secret`) and the entry's bytes.
    fn rotate_user_key(&mut self, by: &mut Dev, generation: u32) -> (UserSecret, Vec<u8>) {
        let next = UserSecret::generate(generation, &mut self.rng);
        let cert = author::rotation(
            &mut self.rng,
            &self.org,
            by.user,
            &by.secret,
            &next,
            &[(by.keys.id(), by.keys.exchange_public())],
        )
        .unwrap();
        let bytes = self.write(by, cert);
        (next, bytes)
    }

    /// `by` adds a second device to its own user.
    fn add_own_device(&mut self, by: &mut Dev) -> Dev {
        let (keys, c) = self.device_cert(by);
        self.write(by, c);
        let mut log = OrgLog::new(self.org);
        assert!(log.ingest(all_bytes(&by.log)).is_clean());
        Dev {
            keys,
            user: by.user,
            clock: Clock::default(),
            log,
            secret: by.secret.clone(),
        }
    }
}

fn all_bytes(log: &OrgLog) -> Vec<Vec<u8>> {
    log.entries().map(|e| e.bytes().to_vec()).collect()
}

/// Signs `cert` as `keys` on exactly `parents` (sorted here) at `time`: what a hostile device can
/// always do, whatever its log holds.
fn forge(
    org: &Org,
    keys: &DeviceKeys,
    parents: &[Vec<u8>],
    time: Hlc,
    cert: Certificate,
) -> Vec<u8> {
    let mut ids: Vec<EntryId> = parents
        .iter()
        .map(|b| EntryId(*blake3::hash(b).as_bytes()))
        .collect();
    ids.sort_unstable();
    entry::sign(
        keys,
        &EntryBody {
            org: org.org,
            parents: ids,
            author: keys.id(),
            time,
            cert,
        },
    )
}

/// The id of an entry given as bytes.
fn id_of(b: &[u8]) -> EntryId {
    EntryId(*blake3::hash(b).as_bytes())
}

fn sync(a: &mut Dev, b: &mut Dev) {
    let ab = all_bytes(&a.log);
    let ba = all_bytes(&b.log);
    assert!(b.log.ingest(ab).is_clean());
    assert!(a.log.ingest(ba).is_clean());
}

fn only_rejection(r: &IngestReport) -> Rejection {
    assert!(r.admitted.is_empty(), "admitted {:?}", r.admitted);
    assert_eq!(r.rejected.len(), 1, "{:?}", r.rejected);
    r.rejected[0].1.clone()
}

#[test]
fn genesis_makes_an_org_with_one_admin_and_readable_private_parts() {
    let (org, ada) = new_org(1);
    let st = ada.log.state().clone();
    assert_eq!(st.users.len(), 1);
    let u = &st.users[&ada.user];
    assert_eq!(u.profile, Profile::Admin);
    assert!(st.is_active(&ada.keys.id()));
    let p: author::UserPrivate = author::open_private(
        &org.key,
        &org.org,
        author::PRIVATE_USER,
        &ada.user.0,
        &u.private,
    )
    .unwrap();
    assert_eq!(p.email, "ada@example.org");
    // The root key signed the genesis and the org id is its verifying key.
    let g = ada.log.entries().next().unwrap();
    assert_eq!(g.body().author.0, org.org.0);
}

#[test]
fn admin_adds_users_and_devices_and_others_see_the_same_state() {
    let (mut org, mut ada) = new_org(2);
    let (mut bob, _) = org.add_user(&mut ada, Profile::Standard, "bob");
    let bob2 = org.add_own_device(&mut bob);
    sync(&mut ada, &mut bob);
    let st = ada.log.state().clone();
    assert_eq!(st.users.len(), 2);
    assert_eq!(st.active_devices_of(&bob.user).len(), 2);
    assert!(st.is_active(&bob2.keys.id()));
    assert_eq!(bob.log.state(), &st);
}

#[test]
fn non_admin_cannot_add_a_user_and_nothing_is_stored() {
    let (mut org, mut ada) = new_org(3);
    let (mut bob, _) = org.add_user(&mut ada, Profile::Standard, "bob");
    let before = bob.log.len();
    let eve = DeviceKeys::generate(&mut org.rng);
    let c = Writer {
        keys: &bob.keys,
        org_key: &org.key,
        clock: &mut Clock::default(),
    }
    .user_added(
        &mut org.rng,
        &org.org,
        Profile::Admin,
        &UserSecretPublic([5; 32]),
        &author::claim_first(&eve, &org.org, &[5; 32]),
        &Newcomer {
            name: "eve",
            email: "eve@example.org",
            device_label: "x",
        },
    )
    .unwrap();
    let (_, r) = org.try_write(&mut bob, c);
    assert_eq!(
        only_rejection(&r),
        Rejection::NotAdmin {
            device: bob.keys.id()
        }
    );
    assert_eq!(bob.log.len(), before);
}

#[test]
fn malformed_bytes_are_refused_with_their_reason() {
    let (mut org, mut ada) = new_org(4);
    let (bob, add) = org.add_user(&mut ada, Profile::Standard, "bob");
    let mut fresh = OrgLog::new(org.org);
    assert!(fresh.ingest(vec![org.genesis.clone()]).is_clean());
    let good = add[0].clone();

    let mut bad_sig = good.clone();
    let n = bad_sig.len();
    bad_sig[n - 1] ^= 1;
    assert_eq!(
        only_rejection(&fresh.ingest(vec![bad_sig])),
        Rejection::BadSignature
    );

    let mut bad_body = good.clone();
    bad_body[40] ^= 0x10;
    let r = fresh.ingest(vec![bad_body]);
    assert!(r.admitted.is_empty() && r.rejected.len() == 1);

    assert_eq!(
        only_rejection(&fresh.ingest(vec![good[..50].to_vec()])).label(),
        "truncated"
    );
    assert_eq!(
        only_rejection(&fresh.ingest(vec![vec![]])),
        Rejection::Truncated
    );

    let mut v3 = good.clone();
    v3[0] = 0x03;
    assert_eq!(
        only_rejection(&fresh.ingest(vec![v3])),
        Rejection::UnknownVersion(3)
    );
    let mut v1 = good.clone();
    v1[0] = entry::ENTRY_V1;
    assert_eq!(
        only_rejection(&fresh.ingest(vec![v1])),
        Rejection::RetiredVersion(1)
    );

    let big = vec![1u8; entry::MAX_ENTRY_BYTES + 1];
    assert!(matches!(
        only_rejection(&fresh.ingest(vec![big])),
        Rejection::TooLarge { .. }
    ));

    // Trailing bytes inside the signed part, correctly signed: still refused.
    let body: EntryBody = fresh.get(&fresh.heads()[0]).unwrap().body().clone();
    let mut signed = vec![entry::ENTRY_V2];
    signed.extend_from_slice(&postcard::to_stdvec(&body).unwrap());
    signed.push(0);
    let sig = ada.keys.sign(entry::ENTRY_DOMAIN, &signed);
    signed.extend_from_slice(&sig);
    assert_eq!(
        only_rejection(&fresh.ingest(vec![signed])),
        Rejection::TrailingBytes
    );

    // Signed by a key outside the organization.
    let outsider = DeviceKeys::generate(&mut org.rng);
    let stranger = Writer {
        keys: &outsider,
        org_key: &org.key,
        clock: &mut Clock::default(),
    }
    .draft(&fresh, 9_000, Certificate::UserRevoked { user: bob.user });
    assert_eq!(
        only_rejection(&fresh.ingest(vec![stranger])),
        Rejection::UnknownAuthor {
            device: outsider.id()
        }
    );
    assert_eq!(fresh.len(), 1, "nothing but the genesis was stored");
    // The good entry still goes in afterwards.
    assert!(fresh.ingest(add).is_clean());
}

#[test]
fn entries_with_missing_parents_wait_then_are_admitted_or_refused() {
    let (mut org, mut ada) = new_org(5);
    let (mut bob, mut add) = org.add_user(&mut ada, Profile::Standard, "bob");
    org.add_own_device(&mut bob);
    add.push(all_bytes(&bob.log).pop().unwrap());
    sync(&mut ada, &mut bob);
    let mut fresh = OrgLog::new(org.org);
    // Children first: held, nothing admitted.
    let r = fresh.ingest(vec![add[1].clone(), add[0].clone()]);
    assert!(r.admitted.is_empty() && r.rejected.is_empty());
    assert_eq!(fresh.pending_len(), 2);
    assert_eq!(fresh.missing().len(), 1);
    // The genesis arrives: everything goes in, parents first.
    let r = fresh.ingest(vec![org.genesis.clone()]);
    assert_eq!(r.admitted.len(), 3);
    assert_eq!(fresh.pending_len(), 0);
    assert_eq!(fresh.state(), ada.log.state());
}

#[test]
fn a_held_entry_whose_parent_is_refused_is_refused_too() {
    let (mut org, mut ada) = new_org(11);
    let (mut bob, _) = org.add_user(&mut ada, Profile::Standard, "bob");
    let mut fresh = OrgLog::new(org.org);
    assert!(fresh.ingest(all_bytes(&bob.log)).is_clean());
    // Bob (not an admin) promotes himself, then revokes his own device on top of that entry.
    let bob_user = bob.user;
    let (p, r) = org.try_write(
        &mut bob,
        Certificate::ProfileChanged {
            user: bob_user,
            profile: Profile::Admin,
        },
    );
    assert!(!r.is_clean());
    // Make a child of the refused entry by hand (Bob's log does not have the parent).
    let parent_id = EntryId(*blake3::hash(&p).as_bytes());
    let child = entry::sign(
        &bob.keys,
        &EntryBody {
            org: org.org,
            parents: vec![parent_id],
            author: bob.keys.id(),
            time: Hlc(u64::MAX >> 8),
            cert: Certificate::DeviceRevoked {
                device: bob.keys.id(),
            },
        },
    );
    let child_id = EntryId(*blake3::hash(&child).as_bytes());
    let r = fresh.ingest(vec![child]);
    assert!(r.admitted.is_empty() && r.rejected.is_empty(), "held");
    assert_eq!(fresh.pending_len(), 1);
    let r = fresh.ingest(vec![p]);
    assert_eq!(
        r.rejected,
        vec![
            (
                parent_id,
                Rejection::NotAdmin {
                    device: bob.keys.id()
                }
            ),
            (child_id, Rejection::ParentRefused { parent: parent_id }),
        ]
    );
    assert_eq!(fresh.pending_len(), 0);
    assert_eq!(fresh.len(), 2, "genesis, bob's user; nothing else");
}

/// What a device writes on a past that holds its revocation does not count: admitted (a later
/// entry could void that revocation), dropped, and refused to the writer before it signs.
#[test]
fn revoked_device_writing_after_its_revocation_does_not_count() {
    let (mut org, mut ada) = new_org(6);
    let (bob, _) = org.add_user(&mut ada, Profile::Admin, "bob");
    let bob_id = bob.keys.id();
    let mut bob = bob;
    org.write(&mut ada, Certificate::DeviceRevoked { device: bob_id });
    sync(&mut ada, &mut bob);
    let cert = Certificate::UserRevoked { user: ada.user };
    assert_eq!(
        bob.log.may_write(&bob_id, &cert),
        Err(Rejection::AuthorRevoked { device: bob_id })
    );
    let (bytes, r) = org.try_write(&mut bob, cert);
    assert!(r.is_clean(), "{:?}", r.rejected);
    let id = EntryId(*blake3::hash(&bytes).as_bytes());
    assert!(bob.log.state().dropped.contains(&id));
    sync(&mut ada, &mut bob);
    assert!(ada.log.state().is_active(&ada.keys.id()));
    assert_eq!(ada.log.state(), bob.log.state());
}

#[test]
fn revocation_wins_over_what_the_device_wrote_offline_and_the_senior_wins_a_mutual_pair() {
    let (mut org, mut ada) = new_org(7);
    let (mut mallory, _) = org.add_user(&mut ada, Profile::Admin, "mallory");
    let (mut carol, _) = org.add_user(&mut ada, Profile::Standard, "carol");
    sync(&mut ada, &mut mallory);
    sync(&mut ada, &mut carol);
    let m_id = mallory.keys.id();
    // Mallory, offline, demotes Ada and adds an accomplice; Ada revokes Mallory meanwhile.
    let demote = org.write(
        &mut mallory,
        Certificate::ProfileChanged {
            user: ada.user,
            profile: Profile::Standard,
        },
    );
    let (_, accomplice) = org.add_user(&mut mallory, Profile::Admin, "acc");
    let revoke = org.write(&mut ada, Certificate::DeviceRevoked { device: m_id });
    // Carol hears of the revocation first, Ada of Mallory's entries later: same outcome.
    assert!(carol.log.ingest(vec![revoke.clone()]).is_clean());
    let mut late = vec![demote.clone()];
    late.extend(accomplice.clone());
    // Mallory's demotion of Ada and Ada's revocation of Mallory remove each other's right to
    // write them: a mutual pair, won by the senior author, Ada (docs/security.md, "Mutual
    // removals"). The accomplice, added concurrently with Mallory's revocation, is voided.
    let r = carol.log.ingest(late.clone());
    assert!(
        r.is_clean(),
        "valid in their causal past: admitted, then dropped"
    );
    assert!(ada.log.ingest(late).is_clean());
    for dev in [&mut ada, &mut carol] {
        let st = dev.log.state().clone();
        assert_eq!(st.users[&ada_user(&st)].profile, Profile::Admin);
        assert!(!st.is_active(&m_id));
        assert_eq!(st.users.len(), 3, "the accomplice is dropped");
        assert_eq!(st.dropped.len(), 2);
    }
    assert_eq!(ada.log.state(), carol.log.state());
}

fn ada_user(st: &OrgState) -> UserId {
    *st.users
        .iter()
        .find(|(_, u)| u.added_by == st.genesis.unwrap())
        .unwrap()
        .0
}

#[test]
fn building_on_an_entry_does_not_save_it_from_removal_wins() {
    let (mut org, mut ada) = new_org(8);
    let (mut bob, _) = org.add_user(&mut ada, Profile::Admin, "bob");
    let (mut carol, _) = org.add_user(&mut ada, Profile::Standard, "carol");
    sync(&mut ada, &mut bob);
    sync(&mut ada, &mut carol);
    // Bob (later revoked) promotes Carol; Carol's own device sees it and builds on it.
    let promote = org.write(
        &mut bob,
        Certificate::ProfileChanged {
            user: carol.user,
            profile: Profile::Admin,
        },
    );
    assert!(carol.log.ingest(vec![promote.clone()]).is_clean());
    let carol_dev2 = org.add_own_device(&mut carol);
    // Ada, not having seen any of it, revokes Bob.
    let revoke = org.write(
        &mut ada,
        Certificate::DeviceRevoked {
            device: bob.keys.id(),
        },
    );
    sync(&mut ada, &mut carol);
    assert!(carol.log.ingest(vec![revoke]).is_clean() || carol.log.len() == ada.log.len());
    let st = ada.log.state().clone();
    assert_eq!(
        st.users[&carol.user].profile,
        Profile::Standard,
        "concurrent with Bob's revocation: voided, whoever built on it"
    );
    let promote_id = EntryId(*blake3::hash(&promote).as_bytes());
    assert_eq!(st.dropped, vec![promote_id]);
    assert!(
        st.is_active(&carol_dev2.keys.id()),
        "Carol's own entry counts on its own merits"
    );
    assert_eq!(carol.log.state(), &st);
}

#[test]
fn two_admins_revoking_each_other_the_senior_wins_and_unordered_ones_both_go() {
    let (mut org, mut ada) = new_org(9);
    let (mut bob, _) = org.add_user(&mut ada, Profile::Admin, "bob");
    sync(&mut ada, &mut bob);
    let (a, b) = (ada.keys.id(), bob.keys.id());
    let st = revoke_each_other(&mut org, &mut ada, &mut bob);
    assert!(
        st.is_active(&a) && !st.is_active(&b),
        "ada enrolled bob: senior"
    );
    // Two admins enrolled concurrently (neither certificate an ancestor of the other): both go.
    let (mut org, mut ada) = new_org(19);
    let (sk, xk) = ada.keys.secrets();
    let mut ada2 = Dev {
        keys: DeviceKeys::from_secrets(&sk, &xk),
        user: ada.user,
        clock: Clock::default(),
        log: ada.log.clone(),
        secret: ada.secret.clone(),
    };
    let (mut carol, _) = org.add_user(&mut ada, Profile::Admin, "carol");
    let (mut dan, _) = org.add_user(&mut ada2, Profile::Admin, "dan");
    sync(&mut ada, &mut ada2);
    sync(&mut ada, &mut carol);
    sync(&mut ada, &mut dan);
    let (c, d) = (carol.keys.id(), dan.keys.id());
    let st = revoke_each_other(&mut org, &mut carol, &mut dan);
    assert!(!st.is_active(&c) && !st.is_active(&d));
}

/// `x` and `y` revoke each other's device concurrently, then sync; both see one state.
fn revoke_each_other(org: &mut Org, x: &mut Dev, y: &mut Dev) -> OrgState {
    let (xd, yd) = (x.keys.id(), y.keys.id());
    org.write(x, Certificate::DeviceRevoked { device: yd });
    org.write(y, Certificate::DeviceRevoked { device: xd });
    sync(x, y);
    assert_eq!(x.log.state(), y.log.state());
    x.log.state().clone()
}

#[test]
fn revoking_a_device_marks_the_user_key_for_rotation_until_a_sibling_rotates_it() {
    let (mut org, mut ada) = new_org(10);
    let (mut bob, _) = org.add_user(&mut ada, Profile::Standard, "bob");
    let mut bob_phone = org.add_own_device(&mut bob);
    sync(&mut ada, &mut bob);
    org.write(
        &mut bob,
        Certificate::DeviceRevoked {
            device: bob_phone.keys.id(),
        },
    );
    assert!(bob.log.state().users[&bob.user].key.needs_rotation);
    let (next, rot) = org.rotate_user_key(&mut bob, 1);
    let k = bob.log.state().users[&bob.user].key.clone();
    assert_eq!(
        (k.generation, k.needs_rotation, k.public),
        (1, false, next.public())
    );
    // Bob's laptop can open the new key and walk back to generation 0.
    let Certificate::UserKeyRotated(r) = bob
        .log
        .get(&EntryId(*blake3::hash(&rot).as_bytes()))
        .unwrap()
        .body()
        .cert
        .clone()
    else {
        panic!()
    };
    let opened = author::open_rotation(&org.org, &bob.keys, &r).unwrap();
    assert_eq!(opened.public(), next.public());
    let g0 = keys::unchain_prev(&bob.user, &opened, &r.prev).unwrap();
    assert_eq!(g0.public(), bob.secret.public());
    // The revoked phone cannot rotate or open anything, and a rotation to it is refused.
    assert!(author::open_rotation(&org.org, &bob_phone.keys, &r).is_err());
    sync(&mut bob, &mut bob_phone);
    let g2 = UserSecret::generate(2, &mut org.rng);
    let bad = author::rotation(
        &mut org.rng,
        &org.org,
        bob.user,
        &next,
        &g2,
        &[(bob_phone.keys.id(), bob_phone.keys.exchange_public())],
    )
    .unwrap();
    assert_eq!(
        bob.log.may_write(&bob.keys.id(), &bad),
        Err(Rejection::BadRecipient {
            device: bob_phone.keys.id()
        })
    );
    // Signed anyway, it is admitted (the phone's revocation could yet be voided) and does not
    // count: the key stays at generation 1.
    let (bytes, r) = org.try_write(&mut bob, bad);
    assert!(r.is_clean(), "{:?}", r.rejected);
    assert!(bob.log.state().dropped.contains(&id_of(&bytes)));
    assert_eq!(bob.log.state().users[&bob.user].key.generation, 1);
    // Ada (an admin, not Bob) may not rotate Bob's key: she must never learn it.
    let by_admin = author::rotation(&mut org.rng, &org.org, bob.user, &next, &g2, &[]).unwrap();
    let (_, r) = org.try_write(&mut ada, by_admin);
    assert!(matches!(only_rejection(&r), Rejection::NotOwner { .. }));
}

mod adversary;
mod attacks;
mod caps;
mod invitations;
mod org_keys;
mod props;
mod relays;
mod vectors;
mod voided;
