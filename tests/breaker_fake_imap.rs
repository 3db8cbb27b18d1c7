//! Found by an adversarial tester (issue 14), with a small Python IMAP server
//! (tests/breaker_support/fake_imap.py); each failed before its fix.

mod support;

use std::fs;
use std::net::TcpListener;
use std::process::{Child, Command};

struct Py(Child);
impl Drop for Py {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The server expunges the three messages (and says so: `* n EXPUNGE`), then answers `NO` to
/// `UID EXPUNGE`. prune took its deletion records back, so the next `backup --mirror` took the
/// three for messages deleted by someone else and removed their archived copies: gone from
/// the server and from the archive. Now only what the mailbox still holds is taken back.
#[test]
fn expunge_answered_no_keeps_the_records_of_what_went_so_mirror_keeps_the_copies() {
    let tmp = tempfile::tempdir().unwrap();
    let m = |t: &str| format!("From: a@b\nSubject: {t}\nMessage-ID: <{t}@x>\n\nbody of {t}\n");
    let spec = serde_json::json!({
        "INBOX": {"uidvalidity": 11, "msgs": [m("p1"), m("p2"), m("p3")], "expunge_no": true},
    });
    let spec_file = tmp.path().join("spec.json");
    fs::write(&spec_file, spec.to_string()).unwrap();
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let _py = Py(Command::new("python3")
        .arg(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/breaker_support/fake_imap.py"
        ))
        .arg(port.to_string())
        .arg(&spec_file)
        .spawn()
        .unwrap());
    std::thread::sleep(std::time::Duration::from_millis(800));
    let dir = tmp.path().join("archive");
    let archive = format!("maildir:{}", dir.display());
    let url = format!("imap://u@127.0.0.1:{port}");
    let run = |args: &[&str]| {
        let out = support::mailkeep()
            .args(args)
            .args(["--allow-plaintext", "--password-env", "P"])
            .env("P", "x")
            .output()
            .unwrap();
        eprintln!(
            "{:?}: {}{}",
            out.status.code(),
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        out.status.code()
    };
    assert_eq!(run(&["backup", &url, &archive]), Some(0));
    run(&[
        "prune",
        &url,
        "--archive",
        &archive,
        "--older-than",
        "1d",
        "--yes",
    ]);
    run(&["backup", &url, &archive, "--mirror"]);
    let left = fs::read_dir(dir.join("cur")).unwrap().count();
    assert_eq!(
        left, 3,
        "the server holds none of the 3 messages and the archive {left}"
    );
}

/// One mailbox whose name holds CR LF (sent by the server as a literal, which IMAP allows)
/// stopped the whole backup with exit 7 before anything was archived, INBOX included (the
/// `imap` crate refuses to send the name in STATUS). Now that mailbox fails (exit 1) and the
/// others are archived.
#[test]
fn a_mailbox_name_with_crlf_fails_that_mailbox_only() {
    let tmp = tempfile::tempdir().unwrap();
    let m = |t: &str| format!("From: a@b\nSubject: {t}\nMessage-ID: <{t}@x>\n\nbody of {t}\n");
    let spec = serde_json::json!({
        "INBOX": {"uidvalidity": 11, "msgs": [m("i1")]},
        "Evil\r\nmailkeep: forged line": {"uidvalidity": 12, "msgs": [m("e1")]},
    });
    let spec_file = tmp.path().join("spec.json");
    fs::write(&spec_file, spec.to_string()).unwrap();
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let _py = Py(Command::new("python3")
        .arg(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/breaker_support/fake_imap.py"
        ))
        .arg(port.to_string())
        .arg(&spec_file)
        .spawn()
        .unwrap());
    std::thread::sleep(std::time::Duration::from_millis(800));
    let dir = tmp.path().join("archive");
    let out = support::mailkeep()
        .args([
            "backup",
            &format!("imap://u@127.0.0.1:{port}"),
            &format!("maildir:{}", dir.display()),
        ])
        .args(["--allow-plaintext", "--password-env", "P"])
        .env("P", "x")
        .output()
        .unwrap();
    eprintln!("{}", String::from_utf8_lossy(&out.stderr));
    let inbox = fs::read_dir(dir.join("cur"))
        .map(|r| r.count())
        .unwrap_or(0);
    assert!(
        out.status.code() == Some(1) && inbox == 1,
        "exit {:?}, INBOX messages archived: {inbox}",
        out.status.code()
    );
}
