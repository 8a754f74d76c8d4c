//! Fuzzy `dupes` groups: within each artist block, titles clustered by similarity.

use std::collections::HashMap;
use std::time::Instant;

use anyhow::Result;
use rusqlite::Connection;

use super::artists::ArtistBlocks;
use super::groups::{
    DupeGroup, DupesSummary, LibraryFile, MatchKind, UNKNOWN_DURATION_CONFIDENCE, lap, rank,
    split_by_duration,
};
use super::normalize::{numbers_of_key, title_key};
use super::similarity::{Prepared, similarity_at_least};
use super::sql;

/// Distinct titles above this many in one artist block are compared only within
/// sub-blocks that share their first or last two characters: a pair similar enough to
/// matter almost always agrees at one end, and "Various Artists" with 50k titles must
/// not cost 10⁹ comparisons.
const LARGE_BLOCK: usize = 2000;

/// A fuzzy group before its rows are read.
pub(super) struct Cluster {
    artist_key: String,
    confidence: f64,
    pub(super) ids: Vec<i64>,
}

/// Fuzzy clusters: per artist block, titles grouped by exact normalised key, then keys
/// joined while every pair reaches `min_score` with the same numbers (complete linkage;
/// see [`cluster_titles`]).
pub(super) fn fuzzy_clusters(
    conn: &Connection,
    min_score: f64,
    summary: &mut DupesSummary,
) -> Result<Vec<Cluster>> {
    let mut phase = Instant::now();
    let artists = ArtistBlocks::load(conn)?;
    summary.timings.fuzzy_artists_secs = lap(&mut phase);
    // One pass over the (artist, title) index in raw artist order. A block whose only
    // spelling has been read completely is processed at once; blocks with several
    // spellings wait until all of them have been read.
    let mut stmt = conn.prepare(&sql::artist_titles())?;
    let mut rows = stmt.query([])?;
    let mut pending: HashMap<u32, (usize, Vec<(i64, String)>)> = HashMap::new();
    let mut current: Option<(String, Vec<(i64, String)>)> = None;
    let mut clusters: Vec<Cluster> = Vec::new();

    let mut finish_spelling = |artist: String,
                               entries: Vec<(i64, String)>,
                               clusters: &mut Vec<Cluster>,
                               summary: &mut DupesSummary| {
        let Some(&(block, _)) = artists.raw.get(&artist) else {
            return;
        };
        let b = &artists.blocks[block as usize];
        if b.rows < 2 {
            return;
        }
        let entries = if b.spellings.len() == 1 {
            entries
        } else {
            let slot = pending.entry(block).or_default();
            slot.0 += 1;
            slot.1.extend(entries);
            if slot.0 < b.spellings.len() {
                return;
            }
            pending.remove(&block).map(|s| s.1).unwrap_or_default()
        };
        summary.artist_blocks += 1;
        let started = Instant::now();
        let found = cluster_titles(&entries, min_score, summary);
        summary.timings.fuzzy_cluster_secs += started.elapsed().as_secs_f64();
        for (confidence, ids) in found {
            clusters.push(Cluster {
                artist_key: b.key.clone(),
                confidence,
                ids,
            });
        }
    };

    while let Some(r) = rows.next()? {
        let artist = r.get_ref(0)?.as_str()?;
        let id: i64 = r.get(1)?;
        let title: String = r.get(2)?;
        match &mut current {
            Some((a, entries)) if a == artist => entries.push((id, title)),
            _ => {
                if let Some((a, entries)) = current.take() {
                    finish_spelling(a, entries, &mut clusters, summary);
                }
                current = Some((artist.to_string(), vec![(id, title)]));
            }
        }
    }
    if let Some((a, entries)) = current.take() {
        finish_spelling(a, entries, &mut clusters, summary);
    }
    drop(rows);
    summary.timings.fuzzy_scan_secs = lap(&mut phase);
    Ok(clusters)
}

