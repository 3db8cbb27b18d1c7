//! Verifying an mbox archive: every `*.mbox` file read to its end with mailkeep's reader
//! ([`scan_mbox`], [`recover_entries`] past a damaged separator) and its entries matched with
//! the ledger's records by offset and SHA-256; the decision is the pure [`classify_mbox`].
//!
//! Reads with [`crate::archive::mbox::format::MboxReader`]; reports through
//! [`super::VerifyReport`]; the spool's leftovers through [`super::maildir::leftovers`].

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fs::File;
use std::io::BufReader;
use std::path::Path;

use super::maildir::leftovers;
use super::{Kind, LedgerRow, MboxFileRow, Problem, VerifyReport};
use crate::archive::mbox::format::MboxReader;
use crate::archive::STATE_DIR;
use crate::core::error::{Error, Result};
use crate::engine::inspect::relative_to;

/// One entry read from an mbox file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MboxEntry {
    /// Offset of the separator line.
    pub offset: u64,
    /// SHA-256 of the message bytes (mboxrd unquoted).
    pub sha256: String,
}

/// An mbox file read to its end (or to the error that stopped the reader).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MboxScan {
    pub entries: Vec<MboxEntry>,
    /// The file's length in bytes.
    pub len: u64,
    /// Why the reader stopped early, if it did.
    pub error: Option<String>,
}

/// `<file>:<offset>:<length>`.
fn mbox_location(location: &str) -> Option<(&str, u64, u64)> {
    let (rest, len) = location.rsplit_once(':')?;
    let (file, off) = rest.rsplit_once(':')?;
    Some((file, off.parse().ok()?, len.parse().ok()?))
}

/// Classifies the records of one mbox file (`shown` is its path as reported) against what
/// reading it gave (`None`: the file is gone) and the ledger's lengths for it. Returns the
/// number of intact records and the findings (problems and notes). Pure.
pub fn classify_mbox(
    shown: &str,
    rows: &[&LedgerRow],
    scan: Option<&MboxScan>,
    lengths: Option<&MboxFileRow>,
) -> (u64, Vec<Problem>) {
    let mut out = Vec::new();
    let Some(scan) = scan else {
        for row in rows {
            out.push(
                Problem::new(
                    Kind::Missing,
                    Some(shown.to_string()),
                    "the mbox file is gone",
                )
                .about(row),
            );
        }
        return (0, out);
    };
    if let Some(l) = lengths {
        if scan.len < l.committed {
            out.push(Problem::new(
                Kind::Truncated,
                Some(shown.to_string()),
                format!(
                    "the file is {} bytes, the ledger recorded {} (cut short by another program?)",
                    scan.len, l.committed
                ),
            ));
        }
        if let Some(p) = l.pending {
            out.push(Problem::new(
                Kind::InterruptedAppend,
                Some(shown.to_string()),
                format!("a run died while appending after byte {p}; the next backup repairs it"),
            ));
        }
    }
    if let Some(e) = &scan.error {
        out.push(Problem::new(
            Kind::Unreadable,
            Some(shown.to_string()),
            format!("does not parse as an mbox: {e}"),
        ));
    }
    // Records grouped by location (a `--dedup` copy is one entry for several identities).
    let mut groups: BTreeMap<(u64, u64), Vec<&LedgerRow>> = BTreeMap::new();
    for row in rows {
        match mbox_location(&row.location) {
            Some((_, off, len)) => groups.entry((off, len)).or_default().push(row),
            None => out.push(
                Problem::new(
                    Kind::Unreadable,
                    Some(shown.to_string()),
                    format!(
                        "the ledger's location `{}` is not <file>:<offset>:<length>",
                        row.location
                    ),
                )
                .about(row),
            ),
        }
    }
    let at: HashMap<u64, usize> = scan
        .entries
        .iter()
        .enumerate()
        .map(|(i, e)| (e.offset, i))
        .collect();
    let mut claimed = vec![false; scan.entries.len()];
    let mut intact = 0u64;
    let mut left = Vec::new();
    // 1. At the recorded offset with the recorded bytes.
    for ((off, len), group) in &groups {
        match at.get(off) {
            Some(&i) if scan.entries[i].sha256 == group[0].sha256 && !claimed[i] => {
                claimed[i] = true;
                intact += group.len() as u64;
            }
            _ => left.push(((*off, *len), group)),
        }
    }
    // 2. The same bytes at another offset (the file was rewritten by a mail reader).
    let mut left2 = Vec::new();
    for ((off, len), group) in left {
        let moved = scan
            .entries
            .iter()
            .enumerate()
            .find(|(i, e)| !claimed[*i] && e.sha256 == group[0].sha256);
        match moved {
            Some((i, e)) => {
                claimed[i] = true;
                intact += group.len() as u64;
                for row in group {
                    out.push(
                        Problem::new(
                            Kind::Moved,
                            Some(format!("{shown}:{}", e.offset)),
                            format!("intact, at byte {} instead of the recorded {off}", e.offset),
                        )
                        .about(row),
                    );
                }
            }
            None => left2.push(((off, len), group)),
        }
    }
    // 3. What is left is damaged or missing.
    for ((off, len), group) in left2 {
        let here = Some(format!("{shown}:{off}"));
        let p = match at.get(&off).copied().filter(|&i| !claimed[i]) {
            Some(i) => {
                claimed[i] = true;
                if off + len > scan.len {
                    Problem::new(
                        Kind::Truncated,
                        here,
                        format!(
                            "the file ends inside this message (at byte {}; the entry should end at {})",
                            scan.len,
                            off + len
                        ),
                    )
                } else {
                    Problem::new(
                        Kind::Sha256Mismatch,
                        here,
                        format!(
                            "the bytes changed: SHA-256 {}, the ledger recorded {} ({} bytes)",
                            scan.entries[i].sha256, group[0].sha256, group[0].size
                        ),
                    )
                }
            }
            None if scan.error.is_some() => Problem::new(
                Kind::Unreadable,
                here,
                "not readable: the file does not parse",
            ),
            None if off >= scan.len => Problem::new(
                Kind::Missing,
                here,
                format!("the file ends at byte {}, before this message", scan.len),
            ),
            None => Problem::new(
                Kind::Missing,
                here,
                "no message starts at the recorded offset any more, and its bytes are nowhere in the file",
            ),
        };
        for row in group {
            out.push(p.clone().about(row));
        }
    }
    // Entries nobody recorded: an interrupted append's (reported above) or someone else's.
    let tail_from = lengths.and_then(|l| l.pending.map(|p| p.min(l.committed)));
    for (i, e) in scan.entries.iter().enumerate() {
        if claimed[i] || tail_from.is_some_and(|t| e.offset >= t) {
            continue;
        }
        out.push(Problem::new(
            Kind::Untracked,
            Some(format!("{shown}:{}", e.offset)),
            "an entry the ledger does not know (appended by another program?)",
        ));
    }
    (intact, out)
}

