//! The writer a message is streamed into before it becomes part of an archive.
//!
//! [`Staged`] turns CRLF into LF (a CR at the end of one write is held until the next byte is
//! seen), hashes the stored bytes with SHA-256, counts them, and keeps the header block (up to
//! the first empty line, at most [`HEADER_LIMIT`] bytes) for the engine to read the date and
//! sender from. The temporary file is removed when a `Staged` is dropped unfinished.

use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

/// At most this many bytes of the header block are kept for inspection.
pub const HEADER_LIMIT: usize = 256 * 1024;

/// A message being written to a temporary file (mode 0600).
pub struct Staged {
    file: Option<io::BufWriter<File>>,
    path: PathBuf,
    hasher: Sha256,
    size: u64,
    header: Vec<u8>,
    header_done: bool,
    /// CRs seen but not yet written: dropped when a LF follows (part of the line end).
    held_crs: usize,
    last: u8,
}

/// A complete, fsync'd temporary file holding one message in its stored form.
#[derive(Debug)]
pub struct StagedMessage {
    /// The temporary file; the sink renames it or copies it, then removes it.
    pub path: PathBuf,
    /// Size of the stored bytes (LF line ends), in bytes.
    pub size: u64,
    /// Lower-case hex SHA-256 of the stored bytes.
    pub sha256: String,
    /// The header block (without the empty line that ends it), LF line ends, at most
    /// [`HEADER_LIMIT`] bytes.
    pub header: Vec<u8>,
}

impl StagedMessage {
    /// Removes the temporary file (for a sink that copied it, or when the message is dropped).
    pub fn discard(self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

impl Staged {
    /// Creates `path` exclusively (mode 0600) and returns a writer into it.
    pub fn create(path: &Path) -> io::Result<Staged> {
        let file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(path)?;
        Ok(Staged {
            file: Some(io::BufWriter::with_capacity(64 * 1024, file)),
            path: path.to_path_buf(),
            hasher: Sha256::new(),
            size: 0,
            header: Vec::new(),
            header_done: false,
            held_crs: 0,
            last: b'\n',
        })
    }

    /// The temporary file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn emit(&mut self, bytes: &[u8]) -> io::Result<()> {
        if bytes.is_empty() {
            return Ok(());
        }
        if !self.header_done {
            // Search only where an empty line can newly end: from the last byte already held.
            let from = self.header.len().saturating_sub(1);
            self.header.extend_from_slice(bytes);
            if let Some(end) = find_header_end_from(&self.header, from) {
                self.header.truncate(end);
                self.header_done = true;
            } else if self.header.len() > HEADER_LIMIT {
                self.header.truncate(HEADER_LIMIT);
                self.header_done = true;
            }
        }
        self.hasher.update(bytes);
        self.size += bytes.len() as u64;
        self.last = *bytes.last().unwrap_or(&self.last);
        self.file
            .as_mut()
            .expect("staged file used after finish")
            .write_all(bytes)
    }

    /// Ends the message: CRs at the very end are taken as its final line end, and a final LF
    /// is added when missing (exactly as [`crate::core::message::normalize`]); flushes and fsyncs.
    pub fn finish(self) -> io::Result<StagedMessage> {
        let (msg, file) = self.finish_unsynced()?;
        match file.sync_all() {
            Ok(()) => Ok(msg),
            Err(e) => {
                msg.discard();
                Err(e)
            }
        }
    }

    /// [`Staged::finish`] without the fsync: the message is complete in the page cache but
    /// not yet durable. Returns the open file for the caller to fsync (an
    /// [`crate::archive::staging::fsync_pool::FsyncPool`] does, several at a time) before the message is
    /// placed; until then the [`StagedMessage`] must not be handed to [`crate::archive::writer::Sink::place`].
    pub fn finish_unsynced(mut self) -> io::Result<(StagedMessage, File)> {
        self.held_crs = 0;
        if self.size > 0 && self.last != b'\n' {
            self.emit(b"\n")?;
        }
        let file = self.file.take().expect("finish called once");
        let file = match file.into_inner() {
            Ok(f) => f,
            Err(e) => {
                // Not finished: the partial file goes (Drop no longer sees it).
                let _ = std::fs::remove_file(&self.path);
                return Err(e.into_error());
            }
        };
        if !self.header_done {
            if let Some(end) = find_header_end(&self.header) {
                self.header.truncate(end);
            }
        }
        let hasher = std::mem::take(&mut self.hasher);
        let msg = StagedMessage {
            path: std::mem::take(&mut self.path),
            size: self.size,
            sha256: hex::encode(hasher.finalize()),
            header: std::mem::take(&mut self.header),
        };
        Ok((msg, file))
    }
}

/// The name of a staged file: `<secs>.P<pid>Q<n>.mailkeep` (a Maildir `tmp/` name, DJB's
/// `time.pid_seq.host` shape with mailkeep as the host part).
pub fn staged_name(secs: u64, pid: u32, n: u64) -> String {
    format!("{secs}.P{pid}Q{n}.mailkeep")
}

fn is_staged_name(name: &str) -> bool {
    let Some(rest) = name.strip_suffix(".mailkeep") else {
        return false;
    };
    let Some((secs, pq)) = rest.split_once(".P") else {
        return false;
    };
    let Some((pid, n)) = pq.split_once('Q') else {
        return false;
    };
    [secs, pid, n]
        .iter()
        .all(|s| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()))
}

