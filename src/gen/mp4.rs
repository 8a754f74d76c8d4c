//! MP4/M4A: the template's `moov` is rebuilt per file with a new `udta` (iTunes `ilst`),
//! durations scaled to the apparent payload, and `stco`/`co64` chunk offsets moved to
//! wherever `mdat` lands. `mdat`'s size covers the hole of a sparse file.

use anyhow::{Context, Result, ensure};

use super::formats::{Audio, Layout, Request};
use super::stream::Stream;

#[derive(Clone, Copy)]
enum Patch {
    /// A duration in the movie (mvhd) timescale.
    Movie { at: usize, wide: bool },
    /// A duration in the media (mdhd) timescale.
    Media { at: usize, wide: bool },
    /// A chunk offset table: entries start at `at`.
    Offsets { at: usize, count: usize, wide: bool },
}

pub struct Mp4Template {
    ftyp: Vec<u8>,
    /// `moov` children except `udta`, in template order.
    children: Vec<u8>,
    patches: Vec<Patch>,
    /// Where the template's mdat payload started: chunk offsets are relative to it.
    mdat_start: u64,
    audio: Stream,
}

fn atoms(mut data: &[u8]) -> Result<Vec<([u8; 4], usize, usize)>> {
    // (name, header length, total length) of each atom in `data`.
    let mut out = Vec::new();
    let mut pos = 0;
    while data.len() >= 8 {
        let size = u32::from_be_bytes(data[..4].try_into()?) as usize;
        let name: [u8; 4] = data[4..8].try_into()?;
        let (header, size) = match size {
            0 => (8, data.len()),
            1 => (
                16,
                u64::from_be_bytes(data.get(8..16).context("short atom")?.try_into()?) as usize,
            ),
            n => (8, n),
        };
        ensure!(
            size >= header && size <= data.len(),
            "atom {} overruns at {pos}",
            name.escape_ascii()
        );
        out.push((name, header, size));
        data = &data[size..];
        pos += size;
    }
    Ok(out)
}

fn read_uint(b: &[u8], wide: bool) -> u64 {
    if wide {
        u64::from_be_bytes(b[..8].try_into().expect("8 bytes"))
    } else {
        u64::from(u32::from_be_bytes(b[..4].try_into().expect("4 bytes")))
    }
}

fn write_uint(b: &mut [u8], wide: bool, v: u64) {
    if wide {
        b[..8].copy_from_slice(&v.to_be_bytes());
    } else {
        b[..4].copy_from_slice(&(v.min(u64::from(u32::MAX)) as u32).to_be_bytes());
    }
}

impl Mp4Template {
    pub fn parse(file: &[u8]) -> Result<Self> {
        let mut ftyp = None;
        let mut moov = None;
        let mut mdat = None;
        let mut pos = 0;
        for (name, header, size) in atoms(file)? {
            match &name {
                b"ftyp" => ftyp = Some(&file[pos..pos + size]),
                b"moov" => moov = Some(&file[pos + header..pos + size]),
                b"mdat" => mdat = Some((pos + header, &file[pos + header..pos + size])),
                _ => {}
            }
            pos += size;
        }
        let ftyp = ftyp.context("no ftyp")?.to_vec();
        let moov = moov.context("no moov")?;
        let (mdat_start, mdat) = mdat.context("no mdat")?;
        ensure!(!mdat.is_empty(), "empty mdat");

        let mut children = Vec::with_capacity(moov.len());
        let mut patches = Vec::new();
        let mut pos = 0;
        for (name, _, size) in atoms(moov)? {
            if &name != b"udta" {
                let base = children.len();
                children.extend_from_slice(&moov[pos..pos + size]);
                scan(&children[base..], base, &mut patches)?;
            }
            pos += size;
        }
        let movie = patches
            .iter()
            .find_map(|p| match *p {
                Patch::Movie { at, wide } => Some(read_uint(&children[at..], wide)),
                _ => None,
            })
            .context("no mvhd")?;
        let media = patches
            .iter()
            .find_map(|p| match *p {
                Patch::Media { at, wide } => Some(read_uint(&children[at..], wide)),
                _ => None,
            })
            .context("no mdhd")?;
        ensure!(movie > 0 && media > 0, "zero durations");
        Ok(Self {
            ftyp,
            children,
            patches,
            mdat_start: mdat_start as u64,
            audio: Stream::bytes(mdat.to_vec(), 1),
        })
    }

