//! What the adversary property test reads off a replica: its entries with their ancestors and
//! kept flags, and the checks of invariants 2 and 4 on them (see the parent module's doc).

use std::collections::{HashMap, HashSet};

use super::*;
use crate::trust::admission::{least_privileged, needs_admin, profile_set};
use crate::trust::ids::MAX_CLOCK_SKEW_MS;

impl View {
    /// Every entry: position, kept, author, certificate, parents (debugging a failure).
    pub(super) fn dump(&self) -> String {
        let mut out = String::new();
        for (i, b) in self.bodies.iter().enumerate() {
            let parents: Vec<usize> = b.parents.iter().map(|p| self.pos[p]).collect();
            let cert = match &b.cert {
                Certificate::Genesis(_) => "genesis".to_string(),
                Certificate::UserAdded(u) => format!(
                    "user_added {:?} dev {:?} {:?}",
                    u.user, u.device.device, u.profile
                ),
                Certificate::DeviceAdded(d) => {
                    format!("device_added {:?} to {:?}", d.device, d.user)
                }
                c => format!("{c:?}"),
            };
            out += &format!(
                "{i} kept={} by {:?} {cert} parents {parents:?}\n",
                self.kept[i], b.author
            );
        }
        out
    }

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
        let ids: Vec<EntryId> = log.entries().map(|e| e.id()).collect();
        let mut sorted = ids.clone();
        sorted.sort_unstable();
        View {
            sorted,
            ids,
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

    /// The user a device is certified to by the admitted certificates, counted or not (as
    /// `trust::verdicts` reads it).
    pub(super) fn raw_owner(&self, device: &DeviceId) -> Option<UserId> {
        self.bodies.iter().find_map(|b| {
            b.cert
                .device_added()
                .filter(|(d, _)| d.device == *device)
                .map(|(d, _)| d.user)
        })
    }

    /// Whether entry `p` (by a device of `user`) needs the admin profile.
    pub(super) fn needs_admin(&self, p: usize, _st: &OrgState, user: &UserId) -> bool {
        let b = &self.bodies[p];
        let owner = match &b.cert {
            Certificate::DeviceRevoked { device } => self.raw_owner(device),
            _ => None,
        };
        needs_admin(&b.cert, user, owner, false)
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

    /// Whether entry `e` removes only its own author's user (a device of it, the user, or its
    /// admin profile).
    pub(super) fn confession(&self, e: usize, st: &OrgState) -> bool {
        let user = st.devices.get(&self.bodies[e].author).map(|d| d.user);
        match &self.bodies[e].cert {
            // By its certificates, counted or not (a device of X's that removal wins voided is
            // still X's: revoking it is still a confession).
            Certificate::DeviceRevoked { device } => {
                user.is_some() && self.raw_owner(device) == user
            }
            Certificate::UserRevoked { user: u } => Some(*u) == user,
            Certificate::ProfileChanged { user: u, profile } => {
                Some(*u) == user && *profile != Profile::Admin
            }
            _ => false,
        }
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
    /// semantics leaves it undecided and the most senior author's removal counts first
    /// (`trust::verdicts`), which may leave `e` counting.
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
pub(super) fn check_adversary(
    ri: usize,
    v: &View,
    st: &OrgState,
    x: &Adv,
    founders: &[DeviceId],
    unbacked: &HashSet<EntryId>,
) {
    let me = x.keys.id();
    let mine: Vec<usize> = (0..v.bodies.len())
        .filter(|p| v.bodies[*p].author == me && v.kept[*p])
        .collect();
    for revoke in [true, false] {
        for r in v.founder_removals(x, founders, revoke) {
            if !v.kept[r] {
                // Written by a founder its own state did not count (admission used to refuse
                // most of these; now admitted, they need not count): not a removal of X that an
                // honest device would write.
                if unbacked.contains(&v.ids[r]) {
                    continue;
                }
                assert!(
                    v.voided_by_other_than(r, &me, st),
                    "inv 2a: replica {ri}: a founder's removal of X ({:?}) is voided by X alone\n{}",
                    v.bodies[r].cert,
                    v.dump()
                );
                continue;
            }
            // X's removals of its own user (a confession) are never voided: they take rights
            // only from X.
            let others = |e: &&usize| !v.on_removal_cycle(**e, r, st) && !v.confession(**e, st);
            for e in mine.iter().filter(others) {
                assert!(
                    !(v.concurrent(*e, r) && (revoke || v.needs_admin(*e, st, &x.user))),
                    "inv 2a: replica {ri}: X's {:?} counts, concurrent with the founder removal {:?}\n{}",
                    v.bodies[*e].cert,
                    v.bodies[r].cert,
                    v.dump()
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

/// Invariant 4 for `dev`'s own draft `bytes`, ingested by its log with report `r`: not
/// refused for a reason its own state contradicts, and once admitted, it counts (drafted on the
/// kept heads, its kept past is that state).
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
        if bad {
            return Err(format!("refused {why:?} ({} parents)", body.parents.len()));
        }
    }
    let id = id_of(bytes);
    if dev.log.contains(&id) && dev.log.state().dropped.contains(&id) {
        return Err(format!(
            "admitted but dropped ({} parents)",
            body.parents.len()
        ));
    }
    if !r.future.is_empty() && body.time.millis() > wall + MAX_CLOCK_SKEW_MS + 1 {
        return Err(format!("held until {:?}", body.time));
    }
    Ok(())
}
