//! ArgusAI's users and web sessions, as the stand-in has them (`app/api/v1/auth.py`,
//! `app/utils/jwt.py`, `app/services/session_service.py`; facts in `auth-routes.json`):
//!
//! - `POST /api/v1/auth/login` `{"username","password"}` → `LoginResponse` (access JWT + opaque
//!   refresh token in the body, both also set as cookies). 5 attempts per 15 minutes per client IP
//!   (slowapi, every attempt counts) → 429 `{"error": "Rate limit exceeded: 5 per 15 minute"}`.
//!   The client IP is the peer's, or the `X-Forwarded-For` value when the peer is loopback
//!   (uvicorn trusts proxy headers from 127.0.0.1).
//! - `POST /api/v1/auth/refresh`: the `refresh_token` cookie, else `{"refresh_token"}` in the body →
//!   `{"access_token","refresh_token","token_type"}`; single-use rotation within a family (one per
//!   login); presenting a rotated token again revokes the whole family (401). 20 per minute per IP.
//!   Refresh tokens live 30 days from issue.
//! - Access tokens: HS256 JWTs `{sub, username, exp, iat}`, lifetime
//!   [`super::BackendConfig::access_token_lifetime`] (ArgusAI: 24 h). Verification is the HMAC,
//!   `exp`, then the user row (`is_active`); the role is read from the row, never from the token.
//!   Revoking a session does not invalidate an access token already issued (as in ArgusAI); a
//!   new JWT secret ([`Users::rotate_secret`], e.g. ArgusAI reinstalled) or deactivating the user
//!   does.
//! - `GET /api/v1/auth/me`: `get_current_user` (cookie `access_token` first, else Bearer; an
//!   invalid cookie is not retried with the Bearer token) → `UserResponse`; an API key is not
//!   enough (401).
//! - Push registration (`/api/v1/devices`, `get_current_user` too) is `backend/push.rs`.

use std::collections::{HashMap, VecDeque};
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use base64::Engine as _;
use hmac::{Hmac, Mac};
use http_body_util::BodyExt;
use hyper::body::Incoming;
use hyper::header::HeaderMap;
use hyper::{Request, StatusCode};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::server::{cookie, detail, header, json, Resp};

/// Logins allowed per client IP in [`LOGIN_WINDOW`] (ArgusAI: `5/15minutes`).
pub const LOGIN_LIMIT: usize = 5;
pub const LOGIN_WINDOW: Duration = Duration::from_secs(15 * 60);
/// Refreshes allowed per client IP in [`REFRESH_WINDOW`] (ArgusAI: `REFRESH_RATE_LIMIT` `20/minute`).
pub const REFRESH_LIMIT: usize = 20;
pub const REFRESH_WINDOW: Duration = Duration::from_secs(60);
/// A refresh token's lifetime from its issue (ArgusAI: 30 days).
pub const REFRESH_TOKEN_LIFETIME: Duration = Duration::from_secs(30 * 24 * 3600);
/// Largest login/refresh body read.
const MAX_BODY: usize = 16 * 1024;

/// A user's role (ArgusAI: `admin`, `operator`, `viewer`). Only `admin` matters for auth:
/// `admin_jwt` routes need it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum UserRole {
    Admin,
    Operator,
    Viewer,
}

/// A user account of the stand-in (configured in [`super::BackendConfig::users`]).
#[derive(Debug, Clone)]
pub struct StandInUser {
    pub username: String,
    pub password: String,
    pub role: UserRole,
}

/// One user row.
#[derive(Debug)]
pub(crate) struct User {
    pub id: String,
    pub username: String,
    password_hash: [u8; 32],
    pub role: UserRole,
    active: AtomicBool,
    created_at: String,
}

impl User {
    fn response(&self) -> serde_json::Value {
        serde_json::json!({
            "id": self.id,
            "username": self.username,
            "email": null,
            "role": self.role,
            "is_active": self.active.load(Ordering::Relaxed),
            "must_change_password": false,
            "created_at": self.created_at,
            "last_login": null,
            "invited_by": null,
            "invited_at": null,
        })
    }
}

