//! `pair`, `pending`, `confirm`, `deny`: pairing phones through the running agent's admin API.
//!
//! Two ways to pair. Owner-initiated: `pair` creates a one-time code and shows it with a QR code
//! of its `argusai://pair?…` link; the phone scans it and redeems the code itself. Phone-initiated:
//! the phone asks to pair and shows a code; the owner sees the request in `pending` and confirms
//! it with the code read off that phone (`confirm CODE`), or refuses it (`deny CODE`).

use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde::Deserialize;
use serde_json::json;

use super::admin_client::{self, AdminClient, AdminError};
use super::CliError;
use crate::base::qr;

/// The longest a pairing code may live.
pub const MAX_TTL_SECS: u64 = 600;
/// How often `pair` asks whether the code was used.
const POLL_INTERVAL: Duration = Duration::from_secs(1);
/// Past the code's expiry by this much without the agent saying so, stop waiting anyway.
const EXPIRY_GRACE: Duration = Duration::from_secs(5);

/// What a paired phone may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ScopeArg {
    /// Everything, including changing settings.
    Owner,
    /// Read-only: watch cameras and events.
    Viewer,
}

impl ScopeArg {
    pub fn as_str(self) -> &'static str {
        match self {
            ScopeArg::Owner => "owner",
            ScopeArg::Viewer => "viewer",
        }
    }
}

