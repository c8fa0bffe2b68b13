//! Opening SQLite connections with the pragmas every queue connection needs, and sharing a few of
//! them between the threads of one process.

use std::cell::Cell;
use std::path::Path;
use std::sync::{Mutex, MutexGuard, PoisonError};

use std::time::{Duration, Instant};

use rusqlite::{Connection, ErrorCode, MAIN_DB, OpenFlags};
use thiserror::Error;
use workmill_core::QueueError;

use super::config::SqliteConfig;
use super::store::BACKEND;
use super::url::SqliteLocation;

/// A database file that could not be opened or set up.
#[derive(Debug, Error)]
#[error("cannot open {path}: {source}; {hint}")]
pub struct OpenError {
    /// The file.
    pub path: String,
    /// What SQLite said.
    pub source: rusqlite::Error,
    /// What to check.
    pub hint: &'static str,
}

impl OpenError {
    fn new(path: &Path, source: rusqlite::Error) -> OpenError {
        let hint = match source.sqlite_error_code() {
            Some(ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked) => {
                "another connection kept the file locked for longer than the busy timeout; raise SqliteConfig::busy_timeout"
            }
            Some(ErrorCode::NotADatabase) => "the file exists but is not a SQLite database",
            Some(ErrorCode::ReadOnly) => "the file or its directory is read-only for this process",
            _ => "check that the directory exists and this process may write to it",
        };
        OpenError {
            path: path.display().to_string(),
            source,
            hint,
        }
    }
}

/// The error for a file that could not be opened or set up.
///
/// A file that is not a database, or that this process may only read, stays so however often
/// it is tried: that is [`QueueError::Incompatible`], which a worker reports rather than waits
/// out. Anything else (a lock held too long, a full disk) is the store failing, and transient.
pub(crate) fn open_failed(path: &Path, source: rusqlite::Error) -> QueueError {
    let refused = unusable(&source);
    let error = OpenError::new(path, source);
    if refused {
        QueueError::Incompatible {
            backend: BACKEND,
            reason: error.to_string(),
        }
    } else {
        QueueError::backend(BACKEND, "open the database", error)
    }
}

/// True for an error no retry mends: the file is not a database, or this process may only
/// read it.
pub(crate) fn unusable(err: &rusqlite::Error) -> bool {
    matches!(
        err.sqlite_error_code(),
        Some(ErrorCode::NotADatabase | ErrorCode::ReadOnly)
    )
}

/// Opens one connection and applies the per-connection settings.
///
/// WAL lets readers proceed while one writer commits, and makes a commit one
/// append to the log; the busy handler ([`wait_for_the_writer`]) makes a
/// connection wait for another writer, in this process or another, instead of
/// failing at once.
pub(crate) fn open_connection(
    location: &SqliteLocation,
    config: &SqliteConfig,
) -> Result<Connection, QueueError> {
    let flags = OpenFlags::SQLITE_OPEN_READ_WRITE
        | OpenFlags::SQLITE_OPEN_CREATE
        | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let (conn, path) = match location {
        SqliteLocation::File(path) => (Connection::open_with_flags(path, flags), path.as_path()),
        SqliteLocation::Memory => (Connection::open_in_memory(), Path::new(":memory:")),
    };
    let fail = |source: rusqlite::Error| open_failed(path, source);
    let mut conn = conn.map_err(fail)?;
    if matches!(location, SqliteLocation::File(_)) {
        if conn.is_readonly(MAIN_DB).map_err(fail)? {
            return Err(QueueError::Incompatible {
                backend: BACKEND,
                reason: format!(
                    "{} opened read-only; the file or its directory is read-only for this process",
                    path.display()
                ),
            });
        }
        // It retries on its own until the busy timeout; SQLite's handler would only add to it.
        conn.busy_timeout(Duration::ZERO).map_err(fail)?;
        enable_wal(&conn, config.busy_timeout).map_err(fail)?;
    }
    conn.busy_handler(Some(wait_for_the_writer(config.busy_timeout)))
        .map_err(fail)?;
    conn.pragma_update(None, "synchronous", config.synchronous.pragma_value())
        .map_err(fail)?;
    // Each checkpoint syncs the log and the database file; fewer, larger ones keep those
    // flushes off most commits (see `SqliteConfig::checkpoint_pages`).
    let pages = i64::from(config.checkpoint_pages);
    conn.pragma_update(None, "wal_autocheckpoint", pages)
        .map_err(fail)?;
    Ok(conn)
}

