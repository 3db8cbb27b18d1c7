//! Self-tests of the scripted fake IMAP server (tests/support/fake_imap.rs), driven by a raw
//! TcpStream client so they do not depend on mailkeep's IMAP code.

mod support;

use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use support::fake_imap::{Appended, Cut, FakeImap, Reply};

fn case_dir(prefix: &str) -> PathBuf {
    let root = PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../shared/cases"));
    std::fs::read_dir(&root)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.file_name().unwrap().to_str().unwrap().starts_with(prefix))
        .unwrap_or_else(|| panic!("no case {prefix}"))
}

fn file(case: &str, name: &str) -> Vec<u8> {
    std::fs::read(case_dir(case).join(name)).unwrap()
}

fn transcript(case: &str, name: &str) -> PathBuf {
    case_dir(case).join(name)
}

/// One tagged response: its logical lines (literals shown as `{N}`) and the literals.
#[derive(Debug, Default)]
struct Resp {
    lines: Vec<String>,
    literals: Vec<Vec<u8>>,
}

impl Resp {
    fn tagged(&self) -> &str {
        self.lines.last().map(String::as_str).unwrap_or("")
    }
}

struct Client {
    r: BufReader<TcpStream>,
    w: TcpStream,
    n: u32,
    greeting: String,
}

fn literal_at_end(l: &str) -> Option<usize> {
    let l = l.strip_suffix('}')?;
    l[l.rfind('{')? + 1..].parse().ok()
}

impl Client {
    fn connect(fake: &FakeImap) -> Client {
        Self::connect_timeout(fake, Duration::from_secs(10))
    }

    fn connect_timeout(fake: &FakeImap, t: Duration) -> Client {
        let s = TcpStream::connect(fake.addr()).unwrap();
        s.set_read_timeout(Some(t)).unwrap();
        let mut c = Client {
            r: BufReader::new(s.try_clone().unwrap()),
            w: s,
            n: 0,
            greeting: String::new(),
        };
        c.greeting = c.line().unwrap();
        c
    }

    fn line(&mut self) -> io::Result<String> {
        let mut buf = Vec::new();
        if self.r.read_until(b'\n', &mut buf)? == 0 {
            return Err(io::ErrorKind::UnexpectedEof.into());
        }
        assert!(buf.ends_with(b"\r\n"), "line without CRLF: {buf:?}");
        buf.truncate(buf.len() - 2);
        Ok(String::from_utf8_lossy(&buf).into_owned())
    }

    fn bytes(&mut self, n: usize) -> io::Result<Vec<u8>> {
        let mut v = vec![0; n];
        self.r.read_exact(&mut v)?;
        Ok(v)
    }

    fn raw(&mut self, b: &[u8]) {
        self.w.write_all(b).unwrap();
    }

    fn send(&mut self, cmd: &str) -> String {
        self.n += 1;
        let tag = format!("a{}", self.n);
        self.raw(format!("{tag} {cmd}\r\n").as_bytes());
        tag
    }

    /// Reads up to and including the line tagged `tag`.
    fn response(&mut self, tag: &str) -> io::Result<Resp> {
        let mut resp = Resp::default();
        loop {
            let mut logical = self.line()?;
            while let Some(n) = literal_at_end(&logical) {
                resp.literals.push(self.bytes(n)?);
                logical.push_str(&self.line()?);
            }
            let done = logical.starts_with(&format!("{tag} "));
            resp.lines.push(logical);
            if done {
                return Ok(resp);
            }
        }
    }

    fn cmd(&mut self, cmd: &str) -> Resp {
        let tag = self.send(cmd);
        self.response(&tag).unwrap()
    }

    fn login(&mut self) {
        let r = self.cmd("LOGIN alice secret");
        assert!(r.tagged().contains(" OK "), "{:?}", r.lines);
    }

    /// True if the peer closed the connection (EOF), false if the read timed out.
    fn closed(&mut self) -> bool {
        let mut b = [0u8; 1];
        match self.r.read(&mut b) {
            Ok(0) => true,
            Ok(_) => panic!("unexpected data after the end"),
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                ) =>
            {
                false
            }
            Err(_) => true,
        }
    }
}

const C13: &str = "13-";
const C16: &str = "16-";
const C17: &str = "17-";
const C19: &str = "19-";
const C23: &str = "23-";
const C25: &str = "25-";
const C26: &str = "26-";
const C27: &str = "27-";

