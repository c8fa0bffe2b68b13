//! Unit tests of `latch`.
