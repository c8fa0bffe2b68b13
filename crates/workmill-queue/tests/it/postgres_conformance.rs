//! The conformance suite against PostgreSQL, each check in its own schema; skipped, saying why,
//! when `WORKMILL_POSTGRES_URL` is not set.

workmill_queue::queue_conformance_tests!(crate::postgres_support::postgres_or_skip!());
