//! The claimer's side of an enrolment: building a new device's home from the greeter's
//! `Welcome` (`Node::join`), online or from an air-gapped answer file.
//!
//! Invariants: nothing is kept unless the welcome's log makes the new device active in the
//! token's organization, certified by the greeter device the token names (what was written is
//! removed otherwise); the greeter's addresses are kept only if they name that greeter.

use std::path::Path;

use super::{KEY_FILE, Node, NodeError, STORE_FILE, now_ms, prepare_home};
use crate::enroll::msg::MAX_WELCOME_PEERS;
use crate::enroll::{Token, Welcome};
use crate::keystore::{KdfParams, Keystore};
use crate::store::Store;
use crate::trust::DeviceId;
use crate::trust::keys::{self, DeviceKeys, OrgKey, UserSecret};

impl Node {
    /// The claimer's side: builds a new home for `device` from a `Welcome`. `user_secret` is
    /// the generation-0 key the claimer made for a user invitation (None for a device
    /// invitation, whose keys come sealed in the welcome). Removes what it wrote if the log does
    /// not make the device active, certified by the token's greeter device.
    #[allow(clippy::too_many_arguments)]
    pub fn join(
        home: &Path,
        passphrase: &[u8],
        kdf: KdfParams,
        token: &Token,
        device: &DeviceKeys,
        user_secret: Option<UserSecret>,
        welcome: &Welcome,
    ) -> Result<Node, NodeError> {
        let org = token.org;
        let mut secrets: Vec<UserSecret> = match user_secret {
            Some(s) => vec![s],
            None => {
                let me: DeviceId = device.id();
                let mut v = Vec::new();
                for (g, sealed) in &welcome.user_keys {
                    let aad = keys::user_key_aad(&org, &welcome.user, *g, &me);
                    let plain = device.open_sealed(&aad, sealed)?;
                    let b: [u8; 32] = plain
                        .as_slice()
                        .try_into()
                        .map_err(|_| NodeError::Invalid("a sealed user key is malformed".into()))?;
                    v.push(UserSecret::from_bytes(*g, &b));
                }
                v
            }
        };
        secrets.sort_by_key(|s| s.generation);
        let Some(current) = secrets.last() else {
            return Err(NodeError::Invalid("the welcome carries no user key".into()));
        };
        prepare_home(home)?;
        let built = (|| {
            let mut ks = Keystore::create(
                &home.join(KEY_FILE),
                passphrase,
                kdf,
                org,
                welcome.user,
                device,
                &OrgKey::from_bytes(&welcome.org_key.0),
                current,
            )?;
            ks.add_user_secrets(&secrets)?;
            drop(ks);
            let store = Store::open(&home.join(STORE_FILE))?;
            store.set_org(org)?;
            drop(store);
            let mut node = Node::open(home, passphrase)?;
            node.ingest_log(welcome.entries.clone())?;
            if !node.state().is_active(&device.id()) {
                return Err(NodeError::Refused(
                    "the organization log from the greeter does not make this device active".into(),
                ));
            }
            // Certified by the greeter the token names, not by another member who held the
            // token (an air-gapped answer is authenticated by the token alone).
            let certifier = node
                .state()
                .devices
                .get(&device.id())
                .and_then(|d| node.log().get(&d.added_by))
                .map(|e| e.body().author);
            if certifier != Some(token.greeter) {
                return Err(NodeError::Refused(
                    "this device is not certified by the greeter the token names".into(),
                ));
            }
            node.remember_greeter(token, &welcome.peers)?;
            Ok(node)
        })();
        if built.is_err() {
            let _ = std::fs::remove_file(home.join(KEY_FILE));
            let _ = std::fs::remove_file(home.join(STORE_FILE));
            let _ = std::fs::remove_dir_all(home.join("blocks"));
        }
        built
    }

    /// Keeps the greeter's sync addresses from its welcome, to dial when our daemon starts (a
    /// new device knows no peer otherwise when mDNS is off or finds nobody): only addresses
    /// that parse and name the greeter's own peer id.
    fn remember_greeter(&mut self, token: &Token, peers: &[String]) -> Result<(), NodeError> {
        for a in peers.iter().take(MAX_WELCOME_PEERS) {
            let named = a
                .parse::<crate::net::Multiaddr>()
                .ok()
                .and_then(|m| crate::net::addr_peer(&m))
                == Some(token.greeter);
            if named {
                self.store.add_dial(a, now_ms())?;
            } else {
                tracing::warn!(addr = %crate::control::shown::escape(a), "greeter address ignored (does not name the greeter)");
            }
        }
        Ok(())
    }
}
