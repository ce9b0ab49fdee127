//! Request ids: 16 random bytes, hex. Set at the edge, forwarded to the agent, returned to the client.

pub fn new() -> String {
    let mut bytes = [0u8; 16];
    // The Web Crypto source cannot fail in workerd; fall back to a fixed marker rather than panic.
    if getrandom::getrandom(&mut bytes).is_err() {
        return String::from("00000000000000000000000000000000");
    }
    hex::encode(bytes)
}

/// A nonce for request signing: 24 random bytes as 48 hex characters.
pub fn nonce() -> Result<String, getrandom::Error> {
    let mut bytes = [0u8; 24];
    getrandom::getrandom(&mut bytes)?;
    Ok(hex::encode(bytes))
}
