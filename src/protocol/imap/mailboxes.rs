//! Mailboxes: LIST, NAMESPACE and the delimiter, STATUS, EXAMINE and SELECT, CREATE.

use super::*;

impl ImapClient {
    /// All mailboxes: `LIST "" "*"`, with `RETURN (SPECIAL-USE)` when the server has
    /// SPECIAL-USE and LIST-EXTENDED (RFC 6154 / 5258). In the server's order; includes
    /// unselectable names (check [`MailboxInfo::selectable`]). Names are read exactly: quoted
    /// strings unescaped (`\"`, `\\`), literals as sent, 8-bit UTF-8 kept (RFC 6855). A LIST
    /// line that cannot be read is left out and kept for
    /// [`take_unreadable_lines`](Self::take_unreadable_lines), so the caller names it.
    ///
    /// Errors: [`ImapError::No`] / [`ImapError::Bad`] / I/O.
    pub fn list_mailboxes(&mut self) -> Result<Vec<MailboxInfo>, ImapError> {
        let pattern = if self.caps.has("SPECIAL-USE") && self.caps.has("LIST-EXTENDED") {
            "\"*\" RETURN (SPECIAL-USE)"
        } else {
            "\"*\""
        };
        let command = format!("LIST \"\" {pattern}");
        let (untagged, _) = self.raw_command(&command, &[Arg::Text(command.clone())])?;
        let mut out = Vec::new();
        for u in untagged.iter().filter(|u| u.name == "LIST") {
            match u.values.as_deref().and_then(list_entry) {
                Some((attrs, delim, name)) => out.push(MailboxInfo::from_list(&name, delim, attrs)),
                None => self.unreadable.push(esc(&shorten(&u.text))),
            }
        }
        Ok(out)
    }

    /// The LIST lines [`list_mailboxes`](Self::list_mailboxes) could not read since the last
    /// call (escaped, shortened), for the report: their mailboxes are not archived.
    pub fn take_unreadable_lines(&mut self) -> Vec<String> {
        std::mem::take(&mut self.unreadable)
    }

    /// Opens `mb` read-only with EXAMINE (RFC 3501 6.3.2): no flag changes, `\Seen` included.
    ///
    /// Errors: [`ImapError::No`] (e.g. the mailbox was deleted: `[NONEXISTENT]`),
    /// [`ImapError::Unusable`] when the answer has no UIDVALIDITY or one beyond 32 bits (that
    /// mailbox cannot be archived incrementally; the session is fine).
    pub fn examine(&mut self, mb: &MailboxInfo) -> Result<Selected, ImapError> {
        self.open_mailbox(mb, true)
    }

    /// EXAMINE (`read_only`) or SELECT `mb`, and remember it as the mailbox commands act on.
    pub(super) fn open_mailbox(
        &mut self,
        mb: &MailboxInfo,
        read_only: bool,
    ) -> Result<Selected, ImapError> {
        self.selected = None;
        self.examined_wire = None;
        self.nomodseq = false;
        let verb = if read_only { "EXAMINE" } else { "SELECT" };
        let command = format!("{verb} {}", quote(&mb.wire));
        let (untagged, tagged) = self.raw_command(
            &command,
            &[Arg::Text(format!("{verb} ")), astring(&mb.wire)],
        )?;
        // A server that answers EXAMINE with `[READ-WRITE]` opened the mailbox read-write
        // after all: a CLOSE would then expunge its messages marked \Deleted (RFC 3501 6.4.2).
        self.examined_read_write = read_only
            && tagged
                .trim_start()
                .to_ascii_uppercase()
                .starts_with("[READ-WRITE]");
        let mut uidvalidity: Option<Result<u32, String>> = None;
        let mut sel = Selected {
            uidvalidity: 0,
            uidnext: None,
            exists: 0,
            highestmodseq: None,
        };
        for u in &untagged {
            match (u.name.as_str(), u.number) {
                ("EXISTS", Some(n)) => sel.exists = u32::try_from(n).unwrap_or(u32::MAX),
                ("OK", _) => match u.code() {
                    Some((code, args)) if code == "UIDVALIDITY" => {
                        uidvalidity = Some(args.parse().map_err(|_| args.clone()));
                    }
                    Some((code, args)) if code == "UIDNEXT" => sel.uidnext = args.parse().ok(),
                    Some((code, args)) if code == "HIGHESTMODSEQ" => {
                        sel.highestmodseq = args.parse().ok();
                    }
                    Some((code, _)) if code == "NOMODSEQ" => self.nomodseq = true,
                    _ => {}
                },
                _ => {}
            }
        }
        if self.nomodseq {
            sel.highestmodseq = None;
        }
        sel.uidvalidity = match uidvalidity {
            Some(Ok(v)) => v,
            Some(Err(sent)) => {
                return Err(ImapError::Unusable {
                    command,
                    text: format!(
                        "UIDVALIDITY `{}` is not a 32-bit number (RFC 3501 nz-number)",
                        esc(&shorten(&sent))
                    ),
                })
            }
            None => {
                return Err(ImapError::Unusable {
                    command,
                    text: "the answer has no UIDVALIDITY".into(),
                })
            }
        };
        self.selected = Some(sel);
        if read_only {
            self.examined_wire = Some(mb.wire.clone());
        }
        Ok(sel)
    }

