//! The child of the kill test (tests/tests/kill.rs, docs/reliability.md): records inspections
//! through the real core `Store`, with photos through the real media ingest, and writes one
//! acknowledgement line on stdout after each call returned, i.e. after its commit. The parent
//! SIGKILLs it at random moments and checks that every acknowledged write survived.
//!
//! Usage: fenlei-e2e-recorder STORE MEDIA_DIR SCRATCH_DIR SEED
//! Lines: `I <inspection>` (created), `A <inspection> <item> <note>` (answer recorded),
//! `P <inspection> <item> <sha256>` (photo attached).

use fenlei_core::answer::{AnswerValue, ItemAnswer};
use fenlei_core::inspection::{EditContext, InspectionKind, NewInspection};
use fenlei_core::media::MediaStore;
use fenlei_core::store::Store;
use std::io::Write;
use std::path::PathBuf;

const BY: &str = "insp.kill";

fn main() {
    let args: Vec<String> = std::env::args().collect();
    assert_eq!(args.len(), 5, "usage: STORE MEDIA_DIR SCRATCH_DIR SEED");
    let store = Store::open(&args[1]).expect("open store");
    let media = MediaStore::open(&args[2]).expect("open media");
    // What a killed ingest left in tmp/ is swept at start, as an app does.
    media.sweep_temp().expect("sweep");
    let scratch = PathBuf::from(&args[3]);
    let mut seed: u64 = args[4].parse().expect("seed");
    let community = fenlei_core::community::parse_csv(fenlei_core::sample::CITY_CSV.as_bytes())
        .expect("sample city")[0]
        .id
        .clone();
    let standard = store
        .standard("hohhot-residential", "2026.1")
        .expect("standard");
    // Items a plain `Compliant` answer fits (rate-band and per-occurrence items need others).
    let items: Vec<String> = standard
        .items()
        .filter(|i| {
            fenlei_core::scoring::validate_answer(
                &standard,
                &ItemAnswer {
                    item_code: i.code.clone(),
                    value: AnswerValue::Compliant,
                    sampled_units: None,
                    note: Some("-".into()),
                },
            )
            .is_ok()
        })
        .map(|i| i.code.clone())
        .collect();
    let ctx = EditContext::by(BY);
    let mut out = std::io::stdout().lock();
    let mut n: u64 = 0;
    loop {
        let id = store
            .create_inspection(
                &NewInspection {
                    community_id: community.clone(),
                    standard_id: "hohhot-residential".into(),
                    standard_version: "2026.1".into(),
                    kind: InspectionKind::DailyPatrol,
                    co_inspectors: vec![],
                },
                BY,
            )
            .expect("create inspection");
        writeln!(out, "I {id}").unwrap();
        out.flush().unwrap();
        for item in &items {
            n += 1;
            let note = format!("s{seed}n{n}");
            let answer = ItemAnswer {
                item_code: item.clone(),
                value: AnswerValue::Compliant,
                sampled_units: None,
                note: Some(note.clone()),
            };
            store.record_answer(&id, &answer, &ctx).expect("record");
            writeln!(out, "A {id} {item} {note}").unwrap();
            out.flush().unwrap();
            if n.is_multiple_of(3) {
                // A new photo every time (distinct bytes), so the ingest writes new files.
                seed = seed
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                let path = scratch.join(format!("photo-{n}.jpg"));
                std::fs::write(&path, photo(seed)).expect("write photo");
                let attached = store
                    .attach_photo(&media, &id, item, &path, None, BY)
                    .expect("attach");
                writeln!(out, "P {id} {item} {}", attached.record.sha256).unwrap();
                out.flush().unwrap();
                let _ = std::fs::remove_file(&path);
            }
        }
    }
}

/// A 640×480 JPEG whose pixels depend on `seed`.
fn photo(seed: u64) -> Vec<u8> {
    let (w, h) = (640u16, 480u16);
    let mut px = Vec::with_capacity(w as usize * h as usize * 3);
    let s = seed.to_le_bytes();
    for y in 0..h as usize {
        for x in 0..w as usize {
            px.push((x as u8).wrapping_add(s[0]));
            px.push((y as u8).wrapping_add(s[1]));
            px.push(((x ^ y) as u8).wrapping_add(s[2]));
        }
    }
    let mut bytes = Vec::new();
    jpeg_encoder::Encoder::new(&mut bytes, 85)
        .encode(&px, w, h, jpeg_encoder::ColorType::Rgb)
        .expect("encode");
    bytes
}
