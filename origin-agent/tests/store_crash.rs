//! `kill -9` at random moments loses no committed device, leaves no half-paired device and no
//! corrupt database.
//!
//! The parent test re-executes this test binary with `ARGUS_STORE_CRASH_WORKER=<db path>`, which
//! turns `crash_worker` into a writer that pairs devices (both flows), rotates refresh tokens and
//! revokes devices as fast as it can, printing each operation to stdout only after it committed.
//! The parent SIGKILLs it at a random moment, reopens the database, and checks every reported
//! operation and the global invariants. Several rounds on the same database, ~10 s in all.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use origin_agent::store::{
    refresh_token_hash, DeviceInfo, PhonePairingRequest, RefreshError, Scope, Store,
};
use rand::rngs::OsRng;
use rand::{Rng, RngCore};

const WORKER_ENV: &str = "ARGUS_STORE_CRASH_WORKER";
const ROUNDS: usize = 12;
const TIME_BUDGET: Duration = Duration::from_secs(9);

fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

fn random_hex(n: usize) -> String {
    let mut b = vec![0u8; n];
    OsRng.fill_bytes(&mut b);
    hex::encode(b)
}

fn random_hash() -> [u8; 32] {
    let mut token = [0u8; 32];
    OsRng.fill_bytes(&mut token);
    refresh_token_hash(&token)
}

/// The child: runs until killed. A no-op when run as an ordinary test.
#[test]
fn crash_worker() {
    let Some(db) = std::env::var_os(WORKER_ENV) else {
        return;
    };
    let store = Store::open(PathBuf::from(db)).expect("worker: open");
    let out = std::io::stdout();
    let report = |line: String| {
        let mut out = out.lock();
        // One write per line, after the commit that it reports.
        out.write_all(format!("@@ {line}\n").as_bytes())
            .expect("worker: stdout");
        out.flush().expect("worker: flush");
    };
    report("ready".into());
    // Current refresh token of each device paired in this run.
    let mut current: HashMap<String, [u8; 32]> = HashMap::new();
    let mut devices: Vec<String> = Vec::new();
    loop {
        let t = now();
        match OsRng.gen_range(0..10) {
            // Owner-initiated pairing.
            0..=2 => {
                let code = random_hex(6);
                store
                    .create_pairing_code(&code, Scope::Viewer, t + 300, t)
                    .expect("worker: create code");
                let (id, fam, hash) = (random_hex(8), random_hex(8), random_hash());
                let info = DeviceInfo {
                    name: "crash phone".into(),
                    platform: Some("ios".into()),
                    ..DeviceInfo::default()
                };
                store
                    .redeem_owner_code(&code, &info, &id, &hash, &fam, t)
                    .expect("worker: redeem");
                report(format!("device {id} {}", hex::encode(hash)));
                current.insert(id.clone(), hash);
                devices.push(id);
            }
            // Phone-initiated pairing.
            3 => {
                let code = random_hex(6);
                let phone = random_hex(4);
                let req = PhonePairingRequest {
                    phone_device_id: phone.clone(),
                    platform: Some("ios".into()),
                    name: "crash iPhone".into(),
                    model: None,
                };
                store
                    .create_phone_pairing(&code, &req, t + 300, t)
                    .expect("worker: phone request");
                store
                    .confirm_pairing(&code, Scope::Owner, t)
                    .expect("worker: confirm");
                let (id, fam, hash) = (random_hex(8), random_hex(8), random_hash());
                store
                    .exchange_phone_code(&code, Some(&phone), &id, &hash, &fam, t)
                    .expect("worker: exchange");
                report(format!("device {id} {}", hex::encode(hash)));
                current.insert(id.clone(), hash);
                devices.push(id);
            }
            // Revoke a device now and then.
            4 if devices.len() > 4 => {
                let i = OsRng.gen_range(0..devices.len());
                let id = devices.swap_remove(i);
                current.remove(&id);
                assert!(store.revoke_device(&id, t).expect("worker: revoke"));
                report(format!("revoked {id}"));
            }
            // Rotate refresh tokens.
            _ => {
                if devices.is_empty() {
                    continue;
                }
                let id = &devices[OsRng.gen_range(0..devices.len())];
                let Some(old) = current.get(id).copied() else {
                    continue;
                };
                let new = random_hash();
                match store.rotate_refresh(&old, &new, t) {
                    Ok(outcome) => {
                        assert_eq!(&outcome.device.id, id);
                        report(format!(
                            "rotated {id} {} {}",
                            hex::encode(old),
                            hex::encode(new)
                        ));
                        current.insert(id.clone(), new);
                    }
                    Err(e @ RefreshError::Store(_)) => panic!("worker: rotate: {e}"),
                    Err(e) => panic!("worker: unexpected refresh outcome {e:?}"),
                }
            }
        }
    }
}

