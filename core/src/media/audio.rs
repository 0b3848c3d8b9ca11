//! Durations of voice notes, from the container headers alone (no audio decoding, no codec
//! crates): WAV `fmt `/`data` chunk arithmetic, the MP4 `mvhd` box (m4a/AAC), and the granule
//! position of the last Ogg page (Opus). Each parser is bounded by the file length, so a hostile
//! size field can make it neither allocate nor loop without end.

use std::fs::File;
use std::io::{BufReader, Read, Seek, SeekFrom};

use super::sniff::Format;
use crate::{CoreError, Result};

/// Longest voice note taken as real; beyond this the header is lying.
const MAX_DURATION_MS: u64 = 24 * 3600 * 1000;

fn invalid(reason: &str) -> CoreError {
    CoreError::InvalidMedia {
        reason: reason.to_string(),
    }
}

/// `Ok(Some(ms))`, or `Ok(None)` for a valid container that does not say how long it is
/// (a recorder killed before writing the total). `Err` for a file that is not what it claims.
pub(crate) fn duration_ms(format: Format, file: &mut File) -> Result<Option<u64>> {
    let len = file.metadata()?.len();
    file.seek(SeekFrom::Start(0))?;
    let mut r = BufReader::new(file);
    let d = match format {
        Format::Wav => wav(&mut r, len)?,
        Format::M4a => mp4(&mut r, len)?,
        Format::Ogg => ogg_opus(&mut r, len)?,
        _ => return Err(invalid("not an audio format")),
    };
    Ok(d.filter(|&ms| ms <= MAX_DURATION_MS))
}

fn read_exact<R: Read>(r: &mut R, buf: &mut [u8], what: &str) -> Result<()> {
    r.read_exact(buf).map_err(|e| {
        if e.kind() == std::io::ErrorKind::UnexpectedEof {
            invalid(what)
        } else {
            CoreError::Io(e)
        }
    })
}

fn u16le(b: &[u8]) -> u16 {
    u16::from_le_bytes([b[0], b[1]])
}
fn u32le(b: &[u8]) -> u32 {
    u32::from_le_bytes([b[0], b[1], b[2], b[3]])
}
fn u32be(b: &[u8]) -> u32 {
    u32::from_be_bytes([b[0], b[1], b[2], b[3]])
}
fn u64be(b: &[u8]) -> u64 {
    u64::from_be_bytes([b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7]])
}

/// RIFF/WAVE: duration = data bytes / (sample rate × block align) — i.e. / byte rate.
fn wav<R: Read + Seek>(r: &mut R, len: u64) -> Result<Option<u64>> {
    let mut head = [0u8; 12];
    read_exact(r, &mut head, "WAV header is truncated")?;
    if &head[..4] != b"RIFF" || &head[8..] != b"WAVE" {
        return Err(invalid("not a RIFF/WAVE file"));
    }
    let mut pos = 12u64;
    let mut fmt: Option<(u32, u16)> = None; // (sample rate, block align)
    while pos + 8 <= len {
        let mut ch = [0u8; 8];
        read_exact(r, &mut ch, "WAV chunk header is truncated")?;
        let size = u32le(&ch[4..]) as u64;
        let body = pos + 8;
        match &ch[..4] {
            b"fmt " => {
                if size < 16 {
                    return Err(invalid("WAV fmt chunk is too short"));
                }
                let mut f = [0u8; 16];
                read_exact(r, &mut f, "WAV fmt chunk is truncated")?;
                let channels = u16le(&f[2..]);
                let rate = u32le(&f[4..]);
                let align = u16le(&f[12..]);
                if channels == 0 || rate == 0 || align == 0 {
                    return Err(invalid(
                        "WAV fmt chunk has zero channels, rate or block size",
                    ));
                }
                fmt = Some((rate, align));
            }
            b"data" => {
                let (rate, align) = fmt.ok_or_else(|| invalid("WAV data comes before fmt"))?;
                // Recorders that stream (or were killed) leave 0 or 0xFFFFFFFF here: take what
                // the file actually holds.
                let avail = len - body;
                let bytes = if size == 0 || size == 0xFFFF_FFFF || size > avail {
                    avail
                } else {
                    size
                };
                let frames = bytes / align as u64;
                return Ok(Some(frames * 1000 / rate as u64));
            }
            _ => {}
        }
        // Chunks are padded to an even size.
        pos = body.saturating_add(size).saturating_add(size & 1);
        r.seek(SeekFrom::Start(pos))?;
    }
    Err(invalid("WAV file has no data chunk"))
}

