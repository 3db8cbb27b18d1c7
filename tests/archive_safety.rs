//! Issue 14, items 4 and 6: nothing outside the tree (no symbolic link is followed when an
//! archive, eml or Thunderbird tree is read, none inside a target when it is written), safe
//! readers (a shared archive lock against the writer's exclusive one, exit 5 either way; an
//! mbox read no further than the ledger's committed length), and a failed first login that
//! leaves no empty archive folder behind.
//!
//! Each test failed on the code before the fix: `restore` uploaded the file a link pointed
//! to, `convert eml:` copied a linked folder into the zip, a link loop made phantom mailboxes,
//! a backup wrote through `.Sent/cur -> elsewhere`, `list`/`convert`/`export` copied the
//! uncommitted tail a killed backup left in an mbox file and took no lock, and a wrong
//! password left the new archive folder behind.

mod support;

use std::collections::BTreeSet;
use std::os::unix::fs::symlink;
use std::path::Path;

use mailkeep::archive::lock::ArchiveLock;
use support::dovecot::{Dovecot, User};
use support::run::Run;

const PW_VAR: &str = "MAILKEEP_TEST_PASSWORD";

fn message(i: usize) -> Vec<u8> {
    format!(
        "From: a@example.org\nTo: b@example.org\nSubject: safe {i}\nDate: Mon, 10 Mar 2025 07:0{i}:00 +0100\nMessage-ID: <safe{i}@example.org>\n\nbody {i}\n"
    )
    .into_bytes()
}

fn run(args: &[&str]) -> Run {
    Run::from_output(support::mailkeep().args(args).output().unwrap())
}

fn backup(d: &Dovecot, u: &User, archive: &str, password: &str) -> Run {
    Run::from_output(
        support::mailkeep()
            .args(["backup", &d.url("imaps", u), archive, "--json", "--tls-ca"])
            .arg(&d.ca_pem)
            .args(["--password-env", PW_VAR])
            .env(PW_VAR, password)
            .output()
            .unwrap(),
    )
}

/// Every file below `dir` (relative paths), links included, not followed.
fn tree(dir: &Path) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap().flatten() {
            let p = e.path();
            out.insert(p.strip_prefix(dir).unwrap().display().to_string());
            if e.file_type().unwrap().is_dir() {
                stack.push(p);
            }
        }
    }
    out
}

fn zip_entries(path: &Path) -> Vec<String> {
    let mut z = zip::ZipArchive::new(std::fs::File::open(path).unwrap()).unwrap();
    let mut names: Vec<String> = (0..z.len())
        .map(|i| z.by_index(i).unwrap().name().to_string())
        .collect();
    names.sort();
    names
}

fn warning_lines(stderr: &str) -> Vec<&str> {
    stderr
        .lines()
        .filter(|l| l.contains("a symbolic link, not followed"))
        .collect()
}

// ---------------------------------------------------------------------------------------------
// Reading: no link followed
// ---------------------------------------------------------------------------------------------

