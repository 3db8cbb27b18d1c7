//! The checks every real server passes (tests/server_cyrus.rs, tests/server_courier.rs call
//! each one from a `#[test]` of their own, so they run in parallel against one server; the
//! wrappers are written once, in [`real_server_tests!`]).
//!
//! The seeded account: [`SUBSET`] of the shared corpus (every [`STEP`]th message), appended over
//! IMAP in round-robin into four mailboxes (INBOX, `Sent`, the nested `Archive/2023`, the
//! non-ASCII `Entwürfe`), with six flag sets (none, `\Seen`, `\Seen \Flagged`, `\Answered
//! \Seen`, `\Draft`, `\Seen $Label1 project-x`: keywords) and distinct INTERNALDATEs. What the
//! server holds afterwards, read back with `UID FETCH 1:* (UID FLAGS INTERNALDATE
//! BODY.PEEK[])`, is the expectation: an archived message must be its `BODY[]` with the line
//! ends mailkeep documents (README "Byte fidelity": LF on disk, [`mailkeep::core::message::normalize`]),
//! with its flags and INTERNALDATE in the ledger and the Maildir name / file time.

/// The `#[test]`s of the suite for one server, `Kind::$kind` (tests/server_cyrus.rs,
/// tests/server_courier.rs): one wrapper per check, named the same in every server's file.
/// `pins` are the kill points (ledger events) of IMAP backup, IMAP-to-IMAP migration and POP3
/// backup with delete: a change to them fails the test, to be updated if intended.
///
/// ```ignore
/// real_server_tests!(Cyrus, pins: (4, 2, 2));
/// ```
#[macro_export]
macro_rules! real_server_tests {
    ($kind:ident, pins: ($imap:expr, $migrate:expr, $pop3:expr) $(,)?) => {
        const KIND: $crate::support::real_server::Kind = $crate::support::real_server::Kind::$kind;

        #[test]
        fn imap_backup_into_maildir_is_byte_exact_and_a_rerun_moves_nothing() {
            $crate::support::server_suite::imap_backup(KIND, "maildir");
        }

        #[test]
        fn imap_backup_into_mbox_is_byte_exact_and_a_rerun_moves_nothing() {
            $crate::support::server_suite::imap_backup(KIND, "mbox");
        }

        #[test]
        fn restore_into_an_empty_account_keeps_bytes_flags_and_dates() {
            $crate::support::server_suite::restore_round_trip(KIND);
        }

        #[test]
        fn migrate_imap_to_imap_keeps_bytes_flags_and_dates() {
            $crate::support::server_suite::migrate_imap_to_imap(KIND);
        }

        #[test]
        fn migrate_pop3_to_imap_keeps_bytes_and_arrival_dates() {
            $crate::support::server_suite::migrate_pop3_to_imap(KIND);
        }

        #[test]
        fn pop3_backup_is_byte_exact_by_uidl() {
            $crate::support::server_suite::pop3_backup(KIND);
        }

        #[test]
        fn imap_backup_killed_at_every_event_converges() {
            assert_eq!(
                $crate::support::server_suite::kill_imap_backup(KIND),
                $imap,
                "ledger events of this path changed: update the pin if intended"
            );
        }

        #[test]
        fn migrate_imap_to_imap_killed_at_every_event_converges() {
            assert_eq!(
                $crate::support::server_suite::kill_migrate_imap(KIND),
                $migrate,
                "ledger events of this path changed: update the pin if intended"
            );
        }

        #[test]
        fn pop3_backup_with_delete_killed_at_every_event_converges() {
            assert_eq!(
                $crate::support::server_suite::kill_pop3_backup_delete(KIND),
                $pop3,
                "ledger events of this path changed: update the pin if intended"
            );
        }
    };
}

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use super::real_server::{crlf, Account, Fetched, Kind, RealServer};
use super::run::{ledger_state, snapshot, Run};

/// Every STEP-th corpus message is seeded (see [`SUBSET`]): 1, the whole corpus (about two
/// minutes for both servers on 2 cores; `MAILKEEP_TEST_SERVER_CORPUS_STEP=10` for a quick run
/// by hand).
pub const STEP: usize = 1;
/// Messages seeded into the shared account: ceil(4,287 / STEP).
pub const SUBSET: usize = super::corpus::CORPUS_TOTAL.div_ceil(STEP);

/// The seeded mailboxes, as levels.
pub const MAILBOXES: [&[&str]; 4] = [&["INBOX"], &["Sent"], &["Archive", "2023"], &["Entwürfe"]];

const FLAG_SETS: [&[&str]; 6] = [
    &[],
    &["\\Seen"],
    &["\\Seen", "\\Flagged"],
    &["\\Answered", "\\Seen"],
    &["\\Draft"],
    &["\\Seen", "$Label1", "project-x"],
];

const PW_VAR: &str = "MAILKEEP_TEST_SERVER_PW";

/// What was seeded and what the server refused.
pub struct Seeded {
    pub account: Account,
    /// Per mailbox (its name in mailkeep's ledger, [`Kind::archive_name`]), the server's
    /// messages.
    pub mailboxes: BTreeMap<String, Vec<Fetched>>,
    /// (corpus origin, mailbox, the server's words) of every refused APPEND.
    pub refused: Vec<(String, String, String)>,
    pub seconds: f64,
}

