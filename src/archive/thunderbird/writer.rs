//! Writing a Thunderbird "Local Folders" tree (`thunderbird:DIR`), for `convert`.
//!
//! Thunderbird's mbox store: each mailbox is an mbox file without extension, its subfolders in
//! the directory `<name>.sbd/` beside it (`Archive/2023` is `Archive.sbd/2023`, and an empty
//! `Archive` file is created when that mailbox is not converted itself); INBOX is `Inbox` (and
//! a first level spelled `Inbox` that is not INBOX, as in `Inbox/Sub`, is `%49nbox`).
//! Levels are escaped as in a zip ([`crate::archive::manifest::escape_level`]), and a level ending in
//! `.sbd`, `.msf` or another ending Thunderbird does not read as a folder (`.json`, `.log`,
//! `.bak`, ... [`NOT_FOLDER_ENDINGS`]) gets its last dot written `%2E`, so no folder is
//! skipped or taken for something else. Point a profile's Local Folders at `DIR` (or copy its
//! files there) and Thunderbird builds its `.msf` summaries on first open.
//!
//! Each message is written the way Thunderbird writes one:
//! - a `From - <date>` separator line, the date the INTERNALDATE in asctime form (UTC; the time
//!   of the conversion for a message without a date);
//! - `X-Mozilla-Status` (read 0x0001, replied 0x0002, flagged 0x0004, forwarded 0x1000),
//!   `X-Mozilla-Status2` (0x00200000 for `\Deleted`) and `X-Mozilla-Keys` (the other keywords,
//!   padded to 80 columns so Thunderbird can rewrite it in place) at the top of the header
//!   (`\Draft` has no Thunderbird equivalent and is not written):
//!   the one place where mailkeep adds lines to a message, because that is where Thunderbird
//!   keeps flags; `thunderbird:` as a source removes them again;
//! - the message, with mboxo quoting (a line starting `From ` gets one `>`, as Thunderbird
//!   does; Thunderbird never removes it, so such lines come back as `>From `), then an empty
//!   line.
//!
//! A folder file is written as a hidden `.<name>.mailkeep-partial` beside its place, fsync'd
//! and renamed when the mailbox is complete, then the directory fsync'd. Existing folder files
//! are never appended to nor replaced: converting into a folder that already holds one of the
//! mailboxes is refused before anything is written. The directory is locked for the run.