/// Removes staged files that a killed mailkeep run left in `dir` (a Maildir `tmp/` or the mbox
/// spool). Only names of [`staged_name`]'s shape are touched, and only while the caller holds
/// the archive lock, so none of them belongs to a live run. A missing `dir` is fine.
pub fn remove_stale(dir: &Path) -> crate::core::error::Result<usize> {
    let rd = match std::fs::read_dir(dir) {
        Ok(rd) => rd,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(0),
        Err(e) => return Err(crate::core::error::Error::archive_io(dir, e)),
    };
    let mut removed = 0;
    for e in rd.flatten() {
        if e.file_name().to_str().is_some_and(is_staged_name) {
            std::fs::remove_file(e.path())
                .map_err(|err| crate::core::error::Error::archive_io(e.path(), err))?;
            removed += 1;
        }
    }
    Ok(removed)
}

/// Offset of the empty line ending the header block (`\n\n`), pointing after the first `\n`.
fn find_header_end(h: &[u8]) -> Option<usize> {
    find_header_end_from(h, 0)
}

/// [`find_header_end`] when `h[..from + 1]` is known to hold no `\n\n`: searches from `from`.
fn find_header_end_from(h: &[u8], from: usize) -> Option<usize> {
    if h.first() == Some(&b'\n') {
        return Some(0);
    }
    memchr::memmem::find(&h[from.min(h.len())..], b"\n\n").map(|p| from + p + 1)
}

/// At most this many input bytes are converted per `write` call (bounded extra memory
/// whatever the caller's buffer size; `write_all` loops).
const WRITE_CHUNK: usize = 64 * 1024;

