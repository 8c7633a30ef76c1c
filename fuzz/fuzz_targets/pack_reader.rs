//! Bytes -> PackReader, twice: as given (checksums almost always fail, which
//! exercises the container checks), and with the section and trailer
//! checksums recomputed, so that mutations reach the decoder. Whatever the
//! reader accepts must then verify or fail cleanly, blob by blob.
#![no_main]

use libfuzzer_sys::fuzz_target;
use nix_checkpoint::apply::{BlobSource, StreamError};
use nix_checkpoint::checkpoint::testing::{fix_checksums, open_bytes};
use nix_checkpoint::checkpoint::PackReader;
use nix_checkpoint::exit_code::ExitCode;
use nix_checkpoint::rewrite::Rewriter;

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
    let verified = reader
        .verify_blobs(reader.blobs().iter().map(|r| r.hash))
        .is_ok();
    for rec in reader.blobs().iter().take(4) {
        if rec.raw_size <= 1 << 20 {
            let whole = reader.read_blob(rec.hash);
            if let Ok(data) = &whole {
                assert_eq!(data.len() as u64, rec.raw_size);
            }
            // The streaming path restore uses for large blobs agrees with
            // the whole read, byte for byte and on failure.
            let mut out = Vec::new();
            let streamed =
                BlobSource::stream_blob(reader, rec.hash, &Rewriter::identity(), &mut out);
            match (&whole, streamed) {
                (Ok(data), Ok(n)) => {
                    assert_eq!(n, rec.raw_size);
                    assert_eq!(data, &out);
                }
                (Err(_), Err(StreamError::Source(_))) => {}
                (w, s) => panic!(
                    "read_blob {:?} but stream_blob {:?}",
                    w.as_ref().map(|d| d.len()),
                    s
                ),
            }
        }
    }
    if verified {
        for rec in reader.blobs() {
            assert!(rec.raw_size > 1 << 20 || reader.read_blob(rec.hash).is_ok());
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
