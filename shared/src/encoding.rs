//! Response compression for phones: which `Content-Encoding` to ask the runtime for.
//!
//! ArgusAI answers JSON uncompressed (~2.8 KB per event in `GET /api/v1/events`). The edge Worker
//! sets `Content-Encoding` on eligible responses and workerd compresses the body as it sends it
//! (`encodeBody: "automatic"`, the default): the phone's last mile carries brotli or gzip. Event
//! lists also cross the tunnel gzip-compressed by the agent (origin-agent's
//! `compact_event_list`). See docs/benchmarks.md.

/// Bodies smaller than this are not worth a compression frame.
pub const MIN_COMPRESS_BYTES: u64 = 1024;

/// The encoding to use for a client that sent `accept_encoding`: `br` if acceptable, else
/// `gzip`, else none. `q=0` excludes; `*` covers both.
pub fn choose(accept_encoding: Option<&str>) -> Option<&'static str> {
    let [br, gzip] = acceptable(accept_encoding);
    if br {
        Some("br")
    } else if gzip {
        Some("gzip")
    } else {
        None
    }
}

/// Whether `accept_encoding` allows gzip (the agent's one coding, for the tunnel hop).
pub fn accepts_gzip(accept_encoding: Option<&str>) -> bool {
    acceptable(accept_encoding)[1]
}

/// `[br, gzip]`: which of the two the header allows.
fn acceptable(accept_encoding: Option<&str>) -> [bool; 2] {
    let Some(header) = accept_encoding.filter(|h| !h.trim().is_empty()) else {
        return [false, false];
    };
    let mut star: Option<bool> = None;
    let mut named: [Option<bool>; 2] = [None, None]; // br, gzip
    for item in header.split(',') {
        let mut parts = item.split(';');
        let name = parts.next().unwrap_or("").trim().to_ascii_lowercase();
        let ok = !parts.any(|p| {
            let p = p.trim();
            p.strip_prefix("q=")
                .or_else(|| p.strip_prefix("Q="))
                .and_then(|v| v.trim().parse::<f32>().ok())
                .is_some_and(|q| q <= 0.0)
        });
        match name.as_str() {
            "br" => named[0] = Some(ok),
            "gzip" | "x-gzip" => named[1] = Some(ok),
            "*" => star = Some(ok),
            _ => {}
        }
    }
    [0, 1].map(|i| named[i].or(star).unwrap_or(false))
}

/// Content types worth compressing: JSON and text. Images and video are already compressed.
pub fn is_compressible(content_type: &str) -> bool {
    let ct = content_type
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    ct == "application/json"
        || ct.ends_with("+json")
        || ct == "application/x-ndjson"
        || ct.starts_with("text/") && ct != "text/event-stream"
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn picks_br_then_gzip() {
        assert_eq!(choose(None), None);
        assert_eq!(choose(Some("")), None);
        assert_eq!(choose(Some("gzip, deflate, br")), Some("br"));
        assert_eq!(choose(Some("gzip, deflate")), Some("gzip"));
        assert_eq!(choose(Some("br;q=0, gzip")), Some("gzip"));
        assert_eq!(choose(Some("*")), Some("br"));
        assert_eq!(choose(Some("*, br;q=0")), Some("gzip"));
        assert_eq!(choose(Some("identity")), None);
        assert_eq!(choose(Some("gzip;q=0")), None);
        assert_eq!(choose(Some("GZIP")), Some("gzip"));
    }

    #[test]
    fn gzip_for_the_tunnel_hop() {
        assert!(accepts_gzip(Some("gzip, br")));
        assert!(accepts_gzip(Some("*")));
        assert!(!accepts_gzip(Some("br")));
        assert!(!accepts_gzip(Some("gzip;q=0, br")));
        assert!(!accepts_gzip(None));
    }

    #[test]
    fn compresses_json_and_text_only() {
        assert!(is_compressible("application/json"));
        assert!(is_compressible("application/json; charset=utf-8"));
        assert!(is_compressible("application/problem+json"));
        assert!(is_compressible("text/csv"));
        assert!(!is_compressible("text/event-stream"));
        assert!(!is_compressible("image/jpeg"));
        assert!(!is_compressible("video/mp4"));
        assert!(!is_compressible("application/octet-stream"));
    }
}
