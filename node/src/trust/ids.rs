//! Identifiers and small value types of the trust core.
//!
//! Invariants: every id is a fixed-size byte array with a total order (so sets of them iterate in
//! the same order on every device); `Display` prints lowercase hex, `short()` the first 12 hex
//! digits for tables. Nothing here reads a clock: [`Clock`] takes wall time as an input.

use serde::{Deserialize, Serialize};
use std::fmt;

macro_rules! byte_id {
    ($(#[$doc:meta])* $name:ident, $len:expr) => {
        $(#[$doc])*
        #[derive(Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
        pub struct $name(pub [u8; $len]);

        impl $name {
            /// Lowercase hex of the first 6 bytes, for tables and logs.
            pub fn short(&self) -> String {
                hex::encode(&self.0[..6])
            }
            /// Parses the full lowercase or uppercase hex form.
            pub fn from_hex(s: &str) -> Option<Self> {
                let v = hex::decode(s).ok()?;
                Some(Self(v.try_into().ok()?))
            }
        }
        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&hex::encode(self.0))
            }
        }
        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}({})", stringify!($name), self.short())
            }
        }
    };
}

byte_id!(
    /// An organization: the verifying key of its destroyed root key, which signed the genesis entry.
    OrgId, 32
);
byte_id!(
    /// A person: derived from the organization and the key of the user's first device
    /// ([`UserId::derive`]), so that an id names one `UserAdded` by construction and cannot be
    /// claimed for another key.
    UserId, 16
);

impl UserId {
    /// The id of the user whose first device is `first_device` in organization `org`.
    pub fn derive(org: &OrgId, first_device: &DeviceId) -> UserId {
        let mut h = blake3::Hasher::new_derive_key("cloison/user-id/v1");
        h.update(&org.0);
        h.update(&first_device.0);
        let mut out = [0u8; 16];
        out.copy_from_slice(&h.finalize().as_bytes()[..16]);
        UserId(out)
    }
}
byte_id!(
    /// A device: its Ed25519 verifying key (also its libp2p identity).
    DeviceId, 32
);
byte_id!(
    /// An organization-log entry: BLAKE3 of its signed bytes, exactly as received.
    EntryId, 32
);

/// What a user may do in the organization.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Profile {
    /// Manages membership: adds users, changes profiles, revokes, authorizes relays.
    Admin,
    /// A regular member.
    Standard,
    /// A guest from outside the organization: capped at CONTRIBUTOR in workspaces.
    Outsider,
}

impl Profile {
    /// The lowercase name used by the CLI and JSON output.
    pub fn as_str(self) -> &'static str {
        match self {
            Profile::Admin => "admin",
            Profile::Standard => "standard",
            Profile::Outsider => "outsider",
        }
    }
}

impl fmt::Display for Profile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for Profile {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s.to_ascii_lowercase().as_str() {
            "admin" => Ok(Profile::Admin),
            "standard" => Ok(Profile::Standard),
            "outsider" => Ok(Profile::Outsider),
            other => Err(format!(
                "unknown profile {other:?} (admin, standard or outsider)"
            )),
        }
    }
}

/// How far ahead of the local wall clock an entry or envelope may be dated and still be admitted.
/// Anything later is held (not admitted, not stored) until the wall clock reaches it; the
/// verdict on an admitted item stays a pure function of the DAG. Timestamps order display and
/// history only; no security decision reads them.
pub const MAX_CLOCK_SKEW_MS: u64 = 10 * 60 * 1000;

/// A hybrid logical clock timestamp: 48-bit unix milliseconds, 16-bit counter, packed so that it
/// orders as an integer.
#[derive(Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Hlc(pub u64);

impl Hlc {
    /// The largest timestamp an entry may carry (year ~10889): leaves room for children.
    pub const MAX: Hlc = Hlc(((1u64 << 48) - 1) << 16);

    /// Unix milliseconds.
    pub fn millis(self) -> u64 {
        self.0 >> 16
    }
    /// Logical counter within one millisecond.
    pub fn counter(self) -> u16 {
        (self.0 & 0xffff) as u16
    }
}

impl fmt::Debug for Hlc {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Hlc({}.{})", self.millis(), self.counter())
    }
}

/// A hybrid logical clock. Sans-IO: the caller passes the wall time.
#[derive(Debug, Default, Clone)]
pub struct Clock {
    last: Hlc,
}

impl Clock {
    /// A timestamp strictly after every timestamp this clock issued or observed, and not before
    /// `now_ms` when the wall clock is ahead.
    pub fn tick(&mut self, now_ms: u64) -> Hlc {
        let wall = Hlc((now_ms.min((1 << 48) - 1)) << 16);
        self.last = if wall > self.last {
            wall
        } else {
            Hlc(self.last.0.saturating_add(1))
        };
        self.last
    }

    /// Takes note of a remote timestamp so that the next tick is after it.
    pub fn observe(&mut self, remote: Hlc) {
        if remote > self.last {
            self.last = remote;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clock_is_strictly_monotonic_even_when_the_wall_clock_steps_back() {
        let mut c = Clock::default();
        let a = c.tick(1_000);
        let b = c.tick(1_000);
        let d = c.tick(500);
        assert!(a < b && b < d);
        assert_eq!(a.millis(), 1_000);
        c.observe(Hlc(5_000 << 16));
        assert!(c.tick(1_000) > Hlc(5_000 << 16));
    }

    #[test]
    fn ids_round_trip_through_hex() {
        let d = DeviceId([7; 32]);
        assert_eq!(DeviceId::from_hex(&d.to_string()), Some(d));
        assert_eq!(DeviceId::from_hex("07"), None);
        assert_eq!("ADMIN".parse::<Profile>(), Ok(Profile::Admin));
    }
}
