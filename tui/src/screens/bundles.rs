//! Screen 5: sneakernet bundles. Export (to a file, optionally only some workspaces, optionally
//! only what a receipt lacks), import, inspect, and write a receipt; the report of the last
//! operation and the progress of a running one are shown.
//!
//! Paths typed here are resolved against the directory the TUI started in, since the daemon
//! wants absolute paths.

use std::path::{Path, PathBuf};

use cloison_node::control::{Request, Response};
use cloison_node::node::{BundleReport, Progress};
use tuirealm::event::{Key, KeyEvent};
use tuirealm::ratatui::Frame;
use tuirealm::ratatui::layout::{Constraint, Layout, Rect};
use tuirealm::ratatui::text::{Line, Span};
use tuirealm::ratatui::widgets::{Gauge, Paragraph, Wrap};

use crate::event::{Msg, UiEvent};
use crate::theme;
use crate::widgets::{
    DialogOutcome, LineInput, bytes, ctrl_c, datetime, global_key, help_bar, kv, nav, pane, short,
    split_help,
};

/// The form's fields.
pub const FIELDS: [&str; 3] = ["Bundle file", "Workspaces", "Receipt"];

/// What the last operation gave.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// A bundle exported, imported or inspected.
    Report(BundleReport),
    /// A message (a receipt written).
    Message(String),
    /// An error.
    Failed(String),
}

/// The bundles screen's model.
#[derive(Debug)]
pub struct Bundles {
    /// Relative paths are resolved against this.
    pub base: PathBuf,
    /// Field values: bundle file, workspaces (comma-separated, empty = all), receipt.
    pub values: [String; 3],
    /// Selected field.
    pub field: usize,
    /// The field being edited.
    pub editing: Option<LineInput>,
    /// The running operation's label.
    pub busy: Option<String>,
    /// Its progress.
    pub progress: Option<Progress>,
    /// The last operation: its label and outcome.
    pub last: Option<(String, Outcome)>,
}

screen_component!(Bundles);

impl Bundles {
    /// A form whose relative paths resolve against `base`.
    pub fn new(base: PathBuf) -> Bundles {
        Bundles {
            base,
            values: Default::default(),
            field: 0,
            editing: None,
            busy: None,
            progress: None,
            last: None,
        }
    }

    fn path(&self, i: usize) -> Option<PathBuf> {
        let v = self.values[i].trim();
        (!v.is_empty()).then(|| absolute(&self.base, v))
    }

    fn workspaces(&self) -> Vec<String> {
        self.values[1]
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(String::from)
            .collect()
    }

    fn missing(&mut self, what: &str) -> Option<Msg> {
        self.last = Some((
            what.into(),
            Outcome::Failed(format!("{what}: fill in the field first")),
        ));
        Some(Msg::Redraw)
    }

    /// The request for an action key, if its fields are filled in.
    fn action(&mut self, c: char) -> Option<Msg> {
        let (label, request) = match c {
            'e' => {
                let Some(out) = self.path(0) else {
                    return self.missing("export");
                };
                (
                    format!("bundle export to {}", out.display()),
                    Request::BundleExport {
                        out,
                        workspaces: self.workspaces(),
                        receipt: self.path(2),
                    },
                )
            }
            'i' => {
                let Some(file) = self.path(0) else {
                    return self.missing("import");
                };
                (
                    format!("bundle import of {}", file.display()),
                    Request::BundleImport { file },
                )
            }
            'v' => {
                let Some(file) = self.path(0) else {
                    return self.missing("inspect");
                };
                (
                    format!("bundle inspect of {}", file.display()),
                    Request::BundleInspect { file },
                )
            }
            'w' => {
                let Some(out) = self.path(2) else {
                    return self.missing("receipt");
                };
                (
                    format!("bundle receipt to {}", out.display()),
                    Request::BundleReceipt { out },
                )
            }
            _ => return None,
        };
        if self.busy.is_some() {
            return None;
        }
        self.busy = Some(label.clone());
        self.progress = None;
        Some(Msg::Call { label, request })
    }

    /// Keys: arrows pick a field, `Enter` edits it; `e` export, `i` import, `v` inspect, `w`
    /// write a receipt.
    pub fn key(&mut self, k: &KeyEvent) -> Option<Msg> {
        if let Some(input) = &mut self.editing {
            return match input.key(k) {
                DialogOutcome::Open => ctrl_c(k).or(Some(Msg::Redraw)),
                DialogOutcome::Cancelled => {
                    self.editing = None;
                    Some(Msg::Redraw)
                }
                DialogOutcome::Done(v) => {
                    self.values[self.field] = v;
                    self.editing = None;
                    Some(Msg::Redraw)
                }
            };
        }
        if let Some(s) = nav(k, self.field, FIELDS.len()) {
            self.field = s;
            return Some(Msg::Redraw);
        }
        match k.code {
            Key::Enter => {
                self.editing = Some(LineInput::with_value(
                    FIELDS[self.field],
                    &self.values[self.field],
                ));
                Some(Msg::Redraw)
            }
            Key::Char(c @ ('e' | 'i' | 'v' | 'w')) => self.action(c),
            _ => global_key(k),
        }
    }

