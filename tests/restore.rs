//! `mailkeep restore` against a real Dovecot with two users (issue 4): round trips through
//! Maildir and mbox (backup A, restore into empty B, backup B: same folders, bytes, flags,
//! keywords, INTERNALDATEs), reruns that append nothing (also after deleting the uploads
//! ledger), case 21 (messages without Message-ID, two identical), a message the server refuses,
//! `--dry-run`, and special-use mapping; a Netscape/Thunderbird folder (`thunderbird:` and
//! `mbox:`) with flags from `X-Mozilla-Status`; `imap://` with STARTTLS, and a plaintext-only
//! server refused without `--allow-plaintext`; `--jobs 4` against `--jobs 1`; and a run killed
//! before each of its ledger commits, rerun: every message on the server exactly once.
//!
//! The restore state goes to a per-test `XDG_STATE_HOME`; Dovecot's own Maildir files are
//! the truth about what the target holds.

mod support;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use mailkeep::core::endpoint::{Protocol, ServerSpec, TlsMode};
use mailkeep::core::message::normalize;
use mailkeep::protocol::imap::{ImapClient, ImapError, ImapOptions};
use mailkeep::protocol::net::TlsOptions;
use support::dovecot::{Dovecot, Options, User};
use support::run::{digests, ledger_state, wait_for_sessions_to_end, Run};

const PW_VAR: &str = "MAILKEEP_TEST_PASSWORD";

fn imaps(d: &Dovecot, u: &User) -> String {
    d.url("imaps", u)
}

fn backup(d: &Dovecot, u: &User, archive: &str) -> Run {
    let out = support::mailkeep()
        .args(["backup", &imaps(d, u), archive, "--json", "--tls-ca"])
        .arg(&d.ca_pem)
        .args(["--password-env", PW_VAR])
        .env(PW_VAR, &u.password)
        .output()
        .unwrap();
    Run::from_output(out)
}

/// `mailkeep restore ARCHIVE imaps://u@.. --json <extra>` with `XDG_STATE_HOME=state`.
fn restore(d: &Dovecot, u: &User, archive: &str, state: &Path, extra: &[&str]) -> Run {
    let out = support::mailkeep()
        .args(["restore", archive, &imaps(d, u), "--tls-ca"])
        .arg(&d.ca_pem)
        .args(["--password-env", PW_VAR])
        .args(extra)
        .env(PW_VAR, &u.password)
        .env("XDG_STATE_HOME", state)
        .output()
        .unwrap();
    Run::from_output(out)
}

fn state_file(state: &Path) -> PathBuf {
    state.join("mailkeep/uploads.sqlite")
}

fn sha(b: &[u8]) -> String {
    digests([b]).remove(0)
}

/// Per Maildir folder of an archive (relative directory): sorted (sha256 of the file, mtime).
fn maildir_files(root: &Path) -> BTreeMap<String, Vec<(String, i64)>> {
    use std::os::unix::fs::MetadataExt;
    let mut out: BTreeMap<String, Vec<(String, i64)>> = BTreeMap::new();
    let mut dirs = vec![root.to_path_buf()];
    while let Some(dir) = dirs.pop() {
        for e in std::fs::read_dir(&dir).unwrap().flatten() {
            let p = e.path();
            let name = e.file_name().to_string_lossy().into_owned();
            if !p.is_dir() || name == "mailkeep" {
                continue;
            }
            if name == "cur" || name == "new" {
                let rel = dir.strip_prefix(root).unwrap().display().to_string();
                for f in std::fs::read_dir(&p).unwrap().flatten() {
                    let md = f.metadata().unwrap();
                    let entry = out.entry(rel.clone()).or_default();
                    entry.push((sha(&std::fs::read(f.path()).unwrap()), md.mtime()));
                }
            } else if name != "tmp" {
                dirs.push(p);
            }
        }
    }
    for v in out.values_mut() {
        v.sort();
    }
    out
}

fn chown_like(path: &Path, like: &Path) {
    use std::os::unix::fs::MetadataExt;
    let md = std::fs::metadata(like).unwrap();
    let st = Command::new("chown")
        .arg("-R")
        .arg(format!("{}:{}", md.uid(), md.gid()))
        .arg(path)
        .status()
        .unwrap();
    assert!(st.success());
}

/// Asserts that `dir` holds the same files with the same bytes and mtimes as `before`,
/// naming the files that differ.
#[track_caller]
fn assert_same_tree(dir: &Path, before: &BTreeMap<String, (Vec<u8>, i64)>) {
    let now = support::run::snapshot(dir);
    let differ: Vec<&String> = now
        .keys()
        .chain(before.keys())
        .filter(|k| now.get(*k) != before.get(*k))
        .collect();
    let show: Vec<String> = differ
        .iter()
        .map(|k| {
            let len = |m: &BTreeMap<String, (Vec<u8>, i64)>| m.get(*k).map(|(b, t)| (b.len(), *t));
            format!("{k}: before {:?}, now {:?}", len(before), len(&now))
        })
        .collect();
    assert!(differ.is_empty(), "restore changed the archive: {show:?}");
}

const FOLDERS: [&str; 4] = ["INBOX", "Sent", "Archive/2023", "日本語/受信箱"];
const INFOS: [&str; 7] = ["", "S", "FS", "RS", "D", "FRS", "DS"];

/// Seeds `u` with every `step`-th corpus message (1: the whole corpus, 4,287 messages) across
/// [`FOLDERS`], with flags, the keywords `$Work`/`Later` in two folders, and known dates.
/// Returns the message count.
fn seed_account_every(u: &User, step: usize) -> usize {
    for f in ["INBOX", "Archive/2023"] {
        let dir = u.ensure_mailbox(f);
        let file = dir.join("dovecot-keywords");
        std::fs::write(&file, "0 $Work\n1 Later\n").unwrap();
        chown_like(&file, &dir);
    }
    let corpus = support::corpus::all();
    let mut n = 0;
    for (i, m) in corpus.iter().step_by(step).enumerate() {
        let folder = FOLDERS[(i * 3 + i / 7) % FOLDERS.len()];
        let mut info = INFOS[i % INFOS.len()].to_string();
        if folder == "INBOX" || folder == "Archive/2023" {
            if i % 4 == 0 {
                info.push('a');
            }
            if i % 5 == 1 {
                info.push('b');
            }
        }
        u.seed_message(
            folder,
            &m.raw,
            &info,
            Some(1_300_000_000 + i as i64 * 7_919),
        );
        n += 1;
    }
    n
}

