//! The LAN certificate: a self-signed certificate made once by `argus-relay init`. Phones pin it
//! by its SHA-256 fingerprint (given in the pairing QR code and the pairing answer), so it needs
//! no CA and no stable IP address.
//!
//! Files in the data directory: `lan-cert.pem` (0644) and `lan-key.pem` (0600, created with
//! `O_EXCL`, never overwritten).

use std::fs::OpenOptions;
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

pub const CERT_FILE: &str = "lan-cert.pem";
pub const KEY_FILE: &str = "lan-key.pem";
/// Validity of the certificate. Pinning, not expiry, is what phones rely on.
const VALIDITY_DAYS: i64 = 20 * 365;

#[derive(Debug, thiserror::Error)]
pub enum LanCertError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot generate the certificate: {0}")]
    Generate(#[from] rcgen::Error),
    #[error("{0}: not a PEM certificate")]
    BadPem(PathBuf),
    #[error("{0} exists without {1}: restore it or remove both to make a new certificate")]
    HalfPresent(PathBuf, PathBuf),
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> LanCertError + '_ {
    move |source| LanCertError::Io {
        path: path.to_owned(),
        source,
    }
}

/// `sha256:<lowercase hex>` of a DER certificate.
pub fn fingerprint(der: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(der)))
}

/// Creates the certificate and key if neither exists; returns the certificate's fingerprint.
/// Never replaces an existing key.
pub fn ensure(data_dir: &Path) -> Result<(String, bool), LanCertError> {
    let cert_path = data_dir.join(CERT_FILE);
    let key_path = data_dir.join(KEY_FILE);
    match (cert_path.exists(), key_path.exists()) {
        (true, true) => return Ok((fingerprint_of_file(data_dir)?, false)),
        (true, false) => return Err(LanCertError::HalfPresent(cert_path, key_path)),
        (false, true) => return Err(LanCertError::HalfPresent(key_path, cert_path)),
        (false, false) => {}
    }
    let host = hostname_local();
    let mut params = rcgen::CertificateParams::new(vec![
        "localhost".to_owned(),
        host.clone(),
        "127.0.0.1".to_owned(),
        "::1".to_owned(),
    ])?;
    params.distinguished_name.push(
        rcgen::DnType::CommonName,
        format!("argus-relay LAN ({host})"),
    );
    params.not_before = time::OffsetDateTime::now_utc() - time::Duration::days(1);
    params.not_after = time::OffsetDateTime::now_utc() + time::Duration::days(VALIDITY_DAYS);
    let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256)?;
    let cert = params.self_signed(&key)?;

    let mut key_file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&key_path)
        .map_err(io(&key_path))?;
    key_file
        .write_all(key.serialize_pem().as_bytes())
        .and_then(|()| key_file.sync_all())
        .map_err(io(&key_path))?;
    let tmp = data_dir.join(format!("{CERT_FILE}.tmp"));
    std::fs::write(&tmp, cert.pem()).map_err(io(&tmp))?;
    std::fs::rename(&tmp, &cert_path).map_err(io(&cert_path))?;
    Ok((fingerprint(cert.der()), true))
}

/// The fingerprint of the certificate in `data_dir`.
pub fn fingerprint_of_file(data_dir: &Path) -> Result<String, LanCertError> {
    let path = data_dir.join(CERT_FILE);
    let text = std::fs::read(&path).map_err(io(&path))?;
    let pem = pem::parse(text).map_err(|_| LanCertError::BadPem(path.clone()))?;
    if pem.tag() != "CERTIFICATE" {
        return Err(LanCertError::BadPem(path));
    }
    Ok(fingerprint(pem.contents()))
}

/// `<hostname>.local`, the mDNS name phones on the LAN can use.
fn hostname_local() -> String {
    let name = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|s| s.trim().to_owned())
        .filter(|s| !s.is_empty() && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-'))
        .unwrap_or_else(|| "argus-relay".to_owned());
    format!("{name}.local")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn init_makes_one_certificate_and_keeps_it() {
        let dir = tempfile::tempdir().unwrap();
        let (fp, created) = ensure(dir.path()).unwrap();
        assert!(created);
        assert!(fp.starts_with("sha256:") && fp.len() == 7 + 64, "{fp}");
        let (again, created) = ensure(dir.path()).unwrap();
        assert!(!created);
        assert_eq!(fp, again, "re-running never replaces the certificate");
        let mode = std::fs::metadata(dir.path().join(KEY_FILE)).unwrap();
        assert_eq!(
            std::os::unix::fs::PermissionsExt::mode(&mode.permissions()) & 0o777,
            0o600
        );
    }

    #[test]
    fn a_lost_key_is_reported_not_replaced() {
        let dir = tempfile::tempdir().unwrap();
        ensure(dir.path()).unwrap();
        std::fs::remove_file(dir.path().join(KEY_FILE)).unwrap();
        assert!(matches!(
            ensure(dir.path()),
            Err(LanCertError::HalfPresent(..))
        ));
    }
}
