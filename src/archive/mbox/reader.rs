//! mbox files as a message source (`mbox:PATH`), read-only.
//!
//! `PATH` is either
//! - a directory: every `*.mbox` file below it is a mailbox, named by its path with
//!   [`mailbox_from_mbox_file`] (the inverse of the sink's naming: `Archive/2023.mbox` is
//!   `Archive/2023`, `%2E` escapes decoded); hidden files and the state folder `mailkeep/` are
//!   skipped; or
//! - one file with any name: inside a mailkeep mbox archive (an ancestor holds
//!   `mailkeep/ledger.sqlite`) its archive name; otherwise the file name without a `.mbox`
//!   extension (`sent-items.mbox` is `sent-items`; `Inbox`, and a file named `mbox`, are
//!   `INBOX`).
//!
//! Messages are split by [`crate::archive::mbox::format::MboxReader`]: mboxrd by default (one `>` removed from
//! `^>+From ` lines), [`Dialect::Mboxo`] on request; separators are `From ` lines with an
//! asctime date after an empty line, or Netscape/Thunderbird `From - ` lines anywhere; CRLF,
//! LF and mixed files all work (the message is then normalised to LF). `Content-Length:`
//! (mboxcl2) is never trusted: Netscape's values are wrong, so a body line that looks exactly
//! like a dated separator after an empty line splits an mboxcl2 message. A file whose first
//! line is not a `From ` line is an error naming the file; a truncated file gives its last
//! message as far as it goes.
//!
//! In a mailkeep archive, a file whose ledger row has an append pending (a backup killed while
//! appending, or running) is read only up to its committed end
//! ([`LedgerView::committed_len`]); the bytes after it are reported by one warning with their
//! count ([`uncommitted_tail_warning`]), never handed out. The archive's `mailkeep/lock` is held
//! shared while the source lives. Files found by walking a directory are opened with
//! `O_NOFOLLOW` and symbolic links below the root are skipped with a warning.
//!
//! Per message, in this order:
//! 1. A message the archive's ledger recorded at this file and offset, with the same SHA-256,
//!    is mailkeep's own: bytes as stored, the ledger's flags, keywords and INTERNALDATE.
//! 2. Any other message is a foreign one, cleaned of mail-reader bookkeeping as
//!    [`crate::archive::thunderbird::mozilla::strip`] describes (leading `>From ` line, `X-Mozilla-*` header lines):
//!    flags from the `X-Mozilla-*` lines, Thunderbird-deleted messages skipped and counted;
//!    INTERNALDATE from the separator's date, else the `Date:` header, else the top
//!    `Received:` header (a 1970 separator date, as public-inbox writes, is not believed).
//!
//! A Google Takeout file (one file named on the command line whose first message has an
//! `X-Gmail-Labels` header) is shown as one mailbox per label instead
//! ([`crate::archive::mbox::takeout`]).

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::io::BufReader;
use std::path::{Path, PathBuf};

use crate::archive::ledger_view::{mbox_key, Layout, LedgerEntry, LedgerView};
use crate::archive::mbox::format::{Dialect, MboxReader};
use crate::archive::mbox::writer::mailbox_of_mbox_file;
use crate::archive::reader::{
    header_date, open_nofollow, plausible_date, sha256_hex, sorted_entries, symlink_warning,
    ArchiveSource, ArchivedMessage, DateSource, Skipped, SourceCounts,
};
use crate::archive::STATE_DIR;
use crate::core::error::{Error, Result};
use crate::core::message::{normalize, MailboxName};

