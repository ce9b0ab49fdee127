//! `make demo`: the whole stack on this machine — the stand-in ArgusAI backend, the origin agent
//! (`argus-relay run`, the real binary) and the edge Worker under `wrangler dev` (workerd) — with
//! one phone already paired, and the commands to try printed. Runs until Ctrl-C; everything it
//! started stops with it (its data lives in a temporary directory).
//!
//! `make demo BACKEND=http://192.168.1.10:8000`: the same relay in front of your own ArgusAI, to
//! try it at home before deploying anything: no wrangler.toml or .dev.vars to write. The agent
//! authenticates to it with `BACKEND_API_KEY` if given, else it tells you how to sign it in
//! (`argus-relay backend login`, where this build has that command). It ends by showing a
//! pairing code and its QR (`argus-relay pair`) for a phone.

use std::time::Duration;

use e2e::phone::cf_blob;
use e2e::stack::{BackendLogin, Stack, StackOptions};

/// `BACKEND` (and `BACKEND_API_KEY`) from the environment: the user's own ArgusAI.
struct OwnBackend {
    url: String,
    api_key: Option<String>,
}

fn env_value(name: &str) -> Option<String> {
    std::env::var(name)
        .ok()
        .map(|v| v.trim().to_owned())
        .filter(|v| !v.is_empty())
}

fn own_backend() -> Result<Option<OwnBackend>, String> {
    let Some(url) = env_value("BACKEND") else {
        return Ok(None);
    };
    let url = url.trim_end_matches('/').to_owned();
    let host = url.strip_prefix("http://").ok_or_else(|| {
        format!("BACKEND={url:?}: give ArgusAI's address as http://HOST:PORT (e.g. http://192.168.1.10:8000)")
    })?;
    if host.is_empty() || host.contains('/') || host.contains('@') {
        return Err(format!(
            "BACKEND={url:?}: only http://HOST:PORT, without a path (e.g. http://192.168.1.10:8000)"
        ));
    }
    Ok(Some(OwnBackend {
        url,
        api_key: env_value("BACKEND_API_KEY"),
    }))
}

/// What ArgusAI's unauthenticated `/health` says, in one line, or why it could not be asked.
async fn backend_health(url: &str) -> Result<String, String> {
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(5))
        .no_proxy()
        .build()
        .map_err(|e| e.to_string())?;
    let resp = client
        .get(format!("{url}/health"))
        .send()
        .await
        .map_err(|e| format!("{url}/health: {e}"))?;
    let status = resp.status();
    let body = resp.text().await.unwrap_or_default();
    let body: String = body.chars().take(200).collect();
    if status.is_success() {
        Ok(format!("{status} {body}"))
    } else {
        Err(format!("{url}/health answered {status}: {body}"))
    }
}

