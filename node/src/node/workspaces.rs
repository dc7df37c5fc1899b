//! Workspaces as people see them: create, list, find by name or id prefix, share with a role,
//! unshare (with key rotation), list members, and per-workspace sync status.
//!
//! Invariant: every access change is a signed envelope admitted by the same rules as a peer's
//! (roles, epochs); names are only ever in the encrypted document (its title).

use std::sync::Arc;

use super::docs::{Doc, SHARDS};
use super::{Node, NodeError, now_ms};
use crate::trust::UserId;
use crate::workspace::keyring::{self, Actor};
use crate::workspace::{Role, WorkspaceId};

/// The name shown for a workspace whose title this device cannot read yet.
const NO_KEY_YET: &str = "(no key yet)";

/// One workspace, for display.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct WorkspaceInfo {
    /// Full id (hex).
    pub id: String,
    /// Its title (from the encrypted document), or `(no key yet)`.
    pub name: String,
    /// Our role, if we are a member.
    pub role: Option<String>,
    /// Members.
    pub members: usize,
    /// Envelopes admitted.
    pub envelopes: usize,
    /// Heads of the DAG (hex).
    pub heads: Vec<String>,
    /// Envelopes waiting for their parents.
    pub waiting: usize,
    /// Content envelopes this device cannot open yet.
    pub locked: usize,
    /// Files and folders in the tree.
    pub entries: usize,
    /// Key epochs.
    pub epochs: usize,
    /// Unix ms of the last envelope admitted, if any since the node opened.
    pub last_sync_ms: Option<u64>,
    /// Connected peers that sync this workspace with us.
    pub peers: usize,
}

/// One member of a workspace, for display.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct MemberInfo {
    /// User id (hex).
    pub user: String,
    /// Name.
    pub name: String,
    /// E-mail.
    pub email: String,
    /// Role.
    pub role: String,
    /// Whether the current epoch key was sealed to them.
    pub has_key: bool,
}

impl Node {
    /// Creates a workspace titled `name`; our user becomes its owner.
    pub fn create_workspace(&mut self, name: &str) -> Result<WorkspaceInfo, NodeError> {
        cloison_crdt::check_name(name).map_err(|_| {
            NodeError::Invalid(format!(
                "{name:?} is not a valid workspace name (1 to 255 bytes, no '/')"
            ))
        })?;
        if self
            .titles()?
            .iter()
            .any(|(_, n)| n.eq_ignore_ascii_case(name))
        {
            return Err(NodeError::Invalid(format!(
                "a workspace named {name:?} already exists"
            )));
        }
        let mut id = [0u8; 16];
        rand::Rng::fill_bytes(&mut rand::rng(), &mut id);
        let w = WorkspaceId(id);
        let device = self.keys.device();
        let me = self.user_id();
        let org = Arc::clone(&self.engine.replica().org);
        let (_, items) = keyring::create(
            &mut rand::rng(),
            &org,
            &mut Actor {
                keys: &device,
                clock: &mut self.clock,
            },
            me,
            now_ms(),
            w,
        )?;
        self.local_items(w, items)?;
        self.settle()?;
        let actor = self.actor();
        let now = now_ms() as i64;
        let mut crdt = cloison_crdt::Workspace::create(&actor, SHARDS, now)?;
        crdt.set_title(name, now)?;
        let mut doc = Doc::joined(&actor)?;
        doc.crdt = crdt;
        self.docs.insert(w, doc);
        self.refresh_doc(w)?;
        self.commit(w)?;
        self.workspace_info(w)
    }

    /// Renames a workspace (its title in the encrypted document). Owners only.
    pub fn rename_workspace(&mut self, w: WorkspaceId, name: &str) -> Result<(), NodeError> {
        self.require_role(w, Role::Owner, "renaming the workspace")?;
        cloison_crdt::check_title(name)
            .map_err(|_| NodeError::Invalid(format!("{name:?} is not a valid workspace name")))?;
        self.doc(w)?.crdt.set_title(name, now_ms() as i64)?;
        self.commit(w)?;
        Ok(())
    }