impl Seeded {
    pub fn total(&self) -> usize {
        self.mailboxes.values().map(Vec::len).sum()
    }
}

/// Creates `levels`' mailbox (and its parents when the server wants them) on `user`'s account.
fn create_all(s: &RealServer, c: &mut super::real_server::ImapClient, levels: &[&str]) {
    if levels == ["INBOX"] {
        return;
    }
    let wire = s.kind.wire_name(levels);
    c.create(&wire)
        .unwrap_or_else(|e| panic!("{}: CREATE {wire}: {e}", s.kind.name()));
}

/// Seeds `account` with every `step`-th corpus message into `mailboxes` (round robin), flags
/// from [`FLAG_SETS`] unless `no_flags`, and reads back what the server holds.
pub fn seed(
    s: &RealServer,
    account: &Account,
    step: usize,
    mailboxes: &[&[&str]],
    no_flags: bool,
) -> Seeded {
    let started = std::time::Instant::now();
    let corpus = super::corpus::all();
    let mut c = s.client(account);
    for mb in mailboxes {
        create_all(s, &mut c, mb);
    }
    let mut refused = Vec::new();
    for (i, m) in corpus.iter().step_by(step).enumerate() {
        let levels = mailboxes[i % mailboxes.len()];
        let flags: &[&str] = if no_flags {
            &[]
        } else {
            FLAG_SETS[(i / mailboxes.len()) % FLAG_SETS.len()]
        };
        let date = 1_000_000_000 + i as i64 * 86_413;
        if let Err(e) = c.append(&s.kind.wire_name(levels), flags, date, &crlf(&m.raw)) {
            refused.push((m.origin.clone(), s.kind.archive_name(levels), e));
        }
    }
    let mut out = BTreeMap::new();
    for mb in mailboxes {
        out.insert(s.kind.archive_name(mb), c.fetch_all(&s.kind.wire_name(mb)));
    }
    c.logout();
    Seeded {
        account: account.clone(),
        mailboxes: out,
        refused,
        seconds: started.elapsed().as_secs_f64(),
    }
}

/// The corpus step of the shared account: [`STEP`], or `MAILKEEP_TEST_SERVER_CORPUS_STEP`
/// (10 seeds a tenth, for a quicker run by hand).
pub fn corpus_step() -> usize {
    std::env::var("MAILKEEP_TEST_SERVER_CORPUS_STEP")
        .ok()
        .and_then(|v| v.parse().ok())
        .filter(|n| *n >= 1)
        .unwrap_or(STEP)
}

/// The account seeded with [`SUBSET`] messages in [`MAILBOXES`], shared by the tests that only
/// read it (IMAP backups, restore from their archive, IMAP-to-IMAP migration). With the
/// default step (the whole corpus) Courier accepts every message and Cyrus refuses exactly
/// four, with NUL bytes or CR-only line ends (checked; README "Tested servers").
pub fn shared_source(s: &'static RealServer) -> &'static Seeded {
    static CELL: OnceLock<Seeded> = OnceLock::new();
    CELL.get_or_init(|| {
        let account = s.add_user("source", "source-pw");
        let step = corpus_step();
        let seeded = seed(s, &account, step, &MAILBOXES, false);
        eprintln!(
            "{}: seeded {} messages ({} refused) in {:.1} s",
            s.kind.name(),
            seeded.total(),
            seeded.refused.len(),
            seeded.seconds
        );
        for (origin, mb, e) in &seeded.refused {
            eprintln!("  refused: {origin} into {mb}: {e}");
        }
        if step == STEP {
            let words: Vec<&str> = seeded.refused.iter().map(|(_, _, e)| e.as_str()).collect();
            let want = match s.kind {
                super::real_server::Kind::Cyrus => 4,
                super::real_server::Kind::Courier => 0,
            };
            assert_eq!(
                words.len(),
                want,
                "{}: refused APPENDs: {words:?}",
                s.kind.name()
            );
            for w in &words {
                assert!(
                    w.contains("Message contains NUL characters")
                        || w.contains("Message contains invalid header"),
                    "{}: an unexpected refusal: {w}",
                    s.kind.name()
                );
            }
            assert_eq!(
                seeded.total() + want,
                SUBSET,
                "{}: messages seeded",
                s.kind.name()
            );
        }
        seeded
    })
}

/// `mailkeep ARGS --tls-ca <server CA> --password-env VAR --json` as `user`.
pub fn mailkeep_as(s: &RealServer, user: &Account, args: &[&str], env: &[(&str, String)]) -> Run {
    let mut cmd = super::mailkeep();
    cmd.args(args)
        .arg("--tls-ca")
        .arg(&s.ca_pem)
        .args(["--password-env", PW_VAR, "--json"])
        .env(PW_VAR, &user.password)
        .env_remove("MAILKEEP_TEST_KILL_AFTER_EVENTS")
        .env_remove("MAILKEEP_TEST_EVENT_COUNT_FILE");
    for (k, v) in env {
        cmd.env(k, v);
    }
    Run::from_output(cmd.output().unwrap())
}

fn sha(b: &[u8]) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(b))
}

