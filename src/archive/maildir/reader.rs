//! A Maildir tree as a message source (`maildir:PATH`), read-only.
//!
//! Layouts, found by walking the tree:
//! - **Maildir++** (Dovecot, Courier, mailkeep's own archives): the root is INBOX and every
//!   `.A.B` directory beside its `cur/` is the mailbox `A/B`, names in IMAP modified UTF-7 with
//!   mailkeep's `%2E`/`%25` escapes decoded ([`mailbox_from_maildir_folder`], the inverse of
//!   the sink's naming).
//! - **Plain nested** (mbsync `SubFolders Verbatim`, notmuch, a folder of Maildirs): any other
//!   directory holding `cur/` or `new/` is a mailbox named by its path from the root
//!   (`Work/Projects/{cur,new,tmp}` is `Work/Projects`), directory names taken verbatim; a
//!   nested Maildir may itself have Maildir++ `.X` children (`list/.foo` is `list/foo`). The
//!   root is INBOX only when it holds `cur/` or `new/` itself.
//!
//! Messages are the files in `cur/` and `new/` (hidden files skipped), read in file-name order.
//! `tmp/` (deliveries in progress), Dovecot's `dovecot-uidlist`, `dovecot.index*`,
//! `dovecot-keywords`, `subscriptions`, `maildirfolder`, and the archive's state folder
//! `mailkeep/` are never messages.
//!
//! Flags come from the file's base name only (never the path, which may contain `:`): the info
//! after the last `:2,`, `!2,` or `;2,` (POSIX, and the Windows-safe separators of mu/
//! offlineimap and mbsync), in `new/` as well as `cur/`. Letters `D F R S T` are `\Draft
//! \Flagged \Answered \Seen \Deleted`; `a`–`z` are keywords numbered by the folder's
//! `dovecot-keywords` file (`0 $Forwarded` makes `a` mean `$Forwarded`); other letters are
//! ignored. Fields before the info such as Dovecot's `,S=212` and `,W=227` are not flags.
//!
//! INTERNALDATE and exact flags: when the archive has a mailkeep ledger with a record for the
//! file (same folder and base name, same SHA-256), the ledger's INTERNALDATE is used, and its
//! flags and keywords too (it keeps keywords beyond Maildir's 26 letters) unless the file
//! name's system flags differ from them (another program changed the flags since: the file
//! name wins). Otherwise the file's mtime, then the `Date:`/`Received:` headers.

use std::collections::BTreeMap;
use std::io;
use std::path::{Path, PathBuf};

use crate::archive::ledger_view::{maildir_key, Layout, LedgerView};
use crate::archive::maildir::writer::mailbox_from_maildir_folder;
use crate::archive::reader::{
    header_date, is_real_dir, is_symlink_error, mailbox_from_levels, mtime_of, read_nofollow,
    sha256_hex, sorted_entries, symlink_warning, ArchiveSource, ArchivedMessage, DateSource,
    Skipped, SourceCounts,
};
use crate::archive::STATE_DIR;
use crate::core::error::{Error, Result};
use crate::core::message::{normalize, Flag, Flags, MailboxName};

/// Splits a Maildir file name into its base and its info letters: the text after the last
/// `:2,`, `!2,` or `;2,` (`None` without an info part).
pub fn split_info(name: &str) -> (&str, Option<&str>) {
    let at = [":2,", "!2,", ";2,"]
        .iter()
        .filter_map(|sep| name.rfind(sep))
        .max();
    match at {
        Some(p) => (&name[..p], Some(&name[p + 3..])),
        None => (name, None),
    }
}

/// The keywords of a folder's `dovecot-keywords` file, by letter index (`0 $Forwarded` is
/// letter `a`). A missing or unreadable file gives none.
pub fn read_keywords(folder: &Path) -> Vec<String> {
    let mut list: Vec<String> = Vec::new();
    if let Ok((text, _)) = read_nofollow(&folder.join("dovecot-keywords")) {
        for line in String::from_utf8_lossy(&text).lines() {
            if let Some((n, k)) = line.split_once(' ') {
                if let Ok(n) = n.trim().parse::<usize>() {
                    if n < 26 && !k.trim().is_empty() {
                        if list.len() <= n {
                            list.resize(n + 1, String::new());
                        }
                        list[n] = k.trim().to_string();
                    }
                }
            }
        }
    }
    list
}