#[test]
fn case17_literals_equal_the_eml_files() {
    let fake = FakeImap::from_transcript(&transcript(C17, "server-fetch.txt"));
    let mut c = Client::connect(&fake);
    assert!(c.greeting.starts_with("* OK [CAPABILITY IMAP4rev1]"));
    c.login();
    let r = c.cmd("SELECT INBOX");
    assert!(r.lines.iter().any(|l| l == "* 3 EXISTS"));
    let r = c.cmd("UID FETCH 1:* (UID FLAGS INTERNALDATE RFC822.SIZE BODY.PEEK[])");
    assert_eq!(r.tagged(), "a3 OK FETCH completed");
    assert_eq!(
        r.literals,
        [
            file(C17, "a.eml"),
            file(C17, "b.envelope-subject"),
            file(C17, "b.eml"),
            file(C17, "c.eml")
        ]
    );
    assert!(r.lines[0]
        .ends_with(" FLAGS (\\Seen) INTERNALDATE \"03-Mar-2025 08:00:03 +0000\" RFC822.SIZE 241)"));
    assert_eq!(r.lines[2], "* 3 FETCH (FLAGS (\\Seen \\Flagged))");

    // A listing without body items is synthesised, unsolicited FLAGS included.
    let r = c.cmd("UID FETCH 201:203 (UID FLAGS)");
    assert_eq!(
        r.lines,
        [
            "* 1 FETCH (UID 201 FLAGS (\\Seen))",
            "* 2 FETCH (UID 202 FLAGS ())",
            "* 3 FETCH (UID 203 FLAGS (\\Seen \\Flagged))",
            "a4 OK FETCH completed"
        ]
    );
    assert!(r.literals.is_empty());
    assert_eq!(
        fake.commands(),
        [
            "LOGIN alice secret",
            "SELECT INBOX",
            "UID FETCH 1:* (UID FLAGS INTERNALDATE RFC822.SIZE BODY.PEEK[])",
            "UID FETCH 201:203 (UID FLAGS)"
        ]
    );
}

#[test]
fn case26_session1_stalls_after_the_first_half_of_m4() {
    let fake = FakeImap::from_transcript(&transcript(C26, "server-sessions.txt"));
    let mut c = Client::connect_timeout(&fake, Duration::from_millis(700));
    c.login();
    c.cmd("SELECT \"Sent Items\"");
    c.send("UID FETCH 1:* (UID FLAGS BODY.PEEK[])");
    for m in ["m1.eml", "m2.eml", "m3.eml"] {
        let l = c.line().unwrap();
        let n = literal_at_end(&l).unwrap();
        assert_eq!(c.bytes(n).unwrap(), file(C26, m));
        assert_eq!(c.line().unwrap(), ")");
    }
    let l = c.line().unwrap();
    assert!(l.starts_with("* 4 FETCH (UID 44 ") && l.ends_with("{4926}"));
    let mut got = Vec::new();
    let err = c.r.read_to_end(&mut got).unwrap_err();
    assert!(matches!(
        err.kind(),
        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
    ));
    assert_eq!(got, file(C26, "m4.first-half"));
    // Still open: a later read times out too.
    assert!(!c.closed());
    assert_eq!(fake.connections(), 1);
}

