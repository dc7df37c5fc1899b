//! Pieces shared by the screens: the help bar, the confirmation dialog, a one-line text input,
//! global keys, and formatting of ids, sizes and times.
//!
//! Invariant: every screen ends with [`help_bar`], which always lists the global keys.

use tuirealm::event::{Key, KeyEvent, KeyModifiers};
use tuirealm::ratatui::Frame;
use tuirealm::ratatui::layout::{Constraint, Layout, Rect};
use tuirealm::ratatui::text::{Line, Span};
use tuirealm::ratatui::widgets::{Block, Borders, Clear, Paragraph, Wrap};

use crate::event::{Msg, Tab};
use crate::theme;

/// Splits a screen's area into its body and its help line.
pub fn split_help(area: Rect) -> (Rect, Rect) {
    let [body, help] = Layout::vertical([Constraint::Min(1), Constraint::Length(1)]).areas(area);
    (body, help)
}

/// Draws the help bar: the screen's keys, then the global ones.
pub fn help_bar(f: &mut Frame<'_>, area: Rect, keys: &[(&str, &str)]) {
    let mut spans = Vec::new();
    let globals: [(&str, &str); 2] = [("Tab", "screens"), ("q", "quit")];
    for (k, what) in keys.iter().chain(globals.iter()) {
        spans.push(Span::styled(format!(" {k} "), theme::key()));
        spans.push(Span::styled(format!("{what} "), theme::text()));
    }
    f.render_widget(Paragraph::new(Line::from(spans)), area);
}

/// The keys every screen understands when it is not editing text: `Tab`/`Shift-Tab` and the
/// digits `1`..`7` move between screens, `q` and `Ctrl-C` quit, `r` refreshes.
pub fn global_key(k: &KeyEvent) -> Option<Msg> {
    if let Some(m) = ctrl_c(k) {
        return Some(m);
    }
    match k.code {
        Key::Tab => Some(Msg::Next),
        Key::BackTab => Some(Msg::Prev),
        Key::Char('q') => Some(Msg::Quit),
        Key::Char('r') => Some(Msg::Refresh),
        Key::Char(c @ '1'..='7') => Some(Msg::Goto(Tab::at(c as usize - '1' as usize))),
        Key::Function(n @ 1..=7) => Some(Msg::Goto(Tab::at(usize::from(n) - 1))),
        _ => None,
    }
}

/// `Ctrl-C` quits, even while editing.
pub fn ctrl_c(k: &KeyEvent) -> Option<Msg> {
    (k.code == Key::Char('c') && k.modifiers.contains(KeyModifiers::CONTROL)).then_some(Msg::Quit)
}

/// A rectangle of `w`×`h` centred in `area` (clipped to it).
pub fn centered(area: Rect, w: u16, h: u16) -> Rect {
    let w = w.min(area.width);
    let h = h.min(area.height);
    Rect {
        x: area.x + (area.width - w) / 2,
        y: area.y + (area.height - h) / 2,
        width: w,
        height: h,
    }
}

/// A yes/no question guarding a destructive action.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Confirm {
    /// The question.
    pub question: String,
    /// What "yes" sends.
    pub on_yes: Msg,
}

/// What a key did to a dialog.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DialogOutcome<T> {
    /// Still open.
    Open,
    /// Closed without effect.
    Cancelled,
    /// Closed with a result.
    Done(T),
}

impl Confirm {
    /// `y` or `Enter` confirms, `n` or `Esc` cancels.
    pub fn key(&self, k: &KeyEvent) -> DialogOutcome<Msg> {
        match k.code {
            Key::Char('y') | Key::Char('Y') | Key::Enter => {
                DialogOutcome::Done(self.on_yes.clone())
            }
            Key::Char('n') | Key::Char('N') | Key::Esc => DialogOutcome::Cancelled,
            _ => DialogOutcome::Open,
        }
    }

    /// Draws the dialog over `area`.
    pub fn draw(&self, f: &mut Frame<'_>, area: Rect) {
        let r = centered(area, 60, 7);
        f.render_widget(Clear, r);
        let text = vec![
            Line::from(self.question.clone()),
            Line::from(""),
            Line::from(vec![
                Span::styled(" y ", theme::key()),
                Span::raw(" yes   "),
                Span::styled(" n ", theme::key()),
                Span::raw(" no"),
            ]),
        ];
        f.render_widget(
            Paragraph::new(text).wrap(Wrap { trim: true }).block(
                Block::default()
                    .borders(Borders::ALL)
                    .title(Span::styled(" Confirm ", theme::bad())),
            ),
            r,
        );
    }
}

/// A one-line text input (append and delete at the end).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LineInput {
    /// What it asks for.
    pub label: String,
    /// The text typed so far.
    pub value: String,
}

/// Longest text accepted by a [`LineInput`].
pub const MAX_INPUT: usize = 1024;

impl LineInput {
    /// An empty input asking for `label`.
    pub fn new(label: &str) -> LineInput {
        LineInput {
            label: label.into(),
            value: String::new(),
        }
    }

    /// An input with a starting value.
    pub fn with_value(label: &str, value: &str) -> LineInput {
        LineInput {
            label: label.into(),
            value: value.into(),
        }
    }

