//! The screens, one tuirealm component per tab. Each keeps its own model (what the daemon last
//! said, the selection, an open dialog) and exposes `key` and `apply` so its logic is tested
//! without a terminal; `draw` renders it, with the help bar on the last line.
//!
//! Invariant: a screen never calls the daemon; it returns a [`Msg`](crate::event::Msg) and the
//! loop hands the request to the worker.

/// Implements tuirealm's `Component` (drawing through the type's `draw`) and `AppComponent`
/// (keys to `key`, worker events to `apply`) for a screen.
macro_rules! screen_component {
    ($t:ty) => {
        impl tuirealm::component::Component for $t {
            fn view(
                &mut self,
                frame: &mut tuirealm::ratatui::Frame<'_>,
                area: tuirealm::ratatui::layout::Rect,
            ) {
                self.draw(frame, area);
            }
            fn query<'a>(
                &'a self,
                _attr: tuirealm::props::Attribute,
            ) -> Option<tuirealm::props::QueryResult<'a>> {
                None
            }
            fn attr(
                &mut self,
                _attr: tuirealm::props::Attribute,
                _value: tuirealm::props::AttrValue,
            ) {
            }
            fn state(&self) -> tuirealm::state::State {
                tuirealm::state::State::None
            }
            fn perform(&mut self, _cmd: tuirealm::command::Cmd) -> tuirealm::command::CmdResult {
                tuirealm::command::CmdResult::NoChange
            }
        }
        impl tuirealm::component::AppComponent<crate::event::Msg, crate::event::UiEvent> for $t {
            fn on(
                &mut self,
                ev: &tuirealm::event::Event<crate::event::UiEvent>,
            ) -> Option<crate::event::Msg> {
                match ev {
                    tuirealm::event::Event::Keyboard(k) => self.key(k),
                    tuirealm::event::Event::User(u) => self.apply(u),
                    tuirealm::event::Event::WindowResize(..) => Some(crate::event::Msg::Redraw),
                    _ => None,
                }
            }
        }
    };
}

pub mod bundles;
mod invitation_view;
pub mod invitations;
pub mod log;
pub mod overview;
pub mod peers;
pub mod users;
pub mod workspaces;
