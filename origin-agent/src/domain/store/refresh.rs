//! Refresh tokens: rotation within a family, reuse detection, revocation.

use rusqlite::{params, OptionalExtension, Transaction};
use sha2::{Digest, Sha256};

use super::devices::{load_device, revoke_device_in};
use super::{
    check_text, flatten, limits, Device, RefreshError, Store, StoreError, REFRESH_REUSE_GRACE_SECS,
    REFRESH_TOKEN_LIFETIME_SECS,
};

/// `SHA-256(token)`: the only form in which a refresh token is stored or looked up.
pub fn refresh_token_hash(token: &[u8]) -> [u8; 32] {
    Sha256::digest(token).into()
}

/// A successful rotation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefreshOutcome {
    /// The (active) device the family belongs to.
    pub device: Device,
    pub family_id: String,
    /// When the new token expires.
    pub expires_at: i64,
    /// The presented token had just been rotated and was taken as a retry after a lost answer
    /// (within [`REFRESH_REUSE_GRACE_SECS`]); its unused successor is now superseded.
    pub grace_retry: bool,
}

struct TokenRow {
    family_id: String,
    expires_at: i64,
    used_at: Option<i64>,
    /// Rotated past by a grace retry of its parent, not by its holder.
    superseded: bool,
    /// The successor's hash and whether the successor was used, when this token was rotated.
    child: Option<([u8; 32], bool)>,
    family_revoked_at: Option<i64>,
    family_revoked_reason: Option<String>,
    device_id: String,
}

pub(super) fn validate_family_id(id: &str) -> Result<(), StoreError> {
    check_text(id, 1, limits::FAMILY_ID, "refresh family id")
}

/// Starts a family for `device_id` with its first token, inside the caller's transaction.
pub(super) fn start_family(
    tx: &Transaction<'_>,
    family_id: &str,
    device_id: &str,
    token_hash: &[u8; 32],
    now: i64,
) -> Result<(), StoreError> {
    tx.execute(
        "INSERT INTO refresh_families (id, device_id, created_at) VALUES (?1, ?2, ?3)",
        params![family_id, device_id, now],
    )?;
    insert_token(tx, family_id, token_hash, now)
}

fn insert_token(
    tx: &Transaction<'_>,
    family_id: &str,
    token_hash: &[u8; 32],
    now: i64,
) -> Result<(), StoreError> {
    tx.execute(
        "INSERT INTO refresh_tokens (token_hash, family_id, created_at, expires_at)
         VALUES (?1, ?2, ?3, ?4)",
        params![
            &token_hash[..],
            family_id,
            now,
            now.saturating_add(REFRESH_TOKEN_LIFETIME_SECS)
        ],
    )?;
    Ok(())
}

/// The reuse leeway: `row` (already used at `used_at`) may be rotated once more when it was
/// rotated by its holder (not superseded) at most [`REFRESH_REUSE_GRACE_SECS`] ago and its
/// successor was never used — so only the token rotated just before, only once (the retry uses up
/// the successor), and never a token older than that (its successor was used).
fn within_reuse_grace(row: &TokenRow, used_at: i64, now: i64) -> Option<[u8; 32]> {
    match row.child {
        Some((child, false))
            if !row.superseded && (0..=REFRESH_REUSE_GRACE_SECS).contains(&(now - used_at)) =>
        {
            Some(child)
        }
        _ => None,
    }
}

fn revoke_family(
    tx: &Transaction<'_>,
    family_id: &str,
    reason: &str,
    now: i64,
) -> Result<bool, StoreError> {
    Ok(tx.execute(
        "UPDATE refresh_families SET revoked_at = ?2, revoked_reason = ?3
         WHERE id = ?1 AND revoked_at IS NULL",
        params![family_id, now, reason],
    )? == 1)
}

/// Evidence that a refresh token was copied: its family is revoked for `reuse` and its device
/// with it (so the copy's access tokens and open WebSockets end now, not at their `exp`; the
/// phone must pair again either way). The caller then calls `note_revocation`.
fn revoke_for_copy(
    tx: &Transaction<'_>,
    family_id: &str,
    device_id: &str,
    now: i64,
) -> Result<bool, StoreError> {
    revoke_family(tx, family_id, "reuse", now)?;
    revoke_device_in(tx, device_id, now)
}

