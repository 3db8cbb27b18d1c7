//! Google Takeout mbox files: Gmail's export (`All mail Including Spam and Trash.mbox`) is one
//! mbox whose messages carry an `X-Gmail-Labels:` header (`Inbox,Important,Opened,Receipts/2024`).
//! Read as `mbox:FILE`, such a file is shown as one mailbox per label instead of one mailbox
//! for the file, so it restores to any IMAP account as folders (and `convert` writes one copy
//! per label), with flags from its system labels:
//!
//! | label | becomes |
//! | --- | --- |
//! | `Inbox`, `Sent`, `Drafts` | the mailboxes `INBOX`, `Sent`, `Drafts` |
//! | a user label (`Receipts/2024`) | that mailbox (levels at `/`) |
//! | `Opened` / `Unread` | `\Seen` / not (a message with neither is taken as read) |
//! | `Starred` | `\Flagged` |
//! | `Important` | the keyword `$Important` |
//! | `Archived`, `Category …`, `IMAP_…` | nothing |
//! | `Spam`, `Trash`, `Chat` | the message is left out (counted) |
//!
//! A message with no mailbox label is in `Archive`. The message bytes are kept as they are
//! (the `X-Gmail-Labels` header included). The file is indexed once (label -> entries, by
//! offset and length); each mailbox then reads only its own entries.

use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufReader, Read, Seek, SeekFrom};
use std::path::Path;

use mail_parser::{HeaderValue, MessageParser};

use crate::archive::mbox::format::{Dialect, MboxMessage, MboxReader};
use crate::core::error::{Error, Result};
use crate::core::message::{Flag, Flags, MailboxName};

/// The header Takeout writes.
const LABELS_HEADER: &str = "X-Gmail-Labels";

/// The mailbox of messages without a mailbox label.
pub const ARCHIVE: &str = "Archive";

/// The keyword `Important` becomes.
pub const IMPORTANT: &str = "$Important";

/// The labels of a message's header block (`X-Gmail-Labels`, encoded words decoded), split at
/// commas outside double quotes, trimmed, unquoted; `None` without the header. Pure.
pub fn labels_of(header: &[u8]) -> Option<Vec<String>> {
    let msg = MessageParser::default()
        .header_text(mail_parser::HeaderName::Other(LABELS_HEADER.into()))
        .parse_headers(header)?;
    let text = match msg.header(LABELS_HEADER)? {
        HeaderValue::Text(t) => t.to_string(),
        HeaderValue::TextList(v) => v.join(","),
        _ => return Some(Vec::new()),
    };
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut quoted = false;
    for c in text.chars() {
        match c {
            '"' => quoted = !quoted,
            ',' if !quoted => {
                out.push(std::mem::take(&mut cur).trim().to_string());
            }
            c => cur.push(c),
        }
    }
    out.push(cur.trim().to_string());
    out.retain(|l| !l.is_empty());
    Some(out)
}

/// Where a Takeout message goes: its mailboxes (empty: left out) and flags.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Placement {
    pub mailboxes: BTreeSet<MailboxName>,
    pub flags: Flags,
}

/// The mailboxes and flags of a message with Takeout `labels` (see the module table). Pure.
pub fn placement(labels: &[String]) -> Placement {
    let mut mailboxes = BTreeSet::new();
    let mut flags = Flags::new();
    let mut seen = true;
    for label in labels {
        match label.to_ascii_lowercase().as_str() {
            "inbox" => {
                mailboxes.insert(MailboxName::inbox());
            }
            "sent" => {
                mailboxes.insert(MailboxName::new("Sent"));
            }
            "drafts" | "draft" => {
                mailboxes.insert(MailboxName::new("Drafts"));
            }
            "spam" | "trash" | "chat" => {
                return Placement {
                    mailboxes: BTreeSet::new(),
                    flags,
                }
            }
            "unread" => seen = false,
            "opened" => seen = true,
            "starred" => flags.insert(Flag::Flagged),
            "important" => flags.insert(Flag::Keyword(IMPORTANT.into())),
            "archived" => {}
            l if l.starts_with("category ") || l.starts_with("imap_") => {}
            _ => {
                let levels: Vec<&str> = label.split('/').collect();
                mailboxes.insert(MailboxName::from_levels(&levels));
            }
        }
    }
    if seen {
        flags.insert(Flag::Seen);
    }
    if mailboxes.is_empty() {
        mailboxes.insert(MailboxName::new(ARCHIVE));
    }
    Placement { mailboxes, flags }
}