    pub fn build(&self, req: &Request) -> Layout {
        let udta = super::tags::mp4_udta(req.tags, req.cover);
        let moov_len = 8 + self.children.len() + udta.len();
        let header = self.ftyp.len() + moov_len + 8;
        let audio = Audio::split(
            &self.audio,
            req.shape,
            req.target.saturating_sub(header as u64),
        );
        let mdat_start = if req.moov_at_end {
            self.ftyp.len() + 8
        } else {
            self.ftyp.len() + moov_len + 8
        } as u64;

        let scale = |d: u64| {
            (u128::from(d) * u128::from(audio.len()) / self.audio.len() as u128).max(1) as u64
        };
        let mut children = self.children.clone();
        for patch in &self.patches {
            match *patch {
                Patch::Movie { at, wide } | Patch::Media { at, wide } => {
                    let d = read_uint(&children[at..], wide);
                    write_uint(&mut children[at..], wide, scale(d));
                }
                Patch::Offsets { at, count, wide } => {
                    let step = if wide { 8 } else { 4 };
                    for i in 0..count {
                        let slot = &mut children[at + i * step..];
                        let off = read_uint(slot, wide);
                        write_uint(slot, wide, off - self.mdat_start + mdat_start);
                    }
                }
            }
        }
        let mut moov = Vec::with_capacity(moov_len);
        moov.extend_from_slice(&(moov_len as u32).to_be_bytes());
        moov.extend_from_slice(b"moov");
        moov.extend_from_slice(&children);
        moov.extend_from_slice(&udta);

        let mut head = Vec::with_capacity(header + audio.head.len());
        head.extend_from_slice(&self.ftyp);
        if !req.moov_at_end {
            head.extend_from_slice(&moov);
        }
        head.extend_from_slice(&((audio.len() + 8) as u32).to_be_bytes());
        head.extend_from_slice(b"mdat");
        let header_end = head.len();
        head.extend_from_slice(&audio.head);
        let mut tail = audio.tail;
        if req.moov_at_end {
            tail.extend_from_slice(&moov);
        }
        Layout {
            head,
            gap: audio.gap,
            tail,
            header_end,
        }
    }
}

/// Records the fields of `atom` (at `base` in the children blob) that depend on the payload
/// length or position.
fn scan(atom: &[u8], base: usize, patches: &mut Vec<Patch>) -> Result<()> {
    let (name, header, size) = *atoms(atom)?.first().context("empty atom")?;
    let body = &atom[header..size];
    let at = base + header;
    let v1 = body.first() == Some(&1);
    match &name {
        b"trak" | b"mdia" | b"minf" | b"stbl" | b"edts" => {
            let mut pos = 0;
            for (_, _, child) in atoms(body)? {
                scan(&body[pos..pos + child], at + pos, patches)?;
                pos += child;
            }
        }
        // version/flags, creation, modification, timescale, duration
        b"mvhd" => patches.push(Patch::Movie {
            at: at + if v1 { 24 } else { 16 },
            wide: v1,
        }),
        // version/flags, creation, modification, track id, reserved, duration
        b"tkhd" => patches.push(Patch::Movie {
            at: at + if v1 { 28 } else { 20 },
            wide: v1,
        }),
        b"mdhd" => patches.push(Patch::Media {
            at: at + if v1 { 24 } else { 16 },
            wide: v1,
        }),
        b"elst" => {
            let count = read_uint(&body[4..], false) as usize;
            let entry = if v1 { 20 } else { 12 };
            for i in 0..count {
                patches.push(Patch::Movie {
                    at: at + 8 + i * entry,
                    wide: v1,
                });
            }
        }
        b"stco" | b"co64" => patches.push(Patch::Offsets {
            at: at + 8,
            count: read_uint(&body[4..], false) as usize,
            wide: &name == b"co64",
        }),
        _ => {}
    }
    Ok(())
}
