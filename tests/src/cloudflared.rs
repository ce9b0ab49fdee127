//! The stand-in cloudflared (`src/bin/stand-in-cloudflared.rs`) as the agent runs it in tests:
//! where its files and ports are, how to tell it to misbehave, and what it logged.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use crate::process::free_port;
use crate::workspace_root;

/// The stand-in binary: beside the test executable's `deps/` directory (cargo builds a package's
/// binaries for its integration tests), else in the target directory.
pub fn binary() -> PathBuf {
    let name = "stand-in-cloudflared";
    if let Some(p) = std::env::current_exe()
        .ok()
        .and_then(|exe| exe.parent()?.parent().map(|d| d.join(name)))
        .filter(|p| p.exists())
    {
        return p;
    }
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace_root().join("target"));
    target.join("debug").join(name)
}

/// The agent's `[cloudflared]` tuning for tests: fast probes, short timeouts, short backoff.
#[derive(Debug, Clone)]
pub struct Tuning {
    pub probe_interval_ms: u64,
    pub ready_timeout_secs: u64,
    pub unresponsive_timeout_secs: u64,
    pub stable_after_secs: u64,
    pub backoff_initial_ms: u64,
    pub backoff_max_secs: u64,
    pub stop_timeout_secs: u64,
}

impl Default for Tuning {
    fn default() -> Self {
        Tuning {
            probe_interval_ms: 250,
            ready_timeout_secs: 4,
            unresponsive_timeout_secs: 2,
            stable_after_secs: 5,
            backoff_initial_ms: 250,
            backoff_max_secs: 2,
            stop_timeout_secs: 2,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum TunnelKind {
    /// A remotely managed tunnel: `tunnel config --tunnel-token`.
    #[default]
    Token,
    /// A locally managed tunnel: `tunnel config --tunnel-id` (cloudflared's config.yml).
    LocalConfig,
}

#[derive(Debug, Clone)]
pub struct TunnelOptions {
    pub kind: TunnelKind,
    /// The control file's first command (`ready`, `not-ready`, `flap MS`, …).
    pub initial: String,
    pub ready_after_ms: u64,
    /// The stand-in ignores SIGTERM.
    pub ignore_term: bool,
    pub tuning: Tuning,
    /// Run this instead of the stand-in (e.g. a path that does not exist).
    pub binary: Option<PathBuf>,
    /// Record every byte relayed through the tunnel ([`StandInTunnel::tapped`]).
    pub tap: bool,
}

impl Default for TunnelOptions {
    fn default() -> Self {
        TunnelOptions {
            kind: TunnelKind::Token,
            initial: "ready".into(),
            ready_after_ms: 300,
            ignore_term: false,
            tuning: Tuning::default(),
            binary: None,
            tap: false,
        }
    }
}

/// The token the harness configures (and the stand-in insists on, when started with a token).
pub const TOKEN: &str = "eyJhIjoic3RhbmQtaW4iLCJ0IjoidHVubmVsIn0";
/// The tunnel's public hostname in tests.
pub const HOSTNAME: &str = "tunnel.test";

/// One stand-in tunnel's files and ports.
#[derive(Debug, Clone)]
pub struct StandInTunnel {
    pub dir: PathBuf,
    pub control: PathBuf,
    pub log: PathBuf,
    /// cloudflared's metrics server (its `/ready`).
    pub metrics: SocketAddr,
    /// Where the stand-in plays the edge side: the Worker's ORIGIN_URL.
    pub edge: SocketAddr,
    /// The agent's tunnel listener (the ingress service).
    pub service: SocketAddr,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    pub at_ms: u128,
    pub pid: u32,
    pub what: String,
}

fn loopback(port: u16) -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], port))
}

impl StandInTunnel {
    /// Picks ports and writes the control file.
    pub fn prepare(dir: &Path, opts: &TunnelOptions) -> Result<StandInTunnel, String> {
        std::fs::create_dir_all(dir).map_err(|e| e.to_string())?;
        let t = StandInTunnel {
            dir: dir.to_owned(),
            control: dir.join("control"),
            log: dir.join("events.log"),
            metrics: loopback(free_port()),
            edge: loopback(free_port()),
            service: loopback(free_port()),
        };
        t.set(&opts.initial);
        Ok(t)
    }

    /// Where a tapping stand-in ([`TunnelOptions::tap`]) records the tunnel's bytes.
    pub fn tap_file(&self) -> PathBuf {
        self.dir.join("tap.bin")
    }

    /// Every byte relayed through the tunnel so far, both ways (with [`TunnelOptions::tap`]).
    pub fn tapped(&self) -> Vec<u8> {
        std::fs::read(self.tap_file()).unwrap_or_default()
    }

