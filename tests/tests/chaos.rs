//! User story: a household's phones keep getting right answers — or clean errors — while parts
//! of the chain fail, and everything comes back on its own.
//!
//! The short run of the load-and-fault suite (`e2e::chaos`, the full one is `make chaos`): 16
//! phones, 300 requests per window, each fault of issue 19 once. Fails when an answer is crossed
//! or corrupt, an error is not a JSON error, a notification comes out of order or a live frame
//! broken, a device or refresh family is lost, the agent's database fails its integrity check,
//! or recovery takes longer than 5 s after the faulty part is back (the tunnel: its supervisor's
//! unresponsive timeout + backoff cap + 5 s). Speed is not judged here (docs/reliability.md has
//! the figures).

use std::time::Duration;

use e2e::chaos::{self, report, ChaosConfig};
use e2e::cloudflared::Tuning;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn phones_get_right_answers_or_clean_errors_through_every_fault_and_it_all_comes_back() {
    let tuning = Tuning::default();
    let tunnel_bound =
        Duration::from_secs(tuning.unresponsive_timeout_secs + tuning.backoff_max_secs)
            + report::RECOVERY_TARGET;
    let result = tokio::time::timeout(
        Duration::from_secs(600),
        chaos::run(ChaosConfig::short(), |line| eprintln!("chaos: {line}")),
    )
    .await
    .expect("the short chaos run finishes within 10 minutes");
    let missed: Vec<String> = result
        .rows
        .iter()
        .flat_map(|row| {
            report::misses(row, tunnel_bound)
                .into_iter()
                .map(move |m| format!("{} ({} phones): {m}", row.fault.label(), row.clients))
        })
        .collect();
    assert!(missed.is_empty(), "targets missed:\n{}", missed.join("\n"));
    // Every window carried load.
    for row in result.rows.iter().filter(|r| r.skipped.is_none()) {
        assert!(
            row.tally.requests >= 300,
            "{}: {} requests",
            row.fault.label(),
            row.tally.requests
        );
    }
}
