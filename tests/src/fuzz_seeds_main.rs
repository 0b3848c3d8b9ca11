//! Writes the fuzz seed corpora (fuzz/corpus/<target>/) from real files the project makes:
//! the sample standards and city list, automerge documents recorded through the real store,
//! the sync messages and request bodies a real device sends for them, and generated photos.
//! Usage: fenlei-e2e-fuzz-seeds OUT_DIR   (scripts/fuzz.sh seeds)

use automerge::sync::{State, SyncDoc};
use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use fenlei_core::answer::{AnswerValue, ItemAnswer};
use fenlei_core::geo::LatLon;
use fenlei_core::inspection::{
    EditContext, EvidenceRef, GpsFix, InspectionKind, InspectionStatus, MediaKind, NewInspection,
};
use fenlei_core::protocol::{DocMessage, PROTOCOL_VERSION, SyncRequest};
use fenlei_core::store::Store;
use std::path::Path;

fn put(out: &Path, target: &str, name: &str, bytes: &[u8]) {
    let dir = out.join(target);
    std::fs::create_dir_all(&dir).expect("corpus dir");
    std::fs::write(dir.join(name), bytes).expect("seed");
}

fn jpeg(w: u16, h: u16, seed: u8, exif: bool) -> Vec<u8> {
    let px: Vec<u8> = (0..w as usize * h as usize * 3)
        .map(|i| (i as u8).wrapping_mul(seed))
        .collect();
    let mut out = Vec::new();
    let mut enc = jpeg_encoder::Encoder::new(&mut out, 80);
    if exif {
        // A minimal little-endian TIFF block with one Orientation entry.
        let mut app1 =
            b"Exif\0\0II*\0\x08\0\0\0\x01\0\x12\x01\x03\0\x01\0\0\0\x06\0\0\0\0\0\0\0".to_vec();
        app1.truncate(6 + 8 + 2 + 12 + 4);
        enc.add_app_segment(1, app1).expect("app1");
    }
    enc.encode(&px, w, h, jpeg_encoder::ColorType::Rgb)
        .expect("encode");
    out
}

fn wav(samples: u32) -> Vec<u8> {
    let data_len = samples * 2;
    let mut v = Vec::new();
    v.extend_from_slice(b"RIFF");
    v.extend_from_slice(&(36 + data_len).to_le_bytes());
    v.extend_from_slice(b"WAVEfmt ");
    v.extend_from_slice(&16u32.to_le_bytes());
    v.extend_from_slice(&1u16.to_le_bytes()); // PCM
    v.extend_from_slice(&1u16.to_le_bytes()); // mono
    v.extend_from_slice(&8000u32.to_le_bytes());
    v.extend_from_slice(&16000u32.to_le_bytes());
    v.extend_from_slice(&2u16.to_le_bytes());
    v.extend_from_slice(&16u16.to_le_bytes());
    v.extend_from_slice(b"data");
    v.extend_from_slice(&data_len.to_le_bytes());
    v.extend((0..data_len).map(|i| (i % 251) as u8));
    v
}

