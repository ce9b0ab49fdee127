//! The tunnel's state machine: what we can prove about the tunnel program (cloudflared or
//! rathole, [`super::provider`]; cloudflared in the examples below), and what to do next.
//! Pure: time is passed in, randomness (jitter) is injected, no I/O — the supervisor
//! ([`super::supervisor`]) turns its [`Action`]s into processes and probes.
//!
//! ```text
//!              start                  /ready 200, n ≥ 1
//! Disconnected ─────▶ Connecting ─────────────────────────▶ Connected
//!                        │  ▲                                  │  /ready 503, no answer
//!          exit, hang,   │  │ spawned (never connected yet)    ▼
//!          never ready   ▼  │                              Reconnecting ──▶ Connected (reconnects + 1)
//!                      Backoff ◀──────────────────────────────┘ exit, hang, not ready in time
//!                        │ delay elapsed → spawn (Reconnecting once it was ever connected)
//! ```
//!
//! Rules that keep the status truthful:
//! - **Connected** only on a `/ready` answer with HTTP 200 *and* at least one ready connection;
//!   any other answer, or none, leaves Connected at once — except no answer while the tunnel
//!   keeps carrying requests the Worker signed ([`Machine::carried`]) since the previous verdict:
//!   a cloudflared whose metrics server is slow under load is busy, not hung, and restarting it
//!   would drop every request in flight (the load suite saw exactly that).
//! - A process that is alive but not ready for [`Timing::ready_timeout`] is restarted; one whose
//!   metrics server does not answer for [`Timing::unresponsive_timeout`] is taken as hung and
//!   restarted.
//! - A process that exits is restarted after a backoff ([`super::backoff`]) — forever; the
//!   attempt counter resets once a connection has held for [`Timing::stable_after`].
//! - In [`Mode::Observed`] (cloudflared runs on its own, e.g. its own systemd unit or container)
//!   the machine only reports; it never asks to start or stop anything.

use std::time::{Duration, Instant};

use serde::Serialize;

use super::backoff::Backoff;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum TunnelState {
    /// No cloudflared process and none planned (before start, after shutdown), or — observed —
    /// nothing answers on the metrics address.
    Disconnected,
    /// cloudflared runs and has not been ready yet (never connected since the agent started).
    Connecting,
    /// cloudflared's `/ready` says 200 with at least one edge connection.
    Connected,
    /// The tunnel was connected before and is not now; cloudflared runs and tries again.
    Reconnecting,
    /// No process: waiting before starting cloudflared again.
    Backoff,
}

impl TunnelState {
    pub const fn as_str(self) -> &'static str {
        match self {
            TunnelState::Disconnected => "disconnected",
            TunnelState::Connecting => "connecting",
            TunnelState::Connected => "connected",
            TunnelState::Reconnecting => "reconnecting",
            TunnelState::Backoff => "backoff",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Mode {
    /// The agent runs cloudflared as its child process.
    Supervised,
    /// cloudflared runs on its own; the agent only polls its readiness.
    Observed,
}

#[derive(Debug, Clone, Copy)]
pub struct Timing {
    pub ready_timeout: Duration,
    pub unresponsive_timeout: Duration,
    pub stable_after: Duration,
    pub backoff: Backoff,
}

impl Default for Timing {
    fn default() -> Self {
        Timing {
            ready_timeout: Duration::from_secs(60),
            unresponsive_timeout: Duration::from_secs(15),
            stable_after: Duration::from_secs(60),
            backoff: Backoff::DEFAULT,
        }
    }
}

/// One answer (or non-answer) of cloudflared's `GET /ready`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Probe {
    /// HTTP 200 with `readyConnections ≥ 1`.
    Ready {
        connections: u32,
        connector_id: Option<String>,
    },
    /// HTTP 503 (no edge connection), or 200 with zero connections.
    NotReady { connections: u32 },
    /// Refused, timed out, or not cloudflared's answer.
    NoAnswer { reason: String },
    /// The program answered that it is not connected, and why (rathole's last failure line).
    Failing { reason: String },
}

/// How the machine's messages name the tunnel program and what it connects to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Naming {
    pub program: &'static str,
    pub peer: &'static str,
}

