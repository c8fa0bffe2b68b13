//! Connections to the server: a few idle ones kept per queue value, explicit timeouts, and a
//! fresh connection after any failure of the link, so that a restarted server is picked up
//! by the next call without restarting the worker.

use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use redis::{Client, Connection, ConnectionLike, RedisError, RedisResult};
use workmill_core::QueueError;

/// The backend name used in error messages.
pub(crate) const BACKEND: &str = "redis";

/// Wraps a client error as a transient backend failure of `operation`.
pub(crate) fn backend_error(operation: &'static str, err: RedisError) -> QueueError {
    QueueError::backend(BACKEND, operation, err)
}

/// True when the error says the connection itself is unusable (closed, reset, timed out
/// mid-reply, refused), as opposed to the server refusing one command.
fn link_failed(err: &RedisError) -> bool {
    err.is_io_error()
        || err.is_timeout()
        || err.is_connection_dropped()
        || err.is_connection_refusal()
        || err.is_unrecoverable_error()
}

/// The connections one queue value uses.
///
/// A call takes an idle connection (or opens one), runs, and gives it back. A call whose
/// link failed drops its connection and every idle one: they all lead to the same server,
/// which most likely restarted or went away, and each would fail once more before being
/// noticed. The pool's generation goes up at the same time, so a connection that was out
/// on another call during the failure is closed when it comes back instead of returning
/// to the idle set. The next call then opens a fresh connection, loads the scripts again
/// if the server lost them (`EVALSHA` falls back to loading on `NOSCRIPT`), and goes on.
pub(crate) struct Pool {
    client: Client,
    idle: Mutex<Idle>,
    keep: usize,
    name: String,
    connect_timeout: Duration,
    response_timeout: Duration,
}

struct Idle {
    generation: u64,
    connections: Vec<Connection>,
}

impl Pool {
    pub(crate) fn new(
        client: Client,
        keep: usize,
        name: String,
        connect_timeout: Duration,
        response_timeout: Duration,
    ) -> Pool {
        Pool {
            client,
            idle: Mutex::new(Idle {
                generation: 0,
                connections: Vec::new(),
            }),
            keep,
            name,
            connect_timeout,
            response_timeout,
        }
    }

    /// The response timeout every command gets.
    pub(crate) fn response_timeout(&self) -> Duration {
        self.response_timeout
    }

    fn idle(&self) -> std::sync::MutexGuard<'_, Idle> {
        // The set is only pushed to, popped from and cleared; a panic cannot leave it half-changed.
        self.idle.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Opens a new connection with the connect timeout for the handshake and the response
    /// timeout for every reply after it, named after the queue so that `CLIENT LIST` shows
    /// whose it is.
    pub(crate) fn connect(&self, operation: &'static str) -> Result<Connection, QueueError> {
        let mut connection = self
            .client
            .get_connection_with_timeout(self.connect_timeout)
            .map_err(|err| backend_error(operation, err))?;
        self.set_timeout(&connection, self.response_timeout)
            .and_then(|()| {
                redis::cmd("CLIENT")
                    .arg("SETNAME")
                    .arg(&self.name)
                    .query::<()>(&mut connection)
            })
            .map_err(|err| backend_error(operation, err))?;
        Ok(connection)
    }

    /// Sets how long reads and writes on `connection` may block.
    pub(crate) fn set_timeout(
        &self,
        connection: &Connection,
        timeout: Duration,
    ) -> RedisResult<()> {
        // A zero duration would mean "block forever" to the socket, so it is never passed.
        let timeout = Some(timeout.max(Duration::from_millis(1)));
        connection.set_read_timeout(timeout)?;
        connection.set_write_timeout(timeout)
    }

    /// Runs `work` on a connection and maps its failure to a transient `Backend` error.
    pub(crate) fn run<T>(
        &self,
        operation: &'static str,
        work: impl FnOnce(&mut Connection) -> RedisResult<T>,
    ) -> Result<T, QueueError> {
        let (taken, generation) = {
            let mut idle = self.idle();
            (idle.connections.pop(), idle.generation)
        };
        let mut connection = match taken {
            Some(connection) => connection,
            None => self.connect(operation)?,
        };
        match work(&mut connection) {
            Ok(value) => {
                self.give_back(connection, generation);
                Ok(value)
            }
            Err(err) => {
                if link_failed(&err) {
                    tracing::debug!(operation, error = %err, "dropping Redis connections after a link failure");
                    let mut idle = self.idle();
                    idle.connections.clear();
                    idle.generation += 1;
                } else {
                    self.give_back(connection, generation);
                }
                Err(backend_error(operation, err))
            }
        }
    }

    /// Returns a healthy connection taken in `generation` to the idle set, or closes it when
    /// enough are idle or a link failure happened since it was taken.
    fn give_back(&self, connection: Connection, generation: u64) {
        if !connection.is_open() {
            return;
        }
        let mut idle = self.idle();
        if idle.generation == generation && idle.connections.len() < self.keep {
            idle.connections.push(connection);
        }
    }
}
