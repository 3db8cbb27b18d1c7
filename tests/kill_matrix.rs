//! Kill at every step of every data path that had no full loop yet (issue 7, DESIGN.md
//! invariant 2: kill + rerun = the same result as an uninterrupted run).
//!
//! For each path: a clean run counts its ledger events (`MAILKEEP_TEST_EVENT_COUNT_FILE`, or
//! for a zip its writer steps, `MAILKEEP_TEST_ZIP_STEP_COUNT_FILE`); then for EVERY kill point
//! N = 0 .. count-1 ("killed after N events", `MAILKEEP_TEST_KILL_AFTER_EVENTS=N`, or
//! `MAILKEEP_TEST_KILL_AFTER_ZIP_STEPS=N`): fresh Dovecot user(s) seeded identically, a fresh
//! archive and state folder, a run that must die with status 137, a wait until Dovecot has
//! ended the killed sessions, a rerun that must exit 0, and a comparison with the clean run:
//!
//! - target mailboxes (Dovecot's Maildir files): message bytes, flags, INTERNALDATE (mtime);
//! - source mailboxes after deletions (bytes and dates; POP3 `\Seen` is left out: Dovecot
//!   sets it only for sessions that end with QUIT, which a killed run never sends);
//! - the archive's files (Maildir names without the `.M<hash>` part, which hashes the source
//!   identity and so the per-kill-point user name; mbox bytes; zip entries and manifest rows
//!   without `source_id`) and its ledger (`support::run::ledger_state`);
//! - the uploads ledger (target mailbox and SHA-256 of every row; no source recorded twice).
//!
//! Lost and duplicated messages are counted over every kill point (message multisets against
//! the clean run) and must be 0. Finally N = count must run to the end (so the count is
//! exact), and each loop prints `kill points covered: <path> <n>` with n = the clean count.
//!
//! The six messages come from `shared/corpus`: four with a Message-ID, one without, and one
//! of them twice (the same bytes, flags and date).

mod support;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use support::dovecot::{Dovecot, Options, User};
use support::run::{
    dovecot_mailbox, ledger_state, mbox_messages, uploads_repeated_sources, uploads_state,
    wait_for_sessions_to_end, Run,
};

const SRC_VAR: &str = "MAILKEEP_TEST_SOURCE_PASSWORD";
const DST_VAR: &str = "MAILKEEP_TEST_TARGET_PASSWORD";
const EVENTS: (&str, &str) = (
    "MAILKEEP_TEST_KILL_AFTER_EVENTS",
    "MAILKEEP_TEST_EVENT_COUNT_FILE",
);
const ZIP_STEPS: (&str, &str) = (
    "MAILKEEP_TEST_KILL_AFTER_ZIP_STEPS",
    "MAILKEEP_TEST_ZIP_STEP_COUNT_FILE",
);

/// A Dovecot that does not fsync (the tests kill mailkeep, never Dovecot).
fn dovecot() -> Dovecot {
    Dovecot::start_with(Options {
        extra_config: "mail_fsync = never\n".into(),
        ..Options::default()
    })
}

fn header_section(raw: &[u8]) -> String {
    let end = raw
        .windows(2)
        .position(|w| w == b"\n\n")
        .or_else(|| raw.windows(4).position(|w| w == b"\r\n\r\n"))
        .unwrap_or(raw.len());
    String::from_utf8_lossy(&raw[..end]).to_ascii_lowercase()
}

