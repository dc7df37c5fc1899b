//! Screen 3: workspaces and their members: create, share with a user and a role, change a
//! member's role, unshare.
//!
//! Changing a role is a share with the new role: the workspace log's latest grant for a user
//! wins (`workspace::state`), so `WorkspaceShare` both adds a member and changes a role; the
//! daemon's admission rules decide who may grant what. Unsharing asks for confirmation.

use cloison_node::control::{Request, Response};
use cloison_node::node::{MemberInfo, UserInfo, WorkspaceInfo};
use tuirealm::event::{Key, KeyEvent};
use tuirealm::ratatui::Frame;
use tuirealm::ratatui::layout::{Constraint, Layout, Rect};
use tuirealm::ratatui::text::{Line, Span};
use tuirealm::ratatui::widgets::{Clear, Paragraph, Row, Table, TableState};

use crate::event::{Msg, UiEvent};
use crate::theme;
use crate::widgets::{
    Confirm, DialogOutcome, LineInput, centered, ctrl_c, global_key, help_bar, nav, pane,
    split_help,
};

/// Roles, weakest first.
pub const ROLES: [&str; 4] = ["reader", "contributor", "manager", "owner"];

/// Which pane has the focus.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Pane {
    /// The workspaces.
    #[default]
    Workspaces,
    /// The selected workspace's members.
    Members,
}

/// Picking a user and a role (share), or only a role (change role).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RolePick {
    /// Workspace id.
    pub ws: String,
    /// Workspace name.
    pub ws_name: String,
    /// Candidates: (user id, name, e-mail). One entry when changing a role.
    pub users: Vec<(String, String, String)>,
    /// Selected candidate.
    pub user: usize,
    /// Selected role (index into [`ROLES`]).
    pub role: usize,
    /// Whether this changes an existing member's role.
    pub change: bool,
}

impl RolePick {
    fn key(&mut self, k: &KeyEvent) -> DialogOutcome<Msg> {
        match k.code {
            Key::Esc => DialogOutcome::Cancelled,
            Key::Left => {
                self.role = (self.role + ROLES.len() - 1) % ROLES.len();
                DialogOutcome::Open
            }
            Key::Right => {
                self.role = (self.role + 1) % ROLES.len();
                DialogOutcome::Open
            }
            Key::Enter => {
                let Some((id, name, _)) = self.users.get(self.user) else {
                    return DialogOutcome::Cancelled;
                };
                let role = ROLES[self.role];
                let label = if self.change {
                    format!("set {name}'s role in {} to {role}", self.ws_name)
                } else {
                    format!("share {} with {name} as {role}", self.ws_name)
                };
                DialogOutcome::Done(Msg::Call {
                    label,
                    request: Request::WorkspaceShare {
                        ws: self.ws.clone(),
                        user: id.clone(),
                        role: role.into(),
                    },
                })
            }
            _ => {
                if let Some(s) = nav(k, self.user, self.users.len()) {
                    self.user = s;
                }
                DialogOutcome::Open
            }
        }
    }

    fn draw(&self, f: &mut Frame<'_>, area: Rect) {
        let h = (self.users.len() as u16).min(8) + 6;
        let r = centered(area, 64, h);
        f.render_widget(Clear, r);
        let mut lines = Vec::new();
        for (i, (_, name, email)) in self.users.iter().enumerate() {
            let style = if i == self.user {
                theme::selected()
            } else {
                theme::text()
            };
            lines.push(Line::from(Span::styled(format!("{name} <{email}>"), style)));
        }
        if self.users.is_empty() {
            lines.push(Line::from(Span::styled(
                "every active user is already a member",
                theme::dim(),
            )));
        }
        lines.push(Line::from(""));
        lines.push(Line::from(vec![
            Span::styled("Role  ", theme::title()),
            Span::raw("< "),
            Span::styled(ROLES[self.role], theme::selected()),
            Span::raw(" >"),
        ]));
        lines.push(Line::from(vec![
            Span::styled(" ↑↓ ", theme::key()),
            Span::raw(" user "),
            Span::styled(" ←→ ", theme::key()),
            Span::raw(" role "),
            Span::styled(" Enter ", theme::key()),
            Span::raw(" ok "),
            Span::styled(" Esc ", theme::key()),
            Span::raw(" cancel"),
        ]));
        let title = if self.change {
            format!("Change role in {}", self.ws_name)
        } else {
            format!("Share {}", self.ws_name)
        };
        f.render_widget(Paragraph::new(lines).block(pane(&title, true)), r);
    }
}

/// An open dialog.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Dialog {
    /// Name of a new workspace.
    Create(LineInput),
    /// Share or change a role.
    Pick(RolePick),
    /// Unshare.
    Confirm(Confirm),
}

