//! Which admitted organization entries count (*kept*): removal wins, and every right judged on
//! the kept entries of the entry's own causal past (the rules are in `state`'s module doc and
//! docs/security.md).
//!
//! Each entry gets a label: *in* (kept), *out* (voided, or its author lacked the right among the
//! kept entries of its past) or *undecided*. An entry is in when every removal that attacks it
//! is out and its rights hold whatever the undecided entries turn out to be; it is out as soon
//! as an attacking removal is in or its rights fail whatever they turn out to be. Both tests
//! only get truer as labels are decided, so propagating them (a worklist, each entry
//! re-examined when something it reads is decided) reaches one least fixpoint whatever the
//! order: the grounded labelling, extended with the rights an entry reads in its past.
//!
//! What it leaves undecided lies on a cycle of dependencies that contains an attack. It is
//! decided in steps, each followed by propagation: among the removals whose rights hold and that
//! lie on a cycle of attacks, those whose author no other one there is senior to count (the same
//! seniority as for mutual pairs: certificate ancestry, which no author can turn in its favour,
//! since citing an old past only makes its accomplices unordered, never senior), which unwinds
//! the cycle from them, and this repeats while cycles remain;
//! then undecided grants (user and device additions, promotions) do not count (a right
//! is never taken from an entry whose own standing is in doubt); then nothing left counts. Each
//! step only fixes entries no decided entry depends on the value of, so the result stays
//! consistent, and each is a function of sets: the verdicts are a function of the set of
//! admitted entries (the DAG and the certificates), never of a timestamp or a position.
//!
//! Cost: one pass over the entries to collect what each reads (the same index lookups and
//! ancestry queries as admission), one walk per removal over the entries of the devices it
//! removes, then each entry is re-examined at most once per decided entry it reads.

use std::cell::RefCell;
use std::collections::{HashMap, HashSet, VecDeque};

use super::admission::{Index, device_owner, needs_admin, profile_set};
use super::entry::{Certificate, Entry};
use super::ids::{DeviceId, Profile, UserId};
use super::removal::on_cycles;
use crate::dag::Dag;

/// Kept entries and the device owners among them.
pub(super) struct Verdicts {
    /// Membership of each position in the kept set.
    pub(super) kept: Vec<bool>,
    /// Device owners among kept certificates (`None`: certified to two users).
    pub(super) owners: HashMap<DeviceId, Option<UserId>>,
}

impl Verdicts {
    /// The kept set and the device owners for these admitted entries.
    pub(super) fn compute(entries: &[Entry], dag: &Dag, index: &Index) -> Verdicts {
        let all = vec![true; entries.len()];
        let raw = device_owners(entries, index, &all);
        // Without removals nobody loses a right, and admission saw every right an entry needs
        // in its past (a setting that makes its author admin, its device certificate).
        if index.removals.is_empty() && raw.values().all(Option::is_some) {
            return Verdicts {
                kept: all,
                owners: raw,
            };
        }
        let graph = Graph::build(entries, dag, index, &raw);
        let labels = graph.solve();
        let kept: Vec<bool> = labels.iter().map(|l| *l == Label::In).collect();
        let owners = device_owners(entries, index, &kept);
        Verdicts { kept, owners }
    }
}

