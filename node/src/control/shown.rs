//! Names as shown to people: file and folder names, labels, e-mails and messages come from other
//! members (any contributor names a file), so before any of them reaches a terminal every control
//! character (escape sequences, newlines, carriage returns, C1 controls) and every bidirectional
//! override (which reorders what is shown, "Trojan source") is written as a visible `\u{..}`.
//!
//! Invariants: [`escape`] leaves printable text (any script, emoji) unchanged and never lets a
//! control or bidi character through; [`response`] applies it to every string of a
//! [`Response`], keys of maps included, so no table or screen can forget a field. JSON output
//! (`--json`) is not escaped: JSON escapes control characters itself and scripts want the name.

use std::borrow::Cow;

use super::Response;

/// Whether `c` must not reach a terminal as is.
fn hidden(c: char) -> bool {
    c.is_control()
        || matches!(c, '\u{200e}' | '\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
}

/// `s` with every control and bidi character written as `\u{..}`.
pub fn escape(s: &str) -> Cow<'_, str> {
    if !s.chars().any(hidden) {
        return Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        if hidden(c) {
            out.push_str(&format!("\\u{{{:x}}}", u32::from(c)));
        } else {
            out.push(c);
        }
    }
    Cow::Owned(out)
}

/// `r` with every string in it escaped (see the module doc).
pub fn response(r: &Response) -> Result<Response, serde_json::Error> {
    let mut v = serde_json::to_value(r)?;
    escape_value(&mut v);
    serde_json::from_value(v)
}

fn escape_value(v: &mut serde_json::Value) {
    use serde_json::Value;
    match v {
        Value::String(s) => {
            if let Cow::Owned(e) = escape(s) {
                *s = e;
            }
        }
        Value::Array(a) => a.iter_mut().for_each(escape_value),
        Value::Object(m) => {
            let old = std::mem::take(m);
            for (k, mut x) in old {
                escape_value(&mut x);
                m.insert(escape(&k).into_owned(), x);
            }
        }
        Value::Null | Value::Bool(_) | Value::Number(_) => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::node::EntryInfo;
    use proptest::prelude::*;

    #[test]
    fn control_and_bidi_characters_are_shown_not_obeyed() {
        assert_eq!(escape("report.pdf"), "report.pdf");
        assert_eq!(escape("évaluation 東京 ✓.odt"), "évaluation 東京 ✓.odt");
        assert_eq!(escape("evil\u{1b}[31mred.txt"), "evil\\u{1b}[31mred.txt");
        assert_eq!(
            escape("a\nb\r\t\u{7f}\u{9b}"),
            "a\\u{a}b\\u{d}\\u{9}\\u{7f}\\u{9b}"
        );
        assert_eq!(escape("invoice\u{202e}fdp.exe"), "invoice\\u{202e}fdp.exe");
    }

    #[test]
    fn every_string_of_a_response_is_escaped() {
        let e = EntryInfo {
            path: "dir\u{1b}[2J/x".into(),
            name: "x\u{1b}]0;owned\u{7}".into(),
            kind: "file".into(),
            size: 1,
            modified_ms: None,
            id: "00".into(),
            conflict_of: None,
            hash: None,
        };
        let r = response(&Response::Entries(vec![e])).unwrap();
        let Response::Entries(es) = r else {
            panic!("{r:?}")
        };
        assert_eq!(es[0].name, "x\\u{1b}]0;owned\\u{7}");
        assert_eq!(es[0].path, "dir\\u{1b}[2J/x");
    }

    proptest! {
        #[test]
        fn nothing_hidden_survives_and_printable_text_is_kept(
            cs in prop::collection::vec(any::<char>(), 0..40)
        ) {
            let s: String = cs.into_iter().collect();
            let e = escape(&s);
            prop_assert!(!e.chars().any(hidden));
            if !s.chars().any(hidden) {
                prop_assert_eq!(e.as_ref(), s.as_str());
            }
        }
    }
}