/// Read the rows of fuzzy clusters and rank them.
pub(super) fn fetch_clusters(conn: &Connection, clusters: Vec<Cluster>) -> Result<Vec<DupeGroup>> {
    // Read the members in rowid order: neighbouring rows share pages, where cluster
    // order would jump around the table.
    let mut wanted: Vec<(i64, usize)> = clusters
        .iter()
        .enumerate()
        .flat_map(|(c, cluster)| cluster.ids.iter().map(move |&id| (id, c)))
        .collect();
    wanted.sort_unstable();
    let mut members: Vec<Vec<LibraryFile>> = vec![Vec::new(); clusters.len()];
    let mut by_id = conn.prepare(&sql::file_by_id())?;
    for (id, c) in wanted {
        members[c].push(by_id.query_row([id], LibraryFile::from_row)?);
    }
    let mut groups = Vec::with_capacity(clusters.len());
    for (cluster, files) in clusters.into_iter().zip(members) {
        // Similar titles of different lengths are different recordings (or edits).
        for (mut files, uncertain) in split_by_duration(files) {
            rank(&mut files);
            let title = files[0].title.as_deref().map(title_key).unwrap_or_default();
            groups.push(DupeGroup {
                kind: MatchKind::Fuzzy,
                key: format!("{} - {}", cluster.artist_key, title),
                confidence: if uncertain {
                    cluster.confidence.min(UNKNOWN_DURATION_CONFIDENCE)
                } else {
                    cluster.confidence
                },
                files,
            });
        }
    }
    Ok(groups)
}

/// Cluster one artist's titles. Returns (lowest similarity of any pair, member ids) for
/// every cluster of two or more files.
///
/// Complete linkage: every pair of titles in a cluster is similar enough and has the
/// same numbers ([`numbers_of_key`]), so a chain "Song for Clara" – "Song for Maya" –
/// "Song for Yara" whose ends differ more than allowed never becomes one cluster.
pub(crate) fn cluster_titles(
    entries: &[(i64, String)],
    min_score: f64,
    summary: &mut DupesSummary,
) -> Vec<(f64, Vec<i64>)> {
    // Identical normalised titles first: sorted together, no comparisons.
    let mut keyed: Vec<(String, i64)> = entries
        .iter()
        .filter_map(|(id, title)| {
            let k = title_key(title);
            (!k.is_empty()).then_some((k, *id))
        })
        .collect();
    keyed.sort_unstable();
    // Distinct keys as runs of `keyed`: key i is keyed[starts[i]..starts[i + 1]].
    let mut starts: Vec<usize> = Vec::with_capacity(keyed.len() + 1);
    for (x, (k, _)) in keyed.iter().enumerate() {
        if x == 0 || keyed[x - 1].0 != *k {
            starts.push(x);
        }
    }
    let n = starts.len();
    starts.push(keyed.len());
    if n == keyed.len() && n < 2 {
        return Vec::new();
    }
    let prepared: Vec<Prepared> = starts[..n]
        .iter()
        .map(|&x| Prepared::new(&keyed[x].0))
        .collect();
    let numbers: Vec<Vec<u64>> = starts[..n]
        .iter()
        .map(|&x| numbers_of_key(&keyed[x].0))
        .collect();
    // Similar pairs (i < j) and their similarity.
    let mut edges: HashMap<(u32, u32), f64> = HashMap::new();

    let mut compare_within = |members: &mut Vec<usize>, edges: &mut HashMap<(u32, u32), f64>| {
        members.sort_by_key(|&i| prepared[i].len());
        for (x, &i) in members.iter().enumerate() {
            for &j in &members[x + 1..] {
                // Sorted by length: once j is too long for i, so is every later one.
                if (prepared[i].len() as f64) < min_score * prepared[j].len() as f64 - 1e-9 {
                    break;
                }
                // "Part 1" and "Part 2" are two works, whatever the letters say.
                // (Lengths first: most titles have none, and slices compare by memcmp.)
                if numbers[i].len() != numbers[j].len()
                    || (!numbers[i].is_empty() && numbers[i] != numbers[j])
                {
                    continue;
                }
                summary.title_comparisons += 1;
                if let Some(s) = similarity_at_least(&prepared[i], &prepared[j], min_score) {
                    edges.insert((i.min(j) as u32, i.max(j) as u32), s);
                }
            }
        }
    };
    if n <= LARGE_BLOCK {
        let mut all: Vec<usize> = (0..n).collect();
        compare_within(&mut all, &mut edges);
    } else {
        for end in [Ends::First, Ends::Last] {
            let mut buckets: HashMap<String, Vec<usize>> = HashMap::new();
            for (i, &x) in starts[..n].iter().enumerate() {
                buckets.entry(end.of(&keyed[x].0)).or_default().push(i);
            }
            for members in buckets.values_mut() {
                compare_within(members, &mut edges);
            }
        }
    }

    // Agglomerate, most similar pair first; two clusters merge only when every pair
    // across them is an edge. Ties are broken by key order, so the result is stable.
    // Most blocks have no edge at all: only keys on an edge get a member list.
    let mut order: Vec<((u32, u32), f64)> = edges.iter().map(|(&k, &v)| (k, v)).collect();
    order.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
    let mut cluster_of: Vec<u32> = (0..n as u32).collect();
    let mut members: HashMap<u32, Vec<u32>> = HashMap::new();
    let mut low: HashMap<u32, f64> = HashMap::new();
    for ((i, j), _) in order {
        let (ci, cj) = (cluster_of[i as usize], cluster_of[j as usize]);
        if ci == cj {
            continue;
        }
        let mi = members.remove(&ci).unwrap_or_else(|| vec![ci]);
        let mj = members.remove(&cj).unwrap_or_else(|| vec![cj]);
        let mut cross_low = 1.0f64;
        let complete = mi.iter().all(|&a| {
            mj.iter().all(|&b| match edges.get(&(a.min(b), a.max(b))) {
                Some(&s) => {
                    cross_low = cross_low.min(s);
                    true
                }
                None => false,
            })
        });
        if !complete {
            members.insert(ci, mi);
            members.insert(cj, mj);
            continue;
        }
        let (keep, mut kept, gone, moved) = if mi.len() >= mj.len() {
            (ci, mi, cj, mj)
        } else {
            (cj, mj, ci, mi)
        };
        for &m in &moved {
            cluster_of[m as usize] = keep;
        }
        kept.extend(moved);
        members.insert(keep, kept);
        let l = [low.remove(&gone), low.get(&keep).copied(), Some(cross_low)]
            .into_iter()
            .flatten()
            .fold(1.0f64, f64::min);
        low.insert(keep, l);
    }

    let mut slot_of_cluster = vec![usize::MAX; n];
    let mut out: Vec<(f64, Vec<i64>)> = Vec::new();
    for i in 0..n {
        let c = cluster_of[i] as usize;
        if slot_of_cluster[c] == usize::MAX {
            slot_of_cluster[c] = out.len();
            out.push((low.get(&(c as u32)).copied().unwrap_or(1.0), Vec::new()));
        }
        let ids = keyed[starts[i]..starts[i + 1]].iter().map(|(_, id)| *id);
        out[slot_of_cluster[c]].1.extend(ids);
    }
    out.retain(|(_, ids)| ids.len() > 1);
    out
}

