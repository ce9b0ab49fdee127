//! Versioned schema migrations: `PRAGMA user_version` = number of migrations applied.
//!
//! Append new migrations at the end; never edit a released one.

use rusqlite::{Connection, TransactionBehavior};

use super::StoreError;

/// Migration `i` takes the schema from version `i` to `i + 1`.
pub(crate) const MIGRATIONS: &[&str] = &[V1, V2, V3, V4];

/// The schema version this agent writes.
pub(crate) const LATEST: i64 = MIGRATIONS.len() as i64;

/// Applies the missing migrations, each in its own `BEGIN IMMEDIATE` transaction together with
/// its `user_version` bump (re-read inside the transaction, so two openers cannot both apply it).
pub(crate) fn migrate(conn: &mut Connection) -> Result<(), StoreError> {
    loop {
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let version: i64 = tx.query_row("PRAGMA user_version", [], |r| r.get(0))?;
        if version < 0 {
            return Err(StoreError::BadSchemaVersion(version));
        }
        if version > LATEST {
            return Err(StoreError::SchemaTooNew {
                found: version,
                supported: LATEST,
            });
        }
        let Some(sql) = usize::try_from(version)
            .ok()
            .and_then(|v| MIGRATIONS.get(v))
        else {
            // Up to date: nothing written, the empty transaction just ends.
            tx.commit()?;
            return Ok(());
        };
        tx.execute_batch(sql)?;
        tx.pragma_update(None, "user_version", version + 1)?;
        tx.commit()?;
    }
}

/// Version 1.
///
/// * Timestamps are Unix seconds (INTEGER). Hashes, seeds and secrets are BLOBs.
/// * Devices are never deleted (revoked only), so the foreign keys onto them hold forever.
/// * `pairing_codes.device_id` links a redeemed code to the device it created; the CHECK makes
///   "redeemed" and "has a device" the same fact, and `devices` rows are only inserted in the
///   transaction that redeems a code, so there is no device without a redeemed code.
/// * Revocation of refresh tokens is per family (`refresh_families.revoked_at`): rotation checks
///   the family, so no per-token flag can be forgotten.
const V1: &str = r#"
CREATE TABLE signing_keys (
    kid           TEXT    NOT NULL PRIMARY KEY CHECK (length(kid) BETWEEN 1 AND 128),
    seed          BLOB    NOT NULL CHECK (length(seed) = 32),
    created_at    INTEGER NOT NULL,
    -- NULL: the current signing key. Otherwise when a newer key replaced it; it still verifies
    -- tokens until superseded_at + max access-token lifetime, then it is deleted.
    superseded_at INTEGER
) STRICT;
-- At most one current key.
CREATE UNIQUE INDEX signing_keys_one_current
    ON signing_keys ((superseded_at IS NULL)) WHERE superseded_at IS NULL;

CREATE TABLE secrets (
    name       TEXT    NOT NULL PRIMARY KEY CHECK (length(name) BETWEEN 1 AND 64),
    value      BLOB    NOT NULL,
    created_at INTEGER NOT NULL
) STRICT;

CREATE TABLE devices (
    id              TEXT    NOT NULL PRIMARY KEY CHECK (length(id) BETWEEN 1 AND 64),
    name            TEXT    NOT NULL CHECK (length(name) BETWEEN 1 AND 128),
    model           TEXT    CHECK (length(model) <= 128),
    platform        TEXT    CHECK (length(platform) <= 64),
    os_version      TEXT    CHECK (length(os_version) <= 64),
    app_version     TEXT    CHECK (length(app_version) <= 64),
    phone_device_id TEXT    CHECK (length(phone_device_id) <= 128),
    scope           TEXT    NOT NULL CHECK (scope IN ('owner', 'viewer')),
    created_at      INTEGER NOT NULL,
    last_seen_at    INTEGER,
    revoked_at      INTEGER
) STRICT;
CREATE INDEX devices_by_revoked_at ON devices (revoked_at) WHERE revoked_at IS NOT NULL;

CREATE TABLE pairing_codes (
    id              INTEGER PRIMARY KEY,
    -- SHA-256("argus-relay/pairing-code/v1\0" || code); the code itself is never stored.
    code_hash       BLOB    NOT NULL UNIQUE CHECK (length(code_hash) = 32),
    kind            TEXT    NOT NULL CHECK (kind IN ('owner_initiated', 'phone_initiated')),
    -- Scope the resulting device gets (phone-initiated: chosen by the owner on confirmation).
    scope           TEXT    NOT NULL CHECK (scope IN ('owner', 'viewer')),
    state           TEXT    NOT NULL DEFAULT 'pending'
                            CHECK (state IN ('pending', 'confirmed', 'denied', 'redeemed')),
    created_at      INTEGER NOT NULL,
    expires_at      INTEGER NOT NULL,
    decided_at      INTEGER,
    -- Failed attempts charged to this code (see the module doc); dead at 10.
    failed_attempts INTEGER NOT NULL DEFAULT 0 CHECK (failed_attempts >= 0),
    -- What the phone said about itself (phone-initiated only).
    phone_device_id TEXT    CHECK (length(phone_device_id) BETWEEN 1 AND 128),
    phone_platform  TEXT    CHECK (length(phone_platform) <= 64),
    phone_name      TEXT    CHECK (length(phone_name) BETWEEN 1 AND 128),
    phone_model     TEXT    CHECK (length(phone_model) <= 128),
    -- The device this code created, once redeemed.
    device_id       TEXT    UNIQUE REFERENCES devices (id),
    redeemed_at     INTEGER,
    CHECK ((kind = 'phone_initiated') = (phone_device_id IS NOT NULL AND phone_name IS NOT NULL)),
    CHECK (kind = 'phone_initiated' OR state IN ('pending', 'redeemed')),
    CHECK ((state = 'redeemed') = (device_id IS NOT NULL AND redeemed_at IS NOT NULL))
) STRICT;
CREATE INDEX pairing_codes_live ON pairing_codes (kind, state, expires_at);

