//! Screen 7: invitations and greeting. Create an invitation for a new user (e-mail and profile)
//! or a new device of ours, show its token as text and as a QR code, list and cancel
//! invitations, and greet a newcomer: wait for their handshake, read our code to them, type or
//! pick theirs, and watch the enrolment finish.
//!
//! The greeting runs as the control API's bounded steps (`greet_wait`, `greet_confirm`, each at
//! most [`STEP_S`] seconds on the worker); a step answering `waiting` or `confirmed` is asked
//! again while the dialog is open. Closing the dialog while waiting leaves the invitation live;
//! `Esc` once codes are shown aborts the greeting, which burns the invitation (the protocol's
//! rule for a greeting that does not finish).

use cloison_node::control::enrol::{GreetStep, InvitationInfo, Invitee};
use cloison_node::control::{Request, Response};
use tuirealm::event::{Key, KeyEvent};
use tuirealm::ratatui::Frame;
use tuirealm::ratatui::layout::{Constraint, Layout, Rect};
use tuirealm::ratatui::text::{Line, Span};
use tuirealm::ratatui::widgets::{Clear, Paragraph, Row, Table, TableState, Wrap};

use crate::event::{Msg, UiEvent};
use crate::theme;
use crate::widgets::{
    Confirm, DialogOutcome, LineInput, centered, ctrl_c, datetime, global_key, help_bar, nav, pane,
    short, split_help,
};

/// Profiles of a new user, the default first.
pub const PROFILES: [&str; 3] = ["standard", "admin", "outsider"];

/// Seconds one greeting step may hold the daemon (it answers nothing else meanwhile, so the
/// steps are short and the live data keeps refreshing between them).
pub const STEP_S: u64 = 2;

/// A greeting in progress.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Greeting {
    /// The invitation.
    pub id: String,
    /// The last step the daemon reported.
    pub step: Option<GreetStep>,
    /// The claimer's code, as typed.
    pub typed: String,
    /// The selected candidate among `claimer_choices`.
    pub choice: usize,
    /// Set once a code was sent.
    pub sent: bool,
    /// The last error.
    pub error: Option<String>,
}

impl Greeting {
    /// Where it stands (`waiting` until the daemon said otherwise).
    pub fn state(&self) -> &str {
        self.step
            .as_ref()
            .map(|s| s.state.as_str())
            .unwrap_or("waiting")
    }
}

/// An open dialog.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Dialog {
    /// The new user's e-mail.
    Email(LineInput),
    /// The new user's profile.
    Profile {
        /// Their e-mail.
        email: String,
        /// Index into [`PROFILES`].
        profile: usize,
    },
    /// A token, as text and QR code.
    Token {
        /// The invitation.
        info: InvitationInfo,
        /// Draw the QR code's dark modules as blocks (light terminals).
        inverted: bool,
        /// Show the QR code alone (it needs the room in a small terminal).
        qr_only: bool,
    },
    /// Cancel an invitation.
    Cancel(Confirm),
    /// A greeting.
    Greet(Greeting),
}

/// The invitations screen's model.
#[derive(Debug, Default)]
pub struct Invitations {
    /// Invitations, as last read.
    pub invitations: Vec<InvitationInfo>,
    /// Selected invitation.
    pub sel: usize,
    /// Why the list could not be read.
    pub error: Option<String>,
    /// The open dialog.
    pub dialog: Option<Dialog>,
    /// Greeting steps sent and not answered.
    pub pending: usize,
}

screen_component!(Invitations);

impl Invitations {
    fn selected(&self) -> Option<&InvitationInfo> {
        self.invitations.get(self.sel)
    }

    fn wait(&mut self, id: &str) -> Msg {
        self.pending += 1;
        Msg::Fetch(Request::GreetWait {
            id: id.to_string(),
            timeout_s: STEP_S,
        })
    }

