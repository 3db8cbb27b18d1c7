//! zip archives (`.eml` files with mailkeep's `manifest.jsonl`): the writer ([`writer`]) and
//! the reader ([`reader`]).

pub mod reader;
pub mod writer;