/// The archived form of a server message (README "Byte fidelity").
pub fn archived_form(body: &[u8]) -> Vec<u8> {
    mailkeep::core::message::normalize(body)
}

/// Per mailbox: sorted (SHA-256 of the archived form, sorted flags, INTERNALDATE) of the
/// server's messages: what the ledger must record.
pub fn expected_ledger(
    mailboxes: &BTreeMap<String, Vec<Fetched>>,
) -> BTreeMap<String, Vec<(String, Vec<String>, i64)>> {
    mailboxes
        .iter()
        .filter(|(_, v)| !v.is_empty())
        .map(|(mb, msgs)| {
            let mut v: Vec<_> = msgs
                .iter()
                .map(|m| (sha(&archived_form(&m.body)), m.flags.clone(), m.date))
                .collect();
            v.sort();
            (mb.clone(), v)
        })
        .collect()
}

/// The Maildir++ folder of a decoded mailbox name in a mailkeep archive.
pub fn maildir_folder(archive: &Path, mailbox: &str) -> PathBuf {
    if mailbox == "INBOX" {
        return archive.to_path_buf();
    }
    let name = mailkeep::archive::maildir::writer::maildir_folder_name(
        &mailkeep::core::message::MailboxName::from_levels(&mailbox.split('/').collect::<Vec<_>>()),
    );
    archive.join(name)
}

/// Maildir flag letters (Maildir `:2,` info) of IMAP system flags.
fn maildir_letters(flags: &[String]) -> String {
    let mut v: Vec<char> = flags
        .iter()
        .filter_map(|f| match f.as_str() {
            "\\Draft" => Some('D'),
            "\\Flagged" => Some('F'),
            "\\Answered" => Some('R'),
            "\\Seen" => Some('S'),
            "\\Deleted" => Some('T'),
            _ => None,
        })
        .collect();
    v.sort();
    v.into_iter().collect()
}

/// Checks a Maildir archive against the server's messages: per mailbox, the multiset of
/// (file bytes, system-flag letters of the name, file mtime) equals the server's (archived
/// form, flags, INTERNALDATE); and the ledger equals [`expected_ledger`].
#[track_caller]
pub fn assert_maildir_matches(
    archive: &Path,
    mailboxes: &BTreeMap<String, Vec<Fetched>>,
    what: &str,
) {
    use std::os::unix::fs::MetadataExt;
    for (mb, msgs) in mailboxes {
        let folder = maildir_folder(archive, mb);
        let mut got: Vec<(String, String, i64)> = Vec::new();
        for sub in ["cur", "new"] {
            let Ok(rd) = std::fs::read_dir(folder.join(sub)) else {
                continue;
            };
            for e in rd.flatten() {
                let name = e.file_name().to_string_lossy().into_owned();
                if name.starts_with('.') {
                    continue;
                }
                let info = name.split_once(":2,").map(|x| x.1).unwrap_or("");
                let letters: String = info.chars().filter(|c| c.is_ascii_uppercase()).collect();
                let md = e.metadata().unwrap();
                got.push((sha(&std::fs::read(e.path()).unwrap()), letters, md.mtime()));
            }
        }
        got.sort();
        let mut want: Vec<(String, String, i64)> = msgs
            .iter()
            .map(|m| {
                (
                    sha(&archived_form(&m.body)),
                    maildir_letters(&m.flags),
                    m.date,
                )
            })
            .collect();
        want.sort();
        assert_eq!(
            got.len(),
            want.len(),
            "{what}: {mb}: message count in {}",
            folder.display()
        );
        assert_eq!(
            got,
            want,
            "{what}: {mb}: bytes, flags or dates differ ({})",
            folder.display()
        );
    }
    assert_eq!(
        ledger_state(archive),
        expected_ledger(mailboxes),
        "{what}: ledger"
    );
}

/// Checks an mbox archive: per mailbox, the messages of its `.mbox` file (unquoted) are the
/// server's archived forms (same multiset), and the ledger equals [`expected_ledger`].
#[track_caller]
pub fn assert_mbox_matches(archive: &Path, mailboxes: &BTreeMap<String, Vec<Fetched>>, what: &str) {
    let ledger = ledger_state(archive);
    assert_eq!(ledger, expected_ledger(mailboxes), "{what}: ledger");
    let files = mbox_files(archive);
    let mut got: Vec<String> = files
        .iter()
        .flat_map(|f| super::run::mbox_messages(f))
        .map(|m| sha(&m))
        .collect();
    got.sort();
    let mut want: Vec<String> = mailboxes
        .values()
        .flatten()
        .map(|m| sha(&archived_form(&m.body)))
        .collect();
    want.sort();
    assert_eq!(got.len(), want.len(), "{what}: messages in {files:?}");
    assert_eq!(got, want, "{what}: mbox bytes");
    assert_eq!(
        files.len(),
        mailboxes.values().filter(|v| !v.is_empty()).count(),
        "{what}: one mbox file per mailbox: {files:?}"
    );
}