    /// Opens the greeting dialog on invitation `id` and sends its first step.
    pub fn greet(&mut self, id: &str) -> Msg {
        self.dialog = Some(Dialog::Greet(Greeting {
            id: id.to_string(),
            step: None,
            typed: String::new(),
            choice: 0,
            sent: false,
            error: None,
        }));
        self.pending += 1;
        Msg::Call {
            label: format!("greet on invitation {}", short(id)),
            request: Request::GreetWait {
                id: id.to_string(),
                timeout_s: STEP_S,
            },
        }
    }

    /// Keys: arrows select, `u` invite a user, `d` invite a device, `Enter` show the token,
    /// `g` greet, `x` cancel.
    pub fn key(&mut self, k: &KeyEvent) -> Option<Msg> {
        if self.dialog.is_some() {
            return self.dialog_key(k);
        }
        if let Some(s) = nav(k, self.sel, self.invitations.len()) {
            self.sel = s;
            return Some(Msg::Redraw);
        }
        match k.code {
            Key::Char('u') => {
                self.dialog = Some(Dialog::Email(LineInput::new("E-mail of the new user")));
                Some(Msg::Redraw)
            }
            Key::Char('d') => Some(Msg::Call {
                label: "invite a new device".into(),
                request: Request::InviteCreate {
                    invitee: Invitee::Device,
                    ttl_s: None,
                },
            }),
            Key::Enter => {
                let info = self.selected().filter(|i| i.token.is_some())?.clone();
                self.dialog = Some(Dialog::Token {
                    info,
                    inverted: false,
                    qr_only: false,
                });
                Some(Msg::Redraw)
            }
            Key::Char('g') => {
                let id = self.selected().filter(|i| i.state == "live")?.id.clone();
                Some(self.greet(&id))
            }
            Key::Char('x') | Key::Delete => {
                let i = self.selected().filter(|i| i.state == "live")?;
                let who = i.email.clone().unwrap_or_else(|| "a new device".into());
                self.dialog = Some(Dialog::Cancel(Confirm {
                    question: format!("Cancel the invitation {} for {who}?", short(&i.id)),
                    on_yes: Msg::Call {
                        label: format!("cancel invitation {}", short(&i.id)),
                        request: Request::InviteCancel { id: i.id.clone() },
                    },
                }));
                Some(Msg::Redraw)
            }
            _ => global_key(k),
        }
    }

    fn dialog_key(&mut self, k: &KeyEvent) -> Option<Msg> {
        if let Some(m) = ctrl_c(k) {
            return Some(m);
        }
        let dialog = self.dialog.take()?;
        let (next, msg) = match dialog {
            Dialog::Email(mut i) => match i.key(k) {
                DialogOutcome::Open => (Some(Dialog::Email(i)), None),
                DialogOutcome::Cancelled => (None, None),
                DialogOutcome::Done(e) if e.is_empty() => (None, None),
                DialogOutcome::Done(email) => (Some(Dialog::Profile { email, profile: 0 }), None),
            },
            Dialog::Profile { email, profile } => match k.code {
                Key::Esc => (None, None),
                Key::Left | Key::Up => (
                    Some(Dialog::Profile {
                        email,
                        profile: (profile + PROFILES.len() - 1) % PROFILES.len(),
                    }),
                    None,
                ),
                Key::Right | Key::Down => (
                    Some(Dialog::Profile {
                        email,
                        profile: (profile + 1) % PROFILES.len(),
                    }),
                    None,
                ),
                Key::Enter => (
                    None,
                    Some(Msg::Call {
                        label: format!("invite {email} as {}", PROFILES[profile]),
                        request: Request::InviteCreate {
                            invitee: Invitee::User {
                                email,
                                profile: PROFILES[profile].into(),
                            },
                            ttl_s: None,
                        },
                    }),
                ),
                _ => (Some(Dialog::Profile { email, profile }), None),
            },
            Dialog::Token {
                info,
                inverted,
                qr_only,
            } => match k.code {
                Key::Esc | Key::Enter => (None, None),
                Key::Char('i') => (
                    Some(Dialog::Token {
                        info,
                        inverted: !inverted,
                        qr_only,
                    }),
                    None,
                ),
                Key::Char('c') => (
                    Some(Dialog::Token {
                        info,
                        inverted,
                        qr_only: !qr_only,
                    }),
                    None,
                ),
                Key::Char('g') => {
                    let m = self.greet(&info.id);
                    return Some(m);
                }
                _ => (
                    Some(Dialog::Token {
                        info,
                        inverted,
                        qr_only,
                    }),
                    None,
                ),
            },
            Dialog::Cancel(c) => match c.key(k) {
                DialogOutcome::Open => (Some(Dialog::Cancel(c)), None),
                DialogOutcome::Cancelled => (None, None),
                DialogOutcome::Done(m) => (None, Some(m)),
            },
            Dialog::Greet(g) => return self.greet_key(g, k),
        };
        self.dialog = next;
        msg.or(Some(Msg::Redraw))
    }