    /// Typing edits; `Enter` gives the text, `Esc` cancels.
    pub fn key(&mut self, k: &KeyEvent) -> DialogOutcome<String> {
        match k.code {
            Key::Enter => DialogOutcome::Done(self.value.trim().to_string()),
            Key::Esc => DialogOutcome::Cancelled,
            Key::Backspace => {
                self.value.pop();
                DialogOutcome::Open
            }
            Key::Char(c)
                if !k.modifiers.contains(KeyModifiers::CONTROL) && self.value.len() < MAX_INPUT =>
            {
                self.value.push(c);
                DialogOutcome::Open
            }
            _ => DialogOutcome::Open,
        }
    }

    /// Draws the input as a small dialog over `area`.
    pub fn draw(&self, f: &mut Frame<'_>, area: Rect) {
        let r = centered(area, 64, 5);
        f.render_widget(Clear, r);
        let text = vec![
            Line::from(vec![
                Span::raw(self.value.clone()),
                Span::styled(" ", theme::selected()),
            ]),
            Line::from(vec![
                Span::styled(" Enter ", theme::key()),
                Span::raw(" ok  "),
                Span::styled(" Esc ", theme::key()),
                Span::raw(" cancel"),
            ]),
        ];
        f.render_widget(
            Paragraph::new(text).block(
                Block::default()
                    .borders(Borders::ALL)
                    .title(Span::styled(format!(" {} ", self.label), theme::title())),
            ),
            r,
        );
    }
}

/// A block with a title; bold border when focused.
pub fn pane(title: &str, focused: bool) -> Block<'static> {
    let b = Block::default()
        .borders(Borders::ALL)
        .title(Span::styled(format!(" {title} "), theme::title()));
    if focused {
        b.border_style(theme::focused_border())
            .border_type(tuirealm::ratatui::widgets::BorderType::Thick)
    } else {
        b
    }
}

/// A `label  value` line, the label bold and padded to 12 columns.
pub fn kv(label: &str, value: impl Into<String>) -> Line<'static> {
    Line::from(vec![
        Span::styled(format!("{label:<12}"), theme::title()),
        Span::raw(value.into()),
    ])
}

/// The first 12 hex digits of an id.
pub fn short(id: &str) -> String {
    id.chars().take(12).collect()
}

/// A size in bytes, human-readable (powers of 1024).
pub fn bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = n as f64;
    let mut u = 0;
    while v >= 1024.0 && u < UNITS.len() - 1 {
        v /= 1024.0;
        u += 1;
    }
    if u == 0 {
        format!("{n} B")
    } else {
        format!("{v:.1} {}", UNITS[u])
    }
}

/// A unix time in ms as `YYYY-MM-DD HH:MM:SS` UTC.
pub fn datetime(ms: u64) -> String {
    let secs = ms / 1000;
    let (days, rem) = (secs / 86_400, secs % 86_400);
    let (y, m, d) = civil_from_days(days as i64);
    format!(
        "{y:04}-{m:02}-{d:02} {:02}:{:02}:{:02}",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

/// A unix time in ms as `HH:MM:SS` UTC.
pub fn clock(ms: u64) -> String {
    let rem = ms / 1000 % 86_400;
    format!("{:02}:{:02}:{:02}", rem / 3600, rem % 3600 / 60, rem % 60)
}

/// Days since 1970-01-01 to a civil date (Howard Hinnant's algorithm).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

/// Now, in unix ms.
pub fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// Moves a selection by `delta` within `len` items (clamped).
pub fn step(sel: usize, len: usize, delta: isize) -> usize {
    if len == 0 {
        return 0;
    }
    let s = sel as isize + delta;
    s.clamp(0, len as isize - 1) as usize
}

/// Up/Down/Home/End/PageUp/PageDown as a selection move, if `k` is one.
pub fn nav(k: &KeyEvent, sel: usize, len: usize) -> Option<usize> {
    let d = match k.code {
        Key::Up | Key::Char('k') => -1,
        Key::Down | Key::Char('j') => 1,
        Key::PageUp => -10,
        Key::PageDown => 10,
        Key::Home => -(len as isize),
        Key::End => len as isize,
        _ => return None,
    };
    Some(step(sel, len, d))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_times_and_sizes() {
        assert_eq!(datetime(0), "1970-01-01 00:00:00");
        assert_eq!(datetime(1_795_874_400_000), "2026-11-28 14:00:00");
        assert_eq!(clock(1_795_874_461_000), "14:01:01");
        assert_eq!(bytes(512), "512 B");
        assert_eq!(bytes(1536), "1.5 KiB");
        assert_eq!(step(0, 3, -1), 0);
        assert_eq!(step(1, 3, 5), 2);
        assert_eq!(step(0, 0, 1), 0);
    }

    #[test]
    fn input_edits_and_submits() {
        let mut i = LineInput::new("Name");
        for c in "ab".chars() {
            i.key(&KeyEvent::new(Key::Char(c), KeyModifiers::NONE));
        }
        i.key(&KeyEvent::new(Key::Backspace, KeyModifiers::NONE));
        assert_eq!(
            i.key(&KeyEvent::new(Key::Enter, KeyModifiers::NONE)),
            DialogOutcome::Done("a".into())
        );
    }
}