    /// STATUS (MESSAGES UIDNEXT UIDVALIDITY [HIGHESTMODSEQ]) of `mb` (RFC 3501 6.3.10); does
    /// not change the selected mailbox. Do not use it on the examined mailbox. The answer is
    /// matched by its decoded name (a server may quote or escape it differently than we
    /// sent it). When a CONDSTORE server refuses HIGHESTMODSEQ (`BAD`/`NO`), STATUS is asked
    /// again without it and CONDSTORE is off for the session.
    ///
    /// Returns `Ok(None)` when the answer cannot tell whether the mailbox changed: no STATUS
    /// line for it, `STATUS name ()`, no UIDVALIDITY or MESSAGES, or a number beyond 32 bits.
    /// Callers then EXAMINE and list the mailbox.
    ///
    /// Errors: [`ImapError::No`] / [`ImapError::Bad`] (that mailbox), I/O.
    pub fn status(&mut self, mb: &MailboxInfo) -> Result<Option<Status>, ImapError> {
        loop {
            let items = if self.caps.has("CONDSTORE") && !self.modseq_refused {
                "(MESSAGES UIDNEXT UIDVALIDITY HIGHESTMODSEQ)"
            } else {
                "(MESSAGES UIDNEXT UIDVALIDITY)"
            };
            let command = format!("STATUS {} {items}", quote(&mb.wire));
            let r = self.raw_command(
                &command,
                &[
                    Arg::Text("STATUS ".into()),
                    astring(&mb.wire),
                    Arg::Text(format!(" {items}")),
                ],
            );
            let untagged = match r {
                Ok((u, _)) => u,
                Err(ImapError::Bad { .. } | ImapError::No { .. })
                    if items.contains("HIGHESTMODSEQ") =>
                {
                    // A server announcing CONDSTORE that does not take HIGHESTMODSEQ here.
                    self.condstore = false;
                    self.modseq_refused = true;
                    continue;
                }
                Err(e) => return Err(e),
            };
            return Ok(untagged
                .iter()
                .filter(|u| u.name == "STATUS")
                .filter_map(|u| status_entry(u.values.as_deref()?))
                .filter(|(name, _)| {
                    name == mb.wire.as_bytes()
                        || (mb.name.is_inbox() && name.eq_ignore_ascii_case(b"INBOX"))
                })
                .map(|(_, s)| s)
                .next_back()
                .flatten());
        }
    }

    /// [`status`](Self::status), or when its answer cannot be used, the same numbers from an
    /// EXAMINE of `mb` (which then is the examined mailbox).
    ///
    /// Errors: as [`status`](Self::status) and [`examine`](Self::examine).
    pub fn status_or_examine(&mut self, mb: &MailboxInfo) -> Result<Status, ImapError> {
        if let Some(st) = self.status(mb)? {
            return Ok(st);
        }
        let sel = self.examine(mb)?;
        Ok(Status {
            messages: sel.exists,
            uidnext: sel.uidnext,
            uidvalidity: sel.uidvalidity,
            highestmodseq: sel.highestmodseq,
        })
    }

    /// The personal namespace: the first personal namespace of NAMESPACE (RFC 2342) when the
    /// server has it, else prefix `""` and the delimiter of [`delimiter`](Self::delimiter).
    /// A NAMESPACE whose personal namespace is `NIL` or has no delimiter gets the LIST one.
    /// Cached for the session.
    pub fn personal_namespace(&mut self) -> Result<Namespace, ImapError> {
        if let Some(ns) = &self.namespace {
            return Ok(ns.clone());
        }
        let mut ns = None;
        if self.caps.has("NAMESPACE") {
            let (untagged, _) = self.raw_command("NAMESPACE", &[Arg::Text("NAMESPACE".into())])?;
            ns = untagged
                .iter()
                .filter(|u| u.name == "NAMESPACE")
                .find_map(|u| namespace_entry(u.values.as_deref()?));
        }
        let ns = match ns {
            Some(n) if n.delimiter.is_some() => n,
            Some(n) => Namespace {
                prefix: n.prefix,
                delimiter: self.delimiter()?,
            },
            None => Namespace {
                prefix: String::new(),
                delimiter: self.delimiter()?,
            },
        };
        self.namespace = Some(ns.clone());
        Ok(ns)
    }

