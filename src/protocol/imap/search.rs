//! SEARCH, STORE and EXPUNGE: finding messages by Message-ID or UID, and deleting them.

use super::*;

impl ImapClient {
    /// The UIDs of the messages of `wire_mailbox` whose Message-ID header contains
    /// `message_id` (`<id@host>`; the angle brackets are added when missing), ascending:
    /// EXAMINE (skipped when the mailbox is already examined and nothing was appended to it
    /// since) and `UID SEARCH HEADER Message-ID "<...>"` (RFC 3501 6.4.4), the string quoted
    /// with `\` escapes for `"` and `\`, or sent as a literal with `CHARSET UTF-8` when it is
    /// not printable ASCII.
    ///
    /// Leaves `wire_mailbox` examined, so [`list_messages`](Self::list_messages) can follow.
    /// SEARCH matches substrings case-insensitively: the result is candidates, to confirm by
    /// size or content. A message without Message-ID must not be looked up by an empty or
    /// made-up one (case 21): use size + INTERNALDATE from `list_messages` instead.
    ///
    /// Errors: [`ImapError::No`] from EXAMINE (no such mailbox) or SEARCH (e.g.
    /// `[BADCHARSET]`), [`ImapError::Protocol`] for an empty `message_id`.
    pub fn search_message_id(
        &mut self,
        wire_mailbox: &str,
        message_id: &str,
    ) -> Result<Vec<u32>, ImapError> {
        let id = message_id.trim();
        if id.is_empty() || id == "<>" {
            return Err(ImapError::Protocol(
                "refusing to search for an empty Message-ID".into(),
            ));
        }
        let id = if id.starts_with('<') && id.ends_with('>') {
            id.to_string()
        } else {
            format!("<{}>", id.trim_start_matches('<').trim_end_matches('>'))
        };
        if self.examined_wire.as_deref() != Some(wire_mailbox) {
            let mb = MailboxInfo::from_list(wire_mailbox, None, Vec::new());
            self.examine(&mb)?;
        }
        let printable = id.bytes().all(|b| (0x20..0x7f).contains(&b));
        let (command, args) = if printable {
            let c = format!("UID SEARCH HEADER Message-ID {}", quote(&id));
            (c.clone(), vec![Arg::Text(c)])
        } else {
            (
                format!(
                    "UID SEARCH CHARSET UTF-8 HEADER Message-ID {{{}}}",
                    id.len()
                ),
                vec![
                    Arg::Text("UID SEARCH CHARSET UTF-8 HEADER Message-ID ".into()),
                    Arg::Literal(id.as_bytes()),
                ],
            )
        };
        let (untagged, _) = self.raw_command(&command, &args)?;
        let mut uids: Vec<u32> = search_uids(&untagged).into_iter().collect();
        uids.sort_unstable();
        uids.dedup();
        Ok(uids)
    }

    /// Sets (`add`) or clears the `\Deleted` flag of these UIDs in the selected mailbox:
    /// `UID STORE <set> +FLAGS.SILENT (\Deleted)` (or `-FLAGS.SILENT`), RFC 3501 6.4.6.
    ///
    /// Errors: [`ImapError::No`] (e.g. a read-only mailbox), [`ImapError::Protocol`] when no
    /// mailbox is selected.
    pub fn uid_store_deleted(&mut self, uids: &[u32], add: bool) -> Result<(), ImapError> {
        if self.selected.is_none() {
            return Err(ImapError::Protocol("no mailbox is selected".into()));
        }
        let query = if add {
            "+FLAGS.SILENT (\\Deleted)"
        } else {
            "-FLAGS.SILENT (\\Deleted)"
        };
        for chunk in uids.chunks(PRUNE_UIDS_PER_COMMAND) {
            let command = format!("UID STORE {} {query}", uid_set(chunk));
            self.raw_command(&command, &[Arg::Text(command.clone())])?;
        }
        Ok(())
    }

