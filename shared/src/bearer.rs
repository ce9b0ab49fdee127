//! The `Authorization: Bearer <token>` credential (RFC 6750 §2.1) both sides read, and the
//! `WWW-Authenticate` challenge (RFC 6750 §3) both sides answer a refused one with.
//!
//! One parser, so the edge and the agent accept exactly the same header: a token the Worker
//! let through is never one the agent reads differently, and the other way round.

use crate::api::ErrorCode;

/// The token of an `Authorization` value `Bearer <token>`, or `None`.
///
/// Strict, as RFC 6750 §2.1 writes it (`"Bearer" 1*SP b64token`):
/// - the scheme is `Bearer` in any case, followed by one or more spaces;
/// - the token is one or more of `A-Z a-z 0-9 - . _ ~ + /`, then any `=` padding: a JWT, the
///   admin token (hex) and any base64 token fit; a space, tab, comma or quote inside means the
///   value is not one bearer token (two tokens, or another scheme's parameters), refused;
/// - white space around the whole value (spaces, tabs) is not part of it (RFC 9110 §5.5).
pub fn parse(value: &str) -> Option<&str> {
    let value = value.trim_matches([' ', '\t']);
    let (scheme, rest) = value.split_at_checked(SCHEME.len())?;
    if !scheme.eq_ignore_ascii_case(SCHEME) || !rest.starts_with(' ') {
        return None;
    }
    let token = rest.trim_start_matches(' ');
    is_b64token(token).then_some(token)
}

const SCHEME: &str = "Bearer";

/// `b64token = 1*( ALPHA / DIGIT / "-" / "." / "_" / "~" / "+" / "/" ) *"="` (RFC 6750 §2.1).
fn is_b64token(s: &str) -> bool {
    let body = s.trim_end_matches('=');
    !body.is_empty()
        && body.bytes().all(|b| {
            b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~' | b'+' | b'/')
        })
}

/// The `WWW-Authenticate` value an error with this code is answered with, if any: the bare
/// challenge when no credential came, `error="invalid_token"` or `error="insufficient_scope"`
/// when one did (RFC 6750 §3.1). Other codes carry no challenge.
pub const fn www_authenticate(code: ErrorCode) -> Option<&'static str> {
    match code {
        ErrorCode::Unauthenticated => Some(r#"Bearer realm="argus-relay""#),
        ErrorCode::InvalidToken => Some(r#"Bearer realm="argus-relay", error="invalid_token""#),
        ErrorCode::InsufficientScope => {
            Some(r#"Bearer realm="argus-relay", error="insufficient_scope""#)
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn takes_the_token_of_a_bearer_credential() {
        let jwt = "eyJhbGciOiJFZERTQSJ9.eyJzdWIiOiJkZXYifQ.c2ln-_";
        assert_eq!(parse(&format!("Bearer {jwt}")), Some(jwt));
        assert_eq!(parse("bearer abc"), Some("abc"));
        assert_eq!(parse("BEARER abc"), Some("abc"));
        assert_eq!(parse("Bearer 0123abcdef"), Some("0123abcdef"));
        assert_eq!(parse("Bearer a+b/c=="), Some("a+b/c=="));
        assert_eq!(parse("Bearer a~b"), Some("a~b"));
    }

    #[test]
    fn white_space_around_the_token_is_not_part_of_it() {
        // The old edge parser trimmed after its emptiness check, the agent's before; both
        // directions now answer alike.
        assert_eq!(parse("Bearer  abc"), Some("abc"));
        assert_eq!(parse("Bearer abc "), Some("abc"));
        assert_eq!(parse("Bearer abc\t"), Some("abc"));
        assert_eq!(parse(" Bearer abc"), Some("abc"));
    }

    #[test]
    fn refuses_anything_that_is_not_one_bearer_token() {
        for value in [
            "",
            "Bearer",
            "Bearer ",
            "Bearer  ",
            "Bearer \t",
            "Bearer\tabc",
            "Bearerabc",
            "Bearer: abc",
            "Basic YWxhZGRpbjpvcGVuc2VzYW1l",
            "Bearer abc def",
            "Bearer abc\tdef",
            "Bearer abc,def",
            "Bearer \"abc\"",
            "Bearer =",
            "Bearer ==abc",
            "Bearer abc=d",
            "Bearer a\u{e9}b",
            "B\u{e9}arer abc",
            "Bearer realm=\"x\"",
        ] {
            assert_eq!(parse(value), None, "{value:?}");
        }
    }

    #[test]
    fn challenges_follow_the_error_code() {
        assert_eq!(
            www_authenticate(ErrorCode::Unauthenticated),
            Some(r#"Bearer realm="argus-relay""#)
        );
        assert_eq!(
            www_authenticate(ErrorCode::InvalidToken),
            Some(r#"Bearer realm="argus-relay", error="invalid_token""#)
        );
        assert_eq!(
            www_authenticate(ErrorCode::InsufficientScope),
            Some(r#"Bearer realm="argus-relay", error="insufficient_scope""#)
        );
        for code in [
            ErrorCode::Forbidden,
            ErrorCode::InvalidSignature,
            ErrorCode::RateLimited,
            ErrorCode::Internal,
        ] {
            assert_eq!(www_authenticate(code), None, "{code:?}");
        }
    }
}
