//! `mailkeep convert` and the `zip:` archive kind (issue 5): the whole shared corpus through
//! every conversion path between Maildir, mbox, zip and .eml folders with identical bytes,
//! flags and dates; flags and keywords through every format including Thunderbird; reruns that
//! add nothing; adding to an existing zip by raw copy; a zip writer killed at every step (no
//! `X.zip`, or the old one untouched); a mailkeep archive target killed at every ledger step;
//! damaged zips found by the reader and by `check`.
//!
//! Scratch archives live on /dev/shm when there is one: the writers fsync every message, which
//! a tmpfs makes free, so the corpus goes through 15 conversions in seconds.

mod support;

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::path::Path;

use mailkeep::archive::reader as source;
use mailkeep::archive::zip::reader::ZipProblem;
use sha2::{Digest, Sha256};
use support::run::Run;

fn scratch() -> tempfile::TempDir {
    let shm = Path::new("/dev/shm");
    let b = tempfile::Builder::new()
        .prefix("mailkeep-convert-")
        .to_owned();
    if shm.is_dir() {
        b.tempdir_in(shm).unwrap()
    } else {
        b.tempdir().unwrap()
    }
}

/// A folder `dst` holding copies of some folders of the corpus's `eml/` (one mailbox each).
fn eml_folders(dst: &Path, subs: &[&str]) -> String {
    let corpus = support::corpus_dir().join("eml");
    for sub in subs {
        let to = dst.join(sub);
        std::fs::create_dir_all(&to).unwrap();
        for e in std::fs::read_dir(corpus.join(sub)).unwrap().flatten() {
            std::fs::copy(e.path(), to.join(e.file_name())).unwrap();
        }
    }
    format!("eml:{}", dst.display())
}

fn sha256(data: &[u8]) -> String {
    hex::encode(Sha256::digest(data))
}

#[track_caller]
fn convert_env(from: &str, to: &str, extra: &[&str], env: &[(&str, String)]) -> Run {
    let mut cmd = support::mailkeep();
    cmd.arg("convert")
        .arg(from)
        .arg(to)
        .args(extra)
        .arg("--json");
    for (k, v) in env {
        cmd.env(k, v);
    }
    Run::from_output(cmd.output().unwrap())
}

#[track_caller]
fn convert(from: &str, to: &str) -> Run {
    let run = convert_env(from, to, &[], &[]);
    run.assert_code(0);
    run
}

/// A message as the comparisons see it: its bytes (SHA-256), flags and keywords, date.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct Msg {
    sha256: String,
    flags: String,
    date: Option<i64>,
}

/// Every non-empty mailbox of `spec`, its messages sorted (bytes compared by SHA-256).
#[track_caller]
fn read_all(spec: &str) -> BTreeMap<String, Vec<Msg>> {
    read_with(spec, sha256)
}

/// Every non-empty mailbox of `spec`, its messages sorted, bytes compared by `key`.
#[track_caller]
fn read_with(spec: &str, key: fn(&[u8]) -> String) -> BTreeMap<String, Vec<Msg>> {
    let mut src = source::open(spec).unwrap_or_else(|e| panic!("{spec}: {e}"));
    let mut out = BTreeMap::new();
    for mb in src.mailboxes().unwrap() {
        let mut msgs = Vec::new();
        src.messages(&mb, &mut |m| {
            assert_eq!(m.sha256, sha256(&m.raw), "{}", m.origin);
            msgs.push(Msg {
                sha256: key(&m.raw),
                flags: m.flags.to_imap_list(),
                date: m.internal_date,
            });
            Ok(())
        })
        .unwrap_or_else(|e| panic!("{spec} {mb}: {e}"));
        if !msgs.is_empty() {
            msgs.sort();
            out.insert(mb.to_string(), msgs);
        }
    }
    out
}

fn count(read: &BTreeMap<String, Vec<Msg>>) -> usize {
    read.values().map(Vec::len).sum()
}

#[track_caller]
fn assert_same(spec: &str, want: &BTreeMap<String, Vec<Msg>>) {
    let got = read_all(spec);
    assert_eq!(
        got.keys().collect::<Vec<_>>(),
        want.keys().collect::<Vec<_>>(),
        "{spec}: mailboxes"
    );
    for (mb, msgs) in want {
        assert_eq!(&got[mb], msgs, "{spec}: mailbox {mb}");
    }
}

// ---------------------------------------------------------------------------------------------
// The corpus through every path
// ---------------------------------------------------------------------------------------------

