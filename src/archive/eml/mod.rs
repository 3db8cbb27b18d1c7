//! Folders of single-message `.eml` files: the writer ([`writer`]) and the reader
//! ([`reader`]).

pub mod reader;
pub mod writer;
