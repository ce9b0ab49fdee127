//! The whole stack, started for one test and torn down when dropped.

use std::time::Duration;

use crate::agent::{run_cli, Agent};
use crate::backend::{
    BackendConfig, StandInBackend, DEFAULT_ADMIN_PASSWORD, DEFAULT_ADMIN_USERNAME,
    DEFAULT_VIEWER_PASSWORD, DEFAULT_VIEWER_USERNAME,
};
use crate::cloudflared::{StandInTunnel, TunnelOptions};
use crate::phone::Phone;
use crate::small_disk::SmallDisk;
use crate::worker::{EdgeWorker, WorkerSettings};

/// The API key the stand-in backend accepts (the agent is configured with none unless a test
/// asks: it signs in with a user session, see [`StackOptions::backend_login`]).
pub const BACKEND_API_KEY: &str = "standin-backend-key-0123456789";

#[derive(Debug, Clone, Default)]
pub struct StackOptions {
    /// `POLICY` for the Worker (TOML); `None` = the built-in default policy.
    pub policy: Option<String>,
    /// Rate-limit overrides (binding name, requests per 60 s).
    pub rate_limits: Vec<(String, u32)>,
    /// Extra environment for the agent process.
    pub agent_env: Vec<(String, String)>,
    /// Start without the Worker (agent-only tests).
    pub without_worker: bool,
    /// Point the agent at this backend URL instead of the stand-in (e.g. a closed port, for
    /// "backend down").
    pub backend_url: Option<String>,
    /// Configure the agent with this ArgusAI API key (the fallback while it has no session).
    pub agent_backend_api_key: Option<String>,
    /// How the agent is signed in to ArgusAI before it starts (default: as the stand-in's admin).
    pub backend_login: BackendLogin,
    /// Lifetime of the stand-in's access JWTs (default: ArgusAI's 24 h).
    pub backend_access_token_lifetime: Option<Duration>,
    /// Give the Worker this `RELAY_SIGNING_SECRET` (hex) instead of the agent's.
    pub worker_secret: Option<String>,
    /// Put a stand-in cloudflared, supervised by the agent, between the Worker and the agent
    /// (`argus-relay tunnel config`, then `run`); the Worker's ORIGIN_URL is its edge side.
    pub tunnel: Option<TunnelOptions>,
    /// A TOML fragment merged, table by table, into the agent's configuration after `init` and
    /// before it starts (e.g. small limits `"[limits]\nmax_connections = 8"`, or a `[lan]` section).
    pub agent_toml: Option<String>,
    /// The stand-in's `redirect_slashes` (ArgusAI: off — a stray `/` is a 404; on: Starlette's 307).
    pub backend_redirect_slashes: bool,
    /// Run the Worker on this loopback port and make its URL the agent's `public_url` (what
    /// pairing links and token issuers name), as `make demo` does; default: a free port, and
    /// `https://relay.test`.
    pub edge_port: Option<u16>,
    /// Put the agent's data directory on a tmpfs of this many bytes that the test can fill
    /// ([`Stack::small_disk`]); needs root. Without root the stack fails to start, saying why.
    pub agent_data_disk_bytes: Option<u64>,
    /// The stand-in backend does not record requests (long load runs).
    pub backend_quiet: bool,
}

/// Whether and as whom the harness signs the agent in to the stand-in ArgusAI
/// (`argus-relay backend login --password-file`, after `init`, before `run`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum BackendLogin {
    /// As [`crate::backend::DEFAULT_ADMIN_USERNAME`].
    #[default]
    Admin,
    /// As [`crate::backend::DEFAULT_VIEWER_USERNAME`] (not an ArgusAI admin).
    NonAdmin,
    /// Not signed in.
    None,
}

/// A phone paired through the Worker: its ids and tokens.
#[derive(Debug, Clone)]
pub struct PairedDevice {
    pub device_id: String,
    pub access_token: String,
    pub refresh_token: String,
    pub expires_in: u64,
    /// The whole pairing answer.
    pub answer: serde_json::Value,
}

