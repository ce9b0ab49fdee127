//! Deterministic data of the stand-in: events shaped like ArgusAI's `EventResponse`, synthetic byte
//! streams (video, backup), and the little calendar arithmetic they need. Everything derives from a
//! seed, so two backends with the same config serve byte-identical answers.

use serde::Serialize;

/// SplitMix64 finaliser: a good 64-bit mixing function.
pub(crate) fn mix(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// A tiny deterministic PRNG (SplitMix64).
#[derive(Clone, Debug)]
pub(crate) struct Rng(u64);

impl Rng {
    pub(crate) fn new(seed: u64) -> Self {
        Rng(seed)
    }

    pub(crate) fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        mix(self.0)
    }

    /// Uniform in `0..n` (0 when `n == 0`).
    pub(crate) fn below(&mut self, n: u64) -> u64 {
        if n == 0 {
            0
        } else {
            self.next_u64() % n
        }
    }

    /// Uniform in `lo..=hi`.
    pub(crate) fn range(&mut self, lo: i64, hi: i64) -> i64 {
        if hi <= lo {
            return lo;
        }
        lo + self.below((hi - lo) as u64 + 1) as i64
    }

    pub(crate) fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }

    pub(crate) fn pick<'a, T>(&mut self, xs: &'a [T]) -> &'a T {
        &xs[self.below(xs.len() as u64) as usize]
    }

    /// Uniform in `[0, 1)`.
    pub(crate) fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// A version-4-shaped UUID string.
    pub(crate) fn uuid(&mut self) -> String {
        let a = self.next_u64();
        let b = self.next_u64();
        format!(
            "{:08x}-{:04x}-4{:03x}-{:04x}-{:012x}",
            a >> 32,
            (a >> 16) & 0xffff,
            a & 0x0fff,
            0x8000 | ((b >> 48) & 0x3fff),
            b & 0xffff_ffff_ffff
        )
    }

    pub(crate) fn hex(&mut self, len: usize) -> String {
        let mut s = String::with_capacity(len);
        while s.len() < len {
            s.push_str(&format!("{:016x}", self.next_u64()));
        }
        s.truncate(len);
        s
    }
}

fn round_to(x: f64, decimals: i32) -> f64 {
    let f = 10f64.powi(decimals);
    (x * f).round() / f
}

// ---------------------------------------------------------------------------------------------
// Synthetic byte streams.

/// Fills `buf` with the bytes at `offset..offset+buf.len()` of the deterministic stream `stream`,
/// with `header` overlaid at the start of the stream (so a "video" starts with an MP4 `ftyp` box
/// and a "backup" with a ZIP signature). Random access: any range can be produced independently.
pub(crate) fn fill_synthetic(stream: u64, header: &[u8], offset: u64, buf: &mut [u8]) {
    let mut i = 0;
    while i < buf.len() {
        let pos = offset.wrapping_add(i as u64);
        if let Some(h) = usize::try_from(pos).ok().and_then(|p| header.get(p)) {
            buf[i] = *h;
            i += 1;
            continue;
        }
        let within = (pos % 8) as usize;
        let word = mix(stream ^ mix((pos / 8).wrapping_add(1))).to_le_bytes();
        let take = (8 - within).min(buf.len() - i);
        buf[i..i + take].copy_from_slice(&word[within..within + take]);
        i += take;
    }
}

pub(crate) fn synthetic(stream: u64, header: &[u8], offset: u64, len: usize) -> Vec<u8> {
    let mut v = vec![0u8; len];
    fill_synthetic(stream, header, offset, &mut v);
    v
}

/// The first bytes of every stand-in video: an ISO-BMFF `ftyp` box (`isom`, MP4).
pub(crate) const VIDEO_HEADER: &[u8] = b"\x00\x00\x00\x20ftypisom\x00\x00\x02\x00isomiso2avc1mp41";
/// The first bytes of every stand-in backup: a ZIP local file header signature.
pub(crate) const BACKUP_HEADER: &[u8] = b"PK\x03\x04\x14\x00\x00\x00\x08\x00";
pub(crate) const BACKUP_STREAM: u64 = 0xBAC0_0B5E_ED00_0001;

pub(crate) fn video_stream_id(seed: u64, event_index: usize) -> u64 {
    mix(seed ^ 0x7669_6465_6f00_0000 ^ event_index as u64)
}

// ---------------------------------------------------------------------------------------------
// Time.

/// Days since 1970-01-01 for a proleptic Gregorian date (Howard Hinnant's algorithm).
pub(crate) fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = if y >= 0 { y } else { y - 399 } / 400;
    let yoe = y - era * 400;
    let m = m as i64;
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + d as i64 - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

