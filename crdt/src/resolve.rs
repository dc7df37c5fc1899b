//! Materialization: the raw cache (every concurrent value of every field) → the [`Tree`].
//!
//! All conflict rules are applied here, at read time, from the full multi-value data, so no
//! replica ever writes a "fix-up" change that could race. The rules, in order:
//! 1. An entry exists when it has a decodable place. Its place and name are the greatest of
//!    their concurrent values (`(time, ..)` order): rename vs rename and move vs move give one
//!    winner everywhere.
//! 2. A parent that is missing, not a folder, or the entry itself is replaced by the root (no
//!    orphans; a parent still in flight from another shard shows its child at the root until
//!    it arrives).
//! 3. Cycles: walking entries in id order, each cycle found is broken by undoing the move of the
//!    member with the greatest `(place time, id)`: it goes back to the parent it had before that
//!    move, or to the root if that fails too (a second undo of the same entry).
//! 4. Liveness: an entry is visible when it is not deleted (any concurrent `0` deletion value,
//!    i.e. an edit the delete did not see, counts as alive) or when a descendant is visible (so
//!    an edit inside a deleted folder brings the folder back).
//! 5. A file with several concurrent head versions shows the best one (see
//!    [`crate::schema::version_order`]); each other head appears as a sibling conflict copy
//!    `name (conflict <user> <device> <date>).ext` with a derived id, unless that copy was
//!    already made a real entry.
//! 6. Name clashes in a folder: members sorted by `(max(place time, name time), id)`; the first
//!    keeps the name, each later one gets the smallest free ` (n)` suffix, n ≥ 2.

use std::borrow::Cow;
use std::collections::BTreeSet;
use std::sync::Arc;

use crate::codec::Place;
use crate::ids::{EntryId, conflict_copy_id};
use crate::model::{Kind, Version};
use crate::names::{check_name, conflict_name, fallback_name, with_suffix};
use crate::schema::{RawCache, RawEntry};
use crate::tree::{Node, Tree};

struct Item<'a> {
    id: EntryId,
    raw: Option<&'a RawEntry>,
    place: Place,
    name: Cow<'a, str>,
    order_time: i64,
}

/// A folder member being named: (name, order time, id, node).
type Member<'a> = (Cow<'a, str>, i64, EntryId, Node);

/// Builds the tree from the raw cache.
pub(crate) fn materialize(cache: &RawCache) -> Tree {
    // Index 0 is the root (all-zero id sorts first, and is never stored).
    let root_place = Place {
        time: i64::MIN,
        kind: Kind::Folder,
        parent: EntryId::ROOT,
        prev: EntryId::ROOT,
    };
    let mut items: Vec<Item<'_>> = Vec::with_capacity(cache.entries.len() + 1);
    items.push(Item {
        id: EntryId::ROOT,
        raw: None,
        place: root_place,
        name: Cow::Borrowed(""),
        order_time: 0,
    });
    for (id, raw) in &cache.entries {
        let Some(place) = raw.place() else { continue };
        let named = raw.name();
        let name = match named {
            Some(n) if check_name(&n.name).is_ok() => Cow::Borrowed(n.name.as_str()),
            _ => Cow::Owned(fallback_name(*id)),
        };
        let order_time = place.time.max(named.map_or(i64::MIN, |n| n.time));
        items.push(Item {
            id: *id,
            raw: Some(raw),
            place: *place,
            name,
            order_time,
        });
    }
    let find = |target: EntryId| items.binary_search_by(|it| it.id.cmp(&target)).ok();
    let folder_ix = |target: EntryId, me: usize| match find(target) {
        Some(i) if i != me && items[i].place.kind == Kind::Folder => i,
        _ => 0,
    };
    let n = items.len();
    let mut parent: Vec<usize> = (0..n)
        .map(|i| {
            if i == 0 {
                0
            } else {
                folder_ix(items[i].place.parent, i)
            }
        })
        .collect();
    let mut tree = Tree {
        irregular: (1..n).any(|i| parent[i] == 0 && !items[i].place.parent.is_root()),
        ..Tree::default()
    };
    tree.irregular |= break_cycles(&items, &mut parent, folder_ix);

    // Children lists (in id order) and a root-first order.
    let mut kids: Vec<Vec<usize>> = vec![Vec::new(); n];
    for i in 1..n {
        kids[parent[i]].push(i);
    }
    let mut order = Vec::with_capacity(n);
    let mut stack = vec![0usize];
    while let Some(i) = stack.pop() {
        order.push(i);
        stack.extend(kids[i].iter().copied());
    }
    let mut alive = vec![false; n];
    for &i in order.iter().rev() {
        alive[i] = i == 0
            || items[i].raw.is_some_and(RawEntry::self_alive)
            || kids[i].iter().any(|&c| alive[c]);
    }
    tree.resurrected = (1..n).any(|i| alive[i] && !items[i].raw.is_some_and(RawEntry::self_alive));
    let mut all_nodes: Vec<(EntryId, Node)> = Vec::with_capacity(n + 8);
    let mut all_children: Vec<(EntryId, Vec<EntryId>)> = Vec::new();
    let mut members: Vec<Member<'_>> = Vec::new();
    for &f in &order {
        if !alive[f] || items[f].place.kind != Kind::Folder {
            continue;
        }
        let folder_id = items[f].id;
        members.clear();
        for &c in &kids[f] {
            if !alive[c] {
                continue;
            }
            let it = &items[c];
            if it.place.kind != Kind::File {
                members.push((
                    it.name.clone(),
                    it.order_time,
                    it.id,
                    node(it, folder_id, None),
                ));
                continue;
            }
            let (current, losers) = it.raw.map(RawEntry::current_and_losers).unwrap_or_default();
            members.push((
                it.name.clone(),
                it.order_time,
                it.id,
                node(it, folder_id, current.cloned()),
            ));
            for loser in losers {
                let copy_id = conflict_copy_id(it.id, loser.id);
                if find(copy_id).is_some() {
                    continue; // already promoted to a real entry
                }
                members.push(conflict_member(it, folder_id, copy_id, loser));
                tree.with_copies.insert(it.id);
            }
        }
        members.sort_by(|a, b| (&a.0, a.1, a.2).cmp(&(&b.0, b.1, b.2)));
        if assign_names(&mut members) {
            tree.clash_folders.insert(folder_id);
            members.sort_by(|a, b| a.0.cmp(&b.0));
        }
        let mut list: Vec<EntryId> = Vec::with_capacity(members.len());
        for (name, _, id, mut nd) in members.drain(..) {
            nd.name = name.into_owned();
            list.push(id);
            all_nodes.push((id, nd));
        }
        all_children.push((folder_id, list));
    }
    all_nodes.push((
        EntryId::ROOT,
        Node {
            id: EntryId::ROOT,
            parent: EntryId::ROOT,
            name: String::new(),
            kind: Kind::Folder,
            current: None,
            conflict_of: None,
            is_virtual: false,
        },
    ));
    tree.nodes = all_nodes.into_iter().collect();
    tree.children = all_children.into_iter().collect();
    tree
}

