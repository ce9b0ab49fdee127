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
    /// `true`: `api_port` speaks TLS.
    pub const SSL: &str = "ssl";
    /// `sha256:<hex>` of the LAN certificate.
    pub const FINGERPRINT: &str = "fingerprint";
    /// The plain HTTP port, only when the owner turned it on.
    pub const HTTP_PORT: &str = "http_port";
}
