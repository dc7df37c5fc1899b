//! Fixtures shared by the fuzz targets (`fuzz_targets/`) and the seeding program
//! (`examples/seed.rs`): fixed keys, organization, token and claim, the same as the enrolment
//! tests' (`node/src/enroll/tests.rs`), so that the frozen vectors and the seeds are inputs the
//! targets' state machines accept as they are; and `split`, which cuts one fuzz input into parts.
//!
//! Invariant: nothing here decides what is valid; the targets call the crates' public decoders
//! and assert what they promise (round trips, refusals that change nothing).

use cloison_node::enroll::{Claim, InvitationSecret, NewUser, Token};
use cloison_node::trust::{DeviceKeys, OrgId};

/// The organization every fixture belongs to.
pub const ORG: OrgId = OrgId([7; 32]);

/// Device keys from a one-byte seed (as `enroll::tests::keys`).
pub fn keys(seed: u8) -> DeviceKeys {
    DeviceKeys::from_secrets(&[seed; 32], &[seed.wrapping_add(100); 32])
}

/// The greeter device (`keys(1)`), also the signer of signed-mode entries, envelopes, bundles.
pub fn greeter() -> DeviceKeys {
    keys(1)
}

/// The claimer device.
pub fn claimer() -> DeviceKeys {
    keys(2)
}

/// The invitation token of the greeting fixtures.
pub fn token() -> Token {
    Token {
        org: ORG,
        greeter: greeter().id(),
        secret: InvitationSecret::from_bytes([5; 16]),
        addrs: vec![
            "/ip4/127.0.0.1/tcp/4001".into(),
            "/ip4/10.0.0.2/tcp/4001".into(),
        ],
    }
}

/// The claimer's claim.
pub fn claim() -> Claim {
    let d = claimer();
    Claim {
        device: d.id(),
        exchange_key: d.exchange_public(),
        device_label: "bob-laptop".into(),
        user: Some(NewUser {
            name: "Bob".into(),
            user_key: [9; 32],
        }),
        pop: vec![7; 64],
    }
}

/// Cuts `data` into parts at each occurrence of the 4-byte separator `b"\xffCUT"` (at most
/// `max` parts; the rest stays in the last one), so that one fuzz input can carry a batch.
pub fn split(data: &[u8], max: usize) -> Vec<&[u8]> {
    const SEP: &[u8] = b"\xffCUT";
    let mut out = Vec::new();
    let mut rest = data;
    while out.len() + 1 < max {
        match rest.windows(SEP.len()).position(|w| w == SEP) {
            Some(i) => {
                out.push(&rest[..i]);
                rest = &rest[i + SEP.len()..];
            }
            None => break,
        }
    }
    out.push(rest);
    out
}

/// Joins parts with the separator [`split`] cuts at (for the seeds).
pub fn join(parts: &[&[u8]]) -> Vec<u8> {
    parts.join(&b"\xffCUT"[..])
}

/// The header of the fixture bundles (seeds and the `bundle_items` target).
pub fn bundle_header() -> cloison_node::bundle::Header {
    cloison_node::bundle::Header {
        org: ORG,
        creator: greeter().id(),
        created_ms: 1,
        for_receipt: None,
        known_heads: vec![[3; 32]],
    }
}

/// One signed item (an entry or an envelope) as received: `decode` then a batch of one through
/// `verify`. A refusal at either step names the id of the bytes (their BLAKE3, `raw` of the id
/// type), and so does what verifies; the verified item, if any.
pub fn decode_and_verify<U, T, I, E1, E2>(
    bytes: Vec<u8>,
    decode: impl FnOnce(Vec<u8>) -> Result<U, (I, E1)>,
    verify: impl FnOnce(Vec<U>) -> Vec<Result<T, (I, E2)>>,
    unverified_id: impl Fn(&U) -> I,
    verified_id: impl Fn(&T) -> I,
    raw: impl Fn(&I) -> [u8; 32],
) -> Option<T> {
    let id = *blake3::hash(&bytes).as_bytes();
    let u = match decode(bytes) {
        Err((got, _)) => {
            assert_eq!(raw(&got), id, "a refusal names the id of the bytes");
            return None;
        }
        Ok(u) => u,
    };
    assert_eq!(raw(&unverified_id(&u)), id);
    let mut v = verify(vec![u]);
    let r = v.pop().expect("one verdict per item");
    assert!(v.is_empty());
    match r {
        Ok(t) => {
            assert_eq!(raw(&verified_id(&t)), id);
            Some(t)
        }
        Err((got, _)) => {
            assert_eq!(raw(&got), id);
            None
        }
    }
}
