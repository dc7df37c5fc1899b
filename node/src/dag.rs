//! An append-only DAG with fast ancestry queries, shared by the organization log and the
//! workspace DAGs. Sans-IO, no crypto: nodes are positions `0..len`.
//!
//! Nodes are pushed after their parents, so positions form a topological order (a *local* one:
//! it depends on arrival order and must never decide a verdict; only the ancestor relation does,
//! and that is the same on every device).
//!
//! Invariant kept by [`Dag::push`]: for every node `n`, every position below `low(n)` is an
//! ancestor of `n`. On a linear history `low(n) == n`, so "is `a` an ancestor of `b`" is one
//! comparison; otherwise the query walks back only through the concurrency window of `b`.
//! `low` is a lower bound computed with a bounded walk, so a pathological DAG costs slower
//! queries, never a wrong answer.
//!
//! The logs' holding area for items that wait ([`Holding`], bounded) lives in `holding`.

/// How many nodes [`Dag::push`] may visit to tighten `low`; past it `low` stays conservative.
const LOW_WALK_BUDGET: usize = 512;

mod holding;
pub use holding::{HeldLimits, Holding, MAX_HELD_AGE_MS};

/// An append-only DAG of positions.
#[derive(Debug, Default)]
pub struct Dag {
    parent_start: Vec<u32>,
    parent_list: Vec<u32>,
    low: Vec<u32>,
    children: Vec<u32>,
    // Scratch for walks, behind a lock so that queries take `&self` (a DAG can then be shared,
    // e.g. by the simulator's devices that hold the same organization log).
    scratch: std::sync::Mutex<Scratch>,
}

/// Walk scratch: a node is visited in the current walk iff `stamp[n] == walk`.
#[derive(Debug, Default)]
struct Scratch {
    stamp: Vec<u32>,
    walk: u32,
    stack: Vec<u32>,
}

impl Scratch {
    fn next_walk(&mut self, len: usize) -> u32 {
        if self.stamp.len() < len {
            self.stamp.resize(len, 0);
        }
        self.walk = self.walk.wrapping_add(1);
        if self.walk == 0 {
            self.stamp.iter_mut().for_each(|s| *s = 0);
            self.walk = 1;
        }
        self.walk
    }
}

impl Clone for Dag {
    fn clone(&self) -> Self {
        Dag {
            parent_start: self.parent_start.clone(),
            parent_list: self.parent_list.clone(),
            low: self.low.clone(),
            children: self.children.clone(),
            scratch: std::sync::Mutex::new(Scratch::default()),
        }
    }
}

impl Dag {
    /// An empty DAG.
    pub fn new() -> Self {
        Dag::default()
    }

    /// Number of nodes.
    pub fn len(&self) -> usize {
        self.low.len()
    }

    /// Whether there is no node.
    pub fn is_empty(&self) -> bool {
        self.low.is_empty()
    }

    /// The parents of `n`.
    pub fn parents(&self, n: u32) -> &[u32] {
        let n = n as usize;
        let start = self.parent_start[n] as usize;
        let end = self
            .parent_start
            .get(n + 1)
            .map_or(self.parent_list.len(), |e| *e as usize);
        &self.parent_list[start..end]
    }

    /// Adds a node whose parents are all already present; returns its position.
    ///
    /// # Panics
    /// If a parent is not below `len()`: callers resolve parents from their own index first.
    pub fn push(&mut self, parents: &[u32]) -> u32 {
        let n = self.len() as u32;
        assert!(parents.iter().all(|p| *p < n), "parent after child");
        self.parent_start.push(self.parent_list.len() as u32);
        self.parent_list.extend_from_slice(parents);
        for p in parents {
            self.children[*p as usize] += 1;
        }
        self.children.push(0);
        let low = self.compute_low(n, parents);
        self.low.push(low);
        n
    }

    /// Removes the last node (an entry refused after a tentative push).
    pub fn pop(&mut self) {
        let Some(n) = self.len().checked_sub(1) else {
            return;
        };
        let start = self.parent_start[n] as usize;
        for i in start..self.parent_list.len() {
            let p = self.parent_list[i] as usize;
            self.children[p] -= 1;
        }
        self.parent_list.truncate(start);
        self.parent_start.pop();
        self.children.pop();
        self.low.pop();
    }

    fn compute_low(&self, n: u32, parents: &[u32]) -> u32 {
        let mut floor = parents
            .iter()
            .map(|p| self.low[*p as usize])
            .max()
            .unwrap_or(0);
        // Visit ancestors at or above `floor` (bounded), then take the first position not visited.
        let mut guard = self.scratch();
        let sc = &mut *guard;
        let walk = sc.next_walk(n as usize + 1);
        sc.stack.clear();
        sc.stack.extend_from_slice(parents);
        let mut visited = 0usize;
        while let Some(m) = sc.stack.pop() {
            if m < floor || sc.stamp[m as usize] == walk {
                continue;
            }
            visited += 1;
            if visited > LOW_WALK_BUDGET {
                return floor;
            }
            sc.stamp[m as usize] = walk;
            floor = floor.max(self.low[m as usize]);
            let (s, e) = self.parent_range(m);
            sc.stack.extend_from_slice(&self.parent_list[s..e]);
        }
        let mut low = floor;
        while low < n && sc.stamp[low as usize] == walk {
            low += 1;
        }
        low
    }

