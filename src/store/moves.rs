//! Moved and renamed files keep their row (issue 15, item 4).
//!
//! The engines see a moved file as one path gone and one path new; the writer has by
//! then inserted a row for the new path. After the walk, each vanished row is paired with
//! a row this run inserted when they are the same file: same size, and the same audio
//! hash (the content hash where either has none). The old row takes the new row's path
//! and values and keeps its `id` and `indexed_at`; the new row is dropped. A file that
//! matches several, or is matched by several, is not paired: remove + add, as before.
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

/// Whether two rows are one file: same size, same audio hash when both have one, else
/// the same content hash. A row with neither (its bytes could not be read) is nothing.
fn same_file(a: &Ident, b: &Ident) -> bool {
    if a.size != b.size {
        return false;
    }
    match (&a.audio, &b.audio) {
        (Some(x), Some(y)) => x == y,
        _ => a.content.is_some() && a.content == b.content,
    }
}

/// Rows of `pool` that may be the same file as `x`, by lookup rather than a scan.
struct Lookup<'a> {
    by_audio: HashMap<(i64, &'a str), Vec<usize>>,
    by_content: HashMap<(i64, &'a str), Vec<usize>>,
    rows: &'a [Ident],
}

impl<'a> Lookup<'a> {
    fn new(rows: &'a [Ident]) -> Lookup<'a> {
        let mut by_audio: HashMap<(i64, &str), Vec<usize>> = HashMap::new();
        let mut by_content: HashMap<(i64, &str), Vec<usize>> = HashMap::new();
        for (i, r) in rows.iter().enumerate() {
            if let Some(a) = &r.audio {
                by_audio.entry((r.size, a)).or_default().push(i);
            }
            if let Some(c) = &r.content {
                by_content.entry((r.size, c)).or_default().push(i);
            }
        }
        Lookup {
            by_audio,
            by_content,
            rows,
        }
    }

    fn matches(&self, x: &Ident) -> Vec<usize> {
        let mut out: Vec<usize> = Vec::new();
        let keys = [
            x.audio
                .as_deref()
                .and_then(|a| self.by_audio.get(&(x.size, a))),
            x.content
                .as_deref()
                .and_then(|c| self.by_content.get(&(x.size, c))),
        ];
        for i in keys.into_iter().flatten().flatten() {
            if !out.contains(i) && same_file(x, &self.rows[*i]) {
                out.push(*i);
            }
        }
        out
    }
}

/// Pairs `(from, to)` of indexes into `olds` and `news` where each is the other's only
/// match.
fn pair(olds: &[Ident], news: &[Ident]) -> Vec<(usize, usize)> {
    let new_lookup = Lookup::new(news);
    let old_lookup = Lookup::new(olds);
    let mut out = Vec::new();
    for (i, o) in olds.iter().enumerate() {
        if let [j] = new_lookup.matches(o)[..]
            && old_lookup.matches(&news[j]) == [i]
        {
            out.push((i, j));
        }
    }
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
    // The steady state (nothing missing, nothing inactive) and a first load pay one
    // query, not a read of every row the run inserted.
    let any_inactive: bool = conn.query_row(
        "SELECT EXISTS (SELECT 1 FROM library_index WHERE is_active = 0)",
        [],
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

    #[test]
    fn pairing_rules() {
        // Seeded: each old row gets 0, 1 or 2 new rows that are the same file, and the
        // pairs must be exactly the old rows with one new row that matches no other.
        let mut rng = fastrand::Rng::with_seed(15);
        for _ in 0..300 {
            let mut olds = Vec::new();
            let mut news = Vec::new();
            let mut want = Vec::new();
            let n = rng.usize(1..12);
            for i in 0..n {
                let size = rng.i64(1..4);
                let audio = rng.bool().then(|| format!("a{}", i % 5));
                let content = Some(format!("c{}", rng.usize(..3)));
                olds.push(id(i as i64, size, audio.as_deref(), content.as_deref()));
            }
            for o in &olds {
                let copies = rng.usize(0..3);
                for _ in 0..copies {
                    news.push(Ident {
                        id: 100 + news.len() as i64,
                        ..o.clone()
                    });
                }
            }
            for (i, o) in olds.iter().enumerate() {
                let m: Vec<usize> = (0..news.len())
                    .filter(|&j| same_file(o, &news[j]))
                    .collect();
                if let [j] = m[..] {
                    let back: Vec<usize> = (0..olds.len())
                        .filter(|&k| same_file(&olds[k], &news[j]))
                        .collect();
                    if back == [i] {
                        want.push((i, j));
                    }
                }
            }
            assert_eq!(pair(&olds, &news), want);
        }
    }

    #[test]
    fn same_file_keys() {
        let a = id(1, 10, Some("x"), Some("c1"));
        // Retagged: other content hash, same audio.
        assert!(same_file(&a, &id(2, 10, Some("x"), Some("c2"))));
        assert!(!same_file(&a, &id(2, 11, Some("x"), Some("c1"))));
        assert!(!same_file(&a, &id(2, 10, Some("y"), Some("c1"))));
        // An old row from before the audio hash: the content hash decides.
        assert!(same_file(&id(1, 10, None, Some("c1")), &a));
        assert!(!same_file(&id(1, 10, None, Some("c2")), &a));
        assert!(!same_file(&id(1, 10, None, None), &id(2, 10, None, None)));
    }
}
