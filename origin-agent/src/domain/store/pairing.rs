//! Pairing codes: owner-initiated (the owner shows a code, the phone redeems it) and
//! phone-initiated (the phone asks, the owner confirms, the phone exchanges).
//!
//! Brute-force accounting is described in the module doc of [`crate::domain::store`].

use rusqlite::types::{FromSql, FromSqlError, FromSqlResult, ValueRef};
use rusqlite::{params, OptionalExtension, Transaction};
use serde::Serialize;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use super::devices::{insert_device, validate_device_id, validate_device_info};
use super::refresh::{start_family, validate_family_id};
use super::{
    check_opt_text, check_text, flatten, limits, Device, DeviceInfo, PairError, Scope, Store,
    StoreError, MAX_FAILED_ATTEMPTS, MAX_LIVE_CODES_PER_KIND,
};

/// Who started a pairing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum PairingKind {
    /// The owner created a code (shown as text / QR) that a phone redeems.
    OwnerInitiated,
    /// The phone asked to pair; the owner confirms; the phone exchanges its code.
    PhoneInitiated,
}

impl PairingKind {
    pub fn as_str(self) -> &'static str {
        match self {
            PairingKind::OwnerInitiated => "owner_initiated",
            PairingKind::PhoneInitiated => "phone_initiated",
        }
    }

    fn parse(s: &str) -> Option<PairingKind> {
        match s {
            "owner_initiated" => Some(PairingKind::OwnerInitiated),
            "phone_initiated" => Some(PairingKind::PhoneInitiated),
            _ => None,
        }
    }
}

impl FromSql for PairingKind {
    fn column_result(value: ValueRef<'_>) -> FromSqlResult<Self> {
        PairingKind::parse(value.as_str()?).ok_or(FromSqlError::InvalidType)
    }
}

/// What the phone polling a phone-initiated pairing is told.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum PairingStatus {
    /// Waiting for the owner.
    Pending,
    /// The owner confirmed: exchange the code now.
    Confirmed,
    /// The owner denied it, or it was locked by failed attempts.
    Denied,
    /// Expired, or already exchanged: the code is of no further use.
    Expired,
}

/// A phone's request to pair (phone-initiated flow).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PhonePairingRequest {
    /// The phone app's own identifier for itself.
    pub phone_device_id: String,
    pub platform: Option<String>,
    pub name: String,
    pub model: Option<String>,
}

/// A phone-initiated pairing waiting for the owner (the admin UI's list).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PendingPairing {
    /// Row id (stable handle for the UI; the code itself is not stored).
    pub id: i64,
    pub phone_device_id: String,
    pub platform: Option<String>,
    pub name: String,
    pub model: Option<String>,
    pub created_at: i64,
    pub expires_at: i64,
}

/// `SHA-256("argus-relay/pairing-code/v1\0" || code)`.
pub(super) fn code_hash(code: &str) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update(b"argus-relay/pairing-code/v1\0");
    h.update(code.as_bytes());
    h.finalize().into()
}

fn validate_code(code: &str) -> Result<(), StoreError> {
    if code.is_empty() || code.len() > limits::CODE {
        return Err(StoreError::InvalidInput("pairing code"));
    }
    Ok(())
}

#[derive(Debug)]
struct CodeRow {
    id: i64,
    kind: PairingKind,
    scope: Scope,
    state: String,
    expires_at: i64,
    failed_attempts: i64,
    phone_device_id: Option<String>,
    phone_platform: Option<String>,
    phone_name: Option<String>,
    phone_model: Option<String>,
}

impl CodeRow {
    fn locked(&self) -> bool {
        self.failed_attempts >= MAX_FAILED_ATTEMPTS
    }

    /// Pending or confirmed, unexpired, not locked.
    fn live(&self, now: i64) -> bool {
        matches!(self.state.as_str(), "pending" | "confirmed")
            && self.expires_at > now
            && !self.locked()
    }
}