#[derive(Default)]
struct Reported {
    devices: Vec<(String, String)>,
    rotations: Vec<(String, String, String)>,
    revoked: Vec<String>,
}

fn parse(lines: &[String], into: &mut Reported) {
    for line in lines {
        let f: Vec<&str> = line.split_whitespace().collect();
        match f.as_slice() {
            ["@@", "ready"] => {}
            ["@@", "device", id, hash] => into.devices.push((id.to_string(), hash.to_string())),
            ["@@", "rotated", id, old, new] => {
                into.rotations
                    .push((id.to_string(), old.to_string(), new.to_string()))
            }
            ["@@", "revoked", id] => into.revoked.push(id.to_string()),
            _ if line.starts_with("@@") => panic!("unparsable worker line {line:?}"),
            _ => {}
        }
    }
}

/// Runs one worker and kills it `kill_after` after it reported ready. Returns the complete lines
/// it printed (a line cut by the kill has no newline and is dropped).
fn run_worker(db: &Path, kill_after: Duration) -> Vec<String> {
    let exe = std::env::current_exe().expect("current exe");
    let mut child = Command::new(exe)
        .args(["--exact", "crash_worker", "--nocapture", "--test-threads=1"])
        .env(WORKER_ENV, db)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn worker");
    let stdout = child.stdout.take().expect("worker stdout");
    let (ready_tx, ready_rx) = std::sync::mpsc::channel();
    // Read continuously so the worker never blocks on a full pipe.
    let reader = std::thread::spawn(move || {
        let mut lines = Vec::new();
        let mut r = BufReader::new(stdout);
        let mut buf = String::new();
        loop {
            buf.clear();
            match r.read_line(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(_) if buf.ends_with('\n') => {
                    // libtest may have printed "test crash_worker ... " on the same line.
                    let Some(at) = buf.find("@@ ") else { continue };
                    let line = buf[at..].trim_end();
                    if line == "@@ ready" {
                        let _ = ready_tx.send(());
                    }
                    lines.push(line.to_owned());
                }
                Ok(_) => break, // partial line: cut by the kill
            }
        }
        lines
    });
    // Some rounds kill during open/migration (no wait for ready), most in the busy loop.
    if !kill_after.is_zero() {
        ready_rx
            .recv_timeout(Duration::from_secs(5))
            .expect("worker did not start");
        std::thread::sleep(kill_after);
    }
    child.kill().expect("SIGKILL worker"); // std's kill() is SIGKILL on Unix
    let status = child.wait().expect("wait worker");
    assert!(!status.success(), "worker must have been killed, not exit");
    reader.join().expect("reader thread")
}

