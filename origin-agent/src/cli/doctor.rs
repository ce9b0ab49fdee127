//! `argus-relay doctor`: checks the whole chain from the outside in and says, in plain words,
//! what to fix.
//!
//! | check | how | proves |
//! |---|---|---|
//! | `public_url` | `GET {public_url}/api/v1/health?doctor_probe=…` (a one-time probe from `POST /admin/doctor-probes`) | the Worker answers at the public URL, and the answer carries *this* agent's instance id |
//! | `edge_signature` | the agent's count of signed requests before and after that request (`GET /admin/status`), or the refusal it caused | the Worker's `RELAY_SIGNING_SECRET` is this agent's (a mismatch is counted as `signature.mismatch`; with the probe, the agent's status then names the secret too) |
//! | `clock` | the answer's `Date` against this machine's clock | signatures are valid for ±60 s only |
//! | `tunnel` | the agent's view of its tunnel program: cloudflared (its `/ready`) or rathole (its control-channel log lines) | cloudflared holds edge connections / rathole holds an authenticated control channel to the relay server (the pinned Noise key and the token were accepted) |
//! | `agent` | the admin API | `argus-relay run` is up |
//! | `backend` | `GET {backend}/health`, then (if `backend.api_key` is set) `GET /api/v1/events?limit=1` with the key | ArgusAI runs (and accepts the fallback key) |
//! | `backend_session` | the agent's account of its ArgusAI session (`GET /admin/status`), else the stored session | the agent is signed in to ArgusAI and its session renews |
//! | `policy` | `--policy FILE` parsed like the Worker does | the `POLICY` you deploy is valid |
//!
//! Exit status 1 when any check fails; `--json` prints `{"ok", "findings": [{check, verdict,
//! summary, fix}]}`.

use std::io::Read;
use std::path::PathBuf;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::Serialize;
use serde_json::Value;

use super::admin_client::{self, AdminClient};
use super::CliError;
use crate::application::handlers::status::RelayStatus;
use crate::application::state::SECRET_INSTANCE_ID;
use crate::base::config::AgentConfig;
use crate::domain::proxy::backend_session::SessionState;
use crate::domain::store::Store;
use crate::domain::tunnel::TunnelView;

/// Clock skew (s) up to which all is well, and beyond which signatures are at risk.
const SKEW_OK: i64 = 10;
const SKEW_FAIL: i64 = 45;
const MAX_ANSWER_BYTES: u64 = 64 * 1024;

#[derive(Debug, clap::Args)]
pub struct DoctorArgs {
    #[command(flatten)]
    pub config: super::ConfigArg,
    /// Check this URL instead of the configuration's public_url.
    #[arg(long)]
    pub public_url: Option<String>,
    /// Also validate this relay policy (the Worker's POLICY).
    #[arg(long)]
    pub policy: Option<PathBuf>,
    /// Print the findings as JSON.
    #[arg(long)]
    pub json: bool,
    /// Seconds to wait for each answer.
    #[arg(long, default_value_t = 10)]
    pub timeout: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Verdict {
    Ok,
    Warn,
    Fail,
    Skip,
}

#[derive(Debug, Clone, Serialize)]
pub struct Finding {
    pub check: &'static str,
    pub verdict: Verdict,
    pub summary: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fix: Option<String>,
}

fn finding(check: &'static str, verdict: Verdict, summary: impl Into<String>) -> Finding {
    Finding {
        check,
        verdict,
        summary: summary.into(),
        fix: None,
    }
}

impl Finding {
    fn fix(mut self, fix: impl Into<String>) -> Finding {
        self.fix = Some(fix.into());
        self
    }
}

/// What the public URL answered.
#[derive(Debug, Clone)]
pub struct PublicAnswer {
    pub status: u16,
    pub content_type: String,
    pub date: Option<String>,
    pub body: Option<Value>,
    /// Local unix time (s, fractional) halfway through the request.
    pub local_mid: f64,
}

fn unix_f64() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0)
}

