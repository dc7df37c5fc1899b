//! The messages of the UI: [`UiEvent`] comes from the control worker (through a tuirealm port),
//! [`Msg`] goes from the screens to the loop, [`Tab`] names the screens.
//!
//! Invariant: an action's [`Reply`] carries the request it answers, so a screen can match a
//! reply to what it asked for (e.g. the members of the workspace still selected).

use cloison_node::control::{Request, Response};
use cloison_node::node::Progress;

/// Who asked for a control call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Origin {
    /// The periodic refresh, or a screen fetching what it shows.
    Poll,
    /// The user, with a label for the event log.
    Action(String),
}

/// The answer to one control call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    /// Who asked.
    pub origin: Origin,
    /// What was asked.
    pub request: Request,
    /// The answer, or what went wrong.
    pub result: Result<Response, String>,
}

impl Reply {
    /// The response, if the call succeeded.
    pub fn ok(&self) -> Option<&Response> {
        self.result.as_ref().ok()
    }

    /// The label of an action.
    pub fn action(&self) -> Option<&str> {
        match &self.origin {
            Origin::Action(l) => Some(l),
            Origin::Poll => None,
        }
    }
}

/// What the worker tells the UI.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UiEvent {
    /// A call finished.
    Reply(Box<Reply>),
    /// No daemon answers; the text says how to start one.
    Offline(String),
    /// An action was sent (its label).
    Started(String),
    /// A long action progressed.
    Progress(Progress),
}

impl UiEvent {
    /// One event of each kind, for subscriptions by discriminant.
    pub fn kinds() -> Vec<UiEvent> {
        vec![
            UiEvent::Reply(Box::new(Reply {
                origin: Origin::Poll,
                request: Request::Status,
                result: Err(String::new()),
            })),
            UiEvent::Offline(String::new()),
            UiEvent::Started(String::new()),
            UiEvent::Progress(Progress::default()),
        ]
    }
}

/// What a screen asks the loop to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Msg {
    /// Leave.
    Quit,
    /// Show a screen.
    Goto(Tab),
    /// Next screen.
    Next,
    /// Previous screen.
    Prev,
    /// Run an action (logged) on the daemon.
    Call {
        /// For the event log.
        label: String,
        /// The request.
        request: Request,
    },
    /// Fetch something to show, without logging it.
    Fetch(Request),
    /// Refresh the live data now.
    Refresh,
    /// Something changed on screen.
    Redraw,
}

/// The screens, in tab order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Tab {
    /// Organization overview.
    Org,
    /// Users and devices.
    Users,
    /// Workspaces and members.
    Workspaces,
    /// Peers and sync status.
    Peers,
    /// Bundles.
    Bundles,
    /// Event log.
    Log,
    /// Invitations.
    Invitations,
}

impl Tab {
    /// All screens, in order.
    pub const ALL: [Tab; 7] = [
        Tab::Org,
        Tab::Users,
        Tab::Workspaces,
        Tab::Peers,
        Tab::Bundles,
        Tab::Log,
        Tab::Invitations,
    ];

    /// The title in the tab bar.
    pub fn title(self) -> &'static str {
        match self {
            Tab::Org => "Org",
            Tab::Users => "Users",
            Tab::Workspaces => "Workspaces",
            Tab::Peers => "Peers",
            Tab::Bundles => "Bundles",
            Tab::Log => "Log",
            Tab::Invitations => "Invites",
        }
    }

    /// Position, from 0.
    pub fn index(self) -> usize {
        Tab::ALL.iter().position(|t| *t == self).unwrap_or(0)
    }

    /// The screen at `i` (wrapping).
    pub fn at(i: usize) -> Tab {
        Tab::ALL[i % Tab::ALL.len()]
    }

    /// The next screen.
    pub fn next(self) -> Tab {
        Tab::at(self.index() + 1)
    }

    /// The previous screen.
    pub fn prev(self) -> Tab {
        Tab::at(self.index() + Tab::ALL.len() - 1)
    }
}

/// Component ids of the application.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Id {
    /// Tab bar and daemon state.
    Header,
    /// A screen.
    Screen(Tab),
}
