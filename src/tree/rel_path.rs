//! `RelPath`: a validated path relative to the build root, kept as raw bytes.
//!
//! Every path read from a checkpoint or a state file passes through
//! [`RelPath::new`] before anything touches the disk, so the rest of the
//! program can join it under the root without re-checking.

use std::ffi::OsStr;
use std::fmt;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

/// Longest file name Linux accepts (`NAME_MAX`).
pub const NAME_MAX: usize = 255;
/// Longest path Linux accepts, without the terminating NUL (`PATH_MAX - 1`).
pub const PATH_MAX: usize = 4095;

/// Why a byte string is not an acceptable relative path.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PathError {
    #[error("empty path")]
    Empty,
    #[error("absolute path")]
    Absolute,
    #[error("contains a NUL byte")]
    Nul,
    #[error("has an empty component (`//` or a trailing `/`)")]
    EmptyComponent,
    #[error("has a `.` component")]
    Dot,
    #[error("has a `..` component")]
    DotDot,
    #[error("a component is longer than NAME_MAX ({NAME_MAX} bytes)")]
    NameTooLong,
    #[error("longer than PATH_MAX ({PATH_MAX} bytes)")]
    PathTooLong,
}

/// A non-empty relative path whose components are all ordinary names:
/// no `.`, no `..`, no empty component, no NUL, within `NAME_MAX` and
/// `PATH_MAX`. Non-UTF-8 names are kept byte for byte.
///
/// Ordering is bytewise, so a directory always sorts before its contents
/// (a prefix sorts first), which is the order in which a tree is created.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct RelPath(Box<[u8]>);

impl RelPath {
    pub fn new(bytes: &[u8]) -> Result<Self, PathError> {
        validate(bytes)?;
        Ok(RelPath(bytes.into()))
    }

    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }

    pub fn as_path(&self) -> &Path {
        Path::new(OsStr::from_bytes(&self.0))
    }

    /// The last component.
    pub fn file_name(&self) -> &[u8] {
        match self.0.iter().rposition(|&b| b == b'/') {
            Some(i) => &self.0[i + 1..],
            None => &self.0,
        }
    }

    /// The parent directory, or `None` for a top-level entry.
    pub fn parent(&self) -> Option<RelPath> {
        let i = self.0.iter().rposition(|&b| b == b'/')?;
        Some(RelPath(self.0[..i].into()))
    }

    /// Every proper ancestor, outermost first (`a`, `a/b` for `a/b/c`).
    pub fn ancestors(&self) -> impl Iterator<Item = &[u8]> {
        self.0
            .iter()
            .enumerate()
            .filter(|(_, &b)| b == b'/')
            .map(|(i, _)| &self.0[..i])
    }

    /// Whether `self` lies strictly inside the directory `dir`.
    #[cfg(test)]
    pub fn is_inside(&self, dir: &RelPath) -> bool {
        self.0.len() > dir.0.len() && self.0.starts_with(&dir.0) && self.0[dir.0.len()] == b'/'
    }

    /// `self/name`, validated.
    #[cfg(test)]
    pub fn join(&self, name: &[u8]) -> Result<RelPath, PathError> {
        let mut bytes = Vec::with_capacity(self.0.len() + 1 + name.len());
        bytes.extend_from_slice(&self.0);
        bytes.push(b'/');
        bytes.extend_from_slice(name);
        RelPath::new(&bytes)
    }
}

fn validate(bytes: &[u8]) -> Result<(), PathError> {
    if bytes.is_empty() {
        return Err(PathError::Empty);
    }
    if bytes[0] == b'/' {
        return Err(PathError::Absolute);
    }
    if bytes.contains(&0) {
        return Err(PathError::Nul);
    }
    if bytes.len() > PATH_MAX {
        return Err(PathError::PathTooLong);
    }
    for component in bytes.split(|&b| b == b'/') {
        match component {
            b"" => return Err(PathError::EmptyComponent),
            b"." => return Err(PathError::Dot),
            b".." => return Err(PathError::DotDot),
            c if c.len() > NAME_MAX => return Err(PathError::NameTooLong),
            _ => {}
        }
    }
    Ok(())
}

impl fmt::Display for RelPath {
    /// Lossy for display only; the bytes themselves are never altered.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&escape_bytes(&self.0))
    }
}

/// Whether `c` must not reach a terminal as is: controls (C0, DEL, C1, so
/// no escape sequence and no forged line) and the invisible format and
/// bidirectional-override characters that make one name look like another.
fn needs_escape(c: char) -> bool {
    c.is_control()
        || matches!(c, '\u{200b}'..='\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2060}'..='\u{2069}' | '\u{feff}')
}

