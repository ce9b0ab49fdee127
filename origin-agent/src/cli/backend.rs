//! `argus-relay backend login|logout`: the agent's own ArgusAI user session
//! ([`crate::domain::proxy::backend_session`]).
//!
//! `login` asks for the ArgusAI username and password (the password without echo, or from
//! `--password-file`, `-` = standard input), signs in once (`POST /api/v1/auth/login`) and stores
//! only ArgusAI's refresh token in the agent's database. A running agent picks the new session up
//! within seconds; nothing else needs restarting. Run it as the user the agent runs as (the
//! database is that user's, `0600`).

use std::io::{BufRead, IsTerminal, Read, Write};
use std::path::PathBuf;
use std::time::Duration;

use clap::Subcommand;
use serde::Deserialize;

use super::CliError;
use crate::base::clock::unix_now;
use crate::base::config::AgentConfig;
use crate::domain::proxy::backend_session::{detail_of, LOGIN_COMMAND};
use crate::domain::store::Store;

/// Login answers take a bcrypt on ArgusAI's side, on a busy event loop.
const LOGIN_TIMEOUT: Duration = Duration::from_secs(30);
const MAX_PASSWORD_FILE_BYTES: u64 = 4096;

#[derive(Debug, Subcommand)]
pub enum BackendCommand {
    /// Sign the agent in to ArgusAI once (username and password asked for; only ArgusAI's
    /// refresh token is kept, in the agent's database).
    Login(LoginArgs),
    /// End the agent's ArgusAI session and forget it.
    Logout(super::ConfigArg),
}

#[derive(Debug, clap::Args)]
pub struct LoginArgs {
    #[command(flatten)]
    pub config: super::ConfigArg,
    /// The ArgusAI user (asked for when absent). An admin user also opens the AI processing
    /// stream to owner phones.
    #[arg(long)]
    pub username: Option<String>,
    /// Read the password from this file (`-`: standard input) instead of asking for it. Only its
    /// first line is used.
    #[arg(long)]
    pub password_file: Option<PathBuf>,
}

pub fn run(command: BackendCommand) -> Result<(), CliError> {
    match command {
        BackendCommand::Login(a) => login(a),
        BackendCommand::Logout(a) => logout(a),
    }
}

#[derive(Deserialize)]
struct LoginUser {
    username: String,
    role: Option<String>,
}

#[derive(Deserialize)]
struct LoginAnswer {
    refresh_token: Option<String>,
    user: LoginUser,
    #[serde(default)]
    must_change_password: bool,
}

fn ask(prompt: &str) -> Result<String, CliError> {
    eprint!("{prompt}");
    let _ = std::io::stderr().flush();
    let mut line = String::new();
    std::io::stdin()
        .lock()
        .read_line(&mut line)
        .map_err(|e| CliError::Failed(format!("reading standard input: {e}")))?;
    Ok(line.trim().to_owned())
}

/// The first line of `file` (`-`: standard input), without its line ending.
fn password_from(file: &std::path::Path) -> Result<String, CliError> {
    let mut text = String::new();
    let read = if file.as_os_str() == "-" {
        std::io::stdin()
            .lock()
            .take(MAX_PASSWORD_FILE_BYTES)
            .read_to_string(&mut text)
    } else {
        std::fs::File::open(file)
            .and_then(|f| f.take(MAX_PASSWORD_FILE_BYTES).read_to_string(&mut text))
    };
    read.map_err(|e| CliError::Usage(format!("{}: {e}", file.display())))?;
    let first = text.lines().next().unwrap_or("").to_owned();
    if first.is_empty() {
        return Err(CliError::Usage(format!(
            "{}: no password in it",
            file.display()
        )));
    }
    Ok(first)
}

/// The username and password, from the flags or asked for.
pub(crate) fn credentials(
    username: Option<String>,
    password_file: Option<&std::path::Path>,
) -> Result<(String, String), CliError> {
    let username = match username {
        Some(u) => u,
        None if password_file.is_some_and(|f| f.as_os_str() == "-") => {
            return Err(CliError::Usage(
                "--password-file - reads standard input: give --username too".into(),
            ))
        }
        None => ask("ArgusAI username: ")?,
    };
    if username.is_empty() {
        return Err(CliError::Usage("no username given".into()));
    }
    let password = match password_file {
        Some(f) => password_from(f)?,
        None => {
            if !std::io::stdin().is_terminal() {
                return Err(CliError::Usage(
                    "no terminal to ask for the password: use --password-file FILE (or - for \
                     standard input)"
                        .into(),
                ));
            }
            rpassword::prompt_password(format!("ArgusAI password for {username}: "))
                .map_err(|e| CliError::Failed(format!("reading the password: {e}")))?
        }
    };
    Ok((username, password))
}

