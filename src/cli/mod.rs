//! The command line: the clap structs ([`args`]), the dispatch of a command ([`dispatch`]), their validation into plans ([`config`]),
//! the run file of `mailkeep run` ([`runconf`]) and its scheduler ([`runner`]), and the rendering of
//! reports ([`render`]).
//!
//! May use: every other layer ([`crate::core`], [`crate::protocol`], [`crate::archive`],
//! [`crate::engine`]); nothing below imports from here (`tests/layers.rs` checks it).

pub mod args;
pub mod config;
pub mod dispatch;
pub mod render;
pub mod runconf;
pub mod runner;

pub use args::*;
