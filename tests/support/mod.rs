//! Shared helpers for the integration tests. Each test file uses a subset.

#![allow(dead_code)]

pub mod corpus;
pub mod dovecot;
pub mod fake_imap;
pub mod fake_server;
pub mod real_server;
pub mod run;
pub mod server_suite;

use std::path::PathBuf;
use std::process::Command;

/// A `Command` for the `mailkeep` binary built by cargo for these tests.
pub fn mailkeep() -> Command {
    Command::new(env!("CARGO_BIN_EXE_mailkeep"))
}

/// The shared test corpus (`shared/corpus`, beside the crate).
pub fn corpus_dir() -> PathBuf {
    PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../shared/corpus"))
}
