//! Runs a parsed command: resolves the home, asks for the passphrase, calls the node API.

use std::path::PathBuf;

use anyhow::{Context, Result, bail};
use cloison_node::keystore::KdfParams;
use cloison_node::node::{InitParams, Node};
use zeroize::Zeroizing;

use super::args::{Cli, Command, OrgCommand, RevokeCommand};
use super::output;

/// Runs one command.
pub fn run(cli: Cli) -> Result<()> {
    let home = resolve_home(cli.home)?;
    match cli.command {
        Command::Init {
            org,
            user,
            email,
            device,
        } => {
            let pass = passphrase(true)?;
            let mut node = Node::init(
                &home,
                pass.as_bytes(),
                kdf_params(),
                &InitParams {
                    org_name: &org,
                    user_name: &user,
                    email: &email,
                    device_label: &device,
                },
            )?;
            let info = node.org_info();
            println!("created organization {:?} ({})", info.name, info.id);
            println!(
                "you are {user} <{email}>, admin, on device {device:?} ({})",
                info.this_device
            );
            println!("home: {}", home.display());
        }
        Command::Org {
            command: OrgCommand::Show { json },
        } => {
            let mut node = open(&home)?;
            let info = node.org_info();
            if json {
                println!("{}", serde_json::to_string_pretty(&info)?);
            } else {
                print!("{}", output::org_text(&info));
            }
        }
        Command::Users { json } => {
            let mut node = open(&home)?;
            let users = node.users();
            if json {
                println!(
                    "{}",
                    serde_json::to_string_pretty(&serde_json::json!({ "users": users }))?
                );
            } else {
                print!("{}", output::users_table(&users));
            }
        }
        Command::Devices { json } => {
            let mut node = open(&home)?;
            let devices = node.devices();
            if json {
                println!(
                    "{}",
                    serde_json::to_string_pretty(&serde_json::json!({ "devices": devices }))?
                );
            } else {
                print!("{}", output::devices_table(&devices));
            }
        }
        Command::Revoke { what } => {
            let mut node = open(&home)?;
            match what {
                RevokeCommand::Device { id } => {
                    let device = node.find_device(&id)?;
                    node.revoke_device(device)?;
                    println!("revoked device {}", device.short());
                }
                RevokeCommand::User { id } => {
                    let user = node.find_user(&id)?;
                    node.revoke_user(user)?;
                    println!("revoked user {} and all their devices", user.short());
                }
            }
        }
    }
    Ok(())
}

fn resolve_home(home: Option<PathBuf>) -> Result<PathBuf> {
    if let Some(h) = home {
        return Ok(h);
    }
    let dirs = directories::ProjectDirs::from("", "", "cloison")
        .context("cannot find a home directory: pass --home or set CLOISON_HOME")?;
    Ok(dirs.data_dir().to_owned())
}

fn open(home: &std::path::Path) -> Result<Node> {
    let pass = passphrase(false)?;
    Ok(Node::open(home, pass.as_bytes())?)
}

/// The passphrase: `CLOISON_PASSPHRASE`, or asked on the terminal (twice for a new key file).
fn passphrase(new: bool) -> Result<Zeroizing<String>> {
    if let Ok(p) = std::env::var("CLOISON_PASSPHRASE") {
        let p = Zeroizing::new(p);
        if p.is_empty() {
            bail!("CLOISON_PASSPHRASE is set but empty; an empty passphrase is not allowed");
        }
        return Ok(p);
    }
    let p = Zeroizing::new(
        rpassword::prompt_password("Passphrase for this device's keys: ")
            .context("cannot read the passphrase (no terminal? set CLOISON_PASSPHRASE)")?,
    );
    if p.is_empty() {
        bail!("an empty passphrase is not allowed");
    }
    if new {
        let again = Zeroizing::new(rpassword::prompt_password("Same passphrase again: ")?);
        if *again != *p {
            bail!("the two passphrases differ");
        }
    }
    Ok(p)
}

/// Argon2 cost: the default, or the cheap test setting when `CLOISON_TEST_FAST_KDF=1` (said
/// loudly, never silently).
fn kdf_params() -> KdfParams {
    if std::env::var("CLOISON_TEST_FAST_KDF").as_deref() == Ok("1") {
        eprintln!("warning: CLOISON_TEST_FAST_KDF=1: weak key-file protection, for tests only");
        KdfParams::TEST_ONLY
    } else {
        KdfParams::DEFAULT
    }
}
