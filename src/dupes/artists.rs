//! Artist blocks: the raw artist spellings of the index grouped by folded key, the
//! unit fuzzy matching of both `dupes` and `vet` compares titles within.

use std::collections::HashMap;

use anyhow::Result;
use rusqlite::Connection;

use super::normalize::artist_key;
use super::sql;

/// Every raw artist spelling in the index that may match fuzzily, grouped by folded
/// key. The index is ordered by raw bytes, so "BEYONCÉ" and "Beyoncé" are far apart in
/// it; this map is what brings them together.
pub(crate) struct ArtistBlocks {
    /// Raw spelling → (block number, rows with that spelling).
    pub raw: HashMap<String, (u32, u64)>,
    by_key: HashMap<String, u32>,
    /// Per block: folded key, raw spellings, rows.
    pub blocks: Vec<ArtistBlock>,
}

pub(crate) struct ArtistBlock {
    pub key: String,
    pub spellings: Vec<String>,
    pub rows: u64,
}

impl ArtistBlocks {
    pub fn load(conn: &Connection) -> Result<ArtistBlocks> {
        let mut stmt = conn.prepare(&sql::artist_counts())?;
        let mut rows = stmt.query([])?;
        let mut by_key: HashMap<String, u32> = HashMap::new();
        let mut out = ArtistBlocks {
            raw: HashMap::new(),
            by_key: HashMap::new(),
            blocks: Vec::new(),
        };
        while let Some(r) = rows.next()? {
            let artist: String = r.get(0)?;
            let n = r.get::<_, i64>(1)? as u64;
            let key = artist_key(&artist);
            if key.is_empty() {
                continue;
            }
            let block = *by_key.entry(key.clone()).or_insert_with(|| {
                out.blocks.push(ArtistBlock {
                    key,
                    spellings: Vec::new(),
                    rows: 0,
                });
                (out.blocks.len() - 1) as u32
            });
            let b = &mut out.blocks[block as usize];
            b.spellings.push(artist.clone());
            b.rows += n;
            out.raw.insert(artist, (block, n));
        }
        out.by_key = by_key;
        Ok(out)
    }

    pub fn block_of(&self, artist: &str) -> Option<&ArtistBlock> {
        // The common case: the exact spelling is in the index.
        if let Some((b, _)) = self.raw.get(artist) {
            return Some(&self.blocks[*b as usize]);
        }
        let b = self.by_key.get(&artist_key(artist))?;
        Some(&self.blocks[*b as usize])
    }
}