/// The flags of Maildir info letters, with `keywords` from [`read_keywords`].
pub fn flags_from_info(info: &str, keywords: &[String]) -> Flags {
    let mut f = Flags::new();
    for c in info.chars() {
        if let Some(flag) = Flag::from_maildir_letter(c) {
            f.insert(flag);
        } else if c.is_ascii_lowercase() {
            if let Some(k) = keywords.get((c as u8 - b'a') as usize) {
                if !k.is_empty() {
                    f.insert(Flag::Keyword(k.clone()));
                }
            }
        }
    }
    f
}

/// True when `dir` holds a `cur/` or `new/` folder (not a symbolic link to one).
fn is_maildir(dir: &Path) -> bool {
    is_real_dir(&dir.join("cur")) || is_real_dir(&dir.join("new"))
}

/// A Maildir tree opened for reading.
pub struct MaildirSource {
    root: PathBuf,
    /// Mailbox -> its folder directories (more than one when two spellings meet, e.g.
    /// `INBOX/` and the root).
    folders: Option<BTreeMap<MailboxName, Vec<PathBuf>>>,
    ledger: Option<std::sync::Arc<LedgerView>>,
    /// Symbolic links met in the tree, not followed (reported by `warnings`).
    links: Vec<PathBuf>,
    /// The shared lock of a mailkeep archive, held while reading.
    _lock: Option<crate::archive::lock::ArchiveLock>,
}

impl MaildirSource {
    /// Opens the tree at `root` (and its mailkeep ledger, when it has one).
    ///
    /// Errors: [`Error::Archive`] when `root` is not a directory or its ledger is unreadable.
    pub fn open(root: &Path) -> Result<Self> {
        if !root.is_dir() {
            return Err(Error::archive(
                root,
                "is not a directory (a Maildir is a folder with cur/, new/ and tmp/)",
            ));
        }
        let lock = crate::archive::lock::ArchiveLock::acquire_shared(root)?;
        Ok(MaildirSource {
            root: root.to_path_buf(),
            folders: None,
            ledger: LedgerView::load_shared(root, Layout::Maildir)?,
            links: Vec::new(),
            _lock: lock,
        })
    }

    /// True when the archive has a mailkeep ledger.
    pub fn has_ledger(&self) -> bool {
        self.ledger.is_some()
    }

    fn walk(
        &self,
        dir: &Path,
        levels: &mut Vec<String>,
        out: &mut BTreeMap<MailboxName, Vec<PathBuf>>,
        links: &mut Vec<PathBuf>,
    ) -> Result<()> {
        if is_maildir(dir) {
            out.entry(mailbox_from_levels(levels))
                .or_default()
                .push(dir.to_path_buf());
        }
        for (name, path, ft) in sorted_entries(dir, links)? {
            if !ft.is_dir() || ["cur", "new", "tmp"].contains(&name.as_str()) {
                continue;
            }
            if name.starts_with('.') {
                // Maildir++ folder: flat, never recursed into.
                let mb = mailbox_from_maildir_folder(&name).or_else(|| {
                    // A shortened name: the full one is in the folder.
                    crate::archive::maildir::writer::is_shortened(&name)
                        .then(|| {
                            crate::archive::maildir::writer::read_mailbox_name_file(
                                &path.join(crate::archive::maildir::writer::MAILBOX_NAME_FILE),
                            )
                        })
                        .flatten()
                });
                if let Some(mb) = mb {
                    if is_maildir(&path) {
                        let name = if levels.is_empty() {
                            mb
                        } else {
                            let mut all = levels.clone();
                            all.extend(mb.levels());
                            MailboxName::from_levels(&all)
                        };
                        out.entry(name).or_default().push(path);
                    }
                }
                continue;
            }
            if levels.is_empty() && name == STATE_DIR && !is_maildir(&path) {
                continue; // mailkeep's state folder
            }
            levels.push(name);
            self.walk(&path, levels, out, links)?;
            levels.pop();
        }
        Ok(())
    }