/// The Dovecot message counts of `u` per [`FOLDERS`].
fn counts(u: &User) -> Vec<usize> {
    FOLDERS.iter().map(|f| u.message_count(f)).collect()
}

/// The whole corpus (issue 4): backup A, restore into empty B, backup B, compare; reruns,
/// also without the uploads ledger. Dovecot does not fsync here ([`no_fsync_dovecot`]):
/// durability on the server is not what is tested, and its fsyncs would be most of the time.
fn round_trip(kind: &str) {
    let d = no_fsync_dovecot();
    let a = d.add_user("alice", "alice-pw");
    let b = d.add_user("bob", "bob-pw");
    let total = seed_account_every(&a, 1) as u64;
    assert_eq!(total, support::corpus::CORPUS_TOTAL as u64);
    let tmp = tempfile::tempdir().unwrap();
    let state = tmp.path().join("state");
    let first = tmp.path().join("a");
    let second = tmp.path().join("b");
    let first_arg = format!("{kind}:{}", first.display());
    let second_arg = format!("{kind}:{}", second.display());

    backup(&d, &a, &first_arg).assert_code(0);
    let before = support::run::snapshot(&first);

    let run = restore(&d, &b, &first_arg, &state, &["--json"]);
    run.assert_code(0);
    assert_eq!(run.n("read"), total, "{run:#?}");
    assert_eq!(run.n("uploaded"), total, "{run:#?}");
    assert_eq!(run.n("already_present"), 0);
    assert_same_tree(&first, &before);
    let on_b = counts(&b);
    assert_eq!(on_b.iter().sum::<usize>() as u64, total);
    assert_eq!(on_b, counts(&a));

    backup(&d, &b, &second_arg).assert_code(0);
    let (sa, sb) = (ledger_state(&first), ledger_state(&second));
    assert_eq!(
        sa.keys().collect::<Vec<_>>(),
        sb.keys().collect::<Vec<_>>(),
        "folders differ"
    );
    for (mb, want) in &sa {
        assert_eq!(&sb[mb], want, "mailbox {mb}: bytes, flags or dates differ");
    }
    assert!(
        sa.values()
            .flatten()
            .any(|(_, f, _)| f.contains(&"$Work".to_string())),
        "keywords were seeded"
    );
    if kind == "maildir" {
        assert_eq!(maildir_files(&first), maildir_files(&second));
    }

    // A rerun appends nothing, and so does one after the uploads ledger is deleted.
    let again = restore(&d, &b, &first_arg, &state, &["--json"]);
    again.assert_code(0);
    assert_eq!(again.n("uploaded"), 0, "{again:#?}");
    assert_eq!(again.n("already_present"), total);
    assert_eq!(counts(&b), on_b);
    std::fs::remove_file(state_file(&state)).unwrap();
    let lost = restore(&d, &b, &first_arg, &state, &["--json"]);
    lost.assert_code(0);
    assert_eq!(lost.n("uploaded"), 0, "{lost:#?}");
    assert_eq!(lost.n("found_on_target"), total);
    assert_eq!(counts(&b), on_b);
    // ...and found messages are recorded: the next run needs no search.
    let third = restore(&d, &b, &first_arg, &state, &["--json"]);
    assert_eq!(third.n("found_on_target"), 0);
    assert_eq!(third.n("already_present"), total);
    assert_same_tree(&first, &before);
}

#[test]
fn round_trip_through_maildir_then_reruns_append_nothing() {
    round_trip("maildir");
}

#[test]
fn round_trip_through_mbox_then_reruns_append_nothing() {
    round_trip("mbox");
}

fn case21() -> PathBuf {
    support::corpus_dir().join("../cases/21-messages-without-message-id")
}

#[test]
fn case_21_messages_without_message_id_are_neither_merged_nor_duplicated() {
    let d = Dovecot::start();
    let b = d.add_user("bob", "bob-pw");
    let tmp = tempfile::tempdir().unwrap();
    let state = tmp.path().join("state");
    let mbox = case21().join("sent-items.mbox");
    let original = std::fs::read(&mbox).unwrap();
    let arg = format!("mbox:{}", mbox.display());
    let map = ["--json", "--map", "sent-items=Sent Items"];
    let expected = {
        let e =
            |n: u8| normalize(&std::fs::read(case21().join(format!("expected-{n}.eml"))).unwrap());
        let (e1, e2, e3) = (e(1), e(2), e(3));
        digests([&e1[..], &e2[..], &e3[..], &e3[..]])
    };
    let held = || {
        let msgs = b.messages("Sent Items");
        digests(msgs.iter().map(|m| &m[..]).collect::<Vec<_>>())
    };

    let first = restore(&d, &b, &arg, &state, &map);
    first.assert_code(0);
    assert_eq!(first.n("uploaded"), 4, "{first:#?}");
    assert_eq!(held(), expected);
    let second = restore(&d, &b, &arg, &state, &map);
    second.assert_code(0);
    assert_eq!(second.n("uploaded"), 0, "{second:#?}");
    assert_eq!(second.n("already_present"), 4);
    assert_eq!(held(), expected);
    // Without the ledger: found by size, date and content, one target message each.
    std::fs::remove_file(state_file(&state)).unwrap();
    let third = restore(&d, &b, &arg, &state, &map);
    third.assert_code(0);
    assert_eq!(third.n("uploaded"), 0, "{third:#?}");
    assert_eq!(third.n("found_on_target"), 4);
    assert_eq!(held(), expected);
    assert!(third.report["failures"].as_array().unwrap().is_empty());
    assert_eq!(
        std::fs::read(&mbox).unwrap(),
        original,
        "the archive changed"
    );
    assert_eq!(
        sha(&original),
        "f4ac4e342471d2ccb7210aa6854584a5653c0f13bdcf8ecf0aa35ad6f020fced"
    );
}