/// Owners of devices among the certificates selected by `kept`.
fn device_owners(
    entries: &[Entry],
    index: &Index,
    kept: &[bool],
) -> HashMap<DeviceId, Option<UserId>> {
    let mut out = HashMap::with_capacity(index.device_adds.len());
    for (device, adds) in &index.device_adds {
        let mut owner: Option<Option<UserId>> = None;
        for p in adds.iter().filter(|p| kept[**p as usize]) {
            let u = device_owner(entries[*p as usize].body(), device);
            owner = Some(match owner {
                None => u,
                Some(prev) if prev == u => prev,
                Some(_) => None,
            });
        }
        if let Some(o) = owner {
            out.insert(*device, o);
        }
    }
    out
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Label {
    Undecided,
    In,
    Out,
}

/// No settings list (an entry that does not need the admin profile).
const NO_LIST: u32 = u32::MAX;

/// Rows of positions (one per entry, or per list), stored flat.
#[derive(Default)]
struct Rows {
    start: Vec<u32>,
    items: Vec<u32>,
}

impl Rows {
    fn push_row(&mut self, row: impl IntoIterator<Item = u32>) {
        if self.start.is_empty() {
            self.start.push(0);
        }
        self.items.extend(row);
        self.start.push(self.items.len() as u32);
    }

    fn row(&self, p: u32) -> &[u32] {
        let (a, b) = (self.start[p as usize], self.start[p as usize + 1]);
        &self.items[a as usize..b as usize]
    }

    /// Rows for `n` entries from (row, item) pairs.
    fn from_pairs(n: usize, mut pairs: Vec<(u32, u32)>) -> Rows {
        pairs.sort_unstable();
        pairs.dedup();
        let mut rows = Rows::default();
        let mut it = pairs.into_iter().peekable();
        for p in 0..n as u32 {
            let mut row = Vec::new();
            while let Some((_, q)) = it.next_if(|(r, _)| *r == p) {
                row.push(q);
            }
            rows.push_row(row);
        }
        rows
    }
}

/// What each entry's verdict reads, gathered once from the DAG and the certificates.
struct Graph<'a> {
    entries: &'a [Entry],
    dag: &'a Dag,
    /// The author's device certificates in the entry's past: one must count.
    certs: Rows,
    /// Removals of the author (device or user), and for a key rotation of its recipients, in
    /// the entry's past: none may count.
    removals: Rows,
    /// Distinct lists of profile settings (of one user, in one entry's past): many entries
    /// share one (every later entry of a user sees the same settings), so each list is stored,
    /// and judged (`admin`), once however many entries read it.
    settings: Rows,
    /// For an entry that needs the admin profile, the list of its author's user's profile
    /// settings in its past (`NO_LIST` otherwise).
    settings_of: Vec<u32>,
    /// For each settings list, the entries that read it.
    list_readers: Rows,
    /// For each setting, the lists it is in.
    lists_of: Rows,
    /// Per settings list: how many of its settings were undecided when `admin` last judged it,
    /// and the verdict. Labels only go from undecided to decided, so the same count means the
    /// same labels and the same verdict.
    admin_cache: RefCell<HashMap<u32, (usize, Label)>>,
    needs_admin: Vec<bool>,
    /// The author's user, by the certificates (`None`: a device certified to two users, which
    /// counts for neither).
    user: Vec<Option<UserId>>,
    /// The removals that attack each entry.
    attackers: Rows,
    /// Entries to re-examine when an entry is decided.
    readers: Rows,
    is_removal: Vec<bool>,
    /// Per entry: its author's first certificate (smallest id), `NO_LIST` if none. Seniority
    /// is the ancestry of these (see [`Graph::senior`]).
    first_cert: Vec<u32>,
}

