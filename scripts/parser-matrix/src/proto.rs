//! Adaptor: imap-proto 0.16.7 (the parser under the `imap` crate, as mailkeep's Cargo.lock has it).
use crate::facts::{self, Fetch, Status};
use imap_proto::types::{
    AttributeValue, Capability, MailboxDatum, NameAttribute, Response, ResponseCode,
    Status as St, StatusAttribute,
};

fn code_name(c: &ResponseCode) -> String {
    match c {
        ResponseCode::Alert => "ALERT",
        ResponseCode::BadCharset(_) => "BADCHARSET",
        ResponseCode::Capabilities(_) => "CAPABILITY",
        ResponseCode::HighestModSeq(_) => "HIGHESTMODSEQ",
        ResponseCode::Parse => "PARSE",
        ResponseCode::PermanentFlags(_) => "PERMANENTFLAGS",
        ResponseCode::ReadOnly => "READ-ONLY",
        ResponseCode::ReadWrite => "READ-WRITE",
        ResponseCode::TryCreate => "TRYCREATE",
        ResponseCode::UidNext(_) => "UIDNEXT",
        ResponseCode::UidValidity(_) => "UIDVALIDITY",
        ResponseCode::Unseen(_) => "UNSEEN",
        ResponseCode::AppendUid(..) => "APPENDUID",
        ResponseCode::CopyUid(..) => "COPYUID",
        ResponseCode::UidNotSticky => "UIDNOTSTICKY",
        _ => "METADATA",
    }
    .to_string()
}

fn attr(a: &NameAttribute) -> String {
    match a {
        NameAttribute::NoInferiors => "\\NoInferiors".into(),
        NameAttribute::NoSelect => "\\NoSelect".into(),
        NameAttribute::Marked => "\\Marked".into(),
        NameAttribute::Unmarked => "\\Unmarked".into(),
        NameAttribute::All => "\\All".into(),
        NameAttribute::Archive => "\\Archive".into(),
        NameAttribute::Drafts => "\\Drafts".into(),
        NameAttribute::Flagged => "\\Flagged".into(),
        NameAttribute::Junk => "\\Junk".into(),
        NameAttribute::Sent => "\\Sent".into(),
        NameAttribute::Trash => "\\Trash".into(),
        NameAttribute::Extension(s) => s.to_string(),
        _ => "?".into(),
    }
}

fn cap(c: &Capability) -> String {
    match c {
        Capability::Imap4rev1 => "IMAP4rev1".into(),
        Capability::Auth(a) => format!("AUTH={a}"),
        Capability::Atom(a) => a.to_string(),
    }
}

fn st(s: &St) -> &'static str {
    match s {
        St::Ok => "OK",
        St::No => "NO",
        St::Bad => "BAD",
        St::PreAuth => "PREAUTH",
        St::Bye => "BYE",
    }
}

/// imap-proto knows a fixed list of response codes; any other code stays in the text, so the
/// fact string can match although no code was recognised. Such rows get a note.
fn code_in_text(code: &Option<ResponseCode>, info: &Option<std::borrow::Cow<str>>) -> bool {
    code.is_none() && info.as_deref().is_some_and(|t| t.starts_with('['))
}

pub fn one(r: &Response, out: &mut Vec<String>) {
    match r {
        Response::Capabilities(c) => out.push(facts::capability(c.iter().map(cap).collect())),
        Response::Done { status, code, information, .. } => out.push(facts::cond(
            &format!("TAGGED {}", st(status)),
            code.as_ref().map(code_name),
            information.as_deref().unwrap_or(""),
        )),
        Response::Data { status: St::Bye, code, information } => out.push(facts::cond(
            "BYE",
            code.as_ref().map(code_name),
            information.as_deref().unwrap_or(""),
        )),
        Response::Data { status: St::Ok, code: Some(c), .. } => match c {
            ResponseCode::UidValidity(n) => out.push(format!("UIDVALIDITY {n}")),
            ResponseCode::UidNext(n) => out.push(format!("UIDNEXT {n}")),
            ResponseCode::HighestModSeq(n) => out.push(format!("HIGHESTMODSEQ {n}")),
            _ => {}
        },
        Response::Expunge(n) => out.push(format!("EXPUNGE {n}")),
        Response::MailboxData(MailboxDatum::Exists(n)) => out.push(format!("EXISTS {n}")),
        Response::MailboxData(MailboxDatum::List { name_attributes, delimiter, name }) => out.push(
            facts::list(
                name_attributes.iter().map(attr).collect(),
                delimiter.as_ref().map(|d| d.to_string()),
                name,
            ),
        ),
        Response::MailboxData(MailboxDatum::Status { mailbox, status }) => {
            let mut s = Status::default();
            for a in status {
                match a {
                    StatusAttribute::Messages(n) => s.messages = Some(*n as u64),
                    StatusAttribute::UidNext(n) => s.uidnext = Some(*n as u64),
                    StatusAttribute::UidValidity(n) => s.uidvalidity = Some(*n as u64),
                    StatusAttribute::HighestModSeq(n) => s.highestmodseq = Some(*n),
                    _ => {}
                }
            }
            out.push(facts::status(mailbox, &s))
        }
        Response::Fetch(seq, attrs) => {
            let mut f = Fetch::default();
            for a in attrs {
                match a {
                    AttributeValue::Uid(u) => f.uid = Some(*u as u64),
                    AttributeValue::Flags(fl) => {
                        f.flags = Some(fl.iter().map(|s| s.to_string()).collect())
                    }
                    AttributeValue::InternalDate(d) => f.internaldate = Some(Some(d.to_string())),
                    AttributeValue::Rfc822Size(n) => f.size = Some(*n as u64),
                    AttributeValue::ModSeq(n) => f.modseq = Some(*n),
                    AttributeValue::BodySection { section: None, index: None, data } => {
                        f.body = Some(data.as_ref().map(|d| d.len()))
                    }
                    _ => {}
                }
            }
            out.push(facts::fetch(*seq as u64, f))
        }
        _ => {}
    }
}

/// Reads responses one after another; the first refusal is `ERROR` and ends the row.
pub fn facts(input: &[u8]) -> (Vec<String>, Option<String>) {
    let mut note = None;
    let mut out = Vec::new();
    let mut rest = input;
    while !rest.is_empty() {
        match imap_proto::Response::from_bytes(rest) {
            Ok((r, resp)) => {
                if let Response::Done { code, information, .. } | Response::Data { code, information, .. } = &resp {
                    if code_in_text(code, information) {
                        note = Some("note: response code not recognised, left in the text".into());
                    }
                }
                one(&resp, &mut out);
                rest = r;
            }
            Err(e) => {
                out.push("ERROR".into());
                let at = String::from_utf8_lossy(&rest[..rest.len().min(60)]).into_owned();
                let kind = match e {
                    nom::Err::Incomplete(_) => "incomplete".to_string(),
                    nom::Err::Error(e) | nom::Err::Failure(e) => format!("{:?}", e.code),
                };
                return (out, Some(format!("{kind} at {at:?}")));
            }
        }
    }
    (out, note)
}

/// Parse only, no facts: number of responses.
pub fn parse_only(input: &[u8]) -> usize {
    let mut n = 0;
    let mut rest = input;
    while !rest.is_empty() {
        match imap_proto::Response::from_bytes(rest) {
            Ok((r, resp)) => {
                std::hint::black_box(&resp);
                n += 1;
                rest = r;
            }
            Err(_) => return usize::MAX,
        }
    }
    n
}
