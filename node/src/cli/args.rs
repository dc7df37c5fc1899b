//! Command-line arguments, as plain data (no I/O here, so tests can check parsing alone).

use std::path::PathBuf;

use clap::{Parser, Subcommand};

/// Cloison: zero-trust, zero-knowledge file sharing between the devices of an organization.
#[derive(Debug, Parser)]
#[command(name = "cloison", version, about, propagate_version = true)]
pub struct Cli {
    /// This device's home directory (keys and database).
    #[arg(long, global = true, env = "CLOISON_HOME", value_name = "DIR")]
    pub home: Option<PathBuf>,
    /// More logging on stderr (-v info, -vv debug); RUST_LOG overrides.
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,
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
}
