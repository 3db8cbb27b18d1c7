//! Pure decisions of the IMAP backup, one function per question, table-tested:
//! which mailboxes to back up, whether a mailbox changed at all, and what to do with each
//! message of a listing (fetch, update flags, re-key after a UIDVALIDITY change, remove with
//! `--mirror`, leave alone).

use std::collections::{HashMap, HashSet};

use globset::{GlobSet, GlobSetBuilder};

pub use crate::archive::ledger::{KnownMailbox, MailboxNow};
use crate::core::error::{Error, Result};
use crate::core::message::Flags;

/// `--folder` / `--exclude` patterns over decoded mailbox names (levels joined with `/`).
#[derive(Debug, Clone)]
pub struct FolderFilter {
    include: Option<GlobSet>,
    exclude: Option<GlobSet>,
    /// The patterns as given, in the globsets' order, for [`FolderFilter::unmatched`].
    include_patterns: Vec<String>,
    exclude_patterns: Vec<String>,
}

/// The prefix of a `--folder` / `--exclude` pattern written in full glob syntax.
pub const GLOB_PREFIX: &str = "glob:";

/// A pattern as a glob: `*` (one level), `**` (any levels) and `?` are wildcards; `[`, `]`,
/// `{`, `}` and `\` match themselves (Gmail's `[Gmail]/All Mail`, names with braces), unless
/// the pattern starts with [`GLOB_PREFIX`], which gives the whole glob syntax (character
/// classes `[0-9]`, alternatives `{a,b}`, `\` escapes). Pure.
pub fn pattern_glob(pattern: &str) -> String {
    match pattern.strip_prefix(GLOB_PREFIX) {
        Some(glob) => glob.to_string(),
        None => {
            let mut out = String::with_capacity(pattern.len());
            for c in pattern.chars() {
                if matches!(c, '[' | ']' | '{' | '}' | '\\') {
                    out.push('\\');
                }
                out.push(c);
            }
            out
        }
    }
}

fn globset(patterns: &[String], flag: &str) -> Result<Option<GlobSet>> {
    if patterns.is_empty() {
        return Ok(None);
    }
    let mut b = GlobSetBuilder::new();
    for given in patterns {
        let p = pattern_glob(given);
        // INBOX is case-insensitive (RFC 3501 5.1) and names spell it `INBOX`.
        let p = &match p.split_once('/') {
            Some((first, rest)) if first.eq_ignore_ascii_case("INBOX") => format!("INBOX/{rest}"),
            None if p.eq_ignore_ascii_case("INBOX") => "INBOX".to_string(),
            _ => p.clone(),
        };
        // `*` does not cross `/` so `Archive/*` means the direct children; `**` crosses.
        let glob = globset::GlobBuilder::new(p)
            .literal_separator(true)
            .backslash_escape(true)
            .build()
            .map_err(|e| Error::Usage(format!("{flag} `{given}`: {e}")))?;
        b.add(glob);
    }
    b.build()
        .map(Some)
        .map_err(|e| Error::Usage(format!("{flag}: {e}")))
}

impl FolderFilter {
    /// Builds a filter; an empty `include` means every mailbox.
    ///
    /// Errors: [`Error::Usage`] for a malformed pattern.
    pub fn new(include: &[String], exclude: &[String]) -> Result<FolderFilter> {
        Ok(FolderFilter {
            include: globset(include, "--folder")?,
            exclude: globset(exclude, "--exclude")?,
            include_patterns: include.to_vec(),
            exclude_patterns: exclude.to_vec(),
        })
    }

