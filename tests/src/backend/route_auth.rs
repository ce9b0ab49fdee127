//! Which credential each ArgusAI route accepts, and the check that enforces it — as the real
//! backend (commit c5efc85) does it, in two layers:
//!
//! 1. **`AuthMiddleware`** (global, HTTP only): skipped for a `User-Agent` containing `testclient`,
//!    for `OPTIONS`, for [`MIDDLEWARE_EXCLUDED_PATHS`], [`MIDDLEWARE_EXCLUDED_PREFIXES`], any path
//!    ending in `/stream`, and `/api/v1/events/…/frames…`. Otherwise a valid `X-API-Key` (checked
//!    first, with bcrypt at cost 12 *on the event loop*: every other request waits), else a user
//!    JWT from the `access_token` cookie, else from `Authorization: Bearer`. Starlette's
//!    `BaseHTTPMiddleware` never sees WebSockets.
//! 2. **Endpoint dependencies** ([`ENDPOINT_DEPENDENCIES`]): `get_current_user` (user JWT only:
//!    cookie, else Bearer — a present but invalid cookie is not retried with Bearer; an API key
//!    does not count), plus an admin-role check on some routes; the signed event thumbnail wants
//!    `signature` + `expires` query parameters (422 without them, from the handler's validation).
//!
//! [`classify`] folds both into one [`AuthClass`] per request; `tests/tests/backend_standin.rs`
//! checks it against all 290 routes of `../shared/argusai/auth-routes.json` when that file is there.

use std::time::Duration;

use hyper::header::HeaderMap;
use hyper::{Method, StatusCode};

use super::server::{self, detail, set, Resp, State};

/// The credential a route accepts (the categories of `auth-routes.json`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AuthClass {
    /// Nothing is checked.
    None,
    /// The middleware's check only: any active API key or a user JWT.
    JwtOrApiKey,
    /// A user JWT; an `X-API-Key` passes the middleware, then the endpoint answers 401.
    JwtOnly,
    /// A user JWT of an admin (403 for other users).
    AdminJwt,
    /// The middleware's credential *and* an HMAC-signed URL (`signature`, `expires`).
    SignedUrl,
}

impl AuthClass {
    /// The name `auth-routes.json` uses.
    pub fn as_str(self) -> &'static str {
        match self {
            AuthClass::None => "none",
            AuthClass::JwtOrApiKey => "jwt_or_api_key",
            AuthClass::JwtOnly => "jwt_only",
            AuthClass::AdminJwt => "admin_jwt",
            AuthClass::SignedUrl => "jwt_or_api_key+signed_url",
        }
    }
}

/// What an endpoint itself demands, beyond the middleware.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Dependency {
    /// No auth dependency (the middleware, if it runs, is all).
    Unguarded,
    /// `Depends(get_current_user)`.
    User,
    /// `get_current_user` plus an admin-role check.
    Admin,
    /// Required `signature` and `expires` query parameters.
    SignedUrl,
}

/// `AuthMiddleware`'s exact-path exclusions (auth_middleware.py:58-65).
pub const MIDDLEWARE_EXCLUDED_PATHS: &[&str] = &[
    "/health",
    "/metrics",
    "/docs",
    "/redoc",
    "/openapi.json",
    "/",
];

/// `AuthMiddleware`'s prefix exclusions (auth_middleware.py:68-80). Prefixes, not segments:
/// `/ws` also covers `/wsanything`.
pub const MIDDLEWARE_EXCLUDED_PREFIXES: &[&str] = &[
    "/api/v1/auth/login",
    "/api/v1/auth/logout",
    "/api/v1/auth/refresh",
    "/api/v1/auth/setup-status",
    "/api/v1/thumbnails/",
    "/ws",
    "/api/v1/mobile/auth/pair",
    "/api/v1/mobile/auth/status/",
    "/api/v1/mobile/auth/exchange",
    "/api/v1/mobile/auth/refresh",
];

/// Whether `AuthMiddleware` lets a request with this decoded path through unchecked.
pub fn middleware_skips(path: &str) -> bool {
    MIDDLEWARE_EXCLUDED_PATHS.contains(&path)
        || MIDDLEWARE_EXCLUDED_PREFIXES
            .iter()
            .any(|p| path.starts_with(p))
        // "any HTTP path ending in /stream" (auth_middleware.py:83-85, 207-212)
        || path.ends_with("/stream")
        // substring rule: `/api/v1/events/framesX` is excluded too (auth_middleware.py:214-217)
        || (path.starts_with("/api/v1/events/") && path.contains("/frames"))
}

