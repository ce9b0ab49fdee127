//! Paired devices: listing, renaming, revocation, last-seen.
//!
//! Devices are created only by the pairing operations (in the transaction that redeems a code).

use rusqlite::{params, OptionalExtension, Row, Transaction};

use super::{
    check_opt_text, check_text, limits, Device, DeviceInfo, RevokedDevice, Scope, Store,
    StoreError, TOUCH_GRANULARITY_SECS,
};

/// Read from `devices d`.
const DEVICE_COLUMNS: &str = "d.id, d.name, d.model, d.platform, d.os_version, d.app_version, \
     d.phone_device_id, d.scope, d.created_at, d.last_seen_at, d.revoked_at, \
     (SELECT max(f.revoked_at) FROM refresh_families f \
      WHERE f.device_id = d.id AND f.revoked_reason = 'reuse')";

/// The one definition of an active device (of `devices d`): not revoked, and no refresh family
/// of it revoked for reuse. A reuse revokes the device in the same transaction; the second
/// condition covers databases from before it did (their devices could no longer refresh, yet
/// were listed as active).
const IS_ACTIVE: &str = "d.revoked_at IS NULL AND NOT EXISTS \
     (SELECT 1 FROM refresh_families f WHERE f.device_id = d.id AND f.revoked_reason = 'reuse')";

fn device_row(r: &Row<'_>) -> rusqlite::Result<Device> {
    Ok(Device {
        id: r.get(0)?,
        name: r.get(1)?,
        model: r.get(2)?,
        platform: r.get(3)?,
        os_version: r.get(4)?,
        app_version: r.get(5)?,
        phone_device_id: r.get(6)?,
        scope: r.get(7)?,
        created_at: r.get(8)?,
        last_seen_at: r.get(9)?,
        revoked_at: r.get(10)?,
        reuse_detected_at: r.get(11)?,
    })
}

pub(super) fn validate_device_info(info: &DeviceInfo) -> Result<(), StoreError> {
    check_text(&info.name, 1, limits::NAME, "device name")?;
    check_opt_text(info.model.as_deref(), limits::MODEL, "device model")?;
    check_opt_text(info.platform.as_deref(), limits::SHORT, "device platform")?;
    check_opt_text(info.os_version.as_deref(), limits::SHORT, "os version")?;
    check_opt_text(info.app_version.as_deref(), limits::SHORT, "app version")?;
    if let Some(pid) = info.phone_device_id.as_deref() {
        check_text(pid, 1, limits::PHONE_DEVICE_ID, "phone device id")?;
    }
    Ok(())
}

pub(super) fn validate_device_id(id: &str) -> Result<(), StoreError> {
    check_text(id, 1, limits::DEVICE_ID, "device id")
}

/// Inserts a device inside the caller's transaction.
pub(super) fn insert_device(
    tx: &Transaction<'_>,
    id: &str,
    info: &DeviceInfo,
    scope: Scope,
    now: i64,
) -> Result<Device, StoreError> {
    tx.execute(
        "INSERT INTO devices (id, name, model, platform, os_version, app_version,
                              phone_device_id, scope, created_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
        params![
            id,
            info.name,
            info.model,
            info.platform,
            info.os_version,
            info.app_version,
            info.phone_device_id,
            scope.as_str(),
            now
        ],
    )?;
    Ok(Device {
        id: id.to_owned(),
        name: info.name.clone(),
        model: info.model.clone(),
        platform: info.platform.clone(),
        os_version: info.os_version.clone(),
        app_version: info.app_version.clone(),
        phone_device_id: info.phone_device_id.clone(),
        scope,
        created_at: now,
        last_seen_at: None,
        revoked_at: None,
        reuse_detected_at: None,
    })
}

/// Revokes a device and every refresh family of it still live, inside the caller's transaction
/// (the caller then calls `note_revocation`). `true` if the device was active.
pub(super) fn revoke_device_in(
    tx: &Transaction<'_>,
    id: &str,
    now: i64,
) -> Result<bool, StoreError> {
    let n = tx.execute(
        "UPDATE devices SET revoked_at = ?2 WHERE id = ?1 AND revoked_at IS NULL",
        params![id, now],
    )?;
    tx.execute(
        "UPDATE refresh_families SET revoked_at = ?2, revoked_reason = 'device_revoked'
         WHERE device_id = ?1 AND revoked_at IS NULL",
        params![id, now],
    )?;
    Ok(n == 1)
}

/// Reads a device inside the caller's transaction.
pub(super) fn load_device(tx: &Transaction<'_>, id: &str) -> Result<Option<Device>, StoreError> {
    let sql = format!("SELECT {DEVICE_COLUMNS} FROM devices d WHERE d.id = ?1");
    Ok(tx.query_row(&sql, [id], device_row).optional()?)
}

