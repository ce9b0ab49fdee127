//! Browser sessions for the admin page, in memory (a restart signs everyone out).
//!
//! - A **sign-in ticket** is made for the owner's CLI (`argus-relay ui`, authenticated with the
//!   admin token): 256 random bits, valid [`TICKET_TTL_SECS`], single use. It is the only secret
//!   that ever appears in a URL, so the long-lived admin token never lands in browser history.
//! - Redeeming a ticket makes a **session**: a 256-bit id (the cookie) and a 256-bit key
//!   (`csrf_token`: handed to the page's script once, in the answer to the ticket, and required
//!   on every request — the cookie alone is never enough, see [`super`]). A session ends after
//!   [`SESSION_IDLE_SECS`] without use, [`SESSION_MAX_SECS`] after sign-in, on sign-out, or when
//!   the agent restarts. It is also bound to the `Host` it was made for (defence in depth only:
//!   whoever replays a cookie chooses the `Host` they send).
//!
//! Tickets and session ids are kept only as SHA-256 hashes and looked up by hash. Time is passed
//! in, so the rules are unit-tested without waiting.

use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard};

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use sha2::{Digest, Sha256};

/// A sign-in link works this long after `argus-relay ui` printed it.
pub const TICKET_TTL_SECS: u64 = 120;
/// A session ends after this long without a request.
pub const SESSION_IDLE_SECS: u64 = 30 * 60;
/// A session ends this long after sign-in, however busy.
pub const SESSION_MAX_SECS: u64 = 12 * 3600;
/// At most this many sessions; past it the least recently used one ends.
pub const MAX_SESSIONS: usize = 16;
/// At most this many unused tickets; past it the oldest one is forgotten.
pub const MAX_TICKETS: usize = 16;
/// Random bytes in tickets, session ids and CSRF tokens.
const SECRET_BYTES: usize = 32;
/// Their base64url length (no padding).
pub const SECRET_LEN: usize = 43;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SessionError {
    #[error("no session cookie")]
    Missing,
    #[error("unknown or ended session")]
    Unknown,
    #[error("the session expired")]
    Expired,
    #[error("the session was made for another host name")]
    WrongHost,
    #[error("the sign-in link is unknown, expired or already used")]
    BadTicket,
    #[error("the system random generator failed")]
    Random,
}

/// A session just made from a ticket: the cookie value and the page's CSRF token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Established {
    pub session_id: String,
    pub csrf_token: String,
}

/// A live session, as a request presents it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Active {
    pub csrf_token: String,
}

#[derive(Debug, Clone)]
struct Session {
    csrf_token: String,
    host: String,
    created_at: u64,
    last_used: u64,
}

impl Session {
    fn expired(&self, now: u64) -> bool {
        now >= self.created_at.saturating_add(SESSION_MAX_SECS)
            || now >= self.last_used.saturating_add(SESSION_IDLE_SECS)
    }
}

#[derive(Debug, Default)]
struct Inner {
    sessions: HashMap<[u8; 32], Session>,
    /// Ticket hash → expiry.
    tickets: HashMap<[u8; 32], u64>,
}

/// The admin page's tickets and sessions. Cheap to share inside [`crate::application::state::AppState`].
#[derive(Debug, Default)]
pub struct Sessions {
    inner: Mutex<Inner>,
}

fn random_secret() -> Result<String, SessionError> {
    let mut bytes = [0u8; SECRET_BYTES];
    getrandom::getrandom(&mut bytes).map_err(|_| SessionError::Random)?;
    Ok(URL_SAFE_NO_PAD.encode(bytes))
}

/// Only strings shaped like our secrets are hashed and looked up.
fn well_formed(secret: &str) -> bool {
    secret.len() == SECRET_LEN
        && secret
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

fn hash(secret: &str) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update(b"argus-relay/admin-ui/v1\0");
    h.update(secret.as_bytes());
    h.finalize().into()
}

impl Sessions {
    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// A new single-use sign-in ticket.
    pub fn new_ticket(&self, now: u64) -> Result<String, SessionError> {
        let ticket = random_secret()?;
        let mut inner = self.lock();
        inner.tickets.retain(|_, expires| *expires > now);
        if inner.tickets.len() >= MAX_TICKETS {
            if let Some(oldest) = inner
                .tickets
                .iter()
                .min_by_key(|(_, expires)| **expires)
                .map(|(k, _)| *k)
            {
                inner.tickets.remove(&oldest);
            }
        }
        inner
            .tickets
            .insert(hash(&ticket), now.saturating_add(TICKET_TTL_SECS));
        Ok(ticket)
    }

