//! `mailkeep list ARCHIVE`: an archive's mailboxes with message counts, total size and date
//! range; with `--messages`, one line per message (date, size, flags, sender, subject, the
//! headers decoded). Any kind [`crate::archive::reader::open`] reads; nothing is written.
//!
//! Sizes are of the stored form (LF line ends), the bytes on disk for a mailkeep archive.
//! Dates are the archive's INTERNALDATE of each message ([`ArchivedMessage::internal_date`]:
//! the ledger's, else what the source believes), shown in UTC.

use crate::archive::reader::{ArchiveSource, ArchivedMessage, DateSource, Skipped};
use crate::core::error::{Exit, Result};
use crate::core::message::MailboxName;
use crate::engine::report::human_bytes;

use super::{pad_to_width, rfc3339, truncate_to_width, ymd, ymd_hm, Summary};

/// The sender column of `--messages` is cut to this many display columns.
const FROM_COLUMNS: usize = 24;

/// One mailbox of an archive listing.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct MailboxSummary {
    /// Name, levels joined with `/`.
    pub mailbox: String,
    /// Messages read.
    pub messages: u64,
    /// Total size in bytes (stored form).
    pub size: u64,
    /// Oldest and newest message date, `2023-04-01T09:05:07Z` (UTC); `None` when no message
    /// has a date.
    pub first_date: Option<String>,
    pub last_date: Option<String>,
    /// Messages without any believable date.
    pub undated: u64,
    #[serde(skip)]
    first: Option<i64>,
    #[serde(skip)]
    last: Option<i64>,
}

impl MailboxSummary {
    fn new(mailbox: &str) -> Self {
        MailboxSummary {
            mailbox: mailbox.to_string(),
            ..Default::default()
        }
    }

    /// Counts one message of `size` bytes dated `date` (seconds since the epoch).
    fn add(&mut self, size: u64, date: Option<i64>) {
        self.messages += 1;
        self.size += size;
        match date {
            Some(t) => {
                self.first = Some(self.first.map_or(t, |f| f.min(t)));
                self.last = Some(self.last.map_or(t, |l| l.max(t)));
                self.first_date = self.first.map(rfc3339);
                self.last_date = self.last.map(rfc3339);
            }
            None => self.undated += 1,
        }
    }

    /// Adds another summary's counts (for the total).
    fn merge(&mut self, o: &MailboxSummary) {
        self.messages += o.messages;
        self.size += o.size;
        self.undated += o.undated;
        for t in [o.first, o.last].into_iter().flatten() {
            self.first = Some(self.first.map_or(t, |f| f.min(t)));
            self.last = Some(self.last.map_or(t, |l| l.max(t)));
        }
        self.first_date = self.first.map(rfc3339);
        self.last_date = self.last.map(rfc3339);
    }

    /// The header of the mailbox table.
    pub fn header(mailbox_cols: usize) -> String {
        format!(
            "{}  {:>9}  {:>10}  {:<10}  LAST",
            pad_to_width("MAILBOX", mailbox_cols),
            "MESSAGES",
            "SIZE",
            "FIRST"
        )
    }

    /// The mailbox table's row: name (padded to `mailbox_cols`), messages, size, first and
    /// last day.
    pub fn row(&self, mailbox_cols: usize) -> String {
        format!(
            "{}  {:>9}  {:>10}  {:<10}  {}",
            pad_to_width(&shown_mailbox(&self.mailbox), mailbox_cols),
            self.messages,
            human_bytes(self.size),
            self.first.map(ymd).unwrap_or_else(|| "-".into()),
            self.last.map(ymd).unwrap_or_else(|| "-".into()),
        )
    }

    /// `2019-05-01 to 2024-09-30`, or `no dates`.
    fn range(&self) -> String {
        match (self.first, self.last) {
            (Some(f), Some(l)) => format!("{} to {}", ymd(f), ymd(l)),
            _ => "no dates".into(),
        }
    }
}

