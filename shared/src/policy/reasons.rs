//! Why the policy denies a request: one enum, its stable wire code, its sentence and its
//! [`ErrorCode`].

use std::fmt;

use crate::api::ErrorCode;

/// Why [`super::Policy::evaluate`] denied a request. [`DenyReason::as_str`] is the stable code
/// sent as `error.reason` and listed in `docs/policy.md`; [`DenyReason::message`] is the
/// sentence for people (it names the rule, never its contents).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DenyReason {
    /// `geo.min_tls_version` is set and the connection's TLS version is unknown.
    TlsVersionUnknown,
    /// The connection's TLS version is below `geo.min_tls_version`.
    TlsVersionTooOld,
    /// The country is not in `geo.allow_countries`.
    CountryNotAllowed,
    /// The country is in `geo.deny_countries`.
    CountryDenied,
    /// The network (ASN) is in `geo.deny_asns`.
    AsnDenied,
    /// A `paths.deny` rule matches.
    PathDenied,
    /// No `paths.allow` rule matches.
    PathNotAllowed,
    /// The device's platform is not in `devices.platforms`.
    PlatformNotAllowed,
    /// `devices.min_app_version` is set and the app version is missing or does not parse.
    AppVersionUnknown,
    /// The app is older than `devices.min_app_version`.
    AppTooOld,
    /// `devices.min_os_version` is set for the platform and the OS version is missing or does
    /// not parse.
    OsVersionUnknown,
    /// The OS is older than `devices.min_os_version`.
    OsTooOld,
    /// A read-only (viewer) device asked for something other than GET or HEAD.
    ScopeReadOnly,
}

impl DenyReason {
    /// Every reason, in evaluation order.
    pub const ALL: [DenyReason; 13] = [
        DenyReason::TlsVersionUnknown,
        DenyReason::TlsVersionTooOld,
        DenyReason::CountryNotAllowed,
        DenyReason::CountryDenied,
        DenyReason::AsnDenied,
        DenyReason::PathDenied,
        DenyReason::PathNotAllowed,
        DenyReason::PlatformNotAllowed,
        DenyReason::AppVersionUnknown,
        DenyReason::AppTooOld,
        DenyReason::OsVersionUnknown,
        DenyReason::OsTooOld,
        DenyReason::ScopeReadOnly,
    ];

    /// The stable code, e.g. `geo.country_denied`: `error.reason` on the wire.
    pub const fn as_str(self) -> &'static str {
        match self {
            DenyReason::TlsVersionUnknown => "tls.version_unknown",
            DenyReason::TlsVersionTooOld => "tls.version_too_old",
            DenyReason::CountryNotAllowed => "geo.country_not_allowed",
            DenyReason::CountryDenied => "geo.country_denied",
            DenyReason::AsnDenied => "geo.asn_denied",
            DenyReason::PathDenied => "path.denied",
            DenyReason::PathNotAllowed => "path.not_allowed",
            DenyReason::PlatformNotAllowed => "device.platform_not_allowed",
            DenyReason::AppVersionUnknown => "device.app_version_unknown",
            DenyReason::AppTooOld => "device.app_too_old",
            DenyReason::OsVersionUnknown => "device.os_version_unknown",
            DenyReason::OsTooOld => "device.os_too_old",
            DenyReason::ScopeReadOnly => "scope.read_only",
        }
    }

    /// A sentence for people. Names the rule, never its contents.
    pub const fn message(self) -> &'static str {
        match self {
            DenyReason::TlsVersionUnknown => {
                "the connection's TLS version is unknown and a minimum is set"
            }
            DenyReason::TlsVersionTooOld => "the connection's TLS version is below the minimum",
            DenyReason::CountryNotAllowed => "requests from this country are not allowed",
            DenyReason::CountryDenied => "requests from this country are denied",
            DenyReason::AsnDenied => "requests from this network are denied",
            DenyReason::PathDenied => "this path is denied by policy",
            DenyReason::PathNotAllowed => "this path is not allowed by policy",
            DenyReason::PlatformNotAllowed => "this device platform is not allowed",
            DenyReason::AppVersionUnknown => "the app version is unknown and a minimum is set",
            DenyReason::AppTooOld => "the app is older than the minimum version; please update",
            DenyReason::OsVersionUnknown => "the OS version is unknown and a minimum is set",
            DenyReason::OsTooOld => "the OS is older than the minimum version; please update",
            DenyReason::ScopeReadOnly => "this device has read-only access",
        }
    }

    /// Whether the device's scope, not the request's origin or path, is what was refused.
    pub const fn is_scope(self) -> bool {
        matches!(self, DenyReason::ScopeReadOnly)
    }

    /// `insufficient_scope` for a scope denial, `forbidden` otherwise (both 403).
    pub const fn error_code(self) -> ErrorCode {
        if self.is_scope() {
            ErrorCode::InsufficientScope
        } else {
            ErrorCode::Forbidden
        }
    }
}

impl fmt::Display for DenyReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_reason_has_its_own_code_and_sentence() {
        let mut codes = std::collections::HashSet::new();
        let mut messages = std::collections::HashSet::new();
        for r in DenyReason::ALL {
            assert!(codes.insert(r.as_str()), "duplicate code {r}");
            assert!(messages.insert(r.message()), "duplicate message for {r}");
            let (family, name) = r.as_str().split_once('.').expect("family.name");
            assert!(
                ["tls", "geo", "path", "device", "scope"].contains(&family) && !name.is_empty(),
                "{r}"
            );
            assert_eq!(r.to_string(), r.as_str());
        }
    }

    #[test]
    fn only_the_scope_family_is_a_scope_error() {
        for r in DenyReason::ALL {
            let scope = r.as_str().starts_with("scope.");
            assert_eq!(r.is_scope(), scope, "{r}");
            let expected = if scope {
                ErrorCode::InsufficientScope
            } else {
                ErrorCode::Forbidden
            };
            assert_eq!(r.error_code(), expected, "{r}");
            assert_eq!(r.error_code().status(), 403, "{r}");
        }
    }
}
