//! The IMAP session layer (`mailkeep::protocol::imap`) against a real Dovecot: TLS and STARTTLS, login,
//! LIST with non-ASCII names, EXAMINE, listing with exact flags, keywords, sizes and dates,
//! byte-exact BODY.PEEK[] that leaves `\Seen` alone, CONDSTORE, quota, a 40 MB message; and
//! case 17 (literals in unusual places) on a scripted server.

mod support;

use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::path::PathBuf;

use mailkeep::core::endpoint::{Protocol, ServerSpec, TlsMode};
use mailkeep::core::message::{Flag, Flags};
use mailkeep::protocol::imap::{
    ImapAuth, ImapClient, ImapError, ImapOptions, MailboxInfo, SpecialUse,
};
use mailkeep::protocol::net::TlsOptions;
use sha2::{Digest, Sha256};
use support::dovecot::{wire_form, Dovecot, Options, User};

fn spec(port: u16, tls: TlsMode, user: &str) -> ServerSpec {
    ServerSpec {
        protocol: Protocol::Imap,
        tls,
        user: user.to_string(),
        host: "127.0.0.1".to_string(),
        port,
    }
}

fn opts(ca: Option<PathBuf>) -> ImapOptions {
    ImapOptions {
        tls: TlsOptions {
            ca_file: ca,
            ..TlsOptions::default()
        },
        ..ImapOptions::default()
    }
}

#[track_caller]
fn login(d: &Dovecot, u: &User) -> ImapClient {
    let mut c = ImapClient::connect(
        &spec(d.imaps_port, TlsMode::Implicit, &u.name),
        &opts(Some(d.ca_pem.clone())),
    )
    .unwrap();
    c.login(&u.name, &u.password).unwrap();
    c
}

fn find<'a>(boxes: &'a [MailboxInfo], name: &str) -> &'a MailboxInfo {
    boxes
        .iter()
        .find(|m| m.name.as_str() == name)
        .unwrap_or_else(|| panic!("no mailbox {name} in {boxes:#?}"))
}

fn flags(list: &[Flag]) -> Flags {
    list.iter().cloned().collect()
}

#[test]
fn imaps_and_starttls_login_and_wrong_password() {
    let d = Dovecot::start();
    let u = d.add_user("alice", "secret");
    // imaps://
    let c = login(&d, &u);
    assert!(c.is_tls());
    assert!(c.capabilities().has("IMAP4rev1"));
    c.logout().unwrap();
    // imap:// + STARTTLS, LOGIN and AUTHENTICATE PLAIN.
    for auth in [ImapAuth::Auto, ImapAuth::Login, ImapAuth::Plain] {
        let mut o = opts(Some(d.ca_pem.clone()));
        o.auth = auth;
        let mut c =
            ImapClient::connect(&spec(d.imap_port, TlsMode::StartTls, "alice"), &o).unwrap();
        assert!(c.is_tls(), "{auth:?}");
        assert!(
            !c.capabilities().has("STARTTLS"),
            "capabilities re-read over TLS"
        );
        c.login("alice", "secret").unwrap();
        c.logout().unwrap();
    }
    // Wrong password: Auth, and the secret is not in the message or Debug.
    for auth in [ImapAuth::Login, ImapAuth::Plain] {
        let mut o = opts(Some(d.ca_pem.clone()));
        o.auth = auth;
        let mut c =
            ImapClient::connect(&spec(d.imaps_port, TlsMode::Implicit, "alice"), &o).unwrap();
        let e = c.login("alice", "wrong-pass-XYZ").unwrap_err();
        assert!(matches!(e, ImapError::Auth(_)), "{auth:?}: {e:?}");
        let text = format!("{e} {e:?} {c:?}");
        assert!(!text.contains("wrong-pass-XYZ"), "{text}");
        assert!(e.to_string().starts_with("login refused: "), "{e}");
    }
    // An untrusted certificate is a Net error.
    let e = ImapClient::connect(&spec(d.imaps_port, TlsMode::Implicit, "alice"), &opts(None))
        .unwrap_err();
    assert!(matches!(e, ImapError::Net(_)), "{e:?}");
}

