//! Rendering of reports for people and scripts: warnings, failures and errors on stderr, one
//! line each; the summary (or one JSON object with `--json`, nothing with `--quiet`) on stdout.
//!
//! Here: the reports of `backup`, `migrate`, `convert`, `restore` and `prune`; of the
//! read-only `list ARCHIVE` (streamed with `--messages`: [`ListPrinter`]), `verify` and
//! `export`; and of the server queries `list SOURCE` and `quota`. The engine prints nothing.

use std::io::Write;

use crate::core::error::{self, Exit};
use crate::engine::convert::ConvertReport;
use crate::engine::inspect::export::ExportReport;
use crate::engine::inspect::list::{self, ArchiveListing, OpenedArchive, PerMessage};
use crate::engine::inspect::verify::VerifyReport;
use crate::engine::inspect::{pad_to_width, width};
use crate::engine::migrate::MigrateReport;
use crate::engine::plans::Output;
use crate::engine::prune::PruneReport;
use crate::engine::query::{QuotaReport, ServerListing};
use crate::engine::report::{RestoreReport, RunReport};

/// Prints a backup's report: warnings, failures and the error on stderr, then the summary
/// line (or the JSON object with `--json`) on stdout.
pub fn print_run(report: &RunReport, out: Output) {
    let mut stderr = std::io::stderr();
    eprint_warnings(&report.warnings, out);
    for line in crate::engine::report::grouped_failure_lines(&report.failures) {
        let _ = writeln!(stderr, "mailkeep: {line}");
    }
    if let Some(e) = &report.error {
        eprint(&format!("mailkeep: {e}"));
    }
    // With --quiet, stdout stays empty even when the run failed: the errors are on stderr.
    let text = if out.json {
        serde_json::to_string(report).expect("a report is plain data")
    } else if !out.quiet && (report.error.is_none() || report.fetched > 0) {
        report.to_string()
    } else {
        return;
    };
    // The exit status stays the run's; a reader that went away (`| head`) is not an error.
    print_stdout(&text);
}

/// deletions; or one JSON object with `--json`.
pub fn print_migrate(report: &MigrateReport, out: Output) {
    if out.json {
        for (w, f, e) in parts(report) {
            eprint_warnings(w, out);
            for f in f {
                eprint(&failure_line(f));
            }
            if let Some(e) = e {
                eprint(&format!("mailkeep: {e}"));
            }
        }
        if let Some(n) = &report.deletion_note {
            eprint(&format!("mailkeep: {n}"));
        }
        print_stdout(&serde_json::to_string(report).expect("a report is plain data"));
        return;
    }
    if let Some(b) = &report.backup {
        print_run(b, out);
    }
    if report
        .backup
        .as_ref()
        .is_none_or(|b| matches!(b.exit, Exit::Ok | Exit::Partial))
    {
        print_upload(&report.upload, out);
    }
    if let Some(n) = &report.deletion_note {
        eprint(&format!("mailkeep: {n}"));
    }
    if report.deleted_at_source > 0 && !out.quiet {
        println!(
            "deleted {} message(s) from {} that {} holds",
            report.deleted_at_source, report.source, report.target
        );
    }
}

/// A failed message (or mailbox) as one stderr line.
fn failure_line(f: &crate::engine::report::Failure) -> String {
    match f.message.as_str() {
        "" => format!("mailkeep: {}: {}", f.mailbox, f.error),
        m => format!("mailkeep: {} {m}: {}", f.mailbox, f.error),
    }
}

/// Prints the upload part as `restore` does: warnings, failures and the error on stderr, then
/// the summary (after the plan for `--dry-run`); no summary when the run stopped before it
/// looked at any mailbox (a plan of nothing would read as "nothing to do").
fn print_upload(report: &RestoreReport, out: Output) {
    eprint_warnings(&report.warnings, out);
    // Identical refusals (`NO [TOOBIG] ...`) in one line with a count, as `restore` prints them.
    for line in crate::engine::report::failure_lines(&report.failures) {
        eprint(&format!("mailkeep: {line}"));
    }
    if let Some(e) = &report.error {
        eprint(&format!("mailkeep: {e}"));
    }
    // A run that stopped prints no summary, except the plan of the mailboxes a dry run saw;
    // a full target did not stop it: its counts (`pending`) are the news.
    let stopped = report.error.is_some()
        && report.over_quota.is_none()
        && (report.uploaded == 0 || report.mailboxes.is_empty())
        && (!report.dry_run || report.mailboxes.is_empty());
    if out.quiet || stopped {
        return;
    }
    let text = match report.dry_run {
        true => format!("{}{report}", report.plan_table()),
        false => report.to_string(),
    };
    print_stdout(&text);
}

