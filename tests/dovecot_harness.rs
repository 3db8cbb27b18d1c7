//! Tests of the Dovecot test harness itself (`tests/support/dovecot.rs`), with raw POP3/IMAP
//! sessions over native-tls: no mailkeep code involved.

mod support;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use support::dovecot::{wire_form, Dovecot, User};

trait Stream: Read + Write {}
impl<T: Read + Write> Stream for T {}

fn tcp(port: u16) -> TcpStream {
    let s = TcpStream::connect(("127.0.0.1", port)).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    s
}

fn tls(dovecot: &Dovecot, port: u16, host: &str) -> BufReader<Box<dyn Stream>> {
    let pem = std::fs::read(&dovecot.ca_pem).unwrap();
    let connector = native_tls::TlsConnector::builder()
        .add_root_certificate(native_tls::Certificate::from_pem(&pem).unwrap())
        .disable_built_in_roots(true)
        .build()
        .unwrap();
    let stream = connector
        .connect(host, tcp(port))
        .expect("TLS handshake with the instance's CA");
    BufReader::new(Box::new(stream))
}

fn plain(port: u16) -> BufReader<Box<dyn Stream>> {
    BufReader::new(Box::new(tcp(port)))
}

fn line(s: &mut BufReader<Box<dyn Stream>>) -> String {
    let mut buf = Vec::new();
    s.read_until(b'\n', &mut buf).unwrap();
    assert!(buf.ends_with(b"\r\n"), "unterminated line {buf:?}");
    String::from_utf8_lossy(&buf).trim_end().to_string()
}

fn send(s: &mut BufReader<Box<dyn Stream>>, cmd: &str) {
    s.get_mut()
        .write_all(format!("{cmd}\r\n").as_bytes())
        .unwrap();
    s.get_mut().flush().unwrap();
}

#[track_caller]
fn pop_ok(s: &mut BufReader<Box<dyn Stream>>, cmd: &str) -> String {
    send(s, cmd);
    let reply = line(s);
    assert!(reply.starts_with("+OK"), "{cmd}: {reply}");
    reply
}

/// Reads a POP3 multi-line body, dot-unstuffed, keeping CRLFs.
fn pop_multiline(s: &mut BufReader<Box<dyn Stream>>) -> Vec<u8> {
    let mut out = Vec::new();
    loop {
        let mut buf = Vec::new();
        s.read_until(b'\n', &mut buf).unwrap();
        assert!(
            !buf.is_empty(),
            "connection closed in a multi-line response"
        );
        if buf == b".\r\n" {
            return out;
        }
        out.extend_from_slice(if buf.starts_with(b".") {
            &buf[1..]
        } else {
            &buf
        });
    }
}

fn pop3s_login(dovecot: &Dovecot, user: &User) -> BufReader<Box<dyn Stream>> {
    let mut s = tls(dovecot, dovecot.pop3s_port, "localhost");
    assert!(line(&mut s).starts_with("+OK"));
    pop_ok(&mut s, &format!("USER {}", user.name));
    pop_ok(&mut s, &format!("PASS {}", user.password));
    s
}

fn stat(s: &mut BufReader<Box<dyn Stream>>) -> (usize, usize) {
    let reply = pop_ok(s, "STAT");
    let mut parts = reply.split_whitespace().skip(1).map(|n| n.parse().unwrap());
    (parts.next().unwrap(), parts.next().unwrap())
}

/// Sends a tagged IMAP command and returns everything up to and including the tagged reply,
/// literals included verbatim.
fn imap(s: &mut BufReader<Box<dyn Stream>>, tag: &str, cmd: &str) -> Vec<u8> {
    send(s, &format!("{tag} {cmd}"));
    let mut out = Vec::new();
    loop {
        let mut buf = Vec::new();
        s.read_until(b'\n', &mut buf).unwrap();
        assert!(!buf.is_empty(), "connection closed during {cmd}");
        out.extend_from_slice(&buf);
        if buf.starts_with(format!("{tag} ").as_bytes()) {
            assert!(
                buf.starts_with(format!("{tag} OK").as_bytes()),
                "{cmd}: {}",
                String::from_utf8_lossy(&buf)
            );
            return out;
        }
        // A literal {n} / ~{n} at the end of the line: read n bytes verbatim.
        if let Some(open) = buf.iter().rposition(|&b| b == b'{') {
            if buf.ends_with(b"}\r\n") {
                let n: usize = std::str::from_utf8(&buf[open + 1..buf.len() - 3])
                    .unwrap()
                    .parse()
                    .unwrap();
                let mut lit = vec![0; n];
                s.read_exact(&mut lit).unwrap();
                out.extend_from_slice(&lit);
            }
        }
    }
}

