//! A QR code as lines of half-block characters (two modules per character cell), for a
//! Paragraph. The terminal draws `█` in its foreground colour; by default the code's light
//! modules are drawn as blocks, which gives the right polarity on a dark terminal; `inverted`
//! draws the dark modules instead, for a light terminal.

use qrcode::render::unicode::Dense1x2;
use qrcode::{EcLevel, QrCode};

/// The QR code of `data`, one string per terminal row, or why it cannot be made.
pub fn lines(data: &str, inverted: bool) -> Result<Vec<String>, String> {
    let code = QrCode::with_error_correction_level(data.as_bytes(), EcLevel::L)
        .map_err(|e| format!("no QR code: {e}"))?;
    let (dark, light) = if inverted {
        (Dense1x2::Dark, Dense1x2::Light)
    } else {
        (Dense1x2::Light, Dense1x2::Dark)
    };
    let s = code
        .render::<Dense1x2>()
        .dark_color(dark)
        .light_color(light)
        .quiet_zone(true)
        .build();
    Ok(s.lines().map(String::from).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_a_square_of_half_blocks() {
        let l = lines("cloison", false).unwrap_or_default();
        // Version 1 is 21 modules, plus a quiet zone of 4 on each side: 29 columns, 15 rows.
        assert_eq!(l.len(), 15);
        assert!(l.iter().all(|r| r.chars().count() == 29));
        assert_ne!(l, lines("cloison", true).unwrap_or_default());
    }
}
