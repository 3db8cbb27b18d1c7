//! `mailkeep export ARCHIVE --to DIR`: writes the archive's messages that match the filters as
//! `.eml` files, one per message, never overwriting a file.
//!
//! - Layout: `DIR/<mailbox levels>/<file>.eml` (`DIR/INBOX/...`, `DIR/Archive/2023/...`), so
//!   `eml:DIR` reads the export back with the same mailboxes. A level starting with `.` gets
//!   `%2E` for it (it would be hidden), `%` becomes `%25`, a `/` inside a level `%2F`, control
//!   characters become `%XX`, an empty level `%`, so two mailboxes never share a folder; a
//!   level longer than 255 bytes is shortened with a hash (as in an archive).
//! - Name: `<date>_<subject slug>_<first 8 hex digits of the SHA-256>.eml`, e.g.
//!   `2023-04-01_quarterly-report_3fa9c2d1.eml`: the date is the message's INTERNALDATE (UTC,
//!   `undated` without one), the slug the decoded subject in lower case, letters and digits of
//!   any script kept, everything else one `-`, at most 60 characters (`no-subject` when empty).
//!   The SHA-256 is of the stored form, whatever line ends are written.
//! - Content: the stored form (LF line ends) byte for byte; with `--crlf`, CRLF line ends (the
//!   RFC 5322 form, what some Windows programs expect). The file's mtime is the message's date.
//! - Never overwritten: a file is written under a temporary name and linked to its final name,
//!   which fails if the name exists. An existing file with the same bytes is the same message
//!   already exported (a rerun writes nothing); one with other bytes keeps its name and the
//!   new file gets `_2`, `_3`, ... before `.eml`.
//!
//! Flags and keywords are not part of an `.eml` file and are not exported.

use std::io::Write;
use std::path::{Path, PathBuf};

use super::{contains_ci, ArchiveArg, Summary};
pub use crate::archive::eml::writer::export_mailbox_dir as mailbox_dir;
use crate::archive::reader::Skipped;
use crate::core::error::{Error, Exit, Result};
use crate::engine::plan::FolderFilter;
use crate::engine::plans::Output;
use crate::engine::report::human_bytes;

/// The subject part of a file name is at most this many characters...
const SLUG_CHARS: usize = 60;
/// ...and this many bytes (file names are limited to 255 bytes).
const SLUG_BYTES: usize = 180;

/// Which messages to export.
#[derive(Debug, Clone)]
pub struct ExportFilter {
    /// `--mailbox GLOB` (repeatable; like backup's `--folder`); none: every mailbox.
    pub mailboxes: FolderFilter,
    /// `--since`: dated at or after this time (seconds since the epoch, UTC midnight).
    pub since: Option<i64>,
    /// `--before`: dated before this time.
    pub before: Option<i64>,
    /// `--from`: a case-insensitive substring of the decoded sender (`Name <address>`).
    pub from: Option<String>,
    /// `--subject`: a case-insensitive substring of the decoded subject.
    pub subject: Option<String>,
}

impl ExportFilter {
    /// True when a message of `date` with these headers is wanted (its mailbox already is).
    /// An undated message is not wanted when a date bound is given. Pure.
    pub fn wants(&self, date: Option<i64>, summary: &Summary) -> bool {
        if self.since.is_some() || self.before.is_some() {
            let Some(t) = date else {
                return false;
            };
            if self.since.is_some_and(|s| t < s) || self.before.is_some_and(|b| t >= b) {
                return false;
            }
        }
        if let Some(f) = &self.from {
            if !contains_ci(&summary.from_full(), f) {
                return false;
            }
        }
        if let Some(s) = &self.subject {
            if !contains_ci(summary.subject.as_deref().unwrap_or(""), s) {
                return false;
            }
        }
        true
    }
}

/// A validated `export`.
#[derive(Debug, Clone)]
pub struct ExportPlan {
    pub archive: ArchiveArg,
    /// `--to DIR`.
    pub to: PathBuf,
    pub filter: ExportFilter,
    /// `--crlf`: write CRLF line ends instead of the stored LF.
    pub crlf: bool,
    pub output: Output,
}

