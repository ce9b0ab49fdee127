//! `devices`, `rename`, `revoke`, `keys rotate`: managing paired phones and the token signing
//! key through the running agent's admin API.

use serde::Deserialize;
use serde_json::{json, Value};

use super::admin_client::{self, AdminClient, AdminError};
use super::CliError;

#[derive(Debug, clap::Args)]
pub struct ListArgs {
    #[command(flatten)]
    pub config: super::ConfigArg,
    /// Print the agent's answer as JSON.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, clap::Args)]
pub struct RenameArgs {
    #[command(flatten)]
    pub config: super::ConfigArg,
    /// The device's id (see `argus-relay devices`).
    pub id: String,
    /// The new name.
    pub name: String,
}

#[derive(Debug, clap::Args)]
pub struct RevokeArgs {
    #[command(flatten)]
    pub config: super::ConfigArg,
    /// The device's id (see `argus-relay devices`).
    pub id: String,
}

/// `GET /admin/devices`.
#[derive(Debug, Deserialize)]
struct DeviceList {
    devices: Vec<Device>,
}

#[derive(Debug, Deserialize)]
struct Device {
    id: String,
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    platform: Option<String>,
    #[serde(default)]
    os_version: Option<String>,
    #[serde(default)]
    scope: Option<String>,
    #[serde(default)]
    last_seen_at: Option<i64>,
    #[serde(default)]
    revoked_at: Option<i64>,
    #[serde(default)]
    revoked_reason: Option<String>,
}

impl Device {
    /// The STATUS column.
    fn status(&self) -> &'static str {
        match (self.revoked_at, self.revoked_reason.as_deref()) {
            (None, _) => "active",
            (Some(_), Some("refresh_token_reused")) => "revoked (refresh token reused)",
            (Some(_), _) => "revoked",
        }
    }
}

/// `POST /admin/keys/rotate`.
#[derive(Debug, Deserialize)]
struct Rotated {
    kid: String,
    jwks: Value,
    /// The pin of the new Oblivious HTTP key configuration (absent from older agents).
    #[serde(default)]
    ohttp_keys_sha256: Option<String>,
}

pub fn list(args: ListArgs) -> Result<(), CliError> {
    let client = AdminClient::from_config_file(&args.config.config)?;
    let answer = client.get("/admin/devices")?;
    if args.json {
        return admin_client::print_json(&answer);
    }
    let list: DeviceList = admin_client::decode(answer, "device list")?;
    print!(
        "{}",
        render_devices(&list.devices, admin_client::now_unix())
    );
    Ok(())
}

fn render_devices(devices: &[Device], now: i64) -> String {
    if devices.is_empty() {
        return "No devices are paired yet. Pair a phone with `argus-relay pair`.\n".to_owned();
    }
    let rows: Vec<Vec<String>> = devices
        .iter()
        .map(|d| {
            let platform = match (d.platform.as_deref(), d.os_version.as_deref()) {
                (Some(p), Some(v)) if !v.is_empty() => format!("{p} {v}"),
                (Some(p), _) => p.to_owned(),
                (None, _) => "-".to_owned(),
            };
            vec![
                admin_client::cell(&d.id, 40),
                d.name
                    .as_deref()
                    .map(|n| admin_client::cell(n, 32))
                    .unwrap_or_else(|| "-".into()),
                admin_client::cell(&platform, 16),
                d.scope
                    .as_deref()
                    .map(|s| admin_client::cell(s, 8))
                    .unwrap_or_else(|| "-".into()),
                admin_client::relative_time(d.last_seen_at, now),
                d.status().to_owned(),
            ]
        })
        .collect();
    let mut out = admin_client::table(
        &["ID", "NAME", "PLATFORM", "SCOPE", "LAST SEEN", "STATUS"],
        &rows,
    );
    let revoked = devices.iter().filter(|d| d.revoked_at.is_some()).count();
    out.push_str(&format!(
        "\n{} device{} ({} active, {revoked} revoked)\n",
        devices.len(),
        if devices.len() == 1 { "" } else { "s" },
        devices.len() - revoked
    ));
    out
}

fn device_id(raw: &str) -> Result<&str, CliError> {
    let id = raw.trim();
    if id.is_empty() {
        return Err(CliError::Usage(
            "the device id is empty (see `argus-relay devices`)".into(),
        ));
    }
    Ok(id)
}

fn unknown_device(id: &str, e: AdminError) -> CliError {
    if e.status() == Some(404) {
        CliError::Refused(format!(
            "no device with id {} (see `argus-relay devices`)",
            admin_client::sanitize(id)
        ))
    } else {
        e.into()
    }
}

pub fn rename(args: RenameArgs) -> Result<(), CliError> {
    let id = device_id(&args.id)?;
    let name = args.name.trim();
    if name.is_empty() {
        return Err(CliError::Usage("the new name is empty".into()));
    }
    if name.chars().any(char::is_control) {
        return Err(CliError::Usage(
            "the new name may not contain control characters".into(),
        ));
    }
    let client = AdminClient::from_config_file(&args.config.config)?;
    let path = format!("/admin/devices/{}/rename", admin_client::segment(id));
    let answer = client
        .try_request("PUT", &path, Some(&json!({"name": name})))
        .map_err(|e| unknown_device(id, e))?;
    let shown = answer.get("name").and_then(Value::as_str).unwrap_or(name);
    println!(
        "Renamed {}: now \"{}\"",
        admin_client::sanitize(id),
        admin_client::sanitize(shown)
    );
    Ok(())
}

