//! Component tests of every screen on ratatui's `TestBackend` (through tuirealm's
//! `render_to_string`), with the control API's real data structures: what each screen shows
//! (insta snapshots, text only) and which requests its keys produce.

mod common;

use std::path::PathBuf;

use cloison_node::control::{PeerInfo, Request, Response, StatusInfo};
use cloison_node::node::{BundleReport, DeviceInfo, MemberInfo, OrgInfo, UserInfo, WorkspaceInfo};
use cloison_tui::event::{Msg, Tab, UiEvent};
use cloison_tui::screens::{bundles, log, overview, peers, users, workspaces};
use common::{action, hex, k, poll, render, type_text};
use tuirealm::event::Key;

fn org() -> OrgInfo {
    OrgInfo {
        id: hex(0xab),
        name: "Acme".into(),
        entries: 7,
        heads: vec![hex(0x11)],
        active_users: 2,
        active_devices: 3,
        dropped: 0,
        this_device: hex(0xd1),
        this_user: hex(0x01),
    }
}

fn user(b: u8, name: &str, profile: &str, devices: Vec<String>, revoked: bool) -> UserInfo {
    UserInfo {
        id: hex(b),
        name: name.into(),
        email: format!("{}@acme.test", name.to_lowercase()),
        profile: profile.into(),
        revoked,
        devices,
        key_generation: 1,
        key_needs_rotation: false,
    }
}

fn team() -> Vec<UserInfo> {
    vec![
        user(0x01, "Alice", "admin", vec![hex(0xd1), hex(0xd2)], false),
        user(0x02, "Bob", "standard", vec![hex(0xd3)], false),
        user(0x03, "Mallory", "outsider", vec![], true),
    ]
}

fn device(b: u8, label: &str, owner: u8, name: &str, this: bool) -> DeviceInfo {
    DeviceInfo {
        id: hex(b),
        label: label.into(),
        user: hex(owner),
        user_name: name.into(),
        revoked: false,
        this_device: this,
    }
}

fn devices() -> Vec<DeviceInfo> {
    vec![
        device(0xd1, "laptop", 0x01, "Alice", true),
        device(0xd2, "phone", 0x01, "Alice", false),
        device(0xd3, "desktop", 0x02, "Bob", false),
    ]
}

fn ws(b: u8, name: &str, role: Option<&str>, members: usize) -> WorkspaceInfo {
    WorkspaceInfo {
        id: hex(b),
        name: name.into(),
        role: role.map(String::from),
        members,
        envelopes: 12,
        heads: vec![hex(0x22)],
        waiting: 0,
        locked: 0,
        entries: 4,
        epochs: 1,
        last_sync_ms: Some(1_795_874_461_000),
        peers: 1,
    }
}

fn status() -> StatusInfo {
    StatusInfo {
        device: hex(0xd1),
        daemon: true,
        listen: vec!["/ip4/127.0.0.1/tcp/4001/p2p/12D3KooWExample".into()],
        peers: 1,
        org_entries: 7,
        org_waiting: 0,
        blocks_pending: 2,
        blocks_stored: 40,
        workspaces: vec![
            ws(0x51, "Projects", Some("owner"), 2),
            ws(0x52, "Design", Some("reader"), 3),
        ],
        bytes_sent: 123_456,
        bytes_received: 7_890_123,
        envelopes: 30,
        refused: Default::default(),
        bandwidth: None,
    }
}

#[test]
fn overview_shows_the_organization_and_the_device() {
    let mut s = overview::Overview::default();
    s.apply(&poll(Request::OrgShow, Response::Org(org())));
    s.apply(&poll(Request::Status, Response::Status(status())));
    s.apply(&poll(Request::Users, Response::Users(team())));
    s.apply(&poll(Request::Devices, Response::Devices(devices())));
    let out = render(&mut s);
    assert!(out.contains("Alice <alice@acme.test>, admin"));
    assert!(out.contains("laptop (d1d1d1d1d1d1)"));
    insta::assert_snapshot!("overview", out);
}

