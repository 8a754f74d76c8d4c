//! What a walk takes: the extension filter, the hidden-name rule (dot-files, macOS `._*`
//! AppleDouble companions, hidden folders), the database's own files, and what each kind
//! of directory entry or root becomes. Both walks ask here, so they cannot disagree;
//! which path a file is taken under (roots, symlinks) is [`super::identity`]'s part.

use std::collections::HashSet;
use std::fs;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use anyhow::{Result, bail};

/// Audio extensions indexed by default (matched case-insensitively).
pub const DEFAULT_EXTENSIONS: &[&str] = &[
    "mp3", "flac", "m4a", "mp4", "m4b", "aac", "wav", "ogg", "oga", "opus", "aiff", "aif", "aifc",
    "ape", "wv", "mpc", "spx",
];

#[derive(Clone, Debug)]
pub struct ExtFilter {
    exts: HashSet<Vec<u8>>,
    /// `--ext '*'`: every regular file, for trees of unlabelled files.
    all: bool,
    /// `--hidden`: take names starting with `.` too (dot-files, macOS `._*` AppleDouble
    /// companions, hidden folders). Off by default, as in fd: they are never music.
    hidden: bool,
    /// Files never taken whatever their name (the database and its companions), as
    /// (folder, name) so the per-entry check compares a name first.
    excluded: Vec<(PathBuf, Vec<u8>)>,
}

impl Default for ExtFilter {
    fn default() -> Self {
        ExtFilter {
            exts: DEFAULT_EXTENSIONS
                .iter()
                .map(|e| e.as_bytes().to_vec())
                .collect(),
            all: false,
            hidden: false,
            excluded: Vec::new(),
        }
    }
}

/// The files SQLite keeps beside a database.
pub const DB_COMPANIONS: &[&str] = &["", "-wal", "-shm", "-journal"];

impl ExtFilter {
    /// `--ext` syntax: `mp3,flac` restricts to exactly those; `+dsf` adds to the default
    /// set and `-wav` removes from it; plain and signed items may be mixed; `*` alone
    /// takes every file.
    ///
    /// Anything else is refused with a one-line error rather than indexing nothing: an
    /// extension is 1 to 8 ASCII letters or digits (an optional leading `.` is dropped),
    /// items are separated by commas only, and `*` cannot be mixed with other items.
    pub fn parse(spec: &str) -> Result<ExtFilter> {
        let items: Vec<&str> = spec
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .collect();
        if items.is_empty() {
            bail!("--ext needs at least one extension, e.g. `mp3,flac` or `+dsf,-wav`");
        }
        if items == ["*"] {
            return Ok(ExtFilter {
                exts: HashSet::new(),
                all: true,
                ..ExtFilter::default()
            });
        }
        if items.contains(&"*") {
            bail!("--ext '{spec}': `*` takes every file and cannot be combined with extensions");
        }
        let plain = items.iter().any(|i| !i.starts_with(['+', '-']));
        let mut f = if plain {
            ExtFilter {
                exts: HashSet::new(),
                ..ExtFilter::default()
            }
        } else {
            ExtFilter::default()
        };
        for item in items {
            let (op, ext) = match item.as_bytes()[0] {
                b'+' | b'-' => (item.as_bytes()[0], &item[1..]),
                _ => (b'+', item),
            };
            let ext = ext.strip_prefix('.').unwrap_or(ext).to_ascii_lowercase();
            // Names longer than 8 never match (see `matches_name`), so refuse them here.
            if ext.is_empty() || ext.len() > 8 || !ext.bytes().all(|b| b.is_ascii_alphanumeric()) {
                bail!(
                    "--ext '{spec}': '{item}' is not an extension (1 to 8 letters or digits; \
                     separate items with commas)"
                );
            }
            if op == b'+' {
                f.exts.insert(ext.into_bytes());
            } else {
                f.exts.remove(ext.as_bytes());
            }
        }
        Ok(f)
    }

    /// With `yes`, hidden names are taken too.
    pub fn with_hidden(mut self, yes: bool) -> ExtFilter {
        self.hidden = yes;
        self
    }

