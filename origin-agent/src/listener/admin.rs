//! The admin listener: loopback only, for the owner's CLI (and the admin page).
//!
//! Every request needs `Authorization: Bearer <admin token>` (the token is in
//! `<data_dir>/admin.token`, 0600), compared in constant time, or the admin page's session
//! cookie with its same-origin and CSRF checks ([`crate::application::handlers::admin_ui::authorize_api`]). The `Host`
//! header must name a loopback address or `localhost`, so a web page in the owner's browser
//! cannot reach this API through DNS rebinding. `/admin/ui…` is the page itself
//! ([`crate::application::handlers::admin_ui`]).
//!
//! The API itself (routes and answers) is [`crate::application::handlers::admin_api`].

use std::net::SocketAddr;
use std::sync::Arc;

use hyper::body::Incoming;
use hyper::{Request, Response};

use crate::application::handlers::admin_api::api;
use crate::application::handlers::admin_ui::Served;
use crate::application::state::AppState;
use crate::base::error::AgentError;
use crate::base::http::body::{self, Body};
use crate::domain::auth::admin_token;

pub async fn handle(
    state: Arc<AppState>,
    req: Request<Incoming>,
    peer: SocketAddr,
) -> Response<Body> {
    let request_id = crate::base::http::request_id::new();
    let method = req.method().clone();
    let path = req.uri().path().to_owned();
    let mut resp = match serve(&state, req.map(body::incoming), peer, &request_id).await {
        Ok(resp) => resp,
        Err(e) => e.into_response(&request_id),
    };
    crate::base::metrics::METRICS.request(
        "admin",
        crate::base::metrics::RouteLabel::Admin,
        resp.status().as_u16(),
    );
    tracing::info!(
        listener = "admin",
        request_id,
        %method,
        path = %path.char_indices().nth(200).map_or(&*path, |(i, _)| &path[..i]),
        status = resp.status().as_u16(),
        "request"
    );
    crate::application::handlers::admin_ui::harden(resp.headers_mut());
    resp
}

/// The `Host` header's host without its port: `[::1]:8471` → `::1`, `127.0.0.1:8471` →
/// `127.0.0.1`, `localhost:8471` → `localhost`. `None` unless the header is exactly
/// `uri-host [":" port]` ([`parse_host`]).
fn host_name(req: &Request<Body>) -> Option<&str> {
    let host = req
        .headers()
        .get(hyper::header::HOST)
        .and_then(|h| h.to_str().ok())?;
    parse_host(host).map(|(name, _)| name)
}

/// Parses a `Host` value strictly (RFC 9110 §7.2, RFC 3986 §3.2.2): a bracketed IPv6 literal
/// (`[::1]`), or a name or IPv4 address of letters, digits, `-`, `.` and `_`; then optionally
/// `:` and a port of 1-5 digits that fits in 16 bits. Anything else (`[::1]evil`,
/// `localhost:evil`, `a:1:2`, an empty port) is `None`.
fn parse_host(value: &str) -> Option<(&str, Option<u16>)> {
    let (name, port) = if let Some(rest) = value.strip_prefix('[') {
        let (literal, after) = rest.split_once(']')?;
        literal.parse::<std::net::Ipv6Addr>().ok()?;
        let port = match after {
            "" => None,
            p => Some(p.strip_prefix(':')?),
        };
        (literal, port)
    } else {
        let (name, port) = match value.split_once(':') {
            Some((name, port)) => (name, Some(port)),
            None => (value, None),
        };
        let name_ok = !name.is_empty()
            && name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_'));
        if !name_ok {
            return None;
        }
        (name, port)
    };
    let port = match port {
        None => None,
        Some(p) if (1..=5).contains(&p.len()) && p.bytes().all(|b| b.is_ascii_digit()) => {
            Some(p.parse::<u16>().ok()?)
        }
        Some(_) => return None,
    };
    Some((name, port))
}

