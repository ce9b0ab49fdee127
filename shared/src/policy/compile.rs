//! Validating a policy document into a [`Policy`]: every problem is collected, each naming
//! its field.

use super::document::PolicyDoc;
use super::error::{FieldError, PolicyError};
use super::path_rules::{compile_defaults, compile_rules};
use super::values::{ImageQuality, TlsVersion, Version};
use super::{CountryRule, Policy, DEFAULT_ALLOW, DEFAULT_DENY, POLICY_VERSION};

/// Country codes accepted besides ISO 3166-1 alpha-2: Tor exit nodes, unknown, and Kosovo
/// (user-assigned but used by geolocation databases).
const EXTRA_COUNTRIES: &[&str] = &["T1", "XX", "XK"];

/// ISO 3166-1 alpha-2, all 249 assigned codes.
const ISO_COUNTRIES: &str = "\
AD AE AF AG AI AL AM AO AQ AR AS AT AU AW AX AZ BA BB BD BE \
BF BG BH BI BJ BL BM BN BO BQ BR BS BT BV BW BY BZ CA CC CD \
CF CG CH CI CK CL CM CN CO CR CU CV CW CX CY CZ DE DJ DK DM \
DO DZ EC EE EG EH ER ES ET FI FJ FK FM FO FR GA GB GD GE GF \
GG GH GI GL GM GN GP GQ GR GS GT GU GW GY HK HM HN HR HT HU \
ID IE IL IM IN IO IQ IR IS IT JE JM JO JP KE KG KH KI KM KN \
KP KR KW KY KZ LA LB LC LI LK LR LS LT LU LV LY MA MC MD ME \
MF MG MH MK ML MM MN MO MP MQ MR MS MT MU MV MW MX MY MZ NA \
NC NE NF NG NI NL NO NP NR NU NZ OM PA PE PF PG PH PK PL PM \
PN PR PS PT PW PY QA RE RO RS RU RW SA SB SC SD SE SG SH SI \
SJ SK SL SM SN SO SR SS ST SV SX SY SZ TC TD TF TG TH TJ TK \
TL TM TN TO TR TT TV TW TZ UA UG UM US UY UZ VA VC VE VG VI \
VN VU WF WS YE YT ZA ZM ZW";

impl Policy {
    /// Parses and validates a policy document. Unknown fields are errors.
    pub fn from_toml(text: &str) -> Result<Policy, PolicyError> {
        let doc: PolicyDoc = toml::from_str(text)
            .map_err(|e| PolicyError::Syntax(e.to_string().trim_end().to_string()))?;
        let mut errors = Vec::new();

        if doc.version != POLICY_VERSION {
            errors.push(FieldError {
                field: "version".into(),
                problem: format!(
                    "unsupported version {} (this build understands {POLICY_VERSION})",
                    doc.version
                ),
            });
        }

        // [geo]
        let countries = match (&doc.geo.allow_countries, &doc.geo.deny_countries) {
            (Some(_), Some(_)) => {
                errors.push(FieldError {
                    field: "geo".into(),
                    problem: "allow_countries and deny_countries are both set; use one".into(),
                });
                CountryRule::Any
            }
            (Some(list), None) => {
                CountryRule::Allow(countries_of("geo.allow_countries", list, &mut errors))
            }
            (None, Some(list)) => {
                CountryRule::Deny(countries_of("geo.deny_countries", list, &mut errors))
            }
            (None, None) => CountryRule::Any,
        };
        let mut deny_asns = doc.geo.deny_asns.clone();
        for (i, asn) in deny_asns.iter().enumerate() {
            if *asn == 0 {
                errors.push(FieldError {
                    field: format!("geo.deny_asns[{i}]"),
                    problem: "0 is not an AS number".into(),
                });
            }
        }
        deny_asns.sort_unstable();
        deny_asns.dedup();
        let min_tls = doc.geo.min_tls_version.as_deref().and_then(|v| {
            let parsed = TlsVersion::from_policy(v);
            if parsed.is_none() {
                errors.push(FieldError {
                    field: "geo.min_tls_version".into(),
                    problem: format!("{v:?} is not one of \"1.0\", \"1.1\", \"1.2\", \"1.3\""),
                });
            }
            parsed
        });

        // [devices]
        let platforms = doc.devices.platforms.as_ref().map(|list| {
            if list.is_empty() {
                errors.push(FieldError {
                    field: "devices.platforms".into(),
                    problem: "is empty, which would refuse every device (omit it to allow every platform)"
                        .into(),
                });
            }
            let mut out: Vec<String> = Vec::new();
            for (i, p) in list.iter().enumerate() {
                if let Err(problem) = check_platform(p) {
                    errors.push(FieldError {
                        field: format!("devices.platforms[{i}]"),
                        problem,
                    });
                } else if !out.contains(p) {
                    out.push(p.clone());
                }
            }
            out
        });
        let min_app_version = doc
            .devices
            .min_app_version
            .as_deref()
            .and_then(|v| version_of("devices.min_app_version", v, &mut errors));
        let mut min_os_version = Vec::new();
        for (platform, v) in &doc.devices.min_os_version {
            let field = format!("devices.min_os_version.{platform}");
            if let Err(problem) = check_platform(platform) {
                errors.push(FieldError { field, problem });
                continue;
            }
            if let Some(ver) = version_of(&field, v, &mut errors) {
                min_os_version.push((platform.clone(), ver));
            }
        }

        // [paths]
        let (allow, deny) = match &doc.paths {
            None => (
                compile_defaults(DEFAULT_ALLOW, "paths.allow", &mut errors),
                compile_defaults(DEFAULT_DENY, "paths.deny", &mut errors),
            ),
            Some(paths) => {
                if paths.allow.is_empty() {
                    errors.push(FieldError {
                        field: "paths.allow".into(),
                        problem: "is empty, which would refuse every request (use [\"@default\"] \
                                  for the built-in allowlist, or omit [paths])"
                            .into(),
                    });
                }
                (
                    compile_rules("paths.allow", &paths.allow, DEFAULT_ALLOW, &mut errors),
                    compile_rules("paths.deny", &paths.deny, DEFAULT_DENY, &mut errors),
                )
            }
        };

        // [images]
        let default_image_quality = doc.images.default_quality.as_deref().and_then(|q| {
            let parsed = ImageQuality::parse(q);
            if parsed.is_none() {
                errors.push(FieldError {
                    field: "images.default_quality".into(),
                    problem: format!(
                        "{q:?} is not one of \"original\", \"high\", \"mobile\", \"low\""
                    ),
                });
            }
            parsed
        });
        let mut platform_image_quality = Vec::new();
        for (platform, q) in &doc.images.platform_quality {
            let field = format!("images.platform_quality.{platform}");
            if let Err(problem) = check_platform(platform) {
                errors.push(FieldError { field, problem });
                continue;
            }
            match ImageQuality::parse(q) {
                Some(parsed) => platform_image_quality.push((platform.clone(), parsed)),
                None => errors.push(FieldError {
                    field,
                    problem: format!(
                        "{q:?} is not one of \"original\", \"high\", \"mobile\", \"low\""
                    ),
                }),
            }
        }

        if !errors.is_empty() {
            return Err(PolicyError::Invalid(errors));
        }
        Ok(Policy {
            countries,
            deny_asns,
            min_tls,
            platforms,
            min_app_version,
            min_os_version,
            allow,
            deny,
            default_image_quality,
            platform_image_quality,
            image_webp: doc.images.webp.unwrap_or(true),
            sealed_required: doc.sealed.required,
        })
    }
}