fn load_code(tx: &Transaction<'_>, code: &str) -> Result<Option<CodeRow>, StoreError> {
    let hash = code_hash(code);
    Ok(tx
        .query_row(
            "SELECT id, kind, scope, state, expires_at, failed_attempts,
                    phone_device_id, phone_platform, phone_name, phone_model
             FROM pairing_codes WHERE code_hash = ?1",
            [&hash[..]],
            |r| {
                Ok(CodeRow {
                    id: r.get(0)?,
                    kind: r.get(1)?,
                    scope: r.get(2)?,
                    state: r.get(3)?,
                    expires_at: r.get(4)?,
                    failed_attempts: r.get(5)?,
                    phone_device_id: r.get(6)?,
                    phone_platform: r.get(7)?,
                    phone_name: r.get(8)?,
                    phone_model: r.get(9)?,
                })
            },
        )
        .optional()?)
}

/// Charges one failed attempt to every live code of `kind`.
fn charge_failure(tx: &Transaction<'_>, kind: PairingKind, now: i64) -> Result<(), StoreError> {
    tx.execute(
        "UPDATE pairing_codes SET failed_attempts = failed_attempts + 1
         WHERE kind = ?1 AND state IN ('pending', 'confirmed') AND expires_at > ?2
           AND failed_attempts < ?3",
        params![kind.as_str(), now, MAX_FAILED_ATTEMPTS],
    )?;
    Ok(())
}

/// Makes room for a new code: refuses a hash in use by a redeemed or live code, deletes a dead
/// one (expired, denied, locked) with the same hash, and enforces the live-code cap.
fn prepare_new_code(
    tx: &Transaction<'_>,
    code: &str,
    kind: PairingKind,
    now: i64,
) -> Result<Result<(), PairError>, StoreError> {
    if let Some(existing) = load_code(tx, code)? {
        if existing.state == "redeemed" || existing.live(now) {
            return Ok(Err(PairError::CodeInUse));
        }
        tx.execute("DELETE FROM pairing_codes WHERE id = ?1", [existing.id])?;
    }
    let live: i64 = tx.query_row(
        "SELECT count(*) FROM pairing_codes
         WHERE kind = ?1 AND state IN ('pending', 'confirmed') AND expires_at > ?2
           AND failed_attempts < ?3",
        params![kind.as_str(), now, MAX_FAILED_ATTEMPTS],
        |r| r.get(0),
    )?;
    if live >= MAX_LIVE_CODES_PER_KIND {
        return Ok(Err(PairError::TooManyPending));
    }
    Ok(Ok(()))
}

/// Marks the code redeemed by `device_id` and starts the device's refresh family.
fn finish_redemption(
    tx: &Transaction<'_>,
    code_id: i64,
    device_id: &str,
    refresh_hash: &[u8; 32],
    family_id: &str,
    now: i64,
) -> Result<(), StoreError> {
    let n = tx.execute(
        "UPDATE pairing_codes SET state = 'redeemed', device_id = ?2, redeemed_at = ?3
         WHERE id = ?1 AND state IN ('pending', 'confirmed')",
        params![code_id, device_id, now],
    )?;
    if n != 1 {
        return Err(StoreError::Corrupt(
            "pairing code changed during redemption",
        ));
    }
    start_family(tx, family_id, device_id, refresh_hash, now)
}

impl Store {
    /// Stores a new owner-initiated code granting `scope`, valid until `expires_at`.
    /// The code must come from a CSPRNG in the agent (see [`PairError::CodeInUse`]).
    pub fn create_pairing_code(
        &self,
        code: &str,
        scope: Scope,
        expires_at: i64,
        now: i64,
    ) -> Result<(), PairError> {
        validate_code(code)?;
        if expires_at <= now {
            return Err(StoreError::InvalidInput("expiry not in the future").into());
        }
        let kind = PairingKind::OwnerInitiated;
        flatten(self.write(|tx| {
            if let Err(e) = prepare_new_code(tx, code, kind, now)? {
                return Ok(Err(e));
            }
            tx.execute(
                "INSERT INTO pairing_codes (code_hash, kind, scope, created_at, expires_at)
                 VALUES (?1, ?2, ?3, ?4, ?5)",
                params![
                    &code_hash(code)[..],
                    kind.as_str(),
                    scope.as_str(),
                    now,
                    expires_at
                ],
            )?;
            Ok(Ok(()))
        }))
    }