    fn greet_key(&mut self, mut g: Greeting, k: &KeyEvent) -> Option<Msg> {
        let state = g.state().to_string();
        let mut msg = Some(Msg::Redraw);
        match (state.as_str(), k.code) {
            ("codes", Key::Esc) if !g.sent => {
                msg = Some(Msg::Call {
                    label: format!("abort greeting {}", short(&g.id)),
                    request: Request::GreetAbort { id: g.id.clone() },
                });
                return self.close(msg);
            }
            (_, Key::Esc) => return self.close(msg),
            ("done" | "aborted", Key::Enter) => return self.close(msg),
            ("codes", Key::Enter) if !g.sent => {
                let choices = g.step.as_ref().map(|s| s.claimer_choices.clone());
                let code = if g.typed.trim().is_empty() {
                    choices.and_then(|c| c.get(g.choice).cloned())
                } else {
                    Some(g.typed.trim().to_string())
                };
                if let Some(code) = code {
                    g.sent = true;
                    self.pending += 1;
                    msg = Some(Msg::Call {
                        label: format!("confirm greeting {} with code {code}", short(&g.id)),
                        request: Request::GreetConfirm {
                            id: g.id.clone(),
                            code,
                            timeout_s: STEP_S,
                        },
                    });
                }
            }
            ("codes", Key::Up) => g.choice = g.choice.saturating_sub(1),
            ("codes", Key::Down) => {
                let n = g
                    .step
                    .as_ref()
                    .map(|s| s.claimer_choices.len())
                    .unwrap_or(0);
                g.choice = (g.choice + 1).min(n.saturating_sub(1));
            }
            ("codes", Key::Backspace) => {
                g.typed.pop();
            }
            ("codes", Key::Char(c)) if !g.sent && g.typed.len() < 64 => g.typed.push(c),
            _ => msg = None,
        }
        self.dialog = Some(Dialog::Greet(g));
        msg
    }

    fn close(&mut self, msg: Option<Msg>) -> Option<Msg> {
        self.dialog = None;
        msg
    }

