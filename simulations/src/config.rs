//! Simulation settings: plain data, parsed by the binary and built directly by tests.
//!
//! Invariant: everything that changes a run's outcome is here (or is the seed); two runs with
//! equal `SimConfig`s produce identical reports.

/// Which scenario to play.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scenario {
    /// Every device writes one content envelope in its team's workspace at a random time;
    /// measure when every member device has every write.
    Writes,
    /// The admin revokes one device; measure when every device holds the revocation and has cut
    /// the device off, then check that the revoked device's later envelopes go nowhere.
    Revocation,
    /// Each team's owner grants the workspace to a user of another team and removes one member
    /// (then opens a new epoch); measure when the granted devices hold the workspace, when the
    /// remaining members hold the new epoch, and what the removed devices still receive.
    Shares,
}

impl Scenario {
    /// Name used in the CSV.
    pub fn name(self) -> &'static str {
        match self {
            Scenario::Writes => "writes",
            Scenario::Revocation => "revocation",
            Scenario::Shares => "shares",
        }
    }
}

/// A window during which one site is cut off from the others (and from the relay).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Partition {
    /// Site cut off.
    pub site: usize,
    /// Start, in ms after the scenario starts.
    pub start_ms: u64,
    /// Duration, in ms.
    pub duration_ms: u64,
}

/// Everything a run depends on.
#[derive(Debug, Clone)]
pub struct SimConfig {
    /// Scenario.
    pub scenario: Scenario,
    /// The seed of the one RNG.
    pub seed: u64,
    /// Number of devices (even: users have two devices each); the relay is extra.
    pub devices: usize,
    /// Number of sites (the last one is air-gapped with `airgapped`).
    pub sites: usize,
    /// Whether a relay engine exists.
    pub relay: bool,
    /// Devices per online site linked to the relay (`None`: every device).
    pub relay_per_site: Option<usize>,
    /// Whether the last site is air-gapped (reached only by bundles).
    pub airgapped: bool,
    /// Period of the bundle sessions, in ms.
    pub bundle_every_ms: u64,
    /// Direct WAN links per device to devices of other online sites.
    pub wan_links: usize,
    /// LAN overlay degree: each device links to this many random devices of its site.
    pub lan_k: usize,
    /// Users per team (one workspace per team).
    pub team_size: usize,
    /// Size of a content payload, in bytes.
    pub payload: usize,
    /// Writes happen uniformly in this window after the warm-up, in ms.
    pub write_window_ms: u64,
    /// Fraction of devices that go offline once for 1 to 10 minutes during the run.
    pub churn: f64,
    /// Optional partition.
    pub partition: Option<Partition>,
    /// Anti-entropy period of the engines, in ms.
    pub anti_entropy_ms: u64,
    /// Give up this long after the scenario starts, in ms.
    pub horizon_ms: u64,
    /// Print progress to stderr every million events (changes nothing in the report).
    pub progress: bool,
}

impl SimConfig {
    /// Defaults for `devices` devices in `sites` sites.
    pub fn new(scenario: Scenario, devices: usize, sites: usize) -> SimConfig {
        SimConfig {
            scenario,
            seed: 1,
            devices,
            sites,
            relay: false,
            relay_per_site: Some(8),
            airgapped: false,
            bundle_every_ms: 10 * 60_000,
            wan_links: 0,
            lan_k: 6,
            team_size: 10,
            payload: 512,
            write_window_ms: 60_000,
            churn: 0.0,
            partition: None,
            anti_entropy_ms: 30_000,
            horizon_ms: 4 * 3_600_000,
            progress: false,
        }
    }

    /// Number of sites that are online (not air-gapped).
    pub fn online_sites(&self) -> usize {
        if self.airgapped {
            self.sites.saturating_sub(1)
        } else {
            self.sites
        }
    }

    /// Whether `site` is the air-gapped one.
    pub fn is_airgapped(&self, site: usize) -> bool {
        self.airgapped && site + 1 == self.sites
    }
}

/// A setting that makes no sense.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    /// Explained in the message.
    #[error("invalid settings: {0}")]
    Invalid(&'static str),
}

impl SimConfig {
    /// Checks the settings.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let bad = |m| Err(ConfigError::Invalid(m));
        if self.devices < 4 || !self.devices.is_multiple_of(2) {
            return bad("devices must be even and at least 4");
        }
        if self.team_size < 2 {
            return bad("teams need at least 2 users");
        }
        if self.sites == 0 || self.sites > (self.devices / 2).div_ceil(self.team_size) {
            return bad("every site needs a team: sites must be between 1 and the number of teams");
        }
        if self.airgapped && self.sites < 2 {
            return bad("an air-gapped site needs at least one other site");
        }
        if !(0.0..=1.0).contains(&self.churn) {
            return bad("churn is a fraction between 0 and 1");
        }
        if let Some(p) = self.partition
            && p.site >= self.sites
        {
            return bad("the partitioned site does not exist");
        }
        if self.bundle_every_ms == 0 || self.anti_entropy_ms == 0 {
            return bad("periods must be positive");
        }
        Ok(())
    }
}
