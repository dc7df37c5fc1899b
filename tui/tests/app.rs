//! The whole UI on ratatui's `TestBackend` (80×24): tab switching, help bars, worker events
//! reaching hidden screens through tuirealm subscriptions, and a real worker that finds no
//! daemon and says how to start one.

use std::sync::mpsc;
use std::time::{Duration, Instant};

use cloison_node::control::{Request, Response};
use cloison_node::node::UserInfo;
use cloison_tui::app::{Ui, key};
use cloison_tui::event::{Origin, Reply, Tab, UiEvent};
use cloison_tui::worker::{ChannelPort, Worker};
use tuirealm::event::{Event, Key};
use tuirealm::ratatui::layout::Size;
use tuirealm::terminal::{TerminalAdapter, TestEventListener, TestTerminalAdapter};
use tuirealm::testing::buffer_to_string;

type Keys = mpsc::Sender<Event<UiEvent>>;

fn ui(worker: Option<Worker>, events: mpsc::Receiver<UiEvent>) -> (Ui<TestTerminalAdapter>, Keys) {
    let (keys_tx, keys_rx) = mpsc::channel();
    let term = TestTerminalAdapter::new(Size::new(80, 24)).unwrap_or_else(|e| panic!("{e}"));
    let ui = Ui::new(
        term,
        Some(Box::new(TestEventListener::new(keys_rx))),
        Box::new(ChannelPort(events)),
        worker,
        std::env::temp_dir(),
    )
    .unwrap_or_else(|e| panic!("{e}"));
    (ui, keys_tx)
}

fn screen(ui: &mut Ui<TestTerminalAdapter>) -> String {
    ui.draw().unwrap_or_else(|e| panic!("{e}"));
    buffer_to_string(ui.terminal.raw_mut().backend().buffer())
}

/// Steps the UI until `screen` contains `text` (at most 10 s).
fn until(ui: &mut Ui<TestTerminalAdapter>, text: &str) -> String {
    let start = Instant::now();
    loop {
        ui.step(Duration::from_millis(20), true)
            .unwrap_or_else(|e| panic!("{e}"));
        let s = screen(ui);
        if s.contains(text) {
            return s;
        }
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "no {text:?} in\n{s}"
        );
    }
}

#[test]
fn tabs_switch_by_digit_and_tab_and_every_screen_has_a_help_bar() {
    let (_tx, rx) = mpsc::channel();
    let (mut ui, keys) = ui(None, rx);
    for (i, t) in Tab::ALL.iter().enumerate() {
        let digit = char::from(b'1' + i as u8);
        keys.send(key(Key::Char(digit)))
            .unwrap_or_else(|e| panic!("{e}"));
        let s = until(&mut ui, "q quit");
        assert_eq!(ui.tab, *t);
        let last = s.lines().nth(23).unwrap_or_default();
        assert!(last.ends_with("q quit"), "help bar of {t:?} cut: {last:?}");
    }
    keys.send(key(Key::Tab)).unwrap_or_else(|e| panic!("{e}"));
    until(&mut ui, "q quit");
    assert_eq!(ui.tab, Tab::Org);
    keys.send(key(Key::BackTab))
        .unwrap_or_else(|e| panic!("{e}"));
    until(&mut ui, "q quit");
    assert_eq!(ui.tab, Tab::Invitations);
    keys.send(key(Key::Char('q')))
        .unwrap_or_else(|e| panic!("{e}"));
    ui.step(Duration::from_millis(50), false)
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(ui.quit);
}

#[test]
fn data_reaches_a_hidden_screen() {
    let (tx, rx) = mpsc::channel();
    let (mut ui, keys) = ui(None, rx);
    tx.send(UiEvent::Reply(Box::new(Reply {
        origin: Origin::Poll,
        request: Request::Users,
        result: Ok(Response::Users(vec![UserInfo {
            id: "01".repeat(32),
            name: "Zoe".into(),
            email: "zoe@acme.test".into(),
            profile: "admin".into(),
            revoked: false,
            devices: vec![],
            key_generation: 1,
            key_needs_rotation: false,
        }])),
    })))
    .unwrap_or_else(|e| panic!("{e}"));
    // Shown on the Org screen, the users screen still takes the list.
    until(&mut ui, "1 Org");
    keys.send(key(Key::Char('2')))
        .unwrap_or_else(|e| panic!("{e}"));
    until(&mut ui, "zoe@acme.test");
}

#[test]
fn without_a_daemon_the_ui_says_how_to_start_one() {
    let home = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let (tx, rx) = mpsc::channel();
    let worker = Worker::start(home.path().to_path_buf(), tx);
    let (mut ui, keys) = ui(Some(worker), rx);
    let s = until(&mut ui, "cloison run --home");
    assert!(s.contains("not connected"), "{s}");
    // An action says the same in the event log.
    keys.send(key(Key::Char('3')))
        .unwrap_or_else(|e| panic!("{e}"));
    keys.send(key(Key::Char('n')))
        .unwrap_or_else(|e| panic!("{e}"));
    for c in "Ops".chars() {
        keys.send(key(Key::Char(c)))
            .unwrap_or_else(|e| panic!("{e}"));
    }
    keys.send(key(Key::Enter)).unwrap_or_else(|e| panic!("{e}"));
    until(&mut ui, "Workspaces");
    keys.send(key(Key::Char('6')))
        .unwrap_or_else(|e| panic!("{e}"));
    until(&mut ui, "✗ create workspace Ops: No daemon answers");
}