#[test]
fn server_without_starttls_is_refused_unless_allowed() {
    let d = Dovecot::start_without_starttls();
    let u = d.add_user("bob", "pw");
    let s = spec(d.imap_port, TlsMode::StartTls, "bob");
    let e = ImapClient::connect(&s, &opts(None)).unwrap_err();
    assert!(matches!(e, ImapError::NoTls(_)), "{e:?}");
    assert!(e.to_string().contains("STARTTLS"), "{e}");
    let mut o = opts(None);
    o.allow_plaintext = true;
    let mut c = ImapClient::connect(&s, &o).unwrap();
    assert!(!c.is_tls());
    c.login(&u.name, &u.password).unwrap();
    let boxes = c.list_mailboxes().unwrap();
    assert!(boxes.iter().any(|m| m.name.is_inbox()));
    c.logout().unwrap();
}

/// Writes a `dovecot-keywords` file (Dovecot's Maildir keyword letters: `a` is index 0).
fn keywords_file(u: &User, mailbox: &str, words: &[&str]) {
    let dir = u.ensure_mailbox(mailbox);
    let body: String = words
        .iter()
        .enumerate()
        .map(|(i, w)| format!("{i} {w}\n"))
        .collect();
    let p = dir.join("dovecot-keywords");
    std::fs::write(&p, body).unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o666)).unwrap();
}