type Parts<'a> = (
    &'a [String],
    &'a [crate::engine::report::Failure],
    Option<&'a String>,
);

fn parts(report: &MigrateReport) -> Vec<Parts<'_>> {
    let mut v = Vec::new();
    if let Some(b) = &report.backup {
        v.push((&b.warnings[..], &b.failures[..], b.error.as_ref()));
    }
    v.push((
        &report.upload.warnings[..],
        &report.upload.failures[..],
        report.upload.error.as_ref(),
    ));
    v
}

/// Prints a conversion's report: warnings and failures on stderr (one line each), then the
/// summary line, or the JSON object with `--json`.
pub fn print_convert(report: &ConvertReport, out: Output) {
    let mut stderr = std::io::stderr();
    eprint_warnings(&report.warnings, out);
    for f in &report.failures {
        let sep = if f.message.is_empty() { "" } else { " " };
        let _ = writeln!(
            stderr,
            "mailkeep: {}{sep}{}: {}",
            f.mailbox, f.message, f.error
        );
    }
    if let Some(e) = &report.error {
        eprint(&format!("mailkeep: {e}"));
    }
    let text = if out.json {
        serde_json::to_string(report).expect("a report is plain data")
    } else if out.quiet || (report.error.is_some() && report.written == 0) {
        return;
    } else {
        report.to_string()
    };
    print_stdout(&text);
}

/// Prints a prune's report: warnings and failures on stderr (one line each), then one line per
/// mailbox and the summary line, or the JSON object with `--json`.
pub fn print_prune(report: &PruneReport, out: Output) {
    let mut stderr = std::io::stderr();
    eprint_warnings(&report.warnings, out);
    for f in &report.failures {
        let _ = writeln!(
            stderr,
            "{}",
            crate::engine::report::one_line(&format!(
                "mailkeep: {} {}: {}",
                f.mailbox, f.message, f.error
            ))
        );
    }
    if let Some(e) = &report.error {
        eprint(&format!("mailkeep: {e}"));
    }
    let text = if out.json {
        serde_json::to_string(report).expect("a report is plain data")
    } else if out.quiet || (report.error.is_some() && report.mailboxes.is_empty()) {
        return;
    } else {
        format!("{}{report}", report.mailbox_lines())
    };
    print_stdout(&text);
}

/// Prints a restore's report: warnings and failures on stderr (one line each), then the
/// summary line (after the plan table for `--dry-run`), or the JSON object with `--json`.
pub fn print_restore(report: &RestoreReport, out: Output) {
    eprint_warnings(&report.warnings, out);
    for line in crate::engine::report::failure_lines(&report.failures) {
        eprint(&format!("mailkeep: {line}"));
    }
    if let Some(e) = &report.error {
        eprint(&format!("mailkeep: {e}"));
    }
    // A full target is not a run that stopped: its counts (`pending`) are the news.
    let text = if out.json {
        serde_json::to_string(report).expect("a report is plain data")
    } else if out.quiet
        || (report.error.is_some()
            && report.uploaded == 0
            && !report.dry_run
            && report.over_quota.is_none())
    {
        return;
    } else if report.dry_run {
        format!("{}{report}", report.plan_table())
    } else {
        report.to_string()
    };
    print_stdout(&text);
}

