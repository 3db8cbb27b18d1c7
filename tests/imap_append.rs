//! Restore's IMAP layer (`mailkeep::protocol::imap`): NAMESPACE and the delimiter, CREATE of nested
//! non-ASCII mailboxes, APPEND with flags, keywords and INTERNALDATE (LITERAL+ and
//! synchronising literals, pipelined), APPENDUID, and Message-ID search, against a real
//! Dovecot; and shared/cases 16 (no or wrong APPENDUID), 19 (exact date-time strings),
//! 23 (throttling, BYE mid-APPEND) and 25 (size refusal, sent once) on the scripted server.

mod support;

use std::path::{Path, PathBuf};

use mailkeep::core::endpoint::{Protocol, ServerSpec, TlsMode};
use mailkeep::core::message::{crlf_to_lf, lf_to_crlf, Flag, Flags};
use mailkeep::protocol::imap::{
    mailbox_wire_name, Appended, ImapClient, ImapError, ImapOptions, MailboxInfo, Namespace,
};
use mailkeep::protocol::net::TlsOptions;
use support::dovecot::{Dovecot, User};
use support::fake_imap::FakeImap;

fn spec(port: u16, tls: TlsMode, user: &str) -> ServerSpec {
    ServerSpec {
        protocol: Protocol::Imap,
        tls,
        user: user.to_string(),
        host: "127.0.0.1".to_string(),
        port,
    }
}

#[track_caller]
fn login(d: &Dovecot, u: &User) -> ImapClient {
    let opts = ImapOptions {
        tls: TlsOptions {
            ca_file: Some(d.ca_pem.clone()),
            ..TlsOptions::default()
        },
        ..ImapOptions::default()
    };
    let mut c =
        ImapClient::connect(&spec(d.imaps_port, TlsMode::Implicit, &u.name), &opts).unwrap();
    c.login(&u.name, &u.password).unwrap();
    c
}

#[track_caller]
fn login_fake(server: &FakeImap) -> ImapClient {
    let opts = ImapOptions {
        allow_plaintext: true,
        ..ImapOptions::default()
    };
    let mut c =
        ImapClient::connect(&spec(server.port(), TlsMode::StartTls, "alice"), &opts).unwrap();
    c.login("alice", "secret").unwrap();
    c
}

fn mb(wire: &str) -> MailboxInfo {
    MailboxInfo::from_list(wire, Some('.'), Vec::new())
}

fn flags(list: &[Flag]) -> Flags {
    list.iter().cloned().collect()
}

fn seen() -> Flags {
    flags(&[Flag::Seen])
}

/// Seconds since the epoch of an RFC 3339 time.
fn secs(rfc3339: &str) -> i64 {
    chrono::DateTime::parse_from_rfc3339(rfc3339)
        .unwrap()
        .timestamp()
}

fn case_dir(name: &str) -> PathBuf {
    support::corpus_dir().join("../cases").join(name)
}

fn read(dir: &Path, file: &str) -> Vec<u8> {
    std::fs::read(dir.join(file)).unwrap()
}

fn message(id: &str, body: &str) -> Vec<u8> {
    lf_to_crlf(
        format!(
            "From: Alice <alice@example.com>\nTo: Bob <bob@example.org>\nSubject: {body}\n\
             Date: Sun, 09 Mar 2025 17:04:50 +0900\nMessage-ID: {id}\n\n{body}\n"
        )
        .as_bytes(),
    )
}

