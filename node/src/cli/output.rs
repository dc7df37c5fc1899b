//! Tables and JSON for the listing commands. Tables are for people; `--json` prints one JSON
//! document for scripts. Text output shows every string of a response through
//! `control::shown` (control characters escaped); JSON carries names as they are.

use anyhow::Result;
use cloison_node::control::{PeerInfo, Request, Response, StatusInfo, shown};
use cloison_node::node::{
    DeviceInfo, EntryInfo, FindReport, MemberInfo, OrgInfo, UserInfo, VersionRow, WorkspaceInfo,
};

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

/// Prints a response: one JSON document with `--json`, text otherwise.
pub fn print(req: &Request, r: &Response, json: bool) -> Result<()> {
    if json {
        let v = match r {
            Response::Org(o) => serde_json::to_value(o)?,
            Response::Users(u) => serde_json::json!({ "users": u }),
            Response::Devices(d) => serde_json::json!({ "devices": d }),
            Response::Workspace(w) => serde_json::to_value(w)?,
            Response::Workspaces(w) => serde_json::json!({ "workspaces": w }),
            Response::Members(m) => serde_json::json!({ "members": m }),
            Response::Put(p) => serde_json::to_value(p)?,
            Response::Got(p) => serde_json::to_value(p)?,
            Response::Entries(e) => serde_json::json!({ "entries": e }),
            Response::Found(f) => serde_json::to_value(f)?,
            Response::History(h) => serde_json::json!({ "versions": h }),
            Response::Restored(v) => serde_json::json!({ "version": v }),
            Response::Status(s) => serde_json::to_value(s)?,
            Response::Peers(p) => serde_json::json!({ "peers": p }),
            Response::Bundle(b) => serde_json::to_value(b)?,
            Response::Mirrors(m) => serde_json::json!({ "mirrors": m }),
            Response::Message(m) => serde_json::json!({ "message": m }),
            Response::Relays(r) => serde_json::json!({ "relays": r }),
            Response::Done => serde_json::json!({}),
            Response::Invitation(i) => serde_json::to_value(i)?,
            Response::Invitations(i) => serde_json::json!({ "invitations": i }),
            Response::Greeting(g) => serde_json::to_value(g)?,
        };
        println!("{}", serde_json::to_string_pretty(&v)?);
        return Ok(());
    }
    // Every name in a table is another member's choice: escaped once, here, for all of them.
    let r = &shown::response(r)?;
    let text = match r {
        Response::Org(o) => org_text(o),
        Response::Users(u) => users_table(u),
        Response::Devices(d) => devices_table(d),
        Response::Workspace(w) => format!("workspace {:?} ({})\n", w.name, w.id),
        Response::Workspaces(w) => workspaces_table(w),
        Response::Members(m) => members_table(m),
        Response::Put(p) => {
            let mut t = format!(
                "{} file(s) written, {} unchanged, {} folder(s) created, {} bytes, {} new block(s)\n",
                p.written, p.unchanged, p.folders, p.bytes, p.new_blocks
            );
            for s in &p.skipped {
                t += &format!("skipped {s}\n");
            }
            t
        }
        Response::Got(p) => format!("{} file(s), {} bytes\n", p.files, p.bytes),
        Response::Entries(e) => entries_table(
            e,
            matches!(
                req,
                Request::Ls {
                    recursive: true,
                    ..
                }
            ),
        ),
        Response::Found(f) => found_table(f),
        Response::History(h) => history_table(h),
        Response::Restored(v) => format!("restored; current version {}\n", short(v)),
        Response::Status(s) => status_text(s),
        Response::Peers(p) => peers_table(p),
        Response::Mirrors(m) => mirrors_text(m),
        Response::Bundle(b) => format!(
            "{} entries, {} envelopes, {} blocks{}; {} bytes; created by {} at {} (unix ms){}\n",
            b.entries,
            b.envelopes,
            b.blocks,
            if b.refused > 0 {
                format!(", {} refused", b.refused)
            } else {
                String::new()
            },
            b.bytes,
            short(&b.creator),
            b.created_ms,
            if b.for_receipt {
                ", made for a receipt"
            } else {
                ""
            }
        ),
        Response::Message(m) => format!("{m}\n"),
        Response::Relays(r) => relays_table(r),
        Response::Done => match req {
            Request::Mv { from, to, .. } => format!("moved {from} to {to}\n"),
            Request::Rm { path, .. } => format!("removed {path}\n"),
            _ => String::new(),
        },
        Response::Invitation(i) => super::enrol::invitation_text(i),
        Response::Invitations(i) => super::enrol::invitations_table(i),
        Response::Greeting(g) => format!("greeting {}: {}\n", short(&g.id), g.state),
    };
    print!("{text}");
    Ok(())
}