pub struct Stack {
    pub backend: StandInBackend,
    pub agent: Agent,
    pub worker: Option<EdgeWorker>,
    /// The stand-in cloudflared, with [`StackOptions::tunnel`].
    pub tunnel: Option<StandInTunnel>,
    /// The agent's data directory's own small filesystem, with
    /// [`StackOptions::agent_data_disk_bytes`] (unmounted after the agent is stopped).
    pub small_disk: Option<SmallDisk>,
    pub dir: tempfile::TempDir,
    /// The edge signing secret (`RELAY_SIGNING_SECRET`), for signing like the Worker.
    pub edge_secret: Vec<u8>,
}

impl Stack {
    pub async fn start() -> Stack {
        Stack::start_with(StackOptions::default()).await
    }

    /// Starts backend, agent and Worker; panics with every process's output if one fails.
    pub async fn start_with(opts: StackOptions) -> Stack {
        let dir = tempfile::Builder::new()
            .prefix("argus-e2e-")
            .tempdir()
            .expect("temp dir");
        let defaults = BackendConfig::default();
        let backend = StandInBackend::start(BackendConfig {
            api_key: BACKEND_API_KEY.to_owned(),
            redirect_slashes: opts.backend_redirect_slashes,
            record_requests: !opts.backend_quiet,
            access_token_lifetime: opts
                .backend_access_token_lifetime
                .unwrap_or(defaults.access_token_lifetime),
            ..defaults
        })
        .await
        .expect("stand-in backend starts");
        let backend_url = opts.backend_url.clone().unwrap_or_else(|| backend.url());
        let base = dir.path().to_owned();
        let small_disk = opts.agent_data_disk_bytes.map(|bytes| {
            SmallDisk::mount(&base.join("agent").join("data"), bytes)
                .unwrap_or_else(|e| panic!("the agent's small disk: {e}"))
        });
        let opts2 = opts.clone();
        type Started = (Agent, Option<EdgeWorker>, Option<StandInTunnel>, Vec<u8>);
        let (agent, worker, tunnel, edge_secret) =
            tokio::task::spawn_blocking(move || -> Result<Started, String> {
                let public_url = match opts2.edge_port {
                    Some(port) => format!("http://127.0.0.1:{port}"),
                    None => "https://relay.test".to_owned(),
                };
                let config = Agent::init(
                    &base.join("agent"),
                    &public_url,
                    &backend_url,
                    opts2.agent_backend_api_key.as_deref(),
                )?;
                let login = match opts2.backend_login {
                    BackendLogin::Admin => Some((DEFAULT_ADMIN_USERNAME, DEFAULT_ADMIN_PASSWORD)),
                    BackendLogin::NonAdmin => {
                        Some((DEFAULT_VIEWER_USERNAME, DEFAULT_VIEWER_PASSWORD))
                    }
                    BackendLogin::None => None,
                };
                // A stand-in that is not the backend (e.g. "backend down") cannot sign anyone in.
                if let Some((user, password)) = login.filter(|_| opts2.backend_url.is_none()) {
                    Agent::backend_login(&config, user, password)?;
                }
                if let Some(fragment) = &opts2.agent_toml {
                    Agent::patch_config(&config, fragment)?;
                }
                let mut agent_env = opts2.agent_env.clone();
                let mut tunnel_listen = "127.0.0.1:0".to_owned();
                let tunnel = match &opts2.tunnel {
                    Some(topts) => {
                        let t = StandInTunnel::prepare(&base.join("cloudflared"), topts)?;
                        let args = t.config_args(topts)?;
                        let mut args: Vec<&str> = args.iter().map(String::as_str).collect();
                        let cfg = config.to_string_lossy().into_owned();
                        args.extend(["--config", &cfg]);
                        tunnel_listen = t.service.to_string();
                        run_cli(
                            &args,
                            &[("ARGUS_RELAY_TUNNEL_LISTEN".into(), tunnel_listen.clone())],
                        )?;
                        StandInTunnel::tune(&config, &topts.tuning)?;
                        agent_env.extend(t.env(topts));
                        Some(t)
                    }
                    None => None,
                };
                let agent = Agent::start_on(&config, agent_env, &tunnel_listen)?;
                let wc = agent.worker_config()?;
                let secret = wc
                    .secrets
                    .get("RELAY_SIGNING_SECRET")
                    .and_then(|h| hex::decode(h).ok())
                    .ok_or("worker-config has no hex RELAY_SIGNING_SECRET")?;
                if opts2.without_worker {
                    return Ok((agent, None, tunnel, secret));
                }
                let mut settings = WorkerSettings {
                    rate_limits: opts2.rate_limits.clone(),
                    port: opts2.edge_port,
                    ..WorkerSettings::default()
                };
                for (k, v) in wc.vars {
                    if k != "ORIGIN_URL" {
                        settings.vars.push((k, v));
                    }
                }
                let origin = match &tunnel {
                    Some(t) => t.origin_url(),
                    None => agent.tunnel_url(),
                };
                settings.vars.push(("ORIGIN_URL".into(), origin));
                if let Some(policy) = &opts2.policy {
                    settings.vars.push(("POLICY".into(), policy.clone()));
                }
                settings.secrets = wc.secrets.into_iter().collect();
                if let Some(secret) = &opts2.worker_secret {
                    settings.secrets = vec![("RELAY_SIGNING_SECRET".into(), secret.clone())];
                }
                let worker = EdgeWorker::start(&base.join("worker"), &settings)
                    .map_err(|e| format!("{e}\n--- agent output ---\n{}", agent.output()))?;
                Ok((agent, Some(worker), tunnel, secret))
            })
            .await
            .expect("stack start task")
            .unwrap_or_else(|e| panic!("stack failed to start: {e}"));
        Stack {
            backend,
            agent,
            worker,
            tunnel,
            small_disk,
            dir,
            edge_secret,
        }
    }

