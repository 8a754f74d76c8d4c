//! Cover art of a chosen size that is still a valid, decodable image.
//!
//! A real small JPEG or PNG (from `fixtures/templates/`) is grown to the wanted size with
//! seeded random bytes inside segments every decoder skips: JPEG `COM` segments and a
//! private ancillary PNG chunk. Tag readers see a genuine picture of realistic byte size,
//! and the random payload keeps covers from compressing or deduplicating unrealistically.

use anyhow::{Context, Result, bail, ensure};

const JPEG: &[u8] = include_bytes!("../../fixtures/templates/cover.jpg");
const PNG: &[u8] = include_bytes!("../../fixtures/templates/cover.png");

/// An encoded picture ready to embed in a tag.
#[derive(Clone, Debug)]
pub struct Cover {
    pub mime: &'static str,
    pub width: u32,
    pub height: u32,
    pub data: Vec<u8>,
}

/// Which real image a cover is built from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum CoverKind {
    Jpeg,
    Png,
}

/// Parsed once: where padding can be inserted and the image dimensions.
pub struct CoverTemplates {
    jpeg_insert_at: usize,
    jpeg_dims: (u32, u32),
    png_dims: (u32, u32),
}

impl CoverTemplates {
    pub fn load() -> Result<Self> {
        let (jpeg_insert_at, jpeg_dims) = scan_jpeg(JPEG).context("cover.jpg template")?;
        ensure!(
            PNG.len() > 33 && &PNG[..8] == b"\x89PNG\r\n\x1a\n" && &PNG[12..16] == b"IHDR",
            "cover.png template is not a PNG starting with IHDR"
        );
        let png_dims = (
            u32::from_be_bytes(PNG[16..20].try_into()?),
            u32::from_be_bytes(PNG[20..24].try_into()?),
        );
        Ok(Self {
            jpeg_insert_at,
            jpeg_dims,
            png_dims,
        })
    }

    /// A cover of about `size` bytes (never smaller than the template image).
    pub fn build(&self, kind: CoverKind, size: usize, rng: &mut fastrand::Rng) -> Cover {
        match kind {
            CoverKind::Jpeg => self.jpeg(size, rng),
            CoverKind::Png => self.png(size, rng),
        }
    }

    fn jpeg(&self, size: usize, rng: &mut fastrand::Rng) -> Cover {
        const MAX_SEGMENT: usize = 65533;
        let mut data = Vec::with_capacity(size.max(JPEG.len()) + 64);
        data.extend_from_slice(&JPEG[..self.jpeg_insert_at]);
        let mut pad = size.saturating_sub(JPEG.len());
        while pad > 4 {
            let n = (pad - 4).min(MAX_SEGMENT);
            data.extend_from_slice(&[0xff, 0xfe]);
            data.extend_from_slice(&((n + 2) as u16).to_be_bytes());
            let start = data.len();
            data.resize(start + n, 0);
            rng.fill(&mut data[start..]);
            pad -= n + 4;
        }
        data.extend_from_slice(&JPEG[self.jpeg_insert_at..]);
        Cover {
            mime: "image/jpeg",
            width: self.jpeg_dims.0,
            height: self.jpeg_dims.1,
            data,
        }
    }

    fn png(&self, size: usize, rng: &mut fastrand::Rng) -> Cover {
        // Right after IHDR (8 signature + 25 chunk bytes).
        const AFTER_IHDR: usize = 33;
        let mut data = Vec::with_capacity(size.max(PNG.len()) + 16);
        data.extend_from_slice(&PNG[..AFTER_IHDR]);
        let pad = size.saturating_sub(PNG.len());
        if pad > 12 {
            let n = pad - 12;
            data.extend_from_slice(&(n as u32).to_be_bytes());
            let type_at = data.len();
            // Ancillary, private, reserved-bit clear, safe to copy: decoders ignore it.
            data.extend_from_slice(b"mdPp");
            data.resize(type_at + 4 + n, 0);
            rng.fill(&mut data[type_at + 4..]);
            let mut crc = flate2::Crc::new();
            crc.update(&data[type_at..]);
            data.extend_from_slice(&crc.sum().to_be_bytes());
        }
        data.extend_from_slice(&PNG[AFTER_IHDR..]);
        Cover {
            mime: "image/png",
            width: self.png_dims.0,
            height: self.png_dims.1,
            data,
        }
    }
}

/// Returns the offset just past SOI and any APPn segments (where JFIF expects other
/// segments to start) and the frame dimensions from the SOF segment.
fn scan_jpeg(jpeg: &[u8]) -> Result<(usize, (u32, u32))> {
    ensure!(jpeg.starts_with(&[0xff, 0xd8]), "missing SOI");
    let mut pos = 2;
    let mut insert_at = None;
    while pos + 4 <= jpeg.len() {
        ensure!(jpeg[pos] == 0xff, "segment marker expected at {pos}");
        let marker = jpeg[pos + 1];
        let len = usize::from(u16::from_be_bytes([jpeg[pos + 2], jpeg[pos + 3]]));
        if !(0xe0..=0xef).contains(&marker) && insert_at.is_none() {
            insert_at = Some(pos);
        }
        if matches!(marker, 0xc0..=0xc3) {
            ensure!(pos + 9 <= jpeg.len(), "short SOF segment");
            let height = u32::from(u16::from_be_bytes([jpeg[pos + 5], jpeg[pos + 6]]));
            let width = u32::from(u16::from_be_bytes([jpeg[pos + 7], jpeg[pos + 8]]));
            return Ok((insert_at.unwrap_or(2), (width, height)));
        }
        pos += 2 + len;
    }
    bail!("no SOF segment")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn covers_reach_the_requested_size_and_keep_their_structure() {
        let t = CoverTemplates::load().unwrap();
        let mut rng = fastrand::Rng::with_seed(1);
        for size in [1000, 50_000, 500_000] {
            let j = t.build(CoverKind::Jpeg, size, &mut rng);
            assert!(
                j.data.len().abs_diff(size.max(JPEG.len())) <= 4,
                "{}",
                j.data.len()
            );
            assert!(j.data.starts_with(&[0xff, 0xd8]) && j.data.ends_with(&[0xff, 0xd9]));
            let p = t.build(CoverKind::Png, size, &mut rng);
            assert!(
                p.data.len().abs_diff(size.max(PNG.len())) <= 12,
                "{}",
                p.data.len()
            );
            assert!(p.data.ends_with(&PNG[PNG.len() - 12..]), "IEND stays last");
        }
        assert_eq!((t.png_dims.0, t.png_dims.1), (64, 64));
        assert_eq!((t.jpeg_dims.0, t.jpeg_dims.1), (200, 200));
    }
}