/// Endpoint auth dependencies, first match wins: `(methods, path pattern, dependency)`.
///
/// Methods: `"*"` or a comma list. Patterns go segment by segment: `*` is one segment, `**` (last)
/// any rest, `name-*` one segment starting with `name-`. Routes not listed have no dependency.
const ENDPOINT_DEPENDENCIES: &[(&str, &str, Dependency)] = &[
    // Public by design: sign-in, token refresh, setup status, the mobile pairing flow.
    ("POST", "/api/v1/auth/login", Dependency::Unguarded),
    ("POST", "/api/v1/auth/logout", Dependency::Unguarded),
    ("POST", "/api/v1/auth/refresh", Dependency::Unguarded),
    ("GET", "/api/v1/auth/setup-status", Dependency::Unguarded),
    ("POST", "/api/v1/mobile/auth/pair", Dependency::Unguarded),
    ("GET", "/api/v1/mobile/auth/status/*", Dependency::Unguarded),
    (
        "POST",
        "/api/v1/mobile/auth/exchange",
        Dependency::Unguarded,
    ),
    ("POST", "/api/v1/mobile/auth/refresh", Dependency::Unguarded),
    // The signed-in user's own account, sessions, pairing confirmations, API keys, push devices.
    ("*", "/api/v1/auth/**", Dependency::User),
    ("*", "/api/v1/mobile/auth/**", Dependency::User),
    ("*", "/api/v1/api-keys/**", Dependency::User),
    ("*", "/api/v1/devices/**", Dependency::User),
    // Admins only: user management, the AI-processing dashboards and streams, debug routes.
    ("*", "/api/v1/users/**", Dependency::Admin),
    ("*", "/api/v1/system/debug/**", Dependency::Admin),
    ("*", "/api/v1/system/ai-processing-*", Dependency::Admin),
    ("GET", "/api/v1/system/ai-cost-trends", Dependency::Admin),
    (
        "GET",
        "/api/v1/system/ai-context-usage-stats",
        Dependency::Admin,
    ),
    // `signature` + `expires` that nothing in ArgusAI hands out at run time.
    ("GET", "/api/v1/events/*/thumbnail", Dependency::SignedUrl),
];

fn segment_matches(pattern: &str, segment: &str) -> bool {
    match pattern.strip_suffix('*') {
        Some("") => !segment.is_empty(),
        Some(prefix) => segment.len() > prefix.len() && segment.starts_with(prefix),
        None => pattern == segment,
    }
}

fn pattern_matches(pattern: &str, path: &str) -> bool {
    let mut pat = pattern.split('/').skip(1);
    let mut segs = path.split('/').skip(1);
    loop {
        match (pat.next(), segs.next()) {
            (Some("**"), _) => return true,
            (Some(p), Some(s)) if segment_matches(p, s) => {}
            (None, None) => return true,
            _ => return false,
        }
    }
}

fn methods_match(methods: &str, method: &str) -> bool {
    methods == "*" || methods.split(',').any(|m| m == method)
}

fn dependency(method: &str, path: &str) -> Dependency {
    ENDPOINT_DEPENDENCIES
        .iter()
        .find(|(m, p, _)| methods_match(m, method) && pattern_matches(p, path))
        .map_or(Dependency::Unguarded, |(_, _, d)| *d)
}

/// The credential ArgusAI accepts for `method` on the decoded `path`; `websocket` for a
/// WebSocket handshake (pass `"GET"`). Ignores the `testclient` bypass, which is a property of
/// the request, not the route.
pub fn classify(method: &str, path: &str, websocket: bool) -> AuthClass {
    let dep = dependency(method, path);
    let middleware = !websocket && !middleware_skips(path);
    match (dep, middleware) {
        (Dependency::User, _) => AuthClass::JwtOnly,
        (Dependency::Admin, _) => AuthClass::AdminJwt,
        (Dependency::SignedUrl, true) => AuthClass::SignedUrl,
        (_, true) => AuthClass::JwtOrApiKey,
        (_, false) => AuthClass::None,
    }
}

/// A signed-in ArgusAI user, as the user row says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct User {
    pub id: String,
    pub username: String,
    pub admin: bool,
}

fn unauthorized(msg: &str) -> Resp {
    let mut r = detail(StatusCode::UNAUTHORIZED, msg);
    set(r.headers_mut(), "www-authenticate", "Bearer");
    r
}

/// `AuthMiddleware`'s 401: `CORSMiddleware` is inside it, so the middleware adds CORS headers
/// itself, echoing any `Origin` with credentials allowed.
fn middleware_unauthorized(req_headers: &HeaderMap, msg: &str) -> Resp {
    let mut r = detail(StatusCode::UNAUTHORIZED, msg);
    let origin = server::header(req_headers, "origin")
        .filter(|o| !o.is_empty())
        .unwrap_or("http://localhost:3000");
    let h = r.headers_mut();
    if msg == "Not authenticated" {
        set(h, "www-authenticate", "Bearer");
    }
    set(h, "access-control-allow-origin", origin);
    set(h, "access-control-allow-credentials", "true");
    set(
        h,
        "access-control-allow-methods",
        "GET, POST, PUT, DELETE, OPTIONS, PATCH",
    );
    set(
        h,
        "access-control-allow-headers",
        "Content-Type, Authorization",
    );
    r
}

