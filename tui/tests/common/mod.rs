//! Helpers shared by the screen tests: ids, worker events, keys, rendering at the size a
//! screen gets in an 80×24 terminal.
#![allow(dead_code)]

use cloison_node::control::{Request, Response};
use cloison_tui::event::{Msg, Origin, Reply, UiEvent};
use tuirealm::component::Component;
use tuirealm::event::{Key, KeyEvent, KeyModifiers};
use tuirealm::ratatui::layout::Size;
use tuirealm::testing::render_to_string;

/// The area a screen gets in an 80×24 terminal (two header lines).
pub const SCREEN: Size = Size::new(80, 22);

pub fn hex(b: u8) -> String {
    format!("{b:02x}").repeat(32)
}

pub fn poll(request: Request, response: Response) -> UiEvent {
    UiEvent::Reply(Box::new(Reply {
        origin: Origin::Poll,
        request,
        result: Ok(response),
    }))
}

pub fn action(label: &str, request: Request, result: Result<Response, String>) -> UiEvent {
    UiEvent::Reply(Box::new(Reply {
        origin: Origin::Action(label.into()),
        request,
        result,
    }))
}

pub fn k(code: Key) -> KeyEvent {
    KeyEvent::new(code, KeyModifiers::NONE)
}

pub fn type_text(mut f: impl FnMut(&KeyEvent) -> Option<Msg>, text: &str) {
    for c in text.chars() {
        f(&k(Key::Char(c)));
    }
}

pub fn render(c: &mut dyn Component) -> String {
    render_to_string(c, SCREEN)
}
