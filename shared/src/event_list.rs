//! Compact event lists for phones: `GET /api/v1/events` with the seed's `page`/`per_page` and a
//! `fields=` projection, on top of ArgusAI's own `limit`/`offset` API.
//!
//! ArgusAI answers `{events, total_count, has_more, next_offset, limit, offset}` with ~2.8 KB per
//! event (AI descriptions, processing metadata, key-frame lists…). A phone's list needs a handful
//! of fields. [`plan`] reads the relay's query parameters and says what to ask the backend;
//! [`shape`] rewrites the backend's answer. Both are pure: the agent runs them
//! (origin-agent/src/domain/proxy/event_list.rs), so the tunnel and the LAN carry the small body.
//!
//! - `page` (1-based) and `per_page` (1–[`MAX_PER_PAGE`], default [`DEFAULT_PER_PAGE`]) become
//!   `limit`/`offset`, and the answer gains `pagination: {page, per_page, total, has_next}`
//!   alongside everything the backend sent. Mixing them with `limit`/`offset` is an error.
//! - `fields=a,b,c` keeps only those keys of each event (always with `id`). Names are ArgusAI's
//!   ([`EVENT_FIELDS`]); the seed's names are accepted as aliases ([`FIELD_ALIASES`]:
//!   `thumbnail_url` → `thumbnail_path`). An unknown name is an error, not a silent omission.
//! - Neither present: [`plan`] returns `None` and the request goes through unchanged — the iOS
//!   app's plain `limit`/`offset` call is not touched.

use serde_json::{Map, Value};
use thiserror::Error;

/// `per_page` when only `page` is given (the seed's default).
pub const DEFAULT_PER_PAGE: u32 = 20;
/// Largest `per_page` (ArgusAI's own `limit` maximum is 500; a phone's page is far smaller).
pub const MAX_PER_PAGE: u32 = 100;
/// Largest `page`: keeps `offset` well inside ArgusAI's integer range.
pub const MAX_PAGE: u32 = 1_000_000;

/// The top-level fields of ArgusAI's `EventResponse` (../shared/argusai/openapi.json).
pub const EVENT_FIELDS: &[&str] = &[
    "id",
    "camera_id",
    "camera_name",
    "timestamp",
    "description",
    "confidence",
    "objects_detected",
    "thumbnail_path",
    "thumbnail_base64",
    "alert_triggered",
    "source_type",
    "protect_event_id",
    "smart_detection_type",
    "is_doorbell_ring",
    "created_at",
    "correlation_group_id",
    "correlated_events",
    "provider_used",
    "fallback_reason",
    "analysis_mode",
    "frame_count_used",
    "audio_transcription",
    "ai_confidence",
    "low_confidence",
    "vague_reason",
    "reanalyzed_at",
    "reanalysis_count",
    "ai_cost",
    "ai_response_time_ms",
    "tokens_used",
    "ocr_used",
    "ai_fallback_used",
    "prompt_variant",
    "entity_similarity_score",
    "entity_occurrence_count",
    "entity_is_new",
    "final_entity_similarity_score",
    "final_entity_occurrence_count",
    "final_entity_is_new",
    "final_entity_id",
    "final_entity_type",
    "final_entity_name",
    "regenerated",
    "context_included",
    "context_stats",
    "post_processing_summary",
    "ai_economics",
    "processing_summary",
    "processing_metadata",
    "key_frames_base64",
    "frame_timestamps",
    "matched_entity",
    "entity_id",
    "entity_name",
    "feedback",
    "audio_event_type",
    "audio_confidence",
    "audio_duration_ms",
    "delivery_carrier",
    "delivery_carrier_display",
    "video_path",
    "has_annotations",
    "bounding_boxes",
    "annotated_thumbnail_path",
];

/// The seed's field names that ArgusAI spells differently: (seed, ArgusAI).
pub const FIELD_ALIASES: &[(&str, &str)] = &[
    ("thumbnail_url", "thumbnail_path"),
    ("camera", "camera_name"),
    ("objects", "objects_detected"),
];

