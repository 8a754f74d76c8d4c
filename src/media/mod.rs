//! Everything musicdex derives from a file's bytes: the content hash, the metadata hash,
//! the tags, and the record that brings them together.

pub mod audio_hash;
pub mod budget;
pub mod fast;
pub mod hash;
pub mod md5x8;
pub mod problem;
pub mod record;
pub mod reference;
pub mod sparse;
pub mod tags;

pub use record::FileRecord;
pub use tags::TagInfo;
