//! Component tests of the invitations screen on ratatui's `TestBackend`: creating an
//! invitation, its token as text and QR code (insta snapshots), and the greeting's steps with
//! the code exchange, using the control API's real structures.

mod common;

use cloison_node::control::enrol::{ClaimerInfo, GreetStep, InvitationInfo, Invitee};
use cloison_node::control::{Request, Response};
use cloison_tui::event::Msg;
use cloison_tui::screens::invitations;
use common::{action, hex, k, poll, render, type_text};
use tuirealm::event::Key;

fn invitation(b: u8, email: Option<&str>, state: &str, token: Option<&str>) -> InvitationInfo {
    InvitationInfo {
        id: hex(b),
        kind: if email.is_some() { "user" } else { "device" }.into(),
        email: email.map(String::from),
        profile: email.map(|_| "standard".into()),
        created_ms: 1_795_874_400_000 + u64::from(b),
        expires_ms: 1_795_960_800_000,
        state: state.into(),
        token: token.map(String::from),
        recorded: true,
        recorded_by_user: Some("Alice".into()),
        recorded_by_device: Some(hex(0xd1)),
    }
}

#[test]
fn invitations_create_show_the_token_and_greet() {
    let mut s = invitations::Invitations::default();
    s.apply(&poll(
        Request::Invitations,
        Response::Invitations(vec![
            invitation(0xa1, Some("carol@acme.test"), "used", None),
            invitation(0xa2, None, "live", Some("cloison1-device-token")),
        ]),
    ));
    // Live first.
    assert_eq!(s.invitations[0].id, hex(0xa2));
    insta::assert_snapshot!("invitations", render(&mut s));

    // A user invitation: e-mail, then profile (standard, Right → admin).
    s.key(&k(Key::Char('u')));
    type_text(|e| s.key(e), "dave@acme.test");
    s.key(&k(Key::Enter));
    assert!(render(&mut s).contains("Invite dave@acme.test as:"));
    s.key(&k(Key::Right));
    let create = Request::InviteCreate {
        invitee: Invitee::User {
            email: "dave@acme.test".into(),
            profile: "admin".into(),
        },
        ttl_s: None,
    };
    assert_eq!(
        s.key(&k(Key::Enter)),
        Some(Msg::Call {
            label: "invite dave@acme.test as admin".into(),
            request: create.clone(),
        })
    );
    // Its answer opens the token, as text and as a QR code.
    let token = "cloison1:org=abab:peer=12D3KooW:secret=00112233445566778899aabbccddeeff";
    let mut created = invitation(0xa3, Some("dave@acme.test"), "live", Some(token));
    created.profile = Some("admin".into());
    assert_eq!(
        s.apply(&action(
            "invite dave@acme.test as admin",
            create,
            Ok(Response::Invitation(created.clone())),
        )),
        Some(Msg::Refresh)
    );
    let shown = render(&mut s);
    assert!(shown.contains(token), "{shown}");
    insta::assert_snapshot!("invitations_token", shown);
    // In 80×24 the code fits alone (c), drawn in half blocks.
    s.key(&k(Key::Char('c')));
    let shown = render(&mut s);
    assert!(shown.contains('▀') && shown.contains('▄'), "{shown}");
    assert!(!shown.contains(token), "{shown}");
    insta::assert_snapshot!("invitations_qr", shown);

    // Greet from the token view: wait, codes, confirm, done.
    let id = hex(0xa3);
    assert_eq!(
        s.key(&k(Key::Char('g'))),
        Some(Msg::Call {
            label: "greet on invitation a3a3a3a3a3a3".into(),
            request: Request::GreetWait {
                id: id.clone(),
                timeout_s: invitations::STEP_S
            },
        })
    );
    let step = |state: &str| GreetStep {
        id: id.clone(),
        state: state.into(),
        greeter_code: Some("7KQ2".into()),
        claimer_choices: vec!["A1B2".into(), "C3D4".into(), "E5F6".into(), "G7H8".into()],
        claimer: Some(ClaimerInfo {
            name: "Dave".into(),
            device_label: "dave-laptop".into(),
        }),
        reason: None,
        user: None,
        device: None,
    };
    let wait = Request::GreetWait {
        id: id.clone(),
        timeout_s: invitations::STEP_S,
    };
    // "waiting" asks again.
    assert_eq!(
        s.apply(&poll(
            wait.clone(),
            Response::Greeting(GreetStep {
                state: "waiting".into(),
                greeter_code: None,
                claimer_choices: vec![],
                claimer: None,
                ..step("waiting")
            })
        )),
        Some(Msg::Fetch(wait.clone()))
    );
    assert_eq!(
        s.apply(&poll(wait.clone(), Response::Greeting(step("codes")))),
        Some(Msg::Redraw)
    );
    let shown = render(&mut s);
    assert!(shown.contains("Read them your code:  7KQ2"), "{shown}");
    insta::assert_snapshot!("invitations_codes", shown);
    // Picking the third candidate.
    s.key(&k(Key::Down));
    s.key(&k(Key::Down));
    let confirm = Request::GreetConfirm {
        id: id.clone(),
        code: "E5F6".into(),
        timeout_s: invitations::STEP_S,
    };
    assert_eq!(
        s.key(&k(Key::Enter)),
        Some(Msg::Call {
            label: "confirm greeting a3a3a3a3a3a3 with code E5F6".into(),
            request: confirm.clone(),
        })
    );
    // "confirmed" waits for the claimer; "done" refreshes the lists.
    assert_eq!(
        s.apply(&action(
            "confirm",
            confirm,
            Ok(Response::Greeting(step("confirmed")))
        )),
        Some(Msg::Fetch(wait.clone()))
    );
    assert_eq!(
        s.apply(&poll(wait, Response::Greeting(step("done")))),
        Some(Msg::Refresh)
    );
    assert!(render(&mut s).contains("✓ Dave (device \"dave-laptop\") joined the organization."));
    s.key(&k(Key::Enter));
    assert!(s.dialog.is_none());
}

