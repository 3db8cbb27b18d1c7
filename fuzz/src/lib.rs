//! Entry points for the coverage-guided fuzz targets (`fuzz_targets/`, built by
//! `scripts/fuzz.sh`) and for mailkeep's `tests/fuzz_regressions.rs` (a dev-dependency without
//! libFuzzer). They call mailkeep through its modules and the few internal parsers
//! `mailkeep::fuzz_api` re-exports.
//!
//! Each `fuzz_<target>(data)` takes the fuzzer's bytes, calls the parsers it covers through the
//! thin typed wrappers below, and checks properties beyond "does not panic": round trips (mbox
//! written back as mboxrd reads as the same messages, modified UTF-7, Maildir names and
//! folders, POP3 dot-stuffing, endpoint URLs), agreement between ways of reading the same bytes (IMAP
//! responses fed whole or in pieces), and that every error is one line. A broken property
//! panics, which is what the fuzzer reports as a crash.
//!
//! The first byte of `data` usually picks a mode or a parameter (a read size, a dialect); the
//! rest is the input. Seeds in `fuzz/seeds/<target>/` follow the same layout.

use std::io::{self, BufReader, Read, Write};
use std::path::Path;

use mailkeep::archive::maildir::reader as source_maildir;
use mailkeep::archive::maildir::writer as sink_maildir;
use mailkeep::archive::mbox::format as mbox;
use mailkeep::archive::mbox::format::{Dialect, MboxMessage, MboxReader};
use mailkeep::core::endpoint::{self, Endpoint, Protocol, TlsMode};
use mailkeep::core::message::{Flag, Flags, MailboxName};
use mailkeep::core::mutf7;
use mailkeep::protocol::imap::reader::{NextError, Parser, ReadBuf, Response};
use mailkeep::protocol::imap::{self, ImapError, Namespace};
use mailkeep::protocol::pop3::{self, AuthMethod, Pop3Client, Reply};

/// Panics unless `msg` is one line: no CR, LF or other control character but tab. Errors are
/// printed as one line (README: "bad input gives a one-line error").
pub fn assert_one_line(what: &str, msg: &str) {
    assert!(
        !msg.chars().any(|c| c.is_control() && c != '\t'),
        "{what}: the message is not one line: {msg:?}"
    );
}

// ---------------------------------------------------------------------------------------------
// In-memory streams
// ---------------------------------------------------------------------------------------------

/// A scripted peer: reads give the script's bytes (at most `max_read` per call, at least 1),
/// then end of stream; writes are kept.
#[derive(Debug)]
pub struct Script {
    data: Vec<u8>,
    pos: usize,
    max_read: usize,
    /// Everything written to the peer.
    pub written: Vec<u8>,
}

impl Script {
    /// A peer that will send `data`, `max_read` bytes at most per read (0 counts as 1).
    pub fn new(data: &[u8], max_read: usize) -> Self {
        Script {
            data: data.to_vec(),
            pos: 0,
            max_read: max_read.max(1),
            written: Vec::new(),
        }
    }
}

impl Read for Script {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        let n = (self.data.len() - self.pos)
            .min(out.len())
            .min(self.max_read);
        out[..n].copy_from_slice(&self.data[self.pos..self.pos + n]);
        self.pos += n;
        Ok(n)
    }
}

impl Write for Script {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.written.extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

// ---------------------------------------------------------------------------------------------
// POP3
// ---------------------------------------------------------------------------------------------

/// What a scripted POP3 session got from the server.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Pop3Session {
    pub greeting: String,
    pub capa_lines: Vec<String>,
    pub stat: (u32, u64),
    pub list: Vec<(u32, u64)>,
    pub uidl: Option<Vec<(u32, String)>>,
    /// The bodies of the messages fetched (at most 4, in LIST order), un-stuffed.
    pub bodies: Vec<Vec<u8>>,
}

/// Runs a whole client session (greeting, CAPA, login as `user`/`pass` with
/// [`AuthMethod::Auto`], STAT, LIST, UIDL, RETR of the first 4 listed messages, DELE of them,
/// QUIT) against a server that sends `server`, `max_read` bytes per read. Returns what was
/// learnt, or the first error as displayed (checked to be one line).
pub fn pop3_session(server: &[u8], max_read: usize) -> Result<Pop3Session, String> {
    let r = pop3_session_inner(server, max_read);
    if let Err(e) = &r {
        assert_one_line("POP3 error", e);
    }
    r
}

