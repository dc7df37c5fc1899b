//! The organization as people see it: users, devices and the organization decrypted with the
//! organization key for display, and name resolution (id, id prefix, e-mail, name, label).
//!
//! Invariant: read-only; private parts that do not open show as "(unreadable)" rather than
//! failing the listing.

use super::{Node, NodeError};
use crate::trust::author::{self, DevicePrivate, OrgPrivate, UserPrivate};
use crate::trust::{DeviceId, UserId};

/// A user, decrypted for display.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct UserInfo {
    /// Full id (hex).
    pub id: String,
    /// Name (or a placeholder when the private part does not open).
    pub name: String,
    /// E-mail.
    pub email: String,
    /// Profile.
    pub profile: String,
    /// Revoked.
    pub revoked: bool,
    /// Device ids (hex).
    pub devices: Vec<String>,
    /// Current user-key generation.
    pub key_generation: u32,
    /// Whether the user key must be rotated by one of the user's devices.
    pub key_needs_rotation: bool,
}

/// A device, decrypted for display.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct DeviceInfo {
    /// Full id (hex).
    pub id: String,
    /// Label.
    pub label: String,
    /// Owner's id (hex).
    pub user: String,
    /// Owner's name.
    pub user_name: String,
    /// Revoked.
    pub revoked: bool,
    /// This is the device running the command.
    pub this_device: bool,
}

/// The organization, for display.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct OrgInfo {
    /// Org id (hex).
    pub id: String,
    /// Name.
    pub name: String,
    /// Entries in the log.
    pub entries: usize,
    /// Heads (hex).
    pub heads: Vec<String>,
    /// Active users.
    pub active_users: usize,
    /// Active devices.
    pub active_devices: usize,
    /// Entries dropped by revocation wins.
    pub dropped: usize,
    /// This device's id.
    pub this_device: String,
    /// This device's user id.
    pub this_user: String,
}

impl Node {
    /// The organization, decrypted.
    pub fn org_info(&mut self) -> OrgInfo {
        let org = self.org_id();
        let key = self.org_ring();
        let me = self.device_id();
        let user = self.user_id();
        let heads = self.log().heads().iter().map(ToString::to_string).collect();
        let entries = self.log().len();
        let st = self.log().state();
        let name = author::open_private::<OrgPrivate>(
            &key,
            &org,
            author::PRIVATE_ORG,
            &org.0,
            &st.org_private,
        )
        .map_or_else(|_| "(unreadable)".to_owned(), |p| p.name);
        OrgInfo {
            id: org.to_string(),
            name,
            entries,
            heads,
            active_users: st.users.values().filter(|u| u.revoked_by.is_none()).count(),
            active_devices: st
                .devices
                .values()
                .filter(|d| d.revoked_by.is_none())
                .count(),
            dropped: st.dropped.len(),
            this_device: me.to_string(),
            this_user: user.to_string(),
        }
    }

    /// Every user, decrypted, sorted by name then id.
    pub fn users(&mut self) -> Vec<UserInfo> {
        let org = self.org_id();
        let key = self.org_ring();
        let st = self.log().state();
        let mut out: Vec<UserInfo> = st
            .users
            .iter()
            .map(|(id, u)| {
                let p = author::open_private::<UserPrivate>(
                    &key,
                    &org,
                    author::PRIVATE_USER,
                    &id.0,
                    &u.private,
                )
                .unwrap_or_else(|_| UserPrivate {
                    name: "(unreadable)".into(),
                    email: String::new(),
                });
                UserInfo {
                    id: id.to_string(),
                    name: p.name,
                    email: p.email,
                    profile: u.profile.as_str().to_owned(),
                    revoked: u.revoked_by.is_some(),
                    devices: u.devices.iter().map(ToString::to_string).collect(),
                    key_generation: u.key.generation,
                    key_needs_rotation: u.key.needs_rotation,
                }
            })
            .collect();
        out.sort_by(|a, b| (&a.name, &a.id).cmp(&(&b.name, &b.id)));
        out
    }

    /// Every device, decrypted, sorted by owner name, label, id.
    pub fn devices(&mut self) -> Vec<DeviceInfo> {
        let users = self.users();
        let org = self.org_id();
        let key = self.org_ring();
        let me = self.device_id();
        let st = self.log().state();
        let mut out: Vec<DeviceInfo> = st
            .devices
            .iter()
            .map(|(id, d)| {
                let label = author::open_private::<DevicePrivate>(
                    &key,
                    &org,
                    author::PRIVATE_DEVICE,
                    &id.0,
                    &d.private,
                )
                .map_or_else(|_| "(unreadable)".to_owned(), |p| p.label);
                let user = d.user.to_string();
                let user_name = users
                    .iter()
                    .find(|u| u.id == user)
                    .map(|u| u.name.clone())
                    .unwrap_or_default();
                DeviceInfo {
                    id: id.to_string(),
                    label,
                    user,
                    user_name,
                    revoked: d.revoked_by.is_some(),
                    this_device: *id == me,
                }
            })
            .collect();
        out.sort_by(|a, b| (&a.user_name, &a.label, &a.id).cmp(&(&b.user_name, &b.label, &b.id)));
        out
    }

    /// Finds a user by full id, id prefix (4+ hex digits), e-mail or name (case-insensitive).
    pub fn find_user(&mut self, query: &str) -> Result<UserId, NodeError> {
        let q = query.trim().to_lowercase();
        let users = self.users();
        let hits: Vec<&UserInfo> = users
            .iter()
            .filter(|u| {
                u.id == q
                    || (q.len() >= 4 && u.id.starts_with(&q))
                    || u.email.to_lowercase() == q
                    || u.name.to_lowercase() == q
            })
            .collect();
        let id = pick(
            "user",
            query,
            &hits.iter().map(|u| u.id.as_str()).collect::<Vec<_>>(),
        )?;
        UserId::from_hex(&id).ok_or_else(|| NodeError::NotFound {
            what: "user",
            query: query.to_owned(),
        })
    }

    /// Finds a device by full id, id prefix (4+ hex digits) or label (case-insensitive).
    pub fn find_device(&mut self, query: &str) -> Result<DeviceId, NodeError> {
        let q = query.trim().to_lowercase();
        let devices = self.devices();
        let hits: Vec<&DeviceInfo> = devices
            .iter()
            .filter(|d| {
                d.id == q || (q.len() >= 4 && d.id.starts_with(&q)) || d.label.to_lowercase() == q
            })
            .collect();
        let id = pick(
            "device",
            query,
            &hits.iter().map(|d| d.id.as_str()).collect::<Vec<_>>(),
        )?;
        DeviceId::from_hex(&id).ok_or_else(|| NodeError::NotFound {
            what: "device",
            query: query.to_owned(),
        })
    }
}

pub(super) fn pick(what: &'static str, query: &str, hits: &[&str]) -> Result<String, NodeError> {
    match hits {
        [] => Err(NodeError::NotFound {
            what,
            query: query.to_owned(),
        }),
        [one] => Ok((*one).to_owned()),
        many => Err(NodeError::Ambiguous {
            what,
            query: query.to_owned(),
            candidates: many
                .iter()
                .map(|h| &h[..12.min(h.len())])
                .collect::<Vec<_>>()
                .join(", "),
        }),
    }
}