/// The literal following `marker` (e.g. `BODY[] `) in an IMAP response.
fn literal_after(resp: &[u8], marker: &str) -> Vec<u8> {
    let at = resp
        .windows(marker.len())
        .position(|w| w == marker.as_bytes())
        .expect(marker)
        + marker.len();
    let rest = &resp[at..];
    let rest = rest.strip_prefix(b"~").unwrap_or(rest);
    let close = rest.iter().position(|&b| b == b'}').unwrap();
    let n: usize = std::str::from_utf8(&rest[1..close])
        .unwrap()
        .parse()
        .unwrap();
    rest[close + 3..close + 3 + n].to_vec()
}

const SAMPLES: [&[u8]; 3] = [
    b"From: a@example.com\nSubject: LF\n\nline one\n.dot line\n",
    b"From: b@example.com\r\nSubject: CRLF\r\n\r\nline one\r\n",
    b"From: c@example.com\nSubject: no final newline, NUL \0 and 8-bit \xe9\n\nlast line",
];

#[test]
fn pop3s_serves_seeded_bytes_to_each_user() {
    let dovecot = Dovecot::start();
    let alice = dovecot.add_user("alice", "alice-pw");
    let bob = dovecot.add_user("bob", "bob-pw");
    for (i, raw) in SAMPLES.iter().enumerate() {
        alice.seed_message(
            "INBOX",
            raw,
            if i == 0 { "S" } else { "" },
            Some(1_600_000_000 + i as i64),
        );
    }
    bob.seed_message("INBOX", SAMPLES[1], "", None);
    assert_eq!(alice.message_count("INBOX"), 3);
    assert_eq!(bob.message_count("INBOX"), 1);

    let mut s = pop3s_login(&dovecot, &alice);
    let expected_size: usize = SAMPLES.iter().map(|r| wire_form(r, false).len()).sum();
    assert_eq!(stat(&mut s), (3, expected_size));
    for (i, raw) in SAMPLES.iter().enumerate() {
        let reply = pop_ok(&mut s, &format!("LIST {}", i + 1));
        assert_eq!(
            reply,
            format!("+OK {} {}", i + 1, wire_form(raw, false).len())
        );
        pop_ok(&mut s, &format!("RETR {}", i + 1));
        let got = pop_multiline(&mut s);
        assert_eq!(got, wire_form(raw, true), "message {}", i + 1);
    }
    pop_ok(&mut s, "QUIT");

    let mut s = pop3s_login(&dovecot, &bob);
    assert_eq!(stat(&mut s).0, 1);
    pop_ok(&mut s, "QUIT");
}