impl Naming {
    pub const CLOUDFLARED: Naming = Naming {
        program: "cloudflared",
        peer: "Cloudflare",
    };
    pub const RATHOLE: Naming = Naming {
        program: "rathole",
        peer: "the relay server",
    };
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Start cloudflared now; report with [`Machine::spawned`] or [`Machine::spawn_failed`].
    Spawn,
    /// Probe `/ready` after the usual interval, watching the process meanwhile.
    Probe,
    /// Stop the running process (SIGTERM, then SIGKILL); report with [`Machine::exited`].
    Terminate { reason: String },
    /// Wait this long, then call [`Machine::backoff_elapsed`].
    Wait(Duration),
    /// Nothing more to do: the agent is shutting down.
    Done,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LastError {
    pub message: String,
    pub at: Instant,
}

/// What the status endpoint shows; taken after every transition.
#[derive(Debug, Clone)]
pub struct Snapshot {
    pub state: TunnelState,
    pub state_since: Instant,
    pub ready_connections: u32,
    pub connector_id: Option<String>,
    /// When the current connection was established (Connected only).
    pub connected_since: Option<Instant>,
    /// Times the tunnel became connected again after having been connected.
    pub reconnects: u64,
    /// Times cloudflared was started again after its first start.
    pub restarts: u64,
    pub last_error: Option<LastError>,
    /// When the next start is due (Backoff only).
    pub retry_at: Option<Instant>,
    /// When `/ready` last gave a verdict (answer or no answer).
    pub checked_at: Option<Instant>,
}

pub struct Machine {
    mode: Mode,
    naming: Naming,
    /// The reason of the last [`Probe::Failing`] since the last ready answer.
    last_failure: Option<String>,
    timing: Timing,
    jitter: Box<dyn FnMut() -> f64 + Send>,
    state: TunnelState,
    state_since: Instant,
    /// Consecutive failed attempts: the backoff exponent.
    attempt: u32,
    ever_connected: bool,
    process_started: Option<Instant>,
    last_answer: Option<Instant>,
    not_ready_since: Option<Instant>,
    connected_since: Option<Instant>,
    ready_connections: u32,
    connector_id: Option<String>,
    starts: u64,
    reconnects: u64,
    last_error: Option<LastError>,
    retry_at: Option<Instant>,
    checked_at: Option<Instant>,
    /// When the tunnel last carried a request signed by the Worker ([`Machine::carried`]).
    last_carried: Option<Instant>,
    terminating: bool,
    stopping: bool,
}

impl Machine {
    /// `jitter` returns uniform samples from `[0, 1)`.
    pub fn new(
        mode: Mode,
        timing: Timing,
        now: Instant,
        jitter: Box<dyn FnMut() -> f64 + Send>,
    ) -> Machine {
        Machine {
            mode,
            naming: Naming::CLOUDFLARED,
            last_failure: None,
            timing,
            jitter,
            state: TunnelState::Disconnected,
            state_since: now,
            attempt: 0,
            ever_connected: false,
            process_started: None,
            last_answer: None,
            not_ready_since: None,
            connected_since: None,
            ready_connections: 0,
            connector_id: None,
            starts: 0,
            reconnects: 0,
            last_error: None,
            retry_at: None,
            checked_at: None,
            last_carried: None,
            terminating: false,
            stopping: false,
        }
    }

    /// Names another program than cloudflared in the messages.
    pub fn named(mut self, naming: Naming) -> Machine {
        self.naming = naming;
        self
    }

    #[cfg(test)]
    pub fn state(&self) -> TunnelState {
        self.state
    }

    /// The backoff exponent (consecutive failures), for tests.
    #[cfg(test)]
    pub fn attempt(&self) -> u32 {
        self.attempt
    }

    pub fn snapshot(&self) -> Snapshot {
        Snapshot {
            state: self.state,
            state_since: self.state_since,
            ready_connections: self.ready_connections,
            connector_id: self.connector_id.clone(),
            connected_since: self.connected_since,
            reconnects: self.reconnects,
            restarts: self.starts.saturating_sub(1),
            last_error: self.last_error.clone(),
            retry_at: self.retry_at,
            checked_at: self.checked_at,
        }
    }

