//! The owner's "Mobile Access" page, served by the admin listener (loopback only): a pairing code
//! with its QR code and countdown, phones asking to pair (confirm with the code shown on the
//! phone, or deny), paired devices (last seen, rename, revoke) and the relay's status, live.
//!
//! | method | path | who | what |
//! |---|---|---|---|
//! | POST | `/admin/ui/login-links` | admin token (the CLI, `argus-relay ui`) | 201 `{path, expires_in}`: a one-time sign-in link |
//! | GET | `/admin/ui/login?ticket=…` | the browser, once | session cookie, and a page handing the session's key to the script, which keeps it in `sessionStorage` and replaces the address with `/admin/ui` (the ticket leaves the address bar) |
//! | GET | `/admin/ui` | session | the page (no secret in it); without a session an explanation page, 401 |
//! | GET | `/admin/ui/app.js`, `/admin/ui/style.css` | anyone on loopback | the page's script and style (compiled into the binary) |
//! | POST | `/admin/ui/pairing-code` | session + key | `{scope}` → 201: what `POST /admin/pairing-codes` answers, plus `qr_svg` |
//! | POST | `/admin/ui/logout` | session + key | ends the session, clears the cookie |
//!
//! Everything else the page does goes through the same admin API the CLI uses
//! ([`crate::listener::admin`]), which accepts the page's session in place of the admin token
//! ([`authorize_api`]): the cookie (valid, bound to this `Host`) **and** the session's key in
//! `X-CSRF-Token` on every request, reads included; the request same-origin, and for anything
//! but GET an `Origin` of this listener ([`csrf`]). The page's script never sees the admin
//! token; the cookie is `HttpOnly; SameSite=Strict; Path=/admin`.
//!
//! Why the key: cookies are scoped by host, not port, so any other service on this computer
//! that the owner's browser visits under `/admin/` receives the cookie — and whoever replays it
//! chooses the `Host` and `Origin` they send. The key is handed over only once, in the answer to
//! the one-time sign-in link, and kept in the page origin's `sessionStorage`, which other ports
//! cannot read; no answer to the cookie alone contains it. A replayed cookie gets 401/403.
//!
//! Every admin-listener answer carries [`harden`]'s headers: a strict Content Security Policy
//! (scripts and styles only from this listener, no inline script, no framing), `X-Frame-Options:
//! DENY`, `no-store`, `nosniff`, `Referrer-Policy: no-referrer`.
//!
//! The page is served on loopback by the admin listener, which refuses any other bind address
//! (configuration), any `Host` that is not loopback, and (here) any peer that is not. To use it
//! from another computer, either forward the port over SSH (`ssh -L 8471:127.0.0.1:8471 home`),
//! or let the LAN listener serve it too (`[lan] admin_page = true`, HTTPS only, [`Served::Lan`]):
//! there the owner signs in with a one-time link that only the holder of the admin token can
//! make (`argus-relay ui --lan`, on the server); the admin token itself is never accepted over
//! the LAN, only the session, and the cookie is `Secure`.

use std::net::SocketAddr;

use hyper::header::{self, HeaderMap, HeaderValue};
use hyper::{Method, Request, Response, StatusCode};
use serde::{Deserialize, Serialize};

use crate::application::handlers::pairing_codes::{self, CreatedOwnerCode};
use crate::application::handlers::phone;
use crate::application::state::AppState;
use crate::base::clock::unix_now;
use crate::base::error::AgentError;
use crate::base::http::body::{self, Body};
use crate::domain::auth::admin_session::{self as session, SessionError};
use crate::domain::auth::{admin_token, csrf};
use crate::domain::store::Scope;

/// The session cookie's name.
pub const COOKIE_NAME: &str = "argus_relay_admin";
/// The page.
pub const UI_PATH: &str = "/admin/ui";
/// Where a one-time sign-in link points.
pub const LOGIN_PATH: &str = "/admin/ui/login";

/// Scripts, styles, images and requests only from this listener; no inline script or style
/// attribute; never framed.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; script-src 'self'; \
     style-src 'self'; img-src 'self'; connect-src 'self'; form-action 'self'; \
     base-uri 'none'; frame-ancestors 'none'";

