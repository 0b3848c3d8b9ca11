//! Photo and voice-note ingest: hashes, EXIF, renditions, layout, idempotence, bad input.
//! Uses the shared photo corpus (../shared/fixtures/photos) when present and generated files
//! always.

mod media_support;

use std::path::{Path, PathBuf};

use fenlei_core::CoreError;
use fenlei_core::inspection::MediaKind;
use fenlei_core::media::{MediaFlag, MediaRecord, MediaStore};
use media_support::*;
use sha2::{Digest, Sha256};

fn sha_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn write(dir: &Path, name: &str, bytes: &[u8]) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, bytes).unwrap();
    p
}

fn store() -> (tempfile::TempDir, MediaStore) {
    let dir = tempfile::tempdir().unwrap();
    let store = MediaStore::open(dir.path().join("media")).unwrap();
    (dir, store)
}

fn long_edge(r: &fenlei_core::media::Rendition) -> u32 {
    r.width.max(r.height)
}

#[test]
fn generated_jpeg_with_exif_is_hashed_read_and_rendered() {
    let (dir, store) = store();
    let upright = quadrants(1200, 900);
    let spec = ExifSpec {
        orientation: Some(6),
        date_time_original: Some("2025:03:14 09:26:53".into()),
        offset_time_original: Some("+08:00".into()),
        gps: Some((40.842_6, 111.749_1)),
        altitude_m: Some(1_051.5),
        h_error_m: Some(4.5),
        make: Some("Fenlei Test Camera".into()),
        ..Default::default()
    };
    let bytes = jpeg(&stored_for_orientation(&upright, 6), Some(&spec));
    let src = write(dir.path(), "IMG_0001.JPG", &bytes);

    let rec = store.ingest_photo(&src, None).unwrap();
    assert_eq!(rec.sha256, sha_hex(&bytes));
    assert_eq!(rec.kind, MediaKind::Photo);
    assert_eq!(rec.mime, "image/jpeg");
    assert_eq!(rec.bytes, bytes.len() as u64);
    assert_eq!(
        rec.original_path,
        format!("originals/{}/{}.jpg", &rec.sha256[..2], rec.sha256)
    );
    assert_eq!(
        std::fs::read(store.resolve(&rec.original_path)).unwrap(),
        bytes
    );
    // Upright size: stored 900×1200 shown with orientation 6 as 1200×900.
    assert_eq!((rec.width, rec.height), (Some(1200), Some(900)));
    assert!(!rec.already_stored);
    assert!(rec.flags.is_empty(), "{:?}", rec.flags);

    let exif = rec.exif.as_ref().unwrap();
    assert_eq!(exif.orientation, Some(6));
    assert_eq!(exif.taken_local.as_deref(), Some("2025-03-14T09:26:53"));
    assert_eq!(exif.offset_minutes, Some(480));
    // 2025-03-14T01:26:53Z
    assert_eq!(exif.taken_at_ms(), Some((1_741_915_613_000, false)));
    assert_eq!(exif.make.as_deref(), Some("Fenlei Test Camera"));
    let gps = exif.gps.as_ref().unwrap();
    assert!(
        (gps.location.lat - 40.842_6).abs() < 1e-6,
        "{}",
        gps.location.lat
    );
    assert!(
        (gps.location.lon - 111.749_1).abs() < 1e-6,
        "{}",
        gps.location.lon
    );
    assert_eq!(gps.altitude_m, Some(1_051.5));
    assert_eq!(gps.h_error_m, Some(4.5));

    let thumb = rec.thumbnail.as_ref().unwrap();
    let upload = rec.upload.as_ref().unwrap();
    assert_eq!((thumb.width, thumb.height), (320, 240));
    // Smaller than 1600: the rendition keeps the photo's size.
    assert_eq!((upload.width, upload.height), (1200, 900));
    assert_eq!(
        thumb.path,
        format!("thumbs/{}/{}.jpg", &rec.sha256[..2], rec.sha256)
    );
    assert_eq!(
        upload.path,
        format!("uploads/{}/{}.jpg", &rec.sha256[..2], rec.sha256)
    );
    for r in [thumb, upload] {
        let on_disk = std::fs::read(store.resolve(&r.path)).unwrap();
        assert_eq!(sha_hex(&on_disk), r.sha256);
        assert_eq!(on_disk.len() as u64, r.bytes);
    }
    // Upright: the quadrants are where they are in the upright picture.
    let want = quadrant_colours(&upright);
    let got = quadrant_colours(&decode_jpeg(&store.resolve(&thumb.path)));
    assert_colours_close(&got, &want);
}

