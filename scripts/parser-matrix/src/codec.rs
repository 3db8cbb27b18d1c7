//! Adaptor: imap-codec 2.0.0-alpha.10 (default features = the `quirk` set; with this crate's
//! `codec-ext` feature also CONDSTORE/QRESYNC, UTF8, LIST-EXTENDED, NAMESPACE).
use crate::facts::{self, Fetch, Status};
use imap_codec::decode::{Decoder, ResponseDecodeError};
use imap_codec::imap_types::core::IString;
use imap_codec::imap_types::fetch::MessageDataItem;
use imap_codec::imap_types::flag::FlagFetch;
use imap_codec::imap_types::mailbox::Mailbox;
use imap_codec::imap_types::response::{
    Bye, Code, Data, Response, Status as St, StatusBody, StatusKind, Tagged,
};
use imap_codec::imap_types::status::StatusDataItem;
use imap_codec::ResponseCodec;

fn code_name(c: &Code) -> String {
    match c {
        Code::Alert => "ALERT".into(),
        Code::BadCharset { .. } => "BADCHARSET".into(),
        Code::Capability(_) => "CAPABILITY".into(),
        Code::Parse => "PARSE".into(),
        Code::PermanentFlags(_) => "PERMANENTFLAGS".into(),
        Code::ReadOnly => "READ-ONLY".into(),
        Code::ReadWrite => "READ-WRITE".into(),
        Code::TryCreate => "TRYCREATE".into(),
        Code::UidNext(_) => "UIDNEXT".into(),
        Code::UidValidity(_) => "UIDVALIDITY".into(),
        Code::Unseen(_) => "UNSEEN".into(),
        Code::CompressionActive => "COMPRESSIONACTIVE".into(),
        Code::OverQuota => "OVERQUOTA".into(),
        Code::TooBig => "TOOBIG".into(),
        Code::UnknownCte => "UNKNOWN-CTE".into(),
        Code::AppendUid { .. } => "APPENDUID".into(),
        Code::CopyUid { .. } => "COPYUID".into(),
        Code::UidNotSticky => "UIDNOTSTICKY".into(),
        #[cfg(feature = "codec-ext")]
        Code::HighestModSeq(_) => "HIGHESTMODSEQ".into(),
        #[cfg(feature = "codec-ext")]
        Code::NoModSeq => "NOMODSEQ".into(),
        #[cfg(feature = "codec-ext")]
        Code::Modified(_) => "MODIFIED".into(),
        #[cfg(feature = "codec-ext")]
        Code::Closed => "CLOSED".into(),
        Code::Other(o) => {
            let s = String::from_utf8_lossy(o.inner()).into_owned();
            s.split(' ').next().unwrap_or("").to_string()
        }
        #[allow(unreachable_patterns)]
        other => format!("{other:?}"),
    }
}

fn mailbox(m: &Mailbox) -> String {
    match m {
        Mailbox::Inbox => "INBOX".into(),
        Mailbox::Other(o) => String::from_utf8_lossy(o.as_ref()).into_owned(),
    }
}

fn istring_len(s: &IString) -> usize {
    let b: &[u8] = s.as_ref();
    b.len()
}

fn status_body(head: &str, b: &StatusBody) -> String {
    let kind = match b.kind {
        StatusKind::Ok => "OK",
        StatusKind::No => "NO",
        StatusKind::Bad => "BAD",
    };
    facts::cond(&format!("{head} {kind}"), b.code.as_ref().map(code_name), b.text.inner())
}