/// Why a compact-list request is refused (400 `bad_request`).
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum EventListError {
    #[error("{param} must be an integer from {min} to {max}")]
    OutOfRange {
        param: &'static str,
        min: u32,
        max: u32,
    },
    #[error("{0} given twice")]
    Repeated(&'static str),
    #[error("page/per_page and limit/offset cannot be mixed")]
    MixedPaging,
    #[error("unknown event field {0:?} (see docs/mobile-integration.md, \"Compact event lists\")")]
    UnknownField(String),
    #[error("fields is empty")]
    NoFields,
}

/// The answer could not be shaped: the caller passes the backend's bytes through unchanged.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ShapeError {
    #[error("the backend's event list is not the JSON object expected")]
    NotAnEventList,
}

/// What the relay does for one request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListPlan {
    /// The query to send the backend: the request's own parameters in order, without `page`,
    /// `per_page` and `fields`, with `limit`/`offset` when paging was asked for. `None`: no
    /// parameters left.
    pub backend_query: Option<String>,
    /// `(page, per_page)` when the seed's paging was asked for.
    pub page: Option<(u32, u32)>,
    /// ArgusAI field names to keep (deduplicated, `id` first), when a projection was asked for.
    pub fields: Option<Vec<&'static str>>,
}

/// Reads the relay's parameters from the query string of `GET /api/v1/events`. `Ok(None)`: none
/// of them is present, forward unchanged.
pub fn plan(query: Option<&str>) -> Result<Option<ListPlan>, EventListError> {
    let query = query.unwrap_or("");
    let mut page = None;
    let mut per_page = None;
    let mut fields: Option<Vec<&'static str>> = None;
    let mut kept: Vec<&str> = Vec::new();
    let mut backend_paging = false;
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
        match name {
            "page" => set_once(&mut page, "page", int(value, "page", 1, MAX_PAGE)?)?,
            "per_page" => set_once(
                &mut per_page,
                "per_page",
                int(value, "per_page", 1, MAX_PER_PAGE)?,
            )?,
            "fields" => set_once(&mut fields, "fields", parse_fields(value)?)?,
            _ => {
                backend_paging |= name == "limit" || name == "offset";
                kept.push(pair);
            }
        }
    }
    if page.is_none() && per_page.is_none() && fields.is_none() {
        return Ok(None);
    }
    let paging = match (page, per_page) {
        (None, None) => None,
        _ if backend_paging => return Err(EventListError::MixedPaging),
        (p, pp) => Some((p.unwrap_or(1), pp.unwrap_or(DEFAULT_PER_PAGE))),
    };
    let mut backend: Vec<String> = kept.iter().map(|s| (*s).to_owned()).collect();
    if let Some((p, pp)) = paging {
        let offset = u64::from(p - 1) * u64::from(pp);
        backend.push(format!("limit={pp}"));
        backend.push(format!("offset={offset}"));
    }
    Ok(Some(ListPlan {
        backend_query: (!backend.is_empty()).then(|| backend.join("&")),
        page: paging,
        fields,
    }))
}

fn set_once<T>(slot: &mut Option<T>, name: &'static str, value: T) -> Result<(), EventListError> {
    if slot.is_some() {
        return Err(EventListError::Repeated(name));
    }
    *slot = Some(value);
    Ok(())
}

fn int(value: &str, param: &'static str, min: u32, max: u32) -> Result<u32, EventListError> {
    let range = EventListError::OutOfRange { param, min, max };
    // Digits only: no sign, no spaces, no percent-encoding tricks; at most 10 digits parsed.
    if value.is_empty() || value.len() > 10 || !value.bytes().all(|b| b.is_ascii_digit()) {
        return Err(range);
    }
    match value.parse::<u64>() {
        Ok(n) if n >= u64::from(min) && n <= u64::from(max) => Ok(n as u32),
        _ => Err(range),
    }
}

