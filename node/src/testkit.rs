//! Deterministic organizations for tests, benchmarks and the simulator.
//!
//! [`Fixture`] creates an organization from a seed and certifies users and devices through the
//! same `Writer` and admission as real devices. Not for production: it keeps every member's
//! secrets in one place.
//!
//! Invariant: the same seed and the same calls give the same entries, byte for byte (Ed25519 is
//! deterministic and the RNG is seeded).

use rand::{SeedableRng, rngs::StdRng};

use crate::trust::author::{self, Newcomer, UserSecretPublic, Writer};
use crate::trust::{Certificate, Clock, DeviceKeys, OrgKey, OrgLog, Profile, UserId, UserSecret};

/// One member: a user and one of their devices.
pub struct Member {
    /// The device's keys.
    pub keys: DeviceKeys,
    /// The user.
    pub user: UserId,
    /// The user's key (generation 0).
    pub secret: UserSecret,
}

/// A new user with their first device, and the `UserAdded` certificate (carrying the device and
/// its proof of possession) that `w` signs for them. The caller drafts and ingests it where it
/// wants it.
pub fn newcomer<R: rand::CryptoRng + ?Sized>(
    rng: &mut R,
    w: &Writer<'_>,
    org: &crate::trust::OrgId,
    profile: Profile,
    name: &str,
    email: &str,
) -> (Member, Certificate) {
    let secret = UserSecret::generate(0, rng);
    let keys = DeviceKeys::generate(rng);
    let claimed = author::claim_first(&keys, org, &secret.public());
    let who = Newcomer {
        name,
        email,
        device_label: "laptop",
    };
    let cert = w
        .user_added(
            rng,
            org,
            profile,
            &UserSecretPublic(secret.public()),
            &claimed,
            &who,
        )
        .unwrap_or_else(|e| panic!("fixture certificate: {e}"));
    (
        Member {
            keys,
            user: claimed.first_user(org),
            secret,
        },
        cert,
    )
}

/// An organization under construction.
pub struct Fixture {
    /// The organization log, with every certificate so far.
    pub org: OrgLog,
    /// The organization key.
    pub org_key: OrgKey,
    /// The first admin's device.
    pub admin: Member,
    /// Members added since, in order.
    pub members: Vec<Member>,
    /// The admin's clock.
    pub clock: Clock,
    /// The seeded RNG.
    pub rng: StdRng,
    now: u64,
}

impl Fixture {
    /// A new organization whose admin is the only member.
    pub fn new(seed: u64) -> Fixture {
        let mut rng = StdRng::seed_from_u64(seed);
        let mut clock = Clock::default();
        let who = Newcomer {
            name: "Admin",
            email: "admin@example.org",
            device_label: "admin-laptop",
        };
        let n = author::create_org(&mut rng, 1_000, &mut clock, "Fixture", &who)
            .unwrap_or_else(|e| panic!("fixture org: {e}"));
        let mut org = OrgLog::new(n.org);
        org.ingest(vec![n.genesis]);
        Fixture {
            org,
            org_key: n.org_key,
            admin: Member {
                keys: n.device,
                user: n.user,
                secret: n.user_secret,
            },
            members: Vec::new(),
            clock,
            rng,
            now: 2_000,
        }
    }

    /// Adds a user with one device (certified by the admin); returns its index in `members`.
    pub fn add_user(&mut self, profile: Profile) -> usize {
        let i = self.members.len();
        self.add_user_named(
            profile,
            &format!("user {i}"),
            &format!("user{i}@example.org"),
        )
    }

    /// [`Fixture::add_user`] with a name and an e-mail.
    pub fn add_user_named(&mut self, profile: Profile, name: &str, email: &str) -> usize {
        let mut w = Writer {
            keys: &self.admin.keys,
            org_key: &self.org_key,
            clock: &mut self.clock,
        };
        let (member, cert) = newcomer(&mut self.rng, &w, &self.org.org(), profile, name, email);
        self.now += 1;
        let e = w.draft(&self.org, self.now, cert);
        let r = self.org.ingest(vec![e]);
        assert!(r.is_clean(), "fixture entry refused: {:?}", r.rejected);
        self.members.push(member);
        self.members.len() - 1
    }

    /// Adds a second device to member `i`, certified by the member's own device.
    pub fn add_device(&mut self, i: usize) -> DeviceKeys {
        let keys = DeviceKeys::generate(&mut self.rng);
        let org = self.org.org();
        let m = &self.members[i];
        let mut clock = Clock::default();
        let mut w = Writer {
            keys: &m.keys,
            org_key: &self.org_key,
            clock: &mut clock,
        };
        let claimed = author::claim_device(&keys, &org, &m.keys.id());
        let c = w
            .device_added(&mut self.rng, &org, m.user, &claimed, "phone")
            .unwrap_or_else(|e| panic!("fixture certificate: {e}"));
        self.now += 1;
        let e = w.draft(&self.org, self.now, c);
        let r = self.org.ingest(vec![e]);
        assert!(r.is_clean(), "fixture entry refused: {:?}", r.rejected);
        keys
    }

    /// The admin revokes `devices`, each revocation on the previous one (the first on the
    /// current heads), ingested in one batch: one recomputation of the state, not one each.
    pub fn revoke_devices(&mut self, devices: &[crate::trust::DeviceId]) {
        let mut parents = self.org.draft_parents(&self.admin.keys.id());
        self.clock.observe(self.org.max_time(&parents));
        let mut batch = Vec::with_capacity(devices.len());
        for d in devices {
            self.now += 1;
            let body = crate::trust::EntryBody {
                org: self.org.org(),
                parents,
                author: self.admin.keys.id(),
                time: self.clock.tick(self.now),
                cert: Certificate::DeviceRevoked { device: *d },
            };
            let e = crate::trust::entry::sign(&self.admin.keys, &body);
            parents = vec![crate::trust::EntryId(*blake3::hash(&e).as_bytes())];
            batch.push(e);
        }
        let r = self.org.ingest(batch);
        assert!(r.is_clean(), "fixture entry refused: {:?}", r.rejected);
    }

    /// Every entry of the log, parents first.
    pub fn entries(&self) -> Vec<Vec<u8>> {
        self.org.entries().map(|e| e.bytes().to_vec()).collect()
    }
}

/// Shuffles `v` in place (Fisher-Yates) with `rng`: delivery orders in the property tests.
pub fn shuffle<T>(v: &mut [T], rng: &mut StdRng) {
    for i in (1..v.len()).rev() {
        v.swap(i, rand::RngExt::random_range(rng, 0..=i));
    }
}
