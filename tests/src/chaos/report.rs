//! The figures: one line per window while the suite runs, and docs/reliability.md at the end.

use std::fmt::Write as _;
use std::time::Duration;

use super::faults::Fault;
use super::{ChaosReport, Row, Soak};

/// Recovery target after the faulty part is back (the issue's).
pub const RECOVERY_TARGET: Duration = Duration::from_secs(5);
/// The soak's RSS slope target, MB per 10 minutes.
pub const RSS_SLOPE_TARGET: f64 = 1.0;
/// The soak's p99 drift target: the last minute within this fraction of the first.
pub const P99_DRIFT_TARGET: f64 = 0.20;

/// How the window's requests failed, most frequent first: `503 origin_unavailable ×12; …`.
pub fn failed_how(row: &Row) -> String {
    let t = &row.tally;
    let mut kinds: Vec<(&String, &u64)> = t.failed.iter().collect();
    kinds.sort_by(|a, b| b.1.cmp(a.1));
    let mut parts: Vec<String> = kinds
        .iter()
        .take(4)
        .map(|(k, n)| format!("{k} ×{n}"))
        .collect();
    if kinds.len() > 4 {
        parts.push(format!("{} more kinds", kinds.len() - 4));
    }
    if t.bad_errors > 0 {
        parts.push(format!("**{} not a JSON error**", t.bad_errors));
    }
    if parts.is_empty() {
        "0".into()
    } else {
        format!("{}: {}", t.failed_total(), parts.join("; "))
    }
}

fn recovery_text(row: &Row) -> String {
    if row.skipped.is_some() || row.fault == Fault::None {
        return "–".into();
    }
    match row.recovery {
        Some(d) => format!("{:.2} s", d.as_secs_f64()),
        None => format!("**not within {} s**", super::RECOVERY_LIMIT.as_secs()),
    }
}

fn lost_text(row: &Row) -> String {
    let l = &row.lost;
    let integrity = if l.integrity == "ok" {
        "integrity ok".to_owned()
    } else {
        format!("**integrity: {}**", l.integrity)
    };
    format!(
        "{} devices, {} refresh families; {integrity}",
        l.devices, l.families
    )
}

/// Streams in the window: notifications (out of order), live frames (broken), reconnects.
fn streams_text(row: &Row) -> String {
    let t = &row.tally;
    format!(
        "{} notif. ({} out of order), {} frames ({} broken), {} reconnects",
        t.notifications,
        t.notifications_out_of_order,
        t.live_frames,
        t.live_frames_broken,
        t.stream_reconnects
    )
}

/// A window's figures, cell by cell: phones, fault, requests, failed, crossed, recovery, lost,
/// p99, streams, notes (the progress line and the report's table row).
fn cells(row: &Row) -> Vec<String> {
    vec![
        row.clients.to_string(),
        row.fault.label().to_owned(),
        row.tally.requests.to_string(),
        failed_how(row),
        row.tally.crossed.to_string(),
        recovery_text(row),
        lost_text(row),
        format!("{:.0}", row.tally.percentile_ms(0.99)),
        streams_text(row),
        row.notes.join("; "),
    ]
}

/// One line of progress for a finished window.
pub fn row_line(row: &Row) -> String {
    if let Some(why) = &row.skipped {
        return format!(
            "{} clients | {} | SKIPPED: {why}",
            row.clients,
            row.fault.label()
        );
    }
    format!("{} | {:.0} s", cells(row).join(" | "), row.seconds)
}

/// Targets a row misses (empty: all met). Tunnel rows get the tunnel's bound: the supervisor's
/// unresponsive timeout plus its backoff cap, plus the recovery target.
pub fn misses(row: &Row, tunnel_bound: Duration) -> Vec<String> {
    let mut out = Vec::new();
    if row.skipped.is_some() {
        return out;
    }
    let t = &row.tally;
    out.extend(row.broken.iter().cloned());
    if t.crossed > 0 {
        out.push(format!(
            "{} crossed/corrupt bodies: {:?}",
            t.crossed, t.examples
        ));
    }
    if t.bad_errors > 0 {
        out.push(format!(
            "{} errors not JSON: {:?}",
            t.bad_errors, t.examples
        ));
    }
    if t.notifications_out_of_order > 0 || t.live_frames_broken > 0 {
        out.push(format!("streams: {}", streams_text(row)));
    }
    if row.lost.devices > 0 || row.lost.families > 0 || row.lost.integrity != "ok" {
        out.push(format!("lost: {}", lost_text(row)));
    }
    if row.fault != Fault::None {
        let bound = match row.fault {
            Fault::TunnelFlapping | Fault::TunnelHanging => tunnel_bound,
            _ => RECOVERY_TARGET,
        };
        match row.recovery {
            Some(d) if d <= bound => {}
            other => out.push(format!("recovery {other:?} > {bound:?}")),
        }
    }
    out
}

