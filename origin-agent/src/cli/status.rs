//! `argus-relay status`: the running agent's own account of itself (`GET /admin/status`), for a
//! person, or as JSON.

use serde_json::Value;

use super::admin_client::{self, AdminClient};
use super::CliError;

#[derive(Debug, clap::Args)]
pub struct StatusArgs {
    #[command(flatten)]
    pub config: super::ConfigArg,
    /// Print the status document as JSON.
    #[arg(long)]
    pub json: bool,
}

fn s<'a>(v: &'a Value, path: &[&str]) -> Option<&'a Value> {
    path.iter().try_fold(v, |v, k| v.get(k))
}

fn text(v: &Value, path: &[&str]) -> String {
    match s(v, path) {
        Some(Value::String(x)) => admin_client::sanitize(x),
        Some(Value::Null) | None => "-".into(),
        Some(other) => other.to_string(),
    }
}

fn num(v: &Value, path: &[&str]) -> Option<u64> {
    s(v, path).and_then(Value::as_u64)
}

fn duration(secs: u64) -> String {
    match secs {
        0..=119 => format!("{secs} s"),
        120..=7199 => format!("{} min", secs / 60),
        7200..=172_799 => format!("{} h {} min", secs / 3600, secs % 3600 / 60),
        _ => format!("{} days", secs / 86_400),
    }
}

/// A few lines for a person.
pub fn human(v: &Value) -> String {
    let mut out = format!(
        "argus-relay {} (instance {}), up {}: {}\n",
        text(v, &["versions", "agent"]),
        text(v, &["instance_id"]),
        duration(num(v, &["uptime_secs"]).unwrap_or(0)),
        text(v, &["status"]),
    );
    let t = |k: &str| text(v, &["tunnel", k]);
    let tunnel = match t("monitoring").as_str() {
        "none" => {
            "not watched (no [cloudflared] or [rathole] section; see `argus-relay tunnel config` \
             or `argus-relay selfhost init`)"
                .to_owned()
        }
        mode => {
            let mut line = t("state");
            let rathole = t("provider") == "rathole";
            if rathole && s(v, &["tunnel", "connected"]) == Some(&Value::Bool(true)) {
                line.push_str(&format!(
                    " (to the relay server {}, up {})",
                    t("hostname"),
                    duration(num(v, &["tunnel", "uptime_secs"]).unwrap_or(0))
                ));
            } else if s(v, &["tunnel", "connected"]) == Some(&Value::Bool(true)) {
                line.push_str(&format!(
                    " ({} connections, connector {}, up {})",
                    t("ready_connections"),
                    t("connector_id"),
                    duration(num(v, &["tunnel", "uptime_secs"]).unwrap_or(0))
                ));
            }
            if let Some(ms) = num(v, &["tunnel", "next_attempt_in_ms"]) {
                line.push_str(&format!(", next attempt in {:.1} s", ms as f64 / 1000.0));
            }
            let program = if rathole {
                "rathole".to_owned()
            } else {
                format!("cloudflared {}", t("cloudflared_version"))
            };
            line.push_str(&format!(
                "; {} reconnects, {} restarts [{mode}, {program}, pid {}]",
                t("reconnects"),
                t("restarts"),
                text(v, &["tunnel", "process", "pid"]),
            ));
            if let Some(e) = s(v, &["tunnel", "last_error", "message"]).and_then(Value::as_str) {
                line.push_str(&format!(
                    "\n          last error {} ago: {}",
                    duration(num(v, &["tunnel", "last_error", "secs_ago"]).unwrap_or(0)),
                    admin_client::sanitize(e)
                ));
            }
            line
        }
    };
    out.push_str(&format!("Tunnel:   {tunnel}\n"));
    let edge = match num(v, &["edge", "last_request_secs_ago"]) {
        Some(ago) => format!("last signed request {} ago", duration(ago)),
        None => "no signed request yet".into(),
    };
    out.push_str(&format!(
        "Edge:     {edge}; {} accepted, {} refused\n",
        text(v, &["edge", "signed_requests"]),
        text(v, &["edge", "rejected", "total"])
    ));
    let backend = if s(v, &["backend", "reachable"]) == Some(&Value::Bool(true)) {
        format!(
            "answers (HTTP {}, {} ms)",
            text(v, &["backend", "status"]),
            text(v, &["backend", "latency_ms"])
        )
    } else {
        "does not answer".into()
    };
    out.push_str(&format!("Backend:  {backend}\n"));
    out.push_str(&format!("Session:  {}\n", session_line(v)));
    out.push_str(&format!(
        "Devices:  {} paired\nKeys:     signing {}\n",
        text(v, &["devices", "paired"]),
        text(v, &["keys", "signing_kid"])
    ));
    if let Some(problems) = v.get("problems").and_then(Value::as_array) {
        if !problems.is_empty() {
            out.push_str("Problems:\n");
            for p in problems.iter().filter_map(Value::as_str) {
                out.push_str(&format!("  - {}\n", admin_client::sanitize(p)));
            }
        }
    }
    if let Some(notes) = v.get("notes").and_then(Value::as_array) {
        if !notes.is_empty() {
            out.push_str("Notes:\n");
            for n in notes.iter().filter_map(Value::as_str) {
                out.push_str(&format!("  - {}\n", admin_client::sanitize(n)));
            }
        }
    }
    out
}