#[test]
fn a_refused_message_is_reported_and_the_others_are_uploaded() {
    let d = Dovecot::start_with(Options {
        extra_config: "mail_plugins = $mail_plugins quota\nplugin {\n  quota = count:User quota\n  quota_vsizes = yes\n  quota_max_mail_size = 20k\n}\n".into(),
        ..Options::default()
    });
    let b = d.add_user("bob", "bob-pw");
    let tmp = tempfile::tempdir().unwrap();
    let eml = tmp.path().join("export");
    std::fs::create_dir_all(eml.join("Scans")).unwrap();
    let small = |n: u32| {
        format!("From: a@example.org\nSubject: small {n}\nDate: Mon, 10 Mar 2025 07:00:00 +0100\nMessage-ID: <s{n}@example.org>\n\nhello\n")
    };
    std::fs::write(eml.join("Scans/1.eml"), small(1)).unwrap();
    let big = format!(
        "From: a@example.org\nSubject: big\nDate: Mon, 10 Mar 2025 07:00:00 +0100\n\n{}",
        ("y".repeat(75) + "\n").repeat(600)
    );
    std::fs::write(eml.join("Scans/2.eml"), big).unwrap();
    std::fs::write(eml.join("Scans/3.eml"), small(3)).unwrap();
    let state = tmp.path().join("state");
    let arg = format!("eml:{}", eml.display());

    let run = restore(&d, &b, &arg, &state, &["--json"]);
    run.assert_code(1);
    assert_eq!(run.n("uploaded"), 2, "{run:#?}");
    assert_eq!(run.n("failed"), 1);
    let failures = run.report["failures"].as_array().unwrap();
    assert_eq!(failures.len(), 1, "{run:#?}");
    assert_eq!(failures[0]["mailbox"], "Scans");
    assert!(
        failures[0]["message"].as_str().unwrap().ends_with("2.eml"),
        "{failures:?}"
    );
    assert_eq!(b.message_count("Scans"), 2);
    assert_eq!(run.report["exit"], "partial");

    // The rerun tries the refused one again (it is not recorded) and nothing else.
    let again = restore(&d, &b, &arg, &state, &["--json"]);
    again.assert_code(1);
    assert_eq!(again.n("uploaded"), 0);
    assert_eq!(again.n("already_present"), 2);
    assert_eq!(b.message_count("Scans"), 2);
}

#[test]
fn dry_run_changes_nothing_and_special_use_folders_map_onto_the_targets() {
    let d = Dovecot::start_with(Options {
        extra_config: "namespace inbox {\n  inbox = yes\n  mailbox Gesendet {\n    special_use = \\Sent\n    auto = create\n  }\n}\n".into(),
        ..Options::default()
    });
    let b = d.add_user("bob", "bob-pw");
    let tmp = tempfile::tempdir().unwrap();
    let eml = tmp.path().join("export");
    for (dir, n) in [("Sent Items", 2), ("INBOX", 1), ("Projects/2024", 1)] {
        std::fs::create_dir_all(eml.join(dir)).unwrap();
        for i in 0..n {
            std::fs::write(
                eml.join(dir).join(format!("{i}.eml")),
                format!("From: a@example.org\nSubject: {dir} {i}\nDate: Mon, 10 Mar 2025 07:00:00 +0100\nMessage-ID: <{i}.{}@example.org>\n\nbody\n", dir.len()),
            )
            .unwrap();
        }
    }
    let state = tmp.path().join("state");
    let arg = format!("eml:{}", eml.display());
    let listed_before = support::run::snapshot(&b.maildir);

    let plan = restore(&d, &b, &arg, &state, &["--dry-run"]);
    plan.assert_code(0);
    assert!(plan.stdout.contains("Sent Items"), "{plan:#?}");
    assert!(
        plan.stdout.contains("-> Gesendet (special-use)"),
        "{plan:#?}"
    );
    assert!(plan.stdout.contains("[create]"), "{plan:#?}");
    assert!(plan.stdout.contains("4 to upload"), "{plan:#?}");
    assert!(plan.stdout.contains("nothing was changed"), "{plan:#?}");
    let json = restore(&d, &b, &arg, &state, &["--dry-run", "--json"]);
    json.assert_code(0);
    assert_eq!(json.n("to_upload"), 4);
    assert_eq!(json.n("uploaded"), 0);
    assert!(!state.exists(), "a dry run wrote the state");
    assert_eq!(b.message_count("INBOX"), 0);
    assert!(
        !b.mailbox_dir("Projects/2024").exists(),
        "a dry run created a folder"
    );
    // Dovecot's index files may change on reads; message files and folders do not.
    let files = |s: &BTreeMap<String, (Vec<u8>, i64)>| {
        s.keys()
            .filter(|k| k.contains("/cur/") || k.contains("/new/") || k.starts_with("cur/"))
            .cloned()
            .collect::<Vec<_>>()
    };
    assert_eq!(
        files(&support::run::snapshot(&b.maildir)),
        files(&listed_before)
    );

    let run = restore(&d, &b, &arg, &state, &["--json"]);
    run.assert_code(0);
    assert_eq!(run.n("uploaded"), 4, "{run:#?}");
    assert_eq!(b.message_count("Gesendet"), 2);
    assert_eq!(b.message_count("Projects/2024"), 1);
    assert_eq!(b.message_count("INBOX"), 1);
    assert!(!b.mailbox_dir("Sent Items").exists());
    let plan = restore(&d, &b, &arg, &state, &["--dry-run", "--json"]);
    assert_eq!(plan.n("to_upload"), 0);
    assert_eq!(plan.n("already_present"), 4);
}

// ---------------------------------------------------------------------------------------------
// Thunderbird, STARTTLS, --jobs, kill at every commit.
// ---------------------------------------------------------------------------------------------

/// `mailkeep restore ARCHIVE TARGET_URL --tls-ca .. --password-env .. <extra>` with
/// `XDG_STATE_HOME=state` and the environment `env`.
fn restore_to(
    d: &Dovecot,
    u: &User,
    url: &str,
    archive: &str,
    state: &Path,
    extra: &[&str],
    env: &[(&str, &str)],
) -> Run {
    let out = support::mailkeep()
        .args(["restore", archive, url, "--tls-ca"])
        .arg(&d.ca_pem)
        .args(["--password-env", PW_VAR])
        .args(extra)
        .env(PW_VAR, &u.password)
        .env("XDG_STATE_HOME", state)
        .envs(env.iter().copied())
        .output()
        .unwrap();
    Run::from_output(out)
}

#[track_caller]
fn login(d: &Dovecot, u: &User) -> ImapClient {
    let spec = ServerSpec {
        protocol: Protocol::Imap,
        tls: TlsMode::Implicit,
        user: u.name.clone(),
        host: "127.0.0.1".into(),
        port: d.imaps_port,
    };
    let opts = ImapOptions {
        tls: TlsOptions {
            ca_file: Some(d.ca_pem.clone()),
            ..TlsOptions::default()
        },
        ..ImapOptions::default()
    };
    let mut c = ImapClient::connect(&spec, &opts).unwrap();
    c.login(&u.name, &u.password).unwrap();
    c
}

