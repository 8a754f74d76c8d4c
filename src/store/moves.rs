//! Moved and renamed files keep their row (issue 15, item 4).
//!
//! The engines see a moved file as one path gone and one path new; the writer has by
//! then inserted a row for the new path. After the walk, each vanished row is paired with
//! a row this run inserted when they are the same file: same size and content hash
//! first, then same size and audio hash among the rows left (see [`KEYS`]). The old row
//! takes the new row's path and values and keeps its `id` and `indexed_at`; the new row
//! is dropped. A file that matches several, or is matched by several, is not paired:
//! remove + add, as before.
//! Rows that were already inactive (the file vanished in an earlier run) are paired the
//! same way with the new rows left over, within the run's roots, and reactivated.

use std::collections::HashMap;
use std::path::PathBuf;

use anyhow::Result;
use rusqlite::Connection;
use rusqlite::types::Value;

use super::subtree_range;
use super::writer::Candidate;
use crate::media::record::path_bytes;

/// What pairing needs of a row.
#[derive(Clone, Debug)]
struct Ident {
    id: i64,
    size: i64,
    audio: Option<String>,
    content: Option<String>,
}

impl Ident {
    fn from_row(r: &rusqlite::Row) -> rusqlite::Result<Ident> {
        Ok(Ident {
            id: r.get(0)?,
            size: r.get(1)?,
            audio: r.get(2)?,
            content: r.get(3)?,
        })
    }
}

const IDENT: &str = "SELECT id, file_size, audio_hash, file_content_hash FROM library_index";

/// The keys that make two rows one file, tried in this order: the same size and content
/// hash (the same bytes at head and tail), then, among the rows the first key left
/// unpaired, the same size and audio hash (a retagged file). A library where many files
/// share their audio (one recording in several folders, or short generated files) still
/// pairs each moved file by its exact bytes first; the audio hash only pairs what is
/// left. A row with neither hash (its bytes could not be read) is nothing.
const KEYS: [fn(&Ident) -> Option<&str>; 2] = [|r| r.content.as_deref(), |r| r.audio.as_deref()];

/// The content hash covers the first and last 64 KiB only: two files equal there but with
/// other audio between (a big cover pushed the payload's head to the middle) are two
/// files, and their audio hashes say so.
fn audio_agrees(a: &Ident, b: &Ident) -> bool {
    match (&a.audio, &b.audio) {
        (Some(x), Some(y)) => x == y,
        _ => true,
    }
}

/// Rows (those still unpaired) grouped by one key, with the size.
fn by_key<'a>(
    rows: &'a [Ident],
    free: &[bool],
    key: fn(&Ident) -> Option<&str>,
) -> HashMap<(i64, &'a str), Vec<usize>> {
    let mut out: HashMap<(i64, &str), Vec<usize>> = HashMap::new();
    for (i, r) in rows.iter().enumerate() {
        if let (true, Some(k)) = (free[i], key(r)) {
            out.entry((r.size, k)).or_default().push(i);
        }
    }
    out
}

/// Pairs `(from, to)` of indexes into `olds` and `news`: for each key in turn, an old and
/// a new row still unpaired that share it and are each other's only match. Several
/// candidates on either side are ambiguous and stay unpaired (remove + add).
fn pair(olds: &[Ident], news: &[Ident]) -> Vec<(usize, usize)> {
    let mut old_free = vec![true; olds.len()];
    let mut new_free = vec![true; news.len()];
    let mut out = Vec::new();
    for key in KEYS {
        let old_by = by_key(olds, &old_free, key);
        let new_by = by_key(news, &new_free, key);
        let found: Vec<(usize, usize)> = old_by
            .iter()
            .filter_map(|(k, o)| match (&o[..], new_by.get(k).map(|n| &n[..])) {
                (&[i], Some(&[j])) if audio_agrees(&olds[i], &news[j]) => Some((i, j)),
                _ => None,
            })
            .collect();
        for &(i, j) in &found {
            old_free[i] = false;
            new_free[j] = false;
        }
        out.extend(found);
    }
    out.sort_unstable();
    out
}

/// What [`resolve`] did.
#[derive(Debug, Default)]
pub struct Moves {
    /// Vanished rows of this run that took a new path.
    pub moved: u64,
    /// Inactive rows of earlier runs that took a new path and are active again.
    pub reactivated: u64,
    /// The vanished rows that were not paired: still candidates for removal.
    pub missing: Vec<Candidate>,
}