pub(crate) fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = if z >= 0 { z } else { z - 146_096 } / 146_097;
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

/// `YYYY-MM-DD` of a Unix time.
pub(crate) fn date_of(secs: i64) -> String {
    let (y, m, d) = civil_from_days(secs.div_euclid(86_400));
    format!("{y:04}-{m:02}-{d:02}")
}

/// RFC 3339 in UTC the way pydantic serialises an aware datetime: `2025-11-20T21:30:00Z`, or with
/// `.ffffff` when there are microseconds.
pub(crate) fn rfc3339(secs: i64, micros: u32) -> String {
    let day = secs.div_euclid(86_400);
    let sod = secs.rem_euclid(86_400);
    let (y, m, d) = civil_from_days(day);
    let (hh, mm, ss) = (sod / 3600, (sod / 60) % 60, sod % 60);
    if micros == 0 {
        format!("{y:04}-{m:02}-{d:02}T{hh:02}:{mm:02}:{ss:02}Z")
    } else {
        format!("{y:04}-{m:02}-{d:02}T{hh:02}:{mm:02}:{ss:02}.{micros:06}Z")
    }
}

/// Parses what pydantic accepts for a `datetime` query parameter, roughly: a Unix timestamp, a date
/// `YYYY-MM-DD`, or `YYYY-MM-DD[T ]HH:MM[:SS[.frac]][Z|±HH[:]MM]` (naive means UTC here).
/// Returns Unix seconds.
pub(crate) fn parse_datetime(s: &str) -> Option<f64> {
    let s = s.trim();
    if s.is_empty() {
        return None;
    }
    if let Ok(n) = s.parse::<f64>() {
        if n.is_finite() && !s.contains(['e', 'E', 'n', 'N', 'i', 'I']) {
            // pydantic: values above 2e10 are milliseconds.
            return Some(if n.abs() > 2e10 { n / 1000.0 } else { n });
        }
    }
    let b = s.as_bytes();
    let num = |r: std::ops::Range<usize>| -> Option<i64> {
        let part = b.get(r)?;
        if part.is_empty() || !part.iter().all(u8::is_ascii_digit) {
            return None;
        }
        std::str::from_utf8(part).ok()?.parse().ok()
    };
    if b.len() < 10 || b[4] != b'-' || b[7] != b'-' {
        return None;
    }
    let (y, mo, d) = (num(0..4)?, num(5..7)?, num(8..10)?);
    if !(1..=12).contains(&mo) || !(1..=31).contains(&d) {
        return None;
    }
    let mut secs = days_from_civil(y, mo as u32, d as u32) as f64 * 86_400.0;
    if b.len() == 10 {
        return Some(secs);
    }
    if !(b[10] == b'T' || b[10] == b't' || b[10] == b' ') || b.len() < 16 || b[13] != b':' {
        return None;
    }
    let (hh, mi) = (num(11..13)?, num(14..16)?);
    if hh > 23 || mi > 59 {
        return None;
    }
    secs += (hh * 3600 + mi * 60) as f64;
    let mut i = 16;
    if b.get(i) == Some(&b':') {
        let ss = num(i + 1..i + 3)?;
        if ss > 59 {
            return None;
        }
        secs += ss as f64;
        i += 3;
        if b.get(i) == Some(&b'.') || b.get(i) == Some(&b',') {
            let start = i + 1;
            let mut end = start;
            while end < b.len() && b[end].is_ascii_digit() {
                end += 1;
            }
            if end == start {
                return None;
            }
            let frac: f64 = format!("0.{}", std::str::from_utf8(&b[start..end]).ok()?)
                .parse()
                .ok()?;
            secs += frac;
            i = end;
        }
    }
    match b.get(i) {
        None => Some(secs),
        Some(b'Z') | Some(b'z') if i + 1 == b.len() => Some(secs),
        Some(sign @ (b'+' | b'-')) => {
            let rest = &s[i + 1..];
            let digits: String = rest.chars().filter(|c| *c != ':').collect();
            if digits.len() != 4 || !digits.bytes().all(|c| c.is_ascii_digit()) {
                return None;
            }
            let oh: i64 = digits[..2].parse().ok()?;
            let om: i64 = digits[2..].parse().ok()?;
            let off = (oh * 3600 + om * 60) as f64;
            Some(if *sign == b'+' {
                secs - off
            } else {
                secs + off
            })
        }
        _ => None,
    }
}

// ---------------------------------------------------------------------------------------------
// Events.

