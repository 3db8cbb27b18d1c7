//! The session: connecting (TLS or STARTTLS), the greeting, capabilities, LOGIN and AUTHENTICATE, ENABLE CONDSTORE, LOGOUT, and the bookkeeping of a broken connection.

use super::*;

impl ImapClient {
    /// Connects and reads the greeting; for `imap://` (`TlsMode::StartTls`) also CAPABILITY
    /// and STARTTLS (RFC 3501 6.2.1), then reads CAPABILITY again over TLS.
    ///
    /// Errors: [`ImapError::Net`] (connect, TLS), [`ImapError::NoTls`] when an `imap://` server
    /// has no STARTTLS (or refuses it) and `opts.allow_plaintext` is false, [`ImapError::Bye`]
    /// for a `* BYE` greeting, [`ImapError::Protocol`] for a `PREAUTH` greeting (not supported)
    /// or anything else unexpected, [`ImapError::Io`].
    pub fn connect(spec: &ServerSpec, opts: &ImapOptions) -> Result<Self, ImapError> {
        let tcp = net::connect_tcp(&spec.host, spec.port, &opts.timeouts)?;
        let io_timeout = tcp.read_timeout().ok().flatten();
        let stream = match spec.tls {
            TlsMode::Implicit => {
                let mut s = net::tls_wrap(tcp, &spec.host, &opts.tls)?;
                let greeting = read_line_unbuffered(&mut s, io_timeout)?;
                check_greeting(&greeting)?;
                s
            }
            TlsMode::StartTls => starttls(Stream::plain(tcp, &spec.host), spec, opts, io_timeout)?,
        };
        let tls = stream.is_tls();
        let mut client = ImapClient {
            state: State::NotAuthenticated,
            caps: Capabilities::default(),
            host: spec.host.clone(),
            tls,
            allow_plaintext: opts.allow_plaintext,
            auth: opts.auth,
            io_timeout,
            condstore: false,
            nomodseq: false,
            modseq_refused: false,
            selected: None,
            stream: ReadBuf::new(stream),
            tag: 0,
            examined_wire: None,
            examined_read_write: false,
            namespace: None,
            delimiter: None,
            unreadable: Vec::new(),
        };
        client.refresh_capabilities()?;
        Ok(client)
    }

    /// True when the session cannot be used any more (after an I/O error, a broken
    /// protocol, a refused literal): the caller connects again.
    pub fn is_broken(&self) -> bool {
        matches!(self.state, State::Broken(_))
    }

    /// True when the session is encrypted.
    pub fn is_tls(&self) -> bool {
        self.tls
    }

