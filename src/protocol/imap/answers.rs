//! Reading what the server answered, beyond the response reader ([`reader`]): the data of
//! LIST, STATUS and NAMESPACE responses, the response codes in a status text (`[APPENDUID
//! ...]`, `[TOOBIG]`), the tagged end of a command, and the server's words made fit for an
//! error message (one line, control characters escaped, long text shortened).

use super::*;

/// Server text in an error message, with control characters escaped (`\r`, `\u{1b}`): an
/// error stays one line and a hostile server cannot send terminal escapes to the user.
pub(super) fn esc(text: &str) -> String {
    crate::core::endpoint::escape_controls(text)
}

pub(super) fn shorten(s: &str) -> String {
    const MAX: usize = 200;
    if s.len() <= MAX {
        return s.to_string();
    }
    let mut end = MAX;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}...", &s[..end])
}

/// The text of a BYE for an error: the server's, or a word that there was none.
pub(super) fn bye_text(text: String) -> String {
    if text.is_empty() {
        "(no reason given)".into()
    } else {
        text
    }
}

pub(super) fn missing(item: &str, uid: u32) -> ImapError {
    ImapError::Protocol(format!("the server sent no valid {item} for UID {uid}"))
}

/// The response code at the start of a response text (`[TOOBIG] Message too large`).
pub(super) fn response_code(text: &str) -> Option<String> {
    let inner = text.trim_start().strip_prefix('[')?;
    let end = inner.find(']')?;
    let word = inner[..end].split_ascii_whitespace().next()?;
    Some(word.to_ascii_uppercase())
}

/// The tagged end of a command: status (`OK`, `NO`, `BAD`) and the rest of the line.
#[derive(Debug)]
pub(super) struct Tagged {
    pub(super) status: String,
    pub(super) text: String,
}

impl Tagged {
    pub(super) fn into_result(self, command: &str) -> Result<String, ImapError> {
        match self.status.as_str() {
            "OK" => Ok(self.text),
            "NO" => Err(ImapError::No {
                command: command.into(),
                text: self.text,
            }),
            "BAD" => Err(ImapError::Bad {
                command: command.into(),
                text: self.text,
            }),
            _ => Err(ImapError::Protocol(format!(
                "unexpected answer to `{command}`: `{} {}`",
                self.status,
                shorten(&self.text)
            ))),
        }
    }
}

/// One LIST (or LSUB) response's data, tokenised: `(attributes) delimiter name` (RFC 3501
/// 7.2.2) as (attributes as sent, delimiter, name). The name is unescaped (quoted) or as
/// sent (literal, atom); 8-bit octets are kept when they are UTF-8. `None` when malformed.
pub fn list_entry(values: &[Value]) -> Option<(Vec<String>, Option<char>, String)> {
    let [Value::List(attrs), delim, name, ..] = values else {
        return None;
    };
    let attrs = attrs.iter().map(Value::text).collect::<Option<Vec<_>>>()?;
    let delimiter = match delim {
        Value::Nil => None,
        d => d.text()?.chars().next(),
    };
    let name = match name {
        Value::Nil => return None,
        n => String::from_utf8_lossy(n.octets()?).into_owned(),
    };
    Some((attrs, delimiter, name))
}

/// Parses `* LIST (attrs) "delim" name` data into (name, delimiter).
pub fn parse_list(data: &[u8]) -> Option<(String, Option<char>)> {
    let (_, delimiter, name) = list_entry(&tokenize(data)?)?;
    Some((name, delimiter))
}

