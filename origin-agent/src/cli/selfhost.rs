//! `argus-relay selfhost init --domain relay.example.org`: everything a VPS needs to be the edge
//! (the self-hosted relay, docs/selfhost.md), and the agent's side of the tunnel.
//!
//! Written to `--out` (default `./argus-selfhost`), to be copied to the VPS as
//! [`VPS_DIR`]:
//!
//! | file | what |
//! |---|---|
//! | `worker/index.js`, `worker/index_bg.wasm` | the Worker bundle `wrangler deploy` publishes (`make worker`) |
//! | `workerd.capnp` | workerd serving it on loopback, its vars, the secret from the environment, every fetch to the tunnel only |
//! | `cache/cache.js` | the Cache API's store: a second Worker in the same workerd (an LRU in memory) |
//! | `edge.env` (0600) | `RELAY_SIGNING_SECRET` for workerd |
//! | `rathole.toml` (0600) | the rathole server: Noise private key, the service token, the service on loopback |
//! | `Caddyfile` | TLS (Let's Encrypt, or `tls internal`) in front of workerd, the client IP in [`CLIENT_IP_HEADER`] |
//! | `docker-compose.yml` | the three as containers (host network) |
//! | `systemd/*.service` | or as systemd units |
//!
//! In the agent's configuration it sets `[rathole]` (server address, the server's public key,
//! the token) and `public_url = "https://DOMAIN"`. Keys and token are new on every run: run it
//! again to rotate them, and copy the VPS files again.

use std::path::{Path, PathBuf};

use base64::Engine;
use rand::rngs::OsRng;
use rand::RngCore;

use super::worker_config::WorkerSettings;
use super::CliError;
use crate::base::config::cloudflared::valid_hostname;
use crate::base::config::AgentConfig;
use crate::domain::store::Store;
use crate::domain::tunnel::rathole::{
    toml_str, RatholeConfig, DEFAULT_SERVICE, HEARTBEAT_INTERVAL_SECS, NOISE_PATTERN,
};

/// Where the docs install the files on the VPS.
pub const VPS_DIR: &str = "/opt/argus-relay";
/// workerd's socket on the VPS (loopback: only Caddy reaches it).
pub const WORKERD_LISTEN: &str = "127.0.0.1:8787";
/// The rathole service's port on the VPS (loopback: only workerd reaches it).
pub const TUNNEL_ORIGIN: &str = "127.0.0.1:8480";
/// The header Caddy overwrites with the client's address, which the Worker trusts.
pub const CLIENT_IP_HEADER: &str = "x-argus-client-ip";
/// The workerd the project's package.json pins (npm `workerd`).
pub const WORKERD_VERSION: &str = "1.20261117.1";
/// The rathole release the project tests with.
pub const RATHOLE_VERSION: &str = "0.5.0";

/// The Cache API's service under workerd (`cacheApiOutbound`): a bounded in-memory LRU.
const CACHE_WORKER_JS: &str = include_str!("../../../deploy/selfhost/cache.js");
/// The cache's bounds, as text bindings of the cache Worker (edit `workerd.capnp` to change them).
pub const CACHE_LIMITS: [(&str, u64); 3] = [
    ("CACHE_MAX_ENTRIES", 4096),
    ("CACHE_MAX_BYTES", 64 * 1024 * 1024),
    ("CACHE_MAX_ENTRY_BYTES", 8 * 1024 * 1024),
];

/// `wrangler.toml`: the Worker's compatibility date comes from there (one definition).
const WRANGLER_TOML: &str = include_str!("../../../wrangler.toml");

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum TlsMode {
    /// Let's Encrypt (the domain's DNS must point at the VPS, ports 80 and 443 open).
    Acme,
    /// Caddy's own local CA (tests, or a private network whose phones trust that CA).
    Internal,
}

#[derive(Debug, clap::Subcommand)]
pub enum SelfhostCommand {
    /// Write the VPS's files and set [rathole] in the agent's configuration.
    Init(SelfhostInitArgs),
}