#[test]
fn append_keeps_flags_keywords_date_and_bytes() {
    let d = Dovecot::start();
    let u = d.add_user("alice", "secret");
    let mut c = login(&d, &u);
    assert!(c.capabilities().has("UIDPLUS") && c.capabilities().has("LITERAL+"));
    let raw = message("<append-1@example.com>", "Flags and date");
    let f = flags(&[Flag::Seen, Flag::Flagged, Flag::Keyword("$Work".into())]);
    let date = secs("2025-03-09T08:05:07Z");
    let a = c.append("INBOX", &raw, &f, Some(date)).unwrap();
    assert!(a.dropped_keywords.is_empty());

    let status = c.status(&mb("INBOX")).unwrap().expect("a usable STATUS");
    assert_eq!(a.uidvalidity, Some(status.uidvalidity), "{a:?}");
    let uid = a
        .uid_if_valid(status.uidvalidity)
        .expect("APPENDUID trusted");

    c.examine(&mb("INBOX")).unwrap();
    let listed = c.list_messages(None).unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].uid, uid);
    assert_eq!(listed[0].flags, f);
    assert_eq!(listed[0].internal_date, Some(date));
    assert_eq!(listed[0].size, raw.len() as u64);
    let mut bodies = Vec::new();
    c.fetch_bodies::<ImapError>(&[uid], &mut |m| {
        bodies.push(m.body.to_vec());
        Ok(())
    })
    .unwrap();
    assert_eq!(bodies, std::slice::from_ref(&raw));
    // Dovecot keeps the file with LF line ends.
    assert_eq!(u.messages("INBOX"), [crlf_to_lf(&raw)]);

    // Without a date the server's "now" is used (only on purpose), and no flags is fine.
    let before = chrono::Utc::now().timestamp() - 5;
    let b = c
        .append(
            "INBOX",
            &message("<append-2@example.com>", "now"),
            &Flags::new(),
            None,
        )
        .unwrap();
    assert_eq!(b.uid, Some(uid + 1));
    c.examine(&mb("INBOX")).unwrap();
    let listed = c.list_messages(None).unwrap();
    assert!(listed[1].flags.is_empty());
    assert!(listed[1].internal_date >= Some(before));

    // A keyword that is not an atom is left out and reported; the message still goes in.
    let odd = flags(&[Flag::Seen, Flag::Keyword("two words".into())]);
    let r = c
        .append(
            "INBOX",
            &message("<append-3@example.com>", "odd"),
            &odd,
            Some(date),
        )
        .unwrap();
    assert_eq!(r.dropped_keywords, ["two words"]);
    c.logout().unwrap();
}

#[test]
fn nested_non_ascii_mailboxes_are_created_and_appended_to() {
    let d = Dovecot::start();
    let u = d.add_user("alice", "secret");
    let mut c = login(&d, &u);
    let ns = c.personal_namespace().unwrap();
    assert_eq!(
        ns,
        Namespace {
            prefix: String::new(),
            delimiter: Some('.')
        }
    );
    assert_eq!(c.delimiter().unwrap(), Some('.'));

    let date = secs("2014-12-29T23:59:59Z");
    for levels in [
        &["日本語", "受信箱"][..],
        &["Entwürfe"][..],
        &["Projects", "2024", "Q1"][..],
        &["example.org invoices"][..],
    ] {
        let wire = mailbox_wire_name(levels, &ns);
        assert!(c.create_mailbox(&wire).unwrap(), "{wire} created");
        assert!(
            !c.create_mailbox(&wire).unwrap(),
            "{wire} exists the second time"
        );
        let raw = message(&format!("<{}@example.com>", levels.len()), levels[0]);
        c.append(&wire, &raw, &seen(), Some(date)).unwrap();
    }
    assert!(!c.create_mailbox("INBOX").unwrap());
    assert!(!c.create_mailbox("inbox").unwrap());

    let names: Vec<String> = c
        .list_mailboxes()
        .unwrap()
        .into_iter()
        .map(|m| m.name.as_str().to_string())
        .collect();
    for want in [
        "日本語",
        "日本語/受信箱",
        "Entwürfe",
        "Projects",
        "Projects/2024",
        "Projects/2024/Q1",
        "example_org invoices",
    ] {
        assert!(names.iter().any(|n| n == want), "{want} in {names:?}");
    }
    assert!(!names.iter().any(|n| n == "example"), "{names:?}");
    assert_eq!(u.messages("日本語/受信箱").len(), 1);
    assert_eq!(u.messages("Entwürfe").len(), 1);
    assert_eq!(u.messages("Projects/2024/Q1").len(), 1);
    assert_eq!(u.messages("日本語").len(), 0);

    // A mailbox that does not exist: the server's NO, with its code.
    let e = c
        .append("Nowhere", &message("<x@y>", "x"), &seen(), Some(date))
        .unwrap_err();
    assert_eq!(e.response_code().as_deref(), Some("TRYCREATE"), "{e}");
    // The session goes on.
    c.examine(&mb("Entw&APw-rfe")).unwrap();
    c.logout().unwrap();
}