/// One corpus section through one chain of 13 conversions that holds the forward path
/// (mbox -> Maildir -> zip -> eml -> mbox), the reverse path (mbox -> eml -> zip -> Maildir ->
/// mbox, with a detour Maildir -> eml -> Maildir) and mbox -> zip -> mbox: every ordered pair
/// of the four kinds once. Each result is read back and compared with the section as first
/// read: the same mailboxes, and in each the same messages (bytes, flags and keywords, date).
fn round_trip(section: &str, spec: &str, want_total: u64) {
    let base = read_all(spec);
    assert_eq!(count(&base) as u64, want_total, "{section}");
    let d = scratch();
    let at = |name: &str| d.path().join(name).display().to_string();
    let chain = [
        "mbox:mb",
        "maildir:md",
        "zip:z.zip",
        "eml:e",
        "mbox:mb2",
        "eml:e3",
        "zip:z3.zip",
        "maildir:md3",
        "eml:e4",
        "maildir:md4",
        "mbox:mb3",
        "zip:z6.zip",
        "mbox:mb4",
    ];
    let mut pairs = std::collections::BTreeSet::new();
    let mut from = spec.to_string();
    for step in chain {
        let (kind, name) = step.split_once(':').unwrap();
        let to = format!("{kind}:{}", at(name));
        let run = convert(&from, &to);
        assert_eq!(run.n("read"), want_total, "{from} -> {to}: {}", run.stdout);
        assert_eq!(run.n("written"), want_total, "{from} -> {to}");
        assert_eq!(run.n("already_present"), 0, "{from} -> {to}");
        assert_same(&to, &base);
        pairs.insert((from.split_once(':').unwrap().0.to_string(), kind));
        from = to;
    }
    assert_eq!(
        pairs.iter().filter(|(f, t)| f != t).count(),
        12,
        "{pairs:?}"
    );
    // Every zip written is sound; the eml folders hold one row per message.
    for z in ["z.zip", "z3.zip", "z6.zip"] {
        let problems = mailkeep::archive::zip::reader::check(&d.path().join(z)).unwrap();
        assert_eq!(problems, Vec::<ZipProblem>::new(), "{section} {z}");
    }
    let rows = std::fs::read_to_string(d.path().join("e/manifest.jsonl")).unwrap();
    assert_eq!(rows.lines().count() as u64, want_total);
    // Straight into a zip, every message keeps its exact bytes.
    let direct = format!("zip:{}", at("direct.zip"));
    convert(spec, &direct);
    assert_eq!(
        read_with(&direct, sha256),
        read_with(spec, sha256),
        "{section}"
    );
}

#[test]
fn corpus_public_mbox_through_every_path() {
    let spec = format!(
        "mbox:{}",
        support::corpus_dir().join("public-mbox").display()
    );
    round_trip("public-mbox", &spec, 3_622);
}

#[test]
fn corpus_maildir_through_every_path() {
    let spec = format!(
        "maildir:{}",
        support::corpus_dir().join("maildir").display()
    );
    round_trip("maildir", &spec, 263);
}

#[test]
fn corpus_eml_through_every_path() {
    let spec = format!("eml:{}", support::corpus_dir().join("eml").display());
    round_trip("eml", &spec, 402);
}

// ---------------------------------------------------------------------------------------------
// Flags, keywords and dates through every format
// ---------------------------------------------------------------------------------------------

/// A Maildir with every system flag, keywords (`dovecot-keywords`), dates from 1975 to 2024
/// (mtimes), a body `From ` line, a message without a final newline, and nested folders.
fn flagged_maildir(root: &Path) -> Vec<(&'static str, &'static str, i64, &'static [u8])> {
    let msgs: Vec<(&str, &str, i64, &[u8])> = vec![
        ("", "1.a:2,S", 1_700_000_000, b"Subject: seen\n\nbody\n"),
        (
            "",
            "2.a:2,FRSab",
            1_600_000_000,
            b"Subject: kw\n\nFrom the start\n>From quoted\n",
        ),
        (
            "",
            "3.a:2,DT",
            170_000_000,
            b"Subject: 1975 draft deleted\n\nx",
        ),
        (
            ".Archive.2023",
            "4.a:2,",
            1_690_000_000,
            b"Subject: nested\n\n\n\nmany empty lines\n\n",
        ),
        (
            ".Archive.2023",
            "5.a:2,Sc",
            1_500_000_000,
            b"Subject: third keyword\n\nx\n",
        ),
        (
            ".&ZeVnLIqe-",
            "6.a:2,F",
            1_400_000_000,
            "Subject: \u{65e5}\n\n8-bit \u{fc}\n".as_bytes(),
        ),
    ];
    for (folder, name, date, body) in &msgs {
        let dir = root.join(folder);
        for sub in ["cur", "new", "tmp"] {
            std::fs::create_dir_all(dir.join(sub)).unwrap();
        }
        std::fs::write(
            dir.join("dovecot-keywords"),
            "0 $Forwarded\n1 Work\n2 $label3\n",
        )
        .unwrap();
        let p = dir.join("cur").join(name);
        std::fs::write(&p, body).unwrap();
        let t = std::time::UNIX_EPOCH + std::time::Duration::from_secs(*date as u64);
        std::fs::File::options()
            .write(true)
            .open(&p)
            .unwrap()
            .set_modified(t)
            .unwrap();
    }
    msgs
}

