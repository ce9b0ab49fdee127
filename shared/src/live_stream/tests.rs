use super::*;

fn link(rtt: Option<u32>, platform: Option<&str>) -> EdgeLink {
    EdgeLink {
        rtt_ms: rtt,
        platform: platform.map(str::to_owned),
    }
}

#[test]
fn the_ladder_is_ordered_and_only_the_two_lowest_rungs_are_reencoded() {
    for pair in Level::LADDER.windows(2) {
        assert!(pair[0] < pair[1]);
        assert!(pair[0].nominal_bps() < pair[1].nominal_bps());
        assert!(pair[0].max_fps() <= pair[1].max_fps());
        assert_eq!(pair[0].higher(), Some(pair[1]));
        assert_eq!(pair[1].lower(), Some(pair[0]));
    }
    assert_eq!(Level::DataSaver.lower(), None);
    assert_eq!(Level::High.higher(), None);
    let reencoded: Vec<_> = Level::LADDER
        .into_iter()
        .filter(|l| l.reencode().is_some())
        .collect();
    assert_eq!(reencoded, [Level::DataSaver, Level::Reduced]);
    for l in reencoded {
        assert_eq!(l.backend(), BackendQuality::Low);
    }
    assert!(
        Level::DataSaver.nominal_bps() <= 300_000,
        "data saver fits ~300 kbit/s"
    );
    for l in Level::LADDER {
        assert_eq!(Level::parse(l.as_str()), Some(l));
    }
    for q in [
        BackendQuality::Low,
        BackendQuality::Medium,
        BackendQuality::High,
    ] {
        assert_eq!(Level::of_backend(q).backend(), q);
        assert_eq!(BackendQuality::parse(q.as_str()), Some(q));
    }
}

#[test]
fn the_frame_gap_leaves_room_for_jitter() {
    assert_eq!(Level::Low.min_frame_gap_ms(), 160);
    assert_eq!(Level::DataSaver.min_frame_gap_ms(), 266);
}

#[test]
fn a_phone_asks_for_auto_or_a_level_as_a_ceiling() {
    assert_eq!(Requested::parse("auto"), Some(Requested::Auto));
    assert_eq!(Requested::Auto.ceiling(), Level::High);
    assert_eq!(
        Requested::parse("medium"),
        Some(Requested::AtMost(Level::Medium))
    );
    assert_eq!(
        Requested::parse("data_saver").map(Requested::ceiling),
        Some(Level::DataSaver)
    );
    assert_eq!(Requested::parse("ultra"), None);
    assert_eq!(Requested::parse(""), None);
}

#[test]
fn the_start_level_follows_the_network_the_rtt_and_the_ceiling() {
    let hints = |lan, network, edge| StartHints { lan, network, edge };
    let auto = Requested::Auto;
    assert_eq!(
        start_level(&hints(true, None, EdgeLink::default()), auto),
        Level::Medium
    );
    assert_eq!(
        start_level(
            &hints(false, Some(Network::Wifi), EdgeLink::default()),
            auto
        ),
        Level::Medium
    );
    assert_eq!(
        start_level(
            &hints(false, Some(Network::Cellular), EdgeLink::default()),
            auto
        ),
        Level::Low
    );
    assert_eq!(
        start_level(&hints(false, None, link(None, Some("ios"))), auto),
        Level::Low
    );
    assert_eq!(
        start_level(&hints(false, None, link(None, Some("linux"))), auto),
        Level::Medium
    );
    assert_eq!(
        start_level(
            &hints(false, Some(Network::Wifi), link(Some(180), None)),
            auto
        ),
        Level::Reduced
    );
    assert_eq!(
        start_level(
            &hints(false, Some(Network::Wifi), link(Some(400), None)),
            auto
        ),
        Level::DataSaver
    );
    // The LAN ignores the edge's RTT (there is none) and the ceiling always holds.
    assert_eq!(
        start_level(&hints(true, None, link(Some(400), None)), auto),
        Level::Medium
    );
    assert_eq!(
        start_level(
            &hints(false, Some(Network::Wifi), EdgeLink::default()),
            Requested::AtMost(Level::Low)
        ),
        Level::Low
    );
}

