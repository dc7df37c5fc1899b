//! Frozen vectors of the entry format (version 2): bytes, ids, the proof of possession, and
//! the refusal of the retired version 1.

use super::*;

/// The fixed author of the frozen entry vectors.
pub(super) fn vector_keys() -> DeviceKeys {
    DeviceKeys::from_secrets(&[7; 32], &[8; 32])
}

/// The body of a frozen entry vector: `cert` by [`vector_keys`] in a fixed organization, on a
/// fixed parent, at a fixed time (sign it with `entry::sign(&vector_keys(), &body)`).
pub(super) fn vector_body(cert: Certificate) -> EntryBody {
    EntryBody {
        org: OrgId([1; 32]),
        parents: vec![EntryId([2; 32])],
        author: vector_keys().id(),
        time: Hlc(0x0000_0190_0000_0001),
        cert,
    }
}

#[test]
fn frozen_entry_vector() {
    let keys = vector_keys();
    let body = vector_body(Certificate::DeviceRevoked {
        device: DeviceId([3; 32]),
    });
    let bytes = entry::sign(&keys, &body);
    let hex_bytes = hex::encode(&bytes);
    let frozen = frozen!("entry_v2.hex", &hex_bytes);
    assert_eq!(hex_bytes, frozen, "entry wire format changed");
    const FROZEN: &str = include_str!("../vectors/entry_v2.hex");
    let u = entry::decode(bytes).unwrap();
    assert_eq!(
        u.id().to_string(),
        hex::encode(blake3::hash(&hex::decode(FROZEN.trim()).unwrap()).as_bytes())
    );
    let e = entry::verify_batch(vec![u]).pop().unwrap().unwrap();
    assert_eq!(e.body(), &body);
}

#[test]
fn frozen_user_added_vector_with_its_proof_of_possession() {
    let admin = DeviceKeys::from_secrets(&[7; 32], &[8; 32]);
    let newcomer = DeviceKeys::from_secrets(&[9; 32], &[10; 32]);
    let org = OrgId([1; 32]);
    let claimed = author::claim_first(&newcomer, &org, &[11; 32]);
    let user = claimed.first_user(&org);
    let body = EntryBody {
        org,
        parents: vec![EntryId([2; 32])],
        author: admin.id(),
        time: Hlc(0x0000_0190_0000_0002),
        cert: Certificate::UserAdded(entry::UserAdded {
            user,
            profile: Profile::Standard,
            user_key: [11; 32],
            private: vec![5; 8],
            device: entry::DeviceAdded {
                user,
                device: claimed.device,
                exchange_key: claimed.exchange_key,
                private: vec![6; 8],
                pop: claimed.pop.clone(),
            },
        }),
    };
    let bytes = entry::sign(&admin, &body);
    let hex_bytes = hex::encode(&bytes);
    assert_eq!(hex_bytes, frozen!("user_added_v2.hex", &hex_bytes));
    assert!(body.check_shape(&org).is_ok());
    let e = entry::verify_batch(vec![entry::decode(bytes.clone()).unwrap()])
        .pop()
        .unwrap()
        .unwrap();
    assert_eq!(e.body(), &body);
    // The same certificate with a proof of possession by another key is refused.
    let mut forged = body.clone();
    if let Certificate::UserAdded(u) = &mut forged.cert {
        u.device.pop = pop::sign_pop(
            &admin,
            &org,
            pop::PopFor::First {
                user: &user,
                user_key: &[11; 32],
            },
        );
    }
    let r = entry::verify_batch(vec![entry::decode(entry::sign(&admin, &forged)).unwrap()]);
    assert_eq!(
        r[0].as_ref().unwrap_err().1,
        Rejection::BadProofOfPossession
    );
    // Version 1 bytes (the retired format) are refused with a clear reason.
    const V1: &str = include_str!("../vectors/entry_v1.hex");
    let old = hex::decode(V1.trim()).unwrap();
    assert_eq!(
        entry::decode(old).unwrap_err().1,
        Rejection::RetiredVersion(1)
    );
}
