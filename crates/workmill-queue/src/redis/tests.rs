//! Unit tests of the Redis backend that need a server: the scripts against the Rust rules they mirror.