impl Store {
    /// Every device, revoked ones included, oldest first.
    pub fn list_devices(&self) -> Result<Vec<Device>, StoreError> {
        let conn = self.lock();
        let sql = format!("SELECT {DEVICE_COLUMNS} FROM devices d ORDER BY d.created_at, d.id");
        let mut stmt = conn.prepare_cached(&sql)?;
        let devices = stmt
            .query_map([], device_row)?
            .collect::<Result<Vec<_>, _>>()?;
        Ok(devices)
    }

    /// One device (revoked or not).
    pub fn device(&self, id: &str) -> Result<Option<Device>, StoreError> {
        let conn = self.lock();
        let sql = format!("SELECT {DEVICE_COLUMNS} FROM devices d WHERE d.id = ?1");
        let mut stmt = conn.prepare_cached(&sql)?;
        Ok(stmt.query_row([id], device_row).optional()?)
    }

    /// Renames a device. `false` if there is no such device.
    pub fn rename_device(&self, id: &str, name: &str) -> Result<bool, StoreError> {
        check_text(name, 1, limits::NAME, "device name")?;
        self.write(|tx| {
            Ok(tx.execute(
                "UPDATE devices SET name = ?2 WHERE id = ?1",
                params![id, name],
            )? == 1)
        })
    }

    /// Revokes a device and, in the same transaction, every refresh-token family it has.
    /// `true` if the device existed and was active; `false` if unknown or already revoked.
    pub fn revoke_device(&self, id: &str, now: i64) -> Result<bool, StoreError> {
        let result = self.write(|tx| revoke_device_in(tx, id, now));
        self.note_revocation();
        result
    }

    /// Records that an active device was seen at `now`. Writes (and fsyncs) at most once per
    /// [`TOUCH_GRANULARITY_SECS`] per device; otherwise a read-only no-op.
    pub fn touch_device(&self, id: &str, now: i64) -> Result<(), StoreError> {
        let conn = self.lock();
        let due: Option<Option<i64>> = conn
            .prepare_cached(
                "SELECT last_seen_at FROM devices WHERE id = ?1 AND revoked_at IS NULL",
            )?
            .query_row([id], |r| r.get(0))
            .optional()?;
        let due = match due {
            None => false,
            Some(None) => true,
            Some(Some(seen)) => now.saturating_sub(seen).saturating_abs() >= TOUCH_GRANULARITY_SECS,
        };
        if due {
            conn.prepare_cached(
                "UPDATE devices SET last_seen_at = ?2 WHERE id = ?1 AND revoked_at IS NULL",
            )?
            .execute(params![id, now])?;
        }
        Ok(())
    }

    /// Ids of all devices that are not revoked.
    pub fn active_device_ids(&self) -> Result<Vec<String>, StoreError> {
        let conn = self.lock();
        let sql = format!("SELECT d.id FROM devices d WHERE {IS_ACTIVE} ORDER BY d.id");
        let mut stmt = conn.prepare_cached(&sql)?;
        let ids = stmt
            .query_map([], |r| r.get(0))?
            .collect::<Result<Vec<_>, _>>()?;
        Ok(ids)
    }

    /// Whether the device exists and is not revoked.
    pub fn is_device_active(&self, id: &str) -> Result<bool, StoreError> {
        let conn = self.lock();
        let sql = format!("SELECT 1 FROM devices d WHERE d.id = ?1 AND {IS_ACTIVE}");
        let mut stmt = conn.prepare_cached(&sql)?;
        Ok(stmt.exists([id])?)
    }

    /// Devices revoked at or after `since`, oldest revocation first (the edge's revocation list).
    pub fn revoked_since(&self, since: i64) -> Result<Vec<RevokedDevice>, StoreError> {
        let conn = self.lock();
        let mut stmt = conn.prepare_cached(
            "SELECT id, revoked_at FROM devices
             WHERE revoked_at IS NOT NULL AND revoked_at >= ?1 ORDER BY revoked_at, id",
        )?;
        let rows = stmt
            .query_map([since], |r| {
                Ok(RevokedDevice {
                    id: r.get(0)?,
                    revoked_at: r.get(1)?,
                })
            })?
            .collect::<Result<Vec<_>, _>>()?;
        Ok(rows)
    }

    /// Number of active (not revoked) devices.
    pub fn device_count(&self) -> Result<u64, StoreError> {
        let sql = format!("SELECT count(*) FROM devices d WHERE {IS_ACTIVE}");
        let n: i64 = self.lock().query_row(&sql, [], |r| r.get(0))?;
        Ok(u64::try_from(n).unwrap_or(0))
    }
}
