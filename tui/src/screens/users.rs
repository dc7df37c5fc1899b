//! Screen 2: users and their devices, with revocation (of a user or of one device) behind a
//! confirmation dialog.
//!
//! The devices pane lists the devices of the selected user. Revoking sends
//! `RevokeUser`/`RevokeDevice` with the full id, never a prefix that could match another.

use cloison_node::control::{Request, Response};
use cloison_node::node::{DeviceInfo, UserInfo};
use tuirealm::event::{Key, KeyEvent};
use tuirealm::ratatui::Frame;
use tuirealm::ratatui::layout::{Constraint, Layout, Rect};
use tuirealm::ratatui::text::Span;
use tuirealm::ratatui::widgets::{Row, Table, TableState};

use crate::event::{Msg, UiEvent};
use crate::theme;
use crate::widgets::{Confirm, DialogOutcome, global_key, help_bar, nav, pane, short, split_help};

/// Which pane has the focus.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Pane {
    /// The users.
    #[default]
    Users,
    /// The selected user's devices.
    Devices,
}

/// The users screen's model.
#[derive(Debug, Default)]
pub struct Users {
    /// Users, as last read.
    pub users: Vec<UserInfo>,
    /// Devices, as last read.
    pub devices: Vec<DeviceInfo>,
    /// Focused pane.
    pub pane: Pane,
    /// Selected user.
    pub user: usize,
    /// Selected device (within the user's).
    pub device: usize,
    /// The open confirmation, if any.
    pub confirm: Option<Confirm>,
}

screen_component!(Users);

impl Users {
    /// The selected user's devices.
    pub fn devices_of_selected(&self) -> Vec<&DeviceInfo> {
        let Some(u) = self.users.get(self.user) else {
            return Vec::new();
        };
        self.devices.iter().filter(|d| d.user == u.id).collect()
    }

    /// Keys: arrows select, Left/Right switch panes, `x` revokes the selection.
    pub fn key(&mut self, k: &KeyEvent) -> Option<Msg> {
        if let Some(c) = &self.confirm {
            return match c.key(k) {
                DialogOutcome::Open => crate::widgets::ctrl_c(k),
                DialogOutcome::Cancelled => {
                    self.confirm = None;
                    Some(Msg::Redraw)
                }
                DialogOutcome::Done(m) => {
                    self.confirm = None;
                    Some(m)
                }
            };
        }
        match k.code {
            Key::Left | Key::Char('h') => {
                self.pane = Pane::Users;
                return Some(Msg::Redraw);
            }
            Key::Right | Key::Char('l') => {
                self.pane = Pane::Devices;
                return Some(Msg::Redraw);
            }
            Key::Char('x') | Key::Delete => {
                self.confirm = self.revoke_question();
                return Some(Msg::Redraw);
            }
            _ => {}
        }
        match self.pane {
            Pane::Users => {
                if let Some(s) = nav(k, self.user, self.users.len()) {
                    self.user = s;
                    self.device = 0;
                    return Some(Msg::Redraw);
                }
            }
            Pane::Devices => {
                if let Some(s) = nav(k, self.device, self.devices_of_selected().len()) {
                    self.device = s;
                    return Some(Msg::Redraw);
                }
            }
        }
        global_key(k)
    }

    fn revoke_question(&self) -> Option<Confirm> {
        match self.pane {
            Pane::Users => {
                let u = self.users.get(self.user).filter(|u| !u.revoked)?;
                Some(Confirm {
                    question: format!(
                        "Revoke user {} <{}> and all their devices? This cannot be undone.",
                        u.name, u.email
                    ),
                    on_yes: Msg::Call {
                        label: format!("revoke user {}", u.name),
                        request: Request::RevokeUser {
                            query: u.id.clone(),
                        },
                    },
                })
            }
            Pane::Devices => {
                let d = *self
                    .devices_of_selected()
                    .get(self.device)
                    .filter(|d| !d.revoked)?;
                Some(Confirm {
                    question: format!(
                        "Revoke device {} of {}? This cannot be undone.",
                        d.label, d.user_name
                    ),
                    on_yes: Msg::Call {
                        label: format!("revoke device {}", d.label),
                        request: Request::RevokeDevice {
                            query: d.id.clone(),
                        },
                    },
                })
            }
        }
    }

    /// Takes what the worker read.
    pub fn apply(&mut self, ev: &UiEvent) -> Option<Msg> {
        let UiEvent::Reply(r) = ev else { return None };
        match r.ok()? {
            Response::Users(u) => {
                self.users = u.clone();
                self.user = self.user.min(self.users.len().saturating_sub(1));
            }
            Response::Devices(d) => self.devices = d.clone(),
            _ => return None,
        }
        self.device = self
            .device
            .min(self.devices_of_selected().len().saturating_sub(1));
        Some(Msg::Redraw)
    }

    /// Draws the screen.
    pub fn draw(&mut self, f: &mut Frame<'_>, area: Rect) {
        let (body, help) = split_help(area);
        help_bar(
            f,
            help,
            &[("↑↓", "select"), ("←→", "users/devices"), ("x", "revoke")],
        );
        let [top, bottom] =
            Layout::vertical([Constraint::Percentage(55), Constraint::Min(4)]).areas(body);
        let rows = self.users.iter().map(|u| {
            Row::new(vec![
                Span::raw(u.name.clone()),
                Span::raw(u.email.clone()),
                Span::raw(u.profile.clone()),
                Span::raw(u.devices.len().to_string()),
                state(u.revoked),
            ])
        });
        let table = Table::new(
            rows,
            [
                Constraint::Length(16),
                Constraint::Min(16),
                Constraint::Length(9),
                Constraint::Length(7),
                Constraint::Length(8),
            ],
        )
        .header(
            Row::new(["Name", "E-mail", "Profile", "Devices", "State"]).style(theme::header_row()),
        )
        .row_highlight_style(theme::selected())
        .block(pane("Users", self.pane == Pane::Users));
        let mut st =
            TableState::default().with_selected((!self.users.is_empty()).then_some(self.user));
        f.render_stateful_widget(table, top, &mut st);

        let devices = self.devices_of_selected();
        let title = match self.users.get(self.user) {
            Some(u) => format!("Devices of {}", u.name),
            None => "Devices".into(),
        };
        let rows = devices.iter().map(|d| {
            Row::new(vec![
                Span::raw(if d.this_device {
                    format!("{} (this)", d.label)
                } else {
                    d.label.clone()
                }),
                Span::raw(short(&d.id)),
                state(d.revoked),
            ])
        });
        let table = Table::new(
            rows,
            [
                Constraint::Min(20),
                Constraint::Length(14),
                Constraint::Length(8),
            ],
        )
        .header(Row::new(["Label", "Id", "State"]).style(theme::header_row()))
        .row_highlight_style(theme::selected())
        .block(pane(&title, self.pane == Pane::Devices));
        let mut st = TableState::default().with_selected(
            (self.pane == Pane::Devices && !devices.is_empty()).then_some(self.device),
        );
        f.render_stateful_widget(table, bottom, &mut st);
        if let Some(c) = &self.confirm {
            c.draw(f, body);
        }
    }
}

fn state(revoked: bool) -> Span<'static> {
    if revoked {
        Span::styled("revoked", theme::bad())
    } else {
        Span::styled("active", theme::good())
    }
}
