//! What the adversary property test reads off a replica: its entries with their ancestors and
//! kept flags, and the checks of invariants 2 and 4 on them (see the parent module's doc).

use std::collections::{HashMap, HashSet};

use super::*;
use crate::trust::admission::{least_privileged, needs_admin, profile_set};
use crate::trust::ids::MAX_CLOCK_SKEW_MS;

impl View {
    pub(super) fn of(log: &OrgLog) -> View {
        let dropped: HashSet<EntryId> = log.state().dropped.iter().copied().collect();
        let (mut pos, mut bodies, mut anc, mut kept) =
            (HashMap::new(), Vec::new(), Vec::new(), Vec::new());
        let words = log.len().div_ceil(64);
        for (i, e) in log.entries().enumerate() {
            let mut a = vec![0u64; words];
            for p in &e.body().parents {
                let p = pos[p];
                a[p / 64] |= 1u64 << (p % 64);
                let pa: &Vec<u64> = &anc[p];
                for (w, x) in a.iter_mut().zip(pa) {
                    *w |= x;
                }
            }
            pos.insert(e.id(), i);
            bodies.push(e.body().clone());
            anc.push(a);
            kept.push(!dropped.contains(&e.id()));
        }
        let mut sorted: Vec<EntryId> = pos.keys().copied().collect();
        sorted.sort_unstable();
        View {
            sorted,
            pos,
            bodies,
            anc,
            kept,
        }
    }

    pub(super) fn is_ancestor(&self, a: usize, b: usize) -> bool {
        self.anc[b][a / 64] & (1u64 << (a % 64)) != 0
    }

    pub(super) fn concurrent(&self, a: usize, b: usize) -> bool {
        a != b && !self.is_ancestor(a, b) && !self.is_ancestor(b, a)
    }

    /// Whether entry `p` (by a device of `user`) needs the admin profile.
    pub(super) fn needs_admin(&self, p: usize, st: &OrgState, user: &UserId) -> bool {
        let b = &self.bodies[p];
        let owner = match &b.cert {
            Certificate::DeviceRevoked { device } => st.devices.get(device).map(|d| d.user),
            _ => None,
        };
        needs_admin(b, user, owner, false)
    }

    /// Positions of the removals of `x` by a founder: revocations, or demotions.
    pub(super) fn founder_removals(
        &self,
        x: &Adv,
        founders: &[DeviceId],
        revoke: bool,
    ) -> Vec<usize> {
        (0..self.bodies.len())
            .filter(|p| {
                let b = &self.bodies[*p];
                founders.contains(&b.author)
                    && match &b.cert {
                        Certificate::DeviceRevoked { device } => revoke && *device == x.keys.id(),
                        Certificate::UserRevoked { user } => revoke && *user == x.user,
                        Certificate::ProfileChanged { user, profile } => {
                            !revoke && *user == x.user && *profile != Profile::Admin
                        }
                        _ => false,
                    }
            })
            .collect()
    }

    /// Whether a kept removal concurrent with `r` removes `r`'s author, other than by `x`.
    pub(super) fn voided_by_other_than(&self, r: usize, x: &DeviceId, st: &OrgState) -> bool {
        (0..self.bodies.len()).any(|q| {
            self.kept[q]
                && self.bodies[q].author != *x
                && self.concurrent(q, r)
                && self.removes_author(q, r, st)
        })
    }

    /// Whether entry `q` revokes the author of entry `r` (or its user), or demotes its user.
    pub(super) fn removes_author(&self, q: usize, r: usize, st: &OrgState) -> bool {
        let author = self.bodies[r].author;
        let user = st.devices.get(&author).map(|d| d.user);
        match &self.bodies[q].cert {
            Certificate::DeviceRevoked { device } => *device == author,
            Certificate::UserRevoked { user: u } => Some(*u) == user,
            Certificate::ProfileChanged { user: u, profile } => {
                Some(*u) == user && *profile != Profile::Admin
            }
            _ => false,
        }
    }

    /// Whether `e` and the removal `r` are on a cycle of three concurrent removals (`r`
    /// removes `e`'s author, `e` the author of a removal `q` of `r`'s author): grounded
    /// semantics leaves it undecided and all three count (`trust::removal::grounded`).
    pub(super) fn on_removal_cycle(&self, e: usize, r: usize, st: &OrgState) -> bool {
        (0..self.bodies.len()).any(|q| {
            self.kept[q]
                && self.concurrent(q, r)
                && self.concurrent(e, q)
                && self.removes_author(q, r, st)
                && self.removes_author(e, q, st)
        })
    }
}

