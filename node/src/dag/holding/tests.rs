//! The bounds of [`Holding`]: bytes, per owner, age; and, against any interleaving of an
//! attacker's orphans, an honest author's items that complete are all admitted.

use std::collections::HashSet;

use proptest::prelude::*;

use super::*;

const LIMITS: HeldLimits = HeldLimits {
    items: 40,
    bytes: 4_000,
    max_age_ms: 1_000,
};

type Area = Holding<u32, u8, u32>;

/// Holds `id` (owned by `owner`, `size` bytes) under parent `parent`, which is never present.
fn orphan(h: &mut Area, id: u32, owner: u8, size: usize) -> Result<(), u32> {
    h.hold(id, id, &[1_000_000 + id], owner, size, |_| false)
}

/// Checks the counters against the held items and the bounds.
fn check(h: &Area) {
    let l = h.limits();
    assert!(h.len() <= l.items && h.bytes() <= l.bytes);
    let mut sum = 0;
    let mut owners: HashMap<u8, (usize, usize)> = HashMap::new();
    for held in h.items.values() {
        sum += held.size;
        let o = owners.entry(held.owner).or_default();
        o.0 += 1;
        o.1 += held.size;
    }
    assert_eq!(sum, h.bytes());
    for (owner, (n, b)) in owners {
        assert_eq!(h.owner_usage(&owner), (n, b));
        assert!(n <= l.owner_items() && b <= l.owner_bytes());
    }
    assert_eq!(h.order.len(), h.len());
}

#[test]
fn the_byte_bound_refuses_the_newcomer() {
    let mut h = Area::new(LIMITS);
    // Four owners of 1,000 bytes each fill the area's 4,000.
    for owner in 0..4u8 {
        for i in 0..4u32 {
            let id = u32::from(owner) * 100 + i;
            assert!(orphan(&mut h, id, owner, 250).is_ok());
        }
    }
    assert_eq!(h.bytes(), 4_000);
    assert_eq!(orphan(&mut h, 999, 9, 1), Err(999), "area full in bytes");
    assert_eq!(h.refused_full(), 1);
    assert_eq!(h.len(), 16, "nobody was pushed out");
    check(&h);
}

#[test]
fn one_owner_takes_at_most_its_share_and_evicts_nobody() {
    let mut h = Area::new(LIMITS);
    for i in 0..5 {
        assert!(orphan(&mut h, i, 0, 10).is_ok(), "honest item {i}");
    }
    // The attacker floods: past its share (10 items, 1,000 bytes) its newcomers are refused.
    let mut taken = 0;
    for i in 100..1_100 {
        if orphan(&mut h, i, 1, 90).is_ok() {
            taken += 1;
        }
    }
    assert_eq!(taken, 10);
    assert_eq!(h.owner_usage(&1), (10, 900));
    assert_eq!(orphan(&mut h, 2_000, 1, 200), Err(2_000), "bytes share");
    // The honest owner's items are all still held, and it can still add.
    assert!((0..5).all(|i| h.contains(&i)));
    assert!(orphan(&mut h, 5, 0, 10).is_ok());
    assert_eq!(h.owner_usage(&0), (6, 60));
    check(&h);
    // Count share alone: many tiny items.
    let mut h = Area::new(LIMITS);
    let ok = (0..100)
        .filter(|i| orphan(&mut h, *i, 3, 1).is_ok())
        .count();
    assert_eq!(ok, LIMITS.owner_items());
}

#[test]
fn held_items_expire_with_wall_time_and_are_no_longer_waited_for() {
    let mut h = Area::new(LIMITS);
    // Held before any time is known: aged from the first time given.
    assert!(orphan(&mut h, 1, 0, 10).is_ok());
    assert_eq!(h.expire(None), 0);
    assert_eq!(h.expire(Some(50_000)), 0);
    assert!(orphan(&mut h, 2, 1, 10).is_ok());
    assert_eq!(h.expire(Some(50_500)), 0);
    assert!(orphan(&mut h, 3, 1, 10).is_ok());
    assert!(!h.has_expired(Some(50_999)));
    assert!(h.has_expired(Some(51_000)));
    // Items 1 and 2 were stamped 50,000; item 3 at 50,500.
    assert_eq!(h.expire(Some(51_000)), 2);
    assert_eq!(h.expired(), 2);
    assert!(!h.contains(&1) && !h.contains(&2) && h.contains(&3));
    assert_eq!(h.missing(), BTreeSet::from([1_000_003]));
    assert_eq!(h.owner_usage(&0), (0, 0));
    // Time never goes back.
    assert_eq!(h.expire(Some(10)), 0);
    assert_eq!(h.expire(Some(51_500)), 1);
    assert!(h.is_empty() && h.missing().is_empty() && h.bytes() == 0);
    check(&h);
}

