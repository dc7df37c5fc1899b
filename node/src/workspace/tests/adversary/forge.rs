//! The adversary's forgeries: any envelope on any past it has seen, at any time.

use rand::{RngExt, SeedableRng, rngs::StdRng};

use super::super::attacks::{forge, id, ms};
use super::*;
use crate::trust::ids::MAX_CLOCK_SKEW_MS;

impl Run {
    #[allow(clippy::too_many_arguments)]
    pub(super) fn forge(
        &mut self,
        adv: usize,
        what: Forgery,
        target: usize,
        past: Past,
        when: When,
        pick: u64,
    ) {
        let users = self.users();
        let user = users[target % users.len()];
        let now = self.w.tick();
        let Some(a) = self.advs.get_mut(adv) else {
            return;
        };
        let mut rng = StdRng::seed_from_u64(pick);
        let seen: Vec<EnvelopeId> = a.dev.ws.envelopes().iter().map(|e| e.id()).collect();
        let mut parents: Vec<EnvelopeId> = match past {
            Past::Empty => Vec::new(),
            Past::Heads => a.dev.ws.heads(),
            Past::Snapshot(n) => {
                let s = &a.snapshots;
                s[s.len() - 1 - (n as usize % s.len())].clone()
            }
            Past::Subset(k) => (0..=k)
                .map(|_| seen[rng.random_range(0..seen.len())])
                .collect(),
            Past::Own(k) => {
                let mut p = a.dev.ws.heads();
                p.extend(a.own.iter().rev().take(k as usize + 1).map(|(i, _)| *i));
                p
            }
        };
        parents.sort_unstable();
        parents.dedup();
        let time_of = |i: &EnvelopeId| {
            a.dev
                .ws
                .get(i)
                .map(|e| e.header().time)
                .or_else(|| a.own.iter().find(|(o, _)| o == i).map(|(_, t)| *t))
                .unwrap_or_default()
        };
        let after = parents
            .iter()
            .map(time_of)
            .max()
            .unwrap_or_default()
            .0
            .saturating_add(1);
        let time = match when {
            When::Small => Hlc(1),
            When::AfterParents => Hlc(after),
            When::WithinSkew => ms(now + MAX_CLOCK_SKEW_MS / 2),
            When::BeyondSkew => ms(now + MAX_CLOCK_SKEW_MS + 60_000),
            When::FarFuture => Hlc(u64::MAX),
        };
        let st = a.dev.st();
        let orgst = a.dev.org.state().clone();
        let members: Vec<SealedKeys> = st
            .members
            .keys()
            .filter_map(|u| orgst.users.get(u).map(|x| (u, x.key.generation)))
            .map(|(u, generation)| SealedKeys {
                user: *u,
                generation,
                epochs: Vec::new(),
                blob: vec![7],
            })
            .collect();
        let keys_epoch = st.keys.get(pick as usize % st.keys.len().max(1)).copied();
        let (kind, epoch, payloads): (Kind, Option<EnvelopeId>, Vec<Vec<u8>>) = match what {
            Forgery::Grant(role) => (
                Kind::Access,
                None,
                vec![encode_payload(&AccessChange::Grant { user, role })],
            ),
            Forgery::Remove => (
                Kind::Access,
                None,
                vec![encode_payload(&AccessChange::Remove { user })],
            ),
            Forgery::Create => (
                Kind::Access,
                None,
                vec![encode_payload(&AccessChange::Create)],
            ),
            Forgery::Content => {
                let epoch = if pick.is_multiple_of(2) {
                    st.current
                } else {
                    keys_epoch
                };
                (Kind::Content, epoch, vec![b"forged".to_vec()])
            }
            Forgery::OpenEpoch | Forgery::ShareKeys => {
                let commitment = matches!(what, Forgery::OpenEpoch).then_some([pick as u8; 32]);
                let keys = EpochKeys {
                    commitment,
                    sealed: members,
                };
                (Kind::Keys, None, vec![encode_keys(&keys)])
            }
            Forgery::Merge => (Kind::Merge, None, vec![Vec::new()]),
            Forgery::Flood(n) => (Kind::Merge, None, vec![Vec::new(); n as usize]),
        };
        for (i, payload) in payloads.iter().enumerate() {
            let t = Hlc(time.0.saturating_add(i as u64));
            let b = forge(&a.dev, &parents, t, kind, epoch, payload);
            a.own.push((id(&b), t));
            a.forged.push(b);
        }
    }
}