/// The `.mbox` files under an mbox archive folder.
pub fn mbox_files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    fn walk(d: &Path, out: &mut Vec<PathBuf>) {
        let Ok(rd) = std::fs::read_dir(d) else { return };
        for e in rd.flatten() {
            let p = e.path();
            if p.file_name().is_some_and(|n| n == "mailkeep") {
                continue;
            }
            if p.is_dir() {
                walk(&p, out);
            } else if p.extension().is_some_and(|x| x == "mbox") {
                out.push(p);
            }
        }
    }
    walk(dir, &mut out);
    out.sort();
    out
}

/// Reads every seeded mailbox of `user` back from the server.
pub fn server_state(
    s: &RealServer,
    user: &Account,
    mailboxes: &[&[&str]],
) -> BTreeMap<String, Vec<Fetched>> {
    let mut c = s.client(user);
    let out = mailboxes
        .iter()
        .map(|mb| (s.kind.archive_name(mb), c.fetch_all(&s.kind.wire_name(mb))))
        .collect();
    c.logout();
    out
}

/// Per mailbox, sorted (archived-form SHA-256, flags, date): for comparing two accounts.
pub fn content(
    mailboxes: &BTreeMap<String, Vec<Fetched>>,
) -> BTreeMap<String, Vec<(String, Vec<String>, i64)>> {
    expected_ledger(mailboxes)
}

// ---------------------------------------------------------------------------------------------
// 1 and 3: IMAP backup, byte-exact, then a rerun that moves nothing

/// IMAPS backup of the seeded account into `kind` (`maildir`/`mbox`): exit 0, every message
/// fetched, the archive equal to the server's messages; then a rerun fetches 0, exit 0, and
/// changes no archive byte.
pub fn imap_backup(kind: Kind, archive_kind: &str) {
    let s = RealServer::shared(kind);
    let src = shared_source(s);
    let tmp = tempfile::tempdir().unwrap();
    let archive = tmp.path().join("archive");
    let spec = format!("{archive_kind}:{}", archive.display());
    let url = s.url("imaps", &src.account);
    let r = mailkeep_as(s, &src.account, &["backup", &url, &spec], &[]);
    r.assert_code(0);
    let n = src.total() as u64;
    assert_eq!(
        (r.n("listed"), r.n("fetched"), r.n("already_archived")),
        (n, n, 0),
        "{r:#?}"
    );
    assert_eq!(r.report["failures"].as_array().unwrap().len(), 0, "{r:#?}");
    if archive_kind == "maildir" {
        assert_maildir_matches(&archive, &src.mailboxes, "backup");
    } else {
        assert_mbox_matches(&archive, &src.mailboxes, "backup");
    }
    // The backup changed nothing on the server (BODY.PEEK: no \Seen set).
    assert_eq!(
        &server_state(s, &src.account, &MAILBOXES),
        &src.mailboxes,
        "the server's messages after the backup"
    );

    let before = snapshot(&archive);
    let again = mailkeep_as(s, &src.account, &["backup", &url, &spec], &[]);
    again.assert_code(0);
    assert_eq!(
        (
            again.n("listed"),
            again.n("fetched"),
            again.n("already_archived")
        ),
        (n, 0, n),
        "{again:#?}"
    );
    let mut after = snapshot(&archive);
    // The ledger records each run; message files and mbox files must not change.
    after.retain(|k, _| !k.starts_with("mailkeep/"));
    let mut before = before;
    before.retain(|k, _| !k.starts_with("mailkeep/"));
    assert_eq!(after, before, "a rerun changed the archive");
}

// ---------------------------------------------------------------------------------------------
// 2: restore and migrate round trips

/// The state folder of restore/migrate runs of one test (`XDG_STATE_HOME`).
fn state_env(dir: &Path) -> Vec<(&'static str, String)> {
    vec![("XDG_STATE_HOME", dir.display().to_string())]
}

/// Backs the seeded account up into a Maildir, restores that into an empty account on the
/// same server: every message comes back with its bytes, flags (keywords included) and
/// INTERNALDATE, in the same mailboxes; a rerun uploads nothing.
pub fn restore_round_trip(kind: Kind) {
    let s = RealServer::shared(kind);
    let src = shared_source(s);
    let n = src.total() as u64;
    let tmp = tempfile::tempdir().unwrap();
    let archive = format!("maildir:{}", tmp.path().join("archive").display());
    mailkeep_as(
        s,
        &src.account,
        &["backup", &s.url("imaps", &src.account), &archive],
        &[],
    )
    .assert_code(0);
    let target = s.add_user("restored", "restored-pw");
    let env = state_env(&tmp.path().join("state"));
    let url = s.url("imaps", &target);
    let r = mailkeep_as(s, &target, &["restore", &archive, &url], &env);
    r.assert_code(0);
    assert_eq!(
        (r.n("read"), r.n("uploaded"), r.n("already_present")),
        (n, n, 0),
        "{r:#?}"
    );
    let got = server_state(s, &target, &MAILBOXES);
    assert_eq!(content(&got), content(&src.mailboxes), "restored account");

    let again = mailkeep_as(s, &target, &["restore", &archive, &url], &env);
    again.assert_code(0);
    assert_eq!(
        (again.n("uploaded"), again.n("already_present")),
        (0, n),
        "{again:#?}"
    );
    assert_eq!(
        server_state(s, &target, &MAILBOXES),
        got,
        "a rerun changed the target"
    );
}

