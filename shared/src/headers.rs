//! Every header argus-relay adds, reads or strips, in one place.
//!
//! Names are lower-case (HTTP/2 style); compare case-insensitively.

/// Request id, set by the first hop that sees the request and returned to the client.
pub const REQUEST_ID: &str = "x-request-id";

/// Edge → agent signature headers (see [`crate::signature`]).
pub const RELAY_SIGNATURE: &str = "x-relay-signature";
pub const RELAY_TIMESTAMP: &str = "x-relay-timestamp";
pub const RELAY_NONCE: &str = "x-relay-nonce";
pub const RELAY_DEVICE: &str = "x-relay-device";
pub const RELAY_BODY_DIGEST: &str = "x-relay-body-digest";
/// The client IP the edge saw, signed together with the rest (so the agent can trust it).
pub const RELAY_CLIENT_IP: &str = "x-relay-client-ip";
/// What the edge knows of the phone's link, on WebSocket upgrades (`rtt=<ms>; platform=<name>`,
/// [`crate::live_stream::EdgeLink`]): the live preview's start level. Signed with the rest.
pub const RELAY_LINK: &str = "x-relay-link";
/// Response header on image routes: what the edge did with the picture, e.g.
/// `transcoded; variant=mobile; format=webp; from=1920x1080; to=480x270` or `passthrough; reason=small`
/// (see [`crate::image::Passthrough::reason`]).
pub const RELAY_IMAGE: &str = "x-relay-image";
/// Response header on cacheable image routes: `hit` or `miss` (the edge cache).
pub const RELAY_CACHE: &str = "x-relay-cache";
/// Prefix of every relay-internal header; clients may never send any of them.
pub const RELAY_PREFIX: &str = "x-relay-";

pub const X_FORWARDED_FOR: &str = "x-forwarded-for";
pub const X_FORWARDED_PREFIX: &str = "x-forwarded-";
pub const FORWARDED: &str = "forwarded";
pub const X_REAL_IP: &str = "x-real-ip";

/// Whether a request's `Upgrade` value asks for a WebSocket: `websocket`, in any case (RFC 6455
/// §4.2.1). The `Connection: upgrade` token is implied by the client sending `Upgrade` at all;
/// both hops set their own on the request they send.
pub fn is_websocket_upgrade(upgrade: Option<&str>) -> bool {
    upgrade.is_some_and(|v| {
        v.trim_matches([' ', '\t'])
            .eq_ignore_ascii_case("websocket")
    })
}

/// Credentials the backend accepts and that must never come from a client:
/// ArgusAI looks up `X-API-Key`, then the `access_token` cookie (which beats Bearer), then Bearer.
pub const COOKIE: &str = "cookie";
pub const X_API_KEY: &str = "x-api-key";
pub const AUTHORIZATION: &str = "authorization";

/// Hop-by-hop headers (RFC 9110 §7.6.1) plus the de-facto ones. Never forwarded as received; a
/// hop that proxies a WebSocket upgrade sets its own `Upgrade: websocket` / `Connection: upgrade`
/// on the request it sends. Fields the client names in `Connection` are hop-by-hop too: see
/// [`ForwardedRequestHeaders`].
pub const HOP_BY_HOP: &[&str] = &[
    "connection",
    "keep-alive",
    "proxy-authenticate",
    "proxy-authorization",
    "proxy-connection",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
];

/// Cloudflare's own request headers: meaningful only at the edge, never trusted further in.
pub const CLOUDFLARE_PREFIX: &str = "cf-";

/// Other headers that claim a client address or rewrite the request for some framework or CDN
/// (`True-Client-IP`, `X-Original-URL`, method overrides…). The backend never needs them from a
/// client: the address it gets is the one `X-Forwarded-For` the agent sets, and the method and
/// path are the request's own (a method override could turn a viewer's GET into a DELETE).
pub const SPOOFABLE: &[&str] = &[
    "true-client-ip",
    "x-client-ip",
    "x-cluster-client-ip",
    "client-ip",
    "x-originating-ip",
    "x-remote-ip",
    "x-remote-addr",
    "x-host",
    "x-original-url",
    "x-rewrite-url",
    "x-http-method-override",
    "x-http-method",
    "x-method-override",
];

