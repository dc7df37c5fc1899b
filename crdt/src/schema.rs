//! The schema inside automerge, and the raw per-entry cache read from it.
//!
//! Each shard is an automerge document whose root map holds flat keys, one per entry field:
//! - `<entry hex>/p` place: kind, parent, previous parent, time (see [`crate::codec`]);
//! - `<entry hex>/n` name and time;
//! - `<entry hex>/d` deletion: `Int(t)` with `t > 0` deleted at `t` (ms); `Int(x)` with `x <= 0`
//!   alive (each write stores a value unique to it, because automerge drops a put of the value a
//!   key already holds, and an edit must leave its own concurrent "alive" value);
//! - `<entry hex>/v/<version hex>` one immutable content version.
//!
//! The settings document (index K) holds `retention`, `title` (the workspace's display name:
//! `time | UTF-8`, 1..=255 bytes, no control characters; private like everything in the
//! document, which the node only ships sealed) and `shards`. For `retention` and `title` the
//! concurrent value with the greatest `(time, encoded bytes)` wins among those that decode;
//! the others are ignored. Flat keys keep every op on the root map, so a change's touched
//! entries can be read off its op keys, and a field's concurrent values are exactly automerge's
//! `get_all` at that key.
//!
//! Invariants: an entry lives in shard `shard_of(id, K)` forever; keys found in another shard,
//! unknown keys and undecodable values are ignored identically on every replica. The raw cache
//! holds every concurrent value of every field (nothing is resolved here), in `BTreeMap`s so no
//! iteration order depends on a random hasher.

use std::collections::BTreeMap;
use std::sync::Arc;

use automerge::{AutoCommit, ROOT, ReadDoc, ScalarValue, ScalarValueRef, Value, ValueRef};

use crate::codec::{self, Named, Place};
use crate::ids::{EntryId, VersionId};
use crate::model::{Retention, Version};

/// Settings-document key of the retention policy.
pub(crate) const KEY_RETENTION: &str = "retention";
/// Settings-document key of the workspace title.
pub(crate) const KEY_TITLE: &str = "title";
/// Settings-document key recording the shard count K.
pub(crate) const KEY_SHARDS: &str = "shards";

/// Which shard an entry lives in, for a workspace of `k` shards.
pub fn shard_of(id: EntryId, k: u16) -> u16 {
    u16::from_be_bytes([id.0[0], id.0[1]]) % k.max(1)
}

/// One field of an entry, as named by a document key.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Field {
    Place,
    Name,
    Deleted,
    Version(VersionId),
}

pub(crate) fn key(id: EntryId, field: Field) -> String {
    match field {
        Field::Place => format!("{}/p", id.to_hex()),
        Field::Name => format!("{}/n", id.to_hex()),
        Field::Deleted => format!("{}/d", id.to_hex()),
        Field::Version(v) => format!("{}/v/{}", id.to_hex(), v.to_hex()),
    }
}

pub(crate) fn parse_key(key: &str) -> Option<(EntryId, Field)> {
    let id = EntryId::from_hex(key.get(..32)?)?;
    if id.is_root() {
        return None;
    }
    let field = match key.get(32..)? {
        "/p" => Field::Place,
        "/n" => Field::Name,
        "/d" => Field::Deleted,
        rest => Field::Version(VersionId::from_hex(rest.strip_prefix("/v/")?)?),
    };
    Some((id, field))
}

/// Every concurrent value of every field of one entry.
#[derive(Clone, Debug, Default)]
pub(crate) struct RawEntry {
    pub places: Vec<Place>,
    pub names: Vec<Named>,
    pub deleted: Vec<i64>,
    pub versions: BTreeMap<VersionId, Arc<Version>>,
}

