//! A run's report: data first (JSON with `--json`), with a one-line human summary as its
//! Display. Progress bars are only a view of the same counts.

use std::fmt;

use crate::core::error::Exit;

/// One message or mailbox that failed while the run went on.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Failure {
    /// The mailbox (`INBOX` for POP3).
    pub mailbox: String,
    /// The message: `UIDL 0001` (POP3) or `UID 42` (IMAP); empty for a whole mailbox.
    pub message: String,
    /// What went wrong, one line.
    pub error: String,
}

/// One mailbox of an IMAP backup.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct MailboxReport {
    /// The mailbox name, decoded, levels joined with `/`.
    pub mailbox: String,
    /// Messages on the server.
    pub on_server: u64,
    /// Messages already archived (including re-keyed and flag-updated ones).
    pub already_archived: u64,
    /// Messages downloaded and stored.
    pub fetched: u64,
    /// Stored bytes of those.
    pub fetched_bytes: u64,
    /// Archived messages whose flags were brought up to date (no download).
    pub flags_updated: u64,
    /// Archived messages removed because the server deleted them (`--mirror`).
    pub removed: u64,
    /// Messages stored this run whose server sent no valid INTERNALDATE (missing, unreadable,
    /// absurd), dated from their `Date:` header instead. Left out of the JSON when 0.
    #[serde(skip_serializing_if = "is_zero")]
    pub dated_from_header: u64,
    /// Likewise, dated at the time of archiving (no usable `Date:` header either).
    #[serde(skip_serializing_if = "is_zero")]
    pub dated_at_archiving: u64,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

/// One resource of a quota root (RFC 9208 5): STORAGE in KiB, MESSAGE in messages.
#[derive(Debug, Clone, serde::Serialize)]
pub struct QuotaLine {
    pub root: String,
    pub resource: String,
    pub usage: u64,
    pub limit: u64,
    /// usage / limit, percent (0 when the limit is 0).
    pub percent: f64,
}

impl QuotaLine {
    /// The lines of one quota root.
    pub fn from_root(root: &crate::protocol::imap::QuotaRoot) -> Vec<QuotaLine> {
        root.resources
            .iter()
            .map(|r| QuotaLine {
                root: root.name.clone(),
                resource: r.name.clone(),
                usage: r.usage,
                limit: r.limit,
                percent: if r.limit == 0 {
                    0.0
                } else {
                    r.usage as f64 * 100.0 / r.limit as f64
                },
            })
            .collect()
    }

    /// `STORAGE 1.2 GB of 5.0 GB (24%)` / `MESSAGE 1200 of 10000 (12%)`.
    pub fn describe(&self) -> String {
        let (u, l) = if self.resource.eq_ignore_ascii_case("STORAGE") {
            (
                human_bytes(self.usage * 1024),
                human_bytes(self.limit * 1024),
            )
        } else {
            (self.usage.to_string(), self.limit.to_string())
        };
        let root = if self.root.is_empty() {
            String::new()
        } else {
            format!("{} ", self.root)
        };
        format!("{root}{} {u} of {l} ({:.0}%)", self.resource, self.percent)
    }
}

