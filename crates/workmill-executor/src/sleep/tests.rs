//! Unit tests of `sleep`.
