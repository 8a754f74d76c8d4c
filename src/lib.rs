//! musicdex: batch scanner for huge music libraries, and a music-blog scraper.

pub mod fetch;
pub mod scrape;
