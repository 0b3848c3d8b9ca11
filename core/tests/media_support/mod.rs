//! Shared helpers of the media tests: where the shared photo corpus is, and photos made here
//! (JPEG with EXIF written by kamadak-exif's writer) for when it is absent.
#![allow(dead_code)]

use std::io::Cursor;
use std::path::{Path, PathBuf};

use exif::experimental::Writer;
use exif::{Field, In, Rational, Tag, Value};
use image::{DynamicImage, RgbImage, metadata::Orientation};

/// `../shared/fixtures/photos` beside the repository, when this checkout has it.
pub fn corpus() -> Option<PathBuf> {
    let p = Path::new(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../shared/fixtures/photos"
    ));
    if p.join("README.md").is_file() {
        Some(p.to_path_buf())
    } else {
        eprintln!(
            "shared photo corpus not found at {}: skipped its cases",
            p.display()
        );
        None
    }
}

/// An upright test picture whose quadrants have distinct colours, so every rotation and flip
/// is visible: top-left red, top-right green, bottom-left blue, bottom-right white.
pub fn quadrants(w: u32, h: u32) -> RgbImage {
    RgbImage::from_fn(w, h, |x, y| {
        let right = x >= w / 2;
        let bottom = y >= h / 2;
        image::Rgb(match (right, bottom) {
            (false, false) => [220, 30, 30],
            (true, false) => [30, 200, 30],
            (false, true) => [30, 30, 220],
            (true, true) => [240, 240, 240],
        })
    })
}

/// The four quadrant colours of an image (mean of a central patch of each quadrant).
pub fn quadrant_colours(img: &RgbImage) -> [[u8; 3]; 4] {
    let (w, h) = img.dimensions();
    let mut out = [[0u8; 3]; 4];
    for (i, (qx, qy)) in [(0, 0), (1, 0), (0, 1), (1, 1)].into_iter().enumerate() {
        let (cx, cy) = (w / 4 + qx * w / 2, h / 4 + qy * h / 2);
        let mut sum = [0u64; 3];
        let mut n = 0u64;
        for y in cy.saturating_sub(h / 10)..(cy + h / 10).min(h) {
            for x in cx.saturating_sub(w / 10)..(cx + w / 10).min(w) {
                let p = img.get_pixel(x, y);
                for c in 0..3 {
                    sum[c] += p[c] as u64;
                }
                n += 1;
            }
        }
        for c in 0..3 {
            out[i][c] = (sum[c] / n.max(1)) as u8;
        }
    }
    out
}

/// How a camera stores a picture it shows upright with EXIF orientation `o`: the inverse transform.
pub fn stored_for_orientation(upright: &RgbImage, o: u8) -> RgbImage {
    let inverse = match o {
        6 => 8,
        8 => 6,
        other => other,
    };
    let mut img = DynamicImage::ImageRgb8(upright.clone());
    img.apply_orientation(Orientation::from_exif(inverse).unwrap());
    img.into_rgb8()
}

/// EXIF to put in a generated JPEG.
#[derive(Default, Clone)]
pub struct ExifSpec {
    pub orientation: Option<u16>,
    /// "YYYY:MM:DD HH:MM:SS"
    pub date_time_original: Option<String>,
    /// "+08:00"
    pub offset_time_original: Option<String>,
    /// (lat, lon) in signed degrees.
    pub gps: Option<(f64, f64)>,
    pub altitude_m: Option<f64>,
    pub h_error_m: Option<f64>,
    pub make: Option<String>,
    /// Raw fields to add as they are (garbage tests).
    pub raw: Vec<Field>,
}

fn dms(v: f64) -> Vec<Rational> {
    let v = v.abs();
    let d = v.trunc();
    let m = ((v - d) * 60.0).trunc();
    let s = ((v - d) * 60.0 - m) * 60.0;
    vec![
        Rational::from((d as u32, 1)),
        Rational::from((m as u32, 1)),
        Rational::from(((s * 10_000.0).round() as u32, 10_000)),
    ]
}

fn ascii(tag: Tag, ifd: In, s: &str) -> Field {
    Field {
        tag,
        ifd_num: ifd,
        value: Value::Ascii(vec![s.as_bytes().to_vec()]),
    }
}