#[test]
fn case26_subset_fetches_send_only_the_requested_uids() {
    let fake = FakeImap::builder(&transcript(C26, "server-sessions.txt"))
        .sessions(&["2"])
        .start();
    let mut c = Client::connect(&fake);
    c.login();
    c.cmd("EXAMINE \"Sent Items\"");
    let r = c.cmd("UID FETCH 44:45 (UID BODY.PEEK[])");
    assert_eq!(r.literals, [file(C26, "m4.eml"), file(C26, "m5.eml")]);
    assert_eq!(r.lines.len(), 3);
    assert!(r.lines[0].starts_with("* 4 FETCH (UID 44 "));
    assert!(r.lines[1].starts_with("* 5 FETCH (UID 45 "));
    assert_eq!(r.tagged(), "a3 OK FETCH completed");

    let r = c.cmd("UID FETCH 41,43 (BODY.PEEK[])");
    assert_eq!(r.literals, [file(C26, "m1.eml"), file(C26, "m3.eml")]);
    let r = c.cmd("UID FETCH 44:* BODY.PEEK[]");
    assert_eq!(r.literals, [file(C26, "m4.eml"), file(C26, "m5.eml")]);
    let r = c.cmd("FETCH 2 (BODY[])");
    assert_eq!(r.literals, [file(C26, "m2.eml")]);
    // 46:* means 45:46 (RFC 3501): the last message.
    let r = c.cmd("UID FETCH 46:* (UID)");
    assert_eq!(r.lines, ["* 5 FETCH (UID 45)", "a7 OK FETCH completed"]);

    let r = c.cmd("UID FETCH 1:* (UID FLAGS RFC822.SIZE INTERNALDATE)");
    assert_eq!(r.lines.len(), 6);
    assert_eq!(
        r.lines[0],
        "* 1 FETCH (UID 41 FLAGS (\\Seen) RFC822.SIZE 4926 INTERNALDATE \"01-Feb-2024 11:00:01 +0000\")"
    );
    assert!(r.literals.is_empty());
    let r = c.cmd("FETCH 1:2 FAST");
    assert_eq!(
        r.lines[1],
        "* 2 FETCH (FLAGS (\\Seen) RFC822.SIZE 4926 INTERNALDATE \"02-Feb-2024 11:00:02 +0000\")"
    );
}

#[test]
fn append_sync_and_nonsync_literals_are_recorded_byte_exact() {
    let fake = FakeImap::from_transcript(&transcript(C16, "server-A-no-uidplus.txt"));
    let (r1, r2) = (file(C16, "r1.eml"), file(C16, "r2.eml"));
    let mut c = Client::connect(&fake);
    c.login();
    let tag = c.send("APPEND \"Restored\" (\\Seen) \"18-Jan-2021 01:30:22 +0000\" {272}");
    assert_eq!(c.line().unwrap(), "+ ready");
    c.raw(&r1);
    c.raw(b"\r\n");
    assert_eq!(c.line().unwrap(), format!("{tag} OK APPEND completed"));

    let tag = c.send(&format!("APPEND Restored () {{{}+}}", r2.len()).replace("\r\n", ""));
    c.raw(&r2);
    c.raw(b"\r\n");
    assert_eq!(c.line().unwrap(), format!("{tag} OK APPEND completed"));
    // A third APPEND has no block: built-in answer.
    let tag = c.send("APPEND INBOX {3}");
    assert_eq!(c.line().unwrap(), "+ go ahead");
    c.raw(b"a\r\n\r\n");
    assert_eq!(c.line().unwrap(), format!("{tag} OK APPEND completed"));

    assert_eq!(
        fake.appends(),
        [
            Appended {
                mailbox: "Restored".into(),
                flags: "\\Seen".into(),
                date: Some("18-Jan-2021 01:30:22 +0000".into()),
                bytes: r1,
                reply: Some("OK APPEND completed".into()),
            },
            Appended {
                mailbox: "Restored".into(),
                flags: String::new(),
                date: None,
                bytes: r2,
                reply: Some("OK APPEND completed".into()),
            },
            Appended {
                mailbox: "INBOX".into(),
                flags: String::new(),
                date: None,
                bytes: b"a\r\n".to_vec(),
                reply: Some("OK APPEND completed".into()),
            },
        ]
    );
    assert_eq!(
        fake.commands()[1],
        "APPEND \"Restored\" (\\Seen) \"18-Jan-2021 01:30:22 +0000\" {272}"
    );

    // Session 2: SEARCH blocks are matched by Message-ID, in any order.
    let mut c = Client::connect(&fake);
    c.login();
    c.cmd("SELECT Restored");
    let r = c.cmd("UID SEARCH HEADER Message-ID <restore-2@example.com>");
    assert_eq!(r.lines[0], "* SEARCH 2");
    let r = c.cmd("UID SEARCH HEADER MESSAGE-ID \"<restore-1@example.com>\"");
    assert_eq!(r.lines[0], "* SEARCH 1");
    let r = c.cmd("UID SEARCH HEADER Message-ID \"<other@example.com>\"");
    assert_eq!(r.lines, ["* SEARCH", "a5 OK SEARCH completed"]);
    let r = c.cmd("UID FETCH 1:* (UID RFC822.SIZE BODY.PEEK[HEADER.FIELDS (MESSAGE-ID)])");
    assert_eq!(
        r.literals,
        [file(C16, "r1.msgid-header"), file(C16, "r2.msgid-header")]
    );
    assert_eq!(fake.connections(), 2);
}

