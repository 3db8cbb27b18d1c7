//! A scripted fake IMAP4rev1 server for fault tests (STYLE.md: "a real server in tests; a
//! scripted fake only for faults").
//!
//! It plays transcripts in the format of `shared/cases/TRANSCRIPT-FORMAT.md` on
//! `127.0.0.1:<port>`, one thread per connection, and stops when dropped. `SESSION n` scripts
//! serve the n-th connection in the order they appear in the file (connections after the last
//! one get the last one again; [`FakeImapBuilder::sessions`] picks sessions by label, e.g.
//! `["1", "2"]` to skip case 26's `1b`). A script without `SESSION` lines serves every
//! connection.
//!
//! # Script reading
//! - `C:` lines: the leading `TAG` is dropped and so is a trailing annotation (everything from
//!   the first run of two or more spaces, e.g. `   (or EXAMINE)`).
//! - A block continues after its tagged line: `S:` lines that follow a `TAG …` line without a
//!   `C:` line of their own (case 13, 25, 26, 27: "any FETCH" tables written straight after
//!   the SELECT block) form an implicit block. Its command is FETCH if it holds a
//!   `* n FETCH` line, else the command word of its tagged line (`TAG OK SEARCH completed`).
//! - `* LIST` / `* LSUB` lines before the first `C:` line are not sent on connect; they answer
//!   LIST/LSUB. If no greeting is left (no `* OK`/`* PREAUTH`/`* BYE` before the first `C:`),
//!   `* OK [CAPABILITY IMAP4rev1] fake IMAP ready` is sent.
//!
//! # Matching a client command to a block
//! The tag is stripped and the command reduced to a name: `UID X` counts as `X`, EXAMINE as
//! SELECT, AUTHENTICATE as LOGIN. The answer is the next block (from the cursor on) with that
//! name whose arguments fit, skipping blocks in between; failing that, the most recent earlier
//! block that fits (a FETCH sent again, a second SELECT of the first folder); failing that, a
//! built-in answer. Arguments that must fit:
//! - SELECT/EXAMINE, STATUS: the mailbox (unquoted; `INBOX` case-insensitive).
//! - SEARCH: if the scripted command holds a `<…@…>` Message-ID, the client's command must
//!   contain it; a scripted `<…>` placeholder fits anything; otherwise the arguments must be
//!   equal ignoring case, quotes and runs of spaces.
//! - APPEND: only forward (a spent APPEND block is never replayed); the next block announcing
//!   the same literal size `{N}` is preferred, else the next APPEND block.
//!
//! # FETCH
//! A FETCH block's `* n FETCH` responses are split into per-message chunks (a chunk runs from
//! its `* n FETCH` line, including `PAUSE` lines directly before it, to the next one; it
//! holds its `S+` files, `S: )` lines, `STALL`/`CLOSE`). A chunk is keyed by the `UID` item
//! in it; a chunk without one (an unsolicited `* 3 FETCH (FLAGS …)`) takes the UID of another
//! chunk with the same sequence number. Lines before the first chunk are always sent; the
//! tagged line and what follows it are sent after the chosen chunks (`TAG OK FETCH
//! completed` is added when the block has no tagged line and no chunk stalled or closed).
//! - `UID FETCH <set>` sends the chunks whose UID is in the set; `FETCH <set>` those whose
//!   sequence number is; sets: `n`, `a:b`, `a:*`, `*`, comma lists. `*` is the largest
//!   UID (sequence number) in the table, so `46:*` selects the last message, as RFC 3501 says.
//!   Chunks are sent as written (the transcript's "whatever FETCH" rule), in script order.
//! - Synthesised listing: when the requested items contain no body-like item (none of
//!   `BODY[…]`, `BODY.PEEK[…]`, `BINARY…`, `RFC822`, `RFC822.HEADER`, `RFC822.TEXT`, `BODY`,
//!   `BODYSTRUCTURE`, `ENVELOPE`, `FULL`), the fake sends per selected message one line
//!   `* <seq> FETCH (UID u FLAGS (…) RFC822.SIZE s INTERNALDATE "…")` holding only the
//!   requested ones of these four items (UID always for `UID FETCH`; `ALL`/`FAST` mean FLAGS,
//!   INTERNALDATE and RFC822.SIZE), in that order, with values from the scripted chunks of
//!   that message (the last chunk giving an item wins, so case 17's unsolicited FLAGS
//!   count); RFC822.SIZE falls back to the size announced for `BODY[]`. Items the script does
//!   not give are left out; Gmail's `X-GM-MSGID`, `X-GM-THRID` and `X-GM-LABELS` are sent
//!   (after those four) when asked for and the chunks give them (the fake's Gmail mode, with
//!   `X-GM-EXT-1` in the greeting); other requested items (MODSEQ) are ignored. No literal,
//!   no `PAUSE`/`STALL`/`CLOSE` of the chunks, then `TAG OK FETCH completed`.
//!
//! # APPEND
//! The command line's literal `{N}` or `{N+}` is read exactly, then the rest of the line up to
//! LF; the octets are recorded ([`FakeImap::appends`]). For `{N}` the block's `+ …` line is
//! sent first (`+ go ahead` if the block has none but answers OK); for `{N+}` no continuation
//! is sent. A block without a `+` line whose tagged answer is NO/BAD (case 25's `[TOOBIG]`)
//! is sent at once; a `{N+}` literal is then read and dropped, a `{N}` one is not expected.
//! Without a block: `+ go ahead`, read, `TAG OK APPEND completed`.
//!
//! # Built-in answers (when no block fits)
//! CAPABILITY (from the greeting's `[CAPABILITY …]`, else `IMAP4rev1`), NOOP, CHECK, CLOSE,
//! UNSELECT, STORE, COPY, MOVE, EXPUNGE, SUBSCRIBE, UNSUBSCRIBE, DELETE, RENAME (`TAG OK`),
//! LOGIN / AUTHENTICATE (`+ ` first when no initial response; then `TAG OK`), ENABLE
//! (`* ENABLED`), ID (`* ID NIL`), NAMESPACE (`* NAMESPACE (("" "/")) NIL NIL`), IDLE (`+
//! idling` until `DONE`), LIST/LSUB (the script's `* LIST` lines plus `* LIST () "/" "<name>"`
//! for every mailbox named by a scripted SELECT or APPEND, filtered by the pattern with `*`
//! and `%`), STATUS (MESSAGES/UIDNEXT/UIDVALIDITY from the SELECT block, RECENT/UNSEEN 0),
//! SELECT/EXAMINE of a mailbox without a block (an empty mailbox with UIDVALIDITY 1 if the
//! script names it in an APPEND or has no SELECT at all, else `NO [NONEXISTENT]`), CREATE
//! (`NO [ALREADYEXISTS]` for a known mailbox, else OK), SEARCH (`ALL`/`1:*`/`UID 1:*`: the
//! keys of the current FETCH table; anything else: an empty `* SEARCH`), FETCH (no data),
//! LOGOUT (`* BYE`, tagged OK, close; also after a scripted LOGOUT block), STARTTLS/COMPRESS
//! (`NO`), anything else `BAD`.
//!
//! # Faults
//! `PAUSE ms`, `STALL` (stop sending, keep the socket open until the server is dropped),
//! `CLOSE` in scripts, `S! <line>` (a line sent as written, `TAG` replaced, that never starts
//! a FETCH chunk nor ends a block: e.g. an extra `* 9 FETCH (UID 99 …)` inside the chunk of
//! another message, sent whatever UIDs were asked for), and [`Fault`]s: cut an `S+` file, reply NO/BAD/BYE to the n-th
//! occurrence of a command, refuse every body FETCH of a damaged UID, announce a wrong literal size,
//! send a huge line without CRLF.

#![allow(dead_code)]

use std::collections::HashMap;
use std::fs::File;
use std::io::{self, BufRead, BufReader, BufWriter, Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

pub use super::fake_server::{Cut, CutFile};

/// A reply sent instead of the script (see [`Fault::Reply`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reply {
    /// `TAG NO <text>`.
    No(String),
    /// `TAG BAD <text>`.
    Bad(String),
    /// `* BYE <text>`, then the connection is closed.
    Bye(String),
}