#[test]
fn list_examine_listing_and_fetch_are_exact_and_read_only() {
    let d = Dovecot::start_with(Options {
        extra_config:
            "namespace inbox {\n  inbox = yes\n  mailbox Sent {\n    special_use = \\Sent\n  }\n}\n"
                .into(),
        ..Default::default()
    });
    let u = d.add_user("carol", "pw");
    let m1: &[u8] = b"From: a@example.org\nSubject: one\n\nbody one\n";
    let m2: &[u8] = b"From: b@example.org\r\nSubject: two\r\n\r\nbody\x00two\r\nno final newline";
    let m3: &[u8] = b"Subject: three\n\n\xe9\xff 8-bit\n";
    keywords_file(&u, "INBOX", &["$Work"]);
    u.seed_message("INBOX", m1, "", Some(1_700_000_000));
    u.seed_message("INBOX", m2, "FSa", Some(946_684_799));
    u.seed_message("INBOX", m3, "RDT", Some(1_000_000_001));
    u.seed_message("Sent", b"Subject: sent\n\nx\n", "S", Some(1_600_000_000));
    u.seed_message(
        "Archive/2023",
        b"Subject: arch\n\ny\n",
        "",
        Some(1_650_000_000),
    );
    u.seed_message("送信済み", b"Subject: jp\n\nz\n", "", Some(1_650_000_001));
    u.seed_message(
        "Tom & Jerry",
        b"Subject: amp\n\nw\n",
        "",
        Some(1_650_000_002),
    );
    u.seed_message(
        "Entwürfe 😀",
        b"Subject: emoji\n\nv\n",
        "",
        Some(1_650_000_003),
    );

    let mut c = login(&d, &u);
    assert!(c.enable_condstore().unwrap(), "Dovecot has CONDSTORE");
    let boxes = c.list_mailboxes().unwrap();
    let inbox = find(&boxes, "INBOX").clone();
    assert_eq!(inbox.wire, "INBOX");
    let sent = find(&boxes, "Sent");
    assert_eq!(sent.special_use, Some(SpecialUse::Sent), "{sent:?}");
    let arch = find(&boxes, "Archive/2023");
    assert_eq!(arch.wire, "Archive.2023");
    assert_eq!(arch.delimiter, Some('.'));
    assert!(arch.selectable);
    // The parent exists only as a hierarchy level.
    let parent = find(&boxes, "Archive");
    assert!(!parent.selectable, "{parent:?}");
    assert_eq!(find(&boxes, "送信済み").wire, "&kAFP4W4IMH8-");
    assert_eq!(find(&boxes, "Tom & Jerry").wire, "Tom &- Jerry");
    assert_eq!(find(&boxes, "Entwürfe 😀").wire, "Entw&APw-rfe &2D3eAA-");

    // STATUS before EXAMINE.
    let st = c.status(&inbox).unwrap().expect("a usable STATUS");
    assert_eq!(st.messages, 3);
    assert_eq!(st.uidnext, Some(4));
    assert!(st.highestmodseq.is_some());

    let sel = c.examine(&inbox).unwrap();
    assert_eq!(sel.exists, 3);
    assert_eq!(sel.uidnext, Some(4));
    assert_eq!(sel.uidvalidity, st.uidvalidity);
    assert!(sel.uidvalidity > 0);
    let hms = sel.highestmodseq.expect("HIGHESTMODSEQ with CONDSTORE");

    let listed = c.list_messages(None).unwrap();
    let uids: Vec<u32> = listed.iter().map(|l| l.uid).collect();
    assert_eq!(uids, [1, 2, 3]);
    assert_eq!(listed[0].flags, Flags::new());
    assert_eq!(
        listed[1].flags,
        flags(&[Flag::Seen, Flag::Flagged, Flag::Keyword("$Work".into())])
    );
    assert_eq!(
        listed[2].flags,
        flags(&[Flag::Answered, Flag::Draft, Flag::Deleted])
    );
    let dates: Vec<Option<i64>> = listed.iter().map(|l| l.internal_date).collect();
    assert_eq!(
        dates,
        [Some(1_700_000_000), Some(946_684_799), Some(1_000_000_001)]
    );
    for (l, raw) in listed.iter().zip([m1, m2, m3]) {
        assert_eq!(l.size, wire_form(raw, false).len() as u64, "UID {}", l.uid);
        assert!(l.modseq.is_some());
    }
    // Nothing changed since HIGHESTMODSEQ.
    assert_eq!(c.list_messages(Some(hms)).unwrap(), vec![]);

    // Bodies exact; UID 99 does not exist and is reported missing.
    // (uid, flags, internal date, size, body): bodies are borrowed inside the callback only.
    type Got = (u32, Flags, Option<i64>, u64, Vec<u8>);
    let mut got: Vec<Got> = Vec::new();
    let missing = c
        .fetch_bodies::<ImapError>(&[3, 1, 2, 99], &mut |f| {
            got.push((f.uid, f.flags, f.internal_date, f.size, f.body.to_vec()));
            Ok(())
        })
        .unwrap();
    assert_eq!(missing, [99]);
    assert_eq!(got.len(), 3);
    for (f, raw) in got.iter().zip([m1, m2, m3]) {
        assert_eq!(f.4, wire_form(raw, false), "UID {}", f.0);
        assert_eq!(f.3, f.4.len() as u64);
    }
    assert_eq!(got[1].2, Some(946_684_799));
    assert_eq!(got[1].1, listed[1].flags);

    // Other folders: examine and fetch by decoded name.
    for (name, want) in [
        ("送信済み", &b"Subject: jp\n\nz\n"[..]),
        ("Tom & Jerry", b"Subject: amp\n\nw\n"),
        ("Entwürfe 😀", b"Subject: emoji\n\nv\n"),
        ("Archive/2023", b"Subject: arch\n\ny\n"),
    ] {
        let mb = find(&boxes, name).clone();
        let sel = c.examine(&mb).unwrap();
        assert_eq!(sel.exists, 1, "{name}");
        let l = c.list_messages(None).unwrap();
        let mut bodies = Vec::new();
        c.fetch_bodies::<ImapError>(&[l[0].uid], &mut |f| {
            bodies.push(f.body.to_vec());
            Ok(())
        })
        .unwrap();
        assert_eq!(bodies, [wire_form(want, false)], "{name}");
    }
    c.logout().unwrap();

    // \Seen untouched: a fresh session sees UID 1 and 3 still unseen, files unrenamed.
    let mut c = login(&d, &u);
    c.examine(&inbox).unwrap();
    let again = c.list_messages(None).unwrap();
    assert!(!again[0].flags.contains(&Flag::Seen));
    assert!(!again[2].flags.contains(&Flag::Seen));
    c.logout().unwrap();
    let names: Vec<String> = u
        .message_files("INBOX")
        .iter()
        .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
        .collect();
    assert!(names[0].ends_with(":2,"), "{names:?}");

    // An empty mailbox lists as empty.
    u.ensure_mailbox("Empty");
    let mut c = login(&d, &u);
    let boxes = c.list_mailboxes().unwrap();
    let empty = find(&boxes, "Empty").clone();
    c.examine(&empty).unwrap();
    assert_eq!(c.list_messages(None).unwrap(), vec![]);
    // A mailbox that does not exist: NO.
    let mut gone = empty.clone();
    gone.wire = "NoSuchBox".into();
    let e = c.examine(&gone).unwrap_err();
    assert!(matches!(e, ImapError::No { .. }), "{e:?}");
    // No quota plugin: empty list.
    assert_eq!(c.quota_roots(&inbox).unwrap(), vec![]);
    c.logout().unwrap();
}

