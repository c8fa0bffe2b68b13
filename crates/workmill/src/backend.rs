//! `backend::open`: a queue backend named by a URL (`memory://`, `sqlite://path`, `postgres://`,
//! `redis://`), with errors that name the scheme and the cargo feature that compiles it in.
//!
//! A worker binary, a producer and an operator's tool name the same store with one string, and
//! the facade turns it into an [`Arc<dyn Queue>`]. Which backends a build can open is decided by
//! the `workmill` crate's features, one per backend, each mapping to the feature of
//! `workmill-queue` that compiles that backend in:
//!
//! | URL | backend | feature |
//! |---|---|---|
//! | `memory://` | a new, empty [`MemoryQueue`] private to the caller | always |
//! | `sqlite://path/to/tasks.db`, `sqlite:///abs/tasks.db`, `sqlite::memory:` | `SqliteQueue` | `sqlite` (default) |
//! | `postgres://user:password@host:5432/db?schema=name` (or `postgresql://`) | `PostgresQueue` | `postgres` |
//! | `redis://:password@host:6379/0?prefix=name` | `RedisQueue` | `redis` |
//! | `rediss://:password@host:6380/0?prefix=name` (TLS) | `RedisQueue` | `redis-tls` |
//!
//! # Examples
//!
//! ```
//! # #[cfg(feature = "sqlite")] {
//! use std::time::Duration;
//! use workmill::{NewTask, QueueError, WorkerId};
//!
//! let dir = tempfile::tempdir()?;
//! let url = format!("sqlite://{}", dir.path().join("tasks.db").display());
//!
//! // A producer and a worker open the same file from the same URL.
//! let producer = workmill::backend::open(&url)?;
//! let id = producer.enqueue(NewTask::new("email.send", b"hello".to_vec()))?;
//! let worker = workmill::backend::open(&url)?;
//! let task = worker.reserve(&WorkerId::new("worker-1")?, 8, Duration::from_secs(30))?.remove(0);
//! assert_eq!(task.id(), &id);
//!
//! // Unknown schemes are refused with the forms that would work.
//! let refused = workmill::backend::open("sqlit://tasks.db").err().expect("refused");
//! assert!(matches!(refused, QueueError::InvalidUrl { .. }));
//! assert!(refused.to_string().contains("\"sqlit\""));
//! # }
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::fmt;
use std::sync::Arc;

use workmill_core::{Queue, QueueError};
use workmill_queue::MemoryQueue;

/// The schemes this facade knows, one line each:
/// `"scheme" (feature = "name") => durable: bool, example: "url", open: path;`.
///
/// `open` is any `fn(&str) -> Result<impl Queue, QueueError>`. A line with a
/// feature is opened only when that feature of this crate is on; otherwise the
/// scheme is still recognised, and refused with the feature to enable. So a new
/// backend is one line here and one feature line in `Cargo.toml`.
macro_rules! schemes {
    ($( $name:literal $( (feature = $feature:literal) )?
        => durable: $durable:literal, example: $example:literal, open: $open:path; )*) => {
        const SCHEMES: &[Scheme] = &[$(
            Scheme {
                name: $name,
                feature: schemes!(@feature $($feature)?),
                compiled: schemes!(@compiled $($feature)?),
                durable: $durable,
                example: $example,
            },
        )*];

        /// Opens `url` with the backend of `scheme`; `None` when that backend is not compiled in.
        fn open_compiled(scheme: &str, url: &str) -> Option<Result<Arc<dyn Queue>, QueueError>> {
            match scheme {
                $(
                    $( #[cfg(feature = $feature)] )?
                    $name => Some(shared($open(url))),
                )*
                _ => None,
            }
        }
    };
    (@feature) => { None };
    (@feature $feature:literal) => { Some($feature) };
    (@compiled) => { true };
    (@compiled $feature:literal) => { cfg!(feature = $feature) };
}

schemes! {
    "memory" => durable: false, example: "memory://", open: open_memory;
    "sqlite" (feature = "sqlite") => durable: true, example: "sqlite://path/to/tasks.db", open: workmill_queue::SqliteQueue::open;
    "postgres" (feature = "postgres") => durable: true, example: "postgres://user@host/db?schema=tasks", open: workmill_queue::PostgresQueue::open;
    "postgresql" (feature = "postgres") => durable: true, example: "postgresql://user@host/db?schema=tasks", open: workmill_queue::PostgresQueue::open;
    "redis" (feature = "redis") => durable: true, example: "redis://:password@host:6379/0?prefix=tasks", open: workmill_queue::RedisQueue::open;
    "rediss" (feature = "redis-tls") => durable: true, example: "rediss://:password@host:6380/0?prefix=tasks", open: workmill_queue::RedisQueue::open;
}

/// One line of the scheme table.
#[derive(Debug, PartialEq, Eq)]
struct Scheme {
    name: &'static str,
    /// The feature of this crate that compiles the backend in; `None` if it always is.
    feature: Option<&'static str>,
    /// Whether this build has the backend.
    compiled: bool,
    /// Whether a second open of the same URL reaches the same tasks.
    durable: bool,
    /// A URL of this scheme, for error messages.
    example: &'static str,
}

/// A backend URL that names a scheme this build can open.
///
/// [`Backend::parse`] checks the scheme (known, and compiled in) without
/// touching the store; [`Backend::open`] connects, and may be called again to
/// reconnect, which is what a worker process does after the store failed.
///
/// # Examples
///
/// ```
/// use workmill::backend::Backend;
///
/// # #[cfg(feature = "sqlite")] {
/// let backend = Backend::parse("sqlite://data/tasks.db")?;
/// assert_eq!(backend.scheme(), "sqlite");
/// assert!(backend.is_durable(), "a reopened file has the same tasks");
/// # }
/// assert!(!Backend::parse("memory://")?.is_durable());
/// # Ok::<(), workmill::QueueError>(())
/// ```
#[derive(Clone)]
pub struct Backend {
    url: String,
    scheme: &'static Scheme,
}

impl Backend {
    /// Reads `url` and checks that this build can open its scheme; opens nothing.
    ///
    /// Refused with [`QueueError::InvalidUrl`] when the URL has no scheme, names
    /// one workmill does not know (the message lists the forms that work), or
    /// names a backend whose feature is off in this build (the message names the
    /// feature to enable). The backend itself checks the rest of the URL when it opens.
    pub fn parse(url: &str) -> Result<Backend, QueueError> {
        let invalid = |reason: String| QueueError::InvalidUrl {
            url: url.to_owned(),
            reason,
        };
        let Some((raw, rest)) = url.split_once(':') else {
            return Err(invalid(format!(
                "a backend URL starts with a scheme; {}",
                expected_forms()
            )));
        };
        if !is_scheme(raw) {
            return Err(invalid(format!(
                "{raw:?} is not a URL scheme (a letter, then letters, digits, '+', '-' or '.'); {}",
                expected_forms()
            )));
        }
        let lower = raw.to_ascii_lowercase();
        let Some(scheme) = SCHEMES.iter().find(|scheme| scheme.name == lower) else {
            return Err(invalid(format!(
                "the scheme {raw:?} is not one workmill knows; {}",
                expected_forms()
            )));
        };
        if !scheme.compiled {
            return Err(invalid(not_compiled(scheme)));
        }
        Ok(Backend {
            // Schemes are case-insensitive; backends read the lower-case form.
            url: format!("{lower}:{rest}"),
            scheme,
        })
    }

    /// The URL, with its scheme in lower case.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The scheme, such as `"sqlite"`.
    pub fn scheme(&self) -> &'static str {
        self.scheme.name
    }

    /// True when opening the URL again reaches the same tasks (a file, a server),
    /// so that a worker may reconnect; false for `memory://` and SQLite's
    /// in-memory database (`sqlite::memory:`), where every open makes a new,
    /// empty queue.
    pub fn is_durable(&self) -> bool {
        self.scheme.durable
            && !(self.scheme.name == "sqlite"
                && matches!(self.url.as_str(), "sqlite::memory:" | "sqlite://:memory:"))
    }

    /// Connects to the backend: opens (and, for SQLite, creates and migrates) the store.
    pub fn open(&self) -> Result<Arc<dyn Queue>, QueueError> {
        open_compiled(self.scheme.name, &self.url).unwrap_or_else(|| {
            // `parse` checked `compiled`, which is the same cfg as the match arm.
            Err(QueueError::InvalidUrl {
                url: self.url.clone(),
                reason: not_compiled(self.scheme),
            })
        })
    }
}

