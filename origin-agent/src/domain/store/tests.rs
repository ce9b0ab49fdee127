//! Specifications of the store, one operation at a time.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use super::*;

const T0: i64 = 1_700_000_000;

/// A private temporary directory, removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new(tag: &str) -> TempDir {
        let mut bytes = [0u8; 8];
        getrandom::getrandom(&mut bytes).expect("random");
        let dir = std::env::temp_dir().join(format!("argus-store-{tag}-{}", hex::encode(bytes)));
        std::fs::create_dir(&dir).expect("create temp dir");
        TempDir(dir)
    }

    fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn store() -> Store {
    Store::open_in_memory().expect("in-memory store")
}

fn h(n: u8) -> [u8; 32] {
    refresh_token_hash(&[n])
}

fn phone_info(name: &str) -> DeviceInfo {
    DeviceInfo {
        name: name.into(),
        model: Some("iPhone15,2".into()),
        platform: Some("ios".into()),
        os_version: Some("17.4".into()),
        app_version: Some("1.2.0".into()),
        phone_device_id: Some("PHONE-A".into()),
    }
}

fn phone_request(id: &str) -> PhonePairingRequest {
    PhonePairingRequest {
        phone_device_id: id.into(),
        platform: Some("ios".into()),
        name: "Alice's iPhone".into(),
        model: Some("iPhone15,2".into()),
    }
}

/// A store with one paired owner device `dev-1`, refresh token `h(1)`, family `fam-1`.
fn paired() -> Store {
    let s = store();
    s.create_pairing_code("123456", Scope::Owner, T0 + 600, T0)
        .unwrap();
    s.redeem_owner_code("123456", &phone_info("phone"), "dev-1", &h(1), "fam-1", T0)
        .unwrap();
    s
}

fn mode(p: &Path) -> u32 {
    std::fs::metadata(p).unwrap().permissions().mode() & 0o7777
}

fn count(s: &Store, sql: &str) -> i64 {
    s.lock().query_row(sql, [], |r| r.get(0)).unwrap()
}

// ---------------------------------------------------------------------------------------------
// open, migrations, permissions