/// How one mbox file is read.
pub(crate) struct ReadOptions<'a> {
    pub dialect: Dialect,
    /// The archive's ledger and the file's path relative to the archive root.
    pub ledger: Option<(&'a LedgerView, &'a str)>,
    /// Read no further than this many bytes: the file's committed length in the archive's
    /// ledger ([`LedgerView::committed_len`]); what follows is reported by
    /// [`uncommitted_tail_warning`], never read.
    pub committed: Option<u64>,
    /// Open the file with `O_NOFOLLOW` (a file found by walking a tree; the file the user
    /// named on the command line may be a link).
    pub nofollow: bool,
    /// Read only the entries at these offsets, as the messages these ledger records name
    /// (another mailbox's messages stored in this file, `--dedup`): with their flags, date
    /// and identity when the bytes are the recorded ones; an entry missing or changed is
    /// counted as vanished.
    pub members: Option<&'a HashMap<u64, &'a LedgerEntry>>,
}

/// A warning when the mbox file at `path` is longer than its committed end while the ledger
/// says an append is pending ([`LedgerView::committed_len`]): the bytes after it were appended
/// by a run that never recorded them (killed, or still running). They are not read; the next
/// backup into the archive cuts them. `None` when there is no such tail.
pub(crate) fn uncommitted_tail_warning(path: &Path, committed: u64) -> Option<String> {
    let len = std::fs::metadata(path).ok()?.len();
    (len > committed).then(|| {
        format!(
            "{}: {} byte(s) after the committed end (byte {committed}) not read: an append the ledger never recorded (a backup that was killed or is running); the next backup of this archive removes them",
            path.display(),
            len - committed
        )
    })
}

/// The warning for a Google Takeout file found in a folder of mbox files: there it is one
/// mailbox holding every message, instead of one mailbox per label.
fn takeout_in_folder_warning(path: &Path) -> String {
    format!(
        "{}: a Google Takeout file (X-Gmail-Labels), read here as one mailbox holding every message in it, Spam, Trash and Chat included, its labels unused; name the file itself (mbox:'{}') to read it as one mailbox per label",
        path.display(),
        path.display()
    )
}

/// A warning when the mbox file at `path` does not end with a line break: its last message
/// was most likely cut short (a copy or download that stopped). mbox has no lengths, so the
/// reader cannot tell more; the message is still read, as far as it goes. `None` for an empty
/// file, one ending in LF, or one that cannot be read (the reading itself reports that).
pub(crate) fn cut_short_warning(path: &Path) -> Option<String> {
    use std::io::{Read, Seek, SeekFrom};
    let mut file = std::fs::File::open(path).ok()?;
    file.seek(SeekFrom::End(-1)).ok()?;
    let mut last = [0u8; 1];
    file.read_exact(&mut last).ok()?;
    (last[0] != b'\n').then(|| {
        format!(
            "{}: the file does not end with a line break; its last message may be cut short (an interrupted copy?)",
            path.display()
        )
    })
}

