//! Named secrets (`edge_hmac`, `admin_token`, ...). Written once; never silently replaced.

use rusqlite::{params, OptionalExtension};
use subtle::ConstantTimeEq;

use super::{check_text, limits, Store, StoreError};

impl Store {
    /// The secret called `name`, if set.
    pub fn get_secret(&self, name: &str) -> Result<Option<Vec<u8>>, StoreError> {
        Ok(self
            .lock()
            .query_row("SELECT value FROM secrets WHERE name = ?1", [name], |r| {
                r.get(0)
            })
            .optional()?)
    }

    /// Stores `value` under `name` unless a secret of that name exists. Returns `true` if it was
    /// stored, `false` if the existing secret was kept (read it with [`Store::get_secret`]).
    pub fn put_secret_if_absent(
        &self,
        name: &str,
        value: &[u8],
        now: i64,
    ) -> Result<bool, StoreError> {
        check_text(name, 1, limits::SECRET_NAME, "secret name")?;
        self.write(|tx| {
            let n = tx.execute(
                "INSERT INTO secrets (name, value, created_at) VALUES (?1, ?2, ?3)
                 ON CONFLICT (name) DO NOTHING",
                params![name, value, now],
            )?;
            Ok(n == 1)
        })
    }

    /// Whether `candidate` equals the secret called `name`, compared in constant time (for a
    /// given length). `false` if the secret is not set.
    pub fn secret_matches(&self, name: &str, candidate: &[u8]) -> Result<bool, StoreError> {
        Ok(match self.get_secret(name)? {
            Some(stored) => bool::from(stored.as_slice().ct_eq(candidate)),
            None => false,
        })
    }
}