/// The cameras of the stand-in's fictional house.
#[derive(Clone, Debug)]
pub(crate) struct Camera {
    pub id: String,
    pub name: &'static str,
    pub source_type: &'static str,
    pub doorbell: bool,
}

#[derive(Clone, Debug)]
struct Entity {
    id: String,
    entity_type: &'static str,
    name: Option<&'static str>,
    first_seen_at: String,
    occurrence_count: i64,
}

#[derive(Serialize, Clone, Debug)]
pub(crate) struct CorrelatedEvent {
    pub id: String,
    pub camera_name: String,
    pub thumbnail_url: Option<String>,
    pub timestamp: String,
}

#[derive(Serialize, Clone, Debug)]
pub(crate) struct AiEconomics {
    pub cost: Option<f64>,
    pub tokens_used: Option<i64>,
    pub response_time_ms: Option<i64>,
    pub provider: Option<String>,
    pub fallback_used: bool,
    pub confidence: Option<i64>,
    pub prompt_variant: Option<String>,
    pub ocr_used: bool,
    pub low_confidence: bool,
}

#[derive(Serialize, Clone, Debug)]
pub(crate) struct ProcessingSummary {
    pub context_used: bool,
    pub low_confidence: bool,
    pub ai_fallback_used: bool,
    pub ocr_used: bool,
    pub entity_matched: bool,
    pub entity_is_new: Option<bool>,
    pub regenerated: bool,
    pub homekit_triggered: bool,
    pub face_processed: bool,
    pub vehicle_processed: bool,
    pub entity_alerts_run: bool,
}

#[derive(Serialize, Clone, Debug)]
pub(crate) struct ProcessingMetadata {
    pub ai_economics: Option<AiEconomics>,
    pub processing_summary: Option<ProcessingSummary>,
    pub context: Option<serde_json::Value>,
    pub entity: Option<serde_json::Value>,
    pub flags: Option<serde_json::Value>,
}

#[derive(Serialize, Clone, Debug)]
pub(crate) struct MatchedEntity {
    pub id: String,
    pub entity_type: String,
    pub name: Option<String>,
    pub first_seen_at: String,
    pub occurrence_count: i64,
    pub similarity_score: Option<f64>,
}

#[derive(Serialize, Clone, Debug)]
pub(crate) struct Feedback {
    pub id: String,
    pub event_id: String,
    pub camera_id: Option<String>,
    pub rating: String,
    pub correction: Option<String>,
    pub correction_type: Option<String>,
    pub created_at: String,
    pub updated_at: Option<String>,
    pub was_edited: bool,
}

#[derive(Serialize, Clone, Debug)]
pub(crate) struct BoundingBox {
    pub x: f64,
    pub y: f64,
    pub width: f64,
    pub height: f64,
    pub entity_type: String,
    pub confidence: f64,
    pub label: String,
}

/// ArgusAI's `EventResponse`, field for field and in its order.
#[derive(Serialize, Clone, Debug)]
pub(crate) struct Event {
    pub id: String,
    pub camera_id: String,
    pub camera_name: Option<String>,
    pub timestamp: String,
    pub description: String,
    pub confidence: i64,
    pub objects_detected: Vec<String>,
    pub thumbnail_path: Option<String>,
    pub thumbnail_base64: Option<String>,
    pub alert_triggered: bool,
    pub source_type: String,
    pub protect_event_id: Option<String>,
    pub smart_detection_type: Option<String>,
    pub is_doorbell_ring: bool,
    pub created_at: String,
    pub correlation_group_id: Option<String>,
    pub correlated_events: Option<Vec<CorrelatedEvent>>,
    pub provider_used: Option<String>,
    pub fallback_reason: Option<String>,
    pub analysis_mode: Option<String>,
    pub frame_count_used: Option<i64>,
    pub audio_transcription: Option<String>,
    pub ai_confidence: Option<i64>,
    pub low_confidence: bool,
    pub vague_reason: Option<String>,
    pub reanalyzed_at: Option<String>,
    pub reanalysis_count: i64,
    pub ai_cost: Option<f64>,
    pub ai_response_time_ms: Option<i64>,
    pub tokens_used: Option<i64>,
    pub ocr_used: bool,
    pub ai_fallback_used: bool,
    pub prompt_variant: Option<String>,
    pub entity_similarity_score: Option<f64>,
    pub entity_occurrence_count: Option<i64>,
    pub entity_is_new: Option<bool>,
    pub final_entity_similarity_score: Option<f64>,
    pub final_entity_occurrence_count: Option<i64>,
    pub final_entity_is_new: Option<bool>,
    pub final_entity_id: Option<String>,
    pub final_entity_type: Option<String>,
    pub final_entity_name: Option<String>,
    pub regenerated: bool,
    pub context_included: bool,
    pub context_stats: Option<serde_json::Value>,
    pub post_processing_summary: Option<serde_json::Value>,
    pub ai_economics: Option<AiEconomics>,
    pub processing_summary: Option<ProcessingSummary>,
    pub processing_metadata: Option<ProcessingMetadata>,
    pub key_frames_base64: Option<Vec<String>>,
    pub frame_timestamps: Option<Vec<f64>>,
    pub matched_entity: Option<MatchedEntity>,
    pub entity_id: Option<String>,
    pub entity_name: Option<String>,
    pub feedback: Option<Feedback>,
    pub audio_event_type: Option<String>,
    pub audio_confidence: Option<f64>,
    pub audio_duration_ms: Option<i64>,
    pub delivery_carrier: Option<String>,
    pub delivery_carrier_display: Option<String>,
    pub video_path: Option<String>,
    pub has_annotations: bool,
    pub bounding_boxes: Option<Vec<BoundingBox>>,
    pub annotated_thumbnail_path: Option<String>,
}