#[test]
fn overview_says_how_to_start_a_missing_daemon() {
    let mut s = overview::Overview::default();
    s.apply(&UiEvent::Offline(cloison_tui::worker::offline_text(
        std::path::Path::new("/home/al/.cloison"),
    )));
    let out = render(&mut s);
    assert!(out.contains("Not connected"));
    assert!(out.contains("cloison run --home /home/al/.cloison"));
    insta::assert_snapshot!("overview_offline", out);
}

#[test]
fn users_revoke_a_device_or_a_user_after_confirmation() {
    let mut s = users::Users::default();
    s.apply(&poll(Request::Users, Response::Users(team())));
    s.apply(&poll(Request::Devices, Response::Devices(devices())));
    insta::assert_snapshot!("users", render(&mut s));

    // A device: Right to the devices pane, Down to "phone", x, then n cancels and y confirms.
    s.key(&k(Key::Right));
    s.key(&k(Key::Down));
    assert_eq!(s.key(&k(Key::Char('x'))), Some(Msg::Redraw));
    let shown = render(&mut s);
    assert!(shown.contains("Revoke device phone of Alice?"), "{shown}");
    insta::assert_snapshot!("users_confirm", shown);
    assert_eq!(s.key(&k(Key::Char('n'))), Some(Msg::Redraw));
    assert!(s.confirm.is_none());
    s.key(&k(Key::Char('x')));
    assert_eq!(
        s.key(&k(Key::Char('y'))),
        Some(Msg::Call {
            label: "revoke device phone".into(),
            request: Request::RevokeDevice { query: hex(0xd2) },
        })
    );

    // A user: back to the users pane, Bob, x, y.
    s.key(&k(Key::Left));
    s.key(&k(Key::Down));
    s.key(&k(Key::Char('x')));
    assert_eq!(
        s.key(&k(Key::Enter)),
        Some(Msg::Call {
            label: "revoke user Bob".into(),
            request: Request::RevokeUser { query: hex(0x02) },
        })
    );
    // A revoked user cannot be revoked again.
    s.key(&k(Key::Down));
    s.key(&k(Key::Char('x')));
    assert!(s.confirm.is_none());
}

fn members() -> Vec<MemberInfo> {
    vec![
        MemberInfo {
            user: hex(0x01),
            name: "Alice".into(),
            email: "alice@acme.test".into(),
            role: "owner".into(),
            has_key: true,
        },
        MemberInfo {
            user: hex(0x02),
            name: "Bob".into(),
            email: "bob@acme.test".into(),
            role: "reader".into(),
            has_key: false,
        },
    ]
}

