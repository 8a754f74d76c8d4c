//! Ogg Vorbis and Ogg Opus: header packets re-paginated around a new comment packet, then
//! the template's audio pages repeated with fresh sequence numbers, granule positions and
//! CRCs. In a sparse file the tail pages carry granules scaled to the apparent length, so
//! the last page (which readers use for the duration) agrees with the file size.

use anyhow::{Context, Result, bail, ensure};

use super::formats::{Layout, Request, Shape};

const CONTINUED: u8 = 0x01;
const FIRST: u8 = 0x02;
const LAST: u8 = 0x04;
const NO_GRANULE: u64 = u64::MAX;

#[derive(Clone, Copy, PartialEq, Eq)]
enum Codec {
    Vorbis,
    Opus,
}

struct AudioPage {
    continued: bool,
    /// Granule advance over the previous page.
    delta: u64,
    lacing: Vec<u8>,
    body: Vec<u8>,
}

impl AudioPage {
    fn len(&self) -> usize {
        27 + self.lacing.len() + self.body.len()
    }
}

pub struct OggTemplate {
    codec: Codec,
    serial: u32,
    ident: Vec<u8>,
    /// Vorbis setup packet (Opus has none).
    setup: Option<Vec<u8>>,
    /// Pages repeated as the audio payload (the template's final, short page excluded).
    pages: Vec<AudioPage>,
    cycle_bytes: u64,
    cycle_granules: u64,
}

struct RawPage<'a> {
    flags: u8,
    granule: u64,
    serial: u32,
    lacing: &'a [u8],
    body: &'a [u8],
}

fn read_pages(mut file: &[u8]) -> Result<Vec<RawPage<'_>>> {
    let mut pages = Vec::new();
    while !file.is_empty() {
        ensure!(
            file.len() >= 27 && &file[..4] == b"OggS",
            "page header expected"
        );
        let nsegs = usize::from(file[26]);
        let lacing = file.get(27..27 + nsegs).context("short lacing table")?;
        let body_len: usize = lacing.iter().map(|&l| usize::from(l)).sum();
        let body = file
            .get(27 + nsegs..27 + nsegs + body_len)
            .context("short page body")?;
        pages.push(RawPage {
            flags: file[5],
            granule: u64::from_le_bytes(file[6..14].try_into()?),
            serial: u32::from_le_bytes(file[14..18].try_into()?),
            lacing,
            body,
        });
        file = &file[27 + nsegs + body_len..];
    }
    Ok(pages)
}

impl OggTemplate {
    pub fn parse(file: &[u8]) -> Result<Self> {
        let pages = read_pages(file)?;
        ensure!(pages.len() >= 3, "too few pages");
        let serial = pages[0].serial;
        ensure!(
            pages.iter().all(|p| p.serial == serial),
            "template must hold one logical stream"
        );

        // Reassemble header packets until the codec's header count is reached; the first
        // audio packet starts on a fresh page, as both codec mappings require.
        let codec = if pages[0].body.starts_with(b"\x01vorbis") {
            Codec::Vorbis
        } else if pages[0].body.starts_with(b"OpusHead") {
            Codec::Opus
        } else {
            bail!("neither Vorbis nor Opus")
        };
        let wanted = if codec == Codec::Vorbis { 3 } else { 2 };
        let mut packets: Vec<Vec<u8>> = Vec::new();
        let mut current = Vec::new();
        let mut first_audio = None;
        'pages: for (i, page) in pages.iter().enumerate() {
            let mut at = 0;
            for &l in page.lacing {
                current.extend_from_slice(&page.body[at..at + usize::from(l)]);
                at += usize::from(l);
                if l < 255 {
                    packets.push(std::mem::take(&mut current));
                    if packets.len() == wanted {
                        ensure!(at == page.body.len(), "audio shares a header page");
                        first_audio = Some(i + 1);
                        break 'pages;
                    }
                }
            }
        }
        let first_audio = first_audio.context("incomplete header packets")?;
        let audio = &pages[first_audio..];
        ensure!(audio.len() >= 2, "need at least two audio pages");

