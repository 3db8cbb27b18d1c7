//! Every relative link in README.md and docs/*.md points at a file that exists, and every
//! `#anchor` at a heading of its page (GitHub's heading ids), so moving a section breaks this
//! test, not a reader's click. Links inside code (fenced blocks, `code spans`) are not links;
//! `http(s)://` and `mailto:` links are not checked. A self-check runs the same checker on a
//! made-up tree with known broken links, so a checker that finds nothing fails too.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

/// GitHub's id for a heading: lower case, everything but letters, digits, `-`, `_` and spaces
/// dropped (so backticks, colons, parentheses and apostrophes go), spaces turned into `-`.
fn slug(heading: &str) -> String {
    heading
        .trim()
        .to_lowercase()
        .chars()
        .filter(|c| c.is_alphanumeric() || *c == '-' || *c == '_' || *c == ' ')
        .map(|c| if c == ' ' { '-' } else { c })
        .collect()
}

/// The text of a Markdown file outside fenced code blocks, as paragraphs (a code span never
/// crosses a blank line).
fn prose_paragraphs(text: &str) -> Vec<String> {
    let mut paragraphs = Vec::new();
    let mut current = String::new();
    let mut fence: Option<&str> = None;
    for line in text.lines() {
        let trimmed = line.trim_start();
        if let Some(f) = fence {
            if trimmed.starts_with(f) {
                fence = None;
            }
            continue;
        }
        if trimmed.starts_with("```") || trimmed.starts_with("~~~") {
            fence = Some(&trimmed[..3]);
            paragraphs.push(std::mem::take(&mut current));
            continue;
        }
        if line.trim().is_empty() {
            paragraphs.push(std::mem::take(&mut current));
        } else {
            current.push_str(line);
            current.push('\n');
        }
    }
    paragraphs.push(current);
    paragraphs.retain(|p| !p.is_empty());
    paragraphs
}

/// `text` with its code spans (a run of N backticks up to the next run of exactly N) removed.
fn strip_code_spans(text: &str) -> String {
    let b = text.as_bytes();
    let mut out = String::new();
    let mut i = 0;
    let mut copied = 0;
    while i < b.len() {
        if b[i] != b'`' {
            i += 1;
            continue;
        }
        let start = i;
        while i < b.len() && b[i] == b'`' {
            i += 1;
        }
        let n = i - start;
        // Find the closing run of exactly n backticks.
        let mut j = i;
        let mut close = None;
        while j < b.len() {
            if b[j] == b'`' {
                let s = j;
                while j < b.len() && b[j] == b'`' {
                    j += 1;
                }
                if j - s == n {
                    close = Some(j);
                    break;
                }
            } else {
                j += 1;
            }
        }
        if let Some(end) = close {
            out.push_str(&text[copied..start]);
            copied = end;
            i = end;
        }
    }
    out.push_str(&text[copied..]);
    out
}

/// The ids of a Markdown file's headings (ATX `#` headings outside code), with GitHub's `-1`,
/// `-2`... for repeated ones.
fn anchors(text: &str) -> Vec<String> {
    let mut seen: HashMap<String, usize> = HashMap::new();
    let mut ids = Vec::new();
    for para in prose_paragraphs(text) {
        for line in para.lines() {
            let hashes = line.chars().take_while(|c| *c == '#').count();
            if !(1..=6).contains(&hashes) || !line[hashes..].starts_with(' ') {
                continue;
            }
            let base = slug(line[hashes..].trim_end_matches('#'));
            let n = seen.entry(base.clone()).or_insert(0);
            ids.push(if *n == 0 {
                base.clone()
            } else {
                format!("{base}-{n}")
            });
            *n += 1;
        }
    }
    ids
}

/// The targets of the inline links `[text](target)` of a Markdown file, outside code.
fn links(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    for para in prose_paragraphs(text) {
        let prose = strip_code_spans(&para);
        let mut rest = prose.as_str();
        while let Some(at) = rest.find("](") {
            rest = &rest[at + 2..];
            let end = rest
                .find(|c: char| c == ')' || c.is_whitespace())
                .unwrap_or(rest.len());
            out.push(rest[..end].to_string());
            rest = &rest[end..];
        }
    }
    out
}