/// A number from a migration report's `upload` part.
#[track_caller]
fn up(r: &Run, key: &str) -> u64 {
    r.report["upload"][key]
        .as_u64()
        .unwrap_or_else(|| panic!("no `upload.{key}` in report: {r:#?}"))
}

/// `mailkeep migrate SRC DST` between two accounts of `s`.
fn migrate(
    s: &RealServer,
    (from, src): (&str, &Account),
    dst: &Account,
    state: &Path,
    extra: &[&str],
    env: &[(&str, String)],
) -> Run {
    const SRC: &str = "MAILKEEP_TEST_SRC_PW";
    const DST: &str = "MAILKEEP_TEST_DST_PW";
    let mut cmd = super::mailkeep();
    cmd.args(["migrate", &s.url(from, src), &s.url("imaps", dst), "--json"])
        .arg("--source-tls-ca")
        .arg(&s.ca_pem)
        .arg("--target-tls-ca")
        .arg(&s.ca_pem)
        .args(["--source-password-env", SRC, "--target-password-env", DST])
        .args(extra)
        .env(SRC, &src.password)
        .env(DST, &dst.password)
        .env("XDG_STATE_HOME", state)
        .env_remove("MAILKEEP_TEST_KILL_AFTER_EVENTS")
        .env_remove("MAILKEEP_TEST_EVENT_COUNT_FILE");
    for (k, v) in env {
        cmd.env(k, v);
    }
    Run::from_output(cmd.output().unwrap())
}

/// IMAP to IMAP: the seeded account into an empty one: same mailboxes, bytes, flags, dates;
/// the source unchanged; a rerun uploads nothing.
pub fn migrate_imap_to_imap(kind: Kind) {
    let s = RealServer::shared(kind);
    let src = shared_source(s);
    let n = src.total() as u64;
    let tmp = tempfile::tempdir().unwrap();
    let target = s.add_user("migrated", "migrated-pw");
    let r = migrate(s, ("imaps", &src.account), &target, tmp.path(), &[], &[]);
    r.assert_code(0);
    assert_eq!(
        (up(&r, "uploaded"), up(&r, "already_present")),
        (n, 0),
        "{r:#?}"
    );
    let got = server_state(s, &target, &MAILBOXES);
    assert_eq!(content(&got), content(&src.mailboxes), "migrated account");
    assert_eq!(
        &server_state(s, &src.account, &MAILBOXES),
        &src.mailboxes,
        "the source after the migration"
    );
    let again = migrate(s, ("imaps", &src.account), &target, tmp.path(), &[], &[]);
    again.assert_code(0);
    assert_eq!(
        (up(&again, "uploaded"), up(&again, "already_present")),
        (0, n),
        "{again:#?}"
    );
    assert_eq!(
        server_state(s, &target, &MAILBOXES),
        got,
        "a rerun changed the target"
    );
}

/// Every POP3_STEP-th corpus message goes into a POP3 test account's INBOX.
pub const POP3_STEP: usize = 20;

/// A fresh account with every [`POP3_STEP`]-th corpus message in INBOX, no flags.
pub fn pop3_source(s: &RealServer, name: &str) -> Seeded {
    let account = s.add_user(name, &format!("{name}-pw"));
    let seeded = seed(s, &account, POP3_STEP, &[&["INBOX"]], true);
    assert_eq!(seeded.refused, vec![], "{}: refused APPENDs", s.kind.name());
    assert_eq!(
        seeded.total(),
        super::corpus::CORPUS_TOTAL.div_ceil(POP3_STEP),
        "{}: messages seeded",
        s.kind.name()
    );
    seeded
}

/// POP3 to IMAP: every message of the POP3 account lands in the target's INBOX with its bytes
/// and the arrival date mailkeep documents (README: the top `Received:`, else `Date:`, else
/// the time of the run; [`mailkeep::core::headers::arrival_date`]); a rerun uploads nothing.
pub fn migrate_pop3_to_imap(kind: Kind) {
    let s = RealServer::shared(kind);
    let src = pop3_source(s, "popmig");
    let n = src.total() as u64;
    let tmp = tempfile::tempdir().unwrap();
    let target = s.add_user("popmigrated", "popmigrated-pw");
    let started = chrono::Utc::now().timestamp();
    let r = migrate(s, ("pop3s", &src.account), &target, tmp.path(), &[], &[]);
    r.assert_code(0);
    assert_eq!(
        (up(&r, "uploaded"), up(&r, "already_present")),
        (n, 0),
        "{r:#?}"
    );
    let got = server_state(s, &target, &[&["INBOX"]]);
    let mut want: Vec<(String, i64)> = src.mailboxes["INBOX"]
        .iter()
        .map(|m| {
            let header_end = m
                .body
                .windows(4)
                .position(|w| w == b"\r\n\r\n")
                .map_or(m.body.len(), |i| i + 4);
            let (date, _) = mailkeep::core::headers::arrival_date(&m.body[..header_end], started);
            (sha(&archived_form(&m.body)), date)
        })
        .collect();
    want.sort();
    let now = chrono::Utc::now().timestamp();
    let mut got_v: Vec<(String, i64)> = got["INBOX"]
        .iter()
        .map(|m| (sha(&archived_form(&m.body)), m.date))
        .collect();
    got_v.sort();
    assert_eq!(got_v.len(), want.len(), "messages in the target's INBOX");
    for ((gs, gd), (ws, wd)) in got_v.iter().zip(&want) {
        assert_eq!(gs, ws, "bytes");
        // A message with no usable date gets the time of the run.
        assert!(
            gd == wd || (*wd == started && (started..=now).contains(gd)),
            "INTERNALDATE of {gs}: {gd}, want {wd}"
        );
    }
    let again = migrate(s, ("pop3s", &src.account), &target, tmp.path(), &[], &[]);
    again.assert_code(0);
    assert_eq!(
        (up(&again, "uploaded"), up(&again, "already_present")),
        (0, n),
        "{again:#?}"
    );
    assert_eq!(
        server_state(s, &target, &[&["INBOX"]]),
        got,
        "a rerun changed the target"
    );
}

