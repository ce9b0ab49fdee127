//! Canonical request targets: one strict check before anything routes on a path.
//!
//! The backend behind the relay serves files from disk under `/api/v1/thumbnails/{date}/{file}`
//! and answers `GET /api/v1/thumbnails/%2e%2e/app.db` with its own SQLite database. So every
//! hop that routes (the edge Worker and the origin agent) first runs [`canonicalize`] on the
//! request target *as received* and refuses anything that is not in one plain, unambiguous
//! form. Nothing is "fixed up": a target is either accepted as it is or rejected with a
//! [`PathError`] whose [`PathError::reason`] is a stable code.
//!
//! # What is accepted
//! `/segment/segment…[?query]` where
//! - the path is at most [`MAX_PATH_LEN`] bytes of ASCII, starts with `/`, has no empty segment
//!   (`//`) except that it may end in exactly one `/` (FastAPI's trailing-slash routes);
//! - raw characters are RFC 3986 `pchar`s: letters, digits, `-._~`, `!$&'()*+,=`, `:` and `@`;
//!   `;` is refused, raw or encoded (see below);
//! - percent escapes are well formed (`%` + two hex digits) and decode to valid UTF-8 that is
//!   neither a control character, NUL, `/`, `\`, nor a Unicode look-alike of `.`, `/` or `\`, nor
//!   an invisible or bidi-control character;
//! - no segment is `.`, `..` or any other run of dots and spaces, whether literal or encoded;
//! - decoding once leaves no escape behind (`%252e`, `%25%32%65` and `%25u002e` all decode to
//!   something a second decoder would decode again): whatever decodes the path a second time
//!   finds nothing to do.
//!
//! The query (after the first `?`) is kept as received: at most [`MAX_QUERY_LEN`] bytes of
//! printable ASCII, well-formed escapes, no NUL or control characters raw or encoded, no `#`.
//! A bare `?` with nothing after it is the same as no query.
//!
//! # Why `;` is refused
//! Starlette treats `;` as an ordinary character, but servers and proxies in the Java and PHP
//! worlds strip `;params` from segments (`/api/v1/system;x/tunnel/stop` → `/api/v1/system/tunnel/stop`).
//! Routing here would see the segment `system;x`, not `system`: a parser disagreement waiting for
//! a proxy in between. No ArgusAI path uses `;`, so it costs nothing to refuse it.
//!
//! # The same path at home and away
//! `request.url` in workerd is already parsed by the WHATWG URL parser, which resolves `.`/`..`
//! and `%2e` segments and turns `\` into `/` before the Worker sees it: the Worker cannot refuse
//! `/api/v1/thumbnails/%2e%2e/app.db`, it sees `/api/v1/app.db` (and checks, routes and
//! forwards that — not a hole: the backend gets the resolved path). [`canonicalize`] still
//! catches `%2f`, `%5c`, double encoding, overlong UTF-8, NUL and the rest there.
//!
//! So that a phone gets the same answer at home, the LAN listener first puts the raw target
//! through the same standard parser ([`as_parsed_by_the_url_standard`]), then [`canonicalize`]s
//! it. The tunnel listener does not: it takes only what the Worker signed, which is already
//! canonical, and any dot segment there is refused.

use thiserror::Error;

use crate::api::ErrorCode;

/// Longest accepted path (the part before `?`), in bytes as received.
pub const MAX_PATH_LEN: usize = 2048;
/// Longest accepted query (the part after `?`), in bytes as received.
pub const MAX_QUERY_LEN: usize = 4096;

/// A request target that passed [`canonicalize`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CanonicalTarget {
    /// The path exactly as received (still percent-encoded). This is what is forwarded.
    pub path: String,
    /// The path percent-decoded once. This is what routing and policy match on.
    pub decoded_path: String,
    /// The query as received (still encoded), without the `?`. `None` when absent or empty.
    pub query: Option<String>,
}

impl CanonicalTarget {
    /// The target to forward: `path` plus `?query` when there is one.
    pub fn target(&self) -> String {
        match &self.query {
            Some(q) => {
                let mut s = String::with_capacity(self.path.len() + 1 + q.len());
                s.push_str(&self.path);
                s.push('?');
                s.push_str(q);
                s
            }
            None => self.path.clone(),
        }
    }
}

