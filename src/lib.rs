//! musicdex: batch scanner for huge music libraries.

// `gen` is a reserved keyword in edition 2024, hence the raw identifier; callers write
// `musicdex::r#gen::generate`.
pub mod r#gen;
