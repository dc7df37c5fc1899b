//! Runs a parsed command: through the running daemon's control socket when there is one, else on
//! the store directly (asking for the passphrase); `init`, `run` and `demo` are handled here.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use cloison_node::control::client::Client;
use cloison_node::control::{Request, Response, exec};
use cloison_node::keystore::KdfParams;
use cloison_node::node::{InitParams, Node, Progress};
use zeroize::Zeroizing;

use super::args::{
    BundleCommand, Cli, Command, ConfigCommand, NetFlags, OrgCommand, RelayCommand, RevokeCommand,
    WorkspaceCommand,
};
use super::{config, daemon, output, progress};

/// Runs one command.
pub fn run(cli: Cli) -> Result<()> {
    if let Command::Doc(doc) = cli.command {
        use clap::CommandFactory;
        return Ok(cloison_node::manual::run(
            doc,
            Cli::command(),
            &mut std::io::stdout().lock(),
        )?);
    }
    let home = resolve_home(cli.home)?;
    let env = |name: &str| std::env::var(name).ok();
    let flags = |net: Option<NetFlags>| {
        let net = net.unwrap_or_default();
        config::Flags {
            config: cli.config.clone(),
            listen: net.listen,
            peers: net.peers,
            no_mdns: net.no_mdns,
            log_format: cli.log_format,
            verbose: cli.verbose,
            max_send_kibps: net.max_send_kibps,
            max_recv_kibps: net.max_recv_kibps,
        }
    };
    // The daemon's commands read the config file; the others only take their logging from
    // the flags and the environment.
    let daemon_config = |net: NetFlags| -> Result<config::Config> {
        let c = config::load(&home, &flags(Some(net)), &env)?;
        init_logs(&c);
        Ok(c)
    };
    let request = match cli.command {
        Command::Run { net } => return daemon::run(&home, &daemon_config(net)?),
        Command::Config(ConfigCommand::Show { net, json }) => {
            let c = config::load(&home, &flags(Some(net)), &env)?;
            print!("{}", config::render(&c, json)?);
            return Ok(());
        }
        Command::Config(ConfigCommand::Path) => {
            println!("{}", config::path(&home, &flags(None), &env).0.display());
            return Ok(());
        }
        Command::Sync {
            ws: Some(ws),
            dir: Some(dir),
            foreground: true,
            listen,
            peers,
            no_mdns,
            ..
        } => {
            let c = daemon_config(NetFlags {
                listen,
                peers,
                no_mdns,
                ..NetFlags::default()
            })?;
            return daemon::foreground_mirror(&home, &ws, &dir, &c);
        }
        other => {
            init_logs(&config::without_file(&flags(None), &env));
            other
        }
    };
    let request = match request {
        Command::Init {
            org,
            user,
            email,
            device,
        } => return init(&home, &org, &user, &email, &device),
        Command::Demo { keep } => return super::demo::run(keep),
        Command::Greet {
            id,
            wait,
            request,
            out,
        } => {
            return match (request, out) {
                (Some(r), Some(o)) => super::enrol::greet_offline(&home, &id, &r, &o),
                _ => super::enrol::greet(&home, &id, wait),
            };
        }
        Command::Join {
            token,
            user,
            device,
            offline,
            out,
            answer,
            code,
        } => {
            return match (token, device, answer) {
                _ if code => super::enrol::join_code(&home),
                (_, _, Some(a)) => super::enrol::join_answer(&home, &a),
                (Some(t), Some(d), None) if offline => {
                    super::enrol::join_offline(&home, &t, user.as_deref(), &d, out.as_deref())
                }
                (Some(t), Some(d), None) => super::enrol::join(&home, &t, user.as_deref(), &d),
                _ => bail!("give a token and --device, or --code, or --answer FILE"),
            };
        }
        other => other,
    };
    let (req, json) = to_request(request)?;
    let quiet = json;
    let mut bar = progress::Bar::new(quiet);
    let response = call(&home, req.clone(), &mut |p| bar.update(p))?;
    bar.finish();
    output::print(&req, &response, json)
}

/// Installs the log subscriber the configuration asks for.
fn init_logs(c: &config::Config) {
    cloison_node::logs::init_with(&c.log.value, c.log_format.value);
}

