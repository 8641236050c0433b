//! MonkScript and ArrowScript front ends.
//!
//! Everything here is pure: no tokio, no clock, no randomness, no network, and no
//! file I/O beyond reading the files a caller names. The cluster state machine
//! depends on this crate, so it must stay deterministic.
//!
//! - [`tree`]: the ordered value tree definitions are stored as.
//! - [`arrow`]: ArrowScript, the embedded `<-` scripting language.
//! - [`monkscript`]: the MonkScript front end (parse, validate, resolve, MANIFEST, lint).
//! - [`cli_output`]: the output shape of CLI commands implemented here.

pub mod arrow;
pub mod cli_output;
pub mod monkscript;
pub mod tree;