fn pop3_session_inner(server: &[u8], max_read: usize) -> Result<Pop3Session, String> {
    let s = |e: pop3::Pop3Error| e.to_string();
    let mut c = Pop3Client::from_stream(Script::new(server, max_read), true).map_err(s)?;
    let mut out = Pop3Session {
        greeting: c.greeting().to_string(),
        capa_lines: c.capabilities().lines.clone(),
        ..Pop3Session::default()
    };
    c.login("user", "pass", AuthMethod::Auto).map_err(s)?;
    out.stat = c.stat().map_err(s)?;
    out.list = c.list().map_err(s)?;
    out.uidl = c.uidl().map_err(s)?;
    let msgs: Vec<u32> = out.list.iter().take(4).map(|&(n, _)| n).collect();
    let mut bodies = Vec::new();
    c.retr_each(&msgs, |_, body| -> Result<(), pop3::Pop3Error> {
        let mut b = Vec::new();
        body.read_to_end(&mut b)?;
        bodies.push(b);
        Ok(())
    })
    .map_err(s)?;
    out.bodies = bodies;
    c.dele(&msgs).map_err(s)?;
    c.quit().map_err(s)?;
    Ok(out)
}

/// `body` dot-stuffed for the wire (RFC 1939 section 3): a `.` added to every line starting
/// with `.`, a CRLF added when the body does not end with LF, then the `.` line.
pub fn pop3_stuff(body: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(body.len() + 8);
    for line in body.split_inclusive(|&b| b == b'\n') {
        if line.first() == Some(&b'.') {
            out.push(b'.');
        }
        out.extend_from_slice(line);
    }
    if !body.is_empty() && !body.ends_with(b"\n") {
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b".\r\n");
    out
}

/// RETR 1 of a server whose message is `body` (stuffed with [`pop3_stuff`]), read `max_read`
/// bytes at a time: the bytes the client hands on.
pub fn pop3_retr(body: &[u8], max_read: usize) -> Result<Vec<u8>, String> {
    let mut server = b"+OK ready\r\n-ERR no CAPA\r\n+OK message follows\r\n".to_vec();
    server.extend_from_slice(&pop3_stuff(body));
    let mut c =
        Pop3Client::from_stream(Script::new(&server, max_read), true).map_err(|e| e.to_string())?;
    let mut got = Vec::new();
    c.retr_each(&[1], |_, r| -> Result<(), pop3::Pop3Error> {
        r.read_to_end(&mut got)?;
        Ok(())
    })
    .map_err(|e| e.to_string())?;
    Ok(got)
}

/// CAPA of a server listing `lines` (each stuffed): the lines the client understood.
pub fn pop3_capa(lines: &[Vec<u8>], max_read: usize) -> Result<Vec<String>, String> {
    let mut server = b"+OK ready\r\n+OK capabilities follow\r\n".to_vec();
    for l in lines {
        if l.first() == Some(&b'.') {
            server.push(b'.');
        }
        server.extend_from_slice(l);
        server.extend_from_slice(b"\r\n");
    }
    server.extend_from_slice(b".\r\n");
    let c =
        Pop3Client::from_stream(Script::new(&server, max_read), true).map_err(|e| e.to_string())?;
    Ok(c.capabilities().lines.clone())
}

/// Fuzz target `pop3`. Byte 0: mode (low 2 bits) and read size (the rest); then the input.
///
/// - mode 0: `data` is what a server sends for a whole session ([`pop3_session`]); errors are
///   one line, and no more than 4 bodies come back.
/// - mode 1: `data` is a message body: RETR through the stuffed wire form gives it back exactly
///   (a CRLF added when it does not end with LF).
/// - mode 2: `data` is CAPA lines (split at LF, CR and LF removed): they come back un-stuffed.
/// - mode 3: the one-line parsers (status, STAT, LIST, UIDL lines, APOP timestamp) on `data`,
///   and that what they parse formats back to the same value.
pub fn fuzz_pop3(data: &[u8]) {
    let Some((&head, data)) = data.split_first() else {
        return;
    };
    let max_read = usize::from(head >> 2) + 1;
    match head & 3 {
        0 => {
            if let Ok(s) = pop3_session(data, max_read) {
                assert!(s.bodies.len() <= 4);
            }
        }
        1 => {
            let mut want = data.to_vec();
            if !want.is_empty() && !want.ends_with(b"\n") {
                want.extend_from_slice(b"\r\n");
            }
            let got = pop3_retr(data, max_read).expect("a well-formed RETR answer");
            assert_eq!(got, want, "RETR does not give the body back");
        }
        2 => {
            let lines: Vec<Vec<u8>> = data
                .split(|&b| b == b'\n')
                .map(|l| l.iter().copied().filter(|&b| b != b'\r').collect())
                .collect();
            let got = pop3_capa(&lines, max_read).expect("a well-formed CAPA answer");
            let want: Vec<String> = lines
                .iter()
                .map(|l| String::from_utf8_lossy(l).into_owned())
                .collect();
            assert_eq!(got, want, "CAPA lines do not come back");
        }
        _ => pop3_line_parsers(data),
    }
}