    fn set_state(&mut self, state: TunnelState, now: Instant) {
        if self.state != state {
            self.state = state;
            self.state_since = now;
        }
        if state != TunnelState::Backoff {
            self.retry_at = None;
        }
    }

    fn error(&mut self, message: String, now: Instant) {
        self.last_error = Some(LastError { message, at: now });
    }

    /// The state a running, not (yet) ready process is in.
    fn trying_state(&self) -> TunnelState {
        if self.ever_connected {
            TunnelState::Reconnecting
        } else {
            TunnelState::Connecting
        }
    }

    fn lose_connection(&mut self, now: Instant) {
        self.connected_since = None;
        self.ready_connections = 0;
        self.not_ready_since.get_or_insert(now);
    }

    fn reset_backoff_if_stable(&mut self, now: Instant) {
        if self
            .connected_since
            .is_some_and(|t| now.saturating_duration_since(t) >= self.timing.stable_after)
        {
            self.attempt = 0;
        }
    }

    pub fn start(&mut self, now: Instant) -> Action {
        self.set_state(TunnelState::Connecting, now);
        match self.mode {
            Mode::Supervised => Action::Spawn,
            Mode::Observed => Action::Probe,
        }
    }

    pub fn spawned(&mut self, now: Instant) -> Action {
        self.starts += 1;
        self.process_started = Some(now);
        self.last_answer = None;
        self.not_ready_since = Some(now);
        self.connected_since = None;
        self.ready_connections = 0;
        self.set_state(self.trying_state(), now);
        Action::Probe
    }

    pub fn spawn_failed(&mut self, why: &str, now: Instant) -> Action {
        let program = self.naming.program;
        self.error(format!("{program} could not be started: {why}"), now);
        self.enter_backoff(now)
    }

    /// A request the Worker signed arrived through the tunnel at `at`: the program forwards, so
    /// it is alive and connected, whatever its metrics server says in time.
    pub fn carried(&mut self, at: Instant) {
        self.last_carried = self.last_carried.max(Some(at));
    }

    /// Whether the tunnel carried a request since the previous verdict (and, supervised, since
    /// the current process started).
    fn carried_since(&self, previous_check: Option<Instant>) -> bool {
        let Some(carried) = self.last_carried else {
            return false;
        };
        let since = previous_check.max(self.process_started);
        since.is_none_or(|since| carried > since)
    }

    pub fn probe(&mut self, probe: Probe, now: Instant) -> Action {
        if self.mode == Mode::Supervised && self.process_started.is_none() {
            // A late answer about a process that is gone proves nothing.
            return self.next_action(now);
        }
        let previous_check = self.checked_at.replace(now);
        let Naming { program, peer } = self.naming;
        match probe {
            Probe::Ready {
                connections,
                connector_id,
            } if connections > 0 => {
                self.last_answer = Some(now);
                self.not_ready_since = None;
                self.last_failure = None;
                if self.state != TunnelState::Connected {
                    if self.ever_connected {
                        self.reconnects += 1;
                    }
                    self.ever_connected = true;
                    self.connected_since = Some(now);
                    self.set_state(TunnelState::Connected, now);
                }
                self.ready_connections = connections;
                self.connector_id = connector_id.or(self.connector_id.take());
                self.reset_backoff_if_stable(now);
                Action::Probe
            }
            Probe::Ready { .. } | Probe::NotReady { .. } => {
                self.last_answer = Some(now);
                if self.state == TunnelState::Connected {
                    self.error(
                        format!("{program} lost its connections to {peer} (it says not ready)"),
                        now,
                    );
                }
                self.lose_connection(now);
                self.set_state(self.trying_state(), now);
                self.check_ready_timeout(now)
            }
            Probe::Failing { reason } => {
                self.last_answer = Some(now);
                // Repeated failures keep the time of the first, so `secs_ago` tells how long.
                if self.last_error.as_ref().is_none_or(|e| e.message != reason) {
                    self.error(reason.clone(), now);
                }
                self.last_failure = Some(reason);
                self.lose_connection(now);
                self.set_state(self.trying_state(), now);
                self.check_ready_timeout(now)
            }
            Probe::NoAnswer { .. }
                if self.state == TunnelState::Connected && self.carried_since(previous_check) =>
            {
                // Busy, not hung: the requests it forwards are its answer.
                self.last_answer = Some(now);
                Action::Probe
            }
            Probe::NoAnswer { reason } => {
                if self.state == TunnelState::Connected || self.mode == Mode::Observed {
                    let message = match self.mode {
                        Mode::Supervised => {
                            format!("{program}'s readiness endpoint stopped answering: {reason}")
                        }
                        Mode::Observed => {
                            format!("no {program} answers on its metrics address: {reason}")
                        }
                    };
                    self.error(message, now);
                }
                self.lose_connection(now);
                match self.mode {
                    Mode::Observed => {
                        self.set_state(TunnelState::Disconnected, now);
                        Action::Probe
                    }
                    Mode::Supervised => {
                        self.set_state(self.trying_state(), now);
                        let silent_since = self.last_answer.or(self.process_started).unwrap_or(now);
                        let silent = now.saturating_duration_since(silent_since);
                        if silent >= self.timing.unresponsive_timeout {
                            return self.terminate(
                                format!(
                                    "{program} did not answer on its metrics address for {} s \
                                     (hung); restarting it",
                                    silent.as_secs()
                                ),
                                now,
                            );
                        }
                        self.check_ready_timeout(now)
                    }
                }
            }
        }
    }