    /// The Worker's URL (what the phone talks to).
    pub fn edge_url(&self) -> String {
        self.worker
            .as_ref()
            .map(|w| w.url())
            .expect("stack started without a Worker")
    }

    /// A phone talking to the Worker, with no token yet.
    pub fn phone(&self) -> Phone {
        Phone::new(&self.edge_url())
    }

    /// A client talking straight to the agent's tunnel listener (as an attacker who found the
    /// tunnel hostname would).
    pub fn direct_to_tunnel(&self) -> Phone {
        Phone::new(&self.agent.tunnel_url())
    }

    /// A client of the agent's tunnel listener that signs every request like the Worker (valid
    /// edge signature), as `client_ip` — to test the agent alone, including with attacks the
    /// Worker would already stop.
    pub fn tunnel(&self) -> crate::signer::Tunnel {
        crate::signer::Tunnel::new(&self.agent.tunnel_url(), &self.edge_secret)
    }

    /// Pairs a phone straight through the tunnel listener (signed), for stacks without a Worker.
    pub async fn pair_phone_direct(&self, scope: &str) -> PairedDevice {
        let created = self.owner_code(scope);
        let code = created["code"].as_str().expect("code");
        let body = serde_json::json!({
            "code": code,
            "device_info": {"name": "Direct phone", "model": "iPhone15,2", "platform": "ios",
                            "os_version": "18.1", "app_version": "1.4.0"}
        });
        let resp = self
            .tunnel()
            .post_json("/api/v1/devices/pair", &body)
            .send()
            .await
            .expect("pair request");
        let (status, answer) = Phone::json(resp).await;
        assert_eq!(
            status,
            200,
            "direct pairing failed: {answer}\n{}",
            self.logs()
        );
        PairedDevice {
            device_id: answer["device_id"].as_str().expect("device_id").to_owned(),
            access_token: answer["access_token"].as_str().expect("token").to_owned(),
            refresh_token: answer["refresh_token"]
                .as_str()
                .expect("refresh")
                .to_owned(),
            expires_in: answer["expires_in"].as_u64().expect("expires_in"),
            answer,
        }
    }

    /// `argus-relay pair --no-wait --json --scope SCOPE`: a fresh owner code and its answer.
    pub fn owner_code(&self, scope: &str) -> serde_json::Value {
        let out = self
            .agent
            .cli(&["pair", "--no-wait", "--json", "--scope", scope])
            .unwrap_or_else(|e| panic!("argus-relay pair: {e}"));
        serde_json::from_str(&out).unwrap_or_else(|e| panic!("pair --json output {out:?}: {e}"))
    }

    /// Pairs a new phone with an owner code of `scope`, through the Worker (the seed's flow).
    pub async fn pair_phone(&self, scope: &str) -> PairedDevice {
        let info = serde_json::json!({
            "name": format!("Test phone ({scope})"),
            "model": "iPhone15,2",
            "platform": "ios",
            "os_version": "18.1",
            "app_version": "1.4.0",
        });
        self.pair_phone_with(scope, info).await
    }

