//! Deciding one request: the facts known about it, the order of the rules, the answer.

use super::path_rules::method_bit;
use super::values::{TlsVersion, Version};
use super::{CountryRule, DenyReason, Policy};

/// What is known about a request when the policy is evaluated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RequestFacts<'a> {
    /// `GET`, `POST`, … (upper-case).
    pub method: &'a str,
    /// The canonical decoded path ([`crate::path::CanonicalTarget::decoded_path`]).
    pub decoded_path: &'a str,
    /// ISO 3166-1 alpha-2, `"T1"` for Tor, `"XX"` unknown (`request.cf.country`). `None` = `"XX"`.
    pub country: Option<&'a str>,
    /// `request.cf.asn`.
    pub asn: Option<u32>,
    /// `request.cf.tlsVersion`, e.g. `"TLSv1.3"`.
    pub tls_version: Option<&'a str>,
    /// From the verified device token; `None` when the route needs no token.
    pub device: Option<DeviceFacts<'a>>,
}

/// What the device token (and the app's headers) say about the device.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DeviceFacts<'a> {
    /// `"ios"`, `"android"`, … (compared case-insensitively).
    pub platform: &'a str,
    pub app_version: Option<&'a str>,
    pub os_version: Option<&'a str>,
    /// Viewer scope: only GET and HEAD.
    pub scope_read_only: bool,
}

/// The policy's answer: allow, or deny with the first failing rule's reason (403).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    Allow,
    Deny(DenyReason),
}

impl Decision {
    pub fn is_allow(&self) -> bool {
        matches!(self, Decision::Allow)
    }
}

impl Policy {
    /// Decides a request. See the module docs for the order and for missing facts.
    pub fn evaluate(&self, facts: &RequestFacts<'_>) -> Decision {
        match self.check(facts) {
            Ok(()) => Decision::Allow,
            Err(reason) => Decision::Deny(reason),
        }
    }

    fn check(&self, f: &RequestFacts<'_>) -> Result<(), DenyReason> {
        if let Some(min) = self.min_tls {
            match f.tls_version.and_then(TlsVersion::from_reported) {
                None => return Err(DenyReason::TlsVersionUnknown),
                Some(v) if v < min => return Err(DenyReason::TlsVersionTooOld),
                Some(_) => {}
            }
        }

        let country = f.country.filter(|c| !c.is_empty()).unwrap_or("XX");
        match &self.countries {
            CountryRule::Any => {}
            CountryRule::Allow(list) => {
                if !list.iter().any(|c| country_eq(c, country)) {
                    return Err(DenyReason::CountryNotAllowed);
                }
            }
            CountryRule::Deny(list) => {
                if list.iter().any(|c| country_eq(c, country)) {
                    return Err(DenyReason::CountryDenied);
                }
            }
        }

        if let Some(asn) = f.asn {
            if self.deny_asns.binary_search(&asn).is_ok() {
                return Err(DenyReason::AsnDenied);
            }
        }

        let bit = method_bit(f.method);
        if self.deny.iter().any(|r| r.matches(bit, f.decoded_path)) {
            return Err(DenyReason::PathDenied);
        }
        if !self.allow.iter().any(|r| r.matches(bit, f.decoded_path)) {
            return Err(DenyReason::PathNotAllowed);
        }

        if let Some(d) = &f.device {
            if let Some(list) = &self.platforms {
                if !list.iter().any(|p| p.eq_ignore_ascii_case(d.platform)) {
                    return Err(DenyReason::PlatformNotAllowed);
                }
            }
            if let Some(min) = self.min_app_version {
                match d.app_version.and_then(Version::parse_reported) {
                    None => return Err(DenyReason::AppVersionUnknown),
                    Some(v) if v < min => return Err(DenyReason::AppTooOld),
                    Some(_) => {}
                }
            }
            if let Some((_, min)) = self
                .min_os_version
                .iter()
                .find(|(p, _)| p.eq_ignore_ascii_case(d.platform))
            {
                match d.os_version.and_then(Version::parse_reported) {
                    None => return Err(DenyReason::OsVersionUnknown),
                    Some(v) if v < *min => return Err(DenyReason::OsTooOld),
                    Some(_) => {}
                }
            }
            if d.scope_read_only
                && f.method != "GET"
                && f.method != "HEAD"
                && !is_self_service(f.method, f.decoded_path)
            {
                return Err(DenyReason::ScopeReadOnly);
            }
        }
        Ok(())
    }
}

fn country_eq(code: &[u8; 2], reported: &str) -> bool {
    let ([a, b], [x, y]) = (code, reported.as_bytes()) else {
        return false;
    };
    a.eq_ignore_ascii_case(x) && b.eq_ignore_ascii_case(y)
}

/// The relay's own device routes that a read-only device may call *on itself*: sign out,
/// rename itself, revoke itself. The agent enforces "itself" (it knows the device); the scope rule
/// here would otherwise stop a viewer from ever signing out. Also the sealed route: its POST
/// carries any inner method, which only the agent sees and checks against the scope.
fn is_self_service(method: &str, decoded_path: &str) -> bool {
    use crate::route::{classify, AgentRoute, Route};
    matches!(
        classify(method, decoded_path),
        Route::Agent(
            AgentRoute::DeviceDelete
                | AgentRoute::DeviceRename
                | AgentRoute::MobileRevoke
                | AgentRoute::Sealed
        )
    )
}
