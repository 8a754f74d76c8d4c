//! Tag and audio-property extraction with lofty. The reference engine (reading from the
//! path) always goes through [`parse`]; the faster engines (reading from buffers already
//! in memory) first ask [`super::fast`], whose readers answer only where they give exactly
//! what [`parse`] gives (a differential contract its tests hold), and come here for
//! everything else.

use std::cell::Cell;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::Path;
use std::sync::Once;

use lofty::config::{ParseOptions, ParsingMode};
use lofty::file::{AudioFile, FileType, TaggedFile, TaggedFileExt};
use lofty::prelude::{Accessor, ItemKey};
use lofty::probe::Probe;
use lofty::tag::Tag;
use serde::Serialize;

use super::budget::{Budgeted, Source};

/// What musicdex keeps of a file's tags and audio properties.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct TagInfo {
    pub artist: Option<String>,
    pub title: Option<String>,
    pub album: Option<String>,
    pub album_artist: Option<String>,
    pub track_number: Option<u32>,
    pub year: Option<i32>,
    pub genre: Option<String>,
    /// Seconds, from the audio properties (not from a tag).
    pub duration: Option<f64>,
    /// kbit/s of the audio stream.
    pub bitrate: Option<u32>,
    pub sample_rate: Option<u32>,
    pub channels: Option<u8>,
}

thread_local! {
    static IN_PARSER: Cell<bool> = const { Cell::new(false) };
}

/// A panic inside lofty is caught and recorded as the file's error; the default hook
/// would still print a backtrace banner per corrupt file, so silence it for those only.
/// A process-wide hook: the binary installs it (`main`), never the library.
pub fn install_quiet_panic_hook() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if !IN_PARSER.with(Cell::get) {
                previous(info);
            }
        }));
    });
}

/// Run `f`, catching a panic without the default hook's banner (see
/// [`install_quiet_panic_hook`]).
pub(crate) fn quietly<T>(f: impl FnOnce() -> T) -> std::thread::Result<T> {
    IN_PARSER.with(|c| c.set(true));
    let result = catch_unwind(AssertUnwindSafe(f));
    IN_PARSER.with(|c| c.set(false));
    result
}

/// Parse tags and properties from a budgeted view of the file at `path`. The
/// extension gives the first guess of the format and the content overrides it, so a
/// mislabelled file (an Opus stream named .ogg) still parses.
///
/// A malformed file is tried again leniently (lofty's relaxed mode drops the bad field,
/// e.g. an unparseable date, instead of the whole file), then for its tags alone (a file
/// with no audio track still has a title). The error is the text recorded in the row's
/// `error` column; it is `Err` only when not even the tags could be read.
///
/// The reader is rewound before each attempt, and each attempt has the whole budget; one
/// that exceeds it ends the parse with the budget's error, whatever lofty made of it.
/// A view that holds only part of the file
/// must check after this returns, success or not, whether lofty asked for bytes it did
/// not hold: a lenient retry can swallow that error.
pub fn parse<S: Source>(reader: &mut Budgeted<S>, path: &Path) -> Result<Parsed, String> {
    parse_partial(reader, path, &|| false)
}

/// [`parse`] for a view that may lack bytes: once `missed()` says the view was asked for
/// bytes it does not hold, the lenient retries are skipped, since their answer would not
/// be trusted anyway and each one costs a copy of everything read so far.
pub fn parse_partial<S: Source>(
    reader: &mut Budgeted<S>,
    path: &Path,
    missed: &dyn Fn() -> bool,
) -> Result<Parsed, String> {
    match quietly(|| parse_with_retries(reader, path, missed)) {
        Ok(r) => r,
        // A panic on the way out of a read the budget refused is the budget's doing.
        Err(_) if reader.exceeded().is_some() => {
            Err(reader.exceeded().map(|e| e.message()).unwrap_or_default())
        }
        Err(payload) => {
            let msg = payload
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| payload.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "unknown panic".into());
            Err(format!("tags: parser panicked: {msg}"))
        }
    }
}

/// Tags that were read, and why the audio properties were not, if they were not.
#[derive(Clone, Debug, PartialEq)]
pub struct Parsed {
    pub info: TagInfo,
    pub error: Option<String>,
}

fn parse_with_retries<S: Source>(
    reader: &mut Budgeted<S>,
    path: &Path,
    missed: &dyn Fn() -> bool,
) -> Result<Parsed, String> {
    // Pictures are never stored, so lofty is told to skip them: it then seeks over the
    // art instead of copying it, and a head-and-tail view rarely needs the middle.
    let strict = ParseOptions::new().read_cover_art(false);
    let first = match parse_once(reader, path, strict) {
        Ok(info) => return Ok(Parsed { info, error: None }),
        Err(e) => e,
    };
    // A lenient retry would only hit the same limit again.
    if missed() || reader.exceeded().is_some() {
        return Err(first);
    }
    let mut relaxed = strict;
    relaxed.parsing_mode(ParsingMode::Relaxed);
    if let Ok(info) = parse_once(reader, path, relaxed) {
        return Ok(Parsed { info, error: None });
    }
    if let Some(e) = reader.exceeded() {
        return Err(e.message());
    }
    if missed() {
        return Err(first);
    }
    match parse_once(reader, path, relaxed.read_properties(false)) {
        Ok(mut info) => {
            // Properties were not read: say so rather than report a zero duration.
            info.duration = None;
            info.bitrate = None;
            info.sample_rate = None;
            info.channels = None;
            if info == TagInfo::default() {
                return Err(first);
            }
            Ok(Parsed {
                info,
                error: Some(first),
            })
        }
        Err(_) => Err(reader.exceeded().map_or(first, |e| e.message())),
    }
}