/// What a backup run did. Sizes in bytes, durations in seconds.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct RunReport {
    /// `backup`.
    pub command: String,
    /// The source account (`alice@pop.example.com:995`).
    pub source: String,
    /// The archive (`maildir:/home/alice/Mail/backup`).
    pub archive: String,
    /// Messages the server listed.
    pub listed: u64,
    /// Messages found already archived (skipped without download).
    pub already_archived: u64,
    /// Messages downloaded and stored in this run.
    pub fetched: u64,
    /// Stored bytes of the messages downloaded in this run.
    pub fetched_bytes: u64,
    /// Messages a crashed earlier run had stored but not recorded, recorded now without
    /// downloading them again.
    pub recovered: u64,
    /// Messages deleted from the server in this run.
    pub deleted: u64,
    /// IMAP: archived messages whose flags were brought up to date.
    pub flags_updated: u64,
    /// IMAP: archived messages removed because the server deleted them (`--mirror`).
    pub removed: u64,
    /// IMAP: per-mailbox counts.
    pub mailboxes: Vec<MailboxReport>,
    /// IMAP: quota usage, when the server reports it.
    pub quota: Vec<QuotaLine>,
    /// POP3: the seconds the server wants between two logins (CAPA `LOGIN-DELAY n` after
    /// login, RFC 2449 6.8); `mailkeep run` does not log in to the account again sooner.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub login_delay_secs: Option<u64>,
    /// Per-message failures.
    pub failures: Vec<Failure>,
    /// One-time notes (e.g. "the server has no UIDL").
    pub warnings: Vec<String>,
    /// The error that stopped the run, if one did.
    pub error: Option<String>,
    /// Wall-clock duration in seconds.
    pub duration_secs: f64,
    /// The exit status this run ends with.
    pub exit: Exit,
    /// The exit status as a number.
    pub exit_code: u8,
}

/// Bytes as a short human figure (`15.7 MB`, decimal units).
pub fn human_bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["B", "kB", "MB", "GB", "TB"];
    let mut v = n as f64;
    let mut u = 0;
    while v >= 1000.0 && u < UNITS.len() - 1 {
        v /= 1000.0;
        u += 1;
    }
    if u == 0 {
        format!("{n} B")
    } else {
        format!("{v:.1} {}", UNITS[u])
    }
}

impl fmt::Display for RunReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} {} -> {}: {} on server, {} fetched ({}), {} already archived",
            self.command,
            self.source,
            self.archive,
            self.listed,
            self.fetched,
            human_bytes(self.fetched_bytes),
            self.already_archived
        )?;
        if self.recovered > 0 {
            write!(f, ", {} found in the archive unrecorded (an interrupted run or a lost ledger: adopted as unverified)", self.recovered)?;
        }
        if self.deleted > 0 {
            write!(f, ", {} deleted from server", self.deleted)?;
        }
        if self.flags_updated > 0 {
            write!(f, ", {} with new flags", self.flags_updated)?;
        }
        if self.removed > 0 {
            write!(
                f,
                ", {} removed (deleted on server, --mirror)",
                self.removed
            )?;
        }
        if !self.mailboxes.is_empty() {
            write!(f, ", {}", mailboxes(self.mailboxes.len()))?;
        }
        // A failed message is counted among those on the server; a failed mailbox (no
        // message named) is not a message: said apart, so `1 failed` never reads as a
        // message missing from `on server = fetched + already + failed`.
        let boxes = self
            .failures
            .iter()
            .filter(|x| x.message.is_empty())
            .count();
        let messages = self.failures.len() - boxes;
        if messages > 0 {
            write!(f, ", {messages} failed")?;
        }
        if boxes > 0 {
            let s = if boxes == 1 { "" } else { "es" };
            write!(f, ", {boxes} mailbox{s} failed")?;
        }
        write!(f, " in {:.1} s", self.duration_secs)?;
        for q in &self.quota {
            write!(f, "; quota {}", q.describe())?;
        }
        Ok(())
    }
}

/// One source mailbox of a restore.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct RestoreMailboxReport {
    /// The mailbox in the archive, levels joined with `/`.
    pub mailbox: String,
    /// The target mailbox, decoded, levels joined with `/`.
    pub target: String,
    /// The target mailbox as sent to the server (modified UTF-7, server delimiter).
    pub target_wire: String,
    /// Why this target: `same`, `map`, `into` or `special-use`.
    pub rule: String,
    /// The target mailbox did not exist: created (with `--dry-run`: would be created).
    pub created: bool,
    /// Messages read from the archive.
    pub read: u64,
    /// Messages appended to the target.
    pub uploaded: u64,
    /// Their size in the archive (LF line ends), bytes.
    pub uploaded_bytes: u64,
    /// `--dry-run`: messages that would be appended.
    pub to_upload: u64,
    /// Messages already on the target: recorded by an earlier restore, or found there.
    pub already_present: u64,
    /// Of those, found on the target without a record (matched by Message-ID and size, or by
    /// content), and recorded now.
    pub found_on_target: u64,
    /// Messages the server refused (see the failures).
    pub failed: u64,
    /// Messages not appended because the target account is over quota (sent by a rerun).
    pub pending: u64,
    /// Messages the archive reader did not hand out (e.g. deleted in Thunderbird).
    pub skipped: u64,
}

