//! The origin agent's durable state: one embedded SQLite database in the agent's data directory.
//!
//! The agent owns device identity. Everything that must survive a restart lives here: the
//! Ed25519 signing keys for access tokens, the secrets shared with the edge Worker, the paired
//! devices, the pairing codes and the refresh-token families.
//!
//! # Durability
//!
//! * **WAL** journal, **`synchronous=FULL`**: every commit is fsynced before the call returns, so
//!   a commit the caller has seen survives `kill -9` *and* power loss. `NORMAL` would survive
//!   `kill -9` too, but a power cut could roll back a rotation the phone already holds the new
//!   token for (the phone would then be logged out) or a pairing the phone already completed.
//!   Writes are rare (pairing, one refresh per device per access-token lifetime, revocations),
//!   so the fsync per commit costs nothing that matters. `touch_device` is throttled to one write
//!   per device per [`TOUCH_GRANULARITY_SECS`] for the same reason.
//! * **Every operation is one transaction** (`BEGIN IMMEDIATE` for anything that writes, so the
//!   read-check-write sequence cannot interleave with another writer). A pairing redemption
//!   inserts the device, marks the code `redeemed` and stores the first refresh token in the same
//!   transaction: a crash leaves either all of it or none of it. `tests/store_crash.rs` kills a
//!   writer with SIGKILL at random moments and checks exactly that.
//! * `foreign_keys=ON`, `secure_delete=ON` (retired signing-key seeds are overwritten in the
//!   file), `trusted_schema=OFF`, busy timeout [`BUSY_TIMEOUT`] (only another process, such as an
//!   operator's `sqlite3` shell or a backup, can hold the lock: inside the agent there is one
//!   connection).
//! * **Versioned migrations**: `PRAGMA user_version` is the number of migrations applied. Each
//!   migration runs in its own `BEGIN IMMEDIATE` transaction together with the `user_version`
//!   bump, so a crash mid-migration leaves the previous version; opening is idempotent. A database
//!   from a newer agent is refused ([`StoreError::SchemaTooNew`]) rather than misread.
//!
//! # File permissions
//!
//! The data directory is created `0700` (and tightened to `0700` if it already exists; a sticky,
//! shared directory such as `/tmp` is refused). The database file is created `0600` before SQLite
//! opens it (`O_NOFOLLOW` for SQLite's own open); SQLite gives `-wal` and `-shm` the mode of the
//! database file, and [`Store::open`] re-applies `0600` to all three after opening anyway. The
//! process umask is never touched (it is process-global and other threads create files).
//!
//! # Secrets at rest
//!
//! * Pairing codes are stored only as `SHA-256("argus-relay/pairing-code/v1\0" || code)` and are
//!   looked up by that hash: the timing of the index lookup depends on the hash, which tells a
//!   guesser nothing about the code. (A short code can be brute-forced from its hash by someone
//!   who can read the file; the file is `0600` and codes live minutes.)
//! * Refresh tokens are stored only as `SHA-256(token)` ([`refresh_token_hash`]); the caller
//!   hashes, the store never sees the token.
//! * Secrets compared in Rust ([`Store::secret_matches`], the phone's device id on exchange) use
//!   `subtle`'s constant-time equality.
//! * Signing-key seeds and secrets are stored raw: the database *is* the agent's key store,
//!   protected by the file permissions. `Debug` of [`SigningKey`] never prints the seed.
//!
//! # Brute-force design for pairing codes
//!
//! A wrong code does not identify a row, so "10 tries per code" cannot be counted on the code the
//! guesser typed. Instead every failed attempt is charged to **every live code it could have hit**:
//!
//! * Each endpoint that takes a code targets one kind: [`Store::redeem_owner_code`] targets
//!   owner-initiated codes; [`Store::exchange_phone_code`] and [`Store::pairing_status`] target
//!   phone-initiated codes. When such a call does not end in success or a legitimate "not yet"
//!   (unknown code, code of the other kind, expired, denied, already redeemed, locked), the store
//!   increments `failed_attempts` on every *live* code of the targeted kind (state `pending` or
//!   `confirmed`, unexpired, not locked), in the same transaction, and the caller gets one
//!   indistinguishable [`PairError::InvalidCode`] (or `None` from `pairing_status`).
//! * A code with `failed_attempts >= MAX_FAILED_ATTEMPTS` (10) is dead for every purpose.
//!   So each code faces at most 10 guesses in its whole lifetime, from all IPs together, and an
//!   attacker's chance of hitting any of the `k` live codes of a kind is at most `10·k / |code
//!   space|`. `k` is capped by [`MAX_LIVE_CODES_PER_KIND`].
//! * [`PairError::DeviceMismatch`] (the phone-supplied device id differs from the one that asked)
//!   reveals that the code exists, so the code is **denied on the spot**: the oracle only ever
//!   reveals a dead code. `NotConfirmed` (the code exists and waits for the owner) is not counted,
//!   because the legitimate phone may ask early; it reveals only what the 10-guess cap already
//!   bounds.
//! * The price is that a flood of wrong guesses kills the live codes (denial of service, never
//!   compromise): the owner makes a new code. To keep honest users from paying for one attacker,
//!   the agent keeps a **per-IP failure window in memory** (not here: it is not worth an fsync per
//!   guess and restarts may forget it) and rejects an IP with too many recent failures before it
//!   reaches the store. [`Store::record_failed_attempt`] lets the agent charge a failure that it
//!   detected itself (e.g. a malformed code) to the live codes as well.
//! * Codes must be generated by the agent from a CSPRNG, never chosen by a client: creating a code
//!   that already exists returns [`PairError::CodeInUse`], which would be an existence oracle for
//!   a client-chosen code. On `CodeInUse` the caller draws a new code.
//! * Confirming and denying phone pairings are owner (admin) operations, authenticated by the
//!   caller; their misses are not counted.
//!
//! # Refresh tokens
//!
//! Tokens belong to a *family* (one per pairing). Rotation marks the presented token used and
//! inserts its successor in the same family, atomically. Presenting a token that was already used
//! means two parties hold the chain: the whole family is revoked, and its device with it
//! (committed, even though the call returns [`RefreshError::Reused`]), with one exception: the
//! token rotated just before, presented again once within [`REFRESH_REUSE_GRACE_SECS`] while its
//! successor is still unused, is taken as a retry after a lost answer and rotated again (the
//! unused successor is superseded and counts as used). Revoking a device revokes all its families
//! in the same transaction. Tokens live [`REFRESH_TOKEN_LIFETIME_SECS`] (30 days) from issue.
//!
//! # Signing keys
//!
//! [`Store::add_signing_key`] makes the new key current and stamps the previous current key
//! `superseded_at = now`. A superseded key is returned by
//! [`Store::signing_keys_for_verification`] until `superseded_at + MAX_ACCESS_TOKEN_LIFETIME_SECS`
//! (every token it signed has expired by then) and is deleted (seed overwritten, see
//! `secure_delete`) by [`Store::retire_expired_keys`].
//!
//! # Concurrency
//!
//! [`Store`] is `Send + Sync`: one `rusqlite::Connection` behind a `std::sync::Mutex`, shared by
//! all tokio tasks (`Arc<Store>`). Reads take microseconds. Writes take one fsync (well under a
//! millisecond on an SSD, up to tens of milliseconds on an SD card), during which the mutex is
//! held. Async code therefore runs every writing method through [`Store::off_worker`], which
//! runs it on tokio's blocking pool so that a slow disk never stalls the tasks of a runtime
//! worker thread; the cheap reads (`is_device_active`, `signing_keys_for_verification`, ...)
//! may be called directly. Synchronous code (the CLI, start-up) calls the methods directly. A panic inside an operation rolls its transaction back while
//! unwinding, so a poisoned mutex is recovered rather than propagated.