    /// The patterns that match none of `names` (every mailbox the server listed), as
    /// ``--folder `Nope` `` / ``--exclude `Wrok` ``: a typo would otherwise go unnoticed
    /// (a mistyped `--exclude` backs up the mailbox it meant to skip, a mistyped `--folder`
    /// next to a correct one leaves out the mailbox it meant).
    pub fn unmatched<'a>(&self, names: impl IntoIterator<Item = &'a str>) -> Vec<String> {
        let mut hit_in = vec![false; self.include_patterns.len()];
        let mut hit_ex = vec![false; self.exclude_patterns.len()];
        for name in names {
            for (set, hit) in [(&self.include, &mut hit_in), (&self.exclude, &mut hit_ex)] {
                if let Some(set) = set {
                    for i in set.matches(name) {
                        hit[i] = true;
                    }
                }
            }
        }
        let flagged = |flag: &str, pats: &[String], hit: &[bool]| -> Vec<String> {
            pats.iter()
                .zip(hit)
                .filter(|(_, h)| !**h)
                .map(|(p, _)| format!("{flag} `{p}`"))
                .collect()
        };
        let mut out = flagged("--folder", &self.include_patterns, &hit_in);
        out.extend(flagged("--exclude", &self.exclude_patterns, &hit_ex));
        out
    }

    /// Checks the patterns against `names` (every mailbox the server listed): a `--folder`
    /// pattern that matches none is a usage error naming it (a cron job's typo, or a folder
    /// renamed on the server, must not back up less than meant, silently, every night); the
    /// `--exclude` patterns that match none are returned as warning lines about `account`.
    ///
    /// Errors: [`Error::Usage`]: `ACCOUNT: no mailbox matches --folder `Nope` (...)`.
    pub fn check<'a>(
        &self,
        account: &str,
        names: impl IntoIterator<Item = &'a str>,
    ) -> Result<Vec<String>> {
        let unmatched = self.unmatched(names);
        let (folders, excludes): (Vec<String>, Vec<String>) = unmatched
            .into_iter()
            .partition(|p| p.starts_with("--folder"));
        if !folders.is_empty() {
            return Err(Error::Usage(format!(
                "{account}: no mailbox matches {} (`mailkeep list` shows the mailboxes; `Archive` does not include its subfolders, `Archive/**` does)",
                folders.join(", ")
            )));
        }
        Ok(excludes
            .iter()
            .map(|p| {
                format!("{account}: {p} matches no mailbox on the server (`mailkeep list` shows the mailboxes)")
            })
            .collect())
    }

    /// True when `--folder` or `--exclude` was given (the filter may leave nothing).
    pub fn is_filtering(&self) -> bool {
        self.include.is_some() || self.exclude.is_some()
    }

    /// True when `mailbox` is to be backed up. `INBOX` matches the pattern `INBOX` in any case.
    pub fn wants(&self, mailbox: &str) -> bool {
        let included = self.include.as_ref().is_none_or(|g| g.is_match(mailbox));
        let excluded = self.exclude.as_ref().is_some_and(|g| g.is_match(mailbox));
        included && !excluded
    }
}

/// True when a mailbox certainly has nothing new for the archive: same UIDVALIDITY, same
/// UIDNEXT and message count, and (so that flag changes are not missed) the same
/// HIGHESTMODSEQ. Without CONDSTORE a mailbox is never skipped (flags may have changed).
pub fn unchanged(known: Option<&KnownMailbox>, now: &MailboxNow, mirror: bool) -> bool {
    let Some(k) = known else { return false };
    let _ = mirror; // removals change MESSAGES (and HIGHESTMODSEQ), so mirror needs no more.
    k.uidvalidity == now.uidvalidity
        && k.uidnext.is_some()
        && k.uidnext == now.uidnext
        && k.messages == Some(now.messages)
        && k.highestmodseq.is_some()
        && k.highestmodseq == now.highestmodseq
}

/// One message of a server listing (UID FETCH 1:* (UID FLAGS RFC822.SIZE INTERNALDATE)).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerMessage {
    pub uid: u32,
    pub flags: Flags,
    /// RFC822.SIZE, octets.
    pub size: u64,
    /// INTERNALDATE, seconds since the UNIX epoch; `None` when the server sent none that can be
    /// read and believed ([`crate::protocol::imap::Listed::internal_date`]).
    pub internal_date: Option<i64>,
}

/// One message the archive holds for a mailbox, as recorded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArchivedMessage {
    pub identity: String,
    pub uidvalidity: u32,
    pub uid: u32,
    pub flags: Flags,
    /// Size the server reported when it was fetched, octets.
    pub wire_size: Option<u64>,
    pub internal_date: i64,
    pub sha256: String,
}

/// Server mailboxes whose names would share one archive mailbox (a level that is not valid
/// modified UTF-7 kept as it is, next to a valid one that decodes to the same text): the wire
/// names of all but the first of each group (in wire-name order), which are not archived
/// (DESIGN.md invariant 5: never merge). `names` is (wire name, archive name). Pure.
pub fn clashing_mailboxes(names: &[(&str, &str)]) -> std::collections::BTreeSet<String> {
    let mut sorted: Vec<&(&str, &str)> = names.iter().collect();
    sorted.sort();
    let mut first: HashMap<&str, &str> = HashMap::new();
    let mut out = std::collections::BTreeSet::new();
    for (wire, name) in sorted {
        match first.get(name) {
            Some(w) if w != wire => {
                out.insert(wire.to_string());
            }
            _ => {
                first.insert(name, wire);
            }
        }
    }
    out
}

