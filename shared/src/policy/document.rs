//! The policy document as written (TOML), before validation. Unknown fields are errors.

use std::collections::BTreeMap;

use serde::Deserialize;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct PolicyDoc {
    pub(super) version: u32,
    #[serde(default)]
    pub(super) geo: GeoDoc,
    #[serde(default)]
    pub(super) devices: DevicesDoc,
    pub(super) paths: Option<PathsDoc>,
    #[serde(default)]
    pub(super) images: ImagesDoc,
    #[serde(default)]
    pub(super) sealed: SealedDoc,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct SealedDoc {
    #[serde(default)]
    pub(super) required: bool,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct GeoDoc {
    pub(super) allow_countries: Option<Vec<String>>,
    pub(super) deny_countries: Option<Vec<String>>,
    #[serde(default)]
    pub(super) deny_asns: Vec<u32>,
    pub(super) min_tls_version: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct DevicesDoc {
    pub(super) platforms: Option<Vec<String>>,
    pub(super) min_app_version: Option<String>,
    #[serde(default)]
    pub(super) min_os_version: BTreeMap<String, String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct PathsDoc {
    pub(super) allow: Vec<String>,
    #[serde(default)]
    pub(super) deny: Vec<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct ImagesDoc {
    pub(super) default_quality: Option<String>,
    #[serde(default)]
    pub(super) platform_quality: BTreeMap<String, String>,
    pub(super) webp: Option<bool>,
}
