//! Found by the adversarial tester of the server-quirk work (issue 15): each test failed
//! before its fix.

mod support;

use std::path::Path;

use support::fake_imap::FakeImap;
use support::run::Run;

const PW: &str = "MK_BREAKER_PW";

fn restore(archive: &str, target: &FakeImap, state: &Path) -> Run {
    let out = support::mailkeep()
        .arg("restore")
        .arg(archive)
        .arg(format!("imap://alice@{}", target.addr()))
        .args(["--allow-plaintext", "--password-env", PW, "--json"])
        .args(["--timeout", "30"])
        .env(PW, "secret")
        .env("XDG_STATE_HOME", state)
        .output()
        .unwrap();
    Run::from_output(out)
}

/// Before an APPEND to the mailbox it has open with EXAMINE, mailkeep leaves it (Courier
/// refuses the APPEND otherwise), with CLOSE when the server has no UNSELECT. CLOSE removes
/// every message marked `\Deleted` when the mailbox is open read-write (RFC 3501 6.4.2): a
/// server that answers EXAMINE with `[READ-WRITE]` (it ignored the read-only request) lost the
/// target's messages marked `\Deleted` (a Thunderbird "mark as deleted" folder) to a restore.
/// No CLOSE is sent to a mailbox the server did not open read-only.
#[test]
fn no_close_after_an_examine_the_server_answered_read_write() {
    let t = tempfile::tempdir().unwrap();
    let dir = t.path().join("srv");
    std::fs::create_dir_all(&dir).unwrap();
    let old =
        "From: a@example.org\r\nSubject: old, marked deleted\r\nMessage-ID: <old@x>\r\n\r\nold\r\n";
    std::fs::write(dir.join("old.eml"), old).unwrap();
    let new = "From: a@example.org\nSubject: restored\nMessage-ID: <new@x>\n\nnew!!\n";
    // The same size as `old` on the wire, so the restore lists the mailbox to compare.
    let s = format!(
        "S: * OK [CAPABILITY IMAP4rev1 UIDPLUS] target ready\n\
         C: TAG LOGIN <user> <password>\nS: TAG OK LOGIN completed\n\
         C: TAG EXAMINE INBOX\nS: * 1 EXISTS\nS: * OK [UIDVALIDITY 9] UIDs valid\nS: * OK [UIDNEXT 2] next\nS: TAG OK [READ-WRITE] EXAMINE completed\n\
         C: TAG UID FETCH 1:* (UID FLAGS RFC822.SIZE INTERNALDATE)\n\
         S: * 1 FETCH (UID 1 FLAGS (\\Deleted) INTERNALDATE \"04-Mar-2014 10:00:00 +0100\" RFC822.SIZE {n} BODY[] {{{n}}}\nS+ old.eml\nS: )\nS: TAG OK FETCH completed\n",
        n = old.len()
    );
    let target = FakeImap::from_str(&s, &dir);
    let eml = t.path().join("eml");
    std::fs::create_dir_all(&eml).unwrap();
    std::fs::write(eml.join("m1.eml"), new).unwrap();
    let run = restore(
        &format!("eml:{}", eml.display()),
        &target,
        &t.path().join("state"),
    );
    let cmds = target.commands();
    assert!(
        cmds.iter().any(|c| c.contains("EXAMINE")),
        "the restore did not look at the target first: {cmds:#?}\n{run:#?}"
    );
    assert_eq!(target.appends().len(), 1, "{cmds:#?}\n{run:#?}");
    assert!(
        !cmds.iter().any(|c| c.eq_ignore_ascii_case("CLOSE")),
        "CLOSE sent to a mailbox open read-write: {cmds:#?}"
    );
    run.assert_code(0);
}
