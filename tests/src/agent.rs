//! The origin agent as the real `argus-relay` binary: `init` into a temp data dir, then `run`.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use serde::Deserialize;

use crate::process::ChildProcess;
use crate::workspace_root;

/// The binary under test: `$ARGUS_RELAY_BIN`, else the workspace's debug build.
pub fn binary() -> PathBuf {
    if let Some(p) = std::env::var_os("ARGUS_RELAY_BIN") {
        return PathBuf::from(p);
    }
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace_root().join("target"));
    target.join("debug").join("argus-relay")
}

/// A process's resident set size (`VmRSS` of `/proc/<pid>/status`), in KiB.
pub fn rss_kib_of(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
}

/// What `argus-relay worker-config --json` prints: the Worker's vars and secrets.
#[derive(Debug, Clone, Deserialize)]
pub struct WorkerConfig {
    pub vars: std::collections::BTreeMap<String, String>,
    pub secrets: std::collections::BTreeMap<String, String>,
}

#[derive(Debug, Clone, Copy, Deserialize)]
struct Listening {
    tunnel: SocketAddr,
    admin: SocketAddr,
}

#[derive(Deserialize)]
struct ReadyLine {
    listening: Listening,
}

pub struct Agent {
    process: Option<ChildProcess>,
    config_path: PathBuf,
    data_dir: PathBuf,
    tunnel: SocketAddr,
    admin: SocketAddr,
    extra_env: Vec<(String, String)>,
}