/// Prints `verify`'s report: warnings and the error on stderr; then the JSON object (`--json`),
/// or the findings, the comparison with the server (`--against`) and the summary line, one
/// line at a time; nothing when the archive could not be checked, nor with `--quiet` when all
/// is well.
pub fn print_verify(report: &VerifyReport, output: Output) {
    for w in &report.warnings {
        eprint(&format!("mailkeep: warning: {w}"));
    }
    if let Some(e) = &report.error {
        eprint(&format!("mailkeep: {e}"));
    }
    let mut p = Printer::new();
    if output.json {
        p.line(&serde_json::to_string(report).expect("a report is plain data"));
        p.finish();
        return;
    }
    if report.unchecked || (output.quiet && report.exit == Exit::Ok) {
        return;
    }
    for problem in report.problems.iter().chain(&report.notes) {
        p.line(&problem.line());
    }
    if let Some(a) = &report.against {
        let cols = a
            .mailboxes
            .iter()
            .map(|m| width(&m.mailbox))
            .max()
            .unwrap_or(0)
            .max(width("MAILBOX"));
        p.line(&format!(
            "{}  {:>9}  {:>10}  {:>20}  {:>15}",
            pad_to_width("MAILBOX", cols),
            "ON SERVER",
            "IN ARCHIVE",
            "MISSING FROM ARCHIVE",
            "ONLY IN ARCHIVE"
        ));
        for m in &a.mailboxes {
            p.line(&format!(
                "{}  {:>9}  {:>10}  {:>20}  {:>15}",
                pad_to_width(&m.mailbox, cols),
                m.on_server,
                m.in_archive,
                m.missing_from_archive,
                m.only_in_archive
            ));
        }
        for m in &a.missing_from_archive {
            p.line(&format!(
                "missing from archive: {} {}{}",
                m.mailbox,
                m.message,
                if m.recorded {
                    " (recorded, but its archived copy is missing or damaged)"
                } else {
                    ""
                }
            ));
        }
    }
    p.line(&report.summary());
    p.finish();
}

/// Prints `export`'s report: the reader's warnings and each message not exported (over
/// `--max-message-size`) on stderr, then the summary line, or the JSON object with `--json`;
/// no summary with `--quiet`.
pub fn print_export(report: &ExportReport, output: Output) {
    for w in &report.warnings {
        eprint(&format!("mailkeep: warning: {w}"));
    }
    for s in report.skipped.iter().filter(|s| s.is_failure()) {
        eprint(&format!("mailkeep: {s}"));
    }
    let mut p = Printer::new();
    if output.json {
        p.line(&serde_json::to_string(report).expect("a report is plain data"));
    } else if !output.quiet {
        p.line(&report.to_string());
    }
    p.finish();
}

/// `list ARCHIVE`'s output as it is made: with `--messages` (not `--json`) the table's header
/// before the first message is read and each message's row as it is read (nothing is kept);
/// the rest when the listing is done ([`ListPrinter::finish`]).
pub struct ListPrinter {
    out: Printer,
    /// The MAILBOX column's display width.
    cols: usize,
    json: bool,
    messages: bool,
}

impl ListPrinter {
    /// Starts the output for `archive`: sizes the MAILBOX column, prints the `--messages`
    /// table's header.
    pub fn start(archive: &OpenedArchive, json: bool, messages: bool) -> ListPrinter {
        let cols = archive
            .mailboxes
            .iter()
            .map(|m| width(&list::shown_mailbox(m.as_str())))
            .max()
            .unwrap_or(0)
            .max(width("MAILBOX"));
        let mut out = Printer::new();
        if messages && !json {
            out.line(&list::message_header(cols));
        }
        ListPrinter {
            out,
            cols,
            json,
            messages,
        }
    }

    /// What [`OpenedArchive::read`] does with each message: with `--messages`, its row printed
    /// at once, or (with `--json`) kept for the JSON object.
    pub fn per_message(&mut self) -> PerMessage<'_> {
        match (self.messages, self.json) {
            (false, _) => PerMessage::Count,
            (true, true) => PerMessage::Keep,
            (true, false) => {
                let (out, cols) = (&mut self.out, self.cols);
                PerMessage::Hand(Box::new(move |m| out.line(&m.row(cols))))
            }
        }
    }

    /// Prints the rest: the reader's warnings on stderr; the JSON object, or the mailbox table
    /// (without `--messages`) and the total line; then each message not read (over
    /// `--max-message-size`) on stderr.
    pub fn finish(mut self, listing: &ArchiveListing) {
        for w in &listing.warnings {
            eprint(&format!("mailkeep: warning: {w}"));
        }
        if self.json {
            self.out
                .line(&serde_json::to_string(listing).expect("a listing is plain data"));
        } else {
            if !self.messages {
                self.out.line(&list::MailboxSummary::header(self.cols));
                for s in &listing.mailboxes {
                    self.out.line(&s.row(self.cols));
                }
            }
            self.out.line(&listing.total_line());
        }
        self.out.finish();
        for s in listing.skipped.iter().filter(|s| s.is_failure()) {
            eprint(&format!("mailkeep: {s}"));
        }
    }
}

