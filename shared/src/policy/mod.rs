//! The access policy: one declarative TOML document, validated once, evaluated per request.
//!
//! ```toml
//! version = 1
//! [geo]
//! allow_countries = ["US", "CA"]   # or deny_countries = ["T1"]; not both
//! deny_asns = [64496]
//! min_tls_version = "1.2"
//! [devices]
//! platforms = ["ios", "android"]
//! min_app_version = "1.4.0"
//! min_os_version = { ios = "16.0", android = "12" }
//! [paths]
//! allow = ["@default", "GET /api/v1/digests/*"]
//! deny = ["@default"]
//! [images]
//! default_quality = "original"
//! platform_quality = { ios = "mobile" }
//! webp = true                      # false: JPEG only (the Workers free plan's 10 ms of CPU)
//! [sealed]
//! required = true                  # device requests only sealed (Oblivious HTTP); pairing stays plain
//! ```
//!
//! [`Policy::from_toml`] parses and validates (unknown fields are errors; every error names its
//! field); [`Policy::evaluate`] answers [`Decision::Allow`] or [`Decision::Deny`] with a stable
//! reason code. Globs are compiled at parse time and evaluation does not allocate.
//!
//! `docs/policy.md` is the user-facing reference: fields, reason codes, defaults, what happens
//! when a fact is missing, and how to deploy a change.
//!
//! # Evaluation order (the first failing rule is reported)
//! 1. `geo.min_tls_version` → `tls.version_unknown`, `tls.version_too_old`
//! 2. `geo.allow_countries` / `geo.deny_countries` → `geo.country_not_allowed`, `geo.country_denied`
//! 3. `geo.deny_asns` → `geo.asn_denied`
//! 4. `paths.deny` → `path.denied` (deny always wins), then `paths.allow` → `path.not_allowed`
//! 5. with a device: `devices.platforms` → `device.platform_not_allowed`;
//!    `devices.min_app_version` → `device.app_version_unknown`, `device.app_too_old`;
//!    `devices.min_os_version` → `device.os_version_unknown`, `device.os_too_old`;
//!    read-only scope and a method other than GET/HEAD → `scope.read_only` (except the relay's
//!    self-service routes — sign out, rename or revoke *this* device — which the agent restricts
//!    to the calling device).
//!
//! # Missing facts
//! - No country (or an empty one) counts as `"XX"`, Cloudflare's "unknown": denied by an allow
//!   list that does not name `XX`, denied by a deny list that does.
//! - No TLS version with `min_tls_version` set: denied (`tls.version_unknown`).
//! - No ASN: `deny_asns` cannot match, so it does not deny.
//! - No device ([`RequestFacts::device`] is `None`): the request carried no device token (a
//!   public pairing route); device and scope rules do not apply. Geo and path rules still do.
//!   Callers pass `Some` whenever a token was verified.
//! - A device without an app (OS) version, or with one that does not parse, while a minimum is
//!   set: denied (`device.app_version_unknown` / `device.os_version_unknown`).
//!
//! # Where things are
//! - [`defaults`]: the built-in path rules (`@default`).
//! - `document`: the TOML as written; `compile`: validating it into a [`Policy`].
//! - `values`: TLS versions, software versions, image qualities.
//! - `path_rules`: method + segment-glob rules.
//! - `evaluate`: the facts of a request and the [`Decision`]; [`DenyReason`]: why a request was denied.

mod compile;
pub mod defaults;
mod document;
mod error;
mod evaluate;
mod path_rules;
mod reasons;
mod values;

pub use defaults::{DEFAULT_ALLOW, DEFAULT_DENY};
pub use error::{FieldError, PolicyError};
pub use evaluate::{Decision, DeviceFacts, RequestFacts};
pub use reasons::DenyReason;
pub use values::{ImageQuality, TlsVersion, Version};

use crate::route::{AgentRoute, PublicRoute};
use path_rules::{compile_defaults, method_bit, PathRule};

/// The only document version this build understands.
pub const POLICY_VERSION: u32 = 1;

