//! A Maildir++ archive as a [`Sink`], laid out so Dovecot or Courier can serve it as is.
//!
//! - The root is INBOX; every other mailbox is a folder `.<level>.<level>` beside `cur/ new/
//!   tmp/`, holding its own `cur/ new/ tmp/` and an empty `maildirfolder` file: `Sent` is
//!   `.Sent/`, `Archive/2023` is `.Archive.2023/`, `INBOX/Work` is `.INBOX.Work/` (Dovecot's
//!   spelling of a child of INBOX). See [`maildir_folder_name`] for the escapes.
//! - A message is staged in `<folder>/tmp/`, then renamed into `<folder>/cur/` as
//!   `<internal_date>.M<h>P0.mailkeep,S=<size>:2,<flags>`, where `<h>` is the first 16 hex
//!   digits of SHA-256 of the message's source identity. The name is a function of the
//!   identity, so a file placed by a run that crashed before recording it is found again by
//!   [`Sink::find_unrecorded`] instead of being fetched twice. The file's mtime and atime are
//!   the INTERNALDATE.
//! - Directories are created 0700, message files 0600.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::ffi::CString;
use std::fs::{DirBuilder, File, FileTimes, OpenOptions};
use std::io::{self, Read, Write};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use sha2::{Digest, Sha256};

use crate::archive::writer::{PlaceMeta, Sink, Staged, StagedMessage, Stored, TailMark};
use crate::core::endpoint::ArchiveKind;
use crate::core::error::{Error, Result};
use crate::core::message::{Flag, Flags, MailboxName};

/// Escapes one mailbox level for a file name: `%` becomes `%25`, `/` becomes `%2F` (a level may
/// contain it on a server whose delimiter is `.`), control characters become `%XX`, `.` becomes
/// `%2E` (every dot when `all_dots`, else only a leading one), and an empty level becomes `%`.
/// Everything else, UTF-8 included, is kept. So every `%` of the result starts an escape.
pub(crate) fn escape_level(level: &str, all_dots: bool) -> String {
    if level.is_empty() {
        return "%".to_string();
    }
    let mut out = String::with_capacity(level.len());
    for (i, c) in level.char_indices() {
        match c {
            '%' => out.push_str("%25"),
            '/' => out.push_str("%2F"),
            '.' if all_dots || i == 0 => out.push_str("%2E"),
            c if c.is_ascii_control() => out.push_str(&format!("%{:02X}", c as u32)),
            c => out.push(c),
        }
    }
    out
}

