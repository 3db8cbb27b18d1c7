//! The IMAP server-quirk matrix (issue 15): servers scripted from other mail tools' bug
//! reports (`shared/cases/TRANSCRIPT-FORMAT.md` transcripts played by
//! `tests/support/fake_imap.rs`). Each row backs up a two- or three-mailbox account whose
//! server has one quirk, and asserts the exit code, the exact archive (every message body in
//! it), the report's counts (`listed = stored + already + failed`), the wording of what failed
//! or was worked around, and that a rerun against a healthy server converges: the failed
//! messages archived, nothing duplicated, nothing lost.
//!
//! Rows are grouped by the scope the quirk belongs to (README "Servers and their quirks"):
//! mailbox scope (LIST names, STATUS and EXAMINE answers, CONDSTORE refusals, a mailbox deleted
//! between LIST and EXAMINE) and message scope (untagged EXPUNGE/EXISTS/FETCH during a fetch).

mod support;

use std::collections::BTreeMap;
use std::path::Path;

use support::fake_imap::FakeImap;
use support::mailkeep;
use support::run::Run;

const PW: &str = "MK_QUIRK_PW";

/// One message of a scripted mailbox.
#[derive(Clone)]
struct Msg {
    uid: u32,
    body: String,
}

/// A scripted mailbox: how LIST shows it, how commands name it in the script (quoted as the
/// fake compares it, unquoted), its UIDVALIDITY and messages.
#[derive(Clone)]
struct Mb {
    /// The LIST line's data after `* LIST `.
    list: String,
    /// The name as the script's `C:` lines give it (a quoted string).
    arg: String,
    uidvalidity: u32,
    msgs: Vec<Msg>,
    /// Replaces the STATUS block's answer lines (`S:` lines, tagged line included).
    status: Option<String>,
    /// Replaces the EXAMINE block's answer lines.
    examine: Option<String>,
    /// Blocks put before the FETCH blocks of this mailbox (e.g. a refused listing).
    before_fetch: String,
    /// Lines put into the body FETCH answer before the chunks (untagged EXPUNGE...).
    fetch_extra: String,
    /// UIDs left out of the body FETCH answer (expunged meanwhile).
    not_fetched: Vec<u32>,
}

fn msg(uid: u32, tag: &str) -> Msg {
    Msg {
        uid,
        body: format!(
            "From: a@example.org\r\nTo: b@example.org\r\nSubject: {tag}\r\nMessage-ID: <{tag}@quirks>\r\nDate: Tue, 4 Mar 2014 10:00:00 +0100\r\n\r\nbody of {tag}\r\n"
        ),
    }
}

fn mb(list_name: &str, arg: &str, uidvalidity: u32, msgs: Vec<Msg>) -> Mb {
    Mb {
        list: format!("(\\HasNoChildren) \"/\" {list_name}"),
        arg: arg.into(),
        uidvalidity,
        msgs,
        status: None,
        examine: None,
        before_fetch: String::new(),
        fetch_extra: String::new(),
        not_fetched: Vec::new(),
    }
}

fn inbox() -> Mb {
    mb(
        "INBOX",
        "INBOX",
        1,
        vec![msg(1, "inbox-1"), msg(2, "inbox-2")],
    )
}

/// Writes each message to `<dir>/<uidvalidity>-<uid>.eml` and returns the script.
fn script(dir: &Path, caps: &str, boxes: &[Mb]) -> String {
    let mut s = format!("S: * OK [CAPABILITY IMAP4rev1 {caps}] quirky IMAP ready\n");
    // With CONDSTORE every healthy answer carries HIGHESTMODSEQ 100, so an unchanged mailbox
    // can be skipped on STATUS alone (plan::unchanged).
    let condstore = caps.contains("CONDSTORE");
    let modseq = if condstore { " HIGHESTMODSEQ 100" } else { "" };
    for b in boxes {
        s += &format!("S: * LIST {}\n", b.list);
    }
    s += "C: TAG LOGIN alice secret\nS: TAG OK LOGIN completed\n";
    for b in boxes {
        let uidnext = b.msgs.iter().map(|m| m.uid).max().unwrap_or(0) + 1;
        s += &format!("C: TAG STATUS {} (MESSAGES UIDNEXT UIDVALIDITY)\n", b.arg);
        match &b.status {
            Some(lines) => s += lines,
            None => {
                s += &format!(
                    "S: * STATUS {} (MESSAGES {} UIDNEXT {uidnext} UIDVALIDITY {}{modseq})\nS: TAG OK STATUS completed\n",
                    b.arg,
                    b.msgs.len(),
                    b.uidvalidity
                )
            }
        }
    }
    for b in boxes {
        let uidnext = b.msgs.iter().map(|m| m.uid).max().unwrap_or(0) + 1;
        s += &format!("C: TAG EXAMINE {}\n", b.arg);
        match &b.examine {
            Some(lines) => s += lines,
            None => {
                s += &format!(
                    "S: * {} EXISTS\nS: * OK [UIDVALIDITY {}] UIDs valid\nS: * OK [UIDNEXT {uidnext}] next\n{}S: TAG OK [READ-ONLY] EXAMINE completed\n",
                    b.msgs.len(),
                    b.uidvalidity,
                    if condstore { "S: * OK [HIGHESTMODSEQ 100] modseq\n" } else { "" }
                )
            }
        }
        s += &b.before_fetch;
        let chunks = |skip: &[u32]| -> String {
            b.msgs
                .iter()
                .enumerate()
                .filter(|(_, m)| !skip.contains(&m.uid))
                .map(|(i, m)| {
                    let file = format!("{}-{}.eml", b.uidvalidity, m.uid);
                    std::fs::write(dir.join(&file), &m.body).unwrap();
                    format!(
                        "S: * {} FETCH (UID {} FLAGS (\\Seen) INTERNALDATE \"04-Mar-2014 10:00:00 +0100\" RFC822.SIZE {} BODY[] {{{}}}\nS+ {file}\nS: )\n",
                        i + 1,
                        m.uid,
                        m.body.len(),
                        m.body.len()
                    )
                })
                .collect()
        };
        s += &format!(
            "C: TAG UID FETCH 1:* (UID FLAGS)\n{}S: TAG OK FETCH completed\n",
            chunks(&[])
        );
        s += &format!(
            "C: TAG UID FETCH <uids> (BODY.PEEK[])\n{}{}S: TAG OK FETCH completed\n",
            b.fetch_extra,
            chunks(&b.not_fetched)
        );
    }
    s
}