#[derive(Debug, clap::Args)]
pub struct PairArgs {
    #[command(flatten)]
    pub config: super::ConfigArg,
    /// What the phone may do once paired.
    #[arg(long, value_enum, default_value_t = ScopeArg::Viewer)]
    pub scope: ScopeArg,
    /// How long the code stays valid, in seconds (at most 600).
    #[arg(long, value_name = "SECS", default_value_t = MAX_TTL_SECS,
          value_parser = clap::value_parser!(u64).range(1..=MAX_TTL_SECS))]
    pub ttl: u64,
    /// Also write the QR code as a PNG image to FILE.
    #[arg(long, value_name = "FILE")]
    pub png: Option<PathBuf>,
    /// Also write the QR code as an SVG image to FILE.
    #[arg(long, value_name = "FILE")]
    pub svg: Option<PathBuf>,
    /// Do not wait for the phone to pair; print the code and exit.
    #[arg(long)]
    pub no_wait: bool,
    /// Print the agent's answer as JSON only (waiting messages go to stderr).
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, clap::Args)]
pub struct PendingArgs {
    #[command(flatten)]
    pub config: super::ConfigArg,
    /// Print the agent's answer as JSON.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, clap::Args)]
pub struct DecideArgs {
    #[command(flatten)]
    pub config: super::ConfigArg,
    /// The code shown on the phone that asked to pair.
    pub code: String,
    /// What the phone may do once paired (confirm only; default viewer).
    #[arg(long, value_enum)]
    pub scope: Option<ScopeArg>,
}

/// `POST /admin/pairing-codes` → 201.
#[derive(Debug, Deserialize)]
struct CreatedCode {
    code: String,
    #[serde(default)]
    scope: String,
    #[serde(default)]
    expires_in: Option<u64>,
    pair_uri: String,
    #[serde(default)]
    public_url: String,
    #[serde(default)]
    fingerprint: String,
}

/// `GET /admin/pairing-codes/{code}`.
#[derive(Debug, Deserialize)]
struct CodeStatus {
    state: String,
    #[serde(default)]
    device_id: Option<String>,
    #[serde(default)]
    device_name: Option<String>,
}

/// `GET /admin/pairings/pending`.
#[derive(Debug, Deserialize)]
struct PendingList {
    pending: Vec<PendingRequest>,
}

#[derive(Debug, Deserialize)]
struct PendingRequest {
    #[serde(default)]
    phone_device_id: Option<String>,
    #[serde(default)]
    platform: Option<String>,
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    model: Option<String>,
    #[serde(default)]
    created_at: Option<i64>,
    #[serde(default)]
    expires_at: Option<i64>,
}

pub fn pair(args: PairArgs) -> Result<(), CliError> {
    let client = AdminClient::from_config_file(&args.config.config)?;
    let answer = client.post(
        "/admin/pairing-codes",
        Some(&json!({"scope": args.scope.as_str(), "ttl_secs": args.ttl})),
    )?;
    let created: CreatedCode = admin_client::decode(answer.clone(), "pairing code")?;
    if created.code.is_empty() || created.pair_uri.is_empty() {
        return Err(CliError::Failed(
            "the agent answered without a code or pairing link".into(),
        ));
    }
    let ttl = created.expires_in.unwrap_or(args.ttl);

    // Files first, so a failure is reported before anything suggests the code is ready.
    if let Some(path) = &args.png {
        let bytes = qr::png(&created.pair_uri).map_err(|e| CliError::Failed(e.to_string()))?;
        write_public_file(path, &bytes)?;
    }
    if let Some(path) = &args.svg {
        let text = qr::svg(&created.pair_uri).map_err(|e| CliError::Failed(e.to_string()))?;
        write_public_file(path, text.as_bytes())?;
    }

    if args.json {
        admin_client::print_json(&answer)?;
    } else {
        print_code(&created, ttl, &args)?;
    }
    let _ = std::io::stdout().flush();
    if args.no_wait {
        return Ok(());
    }
    wait_for_phone(&client, &created.code, ttl, args.json)
}

fn print_code(created: &CreatedCode, ttl: u64, args: &PairArgs) -> Result<(), CliError> {
    let picture = qr::terminal(&created.pair_uri).map_err(|e| CliError::Failed(e.to_string()))?;
    let styled = std::io::stdout().is_terminal() && std::env::var_os("NO_COLOR").is_none();
    let code = spaced_code(&admin_client::sanitize(&created.code));
    let code = if styled {
        format!("\x1b[1m{code}\x1b[0m")
    } else {
        code
    };
    let scope = if created.scope.is_empty() {
        args.scope.as_str().to_owned()
    } else {
        admin_client::sanitize(&created.scope)
    };

    let mut out = String::new();
    out.push_str(
        "Scan this QR code with the ArgusAI app, or enter the code in the app by hand:\n\n",
    );
    out.push_str(&picture);
    out.push('\n');
    out.push_str(&format!("  Code:     {code}\n"));
    out.push_str(&format!("  Access:   {scope}\n"));
    out.push_str(&format!(
        "  Expires:  in {} (one use only)\n",
        admin_client::countdown(ttl)
    ));
    if !created.public_url.is_empty() {
        out.push_str(&format!(
            "  Server:   {}\n",
            admin_client::sanitize(&created.public_url)
        ));
    }
    if !created.fingerprint.is_empty() {
        out.push_str(&format!(
            "  Key:      {}\n",
            admin_client::sanitize(&created.fingerprint)
        ));
    }
    out.push_str(&format!(
        "  Link:     {}\n",
        admin_client::sanitize(&created.pair_uri)
    ));
    for (label, path) in [("PNG", &args.png), ("SVG", &args.svg)] {
        if let Some(path) = path {
            out.push_str(&format!("  {label}:      {}\n", path.display()));
        }
    }
    print!("{out}");
    Ok(())
}

/// `K7P3QX` → `K 7 P   3 Q X`: easy to read out and type; groups of three.
fn spaced_code(code: &str) -> String {
    let chars: Vec<char> = code.chars().collect();
    chars
        .chunks(3)
        .map(|group| {
            group
                .iter()
                .map(char::to_string)
                .collect::<Vec<_>>()
                .join(" ")
        })
        .collect::<Vec<_>>()
        .join("   ")
}

/// Polls the code's state every second until a phone redeems it or it expires.
fn wait_for_phone(client: &AdminClient, code: &str, ttl: u64, json: bool) -> Result<(), CliError> {
    let path = format!("/admin/pairing-codes/{}", admin_client::segment(code));
    let deadline = Instant::now() + Duration::from_secs(ttl);
    let progress = std::io::stderr().is_terminal();
    let expired = || {
        CliError::Failed(format!(
            "the code {} expired before a phone used it; run `argus-relay pair` again",
            admin_client::sanitize(code)
        ))
    };
    if !progress {
        eprintln!("Waiting for the phone to pair (Ctrl-C stops waiting; the code stays valid until it expires)…");
    }
    loop {
        match client.try_request("GET", &path, None) {
            Ok(answer) => {
                let status: CodeStatus = admin_client::decode(answer, "pairing code state")?;
                match status.state.as_str() {
                    "pending" => {}
                    "redeemed" => {
                        clear_progress(progress);
                        let name = status.device_name.as_deref().map(admin_client::sanitize);
                        let id = status.device_id.as_deref().map(admin_client::sanitize);
                        let line = format!(
                            "Paired: {} ({})",
                            name.as_deref().unwrap_or("unnamed device"),
                            id.as_deref().unwrap_or("unknown id")
                        );
                        // With --json, stdout holds the JSON document only.
                        if json {
                            eprintln!("{line}");
                        } else {
                            println!("{line}");
                        }
                        return Ok(());
                    }
                    "expired" => {
                        clear_progress(progress);
                        return Err(expired());
                    }
                    other => {
                        clear_progress(progress);
                        return Err(CliError::Failed(format!(
                            "the agent reports an unknown pairing state {:?}",
                            admin_client::sanitize(other)
                        )));
                    }
                }
            }
            // The code is gone (pruned after expiry).
            Err(e) if e.status() == Some(404) => {
                clear_progress(progress);
                return Err(expired());
            }
            // The agent restarting while we wait is not the end: keep trying until expiry.
            Err(AdminError::Cli(e @ CliError::AgentUnreachable { .. })) => {
                if Instant::now() > deadline {
                    clear_progress(progress);
                    return Err(e);
                }
            }
            Err(e) => {
                clear_progress(progress);
                return Err(e.into());
            }
        }
        let now = Instant::now();
        if now > deadline + EXPIRY_GRACE {
            clear_progress(progress);
            return Err(expired());
        }
        if progress {
            let left = deadline.saturating_duration_since(now).as_secs();
            eprint!(
                "\r\x1b[2KWaiting for the phone to pair… code expires in {} (Ctrl-C stops waiting)",
                admin_client::countdown(left)
            );
            let _ = std::io::stderr().flush();
        }
        std::thread::sleep(POLL_INTERVAL);
    }
}

fn clear_progress(progress: bool) {
    if progress {
        eprint!("\r\x1b[2K");
        let _ = std::io::stderr().flush();
    }
}

/// Writes a file readable by everyone (0644): the QR image is meant to be shown.
fn write_public_file(path: &Path, bytes: &[u8]) -> Result<(), CliError> {
    let fail =
        |e: std::io::Error| CliError::Failed(format!("cannot write {}: {e}", path.display()));
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o644);
    }
    let mut file = options.open(path).map_err(fail)?;
    file.write_all(bytes).map_err(fail)?;
    // The mode above only applies to a new file and is narrowed by the umask.
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        file.set_permissions(std::fs::Permissions::from_mode(0o644))
            .map_err(fail)?;
    }
    Ok(())
}

