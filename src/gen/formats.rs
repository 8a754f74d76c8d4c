//! Per-format file builders. Each turns one template (parsed once) plus tags, cover and a
//! target size into a [`Layout`]: the bytes at the head, a gap, and the bytes at the tail.
//!
//! The gap is always inside the audio payload, and every length field that covers it is
//! written for the full apparent size, so a reader sees one long, well-formed file:
//!
//! | format | tags                         | what the gap stretches                          |
//! |--------|------------------------------|-------------------------------------------------|
//! | mp3    | ID3v2.4 at the head          | CBR frame run; lofty derives duration from it   |
//! | flac   | VORBIS_COMMENT + PICTURE     | frame data; STREAMINFO total samples scaled     |
//! | m4a    | moov/udta/meta/ilst          | mdat size; mvhd/tkhd/elst/mdhd durations scaled |
//! | ogg    | Vorbis comment packet        | pages; last page granule scaled                 |
//! | opus   | OpusTags packet              | pages; last page granule scaled                 |
//! | wav    | ID3v2 `id3 ` chunk at the end | data chunk size, RIFF size                      |
//! | aiff   | ID3v2 `ID3 ` chunk before SSND | SSND size, COMM frame count, FORM size          |

use anyhow::{Context, Result, bail, ensure};

use super::cover::Cover;
use super::mp4::Mp4Template;
use super::ogg::OggTemplate;
use super::stream::Stream;
use super::{Format, TrackTags};

const MP3: &[u8] = include_bytes!("../../fixtures/templates/template.mp3");
const FLAC: &[u8] = include_bytes!("../../fixtures/templates/template.flac");
const M4A: &[u8] = include_bytes!("../../fixtures/templates/template.m4a");
const OGG: &[u8] = include_bytes!("../../fixtures/templates/template.ogg");
const OPUS: &[u8] = include_bytes!("../../fixtures/templates/template.opus");
const WAV: &[u8] = include_bytes!("../../fixtures/templates/template.wav");
const AIFF: &[u8] = include_bytes!("../../fixtures/templates/template.aiff");

/// A file as written: `head`, then `gap` bytes that are a hole (never written), then `tail`.
pub struct Layout {
    pub head: Vec<u8>,
    pub gap: u64,
    pub tail: Vec<u8>,
    /// Bytes at the start that hold container headers and any leading tags; cutting the
    /// file inside this range is how "truncated header" corrupt files are made.
    pub header_end: usize,
}

impl Layout {
    pub fn len(&self) -> u64 {
        self.head.len() as u64 + self.gap + self.tail.len() as u64
    }
}

#[derive(Clone, Copy, Debug)]
pub enum Shape {
    /// Every byte real; size lands near the target (rounded to whole audio units).
    Dense,
    /// About `head_audio`/`tail_audio` real audio bytes around a hole; size hits the target.
    Sparse {
        head_audio: usize,
        tail_audio: usize,
    },
}

pub struct Request<'a> {
    pub tags: &'a TrackTags,
    pub cover: Option<&'a Cover>,
    pub target: u64,
    pub shape: Shape,
    /// Zero padding after leading tags, as taggers leave room for edits.
    pub padding: usize,
    /// M4A only: put `moov` after `mdat`, so the tags live in the tail.
    pub moov_at_end: bool,
}

/// Even a tiny file carries a few frames of audio, so it has a non-zero duration.
pub const MIN_DENSE_AUDIO: usize = 1024;

/// Real audio around a gap, sized to `budget` apparent bytes of payload.
pub struct Audio {
    pub head: Vec<u8>,
    pub gap: u64,
    pub tail: Vec<u8>,
}

impl Audio {
    pub fn split(stream: &Stream, shape: Shape, budget: u64) -> Self {
        match shape {
            Shape::Dense => Audio {
                head: stream.forward((budget as usize).max(MIN_DENSE_AUDIO)),
                gap: 0,
                tail: Vec::new(),
            },
            Shape::Sparse {
                head_audio,
                tail_audio,
            } => {
                let head = stream.forward(head_audio);
                let tail = stream.backward(tail_audio);
                let real = (head.len() + tail.len()) as u64;
                Audio {
                    gap: stream.align_down(budget.saturating_sub(real)),
                    head,
                    tail,
                }
            }
        }
    }

    pub fn len(&self) -> u64 {
        self.head.len() as u64 + self.gap + self.tail.len() as u64
    }
}

