//! The receive limit and slow senders, on simulated time: block requests are paced by the
//! engine's bucket, and a peer that delivers slowly keeps its assignments.

use std::collections::HashMap;

use super::*;

const KIB: u64 = 1024;

fn id(b: &[u8]) -> [u8; 32] {
    *blake3::hash(b).as_bytes()
}

/// Block requests from device 0 waiting in the queue.
fn block_wants(s: &Sim) -> usize {
    s.queue
        .iter()
        .filter(|(a, _, bytes)| *a == 0 && matches!(Msg::decode(bytes), Ok(Msg::BlockWant { .. })))
        .count()
}

#[test]
fn a_receive_limit_paces_block_requests_so_blocks_arrive_at_the_limit() {
    let mut s = Sim::new(2, 7);
    s.connect_all();
    s.run();
    s.share_with_all();
    s.run();
    // 40 blocks of 50 KiB at 100 KiB/s: 2000 KiB, 25 KiB of burst, so 19.75 s.
    let blocks: Vec<Vec<u8>> = (0..40u8).map(|i| vec![i; 50 << 10]).collect();
    let mut stores = vec![HashMap::new(); 2];
    for b in &blocks {
        stores[1].insert(id(b), b.clone());
    }
    // The engine's clock is the simulation's from here on.
    let now = s.now;
    s.devs[0].engine.handle_timeout(now);
    s.flush(0);
    s.run();
    s.devs[0].engine.set_recv_limit(Some(100 * KIB));
    assert_eq!(s.devs[0].engine.recv_limit(), Some(100 * KIB));
    let doc = DocId::Workspace(s.ws);
    s.devs[0]
        .engine
        .fetch_blocks_sized(doc, blocks.iter().map(|b| (id(b), b.len() as u64)));
    s.flush(0);
    let start = s.now;
    let mut received = 0u64;
    for _ in 0..1_000 {
        received += run_with_blocks(&mut s, &stores)
            .iter()
            .filter(|(i, e)| *i == 0 && matches!(e, Event::BlockReceived { .. }))
            .count() as u64;
        // Never more than the burst and the rate allow by now.
        let allowed = 25 * KIB + 100 * KIB * (s.now - start) / 1000;
        assert!(
            received * 50 * KIB <= allowed,
            "{received} blocks by {}",
            s.now
        );
        if received == 40 {
            break;
        }
        let next = s.devs[0].engine.poll_timeout().unwrap();
        assert!(next > s.now, "the engine wants a timer while blocks wait");
        s.now = next;
        s.devs[0].engine.handle_timeout(s.now);
        s.flush(0);
    }
    assert_eq!(received, 40);
    assert_eq!(
        s.now - start,
        19_750,
        "the last block was asked for as soon as it was paid for"
    );
}

#[test]
fn a_peer_that_delivers_slowly_keeps_its_blocks() {
    let mut s = Sim::new(2, 8);
    s.connect_all();
    s.run();
    s.share_with_all();
    s.run();
    let blocks: Vec<Vec<u8>> = (0..3u8).map(|i| vec![i; 1000]).collect();
    let doc = DocId::Workspace(s.ws);
    s.devs[0]
        .engine
        .fetch_blocks(doc, blocks.iter().map(|b| id(b)));
    s.flush(0);
    assert_eq!(block_wants(&s), 1);
    s.run();
    while s.devs[1].engine.poll_event().is_some() {}
    let me = s.devs[0].keys.id();
    // One block every 25 s: each gap is under the timeout (30 s), the whole far beyond it.
    for (k, b) in blocks.iter().enumerate() {
        s.now += 25_000;
        let now = s.now;
        s.devs[0].engine.handle_timeout(now);
        s.flush(0);
        assert_eq!(block_wants(&s), 0, "block {k} was asked for again");
        s.devs[1]
            .engine
            .provide_blocks(me, doc, vec![(id(b), b.clone())], Vec::new());
        s.flush(1);
        s.run();
    }
    assert_eq!(s.devs[0].engine.blocks_pending(), 0);
    let got = std::iter::from_fn(|| s.devs[0].engine.poll_event())
        .filter(|e| matches!(e, Event::BlockReceived { .. }))
        .count();
    assert_eq!(got, 3);
}