/// Reads every message of one mbox file into `f` (see the module documentation).
pub(crate) fn read_mbox_file(
    path: &Path,
    mailbox: &MailboxName,
    opts: &ReadOptions,
    counts: &mut SourceCounts,
    f: &mut dyn FnMut(ArchivedMessage) -> Result<()>,
) -> Result<()> {
    use std::io::Read;
    let file = if opts.nofollow {
        open_nofollow(path)
    } else {
        std::fs::File::open(path)
    }
    .map_err(|e| Error::archive_io(path, e))?;
    let file = file.take(opts.committed.unwrap_or(u64::MAX));
    let reader = MboxReader::new(BufReader::with_capacity(64 * 1024, file))
        .dialect(opts.dialect)
        .with_path(path);
    let mut met: HashSet<u64> = HashSet::new();
    for m in reader {
        let m = m?;
        let origin = format!("{}:{}", path.display(), m.offset);
        if let Some(members) = opts.members {
            let Some(entry) = members.get(&m.offset) else {
                continue;
            };
            met.insert(m.offset);
            if m.oversize.is_some() {
                counts.skipped.push(Skipped::TooLarge {
                    origin,
                    size: m.oversize,
                });
                continue;
            }
            let stored = normalize(&m.raw);
            let sha256 = sha256_hex(&stored);
            if sha256 != entry.sha256 {
                counts.skipped.push(Skipped::Vanished {
                    origin: format!("{origin} (recorded in {mailbox})"),
                });
                continue;
            }
            f(ArchivedMessage {
                mailbox: mailbox.clone(),
                raw: stored,
                flags: entry.flags.clone(),
                internal_date: Some(entry.internal_date),
                date_source: DateSource::Ledger,
                origin,
                sha256,
                source_id: Some(entry.identity.clone()),
            })?;
            counts.read += 1;
            continue;
        }
        if let Some(size) = m.oversize {
            counts.skipped.push(Skipped::TooLarge {
                origin,
                size: Some(size),
            });
            continue;
        }
        let stored = normalize(&m.raw);
        let sha = sha256_hex(&stored);
        let recorded = opts
            .ledger
            .and_then(|(l, rel)| l.get_for(&mbox_key(rel, m.offset), &sha, mailbox.as_str()));
        let msg = if let Some(r) = recorded {
            ArchivedMessage {
                mailbox: mailbox.clone(),
                raw: stored,
                flags: r.flags.clone(),
                internal_date: Some(r.internal_date),
                date_source: DateSource::Ledger,
                origin,
                sha256: sha,
                source_id: Some(r.identity.clone()),
            }
        } else {
            drop(stored);
            let (clean, info) = crate::archive::thunderbird::mozilla::strip(&m.raw);
            if info.expunged() {
                counts.skipped.push(Skipped::MozillaDeleted { origin });
                continue;
            }
            let raw = normalize(&clean);
            drop(clean);
            if raw.is_empty() {
                counts.skipped.push(Skipped::Empty { origin });
                continue;
            }
            let (internal_date, date_source) = match m.date.filter(|t| plausible_date(*t)) {
                Some(t) => (Some(t), DateSource::MboxFromLine),
                None => match header_date(&raw) {
                    Some((t, s)) => (Some(t), s),
                    None => (None, DateSource::Unknown),
                },
            };
            let sha256 = sha256_hex(&raw);
            ArchivedMessage {
                mailbox: mailbox.clone(),
                raw,
                flags: info.flags(),
                internal_date,
                date_source,
                origin,
                sha256,
                source_id: None,
            }
        };
        f(msg)?;
        counts.read += 1;
    }
    if let Some(members) = opts.members {
        let mut gone: Vec<u64> = members
            .keys()
            .filter(|o| !met.contains(o))
            .copied()
            .collect();
        gone.sort_unstable();
        for offset in gone {
            counts.skipped.push(Skipped::Vanished {
                origin: format!("{}:{offset} (recorded in {mailbox})", path.display()),
            });
        }
    }
    Ok(())
}

/// The mailbox of a loose mbox file: its name without `.mbox`; `Inbox`/`mbox` are INBOX.
fn mailbox_from_loose_file(path: &Path) -> MailboxName {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let stem = name.strip_suffix(".mbox").unwrap_or(&name);
    if stem.is_empty() || stem == "mbox" {
        MailboxName::inbox()
    } else {
        MailboxName::from_levels(&[stem])
    }
}

/// One or more mbox files opened for reading.
pub struct MboxSource {
    path: PathBuf,
    dialect: Dialect,
    /// Archive root (for the ledger) when there is one.
    root: Option<PathBuf>,
    ledger: Option<std::sync::Arc<LedgerView>>,
    /// Mailbox -> its files, with their paths relative to `root` (or the file name).
    files: Option<BTreeMap<MailboxName, Vec<(PathBuf, String)>>>,
    warnings: Vec<String>,
    /// True for the one file named on the command line (followed if it is a link).
    loose: bool,
    /// The shared lock of the mailkeep archive read, held while reading.
    _lock: Option<crate::archive::lock::ArchiveLock>,
    /// A Google Takeout file (one file named on the command line, its first message with
    /// `X-Gmail-Labels`): shown as one mailbox per label, indexed on first use.
    takeout: Option<Option<crate::archive::mbox::takeout::Index>>,
}

