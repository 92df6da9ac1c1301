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

#[test]
#[ignore]
fn dump_real() {
    let mut imgs = Vec::new();
    for id in ["hand001", "hand002", "hand011", "hand017", "hand025", "hand033"] {
        for s in ["1", "3"] {
            let im = image::open(format!("/work/shared/data/palm/coep-dev/{id}/{s}.jpg")).unwrap().to_luma8();
            imgs.push(image::imageops::resize(&im, 267, 200, image::imageops::FilterType::Triangle));
        }
    }
    montage(&imgs, 4).save("/tmp/roiw/coep.png").unwrap();
    let im = image::open("/work/shared/data/palm/coep-dev/hand001/1.jpg").unwrap().to_rgb8();
    image::imageops::resize(&im, 400, 300, image::imageops::FilterType::Triangle).save("/tmp/roiw/coep_rgb.png").unwrap();
    let mut imgs = Vec::new();
    for id in ["001l", "002l", "003l"] {
        for s in ["01", "04"] {
            let im = image::open(format!("/work/shared/data/palm/casia940-small/{id}/{s}.png")).unwrap().to_luma8();
            imgs.push(image::imageops::resize(&im, 256, 192, image::imageops::FilterType::Triangle));
        }
    }
    montage(&imgs, 3).save("/tmp/roiw/casia.png").unwrap();
}

fn run_set(name: &str, dir: &str, ids: &[&str], rgb: bool) {
    let mut rows = Vec::new();
    let mut fails = 0;
    let mut total = 0;
    let mut methods = std::collections::BTreeMap::new();
    for id in ids {
        let mut files: Vec<_> = std::fs::read_dir(format!("{dir}/{id}")).unwrap().map(|e| e.unwrap().path()).collect();
        files.sort();
        for f in files {
            total += 1;
            let im = image::open(&f).unwrap();
            let t = std::time::Instant::now();
            let r = if rgb { palmgate_matcher::roi::extract_roi_rgb(&im.to_rgb8()) } else { palmgate_matcher::roi::extract_roi(&im.to_luma8()) };
            let el = t.elapsed();
            match r {
                Ok(roi) => {
                    *methods.entry(format!("{:?}", roi.geometry.method)).or_insert(0) += 1;
                    if std::env::var("V").is_ok() { eprintln!("{} {:?} {:?} ang {:.1} side {:.0} c {:?} v {:?}", f.display(), el, roi.geometry.method, roi.geometry.angle.to_degrees(), roi.geometry.side, roi.geometry.centre, roi.geometry.valleys); }
                    rows.push(roi.image.clone());
                }
                Err(e) => { fails += 1; eprintln!("{} FAIL {e}", f.display()); rows.push(GrayImage::new(128,128)); }
            }
        }
    }
    eprintln!("{name}: {fails}/{total} failed, methods {methods:?}");
    let cols = rows.len() / ids.len();
    montage(&rows, cols as u32).save(format!("/tmp/roiw/roi_{name}.png")).unwrap();
}

