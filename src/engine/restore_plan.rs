//! The pure decisions of `restore` (issue 4), table-tested: where a source mailbox goes on the
//! target ([`map_mailbox`], [`special_use_of`]) and whether a message is already there
//! ([`MailboxMatch`]). The engine in [`super::restore`] does the I/O around them.
//!
//! Folder mapping, in this order:
//! 1. `--map SRC=DST` (repeatable): a source mailbox named `SRC` goes to `DST`, and its
//!    children `SRC/x` to `DST/x`; the longest matching `SRC` wins. A mapped mailbox is not
//!    also special-use mapped.
//! 2. `--into PREFIX`: every mailbox goes under `PREFIX` (`INBOX` becomes `PREFIX/INBOX`).
//!    Special-use mapping is off: the user asked for everything under one folder.
//! 3. Special use (RFC 6154): a source mailbox whose name says it is the Sent, Trash, Drafts or
//!    Junk folder (see [`special_use_of`]) goes to the target mailbox carrying that attribute,
//!    when the target has one (children follow it); otherwise it keeps its name.
//!
//! No-duplicate matching (DESIGN.md invariant 4): a source mailbox may really hold the same
//! bytes twice (case 21), so presence is counted, not just tested: each upload record and each
//! target message accounts for at most one source message.

use std::collections::{HashMap, HashSet};

use crate::core::message::MailboxName;
use crate::protocol::imap::SpecialUse;

/// The special use a source mailbox's name suggests: `Sent`, `Sent Items`, `Sent Messages`,
/// `Sent Mail`, `[Gmail]/Sent Mail` are [`SpecialUse::Sent`]; `Trash`, `Deleted Items`,
/// `Deleted Messages`, `Bin`, `[Gmail]/Trash` are [`SpecialUse::Trash`]; `Drafts`, `Draft`
/// are [`SpecialUse::Drafts`]; `Junk`, `Spam`, `Junk E-mail`, `Junk Email`, `Bulk Mail` are
/// [`SpecialUse::Junk`]. Case-insensitive; a leading `INBOX/` (Courier-style) or `[Gmail]/`
/// (also `[Google Mail]/`) level is ignored. Only whole names count: `Sent/2023` is not.
pub fn special_use_of(name: &MailboxName) -> Option<SpecialUse> {
    let lower = name.as_str().to_lowercase();
    let mut base = lower.as_str();
    for prefix in ["inbox/", "[gmail]/", "[google mail]/"] {
        if let Some(rest) = base.strip_prefix(prefix) {
            base = rest;
        }
    }
    Some(match base {
        "sent" | "sent items" | "sent messages" | "sent mail" => SpecialUse::Sent,
        "trash" | "deleted items" | "deleted messages" | "bin" => SpecialUse::Trash,
        "drafts" | "draft" => SpecialUse::Drafts,
        "junk" | "spam" | "junk e-mail" | "junk email" | "bulk mail" => SpecialUse::Junk,
        _ => return None,
    })
}

/// Where a source mailbox goes, decoded (levels joined with `/`), and why.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Mapped {
    /// The target mailbox's levels.
    pub levels: Vec<String>,
    /// How the name was chosen: `same`, `map`, `into`, `special-use`.
    pub rule: &'static str,
}

/// The user's mapping choices, validated.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MappingRules {
    /// `--into PREFIX`, as levels.
    pub into: Vec<String>,
    /// `--map SRC=DST`, as (source name, target levels).
    pub maps: Vec<(MailboxName, Vec<String>)>,
}

/// Splits a mailbox name written by the user (`Archive/2023`) into levels; empty levels
/// (`a//b`, a leading or trailing `/`) are refused by returning `None`.
pub fn levels_of(name: &str) -> Option<Vec<String>> {
    let levels: Vec<String> = name.split('/').map(str::to_string).collect();
    (!levels.iter().any(String::is_empty)).then_some(levels)
}

/// Maps a source mailbox to its target (see the module documentation). `special` is the
/// target's special-use mailboxes as (use, decoded name).
pub fn map_mailbox(
    source: &MailboxName,
    rules: &MappingRules,
    special: &[(SpecialUse, MailboxName)],
) -> Mapped {
    let src = source.as_str();
    let src_levels: Vec<String> = source.levels();
    let best = rules
        .maps
        .iter()
        .filter(|(from, _)| {
            src == from.as_str()
                || src
                    .strip_prefix(from.as_str())
                    .is_some_and(|r| r.starts_with('/'))
        })
        .max_by_key(|(from, _)| from.as_str().len());
    if let Some((from, to)) = best {
        let skip = from.levels().len();
        let mut levels = to.clone();
        levels.extend(src_levels.into_iter().skip(skip));
        return Mapped {
            levels,
            rule: "map",
        };
    }
    if !rules.into.is_empty() {
        let mut levels = rules.into.clone();
        levels.extend(src_levels);
        return Mapped {
            levels,
            rule: "into",
        };
    }
    // Special use: the mailbox itself, or a child of it.
    for n in (1..=src_levels.len()).rev() {
        let head = MailboxName::from_levels(&src_levels[..n]);
        let Some(usage) = special_use_of(&head) else {
            continue;
        };
        if let Some((_, target)) = special.iter().find(|(u, _)| *u == usage) {
            let mut levels: Vec<String> = target.levels();
            levels.extend(src_levels.into_iter().skip(n));
            return Mapped {
                levels,
                rule: "special-use",
            };
        }
        break;
    }
    Mapped {
        levels: src_levels,
        rule: "same",
    }
}