#[test]
fn workspaces_create_share_change_role_and_unshare() {
    let mut s = workspaces::Workspaces::default();
    s.apply(&poll(Request::OrgShow, Response::Org(org())));
    s.apply(&poll(Request::Users, Response::Users(team())));
    let fetch = s.apply(&poll(
        Request::WorkspaceList,
        Response::Workspaces(vec![
            ws(0x52, "Projects", Some("owner"), 2),
            ws(0x51, "Design", Some("owner"), 1),
        ]),
    ));
    // Sorted by name: Design first; its members are fetched.
    assert_eq!(
        fetch,
        Some(Msg::Fetch(Request::WorkspaceMembers { ws: hex(0x51) }))
    );
    assert_eq!(
        s.key(&k(Key::Down)),
        Some(Msg::Fetch(Request::WorkspaceMembers { ws: hex(0x52) }))
    );
    // Until its members are known, sharing fetches them, and opens when they arrive.
    assert_eq!(
        s.key(&k(Key::Char('s'))),
        Some(Msg::Fetch(Request::WorkspaceMembers { ws: hex(0x52) }))
    );
    assert!(s.dialog.is_none());
    s.apply(&poll(
        Request::WorkspaceMembers { ws: hex(0x52) },
        Response::Members(members()),
    ));
    assert!(s.dialog.is_some());
    s.key(&k(Key::Esc));
    insta::assert_snapshot!("workspaces", render(&mut s));

    // Create.
    s.key(&k(Key::Char('n')));
    type_text(|e| s.key(e), "Finance");
    assert!(render(&mut s).contains("Finance"));
    assert_eq!(
        s.key(&k(Key::Enter)),
        Some(Msg::Call {
            label: "create workspace Finance".into(),
            request: Request::WorkspaceCreate {
                name: "Finance".into()
            },
        })
    );

    // Share: only active non-members are offered (not Alice, Bob, nor revoked Mallory).
    s.key(&k(Key::Char('s')));
    let shown = render(&mut s);
    assert!(
        shown.contains("every active user is already a member"),
        "{shown}"
    );
    s.key(&k(Key::Esc));
    // Nor ourselves (Alice) when she is not listed as a member.
    s.members.clear();
    s.key(&k(Key::Char('s')));
    assert!(render(&mut s).contains("Bob <bob@acme.test>"));
    assert!(!render(&mut s).contains("Alice <alice@acme.test>"));
    s.key(&k(Key::Esc));
    s.key(&k(Key::Char('s')));
    let shown = render(&mut s);
    assert!(shown.contains("Bob <bob@acme.test>"), "{shown}");
    insta::assert_snapshot!("workspaces_share", shown);
    s.key(&k(Key::Right));
    assert_eq!(
        s.key(&k(Key::Enter)),
        Some(Msg::Call {
            label: "share Projects with Bob as manager".into(),
            request: Request::WorkspaceShare {
                ws: hex(0x52),
                user: hex(0x02),
                role: "manager".into()
            },
        })
    );

    // Change Bob's role: members pane, Bob, c, from reader one step up.
    s.members = members();
    s.key(&k(Key::Right));
    s.key(&k(Key::Down));
    s.key(&k(Key::Char('c')));
    assert!(render(&mut s).contains("< reader >"));
    s.key(&k(Key::Right));
    assert_eq!(
        s.key(&k(Key::Enter)),
        Some(Msg::Call {
            label: "set Bob's role in Projects to contributor".into(),
            request: Request::WorkspaceShare {
                ws: hex(0x52),
                user: hex(0x02),
                role: "contributor".into()
            },
        })
    );

    // Unshare Bob, confirmed.
    s.key(&k(Key::Char('u')));
    assert!(render(&mut s).contains("Remove Bob <bob@acme.test> from Projects?"));
    assert_eq!(
        s.key(&k(Key::Char('y'))),
        Some(Msg::Call {
            label: "unshare Projects from Bob".into(),
            request: Request::WorkspaceUnshare {
                ws: hex(0x52),
                user: hex(0x02)
            },
        })
    );
}

#[test]
fn peers_show_connected_and_refused_peers_and_sync() {
    let mut s = peers::Peers::default();
    s.apply(&poll(Request::Status, Response::Status(status())));
    s.apply(&poll(
        Request::Peers,
        Response::Peers(vec![
            PeerInfo {
                device: hex(0xd3),
                label: Some("desktop".into()),
                user: Some("Bob".into()),
                state: "connected".into(),
                reason: None,
                since_ms: 1_795_874_400_000,
                remembered: Vec::new(),
            },
            PeerInfo {
                device: hex(0xee),
                label: None,
                user: None,
                state: "refused".into(),
                reason: Some("not a device of this organization".into()),
                since_ms: 1_795_874_401_000,
                remembered: Vec::new(),
            },
        ]),
    ));
    assert_eq!(s.refreshes, 1);
    let out = render(&mut s);
    assert!(out.contains("1 connected, 1 refused"));
    assert!(out.contains("2 pending"));
    insta::assert_snapshot!("peers", out);
}