/// The TIFF bytes of an EXIF block.
pub fn exif_block(spec: &ExifSpec) -> Vec<u8> {
    let mut fields: Vec<Field> = Vec::new();
    if let Some(o) = spec.orientation {
        fields.push(Field {
            tag: Tag::Orientation,
            ifd_num: In::PRIMARY,
            value: Value::Short(vec![o]),
        });
    }
    if let Some(m) = &spec.make {
        fields.push(ascii(Tag::Make, In::PRIMARY, m));
    }
    if let Some(d) = &spec.date_time_original {
        fields.push(ascii(Tag::DateTimeOriginal, In::PRIMARY, d));
    }
    if let Some(o) = &spec.offset_time_original {
        fields.push(ascii(Tag::OffsetTimeOriginal, In::PRIMARY, o));
    }
    if let Some((lat, lon)) = spec.gps {
        fields.push(ascii(
            Tag::GPSLatitudeRef,
            In::PRIMARY,
            if lat < 0.0 { "S" } else { "N" },
        ));
        fields.push(Field {
            tag: Tag::GPSLatitude,
            ifd_num: In::PRIMARY,
            value: Value::Rational(dms(lat)),
        });
        fields.push(ascii(
            Tag::GPSLongitudeRef,
            In::PRIMARY,
            if lon < 0.0 { "W" } else { "E" },
        ));
        fields.push(Field {
            tag: Tag::GPSLongitude,
            ifd_num: In::PRIMARY,
            value: Value::Rational(dms(lon)),
        });
    }
    if let Some(a) = spec.altitude_m {
        fields.push(Field {
            tag: Tag::GPSAltitude,
            ifd_num: In::PRIMARY,
            value: Value::Rational(vec![Rational::from(((a.abs() * 100.0) as u32, 100))]),
        });
        fields.push(Field {
            tag: Tag::GPSAltitudeRef,
            ifd_num: In::PRIMARY,
            value: Value::Byte(vec![u8::from(a < 0.0)]),
        });
    }
    if let Some(e) = spec.h_error_m {
        fields.push(Field {
            tag: Tag::GPSHPositioningError,
            ifd_num: In::PRIMARY,
            value: Value::Rational(vec![Rational::from(((e * 10.0) as u32, 10))]),
        });
    }
    fields.extend(spec.raw.iter().cloned());
    let mut w = Writer::new();
    for f in &fields {
        w.push_field(f);
    }
    let mut buf = Cursor::new(Vec::new());
    w.write(&mut buf, false).expect("exif writer");
    buf.into_inner()
}

/// A baseline JPEG of `img` with the given EXIF (none when `spec` is `None`).
pub fn jpeg(img: &RgbImage, spec: Option<&ExifSpec>) -> Vec<u8> {
    let mut out = Vec::new();
    let mut enc = jpeg_encoder::Encoder::new(&mut out, 90);
    if let Some(spec) = spec {
        let mut app1 = b"Exif\0\0".to_vec();
        app1.extend(exif_block(spec));
        enc.add_app_segment(1, app1).expect("app1");
    }
    enc.encode(
        img.as_raw(),
        img.width() as u16,
        img.height() as u16,
        jpeg_encoder::ColorType::Rgb,
    )
    .expect("encode");
    out
}

/// A PNG of `img`.
pub fn png(img: &RgbImage) -> Vec<u8> {
    let mut out = Cursor::new(Vec::new());
    DynamicImage::ImageRgb8(img.clone())
        .write_to(&mut out, image::ImageFormat::Png)
        .expect("png");
    out.into_inner()
}

/// Decodes a JPEG we produced (thumbnail, rendition) for inspection.
pub fn decode_jpeg(path: &Path) -> RgbImage {
    let mut d =
        jpeg_decoder::Decoder::new(std::io::BufReader::new(std::fs::File::open(path).unwrap()));
    let px = d.decode().unwrap();
    let info = d.info().unwrap();
    let rgb = match info.pixel_format {
        jpeg_decoder::PixelFormat::RGB24 => px,
        jpeg_decoder::PixelFormat::L8 => px.iter().flat_map(|&v| [v, v, v]).collect(),
        other => panic!("unexpected {other:?}"),
    };
    RgbImage::from_raw(info.width as u32, info.height as u32, rgb).unwrap()
}

/// Every regular file under `dir`, recursively.
pub fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        if let Ok(rd) = std::fs::read_dir(&d) {
            for e in rd.flatten() {
                let p = e.path();
                if p.is_dir() {
                    stack.push(p);
                } else {
                    out.push(p);
                }
            }
        }
    }
    out.sort();
    out
}

// ---------------------------------------------------------------------------------------------
// Voice notes, built byte by byte from the container specifications.