/// An event plus what the stand-in needs to serve its media.
#[derive(Clone, Debug)]
pub(crate) struct StoredEvent {
    pub event: Event,
    /// Unix seconds of `timestamp`.
    pub ts: i64,
    /// `YYYY-MM-DD` directory of its thumbnail.
    pub date: String,
    /// File name of its thumbnail inside that directory.
    pub thumbnail_file: String,
    /// Index into the stand-in's small (320×180) photos.
    pub photo: usize,
}

/// The newest event's time: 2025-11-20 21:30:00 UTC. Older events go back about two and a half days.
pub(crate) const NEWEST_EVENT: i64 = 1_763_674_200;

const CAMERAS: [(&str, &str, bool); 4] = [
    ("Front Door", "protect", true),
    ("Driveway", "protect", false),
    ("Backyard", "rtsp", false),
    ("Garage", "usb", false),
];

pub(crate) fn cameras(seed: u64) -> Vec<Camera> {
    let mut rng = Rng::new(mix(seed ^ 0xCA3E_8A00));
    CAMERAS
        .iter()
        .map(|(name, source, doorbell)| Camera {
            id: rng.uuid(),
            name,
            source_type: source,
            doorbell: *doorbell,
        })
        .collect()
}

const PERSON_SUBJECTS: &[&str] = &[
    "A person in a dark hooded jacket and grey jogging trousers",
    "An adult wearing a red baseball cap, a grey sweatshirt and light blue jeans",
    "A delivery driver in a brown uniform with a handheld scanner",
    "A woman with a ponytail carrying a canvas tote bag over her left shoulder",
    "A man in a high-visibility yellow vest holding a clipboard",
    "Two teenagers pushing mountain bikes",
    "An older man in a tweed cap walking a small white terrier on a lead",
    "A person wearing a black backpack, dark gloves and white sneakers",
];
const PERSON_ACTIONS: &[&str] = &[
    "walks up the garden path toward the front door, pauses on the step and rings the doorbell before stepping back to wait",
    "crosses the driveway from left to right, slows down next to the parked car and looks through the driver-side window",
    "approaches the side gate, lifts the latch twice without opening it, then turns around and walks back toward the street",
    "stands on the porch looking at a phone for roughly ten seconds, knocks once, and leaves when nobody answers",
    "drops a folded flyer into the mailbox and continues along the sidewalk without stopping at the house",
    "enters the frame from the street, photographs the front of the house with a phone and leaves in the same direction",
    "walks along the fence line at the back of the garden, glancing over toward the patio doors several times",
];
const VEHICLE_SUBJECTS: &[&str] = &[
    "A white Ford Transit cargo van with a ladder rack",
    "A silver Toyota Camry sedan",
    "A dark blue pickup truck with a covered bed",
    "A black SUV with tinted rear windows",
    "A small red hatchback",
    "A brown UPS package car",
];
const VEHICLE_ACTIONS: &[&str] = &[
    "pulls into the driveway and parks facing the garage door; the engine stays running for about twenty seconds",
    "slows down in front of the house and stops briefly with its hazard lights on before driving off to the north",
    "reverses out of the driveway, waits for a passing cyclist and turns left onto the street",
    "passes along the street at moderate speed without stopping; the licence plate is not legible at this distance",
    "parks across the end of the driveway, partly blocking it, and the driver remains inside the vehicle",
];
const PACKAGE_SUBJECTS: &[&str] = &[
    "A medium-sized cardboard box with blue Prime tape",
    "A padded yellow envelope",
    "Two stacked cardboard boxes, the upper one marked FRAGILE",
    "A large flat parcel wrapped in brown paper",
];
const PACKAGE_ACTIONS: &[&str] = &[
    "is left on the doormat by a courier who photographs it with a handheld device before hurrying back to the van",
    "is placed beside the planter to the right of the door, partly hidden from the street by the railing",
    "is picked up from the porch by a resident who carries it inside a few seconds later",
];
const ANIMAL_SUBJECTS: &[&str] = &[
    "A grey tabby cat",
    "A red fox",
    "A medium-sized brown dog without a collar or lead",
    "A raccoon",
    "A small group of pigeons",
];
const ANIMAL_ACTIONS: &[&str] = &[
    "crosses the lawn diagonally and disappears under the hedge on the left edge of the frame",
    "sniffs around the recycling bins next to the garage, knocking the lid of one bin slightly askew",
    "sits on the patio for close to a minute, grooming, then jumps onto the low garden wall",
    "moves quickly along the fence line and exits through the gap beneath the gate",
];
const CONTEXT_SENTENCES: &[&str] = &[
    "The scene is lit mainly by the porch light; the street beyond the hedge is dark.",
    "Overcast daylight and wet paving suggest recent rain; visibility is otherwise good.",
    "No other people or vehicles are visible in the frame during the clip.",
    "The garage door remains closed throughout and nothing on the property appears to be moved or taken.",
    "A parked car partly obscures the lower left of the frame for the first few seconds.",
    "Motion is consistent with ordinary residential activity for this time of day.",
    "The subject's face is partially visible for about two seconds near the end of the clip.",
    "Shadows from the birch tree move in the wind, but the detection is clearly attributable to the subject.",
    "Low evening sun causes some lens flare on the right side of the image.",
    "The infrared night mode is active, so colours cannot be determined reliably.",
];
const PROVIDERS: &[&str] = &["openai", "grok", "claude", "gemini"];
const MODES: &[&str] = &["single_frame", "multi_frame", "video_native"];
const NAMED_ENTITIES: &[(&str, Option<&str>)] = &[
    ("person", Some("Mail carrier")),
    ("person", Some("Neighbour (No. 14)")),
    ("person", None),
    ("vehicle", Some("Family Camry")),
    ("vehicle", Some("Delivery van")),
    ("vehicle", None),
];
const CARRIERS: &[(&str, &str)] = &[
    ("ups", "UPS"),
    ("fedex", "FedEx"),
    ("amazon", "Amazon"),
    ("dhl", "DHL"),
    ("usps", "USPS"),
];