fn main() {
    let out = std::env::args()
        .nth(1)
        .expect("usage: fenlei-e2e-fuzz-seeds OUT_DIR");
    let out = Path::new(&out);
    let data = Path::new(env!("CARGO_MANIFEST_DIR")).join("../data");

    for (name, text) in [
        ("standard-2026.1.toml", fenlei_core::sample::STANDARD_TOML),
        (
            "standard-2026.2.toml",
            fenlei_core::sample::STANDARD_NEXT_TOML,
        ),
    ] {
        put(out, "standard_parse", name, text.as_bytes());
    }
    let csv = std::fs::read(data.join("cities/sample-city.csv")).expect("sample city");
    put(out, "csv_import", "sample-city.csv", &csv);
    // The header and three rows, with and without the BOM: small seeds mutate faster.
    let head: Vec<u8> = csv
        .split(|b| *b == b'\n')
        .take(4)
        .collect::<Vec<_>>()
        .join(&b'\n');
    put(out, "csv_import", "head-bom.csv", &head);
    put(
        out,
        "csv_import",
        "head.csv",
        head.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(&head),
    );

    for (name, bytes) in [
        ("plain-64x48.jpg", jpeg(64, 48, 7, false)),
        ("exif-orientation-32x24.jpg", jpeg(32, 24, 3, true)),
        ("tiny-8x8.jpg", jpeg(8, 8, 1, false)),
        ("voice-200.wav", wav(200)),
    ] {
        put(out, "photo_ingest", name, &bytes);
    }

    // Real documents: recorded through the store, as a phone does.
    let dir = tempfile::tempdir().expect("temp dir");
    let store = Store::open(dir.path().join("seed.sqlite")).expect("store");
    store
        .import_communities_csv(fenlei_core::sample::CITY_CSV.as_bytes())
        .expect("city");
    store
        .import_standard(fenlei_core::sample::STANDARD_TOML)
        .expect("standard");
    let community = fenlei_core::community::parse_csv(fenlei_core::sample::CITY_CSV.as_bytes())
        .expect("city")[0]
        .id
        .clone();
    let standard = store
        .standard("hohhot-residential", "2026.1")
        .expect("standard");
    let ctx = EditContext::by("insp.seed");
    let id = store
        .create_inspection(
            &NewInspection {
                community_id: community,
                standard_id: "hohhot-residential".into(),
                standard_version: "2026.1".into(),
                kind: InspectionKind::DailyPatrol,
                co_inspectors: vec!["insp.two".into()],
            },
            "insp.seed",
        )
        .expect("inspection");
    let mut doc = store.load_document(&id).expect("load").expect("held");
    put(out, "document_load", "created.automerge", &doc.save());
    let mut state = State::new();
    let first = doc
        .automerge()
        .sync()
        .generate_sync_message(&mut state)
        .expect("message")
        .encode();
    put(out, "sync_message", "first-round.bin", &first);
    store
        .add_gps_fix(
            &id,
            &GpsFix {
                location: LatLon {
                    lat: 40.8356,
                    lon: 111.7319,
                },
                accuracy_m: Some(8.0),
                altitude_m: Some(1050.0),
                provider: "fused".into(),
                at_ms: store.now_ms(),
                is_mock: false,
            },
            "insp.seed",
        )
        .expect("gps");
    for item in standard.items().take(6) {
        let answer = ItemAnswer {
            item_code: item.code.clone(),
            value: AnswerValue::Compliant,
            sampled_units: None,
            note: Some("现场检查".into()),
        };
        let _ = store.record_answer(&id, &answer, &ctx);
    }
    let item = standard.items().next().expect("item").code.clone();
    store
        .add_evidence(
            &id,
            &EvidenceRef {
                sha256: "ab".repeat(32),
                item_code: item,
                media: MediaKind::Photo,
                added_by: "insp.seed".into(),
                at_ms: store.now_ms(),
                thumb: None,
                upload: None,
                device_id: String::new(),
            },
        )
        .expect("evidence");
    store
        .set_status(&id, InspectionStatus::Submitted, &ctx, None)
        .expect("submit");
    let mut doc = store.load_document(&id).expect("load").expect("held");
    let full = doc.save();
    put(out, "document_load", "submitted.automerge", &full);
    let mut state = State::new();
    let mut messages = Vec::new();
    // A whole push: the first message, then the one that carries the changes after the
    // peer's "need everything" answer (simulated with an empty peer).
    let mut peer = automerge::AutoCommit::new();
    let mut peer_state = State::new();
    for _ in 0..4 {
        let Some(m) = doc.automerge().sync().generate_sync_message(&mut state) else {
            break;
        };
        let bytes = m.encode();
        peer.sync()
            .receive_sync_message(
                &mut peer_state,
                automerge::sync::Message::decode(&bytes).expect("decode"),
            )
            .expect("peer");
        messages.push(bytes);
        if let Some(reply) = peer.sync().generate_sync_message(&mut peer_state) {
            doc.automerge()
                .sync()
                .receive_sync_message(&mut state, reply)
                .expect("reply");
        }
    }
    for (n, m) in messages.iter().enumerate() {
        put(out, "sync_message", &format!("push-{n}.bin"), m);
    }
    let request = |docs: Vec<DocMessage>, feed: bool, reference: bool| {
        serde_json::to_vec(&SyncRequest {
            protocol: PROTOCOL_VERSION,
            cursor: String::new(),
            feed,
            reference,
            ref_cursor: 0,
            docs,
        })
        .expect("json")
    };
    put(
        out,
        "sync_request",
        "empty.json",
        &request(vec![], true, true),
    );
    let docs: Vec<DocMessage> = messages
        .iter()
        .map(|m| DocMessage {
            id: id.clone(),
            message: B64.encode(m),
        })
        .collect();
    put(
        out,
        "sync_request",
        "push.json",
        &request(docs, true, false),
    );
    put(
        out,
        "sync_request",
        "cursor.json",
        br#"{"protocol":1,"cursor":"0:12","feed":true,"reference":true,"ref_cursor":5}"#,
    );
    println!("seed corpora written to {}", out.display());
}
