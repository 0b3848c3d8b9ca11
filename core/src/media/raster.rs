//! Pixels: header-only size checks, decode, resize, orientation, JPEG encode.
//!
//! The fast sound path, measured on the 8 MP phone photo (docs/media.md):
//! - JPEG is decoded with `jpeg-decoder` at a DCT scale (1/2, 1/4, 1/8): the inverse DCT runs on
//!   fewer coefficients and the output buffer is 4–64× smaller. For a 3264×2448 photo and a
//!   1600 px rendition that is a 1632×1224 decode (6 MB instead of 24 MB of pixels), about as
//!   fast as zune-jpeg's full-size decode and half the resize work after it.
//! - Resizing is `fast_image_resize` (SIMD convolution; `image`'s own resize is ~10× slower).
//!   The thumbnail is made from the rendition, not the original: a second small resize.
//! - Orientation is applied last, on the small images (rotating 2 MP, not 8 MP).
//! - JPEG encoding uses `jpeg-encoder` (AVX2 when present): ~3.5× faster than `image`'s encoder
//!   here, with smaller files at the same quality setting.
//! - PNG and WebP go through `image` with its allocation limit; they have no scaled decode.

use std::fs::File;
use std::io::BufReader;
use std::path::Path;

use fast_image_resize as fr;
use image::{DynamicImage, ImageReader, metadata::Orientation};

use super::DecodeLimits;
use super::sniff::Format;
use crate::{CoreError, Result};

/// A JPEG made here: its bytes and size in pixels.
pub(crate) struct Encoded {
    pub bytes: Vec<u8>,
    pub width: u32,
    pub height: u32,
}

pub(crate) struct Renditions {
    pub thumb: Encoded,
    pub upload: Encoded,
}

fn invalid(reason: impl Into<String>) -> CoreError {
    CoreError::InvalidMedia {
        reason: reason.into(),
    }
}

/// Width and height as stored (before orientation), read from the header only.
pub(crate) fn header_dims(format: Format, path: &Path) -> Result<(u32, u32)> {
    match format {
        Format::Jpeg => {
            let mut d = jpeg_decoder::Decoder::new(BufReader::new(File::open(path)?));
            d.read_info()
                .map_err(|_| invalid("JPEG header is damaged"))?;
            let info = d.info().ok_or_else(|| invalid("JPEG header is damaged"))?;
            Ok((info.width as u32, info.height as u32))
        }
        Format::Png | Format::Webp => {
            let reader = ImageReader::with_format(
                BufReader::new(File::open(path)?),
                if format == Format::Png {
                    image::ImageFormat::Png
                } else {
                    image::ImageFormat::WebP
                },
            );
            reader
                .into_dimensions()
                .map_err(|_| invalid("image header is damaged"))
        }
        _ => Err(invalid("not a decodable image format")),
    }
}

/// Refuses sizes beyond the limits, before any pixel is decoded.
pub(crate) fn check_dims(w: u32, h: u32, limits: &DecodeLimits) -> Result<()> {
    if w == 0 || h == 0 {
        return Err(invalid("image has no pixels"));
    }
    if w > limits.max_side || h > limits.max_side {
        return Err(invalid(format!(
            "image side is over the {} px limit",
            limits.max_side
        )));
    }
    if w as u64 * h as u64 > limits.max_pixels {
        return Err(invalid(format!(
            "image has more than the {} pixel limit",
            limits.max_pixels
        )));
    }
    Ok(())
}

/// Pixels after decode: 1 (grey) or 3 (RGB) bytes per pixel.
struct Pixels {
    data: Vec<u8>,
    width: u32,
    height: u32,
    channels: u8,
}

/// Decodes (scaled when the format allows it) so that the long edge is at least `min_long_edge`
/// where the image has that many pixels.
fn decode(
    format: Format,
    path: &Path,
    min_long_edge: u32,
    limits: &DecodeLimits,
) -> Result<Pixels> {
    match format {
        Format::Jpeg => decode_jpeg(path, min_long_edge, limits),
        Format::Png | Format::Webp => decode_other(format, path, limits),
        _ => Err(invalid("not a decodable image format")),
    }
}

