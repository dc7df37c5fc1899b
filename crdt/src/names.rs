//! Entry names: the naming rules, clash suffixes and conflict-copy names; and the workspace
//! title's rules.
//!
//! Invariants: every name this module produces satisfies [`check_name`] (non-empty, at most
//! [`MAX_NAME`] bytes, no `/` or NUL, not `.` or `..`), so a materialized tree never holds an
//! unusable name even when a remote peer stored a bad one. A title is a display string, not a
//! path component: [`check_title`] allows `/` and `.` but no control character. All functions
//! are pure.

use crate::error::CrdtError;
use crate::ids::EntryId;
use crate::limits::{MAX_NAME, MAX_TITLE};

/// Checks a name given by a local caller.
pub fn check_name(name: &str) -> Result<(), CrdtError> {
    if name.is_empty() {
        return Err(CrdtError::InvalidName("empty"));
    }
    if name.len() > MAX_NAME {
        return Err(CrdtError::InvalidName("longer than 255 bytes"));
    }
    if name == "." || name == ".." {
        return Err(CrdtError::InvalidName("'.' and '..' are reserved"));
    }
    if name.contains('/') || name.contains('\0') {
        return Err(CrdtError::InvalidName("contains '/' or NUL"));
    }
    Ok(())
}

/// Checks a workspace title: 1..=[`MAX_TITLE`] bytes of UTF-8, no control characters (which
/// includes NUL, newlines and tabs). Applied to local input and to stored values alike.
pub fn check_title(title: &str) -> Result<(), CrdtError> {
    if title.is_empty() {
        return Err(CrdtError::InvalidTitle("empty"));
    }
    if title.len() > MAX_TITLE {
        return Err(CrdtError::InvalidTitle("longer than 255 bytes"));
    }
    if title.chars().any(char::is_control) {
        return Err(CrdtError::InvalidTitle("contains control characters"));
    }
    Ok(())
}

/// The name shown for a stored name that breaks the rules (possible only from a hostile peer).
pub(crate) fn fallback_name(id: EntryId) -> String {
    format!("invalid-name-{}", &id.to_hex()[..16])
}

/// Splits `name` into stem and extension (with its dot). A leading dot is part of the stem, so
/// `.bashrc` has no extension.
pub(crate) fn split_ext(name: &str) -> (&str, &str) {
    match name.rfind('.') {
        Some(i) if i > 0 => name.split_at(i),
        _ => (name, ""),
    }
}

/// `stem{suffix}ext`, with the stem cut (at a char boundary) so that the result fits the limit.
pub(crate) fn with_suffix(name: &str, suffix: &str) -> String {
    let (stem, ext) = split_ext(name);
    let (stem, ext) = if suffix.len() + ext.len() >= MAX_NAME {
        (name, "")
    } else {
        (stem, ext)
    };
    let room = MAX_NAME.saturating_sub(suffix.len() + ext.len());
    let mut cut = stem.len().min(room);
    while !stem.is_char_boundary(cut) {
        cut -= 1;
    }
    let out = format!("{}{}{}", &stem[..cut], suffix, ext);
    if out.len() <= MAX_NAME {
        out
    } else {
        truncate(&out)
    }
}

fn truncate(s: &str) -> String {
    let mut cut = s.len().min(MAX_NAME);
    while !s.is_char_boundary(cut) {
        cut -= 1;
    }
    s[..cut].to_owned()
}

/// `name (conflict <user> <device> <yyyy-mm-dd>).ext`
pub(crate) fn conflict_name(name: &str, user: &str, device: &str, modified_ms: i64) -> String {
    let clean = |s: &str| -> String {
        s.chars()
            .map(|c| if c == '/' || c.is_control() { '_' } else { c })
            .collect()
    };
    let suffix = format!(
        " (conflict {} {} {})",
        clean(user),
        clean(device),
        date(modified_ms)
    );
    with_suffix(name, &suffix)
}

/// UTC calendar date of a unix-millisecond time, `yyyy-mm-dd`.
pub(crate) fn date(ms: i64) -> String {
    let days = ms.div_euclid(86_400_000);
    // Howard Hinnant's civil_from_days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!("{y:04}-{m:02}-{d:02}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rules() {
        assert!(check_name("a.txt").is_ok());
        for bad in ["", ".", "..", "a/b", "a\0b"] {
            assert!(check_name(bad).is_err(), "{bad:?}");
        }
        assert!(check_name(&"x".repeat(255)).is_ok());
        assert!(check_name(&"x".repeat(256)).is_err());
    }

    #[test]
    fn title_rules() {
        for good in ["Team docs", "R&D / 2024", ".", "é".repeat(127).as_str()] {
            assert!(check_title(good).is_ok(), "{good:?}");
        }
        for bad in ["", "a\nb", "a\tb", "a\0b", "\u{7f}", "\u{85}"] {
            assert!(
                matches!(check_title(bad), Err(CrdtError::InvalidTitle(_))),
                "{bad:?}"
            );
        }
        assert!(check_title(&"x".repeat(255)).is_ok());
        assert!(check_title(&"x".repeat(256)).is_err());
        assert!(
            check_title(&"é".repeat(128)).is_err(),
            "the limit counts bytes"
        );
    }

    #[test]
    fn suffixes_keep_the_extension_and_fit() {
        assert_eq!(with_suffix("report.pdf", " (2)"), "report (2).pdf");
        assert_eq!(with_suffix(".bashrc", " (2)"), ".bashrc (2)");
        assert_eq!(with_suffix("a.tar.gz", " (2)"), "a.tar (2).gz");
        let long = format!("{}.txt", "é".repeat(126));
        let s = with_suffix(&long, " (12)");
        assert!(s.len() <= 255 && s.ends_with(" (12).txt"), "{s}");
    }

    #[test]
    fn conflict_names() {
        let n = conflict_name("notes.md", "ann", "lap/top", 1_700_000_000_000);
        assert_eq!(n, "notes (conflict ann lap_top 2023-11-14).md");
        assert_eq!(date(0), "1970-01-01");
        assert_eq!(date(-1), "1969-12-31");
        assert_eq!(date(951_782_400_000), "2000-02-29");
    }
}
