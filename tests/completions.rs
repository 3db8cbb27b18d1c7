//! The shell completions in `completions/` are generated from the clap definitions; this test
//! fails when they are stale. Regenerate with `scripts/completions.sh`.

use std::process::Command;

#[test]
fn completions_are_up_to_date() {
    let root = env!("CARGO_MANIFEST_DIR");
    let mut stale = Vec::new();
    for (shell, file) in [
        ("bash", "mailkeep.bash"),
        ("zsh", "_mailkeep"),
        ("fish", "mailkeep.fish"),
        ("powershell", "_mailkeep.ps1"),
        ("elvish", "mailkeep.elv"),
    ] {
        let out = Command::new(env!("CARGO_BIN_EXE_mailkeep"))
            .args(["completions", shell])
            .output()
            .expect("run mailkeep completions");
        assert!(out.status.success(), "mailkeep completions {shell} failed");
        assert!(!out.stdout.is_empty(), "empty completions for {shell}");
        let path = format!("{root}/completions/{file}");
        let on_disk = std::fs::read(&path).unwrap_or_default();
        if on_disk != out.stdout {
            stale.push(path);
        }
    }
    assert!(
        stale.is_empty(),
        "stale shell completions: {stale:?}; run scripts/completions.sh and commit the result"
    );
}