/// `GET {url}/api/v1/health`, with the agent's one-time probe in the query when there is one
/// (so the agent knows a refused signature came through the owner's Worker: `edge_stats`).
fn fetch_public(
    url: &str,
    probe: Option<&(String, String)>,
    timeout: Duration,
) -> Result<PublicAnswer, String> {
    let agent = ureq::AgentBuilder::new()
        .timeout_connect(timeout)
        .timeout(timeout)
        .redirects(0)
        .user_agent(concat!("argus-relay-doctor/", env!("CARGO_PKG_VERSION")))
        .build();
    let mut target = format!("{}/api/v1/health", url.trim_end_matches('/'));
    if let Some((param, value)) = probe {
        target.push_str(&format!("?{param}={value}"));
    }
    let started = unix_f64();
    let resp = match agent.get(&target).call() {
        Ok(r) => r,
        Err(ureq::Error::Status(_, r)) => r,
        Err(ureq::Error::Transport(t)) => {
            let detail = std::error::Error::source(&t)
                .map(|s| s.to_string())
                .or_else(|| t.message().map(str::to_owned))
                .unwrap_or_else(|| t.kind().to_string());
            return Err(format!("{}: {detail}", t.kind()));
        }
    };
    let local_mid = (started + unix_f64()) / 2.0;
    let status = resp.status();
    let content_type = resp.content_type().to_owned();
    let date = resp.header("date").map(str::to_owned);
    let mut bytes = Vec::new();
    let _ = resp
        .into_reader()
        .take(MAX_ANSWER_BYTES)
        .read_to_end(&mut bytes);
    Ok(PublicAnswer {
        status,
        content_type,
        date,
        body: serde_json::from_slice(&bytes).ok(),
        local_mid,
    })
}

fn str_at<'a>(v: &'a Value, path: &[&str]) -> Option<&'a str> {
    path.iter()
        .try_fold(v, |v, k| v.get(k))
        .and_then(Value::as_str)
}

fn rejected(status: Option<&RelayStatus>, reason: &str) -> u64 {
    status
        .and_then(|s| s.edge.rejected.by_reason.get(reason).copied())
        .unwrap_or(0)
}

/// Everything doctor gathered, judged without further I/O (so each verdict is testable).
pub struct Evidence<'a> {
    pub public_url: &'a str,
    pub our_instance: Option<&'a str>,
    pub answer: &'a Result<PublicAnswer, String>,
    pub before: Option<&'a RelayStatus>,
    pub after: Option<&'a RelayStatus>,
}

pub fn judge_public_url(e: &Evidence<'_>) -> Finding {
    const CHECK: &str = "public_url";
    let url = e.public_url;
    let a = match e.answer {
        Err(why) => return finding(
            CHECK,
            Verdict::Fail,
            format!("{url} cannot be reached: {why}"),
        )
        .fix(
            "check that the hostname resolves (DNS at Cloudflare, proxied) and that the Worker \
                 has a route or custom domain for it (`wrangler deploy` with the routes in \
                 wrangler.toml; see docs/deploy.md)",
        ),
        Ok(a) => a,
    };
    let Some(body) = &a.body else {
        return finding(
            CHECK,
            Verdict::Fail,
            format!(
                "{url} answers HTTP {} ({}), which is not the argus-relay Worker",
                a.status,
                if a.content_type.is_empty() {
                    "no content type"
                } else {
                    &a.content_type
                }
            ),
        )
        .fix("deploy the Worker (`wrangler deploy`) and give it a route for this hostname");
    };
    if a.status == 200 && str_at(body, &["service"]) == Some("argus-relay") {
        let theirs = str_at(body, &["instance_id"]).unwrap_or("?");
        return match e.our_instance {
            Some(ours) if ours == theirs => finding(
                CHECK,
                Verdict::Ok,
                format!("{url} answers as this agent (instance {ours}) through the Worker"),
            ),
            Some(ours) => finding(
                CHECK,
                Verdict::Fail,
                format!(
                    "{url} is served by another argus-relay agent (instance {}); this one is {ours}",
                    admin_client::sanitize(theirs)
                ),
            )
            .fix(
                "the Worker's ORIGIN_URL, or the tunnel's hostname, leads to another installation: \
                 point the tunnel's public hostname at this machine's cloudflared and set \
                 ORIGIN_URL to it (`argus-relay worker-config`)",
            ),
            None => finding(
                CHECK,
                Verdict::Warn,
                format!("{url} answers as an argus-relay agent (instance {theirs}); this agent's id is unknown"),
            ),
        };
    }
    if body.get("error").is_some() {
        return finding(
            CHECK,
            Verdict::Ok,
            format!(
                "{url} is served by the argus-relay Worker (it answered HTTP {})",
                a.status
            ),
        );
    }
    finding(
        CHECK,
        Verdict::Fail,
        format!(
            "{url} answers HTTP {} with JSON that is not argus-relay's",
            a.status
        ),
    )
    .fix("the hostname is routed to something else: give the Worker the route")
}

