//! The same work as the wasm benchmark, natively: `gate-native <iterations>` prints JSON with
//! the per-request time of a first-seen token and of a remembered one.

fn per_request_ms(n: u32, remembered: bool) -> (f64, u32) {
    bench_gate_wasm::run(200, remembered);
    let t = std::time::Instant::now();
    let sum = bench_gate_wasm::run(n, remembered);
    (t.elapsed().as_secs_f64() * 1000.0 / f64::from(n), sum)
}

fn main() {
    let n: u32 = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(2000);
    let (first, sum) = per_request_ms(n, false);
    let (remembered, sum2) = per_request_ms(n, true);
    println!(
        "{{\"iterations\":{n},\"first_sight_ms\":{first},\"remembered_ms\":{remembered},\"checksum\":{}}}",
        sum.wrapping_add(sum2)
    );
}
