//! The parallel directory walk: directories are the unit of work, shared by every engine
//! thread through one LIFO queue (depth first keeps the queue short), each read with
//! getdents64 into a large buffer. Same semantics as [`super::walk_sequential`]: the
//! extension filter on raw name bytes, symlinks only when followed and then by the rules
//! of [`super::identity`] (resolved in rounds, between which the queue runs dry, so the
//! paths never depend on timing), unreadable directories reported and recorded so their
//! files are kept.
//!
//! A thread asks for the next [`Batch`] of files; the walk lists directories on the way.
//! Files are handed out with their open directory, so the engines stat and open them
//! relative to it (no path walk per file).
//!
//! Cold, listing a folder blocks on the disk (its inode, then its blocks), and a thread
//! that lists is not feeding its ring meanwhile. Threads in [`ParallelWalk::list_ahead`]
//! list folders before they are asked for, several at once, up to a bound of files
//! listed and not yet handed out (memory and open folders stay bounded at any size).

use std::ffi::{CStr, CString, OsStr};
use std::io;
use std::mem::MaybeUninit;
use std::os::fd::OwnedFd;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex};

use rustix::fs::{AtFlags, FileType, Mode, OFlags, RawDir};

use super::identity::{Extra, LinkRules};
use super::{EntryType, Take, WalkOptions, WalkProblems, WalkTally};

/// getdents64 buffer: large enough that a typical album folder takes one call.
const DIR_BUF: usize = 64 * 1024;
/// Files per batch: a huge flat folder is split so every thread gets a share.
pub const BATCH_FILES: usize = 128;

/// A directory being worked on, open for lookups relative to it.
#[derive(Debug)]
pub struct Dir {
    pub fd: OwnedFd,
    pub path: PathBuf,
}

impl Dir {
    pub fn path_of(&self, name: &CStr) -> PathBuf {
        self.path.join(OsStr::from_bytes(name.to_bytes()))
    }
}

/// Matching files of one directory.
#[derive(Debug)]
pub struct Batch {
    pub dir: Arc<Dir>,
    pub names: Vec<CString>,
}

pub enum Next {
    Batch(Batch),
    /// Nothing to hand out right now, but other threads are still listing.
    Empty,
    /// The walk is over (or was stopped).
    Done,
}

enum Work {
    Dir(PathBuf),
    Files(Batch),
}

/// Files listed ahead and not yet handed out, at most: a few tens of milliseconds of a
/// cold run, and never more than a few MiB of names whatever the library's size.
const AHEAD_FILES: usize = 4096;
/// Batches listed ahead, at most: each holds its folder open, and the descriptor limit
/// may be as low as 1024.
const AHEAD_BATCHES: usize = 256;

struct Queue {
    /// Folders to list, depth first.
    dirs_todo: Vec<PathBuf>,
    /// Listed files to hand out, most recent first.
    files: Vec<Batch>,
    /// Names in `files`, for the look-ahead bound.
    queued_files: usize,
    /// Work queued or being listed; the walk is over when this reaches zero.
    pending: usize,
    /// Folders queued or being listed: at zero (and no links waiting) every file is
    /// known, which is when the progress line can tell the time left.
    dirs: usize,
    /// Threads in `list_ahead` waiting for room or for folders.
    ahead_idle: usize,
    /// Set when the walk is over or `list_ahead` threads must return.
    ahead_quit: bool,
}

impl Queue {
    fn push(&mut self, w: Work) {
        self.pending += 1;
        match w {
            Work::Dir(d) => {
                self.dirs += 1;
                self.dirs_todo.push(d);
            }
            Work::Files(b) => {
                self.queued_files += b.names.len();
                self.files.push(b);
            }
        }
    }

    fn room_ahead(&self) -> bool {
        self.queued_files < AHEAD_FILES && self.files.len() < AHEAD_BATCHES
    }

    /// Whether to wake a waiting lister: only once half the look-ahead is taken, so
    /// listers work in bursts, not one wake-up per batch taken (warm, those cost more
    /// than the listing).
    fn low_ahead(&self) -> bool {
        self.queued_files < AHEAD_FILES / 2 && self.files.len() < AHEAD_BATCHES / 2
    }
}