const PAGE_HTML: &str = include_str!("assets/page.html");
const SIGNIN_HTML: &str = include_str!("assets/signin.html");
const MESSAGE_HTML: &str = include_str!("assets/message.html");
const APP_JS: &str = include_str!("assets/app.js");
const STYLE_CSS: &str = include_str!("assets/style.css");

/// Which listener serves the page.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Served {
    /// The admin listener: plain HTTP on loopback, loopback peers only.
    Loopback,
    /// The LAN listener (HTTPS with the relay's certificate), when `[lan] admin_page` is on.
    Lan,
}

impl Served {
    fn scheme(self) -> &'static str {
        match self {
            Served::Loopback => "http",
            Served::Lan => "https",
        }
    }
}

/// Why a page (HTML) could not be shown; each has its own explanation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum PageError {
    #[error("Sign-in needed")]
    SignInNeeded,
    #[error("Your session has ended")]
    SessionEnded,
    #[error("This sign-in link no longer works")]
    LinkUsed,
    #[error("Open this page from its own link")]
    CrossSite,
    #[error("Only on this computer")]
    NotLoopback,
    #[error("Not found")]
    NotFound,
}

impl PageError {
    fn status(self) -> StatusCode {
        match self {
            PageError::SignInNeeded | PageError::SessionEnded | PageError::LinkUsed => {
                StatusCode::UNAUTHORIZED
            }
            PageError::CrossSite | PageError::NotLoopback => StatusCode::FORBIDDEN,
            PageError::NotFound => StatusCode::NOT_FOUND,
        }
    }

    fn message(self) -> &'static str {
        match self {
            PageError::SignInNeeded => {
                "The Mobile Access page needs a sign-in link made on the relay's computer."
            }
            PageError::SessionEnded => {
                "You were signed out (sessions end after 30 minutes without use, after 12 hours, \
                 or when the relay restarts)."
            }
            PageError::LinkUsed => {
                "Sign-in links work once, for 2 minutes. This one was already used or has expired."
            }
            PageError::CrossSite => {
                "This page was opened from another web site. For your safety it only opens from \
                 the link the relay prints, or from itself."
            }
            PageError::NotLoopback => {
                "The Mobile Access page is only served to browsers on the relay's own computer."
            }
            PageError::NotFound => "There is nothing at this address.",
        }
    }

    /// What to do, in words; [`PageError::command`] is the command it names.
    fn hint(self) -> &'static str {
        match self {
            PageError::NotLoopback => {
                "From another computer, forward the relay's admin port over SSH, then run \
                 argus-relay ui on the server and open its link on your computer:"
            }
            PageError::NotFound => {
                "The page is at /admin/ui. To sign in, run this on the relay's computer:"
            }
            _ => "On the computer that runs the relay, run this and open the link it prints:",
        }
    }

    fn command(self, served: Served) -> &'static str {
        match (self, served) {
            (PageError::NotLoopback, _) => "ssh -L 8471:127.0.0.1:8471 your-server",
            (_, Served::Lan) => "argus-relay ui --lan",
            (_, Served::Loopback) => "argus-relay ui",
        }
    }
}