pub fn one(r: &Response, out: &mut Vec<String>) {
    match r {
        Response::Status(St::Tagged(Tagged { body, .. })) => out.push(status_body("TAGGED", body)),
        Response::Status(St::Bye(Bye { code, text })) => {
            out.push(facts::cond("BYE", code.as_ref().map(code_name), text.inner()))
        }
        Response::Status(St::Untagged(StatusBody { kind: StatusKind::Ok, code: Some(c), .. })) => {
            match c {
                Code::UidValidity(n) => out.push(format!("UIDVALIDITY {n}")),
                Code::UidNext(n) => out.push(format!("UIDNEXT {n}")),
                #[cfg(feature = "codec-ext")]
                Code::HighestModSeq(n) => out.push(format!("HIGHESTMODSEQ {n}")),
                #[cfg(feature = "codec-ext")]
                Code::NoModSeq => out.push("NOMODSEQ".into()),
                Code::Other(o) => {
                    let s = String::from_utf8_lossy(o.inner()).into_owned();
                    let atom = s.split(' ').next().unwrap_or("").to_uppercase();
                    if ["UIDVALIDITY", "UIDNEXT", "HIGHESTMODSEQ", "NOMODSEQ"].contains(&atom.as_str()) {
                        out.push(format!("UNSUPPORTED {s}"));
                    }
                }
                _ => {}
            }
        }
        Response::Data(d) => match d {
            Data::Capability(c) => {
                out.push(facts::capability(c.as_ref().iter().map(|c| c.to_string()).collect()))
            }
            Data::List { items, delimiter, mailbox: m } => out.push(facts::list(
                items.iter().map(|a| a.to_string()).collect(),
                delimiter.as_ref().map(|d| d.inner().to_string()),
                &mailbox(m),
            )),
            Data::Status { mailbox: m, items } => {
                let mut s = Status::default();
                for it in items.iter() {
                    match it {
                        StatusDataItem::Messages(n) => s.messages = Some(*n as u64),
                        StatusDataItem::UidNext(n) => s.uidnext = Some(n.get() as u64),
                        StatusDataItem::UidValidity(n) => s.uidvalidity = Some(n.get() as u64),
                        #[cfg(feature = "codec-ext")]
                        StatusDataItem::HighestModSeq(n) => s.highestmodseq = Some(*n),
                        _ => {}
                    }
                }
                out.push(facts::status(&mailbox(m), &s))
            }
            Data::Exists(n) => out.push(format!("EXISTS {n}")),
            Data::Expunge(n) => out.push(format!("EXPUNGE {n}")),
            Data::Fetch { seq, items } => {
                let mut f = Fetch::default();
                for it in items.as_ref().iter() {
                    match it {
                        MessageDataItem::Uid(u) => f.uid = Some(u.get() as u64),
                        MessageDataItem::Flags(fl) => {
                            f.flags = Some(
                                fl.iter()
                                    .map(|x| match x {
                                        FlagFetch::Flag(f) => f.to_string(),
                                        FlagFetch::Recent => "\\Recent".to_string(),
                                    })
                                    .collect(),
                            )
                        }
                        MessageDataItem::InternalDate(d) => {
                            f.internaldate = Some(Some(
                                d.as_ref().format("%d-%b-%Y %H:%M:%S %z").to_string(),
                            ))
                        }
                        MessageDataItem::Rfc822Size(n) => f.size = Some(*n as u64),
                        #[cfg(feature = "codec-ext")]
                        MessageDataItem::ModSeq(n) => f.modseq = Some(n.get()),
                        MessageDataItem::BodyExt { section: None, origin: None, data } => {
                            f.body = Some(data.0.as_ref().map(istring_len))
                        }
                        _ => {}
                    }
                }
                out.push(facts::fetch(seq.get() as u64, f))
            }
            _ => {}
        },
        _ => {}
    }
}

pub fn facts(input: &[u8]) -> (Vec<String>, Option<String>) {
    let codec = ResponseCodec::default();
    let mut out = Vec::new();
    let mut rest = input;
    while !rest.is_empty() {
        match codec.decode(rest) {
            Ok((r, resp)) => {
                one(&resp, &mut out);
                rest = r;
            }
            Err(e) => {
                out.push("ERROR".into());
                let at = String::from_utf8_lossy(&rest[..rest.len().min(60)]).into_owned();
                let kind = match e {
                    ResponseDecodeError::Incomplete => "incomplete".to_string(),
                    ResponseDecodeError::LiteralFound { length } => format!("literal {length}"),
                    ResponseDecodeError::Failed => "failed".to_string(),
                };
                return (out, Some(format!("{kind} at {at:?}")));
            }
        }
    }
    (out, None)
}

pub fn parse_only(input: &[u8]) -> usize {
    let codec = ResponseCodec::default();
    let mut n = 0;
    let mut rest = input;
    while !rest.is_empty() {
        match codec.decode(rest) {
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