impl fmt::Debug for Backend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Backend")
            .field("url", &self.url)
            .field("durable", &self.scheme.durable)
            .finish()
    }
}

/// Opens the queue backend that `url` names.
///
/// `memory://` is a new, empty [`MemoryQueue`] each time (only the caller can
/// reach it); `sqlite://path/to/tasks.db` opens, creating and migrating if
/// needed, a SQLite file that other processes may share; `postgres://` and
/// `redis://` connect to a server that workers on many machines share (the
/// schema or key prefix in the URL names the queue). Errors are
/// [`QueueError::InvalidUrl`] for a URL this build cannot open (see
/// [`Backend::parse`]) and the backend's own errors for a store that cannot be
/// opened.
pub fn open(url: &str) -> Result<Arc<dyn Queue>, QueueError> {
    Backend::parse(url)?.open()
}

/// `memory://`: a fresh in-process queue. (Also what [`RuntimeBuilder::url`](crate::RuntimeBuilder::url)
/// opens for a `memory` URL, so that both refuse the same URLs.)
pub(crate) fn open_memory(url: &str) -> Result<MemoryQueue, QueueError> {
    match url.strip_prefix("memory://") {
        Some("") => Ok(MemoryQueue::new()),
        _ => Err(QueueError::InvalidUrl {
            url: url.to_owned(),
            reason: "a memory queue is written exactly memory:// (no path, host or options); \
                     each open makes a new, empty queue"
                .to_owned(),
        }),
    }
}

fn shared<Q: Queue + 'static>(opened: Result<Q, QueueError>) -> Result<Arc<dyn Queue>, QueueError> {
    opened.map(|queue| Arc::new(queue) as Arc<dyn Queue>)
}

/// RFC 3986: a letter, then letters, digits, `+`, `-` or `.`.
fn is_scheme(text: &str) -> bool {
    let mut chars = text.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphabetic())
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'))
}

fn expected_forms() -> String {
    expected_forms_in(SCHEMES)
}

fn expected_forms_in(schemes: &[Scheme]) -> String {
    let forms: Vec<String> = schemes
        .iter()
        .map(|scheme| match (scheme.compiled, scheme.feature) {
            (false, Some(feature)) => format!("{} (with the {feature:?} feature)", scheme.example),
            _ => scheme.example.to_owned(),
        })
        .collect();
    format!("expected one of {}", forms.join(", "))
}

fn not_compiled(scheme: &Scheme) -> String {
    let feature = scheme.feature.unwrap_or(scheme.name);
    format!(
        "the {:?} backend is not compiled into this build; enable the {feature:?} feature of the \
         workmill crate (features = [{feature:?}] on its line in Cargo.toml)",
        scheme.name
    )
}

#[cfg(test)]
mod tests;