/// ISO-BMFF: walk the top-level boxes to `moov`, then its children to `mvhd`.
fn mp4<R: Read + Seek>(r: &mut R, len: u64) -> Result<Option<u64>> {
    let mut pos = 0u64;
    let mut end = len;
    let mut inside_moov = false;
    while pos + 8 <= end {
        r.seek(SeekFrom::Start(pos))?;
        let mut h = [0u8; 8];
        read_exact(r, &mut h, "MP4 box header is truncated")?;
        let mut size = u32be(&h) as u64;
        let mut header = 8u64;
        if size == 1 {
            let mut l = [0u8; 8];
            read_exact(r, &mut l, "MP4 box header is truncated")?;
            size = u64be(&l);
            header = 16;
        } else if size == 0 {
            size = end - pos; // box runs to the end of its parent
        }
        if size < header || pos.saturating_add(size) > end {
            return Err(invalid("MP4 box size runs past the file"));
        }
        match (&h[4..], inside_moov) {
            (b"moov", false) => {
                inside_moov = true;
                end = pos + size;
                pos += header;
                continue;
            }
            (b"mvhd", true) => {
                let mut v = [0u8; 4];
                read_exact(r, &mut v, "MP4 mvhd is truncated")?;
                let (timescale, duration) = if v[0] == 1 {
                    let mut b = [0u8; 28];
                    read_exact(r, &mut b, "MP4 mvhd is truncated")?;
                    (u32be(&b[16..]), u64be(&b[20..]))
                } else {
                    let mut b = [0u8; 16];
                    read_exact(r, &mut b, "MP4 mvhd is truncated")?;
                    (u32be(&b[8..]), u32be(&b[12..]) as u64)
                };
                if timescale == 0 {
                    return Err(invalid("MP4 mvhd has a zero timescale"));
                }
                if duration == u64::MAX || duration == u32::MAX as u64 {
                    return Ok(None); // "unknown" per the spec (fragmented files)
                }
                return Ok(Some(
                    (duration as u128 * 1000 / timescale as u128).min(u64::MAX as u128) as u64,
                ));
            }
            _ => {}
        }
        pos += size;
    }
    Err(invalid(if inside_moov {
        "MP4 file has no mvhd box"
    } else {
        "MP4 file has no moov box"
    }))
}

/// The Ogg page checksum: CRC-32, polynomial 0x04C11DB7, not reflected, initial value 0.
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

/// A complete, checksummed Ogg page starting at `buf[at..]`: (granule, serial, page length).
fn ogg_page(buf: &[u8], at: usize) -> Option<(i64, u32, usize)> {
    let h = buf.get(at..at + 27)?;
    if &h[..4] != b"OggS" || h[4] != 0 {
        return None;
    }
    let nseg = h[26] as usize;
    let segs = buf.get(at + 27..at + 27 + nseg)?;
    let body: usize = segs.iter().map(|&s| s as usize).sum();
    let total = 27 + nseg + body;
    let page = buf.get(at..at + total)?;
    let stored = u32le(&page[22..26]);
    let mut copy = page.to_vec();
    copy[22..26].fill(0);
    if ogg_crc(&copy) != stored {
        return None;
    }
    let granule = i64::from_le_bytes(page[6..14].try_into().ok()?);
    Some((granule, u32le(&page[14..18]), total))
}

/// Ogg Opus: (granule position of the last page − pre-skip) / 48 kHz (RFC 7845 §4).
fn ogg_opus<R: Read + Seek>(r: &mut R, len: u64) -> Result<Option<u64>> {
    // First page: the OpusHead identification header.
    let first_len = len.min(27 + 255 + 255 * 255) as usize;
    let mut first = vec![0u8; first_len];
    read_exact(r, &mut first, "Ogg page is truncated")?;
    let (_, serial, page_len) =
        ogg_page(&first, 0).ok_or_else(|| invalid("first Ogg page is damaged"))?;
    let nseg = first[26] as usize;
    let packet = &first[27 + nseg..page_len];
    if packet.len() < 19 || &packet[..8] != b"OpusHead" {
        return Err(invalid("Ogg stream is not Opus"));
    }
    let pre_skip = u16le(&packet[10..12]) as i64;
    // Last page: scan the tail backwards for the last valid page of this stream.
    let tail_len = len.min(2 * (27 + 255 + 255 * 255)) as usize;
    r.seek(SeekFrom::Start(len - tail_len as u64))?;
    let mut tail = vec![0u8; tail_len];
    read_exact(r, &mut tail, "Ogg file is truncated")?;
    let mut at = tail_len.saturating_sub(27);
    loop {
        if tail[at..].starts_with(b"OggS")
            && let Some((granule, s, _)) = ogg_page(&tail, at)
            && s == serial
            && granule >= 0
        {
            let samples = (granule - pre_skip).max(0) as u64;
            return Ok(Some(samples * 1000 / 48_000));
        }
        if at == 0 {
            return Ok(None);
        }
        at -= 1;
    }
}

#[cfg(test)]
mod tests {
    use super::ogg_crc;

    #[test]
    fn ogg_crc_known_value() {
        // CRC-32/MPEG-2 without the final xor and init 0 ("CRC-32/BZIP2" family member used by
        // Ogg): the check value of "123456789" is 0x89A1897F.
        assert_eq!(ogg_crc(b"123456789"), 0x89A1_897F);
    }
}
