//! Screen 7: invitations. The daemon's control API has no invitation requests yet (enrolment
//! is built on another branch); until it lands this screen says so and how to invite from
//! the command line once it exists.

use tuirealm::event::KeyEvent;
use tuirealm::ratatui::Frame;
use tuirealm::ratatui::layout::Rect;
use tuirealm::ratatui::text::{Line, Span};
use tuirealm::ratatui::widgets::{Paragraph, Wrap};

use crate::event::{Msg, UiEvent};
use crate::theme;
use crate::widgets::{global_key, help_bar, pane, split_help};

/// The invitations screen.
#[derive(Debug, Default)]
pub struct Invitations;

screen_component!(Invitations);

impl Invitations {
    /// Keys: only the global ones.
    pub fn key(&mut self, k: &KeyEvent) -> Option<Msg> {
        global_key(k)
    }

    /// Nothing to take yet.
    pub fn apply(&mut self, _ev: &UiEvent) -> Option<Msg> {
        None
    }

    /// Draws the screen.
    pub fn draw(&mut self, f: &mut Frame<'_>, area: Rect) {
        let (body, help) = split_help(area);
        help_bar(f, help, &[]);
        let text = vec![
            Line::from(Span::styled(
                "Invitations are not available from this daemon yet.",
                theme::busy(),
            )),
            Line::from(""),
            Line::from("The control API has no invitation requests in this build."),
        ];
        f.render_widget(
            Paragraph::new(text)
                .wrap(Wrap { trim: true })
                .block(pane("Invitations", true)),
            body,
        );
    }
}
