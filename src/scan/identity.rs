//! One identity per file: the rules both walks (and so every engine) follow to decide
//! under which path a file is indexed, so a file reached twice is still one row.
//!
//! - Roots are resolved to their real path first (every symlink in them followed, `..`
//!   resolved after), then repeated roots and roots nested in another are merged. A root
//!   that is a file, or a link to one, is that real file.
//! - A walk never follows a symlink while it lists a tree. With `--follow-symlinks` the
//!   links it meets are collected and, once the trees in hand are listed, resolved here in
//!   sorted order of their paths: a link whose real target lies under a root, or under a
//!   folder already taken through an earlier link, adds nothing (its files are indexed
//!   under that real path or that earlier link); otherwise its folder (or file) is walked
//!   under the link's path. Links met in those folders are resolved the same way in the
//!   next round, until a round adds nothing, so loops end.
//! - While listing, a real subfolder that is itself a root or a folder taken through a
//!   link is skipped: it is walked once, under that identity.
//!
//! The result depends only on the file system, never on thread timing: the same path in
//! every run and every engine.

use std::collections::HashSet;
use std::io;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use anyhow::{Result, bail};

use super::{ExtFilter, WalkProblems};

/// Real paths of the roots of a run: absolute, symlink-free, no root inside another,
/// sorted. Fails on the first root that does not exist.
pub fn resolve_roots(roots: &[PathBuf]) -> Result<Vec<PathBuf>> {
    let mut real = Vec::with_capacity(roots.len());
    for r in roots {
        // Roots are libraries for `index` and the folder to vet for `vet`: name the path
        // and the reason, not a role.
        if let Err(e) = std::fs::symlink_metadata(r) {
            bail!(
                "cannot read {}: {}",
                r.display(),
                crate::text::io_reason(&e)
            );
        }
        let p = std::fs::canonicalize(r).map_err(|e| {
            anyhow::anyhow!(
                "cannot resolve {}: {}",
                r.display(),
                crate::text::io_reason(&e)
            )
        })?;
        real.push(p);
    }
    Ok(merge_nested(real))
}

/// Drop repeated roots and roots under another root (component-wise, so `/a/bc` is not
/// under `/a/b`).
pub fn merge_nested(mut roots: Vec<PathBuf>) -> Vec<PathBuf> {
    roots.sort();
    roots.dedup();
    let mut out: Vec<PathBuf> = Vec::with_capacity(roots.len());
    for r in roots {
        // Sorted, so an ancestor comes before everything below it, though not
        // necessarily right before (`/a`, `/a b`, `/a/c`): check every kept root.
        if !out.iter().any(|kept| r.starts_with(kept)) {
            out.push(r);
        }
    }
    out
}

/// What a resolved link adds to the walk.
#[derive(Debug, PartialEq, Eq)]
pub enum Extra {
    /// Walk this folder under the link's path.
    Dir(PathBuf),
    /// Index this file under the link's path.
    File(PathBuf),
}

/// The state of the link rules over one walk: which real folders are taken, by a root or
/// by an earlier link.
#[derive(Debug, Default)]
pub struct LinkRules {
    /// Real paths of the roots and of the folders taken through links.
    taken_paths: Vec<PathBuf>,
    /// (device, inode) of the same folders: how a listing recognises one as a subfolder.
    taken_ids: HashSet<(u64, u64)>,
    /// (device, inode) of files taken through links.
    taken_files: HashSet<(u64, u64)>,
    /// Links to files, held until a round takes no folder: only then is every folder
    /// that could hold their target known.
    pending_files: Vec<(PathBuf, PathBuf, std::fs::Metadata)>,
}

impl LinkRules {
    pub fn new(roots: &[PathBuf]) -> LinkRules {
        let mut rules = LinkRules::default();
        for r in roots {
            if let Ok(m) = std::fs::metadata(r)
                && m.is_dir()
            {
                rules.taken_ids.insert((m.dev(), m.ino()));
            }
            rules.taken_paths.push(r.clone());
        }
        rules
    }

    /// Whether a real subfolder met in a listing is walked elsewhere under its own
    /// identity (a root, or a folder taken through a link), and so skipped here.
    pub fn skip_subdir(&self, dev: u64, ino: u64) -> bool {
        self.taken_ids.contains(&(dev, ino))
    }

    fn under_taken(&self, real: &Path) -> bool {
        self.taken_paths.iter().any(|t| real.starts_with(t))
    }

    /// Whether links to files wait for the last round: a walk asks [`Self::resolve`]
    /// again, with no new links, until this is false.
    pub fn has_pending(&self) -> bool {
        !self.pending_files.is_empty()
    }