pub struct ParallelWalk<'a> {
    opts: &'a WalkOptions,
    queue: Mutex<Queue>,
    ready: Condvar,
    /// Where `list_ahead` threads wait for room or for folders.
    ahead: Condvar,
    /// The link rules and the links met in the current round.
    links: Mutex<(LinkRules, Vec<PathBuf>)>,
    problems: Mutex<WalkProblems>,
    stopped: AtomicBool,
    tally: Option<&'a WalkTally>,
}

/// Per-thread scratch space for listing directories.
pub struct DirBuf(Vec<MaybeUninit<u8>>);

impl Default for DirBuf {
    fn default() -> Self {
        DirBuf(vec![MaybeUninit::uninit(); DIR_BUF])
    }
}

impl<'a> ParallelWalk<'a> {
    pub fn new(roots: &[PathBuf], opts: &'a WalkOptions) -> ParallelWalk<'a> {
        let walk = ParallelWalk {
            opts,
            queue: Mutex::new(Queue {
                dirs_todo: Vec::new(),
                files: Vec::new(),
                queued_files: 0,
                pending: 0,
                dirs: 0,
                ahead_idle: 0,
                ahead_quit: false,
            }),
            ready: Condvar::new(),
            ahead: Condvar::new(),
            links: Mutex::new((LinkRules::new(roots), Vec::new())),
            problems: Mutex::new(WalkProblems::default()),
            stopped: AtomicBool::new(false),
            tally: None,
        };
        let mut initial = Vec::new();
        // Reversed so the stack hands the roots out in the order given.
        for root in roots.iter().rev() {
            let ty =
                rustix::fs::stat(root).map(|st| entry_type(FileType::from_raw_mode(st.st_mode)));
            match ty.map(|ty| opts.take_root(root, ty)) {
                Err(e) => walk.report(root, "cannot read", &e.into(), true),
                Ok(Take::File) => match root_file_batch(root) {
                    Ok(b) => initial.push(Work::Files(b)),
                    Err(e) => walk.report(root, "cannot read", &e, false),
                },
                Ok(Take::Descend) => initial.push(Work::Dir(root.clone())),
                Ok(_) => {}
            }
        }
        walk.push_all(initial);
        walk
    }

    /// Count listed files into `tally` and mark it done when the listing is over.
    pub fn with_tally(mut self, tally: &'a WalkTally) -> ParallelWalk<'a> {
        let q = self.queue.get_mut().unwrap_or_else(|e| e.into_inner());
        let files = q.queued_files;
        let no_dirs = q.dirs == 0;
        tally.listed.fetch_add(files as u64, Ordering::Relaxed);
        self.tally = Some(tally);
        if no_dirs {
            self.mark_listed_if_done();
        }
        self
    }

    /// The next batch of files. With `wait`, blocks until there is one or the walk is over;
    /// without, returns [`Next::Empty`] when other threads are still listing.
    pub fn next(&self, wait: bool, buf: &mut DirBuf) -> Next {
        loop {
            let path = {
                let mut q = self.queue.lock().unwrap_or_else(|e| e.into_inner());
                loop {
                    if self.stopped.load(Ordering::Relaxed) {
                        return Next::Done;
                    }
                    if let Some(b) = q.files.pop() {
                        q.queued_files -= b.names.len();
                        q.pending -= 1;
                        if q.pending == 0 {
                            self.ready.notify_all();
                        } else if q.ahead_idle > 0 && q.low_ahead() && !q.dirs_todo.is_empty() {
                            // A thread listing ahead waits for room: there is some now.
                            self.ahead.notify_all();
                        }
                        return Next::Batch(b);
                    }
                    // Nothing listed in hand: list the next folder here rather than wait.
                    if let Some(d) = q.dirs_todo.pop() {
                        break d;
                    }
                    if q.pending == 0 {
                        // Every tree in hand is listed: the links met are resolved now,
                        // with the whole round known, so the outcome is timing-free.
                        let work = self.next_round();
                        if work.is_empty() {
                            if let Some(t) = self.tally {
                                t.done.store(true, Ordering::Relaxed);
                            }
                            q.ahead_quit = true;
                            self.ahead.notify_all();
                            return Next::Done;
                        }
                        for w in work {
                            q.push(w);
                        }
                        self.ready.notify_all();
                        self.ahead.notify_all();
                        continue;
                    }
                    if !wait {
                        return Next::Empty;
                    }
                    q = self.ready.wait(q).unwrap_or_else(|e| e.into_inner());
                }
            };
            let first = self.list(path, buf);
            self.finish_one();
            if let Some(b) = first {
                return Next::Batch(b);
            }
        }
    }

    /// List folders ahead of the threads that take files, while the files listed and not
    /// yet taken are under the bound. Returns when the walk is over, stopped, or
    /// [`ParallelWalk::end_list_ahead`] is called. Any number of threads may run this; the
    /// walk's outcome does not depend on how many do, or on their timing.
    pub fn list_ahead(&self) {
        let mut buf = DirBuf::default();
        loop {
            let path = {
                let mut q = self.queue.lock().unwrap_or_else(|e| e.into_inner());
                loop {
                    if q.ahead_quit || self.stopped.load(Ordering::Relaxed) {
                        return;
                    }
                    if q.room_ahead()
                        && let Some(d) = q.dirs_todo.pop()
                    {
                        break d;
                    }
                    q.ahead_idle += 1;
                    q = self.ahead.wait(q).unwrap_or_else(|e| e.into_inner());
                    q.ahead_idle -= 1;
                }
            };
            // Every batch but the first goes to the queue in `list`; the first too, here.
            if let Some(b) = self.list(path, &mut buf) {
                let mut q = self.queue.lock().unwrap_or_else(|e| e.into_inner());
                q.push(Work::Files(b));
                self.ready.notify_one();
            }
            self.finish_one();
        }
    }

    /// Make every [`ParallelWalk::list_ahead`] return (the walk itself goes on).
    pub fn end_list_ahead(&self) {
        let mut q = self.queue.lock().unwrap_or_else(|e| e.into_inner());
        q.ahead_quit = true;
        self.ahead.notify_all();
    }

    /// Make every thread's next call return [`Next::Done`].
    pub fn stop(&self) {
        self.stopped.store(true, Ordering::Relaxed);
        let _q = self.queue.lock().unwrap_or_else(|e| e.into_inner());
        self.ready.notify_all();
        self.ahead.notify_all();
    }

    pub fn into_problems(self) -> WalkProblems {
        self.problems
            .into_inner()
            .unwrap_or_else(|e| e.into_inner())
    }

    fn push_all(&self, work: Vec<Work>) {
        if work.is_empty() {
            return;
        }
        let mut q = self.queue.lock().unwrap_or_else(|e| e.into_inner());
        let dirs = work.iter().any(|w| matches!(w, Work::Dir(_)));
        for w in work {
            q.push(w);
        }
        self.ready.notify_all();
        if dirs && q.ahead_idle > 0 && q.room_ahead() {
            self.ahead.notify_all();
        }
    }

    /// A folder has been listed.
    fn finish_one(&self) {
        let mut q = self.queue.lock().unwrap_or_else(|e| e.into_inner());
        q.pending -= 1;
        q.dirs -= 1;
        if q.dirs == 0 {
            self.mark_listed_if_done();
        }
        if q.pending == 0 {
            self.ready.notify_all();
        }
    }

    /// Called with no folder left to list: done unless links wait for their round.
    fn mark_listed_if_done(&self) {
        if let Some(t) = self.tally {
            let links = self.lock_links();
            if links.1.is_empty() && !links.0.has_pending() {
                t.done.store(true, Ordering::Relaxed);
            }
        }
    }

    fn report(&self, path: &Path, what: &str, e: &io::Error, is_dir: bool) {
        self.problems
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .report(path, what, e, is_dir);
    }

    fn lock_links(&self) -> std::sync::MutexGuard<'_, (LinkRules, Vec<PathBuf>)> {
        self.links.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Resolve the links of the round just listed into the next round's work.
    fn count_listed(&self, n: usize) {
        if let Some(t) = self.tally {
            t.listed.fetch_add(n as u64, Ordering::Relaxed);
        }
    }

    fn next_round(&self) -> Vec<Work> {
        let mut links = self.lock_links();
        if links.1.is_empty() && !links.0.has_pending() {
            return Vec::new();
        }
        let round = std::mem::take(&mut links.1);
        let mut problems = WalkProblems::default();
        let extra = links.0.resolve(round, &self.opts.filter, &mut problems);
        drop(links);
        self.problems
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .merge(problems);
        let mut work = Vec::with_capacity(extra.len());
        for e in extra.into_iter().rev() {
            match e {
                Extra::Dir(d) => work.push(Work::Dir(d)),
                Extra::File(f) => match root_file_batch(&f) {
                    Ok(b) => {
                        self.count_listed(1);
                        work.push(Work::Files(b))
                    }
                    Err(e) => self.report(&f, "cannot read", &e, false),
                },
            }
        }
        work
    }

    /// List one directory: queue its subdirectories and all but the first batch of its
    /// files, and return that first batch for the calling thread to work on.
    fn list(&self, path: PathBuf, buf: &mut DirBuf) -> Option<Batch> {
        let fd = match rustix::fs::open(
            &path,
            OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
            Mode::empty(),
        ) {
            Ok(fd) => fd,
            Err(e) => {
                self.report(&path, "cannot read directory", &e.into(), true);
                return None;
            }
        };
        let follow = self.opts.follow_symlinks;
        let mut names: Vec<CString> = Vec::new();
        let mut subdirs: Vec<CString> = Vec::new();
        let mut links: Vec<PathBuf> = Vec::new();
        let mut iter = RawDir::new(&fd, &mut buf.0);
        while let Some(entry) = iter.next() {
            let entry = match entry {
                Ok(e) => e,
                Err(e) => {
                    self.report(&path, "cannot read directory", &e.into(), true);
                    break;
                }
            };
            let name = entry.file_name();
            let bytes = name.to_bytes();
            if bytes == b"." || bytes == b".." {
                continue;
            }
            let mut ft = entry.file_type();
            if ft == FileType::Unknown {
                // Some filesystems leave d_type empty: ask the inode, as read_dir does.
                match rustix::fs::statat(&fd, name, AtFlags::SYMLINK_NOFOLLOW) {
                    Ok(st) => ft = FileType::from_raw_mode(st.st_mode),
                    Err(e) => {
                        self.report(
                            &path.join(OsStr::from_bytes(bytes)),
                            "cannot stat",
                            &e.into(),
                            false,
                        );
                        continue;
                    }
                }
            }
            match self.opts.take(&path, bytes, entry_type(ft)) {
                Take::Descend => subdirs.push(name.to_owned()),
                Take::File => names.push(name.to_owned()),
                Take::Link => links.push(path.join(OsStr::from_bytes(bytes))),
                Take::Skip => {}
            }
        }
        // A real subfolder that is a root or was taken through a link is walked under
        // that identity, not here.
        if follow {
            let mut l = self.lock_links();
            subdirs.retain(|sub| {
                !matches!(
                    rustix::fs::statat(&fd, sub.as_c_str(), AtFlags::SYMLINK_NOFOLLOW),
                    Ok(st) if l.0.skip_subdir(st.st_dev, st.st_ino)
                )
            });
            l.1.append(&mut links);
        }
        let mut work: Vec<Work> = subdirs
            .into_iter()
            .rev()
            .map(|s| Work::Dir(path.join(OsStr::from_bytes(s.to_bytes()))))
            .collect();
        let dir = Arc::new(Dir { fd, path });
        self.count_listed(names.len());
        let first = if names.is_empty() {
            None
        } else {
            let mut chunks: Vec<Vec<CString>> = Vec::new();
            while names.len() > BATCH_FILES {
                chunks.push(names.split_off(names.len() - BATCH_FILES));
            }
            work.extend(chunks.into_iter().map(|names| {
                Work::Files(Batch {
                    dir: dir.clone(),
                    names,
                })
            }));
            Some(Batch { dir, names })
        };
        self.push_all(work);
        first
    }
}

fn entry_type(ft: FileType) -> EntryType {
    match ft {
        FileType::Directory => EntryType::Dir,
        FileType::RegularFile => EntryType::File,
        FileType::Symlink => EntryType::Symlink,
        _ => EntryType::Other,
    }
}

fn root_file_batch(root: &Path) -> io::Result<Batch> {
    let parent = root.parent().unwrap_or(Path::new("/"));
    let name = root
        .file_name()
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "no file name"))?;
    // O_PATH: enough to look names up relative to it, even in a folder we may not list.
    let fd = rustix::fs::open(
        parent,
        OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    )?;
    Ok(Batch {
        dir: Arc::new(Dir {
            fd,
            path: parent.to_path_buf(),
        }),
        names: vec![CString::new(name.as_bytes()).map_err(io::Error::other)?],
    })
}