#[test]
fn the_network_header_and_the_edge_link_header_parse_leniently() {
    assert_eq!(Network::parse("cellular"), Some(Network::Cellular));
    assert_eq!(Network::parse(" WiFi "), Some(Network::Wifi));
    assert_eq!(Network::parse("carrier-pigeon"), None);
    let l = link(Some(42), Some("iOS"));
    let v = l.to_header_value().unwrap();
    assert_eq!(v, "rtt=42; platform=ios");
    assert_eq!(EdgeLink::parse(&v), link(Some(42), Some("ios")));
    assert_eq!(
        EdgeLink::parse("rtt=abc; platform=a b; x=1"),
        EdgeLink::default()
    );
    assert_eq!(EdgeLink::default().to_header_value(), None);
    // A platform that is not a token is left out rather than sent.
    assert_eq!(
        link(Some(1), Some("bad\nvalue"))
            .to_header_value()
            .as_deref(),
        Some("rtt=1")
    );
}

/// Feeds one window of `frames` frames of `bytes` each, each write taking `write_ms`, with
/// `dropped` drops, then evaluates at its end.
fn window(
    c: &mut Controller,
    now: &mut u64,
    frames: u64,
    bytes: u64,
    write_ms: u64,
    dropped: u64,
) -> Option<Level> {
    for _ in 0..frames {
        c.on_sent(bytes, write_ms);
    }
    for _ in 0..dropped {
        c.on_dropped();
    }
    *now += 1000;
    c.evaluate(*now)
}

#[test]
fn a_saturated_link_steps_down_at_once_to_what_fits() {
    let mut now = 0;
    let mut c = Controller::new(Level::Medium, Requested::Auto, now);
    // 500 kbit/s: 110 KB frames take 1.76 s each; the writer is always busy and drops frames.
    let got = window(&mut c, &mut now, 1, 110_000, 1760, 9);
    // Drained 500 kbit/s of write time; data saver (~216 kbit/s nominal) fits in 3/4 of it,
    // reduced (512) and low (1600) do not.
    assert_eq!(got, Some(Level::DataSaver));
    assert_eq!(c.changes(), 1);
}

#[test]
fn a_busy_window_without_a_rate_steps_down_one_rung() {
    let mut now = 0;
    let mut c = Controller::new(Level::High, Requested::Auto, now);
    assert_eq!(window(&mut c, &mut now, 0, 0, 0, 3), Some(Level::Medium));
}

#[test]
fn headroom_must_last_before_a_step_up_and_the_ceiling_holds() {
    let mut now = 0;
    let mut c = Controller::new(Level::Low, Requested::AtMost(Level::Medium), now);
    // Fast link: 40 KB frames written in 2 ms (160 Mbit/s).
    for _ in 0..5 {
        assert_eq!(
            window(&mut c, &mut now, 5, 40_000, 2, 0),
            None,
            "not before 6 s"
        );
    }
    assert_eq!(
        window(&mut c, &mut now, 5, 40_000, 2, 0),
        Some(Level::Medium)
    );
    for _ in 0..20 {
        assert_eq!(window(&mut c, &mut now, 10, 110_000, 5, 0), None, "ceiling");
    }
    assert_eq!(c.level(), Level::Medium);
}

#[test]
fn a_step_up_waits_for_a_rate_that_fits() {
    let mut now = 0;
    let mut c = Controller::new(Level::Low, Requested::Auto, now);
    // 40 KB in 100 ms of write time: 3.2 Mbit/s drain, 40 % busy: headroom, but medium's
    // ~8.8 Mbit/s does not fit.
    for _ in 0..20 {
        assert_eq!(window(&mut c, &mut now, 4, 40_000, 100, 0), None);
    }
}