/// One message of a Takeout file: where its entry is and its flags.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// Offset of its separator line, in bytes.
    pub offset: u64,
    /// Length of its entry (separator line included), in bytes.
    pub len: u64,
    pub flags: Flags,
}

/// A Takeout file's index: each mailbox's entries, in file order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Index {
    pub by_mailbox: BTreeMap<MailboxName, Vec<Entry>>,
    /// Messages left out (Spam, Trash, Chat).
    pub left_out: u64,
}

/// True when the first message of the mbox at `path` has an `X-Gmail-Labels` header (a Google
/// Takeout export). Reads at most the first 256 KiB.
pub fn is_takeout(path: &Path) -> bool {
    let Ok(f) = std::fs::File::open(path) else {
        return false;
    };
    let mut head = Vec::new();
    if f.take(256 * 1024).read_to_end(&mut head).is_err() {
        return false;
    }
    // The first message's header block: after the separator line, up to the empty line.
    let Some(start) = head.iter().position(|&b| b == b'\n').map(|p| p + 1) else {
        return false;
    };
    let body = &head[start..];
    let end = body
        .windows(2)
        .position(|w| w == b"\n\n")
        .or_else(|| body.windows(4).position(|w| w == b"\r\n\r\n"))
        .unwrap_or(body.len());
    body[..end].split(|&b| b == b'\n').any(|l| {
        l.len() > LABELS_HEADER.len()
            && l[..LABELS_HEADER.len()].eq_ignore_ascii_case(LABELS_HEADER.as_bytes())
            && l[LABELS_HEADER.len()] == b':'
    })
}

/// Indexes the Takeout file at `path` in one pass (memory: one message at a time, plus a few
/// dozen bytes per message).
///
/// Errors: [`Error::ArchiveIo`] / [`Error::Archive`] naming the file when it cannot be read.
pub fn index(path: &Path, dialect: Dialect) -> Result<Index> {
    let file = std::fs::File::open(path).map_err(|e| Error::archive_io(path, e))?;
    let len = file
        .metadata()
        .map_err(|e| Error::archive_io(path, e))?
        .len();
    let reader = MboxReader::new(BufReader::with_capacity(64 * 1024, file))
        .dialect(dialect)
        .with_path(path);
    let mut out = Index::default();
    let mut pending: Vec<(u64, Placement)> = Vec::new();
    for m in reader {
        let m = m?;
        let p = match m.oversize {
            // Too large to read its header here: listed in Archive, refused when read.
            Some(_) => placement(&[]),
            None => placement(&labels_of(header_block(&m.raw)).unwrap_or_default()),
        };
        pending.push((m.offset, p));
    }
    let ends: Vec<u64> = pending
        .iter()
        .skip(1)
        .map(|(o, _)| *o)
        .chain(std::iter::once(len))
        .collect();
    for ((offset, p), end) in pending.into_iter().zip(ends) {
        if p.mailboxes.is_empty() {
            out.left_out += 1;
            continue;
        }
        for mb in p.mailboxes {
            out.by_mailbox.entry(mb).or_default().push(Entry {
                offset,
                len: end.saturating_sub(offset),
                flags: p.flags.clone(),
            });
        }
    }
    Ok(out)
}

/// The header block of a message (up to its first empty line).
fn header_block(raw: &[u8]) -> &[u8] {
    let end = raw
        .windows(2)
        .position(|w| w == b"\n\n")
        .map(|p| p + 1)
        .unwrap_or(raw.len());
    &raw[..end]
}

