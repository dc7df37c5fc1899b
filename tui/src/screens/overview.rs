//! Screen 1: the organization (`org show`) and this device's status, or, when no daemon
//! answers, how to start one.

use cloison_node::control::{Request, Response, StatusInfo};
use cloison_node::node::OrgInfo;
use tuirealm::event::KeyEvent;
use tuirealm::ratatui::Frame;
use tuirealm::ratatui::layout::{Constraint, Layout, Rect};
use tuirealm::ratatui::text::{Line, Span};
use tuirealm::ratatui::widgets::{Paragraph, Wrap};

use crate::event::{Msg, UiEvent};
use crate::theme;
use crate::widgets::{bytes, global_key, help_bar, kv, pane, short, split_help};

/// The overview's model.
#[derive(Debug, Default)]
pub struct Overview {
    /// The organization, as last read.
    pub org: Option<OrgInfo>,
    /// The status, as last read.
    pub status: Option<StatusInfo>,
    /// Set while no daemon answers.
    pub offline: Option<String>,
    /// The last error of a refresh.
    pub error: Option<String>,
    /// This device's user, as "name <e-mail>, profile".
    pub me: Option<String>,
    /// This device's label.
    pub device: Option<String>,
}

screen_component!(Overview);

impl Overview {
    /// Keys: only the global ones.
    pub fn key(&mut self, k: &KeyEvent) -> Option<Msg> {
        global_key(k)
    }

    /// Takes what the worker read.
    pub fn apply(&mut self, ev: &UiEvent) -> Option<Msg> {
        match ev {
            UiEvent::Offline(t) => self.offline = Some(t.clone()),
            UiEvent::Reply(r) => match (&r.request, &r.result) {
                (_, Ok(Response::Org(o))) => {
                    self.org = Some(o.clone());
                    self.offline = None;
                    self.error = None;
                }
                (_, Ok(Response::Status(s))) => self.status = Some(s.clone()),
                (_, Ok(Response::Users(us))) => {
                    let mine = self.org.as_ref().map(|o| o.this_user.as_str());
                    self.me = us
                        .iter()
                        .find(|u| Some(u.id.as_str()) == mine)
                        .map(|u| format!("{} <{}>, {}", u.name, u.email, u.profile));
                }
                (_, Ok(Response::Devices(ds))) => {
                    self.device = ds.iter().find(|d| d.this_device).map(|d| d.label.clone());
                }
                (Request::OrgShow, Err(e)) => self.error = Some(e.clone()),
                _ => return None,
            },
            _ => return None,
        }
        Some(Msg::Redraw)
    }

    /// Draws the screen.
    pub fn draw(&mut self, f: &mut Frame<'_>, area: Rect) {
        let (body, help) = split_help(area);
        help_bar(f, help, &[("r", "refresh")]);
        if let Some(t) = &self.offline {
            let mut text = vec![
                Line::from(Span::styled("Not connected", theme::bad())),
                Line::from(""),
            ];
            text.extend(t.lines().map(|l| Line::from(l.to_string())));
            text.extend([
                Line::from(""),
                Line::from("This screen refreshes every second and connects as soon as it runs."),
            ]);
            f.render_widget(
                Paragraph::new(text)
                    .wrap(Wrap { trim: true })
                    .block(pane("Daemon", true)),
                body,
            );
            return;
        }
        let [top, bottom] =
            Layout::vertical([Constraint::Length(8), Constraint::Min(3)]).areas(body);
        let org = match &self.org {
            Some(o) => vec![
                kv("Name", o.name.clone()),
                kv("Id", o.id.clone()),
                kv(
                    "Log",
                    format!(
                        "{} entries, {} head(s), {} dropped by revocation",
                        o.entries,
                        o.heads.len(),
                        o.dropped
                    ),
                ),
                kv(
                    "Active",
                    format!("{} users, {} devices", o.active_users, o.active_devices),
                ),
                kv(
                    "You",
                    self.me
                        .clone()
                        .unwrap_or_else(|| format!("user {}", short(&o.this_user))),
                ),
                kv(
                    "This device",
                    match &self.device {
                        Some(l) => format!("{l} ({})", short(&o.this_device)),
                        None => short(&o.this_device),
                    },
                ),
            ],
            None => vec![Line::from(match &self.error {
                Some(e) => Span::styled(e.clone(), theme::bad()),
                None => Span::styled("waiting for the daemon...", theme::dim()),
            })],
        };
        f.render_widget(Paragraph::new(org).block(pane("Organization", false)), top);
        let status = match &self.status {
            Some(s) => {
                let mut lines = vec![
                    kv(
                        "Daemon",
                        if s.daemon { "running" } else { "not running" }.to_string(),
                    ),
                    kv("Peers", format!("{} connected", s.peers)),
                    kv(
                        "Org log",
                        format!("{} entries, {} waiting", s.org_entries, s.org_waiting),
                    ),
                    kv(
                        "Blocks",
                        format!("{} stored, {} pending", s.blocks_stored, s.blocks_pending),
                    ),
                    kv(
                        "Traffic",
                        format!(
                            "{} sent, {} received",
                            bytes(s.bytes_sent),
                            bytes(s.bytes_received)
                        ),
                    ),
                    kv("Workspaces", s.workspaces.len().to_string()),
                ];
                for a in &s.listen {
                    lines.push(kv("Listening", a.clone()));
                }
                lines
            }
            None => vec![Line::from(Span::styled(
                "waiting for the daemon...",
                theme::dim(),
            ))],
        };
        f.render_widget(
            Paragraph::new(status).block(pane("This device", false)),
            bottom,
        );
    }
}
