//! The vocabulary every other layer speaks, with no network and no archive: errors and exit
//! codes ([`error`]), size limits ([`limits`]), dates ([`date`]), messages, mailbox names and
//! flags ([`message`]), header reading ([`headers`]), the grading of failures ([`fault`]),
//! credentials ([`credentials`]), endpoint specs ([`endpoint`]), modified UTF-7
//! ([`mutf7`]) and the clock ([`time`]).
//!
//! May use: the standard library and external crates only; nothing else of mailkeep
//! (`tests/layers.rs` checks it).

pub mod credentials;
pub mod date;
pub mod endpoint;
pub mod error;
pub mod fault;
pub mod headers;
pub mod limits;
pub mod message;
pub mod mutf7;
pub mod time;