#[test]
fn logout_says_bye_and_closes() {
    let fake = FakeImap::from_transcript(&transcript(C19, "source-server.txt"));
    let mut c = Client::connect_timeout(&fake, Duration::from_secs(5));
    c.login();
    let r = c.cmd("LOGOUT");
    assert_eq!(r.lines, ["* BYE Logging out", "a2 OK LOGOUT completed"]);
    assert!(c.closed());
}

#[test]
fn builtin_answers() {
    // Scenario B of case 13: no greeting, LIST lines, two SELECT blocks.
    let fake = FakeImap::from_transcript(&transcript(C13, "server-same-uidvalidity.txt"));
    let mut c = Client::connect(&fake);
    assert_eq!(c.greeting, "* OK [CAPABILITY IMAP4rev1] fake IMAP ready");
    let r = c.cmd("CAPABILITY");
    assert_eq!(
        r.lines,
        ["* CAPABILITY IMAP4rev1", "a1 OK CAPABILITY completed"]
    );
    // AUTHENTICATE without an initial response gets a continuation.
    let tag = c.send("AUTHENTICATE PLAIN");
    assert_eq!(c.line().unwrap(), "+ ");
    c.raw(b"AGFsaWNlAHNlY3JldA==\r\n");
    assert_eq!(
        c.response(&tag).unwrap().tagged(),
        "a2 OK AUTHENTICATE completed"
    );
    let r = c.cmd("ID (\"name\" \"mailkeep\")");
    assert_eq!(r.lines[0], "* ID NIL");
    let r = c.cmd("ENABLE UTF8=ACCEPT");
    assert_eq!(r.lines[0], "* ENABLED");
    let r = c.cmd("NAMESPACE");
    assert_eq!(r.lines[0], "* NAMESPACE ((\"\" \"/\")) NIL NIL");
    let r = c.cmd("LIST \"\" \"*\"");
    assert_eq!(
        r.lines,
        [
            "* LIST (\\HasNoChildren) \"/\" \"Invoices/2023\"",
            "* LIST (\\HasNoChildren) \"/\" \"Invoices/2024\"",
            "a6 OK LIST completed"
        ]
    );
    let r = c.cmd("LIST \"\" \"%\"");
    assert_eq!(r.lines, ["a7 OK LIST completed"]);
    let r = c.cmd("LIST \"\" \"\"");
    assert_eq!(r.lines[0], "* LIST (\\Noselect) \"/\" \"\"");
    let r = c.cmd("SELECT \"Invoices/2024\"");
    assert_eq!(r.lines[0], "* 2 EXISTS");
    assert_eq!(r.tagged(), "a9 OK SELECT completed");
    let r = c.cmd("STATUS \"Invoices/2023\" (MESSAGES UIDNEXT UIDVALIDITY)");
    assert_eq!(
        r.lines[0],
        "* STATUS \"Invoices/2023\" (MESSAGES 2 UIDNEXT 3 UIDVALIDITY 1700000000)"
    );
    let r = c.cmd("SELECT Nowhere");
    assert_eq!(r.lines, ["a11 NO [NONEXISTENT] Mailbox doesn't exist"]);
    let r = c.cmd("CREATE \"Invoices/2023\"");
    assert!(r.tagged().starts_with("a12 NO [ALREADYEXISTS]"));
    for cmd in ["NOOP", "CHECK", "UNSELECT", "CLOSE"] {
        assert!(c.cmd(cmd).tagged().contains(" OK "), "{cmd}");
    }
    assert_eq!(c.cmd("XYZZY").tagged(), "a17 BAD Unknown command XYZZY");
    let tag = c.send("IDLE");
    assert_eq!(c.line().unwrap(), "+ idling");
    c.raw(b"DONE\r\n");
    assert_eq!(c.line().unwrap(), format!("{tag} OK IDLE terminated"));

    // LIST derived from SELECT names; STATUS from the SELECT block; a literal argument.
    let fake = FakeImap::from_transcript(&transcript(C26, "server-sessions.txt"));
    let mut c = Client::connect(&fake);
    let r = c.cmd("CAPABILITY");
    assert_eq!(r.lines[0], "* CAPABILITY IMAP4rev1 UIDPLUS");
    let r = c.cmd("LIST \"\" *");
    assert_eq!(r.lines[0], "* LIST () \"/\" \"Sent Items\"");
    let tag = c.send("STATUS {10}");
    assert_eq!(c.line().unwrap(), "+ go ahead");
    c.raw(b"Sent Items (UIDNEXT MESSAGES UIDVALIDITY)\r\n");
    let r = c.response(&tag).unwrap();
    assert_eq!(
        r.lines[0],
        "* STATUS \"Sent Items\" (UIDNEXT 46 MESSAGES 5 UIDVALIDITY 1706780000)"
    );
    assert_eq!(
        fake.commands()[2],
        "STATUS \"Sent Items\" (UIDNEXT MESSAGES UIDVALIDITY)"
    );
}

