//! Command-line arguments, as plain data (no I/O here, so tests can check parsing alone).

use std::path::PathBuf;

use clap::{Parser, Subcommand};

use super::config::LogFormat;

/// Cloison: zero-trust, zero-knowledge file sharing between the devices of an organization.
#[derive(Debug, Parser)]
#[command(name = "cloison", version, about, propagate_version = true)]
pub struct Cli {
    /// This device's home directory (keys and database).
    #[arg(long, global = true, env = "CLOISON_HOME", value_name = "DIR")]
    pub home: Option<PathBuf>,
    /// The daemon's config file (also CLOISON_CONFIG; default: config.toml in the home; see
    /// `cloison config show`).
    #[arg(long, global = true, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// More logging on stderr (-v info, -vv debug), over RUST_LOG and the config file's `log`.
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,
    /// Log lines on stderr as text or JSON (also CLOISON_LOG_FORMAT, or `log_format` in the
    /// config file).
    #[arg(long, global = true, value_enum, value_name = "FORMAT")]
    pub log_format: Option<LogFormat>,
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// Commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Create an organization; this device becomes its first admin's first device.
    Init {
        /// Organization name.
        #[arg(long)]
        org: String,
        /// Your name.
        #[arg(long)]
        user: String,
        /// Your e-mail.
        #[arg(long)]
        email: String,
        /// A label for this device.
        #[arg(long)]
        device: String,
    },
    /// Organization commands.
    Org {
        /// What to do.
        #[command(subcommand)]
        command: OrgCommand,
    },
    /// List the organization's users.
    Users {
        /// One JSON document instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// List the organization's devices.
    Devices {
        /// One JSON document instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Revoke a device or a user, for good.
    Revoke {
        /// What to revoke.
        #[command(subcommand)]
        what: RevokeCommand,
    },
    /// Run the daemon: sync with peers, serve the other commands on the control socket.
    Run {
        /// Network settings (over the environment and the config file).
        #[command(flatten)]
        net: NetFlags,
    },
    /// The daemon's configuration: `show` (merged from flags, environment, file and
    /// defaults, with where each value came from) and `path`.
    #[command(subcommand)]
    Config(ConfigCommand),
    /// Stop the running daemon.
    Stop,
    /// Workspace commands.
    #[command(subcommand)]
    Workspace(WorkspaceCommand),
    /// Copy a local file or directory (recursively) into a workspace.
    Put {
        /// The workspace (name or id prefix).
        ws: String,
        /// Local file or directory.
        local: PathBuf,
        /// Path in the workspace (a directory lands as this folder).
        remote: String,
        /// One JSON document instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Copy a file or folder of a workspace to a local path.
    Get {
        /// The workspace.
        ws: String,
        /// Path in the workspace.
        remote: String,
        /// Local destination (inside it if it is a directory).
        local: PathBuf,
        /// With a daemon running: seconds to wait for blocks still on their way.
        #[arg(long, default_value_t = 30, value_name = "SECONDS")]
        wait: u64,
        /// One JSON document instead of text.
        #[arg(long)]
        json: bool,
    },
    /// List a folder of a workspace (`-R`: everything under it, with full paths).
    Ls {
        /// The workspace.
        ws: String,
        /// The folder (default: the root).
        #[arg(default_value = "/")]
        path: String,
        /// Every file and folder under it, each with its full path.
        #[arg(short = 'R', long)]
        recursive: bool,
        /// One JSON document instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Find files and folders by name in every workspace this device can read (searched on
    /// this device only: no name leaves it).
    Find {
        /// A glob (`*.pdf`, `q?-*`) or a part of the name; case-insensitive.
        pattern: String,
        /// Only this workspace.
        #[arg(long, value_name = "WS")]
        workspace: Option<String>,
        /// One JSON document instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Move or rename a file or folder.
    Mv {
        /// The workspace.
        ws: String,
        /// What.
        from: String,
        /// Where (into it if it is a folder).
        to: String,
    },
    /// Remove a file or folder (history keeps it; `restore` brings it back).
    Rm {
        /// The workspace.
        ws: String,
        /// What.
        path: String,
    },
    /// The versions of a file.
    History {
        /// The workspace.
        ws: String,
        /// The file.
        path: String,
        /// One JSON document instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Bring back a removed file, or make an earlier version current.
    #[command(disable_version_flag = true)]
    Restore {
        /// The workspace.
        ws: String,
        /// The file.
        path: String,
        /// The version (id prefix); default: the one before the current one.
        #[arg(long)]
        version: Option<String>,
    },
    /// Sync status: per workspace, heads, pending items, last sync; peers.
    Status {
        /// One JSON document instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Connected and refused peers (needs the daemon).
    Peers {
        /// One JSON document instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Dial a peer now (and at every start).
    Connect {
        /// Its multiaddress, e.g. /ip4/192.0.2.7/tcp/4001/p2p/12D3Koo...
        addr: String,
    },
    /// Bundles for air-gapped sites (files carried on removable media).
    #[command(subcommand)]
    Bundle(BundleCommand),
    /// Mirror a local folder to a workspace, both ways, as long as the daemon runs (and across
    /// its restarts). `--list` shows the mirrors, `--stop WS` ends one.
    Sync {
        /// The workspace (name or id prefix).
        #[arg(required_unless_present_any = ["list", "stop"])]
        ws: Option<String>,
        /// The local directory (created if missing).
        #[arg(required_unless_present_any = ["list", "stop"])]
        dir: Option<PathBuf>,
        /// Run this one mirror in the foreground (with its own network, no daemon needed; not
        /// kept after it stops).
        #[arg(long, conflicts_with_all = ["list", "stop"])]
        foreground: bool,
        /// List the mirrors.
        #[arg(long, conflicts_with = "stop")]
        list: bool,
        /// Stop mirroring this workspace.
        #[arg(long, value_name = "WS")]
        stop: Option<String>,
        /// With --list: one JSON document instead of a table.
        #[arg(long)]
        json: bool,
        /// With --foreground: address to listen on (repeatable).
        #[arg(long = "listen", value_name = "MULTIADDR", requires = "foreground")]
        listen: Vec<String>,
        /// With --foreground: address of a peer to dial at start (repeatable).
        #[arg(long = "peer", value_name = "MULTIADDR", requires = "foreground")]
        peers: Vec<String>,
        /// With --foreground: no LAN discovery.
        #[arg(long, requires = "foreground")]
        no_mdns: bool,
    },
    /// Run the whole story on this machine: an organization, real daemons on loopback, a
    /// shared workspace, offline catch-up, unshare and revocation, each step checked.
    Demo {
        /// Keep the demo's directory afterwards (printed at the end).
        #[arg(long)]
        keep: bool,
    },
    /// Invite a new user or a new device of yours (prints a token for `cloison join`).
    Invite {
        /// What to do.
        #[command(subcommand)]
        what: InviteCommand,
    },
    /// List invitations.
    Invitations {
        /// One JSON document instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Greet the claimer of an invitation (through the running daemon): codes are printed on
    /// their own lines, and the claimer's code is read from stdin.
    Greet {
        /// The invitation (id or prefix).
        id: String,
        /// Seconds to wait for the claimer.
        #[arg(long, default_value_t = 600, value_name = "SECONDS")]
        wait: u64,
        /// Air-gapped: the claimer's request file (then `--out` names the answer file).
        #[arg(long, value_name = "FILE", requires = "out")]
        request: Option<PathBuf>,
        /// Air-gapped: where to write the answer file.
        #[arg(long, value_name = "FILE")]
        out: Option<PathBuf>,
    },
    /// Join an organization with an invitation token: creates this device's home and keys.
    /// The admin's code is read from stdin.
    Join {
        /// The token (not with `--answer` or `--code`).
        #[arg(required_unless_present_any = ["answer", "code"])]
        token: Option<String>,
        /// Your name (a user invitation; omit it for a device invitation).
        #[arg(long)]
        user: Option<String>,
        /// A label for this new device.
        #[arg(long, required_unless_present_any = ["answer", "code"])]
        device: Option<String>,
        /// Air-gapped: write a request file for the admin instead of connecting.
        #[arg(long, requires = "out", conflicts_with = "answer")]
        offline: bool,
        /// Air-gapped: where to write the request file.
        #[arg(long, value_name = "FILE")]
        out: Option<PathBuf>,
        /// Air-gapped: read the admin's answer file and finish joining.
        #[arg(long, value_name = "FILE", conflicts_with = "token")]
        answer: Option<PathBuf>,
        /// Air-gapped: type the admin's code and get yours to read back (`--offline` asks it
        /// already; this asks it again).
        #[arg(long, conflicts_with_all = ["token", "answer"])]
        code: bool,
    },
    /// Relays (`cloison-bootstrap`) that store and forward this organization's ciphertext.
    #[command(subcommand)]
    Relay(RelayCommand),
    /// `completions SHELL` and `man [--out DIR]`.
    #[command(flatten)]
    Doc(cloison_node::manual::DocCommand),
}

/// The daemon's network flags (`cloison run`, `cloison config show`).
#[derive(Debug, Clone, Default, clap::Args)]
pub struct NetFlags {
    /// Address to listen on (repeatable). Also CLOISON_LISTEN or `listen` in the config file;
    /// default: an ephemeral TCP and QUIC port on every interface.
    #[arg(long = "listen", value_name = "MULTIADDR")]
    pub listen: Vec<String>,
    /// Address of a peer to dial at start (repeatable). Also CLOISON_PEERS or `peers` in the
    /// config file.
    #[arg(long = "peer", value_name = "MULTIADDR")]
    pub peers: Vec<String>,
    /// No LAN discovery (no multicast at all). Also `CLOISON_MDNS=0` or `mdns = false` in the
    /// config file.
    #[arg(long)]
    pub no_mdns: bool,
    /// Send file blocks at most this fast, in KiB/s (0: unlimited, the default). Also
    /// CLOISON_MAX_SEND_KIBPS or `max_send_kibps` in the config file.
    #[arg(long, value_name = "KIBPS")]
    pub max_send_kibps: Option<u64>,
    /// Receive file blocks at most this fast, in KiB/s (0: unlimited, the default). Also
    /// CLOISON_MAX_RECV_KIBPS or `max_recv_kibps` in the config file.
    #[arg(long, value_name = "KIBPS")]
    pub max_recv_kibps: Option<u64>,
}

/// `cloison config ...`
#[derive(Debug, Subcommand)]
pub enum ConfigCommand {
    /// Print the merged configuration and where each value came from (flag, env, file,
    /// default), without starting anything. Takes `cloison run`'s flags.
    Show {
        /// The flags `cloison run` would get.
        #[command(flatten)]
        net: NetFlags,
        /// One JSON document instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Print the config file's path (whether or not it exists).
    Path,
}

/// `cloison invite ...`
#[derive(Debug, Subcommand)]
pub enum InviteCommand {
    /// Invite a new user (admins only).
    User {
        /// Their e-mail.
        email: String,
        /// admin, standard or outsider.
        #[arg(long, default_value = "standard")]
        profile: String,
        /// Lifetime in seconds (default 24 h).
        #[arg(long, value_name = "SECONDS")]
        ttl: Option<u64>,
        /// One JSON document instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Invite a new device of your own user.
    Device {
        /// Lifetime in seconds (default 24 h).
        #[arg(long, value_name = "SECONDS")]
        ttl: Option<u64>,
        /// One JSON document instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Cancel a live invitation.
    Cancel {
        /// The invitation (id or prefix).
        id: String,
    },
}

/// `cloison relay ...`
#[derive(Debug, Subcommand)]
pub enum RelayCommand {
    /// Authorize a relay (admin): its address as `cloison-bootstrap run` printed it, ending in
    /// `/p2p/<PeerId>`. Every device then syncs through it.
    Add {
        /// e.g. /ip4/192.0.2.7/tcp/4001/p2p/12D3Koo...
        addr: String,
    },
    /// Revoke a relay (admin), for good: devices stop using it at once, and the relay stops
    /// serving this organization once it holds the revocation.
    Revoke {
        /// Its id, PeerId, address (ending in /p2p/<PeerId>), or a prefix of its id or PeerId.
        relay: String,
    },
    /// List the authorized relays, then the revoked ones.
    List {
        /// One JSON document instead of a table.
        #[arg(long)]
        json: bool,
    },
}

/// `cloison bundle ...`
#[derive(Debug, Subcommand)]
pub enum BundleCommand {
    /// Write a bundle: everything, or only what a receipt from the destination lacks.
    Export {
        /// The bundle file to write.
        #[arg(long)]
        out: PathBuf,
        /// Only this workspace (repeatable; default: all).
        #[arg(long = "workspace", value_name = "WS")]
        workspaces: Vec<String>,
        /// The destination's receipt.
        #[arg(long = "for", value_name = "RECEIPT")]
        receipt: Option<PathBuf>,
        /// One JSON document instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Check a bundle whole, then admit what it carries.
    Import {
        /// The bundle file.
        file: PathBuf,
        /// One JSON document instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Write a signed receipt of what this device holds, to carry back to the exporting site.
    Receipt {
        /// The receipt file to write.
        #[arg(long)]
        out: PathBuf,
    },
    /// Check a bundle and say what it holds, without importing it.
    Inspect {
        /// The bundle file.
        file: PathBuf,
        /// One JSON document instead of text.
        #[arg(long)]
        json: bool,
    },
}

/// `cloison workspace ...`
#[derive(Debug, Subcommand)]
pub enum WorkspaceCommand {
    /// Create a workspace; you become its owner.
    Create {
        /// Its name.
        name: String,
        /// One JSON document instead of text.
        #[arg(long)]
        json: bool,
    },
    /// List workspaces.
    List {
        /// One JSON document instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Rename a workspace (owners only).
    Rename {
        /// The workspace.
        ws: String,
        /// Its new name.
        name: String,
    },
    /// Share a workspace with a user.
    Share {
        /// The workspace.
        ws: String,
        /// The user (e-mail, name or id prefix).
        user: String,
        /// owner, manager, contributor or reader.
        #[arg(long, default_value = "contributor")]
        role: String,
    },
    /// Remove a user from a workspace (the keys are rotated).
    Unshare {
        /// The workspace.
        ws: String,
        /// The user.
        user: String,
    },
    /// Members of a workspace.
    Members {
        /// The workspace.
        ws: String,
        /// One JSON document instead of a table.
        #[arg(long)]
        json: bool,
    },
}

/// `cloison org ...`
#[derive(Debug, Subcommand)]
pub enum OrgCommand {
    /// Show the organization.
    Show {
        /// One JSON document instead of text.
        #[arg(long)]
        json: bool,
    },
}

/// `cloison revoke ...`
#[derive(Debug, Subcommand)]
pub enum RevokeCommand {
    /// Revoke a device (by id, id prefix or label). Its user's key is rotated.
    Device {
        /// The device.
        id: String,
    },
    /// Revoke a user and all their devices (by id, id prefix, e-mail or name).
    User {
        /// The user.
        id: String,
    },
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn cli_definition_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn parses_revoke_device_with_a_global_home() {
        let c = Cli::try_parse_from(["cloison", "revoke", "device", "abcd", "--home", "/tmp/x"])
            .unwrap();
        assert_eq!(c.home, Some(PathBuf::from("/tmp/x")));
        assert!(
            matches!(c.command, Command::Revoke { what: RevokeCommand::Device { ref id } } if id == "abcd")
        );
        assert!(Cli::try_parse_from(["cloison", "init", "--org", "O"]).is_err());
    }

    #[test]
    fn parses_workspace_and_file_commands() {
        let c = Cli::try_parse_from([
            "cloison",
            "workspace",
            "share",
            "Reports",
            "bob@x.org",
            "--role",
            "reader",
        ])
        .unwrap();
        assert!(matches!(
            c.command,
            Command::Workspace(WorkspaceCommand::Share { ref role, .. }) if role == "reader"
        ));
        let c = Cli::try_parse_from(["cloison", "ls", "Reports"]).unwrap();
        assert!(matches!(c.command, Command::Ls { ref path, recursive: false, .. } if path == "/"));
        let c = Cli::try_parse_from(["cloison", "ls", "Reports", "a/b", "-R", "--json"]).unwrap();
        assert!(matches!(
            c.command,
            Command::Ls {
                recursive: true,
                json: true,
                ..
            }
        ));
        let c =
            Cli::try_parse_from(["cloison", "find", "*.PDF", "--workspace", "Reports"]).unwrap();
        assert!(
            matches!(c.command, Command::Find { ref pattern, workspace: Some(_), .. } if pattern == "*.PDF")
        );
        let c = Cli::try_parse_from([
            "cloison",
            "run",
            "--listen",
            "/ip4/127.0.0.1/tcp/0",
            "--no-mdns",
        ])
        .unwrap();
        assert!(
            matches!(c.command, Command::Run { ref net } if net.no_mdns && net.listen.len() == 1)
        );
        let c = Cli::try_parse_from([
            "cloison",
            "config",
            "show",
            "--peer",
            "/ip4/127.0.0.1/tcp/1",
            "--json",
            "--log-format",
            "json",
        ])
        .unwrap();
        assert_eq!(c.log_format, Some(LogFormat::Json));
        assert!(
            matches!(c.command, Command::Config(ConfigCommand::Show { ref net, json: true }) if net.peers.len() == 1)
        );
        assert!(Cli::try_parse_from(["cloison", "put", "Reports"]).is_err());
    }
}