/// The busy handler: tries again every one to two milliseconds until `timeout` has passed.
///
/// SQLite's own handler (`busy_timeout`) sleeps 1, 2, 5, 10 ... up to 100 ms between tries.
/// On a file that several processes write without pause, a writer that has backed off to
/// 100 ms sleeps keeps missing the moments the lock is free to writers that have not, and can
/// wait for seconds: long enough for a worker's heartbeat to miss its lease. Short, jittered
/// sleeps give every waiting writer about the same chance at each release.
fn wait_for_the_writer(timeout: Duration) -> impl FnMut(i32) -> bool + Send + 'static {
    let mut since = Instant::now();
    move |tries| {
        if tries == 0 {
            since = Instant::now();
        }
        if since.elapsed() >= timeout {
            return false;
        }
        std::thread::sleep(Duration::from_micros(1_000 + fastrand::u64(..1_000)));
        true
    }
}

/// Switches the file to WAL mode, waiting out other connections that hold it.
///
/// The journal mode is stored in the file, so only the first opener changes it.
/// That change needs the file to itself, and SQLite neither waits for it through
/// the busy handler nor always fails: it may answer with the old mode. Processes
/// opening a new file together (workers starting side by side) would then fail
/// at random, so the switch is retried with a growing pause until the busy
/// timeout.
fn enable_wal(conn: &Connection, busy_timeout: Duration) -> rusqlite::Result<()> {
    let start = Instant::now();
    let mut pause = Duration::from_millis(1);
    loop {
        let outcome = conn
            .pragma_update_and_check(None, "journal_mode", "WAL", |row| row.get::<_, String>(0));
        let retry = match &outcome {
            Ok(mode) if mode.eq_ignore_ascii_case("wal") => return Ok(()),
            Ok(_) => true,
            Err(err) => matches!(
                err.sqlite_error_code(),
                Some(ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked)
            ),
        };
        if !retry || start.elapsed() >= busy_timeout {
            return match outcome {
                Err(err) => Err(err),
                Ok(mode) => Err(rusqlite::Error::SqliteFailure(
                    rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_BUSY),
                    Some(format!(
                        "the journal mode stayed {mode}; WAL could not be enabled"
                    )),
                )),
            };
        }
        std::thread::sleep(pause);
        pause = (pause * 2).min(Duration::from_millis(50));
    }
}

/// A fixed set of connections shared by the threads of one queue value.
///
/// SQLite connections are not `Sync`, so each sits behind its own mutex. A
/// thread takes the first free one, starting from a per-thread position so that
/// threads spread out; when all are busy it waits for its usual one. Writers
/// are serialised by SQLite itself (`BEGIN IMMEDIATE` and the busy timeout),
/// exactly as between processes, so several connections give concurrency to
/// readers and never weaken a writer's guarantees.
pub(crate) struct Connections {
    slots: Vec<Mutex<Connection>>,
}

thread_local! {
    static HOME_SLOT: Cell<usize> = Cell::new(fastrand::usize(..1024));
}

impl Connections {
    pub(crate) fn new(slots: Vec<Connection>) -> Connections {
        Connections {
            slots: slots.into_iter().map(Mutex::new).collect(),
        }
    }

    /// A connection for the calling thread, exclusively, until the guard drops.
    pub(crate) fn get(&self) -> MutexGuard<'_, Connection> {
        let home = HOME_SLOT.with(Cell::get) % self.slots.len();
        for offset in 0..self.slots.len() {
            let slot = &self.slots[(home + offset) % self.slots.len()];
            if let Ok(conn) = slot.try_lock() {
                return conn;
            }
        }
        // A panic while a connection was held cannot leave it half-written: an open
        // transaction rolls back when its guard drops. So a poisoned slot is still usable.
        self.slots[home]
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }
}