#[test]
fn search_by_message_id_finds_uploaded_messages() {
    let d = Dovecot::start();
    let u = d.add_user("alice", "secret");
    let mut c = login(&d, &u);
    let date = secs("2021-01-18T01:30:22Z");
    let ids = [
        "<restore-1@example.com>",
        "<\"john doe\"@example.com>",
        "<\"back\\\\slash\"@example.com>",
        "<restore-2@example.com>",
    ];
    for id in ids {
        c.append("INBOX", &message(id, "search"), &seen(), Some(date))
            .unwrap();
    }
    assert_eq!(c.search_message_id("INBOX", ids[0]).unwrap(), [1]);
    assert_eq!(c.search_message_id("INBOX", ids[1]).unwrap(), [2]);
    assert_eq!(c.search_message_id("INBOX", ids[2]).unwrap(), [3]);
    // Angle brackets added when missing; `restore-1` does not match `restore-10`-like ids.
    assert_eq!(
        c.search_message_id("INBOX", "restore-2@example.com")
            .unwrap(),
        [4]
    );
    assert!(c
        .search_message_id("INBOX", "<unknown@example.com>")
        .unwrap()
        .is_empty());
    // Non-ASCII (RFC 6532): CHARSET UTF-8 and a literal; nothing found, no error.
    assert!(c
        .search_message_id("INBOX", "<grüße@example.com>")
        .unwrap()
        .is_empty());
    // Empty ids are refused: messages without Message-ID are not merged (case 21).
    assert!(c.search_message_id("INBOX", "").is_err());
    assert!(c.search_message_id("INBOX", "<>").is_err());

    // After an APPEND into the examined mailbox the next search sees the new message.
    c.append(
        "INBOX",
        &message("<restore-5@example.com>", "late"),
        &seen(),
        Some(date),
    )
    .unwrap();
    assert_eq!(
        c.search_message_id("INBOX", "<restore-5@example.com>")
            .unwrap(),
        [5]
    );
    // The mailbox stays examined for list_messages (size + INTERNALDATE matching).
    let listed = c.list_messages(None).unwrap();
    assert_eq!(listed.len(), 5);
    assert!(listed.iter().all(|l| l.internal_date == Some(date)));
    c.logout().unwrap();
}

#[test]
fn pipelined_and_large_appends() {
    let d = Dovecot::start();
    let u = d.add_user("alice", "secret");
    let mut c = login(&d, &u);
    let ns = c.personal_namespace().unwrap();
    let wire = mailbox_wire_name(&["Archive"], &ns);
    c.create_mailbox(&wire).unwrap();

    // A 2 MiB message goes as a synchronising literal even with LITERAL+.
    let mut big = message("<big@example.com>", "big");
    for i in 0..50_000 {
        big.extend_from_slice(
            format!("line {i:06} of a long message body, padded......\r\n").as_bytes(),
        );
    }
    assert!(big.len() > mailkeep::protocol::imap::NONSYNC_LITERAL_MAX);
    let date = secs("2017-01-16T10:20:35Z");
    let raws: Vec<Vec<u8>> = (0..100)
        .map(|i| message(&format!("<many-{i}@example.com>"), &format!("many {i}")))
        .chain([big.clone()])
        .chain((100..110).map(|i| message(&format!("<many-{i}@example.com>"), "after")))
        .collect();
    let f = [
        flags(&[Flag::Seen]),
        flags(&[Flag::Answered, Flag::Keyword("$Label1".into())]),
        Flags::new(),
    ];
    let items: Vec<_> = raws
        .iter()
        .enumerate()
        .map(|(i, r)| (r.as_slice(), &f[i % 3], Some((date + i as i64).into())))
        .collect();
    let results = c.append_many(&wire, &items).unwrap();
    assert_eq!(results.len(), items.len());
    let st = c.status(&mb(&wire)).unwrap().expect("a usable STATUS");
    for (i, r) in results.iter().enumerate() {
        let a = r.as_ref().unwrap();
        assert_eq!(a.uid_if_valid(st.uidvalidity), Some(i as u32 + 1), "{i}");
    }
    assert_eq!(st.messages, items.len() as u32);
    c.examine(&mb(&wire)).unwrap();
    let listed = c.list_messages(None).unwrap();
    for (i, l) in listed.iter().enumerate() {
        assert_eq!(l.flags, f[i % 3], "{i}");
        assert_eq!(l.internal_date, Some(date + i as i64), "{i}");
        assert_eq!(l.size, raws[i].len() as u64, "{i}");
    }
    let mut got = Vec::new();
    c.fetch_bodies::<ImapError>(&[101], &mut |m| {
        got.push(m.body.to_vec());
        Ok(())
    })
    .unwrap();
    assert_eq!(got, [big]);
    c.logout().unwrap();
}

