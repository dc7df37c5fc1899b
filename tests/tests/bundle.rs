//! Sneakernet: sites A and B on a LAN (real daemons on 127.0.0.1), site C air-gapped (no daemon,
//! no network; every command opens its store). Data crosses to C and back in bundle files.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use cloison_tests::{TestHome, team, wait_until};

const WAIT: Duration = Duration::from_secs(120);

/// `name -> content hash` of every file under `path`, recursively.
fn tree(home: &TestHome, ws: &str, path: &str) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    let r = home.run(&["ls", ws, path, "--json"]);
    if !r.ok {
        return out;
    }
    let v: serde_json::Value = serde_json::from_str(&r.stdout).unwrap_or_default();
    for e in v["entries"].as_array().cloned().unwrap_or_default() {
        let p = e["path"].as_str().unwrap_or_default().to_owned();
        if e["kind"] == "folder" {
            out.extend(tree(home, ws, &p));
        } else {
            out.insert(p, e["hash"].as_str().unwrap_or_default().to_owned());
        }
    }
    out
}

fn json(home: &TestHome, args: &[&str]) -> serde_json::Value {
    let mut a = args.to_vec();
    a.push("--json");
    home.run(&a).json()
}

/// Ann's workspace "Plans", shared with these users as contributors.
fn plans_shared_with(a: &TestHome, users: &[&str]) {
    a.run(&["workspace", "create", "Plans"]).success();
    for u in users {
        a.run(&[
            "workspace",
            "share",
            "Plans",
            &format!("{u}@clinique.example"),
        ])
        .success();
    }
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

#[test]
fn an_air_gapped_site_converges_through_bundles_and_receipts() {
    let t = team(&["ann", "ben", "cat"]);
    let (a, b, c) = (&t[0], &t[1], &t[2]);
    let da = a.start(&[]);
    let _db = b.start(&[da.addr()]);
    plans_shared_with(a, &["ben", "cat"]);
    let dir = a.path().join("plans");
    std::fs::create_dir_all(&dir).unwrap();
    for i in 0..20 {
        std::fs::write(dir.join(format!("p{i}.txt")), format!("plan {i}\n")).unwrap();
    }
    std::fs::write(dir.join("big.bin"), vec![7u8; 3 << 20]).unwrap();
    a.run(&["put", "Plans", s(&dir), "plans"]).success();
    let want = tree(a, "Plans", "/");
    assert_eq!(want.len(), 21);
    wait_until("B has the plans", WAIT, || tree(b, "Plans", "/") == want);

    // 1. C receives a full bundle (A's daemon writes it).
    let full = a.path().join("full.bundle");
    let r = json(a, &["bundle", "export", "--out", s(&full)]);
    assert!(r["entries"].as_u64().unwrap() >= 3, "{r}");
    assert!(r["blocks"].as_u64().unwrap() >= 21, "{r}");
    let i = json(c, &["bundle", "inspect", s(&full)]);
    assert_eq!(i["entries"], r["entries"]);
    assert_eq!(i["envelopes"], r["envelopes"]);
    let imp = json(c, &["bundle", "import", s(&full)]);
    assert_eq!(imp["refused"], 0, "{imp}");
    assert_eq!(tree(c, "Plans", "/"), want);
    let got = c.path().join("p3.txt");
    c.run(&["get", "Plans", "plans/p3.txt", s(&got)]).success();
    assert_eq!(std::fs::read_to_string(&got).unwrap(), "plan 3\n");
    // Importing the same bundle again changes nothing.
    let again = json(c, &["bundle", "import", s(&full)]);
    assert_eq!(
        (&again["entries"], &again["envelopes"], &again["blocks"]),
        (&0.into(), &0.into(), &0.into()),
        "{again}"
    );

    // 2. C works offline, then sends back its changes and a receipt.
    let note = c.path().join("from-c.txt");
    std::fs::write(&note, "written at the air-gapped site\n").unwrap();
    c.run(&["put", "Plans", s(&note), "plans/from-c.txt"])
        .success();
    let receipt = c.path().join("c.receipt");
    c.run(&["bundle", "receipt", "--out", s(&receipt)])
        .success();
    let c_envelopes = json(c, &["status"])["workspaces"][0]["envelopes"]
        .as_u64()
        .unwrap();
    let back = c.path().join("back.bundle");
    c.run(&["bundle", "export", "--out", s(&back)]).success();
    let imp = json(a, &["bundle", "import", s(&back)]);
    assert_eq!(imp["refused"], 0, "{imp}");
    assert!(imp["envelopes"].as_u64().unwrap() >= 1, "{imp}");
    let want = tree(c, "Plans", "/");
    assert_eq!(want.len(), 22);
    assert_eq!(tree(a, "Plans", "/"), want);
    wait_until("B gets C's file over the LAN", WAIT, || {
        tree(b, "Plans", "/") == want
    });

    // 3. A writes more; the export for C's receipt carries only what C lacks.
    let more = a.path().join("more.txt");
    std::fs::write(&more, "after the receipt\n").unwrap();
    a.run(&["put", "Plans", s(&more), "plans/more.txt"])
        .success();
    let delta = a.path().join("delta.bundle");
    let a_envelopes = json(a, &["status"])["workspaces"][0]["envelopes"]
        .as_u64()
        .unwrap();
    let r = json(
        a,
        &["bundle", "export", "--out", s(&delta), "--for", s(&receipt)],
    );
    assert_eq!(r["for_receipt"], true);
    // C lacked nothing of the organization log, one block (the new file's), and exactly the
    // envelopes A holds beyond C's: the new file's, plus any `Merge` the LAN devices wrote on
    // C's work meanwhile (everything C had, A has: C sent it all back).
    assert_eq!(r["entries"], 0, "{r}");
    assert_eq!(r["blocks"], 1, "{r}");
    let a_after = json(a, &["status"])["workspaces"][0]["envelopes"]
        .as_u64()
        .unwrap();
    let carried = r["envelopes"].as_u64().unwrap();
    // (A merge may land between the two counts: then the bundle holds one of them.)
    assert!(
        (a_envelopes - c_envelopes..=a_after - c_envelopes).contains(&carried),
        "{r} vs {a_envelopes}..={a_after} - {c_envelopes}"
    );
    assert!(r["envelopes"].as_u64().unwrap() >= 1, "{r}");
    assert!(
        r["bytes"].as_u64().unwrap() < std::fs::metadata(&full).unwrap().len() / 10,
        "{r}"
    );
    json(c, &["bundle", "import", s(&delta)]);
    let all = tree(a, "Plans", "/");
    assert_eq!(all.len(), 23);
    assert_eq!(tree(c, "Plans", "/"), all);
    wait_until("the three sites are identical", WAIT, || {
        tree(b, "Plans", "/") == all
    });
}

#[test]
fn damaged_bundles_import_nothing_and_say_why() {
    let t = team(&["ann", "cat"]);
    let (a, c) = (&t[0], &t[1]);
    a.run(&["workspace", "create", "Plans"]).success();
    a.run(&["workspace", "share", "Plans", "cat@clinique.example"])
        .success();
    let f = a.path().join("x.txt");
    std::fs::write(&f, vec![3u8; 200_000]).unwrap();
    a.run(&["put", "Plans", s(&f), "x.txt"]).success();
    let full = a.path().join("full.bundle");
    a.run(&["bundle", "export", "--out", s(&full)]).success();
    let bytes = std::fs::read(&full).unwrap();
    let before = json(c, &["status"]);
    let bad = c.path().join("bad.bundle");
    let mut tried = 0;
    let mut seed = 0x9e37_79b9_u64;
    let mut next = || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    for _ in 0..100 {
        // Truncated at a random offset.
        let cut = (next() % bytes.len() as u64) as usize;
        std::fs::write(&bad, &bytes[..cut]).unwrap();
        let err = c.run(&["bundle", "import", s(&bad)]).failure();
        assert!(err.contains("bundle refused"), "{err}");
        tried += 1;
    }
    for _ in 0..30 {
        // One random bit flipped.
        let mut flipped = bytes.clone();
        let at = (next() % bytes.len() as u64) as usize;
        flipped[at] ^= 1 << (next() % 8);
        std::fs::write(&bad, &flipped).unwrap();
        let err = c.run(&["bundle", "import", s(&bad)]).failure();
        assert!(err.contains("bundle refused"), "{err}");
        tried += 1;
    }
    // The organization id in the header changed (it starts right after the magic, the version
    // and the header's length).
    let mut moved = bytes.clone();
    moved[13] ^= 0xff;
    std::fs::write(&bad, &moved).unwrap();
    let err = c.run(&["bundle", "import", s(&bad)]).failure();
    assert!(err.contains("belongs to organization"), "{err}");
    // Signature stripped (the trailer's last 64 bytes zeroed).
    let mut unsigned = bytes.clone();
    let n = unsigned.len();
    unsigned[n - 64..].fill(0);
    std::fs::write(&bad, &unsigned).unwrap();
    let err = c.run(&["bundle", "import", s(&bad)]).failure();
    assert!(err.contains("signature"), "{err}");
    // Another organization's bundle.
    let other = team(&["xavier"]);
    let theirs = other[0].path().join("theirs.bundle");
    other[0]
        .run(&["bundle", "export", "--out", s(&theirs)])
        .success();
    let err = c.run(&["bundle", "import", s(&theirs)]).failure();
    assert!(err.contains("belongs to organization"), "{err}");
    assert_eq!(tried, 130);
    // Nothing changed.
    assert_eq!(json(c, &["status"]), before);
    assert!(tree(c, "Plans", "/").is_empty());
}

/// A bundle from a device revoked since it was written: its items are admitted, and revocation
/// wins: what the device wrote concurrently with its revocation disappears once the revocation
/// is known, whichever arrives first.
#[test]
fn a_bundle_from_a_since_revoked_device_loses_to_the_revocation() {
    let t = team(&["ann", "ben", "cat"]);
    let (a, b, c) = (&t[0], &t[1], &t[2]);
    plans_shared_with(a, &["ben", "cat"]);
    let start = a.path().join("start.bundle");
    a.run(&["bundle", "export", "--out", s(&start)]).success();
    b.run(&["bundle", "import", s(&start)]).success();
    c.run(&["bundle", "import", s(&start)]).success();
    // Ben writes while his device is being revoked elsewhere.
    let f = b.path().join("ben.txt");
    std::fs::write(&f, "from a device about to be revoked\n").unwrap();
    b.run(&["put", "Plans", s(&f), "ben.txt"]).success();
    let from_ben = b.path().join("ben.bundle");
    b.run(&["bundle", "export", "--out", s(&from_ben)])
        .success();
    a.run(&["revoke", "device", "ben-dev"]).success();
    let revocation = a.path().join("revocation.bundle");
    a.run(&["bundle", "export", "--out", s(&revocation)])
        .success();
    // Cat gets Ben's bundle first: the file shows...
    let imp = json(c, &["bundle", "import", s(&from_ben)]);
    assert_eq!(imp["refused"], 0, "{imp}");
    assert!(tree(c, "Plans", "/").contains_key("ben.txt"));
    // ...then the revocation: it is dropped.
    c.run(&["bundle", "import", s(&revocation)]).success();
    assert!(!tree(c, "Plans", "/").contains_key("ben.txt"));
    // Ann, who already knew of the revocation, imports Ben's bundle: never shows.
    a.run(&["bundle", "import", s(&from_ben)]).success();
    assert!(!tree(a, "Plans", "/").contains_key("ben.txt"));
}