fn node(it: &Item<'_>, parent: EntryId, current: Option<Arc<Version>>) -> Node {
    Node {
        id: it.id,
        parent,
        name: String::new(),
        kind: it.place.kind,
        current,
        conflict_of: None,
        is_virtual: false,
    }
}

fn conflict_member<'a>(
    origin: &Item<'_>,
    folder: EntryId,
    copy_id: EntryId,
    loser: &Arc<Version>,
) -> Member<'a> {
    let a = &loser.author;
    let name = conflict_name(
        &origin.name,
        &a.user_name,
        &a.device_label,
        loser.manifest.modified_ms,
    );
    let nd = Node {
        id: copy_id,
        parent: folder,
        name: String::new(),
        kind: Kind::File,
        current: Some(Arc::clone(loser)),
        conflict_of: Some(origin.id),
        is_virtual: true,
    };
    (Cow::Owned(name), loser.manifest.modified_ms, copy_id, nd)
}

/// Rule 6. `members` is sorted by `(name, order time, id)`. True when a suffix was given.
fn assign_names(members: &mut [Member<'_>]) -> bool {
    let clash = members.windows(2).any(|w| w[0].0 == w[1].0);
    if !clash {
        return false;
    }
    let mut taken: BTreeSet<String> = members.iter().map(|m| m.0.to_string()).collect();
    let mut i = 0;
    while i < members.len() {
        let mut j = i + 1;
        while j < members.len() && members[j].0 == members[i].0 {
            j += 1;
        }
        for member in &mut members[i + 1..j] {
            let base = member.0.to_string();
            let mut n = 2u64;
            let name = loop {
                let cand = with_suffix(&base, &format!(" ({n})"));
                if !taken.contains(&cand) {
                    break cand;
                }
                n += 1;
            };
            taken.insert(name.clone());
            member.0 = Cow::Owned(name);
        }
        i = j;
    }
    true
}

/// Rule 3. Walks every entry up to the root; a walk that meets itself is a cycle. True when a
/// move was undone.
fn break_cycles(
    items: &[Item<'_>],
    parent: &mut [usize],
    folder_ix: impl Fn(EntryId, usize) -> usize,
) -> bool {
    let mut any = false;
    const NEW: u8 = 0;
    const ON_PATH: u8 = 1;
    const DONE: u8 = 2;
    let n = items.len();
    let mut state = vec![NEW; n];
    state[0] = DONE;
    let mut undone = vec![false; n];
    let mut path = Vec::new();
    for start in 1..n {
        loop {
            path.clear();
            let mut cur = start;
            while state[cur] == NEW {
                state[cur] = ON_PATH;
                path.push(cur);
                cur = parent[cur];
            }
            if state[cur] == DONE {
                for &p in &path {
                    state[p] = DONE;
                }
                break;
            }
            // `cur` is on the path: the cycle is path[pos..].
            let pos = path.iter().position(|&p| p == cur).unwrap_or(0);
            let victim = path[pos..]
                .iter()
                .copied()
                .max_by_key(|&i| (items[i].place.time, items[i].id))
                .unwrap_or(cur);
            parent[victim] = if undone[victim] {
                0
            } else {
                folder_ix(items[victim].place.prev, victim)
            };
            undone[victim] = true;
            any = true;
            for &p in &path {
                state[p] = NEW;
            }
        }
    }
    any
}