    fn scratch(&self) -> std::sync::MutexGuard<'_, Scratch> {
        // A panic while walking cannot leave the scratch inconsistent (stamps are per walk).
        self.scratch
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn parent_range(&self, m: u32) -> (usize, usize) {
        let m = m as usize;
        let s = self.parent_start[m] as usize;
        let e = self
            .parent_start
            .get(m + 1)
            .map_or(self.parent_list.len(), |e| *e as usize);
        (s, e)
    }

    /// Whether `a` is a strict ancestor of `b`.
    pub fn is_ancestor(&self, a: u32, b: u32) -> bool {
        if a >= b {
            return false;
        }
        if a < self.low[b as usize] {
            return true;
        }
        let mut guard = self.scratch();
        let sc = &mut *guard;
        let walk = sc.next_walk(self.len());
        sc.stack.clear();
        let (s, e) = self.parent_range(b);
        sc.stack.extend_from_slice(&self.parent_list[s..e]);
        while let Some(m) = sc.stack.pop() {
            if m == a || a < self.low[m as usize] {
                return true;
            }
            if m < a || sc.stamp[m as usize] == walk {
                continue;
            }
            sc.stamp[m as usize] = walk;
            let (s, e) = self.parent_range(m);
            sc.stack.extend_from_slice(&self.parent_list[s..e]);
        }
        false
    }

    /// Whether `a` is `b` or one of its ancestors.
    pub fn is_ancestor_or_self(&self, a: u32, b: u32) -> bool {
        a == b || self.is_ancestor(a, b)
    }

    /// Whether `a` is in the causal past delimited by `heads`: one of them or an ancestor of one.
    pub fn in_past(&self, a: u32, heads: &[u32]) -> bool {
        heads.iter().any(|h| self.is_ancestor_or_self(a, *h))
    }

    /// Nodes without children.
    pub fn heads(&self) -> impl Iterator<Item = u32> + '_ {
        self.children
            .iter()
            .enumerate()
            .filter(|(_, c)| **c == 0)
            .map(|(n, _)| n as u32)
    }

    /// The roots and all their ancestors, as a membership vector.
    pub fn closure(&self, roots: impl IntoIterator<Item = u32>) -> Vec<bool> {
        let mut marked = vec![false; self.len()];
        for r in roots {
            marked[r as usize] = true;
        }
        for n in (0..self.len()).rev() {
            if marked[n] {
                let (s, e) = self.parent_range(n as u32);
                for i in s..e {
                    marked[self.parent_list[i] as usize] = true;
                }
            }
        }
        marked
    }

    /// Nodes in `set` none of whose children in `set` exist: the heads of a sub-DAG.
    pub fn heads_of(&self, set: &[bool]) -> Vec<u32> {
        let mut has_child = vec![false; self.len()];
        for (n, in_set) in set.iter().enumerate().take(self.len()) {
            if *in_set {
                let (s, e) = self.parent_range(n as u32);
                for i in s..e {
                    has_child[self.parent_list[i] as usize] = true;
                }
            }
        }
        (0..self.len())
            .filter(|n| set[*n] && !has_child[*n])
            .map(|n| n as u32)
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// Reference ancestry by brute force.
    fn ancestors(parents: &[Vec<u32>], b: u32) -> Vec<bool> {
        let mut anc = vec![false; parents.len()];
        let mut stack: Vec<u32> = parents[b as usize].clone();
        while let Some(m) = stack.pop() {
            if !anc[m as usize] {
                anc[m as usize] = true;
                stack.extend_from_slice(&parents[m as usize]);
            }
        }
        anc
    }

    proptest! {
        #[test]
        fn ancestry_matches_brute_force(edges in proptest::collection::vec(
            proptest::collection::vec(any::<prop::sample::Index>(), 0..4), 1..80)) {
            let mut dag = Dag::new();
            let mut parents: Vec<Vec<u32>> = Vec::new();
            for (n, ps) in edges.iter().enumerate() {
                let mut ps: Vec<u32> = if n == 0 { vec![] } else {
                    ps.iter().map(|i| i.index(n) as u32).collect()
                };
                ps.sort_unstable();
                ps.dedup();
                dag.push(&ps);
                parents.push(ps);
            }
            for b in 0..parents.len() as u32 {
                let anc = ancestors(&parents, b);
                for a in 0..parents.len() as u32 {
                    prop_assert_eq!(dag.is_ancestor(a, b), anc[a as usize], "a={} b={}", a, b);
                }
            }
        }
    }

    #[test]
    fn linear_history_has_tight_low_and_pop_restores_heads() {
        let mut dag = Dag::new();
        dag.push(&[]);
        for n in 1..100u32 {
            dag.push(&[n - 1]);
        }
        assert_eq!(dag.low[99], 99);
        assert!(dag.is_ancestor(0, 99));
        assert!(!dag.is_ancestor(99, 0));
        dag.push(&[50]);
        assert_eq!(dag.heads().collect::<Vec<_>>(), vec![99, 100]);
        dag.pop();
        assert_eq!(dag.heads().collect::<Vec<_>>(), vec![99]);
    }
}