fn verify(db: &Path, reported: &Reported) {
    let store = Store::open(db).expect("reopen after kill -9");
    assert!(
        store.integrity_check().expect("integrity check"),
        "integrity_check failed"
    );

    let conn = rusqlite::Connection::open(db).expect("inspect");
    let ic: String = conn
        .query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .expect("integrity_check");
    assert_eq!(ic, "ok");

    for (id, hash) in &reported.devices {
        let d = store.device(id).expect("device").unwrap_or_else(|| {
            panic!("committed device {id} lost");
        });
        assert_eq!(&d.id, id);
        let redeemed: i64 = conn
            .query_row(
                "SELECT count(*) FROM pairing_codes WHERE device_id = ?1 AND state = 'redeemed'",
                [id],
                |r| r.get(0),
            )
            .expect("query");
        assert_eq!(redeemed, 1, "device {id} without its redeemed code");
        let token: i64 = conn
            .query_row(
                "SELECT count(*) FROM refresh_tokens t JOIN refresh_families f
                 ON f.id = t.family_id WHERE f.device_id = ?1 AND t.token_hash = ?2",
                rusqlite::params![id, hex::decode(hash).expect("hex")],
                |r| r.get(0),
            )
            .expect("query");
        assert_eq!(token, 1, "first refresh token of {id} lost");
    }
    for (id, old, new) in &reported.rotations {
        let (family_device, replaced_by): (String, Option<Vec<u8>>) = conn
            .query_row(
                "SELECT f.device_id, t.replaced_by FROM refresh_tokens t
                 JOIN refresh_families f ON f.id = t.family_id WHERE t.token_hash = ?1",
                [hex::decode(old).expect("hex")],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .expect("rotated-away token lost");
        assert_eq!(&family_device, id);
        assert_eq!(replaced_by, Some(hex::decode(new).expect("hex")));
        let present: i64 = conn
            .query_row(
                "SELECT count(*) FROM refresh_tokens WHERE token_hash = ?1",
                [hex::decode(new).expect("hex")],
                |r| r.get(0),
            )
            .expect("query");
        assert_eq!(present, 1, "committed rotation of {id} lost");
    }
    for id in &reported.revoked {
        assert!(
            !store.is_device_active(id).expect("active?"),
            "revocation of {id} lost"
        );
        let live: i64 = conn
            .query_row(
                "SELECT count(*) FROM refresh_families WHERE device_id = ?1 AND revoked_at IS NULL",
                [id],
                |r| r.get(0),
            )
            .expect("query");
        assert_eq!(live, 0, "revoked device {id} kept a live refresh family");
    }

    // Global invariants, whether or not the worker lived to report the operation.
    let zero = |what: &str, sql: &str| {
        let n: i64 = conn.query_row(sql, [], |r| r.get(0)).expect(what);
        assert_eq!(n, 0, "{what}");
    };
    zero(
        "device without a redeemed pairing code",
        "SELECT count(*) FROM devices d WHERE NOT EXISTS
           (SELECT 1 FROM pairing_codes p WHERE p.device_id = d.id AND p.state = 'redeemed')",
    );
    zero(
        "device without a refresh token",
        "SELECT count(*) FROM devices d WHERE NOT EXISTS
           (SELECT 1 FROM refresh_families f JOIN refresh_tokens t ON t.family_id = f.id
            WHERE f.device_id = d.id)",
    );
    zero(
        "redeemed code without its device",
        "SELECT count(*) FROM pairing_codes p WHERE p.state = 'redeemed' AND NOT EXISTS
           (SELECT 1 FROM devices d WHERE d.id = p.device_id)",
    );
    zero(
        "used token whose successor is missing",
        "SELECT count(*) FROM refresh_tokens t WHERE t.replaced_by IS NOT NULL AND NOT EXISTS
           (SELECT 1 FROM refresh_tokens n WHERE n.token_hash = t.replaced_by
              AND n.family_id = t.family_id)",
    );
    zero(
        "token with no predecessor that is not its family's first",
        "SELECT count(*) FROM (SELECT family_id FROM refresh_tokens t WHERE NOT EXISTS
           (SELECT 1 FROM refresh_tokens p WHERE p.replaced_by = t.token_hash)
          GROUP BY family_id HAVING count(*) > 1)",
    );
    zero(
        "revoked device with a live family",
        "SELECT count(*) FROM devices d JOIN refresh_families f ON f.device_id = d.id
         WHERE d.revoked_at IS NOT NULL AND f.revoked_at IS NULL",
    );
    let fk_violations: i64 = conn
        .query_row("SELECT count(*) FROM pragma_foreign_key_check", [], |r| {
            r.get(0)
        })
        .expect("foreign_key_check");
    assert_eq!(fk_violations, 0);
}

#[test]
fn kill_9_loses_no_committed_state() {
    if std::env::var_os(WORKER_ENV).is_some() {
        return;
    }
    let dir = std::env::temp_dir().join(format!("argus-store-crash-{}", random_hex(8)));
    let db = dir.join("agent.db");
    let started = Instant::now();
    let mut reported = Reported::default();
    let mut rounds = 0;
    let mut kills_mid_run = 0;
    while rounds < ROUNDS && started.elapsed() < TIME_BUDGET {
        // Round 0 is killed as soon as it is spawned (during open/migration, or before).
        let kill_after = if rounds == 0 {
            Duration::ZERO
        } else {
            Duration::from_millis(OsRng.gen_range(5..400))
        };
        let lines = run_worker(&db, kill_after);
        let before = reported.devices.len() + reported.rotations.len();
        parse(&lines, &mut reported);
        if reported.devices.len() + reported.rotations.len() > before {
            kills_mid_run += 1;
        }
        verify(&db, &reported);
        rounds += 1;
    }
    eprintln!(
        "{rounds} rounds in {:?}: {} devices, {} rotations, {} revocations committed and verified",
        started.elapsed(),
        reported.devices.len(),
        reported.rotations.len(),
        reported.revoked.len()
    );
    assert!(rounds >= 5, "too few rounds in the time budget");
    assert!(kills_mid_run >= 3, "the worker was rarely killed mid-run");
    assert!(!reported.devices.is_empty() && !reported.rotations.is_empty());
    let _ = std::fs::remove_dir_all(&dir);
}