/// Reads an mbox file to its end, hashing each message; `None` when it does not exist.
fn scan_mbox(path: &Path) -> Result<Option<MboxScan>> {
    let file = match crate::archive::reader::open_nofollow(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => {
            return Ok(Some(MboxScan {
                error: Some(e.to_string()),
                ..Default::default()
            }))
        }
    };
    let len = file
        .metadata()
        .map_err(|e| Error::archive_io(path, e))?
        .len();
    let mut scan = MboxScan {
        len,
        ..Default::default()
    };
    // Hashed while read: a message over --max-message-size is checked too, in bounded memory.
    let reader = MboxReader::new(BufReader::with_capacity(64 * 1024, file))
        .with_path(path)
        .hashing();
    for m in reader {
        match m {
            Ok(m) => scan.entries.push(MboxEntry {
                offset: m.offset,
                sha256: m
                    .sha256
                    .unwrap_or_else(|| crate::archive::reader::sha256_hex(&m.raw)),
            }),
            Err(e) => {
                // The reader names the file; keep only the reason.
                let text = e.to_string();
                let prefix = format!("archive {}: ", path.display());
                scan.error = Some(text.strip_prefix(&prefix).unwrap_or(&text).to_string());
                break;
            }
        }
    }
    Ok(Some(scan))
}

/// When an mbox file does not parse (a damaged separator line stops the reader), the recorded
/// entries the reader did not reach are read one by one at their recorded place, so that
/// those still intact count as intact and only the damaged ones are named. Each is added to
/// `scan.entries` (its offset and SHA-256) when its bytes read as one mbox entry.
fn recover_entries(path: &Path, rows: &[&LedgerRow], scan: &mut MboxScan) {
    use std::os::unix::fs::FileExt;
    let Ok(file) = File::open(path) else {
        return;
    };
    let known: HashSet<u64> = scan.entries.iter().map(|e| e.offset).collect();
    for row in rows {
        let Some((_, off, len)) = mbox_location(&row.location) else {
            continue;
        };
        if known.contains(&off) || off.saturating_add(len) > scan.len || len > 1 << 31 {
            continue;
        }
        let mut bytes = vec![0u8; len as usize];
        if file.read_exact_at(&mut bytes, off).is_err() {
            continue;
        }
        let mut reader = MboxReader::new(std::io::Cursor::new(bytes));
        if let (Some(Ok(m)), None) = (reader.next(), reader.next()) {
            scan.entries.push(MboxEntry {
                offset: off,
                sha256: crate::archive::reader::sha256_hex(&m.raw),
            });
        }
    }
    scan.entries.sort_by_key(|e| e.offset);
}

