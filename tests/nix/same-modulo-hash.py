#!/usr/bin/env python3
"""Is store path A the same as store path B, up to each one's own hash?

    same-modulo-hash.py A B [PHYSICAL-A]

Both trees must hold the same entries with the same types, modes and symlink
targets (own hash replaced). File contents must have the same length and
differ only in runs of bytes where A holds a piece of A's hash and B the
piece of B's hash at the same position in the hash: compilers split strings
into 8- and 16-byte immediates, so a hash can appear in pieces anywhere. A
gzip file is compared by what it holds (its header has the input's mtime,
which nixpkgs' gzip leaves out and the host's does not).

Prints the differences and exits 1, or exits 0.
"""
import gzip
import os
import stat
import sys


def own_hash(path):
    return os.path.basename(path.rstrip("/"))[:32].encode()


def listing(root):
    out = {}
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames.sort()
        for name in sorted(dirnames + filenames):
            full = os.path.join(dirpath, name)
            out[os.path.relpath(full, root)] = os.lstat(full)
    return out


def content(path):
    with open(path, "rb") as f:
        data = f.read()
    if path.endswith(".gz"):
        try:
            return gzip.decompress(data)
        except OSError:
            pass
    return data


def same_bytes(a, b, ha, hb):
    if len(a) != len(b):
        return f"sizes {len(a)} and {len(b)}"
    i, n = 0, len(a)
    while i < n:
        if a[i] == b[i]:
            i += 1
            continue
        j = i
        while j < n and a[j] != b[j]:
            j += 1
        ra, rb = a[i:j], b[i:j]
        # Where the two hashes share a character, a piece of them differs
        # in a shorter run: any position in the hash will do.
        if not any(
            ha[k:k + len(ra)] == ra and hb[k:k + len(rb)] == rb
            for k in range(0, len(ha) - len(ra) + 1)
        ):
            return f"offset {i}: {ra[:40]!r} vs {rb[:40]!r}"
        i = j
    return None


def main():
    a, b = sys.argv[1], sys.argv[2]
    phys_a = sys.argv[3] if len(sys.argv) > 3 else a
    ha, hb = own_hash(a), own_hash(b)
    la, lb = listing(phys_a), listing(b)
    problems = []
    for rel in sorted(set(la) | set(lb)):
        if rel not in la or rel not in lb:
            problems.append(f"{rel}: only in {'B' if rel in lb else 'A'}")
            continue
        sa, sb = la[rel], lb[rel]
        if stat.S_IFMT(sa.st_mode) != stat.S_IFMT(sb.st_mode) or (
            not stat.S_ISLNK(sa.st_mode) and stat.S_IMODE(sa.st_mode) != stat.S_IMODE(sb.st_mode)
        ):
            problems.append(f"{rel}: type or mode {oct(sa.st_mode)} vs {oct(sb.st_mode)}")
        elif stat.S_ISLNK(sa.st_mode):
            ta = os.readlink(os.path.join(phys_a, rel)).encode().replace(ha, b"@")
            tb = os.readlink(os.path.join(b, rel)).encode().replace(hb, b"@")
            if ta != tb:
                problems.append(f"{rel}: symlink {ta!r} vs {tb!r}")
        elif stat.S_ISREG(sa.st_mode):
            why = same_bytes(content(os.path.join(phys_a, rel)), content(os.path.join(b, rel)), ha, hb)
            if why:
                problems.append(f"{rel}: {why}")
    for p in problems[:20]:
        print(p)
    sys.exit(1 if problems else 0)


if __name__ == "__main__":
    main()