#[test]
fn restore_does_not_upload_a_linked_message_file_or_folder_from_outside() {
    let d = Dovecot::start();
    let u = d.add_user("target", "pw");
    let tmp = tempfile::tempdir().unwrap();
    let outside = tmp.path().join("outside");
    std::fs::create_dir_all(outside.join("cur")).unwrap();
    std::fs::write(
        outside.join("secret"),
        "Subject: outside the archive\n\nsecret\n",
    )
    .unwrap();
    std::fs::write(
        outside.join("cur/1.x:2,"),
        "Subject: outside folder\n\nsecret 2\n",
    )
    .unwrap();
    let root = tmp.path().join("archive");
    for sub in ["cur", "new", "tmp"] {
        std::fs::create_dir_all(root.join(sub)).unwrap();
    }
    for i in 0..2 {
        std::fs::write(root.join(format!("cur/{i}.host:2,S")), message(i)).unwrap();
    }
    let link_file = root.join("cur/9.host:2,S");
    symlink(outside.join("secret"), &link_file).unwrap();
    let link_dir = root.join(".Evil");
    symlink(&outside, &link_dir).unwrap();

    let state = tmp.path().join("state");
    let out = support::mailkeep()
        .args([
            "restore",
            &format!("maildir:{}", root.display()),
            &d.url("imaps", &u),
            "--json",
            "--tls-ca",
        ])
        .arg(&d.ca_pem)
        .args(["--password-env", PW_VAR])
        .env(PW_VAR, &u.password)
        .env("XDG_STATE_HOME", &state)
        .output()
        .unwrap();
    let r = Run::from_output(out);
    r.assert_code(0);
    assert_eq!(r.n("read"), 2, "{r:#?}");
    assert_eq!(r.n("uploaded"), 2, "{r:#?}");
    assert_eq!(u.message_count("INBOX"), 2);
    assert!(!u.mailbox_dir("Evil").exists(), "a mailbox from the link");
    let warnings: Vec<String> = r.report["warnings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|w| w.as_str().unwrap().to_string())
        .filter(|w| w.contains("symbolic link"))
        .collect();
    assert_eq!(
        warnings,
        vec![
            format!(
                "{}: a symbolic link, not followed (mailkeep reads nothing outside the archive); skipped",
                link_dir.display()
            ),
            format!(
                "{}: a symbolic link, not followed (mailkeep reads nothing outside the archive); skipped",
                link_file.display()
            ),
        ]
    );
    for m in u.messages("INBOX") {
        assert!(!String::from_utf8_lossy(&m).contains("secret"));
    }
}

#[test]
fn convert_eml_does_not_copy_a_linked_folder_or_file_into_the_zip() {
    let tmp = tempfile::tempdir().unwrap();
    let outside = tmp.path().join("etc");
    std::fs::create_dir_all(&outside).unwrap();
    std::fs::write(outside.join("shadow"), "root:secret\n").unwrap();
    let eml = tmp.path().join("eml");
    std::fs::create_dir_all(eml.join("INBOX")).unwrap();
    for i in 0..2 {
        std::fs::write(eml.join(format!("INBOX/{i}.eml")), message(i)).unwrap();
    }
    symlink(&outside, eml.join("etc")).unwrap();
    symlink(outside.join("shadow"), eml.join("INBOX/shadow.eml")).unwrap();
    let zip = tmp.path().join("out.zip");
    let r = run(&[
        "convert",
        &format!("eml:{}", eml.display()),
        &format!("zip:{}", zip.display()),
        "--json",
    ]);
    r.assert_code(0);
    assert_eq!(
        zip_entries(&zip),
        vec!["INBOX/000001.eml", "INBOX/000002.eml", "manifest.jsonl"],
        "{r:#?}"
    );
    let want: Vec<String> = [eml.join("etc"), eml.join("INBOX/shadow.eml")]
        .iter()
        .map(|l| {
            format!(
                "mailkeep: warning: {}: a symbolic link, not followed (mailkeep reads nothing outside the archive); skipped",
                l.display()
            )
        })
        .collect();
    assert_eq!(warning_lines(&r.stderr), want, "{r:#?}");
    assert_eq!(count_json_links(&r), 2, "{r:#?}");
    let mut z = zip::ZipArchive::new(std::fs::File::open(&zip).unwrap()).unwrap();
    for i in 0..z.len() {
        let mut text = String::new();
        std::io::Read::read_to_string(&mut z.by_index(i).unwrap(), &mut text).unwrap();
        assert!(!text.contains("root:secret"), "{text}");
    }
}

/// Symbolic-link warnings in a `--json` report's `warnings`.
fn count_json_links(r: &Run) -> usize {
    r.report["warnings"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter(|w| w.as_str().unwrap_or("").contains("a symbolic link"))
                .count()
        })
        .unwrap_or(0)
}