/// Pair the rows the run found missing with the rows it inserted (ids above
/// `last_id_before`, the largest id when the run started), then the new rows left over
/// with the inactive rows below `roots`, and move each pair into its old row.
pub fn resolve(
    conn: &mut Connection,
    missing: Vec<Candidate>,
    last_id_before: i64,
    roots: &[PathBuf],
) -> Result<Moves> {
    let mut out = Moves::default();
    // Nothing vanished and nothing new (the steady state): nothing can pair, and one probe
    // of the rowid key says so. No index serves `is_active = 0` (the partial indexes hold
    // active rows), so the question of inactive rows, a scan of the table (~0.4 s at 1M
    // rows), is asked only when new rows could pair with them, and never on a first load:
    // inactive rows come from earlier runs, so their ids are at most `last_id_before`.
    let any_new = || -> Result<bool> {
        Ok(conn.query_row(
            "SELECT EXISTS (SELECT 1 FROM library_index WHERE id > ?1)",
            [last_id_before],
            |r| r.get(0),
        )?)
    };
    if missing.is_empty() && !any_new()? {
        out.missing = missing;
        return Ok(out);
    }
    let any_inactive: bool = last_id_before > 0
        && conn.query_row(
            "SELECT EXISTS (SELECT 1 FROM library_index WHERE is_active = 0 AND id <= ?1)",
            [last_id_before],
            |r| r.get(0),
        )?;
    if missing.is_empty() && !any_inactive {
        out.missing = missing;
        return Ok(out);
    }
    let news: Vec<Ident> = conn
        .prepare(&format!("{IDENT} WHERE id > ?1 AND is_active = 1"))?
        .query_map([last_id_before], Ident::from_row)?
        .collect::<rusqlite::Result<_>>()?;
    if news.is_empty() {
        out.missing = missing;
        return Ok(out);
    }
    let olds: Vec<Ident> = {
        let mut stmt = conn.prepare_cached(&format!("{IDENT} WHERE id = ?1"))?;
        missing
            .iter()
            .map(|c| stmt.query_row([c.id], Ident::from_row))
            .collect::<rusqlite::Result<_>>()?
    };
    let pairs = pair(&olds, &news);
    let mut used_new = vec![false; news.len()];
    let mut used_old = vec![false; olds.len()];
    let columns = movable_columns(conn)?;
    let tx = conn.transaction()?;
    for &(i, j) in &pairs {
        move_row(&tx, &columns, news[j].id, olds[i].id)?;
        used_new[j] = true;
        used_old[i] = true;
    }
    out.moved = pairs.len() as u64;
    out.missing = missing
        .into_iter()
        .zip(used_old)
        .filter_map(|(c, used)| (!used).then_some(c))
        .collect();

    // Across runs: rows marked inactive before, below the roots of this run.
    let left: Vec<Ident> = news
        .into_iter()
        .zip(&used_new)
        .filter_map(|(n, used)| (!used).then_some(n))
        .collect();
    if !left.is_empty() && any_inactive {
        let mut inactive = Vec::new();
        {
            // Each root's rows by a range of the unique path index.
            let mut stmt = tx.prepare(&format!(
                "{IDENT} WHERE path_bytes >= ?1 AND path_bytes < ?2 AND is_active = 0"
            ))?;
            for root in roots {
                let (lo, hi) = subtree_range(path_bytes(root));
                let rows = stmt.query_map(rusqlite::params![lo, hi], Ident::from_row)?;
                for r in rows {
                    inactive.push(r?);
                }
            }
        }
        let pairs = pair(&inactive, &left);
        for &(i, j) in &pairs {
            move_row(&tx, &columns, left[j].id, inactive[i].id)?;
        }
        out.reactivated = pairs.len() as u64;
    }
    tx.commit()?;
    Ok(out)
}

/// Every column of `library_index` a moved file takes from its new row: all but the
/// row's identity (`id`) and first sighting (`indexed_at`). Read from the table, so a
/// column added by a later migration moves too.
fn movable_columns(conn: &Connection) -> Result<Vec<String>> {
    let cols: Vec<String> = conn
        .prepare("SELECT name FROM pragma_table_info('library_index')")?
        .query_map([], |r| r.get(0))?
        .collect::<rusqlite::Result<_>>()?;
    Ok(cols
        .into_iter()
        .filter(|c| c != "id" && c != "indexed_at")
        .collect())
}