#[test]
fn flags_keywords_and_dates_survive_every_format() {
    let d = scratch();
    let src = d.path().join("src");
    flagged_maildir(&src);
    let spec = format!("maildir:{}", src.display());
    let base = read_all(&spec);
    assert_eq!(count(&base), 6);
    let mut inbox: Vec<&str> = base["INBOX"].iter().map(|m| m.flags.as_str()).collect();
    inbox.sort();
    assert_eq!(
        inbox,
        [
            "\\Deleted \\Draft",
            "\\Seen",
            "\\Seen \\Answered \\Flagged $Forwarded Work"
        ]
    );
    assert_eq!(
        base["Archive/2023"]
            .iter()
            .filter(|m| m.flags == "\\Seen $label3")
            .count(),
        1
    );
    assert_eq!(
        base["\u{65e5}\u{672c}\u{8a9e}"][0].date,
        Some(1_400_000_000)
    );
    let at = |s: &str| {
        let (k, n) = s.split_once(':').unwrap();
        format!("{k}:{}", d.path().join(n).display())
    };
    let mut from = spec.clone();
    for to in [
        "zip:a.zip",
        "eml:e",
        "mbox:m",
        "zip:b.zip",
        "maildir:md",
        "eml:e2",
    ] {
        let to = at(to);
        convert(&from, &to);
        assert_same(&to, &base);
        from = to;
    }
    // The manifest says it in words users can read.
    let mut z = zip::ZipArchive::new(std::fs::File::open(d.path().join("a.zip")).unwrap()).unwrap();
    let mut text = String::new();
    z.by_name("manifest.jsonl")
        .unwrap()
        .read_to_string(&mut text)
        .unwrap();
    let rows: Vec<serde_json::Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(rows.len(), 6);
    let kw = rows
        .iter()
        .find(|r| {
            r["entry"].as_str().unwrap().starts_with("INBOX/")
                && r["keywords"].as_array().unwrap().len() == 2
        })
        .unwrap();
    assert_eq!(
        kw["flags"],
        serde_json::json!(["\\Seen", "\\Answered", "\\Flagged"])
    );
    assert_eq!(kw["keywords"], serde_json::json!(["$Forwarded", "Work"]));
    assert_eq!(kw["internal_date"], 1_600_000_000);
    assert!(
        rows.iter()
            .any(|r| r["entry"] == "\u{65e5}\u{672c}\u{8a9e}/000006.eml"),
        "{text}"
    );
    assert!(rows.iter().any(|r| r["mailbox"] == "Archive/2023"));

    // Thunderbird: flags as X-Mozilla-* lines (no \Draft there), read back the same.
    let tb = d.path().join("tb");
    convert(&spec, &format!("thunderbird:{}", tb.display()));
    for f in [
        "Inbox",
        "Archive",
        "Archive.sbd/2023",
        "\u{65e5}\u{672c}\u{8a9e}",
    ] {
        assert!(tb.join(f).is_file(), "{f}");
    }
    let inbox = std::fs::read_to_string(tb.join("Inbox")).unwrap();
    assert!(inbox.starts_with("From - "), "{inbox}");
    assert!(
        inbox
            .contains("X-Mozilla-Status: 1007\nX-Mozilla-Status2: 00000000\nX-Mozilla-Keys: Work "),
        "{inbox}"
    );
    assert!(
        inbox.contains("\n>From the start\n>From quoted\n"),
        "{inbox}"
    );
    let back = read_all(&format!("thunderbird:{}", tb.display()));
    assert_eq!(
        back.keys().collect::<Vec<_>>(),
        base.keys().collect::<Vec<_>>()
    );
    for (mb, msgs) in &base {
        let want: Vec<(String, Option<i64>)> = {
            let mut v: Vec<_> = msgs
                .iter()
                .map(|m| {
                    (
                        m.flags.replace(" \\Draft", "").replace("\\Draft", ""),
                        m.date,
                    )
                })
                .collect();
            v.sort();
            v
        };
        let mut got: Vec<_> = back[mb].iter().map(|m| (m.flags.clone(), m.date)).collect();
        got.sort();
        assert_eq!(got, want, "{mb}");
    }
    // Bytes come back, except the body `From ` line Thunderbird quotes for good.
    let same: usize = base
        .values()
        .flatten()
        .filter(|m| back.values().flatten().any(|b| b.sha256 == m.sha256))
        .count();
    assert_eq!(same, 5);
    // A second conversion into the same Thunderbird folder is refused: it never appends.
    let run = convert_env(&spec, &format!("thunderbird:{}", tb.display()), &[], &[]);
    run.assert_code(2);
    assert!(run.stderr.contains("exists already"), "{run:#?}");
}

/// `zip:` restored to a real Dovecot, then backed up again over IMAP: the same folders, bytes,
/// flags, keywords and INTERNALDATEs (but `\Deleted`, which restore never sends).
#[test]
fn zip_restores_to_imap_with_flags_and_dates() {
    const PW_VAR: &str = "MAILKEEP_TEST_PASSWORD";
    let d = scratch();
    let src = d.path().join("src");
    flagged_maildir(&src);
    let base = read_all(&format!("maildir:{}", src.display()));
    let z = format!("zip:{}", d.path().join("a.zip").display());
    convert(&format!("maildir:{}", src.display()), &z);

    let dovecot = support::dovecot::Dovecot::start();
    let user = dovecot.add_user("zoe", "zoe-pw");
    let url = dovecot.url("imaps", &user);
    let run = |args: &[&str]| {
        let out = support::mailkeep()
            .args(args)
            .args(["--json", "--password-env", PW_VAR, "--tls-ca"])
            .arg(&dovecot.ca_pem)
            .env(PW_VAR, &user.password)
            .env("XDG_STATE_HOME", d.path().join("state"))
            .output()
            .unwrap();
        Run::from_output(out)
    };
    let restored = run(&["restore", &z, &url]);
    restored.assert_code(0);
    assert_eq!(restored.n("uploaded"), 6, "{restored:#?}");
    let back = format!("maildir:{}", d.path().join("back").display());
    run(&["backup", &url, &back]).assert_code(0);
    let want: BTreeMap<String, Vec<Msg>> = base
        .iter()
        .map(|(mb, msgs)| {
            let mut v: Vec<Msg> = msgs
                .iter()
                .map(|m| Msg {
                    flags: m
                        .flags
                        .split(' ')
                        .filter(|f| *f != "\\Deleted")
                        .collect::<Vec<_>>()
                        .join(" "),
                    ..m.clone()
                })
                .collect();
            v.sort();
            (mb.clone(), v)
        })
        .collect();
    assert_same(&back, &want);
    // A second restore uploads nothing.
    let again = run(&["restore", &z, &url]);
    again.assert_code(0);
    assert_eq!((again.n("uploaded"), again.n("already_present")), (0, 6));
}

// ---------------------------------------------------------------------------------------------
// Reruns, adding to a zip
// ---------------------------------------------------------------------------------------------