/// The workspaces table.
pub fn workspaces_table(ws: &[WorkspaceInfo]) -> String {
    let mut out = format!(
        "{:<12}  {:<24}  {:<11}  {:>7}  {:>7}  {:>9}\n",
        "ID", "NAME", "ROLE", "MEMBERS", "ENTRIES", "ENVELOPES"
    );
    for w in ws {
        out += &format!(
            "{:<12}  {:<24}  {:<11}  {:>7}  {:>7}  {:>9}\n",
            short(&w.id),
            w.name,
            w.role.as_deref().unwrap_or("-"),
            w.members,
            w.entries,
            w.envelopes
        );
    }
    out
}

/// The members table.
pub fn members_table(ms: &[MemberInfo]) -> String {
    let mut out = format!(
        "{:<12}  {:<20}  {:<28}  {:<11}  {}\n",
        "USER", "NAME", "E-MAIL", "ROLE", "KEY"
    );
    for m in ms {
        out += &format!(
            "{:<12}  {:<20}  {:<28}  {:<11}  {}\n",
            short(&m.user),
            m.name,
            m.email,
            m.role,
            if m.has_key { "current" } else { "pending" }
        );
    }
    out
}

/// A folder listing: names, or full paths (`ls -R`).
pub fn entries_table(es: &[EntryInfo], full_paths: bool) -> String {
    let mut out = String::new();
    for e in es {
        out += &entry_line(e, if full_paths { &e.path } else { &e.name });
    }
    out
}

/// One entry: kind, size, then what names it (a folder ends in `/`).
fn entry_line(e: &EntryInfo, shown: &str) -> String {
    let (kind, slash) = if e.kind == "folder" {
        ("d", "/")
    } else {
        ("-", "")
    };
    format!("{kind} {:>12}  {shown}{slash}\n", e.size)
}

/// What `find` found: `WORKSPACE:PATH` per line.
pub fn found_table(f: &FindReport) -> String {
    let mut out = String::new();
    for x in &f.found {
        out += &entry_line(&x.entry, &format!("{}:{}", x.workspace_name, x.entry.path));
    }
    if f.truncated {
        out += &format!(
            "(stopped at {} matches: narrow the pattern)\n",
            f.found.len()
        );
    }
    out
}

/// A file's versions.
pub fn history_table(vs: &[VersionRow]) -> String {
    let mut out = format!(
        "{:<12}  {:>14}  {:>12}  {:<16}  {:<16}  {}\n",
        "VERSION", "MODIFIED (ms)", "SIZE", "USER", "DEVICE", ""
    );
    for v in vs {
        out += &format!(
            "{:<12}  {:>14}  {:>12}  {:<16}  {:<16}  {}\n",
            short(&v.version),
            v.modified_ms,
            v.size,
            v.user,
            v.device,
            if v.head { "current" } else { "" }
        );
    }
    out
}