pub fn revoke(args: RevokeArgs) -> Result<(), CliError> {
    let id = device_id(&args.id)?;
    let client = AdminClient::from_config_file(&args.config.config)?;
    let path = format!("/admin/devices/{}", admin_client::segment(id));
    client
        .try_request("DELETE", &path, None)
        .map_err(|e| unknown_device(id, e))?;
    println!(
        "Revoked {}: its tokens stop working now",
        admin_client::sanitize(id)
    );
    Ok(())
}

pub fn rotate_keys(args: super::ConfigArg) -> Result<(), CliError> {
    let client = AdminClient::from_config_file(&args.config)?;
    let answer = client.post("/admin/keys/rotate", None)?;
    let rotated: Rotated = admin_client::decode(answer, "key rotation")?;
    print!("{}", render_rotation(&rotated)?);
    Ok(())
}

fn render_rotation(rotated: &Rotated) -> Result<String, CliError> {
    if rotated.jwks.get("keys").and_then(Value::as_array).is_none() {
        return Err(CliError::Failed(
            "the agent's answer has no JWKS (`jwks.keys`)".into(),
        ));
    }
    let jwks = serde_json::to_string(&rotated.jwks)
        .map_err(|e| CliError::Failed(format!("cannot print the JWKS: {e}")))?;
    let sealed = match &rotated.ohttp_keys_sha256 {
        Some(pin) => format!(
            "\nNew Oblivious HTTP key configuration (sealed mode), SHA-256 {pin}.\n\
             The previous one is still accepted for 7 days; sealed phones learn the new pin inside\n\
             the seal of their next request.\n",
            pin = admin_client::sanitize(pin)
        ),
        None => String::new(),
    };
    Ok(format!(
        "New signing key: {kid}\n\
         Tokens signed with the previous key stay valid until they expire.\n\
         \n\
         The edge Worker fetches the new public key from this agent within 5 seconds; nothing to\n\
         redeploy. The public keys now served (also at /.well-known/jwks.json):\n\
         \n\
         {jwks}\n{sealed}",
        kid = admin_client::sanitize(&rotated.kid),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn device_table_shows_status_and_relative_times() {
        let list: DeviceList = serde_json::from_value(json!({"devices":[
            {"id":"dev_a","name":"Ann's iPhone","model":"iPhone15,2","platform":"ios","os_version":"18.1",
             "app_version":"1.0","scope":"owner","created_at":0,"last_seen_at":1000,"revoked_at":null},
            {"id":"dev_b","name":"Old\nPixel","model":null,"platform":"android","os_version":null,
             "app_version":null,"scope":"viewer","created_at":0,"last_seen_at":null,"revoked_at":50}
        ],"total":2}))
        .unwrap();
        let text = render_devices(&list.devices, 1000 + 7200);
        let lines: Vec<&str> = text.lines().collect();
        assert!(
            lines[0].starts_with("ID")
                && lines[0].contains("LAST SEEN")
                && lines[0].ends_with("STATUS")
        );
        assert!(
            lines[1].contains("dev_a")
                && lines[1].contains("ios 18.1")
                && lines[1].contains("2 h ago")
        );
        assert!(lines[1].ends_with("active"));
        assert!(
            lines[2].contains("Old?Pixel")
                && lines[2].contains("never")
                && lines[2].ends_with("revoked")
        );
        assert!(
            text.ends_with("2 devices (1 active, 1 revoked)\n"),
            "{text}"
        );
        assert!(render_devices(&[], 0).contains("argus-relay pair"));
    }

    #[test]
    fn a_device_revoked_for_refresh_token_reuse_says_so() {
        let list: DeviceList = serde_json::from_value(json!({"devices":[
            {"id":"dev_a","name":"Ann's iPhone","platform":"ios","scope":"owner",
             "last_seen_at":1000,"revoked_at":1100,"revoked_reason":"refresh_token_reused"},
            {"id":"dev_b","name":"Ben's iPhone","platform":"ios","scope":"viewer",
             "last_seen_at":1000,"revoked_at":null}
        ],"total":2}))
        .unwrap();
        let text = render_devices(&list.devices, 2000);
        let lines: Vec<&str> = text.lines().collect();
        assert!(
            lines[1].contains("dev_a") && lines[1].ends_with("revoked (refresh token reused)"),
            "{text}"
        );
        assert!(lines[2].ends_with("active"), "{text}");
        assert!(
            text.ends_with("2 devices (1 active, 1 revoked)\n"),
            "{text}"
        );
    }

    #[test]
    fn rotation_prints_the_jwks_on_one_line() {
        let rotated: Rotated = serde_json::from_value(json!({
            "kid":"k2","jwks":{"keys":[{"kty":"OKP","crv":"Ed25519","kid":"k2","x":"abc"},{"kid":"k1"}]}
        }))
        .unwrap();
        let text = render_rotation(&rotated).unwrap();
        assert!(text.starts_with("New signing key: k2\n"));
        assert!(text.contains("nothing to"));
        let last = text.lines().last().unwrap();
        let back: Value = serde_json::from_str(last).unwrap();
        assert_eq!(back, rotated.jwks);
        let bad: Rotated = serde_json::from_value(json!({"kid":"k","jwks":{}})).unwrap();
        assert!(render_rotation(&bad).is_err());
    }

    #[test]
    fn empty_ids_are_usage_errors() {
        assert!(matches!(device_id("  "), Err(CliError::Usage(_))));
        assert_eq!(device_id(" dev_1 ").unwrap(), "dev_1");
    }
}
