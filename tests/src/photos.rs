//! Real JPEG photos made in the test: noise (so they compress like real photos do not: big),
//! at a given size and quality, plus the shared corpus when it is present.

use std::path::{Path, PathBuf};

/// A `width`×`height` JPEG of pseudo-random texture; `seed` changes every byte.
pub fn noisy_jpeg(width: u16, height: u16, seed: u64, quality: u8) -> Vec<u8> {
    let mut x = seed
        .wrapping_mul(6_364_136_223_846_793_005)
        .wrapping_add(1_442_695_040_888_963_407);
    let mut pixels = Vec::with_capacity(width as usize * height as usize * 3);
    for row in 0..height as u32 {
        for col in 0..width as u32 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let n = (x & 0x3f) as u32;
            // A gradient under the noise, so the picture has shapes as well as grain.
            pixels.push(((row * 255 / height as u32) + n).min(255) as u8);
            pixels.push(((col * 255 / width as u32) + n).min(255) as u8);
            pixels.push((((row + col) % 256) / 2 + n).min(255) as u8);
        }
    }
    let mut out = Vec::new();
    jpeg_encoder::Encoder::new(&mut out, quality)
        .encode(&pixels, width, height, jpeg_encoder::ColorType::Rgb)
        .expect("encode JPEG");
    out
}

/// A generated JPEG with camera EXIF: make "FenleiTest", DateTimeOriginal `taken`
/// ("YYYY:MM:DD HH:MM:SS") with OffsetTimeOriginal `offset` ("+08:00"), and GPS `(lat, lon)` in
/// WGS-84 degrees when given. Written with kamadak-exif's writer.
pub fn jpeg_with_exif(seed: u64, taken: &str, offset: &str, gps: Option<(f64, f64)>) -> Vec<u8> {
    use exif::{Field, In, Rational, Tag, Value};
    let ascii = |tag, s: &str| Field {
        tag,
        ifd_num: In::PRIMARY,
        value: Value::Ascii(vec![s.as_bytes().to_vec()]),
    };
    let dms = |v: f64| {
        let v = v.abs();
        let d = v.trunc();
        let m = ((v - d) * 60.0).trunc();
        let s = ((v - d) * 60.0 - m) * 60.0;
        Value::Rational(vec![
            Rational::from((d as u32, 1)),
            Rational::from((m as u32, 1)),
            Rational::from(((s * 10_000.0).round() as u32, 10_000)),
        ])
    };
    let mut fields = vec![
        ascii(Tag::Make, "FenleiTest"),
        ascii(Tag::DateTimeOriginal, taken),
        ascii(Tag::OffsetTimeOriginal, offset),
    ];
    if let Some((lat, lon)) = gps {
        fields.push(ascii(
            Tag::GPSLatitudeRef,
            if lat < 0.0 { "S" } else { "N" },
        ));
        fields.push(Field {
            tag: Tag::GPSLatitude,
            ifd_num: In::PRIMARY,
            value: dms(lat),
        });
        fields.push(ascii(
            Tag::GPSLongitudeRef,
            if lon < 0.0 { "W" } else { "E" },
        ));
        fields.push(Field {
            tag: Tag::GPSLongitude,
            ifd_num: In::PRIMARY,
            value: dms(lon),
        });
    }
    let mut w = exif::experimental::Writer::new();
    for f in &fields {
        w.push_field(f);
    }
    let mut tiff = std::io::Cursor::new(Vec::new());
    w.write(&mut tiff, false).expect("exif writer");
    let (width, height) = (320u16, 240u16);
    let pixels: Vec<u8> = noisy_jpeg_pixels(width, height, seed);
    let mut app1 = b"Exif\0\0".to_vec();
    app1.extend(tiff.into_inner());
    let mut out = Vec::new();
    let mut enc = jpeg_encoder::Encoder::new(&mut out, 90);
    enc.add_app_segment(1, app1).expect("app1");
    enc.encode(&pixels, width, height, jpeg_encoder::ColorType::Rgb)
        .expect("encode JPEG");
    out
}

fn noisy_jpeg_pixels(width: u16, height: u16, seed: u64) -> Vec<u8> {
    let mut x = seed | 1;
    let mut pixels = Vec::with_capacity(width as usize * height as usize * 3);
    for i in 0..width as u32 * height as u32 * 3 {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        pixels.push(((i % 251) as u8).wrapping_add((x & 0x1f) as u8));
    }
    pixels
}

/// Writes a generated photo into `dir` and returns its path.
pub fn write_photo(dir: &Path, name: &str, width: u16, height: u16, seed: u64) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, noisy_jpeg(width, height, seed, 92)).unwrap();
    path
}

/// The shared photo corpus's JPEGs (`../shared/fixtures/photos`), or none (with a message).
pub fn corpus_jpegs() -> Vec<PathBuf> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/fixtures/photos");
    let mut out = Vec::new();
    for sub in ["phone", "camera", "gps"] {
        if let Ok(entries) = std::fs::read_dir(root.join(sub)) {
            for e in entries.flatten() {
                let p = e.path();
                if p.extension().is_some_and(|x| x.eq_ignore_ascii_case("jpg")) {
                    out.push(p);
                }
            }
        }
    }
    out.sort();
    if out.is_empty() {
        eprintln!("shared photo corpus not found: testing with generated photos only");
    }
    out
}

/// A 16-bit PCM mono WAV voice note of `ms` milliseconds (a tone, so it is not all zeros).
pub fn wav_note(ms: u32) -> Vec<u8> {
    let rate = 16_000u32;
    let frames = rate * ms / 1000;
    let data_len = frames * 2;
    let mut out = Vec::new();
    out.extend(b"RIFF");
    out.extend((36 + data_len).to_le_bytes());
    out.extend(b"WAVE");
    out.extend(b"fmt ");
    out.extend(16u32.to_le_bytes());
    out.extend(1u16.to_le_bytes());
    out.extend(1u16.to_le_bytes());
    out.extend(rate.to_le_bytes());
    out.extend((rate * 2).to_le_bytes());
    out.extend(2u16.to_le_bytes());
    out.extend(16u16.to_le_bytes());
    out.extend(b"data");
    out.extend(data_len.to_le_bytes());
    for i in 0..frames {
        let v = (((i % 40) as i32 - 20) * 500) as i16;
        out.extend(v.to_le_bytes());
    }
    out
}
