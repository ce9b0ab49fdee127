//! The same work as the wasm benchmark, natively: `gate-native <iterations>` prints JSON.

fn main() {
    let n: u32 = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(2000);
    bench_gate_wasm::run(200);
    let t = std::time::Instant::now();
    let sum = bench_gate_wasm::run(n);
    let ms = t.elapsed().as_secs_f64() * 1000.0;
    println!(
        "{{\"iterations\":{n},\"total_ms\":{ms},\"per_request_ms\":{},\"checksum\":{sum}}}",
        ms / f64::from(n)
    );
}