    /// Takes progress and the replies to bundle requests.
    pub fn apply(&mut self, ev: &UiEvent) -> Option<Msg> {
        match ev {
            UiEvent::Progress(p) if self.busy.is_some() => self.progress = Some(*p),
            UiEvent::Reply(r) => {
                let label = r.action()?;
                if !matches!(
                    r.request,
                    Request::BundleExport { .. }
                        | Request::BundleImport { .. }
                        | Request::BundleInspect { .. }
                        | Request::BundleReceipt { .. }
                ) {
                    return None;
                }
                let outcome = match &r.result {
                    Ok(Response::Bundle(b)) => Outcome::Report(b.clone()),
                    Ok(Response::Message(m)) => Outcome::Message(m.clone()),
                    Ok(other) => Outcome::Message(format!("{other:?}")),
                    Err(e) => Outcome::Failed(e.clone()),
                };
                self.busy = None;
                self.progress = None;
                self.last = Some((label.to_string(), outcome));
            }
            _ => return None,
        }
        Some(Msg::Redraw)
    }

    /// Draws the screen.
    pub fn draw(&mut self, f: &mut Frame<'_>, area: Rect) {
        let (body, help) = split_help(area);
        help_bar(
            f,
            help,
            &[
                ("Enter", "edit"),
                ("e", "export"),
                ("i", "import"),
                ("v", "inspect"),
                ("w", "receipt"),
            ],
        );
        let [form, prog, report] = Layout::vertical([
            Constraint::Length(6),
            Constraint::Length(1),
            Constraint::Min(3),
        ])
        .areas(body);
        let hints = [
            "path of the bundle to write or read",
            "names, comma-separated; empty = all",
            "optional: export only what it lacks",
        ];
        let mut lines = Vec::new();
        for (i, name) in FIELDS.iter().enumerate() {
            let style = if i == self.field {
                theme::selected()
            } else {
                theme::title()
            };
            let value = if self.values[i].is_empty() {
                Span::styled(hints[i], theme::dim())
            } else {
                Span::raw(self.values[i].clone())
            };
            lines.push(Line::from(vec![
                Span::styled(format!("{name:<12}"), style),
                Span::raw(" "),
                value,
            ]));
        }
        f.render_widget(Paragraph::new(lines).block(pane("Bundle", true)), form);
        if let Some(label) = &self.busy {
            match self.progress.filter(|p| p.total_bytes > 0) {
                Some(p) => {
                    let ratio = (p.bytes as f64 / p.total_bytes as f64).clamp(0.0, 1.0);
                    f.render_widget(
                        Gauge::default()
                            .ratio(ratio)
                            .gauge_style(theme::busy())
                            .label(format!("{} / {}", bytes(p.bytes), bytes(p.total_bytes))),
                        prog,
                    );
                }
                None => f.render_widget(
                    Paragraph::new(Span::styled(format!("{label}..."), theme::busy())),
                    prog,
                ),
            }
        }
        let lines = match &self.last {
            None => vec![Line::from(Span::styled(
                "No bundle operation yet.",
                theme::dim(),
            ))],
            Some((label, outcome)) => report_lines(label, outcome),
        };
        f.render_widget(
            Paragraph::new(lines)
                .wrap(Wrap { trim: true })
                .block(pane("Last report", false)),
            report,
        );
        if let Some(i) = &self.editing {
            i.draw(f, body);
        }
    }
}

fn report_lines(label: &str, outcome: &Outcome) -> Vec<Line<'static>> {
    let mut lines = vec![Line::from(Span::styled(label.to_string(), theme::title()))];
    match outcome {
        Outcome::Failed(e) => lines.push(Line::from(Span::styled(e.clone(), theme::bad()))),
        Outcome::Message(m) => lines.push(Line::from(Span::styled(m.clone(), theme::good()))),
        Outcome::Report(b) => {
            if label.starts_with("bundle import") {
                lines.push(Line::from(Span::styled(
                    "(counts are what was new to this device)",
                    theme::dim(),
                )));
            }
            lines.push(kv("Log entries", b.entries.to_string()));
            lines.push(kv("Envelopes", b.envelopes.to_string()));
            lines.push(kv("Blocks", b.blocks.to_string()));
            if b.refused > 0 {
                lines.push(Line::from(vec![
                    Span::styled(format!("{:<12}", "Refused"), theme::title()),
                    Span::styled(b.refused.to_string(), theme::bad()),
                ]));
            }
            lines.push(kv("Size", bytes(b.bytes)));
            lines.push(kv(
                "Created",
                format!("{} UTC by {}", datetime(b.created_ms), short(&b.creator)),
            ));
            lines.push(kv(
                "For receipt",
                if b.for_receipt { "yes" } else { "no (full)" },
            ));
        }
    }
    lines
}

fn absolute(base: &Path, p: &str) -> PathBuf {
    let p = Path::new(p);
    if p.is_absolute() {
        p.to_path_buf()
    } else {
        base.join(p)
    }
}