    fn folders(&mut self) -> Result<&BTreeMap<MailboxName, Vec<PathBuf>>> {
        if self.folders.is_none() {
            let mut out = BTreeMap::new();
            let mut links = Vec::new();
            self.walk(&self.root.clone(), &mut Vec::new(), &mut out, &mut links)?;
            self.links.extend(links);
            self.folders = Some(out);
        }
        Ok(self.folders.as_ref().expect("set above"))
    }

    fn read_folder(
        &self,
        mailbox: &MailboxName,
        dir: &Path,
        counts: &mut SourceCounts,
        links: &mut Vec<PathBuf>,
        f: &mut dyn FnMut(ArchivedMessage) -> Result<()>,
    ) -> Result<()> {
        let keywords = read_keywords(dir);
        let folder_rel = dir
            .strip_prefix(&self.root)
            .map(|p| p.to_string_lossy().into_owned())
            .unwrap_or_default();
        let mut files = Vec::new();
        for sub in ["cur", "new"] {
            let d = dir.join(sub);
            if !is_real_dir(&d) {
                // Missing, or a symbolic link (reported, never followed).
                if std::fs::symlink_metadata(&d).is_ok_and(|m| m.file_type().is_symlink()) {
                    links.push(d);
                }
                continue;
            }
            for (name, path, ft) in sorted_entries(&d, links)? {
                if ft.is_file() && !name.starts_with('.') {
                    files.push((name, path));
                }
            }
        }
        files.sort();
        for (name, path) in files {
            let origin = path.display().to_string();
            let (data, md) = match crate::archive::reader::read_message_file(&path) {
                Ok(Ok(x)) => x,
                Ok(Err(size)) => {
                    counts.skipped.push(Skipped::TooLarge {
                        origin,
                        size: Some(size),
                    });
                    continue;
                }
                Err(e) if is_symlink_error(&e) => {
                    // Replaced by a link since the listing.
                    links.push(path);
                    continue;
                }
                Err(e) if e.kind() == io::ErrorKind::NotFound => {
                    counts.skipped.push(Skipped::Vanished { origin });
                    continue;
                }
                Err(e) => return Err(Error::archive_io(&path, e)),
            };
            if data.is_empty() {
                counts.skipped.push(Skipped::Empty { origin });
                continue;
            }
            let raw = normalize(&data);
            drop(data);
            let sha256 = sha256_hex(&raw);
            let (base, info) = split_info(&name);
            let file_flags = flags_from_info(info.unwrap_or(""), &keywords);
            let recorded = self.ledger.as_ref().and_then(|l| {
                l.get_for(&maildir_key(&folder_rel, base), &sha256, mailbox.as_str())
            });
            let source_id = recorded.map(|r| r.identity.clone());
            let (flags, internal_date, date_source) = match recorded {
                Some(r) => {
                    let flags = if r.flags.maildir_info() == file_flags.maildir_info() {
                        r.flags.clone()
                    } else {
                        file_flags
                    };
                    (flags, Some(r.internal_date), DateSource::Ledger)
                }
                None => {
                    let (date, src) = match mtime_of(&md) {
                        Some(t) => (Some(t), DateSource::FileMtime),
                        None => match header_date(&raw) {
                            Some((t, s)) => (Some(t), s),
                            None => (None, DateSource::Unknown),
                        },
                    };
                    (file_flags, date, src)
                }
            };
            f(ArchivedMessage {
                mailbox: mailbox.clone(),
                raw,
                flags,
                internal_date,
                date_source,
                origin,
                sha256,
                source_id,
            })?;
            counts.read += 1;
        }
        Ok(())
    }
}