        let mut previous = 0;
        let mut cycle = Vec::new();
        for page in &audio[..audio.len() - 1] {
            let delta = if page.granule == NO_GRANULE {
                0
            } else {
                let d = page.granule.saturating_sub(previous);
                previous = page.granule;
                d
            };
            cycle.push(AudioPage {
                continued: page.flags & CONTINUED != 0,
                delta,
                lacing: page.lacing.to_vec(),
                body: page.body.to_vec(),
            });
        }
        let cycle_bytes = cycle.iter().map(|p| p.len() as u64).sum();
        let cycle_granules = cycle.iter().map(|p| p.delta).sum();
        ensure!(cycle_granules > 0, "audio pages carry no granule positions");
        Ok(Self {
            codec,
            serial,
            ident: packets[0].clone(),
            setup: (codec == Codec::Vorbis).then(|| packets[2].clone()),
            pages: cycle,
            cycle_bytes,
            cycle_granules,
        })
    }

    pub fn build(&self, req: &Request) -> Layout {
        let vc = super::tags::vorbis_comments(req.tags, req.cover);
        let mut comment = Vec::with_capacity(vc.len() + 9);
        match self.codec {
            Codec::Vorbis => {
                comment.extend_from_slice(b"\x03vorbis");
                comment.extend_from_slice(&vc);
                comment.push(1); // framing bit
            }
            Codec::Opus => {
                comment.extend_from_slice(b"OpusTags");
                comment.extend_from_slice(&vc);
            }
        }

        let mut head = Vec::with_capacity(comment.len() + 8192);
        let mut seq = 0;
        paginate(&mut head, self.serial, &mut seq, &[&self.ident], FIRST);
        let mut rest: Vec<&[u8]> = vec![&comment];
        if let Some(setup) = &self.setup {
            rest.push(setup);
        }
        paginate(&mut head, self.serial, &mut seq, &rest, 0);
        let header_end = head.len();
        let budget = req.target.saturating_sub(header_end as u64);

        let n = self.pages.len();
        let (head_audio, tail_audio) = match req.shape {
            Shape::Dense => ((budget as usize).max(super::formats::MIN_DENSE_AUDIO), 0),
            Shape::Sparse {
                head_audio,
                tail_audio,
            } => (head_audio, tail_audio),
        };

        // Head: pages in template order from the start of the cycle.
        let mut granule = 0;
        let mut i = 0;
        let mut written = 0;
        loop {
            let page = &self.pages[i % n];
            granule += page.delta;
            let is_last = matches!(req.shape, Shape::Dense) && written + page.len() >= head_audio;
            let flags = if page.continued && i > 0 {
                CONTINUED
            } else {
                0
            } | if is_last { LAST } else { 0 };
            write_page(
                &mut head,
                flags,
                granule,
                self.serial,
                seq,
                &page.lacing,
                &page.body,
            );
            seq += 1;
            written += page.len();
            i += 1;
            if written >= head_audio {
                break;
            }
        }

        let Shape::Sparse { .. } = req.shape else {
            return Layout {
                head,
                gap: 0,
                tail: Vec::new(),
                header_end,
            };
        };

        // Tail: the pages ending the cycle, enough to cover `tail_audio`.
        let mut picked = Vec::new();
        let mut tail_len = 0;
        for k in (0..n).rev().cycle() {
            picked.push(k);
            tail_len += self.pages[k].len();
            if tail_len >= tail_audio {
                break;
            }
        }
        picked.reverse();
        let gap = budget.saturating_sub((written + tail_len) as u64);
        let audio_len = written as u64 + gap + tail_len as u64;
        let total_granules = (u128::from(audio_len) * u128::from(self.cycle_granules)
            / u128::from(self.cycle_bytes)) as u64;
        let total_granules = total_granules.max(granule + 1);
        let average_page = self.cycle_bytes / n as u64;
        let mut tail_seq = seq + (gap / average_page.max(1)) as u32;

        // Granules count back from the final one so the last page ends the stream exactly.
        let mut granules = vec![0; picked.len()];
        let mut g = total_granules;
        for (slot, &k) in granules.iter_mut().zip(&picked).rev() {
            *slot = g;
            g = g.saturating_sub(self.pages[k].delta);
        }
        let mut tail = Vec::with_capacity(tail_len);
        for (j, (&k, &g)) in picked.iter().zip(&granules).enumerate() {
            let page = &self.pages[k];
            let last = j + 1 == picked.len();
            let flags = if page.continued { CONTINUED } else { 0 } | if last { LAST } else { 0 };
            write_page(
                &mut tail,
                flags,
                g,
                self.serial,
                tail_seq,
                &page.lacing,
                &page.body,
            );
            tail_seq += 1;
        }
        Layout {
            head,
            gap,
            tail,
            header_end,
        }
    }
}

