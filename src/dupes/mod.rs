//! Duplicate finding (`musicdex dupes`) and vetting new music against the library
//! (`musicdex vet`).

pub mod groups;
pub mod normalize;
pub mod report;
pub mod similarity;
mod sql;
pub mod synth;

pub mod vet;

pub use groups::{By, DupeGroup, DupesOptions, DupesReport, LibraryFile, MatchKind};
pub use vet::{Verdict, VetOptions, VetReport};