/// True when this build's agent has `argus-relay backend login` (the agent's own ArgusAI session).
fn agent_has_backend_login() -> bool {
    std::process::Command::new(e2e::agent::binary())
        .args(["backend", "login", "--help"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

#[tokio::main]
async fn main() {
    let own = match own_backend() {
        Ok(own) => own,
        Err(e) => {
            eprintln!("argus-relay demo: {e}");
            std::process::exit(2);
        }
    };
    let mut opts = StackOptions {
        edge_port: Some(e2e::process::free_port()),
        ..StackOptions::default()
    };
    match &own {
        None => eprintln!(
            "argus-relay demo: starting the stand-in backend, the agent and the Worker (workerd)..."
        ),
        Some(own) => {
            match backend_health(&own.url).await {
                Ok(health) => eprintln!(
                    "argus-relay demo: your ArgusAI at {} answers: {health}",
                    own.url
                ),
                Err(e) => {
                    eprintln!("argus-relay demo: cannot reach your ArgusAI: {e}");
                    eprintln!(
                        "  Is BACKEND the address this machine reaches it at (http://HOST:PORT)?"
                    );
                    std::process::exit(1);
                }
            }
            eprintln!(
                "argus-relay demo: starting the agent and the Worker (workerd) in front of it..."
            );
            opts.backend_url = Some(own.url.clone());
            // Never the stand-in's test account against the user's ArgusAI: a login there would
            // fail and use up its 5 attempts per 15 minutes. The user signs the agent in.
            opts.backend_login = BackendLogin::None;
            // Empty: no API key in the agent's configuration.
            opts.agent_backend_api_key = Some(own.api_key.clone().unwrap_or_default());
        }
    }
    let stack = Stack::start_with(opts).await;
    let device = stack.pair_phone("owner").await;
    let edge = stack.edge_url();
    let cf = cf_blob("US", 64496, "TLSv1.3").to_string();
    let config = stack.agent.config_path().display().to_string();
    let admin = stack.agent.admin_url();
    let bin = e2e::agent::binary().display().to_string();
    let tunnel = stack.agent.tunnel_url();
    let backend = match &own {
        Some(own) => format!("{}   (yours)", own.url),
        None => format!("{}   (stand-in)", stack.backend.url()),
    };
    let device_id = &device.device_id;
    let ttl = device.expires_in;
    let token = &device.access_token;
    let mut lines = vec![
        String::new(),
        "argus-relay demo is running.".into(),
        String::new(),
        format!("  edge Worker (wrangler dev / workerd)  {edge}"),
        format!("  origin agent, tunnel listener         {tunnel}"),
        format!("  origin agent, admin API (loopback)    {admin}"),
        format!("  ArgusAI backend                       {backend}"),
        String::new(),
        format!("A phone (\"Test phone (owner)\", device {device_id}) is paired; its access token lives {ttl} s."),
        String::new(),
        "Try, as that phone, through the Worker -> agent -> backend:".into(),
        String::new(),
        format!("  TOKEN='{token}'"),
        format!("  curl -s -H \"Authorization: Bearer $TOKEN\" -H 'MF-CF-Blob: {cf}' '{edge}/api/v1/events?limit=2'"),
        String::new(),
        "(MF-CF-Blob stands in for the request.cf Cloudflare adds: country, ASN, TLS version.)".into(),
        String::new(),
        "What the relay refuses, before anything reaches your home:".into(),
        String::new(),
        format!("  curl -s '{edge}/api/v1/events'                                 # no token: 401"),
        format!("  curl -s --path-as-is -H \"Authorization: Bearer $TOKEN\" -H 'MF-CF-Blob: {cf}' '{edge}/api/v1/thumbnails/..%2fapp.db'"),
        "      # ArgusAI's traversal hole (it returns its whole database): refused at the edge, 400".into(),
        format!("  curl -s '{tunnel}/api/v1/events'                               # the tunnel without the Worker: 401"),
        String::new(),
        "Owner commands against this agent:".into(),
        String::new(),
        format!("  export ARGUS_RELAY_ADMIN_URL={admin} ARGUS_RELAY_CONFIG={config}"),
        format!("  {bin} pair --scope viewer      # a code + QR for another phone"),
        format!("  {bin} devices                  # paired devices"),
        format!("  {bin} revoke {device_id}"),
        format!("  {bin} doctor                   # what works, what does not, and what to run"),
    ];
    if let Some(own) = &own {
        lines.push(String::new());
        if own.api_key.is_some() {
            lines.push("The agent authenticates to your ArgusAI with BACKEND_API_KEY.".into());
        } else if agent_has_backend_login() {
            lines.push("The agent has no ArgusAI credential yet: sign it in once (your ArgusAI user; asked for interactively):".into());
            lines.push(format!("  ARGUS_RELAY_CONFIG={config} {bin} backend login"));
        } else {
            lines.push("The agent has no ArgusAI credential: routes your ArgusAI protects answer 401 through it.".into());
            lines.push("Start the demo with an API key from ArgusAI's settings:".into());
            lines.push(format!(
                "  make demo BACKEND={} BACKEND_API_KEY=<key>",
                own.url
            ));
        }
    }
    lines.push(String::new());
    lines.push("Ctrl-C stops everything.".into());
    println!("{}", lines.join("\n"));

    if own.is_some() {
        // A pairing code and its QR, as the owner sees them after `argus-relay init` at home. The
        // link names this demo's Worker, so only a phone on this machine can use it.
        println!("\nA pairing code for a phone (waits until it is used or expires; Ctrl-C stops the demo):\n");
        let pair = tokio::process::Command::new(e2e::agent::binary())
            .args(["pair", "--scope", "owner", "--config", &config])
            .env("ARGUS_RELAY_ADMIN_URL", &admin)
            .kill_on_drop(true)
            .status();
        tokio::select! {
            _ = pair => {}
            _ = tokio::signal::ctrl_c() => {
                eprintln!("stopping...");
                drop(stack);
                return;
            }
        }
    }
    let _ = tokio::signal::ctrl_c().await;
    eprintln!("stopping...");
    drop(stack);
}
