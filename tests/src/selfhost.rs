//! The self-hosted relay (docs/selfhost.md) in three network namespaces made for one test:
//!
//! ```text
//! phone ns 10.201.2.2 ──▶ 10.201.2.1 vps ns: Caddy :443 (tls internal) ─▶ workerd 127.0.0.1:8787
//!                                               rathole server :2333 ◀── 10.201.1.2 home ns:
//!                                               (service on 127.0.0.1:8480)   agent + rathole client
//!                                                                             + stand-in ArgusAI
//! ```
//! The vps namespace does not forward packets (a new namespace's default), so the phone reaches
//! the home side only through the relay. The test body runs inside the phone namespace (the test
//! binary is run again there, [`run_in_phone_namespace`]); the other processes are started with
//! `ip netns exec`. Every process and namespace goes when the test ends, also on failure
//! ([`Namespaces`]'s drop).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use crate::process::ChildProcess;
use crate::workspace_root;

pub const VPS_TO_HOME: &str = "10.201.1.1";
pub const HOME: &str = "10.201.1.2";
pub const VPS_TO_PHONE: &str = "10.201.2.1";
pub const PHONE: &str = "10.201.2.2";
pub const RATHOLE_PORT: u16 = 2333;
/// The rathole service's port on the VPS (selfhost init's `TUNNEL_ORIGIN`).
pub const TUNNEL_ORIGIN_PORT: u16 = 8480;
pub const DOMAIN: &str = "relay.test";

const INSIDE: &str = "ARGUS_SELFHOST_NAMESPACES";
/// The whole test, bounded.
const TEST_LIMIT: Duration = Duration::from_secs(300);

/// The programs the test needs; a missing one fails the test with what to run.
pub struct Programs {
    pub rathole: PathBuf,
    pub caddy: PathBuf,
    pub workerd: PathBuf,
    pub ip: PathBuf,
    /// For requests made inside the vps namespace.
    pub curl: PathBuf,
}

fn on_path(name: &str, extra: &[PathBuf]) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(extra.iter().cloned())
        .chain(["/usr/sbin", "/sbin", "/usr/bin", "/bin"].map(PathBuf::from))
        .map(|d| d.join(name))
        .find(|p| p.is_file())
}

impl Programs {
    pub fn find() -> Programs {
        let cargo_bin = std::env::var_os("HOME")
            .map(|h| PathBuf::from(h).join(".cargo/bin"))
            .into_iter()
            .collect::<Vec<_>>();
        let need = |name: &str, found: Option<PathBuf>| {
            found.unwrap_or_else(|| {
                panic!(
                    "{name} is missing: the self-hosted relay tests need rathole, caddy, workerd and curl; \
                     run `bash scripts/bootstrap.sh` (make test does)"
                )
            })
        };
        let workerd = workspace_root().join("node_modules/.bin/workerd");
        Programs {
            rathole: need("rathole", on_path("rathole", &cargo_bin)),
            caddy: need("caddy", on_path("caddy", &[])),
            workerd: need("workerd", workerd.is_file().then_some(workerd)),
            ip: need("ip (iproute2)", on_path("ip", &[])),
            curl: need("curl", on_path("curl", &[])),
        }
    }
}

/// The three namespaces, named after this process. Dropping them kills what runs inside and
/// deletes them (their veth links go with them).
pub struct Namespaces {
    ip: PathBuf,
    pub vps: String,
    pub home: String,
    pub phone: String,
}