pub struct Templates {
    mp3: Stream,
    flac: FlacTemplate,
    m4a: Mp4Template,
    ogg: OggTemplate,
    opus: OggTemplate,
    wav: WavTemplate,
    aiff: AiffTemplate,
}

impl Templates {
    pub fn load() -> Result<Self> {
        Ok(Self {
            mp3: mp3_stream(MP3).context("template.mp3")?,
            flac: FlacTemplate::parse(FLAC).context("template.flac")?,
            m4a: Mp4Template::parse(M4A).context("template.m4a")?,
            ogg: OggTemplate::parse(OGG).context("template.ogg")?,
            opus: OggTemplate::parse(OPUS).context("template.opus")?,
            wav: WavTemplate::parse(WAV).context("template.wav")?,
            aiff: AiffTemplate::parse(AIFF).context("template.aiff")?,
        })
    }

    pub fn build(&self, format: Format, req: &Request) -> Layout {
        match format {
            Format::Mp3 => build_mp3(&self.mp3, req),
            Format::Flac => self.flac.build(req),
            Format::M4a => self.m4a.build(req),
            Format::Ogg => self.ogg.build(req),
            Format::Opus => self.opus.build(req),
            Format::Wav => self.wav.build(req),
            Format::Aiff => self.aiff.build(req),
        }
    }
}

fn build_mp3(stream: &Stream, req: &Request) -> Layout {
    let id3 = super::tags::id3v2(req.tags, req.cover, req.padding);
    let audio = Audio::split(
        stream,
        req.shape,
        req.target.saturating_sub(id3.len() as u64),
    );
    let header_end = id3.len();
    let mut head = id3;
    head.extend_from_slice(&audio.head);
    Layout {
        head,
        gap: audio.gap,
        tail: audio.tail,
        header_end,
    }
}

/// MPEG-1 Layer III frames of the template, as cut points for repetition.
fn mp3_stream(file: &[u8]) -> Result<Stream> {
    const KBPS: [u32; 15] = [
        0, 32, 40, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320,
    ];
    const RATES: [u32; 3] = [44100, 48000, 32000];
    ensure!(
        !file.starts_with(b"ID3"),
        "template must be untagged (generator writes the tags)"
    );
    let mut units = Vec::new();
    let mut pos = 0;
    while pos + 4 <= file.len() {
        let h = &file[pos..pos + 4];
        // Sync, MPEG-1, Layer III; anything else ends the frame run.
        if h[0] != 0xff || h[1] & 0xfe != 0xfa {
            break;
        }
        let kbps = KBPS.get(usize::from(h[2] >> 4)).copied().unwrap_or(0);
        let rate = RATES
            .get(usize::from((h[2] >> 2) & 3))
            .copied()
            .unwrap_or(0);
        ensure!(
            kbps > 0 && rate > 0,
            "free-format or reserved frame at {pos}"
        );
        let len = (144_000 * kbps / rate) as usize + usize::from((h[2] >> 1) & 1);
        ensure!(pos + len <= file.len(), "frame at {pos} runs past the end");
        units.push(pos..pos + len);
        pos += len;
    }
    ensure!(units.len() > 4, "expected an MPEG-1 Layer III frame run");
    let end = units.last().map_or(0, |u| u.end);
    Ok(Stream::framed(file[..end].to_vec(), units))
}

/// Splits a big-endian or little-endian RIFF/IFF body into (id, body) chunks.
fn iff_chunks(mut body: &[u8], big_endian: bool) -> Result<Vec<([u8; 4], &[u8])>> {
    let mut out = Vec::new();
    while body.len() >= 8 {
        let id: [u8; 4] = body[..4].try_into()?;
        let size = body[4..8].try_into()?;
        let size = if big_endian {
            u32::from_be_bytes(size)
        } else {
            u32::from_le_bytes(size)
        } as usize;
        ensure!(
            8 + size <= body.len(),
            "chunk {:?} overruns",
            id.escape_ascii()
        );
        out.push((id, &body[8..8 + size]));
        body = &body[(8 + size + (size & 1)).min(body.len())..];
    }
    Ok(out)
}

struct WavTemplate {
    fmt: Vec<u8>,
    audio: Stream,
}