#[test]
fn imaps_serves_seeded_bytes_flags_and_internaldate() {
    let dovecot = Dovecot::start();
    let alice = dovecot.add_user("alice", "pw");
    for (i, raw) in SAMPLES.iter().enumerate() {
        alice.seed_message(
            "INBOX",
            raw,
            ["SF", "", "S"][i],
            Some(1_600_000_000 + i as i64 * 86_400),
        );
    }
    alice.seed_message("Archive.2023", SAMPLES[0], "", None);
    alice.seed_message("Entwürfe & Co", SAMPLES[1], "", None);

    // IP address as the TLS host name: the certificate has an IP SAN.
    let mut s = tls(&dovecot, dovecot.imaps_port, "127.0.0.1");
    line(&mut s);
    imap(&mut s, "a", "LOGIN alice pw");
    let list = String::from_utf8(imap(&mut s, "b", "LIST \"\" \"*\"")).unwrap();
    for name in ["INBOX", "Archive.2023", "Entw&APw-rfe &- Co"] {
        assert!(
            list.contains(&format!("\"{name}\"")) || list.contains(&format!(" {name}\r")),
            "{name} in {list}"
        );
    }
    imap(&mut s, "c", "EXAMINE INBOX");
    for (i, raw) in SAMPLES.iter().enumerate() {
        let resp = imap(
            &mut s,
            "d",
            &format!("FETCH {} (FLAGS INTERNALDATE BODY.PEEK[])", i + 1),
        );
        assert_eq!(
            literal_after(&resp, "BODY[] "),
            wire_form(raw, false),
            "message {}",
            i + 1
        );
        let text = String::from_utf8_lossy(&resp);
        let flags = &text[text.find("FLAGS (").unwrap()..];
        let flags = &flags[..flags.find(')').unwrap()];
        for flag in ["\\Seen", "\\Flagged"] {
            assert_eq!(
                flags.contains(flag),
                ["SF", "", "S"][i].contains(&flag[1..2]),
                "{flag} in {text}"
            );
        }
        let date = ["13-Sep-2020", "14-Sep-2020", "15-Sep-2020"][i];
        assert!(
            text.contains(&format!("INTERNALDATE \"{date}")),
            "{date} in {text}"
        );
    }
    // BINARY[] keeps the NUL that BODY[] turns into 0x80.
    let resp = imap(&mut s, "e", "FETCH 3 BINARY.PEEK[]");
    assert_eq!(
        literal_after(&resp, "BINARY[] "),
        wire_form(SAMPLES[2], true)[..wire_form(SAMPLES[2], false).len()]
    );
    imap(&mut s, "f", "LOGOUT");
}

#[test]
fn users_added_while_running_can_log_in() {
    let dovecot = Dovecot::start();
    let first = dovecot.add_user("first", "pw1");
    let mut s = pop3s_login(&dovecot, &first);
    assert_eq!(stat(&mut s), (0, 0));
    pop_ok(&mut s, "QUIT");
    for i in 0..3 {
        let user = dovecot.add_user(&format!("late{i}"), &format!("pw{i}"));
        user.seed_message("INBOX", SAMPLES[0], "", None);
        let mut s = pop3s_login(&dovecot, &user);
        assert_eq!(stat(&mut s).0, 1);
        pop_ok(&mut s, "QUIT");
    }
    // A wrong password is refused.
    let mut s = tls(&dovecot, dovecot.pop3s_port, "localhost");
    line(&mut s);
    pop_ok(&mut s, "USER first");
    send(&mut s, "PASS wrong");
    assert!(line(&mut s).starts_with("-ERR"));
}

#[test]
fn plain_ports_offer_starttls_unless_started_without() {
    let with = Dovecot::start();
    let without = Dovecot::start_without_starttls();
    assert_eq!((without.pop3s_port, without.imaps_port), (0, 0));
    for (dovecot, offered) in [(&with, true), (&without, false)] {
        let mut s = plain(dovecot.pop3_port);
        assert!(line(&mut s).starts_with("+OK"));
        pop_ok(&mut s, "CAPA");
        let capa = String::from_utf8(pop_multiline(&mut s)).unwrap();
        assert_eq!(capa.contains("STLS"), offered, "{capa}");
        assert!(
            capa.contains("USER"),
            "plaintext USER/PASS accepted by Dovecot: {capa}"
        );

        let mut s = plain(dovecot.imap_port);
        let greeting = line(&mut s);
        assert_eq!(greeting.contains("STARTTLS"), offered, "{greeting}");
        assert!(!greeting.contains("LOGINDISABLED"), "{greeting}");
    }
    // STLS on the plain port really upgrades, with the instance's CA.
    let user = with.add_user("alice", "pw");
    let mut raw = tcp(with.pop3_port);
    let raw_line = |raw: &mut TcpStream| {
        let mut line = Vec::new();
        let mut b = [0u8; 1];
        while !line.ends_with(b"\r\n") {
            assert_eq!(raw.read(&mut b).unwrap(), 1, "connection closed");
            line.push(b[0]);
        }
        String::from_utf8(line).unwrap()
    };
    assert!(raw_line(&mut raw).starts_with("+OK"));
    raw.write_all(b"STLS\r\n").unwrap();
    assert!(raw_line(&mut raw).starts_with("+OK"));
    let pem = std::fs::read(&with.ca_pem).unwrap();
    let connector = native_tls::TlsConnector::builder()
        .add_root_certificate(native_tls::Certificate::from_pem(&pem).unwrap())
        .build()
        .unwrap();
    let upgraded = connector.connect("localhost", raw).expect("STLS handshake");
    let mut s: BufReader<Box<dyn Stream>> = BufReader::new(Box::new(upgraded));
    pop_ok(&mut s, "USER alice");
    pop_ok(&mut s, &format!("PASS {}", user.password));
    assert_eq!(stat(&mut s), (0, 0));
}

