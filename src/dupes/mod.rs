//! Duplicate finding (`musicdex dupes`) and vetting new music against the library
//! (`musicdex vet`).

mod artists;
mod fuzzy;
pub mod groups;
mod hash_groups;
pub mod normalize;
pub mod report;
pub mod similarity;
mod sql;
pub mod synth;

pub mod vet;

pub use groups::{By, DupeGroup, DupesOptions, DupesReport, LibraryFile, MatchKind};
pub use vet::{Verdict, VetOptions, VetReport};
