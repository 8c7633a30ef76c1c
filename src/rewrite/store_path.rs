//! Nix store paths: parsing, and finding them in text.

/// Characters of Nix's base-32 alphabet (no `e`, `o`, `u`, `t`).
pub const NIX_BASE32: &[u8; 32] = b"0123456789abcdfghijklmnpqrsvwxyz";
/// Length of the hash part of a store path.
pub const HASH_LEN: usize = 32;

pub fn is_base32(b: u8) -> bool {
    NIX_BASE32.contains(&b)
}

/// An absolute store path `<store_dir>/<32-char hash>-<name>` (no trailing
/// components), as raw bytes.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct StorePath {
    path: Vec<u8>,
    /// Offset of the hash inside `path`.
    hash_at: usize,
}

impl StorePath {
    /// Parses `<store_dir>/<hash>-<name>`; anything after a further `/` is
    /// cut off (so `/nix/store/h-gcc/bin/gcc` gives `/nix/store/h-gcc`).
    pub fn parse(store_dir: &[u8], text: &[u8]) -> Option<StorePath> {
        let rest = text.strip_prefix(store_dir)?.strip_prefix(b"/")?;
        let hash = rest.get(..HASH_LEN)?;
        if !hash.iter().all(|&b| is_base32(b)) || rest.get(HASH_LEN) != Some(&b'-') {
            return None;
        }
        let name_len = rest[HASH_LEN + 1..]
            .iter()
            .position(|&b| !is_name_char(b))
            .unwrap_or(rest.len() - HASH_LEN - 1);
        if name_len == 0 {
            return None;
        }
        let len = store_dir.len() + 1 + HASH_LEN + 1 + name_len;
        Some(StorePath {
            path: text[..len].to_vec(),
            hash_at: store_dir.len() + 1,
        })
    }

    pub fn as_bytes(&self) -> &[u8] {
        &self.path
    }

    pub fn hash(&self) -> &[u8] {
        &self.path[self.hash_at..self.hash_at + HASH_LEN]
    }

    /// The name after `<hash>-`.
    pub fn name(&self) -> &[u8] {
        &self.path[self.hash_at + HASH_LEN + 1..]
    }

    pub fn store_dir(&self) -> &[u8] {
        &self.path[..self.hash_at - 1]
    }
}

impl std::fmt::Display for StorePath {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&String::from_utf8_lossy(&self.path))
    }
}

/// Characters Nix allows in a store path name.
pub(crate) fn is_name_char(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"+-._?=".contains(&b)
}

/// Every store path mentioned anywhere in `text` (in order of appearance,
/// duplicates kept).
pub fn find_store_paths(store_dir: &[u8], text: &[u8]) -> Vec<StorePath> {
    let mut found = Vec::new();
    let mut from = 0;
    let needle = [store_dir, b"/"].concat();
    while let Some(at) = find(&text[from..], &needle) {
        let start = from + at;
        match StorePath::parse(store_dir, &text[start..]) {
            Some(p) => {
                from = start + p.path.len();
                found.push(p);
            }
            None => from = start + needle.len(),
        }
    }
    found
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

#[cfg(test)]
mod tests {
    use super::*;

    const H: &str = "0c9vyk4cpzfmrfbdlq1ry1gxyrk2ynvr";

    #[test]
    fn parses_hash_and_name() {
        let text = format!("/nix/store/{H}-hello-2.10/bin/hello");
        let p = StorePath::parse(b"/nix/store", text.as_bytes()).unwrap();
        assert_eq!(p.hash(), H.as_bytes());
        assert_eq!(p.name(), b"hello-2.10");
        assert_eq!(
            p.as_bytes(),
            format!("/nix/store/{H}-hello-2.10").as_bytes()
        );
        assert_eq!(p.store_dir(), b"/nix/store");
    }

    #[test]
    fn rejects_non_store_paths() {
        for bad in [
            "/usr/bin/gcc",
            "/nix/store/short-x",
            &format!("/nix/store/{H}"),
            &format!("/nix/store/{H}-"),
            &format!("/nix/store/{}e-x", &H[..31]),
        ] {
            assert!(
                StorePath::parse(b"/nix/store", bad.as_bytes()).is_none(),
                "{bad}"
            );
        }
    }

    #[test]
    fn finds_all_paths_in_a_variable() {
        let text = format!(
            "-isystem /nix/store/{H}-zlib-1.3-dev/include -L/nix/store/{H}-glibc-2.38/lib /usr/lib"
        );
        let names: Vec<_> = find_store_paths(b"/nix/store", text.as_bytes())
            .iter()
            .map(|p| String::from_utf8(p.name().to_vec()).unwrap())
            .collect();
        assert_eq!(names, ["zlib-1.3-dev", "glibc-2.38"]);
    }
}
