//! The owner CLI's client for a running agent's admin API, plus the small output helpers the
//! owner commands share (tables, relative times, sanitising what phones named themselves).
//!
//! Where: `ARGUS_RELAY_ADMIN_URL` if set (it must be a loopback `http://` URL: the admin API
//! only listens on loopback and the token must not cross a network in clear), else
//! `http://{admin.listen}` from the configuration. Authentication: `Authorization: Bearer`
//! with the token in `<data_dir>/admin.token`. Requests are blocking JSON with a 10 s timeout.

use std::io::Read;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::de::DeserializeOwned;
use serde_json::Value;

use super::CliError;
use crate::base::config::AgentConfig;

/// Overrides where the admin API is (e.g. `http://127.0.0.1:8471`).
pub const ADMIN_URL_ENV: &str = "ARGUS_RELAY_ADMIN_URL";
/// The admin token's file name inside the data directory.
pub const TOKEN_FILE: &str = "admin.token";
/// Connect + whole-request timeout.
pub const TIMEOUT: Duration = Duration::from_secs(10);
/// The admin API's answers are small; anything bigger is not the agent.
const MAX_RESPONSE_BYTES: u64 = 4 * 1024 * 1024;

/// A failed admin call: either the agent answered with an error status (kept apart so commands
/// can explain e.g. an unknown code or device), or anything else, already a [`CliError`].
#[derive(Debug)]
pub enum AdminError {
    Status {
        status: u16,
        code: Option<String>,
        message: String,
        request_id: Option<String>,
    },
    Cli(CliError),
}

impl AdminError {
    /// The project error code (`invalid_code`, `not_found`, …) of an error answer.
    pub fn code(&self) -> Option<&str> {
        match self {
            AdminError::Status { code, .. } => code.as_deref(),
            AdminError::Cli(_) => None,
        }
    }

    pub fn status(&self) -> Option<u16> {
        match self {
            AdminError::Status { status, .. } => Some(*status),
            AdminError::Cli(_) => None,
        }
    }
}

impl From<AdminError> for CliError {
    fn from(e: AdminError) -> Self {
        match e {
            AdminError::Cli(e) => e,
            AdminError::Status {
                status,
                message,
                request_id,
                ..
            } => {
                let mut text = message;
                if status == 401 {
                    text.push_str(
                        " (the admin token does not match the running agent's: was `argus-relay init` re-run \
                         with another data directory, or the agent not restarted?)",
                    );
                }
                if let Some(id) = request_id.filter(|id| !id.is_empty()) {
                    text.push_str(&format!(" [request {}]", sanitize(&id)));
                }
                CliError::Refused(text)
            }
        }
    }
}

impl From<CliError> for AdminError {
    fn from(e: CliError) -> Self {
        AdminError::Cli(e)
    }
}

pub struct AdminClient {
    base: String,
    token: String,
    agent: ureq::Agent,
}

impl std::fmt::Debug for AdminClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AdminClient")
            .field("base", &self.base)
            .field("token", &"<redacted>")
            .finish()
    }
}

impl AdminClient {
    /// Loads the configuration file, finds the admin API and reads the admin token.
    pub fn from_config_file(path: &Path) -> Result<Self, CliError> {
        let cfg = AgentConfig::load(path)?;
        Self::from_config(&cfg)
    }

    pub fn from_config(cfg: &AgentConfig) -> Result<Self, CliError> {
        let base = admin_base_url(std::env::var(ADMIN_URL_ENV).ok().as_deref(), cfg)?;
        let token = read_token(&cfg.data_dir.join(TOKEN_FILE))?;
        Ok(Self::new(base, token))
    }

    pub fn new(base: String, token: String) -> Self {
        let agent = ureq::AgentBuilder::new()
            .timeout_connect(TIMEOUT)
            .timeout(TIMEOUT)
            .redirects(0)
            .build();
        AdminClient {
            base: base.trim_end_matches('/').to_owned(),
            token,
            agent,
        }
    }