impl MboxSource {
    /// Opens a file or a directory of `*.mbox` files (and the mailkeep ledger of the archive it
    /// is in, when there is one).
    ///
    /// Errors: [`Error::Archive`] when the path is neither a file nor a directory, or the
    /// ledger is unreadable.
    pub fn open(path: &Path) -> Result<Self> {
        let mut src = MboxSource {
            path: path.to_path_buf(),
            dialect: Dialect::Mboxrd,
            root: None,
            ledger: None,
            files: None,
            warnings: Vec::new(),
            loose: false,
            _lock: None,
            takeout: None,
        };
        if path.is_dir() {
            src._lock = crate::archive::lock::ArchiveLock::acquire_shared(path)?;
            src.ledger = LedgerView::load_shared(path, Layout::Mbox)?;
            src.root = Some(path.to_path_buf());
        } else if path.is_file() {
            let abs = std::fs::canonicalize(path).map_err(|e| Error::archive_io(path, e))?;
            for dir in abs.ancestors().skip(1) {
                if LedgerView::path(dir).is_file() {
                    src._lock = crate::archive::lock::ArchiveLock::acquire_shared(dir)?;
                    src.ledger = LedgerView::load_shared(dir, Layout::Mbox)?;
                    src.root = Some(dir.to_path_buf());
                    break;
                }
            }
            let mailbox = src
                .root
                .as_ref()
                .and_then(|r| abs.strip_prefix(r).ok())
                .map(|rel| rel.to_string_lossy().into_owned())
                .and_then(|rel| {
                    let root = src.root.as_deref()?;
                    mailbox_of_mbox_file(root, &rel).map(|m| (m, rel))
                });
            let (mailbox, rel) = match mailbox {
                Some(x) => x,
                None => {
                    src.ledger = None;
                    src.root = None;
                    src._lock = None;
                    (mailbox_from_loose_file(path), String::new())
                }
            };
            if src.ledger.is_none() && crate::archive::mbox::takeout::is_takeout(path) {
                src.takeout = Some(None);
            }
            src.files = Some(BTreeMap::from([(mailbox, vec![(path.to_path_buf(), rel)])]));
            src.loose = true;
        } else {
            return Err(Error::archive(path, "is neither a file nor a directory"));
        }
        Ok(src)
    }

    /// Reads `>From ` lines as mboxo (kept) instead of mboxrd (one `>` removed).
    pub fn dialect(mut self, dialect: Dialect) -> Self {
        self.dialect = dialect;
        self
    }

    /// True when the archive has a mailkeep ledger.
    pub fn has_ledger(&self) -> bool {
        self.ledger.is_some()
    }

    fn walk(
        root: &Path,
        dir: &Path,
        out: &mut BTreeMap<MailboxName, Vec<(PathBuf, String)>>,
        links: &mut Vec<PathBuf>,
    ) -> Result<()> {
        for (name, path, ft) in sorted_entries(dir, links)? {
            if name.starts_with('.') || (dir == root && name == STATE_DIR && ft.is_dir()) {
                continue;
            }
            if ft.is_dir() {
                Self::walk(root, &path, out, links)?;
            } else if ft.is_file() && name.ends_with(".mbox") {
                let rel = path
                    .strip_prefix(root)
                    .map(|p| p.to_string_lossy().into_owned())
                    .unwrap_or_default();
                if let Some(mb) = mailbox_of_mbox_file(root, &rel) {
                    out.entry(mb).or_default().push((path, rel));
                }
            }
        }
        Ok(())
    }

    fn files(&mut self) -> Result<&BTreeMap<MailboxName, Vec<(PathBuf, String)>>> {
        if self.files.is_none() {
            let mut out = BTreeMap::new();
            let mut links = Vec::new();
            Self::walk(&self.path, &self.path, &mut out, &mut links)?;
            self.warnings
                .extend(links.iter().map(|l| symlink_warning(l)));
            // A Google Takeout file in a folder that is not a mailkeep archive is read as one
            // mailbox with every message (Spam and Trash included, labels not used): say so,
            // since `mbox:FILE` reads it as one mailbox per label.
            if self.ledger.is_none() {
                for (path, _) in out.values().flatten() {
                    if crate::archive::mbox::takeout::is_takeout(path) {
                        self.warnings.push(takeout_in_folder_warning(path));
                    }
                }
            }
            self.files = Some(out);
        }
        Ok(self.files.as_ref().expect("set above"))
    }
}

