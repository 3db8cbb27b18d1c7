//! The sync engine: "copy what is missing from a source to a sink, remember what was copied"
//! (DESIGN.md). Each protocol has its own module; decisions are pure functions in [`plan`],
//! table-tested; I/O happens at the edges.
//!
//! Order is important (DESIGN.md invariant 1): a batch of messages is staged, placed and made
//! durable by the sink, then recorded in one ledger commit; deletions on a server happen only
//! for recorded messages and only when nothing in the run failed.

pub mod imap;
pub mod plan;
pub mod pop3;
pub mod restore;
pub mod restore_plan;

use std::time::Instant;

use crate::config::BackupPlan;
use crate::endpoint::Protocol;
use crate::error::Exit;
use crate::progress::Progress;
use crate::report::RunReport;

/// Now, in seconds since the UNIX epoch.
pub fn now_secs() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

/// Runs a backup as planned. Always returns a report; the report's `exit` says how it ended
/// (a fatal error is in `report.error`).
pub fn backup(plan: &BackupPlan, progress: &mut Progress) -> RunReport {
    let started = Instant::now();
    let mut report = RunReport {
        command: "backup".into(),
        source: plan.source.spec.account(),
        archive: plan.archive.display(),
        ..RunReport::default()
    };
    let result = match plan.source.spec.protocol {
        Protocol::Pop3 => pop3::backup(plan, progress, &mut report),
        Protocol::Imap => imap::backup(plan, progress, &mut report),
    };
    progress.finish();
    report.duration_secs = started.elapsed().as_secs_f64();
    report.exit = match &result {
        Err(e) => {
            report.error = Some(e.to_string());
            e.exit()
        }
        Ok(()) if !report.failures.is_empty() => Exit::Partial,
        Ok(()) => Exit::Ok,
    };
    report.exit_code = report.exit.code();
    report
}