/// One message on the server: SHA-256 of its bytes with LF line ends, its flags and keywords
/// (sorted, space-separated), its INTERNALDATE.
type Held = (String, String, i64);

/// What `u` holds, read over IMAP: per selectable mailbox (decoded name), its messages in UID
/// order.
fn server_state(d: &Dovecot, u: &User) -> BTreeMap<String, Vec<Held>> {
    let mut c = login(d, u);
    let mut out = BTreeMap::new();
    for mb in c.list_mailboxes().unwrap() {
        if !mb.selectable {
            continue;
        }
        c.examine(&mb).unwrap();
        let uids: Vec<u32> = c
            .list_messages(None)
            .unwrap()
            .iter()
            .map(|l| l.uid)
            .collect();
        let mut held = Vec::new();
        c.fetch_bodies::<ImapError>(&uids, &mut |f| {
            let mut flags: Vec<String> = f
                .flags
                .to_imap_list()
                .split_whitespace()
                .map(str::to_string)
                .collect();
            flags.sort();
            held.push((
                f.uid,
                (
                    sha(&normalize(f.body)),
                    flags.join(" "),
                    f.internal_date.expect("Dovecot sends a valid INTERNALDATE"),
                ),
            ));
            Ok(())
        })
        .unwrap();
        held.sort_by_key(|(uid, _)| *uid);
        out.insert(
            mb.name.to_string(),
            held.into_iter().map(|(_, h)| h).collect(),
        );
    }
    c.logout().unwrap();
    out
}

/// Per mailbox, the sorted SHA-256 digests of what `state` holds.
fn digests_of(state: &BTreeMap<String, Vec<Held>>) -> BTreeMap<String, Vec<String>> {
    state
        .iter()
        .map(|(mb, v)| {
            let mut d: Vec<String> = v.iter().map(|h| h.0.clone()).collect();
            d.sort();
            (mb.clone(), d)
        })
        .collect()
}

/// A plain Maildir++ tree written by the test (not a mailkeep archive: no ledger), so the
/// restore takes flags from the info letters and INTERNALDATE from the file time.
struct MaildirTree {
    root: PathBuf,
    n: usize,
    /// Per folder, the sorted SHA-256 digests of what was written.
    written: BTreeMap<String, Vec<String>>,
}

impl MaildirTree {
    fn new(root: &Path) -> Self {
        MaildirTree {
            root: root.to_path_buf(),
            n: 0,
            written: BTreeMap::new(),
        }
    }

    /// The folder's directory: the root for INBOX, else `.A.B` for `A/B` (`wire` is the
    /// level names already in modified UTF-7, joined with `.`).
    fn dir(&self, wire: &str) -> PathBuf {
        let dir = if wire == "INBOX" {
            self.root.clone()
        } else {
            self.root.join(format!(".{wire}"))
        };
        for sub in ["cur", "new", "tmp"] {
            std::fs::create_dir_all(dir.join(sub)).unwrap();
        }
        dir
    }

    /// Writes `raw` into `folder` (decoded name, as the server will show it; `wire` its
    /// directory form) with the info letters `info` and mtime `secs`.
    fn put(&mut self, folder: &str, wire: &str, raw: &[u8], info: &str, secs: i64) {
        let dir = self.dir(wire);
        self.n += 1;
        let file = dir
            .join("cur")
            .join(format!("{:06}.M{}P1.test:2,{info}", self.n, self.n));
        let f = std::fs::File::create(&file).unwrap();
        std::io::Write::write_all(&mut &f, raw).unwrap();
        f.set_modified(std::time::UNIX_EPOCH + std::time::Duration::from_secs(secs as u64))
            .unwrap();
        let entry = self.written.entry(folder.to_string()).or_default();
        entry.push(sha(&normalize(raw)));
        entry.sort();
    }

    fn total(&self) -> u64 {
        self.written.values().map(|v| v.len() as u64).sum()
    }
}

/// Corpus messages that survive an IMAP round trip byte for byte once their line ends are
/// LF: from the Maildir section, without CR, NUL or a leading `From ` line.
fn plain_messages() -> Vec<Vec<u8>> {
    support::corpus::all()
        .into_iter()
        .filter(|m| m.origin.starts_with("maildir/"))
        .map(|m| m.raw)
        .filter(|r| !r.contains(&b'\r') && !r.contains(&0) && !r.starts_with(b"From "))
        .collect()
}

/// `shared/corpus/MANIFEST.sha256` for the Netscape folder.
const NETSCAPE_SHA256: &str = "541340c8c17def55b08c6953d3497e427ab97f488013357e35728cd1ef6f252d";

/// The Netscape 3 folder of the corpus (29 messages, `From - ` separators, X-Mozilla-Status
/// in the middle of the header, unreliable Content-Length), with five status values changed
/// (same length, so nothing else moves) to cover what the original does not have: three
/// messages Thunderbird marked expunged (0x0008), one replied to (0x0002), one forwarded
/// (0x1000).
fn thunderbird_folder() -> Vec<u8> {
    let file =
        support::corpus_dir().join("public-mbox/netscape-1996_from-dash_content-length.mbox");
    let data = std::fs::read(file).unwrap();
    assert_eq!(sha(&data), NETSCAPE_SHA256, "the corpus file changed");
    let mut out = Vec::with_capacity(data.len());
    let mut k = 0;
    for line in data.split_inclusive(|&b| b == b'\n') {
        if line.starts_with(b"X-Mozilla-Status: ") {
            let new: Option<&[u8]> = match k {
                2 | 12 => Some(b"X-Mozilla-Status: 0009\n"),
                21 => Some(b"X-Mozilla-Status: 000d\n"),
                14 => Some(b"X-Mozilla-Status: 0003\n"),
                24 => Some(b"X-Mozilla-Status: 1001\n"),
                _ => None,
            };
            k += 1;
            if let Some(n) = new {
                assert_eq!(n.len(), line.len());
                out.extend_from_slice(n);
                continue;
            }
        }
        out.extend_from_slice(line);
    }
    out
}

