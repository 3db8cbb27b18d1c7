//! The `imap://` start on the plain socket (RFC 3501 6.2.1): the greeting, CAPABILITY and
//! STARTTLS, read one byte at a time so that nothing sent before the TLS handshake can be
//! buffered and mistaken for protected data.

use super::*;

/// The longest line accepted before TLS (greeting, CAPABILITY), in bytes.
const MAX_PRE_TLS_LINE: usize = 64 * 1024;

/// Reads one CRLF-terminated line one byte at a time (no read-ahead), without the line end.
pub(super) fn read_line_unbuffered<S: Read>(
    s: &mut S,
    io_timeout: Option<Duration>,
) -> Result<String, ImapError> {
    let mut line = Vec::new();
    let mut b = [0u8; 1];
    loop {
        match s.read(&mut b) {
            Ok(0) => {
                return Err(ImapError::Io(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "connection closed by server",
                )))
            }
            Ok(_) => {
                if b[0] == b'\n' {
                    if line.last() == Some(&b'\r') {
                        line.pop();
                    }
                    return Ok(String::from_utf8_lossy(&line).into_owned());
                }
                line.push(b[0]);
                if line.len() > MAX_PRE_TLS_LINE {
                    return Err(ImapError::Protocol(format!(
                        "a line from the server is longer than {MAX_PRE_TLS_LINE} bytes"
                    )));
                }
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(ImapError::Io(net::readable_io_error(e, io_timeout))),
        }
    }
}

/// Checks the server greeting (RFC 3501 7.1): `* OK` is fine, `* BYE` and `* PREAUTH` are not.
pub fn check_greeting(line: &str) -> Result<(), ImapError> {
    let upper = line.to_ascii_uppercase();
    if upper.starts_with("* OK") {
        Ok(())
    } else if upper.starts_with("* BYE") {
        Err(ImapError::Bye(line[5..].trim().to_string()))
    } else if upper.starts_with("* PREAUTH") {
        Err(ImapError::Protocol(
            "the server greeted with PREAUTH (already authenticated), which is not supported"
                .into(),
        ))
    } else {
        Err(ImapError::Protocol(format!(
            "not an IMAP greeting: `{}`",
            shorten(line)
        )))
    }
}

/// Runs one command on the plain socket before TLS and returns its untagged lines.
/// Errors: NO/BAD as [`ImapError::No`] / [`ImapError::Bad`].
fn pre_tls_command(
    tcp: &mut Stream,
    tag: &str,
    command: &str,
    io_timeout: Option<Duration>,
) -> Result<Vec<String>, ImapError> {
    tcp.write_all(format!("{tag} {command}\r\n").as_bytes())
        .and_then(|_| tcp.flush())
        .map_err(|e| ImapError::Io(net::readable_io_error(e, io_timeout)))?;
    let mut untagged = Vec::new();
    loop {
        let line = read_line_unbuffered(tcp, io_timeout)?;
        if let Some(rest) = line.strip_prefix(&format!("{tag} ")) {
            let (status, text) = rest.split_once(' ').unwrap_or((rest, ""));
            return match status.to_ascii_uppercase().as_str() {
                "OK" => Ok(untagged),
                "NO" => Err(ImapError::No {
                    command: command.into(),
                    text: text.into(),
                }),
                "BAD" => Err(ImapError::Bad {
                    command: command.into(),
                    text: text.into(),
                }),
                _ => Err(ImapError::Protocol(format!(
                    "unexpected answer to `{command}`: `{}`",
                    shorten(&line)
                ))),
            };
        }
        if line.to_ascii_uppercase().starts_with("* BYE") {
            return Err(ImapError::Bye(line[5..].trim().to_string()));
        }
        untagged.push(line);
    }
}

/// The `imap://` start: greeting, CAPABILITY, STARTTLS and the TLS handshake (RFC 3501 6.2.1);
/// or, without STARTTLS and with plain text allowed, the plain socket.
pub(super) fn starttls(
    mut tcp: Stream,
    spec: &ServerSpec,
    opts: &ImapOptions,
    io_timeout: Option<Duration>,
) -> Result<Stream, ImapError> {
    let greeting = read_line_unbuffered(&mut tcp, io_timeout)?;
    check_greeting(&greeting)?;
    let lines = pre_tls_command(&mut tcp, "m1", "CAPABILITY", io_timeout)?;
    let caps = Capabilities::from_tokens(lines.iter().flat_map(|l| {
        let mut w = l.split_ascii_whitespace();
        match (w.next(), w.next()) {
            (Some("*"), Some(c)) if c.eq_ignore_ascii_case("CAPABILITY") => w.collect(),
            _ => Vec::new(),
        }
    }));
    if !caps.has("STARTTLS") {
        if opts.allow_plaintext {
            return Ok(tcp);
        }
        return Err(ImapError::NoTls(format!(
            "{} does not offer STARTTLS (use imaps:// or --allow-plaintext)",
            spec.host
        )));
    }
    match pre_tls_command(&mut tcp, "m2", "STARTTLS", io_timeout) {
        Ok(_) => Ok(tcp.start_tls(&spec.host, &opts.tls)?),
        Err(ImapError::No { text, .. } | ImapError::Bad { text, .. }) => {
            if opts.allow_plaintext {
                Ok(tcp)
            } else {
                Err(ImapError::NoTls(format!(
                    "{} refused STARTTLS: {text}",
                    spec.host
                )))
            }
        }
        Err(e) => Err(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn greetings() {
        assert!(check_greeting("* OK [CAPABILITY IMAP4rev1] ready").is_ok());
        assert!(matches!(
            check_greeting("* BYE too many connections"),
            Err(ImapError::Bye(t)) if t == "too many connections"
        ));
        assert!(matches!(
            check_greeting("* PREAUTH hi"),
            Err(ImapError::Protocol(_))
        ));
        assert!(matches!(
            check_greeting("+OK POP3 ready"),
            Err(ImapError::Protocol(_))
        ));
    }
}