    fn check_ready_timeout(&mut self, now: Instant) -> Action {
        if self.mode == Mode::Observed {
            return Action::Probe;
        }
        let Naming { program, peer } = self.naming;
        let since = self.not_ready_since.unwrap_or(now);
        let waited = now.saturating_duration_since(since);
        if waited >= self.timing.ready_timeout {
            let mut reason = format!(
                "{program} was running but not connected to {peer} for {} s; restarting it",
                waited.as_secs()
            );
            if let Some(failure) = &self.last_failure {
                reason.push_str(" (last failure: ");
                reason.push_str(failure);
                reason.push(')');
            }
            return self.terminate(reason, now);
        }
        Action::Probe
    }

    fn terminate(&mut self, reason: String, now: Instant) -> Action {
        self.terminating = true;
        self.error(reason.clone(), now);
        Action::Terminate { reason }
    }

    /// The process ended: by itself (`how` says how), or after [`Action::Terminate`].
    pub fn exited(&mut self, how: &str, now: Instant) -> Action {
        self.reset_backoff_if_stable(now);
        self.process_started = None;
        self.lose_connection(now);
        self.not_ready_since = None;
        let expected = std::mem::take(&mut self.terminating);
        if self.stopping {
            self.set_state(TunnelState::Disconnected, now);
            return Action::Done;
        }
        if !expected {
            let program = self.naming.program;
            self.error(format!("{program} exited ({how})"), now);
        }
        self.enter_backoff(now)
    }

    fn enter_backoff(&mut self, now: Instant) -> Action {
        let delay = self.timing.backoff.delay(self.attempt, (self.jitter)());
        self.attempt = self.attempt.saturating_add(1);
        self.set_state(TunnelState::Backoff, now);
        self.retry_at = Some(now + delay);
        Action::Wait(delay)
    }

    pub fn backoff_elapsed(&mut self, _now: Instant) -> Action {
        if self.stopping {
            return Action::Done;
        }
        Action::Spawn
    }

    /// The agent is shutting down.
    pub fn stop(&mut self, now: Instant) -> Action {
        self.stopping = true;
        if self.mode == Mode::Supervised && self.process_started.is_some() {
            self.terminating = true;
            return Action::Terminate {
                reason: "the agent is shutting down".into(),
            };
        }
        self.lose_connection(now);
        self.set_state(TunnelState::Disconnected, now);
        Action::Done
    }

