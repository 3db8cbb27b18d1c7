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

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};

use crate::core::endpoint::ArchiveKind;
use crate::core::error::{Error, Result};
use crate::core::message::{Flags, MailboxName};

pub use crate::archive::staging::staged::{Staged, StagedMessage};

/// An archive error met while storing one message, with that message named at the end of the
/// line (`what`: `pop3:alice@host INBOX UIDL 0007 (message 7)`), so a full disk or a
/// read-only folder says which message was being written. Other errors are returned as they
/// are; the exit status does not change ([`crate::core::error::Exit::Archive`]).
pub fn storing(e: crate::core::error::Error, what: &str) -> crate::core::error::Error {
    use crate::core::error::Error;
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
/// Errors: [`crate::core::error::Error::Archive`] (exit 6), one line naming the link.
pub fn refuse_symlinks(root: &Path, path: &Path) -> Result<()> {
    let Ok(rel) = path.strip_prefix(root) else {
        return Ok(());
    };
    let mut at = root.to_path_buf();
    for part in rel.components() {
        at.push(part);
        match std::fs::symlink_metadata(&at) {
            Ok(m) if m.file_type().is_symlink() => {
                return Err(crate::core::error::Error::archive(
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
    /// `committed` bytes long (shorter means someone truncated it: [`crate::core::error::Error::Archive`]),
    /// then fsyncs it. Maildir: no-op.
    /// Returns true when bytes were cut.
    fn repair_tail(&mut self, pending: &TailMark, committed: u64) -> Result<bool>;

    /// Makes `mailbox`'s folder (or file) ready before anything of it is fetched, and checks
    /// that it holds this mailbox only (DESIGN.md invariant 5): `Ok(Err(line))` refuses the
    /// mailbox (a mailbox-scope failure, the run goes on) when another mailbox of this run
    /// or of the archive already has that folder (a case-insensitive file system, a shortened
    /// name's hash met twice) or when the file system refuses the name as too long;
    /// `Err` is an archive error that ends the run (disk full, unwritable).
    fn claim(&mut self, mailbox: &MailboxName) -> Result<std::result::Result<(), String>> {
        let _ = mailbox;
        Ok(Ok(()))
    }
}

/// True for an archive error the file system gave because a name or path is too long
/// (`ENAMETOOLONG`): a fault of one mailbox's name, not of the archive.
pub fn name_too_long(e: &Error) -> bool {
    match e {
        Error::ArchiveIo { source, .. } | Error::OutputIo { source, .. } => {
            source.raw_os_error() == Some(libc::ENAMETOOLONG)
        }
        _ => false,
    }
}

/// The line that refuses a mailbox whose folder name the file system finds too long.
pub fn too_long_line(mailbox: &MailboxName, e: &Error) -> String {
    format!(
        "mailbox {}: its archive folder name is too long for this file system ({e}); the mailbox is not archived (rename it on the server, or use a shorter archive path)",
        shown(mailbox)
    )
}

/// A mailbox name for an error line: at most 120 characters, then `…` and its length in bytes;
/// control characters escaped (`\n`, `\u{1b}`), so the line stays one line.
pub fn shown(mailbox: &MailboxName) -> String {
    let s = mailbox.as_str();
    let esc = |t: &str| -> String {
        t.chars()
            .flat_map(|c| {
                let escaped = c.is_control();
                c.escape_debug()
                    .filter(move |_| escaped)
                    .chain(std::iter::once(c).filter(move |_| !escaped))
            })
            .collect()
    };
    match s.char_indices().nth(120) {
        Some((i, _)) => format!("`{}…` ({} bytes)", esc(&s[..i]), s.len()),
        None => format!("`{}`", esc(s)),
    }
}

/// The common part of [`Sink::claim`] for the folder (or file) `path` of `mailbox`, without
/// creating anything: a name the file system finds too long refuses the mailbox; an existing
/// `path` is checked with [`FolderClaims::claim`] and then with `existing` (a shortened
/// name's owner); a missing one is claimed for this run.
pub fn claim_path(
    claims: &mut FolderClaims,
    path: &Path,
    mailbox: &MailboxName,
    existing: impl FnOnce(&Path) -> Result<std::result::Result<(), String>>,
) -> Result<std::result::Result<(), String>> {
    match std::fs::symlink_metadata(path) {
        Ok(_) => {
            if let Err(line) = claims.claim(path, mailbox)? {
                return Ok(Err(line));
            }
            existing(path)
        }
        Err(e) if e.raw_os_error() == Some(libc::ENAMETOOLONG) => {
            Ok(Err(too_long_line(mailbox, &Error::archive_io(path, e))))
        }
        Err(_) => claims.claim(path, mailbox),
    }
}

/// Which mailbox each folder (or file) of an archive holds, for the refusals of
/// [`Sink::claim`]: within a run, a folder name claimed by two distinct mailboxes; and on a
/// file system that does not tell case apart, a folder whose exact name is not in its parent
/// directory's listing (it exists under another case: `.work` found as `.Work`), or that
/// differs only in case from a folder claimed earlier in the run (neither created yet:
/// parallel connections) when a probe finds the file system case-insensitive.
#[derive(Debug, Default)]
pub struct FolderClaims {
    by_folder: HashMap<PathBuf, MailboxName>,
    /// By path in lower case: the exact path and its mailbox.
    by_lower: HashMap<String, (PathBuf, MailboxName)>,
    listings: HashMap<PathBuf, HashSet<std::ffi::OsString>>,
    /// Per directory, whether it tells case apart (probed once, when needed).
    case_sensitive: HashMap<PathBuf, bool>,
}

impl FolderClaims {
    /// Claims `path` (a folder or file of the archive) for `mailbox`; `Ok(Err(line))` when
    /// another mailbox has it. An existing `path` is also checked against its parent's
    /// listing (read once per run and directory). A listing that cannot be read is an archive
    /// error.
    pub fn claim(
        &mut self,
        path: &Path,
        mailbox: &MailboxName,
    ) -> Result<std::result::Result<(), String>> {
        if let Some(owner) = self.by_folder.get(path) {
            if owner == mailbox {
                return Ok(Ok(()));
            }
            return Ok(Err(collision_line(mailbox, path, owner)));
        }
        // Only an existing path can have been taken for another one (a missing one is
        // created under its own name).
        let exists = std::fs::symlink_metadata(path).is_ok();
        if let (true, Some(parent), Some(name)) = (exists, path.parent(), path.file_name()) {
            let fresh = !self.listings.contains_key(parent);
            let listing = self.listings.entry(parent.to_path_buf()).or_default();
            if fresh || !listing.contains(name) {
                // Read once per directory, and again when the name is not in it (created
                // since). A parent that does not exist yet holds no twin.
                listing.clear();
                match std::fs::read_dir(parent) {
                    Ok(rd) => {
                        for entry in rd {
                            let entry = entry.map_err(|e| Error::archive_io(parent, e))?;
                            listing.insert(entry.file_name());
                        }
                    }
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                    Err(e) => return Err(Error::archive_io(parent, e)),
                }
            }
            if let Some(other) = case_twin(listing, name) {
                let held = self
                    .by_folder
                    .get(&parent.join(&other))
                    .map(|m| format!(" (mailbox {})", shown(m)))
                    .unwrap_or_default();
                return Ok(Err(format!(
                    "mailbox {}: its archive folder `{}` exists on this file system as `{}`{held}, which does not tell case apart; the mailbox is not archived, so that the two are never merged (rename one on the server, or use a case-sensitive file system)",
                    shown(mailbox),
                    name.to_string_lossy(),
                    other.to_string_lossy(),
                )));
            }
        }
        let lower = path.to_string_lossy().to_lowercase();
        if let Some((other, owner)) = self.by_lower.get(&lower) {
            if owner != mailbox && other != path {
                let parent = path.parent().unwrap_or(Path::new("."));
                let sensitive = match self.case_sensitive.get(parent) {
                    Some(s) => *s,
                    None => {
                        let s = tells_case_apart(parent);
                        self.case_sensitive.insert(parent.to_path_buf(), s);
                        s
                    }
                };
                if !sensitive {
                    return Ok(Err(format!(
                        "mailbox {}: its archive folder `{}` is the folder `{}` of mailbox {} on this file system, which does not tell case apart; the mailbox is not archived, so that the two are never merged (rename one on the server, or use a case-sensitive file system)",
                        shown(mailbox),
                        path.file_name().unwrap_or_default().to_string_lossy(),
                        other.file_name().unwrap_or_default().to_string_lossy(),
                        shown(owner),
                    )));
                }
            }
        } else {
            self.by_lower
                .insert(lower, (path.to_path_buf(), mailbox.clone()));
        }
        self.by_folder.insert(path.to_path_buf(), mailbox.clone());
        Ok(Ok(()))
    }
}

/// Whether the file system of `dir` tells `a` from `A` in file names: creates the directory
/// `.mailkeep-case-probe-<pid>` in `dir`, looks for it in upper case, and removes it. A
/// directory that cannot be probed (missing, read-only) counts as case-sensitive.
pub fn tells_case_apart(dir: &Path) -> bool {
    let name = format!(".mailkeep-case-probe-{}", std::process::id());
    let probe = dir.join(&name);
    if std::fs::create_dir(&probe).is_err() {
        return true;
    }
    let seen_upper = std::fs::symlink_metadata(dir.join(name.to_uppercase())).is_ok();
    let _ = std::fs::remove_dir(&probe);
    !seen_upper
}

/// When `name` is not in `listing` but an entry equal to it ignoring ASCII and Unicode case
/// is, that entry: the file system took `name` for it. Pure.
pub fn case_twin(
    listing: &HashSet<std::ffi::OsString>,
    name: &std::ffi::OsStr,
) -> Option<std::ffi::OsString> {
    if listing.contains(name) {
        return None;
    }
    let want = name.to_string_lossy().to_lowercase();
    listing
        .iter()
        .find(|n| n.to_string_lossy().to_lowercase() == want)
        .cloned()
}

/// The line that refuses `mailbox` because `owner` already has its folder `path`.
fn collision_line(mailbox: &MailboxName, path: &Path, owner: &MailboxName) -> String {
    format!(
        "mailbox {}: its archive folder `{}` already holds mailbox {}; the mailbox is not archived, so that the two are never merged (rename one on the server)",
        shown(mailbox),
        path.file_name().unwrap_or_default().to_string_lossy(),
        shown(owner),
    )
}

#[cfg(test)]
mod name_mapping_tests {
    //! DESIGN.md invariant 5 over generated names: every server mailbox (levels split at its
    //! delimiter, `.` or `/`) gets its own name, folder, file and zip/export directory, and
    //! the archive's readers give the name back.
    use std::collections::HashMap;

    use crate::archive::maildir::writer::{
        mailbox_from_maildir_folder, maildir_folder_name, NAME_MAX,
    };
    use crate::archive::mbox::writer::{mailbox_from_mbox_file, mbox_file_name};
    use crate::core::message::MailboxName;
    use crate::protocol::imap::decode_mailbox_name;

    /// xorshift64*: deterministic, so a failure names a reproducible case.
    struct Rng(u64);
    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 >> 12;
            self.0 ^= self.0 << 25;
            self.0 ^= self.0 >> 27;
            self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
        }
        fn below(&mut self, n: usize) -> usize {
            (self.next() % n as u64) as usize
        }
    }

    const PIECES: &[&str] = &[
        "a",
        "b",
        "W",
        "w",
        "x",
        "X",
        "1",
        " ",
        "/",
        ".",
        "%",
        "%2F",
        "%25",
        "%2E",
        "~",
        "\\",
        "\"",
        "&",
        "-",
        "é",
        "É",
        "日本",
        "INBOX",
        "inbox",
        "Inbox",
        "cur",
        "new",
        "tmp",
        "mailkeep",
        "..",
        ".mbox",
        ".sbd",
        "manifest.jsonl",
        "\t",
        "%~0123456789abcdef",
    ];

    fn level(rng: &mut Rng, delim: char) -> String {
        let mut s = String::new();
        if rng.below(8) == 0 {
            s.push('.');
        }
        let n = if rng.below(20) == 0 {
            60 + rng.below(80)
        } else {
            rng.below(5)
        };
        for _ in 0..n {
            s.push_str(PIECES[rng.below(PIECES.len())]);
        }
        // A level cannot hold its server's delimiter (it would be two levels).
        s.replace(delim, if delim == '.' { "_" } else { "|" })
    }

    fn claim<K: std::hash::Hash + Eq + std::fmt::Debug>(
        seen: &mut HashMap<K, MailboxName>,
        key: K,
        name: &MailboxName,
        what: &str,
    ) {
        if let Some(other) = seen.get(&key) {
            assert_eq!(other, name, "{what} {key:?} shared by two mailboxes");
        } else {
            seen.insert(key, name.clone());
        }
    }

    #[test]
    fn generated_names_round_trip_and_never_share_a_folder() {
        let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
        let (mut maildir, mut mbox, mut zip, mut export, mut tb) = Default::default();
        let mut names: HashMap<(char, Vec<String>), MailboxName> = HashMap::new();
        for i in 0..20_000 {
            let delim = if i % 2 == 0 { '.' } else { '/' };
            let levels: Vec<String> = (0..1 + rng.below(4))
                .map(|_| level(&mut rng, delim))
                .collect();
            let wire: Vec<String> = levels
                .iter()
                .map(|l| crate::core::mutf7::encode(l))
                .collect();
            let name = decode_mailbox_name(&wire.join(&delim.to_string()), Some(delim));
            // The name keeps the levels (INBOX alone, any case, is INBOX).
            if levels.len() == 1 && levels[0].eq_ignore_ascii_case("INBOX") {
                assert!(name.is_inbox());
                continue;
            }
            assert_eq!(name.levels(), levels, "levels of {name}");
            assert_eq!(MailboxName::new(name.as_str()), name, "{name} read back");
            assert_eq!(MailboxName::from_levels(&levels), name);
            names.insert((delim, levels.clone()), name.clone());

            let folder = maildir_folder_name(&name);
            assert!(folder.len() <= NAME_MAX, "{folder}");
            if !crate::archive::maildir::writer::is_shortened(&folder) {
                assert_eq!(
                    mailbox_from_maildir_folder(&folder),
                    Some(name.clone()),
                    "{folder}"
                );
            } else {
                assert_eq!(mailbox_from_maildir_folder(&folder), None, "{folder}");
            }
            claim(&mut maildir, folder, &name, "Maildir folder");

            let file = mbox_file_name(&name);
            assert!(file.split('/').all(|c| c.len() <= NAME_MAX), "{file}");
            if !crate::archive::maildir::writer::is_shortened(&file) {
                assert_eq!(mailbox_from_mbox_file(&file), Some(name.clone()), "{file}");
            }
            claim(&mut mbox, file, &name, "mbox file");

            let dir = crate::archive::manifest::mailbox_dir(&name);
            assert_eq!(
                crate::archive::manifest::mailbox_of_dir(&dir),
                name,
                "{dir}"
            );
            claim(&mut zip, dir, &name, "zip folder");
            let ex = crate::archive::eml::writer::export_mailbox_dir(name.as_str());
            let ex_text = ex.to_str().unwrap();
            if !crate::archive::maildir::writer::is_shortened(ex_text) {
                // `eml:DIR` reads an export back under the same name.
                let back: Vec<String> = ex_text
                    .split('/')
                    .map(crate::archive::manifest::unescape_level)
                    .collect();
                assert_eq!(MailboxName::from_levels(&back), name, "{ex_text}");
            }
            claim(&mut export, ex, &name, "export folder");
            claim(
                &mut tb,
                crate::archive::thunderbird::writer::folder_file(&name),
                &name,
                "Thunderbird file",
            );
        }
        // Same levels under either delimiter: the same mailbox name (the archive does not
        // depend on the server's delimiter).
        for ((d, levels), name) in &names {
            if let Some(other) = names.get(&(if *d == '.' { '/' } else { '.' }, levels.clone())) {
                assert_eq!(other, name);
            }
        }
        assert!(names.len() > 15_000, "{}", names.len());
    }

    #[test]
    fn escape_table() {
        // (levels, `/`-joined name, Maildir++ folder, mbox file, zip folder)
        #[rustfmt::skip]
        let table: &[(&[&str], &str, &str, &str, &str)] = &[
            (&["Sent"], "Sent", ".Sent", "Sent.mbox", "Sent"),
            (&["Archive", "2023"], "Archive/2023", ".Archive.2023", "Archive/2023.mbox", "Archive/2023"),
            (&["Work", "x"], "Work/x", ".Work.x", "Work/x.mbox", "Work/x"),
            (&["Work/x"], "Work%2Fx", ".Work%2Fx", "Work%2Fx.mbox", "Work%2Fx"),
            (&["Work.x"], "Work.x", ".Work%2Ex", "Work.x.mbox", "Work.x"),
            (&["50% off"], "50% off", ".50%25 off", "50%25 off.mbox", "50%25 off"),
            (&["a%2Fb"], "a%252Fb", ".a%252Fb", "a%252Fb.mbox", "a%252Fb"),
            (&[".hidden"], ".hidden", ".%2Ehidden", "%2Ehidden.mbox", "%2Ehidden"),
            (&["inbox", "Sub"], "inbox/Sub", ".inbox.Sub", "inbox/Sub.mbox", "inbox/Sub"),
            (&["INBOX", "Sub"], "INBOX/Sub", ".INBOX.Sub", "INBOX/Sub.mbox", "INBOX/Sub"),
            (&["mailkeep"], "mailkeep", ".mailkeep", "%6Dailkeep.mbox", "mailkeep"),
            (&["cur"], "cur", ".cur", "cur.mbox", "cur"),
            (&["..", "x"], "../x", ".%2E%2E.x", "%2E./x.mbox", "%2E%2E/x"),
            (&["~a\\b\"c"], "~a\\b\"c", ".~a\\b\"c", "~a\\b\"c.mbox", "~a%5Cb%22c"),
            (&["日本語"], "日本語", ".&ZeVnLIqe-", "日本語.mbox", "日本語"),
        ];
        for (levels, joined, folder, file, zip) in table {
            let name = MailboxName::from_levels(levels);
            assert_eq!(name.as_str(), *joined, "{levels:?}");
            assert_eq!(maildir_folder_name(&name), *folder, "{levels:?}");
            assert_eq!(mbox_file_name(&name), *file, "{levels:?}");
            assert_eq!(
                crate::archive::manifest::mailbox_dir(&name),
                *zip,
                "{levels:?}"
            );
        }
    }

    #[test]
    fn long_names_are_shortened_with_a_hash() {
        let a = MailboxName::from_levels(&["x".repeat(300)]);
        let b = MailboxName::from_levels(&[format!("{}y", "x".repeat(299))]);
        let (fa, fb) = (maildir_folder_name(&a), maildir_folder_name(&b));
        assert_eq!(fa.len(), NAME_MAX);
        assert_ne!(fa, fb);
        assert_eq!(fa, maildir_folder_name(&a), "deterministic");
        assert!(
            fa.starts_with(".xxx") && fa[fa.len() - 18..].starts_with("%~"),
            "{fa}"
        );
        // A cut never splits an escape or a modified UTF-7 run.
        let c = MailboxName::from_levels(&["日".repeat(200)]);
        let fc = maildir_folder_name(&c);
        assert!(fc.len() <= NAME_MAX);
        let head = fc.split("%~").next().unwrap();
        assert!(head.ends_with('-') || !head.contains('&'), "{fc}");
        let d = MailboxName::from_levels(&["%".repeat(200)]);
        let fd = maildir_folder_name(&d);
        assert!(fd.split("%~").next().unwrap().ends_with("%25"), "{fd}");
        // mbox: each path component, the `.mbox` ending kept.
        let e = MailboxName::from_levels(&["p".repeat(300), "q".repeat(300)]);
        let fe = mbox_file_name(&e);
        let parts: Vec<&str> = fe.split('/').collect();
        assert_eq!(parts.len(), 2);
        assert!(parts
            .iter()
            .all(|p| p.len() <= NAME_MAX && p.contains("%~")));
        assert!(fe.ends_with(".mbox"));
        assert_eq!(mailbox_from_mbox_file(&fe), None, "the name file tells");
    }

    #[test]
    fn case_only_differences_are_two_folders_where_the_file_system_tells_case_apart() {
        let dir = tempfile::tempdir().unwrap();
        assert!(super::tells_case_apart(dir.path()));
        assert_eq!(
            std::fs::read_dir(dir.path()).unwrap().count(),
            0,
            "probe removed"
        );
        let mut c = super::FolderClaims::default();
        let (a, b) = (MailboxName::new("Work"), MailboxName::new("work"));
        assert_eq!(c.claim(&dir.path().join(".Work"), &a).unwrap(), Ok(()));
        assert_eq!(c.claim(&dir.path().join(".work"), &b).unwrap(), Ok(()));
        // Where the probe says otherwise, the second is refused.
        let mut c = super::FolderClaims::default();
        c.case_sensitive.insert(dir.path().to_path_buf(), false);
        assert_eq!(c.claim(&dir.path().join(".Work"), &a).unwrap(), Ok(()));
        assert_eq!(
            c.claim(&dir.path().join(".work"), &b).unwrap(),
            Err("mailbox `work`: its archive folder `.work` is the folder `.Work` of mailbox `Work` on this file system, which does not tell case apart; the mailbox is not archived, so that the two are never merged (rename one on the server, or use a case-sensitive file system)".to_string())
        );
    }

    #[test]
    fn names_in_error_lines_are_one_line_and_bounded() {
        assert_eq!(super::shown(&MailboxName::new("a\nb")), "`a\\nb`");
        let long = MailboxName::new(&"é".repeat(200));
        assert_eq!(
            super::shown(&long),
            format!("`{}…` (400 bytes)", "é".repeat(120))
        );
    }

    #[test]
    fn case_twins_are_found_only_when_the_name_is_missing() {
        use std::collections::HashSet;
        use std::ffi::{OsStr, OsString};
        let listing: HashSet<OsString> = [".Work", ".Sent"].iter().map(OsString::from).collect();
        assert_eq!(
            super::case_twin(&listing, OsStr::new(".work")),
            Some(".Work".into())
        );
        assert_eq!(super::case_twin(&listing, OsStr::new(".Work")), None);
        assert_eq!(super::case_twin(&listing, OsStr::new(".Other")), None);
    }

    #[test]
    fn a_folder_is_claimed_by_one_mailbox() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join(".Work");
        std::fs::create_dir(&p).unwrap();
        let mut c = super::FolderClaims::default();
        let (a, b) = (MailboxName::new("Work"), MailboxName::new("Other"));
        assert_eq!(c.claim(&p, &a).unwrap(), Ok(()));
        assert_eq!(c.claim(&p, &a).unwrap(), Ok(()));
        assert_eq!(
            c.claim(&p, &b).unwrap(),
            Err("mailbox `Other`: its archive folder `.Work` already holds mailbox `Work`; the mailbox is not archived, so that the two are never merged (rename one on the server)".to_string())
        );
    }
}
