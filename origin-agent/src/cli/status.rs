//! `argus-relay status`: the running agent's own account of itself (`GET /admin/status`), for a
//! person, or as JSON.

use super::admin_client::{self, AdminClient};
use super::CliError;
use crate::application::handlers::status::{BackendStatus, Credential, Health, RelayStatus};
use crate::domain::proxy::backend_session::SessionState;

#[derive(Debug, clap::Args)]
pub struct StatusArgs {
    #[command(flatten)]
    pub config: super::ConfigArg,
    /// Print the status document as JSON.
    #[arg(long)]
    pub json: bool,
}

/// An optional value for a person: `-` when absent.
fn or_dash(v: Option<impl std::fmt::Display>) -> String {
    v.map_or_else(|| "-".into(), |v| admin_client::sanitize(&v.to_string()))
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
pub fn human(v: &RelayStatus) -> String {
    let mut out = format!(
        "argus-relay {} (instance {}), up {}: {}\n",
        admin_client::sanitize(&v.versions.agent),
        admin_client::sanitize(&v.instance_id),
        duration(v.uptime_secs),
        match v.status {
            Health::Ok => "ok",
            Health::Degraded => "degraded",
        },
    );
    let t = &v.tunnel;
    let tunnel = match &*t.monitoring {
        "none" => {
            "not watched (no [cloudflared] or [rathole] section; see `argus-relay tunnel config` \
             or `argus-relay selfhost init`)"
                .to_owned()
        }
        mode => {
            let mut line = admin_client::sanitize(&t.state);
            let rathole = t.provider.as_deref() == Some("rathole");
            if rathole && t.connected == Some(true) {
                line.push_str(&format!(
                    " (to the relay server {}, up {})",
                    admin_client::sanitize(t.hostname.as_deref().unwrap_or("")),
                    duration(t.uptime_secs.unwrap_or(0))
                ));
            } else if t.connected == Some(true) {
                line.push_str(&format!(
                    " ({} connections, connector {}, up {})",
                    t.ready_connections,
                    or_dash(t.connector_id.as_deref()),
                    duration(t.uptime_secs.unwrap_or(0))
                ));
            }
            if let Some(ms) = t.next_attempt_in_ms {
                line.push_str(&format!(", next attempt in {:.1} s", ms as f64 / 1000.0));
            }
            let program = if rathole {
                "rathole".to_owned()
            } else {
                format!("cloudflared {}", or_dash(t.cloudflared_version.as_deref()))
            };
            line.push_str(&format!(
                "; {} reconnects, {} restarts [{}, {program}, pid {}]",
                t.reconnects,
                t.restarts,
                admin_client::sanitize(mode),
                or_dash(t.process.as_ref().and_then(|p| p.pid)),
            ));
            if let Some(e) = &t.last_error {
                line.push_str(&format!(
                    "\n          last error {} ago: {}",
                    duration(e.secs_ago),
                    admin_client::sanitize(&e.message)
                ));
            }
            line
        }
    };
    out.push_str(&format!("Tunnel:   {tunnel}\n"));
    let edge = match v.edge.last_request_secs_ago {
        Some(ago) => format!("last signed request {} ago", duration(ago)),
        None => "no signed request yet".into(),
    };
    out.push_str(&format!(
        "Edge:     {edge}; {} accepted, {} refused\n",
        v.edge.signed_requests, v.edge.rejected.total
    ));
    let backend = if v.backend.reachable {
        format!(
            "answers (HTTP {}, {} ms)",
            or_dash(v.backend.status),
            or_dash(v.backend.latency_ms)
        )
    } else {
        "does not answer".into()
    };
    out.push_str(&format!("Backend:  {backend}\n"));
    out.push_str(&format!("Session:  {}\n", session_line(&v.backend)));
    out.push_str(&format!(
        "Devices:  {} paired\nKeys:     signing {}\n",
        v.devices.paired,
        admin_client::sanitize(&v.keys.signing_kid)
    ));
    for (title, lines) in [("Problems", &v.problems), ("Notes", &v.notes)] {
        if !lines.is_empty() {
            out.push_str(&format!("{title}:\n"));
            for line in lines {
                out.push_str(&format!("  - {}\n", admin_client::sanitize(line)));
            }
        }
    }
    out
}

/// The agent's ArgusAI session in a line (`backend.session` of the status).
fn session_line(backend: &BackendStatus) -> String {
    let line = match &backend.session {
        None => "not reported by the agent".into(),
        Some(session) => {
            let user = or_dash(session.username.as_deref());
            match session.state {
                SessionState::Active => format!(
                    "signed in to ArgusAI as {user}; access token expires in {}",
                    duration(session.access_expires_in_secs.unwrap_or(0))
                ),
                SessionState::Starting => {
                    format!("signed in to ArgusAI as {user}; first renewal in progress")
                }
                SessionState::Missing => {
                    "not signed in to ArgusAI: run `argus-relay backend login`".into()
                }
                SessionState::Refused => format!(
                    "ArgusAI refused the session of {user}: run `argus-relay backend login`"
                ),
                SessionState::Expiring => format!(
                    "signed in as {user}, but renewing fails: {}",
                    or_dash(session.last_error.as_deref())
                ),
            }
        }
    };
    match backend.credential {
        Credential::ApiKey => format!("{line} [sending the API key meanwhile]"),
        Credential::Session | Credential::None => line,
    }
}

pub fn status(args: StatusArgs) -> Result<(), CliError> {
    let client = AdminClient::from_config_file(&args.config.config)?;
    let v = client.get("/admin/status")?;
    if args.json {
        admin_client::print_json(&v)
    } else {
        print!("{}", human(&admin_client::parse_relay_status(v)?));
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn human_lines() {
        let mut v = RelayStatus::example();
        v.status = Health::Degraded;
        v.problems = vec!["the tunnel is not connected (state: backoff)".into()];
        v.notes = vec!["2 requests without a valid edge signature reached the tunnel".into()];
        v.uptime_secs = 4000;
        v.tunnel.monitoring = "supervised".into();
        v.tunnel.state = "backoff".into();
        v.tunnel.connected = Some(false);
        v.tunnel.reconnects = 2;
        v.tunnel.restarts = 3;
        v.tunnel.next_attempt_in_ms = Some(1500);
        v.tunnel.last_error = Some(crate::domain::tunnel::ErrorView {
            message: "cloudflared exited (exit status 1)".into(),
            at: 1,
            secs_ago: 4,
        });
        v.backend.credential = Credential::ApiKey;
        v.backend.session = Some(crate::domain::proxy::backend_session::SessionView {
            state: SessionState::Missing,
            username: None,
            role: None,
            signed_in_at: None,
            access_expires_in_secs: None,
            last_renewed_secs_ago: None,
            refreshes: 0,
            last_error: None,
            problem: None,
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
        let mut v = RelayStatus::example();
        v.tunnel.provider = Some("rathole".into());
        v.tunnel.monitoring = "supervised".into();
        v.tunnel.state = "connected".into();
        v.tunnel.connected = Some(true);
        v.tunnel.uptime_secs = Some(59);
        v.tunnel.reconnects = 1;
        v.tunnel.restarts = 0;
        v.tunnel.hostname = Some("relay.example.org:2333".into());
        v.tunnel.process = Some(crate::domain::tunnel::ProcessView {
            pid: Some(42),
            metrics: None,
            binary: None,
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