/// Lays packets out on as few pages as possible, ending the last one at a packet boundary
/// (the next packet must start on a fresh page).
fn paginate(out: &mut Vec<u8>, serial: u32, seq: &mut u32, packets: &[&[u8]], first_flags: u8) {
    let mut lacing = Vec::with_capacity(255);
    let mut body = Vec::new();
    let mut flags = first_flags;
    let mut completed = false;
    for packet in packets {
        let mut at = 0;
        loop {
            let seg = (packet.len() - at).min(255);
            lacing.push(seg as u8);
            body.extend_from_slice(&packet[at..at + seg]);
            at += seg;
            let done = seg < 255;
            completed |= done;
            if lacing.len() == 255 {
                let granule = if completed { 0 } else { NO_GRANULE };
                write_page(out, flags, granule, serial, *seq, &lacing, &body);
                *seq += 1;
                lacing.clear();
                body.clear();
                flags = if done { 0 } else { CONTINUED };
                completed = false;
            }
            if done {
                break;
            }
        }
    }
    if !lacing.is_empty() {
        write_page(out, flags, 0, serial, *seq, &lacing, &body);
        *seq += 1;
    }
}

pub(crate) fn write_page(
    out: &mut Vec<u8>,
    flags: u8,
    granule: u64,
    serial: u32,
    seq: u32,
    lacing: &[u8],
    body: &[u8],
) {
    let start = out.len();
    out.extend_from_slice(b"OggS\0");
    out.push(flags);
    out.extend_from_slice(&granule.to_le_bytes());
    out.extend_from_slice(&serial.to_le_bytes());
    out.extend_from_slice(&seq.to_le_bytes());
    out.extend_from_slice(&[0; 4]);
    out.push(lacing.len() as u8);
    out.extend_from_slice(lacing);
    out.extend_from_slice(body);
    let crc = crc32(&out[start..]);
    out[start + 22..start + 26].copy_from_slice(&crc.to_le_bytes());
}

/// The Ogg CRC: polynomial 0x04c11db7, MSB first, zero initial value, no final xor.
fn crc32(data: &[u8]) -> u32 {
    const TABLE: [u32; 256] = {
        let mut table = [0; 256];
        let mut i = 0;
        while i < 256 {
            let mut r = (i as u32) << 24;
            let mut bit = 0;
            while bit < 8 {
                r = if r & 0x8000_0000 != 0 {
                    (r << 1) ^ 0x04c1_1db7
                } else {
                    r << 1
                };
                bit += 1;
            }
            table[i] = r;
            i += 1;
        }
        table
    };
    data.iter().fold(0u32, |crc, &b| {
        (crc << 8) ^ TABLE[usize::from((crc >> 24) as u8 ^ b)]
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rewritten_template_pages_keep_their_crc() {
        // Re-emitting a template page unchanged must reproduce its stored CRC.
        let file = include_bytes!("../../fixtures/templates/template.ogg");
        let pages = read_pages(file).unwrap();
        let mut offset = 0;
        for (seq, p) in pages.iter().enumerate() {
            let mut out = Vec::new();
            write_page(
                &mut out, p.flags, p.granule, p.serial, seq as u32, p.lacing, p.body,
            );
            assert_eq!(out, file[offset..offset + out.len()], "page {seq}");
            offset += out.len();
        }
    }

    #[test]
    fn long_packets_span_pages_with_continuation() {
        let big = vec![7u8; 255 * 300];
        let mut out = Vec::new();
        let mut seq = 0;
        paginate(&mut out, 1, &mut seq, &[&big, b"tail"], 0);
        let pages = read_pages(&out).unwrap();
        assert_eq!(pages.len(), 2);
        assert_eq!(pages[0].granule, NO_GRANULE);
        assert_eq!(pages[1].flags & CONTINUED, CONTINUED);
        let body: usize = pages.iter().map(|p| p.body.len()).sum();
        assert_eq!(body, big.len() + 4);
    }
}