struct RefreshToken {
    family: u64,
    user: usize,
    expires_at: SystemTime,
    used: bool,
}

#[derive(Default)]
struct Sessions {
    /// SHA-256 of the token → its row.
    tokens: HashMap<[u8; 32], RefreshToken>,
    revoked_families: std::collections::HashSet<u64>,
    next_family: u64,
}

/// Requests per client IP within a sliding window.
#[derive(Default)]
struct Window(Mutex<HashMap<IpAddr, VecDeque<Instant>>>);

impl Window {
    /// Counts this attempt; false if the IP already used its `limit` in `window`.
    fn admit(&self, ip: IpAddr, limit: usize, window: Duration) -> bool {
        let now = Instant::now();
        let mut map = self.0.lock().unwrap_or_else(|e| e.into_inner());
        let hits = map.entry(ip).or_default();
        while hits
            .front()
            .is_some_and(|t| now.duration_since(*t) >= window)
        {
            hits.pop_front();
        }
        if hits.len() >= limit {
            return false;
        }
        hits.push_back(now);
        true
    }
}

/// Counters for tests.
#[derive(Debug, Default)]
pub(crate) struct AuthCounters {
    pub logins: AtomicU64,
    pub refreshes: AtomicU64,
}

/// The users table, the sessions and the rate limits.
pub(crate) struct Users {
    users: Vec<User>,
    secret: Mutex<[u8; 32]>,
    access_lifetime: Duration,
    sessions: Mutex<Sessions>,
    login_window: Window,
    refresh_window: Window,
    pub counters: AuthCounters,
}

fn random_bytes<const N: usize>() -> [u8; N] {
    let mut b = [0u8; N];
    getrandom::getrandom(&mut b).expect("the OS random source works");
    b
}