/// Status as text.
pub fn status_text(s: &StatusInfo) -> String {
    let mut out = format!(
        "device        {}\ndaemon        {}\npeers         {}\norg log       {} entries, {} waiting\nblocks        {} stored, {} pending\n",
        short(&s.device),
        if s.daemon { "running" } else { "not running" },
        s.peers,
        s.org_entries,
        s.org_waiting,
        s.blocks_stored,
        s.blocks_pending
    );
    for a in &s.listen {
        out += &format!("listening     {a}\n");
    }
    if let Some(b) = &s.bandwidth {
        let limit =
            |l: Option<u64>| l.map_or_else(|| "unlimited".to_owned(), |k| format!("max {k} KiB/s"));
        out += &format!(
            "send          {} KiB/s now, {}{}\nreceive       {} KiB/s now, {}\n",
            b.send_bytes_per_s / 1024,
            limit(b.max_send_kibps),
            match b.send_queued {
                0 => String::new(),
                q => format!(", {} KiB queued", q.div_ceil(1024)),
            },
            b.recv_bytes_per_s / 1024,
            limit(b.max_recv_kibps),
        );
    }
    for (why, n) in &s.refused {
        out += &format!("refused       {n} item(s): {why}\n");
    }
    for w in &s.workspaces {
        out += &format!(
            "workspace     {} ({}): {} envelopes, {} head(s), {} waiting, {} locked, {} peer(s), last sync {}\n",
            w.name,
            short(&w.id),
            w.envelopes,
            w.heads.len(),
            w.waiting,
            w.locked,
            w.peers,
            w.last_sync_ms
                .map_or_else(|| "-".to_owned(), |t| format!("{t} (unix ms)"))
        );
    }
    out
}

/// The peers table.
pub fn peers_table(ps: &[PeerInfo]) -> String {
    let mut out = format!(
        "{:<12}  {:<16}  {:<16}  {:<10}  {}\n",
        "DEVICE", "LABEL", "USER", "STATE", "REASON"
    );
    for p in ps {
        out += &format!(
            "{:<12}  {:<16}  {:<16}  {:<10}  {}\n",
            short(&p.device),
            p.label.as_deref().unwrap_or("-"),
            p.user.as_deref().unwrap_or("-"),
            p.state,
            p.reason.as_deref().unwrap_or("")
        );
        for r in &p.remembered {
            let failed = match r.failures {
                0 => String::new(),
                n => format!(" (not reached at the last {n} start(s))"),
            };
            out += &format!("{:<12}  remembered: {}{failed}\n", "", r.addr);
        }
    }
    out
}

/// `relay list` as text.
fn relays_table(r: &[cloison_node::control::RelayInfo]) -> String {
    if r.is_empty() {
        return "no relay authorized (add one with `cloison relay add MULTIADDR`)\n".into();
    }
    let mut t = String::new();
    for x in r {
        t += &match &x.revoked_by {
            Some(by) => format!("{}  revoked (entry {by}): never used again\n", x.peer_id),
            None => format!("{}  (entry {})\n", x.peer_id, x.authorized_by),
        };
        for a in &x.addrs {
            t += &format!("  {a}\n");
        }
    }
    t
}

/// `sync --list` as text.
fn mirrors_text(m: &[cloison_node::control::MirrorInfo]) -> String {
    if m.is_empty() {
        return "no mirrors\n".into();
    }
    let mut t = String::new();
    for x in m {
        let state = match (x.running, x.read_only) {
            (true, true) => "running, read-only",
            (true, false) => "running",
            (false, true) => "registered (no daemon), read-only",
            (false, false) => "registered (no daemon)",
        };
        let r = &x.totals;
        t += &format!(
            "{} -> {}  [{state}]\n  {} up, {} down, {} moved, {} deleted, {} conflict(s), {} pending\n",
            x.dir, x.name, r.uploaded, r.downloaded, r.moved, r.deleted, r.conflicts, r.pending
        );
        if !r.refused.is_empty() {
            t += &format!(
                "  {} local change(s) not uploaded (read-only), e.g. {}\n",
                r.refused.len(),
                r.refused[0]
            );
        }
        for s in &r.skipped {
            t += &format!("  skipped {s}\n");
        }
        for e in &r.errors {
            t += &format!("  error: {e}\n");
        }
    }
    t
}
