//! A message on its way into an archive: the staged temporary file that turns CRLF into LF and
//! hashes ([`staged`]), the pool that fsyncs several at once ([`fsync_pool`]) and the placer
//! thread that places them ([`placer`]).

pub mod fsync_pool;
pub mod placer;
pub mod staged;
