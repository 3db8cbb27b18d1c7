//! Commands on the wire: tagging, literals (synchronizing or not), sending, and reading the answer up to its tagged line.

use super::*;

impl ImapClient {
    /// True when a literal of `len` octets is sent non-synchronising.
    pub(super) fn nonsync(&self, len: usize) -> bool {
        (self.caps.has("LITERAL+") && len <= NONSYNC_LITERAL_MAX)
            || (self.caps.has("LITERAL-") && len <= LITERAL_MINUS_MAX)
    }

    /// Sends a command built of `args` and reads its answer. Returns the untagged responses
    /// (see [`Untagged`]; EXISTS, EXPUNGE and `OK [UIDVALIDITY n]` included as such) and the
    /// tagged OK's text. Untagged `EXISTS` updates the examined mailbox; a `BYE` ends the
    /// session. `command` names the command in errors (never a secret: LOGIN is named
    /// `LOGIN`). The untagged responses of one answer are held up to
    /// [`MAX_ANSWER`] bytes; a longer answer is an error and ends the session.
    pub(super) fn raw_command(
        &mut self,
        command: &str,
        args: &[Arg<'_>],
    ) -> Result<(Vec<Untagged>, String), ImapError> {
        let mut untagged = Vec::new();
        let r = self.send_command_reading(command, args, &mut untagged);
        let tagged = match self.check(r)? {
            Some(early) => early,
            None => {
                let r = self.read_tagged(command, &mut untagged);
                self.check(r)?
            }
        };
        let text = tagged.into_result(command)?;
        Ok((untagged, text))
    }

    /// Sends `args`, the tag first; the rest, literal octets included, straight to the stream.
    /// For a synchronising literal it waits for `+`; a tagged answer instead (a refusal) is
    /// returned as `Some`.
    pub(super) fn send_command_reading(
        &mut self,
        command: &str,
        args: &[Arg<'_>],
        untagged: &mut Vec<Untagged>,
    ) -> Result<Option<Tagged>, ImapError> {
        let mut line = String::new();
        let mut first = true;
        for a in args {
            match a {
                Arg::Text(s) => line.push_str(s),
                Arg::Literal(bytes) => {
                    let sync = !self.nonsync(bytes.len());
                    line.push_str(&format!(
                        "{{{}{}}}",
                        bytes.len(),
                        if sync { "" } else { "+" }
                    ));
                    self.send_line(&mut first, &line, command)?;
                    line.clear();
                    if sync {
                        loop {
                            match self.next(command)? {
                                Response::Continuation => break,
                                Response::Tagged { status, text, .. } => {
                                    return Ok(Some(Tagged { status, text }))
                                }
                                other => {
                                    if let Some(u) = self.note(other, command)? {
                                        untagged.push(u);
                                    }
                                }
                            }
                        }
                    }
                    let t = self.io_timeout;
                    self.stream
                        .get_mut()
                        .write_all(bytes)
                        .map_err(|e| ImapError::Io(net::readable_io_error(e, t)))?;
                }
            }
        }
        self.send_line(&mut first, &line, command)?;
        Ok(None)
    }

    /// [`send_command_reading`](Self::send_command_reading) for commands whose literals are all
    /// non-synchronising (nothing is read).
    pub(super) fn send_command(
        &mut self,
        command: &str,
        args: &[Arg<'_>],
    ) -> Result<Option<Tagged>, ImapError> {
        let mut ignored = Vec::new();
        self.send_command_reading(command, args, &mut ignored)
    }

    /// Writes `line` and CRLF; when `first`, a new tag goes in front. Before login only
    /// CAPABILITY, LOGIN, AUTHENTICATE and LOGOUT may be sent.
    pub(super) fn send_line(
        &mut self,
        first: &mut bool,
        line: &str,
        command: &str,
    ) -> Result<(), ImapError> {
        let t = self.io_timeout;
        let mut out = Vec::with_capacity(line.len() + 8);
        if *first {
            *first = false;
            let pre_auth = ["CAPABILITY", "LOGIN", "AUTHENTICATE", "LOGOUT"]
                .iter()
                .any(|c| command.starts_with(c));
            match (&self.state, pre_auth) {
                (State::Authenticated, _) | (State::NotAuthenticated, true) => {}
                _ => self.session()?,
            }
            self.tag += 1;
            out.extend_from_slice(format!("m{} ", self.tag).as_bytes());
        }
        out.extend_from_slice(line.as_bytes());
        out.extend_from_slice(b"\r\n");
        let s = self.stream.get_mut();
        s.write_all(&out)
            .and_then(|_| s.flush())
            .map_err(|e| ImapError::Io(net::readable_io_error(e, t)))
    }

    /// Reads responses until the tagged one; the untagged ones go to `untagged`.
    pub(super) fn read_tagged(
        &mut self,
        command: &str,
        untagged: &mut Vec<Untagged>,
    ) -> Result<Tagged, ImapError> {
        let mut held = 0usize;
        loop {
            match self.next(command)? {
                Response::Tagged { status, text, .. } => return Ok(Tagged { status, text }),
                Response::Continuation => {
                    return Err(ImapError::Protocol(format!(
                    "the server asked for a continuation nobody announced, answering `{command}`"
                )))
                }
                other => {
                    if let Some(u) = self.note(other, command)? {
                        held += u.text.len() + 16;
                        if held as u64 > MAX_ANSWER {
                            return Err(ImapError::Protocol(format!(
                                "answering `{}`: the server's answer went on past {} (no answer but a message is that long)",
                                shorten(command),
                                crate::core::limits::human(MAX_ANSWER)
                            )));
                        }
                        untagged.push(u);
                    }
                }
            }
        }
    }

    /// The next response of a command's answer (literals up to [`MAX_RESPONSE_TEXT`] octets:
    /// no answer but FETCH carries a message).
    pub(super) fn next(&mut self, command: &str) -> Result<Response, ImapError> {
        let mut parser = Parser::new().with_max_literal(MAX_RESPONSE_TEXT as u64);
        self.stream.next_response(&mut parser).map_err(|e| match e {
            NextError::Io(e) => ImapError::Io(net::readable_io_error(e, self.io_timeout)),
            NextError::Eof => ImapError::Io(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "connection closed by server",
            )),
            NextError::Parse(p) => {
                ImapError::Protocol(format!("answering `{}`: {p}", shorten(command)))
            }
        })
    }

    /// Reacts to an untagged response: EXISTS for the examined mailbox, BYE (an error).
    /// Returns it as an [`Untagged`] for the caller, `None` for FETCH data (unsolicited flag
    /// updates) and VANISHED.
    pub(super) fn note(
        &mut self,
        r: Response,
        _command: &str,
    ) -> Result<Option<Untagged>, ImapError> {
        let plain = |name: &str, number: Option<u64>, text: String| Untagged {
            name: name.into(),
            number,
            values: Some(Vec::new()),
            text,
        };
        Ok(match r {
            Response::Bye(text) => return Err(ImapError::Bye(bye_text(text))),
            Response::Exists(n) => {
                if let Some(sel) = self.selected.as_mut() {
                    sel.exists = n;
                }
                Some(plain("EXISTS", Some(u64::from(n)), String::new()))
            }
            Response::Expunge(n) => Some(plain("EXPUNGE", Some(u64::from(n)), String::new())),
            Response::UidValidity(n) => Some(Untagged {
                name: "OK".into(),
                number: None,
                values: None,
                text: format!("[UIDVALIDITY {n}]"),
            }),
            Response::Other(u) => Some(u),
            Response::Fetch(_) | Response::Vanished { .. } => None,
            // Handled by the callers.
            Response::Continuation | Response::Tagged { .. } => None,
        })
    }
}