/// What a restore run did (or, with `--dry-run`, would do). Sizes in bytes, durations in
/// seconds.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct RestoreReport {
    /// `restore`.
    pub command: String,
    /// The archive read (`maildir:/home/alice/Mail/backup`).
    pub archive: String,
    /// The target account (`alice@imap.example.com:993`).
    pub target: String,
    /// True for `--dry-run`: nothing was changed.
    pub dry_run: bool,
    /// The restore state file (uploads ledger).
    pub state_file: String,
    /// Messages read from the archive.
    pub read: u64,
    /// Messages appended.
    pub uploaded: u64,
    /// Their size in the archive, bytes.
    pub uploaded_bytes: u64,
    /// `--dry-run`: messages that would be appended.
    pub to_upload: u64,
    /// Messages already on the target (recorded or found).
    pub already_present: u64,
    /// Of those, found on the target without a record.
    pub found_on_target: u64,
    /// Messages the server refused.
    pub failed: u64,
    /// Messages not appended because the target account is over quota (`NO [OVERQUOTA]` to
    /// an APPEND, RFC 5530): no APPEND follows that answer; a rerun sends exactly these.
    pub pending: u64,
    /// The server's words when the target account was over quota (`NO [OVERQUOTA] ...`).
    pub over_quota: Option<String>,
    /// Messages the archive reader skipped (with a reason, see the warnings).
    pub skipped: u64,
    /// Messages marked `\Deleted` in the archive: uploaded without that flag.
    pub deleted_flag_dropped: u64,
    /// Messages without a known date: the server gave them the time of the upload.
    pub without_date: u64,
    /// Messages dated by their file's modification time because the file gave no date
    /// ([`crate::archive::reader::SourceCounts::dated_from_mtime`]); left out of the JSON when 0.
    #[serde(skip_serializing_if = "is_zero")]
    pub dated_from_mtime: u64,
    /// Per source mailbox.
    pub mailboxes: Vec<RestoreMailboxReport>,
    /// Per-message and per-mailbox failures (`message` is the message's place in the archive).
    pub failures: Vec<Failure>,
    /// Things worth knowing that are not failures.
    pub warnings: Vec<String>,
    /// The error that stopped the run, if one did.
    pub error: Option<String>,
    pub duration_secs: f64,
    pub exit: Exit,
    pub exit_code: u8,
}

impl RestoreReport {
    /// The `--dry-run` plan as a table: one line per source mailbox.
    pub fn plan_table(&self) -> String {
        let width = self
            .mailboxes
            .iter()
            .map(|m| m.mailbox.chars().count())
            .max()
            .unwrap_or(0)
            .max(6);
        let mut out = String::new();
        for m in &self.mailboxes {
            let pad = width - m.mailbox.chars().count();
            out.push_str(&format!(
                "{}{} -> {}{}{}: {} to upload, {} already present",
                m.mailbox,
                " ".repeat(pad),
                m.target,
                if m.rule == "same" {
                    String::new()
                } else {
                    format!(" ({})", m.rule)
                },
                if m.created { " [create]" } else { "" },
                m.to_upload,
                m.already_present
            ));
            if m.skipped > 0 {
                out.push_str(&format!(", {} skipped", m.skipped));
            }
            out.push('\n');
        }
        out
    }
}

