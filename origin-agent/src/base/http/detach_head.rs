//! Moves a request head out of hyper's connection read buffer into one small buffer of its own,
//! before hyper reads on.
//!
//! hyper parses a request head in place: the URI and every header value are slices of the
//! connection's 8 KiB read buffer. Right after handing the request to the service, and before the
//! service's future first runs, hyper reads on (to notice a client that goes away mid-request);
//! while any slice of the old buffer lives, that read needs a second 8 KiB buffer, kept until the
//! response is written. With many requests waiting for a backend slot, that second buffer was
//! most of a waiting request's memory. Copying the head (~1 KB: URI and values together) in the
//! service function, which hyper calls synchronously before it reads on, leaves hyper's buffer
//! unshared, so it reuses it instead.

use bytes::{Bytes, BytesMut};
use hyper::header::HeaderValue;
use hyper::http::request::Parts;
use hyper::http::uri::PathAndQuery;
use hyper::Uri;

/// Rewrites `parts`' URI and header values to share one new buffer instead of hyper's. Header
/// names are not slices (hyper copies them), and nor is anything else hyper puts in a request.
/// A value that cannot be re-made (never, for what hyper's parser accepts) is left shared.
pub fn detach(parts: &mut Parts) {
    let path = parts.uri.path_and_query().map_or("", PathAndQuery::as_str);
    let origin_form = parts.uri.scheme().is_none() && parts.uri.authority().is_none();
    let uri_len = if origin_form { path.len() } else { 0 };
    let total = uri_len + parts.headers.values().map(|v| v.len()).sum::<usize>();
    let mut buf = BytesMut::with_capacity(total);
    buf.extend_from_slice(&path.as_bytes()[..uri_len]);
    for v in parts.headers.values() {
        buf.extend_from_slice(v.as_bytes());
    }
    let buf: Bytes = buf.freeze();

    if origin_form {
        if let Ok(p) = PathAndQuery::from_maybe_shared(buf.slice(..uri_len)) {
            let mut uri = hyper::http::uri::Parts::default();
            uri.path_and_query = Some(p);
            if let Ok(u) = Uri::from_parts(uri) {
                parts.uri = u;
            }
        }
    } else if let Ok(u) = Uri::from_maybe_shared(parts.uri.to_string()) {
        // Absolute form (`GET http://host/path`): rare, so the simple copy.
        parts.uri = u;
    }
    let mut at = uri_len;
    for v in parts.headers.values_mut() {
        let end = at + v.len();
        if let Ok(mut copy) = HeaderValue::from_maybe_shared(buf.slice(at..end)) {
            copy.set_sensitive(v.is_sensitive());
            *v = copy;
        }
        at = end;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parts(uri: &str, headers: &[(&'static str, &str)]) -> (Parts, Bytes) {
        // Values sliced from one buffer, as hyper makes them.
        let joined: String = headers.iter().map(|(_, v)| *v).collect();
        let shared = Bytes::from(format!("{uri}{joined}"));
        let mut req = hyper::Request::builder()
            .uri(Uri::from_maybe_shared(shared.slice(..uri.len())).expect("uri"))
            .body(())
            .expect("request");
        let mut at = uri.len();
        for (name, v) in headers {
            let value =
                HeaderValue::from_maybe_shared(shared.slice(at..at + v.len())).expect("value");
            req.headers_mut()
                .append(hyper::header::HeaderName::from_static(name), value);
            at += v.len();
        }
        (req.into_parts().0, shared)
    }

    #[test]
    fn the_head_reads_the_same_and_no_longer_shares_the_buffer() {
        let (mut p, shared) = parts(
            "/api/v1/events?limit=1",
            &[("x-a", "1"), ("x-b", "two"), ("x-a", "three"), ("x-c", "")],
        );
        let mut sensitive = HeaderValue::from_static("secret");
        sensitive.set_sensitive(true);
        p.headers.append("authorization", sensitive);
        detach(&mut p);
        assert_eq!(p.uri, "/api/v1/events?limit=1");
        let got: Vec<_> = p
            .headers
            .iter()
            .map(|(n, v)| (n.as_str(), v.to_str().expect("ascii"), v.is_sensitive()))
            .collect();
        assert_eq!(
            got,
            [
                ("x-a", "1", false),
                ("x-a", "three", false),
                ("x-b", "two", false),
                ("x-c", "", false),
                ("authorization", "secret", true),
            ]
        );
        // Only this test's handle is left: the parts hold none of it.
        assert!(shared.is_unique());
    }

    #[test]
    fn an_absolute_uri_is_kept_whole() {
        let (mut p, shared) = parts("http://example.com:8080/a?b", &[("host", "example.com")]);
        detach(&mut p);
        assert_eq!(p.uri, "http://example.com:8080/a?b");
        assert_eq!(p.headers["host"], "example.com");
        assert!(shared.is_unique());
    }
}
