//! `argus-relay ui`: a one-time sign-in link to the Mobile Access page of the running agent.
//!
//! The agent makes a single-use ticket (valid 2 minutes) for the holder of the admin token; the
//! link carries only that ticket, never the admin token. Opening it in a browser on this computer
//! starts a session (cookie) and lands on the page, at `/admin/ui`.
//!
//! `--lan`: the same link on the LAN listener (`https://<this computer>:<port>`), for a browser
//! on another computer at home; needs `[lan] enabled` and `admin_page = true`. The browser will
//! warn about the relay's self-signed certificate: the command prints its fingerprint to compare.

use serde::Deserialize;

use super::admin_client::{self, AdminClient};
use super::CliError;
use crate::base::config::AgentConfig;

#[derive(Debug, clap::Args)]
pub struct UiArgs {
    #[command(flatten)]
    pub config: super::ConfigArg,
    /// Print `{"url", "expires_in"}` as JSON.
    #[arg(long)]
    pub json: bool,
    /// A link for a browser on another computer at home, on the HTTPS LAN listener.
    #[arg(long)]
    pub lan: bool,
    /// With `--lan`: the address or `.local` name of this computer the link names, optionally
    /// with a port (default: the listener's address, or the address of the interface with the
    /// default route, and `[lan] listen`'s port).
    #[arg(long, requires = "lan")]
    pub host: Option<String>,
}

/// `POST /admin/ui/login-links` → 201.
#[derive(Debug, Deserialize)]
struct LoginLink {
    path: String,
    #[serde(default)]
    expires_in: Option<u64>,
}

pub fn ui(args: UiArgs) -> Result<(), CliError> {
    let cfg = AgentConfig::load(&args.config.config)?;
    let base = admin_client::admin_base_url(
        std::env::var(admin_client::ADMIN_URL_ENV).ok().as_deref(),
        &cfg,
    )?;
    let lan_base = if args.lan {
        Some(lan_base_url(&cfg, args.host.as_deref())?)
    } else {
        None
    };
    let client = AdminClient::from_config(&cfg)?;
    let answer = client.post("/admin/ui/login-links", None)?;
    let link: LoginLink = admin_client::decode(answer, "sign-in link")?;
    let url = login_url(lan_base.as_deref().unwrap_or(&base), &link.path)?;
    let expires_in = link.expires_in.unwrap_or(120);
    if args.json {
        return admin_client::print_json(
            &serde_json::json!({ "url": url, "expires_in": expires_in }),
        );
    }
    if args.lan {
        let fingerprint = crate::domain::lan::cert::fingerprint_of_file(&cfg.data_dir)
            .map_err(|e| CliError::Failed(format!("the LAN certificate: {e}")))?;
        println!(
            "Open the Mobile Access page in a browser on a computer at home\n\
             (the link works once, within {}):\n\n  {url}\n\n\
             The browser will warn that the certificate is not trusted: it is the relay's own.\n\
             Continue only if the certificate's SHA-256 fingerprint is\n  {fingerprint}",
            admin_client::countdown(expires_in)
        );
        return Ok(());
    }
    let port = cfg.admin.listen.port();
    println!(
        "Open the Mobile Access page in a browser on this computer\n\
         (the link works once, within {}):\n\n  {url}\n\n\
         From another computer, forward the port first:\n  \
         ssh -L {port}:127.0.0.1:{port} <this computer>\n\
         then run `argus-relay ui` again and open its link there.",
        admin_client::countdown(expires_in)
    );
    Ok(())
}

/// `https://<host>:<port>` of the LAN listener.
fn lan_base_url(cfg: &AgentConfig, host: Option<&str>) -> Result<String, CliError> {
    if !cfg.lan.enabled || !cfg.lan.admin_page {
        return Err(CliError::Failed(
            "the LAN listener does not serve the page: set `enabled = true` and \
             `admin_page = true` under [lan] in the configuration, and restart the agent"
                .into(),
        ));
    }
    if let Some(addr) = host.and_then(|h| h.parse::<std::net::SocketAddr>().ok()) {
        return Ok(format!("https://{addr}"));
    }
    let port = cfg.lan.listen.port();
    let host = match host {
        Some(h) => h.to_owned(),
        None if !cfg.lan.listen.ip().is_unspecified() => cfg.lan.listen.ip().to_string(),
        None => default_route_address().ok_or_else(|| {
            CliError::Failed("cannot tell this computer's LAN address: pass it with --host".into())
        })?,
    };
    let host = match host.parse::<std::net::IpAddr>() {
        Ok(std::net::IpAddr::V6(v6)) => format!("[{v6}]"),
        _ => host,
    };
    let ok = !host.is_empty()
        && host
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-.:[]".contains(&b));
    if !ok {
        return Err(CliError::Failed(format!(
            "--host {host:?} is not an address or name"
        )));
    }
    Ok(format!("https://{host}:{port}"))
}

/// The local address of the interface with the default route (a UDP `connect` sends nothing).
fn default_route_address() -> Option<String> {
    let socket = std::net::UdpSocket::bind("0.0.0.0:0").ok()?;
    socket.connect("192.0.2.1:9").ok()?;
    let ip = socket.local_addr().ok()?.ip();
    (!ip.is_unspecified() && !ip.is_loopback()).then(|| ip.to_string())
}

/// The link: the admin API's base plus the path the agent gave, which must be the sign-in path
/// with nothing but URL-safe characters.
fn login_url(base: &str, path: &str) -> Result<String, CliError> {
    let ok = path.starts_with("/admin/ui/login?ticket=")
        && path
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"/?=&-_.~".contains(&b));
    if !ok {
        return Err(CliError::Failed(
            "the agent answered with an unexpected sign-in link".into(),
        ));
    }
    Ok(format!("{}{path}", base.trim_end_matches('/')))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_link_is_the_base_plus_the_sign_in_path() {
        assert_eq!(
            login_url("http://127.0.0.1:8471/", "/admin/ui/login?ticket=abc-_1").unwrap(),
            "http://127.0.0.1:8471/admin/ui/login?ticket=abc-_1"
        );
        for bad in [
            "/elsewhere?ticket=a",
            "/admin/ui/login?ticket=a\u{1b}[2J",
            "/admin/ui/login?ticket=a b",
            "//evil.example/admin/ui/login?ticket=a",
        ] {
            assert!(login_url("http://127.0.0.1:8471", bad).is_err(), "{bad:?}");
        }
    }
}
