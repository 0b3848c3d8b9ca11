//! Voice notes (durations from WAV, m4a and Ogg Opus headers built here byte by byte), batches
//! with progress and cancellation, and the sweep of leftover temporary files.

mod media_support;

use std::path::{Path, PathBuf};
use std::sync::Mutex;

use fenlei_core::CoreError;
use fenlei_core::inspection::MediaKind;
use fenlei_core::media::{IngestRequest, MediaFlag, MediaStore};
use fenlei_core::progress::{CancelToken, NoProgress, Progress};
use media_support::*;

fn store() -> (tempfile::TempDir, MediaStore) {
    let dir = tempfile::tempdir().unwrap();
    let store = MediaStore::open(dir.path().join("media")).unwrap();
    (dir, store)
}

fn write(dir: &Path, name: &str, bytes: &[u8]) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, bytes).unwrap();
    p
}

#[test]
fn wav_duration_and_transcript() {
    let (dir, store) = store();
    // 1.5 s of 16 kHz mono.
    let src = write(dir.path(), "note.wav", &wav(16_000, 1, 24_000));
    let rec = store
        .ingest_voice_note(&src, Some("  垃圾桶满溢，未及时清运  ".into()))
        .unwrap();
    assert_eq!(rec.kind, MediaKind::VoiceNote);
    assert_eq!(rec.mime, "audio/wav");
    assert_eq!(rec.duration_ms, Some(1_500));
    assert_eq!(rec.transcript.as_deref(), Some("垃圾桶满溢，未及时清运"));
    assert!(
        rec.original_path
            .starts_with(&format!("originals/{}/", &rec.sha256[..2]))
    );
    assert!(rec.original_path.ends_with(".wav"));
    assert!(rec.thumbnail.is_none() && rec.exif.is_none());
    assert_eq!(
        std::fs::read(store.resolve(&rec.original_path)).unwrap(),
        std::fs::read(&src).unwrap()
    );
    // 44.1 kHz stereo, 2 s.
    let src = write(dir.path(), "st.wav", &wav(44_100, 2, 88_200));
    assert_eq!(
        store.ingest_voice_note(&src, None).unwrap().duration_ms,
        Some(2_000)
    );
}

#[test]
fn wav_with_unset_data_size_uses_the_file_length() {
    let (dir, store) = store();
    let mut bytes = wav(8_000, 1, 4_000); // 0.5 s
    let data = bytes.windows(4).position(|w| w == b"data").unwrap();
    bytes[data + 4..data + 8].copy_from_slice(&0xFFFF_FFFFu32.to_le_bytes());
    let src = write(dir.path(), "stream.wav", &bytes);
    assert_eq!(
        store.ingest_voice_note(&src, None).unwrap().duration_ms,
        Some(500)
    );
}

#[test]
fn m4a_duration_from_mvhd_in_every_layout() {
    let (dir, store) = store();
    for (timescale, duration, v1, moov_last, want) in [
        (44_100, 44_100 * 12 + 22_050, false, false, 12_500),
        (1_000, 61_234, false, true, 61_234),
        (48_000, 48_000 * 3_600, true, false, 3_600_000),
        (600, 1_800, true, true, 3_000),
    ] {
        let src = write(
            dir.path(),
            "n.m4a",
            &m4a(timescale, duration, v1, moov_last),
        );
        let rec = store.ingest_voice_note(&src, None).unwrap();
        assert_eq!(rec.mime, "audio/mp4");
        assert_eq!(
            rec.duration_ms,
            Some(want),
            "timescale {timescale} v1 {v1} moov_last {moov_last}"
        );
    }
    // "Unknown" duration (all ones): kept and flagged.
    let src = write(
        dir.path(),
        "u.m4a",
        &m4a(1_000, u32::MAX as u64, false, false),
    );
    let rec = store.ingest_voice_note(&src, None).unwrap();
    assert_eq!(rec.duration_ms, None);
    assert_eq!(rec.flags, vec![MediaFlag::DurationUnknown]);
}

#[test]
fn ogg_opus_duration_from_the_last_page() {
    let (dir, store) = store();
    // 3.25 s at 48 kHz after a 312-sample pre-skip.
    let src = write(dir.path(), "n.opus", &ogg_opus(312, 312 + 156_000));
    let rec = store.ingest_voice_note(&src, None).unwrap();
    assert_eq!(rec.mime, "audio/ogg");
    assert_eq!(rec.duration_ms, Some(3_250));
    // A damaged last page (bad checksum) is skipped: the page before it counts.
    let mut bytes = ogg_opus(0, 96_000);
    let last = bytes.len() - 10;
    bytes[last] ^= 0xFF;
    let src = write(dir.path(), "d.opus", &bytes);
    assert_eq!(
        store.ingest_voice_note(&src, None).unwrap().duration_ms,
        Some(1_000)
    );
}