/// The inverse of [`escape_level`]: decodes `%XX` (either case); a `%` not followed by two hex
/// digits stays; a level that is exactly `%` is empty.
pub(crate) fn unescape_level(level: &str) -> String {
    if level == "%" {
        return String::new();
    }
    let b = level.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%'
            && i + 3 <= b.len()
            && b[i + 1].is_ascii_hexdigit()
            && b[i + 2].is_ascii_hexdigit()
        {
            let hex = std::str::from_utf8(&b[i + 1..i + 3]).expect("ASCII hex digits");
            out.push(u8::from_str_radix(hex, 16).expect("two hex digits"));
            i += 3;
            continue;
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The Maildir++ folder directory of a mailbox, relative to the root: `""` for INBOX, `.Sent`,
/// `.Archive.2023`, `.INBOX.Work`.
///
/// Each level is escaped: `.` becomes `%2E` (it is the hierarchy separator), `%` becomes `%25`,
/// `/` inside a level `%2F`, ASCII control characters become `%XX`, and an empty level becomes
/// `%`. Then each level is written in IMAP modified UTF-7 (RFC 3501 5.1.3), as Dovecot and
/// Courier store Maildir++ folder names on disk (`.&ZeVnLIqe-` for `日本語`), so either can
/// serve the archive as is. A name longer than [`NAME_MAX`] bytes is shortened with a hash
/// (see [`shorten_component`]).
pub fn maildir_folder_name(mailbox: &MailboxName) -> String {
    if mailbox.is_inbox() {
        return String::new();
    }
    let mut out = String::new();
    for level in mailbox.levels() {
        out.push('.');
        out.push_str(&crate::core::mutf7::encode(&escape_level(&level, true)));
    }
    shorten_component(out, "", mailbox)
}

/// The longest file name (one path component) written, in bytes: `NAME_MAX` of Linux's file
/// systems, macOS and the BSDs.
pub const NAME_MAX: usize = 255;

/// The mark of a shortened name: `%~` followed by 16 lower-case hex digits. No escaped name
/// holds `%~` (every `%` of one starts `%XX`), so a shortened name never meets a whole one.
pub const SHORTENED_MARK: &str = "%~";

/// Shortens a file name (`component`, followed by `suffix`) longer than [`NAME_MAX`] bytes:
/// the start of `component`, cut at a character boundary and before any `%` escape or
/// modified UTF-7 run it would split, then `%~` and the first 16 hex digits of SHA-256 of the
/// mailbox name, then `suffix`. Deterministic; a name that fits is returned as it is (with
/// `suffix`). Two mailboxes share a shortened name only if their names share a 64-bit hash
/// and a 200-odd byte start; the sinks refuse such a second mailbox (see
/// [`crate::archive::writer::FolderClaims`]).
pub fn shorten_component(component: String, suffix: &str, mailbox: &MailboxName) -> String {
    if component.len() + suffix.len() <= NAME_MAX {
        return component + suffix;
    }
    let hash = &hex::encode(Sha256::digest(mailbox.as_str().as_bytes()))[..16];
    let room = NAME_MAX - suffix.len() - SHORTENED_MARK.len() - hash.len();
    let mut cut = room.min(component.len());
    while !component.is_char_boundary(cut) {
        cut -= 1;
    }
    let mut head = &component[..cut];
    // Do not split an escape (`%2`) or leave a modified UTF-7 run (`&…`) open.
    if let Some(p) = head.rfind('%') {
        if head.len() - p < 3 {
            head = &head[..p];
        }
    }
    if let Some(p) = head.rfind('&') {
        if !head[p..].contains('-') {
            head = &head[..p];
        }
    }
    format!("{head}{SHORTENED_MARK}{hash}{suffix}")
}

/// True for a file name [`shorten_component`] shortened.
pub fn is_shortened(name: &str) -> bool {
    name.contains(SHORTENED_MARK)
}

/// The mailbox a Maildir++ folder directory holds (the inverse of [`maildir_folder_name`]):
/// `""` is INBOX, `.Sent` is `Sent`, `.Archive.2023` is `Archive/2023`. `None` for a name that
/// is not a folder (no leading dot, `.`, `..`) and for a shortened name (its mailbox is in
/// the folder's [`MAILBOX_NAME_FILE`], see [`read_mailbox_name_file`]).
pub fn mailbox_from_maildir_folder(name: &str) -> Option<MailboxName> {
    if name.is_empty() {
        return Some(MailboxName::inbox());
    }
    let rest = name.strip_prefix('.')?;
    if rest.is_empty() || rest == "." || is_shortened(name) {
        return None;
    }
    let levels: Vec<String> = rest
        .split('.')
        .map(|l| unescape_level(&crate::core::mutf7::decode(l).unwrap_or_else(|_| l.to_string())))
        .collect();
    Some(MailboxName::from_levels(&levels))
}

/// Writes a [`MAILBOX_NAME_FILE`] (0600, fsync'd) naming `mailbox`.
pub(crate) fn write_name_file(path: &Path, mailbox: &MailboxName) -> Result<()> {
    let mut f = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .map_err(|e| Error::archive_io(path, e))?;
    f.write_all(format!("{}\n", mailbox.as_str()).as_bytes())
        .and_then(|()| f.sync_all())
        .map_err(|e| Error::archive_io(path, e))
}

/// For a shortened folder or file name (`name`), checks that its [`MAILBOX_NAME_FILE`]
/// (`file`) names `mailbox`: another name there is a mailbox of this archive whose shortened
/// name is the same, and `mailbox` is refused.
pub(crate) fn claim_shortened(
    name: &str,
    file: &Path,
    mailbox: &MailboxName,
) -> Result<std::result::Result<(), String>> {
    if !is_shortened(name) {
        return Ok(Ok(()));
    }
    match read_mailbox_name_file(file) {
        Some(owner) if owner != *mailbox => Ok(Err(format!(
            "mailbox {}: its shortened archive name `{name}` already holds mailbox {}; the mailbox is not archived, so that the two are never merged (rename one on the server)",
            crate::archive::writer::shown(mailbox),
            crate::archive::writer::shown(&owner)
        ))),
        // Missing: a run stopped between creating the folder and naming it; named when the
        // folder is next made ready.
        _ => Ok(Ok(())),
    }
}

/// The file, inside a folder whose name was shortened, that holds the mailbox's full name
/// (its `/`-joined form, UTF-8, one line): a shortened name cannot be decoded.
pub const MAILBOX_NAME_FILE: &str = "mailkeep-mailbox";

/// The mailbox named by `path` (a [`MAILBOX_NAME_FILE`]), if it is a regular file (not a
/// symbolic link) of at most 64 KiB holding UTF-8.
pub fn read_mailbox_name_file(path: &Path) -> Option<MailboxName> {
    let md = std::fs::symlink_metadata(path).ok()?;
    if !md.is_file() || md.len() > 65536 {
        return None;
    }
    let text = std::fs::read_to_string(path).ok()?;
    let line = text.strip_suffix('\n').unwrap_or(&text);
    (!line.is_empty() && !line.contains('\n')).then(|| MailboxName::new(line))
}

/// First 16 hex digits of SHA-256 of a source identity: the unique part of a file name.
fn identity_hash16(identity: &str) -> String {
    hex::encode(Sha256::digest(identity.as_bytes()))[..16].to_string()
}

/// The identity hash in one of our file names (`….M<16 hex>P0.…`), if it is one.
pub fn hash16_in_name(name: &str) -> Option<&str> {
    let b = name.as_bytes();
    let mut from = 0;
    while let Some(p) = name[from..].find(".M") {
        let start = from + p + 2;
        let end = start + 16;
        if end + 3 <= b.len()
            && b[start..end]
                .iter()
                .all(|c| c.is_ascii_digit() || (b'a'..=b'f').contains(c))
            && &b[end..end + 3] == b"P0."
        {
            return Some(&name[start..end]);
        }
        from = from + p + 1;
    }
    None
}

/// The `,S=<size>` of a Maildir file name (Dovecot's and Courier's size field), if any.
pub fn size_in_name(name: &str) -> Option<u64> {
    let base = base_name(name);
    let s = &base[base.find(",S=")? + 3..];
    s.split(',').next()?.parse().ok()
}

/// The part of a Maildir file name before its info (`:2,…`, or `!2,`/`;2,` of other writers).
pub fn base_name(name: &str) -> &str {
    for sep in [":2,", "!2,", ";2,"] {
        if let Some(p) = name.find(sep) {
            return &name[..p];
        }
    }
    name
}

fn system_time(secs: i64) -> SystemTime {
    if secs >= 0 {
        UNIX_EPOCH + Duration::from_secs(secs as u64)
    } else {
        UNIX_EPOCH - Duration::from_secs(secs.unsigned_abs())
    }
}

/// Creates a directory with mode 0700; true when it was created, false when it existed.
fn make_dir(path: &Path) -> Result<bool> {
    match DirBuilder::new().mode(0o700).create(path) {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists && path.is_dir() => Ok(false),
        Err(e) => Err(Error::archive_io(path, e)),
    }
}

/// fsyncs a directory so that the entries created or renamed in it are durable.
pub(crate) fn fsync_dir(path: &Path) -> Result<()> {
    File::open(path)
        .and_then(|d| d.sync_all())
        .map_err(|e| Error::archive_io(path, e))
}

/// Checks that an existing archive root is a writable directory, or creates it (0700).
pub(crate) fn open_root(root: &Path) -> Result<()> {
    match std::fs::metadata(root) {
        Ok(m) if !m.is_dir() => Err(Error::archive(root, "exists and is not a directory")),
        Ok(_) => {
            let c = CString::new(root.as_os_str().as_bytes())
                .map_err(|_| Error::archive(root, "path contains a NUL byte"))?;
            // SAFETY: `c` is a valid NUL-terminated path for the duration of the call.
            if unsafe { libc::access(c.as_ptr(), libc::W_OK | libc::X_OK) } != 0 {
                return Err(Error::archive(
                    root,
                    format!("is not writable: {}", io::Error::last_os_error()),
                ));
            }
            Ok(())
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(root)
            .map_err(|e| Error::archive_io(root, e)),
        Err(e) => Err(Error::archive_io(root, e)),
    }
}

/// SHA-256 (lower-case hex) and size of a file, streamed.
pub(crate) fn hash_file(path: &Path) -> io::Result<(String, u64)> {
    // Never through a link (nothing outside the archive is read): `ELOOP`.
    let mut f = crate::archive::reader::open_nofollow(path)?;
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 64 * 1024];
    let mut size = 0u64;
    loop {
        let n = f.read(&mut buf)?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
        size += n as u64;
    }
    Ok((hex::encode(h.finalize()), size))
}

/// One of our files found in a folder: the subdirectory (`cur` or `new`) and the file name.
type Found = (&'static str, String);

/// A Maildir++ archive being written.
pub struct MaildirSink {
    root: PathBuf,
    /// Folders known to exist with `cur/ new/ tmp/` (by folder name, `""` for INBOX).
    ready: HashSet<String>,
    /// `cur/` directories renamed into since the last sync.
    dirty: BTreeSet<PathBuf>,
    /// Per mailbox, identity hash -> file, from one directory read per mailbox per run.
    index: HashMap<MailboxName, HashMap<String, Found>>,
    /// Per folder directory, the keywords of its `dovecot-keywords` file, by letter index.
    keywords: HashMap<PathBuf, Vec<String>>,
    counter: u64,
    /// Which mailbox each folder holds in this run ([`Sink::claim`]).
    claims: crate::archive::writer::FolderClaims,
}

impl MaildirSink {
    /// Opens (creating with mode 0700 when missing) a Maildir++ root with `cur/ new/ tmp/`.
    /// Refuses a root that is not a directory or not writable.
    pub fn open(root: &Path) -> Result<Self> {
        open_root(root)?;
        let mut sink = MaildirSink {
            root: root.to_path_buf(),
            ready: HashSet::new(),
            dirty: BTreeSet::new(),
            index: HashMap::new(),
            keywords: HashMap::new(),
            counter: 0,
            claims: crate::archive::writer::FolderClaims::default(),
        };
        sink.ensure_folder(&MailboxName::inbox())?;
        Ok(sink)
    }

    /// The directory of a mailbox's folder.
    pub fn folder_path(&self, mailbox: &MailboxName) -> PathBuf {
        let name = maildir_folder_name(mailbox);
        if name.is_empty() {
            self.root.clone()
        } else {
            self.root.join(name)
        }
    }

    /// Creates a mailbox's folder when missing; returns its directory.
    fn ensure_folder(&mut self, mailbox: &MailboxName) -> Result<PathBuf> {
        let name = maildir_folder_name(mailbox);
        let dir = self.folder_path(mailbox);
        if self.ready.contains(&name) {
            return Ok(dir);
        }
        for sub in ["cur", "new", "tmp", "maildirfolder", "dovecot-keywords"] {
            crate::archive::writer::refuse_symlinks(&self.root, &dir.join(sub))?;
        }
        let created = !name.is_empty() && make_dir(&dir)?;
        let mut sub_created = false;
        for sub in ["cur", "new", "tmp"] {
            sub_created |= make_dir(&dir.join(sub))?;
        }
        if !name.is_empty() {
            let marker = dir.join("maildirfolder");
            OpenOptions::new()
                .write(true)
                .create(true)
                .truncate(false)
                .mode(0o600)
                .custom_flags(libc::O_NOFOLLOW)
                .open(&marker)
                .map_err(|e| Error::archive_io(&marker, e))?;
        }
        if is_shortened(&name) {
            let file = dir.join(MAILBOX_NAME_FILE);
            if std::fs::symlink_metadata(&file).is_err() {
                write_name_file(&file, mailbox)?;
                sub_created = true;
            }
        }
        if sub_created {
            fsync_dir(&dir)?;
        }
        if created {
            fsync_dir(&self.root)?;
        }
        crate::archive::staging::staged::remove_stale(&dir.join("tmp"))?;
        self.ready.insert(name);
        Ok(dir)
    }

    /// Reads `cur/` and `new/` of a mailbox once, building the identity-hash index.
    fn load_index(&mut self, mailbox: &MailboxName) -> Result<&HashMap<String, Found>> {
        if !self.index.contains_key(mailbox) {
            let dir = self.folder_path(mailbox);
            let mut map: HashMap<String, Found> = HashMap::new();
            for sub in ["new", "cur"] {
                let d = dir.join(sub);
                let entries = match std::fs::read_dir(&d) {
                    Ok(e) => e,
                    Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
                    Err(e) => return Err(Error::archive_io(&d, e)),
                };
                for entry in entries {
                    let entry = entry.map_err(|e| Error::archive_io(&d, e))?;
                    let name = entry.file_name();
                    let Some(name) = name.to_str() else { continue };
                    if let Some(h) = hash16_in_name(name) {
                        // `cur` is read last: it wins over a copy in `new`.
                        map.insert(h.to_string(), (sub, name.to_string()));
                    }
                }
            }
            self.index.insert(mailbox.clone(), map);
        }
        Ok(&self.index[mailbox])
    }

    /// The Maildir info for `flags` in folder `dir`: system letters (`DFRST`), then keyword
    /// letters `a`..`z` from Dovecot's `dovecot-keywords` file (keyword N is letter `a`+N),
    /// adding new keywords to that file (written to a temporary file, fsync'd, renamed). A
    /// folder holds at most 26 keywords; others are kept in the ledger only.
    fn info(&mut self, dir: &Path, flags: &Flags) -> Result<String> {
        let mut info = flags.maildir_info();
        let wanted: Vec<&str> = flags
            .iter()
            .filter_map(|f| match f {
                Flag::Keyword(k) => Some(k.as_str()),
                _ => None,
            })
            .collect();
        if wanted.is_empty() {
            return Ok(info);
        }
        let file = dir.join("dovecot-keywords");
        if !self.keywords.contains_key(dir) {
            let mut list: Vec<String> = Vec::new();
            if let Ok(text) = std::fs::read_to_string(&file) {
                for line in text.lines() {
                    if let Some((n, k)) = line.split_once(' ') {
                        if let Ok(n) = n.parse::<usize>() {
                            if n < 26 {
                                if list.len() <= n {
                                    list.resize(n + 1, String::new());
                                }
                                list[n] = k.to_string();
                            }
                        }
                    }
                }
            }
            self.keywords.insert(dir.to_path_buf(), list);
        }
        let list = self.keywords.get_mut(dir).expect("loaded above");
        let mut changed = false;
        let mut letters = Vec::new();
        for k in wanted {
            let idx = match list.iter().position(|x| x == k) {
                Some(i) => Some(i),
                None if list.len() < 26 => {
                    list.push(k.to_string());
                    changed = true;
                    Some(list.len() - 1)
                }
                None => None,
            };
            if let Some(i) = idx {
                letters.push((b'a' + i as u8) as char);
            }
        }
        if changed {
            let text: String = list
                .iter()
                .enumerate()
                .filter(|(_, k)| !k.is_empty())
                .map(|(i, k)| format!("{i} {k}\n"))
                .collect();
            let tmp = dir.join("tmp").join("dovecot-keywords.mailkeep");
            let write = || -> io::Result<()> {
                let mut f = OpenOptions::new()
                    .write(true)
                    .create(true)
                    .truncate(true)
                    .mode(0o600)
                    .custom_flags(libc::O_NOFOLLOW)
                    .open(&tmp)?;
                f.write_all(text.as_bytes())?;
                f.sync_all()?;
                std::fs::rename(&tmp, &file)
            };
            write().map_err(|e| Error::archive_io(&file, e))?;
            fsync_dir(dir)?;
        }
        letters.sort_unstable();
        info.extend(letters);
        Ok(info)
    }

    /// The file currently holding the message recorded at `location` (`<folder>/cur/<base>`),
    /// trying the info for `flags` first, then any file with that base name in `cur/` or `new/`.
    fn current_file(&mut self, location: &str, flags: &Flags) -> Result<Option<PathBuf>> {
        let path = self.root.join(location);
        let (Some(dir), Some(base)) = (path.parent(), path.file_name().and_then(|b| b.to_str()))
        else {
            return Ok(None);
        };
        let folder = dir.parent().unwrap_or(&self.root).to_path_buf();
        let guess = dir.join(format!("{base}:2,{}", self.info(&folder, flags)?));
        if guess.exists() {
            return Ok(Some(guess));
        }
        for sub in ["cur", "new"] {
            let d = folder.join(sub);
            let Ok(rd) = std::fs::read_dir(&d) else {
                continue;
            };
            for e in rd.flatten() {
                if e.file_name().to_str().is_some_and(|n| base_name(n) == base) {
                    return Ok(Some(e.path()));
                }
            }
        }
        Ok(None)
    }

    fn relative(&self, mailbox: &MailboxName, sub: &str, name: &str) -> String {
        let folder = maildir_folder_name(mailbox);
        if folder.is_empty() {
            format!("{sub}/{}", base_name(name))
        } else {
            format!("{folder}/{sub}/{}", base_name(name))
        }
    }
}

impl Sink for MaildirSink {
    fn kind(&self) -> ArchiveKind {
        ArchiveKind::Maildir
    }

    fn claim(&mut self, mailbox: &MailboxName) -> Result<std::result::Result<(), String>> {
        let name = maildir_folder_name(mailbox);
        if name.is_empty() {
            return Ok(Ok(()));
        }
        let dir = self.folder_path(mailbox);
        crate::archive::writer::claim_path(&mut self.claims, &dir, mailbox, |d| {
            claim_shortened(&name, &d.join(MAILBOX_NAME_FILE), mailbox)
        })
    }

    fn root(&self) -> &Path {
        &self.root
    }

    fn stage(&mut self, mailbox: &MailboxName) -> Result<Staged> {
        let dir = self.ensure_folder(mailbox)?;
        self.counter += 1;
        let secs = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0);
        let path = dir
            .join("tmp")
            .join(crate::archive::staging::staged::staged_name(
                secs,
                std::process::id(),
                self.counter,
            ));
        Staged::create(&path).map_err(|e| Error::archive_io(&path, e))
    }

    fn tail(&mut self, _mailbox: &MailboxName) -> Result<Option<TailMark>> {
        Ok(None)
    }

    fn place(&mut self, staged: StagedMessage, meta: &PlaceMeta) -> Result<Stored> {
        let dir = match self.ensure_folder(&meta.mailbox) {
            Ok(d) => d,
            Err(e) => {
                staged.discard();
                return Err(e);
            }
        };
        let hash16 = identity_hash16(&meta.identity);
        let base = format!(
            "{}.M{hash16}P0.mailkeep,S={}",
            meta.internal_date.max(0),
            staged.size
        );
        let info = match self.info(&dir, &meta.flags) {
            Ok(i) => i,
            Err(e) => {
                staged.discard();
                return Err(e);
            }
        };
        let name = format!("{base}:2,{info}");
        let cur = dir.join("cur");
        let target = cur.join(&name);
        let t = system_time(meta.internal_date);
        let times = FileTimes::new().set_accessed(t).set_modified(t);
        let res = File::open(&staged.path)
            .and_then(|f| f.set_times(times))
            .map_err(|e| Error::archive_io(&staged.path, e))
            .and_then(|()| {
                std::fs::rename(&staged.path, &target).map_err(|e| Error::archive_io(&target, e))
            });
        if let Err(e) = res {
            staged.discard();
            return Err(e);
        }
        self.dirty.insert(cur);
        if let Some(map) = self.index.get_mut(&meta.mailbox) {
            map.insert(hash16, ("cur", name.clone()));
        }
        Ok(Stored {
            location: self.relative(&meta.mailbox, "cur", &name),
        })
    }

    fn sync(&mut self) -> Result<Vec<TailMark>> {
        while let Some(dir) = self.dirty.first().cloned() {
            fsync_dir(&dir)?;
            self.dirty.remove(&dir);
        }
        Ok(Vec::new())
    }

    fn find_unrecorded(
        &mut self,
        mailbox: &MailboxName,
        identity: &str,
    ) -> Result<Option<(Stored, String, u64)>> {
        let hash16 = identity_hash16(identity);
        let Some((sub, name)) = self.load_index(mailbox)?.get(&hash16).cloned() else {
            return Ok(None);
        };
        let path = self.folder_path(mailbox).join(sub).join(&name);
        match hash_file(&path) {
            // A file whose size is not the `,S=` it was written with is damaged: not adopted
            // (the message is fetched again and its file replaced).
            Ok((_, size)) if size_in_name(&name).is_some_and(|s| s != size) => Ok(None),
            Ok((sha, size)) => Ok(Some((
                Stored {
                    location: self.relative(mailbox, sub, &name),
                },
                sha,
                size,
            ))),
            // Renamed or removed by another program since the directory was read.
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                if let Some(m) = self.index.get_mut(mailbox) {
                    m.remove(&hash16);
                }
                Ok(None)
            }
            Err(e) => Err(Error::archive_io(&path, e)),
        }
    }

    fn set_flags(
        &mut self,
        mailbox: &MailboxName,
        location: &str,
        old: &Flags,
        new: &Flags,
    ) -> Result<()> {
        let Some(from) = self.current_file(location, old)? else {
            return Err(Error::archive(
                self.root.join(location),
                "the message file is missing (moved or deleted by another program)",
            ));
        };
        let folder = self.folder_path(mailbox);
        let base = from
            .file_name()
            .and_then(|n| n.to_str())
            .map(|n| base_name(n).to_string())
            .unwrap_or_default();
        let cur = folder.join("cur");
        let to = cur.join(format!("{base}:2,{}", self.info(&folder, new)?));
        if from != to {
            std::fs::rename(&from, &to).map_err(|e| Error::archive_io(&from, e))?;
            self.dirty.insert(cur);
        }
        Ok(())
    }

    fn remove(&mut self, _mailbox: &MailboxName, location: &str, flags: &Flags) -> Result<bool> {
        let Some(file) = self.current_file(location, flags)? else {
            return Ok(false);
        };
        std::fs::remove_file(&file).map_err(|e| Error::archive_io(&file, e))?;
        if let Some(dir) = file.parent() {
            self.dirty.insert(dir.to_path_buf());
        }
        Ok(true)
    }

    fn present(&mut self, location: &str) -> Result<Option<bool>> {
        let (folder, name) = match location.rsplit_once('/') {
            Some((dir, name)) => (dir.rsplit_once('/').map(|(f, _)| f).unwrap_or(""), name),
            None => return Ok(None),
        };
        let mailbox = mailbox_from_maildir_folder(folder).or_else(|| {
            is_shortened(folder)
                .then(|| read_mailbox_name_file(&self.root.join(folder).join(MAILBOX_NAME_FILE)))
                .flatten()
        });
        let (Some(mailbox), Some(hash16)) = (mailbox, hash16_in_name(name)) else {
            return Ok(None);
        };
        let hash16 = hash16.to_string();
        Ok(Some(self.load_index(&mailbox)?.contains_key(&hash16)))
    }

    fn verify_stored(
        &mut self,
        _mailbox: &MailboxName,
        location: &str,
        flags: &Flags,
        sha256: &str,
    ) -> Result<bool> {
        let Some(file) = self.current_file(location, flags)? else {
            return Ok(false);
        };
        match hash_file(&file) {
            Ok((sha, _)) => Ok(sha == sha256),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
            Err(e) => Err(Error::archive_io(&file, e)),
        }
    }

    fn verify_placed(&mut self, _location: &str, _sha256: &str) -> Result<bool> {
        Ok(false)
    }

    fn repair_tail(&mut self, _pending: &TailMark, _committed: u64) -> Result<bool> {
        Ok(false)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::message::{Flag, Flags};
    use std::io::Write;
    use std::os::unix::fs::{MetadataExt, PermissionsExt};

    fn mode(p: &Path) -> u32 {
        std::fs::metadata(p).unwrap().permissions().mode() & 0o777
    }

    fn meta(mailbox: &str, identity: &str, flags: Flags, date: i64) -> PlaceMeta {
        PlaceMeta {
            mailbox: MailboxName::new(mailbox),
            flags,
            internal_date: date,
            envelope_from: "a@example.com".into(),
            identity: identity.into(),
        }
    }

    fn put(sink: &mut MaildirSink, m: &PlaceMeta, body: &[u8]) -> Stored {
        let mut s = sink.stage(&m.mailbox).unwrap();
        s.write_all(body).unwrap();
        let staged = s.finish().unwrap();
        sink.place(staged, m).unwrap()
    }

    #[test]
    fn folder_names_table() {
        let table: &[(&str, &str)] = &[
            ("INBOX", ""),
            ("inbox", ""),
            ("Sent", ".Sent"),
            ("Archive/2023", ".Archive.2023"),
            ("INBOX/Work", ".INBOX.Work"),
            ("example.org invoices", ".example%2Eorg invoices"),
            ("100%", ".100%25"),
            ("%2E", ".%252E"),
            ("..", ".%2E%2E"),
            ("mailkeep", ".mailkeep"),
            ("a/mailkeep", ".a.mailkeep"),
            ("日本語/受信箱", ".&ZeVnLIqe-.&U9dP4Xux-"),
            ("📬 Post.box", ".&2D3c7A- Post%2Ebox"),
            ("R&D", ".R&-D"),
            ("Cartório", ".Cart&APM-rio"),
            ("tab\there", ".tab%09here"),
            ("a//b", ".a.%.b"),
            ("a/", ".a.%"),
        ];
        for (mailbox, folder) in table {
            let m = MailboxName::new(mailbox);
            assert_eq!(maildir_folder_name(&m), *folder, "{mailbox}");
            assert_eq!(mailbox_from_maildir_folder(folder), Some(m), "{folder}");
        }
        assert_eq!(
            mailbox_from_maildir_folder(".Sent"),
            Some(MailboxName::new("Sent"))
        );
        assert_eq!(
            mailbox_from_maildir_folder(".x%2e%zz%"),
            Some(MailboxName::new("x.%zz%"))
        );
        for not in ["cur", ".", ".."] {
            assert_eq!(mailbox_from_maildir_folder(not), None, "{not}");
        }
    }

    #[test]
    fn hash_in_names() {
        assert_eq!(
            hash16_in_name("1700000000.M0123456789abcdefP0.mailkeep,S=5:2,S"),
            Some("0123456789abcdef")
        );
        assert_eq!(
            hash16_in_name("1704535200.M1P100.mx.example.com,S=220:2,FS"),
            None
        );
        assert_eq!(
            hash16_in_name("x.M.M0123456789abcdefP0.y"),
            Some("0123456789abcdef")
        );
        assert_eq!(hash16_in_name("x.M0123456789ABCDEFP0.y"), None);
        assert_eq!(base_name("a,S=1:2,FS"), "a,S=1");
        assert_eq!(base_name("a!2,S"), "a");
    }

    #[test]
    fn open_creates_and_refuses() {
        let t = tempfile::tempdir().unwrap();
        let root = t.path().join("mail/backup");
        let sink = MaildirSink::open(&root).unwrap();
        assert_eq!(sink.kind(), ArchiveKind::Maildir);
        for p in ["", "cur", "new", "tmp"] {
            assert_eq!(mode(&root.join(p)), 0o700, "{p}");
        }
        let file = t.path().join("file");
        std::fs::write(&file, b"x").unwrap();
        let err = MaildirSink::open(&file).err().unwrap();
        assert!(err.to_string().contains("is not a directory"), "{err}");
        if unsafe { libc::geteuid() } != 0 {
            let ro = t.path().join("ro");
            std::fs::create_dir(&ro).unwrap();
            std::fs::set_permissions(&ro, std::fs::Permissions::from_mode(0o500)).unwrap();
            let err = MaildirSink::open(&ro).err().unwrap();
            assert!(err.to_string().contains("is not writable"), "{err}");
        }
    }

    #[test]
    fn place_names_flags_mtime_and_modes() {
        let t = tempfile::tempdir().unwrap();
        let root = t.path();
        let mut sink = MaildirSink::open(root).unwrap();
        let flags = Flags::from_iter([Flag::Seen, Flag::Flagged, Flag::Keyword("$Work".into())]);
        let m = meta(
            "Archive/2023",
            "pop3:a@h\0INBOX\0uidl-1",
            flags,
            1_709_802_307,
        );
        let stored = put(&mut sink, &m, b"Subject: x\r\n\r\nbody\r\n");
        let h = identity_hash16(&m.identity);
        let name = format!("1709802307.M{h}P0.mailkeep,S=17");
        assert_eq!(stored.location, format!(".Archive.2023/cur/{name}"));
        let file = root.join(".Archive.2023/cur").join(format!("{name}:2,FSa"));
        assert_eq!(
            std::fs::read_to_string(root.join(".Archive.2023/dovecot-keywords")).unwrap(),
            "0 $Work\n"
        );
        // Times first: reading the file may update its atime (relatime).
        let md = std::fs::metadata(&file).unwrap();
        assert_eq!(md.mtime(), 1_709_802_307);
        assert_eq!(md.atime(), 1_709_802_307);
        assert_eq!(std::fs::read(&file).unwrap(), b"Subject: x\n\nbody\n");
        assert_eq!(mode(&file), 0o600);
        let folder = root.join(".Archive.2023");
        for p in ["", "cur", "new", "tmp"] {
            assert_eq!(mode(&folder.join(p)), 0o700, "{p}");
        }
        assert_eq!(
            std::fs::metadata(folder.join("maildirfolder"))
                .unwrap()
                .len(),
            0
        );
        assert_eq!(std::fs::read_dir(folder.join("tmp")).unwrap().count(), 0);
        assert_eq!(sink.sync().unwrap(), vec![]);

        // INBOX lives in the root; no flags gives an empty info.
        let m = meta("inbox", "id-2", Flags::new(), 0);
        let stored = put(&mut sink, &m, b"x\n");
        let h = identity_hash16("id-2");
        assert_eq!(stored.location, format!("cur/0.M{h}P0.mailkeep,S=2"));
        assert!(root.join(format!("cur/0.M{h}P0.mailkeep,S=2:2,")).exists());
        assert!(!root.join("maildirfolder").exists());
        sink.sync().unwrap();
    }

    #[test]
    fn find_unrecorded_after_crash() {
        let t = tempfile::tempdir().unwrap();
        let root = t.path();
        let m = meta(
            "Sent",
            "imap:a@h\0Sent\0uidvalidity-7\0uid-42",
            Flags::from_iter([Flag::Seen]),
            5,
        );
        let stored = {
            let mut sink = MaildirSink::open(root).unwrap();
            let s = put(&mut sink, &m, b"Subject: sent\n\nhi\n");
            sink.sync().unwrap();
            s
        };
        // A new run: the ledger never recorded it.
        let mut sink = MaildirSink::open(root).unwrap();
        let want = hex::encode(Sha256::digest(b"Subject: sent\n\nhi\n"));
        let found = sink.find_unrecorded(&m.mailbox, &m.identity).unwrap();
        assert_eq!(found, Some((stored.clone(), want.clone(), 18)));
        assert_eq!(sink.find_unrecorded(&m.mailbox, "other").unwrap(), None);
        assert_eq!(
            sink.find_unrecorded(&MailboxName::new("Nope"), &m.identity)
                .unwrap(),
            None
        );
        // Placed in this run after the index was read: found too.
        let m2 = meta("Sent", "id-3", Flags::new(), 6);
        let s2 = put(&mut sink, &m2, b"a\n");
        assert_eq!(
            sink.find_unrecorded(&m2.mailbox, "id-3")
                .unwrap()
                .unwrap()
                .0,
            s2
        );
        // Another program moved it to new/ with different flags: still found.
        let mut sink = MaildirSink::open(root).unwrap();
        let h = identity_hash16(&m.identity);
        std::fs::rename(
            root.join(format!(".Sent/cur/5.M{h}P0.mailkeep,S=18:2,S")),
            root.join(format!(".Sent/new/5.M{h}P0.mailkeep,S=18")),
        )
        .unwrap();
        let (loc, sha, size) = sink
            .find_unrecorded(&m.mailbox, &m.identity)
            .unwrap()
            .unwrap();
        assert_eq!(loc.location, format!(".Sent/new/5.M{h}P0.mailkeep,S=18"));
        assert_eq!((sha, size), (want, 18));
    }

    #[test]
    fn negative_internal_date() {
        let t = tempfile::tempdir().unwrap();
        let mut sink = MaildirSink::open(t.path()).unwrap();
        let m = meta("INBOX", "old", Flags::new(), -86_400);
        let stored = put(&mut sink, &m, b"x\n");
        assert!(stored.location.starts_with("cur/0.M"));
        let p = t.path().join(format!("{}:2,", stored.location));
        assert_eq!(std::fs::metadata(p).unwrap().mtime(), -86_400);
    }
}

#[cfg(test)]
mod flag_tests {
    use super::*;

    #[test]
    fn a_linked_folder_or_subfolder_is_refused_and_nothing_is_written_outside() {
        let t = tempfile::tempdir().unwrap();
        let root = t.path().join("m");
        let outside = t.path().join("outside");
        std::fs::create_dir_all(outside.join("cur")).unwrap();
        let mut sink = MaildirSink::open(&root).unwrap();
        std::os::unix::fs::symlink(&outside, root.join(".Sent")).unwrap();
        std::fs::create_dir_all(root.join(".Work")).unwrap();
        std::os::unix::fs::symlink(outside.join("cur"), root.join(".Work/tmp")).unwrap();
        for (mailbox, link) in [("Sent", ".Sent"), ("Work", ".Work/tmp")] {
            let e = sink.stage(&MailboxName::new(mailbox)).err().unwrap();
            assert_eq!(
                e.to_string(),
                format!(
                    "archive {}: is a symbolic link; mailkeep writes nothing through a link (it could lead out of the archive): replace it with a real folder or file",
                    root.join(link).display()
                )
            );
        }
        let mut left = Vec::new();
        for e in walkdir(&outside) {
            left.push(e);
        }
        assert_eq!(left, vec!["cur".to_string()], "written outside");
    }

    fn walkdir(dir: &Path) -> Vec<String> {
        let mut out = Vec::new();
        let mut stack = vec![dir.to_path_buf()];
        while let Some(d) = stack.pop() {
            for e in std::fs::read_dir(&d).unwrap().flatten() {
                out.push(e.path().strip_prefix(dir).unwrap().display().to_string());
                if e.file_type().unwrap().is_dir() {
                    stack.push(e.path());
                }
            }
        }
        out.sort();
        out
    }

    #[test]
    fn set_flags_renames_and_remove_unlinks() {
        let t = tempfile::tempdir().unwrap();
        let mut sink = MaildirSink::open(t.path()).unwrap();
        let mb = MailboxName::new("Sent");
        let mut s = sink.stage(&mb).unwrap();
        s.write_all(b"Subject: x\n\nbody\n").unwrap();
        let staged = s.finish().unwrap();
        let old = Flags::from_imap_list("\\Seen");
        let meta = PlaceMeta {
            mailbox: mb.clone(),
            flags: old.clone(),
            internal_date: 1_700_000_000,
            envelope_from: "a@b".into(),
            identity: "id-1".into(),
        };
        let stored = sink.place(staged, &meta).unwrap();
        sink.sync().unwrap();
        let new = Flags::from_imap_list("\\Seen \\Answered $Later Work");
        sink.set_flags(&mb, &stored.location, &old, &new).unwrap();
        let names: Vec<String> = std::fs::read_dir(t.path().join(".Sent/cur"))
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        assert_eq!(names.len(), 1);
        assert!(names[0].ends_with(":2,RSab"), "{names:?}");
        let kw = std::fs::read_to_string(t.path().join(".Sent/dovecot-keywords")).unwrap();
        assert_eq!(kw, "0 $Later\n1 Work\n");
        assert!(sink.remove(&mb, &stored.location, &new).unwrap());
        assert_eq!(
            std::fs::read_dir(t.path().join(".Sent/cur"))
                .unwrap()
                .count(),
            0
        );
        assert!(!sink.remove(&mb, &stored.location, &new).unwrap());
    }
}