/// What a Mozilla mail folder should give, computed from the file alone: split at `From - `
/// lines; per message, the `X-Mozilla-Status` bits (read 0x0001 `\Seen`, replied 0x0002
/// `\Answered`, marked 0x0004 `\Flagged`, expunged 0x0008, forwarded 0x1000 `$Forwarded`);
/// the message itself is the lines after the separator without the X-Mozilla-Status line,
/// and without the empty line that precedes the next separator (it belongs to the
/// separator). With `mboxrd` (how `mbox:` reads), one `>` is removed from lines matching
/// `^>+From ` (Netscape quoted a `From - ` line in a forwarded message as `>From - `);
/// `thunderbird:` reads mboxo and keeps them. Returns (expunged count, per kept message in file
/// order (sha256, flags)).
fn mozilla_expectation(data: &[u8], mboxrd: bool) -> (usize, Vec<(String, String)>) {
    let lines: Vec<&[u8]> = data.split_inclusive(|&b| b == b'\n').collect();
    let starts: Vec<usize> = (0..lines.len())
        .filter(|&i| lines[i].starts_with(b"From - "))
        .collect();
    let mut expunged = 0;
    let mut kept = Vec::new();
    for (k, &s) in starts.iter().enumerate() {
        let end = starts.get(k + 1).copied().unwrap_or(lines.len());
        let mut body: Vec<&[u8]> = lines[s + 1..end].to_vec();
        if k + 1 < starts.len() && body.last() == Some(&&b"\n"[..]) {
            body.pop();
        }
        let header_end = body.iter().position(|l| *l == b"\n").unwrap_or(body.len());
        let status = body[..header_end]
            .iter()
            .position(|l| l.starts_with(b"X-Mozilla-Status: "));
        let bits = status.map_or(0, |i| {
            let v = String::from_utf8_lossy(&body[i][18..]).trim().to_string();
            u32::from_str_radix(&v, 16).unwrap()
        });
        if bits & 0x0008 != 0 {
            expunged += 1;
            continue;
        }
        if let Some(i) = status {
            body.remove(i);
        }
        let mut flags = Vec::new();
        for (bit, name) in [
            (0x0001, "\\Seen"),
            (0x0002, "\\Answered"),
            (0x0004, "\\Flagged"),
            (0x1000, "$Forwarded"),
        ] {
            if bits & bit != 0 {
                flags.push(name.to_string());
            }
        }
        flags.sort();
        let unquoted: Vec<&[u8]> = body
            .iter()
            .map(|l| {
                let quotes = l.iter().take_while(|&&b| b == b'>').count();
                if mboxrd && quotes > 0 && l[quotes..].starts_with(b"From ") {
                    &l[1..]
                } else {
                    l
                }
            })
            .collect();
        kept.push((sha(&unquoted.concat()), flags.join(" ")));
    }
    (expunged, kept)
}

#[test]
fn thunderbird_folder_restores_with_mozilla_flags_and_skips_expunged_messages() {
    let data = thunderbird_folder();
    let (expunged, kept) = mozilla_expectation(&data, false);
    assert_eq!((expunged, kept.len()), (3, 26), "the fixture");
    let (_, kept_mboxrd) = mozilla_expectation(&data, true);
    let differ = kept
        .iter()
        .zip(&kept_mboxrd)
        .filter(|(a, b)| a != b)
        .count();
    assert_eq!(differ, 2, "two messages have a `>From - ` line");
    let d = Dovecot::start();
    let tmp = tempfile::tempdir().unwrap();
    let local = tmp.path().join("profile/Mail/Local Folders");
    std::fs::create_dir_all(&local).unwrap();
    std::fs::write(local.join("Inbox"), &data).unwrap();
    let file = tmp.path().join("netscape.mbox");
    std::fs::write(&file, &data).unwrap();

    for (user, archive, mailbox, want) in [
        (
            "tb",
            format!("thunderbird:{}", local.display()),
            "INBOX",
            &kept,
        ),
        (
            "mb",
            format!("mbox:{}", file.display()),
            "netscape",
            &kept_mboxrd,
        ),
    ] {
        let u = d.add_user(user, "pw");
        let state = tmp.path().join(format!("state-{user}"));
        let run = restore(&d, &u, &archive, &state, &["--json"]);
        run.assert_code(0);
        assert_eq!(run.n("read"), 26, "{archive}: {run:#?}");
        assert_eq!(run.n("uploaded"), 26, "{archive}");
        assert_eq!(run.n("skipped"), 3, "{archive}");
        let warnings = run.report["warnings"].to_string();
        assert!(
            warnings.contains("3 message(s) skipped") && warnings.contains("mozilla-deleted"),
            "{archive}: {warnings}"
        );
        let held = server_state(&d, &u);
        let want_boxes = if mailbox == "INBOX" {
            vec!["INBOX"]
        } else {
            vec!["INBOX", mailbox]
        };
        assert_eq!(held.keys().collect::<Vec<_>>(), want_boxes, "{archive}");
        let got: Vec<(String, String)> = held[mailbox]
            .iter()
            .map(|(s, f, _)| (s.clone(), f.clone()))
            .collect();
        assert_eq!(
            &got, want,
            "{archive}: bytes or flags differ, in file order"
        );
        assert_eq!(u.message_count(mailbox), 26);
    }
}

fn small_eml_export(dir: &Path) -> String {
    std::fs::create_dir_all(dir.join("INBOX")).unwrap();
    for i in 0..3 {
        std::fs::write(
            dir.join(format!("INBOX/{i}.eml")),
            format!("From: a@example.org\nSubject: tls {i}\nDate: Mon, 10 Mar 2025 07:00:00 +0100\nMessage-ID: <tls{i}@example.org>\n\nbody {i}\n"),
        )
        .unwrap();
    }
    format!("eml:{}", dir.display())
}

#[test]
fn imap_url_uses_starttls_and_a_plaintext_only_server_needs_allow_plaintext() {
    let tmp = tempfile::tempdir().unwrap();
    let arg = small_eml_export(&tmp.path().join("export"));

    let d = Dovecot::start();
    let u = d.add_user("bob", "bob-pw");
    let run = restore_to(
        &d,
        &u,
        &d.url("imap", &u),
        &arg,
        &tmp.path().join("s1"),
        &["--json"],
        &[],
    );
    run.assert_code(0);
    assert_eq!(run.n("uploaded"), 3, "{run:#?}");
    assert_eq!(u.message_count("INBOX"), 3);
    let log = d.log();
    let login = log.lines().find(|l| l.contains("Login: user=<bob>"));
    assert!(
        login.is_some_and(|l| l.contains(", TLS")),
        "no TLS login in the Dovecot log: {login:?}"
    );

    let plain = Dovecot::start_without_starttls();
    let p = plain.add_user("carol", "carol-pw");
    let url = plain.url("imap", &p);
    let refused = restore_to(&plain, &p, &url, &arg, &tmp.path().join("s2"), &[], &[]);
    refused.assert_code(4);
    refused.assert_one_line_error(&["carol@127.0.0.1", "without TLS", "--allow-plaintext"]);
    assert_eq!(p.message_count("INBOX"), 0);
    assert!(
        !plain.log().contains("Login: user=<carol>"),
        "the password was sent"
    );
    let allowed = restore_to(
        &plain,
        &p,
        &url,
        &arg,
        &tmp.path().join("s2"),
        &["--json", "--allow-plaintext"],
        &[],
    );
    allowed.assert_code(0);
    assert_eq!(allowed.n("uploaded"), 3, "{allowed:#?}");
    assert_eq!(p.message_count("INBOX"), 3);
}