/// `bytes` for display, unambiguously: printable UTF-8 as is, `\` as `\\`,
/// `\n`, `\t`, `\r`, other control and invisible characters as `\u{..}`,
/// and every byte that is not UTF-8 as `\xNN`. Distinct byte strings give
/// distinct strings, and none holds a control character.
pub fn escape_bytes(bytes: &[u8]) -> String {
    use std::fmt::Write;
    let mut out = String::with_capacity(bytes.len());
    for chunk in bytes.utf8_chunks() {
        for c in chunk.valid().chars() {
            match c {
                '\\' => out.push_str("\\\\"),
                '\n' => out.push_str("\\n"),
                '\t' => out.push_str("\\t"),
                '\r' => out.push_str("\\r"),
                c if needs_escape(c) => {
                    let _ = write!(out, "\\u{{{:x}}}", c as u32);
                }
                c => out.push(c),
            }
        }
        for b in chunk.invalid() {
            let _ = write!(out, "\\x{b:02x}");
        }
    }
    out
}

impl fmt::Debug for RelPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "\"{}\"", escape_bytes(&self.0))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_ordinary_paths() {
        for ok in [
            &b"a"[..],
            b"a/b",
            b".config",
            b"..a",
            b"a/.../b",
            b"\xff\xfe/x",
            b"a b/c",
        ] {
            assert!(
                RelPath::new(ok).is_ok(),
                "{:?}",
                String::from_utf8_lossy(ok)
            );
        }
    }

    #[test]
    fn rejects_each_kind_of_bad_path() {
        let long_name = vec![b'x'; NAME_MAX + 1];
        let long_path: Vec<u8> = std::iter::repeat_n(&b"abcdefgh/"[..], 460)
            .flatten()
            .copied()
            .chain(*b"z")
            .collect();
        let cases: Vec<(&[u8], PathError)> = vec![
            (b"", PathError::Empty),
            (b"/etc/passwd", PathError::Absolute),
            (b"a\0b", PathError::Nul),
            (b"a//b", PathError::EmptyComponent),
            (b"a/", PathError::EmptyComponent),
            (b".", PathError::Dot),
            (b"a/./b", PathError::Dot),
            (b"..", PathError::DotDot),
            (b"a/../../etc", PathError::DotDot),
            (b"a/..", PathError::DotDot),
            (&long_name, PathError::NameTooLong),
            (&long_path, PathError::PathTooLong),
        ];
        for (bytes, expected) in cases {
            assert_eq!(
                RelPath::new(bytes).unwrap_err(),
                expected,
                "{:?}",
                String::from_utf8_lossy(bytes)
            );
        }
        assert!(RelPath::new(&vec![b'x'; NAME_MAX]).is_ok());
    }

    #[test]
    fn parents_sort_before_children() {
        let mut paths: Vec<RelPath> = ["a.b", "a/b", "a", "a/b/c", "a-b"]
            .iter()
            .map(|p| RelPath::new(p.as_bytes()).unwrap())
            .collect();
        paths.sort();
        let names: Vec<String> = paths.iter().map(|p| p.to_string()).collect();
        assert_eq!(names, ["a", "a-b", "a.b", "a/b", "a/b/c"]);
    }

    #[test]
    fn structure_helpers() {
        let p = RelPath::new(b"a/b/c").unwrap();
        assert_eq!(p.file_name(), b"c");
        assert_eq!(p.parent().unwrap().as_bytes(), b"a/b");
        assert_eq!(p.ancestors().collect::<Vec<_>>(), vec![&b"a"[..], b"a/b"]);
        assert!(p.is_inside(&RelPath::new(b"a").unwrap()));
        assert!(!RelPath::new(b"ab/c")
            .unwrap()
            .is_inside(&RelPath::new(b"a").unwrap()));
        assert!(RelPath::new(b"top").unwrap().parent().is_none());
        assert_eq!(p.join(b"d").unwrap().as_bytes(), b"a/b/c/d");
        assert!(p.join(b"..").is_err());
    }

    /// Finding 6 of #12: names print unambiguously and without control
    /// characters (no escape sequence reaches a terminal, no newline forges
    /// a listing line, distinct non-UTF-8 names print differently).
    #[test]
    fn names_are_escaped_unambiguously() {
        let cases: &[(&[u8], &str)] = &[
            (b"plain/caf\xc3\xa9.o", "plain/caf\u{e9}.o"),
            (b"a\nforged", "a\\nforged"),
            (b"\x1b[31mred", "\\u{1b}[31mred"),
            (b"back\\slash", "back\\\\slash"),
            (b"x\xff", "x\\xff"),
            (b"x\xfe", "x\\xfe"),
            (b"rtl\xe2\x80\xaeo.c", "rtl\\u{202e}o.c"),
            (b"c1\xc2\x9b", "c1\\u{9b}"),
        ];
        for (bytes, shown) in cases {
            let p = RelPath::new(bytes).unwrap();
            assert_eq!(p.to_string(), *shown);
            assert!(!p.to_string().chars().any(|c| c.is_control()));
        }
        // Lossy printing made these two equal; escaped, they differ.
        assert_ne!(escape_bytes(b"x\xff"), escape_bytes(b"x\xfe"));
        assert_ne!(escape_bytes(b"x\xff"), escape_bytes("x\u{fffd}".as_bytes()));
        assert_ne!(escape_bytes(b"a\\x41"), escape_bytes(b"a\x41"));
    }
}
