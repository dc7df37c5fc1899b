//! Names chosen by other members reach a terminal escaped: a contributor's file named with an
//! escape sequence, a newline or a bidi override is listed by `cloison ls`, `history` and in
//! errors as visible `\u{..}`, never as a raw control character; `--json` keeps the exact name.

use cloison_tests::team;

const HOSTILE: &[&str] = &[
    "evil\u{1b}[31mred.txt",
    "two\nlines.txt",
    "title\u{1b}]0;owned\u{7}.txt",
    "invoice\u{202e}fdp.exe",
];

fn raw_controls(s: &str) -> Vec<char> {
    s.chars()
        .filter(|c| (c.is_control() && *c != '\n') || ('\u{202a}'..='\u{202e}').contains(c))
        .collect()
}

#[test]
fn hostile_file_names_are_shown_escaped_and_kept_exact_in_json() {
    let t = team(&["ann"]);
    let h = &t[0];
    h.run(&["workspace", "create", "Shared"]).success();
    let src = tempfile::tempdir().unwrap_or_else(|e| panic!("tempdir: {e}"));
    for name in HOSTILE {
        let f = src.path().join("f");
        std::fs::write(&f, name.as_bytes()).unwrap_or_else(|e| panic!("{e}"));
        h.run(&["put", "Shared", f.to_str().unwrap_or_default(), name])
            .success();
    }
    let out = h.run(&["ls", "Shared"]).success();
    assert!(raw_controls(&out).is_empty(), "raw controls: {out:?}");
    // One line per entry: an embedded newline does not make a fake one.
    assert_eq!(out.lines().count(), HOSTILE.len(), "{out}");
    for shown in [
        "evil\\u{1b}[31mred.txt",
        "two\\u{a}lines.txt",
        "title\\u{1b}]0;owned\\u{7}.txt",
        "invoice\\u{202e}fdp.exe",
    ] {
        assert!(out.contains(shown), "{shown} not in {out}");
    }
    let hist = h.run(&["history", "Shared", HOSTILE[0]]).success();
    assert!(raw_controls(&hist).is_empty(), "{hist:?}");
    // An error that names the path escapes it too.
    let err = h.run(&["history", "Shared", "no\u{1b}[2Jsuch"]).failure();
    assert!(raw_controls(&err).is_empty(), "{err:?}");
    // JSON keeps the exact names (JSON escapes them itself).
    let v = h.run(&["ls", "Shared", "--json"]).json();
    let mut names: Vec<String> = v["entries"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|e| e["name"].as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    let mut want: Vec<String> = HOSTILE.iter().map(|s| (*s).to_owned()).collect();
    want.sort();
    assert_eq!(names, want);
}
