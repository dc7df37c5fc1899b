//! Tests of the configuration merge: precedence (flag > env > file > default) and refusals.

use std::collections::BTreeMap;

use super::*;

fn env_of(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> + use<> {
    let m: BTreeMap<String, String> = pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    move |k: &str| m.get(k).cloned()
}

const FILE: &str = r#"
listen = ["/ip4/127.0.0.1/tcp/4001"]
peers = ["/ip4/127.0.0.1/tcp/4002"]
mdns = false
log_format = "json"
log = "info,cloison_node=debug"
"#;

fn merged(flags: &Flags, env: &[(&str, &str)], text: Option<&str>) -> Config {
    merge(flags, &env_of(env), Path::new("/h/config.toml"), text).unwrap()
}

fn refused(text: &str) -> (usize, usize, String) {
    match merge(
        &Flags::default(),
        &env_of(&[]),
        Path::new("/h/config.toml"),
        Some(text),
    ) {
        Err(ConfigError::File {
            line,
            column,
            reason,
            path,
        }) => {
            assert_eq!(path, Path::new("/h/config.toml"));
            (line, column, reason)
        }
        other => panic!("not refused with a line: {other:?}"),
    }
}

#[test]
fn without_anything_the_defaults_apply() {
    let c = merged(&Flags::default(), &[], None);
    assert!(!c.file_read);
    assert_eq!(c.listen.value, DEFAULT_LISTEN.map(String::from).to_vec());
    assert_eq!(c.listen.source, Source::Default);
    assert!(c.peers.value.is_empty());
    assert!(c.mdns.value);
    assert_eq!(c.log_format.value, LogFormat::Text);
    assert_eq!(c.log.value, "warn");
    assert_eq!(c.mdns.source, Source::Default);
    // An empty file is a file with no keys.
    let c = merged(&Flags::default(), &[], Some(""));
    assert!(c.file_read);
    assert_eq!(c.mdns.source, Source::Default);
}

#[test]
fn the_file_overrides_the_defaults() {
    let c = merged(&Flags::default(), &[], Some(FILE));
    assert!(c.file_read);
    assert_eq!(c.listen.value, vec!["/ip4/127.0.0.1/tcp/4001"]);
    assert_eq!(c.peers.value, vec!["/ip4/127.0.0.1/tcp/4002"]);
    assert!(!c.mdns.value);
    assert_eq!(c.log_format.value, LogFormat::Json);
    assert_eq!(c.log.value, "info,cloison_node=debug");
    for s in [
        c.listen.source,
        c.peers.source,
        c.mdns.source,
        c.log_format.source,
        c.log.source,
    ] {
        assert_eq!(s, Source::File);
    }
    assert_eq!(c.listen_addrs().len(), 1);
    assert_eq!(c.peer_addrs().len(), 1);
}

#[test]
fn the_environment_overrides_the_file() {
    let env = [
        (
            "CLOISON_LISTEN",
            "/ip4/127.0.0.1/tcp/5001, /ip4/127.0.0.1/udp/0/quic-v1",
        ),
        ("CLOISON_PEERS", "/ip4/127.0.0.1/tcp/5002"),
        ("CLOISON_MDNS", "1"),
        ("CLOISON_LOG_FORMAT", "text"),
        ("RUST_LOG", "debug"),
    ];
    let c = merged(&Flags::default(), &env, Some(FILE));
    assert_eq!(
        c.listen.value,
        vec!["/ip4/127.0.0.1/tcp/5001", "/ip4/127.0.0.1/udp/0/quic-v1"]
    );
    assert_eq!(c.listen.name, Some("CLOISON_LISTEN"));
    assert_eq!(c.peers.value, vec!["/ip4/127.0.0.1/tcp/5002"]);
    assert!(
        c.mdns.value,
        "CLOISON_MDNS=1 turns back on what the file turned off"
    );
    assert_eq!(c.log_format.value, LogFormat::Text);
    assert_eq!(c.log.value, "debug");
    for s in [
        c.listen.source,
        c.peers.source,
        c.mdns.source,
        c.log_format.source,
        c.log.source,
    ] {
        assert_eq!(s, Source::Env);
    }
    // CLOISON_MDNS=0 turns it off over a file that turns it on; an empty variable is unset.
    let c = merged(
        &Flags::default(),
        &[("CLOISON_MDNS", "off"), ("CLOISON_LISTEN", " ")],
        Some("mdns = true\nlisten = [\"/ip4/127.0.0.1/tcp/1\"]"),
    );
    assert_eq!((c.mdns.value, c.mdns.source), (false, Source::Env));
    assert_eq!(c.listen.source, Source::File);
    // An invalid RUST_LOG is ignored, as before.
    let c = merged(&Flags::default(), &[("RUST_LOG", "a=b=c=")], Some(FILE));
    assert_eq!(c.log.source, Source::File);
}

#[test]
fn flags_override_the_environment_and_the_file() {
    let flags = Flags {
        listen: vec!["/ip4/127.0.0.1/tcp/6001".into()],
        peers: vec!["/ip4/127.0.0.1/tcp/6002".into()],
        no_mdns: true,
        log_format: Some(LogFormat::Text),
        verbose: 2,
        config: None,
        max_send_kibps: Some(512),
        max_recv_kibps: None,
    };
    let env = [
        ("CLOISON_LISTEN", "/ip4/127.0.0.1/tcp/5001"),
        ("CLOISON_PEERS", "/ip4/127.0.0.1/tcp/5002"),
        ("CLOISON_MDNS", "1"),
        ("CLOISON_LOG_FORMAT", "json"),
        ("RUST_LOG", "error"),
    ];
    let c = merged(&flags, &env, Some(FILE));
    assert_eq!(c.listen.value, vec!["/ip4/127.0.0.1/tcp/6001"]);
    assert_eq!(c.peers.value, vec!["/ip4/127.0.0.1/tcp/6002"]);
    assert!(!c.mdns.value);
    assert_eq!(c.log_format.value, LogFormat::Text);
    assert_eq!(c.log.value, "debug");
    assert_eq!(c.mdns.name, Some("--no-mdns"));
    for s in [
        c.listen.source,
        c.peers.source,
        c.mdns.source,
        c.log_format.source,
        c.log.source,
    ] {
        assert_eq!(s, Source::Flag);
    }
    // Flags that are not given leave the lower sources alone.
    let c = merged(
        &Flags {
            verbose: 1,
            ..Flags::default()
        },
        &[],
        Some(FILE),
    );
    assert_eq!((c.log.value.as_str(), c.log.source), ("info", Source::Flag));
    assert_eq!(c.peers.source, Source::File);
}

#[test]
fn a_bad_file_is_refused_with_its_line_column_and_reason() {
    let (line, column, reason) = refused("listen = []\nmdns = \"yes\"\n");
    assert_eq!((line, column), (2, 8));
    assert!(reason.contains("bool"), "{reason}");
    // An unknown key (a typo) is named.
    let (line, _, reason) = refused("mdns = false\n\nmdsn = true\n");
    assert_eq!(line, 3);
    assert!(reason.contains("unknown field `mdsn`"), "{reason}");
    // Not TOML at all.
    let (line, _, _) = refused("mdns = false\nlisten = [\n");
    assert!(line >= 2);
    // A value of the right type that does not parse: the entry's own place.
    let (line, column, reason) =
        refused("peers = [\n  \"/ip4/127.0.0.1/tcp/1\",\n  \"not-an-address\",\n]\n");
    assert_eq!((line, column), (3, 3));
    assert!(reason.contains("not-an-address"), "{reason}");
    let (line, _, reason) = refused("log = \"a=b=c=\"\n");
    assert_eq!(line, 1);
    assert!(reason.contains("log filter"), "{reason}");
    let (_, _, reason) = refused("log_format = \"xml\"\n");
    assert!(reason.contains("xml"), "{reason}");
    // The message says where.
    let e = merge(
        &Flags::default(),
        &env_of(&[]),
        Path::new("/h/config.toml"),
        Some("mdns = 1"),
    )
    .unwrap_err()
    .to_string();
    assert!(
        e.starts_with("invalid config file /h/config.toml, line 1, column 8: "),
        "{e}"
    );
}

#[test]
fn bad_environment_values_and_flags_are_refused_with_their_name() {
    let bad = |flags: &Flags, env: &[(&str, &str)]| {
        merge(flags, &env_of(env), Path::new("/h/config.toml"), None)
            .unwrap_err()
            .to_string()
    };
    let e = bad(&Flags::default(), &[("CLOISON_LOG_FORMAT", "xml")]);
    assert!(e.starts_with("CLOISON_LOG_FORMAT: "), "{e}");
    let e = bad(
        &Flags::default(),
        &[("CLOISON_PEERS", "/ip4/1.2.3.4/tcp/1,nope")],
    );
    assert!(
        e.starts_with("CLOISON_PEERS: ") && e.contains("nope"),
        "{e}"
    );
    let flags = Flags {
        listen: vec!["tcp:4001".into()],
        ..Flags::default()
    };
    assert!(bad(&flags, &[]).starts_with("--listen: "));
}

#[test]
fn the_file_is_read_from_the_home_or_the_named_place() {
    let dir = tempfile::tempdir().unwrap();
    let env = env_of(&[]);
    // Missing at the default place: defaults.
    let c = load(dir.path(), &Flags::default(), &env).unwrap();
    assert_eq!(c.file, dir.path().join(FILE_NAME));
    assert!(!c.file_read);
    std::fs::write(dir.path().join(FILE_NAME), "mdns = false\n").unwrap();
    let c = load(dir.path(), &Flags::default(), &env).unwrap();
    assert!(c.file_read && !c.mdns.value);
    // Named explicitly: it must exist.
    let other = dir.path().join("other.toml");
    let flags = Flags {
        config: Some(other.clone()),
        ..Flags::default()
    };
    assert!(matches!(
        load(dir.path(), &flags, &env),
        Err(ConfigError::Read { .. })
    ));
    std::fs::write(&other, "peers = [\"/ip4/127.0.0.1/tcp/9\"]\n").unwrap();
    let c = load(dir.path(), &flags, &env).unwrap();
    assert_eq!(c.file, other);
    assert!(c.mdns.value, "only the named file is read");
    assert_eq!(c.peers.source, Source::File);
    // CLOISON_CONFIG names one too (empty: unset), and --config wins over it.
    let third = dir.path().join("third.toml");
    let named = third.to_string_lossy().into_owned();
    let env3 = env_of(&[("CLOISON_CONFIG", &named)]);
    assert_eq!(
        path(dir.path(), &Flags::default(), &env3),
        (third.clone(), true)
    );
    assert_eq!(path(dir.path(), &flags, &env3), (other.clone(), true));
    let empty = env_of(&[("CLOISON_CONFIG", "")]);
    assert_eq!(
        path(dir.path(), &Flags::default(), &empty),
        (dir.path().join(FILE_NAME), false)
    );
    assert!(matches!(
        load(dir.path(), &Flags::default(), &env3),
        Err(ConfigError::Read { .. })
    ));
    // Bounded.
    std::fs::write(&other, vec![b'#'; MAX_FILE as usize + 1]).unwrap();
    assert!(matches!(
        load(dir.path(), &flags, &env),
        Err(ConfigError::Read { .. })
    ));
}

#[test]
fn bandwidth_limits_merge_like_the_other_keys_and_zero_is_unlimited() {
    let file = "max_send_kibps = 2048\nmax_recv_kibps = 512\n";
    let c = merged(&Flags::default(), &[], None);
    assert_eq!(c.bandwidth(), Bandwidth::default());
    let c = merged(&Flags::default(), &[], Some(file));
    assert_eq!(
        c.bandwidth(),
        Bandwidth {
            send_kibps: Some(2048),
            recv_kibps: Some(512)
        }
    );
    assert_eq!(c.max_send_kibps.source, Source::File);
    // The environment over the file, a flag over both; 0 lifts a limit.
    let env = [
        ("CLOISON_MAX_SEND_KIBPS", " 100 "),
        ("CLOISON_MAX_RECV_KIBPS", "0"),
    ];
    let c = merged(&Flags::default(), &env, Some(file));
    assert_eq!(
        c.bandwidth(),
        Bandwidth {
            send_kibps: Some(100),
            recv_kibps: None
        }
    );
    assert_eq!(c.max_recv_kibps.name, Some("CLOISON_MAX_RECV_KIBPS"));
    let flags = Flags {
        max_recv_kibps: Some(64),
        ..Flags::default()
    };
    let c = merged(&flags, &env, Some(file));
    assert_eq!(
        (c.max_recv_kibps.value, c.max_recv_kibps.source),
        (64, Source::Flag)
    );
    assert_eq!(c.max_send_kibps.source, Source::Env);
    let shown = render(&c, false).unwrap();
    assert!(shown.contains("max_send_kibps 100 KiB/s"), "{shown}");
    assert!(shown.contains("(--max-recv-kibps)"), "{shown}");
    // Refused: a negative or oversized value in the file (at its place), a word in the
    // environment, an oversized flag.
    let (line, column, _) = refused("mdns = false\nmax_recv_kibps = -1\n");
    assert_eq!((line, column), (2, 18));
    let (line, _, reason) = refused(&format!("max_send_kibps = {}\n", MAX_KIBPS + 1));
    assert_eq!(line, 1);
    assert!(reason.contains("largest limit"), "{reason}");
    let e = merge(
        &Flags::default(),
        &env_of(&[("CLOISON_MAX_SEND_KIBPS", "fast")]),
        Path::new("/h/config.toml"),
        None,
    )
    .unwrap_err()
    .to_string();
    assert!(e.starts_with("CLOISON_MAX_SEND_KIBPS: "), "{e}");
    let flags = Flags {
        max_send_kibps: Some(u64::MAX),
        ..Flags::default()
    };
    let e = merge(&flags, &env_of(&[]), Path::new("/h/config.toml"), None)
        .unwrap_err()
        .to_string();
    assert!(e.starts_with("--max-send-kibps: "), "{e}");
}
