//! `argus-relay worker-config`: what the edge Worker needs — its `[vars]` and its secret — read
//! from the agent's configuration and data directory.

use std::collections::BTreeMap;

use serde::Serialize;

use super::CliError;
use crate::application::state::SECRET_EDGE_HMAC;
use crate::base::config::AgentConfig;
use crate::domain::store::{Store, StoreError};

#[derive(Debug, clap::Args)]
pub struct WorkerConfigArgs {
    #[command(flatten)]
    pub config: super::ConfigArg,
    /// Print `{"vars":{…},"secrets":{…}}` (for scripts) instead of instructions.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Serialize)]
pub struct WorkerSettings {
    pub vars: BTreeMap<&'static str, String>,
    pub secrets: BTreeMap<&'static str, String>,
}

impl WorkerSettings {
    pub fn read(cfg: &AgentConfig, store: &Store) -> Result<WorkerSettings, StoreError> {
        let secret = store.get_secret(SECRET_EDGE_HMAC)?.unwrap_or_default();
        let mut vars = BTreeMap::new();
        // The tunnel's hostname when known; else for `wrangler dev` on this machine.
        let origin = match cfg.cloudflared.as_ref().and_then(|c| c.hostname.as_deref()) {
            Some(host) => format!("https://{host}"),
            None => format!("http://{}", cfg.tunnel.listen),
        };
        vars.insert("ORIGIN_URL", origin);
        vars.insert("TOKEN_ISSUER", cfg.issuer());
        vars.insert("TOKEN_AUDIENCE", cfg.audience());
        let mut secrets = BTreeMap::new();
        secrets.insert("RELAY_SIGNING_SECRET", hex::encode(secret));
        Ok(WorkerSettings { vars, secrets })
    }
}

/// Instructions for a person.
pub fn human(s: &WorkerSettings, cfg: &AgentConfig) -> String {
    let mut out = String::from("Edge Worker settings\n\nIn wrangler.toml, under [vars]:\n");
    for (k, v) in &s.vars {
        if *k == "ORIGIN_URL" && v.starts_with("http://") {
            out.push_str(&format!(
                "  ORIGIN_URL = \"https://<your tunnel hostname>\"   # cloudflared ingress -> http://{}\n",
                cfg.tunnel.listen
            ));
        } else {
            out.push_str(&format!("  {k} = {v:?}\n"));
        }
    }
    out.push_str("\nThen store the secret (once per Worker):\n");
    for (k, v) in &s.secrets {
        out.push_str(&format!(
            "  printf %s '{v}' | npx wrangler secret put {k}\n"
        ));
    }
    out.push_str(
        "\nThe Worker fetches the token keys and the revocation list from this agent itself;\n\
         key rotations (`argus-relay keys rotate`) need no redeploy.\n",
    );
    out
}

pub fn worker_config(args: WorkerConfigArgs) -> Result<(), CliError> {
    let cfg = AgentConfig::load(&args.config.config)?;
    let store =
        Store::open(cfg.database_path()).map_err(|e| CliError::Failed(format!("database: {e}")))?;
    let settings = WorkerSettings::read(&cfg, &store)
        .map_err(|e| CliError::Failed(format!("database: {e}")))?;
    if settings.secrets.values().any(String::is_empty) {
        return Err(CliError::Failed(
            "the data directory has no edge secret: run `argus-relay init` first".into(),
        ));
    }
    if args.json {
        let text =
            serde_json::to_string_pretty(&settings).map_err(|e| CliError::Failed(e.to_string()))?;
        println!("{text}");
    } else {
        print!("{}", human(&settings, &cfg));
    }
    Ok(())
}
