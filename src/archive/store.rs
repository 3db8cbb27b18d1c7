//! Opening a local archive for writing: its directories (0700), its state folder
//! `mailkeep/` (kind, lock, ledger), the lock for the run, the sink for its kind, and the
//! repair of an mbox tail that a crashed mailkeep run appended but never recorded.

use std::fs::DirBuilder;
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use crate::archive::ledger::Ledger;
use crate::archive::ledger::Record;
use crate::archive::lock::ArchiveLock;
use crate::archive::maildir::writer::MaildirSink;
use crate::archive::mbox::writer::MboxSink;
use crate::archive::writer::{Sink, TailMark};
use crate::core::endpoint::{ArchiveKind, ArchiveSpec};
use crate::core::error::{Error, Result};

pub use crate::core::endpoint::STATE_DIR;

/// Ledger `meta` key: when this archive's ledger was last found older than the archive (seconds
/// since the epoch). `--mirror` never removes a copy recorded before then.
pub const OLDER_LEDGER_KEY: &str = "older_ledger_found_at";

/// An archive opened for writing, locked for this process.
pub struct OpenArchive {
    pub spec: ArchiveSpec,
    pub ledger: Ledger,
    pub sink: Box<dyn Sink + Send>,
    /// What was repaired at open (for the report).
    pub repairs: Vec<String>,
    _lock: ArchiveLock,
}

impl ArchiveSpec {
    /// How the archive is named to users: `maildir:/path`.
    pub fn display(&self) -> String {
        format!("{}:{}", self.kind.as_str(), self.path.display())
    }

    /// The state folder `mailkeep/`.
    pub fn state_dir(&self) -> PathBuf {
        self.path.join(STATE_DIR)
    }
}

/// Refuses to write into an archive (folder or file) that exists and belongs to another user:
/// files mailkeep would add to it would be owned by the running user (for root, with modes the
/// owner could not read or repair), or the owner's files would be rewritten by someone else.
/// A missing `path` is fine (mailkeep creates it), and so is one that cannot be examined (the
/// opener that follows reports that).
///
/// Errors: [`Error::Archive`] (exit 6), one line naming the path, its owner and the running
/// user.
pub fn check_owner(path: &Path) -> Result<()> {
    use std::os::unix::fs::MetadataExt;
    let meta = match std::fs::metadata(path) {
        Ok(m) => m,
        // Missing, or not reachable (a path through a file, no permission): the opener that
        // follows says what is wrong in its own words ("is a file, not a folder", ...).
        Err(_) => return Ok(()),
    };
    // SAFETY: geteuid has no preconditions and cannot fail.
    let me = unsafe { libc::geteuid() };
    if meta.uid() == me {
        return Ok(());
    }
    Err(Error::archive(
        path,
        format!(
            "belongs to another user ({}), not to the user running mailkeep ({}); refusing to write into it (run mailkeep as its owner, or change its owner with chown)",
            user_label(meta.uid()),
            user_label(me)
        ),
    ))
}

/// `name (uid N)`, or `uid N` when the uid has no name.
fn user_label(uid: u32) -> String {
    // SAFETY: getpwuid returns NULL or a pointer to a static record, read at once.
    let name = unsafe {
        let pw = libc::getpwuid(uid);
        if pw.is_null() || (*pw).pw_name.is_null() {
            None
        } else {
            Some(
                std::ffi::CStr::from_ptr((*pw).pw_name)
                    .to_string_lossy()
                    .into_owned(),
            )
        }
    };
    match name {
        Some(n) => format!("{n}, uid {uid}"),
        None => format!("uid {uid}"),
    }
}

fn mkdir(p: &Path) -> Result<()> {
    DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(p)
        .map_err(|e| Error::archive_io(p, e))
}

/// True when the archive's folder does not exist yet (nothing at its path, not even a
/// dangling link). The backup engines then log in before [`open`] creates it, so a failed
/// first login (a wrong password, a refused connection) leaves no empty archive folder
/// behind; an existing archive is locked before the login, as always.
pub fn is_new(spec: &ArchiveSpec) -> bool {
    std::fs::symlink_metadata(&spec.path).is_err_and(|e| e.kind() == std::io::ErrorKind::NotFound)
}