fn host_is_loopback(req: &Request<Body>) -> bool {
    let Some(name) = host_name(req) else {
        return false;
    };
    name.eq_ignore_ascii_case("localhost")
        || name
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

async fn serve(
    state: &AppState,
    req: Request<Body>,
    peer: SocketAddr,
    request_id: &str,
) -> Result<Response<Body>, AgentError> {
    if !host_is_loopback(&req) {
        return Err(AgentError::Refused {
            reason: "admin.host_not_loopback",
        });
    }
    if crate::application::handlers::admin_ui::is_ui_path(req.uri().path()) {
        return Ok(crate::application::handlers::admin_ui::serve(
            state,
            req,
            peer,
            Served::Loopback,
            request_id,
        )
        .await);
    }
    if !admin_token::authorized(&state.admin_token, &req) {
        crate::application::handlers::admin_ui::authorize_api(state, &req, Served::Loopback)?;
    }
    api(state, req).await
}

/// `/admin…` on the LAN listener (HTTPS), when `[lan] admin_page` is on: the page, and the API
/// for the page's session only — the admin token is never taken over the network. The `Host`
/// must be an IP address or a `.local` name (what a browser at home uses), so a web page cannot
/// reach it through DNS rebinding.
pub async fn serve_on_lan(
    state: &AppState,
    req: Request<Body>,
    peer: SocketAddr,
    request_id: &str,
) -> Response<Body> {
    let result =
        if !host_is_lan_name(&req) {
            Err(AgentError::Refused {
                reason: "admin.host_not_lan",
            })
        } else if crate::application::handlers::admin_ui::is_ui_path(req.uri().path()) {
            Ok(crate::application::handlers::admin_ui::serve(
                state,
                req,
                peer,
                Served::Lan,
                request_id,
            )
            .await)
        } else if let Err(e) =
            crate::application::handlers::admin_ui::authorize_api(state, &req, Served::Lan)
        {
            Err(e)
        } else {
            api(state, req).await
        };
    let mut resp = result.unwrap_or_else(|e| e.into_response(request_id));
    crate::application::handlers::admin_ui::harden(resp.headers_mut());
    resp
}

/// The `Host` names an IP address (any port) or an mDNS `.local` name.
fn host_is_lan_name(req: &Request<Body>) -> bool {
    let Some(name) = host_name(req) else {
        return false;
    };
    name.parse::<std::net::IpAddr>().is_ok()
        || (name.len() > ".local".len()
            && name.to_ascii_lowercase().ends_with(".local")
            && name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.'))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with_host(host: &str) -> Request<Body> {
        Request::builder()
            .uri("/admin/status")
            .header(hyper::header::HOST, host)
            .body(body::empty())
            .unwrap()
    }

    #[test]
    fn host_values_parse_strictly() {
        assert_eq!(parse_host("localhost"), Some(("localhost", None)));
        assert_eq!(
            parse_host("localhost:8471"),
            Some(("localhost", Some(8471)))
        );
        assert_eq!(
            parse_host("127.0.0.1:8471"),
            Some(("127.0.0.1", Some(8471)))
        );
        assert_eq!(parse_host("[::1]"), Some(("::1", None)));
        assert_eq!(parse_host("[::1]:8471"), Some(("::1", Some(8471))));
        assert_eq!(
            parse_host("home.local:65535"),
            Some(("home.local", Some(65535)))
        );
        for bad in [
            "",
            ":8471",
            "[::1]evil",
            "[::1]:evil",
            "[::1]:",
            "[::1]8471",
            "[::1]]:8471",
            "[evil]:8471",
            "[::1",
            "localhost:evil",
            "localhost:",
            "localhost:8471:1",
            "localhost:65536",
            "localhost:123456",
            "localhost:+80",
            "local host",
            "localhost/x",
            "user@localhost",
            "::1",
        ] {
            assert_eq!(parse_host(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn only_loopback_hosts_reach_the_admin_api() {
        for ok in [
            "localhost:8471",
            "LOCALHOST",
            "127.0.0.1:8471",
            "127.0.0.2",
            "[::1]:8471",
        ] {
            assert!(host_is_loopback(&with_host(ok)), "{ok}");
        }
        for bad in [
            "[::1]evil",
            "localhost:evil",
            "127.0.0.1:evil",
            "localhost.evil.example",
            "evil.example:8471",
            "192.168.1.10:8471",
            "[::1]:8471:1",
        ] {
            assert!(!host_is_loopback(&with_host(bad)), "{bad}");
        }
        let no_host = Request::builder().body(body::empty()).unwrap();
        assert!(!host_is_loopback(&no_host));
    }

    #[test]
    fn the_lan_page_takes_addresses_and_local_names_only() {
        for ok in [
            "192.168.1.10:8443",
            "[fe80::1]:8443",
            "home.local:8443",
            "Home.Local",
        ] {
            assert!(host_is_lan_name(&with_host(ok)), "{ok}");
        }
        for bad in [
            "[fe80::1]evil",
            "home.local:evil",
            "192.168.1.10:evil",
            "evil.example",
            ".local",
            "a_b.local",
        ] {
            assert!(!host_is_lan_name(&with_host(bad)), "{bad}");
        }
    }
}
