//! Verifying a `zip:` archive: [`crate::archive::zip::reader::check`] does the reading (CRC-32,
//! sizes, SHA-256 against `manifest.jsonl`); this turns its findings into verify's, and the
//! manifest's rows into ledger rows ([`zip_ledger_rows`]) so `--against` compares a zip like a
//! ledger.
//!
//! Uses [`crate::archive::zip::reader`] and [`crate::engine::convert::record_keys`].

use std::collections::{HashMap, HashSet};
use std::path::Path;

use super::{Kind, LedgerRow, Problem, VerifyReport};
use crate::core::error::{Error, Result};

/// The manifest rows of a zip as ledger rows (identity: the row's `source_id`; account: the
/// one that identity names, as `convert` records it), so findings name the message and
/// `--against` compares a zip like a ledger. Rows without a `source_id` are left out. Pure.
pub fn zip_ledger_rows(rows: &[crate::archive::manifest::ManifestRow]) -> Vec<LedgerRow> {
    rows.iter()
        .filter_map(|r| {
            let identity = r.source_id.clone()?;
            Some(LedgerRow {
                account: crate::engine::convert::record_keys(&identity).0,
                mailbox: r.mailbox().to_string(),
                identity,
                size: r.size,
                wire_size: None,
                sha256: r.sha256.clone(),
                location: r.entry.clone(),
            })
        })
        .collect()
}

/// Checks a zip archive with [`crate::archive::zip::reader::check`] (CRC-32 of every entry, sizes and
/// SHA-256 against `manifest.jsonl`, rows without entries, entries without rows, local
/// headers and the end record against the central directory). Findings are named
/// `ZIP:ENTRY`, with the row's identity when the entry has one. `records` is the number of
/// manifest rows with a source identity. Returns those rows as ledger rows.
pub(super) fn check_zip(path: &Path, report: &mut VerifyReport) -> Result<Vec<LedgerRow>> {
    use crate::archive::zip::reader::{check, ZipProblem, ZipSource};
    if !path.is_file() {
        return Err(Error::archive(
            path,
            if path.exists() {
                "is not a file (a zip: archive is one .zip file)"
            } else {
                "does not exist"
            },
        ));
    }
    // The manifest's rows (0 when it cannot be read; `check` says why).
    let rows = ZipSource::open(path)
        .map(|z| zip_ledger_rows(z.rows()))
        .unwrap_or_default();
    let by_entry: HashMap<&str, &LedgerRow> =
        rows.iter().map(|r| (r.location.as_str(), r)).collect();
    report.records = rows.len() as u64;
    let whole = Some(path.display().to_string());
    let mut bad_entries = HashSet::new();
    for p in check(path)? {
        let at = |entry: &str| Some(format!("{}:{entry}", path.display()));
        let row = p.entry().and_then(|e| by_entry.get(e).copied());
        if let Some(r) = row {
            bad_entries.insert(r.location.clone());
        }
        let (kind, place) = match &p {
            ZipProblem::MissingEntry { entry } => (Kind::Missing, at(entry)),
            ZipProblem::NoManifestRow { entry } => (Kind::Untracked, at(entry)),
            ZipProblem::Crc { entry }
            | ZipProblem::Unreadable { entry, .. }
            | ZipProblem::Size { entry, .. }
            | ZipProblem::Sha256 { entry, .. }
            | ZipProblem::LocalHeader { entry, .. }
            | ZipProblem::DuplicateRow { entry } => (Kind::Zip, at(entry)),
            ZipProblem::NotAZip { .. }
            | ZipProblem::EndRecord { .. }
            | ZipProblem::NoManifest
            | ZipProblem::BadManifestLine { .. } => (Kind::Zip, whole.clone()),
        };
        let problem = Problem::new(kind, place, p.to_string());
        report.push(match row {
            Some(r) => problem.about(r),
            None => problem,
        });
    }
    report.intact = report.records.saturating_sub(bad_entries.len() as u64);
    Ok(rows)
}