/// What `export` did; printed as one line or (`--json`) as this object.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct ExportReport {
    pub command: &'static str,
    pub archive: String,
    /// The export folder.
    pub to: String,
    /// `lf` or `crlf`.
    pub line_ends: &'static str,
    /// Messages read from the archive (in the mailboxes `--mailbox` selects).
    pub read: u64,
    /// Of those, matching the filters.
    pub matched: u64,
    /// Files written.
    pub written: u64,
    /// Bytes written.
    pub bytes: u64,
    /// Matching messages whose file was already there with the same bytes.
    pub already_present: u64,
    /// The files written, relative to the export folder.
    pub files: Vec<String>,
    /// Messages the archive did not hand out, with the reason.
    pub skipped: Vec<Skipped>,
    pub exit: Exit,
    pub exit_code: u8,
    /// What the archive's reader noticed, said on stderr; not part of the JSON object.
    #[serde(skip)]
    pub warnings: Vec<String>,
}

impl std::fmt::Display for ExportReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "export {} -> {}: {} read, {} matched, {} written ({}), {} already there",
            self.archive,
            self.to,
            self.read,
            self.matched,
            self.written,
            human_bytes(self.bytes),
            self.already_present
        )?;
        if !self.skipped.is_empty() {
            write!(f, ", {} skipped", self.skipped.len())?;
        }
        Ok(())
    }
}

/// The subject as a file-name part (see the module documentation). Pure.
pub fn slug(subject: Option<&str>) -> String {
    let mut out = String::new();
    let mut dash = false;
    for c in subject.unwrap_or("").chars().flat_map(char::to_lowercase) {
        // A combining mark belongs to the letter before it (`i̇` of `İ` lower-cased, `é` written
        // as `e` + U+0301, a virama): kept with it rather than cutting the word.
        if !dash && !out.is_empty() && is_combining_mark(c) {
            if out.len() + c.len_utf8() > SLUG_BYTES {
                break;
            }
            out.push(c);
            continue;
        }
        if c.is_alphanumeric() {
            if dash && !out.is_empty() {
                out.push('-');
            }
            dash = false;
            if out.chars().count() >= SLUG_CHARS || out.len() + c.len_utf8() > SLUG_BYTES {
                break;
            }
            out.push(c);
        } else {
            dash = true;
        }
    }
    let out = out.trim_end_matches('-').to_string();
    if out.is_empty() {
        "no-subject".into()
    } else {
        out
    }
}

/// True for a combining mark: a character of no width of its own that is not a control or an
/// invisible format character (zero-width space and joiners, direction marks, BOM). Pure.
fn is_combining_mark(c: char) -> bool {
    use unicode_width::UnicodeWidthChar;
    !c.is_control()
        && c.width() == Some(0)
        && !matches!(c, '\u{200B}'..='\u{200F}' | '\u{2028}'..='\u{202E}' | '\u{2060}'..='\u{206F}' | '\u{FEFF}')
}

/// `<date>_<slug>_<8 hex>.eml` for a message. Pure.
pub fn file_name(date: Option<i64>, subject: Option<&str>, sha256: &str) -> String {
    let day = date.map(super::ymd).unwrap_or_else(|| "undated".into());
    format!(
        "{day}_{}_{}.eml",
        slug(subject),
        &sha256[..sha256.len().min(8)]
    )
}

/// How a message landed.
#[derive(Debug, PartialEq, Eq)]
enum Landed {
    /// Written under this name.
    Written(String),
    /// A file with this name and the same bytes was already there.
    Present,
}

/// `name` with `_n` before `.eml` (n >= 2).
fn numbered(name: &str, n: u32) -> String {
    let stem = name.strip_suffix(".eml").unwrap_or(name);
    format!("{stem}_{n}.eml")
}

/// True when the file at `path` holds exactly `data` (a symbolic link never does: it is not
/// followed).
fn same_bytes(path: &Path, data: &[u8]) -> std::io::Result<bool> {
    let md = std::fs::symlink_metadata(path)?;
    if !md.is_file() || md.len() != data.len() as u64 {
        return Ok(false);
    }
    Ok(crate::archive::reader::read_nofollow(path)?.0 == data)
}

/// Refuses a symbolic link at or above `dir` inside the export folder `to` (nothing is written
/// through a link); `to` itself, named by the user, may be one.
///
/// Errors: [`Error::OutputIo`] naming the link.
fn refuse_links(to: &Path, dir: &Path) -> Result<()> {
    crate::archive::writer::refuse_symlinks(to, dir).map_err(|e| match e {
        Error::Archive { path, detail } => Error::output_io(path, std::io::Error::other(detail)),
        other => other,
    })
}