/// A backup of the scripted account into `archive` (Maildir), one connection.
fn backup(server: &FakeImap, archive: &Path, extra: &[&str]) -> Run {
    let out = mailkeep()
        .args([
            "backup",
            &format!("imap://alice@{}", server.addr()),
            &format!("maildir:{}", archive.display()),
            "--password-env",
            PW,
            "--allow-plaintext",
            "--timeout",
            "10",
            "--json",
            "--jobs",
            "1",
        ])
        .args(extra)
        .env(PW, "secret")
        .output()
        .unwrap();
    Run::from_output(out)
}

/// Every message body in the archive (any folder), LF line ends, with how often it is there.
fn archived(archive: &Path) -> BTreeMap<String, usize> {
    fn walk(d: &Path, out: &mut BTreeMap<String, usize>) {
        let Ok(rd) = std::fs::read_dir(d) else { return };
        for e in rd.flatten() {
            let p = e.path();
            let name = e.file_name().to_string_lossy().into_owned();
            if name == ".mailkeep" || name == "tmp" {
                continue;
            }
            if p.is_dir() {
                walk(&p, out);
            } else if p
                .parent()
                .is_some_and(|q| q.ends_with("cur") || q.ends_with("new"))
            {
                let text = String::from_utf8(std::fs::read(&p).unwrap()).unwrap();
                *out.entry(text).or_default() += 1;
            }
        }
    }
    let mut out = BTreeMap::new();
    walk(archive, &mut out);
    out
}

fn want(boxes: &[Mb], skip: &[&str]) -> BTreeMap<String, usize> {
    let mut out = BTreeMap::new();
    for b in boxes {
        for m in &b.msgs {
            if skip
                .iter()
                .any(|s| m.body.contains(&format!("Subject: {s}\r\n")))
            {
                continue;
            }
            *out.entry(m.body.replace("\r\n", "\n")).or_default() += 1;
        }
    }
    out
}

/// `listed = already + fetched + failed` in the JSON report, and the counts themselves.
fn assert_counts(r: &Run, listed: u64, fetched: u64, already: u64) {
    assert_eq!(
        (r.n("listed"), r.n("fetched"), r.n("already_archived")),
        (listed, fetched, already),
        "{r:#?}"
    );
}

fn failures(r: &Run) -> Vec<String> {
    r.report["failures"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["error"].as_str().unwrap().to_string())
        .collect()
}

fn warnings(r: &Run) -> Vec<String> {
    r.report["warnings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|w| w.as_str().unwrap().to_string())
        .collect()
}

/// Runs one row: the quirky server first, then a healthy one (`healthy`) into the same
/// archive, which must end with every message exactly once. Returns the first run.
fn row(caps: &str, quirky: &[Mb], healthy: &[Mb], code: i32, missing: &[&str]) -> (Run, FakeImap) {
    let dir = tempfile::tempdir().unwrap();
    let archive = dir.path().join("archive");
    let server = FakeImap::from_str(&script(dir.path(), caps, quirky), dir.path());
    let r = backup(&server, &archive, &[]);
    assert_eq!(r.code, code, "{r:#?}");
    assert_eq!(archived(&archive), want(quirky, missing), "{r:#?}");
    let failed: u64 = r.report["failures"].as_array().unwrap().len() as u64;
    let _ = failed;
    // The rerun against a healthy server converges.
    let healthy_server = FakeImap::from_str(&script(dir.path(), "UIDPLUS", healthy), dir.path());
    let again = backup(&healthy_server, &archive, &[]);
    assert_eq!(again.code, 0, "rerun: {again:#?}");
    assert_eq!(archived(&archive), want(healthy, &[]), "rerun: {again:#?}");
    assert_eq!(failures(&again), Vec::<String>::new());
    (r, server)
}

fn sent(uidvalidity: u32) -> Mb {
    mb(
        "\"Sent\"",
        "\"Sent\"",
        uidvalidity,
        vec![msg(1, "sent-1"), msg(5, "sent-5")],
    )
}

/// A mailbox called `name` (printable ASCII) with two messages, listed as a quoted string.
fn named(name: &str, uidvalidity: u32) -> Mb {
    let q = format!("\"{}\"", name.replace('\\', "\\\\").replace('"', "\\\""));
    let tag = format!("m{uidvalidity}");
    mb(
        &q,
        &q,
        uidvalidity,
        vec![msg(3, &format!("{tag}-3")), msg(4, &format!("{tag}-4"))],
    )
}

// ---------------------------------------------------------------------------------------------
// Mailbox scope: names.
// ---------------------------------------------------------------------------------------------

#[test]
fn a_mailbox_name_with_a_double_quote_is_read_and_sent_back_escaped() {
    let boxes = [inbox(), named("Re: \"quoted\" things", 20)];
    let (r, server) = row("", &boxes, &boxes, 0, &[]);
    assert_counts(&r, 4, 4, 0);
    assert!(server
        .commands()
        .iter()
        .any(|c| c.contains("EXAMINE \"Re: \\\"quoted\\\" things\"")));
    assert!(r.report["mailboxes"]
        .as_array()
        .unwrap()
        .iter()
        .any(|m| m["mailbox"] == "Re: \"quoted\" things"));
}

#[test]
fn a_mailbox_name_with_a_backslash_is_read_and_sent_back_escaped() {
    let boxes = [inbox(), named("C:\\Users\\mail", 21)];
    let (r, server) = row("", &boxes, &boxes, 0, &[]);
    assert_counts(&r, 4, 4, 0);
    assert!(server
        .commands()
        .iter()
        .any(|c| c.contains("EXAMINE \"C:\\\\Users\\\\mail\"")));
}

#[test]
fn a_mailbox_name_sent_as_a_literal_is_read() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("name.txt"), "ab\"cd\\e").unwrap();
    let mut lit = named("ab\"cd\\e", 22);
    lit.list = "(\\HasNoChildren) \"/\" {7}\nS+ name.txt\nS: ".into();
    let boxes = [inbox(), lit];
    let archive = dir.path().join("archive");
    let server = FakeImap::from_str(&script(dir.path(), "", &boxes), dir.path());
    let r = backup(&server, &archive, &[]);
    assert_eq!(r.code, 0, "{r:#?}");
    assert_eq!(archived(&archive), want(&boxes, &[]));
    assert_counts(&r, 4, 4, 0);
}

