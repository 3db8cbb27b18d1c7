//! Adversarial reproduction: two server mailboxes merged into one archive folder.

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

/// A server lists `&AGE` (not valid modified UTF-7: kept as it is) and `&-AGE` (valid: the
/// text `&AGE`), and `Work&` / `Work&-`. Four server mailboxes become two mailbox names and
/// two archive folders; the backup says "UIDVALIDITY changed (the mailbox was recreated)" and
/// exits 0. Issue 14: "If two names would still collide, refuse that mailbox with a clear
/// error, never merge."
#[test]
fn breaker_undecodable_mutf7_name_merges_with_its_literal_twin() {
    let tmp = tempfile::tempdir().unwrap();
    let m = |t: &str| format!("From: a@b\nSubject: {t}\nMessage-ID: <{t}@x>\n\nbody of {t}\n");
    let spec = serde_json::json!({
        "INBOX": {"uidvalidity": 11, "msgs": [m("inbox1")]},
        "&AGE": {"uidvalidity": 31, "msgs": [m("bad1")]},
        "&-AGE": {"uidvalidity": 32, "msgs": [m("amp1"), m("amp2")]},
        "Work&": {"uidvalidity": 41, "msgs": [m("w1")]},
        "Work&-": {"uidvalidity": 42, "msgs": [m("w2")]},
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
            "--allow-plaintext",
            "--password-env",
            "P",
            "--jobs",
            "1",
        ])
        .env("P", "x")
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    eprintln!("{}\n{err}", String::from_utf8_lossy(&out.stdout));
    let folders: Vec<String> = fs::read_dir(&dir)
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().to_string())
        .filter(|n| n.starts_with('.'))
        .collect();
    assert!(
        folders.len() >= 4 || out.status.code() == Some(1),
        "4 server mailboxes (besides INBOX) archived into folders {folders:?}, exit {:?}",
        out.status.code()
    );
}
