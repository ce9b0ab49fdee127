//! Push-notification device registration, `/api/v1/devices` (ArgusAI's `devices.py`): a phone
//! registers its APNS/FCM token, refreshes it and sets quiet hours. Every route is `jwt_only`
//! (`Depends(get_current_user)`): devices belong to the signed-in user and an `X-API-Key` gets 401
//! (see `route_auth`).

use std::sync::Mutex;

use hyper::StatusCode;
use serde::Serialize;

use super::query::{ValidationError, Validator};
use super::route_auth::User;
use super::server::{detail, json, Resp};

const PLATFORMS: [&str; 3] = ["ios", "android", "web"];

/// One registered device (`DeviceResponse`).
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct PushDevice {
    pub id: String,
    pub user_id: String,
    pub device_id: String,
    pub platform: String,
    pub name: Option<String>,
    pub device_model: Option<String>,
    #[serde(skip)]
    pub push_token: Option<String>,
    pub quiet_hours_enabled: bool,
    pub quiet_hours_start: Option<String>,
    pub quiet_hours_end: Option<String>,
    pub created_at: String,
    pub updated_at: Option<String>,
    pub last_seen_at: Option<String>,
    pub pairing_confirmed: bool,
    pub inactive_warning: bool,
}

/// The stand-in's `devices` table.
#[derive(Debug, Default)]
pub(crate) struct PushDevices {
    rows: Mutex<Vec<PushDevice>>,
}

fn now() -> String {
    let t = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    super::data::rfc3339(t.as_secs() as i64, t.subsec_micros())
}

/// A string field of a JSON body, pydantic-style: `Some(None)` when absent or null and optional.
fn body_str(
    v: &mut Validator,
    body: &serde_json::Value,
    name: &str,
    required: bool,
    max_len: Option<usize>,
) -> Option<Option<String>> {
    let loc = vec!["body".into(), name.into()];
    match body.get(name) {
        None | Some(serde_json::Value::Null) if required => {
            v.missing("body", name);
            None
        }
        None | Some(serde_json::Value::Null) => Some(None),
        Some(serde_json::Value::String(s)) if required && s.is_empty() => {
            v.errors.push(ValidationError {
                kind: "string_too_short",
                loc,
                msg: "String should have at least 1 character".into(),
                input: s.as_str().into(),
                ctx: Some(serde_json::json!({"min_length": 1})),
            });
            None
        }
        Some(serde_json::Value::String(s)) if max_len.is_some_and(|m| s.chars().count() > m) => {
            let max = max_len.unwrap_or_default();
            v.errors.push(ValidationError {
                kind: "string_too_long",
                loc,
                msg: format!("String should have at most {max} characters"),
                input: s.as_str().into(),
                ctx: Some(serde_json::json!({"max_length": max})),
            });
            None
        }
        Some(serde_json::Value::String(s)) => Some(Some(s.clone())),
        Some(other) => {
            v.errors.push(ValidationError {
                kind: "string_type",
                loc,
                msg: "Input should be a valid string".into(),
                input: other.clone(),
                ctx: None,
            });
            None
        }
    }
}

fn validation(v: Validator) -> Resp {
    json(StatusCode::UNPROCESSABLE_ENTITY, &v.into_body())
}

fn device_not_found() -> Resp {
    detail(StatusCode::NOT_FOUND, "Device not found")
}