/// Opens (creating when missing) the archive described by `spec`.
///
/// Errors: [`Error::Locked`] when another run holds it; [`Error::Usage`] when the folder is an
/// archive of another kind; [`Error::Archive`]/[`Error::ArchiveIo`] when it cannot be created,
/// written, or its mbox files are shorter than recorded (damaged by another program), or
/// `mailkeep/` or one of its files is a symbolic link (nothing is written through one; the
/// root itself, named by the user, may be a link).
pub fn open(spec: &ArchiveSpec) -> Result<OpenArchive> {
    let root = &spec.path;
    if root.exists() && !root.is_dir() {
        return Err(Error::archive(
            root,
            "exists and is not a directory (an archive is a folder; for mbox, mailkeep writes one file per mailbox inside it)",
        ));
    }
    check_owner(root)?;
    mkdir(root)?;
    let state = spec.state_dir();
    // The root the user named may be a link; nothing inside it is written through one.
    for name in [
        "",
        "lock",
        "kind",
        "ledger.sqlite",
        "ledger.sqlite-wal",
        "ledger.sqlite-shm",
    ] {
        crate::archive::writer::refuse_symlinks(root, &state.join(name))?;
    }
    check_owner(&state)?;
    mkdir(&state)?;
    let lock = ArchiveLock::acquire(&state.join("lock"), root)?;

    let kind_file = state.join("kind");
    match crate::core::endpoint::recorded_kind(root)? {
        Some(k) if k != spec.kind => {
            return Err(Error::Usage(format!(
                "{} is a {} archive; write {}:{}",
                root.display(),
                k.as_str(),
                k.as_str(),
                root.display()
            )))
        }
        Some(_) => {}
        None => {
            // Written to a temporary file, fsync'd and renamed, so it is never half-written.
            let tmp = state.join("kind.tmp");
            let mut f = std::fs::OpenOptions::new()
                .write(true)
                .create(true)
                .truncate(true)
                .mode(0o600)
                .custom_flags(libc::O_NOFOLLOW)
                .open(&tmp)
                .map_err(|e| Error::archive_io(&tmp, e))?;
            writeln!(f, "{}", spec.kind.as_str())
                .and_then(|_| f.sync_all())
                .and_then(|_| std::fs::rename(&tmp, &kind_file))
                .map_err(|e| Error::archive_io(&kind_file, e))?;
        }
    }

    let mut ledger = Ledger::open(&state.join("ledger.sqlite"))?;
    ledger.track_generation(state.join("generation"));
    let (ledger_generation, archive_generation) = ledger.generations()?;
    // The ledger was put back from an older copy: it does not know what later runs did
    // (messages archived, deletions on the server). Nothing is cut from an mbox on its word,
    // and `--mirror` never removes a copy it recorded before now (docs/archive-formats.md, "What a record
    // proves").
    let older = archive_generation > ledger_generation;
    let mut notes = Vec::new();
    if older {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0);
        ledger.note_meta(OLDER_LEDGER_KEY, &now.to_string())?;
        let what = if ledger_generation == 0 {
            format!("the ledger is new but the archive has seen {archive_generation} changes (was the ledger lost?)")
        } else {
            format!("the ledger is older than the archive (it records {ledger_generation} changes, the archive has seen {archive_generation}: put back from an older copy?)")
        };
        notes.push(format!(
            "{}: {what}: files found unrecorded are adopted as unverified, nothing is cut from an mbox, and --mirror keeps every copy recorded before now",
            state.join("ledger.sqlite").display()
        ));
    }
    let mut sink: Box<dyn Sink + Send> = match spec.kind {
        ArchiveKind::Maildir => Box::new(MaildirSink::open(root)?),
        ArchiveKind::Mbox => Box::new(MboxSink::open(root)?),
    };
    let mut repairs = recover(&mut ledger, sink.as_mut(), older)?;
    notes.append(&mut repairs);
    let repairs = notes;
    Ok(OpenArchive {
        spec: spec.clone(),
        ledger,
        sink,
        repairs,
        _lock: lock,
    })
}

/// Finishes what a crashed run left: for each mbox file with a pending append, keeps the
/// messages noted as placed whose bytes verify (in append order, each starting where the
/// previous ended, give or take the separator padding), records them, and cuts the rest of the
/// tail. Checks every other mbox file is at least as long as recorded. Returns what it did.
fn recover(ledger: &mut Ledger, sink: &mut dyn Sink, older: bool) -> Result<Vec<String>> {
    let mut repairs = Vec::new();
    let mut placed = ledger.placed()?;
    placed.sort_by_key(|r| location_span(&r.location).map(|(_, off, _)| off));
    for (file, committed, pending) in ledger.mbox_files()? {
        // An older ledger's pending mark is not this archive's last run: the bytes after it
        // may be complete, archived messages; nothing is cut.
        let pending = pending.filter(|_| !older);
        let Some(pending) = pending else {
            sink.repair_tail(
                &TailMark {
                    file,
                    len: u64::MAX,
                },
                committed,
            )?;
            continue;
        };
        let mut keep = pending.max(committed);
        let mut kept: Vec<Record> = Vec::new();
        for r in placed
            .iter()
            .filter(|r| location_span(&r.location).is_some_and(|(f, _, _)| f == file))
        {
            let (_, off, len) = location_span(&r.location).expect("filtered");
            if off < keep || off - keep > 2 || !sink.verify_placed(&r.location, &r.sha256)? {
                break;
            }
            keep = off + len;
            kept.push(r.clone());
        }
        let cut = sink.repair_tail(
            &TailMark {
                file: file.clone(),
                len: keep,
            },
            committed,
        )?;
        ledger.record_batch(
            &kept,
            &[TailMark {
                file: file.clone(),
                len: keep,
            }],
        )?;
        if cut || !kept.is_empty() {
            repairs.push(format!(
                "{file}: recovered from an interrupted run (kept the {} message(s) it had appended completely{})",
                kept.len(),
                if cut { format!("; cut its unfinished entry after byte {keep}") } else { String::new() }
            ));
        }
    }
    ledger.clear_placed()?;
    Ok(repairs)
}

