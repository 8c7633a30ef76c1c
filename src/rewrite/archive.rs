//! Where the members of an `ar` archive start, for the matcher's piece
//! boundaries.

/// Where the members of an `ar` archive (a static library) start. gcc's
/// pieces are aligned within their object file, and `ar` puts a member at
/// any even offset, so alignment is judged from the member's start. Fed the
/// content in order, in pieces of any size.
#[derive(Debug, Default)]
pub(super) struct ArchiveMembers {
    /// Content offset of each member's data, ascending.
    origins: Vec<u64>,
    state: ArchiveState,
}

#[derive(Debug)]
enum ArchiveState {
    /// Matching the global header; `seen` bytes matched so far.
    Magic { seen: usize },
    /// Collecting a 60-byte member header that starts at `at`.
    Header {
        at: u64,
        bytes: [u8; AR_HEADER],
        filled: usize,
    },
    /// Inside a member; the next header starts at `next`.
    Data { next: u64 },
    /// Not an archive (or a malformed one): no origins beyond 0.
    Done,
}

impl Default for ArchiveState {
    fn default() -> Self {
        ArchiveState::Magic { seen: 0 }
    }
}

const AR_MAGIC: &[u8; 8] = b"!<arch>\n";
const AR_HEADER: usize = 60;

impl ArchiveMembers {
    pub(super) fn of(content: &[u8]) -> ArchiveMembers {
        let mut members = ArchiveMembers::default();
        members.observe(0, content);
        members
    }

    pub(super) fn origins(&self) -> &[u64] {
        &self.origins
    }

    /// `bytes` are the content at `offset`, right after everything observed before.
    pub(super) fn observe(&mut self, offset: u64, bytes: &[u8]) {
        let mut i = 0;
        while i < bytes.len() {
            let pos = offset + i as u64;
            match &mut self.state {
                ArchiveState::Done => return,
                ArchiveState::Magic { seen } => {
                    if bytes[i] != AR_MAGIC[*seen] {
                        self.state = ArchiveState::Done;
                        return;
                    }
                    *seen += 1;
                    i += 1;
                    if *seen == AR_MAGIC.len() {
                        self.state = ArchiveState::Header {
                            at: pos + 1,
                            bytes: [0; AR_HEADER],
                            filled: 0,
                        };
                    }
                }
                ArchiveState::Header {
                    at,
                    bytes: header,
                    filled,
                } => {
                    let n = (AR_HEADER - *filled).min(bytes.len() - i);
                    header[*filled..*filled + n].copy_from_slice(&bytes[i..i + n]);
                    *filled += n;
                    i += n;
                    if *filled == AR_HEADER {
                        let data = *at + AR_HEADER as u64;
                        let size = std::str::from_utf8(&header[48..58])
                            .ok()
                            .and_then(|s| s.trim().parse::<u64>().ok());
                        self.state = match (size, &header[58..60]) {
                            (Some(size), b"`\n") => {
                                self.origins.push(data);
                                ArchiveState::Data {
                                    next: data + size + (size & 1),
                                }
                            }
                            _ => ArchiveState::Done,
                        };
                    }
                }
                ArchiveState::Data { next } => {
                    let skip = (*next - pos).min((bytes.len() - i) as u64) as usize;
                    i += skip;
                    if offset + i as u64 == *next {
                        self.state = ArchiveState::Header {
                            at: *next,
                            bytes: [0; AR_HEADER],
                            filled: 0,
                        };
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A member header for `name` of `size` bytes.
    fn header(name: &str, size: usize) -> Vec<u8> {
        let h = format!("{name:<16}{:<12}{:<6}{:<6}{:<8}{size:<10}`\n", 0, 0, 0, 644);
        assert_eq!(h.len(), AR_HEADER);
        h.into_bytes()
    }

    fn archive() -> Vec<u8> {
        // An odd-sized member is padded to an even offset.
        [
            AR_MAGIC.as_slice(),
            &header("a.o/", 3),
            b"abc\n",
            &header("b.o/", 4),
            b"defg",
        ]
        .concat()
    }

    #[test]
    fn members_start_after_their_headers() {
        let data = archive();
        assert_eq!(ArchiveMembers::of(&data).origins(), [68, 132]);
    }

    #[test]
    fn any_pieces_give_the_same_origins() {
        let data = archive();
        for size in 1..data.len() {
            let mut members = ArchiveMembers::default();
            for (i, piece) in data.chunks(size).enumerate() {
                members.observe((i * size) as u64, piece);
            }
            assert_eq!(members.origins(), [68, 132], "pieces of {size}");
        }
    }

    #[test]
    fn other_content_has_no_members() {
        assert!(ArchiveMembers::of(b"\x7fELF object").origins().is_empty());
        let mut bad = archive();
        bad[8 + 58] = b'x';
        assert!(ArchiveMembers::of(&bad).origins().is_empty());
    }
}