    /// Uses up `ticket` and starts a session bound to `host`.
    pub fn redeem(&self, ticket: &str, host: &str, now: u64) -> Result<Established, SessionError> {
        if !well_formed(ticket) {
            return Err(SessionError::BadTicket);
        }
        let session_id = random_secret()?;
        let csrf_token = random_secret()?;
        let mut inner = self.lock();
        match inner.tickets.remove(&hash(ticket)) {
            Some(expires) if expires > now => {}
            _ => return Err(SessionError::BadTicket),
        }
        inner.sessions.retain(|_, s| !s.expired(now));
        if inner.sessions.len() >= MAX_SESSIONS {
            if let Some(lru) = inner
                .sessions
                .iter()
                .min_by_key(|(_, s)| s.last_used)
                .map(|(k, _)| *k)
            {
                inner.sessions.remove(&lru);
            }
        }
        inner.sessions.insert(
            hash(&session_id),
            Session {
                csrf_token: csrf_token.clone(),
                host: host.to_ascii_lowercase(),
                created_at: now,
                last_used: now,
            },
        );
        Ok(Established {
            session_id,
            csrf_token,
        })
    }

    /// The live session `session_id` names, asked for from `host`. Does not count as use: the
    /// cookie alone proves nothing (see [`super`]), so only a request that also passed the key
    /// check keeps the session alive ([`Sessions::touch`]).
    pub fn check(&self, session_id: &str, host: &str, now: u64) -> Result<Active, SessionError> {
        if !well_formed(session_id) {
            return Err(SessionError::Unknown);
        }
        let key = hash(session_id);
        let mut inner = self.lock();
        let Some(session) = inner.sessions.get_mut(&key) else {
            return Err(SessionError::Unknown);
        };
        if session.expired(now) {
            inner.sessions.remove(&key);
            return Err(SessionError::Expired);
        }
        if !session.host.eq_ignore_ascii_case(host) {
            return Err(SessionError::WrongHost);
        }
        Ok(Active {
            csrf_token: session.csrf_token.clone(),
        })
    }

    /// The session `session_id` names was used now (with its key): its idle time starts over.
    pub fn touch(&self, session_id: &str, now: u64) {
        if !well_formed(session_id) {
            return;
        }
        let key = hash(session_id);
        if let Some(session) = self.lock().sessions.get_mut(&key) {
            if !session.expired(now) {
                session.last_used = session.last_used.max(now);
            }
        }
    }

    /// Ends a session (sign-out). Unknown ids are ignored.
    pub fn end(&self, session_id: &str) {
        if well_formed(session_id) {
            self.lock().sessions.remove(&hash(session_id));
        }
    }

