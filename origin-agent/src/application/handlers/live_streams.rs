//! The owner's view of the camera live streams being relayed (the Mobile Access page's
//! "Watching live"): the per-stream counters ([`crate::base::stream_stats`]) with the cameras'
//! names, which only ArgusAI knows.

use std::collections::HashMap;
use std::sync::{LazyLock, Mutex};

use http_body_util::BodyExt;

use crate::application::state::AppState;
use crate::base::stream_stats::{self, StreamSnapshot};
use crate::domain::proxy::backend::ForwardContext;

/// Camera names by id, as ArgusAI gave them (`GET /api/v1/cameras/{id}`), asked once each.
static CAMERA_NAMES: LazyLock<Mutex<HashMap<String, String>>> = LazyLock::new(Default::default);

/// The camera's name for the owner's page ("Driveway"); `None` if ArgusAI does not say.
async fn camera_name(state: &AppState, camera_id: &str) -> Option<String> {
    if let Some(name) = CAMERA_NAMES
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .get(camera_id)
    {
        return Some(name.clone());
    }
    let uri: hyper::Uri = format!("/api/v1/cameras/{camera_id}").parse().ok()?;
    let mut req = hyper::Request::new(crate::base::http::body::empty());
    *req.uri_mut() = uri;
    let ctx = ForwardContext {
        client_ip: None,
        request_id: crate::base::http::request_id::new(),
        client_upgrade: None,
        class: argus_shared::route::BackendClass::Api,
        socket_lifetime: None,
        live_stream: None,
    };
    let resp = state.backend.forward(req, ctx).await.ok()?;
    if !resp.status().is_success() {
        return None;
    }
    // A camera's JSON is a few hundred bytes: read at most 64 KiB of it.
    let mut body = resp.into_body();
    let mut bytes = Vec::new();
    while let Some(frame) = body.frame().await {
        let Ok(data) = frame.ok()?.into_data() else {
            continue;
        };
        if bytes.len() + data.len() > 64 * 1024 {
            return None;
        }
        bytes.extend_from_slice(&data);
    }
    let body = bytes;
    let v: serde_json::Value = serde_json::from_slice(&body).ok()?;
    let name = v.get("name")?.as_str()?.to_owned();
    CAMERA_NAMES
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .insert(camera_id.to_owned(), name.clone());
    Some(name)
}

/// `GET /admin/live-streams`: the streams running now, with their cameras' names, and a line
/// for each ("Alice's iPhone watching Driveway at 720p, 4 fps").
pub async fn owner_view(state: &AppState) -> serde_json::Value {
    let streams = stream_stats::snapshots();
    let ids: Vec<String> = streams.iter().map(|s| s.camera_id.clone()).collect();
    let mut names = Vec::with_capacity(ids.len());
    for id in ids {
        names.push(camera_name(state, &id).await);
    }
    owner_lines(streams, names)
}

fn owner_lines(streams: Vec<StreamSnapshot>, names: Vec<Option<String>>) -> serde_json::Value {
    let rows: Vec<serde_json::Value> = streams
        .into_iter()
        .zip(names)
        .map(|(s, camera_name)| {
            let summary = format!(
                "{} watching {} at {}, {:.0} fps",
                s.device_name,
                camera_name.as_deref().unwrap_or(&s.camera_id),
                s.resolution,
                s.fps
            );
            let mut v = serde_json::to_value(&s).unwrap_or_default();
            v["camera_name"] =
                camera_name.map_or(serde_json::Value::Null, serde_json::Value::String);
            v["summary"] = serde_json::Value::String(summary);
            v
        })
        .collect();
    serde_json::json!({ "streams": rows })
}
