//! Per-stream counters of the adaptive live preview (the domain's proxy relays the streams): what `/metrics`
//! and the Mobile Access page show about each camera stream a phone is watching.
//!
//! Each stream registers a [`StreamStats`] when it starts; the registry keeps only a weak
//! reference, so a stream is listed exactly while it runs.

use std::collections::VecDeque;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, AtomicU8, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};

use argus_shared::live_stream::{percentile, Level};
use serde::Serialize;

/// Frame ages kept per stream for the percentiles (the most recent ones).
const AGES_KEPT: usize = 256;
/// The frame rate shown is measured over this much of the recent past.
const FPS_WINDOW: Duration = Duration::from_secs(2);

/// Who watches what, fixed for the stream's life.
#[derive(Debug, Clone)]
pub struct StreamIdentity {
    pub device_id: String,
    pub device_name: String,
    pub camera_id: String,
    /// `tunnel` or `lan`.
    pub via: &'static str,
}

/// One running stream's counters.
#[derive(Debug)]
pub struct StreamStats {
    id: u64,
    who: StreamIdentity,
    frames_in: AtomicU64,
    frames_sent: AtomicU64,
    frames_dropped: AtomicU64,
    bytes_sent: AtomicU64,
    level_changes: AtomicU64,
    level: AtomicU8,
    recent: Mutex<Recent>,
}

#[derive(Debug, Default)]
struct Recent {
    /// Age (ms) of the most recent frames at the moment their write completed.
    ages_ms: VecDeque<u64>,
    /// When the most recent frames were sent.
    sent_at: VecDeque<Instant>,
}

/// What one stream looks like now (the Mobile Access page's JSON).
#[derive(Debug, Clone, Serialize)]
pub struct StreamSnapshot {
    pub device_id: String,
    pub device_name: String,
    pub camera_id: String,
    pub via: &'static str,
    pub level: &'static str,
    pub resolution: &'static str,
    pub fps: f64,
    pub frames_in: u64,
    pub frames_sent: u64,
    pub frames_dropped: u64,
    pub bytes_sent: u64,
    pub level_changes: u64,
    pub frame_age_p50_ms: Option<u64>,
    pub frame_age_p99_ms: Option<u64>,
}

static REGISTRY: Mutex<Vec<Weak<StreamStats>>> = Mutex::new(Vec::new());
static NEXT_ID: AtomicU64 = AtomicU64::new(1);

fn level_at(index: u8) -> Level {
    Level::LADDER[usize::from(index).min(Level::LADDER.len() - 1)]
}

impl StreamStats {
    /// Registers a new stream; it is listed until the returned value is dropped.
    pub fn register(who: StreamIdentity, level: Level) -> Arc<StreamStats> {
        let stats = Arc::new(StreamStats {
            id: NEXT_ID.fetch_add(1, Ordering::Relaxed),
            who,
            frames_in: AtomicU64::new(0),
            frames_sent: AtomicU64::new(0),
            frames_dropped: AtomicU64::new(0),
            bytes_sent: AtomicU64::new(0),
            level_changes: AtomicU64::new(0),
            level: AtomicU8::new(level as u8),
            recent: Mutex::new(Recent::default()),
        });
        let mut all = REGISTRY.lock().unwrap_or_else(|e| e.into_inner());
        all.retain(|w| w.strong_count() > 0);
        all.push(Arc::downgrade(&stats));
        stats
    }

    pub fn frame_in(&self) {
        self.frames_in.fetch_add(1, Ordering::Relaxed);
    }

    pub fn frame_dropped(&self) {
        self.frames_dropped.fetch_add(1, Ordering::Relaxed);
    }

    /// A frame of `bytes` reached the phone's connection `age` after it arrived from ArgusAI.
    pub fn frame_sent(&self, bytes: u64, age: Duration) {
        self.frames_sent.fetch_add(1, Ordering::Relaxed);
        self.bytes_sent.fetch_add(bytes, Ordering::Relaxed);
        let now = Instant::now();
        let mut r = self.recent.lock().unwrap_or_else(|e| e.into_inner());
        if r.ages_ms.len() == AGES_KEPT {
            r.ages_ms.pop_front();
        }
        r.ages_ms
            .push_back(u64::try_from(age.as_millis()).unwrap_or(u64::MAX));
        r.sent_at.push_back(now);
        while r
            .sent_at
            .front()
            .is_some_and(|t| now.duration_since(*t) > FPS_WINDOW)
        {
            r.sent_at.pop_front();
        }
    }

    pub fn level_changed(&self, level: Level) {
        self.level.store(level as u8, Ordering::Relaxed);
        self.level_changes.fetch_add(1, Ordering::Relaxed);
    }

    pub fn snapshot(&self) -> StreamSnapshot {
        let level = level_at(self.level.load(Ordering::Relaxed));
        let (ages, fps) = {
            let r = self.recent.lock().unwrap_or_else(|e| e.into_inner());
            let now = Instant::now();
            let recent = r
                .sent_at
                .iter()
                .filter(|t| now.duration_since(**t) <= FPS_WINDOW)
                .count();
            (
                r.ages_ms.iter().copied().collect::<Vec<_>>(),
                recent as f64 / FPS_WINDOW.as_secs_f64(),
            )
        };
        StreamSnapshot {
            device_id: self.who.device_id.clone(),
            device_name: self.who.device_name.clone(),
            camera_id: self.who.camera_id.clone(),
            via: self.who.via,
            level: level.as_str(),
            resolution: level.resolution(),
            fps,
            frames_in: self.frames_in.load(Ordering::Relaxed),
            frames_sent: self.frames_sent.load(Ordering::Relaxed),
            frames_dropped: self.frames_dropped.load(Ordering::Relaxed),
            bytes_sent: self.bytes_sent.load(Ordering::Relaxed),
            level_changes: self.level_changes.load(Ordering::Relaxed),
            frame_age_p50_ms: percentile(&ages, 50),
            frame_age_p99_ms: percentile(&ages, 99),
        }
    }
}