mod backend_session;
mod devices;
mod migrations;
mod ohttp_keys;
mod pairing;
mod refresh;
mod secrets;
mod signing_keys;
#[cfg(test)]
mod tests;

use std::fs;
use std::io;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use rusqlite::{Connection, OpenFlags, Transaction, TransactionBehavior};
use serde::Serialize;

pub use backend_session::StoredBackendSession;
pub use ohttp_keys::{OhttpKeySecret, OHTTP_KEY_OVERLAP_SECS};
pub use pairing::{PairingKind, PairingStatus, PendingPairing, PhonePairingRequest};
pub use refresh::{refresh_token_hash, RefreshOutcome};
pub use signing_keys::SigningKey;

/// Upper bound of an access token's lifetime: a key superseded longer ago than this signed no
/// token that is still valid.
pub const MAX_ACCESS_TOKEN_LIFETIME_SECS: i64 =
    argus_shared::token::MAX_ACCESS_TOKEN_LIFETIME_SECS as i64;
/// Lifetime of each refresh token, counted from its issue (rotation issues a fresh one).
pub const REFRESH_TOKEN_LIFETIME_SECS: i64 = 30 * 24 * 60 * 60;
/// How long after a rotation the token just rotated may be presented once more and be answered
/// with a fresh pair instead of revoking its family (OAuth 2.0 Security BCP, refresh token
/// rotation: a short reuse leeway). It covers a rotation answer lost in flight (workerd restarted,
/// a client timeout under load): the phone then retries with the token it still holds. 30 s is a
/// few client timeouts long and short enough that a stolen token replayed later still revokes.
pub const REFRESH_REUSE_GRACE_SECS: i64 = 30;
/// A pairing code dies after this many failed attempts charged to it.
pub const MAX_FAILED_ATTEMPTS: i64 = 10;
/// At most this many live (pending or confirmed, unexpired, unlocked) codes of each kind.
pub const MAX_LIVE_CODES_PER_KIND: i64 = 16;
/// `touch_device` writes `last_seen_at` at most once per this many seconds per device.
pub const TOUCH_GRANULARITY_SECS: i64 = 60;
/// How long a statement waits for a lock held by another process.
pub const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// Storage failures: SQLite, the file system, or a database this agent cannot use.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("sqlite: {0}")]
    Sqlite(#[from] rusqlite::Error),
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("refusing {path}: {reason}")]
    InsecurePath { path: PathBuf, reason: &'static str },
    #[error("could not enable WAL: journal_mode is {0:?}")]
    WalUnavailable(String),
    #[error("database schema version {found} is newer than this agent understands ({supported})")]
    SchemaTooNew { found: i64, supported: i64 },
    #[error("database schema version {0} is invalid")]
    BadSchemaVersion(i64),
    /// A caller-supplied value is malformed (empty, too long, control characters, duplicate key id).
    #[error("invalid input: {0}")]
    InvalidInput(&'static str),
    /// A stored value the store itself wrote cannot be read back (e.g. an unknown scope string).
    #[error("corrupt row: {0}")]
    Corrupt(&'static str),
    /// [`Store::off_worker`]'s operation never ran: the runtime is shutting down.
    #[error("the operation was dropped: the runtime is shutting down")]
    ShuttingDown,
}

impl StoreError {
    /// The disk (or the database's quota) is full: SQLite's `SQLITE_FULL`, or `ENOSPC` on a file
    /// the store writes. Nothing was written; the same request succeeds once space is back.
    pub fn is_disk_full(&self) -> bool {
        match self {
            StoreError::Sqlite(rusqlite::Error::SqliteFailure(e, _)) => {
                e.code == rusqlite::ErrorCode::DiskFull
            }
            StoreError::Io { source, .. } => source.kind() == io::ErrorKind::StorageFull,
            _ => false,
        }
    }
}

#[cfg(test)]
mod disk_full_tests {
    use super::*;

    #[test]
    fn a_full_disk_is_told_apart_from_other_store_failures() {
        let sqlite = |code| {
            StoreError::Sqlite(rusqlite::Error::SqliteFailure(
                rusqlite::ffi::Error::new(code),
                None,
            ))
        };
        assert!(sqlite(rusqlite::ffi::SQLITE_FULL).is_disk_full());
        assert!(!sqlite(rusqlite::ffi::SQLITE_CORRUPT).is_disk_full());
        let io = |kind| StoreError::Io {
            path: PathBuf::from("relay.db"),
            source: io::Error::from(kind),
        };
        assert!(io(io::ErrorKind::StorageFull).is_disk_full());
        assert!(!io(io::ErrorKind::PermissionDenied).is_disk_full());
        assert!(!StoreError::Corrupt("scope").is_disk_full());
    }
}

/// Failures of the pairing operations.
#[derive(Debug, thiserror::Error)]
pub enum PairError {
    /// Unknown, expired, already used, denied, locked or of the wrong kind: deliberately one
    /// variant, so a caller cannot tell a guesser which.
    #[error("invalid pairing code")]
    InvalidCode,
    /// Phone-initiated code still waiting for the owner's confirmation.
    #[error("pairing not confirmed yet")]
    NotConfirmed,
    /// The phone that exchanges is not the phone that asked; the code has been denied.
    #[error("device does not match the pairing request")]
    DeviceMismatch,
    /// The code already exists (draw a new one).
    #[error("pairing code already in use")]
    CodeInUse,
    /// Too many live codes of this kind.
    #[error("too many pending pairings")]
    TooManyPending,
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Failures of refresh-token rotation.
#[derive(Debug, thiserror::Error)]
pub enum RefreshError {
    #[error("unknown refresh token")]
    Unknown,
    #[error("refresh token expired")]
    Expired,
    /// The token had already been used: its whole family is now revoked.
    #[error("refresh token reused; session revoked")]
    Reused,
    /// The token's family was revoked (earlier reuse, logout).
    #[error("refresh token revoked")]
    Revoked,
    /// The device was revoked.
    #[error("device revoked")]
    DeviceRevoked,
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// What a device may do: the same scope its tokens carry (stored as [`Scope::as_str`]).
pub use argus_shared::token::Scope;

/// Reads a `scope` column (the schema's CHECK allows only `owner` and `viewer`).
pub(super) fn scope_column(row: &rusqlite::Row<'_>, index: usize) -> rusqlite::Result<Scope> {
    let text: String = row.get(index)?;
    Scope::parse(&text).ok_or_else(|| {
        rusqlite::Error::FromSqlConversionFailure(
            index,
            rusqlite::types::Type::Text,
            format!("unknown scope {text:?}").into(),
        )
    })
}

/// A paired device.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Device {
    pub id: String,
    pub name: String,
    pub model: Option<String>,
    pub platform: Option<String>,
    pub os_version: Option<String>,
    pub app_version: Option<String>,
    /// The phone app's own identifier for itself, if it sent one.
    pub phone_device_id: Option<String>,
    pub scope: Scope,
    pub created_at: i64,
    pub last_seen_at: Option<i64>,
    pub revoked_at: Option<i64>,
    /// When a refresh family of this device was revoked because a used refresh token came back
    /// (evidence of a copy). Such a device is revoked too (in the same transaction; in databases
    /// from before that, only its family was).
    pub reuse_detected_at: Option<i64>,
}

impl Device {
    pub fn is_active(&self) -> bool {
        self.revoked_at.is_none() && self.reuse_detected_at.is_none()
    }

    /// When the device stopped being active, if it did.
    pub fn ended_at(&self) -> Option<i64> {
        self.revoked_at.or(self.reuse_detected_at)
    }
}

/// What the phone says about itself when it redeems an owner-initiated code.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DeviceInfo {
    pub name: String,
    pub model: Option<String>,
    pub platform: Option<String>,
    pub os_version: Option<String>,
    pub app_version: Option<String>,
    pub phone_device_id: Option<String>,
}

/// An entry of the edge's revocation list.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RevokedDevice {
    pub id: String,
    pub revoked_at: i64,
}

/// The agent's database. Cheap to share: `Arc<Store>`.
pub struct Store {
    conn: Mutex<Connection>,
    path: Option<PathBuf>,
    /// Bumped after every device revocation commits: caches of "this device is active" are valid
    /// only while it is unchanged ([`Store::revocation_generation`]).
    revocations: std::sync::atomic::AtomicU64,
    /// The same generation, for those who wait for a revocation ([`Store::watch_revocations`]).
    revocation_feed: tokio::sync::watch::Sender<u64>,
}

const _: () = {
    const fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<Store>();
};

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store")
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

impl Store {
    /// Opens (creating if needed) the database at `path`, whose parent is the agent's data
    /// directory, and brings its schema up to date.
    pub fn open(path: impl AsRef<Path>) -> Result<Store, StoreError> {
        let path = path.as_ref();
        prepare_path(path)?;
        let flags = OpenFlags::SQLITE_OPEN_READ_WRITE
            | OpenFlags::SQLITE_OPEN_CREATE
            | OpenFlags::SQLITE_OPEN_NO_MUTEX
            | OpenFlags::SQLITE_OPEN_NOFOLLOW;
        let mut conn = Connection::open_with_flags(path, flags)?;
        conn.busy_timeout(BUSY_TIMEOUT)?;
        let mode: String = conn.query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0))?;
        if !mode.eq_ignore_ascii_case("wal") {
            return Err(StoreError::WalUnavailable(mode));
        }
        conn.pragma_update(None, "synchronous", "FULL")?;
        configure(&conn)?;
        migrations::migrate(&mut conn)?;
        // The migration transaction has created -wal and -shm (with the database file's mode);
        // make sure of 0600 whatever the history of these files.
        for sidecar in [sidecar_path(path, "-wal"), sidecar_path(path, "-shm")] {
            match fs::symlink_metadata(&sidecar) {
                Ok(_) => set_mode(&sidecar, 0o600)?,
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => return Err(io_err(&sidecar, e)),
            }
        }
        Ok(Store {
            conn: Mutex::new(conn),
            path: Some(path.to_path_buf()),
            revocations: Default::default(),
            revocation_feed: tokio::sync::watch::Sender::new(0),
        })
    }

    /// A private in-memory database with the same schema (tests).
    pub fn open_in_memory() -> Result<Store, StoreError> {
        let mut conn = Connection::open_in_memory()?;
        configure(&conn)?;
        migrations::migrate(&mut conn)?;
        Ok(Store {
            conn: Mutex::new(conn),
            path: None,
            revocations: Default::default(),
            revocation_feed: tokio::sync::watch::Sender::new(0),
        })
    }

    /// Changes whenever a device is revoked (after the revocation is committed).
    pub fn revocation_generation(&self) -> u64 {
        self.revocations.load(std::sync::atomic::Ordering::Acquire)
    }

    /// Wakes its holder after each device revocation commits (any path: the owner, the device
    /// itself, `revoke_all`, refresh-token reuse). It says that *a* device was revoked; the
    /// holder asks [`Store::is_device_active`] about its own (open WebSockets,
    /// [`crate::domain::proxy::ws_bridge`]).
    pub fn watch_revocations(&self) -> tokio::sync::watch::Receiver<u64> {
        self.revocation_feed.subscribe()
    }

    /// After a transaction that may have revoked a device: forget every cached "active" and wake
    /// the watchers. Called whether or not the transaction committed (harmless: they look again).
    fn note_revocation(&self) {
        let generation = self
            .revocations
            .fetch_add(1, std::sync::atomic::Ordering::AcqRel)
            + 1;
        self.revocation_feed.send_replace(generation);
    }

    /// The database file, `None` in memory.
    pub fn path(&self) -> Option<&Path> {
        self.path.as_deref()
    }

    /// The schema version (`PRAGMA user_version`).
    pub fn schema_version(&self) -> Result<i64, StoreError> {
        Ok(self
            .lock()
            .query_row("PRAGMA user_version", [], |r| r.get(0))?)
    }

    /// `PRAGMA integrity_check` and `PRAGMA foreign_key_check`: `true` when both find nothing.
    pub fn integrity_check(&self) -> Result<bool, StoreError> {
        let conn = self.lock();
        let mut stmt = conn.prepare("PRAGMA integrity_check")?;
        let rows = stmt
            .query_map([], |r| r.get::<_, String>(0))?
            .collect::<Result<Vec<_>, _>>()?;
        if rows != ["ok"] {
            return Ok(false);
        }
        let mut stmt = conn.prepare("PRAGMA foreign_key_check")?;
        let mut rows = stmt.query([])?;
        Ok(rows.next()?.is_none())
    }

    fn lock(&self) -> MutexGuard<'_, Connection> {
        // A panic while the lock was held unwound through the transaction guard, which rolled
        // back: the connection is consistent.
        self.conn.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Runs `op` (a writing method, which fsyncs) on tokio's blocking pool, off the runtime's
    /// worker threads, and returns its result. The operation starts at once: dropping the
    /// returned future (a client that went away) does not cancel it, so a write that has started
    /// is finished and its side effects (a revocation's watchers, a charged attempt) happen. A
    /// panic inside `op` resumes in the caller, as if `op` had been called directly.
    pub fn off_worker<T, E>(
        self: &std::sync::Arc<Self>,
        op: impl FnOnce(&Store) -> Result<T, E> + Send + 'static,
    ) -> impl std::future::Future<Output = Result<T, E>> + Send + 'static
    where
        T: Send + 'static,
        E: From<StoreError> + Send + 'static,
    {
        let store = std::sync::Arc::clone(self);
        let task = tokio::task::spawn_blocking(move || op(&store));
        async move {
            match task.await {
                Ok(result) => result,
                Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
                Err(_) => Err(StoreError::ShuttingDown.into()),
            }
        }
    }

    /// Runs `f` in one `BEGIN IMMEDIATE` transaction; commits if it returns `Ok`. Domain
    /// outcomes whose side effects must persist even though the call fails (a failed attempt
    /// charged to codes, a family revoked on reuse) are returned inside the `Ok`.
    fn write<T>(
        &self,
        f: impl FnOnce(&Transaction<'_>) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let mut conn = self.lock();
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let out = f(&tx)?;
        tx.commit()?;
        Ok(out)
    }
}

