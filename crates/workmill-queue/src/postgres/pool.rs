//! Connections: opening one with the session settings a queue needs, keeping a few per queue value
//! with their prepared statements, and replacing one the server closed on the next call.

use std::cell::Cell;
use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use postgres::{Client, GenericClient, NoTls, Statement};
use thiserror::Error;
use workmill_core::QueueError;

use super::config::SynchronousCommit;
use super::store::{BACKEND, connection_is_lost};

/// A server that could not be reached or would not let this process in.
#[derive(Debug, Error)]
#[error(
    "cannot connect to {url}: {source}; check that the server is running, that the host, port, user and database are right, and that pg_hba.conf admits this host"
)]
pub struct ConnectError {
    /// The URL, password removed.
    pub url: String,
    /// What the driver said.
    pub source: postgres::Error,
}

/// What every connection of one queue value needs to know: where its tables are and how it behaves.
#[derive(Debug)]
pub(crate) struct Settings {
    /// The schema name, validated, as written in SQL (quoted).
    pub(crate) quoted_schema: String,
    /// The channel that wakes idle workers: new or returned work.
    pub(crate) work_channel: String,
    /// The channel that wakes `wait`: a task reached a final status.
    pub(crate) done_channel: String,
    pub(crate) retain_finished: Option<u64>,
    pub(crate) payload_limit: usize,
}

impl Settings {
    pub(crate) fn new(
        schema: &str,
        retain_finished: Option<u64>,
        payload_limit: usize,
    ) -> Settings {
        Settings {
            quoted_schema: format!("\"{schema}\""),
            work_channel: format!("workmill:{schema}:work"),
            done_channel: format!("workmill:{schema}:done"),
            retain_finished,
            payload_limit,
        }
    }

    /// The retention bound as a `bigint` parameter (`NULL` keeps everything).
    pub(crate) fn retention(&self) -> Option<i64> {
        self.retain_finished
            .map(|bound| i64::try_from(bound).unwrap_or(i64::MAX))
    }

    /// How many records beyond the excess an eviction drops, as a `bigint` parameter: 1/64 of
    /// the bound. Evicting in chunks keeps the bound (stored records never exceed it) while
    /// sparing most finishing transactions the walk to the oldest finished record.
    pub(crate) fn retention_slack(&self) -> i64 {
        self.retention().map_or(0, |bound| bound / 64)
    }

    /// A statement template with `{s}` replaced by the schema.
    pub(crate) fn render(&self, template: &str) -> String {
        template.replace("{s}", &self.quoted_schema)
    }
}

/// How to open a connection for a queue value.
#[derive(Clone)]
pub(crate) struct Connector {
    pub(crate) config: postgres::Config,
    pub(crate) redacted_url: String,
    pub(crate) synchronous_commit: SynchronousCommit,
}

impl Connector {
    /// Opens a connection and applies the session settings.
    pub(crate) fn connect(&self) -> Result<Client, QueueError> {
        let fail = |source| {
            QueueError::backend(
                BACKEND,
                "connect",
                ConnectError {
                    url: self.redacted_url.clone(),
                    source,
                },
            )
        };
        let mut client = self.config.connect(NoTls).map_err(fail)?;
        if self.synchronous_commit == SynchronousCommit::Off {
            // Session level only: other applications on the server keep their setting.
            client
                .batch_execute("SET synchronous_commit = off")
                .map_err(fail)?;
        }
        Ok(client)
    }
}

/// One open connection with the statements it has prepared.
pub(crate) struct Session {
    pub(crate) client: Client,
    pub(crate) statements: Statements,
    pub(crate) settings: Arc<Settings>,
}

impl Session {
    pub(crate) fn new(client: Client, settings: Arc<Settings>) -> Session {
        Session {
            client,
            statements: Statements::default(),
            settings,
        }
    }
}

/// The statements one connection has prepared, by template.
///
/// Preparing once per connection saves a round trip (the parse) on every later call, and
/// lets the server keep a plan per statement.
#[derive(Default)]
pub(crate) struct Statements {
    prepared: HashMap<&'static str, Statement>,
}

impl Statements {
    /// The prepared form of `template` on this connection, preparing it on first use through
    /// `client` (the connection itself or an open transaction on it).
    pub(crate) fn get(
        &mut self,
        client: &mut impl GenericClient,
        settings: &Settings,
        template: &'static str,
    ) -> Result<Statement, postgres::Error> {
        if let Some(statement) = self.prepared.get(template) {
            return Ok(statement.clone());
        }
        let statement = client.prepare(&settings.render(template))?;
        self.prepared.insert(template, statement.clone());
        Ok(statement)
    }
}

thread_local! {
    static HOME_SLOT: Cell<usize> = Cell::new(fastrand::usize(..1024));
}

/// A fixed number of connection slots shared by the threads of one queue value.
///
/// A slot is empty until a thread first needs it, and empty again after its
/// connection was lost, so the next call through it reconnects: a worker whose
/// connection the server terminated gets one transient error and carries on.
/// A thread takes a free slot with an open connection if there is one, then an
/// empty one, starting from a per-thread position so that threads spread out,
/// and waits for its usual slot when all are busy.
pub(crate) struct Pool {
    slots: Vec<Mutex<Option<Session>>>,
    connector: Connector,
    settings: Arc<Settings>,
}

impl Pool {
    /// A pool of `size` slots, the first holding `first`.
    pub(crate) fn new(
        size: usize,
        first: Session,
        connector: Connector,
        settings: Arc<Settings>,
    ) -> Pool {
        let mut slots = vec![Mutex::new(Some(first))];
        slots.extend((1..size.max(1)).map(|_| Mutex::new(None)));
        Pool {
            slots,
            connector,
            settings,
        }
    }

    /// Runs `op` on a connection of its own, opening one if the slot is empty; a connection
    /// that turns out to be lost is closed, so the next call opens a fresh one.
    pub(crate) fn with<T>(
        &self,
        op: impl FnOnce(&mut Session) -> Result<T, QueueError>,
    ) -> Result<T, QueueError> {
        let mut slot = self.slot();
        let session = match &mut *slot {
            Some(session) => session,
            empty => empty.insert(Session::new(
                self.connector.connect()?,
                Arc::clone(&self.settings),
            )),
        };
        let outcome = op(session);
        match &outcome {
            Err(err) if connection_is_lost(err) || session.client.is_closed() => {
                tracing::warn!(error = %err, "dropping a PostgreSQL connection that was lost; the next call reconnects");
                *slot = None;
            }
            // An operation that succeeded may have swallowed a lost connection in a step it
            // treats as optional (a reserve's rescue, a job's bookkeeping reported per task):
            // the slot must not keep it for the next call.
            Ok(_) if session.client.is_closed() => *slot = None,
            _ => {}
        }
        outcome
    }

    /// A free slot, preferring one with an open connection, so a queue value opens only as
    /// many connections as it has threads using it at once.
    fn slot(&self) -> MutexGuard<'_, Option<Session>> {
        let home = HOME_SLOT.with(Cell::get) % self.slots.len();
        let mut empty = None;
        for offset in 0..self.slots.len() {
            let slot = &self.slots[(home + offset) % self.slots.len()];
            if let Ok(session) = slot.try_lock() {
                if session.is_some() {
                    return session;
                }
                empty.get_or_insert(session);
            }
        }
        if let Some(empty) = empty {
            return empty;
        }
        // A panic while a connection was held leaves it usable: an open transaction is
        // rolled back when it drops. So a poisoned slot is taken as it is.
        self.slots[home]
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }
}
