//! Grounded semantics for removals that threaten each other: the one home of the mutual-pair
//! and cycle rules, for the workspace logs ([`grounded`]) and, through [`on_cycles`], for the
//! organization log's verdicts (`super::verdicts`).
//!
//! Pure functions of sets: the result never depends on an order, a timestamp or a position's
//! value.

use std::collections::{HashMap, HashSet};

/// The removals that count among `candidates`, given the entries each one would void
/// (`threatened`, which may name entries that are not candidates): grounded semantics, computed
/// to a fixpoint, so the result does not depend on any order. A removal is voided iff a removal
/// that counts attacks it. In a mutual pair (each threatens the other) only the `senior` one
/// attacks; between two of no seniority order, neither does, and both count. Removals left
/// undecided on a longer cycle are decided by seniority, as the organization log does
/// (`super::verdicts`): those whose author no other one on a cycle is senior to count first,
/// and the cycle unwinds from them. The workspace logs' rule; the organization log applies the
/// same steps with rights added.
pub(crate) fn grounded(
    candidates: &[u32],
    threatened: &HashMap<u32, Vec<u32>>,
    senior: impl Fn(u32, u32) -> bool,
) -> Vec<u32> {
    let set: HashSet<u32> = candidates.iter().copied().collect();
    let threats: HashMap<u32, HashSet<u32>> = candidates
        .iter()
        .map(|r| {
            let t = threatened.get(r).into_iter().flatten();
            (*r, t.copied().filter(|p| set.contains(p)).collect())
        })
        .collect();
    let mut attackers: HashMap<u32, Vec<u32>> = HashMap::new();
    for (a, targets) in &threats {
        for t in targets {
            let mutual = threats.get(t).is_some_and(|back| back.contains(a));
            if !mutual || senior(*a, *t) {
                attackers.entry(*t).or_default().push(*a);
            }
        }
    }
    #[derive(Clone, Copy, PartialEq)]
    enum St {
        Undecided,
        In,
        Out,
    }
    let mut st: HashMap<u32, St> = candidates.iter().map(|r| (*r, St::Undecided)).collect();
    let propagate = |st: &mut HashMap<u32, St>| {
        loop {
            let mut changed = false;
            for r in candidates {
                if st[r] != St::Undecided {
                    continue;
                }
                let att = attackers.get(r).map(Vec::as_slice).unwrap_or(&[]);
                let next = if att.iter().any(|a| st[a] == St::In) {
                    St::Out
                } else if att.iter().all(|a| st[a] == St::Out) {
                    St::In
                } else {
                    continue;
                };
                st.insert(*r, next);
                changed = true;
            }
            if !changed {
                break;
            }
        }
    };
    propagate(&mut st);
    // What is left undecided lies on a cycle of attacks or downstream of one. Among the removals
    // on a cycle, those whose author no other one there is senior to count (all of them if
    // seniority orders none, which ancestry cannot do but costs nothing to guard); the rest is
    // then decided as above, and this repeats while cycles remain. So a removed member cannot
    // shelter its removals behind a cycle, and two accomplices on stale copies who close a
    // cycle with the senior members do not take them down.
    loop {
        let undecided: HashSet<u32> = st
            .iter()
            .filter(|(_, s)| **s == St::Undecided)
            .map(|(r, _)| *r)
            .collect();
        let mut attacks: HashMap<u32, Vec<u32>> = HashMap::new();
        for (t, atts) in &attackers {
            for a in atts
                .iter()
                .filter(|a| undecided.contains(a) && undecided.contains(t))
            {
                attacks.entry(*a).or_default().push(*t);
            }
        }
        let nodes: Vec<u32> = undecided.iter().copied().collect();
        let cycles = on_cycles(&nodes, &attacks);
        if cycles.is_empty() {
            break;
        }
        let first: Vec<u32> = cycles
            .iter()
            .copied()
            .filter(|p| !cycles.iter().any(|q| senior(*q, *p)))
            .collect();
        let count = if first.is_empty() {
            cycles.into_iter().collect()
        } else {
            first
        };
        for r in count {
            st.insert(r, St::In);
        }
        propagate(&mut st);
    }
    candidates
        .iter()
        .copied()
        .filter(|r| st[r] != St::Out)
        .collect()
}

/// The nodes of `graph` that lie on a cycle: in a strongly connected component of two or more,
/// or with an edge to themselves. Tarjan's algorithm, iterative, O(nodes + edges), so that
/// however many removals hostile members put on cycles, deciding them stays linear.
pub(super) fn on_cycles(nodes: &[u32], graph: &HashMap<u32, Vec<u32>>) -> HashSet<u32> {
    #[derive(Default)]
    struct Tarjan {
        index: HashMap<u32, usize>,
        low: HashMap<u32, usize>,
        stack: Vec<u32>,
        on_stack: HashSet<u32>,
    }
    impl Tarjan {
        fn visit(&mut self, v: u32) {
            let n = self.index.len();
            self.index.insert(v, n);
            self.low.insert(v, n);
            self.stack.push(v);
            self.on_stack.insert(v);
        }
        fn lower(&mut self, v: u32, to: usize) {
            if let Some(l) = self.low.get_mut(&v) {
                *l = (*l).min(to);
            }
        }
    }
    let succ = |x: u32| graph.get(&x).map_or(&[][..], Vec::as_slice);
    let mut t = Tarjan::default();
    let mut out = HashSet::new();
    for &root in nodes {
        if t.index.contains_key(&root) {
            continue;
        }
        t.visit(root);
        // (node, next successor to look at)
        let mut work: Vec<(u32, usize)> = vec![(root, 0)];
        while let Some(top) = work.last_mut() {
            let v = top.0;
            let s = succ(v);
            if let Some(&w) = s.get(top.1) {
                top.1 += 1;
                if !t.index.contains_key(&w) {
                    t.visit(w);
                    work.push((w, 0));
                } else if t.on_stack.contains(&w) {
                    t.lower(v, t.index[&w]);
                }
                continue;
            }
            work.pop();
            if let Some(&(parent, _)) = work.last() {
                t.lower(parent, t.low[&v]);
            }
            if t.low[&v] == t.index[&v] {
                let mut component = Vec::new();
                while let Some(w) = t.stack.pop() {
                    t.on_stack.remove(&w);
                    component.push(w);
                    if w == v {
                        break;
                    }
                }
                if component.len() > 1 || s.contains(&v) {
                    out.extend(component);
                }
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        /// `on_cycles` finds exactly the nodes from which a walk returns to themselves.
        #[test]
        fn on_cycles_is_the_nodes_that_reach_themselves(
            edges in proptest::collection::vec((0u32..8, 0u32..8), 0..24),
        ) {
            let mut graph: HashMap<u32, Vec<u32>> = HashMap::new();
            for (a, b) in &edges {
                graph.entry(*a).or_default().push(*b);
            }
            let nodes: Vec<u32> = (0..8).collect();
            let reaches_itself = |r: u32| {
                let (mut stack, mut seen) = (vec![r], HashSet::new());
                while let Some(x) = stack.pop() {
                    for t in graph.get(&x).into_iter().flatten() {
                        if *t == r {
                            return true;
                        }
                        if seen.insert(*t) {
                            stack.push(*t);
                        }
                    }
                }
                false
            };
            let expected: HashSet<u32> = nodes.iter().copied().filter(|r| reaches_itself(*r)).collect();
            prop_assert_eq!(on_cycles(&nodes, &graph), expected);
        }
    }
}
