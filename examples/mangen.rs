//! Writes the man pages in `man/` from the clap definitions (the same ones `--help` prints):
//! `man/mailkeep.1` and one page per command (`man/mailkeep-backup.1`, ...). Run it through
//! `scripts/man.sh` after changing the command line; `tests/man_pages.rs` fails when the
//! committed pages are stale. Read one with `man ./man/mailkeep.1`.

use clap::CommandFactory;

/// Every man page: its file name and its roff text, the top-level page first.
pub fn pages() -> Vec<(String, Vec<u8>)> {
    let mut cmd = mailkeep::cli::Cli::command().disable_help_subcommand(true);
    cmd.build();
    let subcommands: Vec<clap::Command> = cmd
        .get_subcommands()
        .filter(|s| !s.is_hide_set())
        .cloned()
        .collect();
    let names: Vec<String> = subcommands
        .iter()
        .map(|s| s.get_display_name().unwrap_or(s.get_name()).to_string())
        .collect();
    let mut out = Vec::new();
    let see_also: Vec<String> = names.iter().map(|n| man_ref(n)).collect();
    out.push(render(
        cmd,
        &format!(
            "{}\n.PP\nThe full manual, one page per command and per topic (archive formats, \
             exit codes, the JSON report, servers and their quirks), is docs/README.md in \
             mailkeep's source tree.",
            see_also.join(",\n")
        ),
    ));
    for sub in subcommands {
        out.push(render(sub, &man_ref("mailkeep")));
    }
    out
}

/// `\fBNAME\fR(1)`: a reference to another page.
fn man_ref(name: &str) -> String {
    format!("\\fB{}\\fR(1)", name.replace('-', "\\-"))
}

/// One page, with a SEE ALSO section.
fn render(cmd: clap::Command, see_also: &str) -> (String, Vec<u8>) {
    let man = clap_mangen::Man::new(cmd);
    let mut text = Vec::new();
    man.render(&mut text)
        .expect("render a man page into memory");
    text.extend_from_slice(format!(".SH \"SEE ALSO\"\n{see_also}\n").as_bytes());
    (man.get_filename(), text)
}

#[allow(dead_code)]
fn main() {
    let dir = std::path::PathBuf::from(std::env::args().nth(1).unwrap_or_else(|| "man".into()));
    std::fs::create_dir_all(&dir).expect("create the man page folder");
    let pages = pages();
    // A page of a command that no longer exists goes.
    for entry in std::fs::read_dir(&dir).expect("read the man page folder") {
        let path = entry.expect("read the man page folder").path();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        if name.ends_with(".1") && !pages.iter().any(|(n, _)| *n == name) {
            std::fs::remove_file(&path).expect("remove a stale man page");
        }
    }
    for (name, text) in &pages {
        std::fs::write(dir.join(name), text).expect("write a man page");
    }
    println!("{} man pages written to {}", pages.len(), dir.display());
}