/// The six seeded messages: (bytes, Maildir flags, date). Four small corpus messages with a
/// Message-ID and a Date, one with a Date but no Message-ID, and the first one again.
fn messages() -> Vec<(Vec<u8>, &'static str, i64)> {
    let corpus = support::corpus::all();
    let small = |m: &&support::corpus::CorpusMessage| {
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
    let without: Vec<u8> = corpus
        .iter()
        .filter(small)
        .find(|m| !header_section(&m.raw).contains("message-id:"))
        .expect("a corpus message without a Message-ID")
        .raw
        .clone();
    assert_eq!(with_id.len(), 4);
    let flags = ["", "S", "FS", "RS", "S", ""];
    let mut out: Vec<(Vec<u8>, &'static str, i64)> = with_id
        .into_iter()
        .chain([without])
        .enumerate()
        .map(|(i, raw)| (raw, flags[i], 1_500_000_000 + i as i64 * 86_400))
        .collect();
    out.push(out[0].clone()); // the twin: same bytes, flags and date
    out
}

/// Seeds `u` with `msgs`: every message in INBOX, or (`folders`) alternately INBOX and Sent.
fn seed(u: &User, msgs: &[(Vec<u8>, &str, i64)], folders: bool) {
    for (i, (raw, flags, date)) in msgs.iter().enumerate() {
        let mb = if folders && i % 2 == 1 {
            "Sent"
        } else {
            "INBOX"
        };
        u.seed_message(mb, raw, flags, Some(*date));
    }
}

/// Sorted SHA-256 digests.
fn shas(items: &[Vec<u8>]) -> Vec<String> {
    support::run::digests(items.iter().map(Vec::as_slice))
}

/// (lost, duplicated): messages of `want` missing from `got`, and extra copies in `got`.
fn lost_and_duplicated(want: &[Vec<u8>], got: &[Vec<u8>]) -> (u64, u64) {
    let mut count: BTreeMap<String, i64> = BTreeMap::new();
    for d in shas(want) {
        *count.entry(d).or_default() += 1;
    }
    for d in shas(got) {
        *count.entry(d).or_default() -= 1;
    }
    let lost = count.values().filter(|v| **v > 0).map(|v| *v as u64).sum();
    let dup = count
        .values()
        .filter(|v| **v < 0)
        .map(|v| (-*v) as u64)
        .sum();
    (lost, dup)
}

/// Everything a run leaves that must equal the clean run's.
#[derive(Debug, PartialEq, Eq, Default)]
struct Outcome {
    /// The messages that must be there exactly once each (target or archive copies).
    copies: Vec<Vec<u8>>,
    target: BTreeMap<String, Vec<(Vec<u8>, String, i64)>>,
    /// Source mailboxes: (bytes, date); flags left out (module docs).
    source: BTreeMap<String, Vec<(Vec<u8>, i64)>>,
    archive: Vec<(String, Vec<u8>)>,
    ledger: BTreeMap<String, Vec<(String, Vec<String>, i64)>>,
    uploads: Vec<(String, String)>,
    repeated_uploads: Vec<String>,
}

/// One kill point's world: fresh users, archive and state folder.
struct World {
    src: User,
    dst: Option<User>,
    dir: PathBuf,
}

impl World {
    fn state_file(&self) -> PathBuf {
        self.dir.join("state/mailkeep/uploads.sqlite")
    }
    fn archive(&self) -> PathBuf {
        self.dir.join("archive")
    }
}

/// Maildir file names without the `.M<16 hex>` part (a hash of the source identity, which
/// names the per-kill-point user).
fn strip_hash(name: &str) -> String {
    match name.find(".M") {
        Some(i) if name.len() > i + 18 => format!("{}.M*{}", &name[..i], &name[i + 18..]),
        _ => name.to_string(),
    }
}

/// The archive's files outside `mailkeep/` (names with [`strip_hash`]), sorted.
fn archive_files(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let mut v: Vec<(String, Vec<u8>)> = support::run::snapshot(dir)
        .into_iter()
        .filter(|(k, _)| !k.starts_with("mailkeep/"))
        .map(|(k, (b, _))| (strip_hash(&k), b))
        .collect();
    v.sort();
    v
}

/// A zip's entries (name, bytes), the manifest's rows with `source_id` removed.
fn zip_entries(zip: &Path) -> Vec<(String, Vec<u8>)> {
    use std::io::Read;
    let mut z = zip::ZipArchive::new(std::fs::File::open(zip).unwrap()).unwrap();
    let mut out = Vec::new();
    for i in 0..z.len() {
        let mut e = z.by_index(i).unwrap();
        let mut b = Vec::new();
        e.read_to_end(&mut b).unwrap();
        let name = e.name().to_string();
        if name == "manifest.jsonl" {
            let rows: Vec<String> = String::from_utf8(b)
                .unwrap()
                .lines()
                .map(|l| {
                    let mut v: serde_json::Value = serde_json::from_str(l).unwrap();
                    v.as_object_mut().unwrap().remove("source_id");
                    v.to_string()
                })
                .collect();
            b = rows.join("\n").into_bytes();
        }
        out.push((name, b));
    }
    out
}

/// Runs mailkeep in a world with extra environment variables.
type RunFn<'a> = dyn Fn(&World, &[(&str, String)]) -> Run + 'a;

/// The kill loop. `fresh(tag)` makes a world, `run(world, env)` runs mailkeep in it,
/// `observe(world)` reads its outcome. Returns the kill points covered.
fn kill_loop(
    path: &str,
    switch: (&str, &str),
    d: &Dovecot,
    fresh: &mut dyn FnMut(&str) -> World,
    run: &RunFn,
    observe: &dyn Fn(&World) -> Outcome,
) -> u64 {
    let started = std::time::Instant::now();
    let clean = fresh("clean");
    let count_file = clean.dir.join("events");
    let r = run(&clean, &[(switch.1, count_file.display().to_string())]);
    r.assert_code(0);
    let count = std::fs::read_to_string(&count_file)
        .unwrap_or_default()
        .lines()
        .count() as u64;
    let want = observe(&clean);
    assert!(
        !want.copies.is_empty(),
        "{path}: the clean run copied nothing: {r:#?}"
    );
    assert!(
        want.repeated_uploads.is_empty(),
        "{path}: clean run: {want:#?}"
    );

    let (mut lost, mut dup, mut covered) = (0, 0, 0u64);
    for n in 0..=count {
        let w = fresh(&format!("k{n}"));
        let log_from = d.log().len();
        let killed = run(&w, &[(switch.0, n.to_string())]);
        if n == count {
            // Past the last step: the run goes to the end, so the count was exact.
            killed.assert_code(0);
            assert_eq!(observe(&w), want, "{path}: N={n} (no kill)");
            break;
        }
        assert_eq!(killed.code, 137, "{path}: killed after {n}: {killed:#?}");
        wait_for_sessions_to_end(d, &w.src.name, log_from);
        if let Some(dst) = &w.dst {
            wait_for_sessions_to_end(d, &dst.name, log_from);
        }
        let rerun = run(&w, &[]);
        assert_eq!(
            rerun.code, 0,
            "{path}: rerun after a kill after {n}: {rerun:#?}"
        );
        let got = observe(&w);
        let (l, dp) = lost_and_duplicated(&want.copies, &got.copies);
        lost += l;
        dup += dp;
        assert_eq!(
            got, want,
            "{path}: killed after {n} then rerun differs from the clean run ({l} lost, {dp} duplicated)"
        );
        covered += 1;
    }
    println!(
        "kill points covered: {path} {covered} (lost {lost}, duplicated {dup}, {:.1} s)",
        started.elapsed().as_secs_f64()
    );
    assert_eq!(covered, count, "{path}");
    assert_eq!((lost, dup), (0, 0), "{path}");
    covered
}

// ---------------------------------------------------------------------------------------------
// migrate

fn migrate(d: &Dovecot, from: &str, w: &World, extra: &[&str], env: &[(&str, String)]) -> Run {
    let dst = w.dst.as_ref().unwrap();
    let mut cmd = support::mailkeep();
    cmd.args([
        "migrate",
        &d.url(from, &w.src),
        &d.url("imaps", dst),
        "--json",
    ])
    .arg("--source-tls-ca")
    .arg(&d.ca_pem)
    .arg("--target-tls-ca")
    .arg(&d.ca_pem)
    .args([
        "--source-password-env",
        SRC_VAR,
        "--target-password-env",
        DST_VAR,
    ])
    .args(["--jobs", "1"])
    .args(extra)
    .env(SRC_VAR, &w.src.password)
    .env(DST_VAR, &dst.password)
    .env("XDG_STATE_HOME", w.dir.join("state"))
    .env_remove(EVENTS.0)
    .env_remove(ZIP_STEPS.0);
    for (k, v) in env {
        cmd.env(k, v);
    }
    Run::from_output(cmd.output().unwrap())
}

fn migrate_outcome(w: &World, folders: &[&str], with_archive: bool) -> Outcome {
    let dst = w.dst.as_ref().unwrap();
    let mut o = Outcome::default();
    for f in folders {
        let t = dovecot_mailbox(dst, f);
        o.copies.extend(t.iter().map(|(b, _, _)| b.clone()));
        o.target.insert(f.to_string(), t);
        let s = dovecot_mailbox(&w.src, f);
        o.source.insert(
            f.to_string(),
            s.into_iter().map(|(b, _, t)| (b, t)).collect(),
        );
    }
    o.uploads = uploads_state(&w.state_file());
    o.repeated_uploads = uploads_repeated_sources(&w.state_file());
    if with_archive {
        o.archive = archive_files(&w.archive());
        o.ledger = ledger_state(&w.archive());
    }
    o
}

/// A migration path: `from` (`pop3s`/`imaps`), extra options, `via` archive kind.
fn migrate_loop(path: &str, from: &str, extra: &[&str], via: Option<&str>) -> u64 {
    let d = dovecot();
    let msgs = messages();
    let folders: &[&str] = if from == "imaps" {
        &["INBOX", "Sent"]
    } else {
        &["INBOX"]
    };
    let tmp = tempfile::tempdir().unwrap();
    let mut fresh = |tag: &str| {
        let src = d.add_user(&format!("s{tag}"), "src-pw");
        let dst = d.add_user(&format!("t{tag}"), "dst-pw");
        seed(&src, &msgs, from == "imaps");
        let dir = tmp.path().join(tag);
        std::fs::create_dir(&dir).unwrap();
        World {
            src,
            dst: Some(dst),
            dir,
        }
    };
    let run = |w: &World, env: &[(&str, String)]| {
        let mut args: Vec<String> = extra.iter().map(|s| s.to_string()).collect();
        if let Some(kind) = via {
            args.push("--via".into());
            args.push(format!("{kind}:{}", w.archive().display()));
        }
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        migrate(&d, from, w, &args, env)
    };
    let observe = |w: &World| {
        let o = migrate_outcome(w, folders, via.is_some());
        if extra.contains(&"--delete-after-migrate") {
            assert!(
                o.source["INBOX"].is_empty(),
                "{path}: the source is emptied"
            );
        } else {
            assert_eq!(o.source["INBOX"].len(), if from == "imaps" { 3 } else { 6 });
        }
        assert_eq!(o.copies.len(), 6, "{path}: {:?}", o.target.keys());
        o
    };
    kill_loop(path, EVENTS, &d, &mut fresh, &run, &observe)
}

#[test]
fn migrate_pop3_to_imap_killed_at_every_event() {
    let n = migrate_loop("migrate pop3->imap", "pop3s", &[], None);
    assert_eq!(
        n, 1,
        "ledger events of this path changed: update the pin if intended"
    );
}

#[test]
fn migrate_imap_to_imap_killed_at_every_event() {
    let n = migrate_loop("migrate imap->imap", "imaps", &[], None);
    assert_eq!(
        n, 2,
        "ledger events of this path changed: update the pin if intended"
    );
}

#[test]
fn migrate_via_maildir_killed_at_every_event() {
    let n = migrate_loop(
        "migrate pop3->imap --via maildir",
        "pop3s",
        &[],
        Some("maildir"),
    );
    assert_eq!(
        n, 2,
        "ledger events of this path changed: update the pin if intended"
    );
}

#[test]
fn migrate_imap_via_maildir_killed_at_every_event() {
    let n = migrate_loop(
        "migrate imap->imap --via maildir",
        "imaps",
        &[],
        Some("maildir"),
    );
    assert_eq!(
        n, 6,
        "ledger events of this path changed: update the pin if intended"
    );
}

#[test]
fn migrate_via_mbox_with_delete_killed_at_every_event() {
    let n = migrate_loop(
        "migrate pop3->imap --via mbox --delete-after-migrate",
        "pop3s",
        &["--delete-after-migrate"],
        Some("mbox"),
    );
    assert_eq!(
        n, 9,
        "ledger events of this path changed: update the pin if intended"
    );
}

#[test]
fn migrate_pop3_delete_after_migrate_killed_at_every_event() {
    let n = migrate_loop(
        "migrate pop3->imap --delete-after-migrate",
        "pop3s",
        &["--delete-after-migrate"],
        None,
    );
    assert_eq!(
        n, 1,
        "ledger events of this path changed: update the pin if intended"
    );
}

// ---------------------------------------------------------------------------------------------
// backup from a real Dovecot (POP3 with deletion; IMAP into a zip)

fn backup(
    d: &Dovecot,
    scheme: &str,
    w: &World,
    archive: &str,
    extra: &[&str],
    env: &[(&str, String)],
) -> Run {
    let mut cmd = support::mailkeep();
    cmd.args([
        "backup",
        &d.url(scheme, &w.src),
        archive,
        "--json",
        "--tls-ca",
    ])
    .arg(&d.ca_pem)
    .args(["--password-env", SRC_VAR])
    .args(extra)
    .env(SRC_VAR, &w.src.password)
    .env_remove(EVENTS.0)
    .env_remove(ZIP_STEPS.0);
    for (k, v) in env {
        cmd.env(k, v);
    }
    Run::from_output(cmd.output().unwrap())
}

fn pop3_backup_loop(kind: &str) -> u64 {
    let d = dovecot();
    let msgs = messages();
    let tmp = tempfile::tempdir().unwrap();
    let mut fresh = |tag: &str| {
        let src = d.add_user(&format!("p{tag}"), "pop-pw");
        seed(&src, &msgs, false);
        let dir = tmp.path().join(tag);
        std::fs::create_dir(&dir).unwrap();
        World {
            src,
            dst: None,
            dir,
        }
    };
    let run = |w: &World, env: &[(&str, String)]| {
        let archive = format!("{kind}:{}", w.archive().display());
        backup(&d, "pop3s", w, &archive, &["--delete-after-backup"], env)
    };
    let observe = |w: &World| {
        let mut o = Outcome {
            archive: archive_files(&w.archive()),
            ledger: ledger_state(&w.archive()),
            ..Outcome::default()
        };
        o.copies = if kind == "maildir" {
            support::run::maildir_messages(&w.archive())
                .into_iter()
                .map(|(_, b)| b)
                .collect()
        } else {
            mbox_messages(&w.archive().join("INBOX.mbox"))
        };
        let s = dovecot_mailbox(&w.src, "INBOX");
        assert!(s.is_empty(), "deleted after the backup: {} left", s.len());
        o.source.insert(
            "INBOX".into(),
            s.into_iter().map(|(b, _, t)| (b, t)).collect(),
        );
        assert_eq!(o.copies.len(), 6);
        o
    };
    kill_loop(
        &format!("backup pop3 (Dovecot) {kind} --delete-after-backup"),
        EVENTS,
        &d,
        &mut fresh,
        &run,
        &observe,
    )
}

#[test]
fn pop3_backup_from_dovecot_with_delete_killed_at_every_event_maildir() {
    assert_eq!(pop3_backup_loop("maildir"), 2);
}

#[test]
fn pop3_backup_from_dovecot_with_delete_killed_at_every_event_mbox() {
    assert_eq!(pop3_backup_loop("mbox"), 9);
}

/// Backup from `scheme` into a zip, killed at every zip writer step.
fn zip_loop(scheme: &str) -> u64 {
    let d = dovecot();
    let msgs = messages();
    let tmp = tempfile::tempdir().unwrap();
    let mut fresh = |tag: &str| {
        let src = d.add_user(&format!("z{tag}"), "zip-pw");
        seed(&src, &msgs, scheme == "imaps");
        let dir = tmp.path().join(tag);
        std::fs::create_dir(&dir).unwrap();
        World {
            src,
            dst: None,
            dir,
        }
    };
    let run = |w: &World, env: &[(&str, String)]| {
        let archive = format!("zip:{}", w.dir.join("mail.zip").display());
        backup(&d, scheme, w, &archive, &[], env)
    };
    let observe = |w: &World| {
        let zip = w.dir.join("mail.zip");
        assert!(!w.dir.join("mail.zip.partial").exists());
        let entries = zip_entries(&zip);
        let copies = entries
            .iter()
            .filter(|(n, _)| n.ends_with(".eml"))
            .map(|(_, b)| b.clone())
            .collect();
        Outcome {
            copies,
            archive: entries,
            ..Outcome::default()
        }
    };
    kill_loop(
        &format!("backup {scheme} -> zip"),
        ZIP_STEPS,
        &d,
        &mut fresh,
        &run,
        &observe,
    )
}

#[test]
fn imap_backup_into_zip_killed_at_every_step() {
    // 6 message entries, the manifest and the rename (directory entries only for empty
    // mailboxes).
    assert_eq!(zip_loop("imaps"), 8);
}

#[test]
fn pop3_backup_into_zip_killed_at_every_step() {
    assert_eq!(zip_loop("pop3s"), 8);
}