/// Prints `list SOURCE`'s report on stdout: the table, or the JSON array with `--json`. As
/// always for the server queries, a stdout that cannot be written is not reported.
pub fn print_server_list(listing: &ServerListing, json: bool) {
    if json {
        let text = serde_json::to_string(&listing.mailboxes).expect("a listing is plain data");
        write_stdout_unchecked(&format!("{text}\n"));
    } else {
        write_stdout_unchecked(&crate::engine::query::table(&listing.mailboxes));
    }
}

/// Prints `quota SOURCE`'s report: one line per resource (or that there is none, or no QUOTA
/// capability) on stdout, or the JSON array with `--json`; then a warning on stderr for each
/// resource at or above `--warn-at`.
pub fn print_quota(report: &QuotaReport, json: bool) {
    let account = &report.account;
    if !report.supported {
        write_stdout_unchecked(&match json {
            true => "[]\n".to_string(),
            false => format!("{account}: the server reports no quota (no QUOTA capability)\n"),
        });
        return;
    }
    if json {
        let text = serde_json::to_string(&report.lines).expect("a report is plain data");
        write_stdout_unchecked(&format!("{text}\n"));
    } else if report.lines.is_empty() {
        write_stdout_unchecked(&format!("{account}: no quota limits\n"));
    } else {
        for l in &report.lines {
            write_stdout_unchecked(&format!("{account}: {}\n", l.describe()));
        }
    }
    for l in report.over() {
        let _ = writeln!(
            std::io::stderr(),
            "mailkeep: warning: {account}: quota {} is above {}%: new mail will bounce when it is full; archive old mail and free space",
            l.describe(),
            report.warn_at
        );
    }
}

/// Writes `text` (its line ends included) on stdout, a failure ignored: how the server
/// queries (`list SOURCE`, `quota`) have always written.
fn write_stdout_unchecked(text: &str) {
    let _ = std::io::stdout().write_all(text.as_bytes());
}

/// Writes `line` as one line on stderr (control characters escaped,
/// [`crate::engine::report::one_line`]).
fn eprint(line: &str) {
    let _ = writeln!(
        std::io::stderr(),
        "{}",
        crate::engine::report::one_line(line)
    );
}

/// The warnings on stderr, one line each (`mailkeep: warning: ...`); none with `--quiet`.
fn eprint_warnings(warnings: &[String], out: Output) {
    if !out.quiet {
        for w in warnings {
            eprint(&format!("mailkeep: warning: {w}"));
        }
    }
}

/// Writes the summary or JSON `text` on stdout. The exit status stays the run's: a stdout
/// that cannot be written (a full disk) is said in one line on stderr; a reader that went away
/// (`| head`) is not an error ([`error::stdout_failure`]).
fn print_stdout(text: &str) {
    let mut stdout = std::io::stdout().lock();
    let written = writeln!(stdout, "{text}").and_then(|()| stdout.flush());
    if let Some(line) = written.err().as_ref().and_then(error::stdout_failure) {
        eprint(&line);
    }
}

/// Writes `line` and a line end to stdout; a reader that went away (`| head`) ends the output
/// quietly, any other failure is reported once on stderr.
struct Printer {
    out: std::io::StdoutLock<'static>,
    failed: bool,
}

impl Printer {
    fn new() -> Printer {
        Printer {
            out: std::io::stdout().lock(),
            failed: false,
        }
    }

    fn line(&mut self, line: &str) {
        if self.failed {
            return;
        }
        if let Err(e) = writeln!(self.out, "{line}") {
            self.failed = true;
            if let Some(msg) = crate::core::error::stdout_failure(&e) {
                let _ = writeln!(std::io::stderr(), "{msg}");
            }
        }
    }

    fn finish(mut self) {
        if self.failed {
            return;
        }
        if let Err(e) = self.out.flush() {
            if let Some(msg) = crate::core::error::stdout_failure(&e) {
                let _ = writeln!(std::io::stderr(), "{msg}");
            }
        }
    }
}
