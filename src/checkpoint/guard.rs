//! Guard bytes (`docs/format.md`).
//!
//! A pack must refer to no store path: Nix records as a reference every
//! store path of the build's closure whose 32-character hash (base-32
//! alphabet `0-9a-df-np-sv-z`) appears in an output, and a pack holds store
//! paths (build info, recipe, build products). So every 32nd byte of the
//! file is a zero *guard byte*: the header's last byte (flags, zero) at
//! offset 15 and, after the header, one guard after every 31 bytes of the
//! container. Any 32 consecutive bytes of the file then contain a zero byte,
//! which is not in the alphabet, whatever the rest holds: no hash can appear.
//!
//! Everything else (offsets in the trailer and blob table, checksums, the
//! layout in `docs/format.md`) is about the *logical* file, the file with
//! its guards removed; the functions below translate, and readers check
//! every guard they pass over.

use super::codec::HEADER_LEN;
use super::error::DecodeError;
use std::fs::File;
use std::io::{self, Read};
use std::os::unix::fs::FileExt;

/// Bytes of container between two guard bytes.
const GUARD_RUN: u64 = 31;
/// Distance between two guard bytes.
pub const GUARD_SPACING: u64 = GUARD_RUN + 1;
/// The value of every guard byte.
pub const GUARD: u8 = 0;

/// The file offset of logical offset `pos`. At the end of a run (`pos - 16`
/// a multiple of 31) it is the offset after the guard, so that a range of
/// logical bytes read as `[file_offset(start), file_offset(end))` includes
/// every guard that follows one of its bytes.
pub fn file_offset(pos: u64) -> u64 {
    match pos.checked_sub(HEADER_LEN) {
        Some(q) => pos + q / GUARD_RUN,
        None => pos,
    }
}

/// The logical length of a file of `len` bytes, or `None` if no file has
/// that length (it would end with a run of 31 bytes without its guard).
pub fn logical_len(len: u64) -> Option<u64> {
    let Some(body) = len.checked_sub(HEADER_LEN) else {
        return Some(len);
    };
    let (runs, rest) = (body / GUARD_SPACING, body % GUARD_SPACING);
    (rest < GUARD_RUN).then_some(HEADER_LEN + runs * GUARD_RUN + rest)
}

/// Whether the byte at file offset `at` is a guard.
pub fn is_guard(at: u64) -> bool {
    at >= HEADER_LEN && (at - HEADER_LEN) % GUARD_SPACING == GUARD_RUN
}

/// An `io::Error`, for the `Read` impls, carrying the typed error that
/// [`super::error::Reading`] recovers.
fn bad_guard(at: u64) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, DecodeError::BadGuard(at))
}

/// Removes the guard bytes from `buf`, the file's bytes from file offset
/// `at` (not a guard: a [`file_offset`]), in place, checking that each is
/// zero. Returns the number of logical bytes left at the front of `buf`.
pub fn strip_guards(buf: &mut [u8], at: u64) -> io::Result<usize> {
    debug_assert!(at >= HEADER_LEN && !is_guard(at));
    const RUN: usize = GUARD_RUN as usize;
    let len = buf.len();
    // The rest of the first run, then whole runs and their guards.
    let phase = ((at - HEADER_LEN) % GUARD_SPACING) as usize;
    let first = (RUN - phase).min(len);
    let (mut read, mut written) = (first, first);
    while read < len {
        if buf[read] != GUARD {
            return Err(bad_guard(at + read as u64));
        }
        read += 1;
        if len - read >= RUN {
            // A fixed-size copy the compiler keeps in registers.
            let run: [u8; RUN] = buf[read..read + RUN].try_into().expect("RUN bytes");
            buf[written..written + RUN].copy_from_slice(&run);
            read += RUN;
            written += RUN;
        } else {
            buf.copy_within(read..len, written);
            written += len - read;
            read = len;
        }
    }
    Ok(written)
}

/// Reads logical `[pos, pos + len)` (`pos` ≥ 16) exactly, checking the
/// guards among and after those bytes (a bad one is `InvalidData`).
pub fn read_logical(file: &File, pos: u64, len: usize) -> io::Result<Vec<u8>> {
    let start = file_offset(pos);
    let end = file_offset(pos + len as u64);
    let mut buf = vec![0u8; (end - start) as usize];
    file.read_exact_at(&mut buf, start)?;
    let n = strip_guards(&mut buf, start)?;
    debug_assert_eq!(n, len);
    buf.truncate(n);
    Ok(buf)
}

