//! Prometheus metrics, served on the admin listener at `GET /admin/metrics`.
//!
//! Hand-rolled text exposition (format 0.0.4) over fixed arrays of atomics rather than the
//! `prometheus-client` crate: every label here has a small set of values known at compile time
//! (listeners, route classes, status classes, signature-refusal reasons), so each series is one
//! `AtomicU64` found by index. Recording is a relaxed atomic add on the request path — no lock, no
//! hashing, no allocation — and the crate would add a registry, a `Family` map behind a lock and
//! a dependency for what is ~250 lines here. The one process-wide instance is [`METRICS`].
//!
//! | metric | type | labels |
//! |---|---|---|
//! | `argus_relay_requests_total` | counter | `listener`, `route` (class), `status` (`1xx`…`5xx`) |
//! | `argus_relay_upstream_duration_seconds` | histogram | `class` — backend time to response head |
//! | `argus_relay_upstream_errors_total` | counter | `kind` (`unreachable`, `timeout`, `body_too_large`, `body_stalled`, `cut`) |
//! | `argus_relay_connections_active` | gauge | `listener` |
//! | `argus_relay_connections_total` | counter | `listener` |
//! | `argus_relay_connections_rejected_total` | counter | `listener` (connection cap reached) |
//! | `argus_relay_connections_timed_out_total` | counter | `listener`, `kind` (`header_read`, `idle`) |
//! | `argus_relay_websockets_active` | gauge | — |
//! | `argus_relay_websockets_total` | counter | — |
//! | `argus_relay_edge_signature_rejections_total` | counter | `reason` |
//! | `argus_relay_process_start_time_seconds` | gauge | — |

use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::Duration;

use argus_shared::route::BackendClass;

/// The process-wide metrics.
pub static METRICS: Metrics = Metrics::new();

const LISTENERS: [&str; 5] = ["tunnel", "admin", "lan", "lan_http", "other"];

/// Index of a listener name as passed to `server::serve`.
fn listener_index(name: &str) -> usize {
    match name {
        "tunnel" => 0,
        "admin" => 1,
        "lan" => 2,
        "lan_http" => 3,
        _ => 4,
    }
}

/// What kind of request it was, for `argus_relay_requests_total{route=…}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RouteLabel {
    /// Agent-served without a device token (pairing, JWKS, health).
    Public,
    /// Agent-served with a device token (devices, revoke, status).
    Agent,
    /// Proxied to the backend.
    Backend(BackendClass),
    /// Refused by the route table (or 405).
    Refused,
    /// Refused before routing: bad edge signature, non-canonical path.
    Rejected,
    /// The Worker's edge-state fetch.
    EdgeState,
    /// The owner's admin API.
    Admin,
}

const ROUTES: [&str; 12] = [
    "public",
    "agent",
    "api",
    "image",
    "websocket",
    "event_stream",
    "video",
    "export",
    "refused",
    "rejected",
    "edge_state",
    "admin",
];

impl RouteLabel {
    fn index(self) -> usize {
        match self {
            RouteLabel::Public => 0,
            RouteLabel::Agent => 1,
            RouteLabel::Backend(c) => 2 + class_index(c),
            RouteLabel::Refused => 8,
            RouteLabel::Rejected => 9,
            RouteLabel::EdgeState => 10,
            RouteLabel::Admin => 11,
        }
    }
}

const CLASSES: [BackendClass; 6] = [
    BackendClass::Api,
    BackendClass::Image,
    BackendClass::WebSocket,
    BackendClass::EventStream,
    BackendClass::Video,
    BackendClass::Export,
];

fn class_index(c: BackendClass) -> usize {
    match c {
        BackendClass::Api => 0,
        BackendClass::Image => 1,
        BackendClass::WebSocket => 2,
        BackendClass::EventStream => 3,
        BackendClass::Video => 4,
        BackendClass::Export => 5,
    }
}

const STATUS: [&str; 5] = ["1xx", "2xx", "3xx", "4xx", "5xx"];

fn status_index(status: u16) -> usize {
    usize::from(status.clamp(100, 599) / 100 - 1)
}

/// Edge-signature refusal reasons (`SignatureError::reason` plus the body digest check).
const SIGNATURE_REASONS: [&str; 8] = [
    "signature.missing",
    "signature.malformed",
    "signature.unsupported_version",
    "signature.stale",
    "signature.mismatch",
    "signature.replayed",
    "signature.weak_secret",
    "signature.body_mismatch",
];