/// A fault injected into the script.
#[derive(Debug, Clone)]
pub enum Fault {
    /// The first `times` sends of the `S+` file named `file` (file name only) stop after
    /// `after_bytes` bytes, then close or stall.
    Cut(CutFile),
    /// The `nth` (1-based, counted over all connections) command named `command` (compared
    /// after the same reduction as matching: `UID FETCH` = `FETCH`, EXAMINE = SELECT,
    /// AUTHENTICATE = LOGIN) gets `reply` instead of its scripted answer. The script's block is
    /// not used up, so a retry gets it. For APPEND the reply comes before the literal (no
    /// continuation; a `{N+}` literal is read and dropped; nothing is recorded).
    Reply {
        command: String,
        nth: usize,
        reply: Reply,
    },
    /// The first `times` sends of the `S+` file `file` are announced (the `{N}` closing the
    /// `S:` line just before it) as `N + delta` octets. The file is sent whole; with `then:
    /// None` the script goes on as written, with `Some(cut)` a CRLF follows the file, then the
    /// connection closes or stalls.
    LieLiteral {
        file: String,
        delta: i64,
        then: Option<Cut>,
        times: usize,
    },
    /// A message the server cannot send (a damaged file on its side): a body `UID FETCH`
    /// whose set holds `uid` answers `TAG NO <text>` instead of its tagged line, after the
    /// other messages asked for when `others` (as Gmail's `NO Some messages could not be
    /// FETCHed` does), with nothing before it otherwise (the whole command refused, as
    /// Dovecot's `NO [SERVERBUG]` to a broken mail file).
    Damaged {
        uid: u32,
        text: String,
        others: bool,
    },
    /// Instead of answering the `nth` command named `command` (or instead of the greeting of
    /// the `nth` connection when `command` is `GREETING`), send `* ` and `bytes` octets of `x`
    /// without CRLF, then close or stall.
    HugeLine {
        command: String,
        nth: usize,
        bytes: usize,
        then: Cut,
    },
}

/// One APPEND received.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Appended {
    /// The mailbox argument, unquoted.
    pub mailbox: String,
    /// The flags inside the parentheses, space-separated (`\Seen \Flagged`); empty if none.
    pub flags: String,
    /// The date-time argument without its quotes.
    pub date: Option<String>,
    /// The literal's octets exactly as received.
    pub bytes: Vec<u8>,
    /// The tagged answer sent, without the tag (`OK [APPENDUID 9 1] APPEND completed.`);
    /// `None` if the connection closed or stalled first.
    pub reply: Option<String>,
}

#[derive(Debug, Clone)]
enum Step {
    Line(String),
    /// `S! `: sent like a line, invisible to block and chunk splitting.
    Raw(String),
    File(PathBuf),
    Pause(u64),
    Stall,
    Close,
}

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Atom(String),
    Str(String),
    /// A literal and its announced size.
    Lit(usize),
    List(Vec<Tok>),
}

impl Tok {
    fn text(&self) -> Option<&str> {
        match self {
            Tok::Atom(s) | Tok::Str(s) => Some(s),
            _ => None,
        }
    }
}

#[derive(Debug, Clone)]
struct Chunk {
    seq: u32,
    uid: Option<u32>,
    steps: Vec<Step>,
    items: Vec<(String, Tok)>,
}

#[derive(Debug, Clone, Default)]
struct FetchTable {
    prelude: Vec<Step>,
    chunks: Vec<Chunk>,
    trailer: Vec<Step>,
}

#[derive(Debug, Clone)]
struct Exchange {
    /// Reduced, upper-case command name.
    name: String,
    /// The arguments as scripted.
    args: String,
    steps: Vec<Step>,
    fetch: Option<FetchTable>,
}

#[derive(Debug, Clone, Default)]
struct Session {
    label: String,
    opening: Vec<Step>,
    list_lines: Vec<String>,
    exchanges: Vec<Exchange>,
    capability: String,
    mailboxes: Vec<String>,
}

// ---------------------------------------------------------------- parsing

fn split_word(s: &str) -> (&str, &str) {
    let s = s.trim_start();
    match s.find(' ') {
        Some(i) => (&s[..i], s[i + 1..].trim_start()),
        None => (s, ""),
    }
}

/// `(reduced name, name as sent e.g. "UID FETCH", arguments)` of a tagless command.
fn split_command(c: &str) -> (String, String, &str) {
    let (w1, mut rest) = split_word(c);
    let mut up = w1.to_ascii_uppercase();
    let mut display = up.clone();
    if up == "UID" {
        let (w2, r2) = split_word(rest);
        up = w2.to_ascii_uppercase();
        display = format!("UID {up}");
        rest = r2;
    }
    let canon = match up.as_str() {
        "EXAMINE" => "SELECT",
        "AUTHENTICATE" => "LOGIN",
        other => other,
    };
    (canon.to_string(), display, rest)
}

fn canon_name(command: &str) -> String {
    split_command(command).0
}

fn strip_annotation(c: &str) -> &str {
    match c.find("  ") {
        Some(i) => c[..i].trim_end(),
        None => c.trim_end(),
    }
}

/// Tokens of IMAP data; `\x01` marks where a literal's octets were (after `{N}`).
fn toks(b: &[u8], i: &mut usize) -> Vec<Tok> {
    let mut out = Vec::new();
    while *i < b.len() {
        match b[*i] {
            b' ' | b'\r' | b'\n' | 0x01 => *i += 1,
            b'(' => {
                *i += 1;
                out.push(Tok::List(toks(b, i)));
            }
            b')' => {
                *i += 1;
                return out;
            }
            b'"' => {
                *i += 1;
                let mut s = Vec::new();
                while *i < b.len() && b[*i] != b'"' {
                    if b[*i] == b'\\' && *i + 1 < b.len() {
                        *i += 1;
                    }
                    s.push(b[*i]);
                    *i += 1;
                }
                *i += 1;
                out.push(Tok::Str(String::from_utf8_lossy(&s).into_owned()));
            }
            b'{' if b[*i..].iter().position(|&c| c == b'}').is_some_and(|e| {
                let inner = &b[*i + 1..*i + e];
                !inner.is_empty()
                    && inner
                        .iter()
                        .all(|c| c.is_ascii_digit() || *c == b'+' || *c == b'-')
            }) =>
            {
                let e = *i + b[*i..].iter().position(|&c| c == b'}').unwrap();
                let n: String = String::from_utf8_lossy(&b[*i + 1..e])
                    .chars()
                    .filter(|c| c.is_ascii_digit())
                    .collect();
                *i = e + 1;
                if b.get(*i) == Some(&0x01) {
                    *i += 1;
                }
                out.push(Tok::Lit(n.parse().unwrap_or(0)));
            }
            _ => {
                let start = *i;
                let mut depth = 0;
                while *i < b.len() {
                    let c = b[*i];
                    if c == b'[' {
                        depth += 1;
                    } else if c == b']' {
                        depth -= 1;
                    } else if depth <= 0 && matches!(c, b' ' | b'(' | b')' | 0x01 | b'\r') {
                        break;
                    }
                    *i += 1;
                }
                out.push(Tok::Atom(
                    String::from_utf8_lossy(&b[start..*i]).into_owned(),
                ));
            }
        }
    }
    out
}

fn tokens(s: &str) -> Vec<Tok> {
    toks(s.as_bytes(), &mut 0)
}

fn norm_mailbox(s: &str) -> String {
    if s.eq_ignore_ascii_case("INBOX") {
        "INBOX".into()
    } else {
        s.to_string()
    }
}

/// The first argument (a mailbox), unquoted.
fn first_mailbox(args: &str) -> Option<String> {
    tokens(args).first().and_then(Tok::text).map(norm_mailbox)
}

fn is_tagged(l: &str) -> bool {
    l == "TAG" || l.starts_with("TAG ")
}

fn is_fetch_line(l: &str) -> bool {
    let mut w = l.split_whitespace();
    w.next() == Some("*")
        && w.next()
            .is_some_and(|n| n.bytes().all(|c| c.is_ascii_digit()))
        && w.next().is_some_and(|f| f.eq_ignore_ascii_case("FETCH"))
}

