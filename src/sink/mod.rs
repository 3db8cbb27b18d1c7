//! Sinks: where messages are put durably. A sink never touches the ledger; the engine records
//! what a sink reports, in the order "durable, then recorded" (DESIGN.md invariant 1).
//!
//! The life of one message:
//! 1. [`Sink::stage`] opens a temporary file inside the archive (Maildir: `<folder>/tmp/`,
//!    mbox: `mailkeep/spool/`). The source streams wire bytes into the returned [`Staged`]
//!    writer, which turns CRLF into LF, hashes (SHA-256 of the stored bytes) and counts them.
//! 2. [`Staged::finish`] adds a final LF if missing, fsyncs the temporary file and returns a
//!    [`StagedMessage`] (path, size in bytes, SHA-256, the header block for date and sender).
//!    The backup engines use [`Staged::finish_unsynced`] instead and hand the file to the
//!    [`fsync_pool::FsyncPool`], which fsyncs several at once while the next message is read;
//!    they wait for a batch's fsyncs before placing any of it.
//! 3. [`Sink::place`] makes it part of the archive: Maildir renames it into `cur/` under a name
//!    derived from the message's source identity; mbox appends it (mboxrd-quoted, with a `From `
//!    line) to the mailbox file.
//! 4. [`Sink::sync`] makes every placed message durable (Maildir: fsync of the `cur/`
//!    directories touched; mbox: fsync of the files appended to) and returns the new committed
//!    length of each mbox file appended to, for the ledger.
//!
//! Only after `sync` returns does the engine record the batch in the ledger.

pub mod eml;
pub mod fsync_pool;
pub mod maildir;
pub mod mbox;
pub mod placer;
pub mod staged;
pub mod thunderbird;
pub mod zip;

use std::path::Path;

use crate::endpoint::ArchiveKind;
use crate::error::Result;
use crate::message::{Flags, MailboxName};

pub use staged::{Staged, StagedMessage};

/// An archive error met while storing one message, with that message named at the end of the
/// line (`what`: `pop3:alice@host INBOX UIDL 0007 (message 7)`), so a full disk or a
/// read-only folder says which message was being written. Other errors are returned as they
/// are; the exit status does not change ([`crate::error::Exit::Archive`]).
pub fn storing(e: crate::error::Error, what: &str) -> crate::error::Error {
    use crate::error::Error;
    match e {
        Error::ArchiveIo { path, source } => Error::Archive {
            path,
            detail: format!("{source} (while storing {what})"),
        },
        Error::Archive { path, detail } => Error::Archive {
            path,
            detail: format!("{detail} (while storing {what})"),
        },
        other => other,
    }
}

/// Refuses to write through a symbolic link inside a target (DESIGN.md invariant 11): every
/// existing component of `path` below `root` (folders and the final name) is examined with
/// `symlink_metadata`; the first that is a link is an error. Missing components are fine (the
/// writer creates them). `root` itself, named by the user, may be a link. Writers check a
/// folder when they first use it in a run and open files with `O_NOFOLLOW` or `create_new`.
///
/// Errors: [`crate::error::Error::Archive`] (exit 6), one line naming the link.
pub fn refuse_symlinks(root: &Path, path: &Path) -> Result<()> {
    let Ok(rel) = path.strip_prefix(root) else {
        return Ok(());
    };
    let mut at = root.to_path_buf();
    for part in rel.components() {
        at.push(part);
        match std::fs::symlink_metadata(&at) {
            Ok(m) if m.file_type().is_symlink() => {
                return Err(crate::error::Error::archive(
                    &at,
                    "is a symbolic link; mailkeep writes nothing through a link (it could lead out of the archive): replace it with a real folder or file",
                ))
            }
            Ok(_) => {}
            Err(_) => return Ok(()),
        }
    }
    Ok(())
}

/// What the engine tells a sink about a message it places.
#[derive(Debug, Clone)]
pub struct PlaceMeta {
    /// The mailbox in the archive.
    pub mailbox: MailboxName,
    /// Flags and keywords to store (Maildir info letters; keywords in the ledger).
    pub flags: Flags,
    /// INTERNALDATE, in seconds since the UNIX epoch (UTC): Maildir file mtime and the mbox
    /// `From ` line date.
    pub internal_date: i64,
    /// Envelope sender for the mbox `From ` line: one token, no spaces (`MAILER-DAEMON` when
    /// unknown).
    pub envelope_from: String,
    /// The stable source identity, e.g. `pop3:alice@host\0INBOX\0<UIDL>`; Maildir derives the
    /// unique part of the file name from its hash so a crashed run's placed file is found again.
    pub identity: String,
}