    /// Takes the list, a created invitation (its token is shown), and greeting steps.
    pub fn apply(&mut self, ev: &UiEvent) -> Option<Msg> {
        if let UiEvent::Offline(t) = ev {
            // A greeting step that found no daemon will not be answered.
            self.pending = 0;
            if let Some(Dialog::Greet(g)) = &mut self.dialog {
                g.error = Some(t.replace('\n', " "));
            }
            return None;
        }
        let UiEvent::Reply(r) = ev else { return None };
        match (&r.request, &r.result) {
            (Request::Invitations, Ok(Response::Invitations(list))) => {
                self.invitations = list.clone();
                self.invitations
                    .sort_by_key(|i| (i.state != "live", u64::MAX - i.created_ms));
                self.sel = self.sel.min(self.invitations.len().saturating_sub(1));
                self.error = None;
                Some(Msg::Redraw)
            }
            (Request::Invitations, Err(e)) => {
                self.error = Some(e.clone());
                Some(Msg::Redraw)
            }
            (Request::InviteCreate { .. }, Ok(Response::Invitation(info))) => {
                self.dialog = Some(Dialog::Token {
                    info: info.clone(),
                    inverted: false,
                    qr_only: false,
                });
                Some(Msg::Refresh)
            }
            (Request::InviteCreate { .. } | Request::InviteCancel { .. }, Err(e)) => {
                self.error = Some(e.clone());
                Some(Msg::Redraw)
            }
            (Request::GreetWait { id, .. } | Request::GreetConfirm { id, .. }, result) => {
                self.pending = self.pending.saturating_sub(1);
                let Some(Dialog::Greet(g)) = &mut self.dialog else {
                    return None;
                };
                if g.id != *id {
                    return None;
                }
                match result {
                    Ok(Response::Greeting(step)) => {
                        let again = matches!(step.state.as_str(), "waiting" | "confirmed");
                        g.step = Some(step.clone());
                        g.error = None;
                        if step.state == "done" {
                            return Some(Msg::Refresh);
                        }
                        if again && self.pending == 0 {
                            let id = id.clone();
                            return Some(self.wait(&id));
                        }
                    }
                    Ok(other) => g.error = Some(format!("unexpected answer: {other:?}")),
                    Err(e) => g.error = Some(e.clone()),
                }
                Some(Msg::Redraw)
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
                ("u", "user"),
                ("d", "device"),
                ("Enter", "token"),
                ("g", "greet"),
                ("x", "cancel"),
            ],
        );
        let rows = self.invitations.iter().map(|i| {
            let state = match i.state.as_str() {
                "live" => Span::styled(i.state.clone(), theme::good()),
                "used" => Span::raw(i.state.clone()),
                _ => Span::styled(i.state.clone(), theme::dim()),
            };
            Row::new(vec![
                Span::raw(short(&i.id)),
                Span::raw(i.email.clone().unwrap_or_else(|| "(new device)".into())),
                Span::raw(i.profile.clone().unwrap_or_default()),
                state,
                Span::raw(datetime(i.expires_ms).get(5..16).unwrap_or("").to_string()),
            ])
        });
        let table = Table::new(
            rows,
            [
                Constraint::Length(12),
                Constraint::Min(16),
                Constraint::Length(9),
                Constraint::Length(9),
                Constraint::Length(11),
            ],
        )
        .header(Row::new(["Id", "For", "Profile", "State", "Expires"]).style(theme::header_row()))
        .row_highlight_style(theme::selected())
        .block(pane("Invitations", true));
        let (list, note) = match &self.error {
            Some(_) => {
                let [a, b] =
                    Layout::vertical([Constraint::Min(3), Constraint::Length(2)]).areas(body);
                (a, Some(b))
            }
            None => (body, None),
        };
        let mut st =
            TableState::default().with_selected((!self.invitations.is_empty()).then_some(self.sel));
        f.render_stateful_widget(table, list, &mut st);
        if let (Some(e), Some(n)) = (&self.error, note) {
            f.render_widget(
                Paragraph::new(Span::styled(e.clone(), theme::bad())).wrap(Wrap { trim: true }),
                n,
            );
        }
        match &self.dialog {
            None => {}
            Some(Dialog::Email(i)) => i.draw(f, body),
            Some(Dialog::Profile { email, profile }) => {
                let r = centered(body, 60, 6);
                f.render_widget(Clear, r);
                let lines = vec![
                    Line::from(format!("Invite {email} as:")),
                    Line::from(vec![
                        Span::raw("< "),
                        Span::styled(PROFILES[*profile], theme::selected()),
                        Span::raw(" >"),
                    ]),
                    Line::from(vec![
                        Span::styled(" ←→ ", theme::key()),
                        Span::raw("profile "),
                        Span::styled(" Enter ", theme::key()),
                        Span::raw("create "),
                        Span::styled(" Esc ", theme::key()),
                        Span::raw("cancel"),
                    ]),
                ];
                f.render_widget(Paragraph::new(lines).block(pane("New user", true)), r);
            }
            Some(Dialog::Token {
                info,
                inverted,
                qr_only,
            }) => super::invitation_view::draw_token(f, body, info, *inverted, *qr_only),
            Some(Dialog::Cancel(c)) => c.draw(f, body),
            Some(Dialog::Greet(g)) => super::invitation_view::draw_greeting(f, body, g),
        }
    }
}
