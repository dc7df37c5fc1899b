//! Runs a [`Request`] on an open [`Node`]: the one implementation behind both the daemon's
//! control socket and the command run without a daemon.
//!
//! Requests that only a running daemon can answer (peers, shutdown) are refused here with a
//! clear error; `status` answers with what the store knows and `daemon: false`; `connect`
//! remembers the address for the daemon's next start.

use super::{Progress, Request, Response, StatusInfo};
use crate::node::{Node, NodeError, now_ms};
use crate::workspace::Role;

/// Executes a request on a node. `pump` is called between the batches of a long operation
/// (the daemon handles network traffic there; without a daemon it does nothing).
pub fn execute(
    node: &mut Node,
    request: Request,
    progress: &mut dyn FnMut(Progress),
    pump: &mut dyn FnMut(&mut Node),
) -> Result<Response, NodeError> {
    Ok(match request {
        Request::OrgShow => Response::Org(node.org_info()),
        Request::Users => Response::Users(node.users()),
        Request::Devices => Response::Devices(node.devices()),
        Request::RevokeDevice { query } => {
            let d = node.find_device(&query)?;
            let id = node.revoke_device(d)?;
            Response::Message(format!(
                "device {} revoked (entry {})",
                d.short(),
                id.short()
            ))
        }
        Request::RevokeUser { query } => {
            let u = node.find_user(&query)?;
            let id = node.revoke_user(u)?;
            Response::Message(format!("user {} revoked (entry {})", u.short(), id.short()))
        }
        Request::WorkspaceCreate { name } => Response::Workspace(node.create_workspace(&name)?),
        Request::WorkspaceList => Response::Workspaces(node.workspaces()?),
        Request::WorkspaceRename { ws, name } => {
            let w = node.find_workspace(&ws)?;
            node.rename_workspace(w, &name)?;
            Response::Workspace(node.workspace_info(w)?)
        }
        Request::WorkspaceShare { ws, user, role } => {
            let w = node.find_workspace(&ws)?;
            let u = node.find_user(&user)?;
            let role: Role = role.parse().map_err(NodeError::Invalid)?;
            node.share(w, u, role)?;
            Response::Members(node.members(w)?)
        }
        Request::WorkspaceUnshare { ws, user } => {
            let w = node.find_workspace(&ws)?;
            let u = node.find_user(&user)?;
            node.unshare(w, u)?;
            Response::Members(node.members(w)?)
        }
        Request::WorkspaceMembers { ws } => {
            let w = node.find_workspace(&ws)?;
            Response::Members(node.members(w)?)
        }
        Request::Put { ws, local, remote } => {
            let w = node.find_workspace(&ws)?;
            Response::Put(node.put(w, &local, &remote, progress, pump)?)
        }
        Request::Get {
            ws,
            remote,
            local,
            wait_s,
        } => {
            let w = node.find_workspace(&ws)?;
            let wait = std::time::Duration::from_secs(wait_s.min(3600));
            Response::Got(node.get(w, &remote, &local, progress, pump, wait)?)
        }
        Request::Ls {
            ws,
            path,
            recursive,
        } => {
            let w = node.find_workspace(&ws)?;
            Response::Entries(if recursive {
                node.ls_tree(w, &path)?
            } else {
                node.ls(w, &path)?
            })
        }
        Request::Find { pattern, ws } => {
            let only = ws.map(|q| node.find_workspace(&q)).transpose()?;
            Response::Found(node.find(&pattern, only)?)
        }
        Request::Mv { ws, from, to } => {
            let w = node.find_workspace(&ws)?;
            node.mv(w, &from, &to)?;
            Response::Done
        }
        Request::Rm { ws, path } => {
            let w = node.find_workspace(&ws)?;
            node.rm(w, &path)?;
            Response::Done
        }
        Request::History { ws, path } => {
            let w = node.find_workspace(&ws)?;
            Response::History(node.history(w, &path)?)
        }
        Request::Restore { ws, path, version } => {
            let w = node.find_workspace(&ws)?;
            Response::Restored(node.restore(w, &path, version.as_deref())?)
        }
        Request::Status => Response::Status(status(node, false)?),
        Request::Connect { addr } => {
            if !node.store().add_dial(&addr, now_ms())? {
                return Err(NodeError::Invalid(
                    "address too long or too many kept".into(),
                ));
            }
            Response::Message(format!(
                "no daemon running: {addr} will be dialled when `cloison run` starts"
            ))
        }
        Request::BundleExport {
            out,
            workspaces,
            receipt,
        } => {
            let mut ws = Vec::new();
            for q in &workspaces {
                ws.push(node.find_workspace(q)?);
            }
            Response::Bundle(node.export_bundle(&out, &ws, receipt.as_deref(), progress)?)
        }
        Request::BundleImport { file } => Response::Bundle(node.import_bundle(&file, progress)?),
        Request::BundleInspect { file } => Response::Bundle(node.inspect_bundle(&file)?),
        Request::BundleReceipt { out } => {
            let r = node.write_receipt(&out)?;
            Response::Message(format!(
                "receipt written: {} entries, {} envelopes, {} blocks",
                r.entries.len(),
                r.envelopes.len(),
                r.blocks.len()
            ))
        }
        Request::InviteCreate { .. }
        | Request::Invitations
        | Request::InviteCancel { .. }
        | Request::GreetWait { .. }
        | Request::GreetConfirm { .. }
        | Request::GreetAbort { .. }
        | Request::GreetOfflineOpen { .. }
        | Request::GreetOfflineAnswer { .. } => super::enrol::execute(node, request)?,
        Request::RelayAdd { addr } => {
            let r = node.relay_add(&addr)?;
            Response::Message(format!(
                "relay {} authorized (entry {}); devices will use it",
                r.peer_id, r.authorized_by
            ))
        }
        Request::RelayRevoke { relay } => {
            let r = node.relay_revoke(&relay)?;
            Response::Message(format!(
                "relay {} revoked (entry {}); devices stop using it, and it stops serving this \
                 organization once it holds the revocation",
                r.peer_id,
                r.revoked_by.unwrap_or_default()
            ))
        }
        Request::RelayList => Response::Relays(node.relays()),
        Request::SyncAdd { ws, dir } => {
            let w = node.find_workspace(&ws)?;
            node.register_mirror(w, &dir)?;
            Response::Message(format!(
                "{} will be mirrored to {ws} when a daemon runs (`cloison run`)",
                dir.display()
            ))
        }
        Request::SyncList => Response::Mirrors(node.mirror_infos()?),
        Request::SyncStop { ws } => {
            let w = node.find_workspace(&ws)?;
            node.unregister_mirror(w)?;
            Response::Message(format!("stopped mirroring {ws}"))
        }
        Request::Peers | Request::Shutdown => {
            return Err(NodeError::Invalid(
                "no daemon is running for this home; start one with `cloison run`".into(),
            ));
        }
    })
}