#[test]
fn rerun_writes_nothing_and_changes_no_byte() {
    let d = scratch();
    let eml = support::corpus_dir().join("eml/japanese");
    let spec = format!("eml:{}", eml.display());
    for to in ["zip:z.zip", "maildir:md", "mbox:mb", "eml:e"] {
        let (k, n) = to.split_once(':').unwrap();
        let path = d.path().join(n);
        let to = format!("{k}:{}", path.display());
        let first = convert(&spec, &to);
        assert_eq!((first.n("read"), first.n("written")), (15, 15), "{to}");
        let before = support::run::snapshot(if path.is_dir() { &path } else { d.path() });
        let again = convert(&spec, &to);
        assert_eq!(
            (
                again.n("read"),
                again.n("written"),
                again.n("already_present")
            ),
            (15, 0, 15),
            "{to}"
        );
        assert_eq!(
            support::run::snapshot(if path.is_dir() { &path } else { d.path() }),
            before,
            "{to}"
        );
        assert!(!d.path().join("z.zip.partial").exists());
    }
    // The converted archives convert on, under the same identities: nothing new either.
    let run = convert(
        &format!("maildir:{}", d.path().join("md").display()),
        &format!("zip:{}", d.path().join("z.zip").display()),
    );
    assert_eq!((run.n("written"), run.n("already_present")), (0, 15));
}

#[test]
fn zip_is_added_to_by_raw_copy() {
    let d = scratch();
    let z = d.path().join("x.zip");
    let zs = format!("zip:{}", z.display());
    let first = eml_folders(&d.path().join("s1"), &["japanese"]);
    let second = eml_folders(&d.path().join("s2"), &["attachments"]);
    convert(&first, &zs);
    let entries = |z: &Path| -> BTreeMap<String, (u32, u64, zip::CompressionMethod)> {
        let mut a = zip::ZipArchive::new(std::fs::File::open(z).unwrap()).unwrap();
        (0..a.len())
            .map(|i| {
                let e = a.by_index_raw(i).unwrap();
                (
                    e.name().to_string(),
                    (e.crc32(), e.compressed_size(), e.compression()),
                )
            })
            .collect()
    };
    let old = entries(&z);
    assert_eq!(old.len(), 16);
    assert!(old
        .values()
        .all(|e| e.2 == zip::CompressionMethod::Deflated));
    let run = convert_env(&second, &zs, &["--store"], &[]);
    run.assert_code(0);
    assert_eq!(run.n("written"), 7);
    let new = entries(&z);
    assert_eq!(new.len(), 16 + 7);
    for (name, e) in &old {
        if name != "manifest.jsonl" {
            assert_eq!(&new[name], e, "{name} copied as it was");
        }
    }
    let added: Vec<_> = new.iter().filter(|(n, _)| !old.contains_key(*n)).collect();
    assert_eq!(added.len(), 7, "{added:?}");
    for (n, e) in &added {
        assert!(n.starts_with("attachments/"), "{n}");
        assert_eq!(e.2, zip::CompressionMethod::Stored, "{n}");
    }
    // Numbering goes on after the old entries.
    assert!(
        new.contains_key("attachments/000016.eml"),
        "{:?}",
        new.keys()
    );
    let read = read_all(&zs);
    assert_eq!((read["japanese"].len(), read["attachments"].len()), (15, 7));
    assert_eq!(mailkeep::archive::zip::reader::check(&z).unwrap(), vec![]);
}

// ---------------------------------------------------------------------------------------------
// Killed writers
// ---------------------------------------------------------------------------------------------

#[test]
fn zip_killed_at_every_step_leaves_no_zip_or_the_old_one_untouched() {
    let d = scratch();
    let z = d.path().join("x.zip");
    let partial = d.path().join("x.zip.partial");
    let zs = format!("zip:{}", z.display());
    let corpus = support::corpus_dir().join("eml");
    let first = format!("eml:{}", corpus.join("html").display()); // 1 message
    let second = format!("eml:{}", corpus.join("attachments").display()); // 7 messages
    let kill = |n: u64| vec![("MAILKEEP_TEST_KILL_AFTER_ZIP_STEPS", n.to_string())];

    // A new zip: 1 message + manifest + rename = 3 steps.
    for n in 0..3 {
        let run = convert_env(&first, &zs, &[], &kill(n));
        assert_eq!(run.code, 137, "step {n}: {run:#?}");
        assert!(!z.exists(), "step {n}: no zip before it is complete");
        assert!(partial.exists(), "step {n}");
    }
    convert(&first, &zs);
    assert!(!partial.exists());
    let good = std::fs::read(&z).unwrap();

    // Adding 7 to it: 1 copied + 7 new + manifest + rename = 10 steps.
    for n in 0..10 {
        let run = convert_env(&second, &zs, &[], &kill(n));
        assert_eq!(run.code, 137, "step {n}: {run:#?}");
        assert_eq!(
            std::fs::read(&z).unwrap(),
            good,
            "step {n}: the old zip is untouched"
        );
        assert_eq!(read_all(&zs).values().map(Vec::len).sum::<usize>(), 1);
    }
    let run = convert_env(&second, &zs, &[], &kill(10));
    run.assert_code(0);
    assert_eq!(run.n("written"), 7);
    assert!(!partial.exists());
    assert_eq!(count(&read_all(&zs)), 8);
    assert_eq!(mailkeep::archive::zip::reader::check(&z).unwrap(), vec![]);
    println!("kill points covered: convert eml->zip (new zip and adding to it) 13");
}