#[derive(Clone, Copy)]
enum Ends {
    First,
    Last,
}

impl Ends {
    fn of(self, k: &str) -> String {
        match self {
            Ends::First => k.chars().take(2).collect(),
            Ends::Last => {
                let mut v: Vec<char> = k.chars().rev().take(2).collect();
                v.reverse();
                v.into_iter().collect()
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dupes::similarity::similarity;

    fn entries(titles: &[&str]) -> Vec<(i64, String)> {
        titles
            .iter()
            .enumerate()
            .map(|(i, t)| (i as i64, t.to_string()))
            .collect()
    }

    fn clusters(titles: &[&str], min: f64) -> Vec<Vec<i64>> {
        let mut s = DupesSummary::default();
        let mut out: Vec<Vec<i64>> = cluster_titles(&entries(titles), min, &mut s)
            .into_iter()
            .map(|(_, mut ids)| {
                ids.sort();
                ids
            })
            .collect();
        out.sort();
        out
    }

    #[test]
    fn titles_cluster_by_similarity() {
        let got = clusters(
            &[
                "Crazy in Love",
                "Crazy In Love (Radio Edit)",
                "Halo",
                "Crazy in Luv",
                "Single Ladies",
                "Halo [HD]",
                "Irreplaceable",
            ],
            0.8,
        );
        assert_eq!(got, vec![vec![0, 1, 3], vec![2, 5]]);
        // Stricter: the misspelling (0.85) no longer joins.
        assert_eq!(
            clusters(&["Crazy in Love", "Crazy in Luv", "Crazy in love"], 0.9),
            vec![vec![0, 2]]
        );
    }

    #[test]
    fn large_blocks_still_find_near_titles() {
        let mut rng = fastrand::Rng::with_seed(11);
        let word = |rng: &mut fastrand::Rng| -> String {
            (0..rng.usize(3..9))
                .map(|_| rng.alphabetic().to_ascii_lowercase())
                .collect()
        };
        let mut titles: Vec<String> = (0..LARGE_BLOCK + 500)
            .map(|_| format!("{} {} {}", word(&mut rng), word(&mut rng), word(&mut rng)))
            .collect();
        let n = titles.len() as i64;
        // An edition suffix, a typo at the end, a typo at the start.
        titles.push(format!("{} (Remastered 2011)", titles[7]));
        titles.push(format!("{}x", titles[42]));
        titles.push(format!("x{}", &titles[99][1..]));
        let refs: Vec<&str> = titles.iter().map(String::as_str).collect();
        let got = clusters(&refs, 0.9);
        assert_eq!(got, vec![vec![7, n], vec![42, n + 1], vec![99, n + 2]]);
    }

    #[test]
    fn chains_of_similar_titles_do_not_merge() {
        // Clara–Yara and Yara–Maya are within 0.8, Clara–Maya is not.
        let t = ["Song for Clara", "Song for Maya", "Song for Yara"];
        let mut s = DupesSummary::default();
        let sim = |a: usize, b: usize| similarity(&title_key(t[a]), &title_key(t[b]));
        assert!(sim(0, 1) < 0.8);
        assert!(sim(0, 2) >= 0.8 && sim(1, 2) >= 0.8);
        let got = cluster_titles(&entries(&t), 0.8, &mut s);
        assert_eq!(got.len(), 1, "{got:?}");
        let mut ids = got[0].1.clone();
        ids.sort();
        // The closer pair (Clara–Yara, 0.857 over 0.846) wins; Maya stays alone.
        assert_eq!(ids, vec![0, 2]);
        // Every pair of every cluster matches, over many seeded blocks of near titles.
        let mut rng = fastrand::Rng::with_seed(12);
        for _ in 0..200 {
            let base: String = (0..rng.usize(6..12)).map(|_| rng.lowercase()).collect();
            let titles: Vec<String> = (0..rng.usize(3..12))
                .map(|_| {
                    let mut c: Vec<char> = base.chars().collect();
                    for _ in 0..rng.usize(0..4) {
                        let at = rng.usize(..c.len());
                        c[at] = rng.lowercase();
                    }
                    c.into_iter().collect()
                })
                .collect();
            let refs: Vec<&str> = titles.iter().map(String::as_str).collect();
            for (low, ids) in cluster_titles(&entries(&refs), 0.8, &mut s) {
                for &a in &ids {
                    for &b in &ids {
                        let sim = similarity(&titles[a as usize], &titles[b as usize]);
                        assert!(sim >= 0.8 && sim >= low - 1e-9, "{titles:?} {ids:?}");
                    }
                }
            }
        }
    }

    #[test]
    fn numbered_titles_never_cluster() {
        for pair in [
            [
                "Another Brick in the Wall, Part 1",
                "Another Brick in the Wall, Part 2",
            ],
            ["Symphony No. 5", "Symphony No. 6"],
            ["Piano Sonata 14", "Piano Sonata 18"],
            ["Op. 27 No. 1", "Op. 27 No. 2"],
            ["Greatest Hits Vol. II", "Greatest Hits Vol. III"],
            ["Revolution 1", "Revolution 9"],
            ["Revolution 1", "Revolution"],
            ["I. Allegro con brio", "II. Allegro con brio"],
        ] {
            assert_eq!(clusters(&pair, 0.5), Vec::<Vec<i64>>::new(), "{pair:?}");
        }
        // The same number, however written, and edition suffixes still group.
        assert_eq!(
            clusters(
                &[
                    "Another Brick in the Wall, Part 2",
                    "Another Brick In The Wall (Part II)"
                ],
                0.8
            ),
            vec![vec![0, 1]]
        );
        assert_eq!(
            clusters(
                &[
                    "Revolution 9 (Original Mix)",
                    "Revolution 9 - Remastered",
                    "Revolution 9 [HD]"
                ],
                0.8
            ),
            vec![vec![0, 1, 2]]
        );
    }
}