/// One message of `list --messages`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct MessageLine {
    pub mailbox: String,
    /// INTERNALDATE, `2023-04-01T09:05:07Z` (UTC), or `None`.
    pub date: Option<String>,
    /// Where the date came from (`ledger`, `file-mtime`, `date-header`, ...).
    pub date_source: DateSource,
    /// Size in bytes (stored form).
    pub size: u64,
    /// Flags and keywords, IMAP spelling (`\Seen`, `$Forwarded`).
    pub flags: Vec<String>,
    #[serde(flatten)]
    pub summary: Summary,
    /// Lower-case hex SHA-256 of the stored form.
    pub sha256: String,
    /// Where the message is (a file, or `file:offset` in an mbox).
    pub origin: String,
    #[serde(skip)]
    date_secs: Option<i64>,
    #[serde(skip)]
    maildir_flags: String,
}

impl MessageLine {
    /// The line for one archived message.
    pub fn of(m: &ArchivedMessage) -> MessageLine {
        MessageLine {
            mailbox: m.mailbox.to_string(),
            date: m.internal_date.map(rfc3339),
            date_source: m.date_source,
            size: m.raw.len() as u64,
            flags: m.flags.iter().map(|f| f.to_imap()).collect(),
            summary: Summary::of(&m.raw),
            sha256: m.sha256.clone(),
            origin: m.origin.clone(),
            date_secs: m.internal_date,
            maildir_flags: m.flags.maildir_info(),
        }
    }

    /// The table row: mailbox (padded to `mailbox_cols`), date, size, flag letters, sender
    /// (cut and padded to [`FROM_COLUMNS`]), subject. Aligned by display width.
    pub fn row(&self, mailbox_cols: usize) -> String {
        let date = self.date_secs.map(ymd_hm).unwrap_or_else(|| "-".into());
        let from = truncate_to_width(self.summary.from_shown(), FROM_COLUMNS);
        format!(
            "{}  {date:<16}  {:>9}  {:<5}  {}  {}",
            pad_to_width(&shown_mailbox(&self.mailbox), mailbox_cols),
            human_bytes(self.size),
            self.maildir_flags,
            pad_to_width(&from, FROM_COLUMNS),
            self.summary.subject.as_deref().unwrap_or("")
        )
        .trim_end()
        .to_string()
    }
}

/// A mailbox name as the tables show it: control characters (a TAB, an escape sequence from a
/// hostile server) written as `\t`, `\u{1b}`, so they neither break the columns nor reach the
/// terminal. JSON keeps the name as it is. Pure.
pub fn shown_mailbox(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    for c in name.chars() {
        if c.is_control() {
            out.extend(c.escape_debug());
        } else {
            out.push(c);
        }
    }
    out
}

/// The header of the `--messages` table.
pub fn message_header(mailbox_cols: usize) -> String {
    format!(
        "{}  {:<16}  {:>9}  {:<5}  {}  SUBJECT",
        pad_to_width("MAILBOX", mailbox_cols),
        "DATE (UTC)",
        "SIZE",
        "FLAGS",
        pad_to_width("FROM", FROM_COLUMNS),
    )
}

/// What `list ARCHIVE --json` prints.
#[derive(Debug, Clone, serde::Serialize)]
pub struct ArchiveListing {
    /// The archive, `kind:PATH`.
    pub archive: String,
    pub mailboxes: Vec<MailboxSummary>,
    /// Totals over every mailbox.
    pub messages: u64,
    pub size: u64,
    pub first_date: Option<String>,
    pub last_date: Option<String>,
    pub undated: u64,
    /// Messages the source did not hand out, with the reason (Thunderbird-deleted, empty).
    pub skipped: Vec<Skipped>,
    /// What the source noticed (files that are not mailboxes, ...).
    pub warnings: Vec<String>,
    /// With `--messages --json`: one entry per message, in archive order.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub entries: Option<Vec<MessageLine>>,
    /// The totals, for [`ArchiveListing::total_line`].
    #[serde(skip)]
    total: MailboxSummary,
    /// Ok, or partial (exit 1) when a message was not read (over `--max-message-size`).
    #[serde(skip)]
    pub exit: Exit,
}