/// `X-API-Key` verification: bcrypt at cost 12 against the key rows sharing its prefix, run
/// synchronously on ArgusAI's event loop. The caller holds the stand-in's event-loop turn, so
/// the modelled cost ([`super::BackendConfig::api_key_verify_time`]) stalls every other request.
async fn api_key_valid(st: &State, key: &[u8]) -> bool {
    st.api_key_checks
        .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    let cost = st.config.api_key_verify_time;
    if cost > Duration::ZERO {
        tokio::time::sleep(cost).await;
    }
    !key.is_empty() && key == st.config.api_key.as_bytes()
}

/// `get_current_user`: the user of the `access_token` cookie if there is one (even an invalid
/// one: no retry with Bearer), else of `Authorization: Bearer` (see
/// [`server::current_user_token`]).
pub(crate) fn current_user(st: &State, h: &HeaderMap) -> Option<User> {
    server::user_for_token(st, &server::current_user_token(h)?)
}

/// ArgusAI's auth for one HTTP request (WebSockets authenticate in their handlers): `Ok` lets it
/// through to routing, `Err` is the answer. Holds the stand-in's event-loop turn while it runs.
pub(crate) async fn authenticate(
    st: &State,
    method: &Method,
    path: &str,
    h: &HeaderMap,
) -> Result<(), Resp> {
    let _turn = st.event_loop.lock().await;
    // "Skip auth in test mode": any User-Agent containing `testclient` (the middleware only).
    let testclient = h.get("user-agent").is_some_and(|ua| {
        String::from_utf8_lossy(ua.as_bytes())
            .to_lowercase()
            .contains("testclient")
    });
    if *method == Method::OPTIONS {
        return Ok(());
    }
    let class = classify(method.as_str(), path, false);
    // 1. AuthMiddleware.
    if class != AuthClass::None && !testclient {
        let key_ok = match h.get("x-api-key") {
            Some(key) if !key.is_empty() => api_key_valid(st, key.as_bytes()).await,
            _ => false,
        };
        if !key_ok {
            match server::current_user_token(h) {
                None => return Err(middleware_unauthorized(h, "Not authenticated")),
                Some(t) if server::user_for_token(st, &t).is_none() => {
                    return Err(middleware_unauthorized(h, "Invalid token"))
                }
                Some(_) => {}
            }
        }
    }
    // 2. The endpoint's own dependency.
    if matches!(class, AuthClass::JwtOnly | AuthClass::AdminJwt) {
        let has_token = server::current_user_token(h).is_some();
        let Some(user) = current_user(st, h) else {
            return Err(unauthorized(if has_token {
                "Could not validate credentials"
            } else {
                "Not authenticated"
            }));
        };
        if class == AuthClass::AdminJwt && !user.admin {
            return Err(detail(StatusCode::FORBIDDEN, "Admin access required"));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patterns() {
        assert!(pattern_matches("/api/v1/devices/**", "/api/v1/devices"));
        assert!(pattern_matches(
            "/api/v1/devices/**",
            "/api/v1/devices/d1/token"
        ));
        assert!(!pattern_matches("/api/v1/devices/**", "/api/v1/devicesx"));
        assert!(pattern_matches(
            "/api/v1/system/ai-processing-*",
            "/api/v1/system/ai-processing-stream"
        ));
        assert!(!pattern_matches(
            "/api/v1/system/ai-processing-*",
            "/api/v1/system/ai-processing-"
        ));
        assert!(!pattern_matches(
            "/api/v1/events/*/thumbnail",
            "/api/v1/events//thumbnail"
        ));
    }

    #[test]
    fn phone_routes_have_argusais_classes() {
        let c = classify;
        assert_eq!(c("GET", "/api/v1/events", false), AuthClass::JwtOrApiKey);
        assert_eq!(
            c("GET", "/api/v1/events/e1/frames/2", false),
            AuthClass::None
        );
        assert_eq!(
            c("GET", "/api/v1/thumbnails/d/f.jpg", false),
            AuthClass::None
        );
        assert_eq!(
            c("GET", "/api/v1/events/e1/thumbnail", false),
            AuthClass::SignedUrl
        );
        assert_eq!(c("POST", "/api/v1/devices", false), AuthClass::JwtOnly);
        assert_eq!(
            c("PUT", "/api/v1/devices/d1/token", false),
            AuthClass::JwtOnly
        );
        assert_eq!(c("GET", "/api/v1/auth/me", false), AuthClass::JwtOnly);
        assert_eq!(c("POST", "/api/v1/auth/login", false), AuthClass::None);
        assert_eq!(
            c("GET", "/api/v1/system/ai-processing-stream", false),
            AuthClass::AdminJwt
        );
        assert_eq!(
            c("GET", "/api/v1/system/ai-stats", false),
            AuthClass::JwtOrApiKey
        );
        assert_eq!(c("GET", "/ws", true), AuthClass::None);
        assert_eq!(c("GET", "/api/v1/cameras/c1/stream", true), AuthClass::None);
        // The `/stream` suffix rule: an id of "stream" skips the middleware.
        assert_eq!(c("GET", "/api/v1/events/stream", false), AuthClass::None);
        assert_eq!(c("GET", "/api/v1/events/framesX", false), AuthClass::None);
    }
}