// ---------------------------------------------------------------------------------------------
// Scripted servers.
// ---------------------------------------------------------------------------------------------

/// Case 16: the same two APPENDs on servers A (no UIDPLUS), B (UIDPLUS, no APPENDUID) and C
/// (APPENDUID numbers swapped); on the second run the messages are found by Message-ID.
#[test]
fn case_16_appenduid_missing_or_swapped() {
    let case = case_dir("16-append-without-uidplus-appenduid");
    let r = [read(&case, "r1.eml"), read(&case, "r2.eml")];
    let dates = [secs("2021-01-18T01:30:22Z"), secs("2021-01-18T02:30:22Z")];
    for (script, uidvalidity) in [
        ("server-A-no-uidplus.txt", 1_611_000_000),
        ("server-B-uidplus-no-code.txt", 4),
        ("server-C-reversed-appenduid.txt", 1),
    ] {
        let server = FakeImap::from_transcript(&case.join(script));
        // Session 1: two APPENDs, no error whatever the APPENDUID.
        let mut c = login_fake(&server);
        let st = c.status(&mb("Restored")).unwrap().expect("a usable STATUS");
        assert_eq!(st.uidvalidity, uidvalidity, "{script}");
        let got: Vec<Appended> = (0..2)
            .map(|i| {
                c.append("Restored", &r[i], &seen(), Some(dates[i]))
                    .unwrap()
            })
            .collect();
        for a in &got {
            assert_eq!(a.uid_if_valid(st.uidvalidity), None, "{script}: {a:?}");
        }
        if script.starts_with("server-C") {
            // As the server said it, so the engine can see the mismatch.
            assert_eq!(got[0].uidvalidity, Some(7064));
            assert_eq!(got[1].uidvalidity, Some(7065));
        } else {
            assert_eq!(got[0], Appended::default(), "{script}");
        }
        c.logout().unwrap();
        let appends = server.appends();
        assert_eq!(appends.len(), 2, "{script}");
        for (i, a) in appends.iter().enumerate() {
            assert_eq!(a.mailbox, "Restored");
            assert_eq!(a.flags, "\\Seen");
            assert_eq!(a.bytes, r[i], "{script}: literal byte-identical");
        }
        assert_eq!(
            appends[0].date.as_deref(),
            Some("18-Jan-2021 01:30:22 +0000")
        );
        assert_eq!(
            appends[1].date.as_deref(),
            Some("18-Jan-2021 02:30:22 +0000")
        );

        // Session 2: both found, nothing appended.
        let mut c = login_fake(&server);
        assert_eq!(
            c.search_message_id("Restored", "<restore-1@example.com>")
                .unwrap(),
            [1],
            "{script}"
        );
        assert_eq!(
            c.search_message_id("Restored", "<restore-2@example.com>")
                .unwrap(),
            [2]
        );
        c.logout().unwrap();
        assert_eq!(
            server.appends().len(),
            2,
            "{script}: no APPEND in session 2"
        );
        let searches: Vec<String> = server
            .commands_in(2)
            .into_iter()
            .filter(|c| c.contains("SEARCH"))
            .collect();
        assert_eq!(
            searches,
            [
                "UID SEARCH HEADER Message-ID \"<restore-1@example.com>\"",
                "UID SEARCH HEADER Message-ID \"<restore-2@example.com>\"",
            ]
        );
    }
}