impl WavTemplate {
    fn parse(file: &[u8]) -> Result<Self> {
        ensure!(file.len() > 12 && &file[..4] == b"RIFF" && &file[8..12] == b"WAVE");
        let chunks = iff_chunks(&file[12..], false)?;
        let find = |id: &[u8; 4]| chunks.iter().find(|c| &c.0 == id).map(|c| c.1);
        let fmt = find(b"fmt ").context("no fmt chunk")?;
        let data = find(b"data").context("no data chunk")?;
        ensure!(fmt.len() >= 16, "short fmt chunk");
        let block_align = usize::from(u16::from_le_bytes([fmt[12], fmt[13]]));
        // Even alignment also keeps the data chunk free of a pad byte.
        let align = block_align.max(2);
        ensure!(data.len() >= align, "empty data chunk");
        Ok(Self {
            fmt: fmt.to_vec(),
            audio: Stream::bytes(data[..data.len() - data.len() % align].to_vec(), align),
        })
    }

    fn build(&self, req: &Request) -> Layout {
        // Taggers append the id3 chunk after the audio, so the tags live in the tail.
        let id3 = super::tags::id3v2(req.tags, req.cover, req.padding);
        let id3_chunk = 8 + id3.len() + (id3.len() & 1);
        let header = 12 + 8 + self.fmt.len() + 8;
        let audio = Audio::split(
            &self.audio,
            req.shape,
            req.target.saturating_sub((header + id3_chunk) as u64),
        );
        let riff_size = (header - 8) as u64 + audio.len() + id3_chunk as u64;

        let mut head = Vec::with_capacity(header + audio.head.len());
        head.extend_from_slice(b"RIFF");
        head.extend_from_slice(&(riff_size as u32).to_le_bytes());
        head.extend_from_slice(b"WAVE");
        head.extend_from_slice(b"fmt ");
        head.extend_from_slice(&(self.fmt.len() as u32).to_le_bytes());
        head.extend_from_slice(&self.fmt);
        head.extend_from_slice(b"data");
        head.extend_from_slice(&(audio.len() as u32).to_le_bytes());
        head.extend_from_slice(&audio.head);

        let mut tail = audio.tail;
        tail.extend_from_slice(b"id3 ");
        tail.extend_from_slice(&(id3.len() as u32).to_le_bytes());
        tail.extend_from_slice(&id3);
        if id3.len() & 1 == 1 {
            tail.push(0);
        }
        Layout {
            head,
            gap: audio.gap,
            tail,
            header_end: header,
        }
    }
}

struct AiffTemplate {
    comm: Vec<u8>,
    frame_bytes: u64,
    audio: Stream,
}

impl AiffTemplate {
    fn parse(file: &[u8]) -> Result<Self> {
        ensure!(file.len() > 12 && &file[..4] == b"FORM" && &file[8..12] == b"AIFF");
        let chunks = iff_chunks(&file[12..], true)?;
        let find = |id: &[u8; 4]| chunks.iter().find(|c| &c.0 == id).map(|c| c.1);
        let comm = find(b"COMM").context("no COMM chunk")?;
        let ssnd = find(b"SSND").context("no SSND chunk")?;
        ensure!(comm.len() >= 18 && ssnd.len() > 8, "short COMM or SSND");
        let channels = u64::from(u16::from_be_bytes([comm[0], comm[1]]));
        let bits = u64::from(u16::from_be_bytes([comm[6], comm[7]]));
        let frame_bytes = channels * bits.div_ceil(8);
        ensure!(frame_bytes > 0, "zero-sized sample frames");
        let offset = u32::from_be_bytes(ssnd[..4].try_into()?) as usize;
        let data = &ssnd[8 + offset..];
        let align = (frame_bytes as usize).max(2);
        Ok(Self {
            comm: comm.to_vec(),
            frame_bytes,
            audio: Stream::bytes(data[..data.len() - data.len() % align].to_vec(), align),
        })
    }

