//! Parsing `sqlite://path/to/file.db` and `sqlite::memory:` into where the database lives.

use std::path::PathBuf;

use workmill_core::QueueError;

/// Where a SQLite queue keeps its tasks.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SqliteLocation {
    /// A database file shared by every process that opens the same path.
    File(PathBuf),
    /// A private in-memory database that lives as long as the queue value; for tests.
    Memory,
}

const FORMS: &str =
    "expected sqlite://path/to/file.db (relative), sqlite:///absolute/path.db, or sqlite::memory:";

impl SqliteLocation {
    /// Reads a backend URL.
    ///
    /// `sqlite://data/tasks.db` is the relative path `data/tasks.db`,
    /// `sqlite:///var/lib/tasks.db` the absolute path `/var/lib/tasks.db`, and
    /// `sqlite::memory:` (or `sqlite://:memory:`) a private in-memory database.
    /// Settings such as the busy timeout go in [`SqliteConfig`](super::SqliteConfig),
    /// not in the URL, so a query string is refused rather than silently ignored.
    pub fn parse(url: &str) -> Result<SqliteLocation, QueueError> {
        let invalid = |reason: String| QueueError::InvalidUrl {
            url: url.to_owned(),
            reason,
        };
        if url == "sqlite::memory:" || url == "sqlite://:memory:" {
            return Ok(SqliteLocation::Memory);
        }
        let Some(path) = url.strip_prefix("sqlite://") else {
            let scheme = url.split_once(':').map_or(url, |(scheme, _)| scheme);
            return Err(invalid(format!(
                "the scheme is {scheme:?}, not \"sqlite\"; {FORMS}"
            )));
        };
        if path.is_empty() {
            return Err(invalid(format!("the database path is empty; {FORMS}")));
        }
        if path.contains('?') || path.contains('#') {
            return Err(invalid(
                "query strings and fragments are not read; set options with SqliteConfig instead"
                    .to_owned(),
            ));
        }
        if path.ends_with('/') {
            return Err(invalid(format!(
                "the path names a directory, not a database file; {FORMS}"
            )));
        }
        if path.chars().any(char::is_control) {
            return Err(invalid("the path contains a control character".to_owned()));
        }
        Ok(SqliteLocation::File(PathBuf::from(path)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relative_absolute_and_memory_forms() {
        assert_eq!(
            SqliteLocation::parse("sqlite://data/tasks.db").unwrap(),
            SqliteLocation::File(PathBuf::from("data/tasks.db"))
        );
        assert_eq!(
            SqliteLocation::parse("sqlite:///var/lib/tasks.db").unwrap(),
            SqliteLocation::File(PathBuf::from("/var/lib/tasks.db"))
        );
        assert_eq!(
            SqliteLocation::parse("sqlite::memory:").unwrap(),
            SqliteLocation::Memory
        );
        assert_eq!(
            SqliteLocation::parse("sqlite://:memory:").unwrap(),
            SqliteLocation::Memory
        );
    }

    #[test]
    fn bad_urls_say_what_is_wrong() {
        let cases = [
            ("redis://127.0.0.1", "scheme is \"redis\""),
            ("tasks.db", "scheme is \"tasks.db\""),
            ("sqlite://", "path is empty"),
            ("sqlite://tasks.db?mode=ro", "SqliteConfig"),
            ("sqlite://data/", "directory"),
            ("sqlite://a\u{7}b.db", "control character"),
        ];
        for (url, expected) in cases {
            let err = SqliteLocation::parse(url).unwrap_err();
            assert!(
                matches!(&err, QueueError::InvalidUrl { url: u, .. } if u == url),
                "{url}: {err:?}"
            );
            let message = err.to_string();
            assert!(message.contains(expected), "{url}: {message}");
        }
    }
}