/// Invariant 2 (a, b) for adversary `x` on replica `ri`.
pub(super) fn check_adversary(ri: usize, v: &View, st: &OrgState, x: &Adv, founders: &[DeviceId]) {
    let me = x.keys.id();
    let mine: Vec<usize> = (0..v.bodies.len())
        .filter(|p| v.bodies[*p].author == me && v.kept[*p])
        .collect();
    for revoke in [true, false] {
        for r in v.founder_removals(x, founders, revoke) {
            if !v.kept[r] {
                assert!(
                    v.voided_by_other_than(r, &me, st),
                    "inv 2a: replica {ri}: a founder's removal of X ({:?}) is voided by X alone",
                    v.bodies[r].cert
                );
                continue;
            }
            for e in mine.iter().filter(|e| !v.on_removal_cycle(**e, r, st)) {
                assert!(
                    !(v.concurrent(*e, r) && (revoke || v.needs_admin(*e, st, &x.user))),
                    "inv 2a: replica {ri}: X's {:?} counts, concurrent with the founder removal {:?}",
                    v.bodies[*e].cert,
                    v.bodies[r].cert
                );
            }
        }
    }
    for e in mine.into_iter().filter(|e| v.needs_admin(*e, st, &x.user)) {
        let settings: Vec<usize> = (0..e)
            .filter(|p| {
                v.kept[*p] && v.is_ancestor(*p, e) && profile_set(&v.bodies[*p], &x.user).is_some()
            })
            .collect();
        let maximal = settings
            .iter()
            .filter(|a| !settings.iter().any(|b| v.is_ancestor(**a, *b)));
        let profile = least_privileged(maximal.filter_map(|p| profile_set(&v.bodies[*p], &x.user)));
        let voided_grant = (0..e).any(|p| {
            !v.kept[p]
                && v.is_ancestor(p, e)
                && profile_set(&v.bodies[p], &x.user) == Some(Profile::Admin)
        });
        if SKIP_KNOWN && voided_grant {
            continue;
        }
        assert_eq!(
            profile,
            Some(Profile::Admin),
            "inv 2b: replica {ri}: X's {:?} counts, but X is no admin in its kept causal past",
            v.bodies[e].cert
        );
    }
}

/// Honest sync: what one replica admitted, another admits too (held entries that it releases
/// may be refused: they were never admitted anywhere).
pub(super) fn send(entries: &[Vec<u8>], to: &mut OrgLog) {
    let sent: HashSet<EntryId> = entries.iter().map(|e| id_of(e)).collect();
    let r = to.ingest(entries.to_vec());
    let refused: Vec<_> = r
        .rejected
        .iter()
        .filter(|(id, _)| sent.contains(id))
        .collect();
    assert!(
        refused.is_empty(),
        "inv 1: an honest sync refused {refused:?}"
    );
}

/// Known and not fixed (the ignored tests below): a removal of a device or user that removal
/// wins voided still binds admission when it is in the causal past of a later draft, and rights
/// granted by a voided entry still count. `true` skips exactly those two cases (invariants 4
/// and 2b), so that the property test checks everything else; `false` finds them.
pub(super) const SKIP_KNOWN: bool = true;

/// Invariant 4 for `dev`'s own draft `bytes`, ingested by its log with report `r`.
pub(super) fn may_write(
    dev: &Dev,
    bytes: &[u8],
    r: &IngestReport,
    wall: u64,
) -> Result<(), String> {
    let body = entry::decode(bytes.to_vec()).unwrap().body().clone();
    for (_, why) in &r.rejected {
        let bad = matches!(
            why,
            Rejection::AuthorRevoked { .. }
                | Rejection::UnknownAuthor { .. }
                | Rejection::NotAdmin { .. }
                | Rejection::TooManyParents { .. }
                | Rejection::TimeNotAfterParents
                | Rejection::TimeOutOfRange
        );
        let known = matches!(
            why,
            Rejection::AuthorRevoked { .. } | Rejection::NotAdmin { .. }
        ) && dropped_in_past(&dev.log, &body.parents, |b| removes(b, dev));
        if bad && !(SKIP_KNOWN && known) {
            return Err(format!("refused {why:?} ({} parents)", body.parents.len()));
        }
    }
    if !r.future.is_empty() && body.time.millis() > wall + MAX_CLOCK_SKEW_MS + 1 {
        return Err(format!("held until {:?}", body.time));
    }
    Ok(())
}

/// Whether `b` revokes `dev` or its user, or demotes its user.
pub(super) fn removes(b: &EntryBody, dev: &Dev) -> bool {
    match &b.cert {
        Certificate::DeviceRevoked { device } => *device == dev.keys.id(),
        Certificate::UserRevoked { user } => *user == dev.user,
        Certificate::ProfileChanged { user, profile } => {
            *user == dev.user && *profile != Profile::Admin
        }
        _ => false,
    }
}

/// Whether an entry that removal wins dropped, and that `pred` selects, is among `heads` or
/// their ancestors in `log`.
pub(super) fn dropped_in_past(
    log: &OrgLog,
    heads: &[EntryId],
    pred: impl Fn(&EntryBody) -> bool,
) -> bool {
    let dropped: HashSet<EntryId> = log.state().dropped.iter().copied().collect();
    let (mut stack, mut seen) = (heads.to_vec(), HashSet::new());
    while let Some(id) = stack.pop() {
        let Some(e) = log.get(&id).filter(|_| seen.insert(id)) else {
            continue;
        };
        if dropped.contains(&id) && pred(e.body()) {
            return true;
        }
        stack.extend(&e.body().parents);
    }
    false
}