/// `<file>:<offset>:<length>` of an mbox location.
fn location_span(location: &str) -> Option<(&str, u64, u64)> {
    let (rest, len) = location.rsplit_once(':')?;
    let (file, off) = rest.rsplit_once(':')?;
    Some((file, off.parse().ok()?, len.parse().ok()?))
}

/// The tails to record after a batch: `synced` (what [`crate::archive::writer::Sink::sync`]
/// returned: the files appended to), plus `started` (the mark set pending when the batch
/// began) when nothing was appended to its file, so its pending mark is cleared at the length
/// it had (a batch whose messages were all stored elsewhere, `--dedup`, or all failed, used
/// to leave the file marked as an interrupted append). Pure.
pub fn batch_tails(started: Option<&TailMark>, mut synced: Vec<TailMark>) -> Vec<TailMark> {
    if let Some(mark) = started {
        if !synced.iter().any(|t| t.file == mark.file) {
            synced.push(mark.clone());
        }
    }
    synced
}

/// Before the first append to an mbox file in a run: an existing, non-empty file that the
/// ledger has never recorded was not written by mailkeep into this archive (or the ledger was
/// lost). Appending would mix mailkeep's messages with others and fetch again what may
/// already be there, so mailkeep refuses.
///
/// Errors: [`Error::Archive`] naming the file.
pub fn check_mbox_known(archive: &OpenArchive, mark: &TailMark) -> Result<()> {
    if mark.len == 0 {
        return Ok(());
    }
    let known = archive
        .ledger
        .mbox_files()?
        .iter()
        .any(|(f, _, _)| *f == mark.file);
    if known {
        return Ok(());
    }
    Err(Error::archive(
        archive.spec.path.join(&mark.file),
        format!(
            "exists ({} bytes) but this archive's ledger has no record of it (a file put there by another program, or a lost ledger); mailkeep will not append to it: move it out of the archive and keep it (it may hold mail the server no longer has; `mailkeep restore mbox:FILE` reads it), then run again",
            mark.len
        ),
    ))
}

/// The ledger `meta` key under which the port an account was first backed up from is kept.
fn port_key(ledger_key: &str) -> String {
    format!("port {ledger_key}")
}

/// The port as it identifies a server: the protocol's standard ports (IMAP 143 and 993, POP3
/// 110 and 995) are one server (`imap://` with STARTTLS or `imaps://`), any other is itself.
fn port_class(spec: &crate::core::endpoint::ServerSpec) -> String {
    if spec.target_key() == spec.ledger_key() {
        "standard".to_string()
    } else {
        spec.port.to_string()
    }
}

/// Notes the port an account is backed up from, the first time (not a ledger event), and says whether
/// this run's port is the one recorded. The ledger key leaves the port out (so `pop3://` and
/// `pop3s://` are one account), but two servers on one host behind different ports (SSH
/// tunnels) are two servers with possibly equal user names, UIDVALIDITYs and UIDs: a
/// destructive step through another port than the recorded one compares every message's bytes
/// with the server first (DESIGN.md invariant 2). Archives made before this have no port
/// recorded: the first backup records its own.
///
/// Errors: those of the ledger.
pub fn note_source_port(
    archive: &mut OpenArchive,
    spec: &crate::core::endpoint::ServerSpec,
) -> Result<bool> {
    let key = port_key(&spec.ledger_key());
    let class = port_class(spec);
    match archive.ledger.meta(&key)? {
        Some(recorded) => Ok(recorded == class),
        None => {
            archive.ledger.note_meta(&key, &class)?;
            Ok(true)
        }
    }
}

/// Whether `spec`'s port is the one its account was backed up from (true when none is
/// recorded: nothing to tell).
///
/// Errors: those of the ledger.
pub fn same_source_port(
    archive: &OpenArchive,
    spec: &crate::core::endpoint::ServerSpec,
) -> Result<bool> {
    Ok(archive
        .ledger
        .meta(&port_key(&spec.ledger_key()))?
        .is_none_or(|recorded| recorded == port_class(spec)))
}