#[test]
#[ignore]
fn dump_rois() {
    let ids: Vec<String> = {
        let mut v: Vec<_> = std::fs::read_dir("/work/shared/data/palm/coep-dev").unwrap().map(|e| e.unwrap().file_name().into_string().unwrap()).collect();
        v.sort(); v
    };
    let ids: Vec<&str> = ids.iter().map(|s| s.as_str()).collect();
    let set = std::env::var("SET").unwrap_or_default();
    if set.contains("coep") {
        let n: usize = std::env::var("N").map(|n| n.parse().unwrap()).unwrap_or(10);
        run_set("coep", "/work/shared/data/palm/coep-dev", &ids[..n.min(ids.len())], set.contains("rgb"));
    }
    if set.contains("casia") {
        run_set("casia", "/work/shared/data/palm/casia940-small", &["001l", "002l", "003l"], false);
    }
    if set.contains("synth") {
        let mut rows = Vec::new();
        for id in 0..6u64 { for c in 0..4 {
            let h = synth::hand_capture(id, c);
            match palmgate_matcher::roi::extract_roi(&h.image) {
                Ok(r) => { eprintln!("synth {id}/{c}: {:?} ang {:.1} vs {:.1}, c {:?} vs {:?}, side {:.0} vs {:.0}", r.geometry.method, r.geometry.angle.to_degrees(), h.pose.angle.to_degrees(), r.geometry.centre, h.roi_centre, r.geometry.side, h.roi_side); rows.push(r.image.clone()); }
                Err(e) => { eprintln!("synth {id}/{c}: FAIL {e}"); rows.push(GrayImage::new(128,128)); }
            }
        }}
        montage(&rows, 4).save("/tmp/roiw/roi_synth.png").unwrap();
    }
}
#[test]
#[ignore]
fn one_synth() {
    let id: u64 = std::env::var("ID").unwrap().parse().unwrap();
    let c: u64 = std::env::var("C").unwrap().parse().unwrap();
    let h = synth::hand_capture(id, c);
    h.image.save("/tmp/roiw/one.png").unwrap();
    let r = palmgate_matcher::roi::extract_roi(&h.image);
    eprintln!("{:?} truth valleys {:?}", r.map(|r| r.geometry.clone()), h.valleys);
}
#[test]
#[ignore]
fn one_file() {
    let f = std::env::var("F").unwrap();
    let im = image::open(&f).unwrap().to_luma8();
    let r = palmgate_matcher::roi::extract_roi(&im);
    eprintln!("{:?}", r.map(|r| r.geometry.clone()));
}
#[test]
#[ignore]
fn focus_values() {
    use palmgate_matcher::roi::{Roi, extract_roi};
    for c in 0..3 { let g = synth::roi_image(6, c);
    for s in [0.0f32, 1.0, 2.0, 4.0] {
        let im = if s > 0.0 { image::imageops::blur(&g, s) } else { g.clone() };
        eprintln!("synth roi blur {s}: {:?}", Roi::from_roi_image(&im).unwrap().raw);
    }}
    for c in 0..3 { eprintln!("synth hand: {:?}", extract_roi(&synth::hand_image(4, c)).unwrap().raw); }
    for f in ["coep-dev/hand001/1.jpg", "coep-dev/hand017/2.jpg", "coep-dev/hand033/3.jpg", "casia940-small/001l/01.png", "casia940-small/003l/04.png", "tongji-roi/palm01/1-01.png", "tongji-roi/palm05/2-03.png"] {
        let p = format!("/work/shared/data/palm/{f}");
        let Ok(im) = image::open(&p) else { eprintln!("no {p}"); continue };
        let im = im.to_luma8();
        let r = if f.starts_with("tongji") { Roi::from_roi_image(&im) } else { extract_roi(&im) };
        eprintln!("{f}: {:?}", r.map(|r| r.raw));
    }
}
#[test]
#[ignore]
fn time_stages() {
    use imageproc::distance_transform::Norm;
    let im = image::open("/work/shared/data/palm/coep-dev/hand001/1.jpg").unwrap();
    let rgb = im.to_rgb8();
    let gray = im.to_luma8();
    let t = std::time::Instant::now(); for _ in 0..10 { let _ = palmgate_matcher::roi::extract_roi_rgb(&rgb); } eprintln!("rgb total {:?}", t.elapsed()/10);
    let t = std::time::Instant::now(); for _ in 0..10 { let _ = palmgate_matcher::roi::extract_roi(&gray); } eprintln!("gray total {:?}", t.elapsed()/10);
    let t = std::time::Instant::now(); for _ in 0..10 { let _ = image::DynamicImage::ImageRgb8(rgb.clone()).to_luma8(); } eprintln!("to_luma {:?}", t.elapsed()/10);
    let work = image::imageops::resize(&gray, 400, 300, image::imageops::FilterType::Nearest);
    let t = std::time::Instant::now(); for _ in 0..10 { let _ = imageproc::filter::gaussian_blur_f32(&work, 1.0); } eprintln!("blur {:?}", t.elapsed()/10);
    let mask = imageproc::contrast::threshold(&work, 80, imageproc::contrast::ThresholdType::Binary);
    let t = std::time::Instant::now(); for _ in 0..10 { let _ = imageproc::region_labelling::connected_components(&mask, imageproc::region_labelling::Connectivity::Eight, image::Luma([0u8])); } eprintln!("cc {:?}", t.elapsed()/10);
    let t = std::time::Instant::now(); for _ in 0..10 { let mut m = mask.clone(); imageproc::morphology::open_mut(&mut m, Norm::L2, 2); } eprintln!("open {:?}", t.elapsed()/10);
    let t = std::time::Instant::now(); for _ in 0..10 { let _ = imageproc::distance_transform::euclidean_squared_distance_transform(&mask); } eprintln!("edt {:?}", t.elapsed()/10);
    let t = std::time::Instant::now(); for _ in 0..10 { let _ = imageproc::contours::find_contours::<i32>(&mask); } eprintln!("contours {:?}", t.elapsed()/10);
    let t = std::time::Instant::now(); for _ in 0..10 { let _ = synth::hand_image(3, 1); } eprintln!("synth hand {:?}", t.elapsed()/10);
    let t = std::time::Instant::now(); for _ in 0..10 { let _ = synth::roi_image(3, 1); } eprintln!("synth roi {:?}", t.elapsed()/10);
}
