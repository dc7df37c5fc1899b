//! The enrolment commands of `cloison`: `invite`, `invitations`, `greet` (admin side, through
//! the daemon's control API) and `join` (the new device), and their output.
//!
//! Invariant: codes are printed on lines of their own and read from stdin, so a test (or a
//! script) can drive both sides through pipes; nothing else is read from stdin.

use std::io::BufRead;
use std::path::Path;

use anyhow::{Context, Result, anyhow, bail};
use cloison_node::control::client::Client;
use cloison_node::control::enrol::{GreetStep, Invitee};
use cloison_node::control::{Request, Response};
use cloison_node::enroll::{self, Claim, Claimer, EnrollError, GreetMsg, NewUser, Session, Token};
use cloison_node::net::Multiaddr;
use cloison_node::net::greet::GreetNet;
use cloison_node::node::Node;
use cloison_node::trust::{DeviceKeys, UserSecret};

use super::args::InviteCommand;
use super::run::{kdf_params, passphrase};
use cloison_node::control::enrol::InvitationInfo;

/// One invitation, as created.
pub fn invitation_text(i: &InvitationInfo) -> String {
    let mut t = format!(
        "invitation {} ({}{}), expires at {} (unix ms)\n",
        i.id,
        i.kind,
        i.email
            .as_ref()
            .map(|e| format!(" {e}, {}", i.profile.as_deref().unwrap_or("standard")))
            .unwrap_or_default(),
        i.expires_ms
    );
    if let Some(tok) = &i.token {
        t += "token (give it to the invitee; they run `cloison join TOKEN ...`):\n";
        t += tok;
        t += "\n";
        if Token::decode(tok).is_ok_and(|t| t.addrs.is_empty()) {
            t += "note: no daemon was running, so the token names no address: use it air-gapped \
                  (`cloison join TOKEN --offline --out FILE`), or start `cloison run` and invite again\n";
        }
    }
    t
}

/// The invitations table.
pub fn invitations_table(is: &[InvitationInfo]) -> String {
    let mut out = format!(
        "{:<12}  {:<6}  {:<28}  {:<9}  {:<9}  {:<16}  {}\n",
        "ID", "KIND", "E-MAIL", "PROFILE", "STATE", "BY", "EXPIRES (unix ms)"
    );
    for i in is {
        out += &format!(
            "{:<12}  {:<6}  {:<28}  {:<9}  {:<9}  {:<16}  {}\n",
            &i.id[..12.min(i.id.len())],
            i.kind,
            i.email.as_deref().unwrap_or("-"),
            i.profile.as_deref().unwrap_or("-"),
            i.state,
            i.recorded_by_user.as_deref().unwrap_or("-"),
            i.expires_ms
        );
    }
    out
}

/// The request of `cloison invite ...`.
pub fn invite_request(c: InviteCommand) -> (Request, bool) {
    match c {
        InviteCommand::User {
            email,
            profile,
            ttl,
            json,
        } => (
            Request::InviteCreate {
                invitee: Invitee::User { email, profile },
                ttl_s: ttl,
            },
            json,
        ),
        InviteCommand::Device { ttl, json } => (
            Request::InviteCreate {
                invitee: Invitee::Device,
                ttl_s: ttl,
            },
            json,
        ),
        InviteCommand::Cancel { id } => (Request::InviteCancel { id }, false),
    }
}

fn daemon_call(home: &Path, req: Request) -> Result<GreetStep> {
    let client = Client::connect(home)?
        .ok_or_else(|| anyhow!("greeting needs this device's daemon: start `cloison run`"))?;
    match client.call(req, &mut |_| {})? {
        Response::Greeting(s) => Ok(s),
        other => bail!("unexpected answer from the daemon: {other:?}"),
    }
}

fn read_code(prompt: &str) -> Result<String> {
    read_line(prompt)?.ok_or_else(|| anyhow!("no code given (stdin closed)"))
}

/// Prints `prompt` and reads one line from stdin (trimmed); `None` once stdin is closed.
fn read_line(prompt: &str) -> Result<Option<String>> {
    println!("{prompt}");
    let mut line = String::new();
    let n = std::io::stdin()
        .lock()
        .read_line(&mut line)
        .context("cannot read the code from stdin")?;
    Ok((n > 0).then(|| line.trim().to_owned()))
}

