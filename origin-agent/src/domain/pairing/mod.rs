//! Pairing a phone: one-time codes ([`codes`]), per-client failure windows ([`limiter`]), the
//! tokens a paired device receives ([`tokens`]) and the URI a pairing QR code carries
//! ([`pair_uri`]). The durable state is in [`crate::domain::store`]; the HTTP routes are
//! [`crate::application::handlers::phone`] and [`crate::application::handlers::pairing_codes`].

pub(crate) mod codes;
pub(crate) mod limiter;
pub(crate) mod tokens;

/// `argusai://pair?code=…&url=…&fp=…`. Values are percent-encoded except `:` and `/`, which a
/// query may carry as they are (RFC 3986 §3.4), so the URI stays readable.
pub fn pair_uri(code: &str, public_url: &str, fingerprint: &str) -> String {
    fn enc(s: &str) -> String {
        s.bytes()
            .map(|b| {
                if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~' | b':' | b'/')
                {
                    char::from(b).to_string()
                } else {
                    format!("%{b:02X}")
                }
            })
            .collect()
    }
    format!(
        "argusai://pair?code={}&url={}&fp={}",
        enc(code),
        enc(public_url),
        enc(fingerprint)
    )
}