fn implicit_name(steps: &[Step]) -> String {
    let lines = || {
        steps.iter().filter_map(|s| match s {
            Step::Line(l) => Some(l.as_str()),
            _ => None,
        })
    };
    if lines().any(is_fetch_line) {
        return "FETCH".into();
    }
    let Some(tagged) = lines().find(|l| is_tagged(l)) else {
        return String::new();
    };
    let mut rest = tagged.get(4..).unwrap_or("");
    let (_status, r) = split_word(rest);
    rest = r;
    if rest.starts_with('[') {
        rest = rest.find(']').map(|i| &rest[i + 1..]).unwrap_or("");
    }
    canon_name(rest)
}

fn split_implicit(ex: Exchange) -> Vec<Exchange> {
    let mut out = Vec::new();
    let mut cur = ex;
    loop {
        let pos = cur
            .steps
            .iter()
            .position(|s| matches!(s, Step::Line(l) if is_tagged(l)));
        match pos {
            Some(p)
                if cur.steps[p + 1..]
                    .iter()
                    .any(|s| matches!(s, Step::Line(_))) =>
            {
                let rest = cur.steps.split_off(p + 1);
                let name = implicit_name(&rest);
                out.push(cur);
                cur = Exchange {
                    name,
                    args: String::new(),
                    steps: rest,
                    fetch: None,
                };
            }
            _ => {
                out.push(cur);
                return out;
            }
        }
    }
}

fn build_table(steps: &[Step]) -> FetchTable {
    let mut t = FetchTable::default();
    let mut pending: Vec<Step> = Vec::new();
    let mut it = steps.iter().enumerate();
    for (k, step) in it.by_ref() {
        match step {
            Step::Line(l) if is_fetch_line(l) => {
                let mut s = std::mem::take(&mut pending);
                s.push(step.clone());
                t.chunks.push(Chunk {
                    seq: 0,
                    uid: None,
                    steps: s,
                    items: Vec::new(),
                });
            }
            Step::Line(l) if is_tagged(l) => {
                t.trailer = std::mem::take(&mut pending);
                t.trailer.extend(steps[k..].iter().cloned());
                break;
            }
            Step::Pause(_) => pending.push(step.clone()),
            _ => {
                let dst = match t.chunks.last_mut() {
                    Some(c) => &mut c.steps,
                    None => &mut t.prelude,
                };
                dst.append(&mut pending);
                dst.push(step.clone());
            }
        }
    }
    if !pending.is_empty() {
        let mut tail = std::mem::take(&mut t.trailer);
        pending.append(&mut tail);
        t.trailer = pending;
    }
    for c in &mut t.chunks {
        let mut text = String::new();
        for s in &c.steps {
            match s {
                Step::Line(l) => text.push_str(l),
                Step::File(_) => text.push('\x01'),
                _ => {}
            }
        }
        let tk = tokens(&text);
        c.seq = tk
            .get(1)
            .and_then(Tok::text)
            .and_then(|s| s.parse().ok())
            .unwrap_or(0);
        if let Some(Tok::List(items)) = tk.get(3) {
            for pair in items.chunks(2) {
                if let [Tok::Atom(name), value] = pair {
                    c.items.push((name.to_ascii_uppercase(), value.clone()));
                }
            }
        }
        c.uid = c
            .items
            .iter()
            .find(|(n, _)| n == "UID")
            .and_then(|(_, v)| v.text()?.parse().ok());
    }
    let known: Vec<(u32, u32)> = t
        .chunks
        .iter()
        .filter_map(|c| Some((c.seq, c.uid?)))
        .collect();
    for c in &mut t.chunks {
        if c.uid.is_none() {
            c.uid = known.iter().find(|(s, _)| *s == c.seq).map(|(_, u)| *u);
        }
    }
    t
}

fn finalize(mut s: Session) -> Session {
    let exchanges = std::mem::take(&mut s.exchanges);
    for ex in exchanges {
        s.exchanges.extend(split_implicit(ex));
    }
    for ex in &mut s.exchanges {
        if ex.name == "FETCH" {
            ex.fetch = Some(build_table(&ex.steps));
        }
    }
    let opening = std::mem::take(&mut s.opening);
    for step in opening {
        match &step {
            Step::Line(l) if l.starts_with("* LIST ") || l.starts_with("* LSUB ") => {
                s.list_lines.push(l.clone())
            }
            _ => s.opening.push(step),
        }
    }
    let greeting = s.opening.iter().find_map(|st| match st {
        Step::Line(l)
            if l.starts_with("* OK") || l.starts_with("* PREAUTH") || l.starts_with("* BYE") =>
        {
            Some(l.clone())
        }
        _ => None,
    });
    let greeting = greeting.unwrap_or_else(|| {
        let g = "* OK [CAPABILITY IMAP4rev1] fake IMAP ready".to_string();
        s.opening.insert(0, Step::Line(g.clone()));
        g
    });
    s.capability = greeting
        .find("[CAPABILITY ")
        .and_then(|i| {
            let rest = &greeting[i + 12..];
            rest.find(']').map(|e| rest[..e].to_string())
        })
        .unwrap_or_else(|| "IMAP4rev1".into());
    let mut names: Vec<String> = Vec::new();
    for l in &s.list_lines {
        if let Some(n) = tokens(l).last().and_then(Tok::text) {
            names.push(norm_mailbox(n));
        }
    }
    for ex in &s.exchanges {
        if ex.name == "SELECT" || ex.name == "APPEND" {
            if let Some(m) = first_mailbox(&ex.args) {
                if !m.starts_with('<') && !names.contains(&m) {
                    names.push(m);
                }
            }
        }
    }
    s.mailboxes = names;
    s
}

fn parse(script: &str, base_dir: &Path) -> Vec<Session> {
    let mut sessions: Vec<Session> = Vec::new();
    let mut current = Session::default();
    let mut seen_session = false;
    for raw in script.lines() {
        let line = raw.trim_end_matches('\r');
        if line.starts_with('#') || line.trim().is_empty() {
            continue;
        }
        let step = if let Some(text) = line.strip_prefix("S: ") {
            Step::Line(text.to_string())
        } else if line == "S:" {
            Step::Line(String::new())
        } else if let Some(text) = line.strip_prefix("S! ") {
            Step::Raw(text.to_string())
        } else if let Some(file) = line.strip_prefix("S+ ") {
            Step::File(base_dir.join(file.trim()))
        } else if let Some(cmd) = line.strip_prefix("C: ") {
            let cmd = strip_annotation(cmd.trim_start());
            let cmd = cmd.strip_prefix("TAG ").unwrap_or(cmd);
            let (name, _, args) = split_command(cmd);
            current.exchanges.push(Exchange {
                name,
                args: args.to_string(),
                steps: Vec::new(),
                fetch: None,
            });
            continue;
        } else if let Some(ms) = line.strip_prefix("PAUSE ") {
            Step::Pause(ms.trim().parse().expect("PAUSE <ms>"))
        } else if line.trim() == "STALL" {
            Step::Stall
        } else if line.trim() == "CLOSE" {
            Step::Close
        } else if let Some(rest) = line.strip_prefix("SESSION") {
            let label = rest.split_whitespace().next().unwrap_or("").to_string();
            if seen_session {
                sessions.push(finalize(std::mem::take(&mut current)));
            } else {
                current = Session::default();
            }
            current.label = label;
            seen_session = true;
            continue;
        } else {
            panic!("fake IMAP server: cannot parse script line {line:?}");
        };
        match current.exchanges.last_mut() {
            Some(ex) => ex.steps.push(step),
            None => current.opening.push(step),
        }
    }
    sessions.push(finalize(current));
    sessions
}

// ---------------------------------------------------------------- server

struct Shared {
    stop: AtomicBool,
    wake: (Mutex<()>, Condvar),
    sockets: Mutex<Vec<TcpStream>>,
    threads: Mutex<Vec<JoinHandle<()>>>,
    commands: Mutex<Vec<(usize, Instant, String)>>,
    appends: Mutex<Vec<Appended>>,
    counts: Mutex<HashMap<String, usize>>,
    faults: Mutex<Vec<Fault>>,
}

impl Shared {
    /// Sleeps `ms` or until the server is dropped; false if dropped.
    fn sleep(&self, ms: u64) -> bool {
        let deadline = Instant::now() + Duration::from_millis(ms);
        let (lock, cv) = &self.wake;
        let mut g = lock.lock().unwrap();
        loop {
            if self.stop.load(Ordering::SeqCst) {
                return false;
            }
            let now = Instant::now();
            if now >= deadline {
                return true;
            }
            let wait = (deadline - now).min(Duration::from_millis(100));
            g = cv.wait_timeout(g, wait).unwrap().0;
        }
    }