impl<'a> Graph<'a> {
    fn build(
        entries: &'a [Entry],
        dag: &'a Dag,
        index: &'a Index,
        owners: &HashMap<DeviceId, Option<UserId>>,
    ) -> Graph<'a> {
        let n = entries.len();
        let owner = |d: &DeviceId| owners.get(d).copied().flatten();
        let mut g = Graph {
            entries,
            dag,
            certs: Rows::default(),
            removals: Rows::default(),
            settings: Rows::default(),
            settings_of: vec![NO_LIST; n],
            list_readers: Rows::default(),
            lists_of: Rows::default(),
            admin_cache: RefCell::new(HashMap::new()),
            needs_admin: vec![false; n],
            user: vec![None; n],
            attackers: Rows::default(),
            readers: Rows::default(),
            is_removal: vec![false; n],
            first_cert: vec![NO_LIST; n],
        };
        for r in &index.removals {
            g.is_removal[*r as usize] = true;
        }
        let list = |m: &'a HashMap<DeviceId, Vec<u32>>, d: &DeviceId| -> &'a [u32] {
            m.get(d).map_or(&[][..], Vec::as_slice)
        };
        let of_user = |m: &'a HashMap<UserId, Vec<u32>>, u: &UserId| -> &'a [u32] {
            m.get(u).map_or(&[][..], Vec::as_slice)
        };
        let mut lists: HashMap<Vec<u32>, u32> = HashMap::new();
        for p in 0..n as u32 {
            let body = entries[p as usize].body();
            let past = |q: &&u32| dag.is_ancestor(**q, p);
            if let Certificate::Genesis(_) = body.cert {
                g.certs.push_row([]);
                g.removals.push_row([]);
                continue;
            }
            let author = body.author;
            let user = owner(&author);
            g.user[p as usize] = user;
            if let Some(first) = list(&index.device_adds, &author)
                .iter()
                .min_by_key(|c| entries[**c as usize].id())
            {
                g.first_cert[p as usize] = *first;
            }
            g.certs.push_row(
                list(&index.device_adds, &author)
                    .iter()
                    .filter(past)
                    .copied(),
            );
            let Some(u) = user else {
                g.removals.push_row([]);
                continue;
            };
            let mut rem: Vec<u32> = list(&index.device_revokes, &author)
                .iter()
                .chain(of_user(&index.user_revokes, &u))
                .filter(past)
                .copied()
                .collect();
            if let Certificate::UserKeyRotated(r) = &body.cert {
                for (d, _) in &r.sealed {
                    rem.extend(list(&index.device_revokes, d).iter().filter(past));
                }
            }
            g.removals.push_row(rem);
            let revoked_owner = match &body.cert {
                Certificate::DeviceRevoked { device } => owner(device),
                _ => None,
            };
            let recorded = match &body.cert {
                Certificate::InvitationClosed { id, .. } => index
                    .invitation_records
                    .get(id)
                    .into_iter()
                    .flatten()
                    .filter(|r| dag.is_ancestor(**r, p))
                    .all(|r| entries[*r as usize].body().author == author),
                _ => false,
            };
            let admin = needs_admin(&body.cert, &u, revoked_owner, recorded);
            g.needs_admin[p as usize] = admin;
            if admin {
                let list: Vec<u32> = of_user(&index.user_profiles, &u)
                    .iter()
                    .filter(past)
                    .copied()
                    .collect();
                let next = lists.len() as u32;
                let id = *lists.entry(list.clone()).or_insert_with(|| {
                    g.settings.push_row(list);
                    next
                });
                g.settings_of[p as usize] = id;
            }
        }
        let n_lists = lists.len();
        let mut list_pairs = Vec::new();
        let mut member_pairs = Vec::new();
        for p in 0..n as u32 {
            let id = g.settings_of[p as usize];
            if id != NO_LIST {
                list_pairs.push((id, p));
            }
        }
        for id in 0..n_lists as u32 {
            for q in g.settings.row(id) {
                member_pairs.push((*q, id));
            }
        }
        g.list_readers = Rows::from_pairs(n_lists, list_pairs);
        g.lists_of = Rows::from_pairs(n, member_pairs);
        g.attackers = g.attacks(index, owners);
        let mut pairs = Vec::new();
        for p in 0..n as u32 {
            for q in g
                .certs
                .row(p)
                .iter()
                .chain(g.removals.row(p))
                .chain(g.attackers.row(p))
            {
                pairs.push((*q, p));
            }
        }
        g.readers = Rows::from_pairs(n, pairs);
        g
    }

    /// The attack relation: removal `r` attacks entry `p` when it threatens it (`p` is by a
    /// device `r` removes, other than `r`, concurrent with `r`, for a demotion needs the admin
    /// profile, and is not a removal of its own author's user), unless `p` is a removal that
    /// threatens `r` back and `r`'s author is not senior to `p`'s (a mutual pair: the senior
    /// wins; of no seniority order, neither).
    fn attacks(&self, index: &Index, owners: &HashMap<DeviceId, Option<UserId>>) -> Rows {
        let mut devices_of: HashMap<UserId, Vec<DeviceId>> = HashMap::new();
        for (d, o) in owners {
            if let Some(u) = o {
                devices_of.entry(*u).or_default().push(*d);
            }
        }
        let mut threats: HashSet<(u32, u32)> = HashSet::new();
        for r in &index.removals {
            let (devices, admin_only): (&[DeviceId], bool) =
                match &self.entries[*r as usize].body().cert {
                    Certificate::DeviceRevoked { device } => (std::slice::from_ref(device), false),
                    Certificate::UserRevoked { user } => {
                        (devices_of.get(user).map_or(&[][..], Vec::as_slice), false)
                    }
                    Certificate::ProfileChanged { user, .. } => {
                        (devices_of.get(user).map_or(&[][..], Vec::as_slice), true)
                    }
                    _ => (&[], false),
                };
            for d in devices {
                for p in index.by_author.get(d).into_iter().flatten() {
                    if *p != *r
                        && self.concurrent(*p, *r)
                        && (!admin_only || self.needs_admin[*p as usize])
                        && !self.confession(*p, owners)
                    {
                        threats.insert((*r, *p));
                    }
                }
            }
        }
        let pairs: Vec<(u32, u32)> = threats
            .iter()
            .filter(|(r, p)| !threats.contains(&(*p, *r)) || self.senior(*r, *p))
            .map(|(r, p)| (*p, *r))
            .collect();
        Rows::from_pairs(self.entries.len(), pairs)
    }

    /// Whether `p` is a removal that removes only its own author's user (a device of that
    /// user, the user, or its admin profile): voiding it would give back a right only to the
    /// user who gave it up, so no removal attacks it. (Found by the adversary property test: a
    /// revoked admin that also revoked itself had a founder's revocation of it voided by the
    /// cycle its self-revocation closed.)
    fn confession(&self, p: u32, owners: &HashMap<DeviceId, Option<UserId>>) -> bool {
        let Some(user) = self.user[p as usize] else {
            return false;
        };
        match &self.entries[p as usize].body().cert {
            Certificate::DeviceRevoked { device } => owners.get(device) == Some(&Some(user)),
            Certificate::UserRevoked { user: u } => *u == user,
            Certificate::ProfileChanged { user: u, profile } => {
                *u == user && *profile != Profile::Admin
            }
            _ => false,
        }
    }

    fn concurrent(&self, a: u32, b: u32) -> bool {
        !self.dag.is_ancestor_or_self(a, b) && !self.dag.is_ancestor_or_self(b, a)
    }

    /// Whether the author of entry `a` is senior to the author of entry `b`: the certificate
    /// that added `a`'s author is a strict ancestor of the one that added `b`'s (it was in the
    /// organization, as its adder saw it, before `b`'s author joined). Fixed when a device
    /// joins: nothing its author writes later changes it.
    fn senior(&self, a: u32, b: u32) -> bool {
        let (x, y) = (self.first_cert[a as usize], self.first_cert[b as usize]);
        x != NO_LIST && y != NO_LIST && self.dag.is_ancestor(x, y)
    }

    /// Whether `p`'s author held what `p` needs among the kept entries of `p`'s past: a device
    /// certificate that counts, no removal of it (or of a key's recipient) that counts, and for
    /// an entry that needs it, the admin profile.
    fn rights(&self, p: u32, lab: &[Label]) -> Label {
        if let Certificate::Genesis(_) = self.entries[p as usize].body().cert {
            return Label::In;
        }
        let Some(user) = self.user[p as usize] else {
            return Label::Out;
        };
        let mut open = false;
        let certs = self.certs.row(p);
        if certs.iter().all(|c| lab[*c as usize] == Label::Out) {
            return Label::Out;
        }
        open |= !certs.iter().any(|c| lab[*c as usize] == Label::In);
        for r in self.removals.row(p) {
            match lab[*r as usize] {
                Label::In => return Label::Out,
                Label::Undecided => open = true,
                Label::Out => {}
            }
        }
        if self.needs_admin[p as usize] {
            match self.admin_cached(&user, self.settings_of[p as usize], lab) {
                Label::Out => return Label::Out,
                Label::Undecided => open = true,
                Label::In => {}
            }
        }
        if open { Label::Undecided } else { Label::In }
    }

    /// [`Graph::admin`] of settings list `id`, judged again only if one of its settings was
    /// decided since.
    fn admin_cached(&self, user: &UserId, id: u32, lab: &[Label]) -> Label {
        let list = self.settings.row(id);
        let open = list
            .iter()
            .filter(|s| lab[**s as usize] == Label::Undecided)
            .count();
        if let Some((n, l)) = self.admin_cache.borrow().get(&id)
            && *n == open
        {
            return *l;
        }
        let l = self.admin(user, list, lab);
        self.admin_cache.borrow_mut().insert(id, (open, l));
        l
    }

    /// Whether `user` is admin among the kept settings of `settings` (the least privileged of
    /// the maximal ones): in if so however the undecided ones turn out, out if not so however
    /// they turn out.
    fn admin(&self, user: &UserId, settings: &[u32], lab: &[Label]) -> Label {
        let is_admin =
            |s: u32| profile_set(self.entries[s as usize].body(), user) == Some(Profile::Admin);
        let is = |s: u32, l: Label| lab[s as usize] == l;
        // In: some setting counts, and every demotion that may count is followed by one that
        // counts.
        let surely = settings.iter().any(|s| is(*s, Label::In))
            && settings
                .iter()
                .filter(|d| !is_admin(**d) && !is(**d, Label::Out))
                .all(|d| {
                    settings
                        .iter()
                        .any(|s| is(*s, Label::In) && self.dag.is_ancestor(*d, *s))
                });
        if surely {
            return Label::In;
        }
        // Out: even with every undecided promotion counting and no undecided demotion, no
        // setting counts or a counting demotion is maximal.
        let may: Vec<u32> = settings
            .iter()
            .copied()
            .filter(|s| is(*s, Label::In) || (is(*s, Label::Undecided) && is_admin(*s)))
            .collect();
        let never = may.is_empty()
            || may
                .iter()
                .any(|d| !is_admin(*d) && !may.iter().any(|s| self.dag.is_ancestor(*d, *s)));
        if never { Label::Out } else { Label::Undecided }
    }

    /// `p`'s label from what it reads.
    fn eval(&self, p: u32, lab: &[Label]) -> Label {
        let mut open = false;
        for a in self.attackers.row(p) {
            match lab[*a as usize] {
                Label::In => return Label::Out,
                Label::Undecided => open = true,
                Label::Out => {}
            }
        }
        match self.rights(p, lab) {
            Label::In if open => Label::Undecided,
            l => l,
        }
    }

    /// Decides every entry still undecided in `queue` that can be, and whatever that decides.
    fn propagate(&self, lab: &mut [Label], mut queue: VecDeque<u32>) {
        let mut queued = vec![false; lab.len()];
        for p in &queue {
            queued[*p as usize] = true;
        }
        while let Some(p) = queue.pop_front() {
            queued[p as usize] = false;
            if lab[p as usize] != Label::Undecided {
                continue;
            }
            let l = self.eval(p, lab);
            if l == Label::Undecided {
                continue;
            }
            lab[p as usize] = l;
            for q in self.readers_of(p) {
                if lab[q as usize] == Label::Undecided && !queued[q as usize] {
                    queued[q as usize] = true;
                    queue.push_back(q);
                }
            }
        }
    }

    /// The entries whose verdict reads `p`'s label: directly, or through a settings list.
    fn readers_of(&self, p: u32) -> impl Iterator<Item = u32> + '_ {
        let through_lists = self
            .lists_of
            .row(p)
            .iter()
            .flat_map(|id| self.list_readers.row(*id).iter().copied());
        self.readers.row(p).iter().copied().chain(through_lists)
    }

    /// Sets `set` to `l`, then propagates from what reads them.
    fn fix(&self, lab: &mut [Label], set: impl IntoIterator<Item = u32>, l: Label) {
        let mut queue = VecDeque::new();
        for p in set {
            lab[p as usize] = l;
            queue.extend(self.readers_of(p));
        }
        self.propagate(lab, queue);
    }

    fn solve(&self) -> Vec<Label> {
        let n = self.entries.len();
        let mut lab = vec![Label::Undecided; n];
        self.propagate(&mut lab, (0..n as u32).collect());
        let mut undecided: Vec<u32> = (0..n as u32)
            .filter(|p| lab[*p as usize] == Label::Undecided)
            .collect();
        while !undecided.is_empty() {
            // 1. Removals whose rights hold and that lie on a cycle of attacks: those whose
            // author no other one on a cycle is senior to count (all such, if several).
            let candidates: Vec<u32> = undecided
                .iter()
                .copied()
                .filter(|p| self.is_removal[*p as usize] && self.rights(*p, &lab) == Label::In)
                .collect();
            let set: HashSet<u32> = candidates.iter().copied().collect();
            let mut attacks: HashMap<u32, Vec<u32>> = HashMap::new();
            for t in &candidates {
                for a in self.attackers.row(*t).iter().filter(|a| set.contains(a)) {
                    attacks.entry(*a).or_default().push(*t);
                }
            }
            let cycles = on_cycles(&candidates, &attacks);
            if !cycles.is_empty() {
                let first: Vec<u32> = cycles
                    .iter()
                    .copied()
                    .filter(|p| !cycles.iter().any(|q| self.senior(*q, *p)))
                    .collect();
                self.fix(&mut lab, first, Label::In);
            } else {
                // 2. Undecided grants do not count; 3. then nothing left does.
                let grants: Vec<u32> = undecided
                    .iter()
                    .copied()
                    .filter(|p| self.is_grant(*p))
                    .collect();
                if grants.is_empty() {
                    self.fix(&mut lab, undecided.iter().copied(), Label::Out);
                } else {
                    self.fix(&mut lab, grants, Label::Out);
                }
            }
            undecided.retain(|p| lab[*p as usize] == Label::Undecided);
        }
        lab
    }

    /// User and device additions and promotions: entries that give a right.
    fn is_grant(&self, p: u32) -> bool {
        match &self.entries[p as usize].body().cert {
            Certificate::UserAdded(_) | Certificate::DeviceAdded(_) => true,
            Certificate::ProfileChanged { profile, .. } => *profile == Profile::Admin,
            _ => false,
        }
    }
}
