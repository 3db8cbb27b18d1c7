//! APPEND (and MULTIAPPEND, LITERAL+, APPENDUID) for restore and migrate.

use super::*;

impl ImapClient {
    /// APPENDLIMIT=N from the capabilities (RFC 7889): the largest message the server takes.
    /// `None` without a global limit.
    pub fn append_limit(&self) -> Option<u64> {
        self.caps
            .iter()
            .find_map(|c| c.strip_prefix("APPENDLIMIT="))
            .and_then(|n| n.parse().ok())
    }

    /// APPEND (RFC 3501 6.3.11) of one message to `wire_mailbox` (a wire name: see
    /// [`mailbox_wire_name`]), with `flags` (system flags and keywords; `\Deleted` is sent if
    /// present, deciding about it is the caller's job; keywords that are not atoms are left
    /// out and listed in [`Appended::dropped_keywords`]) and `internal_date` (seconds since
    /// the Unix epoch) as `"dd-Mon-yyyy hh:mm:ss +0000"` (case 19). `None` lets the server
    /// use the current time: pass it only on purpose.
    ///
    /// `raw_crlf` is sent byte for byte (CRLF line ends: see [`crate::core::message::lf_to_crlf`]),
    /// as a `{N+}` literal when the server has LITERAL+ (or LITERAL- and N <= 4096) and N <=
    /// [`NONSYNC_LITERAL_MAX`], else as a synchronising `{N}` literal (the server can then
    /// refuse before the data is sent). Nothing is retried here.
    ///
    /// Errors:
    /// - over the server's APPENDLIMIT: `ImapError::No` with text `[TOOBIG] ...`, nothing sent
    ///   ([`ImapError::is_too_big`]);
    /// - the server's `NO` as [`ImapError::No`] with its text and response code as sent
    ///   (`[TOOBIG] Message too large`, `[TRYCREATE]`, `[OVERQUOTA]`, throttling: see
    ///   [`ImapError::is_permanent_refusal`], [`ImapError::suggested_backoff`]);
    /// - `internal_date` not expressible (year outside 0-9999): [`ImapError::Protocol`],
    ///   nothing sent;
    /// - I/O errors and `BYE` while the command is in flight: the outcome is **unknown** (the
    ///   server may have stored the message, case 23); reconnect and look for it
    ///   ([`search_message_id`](Self::search_message_id), or size + INTERNALDATE with
    ///   [`list_messages`](Self::list_messages)) before appending again.
    pub fn append(
        &mut self,
        wire_mailbox: &str,
        raw_crlf: &[u8],
        flags: &Flags,
        internal_date: Option<i64>,
    ) -> Result<Appended, ImapError> {
        self.append_dated(
            wire_mailbox,
            raw_crlf,
            flags,
            internal_date.map(AppendDate::from),
        )
    }

    /// [`append`](Self::append) with the date written in a given zone (`date.offset`), e.g.
    /// that of the message's `Date:` header.
    pub fn append_dated(
        &mut self,
        wire_mailbox: &str,
        raw_crlf: &[u8],
        flags: &Flags,
        internal_date: Option<AppendDate>,
    ) -> Result<Appended, ImapError> {
        let (command, args, dropped) =
            self.append_command(wire_mailbox, raw_crlf, flags, internal_date)?;
        self.note_append(wire_mailbox);
        let (_, text) = self.raw_command(&command, &args)?;
        let (uidvalidity, uid) = parse_appenduid(&text);
        Ok(Appended {
            uidvalidity,
            uid,
            dropped_keywords: dropped,
        })
    }