impl MaildirSource {
    /// The folder (relative to the root, `""` for the root) of a directory of the tree.
    fn rel(&self, dir: &Path) -> String {
        dir.strip_prefix(&self.root)
            .map(|p| p.to_string_lossy().into_owned())
            .unwrap_or_default()
    }

    /// The messages the ledger records in `mailbox` whose stored copy is in another
    /// mailbox's folder (`--dedup`), read from there with this mailbox's flags and date.
    /// Only folders the walk found are read (never a path the ledger names on its own, never
    /// through a symbolic link); a copy that is gone or changed is counted as vanished.
    fn read_stored_elsewhere(
        &self,
        mailbox: &MailboxName,
        own_dirs: &[PathBuf],
        counts: &mut SourceCounts,
        f: &mut dyn FnMut(ArchivedMessage) -> Result<()>,
    ) -> Result<()> {
        let Some(ledger) = self.ledger.as_deref() else {
            return Ok(());
        };
        let own: Vec<String> = own_dirs.iter().map(|d| self.rel(d)).collect();
        let elsewhere = ledger.stored_elsewhere(mailbox.as_str(), |key| {
            own.iter()
                .any(|o| key.split_once('\0').is_some_and(|(folder, _)| folder == o))
        });
        if elsewhere.is_empty() {
            return Ok(());
        }
        // Folders of the tree by their relative path, and each one's files by base name.
        let known: BTreeMap<String, PathBuf> = self
            .folders
            .iter()
            .flat_map(|m| m.values())
            .flatten()
            .map(|d| (self.rel(d), d.clone()))
            .collect();
        let mut files_of: BTreeMap<String, BTreeMap<String, PathBuf>> = BTreeMap::new();
        let mut links = Vec::new();
        for (key, entry) in elsewhere {
            let Some((folder, base)) = key.split_once('\0') else {
                continue;
            };
            let Some(dir) = known.get(folder) else {
                counts.skipped.push(Skipped::Vanished {
                    origin: format!(
                        "{} (recorded in {mailbox})",
                        self.root.join(folder).join(base).display()
                    ),
                });
                continue;
            };
            if !files_of.contains_key(folder) {
                let mut by_base = BTreeMap::new();
                for sub in ["cur", "new"] {
                    let d = dir.join(sub);
                    if !is_real_dir(&d) {
                        continue;
                    }
                    for (name, path, ft) in sorted_entries(&d, &mut links)? {
                        if ft.is_file() && !name.starts_with('.') {
                            by_base.insert(split_info(&name).0.to_string(), path);
                        }
                    }
                }
                files_of.insert(folder.to_string(), by_base);
            }
            let path = files_of.get(folder).and_then(|m| m.get(base));
            let vanished = |counts: &mut SourceCounts| {
                counts.skipped.push(Skipped::Vanished {
                    origin: format!(
                        "{} (recorded in {mailbox})",
                        dir.join("cur").join(base).display()
                    ),
                })
            };
            let Some(path) = path else {
                vanished(counts);
                continue;
            };
            let origin = path.display().to_string();
            let data = match crate::archive::reader::read_message_file(path) {
                Ok(Ok((data, _))) => data,
                Ok(Err(size)) => {
                    counts.skipped.push(Skipped::TooLarge {
                        origin,
                        size: Some(size),
                    });
                    continue;
                }
                Err(e) if e.kind() == io::ErrorKind::NotFound || is_symlink_error(&e) => {
                    vanished(counts);
                    continue;
                }
                Err(e) => return Err(Error::archive_io(path, e)),
            };
            let raw = normalize(&data);
            drop(data);
            let sha256 = sha256_hex(&raw);
            if sha256 != entry.sha256 {
                // Not the bytes recorded: not this mailbox's message any more.
                vanished(counts);
                continue;
            }
            f(ArchivedMessage {
                mailbox: mailbox.clone(),
                raw,
                flags: entry.flags.clone(),
                internal_date: Some(entry.internal_date),
                date_source: DateSource::Ledger,
                origin,
                sha256,
                source_id: Some(entry.identity.clone()),
            })?;
            counts.read += 1;
        }
        Ok(())
    }
}