/// Why a request target was refused. [`PathError::reason`] is the stable code.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
pub enum PathError {
    #[error("the path does not start with '/'")]
    NotAbsolute,
    #[error("the path is longer than {MAX_PATH_LEN} bytes")]
    TooLong,
    #[error("the path has an empty segment ('//')")]
    EmptySegment,
    #[error("the path has a '.' or '..' segment (literal or encoded)")]
    DotSegment,
    #[error("the path has an encoded '/' (%2f)")]
    EncodedSlash,
    #[error("the path has an encoded '\\' (%5c)")]
    EncodedBackslash,
    #[error("the path is percent-encoded twice (%25 followed by an escape)")]
    DoubleEncoding,
    #[error("the path has a '\\'")]
    Backslash,
    #[error("the path has a NUL byte")]
    Nul,
    #[error("the path has a control character")]
    ControlChar,
    #[error("the path has an overlong UTF-8 encoding")]
    OverlongUtf8,
    #[error("the path does not decode to valid UTF-8")]
    InvalidUtf8,
    #[error("the path has a malformed percent escape")]
    MalformedEscape,
    #[error("the path has a raw non-ASCII byte")]
    NonAscii,
    #[error("the path has a character that is not allowed raw in a path")]
    InvalidChar,
    #[error("the path has a ';' path parameter")]
    PathParameter,
    #[error("the path has a Unicode look-alike of '.', '/' or '\\', or an invisible character")]
    UnsafeUnicode,
    #[error("the query is longer than {MAX_QUERY_LEN} bytes")]
    QueryTooLong,
    #[error("the query has a NUL byte or a control character")]
    QueryControlChar,
    #[error("the query has a malformed percent escape")]
    QueryMalformedEscape,
    #[error("the query has a character that is not allowed raw in a query")]
    QueryInvalidChar,
}

impl PathError {
    /// Stable machine-readable code, sent as the error body's `reason`.
    pub const fn reason(self) -> &'static str {
        match self {
            PathError::NotAbsolute => "not_absolute",
            PathError::TooLong => "too_long",
            PathError::EmptySegment => "empty_segment",
            PathError::DotSegment => "dot_segment",
            PathError::EncodedSlash => "encoded_slash",
            PathError::EncodedBackslash => "encoded_backslash",
            PathError::DoubleEncoding => "double_encoding",
            PathError::Backslash => "backslash",
            PathError::Nul => "nul",
            PathError::ControlChar => "control_char",
            PathError::OverlongUtf8 => "overlong_utf8",
            PathError::InvalidUtf8 => "invalid_utf8",
            PathError::MalformedEscape => "malformed_escape",
            PathError::NonAscii => "non_ascii",
            PathError::InvalidChar => "invalid_char",
            PathError::PathParameter => "path_parameter",
            PathError::UnsafeUnicode => "unsafe_unicode",
            PathError::QueryTooLong => "query_too_long",
            PathError::QueryControlChar => "query_control_char",
            PathError::QueryMalformedEscape => "query_malformed_escape",
            PathError::QueryInvalidChar => "query_invalid_char",
        }
    }

    /// The error code answered: `non_canonical_path` for the path, `bad_request` for the query.
    pub const fn error_code(self) -> ErrorCode {
        match self {
            PathError::QueryTooLong
            | PathError::QueryControlChar
            | PathError::QueryMalformedEscape
            | PathError::QueryInvalidChar => ErrorCode::BadRequest,
            _ => ErrorCode::NonCanonicalPath,
        }
    }

    /// HTTP status (400 for every variant).
    pub const fn status(self) -> u16 {
        self.error_code().status()
    }
}

/// Checks a request target (path and optional `?query`, still percent-encoded, as received).
///
/// The target must be in origin form (`/…`); absolute form (`http://host/…`) and `*` are refused.
pub fn canonicalize(raw_path_and_query: &str) -> Result<CanonicalTarget, PathError> {
    canonicalize_bytes(raw_path_and_query.as_bytes())
}

/// `raw` (an origin-form target, `/…`) as the WHATWG URL parser leaves it — what workerd hands
/// the Worker: `.`, `..` and their encoded forms (`%2e`, `.%2e`, `%2E%2e`…) resolved, `\` as
/// `/`, characters outside the URL code points percent-encoded, a fragment dropped. Anything
/// that is not origin form (`*`, `http://…`) is [`PathError::NotAbsolute`].
pub fn as_parsed_by_the_url_standard(raw: &str) -> Result<String, PathError> {
    if !raw.starts_with('/') {
        return Err(PathError::NotAbsolute);
    }
    // Behind a fixed authority, so that `//host/x` stays a path and cannot name a host.
    let url = url::Url::parse(&format!("http://relay.invalid{raw}"))
        .map_err(|_| PathError::MalformedEscape)?;
    if url.host_str() != Some("relay.invalid") {
        return Err(PathError::NotAbsolute);
    }
    Ok(url[url::Position::BeforePath..url::Position::AfterQuery].to_owned())
}