/// What to do with one mailbox.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct MailboxPlan {
    /// New on the server: download (in UID order).
    pub fetch: Vec<ServerMessage>,
    /// Archived, flags changed on the server: (identity, new flags). No download.
    pub set_flags: Vec<(String, Flags)>,
    /// Archived under an older UIDVALIDITY and known to be a server message: (old identity,
    /// new UID, flags now). No download. (Always empty now: matches are made by content.)
    pub rekey: Vec<(String, u32, Flags)>,
    /// Archived (current UIDVALIDITY) but gone from the server: removed with `--mirror`,
    /// otherwise kept.
    pub gone: Vec<String>,
    /// Already archived and unchanged.
    pub unchanged: u64,
    /// The UIDVALIDITY changed since the last run (log it once).
    pub uidvalidity_changed: bool,
}

/// Decides what to do with a mailbox from its listing under `uidvalidity` and what the archive
/// holds for it. Pure.
///
/// With an unchanged UIDVALIDITY, messages are matched by UID. After a UIDVALIDITY change
/// (RFC 3501 2.3.1.1: every UID may have been reassigned), every listed message is fetched and
/// the engine matches it by SHA-256 against the archived messages of older UIDVALIDITYs before
/// storing, so nothing is stored twice and nothing is taken for archived on size and date.
pub fn plan_mailbox(
    uidvalidity: u32,
    listing: &[ServerMessage],
    archived: &[ArchivedMessage],
) -> MailboxPlan {
    let mut plan = MailboxPlan::default();
    let current: HashMap<u32, &ArchivedMessage> = archived
        .iter()
        .filter(|a| a.uidvalidity == uidvalidity)
        .map(|a| (a.uid, a))
        .collect();
    let older: Vec<&ArchivedMessage> = archived
        .iter()
        .filter(|a| a.uidvalidity != uidvalidity)
        .collect();
    // Older records already re-keyed in an earlier run have a current twin; only those
    // without one take part in matching.
    plan.uidvalidity_changed = !older.is_empty() && current.is_empty();

    let mut seen = HashSet::new();
    for m in listing {
        if !seen.insert(m.uid) {
            continue;
        }
        if let Some(a) = current.get(&m.uid) {
            if a.flags != m.flags {
                plan.set_flags.push((a.identity.clone(), m.flags.clone()));
            } else {
                plan.unchanged += 1;
            }
            continue;
        }
        // New, or (after a UIDVALIDITY change) perhaps an archived message under a new UID:
        // fetched either way; the engine matches it by SHA-256 before storing. Size and date
        // alone are not proof: two messages can share both.
        plan.fetch.push(m.clone());
    }
    let listed: HashSet<u32> = listing.iter().map(|m| m.uid).collect();
    let mut gone: Vec<&ArchivedMessage> = current
        .values()
        .filter(|a| !listed.contains(&a.uid))
        .copied()
        .collect();
    gone.sort_by_key(|a| a.uid);
    plan.gone = gone.into_iter().map(|a| a.identity.clone()).collect();
    plan.fetch.sort_by_key(|m| m.uid);
    plan
}

/// Splits messages into batches of at most `max_messages` and about `max_bytes` (a message
/// larger than `max_bytes` gets a batch of its own). Pure.
pub fn batches(sizes: &[u64], max_messages: usize, max_bytes: u64) -> Vec<std::ops::Range<usize>> {
    let mut out = Vec::new();
    let mut start = 0;
    while start < sizes.len() {
        let mut end = start;
        let mut bytes = 0;
        while end < sizes.len()
            && end - start < max_messages
            && (end == start || bytes + sizes[end] <= max_bytes)
        {
            bytes += sizes[end];
            end += 1;
        }
        out.push(start..end);
        start = end;
    }
    out
}

// ---------------------------------------------------------------------------------------------
// POP3 identities (DESIGN.md invariant 4: "POP3: (account, UIDL), told apart by content when a
// server repeats a UIDL or has none").
// ---------------------------------------------------------------------------------------------