impl RawEntry {
    /// The winning place: the greatest `(time, kind, parent, previous)`.
    pub fn place(&self) -> Option<&Place> {
        self.places.iter().max()
    }
    /// The winning name: the greatest `(time, name)`.
    pub fn name(&self) -> Option<&Named> {
        self.names.iter().max()
    }
    /// Alive unless every concurrent deletion value says deleted: a write that a delete did not
    /// see (it stores an "alive" value concurrently) keeps the entry alive.
    pub fn self_alive(&self) -> bool {
        self.deleted.is_empty() || self.deleted.iter().any(|&d| d <= 0)
    }
    /// When it was deleted, if it is.
    pub fn deleted_at(&self) -> Option<i64> {
        if self.self_alive() {
            None
        } else {
            self.deleted.iter().copied().max()
        }
    }
    /// Versions no other version supersedes, best first (see [`version_order`]).
    pub fn heads(&self) -> Vec<&Arc<Version>> {
        let mut superseded = std::collections::BTreeSet::new();
        for v in self.versions.values() {
            for p in &v.preds {
                if *p != v.id {
                    superseded.insert(*p);
                }
            }
        }
        let mut heads: Vec<_> = self
            .versions
            .values()
            .filter(|v| !superseded.contains(&v.id))
            .collect();
        heads.sort_by(|a, b| version_order(b, a));
        heads
    }
    /// The current version and the losing concurrent heads (fast path for a single version).
    pub fn current_and_losers(&self) -> (Option<&Arc<Version>>, Vec<&Arc<Version>>) {
        if self.versions.len() <= 1 {
            return (self.versions.values().next(), Vec::new());
        }
        let mut heads = self.heads();
        let losers = heads.split_off(1.min(heads.len()));
        (heads.pop(), losers)
    }
    fn is_empty(&self) -> bool {
        self.places.is_empty()
            && self.names.is_empty()
            && self.deleted.is_empty()
            && self.versions.is_empty()
    }
}

/// The order that picks the current version among concurrent heads: latest modification time,
/// then greatest author device, then greatest version id. Total and replica-independent.
pub(crate) fn version_order(a: &Version, b: &Version) -> std::cmp::Ordering {
    (a.manifest.modified_ms, a.author.device, a.id).cmp(&(
        b.manifest.modified_ms,
        b.author.device,
        b.id,
    ))
}

/// The raw cache of every entry of every shard.
#[derive(Clone, Debug, Default)]
pub(crate) struct RawCache {
    pub entries: BTreeMap<EntryId, RawEntry>,
}

/// A stored value, borrowed from either of automerge's value types.
#[derive(Clone, Copy)]
enum Stored<'a> {
    Bytes(&'a [u8]),
    Int(i64),
    Other,
}

impl<'a> Stored<'a> {
    fn of_value(v: &'a Value<'_>) -> Self {
        match v {
            Value::Scalar(s) => match s.as_ref() {
                ScalarValue::Bytes(b) => Stored::Bytes(b),
                ScalarValue::Int(i) => Stored::Int(*i),
                _ => Stored::Other,
            },
            Value::Object(_) => Stored::Other,
        }
    }
    fn of_ref(v: &'a ValueRef<'_>) -> Self {
        match v {
            ValueRef::Scalar(ScalarValueRef::Bytes(b)) => Stored::Bytes(b),
            ValueRef::Scalar(ScalarValueRef::Int(i)) => Stored::Int(*i),
            _ => Stored::Other,
        }
    }
    fn bytes(self) -> Option<&'a [u8]> {
        match self {
            Stored::Bytes(b) => Some(b),
            _ => None,
        }
    }
    fn int(self) -> Option<i64> {
        match self {
            Stored::Int(i) => Some(i),
            _ => None,
        }
    }
}

impl RawCache {
    /// Re-reads one key of shard `shard` from its document into the cache.
    pub fn refresh_key(&mut self, doc: &AutoCommit, shard: u16, k: u16, key_str: &str) {
        let Some((id, field)) = parse_key(key_str) else {
            return;
        };
        if shard_of(id, k) != shard {
            return;
        }
        let values = doc.get_all(ROOT, key_str).unwrap_or_default();
        let values: Vec<Stored<'_>> = values.iter().map(|(v, _)| Stored::of_value(v)).collect();
        self.set_field(id, field, &values);
    }