    /// The environment the agent passes on to the stand-in.
    pub fn env(&self, opts: &TunnelOptions) -> Vec<(String, String)> {
        let mut env = vec![
            (
                "STANDIN_CLOUDFLARED_CONTROL",
                self.control.display().to_string(),
            ),
            ("STANDIN_CLOUDFLARED_LOG", self.log.display().to_string()),
            ("STANDIN_CLOUDFLARED_EDGE_LISTEN", self.edge.to_string()),
            (
                "STANDIN_CLOUDFLARED_INGRESS",
                format!("http://{}", self.service),
            ),
            ("STANDIN_CLOUDFLARED_EXPECT_TOKEN", TOKEN.to_owned()),
            (
                "STANDIN_CLOUDFLARED_READY_AFTER_MS",
                opts.ready_after_ms.to_string(),
            ),
        ];
        if opts.ignore_term {
            env.push(("STANDIN_CLOUDFLARED_IGNORE_TERM", "1".into()));
        }
        if opts.tap {
            env.push((
                "STANDIN_CLOUDFLARED_TAP",
                self.tap_file().display().to_string(),
            ));
        }
        env.into_iter().map(|(k, v)| (k.to_owned(), v)).collect()
    }

    /// `argus-relay tunnel config` arguments for this tunnel.
    pub fn config_args(&self, opts: &TunnelOptions) -> Result<Vec<String>, String> {
        let binary = opts.binary.clone().unwrap_or_else(binary);
        let mut args: Vec<String> = vec![
            "tunnel".into(),
            "config".into(),
            "--tunnel-hostname".into(),
            HOSTNAME.into(),
            "--tunnel-metrics".into(),
            self.metrics.to_string(),
            "--cloudflared-binary".into(),
            binary.display().to_string(),
        ];
        match opts.kind {
            TunnelKind::Token => args.extend(["--tunnel-token".into(), TOKEN.into()]),
            TunnelKind::LocalConfig => {
                let creds = self.dir.join("standin-tunnel.json");
                std::fs::write(
                    &creds,
                    r#"{"AccountTag":"standin","TunnelSecret":"c3RhbmQtaW4tc2VjcmV0","TunnelID":"standin-tunnel"}"#,
                )
                .map_err(|e| e.to_string())?;
                args.extend([
                    "--tunnel-id".into(),
                    "standin-tunnel".into(),
                    "--tunnel-credentials".into(),
                    creds.display().to_string(),
                    "--output".into(),
                    self.dir.join("cloudflared.yml").display().to_string(),
                ]);
            }
        }
        Ok(args)
    }

    /// Adds the tuning to the agent's `[cloudflared]` section.
    pub fn tune(config: &Path, tuning: &Tuning) -> Result<(), String> {
        let text = std::fs::read_to_string(config).map_err(|e| e.to_string())?;
        let mut doc: toml::Table = toml::from_str(&text).map_err(|e| e.to_string())?;
        let section = doc
            .get_mut("cloudflared")
            .and_then(|v| v.as_table_mut())
            .ok_or("no [cloudflared] section")?;
        for (k, v) in [
            ("probe_interval_ms", tuning.probe_interval_ms),
            ("ready_timeout_secs", tuning.ready_timeout_secs),
            (
                "unresponsive_timeout_secs",
                tuning.unresponsive_timeout_secs,
            ),
            ("stable_after_secs", tuning.stable_after_secs),
            ("backoff_initial_ms", tuning.backoff_initial_ms),
            ("backoff_max_secs", tuning.backoff_max_secs),
            ("stop_timeout_secs", tuning.stop_timeout_secs),
        ] {
            section.insert(k.into(), toml::Value::Integer(v as i64));
        }
        std::fs::write(config, toml::to_string(&doc).map_err(|e| e.to_string())?)
            .map_err(|e| e.to_string())
    }

    /// Tells the stand-in (every running and future process) what to do next.
    pub fn set(&self, command: &str) {
        let tmp = self.control.with_extension("tmp");
        std::fs::write(&tmp, format!("{command}\n")).expect("write control file");
        std::fs::rename(&tmp, &self.control).expect("replace control file");
    }

    /// The Worker's ORIGIN_URL: the stand-in's edge side.
    pub fn origin_url(&self) -> String {
        format!("http://{}", self.edge)
    }

    pub fn events(&self) -> Vec<Event> {
        std::fs::read_to_string(&self.log)
            .unwrap_or_default()
            .lines()
            .filter_map(|l| {
                let mut parts = l.splitn(3, ' ');
                Some(Event {
                    at_ms: parts.next()?.parse().ok()?,
                    pid: parts.next()?.parse().ok()?,
                    what: parts.next()?.to_owned(),
                })
            })
            .collect()
    }

    /// Events whose text starts with `what`.
    pub fn events_of(&self, what: &str) -> Vec<Event> {
        self.events()
            .into_iter()
            .filter(|e| e.what.starts_with(what))
            .collect()
    }

    pub fn starts(&self) -> usize {
        self.events_of("start").len()
    }

    /// The pid of the most recent start.
    pub fn last_pid(&self) -> Option<u32> {
        self.events_of("start").last().map(|e| e.pid)
    }
}

/// Whether a process with this pid exists (and is not a zombie).
pub fn process_alive(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => stat
            .rsplit_once(") ")
            .and_then(|(_, rest)| rest.chars().next())
            .is_some_and(|state| state != 'Z' && state != 'X'),
        Err(_) => false,
    }
}