    /// Expunges exactly these UIDs of the selected mailbox, if they are marked `\Deleted`:
    /// `UID EXPUNGE <set>` (UIDPLUS, RFC 4315 2.1). Messages marked `\Deleted` by others are
    /// not touched.
    ///
    /// Errors: [`ImapError::Protocol`] when the server does not announce UIDPLUS or no mailbox
    /// is selected; [`ImapError::No`] / [`ImapError::Bad`] from the server.
    pub fn uid_expunge(&mut self, uids: &[u32]) -> Result<(), ImapError> {
        if !self.caps.has("UIDPLUS") {
            return Err(ImapError::Protocol(
                "UID EXPUNGE needs UIDPLUS, which the server does not announce".into(),
            ));
        }
        if self.selected.is_none() {
            return Err(ImapError::Protocol("no mailbox is selected".into()));
        }
        for chunk in uids.chunks(PRUNE_UIDS_PER_COMMAND) {
            let command = format!("UID EXPUNGE {}", uid_set(chunk));
            self.raw_command(&command, &[Arg::Text(command.clone())])?;
        }
        Ok(())
    }

    /// Expunges every message of the selected mailbox marked `\Deleted` (EXPUNGE, RFC 3501
    /// 6.4.3). Only safe when the caller made sure its own messages are the only ones marked.
    ///
    /// Errors: [`ImapError::Protocol`] when no mailbox is selected; [`ImapError::No`] from the
    /// server.
    pub fn expunge(&mut self) -> Result<(), ImapError> {
        if self.selected.is_none() {
            return Err(ImapError::Protocol("no mailbox is selected".into()));
        }
        self.raw_command("EXPUNGE", &[Arg::Text("EXPUNGE".into())])?;
        Ok(())
    }

    /// The UIDs of the selected mailbox matching a search: `UID SEARCH <criteria>` (RFC 3501
    /// 6.4.4), e.g. `DELETED`, sorted.
    ///
    /// Errors: [`ImapError::Protocol`] when no mailbox is selected; [`ImapError::No`] /
    /// [`ImapError::Bad`] from the server.
    pub fn uid_search(&mut self, criteria: &str) -> Result<BTreeSet<u32>, ImapError> {
        if self.selected.is_none() {
            return Err(ImapError::Protocol("no mailbox is selected".into()));
        }
        let command = format!("UID SEARCH {criteria}");
        let (untagged, _) = self.raw_command(&command, &[Arg::Text(command.clone())])?;
        Ok(search_uids(&untagged))
    }

    /// Which of these UIDs the selected mailbox still holds: `UID SEARCH UID <set>` in chunks
    /// (after an expunge, to count exactly what went).
    ///
    /// Errors: as [`uid_search`](Self::uid_search).
    pub fn uids_present(&mut self, uids: &[u32]) -> Result<BTreeSet<u32>, ImapError> {
        self.uids_matching(uids, "")
    }

    /// Which of these UIDs the selected mailbox still holds *not* marked `\Deleted`
    /// (`UID SEARCH UID <set> UNDELETED`): a copy marked `\Deleted` is one EXPUNGE away from
    /// gone, so it does not count as held (restore, `--delete-after-migrate`).
    ///
    /// Errors: as [`uid_search`](Self::uid_search).
    pub fn uids_held(&mut self, uids: &[u32]) -> Result<BTreeSet<u32>, ImapError> {
        self.uids_matching(uids, " UNDELETED")
    }

    pub(super) fn uids_matching(
        &mut self,
        uids: &[u32],
        more: &str,
    ) -> Result<BTreeSet<u32>, ImapError> {
        let mut out = BTreeSet::new();
        for chunk in uids.chunks(PRUNE_UIDS_PER_COMMAND) {
            let asked: BTreeSet<u32> = chunk.iter().copied().collect();
            let found = self.uid_search(&format!("UID {}{more}", uid_set(chunk)))?;
            // `UID n:m` also matches the highest UID when n is above it (RFC 3501 6.4.8).
            out.extend(found.intersection(&asked));
        }
        Ok(out)
    }
}

/// The UIDs of `* SEARCH` responses (RFC 3501 7.2.5); numbers beyond 32 bits are not UIDs
/// and are left out.
fn search_uids(untagged: &[Untagged]) -> BTreeSet<u32> {
    untagged
        .iter()
        .filter(|u| u.name == "SEARCH")
        .flat_map(|u| u.values.iter().flatten())
        .filter_map(|v| u32::try_from(v.number()?).ok())
        .collect()
}

/// At most this many UIDs per UID STORE / UID EXPUNGE / UID SEARCH command, so that a set of
/// scattered UIDs stays well below servers' command length limits (Dovecot: 64 kB).
const PRUNE_UIDS_PER_COMMAND: usize = 500;
