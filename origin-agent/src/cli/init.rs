//! `argus-relay init`: the configuration file and the data directory with everything the agent
//! and the Worker need. Safe to re-run: it never replaces a key or secret, and refuses to change
//! an existing configuration silently.

use std::fs::OpenOptions;
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use argus_shared::token::TokenSigningKey;
use rand::rngs::OsRng;
use rand::RngCore;

use super::worker_config::{self, WorkerSettings};
use super::CliError;
use crate::application::state::{SECRET_ADMIN_TOKEN, SECRET_EDGE_HMAC, SECRET_INSTANCE_ID};
use crate::base::clock::unix_now;
use crate::base::config::AgentConfig;
use crate::domain::store::Store;

/// The admin token file in the data directory (0600), read by the owner CLI.
pub const ADMIN_TOKEN_FILE: &str = "admin.token";

#[derive(Debug, clap::Args)]
pub struct InitArgs {
    #[command(flatten)]
    pub config: super::ConfigArg,
    /// Where keys, the database and the LAN certificate live (created 0700).
    #[arg(long)]
    pub data_dir: Option<PathBuf>,
    /// The URL phones use from outside: the edge Worker's route, e.g. https://relay.example.com.
    #[arg(long)]
    pub public_url: Option<String>,
    /// The ArgusAI backend.
    #[arg(long)]
    pub backend_url: Option<String>,
    /// An ArgusAI API key, used only while the agent has no user session (`argus-relay backend
    /// login`, which `init` offers on a terminal): ArgusAI checks a key with bcrypt on every
    /// request (docs/proxy.md).
    #[arg(long, env = "ARGUS_RELAY_BACKEND_API_KEY", hide_env_values = true)]
    pub backend_api_key: Option<String>,
    /// Sign the agent in to ArgusAI as this user now (the password is asked for, or read from
    /// --backend-password-file).
    #[arg(long)]
    pub backend_username: Option<String>,
    /// The ArgusAI password for --backend-username, from this file (`-`: standard input).
    #[arg(long, requires = "backend_username")]
    pub backend_password_file: Option<PathBuf>,
    /// Optionally, the Cloudflare Tunnel (as `argus-relay tunnel config` takes it).
    #[command(flatten)]
    pub tunnel: super::tunnel::TunnelSetupArgs,
}

fn random_hex(n: usize) -> String {
    let mut b = vec![0u8; n];
    OsRng.fill_bytes(&mut b);
    hex::encode(b)
}

/// Loads the existing configuration (checking the flags agree with it) or writes a new one.
fn config_for(args: &InitArgs) -> Result<(AgentConfig, bool), CliError> {
    let path = &args.config.config;
    if path.exists() {
        let cfg = AgentConfig::load(path)?;
        let mut differs = Vec::new();
        if args.data_dir.as_ref().is_some_and(|d| *d != cfg.data_dir) {
            differs.push("--data-dir");
        }
        if args
            .public_url
            .as_ref()
            .is_some_and(|u| *u != cfg.public_url)
        {
            differs.push("--public-url");
        }
        if args
            .backend_url
            .as_ref()
            .is_some_and(|u| *u != cfg.backend.url)
        {
            differs.push("--backend-url");
        }
        if args.backend_api_key.is_some() && args.backend_api_key != cfg.backend.api_key {
            differs.push("--backend-api-key");
        }
        if !differs.is_empty() {
            return Err(CliError::Usage(format!(
                "{} exists and says otherwise for {}; edit the file (or remove it) instead",
                path.display(),
                differs.join(", ")
            )));
        }
        return Ok((cfg, false));
    }
    let data_dir = args
        .data_dir
        .clone()
        .ok_or_else(|| CliError::Usage("--data-dir is required for a new configuration".into()))?;
    let public_url = args.public_url.clone().ok_or_else(|| {
        CliError::Usage("--public-url is required for a new configuration".into())
    })?;
    let data_dir = if data_dir.is_absolute() {
        data_dir
    } else {
        std::env::current_dir()
            .map_err(|e| CliError::Failed(format!("current directory: {e}")))?
            .join(data_dir)
    };
    let mut cfg = AgentConfig::new(
        data_dir,
        public_url,
        args.backend_url
            .clone()
            .unwrap_or_else(|| "http://127.0.0.1:8000".into()),
    );
    cfg.backend.api_key = args.backend_api_key.clone().filter(|k| !k.is_empty());
    cfg.validate()?;
    write_private(path, cfg.to_toml().as_bytes())?;
    Ok((cfg, true))
}

/// Writes a new file readable by the owner only; refuses to replace one.
fn write_private(path: &Path, bytes: &[u8]) -> Result<(), CliError> {
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent)
            .map_err(|e| CliError::Failed(format!("{}: {e}", parent.display())))?;
    }
    let mut f = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .map_err(|e| CliError::Failed(format!("{}: {e}", path.display())))?;
    f.write_all(bytes)
        .and_then(|()| f.sync_all())
        .map_err(|e| CliError::Failed(format!("{}: {e}", path.display())))
}