#[test]
fn two_instances_run_in_parallel() {
    let started = Instant::now();
    let handles: Vec<_> = (0..2)
        .map(|i| {
            std::thread::spawn(move || {
                let dovecot = Dovecot::start();
                let user = dovecot.add_user("alice", "pw");
                for _ in 0..=i {
                    user.seed_message("INBOX", SAMPLES[1], "", None);
                }
                (dovecot, user)
            })
        })
        .map(|h| h.join().unwrap())
        .collect();
    eprintln!("two instances started in {:?}", started.elapsed());
    let (a, b) = (&handles[0], &handles[1]);
    assert_ne!(a.0.pop3s_port, b.0.pop3s_port);
    assert_ne!(a.0.dir.path(), b.0.dir.path());
    // Both serve at the same time, each its own storage.
    let mut sa = pop3s_login(&a.0, &a.1);
    let mut sb = pop3s_login(&b.0, &b.1);
    assert_eq!(stat(&mut sa).0, 1);
    assert_eq!(stat(&mut sb).0, 2);
}

#[test]
fn thousands_of_messages_seed_quickly_in_order() {
    let dovecot = Dovecot::start();
    let user = dovecot.add_user("bulk", "pw");
    let started = Instant::now();
    let n = 3000;
    for i in 0..n {
        user.seed_message(
            "INBOX",
            format!("Subject: {i}\n\nbody {i}\n").as_bytes(),
            "",
            None,
        );
    }
    let elapsed = started.elapsed();
    eprintln!("seeded {n} messages in {elapsed:?}");
    assert!(
        elapsed < Duration::from_secs(10),
        "seeding took {elapsed:?}"
    );
    assert_eq!(user.message_count("INBOX"), n);
    let mut s = pop3s_login(&dovecot, &user);
    assert_eq!(stat(&mut s).0, n);
    // Dovecot numbers messages in seeding order.
    for i in [1, 2, n / 2, n] {
        pop_ok(&mut s, &format!("TOP {i} 0"));
        let head = String::from_utf8(pop_multiline(&mut s)).unwrap();
        assert!(
            head.starts_with(&format!("Subject: {}\r\n", i - 1)),
            "message {i}: {head}"
        );
    }
}

#[test]
fn stop_kills_the_instance_and_removes_its_storage() {
    let started = Instant::now();
    let dovecot = Dovecot::start();
    eprintln!("started in {:?}", started.elapsed());
    let user = dovecot.add_user("alice", "pw");
    user.seed_message("INBOX", SAMPLES[0], "", None);
    let (dir, port) = (dovecot.dir.path().to_path_buf(), dovecot.pop3s_port);
    let started = Instant::now();
    dovecot.stop();
    eprintln!("stopped in {:?}", started.elapsed());
    assert!(!dir.exists());
    assert!(TcpStream::connect(("127.0.0.1", port)).is_err());
}

#[test]
#[should_panic(expected = "Dovecot exited during start-up")]
fn a_bad_config_fails_start_up_clearly() {
    Dovecot::start_with(support::dovecot::Options {
        extra_config: "no_such_setting = 1".into(),
        ..Default::default()
    });
}