/// The agent's ArgusAI session in a line (`backend.session` of the status).
fn session_line(v: &Value) -> String {
    let state = text(v, &["backend", "session", "state"]);
    let user = text(v, &["backend", "session", "username"]);
    let line = match state.as_str() {
        "active" => format!(
            "signed in to ArgusAI as {user}; access token expires in {}",
            duration(num(v, &["backend", "session", "access_expires_in_secs"]).unwrap_or(0))
        ),
        "starting" => format!("signed in to ArgusAI as {user}; first renewal in progress"),
        "missing" => "not signed in to ArgusAI: run `argus-relay backend login`".into(),
        "refused" => {
            format!("ArgusAI refused the session of {user}: run `argus-relay backend login`")
        }
        "expiring" => format!(
            "signed in as {user}, but renewing fails: {}",
            text(v, &["backend", "session", "last_error"])
        ),
        _ => "unknown (an older agent?)".into(),
    };
    match s(v, &["backend", "credential"]).and_then(Value::as_str) {
        Some("api_key") => format!("{line} [sending the API key meanwhile]"),
        _ => line,
    }
}

pub fn status(args: StatusArgs) -> Result<(), CliError> {
    let client = AdminClient::from_config_file(&args.config.config)?;
    let v = client.get("/admin/status")?;
    if args.json {
        admin_client::print_json(&v)
    } else {
        print!("{}", human(&v));
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn human_lines() {
        let v = serde_json::json!({
            "status": "degraded", "problems": ["the tunnel is not connected (state: backoff)"],
            "instance_id": "abcd", "uptime_secs": 4000,
            "tunnel": {"monitoring": "supervised", "state": "backoff", "connected": false,
                       "ready_connections": 0, "reconnects": 2, "restarts": 3,
                       "next_attempt_in_ms": 1500, "cloudflared_version": null,
                       "last_error": {"message": "cloudflared exited (exit status 1)", "at": 1, "secs_ago": 4},
                       "process": {"pid": null, "metrics": "127.0.0.1:20241"}},
            "edge": {"last_request_secs_ago": null, "signed_requests": 0, "rejected": {"total": 0}},
            "backend": {"reachable": true, "status": 200, "latency_ms": 2, "credential": "api_key",
                        "session": {"state": "missing"}},
            "devices": {"paired": 1}, "keys": {"signing_kid": "k1"},
            "versions": {"agent": "0.1.0"},
            "notes": ["2 requests without a valid edge signature reached the tunnel"]
        });
        let h = human(&v);
        assert!(h.contains("up 66 min: degraded"), "{h}");
        assert!(
            h.contains("Tunnel:   backoff, next attempt in 1.5 s; 2 reconnects, 3 restarts"),
            "{h}"
        );
        assert!(h.contains("last error 4 s ago: cloudflared exited"), "{h}");
        assert!(h.contains("  - the tunnel is not connected"), "{h}");
        assert!(
            h.contains("Notes:\n  - 2 requests without a valid edge signature"),
            "{h}"
        );
        assert!(
            h.contains("Session:  not signed in to ArgusAI: run `argus-relay backend login` [sending the API key meanwhile]"),
            "{h}"
        );
    }

    #[test]
    fn a_rathole_tunnel_names_its_relay_server() {
        let v = serde_json::json!({
            "status": "ok", "instance_id": "abcd", "uptime_secs": 60,
            "tunnel": {"provider": "rathole", "monitoring": "supervised", "state": "connected",
                       "connected": true, "uptime_secs": 59, "reconnects": 1, "restarts": 0,
                       "hostname": "relay.example.org:2333", "process": {"pid": 42}},
            "edge": {"last_request_secs_ago": null, "signed_requests": 0, "rejected": {"total": 0}},
            "backend": {"reachable": true, "status": 200, "latency_ms": 2},
            "devices": {"paired": 1}, "keys": {"signing_kid": "k1"}, "versions": {"agent": "0.1.0"}
        });
        let h = human(&v);
        assert!(
            h.contains(
                "Tunnel:   connected (to the relay server relay.example.org:2333, up 59 s); \
                 1 reconnects, 0 restarts [supervised, rathole, pid 42]"
            ),
            "{h}"
        );
    }
}