/// (decoded folder, directory form, messages, info letters cycle). `Sent Items` is mapped onto
/// `Sent` (two source mailboxes, one target); `Archive` itself is not in the archive, so its
/// children's parents are created while other connections create theirs.
const JOB_FOLDERS: [(&str, &str, usize); 8] = [
    ("INBOX", "INBOX", 40),
    ("Sent", "Sent", 30),
    ("Sent Items", "Sent Items", 20),
    ("Archive/2023", "Archive.2023", 30),
    ("Archive/2023/Q1", "Archive.2023.Q1", 15),
    ("Archive/2024", "Archive.2024", 25),
    ("日本語", "&ZeVnLIqe-", 15),
    ("Drafts", "Drafts", 10),
];

/// A Dovecot that does not fsync what it stores (`mail_fsync = never`): these tests kill
/// processes, not the machine, and Dovecot's two or three fsyncs per APPEND would be most of
/// their time.
fn no_fsync_dovecot() -> Dovecot {
    Dovecot::start_with(Options {
        extra_config: "mail_fsync = never\n".into(),
        ..Options::default()
    })
}

#[test]
fn jobs_4_gives_the_same_server_contents_as_jobs_1_and_a_rerun_appends_nothing() {
    let msgs = plain_messages();
    let tmp = tempfile::tempdir().unwrap();
    let mut tree = MaildirTree::new(&tmp.path().join("archive"));
    let infos = ["", "S", "FS", "RS", "D", "Sab", "Sa", "T"];
    let mut k = 0;
    for (folder, wire, n) in JOB_FOLDERS {
        if folder == "INBOX" {
            std::fs::create_dir_all(&tree.root).unwrap();
            std::fs::write(tree.root.join("dovecot-keywords"), "0 $Work\n1 Later\n").unwrap();
        }
        let target = if folder == "Sent Items" {
            "Sent"
        } else {
            folder
        };
        for _ in 0..n {
            let info = infos[k % infos.len()];
            let info = if folder == "INBOX" {
                info
            } else {
                info.trim_end_matches(['a', 'b'])
            };
            tree.put(
                target,
                wire,
                &msgs[k % msgs.len()],
                info,
                1_400_000_000 + k as i64 * 3_601,
            );
            k += 1;
        }
    }
    let total = tree.total();
    assert_eq!(total, 185);
    let arg = format!("maildir:{}", tree.root.display());
    let map = ["--map", "Sent Items=Sent"];

    let d = no_fsync_dovecot();
    let mut states = Vec::new();
    for jobs in ["1", "4"] {
        let u = d.add_user(&format!("jobs{jobs}"), "pw");
        let state = tmp.path().join(format!("state{jobs}"));
        let run = restore(
            &d,
            &u,
            &arg,
            &state,
            &["--json", "--jobs", jobs, map[0], map[1]],
        );
        run.assert_code(0);
        assert_eq!(run.n("uploaded"), total, "--jobs {jobs}: {run:#?}");
        assert_eq!(run.n("deleted_flag_dropped"), 23, "--jobs {jobs}");
        let order: Vec<&str> = run.report["mailboxes"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m["mailbox"].as_str().unwrap())
            .collect();
        assert_eq!(
            order,
            [
                "Archive/2023",
                "Archive/2023/Q1",
                "Archive/2024",
                "Drafts",
                "INBOX",
                "Sent",
                "Sent Items",
                "日本語"
            ],
            "--jobs {jobs}: the report is in archive order"
        );
        let held = server_state(&d, &u);
        let mut want = tree.written.clone();
        want.insert("Archive".into(), Vec::new());
        assert_eq!(
            digests_of(&held),
            want,
            "--jobs {jobs}: messages per folder"
        );
        // A rerun with as many connections appends nothing.
        let again = restore(
            &d,
            &u,
            &arg,
            &state,
            &["--json", "--jobs", jobs, map[0], map[1]],
        );
        again.assert_code(0);
        assert_eq!(again.n("uploaded"), 0, "--jobs {jobs}: {again:#?}");
        assert_eq!(again.n("already_present"), total);
        assert_eq!(
            server_state(&d, &u),
            held,
            "--jobs {jobs}: the rerun changed the server"
        );
        states.push(held);
    }
    // Same folders, and in each the same messages in the same order (UIDs follow the
    // archive), with the same flags, keywords and INTERNALDATEs.
    assert_eq!(states[0], states[1]);
    let inbox = &states[1]["INBOX"];
    assert!(inbox
        .iter()
        .any(|(_, f, _)| f.contains("$Work") && f.contains("Later")));
    assert!(states[1]
        .values()
        .flatten()
        .all(|(_, f, _)| !f.contains("Deleted")));
    // Four connections did the work.
    let logins = d.log().matches("Login: user=<jobs4>").count();
    assert!(logins >= 4 * 2, "{logins} logins of jobs4");
}