fn assert_colours_close(got: &[[u8; 3]; 4], want: &[[u8; 3]; 4]) {
    for (g, w) in got.iter().zip(want) {
        for c in 0..3 {
            assert!(
                (g[c] as i32 - w[c] as i32).abs() <= 24,
                "quadrant colours {got:?} differ from {want:?}"
            );
        }
    }
}

#[test]
fn all_eight_orientations_give_upright_thumbnails() {
    let (dir, store) = store();
    let upright = quadrants(800, 600);
    let want = quadrant_colours(&upright);
    for o in 1..=8u8 {
        let spec = ExifSpec {
            orientation: Some(o as u16),
            ..Default::default()
        };
        let bytes = jpeg(&stored_for_orientation(&upright, o), Some(&spec));
        let src = write(dir.path(), &format!("o{o}.jpg"), &bytes);
        let rec = store.ingest_photo(&src, None).unwrap();
        let thumb = rec.thumbnail.unwrap();
        assert_eq!((thumb.width, thumb.height), (320, 240), "orientation {o}");
        assert_eq!(
            (rec.width, rec.height),
            (Some(800), Some(600)),
            "orientation {o}"
        );
        let got = quadrant_colours(&decode_jpeg(&store.resolve(&thumb.path)));
        assert_colours_close(&got, &want);
    }
}

#[test]
fn ingesting_the_same_file_twice_is_idempotent() {
    let (dir, store) = store();
    let bytes = jpeg(&quadrants(640, 480), None);
    let a = write(dir.path(), "a.jpg", &bytes);
    let b = write(dir.path(), "b-copy.jpg", &bytes);
    let first = store.ingest_photo(&a, None).unwrap();
    let files_after_first = files_under(store.root());
    let second = store.ingest_photo(&b, None).unwrap();
    assert!(second.already_stored);
    assert_eq!(
        MediaRecord {
            already_stored: false,
            ..second
        },
        first
    );
    assert_eq!(files_under(store.root()), files_after_first);
    // original, thumbnail, rendition; no temporary file left.
    assert_eq!(files_after_first.len(), 3, "{files_after_first:?}");
}

#[test]
fn a_lost_rendition_is_made_again() {
    let (dir, store) = store();
    let bytes = jpeg(&quadrants(640, 480), None);
    let src = write(dir.path(), "a.jpg", &bytes);
    let first = store.ingest_photo(&src, None).unwrap();
    let thumb = store.resolve(&first.thumbnail.as_ref().unwrap().path);
    std::fs::remove_file(&thumb).unwrap();
    let again = store.ingest_photo(&src, None).unwrap();
    assert!(thumb.is_file());
    assert_eq!(again.thumbnail, first.thumbnail);
}

#[test]
fn png_is_ingested_without_exif_flagged() {
    let (dir, store) = store();
    let bytes = png(&quadrants(400, 300));
    let src = write(dir.path(), "screenshot", &bytes);
    let rec = store.ingest_photo(&src, None).unwrap();
    assert_eq!(rec.mime, "image/png");
    assert!(rec.original_path.ends_with(".png"));
    assert_eq!(rec.flags, vec![MediaFlag::NoExif]);
    assert_eq!(rec.thumbnail.unwrap().width, 320);
    assert_eq!(rec.upload.unwrap().width, 400);
}

