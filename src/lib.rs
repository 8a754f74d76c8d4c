//! musicdex: a batch scanner for huge music libraries, and a music-blog scraper.
//! See README.md.

pub mod dupes;
pub mod engine;
pub mod fetch;
// `gen` is a reserved keyword in edition 2024, hence the raw identifier.
pub mod r#gen;
pub mod index;
pub mod media;
pub mod process;
pub mod scan;
pub mod scrape;
pub mod store;
pub mod text;