pub fn pending(args: PendingArgs) -> Result<(), CliError> {
    let client = AdminClient::from_config_file(&args.config.config)?;
    let answer = client.get("/admin/pairings/pending")?;
    if args.json {
        return admin_client::print_json(&answer);
    }
    let list: PendingList = admin_client::decode(answer, "pending pairings")?;
    print!(
        "{}",
        render_pending(&list.pending, admin_client::now_unix())
    );
    Ok(())
}

fn render_pending(pending: &[PendingRequest], now: i64) -> String {
    if pending.is_empty() {
        return "No pairing requests are waiting.\n".to_owned();
    }
    let rows: Vec<Vec<String>> = pending
        .iter()
        .map(|p| {
            let opt = |v: &Option<String>, max| {
                v.as_deref()
                    .map(|s| admin_client::cell(s, max))
                    .unwrap_or_else(|| "-".into())
            };
            vec![
                opt(&p.name, 32),
                opt(&p.model, 20),
                opt(&p.platform, 10),
                opt(&p.phone_device_id, 24),
                p.created_at
                    .map(|t| admin_client::relative_time(Some(t), now))
                    .unwrap_or_else(|| "-".into()),
                p.expires_at
                    .map(|t| admin_client::relative_time(Some(t), now))
                    .unwrap_or_else(|| "-".into()),
            ]
        })
        .collect();
    let mut out = admin_client::table(
        &["NAME", "MODEL", "PLATFORM", "PHONE ID", "ASKED", "EXPIRES"],
        &rows,
    );
    out.push_str(
        "\nOnly confirm a phone you are holding: read the code it shows, then run\n  \
         argus-relay confirm CODE [--scope owner]    or    argus-relay deny CODE\n",
    );
    out
}