/// Reads the one message of `entry` from the file at `path`.
///
/// Errors: [`Error::ArchiveIo`] when the file cannot be read; `Ok(None)` when the entry holds
/// no message (the file changed since it was indexed).
pub fn read_entry(path: &Path, entry: &Entry, dialect: Dialect) -> Result<Option<MboxMessage>> {
    let mut file = std::fs::File::open(path).map_err(|e| Error::archive_io(path, e))?;
    file.seek(SeekFrom::Start(entry.offset))
        .map_err(|e| Error::archive_io(path, e))?;
    let reader = MboxReader::new(BufReader::new(file.take(entry.len)))
        .dialect(dialect)
        .with_path(path);
    match reader.into_iter().next() {
        Some(m) => {
            let mut m = m?;
            m.offset += entry.offset;
            Ok(Some(m))
        }
        None => Ok(None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn takeout_labels_become_mailboxes_and_flags() {
        // (X-Gmail-Labels, mailboxes, flags; no mailbox: left out)
        let table: &[(&str, &[&str], &str)] = &[
            ("Inbox,Opened", &["INBOX"], "\\Seen"),
            ("Inbox,Unread,Important", &["INBOX"], "$Important"),
            ("Archived,Opened", &["Archive"], "\\Seen"),
            ("Sent", &["Sent"], "\\Seen"),
            (
                "Receipts/2024,Inbox,Starred,Category Updates",
                &["INBOX", "Receipts/2024"],
                "\\Seen \\Flagged",
            ),
            ("\"Work, old\",Opened", &["Work, old"], "\\Seen"),
            (
                "=?UTF-8?Q?Rechnungen=2F=C3=84rger?=",
                &["Rechnungen/Ärger"],
                "\\Seen",
            ),
            ("Spam,Unread", &[], ""),
            ("Trash,Inbox", &[], ""),
            ("Chat", &[], ""),
            ("", &["Archive"], "\\Seen"),
        ];
        for (labels, mailboxes, flags) in table {
            let header = format!("From: a@b\nX-Gmail-Labels: {labels}\nSubject: x\n\n");
            let l = labels_of(header.as_bytes()).unwrap();
            let p = placement(&l);
            let got: Vec<&str> = p.mailboxes.iter().map(|m| m.as_str()).collect();
            assert_eq!(got, *mailboxes, "{labels}");
            if !mailboxes.is_empty() {
                assert_eq!(p.flags.to_imap_list(), *flags, "{labels}");
            }
        }
        assert_eq!(labels_of(b"From: a@b\nSubject: x\n\n"), None);
    }

    #[test]
    fn a_takeout_file_is_indexed_and_each_entry_read_alone() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("All mail Including Spam and Trash.mbox");
        let mbox = "From 1@xxx Mon Mar 03 09:00:00 +0000 2014\nX-Gmail-Labels: Inbox,Work\nSubject: one\n\nbody one\n\nFrom 2@xxx Mon Mar 03 10:00:00 +0000 2014\nX-Gmail-Labels: Spam\nSubject: two\n\nbody two\n\nFrom 3@xxx Mon Mar 03 11:00:00 +0000 2014\nX-Gmail-Labels: Archived,Unread\nSubject: three\n\n>From the start\n";
        std::fs::write(&path, mbox).unwrap();
        assert!(is_takeout(&path));
        let idx = index(&path, Dialect::Mboxrd).unwrap();
        assert_eq!(idx.left_out, 1);
        let names: Vec<&str> = idx.by_mailbox.keys().map(|m| m.as_str()).collect();
        assert_eq!(names, ["Archive", "INBOX", "Work"]);
        let e = &idx.by_mailbox[&MailboxName::new("Archive")][0];
        assert!(e.flags.is_empty());
        let m = read_entry(&path, e, Dialect::Mboxrd).unwrap().unwrap();
        assert_eq!(
            m.raw,
            b"X-Gmail-Labels: Archived,Unread\nSubject: three\n\nFrom the start\n"
        );
        let e = &idx.by_mailbox[&MailboxName::inbox()][0];
        let m = read_entry(&path, e, Dialect::Mboxrd).unwrap().unwrap();
        assert_eq!(
            m.raw,
            b"X-Gmail-Labels: Inbox,Work\nSubject: one\n\nbody one\n"
        );
        assert_eq!(m.offset, 0);
        let other = dir.path().join("plain.mbox");
        std::fs::write(&other, "From a Mon Mar 03 09:00:00 2014\nSubject: x\n\nx\n").unwrap();
        assert!(!is_takeout(&other));
    }
}
