//! The POP3 client against the scripted fake server: shared/cases/14 (UIDL renumbering,
//! dot-stuffing) and connection faults in the middle of a RETR.

mod support;

use std::io;
use std::net::TcpStream;
use std::path::PathBuf;
use std::time::Duration;

use mailkeep::core::message::normalize;
use mailkeep::protocol::pop3::{AuthMethod, Pop3Client, Pop3Error};
use support::fake_server::{Cut, CutFile, FakeServer};

fn case_dir(dir: &str) -> PathBuf {
    PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../shared/cases")).join(dir)
}

const CASE14: &str = "14-pop3-uidl-renumbered-after-deletion";

fn case14_transcript() -> PathBuf {
    case_dir(CASE14).join("pop3-sessions.txt")
}

fn eml(name: &str) -> Vec<u8> {
    std::fs::read(case_dir(CASE14).join(name)).unwrap()
}

#[track_caller]
fn connect(server: &FakeServer) -> Pop3Client<TcpStream> {
    connect_with_timeout(server, Duration::from_secs(10))
}

#[track_caller]
fn connect_with_timeout(server: &FakeServer, read_timeout: Duration) -> Pop3Client<TcpStream> {
    let tcp = TcpStream::connect(server.addr()).unwrap();
    tcp.set_read_timeout(Some(read_timeout)).unwrap();
    let mut c = Pop3Client::from_stream(tcp, true).unwrap();
    c.login("alice", "secret", AuthMethod::User).unwrap();
    c
}

/// The messages whose body was read to its end, (number, bytes), and how `retr_each` ended.
type Retrieved = (Vec<(u32, Vec<u8>)>, Result<(), Pop3Error>);

/// RETRs `msgs`.
fn retr(c: &mut Pop3Client<TcpStream>, msgs: &[u32]) -> Retrieved {
    let mut got = Vec::new();
    let r = c.retr_each(msgs, |n, body| {
        let mut v = Vec::new();
        body.read_to_end(&mut v)?;
        got.push((n, v));
        Ok::<(), Pop3Error>(())
    });
    (got, r)
}

fn retrs(commands: &[String]) -> Vec<&str> {
    commands
        .iter()
        .filter(|c| c.starts_with("RETR") || c.starts_with("DELE"))
        .map(String::as_str)
        .collect()
}

/// shared/cases/14: session 1 fetches m1..m3 byte-exact and un-stuffed once; session 2's
/// listing is renumbered, and fetching only its new message sends only `RETR 3`.
#[test]
fn case14_sessions_unstuffed_byte_exact() {
    let server = FakeServer::pop3_from_transcript(&case14_transcript());

    let mut c = connect(&server);
    assert!(c.capabilities().uidl && c.capabilities().top);
    assert_eq!(c.stat().unwrap(), (3, 587));
    let uidl = c.uidl().unwrap().unwrap();
    assert_eq!(
        uidl,
        [
            (1, "QX-7f3a-0001".to_string()),
            (2, "QX-7f3a-0002".to_string()),
            (3, "QX-7f3a-0003".to_string())
        ]
    );
    assert_eq!(c.list().unwrap(), [(1, 182), (2, 221), (3, 184)]);
    let (got, r) = retr(&mut c, &[1, 2, 3]);
    r.unwrap();
    c.quit().unwrap();
    assert_eq!(got.len(), 3);
    for ((n, bytes), file) in got.iter().zip(["m1.eml", "m2.eml", "m3.eml"]) {
        let want = eml(file);
        // The .eml files hold the exact CRLF octets: the wire bytes must equal them, and so must
        // the stored form.
        assert_eq!(bytes, &want, "message {n} vs {file}");
        assert_eq!(normalize(bytes), normalize(&want), "message {n} vs {file}");
    }
    let m2 = String::from_utf8(got[1].1.clone()).unwrap();
    assert!(
        m2.contains("\r\n.signature starts with a dot\r\n..\r\n"),
        "{m2}"
    );
    assert_eq!(
        retrs(&server.commands_in(1)),
        ["RETR 1", "RETR 2", "RETR 3"]
    );

    let mut c = connect(&server);
    let uidl = c.uidl().unwrap().unwrap();
    assert_eq!(uidl[2], (3, "QX-7f3a-0004".to_string()));
    let (got, r) = retr(&mut c, &[3]);
    r.unwrap();
    c.quit().unwrap();
    assert_eq!(got, [(3, eml("m4.eml"))]);
    assert_eq!(retrs(&server.commands_in(2)), ["RETR 3"]);
    assert_eq!(server.connections(), 2);
}