#[test]
fn damaged_audio_is_refused_and_leaves_nothing() {
    let (dir, store) = store();
    let good_wav = wav(16_000, 1, 1_000);
    let mut no_fmt = good_wav.clone();
    let f = no_fmt.windows(4).position(|w| w == b"fmt ").unwrap();
    no_fmt[f..f + 4].copy_from_slice(b"junk");
    let mut zero_rate = good_wav.clone();
    zero_rate[24..28].copy_from_slice(&0u32.to_le_bytes());
    let mut huge_box = m4a(1_000, 5_000, false, false);
    let moov = huge_box.windows(4).position(|w| w == b"moov").unwrap();
    huge_box[moov - 4..moov].copy_from_slice(&0x7FFF_FFF0u32.to_be_bytes());
    let mut no_moov = m4a(1_000, 5_000, false, false);
    let moov = no_moov.windows(4).position(|w| w == b"moov").unwrap();
    no_moov[moov..moov + 4].copy_from_slice(b"skip");
    let mut vorbis = ogg_opus(0, 48_000);
    let head = vorbis.windows(8).position(|w| w == b"OpusHead").unwrap();
    vorbis[head..head + 8].copy_from_slice(b"\x01vorbisX");
    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("empty", vec![]),
        ("wav header cut", good_wav[..20].to_vec()),
        ("wav without fmt", no_fmt),
        ("wav zero rate", zero_rate),
        ("mp4 box past the end", huge_box),
        ("mp4 without moov", no_moov),
        (
            "mp4 cut in mvhd",
            m4a(1_000, 5_000, false, true)[..3_080].to_vec(),
        ),
        ("ogg not opus", vorbis),
        ("ogg first page cut", ogg_opus(0, 48_000)[..40].to_vec()),
    ];
    for (name, bytes) in cases {
        let src = write(dir.path(), "bad", &bytes);
        match store.ingest_voice_note(&src, None) {
            Err(CoreError::InvalidMedia { .. }) => {}
            other => panic!("{name}: expected InvalidMedia, got {other:?}"),
        }
        let left = files_under(store.root());
        assert!(left.is_empty(), "{name}: left {left:?}");
    }
}

struct Recorder(Mutex<Vec<(u64, u64)>>, Option<(u64, CancelToken)>);

impl Progress for Recorder {
    fn on_progress(&self, done: u64, total: u64) {
        self.0.lock().unwrap().push((done, total));
        if let Some((at, token)) = &self.1
            && done == *at
        {
            token.cancel();
        }
    }
}

fn batch(dir: &Path) -> Vec<IngestRequest> {
    let photo = |name: &str, w: u32| IngestRequest {
        path: write(dir, name, &jpeg(&quadrants(w, 100), None))
            .to_string_lossy()
            .into(),
        kind: MediaKind::Photo,
        preview_path: None,
        transcript: None,
    };
    vec![
        photo("a.jpg", 200),
        IngestRequest {
            path: write(dir, "broken.jpg", b"\xFF\xD8\xFFnot really")
                .to_string_lossy()
                .into(),
            kind: MediaKind::Photo,
            preview_path: None,
            transcript: None,
        },
        IngestRequest {
            path: write(dir, "v.wav", &wav(8_000, 1, 8_000))
                .to_string_lossy()
                .into(),
            kind: MediaKind::VoiceNote,
            preview_path: None,
            transcript: Some("桶边有散落垃圾".into()),
        },
        photo("b.jpg", 300),
    ]
}

#[test]
fn batch_reports_progress_and_keeps_going_past_a_bad_file() {
    let (dir, store) = store();
    let items = batch(dir.path());
    let progress = Recorder(Mutex::new(Vec::new()), None);
    let out = store
        .ingest_batch(&items, &progress, &CancelToken::new())
        .unwrap();
    assert_eq!(out.len(), 4);
    assert!(out[0].record.is_some() && out[0].error.is_none());
    assert!(out[1].record.is_none());
    assert!(
        out[1]
            .error
            .as_deref()
            .unwrap()
            .starts_with("invalid media")
    );
    assert_eq!(out[2].record.as_ref().unwrap().duration_ms, Some(1_000));
    assert_eq!(
        out[3]
            .record
            .as_ref()
            .unwrap()
            .upload
            .as_ref()
            .unwrap()
            .width,
        300
    );
    assert_eq!(
        *progress.0.lock().unwrap(),
        vec![(0, 4), (1, 4), (2, 4), (3, 4), (4, 4)]
    );
}

#[test]
fn batch_cancel_stops_between_files_and_keeps_what_was_done() {
    let (dir, store) = store();
    let items = batch(dir.path());
    let token = CancelToken::new();
    let progress = Recorder(Mutex::new(Vec::new()), Some((1, token.clone())));
    match store.ingest_batch(&items, &progress, &token) {
        Err(CoreError::Cancelled) => {}
        other => panic!("{other:?}"),
    }
    assert_eq!(*progress.0.lock().unwrap(), vec![(0, 4), (1, 4)]);
    // The first photo is stored whole (original, thumbnail, rendition); nothing else.
    assert_eq!(files_under(store.root()).len(), 3);
    // Already cancelled: nothing at all is done.
    let (_d2, store2) = self::store();
    assert!(matches!(
        store2.ingest_batch(&items, &NoProgress, &token),
        Err(CoreError::Cancelled)
    ));
    assert!(files_under(store2.root()).is_empty());
}

#[test]
fn sweep_removes_leftover_temporary_files_only() {
    let (dir, store) = store();
    let src = write(dir.path(), "a.jpg", &jpeg(&quadrants(200, 100), None));
    let rec = store.ingest_photo(&src, None).unwrap();
    // What a crash mid-write leaves: temporary files in tmp/ and in a shard folder.
    std::fs::write(store.root().join("tmp/.tmp-123-abc-0"), b"partial").unwrap();
    let shard = store
        .resolve(&rec.original_path)
        .parent()
        .unwrap()
        .to_path_buf();
    std::fs::write(shard.join(".tmp-9-def-1"), b"partial").unwrap();
    assert_eq!(store.sweep_temp().unwrap(), 2);
    let left = files_under(store.root());
    assert_eq!(left.len(), 3, "{left:?}");
    assert!(store.resolve(&rec.original_path).is_file());
}

#[test]
fn options_are_checked() {
    let dir = tempfile::tempdir().unwrap();
    let o = fenlei_core::media::IngestOptions {
        thumb_edge: 0,
        ..Default::default()
    };
    assert!(matches!(
        MediaStore::with_options(dir.path(), o),
        Err(CoreError::InvalidArgument(_))
    ));
}
