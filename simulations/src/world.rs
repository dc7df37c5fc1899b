//! The signed world a run starts from: one organization (users with two devices each, an
//! optional authorized relay), teams of users and one workspace per team.
//!
//! Everything is signed for real with the node's own authoring code (`author::create_org`,
//! `Writer`, `WorkspaceLog::draft`) and admitted by the real logs. The organization log is built
//! once and shared (`Arc`) by every replica; key material comes from the seeded RNG, and
//! signing is deterministic, so the same seed gives the same bytes.
//!
//! Epoch keys are opaque blobs of the size of a sealed key: the simulator never opens content.

use std::sync::Arc;

use cloison_node::sync::{DocId, Replica};
use cloison_node::trust::author::{self, Newcomer, UserSecretPublic, Writer};
use cloison_node::trust::{Clock, DeviceKeys, OrgId, OrgKey, OrgLog, Profile, UserId, UserSecret};
use cloison_node::workspace::envelope::encode_payload;
use cloison_node::workspace::{
    AccessChange, EnvelopeId, EpochKeys, Kind, Role, SealedKeys, WorkspaceId, WorkspaceLog,
};
use rand::rngs::StdRng;
use rand::{Rng, RngExt};

use crate::config::SimConfig;

/// Wall time (ms) at which the world is signed; the simulation starts later.
const BUILD_MS: u64 = 1_000;

/// A world that failed to build (the authoring code refused something: a bug).
#[derive(Debug, thiserror::Error)]
pub enum WorldError {
    /// What was refused.
    #[error("building the world: {0}")]
    Refused(String),
}

/// One device.
pub struct DeviceSpec {
    /// Its keys.
    pub keys: DeviceKeys,
    /// Its user.
    pub user: UserId,
    /// Its site.
    pub site: usize,
    /// Its team.
    pub team: usize,
}

/// A team and its workspace.
pub struct Team {
    /// The workspace.
    pub ws: WorkspaceId,
    /// The epoch content is written under.
    pub epoch: EnvelopeId,
    /// The envelopes that set it up (create, grants, keys), parents first.
    pub setup: Vec<Vec<u8>>,
    /// Its devices (indices into [`World::devices`]).
    pub devices: Vec<usize>,
}

/// The signed world.
pub struct World {
    /// The organization.
    pub org_id: OrgId,
    /// The organization log every replica starts from.
    pub org: Arc<OrgLog>,
    /// The organization key (for the admin's later entries).
    pub org_key: OrgKey,
    /// Index of the admin's first device.
    pub admin: usize,
    /// The admin device's clock after building.
    pub admin_clock: Clock,
    /// Devices.
    pub devices: Vec<DeviceSpec>,
    /// The relay's keys, if any.
    pub relay: Option<DeviceKeys>,
    /// Teams.
    pub teams: Vec<Team>,
    /// Wall time (ms) after the last signed item.
    pub built_at_ms: u64,
}

fn refused(what: impl std::fmt::Debug) -> WorldError {
    WorldError::Refused(format!("{what:?}"))
}

fn ingest(log: &mut OrgLog, e: Vec<u8>) -> Result<(), WorldError> {
    let r = log.ingest(vec![e]);
    if r.is_clean() && r.admitted.len() == 1 {
        Ok(())
    } else {
        Err(refused(r.rejected))
    }
}

