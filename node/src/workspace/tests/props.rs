//! Property test: every delivery order and batch size gives the same verdicts and the same state.

use proptest::prelude::*;
use rand::{SeedableRng, rngs::StdRng};

use super::*;

// ---- property: delivery order does not change verdicts or state ----

#[derive(Debug, Clone)]
enum Op {
    Content(usize),
    Grant(usize, usize, u8),
    Remove(usize, usize),
    Rotate(usize),
    Merge(usize),
    RevokeDevice(usize),
    Sync(usize, usize),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => (0..5usize).prop_map(Op::Content),
        2 => (0..5usize, 0..5usize, 0u8..4).prop_map(|(a, b, r)| Op::Grant(a, b, r)),
        1 => (0..5usize, 0..5usize).prop_map(|(a, b)| Op::Remove(a, b)),
        1 => (0..5usize).prop_map(Op::Rotate),
        1 => (0..5usize).prop_map(Op::Merge),
        1 => (1..5usize).prop_map(Op::RevokeDevice),
        4 => (0..5usize, 0..5usize).prop_map(|(a, b)| Op::Sync(a, b)),
    ]
}

fn sync_pair(d: &mut [Dev], a: usize, b: usize) {
    if a == b {
        return;
    }
    let (ao, aw) = (org_bytes(&d[a].org), ws_bytes(&d[a].ws));
    let (bo, bw) = (org_bytes(&d[b].org), ws_bytes(&d[b].ws));
    for (x, o, ws) in [(b, ao, aw), (a, bo, bw)] {
        d[x].org.ingest(o);
        d[x].ws.org_changed(&d[x].org);
        d[x].ingest_ws(ws);
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(32))]
    #[test]
    fn every_delivery_order_gives_the_same_workspace(seed in 0u64..500, ops in proptest::collection::vec(op(), 1..30), perm in any::<u64>(), batch in 1usize..8) {
        let (mut w, mut d) = shared(seed);
        let mut written: Vec<Vec<u8>> = ws_bytes(&d[0].ws);
        let roles = [Role::Reader, Role::Contributor, Role::Manager, Role::Owner];
        for o in &ops {
            let n = d.len();
            match *o {
                Op::Content(a) => { let (b, _) = w.content(&mut d[a % n]); if !b.is_empty() { written.push(b); } }
                Op::Grant(a, b, r) => {
                    let user = d[b % n].user;
                    let (x, _) = w.try_write(&mut d[a % n], Kind::Access, None, encode_payload(&AccessChange::Grant { user, role: roles[r as usize] }));
                    if !x.is_empty() { written.push(x); }
                }
                Op::Remove(a, b) => {
                    let user = d[b % n].user;
                    let (x, _) = w.try_write(&mut d[a % n], Kind::Access, None, encode_payload(&AccessChange::Remove { user }));
                    if !x.is_empty() { written.push(x); }
                }
                Op::Rotate(a) => {
                    let a = a % n;
                    let st = d[a].st();
                    let orgst = d[a].org.state().clone();
                    let sealed = st.members.keys().filter(|u| orgst.users[u].revoked_by.is_none()).map(|u| SealedKeys { user: *u, generation: orgst.users[u].key.generation, epochs: Vec::new(), blob: vec![1] }).collect::<Vec<_>>();
                    if !sealed.is_empty() {
                        let (x, _) = w.try_write(&mut d[a], Kind::Keys, None, encode_keys(&EpochKeys { commitment: Some([0; 32]), sealed }));
                        if !x.is_empty() { written.push(x); }
                    }
                }
                Op::Merge(a) => { let (x, _) = w.try_write(&mut d[a % n], Kind::Merge, None, vec![]); if !x.is_empty() { written.push(x); } }
                Op::RevokeDevice(t) => {
                    let dev = d[t % n].keys.id();
                    if t % n != 0 && d[0].org.state().is_active(&dev) {
                        w.org_write(&mut d[0], Certificate::DeviceRevoked { device: dev });
                    }
                }
                Op::Sync(a, b) => sync_pair(&mut d, a % n, b % n),
            }
        }
        // Two fresh devices get everything in different orders and batch sizes.
        let org_all = org_bytes(&d[0].org);
        let mut everything_org = OrgLog::new(w.org);
        for x in &d { everything_org.ingest(org_bytes(&x.org)); }
        let _ = org_all;
        let org_full: Vec<Vec<u8>> = org_bytes(&everything_org);
        let run = |order: &[usize], batch: usize| {
            let mut org = OrgLog::new(w.org);
            org.ingest(org_full.clone());
            let mut ws = WorkspaceLog::new(w.org, w.ws);
            for c in order.chunks(batch) {
                ws.ingest(c.iter().map(|i| written[*i].clone()).collect(), &org);
            }
            let admitted: Vec<bool> = written.iter().map(|b| ws.contains(&EnvelopeId(*blake3::hash(b).as_bytes()))).collect();
            (admitted, ws.state(&org), ws.pending_len())
        };
        let in_order: Vec<usize> = (0..written.len()).collect();
        let mut shuffled = in_order.clone();
        let mut r = StdRng::seed_from_u64(perm);
        for i in (1..shuffled.len()).rev() {
            let j = (rand::Rng::next_u64(&mut r) % (i as u64 + 1)) as usize;
            shuffled.swap(i, j);
        }
        let (a1, s1, p1) = run(&in_order, written.len());
        let (a2, s2, p2) = run(&shuffled, batch);
        prop_assert_eq!(a1, a2);
        prop_assert_eq!(s1, s2);
        prop_assert_eq!(p1, 0);
        prop_assert_eq!(p2, 0);
    }
}