#[test]
fn a_mailbox_name_in_raw_utf8_is_read_and_sent_back_as_a_literal() {
    // RFC 6855 servers (and some that should not) send names in UTF-8, not modified UTF-7.
    let boxes = [inbox(), named("Entwürfe ☃", 23)];
    let (r, server) = row("", &boxes, &boxes, 0, &[]);
    assert_counts(&r, 4, 4, 0);
    assert!(r.report["mailboxes"]
        .as_array()
        .unwrap()
        .iter()
        .any(|m| m["mailbox"] == "Entwürfe ☃"));
    assert!(server
        .commands()
        .iter()
        .any(|c| c.starts_with("EXAMINE") && c.contains("Entwürfe ☃")));
}

#[test]
fn a_mailbox_name_with_wildcards_and_brackets_is_archived() {
    let boxes = [inbox(), named("[Work] 100% *urgent*", 24)];
    let (r, _) = row("", &boxes, &boxes, 0, &[]);
    assert_counts(&r, 4, 4, 0);
}

#[test]
fn a_list_line_that_cannot_be_read_fails_that_mailbox_only() {
    let mut broken = named("Broken", 25);
    broken.list = "(\\HasNoChildren) \"/\" \"Broken".into();
    let quirky = [inbox(), broken, sent(26)];
    let dir = tempfile::tempdir().unwrap();
    let archive = dir.path().join("archive");
    let server = FakeImap::from_str(&script(dir.path(), "", &quirky), dir.path());
    let r = backup(&server, &archive, &[]);
    assert_eq!(r.code, 1, "{r:#?}");
    assert_eq!(archived(&archive), want(&[inbox(), sent(26)], &[]));
    assert_counts(&r, 4, 4, 0);
    let account = format!("alice@{}", server.addr());
    assert_eq!(
        failures(&r),
        [format!("{account}: the server listed a mailbox in a form mailkeep cannot read (`* LIST (\\HasNoChildren) \"/\" \"Broken`): that mailbox is not archived")]
    );
    // Once the server lists it properly, it is archived.
    let healthy = [inbox(), named("Broken", 25), sent(26)];
    let again = FakeImap::from_str(&script(dir.path(), "", &healthy), dir.path());
    let r2 = backup(&again, &archive, &[]);
    assert_eq!(r2.code, 0, "{r2:#?}");
    assert_eq!(archived(&archive), want(&healthy, &[]));
    assert_counts(&r2, 6, 2, 4);
}

// ---------------------------------------------------------------------------------------------
// Mailbox scope: STATUS answers.
// ---------------------------------------------------------------------------------------------

/// A row where the STATUS of `Sent` is answered with `lines`: the mailbox is examined and
/// archived all the same. Then a new message arrives in `Sent` while STATUS still answers the
/// same way: it is fetched (an answer that cannot tell never makes a mailbox "unchanged").
/// Then a healthy server: nothing more to fetch.
fn status_row(caps: &str, lines: &str) -> (Run, FakeImap) {
    let caps = &format!("CONDSTORE {caps}");
    let dir = tempfile::tempdir().unwrap();
    let archive = dir.path().join("archive");
    let mut quirky = sent(30);
    quirky.status = Some(lines.to_string());
    let server = FakeImap::from_str(
        &script(dir.path(), caps, &[inbox(), quirky.clone()]),
        dir.path(),
    );
    let r = backup(&server, &archive, &[]);
    assert_eq!(r.code, 0, "{r:#?}");
    assert_eq!(archived(&archive), want(&[inbox(), sent(30)], &[]));
    assert_counts(&r, 4, 4, 0);
    assert!(failures(&r).is_empty(), "{r:#?}");

    quirky.msgs.push(msg(6, "sent-6"));
    let mut grown = sent(30);
    grown.msgs.push(msg(6, "sent-6"));
    let server2 = FakeImap::from_str(&script(dir.path(), caps, &[inbox(), quirky]), dir.path());
    let r2 = backup(&server2, &archive, &[]);
    assert_eq!(r2.code, 0, "second run: {r2:#?}");
    assert_eq!(
        archived(&archive),
        want(&[inbox(), grown.clone()], &[]),
        "{r2:#?}"
    );
    assert_counts(&r2, 5, 1, 4);
    assert!(server2.commands().iter().any(|c| c == "EXAMINE \"Sent\""));

    let healthy = FakeImap::from_str(
        &script(dir.path(), caps, &[inbox(), grown.clone()]),
        dir.path(),
    );
    let r3 = backup(&healthy, &archive, &[]);
    assert_eq!(r3.code, 0, "rerun: {r3:#?}");
    assert_eq!(archived(&archive), want(&[inbox(), grown], &[]));
    assert_counts(&r3, 5, 0, 5);
    (r, server)
}

#[test]
fn an_empty_status_answer_makes_the_mailbox_examined() {
    status_row("", "S: * STATUS \"Sent\" ()\nS: TAG OK STATUS completed\n");
}

#[test]
fn a_status_answer_without_uidvalidity_makes_the_mailbox_examined() {
    status_row(
        "",
        "S: * STATUS \"Sent\" (MESSAGES 2 UIDNEXT 6)\nS: TAG OK STATUS completed\n",
    );
}

#[test]
fn status_numbers_beyond_32_bits_make_the_mailbox_examined() {
    status_row(
        "",
        "S: * STATUS \"Sent\" (MESSAGES 2 UIDNEXT 4294967297 UIDVALIDITY 4294967298)\nS: TAG OK STATUS completed\n",
    );
}

#[test]
fn a_status_answer_with_a_trailing_space_is_read() {
    // Exchange: `(MESSAGES 2 UIDNEXT 6 UIDVALIDITY 30 )`.
    status_row(
        "",
        "S: * STATUS \"Sent\" (MESSAGES 2 UIDNEXT 6 UIDVALIDITY 30 )\nS: TAG OK STATUS completed\n",
    );
}

#[test]
fn a_status_answer_that_never_comes_makes_the_mailbox_examined() {
    status_row("", "S: TAG OK STATUS completed\n");
}

#[test]
fn a_status_answer_naming_the_mailbox_differently_is_matched_by_its_decoded_name() {
    // The client quotes `Sent`; the server answers with an atom. Both are the same name.
    status_row(
        "",
        "S: * STATUS Sent (MESSAGES 2 UIDNEXT 6 UIDVALIDITY 30)\nS: TAG OK STATUS completed\n",
    );
}