/// [`canonicalize`] for a target held as bytes (e.g. straight from an HTTP/1 request line).
pub fn canonicalize_bytes(raw: &[u8]) -> Result<CanonicalTarget, PathError> {
    let (path, query) = match raw.iter().position(|&b| b == b'?') {
        Some(i) => (&raw[..i], Some(&raw[i + 1..])),
        None => (raw, None),
    };
    if path.len() > MAX_PATH_LEN {
        return Err(PathError::TooLong);
    }
    if let Some(q) = query {
        if q.len() > MAX_QUERY_LEN {
            return Err(PathError::QueryTooLong);
        }
    }
    let decoded = check_path(path)?;
    let query = match query {
        Some(q) if !q.is_empty() => {
            check_query(q)?;
            Some(ascii_string(q)?)
        }
        _ => None,
    };
    Ok(CanonicalTarget {
        path: ascii_string(path)?,
        decoded_path: decoded,
        query,
    })
}

/// The path and query were checked to be ASCII; this only converts.
fn ascii_string(bytes: &[u8]) -> Result<String, PathError> {
    String::from_utf8(bytes.to_vec()).map_err(|_| PathError::NonAscii)
}

fn hex_val(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

/// Decodes the escape starting at `bytes[i]` (which is `%`), or `None` if malformed.
fn escape_at(bytes: &[u8], i: usize) -> Option<u8> {
    let hi = hex_val(*bytes.get(i + 1)?)?;
    let lo = hex_val(*bytes.get(i + 2)?)?;
    Some(hi << 4 | lo)
}

/// RFC 3986 `pchar` minus `%` (handled separately) and minus `;` (refused on purpose).
fn is_path_char(b: u8) -> bool {
    b.is_ascii_alphanumeric()
        || matches!(
            b,
            b'-' | b'.'
                | b'_'
                | b'~'
                | b'!'
                | b'$'
                | b'&'
                | b'\''
                | b'('
                | b')'
                | b'*'
                | b'+'
                | b','
                | b'='
                | b':'
                | b'@'
        )
}

fn is_ascii_control(b: u8) -> bool {
    b < 0x20 || b == 0x7f
}

/// Validates the path and returns it decoded once.
fn check_path(path: &[u8]) -> Result<String, PathError> {
    if path.first() != Some(&b'/') {
        return Err(PathError::NotAbsolute);
    }
    let mut decoded: Vec<u8> = Vec::with_capacity(path.len());
    decoded.push(b'/');
    let mut seg_start = 1usize; // index in `decoded` where the current segment starts
    let mut i = 1usize;
    while let Some(&b) = path.get(i) {
        match b {
            b'/' => {
                // A segment ends here and another follows, so it may not be empty.
                check_segment(&decoded[seg_start..], false)?;
                decoded.push(b'/');
                seg_start = decoded.len();
                i += 1;
            }
            b'%' => {
                let v = escape_at(path, i).ok_or(PathError::MalformedEscape)?;
                match v {
                    0 => return Err(PathError::Nul),
                    b'/' => return Err(PathError::EncodedSlash),
                    b'\\' => return Err(PathError::EncodedBackslash),
                    b';' => return Err(PathError::PathParameter),
                    b'%' => {
                        // `%25` followed by what would be an escape once decoded: `%252e`,
                        // `%2541`, and IIS-style `%25u002e`.
                        let next = path.get(i + 3).copied();
                        let after = path.get(i + 4).copied();
                        let is_hex_pair =
                            next.and_then(hex_val).is_some() && after.and_then(hex_val).is_some();
                        if is_hex_pair || matches!(next, Some(b'u' | b'U')) {
                            return Err(PathError::DoubleEncoding);
                        }
                    }
                    v if is_ascii_control(v) => return Err(PathError::ControlChar),
                    _ => {}
                }
                decoded.push(v);
                i += 3;
            }
            0 => return Err(PathError::Nul),
            b'\\' => return Err(PathError::Backslash),
            b';' => return Err(PathError::PathParameter),
            b if is_ascii_control(b) => return Err(PathError::ControlChar),
            0x80..=0xFF => return Err(PathError::NonAscii),
            b if is_path_char(b) => {
                decoded.push(b);
                i += 1;
            }
            _ => return Err(PathError::InvalidChar),
        }
    }
    // The last segment may be empty: that is the single trailing slash (or the root `/`).
    check_segment(&decoded[seg_start..], true)?;
    check_no_escape_left(&decoded)?;
    check_utf8_bytes(&decoded)?;
    let s = String::from_utf8(decoded).map_err(|_| PathError::InvalidUtf8)?;
    check_unicode(&s)?;
    Ok(s)
}

/// The decoded path must not contain an escape any more: `%25%32%65` decodes to `%2e`, which a
/// second decoder would turn into `.`.
fn check_no_escape_left(decoded: &[u8]) -> Result<(), PathError> {
    for (i, &b) in decoded.iter().enumerate() {
        if b != b'%' {
            continue;
        }
        let next = decoded.get(i + 1).copied();
        let after = decoded.get(i + 2).copied();
        let hex_pair = next.and_then(hex_val).is_some() && after.and_then(hex_val).is_some();
        if hex_pair || matches!(next, Some(b'u' | b'U')) {
            return Err(PathError::DoubleEncoding);
        }
    }
    Ok(())
}

/// A decoded segment: not empty (unless it is the last one), not made only of dots and spaces.
fn check_segment(seg: &[u8], is_last: bool) -> Result<(), PathError> {
    if seg.is_empty() {
        return if is_last {
            Ok(())
        } else {
            Err(PathError::EmptySegment)
        };
    }
    if seg.iter().all(|&b| b == b'.' || b == b' ') {
        // `.`, `..`, `...`, `.. ` (Windows drops trailing dots and spaces), or only spaces.
        return if seg.contains(&b'.') {
            Err(PathError::DotSegment)
        } else {
            Err(PathError::EmptySegment)
        };
    }
    Ok(())
}

/// Finds overlong encodings before the generic UTF-8 check so they get their own reason.
fn check_utf8_bytes(bytes: &[u8]) -> Result<(), PathError> {
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        let next = bytes.get(i + 1).copied().unwrap_or(0);
        let overlong = match b {
            0xC0 | 0xC1 => true,
            0xE0 => (0x80..=0x9F).contains(&next),
            0xF0 => (0x80..=0x8F).contains(&next),
            _ => false,
        };
        if overlong {
            return Err(PathError::OverlongUtf8);
        }
        i += 1;
    }
    if std::str::from_utf8(bytes).is_err() {
        return Err(PathError::InvalidUtf8);
    }
    Ok(())
}