    /// What to do when nothing new happened.
    fn next_action(&self, now: Instant) -> Action {
        if self.stopping {
            Action::Done
        } else if self.state == TunnelState::Backoff {
            Action::Wait(
                self.retry_at
                    .map_or(Duration::ZERO, |t| t.saturating_duration_since(now)),
            )
        } else {
            Action::Probe
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SEC: Duration = Duration::from_secs(1);

    fn timing() -> Timing {
        Timing {
            ready_timeout: Duration::from_secs(10),
            unresponsive_timeout: Duration::from_secs(5),
            stable_after: Duration::from_secs(30),
            backoff: Backoff {
                initial: Duration::from_secs(1),
                max: Duration::from_secs(16),
            },
        }
    }

    /// A machine whose jitter is always 0 (delay = nominal), and its start time.
    fn machine(mode: Mode) -> (Machine, Instant) {
        let t0 = Instant::now();
        (Machine::new(mode, timing(), t0, Box::new(|| 0.0)), t0)
    }

    fn ready() -> Probe {
        Probe::Ready {
            connections: 4,
            connector_id: Some("c-1".into()),
        }
    }

    fn not_ready() -> Probe {
        Probe::NotReady { connections: 0 }
    }

    fn no_answer() -> Probe {
        Probe::NoAnswer {
            reason: "connection refused".into(),
        }
    }

    /// Start and spawn: a running process, never ready yet.
    fn running(mode: Mode) -> (Machine, Instant) {
        let (mut m, t0) = machine(mode);
        let first = m.start(t0);
        if mode == Mode::Supervised {
            assert_eq!(first, Action::Spawn);
            assert_eq!(m.spawned(t0), Action::Probe);
        }
        (m, t0)
    }

    #[test]
    fn a_failing_program_says_why_and_is_restarted_with_the_reason() {
        let (m, t0) = running(Mode::Supervised);
        let mut m = m.named(Naming::RATHOLE);
        let why = "the Noise handshake with the relay server failed";
        let failing = || Probe::Failing { reason: why.into() };
        assert_eq!(m.probe(failing(), t0 + SEC), Action::Probe);
        assert_eq!(m.state(), TunnelState::Connecting);
        let err = m.snapshot().last_error.unwrap();
        assert_eq!((err.message.as_str(), err.at), (why, t0 + SEC));
        // The same failure again keeps the time it began.
        m.probe(failing(), t0 + 2 * SEC);
        assert_eq!(m.snapshot().last_error.unwrap().at, t0 + SEC);
        // Not connected for ready_timeout: restarted, the reason kept in the message.
        match m.probe(failing(), t0 + 10 * SEC) {
            Action::Terminate { reason } => {
                assert!(
                    reason.starts_with("rathole was running but not connected to the relay server"),
                    "{reason}"
                );
                assert!(reason.contains(why), "{reason}");
            }
            other => panic!("{other:?}"),
        }
        // A ready answer clears it: connected.
        let (m2, t1) = running(Mode::Supervised);
        let mut m2 = m2.named(Naming::RATHOLE);
        m2.probe(failing(), t1);
        m2.probe(ready(), t1 + SEC);
        assert_eq!(m2.state(), TunnelState::Connected);
    }

    #[test]
    fn connected_only_when_ready_says_so() {
        let (mut m, t0) = running(Mode::Supervised);
        assert_eq!(m.state(), TunnelState::Connecting);
        for (i, p) in [
            not_ready(),
            no_answer(),
            Probe::Ready {
                connections: 0,
                connector_id: None,
            },
        ]
        .into_iter()
        .enumerate()
        {
            assert_eq!(m.probe(p, t0 + SEC * i as u32), Action::Probe);
            assert_eq!(m.state(), TunnelState::Connecting);
            assert_eq!(m.snapshot().ready_connections, 0);
        }
        assert_eq!(m.probe(ready(), t0 + 3 * SEC), Action::Probe);
        let s = m.snapshot();
        assert_eq!(s.state, TunnelState::Connected);
        assert_eq!(s.ready_connections, 4);
        assert_eq!(s.connector_id.as_deref(), Some("c-1"));
        assert_eq!(s.connected_since, Some(t0 + 3 * SEC));
        assert_eq!(s.reconnects, 0);
        assert!(s.last_error.is_none());
    }

    #[test]
    fn losing_readiness_leaves_connected_at_once_and_counts_the_reconnect() {
        let (mut m, t0) = running(Mode::Supervised);
        m.probe(ready(), t0 + SEC);
        m.probe(not_ready(), t0 + 2 * SEC);
        let s = m.snapshot();
        assert_eq!(s.state, TunnelState::Reconnecting);
        assert_eq!(s.ready_connections, 0);
        assert!(s.connected_since.is_none());
        assert!(s
            .last_error
            .unwrap()
            .message
            .contains("lost its connections"));
        m.probe(ready(), t0 + 3 * SEC);
        assert_eq!(m.state(), TunnelState::Connected);
        assert_eq!(m.snapshot().reconnects, 1);
        // Flapping: every return counts.
        for i in 0..5u32 {
            m.probe(not_ready(), t0 + SEC * (4 + 2 * i));
            m.probe(ready(), t0 + SEC * (5 + 2 * i));
        }
        assert_eq!(m.snapshot().reconnects, 6);
        assert_eq!(m.snapshot().restarts, 0, "cloudflared itself reconnected");
    }

    #[test]
    fn no_answer_while_connected_is_not_connected() {
        let (mut m, t0) = running(Mode::Supervised);
        m.probe(ready(), t0 + SEC);
        assert_eq!(m.probe(no_answer(), t0 + 2 * SEC), Action::Probe);
        assert_eq!(m.state(), TunnelState::Reconnecting);
        assert!(m
            .snapshot()
            .last_error
            .unwrap()
            .message
            .contains("stopped answering"));
    }

    #[test]
    fn never_ready_is_restarted_after_the_ready_timeout_and_never_connected() {
        let (mut m, t0) = running(Mode::Supervised);
        for s in 1..10 {
            assert_eq!(m.probe(not_ready(), t0 + SEC * s), Action::Probe);
        }
        let Action::Terminate { reason } = m.probe(not_ready(), t0 + 10 * SEC) else {
            panic!("expected a restart");
        };
        assert!(
            reason.contains("not connected to Cloudflare for 10 s"),
            "{reason}"
        );
        assert_eq!(m.state(), TunnelState::Connecting);
        assert_eq!(
            m.exited("killed by SIGTERM", t0 + 11 * SEC),
            Action::Wait(SEC)
        );
        let s = m.snapshot();
        assert_eq!(s.state, TunnelState::Backoff);
        assert_eq!(s.retry_at, Some(t0 + 12 * SEC));
        assert!(
            s.last_error.unwrap().message.contains("not connected"),
            "the restart's reason stays the error, not the exit it caused"
        );
        assert_eq!(m.backoff_elapsed(t0 + 12 * SEC), Action::Spawn);
        m.spawned(t0 + 12 * SEC);
        assert_eq!(m.state(), TunnelState::Connecting, "never connected yet");
        assert_eq!(m.snapshot().restarts, 1);
    }

    #[test]
    fn a_hung_process_is_restarted_after_the_unresponsive_timeout() {
        let (mut m, t0) = running(Mode::Supervised);
        m.probe(ready(), t0 + SEC);
        for s in 2..6 {
            assert_eq!(m.probe(no_answer(), t0 + SEC * s), Action::Probe, "{s}");
        }
        let Action::Terminate { reason } = m.probe(no_answer(), t0 + 6 * SEC) else {
            panic!("expected a restart");
        };
        assert!(reason.contains("(hung)"), "{reason}");
        m.exited("killed by SIGKILL", t0 + 7 * SEC);
        assert_eq!(m.state(), TunnelState::Backoff);
        m.backoff_elapsed(t0 + 8 * SEC);
        m.spawned(t0 + 8 * SEC);
        assert_eq!(
            m.state(),
            TunnelState::Reconnecting,
            "it was connected before"
        );
        m.probe(ready(), t0 + 9 * SEC);
        assert_eq!(m.snapshot().reconnects, 1);
    }

    #[test]
    fn a_busy_tunnel_whose_metrics_server_is_slow_stays_connected_while_it_carries_requests() {
        for mode in [Mode::Supervised, Mode::Observed] {
            let (mut m, t0) = running(mode);
            m.probe(ready(), t0 + SEC);
            for s in 2..30 {
                m.carried(t0 + SEC * s - SEC / 2);
                assert_eq!(m.probe(no_answer(), t0 + SEC * s), Action::Probe, "{s}");
                assert_eq!(m.state(), TunnelState::Connected, "{mode:?} {s}");
            }
            assert!(m.snapshot().last_error.is_none());
            // The requests stop: silence is no answer again, and then a hang.
            assert_eq!(m.probe(no_answer(), t0 + 30 * SEC), Action::Probe);
            assert_ne!(m.state(), TunnelState::Connected);
            if mode == Mode::Supervised {
                let restarted = (31..40).any(|s| {
                    matches!(m.probe(no_answer(), t0 + SEC * s), Action::Terminate { .. })
                });
                assert!(restarted, "a silent tunnel is still taken as hung");
            }
        }
    }

    #[test]
    fn requests_carried_before_a_restart_say_nothing_about_the_new_process() {
        let (mut m, t0) = running(Mode::Supervised);
        m.probe(ready(), t0 + SEC);
        m.carried(t0 + 2 * SEC);
        m.probe(not_ready(), t0 + 2 * SEC);
        m.exited("exit status 1", t0 + 3 * SEC);
        m.backoff_elapsed(t0 + 4 * SEC);
        m.spawned(t0 + 4 * SEC);
        m.probe(ready(), t0 + 5 * SEC);
        assert_eq!(m.probe(no_answer(), t0 + 6 * SEC), Action::Probe);
        assert_eq!(m.state(), TunnelState::Reconnecting);
    }

    #[test]
    fn a_process_that_never_answers_counts_from_its_start() {
        let (mut m, t0) = running(Mode::Supervised);
        for s in 1..5 {
            assert_eq!(m.probe(no_answer(), t0 + SEC * s), Action::Probe);
        }
        assert!(matches!(
            m.probe(no_answer(), t0 + 5 * SEC),
            Action::Terminate { .. }
        ));
    }

    #[test]
    fn crashes_back_off_exponentially_without_limit() {
        let (mut m, t0) = running(Mode::Supervised);
        let mut now = t0;
        let mut delays = Vec::new();
        for _ in 0..8 {
            now += SEC;
            let Action::Wait(d) = m.exited("exit status 1", now) else {
                panic!("expected a backoff")
            };
            assert_eq!(m.state(), TunnelState::Backoff);
            delays.push(d.as_secs());
            now += d;
            assert_eq!(m.backoff_elapsed(now), Action::Spawn);
            m.spawned(now);
        }
        assert_eq!(delays, [1, 2, 4, 8, 16, 16, 16, 16]);
        let s = m.snapshot();
        assert_eq!(s.restarts, 8);
        assert_eq!(
            s.last_error.unwrap().message,
            "cloudflared exited (exit status 1)"
        );
        assert_eq!(s.state, TunnelState::Connecting);
    }

    #[test]
    fn a_stable_connection_resets_the_backoff() {
        let (mut m, t0) = running(Mode::Supervised);
        // Three quick crashes: attempt 3.
        let mut now = t0;
        for _ in 0..3 {
            now += SEC;
            let Action::Wait(d) = m.exited("exit status 1", now) else {
                panic!()
            };
            now += d;
            m.backoff_elapsed(now);
            m.spawned(now);
        }
        assert_eq!(m.attempt(), 3);
        // Connected but not for long: no reset.
        m.probe(ready(), now + SEC);
        m.probe(ready(), now + 10 * SEC);
        assert_eq!(m.attempt(), 3);
        // Connected for stable_after: reset, so the next crash waits the initial delay.
        m.probe(ready(), now + 31 * SEC);
        assert_eq!(m.attempt(), 0);
        assert_eq!(m.exited("exit status 1", now + 32 * SEC), Action::Wait(SEC));
    }

    #[test]
    fn a_long_connection_resets_the_backoff_even_without_a_late_probe() {
        let (mut m, t0) = running(Mode::Supervised);
        m.exited("exit status 1", t0);
        m.backoff_elapsed(t0 + SEC);
        m.spawned(t0 + SEC);
        m.probe(ready(), t0 + 2 * SEC);
        assert_eq!(m.attempt(), 1);
        assert_eq!(m.exited("exit status 1", t0 + 100 * SEC), Action::Wait(SEC));
    }

    #[test]
    fn a_short_connection_does_not_reset_the_backoff() {
        let (mut m, t0) = running(Mode::Supervised);
        m.exited("exit status 1", t0);
        m.backoff_elapsed(t0 + SEC);
        m.spawned(t0 + SEC);
        m.probe(ready(), t0 + 2 * SEC);
        assert_eq!(
            m.exited("exit status 1", t0 + 3 * SEC),
            Action::Wait(2 * SEC)
        );
    }

    #[test]
    fn jitter_is_applied_within_range() {
        let t0 = Instant::now();
        let mut m = Machine::new(Mode::Supervised, timing(), t0, Box::new(|| 0.999));
        m.start(t0);
        m.spawned(t0);
        let Action::Wait(d) = m.exited("exit status 1", t0) else {
            panic!()
        };
        assert!(d > SEC / 2 && d < SEC, "{d:?}");
    }

    #[test]
    fn a_spawn_failure_backs_off_and_says_why() {
        let (mut m, t0) = machine(Mode::Supervised);
        assert_eq!(m.start(t0), Action::Spawn);
        assert_eq!(
            m.spawn_failed("/usr/bin/cloudflared: No such file or directory", t0),
            Action::Wait(SEC)
        );
        let s = m.snapshot();
        assert_eq!(s.state, TunnelState::Backoff);
        assert!(m.process_started.is_none());
        assert!(s.last_error.unwrap().message.contains("No such file"));
        assert_eq!(m.backoff_elapsed(t0 + SEC), Action::Spawn);
    }

    #[test]
    fn probes_about_a_dead_process_are_ignored() {
        let (mut m, t0) = running(Mode::Supervised);
        m.exited("exit status 1", t0 + SEC);
        m.probe(ready(), t0 + SEC);
        assert_eq!(m.state(), TunnelState::Backoff);
    }

    #[test]
    fn stopping_terminates_the_process_then_is_done() {
        let (mut m, t0) = running(Mode::Supervised);
        m.probe(ready(), t0 + SEC);
        assert!(matches!(m.stop(t0 + 2 * SEC), Action::Terminate { .. }));
        assert_eq!(m.exited("exit status 0", t0 + 3 * SEC), Action::Done);
        let s = m.snapshot();
        assert_eq!(s.state, TunnelState::Disconnected);
        assert!(s.connected_since.is_none());
        assert!(s.last_error.is_none(), "a requested stop is not an error");
    }

    #[test]
    fn stopping_during_backoff_is_done_at_once() {
        let (mut m, t0) = running(Mode::Supervised);
        m.exited("exit status 1", t0);
        assert_eq!(m.stop(t0), Action::Done);
        assert_eq!(m.state(), TunnelState::Disconnected);
        assert_eq!(m.backoff_elapsed(t0), Action::Done);
    }

    #[test]
    fn observed_mode_reports_but_never_starts_or_stops() {
        let (mut m, t0) = machine(Mode::Observed);
        assert_eq!(m.start(t0), Action::Probe);
        for s in 1..100u32 {
            let p = match s % 3 {
                0 => no_answer(),
                1 => not_ready(),
                _ => ready(),
            };
            let a = m.probe(p, t0 + SEC * s);
            assert_eq!(a, Action::Probe, "step {s}");
        }
        m.probe(no_answer(), t0 + 200 * SEC);
        assert_eq!(m.state(), TunnelState::Disconnected);
        assert!(m
            .snapshot()
            .last_error
            .unwrap()
            .message
            .contains("no cloudflared answers"));
        m.probe(ready(), t0 + 201 * SEC);
        assert_eq!(m.state(), TunnelState::Connected);
        assert_eq!(m.stop(t0 + 202 * SEC), Action::Done);
    }
}