/// Logical `[pos, end)` of a file as a `Read` (with `pread`, so many may
/// read one file at once), guards checked and removed in the caller's
/// buffer.
pub struct LogicalRange<'a> {
    pub file: &'a File,
    pub pos: u64,
    pub end: u64,
}

impl Read for LogicalRange<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if buf.is_empty() || self.pos >= self.end {
            return Ok(0);
        }
        let start = file_offset(self.pos);
        let stop = file_offset(self.end);
        let want = (stop - start).min(buf.len() as u64) as usize;
        let n = self.file.read_at(&mut buf[..want], start)?;
        if n == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "the file shrank",
            ));
        }
        let after = start + n as u64;
        if after < stop && is_guard(after) {
            // The read stopped just before a guard the next one would skip.
            let mut guard = [0u8; 1];
            self.file.read_exact_at(&mut guard, after)?;
            if guard[0] != GUARD {
                return Err(bad_guard(after));
            }
        }
        let got = strip_guards(&mut buf[..n], start)?;
        self.pos += got as u64;
        Ok(got)
    }
}

/// Writes the logical bytes from offset 16 on (the header goes to `inner`
/// directly, before), inserting the guard bytes.
pub struct GuardedWriter<W: io::Write> {
    pub inner: W,
    /// Logical offset of the next byte.
    pub pos: u64,
}

impl<W: io::Write> GuardedWriter<W> {
    /// After the header has been written to `inner`.
    pub fn new(inner: W) -> Self {
        GuardedWriter {
            inner,
            pos: HEADER_LEN,
        }
    }

    pub fn write_all(&mut self, mut data: &[u8]) -> io::Result<()> {
        const RUN: usize = GUARD_RUN as usize;
        // Guarded in a buffer of at most 64 KiB at a time, one write each.
        let mut frame = [0u8; 2048 * GUARD_SPACING as usize];
        while !data.is_empty() {
            let mut n = 0;
            let phase = ((self.pos - HEADER_LEN) % GUARD_RUN) as usize;
            if phase != 0 || data.len() < RUN {
                // The rest of a run (or a short write): through as is.
                let run = (RUN - phase).min(data.len());
                frame[..run].copy_from_slice(&data[..run]);
                n = run;
                data = &data[run..];
                self.pos += run as u64;
                if (self.pos - HEADER_LEN).is_multiple_of(GUARD_RUN) {
                    frame[n] = GUARD;
                    n += 1;
                }
            } else {
                while data.len() >= RUN && n + RUN < frame.len() {
                    let run: &[u8; RUN] = data[..RUN].try_into().expect("RUN bytes");
                    frame[n..n + RUN].copy_from_slice(run);
                    frame[n + RUN] = GUARD;
                    n += RUN + 1;
                    data = &data[RUN..];
                    self.pos += GUARD_RUN;
                }
            }
            self.inner.write_all(&frame[..n])?;
        }
        Ok(())
    }

    /// Bytes of the file so far.
    pub fn file_len(&self) -> u64 {
        file_offset(self.pos)
    }
}

/// The file of a whole logical file (header included): guards inserted.
#[cfg(any(test, feature = "testing"))]
pub fn add_guards(logical: &[u8]) -> Vec<u8> {
    let header = logical.len().min(HEADER_LEN as usize);
    let mut w = GuardedWriter::new(Vec::with_capacity(
        file_offset(logical.len() as u64) as usize
    ));
    w.inner.extend_from_slice(&logical[..header]);
    w.write_all(&logical[header..]).expect("a Vec");
    w.inner
}

/// The logical file of the bytes of a file: guards removed, whatever their
/// value; `None` if no file has that length (see [`logical_len`]).
#[cfg(any(test, feature = "testing"))]
pub fn remove_guards(file: &[u8]) -> Option<Vec<u8>> {
    logical_len(file.len() as u64)?;
    Some(
        file.iter()
            .enumerate()
            .filter(|&(i, _)| !is_guard(i as u64))
            .map(|(_, &b)| b)
            .collect(),
    )
}
