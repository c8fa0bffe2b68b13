//! Unit tests of `spawn`.