    /// Every workspace this device holds, sorted by name.
    pub fn workspaces(&mut self) -> Result<Vec<WorkspaceInfo>, NodeError> {
        let ids: Vec<WorkspaceId> = self.engine.replica().workspaces.keys().copied().collect();
        let mut out = Vec::with_capacity(ids.len());
        for w in ids {
            out.push(self.workspace_info(w)?);
        }
        out.sort_by(|a, b| (&a.name, &a.id).cmp(&(&b.name, &b.id)));
        Ok(out)
    }

    /// One workspace.
    pub fn workspace_info(&mut self, w: WorkspaceId) -> Result<WorkspaceInfo, NodeError> {
        let last_sync_ms = self.last_sync.get(&w).copied();
        let peers = self
            .engine
            .peers_sharing(crate::sync::DocId::Workspace(w))
            .len();
        let doc = self.doc(w)?;
        let title = doc.crdt.title();
        let locked = doc.locked;
        let entries = doc.crdt.tree().len().saturating_sub(1);
        let user = self.user_id();
        let (log, st) = self.log_and_state(w)?;
        Ok(WorkspaceInfo {
            id: w.to_string(),
            name: title.unwrap_or_else(|| NO_KEY_YET.to_owned()),
            role: st.members.get(&user).map(|r| r.as_str().to_owned()),
            members: st.members.len(),
            envelopes: log.len(),
            heads: st.heads.iter().map(ToString::to_string).collect(),
            waiting: log.pending_len(),
            locked,
            entries,
            epochs: st.epochs.len(),
            last_sync_ms,
            peers,
        })
    }

    /// Finds a workspace by name (case-insensitive), full id or id prefix (4+ hex digits).
    pub fn find_workspace(&mut self, query: &str) -> Result<WorkspaceId, NodeError> {
        let q = query.trim().to_lowercase();
        let all = self.titles()?;
        let by_name: Vec<&(WorkspaceId, String)> =
            all.iter().filter(|(_, n)| n.to_lowercase() == q).collect();
        let hits: Vec<&(WorkspaceId, String)> = if by_name.is_empty() {
            all.iter()
                .filter(|(w, _)| {
                    let id = w.to_string();
                    id == q || (q.len() >= 4 && id.starts_with(&q))
                })
                .collect()
        } else {
            by_name
        };
        match hits.as_slice() {
            [] => Err(NodeError::NotFound {
                what: "workspace",
                query: query.to_owned(),
            }),
            [(w, _)] => Ok(*w),
            many => Err(NodeError::Ambiguous {
                what: "workspace",
                query: query.to_owned(),
                candidates: many
                    .iter()
                    .map(|(w, n)| format!("{} ({n})", &w.to_string()[..12]))
                    .collect::<Vec<_>>()
                    .join(", "),
            }),
        }
    }

    /// Every workspace held, with its title: what name resolution needs, without the
    /// listing's per-workspace state.
    fn titles(&mut self) -> Result<Vec<(WorkspaceId, String)>, NodeError> {
        let ids: Vec<WorkspaceId> = self.engine.replica().workspaces.keys().copied().collect();
        let mut out = Vec::with_capacity(ids.len());
        for w in ids {
            let title = self.doc(w)?.crdt.title();
            out.push((w, title.unwrap_or_else(|| NO_KEY_YET.to_owned())));
        }
        Ok(out)
    }

