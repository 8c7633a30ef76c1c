//! The checkpoint pack: writer, reader, verification.
