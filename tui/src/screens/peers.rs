//! Screen 4: peers (connected and refused) and the sync status of each workspace, refreshed
//! live from the poller's `Peers` and `Status` answers.

use cloison_node::control::{PeerInfo, Response, StatusInfo};
use tuirealm::event::KeyEvent;
use tuirealm::ratatui::Frame;
use tuirealm::ratatui::layout::{Constraint, Layout, Rect};
use tuirealm::ratatui::text::{Line, Span};
use tuirealm::ratatui::widgets::{Paragraph, Row, Table, TableState};

use crate::event::{Msg, UiEvent};
use crate::theme;
use crate::widgets::{bytes, clock, global_key, help_bar, nav, pane, short, split_help};

/// The peers screen's model.
#[derive(Debug, Default)]
pub struct Peers {
    /// Peers, as last read.
    pub peers: Vec<PeerInfo>,
    /// Status, as last read.
    pub status: Option<StatusInfo>,
    /// Selected peer.
    pub sel: usize,
    /// Refreshes seen (shows that the data is live).
    pub refreshes: u64,
}

screen_component!(Peers);

impl Peers {
    /// Keys: arrows select a peer.
    pub fn key(&mut self, k: &KeyEvent) -> Option<Msg> {
        if let Some(s) = nav(k, self.sel, self.peers.len()) {
            self.sel = s;
            return Some(Msg::Redraw);
        }
        global_key(k)
    }

    /// Takes what the worker read.
    pub fn apply(&mut self, ev: &UiEvent) -> Option<Msg> {
        let UiEvent::Reply(r) = ev else { return None };
        match r.ok()? {
            Response::Peers(p) => {
                self.peers = p.clone();
                self.peers
                    .sort_by(|a, b| a.state.cmp(&b.state).then(a.device.cmp(&b.device)));
                self.sel = self.sel.min(self.peers.len().saturating_sub(1));
                self.refreshes += 1;
            }
            Response::Status(s) => self.status = Some(s.clone()),
            _ => return None,
        }
        Some(Msg::Redraw)
    }

    /// Draws the screen.
    pub fn draw(&mut self, f: &mut Frame<'_>, area: Rect) {
        let (body, help) = split_help(area);
        help_bar(f, help, &[("↑↓", "select"), ("r", "refresh now")]);
        let [summary, top, bottom] = Layout::vertical([
            Constraint::Length(2),
            Constraint::Percentage(50),
            Constraint::Min(4),
        ])
        .areas(body);
        let connected = self.peers.iter().filter(|p| p.state == "connected").count();
        let refused = self.peers.len() - connected;
        let mut line1 = vec![
            Span::styled(format!("{connected} connected"), theme::good()),
            Span::raw(", "),
            Span::styled(
                format!("{refused} refused"),
                if refused > 0 {
                    theme::bad()
                } else {
                    theme::text()
                },
            ),
        ];
        let line2 = match &self.status {
            Some(s) => {
                line1.push(Span::raw(format!(
                    "  ·  org log {} entries, {} waiting",
                    s.org_entries, s.org_waiting
                )));
                Line::from(vec![
                    Span::raw(format!("blocks {} stored, ", s.blocks_stored)),
                    Span::styled(
                        format!("{} pending", s.blocks_pending),
                        if s.blocks_pending > 0 {
                            theme::busy()
                        } else {
                            theme::text()
                        },
                    ),
                    Span::raw(format!(
                        "  ·  sent {}, received {}",
                        bytes(s.bytes_sent),
                        bytes(s.bytes_received)
                    )),
                ])
            }
            None => Line::from(Span::styled("waiting for the daemon...", theme::dim())),
        };
        f.render_widget(Paragraph::new(vec![Line::from(line1), line2]), summary);

        let rows = self.peers.iter().map(|p| {
            let name = match (&p.label, &p.user) {
                (Some(l), Some(u)) => format!("{l} ({u})"),
                (Some(l), None) => l.clone(),
                _ => "(unknown)".into(),
            };
            let state = if p.state == "connected" {
                Span::styled(p.state.clone(), theme::good())
            } else {
                Span::styled(p.state.clone(), theme::bad())
            };
            Row::new(vec![
                Span::raw(name),
                Span::raw(short(&p.device)),
                state,
                Span::raw(clock(p.since_ms)),
                Span::raw(p.reason.clone().unwrap_or_default()),
            ])
        });
        let table = Table::new(
            rows,
            [
                Constraint::Min(14),
                Constraint::Length(12),
                Constraint::Length(9),
                Constraint::Length(8),
                Constraint::Min(8),
            ],
        )
        .header(Row::new(["Peer", "Device", "State", "Since", "Reason"]).style(theme::header_row()))
        .row_highlight_style(theme::selected())
        .block(pane("Peers (UTC)", true));
        let mut st =
            TableState::default().with_selected((!self.peers.is_empty()).then_some(self.sel));
        f.render_stateful_widget(table, top, &mut st);

        let ws = self
            .status
            .as_ref()
            .map(|s| s.workspaces.as_slice())
            .unwrap_or(&[]);
        let rows = ws.iter().map(|w| {
            Row::new(vec![
                Span::raw(w.name.clone()),
                Span::raw(w.envelopes.to_string()),
                if w.waiting > 0 {
                    Span::styled(w.waiting.to_string(), theme::busy())
                } else {
                    Span::raw("0")
                },
                Span::raw(w.locked.to_string()),
                Span::raw(w.peers.to_string()),
                Span::raw(w.last_sync_ms.map(clock).unwrap_or_else(|| "-".into())),
            ])
        });
        let table = Table::new(
            rows,
            [
                Constraint::Min(14),
                Constraint::Length(9),
                Constraint::Length(7),
                Constraint::Length(6),
                Constraint::Length(5),
                Constraint::Length(9),
            ],
        )
        .header(
            Row::new([
                "Workspace",
                "Envelopes",
                "Waiting",
                "Locked",
                "Peers",
                "Last sync",
            ])
            .style(theme::header_row()),
        )
        .block(pane("Sync", false));
        f.render_widget(table, bottom);
    }
}