    /// The hierarchy delimiter: `LIST "" ""` (RFC 3501 6.3.8); `None` for a flat namespace
    /// (`NIL`, or no answer line). Cached for the session.
    pub fn delimiter(&mut self) -> Result<Option<char>, ImapError> {
        if let Some(d) = self.delimiter {
            return Ok(d);
        }
        let (untagged, _) =
            self.raw_command("LIST \"\" \"\"", &[Arg::Text("LIST \"\" \"\"".into())])?;
        let d = untagged
            .iter()
            .filter(|u| u.name == "LIST")
            .find_map(|u| list_entry(u.values.as_deref()?))
            .and_then(|(_, d, _)| d);
        self.delimiter = Some(d);
        Ok(d)
    }

    /// True when `LIST "" <wire_name>` names the mailbox (INBOX case-insensitively).
    pub(super) fn mailbox_exists(&mut self, wire_name: &str) -> Result<bool, ImapError> {
        let command = format!("LIST \"\" {}", quote(wire_name));
        let (untagged, _) = self.raw_command(
            &command,
            &[Arg::Text("LIST \"\" ".into()), astring(wire_name)],
        )?;
        Ok(untagged
            .iter()
            .filter(|u| u.name == "LIST")
            .filter_map(|u| list_entry(u.values.as_deref()?))
            .any(|(_, _, name)| {
                name == wire_name
                    || (name.eq_ignore_ascii_case("INBOX")
                        && wire_name.eq_ignore_ascii_case("INBOX"))
            }))
    }

    /// CREATE (RFC 3501 6.3.3) of `wire_name` (from [`mailbox_wire_name`]) and of its missing
    /// parents, each level under the namespace prefix (servers should create parents
    /// themselves; not all do). Returns `true` when `wire_name` was created, `false` when it
    /// already existed (INBOX always does; `NO [ALREADYEXISTS]`, or a `NO` after which LIST
    /// shows the name).
    ///
    /// Errors: the server's `NO` to the CREATE of `wire_name` or a parent when the name does
    /// not exist afterwards ([`ImapError::No`], e.g. `[CANNOT]`, `[NOPERM]`, `[OVERQUOTA]`).
    pub fn create_mailbox(&mut self, wire_name: &str) -> Result<bool, ImapError> {
        if wire_name.eq_ignore_ascii_case("INBOX") || self.mailbox_exists(wire_name)? {
            return Ok(false);
        }
        let delim = self.delimiter()?;
        let prefix = self.personal_namespace()?.prefix;
        if let Some(d) = delim {
            // Parents: every proper prefix ending before a delimiter, beyond the namespace
            // prefix (`INBOX.` itself is not created).
            let mut parents = Vec::new();
            for (i, c) in wire_name.char_indices() {
                if c == d && i > 0 && i + c.len_utf8() < wire_name.len() {
                    let parent = &wire_name[..i];
                    let is_prefix = prefix.trim_end_matches(d) == parent;
                    if !is_prefix && !parent.eq_ignore_ascii_case("INBOX") {
                        parents.push(parent.to_string());
                    }
                }
            }
            for p in parents {
                if !self.mailbox_exists(&p)? {
                    self.create_one(&p)?;
                }
            }
        }
        self.create_one(wire_name)
    }

    /// One CREATE; `Ok(false)` when the name turns out to exist.
    pub(super) fn create_one(&mut self, wire_name: &str) -> Result<bool, ImapError> {
        let command = format!("CREATE {}", quote(wire_name));
        match self.raw_command(&command, &[Arg::Text("CREATE ".into()), astring(wire_name)]) {
            Ok(_) => Ok(true),
            Err(e @ ImapError::No { .. }) => {
                if e.response_code().as_deref() == Some("ALREADYEXISTS")
                    || self.mailbox_exists(wire_name)?
                {
                    Ok(false)
                } else {
                    Err(e)
                }
            }
            Err(e) => Err(e),
        }
    }

    /// Opens `mb` read-write with SELECT (RFC 3501 6.3.1), for `prune`: flags can then be
    /// stored and messages expunged. [`list_messages`](Self::list_messages) lists it as after
    /// [`examine`](Self::examine).
    ///
    /// Errors: [`ImapError::No`] (e.g. the mailbox was deleted, or is read-only for this
    /// user), [`ImapError::Protocol`] when the server sends no UIDVALIDITY.
    pub fn select(&mut self, mb: &MailboxInfo) -> Result<Selected, ImapError> {
        self.open_mailbox(mb, false)
    }
}
