//! Maildir archives (Maildir++ and plain nested layouts): the writer ([`writer`]) and the
//! reader ([`reader`]).

pub mod reader;
pub mod writer;