/// Case 19: the APPEND date-time strings, two-digit day, in UTC (what the ledger and the mbox
/// `From ` line keep); with LITERAL+ the literal is `{N+}`.
#[test]
fn case_19_internaldate_strings() {
    let case = case_dir("19-internaldate-preserved-on-append");
    let files = ["expected-1.eml", "expected-2.eml", "expected-3.eml"];
    let dates = [
        secs("2025-03-09T08:05:07Z"),
        secs("2014-12-29T23:59:59Z"),
        secs("2028-02-29T12:00:00Z"),
    ];
    for caps in ["IMAP4rev1", "IMAP4rev1 LITERAL+"] {
        let script = format!("S: * OK [CAPABILITY {caps}] ready\n");
        let server = FakeImap::from_str(&script, &case);
        let mut c = login_fake(&server);
        for (f, d) in files.iter().zip(dates) {
            c.append("Restored", &read(&case, f), &seen(), Some(d))
                .unwrap();
        }
        // Scenario B: " 5-Jan-2023 07:03:09 +0100" from the source, the same instant.
        c.append(
            "Restored",
            &read(&case, "m4.eml"),
            &seen(),
            Some(secs("2023-01-05T07:03:09+01:00")),
        )
        .unwrap();
        c.logout().unwrap();
        let appends = server.appends();
        let got: Vec<&str> = appends.iter().map(|a| a.date.as_deref().unwrap()).collect();
        assert_eq!(
            got,
            [
                "09-Mar-2025 08:05:07 +0000",
                "29-Dec-2014 23:59:59 +0000",
                "29-Feb-2028 12:00:00 +0000",
                "05-Jan-2023 06:03:09 +0000",
            ],
            "{caps}"
        );
        for (a, f) in appends.iter().zip(files) {
            assert_eq!(a.bytes, read(&case, f), "{f}");
        }
        let first = server
            .commands()
            .into_iter()
            .find(|c| c.starts_with("APPEND"))
            .unwrap();
        let want = if caps.contains("LITERAL+") {
            "APPEND \"Restored\" (\\Seen) \"09-Mar-2025 08:05:07 +0000\" {198+}"
        } else {
            "APPEND \"Restored\" (\\Seen) \"09-Mar-2025 08:05:07 +0000\" {198}"
        };
        assert_eq!(first, want);
    }
}

/// Case 23: throttling is a `NO` with a suggested wait (not permanent); a BYE before the
/// tagged answer leaves the outcome unknown, and the next session finds the message.
#[test]
fn case_23_throttling_and_bye_mid_append() {
    let case = case_dir("23-office365-throttling-and-disconnect");
    let m: Vec<Vec<u8>> = (1..=4).map(|i| read(&case, &format!("m{i}.eml"))).collect();
    let server = FakeImap::from_transcript(&case.join("destination-o365.txt"));
    let date = Some(secs("2024-05-01T10:00:00Z"));
    let mut c = login_fake(&server);
    assert_eq!(
        c.append("Migrated", &m[0], &seen(), date).unwrap().uid,
        Some(1)
    );
    let e = c.append("Migrated", &m[1], &seen(), date).unwrap_err();
    assert_eq!(
        e.suggested_backoff(),
        Some(std::time::Duration::from_millis(4000))
    );
    assert!(!e.is_permanent_refusal() && !e.is_too_big());
    // (The engine sleeps here; the script does not check it.)
    assert_eq!(
        c.append("Migrated", &m[1], &seen(), date).unwrap().uid,
        Some(2)
    );
    let e = c.append("Migrated", &m[2], &seen(), date).unwrap_err();
    assert!(
        matches!(e, ImapError::Bye(_) | ImapError::Io(_)),
        "outcome unknown: {e:?}"
    );
    assert!(
        c.append("Migrated", &m[3], &seen(), date).is_err(),
        "unusable"
    );
    drop(c);

    let mut c = login_fake(&server);
    assert_eq!(
        c.search_message_id("Migrated", "<batch-3@example.com>")
            .unwrap(),
        [3]
    );
    assert_eq!(
        c.append("Migrated", &m[3], &seen(), date).unwrap().uid,
        Some(4)
    );
    c.logout().unwrap();
    let appends = server.appends();
    assert_eq!(appends.len(), 5, "m1, m2, m2, m3, m4");
    assert_eq!(appends[4].bytes, m[3]);
}