/// Everything this module can fail with: API-style answers (JSON) or pages (HTML).
#[derive(Debug, thiserror::Error)]
pub enum UiError {
    #[error(transparent)]
    Api(#[from] AgentError),
    #[error(transparent)]
    Page(#[from] PageError),
}

/// `/admin/ui` and everything under it.
pub fn is_ui_path(path: &str) -> bool {
    path == UI_PATH || path.starts_with("/admin/ui/")
}

/// Serves one `/admin/ui…` request (the admin listener has checked the `Host`).
pub async fn serve(
    state: &AppState,
    req: Request<Body>,
    peer: SocketAddr,
    served: Served,
    request_id: &str,
) -> Response<Body> {
    match route(state, req, peer, served).await {
        Ok(resp) => resp,
        Err(UiError::Api(e)) => e.into_response(request_id),
        Err(UiError::Page(p)) => message_page(p, served, request_id),
    }
}

async fn route(
    state: &AppState,
    req: Request<Body>,
    peer: SocketAddr,
    served: Served,
) -> Result<Response<Body>, UiError> {
    if served == Served::Loopback && !peer.ip().is_loopback() {
        return Err(PageError::NotLoopback.into());
    }
    let path = req.uri().path().to_owned();
    let sub = path.strip_prefix(UI_PATH).unwrap_or("");
    let method = req.method().clone();
    match (method, sub) {
        (Method::GET, "" | "/") => page(state, &req),
        (Method::GET, "/login") => login(state, &req, served),
        // Sign-in links are made with the admin token, on loopback only.
        (_, "/login-links") if served == Served::Lan => Err(PageError::NotFound.into()),
        (Method::POST, "/login-links") => login_link(state, &req),
        (Method::POST, "/logout") => logout(state, &req, served),
        (Method::POST, "/pairing-code") => pairing_code(state, req, served).await,
        (Method::GET, "/app.js") => Ok(asset(APP_JS, "text/javascript; charset=utf-8")),
        (Method::GET, "/style.css") => Ok(asset(STYLE_CSS, "text/css; charset=utf-8")),
        (
            _,
            "" | "/" | "/login" | "/login-links" | "/logout" | "/pairing-code" | "/app.js"
            | "/style.css",
        ) => Err(AgentError::MethodNotAllowed.into()),
        _ => Err(PageError::NotFound.into()),
    }
}

/// The `Host` the request was sent to (the admin listener requires one, and a loopback one).
fn host_of(headers: &HeaderMap) -> &str {
    headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or("")
}

/// The values of every `name=` cookie the request carries (cookies do not isolate ports or
/// paths, so there may be several).
fn cookie_values<'a>(headers: &'a HeaderMap, name: &str) -> Vec<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| {
            let (k, v) = pair.trim().split_once('=')?;
            (k.trim() == name).then(|| v.trim().trim_matches('"'))
        })
        .collect()
}

/// The live session the request's cookie names, and that cookie's value.
fn session_of(
    state: &AppState,
    headers: &HeaderMap,
) -> Result<(session::Active, String), SessionError> {
    let host = host_of(headers);
    let now = unix_now();
    let mut last = SessionError::Missing;
    for id in cookie_values(headers, COOKIE_NAME) {
        match state.admin_sessions.check(id, host, now) {
            Ok(active) => return Ok((active, id.to_owned())),
            Err(e) => last = e,
        }
    }
    Err(last)
}

/// For the admin API: accepts the page's session in place of the admin token. No live session
/// → 401 (as without a token); a session but not from the page itself → 403.
pub fn authorize_api(
    state: &AppState,
    req: &Request<Body>,
    served: Served,
) -> Result<(), AgentError> {
    checked_session(state, req, served).map(|_| ())
}

/// The request's live session (and its cookie value), having passed the [`csrf`] checks.
fn checked_session(
    state: &AppState,
    req: &Request<Body>,
    served: Served,
) -> Result<(session::Active, String), AgentError> {
    let found = session_of(state, req.headers()).map_err(|_| AgentError::AdminTokenRequired)?;
    csrf::check_served(
        req.method(),
        req.headers(),
        served.scheme(),
        host_of(req.headers()),
        &found.0.csrf_token,
    )
    .map_err(|e| {
        tracing::warn!(reason = e.reason(), "admin page: request refused");
        AgentError::CsrfRefused { reason: e.reason() }
    })?;
    state.admin_sessions.touch(&found.1, unix_now());
    Ok(found)
}

fn page(state: &AppState, req: &Request<Body>) -> Result<Response<Body>, UiError> {
    csrf::check_fetch_site(req.headers(), true).map_err(|_| PageError::CrossSite)?;
    // The page carries no secret: the script has the session's key from the sign-in answer.
    session_of(state, req.headers()).map_err(|e| match e {
        SessionError::Missing => PageError::SignInNeeded,
        _ => PageError::SessionEnded,
    })?;
    let html = PAGE_HTML.replace("{{version}}", &escape_html(env!("CARGO_PKG_VERSION")));
    Ok(html_response(StatusCode::OK, html))
}

