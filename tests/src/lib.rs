//! The end-to-end harness: the whole argus-relay stack on loopback, driven like a phone.
//!
//! [`Stack::start`] brings up, on ephemeral loopback ports and with readiness waits:
//! 1. the stand-in ArgusAI backend ([`backend`]), in this process;
//! 2. the origin agent (`argus-relay init` + `argus-relay run`, the real binary) ([`agent`]);
//! 3. the real edge Worker under `wrangler dev` (workerd), pointed at the agent ([`worker`]) —
//!    or, with [`StackOptions::tunnel`], at a stand-in cloudflared the agent supervises
//!    ([`cloudflared`]), which relays to the agent while it says it is connected.
//!
//! Everything is torn down when the [`Stack`] is dropped, also when a test panics: child processes
//! run in their own process groups and are killed as groups, and they die with the test process.

pub mod agent;
pub mod backend;
pub mod chaos;
pub mod cloudflared;
pub mod lan;
pub mod netns;
pub mod phone;
pub mod process;
pub mod selfhost;
pub mod signer;
pub mod small_disk;
pub mod stack;
pub mod via;
pub mod worker;
pub mod ws;

pub use stack::{PairedDevice, Stack, StackOptions};

use std::path::PathBuf;

/// The workspace root (the checkout).
pub fn workspace_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// `../shared` beside the checkout: reference material (photos, test vectors, the backend's API).
/// CI has it; a user's fresh clone does not, and everything must pass there too: read it through
/// [`reference_file`], or fall back to generated data as [`backend::default_photos_dir`] does.
pub fn reference_dir() -> PathBuf {
    workspace_root().join("..").join("shared")
}

/// `relative` under [`reference_dir`], or `None` when it is absent, after a line on stderr naming
/// `test` and what it skips. Written past the test harness's output capture, so a fresh clone's
/// `cargo test` shows every check it did not run.
pub fn reference_file(test: &str, relative: &str) -> Option<PathBuf> {
    let path = reference_dir().join(relative);
    if path.exists() {
        return Some(path);
    }
    use std::io::Write as _;
    let _ = writeln!(
        std::io::stderr(),
        "{test}: SKIPPED: {} is absent (a clone without the workplace's shared/ beside it; CI has it)",
        path.display()
    );
    None
}