    /// Blocks until the server is dropped.
    fn stall(&self) {
        while self.sleep(1000) {}
    }

    /// Counts one more occurrence of `key` and returns the count.
    fn count(&self, key: &str) -> usize {
        let mut c = self.counts.lock().unwrap();
        let n = c.entry(key.to_string()).or_insert(0);
        *n += 1;
        *n
    }

    fn reply_fault(&self, name: &str, nth: usize) -> Option<Reply> {
        self.faults.lock().unwrap().iter().find_map(|f| match f {
            Fault::Reply {
                command,
                nth: n,
                reply,
            } if canon_name(command) == name && *n == nth => Some(reply.clone()),
            _ => None,
        })
    }

    /// The [`Fault::Damaged`] refusal for a body UID FETCH of `uid`, if any.
    fn damaged(&self, uid: u32) -> Option<(String, bool)> {
        self.faults.lock().unwrap().iter().find_map(|f| match f {
            Fault::Damaged {
                uid: u,
                text,
                others,
            } if *u == uid => Some((text.clone(), *others)),
            _ => None,
        })
    }

    fn huge_fault(&self, name: &str, nth: usize) -> Option<(usize, Cut)> {
        self.faults.lock().unwrap().iter().find_map(|f| match f {
            Fault::HugeLine {
                command,
                nth: n,
                bytes,
                then,
            } if *n == nth
                && (canon_name(command) == name
                    || (name == "GREETING" && command.eq_ignore_ascii_case("GREETING"))) =>
            {
                Some((*bytes, *then))
            }
            _ => None,
        })
    }

    /// Takes one use of a LieLiteral fault for `file`.
    fn lie_fault(&self, file: &str) -> Option<(i64, Option<Cut>)> {
        let mut faults = self.faults.lock().unwrap();
        faults.iter_mut().find_map(|f| match f {
            Fault::LieLiteral {
                file: name,
                delta,
                then,
                times,
            } if name == file && *times > 0 => {
                *times -= 1;
                Some((*delta, *then))
            }
            _ => None,
        })
    }

    fn cut_fault(&self, file: &str) -> Option<(usize, Cut)> {
        let mut faults = self.faults.lock().unwrap();
        faults.iter_mut().find_map(|f| match f {
            Fault::Cut(c) if c.file == file && c.times > 0 => {
                c.times -= 1;
                Some((c.after_bytes, c.then))
            }
            _ => None,
        })
    }
}

/// Builds a [`FakeImap`]: script, faults, session choice.
pub struct FakeImapBuilder {
    script: String,
    base_dir: PathBuf,
    faults: Vec<Fault>,
    sessions: Option<Vec<String>>,
    /// The port to listen on (`None`: any free one).
    port: Option<u16>,
}

impl FakeImapBuilder {
    /// Adds a fault.
    pub fn fault(mut self, f: Fault) -> Self {
        self.faults.push(f);
        self
    }

    /// [`Fault::Cut`] once: the first send of `file` stops after `after_bytes`, then `then`.
    pub fn cut_file(self, file: &str, after_bytes: usize, then: Cut) -> Self {
        self.fault(Fault::Cut(CutFile::once(file, after_bytes, then)))
    }

    /// [`Fault::Reply`]: the `nth` `command` (1-based, over all connections) gets `reply`.
    pub fn reply(self, command: &str, nth: usize, reply: Reply) -> Self {
        self.fault(Fault::Reply {
            command: command.to_string(),
            nth,
            reply,
        })
    }

    /// [`Fault::LieLiteral`] once for `file`.
    pub fn lie_literal(self, file: &str, delta: i64, then: Option<Cut>) -> Self {
        self.fault(Fault::LieLiteral {
            file: file.to_string(),
            delta,
            then,
            times: 1,
        })
    }

    /// [`Fault::HugeLine`] of `megabytes` MiB answering the `nth` `command` (or `GREETING`).
    pub fn huge_line(self, command: &str, nth: usize, megabytes: usize, then: Cut) -> Self {
        self.fault(Fault::HugeLine {
            command: command.to_string(),
            nth,
            bytes: megabytes * 1024 * 1024,
            then,
        })
    }

    /// Serves only the sessions with these labels (`SESSION <label>`), in this order: the
    /// first connection gets `labels[0]`, and so on.
    pub fn sessions(mut self, labels: &[&str]) -> Self {
        self.sessions = Some(labels.iter().map(|s| s.to_string()).collect());
        self
    }

    /// Starts listening on `127.0.0.1:0`.
    /// Listens on `port` (the port of a fake that was dropped: the same server, restarted;
    /// mailkeep keys a restore target by its port).
    pub fn on_port(mut self, port: u16) -> Self {
        self.port = Some(port);
        self
    }

    pub fn start(self) -> FakeImap {
        let mut sessions = parse(&self.script, &self.base_dir);
        if let Some(labels) = &self.sessions {
            sessions = labels
                .iter()
                .map(|l| {
                    sessions
                        .iter()
                        .find(|s| &s.label == l)
                        .unwrap_or_else(|| panic!("fake IMAP server: no SESSION {l}"))
                        .clone()
                })
                .collect();
            assert!(!sessions.is_empty(), "fake IMAP server: no sessions chosen");
        }
        let sessions = Arc::new(sessions);
        let at = format!("127.0.0.1:{}", self.port.unwrap_or(0));
        // A given port may still be held for a moment (another test's listener that took it
        // while it was free): try again for a while.
        let deadline = std::time::Instant::now() + Duration::from_secs(15);
        let listener = loop {
            match TcpListener::bind(&at) {
                Ok(l) => break l,
                Err(e) if self.port.is_some() && std::time::Instant::now() < deadline => {
                    let _ = e;
                    std::thread::sleep(Duration::from_millis(100));
                }
                Err(e) => panic!("bind {at}: {e}"),
            }
        };
        let port = listener.local_addr().unwrap().port();
        let shared = Arc::new(Shared {
            stop: AtomicBool::new(false),
            wake: (Mutex::new(()), Condvar::new()),
            sockets: Mutex::new(Vec::new()),
            threads: Mutex::new(Vec::new()),
            commands: Mutex::new(Vec::new()),
            appends: Mutex::new(Vec::new()),
            counts: Mutex::new(HashMap::new()),
            faults: Mutex::new(self.faults),
        });
        let connections = Arc::new(AtomicUsize::new(0));
        let (sh, conns) = (shared.clone(), connections.clone());
        let acceptor = std::thread::spawn(move || {
            for stream in listener.incoming() {
                if sh.stop.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(stream) = stream else { continue };
                let n = conns.fetch_add(1, Ordering::SeqCst) + 1;
                if let Ok(clone) = stream.try_clone() {
                    sh.sockets.lock().unwrap().push(clone);
                }
                let session = sessions[(n - 1).min(sessions.len() - 1)].clone();
                let sh2 = sh.clone();
                let t = std::thread::spawn(move || serve(stream, n, &session, &sh2));
                sh.threads.lock().unwrap().push(t);
            }
        });
        FakeImap {
            port,
            shared,
            connections,
            acceptor: Some(acceptor),
        }
    }
}

/// A fake IMAP server on `127.0.0.1:port`, stopped when dropped.
pub struct FakeImap {
    port: u16,
    shared: Arc<Shared>,
    connections: Arc<AtomicUsize>,
    acceptor: Option<JoinHandle<()>>,
}

impl FakeImap {
    /// Plays the transcript at `path`; `S+` files are relative to its folder.
    pub fn from_transcript(path: &Path) -> FakeImap {
        Self::builder(path).start()
    }

    /// Plays `script`; `S+` files are relative to `base_dir`.
    pub fn from_str(script: &str, base_dir: &Path) -> FakeImap {
        Self::builder_str(script, base_dir).start()
    }

    /// Plays the transcript at `path` with faults.
    pub fn with_faults(path: &Path, faults: Vec<Fault>) -> FakeImap {
        faults
            .into_iter()
            .fold(Self::builder(path), FakeImapBuilder::fault)
            .start()
    }

    /// A builder for the transcript at `path`.
    pub fn builder(path: &Path) -> FakeImapBuilder {
        let script = std::fs::read_to_string(path)
            .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
        Self::builder_str(&script, path.parent().unwrap_or(Path::new(".")))
    }