#[test]
fn quota_roots_with_dovecot_quota() {
    let d = Dovecot::start_with(Options {
        extra_config: "mail_plugins = $mail_plugins quota\nprotocol imap {\n  mail_plugins = $mail_plugins imap_quota\n}\nplugin {\n  quota = count:User quota\n  quota_rule = *:storage=1G\n  quota_vsizes = yes\n}\n".into(),
        ..Default::default()
    });
    let u = d.add_user("dave", "pw");
    u.seed_message("INBOX", &vec![b'x'; 10_000], "", None);
    let mut c = login(&d, &u);
    assert!(c.capabilities().has("QUOTA"), "{:?}", c.capabilities());
    let boxes = c.list_mailboxes().unwrap();
    let roots = c.quota_roots(find(&boxes, "INBOX")).unwrap();
    assert_eq!(roots.len(), 1, "{roots:?}");
    assert_eq!(roots[0].name, "User quota");
    let storage = roots[0]
        .resources
        .iter()
        .find(|r| r.name == "STORAGE")
        .unwrap_or_else(|| panic!("{roots:?}"));
    assert_eq!(storage.limit, 1024 * 1024, "KiB");
    assert!(storage.usage <= 10, "{storage:?}");
    c.logout().unwrap();
}

#[test]
fn a_40_mb_message_fetches_exactly() {
    let d = Dovecot::start();
    let u = d.add_user("erin", "pw");
    let mut raw = b"From: big@example.org\nSubject: big\nContent-Type: text/plain\n\n".to_vec();
    let mut x: u32 = 12345;
    while raw.len() < 40 * 1024 * 1024 {
        for _ in 0..76 {
            x = x.wrapping_mul(1_103_515_245).wrapping_add(12345);
            raw.push(b'!' + ((x >> 16) % 90) as u8);
        }
        raw.push(b'\n');
    }
    u.seed_message("INBOX", &raw, "", Some(1_700_000_000));
    let want = Sha256::digest(wire_form(&raw, false));
    let mut c = login(&d, &u);
    let boxes = c.list_mailboxes().unwrap();
    c.examine(find(&boxes, "INBOX")).unwrap();
    let l = c.list_messages(None).unwrap();
    assert_eq!(l[0].size, wire_form(&raw, false).len() as u64);
    let mut got = None;
    let t = std::time::Instant::now();
    c.fetch_bodies::<ImapError>(&[l[0].uid], &mut |f| {
        got = Some((f.body.len(), Sha256::digest(f.body)));
        Ok(())
    })
    .unwrap();
    eprintln!("40 MB fetched in {:?}", t.elapsed());
    let (len, sha) = got.unwrap();
    assert_eq!(len as u64, l[0].size);
    assert_eq!(sha, want);
    c.logout().unwrap();
}

