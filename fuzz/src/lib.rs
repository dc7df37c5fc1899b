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