impl Store {
    /// Exchanges the refresh token hashed `old_hash` for the one hashed `new_hash`, atomically:
    ///
    /// * unknown → [`RefreshError::Unknown`];
    /// * device revoked → [`RefreshError::DeviceRevoked`]; family revoked → [`RefreshError::Revoked`];
    /// * already used, within [`REFRESH_REUSE_GRACE_SECS`] of its rotation by its holder, its
    ///   successor never used → a retry after a lost answer: the successor is superseded (marked
    ///   used, so presenting it later is reuse) and replaced by the new token
    ///   ([`RefreshOutcome::grace_retry`]);
    /// * otherwise already used → the whole family and its device are revoked (committed) and
    ///   [`RefreshError::Reused`];
    /// * expired → [`RefreshError::Expired`];
    /// * otherwise the old token is marked used (replaced by the new one), the new token joins
    ///   the family with a fresh [`REFRESH_TOKEN_LIFETIME_SECS`], and the device is returned.
    ///
    /// Reuse is checked before expiry: presenting a token that was rotated away is evidence that
    /// a copy exists, however old.
    pub fn rotate_refresh(
        &self,
        old_hash: &[u8; 32],
        new_hash: &[u8; 32],
        now: i64,
    ) -> Result<RefreshOutcome, RefreshError> {
        let outcome = flatten(self.write(|tx| {
            let row = tx
                .query_row(
                    "SELECT t.family_id, t.expires_at, t.used_at, t.superseded_at IS NOT NULL,
                            t.replaced_by, c.used_at IS NOT NULL,
                            f.revoked_at, f.revoked_reason, f.device_id
                     FROM refresh_tokens t JOIN refresh_families f ON f.id = t.family_id
                     LEFT JOIN refresh_tokens c ON c.token_hash = t.replaced_by
                     WHERE t.token_hash = ?1",
                    [&old_hash[..]],
                    |r| {
                        let child_used: bool = r.get(5)?;
                        let child = r
                            .get::<_, Option<Vec<u8>>>(4)?
                            .and_then(|c| <[u8; 32]>::try_from(c).ok())
                            .map(|c| (c, child_used));
                        Ok(TokenRow {
                            family_id: r.get(0)?,
                            expires_at: r.get(1)?,
                            used_at: r.get(2)?,
                            superseded: r.get(3)?,
                            child,
                            family_revoked_at: r.get(6)?,
                            family_revoked_reason: r.get(7)?,
                            device_id: r.get(8)?,
                        })
                    },
                )
                .optional()?;
            let Some(row) = row else {
                return Ok(Err(RefreshError::Unknown));
            };
            let TokenRow {
                family_id,
                expires_at,
                used_at,
                family_revoked_at,
                family_revoked_reason,
                device_id,
                ..
            } = &row;
            let (family_id, device_id) = (family_id.clone(), device_id.clone());
            // The session that ended on reuse says so (its device was revoked with it).
            if family_revoked_reason.as_deref() == Some("reuse") {
                return Ok(Err(RefreshError::Revoked));
            }
            let device = match load_device(tx, &device_id)? {
                Some(d) if d.is_active() => d,
                // Normally revoke_device already revoked the family; make sure.
                Some(_) => {
                    revoke_family(tx, &family_id, "device_revoked", now)?;
                    return Ok(Err(RefreshError::DeviceRevoked));
                }
                None => return Err(StoreError::Corrupt("refresh family without device")),
            };
            if family_revoked_at.is_some() {
                return Ok(Err(RefreshError::Revoked));
            }
            // The token that rotates: the presented one, or — on a retry within the reuse
            // grace — its unused successor, whose answer was lost (it is superseded).
            let (rotated, grace_retry) = match *used_at {
                None if *expires_at <= now => return Ok(Err(RefreshError::Expired)),
                None => (*old_hash, false),
                Some(used_at) => match within_reuse_grace(&row, used_at, now) {
                    Some(child) => (child, true),
                    None => {
                        revoke_for_copy(tx, &family_id, &device_id, now)?;
                        return Ok(Err(RefreshError::Reused));
                    }
                },
            };
            insert_token(tx, &family_id, new_hash, now)?;
            let n = tx.execute(
                "UPDATE refresh_tokens SET used_at = ?2, replaced_by = ?3,
                        superseded_at = CASE WHEN ?4 THEN ?2 END
                 WHERE token_hash = ?1 AND used_at IS NULL",
                params![&rotated[..], now, &new_hash[..], grace_retry],
            )?;
            if n != 1 {
                // Impossible under BEGIN IMMEDIATE; roll back rather than fork the family.
                return Err(StoreError::Corrupt("refresh token changed during rotation"));
            }
            Ok(Ok(RefreshOutcome {
                device,
                family_id,
                expires_at: now.saturating_add(REFRESH_TOKEN_LIFETIME_SECS),
                grace_retry,
            }))
        }));
        if matches!(outcome, Err(RefreshError::Reused)) {
            self.note_revocation();
        }
        outcome
    }

    /// A refresh token of `family_id` turned up where it should not (presented with another
    /// device's id): handled as a reuse — the family and its device are revoked. `true` if the
    /// device was active.
    pub fn revoke_for_refresh_misuse(&self, family_id: &str, now: i64) -> Result<bool, StoreError> {
        let result = self.write(|tx| {
            let device_id: Option<String> = tx
                .query_row(
                    "SELECT device_id FROM refresh_families WHERE id = ?1",
                    [family_id],
                    |r| r.get(0),
                )
                .optional()?;
            match device_id {
                Some(d) => revoke_for_copy(tx, family_id, &d, now),
                None => Ok(false),
            }
        });
        self.note_revocation();
        result
    }

    /// Revokes one family (logout of one session). `true` if it existed and was active.
    pub fn revoke_refresh_family(&self, family_id: &str, now: i64) -> Result<bool, StoreError> {
        self.write(|tx| revoke_family(tx, family_id, "logout", now))
    }

    /// The family a refresh token belongs to, if the token is known (for logout by token).
    pub fn refresh_family_of(&self, token_hash: &[u8; 32]) -> Result<Option<String>, StoreError> {
        Ok(self
            .lock()
            .query_row(
                "SELECT family_id FROM refresh_tokens WHERE token_hash = ?1",
                [&token_hash[..]],
                |r| r.get(0),
            )
            .optional()?)
    }
}