/// Runs `argus-relay ARGS` to completion; returns stdout, or stdout+stderr as the error.
pub fn run_cli(args: &[&str], env: &[(String, String)]) -> Result<String, String> {
    let mut cmd = Command::new(binary());
    cmd.args(args);
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd
        .output()
        .map_err(|e| format!("cannot run {}: {e}", binary().display()))?;
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    if out.status.success() {
        Ok(stdout)
    } else {
        Err(format!(
            "argus-relay {args:?} failed ({}):\n{stdout}\n{}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        ))
    }
}

impl Agent {
    /// `argus-relay init` for a fresh data dir.
    pub fn init(
        dir: &Path,
        public_url: &str,
        backend_url: &str,
        backend_api_key: &str,
    ) -> Result<PathBuf, String> {
        let data_dir = dir.join("data");
        let config = dir.join("config.toml");
        run_cli(
            &[
                "init",
                "--data-dir",
                &data_dir.to_string_lossy(),
                "--config",
                &config.to_string_lossy(),
                "--public-url",
                public_url,
                "--backend-url",
                backend_url,
                "--backend-api-key",
                backend_api_key,
            ],
            &[],
        )?;
        Ok(config)
    }

    /// Merges a TOML fragment into the configuration file `init` wrote (tables merged key by key),
    /// e.g. `"[limits]\nmax_connections = 8"`.
    pub fn patch_config(config_path: &Path, fragment: &str) -> Result<(), String> {
        fn merge(into: &mut toml::Table, from: toml::Table) {
            for (k, v) in from {
                match (into.get_mut(&k), v) {
                    (Some(toml::Value::Table(a)), toml::Value::Table(b)) => merge(a, b),
                    (_, v) => {
                        into.insert(k, v);
                    }
                }
            }
        }
        let text = std::fs::read_to_string(config_path).map_err(|e| e.to_string())?;
        let mut cfg: toml::Table = toml::from_str(&text).map_err(|e| e.to_string())?;
        let patch: toml::Table =
            toml::from_str(fragment).map_err(|e| format!("config patch: {e}"))?;
        merge(&mut cfg, patch);
        let out = toml::to_string(&cfg).map_err(|e| e.to_string())?;
        std::fs::write(config_path, out).map_err(|e| e.to_string())
    }

    /// `argus-relay run` on ephemeral loopback ports; returns once it says it listens.
    pub fn start(config_path: &Path, extra_env: Vec<(String, String)>) -> Result<Agent, String> {
        let mut agent = Agent {
            process: None,
            config_path: config_path.to_owned(),
            data_dir: PathBuf::new(),
            tunnel: SocketAddr::from(([127, 0, 0, 1], 0)),
            admin: SocketAddr::from(([127, 0, 0, 1], 0)),
            extra_env,
        };
        agent.spawn("127.0.0.1:0", "127.0.0.1:0")?;
        let cfg = std::fs::read_to_string(config_path).map_err(|e| e.to_string())?;
        let value: toml::Value = toml::from_str(&cfg).map_err(|e| e.to_string())?;
        agent.data_dir = value
            .get("data_dir")
            .and_then(|v| v.as_str())
            .map(PathBuf::from)
            .ok_or("config has no data_dir")?;
        Ok(agent)
    }

    fn spawn(&mut self, tunnel: &str, admin: &str) -> Result<(), String> {
        let mut cmd = Command::new(binary());
        cmd.args(["run", "--config", &self.config_path.to_string_lossy()])
            .args(["--tunnel-listen", tunnel, "--admin-listen", admin])
            .env("RUST_LOG", "info");
        for (k, v) in &self.extra_env {
            cmd.env(k, v);
        }
        let mut process = ChildProcess::spawn("argus-relay run", cmd).map_err(|e| e.to_string())?;
        let ready = process.wait_for_line(Duration::from_secs(20), |line| {
            serde_json::from_str::<ReadyLine>(line)
                .ok()
                .map(|r| r.listening)
        })?;
        self.tunnel = ready.tunnel;
        self.admin = ready.admin;
        self.process = Some(process);
        Ok(())
    }

    /// Stops the agent (SIGKILL) — the Worker then has no origin.
    pub fn stop(&mut self) {
        if let Some(mut p) = self.process.take() {
            p.kill();
        }
    }

    /// Starts it again on the same ports.
    pub fn restart(&mut self) -> Result<(), String> {
        self.stop();
        let (t, a) = (self.tunnel.to_string(), self.admin.to_string());
        self.spawn(&t, &a)
    }

    pub fn process_mut(&mut self) -> Option<&mut ChildProcess> {
        self.process.as_mut()
    }

    /// The running agent's process id.
    pub fn pid(&self) -> Option<u32> {
        self.process.as_ref().map(|p| p.pid())
    }

    /// The agent's resident set size, in KiB.
    pub fn rss_kib(&self) -> Option<u64> {
        rss_kib_of(self.pid()?)
    }

    /// The tunnel listener's address.
    pub fn tunnel_addr(&self) -> SocketAddr {
        self.tunnel
    }

    pub fn tunnel_url(&self) -> String {
        format!("http://{}", self.tunnel)
    }

    pub fn admin_url(&self) -> String {
        format!("http://{}", self.admin)
    }

    pub fn config_path(&self) -> &Path {
        &self.config_path
    }

    pub fn data_dir(&self) -> &Path {
        &self.data_dir
    }

    /// The admin token the owner CLI uses (read from the data dir, as the CLI does).
    pub fn admin_token(&self) -> Result<String, String> {
        std::fs::read_to_string(self.data_dir.join("admin.token"))
            .map(|s| s.trim().to_owned())
            .map_err(|e| e.to_string())
    }

    /// `argus-relay ARGS --config <this agent's config>`.
    pub fn cli(&self, args: &[&str]) -> Result<String, String> {
        let mut all: Vec<&str> = args.to_vec();
        let cfg = self.config_path.to_string_lossy().into_owned();
        all.extend(["--config", &cfg]);
        let env = vec![("ARGUS_RELAY_ADMIN_URL".to_owned(), self.admin_url())];
        run_cli(&all, &env)
    }

    pub fn worker_config(&self) -> Result<WorkerConfig, String> {
        let out = self.cli(&["worker-config", "--json"])?;
        serde_json::from_str(&out).map_err(|e| format!("worker-config output: {e}: {out}"))
    }

    pub fn output(&self) -> String {
        self.process
            .as_ref()
            .map(|p| p.output_text())
            .unwrap_or_default()
    }
}