#[derive(Debug, clap::Args)]
pub struct SelfhostInitArgs {
    #[command(flatten)]
    pub config: super::ConfigArg,
    /// The relay's public name (phones use https://DOMAIN).
    #[arg(long)]
    pub domain: String,
    /// What the agent dials for the tunnel (default: the domain).
    #[arg(long)]
    pub vps_address: Option<String>,
    /// rathole's public port on the VPS.
    #[arg(long, default_value_t = 2333)]
    pub rathole_port: u16,
    /// The built Worker (`make worker` writes it).
    #[arg(long, default_value = "edge-worker/build")]
    pub worker_bundle: PathBuf,
    /// Where to write the VPS's files.
    #[arg(long, default_value = "argus-selfhost")]
    pub out: PathBuf,
    #[arg(long, value_enum, default_value_t = TlsMode::Acme)]
    pub tls: TlsMode,
    /// The address Let's Encrypt may write to about the certificate.
    #[arg(long)]
    pub email: Option<String>,
}

/// A Noise static key pair for X25519, in standard base64 as `rathole --genkey` prints it.
pub struct NoiseKeys {
    pub private: String,
    pub public: String,
}

impl NoiseKeys {
    pub fn generate() -> NoiseKeys {
        let mut secret = [0u8; 32];
        OsRng.fill_bytes(&mut secret);
        let public = curve25519_dalek::MontgomeryPoint::mul_base_clamped(secret).to_bytes();
        let b64 = base64::engine::general_purpose::STANDARD;
        NoiseKeys {
            private: b64.encode(secret),
            public: b64.encode(public),
        }
    }
}

fn random_token() -> String {
    let mut b = [0u8; 32];
    OsRng.fill_bytes(&mut b);
    hex::encode(b)
}

/// A Cap'n Proto text literal (the values here are ASCII; control characters are refused).
fn capnp_str(s: &str) -> Result<String, CliError> {
    if s.chars().any(|c| c.is_control()) {
        return Err(CliError::Failed(format!(
            "{s:?} cannot go into workerd's configuration"
        )));
    }
    Ok(format!(
        "\"{}\"",
        s.replace('\\', "\\\\").replace('"', "\\\"")
    ))
}

fn compatibility_date() -> Result<String, CliError> {
    let doc: toml::Value = toml::from_str(WRANGLER_TOML)
        .map_err(|e| CliError::Failed(format!("wrangler.toml: {e}")))?;
    doc.get("compatibility_date")
        .and_then(|d| d.as_str())
        .map(str::to_owned)
        .ok_or_else(|| CliError::Failed("wrangler.toml has no compatibility_date".into()))
}

/// `workerd.capnp`: the Worker on [`WORKERD_LISTEN`], its vars as text bindings, the secret from
/// the environment, every outbound fetch sent to the tunnel's port only, and its Cache API
/// operations to the cache Worker (`cache/cache.js`, bounded by [`CACHE_LIMITS`]).
pub fn workerd_capnp(vars: &[(&str, String)], compat_date: &str) -> Result<String, CliError> {
    let mut bindings = String::new();
    for (name, value) in vars {
        bindings.push_str(&format!(
            "    (name = {}, text = {}),\n",
            capnp_str(name)?,
            capnp_str(value)?
        ));
    }
    let mut cache_bindings = String::new();
    for (name, value) in CACHE_LIMITS {
        cache_bindings.push_str(&format!("    (name = \"{name}\", text = \"{value}\"),\n"));
    }
    Ok(format!(
        r#"# Written by `argus-relay selfhost init`: workerd serving the argus-relay edge Worker (the
# bundle `wrangler deploy` publishes) behind Caddy. Run: workerd serve workerd.capnp
# (with RELAY_SIGNING_SECRET from edge.env in its environment).
using Workerd = import "/workerd/workerd.capnp";

const config :Workerd.Config = (
  services = [
    (name = "edge", worker = .edge),
    # The Cache API's store (caches.default): an LRU in memory, per VPS, empty after a restart.
    (name = "cache", worker = .cache),
    (name = "nowhere", network = (allow = [])),
    # The Worker reaches nothing but the tunnel (rathole's service port on loopback).
    (name = "tunnel", external = (address = "{origin}", http = ())),
  ],
  sockets = [
    # Loopback only: Caddy is the one client, so the client-IP header is Caddy's.
    (name = "http", address = "{listen}", http = (), service = "edge"),
  ],
);

const edge :Workerd.Worker = (
  modules = [
    (name = "index.js", esModule = embed "worker/index.js"),
    (name = "index_bg.wasm", wasm = embed "worker/index_bg.wasm"),
  ],
  compatibilityDate = {date},
  bindings = [
{bindings}    (name = "RELAY_SIGNING_SECRET", fromEnvironment = "RELAY_SIGNING_SECRET"),
  ],
  globalOutbound = "tunnel",
  cacheApiOutbound = "cache",
);

const cache :Workerd.Worker = (
  modules = [
    (name = "cache.js", esModule = embed "cache/cache.js"),
  ],
  compatibilityDate = {date},
  bindings = [
{cache_bindings}  ],
  # It fetches nothing, and could reach nothing.
  globalOutbound = "nowhere",
);
"#,
        origin = TUNNEL_ORIGIN,
        listen = WORKERD_LISTEN,
        date = capnp_str(compat_date)?,
    ))
}