pub fn judge_edge_signature(e: &Evidence<'_>) -> Finding {
    const CHECK: &str = "edge_signature";
    let Ok(a) = e.answer else {
        return finding(
            CHECK,
            Verdict::Skip,
            "not checked: the public URL cannot be reached",
        );
    };
    let Some(body) = &a.body else {
        return finding(
            CHECK,
            Verdict::Skip,
            "not checked: the public URL is not the Worker",
        );
    };
    let signed = |s: Option<&RelayStatus>| s.map(|s| s.edge.signed_requests);
    if a.status == 200 && str_at(body, &["service"]) == Some("argus-relay") {
        if e.our_instance.is_some() && str_at(body, &["instance_id"]) != e.our_instance {
            return finding(
                CHECK,
                Verdict::Skip,
                "not checked: the public URL reaches another agent",
            );
        }
        return match (signed(e.before), signed(e.after)) {
            (Some(b), Some(a)) if a > b => finding(
                CHECK,
                Verdict::Ok,
                "the Worker signed the request with this agent's secret and the agent accepted it \
                 (phone → Worker → tunnel → agent works)",
            ),
            (Some(_), Some(_)) => finding(
                CHECK,
                Verdict::Warn,
                "the answer carries this agent's identity, but the agent counted no signed request",
            )
            .fix("is the public URL routed to the agent without the Worker? It should be the Worker's route"),
            _ => finding(
                CHECK,
                Verdict::Ok,
                "the agent answered through the tunnel, so it accepted the Worker's signature",
            ),
        };
    }
    let code = str_at(body, &["error", "code"]).unwrap_or("");
    let reason = str_at(body, &["error", "reason"]).unwrap_or("");
    match code {
        "invalid_signature" => {
            let counted = |r: &str| rejected(e.after, r).saturating_sub(rejected(e.before, r));
            let seen = if e.after.is_some() && counted(reason) > 0 {
                " (this agent counted it)"
            } else {
                ""
            };
            match reason {
                "signature.mismatch" => finding(
                    CHECK,
                    Verdict::Fail,
                    format!("the Worker signs requests with a different secret than this agent's{seen}"),
                )
                .fix(
                    "store this agent's secret in the Worker: `argus-relay worker-config` prints it; \
                     then `printf %s SECRET | npx wrangler secret put RELAY_SIGNING_SECRET`",
                ),
                "signature.stale" => finding(
                    CHECK,
                    Verdict::Fail,
                    format!("the agent refused the Worker's request as too old or too new{seen}"),
                )
                .fix("this machine's clock is off: enable time sync (`timedatectl set-ntp true`)"),
                "signature.missing" => finding(
                    CHECK,
                    Verdict::Fail,
                    format!("requests reach the agent without the Worker's signature{seen}"),
                )
                .fix(
                    "the public URL leads to the tunnel directly: public_url must be the Worker's \
                     route, and only the Worker's ORIGIN_URL the tunnel's hostname",
                ),
                other => finding(
                    CHECK,
                    Verdict::Fail,
                    format!("the agent refused the Worker's signature ({other}){seen}"),
                )
                .fix("redeploy the Worker from this release and set its secret again (`argus-relay worker-config`)"),
            }
        }
        "unavailable" if reason == "signature.replayed" => finding(
            CHECK,
            Verdict::Warn,
            "the probe was cut off between the edge and this agent and arrived twice",
        )
        .fix("run `argus-relay doctor` again; if it repeats, the tunnel is dropping connections (see `argus-relay status`)"),
        "unavailable" if reason.starts_with("config.") => finding(
            CHECK,
            Verdict::Fail,
            format!(
                "the Worker is not configured: its setting {} is missing or invalid",
                reason.trim_start_matches("config.").to_ascii_uppercase()
            ),
        )
        .fix("set the Worker's vars and secret as `argus-relay worker-config` prints them, then `wrangler deploy`"),
        "unavailable" | "bad_gateway" => finding(
            CHECK,
            Verdict::Fail,
            "the Worker answers but cannot reach the agent through the tunnel",
        )
        .fix(
            "check the tunnel (below), and that the Worker's ORIGIN_URL is https://<the tunnel's \
             public hostname> (`argus-relay worker-config`)",
        ),
        _ => finding(
            CHECK,
            Verdict::Warn,
            format!(
                "the Worker refused the check: HTTP {} {code} {reason}",
                a.status
            ),
        )
        .fix("a policy or rate limit at the edge refused this machine; run doctor again later or from an allowed network"),
    }
}