    /// Logs in with the method from [`ImapOptions::auth`]; `secret` is the password, or the
    /// OAuth2 access token for XOAUTH2 / OAUTHBEARER. Reads CAPABILITY again afterwards
    /// (from the tagged OK's `[CAPABILITY ...]` when the server sends it).
    ///
    /// LOGIN sends the user name and password as quoted strings when they are printable
    /// ASCII (`"` and `\` escaped), else as literals (RFC 3501 4.3 and 9: a quoted string is
    /// 7-bit; a password with 8-bit UTF-8, CR or LF needs a literal). AUTHENTICATE sends the
    /// SASL response in base64 (RFC 4616: UTF-8 bytes), in the command line when the server
    /// has SASL-IR (RFC 4959).
    ///
    /// Errors: [`ImapError::Auth`] for refused credentials (NO with no response code, or
    /// `AUTHENTICATIONFAILED`, `AUTHORIZATIONFAILED`, `EXPIRED`, ...), or LOGINDISABLED
    /// without AUTH=PLAIN; [`ImapError::No`] for a refusal that is not about the credentials
    /// (`[UNAVAILABLE]`, `[SERVERBUG]`, `[INUSE]`, `[LIMIT]`) so callers can retry later;
    /// [`ImapError::NoTls`] on an unencrypted session without `allow_plaintext`. The secret is
    /// never part of an error.
    pub fn login(&mut self, user: &str, secret: &str) -> Result<(), ImapError> {
        if !self.tls && !self.allow_plaintext {
            return Err(ImapError::NoTls("the session is not encrypted".into()));
        }
        match &self.state {
            State::NotAuthenticated => {}
            State::Authenticated => return Err(ImapError::Protocol("already logged in".into())),
            State::Broken(_) => return self.session(),
        }
        let method = match self.auth {
            ImapAuth::Auto if self.caps.has("AUTH=PLAIN") => ImapAuth::Plain,
            ImapAuth::Auto => ImapAuth::Login,
            m => m,
        };
        if method == ImapAuth::Login && self.caps.has("LOGINDISABLED") {
            return Err(ImapError::Auth(
                "the server disabled LOGIN (LOGINDISABLED) and offers no AUTHENTICATE PLAIN".into(),
            ));
        }
        // A NUL cannot be in a LOGIN literal (RFC 3501 9: CHAR8 is %x01-ff) and separates the
        // fields of SASL PLAIN (RFC 4616 2): refused before anything is sent.
        let nul_ok = !matches!(method, ImapAuth::Login | ImapAuth::Auto | ImapAuth::Plain);
        if !nul_ok && (user.contains('\0') || secret.contains('\0')) {
            return Err(ImapError::Auth(
                "the user name or password contains a NUL byte, which IMAP LOGIN and SASL PLAIN cannot carry (RFC 3501 9, RFC 4616 2); nothing was sent".into(),
            ));
        }
        let result = match method {
            ImapAuth::Login | ImapAuth::Auto => self.raw_command(
                "LOGIN",
                &[
                    Arg::Text("LOGIN ".into()),
                    astring(user),
                    Arg::Text(" ".into()),
                    astring(secret),
                ],
            ),
            ImapAuth::Plain => self.authenticate("PLAIN", format!("\0{user}\0{secret}"), ""),
            // On failure the server sends a JSON error as a challenge and waits for an empty
            // response before its tagged NO.
            ImapAuth::XOAuth2 => self.authenticate(
                "XOAUTH2",
                format!("user={user}\x01auth=Bearer {secret}\x01\x01"),
                "",
            ),
            // RFC 7628 3.1; after an error challenge the client sends a lone %x01.
            ImapAuth::OAuthBearer => self.authenticate(
                "OAUTHBEARER",
                format!("n,a={},\x01auth=Bearer {secret}\x01\x01", gs2_escape(user)),
                "\x01",
            ),
        };
        match result {
            Ok((_, text)) => {
                self.state = State::Authenticated;
                match capability_code(&text) {
                    Some(caps) => {
                        self.caps = caps;
                        Ok(())
                    }
                    None => self.refresh_capabilities(),
                }
            }
            Err(e) => Err(login_error(e)),
        }
    }

    /// AUTHENTICATE `mechanism` (RFC 3501 6.2.2) with the SASL response `first` (base64 in the
    /// command line with SASL-IR, else after the server's `+`), then `after` to any further
    /// challenge (an error report, RFC 7628 3.2.3), at most twice.
    pub(super) fn authenticate(
        &mut self,
        mechanism: &str,
        first: String,
        after: &str,
    ) -> Result<(Vec<Untagged>, String), ImapError> {
        use base64::Engine as _;
        let b64 = |s: &str| base64::engine::general_purpose::STANDARD.encode(s.as_bytes());
        let command = format!("AUTHENTICATE {mechanism}");
        let mut first = Some(b64(&first));
        let line = if self.caps.has("SASL-IR") {
            format!("{command} {}", first.take().unwrap_or_default())
        } else {
            command.clone()
        };
        let r = self.send_line(&mut true, &line, &command);
        self.check(r)?;
        let mut untagged = Vec::new();
        let mut rounds = 0;
        loop {
            let r = self.next(&command);
            match self.check(r)? {
                Response::Continuation => {
                    rounds += 1;
                    if rounds > 3 {
                        let e = ImapError::Protocol(format!(
                            "the server keeps asking for more after `{command}`"
                        ));
                        return Err(self.broken(e));
                    }
                    let reply = first.take().unwrap_or_else(|| b64(after));
                    let r = self.send_line(&mut false, &reply, &command);
                    self.check(r)?;
                }
                Response::Tagged { status, text, .. } => {
                    let text = Tagged { status, text }.into_result(&command)?;
                    return Ok((untagged, text));
                }
                other => {
                    if let Some(u) = self.note(other, &command)? {
                        untagged.push(u);
                    }
                }
            }
        }
    }

    /// The server's capabilities (re-read after login, as they usually change).
    pub fn capabilities(&self) -> &Capabilities {
        &self.caps
    }

    pub(super) fn refresh_capabilities(&mut self) -> Result<(), ImapError> {
        let (untagged, _) = self.raw_command("CAPABILITY", &[Arg::Text("CAPABILITY".into())])?;
        let mut tokens = Vec::new();
        for u in untagged.iter().filter(|u| u.name == "CAPABILITY") {
            // Read from the text: a server's trailing space or odd token must not hide the
            // list (Exchange ends it with a space).
            tokens.extend(u.text.split_ascii_whitespace().map(str::to_string));
        }
        self.caps = Capabilities::from_tokens(tokens);
        Ok(())
    }