#[test]
fn a_link_loop_makes_no_phantom_mailboxes() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("tree");
    for dir in ["cur", "new", "tmp", "Work/cur", "Work/new", "Work/tmp"] {
        std::fs::create_dir_all(root.join(dir)).unwrap();
    }
    std::fs::write(root.join("cur/1.host:2,"), message(1)).unwrap();
    std::fs::write(root.join("Work/cur/2.host:2,"), message(2)).unwrap();
    symlink("..", root.join("Work/loop")).unwrap();

    let r = run(&["list", &format!("maildir:{}", root.display()), "--json"]);
    r.assert_code(0);
    let boxes: Vec<&str> = r.report["mailboxes"]
        .as_array()
        .unwrap_or_else(|| panic!("{r:#?}"))
        .iter()
        .map(|m| m["mailbox"].as_str().unwrap())
        .collect();
    assert_eq!(boxes, vec!["INBOX", "Work"], "{r:#?}");
    assert_eq!(
        warning_lines(&r.stderr),
        vec![
            format!(
                "mailkeep: warning: {}: a symbolic link, not followed (mailkeep reads nothing outside the archive); skipped",
                root.join("Work/loop").display()
            )
            .as_str(),
        ]
    );

    // The same tree read as eml: and mbox: (a directory tree) gives no phantom either.
    let mut src = mailkeep::archive::reader::open(&format!("eml:{}", root.display())).unwrap();
    let eml_boxes: Vec<String> = src
        .mailboxes()
        .unwrap()
        .iter()
        .map(|m| m.to_string())
        .collect();
    assert_eq!(eml_boxes, vec!["Work/cur", "cur"]);
    let mut src = mailkeep::archive::reader::open(&format!("mbox:{}", root.display())).unwrap();
    assert!(src.mailboxes().unwrap().is_empty());
    assert_eq!(src.warnings().len(), 1, "{:?}", src.warnings());
}

