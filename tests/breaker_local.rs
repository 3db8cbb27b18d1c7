//! Found by an adversarial tester, no server needed (issue 14): each test failed before its
//! fix and asserts the safe behaviour; an `#[ignore]`d one is known and still open.

mod support;

use std::fs;
use std::path::Path;

use support::run::Run;

fn eml_tree(root: &Path, mailboxes: &[&str], n: usize) {
    for mb in mailboxes {
        let d = root.join(mb);
        fs::create_dir_all(&d).unwrap();
        for i in 0..n {
            fs::write(
                d.join(format!("m{i}.eml")),
                format!("From: a@b\nSubject: {mb} {i}\nMessage-ID: <{mb}.{i}@x>\n\nbody {i}\n"),
            )
            .unwrap();
        }
    }
}

fn run(args: &[&str]) -> Run {
    Run::from_output(support::mailkeep().args(args).output().unwrap())
}

/// `verify` reads a Maildir folder (`.Sub`) or `cur/` that is a symbolic link to a folder
/// outside the archive, and counts the files there as intact copies (exit 0). README: "a link
/// (to a message file, a folder, or a loop) is skipped with one warning naming it".
#[test]
fn breaker_verify_follows_a_linked_folder_out_of_the_archive() {
    let t = tempfile::tempdir().unwrap();
    eml_tree(&t.path().join("eml"), &["INBOX", "Sub"], 3);
    let dir = t.path().join("md");
    let archive = format!("maildir:{}", dir.display());
    run(&[
        "convert",
        &format!("eml:{}", t.path().join("eml").display()),
        &archive,
    ])
    .assert_code(0);
    let outside = t.path().join("outside");
    fs::create_dir(&outside).unwrap();
    fs::rename(dir.join(".Sub"), outside.join(".Sub")).unwrap();
    std::os::unix::fs::symlink(outside.join(".Sub"), dir.join(".Sub")).unwrap();
    fs::rename(dir.join("cur"), outside.join("cur")).unwrap();
    std::os::unix::fs::symlink(outside.join("cur"), dir.join("cur")).unwrap();
    let v = run(&["verify", &archive, "--json"]);
    eprintln!("{v:#?}");
    // `list` and `convert` skip the links (0 messages); verify reads all 6 from outside.
    assert_eq!(
        v.n("intact"),
        0,
        "verify read {} copies through links out of the archive (exit {})",
        v.n("intact"),
        v.code
    );
}

/// A Maildir `cur/` replaced by a link while a run writes: everything after the swap is
/// written through the link, outside the archive, and the run ends with exit 0.
#[test]
#[ignore = "known, open: a folder swapped for a link while a run writes is followed (paths are reopened; only the last component is O_NOFOLLOW)"]
fn breaker_writer_follows_a_cur_replaced_by_a_link_mid_run() {
    let t = tempfile::tempdir().unwrap();
    eml_tree(&t.path().join("eml"), &["INBOX"], 3000);
    let dir = t.path().join("md");
    let outside = t.path().join("outside");
    fs::create_dir(&outside).unwrap();
    let archive = format!("maildir:{}", dir.display());
    let mut child = support::mailkeep()
        .args([
            "convert",
            &format!("eml:{}", t.path().join("eml").display()),
            &archive,
        ])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let cur = dir.join("cur");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    loop {
        if fs::read_dir(&cur).map(|r| r.count() >= 20).unwrap_or(false) {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "convert did not start writing"
        );
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    fs::rename(&cur, dir.join("cur.real")).unwrap();
    std::os::unix::fs::symlink(&outside, &cur).unwrap();
    let st = child.wait().unwrap();
    let written_outside = fs::read_dir(&outside).unwrap().count();
    assert_eq!(
        written_outside,
        0,
        "{written_outside} message files written outside the archive through the link (exit {:?})",
        st.code()
    );
}

/// A mailbox whose path is too long for the file system (a zip entry 2100 levels deep) stops
/// `convert ... eml:`, `convert ... thunderbird:` and `export` with exit 6, so the mailboxes
/// after it are not written. Issue 14: "A name too long for the file system is a mailbox-scope
/// failure, not the end of the run" (and "same for export subfolders and thunderbird:
/// output"); README: counted as a failed mailbox (exit 1) while the others are archived.
#[test]
#[ignore = "known, open: a path too long for the file system stops convert into eml:/thunderbird: and export (exit 6) instead of failing its mailbox"]
fn breaker_too_long_path_stops_eml_thunderbird_and_export() {
    use std::io::Write as _;
    let t = tempfile::tempdir().unwrap();
    let zip_path = t.path().join("deep.zip");
    {
        let f = fs::File::create(&zip_path).unwrap();
        let mut z = zip::ZipWriter::new(f);
        let opts: zip::write::SimpleFileOptions = zip::write::SimpleFileOptions::default();
        let deep = vec!["a"; 2100].join("/");
        for (i, mb) in ["INBOX".to_string(), deep, "zz".to_string()]
            .iter()
            .enumerate()
        {
            z.start_file(format!("{mb}/00000{i}.eml"), opts).unwrap();
            z.write_all(
                format!("From: a@b\nSubject: {i}\nMessage-ID: <{i}@x>\n\nbody\n").as_bytes(),
            )
            .unwrap();
        }
        z.finish().unwrap();
    }
    let src = format!("zip:{}", zip_path.display());
    let mut bad = Vec::new();
    for (what, args) in [
        (
            "eml",
            vec![
                "convert".to_string(),
                src.clone(),
                format!("eml:{}", t.path().join("eml").display()),
            ],
        ),
        (
            "thunderbird",
            vec![
                "convert".to_string(),
                src.clone(),
                format!("thunderbird:{}", t.path().join("tb").display()),
            ],
        ),
        (
            "export",
            vec![
                "export".to_string(),
                src.clone(),
                "--to".to_string(),
                t.path().join("exp").display().to_string(),
            ],
        ),
    ] {
        let out = support::mailkeep().args(&args).output().unwrap();
        let zz = match what {
            "eml" => t.path().join("eml/zz"),
            "thunderbird" => t.path().join("tb/zz"),
            _ => t.path().join("exp/zz"),
        };
        eprintln!(
            "{what}: exit {:?}, zz written: {}",
            out.status.code(),
            zz.exists()
        );
        if out.status.code() != Some(1) || !zz.exists() {
            bad.push(format!(
                "{what}: exit {:?}, later mailbox written: {}",
                out.status.code(),
                zz.exists()
            ));
        }
    }
    assert!(bad.is_empty(), "{bad:?}");
}
