//! Device tokens on WebSocket upgrades for clients that cannot set `Authorization` (browsers'
//! `new WebSocket(url, protocols)`): the token travels as one entry of `Sec-WebSocket-Protocol`.
//!
//! ```text
//! Sec-WebSocket-Protocol: argus-relay, argus-relay.bearer.<access token>
//! ```
//!
//! A JWT is `[A-Za-z0-9_-.]`, all valid in a subprotocol token (RFC 6455 §4.1, RFC 7230 `token`).
//! The client must also offer [`PROTOCOL`], which the relay selects in its `101` answer, since
//! browsers fail a handshake that offered protocols and got none back. The token entry is removed
//! from every request before it goes on, upgrade or not: on an upgrade the hop that checks the
//! token moves it to `Authorization` (edge → agent), and the backend never sees it.

/// The subprotocol the relay selects.
pub const PROTOCOL: &str = "argus-relay";
/// Prefix of the protocol entry carrying the access token.
pub const TOKEN_PREFIX: &str = "argus-relay.bearer.";
pub const HEADER: &str = "sec-websocket-protocol";

fn entries(header: &str) -> impl Iterator<Item = &str> {
    header.split(',').map(str::trim).filter(|e| !e.is_empty())
}

/// The access token offered in a `Sec-WebSocket-Protocol` value, if exactly one entry carries one.
pub fn token_from_protocols(header: &str) -> Option<&str> {
    let mut tokens = entries(header).filter_map(|e| e.strip_prefix(TOKEN_PREFIX));
    let token = tokens.next().filter(|t| !t.is_empty())?;
    // Two tokens is ambiguous: refuse rather than pick one.
    tokens.next().is_none().then_some(token)
}

/// The header value without token entries (`None` when nothing is left).
pub fn protocols_without_token(header: &str) -> Option<String> {
    let rest: Vec<&str> = entries(header)
        .filter(|e| !e.starts_with(TOKEN_PREFIX))
        .collect();
    (!rest.is_empty()).then(|| rest.join(", "))
}

/// The header value the backend gets: without token entries and without [`PROTOCOL`] (the relay
/// answers for that one itself).
pub fn protocols_for_backend(header: &str) -> Option<String> {
    let rest: Vec<&str> = entries(header)
        .filter(|e| !e.starts_with(TOKEN_PREFIX) && *e != PROTOCOL)
        .collect();
    (!rest.is_empty()).then(|| rest.join(", "))
}

/// Whether the client offered [`PROTOCOL`].
pub fn offers_relay_protocol(header: &str) -> bool {
    entries(header).any(|e| e == PROTOCOL)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_token_entry_is_found_and_removed() {
        let h = "argus-relay, argus-relay.bearer.aaa.bbb.ccc, chat";
        assert_eq!(token_from_protocols(h), Some("aaa.bbb.ccc"));
        assert_eq!(
            protocols_without_token(h).as_deref(),
            Some("argus-relay, chat")
        );
        assert_eq!(protocols_for_backend(h).as_deref(), Some("chat"));
        assert!(offers_relay_protocol(h));
    }

    #[test]
    fn no_token_empty_token_or_two_tokens_is_none() {
        assert_eq!(token_from_protocols("argus-relay"), None);
        assert_eq!(token_from_protocols("argus-relay.bearer."), None);
        assert_eq!(
            token_from_protocols("argus-relay.bearer.a, argus-relay.bearer.b"),
            None
        );
        assert_eq!(protocols_without_token("argus-relay.bearer.a"), None);
        assert_eq!(
            protocols_for_backend("argus-relay, argus-relay.bearer.a"),
            None
        );
        assert!(!offers_relay_protocol("argus-relayx, chat"));
    }
}