impl ArchiveListing {
    /// The table's last line ([`total_line`]).
    pub fn total_line(&self) -> String {
        total_line(self.mailboxes.len(), &self.total, &self.skipped)
    }
}

/// An archive opened for `list`: its mailboxes are known (so a table's columns can be sized
/// before a message is read), no message is read yet ([`OpenedArchive::read`]).
pub struct OpenedArchive {
    source: Box<dyn ArchiveSource + Send>,
    /// The mailboxes, in archive order.
    pub mailboxes: Vec<MailboxName>,
}

/// What [`OpenedArchive::read`] does with each message it reads.
pub enum PerMessage<'a> {
    /// Nothing more: the mailboxes' counts are the listing.
    Count,
    /// Keeps it in the listing's `entries` (`--messages --json`).
    Keep,
    /// Hands it over as it is read, keeping nothing (`--messages`: the table streams, in
    /// bounded memory however large the archive).
    Hand(Box<dyn FnMut(&MessageLine) + 'a>),
}

/// Opens `list ARCHIVE` (`arg` as typed) and reads its mailbox list.
///
/// Errors: those of [`super::resolve`] and [`crate::archive::reader::open`], and a damaged archive
/// ([`crate::core::error::Error::Archive`]).
pub fn open(arg: &str) -> Result<OpenedArchive> {
    let archive = super::resolve(arg)?;
    let mut source = crate::archive::reader::open(&archive.spec())?;
    let mailboxes = source.mailboxes()?;
    Ok(OpenedArchive { source, mailboxes })
}

impl OpenedArchive {
    /// Reads every message, counting each mailbox's messages, sizes and dates, and doing
    /// `per_message` with each. Returns the listing (printing it is the caller's:
    /// `cli::render::ListPrinter`).
    ///
    /// Errors: a damaged archive ([`crate::core::error::Error::Archive`]).
    pub fn read(mut self, mut per_message: PerMessage<'_>) -> Result<ArchiveListing> {
        let mut summaries = Vec::new();
        let mut skipped = Vec::new();
        let mut entries = Vec::new();
        for mb in &self.mailboxes {
            let mut summary = MailboxSummary::new(mb.as_str());
            let counts = self.source.messages(mb, &mut |m| {
                summary.add(m.raw.len() as u64, m.internal_date);
                match &mut per_message {
                    PerMessage::Count => {}
                    PerMessage::Keep => entries.push(MessageLine::of(&m)),
                    PerMessage::Hand(hand) => hand(&MessageLine::of(&m)),
                }
                Ok(())
            })?;
            skipped.extend(counts.skipped);
            summaries.push(summary);
        }
        let mut total = MailboxSummary::default();
        for s in &summaries {
            total.merge(s);
        }
        // Messages over --max-message-size were not read: each named (by the caller), exit 1.
        let exit = if skipped.iter().any(|s| s.is_failure()) {
            Exit::Partial
        } else {
            Exit::Ok
        };
        Ok(ArchiveListing {
            archive: self.source.describe(),
            mailboxes: summaries,
            messages: total.messages,
            size: total.size,
            first_date: total.first_date.clone(),
            last_date: total.last_date.clone(),
            undated: total.undated,
            skipped,
            warnings: self.source.warnings(),
            entries: matches!(per_message, PerMessage::Keep).then_some(entries),
            total,
            exit,
        })
    }
}

