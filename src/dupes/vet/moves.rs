//! `vet --move-duplicates-to`: moves that never replace and never lose a file.

use std::fs;
use std::io::{self, Read, Write};
use std::path::Path;

use super::export::exact_hex;
use super::{Move, Verdict, VetFile};

/// Move the certain duplicates below `to`, keeping their paths relative to `folder`.
/// An existing target is never replaced and nothing is deleted: a file only leaves its
/// place once it exists, complete, at the target. Upgrades, fuzzy and uncertain
/// matches stay.
pub(super) fn move_duplicates(
    folder: &Path,
    to: &Path,
    files: &[VetFile],
    dry_run: bool,
) -> Vec<Move> {
    let mut moves = Vec::new();
    let certain = files.iter().filter(|f| {
        f.verdict == Verdict::Duplicate && f.matched.as_ref().is_some_and(|m| m.certain)
    });
    for f in certain {
        let rel = f.path_buf.strip_prefix(folder).unwrap_or(&f.path_buf);
        let rel = rel.strip_prefix("/").unwrap_or(rel);
        let target = to.join(rel);
        let status = if dry_run {
            if target.symlink_metadata().is_ok() {
                "skipped: target exists".to_string()
            } else {
                "would move".to_string()
            }
        } else {
            match move_no_replace(&f.path_buf, &target) {
                Ok(()) => "moved".to_string(),
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
                    "skipped: target exists".to_string()
                }
                Err(e) => format!("failed: {e}"),
            }
        };
        moves.push(Move {
            from: f.path.clone(),
            to: target.to_string_lossy().into_owned(),
            from_bytes: f.path_bytes.clone(),
            to_bytes: exact_hex(&target),
            status,
        });
    }
    moves
}

/// Rename without replacing (renameat2 RENAME_NOREPLACE). Across file systems, copy
/// into a file created exclusively, verify it, and only then remove the source.
/// `AlreadyExists` means the target exists; every other error is a failure, after which
/// the source is untouched.
pub fn move_no_replace(from: &Path, to: &Path) -> io::Result<()> {
    if let Some(parent) = to.parent() {
        // Not AlreadyExists: a file in the way of a folder is a failure, not "target
        // exists".
        fs::create_dir_all(parent).map_err(|e| {
            io::Error::other(format!("cannot create folder {}: {e}", parent.display()))
        })?;
    }
    use rustix::fs::{CWD, RenameFlags, renameat_with};
    match renameat_with(CWD, from, CWD, to, RenameFlags::NOREPLACE) {
        Ok(()) => Ok(()),
        Err(rustix::io::Errno::EXIST) => Err(io::ErrorKind::AlreadyExists.into()),
        Err(rustix::io::Errno::XDEV) => copy_then_remove(from, to),
        // File systems without RENAME_NOREPLACE: link() never replaces either.
        Err(rustix::io::Errno::INVAL | rustix::io::Errno::NOSYS) => match fs::hard_link(from, to) {
            Ok(()) => fs::remove_file(from),
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Err(e),
            Err(_) => copy_then_remove(from, to),
        },
        Err(e) => Err(e.into()),
    }
}

/// The move across file systems: copy into a new file, keep mode and times, sync, read
/// the copy back and compare size and MD5 with the source's, sync the folder entry, and
/// only then remove the source. On any failure the partial copy (ours, created
/// exclusively) is removed and the source stays.
fn copy_then_remove(from: &Path, to: &Path) -> io::Result<()> {
    let mut src = fs::File::open(from)?;
    let meta = src.metadata()?;
    let mut dst = fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(to)?;
    let copied = (|| -> io::Result<()> {
        let (n, src_md5) = copy_hashing(&mut src, &mut dst)?;
        if n != meta.len() || src.metadata()?.len() != meta.len() {
            return Err(io::Error::other("source changed while copied"));
        }
        dst.set_permissions(meta.permissions())?;
        dst.set_times(
            fs::FileTimes::new()
                .set_modified(meta.modified()?)
                .set_accessed(meta.accessed()?),
        )?;
        dst.sync_all()?;
        let mut back = fs::File::open(to)?;
        let (m, dst_md5) = copy_hashing(&mut back, &mut io::sink())?;
        if m != n || dst_md5 != src_md5 {
            return Err(io::Error::other(
                "the copy does not read back as the source",
            ));
        }
        if let Some(parent) = to.parent() {
            fs::File::open(parent)?.sync_all()?;
        }
        Ok(())
    })();
    match copied {
        Ok(()) => fs::remove_file(from),
        Err(e) => {
            let _ = fs::remove_file(to);
            Err(e)
        }
    }
}

/// Copy `from` to `to`, returning the byte count and the MD5 of what was copied.
fn copy_hashing(from: &mut impl Read, to: &mut impl Write) -> io::Result<(u64, [u8; 16])> {
    use md5::{Digest, Md5};
    let mut md5 = Md5::new();
    let mut buf = vec![0u8; 1 << 20];
    let mut n = 0u64;
    loop {
        let got = match from.read(&mut buf) {
            Ok(0) => break,
            Ok(got) => got,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        md5.update(&buf[..got]);
        to.write_all(&buf[..got])?;
        n += got as u64;
    }
    to.flush()?;
    Ok((n, md5.finalize().into()))
}
