//! Cross-site request forgery and cookie-replay defences for requests that carry the admin
//! page's session cookie.
//!
//! The cookie is `SameSite=Strict`, but "site" ignores ports: a page served by any other local
//! service (`http://127.0.0.1:8000`, ArgusAI itself, a dev server) is *same-site* with the admin
//! listener and its requests would carry the cookie — and such a service receives the cookie
//! itself, and can replay it with any `Host` and `Origin`. So every request must also:
//!
//! 1. carry the session's key (a synchronizer token) in `X-CSRF-Token`, compared in constant
//!    time: reads too, since a replayed cookie must not even read. No other origin can have it:
//!    it is handed over once, in the answer to the one-time sign-in link, and kept in the page
//!    origin's `sessionStorage` ([`super`]);
//! 2. for state-changing requests, come from the page's own origin: `Origin` equal to
//!    `http://<Host>` (`https://<Host>` on the LAN listener; browsers send `Origin` on every
//!    non-GET `fetch`); without `Origin`, `Sec-Fetch-Site: same-origin`; with neither, refused.
//!
//! Requests with the cookie must not be cross-origin either when the browser says where they
//! come from (`Sec-Fetch-Site`), so no other local page can even make the agent do the work.

use hyper::header::HeaderMap;
use hyper::Method;
use subtle::ConstantTimeEq;

/// The header the page's script puts its CSRF token in.
pub const CSRF_HEADER: &str = "x-csrf-token";

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum CsrfError {
    #[error("the request came from another origin")]
    CrossOrigin,
    #[error("the request says neither Origin nor Sec-Fetch-Site")]
    NoOrigin,
    #[error("the CSRF token is missing")]
    MissingToken,
    #[error("the CSRF token is wrong")]
    BadToken,
}

impl CsrfError {
    /// The machine-readable `reason` of the 403 answer.
    pub fn reason(self) -> &'static str {
        match self {
            CsrfError::CrossOrigin => "admin_ui.cross_origin",
            CsrfError::NoOrigin => "admin_ui.origin_missing",
            CsrfError::MissingToken => "admin_ui.csrf_missing",
            CsrfError::BadToken => "admin_ui.csrf_invalid",
        }
    }
}

/// GET and HEAD change nothing; everything else needs the full check.
pub fn is_safe(method: &Method) -> bool {
    matches!(*method, Method::GET | Method::HEAD)
}

fn header<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
}

/// `Sec-Fetch-Site`, when the browser sends it, must be `same-origin`; `none` (the owner typed
/// or pasted the URL, or opened it from another program) is allowed for page navigations only.
pub fn check_fetch_site(headers: &HeaderMap, navigation: bool) -> Result<(), CsrfError> {
    match header(headers, "sec-fetch-site") {
        None => Ok(()),
        Some(v) if v.eq_ignore_ascii_case("same-origin") => Ok(()),
        Some(v) if navigation && v.eq_ignore_ascii_case("none") => Ok(()),
        Some(_) => Err(CsrfError::CrossOrigin),
    }
}

/// The request's `Origin` is the listener itself (`scheme://` + the `Host` it was sent to),
/// or, without `Origin`, the browser says it is same-origin.
pub fn check_origin(headers: &HeaderMap, scheme: &str, host: &str) -> Result<(), CsrfError> {
    match header(headers, "origin") {
        Some(origin) => {
            let ours = origin
                .strip_prefix(scheme)
                .and_then(|rest| rest.strip_prefix("://"))
                .is_some_and(|h| !host.is_empty() && h.eq_ignore_ascii_case(host));
            if ours {
                Ok(())
            } else {
                Err(CsrfError::CrossOrigin)
            }
        }
        None => match header(headers, "sec-fetch-site") {
            Some(v) if v.eq_ignore_ascii_case("same-origin") => Ok(()),
            Some(_) => Err(CsrfError::CrossOrigin),
            None => Err(CsrfError::NoOrigin),
        },
    }
}

/// `X-CSRF-Token` equals the session's token (constant time).
pub fn check_token(headers: &HeaderMap, expected: &str) -> Result<(), CsrfError> {
    let given = header(headers, CSRF_HEADER).ok_or(CsrfError::MissingToken)?;
    if given.is_empty() {
        return Err(CsrfError::MissingToken);
    }
    if expected.is_empty() || !bool::from(given.as_bytes().ct_eq(expected.as_bytes())) {
        return Err(CsrfError::BadToken);
    }
    Ok(())
}

#[cfg(test)]
/// Everything a request with the session cookie must pass: same-origin and the token always,
/// and for state-changing methods the origin check as well.
pub fn check(
    method: &Method,
    headers: &HeaderMap,
    host: &str,
    expected_token: &str,
) -> Result<(), CsrfError> {
    check_served(method, headers, "http", host, expected_token)
}

/// `check` for a page served over `scheme` (`https` on the LAN listener).
pub fn check_served(
    method: &Method,
    headers: &HeaderMap,
    scheme: &str,
    host: &str,
    expected_token: &str,
) -> Result<(), CsrfError> {
    check_fetch_site(headers, false)?;
    check_token(headers, expected_token)?;
    if is_safe(method) {
        return Ok(());
    }
    check_origin(headers, scheme, host)
}

#[cfg(test)]
mod tests {
    use super::*;
    use hyper::header::HeaderValue;