pub fn decide(args: DecideArgs, confirm: bool) -> Result<(), CliError> {
    let code = normalize_code(&args.code)?;
    if !confirm && args.scope.is_some() {
        return Err(CliError::Usage("--scope only applies to `confirm`".into()));
    }
    let scope = args.scope.unwrap_or(ScopeArg::Viewer);
    let client = AdminClient::from_config_file(&args.config.config)?;
    let (path, body) = if confirm {
        (
            "/admin/pairings/confirm",
            json!({"code": code, "scope": scope.as_str()}),
        )
    } else {
        ("/admin/pairings/deny", json!({"code": code}))
    };
    match client.try_request("POST", path, Some(&body)) {
        Ok(_) if confirm => {
            println!("Confirmed: the phone showing {code} is paired with {} access.", scope.as_str());
            Ok(())
        }
        Ok(_) => {
            println!("Denied: the pairing request showing {code} is refused.");
            Ok(())
        }
        Err(e) if e.code() == Some("invalid_code") || e.status() == Some(404) => Err(CliError::Refused(format!(
            "no pending pairing request with code {code} (mistyped, expired or already decided; see `argus-relay pending`)"
        ))),
        Err(e) => Err(e.into()),
    }
}

/// Accepts the code as the phone shows it, e.g. `123 456` or `123-456`.
fn normalize_code(raw: &str) -> Result<String, CliError> {
    let code: String = raw
        .chars()
        .filter(|c| !c.is_whitespace() && *c != '-')
        .collect();
    if code.is_empty() {
        return Err(CliError::Usage("the code is empty".into()));
    }
    if code.len() > 64 || !code.chars().all(|c| c.is_ascii_alphanumeric()) {
        return Err(CliError::Usage(format!(
            "{:?} is not a pairing code (letters and digits only)",
            admin_client::sanitize(raw)
        )));
    }
    Ok(code)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_grouped_for_reading() {
        assert_eq!(spaced_code("K7P3QX"), "K 7 P   3 Q X");
        assert_eq!(spaced_code("1234567"), "1 2 3   4 5 6   7");
        assert_eq!(spaced_code(""), "");
    }

    #[test]
    fn typed_codes_are_normalized() {
        assert_eq!(normalize_code(" 123 456 ").unwrap(), "123456");
        assert_eq!(normalize_code("123-456").unwrap(), "123456");
        assert!(matches!(normalize_code("  "), Err(CliError::Usage(_))));
        assert!(matches!(normalize_code("12/34"), Err(CliError::Usage(_))));
    }

    #[test]
    fn pending_table_is_sanitized() {
        let list: PendingList = serde_json::from_value(json!({"pending":[{
            "id": 3, "phone_device_id": "ph_1", "platform": "ios", "name": "Ann's\u{1b}[2J iPhone",
            "model": "iPhone15,2", "created_at": 1000, "expires_at": 1300
        }]}))
        .unwrap();
        let text = render_pending(&list.pending, 1060);
        assert!(text.contains("Ann's?[2J iPhone"), "{text}");
        assert!(!text.contains('\u{1b}'));
        assert!(
            text.contains("1 min ago") && text.contains("in 4 min"),
            "{text}"
        );
        assert!(text.contains("argus-relay confirm CODE"));
        assert_eq!(render_pending(&[], 0), "No pairing requests are waiting.\n");
    }

    #[test]
    fn created_code_answer_parses() {
        let created: CreatedCode = serde_json::from_value(json!({
            "code":"K7P3QX","scope":"viewer","expires_at":1764100000,"expires_in":600,
            "pair_uri":"argusai://pair?code=K7P3QX&url=https%3A%2F%2Frelay.example.com&fp=",
            "public_url":"https://relay.example.com","fingerprint":""
        }))
        .unwrap();
        assert_eq!(created.expires_in, Some(600));
        assert!(qr::terminal(&created.pair_uri).is_ok());
    }

    #[cfg(unix)]
    #[test]
    fn qr_files_are_world_readable() {
        use std::os::unix::fs::PermissionsExt;
        let path = std::env::temp_dir().join(format!("argus-relay-qr-{}.png", std::process::id()));
        std::fs::write(&path, b"old").unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
        write_public_file(&path, b"new").unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"new");
        assert_eq!(
            std::fs::metadata(&path).unwrap().permissions().mode() & 0o777,
            0o644
        );
        let _ = std::fs::remove_file(&path);
    }
}
