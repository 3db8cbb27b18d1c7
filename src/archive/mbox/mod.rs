//! mbox archives: the format itself (mboxrd `From ` lines and quoting, dialects: [`format`]),
//! the writer ([`writer`]) and the reader ([`reader`]), Google Takeout files ([`takeout`]).

pub mod format;
pub mod reader;
pub mod takeout;
pub mod writer;