/// Every broken link of `files` (paths relative to `root`), one line each:
/// `FILE: [..](TARGET): what is wrong`.
fn broken_links(root: &Path, files: &[PathBuf]) -> Vec<String> {
    let mut problems = Vec::new();
    for file in files {
        let path = root.join(file);
        let text = std::fs::read_to_string(&path)
            .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
        for target in links(&text) {
            if target.starts_with("http://")
                || target.starts_with("https://")
                || target.starts_with("mailto:")
            {
                continue;
            }
            let (file_part, anchor) = match target.split_once('#') {
                Some((f, a)) => (f, Some(a)),
                None => (target.as_str(), None),
            };
            let dest = if file_part.is_empty() {
                path.clone()
            } else {
                path.parent().unwrap().join(file_part)
            };
            let say = |what: String| format!("{}: [..]({target}): {what}", file.display());
            if target.is_empty() {
                problems.push(say("empty link".into()));
                continue;
            }
            if !dest.exists() {
                problems.push(say(format!("no such file {}", dest.display())));
                continue;
            }
            let Some(anchor) = anchor else { continue };
            if dest.extension().and_then(|e| e.to_str()) != Some("md") {
                problems.push(say("an anchor into a file that is not Markdown".into()));
                continue;
            }
            let dest_text = std::fs::read_to_string(&dest).unwrap();
            if !anchors(&dest_text).iter().any(|a| a == anchor) {
                problems.push(say(format!("no heading #{anchor} in {}", dest.display())));
            }
        }
    }
    problems
}

/// README.md and every Markdown file in docs/, relative to the crate root.
fn doc_files(root: &Path) -> Vec<PathBuf> {
    let mut files = vec![PathBuf::from("README.md")];
    let mut docs: Vec<PathBuf> = std::fs::read_dir(root.join("docs"))
        .expect("read docs/")
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().and_then(|e| e.to_str()) == Some("md"))
        .map(|p| p.strip_prefix(root).unwrap().to_path_buf())
        .collect();
    docs.sort();
    files.extend(docs);
    files
}

#[test]
fn every_link_in_readme_and_docs_resolves() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let files = doc_files(root);
    assert!(files.len() > 10, "docs/ is missing: {files:?}");
    let problems = broken_links(root, &files);
    assert!(
        problems.is_empty(),
        "broken links:\n{}",
        problems.join("\n")
    );
}

/// The index links every page of docs/, and the README links the index.
#[test]
fn docs_index_lists_every_page() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let index = std::fs::read_to_string(root.join("docs/README.md")).unwrap();
    let targets: Vec<String> = links(&index)
        .into_iter()
        .map(|t| t.split('#').next().unwrap().to_string())
        .collect();
    let mut missing = Vec::new();
    for file in doc_files(root) {
        let name = file.file_name().unwrap().to_str().unwrap().to_string();
        if file.starts_with("docs") && name != "README.md" && !targets.contains(&name) {
            missing.push(name);
        }
    }
    assert!(
        missing.is_empty(),
        "docs/README.md does not link {missing:?}"
    );
    let readme = std::fs::read_to_string(root.join("README.md")).unwrap();
    assert!(
        links(&readme).iter().any(|t| t == "docs/README.md"),
        "README.md does not link docs/README.md"
    );
}

#[test]
fn slugs_are_githubs() {
    for (heading, id) in [
        ("What `mailkeep run` does", "what-mailkeep-run-does"),
        ("`export ARCHIVE --to DIR`", "export-archive---to-dir"),
        (
            "Free space on the server (prune)",
            "free-space-on-the-server-prune",
        ),
        ("The message's date", "the-messages-date"),
        (
            "IMAP servers: names, STATUS, CONDSTORE",
            "imap-servers-names-status-condstore",
        ),
        ("Entwürfe 日本語", "entwürfe-日本語"),
    ] {
        assert_eq!(slug(heading), id, "{heading}");
    }
}

/// The checker finds what is broken, and only that: a missing file, a missing anchor in
/// another page and in the same page; links in code and to the web are left alone.
#[test]
fn checker_finds_broken_links() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    std::fs::create_dir(root.join("docs")).unwrap();
    std::fs::write(
        root.join("README.md"),
        "# Top\n\nSee [ok](docs/b.md#real-one), [ok too](docs/b.md#real-one-1), \
         [self](#top), [web](https://example.org/#x).\n\
         Broken: [gone](docs/missing.md), [bad anchor](docs/b.md#nope),\n\
         [bad self](#bottom), [heading in code](docs/b.md#not-a-heading).\n\n\
         Code is not a link: `[x](nowhere.md)` and ``[y](`nowhere2.md`)``.\n\n\
         ```sh\n[z](nowhere3.md)\n```\n",
    )
    .unwrap();
    std::fs::write(
        root.join("docs/b.md"),
        "# B\n\n## Real one\n\n## Real one\n\n```sh\n# not a heading\n```\n\n[up](../README.md#top)\n",
    )
    .unwrap();
    let files = vec![PathBuf::from("README.md"), PathBuf::from("docs/b.md")];
    let problems = broken_links(root, &files);
    let summary: Vec<String> = problems
        .iter()
        .map(|p| p.split(": ").take(2).collect::<Vec<_>>().join(": "))
        .collect();
    assert_eq!(
        summary,
        [
            "README.md: [..](docs/missing.md)",
            "README.md: [..](docs/b.md#nope)",
            "README.md: [..](#bottom)",
            "README.md: [..](docs/b.md#not-a-heading)",
        ],
        "{problems:#?}"
    );
}
