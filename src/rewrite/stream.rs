//! [`Rewriter::hash`] and [`Rewriter::rewrite_in_place`] in bounded
//! memory, over a reader: the matcher's checks look at most `LOOKBEHIND`
//! bytes before a match and `lookahead` bytes from its start, so chunks
//! that keep that much give exactly the whole-buffer results.

use super::archive::ArchiveMembers;
use super::matcher::LOOKBEHIND;
use super::Rewriter;
use std::io::{self, Read, Write};

/// Read size of the streaming functions.
const CHUNK: usize = 256 * 1024;

impl Rewriter {
    /// Streaming [`Rewriter::hash`]: `(hash, bytes read)` in bounded memory.
    pub fn hash_reader(&self, reader: impl Read) -> io::Result<(u128, u64)> {
        self.hash_reader_chunked(reader, CHUNK)
    }

    /// Streaming copy that rewrites on the way, in bounded memory; returns
    /// the number of bytes copied.
    pub fn copy_rewriting(&self, reader: impl Read, mut writer: impl Write) -> io::Result<u64> {
        self.stream_chunked(reader, CHUNK, |bytes| writer.write_all(bytes))
    }

    /// [`Rewriter::hash_reader`] reading `chunk` bytes at a time (the tests
    /// use small chunks to exercise chunk boundaries with small inputs).
    fn hash_reader_chunked(&self, reader: impl Read, chunk: usize) -> io::Result<(u128, u64)> {
        let mut hasher = xxhash_rust::xxh3::Xxh3::new();
        let total = self.stream_chunked(reader, chunk, |bytes| {
            hasher.update(bytes);
            Ok(())
        })?;
        Ok((hasher.digest128(), total))
    }

    /// Feeds the rewritten content of `reader` to `emit`, in order, reading
    /// `chunk` bytes at a time.
    fn stream_chunked(
        &self,
        mut reader: impl Read,
        chunk: usize,
        mut emit: impl FnMut(&[u8]) -> io::Result<()>,
    ) -> io::Result<u64> {
        let Some(inner) = &self.inner else {
            let mut buf = vec![0u8; chunk];
            let mut total = 0u64;
            loop {
                match read_some(&mut reader, &mut buf)? {
                    0 => return Ok(total),
                    n => {
                        emit(&buf[..n])?;
                        total += n as u64;
                    }
                }
            }
        };
        let keep = inner.lookahead;
        let mut buf = vec![0u8; LOOKBEHIND + chunk.max(1) + keep];
        // buf[..start]: already emitted (lookbehind); buf[start..filled]: not.
        let (mut start, mut filled, mut total) = (0usize, 0usize, 0u64);
        // Offset of buf[0] in the content.
        let mut base = 0u64;
        let mut members = ArchiveMembers::default();
        loop {
            let mut eof = false;
            while filled < buf.len() {
                match read_some(&mut reader, &mut buf[filled..])? {
                    0 => {
                        eof = true;
                        break;
                    }
                    n => {
                        members.observe(base + filled as u64, &buf[filled..filled + n]);
                        filled += n;
                        total += n as u64;
                    }
                }
            }
            let hay = &buf[..filled];
            let limit = if eof { filled } else { filled - keep };
            let mut done = start;
            let mut from = start;
            while let Some(e) = inner.next_edit(hay, base, members.origins(), from, limit) {
                emit(&hay[done..e.start])?;
                emit(e.with)?;
                done = e.end;
                from = e.end;
            }
            let end = from.max(limit);
            emit(&hay[done..end])?;
            if eof {
                return Ok(total);
            }
            let drop = end.saturating_sub(LOOKBEHIND);
            buf.copy_within(drop..filled, 0);
            base += drop as u64;
            filled -= drop;
            start = end - drop;
        }
    }
}

