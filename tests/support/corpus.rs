//! The shared real-mail corpus (`shared/corpus`) as a list of messages: every message of every
//! mbox file (split with mailkeep's mboxrd reader, whose per-file counts are pinned in
//! `tests/mbox_corpus.rs`), every Maildir message file, and every `.eml` file.

use std::path::{Path, PathBuf};

use mailkeep::archive::mbox::format::MboxReader;

/// One corpus message: where it came from and its exact bytes.
#[derive(Debug, Clone)]
pub struct CorpusMessage {
    pub origin: String,
    pub raw: Vec<u8>,
}

/// Messages in the corpus, by section: public-mbox 3,622; maildir 263; eml 402.
pub const CORPUS_TOTAL: usize = 3_622 + 263 + 402;

fn files_under(dir: &Path, out: &mut Vec<PathBuf>) {
    let mut entries: Vec<_> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .flatten()
        .map(|e| e.path())
        .collect();
    entries.sort();
    for p in entries {
        if p.is_dir() {
            files_under(&p, out);
        } else {
            out.push(p);
        }
    }
}

/// Every message of the corpus, in a stable order.
pub fn all() -> Vec<CorpusMessage> {
    let root = super::corpus_dir();
    let mut out = Vec::new();
    let mut mboxes: Vec<PathBuf> = std::fs::read_dir(root.join("public-mbox"))
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "mbox"))
        .collect();
    mboxes.sort();
    for p in mboxes {
        let f = std::io::BufReader::new(std::fs::File::open(&p).unwrap());
        for (i, m) in MboxReader::new(f).with_path(&p).enumerate() {
            let m = m.unwrap_or_else(|e| panic!("{}: {e}", p.display()));
            out.push(CorpusMessage {
                origin: format!("{}#{i}", p.file_name().unwrap().to_string_lossy()),
                raw: m.raw,
            });
        }
    }
    for section in ["maildir", "eml"] {
        let mut files = Vec::new();
        files_under(&root.join(section), &mut files);
        for p in files {
            let name = p.file_name().unwrap().to_string_lossy().to_string();
            if name.starts_with('.') || name.ends_with(".txt") {
                continue; // .gitkeep placeholders and the SOURCE-MAP
            }
            if section == "maildir"
                && !p
                    .parent()
                    .is_some_and(|d| d.ends_with("cur") || d.ends_with("new"))
            {
                continue;
            }
            out.push(CorpusMessage {
                origin: p.strip_prefix(&root).unwrap().display().to_string(),
                raw: std::fs::read(&p).unwrap(),
            });
        }
    }
    out
}