/// The row `from` (inserted by this run) becomes row `to`: its values copied over, then
/// it is dropped. The path is unique, so the new row goes first.
fn move_row(tx: &rusqlite::Transaction, columns: &[String], from: i64, to: i64) -> Result<()> {
    let quoted: Vec<String> = columns
        .iter()
        .map(|c| format!("\"{}\"", c.replace('"', "\"\"")))
        .collect();
    let values: Vec<Value> = tx
        .prepare_cached(&format!(
            "SELECT {} FROM library_index WHERE id = ?1",
            quoted.join(", ")
        ))?
        .query_row([from], |r| {
            (0..quoted.len()).map(|i| r.get::<_, Value>(i)).collect()
        })?;
    tx.prepare_cached("DELETE FROM library_index WHERE id = ?1")?
        .execute([from])?;
    let set: Vec<String> = quoted
        .iter()
        .enumerate()
        .map(|(i, c)| format!("{c} = ?{}", i + 1))
        .collect();
    let mut bound = values;
    bound.push(Value::Integer(to));
    tx.prepare_cached(&format!(
        "UPDATE library_index SET {} WHERE id = ?{}",
        set.join(", "),
        bound.len()
    ))?
    .execute(rusqlite::params_from_iter(bound.iter()))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(id: i64, size: i64, audio: Option<&str>, content: Option<&str>) -> Ident {
        Ident {
            id,
            size,
            audio: audio.map(str::to_string),
            content: content.map(str::to_string),
        }
    }

    /// The rule written the slow way: per key, an unpaired old row and an unpaired new
    /// row are paired when each is the only unpaired row on its side with that size and
    /// key (and their audio hashes do not disagree).
    fn pair_by_scan(olds: &[Ident], news: &[Ident]) -> Vec<(usize, usize)> {
        let mut of = vec![true; olds.len()];
        let mut nf = vec![true; news.len()];
        let mut out = Vec::new();
        for key in KEYS {
            let same =
                |a: &Ident, b: &Ident| a.size == b.size && key(a).is_some() && key(a) == key(b);
            let mut found = Vec::new();
            for (i, o) in olds.iter().enumerate().filter(|&(i, _)| of[i]) {
                let m: Vec<usize> = (0..news.len())
                    .filter(|&j| nf[j] && same(o, &news[j]))
                    .collect();
                let back = (0..olds.len())
                    .filter(|&k| of[k] && same(&olds[k], o))
                    .count();
                if let [j] = m[..]
                    && back == 1
                    && audio_agrees(o, &news[j])
                {
                    found.push((i, j));
                }
            }
            for &(i, j) in &found {
                of[i] = false;
                nf[j] = false;
            }
            out.extend(found);
        }
        out.sort_unstable();
        out
    }

    #[test]
    fn pairing_rules() {
        // Seeded: few sizes and hashes, so that rows share keys often; each old row gets
        // 0, 1 or 2 new rows, exact copies or retagged (another content hash).
        let mut rng = fastrand::Rng::with_seed(15);
        for _ in 0..2000 {
            let mut olds = Vec::new();
            let mut news = Vec::new();
            let n = rng.usize(1..12);
            for i in 0..n {
                let size = rng.i64(1..4);
                let audio = (rng.u8(..4) > 0).then(|| format!("a{}", rng.usize(..4)));
                let content = (rng.u8(..8) > 0).then(|| format!("c{}", rng.usize(..6)));
                olds.push(id(i as i64, size, audio.as_deref(), content.as_deref()));
            }
            for o in &olds {
                for _ in 0..rng.usize(0..3) {
                    let mut n = Ident {
                        id: 100 + news.len() as i64,
                        ..o.clone()
                    };
                    if rng.bool() {
                        n.content = Some(format!("c{}", rng.usize(..12)));
                    }
                    news.push(n);
                }
            }
            rng.shuffle(&mut news);
            assert_eq!(
                pair(&olds, &news),
                pair_by_scan(&olds, &news),
                "{olds:?} {news:?}"
            );
        }
    }

    #[test]
    fn exact_bytes_pair_first_where_many_files_share_their_audio() {
        // 50 files, all with the same audio and size but their own tags (as in a library
        // of short generated files), all moved: each pairs by its content hash. One more
        // is retagged while moved: the audio hash pairs it, as the only one left.
        let olds: Vec<Ident> = (0..51)
            .map(|i| id(i, 7, Some("a"), Some(&format!("c{i}"))))
            .collect();
        let mut news: Vec<Ident> = (0..50)
            .map(|i| id(100 + i, 7, Some("a"), Some(&format!("c{i}"))))
            .collect();
        news.push(id(150, 7, Some("a"), Some("retagged")));
        let mut want: Vec<(usize, usize)> = (0..51).map(|i| (i, i)).collect();
        want.sort_unstable();
        assert_eq!(pair(&olds, &news), want);
        // Two identical copies, both moved: ambiguous, neither pairs; one moved: it pairs.
        let two = [
            id(1, 5, Some("x"), Some("c")),
            id(2, 5, Some("x"), Some("c")),
        ];
        let moved = [
            id(3, 5, Some("x"), Some("c")),
            id(4, 5, Some("x"), Some("c")),
        ];
        assert_eq!(pair(&two, &moved), vec![]);
        assert_eq!(pair(&two[..1], &moved[..1]), vec![(0, 0)]);
        // Equal head and tail but other audio between: not one file.
        assert_eq!(
            pair(
                &[id(1, 5, Some("x"), Some("c"))],
                &[id(2, 5, Some("y"), Some("c"))]
            ),
            vec![]
        );
        // A row from before the audio hash pairs by its content hash.
        assert_eq!(
            pair(
                &[id(1, 5, None, Some("c"))],
                &[id(2, 5, Some("y"), Some("c"))]
            ),
            vec![(0, 0)]
        );
        assert_eq!(
            pair(&[id(1, 5, None, None)], &[id(2, 5, None, None)]),
            vec![]
        );
    }
}