/// The `name` parameter of a query string (our tickets need no percent-decoding).
fn query_param<'a>(query: Option<&'a str>, name: &str) -> Option<&'a str> {
    query?
        .split('&')
        .filter_map(|p| p.split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
}

fn login(state: &AppState, req: &Request<Body>, served: Served) -> Result<Response<Body>, UiError> {
    csrf::check_fetch_site(req.headers(), true).map_err(|_| PageError::CrossSite)?;
    let ticket = query_param(req.uri().query(), "ticket").ok_or(PageError::LinkUsed)?;
    let host = host_of(req.headers());
    let established = state
        .admin_sessions
        .redeem(ticket, host, unix_now())
        .map_err(|e| -> UiError {
            match e {
                SessionError::Random => AgentError::Internal.into(),
                _ => PageError::LinkUsed.into(),
            }
        })?;
    // A browser signing in again drops its previous session.
    if let Ok((_, old)) = session_of(state, req.headers()) {
        state.admin_sessions.end(&old);
    }
    tracing::info!(?served, "admin page: signed in with a one-time link");
    let secure = if served == Served::Lan {
        "; Secure"
    } else {
        ""
    };
    let cookie = format!(
        "{COOKIE_NAME}={}; Path=/admin; HttpOnly; SameSite=Strict; Max-Age={}{secure}",
        established.session_id,
        session::SESSION_MAX_SECS
    );
    // The key goes to this answer only (the ticket's, used up now): the script stores it in
    // this origin's sessionStorage and moves on to the page.
    let html = SIGNIN_HTML.replace("{{session_key}}", &escape_html(&established.csrf_token));
    let mut resp = html_response(StatusCode::OK, html);
    if let Ok(v) = HeaderValue::from_str(&cookie) {
        resp.headers_mut().insert(header::SET_COOKIE, v);
    }
    Ok(resp)
}

#[derive(Serialize)]
struct LoginLink {
    path: String,
    expires_in: u64,
}

fn login_link(state: &AppState, req: &Request<Body>) -> Result<Response<Body>, UiError> {
    // The admin token only: a browser session cannot mint sign-in links.
    if !admin_token::authorized(&state.admin_token, req) {
        return Err(AgentError::AdminTokenRequired.into());
    }
    let ticket = state.admin_sessions.new_ticket(unix_now()).map_err(|e| {
        tracing::error!(error = %e, "cannot make a sign-in link");
        AgentError::Internal
    })?;
    tracing::info!("admin page: one-time sign-in link made");
    Ok(body::json(
        StatusCode::CREATED,
        &LoginLink {
            path: format!("{LOGIN_PATH}?ticket={ticket}"),
            expires_in: session::TICKET_TTL_SECS,
        },
    ))
}

fn logout(
    state: &AppState,
    req: &Request<Body>,
    served: Served,
) -> Result<Response<Body>, UiError> {
    let (_, id) = checked_session(state, req, served)?;
    state.admin_sessions.end(&id);
    tracing::info!("admin page: signed out");
    let mut resp = body::json(StatusCode::OK, &serde_json::json!({"signed_out": true}));
    let cleared = format!("{COOKIE_NAME}=; Path=/admin; HttpOnly; SameSite=Strict; Max-Age=0");
    if let Ok(v) = HeaderValue::from_str(&cleared) {
        resp.headers_mut().insert(header::SET_COOKIE, v);
    }
    Ok(resp)
}

#[derive(Deserialize)]
struct NewCode {
    #[serde(default = "viewer")]
    scope: String,
    #[serde(default = "max_ttl")]
    ttl_secs: u64,
}

fn viewer() -> String {
    "viewer".into()
}

fn max_ttl() -> u64 {
    pairing_codes::MAX_OWNER_CODE_TTL_SECS
}

#[derive(Serialize)]
struct CodeWithQr {
    #[serde(flatten)]
    created: CreatedOwnerCode,
    /// The QR code of `pair_uri` as an inline `<svg>` element (no XML prolog).
    qr_svg: String,
}