/// The rathole server's configuration.
pub fn rathole_server_toml(port: u16, keys: &NoiseKeys, token: &str) -> String {
    format!(
        "# Written by `argus-relay selfhost init`: the VPS end of the tunnel. Secret (0600).\n\
         [server]\n\
         bind_addr = \"0.0.0.0:{port}\"\n\
         heartbeat_interval = {HEARTBEAT_INTERVAL_SECS}\n\n\
         [server.transport]\n\
         type = \"noise\"\n\n\
         [server.transport.noise]\n\
         pattern = \"{NOISE_PATTERN}\"\n\
         local_private_key = {key}\n\n\
         [server.services.{DEFAULT_SERVICE}]\n\
         token = {token}\n\
         # Loopback: only workerd reaches the agent, and the agent still checks every edge signature.\n\
         bind_addr = \"{TUNNEL_ORIGIN}\"\n",
        key = toml_str(&keys.private),
        token = toml_str(token),
    )
}

pub fn caddyfile(domain: &str, tls: TlsMode, email: Option<&str>) -> String {
    let mut global = Vec::new();
    if let Some(email) = email {
        global.push(format!("\temail {email}"));
    }
    if tls == TlsMode::Internal {
        // Never touch the system's trust store.
        global.push("\tskip_install_trust".to_owned());
    }
    let global = if global.is_empty() {
        String::new()
    } else {
        format!("{{\n{}\n}}\n\n", global.join("\n"))
    };
    let tls_line = match tls {
        TlsMode::Internal => "\ttls internal\n",
        TlsMode::Acme => "",
    };
    format!(
        "# Written by `argus-relay selfhost init`: HTTPS for phones, in front of workerd.\n\
         {global}{domain} {{\n\
         {tls_line}\
         \treverse_proxy {WORKERD_LISTEN} {{\n\
         \t\t# Overwritten on every request: the Worker trusts this header (CLIENT_IP_HEADER) and\n\
         \t\t# nothing a client sends.\n\
         \t\theader_up X-Argus-Client-IP {{remote_host}}\n\
         \t\tflush_interval -1\n\
         \t}}\n\
         }}\n"
    )
}

pub fn docker_compose() -> String {
    format!(
        r#"# Written by `argus-relay selfhost init`. Run in {VPS_DIR}: docker compose up -d
services:
  workerd:
    image: node:22-bookworm-slim
    working_dir: /srv
    command: ["sh", "-c", "npm install --no-save --no-audit --no-fund workerd@{WORKERD_VERSION} && exec node_modules/.bin/workerd serve workerd.capnp"]
    env_file: edge.env
    volumes: ["./:/srv"]
    network_mode: host
    restart: unless-stopped
  rathole:
    image: rapiz1/rathole:v{RATHOLE_VERSION}
    command: ["--server", "/etc/rathole/rathole.toml"]
    volumes: ["./rathole.toml:/etc/rathole/rathole.toml:ro"]
    network_mode: host
    restart: unless-stopped
  caddy:
    image: caddy:2
    volumes: ["./Caddyfile:/etc/caddy/Caddyfile:ro", "caddy-data:/data"]
    network_mode: host
    restart: unless-stopped
volumes:
  caddy-data:
"#
    )
}

