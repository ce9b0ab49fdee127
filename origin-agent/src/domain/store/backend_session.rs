//! The agent's own ArgusAI user session: the refresh token `argus-relay backend login` obtained,
//! rotated by the running agent (see `crate::domain::proxy::backend_session`).

use rusqlite::{params, OptionalExtension};

use super::{check_text, Store, StoreError};

/// The stored session (one row at most).
#[derive(Clone, PartialEq, Eq)]
pub struct StoredBackendSession {
    pub username: String,
    /// ArgusAI's role for the user (`admin`, `operator`, `viewer`), as login reported it.
    pub role: Option<String>,
    pub refresh_token: String,
    /// Bumped by each login.
    pub generation: i64,
    pub signed_in_at: i64,
    /// When the refresh token was last rotated (or issued).
    pub rotated_at: i64,
    /// When ArgusAI refused the session, and why (cleared by the next login).
    pub refused: Option<(i64, String)>,
}

impl std::fmt::Debug for StoredBackendSession {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StoredBackendSession")
            .field("username", &self.username)
            .field("role", &self.role)
            .field("refresh_token", &"<redacted>")
            .field("generation", &self.generation)
            .field("signed_in_at", &self.signed_in_at)
            .field("rotated_at", &self.rotated_at)
            .field("refused", &self.refused)
            .finish()
    }
}

impl Store {
    /// The stored session, if the owner signed the agent in.
    pub fn backend_session(&self) -> Result<Option<StoredBackendSession>, StoreError> {
        Ok(self
            .lock()
            .query_row(
                "SELECT username, role, refresh_token, generation, signed_in_at, rotated_at,
                        refused_at, refused_reason
                 FROM backend_session WHERE id = 1",
                [],
                |r| {
                    let refused_at: Option<i64> = r.get(6)?;
                    let reason: Option<String> = r.get(7)?;
                    Ok(StoredBackendSession {
                        username: r.get(0)?,
                        role: r.get(1)?,
                        refresh_token: r.get(2)?,
                        generation: r.get(3)?,
                        signed_in_at: r.get(4)?,
                        rotated_at: r.get(5)?,
                        refused: refused_at.zip(reason),
                    })
                },
            )
            .optional()?)
    }

    /// Stores the session of a new login, replacing any previous one; returns its generation.
    pub fn save_backend_login(
        &self,
        username: &str,
        role: Option<&str>,
        refresh_token: &str,
        now: i64,
    ) -> Result<i64, StoreError> {
        check_text(username, 1, 128, "backend username")?;
        check_text(refresh_token, 1, 4096, "backend refresh token")?;
        if let Some(role) = role {
            check_text(role, 0, 32, "backend role")?;
        }
        self.write(|tx| {
            let previous: Option<i64> = tx
                .query_row(
                    "SELECT generation FROM backend_session WHERE id = 1",
                    [],
                    |r| r.get(0),
                )
                .optional()?;
            let generation = previous.unwrap_or(0) + 1;
            tx.execute(
                "INSERT OR REPLACE INTO backend_session
                   (id, username, role, refresh_token, generation, signed_in_at, rotated_at,
                    refused_at, refused_reason)
                 VALUES (1, ?1, ?2, ?3, ?4, ?5, ?5, NULL, NULL)",
                params![username, role, refresh_token, generation, now],
            )?;
            Ok(generation)
        })
    }

    /// Replaces the refresh token `old` of session `generation` by its successor. False (nothing
    /// written) if the owner signed in again meanwhile or the token was already replaced.
    pub fn rotate_backend_refresh(
        &self,
        generation: i64,
        old: &str,
        new: &str,
        now: i64,
    ) -> Result<bool, StoreError> {
        check_text(new, 1, 4096, "backend refresh token")?;
        self.write(|tx| {
            let n = tx.execute(
                "UPDATE backend_session SET refresh_token = ?3, rotated_at = ?4
                 WHERE id = 1 AND generation = ?1 AND refresh_token = ?2 AND refused_at IS NULL",
                params![generation, old, new, now],
            )?;
            Ok(n == 1)
        })
    }

    /// Records that ArgusAI refused session `generation` (a later login is left alone).
    pub fn mark_backend_session_refused(
        &self,
        generation: i64,
        reason: &str,
        now: i64,
    ) -> Result<(), StoreError> {
        let reason: String = reason
            .chars()
            .filter(|c| !c.is_control())
            .take(512)
            .collect();
        self.write(|tx| {
            tx.execute(
                "UPDATE backend_session SET refused_at = ?2, refused_reason = ?3
                 WHERE id = 1 AND generation = ?1 AND refused_at IS NULL",
                params![generation, now, reason],
            )?;
            Ok(())
        })
    }

    /// Forgets the session (`argus-relay backend logout`); true if there was one.
    pub fn delete_backend_session(&self) -> Result<bool, StoreError> {
        self.write(|tx| Ok(tx.execute("DELETE FROM backend_session WHERE id = 1", [])? == 1))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn store() -> (tempfile::TempDir, Store) {
        let dir = tempfile::tempdir().expect("temp dir");
        let s = Store::open(dir.path().join("data").join("relay.db")).expect("store opens");
        (dir, s)
    }

    #[test]
    fn a_login_is_kept_and_rotated_only_from_its_current_token() {
        let (_d, s) = store();
        assert!(s.backend_session().expect("read").is_none());
        let g = s
            .save_backend_login("admin", Some("admin"), "r1", 100)
            .expect("saved");
        assert!(s
            .rotate_backend_refresh(g, "r1", "r2", 200)
            .expect("rotate"));
        // A stale token (already rotated) changes nothing.
        assert!(!s
            .rotate_backend_refresh(g, "r1", "r3", 300)
            .expect("rotate"));
        let row = s.backend_session().expect("read").expect("present");
        assert_eq!((row.refresh_token.as_str(), row.rotated_at), ("r2", 200));
        assert!(!format!("{row:?}").contains("r2"), "Debug hides the token");
    }

    #[test]
    fn a_new_login_wins_over_the_old_sessions_rotation_and_refusal() {
        let (_d, s) = store();
        let g1 = s
            .save_backend_login("admin", None, "a1", 100)
            .expect("saved");
        let g2 = s
            .save_backend_login("admin", None, "b1", 150)
            .expect("saved");
        assert!(g2 > g1);
        assert!(!s
            .rotate_backend_refresh(g1, "a1", "a2", 200)
            .expect("rotate"));
        s.mark_backend_session_refused(g1, "revoked", 210)
            .expect("mark");
        let row = s.backend_session().expect("read").expect("present");
        assert_eq!(row.refresh_token, "b1");
        assert!(row.refused.is_none());
        s.mark_backend_session_refused(g2, "revoked", 220)
            .expect("mark");
        let row = s.backend_session().expect("read").expect("present");
        assert_eq!(row.refused, Some((220, "revoked".to_owned())));
        // A refused session is not rotated further; a login clears the refusal.
        assert!(!s
            .rotate_backend_refresh(g2, "b1", "b2", 230)
            .expect("rotate"));
        s.save_backend_login("admin", None, "c1", 240)
            .expect("saved");
        assert!(s
            .backend_session()
            .expect("read")
            .expect("present")
            .refused
            .is_none());
        assert!(s.delete_backend_session().expect("delete"));
        assert!(s.backend_session().expect("read").is_none());
    }
}