    /// Gives `user` a role in `w` and seals them every epoch key we hold (the history).
    pub fn share(&mut self, w: WorkspaceId, user: UserId, role: Role) -> Result<(), NodeError> {
        self.require_role(w, Role::Manager, "sharing")?;
        if role > Role::Contributor {
            self.require_role(w, Role::Owner, "granting manager or owner")?;
        }
        if self
            .state()
            .users
            .get(&user)
            .is_none_or(|u| u.revoked_by.is_some())
        {
            return Err(NodeError::Invalid("that user is not active".into()));
        }
        self.doc(w)?;
        let items = self
            .keyed(w, |mut k| {
                keyring::share(
                    &mut rand::rng(),
                    k.log,
                    k.org,
                    &mut k.actor,
                    now_ms(),
                    k.ring,
                    user,
                    role,
                )
            })?
            .unwrap_or_default();
        self.admit_own(w, items)
    }

    /// Removes `user` from `w` and opens a new epoch without them.
    pub fn unshare(&mut self, w: WorkspaceId, user: UserId) -> Result<(), NodeError> {
        self.require_role(w, Role::Manager, "unsharing")?;
        if user == self.user_id() && self.role_in(w) == Some(Role::Owner) {
            let owners = self
                .members_of(w)
                .iter()
                .filter(|(_, r)| *r == Role::Owner)
                .count();
            if owners <= 1 {
                return Err(NodeError::Invalid(
                    "you are the last owner; share the workspace with another owner first".into(),
                ));
            }
        }
        if !self.members_of(w).iter().any(|(u, _)| *u == user) {
            return Err(NodeError::Invalid("that user is not a member".into()));
        }
        let items = self
            .keyed(w, |mut k| {
                keyring::unshare(&mut rand::rng(), k.log, k.org, &mut k.actor, now_ms(), user)
            })?
            .unwrap_or_default();
        self.admit_own(w, items)
    }

    fn admit_own(&mut self, w: WorkspaceId, items: Vec<Vec<u8>>) -> Result<(), NodeError> {
        self.local_items(w, items)?;
        self.settle()?;
        self.refresh_doc(w)
    }

    /// A workspace's log and effective state.
    fn log_and_state(
        &self,
        w: WorkspaceId,
    ) -> Result<
        (
            &crate::workspace::WorkspaceLog,
            crate::workspace::WorkspaceState,
        ),
        NodeError,
    > {
        let r = self.engine.replica();
        let log = r.workspaces.get(&w).ok_or_else(|| NodeError::NotFound {
            what: "workspace",
            query: w.to_string(),
        })?;
        Ok((log, log.state(&r.org)))
    }

    fn members_of(&self, w: WorkspaceId) -> Vec<(UserId, Role)> {
        let r = self.engine.replica();
        r.workspaces
            .get(&w)
            .map(|log| log.state(&r.org).members.into_iter().collect())
            .unwrap_or_default()
    }