/// Upstream errors, for `argus_relay_upstream_errors_total{kind=…}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UpstreamError {
    Unreachable,
    Timeout,
    BodyTooLarge,
    BodyStalled,
    /// A response body ended early (backend died mid-stream, or a stream deadline).
    Cut,
}

const UPSTREAM_ERRORS: [&str; 5] = [
    "unreachable",
    "timeout",
    "body_too_large",
    "body_stalled",
    "cut",
];

/// Connection-level timeouts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConnTimeout {
    HeaderRead,
    Idle,
}

/// Upper bounds of the latency histogram, in seconds.
const BUCKETS: [f64; 16] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
    100.0,
];
/// The same bounds in microseconds, for the comparison on the hot path.
const BUCKETS_US: [u64; 16] = [
    500,
    1_000,
    2_500,
    5_000,
    10_000,
    25_000,
    50_000,
    100_000,
    250_000,
    500_000,
    1_000_000,
    2_500_000,
    5_000_000,
    10_000_000,
    30_000_000,
    100_000_000,
];

struct Histogram {
    /// Non-cumulative counts per bucket; the last slot is `+Inf`.
    buckets: [AtomicU64; 17],
    sum_us: AtomicU64,
    count: AtomicU64,
}

#[allow(clippy::declare_interior_mutable_const)]
const ZERO: AtomicU64 = AtomicU64::new(0);

impl Histogram {
    const fn new() -> Histogram {
        Histogram {
            buckets: [ZERO; 17],
            sum_us: ZERO,
            count: ZERO,
        }
    }

    fn observe(&self, d: Duration) {
        let us = u64::try_from(d.as_micros()).unwrap_or(u64::MAX);
        let i = BUCKETS_US.partition_point(|b| *b < us);
        self.buckets[i].fetch_add(1, Relaxed);
        self.sum_us.fetch_add(us, Relaxed);
        self.count.fetch_add(1, Relaxed);
    }
}

pub struct Metrics {
    requests: [[[AtomicU64; 5]; 12]; 5],
    upstream: [Histogram; 6],
    upstream_errors: [AtomicU64; 5],
    conn_active: [AtomicU64; 5],
    conn_total: [AtomicU64; 5],
    conn_rejected: [AtomicU64; 5],
    conn_timed_out: [[AtomicU64; 2]; 5],
    ws_active: AtomicU64,
    ws_total: AtomicU64,
    signature_rejections: [AtomicU64; 8],
    start_time: AtomicU64,
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new()
    }
}

#[allow(clippy::declare_interior_mutable_const)]
impl Metrics {
    pub const fn new() -> Metrics {
        const H: Histogram = Histogram::new();
        const STATUS_ROW: [AtomicU64; 5] = [ZERO; 5];
        const ROUTE_ROW: [[AtomicU64; 5]; 12] = [STATUS_ROW; 12];
        const TIMEOUT_ROW: [AtomicU64; 2] = [ZERO; 2];
        Metrics {
            requests: [ROUTE_ROW; 5],
            upstream: [H; 6],
            upstream_errors: [ZERO; 5],
            conn_active: [ZERO; 5],
            conn_total: [ZERO; 5],
            conn_rejected: [ZERO; 5],
            conn_timed_out: [TIMEOUT_ROW; 5],
            ws_active: ZERO,
            ws_total: ZERO,
            signature_rejections: [ZERO; 8],
            start_time: ZERO,
        }
    }

    pub fn set_start_time(&self, unix_secs: u64) {
        self.start_time.store(unix_secs, Relaxed);
    }

    pub fn request(&self, listener: &str, route: RouteLabel, status: u16) {
        self.requests[listener_index(listener)][route.index()][status_index(status)]
            .fetch_add(1, Relaxed);
    }

    pub fn upstream_latency(&self, class: BackendClass, d: Duration) {
        self.upstream[class_index(class)].observe(d);
    }

    pub fn upstream_error(&self, kind: UpstreamError) {
        self.upstream_errors[kind as usize].fetch_add(1, Relaxed);
    }

    pub fn connection_opened(&self, listener: &str) {
        let i = listener_index(listener);
        self.conn_active[i].fetch_add(1, Relaxed);
        self.conn_total[i].fetch_add(1, Relaxed);
    }