/// Writes `data` as `dir/name` (or a numbered name) without ever replacing a file.
fn land(dir: &Path, name: &str, data: &[u8], mtime: Option<i64>) -> Result<Landed> {
    let tmp = dir.join(format!(".{name}.partial-{}", std::process::id()));
    let write_tmp = || -> std::io::Result<()> {
        use std::os::unix::fs::OpenOptionsExt;
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .custom_flags(libc::O_NOFOLLOW)
            .open(&tmp)?;
        f.write_all(data)?;
        if let Some(t) = mtime.and_then(|t| u64::try_from(t).ok()) {
            f.set_modified(std::time::UNIX_EPOCH + std::time::Duration::from_secs(t))?;
        }
        Ok(())
    };
    write_tmp().map_err(|e| Error::output_io(&tmp, e))?;
    let result = (|| {
        for n in 1..=1000u32 {
            let candidate = if n == 1 {
                name.to_string()
            } else {
                numbered(name, n)
            };
            let path = dir.join(&candidate);
            if std::fs::symlink_metadata(&path).is_ok() {
                if same_bytes(&path, data).map_err(|e| Error::output_io(&path, e))? {
                    return Ok(Landed::Present);
                }
                continue;
            }
            match std::fs::hard_link(&tmp, &path) {
                Ok(()) => return Ok(Landed::Written(candidate)),
                // Created meanwhile: look at it again as an existing file.
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                    if same_bytes(&path, data).map_err(|e| Error::output_io(&path, e))? {
                        return Ok(Landed::Present);
                    }
                }
                // A file system without hard links: create the file exclusively instead.
                Err(_) => {
                    let write = || -> std::io::Result<()> {
                        let mut f = std::fs::OpenOptions::new()
                            .write(true)
                            .create_new(true)
                            .open(&path)?;
                        f.write_all(data)?;
                        if let Some(t) = mtime.and_then(|t| u64::try_from(t).ok()) {
                            f.set_modified(
                                std::time::UNIX_EPOCH + std::time::Duration::from_secs(t),
                            )?;
                        }
                        Ok(())
                    };
                    match write() {
                        Ok(()) => return Ok(Landed::Written(candidate)),
                        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
                        Err(e) => return Err(Error::output_io(&path, e)),
                    }
                }
            }
        }
        Err(Error::output_io(
            dir.join(name),
            std::io::Error::other("1000 different files already have this name"),
        ))
    })();
    let _ = std::fs::remove_file(&tmp);
    result
}

/// The canonical form of `p`, for a path that may not exist yet (its existing ancestor
/// canonicalised, the rest appended).
fn canonical_lenient(p: &Path) -> PathBuf {
    let abs = if p.is_absolute() {
        p.to_path_buf()
    } else {
        std::env::current_dir().unwrap_or_default().join(p)
    };
    let mut rest = Vec::new();
    let mut cur = abs.as_path();
    loop {
        if let Ok(c) = std::fs::canonicalize(cur) {
            let mut out = c;
            for r in rest.iter().rev() {
                out.push(r);
            }
            return out;
        }
        match (cur.parent(), cur.file_name()) {
            (Some(parent), Some(name)) => {
                rest.push(name.to_os_string());
                cur = parent;
            }
            _ => return abs,
        }
    }
}