impl MboxSource {
    /// The Takeout index, built on first use; `None` for any other mbox.
    fn takeout_index(&mut self) -> Result<Option<&crate::archive::mbox::takeout::Index>> {
        if let Some(None) = self.takeout {
            let idx = crate::archive::mbox::takeout::index(&self.path, self.dialect)?;
            if idx.left_out > 0 {
                self.warnings.push(format!(
                    "{}: {} message(s) labelled Spam, Trash or Chat in this Google Takeout file are left out",
                    self.path.display(),
                    idx.left_out
                ));
            }
            self.takeout = Some(Some(idx));
        }
        Ok(self.takeout.as_ref().and_then(|t| t.as_ref()))
    }

    /// A Takeout mailbox's messages: its entries, each read alone, with its labels' flags.
    fn takeout_messages(
        &mut self,
        mailbox: &MailboxName,
        counts: &mut SourceCounts,
        f: &mut dyn FnMut(ArchivedMessage) -> Result<()>,
    ) -> Result<()> {
        let dialect = self.dialect;
        let path = self.path.clone();
        let entries = match self.takeout_index()? {
            Some(idx) => idx.by_mailbox.get(mailbox).cloned().unwrap_or_default(),
            None => return Ok(()),
        };
        for e in entries {
            let origin = format!("{}:{}", path.display(), e.offset);
            let Some(m) = crate::archive::mbox::takeout::read_entry(&path, &e, dialect)? else {
                counts.skipped.push(Skipped::Vanished { origin });
                continue;
            };
            if let Some(size) = m.oversize {
                counts.skipped.push(Skipped::TooLarge {
                    origin,
                    size: Some(size),
                });
                continue;
            }
            let raw = normalize(&m.raw);
            if raw.is_empty() {
                counts.skipped.push(Skipped::Empty { origin });
                continue;
            }
            let (internal_date, date_source) = match m.date.filter(|t| plausible_date(*t)) {
                Some(t) => (Some(t), DateSource::MboxFromLine),
                None => match header_date(&raw) {
                    Some((t, s)) => (Some(t), s),
                    None => (None, DateSource::Unknown),
                },
            };
            let sha256 = sha256_hex(&raw);
            f(ArchivedMessage {
                mailbox: mailbox.clone(),
                raw,
                flags: e.flags.clone(),
                internal_date,
                date_source,
                origin,
                sha256,
                source_id: None,
            })?;
            counts.read += 1;
        }
        Ok(())
    }

    /// The messages the ledger records in `mailbox` whose stored copy is an entry of another
    /// mailbox's file (`--dedup`), read from there with this mailbox's flags and date. Only
    /// files the walk found are read (never a path the ledger names on its own); an entry
    /// that is gone or changed is counted as vanished.
    fn read_stored_elsewhere(
        &mut self,
        mailbox: &MailboxName,
        counts: &mut SourceCounts,
        f: &mut dyn FnMut(ArchivedMessage) -> Result<()>,
    ) -> Result<()> {
        let Some(ledger) = self.ledger.clone() else {
            return Ok(());
        };
        if self.loose {
            return Ok(());
        }
        let dialect = self.dialect;
        let files = self.files()?;
        let own: Vec<&str> = files
            .get(mailbox)
            .map(|v| v.iter().map(|(_, rel)| rel.as_str()).collect())
            .unwrap_or_default();
        let elsewhere = ledger.stored_elsewhere(mailbox.as_str(), |key| {
            key.split_once('\0')
                .is_some_and(|(file, _)| own.contains(&file))
        });
        if elsewhere.is_empty() {
            return Ok(());
        }
        let known: HashMap<&str, &PathBuf> = files
            .values()
            .flatten()
            .map(|(path, rel)| (rel.as_str(), path))
            .collect();
        let mut by_file: BTreeMap<&str, HashMap<u64, &LedgerEntry>> = BTreeMap::new();
        for (key, entry) in &elsewhere {
            let Some((file, offset)) = key.split_once('\0') else {
                continue;
            };
            let Ok(offset) = offset.parse::<u64>() else {
                continue;
            };
            by_file.entry(file).or_default().insert(offset, entry);
        }
        for (rel, members) in &by_file {
            let Some(path) = known.get(rel) else {
                for offset in members.keys() {
                    counts.skipped.push(Skipped::Vanished {
                        origin: format!("{rel}:{offset} (recorded in {mailbox})"),
                    });
                }
                continue;
            };
            let opts = ReadOptions {
                dialect,
                ledger: None,
                committed: ledger.committed_len(rel),
                nofollow: true,
                members: Some(members),
            };
            read_mbox_file(path, mailbox, &opts, counts, f)?;
        }
        Ok(())
    }
}