    /// Several APPENDs to one mailbox, pipelined: with LITERAL+ up to 64 commands (8 MiB) are
    /// sent before their answers are read, which saves a round trip per message. Messages
    /// too big for a non-synchronising literal, and all messages on a server without LITERAL+,
    /// are appended one at a time as by [`append`](Self::append). When the server has
    /// MULTIAPPEND (RFC 3502), each window goes as one command (one server transaction); if
    /// the server refuses it (nothing is stored then), the window's messages are sent again as
    /// single pipelined APPENDs, so a refused message gets its own answer.
    ///
    /// Returns one result per item, in order, each as [`append`](Self::append) would give it.
    /// When the connection fails, the items whose answer did not arrive get an
    /// [`ImapError::Io`] / [`ImapError::Bye`] (outcome unknown: check the server before
    /// appending them again) and the session is unusable; the outer `Err` is only for a
    /// session that was unusable from the start.
    ///
    /// Answers are matched to commands in the order sent (servers complete APPENDs in order).
    pub fn append_many(
        &mut self,
        wire_mailbox: &str,
        items: &[AppendItem<'_>],
    ) -> Result<Vec<Result<Appended, ImapError>>, ImapError> {
        self.session()?;
        let mut results: Vec<Option<Result<Appended, ImapError>>> =
            (0..items.len()).map(|_| None).collect();
        let mut i = 0;
        while i < items.len() {
            if matches!(self.state, State::Broken(_)) {
                for r in results.iter_mut().skip(i) {
                    *r = Some(Err(self.outcome_unknown()));
                }
                break;
            }
            if !self.nonsync(items[i].0.len()) {
                let (raw, flags, date) = items[i];
                results[i] = Some(self.append_dated(wire_mailbox, raw, flags, date));
                i += 1;
                continue;
            }
            // A window of non-synchronising APPENDs.
            let mut window = Vec::new();
            let mut bytes = 0;
            while i < items.len()
                && window.len() < PIPELINE_MAX_COMMANDS
                && self.nonsync(items[i].0.len())
                && (window.is_empty() || bytes + items[i].0.len() <= PIPELINE_MAX_BYTES)
            {
                bytes += items[i].0.len();
                window.push(i);
                i += 1;
            }
            self.note_append(wire_mailbox);
            if window.len() >= 2 && self.caps.has("MULTIAPPEND") {
                // The window as one command; when the server refuses it as a whole (nothing is
                // stored, RFC 3502 section 6.3.11), its messages go one by one below, so each
                // gets its own answer.
                if let Some(done) = self.multiappend(wire_mailbox, items, &window) {
                    for (k, r) in window.iter().zip(done) {
                        results[*k] = Some(r);
                    }
                    continue;
                }
            }
            let mut sent = Vec::new();
            for &k in &window {
                let (raw, flags, date) = items[k];
                match self.append_command(wire_mailbox, raw, flags, date) {
                    Err(e) => results[k] = Some(Err(e)),
                    Ok((command, args, dropped)) => {
                        let r = self.send_command(&command, &args);
                        match self.check(r) {
                            Ok(None) => sent.push((k, command, dropped)),
                            // Only a synchronising literal waits for an answer.
                            Ok(Some(_)) => {
                                results[k] = Some(Err(ImapError::Protocol(format!(
                                    "the server answered `{command}` before its literal was sent"
                                ))));
                                break;
                            }
                            Err(e) => {
                                results[k] = Some(Err(e));
                                break;
                            }
                        }
                    }
                }
            }
            for (k, command, dropped) in sent {
                let r = self.read_tagged(&command, &mut Vec::new());
                let r = self.check(r).and_then(|t| t.into_result(&command));
                results[k] = Some(r.map(|text| {
                    let (uidvalidity, uid) = parse_appenduid(&text);
                    Appended {
                        uidvalidity,
                        uid,
                        dropped_keywords: dropped,
                    }
                }));
            }
            // Anything sent but unanswered after a failure: outcome unknown.
            for &k in &window {
                if results[k].is_none() {
                    results[k] = Some(Err(self.outcome_unknown()));
                }
            }
        }
        Ok(results
            .into_iter()
            .map(|r| r.unwrap_or_else(|| Err(ImapError::Protocol("not sent".into()))))
            .collect())
    }

    /// The messages `window` of `items` in one MULTIAPPEND command (RFC 3502): one server
    /// transaction for the set, so one round of the server's fsyncs instead of one per
    /// message. Every literal is non-synchronising (the caller checked). Returns one result
    /// per message of the window, each UID taken from the tagged OK's `[APPENDUID v uid-set]`
    /// (RFC 4315 section 3: the set lists the new UIDs in the order of the messages; a set of
    /// another size gives no UIDs); `None` when the server refused the command (`NO`/`BAD`:
    /// nothing of it is stored) or a message failed a check made before sending (APPENDLIMIT,
    /// date), so the caller appends them one by one. A connection failure gives every message
    /// an outcome-unknown error.
    pub(super) fn multiappend(
        &mut self,
        wire_mailbox: &str,
        items: &[AppendItem<'_>],
        window: &[usize],
    ) -> Option<Vec<Result<Appended, ImapError>>> {
        let mut args = vec![Arg::Text("APPEND ".into()), astring(wire_mailbox)];
        let mut dropped = Vec::new();
        for &k in window {
            let (raw, flags, date) = items[k];
            let (_, one, d) = self.append_command(wire_mailbox, raw, flags, date).ok()?;
            // `APPEND <mailbox>` then, per message, ` (flags) "date" ` and its literal.
            args.extend(one.into_iter().skip(2));
            dropped.push(d);
        }
        let command = format!(
            "APPEND {} (MULTIAPPEND of {} messages)",
            quote(wire_mailbox),
            window.len()
        );
        let unknown = |me: &mut Self| {
            let n = window.len();
            Some((0..n).map(|_| Err(me.outcome_unknown())).collect())
        };
        let r = self.send_command(&command, &args);
        match self.check(r) {
            Ok(None) => {}
            Ok(Some(_)) | Err(_) => return unknown(self),
        }
        let r = self.read_tagged(&command, &mut Vec::new());
        let text = match self.check(r) {
            Ok(t) => match t.into_result(&command) {
                Ok(text) => text,
                Err(ImapError::No { .. } | ImapError::Bad { .. }) => return None,
                Err(_) => return unknown(self),
            },
            Err(_) => return unknown(self),
        };
        let (uidvalidity, uids) = match parse_appenduid_set(&text, window.len()) {
            Some((v, uids)) => (Some(v), uids.into_iter().map(Some).collect()),
            None => (None, vec![None; window.len()]),
        };
        Some(
            uids.into_iter()
                .zip(dropped)
                .map(|(uid, dropped_keywords)| {
                    Ok(Appended {
                        uidvalidity: uid.and(uidvalidity),
                        uid,
                        dropped_keywords,
                    })
                })
                .collect(),
        )
    }

    /// The APPEND command's arguments for one message, after the checks that need no server
    /// (APPENDLIMIT, date). Returns (command for errors, args, dropped keywords).
    #[allow(clippy::type_complexity)]
    pub(super) fn append_command<'a>(
        &self,
        wire_mailbox: &'a str,
        raw_crlf: &'a [u8],
        flags: &Flags,
        internal_date: Option<AppendDate>,
    ) -> Result<(String, Vec<Arg<'a>>, Vec<String>), ImapError> {
        let size = raw_crlf.len();
        let command = format!("APPEND {} {{{size}}}", quote(wire_mailbox));
        if let Some(limit) = self.append_limit() {
            if size as u64 > limit {
                return Err(ImapError::No {
                    command,
                    text: format!(
                        "[TOOBIG] the message is {size} octets, above the server's APPENDLIMIT \
                         of {limit} octets (not sent)"
                    ),
                });
            }
        }
        let mut dropped = Vec::new();
        let mut list = Vec::new();
        for f in flags.iter() {
            match f {
                Flag::Keyword(k) if !is_atom(k) => dropped.push(k.clone()),
                f => list.push(f.to_imap()),
            }
        }
        let date = match internal_date {
            None => String::new(),
            Some(AppendDate { secs, offset }) => {
                let d = imap_date_time(secs, offset).ok_or_else(|| {
                    ImapError::Protocol(format!(
                        "INTERNALDATE {secs} (seconds since 1970) cannot be written as an IMAP \
                         date-time; nothing was sent for `{command}`"
                    ))
                })?;
                format!(" \"{d}\"")
            }
        };
        let mut args = vec![Arg::Text("APPEND ".into()), astring(wire_mailbox)];
        args.push(Arg::Text(format!(" ({}){date} ", list.join(" "))));
        args.push(Arg::Literal(raw_crlf));
        Ok((command, args, dropped))
    }

    /// The error for an APPEND whose answer never came (the session failed meanwhile).
    pub(super) fn outcome_unknown(&mut self) -> ImapError {
        let why = match &self.state {
            State::Broken(why) => why.clone(),
            _ => "an earlier command failed".into(),
        };
        ImapError::Io(io::Error::other(format!(
            "no answer to this APPEND, the message may or may not be stored ({why})"
        )))
    }

    /// Before an APPEND to `wire_mailbox`: when that is the examined mailbox, leave it first
    /// (UNSELECT, RFC 3691, when announced; else CLOSE, which after EXAMINE removes nothing,
    /// RFC 3501 6.4.2). Courier-IMAP 5.0 refuses an APPEND to the mailbox it has open
    /// read-only (`NO Current box is selected READ-ONLY.`), which RFC 3501 6.3.11 allows. The
    /// next search EXAMINEs the mailbox again. A refused UNSELECT/CLOSE is ignored (the APPEND
    /// then tells); a lost connection leaves the session broken, as any command does.
    pub(super) fn note_append(&mut self, wire_mailbox: &str) {
        if self.examined_wire.as_deref() == Some(wire_mailbox) {
            let verb = if self.caps.has("UNSELECT") {
                Some("UNSELECT")
            } else if self.examined_read_write {
                // Opened read-write despite EXAMINE: a CLOSE would expunge the messages
                // marked \Deleted, and a server that did not open it read-only does not
                // refuse the APPEND for being read-only. Stay.
                None
            } else {
                Some("CLOSE")
            };
            if let Some(verb) = verb {
                let _ = self.raw_command(verb, &[Arg::Text(verb.into())]);
            }
            self.examined_wire = None;
            self.selected = None;
        }
    }
}

/// At most this many APPENDs, and this many octets, are in flight in [`ImapClient::append_many`].
const PIPELINE_MAX_COMMANDS: usize = 64;
const PIPELINE_MAX_BYTES: usize = 8 * 1024 * 1024;