use std::collections::BTreeSet;
use std::fs::{File, OpenOptions};
use std::io::{BufWriter, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use crate::archive::eml::writer::{lock_dir, make_dirs, write_error_text};

/// What to do after a failed write: folders are never appended to, so the run cannot go on
/// where it stopped.
const TB_AGAIN: &str =
    "remove the folders this run wrote (or the whole directory, when it was new) and run it again";
use crate::archive::maildir::writer::fsync_dir;
use crate::core::error::{Error, Result};
use crate::core::message::{Flag, Flags, MailboxName};

const READ: u32 = 0x0001;
const REPLIED: u32 = 0x0002;
const MARKED: u32 = 0x0004;
const FORWARDED: u32 = 0x1000;
const IMAP_DELETED: u32 = 0x0020_0000;

/// Name endings that Thunderbird (and `thunderbird:` as a source) never take for a folder
/// file: `.sbd` subfolder directories, `.msf` summaries, and the other files of a profile.
const NOT_FOLDER_ENDINGS: &[&str] = &[
    ".sbd", ".msf", ".snm", ".toc", ".dat", ".json", ".html", ".htm", ".sqlite", ".log", ".js",
    ".xml", ".bak", ".tmp", ".rdf", ".mozmsgs",
];

/// One level as a Thunderbird folder file name.
fn level_name(level: &str) -> String {
    let mut s = crate::archive::manifest::escape_level(level);
    for ext in NOT_FOLDER_ENDINGS {
        if s.to_ascii_lowercase().ends_with(ext) {
            let at = s.len() - ext.len();
            s = format!("{}%2E{}", &s[..at], &s[at + 1..]);
        }
    }
    s
}

/// The folder file of a mailbox, relative to the root: `Inbox`, `Archive.sbd/2023`,
/// `Inbox.sbd/Work`.
pub fn folder_file(mailbox: &MailboxName) -> PathBuf {
    let levels = mailbox.levels();
    let mut p = PathBuf::new();
    for (i, level) in levels.iter().enumerate() {
        let name = if i == 0 && mailbox_is_inbox_level(level, levels.len()) {
            "Inbox".to_string()
        } else if i == 0 && level == "Inbox" {
            // `Inbox/Sub` is not `INBOX/Sub`, whose folder is `Inbox.sbd/Sub`.
            "%49nbox".to_string()
        } else {
            level_name(level)
        };
        if i + 1 == levels.len() {
            p.push(name);
        } else {
            p.push(format!("{name}.sbd"));
        }
    }
    p
}

/// INBOX itself (any case), or exactly `INBOX` as the first of several levels (`inbox/Sub` is
/// another mailbox than `INBOX/Sub`, RFC 3501 5.1).
fn mailbox_is_inbox_level(level: &str, levels: usize) -> bool {
    if levels == 1 {
        level.eq_ignore_ascii_case("INBOX")
    } else {
        level == "INBOX"
    }
}

/// The Mozilla header lines for some flags (see the module documentation), with LFs.
pub fn mozilla_lines(flags: &Flags) -> String {
    let mut status = 0u32;
    let mut status2 = 0u32;
    let mut keys = Vec::new();
    for f in flags.iter() {
        match f {
            Flag::Seen => status |= READ,
            Flag::Answered => status |= REPLIED,
            Flag::Flagged => status |= MARKED,
            Flag::Deleted => status2 |= IMAP_DELETED,
            // Thunderbird has no draft flag on a message (drafts are a folder).
            Flag::Draft => {}
            Flag::Keyword(k) if k.eq_ignore_ascii_case("$Forwarded") => status |= FORWARDED,
            Flag::Keyword(k) => keys.push(k.clone()),
        }
    }
    format!(
        "X-Mozilla-Status: {status:04x}\nX-Mozilla-Status2: {status2:08x}\nX-Mozilla-Keys: {:<80}\n",
        keys.join(" ")
    )
}

/// Writes `raw` with mboxo quoting: one `>` before every line starting `From `.
fn write_mboxo(out: &mut impl Write, raw: &[u8]) -> std::io::Result<()> {
    for line in raw.split_inclusive(|&b| b == b'\n') {
        if line.starts_with(b"From ") {
            out.write_all(b">")?;
        }
        out.write_all(line)?;
    }
    Ok(())
}

/// The folder file being written.
struct Current {
    path: PathBuf,
    tmp: PathBuf,
    out: BufWriter<File>,
}

/// A Thunderbird mail directory being written (see the module documentation).
pub struct ThunderbirdOut {
    root: PathBuf,
    _lock: File,
    current: Option<Current>,
    /// `.sbd` directories holding converted folders (their parent file must exist).
    sbd: BTreeSet<PathBuf>,
    dirty: BTreeSet<PathBuf>,
}

impl ThunderbirdOut {
    /// Opens (creating when missing) the directory `root` and checks that none of `mailboxes`
    /// has a folder file there already.
    ///
    /// Errors: [`Error::Usage`] naming the first folder file that exists;
    /// [`Error::Archive`] when `root` is a file; [`Error::Locked`] when another run writes it.
    pub fn open(root: &Path, mailboxes: &[MailboxName]) -> Result<ThunderbirdOut> {
        if root.exists() && !root.is_dir() {
            return Err(Error::archive(
                root,
                "exists and is not a directory (thunderbird: writes a Local Folders directory)",
            ));
        }
        crate::archive::check_owner(root)?;
        let mut dirty = BTreeSet::new();
        make_dirs(root, &mut dirty)?;
        let lock = lock_dir(root)?;
        for mb in mailboxes {
            let p = root.join(folder_file(mb));
            if p.exists() {
                return Err(Error::Usage(format!(
                    "{}: exists already; mailkeep never appends to nor replaces a Thunderbird folder (convert into a new folder)",
                    p.display()
                )));
            }
        }
        Ok(ThunderbirdOut {
            root: root.to_path_buf(),
            _lock: lock,
            current: None,
            sbd: BTreeSet::new(),
            dirty,
        })
    }

    /// Starts the folder file of `mailbox` (ending the previous one).
    pub fn start_mailbox(&mut self, mailbox: &MailboxName) -> Result<()> {
        self.end_mailbox()?;
        let path = self.root.join(folder_file(mailbox));
        let dir = path.parent().unwrap_or(&self.root).to_path_buf();
        crate::archive::writer::refuse_symlinks(&self.root, &path)?;
        make_dirs(&dir, &mut self.dirty)?;
        if dir != self.root {
            self.sbd.insert(dir.clone());
        }
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let tmp = dir.join(format!(".{name}.mailkeep-partial"));
        let file = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .custom_flags(libc::O_NOFOLLOW)
            .open(&tmp)
            .map_err(|e| Error::archive_io(&tmp, e))?;
        self.current = Some(Current {
            path,
            tmp,
            out: BufWriter::with_capacity(256 * 1024, file),
        });
        Ok(())
    }

    /// Appends one message (stored bytes) to the current folder file.
    pub fn add(&mut self, raw: &[u8], flags: &Flags, internal_date: Option<i64>) -> Result<()> {
        let cur = self
            .current
            .as_mut()
            .expect("start_mailbox is called before add");
        let date = internal_date.unwrap_or_else(crate::core::time::now_secs);
        let sep = format!("From - {}\n", crate::archive::mbox::format::asctime(date));
        let res = cur
            .out
            .write_all(sep.as_bytes())
            .and_then(|()| cur.out.write_all(mozilla_lines(flags).as_bytes()))
            .and_then(|()| write_mboxo(&mut cur.out, raw))
            .and_then(|()| {
                if raw.ends_with(b"\n") {
                    cur.out.write_all(b"\n")
                } else {
                    cur.out.write_all(b"\n\n")
                }
            });
        res.map_err(|e| Error::archive(&cur.path, write_error_text(&e, TB_AGAIN)))
    }

    /// Puts the current folder file in place (fsync, rename, fsync of its directory).
    pub fn end_mailbox(&mut self) -> Result<()> {
        let Some(cur) = self.current.take() else {
            return Ok(());
        };
        let file = cur
            .out
            .into_inner()
            .map_err(|e| Error::archive(&cur.path, write_error_text(e.error(), TB_AGAIN)))?;
        file.sync_all()
            .and_then(|()| std::fs::rename(&cur.tmp, &cur.path))
            .map_err(|e| Error::archive(&cur.path, write_error_text(&e, TB_AGAIN)))?;
        if let Some(dir) = cur.path.parent() {
            self.dirty.insert(dir.to_path_buf());
        }
        Ok(())
    }

    /// Ends the last folder, creates the missing parent files of `.sbd` directories, and makes
    /// the directories durable.
    pub fn finish(mut self) -> Result<()> {
        self.end_mailbox()?;
        for sbd in std::mem::take(&mut self.sbd) {
            let mut dir = sbd.as_path();
            while dir != self.root {
                let name = dir.file_name().map(|n| n.to_string_lossy().into_owned());
                let (Some(name), Some(parent)) = (name, dir.parent()) else {
                    break;
                };
                if let Some(stem) = name.strip_suffix(".sbd") {
                    let file = parent.join(stem);
                    if std::fs::symlink_metadata(&file).is_err() {
                        OpenOptions::new()
                            .write(true)
                            .create(true)
                            .truncate(false)
                            .mode(0o600)
                            .custom_flags(libc::O_NOFOLLOW)
                            .open(&file)
                            .and_then(|f| f.sync_all())
                            .map_err(|e| Error::archive_io(&file, e))?;
                        self.dirty.insert(parent.to_path_buf());
                    }
                }
                dir = parent;
            }
        }
        while let Some(d) = self.dirty.pop_last() {
            fsync_dir(&d)?;
        }
        Ok(())
    }
}

impl Drop for ThunderbirdOut {
    /// An unfinished folder file (an error stopped the run) is removed.
    fn drop(&mut self) {
        if let Some(cur) = self.current.take() {
            let _ = std::fs::remove_file(&cur.tmp);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn folder_files() {
        for (mb, file) in [
            ("INBOX", "Inbox"),
            ("INBOX/Work", "Inbox.sbd/Work"),
            ("inbox/Work", "inbox.sbd/Work"),
            ("Inbox/Work", "%49nbox.sbd/Work"),
            ("Work%2Fx", "Work%2Fx"),
            ("Archive/2023", "Archive.sbd/2023"),
            ("Sent", "Sent"),
            ("x.sbd/y.msf", "x%2Esbd.sbd/y%2Emsf"),
            ("notes.json/Old.BAK", "notes%2Ejson.sbd/Old%2EBAK"),
            ("run.log", "run%2Elog"),
            ("index.html", "index%2Ehtml"),
            (".hidden", "%2Ehidden"),
        ] {
            assert_eq!(
                folder_file(&MailboxName::new(mb)),
                PathBuf::from(file),
                "{mb}"
            );
        }
    }

    #[test]
    fn mozilla_lines_read_back_as_the_same_flags() {
        let flags =
            Flags::from_imap_list("\\Seen \\Answered \\Flagged \\Deleted $Forwarded Work $label2");
        let lines = mozilla_lines(&flags);
        assert!(lines.starts_with(
            "X-Mozilla-Status: 1007\nX-Mozilla-Status2: 00200000\nX-Mozilla-Keys: $label2 Work"
        ));
        let msg = format!("{lines}Subject: x\n\nbody\n");
        let (clean, info) = crate::archive::thunderbird::mozilla::strip(msg.as_bytes());
        assert_eq!(clean, b"Subject: x\n\nbody\n");
        assert_eq!(info.flags(), flags);
        let mut out = Vec::new();
        write_mboxo(&mut out, b"a\nFrom x\n>From y\nFromage\n").unwrap();
        assert_eq!(out, b"a\n>From x\n>From y\nFromage\n");
    }
}