    /// Resolve the links met in one round, in sorted order of their paths. Links to
    /// folders are taken as they come; links to files wait until a round takes no
    /// folder, so a file link into a folder taken in any round adds nothing.
    pub fn resolve(
        &mut self,
        mut links: Vec<PathBuf>,
        filter: &ExtFilter,
        problems: &mut WalkProblems,
    ) -> Vec<Extra> {
        links.sort();
        links.dedup();
        let mut resolved = Vec::with_capacity(links.len());
        for link in links {
            match resolve_one(&link) {
                Ok(r) => resolved.push((link, r)),
                Err(e) => problems.report(&link, "broken symlink", &e, false),
            }
        }
        let mut out = Vec::new();
        for (link, (real, meta)) in resolved {
            if meta.is_dir() {
                if !self.under_taken(&real) {
                    self.taken_paths.push(real);
                    self.taken_ids.insert((meta.dev(), meta.ino()));
                    out.push(Extra::Dir(link));
                }
            } else if meta.is_file() && filter.matches(&link) {
                self.pending_files.push((link, real, meta));
            }
        }
        if !out.is_empty() {
            return out;
        }
        let mut files = std::mem::take(&mut self.pending_files);
        files.sort_by(|a, b| a.0.cmp(&b.0));
        for (link, real, meta) in files {
            if !self.under_taken(&real) && self.taken_files.insert((meta.dev(), meta.ino())) {
                out.push(Extra::File(link));
            }
        }
        out
    }
}

fn resolve_one(link: &Path) -> io::Result<(PathBuf, std::fs::Metadata)> {
    let real = std::fs::canonicalize(link)?;
    let meta = std::fs::metadata(&real)?;
    Ok((real, meta))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nested_and_repeated_roots_merge() {
        let p = |s: &str| PathBuf::from(s);
        assert_eq!(
            merge_nested(vec![p("/a/b"), p("/a"), p("/a b"), p("/a"), p("/a/bc/d")]),
            vec![p("/a"), p("/a b")]
        );
        assert_eq!(
            merge_nested(vec![p("/x/bc"), p("/x/b")]),
            vec![p("/x/b"), p("/x/bc")]
        );
    }

    #[test]
    fn links_resolve_in_sorted_order_and_loops_add_nothing() {
        let tmp = tempfile::tempdir().unwrap();
        let t = tmp.path().canonicalize().unwrap();
        let lib = t.join("lib");
        let ext = t.join("ext/Y/Z");
        std::fs::create_dir_all(&lib).unwrap();
        std::fs::create_dir_all(&ext).unwrap();
        std::fs::write(ext.join("a.mp3"), b"x").unwrap();
        for l in ["b-link", "a-link"] {
            std::os::unix::fs::symlink(&ext, lib.join(l)).unwrap();
        }
        std::os::unix::fs::symlink(&lib, lib.join("loop")).unwrap();
        std::os::unix::fs::symlink(ext.join("a.mp3"), lib.join("f.mp3")).unwrap();
        let mut rules = LinkRules::new(std::slice::from_ref(&lib));
        let mut problems = WalkProblems::default();
        let links = ["loop", "b-link", "f.mp3", "a-link"]
            .iter()
            .map(|l| lib.join(l))
            .collect();
        let extra = rules.resolve(links, &ExtFilter::default(), &mut problems);
        assert_eq!(extra, vec![Extra::Dir(lib.join("a-link"))]);
        assert!(rules.has_pending());
        // f.mp3 points into the folder taken through a-link.
        assert!(
            rules
                .resolve(Vec::new(), &ExtFilter::default(), &mut problems)
                .is_empty()
        );
        assert!(!rules.has_pending());
        assert_eq!(problems.errors, 0);
    }

    #[test]
    fn a_file_link_waits_for_the_folders_of_later_rounds() {
        let tmp = tempfile::tempdir().unwrap();
        let t = tmp.path().canonicalize().unwrap();
        let (lib, hop, ext) = (t.join("lib"), t.join("hop"), t.join("ext"));
        for d in [&lib, &hop, &ext] {
            std::fs::create_dir_all(d).unwrap();
        }
        std::fs::write(ext.join("a.mp3"), b"x").unwrap();
        std::fs::write(ext.join("b.mp3"), b"x").unwrap();
        // lib/a.mp3 -> ext/a.mp3 now; lib/hop -> hop, whose link reaches ext next round.
        std::os::unix::fs::symlink(ext.join("a.mp3"), lib.join("a.mp3")).unwrap();
        std::os::unix::fs::symlink(&hop, lib.join("hop")).unwrap();
        std::os::unix::fs::symlink(&ext, hop.join("ext")).unwrap();
        std::os::unix::fs::symlink(t.join("nowhere"), lib.join("broken.mp3")).unwrap();
        let mut rules = LinkRules::new(std::slice::from_ref(&lib));
        let mut problems = WalkProblems::default();
        let f = ExtFilter::default();
        let round1 = vec![lib.join("a.mp3"), lib.join("hop"), lib.join("broken.mp3")];
        assert_eq!(
            rules.resolve(round1, &f, &mut problems),
            vec![Extra::Dir(lib.join("hop"))]
        );
        assert_eq!(problems.errors, 1, "the broken link is reported");
        assert_eq!(
            rules.resolve(vec![lib.join("hop/ext")], &f, &mut problems),
            vec![Extra::Dir(lib.join("hop/ext"))]
        );
        assert!(rules.resolve(Vec::new(), &f, &mut problems).is_empty());
        // Without the hop, the file link is taken.
        let mut rules = LinkRules::new(std::slice::from_ref(&lib));
        assert_eq!(
            rules.resolve(vec![lib.join("a.mp3")], &f, &mut problems),
            vec![Extra::File(lib.join("a.mp3"))]
        );
    }
}
