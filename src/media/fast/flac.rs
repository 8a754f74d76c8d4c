//! FLAC: STREAMINFO and the Vorbis comment block, read the way lofty 0.25 reads them
//! (`flac/read.rs`, `flac/block.rs`, `flac/properties.rs`). A file with an ID3v2 tag in
//! front never gets here (the dispatch wants `fLaC` at 0).

use std::time::Duration;

use super::Held;
use super::vorbis::{self, Cost};
use crate::media::budget::Limits;
use crate::media::tags::TagInfo;

/// Metadata blocks walked before the reader declines (lofty makes two reads per block).
const MAX_BLOCKS: usize = 10_000;
const STREAMINFO: u8 = 0;
const VORBIS_COMMENT: u8 = 4;

fn be24(b: &[u8]) -> u64 {
    (u64::from(b[0]) << 16) | (u64::from(b[1]) << 8) | u64::from(b[2])
}

pub fn read(held: &Held, limits: Limits) -> Option<TagInfo> {
    let len = held.file_len();
    let mut cost = Cost::new(len);
    // The probe's 36 bytes, the ID3v2 header lofty looks for, the marker: all at 0.
    cost.add(0, 36);
    let h = held.get(4, 4)?;
    let mut last = h[0] & 0x80 != 0;
    let size = be24(&h[1..]);
    // lofty wants 14 bytes and then reads 34: shorter is an error.
    if h[0] & 0x7f != STREAMINFO || size < 34 || 8 + size > len {
        return None;
    }
    let si = held.get(8, 34)?;
    cost.add(4, 8 + size);
    let mut pos = 8 + size;
    let mut comments = None;
    let mut blocks = 0;
    while !last {
        blocks += 1;
        if blocks > MAX_BLOCKS {
            return None;
        }
        let h = held.get(pos, 4)?;
        cost.add(pos, pos + 4);
        last = h[0] & 0x80 != 0;
        let size = be24(&h[1..]);
        let start = pos + 4;
        pos = start + size;
        // Other blocks (pictures too: cover art is not read) are seeked over unread.
        if h[0] & 0x7f != VORBIS_COMMENT || size == 0 {
            continue;
        }
        // A second comment block is an error in strict mode.
        if pos > len || comments.is_some() {
            return None;
        }
        cost.add(start, pos);
        comments = Some(vorbis::read_comments(held.get(start, size as usize)?)?);
    }
    // A last block that claims to run past the end of the file is an error.
    let stream_length = len.checked_sub(pos)?;

    let mut info = TagInfo::default();
    if let Some(c) = &comments {
        c.fill(&mut info);
    }
    let word = u32::from_be_bytes(si[10..14].try_into().unwrap());
    let sample_rate = word >> 12;
    let channels = ((word >> 9) & 7) + 1;
    let total_samples = (u64::from(word & 0xf) << 32)
        | u64::from(u32::from_be_bytes(si[14..18].try_into().unwrap()));
    let mut duration = Duration::ZERO;
    let mut bitrate = 0;
    if sample_rate > 0 && total_samples > 0 {
        let ms = total_samples * 1000 / u64::from(sample_rate);
        duration = Duration::from_millis(ms);
        if ms > 0 && len > 0 && stream_length > 0 {
            bitrate = (stream_length * 8 / ms) as u32;
        }
    }
    info.duration = Some(duration.as_secs_f64());
    info.bitrate = Some(bitrate);
    info.sample_rate = Some(sample_rate);
    info.channels = Some(channels as u8);
    cost.within(limits).then_some(info)
}