async fn pairing_code(
    state: &AppState,
    req: Request<Body>,
    served: Served,
) -> Result<Response<Body>, UiError> {
    checked_session(state, &req, served)?;
    let body: NewCode = phone::read_json(req).await?;
    let scope = Scope::parse(&body.scope)
        .ok_or_else(|| AgentError::BadRequest("scope must be \"owner\" or \"viewer\"".into()))?;
    let created = pairing_codes::create_owner_code(state, scope, body.ttl_secs)?;
    let svg = crate::base::qr::svg(&created.pair_uri).map_err(|e| {
        tracing::error!(error = %e, "cannot draw the QR code");
        AgentError::Internal
    })?;
    Ok(body::json(
        StatusCode::CREATED,
        &CodeWithQr {
            created,
            qr_svg: inline_svg(&svg),
        },
    ))
}

/// An SVG document as an element to put inside HTML: without the `<?xml …?>` prolog.
fn inline_svg(doc: &str) -> String {
    let doc = doc.trim_start();
    let doc = match doc.strip_prefix("<?xml") {
        Some(rest) => rest.split_once("?>").map_or(rest, |(_, after)| after),
        None => doc,
    };
    doc.trim().to_owned()
}

fn asset(text: &'static str, content_type: &'static str) -> Response<Body> {
    let mut resp = Response::new(body::full(text));
    resp.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    resp
}

fn html_response(status: StatusCode, html: String) -> Response<Body> {
    let mut resp = Response::new(body::full(html));
    *resp.status_mut() = status;
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    resp
}

fn message_page(p: PageError, served: Served, request_id: &str) -> Response<Body> {
    let html = MESSAGE_HTML
        .replace("{{title}}", &escape_html(&p.to_string()))
        .replace("{{message}}", &escape_html(p.message()))
        .replace("{{hint}}", &escape_html(p.hint()))
        .replace("{{command}}", &escape_html(p.command(served)))
        .replace("{{request_id}}", &escape_html(request_id));
    let mut resp = html_response(p.status(), html);
    if let Ok(v) = HeaderValue::from_str(request_id) {
        resp.headers_mut()
            .insert(argus_shared::headers::REQUEST_ID, v);
    }
    resp
}