#[test]
fn a_status_answer_for_another_mailbox_is_not_taken_for_this_one() {
    status_row(
        "",
        "S: * STATUS \"Sent Items\" (MESSAGES 2 UIDNEXT 6 UIDVALIDITY 30 HIGHESTMODSEQ 100)\nS: TAG OK STATUS completed\n",
    );
}

#[test]
fn a_refused_status_makes_the_mailbox_examined() {
    status_row(
        "",
        "S: TAG NO [CANNOT] STATUS not supported on this mailbox\n",
    );
}

#[test]
fn a_condstore_server_refusing_highestmodseq_in_status_is_asked_without_it() {
    let (_, server) = status_row(
        "",
        "S: TAG BAD [CANNOT] HIGHESTMODSEQ unknown\nC: TAG STATUS \"Sent\" (MESSAGES UIDNEXT UIDVALIDITY)\nS: * STATUS \"Sent\" (MESSAGES 2 UIDNEXT 6 UIDVALIDITY 30)\nS: TAG OK STATUS completed\n",
    );
    let status: Vec<String> = server
        .commands_in(1)
        .into_iter()
        .filter(|c| c.starts_with("STATUS"))
        .collect();
    assert_eq!(
        status,
        [
            "STATUS \"INBOX\" (MESSAGES UIDNEXT UIDVALIDITY HIGHESTMODSEQ)",
            "STATUS \"Sent\" (MESSAGES UIDNEXT UIDVALIDITY HIGHESTMODSEQ)",
            "STATUS \"Sent\" (MESSAGES UIDNEXT UIDVALIDITY)",
        ]
    );
}

// ---------------------------------------------------------------------------------------------
// Mailbox scope: EXAMINE answers and CONDSTORE.
// ---------------------------------------------------------------------------------------------

#[test]
fn a_condstore_server_refusing_modseq_in_the_listing_is_listed_without_it() {
    let mut quirky = sent(31);
    quirky.before_fetch =
        "C: TAG UID FETCH 1:* (UID FLAGS MODSEQ)\nS: TAG BAD [CANNOT] MODSEQ not available\n"
            .into();
    let (r, server) = row(
        "CONDSTORE",
        &[inbox(), quirky],
        &[inbox(), sent(31)],
        0,
        &[],
    );
    assert_counts(&r, 4, 4, 0);
    let fetches: Vec<String> = server
        .commands_in(1)
        .into_iter()
        .filter(|c| c.starts_with("UID FETCH 1:*"))
        .collect();
    assert_eq!(
        fetches,
        [
            "UID FETCH 1:* (UID FLAGS RFC822.SIZE INTERNALDATE MODSEQ)",
            "UID FETCH 1:* (UID FLAGS RFC822.SIZE INTERNALDATE MODSEQ)",
            "UID FETCH 1:* (UID FLAGS RFC822.SIZE INTERNALDATE)",
        ],
        "INBOX with MODSEQ, Sent refused, Sent again without"
    );
}

#[test]
fn a_nomodseq_mailbox_is_listed_without_modseq() {
    let mut quirky = sent(32);
    quirky.examine = Some(
        "S: * 2 EXISTS\nS: * OK [UIDVALIDITY 32] UIDs valid\nS: * OK [UIDNEXT 6] next\nS: * OK [NOMODSEQ] Sorry, this mailbox format doesn't support modsequences\nS: TAG OK [READ-ONLY] EXAMINE completed\n"
            .into(),
    );
    let (r, server) = row(
        "CONDSTORE",
        &[inbox(), quirky],
        &[inbox(), sent(32)],
        0,
        &[],
    );
    assert_counts(&r, 4, 4, 0);
    let fetches: Vec<String> = server
        .commands_in(1)
        .into_iter()
        .filter(|c| c.starts_with("UID FETCH 1:*"))
        .collect();
    assert_eq!(
        fetches,
        [
            "UID FETCH 1:* (UID FLAGS RFC822.SIZE INTERNALDATE MODSEQ)",
            "UID FETCH 1:* (UID FLAGS RFC822.SIZE INTERNALDATE)",
        ]
    );
}

#[test]
fn a_mailbox_deleted_between_list_and_examine_is_said_not_failed() {
    let mut quirky = sent(33);
    // Gone: a LIST after the refusal no longer shows it.
    quirky.examine = Some(
        "S: TAG NO [NONEXISTENT] Mailbox doesn't exist: Sent\n\
         C: TAG LIST \"\" \"*\"\nS: * LIST (\\HasNoChildren) \"/\" INBOX\nS: TAG OK LIST completed\n"
            .into(),
    );
    let dir = tempfile::tempdir().unwrap();
    let archive = dir.path().join("archive");
    let s = script(dir.path(), "", &[inbox(), quirky]).replacen(
        "C: TAG LOGIN alice secret\nS: TAG OK LOGIN completed\n",
        "C: TAG LOGIN alice secret\nS: TAG OK LOGIN completed\n\
         C: TAG LIST \"\" \"*\"\nS: * LIST (\\HasNoChildren) \"/\" INBOX\nS: * LIST (\\HasNoChildren) \"/\" \"Sent\"\nS: TAG OK LIST completed\n",
        1,
    );
    let server = FakeImap::from_str(&s, dir.path());
    let r = backup(&server, &archive, &[]);
    assert_eq!(r.code, 0, "{r:#?}");
    assert_eq!(archived(&archive), want(&[inbox()], &[]));
    assert_counts(&r, 2, 2, 0);
    let account = format!("alice@{}", server.addr());
    assert_eq!(
        warnings(&r),
        [format!("{account}: mailbox Sent was deleted on the server after it was listed (`NO [NONEXISTENT] Mailbox doesn't exist: Sent` to EXAMINE): nothing to archive")]
    );
}

/// A row where EXAMINE of `Sent` gets `lines`: that mailbox fails (exit 1, named with the
/// server's words), the others are archived, and the rerun archives it.
fn examine_fails(lines: &str, error: &dyn Fn(&str) -> String) {
    let mut quirky = sent(34);
    quirky.examine = Some(lines.into());
    let (r, server) = row(
        "",
        &[inbox(), quirky],
        &[inbox(), sent(34)],
        1,
        &["sent-1", "sent-5"],
    );
    assert_counts(&r, 2, 2, 0);
    let account = format!("alice@{}", server.addr());
    assert_eq!(failures(&r), [error(&account)]);
}