#[test]
fn parked_items_leave_in_hold_order_and_children_wait_for_them() {
    let mut h = Area::new(LIMITS);
    assert!(h.hold(7, 7, &[1], 0, 5, |_| true).is_ok());
    assert!(h.hold(3, 3, &[], 0, 5, |_| true).is_ok());
    // A child of the parked 7 waits for it; 7 is held, so not missing.
    assert!(h.hold(8, 8, &[7], 0, 5, |_| false).is_ok());
    assert!(h.missing().is_empty());
    let parked: Vec<u32> = h.parked().map(|(id, _)| id).collect();
    assert_eq!(parked, vec![7, 3]);
    assert_eq!(h.take(&3), Some(3));
    assert_eq!(h.take(&7), Some(7));
    assert_eq!(h.len(), 1);
    assert_eq!(h.missing(), BTreeSet::from([7]));
    assert_eq!(h.admitted(&7, |_| true), vec![8]);
    assert!(h.is_empty());
    check(&h);
}

/// An honest DAG: item `i` (ids `0..n`) has parents among `0..i`.
fn honest_dag() -> impl Strategy<Value = Vec<Vec<u32>>> {
    (1usize..=10).prop_flat_map(|n| {
        proptest::collection::vec(
            proptest::collection::vec(any::<prop::sample::Index>(), 0..3),
            n,
        )
        .prop_map(|raw| {
            raw.iter()
                .enumerate()
                .map(|(i, ps)| {
                    let mut ps: Vec<u32> = if i == 0 {
                        Vec::new()
                    } else {
                        ps.iter().map(|x| x.index(i) as u32).collect()
                    };
                    ps.sort_unstable();
                    ps.dedup();
                    ps
                })
                .collect()
        })
    })
}

proptest! {
    /// Honest items (owner 0, within its share) and an attacker's orphans (owner 1, any size,
    /// parents that never come), delivered in any interleaving: every honest item is admitted
    /// once all have arrived, and no bound is ever exceeded.
    #[test]
    fn an_attackers_orphans_never_keep_honest_items_out(
        dag in honest_dag(),
        order in proptest::collection::vec(any::<prop::sample::Index>(), 10),
        attacker in proptest::collection::vec((1usize..1_500, any::<bool>()), 0..200),
    ) {
        // The honest delivery order: a permutation drawn from `order`.
        let mut left: Vec<u32> = (0..dag.len() as u32).collect();
        let mut honest = Vec::new();
        for ix in order.iter().take(dag.len()) {
            honest.push(left.remove(ix.index(left.len())));
        }
        let mut h = Area::new(LIMITS);
        let mut admitted: HashSet<u32> = HashSet::new();
        let mut next_honest = honest.into_iter();
        let deliver = |h: &mut Area, admitted: &mut HashSet<u32>, id: u32| -> Result<(), TestCaseError> {
            let parents = &dag[id as usize];
            if parents.iter().all(|p| admitted.contains(p)) {
                let mut ready = vec![id];
                while let Some(x) = ready.pop() {
                    admitted.insert(x);
                    let present = |p: &u32| admitted.contains(p);
                    ready.extend(h.admitted(&x, present));
                }
            } else {
                let present = |p: &u32| admitted.contains(p);
                prop_assert!(h.hold(id, id, parents, 0, 100, present).is_ok(), "honest {} refused", id);
            }
            Ok(())
        };
        for (i, (size, honest_now)) in attacker.iter().enumerate() {
            if *honest_now && let Some(id) = next_honest.next() {
                deliver(&mut h, &mut admitted, id)?;
            }
            let _ = orphan(&mut h, 10_000 + i as u32, 1, *size);
            check(&h);
        }
        for id in next_honest {
            deliver(&mut h, &mut admitted, id)?;
            check(&h);
        }
        prop_assert_eq!(admitted.len(), dag.len());
        prop_assert!((0..dag.len() as u32).all(|i| !h.contains(&i)));
    }
}
