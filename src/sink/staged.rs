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
            self.header.extend_from_slice(bytes);
            if let Some(end) = find_header_end(&self.header) {
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
    /// is added when missing (exactly as [`crate::message::normalize`]); flushes and fsyncs.
    pub fn finish(mut self) -> io::Result<StagedMessage> {
        self.held_crs = 0;
        if self.size > 0 && self.last != b'\n' {
            self.emit(b"\n")?;
        }
        let file = self.file.take().expect("finish called once");
        let file = file.into_inner().map_err(|e| e.into_error())?;
        file.sync_all()?;
        if !self.header_done {
            if let Some(end) = find_header_end(&self.header) {
                self.header.truncate(end);
            }
        }
        let hasher = std::mem::take(&mut self.hasher);
        Ok(StagedMessage {
            path: std::mem::take(&mut self.path),
            size: self.size,
            sha256: hex::encode(hasher.finalize()),
            header: std::mem::take(&mut self.header),
        })
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
pub fn remove_stale(dir: &Path) -> crate::error::Result<usize> {
    let rd = match std::fs::read_dir(dir) {
        Ok(rd) => rd,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(0),
        Err(e) => return Err(crate::error::Error::archive_io(dir, e)),
    };
    let mut removed = 0;
    for e in rd.flatten() {
        if e.file_name().to_str().is_some_and(is_staged_name) {
            std::fs::remove_file(e.path())
                .map_err(|err| crate::error::Error::archive_io(e.path(), err))?;
            removed += 1;
        }
    }
    Ok(removed)
}

/// Offset of the empty line ending the header block (`\n\n`), pointing after the first `\n`.
fn find_header_end(h: &[u8]) -> Option<usize> {
    if h.first() == Some(&b'\n') {
        return Some(0);
    }
    h.windows(2).position(|w| w == b"\n\n").map(|p| p + 1)
}

/// At most this many input bytes are converted per `write` call (bounded extra memory
/// whatever the caller's buffer size; `write_all` loops).
const WRITE_CHUNK: usize = 64 * 1024;

impl Write for Staged {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let buf = &buf[..buf.len().min(WRITE_CHUNK)];
        let mut out = Vec::with_capacity(buf.len() + 1);
        for &b in buf {
            match b {
                b'\r' => self.held_crs += 1,
                b'\n' => {
                    self.held_crs = 0;
                    out.push(b'\n');
                }
                _ => {
                    if self.held_crs > 0 {
                        // Bare CRs (not before a line end): kept. A long run is written in
                        // pieces, so memory stays bounded.
                        self.emit(&out)?;
                        out.clear();
                        while self.held_crs > 0 {
                            let n = self.held_crs.min(WRITE_CHUNK);
                            self.emit(&vec![b'\r'; n])?;
                            self.held_crs -= n;
                        }
                    }
                    out.push(b);
                }
            }
        }
        self.emit(&out)?;
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
            let want = crate::message::normalize(input);
            for cut in 0..=input.len() {
                let (got, m) = stage(&[&input[..cut], &input[cut..]]);
                assert_eq!(got, want, "{input:?} cut at {cut}");
                assert_eq!(m.size, want.len() as u64);
            }
        }
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