fn parse_once<S: Source>(
    reader: &mut Budgeted<S>,
    path: &Path,
    options: ParseOptions,
) -> Result<TagInfo, String> {
    reader.restart();
    let result = (|| {
        let mut probe = Probe::new(&mut *reader).options(options);
        if let Some(ft) = FileType::from_path(path) {
            probe = probe.set_file_type(ft);
        }
        let probe = probe.guess_file_type().map_err(|e| format!("tags: {e}"))?;
        probe
            .read()
            .map(|tf| from_tagged_file(&tf))
            .map_err(|e| format!("tags: {}", error_chain(&e)))
    })();
    match reader.exceeded() {
        Some(e) => Err(e.message()),
        None => result,
    }
}

/// lofty's top-level error says only "failed to parse X file"; the cause is in the chain.
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        let part = s.to_string();
        if !text.ends_with(&part) {
            text.push_str(": ");
            text.push_str(&part);
        }
        source = s.source();
    }
    text
}

fn from_tagged_file(tf: &TaggedFile) -> TagInfo {
    // The primary tag wins field by field; the others (ID3v1 behind ID3v2, APE, ...)
    // fill what it lacks, as mutagen does for ID3v1.
    let mut tags: Vec<&Tag> = Vec::new();
    if let Some(p) = tf.primary_tag() {
        tags.push(p);
    }
    for t in tf.tags() {
        if !tags.iter().any(|p| std::ptr::eq(*p, t)) {
            tags.push(t);
        }
    }
    let text = |f: &dyn Fn(&Tag) -> Option<String>| {
        tags.iter().find_map(|t| {
            f(t).map(|s| s.trim_end_matches('\0').to_string())
                .filter(|s| !s.trim().is_empty())
        })
    };
    let props = tf.properties();
    let duration = props.duration().as_secs_f64();
    TagInfo {
        artist: text(&|t| t.artist().map(|c| c.into_owned())),
        title: text(&|t| t.title().map(|c| c.into_owned())),
        album: text(&|t| t.album().map(|c| c.into_owned())),
        album_artist: text(&|t| t.get_string(ItemKey::AlbumArtist).map(str::to_string)),
        genre: text(&|t| t.genre().map(|c| c.into_owned())),
        track_number: tags.iter().find_map(|t| t.track()),
        year: tags.iter().find_map(|t| year_of(t)),
        duration: Some(duration),
        bitrate: props.audio_bitrate().or(props.overall_bitrate()),
        sample_rate: props.sample_rate(),
        channels: props.channels(),
    }
}

fn year_of(tag: &Tag) -> Option<i32> {
    if let Some(d) = tag.date() {
        return Some(d.year as i32);
    }
    [
        ItemKey::Year,
        ItemKey::RecordingDate,
        ItemKey::ReleaseDate,
        ItemKey::OriginalReleaseDate,
    ]
    .into_iter()
    .find_map(|k| tag.get_string(k).and_then(leading_year))
}

/// The first standalone run of exactly four digits: "1987-03-31", "1987/03/31",
/// "Oct 3, 1995" → the year; "87" or "12345" is not one.
pub(crate) fn leading_year(s: &str) -> Option<i32> {
    let b = s.as_bytes();
    let mut i = 0;
    while i < b.len() {
        if b[i].is_ascii_digit() {
            let start = i;
            while i < b.len() && b[i].is_ascii_digit() {
                i += 1;
            }
            if i - start == 4 {
                return s[start..i].parse().ok();
            }
        } else {
            i += 1;
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn years() {
        assert_eq!(leading_year("1987-03-31"), Some(1987));
        assert_eq!(leading_year(" 2001"), Some(2001));
        assert_eq!(leading_year("87"), None);
        assert_eq!(leading_year("abcd"), None);
        assert_eq!(leading_year("Oct 3, 1995"), Some(1995));
        assert_eq!(leading_year("12345"), None);
    }

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        let junk = vec![0x5au8; 4096];
        let r = parse(
            &mut Budgeted::new(&junk[..], 4096, Default::default()),
            Path::new("x.mp3"),
        );
        assert!(r.unwrap_err().starts_with("tags: "));
        let r = parse(
            &mut Budgeted::new(&[][..], 0, Default::default()),
            Path::new("x.flac"),
        );
        assert!(r.is_err());
    }
}
