//! Styles. Everything keeps the terminal's default foreground and background, so the UI reads
//! on light and dark terminals alike; emphasis is bold, reverse and underline, and the only
//! colours are named accents (the terminal's own palette) for good and bad news.

use tuirealm::ratatui::style::{Color, Modifier, Style};

/// Plain text.
pub fn text() -> Style {
    Style::default()
}

/// Titles and headings.
pub fn title() -> Style {
    Style::default().add_modifier(Modifier::BOLD)
}

/// Table header row.
pub fn header_row() -> Style {
    Style::default().add_modifier(Modifier::BOLD | Modifier::UNDERLINED)
}

/// The selected row or tab.
pub fn selected() -> Style {
    Style::default().add_modifier(Modifier::REVERSED)
}

/// Less important text.
pub fn dim() -> Style {
    Style::default().add_modifier(Modifier::DIM)
}

/// A key in the help bar.
pub fn key() -> Style {
    Style::default().add_modifier(Modifier::BOLD | Modifier::REVERSED)
}

/// Good news (connected, done).
pub fn good() -> Style {
    Style::default().fg(Color::Green)
}

/// Bad news (errors, revoked, offline).
pub fn bad() -> Style {
    Style::default().fg(Color::Red).add_modifier(Modifier::BOLD)
}

/// Something waiting (in progress, pending).
pub fn busy() -> Style {
    Style::default().fg(Color::Magenta)
}

/// The border of the focused pane.
pub fn focused_border() -> Style {
    Style::default().add_modifier(Modifier::BOLD)
}
