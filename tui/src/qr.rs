//! A QR code as lines of half-block characters (two modules per character cell, the same
//! layout as qrcode's `Dense1x2` renderer), for a Paragraph. The terminal draws `█` in its
//! foreground colour; by default the code's light modules are drawn as blocks, which gives the
//! right polarity on a dark terminal; `inverted` draws the dark modules instead, for a light
//! terminal. The quiet zone is [`MARGIN`] modules (the standard asks 4; phone scanners read 2,
//! and it keeps a token's code within a small terminal).

use qrcode::{Color, EcLevel, QrCode};

/// Modules of quiet zone on each side.
pub const MARGIN: usize = 2;

/// The QR code of `data`, one string per terminal row, or why it cannot be made.
pub fn lines(data: &str, inverted: bool) -> Result<Vec<String>, String> {
    let code = QrCode::with_error_correction_level(data.as_bytes(), EcLevel::L)
        .map_err(|e| format!("no QR code: {e}"))?;
    let w = code.width();
    let colors = code.to_colors();
    let size = w + 2 * MARGIN;
    // Whether the module at (x, y) of the framed code is drawn as a block.
    let drawn = |x: usize, y: usize| -> bool {
        let inside = (MARGIN..MARGIN + w).contains(&x) && (MARGIN..MARGIN + w).contains(&y);
        let dark = inside && colors[(y - MARGIN) * w + (x - MARGIN)] == Color::Dark;
        dark == inverted
    };
    let mut rows = Vec::with_capacity(size.div_ceil(2));
    for y in (0..size).step_by(2) {
        let row = (0..size)
            .map(|x| {
                let top = drawn(x, y);
                let bottom = y + 1 < size && drawn(x, y + 1);
                match (top, bottom) {
                    (true, true) => '█',
                    (true, false) => '▀',
                    (false, true) => '▄',
                    (false, false) => ' ',
                }
            })
            .collect();
        rows.push(row);
    }
    Ok(rows)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_a_square_of_half_blocks() {
        let l = lines("cloison", false).unwrap_or_default();
        // Version 1 is 21 modules, plus the margin on each side: 25 columns, 13 rows.
        assert_eq!(l.len(), 13);
        assert!(l.iter().all(|r| r.chars().count() == 25));
        // The margin is drawn (light modules are blocks), the top-left finder's corner is not.
        assert!(l[0].chars().all(|c| c == '█'));
        assert_eq!(l[1].chars().nth(MARGIN), Some(' '));
        assert_ne!(l, lines("cloison", true).unwrap_or_default());
    }

    /// Reads the half blocks back into modules: they are exactly the code's, framed by a light
    /// margin (and the inverse when inverted).
    #[test]
    fn the_half_blocks_are_the_modules() {
        let data = "5KSSDcRwJL4mTfyVwC6dyMcgJbitYZJ8cQm1QrcSp8MwXJGnTiqFanXccUzx8dkvGPzZE6mnnqoPcJ";
        let Ok(code) = QrCode::with_error_correction_level(data.as_bytes(), EcLevel::L) else {
            panic!("no code")
        };
        let (w, colors) = (code.width(), code.to_colors());
        for inverted in [false, true] {
            let rows = lines(data, inverted).unwrap_or_default();
            let size = w + 2 * MARGIN;
            let mut drawn = vec![vec![false; size]; rows.len() * 2];
            for (r, row) in rows.iter().enumerate() {
                for (x, c) in row.chars().enumerate() {
                    drawn[2 * r][x] = matches!(c, '█' | '▀');
                    drawn[2 * r + 1][x] = matches!(c, '█' | '▄');
                }
            }
            for (y, row) in drawn.iter().enumerate().take(size) {
                for (x, &d) in row.iter().enumerate() {
                    let inside =
                        (MARGIN..MARGIN + w).contains(&x) && (MARGIN..MARGIN + w).contains(&y);
                    let dark = inside && colors[(y - MARGIN) * w + x - MARGIN] == Color::Dark;
                    assert_eq!(
                        d,
                        dark == inverted,
                        "module ({x}, {y}), inverted {inverted}"
                    );
                }
            }
        }
    }
}