#[test]
fn archive_target_killed_at_every_ledger_step_converges() {
    // Three mailboxes: several ledger events per run.
    let d = scratch();
    let spec = eml_folders(&d.path().join("src"), &["html", "attachments", "japanese"]);
    let want = read_all(&spec);
    for kind in ["maildir", "mbox"] {
        let mut n = 0;
        loop {
            let target = format!("{kind}:{}", d.path().join(format!("{kind}-{n}")).display());
            let run = convert_env(
                &spec,
                &target,
                &[],
                &[("MAILKEEP_TEST_KILL_AFTER_EVENTS", n.to_string())],
            );
            if run.code == 0 {
                break;
            }
            assert_eq!(run.code, 137, "{kind} event {n}: {run:#?}");
            let again = convert(&spec, &target);
            assert_eq!(
                again.n("written") + again.n("already_present"),
                23,
                "{kind} event {n}"
            );
            assert_same(&target, &want);
            n += 1;
        }
        assert!(n >= 3, "{kind}: only {n} ledger events");
        println!("kill points covered: convert eml->{kind} {n}");
    }
}

#[test]
fn eml_target_after_a_kill_writes_each_message_once() {
    let d = scratch();
    let e = d.path().join("e");
    let es = format!("eml:{}", e.display());
    let spec = format!(
        "eml:{}",
        support::corpus_dir().join("eml/japanese").display()
    );
    convert(&spec, &es);
    let manifest = e.join("manifest.jsonl");
    let text = std::fs::read_to_string(&manifest).unwrap();
    // As if killed after the files were written but before the last rows were appended, in
    // the middle of a row.
    let keep: String = text.lines().take(10).map(|l| format!("{l}\n")).collect();
    std::fs::write(&manifest, format!("{keep}{{\"entry\":\"japan")).unwrap();
    let run = convert(&spec, &es);
    assert_eq!((run.n("written"), run.n("already_present")), (5, 10));
    let files = std::fs::read_dir(e.join("INBOX")).unwrap().count();
    assert_eq!(files, 15);
    assert_eq!(std::fs::read_to_string(&manifest).unwrap(), text);
    // A folder that is not a mailkeep export is never written into.
    let foreign = d.path().join("foreign");
    std::fs::create_dir(&foreign).unwrap();
    std::fs::write(foreign.join("note.txt"), "mine").unwrap();
    let run = convert_env(&spec, &format!("eml:{}", foreign.display()), &[], &[]);
    run.assert_code(6)
        .assert_one_line_error(&["foreign", "manifest.jsonl"]);
}

// ---------------------------------------------------------------------------------------------
// Damaged zips
// ---------------------------------------------------------------------------------------------

/// Writes a zip by hand: (name, data, method) entries.
fn handmade_zip(path: &Path, entries: &[(&str, &[u8])]) {
    let mut w = zip::ZipWriter::new(std::fs::File::create(path).unwrap());
    for (name, data) in entries {
        let opts = zip::write::SimpleFileOptions::default()
            .compression_method(zip::CompressionMethod::Stored);
        if name.ends_with('/') {
            w.add_directory(*name, opts).unwrap();
        } else {
            w.start_file(*name, opts).unwrap();
            w.write_all(data).unwrap();
        }
    }
    w.finish().unwrap();
}

fn row(entry: &str, mailbox: &str, data: &[u8]) -> String {
    format!(
        "{{\"entry\":\"{entry}\",\"mailbox\":\"{mailbox}\",\"flags\":[\"\\\\Seen\"],\"keywords\":[],\"internal_date\":1700000000,\"date_source\":\"ledger\",\"source_id\":\"id-{entry}\",\"size\":{},\"sha256\":\"{}\"}}\n",
        data.len(),
        sha256(data)
    )
}