fn configure(conn: &Connection) -> Result<(), StoreError> {
    conn.busy_timeout(BUSY_TIMEOUT)?;
    conn.pragma_update(None, "foreign_keys", "ON")?;
    conn.pragma_update(None, "secure_delete", "ON")?;
    conn.pragma_update(None, "trusted_schema", "OFF")?;
    let fk: i64 = conn.query_row("PRAGMA foreign_keys", [], |r| r.get(0))?;
    if fk != 1 {
        return Err(StoreError::Corrupt("foreign keys cannot be enabled"));
    }
    Ok(())
}

/// Data directory 0700, database file 0600 (created so, never world-readable for an instant).
fn prepare_path(path: &Path) -> Result<(), StoreError> {
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    match fs::metadata(&dir) {
        Err(e) if e.kind() == io::ErrorKind::NotFound => fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(&dir)
            .map_err(|e| io_err(&dir, e))?,
        Err(e) => return Err(io_err(&dir, e)),
        Ok(_) => {}
    }
    let meta = fs::metadata(&dir).map_err(|e| io_err(&dir, e))?;
    if !meta.is_dir() {
        return Err(StoreError::InsecurePath {
            path: dir,
            reason: "not a directory",
        });
    }
    let mode = meta.permissions().mode();
    if mode & 0o1000 != 0 {
        return Err(StoreError::InsecurePath {
            path: dir,
            reason: "shared (sticky) directory; use a private data directory",
        });
    }
    if mode & 0o777 != 0o700 {
        set_mode(&dir, 0o700)?;
    }

    match fs::symlink_metadata(path) {
        Ok(m) if m.file_type().is_symlink() => {
            return Err(StoreError::InsecurePath {
                path: path.to_path_buf(),
                reason: "database path is a symbolic link",
            })
        }
        Ok(m) if !m.is_file() => {
            return Err(StoreError::InsecurePath {
                path: path.to_path_buf(),
                reason: "database path is not a regular file",
            })
        }
        Ok(_) => {}
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            match fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(path)
            {
                Ok(_) => {}
                // Created concurrently by another opener: fine, fixed below.
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
                Err(e) => return Err(io_err(path, e)),
            }
        }
        Err(e) => return Err(io_err(path, e)),
    }
    set_mode(path, 0o600)?;
    for suffix in ["-wal", "-shm", "-journal"] {
        let sidecar = sidecar_path(path, suffix);
        match fs::symlink_metadata(&sidecar) {
            Ok(m) if m.file_type().is_symlink() => {
                return Err(StoreError::InsecurePath {
                    path: sidecar,
                    reason: "database sidecar is a symbolic link",
                })
            }
            Ok(_) => set_mode(&sidecar, 0o600)?,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(io_err(&sidecar, e)),
        }
    }
    Ok(())
}