pub fn systemd_units() -> Vec<(&'static str, String)> {
    vec![
        (
            "argus-workerd.service",
            format!(
                "[Unit]\n\
                 Description=argus-relay edge Worker (workerd)\n\
                 After=network-online.target\n\
                 Wants=network-online.target\n\n\
                 [Service]\n\
                 WorkingDirectory={VPS_DIR}\n\
                 EnvironmentFile={VPS_DIR}/edge.env\n\
                 ExecStart={VPS_DIR}/node_modules/.bin/workerd serve {VPS_DIR}/workerd.capnp\n\
                 DynamicUser=yes\n\
                 NoNewPrivileges=yes\n\
                 ProtectSystem=strict\n\
                 Restart=always\n\
                 RestartSec=1\n\n\
                 [Install]\n\
                 WantedBy=multi-user.target\n"
            ),
        ),
        (
            "argus-rathole.service",
            format!(
                "[Unit]\n\
                 Description=argus-relay tunnel server (rathole)\n\
                 After=network-online.target\n\
                 Wants=network-online.target\n\n\
                 [Service]\n\
                 ExecStart=/usr/local/bin/rathole --server {VPS_DIR}/rathole.toml\n\
                 Environment=NO_COLOR=1\n\
                 NoNewPrivileges=yes\n\
                 ProtectSystem=strict\n\
                 Restart=always\n\
                 RestartSec=1\n\n\
                 [Install]\n\
                 WantedBy=multi-user.target\n"
            ),
        ),
    ]
}

/// Sets `[rathole]` and `public_url` in the agent's configuration text, keeping the rest.
pub fn with_rathole(
    text: &str,
    section: &RatholeConfig,
    public_url: &str,
) -> Result<String, CliError> {
    let mut doc: toml_edit::DocumentMut = text
        .parse()
        .map_err(|e| CliError::Failed(format!("the configuration does not parse: {e}")))?;
    let table = toml_edit::ser::to_document(section)
        .map_err(|e| CliError::Failed(format!("cannot write [rathole]: {e}")))?;
    doc["rathole"] = toml_edit::Item::Table(table.as_table().clone());
    doc.remove("cloudflared");
    doc["public_url"] = toml_edit::value(public_url);
    Ok(doc.to_string())
}

fn write(path: &Path, bytes: &[u8], mode: u32) -> Result<(), CliError> {
    crate::base::private_file::replace_file(path, bytes, mode)
        .map_err(|e| CliError::Failed(format!("{}: {e}", path.display())))
}

pub fn run(command: SelfhostCommand) -> Result<(), CliError> {
    match command {
        SelfhostCommand::Init(args) => init(args).map(|summary| print!("{summary}")),
    }
}