/// With PIPELINING announced, the RETRs go out together and the replies are still framed by
/// the `.` lines alone.
#[test]
fn pipelined_retr_against_fake() {
    let script = std::fs::read_to_string(case14_transcript())
        .unwrap()
        .replace("S: UIDL\nS: .\n", "S: UIDL\nS: PIPELINING\nS: .\n");
    let server = FakeServer::pop3_from_str(&script, &case_dir(CASE14));
    let mut c = connect(&server);
    assert!(c.capabilities().pipelining);
    let (got, r) = retr(&mut c, &[1, 2, 3]);
    r.unwrap();
    assert_eq!(
        got.iter().map(|(_, b)| b.clone()).collect::<Vec<_>>(),
        [eml("m1.eml"), eml("m2.eml"), eml("m3.eml")]
    );
    // An unscripted message number gets -ERR and the session stays usable.
    let (got, r) = retr(&mut c, &[9]);
    assert!(got.is_empty());
    match r {
        Err(Pop3Error::Err { command, .. }) => assert_eq!(command, "RETR 9"),
        other => panic!("{other:?}"),
    }
    c.dele(&[1, 2]).unwrap();
    c.quit().unwrap();
}

/// A connection closed in the middle of a RETR is an error; the cut message is never handed
/// over as complete.
#[test]
fn connection_dropped_mid_retr_is_an_error() {
    for after_bytes in [0, 1, 100, 223, 224, 225] {
        let server = FakeServer::pop3_from_transcript_with(
            &case14_transcript(),
            vec![CutFile::once("m2.pop-wire", after_bytes, Cut::Close)],
        );
        let mut c = connect(&server);
        let (got, r) = retr(&mut c, &[1, 2, 3]);
        assert_eq!(got, [(1, eml("m1.eml"))], "cut after {after_bytes}");
        match &r {
            Err(Pop3Error::Io(e)) => {
                assert_eq!(e.kind(), io::ErrorKind::UnexpectedEof, "{e}");
                assert!(e.to_string().contains("connection closed by server"), "{e}");
                assert!(e.to_string().contains("RETR 2"), "{e}");
            }
            other => panic!("cut after {after_bytes}: {other:?}"),
        }
        // No QUIT on a broken session: nothing would be deleted.
        assert!(c.quit().is_err());
        assert!(!server.commands().iter().any(|c| c == "QUIT"));
    }
}

/// A server that stops sending mid-message makes the read time out: an error, not a hang and
/// not a short message.
#[test]
fn stalled_retr_times_out() {
    let server = FakeServer::pop3_from_transcript_with(
        &case14_transcript(),
        vec![CutFile::once("m3.pop-wire", 50, Cut::Stall)],
    );
    let mut c = connect_with_timeout(&server, Duration::from_millis(300));
    let (got, r) = retr(&mut c, &[1, 2, 3]);
    assert_eq!(got, [(1, eml("m1.eml")), (2, eml("m2.eml"))]);
    match &r {
        Err(Pop3Error::Io(e)) => {
            assert_eq!(e.kind(), io::ErrorKind::TimedOut, "{e}");
            assert!(e.to_string().starts_with("timed out"), "{e}");
        }
        other => panic!("{other:?}"),
    }
}
