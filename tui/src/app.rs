//! The tuirealm application and its loop.
//!
//! One component per screen plus the header are mounted; the shown screen is the active
//! component (it gets the keys), and every component subscribes to the worker's events, so
//! hidden screens stay current. Messages from the components are handled in [`Ui::update`]:
//! switching tabs, quitting, and handing requests to the [`Worker`].
//!
//! Generic over the terminal adapter: the binary uses crossterm, tests use ratatui's
//! `TestBackend` through `TestTerminalAdapter`.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use tuirealm::application::{Application, ApplicationResult, PollStrategy};
use tuirealm::event::Event;
use tuirealm::listener::{EventListenerCfg, Poll};
use tuirealm::props::{AttrValue, Attribute};
use tuirealm::ratatui::layout::{Constraint, Layout};
use tuirealm::subscription::{EventClause, Sub, SubClause};
use tuirealm::terminal::TerminalAdapter;

use crate::event::{Id, Msg, Tab, UiEvent};
use crate::header::Header;
use crate::screens;
use crate::worker::Worker;

/// Redraw at least this often (clocks, live data).
const REDRAW_EVERY: Duration = Duration::from_millis(500);

/// The running UI.
pub struct Ui<T: TerminalAdapter> {
    /// The tuirealm application.
    pub app: Application<Id, Msg, UiEvent>,
    /// The terminal.
    pub terminal: T,
    /// The screen shown.
    pub tab: Tab,
    /// Where requests go (None in tests that only draw).
    pub worker: Option<Worker>,
    /// Set by `q`.
    pub quit: bool,
}

impl<T: TerminalAdapter> Ui<T> {
    /// Mounts the screens on `terminal`, with `input` as the key source (crossterm or a test
    /// channel) and `port` as the worker's events. `base` resolves relative paths.
    pub fn new(
        terminal: T,
        input: Option<Box<dyn Poll<UiEvent>>>,
        port: Box<dyn Poll<UiEvent>>,
        worker: Option<Worker>,
        base: PathBuf,
    ) -> ApplicationResult<Ui<T>> {
        let mut cfg = EventListenerCfg::default();
        cfg = match input {
            Some(i) => cfg.add_port(i, Duration::from_millis(10), 16),
            None => cfg.crossterm_input_listener(Duration::from_millis(10), 16),
        };
        cfg = cfg.add_port(port, Duration::from_millis(10), 64);
        let mut app = Application::init(cfg);
        let subs = || -> Vec<Sub<Id, UiEvent>> {
            UiEvent::kinds()
                .into_iter()
                .map(|k| Sub::new(EventClause::Discriminant(k), SubClause::Always))
                .collect()
        };
        app.mount(Id::Header, Box::new(Header::default()), subs())?;
        for tab in Tab::ALL {
            let c: Box<dyn tuirealm::component::AppComponent<Msg, UiEvent>> = match tab {
                Tab::Org => Box::new(screens::overview::Overview::default()),
                Tab::Users => Box::new(screens::users::Users::default()),
                Tab::Workspaces => Box::new(screens::workspaces::Workspaces::default()),
                Tab::Peers => Box::new(screens::peers::Peers::default()),
                Tab::Bundles => Box::new(screens::bundles::Bundles::new(base.clone())),
                Tab::Log => Box::new(screens::log::Log::default()),
                Tab::Invitations => Box::new(screens::invitations::Invitations::default()),
            };
            app.mount(Id::Screen(tab), c, subs())?;
        }
        app.active(&Id::Screen(Tab::Org))?;
        Ok(Ui {
            app,
            terminal,
            tab: Tab::Org,
            worker,
            quit: false,
        })
    }

    /// Handles one message.
    pub fn update(&mut self, msg: Msg) -> ApplicationResult<()> {
        match msg {
            Msg::Quit => self.quit = true,
            Msg::Goto(t) => self.show(t)?,
            Msg::Next => self.show(self.tab.next())?,
            Msg::Prev => self.show(self.tab.prev())?,
            Msg::Call { label, request } => {
                if let Some(w) = &self.worker {
                    w.call(label, request);
                }
            }
            Msg::Fetch(request) => {
                if let Some(w) = &self.worker {
                    w.fetch(request);
                }
            }
            Msg::Refresh => {
                if let Some(w) = &self.worker {
                    w.poke();
                }
            }
            Msg::Redraw => {}
        }
        Ok(())
    }

    fn show(&mut self, tab: Tab) -> ApplicationResult<()> {
        self.tab = tab;
        self.app.attr(
            &Id::Header,
            Attribute::Value,
            AttrValue::Number(tab.index() as isize),
        )?;
        self.app.active(&Id::Screen(tab))
    }

    /// Draws the header and the shown screen.
    pub fn draw(&mut self) -> std::io::Result<()> {
        let (app, tab) = (&mut self.app, self.tab);
        self.terminal
            .draw(|f| {
                let [head, body] =
                    Layout::vertical([Constraint::Length(2), Constraint::Min(3)]).areas(f.area());
                app.view(&Id::Header, f, head);
                app.view(&Id::Screen(tab), f, body);
            })
            .map(|_| ())
            .map_err(|e| std::io::Error::other(e.to_string()))
    }

    /// Polls one event (waiting up to `wait`), handles the messages, and redraws if anything
    /// happened or `force`. Returns whether it drew. One event at a time, so that keys typed
    /// after a tab switch reach the new screen.
    pub fn step(&mut self, wait: Duration, force: bool) -> anyhow::Result<bool> {
        let msgs = self.app.tick(PollStrategy::UpTo(1, wait))?;
        let any = !msgs.is_empty();
        for m in msgs {
            self.update(m)?;
        }
        if any || force {
            self.draw()?;
        }
        Ok(any || force)
    }

    /// Runs until `q`.
    pub fn run(&mut self) -> anyhow::Result<()> {
        self.draw()?;
        let mut drawn = Instant::now();
        while !self.quit {
            let force = drawn.elapsed() >= REDRAW_EVERY;
            if self.step(Duration::from_millis(50), force)? {
                drawn = Instant::now();
            }
        }
        Ok(())
    }
}

/// A key event for tests and scripts.
pub fn key(code: tuirealm::event::Key) -> Event<UiEvent> {
    Event::Keyboard(tuirealm::event::KeyEvent::new(
        code,
        tuirealm::event::KeyModifiers::NONE,
    ))
}