impl PushDevices {
    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<PushDevice>> {
        self.rows.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Every registered device, oldest first.
    pub(crate) fn all(&self) -> Vec<PushDevice> {
        self.lock().clone()
    }

    /// `POST /api/v1/devices`: registers or updates (same user and `device_id`) a device; 201.
    pub(crate) fn register(&self, user: &User, body: &serde_json::Value, new_id: String) -> Resp {
        let mut v = Validator::default();
        let device_id = body_str(&mut v, body, "device_id", true, Some(255));
        let platform = body_str(&mut v, body, "platform", true, None);
        let name = body_str(&mut v, body, "name", false, Some(100));
        let model = body_str(&mut v, body, "device_model", false, Some(100));
        let token = body_str(&mut v, body, "push_token", false, None);
        if let Some(Some(p)) = &platform {
            if !PLATFORMS.contains(&p.as_str()) {
                v.errors.push(ValidationError {
                    kind: "enum",
                    loc: vec!["body".into(), "platform".into()],
                    msg: "Input should be 'ios', 'android' or 'web'".into(),
                    input: p.as_str().into(),
                    ctx: Some(serde_json::json!({"expected": "'ios', 'android' or 'web'"})),
                });
            }
        }
        let (Some(Some(device_id)), Some(Some(platform)), Some(name), Some(model), Some(token)) =
            (device_id, platform, name, model, token)
        else {
            return validation(v);
        };
        if !v.is_ok() {
            return validation(v);
        }
        let mut rows = self.lock();
        let now = now();
        let existing = rows
            .iter_mut()
            .find(|d| d.user_id == user.id && d.device_id == device_id);
        let (row, is_new) = match existing {
            Some(d) => {
                d.platform = platform;
                d.name = name.or(d.name.take());
                d.device_model = model.or(d.device_model.take());
                d.push_token = token.or(d.push_token.take());
                d.updated_at = Some(now.clone());
                d.last_seen_at = Some(now);
                (d.clone(), false)
            }
            None => {
                let d = PushDevice {
                    id: new_id,
                    user_id: user.id.clone(),
                    device_id,
                    platform,
                    name,
                    device_model: model,
                    push_token: token,
                    quiet_hours_enabled: false,
                    quiet_hours_start: None,
                    quiet_hours_end: None,
                    created_at: now.clone(),
                    updated_at: None,
                    last_seen_at: Some(now),
                    pairing_confirmed: false,
                    inactive_warning: false,
                };
                rows.push(d.clone());
                (d, true)
            }
        };
        json(
            StatusCode::CREATED,
            &serde_json::json!({
                "id": row.id,
                "device_id": row.device_id,
                "platform": row.platform,
                "created_at": row.created_at,
                "is_new": is_new,
            }),
        )
    }

    /// `GET /api/v1/devices`: the user's devices.
    pub(crate) fn list(&self, user: &User) -> Resp {
        let mine: Vec<PushDevice> = self
            .lock()
            .iter()
            .filter(|d| d.user_id == user.id)
            .cloned()
            .collect();
        json(
            StatusCode::OK,
            &serde_json::json!({ "total": mine.len(), "devices": mine }),
        )
    }

    /// Applies `edit` to the user's device whose `device_id` (or row `id`) is `key`.
    fn edit(
        &self,
        user: &User,
        key: &str,
        edit: impl FnOnce(&mut PushDevice),
    ) -> Option<PushDevice> {
        let mut rows = self.lock();
        let d = rows
            .iter_mut()
            .find(|d| d.user_id == user.id && (d.device_id == key || d.id == key))?;
        edit(d);
        d.updated_at = Some(now());
        Some(d.clone())
    }

    /// `PUT /api/v1/devices/{device_id}/token`.
    pub(crate) fn update_token(&self, user: &User, key: &str, body: &serde_json::Value) -> Resp {
        let mut v = Validator::default();
        let Some(Some(token)) = body_str(&mut v, body, "push_token", true, None) else {
            return validation(v);
        };
        match self.edit(user, key, |d| d.push_token = Some(token)) {
            Some(d) => json(
                StatusCode::OK,
                &serde_json::json!({"success": true, "device_id": d.device_id}),
            ),
            None => device_not_found(),
        }
    }

    /// `PUT /api/v1/devices/{device_id}/preferences` (quiet hours).
    pub(crate) fn update_preferences(
        &self,
        user: &User,
        key: &str,
        body: &serde_json::Value,
    ) -> Resp {
        let mut v = Validator::default();
        let start = body_str(&mut v, body, "quiet_hours_start", false, None);
        let end = body_str(&mut v, body, "quiet_hours_end", false, None);
        let enabled = match body.get("quiet_hours_enabled") {
            None | Some(serde_json::Value::Null) => None,
            Some(serde_json::Value::Bool(b)) => Some(*b),
            Some(other) => {
                v.errors.push(ValidationError {
                    kind: "bool_type",
                    loc: vec!["body".into(), "quiet_hours_enabled".into()],
                    msg: "Input should be a valid boolean".into(),
                    input: other.clone(),
                    ctx: None,
                });
                None
            }
        };
        let (Some(start), Some(end)) = (start, end) else {
            return validation(v);
        };
        if !v.is_ok() {
            return validation(v);
        }
        let edited = self.edit(user, key, |d| {
            if let Some(e) = enabled {
                d.quiet_hours_enabled = e;
            }
            d.quiet_hours_start = start.or(d.quiet_hours_start.take());
            d.quiet_hours_end = end.or(d.quiet_hours_end.take());
        });
        match edited {
            Some(d) => json(StatusCode::OK, &d),
            None => device_not_found(),
        }
    }

    /// `PUT /api/v1/devices/{id}`: name and/or push token.
    pub(crate) fn update(&self, user: &User, key: &str, body: &serde_json::Value) -> Resp {
        let mut v = Validator::default();
        let name = body_str(&mut v, body, "name", false, Some(100));
        let token = body_str(&mut v, body, "push_token", false, None);
        let (Some(name), Some(token)) = (name, token) else {
            return validation(v);
        };
        let edited = self.edit(user, key, |d| {
            d.name = name.or(d.name.take());
            d.push_token = token.or(d.push_token.take());
        });
        match edited {
            Some(d) => json(StatusCode::OK, &d),
            None => device_not_found(),
        }
    }

    /// `DELETE /api/v1/devices/{device_id}`: 204.
    pub(crate) fn delete(&self, user: &User, key: &str) -> Resp {
        let mut rows = self.lock();
        let before = rows.len();
        rows.retain(|d| !(d.user_id == user.id && (d.device_id == key || d.id == key)));
        if rows.len() == before {
            return device_not_found();
        }
        super::server::response(StatusCode::NO_CONTENT, None, super::server::empty())
    }
}