fn decode_jpeg(path: &Path, min_long_edge: u32, limits: &DecodeLimits) -> Result<Pixels> {
    let mut d = jpeg_decoder::Decoder::new(BufReader::new(File::open(path)?));
    d.read_info()
        .map_err(|_| invalid("JPEG header is damaged"))?;
    let info = d.info().ok_or_else(|| invalid("JPEG header is damaged"))?;
    let (w, h) = (info.width as u32, info.height as u32);
    check_dims(w, h, limits)?;
    // The decoder refuses to allocate past this (coefficients of progressive files included).
    d.set_max_decoding_buffer_size(usize::try_from(limits.max_alloc_bytes).unwrap_or(usize::MAX));
    let long = w.max(h);
    if long > min_long_edge {
        // Smallest DCT scale whose output still covers the wanted size.
        let rw = (w as u64 * min_long_edge as u64)
            .div_ceil(long as u64)
            .max(1) as u16;
        let rh = (h as u64 * min_long_edge as u64)
            .div_ceil(long as u64)
            .max(1) as u16;
        d.scale(rw, rh)
            .map_err(|_| invalid("JPEG header is damaged"))?;
    }
    let data = d
        .decode()
        .map_err(|e| invalid(format!("JPEG data cannot be decoded ({})", jpeg_reason(&e))))?;
    let info = d.info().ok_or_else(|| invalid("JPEG header is damaged"))?;
    let (ow, oh) = (info.width as u32, info.height as u32);
    let n = ow as usize * oh as usize;
    let (data, channels) = match info.pixel_format {
        jpeg_decoder::PixelFormat::L8 => (data, 1),
        jpeg_decoder::PixelFormat::RGB24 => (data, 3),
        jpeg_decoder::PixelFormat::CMYK32 => (cmyk_to_rgb(&data), 3),
        jpeg_decoder::PixelFormat::L16 => {
            return Err(invalid("16-bit (lossless) JPEG is not supported"));
        }
    };
    if data.len() != n * channels as usize {
        return Err(invalid("JPEG data cannot be decoded (size mismatch)"));
    }
    Ok(Pixels {
        data,
        width: ow,
        height: oh,
        channels,
    })
}

/// A short, data-free reason from a jpeg-decoder error.
fn jpeg_reason(e: &jpeg_decoder::Error) -> &'static str {
    match e {
        jpeg_decoder::Error::Format(_) => "damaged or truncated",
        jpeg_decoder::Error::Unsupported(_) => "unsupported JPEG feature",
        jpeg_decoder::Error::Io(_) => "truncated",
        _ => "too large or damaged",
    }
}

/// CMYK as Adobe writes it in JPEG (inverted): naive conversion, good enough for previews.
fn cmyk_to_rgb(cmyk: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(cmyk.len() / 4 * 3);
    for px in cmyk.chunks_exact(4) {
        let k = px[3] as u32;
        for &c in &px[..3] {
            out.push((c as u32 * k / 255) as u8);
        }
    }
    out
}

fn decode_other(format: Format, path: &Path, limits: &DecodeLimits) -> Result<Pixels> {
    let fmt = if format == Format::Png {
        image::ImageFormat::Png
    } else {
        image::ImageFormat::WebP
    };
    let mut reader = ImageReader::with_format(BufReader::new(File::open(path)?), fmt);
    let mut l = image::Limits::default();
    l.max_image_width = Some(limits.max_side);
    l.max_image_height = Some(limits.max_side);
    l.max_alloc = Some(limits.max_alloc_bytes);
    reader.limits(l);
    let img = reader.decode().map_err(|e| match e {
        image::ImageError::Limits(_) => invalid("image is over the decode limits"),
        _ => invalid("image data cannot be decoded (damaged or truncated)"),
    })?;
    let (width, height) = (img.width(), img.height());
    check_dims(width, height, limits)?;
    let (data, channels) = if img.color().has_alpha() {
        // Thumbnails are JPEG: put transparent pixels on white, as viewers show them.
        let rgba = img.into_rgba8();
        let mut out = Vec::with_capacity(width as usize * height as usize * 3);
        for px in rgba.as_raw().chunks_exact(4) {
            let a = px[3] as u32;
            for &c in &px[..3] {
                out.push(((c as u32 * a + 255 * (255 - a)) / 255) as u8);
            }
        }
        (out, 3)
    } else if img.color().has_color() {
        (img.into_rgb8().into_raw(), 3)
    } else {
        (img.into_luma8().into_raw(), 1)
    };
    Ok(Pixels {
        data,
        width,
        height,
        channels,
    })
}

/// Size with the long edge at most `edge`, keeping the aspect ratio (never enlarging).
fn fit(w: u32, h: u32, edge: u32) -> (u32, u32) {
    let long = w.max(h);
    if long <= edge {
        return (w, h);
    }
    let scale = |x: u32| ((x as u64 * edge as u64 + long as u64 / 2) / long as u64).max(1) as u32;
    (scale(w), scale(h))
}