    const HOST: &str = "127.0.0.1:8471";
    const TOKEN: &str = "tok_abcdefghijklmnopqrstuvwxyz0123456789ABCD";

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(*k, HeaderValue::from_str(v).unwrap());
        }
        h
    }

    #[test]
    fn a_same_origin_post_with_the_token_passes() {
        let h = headers(&[
            ("origin", "http://127.0.0.1:8471"),
            ("sec-fetch-site", "same-origin"),
            (CSRF_HEADER, TOKEN),
        ]);
        assert_eq!(check(&Method::POST, &h, HOST, TOKEN), Ok(()));
        // Host names compare without case.
        let h = headers(&[("origin", "http://LOCALHOST:8471"), (CSRF_HEADER, TOKEN)]);
        assert_eq!(check(&Method::DELETE, &h, "localhost:8471", TOKEN), Ok(()));
        // No Origin, but the browser says same-origin.
        let h = headers(&[("sec-fetch-site", "same-origin"), (CSRF_HEADER, TOKEN)]);
        assert_eq!(check(&Method::PUT, &h, HOST, TOKEN), Ok(()));
    }

    #[test]
    fn the_token_is_required_and_must_match() {
        let origin = ("origin", "http://127.0.0.1:8471");
        assert_eq!(
            check(&Method::POST, &headers(&[origin]), HOST, TOKEN),
            Err(CsrfError::MissingToken)
        );
        assert_eq!(
            check(
                &Method::POST,
                &headers(&[origin, (CSRF_HEADER, "")]),
                HOST,
                TOKEN
            ),
            Err(CsrfError::MissingToken)
        );
        let wrong = format!("{}x", &TOKEN[..TOKEN.len() - 1]);
        assert_eq!(
            check(
                &Method::POST,
                &headers(&[origin, (CSRF_HEADER, &wrong)]),
                HOST,
                TOKEN
            ),
            Err(CsrfError::BadToken)
        );
        assert_eq!(
            check(
                &Method::POST,
                &headers(&[origin, (CSRF_HEADER, TOKEN)]),
                HOST,
                ""
            ),
            Err(CsrfError::BadToken)
        );
    }

    #[test]
    fn other_origins_are_refused_even_with_the_token() {
        for origin in [
            "http://127.0.0.1:8000", // another local service: same site, other origin
            "http://evil.example",
            "https://127.0.0.1:8471", // other scheme
            "null",
            "http://127.0.0.1:8471.evil.example",
        ] {
            let h = headers(&[("origin", origin), (CSRF_HEADER, TOKEN)]);
            assert_eq!(
                check(&Method::POST, &h, HOST, TOKEN),
                Err(CsrfError::CrossOrigin),
                "{origin}"
            );
        }
        for site in ["cross-site", "same-site", "none"] {
            let h = headers(&[
                ("origin", "http://127.0.0.1:8471"),
                ("sec-fetch-site", site),
                (CSRF_HEADER, TOKEN),
            ]);
            assert_eq!(
                check(&Method::POST, &h, HOST, TOKEN),
                Err(CsrfError::CrossOrigin),
                "{site}"
            );
        }
    }

    #[test]
    fn without_origin_or_fetch_metadata_a_write_is_refused() {
        let h = headers(&[(CSRF_HEADER, TOKEN)]);
        assert_eq!(
            check(&Method::POST, &h, HOST, TOKEN),
            Err(CsrfError::NoOrigin)
        );
    }

    #[test]
    fn reads_need_the_token_and_must_not_be_cross_origin() {
        // A replayed cookie alone reads nothing, whatever it says about itself.
        assert_eq!(
            check(&Method::GET, &HeaderMap::new(), HOST, TOKEN),
            Err(CsrfError::MissingToken)
        );
        let h = headers(&[
            ("sec-fetch-site", "same-origin"),
            ("origin", "http://127.0.0.1:8471"),
        ]);
        assert_eq!(
            check(&Method::GET, &h, HOST, TOKEN),
            Err(CsrfError::MissingToken)
        );
        let h = headers(&[(CSRF_HEADER, "x".repeat(43).as_str())]);
        assert_eq!(
            check(&Method::GET, &h, HOST, TOKEN),
            Err(CsrfError::BadToken)
        );
        assert_eq!(
            check(&Method::GET, &headers(&[(CSRF_HEADER, TOKEN)]), HOST, TOKEN),
            Ok(())
        );
        let h = headers(&[("sec-fetch-site", "same-origin"), (CSRF_HEADER, TOKEN)]);
        assert_eq!(check(&Method::GET, &h, HOST, TOKEN), Ok(()));
        for site in ["cross-site", "same-site", "none"] {
            let h = headers(&[("sec-fetch-site", site), (CSRF_HEADER, TOKEN)]);
            assert_eq!(
                check(&Method::GET, &h, HOST, TOKEN),
                Err(CsrfError::CrossOrigin),
                "{site}"
            );
        }
    }

    #[test]
    fn navigations_may_start_outside_the_browser() {
        let h = headers(&[("sec-fetch-site", "none")]);
        assert_eq!(check_fetch_site(&h, true), Ok(()));
        assert_eq!(check_fetch_site(&h, false), Err(CsrfError::CrossOrigin));
        let h = headers(&[("sec-fetch-site", "cross-site")]);
        assert_eq!(check_fetch_site(&h, true), Err(CsrfError::CrossOrigin));
    }

    #[test]
    fn over_https_the_origin_must_be_https() {
        let ok = [
            ("origin", "https://192.168.1.10:8443"),
            ("x-csrf-token", TOKEN),
        ];
        let host = "192.168.1.10:8443";
        assert_eq!(
            check_served(&Method::POST, &headers(&ok), "https", host, TOKEN),
            Ok(())
        );
        let plain = [
            ("origin", "http://192.168.1.10:8443"),
            ("x-csrf-token", TOKEN),
        ];
        assert_eq!(
            check_served(&Method::POST, &headers(&plain), "https", host, TOKEN),
            Err(CsrfError::CrossOrigin)
        );
        assert_eq!(
            check(&Method::POST, &headers(&ok), host, TOKEN),
            Err(CsrfError::CrossOrigin)
        );
    }
}