fn unix_secs(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

fn password_hash(password: &str) -> [u8; 32] {
    // A stand-in for bcrypt: the cost is modelled elsewhere if needed, not here.
    Sha256::digest(password.as_bytes()).into()
}

#[derive(Deserialize)]
struct LoginRequest {
    username: String,
    password: String,
}

#[derive(Deserialize)]
struct RefreshRequest {
    refresh_token: String,
}

#[derive(Serialize, Deserialize)]
struct Claims {
    sub: String,
    username: String,
    exp: u64,
    iat: u64,
}

impl Users {
    pub(crate) fn new(users: &[StandInUser], access_lifetime: Duration) -> Users {
        Users {
            users: users
                .iter()
                .enumerate()
                .map(|(i, u)| User {
                    id: format!("00000000-0000-4000-8000-{:012x}", i + 1),
                    username: u.username.to_lowercase(),
                    password_hash: password_hash(&u.password),
                    role: u.role,
                    active: AtomicBool::new(true),
                    created_at: "2025-11-01T09:00:00Z".to_owned(),
                })
                .collect(),
            secret: Mutex::new(random_bytes()),
            access_lifetime,
            sessions: Mutex::default(),
            login_window: Window::default(),
            refresh_window: Window::default(),
            counters: AuthCounters::default(),
        }
    }

    fn secret(&self) -> [u8; 32] {
        *self.secret.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn sessions(&self) -> std::sync::MutexGuard<'_, Sessions> {
        self.sessions.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn find(&self, username: &str) -> Option<usize> {
        let username = username.to_lowercase();
        self.users.iter().position(|u| u.username == username)
    }

    /// A new HS256 access token for user `i` (python-jose's layout).
    fn mint(&self, i: usize) -> String {
        let user = &self.users[i];
        let now = SystemTime::now();
        let claims = Claims {
            sub: user.id.clone(),
            username: user.username.clone(),
            exp: unix_secs(now + self.access_lifetime),
            iat: unix_secs(now),
        };
        let head = B64.encode(br#"{"alg":"HS256","typ":"JWT"}"#);
        let body = B64.encode(serde_json::to_vec(&claims).unwrap_or_default());
        let signing_input = format!("{head}.{body}");
        let mut mac =
            Hmac::<Sha256>::new_from_slice(&self.secret()).expect("HMAC takes any key length");
        mac.update(signing_input.as_bytes());
        let sig = B64.encode(mac.finalize().into_bytes());
        format!("{signing_input}.{sig}")
    }

    /// An access token for `username`, as a login would give (for tests and benchmarks that call
    /// the backend directly "with a JWT").
    pub(crate) fn access_token_for(&self, username: &str) -> Option<String> {
        self.find(username).map(|i| self.mint(i))
    }

    /// The user an access token belongs to: signature, expiry, then the user row (active).
    pub(crate) fn verify(&self, token: &str) -> Option<&User> {
        let mut parts = token.split('.');
        let (h, p, s) = (parts.next()?, parts.next()?, parts.next()?);
        if parts.next().is_some() {
            return None;
        }
        let header: serde_json::Value = serde_json::from_slice(&B64.decode(h).ok()?).ok()?;
        if header.get("alg").and_then(|a| a.as_str()) != Some("HS256") {
            return None;
        }
        let mut mac = Hmac::<Sha256>::new_from_slice(&self.secret()).ok()?;
        mac.update(h.as_bytes());
        mac.update(b".");
        mac.update(p.as_bytes());
        mac.verify_slice(&B64.decode(s).ok()?).ok()?;
        let claims: Claims = serde_json::from_slice(&B64.decode(p).ok()?).ok()?;
        if claims.exp < unix_secs(SystemTime::now()) {
            return None;
        }
        let user = self.users.iter().find(|u| u.id == claims.sub)?;
        user.active.load(Ordering::Relaxed).then_some(user)
    }

    /// The user of a request's JWT as `get_current_user` finds it: the `access_token` cookie if
    /// present (an invalid one is not retried with the Bearer token), else `Authorization: Bearer`.
    pub(crate) fn current_user(&self, h: &HeaderMap) -> Option<&User> {
        self.verify(&super::server::current_user_token(h)?)
    }

    /// A new refresh token in `family` for user `i`.
    fn issue_refresh(&self, sessions: &mut Sessions, family: u64, user: usize) -> String {
        let token = hex::encode(random_bytes::<64>());
        sessions.tokens.insert(
            Sha256::digest(token.as_bytes()).into(),
            RefreshToken {
                family,
                user,
                expires_at: SystemTime::now() + REFRESH_TOKEN_LIFETIME,
                used: false,
            },
        );
        token
    }

    /// Revokes every refresh-token family (every web session): no refresh succeeds afterwards.
    pub(crate) fn revoke_sessions(&self) {
        let mut s = self.sessions();
        let families: Vec<u64> = s.tokens.values().map(|t| t.family).collect();
        s.revoked_families.extend(families);
    }

    /// A new JWT secret: every access token issued so far stops verifying.
    pub(crate) fn rotate_secret(&self) {
        *self.secret.lock().unwrap_or_else(|e| e.into_inner()) = random_bytes();
    }

    pub(crate) fn set_active(&self, username: &str, active: bool) -> bool {
        match self.find(username) {
            Some(i) => {
                self.users[i].active.store(active, Ordering::Relaxed);
                true
            }
            None => false,
        }
    }

    fn session_cookies(resp: &mut Resp, access: &str, refresh: &str) {
        let h = resp.headers_mut();
        for v in [
            format!("access_token={access}; HttpOnly; Max-Age=86400; Path=/; SameSite=none; Secure"),
            format!(
                "refresh_token={refresh}; HttpOnly; Max-Age=2592000; Path=/api/v1/auth; SameSite=none; Secure"
            ),
        ] {
            if let Ok(v) = hyper::header::HeaderValue::from_str(&v) {
                h.append(hyper::header::SET_COOKIE, v);
            }
        }
    }

    /// `POST /api/v1/auth/login`.
    pub(crate) async fn login(&self, client: IpAddr, req: Request<Incoming>) -> Resp {
        self.counters.logins.fetch_add(1, Ordering::Relaxed);
        if !self.login_window.admit(client, LOGIN_LIMIT, LOGIN_WINDOW) {
            return rate_limited("5 per 15 minute");
        }
        let Some(body) = read_json::<LoginRequest>(req).await else {
            return unprocessable();
        };
        let Some(i) = self
            .find(&body.username)
            .filter(|&i| self.users[i].password_hash == password_hash(&body.password))
        else {
            return detail(StatusCode::UNAUTHORIZED, "Incorrect username or password");
        };
        let user = &self.users[i];
        if !user.active.load(Ordering::Relaxed) {
            return detail(StatusCode::UNAUTHORIZED, "Account is disabled");
        }
        let access = self.mint(i);
        let refresh = {
            let mut s = self.sessions();
            s.next_family += 1;
            let family = s.next_family;
            self.issue_refresh(&mut s, family, i)
        };
        let mut resp = json(
            StatusCode::OK,
            &serde_json::json!({
                "access_token": access,
                "refresh_token": refresh,
                "token_type": "bearer",
                "user": user.response(),
                "must_change_password": false,
            }),
        );
        Self::session_cookies(&mut resp, &access, &refresh);
        resp
    }

    /// `POST /api/v1/auth/refresh`.
    pub(crate) async fn refresh(&self, client: IpAddr, req: Request<Incoming>) -> Resp {
        self.counters.refreshes.fetch_add(1, Ordering::Relaxed);
        if !self
            .refresh_window
            .admit(client, REFRESH_LIMIT, REFRESH_WINDOW)
        {
            return rate_limited("20 per 1 minute");
        }
        let from_cookie = cookie(req.headers(), "refresh_token").filter(|t| !t.is_empty());
        let presented = match from_cookie {
            Some(t) => t,
            None => match read_json::<RefreshRequest>(req).await {
                Some(b) => b.refresh_token,
                None => return detail(StatusCode::UNAUTHORIZED, "Refresh token required"),
            },
        };
        let hash: [u8; 32] = Sha256::digest(presented.as_bytes()).into();
        let (user, refresh) = {
            let mut s = self.sessions();
            let Some(row) = s.tokens.get(&hash) else {
                return detail(StatusCode::UNAUTHORIZED, "Invalid refresh token");
            };
            let (family, user, used, expires_at) = (row.family, row.user, row.used, row.expires_at);
            if used {
                // Reuse of a rotated token: two parties hold the chain; the family dies.
                s.revoked_families.insert(family);
                return detail(StatusCode::UNAUTHORIZED, "Refresh token reuse detected");
            }
            if expires_at < SystemTime::now() || s.revoked_families.contains(&family) {
                return detail(StatusCode::UNAUTHORIZED, "Refresh token expired or revoked");
            }
            if !self.users[user].active.load(Ordering::Relaxed) {
                return detail(StatusCode::UNAUTHORIZED, "Account is disabled");
            }
            if let Some(row) = s.tokens.get_mut(&hash) {
                row.used = true;
            }
            (user, self.issue_refresh(&mut s, family, user))
        };
        let access = self.mint(user);
        let mut resp = json(
            StatusCode::OK,
            &serde_json::json!({
                "access_token": access,
                "refresh_token": refresh,
                "token_type": "bearer",
            }),
        );
        Self::session_cookies(&mut resp, &access, &refresh);
        resp
    }

    /// `GET /api/v1/auth/me` (`get_current_user`).
    pub(crate) fn me(&self, h: &HeaderMap) -> Resp {
        match self.current_user(h) {
            Some(u) => json(StatusCode::OK, &u.response()),
            None => not_authenticated(),
        }
    }
}

/// `get_current_user`'s 401.
pub(crate) fn not_authenticated() -> Resp {
    let mut r = detail(StatusCode::UNAUTHORIZED, "Not authenticated");
    super::server::set(r.headers_mut(), "www-authenticate", "Bearer");
    r
}

fn rate_limited(limit: &str) -> Resp {
    json(
        StatusCode::TOO_MANY_REQUESTS,
        &serde_json::json!({ "error": format!("Rate limit exceeded: {limit}") }),
    )
}

fn unprocessable() -> Resp {
    json(
        StatusCode::UNPROCESSABLE_ENTITY,
        &serde_json::json!({"detail": [{"type": "missing", "loc": ["body"], "msg": "Field required", "input": null}]}),
    )
}

async fn read_json<T: serde::de::DeserializeOwned>(req: Request<Incoming>) -> Option<T> {
    let limited = http_body_util::Limited::new(req.into_body(), MAX_BODY);
    let bytes = limited.collect().await.ok()?.to_bytes();
    serde_json::from_slice(&bytes).ok()
}

/// The client address the backend's limits key on: uvicorn trusts `X-Forwarded-For` from
/// 127.0.0.1 (its default `forwarded_allow_ips`), so behind the agent that is the phone's address.
pub(crate) fn client_ip(peer: SocketAddr, h: &HeaderMap) -> IpAddr {
    if peer.ip().is_loopback() {
        if let Some(ip) = header(h, "x-forwarded-for")
            .and_then(|v| v.rsplit(',').next())
            .and_then(|v| v.trim().parse().ok())
        {
            return ip;
        }
    }
    peer.ip()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn users(lifetime: Duration) -> Users {
        Users::new(
            &[StandInUser {
                username: "Admin".into(),
                password: "pw".into(),
                role: UserRole::Admin,
            }],
            lifetime,
        )
    }

    #[test]
    fn a_minted_token_verifies_until_the_secret_changes() {
        let u = users(Duration::from_secs(60));
        let t = u.access_token_for("admin").expect("user exists");
        assert_eq!(u.verify(&t).map(|u| u.username.as_str()), Some("admin"));
        let mut forged = t.clone();
        forged.push('A');
        assert!(u.verify(&forged).is_none());
        u.rotate_secret();
        assert!(u.verify(&t).is_none());
    }

    #[test]
    fn an_expired_or_deactivated_users_token_does_not_verify() {
        let u = users(Duration::ZERO);
        let t = u.access_token_for("admin").expect("user exists");
        std::thread::sleep(Duration::from_millis(1100));
        assert!(u.verify(&t).is_none());
        let u = users(Duration::from_secs(60));
        let t = u.access_token_for("admin").expect("user exists");
        u.set_active("admin", false);
        assert!(u.verify(&t).is_none());
    }

    #[test]
    fn the_window_admits_its_limit_per_ip() {
        let w = Window::default();
        let a: IpAddr = "10.0.0.1".parse().expect("ip");
        let b: IpAddr = "10.0.0.2".parse().expect("ip");
        for _ in 0..5 {
            assert!(w.admit(a, 5, LOGIN_WINDOW));
        }
        assert!(!w.admit(a, 5, LOGIN_WINDOW));
        assert!(w.admit(b, 5, LOGIN_WINDOW));
    }

    #[test]
    fn loopback_peers_are_trusted_for_forwarded_for() {
        let mut h = HeaderMap::new();
        h.insert("x-forwarded-for", "192.0.2.7".parse().expect("value"));
        let lo: SocketAddr = "127.0.0.1:5000".parse().expect("addr");
        let far: SocketAddr = "198.51.100.1:5000".parse().expect("addr");
        assert_eq!(client_ip(lo, &h).to_string(), "192.0.2.7");
        assert_eq!(client_ip(far, &h).to_string(), "198.51.100.1");
    }
}