    /// Redeems an owner-initiated code, atomically: the code must exist, be owner-initiated,
    /// pending, unexpired and not locked; then it is marked redeemed, the device `device_id` is
    /// created with the code's scope, and its first refresh token (`refresh_hash`, new family
    /// `family_id`) is stored. Any failure leaves nothing behind except the failed attempt
    /// charged to the live owner codes (see the module doc).
    pub fn redeem_owner_code(
        &self,
        code: &str,
        device: &DeviceInfo,
        device_id: &str,
        refresh_hash: &[u8; 32],
        family_id: &str,
        now: i64,
    ) -> Result<Device, PairError> {
        validate_device_info(device)?;
        validate_device_id(device_id)?;
        validate_family_id(family_id)?;
        let kind = PairingKind::OwnerInitiated;
        if validate_code(code).is_err() {
            self.record_failed_attempt(kind, now)?;
            return Err(PairError::InvalidCode);
        }
        flatten(self.write(|tx| {
            let row = match load_code(tx, code)? {
                Some(r) if r.kind == kind && r.state == "pending" && r.live(now) => r,
                _ => {
                    charge_failure(tx, kind, now)?;
                    return Ok(Err(PairError::InvalidCode));
                }
            };
            let created = insert_device(tx, device_id, device, row.scope, now)?;
            finish_redemption(tx, row.id, device_id, refresh_hash, family_id, now)?;
            Ok(Ok(created))
        }))
    }

    /// Charges one failed attempt to every live code of `kind`: for failures the agent detects
    /// itself before calling the store. The store's own operations already charge theirs.
    pub fn record_failed_attempt(&self, kind: PairingKind, now: i64) -> Result<(), StoreError> {
        self.write(|tx| charge_failure(tx, kind, now))
    }

