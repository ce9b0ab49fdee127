//! The agent's Oblivious HTTP keys (sealed mode): one current key, and the one it replaced while
//! the rotation overlap lasts.

use rusqlite::{params, Row};

use super::{Store, StoreError};

/// After a rotation the superseded key is still accepted this long: phones that have not sent a
/// sealed request since learn the new key's pin inside the seal of their next one (the current
/// pin rides in every sealed answer), or re-pair after that.
pub const OHTTP_KEY_OVERLAP_SECS: i64 = 7 * 24 * 60 * 60;

/// A stored OHTTP key. `Debug` never prints the keying material.
#[derive(Clone, PartialEq, Eq)]
pub struct OhttpKeySecret {
    /// The RFC 9458 key identifier.
    pub key_id: u8,
    /// The input keying material the HPKE key pair is derived from.
    pub ikm: [u8; 32],
    pub created_at: i64,
    /// `None` for the current key.
    pub superseded_at: Option<i64>,
}

impl std::fmt::Debug for OhttpKeySecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OhttpKeySecret")
            .field("key_id", &self.key_id)
            .field("ikm", &"<redacted>")
            .field("created_at", &self.created_at)
            .field("superseded_at", &self.superseded_at)
            .finish()
    }
}

fn from_row(row: &Row<'_>) -> rusqlite::Result<(i64, Vec<u8>, i64, Option<i64>)> {
    Ok((row.get(0)?, row.get(1)?, row.get(2)?, row.get(3)?))
}

fn to_key(
    (key_id, ikm, created_at, superseded_at): (i64, Vec<u8>, i64, Option<i64>),
) -> Result<OhttpKeySecret, StoreError> {
    Ok(OhttpKeySecret {
        key_id: u8::try_from(key_id).map_err(|_| StoreError::Corrupt("ohttp key id"))?,
        ikm: ikm
            .try_into()
            .map_err(|_| StoreError::Corrupt("ohttp key material is not 32 bytes"))?,
        created_at,
        superseded_at,
    })
}

impl Store {
    /// The keys sealed requests are accepted under at `now`: the current one first, then the
    /// one superseded less than [`OHTTP_KEY_OVERLAP_SECS`] ago.
    pub fn ohttp_keys_accepted(&self, now: i64) -> Result<Vec<OhttpKeySecret>, StoreError> {
        let conn = self.lock();
        let mut stmt = conn.prepare_cached(
            "SELECT key_id, ikm, created_at, superseded_at FROM ohttp_keys
             WHERE superseded_at IS NULL OR superseded_at + ?1 > ?2
             ORDER BY superseded_at IS NOT NULL, superseded_at DESC",
        )?;
        let rows = stmt
            .query_map(params![OHTTP_KEY_OVERLAP_SECS, now], from_row)?
            .collect::<Result<Vec<_>, _>>()?;
        rows.into_iter().map(to_key).collect()
    }

    /// Makes a new key current: its id is the current one's plus one (mod 256; 0 for the first),
    /// the current key is superseded at `now`, and keys past their overlap are deleted (with
    /// `secure_delete`, their material is overwritten in the file). Returns the new key id.
    pub fn rotate_ohttp_key(&self, ikm: &[u8; 32], now: i64) -> Result<u8, StoreError> {
        self.write(|tx| {
            tx.execute(
                "DELETE FROM ohttp_keys WHERE superseded_at IS NOT NULL AND superseded_at + ?1 <= ?2",
                params![OHTTP_KEY_OVERLAP_SECS, now],
            )?;
            let current: Option<i64> = tx
                .query_row(
                    "SELECT key_id FROM ohttp_keys WHERE superseded_at IS NULL",
                    [],
                    |r| r.get(0),
                )
                .map(Some)
                .or_else(|e| match e {
                    rusqlite::Error::QueryReturnedNoRows => Ok(None),
                    e => Err(e),
                })?;
            let key_id = current.map_or(0, |id| (id + 1) % 256);
            // A key still in its overlap under the id about to be reused (256 rotations within
            // the overlap) goes now: one id, one key.
            tx.execute("DELETE FROM ohttp_keys WHERE key_id = ?1", [key_id])?;
            tx.execute(
                "UPDATE ohttp_keys SET superseded_at = ?1 WHERE superseded_at IS NULL",
                [now],
            )?;
            tx.execute(
                "INSERT INTO ohttp_keys (key_id, ikm, created_at) VALUES (?1, ?2, ?3)",
                params![key_id, &ikm[..], now],
            )?;
            u8::try_from(key_id).map_err(|_| StoreError::Corrupt("ohttp key id"))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_rotated_key_is_accepted_during_the_overlap_only() {
        let store = Store::open_in_memory().unwrap();
        assert!(store.ohttp_keys_accepted(0).unwrap().is_empty());
        assert_eq!(store.rotate_ohttp_key(&[1; 32], 100).unwrap(), 0);
        assert_eq!(store.rotate_ohttp_key(&[2; 32], 200).unwrap(), 1);

        let during = store
            .ohttp_keys_accepted(200 + OHTTP_KEY_OVERLAP_SECS - 1)
            .unwrap();
        assert_eq!(
            during.iter().map(|k| k.key_id).collect::<Vec<_>>(),
            vec![1, 0],
            "current first, then the superseded one"
        );
        assert_eq!(during[0].ikm, [2; 32]);

        let after = store
            .ohttp_keys_accepted(200 + OHTTP_KEY_OVERLAP_SECS)
            .unwrap();
        assert_eq!(after.iter().map(|k| k.key_id).collect::<Vec<_>>(), vec![1]);
    }

    #[test]
    fn key_ids_wrap_and_are_never_shared() {
        let store = Store::open_in_memory().unwrap();
        for i in 0..=256 {
            store.rotate_ohttp_key(&[i as u8; 32], i).unwrap();
        }
        let keys = store.ohttp_keys_accepted(256).unwrap();
        // 257 rotations within the overlap: id 0 came round again and replaced its first holder.
        assert_eq!(keys[0].key_id, 0);
        assert_eq!(keys[0].ikm, [0; 32]);
        assert_eq!(keys[0].created_at, 256);
        assert_eq!(keys.len(), 256);
    }
}
