//! Adaptive live preview: the rules that fit a camera's live stream to a phone's link. Pure — no
//! I/O, no clock (times are milliseconds the caller passes in) — so that the agent's stream
//! relay (`origin-agent`, `live_stream`) stays a thin I/O shell and every decision is unit-tested.
//!
//! - [`Level`]: the ladder. ArgusAI's three levels (`low` 640×360 5 fps q70, `medium` 1280×720
//!   10 fps q80, `high` 1920×1080 15 fps q90) and, below them, two the relay makes itself by
//!   re-encoding ArgusAI's `low` frames smaller and capping the frame rate: `reduced` and
//!   `data_saver` (fits ~300 kbit/s).
//! - [`Requested`]: what a phone asks for (`quality=` on the URL or a `quality_change` message):
//!   a level is a ceiling, `auto` (the default) adapts freely.
//! - [`start_level`]: where a stream starts, from what the edge knows (the TCP round trip
//!   Cloudflare measured, the device's platform) and what the phone says (`X-Network`).
//! - [`Controller`]: measures how fast frames drain (the time each frame's write takes to
//!   complete) and steps the level down fast and up only after sustained headroom.
//! - [`PhoneMessage`], [`BackendMessage`]: the JSON control messages of ArgusAI's protocol the
//!   relay reads.

use crate::image::{JpegEffort, JpegSettings, Variant, WebpSettings};

/// ArgusAI's own stream levels (its `quality` parameter and `quality_change` message).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum BackendQuality {
    Low,
    Medium,
    High,
}

impl BackendQuality {
    pub const fn as_str(self) -> &'static str {
        match self {
            BackendQuality::Low => "low",
            BackendQuality::Medium => "medium",
            BackendQuality::High => "high",
        }
    }

    pub fn parse(s: &str) -> Option<BackendQuality> {
        match s {
            "low" => Some(BackendQuality::Low),
            "medium" => Some(BackendQuality::Medium),
            "high" => Some(BackendQuality::High),
            _ => None,
        }
    }
}

/// One rung of the relay's ladder, lowest first (so `<` means "cheaper").
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Level {
    /// ArgusAI's `low` frames re-encoded to 320 px wide at quality 50, at most 3 fps: ~25-40
    /// KB/s, for ~300 kbit/s links.
    DataSaver,
    /// ArgusAI's `low` frames re-encoded to 480 px wide at quality 60, at most 4 fps.
    Reduced,
    /// ArgusAI's `low`, untouched: 640×360, 5 fps.
    Low,
    /// ArgusAI's `medium` (its default): 1280×720, 10 fps.
    Medium,
    /// ArgusAI's `high`: 1920×1080, 15 fps.
    High,
}

/// The re-encoding of [`Level::DataSaver`]: the `shared` JPEG pipeline, decoded at 1/2 (640 →
/// 320 straight from the IDCT), baseline.
const DATA_SAVER_VARIANT: Variant = Variant {
    name: "data_saver",
    max_width: 320,
    jpeg: JpegSettings {
        quality: 50,
        effort: JpegEffort::Fast,
        decode_oversample: 1,
    },
    webp: WebpSettings {
        quality: 70,
        decode_oversample: 1,
    },
};

/// The re-encoding of [`Level::Reduced`].
const REDUCED_VARIANT: Variant = Variant {
    name: "reduced",
    max_width: 480,
    jpeg: JpegSettings {
        quality: 60,
        effort: JpegEffort::Fast,
        decode_oversample: 1,
    },
    webp: WebpSettings {
        quality: 75,
        decode_oversample: 1,
    },
};

impl Level {
    /// The whole ladder, lowest first.
    pub const LADDER: [Level; 5] = [
        Level::DataSaver,
        Level::Reduced,
        Level::Low,
        Level::Medium,
        Level::High,
    ];