    /// Stores a phone's request to pair under `code` (shown on the phone; the owner types it to
    /// confirm). The code must come from a CSPRNG in the agent, not from the phone.
    pub fn create_phone_pairing(
        &self,
        code: &str,
        request: &PhonePairingRequest,
        expires_at: i64,
        now: i64,
    ) -> Result<(), PairError> {
        validate_code(code)?;
        check_text(
            &request.phone_device_id,
            1,
            limits::PHONE_DEVICE_ID,
            "phone device id",
        )?;
        check_text(&request.name, 1, limits::NAME, "device name")?;
        check_opt_text(
            request.platform.as_deref(),
            limits::SHORT,
            "device platform",
        )?;
        check_opt_text(request.model.as_deref(), limits::MODEL, "device model")?;
        if expires_at <= now {
            return Err(StoreError::InvalidInput("expiry not in the future").into());
        }
        let kind = PairingKind::PhoneInitiated;
        flatten(self.write(|tx| {
            if let Err(e) = prepare_new_code(tx, code, kind, now)? {
                return Ok(Err(e));
            }
            tx.execute(
                "INSERT INTO pairing_codes (code_hash, kind, scope, created_at, expires_at,
                     phone_device_id, phone_platform, phone_name, phone_model)
                 VALUES (?1, ?2, 'viewer', ?3, ?4, ?5, ?6, ?7, ?8)",
                params![
                    &code_hash(code)[..],
                    kind.as_str(),
                    now,
                    expires_at,
                    request.phone_device_id,
                    request.platform,
                    request.name,
                    request.model
                ],
            )?;
            Ok(Ok(()))
        }))
    }

    /// Phone-initiated pairings waiting for the owner (pending, unexpired, not locked), oldest
    /// first.
    pub fn pending_phone_pairings(&self, now: i64) -> Result<Vec<PendingPairing>, StoreError> {
        let conn = self.lock();
        let mut stmt = conn.prepare_cached(
            "SELECT id, phone_device_id, phone_platform, phone_name, phone_model,
                    created_at, expires_at
             FROM pairing_codes
             WHERE kind = 'phone_initiated' AND state = 'pending' AND expires_at > ?1
               AND failed_attempts < ?2
             ORDER BY created_at, id",
        )?;
        let rows = stmt
            .query_map(params![now, MAX_FAILED_ATTEMPTS], |r| {
                Ok(PendingPairing {
                    id: r.get(0)?,
                    phone_device_id: r.get(1)?,
                    platform: r.get(2)?,
                    name: r.get(3)?,
                    model: r.get(4)?,
                    created_at: r.get(5)?,
                    expires_at: r.get(6)?,
                })
            })?
            .collect::<Result<Vec<_>, _>>()?;
        Ok(rows)
    }

    /// The owner confirms the phone-initiated pairing whose code they read on the phone, and
    /// chooses the scope it gets. Only a pending, unexpired, unlocked code can be confirmed.
    pub fn confirm_pairing(&self, code: &str, scope: Scope, now: i64) -> Result<(), PairError> {
        validate_code(code).map_err(|_| PairError::InvalidCode)?;
        flatten(self.write(|tx| match load_code(tx, code)? {
            Some(r)
                if r.kind == PairingKind::PhoneInitiated && r.state == "pending" && r.live(now) =>
            {
                tx.execute(
                    "UPDATE pairing_codes SET state = 'confirmed', scope = ?2, decided_at = ?3
                         WHERE id = ?1",
                    params![r.id, scope.as_str(), now],
                )?;
                Ok(Ok(()))
            }
            _ => Ok(Err(PairError::InvalidCode)),
        }))
    }

    /// The owner denies a phone-initiated pairing (pending, or confirmed but not yet exchanged).
    pub fn deny_pairing(&self, code: &str, now: i64) -> Result<(), PairError> {
        validate_code(code).map_err(|_| PairError::InvalidCode)?;
        flatten(self.write(|tx| match load_code(tx, code)? {
            Some(r) if r.kind == PairingKind::PhoneInitiated && r.live(now) => {
                deny(tx, r.id, now)?;
                Ok(Ok(()))
            }
            _ => Ok(Err(PairError::InvalidCode)),
        }))
    }

    /// [`Store::deny_pairing`] by the row id of [`PendingPairing`] (the owner's "Deny" button).
    /// `false` if there is no such live phone-initiated pairing.
    pub fn deny_pairing_by_id(&self, id: i64, now: i64) -> Result<bool, StoreError> {
        self.write(|tx| {
            Ok(tx.execute(
                "UPDATE pairing_codes SET state = 'denied', decided_at = ?2
                 WHERE id = ?1 AND kind = 'phone_initiated'
                   AND state IN ('pending', 'confirmed') AND expires_at > ?2",
                params![id, now],
            )? == 1)
        })
    }

    /// What the phone polling its code is told. `None` (and a failed attempt charged to the live
    /// phone codes) when the code is unknown or owner-initiated: status is an existence oracle,
    /// so misses count like wrong guesses.
    pub fn pairing_status(
        &self,
        code: &str,
        now: i64,
    ) -> Result<Option<PairingStatus>, StoreError> {
        let kind = PairingKind::PhoneInitiated;
        if validate_code(code).is_err() {
            self.record_failed_attempt(kind, now)?;
            return Ok(None);
        }
        self.write(|tx| {
            let row = match load_code(tx, code)? {
                Some(r) if r.kind == kind => r,
                _ => {
                    charge_failure(tx, kind, now)?;
                    return Ok(None);
                }
            };
            Ok(Some(if row.locked() || row.state == "denied" {
                PairingStatus::Denied
            } else if row.state == "redeemed" || row.expires_at <= now {
                PairingStatus::Expired
            } else if row.state == "confirmed" {
                PairingStatus::Confirmed
            } else {
                PairingStatus::Pending
            }))
        })
    }

    /// The phone exchanges its confirmed code for a device and its first refresh token, once.
    ///
    /// * unknown, owner-initiated, expired, denied, locked or already exchanged →
    ///   [`PairError::InvalidCode`] (charged as a failed attempt);
    /// * `phone_device_id` given and different from the one that asked →
    ///   [`PairError::DeviceMismatch`], and the pairing is denied;
    /// * still pending → [`PairError::NotConfirmed`];
    /// * confirmed → the device `device_id` is created from the phone's request with the scope
    ///   the owner chose, the code is marked redeemed and the refresh family started, atomically.
    pub fn exchange_phone_code(
        &self,
        code: &str,
        phone_device_id: Option<&str>,
        device_id: &str,
        refresh_hash: &[u8; 32],
        family_id: &str,
        now: i64,
    ) -> Result<Device, PairError> {
        validate_device_id(device_id)?;
        validate_family_id(family_id)?;
        let kind = PairingKind::PhoneInitiated;
        if validate_code(code).is_err() {
            self.record_failed_attempt(kind, now)?;
            return Err(PairError::InvalidCode);
        }
        flatten(self.write(|tx| {
            let row = match load_code(tx, code)? {
                Some(r) if r.kind == kind && r.live(now) => r,
                _ => {
                    charge_failure(tx, kind, now)?;
                    return Ok(Err(PairError::InvalidCode));
                }
            };
            let (Some(asked_by), Some(name)) =
                (row.phone_device_id.clone(), row.phone_name.clone())
            else {
                return Err(StoreError::Corrupt("phone pairing without phone details"));
            };
            if let Some(given) = phone_device_id {
                if !bool::from(given.as_bytes().ct_eq(asked_by.as_bytes())) {
                    deny(tx, row.id, now)?;
                    return Ok(Err(PairError::DeviceMismatch));
                }
            }
            if row.state != "confirmed" {
                return Ok(Err(PairError::NotConfirmed));
            }
            let info = DeviceInfo {
                name,
                model: row.phone_model.clone(),
                platform: row.phone_platform.clone(),
                os_version: None,
                app_version: None,
                phone_device_id: Some(asked_by),
            };
            let created = insert_device(tx, device_id, &info, row.scope, now)?;
            finish_redemption(tx, row.id, device_id, refresh_hash, family_id, now)?;
            Ok(Ok(created))
        }))
    }

    /// Housekeeping: deletes codes that died (expired, denied or locked, never redeemed) more
    /// than `keep_secs` ago, and refresh tokens that expired more than `keep_secs` ago. Redeemed
    /// codes stay (they record how each device was paired). Returns `(codes, tokens)` deleted.
    pub fn prune(&self, now: i64, keep_secs: i64) -> Result<(usize, usize), StoreError> {
        let cutoff = now.saturating_sub(keep_secs.max(0));
        self.write(|tx| {
            let codes = tx.execute(
                "DELETE FROM pairing_codes
                 WHERE state <> 'redeemed'
                   AND (expires_at <= ?1
                        OR (decided_at IS NOT NULL AND state = 'denied' AND decided_at <= ?1)
                        OR (failed_attempts >= ?2 AND created_at <= ?1))",
                params![cutoff, MAX_FAILED_ATTEMPTS],
            )?;
            let tokens = tx.execute(
                "DELETE FROM refresh_tokens WHERE expires_at <= ?1",
                params![cutoff],
            )?;
            Ok((codes, tokens))
        })
    }
}

fn deny(tx: &Transaction<'_>, id: i64, now: i64) -> Result<(), StoreError> {
    tx.execute(
        "UPDATE pairing_codes SET state = 'denied', decided_at = ?2 WHERE id = ?1",
        params![id, now],
    )?;
    Ok(())
}
