//! TEMPORARY scratch (to be deleted): dumps images for visual inspection.
use image::GrayImage;
use palmgate_matcher::synth;

fn montage(imgs: &[GrayImage], cols: u32) -> GrayImage {
    let (w, h) = imgs[0].dimensions();
    let rows = (imgs.len() as u32).div_ceil(cols);
    let mut out = GrayImage::new(w * cols, h * rows);
    for (i, im) in imgs.iter().enumerate() {
        let (cx, cy) = ((i as u32 % cols) * w, (i as u32 / cols) * h);
        image::imageops::replace(&mut out, im, cx as i64, cy as i64);
    }
    out
}

#[test]
#[ignore]
fn dump_synth() {
    let t = std::time::Instant::now();
    let hands: Vec<_> = (0..6).map(|i| synth::hand_image(i / 2, i % 2)).collect();
    eprintln!("hands {:?}", t.elapsed() / 6);
    let small: Vec<_> = hands.iter().map(|h| image::imageops::resize(h, 320, 240, image::imageops::FilterType::Triangle)).collect();
    montage(&small, 3).save("/tmp/roiw/hands.png").unwrap();
    let t = std::time::Instant::now();
    let rois: Vec<_> = (0..16).map(|i| synth::roi_image(i / 4, i % 4)).collect();
    eprintln!("rois {:?}", t.elapsed() / 16);
    montage(&rois, 4).save("/tmp/roiw/rois.png").unwrap();
    hands[0].save("/tmp/roiw/hand0.png").unwrap();
}
