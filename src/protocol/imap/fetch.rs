//! Fetching: the UID listing of a mailbox (with CHANGEDSINCE) and the streamed bodies.

use super::*;

impl ImapClient {
    /// Lists the messages of the examined mailbox: `UID FETCH 1:* (UID FLAGS RFC822.SIZE
    /// INTERNALDATE [MODSEQ]) [(CHANGEDSINCE n)]` (RFC 3501 6.4.8, RFC 7162 3.1.4). With
    /// `changed_since` (needs [`enable_condstore`](Self::enable_condstore)) only messages
    /// whose MODSEQ is above it. Sorted by UID. An empty mailbox gives `Ok(vec![])`. MODSEQ is
    /// not asked for in a `NOMODSEQ` mailbox; a server that refuses it (`BAD`, `NO
    /// [CANNOT]`) is asked again without it, and CONDSTORE is off for the rest of the session.
    ///
    /// Errors: [`ImapError::Protocol`] when no mailbox is examined, `changed_since` is given
    /// without CONDSTORE, or a message comes without RFC822.SIZE / a parseable INTERNALDATE.
    pub fn list_messages(&mut self, changed_since: Option<u64>) -> Result<Vec<Listed>, ImapError> {
        self.list_with(changed_since, false)
    }

    /// As [`list_messages`](Self::list_messages), with Gmail's `X-GM-MSGID X-GM-THRID
    /// X-GM-LABELS` items (`X-GM-EXT-1`): [`Listed::gmail`] is set for every message the
    /// server sent an X-GM-MSGID for (`None` for one without: the caller fails that message).
    pub fn list_gmail(&mut self) -> Result<Vec<Listed>, ImapError> {
        self.list_with(None, true)
    }

    fn list_with(
        &mut self,
        changed_since: Option<u64>,
        gmail: bool,
    ) -> Result<Vec<Listed>, ImapError> {
        let sel = self
            .selected
            .ok_or_else(|| ImapError::Protocol("no mailbox is examined".into()))?;
        if changed_since.is_some() && !self.condstore {
            return Err(ImapError::Protocol(
                "CHANGEDSINCE needs CONDSTORE (call enable_condstore first)".into(),
            ));
        }
        if sel.exists == 0 {
            return Ok(Vec::new());
        }
        let with_modseq = self.condstore && !self.nomodseq && !self.modseq_refused;
        let mut query = String::from("(UID FLAGS RFC822.SIZE INTERNALDATE");
        if with_modseq {
            query.push_str(" MODSEQ");
        }
        if gmail {
            query.push_str(" X-GM-MSGID X-GM-THRID X-GM-LABELS");
        }
        query.push(')');
        if let (Some(n), true) = (changed_since, with_modseq) {
            query.push_str(&format!(" (CHANGEDSINCE {n})"));
        }
        let command = format!("UID FETCH 1:* {query}");
        let mut merged = Merger::default();
        let r = self.stream_fetch::<ImapError>(&command, &mut |items, expunged| {
            merged.add(items, expunged);
            Ok(())
        });
        match r {
            Ok(()) => {}
            Err(ImapError::Bad { .. } | ImapError::No { .. }) if with_modseq => {
                // A server that announces CONDSTORE and refuses MODSEQ (`BAD [CANNOT]`,
                // `NO`): a plain listing, everything compared.
                self.condstore = false;
                self.modseq_refused = true;
                return self.list_with(None, gmail);
            }
            Err(e) => return Err(e),
        }
        let mut out = Vec::with_capacity(merged.by_key.len());
        let now = crate::core::time::now_secs();
        for m in merged.by_key.into_values() {
            let Some(uid) = m.uid else { continue };
            let size = m.size.ok_or_else(|| missing("RFC822.SIZE", uid))?;
            let date = m.date(now);
            let gmail = match (gmail, m.gm_msgid) {
                (true, Some(msgid)) => Some(GmailItems {
                    msgid,
                    thrid: m.gm_thrid.unwrap_or(0),
                    labels: m.gm_labels.clone().unwrap_or_default(),
                }),
                _ => None,
            };
            out.push(Listed {
                uid,
                flags: m.flags.unwrap_or_default(),
                size,
                internal_date: date.as_ref().ok().copied(),
                bad_internal_date: date.err(),
                modseq: m.modseq,
                gmail,
            });
        }
        out.sort_by_key(|l| l.uid);
        out.dedup_by_key(|l| l.uid);
        Ok(out)
    }