// ---------------------------------------------------------------------------------------------
// 5: POP3 backup, byte-exact

/// POP3S backup into a Maildir: every message as `RETR` sends it (dot-unstuffed, line ends as
/// documented), recorded under its UIDL; a rerun fetches nothing.
pub fn pop3_backup(kind: Kind) {
    let s = RealServer::shared(kind);
    let src = pop3_source(s, "popbackup");
    let n = src.total() as u64;
    let tmp = tempfile::tempdir().unwrap();
    let archive = tmp.path().join("archive");
    let spec = format!("maildir:{}", archive.display());
    let url = s.url("pop3s", &src.account);
    let r = mailkeep_as(s, &src.account, &["backup", &url, &spec], &[]);
    r.assert_code(0);
    assert_eq!(
        (r.n("listed"), r.n("fetched"), r.n("already_archived")),
        (n, n, 0),
        "{r:#?}"
    );

    // What the server's POP3 sends, by UIDL.
    let mut pop = s.pop3(&src.account);
    let uidls = pop.uidl();
    let mut want: BTreeMap<String, String> = BTreeMap::new();
    for (num, uidl) in &uidls {
        want.insert(uidl.clone(), sha(&archived_form(&pop.retr(*num))));
    }
    pop.quit();
    assert_eq!(want.len() as u64, n);
    // The same bytes as IMAP's BODY[] (the server stores one form).
    let mut imap: Vec<String> = src.mailboxes["INBOX"]
        .iter()
        .map(|m| sha(&archived_form(&m.body)))
        .collect();
    imap.sort();
    let mut pop_shas: Vec<String> = want.values().cloned().collect();
    pop_shas.sort();
    assert_eq!(pop_shas, imap, "POP3 RETR and IMAP BODY[] differ");

    let got = ledger_uidls(&archive);
    assert_eq!(got, want, "ledger: UIDL -> SHA-256");
    let mut files: Vec<String> = super::run::maildir_messages(&archive)
        .iter()
        .map(|(_, b)| sha(b))
        .collect();
    files.sort();
    assert_eq!(files, pop_shas, "the archive's message files");

    let again = mailkeep_as(s, &src.account, &["backup", &url, &spec], &[]);
    again.assert_code(0);
    assert_eq!(
        (
            again.n("listed"),
            again.n("fetched"),
            again.n("already_archived")
        ),
        (n, 0, n),
        "{again:#?}"
    );
}

/// The ledger's UIDL -> SHA-256.
pub fn ledger_uidls(archive: &Path) -> BTreeMap<String, String> {
    let db = rusqlite::Connection::open_with_flags(
        format!(
            "file:{}?immutable=1",
            archive.join("mailkeep/ledger.sqlite").display()
        ),
        rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY | rusqlite::OpenFlags::SQLITE_OPEN_URI,
    )
    .unwrap();
    let mut st = db
        .prepare("SELECT uidl, sha256 FROM messages WHERE uidl IS NOT NULL")
        .unwrap();
    let rows = st
        .query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?)))
        .unwrap();
    rows.map(Result::unwrap).collect()
}

// ---------------------------------------------------------------------------------------------
// 4: the kill loop (tests/kill_matrix.rs's approach against a real server)

const KILL: &str = "MAILKEEP_TEST_KILL_AFTER_EVENTS";
const COUNT: &str = "MAILKEEP_TEST_EVENT_COUNT_FILE";

fn header_section(raw: &[u8]) -> String {
    let end = raw
        .windows(2)
        .position(|w| w == b"\n\n")
        .or_else(|| raw.windows(4).position(|w| w == b"\r\n\r\n"))
        .unwrap_or(raw.len());
    String::from_utf8_lossy(&raw[..end]).to_ascii_lowercase()
}

