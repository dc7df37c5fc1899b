//! The two lines above every screen: the tab bar, and the daemon's state (organization, peers,
//! or "not connected" with how to start a daemon).
//!
//! The loop tells the header which tab is shown through `Attribute::Value` (a number).

use cloison_node::control::Response;
use tuirealm::command::{Cmd, CmdResult};
use tuirealm::component::{AppComponent, Component};
use tuirealm::event::Event;
use tuirealm::props::{AttrValue, Attribute, QueryResult};
use tuirealm::ratatui::Frame;
use tuirealm::ratatui::layout::Rect;
use tuirealm::ratatui::text::{Line, Span};
use tuirealm::ratatui::widgets::Paragraph;
use tuirealm::state::State;

use crate::event::{Msg, Tab, UiEvent};
use crate::theme;

/// The header's model.
#[derive(Debug, Default)]
pub struct Header {
    /// The tab shown.
    pub tab: usize,
    /// The organization's name.
    pub org: Option<String>,
    /// Connected peers.
    pub peers: Option<usize>,
    /// Set while no daemon answers.
    pub offline: Option<String>,
    /// Actions running.
    pub running: usize,
}

impl Header {
    /// Takes what the worker read.
    pub fn apply(&mut self, ev: &UiEvent) -> Option<Msg> {
        match ev {
            UiEvent::Offline(t) => self.offline = Some(t.clone()),
            UiEvent::Started(_) => self.running += 1,
            UiEvent::Reply(r) => {
                if r.action().is_some() {
                    self.running = self.running.saturating_sub(1);
                }
                match r.ok() {
                    Some(Response::Org(o)) => {
                        self.org = Some(o.name.clone());
                        self.offline = None;
                    }
                    Some(Response::Status(s)) => self.peers = Some(s.peers),
                    _ => return None,
                }
            }
            UiEvent::Progress(_) => return None,
        }
        Some(Msg::Redraw)
    }

    /// Draws the two lines.
    pub fn draw(&mut self, f: &mut Frame<'_>, area: Rect) {
        let mut tabs = vec![Span::styled(" Cloison ", theme::title())];
        for (i, t) in Tab::ALL.iter().enumerate() {
            let style = if i == self.tab {
                theme::selected()
            } else {
                theme::text()
            };
            tabs.push(Span::styled(format!(" {} {} ", i + 1, t.title()), style));
        }
        let state = match (&self.offline, &self.org) {
            (Some(_), _) => Line::from(vec![
                Span::styled(" not connected ", theme::bad()),
                Span::raw("(see the Org screen)"),
            ]),
            (None, Some(org)) => {
                let mut s = vec![
                    Span::styled(" ● ", theme::good()),
                    Span::styled(org.clone(), theme::title()),
                    Span::raw(format!(
                        "  ·  {} peer(s) connected",
                        self.peers.unwrap_or_default()
                    )),
                ];
                if self.running > 0 {
                    s.push(Span::styled(
                        format!("  ·  {} action(s) running", self.running),
                        theme::busy(),
                    ));
                }
                Line::from(s)
            }
            (None, None) => Line::from(Span::styled(" connecting...", theme::dim())),
        };
        f.render_widget(Paragraph::new(vec![Line::from(tabs), state]), area);
    }
}

impl Component for Header {
    fn view(&mut self, frame: &mut Frame<'_>, area: Rect) {
        self.draw(frame, area);
    }
    fn query<'a>(&'a self, _attr: Attribute) -> Option<QueryResult<'a>> {
        None
    }
    fn attr(&mut self, attr: Attribute, value: AttrValue) {
        if let (Attribute::Value, AttrValue::Number(n)) = (attr, value) {
            self.tab = usize::try_from(n).unwrap_or(0);
        }
    }
    fn state(&self) -> State {
        State::None
    }
    fn perform(&mut self, _cmd: Cmd) -> CmdResult {
        CmdResult::NoChange
    }
}

impl AppComponent<Msg, UiEvent> for Header {
    fn on(&mut self, ev: &Event<UiEvent>) -> Option<Msg> {
        match ev {
            Event::User(u) => self.apply(u),
            _ => None,
        }
    }
}
