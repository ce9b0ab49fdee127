//! cloudflared's `config.yml` for a locally managed tunnel, as `argus-relay tunnel config`
//! writes it: the tunnel's public hostname goes to the agent's tunnel listener and nowhere else;
//! every other request gets cloudflared's own 404; metrics (and `/ready`) on loopback.
//!
//! ```yaml
//! tunnel: "6ff42ae2-765d-4adf-8112-31c55c1551ef"
//! credentials-file: "/etc/argus-relay/6ff42ae2-765d-4adf-8112-31c55c1551ef.json"
//! metrics: "127.0.0.1:20241"
//! no-autoupdate: true
//! ingress:
//!   - hostname: "tunnel.example.com"
//!     service: "http://127.0.0.1:8470"
//!   - service: "http_status:404"
//! ```
//!
//! Every value is written as a double-quoted scalar (JSON string syntax is valid YAML), so no
//! input can change the document's structure.

use std::net::SocketAddr;
use std::path::Path;

use crate::base::config::cloudflared::valid_hostname;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum CloudflaredConfigError {
    #[error("tunnel id {0:?} is not a tunnel UUID or name (letters, digits, '-', '_', '.')")]
    BadTunnelId(String),
    #[error("hostname {0:?} is not a host name (no scheme, no path: e.g. tunnel.example.com)")]
    BadHostname(String),
    #[error("the credentials file must be an absolute path")]
    RelativeCredentials,
}

/// What a locally managed tunnel's `config.yml` says.
#[derive(Debug, Clone)]
pub struct LocalTunnel<'a> {
    pub tunnel_id: &'a str,
    pub credentials_file: &'a Path,
    pub hostname: &'a str,
    /// The agent's tunnel listener.
    pub service: SocketAddr,
    pub metrics: SocketAddr,
}

fn valid_tunnel_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 64
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
}

fn quoted(s: &str) -> String {
    serde_json::to_string(s).unwrap_or_else(|_| "\"\"".into())
}

pub fn render(t: &LocalTunnel<'_>) -> Result<String, CloudflaredConfigError> {
    if !valid_tunnel_id(t.tunnel_id) {
        return Err(CloudflaredConfigError::BadTunnelId(t.tunnel_id.into()));
    }
    if !valid_hostname(t.hostname) {
        return Err(CloudflaredConfigError::BadHostname(t.hostname.into()));
    }
    if !t.credentials_file.is_absolute() {
        return Err(CloudflaredConfigError::RelativeCredentials);
    }
    Ok(format!(
        "# cloudflared configuration for argus-relay, written by `argus-relay tunnel config`.\n\
         # The tunnel reaches the agent's tunnel listener and nothing else (every request there\n\
         # must carry the edge Worker's signature); any other hostname or path gets a 404.\n\
         tunnel: {id}\n\
         credentials-file: {creds}\n\
         metrics: {metrics}\n\
         no-autoupdate: true\n\
         ingress:\n\
         \x20 - hostname: {host}\n\
         \x20   service: {service}\n\
         \x20 - service: \"http_status:404\"\n",
        id = quoted(t.tunnel_id),
        creds = quoted(&t.credentials_file.display().to_string()),
        metrics = quoted(&t.metrics.to_string()),
        host = quoted(t.hostname),
        service = quoted(&format!("http://{}", t.service)),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tunnel<'a>(id: &'a str, host: &'a str, creds: &'a Path) -> LocalTunnel<'a> {
        LocalTunnel {
            tunnel_id: id,
            credentials_file: creds,
            hostname: host,
            service: "127.0.0.1:8470".parse().unwrap(),
            metrics: "127.0.0.1:20241".parse().unwrap(),
        }
    }

    #[test]
    fn ingress_goes_to_the_agent_then_404() {
        let creds = Path::new("/etc/argus-relay/6ff42ae2.json");
        let yml = render(&tunnel(
            "6ff42ae2-765d-4adf-8112-31c55c1551ef",
            "tunnel.example.com",
            creds,
        ))
        .unwrap();
        assert!(yml.contains("tunnel: \"6ff42ae2-765d-4adf-8112-31c55c1551ef\"\n"));
        assert!(yml.contains("credentials-file: \"/etc/argus-relay/6ff42ae2.json\"\n"));
        assert!(yml.contains("metrics: \"127.0.0.1:20241\"\n"));
        assert!(yml.ends_with(
            "ingress:\n  - hostname: \"tunnel.example.com\"\n    service: \"http://127.0.0.1:8470\"\n  - service: \"http_status:404\"\n"
        ));
    }

    #[test]
    fn nothing_can_break_out_of_a_value() {
        let creds = Path::new("/x.json");
        assert_eq!(
            render(&tunnel("id\ningress: []", "h.example", creds)).unwrap_err(),
            CloudflaredConfigError::BadTunnelId("id\ningress: []".into())
        );
        assert!(matches!(
            render(&tunnel("id", "h.example\n  - service: x", creds)),
            Err(CloudflaredConfigError::BadHostname(_))
        ));
        assert_eq!(
            render(&tunnel("id", "h.example", Path::new("rel.json"))).unwrap_err(),
            CloudflaredConfigError::RelativeCredentials
        );
        // A path with YAML-special characters stays one quoted scalar.
        let yml = render(&tunnel("id", "h.example", Path::new("/a: b/#c\".json"))).unwrap();
        assert!(
            yml.contains("credentials-file: \"/a: b/#c\\\".json\"\n"),
            "{yml}"
        );
    }
}