fn read_some(reader: &mut impl Read, buf: &mut [u8]) -> io::Result<usize> {
    loop {
        match reader.read(buf) {
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            r => return r,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::*;
    use super::*;
    use proptest::prelude::*;

    /// A reader returning at most the next size of `sizes` per read.
    struct Chunky<'a> {
        data: &'a [u8],
        sizes: Vec<usize>,
        at: usize,
    }

    impl Read for Chunky<'_> {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            let size = self.sizes[self.at % self.sizes.len()];
            self.at += 1;
            let n = size.min(buf.len()).min(self.data.len());
            buf[..n].copy_from_slice(&self.data[..n]);
            self.data = &self.data[n..];
            Ok(n)
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(300))]

        #[test]
        fn hash_reader_matches_hash(
            data in content(),
            sizes in prop::collection::vec(1usize..20, 1..8),
            chunk in 1usize..64,
        ) {
            let (a, _) = reloc_roots();
            for r in [Rewriter::masking(&a), Rewriter::identity()] {
                let whole = r.hash(&data);
                let reader = Chunky { data: &data, sizes: sizes.clone(), at: 0 };
                prop_assert_eq!(r.hash_reader_chunked(reader, chunk).unwrap(), (whole, data.len() as u64));
                let reader = Chunky { data: &data, sizes: sizes.clone(), at: 0 };
                prop_assert_eq!(r.hash_reader(reader).unwrap(), (whole, data.len() as u64));
            }
        }

        #[test]
        fn copy_rewriting_matches_rewrite_in_place(
            data in content(),
            sizes in prop::collection::vec(1usize..20, 1..8),
        ) {
            let (a, b) = reloc_roots();
            for r in [Rewriter::relocating(&a, &b).unwrap(), Rewriter::masking(&a)] {
                let mut in_place = data.clone();
                r.rewrite_in_place(&mut in_place);
                let mut copied = Vec::new();
                let reader = Chunky { data: &data, sizes: sizes.clone(), at: 0 };
                prop_assert_eq!(r.copy_rewriting(reader, &mut copied).unwrap(), data.len() as u64);
                prop_assert_eq!(&copied, &in_place);
                prop_assert_eq!(r.hash(&data), xxhash_rust::xxh3::xxh3_128(&in_place));
            }
        }

    }

    /// Throughput on ~200 MB of object-like bytes:
    /// `cargo test --release --lib throughput -- --ignored --nocapture`.
    #[test]
    #[ignore]
    fn throughput() {
        let obj = pieces(&format!("{STORE}/{OUT1}-hello-2.10/share/locale"), 3, 8);
        let dep = format!("{STORE}/{DEP}-glibc-2.38/lib\0").into_bytes();
        // One of our paths (in movabs pieces) and one dependency path every
        // `every` segments of about 8 bytes.
        for every in [8192u64, 64] {
            let mut data = Vec::with_capacity(210 << 20);
            let mut x = 0x9e3779b97f4a7c15u64;
            while data.len() < 200 << 20 {
                // Machine code and symbol-table-ish bytes, text, and now
                // and then a path of ours or a dependency's.
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                match x % every {
                    0 => data.extend_from_slice(&obj),
                    1 => data.extend_from_slice(&dep),
                    2..=5 => data.extend_from_slice(b"__libc_start_main\0.text.startup\0"),
                    _ => data.extend_from_slice(&x.to_le_bytes()),
                }
            }
            let mb = data.len() as f64 / 1e6;
            for (name, r) in [
                ("identity", Rewriter::identity()),
                ("masking", Rewriter::masking(&old())),
            ] {
                let t = std::time::Instant::now();
                let h = r.hash(&data);
                let a = t.elapsed().as_secs_f64();
                let t = std::time::Instant::now();
                let (h2, _) = r.hash_reader(&data[..]).unwrap();
                let b = t.elapsed().as_secs_f64();
                assert_eq!(h, h2);
                println!(
                    "paths every ~{} bytes, {name}: hash {:.0} MB/s, hash_reader {:.0} MB/s ({mb:.0} MB)",
                    every * 8,
                    mb / a,
                    mb / b
                );
            }
        }
    }
}