/// Where a placed message went, relative to the archive root.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stored {
    /// Maildir: `<folder>/cur/<unique>` without the `:2,` info; mbox: `<file>:<offset>:<length>`
    /// (offset of the `From ` line and length of the whole entry, in bytes).
    pub location: String,
}

/// The committed length of an mbox file after a sync: the ledger records it so that a later
/// run can tell its own unrecorded tail (after a crash) from the rest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TailMark {
    /// The mbox file, relative to the archive root (e.g. `INBOX.mbox`).
    pub file: String,
    /// Its length in bytes.
    pub len: u64,
}

/// An archive being written.
pub trait Sink {
    /// The archive's kind.
    fn kind(&self) -> ArchiveKind;

    /// The archive root.
    fn root(&self) -> &Path;

    /// Opens a temporary file for one message into `mailbox`, creating the mailbox (0700
    /// directories) when missing.
    fn stage(&mut self, mailbox: &MailboxName) -> Result<Staged>;

    /// The mbox file and its current length that the next `place` into `mailbox` appends at;
    /// `None` for Maildir. The engine records it as a pending tail before placing, so that a
    /// crash mid-append is repaired by [`Sink::repair_tail`] on the next run.
    fn tail(&mut self, mailbox: &MailboxName) -> Result<Option<TailMark>>;

    /// Makes a staged message part of the archive (not yet durable: see [`Sink::sync`]).
    fn place(&mut self, staged: StagedMessage, meta: &PlaceMeta) -> Result<Stored>;

    /// Makes everything placed so far durable; returns the committed length of each mbox file
    /// appended to since the last sync (empty for Maildir).
    fn sync(&mut self) -> Result<Vec<TailMark>>;

    /// Finds a message placed by an earlier, crashed run whose ledger record was never
    /// committed: Maildir looks for the file name derived from `identity` in `mailbox`'s
    /// `cur/` and `new/`, and returns its location and stored bytes' SHA-256 and size. mbox
    /// returns `None` (its unrecorded tail is cut by [`Sink::repair_tail`] instead).
    fn find_unrecorded(
        &mut self,
        mailbox: &MailboxName,
        identity: &str,
    ) -> Result<Option<(Stored, String, u64)>>;

    /// Changes the flags of a stored message from `old` to `new` (the server's flags changed).
    /// Maildir renames the file's info (`:2,<letters>`; keywords as Dovecot's
    /// `dovecot-keywords` letters); mbox keeps flags only in the ledger and does nothing.
    /// A file that is no longer where it was recorded is looked up by its base name.
    /// Returns the location, which does not change.
    fn set_flags(
        &mut self,
        mailbox: &MailboxName,
        location: &str,
        old: &Flags,
        new: &Flags,
    ) -> Result<()>;

    /// Removes a stored message (`--mirror`, for a message deleted on the server). Maildir
    /// unlinks the file; mbox never rewrites a file and returns `Ok(false)`.
    fn remove(&mut self, mailbox: &MailboxName, location: &str, flags: &Flags) -> Result<bool>;

    /// Whether the archive still holds the message recorded at `location`: `Some(false)` when
    /// it is certainly gone (Maildir: no file with its name in that folder, from one directory
    /// read per folder), `Some(true)` when present, `None` when the sink cannot tell cheaply
    /// (mbox).
    fn present(&mut self, location: &str) -> Result<Option<bool>>;

    /// True when the stored message at `location` exists and its bytes have SHA-256
    /// `sha256` (read back from the archive: before deleting anything from a server).
    fn verify_stored(
        &mut self,
        mailbox: &MailboxName,
        location: &str,
        flags: &Flags,
        sha256: &str,
    ) -> Result<bool>;

    /// True when the message at `location` (from an earlier [`Sink::place`]) is complete and
    /// its stored bytes have SHA-256 `sha256` (mbox: the entry at that offset, unquoted).
    /// Used at start-up to keep what a crashed run appended but did not record.
    fn verify_placed(&mut self, location: &str, sha256: &str) -> Result<bool>;

    /// mbox: cuts the file back to `pending.len` when it is longer (the tail is an append by a
    /// mailkeep run that crashed before recording it), and checks that it is at least
    /// `committed` bytes long (shorter means someone truncated it: [`crate::error::Error::Archive`]),
    /// then fsyncs it. Maildir: no-op.
    /// Returns true when bytes were cut.
    fn repair_tail(&mut self, pending: &TailMark, committed: u64) -> Result<bool>;
}
