#!/usr/bin/env python3
"""Deterministic synthetic build trees for the scaling benchmark.

A tree of N files is half sources, half products, laid out like a C project:
  src/dNN/mMM/fKKKKK.c   (text-like: C-ish tokens, compresses ~3x with zstd)
  src/dNN/mMM/fKKKKK.o   (object-like: random code bytes, zero padding,
                          relocation-like tables; compresses ~2x)
Sizes are log-normal: sources around a few KB, products a few times larger.
Everything (names, sizes, contents) depends only on --seed and --files.

  gen_tree.py --seed 1 --files 10000 --part sources  DIR   # before the build
  gen_tree.py --seed 1 --files 10000 --part products DIR   # "the build"
  gen_tree.py ... --part sources --edit 1 DIR  # the same sources, 1 file edited
  gen_tree.py ... --total-bytes 1e9            # scale sizes to this total

Prints one JSON line: files and bytes written per part.
"""
import argparse
import json
import math
import os
import random
import sys

TOKENS = (
    "int char void static const return if else for while struct unsigned long "
    "size_t uint32_t uint64_t NULL sizeof break continue switch case default "
    "goto extern inline #include #define #ifdef #endif ( ) { } [ ] ; , = == != "
    "+ - * / & | ^ -> . < > <= >= && || ! buf len ret err ctx dev node list "
    "flags offset count data ptr val idx i j k tmp lock page mm task inode file"
).split()
IDENTS = [
    f"{a}_{b}" for a in ("dev", "mm", "fs", "net", "sched", "irq", "kobj", "page")
    for b in ("init", "alloc", "free", "get", "put", "lookup", "update", "flush")
]


WORDS = TOKENS + IDENTS + ["\n", "\n", "\n\t", "\n\t", "\n\t\t", "\n\t\t\t", "\n/*", "*/\n"]
LOW16 = bytes.maketrans(bytes(range(256)), bytes((b & 0x0F) * 17 for b in range(256)))
IDENT_BLOB = b"\x00".join(i.encode() for i in IDENTS)


def text_bytes(rng, size):
    """C-like text, unique per file: tokens, newlines, indentation, comments."""
    words = rng.choices(WORDS, k=size // 5 + 8)
    return " ".join(words).encode()[:size]


def object_bytes(rng, size):
    """Object-file-like bytes, unique per file: code, padding, tables, strings."""
    parts, n = [], 0
    while n < size:
        kind = rng.random()
        m = int(rng.lognormvariate(math.log(768), 1.0)) + 16
        if kind < 0.35:  # machine code: high entropy
            b = rng.randbytes(m)
        elif kind < 0.60:  # alignment padding, bss-like zeros
            b = bytes(m)
        elif kind < 0.85:  # relocation/symbol tables: low-entropy records
            b = rng.randbytes(m).translate(LOW16)
        else:  # string tables
            o = rng.randrange(0, len(IDENT_BLOB) // 2)
            b = (IDENT_BLOB[o:] * (m // len(IDENT_BLOB) + 1))[:m]
        parts.append(b)
        n += len(b)
    return b"".join(parts)[:size]


def sizes(rng, count, median, sigma, cap):
    return [max(1, min(cap, int(rng.lognormvariate(math.log(median), sigma)))) for _ in range(count)]


def layout(nfiles):
    """Paths for the k-th source/product (same stem, .c vs .o)."""
    per_dir = 40
    stems = []
    for k in range(nfiles):
        d, m = divmod(k // per_dir, 25)
        stems.append(f"src/d{d:03d}/m{m:02d}/f{k:06d}")
    return stems


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--files", type=int, required=True, help="total files (half sources, half products)")
    ap.add_argument("--part", choices=("sources", "products", "all"), default="all")
    ap.add_argument("--edit", type=int, default=0, help="edit this many sources (a later build)")
    ap.add_argument("--total-bytes", type=float, default=0, help="scale all sizes to about this total")
    ap.add_argument("dir")
    a = ap.parse_args()

    rng = random.Random(a.seed)
    nsrc = a.files // 2
    nprod = a.files - nsrc
    stems = layout(max(nsrc, nprod))
    src_sizes = sizes(rng, nsrc, 3 * 1024, 1.0, 512 * 1024)
    prod_sizes = sizes(rng, nprod, 10 * 1024, 1.1, 4 * 1024 * 1024)
    if a.total_bytes:
        f = a.total_bytes / (sum(src_sizes) + sum(prod_sizes))
        src_sizes = [max(1, int(s * f)) for s in src_sizes]
        prod_sizes = [max(1, int(s * f)) for s in prod_sizes]
    edits = set(random.Random(a.seed + 99).sample(range(nsrc), min(a.edit, nsrc)))

    made = set()
    stats = {"sources": [0, 0], "products": [0, 0]}

    def write(path, header, gen, key, size):
        d = os.path.dirname(path)
        if d not in made:
            os.makedirs(d, exist_ok=True)
            made.add(d)
        body = gen(random.Random(key), size)
        with open(path, "wb") as fh:
            fh.write(header)
            fh.write(body[len(header):] if size > len(header) else b"")

    if a.part in ("sources", "all"):
        for k in range(nsrc):
            hdr = f"/* {stems[k]}.c seed {a.seed} */\n".encode()
            if k in edits:
                hdr = f"/* {stems[k]}.c seed {a.seed} EDITED */\n".encode()
            write(os.path.join(a.dir, stems[k] + ".c"), hdr, text_bytes, a.seed * 1000003 + 2 * k, src_sizes[k])
            stats["sources"][0] += 1
            stats["sources"][1] += max(src_sizes[k], len(hdr))
    if a.part in ("products", "all"):
        for k in range(nprod):
            hdr = b"\x7fELF" + f"{stems[k]}.o {a.seed}".encode() + b"\x00"
            write(os.path.join(a.dir, stems[k] + ".o"), hdr, object_bytes, a.seed * 1000003 + 2 * k + 1, prod_sizes[k])
            stats["products"][0] += 1
            stats["products"][1] += max(prod_sizes[k], len(hdr))
    json.dump({p: {"files": v[0], "bytes": v[1]} for p, v in stats.items()}, sys.stdout)
    print()


if __name__ == "__main__":
    main()