    /// Fetches the messages with these UIDs from the examined mailbox: `UID FETCH <set> (UID
    /// FLAGS INTERNALDATE RFC822.SIZE BODY.PEEK[])` (PEEK: `\Seen` is not set), the set
    /// compressed into ranges (`1:5,9,12:20`), and calls `f` once per message as soon as it
    /// has arrived, in the order the server sends them (ascending sequence numbers, which is
    /// UID order; callers must not rely on it). The answer is read as a stream
    /// ([`crate::protocol::imap::reader`]): memory holds one message (plus a message whose FLAGS or
    /// INTERNALDATE come in a later response, until they do or the command ends), not the
    /// batch. A server's split responses for one message are merged by sequence number (RFC
    /// 3501 7.4.2, case 17); the last non-empty FLAGS before the body wins.
    ///
    /// Returns the requested UIDs the server did not return (expunged meanwhile), sorted.
    ///
    /// Errors: the first error of `f` (the rest of the answer is read and dropped, so the
    /// session stays usable), or an [`ImapError`] converted with `E::from`: a tagged `NO` /
    /// `BAD` ([`ImapError::No`], [`ImapError::Bad`]) after the messages that came before it
    /// were delivered; [`ImapError::Io`] when the connection fails (naming the UID whose
    /// literal was cut short); [`ImapError::Bye`]; [`ImapError::Protocol`] for a malformed
    /// response (naming the UID when known) or a body without a valid INTERNALDATE. After
    /// `Io`, `Bye` and `Protocol` the session is unusable.
    pub fn fetch_bodies<E: From<ImapError>>(
        &mut self,
        uids: &[u32],
        f: &mut dyn FnMut(Fetched<'_>) -> Result<(), E>,
    ) -> Result<Vec<u32>, E> {
        if uids.is_empty() {
            return Ok(Vec::new());
        }
        if self.selected.is_none() {
            return Err(ImapError::Protocol("no mailbox is examined".into()).into());
        }
        let set = uid_set(uids);
        let command = format!("UID FETCH {set} (UID FLAGS INTERNALDATE RFC822.SIZE BODY.PEEK[])");
        let wanted: BTreeSet<u32> = uids.iter().copied().collect();
        let mut got = BTreeSet::new();
        let mut merged = Merger::default();
        let now = crate::core::time::now_secs();
        // Hands over a message once its body, UID, FLAGS and INTERNALDATE (readable or not)
        // are all known.
        let mut deliver =
            |m: Merged, last: bool, got: &mut BTreeSet<u32>| -> Result<Option<Merged>, E> {
                let Some(uid) = m.uid.filter(|_| m.has_body()) else {
                    return Ok(Some(m));
                };
                if !last && (m.flags.is_none() || m.internal_date_sent.is_none()) {
                    return Ok(Some(m));
                }
                if !wanted.contains(&uid) || got.contains(&uid) {
                    return Ok(None);
                }
                let date = m.date(now);
                let no_body = match &m.body {
                    None => Some("BODY[] NIL".to_string()),
                    Some(b) if b.is_empty() => Some("an empty BODY[] (0 octets)".to_string()),
                    Some(_) => None,
                };
                let body = m.body.unwrap_or_default();
                got.insert(uid);
                f(Fetched {
                    uid,
                    flags: m.flags.unwrap_or_default(),
                    internal_date: date.as_ref().ok().copied(),
                    bad_internal_date: date.err(),
                    no_body,
                    size: m.size.unwrap_or(body.len() as u64),
                    body: &body,
                })?;
                Ok(None)
            };
        self.stream_fetch::<E>(&command, &mut |items, expunged| {
            let key = merged.add(items, expunged);
            if let Some(k) = key {
                if merged.by_key.get(&k).is_some_and(Merged::has_body) {
                    if let Some(m) = merged.by_key.remove(&k) {
                        if let Some(back) = deliver(m, false, &mut got)? {
                            merged.by_key.insert(k, back);
                        }
                    }
                }
            }
            Ok(())
        })?;
        // Bodies whose FLAGS or INTERNALDATE never came: delivered with what is known.
        for m in std::mem::take(&mut merged.by_key).into_values() {
            deliver(m, true, &mut got)?;
        }
        Ok(wanted.difference(&got).copied().collect())
    }

    /// Sends `command` (a `UID FETCH`) and reads its answer as a stream: each FETCH response
    /// goes to `on` with whether an EXPUNGE or VANISHED came before it (sequence numbers may
    /// have moved); EXISTS updates the examined mailbox. After an error of `on`, the rest of
    /// the answer is read and dropped and that error returned.
    pub(super) fn stream_fetch<E: From<ImapError>>(
        &mut self,
        command: &str,
        on: &mut dyn FnMut(FetchItems, bool) -> Result<(), E>,
    ) -> Result<(), E> {
        let r = self.send_line(&mut true, command, command);
        self.check(r)?;
        let mut parser = Parser::new();
        let mut expunged = false;
        let mut failed: Option<E> = None;
        loop {
            let r = self.stream.next_response(&mut parser);
            let resp = match r {
                Ok(resp) => resp,
                Err(e) => {
                    let e = self.stream_error(e, &parser, command);
                    return Err(failed.unwrap_or_else(|| e.into()));
                }
            };
            match resp {
                Response::Fetch(items) => {
                    if failed.is_none() {
                        if let Err(e) = on(items, expunged) {
                            failed = Some(e);
                        }
                    }
                }
                Response::Exists(n) => {
                    if let Some(sel) = &mut self.selected {
                        sel.exists = n;
                    }
                }
                Response::Expunge(_) | Response::Vanished { earlier: false } => expunged = true,
                Response::Vanished { earlier: true } | Response::Other(_) => {}
                Response::UidValidity(n) => {
                    // The mailbox was recreated during the command: nothing after this point
                    // may be taken for a message of the examined mailbox.
                    let old = self.selected.map(|s| s.uidvalidity);
                    if failed.is_none() && old.is_some_and(|o| o != n) {
                        failed = Some(
                            ImapError::No {
                                command: command.to_string(),
                                text: format!(
                                    "[UIDVALIDITY {n}] (untagged, during the command) the mailbox was recreated: UIDVALIDITY changed from {} to {n}; nothing from this answer is stored after that point",
                                    old.unwrap_or_default()
                                ),
                            }
                            .into(),
                        );
                    }
                }
                Response::Bye(text) => {
                    let e = self
                        .check::<()>(Err(ImapError::Bye(bye_text(text))))
                        .unwrap_err();
                    return Err(failed.unwrap_or_else(|| e.into()));
                }
                Response::Continuation => {
                    let e = self.broken(ImapError::Protocol(format!(
                        "the server asked for a continuation nobody announced, answering `{command}`"
                    )));
                    return Err(failed.unwrap_or_else(|| e.into()));
                }
                Response::Tagged { status, text, .. } => {
                    if let Some(e) = failed {
                        return Err(e);
                    }
                    Tagged { status, text }.into_result(command)?;
                    return Ok(());
                }
            }
        }
    }

    /// The error for a FETCH answer that could not be read to its end; the session is marked
    /// unusable (it is out of step with the server).
    pub(super) fn stream_error(
        &mut self,
        e: NextError,
        parser: &Parser,
        command: &str,
    ) -> ImapError {
        let during = match (parser.uid_hint(), parser.literal_progress()) {
            (Some(uid), Some((got, want))) => {
                format!(" while receiving UID {uid} ({got} of {want} octets)")
            }
            (Some(uid), None) => format!(" while receiving UID {uid}"),
            (None, Some((got, want))) => {
                format!(" in the middle of a literal ({got} of {want} octets)")
            }
            (None, None) if parser.in_progress() => " in the middle of a response".into(),
            (None, None) => String::new(),
        };
        let e = match e {
            NextError::Io(e) => {
                let e = net::readable_io_error(e, self.io_timeout);
                ImapError::Io(io::Error::new(e.kind(), format!("{e}{during}")))
            }
            NextError::Eof => ImapError::Io(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                format!("connection closed by server{during}"),
            )),
            NextError::Parse(_) if parser.refused_literal().is_some() => {
                let (size, limit) = parser.refused_literal().unwrap_or_default();
                ImapError::TooLarge {
                    uid: parser.uid_hint(),
                    size,
                    limit,
                }
            }
            NextError::Parse(p) => {
                ImapError::Protocol(format!("answering `{}`: {p}", shorten(command)))
            }
        };
        self.broken(e)
    }
}