    /// Stable name (URL parameter, messages, metrics): `data_saver`, `reduced`, `low`, `medium`,
    /// `high`.
    pub const fn as_str(self) -> &'static str {
        match self {
            Level::DataSaver => "data_saver",
            Level::Reduced => "reduced",
            Level::Low => "low",
            Level::Medium => "medium",
            Level::High => "high",
        }
    }

    pub fn parse(s: &str) -> Option<Level> {
        Level::LADDER.into_iter().find(|l| l.as_str() == s)
    }

    /// What people call the picture size: `180p` … `1080p`.
    pub const fn resolution(self) -> &'static str {
        match self {
            Level::DataSaver => "180p",
            Level::Reduced => "270p",
            Level::Low => "360p",
            Level::Medium => "720p",
            Level::High => "1080p",
        }
    }

    /// The level ArgusAI is asked to stream at for this rung.
    pub const fn backend(self) -> BackendQuality {
        match self {
            Level::DataSaver | Level::Reduced | Level::Low => BackendQuality::Low,
            Level::Medium => BackendQuality::Medium,
            Level::High => BackendQuality::High,
        }
    }

    /// The rung that is exactly ArgusAI's level `q`.
    pub const fn of_backend(q: BackendQuality) -> Level {
        match q {
            BackendQuality::Low => Level::Low,
            BackendQuality::Medium => Level::Medium,
            BackendQuality::High => Level::High,
        }
    }

    /// How the relay re-encodes ArgusAI's frames at this rung; `None`: passed through.
    pub const fn reencode(self) -> Option<Variant> {
        match self {
            Level::DataSaver => Some(DATA_SAVER_VARIANT),
            Level::Reduced => Some(REDUCED_VARIANT),
            _ => None,
        }
    }

    /// Frames per second at most (ArgusAI's own rate at its levels; the relay's cap below).
    pub const fn max_fps(self) -> u32 {
        match self {
            Level::DataSaver => 3,
            Level::Reduced => 4,
            Level::Low => 5,
            Level::Medium => 10,
            Level::High => 15,
        }
    }

    /// The shortest gap between two frames passed on at this rung, in milliseconds, with a
    /// fifth of slack for the backend's timer jitter (a 5 fps source is not thinned at 5 fps).
    pub const fn min_frame_gap_ms(self) -> u64 {
        1000 * 4 / (5 * self.max_fps() as u64)
    }

    /// A typical frame's size at this rung, in bytes (ArgusAI's MJPEG of a camera scene; see
    /// docs/benchmarks.md, "Live preview"). Only ratios between rungs are used: the
    /// [`Controller`] scales them by the sizes it measures.
    pub const fn nominal_frame_bytes(self) -> u64 {
        match self {
            Level::DataSaver => 9_000,
            Level::Reduced => 16_000,
            Level::Low => 40_000,
            Level::Medium => 110_000,
            Level::High => 300_000,
        }
    }

    /// Nominal bits per second: [`Level::nominal_frame_bytes`] at [`Level::max_fps`].
    pub const fn nominal_bps(self) -> u64 {
        self.nominal_frame_bytes() * 8 * self.max_fps() as u64
    }

    fn index(self) -> usize {
        self as usize
    }

    /// One rung down, if there is one.
    pub fn lower(self) -> Option<Level> {
        self.index().checked_sub(1).map(|i| Level::LADDER[i])
    }

    /// One rung up, if there is one.
    pub fn higher(self) -> Option<Level> {
        Level::LADDER.get(self.index() + 1).copied()
    }
}

/// What a phone asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Requested {
    /// Adapt freely (up to [`Level::High`]): the default.
    Auto,
    /// At most this level; lower if the link needs it.
    AtMost(Level),
}

impl Requested {
    /// `auto` or a level name; `None` for anything else (the relay then passes the stream
    /// through untouched and ArgusAI answers the unknown value itself).
    pub fn parse(s: &str) -> Option<Requested> {
        if s == "auto" {
            return Some(Requested::Auto);
        }
        Level::parse(s).map(Requested::AtMost)
    }

    /// The highest level the relay may use.
    pub const fn ceiling(self) -> Level {
        match self {
            Requested::Auto => Level::High,
            Requested::AtMost(l) => l,
        }
    }
}

/// The phone's own word on its network: the `X-Network` request header.
pub const NETWORK_HEADER: &str = "x-network";

/// What the phone says it is on (`X-Network: cellular|wifi`, also `ethernet`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Network {
    Cellular,
    Wifi,
}

impl Network {
    pub fn parse(s: &str) -> Option<Network> {
        match s.trim().to_ascii_lowercase().as_str() {
            "cellular" | "cell" | "lte" | "5g" | "4g" | "3g" => Some(Network::Cellular),
            "wifi" | "wi-fi" | "ethernet" | "wired" => Some(Network::Wifi),
            _ => None,
        }
    }
}