fn countries_of(field: &str, list: &[String], errors: &mut Vec<FieldError>) -> Vec<[u8; 2]> {
    if list.is_empty() {
        let problem = if field.ends_with("allow_countries") {
            "is empty, which would refuse every request (omit it to allow every country)"
        } else {
            "is empty (omit it instead)"
        };
        errors.push(FieldError {
            field: field.into(),
            problem: problem.into(),
        });
    }
    let mut out = Vec::new();
    for (i, c) in list.iter().enumerate() {
        match check_country(c) {
            Ok(code) => {
                if !out.contains(&code) {
                    out.push(code);
                }
            }
            Err(problem) => errors.push(FieldError {
                field: format!("{field}[{i}]"),
                problem,
            }),
        }
    }
    out
}

fn check_country(c: &str) -> Result<[u8; 2], String> {
    let b = c.as_bytes();
    let [x, y] = b else {
        return Err(format!("{c:?} is not a 2-letter country code"));
    };
    if !x.is_ascii_alphabetic() || !y.is_ascii_alphabetic() {
        if c == "T1" {
            return Ok([b'T', b'1']);
        }
        return Err(format!(
            "{c:?} is not a 2-letter country code (\"T1\" is the only non-letter code: Tor)"
        ));
    }
    if !(x.is_ascii_uppercase() && y.is_ascii_uppercase()) {
        return Err(format!(
            "{c:?} must be upper-case ({:?})",
            c.to_ascii_uppercase()
        ));
    }
    let known = ISO_COUNTRIES.split(' ').any(|k| k == c) || EXTRA_COUNTRIES.contains(&c);
    if !known {
        let hint = match c {
            "UK" => " (the United Kingdom is \"GB\")",
            "EU" => " (list the member states)",
            _ => "",
        };
        return Err(format!(
            "{c:?} is not an ISO 3166-1 alpha-2 country code{hint}; also accepted: \"T1\" (Tor), \"XX\" (unknown), \"XK\""
        ));
    }
    Ok([*x, *y])
}

fn check_platform(p: &str) -> Result<(), String> {
    let ok = !p.is_empty()
        && p.len() <= 32
        && p.bytes().next().is_some_and(|b| b.is_ascii_lowercase())
        && p.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_');
    if ok {
        Ok(())
    } else {
        Err(format!(
            "{p:?} is not a platform name: lower-case letters, digits, '-' or '_' (e.g. \"ios\", \"android\")"
        ))
    }
}

fn version_of(field: &str, v: &str, errors: &mut Vec<FieldError>) -> Option<Version> {
    let parsed = Version::parse(v);
    if parsed.is_none() {
        errors.push(FieldError {
            field: field.into(),
            problem: format!(
                "{v:?} is not a version: 1 to 4 dot-separated numbers (e.g. \"1.4.0\", \"16\")"
            ),
        });
    }
    parsed
}
