//! The pairing link in the owner's QR code: `argusai://pair?code=…&url=…&fp=sha256:…`
//! (made by the agent's `identity::pair_uri`).

use reqwest::Url;

use super::pin::Pin;
use super::ClientError;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PairUri {
    /// The one-time code, as shown (normalised by the server).
    pub code: String,
    /// The relay's public URL.
    pub url: String,
    /// The LAN certificate the phone will pin.
    pub fingerprint: Pin,
    /// `okp`: the agent's Oblivious HTTP key pin (sealed mode), when the link carries one.
    pub ohttp_keys_sha256: Option<String>,
}

/// Longest accepted link (a QR code holds a few hundred bytes; anything longer is not ours).
const MAX_URI_BYTES: usize = 2048;

impl PairUri {
    pub fn parse(text: &str) -> Result<PairUri, ClientError> {
        let bad = |why: &str| ClientError::BadPairUri(why.to_owned());
        let text = text.trim();
        if text.len() > MAX_URI_BYTES {
            return Err(bad("too long"));
        }
        let url = Url::parse(text).map_err(|e| bad(&e.to_string()))?;
        if url.scheme() != "argusai" || url.host_str() != Some("pair") {
            return Err(bad("expected argusai://pair?…"));
        }
        let (mut code, mut relay, mut fp, mut okp) = (None, None, None, None);
        for (k, v) in url.query_pairs() {
            let slot = match k.as_ref() {
                "code" => &mut code,
                "url" => &mut relay,
                "fp" => &mut fp,
                "okp" => &mut okp,
                _ => continue,
            };
            if slot.replace(v.into_owned()).is_some() {
                return Err(bad(&format!("{k} is given twice")));
            }
        }
        let code = code
            .filter(|c| !c.is_empty())
            .ok_or_else(|| bad("no code"))?;
        if code.len() > 32 || !code.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-') {
            return Err(bad("the code is not a pairing code"));
        }
        let relay = relay.ok_or_else(|| bad("no url"))?;
        check_relay_url(&relay)?;
        let fingerprint = Pin::parse(&fp.ok_or_else(|| bad("no fp"))?)?;
        if okp
            .as_deref()
            .is_some_and(|p| !argus_shared::sealed::is_pin(p))
        {
            return Err(bad("okp is not a key pin (64 lower-case hex digits)"));
        }
        Ok(PairUri {
            code,
            url: relay.trim_end_matches('/').to_owned(),
            fingerprint,
            ohttp_keys_sha256: okp,
        })
    }
}

/// A relay URL the client will send tokens to: `https://…`, or `http://` to a loopback host
/// only (a relay under development). No user info, no query, no fragment.
pub fn check_relay_url(url: &str) -> Result<(), ClientError> {
    let bad = |reason| ClientError::BadRelayUrl {
        url: url.to_owned(),
        reason,
    };
    let parsed = Url::parse(url).map_err(|_| bad("not a URL"))?;
    if !parsed.username().is_empty() || parsed.password().is_some() {
        return Err(bad("must not carry credentials"));
    }
    if parsed.query().is_some() || parsed.fragment().is_some() {
        return Err(bad("must not have a query or fragment"));
    }
    match parsed.scheme() {
        "https" if parsed.host_str().is_some() => Ok(()),
        "http" => {
            let host = parsed.host_str().unwrap_or("");
            let host = host.trim_start_matches('[').trim_end_matches(']');
            let loopback = host.eq_ignore_ascii_case("localhost")
                || host
                    .parse::<std::net::IpAddr>()
                    .is_ok_and(|ip| ip.is_loopback());
            if loopback {
                Ok(())
            } else {
                Err(bad("plain http is allowed to a loopback address only"))
            }
        }
        _ => Err(bad("must be https://")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const FP: &str = "sha256:00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff";

    #[test]
    fn parses_what_the_agent_makes() {
        let uri = format!("argusai://pair?code=K7QRTA&url=https://relay.example.com/&fp={FP}");
        let p = PairUri::parse(&uri).unwrap();
        assert_eq!(p.code, "K7QRTA");
        assert_eq!(p.url, "https://relay.example.com");
        assert_eq!(p.fingerprint.to_string(), FP);
        assert_eq!(p.ohttp_keys_sha256, None);
    }

    #[test]
    fn the_oblivious_http_key_pin_rides_in_okp() {
        let pin = "0f".repeat(32);
        let uri =
            format!("argusai://pair?code=K7QRTA&url=https://relay.example.com&fp={FP}&okp={pin}");
        assert_eq!(
            PairUri::parse(&uri).unwrap().ohttp_keys_sha256,
            Some(pin.clone())
        );
        for bad in ["0F".repeat(32), "0f".repeat(31), "zz".repeat(32)] {
            let uri = format!(
                "argusai://pair?code=K7QRTA&url=https://relay.example.com&fp={FP}&okp={bad}"
            );
            assert!(PairUri::parse(&uri).is_err(), "{bad}");
        }
    }

    #[test]
    fn refuses_what_is_not_a_pairing_link() {
        for bad in [
            "https://pair?code=A&url=https://r&fp=x",
            "argusai://other?code=A&url=https://r",
            &format!("argusai://pair?url=https://r&fp={FP}"),
            &format!("argusai://pair?code=A&fp={FP}"),
            "argusai://pair?code=A&url=https://r",
            "argusai://pair?code=A&url=https://r&fp=sha256:abcd",
            &format!("argusai://pair?code=A&code=B&url=https://r&fp={FP}"),
            &format!("argusai://pair?code=A%20B&url=https://r&fp={FP}"),
            &format!("argusai://pair?code=A&url=http://relay.example.com&fp={FP}"),
            &format!("argusai://pair?code=A&url=ftp://r&fp={FP}"),
            &format!("argusai://pair?code=A&url=https://u:p@r&fp={FP}"),
        ] {
            assert!(PairUri::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn plain_http_relays_are_for_loopback_only() {
        assert!(check_relay_url("http://127.0.0.1:8787").is_ok());
        assert!(check_relay_url("http://localhost:8787").is_ok());
        assert!(check_relay_url("http://[::1]:8787").is_ok());
        assert!(check_relay_url("http://192.168.1.2:8787").is_err());
        assert!(check_relay_url("https://relay.example.com").is_ok());
    }
}