impl fmt::Display for RestoreReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.dry_run {
            write!(
                f,
                "{} (dry run) {} -> {}: {} read, {} to upload, {} already present",
                self.command,
                self.archive,
                self.target,
                self.read,
                self.to_upload,
                self.already_present
            )?;
        } else {
            write!(
                f,
                "{} {} -> {}: {} read, {} uploaded ({}), {} already present",
                self.command,
                self.archive,
                self.target,
                self.read,
                self.uploaded,
                human_bytes(self.uploaded_bytes),
                self.already_present
            )?;
        }
        if self.found_on_target > 0 {
            write!(f, " ({} found without a record)", self.found_on_target)?;
        }
        if self.skipped > 0 {
            let place = if self.archive.starts_with("imap:") || self.archive.starts_with("pop3:") {
                "at the source"
            } else {
                "in the archive"
            };
            write!(f, ", {} skipped {place}", self.skipped)?;
        }
        if self.failed > 0 || !self.failures.is_empty() {
            write!(f, ", {} failed", self.failures.len())?;
        }
        if self.pending > 0 {
            write!(
                f,
                ", {} pending (the target account is over quota)",
                self.pending
            )?;
        }
        write!(
            f,
            ", {} in {:.1} s",
            mailboxes(self.mailboxes.len()),
            self.duration_secs
        )?;
        if self.dry_run {
            write!(f, "; nothing was changed")?;
        }
        Ok(())
    }
}

/// The failures as lines for people (`MAILBOX MESSAGE: error`), with a run of failures of one
/// mailbox that share their error (the same refusal, `refused by the server: NO [TOOBIG]
/// Message too large`) said once with a count and the first five messages:
/// `INBOX: 12 messages refused by the server: NO [TOOBIG] Message too large (first 5: a, b,
/// c, d, e)`. The JSON report keeps one entry per message. Pure.
pub fn failure_lines(failures: &[Failure]) -> Vec<String> {
    const SHOWN: usize = 5;
    let mut out = Vec::new();
    let mut i = 0;
    while i < failures.len() {
        let f = &failures[i];
        let mut j = i + 1;
        while j < failures.len()
            && !f.message.is_empty()
            && failures[j].mailbox == f.mailbox
            && failures[j].error == f.error
            && !failures[j].message.is_empty()
        {
            j += 1;
        }
        let n = j - i;
        if n == 1 {
            let sep = if f.message.is_empty() { "" } else { " " };
            out.push(format!("{}{sep}{}: {}", f.mailbox, f.message, f.error));
        } else {
            let names: Vec<&str> = failures[i..j]
                .iter()
                .take(SHOWN)
                .map(|f| f.message.as_str())
                .collect();
            let which = if n > SHOWN {
                format!("first {SHOWN}: {}", names.join(", "))
            } else {
                names.join(", ")
            };
            out.push(format!("{}: {n} messages {} ({which})", f.mailbox, f.error));
        }
        i = j;
    }
    out
}

/// The failures of a backup as lines for people (`MAILBOX MESSAGE: error`), a run of failures
/// of one mailbox with the same error (one refused `UID FETCH` of a batch) in one line naming
/// the first five messages and how many more: `INBOX UID 12, UID 13: alice@h:993: mailbox
/// INBOX: refused by the server: ...`. The JSON report keeps one entry per message. Pure.
pub fn grouped_failure_lines(failures: &[Failure]) -> Vec<String> {
    const SHOWN: usize = 5;
    let mut out = Vec::new();
    let mut i = 0;
    while i < failures.len() {
        let f = &failures[i];
        let mut j = i + 1;
        while j < failures.len()
            && !f.message.is_empty()
            && failures[j].mailbox == f.mailbox
            && failures[j].error == f.error
            && !failures[j].message.is_empty()
        {
            j += 1;
        }
        let mut names: Vec<&str> = failures[i..j]
            .iter()
            .take(SHOWN)
            .map(|f| f.message.as_str())
            .collect();
        let more = (j - i).saturating_sub(SHOWN);
        let more = if more > 0 {
            format!(" and {more} more")
        } else {
            String::new()
        };
        names.retain(|n| !n.is_empty());
        let sep = if names.is_empty() { "" } else { " " };
        out.push(one_line(&format!(
            "{}{sep}{}{more}: {}",
            f.mailbox,
            names.join(", "),
            f.error
        )));
        i = j;
    }
    out
}

