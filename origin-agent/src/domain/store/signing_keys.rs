//! Ed25519 signing keys for access tokens, with rotation and retirement.

use rusqlite::{params, OptionalExtension, Row};

use super::{check_text, limits, Store, StoreError, MAX_ACCESS_TOKEN_LIFETIME_SECS};

/// A stored signing key. `Debug` never prints the seed.
#[derive(Clone, PartialEq, Eq)]
pub struct SigningKey {
    pub kid: String,
    /// The Ed25519 secret seed.
    pub seed: [u8; 32],
    pub created_at: i64,
    /// `None` for the current key; otherwise when a newer key replaced it.
    pub superseded_at: Option<i64>,
}

impl SigningKey {
    pub fn is_current(&self) -> bool {
        self.superseded_at.is_none()
    }
}

impl std::fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SigningKey")
            .field("kid", &self.kid)
            .field("seed", &"<redacted>")
            .field("created_at", &self.created_at)
            .field("superseded_at", &self.superseded_at)
            .finish()
    }
}

fn key_from_row(row: &Row<'_>) -> rusqlite::Result<(String, Vec<u8>, i64, Option<i64>)> {
    Ok((row.get(0)?, row.get(1)?, row.get(2)?, row.get(3)?))
}

fn to_key(
    (kid, seed, created_at, superseded_at): (String, Vec<u8>, i64, Option<i64>),
) -> Result<SigningKey, StoreError> {
    let seed: [u8; 32] = seed
        .try_into()
        .map_err(|_| StoreError::Corrupt("signing key seed is not 32 bytes"))?;
    Ok(SigningKey {
        kid,
        seed,
        created_at,
        superseded_at,
    })
}

impl Store {
    /// The key new access tokens are signed with, if any.
    pub fn current_signing_key(&self) -> Result<Option<SigningKey>, StoreError> {
        let row = self
            .lock()
            .query_row(
                "SELECT kid, seed, created_at, superseded_at FROM signing_keys
                 WHERE superseded_at IS NULL",
                [],
                key_from_row,
            )
            .optional()?;
        row.map(to_key).transpose()
    }

    /// The current key first, then the previous keys that may still have signed an unexpired
    /// token (superseded less than [`MAX_ACCESS_TOKEN_LIFETIME_SECS`] ago), newest first.
    pub fn signing_keys_for_verification(&self, now: i64) -> Result<Vec<SigningKey>, StoreError> {
        let conn = self.lock();
        let mut stmt = conn.prepare_cached(
            "SELECT kid, seed, created_at, superseded_at FROM signing_keys
             WHERE superseded_at IS NULL OR superseded_at + ?1 > ?2
             ORDER BY superseded_at IS NOT NULL, superseded_at DESC, created_at DESC",
        )?;
        let rows = stmt
            .query_map(params![MAX_ACCESS_TOKEN_LIFETIME_SECS, now], key_from_row)?
            .collect::<Result<Vec<_>, _>>()?;
        rows.into_iter().map(to_key).collect()
    }

    /// Adds a key and makes it current; the previous current key is marked superseded at `now`
    /// and stays available for verification. A `kid` that exists already is refused.
    pub fn add_signing_key(&self, kid: &str, seed: &[u8; 32], now: i64) -> Result<(), StoreError> {
        check_text(kid, 1, limits::KID, "signing key id")?;
        self.write(|tx| {
            let exists = tx
                .query_row("SELECT 1 FROM signing_keys WHERE kid = ?1", [kid], |_| {
                    Ok(())
                })
                .optional()?
                .is_some();
            if exists {
                return Err(StoreError::InvalidInput("signing key id already exists"));
            }
            tx.execute(
                "UPDATE signing_keys SET superseded_at = ?1 WHERE superseded_at IS NULL",
                [now],
            )?;
            tx.execute(
                "INSERT INTO signing_keys (kid, seed, created_at) VALUES (?1, ?2, ?3)",
                params![kid, &seed[..], now],
            )?;
            Ok(())
        })
    }

    /// Deletes the superseded keys whose tokens have all expired (`superseded_at +
    /// max_token_lifetime <= now`); `secure_delete` overwrites their seeds in the file. The
    /// current key is never removed. Returns how many keys were removed.
    pub fn retire_expired_keys(
        &self,
        now: i64,
        max_token_lifetime: i64,
    ) -> Result<usize, StoreError> {
        let lifetime = max_token_lifetime.max(0);
        self.write(|tx| {
            Ok(tx.execute(
                "DELETE FROM signing_keys
                 WHERE superseded_at IS NOT NULL AND superseded_at + ?1 <= ?2",
                params![lifetime, now],
            )?)
        })
    }
}