#[test]
fn damaged_zips_are_named_by_the_reader_and_by_check() {
    let d = scratch();
    let good: &[u8] = b"Subject: a\n\nbody\n";
    let other: &[u8] = b"Subject: b\n\nbody\n";

    // A flipped byte in a stored entry: CRC-32.
    let z = d.path().join("crc.zip");
    let manifest = row("INBOX/000001.eml", "INBOX", good);
    handmade_zip(
        &z,
        &[
            ("INBOX/000001.eml", good),
            ("manifest.jsonl", manifest.as_bytes()),
        ],
    );
    let mut bytes = std::fs::read(&z).unwrap();
    let at = bytes.windows(4).position(|w| w == b"body").unwrap();
    bytes[at] = b'B';
    std::fs::write(&z, &bytes).unwrap();
    let mut src = source::open(&format!("zip:{}", z.display())).unwrap();
    let e = src
        .messages(&mailkeep::core::message::MailboxName::inbox(), &mut |_| {
            Ok(())
        })
        .unwrap_err();
    let text = e.to_string();
    assert!(
        text.contains("crc.zip") && text.contains("INBOX/000001.eml") && text.contains("CRC"),
        "{text}"
    );
    assert_eq!(e.exit(), mailkeep::core::error::Exit::Archive);
    assert_eq!(
        mailkeep::archive::zip::reader::check(&z).unwrap(),
        vec![ZipProblem::Crc {
            entry: "INBOX/000001.eml".into()
        }]
    );

    // An entry whose bytes are not the manifest's; a row without entry; an entry without row.
    let z = d.path().join("sha.zip");
    let manifest = format!(
        "{}{}",
        row("INBOX/000001.eml", "INBOX", other),
        row("INBOX/000002.eml", "INBOX", good)
    );
    handmade_zip(
        &z,
        &[
            ("INBOX/000001.eml", good),
            ("Sent%2Fx/loose.eml", other),
            ("manifest.jsonl", manifest.as_bytes()),
        ],
    );
    let mut src = source::open(&format!("zip:{}", z.display())).unwrap();
    let e = src
        .messages(&mailkeep::core::message::MailboxName::inbox(), &mut |_| {
            Ok(())
        })
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("sha.zip") && e.contains("INBOX/000001.eml") && e.contains("SHA-256"),
        "{e}"
    );
    assert_eq!(
        mailkeep::archive::zip::reader::check(&z).unwrap(),
        vec![
            ZipProblem::MissingEntry {
                entry: "INBOX/000002.eml".into()
            },
            ZipProblem::Sha256 {
                entry: "INBOX/000001.eml".into(),
                manifest: sha256(other),
                actual: sha256(good),
            },
            ZipProblem::NoManifestRow {
                entry: "Sent%2Fx/loose.eml".into()
            },
        ]
    );
    // The loose entry is still a message, in its folder's mailbox (escapes decoded).
    let mut src = source::open(&format!("zip:{}", z.display())).unwrap();
    let mbs: Vec<String> = src
        .mailboxes()
        .unwrap()
        .iter()
        .map(|m| m.to_string())
        .collect();
    // One level holding `/` (DESIGN.md invariant 5): shown `%2F`.
    assert_eq!(mbs, ["INBOX", "Sent%2Fx"]);
    assert!(src
        .warnings()
        .iter()
        .any(|w| w.contains("1 entry without a row")));

    // A foreign zip (no manifest) is read by folders; adding to it is refused.
    let z = d.path().join("foreign.zip");
    handmade_zip(
        &z,
        &[("Work/", b""), ("Work/a.eml", good), ("b.eml", other)],
    );
    let read = read_all(&format!("zip:{}", z.display()));
    assert_eq!(read.keys().collect::<Vec<_>>(), ["INBOX", "Work"]);
    assert_eq!(
        mailkeep::archive::zip::reader::check(&z).unwrap()[0],
        ZipProblem::NoManifest
    );
    let before = std::fs::read(&z).unwrap();
    let run = convert_env(
        &format!("eml:{}", support::corpus_dir().join("eml/html").display()),
        &format!("zip:{}", z.display()),
        &[],
        &[],
    );
    run.assert_code(6)
        .assert_one_line_error(&["foreign.zip", "not a mailkeep zip"]);
    assert_eq!(std::fs::read(&z).unwrap(), before);
    assert!(!d.path().join("foreign.zip.partial").exists());
}

// ---------------------------------------------------------------------------------------------
// The command line
// ---------------------------------------------------------------------------------------------

#[test]
fn bad_command_lines_are_usage_errors() {
    let d = scratch();
    let src = format!("eml:{}", support::corpus_dir().join("eml/html").display());
    let cases: Vec<(String, String, Vec<&str>, &str)> = vec![
        (
            src.clone(),
            format!("mbox:{}", d.path().join("m").display()),
            vec!["--store"],
            "--store is for a zip",
        ),
        (
            src.clone(),
            "zap:/x".into(),
            vec![],
            "unknown target kind `zap:`",
        ),
        (src.clone(), "/x".into(), vec![], "write the target as"),
        (
            "imaps://a@h".into(),
            format!("zip:{}", d.path().join("x.zip").display()),
            vec![],
            "write the source as",
        ),
        (
            format!("maildir:{}", d.path().display()),
            format!("eml:{}", d.path().join("inside").display()),
            vec![],
            "inside the source",
        ),
    ];
    for (from, to, extra, want) in cases {
        let run = convert_env(&from, &to, &extra, &[]);
        run.assert_code(2).assert_one_line_error(&[want]);
        assert_eq!(run.report["exit_code"], 2, "{run:#?}");
    }
    // A missing source: exit 6, nothing created.
    let target = d.path().join("never.zip");
    let run = convert_env(
        &format!("maildir:{}", d.path().join("missing").display()),
        &format!("zip:{}", target.display()),
        &[],
        &[],
    );
    run.assert_code(6)
        .assert_one_line_error(&["missing", "does not exist"]);
    assert!(!target.exists());
    let out = support::mailkeep()
        .args(["convert", "--help"])
        .output()
        .unwrap();
    let help = String::from_utf8_lossy(&out.stdout);
    assert!(
        help.contains("--store") && help.contains("thunderbird:DIR"),
        "{help}"
    );
}

// ---------------------------------------------------------------------------------------------
// Failures while writing, and targets that are not what they should be
// ---------------------------------------------------------------------------------------------

