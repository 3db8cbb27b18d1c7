//! mbox archives: the format itself (mboxrd `From ` lines and quoting, dialects: [`format`]),
//! the writer ([`writer`]) and the reader ([`reader`]).

pub mod format;
pub mod reader;
pub mod writer;