/// kill_matrix's six messages: four small corpus messages with a Message-ID and a Date, one
/// with a Date but no Message-ID, and the first again (same bytes, flags, date): (bytes, flags,
/// date).
pub fn kill_messages() -> Vec<(Vec<u8>, &'static [&'static str], i64)> {
    let corpus = super::corpus::all();
    let small = |m: &&super::corpus::CorpusMessage| {
        m.raw.len() < 6_000 && header_section(&m.raw).contains("\ndate:")
    };
    let with_id: Vec<Vec<u8>> = corpus
        .iter()
        .filter(small)
        .filter(|m| header_section(&m.raw).contains("\nmessage-id:"))
        .step_by(37)
        .take(4)
        .map(|m| m.raw.clone())
        .collect();
    let without = corpus
        .iter()
        .filter(small)
        .find(|m| !header_section(&m.raw).contains("message-id:"))
        .expect("a corpus message without a Message-ID")
        .raw
        .clone();
    let flags: [&'static [&'static str]; 6] = [
        &[],
        &["\\Seen"],
        &["\\Flagged", "\\Seen"],
        &["\\Answered", "\\Seen"],
        &["\\Seen"],
        &[],
    ];
    let mut out: Vec<_> = with_id
        .into_iter()
        .chain([without])
        .enumerate()
        .map(|(i, raw)| (raw, flags[i], 1_500_000_000 + i as i64 * 86_400))
        .collect();
    out.push(out[0].clone());
    out
}

/// Seeds the six kill messages: alternately INBOX and `Sent` (`folders`), or all in INBOX.
fn seed_kill(s: &RealServer, user: &Account, folders: bool) {
    let mut c = s.client(user);
    if folders {
        create_all(s, &mut c, &["Sent"]);
    }
    for (i, (raw, flags, date)) in kill_messages().iter().enumerate() {
        let levels: &[&str] = if folders && i % 2 == 1 {
            &["Sent"]
        } else {
            &["INBOX"]
        };
        c.append(&s.kind.wire_name(levels), flags, *date, &crlf(raw))
            .unwrap_or_else(|e| panic!("seeding: {e}"));
    }
    c.logout();
}

/// Maildir file names without the `.M<16 hex>` part (a hash of the source identity, which
/// names the per-kill-point account) and mbox/ledger files as they are.
fn archive_files(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let strip = |name: &str| match name.find(".M") {
        Some(i) if name.len() > i + 18 => format!("{}.M*{}", &name[..i], &name[i + 18..]),
        _ => name.to_string(),
    };
    let mut v: Vec<(String, Vec<u8>)> = snapshot(dir)
        .into_iter()
        .filter(|(k, _)| !k.starts_with("mailkeep/"))
        .map(|(k, (b, _))| (strip(&k), b))
        .collect();
    v.sort();
    v
}

/// Everything a run leaves that must equal the clean run's.
#[derive(Debug, PartialEq, Eq, Default)]
struct Outcome {
    archive: Vec<(String, Vec<u8>)>,
    ledger: BTreeMap<String, Vec<(String, Vec<String>, i64)>>,
    /// Server mailboxes (target of a migration, or the source after deletions): content.
    server: BTreeMap<String, Vec<(String, Vec<String>, i64)>>,
    uploads: Vec<(String, String)>,
    repeated_uploads: Vec<String>,
}

/// Makes one kill point's world: its folder and the accounts whose sessions to wait for.
type Fresh<'a> = dyn FnMut(&str) -> (PathBuf, Vec<String>) + 'a;
/// Runs mailkeep in a world with extra environment variables.
type RunIn<'a> = dyn Fn(&Path, &[(&str, String)]) -> Run + 'a;

/// The loop: a clean run counts its ledger events; then for every kill point N (0..count) a
/// fresh world is killed after N events (status 137), the server's sessions of the killed
/// run are waited for, a rerun must exit 0 and leave what the clean run left; N = count runs
/// to the end. Returns the kill points covered.
fn kill_loop(
    s: &RealServer,
    path: &str,
    fresh: &mut Fresh,
    run: &RunIn,
    observe: &dyn Fn(&Path) -> Outcome,
) -> u64 {
    let started = std::time::Instant::now();
    let (clean, _) = fresh("clean");
    let count_file = clean.join("events");
    let r = run(&clean, &[(COUNT, count_file.display().to_string())]);
    r.assert_code(0);
    let count = std::fs::read_to_string(&count_file)
        .unwrap_or_default()
        .lines()
        .count() as u64;
    let want = observe(&clean);
    assert!(
        want.repeated_uploads.is_empty(),
        "{path}: clean run: {want:#?}"
    );
    let mut covered = 0;
    for n in 0..=count {
        let (w, users) = fresh(&format!("k{n}"));
        let killed = run(&w, &[(KILL, n.to_string())]);
        if n == count {
            killed.assert_code(0);
            assert_eq!(observe(&w), want, "{path}: N={n} (no kill)");
            break;
        }
        assert_eq!(killed.code, 137, "{path}: killed after {n}: {killed:#?}");
        for u in &users {
            s.wait_for_sessions_to_end(u);
        }
        let rerun = run(&w, &[]);
        assert_eq!(
            rerun.code, 0,
            "{path}: rerun after a kill after {n}: {rerun:#?}"
        );
        assert_eq!(
            observe(&w),
            want,
            "{path}: killed after {n} then rerun differs from the clean run"
        );
        covered += 1;
    }
    println!(
        "kill points covered: {} {path} {covered} ({:.1} s)",
        s.kind.name(),
        started.elapsed().as_secs_f64()
    );
    assert_eq!(covered, count, "{path}");
    covered
}