pub fn judge_clock(e: &Evidence<'_>) -> Finding {
    const CHECK: &str = "clock";
    let fix = "enable time sync on this machine (`timedatectl set-ntp true`, or chrony)";
    let Ok(a) = e.answer else {
        return finding(
            CHECK,
            Verdict::Skip,
            "not checked: the public URL cannot be reached",
        );
    };
    let stale = a
        .body
        .as_ref()
        .and_then(|b| str_at(b, &["error", "reason"]))
        == Some("signature.stale");
    let Some(remote) = a
        .date
        .as_deref()
        .and_then(|d| httpdate::parse_http_date(d).ok())
        .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
    else {
        if stale {
            return finding(
                CHECK,
                Verdict::Fail,
                "the agent refused the edge's timestamps",
            )
            .fix(fix);
        }
        return finding(
            CHECK,
            Verdict::Skip,
            "not checked: the answer has no Date header",
        );
    };
    // Date has whole seconds: compare with the middle of our request, allowing the rounding.
    let skew = (remote.as_secs() as f64 + 0.5 - a.local_mid).round() as i64;
    let summary = match skew {
        0 => "this machine's clock agrees with the edge's".to_owned(),
        s if s > 0 => format!("this machine's clock is {s} s behind the edge's"),
        s => format!("this machine's clock is {} s ahead of the edge's", -s),
    };
    if stale || skew.abs() > SKEW_FAIL {
        finding(
            CHECK,
            Verdict::Fail,
            format!("{summary}; edge signatures are valid for ±60 s only"),
        )
        .fix(fix)
    } else if skew.abs() > SKEW_OK {
        finding(CHECK, Verdict::Warn, summary).fix(fix)
    } else {
        finding(CHECK, Verdict::Ok, summary)
    }
}

pub fn judge_tunnel(status: Option<&RelayStatus>) -> Finding {
    const CHECK: &str = "tunnel";
    let Some(s) = status else {
        return finding(
            CHECK,
            Verdict::Skip,
            "not checked: the agent is not reachable",
        );
    };
    let tunnel = &s.tunnel;
    let monitoring = &*tunnel.monitoring;
    if monitoring == "none" {
        return finding(
            CHECK,
            Verdict::Warn,
            "the agent does not watch cloudflared, so it cannot restart it or tell whether the tunnel is up",
        )
        .fix("set it up: `argus-relay tunnel config --tunnel-token …` (or --tunnel-id …, or --observe-only)");
    }
    if tunnel.provider.as_deref() == Some("rathole") {
        return judge_rathole(tunnel, monitoring);
    }
    if tunnel.connected == Some(true) {
        return finding(
            CHECK,
            Verdict::Ok,
            format!(
                "cloudflared is connected ({} edge connections, up {} s; {} reconnects, {} restarts)",
                tunnel.ready_connections,
                tunnel.uptime_secs.unwrap_or(0),
                tunnel.reconnects,
                tunnel.restarts
            ),
        );
    }
    let last = tunnel.last_error.as_ref().map_or("", |e| &e.message);
    let mut summary = format!("the tunnel is {} ({monitoring})", tunnel.state);
    if !last.is_empty() {
        summary.push_str(&format!("; last error: {}", admin_client::sanitize(last)));
    }
    let fix = if last.contains("could not be started") && last.contains("in use") {
        "another program (a cloudflared started by hand or by its own service?) holds cloudflared's \
         metrics address: stop it (`systemctl disable --now cloudflared`) or set another \
         cloudflared.metrics"
    } else if last.contains("could not be started") {
        "install cloudflared (see docs/deploy.md) or set cloudflared.binary to its path"
    } else if last.contains("(hung)") {
        "cloudflared stopped answering and is being restarted; if it keeps happening, update cloudflared"
    } else if last.contains("exited") {
        "cloudflared keeps exiting: its last error is above (wrong or revoked token? \
         `cloudflared tunnel --config FILE ingress validate` for a config file); the agent's log \
         has cloudflared's own lines (`journalctl -u argus-relay`)"
    } else if monitoring == "observed" {
        "start cloudflared with `--metrics` set to cloudflared.metrics (`systemctl start cloudflared`)"
    } else {
        "cloudflared runs but reaches no Cloudflare edge: check the tunnel token or credentials, and \
         that this machine may connect out to Cloudflare on port 7844 (UDP and TCP)"
    };
    finding(CHECK, Verdict::Fail, summary).fix(fix)
}

