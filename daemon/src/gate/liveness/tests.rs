//! The gate's presentation check on crafted presentations: which frames it waits for, what it
//! asks the sensor, and what the access machine hears.

use std::time::{Duration, Instant};

use image::GrayImage;
use palmgate_matcher::pad::model::{Presented, Species, render_burst};
use palmgate_matcher::pad::{PadProfile, PadSettings};
use palmgate_sensor::codec::{Band, FrameFormat, SensorInfo};
use palmgate_sensor::device::{BurstFrame, CapturedFrame, DeviceCommand, ReceivedAt};
use palmgate_sensor::image::PalmImage;

use super::*;

fn info(formats: &[FrameFormat]) -> SensorInfo {
    SensorInfo {
        protocol_version: 1,
        width: 640,
        height: 480,
        formats: formats.to_vec(),
        max_fps: 30,
        model: "test".to_string(),
        firmware: "0".to_string(),
    }
}

fn captured(image: GrayImage) -> CapturedFrame {
    CapturedFrame {
        image: PalmImage::new(image),
        format: FrameFormat::Gray8,
        frame_number: 1,
        encoded_bytes: 0,
        received: ReceivedAt::now(),
        decoded_at: Instant::now(),
    }
}

fn probe() -> Probe {
    let image = palmgate_matcher::synth::hand_image(1, 1);
    let probe = palmgate_matcher::extract::Extractor::builtin()
        .unwrap()
        .extract_probe(&image, palmgate_matcher::extract::InputKind::Hand)
        .unwrap();
    Probe {
        poses: probe.poses,
        received: Instant::now(),
        extract: Duration::from_millis(7),
    }
}

/// A check whose sensor has `bands` (`None`: never reported).
fn liveness(bands: Option<Vec<Band>>) -> Liveness {
    let mut liveness = Liveness::new(PadSettings::default(), Duration::from_millis(500));
    assert_eq!(liveness.connected(&info(&FrameFormat::ALL)), None);
    if let Some(bands) = bands {
        liveness.set_bands(bands);
    }
    liveness
}

/// Feeds the frames of the burst the check asked for, rendered by the physical model.
fn burst(liveness: &mut Liveness, command: Option<DeviceCommand>, presented: Presented) {
    let Some(DeviceCommand::Burst(request)) = command else {
        panic!("no burst asked: {command:?}");
    };
    let sequence = request.sequence();
    let bands: Vec<_> = sequence.iter().map(|band| pad_band(*band)).collect();
    let images = render_burst(7, 1, presented, &bands, Duration::from_millis(33));
    for (index, (band, image)) in sequence.into_iter().zip(images).enumerate() {
        liveness.burst_frame(BurstFrame {
            band,
            index: u8::try_from(index).unwrap(),
            exposed_after: Duration::from_millis(33) * u32::try_from(index).unwrap(),
            frame: captured(image),
        });
    }
}

async fn verdict(liveness: &mut Liveness) -> Verdict {
    liveness.analyse_when_complete();
    let checked = tokio::time::timeout(Duration::from_secs(60), liveness.finished())
        .await
        .expect("the analysis finishes")
        .expect("a result");
    liveness
        .verdict(checked)
        .expect("the current check's verdict")
}

#[tokio::test]
async fn a_multi_band_sensor_is_asked_for_a_lossless_burst_of_every_band() {
    let mut liveness = liveness(Some(Band::ALL.to_vec()));
    liveness.frame_taken(&captured(GrayImage::new(8, 8)));
    assert!(
        liveness.taken.is_none(),
        "a burst will be checked, not the frame"
    );
    let command = liveness.begin(probe(), Instant::now());
    let Some(DeviceCommand::Burst(request)) = command else {
        panic!("no burst: {command:?}");
    };
    assert_eq!(request.format, FrameFormat::Gray8);
    assert_eq!(request.sequence().len(), 8, "2 rounds of 4 bands");
    assert!(liveness.busy());
    // Exposure of 8 frames at 30 fps plus the request timeout.
    let deadline = liveness.next_deadline().unwrap();
    assert!(deadline > Instant::now() + Duration::from_millis(700));
}

#[tokio::test]
async fn a_modelled_live_hand_passes_and_its_probe_goes_on_with_the_last_frame_time() {
    let mut liveness = liveness(Some(Band::ALL.to_vec()));
    let command = liveness.begin(probe(), Instant::now());
    burst(&mut liveness, command, Presented::Live);
    match verdict(&mut liveness).await {
        Verdict::Live(_, last_frame) => assert!(last_frame <= Instant::now()),
        Verdict::Attack(detail) | Verdict::Refused(detail) => panic!("refused: {detail}"),
    }
    assert!(!liveness.busy());
}

