//! Thunderbird profiles (`Mail/Local Folders`, `ImapMail/<server>`): the writer ([`writer`]),
//! the reader ([`reader`]) and the `X-Mozilla-*` headers both deal with ([`mozilla`]).

pub mod mozilla;
pub mod reader;
pub mod writer;
