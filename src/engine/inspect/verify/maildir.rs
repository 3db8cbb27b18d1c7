//! Verifying a Maildir archive: every recorded message looked for by its base name in `cur/`
//! or `new/` of its folder and hashed ([`check_maildir`]); the decision is the pure
//! [`classify_maildir`]. Files left in `tmp/` are reported ([`leftovers`], also used for
//! mbox's spool), never deleted.
//!
//! Reads the archive's folders with [`crate::archive::reader`] helpers and hashes with
//! [`crate::archive::maildir::writer::hash_file`]; reports through [`super::VerifyReport`].

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};

use super::{Kind, LedgerRow, Problem, VerifyReport};
use crate::archive::maildir::reader::split_info;
use crate::core::error::{Error, Result};

/// What was found on disk for one recorded Maildir location.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Found {
    /// No file with the recorded base name in the folder's `cur/` or `new/`.
    Missing,
    /// Files with that base name: path and SHA-256 of the bytes, or the read error.
    Files(Vec<(String, std::result::Result<String, String>)>),
}

/// Classifies the Maildir records: each is intact, missing, damaged or unreadable, by what was
/// `found` at its location (`path_of` gives the path to name for a missing one). Returns the
/// number of intact records and the problems. Pure.
pub fn classify_maildir(
    rows: &[&LedgerRow],
    found: &HashMap<String, Found>,
    path_of: &dyn Fn(&str) -> String,
) -> (u64, Vec<Problem>) {
    let mut intact = 0;
    let mut problems = Vec::new();
    for row in rows {
        let p = match found.get(&row.location) {
            None | Some(Found::Missing) => Problem::new(
                Kind::Missing,
                Some(path_of(&row.location)),
                "the message file is gone (no file of that name in cur/ or new/)",
            ),
            Some(Found::Files(files)) => {
                if files
                    .iter()
                    .any(|(_, sha)| sha.as_deref() == Ok(row.sha256.as_str()))
                {
                    intact += 1;
                    continue;
                }
                match files.iter().find(|(_, sha)| sha.is_ok()) {
                    Some((path, Ok(sha))) => Problem::new(
                        Kind::Sha256Mismatch,
                        Some(path.clone()),
                        format!(
                            "the bytes changed: SHA-256 {sha}, the ledger recorded {} ({} bytes)",
                            row.sha256, row.size
                        ),
                    ),
                    _ => {
                        let (path, error) = match files.first() {
                            Some((p, Err(e))) => (Some(p.clone()), e.clone()),
                            _ => (None, String::new()),
                        };
                        Problem::new(Kind::Unreadable, path, format!("cannot be read: {error}"))
                    }
                }
            }
        };
        problems.push(p.about(row));
    }
    (intact, problems)
}

/// The folder part (`""`, `.Sent`) and base name of a Maildir location `<folder>/cur/<base>`.
fn maildir_location(location: &str) -> Option<(&str, &str)> {
    let (dir, name) = location.rsplit_once('/')?;
    let folder = match dir.rsplit_once('/') {
        Some((f, sub)) if sub == "cur" || sub == "new" => f,
        None if dir == "cur" || dir == "new" => "",
        _ => return None,
    };
    Some((folder, split_info(name).0))
}

/// The regular, non-hidden files of a directory (sorted); none when it does not exist.
fn files_in(dir: &Path) -> Result<Vec<(String, PathBuf)>> {
    let rd = match std::fs::read_dir(dir) {
        Ok(rd) => rd,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(Error::archive_io(dir, e)),
    };
    let mut out = Vec::new();
    for e in rd {
        let e = e.map_err(|e| Error::archive_io(dir, e))?;
        let name = e.file_name().to_string_lossy().into_owned();
        if name.starts_with('.') || !e.file_type().is_ok_and(|t| t.is_file()) {
            continue;
        }
        out.push((name, e.path()));
    }
    out.sort();
    Ok(out)
}