/// One STATUS response's data (RFC 3501 7.2.4): the mailbox name's octets and, when the
/// answer has what a no-change decision needs (MESSAGES and UIDVALIDITY, every number within
/// 32 bits but HIGHESTMODSEQ's 63), the [`Status`]. `None` when malformed.
pub(super) fn status_entry(values: &[Value]) -> Option<(Vec<u8>, Option<Status>)> {
    let [name, rest @ ..] = values else {
        return None;
    };
    let name = name.octets()?.to_vec();
    // The item list; Exchange has been seen to send nothing or a space instead of `()`.
    let items: &[Value] = match rest.first() {
        Some(Value::List(items)) => items,
        None => &[],
        Some(_) => return Some((name, None)),
    };
    let (mut messages, mut uidnext, mut uidvalidity, mut highestmodseq) = (None, None, None, None);
    let mut usable = true;
    for pair in items.chunks(2) {
        let [key, value] = pair else {
            usable = false;
            break;
        };
        let (Some(key), Some(n)) = (key.text(), value.number()) else {
            usable = false;
            continue;
        };
        let small = u32::try_from(n).ok();
        match key.to_ascii_uppercase().as_str() {
            "MESSAGES" => messages = Some(small),
            "UIDNEXT" => uidnext = Some(small),
            "UIDVALIDITY" => uidvalidity = Some(small),
            "HIGHESTMODSEQ" => highestmodseq = Some(n),
            _ => {}
        }
    }
    let status = match (usable, messages, uidvalidity, uidnext) {
        (true, Some(Some(messages)), Some(Some(uidvalidity)), uidnext)
            if uidnext.is_none_or(|u| u.is_some()) =>
        {
            Some(Status {
                messages,
                uidnext: uidnext.flatten(),
                uidvalidity,
                highestmodseq,
            })
        }
        _ => None,
    };
    Some((name, status))
}

/// Parses the personal namespace from the data of `* NAMESPACE` (RFC 2342 5): `(("INBOX."
/// "."))`. `None` when the personal namespace is `NIL` or malformed.
pub fn parse_namespace(data: &[u8]) -> Option<Namespace> {
    namespace_entry(&tokenize(data)?)
}

/// The personal namespace of a NAMESPACE response's values (RFC 2342 5).
pub(super) fn namespace_entry(values: &[Value]) -> Option<Namespace> {
    let Value::List(personal) = values.first()? else {
        return None;
    };
    let Value::List(first) = personal.first()? else {
        return None;
    };
    let prefix = first.first()?.text()?;
    let delimiter = match first.get(1)? {
        Value::Nil => None,
        t => t.text()?.chars().next(),
    };
    Some(Namespace { prefix, delimiter })
}

/// The two fields after `APPENDUID` in a tagged OK text's response code (RFC 4315 section
/// 3): UIDVALIDITY and the UID (or, after a MULTIAPPEND, the uid-set), as written; `None`
/// without that code.
pub(super) fn appenduid_fields(text: &str) -> Option<(Option<&str>, Option<&str>)> {
    if response_code(text).as_deref() != Some("APPENDUID") {
        return None;
    }
    let inner = &text.trim_start()[1..];
    let inner = &inner[..inner.find(']').unwrap_or(inner.len())];
    let mut w = inner.split_ascii_whitespace().skip(1);
    Some((w.next(), w.next()))
}

/// The APPENDUID of a tagged OK text (`[APPENDUID 38505 3955] APPEND completed`).
pub fn parse_appenduid(text: &str) -> (Option<u32>, Option<u32>) {
    let Some((validity, uid)) = appenduid_fields(text) else {
        return (None, None);
    };
    (
        validity.and_then(|v| v.parse().ok()),
        uid.and_then(|u| u.parse().ok()),
    )
}

/// The `[APPENDUID uidvalidity uid-set]` of a MULTIAPPEND's tagged OK (RFC 4315 section 3,
/// `uid-set` as `3955:3957,3960`), when it names exactly `count` UIDs: (UIDVALIDITY, the UIDs
/// in the order the set lists them, a range `a:b` from `a` to `b` whichever is larger, as
/// RFC 3501 9 allows). `None` for a missing code, a malformed set or another count.
pub(crate) fn parse_appenduid_set(text: &str, count: usize) -> Option<(u32, Vec<u32>)> {
    let (validity, set) = appenduid_fields(text)?;
    let validity: u32 = validity?.parse().ok()?;
    let set = set?;
    let mut uids = Vec::with_capacity(count);
    for part in set.split(',') {
        let (a, b) = match part.split_once(':') {
            Some((a, b)) => (a.parse::<u32>().ok()?, b.parse::<u32>().ok()?),
            None => {
                let a = part.parse::<u32>().ok()?;
                (a, a)
            }
        };
        let (lo, hi) = (a.min(b), a.max(b));
        if lo == 0 || (hi - lo) as usize > count.saturating_sub(uids.len()) {
            // Zero, or more UIDs than messages: not this command's answer.
            return None;
        }
        uids.extend(lo..=hi);
    }
    (uids.len() == count).then_some((validity, uids))
}