/// The identity of a POP3 message told apart by content: `<base> SHA <first 16 hex digits of
/// its SHA-256>` (the same form the delete step gives a UIDL the server reused for other bytes).
pub fn pop3_content_twin(base: &str, sha256: &str) -> String {
    format!("{base} SHA {}", &sha256[..16.min(sha256.len())])
}

/// Which messages of a POP3 listing need their content hashed before they can be named, by
/// position in `bases` (each message's base identity: `<key> UIDL <uidl>`, or `<key> CONTENT
/// <header key>` on a server without UIDL). A base needs content when it occurs more than once
/// in this listing (RFC 1939 7 says a unique-id names one message; some servers repeat one),
/// or when the ledger (`recorded`: identity -> SHA-256) holds content twins of it (the
/// duplicates of an earlier run: the one left now must be matched with the right one). Every
/// other message keeps its base identity, exactly as archives made before this rule. Pure.
pub fn pop3_content_needed(bases: &[&str], recorded: &HashMap<String, String>) -> Vec<bool> {
    let mut count: HashMap<&str, usize> = HashMap::new();
    for b in bases {
        *count.entry(b).or_default() += 1;
    }
    let twinned: HashSet<&str> = recorded
        .keys()
        .filter_map(|id| id.rsplit_once(" SHA ").map(|(base, _)| base))
        .collect();
    bases
        .iter()
        .map(|b| count[b] > 1 || twinned.contains(b))
        .collect()
}

/// The ledger identity of a POP3 message whose content was hashed (`sha256`: SHA-256 of its
/// normalised bytes, lower-case hex), given its base identity, whether the base is `repeated`
/// in this listing, and the records (`recorded`: identity -> SHA-256). Pure.
///
/// In order: the content twin when it is recorded (archived before as a duplicate); the base
/// when its record holds these very bytes (archived before, when the base was unique); the
/// base when it is unique now and not recorded (a new message keeps a plain identity); else
/// the content twin (a new duplicate, or a base recorded with other bytes). Two messages get
/// the same identity only when their bytes are the same: one listed twice.
pub fn pop3_identity_by_content(
    base: &str,
    repeated: bool,
    sha256: &str,
    recorded: &HashMap<String, String>,
) -> String {
    let twin = pop3_content_twin(base, sha256);
    if recorded.contains_key(&twin) {
        return twin;
    }
    match recorded.get(base) {
        Some(s) if s == sha256 => base.to_string(),
        None if !repeated => base.to_string(),
        _ => twin,
    }
}

/// What a refused batch means once each of its `unstored` messages was asked for alone:
/// `refused` of them were refused again, and `answered` says whether the server answered any
/// of them. Pure.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AfterRefusal {
    /// The refused messages fail, each with its own refusal; the mailbox goes on.
    MessagesFail,
    /// Every one of several messages was refused: the refusal is about the mailbox, which
    /// stops (its messages fail with the batch's refusal, the rest as "not fetched").
    MailboxStops,
}