    /// A builder for `script`; `S+` files are relative to `base_dir`.
    pub fn builder_str(script: &str, base_dir: &Path) -> FakeImapBuilder {
        FakeImapBuilder {
            script: script.to_string(),
            base_dir: base_dir.to_path_buf(),
            faults: Vec::new(),
            sessions: None,
            port: None,
        }
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// `127.0.0.1:port`.
    pub fn addr(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// Every command line received, across connections, in order, tag stripped (e.g.
    /// `UID FETCH 1:* (UID FLAGS)`). Literals of commands other than APPEND are shown as
    /// quoted strings; AUTHENTICATE continuation lines and IDLE's `DONE` are not recorded.
    pub fn commands(&self) -> Vec<String> {
        let c = self.shared.commands.lock().unwrap();
        c.iter().map(|(_, _, s)| s.clone()).collect()
    }

    /// The command lines received on the `n`-th connection (1-based).
    pub fn commands_in(&self, n: usize) -> Vec<String> {
        let c = self.shared.commands.lock().unwrap();
        c.iter()
            .filter(|(k, _, _)| *k == n)
            .map(|(_, _, s)| s.clone())
            .collect()
    }

    /// Like [`FakeImap::commands`], with the time each line arrived.
    pub fn timed_commands(&self) -> Vec<(Instant, String)> {
        let c = self.shared.commands.lock().unwrap();
        c.iter().map(|(_, t, s)| (*t, s.clone())).collect()
    }

    /// Every APPEND whose literal was received (also those then answered NO).
    pub fn appends(&self) -> Vec<Appended> {
        self.shared.appends.lock().unwrap().clone()
    }

    /// How many connections were accepted.
    pub fn connections(&self) -> usize {
        self.connections.load(Ordering::SeqCst)
    }
}

impl Drop for FakeImap {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::SeqCst);
        self.shared.wake.1.notify_all();
        for s in self.shared.sockets.lock().unwrap().drain(..) {
            let _ = s.shutdown(Shutdown::Both);
        }
        // Wake the acceptor.
        let _ = TcpStream::connect(("127.0.0.1", self.port));
        if let Some(a) = self.acceptor.take() {
            let _ = a.join();
        }
        let threads: Vec<_> = self.shared.threads.lock().unwrap().drain(..).collect();
        for t in threads {
            let _ = t.join();
        }
    }
}

// ---------------------------------------------------------------- connection

enum Flow {
    Continue,
    Closed,
}

type Out = BufWriter<TcpStream>;

struct Conn<'a> {
    n: usize,
    session: &'a Session,
    shared: &'a Shared,
    reader: BufReader<TcpStream>,
    out: Out,
    cursor: usize,
}

fn subst(l: &str, tag: &str) -> String {
    if l == "TAG" {
        tag.to_string()
    } else if let Some(r) = l.strip_prefix("TAG ") {
        format!("{tag} {r}")
    } else {
        l.to_string()
    }
}

fn close(out: &mut Out) -> Flow {
    let _ = out.flush();
    let _ = out.get_ref().shutdown(Shutdown::Both);
    Flow::Closed
}

fn after_cut(out: &mut Out, then: Cut, shared: &Shared) -> Flow {
    let _ = out.flush();
    match then {
        Cut::Close => close(out),
        Cut::Stall => {
            shared.stall();
            Flow::Closed
        }
    }
}

fn file_name(p: &Path) -> &str {
    p.file_name().and_then(|n| n.to_str()).unwrap_or("")
}

/// Rewrites the `{N}` ending `l` to `{N+delta}`.
fn lie_about(l: &str, delta: i64) -> String {
    match (l.rfind('{'), l.ends_with('}')) {
        (Some(i), true) => {
            let n: i64 = l[i + 1..l.len() - 1]
                .trim_end_matches('+')
                .parse()
                .unwrap_or(0);
            format!("{}{{{}}}", &l[..i], (n + delta).max(0))
        }
        _ => l.to_string(),
    }
}

fn play(out: &mut Out, steps: &[Step], tag: &str, shared: &Shared) -> Flow {
    let mut lie_then: Option<Option<Cut>> = None;
    for (k, step) in steps.iter().enumerate() {
        let ok = match step {
            Step::Line(l) => {
                let mut line = subst(l, tag);
                if let Some(Step::File(p)) = steps.get(k + 1) {
                    if let Some((delta, then)) = shared.lie_fault(file_name(p)) {
                        line = lie_about(&line, delta);
                        lie_then = Some(then);
                    }
                }
                out.write_all(line.as_bytes()).is_ok() && out.write_all(b"\r\n").is_ok()
            }
            Step::Raw(l) => {
                let line = subst(l, tag);
                out.write_all(line.as_bytes()).is_ok() && out.write_all(b"\r\n").is_ok()
            }
            Step::File(path) => {
                let mut f = File::open(path).unwrap_or_else(|e| {
                    panic!("fake IMAP server: cannot read {}: {e}", path.display())
                });
                if let Some((k, then)) = shared.cut_fault(file_name(path)) {
                    let _ = io::copy(&mut (&mut f).take(k as u64), out);
                    return after_cut(out, then, shared);
                }
                if io::copy(&mut f, out).is_err() {
                    return Flow::Closed;
                }
                if let Some(Some(then)) = lie_then.take() {
                    let _ = out.write_all(b"\r\n");
                    return after_cut(out, then, shared);
                }
                true
            }
            Step::Pause(ms) => {
                let _ = out.flush();
                shared.sleep(*ms)
            }
            Step::Stall => {
                let _ = out.flush();
                shared.stall();
                return Flow::Closed;
            }
            Step::Close => return close(out),
        };
        if !ok {
            return Flow::Closed;
        }
    }
    if out.flush().is_err() {
        return Flow::Closed;
    }
    Flow::Continue
}

fn lines(v: &[&str]) -> Vec<Step> {
    v.iter().map(|l| Step::Line(l.to_string())).collect()
}

/// `{N}` / `{N+}` at the end of a line: `(N, non-synchronising)`.
fn literal_at_end(line: &str) -> Option<(usize, bool)> {
    let l = line.trim_end();
    if !l.ends_with('}') {
        return None;
    }
    let i = l.rfind('{')?;
    let inner = &l[i + 1..l.len() - 1];
    let plus = inner.ends_with('+');
    let n = inner.trim_end_matches('+').parse().ok()?;
    Some((n, plus))
}

fn quote(s: &str) -> String {
    format!("\"{}\"", s.replace('\\', "\\\\").replace('"', "\\\""))
}

/// Parses a sequence set against the largest key `max`.
fn in_set(set: &str, key: u32, max: u32) -> bool {
    let val = |s: &str| -> Option<u32> {
        if s == "*" {
            Some(max)
        } else {
            s.parse().ok()
        }
    };
    set.split(',').any(|part| match part.split_once(':') {
        Some((a, b)) => match (val(a), val(b)) {
            (Some(a), Some(b)) => (a.min(b)..=a.max(b)).contains(&key),
            _ => false,
        },
        None => val(part) == Some(key),
    })
}

fn wildcard(pat: &[u8], name: &[u8]) -> bool {
    match pat.first() {
        None => name.is_empty(),
        Some(b'*') => (0..=name.len()).any(|k| wildcard(&pat[1..], &name[k..])),
        Some(b'%') => (0..=name.len())
            .take_while(|&k| k == 0 || name[k - 1] != b'/')
            .any(|k| wildcard(&pat[1..], &name[k..])),
        Some(c) => name.first() == Some(c) && wildcard(&pat[1..], &name[1..]),
    }
}

fn render(t: &Tok) -> String {
    match t {
        Tok::Atom(s) => s.clone(),
        Tok::Str(s) => quote(s),
        Tok::Lit(n) => format!("{{{n}}}"),
        Tok::List(v) => format!("({})", v.iter().map(render).collect::<Vec<_>>().join(" ")),
    }
}

const BODY_WORDS: [&str; 7] = [
    "RFC822",
    "RFC822.HEADER",
    "RFC822.TEXT",
    "BODY",
    "BODYSTRUCTURE",
    "ENVELOPE",
    "FULL",
];

impl<'a> Conn<'a> {
    fn send(&mut self, steps: &[Step], tag: &str) -> Flow {
        play(&mut self.out, steps, tag, self.shared)
    }