/// `cloison greet ID`: the admin's side, step by step through the daemon.
pub fn greet(home: &Path, id: &str, wait_s: u64) -> Result<()> {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(wait_s);
    println!("waiting for the claimer of invitation {id}...");
    let step = loop {
        let s = daemon_call(
            home,
            Request::GreetWait {
                id: id.to_owned(),
                timeout_s: 10,
            },
        )?;
        match s.state.as_str() {
            "waiting" if std::time::Instant::now() < deadline => continue,
            "waiting" => bail!("no claimer came within {wait_s} s"),
            _ => break s,
        }
    };
    if step.state == "aborted" {
        bail!(
            "greeting aborted: {}",
            step.reason.unwrap_or_else(|| "unknown reason".into())
        );
    }
    if let Some(c) = &step.claimer {
        if c.name.is_empty() {
            println!("claimer: a new device {:?}", c.device_label);
        } else {
            println!("claimer: {} with device {:?}", c.name, c.device_label);
        }
    }
    let code = step
        .greeter_code
        .clone()
        .ok_or_else(|| anyhow!("the daemon gave no code"))?;
    println!("Read this code to the claimer:");
    println!("{code}");
    let theirs = read_code("Type the claimer's code:")?;
    let mut s = daemon_call(
        home,
        Request::GreetConfirm {
            id: id.to_owned(),
            code: theirs,
            timeout_s: 30,
        },
    )?;
    while s.state == "confirmed" && std::time::Instant::now() < deadline {
        s = daemon_call(
            home,
            Request::GreetWait {
                id: id.to_owned(),
                timeout_s: 10,
            },
        )?;
    }
    match s.state.as_str() {
        "done" => {
            println!(
                "enrolled: user {}, device {}",
                s.user.unwrap_or_default(),
                s.device.unwrap_or_default()
            );
            Ok(())
        }
        "aborted" => bail!(
            "greeting aborted: {}",
            s.reason.unwrap_or_else(|| "unknown reason".into())
        ),
        other => bail!("greeting did not finish (state {other})"),
    }
}

fn seed() -> [u8; 32] {
    let mut s = [0u8; 32];
    rand::Rng::fill_bytes(&mut rand::rng(), &mut s);
    s
}

fn open_reply(session: &mut Session, reply: &[u8]) -> Result<GreetMsg> {
    match session.open(reply) {
        Ok(m) => Ok(m),
        Err(EnrollError::Refused(s)) => bail!("{}", s.message()),
        Err(e) => bail!("the greeter's answer is not valid: {e}"),
    }
}

/// `cloison join TOKEN --user NAME --device LABEL`: the new device's side.
pub fn join(home: &Path, token: &str, user: Option<&str>, label: &str) -> Result<()> {
    let token = Token::decode(token)?;
    if home.join("keys.cloison").exists() || home.join("store.redb").exists() {
        bail!(
            "{} already holds a device; use another --home",
            home.display()
        );
    }
    let (device, user_secret, claim) = new_claim(&token, user, label)?;
    let pass = passphrase(true)?;
    let addrs: Vec<Multiaddr> = token.addrs.iter().filter_map(|a| a.parse().ok()).collect();
    if addrs.is_empty() {
        bail!("the token names no address to reach the greeter");
    }
    let rt = tokio::runtime::Runtime::new()?;
    let _guard = rt.enter();
    let (net, _events) = GreetNet::start(&device, Vec::new())?;
    let call = |bytes: Vec<u8>| -> Result<Vec<u8>> {
        rt.block_on(net.call(token.greeter, addrs.clone(), bytes))
            .map_err(|e| anyhow!("cannot reach the greeter: {e}"))
    };
    let (claimer, hello) = Claimer::start(&token, &device, seed())?;
    let reply = call(hello)?;
    let (mut session, last) = match claimer.finish(&reply, &claim) {
        Ok(x) => x,
        Err(EnrollError::Refused(s)) => bail!("{}", s.message()),
        Err(e) => bail!("handshake with the greeter failed: {e}"),
    };
    let reply = call(last)?;
    match open_reply(&mut session, &reply)? {
        GreetMsg::Ready => {}
        GreetMsg::Abort { reason } => bail!("the greeter aborted: {reason}"),
        _ => bail!("unexpected message from the greeter"),
    }
    let codes = session.codes().clone();
    println!("Read this code to the admin:");
    println!("{}", codes.claimer);
    let typed = read_code("Type the admin's code:")?;
    if !enroll::code_matches(&typed, &codes.greeter) {
        let abort = session.seal(&GreetMsg::Abort {
            reason: "the claimer typed a wrong code".into(),
        })?;
        let _ = call(abort);
        bail!("wrong code: the enrolment is aborted and the invitation burned");
    }
    let reply = call(session.seal(&GreetMsg::Confirm)?)?;
    let welcome = match open_reply(&mut session, &reply)? {
        GreetMsg::Welcome(w) => w,
        GreetMsg::Abort { reason } => bail!("the greeter aborted: {reason}"),
        _ => bail!("unexpected message from the greeter"),
    };
    let mut node = Node::join(
        home,
        pass.as_bytes(),
        kdf_params(),
        &token,
        &device,
        user_secret,
        &welcome,
    )?;
    let info = node.org_info();
    drop(node);
    let done = call(session.seal(&GreetMsg::Stored)?).and_then(|r| open_reply(&mut session, &r));
    if !matches!(done, Ok(GreetMsg::Done)) {
        for f in ["keys.cloison", "store.redb"] {
            let _ = std::fs::remove_file(home.join(f));
        }
        let _ = std::fs::remove_dir_all(home.join("blocks"));
        let why = match done {
            Ok(m) => format!("{m:?}"),
            Err(e) => e.to_string(),
        };
        bail!("the greeter did not confirm the enrolment ({why}); nothing was kept");
    }
    rt.block_on(net.shutdown());
    println!(
        "joined organization {:?} ({}) as device {}",
        info.name, info.id, info.this_device
    );
    println!("home: {}", home.display());
    Ok(())
}

