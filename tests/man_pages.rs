//! The man pages in `man/` are generated from the clap definitions (`examples/mangen.rs`); this
//! test fails when they are stale, or when `man/` holds a page of a command that no longer
//! exists. Regenerate with `scripts/man.sh`.

#[path = "../examples/mangen.rs"]
mod mangen;

#[test]
fn man_pages_are_up_to_date() {
    let root = env!("CARGO_MANIFEST_DIR");
    let pages = mangen::pages();
    assert_eq!(pages[0].0, "mailkeep.1");
    assert!(
        pages.iter().any(|(n, _)| n == "mailkeep-backup.1"),
        "no page per command: {:?}",
        pages.iter().map(|(n, _)| n).collect::<Vec<_>>()
    );
    let mut stale = Vec::new();
    for (name, text) in &pages {
        let path = format!("{root}/man/{name}");
        if std::fs::read(&path).unwrap_or_default() != *text {
            stale.push(path);
        }
    }
    for entry in std::fs::read_dir(format!("{root}/man")).expect("read man/") {
        let name = entry.unwrap().file_name().to_string_lossy().into_owned();
        if name.ends_with(".1") && !pages.iter().any(|(n, _)| *n == name) {
            stale.push(format!("{root}/man/{name} (no such command)"));
        }
    }
    assert!(
        stale.is_empty(),
        "stale man pages: {stale:?}; run scripts/man.sh and commit the result"
    );
}

/// Each page says what its command does and lists its options, as `--help` does.
#[test]
fn man_pages_hold_the_help_text() {
    let pages = mangen::pages();
    let page = |name: &str| {
        let (_, text) = pages.iter().find(|(n, _)| n == name).unwrap();
        String::from_utf8(text.clone()).unwrap()
    };
    let top = page("mailkeep.1");
    assert!(top.contains(".TH mailkeep 1 "), "{top}");
    assert!(top.contains("mailkeep\\-backup(1)"), "{top}");
    let backup = page("mailkeep-backup.1");
    assert!(backup.contains("\\-\\-password\\-env"), "{backup}");
    assert!(backup.contains(".SH \"SEE ALSO\""), "{backup}");
}