/// The agent's ArgusAI session: signs in now when asked to (flags, or on a terminal), else says
/// how to.
fn backend_sign_in(args: &InitArgs, cfg: &AgentConfig, store: &Store) -> Result<(), CliError> {
    let stored = store
        .backend_session()
        .map_err(|e| CliError::Failed(format!("database: {e}")))?;
    if let (Some(s), None) = (&stored, &args.backend_username) {
        println!("The agent is signed in to ArgusAI as {}.", s.username);
        return Ok(());
    }
    let on_terminal = std::io::IsTerminal::is_terminal(&std::io::stdin());
    if args.backend_username.is_none() && !on_terminal {
        println!(
            "Next: sign the agent in to ArgusAI (once; only a refresh token is kept):\n  \
             argus-relay backend login --config {}",
            args.config.config.display()
        );
        return Ok(());
    }
    println!(
        "Sign the agent in to ArgusAI at {} (once; the password is not stored). An empty \
         username skips this; run `argus-relay backend login` later.",
        cfg.backend.url
    );
    let username = match &args.backend_username {
        Some(u) => u.clone(),
        None => {
            eprint!("ArgusAI username: ");
            let mut line = String::new();
            std::io::stdin()
                .read_line(&mut line)
                .map_err(|e| CliError::Failed(format!("reading standard input: {e}")))?;
            line.trim().to_owned()
        }
    };
    if username.is_empty() {
        println!("Skipped: run `argus-relay backend login` before pairing phones.");
        return Ok(());
    }
    let (username, password) =
        super::backend::credentials(Some(username), args.backend_password_file.as_deref())?;
    print!("{}", super::backend::sign_in(cfg, &username, &password)?);
    Ok(())
}

pub fn init(args: InitArgs) -> Result<(), CliError> {
    let (mut cfg, new_config) = config_for(&args)?;
    let mut tunnel_report = None;
    if args.tunnel.given() {
        match &cfg.cloudflared {
            Some(existing) => {
                let differs = super::tunnel::differences(existing, &args.tunnel)?;
                if !differs.is_empty() {
                    return Err(CliError::Usage(format!(
                        "{} has a [cloudflared] section that says otherwise for {}; change it \
                         with `argus-relay tunnel config`",
                        args.config.config.display(),
                        differs.join(", ")
                    )));
                }
            }
            None => {
                tunnel_report = Some(super::tunnel::apply(
                    &args.config.config,
                    &args.tunnel,
                    None,
                )?);
                cfg = AgentConfig::load(&args.config.config)?;
            }
        }
    }
    let failed = |what: &str, e: &dyn std::fmt::Display| CliError::Failed(format!("{what}: {e}"));
    let store = Store::open(cfg.database_path()).map_err(|e| failed("database", &e))?;
    let now = i64::try_from(unix_now()).unwrap_or(i64::MAX);

    let mut made = Vec::new();
    if store
        .current_signing_key()
        .map_err(|e| failed("database", &e))?
        .is_none()
    {
        let seed = crate::domain::key_ring::new_seed().map_err(|e| failed("random", &e))?;
        let key = TokenSigningKey::from_seed_with_thumbprint_kid(seed);
        store
            .add_signing_key(&key.kid, &seed, now)
            .map_err(|e| failed("database", &e))?;
        made.push(format!("token signing key {}", key.kid));
    }
    if store
        .ohttp_keys_accepted(now)
        .map_err(|e| failed("database", &e))?
        .is_empty()
    {
        let key_id = crate::domain::sealed_keys::rotate(&store, unix_now())
            .map_err(|e| failed("Oblivious HTTP key", &e))?;
        made.push(format!("Oblivious HTTP key {key_id} (sealed mode)"));
    }
    let mut secret = |name: &str, value: Vec<u8>, what: &str| -> Result<(), CliError> {
        if store
            .put_secret_if_absent(name, &value, now)
            .map_err(|e| failed("database", &e))?
        {
            made.push(what.to_owned());
        }
        Ok(())
    };
    let mut edge = vec![0u8; 32];
    OsRng.fill_bytes(&mut edge);
    secret(SECRET_EDGE_HMAC, edge, "edge request-signing secret")?;
    secret(
        SECRET_ADMIN_TOKEN,
        random_hex(32).into_bytes(),
        "admin token",
    )?;
    secret(
        SECRET_INSTANCE_ID,
        random_hex(8).into_bytes(),
        "instance id",
    )?;

    // The admin token file mirrors the stored secret: rewriting it is idempotent.
    let admin = store
        .get_secret(SECRET_ADMIN_TOKEN)
        .map_err(|e| failed("database", &e))?
        .ok_or_else(|| CliError::Failed("admin token missing after init".into()))?;
    let token_path = cfg.data_dir.join(ADMIN_TOKEN_FILE);
    if !token_path.exists() {
        write_private(&token_path, &admin)?;
    }

    let (fingerprint, cert_made) = crate::domain::lan::cert::ensure(&cfg.data_dir)
        .map_err(|e| failed("LAN certificate", &e))?;
    if cert_made {
        made.push(format!("LAN certificate {fingerprint}"));
    }

    let config_path = args.config.config.display();
    if new_config {
        println!("Wrote {config_path}");
    } else {
        println!("Kept {config_path}");
    }
    println!("Data directory: {}", cfg.data_dir.display());
    if made.is_empty() {
        println!("Everything already existed; nothing was replaced.");
    } else {
        for m in &made {
            println!("Created {m}");
        }
    }
    if let Some(report) = tunnel_report {
        println!();
        print!("{report}");
    }
    println!();
    backend_sign_in(&args, &cfg, &store)?;
    println!();
    let settings = WorkerSettings::read(&cfg, &store).map_err(|e| failed("database", &e))?;
    print!("{}", worker_config::human(&settings, &cfg));
    Ok(())
}