/// The tunnel check for the self-hosted relay's rathole.
fn judge_rathole(tunnel: &TunnelView, monitoring: &str) -> Finding {
    const CHECK: &str = "tunnel";
    if tunnel.connected == Some(true) {
        return finding(
            CHECK,
            Verdict::Ok,
            format!(
                "rathole is connected to the relay server {} (up {} s; {} reconnects, {} restarts)",
                admin_client::sanitize(tunnel.hostname.as_deref().unwrap_or("")),
                tunnel.uptime_secs.unwrap_or(0),
                tunnel.reconnects,
                tunnel.restarts
            ),
        );
    }
    let last = tunnel.last_error.as_ref().map_or("", |e| &e.message);
    let mut summary = format!(
        "the tunnel is {} ({}, rathole)",
        admin_client::sanitize(&tunnel.state),
        admin_client::sanitize(monitoring)
    );
    if !last.is_empty() {
        summary.push_str(&format!("; last error: {}", admin_client::sanitize(last)));
    }
    let fix = if last.contains("could not be started") {
        "install rathole (`cargo install rathole --version 0.5.0`, see docs/selfhost.md) or set \
         rathole.binary to its path"
    } else if last.contains("Noise handshake") {
        "the relay server's key is not the one this agent pins: put the server's public key (the \
         one `argus-relay selfhost init` printed, or `rathole --genkey`'s public half of the \
         server's local_private_key) into [rathole].server_public_key and restart the agent; the \
         agent will not connect to a server whose key differs"
    } else if last.contains("service token") {
        "set [rathole].token to the token of the service in the VPS's rathole.toml, then restart \
         the agent"
    } else {
        "rathole runs but reaches no relay server: check [rathole].server, that rathole runs on \
         the VPS (`systemctl status argus-rathole`) and that its port is open to this machine"
    };
    finding(CHECK, Verdict::Fail, summary).fix(fix)
}

pub fn judge_agent(status: &Result<RelayStatus, CliError>) -> Finding {
    const CHECK: &str = "agent";
    match status {
        Ok(s) => finding(
            CHECK,
            Verdict::Ok,
            format!(
                "the agent runs (version {}, up {} s, {} paired devices)",
                s.versions.agent, s.uptime_secs, s.devices.paired
            ),
        ),
        Err(e) => finding(CHECK, Verdict::Fail, format!("{e}"))
            .fix("start the agent: `systemctl start argus-relay` (or `argus-relay run`)"),
    }
}

/// `GET {backend}/health`, then, if an API key is configured, `GET /api/v1/events?limit=1` with it
/// (one bcrypt on ArgusAI's side; the key is only the fallback of the session).
pub fn check_backend(cfg: &AgentConfig, timeout: Duration) -> Finding {
    const CHECK: &str = "backend";
    let base = cfg.backend.url.trim_end_matches('/');
    let agent = ureq::AgentBuilder::new()
        .timeout_connect(timeout)
        .timeout(timeout)
        .redirects(0)
        .user_agent(crate::domain::proxy::backend::BACKEND_USER_AGENT)
        .build();
    let status_of = |r: Result<ureq::Response, ureq::Error>| match r {
        Ok(r) => Ok(r.status()),
        Err(ureq::Error::Status(s, _)) => Ok(s),
        Err(ureq::Error::Transport(t)) => Err(t.to_string()),
    };
    match status_of(agent.get(&format!("{base}/health")).call()) {
        Err(why) => {
            return finding(
                CHECK,
                Verdict::Fail,
                format!("ArgusAI at {base} does not answer: {why}"),
            )
            .fix("start ArgusAI, or correct backend.url in the agent's configuration")
        }
        Ok(s) if !(200..300).contains(&s) => {
            return finding(
                CHECK,
                Verdict::Fail,
                format!("ArgusAI at {base} answers its health check with HTTP {s}"),
            )
            .fix("look at ArgusAI's own logs")
        }
        Ok(_) => {}
    }
    let Some(key) = &cfg.backend.api_key else {
        return finding(CHECK, Verdict::Ok, format!("ArgusAI at {base} is healthy"));
    };
    let req = agent
        .get(&format!("{base}/api/v1/events?limit=1"))
        .set(argus_shared::headers::X_API_KEY, key);
    match status_of(req.call()) {
        Ok(200) => finding(
            CHECK,
            Verdict::Ok,
            format!(
                "ArgusAI at {base} is healthy and accepts the agent's API key (the fallback while \
                 the agent has no session)"
            ),
        ),
        Ok(401 | 403) => finding(
            CHECK,
            Verdict::Fail,
            "ArgusAI refuses the agent's API key (backend.api_key)",
        )
        .fix(
            "remove backend.api_key (the agent's session, `argus-relay backend login`, replaces \
             it) or set a valid key",
        ),
        Ok(s) => finding(
            CHECK,
            Verdict::Warn,
            format!("ArgusAI is healthy, but listing events answers HTTP {s}"),
        ),
        Err(why) => finding(
            CHECK,
            Verdict::Warn,
            format!("ArgusAI is healthy, but listing events failed: {why}"),
        ),
    }
}

