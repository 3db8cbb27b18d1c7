//! A read-only view of a mailkeep archive's ledger (`ROOT/mailkeep/ledger.sqlite`): the exact
//! flags, keywords and INTERNALDATE of every message mailkeep stored, by location.
//!
//! The ledger is opened without writing anything: when no `-wal` file is beside it (the last
//! run ended cleanly and SQLite folded the journal into the database), it is opened as
//! `immutable`, which creates no `-shm`/`-wal` files and takes no lock; otherwise it is read
//! from a private copy ([`UntouchedLedger`], shared with `verify`).
//! [`crate::archive::ledger::Ledger::open`] is not used because it creates and migrates.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use rusqlite::{Connection, OpenFlags};

use std::sync::{Arc, Mutex, Weak};

use crate::archive::STATE_DIR;
use crate::core::error::{Error, Result};
use crate::core::message::Flags;

/// What the ledger says about one stored message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LedgerEntry {
    pub flags: Flags,
    /// INTERNALDATE, seconds since the UNIX epoch.
    pub internal_date: i64,
    /// SHA-256 of the stored bytes.
    pub sha256: String,
    /// The message's source identity (`pop3:alice@host UIDL 0001`); for a file shared by
    /// several identities (`--dedup`), the last recorded.
    pub identity: String,
}

/// How locations are keyed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Layout {
    /// `<folder>/cur/<base>` (no info): keyed by folder and base name, so a file another
    /// program moved between `new/` and `cur/` or renamed for flags is still found.
    Maildir,
    /// `<file>:<offset>:<length>`: keyed by file and offset of the separator line.
    Mbox,
}

/// The ledger of one archive, loaded in memory (a few hundred bytes per message).
#[derive(Debug, Default)]
pub struct LedgerView {
    /// By location key: the records stored there, with their mailbox, in recording order
    /// (several with `--dedup`, one per mailbox the stored copy belongs to).
    entries: HashMap<String, Vec<(String, LedgerEntry)>>,
    /// By mailbox: the location keys of its records, in recording order. With `--dedup` a
    /// mailbox's message may be stored in another mailbox's folder or file.
    by_mailbox: HashMap<String, Vec<String>>,
    /// mbox archives: for each file with an append pending (`mbox_files.pending_len` set: a
    /// run was killed while appending, or is appending), its committed end in bytes (by path
    /// relative to the root): where the committed bytes end and that append started, the
    /// larger of `committed_len` and `pending_len`, exactly what the next writer keeps. The
    /// bytes after it were never recorded; readers stop there. A file without a pending
    /// append is read to its end: bytes another program appended after a finished run are
    /// mail that the next writer keeps too.
    committed: HashMap<String, u64>,
}

/// The key of a Maildir message: folder directory relative to the root (`""` for INBOX,
/// `.Sent`) and the file's base name (before any `:2,`/`!2,`/`;2,` info).
pub fn maildir_key(folder: &str, base: &str) -> String {
    format!("{folder}\0{base}")
}

/// The key of an mbox entry: file relative to the root and offset of its separator line.
pub fn mbox_key(file: &str, offset: u64) -> String {
    format!("{file}\0{offset}")
}

fn key_of(layout: Layout, location: &str) -> Option<String> {
    match layout {
        Layout::Maildir => {
            let (dir, name) = location.rsplit_once('/')?;
            let folder = match dir.rsplit_once('/') {
                Some((f, sub)) if sub == "cur" || sub == "new" => f,
                None if dir == "cur" || dir == "new" => "",
                _ => return None,
            };
            Some(maildir_key(
                folder,
                crate::archive::maildir::reader::split_info(name).0,
            ))
        }
        Layout::Mbox => {
            let (rest, _len) = location.rsplit_once(':')?;
            let (file, offset) = rest.rsplit_once(':')?;
            Some(mbox_key(file, offset.parse().ok()?))
        }
    }
}