fn run(ip: &Path, args: &[&str]) -> Result<(), String> {
    let out = Command::new(ip)
        .args(args)
        .output()
        .map_err(|e| format!("ip {args:?}: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "ip {args:?}: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

impl Namespaces {
    pub fn create(ip: &Path) -> Result<Namespaces, String> {
        let tag = std::process::id();
        let ns = Namespaces {
            ip: ip.to_owned(),
            vps: format!("argus{tag}vps"),
            home: format!("argus{tag}home"),
            phone: format!("argus{tag}phone"),
        };
        for n in [&ns.vps, &ns.home, &ns.phone] {
            run(ip, &["netns", "add", n])?;
            run(ip, &["-n", n, "link", "set", "lo", "up"])?;
        }
        let links = [
            (&ns.home, HOME, VPS_TO_HOME, "10.201.1"),
            (&ns.phone, PHONE, VPS_TO_PHONE, "10.201.2"),
        ];
        for (i, (other, other_ip, vps_ip, _)) in links.iter().enumerate() {
            let (a, b) = (format!("ar{tag}v{i}"), format!("ar{tag}o{i}"));
            run(
                ip,
                &[
                    "link", "add", &a, "netns", &ns.vps, "type", "veth", "peer", "name", &b,
                    "netns", other,
                ],
            )?;
            run(
                ip,
                &[
                    "-n",
                    &ns.vps,
                    "addr",
                    "add",
                    &format!("{vps_ip}/24"),
                    "dev",
                    &a,
                ],
            )?;
            run(
                ip,
                &[
                    "-n",
                    other,
                    "addr",
                    "add",
                    &format!("{other_ip}/24"),
                    "dev",
                    &b,
                ],
            )?;
            run(ip, &["-n", &ns.vps, "link", "set", &a, "up"])?;
            run(ip, &["-n", other, "link", "set", &b, "up"])?;
        }
        Ok(ns)
    }

    /// `ip netns exec NS program`: `ip` execs the program, so the child is the program itself.
    pub fn command(&self, ns: &str, program: impl AsRef<std::ffi::OsStr>) -> Command {
        let mut cmd = Command::new(&self.ip);
        cmd.args(["netns", "exec", ns]).arg(program);
        cmd
    }

    fn from_env(ip: &Path) -> Option<Namespaces> {
        let names = std::env::var(INSIDE).ok()?;
        let mut it = names.split(',').map(str::to_owned);
        Some(Namespaces {
            ip: ip.to_owned(),
            vps: it.next()?,
            home: it.next()?,
            phone: it.next()?,
        })
    }
}

impl Drop for Namespaces {
    fn drop(&mut self) {
        if std::env::var_os(INSIDE).is_some() {
            // The outer run owns them.
            return;
        }
        for n in [&self.vps, &self.home, &self.phone] {
            if let Ok(out) = Command::new(&self.ip).args(["netns", "pids", n]).output() {
                for pid in String::from_utf8_lossy(&out.stdout).split_whitespace() {
                    if let Ok(pid) = pid.parse::<i32>() {
                        // SAFETY: plain syscall; these pids live in the test's own namespace.
                        unsafe {
                            libc::kill(pid, libc::SIGKILL);
                        }
                    }
                }
            }
            let _ = run(&self.ip, &["netns", "del", n]);
        }
    }
}

/// `Some(namespaces)`: run the test body (we are in the phone namespace). `None`: the test ran
/// there already and passed (its output is above); the caller returns. Panics when it failed.
pub fn run_in_phone_namespace(test: &str) -> Option<(Namespaces, Programs)> {
    let programs = Programs::find();
    if let Some(ns) = Namespaces::from_env(&programs.ip) {
        return Some((ns, programs));
    }
    // SAFETY: plain syscall.
    if unsafe { libc::geteuid() } != 0 {
        panic!("{test}: needs root to make network namespaces (CI and `make test` run as root)");
    }
    let ns = Namespaces::create(&programs.ip).unwrap_or_else(|e| panic!("{test}: {e}"));
    let exe = std::env::current_exe().expect("test binary");
    let mut cmd = ns.command(&ns.phone, exe);
    cmd.args([test, "--exact", "--nocapture", "--test-threads=1"])
        .env(INSIDE, format!("{},{},{}", ns.vps, ns.home, ns.phone));
    let mut child = cmd.spawn().expect("run the test in the phone namespace");
    let deadline = Instant::now() + TEST_LIMIT;
    let status = loop {
        if let Ok(Some(status)) = child.try_wait() {
            break Some(status);
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    drop(ns);
    match status {
        Some(s) if s.success() => None,
        Some(s) => panic!("{test} failed in the phone namespace ({s}); output above"),
        None => panic!("{test} took longer than {} s", TEST_LIMIT.as_secs()),
    }
}

/// A process started in a namespace, with its output kept for failure messages.
pub fn spawn_in(
    ns: &Namespaces,
    namespace: &str,
    name: &str,
    program: &Path,
    args: &[&str],
    env: &[(&str, &str)],
) -> ChildProcess {
    let mut cmd = ns.command(namespace, program);
    cmd.args(args);
    for (k, v) in env {
        cmd.env(k, v);
    }
    ChildProcess::spawn(name, cmd).unwrap_or_else(|e| panic!("{name}: {e}"))
}

/// Runs a command in a namespace to completion: (success, stdout + stderr).
pub fn output_in(
    ns: &Namespaces,
    namespace: &str,
    program: &Path,
    args: &[&str],
) -> (bool, String) {
    let out = ns
        .command(namespace, program)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("{}: {e}", program.display()));
    (
        out.status.success(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}