impl ArchiveSource for MboxSource {
    fn describe(&self) -> String {
        format!("mbox:{}", self.path.display())
    }

    /// The mbox files' mailboxes, and (a directory archive) the mailboxes the ledger records
    /// messages in whose copies are all in other files (`--dedup`, Gmail labels).
    fn mailboxes(&mut self) -> Result<Vec<MailboxName>> {
        if let Some(idx) = self.takeout_index()? {
            return Ok(idx.by_mailbox.keys().cloned().collect());
        }
        let mut out: BTreeSet<MailboxName> = self.files()?.keys().cloned().collect();
        if let (Some(l), false) = (&self.ledger, self.loose) {
            out.extend(l.mailboxes().map(MailboxName::new));
        }
        Ok(out.into_iter().collect())
    }

    fn messages(
        &mut self,
        mailbox: &MailboxName,
        f: &mut dyn FnMut(ArchivedMessage) -> Result<()>,
    ) -> Result<SourceCounts> {
        let mut counts = SourceCounts::default();
        if self.takeout.is_some() {
            self.takeout_messages(mailbox, &mut counts, f)?;
            return Ok(counts);
        }
        let files = self.files()?.get(mailbox).cloned().unwrap_or_default();
        for (path, rel) in files {
            let committed = self.ledger.as_deref().and_then(|l| l.committed_len(&rel));
            let opts = ReadOptions {
                dialect: self.dialect,
                ledger: self.ledger.as_deref().map(|l| (l, rel.as_str())),
                committed,
                nofollow: !self.loose,
                members: None,
            };
            read_mbox_file(&path, mailbox, &opts, &mut counts, f)?;
            match committed {
                Some(c) => self.warnings.extend(uncommitted_tail_warning(&path, c)),
                None => self.warnings.extend(cut_short_warning(&path)),
            }
        }
        self.read_stored_elsewhere(mailbox, &mut counts, f)?;
        Ok(counts)
    }

    fn warnings(&self) -> Vec<String> {
        self.warnings.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_file_without_a_final_line_break_is_reported_cut_short() {
        let dir = tempfile::tempdir().unwrap();
        for (content, warned) in [
            (&b"From a\nx\n"[..], false),
            (b"From a\nx", true),
            (b"", false),
        ] {
            let p = dir.path().join("m.mbox");
            std::fs::write(&p, content).unwrap();
            assert_eq!(cut_short_warning(&p).is_some(), warned, "{content:?}");
        }
    }

    #[test]
    fn loose_file_names() {
        for (name, want) in [
            ("/x/sent-items.mbox", "sent-items"),
            ("/x/Inbox", "INBOX"),
            ("/x/mbox", "INBOX"),
            ("/x/r.pipermail.mbox", "r.pipermail"),
            ("/x/.mbox", "INBOX"),
        ] {
            assert_eq!(
                mailbox_from_loose_file(Path::new(name)).as_str(),
                want,
                "{name}"
            );
        }
    }
}
