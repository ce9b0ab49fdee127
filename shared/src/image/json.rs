//! Images inside JSON: ArgusAI's camera snapshot and preview answer `{"image_base64": "<JPEG>"}`
//! (see [`crate::route::ImageBody::JsonBase64`]). The field is transcoded in place; every other
//! field is kept as it was.

use base64::Engine as _;

use super::{transcode, Limits, Passthrough, Transcoded, Variant};

/// `body` with its string field `field` (a base64 JPEG) transcoded to `variant`, re-encoded as
/// base64. The output image is always JPEG (the field's documented type).
pub fn transcode_field(
    body: &[u8],
    field: &str,
    variant: &Variant,
    limits: &Limits,
) -> Result<(Vec<u8>, Transcoded), Passthrough> {
    // base64 is 4/3 of the bytes: refuse before decoding anything too large.
    let max_json = limits
        .max_input_bytes
        .saturating_mul(4)
        .saturating_div(3)
        .saturating_add(64 * 1024);
    if body.len() > max_json {
        return Err(Passthrough::TooLarge {
            max: limits.max_input_bytes,
        });
    }
    let mut doc: serde_json::Value =
        serde_json::from_slice(body).map_err(|_| Passthrough::UnsupportedFormat("json"))?;
    let encoded = doc
        .get(field)
        .and_then(|v| v.as_str())
        .ok_or(Passthrough::UnsupportedFormat("json"))?;
    // Some producers prefix a data URL; accept it and write the same prefix back.
    let (prefix, data) = match encoded.split_once(";base64,") {
        Some((p, d)) if p.starts_with("data:") => (Some(format!("{p};base64,")), d),
        _ => (None, encoded),
    };
    let jpeg = base64::engine::general_purpose::STANDARD
        .decode(data.trim())
        .map_err(|_| Passthrough::Corrupt)?;
    let out = transcode(&jpeg, variant, limits)?;
    let mut field_value = prefix.unwrap_or_default();
    base64::engine::general_purpose::STANDARD.encode_string(&out.bytes, &mut field_value);
    if let Some(slot) = doc.get_mut(field) {
        *slot = serde_json::Value::String(field_value);
    }
    let bytes = serde_json::to_vec(&doc).map_err(|_| Passthrough::EncodeFailed)?;
    Ok((bytes, out))
}