/// Case 25: a message above APPENDLIMIT is refused without sending it; a server that says
/// `NO [TOOBIG]` to the announced literal gets the command once and no octet of the message;
/// the small message goes through on the same connection.
#[test]
fn case_25_too_big_is_reported_once() {
    let case = case_dir("25-very-large-message");
    let small = read(&case, "small.eml");
    let large = vec![b'x'; 43_047_373];
    let script = std::fs::read_to_string(case.join("destination-server.txt")).unwrap();
    let date = Some(secs("2017-01-16T10:20:35Z"));
    for with_limit in [true, false] {
        let script = if with_limit {
            script.clone()
        } else {
            script.replace(" APPENDLIMIT=35651584", "")
        };
        let server = FakeImap::from_str(&script, &case);
        let mut c = login_fake(&server);
        assert_eq!(
            c.append_limit(),
            if with_limit { Some(35_651_584) } else { None }
        );
        let e = c.append("Scans", &large, &seen(), date).unwrap_err();
        assert!(e.is_too_big() && e.is_permanent_refusal(), "{e:?}");
        let text = e.to_string();
        assert!(text.contains("TOOBIG"), "{text}");
        if with_limit {
            assert!(text.contains("35651584"), "names the limit: {text}");
        }
        let a = c.append("Scans", &small, &seen(), date).unwrap();
        assert_eq!((a.uidvalidity, a.uid), (Some(77), Some(1)));
        c.logout().unwrap();
        let big_sent = server
            .commands()
            .iter()
            .filter(|c| c.contains("{43047373"))
            .count();
        assert_eq!(
            big_sent,
            if with_limit { 0 } else { 1 },
            "{:?}",
            server.commands()
        );
        let appends = server.appends();
        assert_eq!(appends.len(), 1);
        assert_eq!(appends[0].bytes, small);
    }
}

/// `append_many` sends `{N+}` literals back to back with LITERAL+, and plain APPENDs one by one
/// without it; answers are matched in order, a refusal stays with its message.
#[test]
fn append_many_pipelines_only_with_literal_plus() {
    let case = case_dir("19-internaldate-preserved-on-append");
    let raws: Vec<Vec<u8>> = (1..=3)
        .map(|i| read(&case, &format!("expected-{i}.eml")))
        .collect();
    let f = seen();
    let items: Vec<_> = raws
        .iter()
        .enumerate()
        .map(|(i, r)| {
            (
                r.as_slice(),
                &f,
                Some((secs("2025-03-09T08:05:07Z") + i as i64).into()),
            )
        })
        .collect();
    for caps in ["IMAP4rev1 UIDPLUS", "IMAP4rev1 UIDPLUS LITERAL+"] {
        let script = format!(
            "S: * OK [CAPABILITY {caps}] ready\n\
             C: TAG APPEND \"Restored\" (\\Seen) \"<date-time>\" {{198}}\n\
             S: + go\n\
             S: TAG OK [APPENDUID 5 1] done\n\
             C: TAG APPEND \"Restored\" (\\Seen) \"<date-time>\" {{186}}\n\
             S: + go\n\
             S: TAG NO [OVERQUOTA] full\n\
             C: TAG APPEND \"Restored\" (\\Seen) \"<date-time>\" {{190}}\n\
             S: + go\n\
             S: TAG OK [APPENDUID 5 2] done\n"
        );
        let server = FakeImap::from_str(&script, &case);
        let mut c = login_fake(&server);
        let results = c.append_many("Restored", &items).unwrap();
        assert_eq!(results[0].as_ref().unwrap().uid_if_valid(5), Some(1));
        let e = results[1].as_ref().unwrap_err();
        assert_eq!(e.response_code().as_deref(), Some("OVERQUOTA"), "{caps}");
        assert_eq!(results[2].as_ref().unwrap().uid_if_valid(5), Some(2));
        c.logout().unwrap();
        let appends: Vec<String> = server
            .commands()
            .into_iter()
            .filter(|c| c.starts_with("APPEND"))
            .collect();
        let plus = caps.contains("LITERAL+");
        assert_eq!(appends.len(), 3);
        assert!(
            appends.iter().all(|a| a.ends_with("+}") == plus),
            "{appends:?}"
        );
        let got: Vec<Vec<u8>> = server.appends().into_iter().map(|a| a.bytes).collect();
        assert_eq!(got, raws);
    }
}
