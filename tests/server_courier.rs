//! mailkeep against a real Courier-IMAP 5.0 and Courier POP3 (Debian 12's courier-imap and courier-pop, run from
//! the private root of scripts/lib/install-deps.sh by scripts/lib/courier.sh): the checks of
//! tests/support/server_suite.rs, one `#[test]` each.

mod support;

// The suite's checks, one `#[test]` each; pins: the kill points (ledger events) of IMAP backup,
// IMAP-to-IMAP migration and POP3 backup with delete.
real_server_tests!(Courier, pins: (4, 2, 2));

// ---------------------------------------------------------------------------------------------
// What mailkeep got wrong against Courier, pinned with a scripted fake (fails before its fix).

/// Courier-IMAP 5.0 answers GETQUOTAROOT for an account without a quota with a QUOTA response
/// that has no resource list (`* QUOTA "ROOT"`; RFC 9208 5.2 wants `* QUOTA "ROOT" ()`). The
/// imap crate could not parse it and left the tagged `OK` unread, so the next command (STATUS
/// of the first mailbox) read it: `Mismatched Tag`, exit 7, nothing archived. The quota is now
/// read by mailkeep's own reader; a root without resources is reported as such.
#[test]
fn courier_quota_without_resource_list_does_not_desynchronise_the_session() {
    let tmp = tempfile::tempdir().unwrap();
    std::fs::write(tmp.path().join("m1.eml"), b"Subject: one\r\n\r\nbody\r\n").unwrap();
    let script = "\
S: * OK [CAPABILITY IMAP4rev1 UIDPLUS CHILDREN NAMESPACE QUOTA IDLE] Courier-IMAP ready.
C: TAG LOGIN <user> <password>
S: TAG OK LOGIN Ok.
C: TAG LIST \"\" \"*\"
S: * LIST (\\Unmarked \\HasChildren) \".\" \"INBOX\"
S: * LIST (\\HasNoChildren) \".\" \"INBOX.Sent\"
S: TAG OK LIST completed
C: TAG GETQUOTAROOT \"INBOX\"
S: * QUOTAROOT \"INBOX\" \"ROOT\"
S: * QUOTA \"ROOT\"
S: TAG OK GETQUOTAROOT Ok.
C: TAG SELECT \"INBOX\"
S: * 1 EXISTS
S: * OK [UIDVALIDITY 796682126] Ok
S: * OK [UIDNEXT 2] Ok
S: TAG OK [READ-ONLY] Ok
C: TAG UID FETCH 1:* (BODY.PEEK[])
S: * 1 FETCH (UID 1 FLAGS (\\Seen) INTERNALDATE \"14-Jul-2017 02:40:00 +0000\" RFC822.SIZE 22 BODY[] {22}
S+ m1.eml
S: )
S: TAG OK FETCH completed
C: TAG SELECT \"INBOX.Sent\"
S: * 0 EXISTS
S: * OK [UIDVALIDITY 796682127] Ok
S: * OK [UIDNEXT 1] Ok
S: TAG OK [READ-ONLY] Ok
";
    let fake = support::fake_imap::FakeImap::from_str(script, tmp.path());
    let dir = tmp.path().join("archive");
    let out = support::mailkeep()
        .args([
            "backup",
            &format!("imap://u@{}", fake.addr()),
            &format!("maildir:{}", dir.display()),
            "--json",
        ])
        .args(["--allow-plaintext", "--password-env", "P"])
        .env("P", "x")
        .output()
        .unwrap();
    let run = support::run::Run::from_output(out);
    run.assert_code(0);
    assert_eq!((run.n("listed"), run.n("fetched")), (1, 1), "{run:#?}");
    assert_eq!(
        std::fs::read(
            dir.join("cur")
                .read_dir()
                .unwrap()
                .next()
                .unwrap()
                .unwrap()
                .path()
        )
        .unwrap(),
        b"Subject: one\n\nbody\n"
    );
}
