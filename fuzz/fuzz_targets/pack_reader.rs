//! Bytes -> PackReader, twice: as given (checksums almost always fail, which
//! exercises the container checks), and with the section and trailer
//! checksums recomputed, so that mutations reach the decoder. Whatever the
//! reader accepts must then verify or fail cleanly, blob by blob.
#![no_main]

use libfuzzer_sys::fuzz_target;
use nix_checkpoint::checkpoint::testing::{fix_checksums, open_bytes};
use nix_checkpoint::checkpoint::PackReader;
use nix_checkpoint::exit_code::ExitCode;

fn exercise(reader: &PackReader) {
    let cp = reader.checkpoint();
    // Invariants the rest of the program relies on.
    for m in [&cp.before, &cp.after] {
        for w in m.entries().windows(2) {
            assert!(w[0].path < w[1].path, "manifest not strictly sorted");
        }
    }
    for w in reader.blobs().windows(2) {
        assert!(w[0].hash < w[1].hash, "blob table not strictly sorted");
    }
    let _ = reader.verify();
    for rec in reader.blobs().iter().take(4) {
        if rec.raw_size <= 1 << 20 {
            if let Ok(data) = reader.read_blob(rec.hash) {
                assert_eq!(data.len() as u64, rec.raw_size);
            }
        }
    }
}

fn check(bytes: &[u8]) {
    match open_bytes(bytes) {
        Ok(reader) => exercise(&reader),
        Err(e) => {
            let code = e.exit_code();
            assert!(
                matches!(
                    code,
                    ExitCode::CheckpointCorrupt
                        | ExitCode::CheckpointUnsupported
                        | ExitCode::CheckpointUnsafe
                ),
                "unexpected exit code {code:?} for {e}"
            );
            assert!(!e.to_string().is_empty());
        }
    }
}

fuzz_target!(|data: &[u8]| {
    check(data);
    let mut fixed = data.to_vec();
    if fix_checksums(&mut fixed) && fixed != data {
        check(&fixed);
    }
});