    /// One request; `path` starts with `/` and has its segments already encoded
    /// (see [`segment`]). Returns the JSON answer (`Null` for an empty body).
    pub fn try_request(
        &self,
        method: &str,
        path: &str,
        body: Option<&Value>,
    ) -> Result<Value, AdminError> {
        let url = format!("{}{}", self.base, path);
        let req = self
            .agent
            .request(method, &url)
            .set("Authorization", &format!("Bearer {}", self.token))
            .set("Accept", "application/json");
        let result = match (method, body) {
            (_, Some(body)) => req.send_json(body),
            ("POST" | "PUT" | "PATCH", None) => req.send_bytes(&[]),
            (_, None) => req.call(),
        };
        match result {
            Ok(resp) => {
                let bytes = read_body(resp).map_err(|e| self.failed(method, path, &e))?;
                if bytes.iter().all(u8::is_ascii_whitespace) {
                    return Ok(Value::Null);
                }
                serde_json::from_slice(&bytes).map_err(|e| {
                    self.failed(method, path, &format!("the answer is not JSON: {e}"))
                        .into()
                })
            }
            Err(ureq::Error::Status(status, resp)) => {
                let body = read_body(resp)
                    .ok()
                    .and_then(|b| serde_json::from_slice::<Value>(&b).ok());
                Err(status_error(status, body.as_ref()))
            }
            Err(ureq::Error::Transport(t)) => Err(self.transport_error(&t).into()),
        }
    }

    pub fn request(
        &self,
        method: &str,
        path: &str,
        body: Option<&Value>,
    ) -> Result<Value, CliError> {
        Ok(self.try_request(method, path, body)?)
    }

    pub fn get(&self, path: &str) -> Result<Value, CliError> {
        self.request("GET", path, None)
    }

    pub fn post(&self, path: &str, body: Option<&Value>) -> Result<Value, CliError> {
        self.request("POST", path, body)
    }

    fn failed(&self, method: &str, path: &str, reason: &str) -> CliError {
        CliError::Failed(format!("{method} {}{path}: {reason}", self.base))
    }

    fn transport_error(&self, t: &ureq::Transport) -> CliError {
        let detail = std::error::Error::source(t)
            .map(|s| s.to_string())
            .or_else(|| t.message().map(str::to_owned))
            .unwrap_or_else(|| t.kind().to_string());
        match t.kind() {
            ureq::ErrorKind::ConnectionFailed | ureq::ErrorKind::Dns | ureq::ErrorKind::Io => {
                let reason = if is_timeout(t) {
                    format!("no answer within {} s", TIMEOUT.as_secs())
                } else {
                    detail
                };
                CliError::AgentUnreachable {
                    url: self.base.clone(),
                    reason,
                }
            }
            kind => CliError::Failed(format!(
                "talking to the agent at {}: {kind}: {detail}",
                self.base
            )),
        }
    }
}

fn is_timeout(t: &ureq::Transport) -> bool {
    std::error::Error::source(t)
        .and_then(|s| s.downcast_ref::<std::io::Error>())
        .is_some_and(|e| {
            matches!(
                e.kind(),
                std::io::ErrorKind::TimedOut | std::io::ErrorKind::WouldBlock
            )
        })
}

fn read_body(resp: ureq::Response) -> Result<Vec<u8>, String> {
    let mut bytes = Vec::new();
    resp.into_reader()
        .take(MAX_RESPONSE_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| format!("reading the answer: {e}"))?;
    if bytes.len() as u64 > MAX_RESPONSE_BYTES {
        return Err("the answer is too large".into());
    }
    Ok(bytes)
}

/// Maps an error answer (`{"error":{"code","message","request_id"}}`, or anything else).
fn status_error(status: u16, body: Option<&Value>) -> AdminError {
    let error = body.and_then(|b| b.get("error"));
    let field = |name: &str| {
        error
            .and_then(|e| e.get(name))
            .and_then(Value::as_str)
            .map(str::to_owned)
    };
    let message = field("message")
        .map(|m| sanitize(&m))
        .unwrap_or_else(|| format!("HTTP {status}"));
    AdminError::Status {
        status,
        code: field("code"),
        message,
        request_id: field("request_id"),
    }
}