impl ArchiveSource for MaildirSource {
    fn describe(&self) -> String {
        format!("maildir:{}", self.root.display())
    }

    /// The tree's folders, and the mailboxes the ledger records messages in whose copies
    /// are all in other folders (`--dedup`, Gmail labels).
    fn mailboxes(&mut self) -> Result<Vec<MailboxName>> {
        let mut out: std::collections::BTreeSet<MailboxName> =
            self.folders()?.keys().cloned().collect();
        if let Some(l) = &self.ledger {
            out.extend(l.mailboxes().map(MailboxName::new));
        }
        Ok(out.into_iter().collect())
    }

    fn messages(
        &mut self,
        mailbox: &MailboxName,
        f: &mut dyn FnMut(ArchivedMessage) -> Result<()>,
    ) -> Result<SourceCounts> {
        let dirs = self.folders()?.get(mailbox).cloned().unwrap_or_default();
        let mut counts = SourceCounts::default();
        let mut links = Vec::new();
        let read = dirs
            .iter()
            .try_for_each(|dir| self.read_folder(mailbox, dir, &mut counts, &mut links, f))
            .and_then(|()| self.read_stored_elsewhere(mailbox, &dirs, &mut counts, f));
        self.links.extend(links);
        read?;
        Ok(counts)
    }

    /// A tree with no Maildir folder at all and no mailkeep ledger is most likely the wrong
    /// path (`maildir:/etc`): said once, so `list` and `restore` do not just report 0 messages.
    /// Each symbolic link met (not followed) is one warning naming it.
    fn warnings(&self) -> Vec<String> {
        let mut out = match &self.folders {
            Some(folders) if folders.is_empty() && self.ledger.is_none() => vec![format!(
                "{}: no Maildir folder found (a Maildir folder has cur/ and new/ subfolders); is this the right path?",
                self.root.display()
            )],
            _ => Vec::new(),
        };
        let mut links = self.links.clone();
        links.sort();
        links.dedup();
        out.extend(links.iter().map(|l| symlink_warning(l)));
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_tree_without_maildir_folders_is_reported() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("etc")).unwrap();
        std::fs::write(dir.path().join("passwd"), "root:x:0:0\n").unwrap();
        let mut src = MaildirSource::open(dir.path()).unwrap();
        assert!(src.mailboxes().unwrap().is_empty());
        let w = src.warnings();
        assert_eq!(w.len(), 1, "{w:?}");
        assert!(w[0].contains("no Maildir folder found"), "{w:?}");

        std::fs::create_dir_all(dir.path().join("cur")).unwrap();
        let mut src = MaildirSource::open(dir.path()).unwrap();
        assert_eq!(src.mailboxes().unwrap().len(), 1);
        assert!(src.warnings().is_empty());
    }

    #[test]
    fn info_parts() {
        let cases: &[(&str, &str, Option<&str>)] = &[
            (
                "1.M1P1.h,S=220,W=227:2,FS",
                "1.M1P1.h,S=220,W=227",
                Some("FS"),
            ),
            ("1.h,S=212:2,", "1.h,S=212", Some("")),
            (
                "1_3.4242.laptop,U=17,FMD5=01!2,S",
                "1_3.4242.laptop,U=17,FMD5=01",
                Some("S"),
            ),
            ("1.laptop;2,DS", "1.laptop", Some("DS")),
            ("1.host", "1.host", None),
            ("a:2,b:2,S", "a:2,b", Some("S")),
        ];
        for (name, base, info) in cases {
            assert_eq!(split_info(name), (*base, *info), "{name}");
        }
        let kw = vec!["$Forwarded".to_string(), String::new(), "Work".into()];
        assert_eq!(
            flags_from_info("FSacbxP", &kw).to_imap_list(),
            "\\Seen \\Flagged $Forwarded Work"
        );
        assert_eq!(
            flags_from_info("DRT", &[]).to_imap_list(),
            "\\Answered \\Deleted \\Draft"
        );
    }
}