/// Reports files in `dir` (a `tmp/` or the spool) as leftovers.
pub(super) fn leftovers(dir: &Path, report: &mut VerifyReport) -> Result<()> {
    for (_, path) in files_in(dir)? {
        let size = std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
        report.push(Problem::new(
            Kind::TmpLeftover,
            Some(path.display().to_string()),
            format!(
                "{size} bytes left by an interrupted write (not deleted; the next backup removes the ones mailkeep staged)"
            ),
        ));
    }
    Ok(())
}

/// Checks a Maildir archive at `root` against the ledger's `rows`, filling `report`.
pub(super) fn check_maildir(
    root: &Path,
    rows: &[LedgerRow],
    report: &mut VerifyReport,
) -> Result<()> {
    // The Maildir++ folders: the root (INBOX) and every `.folder` holding cur/ or new/, plus
    // any folder the ledger names.
    let mut folders: Vec<String> = vec![String::new()];
    for (name, path, ft) in crate::archive::reader::sorted_entries(root, &mut Vec::new())? {
        if ft.is_dir()
            && name.starts_with('.')
            && name.len() > 1
            && name != ".."
            && (crate::archive::reader::is_real_dir(&path.join("cur"))
                || crate::archive::reader::is_real_dir(&path.join("new")))
        {
            folders.push(name);
        }
    }
    for row in rows {
        if let Some((folder, _)) = maildir_location(&row.location) {
            if !folders.iter().any(|f| f == folder) {
                folders.push(folder.to_string());
            }
        }
    }
    // (folder, base) -> files in cur/ and new/.
    let mut index: HashMap<(String, String), Vec<PathBuf>> = HashMap::new();
    for folder in &folders {
        let dir = root.join(folder);
        // Nothing outside the archive is read: a folder, `cur/` or `new/` that is a link is
        // named and not followed (its recorded messages then count as missing).
        let linked =
            |p: &Path| std::fs::symlink_metadata(p).is_ok_and(|m| m.file_type().is_symlink());
        if !folder.is_empty() && linked(&dir) {
            report.push(Problem::new(
                Kind::Untracked,
                Some(dir.display().to_string()),
                "a symbolic link, not followed (mailkeep reads nothing outside the archive)",
            ));
            continue;
        }
        for sub in ["cur", "new"] {
            if linked(&dir.join(sub)) {
                report.push(Problem::new(
                    Kind::Untracked,
                    Some(dir.join(sub).display().to_string()),
                    "a symbolic link, not followed (mailkeep reads nothing outside the archive)",
                ));
                continue;
            }
            for (name, path) in files_in(&dir.join(sub))? {
                let base = split_info(&name).0.to_string();
                index.entry((folder.clone(), base)).or_default().push(path);
            }
        }
        leftovers(&dir.join("tmp"), report)?;
    }
    let mut found: HashMap<String, Found> = HashMap::new();
    let mut claimed: HashSet<(String, String)> = HashSet::new();
    let mut bad_locations = Vec::new();
    for row in rows {
        if found.contains_key(&row.location) {
            continue;
        }
        let Some((folder, base)) = maildir_location(&row.location) else {
            bad_locations.push(row);
            continue;
        };
        let key = (folder.to_string(), base.to_string());
        let state = match index.get(&key) {
            None => Found::Missing,
            Some(paths) => Found::Files(
                paths
                    .iter()
                    .map(|p| {
                        let sha = crate::archive::maildir::writer::hash_file(p)
                            .map(|(sha, _)| sha)
                            .map_err(|e| e.to_string());
                        (p.display().to_string(), sha)
                    })
                    .collect(),
            ),
        };
        claimed.insert(key);
        found.insert(row.location.clone(), state);
    }
    let good: Vec<&LedgerRow> = rows
        .iter()
        .filter(|r| maildir_location(&r.location).is_some())
        .collect();
    let (intact, problems) =
        classify_maildir(&good, &found, &|loc| root.join(loc).display().to_string());
    report.intact += intact;
    for p in problems {
        report.push(p);
    }
    for row in bad_locations {
        report.push(
            Problem::new(
                Kind::Unreadable,
                None,
                format!(
                    "the ledger's location `{}` is not <folder>/cur/<file>",
                    row.location
                ),
            )
            .about(row),
        );
    }
    let mut untracked: Vec<&PathBuf> = index
        .iter()
        .filter(|(k, _)| !claimed.contains(*k))
        .flat_map(|(_, v)| v)
        .collect();
    untracked.sort();
    for path in untracked {
        report.push(Problem::new(
            Kind::Untracked,
            Some(path.display().to_string()),
            "a message file the ledger does not know (put there by another program?)",
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::super::exit_for;
    use super::super::tests::{kinds, row};
    use super::*;
    use crate::core::error::Exit;

    #[test]
    fn maildir_records_are_intact_missing_or_damaged() {
        let rows = [
            row("1", "cur/1.M1P0.mailkeep,S=10", "aa"),
            row("2", "cur/2.M2P0.mailkeep,S=10", "bb"),
            row("3", ".Sent/cur/3.M3P0.mailkeep,S=10", "cc"),
            row("4", "cur/4.M4P0.mailkeep,S=10", "dd"),
            row("5", "cur/5.M5P0.mailkeep,S=10", "ee"),
        ];
        let refs: Vec<&LedgerRow> = rows.iter().collect();
        let found = HashMap::from([
            (
                rows[0].location.clone(),
                Found::Files(vec![(
                    "/a/cur/1.M1P0.mailkeep,S=10:2,S".into(),
                    Ok("aa".into()),
                )]),
            ),
            (rows[1].location.clone(), Found::Missing),
            (
                rows[2].location.clone(),
                Found::Files(vec![("/a/.Sent/cur/3:2,".into(), Ok("xx".into()))]),
            ),
            (
                rows[3].location.clone(),
                Found::Files(vec![("/a/cur/4".into(), Err("permission denied".into()))]),
            ),
            // Two files with the base name (one in new/, one in cur/): one intact is enough.
            (
                rows[4].location.clone(),
                Found::Files(vec![
                    ("/a/new/5".into(), Ok("zz".into())),
                    ("/a/cur/5:2,S".into(), Ok("ee".into())),
                ]),
            ),
        ]);
        let (intact, problems) = classify_maildir(&refs, &found, &|l| format!("/a/{l}"));
        assert_eq!(intact, 2);
        assert_eq!(
            kinds(&problems),
            vec![
                (
                    Kind::Missing,
                    Some("/a/cur/2.M2P0.mailkeep,S=10"),
                    Some("pop3:a@h UIDL 2")
                ),
                (
                    Kind::Sha256Mismatch,
                    Some("/a/.Sent/cur/3:2,"),
                    Some("pop3:a@h UIDL 3")
                ),
                (Kind::Unreadable, Some("/a/cur/4"), Some("pop3:a@h UIDL 4")),
            ]
        );
        assert!(problems[1]
            .detail
            .contains("SHA-256 xx, the ledger recorded cc"));
        assert_eq!(exit_for(&problems), Exit::Damaged);
        assert_eq!(
            problems[0].line(),
            "incomplete: /a/cur/2.M2P0.mailkeep,S=10 (pop3:a@h UIDL 2): the message file is gone (no file of that name in cur/ or new/)"
        );
    }

    #[test]
    fn maildir_locations() {
        assert_eq!(
            maildir_location(".Sent/cur/1.M0P0.mailkeep,S=5"),
            Some((".Sent", "1.M0P0.mailkeep,S=5"))
        );
        assert_eq!(maildir_location("cur/1.x:2,S"), Some(("", "1.x")));
        assert_eq!(maildir_location("a/new/1"), Some(("a", "1")));
        assert_eq!(maildir_location("a/tmp/1"), None);
        assert_eq!(maildir_location("x"), None);
    }
}