/// IMAPS backup of a six-message account into a Maildir, killed after every ledger event.
/// The source is only read, so one account serves every kill point.
pub fn kill_imap_backup(kind: Kind) -> u64 {
    let s = RealServer::shared(kind);
    let src = s.add_user("killbk", "killbk-pw");
    seed_kill(s, &src, true);
    let tmp = tempfile::tempdir().unwrap();
    let mut fresh = |tag: &str| {
        let dir = tmp.path().join(tag);
        std::fs::create_dir(&dir).unwrap();
        (dir, vec![src.name.clone()])
    };
    let run = |w: &Path, env: &[(&str, String)]| {
        let spec = format!("maildir:{}", w.join("archive").display());
        mailkeep_as(
            s,
            &src,
            &["backup", &s.url("imaps", &src), &spec, "--jobs", "1"],
            env,
        )
    };
    let observe = |w: &Path| {
        let archive = w.join("archive");
        let o = Outcome {
            archive: archive_files(&archive),
            ledger: ledger_state(&archive),
            ..Outcome::default()
        };
        assert_eq!(o.ledger.values().map(Vec::len).sum::<usize>(), 6, "{o:#?}");
        o
    };
    kill_loop(s, "backup imaps -> maildir", &mut fresh, &run, &observe)
}

/// IMAP-to-IMAP migration of a six-message account, killed after every ledger event: every
/// kill point migrates into an account of its own; the source is only read.
pub fn kill_migrate_imap(kind: Kind) -> u64 {
    let s = RealServer::shared(kind);
    let src = s.add_user("killmig", "killmig-pw");
    seed_kill(s, &src, true);
    let tmp = tempfile::tempdir().unwrap();
    let targets: std::cell::RefCell<BTreeMap<PathBuf, Account>> = Default::default();
    let mut fresh = |tag: &str| {
        let dir = tmp.path().join(tag);
        std::fs::create_dir(&dir).unwrap();
        let t = s.add_user(&format!("killmig-{tag}"), "target-pw");
        targets.borrow_mut().insert(dir.clone(), t.clone());
        (dir, vec![src.name.clone(), t.name])
    };
    let run = |w: &Path, env: &[(&str, String)]| {
        let t = targets.borrow()[w].clone();
        migrate(
            s,
            ("imaps", &src),
            &t,
            &w.join("state"),
            &["--jobs", "1"],
            env,
        )
    };
    let observe = |w: &Path| {
        let t = targets.borrow()[w].clone();
        let state_file = w.join("state/mailkeep/uploads.sqlite");
        let o = Outcome {
            server: content(&server_state(s, &t, &[&["INBOX"], &["Sent"]])),
            uploads: super::run::uploads_state(&state_file),
            repeated_uploads: super::run::uploads_repeated_sources(&state_file),
            ..Outcome::default()
        };
        assert_eq!(o.server.values().map(Vec::len).sum::<usize>(), 6, "{o:#?}");
        o
    };
    kill_loop(s, "migrate imaps -> imaps", &mut fresh, &run, &observe)
}

/// POP3S backup with `--delete-after-backup` into a Maildir, killed after every ledger event:
/// every kill point has a source account of its own; nothing is lost, the source ends empty.
pub fn kill_pop3_backup_delete(kind: Kind) -> u64 {
    let s = RealServer::shared(kind);
    let tmp = tempfile::tempdir().unwrap();
    let sources: std::cell::RefCell<BTreeMap<PathBuf, Account>> = Default::default();
    let mut fresh = |tag: &str| {
        let dir = tmp.path().join(tag);
        std::fs::create_dir(&dir).unwrap();
        let src = s.add_user(&format!("killpop-{tag}"), "pop-pw");
        seed_kill(s, &src, false);
        sources.borrow_mut().insert(dir.clone(), src.clone());
        (dir, vec![src.name])
    };
    let run = |w: &Path, env: &[(&str, String)]| {
        let src = sources.borrow()[w].clone();
        let spec = format!("maildir:{}", w.join("archive").display());
        mailkeep_as(
            s,
            &src,
            &[
                "backup",
                &s.url("pop3s", &src),
                &spec,
                "--delete-after-backup",
            ],
            env,
        )
    };
    let observe = |w: &Path| {
        let src = sources.borrow()[w].clone();
        let archive = w.join("archive");
        let o = Outcome {
            archive: archive_files(&archive),
            ledger: ledger_state(&archive),
            server: content(&server_state(s, &src, &[&["INBOX"]])),
            ..Outcome::default()
        };
        assert_eq!(o.ledger.values().map(Vec::len).sum::<usize>(), 6, "{o:#?}");
        assert!(
            o.server.is_empty(),
            "deleted after the backup: {:?}",
            o.server
        );
        o
    };
    kill_loop(
        s,
        "backup pop3s -> maildir --delete-after-backup",
        &mut fresh,
        &run,
        &observe,
    )
}
