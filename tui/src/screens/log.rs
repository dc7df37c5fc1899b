//! Screen 6: the event log: what the TUI asked the daemon to do, what came back, errors, and
//! when the daemon went away or came back. Newest last; at most [`MAX_LINES`] are kept.

use std::collections::VecDeque;

use cloison_node::control::Response;
use tuirealm::event::{Key, KeyEvent};
use tuirealm::ratatui::Frame;
use tuirealm::ratatui::layout::Rect;
use tuirealm::ratatui::text::{Line, Span};
use tuirealm::ratatui::widgets::{Paragraph, Wrap};

use crate::event::{Msg, UiEvent};
use crate::theme;
use crate::widgets::{clock, global_key, help_bar, now_ms, pane, split_help};

/// Lines kept.
pub const MAX_LINES: usize = 1000;

/// How a line reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Level {
    /// Something happened.
    Info,
    /// Something succeeded.
    Ok,
    /// Something failed.
    Err,
}

/// One line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// Unix ms.
    pub at_ms: u64,
    /// Its level.
    pub level: Level,
    /// The text.
    pub text: String,
}

/// The event log's model.
#[derive(Debug, Default)]
pub struct Log {
    /// The lines, oldest first.
    pub lines: VecDeque<Entry>,
    /// Lines scrolled back from the end.
    pub back: usize,
    /// Whether the daemon answered last time (None before the first answer).
    pub online: Option<bool>,
    /// The last refresh error, logged once until it changes.
    pub last_poll_error: Option<String>,
}

screen_component!(Log);

impl Log {
    /// Adds a line.
    pub fn push(&mut self, at_ms: u64, level: Level, text: impl Into<String>) {
        if self.lines.len() == MAX_LINES {
            self.lines.pop_front();
        }
        self.lines.push_back(Entry {
            at_ms,
            level,
            text: text.into(),
        });
    }

    /// Keys: arrows scroll, `c` clears.
    pub fn key(&mut self, k: &KeyEvent) -> Option<Msg> {
        match k.code {
            Key::Up => self.back = (self.back + 1).min(self.lines.len().saturating_sub(1)),
            Key::Down => self.back = self.back.saturating_sub(1),
            Key::PageUp => self.back = (self.back + 10).min(self.lines.len().saturating_sub(1)),
            Key::PageDown => self.back = self.back.saturating_sub(10),
            Key::End => self.back = 0,
            Key::Char('c') => {
                self.lines.clear();
                self.back = 0;
            }
            _ => return global_key(k),
        }
        Some(Msg::Redraw)
    }

    /// Logs an event (at the current time).
    pub fn apply(&mut self, ev: &UiEvent) -> Option<Msg> {
        self.record(now_ms(), ev)
    }

    /// Logs an event at `at_ms`.
    pub fn record(&mut self, at_ms: u64, ev: &UiEvent) -> Option<Msg> {
        match ev {
            UiEvent::Started(label) => self.push(at_ms, Level::Info, format!("→ {label}")),
            UiEvent::Offline(t) => {
                if self.online == Some(false) {
                    return None;
                }
                self.online = Some(false);
                self.push(at_ms, Level::Err, t.replace('\n', " "));
            }
            UiEvent::Reply(r) => match (r.action(), &r.result) {
                (Some(label), Ok(resp)) => {
                    self.push(at_ms, Level::Ok, format!("✓ {label}{}", summary(resp)))
                }
                (Some(label), Err(e)) => self.push(at_ms, Level::Err, format!("✗ {label}: {e}")),
                (None, Ok(_)) => {
                    if self.online != Some(true) {
                        self.online = Some(true);
                        self.push(at_ms, Level::Ok, "connected to the daemon");
                    }
                    self.last_poll_error = None;
                    return None;
                }
                (None, Err(e)) => {
                    if self.last_poll_error.as_ref() == Some(e) {
                        return None;
                    }
                    self.last_poll_error = Some(e.clone());
                    self.push(at_ms, Level::Err, format!("refresh failed: {e}"));
                }
            },
            UiEvent::Progress(_) => return None,
        }
        Some(Msg::Redraw)
    }

    /// Draws the screen.
    pub fn draw(&mut self, f: &mut Frame<'_>, area: Rect) {
        let (body, help) = split_help(area);
        help_bar(f, help, &[("↑↓", "scroll"), ("c", "clear")]);
        let height = body.height.saturating_sub(2) as usize;
        let end = self.lines.len().saturating_sub(self.back);
        let start = end.saturating_sub(height);
        let lines: Vec<Line<'_>> = self
            .lines
            .range(start..end)
            .map(|e| {
                let style = match e.level {
                    Level::Info => theme::text(),
                    Level::Ok => theme::good(),
                    Level::Err => theme::bad(),
                };
                Line::from(vec![
                    Span::styled(format!("{} ", clock(e.at_ms)), theme::dim()),
                    Span::styled(e.text.clone(), style),
                ])
            })
            .collect();
        let title = if self.back > 0 {
            format!("Event log (UTC, {} lines back)", self.back)
        } else {
            "Event log (UTC)".into()
        };
        f.render_widget(
            Paragraph::new(lines)
                .wrap(Wrap { trim: false })
                .block(pane(&title, true)),
            body,
        );
    }
}

/// A short description of a response, after the action's label.
fn summary(r: &Response) -> String {
    match r {
        Response::Message(m) => format!(": {m}"),
        Response::Workspace(w) => format!(": {} ({})", w.name, crate::widgets::short(&w.id)),
        Response::Bundle(b) => format!(
            ": {} entries, {} envelopes, {} blocks, {} refused",
            b.entries, b.envelopes, b.blocks, b.refused
        ),
        _ => String::new(),
    }
}
