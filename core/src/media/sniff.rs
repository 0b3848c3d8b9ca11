//! What a file is, from its first bytes (never from its name: apps hand over cache paths with
//! arbitrary names).

/// The containers Fenlei accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Format {
    Jpeg,
    Png,
    Webp,
    /// HEIF / HEIC (iPhone photos). Kept as-is; not decoded here.
    Heif,
    /// MPEG-4 audio (m4a, AAC).
    M4a,
    /// Ogg; `audio` checks that it carries Opus.
    Ogg,
    Wav,
}

impl Format {
    pub(crate) fn mime(self) -> &'static str {
        match self {
            Format::Jpeg => "image/jpeg",
            Format::Png => "image/png",
            Format::Webp => "image/webp",
            Format::Heif => "image/heif",
            Format::M4a => "audio/mp4",
            Format::Ogg => "audio/ogg",
            Format::Wav => "audio/wav",
        }
    }

    pub(crate) fn ext(self) -> &'static str {
        match self {
            Format::Jpeg => "jpg",
            Format::Png => "png",
            Format::Webp => "webp",
            Format::Heif => "heic",
            Format::M4a => "m4a",
            Format::Ogg => "opus",
            Format::Wav => "wav",
        }
    }

    pub(crate) fn is_photo(self) -> bool {
        matches!(
            self,
            Format::Jpeg | Format::Png | Format::Webp | Format::Heif
        )
    }
}

/// HEIF major/compatible brands of still images (ISO/IEC 23008-12). AVIF (`avif`, `avis`) is left
/// out on purpose: no phone Fenlei supports writes it for camera photos.
const HEIF_BRANDS: &[&[u8; 4]] = &[
    b"heic", b"heix", b"heim", b"heis", b"hevc", b"hevx", b"mif1", b"msf1",
];
/// Brands of MPEG-4 audio files phones write.
const M4A_BRANDS: &[&[u8; 4]] = &[
    b"M4A ", b"M4B ", b"mp42", b"isom", b"mp41", b"iso2", b"3gp4",
];

/// Detects the format from the first bytes (at least 12 should be given; 64 lets the ISO-BMFF
/// compatible brands be checked too).
pub(crate) fn sniff(head: &[u8]) -> Option<Format> {
    if head.len() >= 3 && head[..3] == [0xFF, 0xD8, 0xFF] {
        return Some(Format::Jpeg);
    }
    if head.len() >= 8 && head[..8] == *b"\x89PNG\r\n\x1a\n" {
        return Some(Format::Png);
    }
    if head.len() >= 12 && &head[..4] == b"RIFF" {
        return match &head[8..12] {
            b"WEBP" => Some(Format::Webp),
            b"WAVE" => Some(Format::Wav),
            _ => None,
        };
    }
    if head.len() >= 4 && &head[..4] == b"OggS" {
        return Some(Format::Ogg);
    }
    if head.len() >= 12 && &head[4..8] == b"ftyp" {
        let size = u32::from_be_bytes([head[0], head[1], head[2], head[3]]) as usize;
        let end = size.clamp(12, head.len());
        let major: &[u8] = &head[8..12];
        // Compatible brands follow the minor version (bytes 12..16).
        let compatible = head.get(16..end).unwrap_or(&[]);
        let has = |brands: &[&[u8; 4]]| {
            brands.iter().any(|b| major == &b[..])
                || compatible
                    .chunks_exact(4)
                    .any(|c| brands.iter().any(|b| c == &b[..]))
        };
        // Major brand decides first: an iPhone HEIC lists `mif1`, an m4a lists `isom`.
        if HEIF_BRANDS.iter().any(|b| major == &b[..]) {
            return Some(Format::Heif);
        }
        if M4A_BRANDS.iter().any(|b| major == &b[..]) {
            return Some(Format::M4a);
        }
        if has(HEIF_BRANDS) {
            return Some(Format::Heif);
        }
        if has(M4A_BRANDS) {
            return Some(Format::M4a);
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sniffs_magic_numbers() {
        assert_eq!(sniff(b"\xFF\xD8\xFF\xE1\0\0"), Some(Format::Jpeg));
        assert_eq!(sniff(b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR"), Some(Format::Png));
        assert_eq!(sniff(b"RIFF\0\0\0\0WEBPVP8 "), Some(Format::Webp));
        assert_eq!(sniff(b"RIFF\0\0\0\0WAVEfmt "), Some(Format::Wav));
        assert_eq!(sniff(b"OggS\0\x02"), Some(Format::Ogg));
        assert_eq!(
            sniff(b"\0\0\0\x18ftypheic\0\0\0\0mif1heic"),
            Some(Format::Heif)
        );
        assert_eq!(
            sniff(b"\0\0\0\x1cftypM4A \0\0\0\0M4A mp42isom"),
            Some(Format::M4a)
        );
        assert_eq!(sniff(b"\0\0\0\x14ftypavif\0\0\0\0avif"), None);
        assert_eq!(sniff(b"GIF89a......"), None);
        assert_eq!(sniff(b""), None);
        assert_eq!(sniff(b"RIFF"), None);
    }
}
