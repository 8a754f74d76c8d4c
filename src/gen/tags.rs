//! Tag serialisers for the generator: ID3v2.4, Vorbis comments, FLAC PICTURE blocks and
//! MP4 `ilst` items.
//!
//! The generator writes tags itself instead of round-tripping every file through lofty's
//! writer: it must emit hundreds of thousands of files quickly, it must decide exactly where
//! each byte lands (head or tail of a sparse file), and a writer that shares no code with
//! the reader under test makes the parse checks in the tests meaningful.

use super::TrackTags;
use super::cover::Cover;

/// ID3v2 sizes are 28-bit "syncsafe" integers: 7 bits per byte, high bit clear.
fn syncsafe(n: usize) -> [u8; 4] {
    assert!(n < 1 << 28, "ID3v2 size {n} does not fit in 28 bits");
    [
        ((n >> 21) & 0x7f) as u8,
        ((n >> 14) & 0x7f) as u8,
        ((n >> 7) & 0x7f) as u8,
        (n & 0x7f) as u8,
    ]
}

fn id3_frame(out: &mut Vec<u8>, id: &[u8; 4], body: &[u8]) {
    out.extend_from_slice(id);
    out.extend_from_slice(&syncsafe(body.len()));
    out.extend_from_slice(&[0, 0]);
    out.extend_from_slice(body);
}

fn id3_text(out: &mut Vec<u8>, id: &[u8; 4], text: &str) {
    let mut body = Vec::with_capacity(text.len() + 1);
    body.push(3); // UTF-8
    body.extend_from_slice(text.as_bytes());
    id3_frame(out, id, &body);
}

/// A complete ID3v2.4 tag (header, frames, `padding` zero bytes).
pub fn id3v2(tags: &TrackTags, cover: Option<&Cover>, padding: usize) -> Vec<u8> {
    let mut frames = Vec::with_capacity(256 + cover.map_or(0, |c| c.data.len() + 64) + padding);
    id3_text(&mut frames, b"TPE1", &tags.artist);
    id3_text(&mut frames, b"TIT2", &tags.title);
    id3_text(&mut frames, b"TALB", &tags.album);
    id3_text(&mut frames, b"TPE2", &tags.album_artist);
    id3_text(
        &mut frames,
        b"TRCK",
        &format!("{}/{}", tags.track, tags.track_total),
    );
    id3_text(&mut frames, b"TDRC", &tags.year.to_string());
    id3_text(&mut frames, b"TCON", &tags.genre);
    if let Some(cover) = cover {
        let mut body = Vec::with_capacity(cover.data.len() + 32);
        body.push(3);
        body.extend_from_slice(cover.mime.as_bytes());
        body.push(0);
        body.push(3); // front cover
        body.extend_from_slice(b"Cover\0");
        body.extend_from_slice(&cover.data);
        id3_frame(&mut frames, b"APIC", &body);
    }
    frames.resize(frames.len() + padding, 0);

    let mut out = Vec::with_capacity(frames.len() + 10);
    out.extend_from_slice(b"ID3\x04\x00\x00");
    out.extend_from_slice(&syncsafe(frames.len()));
    out.extend_from_slice(&frames);
    out
}

/// A FLAC PICTURE block body (also the payload of Vorbis `METADATA_BLOCK_PICTURE`).
pub fn flac_picture(cover: &Cover) -> Vec<u8> {
    let desc = b"Cover";
    let mut out = Vec::with_capacity(cover.data.len() + 64);
    out.extend_from_slice(&3u32.to_be_bytes()); // front cover
    out.extend_from_slice(&(cover.mime.len() as u32).to_be_bytes());
    out.extend_from_slice(cover.mime.as_bytes());
    out.extend_from_slice(&(desc.len() as u32).to_be_bytes());
    out.extend_from_slice(desc);
    out.extend_from_slice(&cover.width.to_be_bytes());
    out.extend_from_slice(&cover.height.to_be_bytes());
    out.extend_from_slice(&24u32.to_be_bytes());
    out.extend_from_slice(&0u32.to_be_bytes());
    out.extend_from_slice(&(cover.data.len() as u32).to_be_bytes());
    out.extend_from_slice(&cover.data);
    out
}

/// Vorbis comment structure (vendor + `KEY=value` list), without any codec framing.
/// Ogg streams carry the picture as base64 `METADATA_BLOCK_PICTURE`; FLAC uses a separate
/// PICTURE block, so `picture_comment` is only set for Ogg.
pub fn vorbis_comments(tags: &TrackTags, picture_comment: Option<&Cover>) -> Vec<u8> {
    let track = tags.track.to_string();
    let total = tags.track_total.to_string();
    let year = tags.year.to_string();
    let picture = picture_comment.map(|c| base64(&flac_picture(c)));
    let mut fields: Vec<(&str, &str)> = vec![
        ("ARTIST", &tags.artist),
        ("TITLE", &tags.title),
        ("ALBUM", &tags.album),
        ("ALBUMARTIST", &tags.album_artist),
        ("TRACKNUMBER", &track),
        ("TRACKTOTAL", &total),
        ("DATE", &year),
        ("GENRE", &tags.genre),
    ];
    if let Some(p) = &picture {
        fields.push(("METADATA_BLOCK_PICTURE", p));
    }

    let vendor = b"musicdex gen-library";
    let mut out = Vec::with_capacity(256 + picture.as_ref().map_or(0, String::len));
    out.extend_from_slice(&(vendor.len() as u32).to_le_bytes());
    out.extend_from_slice(vendor);
    out.extend_from_slice(&(fields.len() as u32).to_le_bytes());
    for (k, v) in fields {
        out.extend_from_slice(&((k.len() + 1 + v.len()) as u32).to_le_bytes());
        out.extend_from_slice(k.as_bytes());
        out.push(b'=');
        out.extend_from_slice(v.as_bytes());
    }
    out
}