/// Walk with `threads` threads, calling `on_file` for every matching file, in no
/// particular order. For tests and tools that need only the listing.
pub fn walk_parallel(
    roots: &[PathBuf],
    opts: &WalkOptions,
    threads: usize,
    on_file: impl Fn(PathBuf) + Sync,
) -> WalkProblems {
    let walk = ParallelWalk::new(roots, opts);
    std::thread::scope(|s| {
        for _ in 0..threads.max(1) {
            s.spawn(|| {
                let mut buf = DirBuf::default();
                while let Next::Batch(b) = walk.next(true, &mut buf) {
                    for name in &b.names {
                        on_file(b.dir.path_of(name));
                    }
                }
            });
        }
    });
    walk.into_problems()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scan::{ExtFilter, walk_sequential};
    use std::fs;

    fn tree() -> tempfile::TempDir {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path();
        for a in 0..7 {
            for b in 0..5 {
                let d = root.join(format!("Artist {a}/Album {b}"));
                fs::create_dir_all(&d).unwrap();
                for t in 0..9 {
                    fs::write(d.join(format!("{t:02} Song.mp3")), b"x").unwrap();
                }
                fs::write(d.join("cover.jpg"), b"x").unwrap();
            }
        }
        // A flat folder bigger than a batch, and a non-UTF-8 name.
        let flat = root.join("flat");
        fs::create_dir(&flat).unwrap();
        for i in 0..(BATCH_FILES * 3 + 5) {
            fs::write(flat.join(format!("{i}.flac")), b"").unwrap();
        }
        fs::write(flat.join(OsStr::from_bytes(b"caf\xe9.ogg")), b"").unwrap();
        std::os::unix::fs::symlink(root, root.join("Artist 0/loop")).unwrap();
        std::os::unix::fs::symlink(root.join("flat/1.flac"), root.join("link.mp3")).unwrap();
        tmp
    }

    fn both(root: &Path, opts: &WalkOptions, threads: usize) -> (Vec<PathBuf>, Vec<PathBuf>) {
        let mut seq = Vec::new();
        walk_sequential(&[root.to_path_buf()], opts, |p| {
            seq.push(p);
            true
        });
        let par = Mutex::new(Vec::new());
        walk_parallel(&[root.to_path_buf()], opts, threads, |p| {
            par.lock().unwrap().push(p)
        });
        let mut par = par.into_inner().unwrap();
        seq.sort();
        par.sort();
        (seq, par)
    }

    #[test]
    fn finds_what_the_sequential_walk_finds() {
        let tmp = tree();
        for threads in [1, 2, 5] {
            let opts = WalkOptions::default();
            let (seq, par) = both(tmp.path(), &opts, threads);
            assert_eq!(seq.len(), 7 * 5 * 9 + BATCH_FILES * 3 + 5 + 1);
            assert_eq!(seq, par);
            let opts = WalkOptions {
                follow_symlinks: true,
                filter: ExtFilter::parse("*").unwrap(),
            };
            let (seq, par) = both(tmp.path(), &opts, threads);
            // link.mp3 points into the root: that file is indexed under its real path.
            assert!(!seq.iter().any(|p| p.ends_with("link.mp3")));
            assert_eq!(seq.len(), 7 * 5 * 10 + BATCH_FILES * 3 + 5 + 1);
            assert_eq!(seq, par);
        }
    }

    #[test]
    fn root_file_and_missing_root() {
        let tmp = tree();
        let file = tmp.path().join("Artist 1/Album 2/03 Song.mp3");
        let missing = tmp.path().join("nope");
        let opts = WalkOptions::default();
        let found = Mutex::new(Vec::new());
        let problems = walk_parallel(&[file.clone(), missing.clone()], &opts, 2, |p| {
            found.lock().unwrap().push(p)
        });
        assert_eq!(found.into_inner().unwrap(), vec![file]);
        assert_eq!(problems.errors, 1);
        assert_eq!(problems.skipped_dirs, vec![missing]);
    }

    /// Walk with `takers` threads taking files and `listers` listing ahead.
    fn ahead(root: &Path, opts: &WalkOptions, takers: usize, listers: usize) -> Vec<PathBuf> {
        let walk = ParallelWalk::new(&[root.to_path_buf()], opts);
        let found = Mutex::new(Vec::new());
        std::thread::scope(|s| {
            let listing: Vec<_> = (0..listers)
                .map(|_| s.spawn(|| walk.list_ahead()))
                .collect();
            let taking: Vec<_> = (0..takers)
                .map(|_| {
                    s.spawn(|| {
                        let mut buf = DirBuf::default();
                        while let Next::Batch(b) = walk.next(true, &mut buf) {
                            // Slow takers: the listers reach their bound and wait.
                            std::thread::sleep(std::time::Duration::from_micros(200));
                            let mut f = found.lock().unwrap();
                            f.extend(b.names.iter().map(|n| b.dir.path_of(n)));
                        }
                    })
                })
                .collect();
            for t in taking {
                t.join().unwrap();
            }
            // The walk is over, so the listers return by themselves.
            for l in listing {
                l.join().unwrap();
            }
        });
        let mut found = found.into_inner().unwrap();
        found.sort();
        found
    }

    #[test]
    fn listing_ahead_finds_every_file_once() {
        let tmp = tree();
        // More single-file folders than the look-ahead holds batches.
        for i in 0..(AHEAD_BATCHES + 40) {
            let d = tmp.path().join(format!("many/{i}"));
            fs::create_dir_all(&d).unwrap();
            fs::write(d.join("one.mp3"), b"x").unwrap();
        }
        for follow in [false, true] {
            let opts = WalkOptions {
                follow_symlinks: follow,
                filter: ExtFilter::parse("*").unwrap(),
            };
            let (seq, _) = both(tmp.path(), &opts, 1);
            for (takers, listers) in [(1, 1), (2, 3), (1, 8)] {
                let got = ahead(tmp.path(), &opts, takers, listers);
                assert_eq!(
                    got, seq,
                    "{takers} takers, {listers} listers, follow {follow}"
                );
            }
        }
    }

    #[test]
    fn listing_ahead_ends_when_asked() {
        let tmp = tree();
        let opts = WalkOptions::default();
        let walk = ParallelWalk::new(&[tmp.path().to_path_buf()], &opts);
        std::thread::scope(|s| {
            let l = s.spawn(|| walk.list_ahead());
            walk.end_list_ahead();
            l.join().unwrap();
        });
        // The walk itself goes on, and finds everything.
        let mut buf = DirBuf::default();
        let mut n = 0;
        while let Next::Batch(b) = walk.next(true, &mut buf) {
            n += b.names.len();
        }
        assert_eq!(n, 7 * 5 * 9 + BATCH_FILES * 3 + 5 + 1);
    }
}