    #[cfg(test)]
    /// How many sessions are live (for tests and logs).
    pub fn live_sessions(&self, now: u64) -> usize {
        self.lock()
            .sessions
            .values()
            .filter(|s| !s.expired(now))
            .count()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HOST: &str = "127.0.0.1:8471";

    fn signed_in(s: &Sessions, now: u64) -> Established {
        let t = s.new_ticket(now).unwrap();
        s.redeem(&t, HOST, now).unwrap()
    }

    #[test]
    fn a_ticket_makes_one_session_and_is_single_use() {
        let s = Sessions::default();
        let t = s.new_ticket(1000).unwrap();
        assert_eq!(t.len(), SECRET_LEN);
        let e = s.redeem(&t, HOST, 1001).unwrap();
        assert_eq!(e.session_id.len(), SECRET_LEN);
        assert_eq!(e.csrf_token.len(), SECRET_LEN);
        assert_ne!(e.session_id, e.csrf_token);
        assert_ne!(e.session_id, t);
        assert_eq!(s.redeem(&t, HOST, 1002), Err(SessionError::BadTicket));
        let active = s.check(&e.session_id, HOST, 1003).unwrap();
        assert_eq!(active.csrf_token, e.csrf_token);
    }

    #[test]
    fn tickets_expire_and_unknown_or_malformed_tickets_are_refused() {
        let s = Sessions::default();
        let t = s.new_ticket(1000).unwrap();
        assert_eq!(
            s.redeem(&t, HOST, 1000 + TICKET_TTL_SECS),
            Err(SessionError::BadTicket)
        );
        let other = Sessions::default().new_ticket(1000).unwrap();
        assert_eq!(s.redeem(&other, HOST, 1001), Err(SessionError::BadTicket));
        for bad in [
            "",
            "short",
            &"a".repeat(44),
            &format!("{}!", "a".repeat(42)),
        ] {
            assert_eq!(s.redeem(bad, HOST, 1001), Err(SessionError::BadTicket));
        }
    }

    #[test]
    fn sessions_end_when_idle_too_long_or_too_old() {
        let s = Sessions::default();
        let e = signed_in(&s, 0);
        assert_eq!(
            s.check(&e.session_id, HOST, SESSION_IDLE_SECS),
            Err(SessionError::Expired)
        );
        // Gone for good once expired.
        assert_eq!(s.check(&e.session_id, HOST, 1), Err(SessionError::Unknown));

        // Kept alive by use, but never past the absolute limit.
        let e = signed_in(&s, 0);
        let mut now = 0;
        while now + SESSION_IDLE_SECS / 2 < SESSION_MAX_SECS {
            now += SESSION_IDLE_SECS / 2;
            s.check(&e.session_id, HOST, now).unwrap();
            s.touch(&e.session_id, now);
        }
        assert_eq!(
            s.check(&e.session_id, HOST, SESSION_MAX_SECS),
            Err(SessionError::Expired)
        );
    }

    #[test]
    fn a_cookie_alone_does_not_keep_a_session_alive() {
        // Someone replaying the cookie without the key is refused by the key check; their
        // requests must not stretch the owner's session to its absolute limit either.
        let s = Sessions::default();
        let e = signed_in(&s, 0);
        s.check(&e.session_id, HOST, SESSION_IDLE_SECS - 1).unwrap();
        assert_eq!(
            s.check(&e.session_id, HOST, SESSION_IDLE_SECS),
            Err(SessionError::Expired)
        );
        // An expired session is not revived by a touch.
        s.touch(&e.session_id, SESSION_IDLE_SECS + 1);
        assert_eq!(
            s.check(&e.session_id, HOST, SESSION_IDLE_SECS + 1),
            Err(SessionError::Unknown)
        );
    }

    #[test]
    fn a_session_is_bound_to_its_host() {
        let s = Sessions::default();
        let e = signed_in(&s, 0);
        assert_eq!(
            s.check(&e.session_id, "localhost:8471", 1),
            Err(SessionError::WrongHost)
        );
        assert_eq!(
            s.check(&e.session_id, "127.0.0.1:9999", 1),
            Err(SessionError::WrongHost)
        );
        assert!(s.check(&e.session_id, HOST, 1).is_ok());
    }

    #[test]
    fn sign_out_ends_only_that_session() {
        let s = Sessions::default();
        let a = signed_in(&s, 0);
        let b = signed_in(&s, 0);
        s.end(&a.session_id);
        s.end("not-a-session");
        assert_eq!(s.check(&a.session_id, HOST, 1), Err(SessionError::Unknown));
        assert!(s.check(&b.session_id, HOST, 1).is_ok());
        assert_eq!(s.live_sessions(1), 1);
    }

    #[test]
    fn unknown_and_malformed_session_ids_are_refused() {
        let s = Sessions::default();
        signed_in(&s, 0);
        let stranger = Sessions::default();
        let foreign = signed_in(&stranger, 0);
        assert_eq!(
            s.check(&foreign.session_id, HOST, 1),
            Err(SessionError::Unknown)
        );
        assert_eq!(s.check("", HOST, 1), Err(SessionError::Unknown));
        assert_eq!(s.check("x; y", HOST, 1), Err(SessionError::Unknown));
    }

    #[test]
    fn the_number_of_sessions_and_tickets_is_capped() {
        let s = Sessions::default();
        let first = signed_in(&s, 0);
        let mut later = Vec::new();
        for i in 1..=MAX_SESSIONS as u64 {
            later.push(signed_in(&s, i));
        }
        assert_eq!(s.live_sessions(100), MAX_SESSIONS);
        // The least recently used one made room.
        assert_eq!(
            s.check(&first.session_id, HOST, 100),
            Err(SessionError::Unknown)
        );
        assert!(s.check(&later[0].session_id, HOST, 100).is_ok());

        let oldest = s.new_ticket(0).unwrap();
        for i in 1..=MAX_TICKETS as u64 {
            s.new_ticket(i).unwrap();
        }
        assert_eq!(s.redeem(&oldest, HOST, 50), Err(SessionError::BadTicket));
    }
}