/// Escapes text for HTML element content and double-quoted attributes.
pub fn escape_html(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// The security headers every admin-listener answer carries (set unless already there).
pub fn harden(headers: &mut HeaderMap) {
    let set = [
        ("content-security-policy", CONTENT_SECURITY_POLICY),
        ("x-frame-options", "DENY"),
        ("x-content-type-options", "nosniff"),
        ("referrer-policy", "no-referrer"),
        ("cache-control", "no-store"),
        ("cross-origin-opener-policy", "same-origin"),
        ("cross-origin-resource-policy", "same-origin"),
        (
            "permissions-policy",
            "camera=(), microphone=(), geolocation=(), payment=(), usb=()",
        ),
    ];
    for (name, value) in set {
        if !headers.contains_key(name) {
            headers.insert(name, HeaderValue::from_static(value));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cookies_are_found_among_others() {
        let mut h = HeaderMap::new();
        h.append(
            header::COOKIE,
            HeaderValue::from_static("a=1; argus_relay_admin=abc; b=2"),
        );
        h.append(
            header::COOKIE,
            HeaderValue::from_static("argus_relay_admin=\"def\""),
        );
        assert_eq!(cookie_values(&h, COOKIE_NAME), vec!["abc", "def"]);
        assert!(cookie_values(&HeaderMap::new(), COOKIE_NAME).is_empty());
        let mut h = HeaderMap::new();
        h.append(
            header::COOKIE,
            HeaderValue::from_static("xargus_relay_admin=abc"),
        );
        assert!(cookie_values(&h, COOKIE_NAME).is_empty());
    }

    #[test]
    fn query_params_and_ui_paths() {
        assert_eq!(query_param(Some("a=1&ticket=xyz"), "ticket"), Some("xyz"));
        assert_eq!(query_param(Some("ticket"), "ticket"), None);
        assert_eq!(query_param(None, "ticket"), None);
        assert!(is_ui_path("/admin/ui"));
        assert!(is_ui_path("/admin/ui/app.js"));
        assert!(!is_ui_path("/admin/uix"));
        assert!(!is_ui_path("/admin/devices"));
    }

    #[test]
    fn html_is_escaped() {
        assert_eq!(
            escape_html(r#"<img src=x onerror="a('b')">&"#),
            "&lt;img src=x onerror=&quot;a(&#39;b&#39;)&quot;&gt;&amp;"
        );
    }

    #[test]
    fn the_qr_svg_inlines_as_an_element() {
        let doc = crate::base::qr::svg("argusai://pair?code=K7QRTA").unwrap();
        let el = inline_svg(&doc);
        assert!(el.starts_with("<svg"), "{el}");
        assert!(el.ends_with("</svg>"), "{el}");
        assert!(!el.contains("<?xml"));
        // Nothing the page's CSP would block.
        assert!(!el.contains("style="), "{el}");
        assert!(!el.contains("<script"), "{el}");
    }

    /// ` onclick=`, ` onload=`…: an attribute starting with `on` directly followed by `=`.
    fn has_event_handler(html: &str) -> bool {
        html.match_indices(" on").any(|(i, _)| {
            let rest = &html[i + 3..];
            let name_len = rest.bytes().take_while(u8::is_ascii_alphabetic).count();
            name_len > 0 && rest[name_len..].starts_with('=')
        })
    }

    #[test]
    fn assets_have_no_inline_script_or_style_and_use_the_session_key() {
        // The key is handed over by the sign-in answer only; the page itself carries none.
        assert!(SIGNIN_HTML.contains(r#"<meta name="session-key" content="{{session_key}}">"#));
        assert_eq!(
            PAGE_HTML.matches("{{").count(),
            PAGE_HTML.matches("{{version}}").count(),
            "no secret is filled into the page"
        );
        for html in [PAGE_HTML, SIGNIN_HTML] {
            assert!(html.contains(r#"<script src="/admin/ui/app.js" defer></script>"#));
        }
        for html in [PAGE_HTML, MESSAGE_HTML, SIGNIN_HTML] {
            assert_eq!(
                html.matches("<script").count(),
                html.matches("<script src=").count()
            );
            assert!(!html.contains("style="));
            assert!(!html.contains("<style"));
            assert!(!has_event_handler(html), "no inline event handlers");
            assert!(
                !html.contains("http://") && !html.contains("https://"),
                "no external assets"
            );
        }
        assert!(APP_JS.contains("headers['X-CSRF-Token'] = sessionKey;"));
        assert!(APP_JS.contains("sessionStorage"));
        assert!(
            !APP_JS.contains("innerHTML"),
            "the script builds the DOM, never parses HTML"
        );
        assert!(!STYLE_CSS.contains("url("), "no external assets");
    }

    #[test]
    fn every_answer_is_hardened() {
        let mut h = HeaderMap::new();
        h.insert("cache-control", HeaderValue::from_static("max-age=5"));
        harden(&mut h);
        assert_eq!(h["x-frame-options"], "DENY");
        assert_eq!(h["cache-control"], "max-age=5", "kept when set");
        let csp = h["content-security-policy"].to_str().unwrap();
        assert!(csp.contains("frame-ancestors 'none'"));
        assert!(csp.contains("script-src 'self'"));
        assert!(!csp.contains("unsafe-inline"));
    }

    #[test]
    fn page_errors_explain_how_to_sign_in() {
        for p in [
            PageError::SignInNeeded,
            PageError::SessionEnded,
            PageError::LinkUsed,
            PageError::CrossSite,
        ] {
            assert_eq!(p.command(Served::Loopback), "argus-relay ui", "{p:?}");
            assert_eq!(p.command(Served::Lan), "argus-relay ui --lan", "{p:?}");
        }
        let resp = message_page(PageError::SignInNeeded, Served::Lan, "req-1");
        assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
    }
}
