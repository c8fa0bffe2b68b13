//! Private stores named by URL, for the tests that run workers on every backend: a SQLite file, a
//! key prefix on the Redis server of `WORKMILL_REDIS_URL`, a schema on the PostgreSQL server of
//! `WORKMILL_POSTGRES_URL`. A server store is removed when dropped, so tests run in parallel and
//! leave nothing behind.

use std::path::Path;

use workmill::TaskId;

/// The variable naming the Redis server the tests share; `.ci/run` sets it.
pub(crate) const REDIS_VARIABLE: &str = "WORKMILL_REDIS_URL";
/// The variable naming the PostgreSQL server the tests share; `.ci/run` sets it.
pub(crate) const POSTGRES_VARIABLE: &str = "WORKMILL_POSTGRES_URL";

/// A store only one test uses, and the URL that opens it.
pub(crate) struct TestStore {
    url: String,
    place: Place,
}

/// What the store is, and so how it is removed.
enum Place {
    /// A file in a directory the test owns and removes.
    Sqlite,
    /// Every key under `prefix:` on the server at `url`.
    Redis,
    /// A schema on the server at `server`.
    Postgres { server: String, schema: String },
}

impl TestStore {
    /// The SQLite file at `file` (in a directory the test owns).
    pub(crate) fn sqlite(file: &Path) -> TestStore {
        TestStore {
            url: format!("sqlite://{}", file.display()),
            place: Place::Sqlite,
        }
    }

    /// A fresh key prefix on the shared Redis server, or `None` (with the reason printed)
    /// when `WORKMILL_REDIS_URL` is unset. `test` names the test, in the message and the prefix.
    pub(crate) fn redis(test: &str) -> Option<TestStore> {
        let server = server(REDIS_VARIABLE, test, "redis://127.0.0.1:6379")?;
        let prefix = format!("workmill-test:{test}:{}", TaskId::generate());
        Some(TestStore {
            url: with_parameter(&server, "prefix", &prefix),
            place: Place::Redis,
        })
    }

    /// A fresh schema on the shared PostgreSQL server, or `None` (with the reason printed)
    /// when `WORKMILL_POSTGRES_URL` is unset. `test` names the test in the message.
    pub(crate) fn postgres(test: &str) -> Option<TestStore> {
        let server = server(
            POSTGRES_VARIABLE,
            test,
            "postgres://postgres@127.0.0.1:5432/test",
        )?;
        let schema = format!("wmtest_{}", TaskId::generate().as_str().to_lowercase());
        Some(TestStore {
            url: with_parameter(&server, "schema", &schema),
            place: Place::Postgres { server, schema },
        })
    }

    /// The URL that opens this store.
    pub(crate) fn url(&self) -> &str {
        &self.url
    }

    /// The backend's name, as `Queue::backend_name` gives it.
    pub(crate) fn kind(&self) -> &'static str {
        match self.place {
            Place::Sqlite => "sqlite",
            Place::Redis => "redis",
            Place::Postgres { .. } => "postgres",
        }
    }

    /// A plain connection to the PostgreSQL server of a PostgreSQL store, to act behind the
    /// queue's back (terminate its workers' connections).
    pub(crate) fn postgres_admin(&self) -> postgres::Client {
        match &self.place {
            Place::Postgres { server, .. } => postgres::Client::connect(server, postgres::NoTls)
                .expect("connect to the PostgreSQL test server"),
            _ => panic!("only a PostgreSQL store has a server to administer"),
        }
    }

    /// True when a frozen worker process cannot change the store: SQLite is written by the
    /// worker processes themselves, while a server may still finish a statement that a
    /// worker sent just before it was stopped.
    pub(crate) fn frozen_writer_writes_nothing(&self) -> bool {
        matches!(self.place, Place::Sqlite)
    }
}

impl Drop for TestStore {
    fn drop(&mut self) {
        match &self.place {
            Place::Sqlite => {}
            Place::Redis => {
                let removed = workmill_queue::redis::RedisQueue::open(&self.url)
                    .and_then(|queue| queue.destroy());
                if let Err(error) = removed {
                    eprintln!("could not delete the test keys of {}: {error}", self.url);
                }
            }
            Place::Postgres { server, schema } => {
                let removed =
                    postgres::Client::connect(server, postgres::NoTls).and_then(|mut admin| {
                        admin.batch_execute(&format!("DROP SCHEMA IF EXISTS \"{schema}\" CASCADE"))
                    });
                if let Err(error) = removed {
                    eprintln!("could not drop the test schema {schema}: {error}");
                }
            }
        }
    }
}

/// The server URL in `variable`, or `None` after printing why `test` is skipped.
pub(crate) fn server(variable: &str, test: &str, example: &str) -> Option<String> {
    match std::env::var(variable) {
        Ok(url) if !url.is_empty() => Some(url),
        _ => {
            println!(
                "skipped {test}: {variable} is not set, so there is no server to run it against; \
                 set it (for example to {example}; .ci/run does) to run it"
            );
            None
        }
    }
}

/// `url` with `name=value` added to its query.
pub(crate) fn with_parameter(url: &str, name: &str, value: &str) -> String {
    let joiner = if url.contains('?') { '&' } else { '?' };
    format!("{url}{joiner}{name}={value}")
}