#[test]
fn a_typed_code_wins_over_the_choices_and_esc_aborts() {
    let mut s = invitations::Invitations::default();
    let id = hex(0xa4);
    s.greet(&id);
    let wait = Request::GreetWait {
        id: id.clone(),
        timeout_s: invitations::STEP_S,
    };
    s.apply(&poll(
        wait,
        Response::Greeting(GreetStep {
            id: id.clone(),
            state: "codes".into(),
            greeter_code: Some("7KQ2".into()),
            claimer_choices: vec!["A1B2".into(), "C3D4".into()],
            claimer: None,
            reason: None,
            user: None,
            device: None,
        }),
    ));
    type_text(|e| s.key(e), "zz9q");
    assert!(matches!(
        s.key(&k(Key::Enter)),
        Some(Msg::Call { request: Request::GreetConfirm { ref code, .. }, .. }) if code == "zz9q"
    ));
    // A device invitation's claimer has no name of its own.
    s.apply(&poll(
        Request::GreetWait {
            id: id.clone(),
            timeout_s: invitations::STEP_S,
        },
        Response::Greeting(GreetStep {
            id: id.clone(),
            state: "done".into(),
            greeter_code: None,
            claimer_choices: vec![],
            claimer: Some(ClaimerInfo {
                name: String::new(),
                device_label: "tablet".into(),
            }),
            reason: None,
            user: None,
            device: None,
        }),
    ));
    let shown = render(&mut s);
    assert!(
        shown.contains("✓ A new device \"tablet\" joined the organization."),
        "{shown}"
    );
    // A second greeting, aborted at the codes step.
    let mut s = invitations::Invitations::default();
    s.greet(&id);
    s.apply(&poll(
        Request::GreetWait {
            id: id.clone(),
            timeout_s: invitations::STEP_S,
        },
        Response::Greeting(GreetStep {
            id: id.clone(),
            state: "codes".into(),
            greeter_code: Some("7KQ2".into()),
            claimer_choices: vec![],
            claimer: None,
            reason: None,
            user: None,
            device: None,
        }),
    ));
    assert_eq!(
        s.key(&k(Key::Esc)),
        Some(Msg::Call {
            label: "abort greeting a4a4a4a4a4a4".into(),
            request: Request::GreetAbort { id },
        })
    );
}