/// Parses a tagged line `tag SP status SP text`.
#[cfg(test)]
pub(super) fn parse_tagged(l: &[u8]) -> Result<Tagged, ImapError> {
    let line = String::from_utf8_lossy(l);
    let line = line.trim_end_matches(['\r', '\n']);
    let mut parts = line.splitn(3, ' ');
    let (_tag, status) = (parts.next(), parts.next());
    match status {
        Some(st) => Ok(Tagged {
            status: st.to_ascii_uppercase(),
            text: parts.next().unwrap_or("").to_string(),
        }),
        None => Err(ImapError::Protocol(format!(
            "not an IMAP response: `{}`",
            shorten(line)
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ns(prefix: &str, delimiter: Option<char>) -> Namespace {
        Namespace {
            prefix: prefix.into(),
            delimiter,
        }
    }

    #[test]
    fn appenduid_sets_of_a_multiappend() {
        type Case = (&'static str, usize, Option<(u32, Vec<u32>)>);
        let cases: &[Case] = &[
            (
                "[APPENDUID 38505 3955:3957] done",
                3,
                Some((38505, vec![3955, 3956, 3957])),
            ),
            ("[APPENDUID 7 5,7,9:10] ok", 4, Some((7, vec![5, 7, 9, 10]))),
            ("[APPENDUID 7 10:9] ok", 2, Some((7, vec![9, 10]))),
            ("[APPENDUID 7 12] ok", 1, Some((7, vec![12]))),
            // Another count, zero, garbage, no code: no UIDs.
            ("[APPENDUID 7 1:3] ok", 2, None),
            ("[APPENDUID 7 1:4000000000] ok", 3, None),
            ("[APPENDUID 7 0:1] ok", 2, None),
            ("[APPENDUID 7 a:b] ok", 2, None),
            ("[APPENDUID 7] ok", 1, None),
            ("[APPENDUID x 1:2] ok", 2, None),
            ("OK done", 2, None),
        ];
        for (text, count, want) in cases {
            assert_eq!(&parse_appenduid_set(text, *count), want, "{text}");
        }
    }

    /// STATUS answers as servers send them: (data after `* STATUS `, the name, the status).
    #[test]
    fn status_answers() {
        let st = |messages, uidnext, uidvalidity, highestmodseq| Status {
            messages,
            uidnext,
            uidvalidity,
            highestmodseq,
        };
        #[rustfmt::skip]
        let cases: &[(&[u8], &[u8], Option<Status>)] = &[
            (b"INBOX (MESSAGES 3 UIDNEXT 9 UIDVALIDITY 7)", b"INBOX", Some(st(3, Some(9), 7, None))),
            (b"\"a \\\"b\\\" c\" (MESSAGES 1 UIDVALIDITY 2)", b"a \"b\" c", Some(st(1, None, 2, None))),
            (b"\"back\\\\slash\" (MESSAGES 0 UIDNEXT 1 UIDVALIDITY 5)", b"back\\slash", Some(st(0, Some(1), 5, None))),
            (b"{3}\r\nx\"y (MESSAGES 2 UIDVALIDITY 4)", b"x\"y", Some(st(2, None, 4, None))),
            // Exchange: a trailing space inside the list.
            (b"Sent (MESSAGES 4 UIDNEXT 5 UIDVALIDITY 6 )", b"Sent", Some(st(4, Some(5), 6, None))),
            (b"Sent (messages 4 uidvalidity 6 highestmodseq 18446744073709551615)", b"Sent", Some(st(4, None, 6, Some(u64::MAX)))),
            // Cannot tell: the mailbox is examined instead.
            (b"Sent ()", b"Sent", None),
            (b"Sent", b"Sent", None),
            (b"Sent (UIDNEXT 5)", b"Sent", None),
            (b"Sent (MESSAGES 4 UIDNEXT 5)", b"Sent", None),
            (b"Sent (MESSAGES 4294967296 UIDVALIDITY 6)", b"Sent", None),
            (b"Sent (MESSAGES 4 UIDNEXT 4294967296 UIDVALIDITY 6)", b"Sent", None),
            (b"Sent (MESSAGES 4 UIDVALIDITY 99999999999999999999999)", b"Sent", None),
            (b"Sent (MESSAGES)", b"Sent", None),
            (b"Sent (MESSAGES x UIDVALIDITY 6)", b"Sent", None),
        ];
        for (data, name, want) in cases {
            let values =
                tokenize(data).unwrap_or_else(|| panic!("{}", String::from_utf8_lossy(data)));
            let (got_name, got) = status_entry(&values).unwrap();
            assert_eq!(got_name, *name, "{}", String::from_utf8_lossy(data));
            assert_eq!(got, *want, "{}", String::from_utf8_lossy(data));
        }
        assert_eq!(tokenize(b"\"a (MESSAGES 1)"), None, "unclosed quote");
    }

    /// LIST answers: (data after `* LIST `, attributes, delimiter, name).
    #[test]
    fn list_answers() {
        #[rustfmt::skip]
        type Case<'a> = (&'a [u8], &'a [&'a str], Option<char>, &'a str);
        let cases: &[Case] = &[
            (
                b"(\\HasNoChildren) \"/\" INBOX",
                &["\\HasNoChildren"],
                Some('/'),
                "INBOX",
            ),
            (
                b"() \".\" \"INBOX.a \\\"q\\\" b\"",
                &[],
                Some('.'),
                "INBOX.a \"q\" b",
            ),
            (b"() \"/\" \"back\\\\slash\"", &[], Some('/'), "back\\slash"),
            // A server that does not escape a backslash.
            (b"() \"/\" \"a\\b\"", &[], Some('/'), "a\\b"),
            (b"() \"/\" {7}\r\nab\"cd\\e", &[], Some('/'), "ab\"cd\\e"),
            (
                b"(\\Noselect \\HasChildren) NIL Flat",
                &["\\Noselect", "\\HasChildren"],
                None,
                "Flat",
            ),
            (
                b"(\\NonExistent) \"/\" \"Gone\"",
                &["\\NonExistent"],
                Some('/'),
                "Gone",
            ),
            (
                b"() \"/\" \"[Gmail]/All Mail\"",
                &[],
                Some('/'),
                "[Gmail]/All Mail",
            ),
            (b"() \"/\" \"a]b*c%d\"", &[], Some('/'), "a]b*c%d"),
            (
                b"(\\Sent $Junk) \"/\" \"Gesendete Objekte\"",
                &["\\Sent", "$Junk"],
                Some('/'),
                "Gesendete Objekte",
            ),
            (
                "() \"/\" \"Entw\u{fc}rfe\"".as_bytes(),
                &[],
                Some('/'),
                "Entw\u{fc}rfe",
            ),
            (b"() \"/\" \"\" ", &[], Some('/'), ""),
        ];
        for (data, attrs, delim, name) in cases {
            let values =
                tokenize(data).unwrap_or_else(|| panic!("{}", String::from_utf8_lossy(data)));
            let (a, d, n) = list_entry(&values).unwrap();
            assert_eq!(
                (a, d, n.as_str()),
                (
                    attrs.iter().map(|s| s.to_string()).collect::<Vec<_>>(),
                    *delim,
                    *name
                )
            );
        }
        for bad in [&b"\\Noselect \"/\" x"[..], b"() \"/\"", b"() \"/\" NIL"] {
            let v = tokenize(bad).unwrap_or_default();
            assert_eq!(list_entry(&v), None, "{}", String::from_utf8_lossy(bad));
        }
    }

    #[test]
    fn namespace_and_list_lines() {
        // The data after `* NAME `.
        let d = |l: &'static [u8], n: &str| &l[2 + n.len()..];
        assert_eq!(
            parse_namespace(d(
                b"* NAMESPACE ((\"INBOX.\" \".\")) NIL NIL\r\n",
                "NAMESPACE"
            )),
            Some(ns("INBOX.", Some('.')))
        );
        assert_eq!(
            parse_namespace(d(
                b"* NAMESPACE ((\"\" \"/\")(\"Archive/\" \"/\" \"X-EXT\" (\"a\"))) ((\"~\" \"/\")) NIL\r\n",
                "NAMESPACE"
            )),
            Some(ns("", Some('/')))
        );
        assert_eq!(
            parse_namespace(d(b"* NAMESPACE ((\"\" NIL)) NIL NIL\r\n", "NAMESPACE")),
            Some(ns("", None))
        );
        assert_eq!(
            parse_namespace(d(b"* NAMESPACE NIL NIL NIL\r\n", "NAMESPACE")),
            None
        );
        assert_eq!(
            parse_namespace(d(
                b"* namespace (({5}\r\nINBOX \".\")) NIL NIL\r\n",
                "NAMESPACE"
            )),
            Some(ns("INBOX", Some('.')))
        );
        assert_eq!(
            parse_list(d(b"* LIST (\\Noselect) \"/\" \"\"\r\n", "LIST")),
            Some((String::new(), Some('/')))
        );
        assert_eq!(
            parse_list(d(b"* LIST () NIL INBOX\r\n", "LIST")),
            Some(("INBOX".into(), None))
        );
        assert_eq!(
            parse_list(d(b"* LIST () \".\" \"a \\\"q\\\" b\"\r\n", "LIST")),
            Some(("a \"q\" b".into(), Some('.')))
        );
        assert_eq!(tokenize(b"(a"), None);
        assert_eq!(tokenize(b"a)"), None);
        assert_eq!(tokenize(b"\"unterminated"), None);
    }

    #[test]
    fn append_answers_and_refusals() {
        assert_eq!(
            parse_appenduid("[APPENDUID 38505 3955] APPEND completed"),
            (Some(38505), Some(3955))
        );
        // case 16 server C: as sent; the caller compares with the mailbox's UIDVALIDITY.
        let a = Appended {
            uidvalidity: Some(7064),
            uid: Some(1),
            dropped_keywords: vec![],
        };
        assert_eq!(a.uid_if_valid(1), None);
        assert_eq!(a.uid_if_valid(7064), Some(1));
        assert_eq!(parse_appenduid("APPEND completed"), (None, None));
        assert_eq!(parse_appenduid("[READ-WRITE] done"), (None, None));
        assert_eq!(parse_appenduid("[APPENDUID 5 3:4] x"), (Some(5), None));

        let no = |text: &str| ImapError::No {
            command: "APPEND".into(),
            text: text.into(),
        };
        assert!(no("[TOOBIG] Message too large").is_too_big());
        assert!(no("[TOOBIG] Message too large").is_permanent_refusal());
        assert!(no("[LIMIT] too many").is_permanent_refusal());
        assert!(!no("[LIMIT] too many").is_too_big());
        assert!(!no("[UNAVAILABLE] later").is_permanent_refusal());
        assert_eq!(
            no("[TRYCREATE] no mailbox").response_code().as_deref(),
            Some("TRYCREATE")
        );
        let throttled = no("Request is throttled. Suggested Backoff Time: 4000 milliseconds");
        assert_eq!(
            throttled.suggested_backoff(),
            Some(Duration::from_millis(4000))
        );
        assert!(!throttled.is_permanent_refusal());
        assert_eq!(no("[TOOBIG] x").suggested_backoff(), None);
    }

    #[test]
    fn tagged_lines() {
        let t = parse_tagged(b"a7 NO [TOOBIG] Message too large\r\n").unwrap();
        assert_eq!(
            (t.status.as_str(), t.text.as_str()),
            ("NO", "[TOOBIG] Message too large")
        );
        let t = parse_tagged(b"a8 ok\r\n").unwrap();
        assert_eq!((t.status.as_str(), t.text.as_str()), ("OK", ""));
        assert!(parse_tagged(b"garbage\r\n").is_err());
    }
}