#[test]
fn a_mailbox_refused_by_examine_fails_that_mailbox_only() {
    examine_fails("S: TAG NO [NOPERM] Permission denied\n", &|a| {
        format!("{a}: EXAMINE Sent: refused by the server: `NO [NOPERM] Permission denied` to EXAMINE \"Sent\"")
    });
}

#[test]
fn a_mailbox_whose_store_is_unavailable_fails_that_mailbox_only() {
    examine_fails("S: TAG NO [UNAVAILABLE] Mailbox backend is down\n", &|a| {
        format!("{a}: EXAMINE Sent: refused by the server: `NO [UNAVAILABLE] Mailbox backend is down` to EXAMINE \"Sent\"")
    });
}

#[test]
fn an_examine_without_uidvalidity_fails_that_mailbox_only() {
    examine_fails(
        "S: * 2 EXISTS\nS: TAG OK [READ-ONLY] EXAMINE completed\n",
        &|a| {
            format!("{a}: server protocol error: EXAMINE Sent: the server's answer to `EXAMINE \"Sent\"` cannot be used: the answer has no UIDVALIDITY")
        },
    );
}

#[test]
fn an_examine_with_uidvalidity_beyond_32_bits_fails_that_mailbox_only() {
    examine_fails(
        "S: * 2 EXISTS\nS: * OK [UIDVALIDITY 4294967296] UIDs valid\nS: TAG OK [READ-ONLY] EXAMINE completed\n",
        &|a| format!("{a}: server protocol error: EXAMINE Sent: the server's answer to `EXAMINE \"Sent\"` cannot be used: UIDVALIDITY `4294967296` is not a 32-bit number (RFC 3501 nz-number)"),
    );
}

#[test]
fn a_refused_listing_fails_that_mailbox_only() {
    let mut quirky = sent(35);
    quirky.before_fetch =
        "C: TAG UID FETCH 1:* (UID FLAGS)\nS: TAG NO [SERVERBUG] Internal error occurred. Refer to server log for more information.\n".into();
    let (r, server) = row(
        "",
        &[inbox(), quirky],
        &[inbox(), sent(35)],
        1,
        &["sent-1", "sent-5"],
    );
    let account = format!("alice@{}", server.addr());
    assert_eq!(
        failures(&r),
        [format!("{account}: mailbox Sent: UID FETCH (listing): refused by the server: `NO [SERVERBUG] Internal error occurred. Refer to server log for more information.` to UID FETCH 1:* (UID FLAGS RFC822.SIZE INTERNALDATE)")]
    );
}

#[test]
fn a_mailbox_refused_with_serverbug_is_a_refusal_not_a_protocol_error_and_counted_as_a_mailbox() {
    // What a person sees without --json: the refusal in the server's words (never "protocol
    // error"), and a summary whose `failed` is not taken for a message of `on server`.
    let dir = tempfile::tempdir().unwrap();
    let mut quirky = sent(36);
    quirky.examine = Some(
        "S: TAG NO [SERVERBUG] Internal error occurred. Refer to server log for more information.\n"
            .into(),
    );
    let server = FakeImap::from_str(&script(dir.path(), "", &[inbox(), quirky]), dir.path());
    let out = mailkeep()
        .args([
            "backup",
            &format!("imap://alice@{}", server.addr()),
            &format!("maildir:{}", dir.path().join("archive").display()),
            "--password-env",
            PW,
            "--allow-plaintext",
            "--jobs",
            "1",
        ])
        .env(PW, "secret")
        .output()
        .unwrap();
    let r = Run::from_output(out);
    assert_eq!(r.code, 1, "{r:#?}");
    let account = format!("alice@{}", server.addr());
    assert_eq!(
        r.stderr,
        format!("mailkeep: Sent: {account}: EXAMINE Sent: refused by the server: `NO [SERVERBUG] Internal error occurred. Refer to server log for more information.` to EXAMINE \"Sent\"\n"),
        "{r:#?}"
    );
    assert!(
        r.stdout.starts_with(&format!(
            "backup {account} -> maildir:{}: 2 on server, 2 fetched (",
            dir.path().join("archive").display()
        )),
        "{r:#?}"
    );
    assert!(
        r.stdout
            .contains(" 0 already archived, 1 mailbox, 1 mailbox failed in "),
        "{r:#?}"
    );
}

#[test]
fn a_refused_body_fetch_names_every_message_it_left_unfetched() {
    // `NO` to the body FETCH of a batch, and again to each of its messages asked for alone:
    // the refusal is about the mailbox. Every message of it not stored is a failure, named,
    // so the counts add up (they used to say `4 on server, 2 fetched, 0 already archived, 1
    // failed`, the other UID in no count), in one stderr line.
    let dir = tempfile::tempdir().unwrap();
    let boxes = [inbox(), sent(38)];
    let healthy = script(dir.path(), "", &boxes);
    let marker = "C: TAG UID FETCH <uids> (BODY.PEEK[])\n";
    let at = healthy.rfind(marker).unwrap();
    let quirky = format!(
        "{}{marker}S: TAG NO [SERVERBUG] Internal error\n",
        &healthy[..at]
    );
    let server = FakeImap::from_str(&quirky, dir.path());
    let archive = dir.path().join("archive");
    let r = backup(&server, &archive, &[]);
    assert_eq!(r.code, 1, "{r:#?}");
    assert_eq!(archived(&archive), want(&boxes, &["sent-1", "sent-5"]));
    assert_counts(&r, 4, 2, 0);
    let account = format!("alice@{}", server.addr());
    let error = format!("{account}: mailbox Sent: refused by the server: `NO [SERVERBUG] Internal error` to UID FETCH 1,5 (UID FLAGS INTERNALDATE RFC822.SIZE BODY.PEEK[])");
    let got: Vec<(String, String)> = r.report["failures"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            (
                f["message"].as_str().unwrap().into(),
                f["error"].as_str().unwrap().into(),
            )
        })
        .collect();
    assert_eq!(
        got,
        [
            ("UID 1".to_string(), error.clone()),
            ("UID 5".to_string(), error.clone())
        ],
        "{r:#?}"
    );
    assert_eq!(r.stderr, format!("mailkeep: Sent UID 1, UID 5: {error}\n"));
    // The rerun against a healthy server fetches both.
    let server = FakeImap::from_str(&healthy, dir.path());
    let again = backup(&server, &archive, &[]);
    assert_eq!(again.code, 0, "{again:#?}");
    assert_counts(&again, 4, 2, 2);
    assert_eq!(archived(&archive), want(&boxes, &[]));
}