    fn build(&self, req: &Request) -> Layout {
        let id3 = super::tags::id3v2(req.tags, req.cover, req.padding);
        let id3_chunk = 8 + id3.len() + (id3.len() & 1);
        let header = 12 + 8 + self.comm.len() + id3_chunk + 16;
        let audio = Audio::split(
            &self.audio,
            req.shape,
            req.target.saturating_sub(header as u64),
        );
        let form_size = (header - 8) as u64 + audio.len();

        let mut comm = self.comm.clone();
        comm[2..6].copy_from_slice(&((audio.len() / self.frame_bytes) as u32).to_be_bytes());

        let mut head = Vec::with_capacity(header + audio.head.len());
        head.extend_from_slice(b"FORM");
        head.extend_from_slice(&(form_size as u32).to_be_bytes());
        head.extend_from_slice(b"AIFF");
        head.extend_from_slice(b"COMM");
        head.extend_from_slice(&(comm.len() as u32).to_be_bytes());
        head.extend_from_slice(&comm);
        head.extend_from_slice(b"ID3 ");
        head.extend_from_slice(&(id3.len() as u32).to_be_bytes());
        head.extend_from_slice(&id3);
        if id3.len() & 1 == 1 {
            head.push(0);
        }
        head.extend_from_slice(b"SSND");
        head.extend_from_slice(&((audio.len() + 8) as u32).to_be_bytes());
        head.extend_from_slice(&[0; 8]); // offset, block size
        head.extend_from_slice(&audio.head);
        Layout {
            head,
            gap: audio.gap,
            tail: audio.tail,
            header_end: header,
        }
    }
}

struct FlacTemplate {
    streaminfo: [u8; 34],
    total_samples: u64,
    audio: Stream,
}

impl FlacTemplate {
    fn parse(file: &[u8]) -> Result<Self> {
        ensure!(file.starts_with(b"fLaC"), "missing fLaC marker");
        let mut pos = 4;
        let mut streaminfo = None;
        loop {
            ensure!(pos + 4 <= file.len(), "metadata runs past the end");
            let header = file[pos];
            let len = (usize::from(file[pos + 1]) << 16)
                | (usize::from(file[pos + 2]) << 8)
                | usize::from(file[pos + 3]);
            let body = file
                .get(pos + 4..pos + 4 + len)
                .context("metadata block overruns")?;
            if header & 0x7f == 0 {
                streaminfo = Some(<[u8; 34]>::try_from(body).context("STREAMINFO size")?);
            }
            pos += 4 + len;
            if header & 0x80 != 0 {
                break;
            }
        }
        let Some(streaminfo) = streaminfo else {
            bail!("no STREAMINFO")
        };
        let total_samples = (u64::from(streaminfo[13] & 0x0f) << 32)
            | u64::from(u32::from_be_bytes(streaminfo[14..18].try_into()?));
        ensure!(total_samples > 0 && pos < file.len(), "no audio frames");
        Ok(Self {
            streaminfo,
            total_samples,
            audio: Stream::bytes(file[pos..].to_vec(), 1),
        })
    }

    fn build(&self, req: &Request) -> Layout {
        let comments = super::tags::vorbis_comments(req.tags, None);
        let picture = req.cover.map(super::tags::flac_picture);
        let header = 4
            + 4
            + 34
            + 4
            + comments.len()
            + picture.as_ref().map_or(0, |p| 4 + p.len())
            + 4
            + req.padding;
        let audio = Audio::split(
            &self.audio,
            req.shape,
            req.target.saturating_sub(header as u64),
        );

        // Duration follows the payload at the template's compression ratio.
        let samples = (u128::from(audio.len()) * u128::from(self.total_samples)
            / self.audio.len() as u128)
            .clamp(1, (1 << 36) - 1) as u64;
        let mut streaminfo = self.streaminfo;
        streaminfo[13] = (streaminfo[13] & 0xf0) | ((samples >> 32) as u8 & 0x0f);
        streaminfo[14..18].copy_from_slice(&(samples as u32).to_be_bytes());
        // The audio MD5 cannot match a stretched stream; all zero means "not computed".
        streaminfo[18..34].fill(0);

        let mut head = Vec::with_capacity(header + audio.head.len());
        head.extend_from_slice(b"fLaC");
        let mut block = |kind: u8, body: &[u8], last: bool| {
            head.push(kind | if last { 0x80 } else { 0 });
            head.extend_from_slice(&(body.len() as u32).to_be_bytes()[1..]);
            head.extend_from_slice(body);
        };
        block(0, &streaminfo, false);
        block(4, &comments, false);
        if let Some(p) = &picture {
            block(6, p, false);
        }
        block(1, &vec![0; req.padding], true);
        debug_assert_eq!(head.len(), header);
        head.extend_from_slice(&audio.head);
        Layout {
            head,
            gap: audio.gap,
            tail: audio.tail,
            header_end: header,
        }
    }
}
