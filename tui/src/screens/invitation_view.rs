//! Drawing of the invitations screen's dialogs: a token as text and QR code, and a greeting in
//! its steps. Pure rendering of the state kept by [`super::invitations`].

use cloison_node::control::enrol::InvitationInfo;
use tuirealm::ratatui::Frame;
use tuirealm::ratatui::layout::{Constraint, Layout, Rect};
use tuirealm::ratatui::text::{Line, Span};
use tuirealm::ratatui::widgets::{Clear, Paragraph, Wrap};

use super::invitations::Greeting;
use crate::theme;
use crate::widgets::{centered, datetime, pane, short};

pub(super) fn draw_token(
    f: &mut Frame<'_>,
    area: Rect,
    info: &InvitationInfo,
    inverted: bool,
    qr_only: bool,
) {
    f.render_widget(Clear, area);
    let who = info.email.clone().unwrap_or_else(|| "a new device".into());
    let token = info.token.clone().unwrap_or_default();
    let inner_w = area.width.saturating_sub(2).max(1) as usize;
    let chars: Vec<char> = token.chars().collect();
    let token_rows = chars.len().div_ceil(inner_w).max(1) as u16;
    let head_h = if qr_only { 0 } else { token_rows + 4 };
    let [head, qr_area, keys] = Layout::vertical([
        Constraint::Length(head_h),
        Constraint::Min(1),
        Constraint::Length(1),
    ])
    .areas(area);
    if !qr_only {
        let mut lines = vec![Line::from(vec![
            Span::styled(format!("Token for {who}"), theme::title()),
            Span::raw(format!(" (expires {} UTC):", datetime(info.expires_ms))),
        ])];
        // Split at the pane's width by hand: a copy from the terminal gets the token whole.
        for chunk in chars.chunks(inner_w) {
            lines.push(Line::from(chunk.iter().collect::<String>()));
        }
        lines.push(Line::from(Span::styled(
            "The newcomer runs: cloison join TOKEN --user NAME --device LABEL",
            theme::dim(),
        )));
        f.render_widget(Paragraph::new(lines).block(pane("Invitation", true)), head);
    }
    match crate::qr::lines(&token, inverted) {
        Ok(rows) => {
            let w = rows.first().map(|r| r.chars().count()).unwrap_or(0) as u16;
            let h = rows.len() as u16;
            if w <= qr_area.width && h <= qr_area.height {
                let r = centered(qr_area, w, h);
                f.render_widget(
                    Paragraph::new(rows.into_iter().map(Line::from).collect::<Vec<_>>()),
                    r,
                );
            } else {
                let hint = if qr_only {
                    format!("The QR code needs {w}×{h} cells: enlarge the terminal to see it.")
                } else {
                    format!("The QR code needs {w}×{h} cells: press c to show it alone.")
                };
                f.render_widget(
                    Paragraph::new(Span::styled(hint, theme::dim())).wrap(Wrap { trim: true }),
                    qr_area,
                );
            }
        }
        Err(e) => f.render_widget(Paragraph::new(Span::styled(e, theme::bad())), qr_area),
    }
    f.render_widget(
        Paragraph::new(Line::from(vec![
            Span::styled(" g ", theme::key()),
            Span::raw("greet "),
            Span::styled(" c ", theme::key()),
            Span::raw(if qr_only {
                "token text "
            } else {
                "QR code only "
            }),
            Span::styled(" i ", theme::key()),
            Span::raw("invert QR "),
            Span::styled(" Esc ", theme::key()),
            Span::raw("close"),
        ])),
        keys,
    );
}

/// "carol (device "laptop")", or "A new device "laptop"" for a device invitation (whose claimer
/// has no name of its own).
fn claimer_text(c: &cloison_node::control::enrol::ClaimerInfo) -> String {
    if c.name.is_empty() {
        format!("A new device \"{}\"", c.device_label)
    } else {
        format!("{} (device \"{}\")", c.name, c.device_label)
    }
}

pub(super) fn draw_greeting(f: &mut Frame<'_>, area: Rect, g: &Greeting) {
    let r = centered(area, 70, 16);
    f.render_widget(Clear, r);
    let mut lines = Vec::new();
    let step = g.step.as_ref();
    match g.state() {
        "waiting" => {
            lines.push(Line::from(format!(
                "Waiting for the newcomer to use invitation {}...",
                short(&g.id)
            )));
            lines.push(Line::from(Span::styled(
                "They run: cloison join TOKEN --user NAME --device LABEL",
                theme::dim(),
            )));
        }
        "codes" => {
            if let Some(c) = step.and_then(|s| s.claimer.as_ref()) {
                lines.push(Line::from(format!("{} answered.", claimer_text(c))));
            }
            lines.push(Line::from(vec![
                Span::raw("Read them your code:  "),
                Span::styled(
                    step.and_then(|s| s.greeter_code.clone())
                        .unwrap_or_default(),
                    theme::key(),
                ),
            ]));
            lines.push(Line::from(""));
            lines.push(Line::from(
                "Their code (type it, or pick it with ↑↓), then Enter:",
            ));
            lines.push(Line::from(vec![
                Span::styled("> ", theme::title()),
                Span::raw(g.typed.clone()),
                Span::styled(" ", theme::selected()),
            ]));
            for (i, c) in step
                .map(|s| s.claimer_choices.as_slice())
                .unwrap_or(&[])
                .iter()
                .enumerate()
            {
                let style = if i == g.choice && g.typed.is_empty() {
                    theme::selected()
                } else {
                    theme::text()
                };
                lines.push(Line::from(Span::styled(format!("  {c}  "), style)));
            }
            if g.sent {
                lines.push(Line::from(Span::styled("checking...", theme::busy())));
            }
        }
        "confirmed" => lines.push(Line::from(Span::styled(
            "Codes match on our side; waiting for the newcomer to confirm theirs...",
            theme::busy(),
        ))),
        "done" => {
            let who = step
                .and_then(|s| s.claimer.as_ref())
                .map(claimer_text)
                .unwrap_or_else(|| "The newcomer".into());
            lines.push(Line::from(Span::styled(
                format!("✓ {who} joined the organization."),
                theme::good(),
            )));
        }
        other => lines.push(Line::from(Span::styled(
            format!(
                "✗ greeting {other}: {}",
                step.and_then(|s| s.reason.clone()).unwrap_or_default()
            ),
            theme::bad(),
        ))),
    }
    if let Some(e) = &g.error {
        lines.push(Line::from(""));
        lines.push(Line::from(Span::styled(e.clone(), theme::bad())));
    }
    lines.push(Line::from(""));
    lines.push(Line::from(match g.state() {
        "codes" if !g.sent => vec![
            Span::styled(" Enter ", theme::key()),
            Span::raw("confirm "),
            Span::styled(" Esc ", theme::key()),
            Span::raw("abort (burns the invitation)"),
        ],
        _ => vec![Span::styled(" Esc ", theme::key()), Span::raw("close")],
    }));
    f.render_widget(
        Paragraph::new(lines)
            .wrap(Wrap { trim: false })
            .block(pane(&format!("Greeting {}", short(&g.id)), true)),
        r,
    );
}