/// Does the work of `selfhost init`; returns what to tell the owner.
pub fn init(args: SelfhostInitArgs) -> Result<String, CliError> {
    let domain = args
        .domain
        .trim()
        .trim_end_matches('.')
        .to_ascii_lowercase();
    if !valid_hostname(&domain) {
        return Err(CliError::Usage(format!(
            "--domain {domain:?} is not a host name (e.g. relay.example.org)"
        )));
    }
    let index_js = args.worker_bundle.join("index.js");
    let wasm = args.worker_bundle.join("index_bg.wasm");
    if !index_js.is_file() || !wasm.is_file() {
        return Err(CliError::Usage(format!(
            "{} has no built Worker (index.js, index_bg.wasm): run `make worker` in the \
             argus-relay checkout, or pass --worker-bundle",
            args.worker_bundle.display()
        )));
    }
    let config_path = &args.config.config;
    let text = std::fs::read_to_string(config_path).map_err(|source| {
        CliError::Config(crate::base::config::ConfigError::Read {
            path: config_path.into(),
            source,
        })
    })?;
    let cfg = AgentConfig::load(config_path)?;
    let public_url = format!("https://{domain}");

    let keys = NoiseKeys::generate();
    let token = random_token();
    let vps = args.vps_address.clone().unwrap_or_else(|| domain.clone());
    let server = if vps.contains(':') && !vps.starts_with('[') {
        format!("[{vps}]:{}", args.rathole_port)
    } else {
        format!("{vps}:{}", args.rathole_port)
    };
    // Tuning and the binary's path are kept from an earlier run.
    let mut section = cfg
        .rathole
        .clone()
        .unwrap_or_else(|| RatholeConfig::new(server.clone(), keys.public.clone()));
    section.server = server;
    section.server_public_key = keys.public.clone();
    section.token = Some(token.clone());
    section.validate()?;

    // The Worker's settings are the agent's (issuer, audience, secret), as for Cloudflare.
    let mut agent = cfg.clone();
    agent.public_url = public_url.clone();
    let store =
        Store::open(cfg.database_path()).map_err(|e| CliError::Failed(format!("database: {e}")))?;
    let settings = WorkerSettings::read(&agent, &store)
        .map_err(|e| CliError::Failed(format!("database: {e}")))?;
    let secret = settings
        .secrets
        .get("RELAY_SIGNING_SECRET")
        .filter(|s| !s.is_empty())
        .ok_or_else(|| {
            CliError::Failed(
                "the data directory has no edge secret: run `argus-relay init` first".into(),
            )
        })?;
    let mut vars: Vec<(&str, String)> = settings
        .vars
        .iter()
        .filter(|(k, _)| **k != "ORIGIN_URL")
        .map(|(k, v)| (*k, v.clone()))
        .collect();
    vars.push(("ORIGIN_URL", format!("http://{TUNNEL_ORIGIN}")));
    vars.push(("RATE_LIMITER", "isolate".into()));
    vars.push(("CLIENT_IP_HEADER", CLIENT_IP_HEADER.into()));
    vars.sort();

    let out = &args.out;
    let copy = |from: &Path, name: &str| -> Result<(), CliError> {
        let bytes = std::fs::read(from)
            .map_err(|e| CliError::Failed(format!("{}: {e}", from.display())))?;
        write(&out.join("worker").join(name), &bytes, 0o644)
    };
    copy(&index_js, "index.js")?;
    copy(&wasm, "index_bg.wasm")?;
    write(
        &out.join("cache").join("cache.js"),
        CACHE_WORKER_JS.as_bytes(),
        0o644,
    )?;
    write(
        &out.join("workerd.capnp"),
        workerd_capnp(&vars, &compatibility_date()?)?.as_bytes(),
        0o644,
    )?;
    write(
        &out.join("edge.env"),
        format!("RELAY_SIGNING_SECRET={secret}\n").as_bytes(),
        0o600,
    )?;
    write(
        &out.join("rathole.toml"),
        rathole_server_toml(args.rathole_port, &keys, &token).as_bytes(),
        0o600,
    )?;
    write(
        &out.join("Caddyfile"),
        caddyfile(&domain, args.tls, args.email.as_deref()).as_bytes(),
        0o644,
    )?;
    write(
        &out.join("docker-compose.yml"),
        docker_compose().as_bytes(),
        0o644,
    )?;
    for (name, unit) in systemd_units() {
        write(&out.join("systemd").join(name), unit.as_bytes(), 0o644)?;
    }

    write(
        config_path,
        with_rathole(&text, &section, &public_url)?.as_bytes(),
        0o600,
    )?;
    // The file as written must load (e.g. a token from the environment still applies).
    AgentConfig::load(config_path)?;

    let mut summary = format!(
        "Self-hosted relay for https://{domain}\n\n\
         Wrote the VPS's files to {out} (secrets: edge.env, rathole.toml — 0600).\n\
         Set [rathole] in {config}: the agent dials {server} and pins the server key\n  {public}\n",
        out = out.display(),
        config = config_path.display(),
        server = section.server,
        public = keys.public,
    );
    if cfg.public_url.trim_end_matches('/') != public_url {
        summary.push_str(&format!(
            "public_url was {}, now {public_url}: phones paired before must pair again.\n",
            cfg.public_url
        ));
    }
    if cfg.cloudflared.is_some() {
        summary.push_str("Removed [cloudflared]: one tunnel at a time.\n");
    }
    summary.push_str(&format!(
        "\nNext (docs/selfhost.md): copy {out} to {VPS_DIR} on the VPS, start it (docker compose up -d,\n\
         or the systemd units), open TCP 80, 443 and {port}, then restart `argus-relay run` here.\n",
        out = out.display(),
        port = args.rathole_port,
    ));
    Ok(summary)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_noise_keys_are_a_pair() {
        let keys = NoiseKeys::generate();
        let b64 = base64::engine::general_purpose::STANDARD;
        let private: [u8; 32] = b64.decode(&keys.private).unwrap().try_into().unwrap();
        let public = b64.decode(&keys.public).unwrap();
        assert_eq!(
            curve25519_dalek::MontgomeryPoint::mul_base_clamped(private).to_bytes(),
            public.as_slice()
        );
        assert_ne!(NoiseKeys::generate().private, keys.private);
    }

    #[test]
    fn the_rathole_server_serves_the_tunnel_on_loopback_only() {
        let keys = NoiseKeys::generate();
        let text = rathole_server_toml(2333, &keys, "tok-0123456789abcdef");
        let doc: toml::Value = toml::from_str(&text).unwrap();
        let server = &doc["server"];
        assert_eq!(server["bind_addr"].as_str(), Some("0.0.0.0:2333"));
        assert_eq!(
            server["transport"]["noise"]["local_private_key"].as_str(),
            Some(keys.private.as_str())
        );
        let svc = &server["services"][DEFAULT_SERVICE];
        assert_eq!(svc["bind_addr"].as_str(), Some(TUNNEL_ORIGIN));
        assert_eq!(svc["token"].as_str(), Some("tok-0123456789abcdef"));
    }

    #[test]
    fn workerd_gets_the_vars_and_the_secret_only_from_its_environment() {
        let vars = [("TOKEN_ISSUER", "https://relay.example.org".to_owned())];
        let text = workerd_capnp(&vars, "2026-08-01").unwrap();
        assert!(text.contains(r#"(name = "TOKEN_ISSUER", text = "https://relay.example.org"),"#));
        assert!(text.contains(
            r#"(name = "RELAY_SIGNING_SECRET", fromEnvironment = "RELAY_SIGNING_SECRET")"#
        ));
        assert!(text.contains(r#"globalOutbound = "tunnel""#));
        assert!(text.contains(&format!("address = \"{WORKERD_LISTEN}\"")));
        assert_eq!(capnp_str(r#"a"b\c"#).unwrap(), r#""a\"b\\c""#);
        assert!(capnp_str("line\nbreak").is_err());
        assert_eq!(compatibility_date().unwrap().len(), "2026-08-01".len());
    }

    #[test]
    fn workerd_sends_the_cache_api_to_a_bounded_cache_worker() {
        let text = workerd_capnp(&[], "2026-08-01").unwrap();
        // The edge Worker's caches.default goes to the cache Worker, in the same process.
        let edge = &text[text.find("const edge").unwrap()..text.find("const cache").unwrap()];
        assert!(edge.contains(r#"cacheApiOutbound = "cache","#), "{edge}");
        assert!(text.contains(r#"(name = "cache", worker = .cache),"#));
        let cache = &text[text.find("const cache").unwrap()..];
        assert!(
            cache.contains(r#"esModule = embed "cache/cache.js""#),
            "{cache}"
        );
        for (name, value) in CACHE_LIMITS {
            assert!(
                cache.contains(&format!(r#"(name = "{name}", text = "{value}"),"#)),
                "{cache}"
            );
        }
        // It reaches nothing: a network service that allows no address.
        assert!(cache.contains(r#"globalOutbound = "nowhere","#));
        assert!(text.contains(r#"(name = "nowhere", network = (allow = [])),"#));
        // The module speaks workerd's cache protocol (src/workerd/api/cache.c++).
        for word in [
            "only-if-cached",
            "cf-cache-status",
            "PURGE",
            "status: 413",
            "CACHE_MAX_BYTES",
        ] {
            assert!(CACHE_WORKER_JS.contains(word), "{word}");
        }
    }

    #[test]
    fn caddy_overwrites_the_client_ip_header() {
        let text = caddyfile("relay.example.org", TlsMode::Acme, Some("me@example.org"));
        assert!(text.contains("relay.example.org {"));
        assert!(text.contains("header_up X-Argus-Client-IP {remote_host}"));
        assert!(text.contains("email me@example.org"));
        assert!(!text.contains("tls internal"));
        let text = caddyfile("relay.test", TlsMode::Internal, None);
        assert!(text.contains("tls internal") && text.contains("skip_install_trust"));
        assert!(CLIENT_IP_HEADER.eq_ignore_ascii_case("X-Argus-Client-IP"));
    }

    #[test]
    fn the_agent_config_gets_rathole_and_keeps_the_rest() {
        let text = "# mine\ndata_dir = \"/d\"\npublic_url = \"https://old\"\n\n[cloudflared]\ntoken = \"t\"\n";
        let section = RatholeConfig {
            token: Some("0123456789abcdef0123".into()),
            ..RatholeConfig::new(
                "relay.example.org:2333".into(),
                NoiseKeys::generate().public,
            )
        };
        let out = with_rathole(text, &section, "https://relay.example.org").unwrap();
        assert!(out.starts_with("# mine\n"), "{out}");
        assert!(!out.contains("[cloudflared]"));
        let doc: toml::Value = toml::from_str(&out).unwrap();
        assert_eq!(
            doc["public_url"].as_str(),
            Some("https://relay.example.org")
        );
        assert_eq!(
            doc["rathole"]["server"].as_str(),
            Some("relay.example.org:2333")
        );
    }
}
