//! Introductions to a real `cloison-bootstrap` (relay protocol v2): an organization log larger
//! than one network message (8 MiB, where version 1 failed) is sent in parts when the relay asks
//! for it, and a device the relay already counts is welcomed without sending any log.

use std::time::{Duration, Instant};

use cloison_node::relay::wire::RelayMsg;
use cloison_node::sync::msg::MAX_MESSAGE;
use cloison_node::testkit::Fixture;
use cloison_node::trust::Profile;
use cloison_node::trust::author::{Writer, relay_authorized};
use cloison_tests::relay::{Relay, introduce};
use cloison_tests::wait_until;

const WAIT: Duration = Duration::from_secs(60);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_log_larger_than_one_message_is_introduced_in_parts_and_never_again() {
    let data = tempfile::tempdir().unwrap();
    let logs = tempfile::tempdir().unwrap();
    let relay_keys = cloison_node::relay::identity(data.path()).unwrap();
    // An organization whose log is larger than a network message: users added until it is.
    let t0 = Instant::now();
    let mut f = Fixture::new(17);
    let mut w = Writer {
        keys: &f.admin.keys,
        org_key: &f.org_key,
        clock: &mut f.clock.clone(),
    };
    let e = w.draft(
        &f.org,
        1_500,
        relay_authorized(relay_keys.id(), vec!["/ip4/127.0.0.1/tcp/1".into()]),
    );
    assert!(f.org.ingest(vec![e]).is_clean());
    let mut size = 0;
    while size <= MAX_MESSAGE + MAX_MESSAGE / 8 {
        for _ in 0..1_000 {
            f.add_user(Profile::Standard);
        }
        size = f.entries().iter().map(Vec::len).sum::<usize>();
    }
    let entries = f.entries();
    eprintln!(
        "{} entries, {} bytes, made in {:.1?}",
        entries.len(),
        size,
        t0.elapsed()
    );
    let relay = Relay::start(data.path(), &logs.path().join("relay.log"));
    let member = &f.members[0].keys;
    let org = f.org.org().0;
    let t1 = Instant::now();
    let (answer, parts) = introduce(member, &relay.addr, org, &entries).await;
    eprintln!("introduced in {parts} parts in {:.1?}", t1.elapsed());
    assert_eq!(answer, RelayMsg::Welcome);
    assert!(parts >= 4, "{parts} parts");
    // The status is a snapshot taken at the end of the relay's turn, after the welcome left.
    wait_until("the relay's status shows the log", WAIT, || {
        relay.status()["organizations"][0]["entries"].as_u64() == Some(entries.len() as u64)
    });
    let s = relay.status();
    assert_eq!(s["introductions"]["log_asked"], 1, "{s}");
    assert_eq!(
        s["introductions"]["log_entries_received"].as_u64(),
        Some(entries.len() as u64)
    );
    // Again: the relay counts the member, which sends no log at all.
    let (answer, parts) = introduce(member, &relay.addr, org, &entries).await;
    assert_eq!((answer, parts), (RelayMsg::Welcome, 0));
    wait_until("the relay's status counts the welcome", WAIT, || {
        relay.status()["introductions"]["welcomed_at_once"] == 1
    });
    let s = relay.status();
    assert_eq!(s["introductions"]["log_asked"], 1, "{s}");
}
