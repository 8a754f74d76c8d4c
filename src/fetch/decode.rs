//! Content-Encoding and charset decoding of response bodies.

use std::io::Read;

use encoding_rs::Encoding;

#[derive(Debug, PartialEq, Eq)]
pub enum DecodeError {
    TooLarge,
    Corrupt(String),
    UnsupportedEncoding(String),
}

/// Undoes `Content-Encoding` (gzip, deflate, br; stacked codings in reverse
/// order), refusing to produce more than `cap` bytes so a small compressed
/// body cannot expand into a memory bomb.
pub fn decompress(
    body: Vec<u8>,
    content_encoding: &str,
    cap: usize,
) -> Result<Vec<u8>, DecodeError> {
    let mut data = body;
    let codings: Vec<String> = content_encoding
        .split(',')
        .map(|c| c.trim().to_ascii_lowercase())
        .filter(|c| !c.is_empty() && c != "identity")
        .collect();
    for coding in codings.iter().rev() {
        data = match coding.as_str() {
            "gzip" | "x-gzip" => read_capped(flate2::read::MultiGzDecoder::new(&data[..]), cap)?,
            "deflate" => {
                // Servers disagree on whether "deflate" means zlib-wrapped or raw.
                match read_capped(flate2::read::ZlibDecoder::new(&data[..]), cap) {
                    Ok(d) => d,
                    Err(DecodeError::TooLarge) => return Err(DecodeError::TooLarge),
                    Err(_) => read_capped(flate2::read::DeflateDecoder::new(&data[..]), cap)?,
                }
            }
            "br" => read_capped(
                brotli_decompressor::Decompressor::new(&data[..], 16 * 1024),
                cap,
            )?,
            other => return Err(DecodeError::UnsupportedEncoding(other.to_string())),
        };
    }
    if data.len() > cap {
        return Err(DecodeError::TooLarge);
    }
    Ok(data)
}

fn read_capped(r: impl Read, cap: usize) -> Result<Vec<u8>, DecodeError> {
    let mut out = Vec::new();
    r.take(cap as u64 + 1)
        .read_to_end(&mut out)
        .map_err(|e| DecodeError::Corrupt(e.to_string()))?;
    if out.len() > cap {
        return Err(DecodeError::TooLarge);
    }
    Ok(out)
}

/// The `charset` parameter of a Content-Type header value.
pub fn charset_param(content_type: &str) -> Option<&str> {
    content_type.split(';').skip(1).find_map(|p| {
        let (k, v) = p.split_once('=')?;
        k.trim()
            .eq_ignore_ascii_case("charset")
            .then(|| v.trim().trim_matches(['"', '\'']))
    })
}

/// The charset declared inside the document: `<meta charset>`, the
/// `http-equiv` form, or an XML declaration, looked for in the first 1024
/// bytes as the HTML prescan does.
pub fn sniff_declared_charset(bytes: &[u8]) -> Option<&'static Encoding> {
    let head = &bytes[..bytes.len().min(1024)];
    let text: String = head
        .iter()
        .map(|&b| (b as char).to_ascii_lowercase())
        .collect();
    let mut search = 0;
    while let Some(at) = text[search..].find("charset") {
        let start = search + at + "charset".len();
        search = start;
        let rest = text[start..].trim_start();
        let Some(rest) = rest.strip_prefix('=') else {
            continue;
        };
        let rest = rest.trim_start().trim_start_matches(['"', '\'']);
        let label: String = rest
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || "-_:.".contains(*c))
            .collect();
        if let Some(enc) = Encoding::for_label(label.as_bytes()) {
            return Some(enc);
        }
    }
    if let Some(at) = text.find("<?xml")
        && let Some(enc_at) = text[at..].find("encoding=")
    {
        let rest = text[at + enc_at + "encoding=".len()..].trim_start_matches(['"', '\'']);
        let label: String = rest.chars().take_while(|c| !"\"' ?".contains(*c)).collect();
        return Encoding::for_label(label.as_bytes());
    }
    None
}

/// Decodes a body to text: a BOM wins, then the header's charset, then the
/// document's own declaration, then UTF-8. Invalid sequences become U+FFFD
/// rather than failing the page.
pub fn to_text(bytes: &[u8], content_type: &str) -> String {
    let enc = charset_param(content_type)
        .and_then(|l| Encoding::for_label(l.as_bytes()))
        .or_else(|| sniff_declared_charset(bytes))
        .unwrap_or(encoding_rs::UTF_8);
    // A meta tag inside a UTF-16 document is meaningless once decoded as ASCII;
    // encoding_rs maps such labels to UTF-8 for us (per the HTML spec).
    let (text, _, _) = enc.decode(bytes);
    text.into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    #[test]
    fn gzip_and_deflate_round_trip() {
        let src = b"<html>hello hello hello</html>".repeat(50);
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        gz.write_all(&src).unwrap();
        let gz = gz.finish().unwrap();
        assert_eq!(decompress(gz.clone(), "gzip", 1 << 20).unwrap(), src);
        assert_eq!(decompress(gz, "gzip", 100), Err(DecodeError::TooLarge));
        let mut z = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::default());
        z.write_all(&src).unwrap();
        assert_eq!(
            decompress(z.finish().unwrap(), "deflate", 1 << 20).unwrap(),
            src
        );
        let mut raw =
            flate2::write::DeflateEncoder::new(Vec::new(), flate2::Compression::default());
        raw.write_all(&src).unwrap();
        assert_eq!(
            decompress(raw.finish().unwrap(), "deflate", 1 << 20).unwrap(),
            src
        );
        assert!(matches!(
            decompress(b"nope".to_vec(), "gzip", 100),
            Err(DecodeError::Corrupt(_))
        ));
        assert!(matches!(
            decompress(b"x".to_vec(), "zstd", 100),
            Err(DecodeError::UnsupportedEncoding(_))
        ));
        assert_eq!(
            decompress(b"plain".to_vec(), "identity", 100).unwrap(),
            b"plain"
        );
    }

    #[test]
    fn charset_precedence() {
        let latin1 = b"<html><head><meta charset=\"iso-8859-1\"></head><body>caf\xe9</body></html>";
        assert!(to_text(latin1, "text/html").contains("café"));
        // The header wins over the meta tag.
        let win = b"<meta charset=utf-8><p>\x93quoted\x94</p>";
        assert!(to_text(win, "text/html; charset=windows-1252").contains("\u{201c}quoted\u{201d}"));
        let equiv = b"<meta http-equiv=\"Content-Type\" content=\"text/html; charset=windows-1251\">\xcf\xf0\xe8";
        assert!(to_text(equiv, "text/html").contains("При"));
        // Invalid UTF-8 is replaced, not fatal.
        let bad = b"<p>ok \xff\xfe bad</p>";
        let t = to_text(bad, "text/html; charset=utf-8");
        assert!(t.contains("ok") && t.contains('\u{fffd}'));
        let xml = b"<?xml version=\"1.0\" encoding=\"ISO-8859-1\"?><rss>\xe9</rss>";
        assert!(to_text(xml, "application/xml").contains('é'));
        assert_eq!(charset_param("text/html; Charset=\"UTF-8\""), Some("UTF-8"));
    }
}