#[test]
fn garbage_exif_values_are_flagged_and_dropped() {
    use exif::{Field, In, Rational, Tag, Value};
    let (dir, store) = store();
    let raw = vec![
        // 95° north: outside the range of latitudes.
        Field {
            tag: Tag::GPSLatitudeRef,
            ifd_num: In::PRIMARY,
            value: Value::Ascii(vec![b"N".to_vec()]),
        },
        Field {
            tag: Tag::GPSLatitude,
            ifd_num: In::PRIMARY,
            value: Value::Rational(vec![
                Rational::from((95, 1)),
                Rational::from((0, 1)),
                Rational::from((0, 1)),
            ]),
        },
        Field {
            tag: Tag::GPSLongitudeRef,
            ifd_num: In::PRIMARY,
            value: Value::Ascii(vec![b"E".to_vec()]),
        },
        Field {
            tag: Tag::GPSLongitude,
            ifd_num: In::PRIMARY,
            value: Value::Rational(vec![
                Rational::from((111, 1)),
                Rational::from((0, 0)),
                Rational::from((0, 1)),
            ]),
        },
        // Zero denominator.
        Field {
            tag: Tag::GPSHPositioningError,
            ifd_num: In::PRIMARY,
            value: Value::Rational(vec![Rational::from((5, 0))]),
        },
        Field {
            tag: Tag::DateTimeOriginal,
            ifd_num: In::PRIMARY,
            value: Value::Ascii(vec![b"2024:13:45 25:61:00".to_vec()]),
        },
        Field {
            tag: Tag::OffsetTimeOriginal,
            ifd_num: In::PRIMARY,
            value: Value::Ascii(vec![b"+99:00".to_vec()]),
        },
        Field {
            tag: Tag::Orientation,
            ifd_num: In::PRIMARY,
            value: Value::Short(vec![9]),
        },
    ];
    let spec = ExifSpec {
        raw,
        ..Default::default()
    };
    let src = write(
        dir.path(),
        "g.jpg",
        &jpeg(&quadrants(320, 240), Some(&spec)),
    );
    let rec = store.ingest_photo(&src, None).unwrap();
    let exif = rec.exif.as_ref().unwrap();
    assert_eq!(exif.gps, None);
    assert_eq!(exif.taken_local, None);
    assert_eq!(exif.offset_minutes, None);
    assert_eq!(exif.orientation, None);
    let fields: Vec<&str> = rec
        .flags
        .iter()
        .filter_map(|f| match f {
            MediaFlag::ExifValueIgnored { field, .. } => Some(field.as_str()),
            _ => None,
        })
        .collect();
    for want in [
        "GPSLongitude",
        "DateTimeOriginal",
        "OffsetTimeOriginal",
        "Orientation",
    ] {
        assert!(fields.contains(&want), "{want} not flagged in {fields:?}");
    }
    // Latitude 95°: out of range, so no position at all; a zero-denominator error radius alone
    // only loses the radius.
    let gps_case = |lat: u32, err: (u32, u32)| ExifSpec {
        raw: vec![
            Field {
                tag: Tag::GPSLatitudeRef,
                ifd_num: In::PRIMARY,
                value: Value::Ascii(vec![b"N".to_vec()]),
            },
            Field {
                tag: Tag::GPSLatitude,
                ifd_num: In::PRIMARY,
                value: Value::Rational(vec![Rational::from((lat, 1))]),
            },
            Field {
                tag: Tag::GPSLongitudeRef,
                ifd_num: In::PRIMARY,
                value: Value::Ascii(vec![b"E".to_vec()]),
            },
            Field {
                tag: Tag::GPSLongitude,
                ifd_num: In::PRIMARY,
                value: Value::Rational(vec![Rational::from((111, 1))]),
            },
            Field {
                tag: Tag::GPSHPositioningError,
                ifd_num: In::PRIMARY,
                value: Value::Rational(vec![Rational::from(err)]),
            },
        ],
        ..Default::default()
    };
    let src = write(
        dir.path(),
        "g2.jpg",
        &jpeg(&quadrants(64, 48), Some(&gps_case(95, (5, 1)))),
    );
    let rec = store.ingest_photo(&src, None).unwrap();
    assert_eq!(rec.exif.unwrap().gps, None);
    assert!(
        rec.flags.contains(&MediaFlag::ExifValueIgnored {
            field: "GPSLatitude/GPSLongitude".into(),
            reason: "outside the range of degrees".into()
        }),
        "{:?}",
        rec.flags
    );
    let src = write(
        dir.path(),
        "g3.jpg",
        &jpeg(&quadrants(64, 48), Some(&gps_case(40, (5, 0)))),
    );
    let rec = store.ingest_photo(&src, None).unwrap();
    let gps = rec.exif.unwrap().gps.unwrap();
    assert_eq!(
        (gps.location.lat, gps.location.lon, gps.h_error_m),
        (40.0, 111.0, None)
    );
    assert!(rec.flags.iter().any(|f| matches!(f, MediaFlag::ExifValueIgnored { field, .. } if field == "GPSHPositioningError")));

    // Absurd years are refused too; a camera's flat-battery date (2000-01-01) is kept.
    for (date, kept) in [
        ("1904:01:01 00:00:00", false),
        ("2000:01:01 00:00:00", true),
        ("2024:02:30 10:00:00", false),
    ] {
        let spec = ExifSpec {
            date_time_original: Some(date.into()),
            ..Default::default()
        };
        let src = write(dir.path(), "d.jpg", &jpeg(&quadrants(64, 48), Some(&spec)));
        let rec = store.ingest_photo(&src, None).unwrap();
        assert_eq!(rec.exif.unwrap().taken_local.is_some(), kept, "{date}");
    }
}

