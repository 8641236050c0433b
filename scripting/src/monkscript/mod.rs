//! MonkScript: the YAML template language users describe what they run with.
//!
//! Pipeline: [`syntax`] reads YAML into positioned nodes; [`validate`] builds the
//! [`model`] and checks it against [`schema`]; [`load`] reads files, directories and
//! [`manifest`]s and checks inheritance across files; [`references`] checks names that
//! must point at something (containers, actions, targets, members); [`resolve`] merges `inherits`
//! chains on [`crate::tree::Tree`] values; [`cli`] is `monk lint` / `monk dump` and the
//! entry points the daemon uses; [`typed`] reads a (resolved) definition into Rust structs
//! for every kind and section; [`runtime`] turns a resolved runnable plus `--set` overrides
//! into the container specs an executor runs; [`path`] is the one rule for template paths;
//! [`stored`] checks definitions that reach a peer in a proposal by the same rules.
//! Problems are [`diagnostic::Diagnostic`]s.

pub mod build;
pub mod cli;
pub mod diagnostic;
pub mod load;
pub mod manifest;
pub mod model;
pub mod path;
pub mod references;
pub mod resolve;
pub mod runtime;
pub mod schema;
pub mod stored;
pub mod syntax;
pub mod typed;
pub mod validate;