/// See [`AfterRefusal`]. (A batch of one message is never asked for again: its refusal is
/// that message's.)
pub fn after_refusal(unstored: usize, refused: usize, answered: bool) -> AfterRefusal {
    if unstored > 1 && refused == unstored && !answered {
        AfterRefusal::MailboxStops
    } else {
        AfterRefusal::MessagesFail
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn mailboxes_sharing_an_archive_name_are_refused_but_the_first() {
        let names = [
            ("&AGE", "&AGE"),
            ("&-AGE", "&AGE"),
            ("Work&", "Work&"),
            ("Work&-", "Work&"),
            ("INBOX", "INBOX"),
            ("Sent", "Sent"),
        ];
        let refused: Vec<String> = clashing_mailboxes(&names).into_iter().collect();
        assert_eq!(refused, ["&AGE", "Work&-"]);
        assert!(clashing_mailboxes(&[("a", "a"), ("a", "a")]).is_empty());
    }

    use super::*;

    fn fl(s: &str) -> Flags {
        Flags::from_imap_list(s)
    }

    fn srv(uid: u32, flags: &str, size: u64, date: i64) -> ServerMessage {
        ServerMessage {
            uid,
            flags: fl(flags),
            size,
            internal_date: Some(date),
        }
    }

    fn arc(v: u32, uid: u32, flags: &str, size: u64, date: i64) -> ArchivedMessage {
        ArchivedMessage {
            identity: format!("v{v}u{uid}"),
            uidvalidity: v,
            uid,
            flags: fl(flags),
            wire_size: Some(size),
            internal_date: date,
            sha256: format!("h{uid}"),
        }
    }

    #[test]
    fn folder_filter() {
        let f = FolderFilter::new(
            &["INBOX".into(), "Archive/*".into()],
            &["Archive/Spam".into()],
        )
        .unwrap();
        let cases = [
            ("INBOX", true),
            ("Archive/2023", true),
            ("Archive/2023/Q1", false),
            ("Archive/Spam", false),
            ("Sent", false),
        ];
        for (name, want) in cases {
            assert_eq!(f.wants(name), want, "{name}");
        }
        let all = FolderFilter::new(&[], &["Trash".into(), "**/Junk".into()]).unwrap();
        assert!(all.wants("Sent") && !all.wants("Trash") && !all.wants("a/b/Junk"));
        assert!(
            FolderFilter::new(&["glob:[".into()], &[]).is_err()
                && FolderFilter::new(&["[".into()], &[]).is_ok()
        );
    }

    #[test]
    fn brackets_and_braces_match_themselves_unless_the_pattern_is_a_glob() {
        // (pattern, mailbox, matches)
        let table = [
            // Gmail's folders: `[Gmail]` is not a character class.
            ("[Gmail]/All Mail", "[Gmail]/All Mail", true),
            ("[Gmail]/All Mail", "G/All Mail", false),
            ("[Gmail]/*", "[Gmail]/Spam", true),
            ("[Gmail]/*", "[Gmail]", false),
            ("[Gmail]/**", "[Gmail]/Labels/x", true),
            ("{draft}", "{draft}", true),
            ("a\\b", "a\\b", true),
            ("Archive/*", "Archive/2023", true),
            ("Sent?", "Sent2", true),
            // The explicit form: the whole glob syntax.
            ("glob:Archive/20[0-9][0-9]", "Archive/2023", true),
            ("glob:Archive/20[0-9][0-9]", "Archive/20xx", false),
            ("glob:{Sent,Drafts}", "Drafts", true),
            ("glob:\\[Gmail\\]/Spam", "[Gmail]/Spam", true),
            ("glob:[Gmail]/Spam", "[Gmail]/Spam", false),
            ("glob:[Gmail]/Spam", "G/Spam", true),
        ];
        for (pattern, mailbox, want) in table {
            let f = FolderFilter::new(&[pattern.into()], &[]).unwrap();
            assert_eq!(f.wants(mailbox), want, "{pattern} ~ {mailbox}");
        }
        assert_eq!(pattern_glob("[Gmail]/All Mail"), "\\[Gmail\\]/All Mail");
        let e = FolderFilter::new(&["glob:[".into()], &[]).unwrap_err();
        assert!(e.to_string().starts_with("--folder `glob:[`: "), "{e}");
    }

    #[test]
    fn an_unmatched_folder_is_an_error_and_an_unmatched_exclude_a_warning() {
        let names = ["INBOX", "Sent", "[Gmail]/All Mail"];
        let f = FolderFilter::new(
            &["INBOX".into(), "Sentt".into(), "Nope/*".into()],
            &["Trash".into()],
        )
        .unwrap();
        assert_eq!(
            f.check("a@h", names).unwrap_err().to_string(),
            "a@h: no mailbox matches --folder `Sentt`, --folder `Nope/*` (`mailkeep list` shows the mailboxes; `Archive` does not include its subfolders, `Archive/**` does)"
        );
        let f = FolderFilter::new(
            &["[Gmail]/All Mail".into()],
            &["Trash".into(), "Sent".into()],
        )
        .unwrap();
        assert_eq!(
            f.check("a@h", names).unwrap(),
            ["a@h: --exclude `Trash` matches no mailbox on the server (`mailkeep list` shows the mailboxes)"]
        );
    }

    #[test]
    fn folder_filter_names_the_patterns_that_match_no_mailbox() {
        let f = FolderFilter::new(
            &["INBOX".into(), "Nope".into(), "archive/**".into()],
            &["Wrok".into(), "Sent".into()],
        )
        .unwrap();
        let names = ["INBOX", "Sent", "Work", "Archive/2023"];
        assert_eq!(
            f.unmatched(names),
            [
                "--folder `Nope`",
                "--folder `archive/**`",
                "--exclude `Wrok`"
            ]
        );
        // `inbox` is INBOX (RFC 3501 5.1): not a typo.
        let f = FolderFilter::new(&["inbox".into()], &[]).unwrap();
        assert_eq!(f.unmatched(names), Vec::<String>::new());
        assert_eq!(
            FolderFilter::new(&[], &[]).unwrap().unmatched(names),
            Vec::<String>::new()
        );
    }

    #[test]
    fn unchanged_truth_table() {
        let k = KnownMailbox {
            uidvalidity: 7,
            uidnext: Some(10),
            highestmodseq: Some(55),
            messages: Some(9),
        };
        let now = MailboxNow {
            uidvalidity: 7,
            uidnext: Some(10),
            highestmodseq: Some(55),
            messages: 9,
        };
        assert!(unchanged(Some(&k), &now, false));
        assert!(!unchanged(None, &now, false));
        assert!(!unchanged(
            Some(&k),
            &MailboxNow {
                uidnext: Some(11),
                ..now
            },
            false
        ));
        assert!(!unchanged(
            Some(&k),
            &MailboxNow {
                uidvalidity: 8,
                ..now
            },
            false
        ));
        assert!(!unchanged(
            Some(&k),
            &MailboxNow {
                highestmodseq: Some(56),
                ..now
            },
            false
        ));
        assert!(!unchanged(
            Some(&k),
            &MailboxNow { messages: 8, ..now },
            false
        ));
        // Without CONDSTORE, flags may have changed unseen: never skip.
        let k2 = KnownMailbox {
            highestmodseq: None,
            ..k
        };
        assert!(!unchanged(
            Some(&k2),
            &MailboxNow {
                highestmodseq: None,
                ..now
            },
            false
        ));
    }

    #[test]
    fn plan_same_uidvalidity() {
        let archived = [
            arc(7, 1, "\\Seen", 10, 100),
            arc(7, 2, "", 20, 200),
            arc(7, 3, "", 30, 300),
        ];
        let listing = [
            srv(1, "\\Seen", 10, 100),
            srv(2, "\\Seen \\Flagged", 20, 200),
            srv(4, "", 40, 400),
        ];
        let p = plan_mailbox(7, &listing, &archived);
        assert_eq!(p.fetch, vec![srv(4, "", 40, 400)]);
        assert_eq!(
            p.set_flags,
            vec![("v7u2".to_string(), fl("\\Seen \\Flagged"))]
        );
        assert_eq!(p.gone, vec!["v7u3".to_string()]);
        assert_eq!(p.unchanged, 1);
        assert!(p.rekey.is_empty() && !p.uidvalidity_changed);
    }

    #[test]
    fn plan_after_uidvalidity_change_fetches_everything_for_content_matching() {
        // Case 13: the mailbox was recreated with the same three messages plus one.
        let archived = [
            arc(7, 1, "\\Seen", 10, 100),
            arc(7, 2, "", 20, 200),
            arc(7, 3, "", 20, 200),
        ];
        let listing = [
            srv(1, "\\Seen", 10, 100),
            srv(2, "", 20, 200),
            srv(3, "", 20, 200),
            srv(4, "", 44, 400),
        ];
        let p = plan_mailbox(9, &listing, &archived);
        assert!(p.uidvalidity_changed);
        // Everything is fetched and matched by SHA-256: size and date are no proof (two
        // different messages can share both).
        assert!(p.rekey.is_empty());
        assert_eq!(
            p.fetch.iter().map(|m| m.uid).collect::<Vec<_>>(),
            vec![1, 2, 3, 4]
        );
        assert!(p.gone.is_empty());
    }

    #[test]
    fn plan_empty_cases() {
        assert_eq!(plan_mailbox(1, &[], &[]), MailboxPlan::default());
        let p = plan_mailbox(1, &[srv(5, "", 1, 1)], &[]);
        assert_eq!(p.fetch.len(), 1);
        assert!(!p.uidvalidity_changed);
    }

    #[test]
    fn batches_by_count_and_bytes() {
        assert_eq!(batches(&[], 3, 100), Vec::<std::ops::Range<usize>>::new());
        assert_eq!(batches(&[10, 10, 10, 10], 3, 100), vec![0..3, 3..4]);
        assert_eq!(
            batches(&[60, 60, 10, 500, 1], 10, 100),
            vec![0..1, 1..3, 3..4, 4..5]
        );
    }
    #[test]
    fn pop3_content_needed_for_repeated_or_twinned_bases() {
        let rec = |ids: &[(&str, &str)]| -> HashMap<String, String> {
            ids.iter()
                .map(|(i, s)| (i.to_string(), s.to_string()))
                .collect()
        };
        // (bases, recorded, needed)
        type Case<'a> = (Vec<&'a str>, HashMap<String, String>, Vec<bool>);
        let cases: Vec<Case> = vec![
            (vec![], rec(&[]), vec![]),
            (vec!["k UIDL a", "k UIDL b"], rec(&[]), vec![false, false]),
            (
                vec!["k UIDL a", "k UIDL b", "k UIDL a"],
                rec(&[]),
                vec![true, false, true],
            ),
            (
                vec!["k UIDL a", "k UIDL a", "k UIDL a"],
                rec(&[("k UIDL a", "00")]),
                vec![true, true, true],
            ),
            // An earlier run's duplicates: the one left must be matched by content.
            (
                vec!["k UIDL a", "k UIDL b"],
                rec(&[("k UIDL a SHA 0123456789abcdef", "0123456789abcdef00")]),
                vec![true, false],
            ),
            // A plain record alone needs nothing.
            (vec!["k UIDL a"], rec(&[("k UIDL a", "00")]), vec![false]),
            (
                vec!["k CONTENT c", "k CONTENT c"],
                rec(&[]),
                vec![true, true],
            ),
        ];
        for (bases, recorded, want) in cases {
            assert_eq!(
                pop3_content_needed(&bases, &recorded),
                want,
                "{bases:?} {recorded:?}"
            );
        }
    }

    #[test]
    fn pop3_identity_by_content_truth_table() {
        let a = "aaaaaaaaaaaaaaaa1111";
        let b = "bbbbbbbbbbbbbbbb2222";
        let rec = |ids: &[(&str, &str)]| -> HashMap<String, String> {
            ids.iter()
                .map(|(i, s)| (i.to_string(), s.to_string()))
                .collect()
        };
        let ta = "k UIDL u SHA aaaaaaaaaaaaaaaa";
        let tb = "k UIDL u SHA bbbbbbbbbbbbbbbb";
        // (repeated, sha, recorded, identity)
        let cases: Vec<(bool, &str, HashMap<String, String>, &str)> = vec![
            // New duplicates: each its twin (byte-identical ones share it).
            (true, a, rec(&[]), ta),
            (true, b, rec(&[]), tb),
            // Archived as duplicates before: found again.
            (true, a, rec(&[(ta, a), (tb, b)]), ta),
            // The duplicate disappeared: the one left is its recorded twin, not a new message.
            (false, b, rec(&[(ta, a), (tb, b)]), tb),
            // ...and one not seen before, alone now, gets the plain identity.
            (false, "cccccccccccccccc", rec(&[(ta, a)]), "k UIDL u"),
            // A unique UIDL archived before gets a duplicate: the archived bytes keep the plain
            // identity, the new ones a twin.
            (true, a, rec(&[("k UIDL u", a)]), "k UIDL u"),
            (true, b, rec(&[("k UIDL u", a)]), tb),
            // Unique, recorded with other bytes (a reused UIDL): a twin, never the record.
            (false, b, rec(&[("k UIDL u", a)]), tb),
            (false, a, rec(&[]), "k UIDL u"),
        ];
        for (repeated, sha, recorded, want) in cases {
            assert_eq!(
                pop3_identity_by_content("k UIDL u", repeated, sha, &recorded),
                want,
                "{repeated} {sha} {recorded:?}"
            );
        }
    }

    #[test]
    fn what_a_refused_batch_means() {
        use AfterRefusal::*;
        // (unstored, refused again alone, the server answered one of them, decision)
        let table = [
            // One message: its refusal is its own; the mailbox goes on.
            (1, 1, false, MessagesFail),
            // One damaged message among five: it fails alone.
            (5, 1, true, MessagesFail),
            // Every message refused alone too: the mailbox, not its messages.
            (5, 5, false, MailboxStops),
            (2, 2, false, MailboxStops),
            // All answered alone (the batch's refusal was about its size or form).
            (3, 0, true, MessagesFail),
            // Refused alone but one answered with nothing (held back): not the mailbox.
            (3, 2, true, MessagesFail),
        ];
        for (unstored, refused, answered, want) in table {
            assert_eq!(
                after_refusal(unstored, refused, answered),
                want,
                "{unstored} unstored, {refused} refused, answered {answered}"
            );
        }
    }
}
