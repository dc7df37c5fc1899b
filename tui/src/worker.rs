//! Control calls off the UI thread.
//!
//! A poller thread asks the daemon for the live data ([`POLLED`]) every [`POLL_EVERY`], or at
//! once when poked; each action runs on its own short-lived thread. Results go back as
//! [`UiEvent`]s on a channel that the UI drains through a non-blocking tuirealm port
//! ([`ChannelPort`]).
//!
//! Invariants: nothing here touches the terminal; the poller ends when the UI drops its end
//! of the channel; "no daemon" is reported as [`UiEvent::Offline`] with how to start one,
//! never as a crash.

use std::path::{Path, PathBuf};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender};
use std::time::Duration;

use cloison_node::control::client::Client;
use cloison_node::control::{Request, Response, SOCKET, shown};
use tuirealm::event::Event;
use tuirealm::listener::{Poll, PortResult};

use crate::event::{Origin, Reply, UiEvent};

/// How often the live data is refreshed.
pub const POLL_EVERY: Duration = Duration::from_secs(1);

/// What the poller asks for on each round.
pub const POLLED: [Request; 7] = [
    Request::OrgShow,
    Request::Status,
    Request::Peers,
    Request::Users,
    Request::Devices,
    Request::WorkspaceList,
    Request::Invitations,
];

/// The UI's handle on the worker.
pub struct Worker {
    home: PathBuf,
    events: Sender<UiEvent>,
    poke: Sender<()>,
}

impl Worker {
    /// Starts the poller for the daemon of `home`; events go to `events`.
    pub fn start(home: PathBuf, events: Sender<UiEvent>) -> Worker {
        let (poke, poked) = mpsc::channel();
        let (h, tx) = (home.clone(), events.clone());
        std::thread::spawn(move || poll_loop(&h, &tx, &poked));
        Worker { home, events, poke }
    }

    /// Runs a user action; its start, progress and reply are reported, then the live data is
    /// refreshed.
    pub fn call(&self, label: String, request: Request) {
        let (home, tx, poke) = (self.home.clone(), self.events.clone(), self.poke.clone());
        std::thread::spawn(move || {
            let _ = tx.send(UiEvent::Started(label.clone()));
            let progress_tx = tx.clone();
            let result = call_once(&home, request.clone(), &mut |p| {
                let _ = progress_tx.send(UiEvent::Progress(p));
            });
            let result = match result {
                Ok(Some(r)) => Ok(r),
                Ok(None) => Err(offline_text(&home)),
                Err(e) => Err(e),
            };
            let _ = tx.send(UiEvent::Reply(Box::new(Reply {
                origin: Origin::Action(label),
                request,
                result,
            })));
            let _ = poke.send(());
        });
    }

    /// Fetches something a screen shows (not logged as an action).
    pub fn fetch(&self, request: Request) {
        let (home, tx) = (self.home.clone(), self.events.clone());
        std::thread::spawn(move || {
            if let Some(ev) = poll_one(&home, request) {
                let _ = tx.send(ev);
            }
        });
    }

    /// Refreshes the live data now.
    pub fn poke(&self) {
        let _ = self.poke.send(());
    }
}

/// The text shown when no daemon answers (two lines: what, and the command to run).
pub fn offline_text(home: &Path) -> String {
    format!(
        "No daemon answers on {}.\nStart one with:  cloison run --home {}",
        home.join(SOCKET).display(),
        home.display()
    )
}

/// One call: `Ok(None)` when no daemon listens.
fn call_once(
    home: &Path,
    request: Request,
    progress: &mut dyn FnMut(cloison_node::node::Progress),
) -> Result<Option<Response>, String> {
    let client = match Client::connect(home) {
        Ok(Some(c)) => c,
        Ok(None) => return Ok(None),
        Err(e) => return Err(format!("cannot reach the daemon: {e}")),
    };
    // Names are other members' choices: shown escaped (`control::shown`), on every screen.
    let r = client.call(request, progress).map_err(|e| e.to_string())?;
    shown::response(&r).map(Some).map_err(|e| e.to_string())
}

/// One polled call, as the event to send.
fn poll_one(home: &Path, request: Request) -> Option<UiEvent> {
    match call_once(home, request.clone(), &mut |_| {}) {
        Ok(None) => Some(UiEvent::Offline(offline_text(home))),
        Ok(Some(r)) => Some(UiEvent::Reply(Box::new(Reply {
            origin: Origin::Poll,
            request,
            result: Ok(r),
        }))),
        Err(e) => Some(UiEvent::Reply(Box::new(Reply {
            origin: Origin::Poll,
            request,
            result: Err(e),
        }))),
    }
}

fn poll_loop(home: &Path, tx: &Sender<UiEvent>, poked: &Receiver<()>) {
    loop {
        for request in POLLED {
            let Some(ev) = poll_one(home, request) else {
                continue;
            };
            let offline = matches!(ev, UiEvent::Offline(_));
            if tx.send(ev).is_err() {
                return;
            }
            if offline {
                break;
            }
        }
        match poked.recv_timeout(POLL_EVERY) {
            Ok(()) | Err(RecvTimeoutError::Timeout) => while poked.try_recv().is_ok() {},
            Err(RecvTimeoutError::Disconnected) => return,
        }
    }
}

/// The tuirealm port that hands the worker's events to the application, never blocking.
pub struct ChannelPort(pub Receiver<UiEvent>);

impl Poll<UiEvent> for ChannelPort {
    fn poll(&mut self) -> PortResult<Option<Event<UiEvent>>> {
        Ok(self.0.try_recv().ok().map(Event::User))
    }
}