#[test]
fn photo_at_null_island_has_no_gps() {
    let (dir, store) = store();
    let spec = ExifSpec {
        gps: Some((0.0, 0.0)),
        ..Default::default()
    };
    let src = write(dir.path(), "z.jpg", &jpeg(&quadrants(64, 48), Some(&spec)));
    let rec = store.ingest_photo(&src, None).unwrap();
    assert_eq!(rec.exif.unwrap().gps, None);
    assert!(
        rec.flags
            .iter()
            .any(|f| matches!(f, MediaFlag::ExifValueIgnored { .. }))
    );
}

// ---------------------------------------------------------------------------------------------
// Bad input: a typed error, nothing stored.

/// The media folder holds no file at all (only the empty folders `open` made).
fn assert_nothing_stored(store: &MediaStore) {
    let files = files_under(store.root());
    assert!(files.is_empty(), "left behind: {files:?}");
}

fn assert_invalid(result: fenlei_core::Result<MediaRecord>, what: &str) {
    match result {
        Err(CoreError::InvalidMedia { reason }) => assert!(!reason.is_empty()),
        other => panic!("{what}: expected InvalidMedia, got {other:?}"),
    }
}

fn crc32(data: &[u8]) -> u32 {
    let mut crc = 0xFFFF_FFFFu32;
    for &b in data {
        crc ^= b as u32;
        for _ in 0..8 {
            crc = if crc & 1 != 0 {
                (crc >> 1) ^ 0xEDB8_8320
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

/// A PNG whose header claims `w`×`h` (valid signature and CRC) followed by a token IDAT.
fn png_claiming(w: u32, h: u32) -> Vec<u8> {
    let mut out = b"\x89PNG\r\n\x1a\n".to_vec();
    let mut chunk = |kind: &[u8], data: &[u8]| {
        out.extend((data.len() as u32).to_be_bytes());
        let mut body = kind.to_vec();
        body.extend(data);
        out.extend(&body);
        out.extend(crc32(&body).to_be_bytes());
    };
    let mut ihdr = Vec::new();
    ihdr.extend(w.to_be_bytes());
    ihdr.extend(h.to_be_bytes());
    ihdr.extend([8, 2, 0, 0, 0]);
    chunk(b"IHDR", &ihdr);
    chunk(b"IDAT", &[0x78, 0x9C, 0x03, 0x00, 0x00, 0x00, 0x00, 0x01]);
    chunk(b"IEND", &[]);
    out
}

/// A JPEG whose SOF0 says `w`×`h` (the rest of the file from a small real one).
fn jpeg_claiming(w: u16, h: u16) -> Vec<u8> {
    let mut bytes = jpeg(&quadrants(64, 48), None);
    let sof = bytes.windows(2).position(|p| p == [0xFF, 0xC0]).unwrap();
    bytes[sof + 5..sof + 7].copy_from_slice(&h.to_be_bytes());
    bytes[sof + 7..sof + 9].copy_from_slice(&w.to_be_bytes());
    bytes
}

#[test]
fn zero_byte_random_and_non_image_files_are_refused() {
    let (dir, store) = store();
    let mut seed = 0x2545_F491_4F6C_DD1Du64;
    let random: Vec<u8> = (0..10_000)
        .map(|_| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed as u8
        })
        .collect();
    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("empty", vec![]),
        ("random", random.clone()),
        ("text", b"this is not a photo\n".to_vec()),
        (
            "jpeg magic then random",
            [&[0xFF, 0xD8, 0xFF][..], &random].concat(),
        ),
        ("png magic only", b"\x89PNG\r\n\x1a\n".to_vec()),
        ("png 100000x100000", png_claiming(100_000, 100_000)),
        (
            "png 20000x20000 below side limit but over pixels",
            png_claiming(16_000, 16_000),
        ),
        ("jpeg 60000x60000", jpeg_claiming(60_000, 60_000)),
        ("jpeg 0x0", jpeg_claiming(0, 0)),
        ("riff webp header only", b"RIFF\x04\0\0\0WEBP".to_vec()),
    ];
    for (name, bytes) in cases {
        let src = write(dir.path(), "in", &bytes);
        assert_invalid(store.ingest_photo(&src, None), name);
        assert_nothing_stored(&store);
    }
    // A voice note is not a photo, and the other way round.
    let src = write(dir.path(), "v.wav", &wav(8_000, 1, 800));
    assert_invalid(store.ingest_photo(&src, None), "wav as photo");
    let src = write(dir.path(), "p.jpg", &jpeg(&quadrants(64, 48), None));
    assert_invalid(store.ingest_voice_note(&src, None), "jpeg as voice note");
    assert_nothing_stored(&store);
}

#[test]
fn missing_source_is_an_io_error() {
    let (dir, store) = store();
    match store.ingest_photo(&dir.path().join("nope.jpg"), None) {
        Err(CoreError::Io(_)) => {}
        other => panic!("{other:?}"),
    }
}

#[test]
fn truncated_jpegs_are_refused_or_flagged_never_half_written() {
    let (dir, store) = store();
    let spec = ExifSpec {
        orientation: Some(1),
        gps: Some((40.8, 111.7)),
        ..Default::default()
    };
    let good = jpeg(&quadrants(1024, 768), Some(&spec));
    let n = good.len();
    for cut in [1, 2, 3, 10, 100, 200, 600, n / 4, n / 2, n - 100, n - 2] {
        let src = write(dir.path(), "t.jpg", &good[..cut]);
        match store.ingest_photo(&src, None) {
            Err(CoreError::InvalidMedia { .. }) => assert_nothing_stored(&store),
            Ok(rec) => panic!("truncated at {cut}/{n} accepted: {:?}", rec.flags),
            Err(other) => panic!("truncated at {cut}: {other:?}"),
        }
    }
}

#[test]
fn shared_corpus_invalid_files_give_typed_errors_or_flags() {
    let Some(corpus) = corpus() else { return };
    let mut seen = 0;
    for f in files_under(&corpus.join("invalid")) {
        let (_dir, store) = store();
        seen += 1;
        let name = f.file_name().unwrap().to_string_lossy().to_string();
        match store.ingest_photo(&f, None) {
            Err(CoreError::InvalidMedia { reason }) => {
                eprintln!("{name}: refused: {reason}");
                assert_nothing_stored(&store);
            }
            // Pictures whose EXIF is broken beyond reading: kept, and flagged.
            Ok(rec) => {
                eprintln!("{name}: kept with {:?}", rec.flags);
                assert!(
                    rec.flags.contains(&MediaFlag::NoExif)
                        || rec.flags.contains(&MediaFlag::ExifDamaged),
                    "{name}: {:?}",
                    rec.flags
                );
                assert!(rec.thumbnail.is_some());
            }
            Err(other) => panic!("{name}: {other:?}"),
        }
    }
    assert!(seen >= 4, "expected the corpus's broken files");
    // The truncated 3648×2736 camera file is refused (its pixels stop part-way).
    let (_dir, store) = store();
    assert_invalid(
        store.ingest_photo(&corpus.join("invalid/truncated_olympus.jpg"), None),
        "truncated_olympus.jpg",
    );
    assert_nothing_stored(&store);
}

// ---------------------------------------------------------------------------------------------
// The shared corpus: real cameras and phones.

#[test]
fn shared_corpus_gps_photos_match_known_positions() {
    let Some(corpus) = corpus() else { return };
    let (_dir, store) = store();
    // Positions as other EXIF readers report them for these files (decimal degrees, 6 places).
    for (file, lat, lon) in [
        ("DSCN0010.jpg", 43.467448, 11.885127),
        ("DSCN0012.jpg", 43.467157, 11.885395),
        ("DSCN0021.jpg", 43.467082, 11.884538),
    ] {
        let rec = store
            .ingest_photo(&corpus.join("gps").join(file), None)
            .unwrap();
        let exif = rec.exif.unwrap();
        let gps = exif.gps.unwrap();
        assert!(
            (gps.location.lat - lat).abs() < 1e-6,
            "{file}: {}",
            gps.location.lat
        );
        assert!(
            (gps.location.lon - lon).abs() < 1e-6,
            "{file}: {}",
            gps.location.lon
        );
        assert_eq!(gps.datum.as_deref(), Some("WGS-84"));
        assert_eq!(exif.make.as_deref(), Some("NIKON"));
        assert_eq!(exif.model.as_deref(), Some("COOLPIX P6000"));
        assert_eq!(exif.offset_minutes, None);
        assert_eq!((rec.width, rec.height), (Some(640), Some(480)));
    }
    let rec = store
        .ingest_photo(&corpus.join("gps/DSCN0010.jpg"), None)
        .unwrap();
    let exif = rec.exif.unwrap();
    assert_eq!(exif.taken_local.as_deref(), Some("2008-10-22T16:28:39"));
    // The GPS clock: 2008-10-23 14:27:07.24 UTC.
    assert_eq!(exif.gps.unwrap().fix_time_ms, Some(1_224_772_027_240));
}

#[test]
fn shared_corpus_orientations_match_the_upright_thumbnail() {
    let Some(corpus) = corpus() else { return };
    let (_dir, store) = store();
    let reference = store
        .ingest_photo(&corpus.join("orientation/landscape_1.jpg"), None)
        .unwrap();
    let ref_thumb = decode_jpeg(&store.resolve(&reference.thumbnail.unwrap().path));
    for o in 1..=8 {
        let rec = store
            .ingest_photo(&corpus.join(format!("orientation/landscape_{o}.jpg")), None)
            .unwrap();
        assert_eq!(rec.exif.as_ref().unwrap().orientation, Some(o));
        let t = decode_jpeg(&store.resolve(&rec.thumbnail.unwrap().path));
        assert_eq!(t.dimensions(), ref_thumb.dimensions(), "orientation {o}");
        // Each file was compressed on its own and carries its own digit, so pixels differ a
        // little; a wrong rotation or flip differs a lot. The upright reading must be the
        // closest of all eight by a wide margin.
        let diff = |a: &image::RgbImage, b: &image::RgbImage| {
            let (a, b) = (block_means(a, 20), block_means(b, 20));
            a.iter().zip(&b).map(|(x, y)| (x - y).abs()).sum::<f64>() / a.len() as f64
        };
        let upright = diff(&t, &ref_thumb);
        for wrong in 2..=8u8 {
            let mut other = image::DynamicImage::ImageRgb8(ref_thumb.clone());
            other.apply_orientation(image::metadata::Orientation::from_exif(wrong).unwrap());
            let other = other.into_rgb8();
            if other.dimensions() != t.dimensions() {
                continue; // a 90° turn cannot even match the size
            }
            let d = diff(&t, &other);
            assert!(
                upright * 2.0 < d,
                "orientation {o}: upright difference {upright:.1} not well below {d:.1} (transform {wrong})"
            );
        }
    }
}

fn block_means(img: &image::RgbImage, block: u32) -> Vec<f64> {
    let (w, h) = img.dimensions();
    let mut out = Vec::new();
    for by in 0..h / block {
        for bx in 0..w / block {
            for c in 0..3 {
                let mut sum = 0u64;
                for y in by * block..(by + 1) * block {
                    for x in bx * block..(bx + 1) * block {
                        sum += img.get_pixel(x, y)[c] as u64;
                    }
                }
                out.push(sum as f64 / (block * block) as f64);
            }
        }
    }
    out
}

#[test]
fn shared_corpus_phone_photo_renditions() {
    let Some(corpus) = corpus() else { return };
    let (_dir, store) = store();
    let rec = store
        .ingest_photo(&corpus.join("phone/iphone6_gps.jpg"), None)
        .unwrap();
    assert_eq!(rec.exif.as_ref().unwrap().make.as_deref(), Some("Apple"));
    assert!(rec.exif.as_ref().unwrap().gps.is_some());
    let (w, h) = (rec.width.unwrap(), rec.height.unwrap());
    assert_eq!(w.max(h), 3264);
    assert_eq!(long_edge(rec.upload.as_ref().unwrap()), 1600);
    assert_eq!(long_edge(rec.thumbnail.as_ref().unwrap()), 320);
}

#[test]
fn shared_corpus_no_exif_and_no_gps() {
    let Some(corpus) = corpus() else { return };
    let (_dir, store) = store();
    // Its EXIF is what Photoshop wrote: no camera, no capture time, no GPS.
    let rec = store
        .ingest_photo(&corpus.join("camera/no_exif.jpg"), None)
        .unwrap();
    assert!(rec.flags.contains(&MediaFlag::NoExif), "{:?}", rec.flags);
    let exif = rec.exif.unwrap();
    assert_eq!(exif.taken_local, None);
    assert!(exif.software.unwrap().contains("Photoshop"));
    let rec = store
        .ingest_photo(&corpus.join("camera/canon_40d_no_gps.jpg"), None)
        .unwrap();
    let exif = rec.exif.unwrap();
    assert_eq!(exif.make.as_deref(), Some("Canon"));
    assert!(exif.gps.is_none());
    assert!(exif.taken_local.is_some());
}

#[test]
fn heif_is_kept_as_is_with_exif_and_uses_the_platform_preview() {
    let Some(corpus) = corpus() else { return };
    let (dir, store) = store();
    let heif = corpus.join("heic/sample.heif");
    let rec = store.ingest_photo(&heif, None).unwrap();
    assert_eq!(rec.mime, "image/heif");
    assert!(rec.original_path.ends_with(".heic"));
    assert_eq!(
        std::fs::read(store.resolve(&rec.original_path)).unwrap(),
        std::fs::read(&heif).unwrap()
    );
    assert!(rec.flags.contains(&MediaFlag::NoPreview), "{:?}", rec.flags);
    assert!(rec.thumbnail.is_none() && rec.upload.is_none());
    eprintln!("heif exif: {:?}", rec.exif);
    assert!(rec.exif.is_some(), "EXIF of the HEIF container was read");

    // With the platform's preview the renditions are made from it.
    let preview = write(
        dir.path(),
        "preview.jpg",
        &jpeg(&quadrants(1000, 750), None),
    );
    let rec2 = store.ingest_photo(&heif, Some(&preview)).unwrap();
    assert_eq!(rec2.sha256, rec.sha256);
    assert!(!rec2.flags.contains(&MediaFlag::NoPreview));
    assert_eq!(rec2.thumbnail.unwrap().width, 320);
}

#[test]
fn file_paths_from_outside_stay_inside_the_media_folder() {
    let (_dir, store) = store();
    let inside = store.file_path("originals/ab/abcdef.jpg").unwrap();
    assert!(inside.starts_with(store.root()));
    for bad in [
        "../secret",
        "originals/../../etc/passwd",
        "/etc/passwd",
        "",
        "a//b",
        "./x",
        "a\\b",
    ] {
        assert!(
            matches!(store.file_path(bad), Err(CoreError::InvalidArgument(_))),
            "{bad:?} must be refused"
        );
    }
}