CREATE TABLE refresh_families (
    id             TEXT    NOT NULL PRIMARY KEY CHECK (length(id) BETWEEN 1 AND 64),
    device_id      TEXT    NOT NULL REFERENCES devices (id),
    created_at     INTEGER NOT NULL,
    revoked_at     INTEGER,
    revoked_reason TEXT    CHECK (revoked_reason IN ('reuse', 'device_revoked', 'logout')),
    CHECK ((revoked_at IS NULL) = (revoked_reason IS NULL))
) STRICT;
CREATE INDEX refresh_families_by_device ON refresh_families (device_id);

CREATE TABLE refresh_tokens (
    -- SHA-256 of the opaque token; the token itself is never stored.
    token_hash  BLOB    NOT NULL PRIMARY KEY CHECK (length(token_hash) = 32),
    family_id   TEXT    NOT NULL REFERENCES refresh_families (id),
    created_at  INTEGER NOT NULL,
    expires_at  INTEGER NOT NULL,
    -- Set together when the token is rotated: its successor's hash.
    used_at     INTEGER,
    replaced_by BLOB    UNIQUE CHECK (length(replaced_by) = 32),
    CHECK ((used_at IS NULL) = (replaced_by IS NULL))
) STRICT;
CREATE INDEX refresh_tokens_by_family ON refresh_tokens (family_id);
CREATE INDEX refresh_tokens_by_expiry ON refresh_tokens (expires_at);
"#;

/// Version 2: the agent's own ArgusAI user session (`argus-relay backend login`).
///
/// * At most one row (`id = 1`). `refresh_token` is ArgusAI's opaque refresh token, kept in clear
///   because the agent must present it (the database is `0600`, like the signing keys). The
///   password is never stored; the access token lives in memory only.
/// * `generation` is bumped by each login, so a rotation by the running agent can tell that the
///   owner signed in again meanwhile (its conditional update then changes nothing).
/// * `refused_at`/`refused_reason`: ArgusAI refused the session (refresh token revoked, reused or
///   expired); cleared by the next login.
const V2: &str = r#"
CREATE TABLE backend_session (
    id             INTEGER NOT NULL PRIMARY KEY CHECK (id = 1),
    username       TEXT    NOT NULL CHECK (length(username) BETWEEN 1 AND 128),
    role           TEXT    CHECK (length(role) <= 32),
    refresh_token  TEXT    NOT NULL CHECK (length(refresh_token) BETWEEN 1 AND 4096),
    generation     INTEGER NOT NULL CHECK (generation >= 1),
    signed_in_at   INTEGER NOT NULL,
    rotated_at     INTEGER NOT NULL,
    refused_at     INTEGER,
    refused_reason TEXT    CHECK (length(refused_reason) <= 512),
    CHECK ((refused_at IS NULL) = (refused_reason IS NULL))
) STRICT;
"#;

/// Version 3: the agent's Oblivious HTTP keys (sealed mode, `crate::domain::sealed_keys`).
///
/// * `ikm` is the 32-byte input keying material the X25519 key pair is derived from (RFC 9180
///   `DeriveKeyPair`), a secret like the signing seeds (the database is `0600`).
/// * `key_id` is the RFC 9458 key identifier (one byte) the phone names in each request.
/// * One current key (`superseded_at IS NULL`); a superseded one is still accepted until
///   `superseded_at` + the overlap, then deleted.
const V3: &str = r#"
CREATE TABLE ohttp_keys (
    key_id        INTEGER NOT NULL PRIMARY KEY CHECK (key_id BETWEEN 0 AND 255),
    ikm           BLOB    NOT NULL CHECK (length(ikm) = 32),
    created_at    INTEGER NOT NULL,
    superseded_at INTEGER
) STRICT;
CREATE UNIQUE INDEX ohttp_keys_one_current
    ON ohttp_keys ((superseded_at IS NULL)) WHERE superseded_at IS NULL;
"#;

/// Version 4: refresh rotation with a reuse grace (see `REFRESH_REUSE_GRACE_SECS`).
///
/// `superseded_at` is set on a token whose rotation answer was presumed lost: its parent was
/// presented again within the grace and rotated past it. Such a token was used by the agent, not
/// by its holder, so it never earns a grace of its own: presenting it is reuse.
const V4: &str = r#"
ALTER TABLE refresh_tokens ADD COLUMN superseded_at INTEGER
    CHECK (superseded_at IS NULL OR used_at IS NOT NULL);
"#;