/// `2 mailboxes, 15 messages, 52.3 kB, 2019-05-01 to 2024-09-30` plus what was skipped.
fn total_line(mailboxes: usize, total: &MailboxSummary, skipped: &[Skipped]) -> String {
    let mut line = format!(
        "{mailboxes} mailbox{}, {} message{}, {}, {}",
        if mailboxes == 1 { "" } else { "es" },
        total.messages,
        if total.messages == 1 { "" } else { "s" },
        human_bytes(total.size),
        total.range()
    );
    if total.undated > 0 {
        line.push_str(&format!(" ({} undated)", total.undated));
    }
    if !skipped.is_empty() {
        let mut by: std::collections::BTreeMap<&str, u64> = Default::default();
        for s in skipped {
            *by.entry(s.reason()).or_default() += 1;
        }
        let parts: Vec<String> = by.iter().map(|(r, n)| format!("{n} {r}")).collect();
        line.push_str(&format!("; skipped {}", parts.join(", ")));
    }
    line
}

#[cfg(test)]
mod tests {
    use super::super::width;
    use super::*;
    use crate::core::message::{Flag, Flags, MailboxName};

    #[test]
    fn summaries_count_sizes_and_ranges() {
        let mut a = MailboxSummary::new("INBOX");
        a.add(10, Some(1_700_000_000));
        a.add(5, None);
        a.add(7, Some(1_600_000_000));
        assert_eq!((a.messages, a.size, a.undated), (3, 22, 1));
        assert_eq!(a.first_date.as_deref(), Some("2020-09-13T12:26:40Z"));
        assert_eq!(a.last_date.as_deref(), Some("2023-11-14T22:13:20Z"));
        let mut b = MailboxSummary::new("Sent");
        b.add(1, Some(1_800_000_000));
        let mut t = MailboxSummary::default();
        t.merge(&a);
        t.merge(&b);
        t.merge(&MailboxSummary::new("empty"));
        assert_eq!((t.messages, t.size, t.undated), (4, 23, 1));
        assert_eq!(t.range(), "2020-09-13 to 2027-01-15");
        assert_eq!(
            total_line(3, &t, &[Skipped::Empty { origin: "x".into() }]),
            "3 mailboxes, 4 messages, 23 B, 2020-09-13 to 2027-01-15 (1 undated); skipped 1 empty"
        );
        assert_eq!(
            total_line(1, &MailboxSummary::default(), &[]),
            "1 mailbox, 0 messages, 0 B, no dates"
        );
    }

    #[test]
    fn rows_align_by_display_width() {
        let mut flags = Flags::new();
        flags.insert(Flag::Seen);
        flags.insert(Flag::Keyword("$Work".into()));
        let msg = |from: &str, subject: &str| ArchivedMessage {
            mailbox: MailboxName::new("日本"),
            raw: format!("From: {from}\nSubject: {subject}\n\nx\n").into_bytes(),
            flags: flags.clone(),
            internal_date: Some(1_709_802_307),
            date_source: DateSource::Ledger,
            origin: "o".into(),
            sha256: "00".into(),
            source_id: None,
        };
        let wide = MessageLine::of(&msg("=?UTF-8?B?55Sw5Lit?= <t@x.jp>", "会議"));
        let narrow = MessageLine::of(&msg("ab@x.jp", "meeting"));
        assert_eq!(wide.flags, vec!["\\Seen", "$Work"]);
        let (rw, rn) = (wide.row(7), narrow.row(7));
        assert!(
            rw.starts_with("日本     2024-03-07 09:05       55 B  S      田中"),
            "{rw}"
        );
        // The subject starts at the same display column in both rows and in the header.
        let col = |row: &str, subject: &str| width(&row[..row.find(subject).unwrap()]);
        assert_eq!(col(&rw, "会議"), col(&rn, "meeting"));
        assert_eq!(col(&rw, "会議"), col(&message_header(7), "SUBJECT"));
        let json = serde_json::to_value(&wide).unwrap();
        assert_eq!(json["from_name"], "田中");
        assert_eq!(json["from_address"], "t@x.jp");
        assert_eq!(json["subject"], "会議");
        assert_eq!(json["date"], "2024-03-07T09:05:07Z");
        assert_eq!(json["date_source"], "ledger");
    }
}