/// Every `*.mbox` file under `root` (relative, `/`-separated), the state folder excepted.
fn mbox_files_on_disk(root: &Path) -> Result<Vec<String>> {
    fn walk(root: &Path, dir: &Path, out: &mut Vec<String>) -> Result<()> {
        for (name, path, ft) in crate::archive::reader::sorted_entries(dir, &mut Vec::new())? {
            if name.starts_with('.') || (dir == root && name == STATE_DIR) {
                continue;
            }
            if ft.is_dir() {
                walk(root, &path, out)?;
            } else if ft.is_file() && name.ends_with(".mbox") {
                out.push(relative_to(&path, root).to_string_lossy().into_owned());
            }
        }
        Ok(())
    }
    let mut out = Vec::new();
    walk(root, root, &mut out)?;
    Ok(out)
}

/// Checks an mbox archive at `root` against the ledger's `rows` and mbox `lengths`, filling
/// `report`.
pub(super) fn check_mbox(
    root: &Path,
    rows: &[LedgerRow],
    lengths: &[MboxFileRow],
    report: &mut VerifyReport,
) -> Result<()> {
    let mut by_file: BTreeMap<String, Vec<&LedgerRow>> = BTreeMap::new();
    for row in rows {
        match mbox_location(&row.location) {
            Some((file, _, _)) => by_file.entry(file.to_string()).or_default().push(row),
            None => report.push(
                Problem::new(
                    Kind::Unreadable,
                    None,
                    format!(
                        "the ledger's location `{}` is not <file>:<offset>:<length>",
                        row.location
                    ),
                )
                .about(row),
            ),
        }
    }
    for l in lengths {
        by_file.entry(l.file.clone()).or_default();
    }
    for f in mbox_files_on_disk(root)? {
        by_file.entry(f).or_default();
    }
    for (file, group) in &by_file {
        let path = root.join(file);
        let shown = path.display().to_string();
        let mut scan = scan_mbox(&path)?;
        if let Some(scan) = scan.as_mut().filter(|s| s.error.is_some()) {
            recover_entries(&path, group, scan);
        }
        let (intact, problems) = classify_mbox(
            &shown,
            group,
            scan.as_ref(),
            lengths.iter().find(|l| l.file == *file),
        );
        report.intact += intact;
        for p in problems {
            report.push(p);
        }
    }
    leftovers(&root.join(STATE_DIR).join("spool"), report)
}

#[cfg(test)]
mod tests {
    use super::super::exit_for;
    use super::super::tests::{kinds, row};
    use super::*;
    use crate::core::error::Exit;

    fn entry(offset: u64, sha: &str) -> MboxEntry {
        MboxEntry {
            offset,
            sha256: sha.into(),
        }
    }

    fn lengths(committed: u64, pending: Option<u64>) -> MboxFileRow {
        MboxFileRow {
            file: "INBOX.mbox".into(),
            committed,
            pending,
        }
    }

    #[test]
    fn mbox_all_intact() {
        let rows = [
            row("1", "INBOX.mbox:0:100", "aa"),
            row("2", "INBOX.mbox:100:50", "bb"),
        ];
        let refs: Vec<&LedgerRow> = rows.iter().collect();
        let scan = MboxScan {
            entries: vec![entry(0, "aa"), entry(100, "bb")],
            len: 150,
            error: None,
        };
        let (intact, out) = classify_mbox(
            "/m/INBOX.mbox",
            &refs,
            Some(&scan),
            Some(&lengths(150, None)),
        );
        assert_eq!((intact, out), (2, vec![]));
    }

    #[test]
    fn mbox_truncated_in_the_middle_of_a_message() {
        // Three entries; the file was cut inside the second.
        let rows = [
            row("1", "INBOX.mbox:0:100", "aa"),
            row("2", "INBOX.mbox:100:50", "bb"),
            row("3", "INBOX.mbox:150:50", "cc"),
        ];
        let refs: Vec<&LedgerRow> = rows.iter().collect();
        let scan = MboxScan {
            entries: vec![entry(0, "aa"), entry(100, "b-cut")],
            len: 120,
            error: None,
        };
        let (intact, out) = classify_mbox(
            "/m/INBOX.mbox",
            &refs,
            Some(&scan),
            Some(&lengths(200, None)),
        );
        assert_eq!(intact, 1);
        assert_eq!(
            kinds(&out),
            vec![
                (Kind::Truncated, Some("/m/INBOX.mbox"), None),
                (
                    Kind::Truncated,
                    Some("/m/INBOX.mbox:100"),
                    Some("pop3:a@h UIDL 2")
                ),
                (
                    Kind::Missing,
                    Some("/m/INBOX.mbox:150"),
                    Some("pop3:a@h UIDL 3")
                ),
            ]
        );
        assert!(out[0].detail.contains("120 bytes, the ledger recorded 200"));
        assert_eq!(exit_for(&out), Exit::Damaged);
    }