    /// The members of `w`, with names.
    pub fn members(&mut self, w: WorkspaceId) -> Result<Vec<MemberInfo>, NodeError> {
        let users = self.users();
        let (_, st) = self.log_and_state(w)?;
        let keyed = st
            .current_epoch()
            .map(|e| e.recipients.clone())
            .unwrap_or_default();
        let mut out: Vec<MemberInfo> = st
            .members
            .iter()
            .map(|(u, role)| {
                let id = u.to_string();
                let info = users.iter().find(|x| x.id == id);
                MemberInfo {
                    user: id.clone(),
                    name: info.map(|i| i.name.clone()).unwrap_or_default(),
                    email: info.map(|i| i.email.clone()).unwrap_or_default(),
                    role: role.as_str().to_owned(),
                    has_key: keyed.contains_key(u),
                }
            })
            .collect();
        out.sort_by(|a, b| (&a.name, &a.user).cmp(&(&b.name, &b.user)));
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keystore::KdfParams;
    use crate::node::InitParams;
    use crate::sync::DocId;
    use crate::trust::Profile;

    const PASS: &[u8] = b"pass";

    fn two(dir: &std::path::Path) -> (Node, Node) {
        let mut a = Node::init(
            &dir.join("a"),
            PASS,
            KdfParams::TEST_ONLY,
            &InitParams {
                org_name: "O",
                user_name: "Ann",
                email: "ann@x.example",
                device_label: "a",
            },
        )
        .unwrap();
        let b = a
            .provision_user(
                &dir.join("b"),
                PASS,
                KdfParams::TEST_ONLY,
                "Ben",
                "ben@x.example",
                "b",
                Profile::Standard,
            )
            .unwrap();
        (a, b)
    }

    /// Hands everything `from` holds of the organization and of `w` to `to`, as a peer would.
    fn sync(from: &Node, to: &mut Node, w: WorkspaceId) {
        let entries = from.log().entries().map(|e| e.bytes().to_vec()).collect();
        to.ingest_log(entries).unwrap();
        let envs: Vec<Vec<u8>> = from.engine().replica().workspaces[&w]
            .envelopes()
            .iter()
            .map(|e| e.bytes().to_vec())
            .collect();
        let _ = to
            .engine_mut()
            .handle_local(now_ms(), DocId::Workspace(w), envs);
        to.settle().unwrap();
        to.refresh_doc(w).unwrap();
    }

    fn title(n: &mut Node, w: WorkspaceId) -> Option<String> {
        n.doc(w).unwrap().crdt.title()
    }

    #[test]
    fn a_readers_merge_does_not_keep_what_a_revoked_contributor_wrote() {
        let dir = tempfile::tempdir().unwrap();
        let (mut a, mut b, mut c, w) = three(dir.path());
        // Ben writes; Cat (a reader) receives it and, after the delay, writes a Merge on it.
        let f = dir.path().join("ben.txt");
        std::fs::write(&f, "kept").unwrap();
        b.put(w, &f, "ben.txt", &mut |_| {}, &mut |_| {}).unwrap();
        sync(&b, &mut c, w);
        let now = now_ms();
        assert_eq!(c.tick(now).unwrap(), 0, "not before the delay");
        assert_eq!(
            c.tick(now + super::super::docs::MERGE_DELAY_MS + 1)
                .unwrap(),
            1
        );
        assert_eq!(
            c.tick(now + 10 * super::super::docs::MERGE_DELAY_MS)
                .unwrap(),
            0,
            "one merge, not a stream of them"
        );
        // Ann revokes Ben's device without having seen his file, then hears from Cat.
        let dev = a.find_device("b").unwrap();
        a.revoke_device(dev).unwrap();
        sync(&c, &mut a, w);
        // A reader may not write content, so its merge cannot endorse it: any member may be an
        // accomplice (docs/security.md, "Workspaces"). The file goes with Ben's revocation.
        assert!(
            !a.ls(w, "/").unwrap().iter().any(|e| e.name == "ben.txt"),
            "a reader's merge does not keep a revoked contributor's content"
        );
    }

    /// Ann (owner) shares a workspace with Ben (contributor) and Cat (reader); all three synced.
    fn three(dir: &std::path::Path) -> (Node, Node, Node, WorkspaceId) {
        let (mut a, mut b) = two(dir);
        let mut c = a
            .provision_user(
                &dir.join("c"),
                PASS,
                KdfParams::TEST_ONLY,
                "Cat",
                "cat@x.example",
                "c",
                Profile::Standard,
            )
            .unwrap();
        let id = a.create_workspace("Plans").unwrap().id;
        let w = a.find_workspace(&id).unwrap();
        for (who, role) in [
            ("ben@x.example", Role::Contributor),
            ("cat@x.example", Role::Reader),
        ] {
            let u = a.find_user(who).unwrap();
            a.share(w, u, role).unwrap();
        }
        sync(&a, &mut b, w);
        sync(&a, &mut c, w);
        (a, b, c, w)
    }

    /// [`three`], then Ann revokes Cat's device and rotates; Ben hears of the revocation but
    /// not of the new epoch.
    fn lazy_window(dir: &std::path::Path) -> (Node, Node, WorkspaceId) {
        let (mut a, mut b, _c, w) = three(dir);
        let dev = a.find_device("c").unwrap();
        a.revoke_device(dev).unwrap();
        b.ingest_log(a.log().entries().map(|e| e.bytes().to_vec()).collect())
            .unwrap();
        (a, b, w)
    }

    #[test]
    fn a_contributors_edit_in_the_lazy_window_is_refused_and_leaves_nothing_behind() {
        let dir = tempfile::tempdir().unwrap();
        let (a, mut b, w) = lazy_window(dir.path());
        let f = dir.path().join("ben.txt");
        std::fs::write(&f, "not for Cat").unwrap();
        let err = b
            .put(w, &f, "ben.txt", &mut |_| {}, &mut |_| {})
            .unwrap_err();
        assert!(err.to_string().contains("awaits a new epoch"), "{err}");
        assert!(
            !b.ls(w, "/").unwrap().iter().any(|e| e.name == "ben.txt"),
            "nothing half-written stays in the document"
        );
        // The new epoch arrives: the same edit goes through.
        sync(&a, &mut b, w);
        b.put(w, &f, "ben.txt", &mut |_| {}, &mut |_| {}).unwrap();
        assert!(b.ls(w, "/").unwrap().iter().any(|e| e.name == "ben.txt"));
    }

    #[test]
    fn a_mirror_round_refused_in_the_lazy_window_keeps_the_local_file_and_uploads_it_later() {
        let dir = tempfile::tempdir().unwrap();
        let (a, mut b, w) = lazy_window(dir.path());
        let folder = dir.path().join("mirror");
        std::fs::create_dir_all(&folder).unwrap();
        std::fs::write(folder.join("notes.txt"), "not for Cat").unwrap();
        let mut m = b.open_mirror(w, &folder).unwrap();
        assert!(b.mirror_round(&mut m, &mut |_| {}).is_err());
        // A second refused round must not read the file as deleted on the other side.
        assert!(b.mirror_round(&mut m, &mut |_| {}).is_err());
        assert!(folder.join("notes.txt").exists(), "the local file is kept");
        sync(&a, &mut b, w);
        b.mirror_round(&mut m, &mut |_| {}).unwrap();
        assert!(folder.join("notes.txt").exists());
        assert!(b.ls(w, "/").unwrap().iter().any(|e| e.name == "notes.txt"));
    }

    #[test]
    fn only_owners_rename_a_workspace_even_with_a_hostile_client() {
        let dir = tempfile::tempdir().unwrap();
        let (mut a, mut b) = two(dir.path());
        let id = a.create_workspace("Plans").unwrap().id;
        let w = a.find_workspace(&id).unwrap();
        let ben = a.find_user("ben@x.example").unwrap();
        a.share(w, ben, Role::Contributor).unwrap();
        sync(&a, &mut b, w);
        assert_eq!(title(&mut b, w).as_deref(), Some("Plans"));
        // An honest client refuses.
        assert!(matches!(
            b.rename_workspace(w, "Mine"),
            Err(NodeError::Forbidden(_))
        ));
        // A hostile client writes the settings change anyway (its envelope is valid: Ben may
        // write content); every honest replica ignores it.
        b.doc(w)
            .unwrap()
            .crdt
            .set_title("Pwned", now_ms() as i64 + 10_000)
            .unwrap();
        b.commit(w).unwrap();
        sync(&b, &mut a, w);
        assert_eq!(title(&mut a, w).as_deref(), Some("Plans"));
        // The same envelope on a fresh replica (rebuilt from the envelopes): still ignored.
        a.docs.remove(&w);
        assert_eq!(title(&mut a, w).as_deref(), Some("Plans"));
        // The owner renames; everyone follows.
        a.rename_workspace(w, "Plans 2026").unwrap();
        sync(&a, &mut b, w);
        b.docs.remove(&w);
        assert_eq!(title(&mut b, w).as_deref(), Some("Plans 2026"));
        assert_eq!(title(&mut a, w).as_deref(), Some("Plans 2026"));
    }
}