/// Decoded non-ASCII characters that are refused: C1 controls, look-alikes of `.` `/` `\`
/// (which NFKC or "best fit" conversions turn into the real thing), and invisible or
/// direction-changing characters.
fn check_unicode(s: &str) -> Result<(), PathError> {
    for c in s.chars() {
        if c.is_ascii() {
            continue;
        }
        if ('\u{80}'..='\u{9F}').contains(&c) {
            return Err(PathError::ControlChar);
        }
        let unsafe_char = matches!(
            c,
            // dots
            '\u{2024}' | '\u{2025}' | '\u{2026}' | '\u{FE52}' | '\u{FF0E}' | '\u{FE19}'
            // slashes
            | '\u{2044}' | '\u{2215}' | '\u{29F8}' | '\u{FF0F}' | '\u{2571}'
            // backslashes
            | '\u{2216}' | '\u{29F5}' | '\u{29F9}' | '\u{FE68}' | '\u{FF3C}' | '\u{2572}'
            // invisible, joiners, bidi controls, BOM
            | '\u{00AD}' | '\u{200B}'..='\u{200F}' | '\u{202A}'..='\u{202E}'
            | '\u{2060}'..='\u{2064}' | '\u{2066}'..='\u{2069}' | '\u{FEFF}'
        );
        if unsafe_char {
            return Err(PathError::UnsafeUnicode);
        }
    }
    Ok(())
}