#[test]
fn sessions_follow_connections_and_implicit_fetch_blocks() {
    let fake = FakeImap::from_transcript(&transcript(C13, "server-runs.txt"));
    let validity = |c: &mut Client| {
        c.login();
        let r = c.cmd("EXAMINE Archive");
        r.lines
            .iter()
            .find(|l| l.contains("UIDVALIDITY"))
            .unwrap()
            .clone()
    };
    let mut c1 = Client::connect(&fake);
    assert!(validity(&mut c1).contains("3857529045"));
    let r = c1.cmd("UID FETCH 102 (BODY.PEEK[])");
    assert_eq!(r.literals, [file(C13, "m2.eml")]);
    let mut c2 = Client::connect(&fake);
    assert!(validity(&mut c2).contains("3857530000"));
    let r = c2.cmd("UID FETCH 4 (BODY.PEEK[])");
    assert_eq!(r.literals, [file(C13, "m4.eml")]);
    for _ in 0..2 {
        let mut c = Client::connect(&fake);
        assert!(validity(&mut c).contains("3857530000"));
    }
    assert_eq!(fake.connections(), 4);
    assert_eq!(fake.commands_in(2)[1], "EXAMINE Archive");
}

#[test]
fn case25_toobig_refused_at_once_and_appends_matched_by_size() {
    let path = transcript(C25, "destination-server.txt");
    let small = file(C25, "small.eml");
    let fake = FakeImap::from_transcript(&path);
    let mut c = Client::connect(&fake);
    c.login();
    c.send("APPEND Scans (\\Seen) {43047373}");
    assert_eq!(c.line().unwrap(), "a2 NO [TOOBIG] Message too large");
    c.send("APPEND Scans (\\Seen) {246}");
    assert_eq!(c.line().unwrap(), "+ go ahead");
    c.raw(&small);
    c.raw(b"\r\n");
    assert_eq!(c.line().unwrap(), "a3 OK [APPENDUID 77 1] APPEND completed");
    assert_eq!(fake.appends().len(), 1);
    drop(fake);

    // A client that skips the large message still gets the small one's block.
    let fake = FakeImap::from_transcript(&path);
    let mut c = Client::connect(&fake);
    c.login();
    c.send("APPEND Scans {246+}");
    c.raw(&small);
    c.raw(b"\r\n");
    assert_eq!(c.line().unwrap(), "a2 OK [APPENDUID 77 1] APPEND completed");
    assert_eq!(fake.appends()[0].bytes, small);
    // Destination scripts without SELECT blocks get an empty mailbox.
    let r = c.cmd("SELECT Scans");
    assert!(r.lines.contains(&"* 0 EXISTS".to_string()));
    assert_eq!(r.tagged(), "a3 OK [READ-WRITE] SELECT completed");
}