/// The admin API's base URL (no trailing slash): the override if given, else from the config.
pub fn admin_base_url(override_url: Option<&str>, cfg: &AgentConfig) -> Result<String, CliError> {
    match override_url.map(str::trim).filter(|u| !u.is_empty()) {
        Some(url) => {
            check_loopback_http(url)?;
            Ok(url.trim_end_matches('/').to_owned())
        }
        None => Ok(format!("http://{}", cfg.admin.listen)),
    }
}

fn check_loopback_http(url: &str) -> Result<(), CliError> {
    let bad = || {
        CliError::Usage(format!(
            "{ADMIN_URL_ENV}={url:?}: must be a loopback http:// URL such as http://127.0.0.1:8471 \
             (the admin API only listens on loopback)"
        ))
    };
    let rest = url.strip_prefix("http://").ok_or_else(bad)?;
    let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
    if authority.contains('@') {
        return Err(bad());
    }
    let host = if let Some(v6) = authority.strip_prefix('[') {
        v6.split(']').next().unwrap_or("")
    } else {
        authority.split(':').next().unwrap_or("")
    };
    let loopback = host.eq_ignore_ascii_case("localhost")
        || host.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback());
    if loopback {
        Ok(())
    } else {
        Err(bad())
    }
}

/// Reads and trims the admin token, with errors that say what to do.
pub fn read_token(path: &Path) -> Result<String, CliError> {
    let dir = path.parent().map(PathBuf::from).unwrap_or_default();
    let text = std::fs::read_to_string(path).map_err(|e| {
        let hint = match e.kind() {
            std::io::ErrorKind::NotFound => {
                "run `argus-relay init` first, or pass the agent's --config".to_owned()
            }
            std::io::ErrorKind::PermissionDenied => format!(
                "run this command as the agent's user (the owner of {}), e.g. with sudo -u",
                dir.display()
            ),
            _ => format!(
                "run this command as the agent's user (the owner of {}), or run `argus-relay init`",
                dir.display()
            ),
        };
        CliError::Failed(format!(
            "cannot read the admin token {}: {e}; {hint}",
            path.display()
        ))
    })?;
    let token = text.trim();
    if token.is_empty() {
        return Err(CliError::Failed(format!(
            "the admin token {} is empty; run `argus-relay init` to create it",
            path.display()
        )));
    }
    if !token.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(CliError::Failed(format!(
            "the admin token {} is malformed; run `argus-relay init` to recreate it",
            path.display()
        )));
    }
    Ok(token.to_owned())
}

/// Percent-encodes one path segment (an id or a code typed by the owner).
pub fn segment(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Decodes a JSON answer into the shape a command expects.
pub fn decode<T: DeserializeOwned>(value: Value, what: &str) -> Result<T, CliError> {
    serde_json::from_value(value)
        .map_err(|e| CliError::Failed(format!("unexpected answer from the agent ({what}): {e}")))
}

/// Prints a JSON value for scripts (pretty, one document).
pub fn print_json(value: &Value) -> Result<(), CliError> {
    let text = serde_json::to_string_pretty(value)
        .map_err(|e| CliError::Failed(format!("cannot print JSON: {e}")))?;
    println!("{text}");
    Ok(())
}

/// Makes text that came from a phone (names, models) or the network safe to print: control
/// characters (terminal escapes, newlines) become `?`.
pub fn sanitize(s: &str) -> String {
    s.chars()
        .map(|c| if c.is_control() { '?' } else { c })
        .collect()
}

/// [`sanitize`], then cut to `max` characters with `…`.
pub fn cell(s: &str, max: usize) -> String {
    let clean = sanitize(s);
    if clean.chars().count() <= max {
        clean
    } else {
        let mut cut: String = clean.chars().take(max.saturating_sub(1)).collect();
        cut.push('…');
        cut
    }
}

/// A plain text table: columns padded to their widest cell, two spaces apart.
pub fn table(headers: &[&str], rows: &[Vec<String>]) -> String {
    let mut widths: Vec<usize> = headers.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (i, c) in row.iter().enumerate() {
            if let Some(w) = widths.get_mut(i) {
                *w = (*w).max(c.chars().count());
            }
        }
    }
    let mut out = String::new();
    let mut line = |cells: &mut dyn Iterator<Item = &str>| {
        let mut text = String::new();
        for (i, c) in cells.enumerate() {
            if i > 0 {
                text.push_str("  ");
            }
            text.push_str(c);
            let pad = widths
                .get(i)
                .copied()
                .unwrap_or(0)
                .saturating_sub(c.chars().count());
            text.extend(std::iter::repeat_n(' ', pad));
        }
        out.push_str(text.trim_end());
        out.push('\n');
    };
    line(&mut headers.iter().copied());
    for row in rows {
        line(&mut row.iter().map(String::as_str));
    }
    out
}