/// Signs in to ArgusAI and stores the session. Returns what to tell the owner.
pub(crate) fn sign_in(
    cfg: &AgentConfig,
    username: &str,
    password: &str,
) -> Result<String, CliError> {
    let base = cfg.backend.url.trim_end_matches('/');
    let agent = ureq::AgentBuilder::new()
        .timeout(LOGIN_TIMEOUT)
        .redirects(0)
        .user_agent(crate::domain::proxy::backend::BACKEND_USER_AGENT)
        .build();
    let answer = agent
        .post(&format!("{base}/api/v1/auth/login"))
        .send_json(serde_json::json!({ "username": username, "password": password }));
    let body = match answer {
        Ok(r) => r
            .into_string()
            .map_err(|e| CliError::Failed(format!("reading ArgusAI's answer: {e}")))?,
        Err(ureq::Error::Status(401, r)) => {
            let detail = r
                .into_string()
                .map(|b| detail_of(b.as_bytes()))
                .unwrap_or_default();
            return Err(CliError::Failed(format!(
                "ArgusAI refused the sign-in ({detail}): check the username and password \
                 (ArgusAI allows 5 attempts per 15 minutes from this machine)"
            )));
        }
        Err(ureq::Error::Status(429, _)) => return Err(CliError::Failed(
            "ArgusAI's sign-in limit (5 attempts per 15 minutes from this address) is reached: \
                 wait up to 15 minutes, then try again"
                .into(),
        )),
        Err(ureq::Error::Status(s, r)) => {
            let detail = r
                .into_string()
                .map(|b| detail_of(b.as_bytes()))
                .unwrap_or_default();
            return Err(CliError::Failed(format!(
                "ArgusAI answered the sign-in with HTTP {s}: {detail}"
            )));
        }
        Err(ureq::Error::Transport(t)) => {
            return Err(CliError::Failed(format!(
                "ArgusAI at {base} is not reachable: {t} (is backend.url right?)"
            )))
        }
    };
    let answer: LoginAnswer = serde_json::from_str(&body).map_err(|e| {
        CliError::Failed(format!("ArgusAI's sign-in answer is not understood: {e}"))
    })?;
    let refresh = answer
        .refresh_token
        .filter(|t| !t.is_empty())
        .ok_or_else(|| {
            CliError::Failed(
                "ArgusAI signed in but gave no refresh token (an ArgusAI without session refresh \
             cannot keep the agent signed in; use backend.api_key)"
                    .into(),
            )
        })?;
    let store =
        Store::open(cfg.database_path()).map_err(|e| CliError::Failed(format!("database: {e}")))?;
    let now = i64::try_from(unix_now()).unwrap_or(i64::MAX);
    store
        .save_backend_login(
            &answer.user.username,
            answer.user.role.as_deref(),
            &refresh,
            now,
        )
        .map_err(|e| CliError::Failed(format!("database: {e}")))?;
    let role = answer.user.role.as_deref().unwrap_or("unknown");
    let mut out = format!(
        "Signed the agent in to ArgusAI at {base} as {} (role {role}).\n\
         The agent keeps ArgusAI's refresh token in its database and renews its access token by \
         itself; the password was not stored. A running agent uses the session within a few \
         seconds.\n",
        answer.user.username
    );
    if role != "admin" {
        out.push_str(
            "Note: ArgusAI opens its AI processing stream to admin users only; sign in as an \
             admin for owner phones to see it.\n",
        );
    }
    if answer.must_change_password {
        out.push_str("Note: ArgusAI asks this user to change its password.\n");
    }
    Ok(out)
}

fn login(args: LoginArgs) -> Result<(), CliError> {
    let cfg = AgentConfig::load(&args.config.config)?;
    let (username, password) = credentials(args.username, args.password_file.as_deref())?;
    print!("{}", sign_in(&cfg, &username, &password)?);
    Ok(())
}

fn logout(args: super::ConfigArg) -> Result<(), CliError> {
    let cfg = AgentConfig::load(&args.config)?;
    let store =
        Store::open(cfg.database_path()).map_err(|e| CliError::Failed(format!("database: {e}")))?;
    let Some(session) = store
        .backend_session()
        .map_err(|e| CliError::Failed(format!("database: {e}")))?
    else {
        println!("The agent is not signed in to ArgusAI.");
        return Ok(());
    };
    // End it at ArgusAI too (best effort: the stored token is forgotten either way).
    let base = cfg.backend.url.trim_end_matches('/');
    let ended = ureq::AgentBuilder::new()
        .timeout(Duration::from_secs(10))
        .user_agent(crate::domain::proxy::backend::BACKEND_USER_AGENT)
        .build()
        .post(&format!("{base}/api/v1/auth/logout"))
        .send_json(serde_json::json!({ "refresh_token": session.refresh_token }))
        .is_ok();
    store
        .delete_backend_session()
        .map_err(|e| CliError::Failed(format!("database: {e}")))?;
    println!(
        "Forgot the agent's ArgusAI session ({}){}. Sign it in again with `{LOGIN_COMMAND}`.",
        session.username,
        if ended {
            "; ArgusAI ended it"
        } else {
            "; ArgusAI could not be told"
        }
    );
    Ok(())
}