/// Case 17: items after the body literal, an ENVELOPE subject literal spanning lines, and an
/// unsolicited FLAGS before the body, on a scripted plain-text server.
#[test]
fn case17_fetch_literals_in_unusual_places() {
    let dir = PathBuf::from(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../shared/cases/17-fetch-literals-in-unusual-places"
    ));
    let read = |n: &str| std::fs::read(dir.join(n)).unwrap();
    let (a, b, c, subj) = (
        read("a.eml"),
        read("b.eml"),
        read("c.eml"),
        read("b.envelope-subject"),
    );
    let mut fetch = Vec::new();
    fetch.extend_from_slice(format!("* 1 FETCH (UID 201 BODY[] {{{}}}\r\n", a.len()).as_bytes());
    fetch.extend_from_slice(&a);
    fetch.extend_from_slice(
        b" FLAGS (\\Seen) INTERNALDATE \"03-Mar-2025 08:00:03 +0000\" RFC822.SIZE 241)\r\n",
    );
    fetch.extend_from_slice(
        format!(
            "* 2 FETCH (UID 202 FLAGS () ENVELOPE (\"Mon, 03 Mar 2025 09:00:00 +0000\" {{{}}}\r\n",
            subj.len()
        )
        .as_bytes(),
    );
    fetch.extend_from_slice(&subj);
    fetch.extend_from_slice(format!(" ((\"Yara Quinn\" NIL \"yara.quinn\" \"example.net\")) ((\"Yara Quinn\" NIL \"yara.quinn\" \"example.net\")) ((\"Yara Quinn\" NIL \"yara.quinn\" \"example.net\")) ((\"Xavier Cole\" NIL \"xavier.cole\" \"example.com\")) NIL NIL NIL \"<fetch-b@example.net>\") INTERNALDATE \"03-Mar-2025 09:00:04 +0000\" RFC822.SIZE 338 BODY[] {{{}}}\r\n", b.len()).as_bytes());
    fetch.extend_from_slice(&b);
    fetch.extend_from_slice(b")\r\n* 3 FETCH (FLAGS (\\Seen \\Flagged))\r\n");
    fetch.extend_from_slice(
        format!(
            "* 3 FETCH (UID 203 INTERNALDATE \"03-Mar-2025 10:00:05 +0000\" RFC822.SIZE 238 BODY[] {{{}}}\r\n",
            c.len()
        )
        .as_bytes(),
    );
    fetch.extend_from_slice(&c);
    fetch.extend_from_slice(b")\r\n");

    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    let server = std::thread::spawn(move || {
        let (tcp, _) = l.accept().unwrap();
        let mut w = tcp.try_clone().unwrap();
        let mut r = BufReader::new(tcp);
        w.write_all(b"* OK [CAPABILITY IMAP4rev1] ready\r\n")
            .unwrap();
        let mut commands = Vec::new();
        loop {
            let mut line = String::new();
            if r.read_line(&mut line).unwrap() == 0 {
                break;
            }
            let line = line.trim_end().to_string();
            let (tag, rest) = line.split_once(' ').unwrap();
            let verb = rest.split(' ').next().unwrap().to_ascii_uppercase();
            let mut out: Vec<u8> = Vec::new();
            match verb.as_str() {
                "CAPABILITY" => out.extend_from_slice(b"* CAPABILITY IMAP4rev1\r\n"),
                "EXAMINE" => out.extend_from_slice(
                    b"* 3 EXISTS\r\n* OK [UIDVALIDITY 1740990000] UIDs valid\r\n* OK [UIDNEXT 204] next UID\r\n",
                ),
                "UID" => out.extend_from_slice(&fetch),
                "LOGOUT" => out.extend_from_slice(b"* BYE bye\r\n"),
                _ => {}
            }
            out.extend_from_slice(format!("{tag} OK {verb} completed\r\n").as_bytes());
            w.write_all(&out).unwrap();
            commands.push(line);
            if verb == "LOGOUT" {
                break;
            }
        }
        commands
    });

    let mut o = opts(None);
    o.allow_plaintext = true;
    let mut client = ImapClient::connect(&spec(port, TlsMode::StartTls, "u"), &o).unwrap();
    client.login("u", "p").unwrap();
    let inbox = MailboxInfo::from_list("INBOX", Some('/'), vec![]);
    let sel = client.examine(&inbox).unwrap();
    assert_eq!(
        (sel.uidvalidity, sel.exists, sel.uidnext),
        (1740990000, 3, Some(204))
    );
    struct Owned {
        flags: Flags,
        internal_date: Option<i64>,
        body: Vec<u8>,
    }
    let mut got = Vec::new();
    let missing = client
        .fetch_bodies::<ImapError>(&[201, 202, 203], &mut |f| {
            got.push(Owned {
                flags: f.flags,
                internal_date: f.internal_date,
                body: f.body.to_vec(),
            });
            Ok(())
        })
        .unwrap();
    assert!(missing.is_empty());
    assert_eq!(got.len(), 3);
    let sha = |b: &[u8]| hex::encode(Sha256::digest(b));
    assert_eq!(
        sha(&got[0].body),
        "a0a203332ea0a7951b4c73571d713d9fe08a0c2a525290b0b451b6d189f15767"
    );
    assert_eq!(
        sha(&got[1].body),
        "c35199ef53a302fb14cdc9455c50adeb4faafa4938a1d5e4c64066a9ea5fc183"
    );
    assert_eq!(
        sha(&got[2].body),
        "1786804880d897904ccf0662ce1b6fbffe122bdd7dfe420133e350c143639137"
    );
    assert_eq!(got[0].flags, flags(&[Flag::Seen]));
    assert_eq!(got[1].flags, Flags::new());
    assert_eq!(got[2].flags, flags(&[Flag::Seen, Flag::Flagged]));
    let dates: Vec<Option<i64>> = got.iter().map(|f| f.internal_date).collect();
    assert_eq!(
        dates,
        [Some(1740988803), Some(1740992404), Some(1740996005)]
    );
    client.logout().unwrap();
    let commands = server.join().unwrap();
    let fetch_cmd = commands.iter().find(|c| c.contains("UID FETCH")).unwrap();
    assert!(
        fetch_cmd.ends_with("UID FETCH 201:203 (UID FLAGS INTERNALDATE RFC822.SIZE BODY.PEEK[])"),
        "{fetch_cmd}"
    );
    assert!(commands.iter().any(|c| c.contains("EXAMINE \"INBOX\"")));
}
