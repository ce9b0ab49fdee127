//! `argus-relay ui`: a one-time sign-in link to the Mobile Access page of the running agent.
//!
//! The agent makes a single-use ticket (valid 2 minutes) for the holder of the admin token; the
//! link carries only that ticket, never the admin token. Opening it in a browser on this computer
//! starts a session (cookie) and lands on the page, at `/admin/ui`.

use serde::Deserialize;

use super::admin_client::{self, AdminClient};
use super::CliError;
use crate::config::AgentConfig;

#[derive(Debug, clap::Args)]
pub struct UiArgs {
    #[command(flatten)]
    pub config: super::ConfigArg,
    /// Print `{"url", "expires_in"}` as JSON.
    #[arg(long)]
    pub json: bool,
}

/// `POST /admin/ui/login-links` → 201.
#[derive(Debug, Deserialize)]
struct LoginLink {
    path: String,
    #[serde(default)]
    expires_in: Option<u64>,
}

pub fn ui(args: UiArgs) -> Result<(), CliError> {
    let cfg = AgentConfig::load(&args.config.config)?;
    let base = admin_client::admin_base_url(
        std::env::var(admin_client::ADMIN_URL_ENV).ok().as_deref(),
        &cfg,
    )?;
    let client = AdminClient::from_config(&cfg)?;
    let answer = client.post("/admin/ui/login-links", None)?;
    let link: LoginLink = admin_client::decode(answer, "sign-in link")?;
    let url = login_url(&base, &link.path)?;
    let expires_in = link.expires_in.unwrap_or(120);
    if args.json {
        return admin_client::print_json(
            &serde_json::json!({ "url": url, "expires_in": expires_in }),
        );
    }
    let port = cfg.admin.listen.port();
    println!(
        "Open the Mobile Access page in a browser on this computer\n\
         (the link works once, within {}):\n\n  {url}\n\n\
         From another computer, forward the port first:\n  \
         ssh -L {port}:127.0.0.1:{port} <this computer>\n\
         then run `argus-relay ui` again and open its link there.",
        admin_client::countdown(expires_in)
    );
    Ok(())
}

/// The link: the admin API's base plus the path the agent gave, which must be the sign-in path
/// with nothing but URL-safe characters.
fn login_url(base: &str, path: &str) -> Result<String, CliError> {
    let ok = path.starts_with("/admin/ui/login?ticket=")
        && path
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"/?=&-_.~".contains(&b));
    if !ok {
        return Err(CliError::Failed(
            "the agent answered with an unexpected sign-in link".into(),
        ));
    }
    Ok(format!("{}{path}", base.trim_end_matches('/')))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_link_is_the_base_plus_the_sign_in_path() {
        assert_eq!(
            login_url("http://127.0.0.1:8471/", "/admin/ui/login?ticket=abc-_1").unwrap(),
            "http://127.0.0.1:8471/admin/ui/login?ticket=abc-_1"
        );
        for bad in [
            "/elsewhere?ticket=a",
            "/admin/ui/login?ticket=a\u{1b}[2J",
            "/admin/ui/login?ticket=a b",
            "//evil.example/admin/ui/login?ticket=a",
        ] {
            assert!(login_url("http://127.0.0.1:8471", bad).is_err(), "{bad:?}");
        }
    }
}