/// The workspaces screen's model.
#[derive(Debug, Default)]
pub struct Workspaces {
    /// Workspaces, as last read.
    pub workspaces: Vec<WorkspaceInfo>,
    /// Selected workspace.
    pub ws: usize,
    /// Members of [`Self::members_of`].
    pub members: Vec<MemberInfo>,
    /// The workspace whose members are shown.
    pub members_of: Option<String>,
    /// Selected member.
    pub member: usize,
    /// Users of the organization (to share with).
    pub users: Vec<UserInfo>,
    /// Focused pane.
    pub pane: Pane,
    /// The open dialog.
    pub dialog: Option<Dialog>,
    /// This device's user (never offered as someone to share with).
    pub me: Option<String>,
    /// `s` was pressed before the members were known: the dialog opens when they arrive.
    pub want_share: bool,
}

screen_component!(Workspaces);

impl Workspaces {
    fn selected(&self) -> Option<&WorkspaceInfo> {
        self.workspaces.get(self.ws)
    }

    fn shown_members(&self) -> &[MemberInfo] {
        match (&self.members_of, self.selected()) {
            (Some(m), Some(w)) if *m == w.id => &self.members,
            _ => &[],
        }
    }

    fn fetch_members(&self) -> Option<Msg> {
        self.selected()
            .map(|w| Msg::Fetch(Request::WorkspaceMembers { ws: w.id.clone() }))
    }

    /// Keys: arrows select, Left/Right switch panes, `n` new, `s` share, `c` change role,
    /// `u` unshare.
    pub fn key(&mut self, k: &KeyEvent) -> Option<Msg> {
        if let Some(d) = &mut self.dialog {
            let outcome = match d {
                Dialog::Create(i) => match i.key(k) {
                    DialogOutcome::Done(name) if name.is_empty() => DialogOutcome::Cancelled,
                    DialogOutcome::Done(name) => DialogOutcome::Done(Msg::Call {
                        label: format!("create workspace {name}"),
                        request: Request::WorkspaceCreate { name },
                    }),
                    DialogOutcome::Open => DialogOutcome::Open,
                    DialogOutcome::Cancelled => DialogOutcome::Cancelled,
                },
                Dialog::Pick(p) => p.key(k),
                Dialog::Confirm(c) => c.key(k),
            };
            return match outcome {
                DialogOutcome::Open => ctrl_c(k).or(Some(Msg::Redraw)),
                DialogOutcome::Cancelled => {
                    self.dialog = None;
                    Some(Msg::Redraw)
                }
                DialogOutcome::Done(m) => {
                    self.dialog = None;
                    Some(m)
                }
            };
        }
        match k.code {
            Key::Left | Key::Char('h') => {
                self.pane = Pane::Workspaces;
                return Some(Msg::Redraw);
            }
            Key::Right | Key::Char('l') => {
                self.pane = Pane::Members;
                return Some(Msg::Redraw);
            }
            Key::Char('n') => {
                self.dialog = Some(Dialog::Create(LineInput::new("New workspace name")));
                return Some(Msg::Redraw);
            }
            Key::Char('s') => {
                self.dialog = self.share_dialog().map(Dialog::Pick);
                self.want_share = self.dialog.is_none();
                return match self.dialog {
                    Some(_) => Some(Msg::Redraw),
                    None => self.fetch_members(),
                };
            }
            Key::Char('c') => {
                self.dialog = self.role_dialog().map(Dialog::Pick);
                return Some(Msg::Redraw);
            }
            Key::Char('u') | Key::Delete => {
                self.dialog = self.unshare_dialog().map(Dialog::Confirm);
                return Some(Msg::Redraw);
            }
            _ => {}
        }
        match self.pane {
            Pane::Workspaces => {
                if let Some(s) = nav(k, self.ws, self.workspaces.len()) {
                    let changed = s != self.ws;
                    self.ws = s;
                    self.member = 0;
                    self.want_share &= !changed;
                    return if changed {
                        self.fetch_members()
                    } else {
                        Some(Msg::Redraw)
                    };
                }
            }
            Pane::Members => {
                if let Some(s) = nav(k, self.member, self.shown_members().len()) {
                    self.member = s;
                    return Some(Msg::Redraw);
                }
            }
        }
        global_key(k)
    }

    /// The share dialog, once the selected workspace's members are known (sharing with a
    /// member would change their role).
    fn share_dialog(&self) -> Option<RolePick> {
        let w = self.selected()?;
        if self.members_of.as_deref() != Some(w.id.as_str()) {
            return None;
        }
        let members = self.shown_members();
        let users = self
            .users
            .iter()
            .filter(|u| {
                !u.revoked
                    && self.me.as_deref() != Some(u.id.as_str())
                    && !members.iter().any(|m| m.user == u.id)
            })
            .map(|u| (u.id.clone(), u.name.clone(), u.email.clone()))
            .collect();
        Some(RolePick {
            ws: w.id.clone(),
            ws_name: w.name.clone(),
            users,
            user: 0,
            role: 1,
            change: false,
        })
    }