    pub fn connection_closed(&self, listener: &str) {
        self.conn_active[listener_index(listener)].fetch_sub(1, Relaxed);
    }

    pub fn connection_rejected(&self, listener: &str) {
        self.conn_rejected[listener_index(listener)].fetch_add(1, Relaxed);
    }

    pub fn connection_timed_out(&self, listener: &str, kind: ConnTimeout) {
        self.conn_timed_out[listener_index(listener)][kind as usize].fetch_add(1, Relaxed);
    }

    pub fn websocket_opened(&self) {
        self.ws_active.fetch_add(1, Relaxed);
        self.ws_total.fetch_add(1, Relaxed);
    }

    pub fn websocket_closed(&self) {
        self.ws_active.fetch_sub(1, Relaxed);
    }

    pub fn signature_rejected(&self, reason: &str) {
        if let Some(i) = SIGNATURE_REASONS.iter().position(|r| *r == reason) {
            self.signature_rejections[i].fetch_add(1, Relaxed);
        }
    }

    /// The Prometheus text exposition of every metric.
    pub fn render(&self) -> String {
        let mut out = String::with_capacity(8 * 1024);
        let o = &mut out;

        header(
            o,
            "argus_relay_requests_total",
            "counter",
            "Requests answered, by listener, route class and status class.",
        );
        for (li, l) in LISTENERS.iter().enumerate() {
            for (ri, r) in ROUTES.iter().enumerate() {
                for (si, s) in STATUS.iter().enumerate() {
                    let v = self.requests[li][ri][si].load(Relaxed);
                    if v > 0 {
                        let _ = writeln!(
                            o,
                            "argus_relay_requests_total{{listener=\"{l}\",route=\"{r}\",status=\"{s}\"}} {v}"
                        );
                    }
                }
            }
        }

        header(
            o,
            "argus_relay_upstream_duration_seconds",
            "histogram",
            "Time from sending a request to the backend to its response head.",
        );
        for (ci, c) in CLASSES.iter().enumerate() {
            let h = &self.upstream[ci];
            let class = c.as_str();
            let mut cumulative = 0u64;
            for (bi, bound) in BUCKETS.iter().enumerate() {
                cumulative += h.buckets[bi].load(Relaxed);
                let _ = writeln!(
                    o,
                    "argus_relay_upstream_duration_seconds_bucket{{class=\"{class}\",le=\"{bound}\"}} {cumulative}"
                );
            }
            cumulative += h.buckets[16].load(Relaxed);
            let _ = writeln!(
                o,
                "argus_relay_upstream_duration_seconds_bucket{{class=\"{class}\",le=\"+Inf\"}} {cumulative}"
            );
            let sum = h.sum_us.load(Relaxed) as f64 / 1e6;
            let _ = writeln!(
                o,
                "argus_relay_upstream_duration_seconds_sum{{class=\"{class}\"}} {sum}"
            );
            let _ = writeln!(
                o,
                "argus_relay_upstream_duration_seconds_count{{class=\"{class}\"}} {}",
                h.count.load(Relaxed)
            );
        }

        header(
            o,
            "argus_relay_upstream_errors_total",
            "counter",
            "Backend requests that failed, by kind.",
        );
        for (i, k) in UPSTREAM_ERRORS.iter().enumerate() {
            let v = self.upstream_errors[i].load(Relaxed);
            let _ = writeln!(o, "argus_relay_upstream_errors_total{{kind=\"{k}\"}} {v}");
        }

        for (name, kind, help, arr) in [
            (
                "argus_relay_connections_active",
                "gauge",
                "Open client connections, by listener.",
                &self.conn_active,
            ),
            (
                "argus_relay_connections_total",
                "counter",
                "Client connections accepted, by listener.",
                &self.conn_total,
            ),
            (
                "argus_relay_connections_rejected_total",
                "counter",
                "Client connections closed at once because the connection cap was reached.",
                &self.conn_rejected,
            ),
        ] {
            header(o, name, kind, help);
            for (li, l) in LISTENERS.iter().enumerate() {
                let _ = writeln!(o, "{name}{{listener=\"{l}\"}} {}", arr[li].load(Relaxed));
            }
        }

        header(
            o,
            "argus_relay_connections_timed_out_total",
            "counter",
            "Client connections closed by the header-read or idle timeout.",
        );
        for (li, l) in LISTENERS.iter().enumerate() {
            for (ki, k) in ["header_read", "idle"].iter().enumerate() {
                let _ = writeln!(
                    o,
                    "argus_relay_connections_timed_out_total{{listener=\"{l}\",kind=\"{k}\"}} {}",
                    self.conn_timed_out[li][ki].load(Relaxed)
                );
            }
        }

        header(
            o,
            "argus_relay_websockets_active",
            "gauge",
            "WebSocket connections being relayed.",
        );
        let _ = writeln!(
            o,
            "argus_relay_websockets_active {}",
            self.ws_active.load(Relaxed)
        );
        header(
            o,
            "argus_relay_websockets_total",
            "counter",
            "WebSocket connections relayed since start.",
        );
        let _ = writeln!(
            o,
            "argus_relay_websockets_total {}",
            self.ws_total.load(Relaxed)
        );

        header(
            o,
            "argus_relay_edge_signature_rejections_total",
            "counter",
            "Tunnel requests refused for their edge signature, by reason.",
        );
        for (i, r) in SIGNATURE_REASONS.iter().enumerate() {
            let _ = writeln!(
                o,
                "argus_relay_edge_signature_rejections_total{{reason=\"{r}\"}} {}",
                self.signature_rejections[i].load(Relaxed)
            );
        }

        header(
            o,
            "argus_relay_process_start_time_seconds",
            "gauge",
            "Start time of the agent, seconds since the Unix epoch.",
        );
        let _ = writeln!(
            o,
            "argus_relay_process_start_time_seconds {}",
            self.start_time.load(Relaxed)
        );
        out
    }
}