#[test]
fn case23_throttle_and_bye_mid_append() {
    let fake = FakeImap::from_transcript(&transcript(C23, "destination-o365.txt"));
    let m: Vec<Vec<u8>> = (1..=4).map(|i| file(C23, &format!("m{i}.eml"))).collect();
    let mut c = Client::connect_timeout(&fake, Duration::from_secs(5));
    c.login();
    let append = |c: &mut Client, msg: &[u8]| -> io::Result<String> {
        c.send("APPEND \"Migrated\" (\\Seen) \"01-Jan-2024 00:00:00 +0000\" {267}");
        assert_eq!(c.line()?, "+ Ready for literal data");
        c.raw(msg);
        c.raw(b"\r\n");
        c.line()
    };
    assert_eq!(
        append(&mut c, &m[0]).unwrap(),
        "a2 OK [APPENDUID 9 1] APPEND completed."
    );
    assert_eq!(
        append(&mut c, &m[1]).unwrap(),
        "a3 NO Request is throttled. Suggested Backoff Time: 4000 milliseconds"
    );
    assert_eq!(
        append(&mut c, &m[1]).unwrap(),
        "a4 OK [APPENDUID 9 2] APPEND completed."
    );
    assert_eq!(
        append(&mut c, &m[2]).unwrap(),
        "* BYE Server is closing the connection"
    );
    assert!(c.closed());
    let appends = fake.appends();
    assert_eq!(appends.len(), 4);
    assert_eq!(appends[2].bytes, m[1]);
    assert_eq!(appends[3].reply, None);

    let mut c = Client::connect(&fake);
    c.login();
    c.cmd("SELECT Migrated");
    let r = c.cmd("UID SEARCH HEADER Message-ID \"<batch-4@example.com>\"");
    assert_eq!(r.lines[0], "* SEARCH");
    let r = c.cmd("UID SEARCH HEADER Message-ID \"<batch-3@example.com>\"");
    assert_eq!(r.lines[0], "* SEARCH 3");
    assert_eq!(
        append(&mut c, &m[3]).unwrap(),
        "a5 OK [APPENDUID 9 4] APPEND completed."
    );
    assert_eq!(fake.appends().len(), 5);
    let times: Vec<Instant> = fake
        .timed_commands()
        .into_iter()
        .filter(|(_, c)| c.starts_with("APPEND"))
        .map(|(t, _)| t)
        .collect();
    assert_eq!(times.len(), 5);
}

#[test]
fn case27_pause_before_each_message_but_not_for_listings() {
    let fake = FakeImap::from_transcript(&transcript(C27, "server-slow.txt"));
    let mut c = Client::connect(&fake);
    c.login();
    c.cmd("SELECT INBOX");
    let t = Instant::now();
    let r = c.cmd("UID FETCH 1:* (UID FLAGS RFC822.SIZE)");
    assert_eq!(r.lines.len(), 6);
    assert!(t.elapsed() < Duration::from_millis(1500));
    let t = Instant::now();
    let r = c.cmd("UID FETCH 5 (BODY.PEEK[])");
    assert_eq!(r.literals, [file(C27, "m5.eml")]);
    let e = t.elapsed();
    assert!(
        e >= Duration::from_millis(2000) && e < Duration::from_millis(3900),
        "{e:?}"
    );
}

// ---------------------------------------------------------------- fault knobs

fn c26_session2() -> support::fake_imap::FakeImapBuilder {
    FakeImap::builder(&transcript(C26, "server-sessions.txt")).sessions(&["2"])
}

#[test]
fn fault_cut_file_then_close_or_stall() {
    for then in [Cut::Close, Cut::Stall] {
        let fake = c26_session2().cut_file("m2.eml", 100, then).start();
        let mut c = Client::connect_timeout(&fake, Duration::from_millis(700));
        c.login();
        c.send("UID FETCH 1:* (BODY.PEEK[])");
        let l = c.line().unwrap();
        assert_eq!(
            c.bytes(literal_at_end(&l).unwrap()).unwrap(),
            file(C26, "m1.eml")
        );
        assert_eq!(c.line().unwrap(), ")");
        assert!(c.line().unwrap().ends_with("{4926}"));
        assert_eq!(c.bytes(100).unwrap(), file(C26, "m2.eml")[..100]);
        assert_eq!(c.closed(), then == Cut::Close, "{then:?}");
        // Only the first send is cut.
        let mut c = Client::connect(&fake);
        let r = c.cmd("UID FETCH 42 (BODY.PEEK[])");
        assert_eq!(r.literals, [file(C26, "m2.eml")]);
    }
}