fn init(home: &Path, org: &str, user: &str, email: &str, device: &str) -> Result<()> {
    let pass = passphrase(true)?;
    let mut node = Node::init(
        home,
        pass.as_bytes(),
        kdf_params(),
        &InitParams {
            org_name: org,
            user_name: user,
            email,
            device_label: device,
        },
    )?;
    let info = node.org_info();
    println!("created organization {:?} ({})", info.name, info.id);
    println!(
        "you are {user} <{email}>, admin, on device {device:?} ({})",
        info.this_device
    );
    println!("home: {}", home.display());
    Ok(())
}

/// The request a command sends, and whether it wants JSON.
fn to_request(c: Command) -> Result<(Request, bool)> {
    let abs = |p: PathBuf| -> Result<PathBuf> {
        std::path::absolute(&p).with_context(|| format!("cannot resolve {}", p.display()))
    };
    Ok(match c {
        Command::Org {
            command: OrgCommand::Show { json },
        } => (Request::OrgShow, json),
        Command::Users { json } => (Request::Users, json),
        Command::Devices { json } => (Request::Devices, json),
        Command::Revoke {
            what: RevokeCommand::Device { id },
        } => (Request::RevokeDevice { query: id }, false),
        Command::Revoke {
            what: RevokeCommand::User { id },
        } => (Request::RevokeUser { query: id }, false),
        Command::Stop => (Request::Shutdown, false),
        Command::Workspace(w) => match w {
            WorkspaceCommand::Create { name, json } => (Request::WorkspaceCreate { name }, json),
            WorkspaceCommand::List { json } => (Request::WorkspaceList, json),
            WorkspaceCommand::Rename { ws, name } => (Request::WorkspaceRename { ws, name }, false),
            WorkspaceCommand::Share { ws, user, role } => {
                (Request::WorkspaceShare { ws, user, role }, false)
            }
            WorkspaceCommand::Unshare { ws, user } => {
                (Request::WorkspaceUnshare { ws, user }, false)
            }
            WorkspaceCommand::Members { ws, json } => (Request::WorkspaceMembers { ws }, json),
        },
        Command::Put {
            ws,
            local,
            remote,
            json,
        } => (
            Request::Put {
                ws,
                local: abs(local)?,
                remote,
            },
            json,
        ),
        Command::Get {
            ws,
            remote,
            local,
            wait,
            json,
        } => (
            Request::Get {
                ws,
                remote,
                local: abs(local)?,
                wait_s: wait,
            },
            json,
        ),
        Command::Ls {
            ws,
            path,
            recursive,
            json,
        } => (
            Request::Ls {
                ws,
                path,
                recursive,
            },
            json,
        ),
        Command::Find {
            pattern,
            workspace,
            json,
        } => (
            Request::Find {
                pattern,
                ws: workspace,
            },
            json,
        ),
        Command::Mv { ws, from, to } => (Request::Mv { ws, from, to }, false),
        Command::Rm { ws, path } => (Request::Rm { ws, path }, false),
        Command::History { ws, path, json } => (Request::History { ws, path }, json),
        Command::Restore { ws, path, version } => (Request::Restore { ws, path, version }, false),
        Command::Status { json } => (Request::Status, json),
        Command::Peers { json } => (Request::Peers, json),
        Command::Connect { addr } => (Request::Connect { addr }, false),
        Command::Bundle(b) => match b {
            BundleCommand::Export {
                out,
                workspaces,
                receipt,
                json,
            } => (
                Request::BundleExport {
                    out: abs(out)?,
                    workspaces,
                    receipt: receipt.map(abs).transpose()?,
                },
                json,
            ),
            BundleCommand::Import { file, json } => {
                (Request::BundleImport { file: abs(file)? }, json)
            }
            BundleCommand::Receipt { out } => (Request::BundleReceipt { out: abs(out)? }, false),
            BundleCommand::Inspect { file, json } => {
                (Request::BundleInspect { file: abs(file)? }, json)
            }
        },
        Command::Invite { what } => super::enrol::invite_request(what),
        Command::Invitations { json } => (Request::Invitations, json),
        Command::Relay(r) => match r {
            RelayCommand::Add { addr } => (Request::RelayAdd { addr }, false),
            RelayCommand::Revoke { relay } => (Request::RelayRevoke { relay }, false),
            RelayCommand::List { json } => (Request::RelayList, json),
        },
        Command::Sync {
            list: true, json, ..
        } => (Request::SyncList, json),
        Command::Sync { stop: Some(ws), .. } => (Request::SyncStop { ws }, false),
        Command::Sync {
            ws: Some(ws),
            dir: Some(dir),
            ..
        } => (Request::SyncAdd { ws, dir: abs(dir)? }, false),
        Command::Sync { .. } => bail!("sync needs WS and DIR, --list or --stop WS"),
        Command::Init { .. }
        | Command::Run { .. }
        | Command::Config(_)
        | Command::Demo { .. }
        | Command::Greet { .. }
        | Command::Join { .. }
        | Command::Doc(_) => {
            bail!("not a request")
        }
    })
}