fn resize(p: &Pixels, w: u32, h: u32) -> Result<Pixels> {
    if (w, h) == (p.width, p.height) {
        return Ok(Pixels {
            data: p.data.clone(),
            width: w,
            height: h,
            channels: p.channels,
        });
    }
    let data = if p.channels == 1 {
        resize_as::<fr::pixels::U8>(p, w, h)?
    } else {
        resize_as::<fr::pixels::U8x3>(p, w, h)?
    };
    Ok(Pixels {
        data,
        width: w,
        height: h,
        channels: p.channels,
    })
}

/// Resizes with the pixel type fixed at compile time. The same kernels as `Resizer::resize`,
/// which picks the pixel type at run time and so links the SIMD kernels of all 13 pixel types
/// (about 3 MB of the mobile library, docs/reliability.md "Mobile library size"); typed, only
/// the two used here are compiled in.
fn resize_as<P: fr::PixelTrait>(p: &Pixels, w: u32, h: u32) -> Result<Vec<u8>> {
    let src = fr::images::TypedImageRef::<P>::from_buffer(p.width, p.height, &p.data)
        .map_err(|_| invalid("internal: pixel buffer size"))?;
    let mut out = vec![0u8; w as usize * h as usize * P::size()];
    let mut dst = fr::images::TypedImage::<P>::from_buffer(w, h, &mut out)
        .map_err(|_| invalid("internal: pixel buffer size"))?;
    let opts =
        fr::ResizeOptions::new().resize_alg(fr::ResizeAlg::Convolution(fr::FilterType::CatmullRom));
    fr::Resizer::new()
        .resize_typed(&src, &mut dst, &opts)
        .map_err(|_| invalid("internal: resize failed"))?;
    drop(dst);
    Ok(out)
}

/// Rotates/flips per EXIF orientation (1–8) and encodes as JPEG.
fn orient_and_encode(p: Pixels, orientation: u32, quality: u8) -> Result<Encoded> {
    let mut img = if p.channels == 1 {
        DynamicImage::ImageLuma8(
            image::GrayImage::from_raw(p.width, p.height, p.data)
                .ok_or_else(|| invalid("internal: pixel buffer size"))?,
        )
    } else {
        DynamicImage::ImageRgb8(
            image::RgbImage::from_raw(p.width, p.height, p.data)
                .ok_or_else(|| invalid("internal: pixel buffer size"))?,
        )
    };
    if let Some(o) = u8::try_from(orientation)
        .ok()
        .and_then(Orientation::from_exif)
    {
        img.apply_orientation(o);
    }
    let (width, height) = (img.width(), img.height());
    let (color, raw) = match &img {
        DynamicImage::ImageLuma8(g) => (jpeg_encoder::ColorType::Luma, g.as_raw()),
        DynamicImage::ImageRgb8(c) => (jpeg_encoder::ColorType::Rgb, c.as_raw()),
        _ => return Err(invalid("internal: unexpected pixel layout")),
    };
    let mut bytes = Vec::new();
    jpeg_encoder::Encoder::new(&mut bytes, quality)
        .encode(raw, width as u16, height as u16, color)
        .map_err(|_| invalid("internal: JPEG encoding failed"))?;
    Ok(Encoded {
        bytes,
        width,
        height,
    })
}

/// Quality of the rendition sent to supervisors (detail of bins and labels must stay legible).
const UPLOAD_QUALITY: u8 = 82;
/// Quality of the list thumbnail.
const THUMB_QUALITY: u8 = 75;

/// The upright thumbnail and upload rendition of an image file.
pub(crate) fn render(
    format: Format,
    path: &Path,
    orientation: u32,
    thumb_edge: u32,
    upload_edge: u32,
    limits: &DecodeLimits,
) -> Result<Renditions> {
    let px = decode(format, path, upload_edge, limits)?;
    let (uw, uh) = fit(px.width, px.height, upload_edge);
    let upload_px = resize(&px, uw, uh)?;
    drop(px);
    let (tw, th) = fit(uw, uh, thumb_edge);
    let thumb_px = resize(&upload_px, tw, th)?;
    Ok(Renditions {
        thumb: orient_and_encode(thumb_px, orientation, THUMB_QUALITY)?,
        upload: orient_and_encode(upload_px, orientation, UPLOAD_QUALITY)?,
    })
}

/// Size of a JPEG we wrote earlier (idempotent re-ingest), from its header.
pub(crate) fn jpeg_dims(path: &Path) -> Option<(u32, u32)> {
    header_dims(Format::Jpeg, path).ok()
}

#[cfg(test)]
mod tests {
    use super::fit;

    #[test]
    fn fit_keeps_aspect_and_never_enlarges() {
        assert_eq!(fit(3264, 2448, 1600), (1600, 1200));
        assert_eq!(fit(2448, 3264, 320), (240, 320));
        assert_eq!(fit(640, 480, 1600), (640, 480));
        assert_eq!(fit(10_000, 1, 320), (320, 1));
    }
}
