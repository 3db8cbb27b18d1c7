//! The sync engine: "copy what is missing from a source to a sink, remember what was copied"
//! (DESIGN.md). Each protocol has its own module; decisions are pure functions in [`plan`],
//! table-tested; I/O happens at the edges.
//!
//! Order is important (DESIGN.md invariant 1): a batch of messages is staged, placed and made
//! durable by the sink, then recorded in one ledger commit; deletions on a server happen only
//! for recorded messages and only when nothing in the run failed.
//!
//! Also here: what the flows consume and produce (plans, [`report`] and [`progress`]), the
//! server read as a message source ([`server_source`]), the `list`/`quota` queries of a
//! server ([`query`]) and the read-only looks at an archive ([`inspect`]).
//!
//! May use: [`crate::core`], [`crate::protocol`], [`crate::archive`]; never the command line
//! (`tests/layers.rs` checks it).

pub mod convert;
pub mod imap;
pub mod inspect;
pub mod migrate;
pub mod plan;
pub mod plans;
pub mod pop3;
pub mod progress;
pub mod prune;
pub mod query;
pub mod report;
pub mod restore;
pub mod restore_plan;
pub mod server_source;

use std::time::Instant;

use crate::core::endpoint::Protocol;
use crate::core::error::Exit;
use crate::engine::plans::BackupPlan;
use crate::engine::progress::Progress;
use crate::engine::report::RunReport;

pub use crate::core::time::now_secs;

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

/// Backs a server up into a zip file (`backup SOURCE zip:PATH.zip`): the conversion of the
/// server, read as a source ([`crate::engine::server_source`]), into the zip
/// ([`convert::convert_with`]). The zip is a snapshot: written as `PATH.zip.partial` and
/// renamed over `PATH.zip` when complete; the messages of an existing `PATH.zip` are copied
/// over and, known by their source identities in its manifest, not fetched again. Always
/// returns a report (`command` is `backup`); its `exit` says how it ended.
pub fn backup_to_zip(plan: &crate::engine::plans::ZipBackupPlan) -> convert::ConvertReport {
    let fail = |e: crate::core::error::Error| convert::ConvertReport {
        command: "backup".into(),
        source: plan.source.spec.account(),
        target: format!("zip:{}", plan.zip.display()),
        error: Some(e.to_string()),
        exit: e.exit(),
        exit_code: e.exit().code(),
        ..convert::ConvertReport::default()
    };
    let secret = match imap::read_secret(&plan.source) {
        Ok(s) => s,
        Err(e) => return fail(e),
    };
    let open = || crate::engine::server_source::open(&plan.source, &secret, &plan.filter, false);
    let mut report = convert::convert_with(
        &open,
        &convert::ConvertTarget::Zip(plan.zip.clone()),
        plan.store,
    );
    report.command = "backup".into();
    report
}

/// The warning of a backup through another port than the account's first backup into this
/// archive (see [`crate::archive::note_source_port`]).
pub(crate) fn another_port_warning(account: &str) -> String {
    format!(
        "{account}: this account was first backed up into this archive through another port: if this is another server, messages recorded from the first one are taken as archived; prune and --delete-after-backup compare every message's bytes with this server before deleting it"
    )
}