pub fn now_unix() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

/// "just now", "5 min ago", "3 h ago", "2 days ago", "in 4 min"; `None` → "never".
pub fn relative_time(at: Option<i64>, now: i64) -> String {
    let Some(at) = at else {
        return "never".to_owned();
    };
    let diff = now.saturating_sub(at);
    let span = |secs: i64| -> String {
        let secs = secs.unsigned_abs();
        match secs {
            0..=59 => format!("{secs} s"),
            60..=3599 => format!("{} min", secs / 60),
            3600..=86_399 => format!("{} h", secs / 3600),
            86_400..=172_799 => "1 day".to_owned(),
            _ if secs < 365 * 86_400 => format!("{} days", secs / 86_400),
            _ if secs < 2 * 365 * 86_400 => "1 year".to_owned(),
            _ => format!("{} years", secs / (365 * 86_400)),
        }
    };
    if (0..10).contains(&diff) {
        "just now".to_owned()
    } else if diff > 0 {
        format!("{} ago", span(diff))
    } else {
        format!("in {}", span(diff))
    }
}

/// `m:ss` for a countdown.
pub fn countdown(secs: u64) -> String {
    format!("{}:{:02}", secs / 60, secs % 60)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg() -> AgentConfig {
        AgentConfig::new(
            "/var/lib/argus-relay".into(),
            "https://r.example".into(),
            "http://127.0.0.1:8000".into(),
        )
    }

    #[test]
    fn base_url_from_config_or_loopback_override() {
        assert_eq!(
            admin_base_url(None, &cfg()).unwrap(),
            "http://127.0.0.1:8471"
        );
        assert_eq!(
            admin_base_url(Some(""), &cfg()).unwrap(),
            "http://127.0.0.1:8471"
        );
        assert_eq!(
            admin_base_url(Some("http://127.0.0.1:9000/"), &cfg()).unwrap(),
            "http://127.0.0.1:9000"
        );
        assert_eq!(
            admin_base_url(Some("http://localhost:9000"), &cfg()).unwrap(),
            "http://localhost:9000"
        );
        assert_eq!(
            admin_base_url(Some("http://[::1]:9000"), &cfg()).unwrap(),
            "http://[::1]:9000"
        );
        for bad in [
            "https://127.0.0.1:9000",
            "http://10.0.0.2:8471",
            "http://example.com",
            "http://127.0.0.1@evil:1",
            "ftp://x",
        ] {
            assert!(
                matches!(admin_base_url(Some(bad), &cfg()), Err(CliError::Usage(_))),
                "{bad}"
            );
        }
    }

    #[test]
    fn token_is_trimmed_and_errors_explain() {
        let dir =
            std::env::temp_dir().join(format!("argus-relay-admin-client-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join(TOKEN_FILE);
        std::fs::write(&path, "  abc123\n").unwrap();
        assert_eq!(read_token(&path).unwrap(), "abc123");
        std::fs::write(&path, "\n").unwrap();
        assert!(read_token(&path)
            .unwrap_err()
            .to_string()
            .contains("argus-relay init"));
        std::fs::write(&path, "ab\u{1b}c").unwrap();
        assert!(read_token(&path).is_err());
        let missing = read_token(&dir.join("nope")).unwrap_err().to_string();
        assert!(missing.contains("argus-relay init"), "{missing}");
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn error_bodies_become_refusals_with_the_message() {
        let body = serde_json::json!({"error":{"code":"invalid_code","message":"invalid, expired or already used code","request_id":"r1"}});
        let e = status_error(404, Some(&body));
        assert_eq!(e.code(), Some("invalid_code"));
        assert_eq!(e.status(), Some(404));
        match CliError::from(e) {
            CliError::Refused(m) => {
                assert_eq!(m, "invalid, expired or already used code [request r1]")
            }
            other => panic!("{other:?}"),
        }
        match CliError::from(status_error(502, None)) {
            CliError::Refused(m) => assert_eq!(m, "HTTP 502"),
            other => panic!("{other:?}"),
        }
        match CliError::from(status_error(401, None)) {
            CliError::Refused(m) => assert!(m.contains("admin token"), "{m}"),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn connection_refused_is_agent_unreachable() {
        // Bind then drop to find a port nothing listens on.
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let client = AdminClient::new(format!("http://127.0.0.1:{port}"), "t".into());
        match client.get("/admin/devices") {
            Err(CliError::AgentUnreachable { url, .. }) => {
                assert_eq!(url, format!("http://127.0.0.1:{port}"))
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn requests_carry_the_token_and_json() {
        use std::io::{BufRead, BufReader, Write};
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let server = std::thread::spawn(move || {
            let mut seen = Vec::new();
            for answer in [
                (201, r#"{"code":"K7P3QX"}"#),
                (
                    404,
                    r#"{"error":{"code":"not_found","message":"no such device","request_id":"x"}}"#,
                ),
            ] {
                let (stream, _) = listener.accept().unwrap();
                let mut reader = BufReader::new(stream.try_clone().unwrap());
                let mut head = String::new();
                let mut len = 0usize;
                loop {
                    let mut line = String::new();
                    reader.read_line(&mut line).unwrap();
                    if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                        len = v.trim().parse().unwrap();
                    }
                    head.push_str(&line);
                    if line == "\r\n" {
                        break;
                    }
                }
                let mut body = vec![0; len];
                reader.read_exact(&mut body).unwrap();
                seen.push((head, String::from_utf8(body).unwrap()));
                let (status, text) = answer;
                let mut stream = stream;
                write!(
                    stream,
                    "HTTP/1.1 {status} X\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{text}",
                    text.len()
                )
                .unwrap();
            }
            seen
        });
        let client = AdminClient::new(format!("http://{addr}"), "sekret".into());
        let v = client
            .post(
                "/admin/pairing-codes",
                Some(&serde_json::json!({"scope":"viewer"})),
            )
            .unwrap();
        assert_eq!(v["code"], "K7P3QX");
        let e = client
            .try_request(
                "DELETE",
                &format!("/admin/devices/{}", segment("dev_1/x")),
                None,
            )
            .unwrap_err();
        assert_eq!(e.status(), Some(404));
        let seen = server.join().unwrap();
        assert!(seen[0]
            .0
            .starts_with("POST /admin/pairing-codes HTTP/1.1\r\n"));
        assert!(seen[0]
            .0
            .to_ascii_lowercase()
            .contains("authorization: bearer sekret\r\n"));
        assert_eq!(seen[0].1, r#"{"scope":"viewer"}"#);
        assert!(seen[1]
            .0
            .starts_with("DELETE /admin/devices/dev_1%2Fx HTTP/1.1\r\n"));
    }

    #[test]
    fn output_helpers() {
        assert_eq!(sanitize("Ann\u{1b}[2J\n"), "Ann?[2J?");
        assert_eq!(cell("abcdef", 4), "abc…");
        assert_eq!(cell("abc", 4), "abc");
        let t = table(
            &["ID", "NAME"],
            &[
                vec!["dev_1".into(), "Ann".into()],
                vec!["d".into(), "Bob".into()],
            ],
        );
        assert_eq!(t, "ID     NAME\ndev_1  Ann\nd      Bob\n");
        assert_eq!(relative_time(None, 100), "never");
        assert_eq!(relative_time(Some(1000), 1003), "just now");
        assert_eq!(relative_time(Some(1000), 1000 + 300), "5 min ago");
        assert_eq!(relative_time(Some(0), 3 * 3600), "3 h ago");
        assert_eq!(relative_time(Some(0), 2 * 86_400 + 5), "2 days ago");
        assert_eq!(relative_time(Some(600), 0), "in 10 min");
        assert_eq!(countdown(600), "10:00");
        assert_eq!(countdown(65), "1:05");
    }
}