#[test]
fn a_thunderbird_folder_that_is_a_link_is_not_read() {
    let tmp = tempfile::tempdir().unwrap();
    let outside = tmp.path().join("outside");
    std::fs::create_dir_all(&outside).unwrap();
    std::fs::write(
        outside.join("Inbox"),
        "From - Mon Mar 10 07:00:00 2025\nSubject: outside\n\nsecret\n",
    )
    .unwrap();
    let local = tmp.path().join("Local Folders");
    std::fs::create_dir_all(&local).unwrap();
    std::fs::write(
        local.join("Sent"),
        "From - Mon Mar 10 07:00:00 2025\nSubject: mine\n\nhello\n",
    )
    .unwrap();
    symlink(outside.join("Inbox"), local.join("Inbox")).unwrap();
    symlink(&outside, local.join("Archive.sbd")).unwrap();
    let r = run(&[
        "list",
        &format!("thunderbird:{}", local.display()),
        "--json",
    ]);
    r.assert_code(0);
    let boxes: Vec<&str> = r.report["mailboxes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["mailbox"].as_str().unwrap())
        .collect();
    assert_eq!(boxes, vec!["Sent"], "{r:#?}");
    assert_eq!(r.report["messages"], 1);
    assert_eq!(warning_lines(&r.stderr).len(), 2, "{r:#?}");
}

// ---------------------------------------------------------------------------------------------
// Writing: no link followed
// ---------------------------------------------------------------------------------------------

#[test]
fn export_refuses_a_linked_mailbox_folder_in_the_export_folder() {
    let tmp = tempfile::tempdir().unwrap();
    let eml = tmp.path().join("eml");
    std::fs::create_dir_all(eml.join("INBOX")).unwrap();
    std::fs::write(eml.join("INBOX/1.eml"), message(1)).unwrap();
    let outside = tmp.path().join("outside");
    std::fs::create_dir_all(&outside).unwrap();
    let to = tmp.path().join("export");
    std::fs::create_dir_all(&to).unwrap();
    symlink(&outside, to.join("INBOX")).unwrap();
    let r = run(&[
        "export",
        &format!("eml:{}", eml.display()),
        "--to",
        to.to_str().unwrap(),
    ]);
    r.assert_code(6).assert_one_line_error(&[&format!(
        "mailkeep: {}: is a symbolic link; mailkeep writes nothing through a link",
        to.join("INBOX").display()
    )]);
    assert!(
        tree(&outside).is_empty(),
        "written outside: {:?}",
        tree(&outside)
    );
}

#[test]
fn backup_refuses_a_maildir_folder_whose_cur_is_a_link_out_of_the_archive() {
    let d = Dovecot::start();
    let u = d.add_user("alice", "pw");
    for i in 0..2 {
        u.seed_message("INBOX", &message(i), "S", None);
    }
    for i in 2..5 {
        u.seed_message("Sent", &message(i), "S", None);
    }
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("archive");
    let outside = tmp.path().join("outside");
    std::fs::create_dir_all(&outside).unwrap();
    std::fs::create_dir_all(root.join(".Sent")).unwrap();
    symlink(&outside, root.join(".Sent/cur")).unwrap();

    let r = backup(&d, &u, &format!("maildir:{}", root.display()), "pw");
    r.assert_code(6).assert_one_line_error(&[&format!(
        "mailkeep: archive {}: is a symbolic link; mailkeep writes nothing through a link (it could lead out of the archive): replace it with a real folder or file (while storing alice@127.0.0.1:",
        root.join(".Sent/cur").display()
    )]);
    assert!(
        tree(&outside).is_empty(),
        "written outside: {:?}",
        tree(&outside)
    );
    // The link is still a link; nothing replaced it.
    assert!(std::fs::symlink_metadata(root.join(".Sent/cur"))
        .unwrap()
        .file_type()
        .is_symlink());
}

// ---------------------------------------------------------------------------------------------
// Safe readers
// ---------------------------------------------------------------------------------------------

/// A mailkeep mbox archive of 3 messages (INBOX) written by a real backup, then an
/// uncommitted tail appended as a killed backup leaves it: a separator and a message cut off.
fn mbox_with_tail(d: &Dovecot, tmp: &Path) -> (std::path::PathBuf, u64, User) {
    let u = d.add_user("mb", "pw");
    for i in 0..3 {
        u.seed_message("INBOX", &message(i), "S", None);
    }
    let root = tmp.join("mbox-archive");
    backup(d, &u, &format!("mbox:{}", root.display()), "pw").assert_code(0);
    let file = root.join("INBOX.mbox");
    // What the writer does before it appends (the pending mark), then half an entry: the
    // state a backup killed in the middle of its append leaves.
    let len = std::fs::metadata(&file).unwrap().len();
    let mut ledger =
        mailkeep::archive::ledger::Ledger::open(&root.join("mailkeep/ledger.sqlite")).unwrap();
    ledger
        .set_pending(&mailkeep::archive::writer::TailMark {
            file: "INBOX.mbox".into(),
            len,
        })
        .unwrap();
    drop(ledger);
    let tail = b"From MAILER-DAEMON Mon Mar 10 07:09:00 2025\nFrom: a@example.org\nSubject: cut off\n\nhalf a bo";
    let mut f = std::fs::OpenOptions::new()
        .append(true)
        .open(&file)
        .unwrap();
    std::io::Write::write_all(&mut f, tail).unwrap();
    (root, tail.len() as u64, u)
}

#[test]
fn readers_stop_at_the_committed_end_of_an_mbox_and_report_the_tail() {
    let d = Dovecot::start();
    let tmp = tempfile::tempdir().unwrap();
    let (root, tail, u) = mbox_with_tail(&d, tmp.path());
    let file = root.join("INBOX.mbox");
    let committed = std::fs::metadata(&file).unwrap().len() - tail;
    let spec = format!("mbox:{}", root.display());
    let want_warning = format!(
        "{}: {tail} byte(s) after the committed end (byte {committed}) not read: an append the ledger never recorded (a backup that was killed or is running); the next backup of this archive removes them",
        file.display()
    );

    let r = run(&["list", &spec, "--json"]);
    r.assert_code(0);
    assert_eq!(r.report["messages"], 3, "{r:#?}");
    assert!(
        r.stderr
            .contains(&format!("mailkeep: warning: {want_warning}")),
        "{r:#?}"
    );

    let zip = tmp.path().join("out.zip");
    let r = run(&[
        "convert",
        &spec,
        &format!("zip:{}", zip.display()),
        "--json",
    ]);
    r.assert_code(0);
    assert_eq!(
        zip_entries(&zip),
        vec![
            "INBOX/000001.eml",
            "INBOX/000002.eml",
            "INBOX/000003.eml",
            "manifest.jsonl"
        ],
        "{r:#?}"
    );
    assert!(
        r.report["warnings"]
            .as_array()
            .unwrap()
            .iter()
            .any(|w| w.as_str() == Some(want_warning.as_str())),
        "{r:#?}"
    );

    let out = tmp.path().join("export");
    let r = run(&["export", &spec, "--to", out.to_str().unwrap(), "--json"]);
    r.assert_code(0);
    assert_eq!(r.n("written"), 3, "{r:#?}");
    assert_eq!(tree(&out.join("INBOX")).len(), 3);
    assert!(r.stderr.contains(&want_warning), "{r:#?}");
    // Nothing of the archive changed: the readers wrote nothing.
    assert_eq!(std::fs::metadata(&file).unwrap().len(), committed + tail);

    // The next backup cuts the tail, as the warning says; then nothing is left to report.
    let r = backup(&d, &u, &spec, "pw");
    r.assert_code(0);
    assert_eq!(r.n("fetched"), 0, "{r:#?}");
    assert_eq!(std::fs::metadata(&file).unwrap().len(), committed);
    let r = run(&["list", &spec, "--json"]);
    r.assert_code(0);
    assert_eq!(r.report["messages"], 3, "{r:#?}");
    assert_eq!(r.stderr, "", "{r:#?}");
}

#[test]
fn readers_are_refused_while_a_writer_holds_the_archive_and_the_other_way_round() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("archive");
    for sub in ["cur", "new", "tmp", "mailkeep"] {
        std::fs::create_dir_all(root.join(sub)).unwrap();
    }
    std::fs::write(root.join("mailkeep/kind"), "maildir\n").unwrap();
    std::fs::write(root.join("cur/1.host:2,S"), message(1)).unwrap();
    let lock_path = root.join("mailkeep/lock");
    let spec = format!("maildir:{}", root.display());
    let zip = tmp.path().join("out.zip");
    let export = tmp.path().join("export");
    let locked = format!(
        "mailkeep: archive {} is locked by another mailkeep run (pid {})",
        root.display(),
        std::process::id()
    );

    let writer = ArchiveLock::acquire(&lock_path, &root).unwrap();
    for args in [
        vec!["list", spec.as_str()],
        vec!["convert", spec.as_str(), &format!("zip:{}", zip.display())],
        vec!["export", spec.as_str(), "--to", export.to_str().unwrap()],
        vec!["verify", spec.as_str()],
    ] {
        let r = run(&args);
        r.assert_code(5);
        assert_eq!(r.stderr.trim_end(), locked, "{args:?}: {r:#?}");
    }
    assert!(!zip.exists() && !export.exists());
    drop(writer);

    // An eml: folder mailkeep wrote (it has a manifest) is read under a shared lock on the
    // folder, which `convert … eml:` holds exclusively while it writes.
    let eml = tmp.path().join("eml");
    run(&["convert", &spec, &format!("eml:{}", eml.display())]).assert_code(0);
    let eml_writer = exclusive_flock(&eml);
    let r = run(&["list", &format!("eml:{}", eml.display())]);
    r.assert_code(5);
    assert_eq!(
        r.stderr.trim_end(),
        format!(
            "mailkeep: archive {} is locked by another mailkeep run",
            eml.display()
        ),
        "{r:#?}"
    );
    drop(eml_writer);
    run(&["list", &format!("eml:{}", eml.display())]).assert_code(0);

    // Readers share: two at once are fine, and a writer is refused meanwhile, before it
    // logs in (the server here refuses every connection).
    let reader = shared_flock(&lock_path);
    let r = run(&["list", &spec, "--json"]);
    r.assert_code(0);
    let out = support::mailkeep()
        .args(["backup", "imap://alice@127.0.0.1:1", &spec])
        .args(["--password-env", PW_VAR])
        .env(PW_VAR, "pw")
        .output()
        .unwrap();
    let r = Run::from_output(out);
    r.assert_code(5);
    assert_eq!(
        r.stderr.trim_end(),
        format!(
            "mailkeep: archive {} is locked by another mailkeep run (pid {})",
            root.display(),
            std::process::id()
        ),
        "{r:#?}"
    );
    drop(reader);
}

