//! Found by an adversarial tester (issue 14): an endless answer under `ulimit -v`. It failed
//! (an abort) in about one run of two before the crate's answers were capped at 65 MiB.

mod support;

use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;

/// A hostile IMAP server answers LIST with one line that never ends. The answer was cut at
/// 1025 MiB, but the line buffer of the `imap` crate doubled to 2 GiB first: under
/// `ulimit -v 1400000` (1.4 GB, above the 1 GiB message limit) mailkeep aborted with
/// "memory allocation of 2147483648 bytes failed" (exit 134). Now: exit 7 at 65 MiB.
#[test]
fn breaker_endless_list_line_aborts_under_ulimit() {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for c in l.incoming() {
            let mut c = c.unwrap();
            std::thread::spawn(move || {
                let mut r = BufReader::new(c.try_clone().unwrap());
                let _ = c.write_all(b"* OK [CAPABILITY IMAP4rev1] fake\r\n");
                let mut line = String::new();
                loop {
                    line.clear();
                    if r.read_line(&mut line).unwrap_or(0) == 0 {
                        return;
                    }
                    let mut it = line.split(' ');
                    let tag = it.next().unwrap_or("").to_string();
                    let cmd = it.next().unwrap_or("").trim().to_ascii_uppercase();
                    if cmd == "LIST" {
                        let _ = c.write_all(b"* LIST (\\HasNoChildren) \"/\" \"");
                        let chunk = vec![b'a'; 1 << 16];
                        while c.write_all(&chunk).is_ok() {}
                        return;
                    }
                    let _ = c.write_all(format!("{tag} OK done\r\n").as_bytes());
                }
            });
        }
    });
    let bin = env!("CARGO_BIN_EXE_mailkeep");
    // Whether the buffer is asked to double past 1 GiB depends on how the reads fall: it
    // happens in about one run of two here, so try a few times.
    for attempt in 0..4 {
        let out = std::process::Command::new("sh")
            .arg("-c")
            .arg(format!(
                "ulimit -v 1400000; exec {bin} list imap://u@127.0.0.1:{port} --allow-plaintext --password-env P"
            ))
            .env("P", "x")
            .env("RUST_BACKTRACE", "0")
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        eprintln!("attempt {attempt}: {err}");
        assert_eq!(
            out.status.code(),
            Some(7),
            "attempt {attempt}: status {:?}: {err}",
            out.status
        );
    }
}