#[test]
fn a_level_that_failed_is_tried_again_only_after_a_growing_backoff() {
    let mut now = 0;
    let mut c = Controller::new(Level::Reduced, Requested::Auto, now);
    assert_eq!(
        window(&mut c, &mut now, 2, 16_000, 900, 2),
        Some(Level::DataSaver)
    );
    let failed_at = now;
    // Headroom right away: the step back up waits for the backoff (10 s), not just 6 s.
    let mut up_at = None;
    for _ in 0..30 {
        if window(&mut c, &mut now, 3, 9_000, 1, 0) == Some(Level::Reduced) {
            up_at = Some(now);
            break;
        }
    }
    let up_at = up_at.expect("tried again");
    assert!(up_at - failed_at >= 10_000, "{}", up_at - failed_at);
    // It fails again: the next try waits 20 s.
    assert_eq!(
        window(&mut c, &mut now, 2, 16_000, 950, 1),
        Some(Level::DataSaver)
    );
    let failed_at = now;
    let mut up_at = None;
    for _ in 0..40 {
        if window(&mut c, &mut now, 3, 9_000, 1, 0).is_some() {
            up_at = Some(now);
            break;
        }
    }
    assert!(up_at.expect("tried again") - failed_at >= 20_000);
}

#[test]
fn a_phone_lowering_its_ceiling_takes_effect_at_once_and_raising_it_is_tried() {
    let mut now = 0;
    let mut c = Controller::new(Level::Medium, Requested::Auto, now);
    assert_eq!(
        c.set_ceiling(Requested::AtMost(Level::Low), now),
        Some(Level::Low)
    );
    assert_eq!(c.ceiling(), Level::Low);
    now += 100;
    assert_eq!(
        c.set_ceiling(Requested::AtMost(Level::High), now),
        Some(Level::High)
    );
    assert_eq!(c.set_ceiling(Requested::Auto, now), None);
    // A level that just failed is not forced by the phone's request. 2.4 Mbit/s drained: low
    // (1.6 Mbit/s) fits in 3/4 of it.
    assert_eq!(
        window(&mut c, &mut now, 1, 300_000, 1000, 5),
        Some(Level::Low)
    );
    assert_eq!(c.set_ceiling(Requested::AtMost(Level::High), now), None);
}

#[test]
fn control_messages_are_recognised_and_everything_else_passes() {
    assert_eq!(
        PhoneMessage::parse(r#"{"type":"quality_change","quality":"auto"}"#),
        PhoneMessage::QualityChange(Requested::Auto)
    );
    assert_eq!(
        PhoneMessage::parse(r#"{"type":"quality_change","quality":"ultra"}"#),
        PhoneMessage::Other
    );
    assert_eq!(
        PhoneMessage::parse(r#"{"type":"ping"}"#),
        PhoneMessage::Other
    );
    assert_eq!(PhoneMessage::parse("ping"), PhoneMessage::Other);
    assert_eq!(
        BackendMessage::parse(r#"{"type":"quality_changed","quality":"low"}"#),
        BackendMessage::QualityChanged(BackendQuality::Low)
    );
    assert_eq!(
        BackendMessage::parse(r#"{"type":"error","code":"CAMERA_NOT_FOUND","message":"x"}"#),
        BackendMessage::Other
    );
    let m: serde_json::Value =
        serde_json::from_str(&quality_change_message(BackendQuality::High)).unwrap();
    assert_eq!(
        m,
        serde_json::json!({"type": "quality_change", "quality": "high"})
    );
}

#[test]
fn percentiles_are_nearest_rank() {
    assert_eq!(percentile(&[], 50), None);
    let v: Vec<u64> = (1..=100).collect();
    assert_eq!(percentile(&v, 50), Some(50));
    assert_eq!(percentile(&v, 99), Some(99));
    assert_eq!(percentile(&[7], 99), Some(7));
}

#[test]
fn comments_survive_a_reencode() {
    let photo = crate::test_photos::by_name("cups-320x180.jpg")
        .unwrap()
        .jpeg();
    let comment: &[u8] = &[0xFF, 0xFE, 0x00, 0x07, b'f', b'=', b'4', b'2', b'!'];
    let tagged = with_comments(photo.clone(), &[comment]);
    assert_eq!(jpeg_comments(&tagged), vec![comment]);
    assert_eq!(jpeg_comments(&photo), Vec::<&[u8]>::new());
    assert_eq!(jpeg_comments(b"not a jpeg"), Vec::<&[u8]>::new());
    // Truncated headers end the walk instead of panicking.
    assert_eq!(jpeg_comments(&tagged[..6]), Vec::<&[u8]>::new());
}
