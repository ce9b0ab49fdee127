//! The self-hosted relay (docs/selfhost.md): the same Worker bundle under plain workerd behind
//! Caddy on a "VPS", the agent at "home" tunnelling out through rathole, a phone that reaches
//! only the VPS — each in a network namespace of its own ([`e2e::selfhost`]).
//!
//! Needs rathole, caddy and workerd (`scripts/bootstrap.sh` installs them; `make test` runs it):
//! without them the test fails and says so.

use std::path::Path;
use std::time::{Duration, Instant};

use e2e::agent;
use e2e::process::ChildProcess;
use e2e::selfhost::{self, output_in, spawn_in, Namespaces, Programs};
use e2e::stack::BACKEND_API_KEY;
use e2e::workspace_root;
use serde_json::{json, Value};

#[test]
fn wrangler_toml_says_the_limits_the_self_hosted_worker_counts() {
    let text = std::fs::read_to_string(workspace_root().join("wrangler.toml")).unwrap();
    let doc: toml::Value = toml::from_str(&text).unwrap();
    let limit = |name: &str| {
        let rl = doc["ratelimits"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["name"].as_str() == Some(name))
            .unwrap_or_else(|| panic!("{name} in wrangler.toml"));
        (
            rl["simple"]["limit"].as_integer().unwrap() as u32,
            rl["simple"]["period"].as_integer().unwrap() as u32,
        )
    };
    use argus_shared::rate_limit::{DEVICE, PAIRING};
    assert_eq!(
        limit("PAIRING_LIMITER"),
        (PAIRING.requests, PAIRING.period_secs)
    );
    assert_eq!(
        limit("DEVICE_LIMITER"),
        (DEVICE.requests, DEVICE.period_secs)
    );
}

struct Vps<'a> {
    ns: &'a Namespaces,
    programs: &'a Programs,
    dir: &'a Path,
    rathole: Option<ChildProcess>,
    workerd: Option<ChildProcess>,
    caddy: Option<ChildProcess>,
}

impl Vps<'_> {
    fn start_rathole(&mut self) {
        let conf = self.dir.join("rathole.toml");
        let mut p = spawn_in(
            self.ns,
            &self.ns.vps,
            "rathole server",
            &self.programs.rathole,
            &["--server", &conf.to_string_lossy()],
            &[("NO_COLOR", "1")],
        );
        p.wait_for_line(Duration::from_secs(20), |l| {
            l.contains("Listening at").then_some(())
        })
        .unwrap();
        self.rathole = Some(p);
    }

    fn start_workerd(&mut self) {
        let env = std::fs::read_to_string(self.dir.join("edge.env")).unwrap();
        let secret = env
            .trim()
            .strip_prefix("RELAY_SIGNING_SECRET=")
            .expect("edge.env holds the secret")
            .to_owned();
        let capnp = self.dir.join("workerd.capnp");
        let mut p = spawn_in(
            self.ns,
            &self.ns.vps,
            "workerd",
            &self.programs.workerd,
            &["serve", &capnp.to_string_lossy(), "--verbose"],
            &[("RELAY_SIGNING_SECRET", &secret)],
        );
        // workerd prints nothing when it listens: wait for its socket.
        wait_until(Duration::from_secs(30), || {
            output_in(
                self.ns,
                &self.ns.vps,
                &self.programs.curl,
                &["-s", "-o", "/dev/null", "http://127.0.0.1:8787/"],
            )
            .0
        })
        .unwrap_or_else(|| panic!("workerd did not listen: {}", p.output_text()));
        assert!(p.is_running());
        self.workerd = Some(p);
    }

    fn start_caddy(&mut self) {
        let caddy_home = self.dir.join("caddy-home");
        let home = caddy_home.to_string_lossy().into_owned();
        let file = self.dir.join("Caddyfile");
        let p = spawn_in(
            self.ns,
            &self.ns.vps,
            "caddy",
            &self.programs.caddy,
            &[
                "run",
                "--config",
                &file.to_string_lossy(),
                "--adapter",
                "caddyfile",
            ],
            &[
                ("HOME", &home),
                ("XDG_DATA_HOME", &format!("{home}/data")),
                ("XDG_CONFIG_HOME", &format!("{home}/config")),
            ],
        );
        self.caddy = Some(p);
    }

    fn root_ca(&self) -> Vec<u8> {
        let path = self
            .dir
            .join("caddy-home/data/caddy/pki/authorities/local/root.crt");
        wait_until(Duration::from_secs(30), || path.exists())
            .unwrap_or_else(|| panic!("caddy made no local CA: {}", self.logs()));
        std::fs::read(path).unwrap()
    }

    fn logs(&self) -> String {
        let mut out = String::new();
        for (name, p) in [
            ("rathole server", &self.rathole),
            ("workerd", &self.workerd),
            ("caddy", &self.caddy),
        ] {
            if let Some(p) = p {
                let text = p.output_text();
                let tail: Vec<&str> = text.lines().rev().take(30).collect();
                out.push_str(&format!("--- {name}\n"));
                for l in tail.into_iter().rev() {
                    out.push_str(l);
                    out.push('\n');
                }
            }
        }
        out
    }
}

