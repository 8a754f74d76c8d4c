//! musicdex: a batch scanner for huge music libraries. See README.md.

pub mod dupes;
pub mod engine;
pub mod index;
pub mod media;
pub mod scan;
pub mod store;