fn base64(data: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(data.len().div_ceil(3) * 4);
    for chunk in data.chunks(3) {
        let b = [
            chunk[0],
            chunk.get(1).copied().unwrap_or(0),
            chunk.get(2).copied().unwrap_or(0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(ALPHABET[((n >> (18 - 6 * i)) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

fn mp4_atom(out: &mut Vec<u8>, name: &[u8; 4], body: &[u8]) {
    out.extend_from_slice(&((body.len() + 8) as u32).to_be_bytes());
    out.extend_from_slice(name);
    out.extend_from_slice(body);
}

/// One `ilst` item: `name` wrapping a `data` atom of the given well-known type.
fn ilst_item(out: &mut Vec<u8>, name: &[u8; 4], data_type: u32, payload: &[u8]) {
    let mut data = Vec::with_capacity(payload.len() + 8);
    data.extend_from_slice(&data_type.to_be_bytes());
    data.extend_from_slice(&0u32.to_be_bytes()); // locale
    data.extend_from_slice(payload);
    let mut item = Vec::with_capacity(data.len() + 8);
    mp4_atom(&mut item, b"data", &data);
    mp4_atom(out, name, &item);
}

/// `udta` → `meta` → (`hdlr`, `ilst`): the iTunes-style metadata box that goes in `moov`.
pub fn mp4_udta(tags: &TrackTags, cover: Option<&Cover>) -> Vec<u8> {
    const UTF8: u32 = 1;
    let mut ilst = Vec::with_capacity(256 + cover.map_or(0, |c| c.data.len() + 24));
    ilst_item(&mut ilst, b"\xa9ART", UTF8, tags.artist.as_bytes());
    ilst_item(&mut ilst, b"\xa9nam", UTF8, tags.title.as_bytes());
    ilst_item(&mut ilst, b"\xa9alb", UTF8, tags.album.as_bytes());
    ilst_item(&mut ilst, b"aART", UTF8, tags.album_artist.as_bytes());
    let mut trkn = [0u8; 8];
    trkn[2..4].copy_from_slice(&(tags.track as u16).to_be_bytes());
    trkn[4..6].copy_from_slice(&(tags.track_total as u16).to_be_bytes());
    ilst_item(&mut ilst, b"trkn", 0, &trkn);
    ilst_item(
        &mut ilst,
        b"\xa9day",
        UTF8,
        tags.year.to_string().as_bytes(),
    );
    ilst_item(&mut ilst, b"\xa9gen", UTF8, tags.genre.as_bytes());
    if let Some(cover) = cover {
        let data_type = if cover.mime == "image/png" { 14 } else { 13 };
        ilst_item(&mut ilst, b"covr", data_type, &cover.data);
    }

    let mut hdlr = Vec::with_capacity(25);
    hdlr.extend_from_slice(&[0; 8]); // version/flags, pre_defined
    hdlr.extend_from_slice(b"mdirappl");
    hdlr.extend_from_slice(&[0; 9]); // reserved, empty name
    let mut meta = Vec::with_capacity(ilst.len() + 64);
    meta.extend_from_slice(&[0; 4]); // full box version/flags
    mp4_atom(&mut meta, b"hdlr", &hdlr);
    mp4_atom(&mut meta, b"ilst", &ilst);
    let mut udta_body = Vec::with_capacity(meta.len() + 8);
    mp4_atom(&mut udta_body, b"meta", &meta);
    let mut udta = Vec::with_capacity(udta_body.len() + 8);
    mp4_atom(&mut udta, b"udta", &udta_body);
    udta
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_matches_rfc4648_vectors() {
        for (input, want) in [
            ("", ""),
            ("f", "Zg=="),
            ("fo", "Zm8="),
            ("foo", "Zm9v"),
            ("foob", "Zm9vYg=="),
            ("fooba", "Zm9vYmE="),
            ("foobar", "Zm9vYmFy"),
        ] {
            assert_eq!(base64(input.as_bytes()), want);
        }
    }

    #[test]
    fn syncsafe_uses_seven_bits_per_byte() {
        assert_eq!(syncsafe(0x7f), [0, 0, 0, 0x7f]);
        assert_eq!(syncsafe(0x80), [0, 0, 1, 0]);
        assert_eq!(syncsafe(257), [0, 0, 2, 1]);
    }
}