    fn set_field(&mut self, id: EntryId, field: Field, values: &[Stored<'_>]) {
        let e = self.entries.entry(id).or_default();
        match field {
            Field::Place => {
                e.places = values
                    .iter()
                    .filter_map(|v| codec::decode_place(v.bytes()?))
                    .collect();
            }
            Field::Name => {
                e.names = values
                    .iter()
                    .filter_map(|v| codec::decode_name(v.bytes()?))
                    .collect();
            }
            Field::Deleted => {
                e.deleted = values.iter().filter_map(|v| v.int()).collect();
            }
            Field::Version(vid) => {
                // Versions are immutable; concurrent puts of one key (only promotions, which
                // write identical bytes) resolve to the smallest decodable encoding.
                let mut best: Option<Version> = None;
                let mut encs: Vec<&[u8]> = values.iter().filter_map(|v| v.bytes()).collect();
                encs.sort();
                for enc in encs {
                    if let Some(v) = codec::decode_version(vid, enc) {
                        best = Some(v);
                        break;
                    }
                }
                match best {
                    Some(v) => {
                        e.versions.insert(vid, Arc::new(v));
                    }
                    None => {
                        e.versions.remove(&vid);
                    }
                }
            }
        }
        if e.is_empty() {
            self.entries.remove(&id);
        }
    }

    /// Drops and re-reads every entry of shard `shard`.
    pub fn rebuild_shard(&mut self, doc: &AutoCommit, shard: u16, k: u16) {
        self.entries.retain(|id, _| shard_of(*id, k) != shard);
        for item in doc.map_range(ROOT, ..) {
            if item.conflict {
                self.refresh_key(doc, shard, k, &item.key);
                continue;
            }
            let Some((id, field)) = parse_key(&item.key) else {
                continue;
            };
            if shard_of(id, k) == shard {
                self.set_field(id, field, &[Stored::of_ref(&item.value)]);
            }
        }
    }
}

/// The retention policy stored in the settings document (greatest `(time, encoding)` wins).
pub(crate) fn read_retention(settings: &AutoCommit) -> Retention {
    read_setting(settings, KEY_RETENTION, codec::decode_retention).unwrap_or_default()
}

/// The workspace title stored in the settings document (greatest `(time, encoding)` wins).
pub(crate) fn read_title(settings: &AutoCommit) -> Option<String> {
    read_setting(settings, KEY_TITLE, codec::decode_title)
}

/// Among the concurrent values of a settings key, the decodable one with the greatest
/// `(time, encoded bytes)`.
fn read_setting<T>(
    settings: &AutoCommit,
    key: &str,
    decode: impl Fn(&[u8]) -> Option<(i64, T)>,
) -> Option<T> {
    let values = settings.get_all(ROOT, key).unwrap_or_default();
    values
        .iter()
        .filter_map(|(v, _)| Stored::of_value(v).bytes())
        .filter_map(|b| decode(b).map(|(t, x)| ((t, b), x)))
        .max_by(|a, b| a.0.cmp(&b.0))
        .map(|(_, x)| x)
}

/// The "alive" deletion value a content write stores: negative and unique to the version.
pub(crate) fn alive_marker(v: VersionId) -> i64 {
    let mut b = [0u8; 8];
    b.copy_from_slice(&v.0[..8]);
    -(i64::from_be_bytes(b) & (i64::MAX >> 1)) - 1
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_round_trip() {
        let id = EntryId([0xab; 16]);
        for f in [
            Field::Place,
            Field::Name,
            Field::Deleted,
            Field::Version(VersionId([7; 16])),
        ] {
            assert_eq!(parse_key(&key(id, f)), Some((id, f)));
        }
        assert_eq!(parse_key("retention"), None);
        assert_eq!(parse_key(KEY_TITLE), None);
        assert_eq!(parse_key(&format!("{}/x", id.to_hex())), None);
        assert_eq!(parse_key(&key(EntryId::ROOT, Field::Name)), None);
    }
}