/// The streams running now, oldest first.
fn running() -> Vec<Arc<StreamStats>> {
    let all = REGISTRY.lock().unwrap_or_else(|e| e.into_inner());
    all.iter().filter_map(Weak::upgrade).collect()
}

/// Snapshots of the streams running now.
pub fn snapshots() -> Vec<StreamSnapshot> {
    running().iter().map(|s| s.snapshot()).collect()
}

/// Prometheus label values: `\`, `"` and newlines escaped.
fn label(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// Appends the live-stream series to a `/metrics` page.
pub fn render(out: &mut String) {
    let streams = running();
    let _ = writeln!(
        out,
        "# HELP argus_relay_live_streams_active Camera live streams being relayed now.\n\
         # TYPE argus_relay_live_streams_active gauge\n\
         argus_relay_live_streams_active {}",
        streams.len()
    );
    type Series = (&'static str, &'static str, &'static str);
    const SERIES: [Series; 6] = [
        (
            "argus_relay_live_stream_frames_total",
            "counter",
            "Frames of a running stream: from ArgusAI (in), written to the phone (sent), replaced by a newer one before the phone took them (dropped).",
        ),
        (
            "argus_relay_live_stream_bytes_total",
            "counter",
            "Frame bytes written to the phone.",
        ),
        (
            "argus_relay_live_stream_level_changes_total",
            "counter",
            "Level changes (the relay's and the phone's).",
        ),
        (
            "argus_relay_live_stream_level",
            "gauge",
            "The stream's level: 0 data_saver, 1 reduced, 2 low, 3 medium, 4 high.",
        ),
        (
            "argus_relay_live_stream_fps",
            "gauge",
            "Frames per second written to the phone over the last 2 s.",
        ),
        (
            "argus_relay_live_stream_frame_age_seconds",
            "gauge",
            "Time from a frame's arrival from ArgusAI to its write to the phone completing, over the last 256 frames.",
        ),
    ];
    for (name, kind, help) in SERIES {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
        for s in &streams {
            let snap = s.snapshot();
            let labels = format!(
                "stream=\"{}\",device=\"{}\",camera=\"{}\",via=\"{}\"",
                s.id,
                label(&snap.device_id),
                label(&snap.camera_id),
                snap.via
            );
            match name {
                "argus_relay_live_stream_frames_total" => {
                    for (kind, n) in [
                        ("in", snap.frames_in),
                        ("sent", snap.frames_sent),
                        ("dropped", snap.frames_dropped),
                    ] {
                        let _ = writeln!(out, "{name}{{{labels},kind=\"{kind}\"}} {n}");
                    }
                }
                "argus_relay_live_stream_bytes_total" => {
                    let _ = writeln!(out, "{name}{{{labels}}} {}", snap.bytes_sent);
                }
                "argus_relay_live_stream_level_changes_total" => {
                    let _ = writeln!(out, "{name}{{{labels}}} {}", snap.level_changes);
                }
                "argus_relay_live_stream_level" => {
                    let level = s.level.load(Ordering::Relaxed);
                    let _ = writeln!(out, "{name}{{{labels},level=\"{}\"}} {level}", snap.level);
                }
                "argus_relay_live_stream_fps" => {
                    let _ = writeln!(out, "{name}{{{labels}}} {:.1}", snap.fps);
                }
                _ => {
                    for (q, v) in [
                        ("0.5", snap.frame_age_p50_ms),
                        ("0.99", snap.frame_age_p99_ms),
                    ] {
                        if let Some(ms) = v {
                            let _ = writeln!(
                                out,
                                "{name}{{{labels},quantile=\"{q}\"}} {:.3}",
                                ms as f64 / 1000.0
                            );
                        }
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_stream_is_listed_while_it_runs_with_its_counters() {
        let who = StreamIdentity {
            device_id: "dev-\"1".into(),
            device_name: "Alice's iPhone".into(),
            camera_id: "cam-stats-test".into(),
            via: "lan",
        };
        let s = StreamStats::register(who, Level::Medium);
        s.frame_in();
        s.frame_in();
        s.frame_dropped();
        s.frame_sent(1000, Duration::from_millis(40));
        s.level_changed(Level::Low);
        let snap = snapshots()
            .into_iter()
            .find(|x| x.camera_id == "cam-stats-test")
            .expect("listed");
        assert_eq!(
            (snap.frames_in, snap.frames_sent, snap.frames_dropped),
            (2, 1, 1)
        );
        assert_eq!((snap.level, snap.resolution), ("low", "360p"));
        assert_eq!(snap.frame_age_p99_ms, Some(40));
        let mut page = String::new();
        render(&mut page);
        assert!(
            page.contains(
                "device=\"dev-\\\"1\",camera=\"cam-stats-test\",via=\"lan\",kind=\"dropped\"} 1"
            ),
            "{page}"
        );
        assert!(page.contains("quantile=\"0.99\"} 0.040"), "{page}");
        drop(s);
        assert!(!snapshots().iter().any(|x| x.camera_id == "cam-stats-test"));
    }
}