/// A message of the target mailbox, from its listing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TargetMessage {
    pub uid: u32,
    /// RFC822.SIZE (CRLF line ends).
    pub size: u64,
    /// INTERNALDATE, seconds since the UNIX epoch; `None` when the target sent none that can
    /// be read (such a message stays a candidate: only its content can tell).
    pub internal_date: Option<i64>,
}

/// What the matcher says about one source message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Presence {
    /// The uploads ledger records it (one record used up).
    Recorded,
    /// Not recorded, and the target mailbox holds no unclaimed message of its size: upload it.
    Absent,
    /// Not recorded; these unclaimed target messages have its size (and its INTERNALDATE when
    /// `same_date` was asked): confirm one (Message-ID search or content) and
    /// [`MailboxMatch::claim`] it, else upload.
    Candidates(Vec<u32>),
}

/// Presence of source messages in one target mailbox: upload records per content hash, and
/// the target's listing taken before anything was appended to it by this run (so a message
/// this run appends is never taken for a second, identical source message).
#[derive(Debug, Clone, Default)]
pub struct MailboxMatch {
    /// Upload records not yet used, per SHA-256.
    recorded: HashMap<String, u64>,
    /// The listing, when taken.
    listing: Option<Vec<TargetMessage>>,
    claimed: HashSet<u32>,
}

impl MailboxMatch {
    /// A matcher with the upload records of the mailbox: (sha256, number of records).
    pub fn new(recorded: HashMap<String, u64>) -> Self {
        MailboxMatch {
            recorded,
            ..MailboxMatch::default()
        }
    }

    /// True until [`set_listing`](Self::set_listing): the engine lists the mailbox before it
    /// matches the first message that is not recorded (and so before its first APPEND).
    pub fn needs_listing(&self) -> bool {
        self.listing.is_none()
    }

    /// Sets the target's listing (empty for a mailbox this run created).
    pub fn set_listing(&mut self, listing: Vec<TargetMessage>) {
        self.listing = Some(listing);
    }

    /// Uses up one upload record of `sha256`, if one is left.
    pub fn take_recorded(&mut self, sha256: &str) -> bool {
        match self.recorded.get_mut(sha256) {
            Some(n) if *n > 0 => {
                *n -= 1;
                true
            }
            _ => false,
        }
    }

    /// Decides about a message of `size` octets on the wire: recorded, absent, or candidates
    /// to confirm. With `date`, candidates must also have that INTERNALDATE (for messages
    /// without Message-ID). Uses up a record when there is one. A listing must be set before
    /// a message that is not recorded is matched (else it is taken as empty).
    pub fn presence(&mut self, sha256: &str, size: u64, date: Option<i64>) -> Presence {
        if self.take_recorded(sha256) {
            return Presence::Recorded;
        }
        let uids: Vec<u32> = self
            .listing
            .iter()
            .flatten()
            .filter(|m| {
                m.size == size
                    && date.is_none_or(|d| m.internal_date.is_none_or(|t| t == d))
                    && !self.claimed.contains(&m.uid)
            })
            .map(|m| m.uid)
            .collect();
        if uids.is_empty() {
            Presence::Absent
        } else {
            Presence::Candidates(uids)
        }
    }

    /// True when the listing holds an unclaimed message of `size` octets (or no listing was
    /// set): only then can [`presence`](Self::presence) give candidates, so only then is it
    /// worth reading the message's Message-ID.
    pub fn may_hold(&self, size: u64) -> bool {
        self.listing.as_ref().is_none_or(|l| {
            l.iter()
                .any(|m| m.size == size && !self.claimed.contains(&m.uid))
        })
    }

    /// Marks a target message as accounted for by a source message.
    pub fn claim(&mut self, uid: u32) {
        self.claimed.insert(uid);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rules(into: &str, maps: &[(&str, &str)]) -> MappingRules {
        MappingRules {
            into: if into.is_empty() {
                Vec::new()
            } else {
                levels_of(into).unwrap()
            },
            maps: maps
                .iter()
                .map(|(a, b)| (MailboxName::new(a), levels_of(b).unwrap()))
                .collect(),
        }
    }

    #[test]
    fn special_use_names() {
        for (name, want) in [
            ("Sent", Some(SpecialUse::Sent)),
            ("sent items", Some(SpecialUse::Sent)),
            ("Sent Messages", Some(SpecialUse::Sent)),
            ("[Gmail]/Sent Mail", Some(SpecialUse::Sent)),
            ("INBOX/Sent", Some(SpecialUse::Sent)),
            ("Deleted Items", Some(SpecialUse::Trash)),
            ("TRASH", Some(SpecialUse::Trash)),
            ("Drafts", Some(SpecialUse::Drafts)),
            ("Junk E-mail", Some(SpecialUse::Junk)),
            ("[Gmail]/Spam", Some(SpecialUse::Junk)),
            ("Sent/2023", None),
            ("INBOX", None),
            ("Archive", None),
            ("Sentinel", None),
        ] {
            assert_eq!(special_use_of(&MailboxName::new(name)), want, "{name}");
        }
    }

    /// (source, --into, --map, target has special-use mailboxes, expected target, rule).
    type MapCase<'a> = (
        &'a str,
        &'a str,
        Vec<(&'a str, &'a str)>,
        bool,
        &'a str,
        &'a str,
    );