fn abs(p: &Path) -> Result<std::path::PathBuf> {
    std::path::absolute(p).with_context(|| format!("cannot resolve {}", p.display()))
}

fn greeting(home: &Path, req: Request) -> Result<GreetStep> {
    match super::run::call(home, req, &mut |_| {})? {
        Response::Greeting(s) => Ok(s),
        other => bail!("unexpected answer: {other:?}"),
    }
}

/// `cloison greet ID --request FILE --out FILE`: the admin's side of an air-gapped enrolment.
/// The daemon (or the store) opens the request and draws the challenge; this process carries
/// it to the second step.
pub fn greet_offline(home: &Path, id: &str, request: &Path, out: &Path) -> Result<()> {
    let request = abs(request)?;
    let step = greeting(
        home,
        Request::GreetOfflineOpen {
            id: id.to_owned(),
            request: request.clone(),
        },
    )?;
    if let Some(c) = &step.claimer {
        if c.name.is_empty() {
            println!("claimer: a new device {:?}", c.device_label);
        } else {
            println!("claimer: {} with device {:?}", c.name, c.device_label);
        }
    }
    let challenge = step
        .greeter_code
        .ok_or_else(|| anyhow!("the daemon gave no code"))?;
    println!("Read this code to the claimer (they type it, then read you theirs):");
    println!("{challenge}");
    let code = read_code("Type the claimer's code:")?;
    let s = greeting(
        home,
        Request::GreetOfflineAnswer {
            id: id.to_owned(),
            request,
            challenge,
            code,
            out: abs(out)?,
        },
    )?;
    match (s.state.as_str(), s.greeter_code) {
        ("done", Some(code)) => {
            println!("answer written to {}", out.display());
            println!("Give it to the claimer with this code:");
            println!("{code}");
            println!(
                "enrolled: user {}, device {}",
                s.user.unwrap_or_default(),
                s.device.unwrap_or_default()
            );
            Ok(())
        }
        _ => bail!(
            "greeting aborted: {}",
            s.reason.unwrap_or_else(|| "unknown reason".into())
        ),
    }
}