    /// Turns CONDSTORE on (RFC 7162 3.1): `ENABLE CONDSTORE` when the server has ENABLE, else
    /// CONDSTORE is used implicitly by asking for MODSEQ. Returns whether mod-sequences are
    /// available; afterwards [`examine`](Self::examine) reports HIGHESTMODSEQ and
    /// [`list_messages`](Self::list_messages) MODSEQ. A refused ENABLE leaves CONDSTORE off
    /// (`Ok(false)`).
    pub fn enable_condstore(&mut self) -> Result<bool, ImapError> {
        if !self.caps.has("CONDSTORE") {
            return Ok(false);
        }
        if self.caps.has("ENABLE") {
            match self.raw_command("ENABLE CONDSTORE", &[Arg::Text("ENABLE CONDSTORE".into())]) {
                Ok(_) => {}
                Err(ImapError::No { .. } | ImapError::Bad { .. }) => return Ok(false),
                Err(e) => return Err(e),
            }
        }
        self.condstore = true;
        Ok(true)
    }

    /// Marks the session unusable after `e` and returns it.
    pub(super) fn broken(&mut self, e: ImapError) -> ImapError {
        self.state = State::Broken(e.to_string());
        self.selected = None;
        self.examined_wire = None;
        e
    }

    /// LOGOUT (RFC 3501 6.1.3) and close. A session that never logged in is just closed.
    pub fn logout(mut self) -> Result<(), ImapError> {
        match self.state {
            State::Authenticated => match self.raw_command("LOGOUT", &[Arg::Text("LOGOUT".into())])
            {
                // The BYE that announces the end of the session is expected.
                Ok(_) | Err(ImapError::Bye(_)) => Ok(()),
                Err(e) => Err(e),
            },
            State::NotAuthenticated | State::Broken(_) => Ok(()),
        }
    }

    /// `Ok` when logged in and usable.
    pub(super) fn session(&mut self) -> Result<(), ImapError> {
        match &self.state {
            State::Authenticated => Ok(()),
            State::NotAuthenticated => Err(ImapError::Protocol("not logged in".into())),
            State::Broken(why) => Err(ImapError::Io(io::Error::other(format!(
                "the connection is unusable after an earlier error ({why})"
            )))),
        }
    }

    /// Marks the session broken after an I/O or protocol-synchronisation error.
    pub(super) fn check<T>(&mut self, r: Result<T, ImapError>) -> Result<T, ImapError> {
        if let Err(e) = &r {
            if matches!(
                e,
                ImapError::Io(_)
                    | ImapError::Bye(_)
                    | ImapError::Protocol(_)
                    | ImapError::TooLarge { .. }
            ) && !self.is_broken()
            {
                self.state = State::Broken(e.to_string());
                self.selected = None;
                self.examined_wire = None;
            }
        }
        r
    }
}

/// RFC 5801 `saslname` escaping for the authorization identity: `,` and `=`.
fn gs2_escape(s: &str) -> String {
    s.replace('=', "=3D").replace(',', "=2C")
}

/// Login errors: a NO is [`ImapError::Auth`] unless [`crate::core::fault::classify`] says the
/// credentials may be fine (a response code of RFC 5530 or a provider's text).
fn login_error(e: ImapError) -> ImapError {
    match e {
        ImapError::No { command, text } => {
            // `[UNAVAILABLE]`, `[SERVERBUG]`, `[INUSE]`, `[LIMIT]`, "too many simultaneous
            // connections", a used-up bandwidth allowance: the credentials may be fine.
            use crate::core::fault::{classify, Command, Status};
            if classify(Status::No, Command::Login, &text)
                .class
                .temporary()
            {
                ImapError::No { command, text }
            } else {
                ImapError::Auth(text)
            }
        }
        other => other,
    }
}

/// The capabilities in a response code `[CAPABILITY ...]` at the start of `text` (RFC 3501
/// 7.1), as a server may send them in its tagged OK to LOGIN.
fn capability_code(text: &str) -> Option<Capabilities> {
    let inner = text.trim_start().strip_prefix('[')?;
    let inner = &inner[..inner.find(']')?];
    let mut words = inner.split_ascii_whitespace();
    if !words.next()?.eq_ignore_ascii_case("CAPABILITY") {
        return None;
    }
    Some(Capabilities::from_tokens(words))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn capabilities_in_a_response_code() {
        let c = capability_code("[CAPABILITY IMAP4rev1 IDLE CONDSTORE ] Logged in").unwrap();
        assert!(c.has("IDLE") && c.has("CONDSTORE"));
        assert_eq!(capability_code("[ALERT] hi"), None);
        assert_eq!(capability_code("Logged in"), None);
    }
}