/// What several FETCH responses told about one message (sequence number).
#[derive(Debug, Default)]
struct Merged {
    uid: Option<u32>,
    /// `None` until a FLAGS item came.
    flags: Option<Flags>,
    size: Option<u64>,
    internal_date: Option<i64>,
    /// What the server sent as INTERNALDATE (`None` until the item came, readable or not).
    internal_date_sent: Option<String>,
    modseq: Option<u64>,
    body: Option<Vec<u8>>,
    /// The body came as `NIL`.
    body_nil: bool,
    gm_msgid: Option<u64>,
    gm_thrid: Option<u64>,
    gm_labels: Option<Vec<String>>,
}

impl Merged {
    /// The body item came (a message, or `NIL`).
    fn has_body(&self) -> bool {
        self.body.is_some() || self.body_nil
    }

    /// The INTERNALDATE when readable and believable at `now` (seconds since the epoch), else
    /// `Err(what the server sent)` (`nothing` when the item never came).
    fn date(&self, now: i64) -> Result<i64, String> {
        match self.internal_date {
            Some(t) if crate::core::date::plausible(t, now) => Ok(t),
            _ => Err(self
                .internal_date_sent
                .clone()
                .unwrap_or_else(|| "nothing".into())),
        }
    }
}

/// Merges FETCH responses by sequence number (RFC 3501 7.4.2: a server may split a message's
/// items over several responses and send unsolicited FLAGS updates, case 17). The last
/// non-empty FLAGS wins. Once messages were expunged during the command, responses without a
/// UID are ignored, and each response with one stands alone, as sequence numbers may have
/// moved.
#[derive(Debug, Default)]
struct Merger {
    by_key: BTreeMap<u64, Merged>,
    /// Keys for responses after an expunge, above every sequence number.
    extra_key: u64,
}