/// The edge's facts about the phone's link, sent by the Worker to the agent in the
/// [`crate::headers::RELAY_LINK`] header (covered by the edge signature; a phone's own
/// `x-relay-*` headers are dropped at the edge): `rtt=<ms>; platform=<name>`, either part
/// optional.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EdgeLink {
    /// `request.cf.clientTcpRtt`: the TCP round trip between the phone and Cloudflare, ms.
    pub rtt_ms: Option<u32>,
    /// The device's platform as registered at pairing (`ios`, `android`, …), lower case.
    pub platform: Option<String>,
}

impl EdgeLink {
    /// The header value; `None` when there is nothing to say.
    pub fn to_header_value(&self) -> Option<String> {
        let mut parts = Vec::new();
        if let Some(rtt) = self.rtt_ms {
            parts.push(format!("rtt={rtt}"));
        }
        if let Some(p) = self.platform.as_deref().filter(|p| is_token(p)) {
            parts.push(format!("platform={}", p.to_ascii_lowercase()));
        }
        (!parts.is_empty()).then(|| parts.join("; "))
    }

    /// Reads the header value; unknown or malformed parts are ignored.
    pub fn parse(v: &str) -> EdgeLink {
        let mut link = EdgeLink::default();
        for part in v.split(';') {
            let Some((k, val)) = part.trim().split_once('=') else {
                continue;
            };
            match k.trim() {
                "rtt" => link.rtt_ms = val.trim().parse().ok(),
                "platform" if is_token(val.trim()) => {
                    link.platform = Some(val.trim().to_ascii_lowercase());
                }
                _ => {}
            }
        }
        link
    }

    fn is_mobile(&self) -> bool {
        matches!(self.platform.as_deref(), Some("ios" | "ipados" | "android"))
    }
}

fn is_token(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 32
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// Everything the start level is chosen from.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StartHints {
    /// The phone is on the home network (the agent's LAN listener).
    pub lan: bool,
    pub network: Option<Network>,
    pub edge: EdgeLink,
}

/// Round trips at or above these (ms) start lower: a long RTT is a congested or far cellular
/// link, where TCP also ramps up slowly.
const SLOW_RTT_MS: u32 = 150;
const VERY_SLOW_RTT_MS: u32 = 300;

/// Where a stream starts, never above the phone's ceiling; the [`Controller`] adapts from there.
///
/// - At home (LAN): ArgusAI's default, `medium` (Wi-Fi carries it easily; the controller goes up).
/// - Away: `X-Network: wifi` → `medium`; `cellular` → `low`; no word from the phone → `low` for a
///   phone platform, `medium` otherwise. Then a round trip of 150 ms or more starts at most at
///   `reduced`, 300 ms or more at `data_saver`.
pub fn start_level(hints: &StartHints, requested: Requested) -> Level {
    let by_network = if hints.lan {
        Level::Medium
    } else {
        match hints.network {
            Some(Network::Wifi) => Level::Medium,
            Some(Network::Cellular) => Level::Low,
            None if hints.edge.is_mobile() => Level::Low,
            None => Level::Medium,
        }
    };
    let by_rtt = match hints.edge.rtt_ms {
        Some(r) if !hints.lan && r >= VERY_SLOW_RTT_MS => Level::DataSaver,
        Some(r) if !hints.lan && r >= SLOW_RTT_MS => Level::Reduced,
        _ => Level::High,
    };
    by_network.min(by_rtt).min(requested.ceiling())
}

/// How the [`Controller`] judges a link.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ControllerSettings {
    /// Measurements are judged over windows of this length.
    pub window_ms: u64,
    /// A window in which the writes to the phone took at least this share of the time (or in
    /// which frames were dropped) is a saturated link: step down at once.
    pub saturated_busy: f64,
    /// A window below this share, without drops, is headroom.
    pub headroom_busy: f64,
    /// Headroom must last this long before a step up.
    pub up_after_ms: u64,
    /// After stepping down from a level, trying it again waits this long (doubled each time
    /// that level fails again, up to `max_probe_backoff_ms`).
    pub probe_backoff_ms: u64,
    pub max_probe_backoff_ms: u64,
    /// A level is chosen only if its demand is at most this share of the measured drain rate.
    pub fill: f64,
}