    fn read_line(&mut self) -> Option<Vec<u8>> {
        let mut buf = Vec::new();
        match self.reader.read_until(b'\n', &mut buf) {
            Ok(0) | Err(_) => None,
            Ok(_) => {
                while buf.last().is_some_and(|c| *c == b'\n' || *c == b'\r') {
                    buf.pop();
                }
                Some(buf)
            }
        }
    }

    fn read_literal(&mut self, n: usize) -> Option<Vec<u8>> {
        let mut v = Vec::with_capacity(n.min(64 << 20));
        (&mut self.reader).take(n as u64).read_to_end(&mut v).ok()?;
        (v.len() == n).then_some(v)
    }

    fn find(&self, pred: impl Fn(&Exchange) -> bool, forward_only: bool) -> Option<usize> {
        let exs = &self.session.exchanges;
        (self.cursor..exs.len())
            .find(|&j| pred(&exs[j]))
            .or_else(|| {
                if forward_only {
                    None
                } else {
                    (0..self.cursor.min(exs.len()))
                        .rev()
                        .find(|&j| pred(&exs[j]))
                }
            })
    }

    fn take(&mut self, j: usize) -> &'a Exchange {
        if j >= self.cursor {
            self.cursor = j + 1;
        }
        let session: &'a Session = self.session;
        &session.exchanges[j]
    }

    fn fits<'b>(name: &'b str, args: &'b str) -> impl Fn(&Exchange) -> bool + 'b {
        move |ex: &Exchange| {
            if ex.name != name {
                return false;
            }
            match name {
                "SELECT" | "STATUS" => first_mailbox(&ex.args) == first_mailbox(args),
                "SEARCH" => search_fits(&ex.args, args),
                _ => true,
            }
        }
    }

    fn select_info(&self, mailbox: &str) -> Option<(u64, u64, u64)> {
        let ex = self.session.exchanges.iter().find(|ex| {
            ex.name == "SELECT" && first_mailbox(&ex.args).as_deref() == Some(mailbox)
        })?;
        let (mut exists, mut validity, mut next) = (0, 0, 0);
        for s in &ex.steps {
            let Step::Line(l) = s else { continue };
            let w: Vec<&str> = l.split_whitespace().collect();
            if w.len() >= 3 && w[0] == "*" && w[2].eq_ignore_ascii_case("EXISTS") {
                exists = w[1].parse().unwrap_or(0);
            }
            for (key, dst) in [("[UIDVALIDITY ", &mut validity), ("[UIDNEXT ", &mut next)] {
                if let Some(i) = l.find(key) {
                    let rest = &l[i + key.len()..];
                    *dst = rest[..rest.find(']').unwrap_or(rest.len())]
                        .trim()
                        .parse()
                        .unwrap_or(0);
                }
            }
        }
        Some((exists, validity, next))
    }

    /// The mailbox is known from the script's APPEND lines, or the script selects nothing.
    fn empty_mailbox_ok(&self, mailbox: &str) -> bool {
        !self.session.exchanges.iter().any(|e| e.name == "SELECT")
            || self.session.mailboxes.iter().any(|m| m == mailbox)
    }

    fn builtin(&mut self, name: &str, display: &str, args: &str) -> Vec<Step> {
        let ok = format!("TAG OK {} completed", display.trim_start_matches("UID "));
        match name {
            "CAPABILITY" => vec![
                Step::Line(format!("* CAPABILITY {}", self.session.capability)),
                Step::Line(ok),
            ],
            "NOOP" | "CHECK" | "CLOSE" | "UNSELECT" | "STORE" | "COPY" | "MOVE" | "EXPUNGE"
            | "SUBSCRIBE" | "UNSUBSCRIBE" | "DELETE" | "RENAME" | "LOGIN" | "FETCH" => {
                vec![Step::Line(ok)]
            }
            "ENABLE" => lines(&["* ENABLED", &ok]),
            "ID" => lines(&["* ID NIL", &ok]),
            "NAMESPACE" => lines(&["* NAMESPACE ((\"\" \"/\")) NIL NIL", &ok]),
            "LOGOUT" => lines(&["* BYE Logging out", &ok]),
            "STARTTLS" | "COMPRESS" => vec![Step::Line(format!("TAG NO {display} not supported"))],
            "LIST" | "LSUB" => {
                let mut t = tokens(args);
                if matches!(t.first(), Some(Tok::List(_))) {
                    t.remove(0);
                }
                let reference = t.first().and_then(Tok::text).unwrap_or("").to_string();
                let pattern = match t.get(1) {
                    Some(Tok::List(v)) => v.first().and_then(Tok::text).unwrap_or("*"),
                    Some(x) => x.text().unwrap_or("*"),
                    None => "*",
                }
                .to_string();
                let mut out = Vec::new();
                if pattern.is_empty() {
                    out.push(Step::Line(format!("* {name} (\\Noselect) \"/\" \"\"")));
                } else {
                    let full = format!("{reference}{pattern}");
                    let matches = |n: &str| {
                        wildcard(full.as_bytes(), n.as_bytes())
                            || (n == "INBOX" && wildcard(full.to_uppercase().as_bytes(), b"INBOX"))
                    };
                    let mut listed: Vec<String> = Vec::new();
                    for l in &self.session.list_lines {
                        if let Some(n) = tokens(l).last().and_then(Tok::text) {
                            let n = norm_mailbox(n);
                            if matches(&n) {
                                let l = if name == "LSUB" {
                                    l.replacen("* LIST ", "* LSUB ", 1)
                                } else {
                                    l.clone()
                                };
                                out.push(Step::Line(l));
                            }
                            listed.push(n);
                        }
                    }
                    for m in &self.session.mailboxes {
                        if !listed.contains(m) && matches(m) {
                            out.push(Step::Line(format!("* {name} () \"/\" {}", quote(m))));
                        }
                    }
                }
                out.push(Step::Line(ok));
                out
            }
            "STATUS" => {
                let mailbox = first_mailbox(args).unwrap_or_default();
                let info = self
                    .select_info(&mailbox)
                    .or_else(|| self.empty_mailbox_ok(&mailbox).then_some((0, 1, 1)));
                let Some((exists, validity, next)) = info else {
                    return lines(&["TAG NO [NONEXISTENT] Mailbox doesn't exist"]);
                };
                let wanted = match tokens(args).get(1) {
                    Some(Tok::List(v)) => v.clone(),
                    _ => Vec::new(),
                };
                let items: Vec<String> = wanted
                    .iter()
                    .filter_map(Tok::text)
                    .filter_map(|w| {
                        let w = w.to_ascii_uppercase();
                        let v = match w.as_str() {
                            "MESSAGES" => exists,
                            "UIDVALIDITY" => validity,
                            "UIDNEXT" => next,
                            "RECENT" | "UNSEEN" => 0,
                            _ => return None,
                        };
                        Some(format!("{w} {v}"))
                    })
                    .collect();
                vec![
                    Step::Line(format!(
                        "* STATUS {} ({})",
                        quote(&mailbox),
                        items.join(" ")
                    )),
                    Step::Line(ok),
                ]
            }
            "SELECT" => {
                let mailbox = first_mailbox(args).unwrap_or_default();
                if !self.empty_mailbox_ok(&mailbox) {
                    return lines(&["TAG NO [NONEXISTENT] Mailbox doesn't exist"]);
                }
                let mode = if display == "EXAMINE" {
                    "READ-ONLY"
                } else {
                    "READ-WRITE"
                };
                lines(&[
                    "* FLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft)",
                    "* 0 EXISTS",
                    "* 0 RECENT",
                    "* OK [UIDVALIDITY 1] UIDs valid",
                    "* OK [UIDNEXT 1] next UID",
                    &format!("TAG OK [{mode}] {display} completed"),
                ])
            }
            "CREATE" => {
                let mailbox = first_mailbox(args).unwrap_or_default();
                if self.session.mailboxes.contains(&mailbox) {
                    lines(&["TAG NO [ALREADYEXISTS] Mailbox already exists"])
                } else {
                    vec![Step::Line(ok)]
                }
            }
            "SEARCH" => {
                let up = args.trim().to_ascii_uppercase();
                let mut keys = Vec::new();
                if matches!(up.as_str(), "ALL" | "1:*" | "UID 1:*") {
                    if let Some(j) = self.find(|e| e.fetch.is_some(), false) {
                        let t = self.session.exchanges[j].fetch.as_ref().unwrap();
                        for c in &t.chunks {
                            let k = if display.starts_with("UID") {
                                c.uid
                            } else {
                                Some(c.seq)
                            };
                            if let Some(k) = k {
                                if !keys.contains(&k) {
                                    keys.push(k);
                                }
                            }
                        }
                    }
                }
                let list: String = keys.iter().map(|k| format!(" {k}")).collect();
                vec![Step::Line(format!("* SEARCH{list}")), Step::Line(ok)]
            }
            _ => vec![Step::Line(format!("TAG BAD Unknown command {display}"))],
        }
    }

    fn fetch_steps(&self, t: &FetchTable, uid_mode: bool, args: &str) -> Vec<Step> {
        let (set, items) = split_word(args);
        let key = |c: &Chunk| if uid_mode { c.uid } else { Some(c.seq) };
        let max = t.chunks.iter().filter_map(key).max().unwrap_or(0);
        let chosen = |c: &Chunk| key(c).is_none_or(|k| in_set(set, k, max));
        let up = items.to_ascii_uppercase();
        let words: Vec<&str> = up
            .split(|c: char| c.is_whitespace() || c == '(' || c == ')')
            .filter(|w| !w.is_empty())
            .collect();
        let bodyish = words.iter().any(|w| {
            BODY_WORDS.contains(w)
                || w.starts_with("BODY[")
                || w.starts_with("BODY.PEEK[")
                || w.starts_with("BINARY")
        });
        let mut steps = t.prelude.clone();
        if bodyish {
            let mut stopped = false;
            let damaged = t
                .chunks
                .iter()
                .filter(|c| chosen(c))
                .filter_map(|c| c.uid.filter(|_| uid_mode))
                .find_map(|u| self.shared.damaged(u));
            let refusal = damaged.as_ref().map(|(text, _)| text.clone());
            let others = damaged.is_none_or(|(_, others)| others);
            for c in t.chunks.iter().filter(|c| chosen(c) && others) {
                if c.uid
                    .filter(|_| uid_mode)
                    .and_then(|u| self.shared.damaged(u))
                    .is_some()
                {
                    continue;
                }
                steps.extend(c.steps.iter().cloned());
                stopped |= c
                    .steps
                    .iter()
                    .any(|s| matches!(s, Step::Stall | Step::Close));
            }
            match refusal {
                Some(text) if !stopped => steps.push(Step::Line(format!("TAG NO {text}"))),
                Some(_) => {}
                None if !stopped => steps.extend(t.trailer.iter().cloned()),
                None => {}
            }
        } else {
            let has = |w: &str| words.contains(&w);
            let macro_ = has("ALL") || has("FAST");
            let want_uid = uid_mode || has("UID");
            let want_flags = has("FLAGS") || macro_;
            let want_size = has("RFC822.SIZE") || macro_;
            let want_date = has("INTERNALDATE") || macro_;
            let mut seqs: Vec<u32> = Vec::new();
            for c in &t.chunks {
                if !seqs.contains(&c.seq) {
                    seqs.push(c.seq);
                }
            }
            for seq in seqs {
                let mine: Vec<&Chunk> = t.chunks.iter().filter(|c| c.seq == seq).collect();
                let k = if uid_mode { mine[0].uid } else { Some(seq) };
                if !k.is_some_and(|k| in_set(set, k, max)) {
                    continue;
                }
                let item = |n: &str| {
                    mine.iter()
                        .rev()
                        .find_map(|c| c.items.iter().find(|(m, _)| m == n).map(|(_, v)| v))
                };
                let mut parts = Vec::new();
                if want_uid {
                    if let Some(u) = mine[0].uid {
                        parts.push(format!("UID {u}"));
                    }
                }
                if want_flags {
                    if let Some(v) = item("FLAGS") {
                        parts.push(format!("FLAGS {}", render(v)));
                    }
                }
                if want_size {
                    let size = item("RFC822.SIZE")
                        .map(render)
                        .or_else(|| match item("BODY[]") {
                            Some(Tok::Lit(n)) => Some(n.to_string()),
                            _ => None,
                        });
                    if let Some(s) = size {
                        parts.push(format!("RFC822.SIZE {s}"));
                    }
                }
                if want_date {
                    if let Some(v) = item("INTERNALDATE") {
                        parts.push(format!("INTERNALDATE {}", render(v)));
                    }
                }
                // Gmail mode: the X-GM items asked for, from the chunks.
                for gm in ["X-GM-MSGID", "X-GM-THRID", "X-GM-LABELS"] {
                    if has(gm) {
                        if let Some(v) = item(gm) {
                            parts.push(format!("{gm} {}", render(v)));
                        }
                    }
                }
                steps.push(Step::Line(format!("* {seq} FETCH ({})", parts.join(" "))));
            }
            steps.push(Step::Line("TAG OK FETCH completed".into()));
            return steps;
        }
        if !steps.iter().any(|s| {
            matches!(s, Step::Line(l) if is_tagged(l)) || matches!(s, Step::Stall | Step::Close)
        }) {
            steps.push(Step::Line("TAG OK FETCH completed".into()));
        }
        steps
    }

    fn append(&mut self, tag: &str, line: &str, args: &str, reply: Option<Reply>) -> Flow {
        let Some((n, plus)) = literal_at_end(line) else {
            return self.send(&lines(&["TAG BAD APPEND without a literal"]), tag);
        };
        if let Some(r) = reply {
            let flow = self.fault_reply(&r, tag, "APPEND");
            if plus && matches!(flow, Flow::Continue) {
                if io::copy(&mut (&mut self.reader).take(n as u64), &mut io::sink()).is_err() {
                    return Flow::Closed;
                }
                let _ = self.read_line();
            }
            return flow;
        }
        let head = &args[..args.rfind('{').unwrap_or(args.len())];
        let t = tokens(head);
        let mailbox = t
            .first()
            .and_then(Tok::text)
            .map(norm_mailbox)
            .unwrap_or_default();
        let mut flags = String::new();
        let mut date = None;
        for tok in &t[1.min(t.len())..] {
            match tok {
                Tok::List(v) => flags = v.iter().map(render).collect::<Vec<_>>().join(" "),
                Tok::Str(s) => date = Some(s.clone()),
                _ => {}
            }
        }
        let size_fits = |ex: &Exchange| {
            ex.name == "APPEND" && literal_at_end(&ex.args).is_some_and(|(m, _)| m == n)
        };
        let j = self
            .find(size_fits, true)
            .or_else(|| self.find(|ex| ex.name == "APPEND", true));
        let steps = match j {
            Some(j) => self.take(j).steps.clone(),
            None => lines(&["+ go ahead", "TAG OK APPEND completed"]),
        };
        let cont = steps
            .iter()
            .position(|s| matches!(s, Step::Line(l) if l.starts_with('+')));
        let (before, cont_line, after) = match cont {
            Some(p) => (
                steps[..p].to_vec(),
                steps[p].clone(),
                steps[p + 1..].to_vec(),
            ),
            None => {
                let refused = steps.iter().any(|s| {
                    matches!(s, Step::Line(l) if is_tagged(l)
                        && matches!(split_word(&l[3..]).0.to_ascii_uppercase().as_str(), "NO" | "BAD"))
                });
                if refused {
                    let flow = self.send(&steps, tag);
                    if plus && matches!(flow, Flow::Continue) {
                        let _ = self.read_literal(n);
                        let _ = self.read_line();
                    }
                    return flow;
                }
                (Vec::new(), Step::Line("+ go ahead".into()), steps)
            }
        };
        if let Flow::Closed = self.send(&before, tag) {
            return Flow::Closed;
        }
        if !plus {
            if let Flow::Closed = self.send(&[cont_line], tag) {
                return Flow::Closed;
            }
        }
        let Some(bytes) = self.read_literal(n) else {
            return Flow::Closed;
        };
        let _ = self.read_line();
        let mut reply = None;
        for s in &after {
            match s {
                Step::Line(l) if is_tagged(l) => {
                    reply = Some(l.get(4..).unwrap_or("").to_string());
                    break;
                }
                Step::Stall | Step::Close => break,
                _ => {}
            }
        }
        self.shared.appends.lock().unwrap().push(Appended {
            mailbox,
            flags,
            date,
            bytes,
            reply,
        });
        self.send(&after, tag)
    }

    fn fault_reply(&mut self, r: &Reply, tag: &str, display: &str) -> Flow {
        let _ = display;
        match r {
            Reply::No(t) => self.send(&[Step::Line(format!("TAG NO {t}"))], tag),
            Reply::Bad(t) => self.send(&[Step::Line(format!("TAG BAD {t}"))], tag),
            Reply::Bye(t) => {
                let _ = self.send(&[Step::Line(format!("* BYE {t}"))], tag);
                close(&mut self.out)
            }
        }
    }

    fn huge(&mut self, bytes: usize, then: Cut) -> Flow {
        let chunk = vec![b'x'; 64 * 1024];
        if self.out.write_all(b"* ").is_err() {
            return Flow::Closed;
        }
        let mut left = bytes;
        while left > 0 && !self.shared.stop.load(Ordering::SeqCst) {
            let k = left.min(chunk.len());
            if self.out.write_all(&chunk[..k]).is_err() {
                return Flow::Closed;
            }
            left -= k;
        }
        after_cut(&mut self.out, then, self.shared)
    }

    /// Reads a command line and, for commands other than APPEND, its literals.
    fn read_command(&mut self) -> Option<String> {
        let first = self.read_line()?;
        let mut text = String::from_utf8_lossy(&first).into_owned();
        let (_, rest) = split_word(&text);
        if split_command(rest).0 == "APPEND" {
            return Some(text);
        }
        while let Some((n, plus)) = literal_at_end(&text) {
            if !plus {
                let _ = self.out.write_all(b"+ go ahead\r\n");
                let _ = self.out.flush();
            }
            let lit = self.read_literal(n)?;
            text.truncate(text.rfind('{').unwrap_or(text.len()));
            text.push_str(&quote(&String::from_utf8_lossy(&lit)));
            let more = self.read_line()?;
            text.push_str(&String::from_utf8_lossy(&more));
        }
        Some(text)
    }

    fn run(&mut self) {
        let gn = self.shared.count("GREETING");
        if let Some((bytes, then)) = self.shared.huge_fault("GREETING", gn) {
            self.huge(bytes, then);
            return;
        }
        let session: &'a Session = self.session;
        if let Flow::Closed = self.send(&session.opening, "*") {
            return;
        }
        loop {
            let Some(text) = self.read_command() else {
                return;
            };
            if self.shared.stop.load(Ordering::SeqCst) {
                return;
            }
            let (tag, cmd) = split_word(&text);
            let (tag, cmd) = (tag.to_string(), cmd.to_string());
            self.shared
                .commands
                .lock()
                .unwrap()
                .push((self.n, Instant::now(), cmd.clone()));
            let (name, display, args) = split_command(&cmd);
            if name.is_empty() {
                if let Flow::Closed = self.send(&lines(&["TAG BAD Missing command"]), &tag) {
                    return;
                }
                continue;
            }
            let nth = self.shared.count(&name);
            if let Some((bytes, then)) = self.shared.huge_fault(&name, nth) {
                self.huge(bytes, then);
                return;
            }
            let fault = self.shared.reply_fault(&name, nth);
            let flow = if name == "APPEND" {
                self.append(&tag, &cmd, args, fault)
            } else if let Some(r) = fault {
                self.fault_reply(&r, &tag, &display)
            } else {
                self.answer(&tag, &name, &display, args)
            };
            if let Flow::Closed = flow {
                return;
            }
            if name == "LOGOUT" {
                close(&mut self.out);
                return;
            }
        }
    }

    fn answer(&mut self, tag: &str, name: &str, display: &str, args: &str) -> Flow {
        if display == "AUTHENTICATE" && tokens(args).len() < 2 {
            if let Flow::Closed = self.send(&lines(&["+ "]), tag) {
                return Flow::Closed;
            }
            match self.read_line() {
                None => return Flow::Closed,
                Some(l) if l == b"*" => {
                    return self.send(&lines(&["TAG BAD AUTHENTICATE cancelled"]), tag)
                }
                Some(_) => {}
            }
        }
        if name == "IDLE" {
            if let Flow::Closed = self.send(&lines(&["+ idling"]), tag) {
                return Flow::Closed;
            }
            loop {
                match self.read_line() {
                    None => return Flow::Closed,
                    Some(l) if l.eq_ignore_ascii_case(b"DONE") => break,
                    Some(_) => {}
                }
            }
            return self.send(&lines(&["TAG OK IDLE terminated"]), tag);
        }
        let steps = match self.find(Self::fits(name, args), false) {
            Some(j) => {
                let ex = self.take(j);
                match &ex.fetch {
                    Some(t) if !t.chunks.is_empty() => {
                        self.fetch_steps(t, display.starts_with("UID "), args)
                    }
                    _ => ex.steps.clone(),
                }
            }
            None => self.builtin(name, display, args),
        };
        let mut flow = self.send(&steps, tag);
        if name == "LOGOUT" && matches!(flow, Flow::Continue) {
            let sent_bye = steps
                .iter()
                .any(|s| matches!(s, Step::Line(l) if l.starts_with("* BYE")));
            if !sent_bye {
                flow = self.send(
                    &lines(&["* BYE Logging out", "TAG OK LOGOUT completed"]),
                    tag,
                );
            }
        }
        flow
    }
}

