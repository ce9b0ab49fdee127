//! Running one test in a network namespace of its own, when the machine allows it.
//!
//! mDNS daemons join the multicast group on every interface before they can be told to use
//! `lo` only, so the kernel sends IGMP/MLD membership reports on the real interfaces even
//! though no mDNS packet goes there. Inside a fresh namespace (`unshare --net`, only `lo`,
//! brought up) nothing at all can leave the machine, and parallel tests cannot see each
//! other's advertisements.
//!
//! [`run_isolated`] re-executes the test binary for one test inside such a namespace when it
//! runs as root with `unshare` and `ip` available; otherwise the test runs in place, still
//! confined to loopback by its own settings (see [`crate::lan`]). `ARGUS_E2E_NETNS=off` forces
//! in-place runs.

use std::path::Path;
use std::process::Command;

/// Set in the child: "you are inside the namespace, run the test body".
const INSIDE: &str = "ARGUS_E2E_INSIDE_NETNS";
const SWITCH: &str = "ARGUS_E2E_NETNS";

fn tool(name: &str) -> Option<String> {
    ["/usr/bin", "/usr/sbin", "/bin", "/sbin"]
        .iter()
        .map(|d| format!("{d}/{name}"))
        .find(|p| Path::new(p).exists())
}

/// `true`: the test `name` already ran (and passed) in its own network namespace; the caller
/// returns. `false`: run the test here (inside the namespace, or where one is not possible).
/// Panics if the isolated run failed.
pub fn run_isolated(name: &str) -> bool {
    if std::env::var_os(INSIDE).is_some() {
        return false;
    }
    if std::env::var(SWITCH).is_ok_and(|v| v == "off") {
        return false;
    }
    // SAFETY: plain syscall.
    let root = unsafe { libc::geteuid() } == 0;
    let (Some(unshare), Some(ip), Ok(exe)) = (tool("unshare"), tool("ip"), std::env::current_exe())
    else {
        eprintln!("note: {name}: no unshare/ip here; running on loopback in the host namespace");
        return false;
    };
    if !root {
        eprintln!("note: {name}: not root; running on loopback in the host namespace");
        return false;
    }
    // Root in a container may still lack the right to make namespaces.
    let can = Command::new(&unshare)
        .args(["--net", "--", "true"])
        .status()
        .is_ok_and(|s| s.success());
    if !can {
        eprintln!("note: {name}: cannot make a network namespace; running on loopback in place");
        return false;
    }
    let status = Command::new(unshare)
        .args(["--net", "--", "sh", "-c"])
        .arg(format!("{ip} link set lo up && exec \"$0\" \"$@\""))
        .arg(exe)
        // `--include-ignored`: an ignored test (a benchmark) asked for by name runs in there too.
        .args([
            name,
            "--exact",
            "--include-ignored",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(INSIDE, "1")
        .status();
    match status {
        Ok(s) if s.success() => true,
        Ok(s) => panic!("{name} failed in its own network namespace ({s}); output above"),
        Err(e) => {
            eprintln!("note: {name}: cannot run unshare ({e}); running on loopback in place");
            false
        }
    }
}
