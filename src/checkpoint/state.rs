//! The snapshot state file: written by `snapshot`, read by `save`.
