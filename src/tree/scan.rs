//! Walks and hashes a build tree into a [`Manifest`](super::Manifest).