/// `mailkeep convert FROM TO --json` with a file size limit (`ulimit -f`, in bytes) in the
/// child: a write past it fails like a full disk does (EFBIG instead of ENOSPC).
fn convert_with_file_limit(from: &str, to: &str, limit: u64) -> Run {
    use std::os::unix::process::CommandExt;
    let mut cmd = support::mailkeep();
    cmd.arg("convert").arg(from).arg(to).arg("--json");
    // SAFETY: only async-signal-safe calls (signal, setrlimit) between fork and exec.
    unsafe {
        cmd.pre_exec(move || {
            libc::signal(libc::SIGXFSZ, libc::SIG_IGN);
            let lim = libc::rlimit {
                rlim_cur: limit,
                rlim_max: limit,
            };
            if libc::setrlimit(libc::RLIMIT_FSIZE, &lim) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    Run::from_output(cmd.output().unwrap())
}

#[test]
fn zip_write_failure_is_one_line_and_keeps_the_old_zip() {
    let d = scratch();
    let z = d.path().join("keep.zip");
    convert(
        &format!("eml:{}", support::corpus_dir().join("eml/html").display()),
        &format!("zip:{}", z.display()),
    );
    let before = std::fs::read(&z).unwrap();
    let big = format!(
        "eml:{}",
        support::corpus_dir()
            .join("eml/spamassassin/hard_ham")
            .display()
    );
    let partial = d.path().join("keep.zip.partial");
    for (target, state) in [
        (z.clone(), "(the zip is unchanged)"),
        (d.path().join("new.zip"), "(no zip was written)"),
    ] {
        let run = convert_with_file_limit(&big, &format!("zip:{}", target.display()), 300_000);
        run.assert_code(6).assert_one_line_error(&[
            &format!("archive {}: writing `INBOX/", target.display()),
            "File too large",
            "write the zip elsewhere",
            state,
        ]);
        // Nothing of the zip library's own complaints, and nothing counted as written.
        assert!(!run.stderr.contains("ZipWriter"), "{run:#?}");
        assert_eq!(run.report["exit"], "archive", "{run:#?}");
        assert_eq!((run.n("written"), run.n("written_bytes")), (0, 0));
        assert!(run.report["mailboxes"]
            .as_array()
            .unwrap()
            .iter()
            .all(|m| m["written"] == 0 && m["written_bytes"] == 0));
        assert!(run.report["error"].as_str().unwrap().contains(state));
    }
    assert_eq!(std::fs::read(&z).unwrap(), before, "the old zip changed");
    assert!(!d.path().join("new.zip").exists());
    assert!(!partial.exists() && !d.path().join("new.zip.partial").exists());

    // Without --json, a stopped run prints no summary claiming messages were written.
    let out = {
        use std::os::unix::process::CommandExt;
        let mut cmd = support::mailkeep();
        cmd.arg("convert")
            .arg(&big)
            .arg(format!("zip:{}", d.path().join("new.zip").display()));
        // SAFETY: only async-signal-safe calls between fork and exec.
        unsafe {
            cmd.pre_exec(|| {
                libc::signal(libc::SIGXFSZ, libc::SIG_IGN);
                let lim = libc::rlimit {
                    rlim_cur: 300_000,
                    rlim_max: 300_000,
                };
                libc::setrlimit(libc::RLIMIT_FSIZE, &lim);
                Ok(())
            });
        }
        cmd.output().unwrap()
    };
    assert_eq!(out.status.code(), Some(6));
    assert_eq!(String::from_utf8_lossy(&out.stdout), "");
}

#[test]
fn convert_refuses_folders_that_are_not_archives_or_paths_through_a_file() {
    let d = scratch();
    let src = format!("eml:{}", support::corpus_dir().join("eml/html").display());
    // Someone's folder: neither target kind scatters an archive into it.
    let home = d.path().join("home");
    std::fs::create_dir_all(home.join("photos")).unwrap();
    std::fs::write(home.join("notes.txt"), b"mine\n").unwrap();
    let before = support::run::snapshot(&home);
    for (kind, what) in [
        ("maildir", " nor a Maildir (no cur/ or new/); "),
        ("mbox", " (no mailkeep/ folder); "),
    ] {
        let run = convert_env(&src, &format!("{kind}:{}", home.display()), &[], &[]);
        run.assert_code(6).assert_one_line_error(&[
            &format!(
                "archive {}: is not empty (it holds `notes.txt`)",
                home.display()
            ),
            what,
            "convert into a new or empty folder",
        ]);
        assert_eq!(
            support::run::snapshot(&home),
            before,
            "{kind}: folder changed"
        );
        assert_eq!(
            std::fs::read_dir(&home).unwrap().count(),
            2,
            "{kind}: something was created"
        );
    }
    // An existing Maildir (another program's) is added to, and an empty folder is fine.
    let maildir = d.path().join("Maildir");
    for sub in ["cur", "new", "tmp"] {
        std::fs::create_dir_all(maildir.join(sub)).unwrap();
    }
    std::fs::write(maildir.join("cur/1.host:2,S"), b"Subject: old\n\nmail\n").unwrap();
    let run = convert(&src, &format!("maildir:{}", maildir.display()));
    assert_eq!(run.n("written"), 1);
    assert_eq!(
        std::fs::read(maildir.join("cur/1.host:2,S")).unwrap(),
        b"Subject: old\n\nmail\n"
    );
    let empty = d.path().join("empty");
    std::fs::create_dir(&empty).unwrap();
    assert_eq!(
        convert(&src, &format!("mbox:{}", empty.display())).n("written"),
        1
    );
    // A rerun into the archive it made is fine.
    assert_eq!(
        convert(&src, &format!("mbox:{}", empty.display())).n("written"),
        0
    );

    // A path through a file: one line naming the file, nothing created.
    let file = d.path().join("afile");
    std::fs::write(&file, b"x").unwrap();
    for target in [
        "zip:afile/y.zip",
        "eml:afile/y",
        "maildir:afile/y",
        "mbox:afile/y/z",
        "thunderbird:afile/y",
    ] {
        let (kind, rel) = target.split_once(':').unwrap();
        let run = convert_env(
            &src,
            &format!("{kind}:{}", d.path().join(rel).display()),
            &[],
            &[],
        );
        run.assert_code(6).assert_one_line_error(&[
            &format!("archive {}: is a file, not a folder", file.display()),
            &d.path().join(rel).display().to_string(),
            "choose another path",
        ]);
        assert_eq!(std::fs::read(&file).unwrap(), b"x");
    }
}

#[test]
fn thunderbird_folders_are_never_named_like_files_thunderbird_skips() {
    let d = scratch();
    let src = d.path().join("src");
    let msg =
        std::fs::read(support::corpus_dir().join("eml/html/notmuch_embedded-image.eml")).unwrap();
    let names = [
        "notes.json",
        "old.BAK",
        "run.log",
        "index.html",
        "x.msf",
        "INBOX",
    ];
    for n in names {
        std::fs::create_dir_all(src.join(n)).unwrap();
        std::fs::write(src.join(n).join("m.eml"), &msg).unwrap();
    }
    let tb = d.path().join("tb");
    let run = convert(
        &format!("eml:{}", src.display()),
        &format!("thunderbird:{}", tb.display()),
    );
    assert_eq!(run.n("written"), 6);
    let mut files: Vec<String> = std::fs::read_dir(&tb)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    files.sort();
    assert_eq!(
        files,
        [
            "Inbox",
            "index%2Ehtml",
            "notes%2Ejson",
            "old%2EBAK",
            "run%2Elog",
            "x%2Emsf"
        ]
    );
    // Every message comes back (none hidden in a file the reader takes for something else).
    let back = read_all(&format!("thunderbird:{}", tb.display()));
    assert_eq!(count(&back), 6, "{back:?}");
}

#[test]
fn foreign_zip_entries_with_dot_dot_paths_are_skipped_with_a_warning() {
    let d = scratch();
    let z = d.path().join("odd.zip");
    let m: &[u8] = b"Subject: x\n\nbody\n";
    handmade_zip(
        &z,
        &[
            ("../../up.eml", m),
            ("a/../../b.eml", m),
            ("ok/c.eml", m),
            (".hidden/d.eml", m),
            ("__MACOSX/ok/._c.eml", m),
        ],
    );
    let out = support::mailkeep()
        .arg("list")
        .arg(format!("zip:{}", z.display()))
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert!(
        stdout.ends_with("1 mailbox, 1 message, 17 B, no dates (1 undated)\n"),
        "{stdout}"
    );
    assert_eq!(
        String::from_utf8(out.stderr).unwrap(),
        format!(
            "mailkeep: warning: {0}: 1 entry without a row in manifest.jsonl (first: `ok/c.eml`): read without flags, dated by their headers\n\
             mailkeep: warning: {0}: 2 entries skipped: a `..` or `.` in the path (first: `../../up.eml`); extract them with a zip tool you trust\n",
            z.display()
        )
    );
}

#[test]
fn thunderbird_and_eml_write_failures_say_what_to_do() {
    let d = scratch();
    let big = format!(
        "eml:{}",
        support::corpus_dir()
            .join("eml/spamassassin/hard_ham")
            .display()
    );
    // Thunderbird: the folder being written is not put in place and counts as not written.
    let tb = d.path().join("tb");
    let run = convert_with_file_limit(&big, &format!("thunderbird:{}", tb.display()), 300_000);
    run.assert_code(6).assert_one_line_error(&[
        &format!("archive {}: File too large", tb.join("Inbox").display()),
        "does not allow a file this big",
    ]);
    assert_eq!((run.n("written"), run.n("written_bytes")), (0, 0));
    assert_eq!(
        std::fs::read_dir(&tb).unwrap().count(),
        0,
        "a folder file was left"
    );
    // eml: the message file that did not fit is named; a rerun without the limit finishes.
    let eml = d.path().join("eml");
    let run = convert_with_file_limit(&big, &format!("eml:{}", eml.display()), 300_000);
    run.assert_code(6).assert_one_line_error(&[
        &format!("archive {}/INBOX/", eml.display()),
        ".eml: File too large",
    ]);
    let run = convert(&big, &format!("eml:{}", eml.display()));
    assert_eq!(count(&read_all(&format!("eml:{}", eml.display()))), 70);
    assert_eq!(run.n("written") + run.n("already_present"), 70);
}

/// Every .eml of the corpus through a Thunderbird folder tree and back keeps its bytes, flags
/// and date: the reader drops only the X-Mozilla lines the writer added, not the ones three
/// spamassassin messages already carried (`X-Mozilla-Status2: 00000000` in their headers).
/// The one documented change: a body line starting `From ` comes back as `>From ` (Thunderbird
/// quotes them and never unquotes; two corpus messages have one), so bytes are compared with
/// such lines quoted on both sides.
#[test]
fn corpus_eml_through_thunderbird_keeps_every_byte() {
    let spec = format!("eml:{}", support::corpus_dir().join("eml").display());
    let d = scratch();
    let tb = format!("thunderbird:{}", d.path().join("tb").display());
    let run = convert(&spec, &tb);
    assert_eq!(run.n("written"), 402);
    fn quoted(raw: &[u8]) -> String {
        let mut out = Vec::with_capacity(raw.len());
        for line in raw.split_inclusive(|&b| b == b'\n') {
            if line.starts_with(b"From ") {
                out.push(b'>');
            }
            out.extend_from_slice(line);
        }
        sha256(&out)
    }
    let want: Vec<Msg> = read_with(&spec, quoted).into_values().flatten().collect();
    let got: Vec<Msg> = read_with(&tb, quoted).into_values().flatten().collect();
    let sorted = |mut v: Vec<Msg>| {
        v.sort();
        v
    };
    let (want, got) = (sorted(want), sorted(got));
    let lost: Vec<&Msg> = want.iter().filter(|m| !got.contains(m)).collect();
    let new: Vec<&Msg> = got.iter().filter(|m| !want.contains(m)).collect();
    assert_eq!(
        (lost.len(), new.len(), got.len()),
        (0, 0, 402),
        "lost {lost:?}\nnew {new:?}"
    );
}