/// `file:` URI of a path, for SQLite's URI filenames (RFC 3986 percent-encoding).
fn file_uri(path: &Path) -> String {
    use std::os::unix::ffi::OsStrExt;
    let mut out = String::from("file:");
    for &b in path.as_os_str().as_bytes() {
        if b.is_ascii_alphanumeric() || b"/-._~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// A ledger opened without writing anything beside it (no `-shm`, `-wal` or lock): without a
/// `-wal` file the database is opened `immutable`; with one (a run died, or one is running)
/// the two files are copied to a private temporary folder (0700, removed on drop) and read
/// there, so the journal's committed transactions are seen.
pub(crate) struct UntouchedLedger {
    pub conn: Connection,
    _copy: Option<TempDir>,
}

impl UntouchedLedger {
    /// Opens the ledger file at `path` read-only, as described above.
    ///
    /// Errors: [`Error::Archive`] when it cannot be read as SQLite; [`Error::ArchiveIo`] when
    /// the copy cannot be made.
    pub fn open(path: &Path) -> Result<UntouchedLedger> {
        let err = |e: rusqlite::Error| Error::archive(path, format!("ledger: {e}"));
        // Nothing outside the archive is read (DESIGN.md invariant 11): a ledger, or its
        // journal, that is a symbolic link is refused, never followed.
        let mut wal_path = path.as_os_str().to_owned();
        wal_path.push("-wal");
        for p in [path.to_path_buf(), PathBuf::from(wal_path)] {
            if std::fs::symlink_metadata(&p).is_ok_and(|m| m.file_type().is_symlink()) {
                return Err(Error::archive(
                    &p,
                    "is a symbolic link; mailkeep reads nothing outside the archive: replace it with the file itself",
                ));
            }
        }
        let mut wal = path.as_os_str().to_owned();
        wal.push("-wal");
        let wal = PathBuf::from(wal);
        if wal.exists() {
            let tmp = TempDir::new().map_err(|e| Error::archive_io(std::env::temp_dir(), e))?;
            let db = tmp.0.join("ledger.sqlite");
            std::fs::copy(path, &db).map_err(|e| Error::archive_io(path, e))?;
            std::fs::copy(&wal, tmp.0.join("ledger.sqlite-wal"))
                .map_err(|e| Error::archive_io(&wal, e))?;
            let conn = Connection::open(&db).map_err(err)?;
            return Ok(UntouchedLedger {
                conn,
                _copy: Some(tmp),
            });
        }
        let conn = Connection::open_with_flags(
            format!("{}?immutable=1", file_uri(path)),
            OpenFlags::SQLITE_OPEN_READ_ONLY
                | OpenFlags::SQLITE_OPEN_URI
                | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )
        .map_err(err)?;
        Ok(UntouchedLedger { conn, _copy: None })
    }
}

/// A private temporary folder, removed when dropped.
struct TempDir(PathBuf);

impl TempDir {
    fn new() -> std::io::Result<TempDir> {
        use std::os::unix::fs::DirBuilderExt;
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0);
        let dir =
            std::env::temp_dir().join(format!("mailkeep-ledger-{}-{nanos}", std::process::id()));
        std::fs::DirBuilder::new().mode(0o700).create(&dir)?;
        Ok(TempDir(dir))
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

impl LedgerView {
    /// The ledger file of an archive root.
    pub fn path(root: &Path) -> PathBuf {
        root.join(STATE_DIR).join("ledger.sqlite")
    }

    /// Loads the ledger of the archive at `root`; `None` when it has none.
    ///
    /// Errors: [`Error::Archive`] when the file exists but cannot be read as a ledger.
    /// [`LedgerView::load`], shared: every reader of the same archive in this process gets
    /// the same view (restore and migrate open one reader per `--jobs` connection), loaded
    /// once while any of them holds it. A view nobody holds any more is loaded afresh, so a
    /// ledger written meanwhile (`migrate --via`, `run`) is seen.
    pub fn load_shared(root: &Path, layout: Layout) -> Result<Option<Arc<LedgerView>>> {
        type Cache = Vec<(PathBuf, Layout, Weak<LedgerView>)>;
        static CACHE: Mutex<Cache> = Mutex::new(Vec::new());
        // Held during a load, so readers opened at once share the first one's load.
        let mut cache = CACHE.lock().unwrap_or_else(|p| p.into_inner());
        cache.retain(|(_, _, w)| w.strong_count() > 0);
        let shared = cache
            .iter()
            .find(|(p, l, _)| p == root && *l == layout)
            .and_then(|(_, _, w)| w.upgrade());
        if let Some(view) = shared {
            return Ok(Some(view));
        }
        let view = Self::load(root, layout)?.map(Arc::new);
        if let Some(v) = &view {
            cache.push((root.to_path_buf(), layout, Arc::downgrade(v)));
        }
        Ok(view)
    }

    pub fn load(root: &Path, layout: Layout) -> Result<Option<LedgerView>> {
        let path = Self::path(root);
        if !path.is_file() {
            return Ok(None);
        }
        let err = |e: rusqlite::Error| Error::archive(&path, format!("ledger: {e}"));
        let ledger = UntouchedLedger::open(&path)?;
        let conn = &ledger.conn;
        let mut st = conn
            .prepare(
                "SELECT location, flags, internal_date, sha256, identity, mailbox FROM messages ORDER BY id",
            )
            .map_err(err)?;
        let rows = st
            .query_map([], |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, i64>(2)?,
                    r.get::<_, String>(3)?,
                    r.get::<_, String>(4)?,
                    r.get::<_, String>(5)?,
                ))
            })
            .map_err(err)?;
        let mut entries: HashMap<String, Vec<(String, LedgerEntry)>> = HashMap::new();
        let mut by_mailbox: HashMap<String, Vec<String>> = HashMap::new();
        for row in rows {
            let (location, flags, internal_date, sha256, identity, mailbox) = row.map_err(err)?;
            if let Some(key) = key_of(layout, &location) {
                let entry = LedgerEntry {
                    flags: Flags::from_imap_list(&flags),
                    internal_date,
                    sha256,
                    identity,
                };
                let at = entries.entry(key.clone()).or_default();
                // One record per mailbox and location (a later one replaces it).
                match at.iter_mut().find(|(m, _)| *m == mailbox) {
                    Some(slot) => slot.1 = entry,
                    None => {
                        at.push((mailbox.clone(), entry));
                        by_mailbox.entry(mailbox).or_default().push(key);
                    }
                }
            }
        }
        let mut committed = HashMap::new();
        if layout == Layout::Mbox {
            match conn.prepare(
                "SELECT file, committed_len, pending_len FROM mbox_files WHERE pending_len IS NOT NULL",
            ) {
                Ok(mut st) => {
                    let rows = st
                        .query_map([], |r| {
                            Ok((
                                r.get::<_, String>(0)?,
                                r.get::<_, i64>(1)?,
                                r.get::<_, i64>(2)?,
                            ))
                        })
                        .map_err(err)?;
                    for row in rows {
                        let (file, committed_len, pending_len) = row.map_err(err)?;
                        committed.insert(file, committed_len.max(pending_len).max(0) as u64);
                    }
                }
                // A ledger from before mbox lengths were recorded.
                Err(e) if e.to_string().contains("no such table") => {}
                Err(e) => return Err(err(e)),
            }
        }
        Ok(Some(LedgerView {
            entries,
            by_mailbox,
            committed,
        }))
    }

    /// The entry for a key ([`maildir_key`], [`mbox_key`]) whose stored bytes still have
    /// SHA-256 `sha256` (a file changed since it was recorded is not ours any more).
    /// With several records there (`--dedup`), the last recorded.
    pub fn get(&self, key: &str, sha256: &str) -> Option<&LedgerEntry> {
        self.entries
            .get(key)
            .and_then(|v| v.last())
            .map(|(_, e)| e)
            .filter(|e| e.sha256 == sha256)
    }

    /// As [`LedgerView::get`], the record of `mailbox` when the stored copy has several
    /// (`--dedup`: each mailbox's copy keeps its own flags), else the last recorded.
    pub fn get_for(&self, key: &str, sha256: &str, mailbox: &str) -> Option<&LedgerEntry> {
        let v = self.entries.get(key)?;
        v.iter()
            .find(|(m, _)| m == mailbox)
            .or(v.last())
            .map(|(_, e)| e)
            .filter(|e| e.sha256 == sha256)
    }

    /// The mailboxes the ledger records messages in (`/`-joined names, as
    /// [`crate::core::message::MailboxName::as_str`]): with `--dedup` and Gmail labels, a
    /// mailbox may have no folder or file of its own, its messages all stored elsewhere.
    pub fn mailboxes(&self) -> impl Iterator<Item = &str> {
        self.by_mailbox.keys().map(String::as_str)
    }

    /// The records of `mailbox` stored at locations `own` says are not the mailbox's own
    /// folder or file (`--dedup`: the copy lives where the same bytes were stored first), as
    /// (location key, record), in recording order. A reader of the mailbox reads these too,
    /// so a restore, convert, list or export of it holds every message recorded in it.
    pub fn stored_elsewhere(
        &self,
        mailbox: &str,
        own: impl Fn(&str) -> bool,
    ) -> Vec<(&str, &LedgerEntry)> {
        let Some(keys) = self.by_mailbox.get(mailbox) else {
            return Vec::new();
        };
        keys.iter()
            .filter(|k| !own(k))
            .filter_map(|k| {
                let (_, e) = self.entries.get(k)?.iter().find(|(m, _)| m == mailbox)?;
                Some((k.as_str(), e))
            })
            .collect()
    }

    /// The committed end in bytes of the mbox file at `file` (relative to the root) when an
    /// append to it is pending (see the field's documentation): a reader reads no further.
    /// `None` when no append is pending: the whole file is committed.
    pub fn committed_len(&self, file: &str) -> Option<u64> {
        self.committed.get(file).copied()
    }

    /// Number of stored copies recorded (a copy shared by several mailboxes counts once).
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// True when nothing is recorded.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_ledger_that_is_a_link_is_refused_not_followed() {
        let t = tempfile::tempdir().unwrap();
        let outside = t.path().join("outside.sqlite");
        drop(crate::archive::ledger::Ledger::open(&outside).unwrap());
        let link = t.path().join("ledger.sqlite");
        std::os::unix::fs::symlink(&outside, &link).unwrap();
        let e = UntouchedLedger::open(&link).err().expect("refused");
        assert!(
            e.to_string().ends_with(
                "ledger.sqlite: is a symbolic link; mailkeep reads nothing outside the archive: replace it with the file itself"
            ),
            "{e}"
        );
    }

    use super::*;

    #[test]
    fn readers_of_one_archive_share_one_view_until_all_drop_it() {
        let root = tempfile::tempdir().unwrap();
        let record = |n: u32| crate::archive::ledger::Record {
            account: "imap:a@h".into(),
            mailbox: "INBOX".into(),
            uidl: None,
            uidvalidity: Some(1),
            uid: Some(n),
            identity: format!("imap:a@h INBOX 1 {n}"),
            size: 1,
            wire_size: Some(1),
            sha256: format!("{n:064x}"),
            internal_date: 0,
            flags: String::new(),
            location: format!("cur/{n}.M0P0.mailkeep,S=1:2,"),
            stored_at: 0,
            verified: true,
        };
        let path = LedgerView::path(root.path());
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        let mut l = crate::archive::ledger::Ledger::open(&path).unwrap();
        l.record_batch(&[record(1)], &[]).unwrap();
        drop(l);
        let a = LedgerView::load_shared(root.path(), Layout::Maildir)
            .unwrap()
            .unwrap();
        let b = LedgerView::load_shared(root.path(), Layout::Maildir)
            .unwrap()
            .unwrap();
        assert!(Arc::ptr_eq(&a, &b), "loaded twice");
        assert_eq!(a.len(), 1);
        // Another layout of the same root is another view.
        let c = LedgerView::load_shared(root.path(), Layout::Mbox)
            .unwrap()
            .unwrap();
        assert!(!Arc::ptr_eq(&a, &c));
        drop((a, b, c));
        // Written meanwhile, read afresh once nobody holds the old view.
        let mut l = crate::archive::ledger::Ledger::open(&path).unwrap();
        l.record_batch(&[record(2)], &[]).unwrap();
        drop(l);
        let d = LedgerView::load_shared(root.path(), Layout::Maildir)
            .unwrap()
            .unwrap();
        assert_eq!(d.len(), 2);
    }

    #[test]
    fn keys() {
        assert_eq!(
            key_of(Layout::Maildir, ".Sent/cur/1.M0P0.mailkeep,S=5"),
            Some(maildir_key(".Sent", "1.M0P0.mailkeep,S=5"))
        );
        assert_eq!(
            key_of(Layout::Maildir, "cur/1.x:2,S"),
            Some(maildir_key("", "1.x"))
        );
        assert_eq!(
            key_of(Layout::Maildir, "a/new/1"),
            Some(maildir_key("a", "1"))
        );
        assert_eq!(key_of(Layout::Maildir, "a/tmp/1"), None);
        assert_eq!(
            key_of(Layout::Mbox, "a:b.mbox:120:44"),
            Some(mbox_key("a:b.mbox", 120))
        );
        assert_eq!(key_of(Layout::Mbox, "x.mbox:12"), None);
        assert_eq!(
            file_uri(Path::new("/a b/c?#%é")),
            "file:/a%20b/c%3F%23%25%C3%A9"
        );
    }
}