fn pop3_line_parsers(data: &[u8]) {
    match pop3::parse_status(data) {
        Ok(Reply::Ok(t)) => {
            let again = if t.is_empty() {
                "+OK".into()
            } else {
                format!("+OK {t}")
            };
            assert_eq!(pop3::parse_status(again.as_bytes()), Ok(Reply::Ok(t)));
        }
        Ok(Reply::Err(t)) => {
            assert_one_line("-ERR text", &t);
            let again = if t.is_empty() {
                "-ERR".into()
            } else {
                format!("-ERR {t}")
            };
            assert_eq!(pop3::parse_status(again.as_bytes()), Ok(Reply::Err(t)));
        }
        Ok(Reply::Continue(t)) => assert_one_line("continuation text", &t),
        Err(shown) => assert_one_line("status error", &shown),
    }
    let text = String::from_utf8_lossy(data);
    if let Some((n, size)) = pop3::parse_scan_line(&text) {
        assert_eq!(
            pop3::parse_scan_line(&format!("{n} {size}")),
            Some((n, size))
        );
    }
    if let Some((n, uid)) = pop3::parse_uidl_line(&text) {
        assert!(!uid.is_empty() && uid.bytes().all(|b| (0x21..=0x7e).contains(&b)));
        assert_eq!(pop3::parse_uidl_line(&format!("{n} {uid}")), Some((n, uid)));
    }
    if let Some(ts) = pop3::apop_timestamp(&text) {
        assert!(ts.starts_with('<') && ts.ends_with('>') && ts.contains('@'));
    }
    let lines: Vec<String> = text.lines().map(str::to_string).collect();
    let caps = pop3::parse_capa(&lines);
    assert_eq!(caps.lines, lines);
}

// ---------------------------------------------------------------------------------------------
// mbox
// ---------------------------------------------------------------------------------------------

/// Reads every message of an mbox held in `data` ([`MboxReader`] through a `BufReader` of
/// `buf_cap` bytes, at least 1). The error is displayed, and checked to be one line.
pub fn mbox_read(
    data: &[u8],
    dialect: Dialect,
    buf_cap: usize,
) -> Result<Vec<MboxMessage>, String> {
    let reader = MboxReader::new(BufReader::with_capacity(buf_cap.max(1), data))
        .dialect(dialect)
        .with_path("fuzz.mbox");
    let r: Result<Vec<_>, _> = reader.collect();
    r.map_err(|e| {
        let e = e.to_string();
        assert_one_line("mbox error", &e);
        e
    })
}

/// The messages written back as one mboxrd file ([`mbox::write_entry`]): each with its sender
/// and date (0 when it has none).
pub fn mbox_write(msgs: &[MboxMessage]) -> Vec<u8> {
    let mut out = Vec::new();
    for m in msgs {
        mbox::write_entry(
            &mut out,
            &m.envelope_from,
            m.date.unwrap_or(0),
            &mut &m.raw[..],
        )
        .expect("writing to a Vec cannot fail");
    }
    out
}

/// What the `mbox:` source makes of one message read from a file (Mozilla bookkeeping
/// stripped, line ends normalised, the date from the headers): (expunged by Thunderbird, the
/// stored bytes, the header date).
pub fn mbox_source_message(raw: &[u8]) -> (bool, Vec<u8>, Option<i64>) {
    let (clean, info) = mailkeep::archive::thunderbird::mozilla::strip(raw);
    let stored = mailkeep::core::message::normalize(&clean);
    let date = mailkeep::fuzz_api::header_date(&stored).map(|(t, _)| t);
    (info.expunged(), stored, date)
}