    fn role_dialog(&self) -> Option<RolePick> {
        let w = self.selected()?;
        let m = self.shown_members().get(self.member)?;
        Some(RolePick {
            ws: w.id.clone(),
            ws_name: w.name.clone(),
            users: vec![(m.user.clone(), m.name.clone(), m.email.clone())],
            user: 0,
            role: ROLES.iter().position(|r| *r == m.role).unwrap_or(0),
            change: true,
        })
    }

    fn unshare_dialog(&self) -> Option<Confirm> {
        let w = self.selected()?;
        let m = self.shown_members().get(self.member)?;
        Some(Confirm {
            question: format!(
                "Remove {} <{}> from {}? A new key epoch is opened without them.",
                m.name, m.email, w.name
            ),
            on_yes: Msg::Call {
                label: format!("unshare {} from {}", w.name, m.name),
                request: Request::WorkspaceUnshare {
                    ws: w.id.clone(),
                    user: m.user.clone(),
                },
            },
        })
    }

    /// Takes what the worker read; a new workspace list fetches the selection's members.
    pub fn apply(&mut self, ev: &UiEvent) -> Option<Msg> {
        let UiEvent::Reply(r) = ev else { return None };
        match (&r.request, r.ok()?) {
            (_, Response::Workspaces(w)) => {
                let keep = self.selected().map(|w| w.id.clone());
                self.workspaces = w.clone();
                self.workspaces.sort_by_key(|w| w.name.to_lowercase());
                self.ws = keep
                    .and_then(|id| self.workspaces.iter().position(|w| w.id == id))
                    .unwrap_or(0);
                self.fetch_members().or(Some(Msg::Redraw))
            }
            (Request::WorkspaceMembers { ws }, Response::Members(m)) => {
                self.members_of = Some(ws.clone());
                self.members = m.clone();
                self.member = self.member.min(self.members.len().saturating_sub(1));
                if self.want_share
                    && self.dialog.is_none()
                    && self.selected().is_some_and(|w| w.id == *ws)
                {
                    self.want_share = false;
                    self.dialog = self.share_dialog().map(Dialog::Pick);
                }
                Some(Msg::Redraw)
            }
            (_, Response::Users(u)) => {
                self.users = u.clone();
                None
            }
            (_, Response::Org(o)) => {
                self.me = Some(o.this_user.clone());
                None
            }
            _ => None,
        }
    }

    /// Draws the screen.
    pub fn draw(&mut self, f: &mut Frame<'_>, area: Rect) {
        let (body, help) = split_help(area);
        help_bar(
            f,
            help,
            &[
                ("←→", "pane"),
                ("n", "new"),
                ("s", "share"),
                ("c", "role"),
                ("u", "unshare"),
            ],
        );
        let [left, right] =
            Layout::horizontal([Constraint::Percentage(45), Constraint::Min(20)]).areas(body);
        let rows = self.workspaces.iter().map(|w| {
            Row::new(vec![
                w.name.clone(),
                w.role.clone().unwrap_or_else(|| "-".into()),
                w.members.to_string(),
            ])
        });
        let table = Table::new(
            rows,
            [
                Constraint::Min(12),
                Constraint::Length(11),
                Constraint::Length(3),
            ],
        )
        .header(Row::new(["Workspace", "Your role", "Mbr"]).style(theme::header_row()))
        .row_highlight_style(theme::selected())
        .block(pane("Workspaces", self.pane == Pane::Workspaces));
        let mut st =
            TableState::default().with_selected((!self.workspaces.is_empty()).then_some(self.ws));
        f.render_stateful_widget(table, left, &mut st);

        let members = self.shown_members();
        let rows = members.iter().map(|m| {
            Row::new(vec![
                Span::raw(m.name.clone()),
                Span::raw(m.role.clone()),
                if m.has_key {
                    Span::styled("yes", theme::good())
                } else {
                    Span::styled("not yet", theme::busy())
                },
            ])
        });
        let title = match self.selected() {
            Some(w) => format!("Members of {}", w.name),
            None => "Members".into(),
        };
        let table = Table::new(
            rows,
            [
                Constraint::Min(10),
                Constraint::Length(11),
                Constraint::Length(7),
            ],
        )
        .header(Row::new(["Name", "Role", "Key"]).style(theme::header_row()))
        .row_highlight_style(theme::selected())
        .block(pane(&title, self.pane == Pane::Members));
        let mut st = TableState::default().with_selected(
            (self.pane == Pane::Members && !members.is_empty()).then_some(self.member),
        );
        f.render_stateful_widget(table, right, &mut st);
        match &self.dialog {
            Some(Dialog::Create(i)) => i.draw(f, body),
            Some(Dialog::Pick(p)) => p.draw(f, body),
            Some(Dialog::Confirm(c)) => c.draw(f, body),
            None => {}
        }
    }
}