fn header(o: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(o, "# HELP {name} {help}");
    let _ = writeln!(o, "# TYPE {name} {kind}");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_land_in_their_series() {
        let m = Metrics::new();
        m.request("tunnel", RouteLabel::Backend(BackendClass::Api), 200);
        m.request("tunnel", RouteLabel::Backend(BackendClass::Api), 204);
        m.request("admin", RouteLabel::Admin, 401);
        m.request("tunnel", RouteLabel::Rejected, 999);
        m.signature_rejected("signature.replayed");
        m.signature_rejected("not.a.reason");
        m.upstream_latency(BackendClass::Api, Duration::from_micros(700));
        m.upstream_latency(BackendClass::Api, Duration::from_secs(1000));
        m.connection_opened("tunnel");
        m.websocket_opened();
        let text = m.render();
        for line in [
            "argus_relay_requests_total{listener=\"tunnel\",route=\"api\",status=\"2xx\"} 2",
            "argus_relay_requests_total{listener=\"admin\",route=\"admin\",status=\"4xx\"} 1",
            "argus_relay_requests_total{listener=\"tunnel\",route=\"rejected\",status=\"5xx\"} 1",
            "argus_relay_edge_signature_rejections_total{reason=\"signature.replayed\"} 1",
            "argus_relay_edge_signature_rejections_total{reason=\"signature.mismatch\"} 0",
            "argus_relay_upstream_duration_seconds_bucket{class=\"api\",le=\"0.0005\"} 0",
            "argus_relay_upstream_duration_seconds_bucket{class=\"api\",le=\"0.001\"} 1",
            "argus_relay_upstream_duration_seconds_bucket{class=\"api\",le=\"100\"} 1",
            "argus_relay_upstream_duration_seconds_bucket{class=\"api\",le=\"+Inf\"} 2",
            "argus_relay_upstream_duration_seconds_count{class=\"api\"} 2",
            "argus_relay_connections_active{listener=\"tunnel\"} 1",
            "argus_relay_websockets_active 1",
        ] {
            assert!(
                text.lines().any(|l| l == line),
                "missing {line:?} in\n{text}"
            );
        }
        // Every sample line is `name{labels} value` or `name value`.
        for l in text.lines().filter(|l| !l.starts_with('#')) {
            let (_, value) = l.rsplit_once(' ').unwrap();
            assert!(value.parse::<f64>().is_ok(), "{l}");
        }
    }

    #[test]
    fn bucket_bounds_agree() {
        for (s, us) in BUCKETS.iter().zip(BUCKETS_US) {
            assert_eq!((s * 1e6).round() as u64, us);
        }
    }
}