fn soak_misses(s: &Soak) -> Vec<String> {
    let mut out = Vec::new();
    // Without answers there is no latency to compare.
    if s.tally.ok == 0 || s.tally.failed_total() * 10 > s.tally.requests {
        out.push(format!(
            "{} of {} requests failed",
            s.tally.failed_total(),
            s.tally.requests
        ));
    }
    if s.rss_slope_mb_per_10min > RSS_SLOPE_TARGET {
        out.push(format!(
            "RSS slope {:.2} MB/10 min",
            s.rss_slope_mb_per_10min
        ));
    }
    if s.p99_end_ms > s.p99_start_ms * (1.0 + P99_DRIFT_TARGET) {
        out.push(format!(
            "p99 {:.1} ms → {:.1} ms",
            s.p99_start_ms, s.p99_end_ms
        ));
    }
    let fds: Vec<usize> = s.samples.iter().map(|x| x.2).collect();
    if let (Some(first), Some(last)) = (fds.get(fds.len().min(6).saturating_sub(1)), fds.last()) {
        if *last > first + 16 {
            out.push(format!("open fds {first} → {last}"));
        }
    }
    if s.tally.crossed > 0 || s.tally.bad_errors > 0 {
        out.push(format!(
            "{} crossed, {} non-JSON errors",
            s.tally.crossed, s.tally.bad_errors
        ));
    }
    out
}

fn utc(unix: u64) -> String {
    httpdate::fmt_http_date(std::time::UNIX_EPOCH + Duration::from_secs(unix))
}

