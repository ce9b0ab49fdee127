//! A small filesystem for a data directory (a tmpfs of a given size, mounted by the test), so a
//! test can fill it to the last byte and free it again: "the agent's disk is full".
//!
//! Mounting needs root (CI runs as root); [`SmallDisk::mount`] says why it cannot otherwise, and
//! the caller skips the disk-full checks, saying so.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;

/// A tmpfs mounted at a directory; unmounted (lazily) when dropped.
#[derive(Debug)]
pub struct SmallDisk {
    path: PathBuf,
    filler: PathBuf,
}

impl SmallDisk {
    /// Mounts a tmpfs of `bytes` (mode 0700) at `path` (created if missing).
    pub fn mount(path: &Path, bytes: u64) -> Result<SmallDisk, String> {
        std::fs::create_dir_all(path).map_err(|e| format!("{}: {e}", path.display()))?;
        let out = Command::new("mount")
            .args(["-t", "tmpfs", "-o"])
            .arg(format!("size={bytes},mode=0700"))
            .arg("tmpfs")
            .arg(path)
            .output()
            .map_err(|e| format!("cannot run mount: {e}"))?;
        if !out.status.success() {
            return Err(format!(
                "mount -t tmpfs at {} failed ({}): {}",
                path.display(),
                out.status,
                String::from_utf8_lossy(&out.stderr).trim()
            ));
        }
        Ok(SmallDisk {
            path: path.to_owned(),
            filler: path.join("chaos-filler"),
        })
    }

    /// Writes a filler file until the filesystem refuses (ENOSPC); returns the bytes written.
    pub fn fill(&self) -> Result<u64, String> {
        let mut f = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.filler)
            .map_err(|e| format!("{}: {e}", self.filler.display()))?;
        let block = vec![0x5a_u8; 64 * 1024];
        let mut written = 0u64;
        let mut size = block.len();
        loop {
            match f.write(&block[..size]) {
                Ok(0) => break,
                Ok(n) => written += n as u64,
                Err(e) if e.raw_os_error() == Some(libc::ENOSPC) => {
                    // Down to the last bytes, so nothing is left for anyone.
                    if size == 1 {
                        break;
                    }
                    size = (size / 2).max(1);
                }
                Err(e) => return Err(format!("{}: {e}", self.filler.display())),
            }
        }
        Ok(written)
    }

    /// Deletes the filler: the space is back.
    pub fn free(&self) -> Result<(), String> {
        match std::fs::remove_file(&self.filler) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(format!("{}: {e}", self.filler.display())),
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.path).output();
    }
}