impl Write for Staged {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let buf = &buf[..buf.len().min(WRITE_CHUNK)];
        let mut rest = buf;
        while !rest.is_empty() {
            if self.held_crs > 0 {
                if rest[0] == b'\n' {
                    // CRs before a line end are part of it.
                    self.held_crs = 0;
                } else if rest[0] != b'\r' {
                    // Bare CRs (not before a line end): kept. A long run is written in pieces,
                    // so memory stays bounded.
                    while self.held_crs > 0 {
                        let n = self.held_crs.min(WRITE_CHUNK);
                        self.emit(&vec![b'\r'; n])?;
                        self.held_crs -= n;
                    }
                }
            }
            // The bytes up to the next CR go out as they are; the CRs are held.
            let span = memchr::memchr(b'\r', rest).unwrap_or(rest.len());
            self.emit(&rest[..span])?;
            rest = &rest[span..];
            let crs = rest.iter().take_while(|&&b| b == b'\r').count();
            self.held_crs += crs;
            rest = &rest[crs..];
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Drop for Staged {
    fn drop(&mut self) {
        if self.file.is_some() && !self.path.as_os_str().is_empty() {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn staged_bytes_are_normalize_whatever_the_chunking() {
        let inputs: [&[u8]; 10] = [
            b"a\r",
            b"a\r\r",
            b"a\r\r\nb\r\n",
            b"x\ry\r\n\rz",
            b"\r",
            b"\r\n",
            b"a\n\r",
            b"a\r\rb",
            b"head\r\n\r\nbody\r\r\r",
            b"no line end",
        ];
        for input in inputs {
            let want = crate::core::message::normalize(input);
            for cut in 0..=input.len() {
                let (got, m) = stage(&[&input[..cut], &input[cut..]]);
                assert_eq!(got, want, "{input:?} cut at {cut}");
                assert_eq!(m.size, want.len() as u64);
            }
        }
    }

    #[test]
    fn every_short_input_of_cr_lf_and_text_is_normalized_at_every_cut() {
        // All 3^0 + ... + 3^5 inputs over {a, CR, LF}, each written in two pieces cut at every
        // offset (and as three pieces 1 + middle + 1): the writer equals `normalize`, and the
        // header block it keeps is the normalized bytes' up to the first empty line.
        let mut inputs: Vec<Vec<u8>> = vec![Vec::new()];
        let mut last: Vec<Vec<u8>> = vec![Vec::new()];
        for _ in 0..5 {
            let next: Vec<Vec<u8>> = last
                .iter()
                .flat_map(|p| {
                    [b'a', b'\r', b'\n'].map(|c| {
                        let mut q = p.clone();
                        q.push(c);
                        q
                    })
                })
                .collect();
            inputs.extend(next.iter().cloned());
            last = next;
        }
        assert_eq!(inputs.len(), 1 + 3 + 9 + 27 + 81 + 243);
        let dir = tempfile::tempdir().unwrap();
        let mut n = 0;
        for input in &inputs {
            let want = crate::core::message::normalize(input);
            let want_header = match find_header_end(&want) {
                Some(end) => want[..end].to_vec(),
                None => want.clone(),
            };
            let mut cuts: Vec<Vec<&[u8]>> = (0..=input.len())
                .map(|c| vec![&input[..c], &input[c..]])
                .collect();
            if input.len() >= 2 {
                let l = input.len();
                cuts.push(vec![&input[..1], &input[1..l - 1], &input[l - 1..]]);
            }
            for chunks in cuts {
                n += 1;
                let p = dir.path().join(n.to_string());
                let mut s = Staged::create(&p).unwrap();
                for c in &chunks {
                    s.write_all(c).unwrap();
                }
                let m = s.finish().unwrap();
                let got = std::fs::read(&m.path).unwrap();
                assert_eq!(got, want, "{input:?} as {chunks:?}");
                assert_eq!(m.header, want_header, "{input:?} as {chunks:?}");
                let digest = hex::encode(Sha256::digest(&want));
                assert_eq!(m.sha256, digest);
            }
        }
        assert_eq!(n, 2_365);
    }

    #[test]
    fn header_block_is_found_across_many_small_writes() {
        let mut msg = Vec::new();
        for i in 0..2000 {
            msg.extend_from_slice(format!("X-Line-{i}: v\r\n").as_bytes());
        }
        msg.extend_from_slice(b"\r\nbody\r\n\r\nmore\r\n");
        let dir = tempfile::tempdir().unwrap();
        let mut s = Staged::create(&dir.path().join("m")).unwrap();
        for piece in msg.chunks(7) {
            s.write_all(piece).unwrap();
        }
        let m = s.finish().unwrap();
        let want = crate::core::message::normalize(&msg);
        let end = want.windows(2).position(|w| w == b"\n\n").unwrap() + 1;
        assert_eq!(m.header, want[..end].to_vec());
        assert_eq!(m.size, want.len() as u64);
    }

    #[test]
    fn finish_unsynced_returns_the_open_file_and_a_complete_message() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("m");
        let mut s = Staged::create(&p).unwrap();
        s.write_all(b"Subject: x\r\n\r\nbody").unwrap();
        let (m, file) = s.finish_unsynced().unwrap();
        file.sync_all().unwrap();
        drop(file);
        assert_eq!(std::fs::read(&m.path).unwrap(), b"Subject: x\n\nbody\n");
        assert_eq!(m.header, b"Subject: x\n");
        assert_eq!(m.size, 17);
    }

    fn stage(chunks: &[&[u8]]) -> (Vec<u8>, StagedMessage) {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("m");
        let mut s = Staged::create(&p).unwrap();
        for c in chunks {
            s.write_all(c).unwrap();
        }
        let m = s.finish().unwrap();
        let bytes = std::fs::read(&m.path).unwrap();
        (bytes, m)
    }

    #[test]
    fn crlf_split_across_writes_becomes_lf() {
        let (b, m) = stage(&[b"Subject: x\r", b"\n\r", b"\nbody\r", b"\n"]);
        assert_eq!(b, b"Subject: x\n\nbody\n");
        assert_eq!(m.header, b"Subject: x\n");
        assert_eq!(m.size, b.len() as u64);
        assert_eq!(m.sha256, hex::encode(Sha256::digest(&b)));
    }

    #[test]
    fn bare_cr_kept_and_final_lf_added() {
        let (b, _) = stage(&[b"a\rb\r", b"c"]);
        assert_eq!(b, b"a\rb\rc\n");
        let (b, _) = stage(&[b"a\r"]);
        assert_eq!(b, b"a\n");
    }

    #[test]
    fn stale_staged_files_are_recognised_by_name() {
        let dir = tempfile::tempdir().unwrap();
        for name in [
            staged_name(1700000000, 42, 7).as_str(),
            "1700000000.M1P2.host",
            "x.P1Q2.mailkeep",
            "1.P2Q.mailkeep",
        ] {
            std::fs::write(dir.path().join(name), b"x").unwrap();
        }
        assert_eq!(remove_stale(dir.path()).unwrap(), 1);
        assert!(!dir.path().join("1700000000.P42Q7.mailkeep").exists());
        assert!(dir.path().join("1700000000.M1P2.host").exists());
        assert_eq!(remove_stale(&dir.path().join("missing")).unwrap(), 0);
    }

    #[test]
    fn dropped_unfinished_removes_file() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("m");
        {
            let mut s = Staged::create(&p).unwrap();
            s.write_all(b"partial").unwrap();
        }
        assert!(!p.exists());
    }
}
