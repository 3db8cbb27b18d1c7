//! The small surface the fuzz targets (`fuzz/src/lib.rs`, also run by
//! `tests/fuzz_regressions.rs`) reach beyond what mailkeep's modules offer anyway: parsers that
//! are otherwise internal helpers. Not part of mailkeep's interface (hidden from the docs).

pub use crate::archive::maildir::writer::{base_name, hash16_in_name, size_in_name};
pub use crate::archive::reader::header_date;
pub use crate::protocol::imap::{
    check_greeting, list_entry, parse_appenduid, parse_list, parse_namespace,
};