/// True for a request header a client sends that must not travel towards the backend.
///
/// `Authorization` is not in this list: the hop that consumes the device token removes it
/// explicitly (the agent replaces it with the backend's own credential).
pub fn is_stripped_request_header(name: &str) -> bool {
    // Lower-cased copy only when needed: the agent's names (`http::HeaderName`) are lower-case
    // already, and this runs for every header of every proxied request.
    let lowered;
    let name = if name.bytes().any(|b| b.is_ascii_uppercase()) {
        lowered = name.to_ascii_lowercase();
        lowered.as_str()
    } else {
        name
    };
    HOP_BY_HOP.contains(&name)
        || name == COOKIE
        || name == X_API_KEY
        || name == FORWARDED
        || name == X_REAL_IP
        || SPOOFABLE.contains(&name)
        || name.starts_with(X_FORWARDED_PREFIX)
        || name.starts_with(RELAY_PREFIX)
        || name.starts_with(CLOUDFLARE_PREFIX)
        || name == "mf-cf-blob"
}

/// Which of a client's request headers a hop (the edge, the agent) passes on towards the backend:
/// none that [`is_stripped_request_header`] names, and none that the client named in its
/// `Connection` header (RFC 9110 §7.6.1: a proxy removes every field listed there, whatever its
/// name, along with `Connection` itself).
///
/// ```
/// use argus_shared::headers::ForwardedRequestHeaders;
/// let forwarded = ForwardedRequestHeaders::new(["keep-alive, X-Debug-Token"]);
/// assert!(forwarded.allows("accept"));
/// assert!(!forwarded.allows("x-debug-token"));
/// assert!(!forwarded.allows("Connection"));
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ForwardedRequestHeaders {
    /// Lower-case field names listed in `Connection`.
    named_in_connection: Vec<String>,
}

impl ForwardedRequestHeaders {
    /// From every value of the request's `Connection` header (a comma-separated list of field
    /// names; repeated headers are one list).
    pub fn new<'a>(connection: impl IntoIterator<Item = &'a str>) -> Self {
        let mut named_in_connection: Vec<String> = connection
            .into_iter()
            .flat_map(|v| v.split(','))
            .map(|name| name.trim().to_ascii_lowercase())
            .filter(|name| !name.is_empty())
            .collect();
        named_in_connection.sort_unstable();
        named_in_connection.dedup();
        ForwardedRequestHeaders {
            named_in_connection,
        }
    }

    /// True when a request header called `name` travels on.
    pub fn allows(&self, name: &str) -> bool {
        !is_stripped_request_header(name)
            && !self
                .named_in_connection
                .iter()
                .any(|n| n.eq_ignore_ascii_case(name))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_websocket_upgrade_is_upgrade_websocket_in_any_case() {
        for v in ["websocket", "WebSocket", "WEBSOCKET", " websocket\t"] {
            assert!(is_websocket_upgrade(Some(v)), "{v:?}");
        }
        for v in ["", "h2c", "websocket2", "web socket", "websocket, h2c"] {
            assert!(!is_websocket_upgrade(Some(v)), "{v:?}");
        }
        assert!(!is_websocket_upgrade(None));
    }

    #[test]
    fn strips_credentials_forwarding_and_hop_by_hop() {
        for h in [
            "Cookie",
            "X-API-Key",
            "x-forwarded-for",
            "X-Forwarded-Host",
            "Forwarded",
            "X-Real-IP",
            "X-Relay-Signature",
            "x-relay-anything",
            "Connection",
            "Transfer-Encoding",
            "CF-Connecting-IP",
            "MF-CF-Blob",
            "True-Client-IP",
            "X-Client-IP",
            "X-Original-URL",
            "X-HTTP-Method-Override",
        ] {
            assert!(is_stripped_request_header(h), "{h} must be stripped");
        }
    }

    #[test]
    fn fields_named_in_connection_are_not_forwarded() {
        let f = ForwardedRequestHeaders::new(["Keep-Alive, X-Internal-Secret", " te ,,Range"]);
        for h in [
            "x-internal-secret",
            "X-Internal-Secret",
            "range",
            "keep-alive",
            "TE",
        ] {
            assert!(!f.allows(h), "{h} was named in Connection");
        }
        for h in ["accept", "if-none-match", "authorization"] {
            assert!(f.allows(h), "{h} was not named");
        }
        // Connection itself and the other hop-by-hop fields go whatever it says.
        let none = ForwardedRequestHeaders::new([]);
        for h in [
            "connection",
            "proxy-connection",
            "upgrade",
            "transfer-encoding",
            "te",
        ] {
            assert!(!none.allows(h), "{h}");
        }
        assert!(none.allows("x-internal-secret"));
        assert_eq!(ForwardedRequestHeaders::new([""]), none);
    }

    #[test]
    fn keeps_ordinary_headers() {
        for h in [
            "accept",
            "content-type",
            "range",
            "if-none-match",
            "user-agent",
            "authorization",
        ] {
            assert!(!is_stripped_request_header(h), "{h} must pass");
        }
    }
}