#[test]
fn bundles_export_with_filters_and_show_the_report() {
    let mut s = bundles::Bundles::new(PathBuf::from("/work/site"));
    // Without a file, nothing is sent and the report says why.
    assert_eq!(s.key(&k(Key::Char('e'))), Some(Msg::Redraw));
    assert!(render(&mut s).contains("fill in the field first"));
    s.key(&k(Key::Enter));
    type_text(|e| s.key(e), "usb/site-c.bundle");
    s.key(&k(Key::Enter));
    s.key(&k(Key::Down));
    s.key(&k(Key::Enter));
    type_text(|e| s.key(e), "Projects, Design");
    s.key(&k(Key::Enter));
    s.key(&k(Key::Down));
    s.key(&k(Key::Enter));
    type_text(|e| s.key(e), "/media/usb/receipt");
    s.key(&k(Key::Enter));
    let request = Request::BundleExport {
        out: PathBuf::from("/work/site/usb/site-c.bundle"),
        workspaces: vec!["Projects".into(), "Design".into()],
        receipt: Some(PathBuf::from("/media/usb/receipt")),
    };
    assert_eq!(
        s.key(&k(Key::Char('e'))),
        Some(Msg::Call {
            label: "bundle export to /work/site/usb/site-c.bundle".into(),
            request: request.clone(),
        })
    );
    // While it runs, a second action is not sent.
    assert_eq!(s.key(&k(Key::Char('i'))), None);
    s.apply(&UiEvent::Progress(cloison_node::node::Progress {
        bytes: 512,
        total_bytes: 1024,
        files: 0,
        total_files: 0,
    }));
    assert!(render(&mut s).contains("512 B / 1.0 KiB"));
    s.apply(&action(
        "bundle export to /work/site/usb/site-c.bundle",
        request,
        Ok(Response::Bundle(BundleReport {
            entries: 3,
            envelopes: 20,
            blocks: 41,
            refused: 0,
            bytes: 5_000_000,
            creator: hex(0xd1),
            created_ms: 1_795_874_400_000,
            for_receipt: true,
        })),
    ));
    assert!(s.busy.is_none());
    insta::assert_snapshot!("bundles", render(&mut s));

    // Import and inspect use the same file; an error is shown.
    assert!(matches!(
        s.key(&k(Key::Char('i'))),
        Some(Msg::Call {
            request: Request::BundleImport { .. },
            ..
        })
    ));
    s.apply(&action(
        "bundle import of /work/site/usb/site-c.bundle",
        Request::BundleImport {
            file: PathBuf::from("/work/site/usb/site-c.bundle"),
        },
        Err("bundle refused: truncated".into()),
    ));
    assert!(render(&mut s).contains("bundle refused: truncated"));
    assert!(matches!(
        s.key(&k(Key::Char('v'))),
        Some(Msg::Call {
            request: Request::BundleInspect { .. },
            ..
        })
    ));
}

#[test]
fn the_log_records_actions_errors_and_connection_changes_once() {
    let mut s = log::Log::default();
    let t = 1_795_874_400_000;
    s.record(t, &poll(Request::Status, Response::Status(status())));
    s.record(t, &poll(Request::Status, Response::Status(status())));
    s.record(
        t + 1000,
        &UiEvent::Started("create workspace Finance".into()),
    );
    s.record(
        t + 2000,
        &action(
            "create workspace Finance",
            Request::WorkspaceCreate {
                name: "Finance".into(),
            },
            Ok(Response::Workspace(ws(0x53, "Finance", Some("owner"), 1))),
        ),
    );
    s.record(
        t + 3000,
        &action(
            "revoke user Bob",
            Request::RevokeUser { query: hex(2) },
            Err("forbidden: only admins revoke users".into()),
        ),
    );
    s.record(t + 4000, &UiEvent::Offline("No daemon answers.".into()));
    s.record(t + 5000, &UiEvent::Offline("No daemon answers.".into()));
    assert_eq!(s.lines.len(), 5);
    insta::assert_snapshot!("log", render(&mut s));
}

#[test]
fn every_tab_has_a_title() {
    for t in Tab::ALL {
        assert!(!t.title().is_empty());
        assert_eq!(Tab::at(t.index()), t);
    }
}