fn describe(rng: &mut Rng, kind: &str) -> String {
    let (subjects, actions) = match kind {
        "vehicle" => (VEHICLE_SUBJECTS, VEHICLE_ACTIONS),
        "package" => (PACKAGE_SUBJECTS, PACKAGE_ACTIONS),
        "animal" => (ANIMAL_SUBJECTS, ANIMAL_ACTIONS),
        _ => (PERSON_SUBJECTS, PERSON_ACTIONS),
    };
    let mut s = format!("{} {}.", rng.pick(subjects), rng.pick(actions));
    let n = rng.range(1, 2);
    let first = rng.below(CONTEXT_SENTENCES.len() as u64) as usize;
    for k in 0..n as usize {
        s.push(' ');
        s.push_str(CONTEXT_SENTENCES[(first + k * 3) % CONTEXT_SENTENCES.len()]);
    }
    s
}

/// Generates `count` events, newest first, from `seed`. `photo_count` is the number of small photos
/// available for thumbnails.
pub(crate) fn generate_events(seed: u64, count: usize, photo_count: usize) -> Vec<StoredEvent> {
    let cams = cameras(seed);
    let mut rng = Rng::new(mix(seed));
    let entities: Vec<Entity> = NAMED_ENTITIES
        .iter()
        .map(|(t, name)| {
            let first = NEWEST_EVENT - rng.range(10, 90) * 86_400;
            Entity {
                id: rng.uuid(),
                entity_type: t,
                name: *name,
                first_seen_at: rfc3339(first, 0),
                occurrence_count: rng.range(3, 120),
            }
        })
        .collect();

    let mut out: Vec<StoredEvent> = Vec::with_capacity(count);
    let mut ts = NEWEST_EVENT;
    for i in 0..count {
        if i > 0 {
            ts -= rng.range(240, 2_400);
        }
        let cam = &cams[rng.below(cams.len() as u64) as usize];
        let kind = match rng.below(100) {
            0..=44 => "person",
            45..=69 => "vehicle",
            70..=84 => "package",
            _ => "animal",
        };
        let kind = if cam.source_type == "usb" && kind == "package" {
            "person"
        } else {
            kind
        };
        let mut objects = vec![kind.to_owned()];
        if kind == "package" {
            objects.insert(0, "person".to_owned());
        } else if kind == "person" && rng.chance(15) {
            objects.push("vehicle".to_owned());
        }
        let id = rng.uuid();
        let micros = rng.below(1_000_000) as u32;
        let timestamp = rfc3339(ts, micros);
        let created_at = rfc3339(ts + rng.range(2, 9), rng.below(1_000_000) as u32);
        let date = date_of(ts);
        let thumbnail_file = format!("event_{id}.jpg");
        let photo = if photo_count == 0 {
            0
        } else {
            rng.below(photo_count as u64) as usize
        };
        let description = describe(&mut rng, kind);
        let confidence = rng.range(58, 98);
        let ai_confidence = (confidence + rng.range(-15, 5)).clamp(0, 100);
        let low_confidence = ai_confidence < 50 || rng.chance(5);
        let provider = rng.pick(PROVIDERS).to_string();
        let fallback_used = rng.chance(8);
        let fallback_reason = (cam.source_type == "protect" && rng.chance(10))
            .then(|| "clip_download_failed".to_owned());
        let mode = if fallback_reason.is_some() {
            "single_frame"
        } else {
            rng.pick(MODES)
        };
        let frames = match mode {
            "single_frame" => 1,
            "multi_frame" => rng.range(3, 5),
            _ => rng.range(8, 12),
        };
        let tokens = rng.range(780, 2_600);
        let cost = round_to(
            tokens as f64 * rng.range(15, 60) as f64 / 100_000_000.0 * 10.0,
            6,
        );
        let response_ms = rng.range(900, 6_500);
        let ocr_used = rng.chance(20);
        let prompt_variant = rng.chance(30).then(|| {
            if rng.chance(50) {
                "control"
            } else {
                "experiment"
            }
            .to_owned()
        });
        let context_included = rng.chance(60);
        let smart = if cam.source_type == "protect" {
            Some(kind.to_owned())
        } else {
            None
        };
        let doorbell_ring = cam.doorbell && kind == "person" && rng.chance(30);
        let alert = kind == "person" && (doorbell_ring || rng.chance(25)) || kind == "package";

        let matched = if matches!(kind, "person" | "vehicle") && rng.chance(55) {
            let pool: Vec<&Entity> = entities.iter().filter(|e| e.entity_type == kind).collect();
            let e = pool[rng.below(pool.len() as u64) as usize];
            Some((e.clone(), round_to(0.72 + rng.unit() * 0.26, 4)))
        } else {
            None
        };
        let entity_is_new = matched.as_ref().map(|(e, _)| e.occurrence_count <= 3);

        let economics = AiEconomics {
            cost: Some(cost),
            tokens_used: Some(tokens),
            response_time_ms: Some(response_ms),
            provider: Some(provider.clone()),
            fallback_used,
            confidence: Some(ai_confidence),
            prompt_variant: prompt_variant.clone(),
            ocr_used,
            low_confidence,
        };
        let summary = ProcessingSummary {
            context_used: context_included,
            low_confidence,
            ai_fallback_used: fallback_used,
            ocr_used,
            entity_matched: matched.is_some(),
            entity_is_new,
            regenerated: false,
            homekit_triggered: alert,
            face_processed: kind == "person",
            vehicle_processed: kind == "vehicle",
            entity_alerts_run: matched.is_some(),
        };
        let similar = rng.range(0, 12);
        let gather_ms = rng.range(4, 80);
        let context_stats = context_included.then(|| {
            serde_json::json!({
                "entity_context": matched.is_some(),
                "similar_events_count": similar,
                "time_pattern": if ts.rem_euclid(86_400) > 18 * 3600 { "unusual_hour" } else { "typical" },
                "gather_time_ms": gather_ms,
            })
        });
        let post = serde_json::json!({
            "homekit": {"motion": true, "occupancy": kind == "person", "vehicle": kind == "vehicle", "animal": kind == "animal", "package": kind == "package"},
        });
        let entity_meta = matched.as_ref().map(|(e, score)| {
            serde_json::json!({
                "early": {"entity_id": e.id, "similarity_score": score, "occurrence_count": e.occurrence_count, "is_new": e.occurrence_count <= 3},
                "final": {"entity_id": e.id, "entity_type": e.entity_type, "name": e.name, "similarity_score": score},
            })
        });
        let flags = serde_json::json!({
            "fallback": fallback_reason.is_some(),
            "regenerated": false,
            "low_confidence": low_confidence,
            "ocr_used": ocr_used,
        });
        let metadata = ProcessingMetadata {
            // Already at the top level of the event; ArgusAI leaves them out here when so.
            ai_economics: None,
            processing_summary: None,
            context: Some(serde_json::json!({"included": context_included})),
            entity: entity_meta,
            flags: Some(flags),
        };
        let frame_timestamps: Vec<f64> = (0..frames)
            .map(|k| round_to(k as f64 * 1.5 + rng.unit() * 0.4, 2))
            .collect();
        let mut boxes = Vec::new();
        for obj in &objects {
            let w = round_to(0.08 + rng.unit() * 0.3, 3);
            let h = round_to(0.15 + rng.unit() * 0.5, 3);
            boxes.push(BoundingBox {
                x: round_to(rng.unit() * (1.0 - w), 3),
                y: round_to(rng.unit() * (1.0 - h), 3),
                width: w,
                height: h,
                entity_type: obj.clone(),
                confidence: round_to(0.6 + rng.unit() * 0.39, 3),
                label: match obj.as_str() {
                    "person" => "person near entrance",
                    "vehicle" => "vehicle in driveway",
                    "package" => "parcel on doorstep",
                    _ => "animal on lawn",
                }
                .to_owned(),
            });
        }
        let carrier = (kind == "package").then(|| *rng.pick(CARRIERS));
        let audio = doorbell_ring.then(|| {
            (
                "doorbell".to_owned(),
                round_to(0.8 + rng.unit() * 0.19, 3),
                rng.range(600, 2_400),
            )
        });
        let feedback = rng.chance(12).then(|| Feedback {
            id: rng.uuid(),
            event_id: id.clone(),
            camera_id: Some(cam.id.clone()),
            rating: if rng.chance(80) {
                "helpful"
            } else {
                "not_helpful"
            }
            .to_owned(),
            correction: None,
            correction_type: None,
            created_at: rfc3339(ts + rng.range(60, 7_200), 0),
            updated_at: None,
            was_edited: false,
        });
        let protect_event_id = (cam.source_type == "protect").then(|| rng.hex(24));
        let has_annotations = rng.chance(40);
        let event = Event {
            id: id.clone(),
            camera_id: cam.id.clone(),
            camera_name: Some(cam.name.to_owned()),
            timestamp,
            description,
            confidence,
            objects_detected: objects.clone(),
            thumbnail_path: Some(format!("thumbnails/{date}/{thumbnail_file}")),
            thumbnail_base64: None,
            alert_triggered: alert,
            source_type: cam.source_type.to_owned(),
            protect_event_id,
            smart_detection_type: if doorbell_ring {
                Some("ring".to_owned())
            } else {
                smart
            },
            is_doorbell_ring: doorbell_ring,
            created_at,
            correlation_group_id: None,
            correlated_events: None,
            provider_used: Some(provider),
            fallback_reason: fallback_reason.clone(),
            analysis_mode: Some(mode.to_owned()),
            frame_count_used: Some(frames),
            audio_transcription: doorbell_ring
                .then(|| "Hi, I have a delivery for number twelve.".to_owned()),
            ai_confidence: Some(ai_confidence),
            low_confidence,
            vague_reason: low_confidence.then(|| {
                "Description uses hedging language (\"appears to\", \"possibly\")".to_owned()
            }),
            reanalyzed_at: None,
            reanalysis_count: 0,
            ai_cost: Some(cost),
            ai_response_time_ms: Some(response_ms),
            tokens_used: Some(tokens),
            ocr_used,
            ai_fallback_used: fallback_used,
            prompt_variant,
            entity_similarity_score: matched.as_ref().map(|(_, s)| *s),
            entity_occurrence_count: matched.as_ref().map(|(e, _)| e.occurrence_count),
            entity_is_new,
            final_entity_similarity_score: matched.as_ref().map(|(_, s)| *s),
            final_entity_occurrence_count: matched.as_ref().map(|(e, _)| e.occurrence_count),
            final_entity_is_new: entity_is_new,
            final_entity_id: matched.as_ref().map(|(e, _)| e.id.clone()),
            final_entity_type: matched.as_ref().map(|(e, _)| e.entity_type.to_owned()),
            final_entity_name: matched
                .as_ref()
                .and_then(|(e, _)| e.name.map(str::to_owned)),
            regenerated: false,
            context_included,
            context_stats,
            post_processing_summary: Some(post),
            ai_economics: Some(economics),
            processing_summary: Some(summary),
            processing_metadata: Some(metadata),
            key_frames_base64: None,
            frame_timestamps: Some(frame_timestamps),
            matched_entity: matched.as_ref().map(|(e, s)| MatchedEntity {
                id: e.id.clone(),
                entity_type: e.entity_type.to_owned(),
                name: e.name.map(str::to_owned),
                first_seen_at: e.first_seen_at.clone(),
                occurrence_count: e.occurrence_count,
                similarity_score: Some(*s),
            }),
            entity_id: matched.as_ref().map(|(e, _)| e.id.clone()),
            entity_name: matched
                .as_ref()
                .and_then(|(e, _)| e.name.map(str::to_owned)),
            feedback,
            audio_event_type: audio.as_ref().map(|a| a.0.clone()),
            audio_confidence: audio.as_ref().map(|a| a.1),
            audio_duration_ms: audio.as_ref().map(|a| a.2),
            delivery_carrier: carrier.map(|c| c.0.to_owned()),
            delivery_carrier_display: carrier.map(|c| c.1.to_owned()),
            video_path: Some(format!("videos/{date}/event_{id}.mp4")),
            has_annotations,
            bounding_boxes: Some(boxes),
            annotated_thumbnail_path: has_annotations
                .then(|| format!("thumbnails/{date}/event_{id}_annotated.jpg")),
        };
        out.push(StoredEvent {
            event,
            ts,
            date,
            thumbnail_file,
            photo,
        });
    }

    // Correlate some neighbouring events seen by different cameras within five minutes.
    let mut i = 0;
    while i + 1 < out.len() {
        let close = out[i].ts - out[i + 1].ts <= 300
            && out[i].event.camera_id != out[i + 1].event.camera_id;
        if close && rng.chance(70) {
            let group = rng.uuid();
            let link = |e: &StoredEvent| CorrelatedEvent {
                id: e.event.id.clone(),
                camera_name: e.event.camera_name.clone().unwrap_or_default(),
                thumbnail_url: Some(format!(
                    "/api/v1/thumbnails/{}/{}",
                    e.date, e.thumbnail_file
                )),
                timestamp: e.event.timestamp.clone(),
            };
            let (a, b) = (link(&out[i]), link(&out[i + 1]));
            out[i].event.correlation_group_id = Some(group.clone());
            out[i].event.correlated_events = Some(vec![b]);
            out[i + 1].event.correlation_group_id = Some(group);
            out[i + 1].event.correlated_events = Some(vec![a]);
            i += 2;
        } else {
            i += 1;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn calendar_round_trips() {
        for d in [-1000i64, -1, 0, 1, 59, 365, 20_412, 50_000] {
            let (y, m, dd) = civil_from_days(d);
            assert_eq!(days_from_civil(y, m, dd), d);
        }
        assert_eq!(rfc3339(NEWEST_EVENT, 0), "2025-11-20T21:30:00Z");
        assert_eq!(
            parse_datetime("2025-11-20T21:30:00Z"),
            Some(NEWEST_EVENT as f64)
        );
        assert_eq!(
            parse_datetime("2025-11-20T22:30:00+01:00"),
            Some(NEWEST_EVENT as f64)
        );
        assert_eq!(
            parse_datetime("2025-11-20"),
            Some((NEWEST_EVENT - 21 * 3600 - 1800) as f64)
        );
        assert_eq!(parse_datetime("not a date"), None);
        assert_eq!(parse_datetime("2025-13-01"), None);
    }

    #[test]
    fn synthetic_is_random_access() {
        let all = synthetic(7, VIDEO_HEADER, 0, 4096);
        assert_eq!(&all[..VIDEO_HEADER.len()], VIDEO_HEADER);
        assert_eq!(
            synthetic(7, VIDEO_HEADER, 1000, 77),
            all[1000..1077].to_vec()
        );
        assert_eq!(synthetic(7, VIDEO_HEADER, 3, 5), all[3..8].to_vec());
    }

    #[test]
    fn events_are_deterministic_and_sized_like_the_real_ones() {
        let a = generate_events(42, 137, 3);
        let b = generate_events(42, 137, 3);
        let ja = serde_json::to_string(&a.iter().map(|e| &e.event).collect::<Vec<_>>()).unwrap();
        let jb = serde_json::to_string(&b.iter().map(|e| &e.event).collect::<Vec<_>>()).unwrap();
        assert_eq!(ja, jb);
        let avg = ja.len() / a.len();
        assert!((2_500..=3_400).contains(&avg), "average event size {avg}");
        assert!(a.windows(2).all(|w| w[0].ts >= w[1].ts));
    }
}