fn search_fits(scripted: &str, sent: &str) -> bool {
    if let (Some(a), Some(b)) = (scripted.find('<'), scripted.find('>')) {
        if a < b {
            let id = &scripted[a..=b];
            if id.contains('@') {
                return sent.contains(id);
            }
        }
    }
    if scripted.trim_start().starts_with('<') {
        return true;
    }
    let norm = |s: &str| {
        s.replace('"', "")
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" ")
            .to_ascii_uppercase()
    };
    norm(scripted) == norm(sent)
}

fn serve(stream: TcpStream, n: usize, session: &Session, shared: &Shared) {
    let _ = stream.set_nodelay(true);
    let Ok(read_half) = stream.try_clone() else {
        return;
    };
    let mut conn = Conn {
        n,
        session,
        shared,
        reader: BufReader::new(read_half),
        out: BufWriter::new(stream),
        cursor: 0,
    };
    conn.run();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_implicit_fetch_tables() {
        let s = parse(
            "SESSION 1\nS: * OK [CAPABILITY IMAP4rev1 UIDPLUS] hi\nC: TAG LOGIN <u> <p>   (or X)\n\
             S: TAG OK LOGIN completed\nC: TAG SELECT \"Sent Items\"\nS: * 2 EXISTS\n\
             S: TAG OK SELECT completed\nPAUSE 5\n\
             S: * 1 FETCH (UID 41 FLAGS (\\Seen) BODY[] {3}\nS+ a\nS: )\n\
             S: * 2 FETCH (FLAGS (\\Seen \\Flagged))\n\
             S: * 2 FETCH (UID 42 RFC822.SIZE 9 BODY[HEADER.FIELDS (X)] {2}\nS+ b\nS: )\n\
             S: TAG OK FETCH completed\n",
            Path::new("/d"),
        );
        let s = &s[0];
        assert_eq!(s.capability, "IMAP4rev1 UIDPLUS");
        let names: Vec<&str> = s.exchanges.iter().map(|e| e.name.as_str()).collect();
        assert_eq!(names, ["LOGIN", "SELECT", "FETCH"]);
        assert_eq!(s.mailboxes, ["Sent Items"]);
        let t = s.exchanges[2].fetch.as_ref().unwrap();
        assert_eq!(t.chunks.len(), 3);
        assert!(matches!(t.chunks[0].steps[0], Step::Pause(5)));
        assert_eq!(t.chunks[1].uid, Some(42));
        assert_eq!(t.chunks[2].items[2].0, "BODY[HEADER.FIELDS (X)]");
        assert_eq!(t.chunks[2].items[2].1, Tok::Lit(2));
        assert!(in_set("44:*", 45, 45) && !in_set("44:*", 43, 45));
        assert!(in_set("41,43", 43, 45) && !in_set("41,43", 42, 45));
        assert!(wildcard(b"Invoices/%", b"Invoices/2023"));
        assert!(!wildcard(b"%", b"Invoices/2023"));
    }
}