fn wait_until(limit: Duration, mut ok: impl FnMut() -> bool) -> Option<()> {
    let deadline = Instant::now() + limit;
    while Instant::now() < deadline {
        if ok() {
            return Some(());
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    None
}

/// The agent's `status --json` (run in the home namespace, where its admin API listens).
fn agent_status(ns: &Namespaces, config: &Path) -> Value {
    let (ok, out) = output_in(
        ns,
        &ns.home,
        &agent::binary(),
        &["status", "--json", "--config", &config.to_string_lossy()],
    );
    if !ok {
        return json!({"error": out});
    }
    serde_json::from_str(&out).unwrap_or_else(|_| json!({"error": out}))
}

/// Waits for the tunnel's state; returns the status document.
fn wait_tunnel(ns: &Namespaces, config: &Path, state: &str, limit: Duration) -> Value {
    let deadline = Instant::now() + limit;
    loop {
        let s = agent_status(ns, config);
        if s["tunnel"]["state"] == state {
            return s;
        }
        if Instant::now() > deadline {
            panic!("the tunnel did not become {state}: {s:#}");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn selfhosted_relay_from_phone_to_home_through_the_vps() {
    let test = "selfhosted_relay_from_phone_to_home_through_the_vps";
    let Some((ns, programs)) = selfhost::run_in_phone_namespace(test) else {
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let vps_dir = dir.join("vps");

    // Home: the stand-in ArgusAI and the agent, configured by `init` and `selfhost init`.
    let mut backend = spawn_in(
        &ns,
        &ns.home,
        "stand-in backend",
        Path::new(env!("CARGO_BIN_EXE_stand-in-backend")),
        &["--listen", "127.0.0.1:8000", "--api-key", BACKEND_API_KEY],
        &[],
    );
    backend
        .wait_for_line(Duration::from_secs(60), |l| {
            l.starts_with("listening on").then_some(())
        })
        .unwrap();
    let config = agent::Agent::init(
        &dir.join("agent"),
        "https://relay.test",
        "http://127.0.0.1:8000",
        Some(BACKEND_API_KEY),
    )
    .unwrap();
    let cfg = config.to_string_lossy().into_owned();
    let bundle = workspace_root().join("edge-worker/build");
    let summary = agent::run_cli(
        &[
            "selfhost",
            "init",
            "--config",
            &cfg,
            "--domain",
            selfhost::DOMAIN,
            "--vps-address",
            selfhost::VPS_TO_HOME,
            "--tls",
            "internal",
            "--out",
            &vps_dir.to_string_lossy(),
            "--worker-bundle",
            &bundle.to_string_lossy(),
        ],
        &[],
    )
    .unwrap();
    assert!(summary.contains("pins the server key"), "{summary}");
    agent::Agent::patch_config(
        &config,
        &format!(
            "[rathole]\nbinary = {:?}\nready_timeout_secs = 20\n",
            programs.rathole.to_string_lossy()
        ),
    )
    .unwrap();

    // The VPS.
    let mut vps = Vps {
        ns: &ns,
        programs: &programs,
        dir: &vps_dir,
        rathole: None,
        workerd: None,
        caddy: None,
    };
    vps.start_rathole();
    vps.start_workerd();
    vps.start_caddy();
    let root_ca = vps.root_ca();

    let mut agent_proc = spawn_in(
        &ns,
        &ns.home,
        "argus-relay run",
        &agent::binary(),
        &["run", "--config", &cfg],
        &[("RUST_LOG", "info")],
    );
    agent_proc
        .wait_for_line(Duration::from_secs(30), |l| {
            l.contains("\"listening\"").then_some(())
        })
        .unwrap();
    let s = wait_tunnel(&ns, &config, "connected", Duration::from_secs(30));
    assert_eq!(s["tunnel"]["provider"], "rathole");
    assert_eq!(s["tunnel"]["connected"], true);

    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let phone = reqwest::Client::builder()
        .add_root_certificate(reqwest::Certificate::from_pem(&root_ca).unwrap())
        .resolve(
            selfhost::DOMAIN,
            format!("{}:443", selfhost::VPS_TO_PHONE).parse().unwrap(),
        )
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(20))
        .build()
        .unwrap();
    let base = format!("https://{}", selfhost::DOMAIN);
    let logs = |vps: &Vps, agent: &ChildProcess| {
        let text = agent.output_text();
        let tail: Vec<&str> = text.lines().rev().take(40).collect();
        format!(
            "{}--- agent\n{}",
            vps.logs(),
            tail.into_iter().rev().collect::<Vec<_>>().join("\n")
        )
    };

    // Pairing through the VPS, with an owner code made at home.
    let pair_phone = |name: &str| {
        let (ok, out) = output_in(
            &ns,
            &ns.home,
            &agent::binary(),
            &[
                "pair",
                "--no-wait",
                "--json",
                "--scope",
                "owner",
                "--config",
                &cfg,
            ],
        );
        assert!(ok, "{out}");
        let code: Value = serde_json::from_str(&out).unwrap();
        let pairing = json!({"code": code["code"], "device_info": {"name": name, "model": "iPhone15,2",
            "platform": "ios", "os_version": "18.1", "app_version": "1.4.0"}});
        let (status, answer) = rt.block_on(async {
            let r = phone
                .post(format!("{base}/api/v1/devices/pair"))
                .json(&pairing)
                .send()
                .await
                .unwrap();
            (
                r.status().as_u16(),
                r.json::<Value>().await.unwrap_or(Value::Null),
            )
        });
        assert_eq!(
            status,
            200,
            "pairing: {answer}\n{}",
            logs(&vps, &agent_proc)
        );
        (
            answer["access_token"].as_str().unwrap().to_owned(),
            answer["device_id"].as_str().unwrap().to_owned(),
        )
    };
    let (token, device_id) = pair_phone("Phone");
    // A second device: its own API budget (below).
    let (other_token, _) = pair_phone("Tablet");
    // `GET path` with a device token: the status and the JSON error body, if any.
    let status_of = |token: &str, path: &str| {
        rt.block_on(async {
            let r = phone
                .get(format!("{base}{path}"))
                .bearer_auth(token)
                .send()
                .await
                .unwrap();
            let status = r.status().as_u16();
            (status, r.json::<Value>().await.unwrap_or(Value::Null))
        })
    };

    let get = |path: &str, extra: &[(&str, &str)]| {
        rt.block_on(async {
            let mut rb = phone.get(format!("{base}{path}")).bearer_auth(&token);
            for (k, v) in extra {
                rb = rb.header(*k, *v);
            }
            match rb.send().await {
                Ok(r) => {
                    let status = r.status().as_u16();
                    let headers = r.headers().clone();
                    (
                        status,
                        headers,
                        r.bytes().await.unwrap_or_default().to_vec(),
                    )
                }
                Err(e) => (0, Default::default(), e.to_string().into_bytes()),
            }
        })
    };

    // Events, a thumbnail transcoded by the Worker, a video range.
    let (status, _, body) = get("/api/v1/events?limit=5", &[]);
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    let events: Value = serde_json::from_slice(&body).unwrap();
    let first = &events["events"][0];
    let id = first["id"].as_str().expect("an event id").to_owned();
    // The 1920×1080 photo (the stand-in serves it as a thumbnail), made small by the Worker.
    let thumb = format!("thumbnails/{}/cups-1920x1080.jpg", e2e::backend::PHOTO_DATE);
    let (status, headers, body) = get(
        // `thumbnails/DATE/FILE`, served under /api/v1/.
        &format!("/api/v1/{}?quality=mobile", thumb.trim_start_matches('/')),
        &[("accept", "image/jpeg")],
    );
    assert_eq!(
        status,
        200,
        "{}\n{}",
        String::from_utf8_lossy(&body),
        logs(&vps, &agent_proc)
    );
    assert_eq!(headers["content-type"], "image/jpeg");
    assert!(body.starts_with(&[0xFF, 0xD8]), "a JPEG");
    assert!(
        body.len() < 60_000,
        "smaller than the original: {} bytes",
        body.len()
    );
    // Made by the Worker's image pipeline (the same wasm as on Cloudflare).
    let image = headers
        .get("x-relay-image")
        .map(|v| v.to_str().unwrap_or("").to_owned())
        .unwrap_or_else(|| panic!("no x-relay-image: {headers:?}"));
    assert!(
        !image.starts_with("passthrough"),
        "transcoded at the edge: {image}"
    );
    assert_eq!(headers["x-relay-cache"], "miss");
    // The Cache API under workerd is the cache Worker `selfhost init` writes: the second answer
    // comes from the VPS's cache, and the original crossed the tunnel once.
    let transcoded = body;
    let (status, headers, body) = get(
        &format!("/api/v1/{}?quality=mobile", thumb.trim_start_matches('/')),
        &[("accept", "image/jpeg")],
    );
    assert_eq!(status, 200, "{}", logs(&vps, &agent_proc));
    assert_eq!(headers["x-relay-cache"], "hit", "{headers:?}");
    assert_eq!(body, transcoded, "the stored thumbnail");
    let agent_log = agent_proc.output_text();
    let fetched = agent_log
        .lines()
        .filter(|l| {
            l.contains("listener=\"tunnel\"") && l.contains(&format!("path=/api/v1/{thumb} "))
        })
        .count();
    assert_eq!(
        fetched, 1,
        "the agent served the original once:\n{agent_log}"
    );
    let (status, headers, body) = get(
        &format!("/api/v1/events/{id}/video"),
        &[("range", "bytes=100-4195")],
    );
    assert_eq!(status, 206, "{}", logs(&vps, &agent_proc));
    assert_eq!(body.len(), 4096);
    assert!(headers["content-range"]
        .to_str()
        .unwrap()
        .starts_with("bytes 100-4195/"));

    // A WebSocket through Caddy, workerd and rathole.
    rt.block_on(async {
        use tokio_tungstenite::tungstenite::client::IntoClientRequest;
        let mut roots = rustls::RootCertStore::empty();
        for cert in rustls_pemfile_certs(&root_ca) {
            roots.add(cert).unwrap();
        }
        let tls = rustls::ClientConfig::builder_with_provider(std::sync::Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
        let tcp = tokio::net::TcpStream::connect((selfhost::VPS_TO_PHONE, 443))
            .await
            .unwrap();
        let tls = tokio_rustls::TlsConnector::from(std::sync::Arc::new(tls))
            .connect(
                rustls::pki_types::ServerName::try_from(selfhost::DOMAIN).unwrap(),
                tcp,
            )
            .await
            .unwrap();
        let mut req = format!("wss://{}/ws", selfhost::DOMAIN)
            .into_client_request()
            .unwrap();
        e2e::ws::bearer(&mut req, &token);
        let (_ws, resp) = tokio_tungstenite::client_async(req, tls)
            .await
            .unwrap_or_else(|e| panic!("WebSocket through the VPS: {e}"));
        assert_eq!(resp.status(), 101);
    });

    // The home side is reachable only through the relay: not from the phone directly, and on
    // the VPS only rathole's loopback port leads there — where the agent wants the edge
    // signature.
    let direct = std::net::TcpStream::connect_timeout(
        &format!("{}:8470", selfhost::HOME).parse().unwrap(),
        Duration::from_secs(2),
    );
    assert!(direct.is_err(), "the phone reached the home namespace");
    let (_, code) = output_in(
        &ns,
        &ns.vps,
        &programs.curl,
        &[
            "-s",
            "-o",
            "/dev/null",
            "-w",
            "%{http_code}",
            &format!(
                "http://127.0.0.1:{}/api/v1/events",
                selfhost::TUNNEL_ORIGIN_PORT
            ),
        ],
    );
    assert_eq!(code.trim(), "401", "an unsigned request through the tunnel");

    // rathole server restart: reconnecting, then connected again, and requests resume.
    vps.rathole.take().unwrap().kill();
    wait_tunnel(&ns, &config, "reconnecting", Duration::from_secs(15));
    vps.start_rathole();
    let s = wait_tunnel(&ns, &config, "connected", Duration::from_secs(30));
    assert!(s["tunnel"]["reconnects"].as_u64().unwrap() >= 1, "{s:#}");
    let (status, _, _) = get("/api/v1/events?limit=1", &[]);
    assert_eq!(status, 200, "after the rathole restart");

    // workerd restart: requests resume (the edge state is fetched again).
    vps.workerd.take().unwrap().kill();
    let (status, _, _) = get("/api/v1/events?limit=1", &[]);
    assert_eq!(status, 502, "Caddy without workerd");
    vps.start_workerd();
    let (status, _, _) = get("/api/v1/events?limit=1", &[]);
    assert_eq!(status, 200, "after the workerd restart");

    // The limits count in 60-second periods of Unix time, with the previous period weighted by
    // what is left of it (Cloudflare's approximation): counted exactly only within one period.
    let into_period = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
        % 60;
    if into_period > 35 {
        std::thread::sleep(Duration::from_secs(61 - into_period));
    }
    // Rate limit, counted in workerd's isolate with Cloudflare's numbers: the pairing routes
    // allow 60 a minute per client IP (Caddy's header, not anything the phone sends).
    let limited = rt.block_on(async {
        let mut limited = None;
        for i in 0..70 {
            let r = phone
                .get(format!("{base}/api/v1/health"))
                .header("x-argus-client-ip", format!("198.51.100.{i}"))
                .header("cf-connecting-ip", format!("198.51.100.{i}"))
                .send()
                .await
                .unwrap();
            if r.status() == 429 {
                assert_eq!(r.headers()["retry-after"], "60", "the edge's 429");
                let body: Value = r.json().await.unwrap_or(Value::Null);
                assert_eq!(body["error"]["code"], "rate_limited", "{body}");
                limited = Some(i);
                break;
            }
        }
        limited
    });
    let limited = limited.expect("the pairing limit applies");
    // The limit (the pairing counted before workerd's restart, which starts the count over); one
    // more only if the loop straddled a period boundary (the sliding window's rounding).
    assert!(
        (60..=61).contains(&limited),
        "limited after {limited} requests"
    );

    // The API: 600 a minute per device (one request since workerd's restart already counted).
    let allowed = rt.block_on(async {
        let one = |_| {
            let (phone, url, token) = (
                phone.clone(),
                format!("{base}/api/v1/health"),
                token.clone(),
            );
            async move {
                let url = url.replace("/api/v1/health", "/api/v1/events?limit=1");
                phone
                    .get(url)
                    .bearer_auth(token)
                    .send()
                    .await
                    .map(|r| r.status().as_u16())
            }
        };
        let mut allowed = 0;
        for chunk in (0..650).collect::<Vec<_>>().chunks(10) {
            let answers = futures_util::future::join_all(chunk.iter().map(one)).await;
            for a in answers {
                match a {
                    Ok(200) => allowed += 1,
                    Ok(429) => {}
                    other => panic!("{other:?}"),
                }
            }
        }
        allowed
    });
    eprintln!("device limit: {allowed} of 650 allowed");
    assert!((599..=601).contains(&allowed), "{allowed} of 650 allowed");
    let (status, body) = status_of(&token, "/api/v1/events?limit=1");
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (429, Some("rate_limited")),
        "{body}"
    );
    assert_eq!(
        status_of(&other_token, "/api/v1/events?limit=1").0,
        200,
        "another device has its own budget"
    );

    // Revocation: refused at the edge within the edge state's age.
    let (ok, out) = output_in(
        &ns,
        &ns.home,
        &agent::binary(),
        &["revoke", &device_id, "--config", &cfg],
    );
    assert!(ok, "{out}");
    // The same bound as on Cloudflare (edge_gate.rs): the edge state's MAX_AGE_SECS, plus one
    // second for the request that observes it. (The device may still be rate limited: 429.)
    let since = Instant::now();
    let bound = Duration::from_secs(argus_shared::edge_state::MAX_AGE_SECS + 1);
    let refused = |(status, body): &(u16, Value)| {
        *status == 401
            && body["error"]["code"] == "invalid_token"
            && body["error"]["reason"] == "token.device_revoked"
    };
    wait_until(bound + Duration::from_secs(10), || {
        refused(&status_of(&token, "/api/v1/events?limit=1"))
    })
    .expect("a revoked device is refused at the edge");
    let took = since.elapsed();
    eprintln!("revocation reached the self-hosted edge after {took:?} (bound {bound:?})");
    assert!(took <= bound, "{took:?}");
    // Once refused, it stays refused and nothing more of it crosses the tunnel.
    let tunnel_events = |log: &str| {
        log.lines()
            .filter(|l| l.contains("listener=\"tunnel\"") && l.contains("path=/api/v1/events "))
            .count()
    };
    let forwarded = tunnel_events(&agent_proc.output_text());
    for _ in 0..3 {
        let answer = status_of(&token, "/api/v1/events?limit=1");
        assert!(refused(&answer), "{answer:?}");
    }
    assert_eq!(tunnel_events(&agent_proc.output_text()), forwarded);

    // Wrong server key: the agent does not connect, and doctor says why.
    agent_proc.kill();
    let other = e2e_other_key();
    agent::Agent::patch_config(
        &config,
        &format!("[rathole]\nserver_public_key = {other:?}\n"),
    )
    .unwrap();
    let mut agent_proc = spawn_in(
        &ns,
        &ns.home,
        "argus-relay run",
        &agent::binary(),
        &["run", "--config", &cfg],
        &[("RUST_LOG", "info")],
    );
    agent_proc
        .wait_for_line(Duration::from_secs(30), |l| {
            l.contains("\"listening\"").then_some(())
        })
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    let s = loop {
        let s = agent_status(&ns, &config);
        let why = s["tunnel"]["last_error"]["message"].as_str().unwrap_or("");
        if why.contains("Noise handshake") {
            break s;
        }
        assert!(
            Instant::now() < deadline,
            "no handshake failure reported: {s:#}"
        );
        std::thread::sleep(Duration::from_millis(200));
    };
    assert_eq!(s["tunnel"]["connected"], false);
    // Still trying, or waiting to restart rathole after `ready_timeout_secs`.
    assert!(
        ["connecting", "backoff"].contains(&s["tunnel"]["state"].as_str().unwrap_or("")),
        "{s:#}"
    );
    let (ok, out) = output_in(
        &ns,
        &ns.home,
        &agent::binary(),
        &["doctor", "--json", "--config", &cfg],
    );
    assert!(!ok, "doctor fails");
    // stdout's JSON document comes first (stderr follows it).
    let doc: Value = serde_json::Deserializer::from_str(&out)
        .into_iter::<Value>()
        .next()
        .and_then(Result::ok)
        .unwrap_or_else(|| panic!("{out}"));
    let tunnel = doc["findings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["check"] == "tunnel")
        .unwrap()
        .clone();
    assert_eq!(tunnel["verdict"], "fail", "{tunnel:#}");
    assert!(
        tunnel["fix"]
            .as_str()
            .unwrap()
            .contains("server_public_key"),
        "{tunnel:#}"
    );
    drop(agent_proc);
    drop(backend);
}

/// A valid Noise public key that is not the server's.
fn e2e_other_key() -> String {
    "yQpXB5BspCKpOMkzWxVCiL7rwa0z7Xfvwl8D6v5B9zw=".to_owned()
}

/// The certificates of a PEM file.
fn rustls_pemfile_certs(pem: &[u8]) -> Vec<rustls::pki_types::CertificateDer<'static>> {
    use rustls::pki_types::pem::PemObject;
    rustls::pki_types::CertificateDer::pem_slice_iter(pem)
        .map(|c| c.unwrap())
        .collect()
}