#[tokio::test]
async fn every_modelled_attack_species_is_refused_with_its_cues() {
    for species in Species::ALL {
        let mut liveness = liveness(Some(Band::ALL.to_vec()));
        let command = liveness.begin(probe(), Instant::now());
        burst(&mut liveness, command, Presented::Attack(species));
        match verdict(&mut liveness).await {
            Verdict::Attack(detail) => {
                assert!(
                    detail.starts_with("liveness ")
                        && detail.contains("(balanced profile); against: "),
                    "{}: {detail}",
                    species.name()
                );
                assert!(!detail.contains("not checked"), "every cue ran: {detail}");
            }
            Verdict::Live(..) => panic!("{} passed as live", species.name()),
            Verdict::Refused(reason) => panic!("{}: {reason}", species.name()),
        }
    }
}

#[tokio::test]
async fn a_single_band_sensor_checks_the_extracted_frame_and_says_what_it_could_not() {
    for bands in [None, Some(Vec::new())] {
        let mut liveness = liveness(bands.clone());
        liveness.frame_taken(&captured(palmgate_matcher::synth::hand_image(3, 1)));
        assert_eq!(
            liveness.begin(probe(), Instant::now()),
            None,
            "{bands:?}: no burst"
        );
        assert!(
            matches!(verdict(&mut liveness).await, Verdict::Live(..)),
            "{bands:?}: a synthetic hand photo is refused"
        );
    }
    // A halftone print seen by a one-light sensor: only its texture gives it away.
    let mut liveness = liveness(Some(Vec::new()));
    let print = render_burst(
        4,
        1,
        Presented::Attack(Species::PrintVisible),
        &[palmgate_matcher::pad::Band::Nir850],
        Duration::from_millis(33),
    )
    .pop()
    .unwrap();
    liveness.frame_taken(&captured(print));
    liveness.begin(probe(), Instant::now());
    match verdict(&mut liveness).await {
        Verdict::Attack(detail) => assert!(
            detail.contains("periodic_texture")
                && detail.contains("not checked: nir_visible_ratio"),
            "{detail}"
        ),
        Verdict::Live(..) => panic!("the print passed"),
        Verdict::Refused(reason) => panic!("{reason}"),
    }
}

#[tokio::test]
async fn frames_out_of_order_or_late_leave_the_presentation_refused() {
    let mut liveness = liveness(Some(vec![Band::Nir850, Band::Visible]));
    let start = Instant::now();
    let command = liveness.begin(probe(), start);
    assert!(command.is_some());
    // The second frame first, and a frame of the wrong band: neither is taken.
    liveness.burst_frame(BurstFrame {
        band: Band::Visible,
        index: 1,
        exposed_after: Duration::ZERO,
        frame: captured(GrayImage::new(8, 8)),
    });
    liveness.burst_frame(BurstFrame {
        band: Band::Ambient,
        index: 0,
        exposed_after: Duration::ZERO,
        frame: captured(GrayImage::new(8, 8)),
    });
    liveness.analyse_when_complete();
    assert!(
        liveness.next_deadline().is_some(),
        "still waiting for its frames"
    );
    assert_eq!(liveness.expired(start), None, "not yet due");
    let due = liveness.next_deadline().unwrap();
    assert_eq!(
        liveness.expired(due).as_deref(),
        Some("the sensor did not deliver the presentation burst in time")
    );
    assert!(!liveness.busy());
}

#[tokio::test]
async fn a_reconnection_abandons_the_check_and_a_stale_result_is_ignored() {
    let mut liveness = liveness(None);
    liveness.frame_taken(&captured(palmgate_matcher::synth::hand_image(2, 1)));
    liveness.begin(probe(), Instant::now());
    liveness.analyse_when_complete();
    assert_eq!(
        liveness.connected(&info(&[FrameFormat::Jpeg])).as_deref(),
        Some("the sensor reconnected during the presentation check")
    );
    let checked = tokio::time::timeout(Duration::from_secs(60), liveness.finished())
        .await
        .unwrap()
        .unwrap();
    assert!(
        liveness.verdict(checked).is_none(),
        "the abandoned check's result"
    );
    // A JPEG-only sensor still gets its bursts, in JPEG.
    liveness.set_bands(vec![Band::Nir850]);
    let Some(DeviceCommand::Burst(request)) = liveness.begin(probe(), Instant::now()) else {
        panic!("no burst");
    };
    assert_eq!(request.format, FrameFormat::Jpeg);
}

#[test]
fn the_detail_names_the_objecting_cues_worst_first_and_no_image() {
    use palmgate_matcher::pad::{Cue, CueReading};
    let report = PadReport {
        score: Some(0.02),
        decision: PadDecision::Attack,
        cues: vec![
            CueReading {
                cue: Cue::PeriodicTexture,
                value: 0.95,
                evidence: 0.3,
            },
            CueReading {
                cue: Cue::WaterAbsorption,
                value: 1.0,
                evidence: 0.02,
            },
            CueReading {
                cue: Cue::SpecularGlare,
                value: 0.0,
                evidence: 1.0,
            },
        ],
        skipped: vec![Cue::NonRigidMotion],
    };
    let settings = PadSettings {
        profile: PadProfile::Security,
        burst_rounds: 2,
    };
    assert_eq!(
        describe(&report, settings),
        "liveness 0.02, needs 0.75 (security profile); against: water_absorption_940_850 = 1.000, \
         periodic_texture = 0.950; not checked: non_rigid_motion_px"
    );
}