    /// Pairs a new phone that describes itself with `device_info` (platform, versions, …).
    pub async fn pair_phone_with(
        &self,
        scope: &str,
        device_info: serde_json::Value,
    ) -> PairedDevice {
        let created = self.owner_code(scope);
        let code = created["code"].as_str().expect("code").to_owned();
        let (status, answer) = self
            .phone()
            .post_json_json(
                "/api/v1/devices/pair",
                &serde_json::json!({"code": code, "device_info": device_info}),
            )
            .await;
        assert_eq!(status, 200, "pairing failed: {answer}\n{}", self.logs());
        PairedDevice {
            device_id: answer["device_id"].as_str().expect("device_id").to_owned(),
            access_token: answer["access_token"]
                .as_str()
                .expect("access_token")
                .to_owned(),
            refresh_token: answer["refresh_token"]
                .as_str()
                .expect("refresh_token")
                .to_owned(),
            expires_in: answer["expires_in"].as_u64().expect("expires_in"),
            answer,
        }
    }

    /// How many requests for `path` the agent's tunnel listener logged.
    pub fn agent_saw(&self, path: &str) -> usize {
        let needle = format!("path={path} ");
        self.agent
            .output()
            .lines()
            .filter(|l| l.contains("listener=\"tunnel\"") && l.contains(&needle))
            .count()
    }

    /// Everything each process printed, for failure messages.
    pub fn logs(&self) -> String {
        let tunnel = self
            .tunnel
            .as_ref()
            .map(|t| std::fs::read_to_string(&t.log).unwrap_or_default())
            .unwrap_or_default();
        format!(
            "--- agent ---\n{}\n--- worker ---\n{}\n--- stand-in cloudflared events ---\n{tunnel}",
            self.agent.output(),
            self.worker.as_ref().map(|w| w.output()).unwrap_or_default()
        )
    }

    /// The stand-in cloudflared (panics without [`StackOptions::tunnel`]).
    pub fn cloudflared(&self) -> &StandInTunnel {
        self.tunnel
            .as_ref()
            .expect("stack started without a tunnel")
    }

    /// Polls the agent's `/admin/status` until `pred` holds; returns that status and how long
    /// it took. Panics with the last status and every log after `timeout`.
    pub async fn wait_status(
        &self,
        timeout: Duration,
        what: &str,
        pred: impl Fn(&serde_json::Value) -> bool,
    ) -> (serde_json::Value, Duration) {
        let started = tokio::time::Instant::now();
        loop {
            let status = self.agent.status().await;
            if pred(&status) {
                return (status, started.elapsed());
            }
            if started.elapsed() >= timeout {
                panic!(
                    "waited {timeout:?} for {what}; last status:\n{status:#}\n{}",
                    self.logs()
                );
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

/// Polls `f` until it returns `Some`, up to `timeout`.
pub async fn eventually<T, F, Fut>(timeout: Duration, mut f: F) -> Option<T>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        if let Some(v) = f().await {
            return Some(v);
        }
        if tokio::time::Instant::now() >= deadline {
            return None;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// A Worker policy that lets owner devices reach `/api/v1/system/**` (backups and restore:
/// denied by the default policy) — the built-in lists with the `/api/v1/system` rules taken out
/// of the deny list (its tunnel controls stay refused by the route
/// table anyway) — plus `extra_allow` rules (e.g. `"HEAD /api/v1/events/*/video"`).
pub fn policy_with_system_paths(extra_allow: &[&str]) -> String {
    use argus_shared::policy::DEFAULT_DENY;
    let quote = |s: &str| serde_json::to_string(s).unwrap_or_default();
    let mut allow = vec![quote("@default")];
    for p in [
        "GET /api/v1/system/ai-processing-stream",
        "GET /api/v1/system/backup/*/download",
        "POST /api/v1/system/restore",
    ]
    .iter()
    .chain(extra_allow)
    {
        allow.push(quote(p));
    }
    let deny: Vec<String> = DEFAULT_DENY
        .iter()
        .filter(|r| !r.contains("/api/v1/system"))
        .chain(["/api/v1/system/tunnel/**"].iter())
        .map(|r| quote(r))
        .collect();
    format!(
        "version = 1\n[paths]\nallow = [{}]\ndeny = [{}]\n",
        allow.join(", "),
        deny.join(", ")
    )
}