/// The agent's ArgusAI session: from the running agent's status (`backend.session`), else from
/// the store (the agent is not running).
pub fn judge_backend_session(status: Option<&RelayStatus>, cfg: &AgentConfig) -> Finding {
    const CHECK: &str = "backend_session";
    const FIX: &str = "run `argus-relay backend login` (as the user the agent runs as)";
    let Some(session) = status.and_then(|s| s.backend.session.as_ref()) else {
        // No running agent to ask: what the store says.
        let stored = Store::open(cfg.database_path()).and_then(|s| s.backend_session());
        return match stored {
            Ok(None) => finding(
                CHECK,
                Verdict::Fail,
                "the agent is not signed in to ArgusAI",
            )
            .fix(FIX),
            Ok(Some(s)) => match s.refused {
                Some((_, why)) => finding(CHECK, Verdict::Fail, why).fix(FIX),
                None => finding(
                    CHECK,
                    Verdict::Skip,
                    format!(
                        "signed in to ArgusAI as {} (not checked: the agent is not running)",
                        s.username
                    ),
                ),
            },
            Err(e) => finding(CHECK, Verdict::Skip, format!("not checked: database: {e}")),
        };
    };
    let user = session.username.as_deref().unwrap_or("?");
    let problem = session.problem.clone().unwrap_or_default();
    match session.state {
        SessionState::Active => finding(
            CHECK,
            Verdict::Ok,
            format!(
                "signed in to ArgusAI as {user} (role {}); the access token expires in {} s and is \
                 renewed ahead of that",
                session.role.as_deref().unwrap_or("unknown"),
                session.access_expires_in_secs.unwrap_or(0)
            ),
        ),
        SessionState::Starting => finding(
            CHECK,
            Verdict::Warn,
            format!("signed in to ArgusAI as {user}; the first renewal has not finished yet"),
        ),
        SessionState::Expiring => finding(CHECK, Verdict::Warn, problem)
            .fix("check that ArgusAI runs; if it keeps refusing, run `argus-relay backend login`"),
        SessionState::Refused => finding(CHECK, Verdict::Fail, problem).fix(FIX),
        SessionState::Missing => finding(
            CHECK,
            Verdict::Fail,
            "the agent is not signed in to ArgusAI: push \
             registration and ArgusAI's other user-only routes fail",
        )
        .fix(FIX),
    }
}

pub fn check_policy(file: Option<&std::path::Path>) -> Finding {
    const CHECK: &str = "policy";
    let Some(file) = file else {
        return finding(
            CHECK,
            Verdict::Skip,
            "not checked: pass --policy FILE to check the policy you deploy as POLICY",
        );
    };
    match std::fs::read_to_string(file) {
        Err(e) => finding(CHECK, Verdict::Fail, format!("cannot read {}: {e}", file.display())),
        Ok(text) => match argus_shared::policy::Policy::from_toml(&text) {
            Ok(_) => finding(CHECK, Verdict::Ok, format!("{} is a valid policy", file.display())),
            Err(e) => finding(CHECK, Verdict::Fail, format!("{}: {e}", file.display()))
                .fix("correct the file (docs/policy.md), check it with `argus-relay policy check`, then deploy it"),
        },
    }
}

fn our_instance_id(cfg: &AgentConfig) -> Option<String> {
    let path = cfg.database_path();
    if !path.exists() {
        return None;
    }
    let store = Store::open(path).ok()?;
    store
        .get_secret(SECRET_INSTANCE_ID)
        .ok()
        .flatten()
        .map(|b| String::from_utf8_lossy(&b).into_owned())
}

fn mark(v: Verdict) -> &'static str {
    match v {
        Verdict::Ok => "ok  ",
        Verdict::Warn => "WARN",
        Verdict::Fail => "FAIL",
        Verdict::Skip => "--  ",
    }
}

pub fn human(findings: &[Finding]) -> String {
    let mut out = String::from("argus-relay doctor: from the outside in\n\n");
    for f in findings {
        out.push_str(&format!(
            "[{}] {:<15} {}\n",
            mark(f.verdict),
            f.check,
            f.summary
        ));
        if let Some(fix) = &f.fix {
            out.push_str(&format!("       {:<15} fix: {fix}\n", ""));
        }
    }
    let fails = findings
        .iter()
        .filter(|f| f.verdict == Verdict::Fail)
        .count();
    out.push_str(&match fails {
        0 => "\nNo problems found.\n".to_owned(),
        1 => "\n1 problem to fix.\n".to_owned(),
        n => format!("\n{n} problems to fix (the innermost failing check is often the cause of the others).\n"),
    });
    out
}

