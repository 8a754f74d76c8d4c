//! Helpers of the command line that main.rs keeps out of its way: pipe-safe output and
//! the maintenance subcommands.

pub mod maintain;
pub mod out;
