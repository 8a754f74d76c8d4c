//! musicdex: a batch scanner for huge music libraries. See README.md.

pub mod engine;
// `gen` is a reserved keyword in edition 2024, hence the raw identifier; callers write
// `musicdex::r#gen::generate`.
pub mod r#gen;
pub mod index;
pub mod media;
pub mod scan;
pub mod store;
