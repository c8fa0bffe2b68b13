//! Shared set-up for the PostgreSQL tests: the server from `WORKMILL_POSTGRES_URL`, and a fresh
//! schema for every queue, dropped when the test ends, so that tests run in parallel.

use std::sync::Mutex;

use workmill_core::{QueueError, TaskId};
use workmill_queue::postgres::{PostgresConfig, PostgresQueue};
use workmill_queue::testkit::{CorruptStore, Harness, QueueSettings};

/// The variable that names the server; `.ci/run` always sets it.
pub(crate) const URL_VARIABLE: &str = "WORKMILL_POSTGRES_URL";

/// Evaluates to a [`PostgresHarness`], or prints why the test is skipped and returns from it.
macro_rules! postgres_or_skip {
    () => {
        match crate::postgres_support::PostgresHarness::from_env() {
            Some(harness) => harness,
            None => {
                println!(
                    "skipped: {} is not set, so there is no PostgreSQL server to test against; \
                     set it (for example to postgres://postgres@127.0.0.1:5432/test) to run this test",
                    crate::postgres_support::URL_VARIABLE
                );
                return;
            }
        }
    };
}
pub(crate) use postgres_or_skip;

/// Makes each queue in a new schema of the test server, and drops them all when it is dropped.
pub(crate) struct PostgresHarness {
    url: String,
    schemas: Mutex<Vec<String>>,
}

impl PostgresHarness {
    /// The harness for the server in [`URL_VARIABLE`], if it is set.
    pub(crate) fn from_env() -> Option<PostgresHarness> {
        let url = std::env::var(URL_VARIABLE).ok().filter(|u| !u.is_empty())?;
        Some(PostgresHarness {
            url,
            schemas: Mutex::new(Vec::new()),
        })
    }

    /// A schema name no other test uses, dropped with the harness.
    pub(crate) fn fresh_schema(&self) -> String {
        let schema = format!("wmtest_{}", TaskId::generate().as_str().to_lowercase());
        self.schemas.lock().unwrap().push(schema.clone());
        schema
    }

    /// The server URL as given, without a schema.
    pub(crate) fn url(&self) -> &str {
        &self.url
    }

    /// The server URL with `?schema=` (or `&schema=`) added.
    pub(crate) fn url_with_schema(&self, schema: &str) -> String {
        let joiner = if self.url.contains('?') { '&' } else { '?' };
        format!("{}{joiner}schema={schema}", self.url)
    }

    /// A plain connection, for looking at the tables or acting behind the queue's back.
    pub(crate) fn admin(&self) -> postgres::Client {
        postgres::Client::connect(&self.url, postgres::NoTls).expect("connect to the test server")
    }

    /// A queue in a fresh schema, opened with `config`.
    pub(crate) fn open(&self, config: PostgresConfig) -> PostgresQueue {
        config
            .schema(self.fresh_schema())
            .open(&self.url)
            .expect("open a queue in a fresh schema")
    }
}

impl Drop for PostgresHarness {
    fn drop(&mut self) {
        let schemas = std::mem::take(&mut *self.schemas.lock().unwrap_or_else(|e| e.into_inner()));
        if schemas.is_empty() {
            return;
        }
        match postgres::Client::connect(&self.url, postgres::NoTls) {
            Ok(mut admin) => {
                for schema in schemas {
                    if let Err(err) =
                        admin.batch_execute(&format!("DROP SCHEMA IF EXISTS \"{schema}\" CASCADE"))
                    {
                        eprintln!("could not drop test schema {schema}: {err}");
                    }
                }
            }
            Err(err) => eprintln!("could not connect to drop the test schemas: {err}"),
        }
    }
}

impl Harness for PostgresHarness {
    type Queue = PostgresQueue;

    fn fresh(&self, settings: &QueueSettings) -> PostgresQueue {
        self.open(PostgresConfig::new().retain_finished(settings.retain_finished))
    }

    fn corrupt_payload(
        &self,
        queue: &PostgresQueue,
        id: &TaskId,
    ) -> Option<Result<(), QueueError>> {
        Some(queue.corrupt_payload(id))
    }
}