/// Sends a request to the running daemon, or runs it on the store when no daemon runs.
pub(super) fn call(
    home: &Path,
    req: Request,
    progress: &mut dyn FnMut(Progress),
) -> Result<Response> {
    if let Some(client) = Client::connect(home)? {
        return Ok(client.call(req, progress)?);
    }
    let mut node = open(home)?;
    // Without a daemon nothing brings missing blocks: waiting would only delay the error.
    let mut req = req;
    if let Request::Get { wait_s, .. } = &mut req {
        *wait_s = 0;
    }
    Ok(exec::execute(&mut node, req, progress, &mut |_| {})?)
}

fn resolve_home(home: Option<PathBuf>) -> Result<PathBuf> {
    if let Some(h) = home {
        return Ok(h);
    }
    let dirs = directories::ProjectDirs::from("", "", "cloison")
        .context("cannot find a home directory: pass --home or set CLOISON_HOME")?;
    Ok(dirs.data_dir().to_owned())
}

pub(super) fn open(home: &Path) -> Result<Node> {
    let pass = passphrase(false)?;
    Ok(Node::open(home, pass.as_bytes())?)
}

/// The passphrase: `CLOISON_PASSPHRASE`, or asked on the terminal (twice for a new key file).
pub(super) fn passphrase(new: bool) -> Result<Zeroizing<String>> {
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

/// Argon2 cost: the default, or the cheap test setting when `CLOISON_TEST_FAST_KDF=1` in a test
/// (debug) build, said loudly. A release build ignores the variable (and says so), so no key file
/// made by a shipped binary is ever weak.
pub(super) fn kdf_params() -> KdfParams {
    let asked = std::env::var("CLOISON_TEST_FAST_KDF").as_deref() == Ok("1");
    let (params, warning) = kdf_params_for(asked, cfg!(debug_assertions));
    if let Some(w) = warning {
        eprintln!("warning: {w}");
    }
    params
}

/// The rule of [`kdf_params`]: whether the weak setting was asked for, whether this is a test
/// build → the parameters and the warning to print.
fn kdf_params_for(asked: bool, test_build: bool) -> (KdfParams, Option<&'static str>) {
    match (asked, test_build) {
        (true, true) => (
            KdfParams::TEST_ONLY,
            Some("CLOISON_TEST_FAST_KDF=1: weak key-file protection, for tests only"),
        ),
        (true, false) => (
            KdfParams::DEFAULT,
            Some(
                "CLOISON_TEST_FAST_KDF is ignored by release builds: the key file gets the full cost",
            ),
        ),
        (false, _) => (KdfParams::DEFAULT, None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_weak_key_file_setting_is_for_test_builds_only() {
        assert_eq!(kdf_params_for(true, true).0, KdfParams::TEST_ONLY);
        let (release, warning) = kdf_params_for(true, false);
        assert_eq!(release, KdfParams::DEFAULT);
        assert!(warning.is_some_and(|w| w.contains("ignored")));
        assert_eq!(kdf_params_for(false, true), (KdfParams::DEFAULT, None));
        assert_eq!(kdf_params_for(false, false), (KdfParams::DEFAULT, None));
    }
}