/// Runs `export`: writes the matching messages and returns the report, its `exit` the status
/// (printing it is the caller's: `cli::render::print_export`).
///
/// Errors: those opening and reading the archive; [`Error::Usage`] when `--to` is inside the
/// archive; [`Error::OutputIo`] when a file cannot be written.
pub fn run(plan: &ExportPlan) -> Result<ExportReport> {
    let mut source = crate::archive::reader::open(&plan.archive.spec())?;
    let to = canonical_lenient(&plan.to);
    let archive_path = canonical_lenient(&plan.archive.path);
    if to.starts_with(&archive_path) {
        return Err(Error::Usage(format!(
            "--to {}: the export folder must be outside the archive",
            plan.to.display()
        )));
    }
    if let Some(file) = plan
        .to
        .ancestors()
        .filter(|a| !a.as_os_str().is_empty())
        .find(|a| a.exists())
        .filter(|a| !a.is_dir())
    {
        return Err(Error::Usage(format!(
            "--to {}: {} is a file, not a folder; choose another folder",
            plan.to.display(),
            file.display()
        )));
    }
    let mailboxes: Vec<_> = source
        .mailboxes()?
        .into_iter()
        .filter(|mb| plan.filter.mailboxes.wants(mb.as_str()))
        .collect();
    for mb in &mailboxes {
        let rel_dir = mailbox_dir(mb.as_str());
        if to.join(&rel_dir).starts_with(&archive_path) {
            // `export eml:X/INBOX --to X` would write into the folder being read.
            return Err(Error::Usage(format!(
                "--to {}: mailbox {mb} would be written to {}, inside the archive; export to a folder outside it",
                plan.to.display(),
                plan.to.join(&rel_dir).display()
            )));
        }
    }
    std::fs::create_dir_all(&plan.to).map_err(|e| Error::output_io(&plan.to, e))?;
    let mut report = ExportReport {
        command: "export",
        archive: source.describe(),
        to: plan.to.display().to_string(),
        line_ends: if plan.crlf { "crlf" } else { "lf" },
        ..Default::default()
    };
    for mb in mailboxes {
        let rel_dir = mailbox_dir(mb.as_str());
        let dir = plan.to.join(&rel_dir);
        let mut dir_ready = false;
        let counts = source.messages(&mb, &mut |m| {
            report.read += 1;
            let summary = Summary::of(&m.raw);
            if !plan.filter.wants(m.internal_date, &summary) {
                return Ok(());
            }
            report.matched += 1;
            if !dir_ready {
                refuse_links(&plan.to, &dir)?;
                std::fs::create_dir_all(&dir).map_err(|e| Error::output_io(&dir, e))?;
                dir_ready = true;
            }
            let name = file_name(m.internal_date, summary.subject.as_deref(), &m.sha256);
            let data = if plan.crlf {
                crate::core::message::lf_to_crlf(&m.raw)
            } else {
                m.raw
            };
            match land(&dir, &name, &data, m.internal_date)? {
                Landed::Written(n) => {
                    report.written += 1;
                    report.bytes += data.len() as u64;
                    report
                        .files
                        .push(rel_dir.join(n).to_string_lossy().into_owned());
                }
                Landed::Present => report.already_present += 1,
            }
            Ok(())
        })?;
        report.skipped.extend(counts.skipped);
    }
    report.warnings = source.warnings();
    // Messages over --max-message-size: not exported, each named (by the caller); exit 1.
    report.exit = if report.skipped.iter().any(|s| s.is_failure()) {
        Exit::Partial
    } else {
        Exit::Ok
    };
    report.exit_code = report.exit.code();
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn summary(from: &str, subject: &str) -> Summary {
        Summary::of(format!("From: {from}\nSubject: {subject}\n\n").as_bytes())
    }

    fn filter() -> ExportFilter {
        ExportFilter {
            mailboxes: FolderFilter::new(&[], &[]).unwrap(),
            since: None,
            before: None,
            from: None,
            subject: None,
        }
    }

    #[test]
    fn filters() {
        let s = summary(
            "=?UTF-8?Q?J=C3=BCrgen_M=C3=BCller?= <jm@EXAMPLE.org>",
            "Re: Quarterly REPORT",
        );
        let f = filter();
        assert!(f.wants(None, &s));
        let day = 1_700_000_000; // 2023-11-14 22:13:20 UTC
        let mut f = filter();
        f.since = Some(super::super::parse_day("--since", "2023-11-14").unwrap());
        f.before = Some(super::super::parse_day("--before", "2023-11-15").unwrap());
        assert!(f.wants(Some(day), &s));
        assert!(
            !f.wants(Some(f.before.unwrap()), &s),
            "--before is exclusive"
        );
        assert!(f.wants(Some(f.since.unwrap()), &s), "--since is inclusive");
        assert!(!f.wants(Some(f.since.unwrap() - 1), &s));
        assert!(
            !f.wants(None, &s),
            "undated messages have no date to compare"
        );
        let mut f = filter();
        f.from = Some("jürgen".into());
        assert!(f.wants(None, &s));
        f.from = Some("@example.ORG".into());
        assert!(f.wants(None, &s));
        f.from = Some("mueller".into());
        assert!(!f.wants(None, &s));
        let mut f = filter();
        f.subject = Some("quarterly report".into());
        assert!(f.wants(None, &s));
        f.subject = Some("annual".into());
        assert!(!f.wants(None, &s));
        assert!(!f.wants(None, &Summary::default()));
    }

    #[test]
    fn file_names() {
        let sha = "3fa9c2d1e0ffffffffff";
        assert_eq!(
            file_name(
                Some(1_680_307_200),
                Some("Re: Quarterly report (Q1) -- final!"),
                sha
            ),
            "2023-04-01_re-quarterly-report-q1-final_3fa9c2d1.eml"
        );
        assert_eq!(
            file_name(None, None, sha),
            "undated_no-subject_3fa9c2d1.eml"
        );
        assert_eq!(
            file_name(None, Some("!!!"), sha),
            "undated_no-subject_3fa9c2d1.eml"
        );
        assert_eq!(
            slug(Some(
                "【重要】会議室の予約変更のお知らせ（第２会議室・午後の部）"
            )),
            "重要-会議室の予約変更のお知らせ-第２会議室-午後の部"
        );
        assert_eq!(slug(Some("../../etc/passwd")), "etc-passwd");
        // Combining marks stay with their letter; invisible format characters do not.
        assert_eq!(slug(Some("İstanbul STRASSE")), "i\u{307}stanbul-strasse");
        assert_eq!(
            slug(Some("Cafe\u{301} cre\u{300}me")),
            "cafe\u{301}-cre\u{300}me"
        );
        assert_eq!(slug(Some("हिन्दी समाचार")), "हिन्दी-समाचार");
        assert_eq!(slug(Some("a\u{200B}b \u{301}x")), "a-b-x");
        let long = slug(Some(&"長".repeat(200)));
        assert_eq!(long.chars().count(), SLUG_CHARS);
        assert!(long.len() <= SLUG_BYTES);
        assert_eq!(
            slug(Some(&"a ".repeat(100))).chars().count(),
            SLUG_CHARS - 1
        );
        assert_eq!(numbered("x_1.eml", 2), "x_1_2.eml");
    }

    #[test]
    fn mailbox_dirs() {
        assert_eq!(mailbox_dir("INBOX"), PathBuf::from("INBOX"));
        assert_eq!(mailbox_dir("Archive/2023"), PathBuf::from("Archive/2023"));
        assert_eq!(mailbox_dir("../x"), PathBuf::from("%2E./x"));
        assert_eq!(
            mailbox_dir(".hidden/a\u{1}b/"),
            PathBuf::from("%2Ehidden/a%01b/%")
        );
        assert_eq!(mailbox_dir("日本語/100%"), PathBuf::from("日本語/100%25"));
        // Injective: a `/` inside a level, a literal `%2E`, a leading dot.
        assert_eq!(mailbox_dir("Work%2Fx"), PathBuf::from("Work%2Fx"));
        assert_eq!(mailbox_dir("Work/x"), PathBuf::from("Work/x"));
        assert_eq!(mailbox_dir("%2Ex"), PathBuf::from("%252Ex"));
        assert_eq!(mailbox_dir(".x"), PathBuf::from("%2Ex"));
        let long = mailbox_dir(&"y".repeat(300));
        let s = long.to_str().unwrap();
        assert!(s.len() <= 255 && s.contains("%~"), "{s}");
    }

    #[test]
    fn landing_never_overwrites() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        assert_eq!(
            land(d, "a.eml", b"one\n", Some(1_700_000_000)).unwrap(),
            Landed::Written("a.eml".into())
        );
        assert_eq!(land(d, "a.eml", b"one\n", None).unwrap(), Landed::Present);
        assert_eq!(
            land(d, "a.eml", b"two\n", None).unwrap(),
            Landed::Written("a_2.eml".into())
        );
        assert_eq!(land(d, "a.eml", b"two\n", None).unwrap(), Landed::Present);
        assert_eq!(std::fs::read(d.join("a.eml")).unwrap(), b"one\n");
        assert_eq!(std::fs::read(d.join("a_2.eml")).unwrap(), b"two\n");
        use std::os::unix::fs::MetadataExt;
        assert_eq!(
            std::fs::metadata(d.join("a.eml")).unwrap().mtime(),
            1_700_000_000
        );
        let names: Vec<_> = std::fs::read_dir(d)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        assert_eq!(names.len(), 2, "no temporary file left: {names:?}");
    }
}