    #[test]
    fn mbox_changed_bytes_moved_entries_and_strangers() {
        let rows = [
            row("1", "INBOX.mbox:0:100", "aa"),
            row("2", "INBOX.mbox:100:50", "bb"),
            row("3", "INBOX.mbox:150:50", "cc"),
            row("4", "INBOX.mbox:200:50", "dd"),
        ];
        let refs: Vec<&LedgerRow> = rows.iter().collect();
        // Entry 1 had a byte flipped; entry 2 was deleted by a mail reader, so 3 moved up to
        // 100 and 4 to 150; someone appended an entry at 200.
        let scan = MboxScan {
            entries: vec![
                entry(0, "a!"),
                entry(100, "cc"),
                entry(150, "dd"),
                entry(200, "ff"),
            ],
            len: 250,
            error: None,
        };
        let (intact, out) = classify_mbox(
            "/m/INBOX.mbox",
            &refs,
            Some(&scan),
            Some(&lengths(250, None)),
        );
        assert_eq!(intact, 2);
        assert_eq!(
            kinds(&out),
            vec![
                (
                    Kind::Moved,
                    Some("/m/INBOX.mbox:100"),
                    Some("pop3:a@h UIDL 3")
                ),
                (
                    Kind::Moved,
                    Some("/m/INBOX.mbox:150"),
                    Some("pop3:a@h UIDL 4")
                ),
                (
                    Kind::Sha256Mismatch,
                    Some("/m/INBOX.mbox:0"),
                    Some("pop3:a@h UIDL 1")
                ),
                (
                    Kind::Missing,
                    Some("/m/INBOX.mbox:100"),
                    Some("pop3:a@h UIDL 2")
                ),
                (Kind::Untracked, Some("/m/INBOX.mbox:200"), None),
            ]
        );
    }

    #[test]
    fn mbox_gone_unparsable_or_interrupted() {
        let rows = [row("1", "INBOX.mbox:0:100", "aa")];
        let refs: Vec<&LedgerRow> = rows.iter().collect();
        let (intact, out) = classify_mbox("/m/INBOX.mbox", &refs, None, Some(&lengths(100, None)));
        assert_eq!(intact, 0);
        assert_eq!(
            kinds(&out),
            vec![(
                Kind::Missing,
                Some("/m/INBOX.mbox"),
                Some("pop3:a@h UIDL 1")
            )]
        );

        let scan = MboxScan {
            entries: vec![],
            len: 100,
            error: Some("not an mbox: first line is not a From line".into()),
        };
        let (_, out) = classify_mbox(
            "/m/INBOX.mbox",
            &refs,
            Some(&scan),
            Some(&lengths(100, None)),
        );
        assert_eq!(
            kinds(&out),
            vec![
                (Kind::Unreadable, Some("/m/INBOX.mbox"), None),
                (
                    Kind::Unreadable,
                    Some("/m/INBOX.mbox:0"),
                    Some("pop3:a@h UIDL 1")
                ),
            ]
        );

        // A run died after appending an entry at 100 it never recorded.
        let scan = MboxScan {
            entries: vec![entry(0, "aa"), entry(100, "new")],
            len: 160,
            error: None,
        };
        let (intact, out) = classify_mbox(
            "/m/INBOX.mbox",
            &refs,
            Some(&scan),
            Some(&lengths(100, Some(100))),
        );
        assert_eq!(intact, 1);
        assert_eq!(
            kinds(&out),
            vec![(Kind::InterruptedAppend, Some("/m/INBOX.mbox"), None)]
        );
        assert_eq!(exit_for(&out), Exit::Incomplete);
    }

    #[test]
    fn mbox_dedup_shares_one_entry() {
        let mut a = row("1", "INBOX.mbox:0:100", "aa");
        a.mailbox = "INBOX".into();
        let mut b = row("2", "INBOX.mbox:0:100", "aa");
        b.mailbox = "All".into();
        let scan = MboxScan {
            entries: vec![entry(0, "aa")],
            len: 100,
            error: None,
        };
        let (intact, out) = classify_mbox("/m/INBOX.mbox", &[&a, &b], Some(&scan), None);
        assert_eq!((intact, out.len()), (2, 0));
    }
}
