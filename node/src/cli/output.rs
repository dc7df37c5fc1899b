//! Tables and JSON for the listing commands. Tables are for people; `--json` prints one JSON
//! document for scripts.

use cloison_node::node::{DeviceInfo, OrgInfo, UserInfo};

fn short(id: &str) -> &str {
    &id[..12.min(id.len())]
}

/// The users table.
pub fn users_table(users: &[UserInfo]) -> String {
    let mut out = format!(
        "{:<12}  {:<20}  {:<28}  {:<8}  {:>7}  {}\n",
        "ID", "NAME", "E-MAIL", "PROFILE", "DEVICES", "STATUS"
    );
    for u in users {
        let status = if u.revoked {
            "revoked".to_owned()
        } else if u.key_needs_rotation {
            "active (key rotation pending)".to_owned()
        } else {
            "active".to_owned()
        };
        out += &format!(
            "{:<12}  {:<20}  {:<28}  {:<8}  {:>7}  {}\n",
            short(&u.id),
            u.name,
            u.email,
            u.profile,
            u.devices.len(),
            status
        );
    }
    out
}

/// The devices table.
pub fn devices_table(devices: &[DeviceInfo]) -> String {
    let mut out = format!(
        "{:<12}  {:<20}  {:<20}  {}\n",
        "ID", "LABEL", "USER", "STATUS"
    );
    for d in devices {
        let mut status = if d.revoked { "revoked" } else { "active" }.to_owned();
        if d.this_device {
            status += " (this device)";
        }
        out += &format!(
            "{:<12}  {:<20}  {:<20}  {}\n",
            short(&d.id),
            d.label,
            d.user_name,
            status
        );
    }
    out
}

/// `org show` as text.
pub fn org_text(o: &OrgInfo) -> String {
    format!(
        "organization  {}\nid            {}\nusers         {} active\ndevices       {} active\nlog           {} entries, {} head(s), {} dropped by revocation\nthis device   {}\n",
        o.name,
        o.id,
        o.active_users,
        o.active_devices,
        o.entries,
        o.heads.len(),
        o.dropped,
        o.this_device
    )
}