/// docs/reliability.md: what was run, when, where, and the figures.
pub fn markdown(r: &ChaosReport, machine: &str, command: &str, tunnel_bound: Duration) -> String {
    let c = &r.config;
    let mut md = String::new();
    let _ = writeln!(md, "# Reliability: the whole stack under load and faults\n");
    let _ = writeln!(
        md,
        "Written by `make chaos` (scripts/chaos.sh → `tests/src/bin/chaos.rs`, the suite in \
         `tests/src/chaos/`); do not edit by hand — run it again. A short version of the same \
         suite (16 phones, 300 requests per window, every fault once, no soak) runs in `make \
         test` as `tests/tests/chaos.rs` and fails when a target below is missed.\n"
    );
    let _ = writeln!(md, "## This run\n");
    let _ = writeln!(md, "- When: {} ({:.0} s)", utc(r.started_unix), r.seconds);
    let _ = writeln!(md, "- Command: `{command}`");
    let _ = writeln!(md, "- Machine: {machine}");
    let _ = writeln!(
        md,
        "- Load: {} concurrent phones (one level after the other), {} requests per window, \
         each fault held {} s (slow backend, tunnel flapping: 6 s; clock: 3 s; LAN flood: 4 s), \
         {} notification WebSockets and 1 live stream, a refresh every {} requests per phone",
        c.clients
            .iter()
            .map(|n| n.to_string())
            .collect::<Vec<_>>()
            .join(" and "),
        c.requests_per_window,
        c.hold.as_secs(),
        c.streams,
        c.refresh_every
    );
    let _ = writeln!(
        md,
        "- Soak: {}\n",
        match (&c.soak, &r.soak) {
            (Some(d), Some(s)) => format!(
                "{} s asked, {:.0} s run, {} phones",
                d.as_secs(),
                s.seconds,
                s.clients
            ),
            _ => "not run".into(),
        }
    );
    let _ = writeln!(md, "## The chain and the checks\n");
    let _ = writeln!(
        md,
        "phone (reqwest, tokio-tungstenite) → the real Worker in workerd (`wrangler dev`) → the \
         stand-in cloudflared the agent supervises → the agent (`argus-relay run`, debug build) \
         → the stand-in ArgusAI. The mix per phone, in every 19 requests: 6 event-list pages \
         (`limit`/`offset`), 4 compact pages (`page`/`per_page`/`fields`), 5 event details, 4 \
         event thumbnails (`Accept: image/jpeg`: transcoded and cached by the Worker), plus a \
         token refresh every {} requests. Every answer is checked against what the backend holds \
         for that request: a page must list exactly the ids at its offset, each event equal to \
         the backend's; a detail must equal the backend's event; a thumbnail must have the \
         digest the chain gave for that URL before any fault. A failed request must be a JSON \
         error (`{{\"error\":{{\"code\",\"message\"}}}}`) with its status, or a transport error \
         (timeout, refused, cut). Notifications (numbered by the test) must arrive in order; live \
         frames must be whole JPEGs. After every window the agent's database is read beside it: \
         `PRAGMA integrity_check`, and no device or refresh family that was there before may be \
         gone. Recovery: from the faulty part being back (a slow backend: once it has given the \
         answers it took while slow, which hold the agent's backend slots until then; a hanging \
         tunnel: from the hang, the agent has to notice it) until a probe phone, asking every \
         100 ms, gets a correct answer through the whole chain.\n",
        c.refresh_every
    );
    let _ = writeln!(md, "## Figures\n");
    let _ = writeln!(
        md,
        "Targets: crossed/corrupt bodies 0 in every row; lost devices or refresh families 0; \
         recovery ≤ {} s after the faulty part is back (tunnel: ≤ {} s, the supervisor's \
         unresponsive timeout + backoff cap + {} s); every error a JSON error.\n",
        RECOVERY_TARGET.as_secs(),
        tunnel_bound.as_secs(),
        RECOVERY_TARGET.as_secs()
    );
    let _ = writeln!(
        md,
        "| phones | fault | requests in the window | failed (and how) | crossed/corrupt bodies | recovery time | lost data | p99 ms | streams | notes |"
    );
    let _ = writeln!(md, "|---:|---|---:|---|---:|---:|---|---:|---|---|");
    let tunnel = tunnel_bound;
    for row in &r.rows {
        if let Some(why) = &row.skipped {
            let _ = writeln!(
                md,
                "| {} | {} | – | – | – | – | – | – | – | not injected: {why} |",
                row.clients,
                row.fault.label()
            );
            continue;
        }
        let missed = misses(row, tunnel);
        let mut cells = cells(row);
        if !missed.is_empty() {
            if let Some(notes) = cells.last_mut() {
                notes.push_str(&format!(" **MISSED: {}**", missed.join("; ")));
            }
        }
        let cells: Vec<String> = cells.iter().map(|c| c.replace('|', "/")).collect();
        let _ = writeln!(md, "| {} |", cells.join(" | "));
    }
    if let Some(s) = &r.soak {
        let _ = writeln!(md, "\n## Soak\n");
        let fds: Vec<usize> = s.samples.iter().map(|x| x.2).collect();
        let rss: Vec<u64> = s.samples.iter().map(|x| x.1).collect();
        let _ = writeln!(
            md,
            "| phones | seconds | requests | failed | crossed | agent RSS first → last (KiB) | RSS slope (MB / 10 min, after the first minute) | open fds first → last | p99 first minute → last minute |"
        );
        let _ = writeln!(md, "|---:|---:|---:|---:|---:|---|---:|---|---|");
        let _ = writeln!(
            md,
            "| {} | {:.0} | {} | {} | {} | {} → {} | {:.3} | {} → {} | {:.1} ms → {:.1} ms ({:+.0} %) |",
            s.clients,
            s.seconds,
            s.tally.requests,
            s.tally.failed_total(),
            s.tally.crossed,
            rss.first().copied().unwrap_or(0),
            rss.last().copied().unwrap_or(0),
            s.rss_slope_mb_per_10min,
            fds.first().copied().unwrap_or(0),
            fds.last().copied().unwrap_or(0),
            s.p99_start_ms,
            s.p99_end_ms,
            (s.p99_end_ms / s.p99_start_ms.max(1e-9) - 1.0) * 100.0
        );
        let missed = soak_misses(s);
        let _ = writeln!(
            md,
            "\nTargets: RSS slope ≤ {RSS_SLOPE_TARGET} MB per 10 minutes; open fds flat; p99 at the end within {:.0} % of the start. {}",
            P99_DRIFT_TARGET * 100.0,
            if missed.is_empty() {
                "All met.".to_owned()
            } else {
                format!("**Missed: {}.**", missed.join("; "))
            }
        );
    }
    let missed: usize = r
        .rows
        .iter()
        .filter(|row| !misses(row, tunnel).is_empty())
        .count();
    let _ = writeln!(
        md,
        "\n{} of {} windows met every target.",
        r.rows.len() - missed,
        r.rows.len()
    );
    md
}