    /// Never take the database at `db` nor its `-wal`, `-shm` and `-journal` files, even
    /// under `--ext '*'` with the database inside a root. Walks report real paths, so the
    /// folder is resolved the same way (a folder not made yet holds nothing to skip).
    pub fn excluding_db(mut self, db: &Path) -> ExtFilter {
        let Some(name) = db.file_name() else {
            return self;
        };
        let parent = match db.parent().filter(|p| !p.as_os_str().is_empty()) {
            Some(p) => p.to_path_buf(),
            None => PathBuf::from("."),
        };
        let dir = fs::canonicalize(&parent).unwrap_or(parent);
        for suffix in DB_COMPANIONS {
            let mut n = name.as_bytes().to_vec();
            n.extend_from_slice(suffix.as_bytes());
            self.excluded.push((dir.clone(), n));
        }
        self
    }

    /// Whether a walk descends into a folder of this name (not asked of roots).
    pub fn walks_dir(&self, name: &[u8]) -> bool {
        self.hidden || !name.starts_with(b".")
    }

    /// Whether `name` in folder `dir` is one of the excluded files.
    pub fn is_excluded(&self, dir: &Path, name: &[u8]) -> bool {
        self.excluded
            .iter()
            .any(|(d, n)| n.as_slice() == name && d == dir)
    }

    /// Matches on the raw bytes of the name, so non-UTF-8 names are filtered too.
    /// Excluded files are checked by the caller, which knows the folder.
    pub fn matches_name(&self, name: &[u8]) -> bool {
        if !self.hidden && name.starts_with(b".") {
            return false;
        }
        if self.all {
            return true;
        }
        let Some(dot) = name.iter().rposition(|&b| b == b'.') else {
            return false;
        };
        let ext = &name[dot + 1..];
        if dot == 0 || ext.is_empty() || ext.len() > 8 {
            return false;
        }
        let lower: Vec<u8> = ext.iter().map(u8::to_ascii_lowercase).collect();
        self.exts.contains(&lower)
    }

    pub fn matches(&self, path: &Path) -> bool {
        path.file_name().is_some_and(|n| {
            self.matches_name(n.as_bytes())
                && !self.is_excluded(path.parent().unwrap_or(Path::new("")), n.as_bytes())
        })
    }
}

#[derive(Clone, Debug, Default)]
pub struct WalkOptions {
    pub follow_symlinks: bool,
    pub filter: ExtFilter,
}

/// What a directory entry is, as the listing tells it (or an lstat, where it cannot).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EntryType {
    Dir,
    File,
    Symlink,
    Other,
}

/// What a walk does with an entry or a root.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Take {
    /// A folder to list.
    Descend,
    /// A file to hand to the engine.
    File,
    /// A symlink to resolve in the next round (only when links are followed).
    Link,
    Skip,
}

impl WalkOptions {
    /// The entry `name` of folder `dir`. Symlinks are never followed while listing: with
    /// `--follow-symlinks` they are collected and resolved by [`super::identity`].
    pub fn take(&self, dir: &Path, name: &[u8], ty: EntryType) -> Take {
        match ty {
            EntryType::Dir if self.filter.walks_dir(name) => Take::Descend,
            EntryType::File
                if self.filter.matches_name(name) && !self.filter.is_excluded(dir, name) =>
            {
                Take::File
            }
            EntryType::Symlink if self.follow_symlinks => Take::Link,
            _ => Take::Skip,
        }
    }

    /// A root (already resolved to its real path), by what a stat that follows links
    /// says it is: a file only if the filter takes its name; anything else is listed.
    pub fn take_root(&self, root: &Path, ty: EntryType) -> Take {
        match ty {
            EntryType::File if self.filter.matches(root) => Take::File,
            EntryType::File => Take::Skip,
            _ => Take::Descend,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ext_filter() {
        let d = ExtFilter::default();
        assert!(d.matches(Path::new("/a/B.MP3")));
        assert!(d.matches(Path::new("x.Flac")));
        assert!(!d.matches(Path::new("cover.jpg")));
        assert!(!d.matches(Path::new(".mp3")));
        assert!(!d.matches(Path::new("noext")));
        let only = ExtFilter::parse("mp3").unwrap();
        assert!(only.matches(Path::new("a.mp3")));
        assert!(!only.matches(Path::new("a.flac")));
        let plus = ExtFilter::parse("+dsf,-wav").unwrap();
        assert!(plus.matches(Path::new("a.dsf")));
        assert!(plus.matches(Path::new("a.flac")));
        assert!(!plus.matches(Path::new("a.wav")));
        assert!(ExtFilter::parse(" , ").is_err());
    }
}