/// An exclusive `flock` on `path`, as a writer holds it.
fn exclusive_flock(path: &Path) -> std::fs::File {
    use std::os::unix::io::AsRawFd;
    let f = std::fs::File::open(path).unwrap();
    // SAFETY: flock on a descriptor we own.
    assert_eq!(
        unsafe { libc::flock(f.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) },
        0
    );
    f
}

/// A shared `flock` on `path`, as a reader holds it.
fn shared_flock(path: &Path) -> std::fs::File {
    use std::os::unix::io::AsRawFd;
    let f = std::fs::File::open(path).unwrap();
    // SAFETY: flock on a descriptor we own.
    assert_eq!(
        unsafe { libc::flock(f.as_raw_fd(), libc::LOCK_SH | libc::LOCK_NB) },
        0
    );
    f
}

// ---------------------------------------------------------------------------------------------
// A failed first login leaves nothing behind
// ---------------------------------------------------------------------------------------------

#[test]
fn a_failed_first_login_leaves_no_archive_folder() {
    let d = Dovecot::start();
    let u = d.add_user("alice", "right");
    u.seed_message("INBOX", &message(1), "S", None);
    let tmp = tempfile::tempdir().unwrap();
    for kind in ["maildir", "mbox"] {
        let root = tmp.path().join(format!("new-{kind}"));
        let r = backup(&d, &u, &format!("{kind}:{}", root.display()), "wrong");
        r.assert_code(3);
        assert!(!root.exists(), "{kind}: {} left behind", root.display());
        let r = Run::from_output(
            support::mailkeep()
                .args([
                    "backup",
                    &d.url("pop3s", &u),
                    &format!("{kind}:{}", root.display()),
                    "--tls-ca",
                ])
                .arg(&d.ca_pem)
                .args(["--password-env", PW_VAR])
                .env(PW_VAR, "wrong")
                .output()
                .unwrap(),
        );
        r.assert_code(3);
        assert!(
            !root.exists(),
            "pop3 {kind}: {} left behind",
            root.display()
        );
    }
    // A refused connection (nothing listens on port 1): exit 4, nothing created.
    let root = tmp.path().join("refused");
    let r = Run::from_output(
        support::mailkeep()
            .args([
                "backup",
                "imap://alice@127.0.0.1:1",
                &format!("maildir:{}", root.display()),
            ])
            .args(["--password-env", PW_VAR])
            .env(PW_VAR, "pw")
            .output()
            .unwrap(),
    );
    r.assert_code(4);
    assert!(!root.exists());
    // With the right password the archive is created and filled.
    let root = tmp.path().join("new-maildir");
    backup(&d, &u, &format!("maildir:{}", root.display()), "right").assert_code(0);
    assert_eq!(support::run::maildir_messages(&root).len(), 1);
}
