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
    /// The LAN listener (HTTPS), when it runs.
    #[serde(default)]
    lan: Option<SocketAddr>,
    /// The LAN plain-HTTP listener, when it runs.
    #[serde(default)]
    lan_http: Option<SocketAddr>,
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
    lan: Option<SocketAddr>,
    lan_http: Option<SocketAddr>,
    extra_env: Vec<(String, String)>,
    extra_args: Vec<String>,
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
    /// `argus-relay init` for a fresh data dir (with an ArgusAI API key configured, if given).
    pub fn init(
        dir: &Path,
        public_url: &str,
        backend_url: &str,
        backend_api_key: Option<&str>,
    ) -> Result<PathBuf, String> {
        let data_dir = dir.join("data");
        let config = dir.join("config.toml");
        let (data, cfg) = (data_dir.to_string_lossy(), config.to_string_lossy());
        let mut args = vec![
            "init",
            "--data-dir",
            &data,
            "--config",
            &cfg,
            "--public-url",
            public_url,
            "--backend-url",
            backend_url,
        ];
        if let Some(key) = backend_api_key {
            args.extend(["--backend-api-key", key]);
        }
        run_cli(&args, &[])?;
        Ok(config)
    }

    /// `argus-relay backend login --username U --password-file F` for the configuration at
    /// `config_path`, as the owner signs the agent in to ArgusAI (the password goes through a
    /// 0600 file beside the configuration, removed afterwards). Returns the command's output.
    pub fn backend_login(
        config_path: &Path,
        username: &str,
        password: &str,
    ) -> Result<String, String> {
        use std::os::unix::fs::OpenOptionsExt;
        let file = config_path.with_extension("password");
        {
            use std::io::Write;
            let mut f = std::fs::OpenOptions::new()
                .write(true)
                .create(true)
                .truncate(true)
                .mode(0o600)
                .open(&file)
                .map_err(|e| format!("{}: {e}", file.display()))?;
            writeln!(f, "{password}").map_err(|e| e.to_string())?;
        }
        let out = run_cli(
            &[
                "backend",
                "login",
                "--config",
                &config_path.to_string_lossy(),
                "--username",
                username,
                "--password-file",
                &file.to_string_lossy(),
            ],
            &[],
        );
        let _ = std::fs::remove_file(&file);
        out
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
        Agent::start_full(config_path, extra_env, Vec::new(), "127.0.0.1:0")
    }

    /// Like [`Agent::start`], with more arguments for `run` (e.g. `--lan-listen 127.0.0.1:0`).
    pub fn start_with_args(
        config_path: &Path,
        extra_env: Vec<(String, String)>,
        extra_args: Vec<String>,
    ) -> Result<Agent, String> {
        Agent::start_full(config_path, extra_env, extra_args, "127.0.0.1:0")
    }

    /// `argus-relay run` with the tunnel listener on `tunnel_listen` (a tunnel's ingress must know
    /// the port in advance) and the admin listener on an ephemeral port.
    pub fn start_on(
        config_path: &Path,
        extra_env: Vec<(String, String)>,
        tunnel_listen: &str,
    ) -> Result<Agent, String> {
        Agent::start_full(config_path, extra_env, Vec::new(), tunnel_listen)
    }

    /// `run` with extra arguments and the tunnel listener on `tunnel_listen`.
    pub fn start_full(
        config_path: &Path,
        extra_env: Vec<(String, String)>,
        extra_args: Vec<String>,
        tunnel_listen: &str,
    ) -> Result<Agent, String> {
        let mut agent = Agent {
            process: None,
            config_path: config_path.to_owned(),
            data_dir: PathBuf::new(),
            tunnel: SocketAddr::from(([127, 0, 0, 1], 0)),
            admin: SocketAddr::from(([127, 0, 0, 1], 0)),
            lan: None,
            lan_http: None,
            extra_env,
            extra_args,
        };
        agent.spawn(tunnel_listen, "127.0.0.1:0")?;
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
            .args(&self.extra_args)
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
        self.lan = ready.lan;
        self.lan_http = ready.lan_http;
        self.process = Some(process);
        Ok(())
    }

    /// Stops the agent (SIGKILL) — the Worker then has no origin.
    pub fn stop(&mut self) {
        if let Some(mut p) = self.process.take() {
            p.kill();
        }
    }

    /// Stops the agent gracefully (SIGTERM: it withdraws its mDNS advertisement and drains).
    pub fn terminate(&mut self) -> Option<std::process::ExitStatus> {
        self.process
            .take()
            .and_then(|mut p| p.terminate(Duration::from_secs(10)))
    }

    /// The LAN listener's address, when it runs.
    pub fn lan_addr(&self) -> Option<SocketAddr> {
        self.lan
    }

    /// The LAN plain-HTTP listener's address, when it runs.
    pub fn lan_http_addr(&self) -> Option<SocketAddr> {
        self.lan_http
    }

    /// How many requests for `path` the `listener` (`tunnel`, `lan`, `lan_http`) logged.
    pub fn saw(&self, listener: &str, path: &str) -> usize {
        let tag = format!("listener=\"{listener}\"");
        let needle = format!("path={path} ");
        self.output()
            .lines()
            .filter(|l| l.contains(&tag) && l.contains(&needle))
            .count()
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

    /// `argus-relay ARGS --config <this agent's config>`, whatever its exit status.
    pub fn cli_output(&self, args: &[&str]) -> std::process::Output {
        let cfg = self.config_path.to_string_lossy().into_owned();
        Command::new(binary())
            .args(args)
            .args(["--config", &cfg])
            .env("ARGUS_RELAY_ADMIN_URL", self.admin_url())
            .output()
            .unwrap_or_else(|e| panic!("cannot run {}: {e}", binary().display()))
    }

    /// `GET /admin/status` (the agent's own account of itself).
    pub async fn status(&self) -> serde_json::Value {
        let token = self.admin_token().expect("admin token");
        let resp = reqwest::Client::new()
            .get(format!("{}/admin/status", self.admin_url()))
            .bearer_auth(token)
            .timeout(Duration::from_secs(10))
            .send()
            .await
            .expect("admin status request");
        assert_eq!(resp.status(), 200, "admin status");
        resp.json().await.expect("admin status JSON")
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