pub fn doctor(args: DoctorArgs) -> Result<(), CliError> {
    let cfg = AgentConfig::load(&args.config.config)?;
    let timeout = Duration::from_secs(args.timeout.clamp(1, 120));
    let our_instance = our_instance_id(&cfg);
    let admin = AdminClient::from_config(&cfg);
    let admin_status = || match &admin {
        Ok(client) => client.relay_status(),
        Err(e) => Err(CliError::Failed(e.to_string())),
    };
    let before = admin_status();
    let public_url = args
        .public_url
        .clone()
        .unwrap_or_else(|| cfg.public_url.clone());
    let probe = admin
        .as_ref()
        .ok()
        .and_then(|client| client.post("/admin/doctor-probes", None).ok())
        .and_then(|v| {
            let param = v.get("param")?.as_str()?;
            let value = v.get("probe")?.as_str()?;
            // Only what needs no escaping in a query.
            let plain = |s: &str| {
                !s.is_empty()
                    && s.bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
            };
            (plain(param) && plain(value)).then(|| (param.to_owned(), value.to_owned()))
        });
    let answer = fetch_public(&public_url, probe.as_ref(), timeout);
    let after = admin_status();
    let evidence = Evidence {
        public_url: &public_url,
        our_instance: our_instance.as_deref(),
        answer: &answer,
        before: before.as_ref().ok(),
        after: after.as_ref().ok(),
    };
    let findings = vec![
        judge_public_url(&evidence),
        judge_edge_signature(&evidence),
        judge_clock(&evidence),
        judge_tunnel(after.as_ref().ok()),
        judge_agent(&after),
        check_backend(&cfg, timeout),
        judge_backend_session(after.as_ref().ok(), &cfg),
        check_policy(args.policy.as_deref()),
    ];
    let fails = findings
        .iter()
        .filter(|f| f.verdict == Verdict::Fail)
        .count();
    if args.json {
        admin_client::print_json(&serde_json::json!({
            "ok": fails == 0,
            "findings": findings,
        }))?;
    } else {
        print!("{}", human(&findings));
    }
    if fails > 0 {
        return Err(CliError::Failed(format!(
            "doctor found {fails} problem{}",
            if fails == 1 { "" } else { "s" }
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn answer(status: u16, body: Value, date_offset: i64) -> Result<PublicAnswer, String> {
        let now = SystemTime::now();
        let date = if date_offset >= 0 {
            now + Duration::from_secs(date_offset as u64)
        } else {
            now - Duration::from_secs((-date_offset) as u64)
        };
        Ok(PublicAnswer {
            status,
            content_type: "application/json".into(),
            date: Some(httpdate::fmt_http_date(date)),
            body: Some(body),
            local_mid: unix_f64(),
        })
    }

    fn ev<'a>(
        a: &'a Result<PublicAnswer, String>,
        before: Option<&'a RelayStatus>,
        after: Option<&'a RelayStatus>,
    ) -> Evidence<'a> {
        Evidence {
            public_url: "https://relay.example.com",
            our_instance: Some("abc"),
            answer: a,
            before,
            after,
        }
    }

    #[test]
    fn clock_skew_verdicts() {
        for (offset, verdict) in [
            (0, Verdict::Ok),
            (5, Verdict::Ok),
            (-20, Verdict::Warn),
            (300, Verdict::Fail),
            (-90, Verdict::Fail),
        ] {
            let a = answer(200, serde_json::json!({}), offset);
            let f = judge_clock(&ev(&a, None, None));
            assert_eq!(f.verdict, verdict, "{offset}: {}", f.summary);
        }
        let a = answer(200, serde_json::json!({}), 300);
        let f = judge_clock(&ev(&a, None, None));
        assert!(f.summary.contains("behind"), "{}", f.summary);
    }

    #[test]
    fn signature_mismatch_is_named() {
        let a = answer(
            401,
            serde_json::json!({"error": {"code": "invalid_signature", "reason": "signature.mismatch", "message": "x", "request_id": "r"}}),
            0,
        );
        let mut before = RelayStatus::example();
        before.edge.signed_requests = 3;
        let mut after = before.clone();
        after
            .edge
            .rejected
            .by_reason
            .insert("signature.mismatch".into(), 1);
        let f = judge_edge_signature(&ev(&a, Some(&before), Some(&after)));
        assert_eq!(f.verdict, Verdict::Fail);
        assert!(f.summary.contains("different secret"), "{}", f.summary);
        assert!(f.summary.contains("counted"), "{}", f.summary);
        assert!(f
            .fix
            .unwrap()
            .contains("wrangler secret put RELAY_SIGNING_SECRET"));
        assert_eq!(judge_public_url(&ev(&a, None, None)).verdict, Verdict::Ok);
    }

    #[test]
    fn another_instance_is_not_us() {
        let a = answer(
            200,
            serde_json::json!({"service": "argus-relay", "instance_id": "zzz"}),
            0,
        );
        let f = judge_public_url(&ev(&a, None, None));
        assert_eq!(f.verdict, Verdict::Fail);
        assert!(
            f.summary.contains("another argus-relay agent"),
            "{}",
            f.summary
        );
    }

    #[test]
    fn unreachable_and_foreign_answers() {
        let a: Result<PublicAnswer, String> = Err("Dns Failed: failed to lookup address".into());
        assert_eq!(judge_public_url(&ev(&a, None, None)).verdict, Verdict::Fail);
        assert_eq!(
            judge_edge_signature(&ev(&a, None, None)).verdict,
            Verdict::Skip
        );
        assert_eq!(judge_clock(&ev(&a, None, None)).verdict, Verdict::Skip);
        let mut html = answer(404, Value::Null, 0).unwrap();
        html.body = None;
        html.content_type = "text/html".into();
        let html = Ok(html);
        let f = judge_public_url(&ev(&html, None, None));
        assert_eq!(f.verdict, Verdict::Fail);
        assert!(
            f.summary.contains("not the argus-relay Worker"),
            "{}",
            f.summary
        );
    }

    #[test]
    fn rathole_verdicts_say_why() {
        let mut s = RelayStatus::example();
        s.tunnel.provider = Some("rathole".into());
        s.tunnel.monitoring = "supervised".into();
        s.tunnel.state = "connected".into();
        s.tunnel.connected = Some(true);
        s.tunnel.hostname = Some("relay.example.org:2333".into());
        let f = judge_tunnel(Some(&s));
        assert_eq!(f.verdict, Verdict::Ok);
        assert!(
            f.summary.contains("relay.example.org:2333"),
            "{}",
            f.summary
        );
        s.tunnel.state = "connecting".into();
        s.tunnel.connected = Some(false);
        s.tunnel.last_error = Some(crate::domain::tunnel::ErrorView {
            message: crate::domain::tunnel::rathole::explain(
                "Failed to do noise handshake: early eof",
            ),
            at: 1,
            secs_ago: 1,
        });
        let f = judge_tunnel(Some(&s));
        assert_eq!(f.verdict, Verdict::Fail);
        assert!(f.summary.contains("server_public_key"), "{}", f.summary);
        assert!(f.fix.unwrap().contains("will not connect"));
    }

    #[test]
    fn tunnel_verdicts() {
        let mut s = RelayStatus::example();
        assert_eq!(s.tunnel.monitoring, "none");
        assert_eq!(judge_tunnel(Some(&s)).verdict, Verdict::Warn);
        s.tunnel.monitoring = "supervised".into();
        s.tunnel.state = "connected".into();
        s.tunnel.connected = Some(true);
        assert_eq!(judge_tunnel(Some(&s)).verdict, Verdict::Ok);
        s.tunnel.state = "backoff".into();
        s.tunnel.connected = Some(false);
        s.tunnel.last_error = Some(crate::domain::tunnel::ErrorView {
            message: "cloudflared could not be started: cannot run \"cloudflared\": No such file or directory".into(),
            at: 1,
            secs_ago: 1,
        });
        let f = judge_tunnel(Some(&s));
        assert_eq!(f.verdict, Verdict::Fail);
        assert!(f.fix.unwrap().contains("install cloudflared"));
    }

    #[test]
    fn a_status_of_another_shape_fails_loudly() {
        let mut v = serde_json::to_value(RelayStatus::example()).unwrap();
        assert_eq!(
            admin_client::parse_relay_status(v.clone()).unwrap(),
            RelayStatus::example()
        );
        // A renamed field, a wrong type, a state this doctor does not know.
        let renamed = v["devices"]
            .as_object_mut()
            .unwrap()
            .remove("paired")
            .unwrap();
        v["devices"]["paired_devices"] = renamed;
        let mut wrong_type = serde_json::to_value(RelayStatus::example()).unwrap();
        wrong_type["uptime_secs"] = "an hour".into();
        let mut unknown_state = serde_json::to_value(RelayStatus::example()).unwrap();
        unknown_state["backend"]["session"] = serde_json::json!({
            "state": "sleeping", "username": null, "role": null, "signed_in_at": null,
            "access_expires_in_secs": null, "last_renewed_secs_ago": null, "refreshes": 0,
            "last_error": null, "problem": null
        });
        for bad in [v, wrong_type, unknown_state] {
            let err = admin_client::parse_relay_status(bad).unwrap_err();
            assert!(err.to_string().contains("does not understand"), "{err}");
            let f = judge_agent(&Err(err));
            assert_eq!(f.verdict, Verdict::Fail);
        }
    }
}