impl World {
    /// Signs the organization, sites and teams of `cfg` with `rng`.
    pub fn build(cfg: &SimConfig, rng: &mut StdRng) -> Result<World, WorldError> {
        let users = cfg.devices / 2;
        let mut now = BUILD_MS;
        let mut clock = Clock::default();
        let admin_who = Newcomer {
            name: "admin",
            email: "admin@example.org",
            device_label: "admin-1",
        };
        let org = author::create_org(rng, now, &mut clock, "Simulated Org", &admin_who)
            .map_err(refused)?;
        let mut log = OrgLog::new(org.org);
        ingest(&mut log, org.genesis.clone())?;
        // Teams are consecutive users and live at one site each (team t at site t % sites):
        // workspaces are shared inside a site, the organization log everywhere.
        let mut devices: Vec<DeviceSpec> = Vec::with_capacity(cfg.devices);
        let mut user_ids = Vec::with_capacity(users);
        let mut first_keys = Some(org.device);
        for u in 0..users {
            let team = u / cfg.team_size;
            let (user, d1) = if u == 0 {
                let d1 = first_keys.take().ok_or_else(|| refused("admin keys"))?;
                (org.user, d1)
            } else {
                let secret = UserSecret::generate(0, rng);
                let d1 = DeviceKeys::generate(rng);
                let claimed = author::claim_first(&d1, &org.org, &secret.public());
                let user = claimed.first_user(&org.org);
                let name = format!("user {u}");
                let email = format!("user{u}@example.org");
                let who = Newcomer {
                    name: &name,
                    email: &email,
                    device_label: "laptop",
                };
                let admin_keys = &devices[0].keys;
                let mut w = Writer {
                    keys: admin_keys,
                    org_key: &org.org_key,
                    clock: &mut clock,
                };
                let c = w
                    .user_added(
                        rng,
                        &org.org,
                        Profile::Standard,
                        &UserSecretPublic(secret.public()),
                        &claimed,
                        &who,
                    )
                    .map_err(refused)?;
                now += 1;
                let e = w.draft(&log, now, c);
                ingest(&mut log, e)?;
                (user, d1)
            };
            // The second device is added by the user's own first device.
            let d2 = DeviceKeys::generate(rng);
            let claimed = author::claim_device(&d2, &org.org, &d1.id());
            let mut w = Writer {
                keys: &d1,
                org_key: &org.org_key,
                clock: &mut clock,
            };
            let c = w
                .device_added(rng, &org.org, user, &claimed, "desktop")
                .map_err(refused)?;
            now += 1;
            let e = w.draft(&log, now, c);
            ingest(&mut log, e)?;
            user_ids.push(user);
            for keys in [d1, d2] {
                devices.push(DeviceSpec {
                    keys,
                    user,
                    site: team % cfg.sites,
                    team,
                });
            }
        }
        let relay = if cfg.relay {
            let r = DeviceKeys::generate(rng);
            let mut w = Writer {
                keys: &devices[0].keys,
                org_key: &org.org_key,
                clock: &mut clock,
            };
            now += 1;
            let e = w.draft(
                &log,
                now,
                author::relay_authorized(r.id(), vec!["/dns/relay.example.org/udp/443".into()]),
            );
            ingest(&mut log, e)?;
            Some(r)
        } else {
            None
        };
        let org_log = Arc::new(log);
        let n_teams = users.div_ceil(cfg.team_size);
        let mut teams = Vec::with_capacity(n_teams);
        for t in 0..n_teams {
            let members: Vec<usize> =
                (t * cfg.team_size..((t + 1) * cfg.team_size).min(users)).collect();
            let mut wid = [0u8; 16];
            rng.fill_bytes(&mut wid);
            let ws = WorkspaceId(wid);
            let creator = 2 * members[0];
            let (setup, epoch) = team_setup(
                &org_log,
                &devices[creator].keys,
                ws,
                members.iter().map(|u| user_ids[*u]).collect(),
                &mut now,
            )?;
            let devs = members.iter().flat_map(|u| [2 * u, 2 * u + 1]).collect();
            teams.push(Team {
                ws,
                epoch,
                setup,
                devices: devs,
            });
        }
        Ok(World {
            org_id: org.org,
            org: org_log,
            org_key: org.org_key,
            admin: 0,
            admin_clock: clock,
            devices,
            relay,
            teams,
            built_at_ms: now + 1,
        })
    }

    /// A replica for device `i` (or the relay with `None`): the shared organization log and the
    /// workspace(s) it holds at the start, admitted for real.
    pub fn replica(&self, i: Option<usize>) -> Result<Replica, WorldError> {
        let mut r = Replica::new(self.org_id);
        r.org = Arc::clone(&self.org);
        let teams: Vec<&Team> = match i {
            Some(i) => vec![&self.teams[self.devices[i].team]],
            None => self.teams.iter().collect(),
        };
        for t in teams {
            let got = r.ingest(DocId::Workspace(t.ws), t.setup.clone());
            if got.admitted.len() != t.setup.len() {
                return Err(refused(got.refused));
            }
        }
        Ok(r)
    }
}

/// Signs a team's workspace: creation by `creator`, a CONTRIBUTOR grant per other member (a
/// MANAGER grant for the second, so two can rotate keys), one epoch sealed to everyone.
fn team_setup(
    org: &OrgLog,
    creator: &DeviceKeys,
    ws: WorkspaceId,
    mut users: Vec<UserId>,
    now: &mut u64,
) -> Result<(Vec<Vec<u8>>, EnvelopeId), WorldError> {
    let mut log = WorkspaceLog::new(org.org(), ws);
    let mut clock = Clock::default();
    let mut out = Vec::new();
    let mut write = |log: &mut WorkspaceLog, kind, payload: Vec<u8>| {
        *now += 1;
        let b = log
            .draft(org, creator, &mut clock, *now, kind, None, |_| payload)
            .map_err(|why| refused(vec![(EnvelopeId::default(), why)]))?;
        let r = log.ingest(vec![b.clone()], org);
        if r.admitted.len() != 1 {
            return Err(refused(r.refused));
        }
        out.push(b.clone());
        Ok(b)
    };
    write(
        &mut log,
        Kind::Access,
        encode_payload(&AccessChange::Create),
    )?;
    for (k, user) in users.iter().enumerate().skip(1) {
        let role = if k == 1 {
            Role::Manager
        } else {
            Role::Contributor
        };
        let grant = AccessChange::Grant { user: *user, role };
        write(&mut log, Kind::Access, encode_payload(&grant))?;
    }
    users.sort();
    let k = write(&mut log, Kind::Keys, opaque_new_epoch(&users))?;
    Ok((out, EnvelopeId(*blake3::hash(&k).as_bytes())))
}

/// The payload of a new epoch sealed to `users` (sorted) with opaque blobs of a real blob's size:
/// the simulator never opens epoch keys, only moves them.
pub fn opaque_new_epoch(users: &[UserId]) -> Vec<u8> {
    let sealed = users
        .iter()
        .map(|u| SealedKeys {
            user: *u,
            generation: 0,
            epochs: Vec::new(),
            blob: vec![0u8; 80],
        })
        .collect();
    cloison_node::workspace::envelope::encode_keys(&EpochKeys {
        commitment: Some([0; 32]),
        sealed,
    })
}

/// Fisher-Yates with the run's RNG.
pub fn shuffle<T>(v: &mut [T], rng: &mut StdRng) {
    for i in (1..v.len()).rev() {
        let j = rng.random_range(0..=i);
        v.swap(i, j);
    }
}