/// Printable ASCII except `#` and space, escapes well formed and not decoding to controls.
fn check_query(q: &[u8]) -> Result<(), PathError> {
    let mut i = 0;
    while let Some(&b) = q.get(i) {
        match b {
            b'%' => {
                let v = escape_at(q, i).ok_or(PathError::QueryMalformedEscape)?;
                if is_ascii_control(v) {
                    return Err(PathError::QueryControlChar);
                }
                if v == b'%' {
                    // `%2500`: a NUL for whatever decodes twice.
                    if let Some(v2) = escape_at(q, i + 2) {
                        if is_ascii_control(v2) {
                            return Err(PathError::QueryControlChar);
                        }
                    }
                }
                i += 3;
            }
            b if is_ascii_control(b) => return Err(PathError::QueryControlChar),
            b'#' | b' ' => return Err(PathError::QueryInvalidChar),
            0x80..=0xFF => return Err(PathError::QueryInvalidChar),
            _ => i += 1,
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reject(target: &str) -> &'static str {
        match canonicalize(target) {
            Ok(t) => panic!("{target:?} was accepted as {t:?}"),
            Err(e) => e.reason(),
        }
    }

    fn accept(target: &str) -> CanonicalTarget {
        match canonicalize(target) {
            Ok(t) => t,
            Err(e) => panic!("{target:?} was refused: {e} ({})", e.reason()),
        }
    }

    #[test]
    fn legitimate_targets() {
        let t = accept("/api/v1/thumbnails/2025-01-01/abc.jpg");
        assert_eq!(t.path, "/api/v1/thumbnails/2025-01-01/abc.jpg");
        assert_eq!(t.decoded_path, "/api/v1/thumbnails/2025-01-01/abc.jpg");
        assert_eq!(t.query, None);

        let t = accept("/api/v1/events?limit=20&offset=0");
        assert_eq!(t.path, "/api/v1/events");
        assert_eq!(t.decoded_path, "/api/v1/events");
        assert_eq!(t.query.as_deref(), Some("limit=20&offset=0"));
        assert_eq!(t.target(), "/api/v1/events?limit=20&offset=0");

        assert_eq!(accept("/ws/stream/3").decoded_path, "/ws/stream/3");
        assert_eq!(accept("/ws").decoded_path, "/ws");
        assert_eq!(accept("/").decoded_path, "/");

        let t = accept("/api/v1/events/");
        assert_eq!(t.path, "/api/v1/events/");
        assert_eq!(t.decoded_path, "/api/v1/events/");

        let t = accept("/api/v1/thumbnails/2025-01-01/my%20photo.jpg");
        assert_eq!(t.path, "/api/v1/thumbnails/2025-01-01/my%20photo.jpg");
        assert_eq!(t.decoded_path, "/api/v1/thumbnails/2025-01-01/my photo.jpg");

        // Other legitimate shapes.
        assert_eq!(accept("/a/file.name.jpg").decoded_path, "/a/file.name.jpg");
        assert_eq!(accept("/a/.hidden").decoded_path, "/a/.hidden");
        assert_eq!(accept("/a/x..y").decoded_path, "/a/x..y");
        assert_eq!(accept("/a/..x").decoded_path, "/a/..x");
        assert_eq!(accept("/a/b%2Ec").decoded_path, "/a/b.c");
        assert_eq!(accept("/a/caf%C3%A9").decoded_path, "/a/café");
        assert_eq!(accept("/a/100%25").decoded_path, "/a/100%");
        assert_eq!(accept("/a/100%25%20off").decoded_path, "/a/100% off");
        assert_eq!(
            accept("/a/~user:x@y!$&'()*+,=").decoded_path,
            "/a/~user:x@y!$&'()*+,="
        );
        assert_eq!(
            accept("/api/v1/events/123e4567-e89b-12d3-a456-426614174000/frames/1").decoded_path,
            "/api/v1/events/123e4567-e89b-12d3-a456-426614174000/frames/1"
        );
        // Encoded letters decode for routing: routing sees what the backend will see.
        assert_eq!(
            accept("/api/v1/%73ystem/tunnel/stop").decoded_path,
            "/api/v1/system/tunnel/stop"
        );
    }

    #[test]
    fn queries() {
        assert_eq!(accept("/x?").query, None);
        assert_eq!(accept("/x?").target(), "/x");
        assert_eq!(
            accept("/x?a=1&b=%20c+d").query.as_deref(),
            Some("a=1&b=%20c+d")
        );
        assert_eq!(accept("/x?a=/b?c").query.as_deref(), Some("a=/b?c"));
        assert_eq!(
            accept("/x?filter[camera]=a|b").query.as_deref(),
            Some("filter[camera]=a|b")
        );
        assert_eq!(accept("/x?q=%C3%A9").query.as_deref(), Some("q=%C3%A9"));
        // The query does not get the path's rules: `..` and `%2f` are data there.
        assert_eq!(accept("/x?p=..%2f..").query.as_deref(), Some("p=..%2f.."));
        assert_eq!(reject("/x?a=%00"), "query_control_char");
        assert_eq!(reject("/x?a=\0"), "query_control_char");
        assert_eq!(reject("/x?a=%0a"), "query_control_char");
        assert_eq!(reject("/x?a=%0D%0A"), "query_control_char");
        assert_eq!(reject("/x?a=\r\n"), "query_control_char");
        assert_eq!(reject("/x?a=%7f"), "query_control_char");
        assert_eq!(reject("/x?a=%2500"), "query_control_char");
        assert_eq!(reject("/x?a=%"), "query_malformed_escape");
        assert_eq!(reject("/x?a=%g1"), "query_malformed_escape");
        assert_eq!(reject("/x?a=%2"), "query_malformed_escape");
        assert_eq!(reject("/x?a=1#frag"), "query_invalid_char");
        assert_eq!(reject("/x?a=b c"), "query_invalid_char");
        assert_eq!(reject("/x?a=é"), "query_invalid_char");
        let long = format!("/x?{}", "a".repeat(MAX_QUERY_LEN + 1));
        assert_eq!(reject(&long), "query_too_long");
        let ok = format!("/x?{}", "a".repeat(MAX_QUERY_LEN));
        assert!(canonicalize(&ok).is_ok());
    }

    #[test]
    fn not_absolute() {
        for t in [
            "",
            "api/v1/events",
            "*",
            "http://host/api/v1/events",
            "?a=1",
            "%2fapi",
        ] {
            assert_eq!(reject(t), "not_absolute", "{t:?}");
        }
    }

    #[test]
    fn empty_segments() {
        for t in [
            "//",
            "//api/v1/events",
            "/api//v1/events",
            "/api/v1/events//",
            "/api/v1/events//x",
            "/api/v1/%20/x",
            "/api/v1/%20%20",
        ] {
            assert_eq!(reject(t), "empty_segment", "{t:?}");
        }
    }

    #[test]
    fn dot_segments_in_every_spelling() {
        for t in [
            "/api/v1/thumbnails/../app.db",
            "/api/v1/thumbnails/./x",
            "/api/v1/thumbnails/..",
            "/api/v1/thumbnails/.",
            "/api/v1/thumbnails/../",
            "/..",
            "/.",
            "/api/v1/thumbnails/%2e%2e/app.db",
            "/api/v1/thumbnails/%2E%2E/app.db",
            "/api/v1/thumbnails/%2e%2E/app.db",
            "/api/v1/thumbnails/.%2e/app.db",
            "/api/v1/thumbnails/%2e./app.db",
            "/api/v1/thumbnails/%2e/app.db",
            "/api/v1/thumbnails/%2E/app.db",
            "/api/v1/thumbnails/.../app.db",
            "/api/v1/thumbnails/..%20/app.db",
            "/api/v1/thumbnails/.%20./app.db",
            "/api/v1/thumbnails/x/..",
        ] {
            assert_eq!(reject(t), "dot_segment", "{t:?}");
        }
    }

    #[test]
    fn double_encoding() {
        for t in [
            "/api/v1/thumbnails/%252e%252e/app.db",
            "/api/v1/thumbnails/%252E%252E/app.db",
            "/api/v1/thumbnails/.%252e/app.db",
            "/api/v1/thumbnails/..%252fapp.db",
            "/api/v1/thumbnails/..%252Fapp.db",
            "/api/v1/thumbnails/..%255capp.db",
            "/api/v1/thumbnails/..%255Capp.db",
            "/api/v1/thumbnails/%2500",
            "/api/v1/%2573ystem",
            "/api/v1/thumbnails/%25u002e%25u002e/app.db",
            "/api/v1/thumbnails/%25252e",
            "/api/v1/thumbnails/%25%32%65%25%32%65/app.db",
            "/api/v1/thumbnails/%25%32e",
            "/api/v1/thumbnails/%252%65",
            "/a/%25%75002e",
        ] {
            assert_eq!(reject(t), "double_encoding", "{t:?}");
        }
    }

    #[test]
    fn encoded_slash_and_backslash() {
        for t in [
            "/api/v1/thumbnails/..%2fapp.db",
            "/api/v1/thumbnails/..%2Fapp.db",
            "/api/v1/thumbnails/%2e%2e%2fapp.db",
            "/api/v1%2fsystem/tunnel/stop",
            "/api/v1/thumbnails/a%2Fb",
        ] {
            assert_eq!(reject(t), "encoded_slash", "{t:?}");
        }
        for t in [
            "/api/v1/thumbnails/..%5capp.db",
            "/api/v1/thumbnails/..%5Capp.db",
            "/api/v1/thumbnails/%2e%2e%5capp.db",
        ] {
            assert_eq!(reject(t), "encoded_backslash", "{t:?}");
        }
        for t in ["/api/v1/thumbnails/..\\app.db", "/api\\v1", "/\\"] {
            assert_eq!(reject(t), "backslash", "{t:?}");
        }
    }

    #[test]
    fn nul_and_control_characters() {
        for t in ["/api/v1/events%00", "/api/v1/events\0", "/a%00b", "/a\0/b"] {
            assert_eq!(reject(t), "nul", "{t:?}");
        }
        for t in [
            "/a%0a",
            "/a%0A",
            "/a%0d%0aSet-Cookie:x",
            "/a%09",
            "/a%1f",
            "/a%7f",
            "/a%7F",
            "/a\n",
            "/a\r",
            "/a\t",
            "/a\x1f",
            "/a\x7f",
            "/a%c2%80",
            "/a%C2%9F",
        ] {
            assert_eq!(reject(t), "control_char", "{t:?}");
        }
    }

    #[test]
    fn overlong_and_invalid_utf8() {
        for t in [
            "/api/v1/thumbnails/%c0%ae%c0%ae/app.db",
            "/api/v1/thumbnails/%C0%AE%C0%AE/app.db",
            "/api/v1/thumbnails/..%c0%afapp.db",
            "/api/v1/thumbnails/..%c1%9capp.db",
            "/api/v1/thumbnails/%e0%80%ae%e0%80%ae/app.db",
            "/api/v1/thumbnails/%f0%80%80%ae",
            "/a%c0%80",
        ] {
            assert_eq!(reject(t), "overlong_utf8", "{t:?}");
        }
        for t in [
            "/a%ff",
            "/a%fe",
            "/a%80",
            "/a%c3",
            "/a%c3%28",
            "/a%ed%a0%80",    // surrogate half
            "/a%f4%90%80%80", // above U+10FFFF
            "/a%e2%82",       // truncated
        ] {
            assert_eq!(reject(t), "invalid_utf8", "{t:?}");
        }
    }

    #[test]
    fn unicode_look_alikes_and_invisibles() {
        for t in [
            "/api/v1/thumbnails/%EF%BC%8E%EF%BC%8E/app.db", // fullwidth full stops
            "/api/v1/thumbnails/%E2%80%A5/app.db",          // two dot leader
            "/api/v1/thumbnails/..%EF%BC%8Fapp.db",         // fullwidth solidus
            "/api/v1/thumbnails/..%E2%88%95app.db",         // division slash
            "/api/v1/thumbnails/..%EF%BC%BCapp.db",         // fullwidth reverse solidus
            "/api/v1/sys%E2%80%8Btem",                      // zero-width space
            "/api/v1/a%E2%80%AEb",                          // right-to-left override
            "/a%EF%BB%BF",                                  // BOM
        ] {
            assert_eq!(reject(t), "unsafe_unicode", "{t:?}");
        }
    }

    #[test]
    fn malformed_escapes() {
        for t in [
            "/a%", "/a%g1", "/a%1", "/a%1g", "/a%%41", "/%", "/a%u002e", "/a%2",
        ] {
            assert_eq!(reject(t), "malformed_escape", "{t:?}");
        }
    }

    #[test]
    fn raw_characters() {
        for t in ["/a/é", "/caf\u{e9}", "/a\u{ff0e}"] {
            assert_eq!(reject(t), "non_ascii", "{t:?}");
        }
        assert_eq!(
            canonicalize_bytes(b"/a/\xc0\xae").map_err(PathError::reason),
            Err("non_ascii")
        );
        assert_eq!(
            canonicalize_bytes(b"/a/\xff").map_err(PathError::reason),
            Err("non_ascii")
        );
        for t in [
            "/a b", "/a\"b", "/a<b", "/a>b", "/a`b", "/a{b", "/a}b", "/a|b", "/a^b", "/a[b",
            "/a]b", "/a#b",
        ] {
            assert_eq!(reject(t), "invalid_char", "{t:?}");
        }
        for t in [
            "/api/v1/system;x/tunnel/stop",
            "/a;jsessionid=1",
            "/a/..;/b",
            "/api/v1/system%3bx/tunnel/stop",
            "/a%3B",
        ] {
            assert_eq!(reject(t), "path_parameter", "{t:?}");
        }
    }

    #[test]
    fn length_limit() {
        let max = format!("/{}", "a".repeat(MAX_PATH_LEN - 1));
        assert!(canonicalize(&max).is_ok());
        let over = format!("/{}", "a".repeat(MAX_PATH_LEN));
        assert_eq!(reject(&over), "too_long");
        // The query does not count towards the path limit.
        let with_query = format!("{max}?a=1");
        assert!(canonicalize(&with_query).is_ok());
    }

    /// Random targets built from troublesome pieces: never a panic, and whatever is accepted
    /// has none of the forms routing must not see, and is accepted again unchanged.
    #[test]
    fn random_targets_keep_the_invariants() {
        const PIECES: &[&str] = &[
            "/",
            "/",
            "/",
            "a",
            "api",
            "v1",
            ".",
            "..",
            "%2e",
            "%2E",
            "%2f",
            "%5c",
            "%25",
            "%252e",
            "%c0",
            "%ae",
            "%af",
            "%e0",
            "%80",
            "%00",
            "%0a",
            "%20",
            "%41",
            "%",
            "%g",
            "?",
            "#",
            ";",
            "\\",
            "é",
            "~",
            "-",
            "x.jpg",
            "%ef%bc%8e",
            "%e2%80%8b",
            "%c3%a9",
            "%32",
            "%65",
            "%75",
            "2e",
            "5c",
            "00",
            "&",
            "=",
        ];
        let mut state: u64 = 0x9E37_79B9_7F4A_7C15;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        for _ in 0..50_000 {
            let n = (next() % 12) as usize;
            let mut t = String::from("/");
            for _ in 0..n {
                t.push_str(PIECES[(next() % PIECES.len() as u64) as usize]);
            }
            let Ok(c) = canonicalize(&t) else { continue };
            let d = &c.decoded_path;
            assert!(d.starts_with('/'), "{t:?}");
            assert!(!d.contains("//"), "{t:?} → {d:?}");
            assert!(!d.contains('\\') && !d.contains('\0'), "{t:?} → {d:?}");
            assert!(!d.chars().any(char::is_control), "{t:?} → {d:?}");
            for seg in d.split('/') {
                assert!(seg != "." && seg != "..", "{t:?} → {d:?}");
            }
            // No escape survives decoding (a second decoder would find nothing to do).
            let b = d.as_bytes();
            for (i, &x) in b.iter().enumerate() {
                let pair = b.get(i + 1).is_some_and(u8::is_ascii_hexdigit)
                    && b.get(i + 2).is_some_and(u8::is_ascii_hexdigit);
                assert!(x != b'%' || !pair, "{t:?} → {d:?}");
            }
            assert_eq!(canonicalize(&c.target()), Ok(c.clone()), "{t:?}");
        }
    }

    #[test]
    fn reasons_are_unique_and_map_to_400() {
        let all = [
            PathError::NotAbsolute,
            PathError::TooLong,
            PathError::EmptySegment,
            PathError::DotSegment,
            PathError::EncodedSlash,
            PathError::EncodedBackslash,
            PathError::DoubleEncoding,
            PathError::Backslash,
            PathError::Nul,
            PathError::ControlChar,
            PathError::OverlongUtf8,
            PathError::InvalidUtf8,
            PathError::MalformedEscape,
            PathError::NonAscii,
            PathError::InvalidChar,
            PathError::PathParameter,
            PathError::UnsafeUnicode,
            PathError::QueryTooLong,
            PathError::QueryControlChar,
            PathError::QueryMalformedEscape,
            PathError::QueryInvalidChar,
        ];
        let mut seen = std::collections::BTreeSet::new();
        for e in all {
            assert!(seen.insert(e.reason()), "duplicate reason {}", e.reason());
            assert_eq!(e.status(), 400);
            assert!(!e.to_string().is_empty());
        }
        assert_eq!(
            PathError::DotSegment.error_code(),
            ErrorCode::NonCanonicalPath
        );
        assert_eq!(
            PathError::QueryControlChar.error_code(),
            ErrorCode::BadRequest
        );
    }

    #[test]
    fn the_url_standard_resolves_dot_segments_as_workerd_does() {
        let std = |t: &str| as_parsed_by_the_url_standard(t);
        assert_eq!(
            std("/api/v1/thumbnails/%2e%2e/app.db").as_deref(),
            Ok("/api/v1/app.db")
        );
        assert_eq!(
            std("/api/v1/a/.%2E/./b?x=1").as_deref(),
            Ok("/api/v1/b?x=1")
        );
        assert_eq!(std("/api/v1/../../../etc").as_deref(), Ok("/etc"));
        assert_eq!(std("/api\\v1\\events").as_deref(), Ok("/api/v1/events"));
        // What the standard leaves alone is still judged by `canonicalize`.
        assert_eq!(
            std("/api/v1/thumbnails/a%2f..%2fapp.db").as_deref(),
            Ok("/api/v1/thumbnails/a%2f..%2fapp.db")
        );
        assert_eq!(std("//evil.example/x").as_deref(), Ok("//evil.example/x"));
        assert_eq!(std("/a?b#frag").as_deref(), Ok("/a?b"));
        assert_eq!(std("/a b").as_deref(), Ok("/a%20b"));
        assert_eq!(std("*"), Err(PathError::NotAbsolute));
        assert_eq!(std("http://x/y"), Err(PathError::NotAbsolute));
        // Idempotent: what workerd already parsed parses to itself.
        for t in ["/api/v1/events?limit=2", "/api/v1/app.db", "/ws/stream/c1"] {
            assert_eq!(std(t).as_deref(), Ok(t));
        }
    }
}