/// `cloison join TOKEN --offline --out FILE`: writes the request, keeps the pending state, then
/// waits for the admin's code (as `cloison join --code` does).
pub fn join_offline(
    home: &Path,
    token: &str,
    user: Option<&str>,
    label: &str,
    out: Option<&Path>,
) -> Result<()> {
    use cloison_node::enroll::OfflineClaimer;
    use cloison_node::node::enrol_offline::PendingJoin;
    let out = out.ok_or_else(|| anyhow!("--offline needs --out FILE"))?;
    let token = Token::decode(token)?;
    let (device, user_secret, claim) = new_claim(&token, user, label)?;
    let seed = seed();
    let (claimer, request) = OfflineClaimer::request(&token, &claim, seed)?;
    let pass = passphrase(true)?;
    PendingJoin {
        token,
        device,
        user_secret,
        claim,
        seed,
    }
    .save(home, pass.as_bytes(), kdf_params())?;
    cloison_node::keystore::write_atomic(out, &request)
        .with_context(|| format!("cannot write {}", out.display()))?;
    println!(
        "request written to {}; carry it to the admin",
        out.display()
    );
    say_code(&claimer)
}

/// `cloison join --code`: the claimer's code for the admin's challenge (again, or after
/// `join --offline` was left before the admin called).
pub fn join_code(home: &Path) -> Result<()> {
    use cloison_node::enroll::OfflineClaimer;
    use cloison_node::node::enrol_offline::PendingJoin;
    let pass = passphrase(false)?;
    let p = PendingJoin::load(home, pass.as_bytes())?;
    let (claimer, _) = OfflineClaimer::request(&p.token, &p.claim, p.seed)?;
    say_code(&claimer)
}

/// Reads the admin's challenge from stdin and prints the claimer's code for it.
fn say_code(claimer: &cloison_node::enroll::OfflineClaimer) -> Result<()> {
    let Some(line) = read_line("When the admin reads you their code, type it here:")? else {
        println!("no code typed: run `cloison join --code` when the admin reads it to you");
        return Ok(());
    };
    let challenge = enroll::Challenge::parse(&line).map_err(|_| {
        anyhow!("the admin's code has six digits: run `cloison join --code` to type it again")
    })?;
    println!("Read this code to the admin:");
    println!("{}", claimer.code(&challenge));
    println!("then run `cloison join --answer FILE` with the answer they give you");
    Ok(())
}

/// `cloison join --answer FILE`: finishes an air-gapped enrolment.
pub fn join_answer(home: &Path, answer: &Path) -> Result<()> {
    use cloison_node::enroll::OfflineClaimer;
    use cloison_node::node::enrol_offline::PendingJoin;
    let pass = passphrase(false)?;
    let p = PendingJoin::load(home, pass.as_bytes())?;
    let bytes =
        std::fs::read(answer).with_context(|| format!("cannot read {}", answer.display()))?;
    let (claimer, _) = OfflineClaimer::request(&p.token, &p.claim, p.seed)?;
    let (greeter_code, msg) = claimer
        .read_answer(&bytes)
        .map_err(|e| anyhow!("the answer does not open: {e}"))?;
    let typed = read_code("Type the code the admin gave with the answer:")?;
    if !enroll::code_matches(&typed, &greeter_code) {
        PendingJoin::remove(home);
        bail!("wrong code: the answer is refused and nothing was stored");
    }
    let welcome = match msg {
        GreetMsg::Welcome(w) => w,
        GreetMsg::Abort { reason } => {
            PendingJoin::remove(home);
            bail!("the greeter aborted: {reason}")
        }
        _ => bail!("unexpected message in the answer"),
    };
    let mut node = Node::join(
        home,
        pass.as_bytes(),
        kdf_params(),
        &p.token,
        &p.device,
        p.user_secret.clone(),
        &welcome,
    )?;
    PendingJoin::remove(home);
    let info = node.org_info();
    println!(
        "joined organization {:?} ({}) as device {}",
        info.name, info.id, info.this_device
    );
    Ok(())
}

/// A new device's keys, its new user's key (for a user invitation: `user` is the name), and the
/// claim that carries their public halves to the greeter.
fn new_claim(
    token: &Token,
    user: Option<&str>,
    label: &str,
) -> Result<(DeviceKeys, Option<UserSecret>, Claim)> {
    let mut rng = rand::rng();
    let device = DeviceKeys::generate(&mut rng);
    let user_secret = user.map(|_| UserSecret::generate(0, &mut rng));
    let claim = Claim::new(
        &device,
        &token.org,
        &token.greeter,
        label.to_owned(),
        user.map(|name| NewUser {
            name: name.to_owned(),
            user_key: user_secret.as_ref().map(|s| s.public()).unwrap_or_default(),
        }),
    );
    // Said here, before anything is sent: the greeter would only see a malformed claim.
    claim.check()?;
    Ok((device, user_secret, claim))
}