/// A Sent mailbox of three messages (UIDs 1, 5, 9) whose UID 5 the server cannot send, then
/// a Drafts mailbox: backed up, then again against a healthy server.
fn damaged_row(text: &str, others: bool) {
    let dir = tempfile::tempdir().unwrap();
    let sent = mb(
        "\"Sent\"",
        "\"Sent\"",
        39,
        vec![msg(1, "sent-1"), msg(5, "sent-5"), msg(9, "sent-9")],
    );
    let drafts = named("Drafts", 40);
    let boxes = [inbox(), sent, drafts];
    let healthy = script(dir.path(), "", &boxes);
    // The fake answers commands in script order: Sent's body FETCH block once more for each
    // message asked for alone.
    let singles: &[&str] = if others {
        &["UID FETCH 5"]
    } else {
        &["UID FETCH 1", "UID FETCH 5", "UID FETCH 9"]
    };
    let marker = "C: TAG UID FETCH <uids> (BODY.PEEK[])\n";
    let start = healthy.match_indices(marker).nth(1).unwrap().0;
    let end = start
        + healthy[start..]
            .find("S: TAG OK FETCH completed\n")
            .unwrap()
        + "S: TAG OK FETCH completed\n".len();
    let quirky = format!(
        "{}{}{}",
        &healthy[..end],
        healthy[start..end].repeat(singles.len()),
        &healthy[end..]
    );
    let server = FakeImap::builder_str(&quirky, dir.path())
        .fault(support::fake_imap::Fault::Damaged {
            uid: 5,
            text: text.into(),
            others,
        })
        .start();
    let archive = dir.path().join("archive");
    let r = backup(&server, &archive, &[]);
    assert_eq!(r.code, 1, "{r:#?}");
    // Only the damaged message is missing: the batch's other messages and the next mailbox
    // are archived.
    assert_eq!(archived(&archive), want(&boxes, &["sent-5"]));
    assert_counts(&r, 7, 6, 0);
    let account = format!("alice@{}", server.addr());
    let error = format!("{account}: mailbox Sent: refused by the server: `NO {text}` to UID FETCH 5 (UID FLAGS INTERNALDATE RFC822.SIZE BODY.PEEK[])");
    let got: Vec<(String, String)> = r.report["failures"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            (
                f["message"].as_str().unwrap().into(),
                f["error"].as_str().unwrap().into(),
            )
        })
        .collect();
    assert_eq!(got, [("UID 5".to_string(), error.clone())], "{r:#?}");
    assert_eq!(r.stderr, format!("mailkeep: Sent UID 5: {error}\n"));
    // Asked for: the batch, then each message it did not store alone.
    let fetches: Vec<String> = server
        .commands()
        .into_iter()
        .filter(|c| c.contains("BODY.PEEK"))
        .map(|c| c.split(" (").next().unwrap().to_string())
        .collect();
    let mut want_fetches = vec!["UID FETCH 1:2", "UID FETCH 1,5,9"];
    want_fetches.extend_from_slice(singles);
    want_fetches.push("UID FETCH 3:4");
    assert_eq!(fetches, want_fetches);
    // Once the server can send it, the next run stores it, and only it.
    let server = FakeImap::from_str(&healthy, dir.path());
    let again = backup(&server, &archive, &[]);
    assert_eq!(again.code, 0, "{again:#?}");
    assert_counts(&again, 7, 1, 6);
    assert_eq!(archived(&archive), want(&boxes, &[]));
}

#[test]
fn a_message_the_server_cannot_send_fails_alone_when_the_whole_batch_is_refused() {
    // Dovecot and Cyrus refuse the whole `UID FETCH` when one mail file is broken: the batch's
    // messages are asked for one at a time, so the damaged one fails alone (it used to take
    // its batch and the rest of the mailbox with it, every night).
    damaged_row(
        "[SERVERBUG] Internal error occurred. Refer to server log for more information.",
        false,
    );
}

#[test]
fn a_message_the_server_cannot_send_fails_alone_when_the_others_came_first() {
    // Gmail sends what it can, then `NO Some messages could not be FETCHed (Failure)`.
    damaged_row("Some messages could not be FETCHed (Failure)", true);
}

#[test]
fn an_exclude_that_matches_no_mailbox_is_a_warning_and_a_folder_an_error() {
    // A typo in --exclude would back up the mailbox meant to be skipped: said. A typo in one
    // of several --folder patterns would leave out the mailbox meant, every night: an error
    // (exit 2), before anything is written.
    let dir = tempfile::tempdir().unwrap();
    let boxes = [inbox(), sent(37)];
    let server = FakeImap::from_str(&script(dir.path(), "", &boxes), dir.path());
    let archive = dir.path().join("archive");
    let account = format!("alice@{}", server.addr());
    let r = backup(
        &server,
        &archive,
        &[
            "--folder",
            "INBOX",
            "--folder",
            "Sentt",
            "--exclude",
            "Trash",
        ],
    );
    assert_eq!(r.code, 2, "{r:#?}");
    assert_eq!(
        r.stderr,
        format!("mailkeep: {account}: no mailbox matches --folder `Sentt` (`mailkeep list` shows the mailboxes; `Archive` does not include its subfolders, `Archive/**` does)\n")
    );
    assert!(!archive.exists());
    let r = backup(&server, &archive, &["--exclude", "Trash"]);
    assert_eq!(r.code, 0, "{r:#?}");
    assert_counts(&r, 4, 4, 0);
    assert_eq!(
        warnings(&r),
        [format!("{account}: --exclude `Trash` matches no mailbox on the server (`mailkeep list` shows the mailboxes)")]
    );
    // Patterns that match say nothing.
    let r = backup(
        &server,
        &archive,
        &["--exclude", "Sent", "--folder", "inbox"],
    );
    assert_eq!(r.code, 0, "{r:#?}");
    assert_eq!(warnings(&r), Vec::<String>::new());
}