/// A validated policy, ready to evaluate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Policy {
    countries: CountryRule,
    /// Sorted, deduplicated.
    deny_asns: Vec<u32>,
    min_tls: Option<TlsVersion>,
    /// Lower-case platform names; `None` = any.
    platforms: Option<Vec<String>>,
    min_app_version: Option<Version>,
    /// (lower-case platform, minimum).
    min_os_version: Vec<(String, Version)>,
    allow: Vec<PathRule>,
    deny: Vec<PathRule>,
    default_image_quality: Option<ImageQuality>,
    /// (lower-case platform, quality): overrides `default_image_quality` for that platform.
    platform_image_quality: Vec<(String, ImageQuality)>,
    /// `images.webp`: whether clients that name `image/webp` get WebP (else JPEG).
    image_webp: bool,
    /// `sealed.required`: device requests must be sealed ([`crate::sealed`]).
    sealed_required: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum CountryRule {
    Any,
    /// Upper-case two-letter codes.
    Allow(Vec<[u8; 2]>),
    Deny(Vec<[u8; 2]>),
}

impl Policy {
    /// The built-in policy: no geo, TLS or device restrictions, [`DEFAULT_ALLOW`] and
    /// [`DEFAULT_DENY`] for paths, no image default.
    pub fn default_policy() -> Policy {
        let mut errors = Vec::new();
        let allow = compile_defaults(DEFAULT_ALLOW, "paths.allow", &mut errors);
        let deny = compile_defaults(DEFAULT_DENY, "paths.deny", &mut errors);
        Policy {
            countries: CountryRule::Any,
            deny_asns: Vec::new(),
            min_tls: None,
            platforms: None,
            min_app_version: None,
            min_os_version: Vec::new(),
            // The built-in rules compile (tested); should one ever not, allow nothing.
            allow: if errors.is_empty() { allow } else { Vec::new() },
            deny,
            default_image_quality: None,
            platform_image_quality: Vec::new(),
            image_webp: true,
            sealed_required: false,
        }
    }

    /// `sealed.required` (default false): the edge refuses every plain device request
    /// (`sealed.required`); only sealed requests and the public pairing routes pass.
    pub fn sealed_required(&self) -> bool {
        self.sealed_required
    }

    /// The image quality for devices that do not ask for one, if the policy sets it.
    pub fn default_image_quality(&self) -> Option<ImageQuality> {
        self.default_image_quality
    }

    /// The image quality for a device of `platform` that does not ask for one:
    /// `images.platform_quality.<platform>` (case-insensitive), else `images.default_quality`.
    /// `None`: the policy says nothing (the original is served).
    pub fn image_quality_for(&self, platform: &str) -> Option<ImageQuality> {
        self.platform_image_quality
            .iter()
            .find(|(p, _)| p.eq_ignore_ascii_case(platform))
            .map(|(_, q)| *q)
            .or(self.default_image_quality)
    }

    /// `images.webp` (default true): whether a client whose `Accept` names `image/webp` gets
    /// WebP. `false` keeps every transcode on the fast JPEG path — the one that fits the Workers
    /// free plan's 10 ms of CPU (docs/benchmarks.md, "Images").
    pub fn image_webp_allowed(&self) -> bool {
        self.image_webp
    }

    /// Whether the path rules alone let `method path` through (deny first, then allow).
    pub fn path_allowed(&self, method: &str, decoded_path: &str) -> bool {
        let bit = method_bit(method);
        !self.deny.iter().any(|r| r.matches(bit, decoded_path))
            && self.allow.iter().any(|r| r.matches(bit, decoded_path))
    }

    /// Things that parse but are probably mistakes, for `argus-relay policy check`: relay routes
    /// the path rules shut (phones could not pair or refresh), OS minimums for platforms that
    /// are not allowed anyway.
    pub fn warnings(&self) -> Vec<String> {
        let mut out = Vec::new();
        let public = PublicRoute::ALL.iter().map(|r| (r.method(), r.path()));
        let agent = AgentRoute::ALL.iter().map(|r| (r.method(), r.path()));
        for (method, template) in public.chain(agent) {
            let sample = template
                .replace("{code}", "123456")
                .replace("{id}", "device-id");
            if !self.path_allowed(method, &sample) {
                out.push(format!(
                    "paths: {method} {template} is not allowed; the relay's own route will be refused"
                ));
            }
        }
        if let Some(platforms) = &self.platforms {
            for (p, _) in &self.min_os_version {
                if !platforms.iter().any(|q| q == p) {
                    out.push(format!(
                        "devices.min_os_version.{p}: {p:?} is not in devices.platforms, so this minimum never applies"
                    ));
                }
            }
        }
        out
    }

    /// The compiled path rules, normalised (`"GET,POST /api/v1/devices"`), for display.
    pub fn path_rules(&self) -> (Vec<&str>, Vec<&str>) {
        (
            self.allow.iter().map(|r| r.source.as_str()).collect(),
            self.deny.iter().map(|r| r.source.as_str()).collect(),
        )
    }
}

#[cfg(test)]
mod tests;