/// Fuzz target `mbox`. Byte 0: bit 0 picks the dialect (mboxrd, mboxo), the rest the read
/// buffer size; then the file. Whatever the reader accepts, written back as mboxrd and read
/// again, gives the same number of messages with the same bytes (a LF added to a last message
/// that lacks one) and the same dates; the reader never panics, and its error is one line.
pub fn fuzz_mbox(data: &[u8]) {
    let Some((&head, data)) = data.split_first() else {
        return;
    };
    let dialect = if head & 1 == 0 {
        Dialect::Mboxrd
    } else {
        Dialect::Mboxo
    };
    let buf_cap = usize::from(head >> 1) * 8 + 1;
    let Ok(msgs) = mbox_read(data, dialect, buf_cap) else {
        return;
    };
    for m in &msgs {
        let _ = mbox_source_message(&m.raw);
    }
    let written = mbox_write(&msgs);
    let back = mbox_read(&written, Dialect::Mboxrd, 64 * 1024).expect("our own mboxrd reads");
    assert_eq!(
        back.len(),
        msgs.len(),
        "message count changed in the round trip"
    );
    for (a, b) in msgs.iter().zip(&back) {
        let mut want = a.raw.clone();
        if !want.is_empty() && !want.ends_with(b"\n") {
            want.push(b'\n');
        }
        assert_eq!(
            String::from_utf8_lossy(&b.raw),
            String::from_utf8_lossy(&want),
            "message bytes changed in the round trip"
        );
        assert_eq!(b.raw, want);
        if let Some(d) = a.date {
            if (-62_135_596_800..=253_402_300_799).contains(&d) {
                assert_eq!(b.date, Some(d), "date changed in the round trip");
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Maildir file and folder names
// ---------------------------------------------------------------------------------------------

/// What mailkeep reads from a Maildir file name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MaildirName {
    /// The source's split: base and info letters (after the last `:2,`, `!2,` or `;2,`).
    pub base: String,
    pub info: Option<String>,
    /// The flags of the info letters (keywords `a` = `$Forwarded`, `b` = `Junk`), in IMAP
    /// spelling.
    pub flags: String,
    /// The sink's view: base name (before the first info separator), `,S=` size, identity hash.
    pub sink_base: String,
    pub size: Option<u64>,
    pub hash16: Option<String>,
}

/// Parses one Maildir file name the ways the Maildir source and sink do.
pub fn maildir_name(name: &str) -> MaildirName {
    let keywords = ["$Forwarded".to_string(), "Junk".to_string()];
    let (base, info) = source_maildir::split_info(name);
    let flags = source_maildir::flags_from_info(info.unwrap_or(""), &keywords);
    MaildirName {
        base: base.to_string(),
        info: info.map(str::to_string),
        flags: flags.to_imap_list(),
        sink_base: mailkeep::fuzz_api::base_name(name).to_string(),
        size: mailkeep::fuzz_api::size_in_name(name),
        hash16: mailkeep::fuzz_api::hash16_in_name(name).map(str::to_string),
    }
}

/// The name the Maildir sink gives a message (`<date>.M<hash16>P0.mailkeep,S=<size>:2,<info>`,
/// as in `MaildirSink::place`), system flags only.
pub fn maildir_sink_name(date: i64, hash16: &str, size: u64, flags: &Flags) -> String {
    format!(
        "{}.M{hash16}P0.mailkeep,S={size}:2,{}",
        date.max(0),
        flags.maildir_info()
    )
}

/// A Maildir++ folder name and back: (folder, mailbox read back from it).
pub fn maildir_folder(mailbox: &str) -> (String, Option<MailboxName>) {
    let folder = sink_maildir::maildir_folder_name(&MailboxName::new(mailbox));
    let back = sink_maildir::mailbox_from_maildir_folder(&folder);
    (folder, back)
}

/// Fuzz target `maildir`. Byte 0: mode; the rest as UTF-8 (lossy).
///
/// - mode 0: any file name: split and parsed without panic; base + separator + info is the
///   name; the sink's base is a prefix of it; flags read from the info and written again give
///   the same system letters.
/// - mode 1: a sink name built from fuzzed date, hash, size and flags parses back to them.
/// - mode 2: any mailbox name: its Maildir++ folder reads back as the same mailbox (a
///   shortened one, at most 255 bytes, reads back from the name file inside it instead); any
///   folder name reads without panic.
pub fn fuzz_maildir(data: &[u8]) {
    let Some((&head, data)) = data.split_first() else {
        return;
    };
    let text = String::from_utf8_lossy(data);
    match head % 3 {
        0 => {
            let m = maildir_name(&text);
            if let Some(info) = &m.info {
                let sep = &text[m.base.len()..m.base.len() + 3];
                assert!([":2,", "!2,", ";2,"].contains(&sep));
                assert_eq!(format!("{}{sep}{info}", m.base), text);
                let flags = source_maildir::flags_from_info(info, &[]);
                let again = source_maildir::flags_from_info(&flags.maildir_info(), &[]);
                assert_eq!(again, flags);
            } else {
                assert_eq!(m.base, text);
            }
            assert!(text.starts_with(&m.sink_base));
            if let Some(h) = &m.hash16 {
                assert_eq!(h.len(), 16);
            }
            let _ = sink_maildir::mailbox_from_maildir_folder(&text);
        }
        1 => {
            if data.len() < 17 {
                return;
            }
            let date = i64::from_le_bytes(data[..8].try_into().expect("8 bytes"));
            let size = u64::from_le_bytes(data[8..16].try_into().expect("8 bytes"));
            let letters = [
                Flag::Draft,
                Flag::Flagged,
                Flag::Answered,
                Flag::Seen,
                Flag::Deleted,
            ];
            let flags: Flags = letters
                .into_iter()
                .enumerate()
                .filter(|(i, _)| data[16] & (1 << i) != 0)
                .map(|(_, f)| f)
                .collect();
            let hash16: String = hex::encode(&data[17..])
                .chars()
                .chain("0".repeat(16).chars())
                .take(16)
                .collect();
            let name = maildir_sink_name(date, &hash16, size, &flags);
            let m = maildir_name(&name);
            assert_eq!(m.size, Some(size), "{name}");
            assert_eq!(m.hash16.as_deref(), Some(hash16.as_str()), "{name}");
            assert_eq!(
                m.info.as_deref(),
                Some(flags.maildir_info().as_str()),
                "{name}"
            );
            assert_eq!(m.flags, flags.to_imap_list(), "{name}");
            assert_eq!(m.sink_base, m.base);
        }
        _ => {
            let (folder, back) = maildir_folder(&text);
            // A folder name over the file system's limit is shortened with a hash; its mailbox
            // is read back from the name file inside it, not from the name (README, "Mailbox
            // names in the archive").
            let want = if sink_maildir::is_shortened(&folder) {
                assert!(
                    folder.len() <= 255,
                    "shortened folder {folder:?} is too long"
                );
                None
            } else {
                Some(MailboxName::new(&text))
            };
            assert_eq!(back, want, "folder {folder:?} does not read back");
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Modified UTF-7
// ---------------------------------------------------------------------------------------------

/// Fuzz target `mutf7`: on the input as UTF-8 (lossy), `decode` never panics and its error is
/// one line; a wire name that decodes encodes back to itself; any string encodes to printable
/// ASCII that decodes back to it; IMAP mailbox-name decoding never panics.
pub fn fuzz_mutf7(data: &[u8]) {
    let s = String::from_utf8_lossy(data);
    match mutf7::decode(&s) {
        Ok(d) => assert_eq!(mutf7::encode(&d), s, "decoded {d:?}"),
        Err(e) => assert_one_line("mutf7 error", &e.to_string()),
    }
    let wire = mutf7::encode(&s);
    assert!(wire.bytes().all(|b| (0x20..=0x7e).contains(&b)), "{wire:?}");
    assert_eq!(mutf7::decode(&wire).as_deref(), Ok(&*s), "wire {wire:?}");
    for d in [None, Some('.'), Some('/')] {
        let _ = imap::decode_mailbox_name(&s, d);
    }
}

// ---------------------------------------------------------------------------------------------
// Dates
// ---------------------------------------------------------------------------------------------

/// Fuzz target `date`: [`mailkeep::core::date::parse`] never panics on any bytes; a date it reads has an
/// APPEND date-time (years 1000-9999) that reads back, by [`mailkeep::core::date::parse`] and by the
/// strict INTERNALDATE reader [`mailkeep::protocol::imap::reader::parse_internal_date`], as the same instant;
/// the zone kept is whole minutes under a day.
pub fn fuzz_date(data: &[u8]) {
    let now = 1_800_000_000;
    let Some(d) = mailkeep::core::date::parse(data) else {
        assert_eq!(mailkeep::core::date::parse_plausible(data, now), None);
        return;
    };
    if let Some(off) = d.offset {
        assert!(off % 60 == 0 && off.abs() < 86_400, "offset {off}");
    }
    let _ = mailkeep::core::date::plausible(d.secs, now);
    let Some(text) = d.imap_date_time() else {
        return;
    };
    assert!(!text.starts_with('-'), "{text}");
    if text[7..11].starts_with('0') {
        return;
    }
    let back = mailkeep::core::date::parse(text.as_bytes()).map(|b| b.secs);
    assert_eq!(
        back,
        Some(d.secs),
        "{text:?} from {:?}",
        String::from_utf8_lossy(data)
    );
    let strict = mailkeep::protocol::imap::reader::parse_internal_date(text.as_bytes());
    assert_eq!(strict, Some(d.secs), "{text:?}");
}

// ---------------------------------------------------------------------------------------------
// Endpoints
// ---------------------------------------------------------------------------------------------

/// A password written into fuzzed URLs; it must never show in an error.
pub const SECRET_MARKER: &str = "Pw5ecr3tX";

/// Parses an endpoint with home `/home/fuzz`; the error displayed, checked to be one line.
pub fn endpoint_parse(s: &str) -> Result<Endpoint, String> {
    endpoint::parse(s, Some(Path::new("/home/fuzz"))).map_err(|e| {
        let e = e.to_string();
        assert_one_line("endpoint error", &e);
        e
    })
}

fn pct_encode(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

/// Fuzz target `endpoint`. Byte 0: mode; the rest as UTF-8 (lossy).
///
/// - mode 0: any endpoint string parses or gives a one-line error; a server endpoint written
///   back as a URL (user and host %-encoded) parses to the same server.
/// - otherwise: `<scheme>://<a>:<SECRET><b>@<c>` with a, b, c from the input (split at NUL) is
///   refused and the error never shows the secret.
pub fn fuzz_endpoint(data: &[u8]) {
    let Some((&head, data)) = data.split_first() else {
        return;
    };
    let text = String::from_utf8_lossy(data);
    if head & 1 == 0 {
        if let Ok(Endpoint::Server(spec)) = endpoint_parse(&text) {
            let scheme = match (spec.protocol, spec.tls) {
                (Protocol::Pop3, TlsMode::Implicit) => "pop3s",
                (Protocol::Pop3, _) => "pop3",
                (Protocol::Imap, TlsMode::Implicit) => "imaps",
                (Protocol::Imap, _) => "imap",
            };
            let url = format!(
                "{scheme}://{}@{}:{}",
                pct_encode(&spec.user),
                pct_encode(&spec.host),
                spec.port
            );
            match endpoint_parse(&url) {
                Ok(Endpoint::Server(again)) => assert_eq!(again, spec, "{url}"),
                other => panic!("{url} does not parse back: {other:?}"),
            }
        }
        return;
    }
    let mut parts = text.split('\0');
    let (a, b, c) = (
        parts.next().unwrap_or(""),
        parts.next().unwrap_or(""),
        parts.next().unwrap_or(""),
    );
    if [a, b, c].iter().any(|p| p.contains(SECRET_MARKER)) {
        return;
    }
    let scheme = ["pop3s", "pop3", "imaps", "imap", "IMAPS"][usize::from(head >> 1) % 5];
    let url = format!("{scheme}://{a}:{SECRET_MARKER}{b}@{c}");
    match endpoint_parse(&url) {
        Err(e) => assert!(!e.contains(SECRET_MARKER), "{url}: {e}"),
        Ok(other) => panic!("{url} with a password was accepted: {other:?}"),
    }
}

// ---------------------------------------------------------------------------------------------
// Config file
// ---------------------------------------------------------------------------------------------

/// Parses a `run` config text (path `/fuzz/mailkeep.toml`, home `/home/fuzz`): the number of
/// jobs, or the error displayed (checked to be one line).
pub fn runconf_parse(text: &str) -> Result<usize, String> {
    mailkeep::cli::runconf::parse(
        text,
        Path::new("/fuzz/mailkeep.toml"),
        Some(Path::new("/home/fuzz")),
    )
    .map(|c| c.jobs.len())
    .map_err(|e| {
        let e = e.to_string();
        assert_one_line("config error", &e);
        assert!(e.starts_with("/fuzz/mailkeep.toml"), "{e}");
        e
    })
}

/// Fuzz target `runconf`: any UTF-8 text parses or gives a one-line error naming the file.
pub fn fuzz_runconf(data: &[u8]) {
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = runconf_parse(text);
    }
}

// ---------------------------------------------------------------------------------------------
// IMAP
// ---------------------------------------------------------------------------------------------

/// `* LIST` data: (wire name, delimiter).
pub fn imap_parse_list(data: &[u8]) -> Option<(String, Option<char>)> {
    mailkeep::fuzz_api::parse_list(data)
}

/// `* NAMESPACE` data: the personal namespace.
pub fn imap_parse_namespace(data: &[u8]) -> Option<Namespace> {
    mailkeep::fuzz_api::parse_namespace(data)
}

/// The APPENDUID of a tagged OK text: (UIDVALIDITY, UID).
pub fn imap_parse_appenduid(text: &str) -> (Option<u32>, Option<u32>) {
    mailkeep::fuzz_api::parse_appenduid(text)
}

/// The greeting check: `Ok` or the error displayed.
pub fn imap_check_greeting(line: &str) -> Result<(), String> {
    mailkeep::fuzz_api::check_greeting(line).map_err(|e| e.to_string())
}

/// Every response of `data` read through [`ReadBuf`] and one [`Parser`], the stream giving at
/// most `max_read` bytes per read: the responses, then how it ended (`Eof`, or the parse or I/O
/// error displayed).
pub fn imap_responses(data: &[u8], max_read: usize) -> (Vec<Response>, String) {
    let mut rb = ReadBuf::new(Script::new(data, max_read));
    let mut parser = Parser::new();
    let mut out = Vec::new();
    loop {
        match rb.next_response(&mut parser) {
            Ok(r) => out.push(r),
            Err(NextError::Eof) => return (out, "Eof".into()),
            Err(NextError::Parse(e)) => return (out, format!("Parse: {e}")),
            Err(NextError::Io(e)) => return (out, format!("Io: {e}")),
        }
        if out.len() > 10_000 {
            return (out, "too many".into());
        }
    }
}

/// What a server's responses say, one normalised line per fact, as mailkeep reads them: the
/// mailkeep column of the parser measurement (DESIGN-NOTES.md, "The IMAP parser"). Formats:
/// `STATUS <name as JSON> MESSAGES=n UIDNEXT=n UIDVALIDITY=n HIGHESTMODSEQ=n` (items present,
/// in that order); `LIST (<attributes lower-cased, sorted, comma-separated>) <delimiter as
/// JSON or NIL> <name as JSON>`; `EXISTS n`; `EXPUNGE n`; `UIDVALIDITY n`, `UIDNEXT n`,
/// `HIGHESTMODSEQ n`, `NOMODSEQ` (OK response codes); `FETCH <seq> UID=n FLAGS=(...)
/// INTERNALDATE=<as sent or NIL> RFC822.SIZE=n MODSEQ=n BODY[]=<length or NIL>`;
/// `CAPABILITY <upper-cased, sorted>`; `SEARCH n ...`; `TAGGED <status> [<CODE>] <text>`;
/// `BYE <text>`; `ERROR` for a response mailkeep refuses; `UNSUPPORTED` for one it does
/// not use.
pub fn imap_response_facts(input: &[u8]) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = input;
    while !rest.is_empty() && out.len() < 10_000 {
        let mut p = Parser::new();
        match p.feed(rest) {
            Ok((used, Some(resp))) => {
                out.extend(facts_of(resp, &rest[..used]));
                rest = &rest[used..];
            }
            Ok((_, None)) => {
                out.push("ERROR".into());
                break;
            }
            Err(_) => {
                out.push("ERROR".into());
                match rest.iter().position(|&b| b == b'\n') {
                    Some(i) => rest = &rest[i + 1..],
                    None => break,
                }
            }
        }
    }
    out
}

fn facts_of(resp: Response, raw: &[u8]) -> Vec<String> {
    use mailkeep::protocol::imap::reader::Value;
    let json = |b: &[u8]| {
        serde_json::to_string(&String::from_utf8_lossy(b)).unwrap_or_else(|_| "\"?\"".into())
    };
    match resp {
        Response::Fetch(items) => {
            // The item list as sent, for the strings mailkeep keeps only parsed.
            let data = raw
                .iter()
                .position(|&b| b == b'(')
                .map(|i| &raw[i..])
                .unwrap_or_default();
            let values = mailkeep::protocol::imap::reader::tokenize(data).unwrap_or_default();
            let list = match values.first() {
                Some(Value::List(l)) => l.clone(),
                _ => Vec::new(),
            };
            let item = |name: &str| {
                list.chunks(2).find_map(|c| match c {
                    [Value::Atom(k), v] if k.eq_ignore_ascii_case(name) => Some(v.clone()),
                    _ => None,
                })
            };
            let mut f = format!("FETCH {}", items.seq);
            if let Some(u) = items.uid {
                f += &format!(" UID={u}");
            }
            if let Some(Value::List(flags)) = item("FLAGS") {
                let mut v: Vec<String> = flags.iter().filter_map(Value::text).collect();
                v.sort();
                f += &format!(" FLAGS=({})", v.join(" "));
            }
            match item("INTERNALDATE") {
                Some(Value::Nil) => f += " INTERNALDATE=NIL",
                Some(v) => f += &format!(" INTERNALDATE={}", v.text().unwrap_or_default()),
                None => {}
            }
            if let Some(n) = items.size {
                f += &format!(" RFC822.SIZE={n}");
            }
            if let Some(n) = items.modseq {
                f += &format!(" MODSEQ={n}");
            }
            match (&items.body, item("BODY[]")) {
                (Some(b), _) => f += &format!(" BODY[]={}", b.len()),
                (None, Some(_)) => f += " BODY[]=NIL",
                (None, None) => {}
            }
            vec![f]
        }
        Response::Exists(n) => vec![format!("EXISTS {n}")],
        Response::Expunge(n) => vec![format!("EXPUNGE {n}")],
        Response::UidValidity(n) => vec![format!("UIDVALIDITY {n}")],
        Response::Vanished { .. } => vec!["UNSUPPORTED".into()],
        Response::Bye(t) => vec![format!("BYE {t}").trim_end().to_string()],
        Response::Continuation => vec!["CONTINUATION".into()],
        Response::Tagged { status, text, .. } => {
            let text = match text.strip_prefix('[').and_then(|t| t.split_once(']')) {
                Some((code, rest)) => {
                    let (word, args) = code.split_once(' ').unwrap_or((code, ""));
                    let args = if args.is_empty() {
                        String::new()
                    } else {
                        format!(" {args}")
                    };
                    format!("[{}{args}]{rest}", word.to_ascii_uppercase())
                }
                None => text,
            };
            vec![format!("TAGGED {status} {text}")]
        }
        Response::Other(u) => {
            let Some(values) = u.values.as_deref().or(match u.name.as_str() {
                "OK" | "NO" | "BAD" | "PREAUTH" => Some(&[]),
                _ => None,
            }) else {
                return vec!["ERROR".into()];
            };
            match u.name.as_str() {
                "STATUS" => {
                    let Some((name, rest)) = values.split_first() else {
                        return vec!["ERROR".into()];
                    };
                    let Some(name) = name.octets() else {
                        return vec!["ERROR".into()];
                    };
                    let mut f = format!("STATUS {}", json(name));
                    let items = match rest.first() {
                        Some(Value::List(l)) => l.clone(),
                        _ => Vec::new(),
                    };
                    for key in ["MESSAGES", "UIDNEXT", "UIDVALIDITY", "HIGHESTMODSEQ"] {
                        let v = items.chunks(2).find_map(|c| match c {
                            [Value::Atom(k), v] if k.eq_ignore_ascii_case(key) => v.number(),
                            _ => None,
                        });
                        if let Some(n) = v {
                            f += &format!(" {key}={n}");
                        }
                    }
                    vec![f]
                }
                "LIST" | "LSUB" => match mailkeep::fuzz_api::list_entry(values) {
                    Some((attrs, delim, name)) => {
                        let mut a: Vec<String> =
                            attrs.iter().map(|a| a.to_ascii_lowercase()).collect();
                        a.sort();
                        let d = match delim {
                            Some(c) => json(c.to_string().as_bytes()),
                            None => "NIL".into(),
                        };
                        vec![format!(
                            "LIST ({}) {d} {}",
                            a.join(","),
                            json(name.as_bytes())
                        )]
                    }
                    None => vec!["ERROR".into()],
                },
                "CAPABILITY" => {
                    let mut c: Vec<String> = u
                        .text
                        .split_ascii_whitespace()
                        .map(|t| t.to_ascii_uppercase())
                        .collect();
                    c.sort();
                    vec![format!("CAPABILITY {}", c.join(" "))]
                }
                "SEARCH" => {
                    let n: Vec<String> = values
                        .iter()
                        .filter_map(|v| v.number())
                        .map(|n| n.to_string())
                        .collect();
                    vec![format!("SEARCH {}", n.join(" ")).trim_end().to_string()]
                }
                "OK" => match u.code() {
                    Some((c, a))
                        if c == "UIDNEXT" || c == "HIGHESTMODSEQ" || c == "UIDVALIDITY" =>
                    {
                        match a.parse::<u64>() {
                            Ok(n) => vec![format!("{c} {n}")],
                            Err(_) => vec!["ERROR".into()],
                        }
                    }
                    Some((c, _)) if c == "NOMODSEQ" => vec!["NOMODSEQ".into()],
                    _ => vec![format!("OK {}", u.text)],
                },
                "NO" | "BAD" => vec![format!("{} {}", u.name, u.text)],
                _ => vec!["UNSUPPORTED".into()],
            }
        }
    }
}

/// Fuzz target `imap`. Byte 0: mode (bit 0) and read size (the rest).
///
/// - mode 0: FETCH/untagged/tagged responses read whole and read `max_read` bytes at a time
///   give the same responses and end the same way; parse errors are one line.
/// - mode 1: the line parsers (LIST, NAMESPACE, APPENDUID, response codes, throttling backoff,
///   greeting) on the input, and decoding the LIST name never panics.
pub fn fuzz_imap(data: &[u8]) {
    let Some((&head, data)) = data.split_first() else {
        return;
    };
    if head & 1 == 0 {
        let max_read = usize::from(head >> 1) + 1;
        let whole = imap_responses(data, usize::MAX);
        let pieces = imap_responses(data, max_read);
        assert_one_line("IMAP response error", &whole.1);
        assert_eq!(whole, pieces, "read in pieces of {max_read}");
        return;
    }
    if let Some((name, delim)) = imap_parse_list(data) {
        let _ = imap::decode_mailbox_name(&name, delim);
        let _ = imap::MailboxInfo::from_list(&name, delim, vec!["\\HasNoChildren".into()]);
    }
    if let Some(ns) = imap_parse_namespace(data) {
        let levels = ["Projects", "2024"];
        let _ = imap::mailbox_wire_name(&levels, &ns);
    }
    let text = String::from_utf8_lossy(data);
    let _ = imap_parse_appenduid(&text);
    if let Err(e) = imap_check_greeting(&text) {
        let _ = e;
    }
    let no = ImapError::No {
        command: "APPEND".into(),
        text: text.to_string(),
    };
    let _ = (
        no.response_code(),
        no.is_permanent_refusal(),
        no.suggested_backoff(),
    );
    let _ = mailkeep::protocol::imap::reader::parse_internal_date(data);
}