impl ControllerSettings {
    /// Down within a second of saturation, up after 6 s of headroom.
    pub const DEFAULT: ControllerSettings = ControllerSettings {
        window_ms: 1000,
        saturated_busy: 0.85,
        headroom_busy: 0.5,
        up_after_ms: 6000,
        probe_backoff_ms: 10_000,
        max_probe_backoff_ms: 80_000,
        fill: 0.75,
    };
}

impl Default for ControllerSettings {
    fn default() -> Self {
        ControllerSettings::DEFAULT
    }
}

/// Chooses a stream's level from how fast its frames drain.
///
/// The agent reports each frame it wrote to the phone ([`Controller::on_sent`]: its bytes and
/// how long the write took to complete — with the socket's unsent-bytes low-water mark set, a
/// write completes when the link has taken it) and each frame it dropped because a newer one
/// arrived before the previous write completed ([`Controller::on_dropped`]), and asks
/// [`Controller::evaluate`] a few times a second.
///
/// - **Down, fast**: a window in which the writes kept the link busy (≥ 85 % of the time) or
///   frames were dropped steps down at once — to the highest level whose demand fits the
///   measured drain rate (bytes per second of write time), at least one rung.
/// - **Up, slowly**: after 6 s of headroom (writes < 50 % of the time, no drops), one rung, if
///   that rung's demand fits the drain rate and it did not fail recently (each failure doubles
///   the wait before trying it again: 10, 20, 40, 80 s).
/// - Never above the phone's ceiling ([`Controller::set_ceiling`]).
#[derive(Debug, Clone)]
pub struct Controller {
    settings: ControllerSettings,
    level: Level,
    ceiling: Level,
    window: Window,
    /// Bytes per frame measured at the current level (mean of the last window with frames).
    frame_bytes: Option<f64>,
    headroom_since_ms: Option<u64>,
    /// Per level: not tried again before this time; the current backoff.
    probe_after_ms: [u64; 5],
    backoff_ms: [u64; 5],
    changes: u64,
}

#[derive(Debug, Clone, Default)]
struct Window {
    start_ms: u64,
    busy_ms: u64,
    bytes: u64,
    sent: u64,
    dropped: u64,
}

impl Controller {
    pub fn new(start: Level, requested: Requested, now_ms: u64) -> Controller {
        Controller::with_settings(start, requested, now_ms, ControllerSettings::DEFAULT)
    }

    pub fn with_settings(
        start: Level,
        requested: Requested,
        now_ms: u64,
        settings: ControllerSettings,
    ) -> Controller {
        let ceiling = requested.ceiling();
        Controller {
            settings,
            level: start.min(ceiling),
            ceiling,
            window: Window {
                start_ms: now_ms,
                ..Window::default()
            },
            frame_bytes: None,
            headroom_since_ms: None,
            probe_after_ms: [0; 5],
            backoff_ms: [settings.probe_backoff_ms; 5],
            changes: 0,
        }
    }

    pub fn level(&self) -> Level {
        self.level
    }

    pub fn ceiling(&self) -> Level {
        self.ceiling
    }

    /// Level changes so far (the controller's and the phone's).
    pub fn changes(&self) -> u64 {
        self.changes
    }

    /// A frame of `bytes` was written to the phone; the write took `write_ms` to complete.
    pub fn on_sent(&mut self, bytes: u64, write_ms: u64) {
        self.window.bytes += bytes;
        self.window.busy_ms += write_ms;
        self.window.sent += 1;
    }

    /// A frame waiting for the phone was replaced by a newer one.
    pub fn on_dropped(&mut self) {
        self.window.dropped += 1;
    }

    /// The phone chose a new ceiling (or `auto`). Returns the new level if it changes: down to
    /// the ceiling at once, or up to it if the link is not known to be too slow for it.
    pub fn set_ceiling(&mut self, requested: Requested, now_ms: u64) -> Option<Level> {
        self.ceiling = requested.ceiling();
        let target = if self.level > self.ceiling {
            self.ceiling
        } else if let Requested::AtMost(asked) = requested {
            // The phone asked for this level by name: give it a try now, unless it failed
            // recently.
            if asked > self.level && now_ms >= self.probe_after_ms[asked.index()] {
                asked
            } else {
                self.level
            }
        } else {
            self.level
        };
        self.change_to(target, now_ms)
    }

