//! Directory walks: the reference walk (here) and the parallel one ([`parallel`]), both
//! taking every decision about what to list from [`policy`] and [`identity`].

use std::fs;
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

pub mod identity;
pub mod parallel;
pub mod policy;

pub use policy::{DB_COMPANIONS, DEFAULT_EXTENSIONS, EntryType, ExtFilter, Take, WalkOptions};

/// How far a walk has got, for the progress line: files listed so far, and whether the
/// listing is over (then `listed` is the total and an ETA can be given).
#[derive(Debug, Default)]
pub struct WalkTally {
    pub listed: std::sync::atomic::AtomicU64,
    pub done: std::sync::atomic::AtomicBool,
}

/// What a walk could not read. Files below a skipped directory are not known to be gone,
/// so the index keeps them as they were.
#[derive(Debug, Default)]
pub struct WalkProblems {
    pub skipped_dirs: Vec<PathBuf>,
    pub errors: u64,
}

impl WalkProblems {
    pub fn report(&mut self, path: &Path, what: &str, e: &io::Error, is_dir: bool) {
        eprintln!("musicdex: {what} {}: {e}", path.display());
        self.errors += 1;
        if is_dir {
            self.skipped_dirs.push(path.to_path_buf());
        }
    }

    pub fn merge(&mut self, other: WalkProblems) {
        self.skipped_dirs.extend(other.skipped_dirs);
        self.errors += other.errors;
    }
}

fn entry_type(ft: fs::FileType) -> EntryType {
    if ft.is_dir() {
        EntryType::Dir
    } else if ft.is_file() {
        EntryType::File
    } else if ft.is_symlink() {
        EntryType::Symlink
    } else {
        EntryType::Other
    }
}

/// The reference walk: one thread, std::fs, depth first. Calls `on_file` for every
/// matching file, until it returns `false`. Roots must come from
/// [`identity::resolve_roots`]; symlinks are taken only when followed, by the rules of
/// [`identity`], so every file comes once, under the same path as in the parallel walk.
pub fn walk_sequential(
    roots: &[PathBuf],
    opts: &WalkOptions,
    mut on_file: impl FnMut(PathBuf) -> bool,
) -> WalkProblems {
    let mut problems = WalkProblems::default();
    let mut rules = identity::LinkRules::new(roots);
    let mut stack: Vec<PathBuf> = Vec::new();
    let mut links: Vec<PathBuf> = Vec::new();
    for root in roots.iter().rev() {
        let ty = fs::metadata(root).map(|m| entry_type(m.file_type()));
        match ty.map(|ty| opts.take_root(root, ty)) {
            Ok(Take::File) => {
                if !on_file(root.clone()) {
                    return problems;
                }
            }
            Ok(Take::Descend) => stack.push(root.clone()),
            Ok(_) => {}
            Err(e) => problems.report(root, "cannot read", &e, true),
        }
    }
    loop {
        while let Some(dir) = stack.pop() {
            let entries = match fs::read_dir(&dir) {
                Ok(e) => e,
                Err(e) => {
                    problems.report(&dir, "cannot read directory", &e, true);
                    continue;
                }
            };
            let mut subdirs = Vec::new();
            for entry in entries {
                let entry = match entry {
                    Ok(e) => e,
                    Err(e) => {
                        problems.report(&dir, "cannot read directory", &e, true);
                        break;
                    }
                };
                let path = entry.path();
                let ft = match entry.file_type() {
                    Ok(t) => t,
                    Err(e) => {
                        problems.report(&path, "cannot stat", &e, false);
                        continue;
                    }
                };
                match opts.take(&dir, entry.file_name().as_bytes(), entry_type(ft)) {
                    Take::Descend => {
                        if opts.follow_symlinks
                            && let Ok(m) = entry.metadata()
                            && rules.skip_subdir(m.dev(), m.ino())
                        {
                            continue;
                        }
                        subdirs.push(path);
                    }
                    Take::File => {
                        if !on_file(path) {
                            return problems;
                        }
                    }
                    Take::Link => links.push(path),
                    Take::Skip => {}
                }
            }
            stack.extend(subdirs.into_iter().rev());
        }
        if links.is_empty() && !rules.has_pending() {
            return problems;
        }
        let round = std::mem::take(&mut links);
        for extra in rules
            .resolve(round, &opts.filter, &mut problems)
            .into_iter()
            .rev()
        {
            match extra {
                identity::Extra::Dir(d) => stack.push(d),
                identity::Extra::File(f) => {
                    if !on_file(f) {
                        return problems;
                    }
                }
            }
        }
    }
}