    #[test]
    fn mapping_table() {
        let special = vec![
            (SpecialUse::Sent, MailboxName::new("Gesendet")),
            (SpecialUse::Trash, MailboxName::new("INBOX/Trash")),
        ];
        let none: Vec<(SpecialUse, MailboxName)> = Vec::new();
        // (source, into, maps, target has special-use, expected target, rule)
        let cases: Vec<MapCase> = vec![
            ("INBOX", "", vec![], true, "INBOX", "same"),
            ("Archive/2023", "", vec![], true, "Archive/2023", "same"),
            ("Sent Items", "", vec![], true, "Gesendet", "special-use"),
            (
                "Sent Items/2023",
                "",
                vec![],
                true,
                "Gesendet/2023",
                "special-use",
            ),
            ("Sent Items", "", vec![], false, "Sent Items", "same"),
            (
                "Deleted Items",
                "",
                vec![],
                true,
                "INBOX/Trash",
                "special-use",
            ),
            ("Drafts", "", vec![], true, "Drafts", "same"), // target has no \Drafts
            ("INBOX", "Restored", vec![], true, "Restored/INBOX", "into"),
            ("Sent", "Old/2020", vec![], true, "Old/2020/Sent", "into"),
            ("Work", "", vec![("Work", "Job")], true, "Job", "map"),
            ("Work/A", "", vec![("Work", "Job")], true, "Job/A", "map"),
            (
                "Workshop",
                "",
                vec![("Work", "Job")],
                true,
                "Workshop",
                "same",
            ),
            (
                "Work/A/B",
                "",
                vec![("Work", "Job"), ("Work/A", "Alpha")],
                true,
                "Alpha/B",
                "map",
            ),
            ("Sent", "X", vec![("Sent", "Outbox")], true, "Outbox", "map"),
            ("inbox", "", vec![("INBOX", "Old")], true, "Old", "map"),
        ];
        for (src, into, maps, has_special, want, rule) in cases {
            let sp = if has_special { &special } else { &none };
            let got = map_mailbox(&MailboxName::new(src), &rules(into, &maps), sp);
            assert_eq!(got.levels.join("/"), want, "{src} {into} {maps:?}");
            assert_eq!(got.rule, rule, "{src}");
        }
    }

    #[test]
    fn levels_refuse_empty() {
        assert_eq!(levels_of("a/b"), Some(vec!["a".into(), "b".into()]));
        assert_eq!(levels_of("a//b"), None);
        assert_eq!(levels_of("/a"), None);
        assert_eq!(levels_of(""), None);
    }

    fn tm(uid: u32, size: u64, date: i64) -> TargetMessage {
        TargetMessage {
            uid,
            size,
            internal_date: Some(date),
        }
    }

    #[test]
    fn recorded_copies_are_counted() {
        // Case 21: the source holds the same bytes twice; one record covers one copy.
        let mut m = MailboxMatch::new([("aa".to_string(), 1)].into_iter().collect());
        m.set_listing(vec![]);
        assert_eq!(m.presence("aa", 10, None), Presence::Recorded);
        assert_eq!(m.presence("aa", 10, None), Presence::Absent);
        assert_eq!(m.presence("bb", 10, None), Presence::Absent);
    }

    #[test]
    fn candidates_by_size_and_date_each_claimed_once() {
        let mut m = MailboxMatch::new(HashMap::new());
        assert!(m.needs_listing());
        m.set_listing(vec![tm(1, 100, 5), tm(2, 100, 6), tm(3, 200, 5)]);
        assert!(!m.needs_listing());
        // (sha, size, date) -> expected
        let table: Vec<(u64, Option<i64>, Presence)> = vec![
            (100, None, Presence::Candidates(vec![1, 2])),
            (100, Some(6), Presence::Candidates(vec![2])),
            (100, Some(7), Presence::Absent),
            (300, None, Presence::Absent),
            (200, Some(5), Presence::Candidates(vec![3])),
        ];
        for (size, date, want) in table {
            assert_eq!(m.presence("x", size, date), want, "{size} {date:?}");
        }
        m.claim(2);
        assert_eq!(m.presence("x", 100, Some(6)), Presence::Absent);
        assert_eq!(m.presence("x", 100, None), Presence::Candidates(vec![1]));
        m.claim(1);
        assert_eq!(m.presence("x", 100, None), Presence::Absent);
        assert!(!m.may_hold(100));
        assert!(m.may_hold(200));
        assert!(!m.may_hold(300));
        assert!(MailboxMatch::default().may_hold(1));
    }
}