#[test]
fn a_run_killed_before_any_commit_then_rerun_holds_every_message_exactly_once() {
    // 170 messages in three folders (batches of 50: 3 + 1 + 1 commits with --jobs 1), with
    // the case 21 messages (no Message-ID, two of them identical) in the second batch of INBOX.
    let msgs = plain_messages();
    let tmp = tempfile::tempdir().unwrap();
    let mut tree = MaildirTree::new(&tmp.path().join("archive"));
    let put = |tree: &mut MaildirTree, folder: &str, range: std::ops::Range<usize>, info: &str| {
        for (i, raw) in msgs[range.clone()].iter().enumerate() {
            let date = 1_500_000_000 + (range.start + i) as i64 * 60;
            tree.put(folder, folder, raw, info, date);
        }
    };
    put(&mut tree, "INBOX", 0..56, "S");
    for (i, n) in [1, 2, 3, 3].into_iter().enumerate() {
        let raw = std::fs::read(case21().join(format!("expected-{n}.eml"))).unwrap();
        // The two copies of expected-3 are one message twice: same date too.
        let date = 1_600_000_000 + i.min(2) as i64;
        tree.put("INBOX", "INBOX", &raw, "S", date);
    }
    put(&mut tree, "INBOX", 100..160, "");
    put(&mut tree, "Work", 200..230, "F");
    put(&mut tree, "Sent", 160..180, "S");
    let total = tree.total();
    assert_eq!(total, 170);
    let arg = format!("maildir:{}", tree.root.display());
    let want = tree.written.clone();
    let d = no_fsync_dovecot();

    let mut commits = None;
    for (jobs, max_kills) in [("1", usize::MAX), ("3", 3)] {
        for n in 0..max_kills {
            let u = d.add_user(&format!("k{jobs}x{n}"), "pw");
            let state = tmp.path().join(format!("state-{jobs}-{n}"));
            let kill = n.to_string();
            let env = [("MAILKEEP_TEST_KILL_AFTER_EVENTS", kill.as_str())];
            let url = d.url("imaps", &u);
            let extra = ["--json", "--jobs", jobs];
            let log_from = d.log().len();
            let killed = restore_to(&d, &u, &url, &arg, &state, &extra, &env);
            if killed.code == 0 {
                assert_eq!(
                    jobs, "1",
                    "--jobs 3 killed after {n} commits was not killed"
                );
                assert_eq!(killed.n("uploaded"), total, "{killed:#?}");
                commits = Some(n);
                break;
            }
            assert_eq!(
                killed.code, 137,
                "--jobs {jobs}, killed after {n}: {killed:#?}"
            );
            wait_for_sessions_to_end(&d, &u.name, log_from);
            let rerun = restore_to(&d, &u, &url, &arg, &state, &["--json", "--jobs", jobs], &[]);
            rerun.assert_code(0);
            assert_eq!(
                rerun.n("already_present") + rerun.n("uploaded"),
                total,
                "--jobs {jobs}, killed after {n}: {rerun:#?}"
            );
            // The batch appended but not recorded is found, not appended again.
            assert!(
                rerun.n("found_on_target") > 0,
                "--jobs {jobs}, killed after {n}: {rerun:#?}"
            );
            let held = server_state(&d, &u);
            assert_eq!(digests_of(&held), want, "--jobs {jobs}, killed after {n}");
            for f in want.keys() {
                assert_eq!(u.message_count(f), want[f].len(), "{f}");
            }
        }
    }
    assert_eq!(commits, Some(5), "commits of an uninterrupted --jobs 1 run");
    println!("kill points covered: restore maildir->imap --jobs 1 5");
    println!("kill points covered: restore maildir->imap --jobs 3 3 (the first three)");
}

#[test]
fn a_copy_added_to_the_archive_after_its_twin_was_uploaded_is_uploaded_too() {
    // The kill loop above found this (one run in six, --jobs 3): a message recorded as
    // uploaded, then an identical message of the archive not uploaded yet. The second one
    // must not be taken for the first one's copy on the server (it was reported present and
    // never uploaded). Deterministic here: the twin is added to the archive between runs.
    let msgs = plain_messages();
    let tmp = tempfile::tempdir().unwrap();
    let mut tree = MaildirTree::new(&tmp.path().join("archive"));
    tree.put("INBOX", "INBOX", &msgs[0], "S", 1_500_000_000);
    tree.put("INBOX", "INBOX", &msgs[1], "", 1_500_000_060);
    let arg = format!("maildir:{}", tree.root.display());
    let d = no_fsync_dovecot();
    let u = d.add_user("twins", "pw");
    let url = d.url("imaps", &u);
    let state = tmp.path().join("state");
    let first = restore_to(&d, &u, &url, &arg, &state, &["--json"], &[]);
    first.assert_code(0);
    assert_eq!(first.n("uploaded"), 2, "{first:#?}");
    // The same bytes again, as a later message (another file, another date).
    tree.put("INBOX", "INBOX", &msgs[0], "", 1_600_000_000);
    let again = restore_to(&d, &u, &url, &arg, &state, &["--json"], &[]);
    again.assert_code(0);
    assert_eq!(again.n("uploaded"), 1, "{again:#?}");
    assert_eq!(again.n("already_present"), 2, "{again:#?}");
    assert_eq!(again.n("found_on_target"), 0, "{again:#?}");
    let held = server_state(&d, &u);
    assert_eq!(digests_of(&held), tree.written);
    // And nothing more on a third run.
    let third = restore_to(&d, &u, &url, &arg, &state, &["--json"], &[]);
    third.assert_code(0);
    assert_eq!(third.n("uploaded"), 0, "{third:#?}");
    assert_eq!(digests_of(&server_state(&d, &u)), tree.written);
}

#[test]
fn dovecot_gets_a_batch_in_one_multiappend_with_every_uid_recorded() {
    // Dovecot offers MULTIAPPEND (RFC 3502): a batch goes as one APPEND command (one server
    // transaction) and the tagged OK's APPENDUID set gives every message its UID.
    let msgs = plain_messages();
    let tmp = tempfile::tempdir().unwrap();
    let mut tree = MaildirTree::new(&tmp.path().join("archive"));
    for (i, raw) in msgs[..30].iter().enumerate() {
        let info = ["S", "", "FS"][i % 3];
        tree.put("INBOX", "INBOX", raw, info, 1_500_000_000 + i as i64 * 60);
    }
    let arg = format!("maildir:{}", tree.root.display());
    let d = no_fsync_dovecot();
    let u = d.add_user("multi", "pw");
    let url = d.url("imaps", &u);
    let state = tmp.path().join("state");
    let r = restore_to(&d, &u, &url, &arg, &state, &["--json", "--trace"], &[]);
    r.assert_code(0);
    assert_eq!(r.n("uploaded"), 30, "{r:#?}");
    let stderr = &r.stderr;
    let appends: Vec<&str> = stderr
        .lines()
        .filter(|l| l.contains(" C: ") && l.contains(" APPEND "))
        .collect();
    assert_eq!(
        appends.len(),
        1,
        "one APPEND command for the batch: {appends:#?}"
    );
    let done: Vec<&str> = stderr
        .lines()
        .filter(|l| l.contains(" S: ") && l.contains("[APPENDUID "))
        .collect();
    assert_eq!(done.len(), 1, "{done:#?}");
    assert!(done[0].contains(" 1:30]"), "{done:#?}");
    // Every upload is recorded with its own UID (1..30, in order).
    let conn = rusqlite::Connection::open(state_file(&state)).unwrap();
    let uids: Vec<u32> = conn
        .prepare("SELECT uid FROM uploads ORDER BY id")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    assert_eq!(uids, (1..=30).collect::<Vec<u32>>());
    // Bytes, flags and dates as in the archive.
    let held = server_state(&d, &u);
    assert_eq!(digests_of(&held), tree.written);
    let inbox = &held["INBOX"];
    let seen = inbox
        .iter()
        .filter(|(_, f, _)| f.contains("\\Seen"))
        .count();
    let flagged = inbox
        .iter()
        .filter(|(_, f, _)| f.contains("\\Flagged"))
        .count();
    assert_eq!((seen, flagged), (20, 10));
}