    /// Judges the window if it is complete; returns the new level if it changes.
    pub fn evaluate(&mut self, now_ms: u64) -> Option<Level> {
        let elapsed = now_ms.saturating_sub(self.window.start_ms);
        if elapsed < self.settings.window_ms {
            return None;
        }
        let w = std::mem::replace(
            &mut self.window,
            Window {
                start_ms: now_ms,
                ..Window::default()
            },
        );
        if w.sent > 0 {
            self.frame_bytes = Some(w.bytes as f64 / w.sent as f64);
        }
        let busy = w.busy_ms as f64 / elapsed as f64;
        // Bits per second while writing: what the link drains when it is kept busy.
        let drain_bps = (w.busy_ms > 0).then(|| w.bytes as f64 * 8.0 * 1000.0 / w.busy_ms as f64);
        let saturated = busy >= self.settings.saturated_busy || w.dropped > 0;
        if saturated {
            self.headroom_since_ms = None;
            let below = self.level.lower()?;
            let target = match drain_bps {
                Some(rate) => Level::LADDER
                    .into_iter()
                    .filter(|l| *l <= below)
                    .rev()
                    .find(|l| self.demand_bps(*l) <= rate * self.settings.fill)
                    .unwrap_or(Level::DataSaver),
                None => below,
            };
            // The level left failed: wait longer before trying it again. The levels skipped on
            // the way down did not fit the measured rate either: they wait their backoff too.
            let failed = self.level.index();
            for skipped in target.index() + 1..failed {
                self.probe_after_ms[skipped] = now_ms + self.backoff_ms[skipped];
            }
            self.probe_after_ms[failed] = now_ms + self.backoff_ms[failed];
            self.backoff_ms[failed] =
                (self.backoff_ms[failed] * 2).min(self.settings.max_probe_backoff_ms);
            return self.change_to(target, now_ms);
        }
        if busy >= self.settings.headroom_busy {
            self.headroom_since_ms = None;
            return None;
        }
        let since = *self.headroom_since_ms.get_or_insert(w.start_ms);
        if now_ms.saturating_sub(since) < self.settings.up_after_ms {
            return None;
        }
        let up = self.level.higher().filter(|l| *l <= self.ceiling)?;
        if now_ms < self.probe_after_ms[up.index()] {
            return None;
        }
        if let Some(rate) = drain_bps {
            if self.demand_bps(up) > rate * self.settings.fill {
                return None;
            }
        }
        self.change_to(up, now_ms)
    }

    /// What `level` would need, in bits per second: its nominal rate scaled by how the frames
    /// measured at the current level compare with their nominal size.
    fn demand_bps(&self, level: Level) -> f64 {
        let scale = self
            .frame_bytes
            .map(|b| (b / self.level.nominal_frame_bytes() as f64).clamp(0.25, 4.0))
            .unwrap_or(1.0);
        level.nominal_bps() as f64 * scale
    }

    fn change_to(&mut self, target: Level, now_ms: u64) -> Option<Level> {
        if target == self.level {
            return None;
        }
        self.level = target;
        self.changes += 1;
        self.frame_bytes = None;
        self.headroom_since_ms = None;
        self.window = Window {
            start_ms: now_ms,
            ..Window::default()
        };
        Some(target)
    }
}

/// A JSON text message from the phone, as far as the relay cares.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PhoneMessage {
    /// `{"type":"quality_change","quality":"<auto|level>"}`.
    QualityChange(Requested),
    /// Anything else (`ping`, unknown qualities, non-JSON): passed to ArgusAI untouched.
    Other,
}

impl PhoneMessage {
    pub fn parse(text: &str) -> PhoneMessage {
        let Some((kind, quality)) = typed_message(text) else {
            return PhoneMessage::Other;
        };
        match (kind.as_str(), quality.as_deref().and_then(Requested::parse)) {
            ("quality_change", Some(r)) => PhoneMessage::QualityChange(r),
            _ => PhoneMessage::Other,
        }
    }
}

/// A JSON text message from ArgusAI, as far as the relay cares.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BackendMessage {
    /// `{"type":"quality_changed","quality":"<low|medium|high>"}`.
    QualityChanged(BackendQuality),
    /// Anything else (`pong`, errors): passed to the phone untouched.
    Other,
}