/// `fields` value: comma-separated (`%2C` accepted, as some clients encode it), names or aliases.
fn parse_fields(value: &str) -> Result<Vec<&'static str>, EventListError> {
    let mut out: Vec<&'static str> = vec!["id"];
    let mut any = false;
    for raw in value
        .split(',')
        .flat_map(|s| s.split("%2C"))
        .flat_map(|s| s.split("%2c"))
    {
        let name = raw.trim();
        if name.is_empty() {
            continue;
        }
        any = true;
        let canonical = FIELD_ALIASES
            .iter()
            .find(|(alias, _)| *alias == name)
            .map(|(_, real)| *real)
            .or_else(|| EVENT_FIELDS.iter().find(|f| **f == name).copied())
            .ok_or_else(|| EventListError::UnknownField(truncate(name)))?;
        if !out.contains(&canonical) {
            out.push(canonical);
        }
    }
    if !any {
        return Err(EventListError::NoFields);
    }
    Ok(out)
}

/// An unknown name echoed in an error: at most 64 characters.
fn truncate(name: &str) -> String {
    name.chars().take(64).collect()
}

/// Rewrites the backend's `200` event list for `plan`: each event projected to the plan's fields,
/// and `pagination` added. Everything else the backend sent is kept as it was.
pub fn shape(body: &[u8], plan: &ListPlan) -> Result<Vec<u8>, ShapeError> {
    let mut doc: Map<String, Value> =
        serde_json::from_slice(body).map_err(|_| ShapeError::NotAnEventList)?;
    let events = match doc.get_mut("events") {
        Some(Value::Array(events)) => events,
        _ => return Err(ShapeError::NotAnEventList),
    };
    if let Some(fields) = &plan.fields {
        for event in events.iter_mut() {
            let Value::Object(full) = event else {
                return Err(ShapeError::NotAnEventList);
            };
            let mut kept = Map::new();
            for name in fields {
                if let Some((k, v)) = full.remove_entry(*name) {
                    kept.insert(k, v);
                }
            }
            *full = kept;
        }
    }
    if let Some((page, per_page)) = plan.page {
        let total = doc.get("total_count").and_then(Value::as_u64);
        let has_more = doc.get("has_more").and_then(Value::as_bool);
        let (Some(total), Some(has_next)) = (total, has_more) else {
            return Err(ShapeError::NotAnEventList);
        };
        doc.insert(
            "pagination".into(),
            serde_json::json!({
                "page": page,
                "per_page": per_page,
                "total": total,
                "has_next": has_next,
            }),
        );
    }
    serde_json::to_vec(&doc).map_err(|_| ShapeError::NotAnEventList)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn planned(q: &str) -> ListPlan {
        plan(Some(q)).expect("valid").expect("a plan")
    }

    #[test]
    fn the_apps_own_call_is_not_touched() {
        assert_eq!(plan(Some("limit=20&offset=40")), Ok(None));
        assert_eq!(plan(Some("camera_id=abc&sort_order=asc")), Ok(None));
        assert_eq!(plan(None), Ok(None));
        assert_eq!(plan(Some("")), Ok(None));
    }

    #[test]
    fn page_and_per_page_become_limit_and_offset() {
        let p = planned("page=3&per_page=20&camera_id=cam-1");
        assert_eq!(
            p.backend_query.as_deref(),
            Some("camera_id=cam-1&limit=20&offset=40")
        );
        assert_eq!(p.page, Some((3, 20)));
        assert_eq!(p.fields, None);
        // Defaults: page 1, per_page 20.
        assert_eq!(planned("page=2").page, Some((2, DEFAULT_PER_PAGE)));
        assert_eq!(planned("per_page=5").page, Some((1, 5)));
        assert_eq!(
            planned("per_page=5").backend_query.as_deref(),
            Some("limit=5&offset=0")
        );
    }

    #[test]
    fn bad_paging_is_refused_with_the_reason() {
        for q in [
            "page=0",
            "page=-1",
            "page=+1",
            "page=1.5",
            "page=",
            "page=99999999999999999999",
            "per_page=0",
            "per_page=101",
            "page=1000001",
        ] {
            assert!(
                matches!(plan(Some(q)), Err(EventListError::OutOfRange { .. })),
                "{q}"
            );
        }
        assert_eq!(
            plan(Some("page=1&page=2")),
            Err(EventListError::Repeated("page"))
        );
        assert_eq!(
            plan(Some("page=1&limit=10")),
            Err(EventListError::MixedPaging)
        );
        assert_eq!(
            plan(Some("offset=10&per_page=10")),
            Err(EventListError::MixedPaging)
        );
    }

    #[test]
    fn fields_use_argusai_names_and_the_seeds_aliases() {
        let p = planned("fields=id,timestamp,thumbnail_url,description");
        assert_eq!(
            p.fields,
            Some(vec!["id", "timestamp", "thumbnail_path", "description"])
        );
        assert_eq!(p.backend_query, None);
        assert_eq!(p.page, None);
        // id is always kept, duplicates once, %2C as a separator.
        assert_eq!(
            planned("fields=description%2Cdescription,camera_name").fields,
            Some(vec!["id", "description", "camera_name"])
        );
        // fields alone with the app's own paging is fine: nothing to mix.
        assert_eq!(
            planned("limit=10&fields=id").backend_query.as_deref(),
            Some("limit=10")
        );
        assert_eq!(
            plan(Some("fields=id,pasword")),
            Err(EventListError::UnknownField("pasword".into()))
        );
        assert_eq!(plan(Some("fields=,")), Err(EventListError::NoFields));
    }

    fn backend_page() -> Vec<u8> {
        serde_json::to_vec(&serde_json::json!({
            "events": [
                {"id": "e1", "timestamp": "t1", "description": "a cat", "thumbnail_path": "p1",
                 "processing_metadata": {"big": "x".repeat(2000)}},
                {"id": "e2", "timestamp": "t2", "description": "a dog", "thumbnail_path": null,
                 "processing_metadata": {}},
            ],
            "total_count": 45, "has_more": true, "next_offset": 22, "limit": 2, "offset": 20
        }))
        .unwrap()
    }

    #[test]
    fn the_answer_keeps_the_backend_fields_and_gains_pagination() {
        let p = planned("page=11&per_page=2&fields=timestamp,thumbnail_url");
        let out: Value = serde_json::from_slice(&shape(&backend_page(), &p).unwrap()).unwrap();
        assert_eq!(
            out["events"],
            serde_json::json!([
                {"id": "e1", "timestamp": "t1", "thumbnail_path": "p1"},
                {"id": "e2", "timestamp": "t2", "thumbnail_path": null},
            ])
        );
        assert_eq!(
            out["pagination"],
            serde_json::json!({"page": 11, "per_page": 2, "total": 45, "has_next": true})
        );
        for kept in ["total_count", "has_more", "next_offset", "limit", "offset"] {
            assert!(out.get(kept).is_some(), "{kept} kept");
        }
    }

    #[test]
    fn projection_alone_adds_no_pagination() {
        let out: Value = serde_json::from_slice(
            &shape(&backend_page(), &planned("fields=description")).unwrap(),
        )
        .unwrap();
        assert!(out.get("pagination").is_none());
        assert_eq!(
            out["events"][1],
            serde_json::json!({"id": "e2", "description": "a dog"})
        );
    }

    #[test]
    fn what_is_not_an_event_list_is_left_alone() {
        let p = planned("page=1");
        for body in [
            &b"not json"[..],
            b"[]",
            b"{\"detail\":\"x\"}",
            b"{\"events\":{}}",
            b"{\"events\":[],\"total_count\":\"many\",\"has_more\":false}",
        ] {
            assert_eq!(shape(body, &p), Err(ShapeError::NotAnEventList), "{body:?}");
        }
        assert_eq!(
            shape(b"{\"events\":[1]}", &planned("fields=id")),
            Err(ShapeError::NotAnEventList)
        );
    }
}