#[test]
fn gmail_folder_names_with_brackets_match_themselves() {
    // `--exclude '[Gmail]/All Mail'` used to exclude nothing (`[Gmail]` read as a character
    // class), doubling the archive in silence; `--folder '[Gmail]/Sent Mail'` exited 2.
    let dir = tempfile::tempdir().unwrap();
    let mut gmail = mb("\"[Gmail]\"", "\"[Gmail]\"", 50, vec![]);
    gmail.list = "(\\HasChildren \\Noselect) \"/\" \"[Gmail]\"".into();
    let all = mb(
        "\"[Gmail]/All Mail\"",
        "\"[Gmail]/All Mail\"",
        51,
        vec![msg(1, "all-1"), msg(2, "all-2"), msg(3, "all-3")],
    );
    let sent_mail = mb(
        "\"[Gmail]/Sent Mail\"",
        "\"[Gmail]/Sent Mail\"",
        52,
        vec![msg(2, "all-2")],
    );
    let boxes = [inbox(), all.clone(), sent_mail.clone()];
    let listed = [inbox(), gmail, all, sent_mail];
    let s = script(dir.path(), "", &boxes);
    // LIST shows `[Gmail]` too (not selectable: never examined).
    let s = s.replacen(
        "S: * LIST (\\HasNoChildren) \"/\" INBOX\n",
        &format!(
            "S: * LIST (\\HasNoChildren) \"/\" INBOX\nS: * LIST {}\n",
            listed[1].list
        ),
        1,
    );
    let server = FakeImap::from_str(&s, dir.path());
    let archive = dir.path().join("excluded");
    let r = backup(&server, &archive, &["--exclude", "[Gmail]/All Mail"]);
    assert_eq!(r.code, 0, "{r:#?}");
    assert_eq!(warnings(&r), Vec::<String>::new());
    let mailboxes: Vec<&str> = r.report["mailboxes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["mailbox"].as_str().unwrap())
        .collect();
    assert_eq!(mailboxes, ["INBOX", "[Gmail]/Sent Mail"]);
    assert_counts(&r, 3, 3, 0);
    let archive = dir.path().join("only-sent");
    let r = backup(&server, &archive, &["--folder", "[Gmail]/Sent Mail"]);
    assert_eq!(r.code, 0, "{r:#?}");
    assert_counts(&r, 1, 1, 0);
    // The explicit glob form keeps character classes.
    let archive = dir.path().join("glob");
    let r = backup(&server, &archive, &["--folder", "glob:\\[Gmail\\]/[AS]*"]);
    assert_eq!(r.code, 0, "{r:#?}");
    assert_counts(&r, 4, 4, 0);
}

// ---------------------------------------------------------------------------------------------
// Message scope: untagged responses during a fetch.
// ---------------------------------------------------------------------------------------------

#[test]
fn a_message_expunged_during_the_fetch_is_said_and_the_others_stored_under_their_uids() {
    let mut quirky = sent(36);
    quirky.fetch_extra = "S: * 1 EXPUNGE\nS: * 1 EXISTS\n".into();
    quirky.not_fetched = vec![1];
    let dir = tempfile::tempdir().unwrap();
    let archive = dir.path().join("archive");
    // The SEARCH that checks the missing UID finds it gone.
    let s = script(dir.path(), "", &[inbox(), quirky])
        + "C: TAG UID SEARCH UID 1\nS: * SEARCH\nS: TAG OK SEARCH completed\n";
    let server = FakeImap::from_str(&s, dir.path());
    let r = backup(&server, &archive, &[]);
    assert_eq!(r.code, 0, "{r:#?}");
    assert_eq!(archived(&archive), want(&[inbox(), sent(36)], &["sent-1"]));
    let account = format!("alice@{}", server.addr());
    assert_eq!(
        warnings(&r),
        [format!(
            "{account}: mailbox Sent: UID 1 expunged on the server during the run: not archived"
        )]
    );
    assert_counts(&r, 3, 3, 0);
}

#[test]
fn a_message_the_server_holds_back_is_a_failure_of_that_uid_and_fetched_next_run() {
    let mut quirky = sent(37);
    quirky.not_fetched = vec![5];
    let dir = tempfile::tempdir().unwrap();
    let archive = dir.path().join("archive");
    let s = script(dir.path(), "", &[inbox(), quirky])
        + "C: TAG UID SEARCH UID 5\nS: * SEARCH 5\nS: TAG OK SEARCH completed\n";
    let server = FakeImap::from_str(&s, dir.path());
    let r = backup(&server, &archive, &[]);
    assert_eq!(r.code, 1, "{r:#?}");
    assert_eq!(archived(&archive), want(&[inbox(), sent(37)], &["sent-5"]));
    let account = format!("alice@{}", server.addr());
    assert_eq!(
        failures(&r),
        [format!("{account}: mailbox Sent UID 5: the server did not return this message, which it still holds; the next run asks again")]
    );
    assert_eq!(r.report["failures"][0]["message"], "UID 5");
    let healthy = FakeImap::from_str(&script(dir.path(), "", &[inbox(), sent(37)]), dir.path());
    let again = backup(&healthy, &archive, &[]);
    assert_eq!(again.code, 0, "{again:#?}");
    assert_eq!(archived(&archive), want(&[inbox(), sent(37)], &[]));
    assert_counts(&again, 4, 1, 3);
}

#[test]
fn unsolicited_flags_and_exists_during_the_fetch_change_nothing() {
    let mut quirky = sent(38);
    quirky.fetch_extra =
        "S: * 3 EXISTS\nS: * 2 FETCH (FLAGS (\\Seen \\Flagged))\nS: * 1 RECENT\n".into();
    let boxes = [inbox(), quirky];
    let (r, _) = row("", &boxes, &[inbox(), sent(38)], 0, &[]);
    assert_counts(&r, 4, 4, 0);
}

// ---------------------------------------------------------------------------------------------
// Session: capabilities and login.
// ---------------------------------------------------------------------------------------------

#[test]
fn capabilities_with_a_trailing_space_are_read() {
    let dir = tempfile::tempdir().unwrap();
    let archive = dir.path().join("archive");
    let boxes = [inbox()];
    let s = script(dir.path(), "", &boxes).replacen(
        "C: TAG LOGIN",
        "C: TAG CAPABILITY\nS: * CAPABILITY IMAP4rev1 UIDPLUS CONDSTORE \nS: TAG OK done\nC: TAG LOGIN",
        1,
    );
    let server = FakeImap::from_str(&s, dir.path());
    let r = backup(&server, &archive, &[]);
    assert_eq!(r.code, 0, "{r:#?}");
    assert_eq!(archived(&archive), want(&boxes, &[]));
}

#[test]
fn a_non_ascii_password_goes_to_a_login_only_server_as_a_literal() {
    let dir = tempfile::tempdir().unwrap();
    let archive = dir.path().join("archive");
    let boxes = [inbox()];
    let server = FakeImap::from_str(&script(dir.path(), "", &boxes), dir.path());
    let out = mailkeep()
        .args([
            "backup",
            &format!("imap://alice@{}", server.addr()),
            &format!("maildir:{}", archive.display()),
            "--password-env",
            PW,
            "--allow-plaintext",
            "--json",
        ])
        .env(PW, "pässwörd \"q\" \\ (*%{")
        .output()
        .unwrap();
    let r = Run::from_output(out);
    assert_eq!(r.code, 0, "{r:#?}");
    let login: Vec<String> = server
        .commands()
        .into_iter()
        .filter(|c| c.starts_with("LOGIN"))
        .collect();
    // The fake turns the literal it read back into a quoted string.
    assert_eq!(login, ["LOGIN \"alice\" \"pässwörd \\\"q\\\" \\\\ (*%{\""]);
    assert!(!r.stderr.contains("pässwörd"));
}

#[test]
fn breaker_a_body_sent_under_one_uid_is_not_stored_under_another_uid_of_its_sequence_number() {
    // The server contradicts itself about sequence number 1: first a body labelled UID 2
    // (without FLAGS or INTERNALDATE), then FLAGS and INTERNALDATE labelled UID 1, with no
    // EXPUNGE between. Merging the two by sequence number stored UID 2's bytes as UID 1: UID 1
    // was then recorded as archived, so no later run fetched its real bytes (exit 0 on a
    // healthy server, message lost from the backup, UID 2's bytes twice).
    let mut quirky = inbox();
    let len = quirky.msgs[1].body.len();
    assert_eq!(len, quirky.msgs[0].body.len());
    quirky.not_fetched = vec![1, 2];
    quirky.fetch_extra = format!(
        "S: * 1 FETCH (UID 2 RFC822.SIZE {len} BODY[] {{{len}}}\nS+ 1-2.eml\nS: )\n\
         S: * 1 FETCH (UID 1 FLAGS (\\Seen) INTERNALDATE \"04-Mar-2014 10:00:00 +0100\")\n\
         S: * 2 FETCH (UID 2 FLAGS (\\Seen) INTERNALDATE \"04-Mar-2014 10:00:00 +0100\")\n"
    );
    let dir = tempfile::tempdir().unwrap();
    let archive = dir.path().join("archive");
    let s = script(dir.path(), "", &[quirky])
        + "C: TAG UID SEARCH UID 1\nS: * SEARCH 1\nS: TAG OK SEARCH completed\n"
        + "C: TAG UID SEARCH UID 2\nS: * SEARCH 2\nS: TAG OK SEARCH completed\n";
    let server = FakeImap::from_str(&s, dir.path());
    let r = backup(&server, &archive, &[]);
    let a = archived(&archive);
    let inbox1 = inbox().msgs[0].body.replace("\r\n", "\n");
    assert!(
        a.contains_key(&inbox1) || r.code != 0,
        "exit 0 without inbox-1 archived: {r:#?}"
    );
    assert!(a.values().all(|n| *n == 1), "a message twice: {a:#?}");
    let healthy = FakeImap::from_str(&script(dir.path(), "", &[inbox()]), dir.path());
    let again = backup(&healthy, &archive, &[]);
    assert_eq!(again.code, 0, "{again:#?}");
    assert_eq!(
        archived(&archive),
        want(&[inbox()], &[]),
        "{r:#?}\n{again:#?}"
    );
}

#[test]
fn breaker_nonexistent_to_examine_of_a_mailbox_the_server_still_lists_is_a_failure() {
    // `NO [NONEXISTENT]` to EXAMINE of a mailbox that LIST and STATUS show (2 messages), and
    // that a LIST after the refusal still shows: not "deleted meanwhile" (a warning, exit 0, and
    // its mail silently left out of every run, as with a server that lists a name in one
    // encoding and opens it only in another) but a failure of that mailbox, exit 1.
    let mut quirky = sent(39);
    quirky.examine = Some("S: TAG NO [NONEXISTENT] Mailbox doesn't exist: Sent\n".into());
    let dir = tempfile::tempdir().unwrap();
    let archive = dir.path().join("archive");
    let server = FakeImap::from_str(&script(dir.path(), "", &[inbox(), quirky]), dir.path());
    let r = backup(&server, &archive, &[]);
    assert_eq!(r.code, 1, "{r:#?}");
    assert_eq!(archived(&archive), want(&[inbox()], &[]));
    let account = format!("alice@{}", server.addr());
    assert_eq!(
        failures(&r),
        [format!("{account}: mailbox Sent: the server answered `NO [NONEXISTENT] Mailbox doesn't exist: Sent` to EXAMINE but still lists it: not archived; the next run tries again")],
        "{r:#?}"
    );
}

#[test]
fn a_killed_runs_placed_file_is_adopted_with_the_flags_the_server_shows_now() {
    // Killed after placing the first batch's files and before recording them; the server's
    // flags changed before the rerun. The rerun adopts the files (no download) and renames
    // them to the flags it recorded: a Maildir reader believes the file name.
    let dir = tempfile::tempdir().unwrap();
    let archive = dir.path().join("archive");
    let boxes = [inbox()];
    let server = FakeImap::from_str(&script(dir.path(), "", &boxes), dir.path());
    let out = mailkeep()
        .args([
            "backup",
            &format!("imap://alice@{}", server.addr()),
            &format!("maildir:{}", archive.display()),
            "--password-env",
            PW,
            "--allow-plaintext",
            "--jobs",
            "1",
        ])
        .env(PW, "secret")
        .env("MAILKEEP_TEST_KILL_AFTER_EVENTS", "0")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(137));
    let flagged =
        script(dir.path(), "", &boxes).replace("FLAGS (\\Seen)", "FLAGS (\\Seen \\Flagged)");
    let server = FakeImap::from_str(&flagged, dir.path());
    let r = backup(&server, &archive, &[]);
    assert_eq!(r.code, 0, "{r:#?}");
    assert_eq!((r.n("recovered"), r.n("fetched")), (2, 0), "{r:#?}");
    let mut infos: Vec<String> = std::fs::read_dir(archive.join("cur"))
        .unwrap()
        .map(|e| {
            let name = e.unwrap().file_name().to_string_lossy().into_owned();
            name.split_once(":2,")
                .map(|x| x.1.to_string())
                .unwrap_or_default()
        })
        .collect();
    infos.sort();
    assert_eq!(infos, ["FS", "FS"]);
}