impl BackendMessage {
    pub fn parse(text: &str) -> BackendMessage {
        let Some((kind, quality)) = typed_message(text) else {
            return BackendMessage::Other;
        };
        match (
            kind.as_str(),
            quality.as_deref().and_then(BackendQuality::parse),
        ) {
            ("quality_changed", Some(q)) => BackendMessage::QualityChanged(q),
            _ => BackendMessage::Other,
        }
    }
}

/// `{"type":"quality_change","quality":"low"}`: what the relay sends ArgusAI.
pub fn quality_change_message(q: BackendQuality) -> String {
    serde_json::json!({"type": "quality_change", "quality": q.as_str()}).to_string()
}

/// `{"type":"quality_changed","quality":"<name>"}`: the relay's answer to a phone whose request
/// needed no change at ArgusAI (a level the relay makes itself, or the one ArgusAI already
/// streams).
pub fn quality_changed_message(name: &str) -> String {
    serde_json::json!({"type": "quality_changed", "quality": name}).to_string()
}

/// The `type` and `quality` of a small JSON object; `None` if it is not one.
fn typed_message(text: &str) -> Option<(String, Option<String>)> {
    #[derive(serde::Deserialize)]
    struct Typed {
        #[serde(rename = "type")]
        kind: String,
        #[serde(default)]
        quality: Option<String>,
    }
    // Control messages are tiny; a frame-sized text is not one.
    if text.len() > 1024 {
        return None;
    }
    let t: Typed = serde_json::from_str(text).ok()?;
    Some((t.kind, t.quality))
}

/// Nearest-rank percentile `p` (0–100) of `values`; `None` if empty. Sorts a copy.
pub fn percentile(values: &[u64], p: u32) -> Option<u64> {
    if values.is_empty() {
        return None;
    }
    let mut v = values.to_vec();
    v.sort_unstable();
    let rank = (u64::from(p.min(100)) * v.len() as u64)
        .div_ceil(100)
        .max(1);
    v.get(usize::try_from(rank - 1).ok()?).copied()
}

#[cfg(test)]
mod tests;

/// The comment segments (`COM`, 0xFFFE) of a JPEG's header, whole (marker, length, text): what
/// cameras and ArgusAI put there (capture times) survives the relay's re-encoding.
pub fn jpeg_comments(jpeg: &[u8]) -> Vec<&[u8]> {
    let mut out = Vec::new();
    if !jpeg.starts_with(&[0xFF, 0xD8]) {
        return out;
    }
    let mut at = 2;
    while at + 4 <= jpeg.len() && jpeg[at] == 0xFF {
        let marker = jpeg[at + 1];
        // Start of scan or end of image: the header is over.
        if marker == 0xDA || marker == 0xD9 {
            break;
        }
        let len = usize::from(u16::from_be_bytes([jpeg[at + 2], jpeg[at + 3]]));
        let Some(end) = (at + 2).checked_add(len).filter(|e| *e <= jpeg.len()) else {
            break;
        };
        if len < 2 {
            break;
        }
        if marker == 0xFE {
            out.push(&jpeg[at..end]);
        }
        at = end;
    }
    out
}

/// `jpeg` re-encoded to `variant` (a [`Level::reencode`]) with the shared JPEG pipeline, its
/// comment segments kept; `None` if the pipeline would not make it smaller (already small, not a
/// JPEG it takes), in which case the original goes out.
pub fn reencode(jpeg: &[u8], variant: &Variant) -> Option<Vec<u8>> {
    let out = crate::image::transcode(jpeg, variant, &crate::image::Limits::DEFAULT).ok()?;
    Some(with_comments(out.bytes, &jpeg_comments(jpeg)))
}

/// `encoded` with `comments` (from [`jpeg_comments`]) inserted right after its start marker.
pub fn with_comments(encoded: Vec<u8>, comments: &[&[u8]]) -> Vec<u8> {
    if comments.is_empty() || !encoded.starts_with(&[0xFF, 0xD8]) {
        return encoded;
    }
    let extra: usize = comments.iter().map(|c| c.len()).sum();
    let mut out = Vec::with_capacity(encoded.len() + extra);
    out.extend_from_slice(&encoded[..2]);
    for c in comments {
        out.extend_from_slice(c);
    }
    out.extend_from_slice(&encoded[2..]);
    out
}