impl Merger {
    /// Adds one response; returns the key it was merged under (`None`: ignored).
    fn add(&mut self, fe: FetchItems, expunged: bool) -> Option<u64> {
        if expunged && fe.uid.is_none() {
            return None;
        }
        // A response naming another UID than an earlier one of its sequence number (no
        // EXPUNGE between: the server contradicts itself) stands alone too: merged, one UID's
        // body would be stored as the other's, and recorded as archived.
        let conflict = !expunged
            && fe.uid.is_some()
            && self
                .by_key
                .get(&u64::from(fe.seq))
                .is_some_and(|m| m.uid.is_some() && m.uid != fe.uid);
        let key = if expunged || conflict {
            self.extra_key += 1;
            u64::from(u32::MAX) + self.extra_key
        } else {
            u64::from(fe.seq)
        };
        let m = self.by_key.entry(key).or_default();
        if fe.uid.is_some() {
            m.uid = fe.uid;
        }
        if let Some(flags) = fe.flags {
            if !flags.is_empty() || m.flags.as_ref().is_none_or(Flags::is_empty) {
                m.flags = Some(flags);
            }
        }
        if fe.size.is_some() {
            m.size = fe.size;
        }
        // A readable INTERNALDATE is not undone by an unreadable one in a later response.
        if fe.internal_date_sent.is_some()
            && (fe.internal_date.is_some() || m.internal_date.is_none())
        {
            m.internal_date = fe.internal_date;
            m.internal_date_sent = fe.internal_date_sent;
        }
        if fe.modseq.is_some() {
            m.modseq = fe.modseq;
        }
        if fe.gm_msgid.is_some() {
            m.gm_msgid = fe.gm_msgid;
        }
        if fe.gm_thrid.is_some() {
            m.gm_thrid = fe.gm_thrid;
        }
        if fe.gm_labels.is_some() {
            m.gm_labels = fe.gm_labels;
        }
        if fe.body.is_some() {
            m.body = fe.body;
        }
        m.body_nil |= fe.body_nil;
        Some(key)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Issue 15: the INTERNALDATE a message is listed or fetched with; what the server sent
    /// when it cannot be read or believed.
    #[test]
    fn internal_dates_readable_and_believable() {
        let now = 1_800_000_000;
        let m = |t: Option<i64>, sent: Option<&str>| Merged {
            internal_date: t,
            internal_date_sent: sent.map(str::to_string),
            ..Merged::default()
        };
        let cases: &[(Merged, Result<i64, &str>)] = &[
            (m(Some(1_393_923_600), Some("\"x\"")), Ok(1_393_923_600)),
            (m(None, None), Err("nothing")),
            (m(None, Some("NIL")), Err("NIL")),
            (m(None, Some("\"garbage\"")), Err("\"garbage\"")),
            (m(Some(-2_208_988_800), Some("\"1900\"")), Err("\"1900\"")),
            (m(Some(0), Some("\"1970\"")), Err("\"1970\"")),
            (m(Some(now + 86_400), Some("\"2027\"")), Err("\"2027\"")),
            (m(Some(now + 86_399), Some("\"ok\"")), Ok(now + 86_399)),
        ];
        for (merged, want) in cases {
            assert_eq!(merged.date(now), want.map_err(str::to_string), "{merged:?}");
        }
        // Split responses: a readable date is kept over a later unreadable one, and an
        // unreadable one is replaced by a later readable one.
        let item = |t: Option<i64>, sent: &str| crate::protocol::imap::reader::FetchItems {
            seq: 1,
            uid: Some(5),
            internal_date: t,
            internal_date_sent: Some(sent.into()),
            ..Default::default()
        };
        for (first, second) in [
            (item(Some(1_393_923_600), "\"ok\""), item(None, "NIL")),
            (item(None, "NIL"), item(Some(1_393_923_600), "\"ok\"")),
        ] {
            let mut merger = Merger::default();
            merger.add(first, false);
            let k = merger.add(second, false).unwrap();
            assert_eq!(merger.by_key[&k].date(now), Ok(1_393_923_600));
        }
    }
}