fn sidecar_path(path: &Path, suffix: &str) -> PathBuf {
    let mut s = path.as_os_str().to_os_string();
    s.push(suffix);
    PathBuf::from(s)
}

fn set_mode(path: &Path, mode: u32) -> Result<(), StoreError> {
    fs::set_permissions(path, fs::Permissions::from_mode(mode)).map_err(|e| io_err(path, e))
}

fn io_err(path: &Path, source: io::Error) -> StoreError {
    StoreError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// Flattens `write`'s nested result: the outer error is storage, the inner a domain outcome.
fn flatten<T, E: From<StoreError>>(r: Result<Result<T, E>, StoreError>) -> Result<T, E> {
    r.map_err(E::from)?
}

/// Checks a caller-supplied text field: `min..=max` characters, no control characters.
fn check_text(value: &str, min: usize, max: usize, what: &'static str) -> Result<(), StoreError> {
    let n = value.chars().count();
    if n < min || n > max || value.chars().any(char::is_control) {
        return Err(StoreError::InvalidInput(what));
    }
    Ok(())
}

fn check_opt_text(value: Option<&str>, max: usize, what: &'static str) -> Result<(), StoreError> {
    match value {
        Some(v) => check_text(v, 0, max, what),
        None => Ok(()),
    }
}

/// Field limits, mirrored by the schema's CHECK constraints.
pub(crate) mod limits {
    pub const DEVICE_ID: usize = 64;
    pub const FAMILY_ID: usize = 64;
    pub const NAME: usize = 128;
    pub const MODEL: usize = 128;
    pub const SHORT: usize = 64;
    pub const PHONE_DEVICE_ID: usize = 128;
    pub const CODE: usize = 128;
    pub const KID: usize = 128;
    pub const SECRET_NAME: usize = 64;
}