#[test]
fn open_creates_private_files_in_wal_mode() {
    let tmp = TempDir::new("perms");
    std::fs::set_permissions(tmp.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let dir = tmp.path().join("data");
    let db = dir.join("agent.db");
    let s = Store::open(&db).unwrap();
    s.put_secret_if_absent("edge_hmac", b"k", T0).unwrap();
    assert_eq!(mode(&dir), 0o700);
    assert_eq!(mode(&db), 0o600);
    assert_eq!(mode(&super::sidecar_path(&db, "-wal")), 0o600);
    assert_eq!(mode(&super::sidecar_path(&db, "-shm")), 0o600);
    let conn = s.lock();
    let jm: String = conn
        .query_row("PRAGMA journal_mode", [], |r| r.get(0))
        .unwrap();
    let sync: i64 = conn
        .query_row("PRAGMA synchronous", [], |r| r.get(0))
        .unwrap();
    let fk: i64 = conn
        .query_row("PRAGMA foreign_keys", [], |r| r.get(0))
        .unwrap();
    assert_eq!(jm, "wal");
    assert_eq!(sync, 2, "synchronous=FULL");
    assert_eq!(fk, 1);
}

#[test]
fn open_tightens_existing_loose_permissions() {
    let tmp = TempDir::new("tighten");
    let db = tmp.path().join("agent.db");
    drop(Store::open(&db).unwrap());
    for p in [
        tmp.path().to_path_buf(),
        db.clone(),
        super::sidecar_path(&db, "-wal"),
    ] {
        if p.exists() {
            let m = if p.is_dir() { 0o777 } else { 0o666 };
            std::fs::set_permissions(&p, std::fs::Permissions::from_mode(m)).unwrap();
        }
    }
    let s = Store::open(&db).unwrap();
    s.put_secret_if_absent("x", b"y", T0).unwrap();
    assert_eq!(mode(tmp.path()), 0o700);
    assert_eq!(mode(&db), 0o600);
    assert_eq!(mode(&super::sidecar_path(&db, "-wal")), 0o600);
    assert_eq!(mode(&super::sidecar_path(&db, "-shm")), 0o600);
}

#[test]
fn open_refuses_sticky_shared_directory_and_symlinks() {
    let tmp = TempDir::new("sticky");
    let shared = tmp.path().join("shared");
    std::fs::create_dir(&shared).unwrap();
    std::fs::set_permissions(&shared, std::fs::Permissions::from_mode(0o1777)).unwrap();
    assert!(matches!(
        Store::open(shared.join("agent.db")),
        Err(StoreError::InsecurePath { .. })
    ));

    let private = tmp.path().join("private");
    std::fs::create_dir(&private).unwrap();
    std::os::unix::fs::symlink(tmp.path().join("elsewhere.db"), private.join("agent.db")).unwrap();
    assert!(matches!(
        Store::open(private.join("agent.db")),
        Err(StoreError::InsecurePath { .. })
    ));
}

#[test]
fn reopen_is_idempotent_and_keeps_data() {
    let tmp = TempDir::new("reopen");
    let db = tmp.path().join("agent.db");
    {
        let s = Store::open(&db).unwrap();
        assert_eq!(s.schema_version().unwrap(), migrations::LATEST);
        s.create_pairing_code("111111", Scope::Owner, T0 + 600, T0)
            .unwrap();
        s.redeem_owner_code("111111", &phone_info("p"), "dev-1", &h(1), "fam-1", T0)
            .unwrap();
        s.put_secret_if_absent("admin_token", b"secret", T0)
            .unwrap();
    }
    for _ in 0..3 {
        let s = Store::open(&db).unwrap();
        assert_eq!(s.schema_version().unwrap(), migrations::LATEST);
        assert_eq!(s.device_count().unwrap(), 1);
        assert_eq!(s.get_secret("admin_token").unwrap().unwrap(), b"secret");
        assert!(s.integrity_check().unwrap());
    }
}

#[test]
fn newer_schema_is_refused() {
    let tmp = TempDir::new("newer");
    let db = tmp.path().join("agent.db");
    {
        let s = Store::open(&db).unwrap();
        s.lock()
            .pragma_update(None, "user_version", migrations::LATEST + 1)
            .unwrap();
    }
    assert!(matches!(
        Store::open(&db),
        Err(StoreError::SchemaTooNew { .. })
    ));
}

#[test]
fn a_failed_migration_leaves_the_previous_version() {
    // Migrations run in a transaction: a failing one must not leave a half-built schema.
    let mut conn = rusqlite::Connection::open_in_memory().unwrap();
    conn.execute_batch("CREATE TABLE signing_keys (x INTEGER);")
        .unwrap();
    assert!(migrations::migrate(&mut conn).is_err());
    let v: i64 = conn
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .unwrap();
    assert_eq!(v, 0);
    let tables: i64 = conn
        .query_row(
            "SELECT count(*) FROM sqlite_schema WHERE type = 'table'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(tables, 1, "nothing of migration 1 remains");
}

#[test]
fn integrity_check_passes_on_a_fresh_store() {
    assert!(paired().integrity_check().unwrap());
}

// ---------------------------------------------------------------------------------------------
// signing keys

#[test]
fn key_rotation_keeps_previous_keys_for_verification_until_tokens_expire() {
    let s = store();
    assert!(s.current_signing_key().unwrap().is_none());
    s.add_signing_key("k1", &[1; 32], T0).unwrap();
    assert_eq!(s.current_signing_key().unwrap().unwrap().kid, "k1");

    s.add_signing_key("k2", &[2; 32], T0 + 100).unwrap();
    let cur = s.current_signing_key().unwrap().unwrap();
    assert_eq!((cur.kid.as_str(), cur.seed), ("k2", [2; 32]));

    let kids = |now| -> Vec<String> {
        s.signing_keys_for_verification(now)
            .unwrap()
            .into_iter()
            .map(|k| k.kid)
            .collect()
    };
    assert_eq!(kids(T0 + 100), ["k2", "k1"]);
    assert_eq!(
        kids(T0 + 100 + MAX_ACCESS_TOKEN_LIFETIME_SECS - 1),
        ["k2", "k1"]
    );
    assert_eq!(kids(T0 + 100 + MAX_ACCESS_TOKEN_LIFETIME_SECS), ["k2"]);

    // Retirement: not before every token k1 signed has expired.
    let life = MAX_ACCESS_TOKEN_LIFETIME_SECS;
    assert_eq!(s.retire_expired_keys(T0 + 100 + life - 1, life).unwrap(), 0);
    assert_eq!(s.retire_expired_keys(T0 + 100 + life, life).unwrap(), 1);
    assert_eq!(kids(T0), ["k2"], "k1 is gone for good");
    // The current key is never retired.
    assert_eq!(s.retire_expired_keys(T0 + 10 * life, 0).unwrap(), 0);
    assert_eq!(s.current_signing_key().unwrap().unwrap().kid, "k2");
}

#[test]
fn duplicate_kid_is_refused_and_debug_redacts_seed() {
    let s = store();
    s.add_signing_key("k1", &[7; 32], T0).unwrap();
    assert!(matches!(
        s.add_signing_key("k1", &[8; 32], T0 + 1),
        Err(StoreError::InvalidInput(_))
    ));
    assert_eq!(s.current_signing_key().unwrap().unwrap().seed, [7; 32]);
    let dbg = format!("{:?}", s.current_signing_key().unwrap().unwrap());
    assert!(dbg.contains("redacted") && !dbg.contains("7, 7"));
    assert!(s.add_signing_key("", &[1; 32], T0).is_err());
}

// ---------------------------------------------------------------------------------------------
// secrets

#[test]
fn secrets_are_never_silently_replaced() {
    let s = store();
    assert_eq!(s.get_secret("edge_hmac").unwrap(), None);
    assert!(s.put_secret_if_absent("edge_hmac", b"first", T0).unwrap());
    assert!(!s.put_secret_if_absent("edge_hmac", b"second", T0).unwrap());
    assert_eq!(s.get_secret("edge_hmac").unwrap().unwrap(), b"first");
    assert!(s.secret_matches("edge_hmac", b"first").unwrap());
    assert!(!s.secret_matches("edge_hmac", b"firsT").unwrap());
    assert!(!s.secret_matches("edge_hmac", b"firs").unwrap());
    assert!(!s.secret_matches("admin_token", b"").unwrap());
}

// ---------------------------------------------------------------------------------------------
// owner-initiated pairing

#[test]
fn owner_code_redeems_once_into_device_and_refresh_token() {
    let s = store();
    s.create_pairing_code("123456", Scope::Viewer, T0 + 600, T0)
        .unwrap();
    let d = s
        .redeem_owner_code(
            "123456",
            &phone_info("Bob"),
            "dev-1",
            &h(1),
            "fam-1",
            T0 + 5,
        )
        .unwrap();
    assert_eq!(d.id, "dev-1");
    assert_eq!(d.scope, Scope::Viewer);
    assert_eq!(d.name, "Bob");
    assert_eq!(d.phone_device_id.as_deref(), Some("PHONE-A"));
    assert_eq!(d.created_at, T0 + 5);
    assert_eq!(s.device("dev-1").unwrap().unwrap(), d);
    assert_eq!(
        s.refresh_family_of(&h(1)).unwrap().as_deref(),
        Some("fam-1")
    );

    // Single use.
    assert!(matches!(
        s.redeem_owner_code(
            "123456",
            &phone_info("Eve"),
            "dev-2",
            &h(2),
            "fam-2",
            T0 + 6
        ),
        Err(PairError::InvalidCode)
    ));
    assert_eq!(s.device_count().unwrap(), 1);
    assert_eq!(count(&s, "SELECT count(*) FROM refresh_tokens"), 1);
}

#[test]
fn owner_code_expires() {
    let s = store();
    s.create_pairing_code("123456", Scope::Owner, T0 + 600, T0)
        .unwrap();
    assert!(matches!(
        s.redeem_owner_code(
            "123456",
            &phone_info("p"),
            "dev-1",
            &h(1),
            "fam-1",
            T0 + 600
        ),
        Err(PairError::InvalidCode)
    ));
    assert_eq!(s.device_count().unwrap(), 0);
    assert!(s
        .create_pairing_code("654321", Scope::Owner, T0, T0)
        .is_err());
}

#[test]
fn failed_redemption_leaves_nothing_behind() {
    let s = paired();
    s.create_pairing_code("222222", Scope::Owner, T0 + 600, T0)
        .unwrap();
    // Device id collision: the whole transaction rolls back; the code stays redeemable.
    assert!(matches!(
        s.redeem_owner_code("222222", &phone_info("p"), "dev-1", &h(2), "fam-2", T0),
        Err(PairError::Store(StoreError::Sqlite(_)))
    ));
    // Refresh-hash collision: same.
    assert!(s
        .redeem_owner_code("222222", &phone_info("p"), "dev-2", &h(1), "fam-2", T0)
        .is_err());
    assert_eq!(s.device_count().unwrap(), 1);
    assert_eq!(count(&s, "SELECT count(*) FROM refresh_families"), 1);
    s.redeem_owner_code("222222", &phone_info("p"), "dev-2", &h(2), "fam-2", T0)
        .unwrap();
    assert_eq!(s.device_count().unwrap(), 2);
}

#[test]
fn invalid_device_info_is_rejected_before_the_code_is_touched() {
    let s = store();
    s.create_pairing_code("123456", Scope::Owner, T0 + 600, T0)
        .unwrap();
    let mut bad = phone_info("");
    assert!(matches!(
        s.redeem_owner_code("123456", &bad, "dev-1", &h(1), "fam-1", T0),
        Err(PairError::Store(StoreError::InvalidInput(_)))
    ));
    bad.name = "x\u{0}y".into();
    assert!(s
        .redeem_owner_code("123456", &bad, "dev-1", &h(1), "fam-1", T0)
        .is_err());
    bad.name = "n".repeat(129);
    assert!(s
        .redeem_owner_code("123456", &bad, "dev-1", &h(1), "fam-1", T0)
        .is_err());
    assert_eq!(count(&s, "SELECT failed_attempts FROM pairing_codes"), 0);
    s.redeem_owner_code("123456", &phone_info("ok"), "dev-1", &h(1), "fam-1", T0)
        .unwrap();
}

#[test]
fn owner_code_dies_after_ten_failed_attempts() {
    let s = store();
    s.create_pairing_code("123456", Scope::Owner, T0 + 600, T0)
        .unwrap();
    for i in 0..MAX_FAILED_ATTEMPTS {
        let r = s.redeem_owner_code(
            &format!("wrong-{i}"),
            &phone_info("p"),
            "dev-1",
            &h(1),
            "fam-1",
            T0 + 1,
        );
        assert!(matches!(r, Err(PairError::InvalidCode)));
    }
    // The right code, now: indistinguishable from a wrong one.
    assert!(matches!(
        s.redeem_owner_code("123456", &phone_info("p"), "dev-1", &h(1), "fam-1", T0 + 2),
        Err(PairError::InvalidCode)
    ));
    assert_eq!(s.device_count().unwrap(), 0);
    assert_eq!(
        count(&s, "SELECT failed_attempts FROM pairing_codes"),
        MAX_FAILED_ATTEMPTS
    );
}

#[test]
fn nine_failures_still_allow_the_right_code() {
    let s = store();
    s.create_pairing_code("123456", Scope::Owner, T0 + 600, T0)
        .unwrap();
    for _ in 0..MAX_FAILED_ATTEMPTS - 1 {
        s.record_failed_attempt(PairingKind::OwnerInitiated, T0)
            .unwrap();
    }
    s.redeem_owner_code("123456", &phone_info("p"), "dev-1", &h(1), "fam-1", T0)
        .unwrap();
}

#[test]
fn failures_are_charged_to_codes_of_the_targeted_kind_only() {
    let s = store();
    s.create_pairing_code("owner-code", Scope::Owner, T0 + 600, T0)
        .unwrap();
    s.create_phone_pairing("phone-code", &phone_request("PHONE-A"), T0 + 600, T0)
        .unwrap();
    for _ in 0..MAX_FAILED_ATTEMPTS {
        // Presenting the phone code at the owner endpoint is just a wrong owner code.
        assert!(matches!(
            s.redeem_owner_code("phone-code", &phone_info("p"), "d", &h(1), "f", T0),
            Err(PairError::InvalidCode)
        ));
    }
    // Owner code locked, phone code untouched.
    assert_eq!(
        s.pairing_status("phone-code", T0).unwrap(),
        Some(PairingStatus::Pending)
    );
    assert!(s
        .redeem_owner_code("owner-code", &phone_info("p"), "d", &h(1), "f", T0)
        .is_err());
    // Failures only count against codes live at the time: a code created later starts clean.
    s.create_pairing_code("owner-2", Scope::Owner, T0 + 600, T0)
        .unwrap();
    s.redeem_owner_code("owner-2", &phone_info("p"), "d", &h(1), "f", T0)
        .unwrap();
}

#[test]
fn code_collisions_and_live_code_cap() {
    let s = store();
    s.create_pairing_code("c0", Scope::Owner, T0 + 600, T0)
        .unwrap();
    assert!(matches!(
        s.create_pairing_code("c0", Scope::Owner, T0 + 600, T0),
        Err(PairError::CodeInUse)
    ));
    assert!(matches!(
        s.create_phone_pairing("c0", &phone_request("P"), T0 + 600, T0),
        Err(PairError::CodeInUse)
    ));
    for i in 1..MAX_LIVE_CODES_PER_KIND {
        s.create_pairing_code(&format!("c{i}"), Scope::Owner, T0 + 600, T0)
            .unwrap();
    }
    assert!(matches!(
        s.create_pairing_code("one-too-many", Scope::Owner, T0 + 600, T0),
        Err(PairError::TooManyPending)
    ));
    // Once they expire, a dead code's value may be reused.
    s.create_pairing_code("c0", Scope::Owner, T0 + 1200, T0 + 600)
        .unwrap();
}

// ---------------------------------------------------------------------------------------------
// phone-initiated pairing

#[test]
fn phone_pairing_confirm_then_exchange_once() {
    let s = store();
    s.create_phone_pairing("ABCD-1234", &phone_request("PHONE-A"), T0 + 300, T0)
        .unwrap();
    let pending = s.pending_phone_pairings(T0 + 1).unwrap();
    assert_eq!(pending.len(), 1);
    assert_eq!(pending[0].phone_device_id, "PHONE-A");
    assert_eq!(pending[0].name, "Alice's iPhone");
    assert_eq!(
        s.pairing_status("ABCD-1234", T0 + 1).unwrap(),
        Some(PairingStatus::Pending)
    );
    // Too early.
    assert!(matches!(
        s.exchange_phone_code(
            "ABCD-1234",
            Some("PHONE-A"),
            "dev-1",
            &h(1),
            "fam-1",
            T0 + 2
        ),
        Err(PairError::NotConfirmed)
    ));

    s.confirm_pairing("ABCD-1234", Scope::Owner, T0 + 3)
        .unwrap();
    assert!(s.pending_phone_pairings(T0 + 3).unwrap().is_empty());
    assert_eq!(
        s.pairing_status("ABCD-1234", T0 + 4).unwrap(),
        Some(PairingStatus::Confirmed)
    );
    let d = s
        .exchange_phone_code(
            "ABCD-1234",
            Some("PHONE-A"),
            "dev-1",
            &h(1),
            "fam-1",
            T0 + 5,
        )
        .unwrap();
    assert_eq!(d.scope, Scope::Owner);
    assert_eq!(d.phone_device_id.as_deref(), Some("PHONE-A"));
    assert_eq!(d.platform.as_deref(), Some("ios"));
    assert_eq!(d.model.as_deref(), Some("iPhone15,2"));
    assert!(s.is_device_active("dev-1").unwrap());

    // Only once.
    assert!(matches!(
        s.exchange_phone_code(
            "ABCD-1234",
            Some("PHONE-A"),
            "dev-2",
            &h(2),
            "fam-2",
            T0 + 6
        ),
        Err(PairError::InvalidCode)
    ));
    assert_eq!(
        s.pairing_status("ABCD-1234", T0 + 6).unwrap(),
        Some(PairingStatus::Expired)
    );
    assert_eq!(s.device_count().unwrap(), 1);
}

#[test]
fn phone_pairing_exchange_without_phone_id_is_allowed() {
    let s = store();
    s.create_phone_pairing("code", &phone_request("PHONE-A"), T0 + 300, T0)
        .unwrap();
    s.confirm_pairing("code", Scope::Viewer, T0).unwrap();
    let d = s
        .exchange_phone_code("code", None, "dev-1", &h(1), "fam-1", T0)
        .unwrap();
    assert_eq!(d.scope, Scope::Viewer);
}

#[test]
fn phone_pairing_denied() {
    let s = store();
    s.create_phone_pairing("code", &phone_request("PHONE-A"), T0 + 300, T0)
        .unwrap();
    s.deny_pairing("code", T0 + 1).unwrap();
    assert_eq!(
        s.pairing_status("code", T0 + 2).unwrap(),
        Some(PairingStatus::Denied)
    );
    assert!(matches!(
        s.confirm_pairing("code", Scope::Owner, T0 + 2),
        Err(PairError::InvalidCode)
    ));
    assert!(matches!(
        s.exchange_phone_code("code", Some("PHONE-A"), "dev-1", &h(1), "fam-1", T0 + 3),
        Err(PairError::InvalidCode)
    ));
    assert!(s.pending_phone_pairings(T0 + 3).unwrap().is_empty());

    // Denial after confirmation (before exchange) also works; by id too.
    s.create_phone_pairing("code2", &phone_request("PHONE-B"), T0 + 300, T0)
        .unwrap();
    let id = s.pending_phone_pairings(T0).unwrap()[0].id;
    s.confirm_pairing("code2", Scope::Owner, T0 + 1).unwrap();
    assert!(s.deny_pairing_by_id(id, T0 + 2).unwrap());
    assert!(!s.deny_pairing_by_id(id, T0 + 2).unwrap());
    assert!(s
        .exchange_phone_code("code2", None, "dev-1", &h(1), "fam-1", T0 + 3)
        .is_err());
    assert_eq!(s.device_count().unwrap(), 0);
}

#[test]
fn phone_pairing_expires() {
    let s = store();
    s.create_phone_pairing("code", &phone_request("PHONE-A"), T0 + 300, T0)
        .unwrap();
    assert!(matches!(
        s.confirm_pairing("code", Scope::Owner, T0 + 300),
        Err(PairError::InvalidCode)
    ));
    assert!(s.pending_phone_pairings(T0 + 300).unwrap().is_empty());
    assert_eq!(
        s.pairing_status("code", T0 + 300).unwrap(),
        Some(PairingStatus::Expired)
    );

    // Confirmed but not exchanged in time.
    s.create_phone_pairing("code2", &phone_request("PHONE-A"), T0 + 300, T0)
        .unwrap();
    s.confirm_pairing("code2", Scope::Owner, T0 + 10).unwrap();
    assert!(matches!(
        s.exchange_phone_code("code2", Some("PHONE-A"), "dev-1", &h(1), "fam-1", T0 + 300),
        Err(PairError::InvalidCode)
    ));
    assert_eq!(s.device_count().unwrap(), 0);
}

#[test]
fn phone_pairing_device_mismatch_kills_the_code() {
    let s = store();
    s.create_phone_pairing("code", &phone_request("PHONE-A"), T0 + 300, T0)
        .unwrap();
    s.confirm_pairing("code", Scope::Owner, T0).unwrap();
    assert!(matches!(
        s.exchange_phone_code("code", Some("PHONE-EVIL"), "dev-x", &h(9), "fam-x", T0 + 1),
        Err(PairError::DeviceMismatch)
    ));
    // Even the right phone cannot use it any more.
    assert!(matches!(
        s.exchange_phone_code("code", Some("PHONE-A"), "dev-1", &h(1), "fam-1", T0 + 2),
        Err(PairError::InvalidCode)
    ));
    assert_eq!(
        s.pairing_status("code", T0 + 2).unwrap(),
        Some(PairingStatus::Denied)
    );
    assert_eq!(s.device_count().unwrap(), 0);
}

#[test]
fn phone_code_dies_after_ten_failed_guesses_at_status_or_exchange() {
    let s = store();
    s.create_phone_pairing("code", &phone_request("PHONE-A"), T0 + 300, T0)
        .unwrap();
    s.confirm_pairing("code", Scope::Owner, T0).unwrap();
    for i in 0..MAX_FAILED_ATTEMPTS {
        if i % 2 == 0 {
            assert_eq!(s.pairing_status(&format!("guess{i}"), T0).unwrap(), None);
        } else {
            assert!(matches!(
                s.exchange_phone_code(&format!("guess{i}"), None, "d", &h(1), "f", T0),
                Err(PairError::InvalidCode)
            ));
        }
    }
    assert_eq!(
        s.pairing_status("code", T0).unwrap(),
        Some(PairingStatus::Denied)
    );
    assert!(matches!(
        s.exchange_phone_code("code", Some("PHONE-A"), "dev-1", &h(1), "fam-1", T0),
        Err(PairError::InvalidCode)
    ));
    assert_eq!(s.device_count().unwrap(), 0);
}

#[test]
fn owner_codes_are_invisible_to_the_phone_endpoints() {
    let s = store();
    s.create_pairing_code("owner", Scope::Owner, T0 + 300, T0)
        .unwrap();
    assert_eq!(s.pairing_status("owner", T0).unwrap(), None);
    assert!(matches!(
        s.exchange_phone_code("owner", None, "d", &h(1), "f", T0),
        Err(PairError::InvalidCode)
    ));
    assert!(matches!(
        s.confirm_pairing("owner", Scope::Owner, T0),
        Err(PairError::InvalidCode)
    ));
    assert!(matches!(
        s.deny_pairing("owner", T0),
        Err(PairError::InvalidCode)
    ));
    // ...and still redeemable.
    s.redeem_owner_code("owner", &phone_info("p"), "dev-1", &h(1), "fam-1", T0)
        .unwrap();
}

#[test]
fn oversized_codes_are_invalid_not_errors() {
    let s = store();
    let long = "9".repeat(1000);
    assert_eq!(s.pairing_status(&long, T0).unwrap(), None);
    assert!(matches!(
        s.redeem_owner_code(&long, &phone_info("p"), "d", &h(1), "f", T0),
        Err(PairError::InvalidCode)
    ));
    assert!(matches!(
        s.exchange_phone_code("", None, "d", &h(1), "f", T0),
        Err(PairError::InvalidCode)
    ));
}

// ---------------------------------------------------------------------------------------------
// refresh tokens

#[test]
fn refresh_rotation_moves_along_the_family() {
    let s = paired();
    let out = s.rotate_refresh(&h(1), &h(2), T0 + 60).unwrap();
    assert_eq!(out.device.id, "dev-1");
    assert_eq!(out.family_id, "fam-1");
    assert_eq!(out.expires_at, T0 + 60 + REFRESH_TOKEN_LIFETIME_SECS);
    let out = s.rotate_refresh(&h(2), &h(3), T0 + 120).unwrap();
    assert_eq!(out.device.id, "dev-1");
    assert_eq!(
        count(
            &s,
            "SELECT count(*) FROM refresh_tokens WHERE used_at IS NOT NULL AND replaced_by IS NOT NULL"
        ),
        2
    );
}

#[test]
fn refresh_reuse_revokes_the_whole_family() {
    let s = paired();
    s.rotate_refresh(&h(1), &h(2), T0 + 60).unwrap();
    // The thief (or a replay) presents the old token, after the reuse grace.
    let late = T0 + 61 + REFRESH_REUSE_GRACE_SECS;
    assert!(matches!(
        s.rotate_refresh(&h(1), &h(10), late),
        Err(RefreshError::Reused)
    ));
    // The revocation was committed: the legitimate current token is dead too.
    assert!(matches!(
        s.rotate_refresh(&h(2), &h(3), late + 1),
        Err(RefreshError::Revoked)
    ));
    assert!(matches!(
        s.rotate_refresh(&h(10), &h(11), late + 1),
        Err(RefreshError::Unknown)
    ));
    // The device is revoked with it (the copy's access tokens and WebSockets end now), and
    // listed so.
    assert!(!s.is_device_active("dev-1").unwrap());
    assert_eq!(s.device_count().unwrap(), 0);
    let d = s.device("dev-1").unwrap().unwrap();
    assert!(!d.is_active());
    assert_eq!(d.revoked_at, Some(late));
    assert_eq!(d.reuse_detected_at, Some(late));
    assert_eq!(s.list_devices().unwrap(), vec![d]);
    assert_eq!(
        count(
            &s,
            "SELECT count(*) FROM refresh_families WHERE revoked_reason = 'reuse'"
        ),
        1
    );
}

/// The reuse grace, rule 1: the phone's rotation answer was lost, so it presents the token it
/// still holds again within the grace. It gets a fresh pair; the successor it never received is
/// superseded; nothing is revoked.
#[test]
fn a_refresh_retried_within_the_grace_rotates_again() {
    let s = paired();
    let watch = s.watch_revocations();
    assert!(!s.rotate_refresh(&h(1), &h(2), T0 + 60).unwrap().grace_retry);
    // The answer carrying h(2) is lost; the phone retries with h(1).
    let out = s
        .rotate_refresh(&h(1), &h(3), T0 + 60 + REFRESH_REUSE_GRACE_SECS)
        .unwrap();
    assert!(out.grace_retry);
    assert_eq!(out.device.id, "dev-1");
    assert_eq!(out.family_id, "fam-1");
    assert!(!watch.has_changed().unwrap(), "a retry revokes nothing");
    assert!(s.is_device_active("dev-1").unwrap());
    // The phone goes on with the new token, as if nothing happened.
    assert!(
        !s.rotate_refresh(&h(3), &h(4), T0 + 500)
            .unwrap()
            .grace_retry
    );
    assert!(s.is_device_active("dev-1").unwrap());
}

/// Rule 2: the leeway is one retry. Presenting the same token a third time revokes.
#[test]
fn a_second_retry_within_the_grace_revokes() {
    let s = paired();
    s.rotate_refresh(&h(1), &h(2), T0 + 60).unwrap();
    assert!(s.rotate_refresh(&h(1), &h(3), T0 + 61).unwrap().grace_retry);
    assert!(matches!(
        s.rotate_refresh(&h(1), &h(4), T0 + 62),
        Err(RefreshError::Reused)
    ));
    assert!(!s.is_device_active("dev-1").unwrap());
    assert!(matches!(
        s.rotate_refresh(&h(3), &h(5), T0 + 63),
        Err(RefreshError::Revoked)
    ));
}

/// Rule 3: one second past the grace, the just-rotated token is reuse.
#[test]
fn a_retry_after_the_grace_revokes() {
    let s = paired();
    s.rotate_refresh(&h(1), &h(2), T0 + 60).unwrap();
    assert!(matches!(
        s.rotate_refresh(&h(1), &h(3), T0 + 61 + REFRESH_REUSE_GRACE_SECS),
        Err(RefreshError::Reused)
    ));
    assert!(!s.is_device_active("dev-1").unwrap());
}

/// Rule 4: only the token rotated just before gets the leeway; an older one (its successor was
/// used) revokes, even within the grace.
#[test]
fn an_older_token_within_the_grace_revokes() {
    let s = paired();
    s.rotate_refresh(&h(1), &h(2), T0 + 60).unwrap();
    s.rotate_refresh(&h(2), &h(3), T0 + 61).unwrap();
    assert!(matches!(
        s.rotate_refresh(&h(1), &h(4), T0 + 62),
        Err(RefreshError::Reused)
    ));
    assert!(!s.is_device_active("dev-1").unwrap());
}

/// Rule 5: the successor superseded by a retry was never the holder's to use; presenting it
/// later (even within the grace) is reuse. So theft detection stays: a thief who raced the phone
/// with a copied token has his pair superseded by the phone's retry, and his next refresh revokes.
#[test]
fn the_superseded_successor_presented_later_revokes() {
    let s = paired();
    // The thief refreshes with a copy of h(1) first and gets h(2)...
    s.rotate_refresh(&h(1), &h(2), T0 + 60).unwrap();
    // ...the phone's refresh with h(1) looks like a retry and gets h(3)...
    assert!(s.rotate_refresh(&h(1), &h(3), T0 + 70).unwrap().grace_retry);
    // ...and the thief's h(2) is now reuse: family and device revoked.
    assert!(matches!(
        s.rotate_refresh(&h(2), &h(4), T0 + 71),
        Err(RefreshError::Reused)
    ));
    assert!(!s.is_device_active("dev-1").unwrap());
    assert!(matches!(
        s.rotate_refresh(&h(3), &h(5), T0 + 72),
        Err(RefreshError::Revoked)
    ));
}

/// And the other order: the thief who uses his successor before the phone's refresh makes the
/// phone's (now older) token reuse.
#[test]
fn a_retry_after_the_successor_was_used_revokes() {
    let s = paired();
    s.rotate_refresh(&h(1), &h(2), T0 + 60).unwrap();
    s.rotate_refresh(&h(2), &h(3), T0 + 61).unwrap();
    assert!(matches!(
        s.rotate_refresh(&h(2), &h(4), T0 + 62),
        Ok(RefreshOutcome {
            grace_retry: true,
            ..
        })
    ));
    assert!(matches!(
        s.rotate_refresh(&h(1), &h(5), T0 + 63),
        Err(RefreshError::Reused)
    ));
    assert!(!s.is_device_active("dev-1").unwrap());
}

#[test]
fn a_refresh_reuse_wakes_the_revocation_watchers() {
    let s = paired();
    let watch = s.watch_revocations();
    s.rotate_refresh(&h(1), &h(2), T0 + 60).unwrap();
    assert!(!watch.has_changed().unwrap(), "a rotation revokes nothing");
    let before = s.revocation_generation();
    assert!(matches!(
        s.rotate_refresh(&h(1), &h(10), T0 + 61 + REFRESH_REUSE_GRACE_SECS),
        Err(RefreshError::Reused)
    ));
    assert!(watch.has_changed().unwrap());
    assert!(s.revocation_generation() > before);
}

#[test]
fn a_refresh_token_presented_for_another_device_revokes_family_and_device() {
    let s = paired();
    let watch = s.watch_revocations();
    assert!(s.revoke_for_refresh_misuse("fam-1", T0 + 5).unwrap());
    assert!(watch.has_changed().unwrap());
    let d = s.device("dev-1").unwrap().unwrap();
    assert_eq!(d.revoked_at, Some(T0 + 5));
    assert_eq!(d.reuse_detected_at, Some(T0 + 5));
    assert!(matches!(
        s.rotate_refresh(&h(1), &h(2), T0 + 6),
        Err(RefreshError::Revoked)
    ));
    assert!(!s
        .revoke_for_refresh_misuse("no-such-family", T0 + 7)
        .unwrap());
}

/// Databases from before a reuse revoked the device too hold devices whose only session ended on
/// reuse, yet `revoked_at` is empty: they are not active, and listed as ended at the reuse.
#[test]
fn a_device_whose_family_was_revoked_for_reuse_is_not_active_in_an_older_database() {
    let s = paired();
    s.lock()
        .execute(
            "UPDATE refresh_families SET revoked_at = ?1, revoked_reason = 'reuse' WHERE id = 'fam-1'",
            [T0 + 30],
        )
        .unwrap();
    assert!(!s.is_device_active("dev-1").unwrap());
    assert!(s.active_device_ids().unwrap().is_empty());
    assert_eq!(s.device_count().unwrap(), 0);
    let d = s.device("dev-1").unwrap().unwrap();
    assert_eq!(d.revoked_at, None);
    assert_eq!(d.reuse_detected_at, Some(T0 + 30));
    assert!(!d.is_active());
    assert_eq!(d.ended_at(), Some(T0 + 30));
}

#[test]
fn refresh_reuse_is_committed_on_disk() {
    let tmp = TempDir::new("reuse");
    let db = tmp.path().join("agent.db");
    {
        let s = Store::open(&db).unwrap();
        s.create_pairing_code("123456", Scope::Owner, T0 + 600, T0)
            .unwrap();
        s.redeem_owner_code("123456", &phone_info("p"), "dev-1", &h(1), "fam-1", T0)
            .unwrap();
        s.rotate_refresh(&h(1), &h(2), T0).unwrap();
        assert!(matches!(
            s.rotate_refresh(&h(1), &h(3), T0 + REFRESH_REUSE_GRACE_SECS + 1),
            Err(RefreshError::Reused)
        ));
    }
    let s = Store::open(&db).unwrap();
    assert!(matches!(
        s.rotate_refresh(&h(2), &h(3), T0),
        Err(RefreshError::Revoked)
    ));
}

#[test]
fn refresh_errors_are_distinct() {
    let s = paired();
    assert!(matches!(
        s.rotate_refresh(&h(99), &h(2), T0),
        Err(RefreshError::Unknown)
    ));
    assert!(matches!(
        s.rotate_refresh(&h(1), &h(2), T0 + REFRESH_TOKEN_LIFETIME_SECS),
        Err(RefreshError::Expired)
    ));
    // Expiry did not consume the token nor revoke anything.
    s.rotate_refresh(&h(1), &h(2), T0 + REFRESH_TOKEN_LIFETIME_SECS - 1)
        .unwrap();
    assert!(s.revoke_refresh_family("fam-1", T0 + 10).unwrap());
    assert!(matches!(
        s.rotate_refresh(&h(2), &h(3), T0 + 11),
        Err(RefreshError::Revoked)
    ));
}

#[test]
fn new_refresh_hash_collision_rolls_back_the_rotation() {
    let s = paired();
    s.create_pairing_code("222222", Scope::Owner, T0 + 600, T0)
        .unwrap();
    s.redeem_owner_code("222222", &phone_info("p"), "dev-2", &h(2), "fam-2", T0)
        .unwrap();
    assert!(matches!(
        s.rotate_refresh(&h(1), &h(2), T0),
        Err(RefreshError::Store(_))
    ));
    // h(1) was not consumed.
    s.rotate_refresh(&h(1), &h(3), T0).unwrap();
}

// ---------------------------------------------------------------------------------------------
// devices

#[test]
fn revoking_a_device_kills_its_refresh_tokens() {
    let s = paired();
    s.rotate_refresh(&h(1), &h(2), T0 + 1).unwrap();
    assert!(s.revoke_device("dev-1", T0 + 100).unwrap());
    assert!(!s.revoke_device("dev-1", T0 + 200).unwrap());
    assert!(!s.revoke_device("nope", T0 + 200).unwrap());
    assert!(matches!(
        s.rotate_refresh(&h(2), &h(3), T0 + 101),
        Err(RefreshError::DeviceRevoked)
    ));
    assert_eq!(
        count(
            &s,
            "SELECT count(*) FROM refresh_families WHERE revoked_at IS NULL"
        ),
        0
    );
    assert!(!s.is_device_active("dev-1").unwrap());
    assert!(s.active_device_ids().unwrap().is_empty());
    assert_eq!(s.device_count().unwrap(), 0);
    let d = s.device("dev-1").unwrap().unwrap();
    assert_eq!(d.revoked_at, Some(T0 + 100));
    assert_eq!(
        s.list_devices().unwrap().len(),
        1,
        "revoked devices stay listed"
    );
}

#[test]
fn revocation_list_since() {
    let s = store();
    for (i, code) in ["c1", "c2", "c3"].iter().enumerate() {
        s.create_pairing_code(code, Scope::Viewer, T0 + 600, T0)
            .unwrap();
        s.redeem_owner_code(
            code,
            &phone_info("p"),
            &format!("dev-{i}"),
            &h(i as u8),
            &format!("fam-{i}"),
            T0,
        )
        .unwrap();
    }
    s.revoke_device("dev-0", T0 + 10).unwrap();
    s.revoke_device("dev-2", T0 + 20).unwrap();
    let ids = |since| -> Vec<String> {
        s.revoked_since(since)
            .unwrap()
            .into_iter()
            .map(|r| r.id)
            .collect()
    };
    assert_eq!(ids(0), ["dev-0", "dev-2"]);
    assert_eq!(ids(T0 + 11), ["dev-2"]);
    assert_eq!(ids(T0 + 21), Vec::<String>::new());
    assert_eq!(s.active_device_ids().unwrap(), ["dev-1"]);
    assert_eq!(s.device_count().unwrap(), 1);
}

#[test]
fn revoke_all_ends_every_active_device_in_one_commit_and_wakes_watchers_once() {
    let s = store();
    for (i, code) in ["c1", "c2", "c3"].iter().enumerate() {
        s.create_pairing_code(code, Scope::Viewer, T0 + 600, T0)
            .unwrap();
        s.redeem_owner_code(
            code,
            &phone_info("p"),
            &format!("dev-{i}"),
            &h(i as u8),
            &format!("fam-{i}"),
            T0,
        )
        .unwrap();
    }
    s.revoke_device("dev-1", T0 + 10).unwrap();
    let mut watcher = s.watch_revocations();
    let before = *watcher.borrow_and_update();

    assert_eq!(s.revoke_all_devices(T0 + 20).unwrap(), 2);

    assert!(watcher.has_changed().unwrap());
    assert_eq!(*watcher.borrow_and_update(), before + 1, "one wake-up");
    assert!(s.active_device_ids().unwrap().is_empty());
    assert_eq!(
        count(
            &s,
            "SELECT count(*) FROM refresh_families WHERE revoked_at IS NULL"
        ),
        0
    );
    // The device revoked before keeps its own time.
    assert_eq!(
        s.device("dev-1").unwrap().unwrap().revoked_at,
        Some(T0 + 10)
    );
    assert_eq!(
        s.device("dev-2").unwrap().unwrap().revoked_at,
        Some(T0 + 20)
    );
    assert_eq!(s.revoke_all_devices(T0 + 30).unwrap(), 0);
}

/// While another process holds the database's write lock (a backup, an operator's `sqlite3`),
/// a write waits up to [`BUSY_TIMEOUT`]: through [`Store::off_worker`] it waits on the blocking
/// pool, and the runtime's one worker thread keeps serving other tasks meanwhile.
#[tokio::test(flavor = "current_thread")]
async fn a_write_waiting_for_the_database_leaves_the_async_worker_free() {
    let dir = TempDir::new("off-worker");
    let path = dir.path().join("data").join("agent.db");
    let s = std::sync::Arc::new(Store::open(&path).unwrap());
    s.create_pairing_code("c1", Scope::Viewer, T0 + 600, T0)
        .unwrap();
    s.redeem_owner_code("c1", &phone_info("p"), "dev-1", &h(1), "fam-1", T0)
        .unwrap();
    let other_process = rusqlite::Connection::open(&path).unwrap();
    other_process.execute_batch("BEGIN IMMEDIATE").unwrap();

    let revoke = tokio::spawn(s.off_worker(|s| s.revoke_device("dev-1", T0 + 10)));
    // This task shares the only worker thread with `revoke`, and keeps running.
    for _ in 0..100 {
        tokio::task::yield_now().await;
    }
    assert!(!revoke.is_finished(), "the write waits for the lock");
    other_process.execute_batch("COMMIT").unwrap();

    assert!(revoke.await.unwrap().unwrap(), "the write then commits");
    assert!(!s.is_device_active("dev-1").unwrap());
}

#[test]
fn rename_and_touch() {
    let s = paired();
    assert!(s.rename_device("dev-1", "Kitchen iPad").unwrap());
    assert!(!s.rename_device("nope", "x").unwrap());
    assert!(s.rename_device("dev-1", "").is_err());
    assert_eq!(s.device("dev-1").unwrap().unwrap().name, "Kitchen iPad");

    s.touch_device("dev-1", T0 + 10).unwrap();
    assert_eq!(
        s.device("dev-1").unwrap().unwrap().last_seen_at,
        Some(T0 + 10)
    );
    // Throttled.
    s.touch_device("dev-1", T0 + 10 + TOUCH_GRANULARITY_SECS - 1)
        .unwrap();
    assert_eq!(
        s.device("dev-1").unwrap().unwrap().last_seen_at,
        Some(T0 + 10)
    );
    s.touch_device("dev-1", T0 + 10 + TOUCH_GRANULARITY_SECS)
        .unwrap();
    assert_eq!(
        s.device("dev-1").unwrap().unwrap().last_seen_at,
        Some(T0 + 10 + TOUCH_GRANULARITY_SECS)
    );
    s.touch_device("unknown", T0).unwrap();
    s.revoke_device("dev-1", T0 + 1000).unwrap();
    s.touch_device("dev-1", T0 + 5000).unwrap();
    assert_eq!(
        s.device("dev-1").unwrap().unwrap().last_seen_at,
        Some(T0 + 10 + TOUCH_GRANULARITY_SECS),
        "revoked devices are not touched"
    );
}

#[test]
fn prune_removes_dead_codes_and_expired_tokens_only() {
    let s = paired();
    s.create_pairing_code("dead", Scope::Owner, T0 + 10, T0)
        .unwrap();
    s.create_pairing_code("live", Scope::Owner, T0 + 10_000, T0)
        .unwrap();
    let (codes, tokens) = s.prune(T0 + 100, 50).unwrap();
    assert_eq!((codes, tokens), (1, 0));
    assert_eq!(count(&s, "SELECT count(*) FROM pairing_codes"), 2);
    let (_, tokens) = s.prune(T0 + REFRESH_TOKEN_LIFETIME_SECS + 100, 50).unwrap();
    assert_eq!(tokens, 1);
    assert!(s.integrity_check().unwrap());
}

#[test]
fn store_is_shareable_across_threads() {
    let s = std::sync::Arc::new(store());
    let mut handles = Vec::new();
    for t in 0..4u8 {
        let s = s.clone();
        handles.push(std::thread::spawn(move || {
            for i in 0..3u8 {
                let code = format!("code-{t}-{i}");
                s.create_pairing_code(&code, Scope::Viewer, T0 + 600, T0)
                    .unwrap();
                s.redeem_owner_code(
                    &code,
                    &phone_info("p"),
                    &format!("dev-{t}-{i}"),
                    &refresh_token_hash(&[t, i]),
                    &format!("fam-{t}-{i}"),
                    T0,
                )
                .unwrap();
            }
        }));
    }
    for h in handles {
        h.join().unwrap();
    }
    assert_eq!(s.device_count().unwrap(), 12);
}
