//! Unit tests of `frames`.