/// The status the store and the engine know (the daemon adds its network part).
pub fn status(node: &mut Node, daemon: bool) -> Result<StatusInfo, NodeError> {
    let workspaces = node.workspaces()?;
    let stats = node.engine().stats();
    Ok(StatusInfo {
        device: node.device_id().to_string(),
        daemon,
        listen: Vec::new(),
        peers: node.engine().peers().len(),
        org_entries: node.log().len(),
        org_waiting: node.log().pending_len(),
        blocks_pending: node.engine().blocks_pending(),
        blocks_stored: node.block_count(),
        envelopes: workspaces.iter().map(|w| w.envelopes as u64).sum(),
        refused: node
            .refused_items()
            .iter()
            .map(|(r, n)| ((*r).to_owned(), *n))
            .collect(),
        workspaces,
        bytes_sent: stats.bytes_sent,
        bytes_received: stats.bytes_received,
        bandwidth: None,
    })
}

/// A stable label for an error, for the control protocol.
pub fn error_kind(e: &NodeError) -> &'static str {
    match e {
        NodeError::NotFound { .. } => "not_found",
        NodeError::Ambiguous { .. } => "ambiguous",
        NodeError::Forbidden(_) => "forbidden",
        NodeError::NotSynced { .. } => "not_synced",
        NodeError::NoKey(_) => "no_key",
        NodeError::Refused(_) => "refused",
        NodeError::Io { .. } => "io",
        _ => "invalid",
    }
}