#[test]
fn fault_replies_no_bad_bye_to_the_nth_command() {
    let fake = c26_session2()
        .reply("UID FETCH", 2, Reply::No("[UNAVAILABLE] try later".into()))
        .reply("EXAMINE", 1, Reply::Bad("no".into()))
        .reply("LOGIN", 2, Reply::Bye("go away".into()))
        .reply("APPEND", 1, Reply::No("[OVERQUOTA] full".into()))
        .start();
    let mut c = Client::connect(&fake);
    c.login();
    assert_eq!(c.cmd("SELECT \"Sent Items\"").lines, ["a2 BAD no"]);
    assert_eq!(
        c.cmd("SELECT \"Sent Items\"").tagged(),
        "a3 OK SELECT completed"
    );
    assert_eq!(c.cmd("UID FETCH 41 (BODY.PEEK[])").literals.len(), 1);
    assert_eq!(
        c.cmd("FETCH 1 (BODY.PEEK[])").lines,
        ["a5 NO [UNAVAILABLE] try later"]
    );
    assert_eq!(c.cmd("UID FETCH 41 (BODY.PEEK[])").literals.len(), 1);
    // A refused APPEND gets no continuation and records nothing.
    c.send("APPEND Drafts {5}");
    assert_eq!(c.line().unwrap(), "a7 NO [OVERQUOTA] full");
    assert!(fake.appends().is_empty());

    let mut c = Client::connect(&fake);
    c.send("LOGIN alice secret");
    assert_eq!(c.line().unwrap(), "* BYE go away");
    assert!(c.closed());
}

#[test]
fn fault_lying_literal_size() {
    let path = transcript(C19, "source-server.txt");
    let m4 = file(C19, "m4.eml");
    // Announce 10 more octets, send the file and CRLF, then stall.
    let fake = FakeImap::builder(&path)
        .lie_literal("m4.eml", 10, Some(Cut::Stall))
        .start();
    let mut c = Client::connect_timeout(&fake, Duration::from_millis(700));
    c.login();
    c.send("UID FETCH 1 (BODY.PEEK[])");
    let l = c.line().unwrap();
    assert!(l.ends_with("BODY[] {208}"), "{l}");
    let mut got = Vec::new();
    assert!(c.r.read_to_end(&mut got).is_err());
    assert_eq!(got, [m4.as_slice(), b"\r\n"].concat());
    assert!(!c.closed());

    // Announce 8 fewer octets and go on as written.
    let fake = FakeImap::builder(&path)
        .lie_literal("m4.eml", -8, None)
        .start();
    let mut c = Client::connect(&fake);
    c.login();
    c.send("UID FETCH 1 (BODY.PEEK[])");
    assert!(c.line().unwrap().ends_with("BODY[] {190}"));
    assert_eq!(c.bytes(190).unwrap(), m4[..190]);
    // The literal's last 8 octets (a CRLF-ended line) now read as protocol text.
    assert_eq!(c.line().unwrap().as_bytes(), &m4[190..196]);
    assert_eq!(c.line().unwrap(), ")");
}

#[test]
fn fault_huge_line_without_crlf() {
    let fake = FakeImap::builder(&transcript(C17, "server-fetch.txt"))
        .huge_line("GREETING", 1, 2, Cut::Close)
        .huge_line("FETCH", 1, 1, Cut::Stall)
        .start();
    let mut s = TcpStream::connect(fake.addr()).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut got = Vec::new();
    s.read_to_end(&mut got).unwrap();
    assert_eq!(got.len(), 2 + 2 * 1024 * 1024);
    assert!(got.starts_with(b"* x") && !got.contains(&b'\n'));

    let mut c = Client::connect_timeout(&fake, Duration::from_millis(700));
    c.login();
    c.send("UID FETCH 1:* (FLAGS)");
    let mut got = Vec::new();
    assert!(c.r.read_to_end(&mut got).is_err());
    assert_eq!(got.len(), 2 + 1024 * 1024);
    assert!(!got.contains(&b'\n'));
}

#[test]
fn with_faults_and_drop_during_stall() {
    let fake = FakeImap::with_faults(
        &transcript(C26, "server-sessions.txt"),
        vec![support::fake_imap::Fault::Reply {
            command: "LOGIN".into(),
            nth: 1,
            reply: Reply::No("[AUTHENTICATIONFAILED] bad".into()),
        }],
    );
    let mut c = Client::connect(&fake);
    assert_eq!(
        c.cmd("LOGIN a b").lines,
        ["a1 NO [AUTHENTICATIONFAILED] bad"]
    );
    c.login();
    c.send("UID FETCH 44 (BODY.PEEK[])");
    assert!(c.line().unwrap().ends_with("{4926}"));
    let t = Instant::now();
    drop(fake); // stalled connection: drop must not hang
    assert!(t.elapsed() < Duration::from_secs(3));
}
