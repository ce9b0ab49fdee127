//! What the agent advertises on the LAN over mDNS/Bonjour and what a phone browses for: the
//! service type, the port, and the TXT record's keys. The advertisement is a hint, never a
//! proof: a phone decides "this is my server" by the pinned certificate and
//! `/api/v1/health`'s identity.

/// The service type the agent advertises and phones browse for (`<instance>.` + this is an
/// instance's full name).
pub const SERVICE_TYPE: &str = "_argusai._tcp.local.";

/// The mDNS port (RFC 6762).
pub const PORT: u16 = 5353;

/// TXT record keys (RFC 6763 §6).
pub mod txt {
    /// The agent's version.
    pub const VERSION: &str = "version";
    /// The HTTPS (pinned) port.
    pub const API_PORT: &str = "api_port";
    /// [`SSL_ON`]: `api_port` speaks TLS.
    pub const SSL: &str = "ssl";
    /// The value of [`SSL`] the agent writes (readers also accept `1`, any case of `true`).
    pub const SSL_ON: &str = "true";
    /// `sha256:<hex>` of the LAN certificate.
    pub const FINGERPRINT: &str = "fingerprint";
    /// The plain HTTP port, only when the owner turned it on.
    pub const HTTP_PORT: &str = "http_port";
}

/// The HTTPS port a TXT record offers: `api_port` when `ssl` is on, `None` if it offers none
/// (no or bad `api_port`, port 0, or `ssl` missing or off). Both values as read from the record.
pub fn https_port(ssl: Option<&str>, api_port: Option<&str>) -> Option<u16> {
    let ssl = ssl.is_some_and(|v| v.eq_ignore_ascii_case(txt::SSL_ON) || v == "1");
    api_port
        .and_then(|p| p.parse::<u16>().ok())
        .filter(|p| ssl && *p != 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_https_port_is_api_port_when_ssl_is_on() {
        assert_eq!(https_port(Some(txt::SSL_ON), Some("8443")), Some(8443));
        assert_eq!(https_port(Some("TRUE"), Some("8443")), Some(8443));
        assert_eq!(https_port(Some("1"), Some("443")), Some(443));
    }

    #[test]
    fn no_https_port_without_ssl_or_a_usable_port() {
        for (ssl, port) in [
            (None, Some("8443")),
            (Some("false"), Some("8443")),
            (Some("yes"), Some("8443")),
            (Some(""), Some("8443")),
            (Some("true"), None),
            (Some("true"), Some("0")),
            (Some("true"), Some("65536")),
            (Some("true"), Some("-1")),
            (Some("true"), Some(" 8443")),
            (Some("true"), Some("84a3")),
        ] {
            assert_eq!(https_port(ssl, port), None, "ssl={ssl:?} api_port={port:?}");
        }
    }
}