#[test]
fn a_batch_left_in_flight_is_waited_for_and_its_marker_removed() {
    // A run that dies with a batch in flight leaves a marker beside the uploads ledger; the
    // server may still be storing that batch. The next run waits until the mailbox's STATUS
    // stops changing before it lists it, then removes the marker. A clean run leaves none.
    let msgs = plain_messages();
    let tmp = tempfile::tempdir().unwrap();
    let mut tree = MaildirTree::new(&tmp.path().join("archive"));
    for (i, raw) in msgs[..60].iter().enumerate() {
        tree.put("INBOX", "INBOX", raw, "S", 1_500_000_000 + i as i64 * 60);
    }
    let arg = format!("maildir:{}", tree.root.display());
    let d = no_fsync_dovecot();
    let u = d.add_user("inflight", "pw");
    let url = d.url("imaps", &u);
    let state = tmp.path().join("state");
    let markers = |state: &Path| -> Vec<String> {
        let dir = state_file(state).parent().unwrap().to_path_buf();
        std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| n.starts_with("restore-inflight."))
            .collect()
    };
    let first = restore_to(&d, &u, &url, &arg, &state, &["--json"], &[]);
    first.assert_code(0);
    assert_eq!(first.n("uploaded"), 60);
    assert_eq!(markers(&state), Vec::<String>::new());
    // A run with nothing to upload writes no marker (and records nothing, so the kill switch
    // at the first ledger event never fires). Then one new message, and a run killed after
    // its APPEND was answered, before it was recorded: its marker stays; the rerun waits for
    // the mailbox to settle, finds the message, and removes the marker.
    let dir = state_file(&state).parent().unwrap().to_path_buf();
    let killed = restore_to(
        &d,
        &u,
        &url,
        &arg,
        &state,
        &["--json"],
        &[("MAILKEEP_TEST_KILL_AFTER_EVENTS", "0")],
    );
    assert_eq!(
        killed.code, 0,
        "nothing to record, so nothing to kill: {killed:#?}"
    );
    tree.put("INBOX", "INBOX", &msgs[70], "", 1_600_000_000);
    let killed = restore_to(
        &d,
        &u,
        &url,
        &arg,
        &state,
        &["--json"],
        &[("MAILKEEP_TEST_KILL_AFTER_EVENTS", "0")],
    );
    assert_eq!(killed.code, 137, "{killed:#?}");
    let left = markers(&state);
    assert_eq!(left.len(), 1, "the killed run's marker: {left:?}");
    let started = std::time::Instant::now();
    let rerun = restore_to(&d, &u, &url, &arg, &state, &["--json"], &[]);
    rerun.assert_code(0);
    assert!(
        started.elapsed() >= std::time::Duration::from_millis(1500),
        "the rerun did not wait for the mailbox to settle"
    );
    assert_eq!(
        rerun.n("uploaded") + rerun.n("already_present"),
        61,
        "{rerun:#?}"
    );
    assert_eq!(rerun.n("found_on_target"), 1, "{rerun:#?}");
    assert_eq!(markers(&state), Vec::<String>::new());
    assert!(dir.is_dir());
    assert_eq!(digests_of(&server_state(&d, &u)), tree.written);
}

#[test]
fn killed_by_a_signal_at_any_moment_and_rerun_at_once_holds_every_message_exactly_once() {
    // A real SIGKILL at assorted moments of a restore, and the rerun started at once (as a
    // systemd unit restarting after 100 ms would): the server may still be storing the killed
    // run's last batch when the rerun starts. Every run ends with the archive on the server
    // exactly once.
    let msgs = plain_messages();
    let tmp = tempfile::tempdir().unwrap();
    let mut tree = MaildirTree::new(&tmp.path().join("archive"));
    for round in 0..3 {
        for (i, raw) in msgs.iter().enumerate() {
            let folder = ["INBOX", "Work"][i % 2];
            let secs = 1_500_000_000 + (round * msgs.len() + i) as i64 * 60;
            tree.put(folder, folder, raw, ["S", ""][round % 2], secs);
        }
    }
    let arg = format!("maildir:{}", tree.root.display());
    let d = no_fsync_dovecot();
    let mut killed_mid_run = 0;
    for (n, delay_ms) in [80u64, 160, 240, 320, 400, 480].into_iter().enumerate() {
        let u = d.add_user(&format!("sig{n}"), "pw");
        let url = d.url("imaps", &u);
        let state = tmp.path().join(format!("state-{n}"));
        let mut child = support::mailkeep()
            .args(["restore", &arg, &url, "--tls-ca"])
            .arg(&d.ca_pem)
            .args(["--password-env", PW_VAR, "--quiet"])
            .env(PW_VAR, &u.password)
            .env("XDG_STATE_HOME", &state)
            .spawn()
            .unwrap();
        std::thread::sleep(std::time::Duration::from_millis(delay_ms));
        if child.try_wait().unwrap().is_none() {
            killed_mid_run += 1;
        }
        let _ = child.kill();
        let _ = child.wait();
        let rerun = restore_to(&d, &u, &url, &arg, &state, &["--json"], &[]);
        rerun.assert_code(0);
        assert_eq!(
            digests_of(&server_state(&d, &u)),
            tree.written,
            "killed after {delay_ms} ms"
        );
    }
    println!("killed mid-run: {killed_mid_run} of 6");
    assert!(
        killed_mid_run >= 2,
        "the restore finished before most kills"
    );
}