/// A 16-bit PCM WAV with `frames` frames of silence.
pub fn wav(rate: u32, channels: u16, frames: u32) -> Vec<u8> {
    let align = channels as u32 * 2;
    let data_len = frames * align;
    let mut out = Vec::new();
    out.extend(b"RIFF");
    out.extend((36 + data_len).to_le_bytes());
    out.extend(b"WAVE");
    out.extend(b"fmt ");
    out.extend(16u32.to_le_bytes());
    out.extend(1u16.to_le_bytes()); // PCM
    out.extend(channels.to_le_bytes());
    out.extend(rate.to_le_bytes());
    out.extend((rate * align).to_le_bytes());
    out.extend((align as u16).to_le_bytes());
    out.extend(16u16.to_le_bytes());
    // An extra chunk before the data, as Android and iOS recorders add (LIST/INFO, FLLR).
    out.extend(b"LIST");
    out.extend(5u32.to_le_bytes());
    out.extend(b"INFOx\0"); // odd size + pad byte
    out.extend(b"data");
    out.extend(data_len.to_le_bytes());
    out.extend(std::iter::repeat_n(0u8, data_len as usize));
    out
}

fn mp4_box(kind: &[u8; 4], body: &[u8]) -> Vec<u8> {
    let mut out = ((body.len() + 8) as u32).to_be_bytes().to_vec();
    out.extend(kind);
    out.extend(body);
    out
}

/// A minimal m4a: `ftyp`, `moov` with `mvhd` (version 0 or 1) and `mdat` (before or after moov).
pub fn m4a(timescale: u32, duration: u64, version1: bool, moov_last: bool) -> Vec<u8> {
    let mut ftyp = b"M4A ".to_vec();
    ftyp.extend(0u32.to_be_bytes());
    ftyp.extend(b"M4A mp42isom");
    let mut mvhd = vec![u8::from(version1), 0, 0, 0];
    if version1 {
        mvhd.extend([0u8; 16]);
        mvhd.extend(timescale.to_be_bytes());
        mvhd.extend(duration.to_be_bytes());
    } else {
        mvhd.extend([0u8; 8]);
        mvhd.extend(timescale.to_be_bytes());
        mvhd.extend((duration as u32).to_be_bytes());
    }
    mvhd.extend([0u8; 80]); // rate, volume, matrix, next track id...
    let moov = mp4_box(
        b"moov",
        &[mp4_box(b"free", &[0; 4]), mp4_box(b"mvhd", &mvhd)].concat(),
    );
    let mdat = mp4_box(b"mdat", &[0x21u8; 3000]);
    let mut out = mp4_box(b"ftyp", &ftyp);
    if moov_last {
        out.extend(mdat);
        out.extend(moov);
    } else {
        out.extend(moov);
        out.extend(mdat);
    }
    out
}

fn ogg_crc(data: &[u8]) -> u32 {
    let mut crc = 0u32;
    for &b in data {
        crc ^= (b as u32) << 24;
        for _ in 0..8 {
            crc = if crc & 0x8000_0000 != 0 {
                (crc << 1) ^ 0x04C1_1DB7
            } else {
                crc << 1
            };
        }
    }
    crc
}

fn ogg_page(flags: u8, granule: i64, serial: u32, seq: u32, packet: &[u8]) -> Vec<u8> {
    assert!(packet.len() < 255 * 255);
    let mut lacing = vec![255u8; packet.len() / 255];
    lacing.push((packet.len() % 255) as u8);
    let mut p = b"OggS".to_vec();
    p.push(0);
    p.push(flags);
    p.extend(granule.to_le_bytes());
    p.extend(serial.to_le_bytes());
    p.extend(seq.to_le_bytes());
    p.extend([0u8; 4]);
    p.push(lacing.len() as u8);
    p.extend(lacing);
    p.extend(packet);
    let crc = ogg_crc(&p);
    p[22..26].copy_from_slice(&crc.to_le_bytes());
    p
}

/// An Ogg Opus stream: OpusHead, OpusTags, audio pages, the last one at `final_granule`.
pub fn ogg_opus(pre_skip: u16, final_granule: i64) -> Vec<u8> {
    let serial = 0x1234_5678;
    let mut head = b"OpusHead".to_vec();
    head.push(1);
    head.push(1); // mono
    head.extend(pre_skip.to_le_bytes());
    head.extend(48_000u32.to_le_bytes());
    head.extend(0u16.to_le_bytes());
    head.push(0);
    let mut tags = b"OpusTags".to_vec();
    tags.extend(6u32.to_le_bytes());
    tags.extend(b"fenlei");
    tags.extend(0u32.to_le_bytes());
    let mut out = ogg_page(2, 0, serial, 0, &head);
    out.extend(ogg_page(0, 0, serial, 1, &tags));
    let packet = vec![0xFCu8; 600];
    out.extend(ogg_page(0, final_granule / 2, serial, 2, &packet));
    out.extend(ogg_page(4, final_granule, serial, 3, &packet));
    out
}