/// `1 mailbox`, `2 mailboxes`.
pub fn mailboxes(n: usize) -> String {
    if n == 1 {
        "1 mailbox".to_string()
    } else {
        format!("{n} mailboxes")
    }
}

/// `s` as one line of output: control characters (a CR, LF or NUL in a mailbox name or a
/// server's text) escaped as `\r`, `\n`, `\u{0}`, so every error, warning and failure stays
/// the one line it is meant to be, whatever the server sent.
pub fn one_line(s: &str) -> String {
    crate::core::endpoint::escape_controls(s)
}

#[cfg(test)]
mod tests {
    #[test]
    fn every_line_stays_one_line() {
        assert_eq!(
            super::one_line("mailkeep: imap:a@h INBOX\r\n* BYE x\0: refused"),
            "mailkeep: imap:a@h INBOX\\r\\n* BYE x\\u{0}: refused"
        );
        assert_eq!(super::one_line("Entwürfe: ok"), "Entwürfe: ok");
    }

    use super::*;

    #[test]
    fn a_backups_failures_of_one_refused_fetch_are_one_line_naming_them() {
        let f = |mb: &str, m: &str, e: &str| Failure {
            mailbox: mb.into(),
            message: m.into(),
            error: e.into(),
        };
        let mut v = vec![
            f("INBOX", "UID 1", "a@h: mailbox INBOX UID 1: too large"),
            f("INBOX", "UID 2", "a@h: mailbox INBOX: refused"),
            f("INBOX", "UID 3", "a@h: mailbox INBOX: refused"),
        ];
        v.extend((4..=10).map(|u| f("INBOX", &format!("UID {u}"), "a@h: stopped")));
        v.push(f("Sent\n", "", "a@h: EXAMINE: refused"));
        v.push(f("", "", "a@h: LIST line"));
        assert_eq!(
            grouped_failure_lines(&v),
            [
                "INBOX UID 1: a@h: mailbox INBOX UID 1: too large",
                "INBOX UID 2, UID 3: a@h: mailbox INBOX: refused",
                "INBOX UID 4, UID 5, UID 6, UID 7, UID 8 and 2 more: a@h: stopped",
                "Sent\\n: a@h: EXAMINE: refused",
                ": a@h: LIST line",
            ]
        );
    }

    #[test]
    fn identical_refusals_are_one_line_with_a_count() {
        let f = |mb: &str, m: &str, e: &str| Failure {
            mailbox: mb.into(),
            message: m.into(),
            error: e.into(),
        };
        let big = "refused by the server: NO [TOOBIG] Message too large";
        let mut v: Vec<Failure> = (1..=7)
            .map(|i| f("INBOX", &format!("cur/{i}"), big))
            .collect();
        v.push(f("INBOX", "cur/8", "refused by the server: NO odd"));
        v.push(f("Sent", "", "the server refused this mailbox"));
        v.push(f("Sent", "a", big));
        v.push(f("Sent", "b", big));
        assert_eq!(
            failure_lines(&v),
            [
                "INBOX: 7 messages refused by the server: NO [TOOBIG] Message too large (first 5: cur/1, cur/2, cur/3, cur/4, cur/5)",
                "INBOX cur/8: refused by the server: NO odd",
                "Sent: the server refused this mailbox",
                "Sent: 2 messages refused by the server: NO [TOOBIG] Message too large (a, b)",
            ]
        );
        assert!(failure_lines(&[]).is_empty());
    }

    #[test]
    fn human_sizes() {
        for (n, s) in [
            (0, "0 B"),
            (999, "999 B"),
            (15_700_000, "15.7 MB"),
            (1_000, "1.0 kB"),
        ] {
            assert_eq!(human_bytes(n), s);
        }
    }
}
