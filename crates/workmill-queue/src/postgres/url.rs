//! Parsing `postgres://` and `postgresql://` URLs into connection settings and the schema the
//! queue lives in, with passwords kept out of every message.

use std::fmt;

use workmill_core::QueueError;

/// The schema a queue uses when neither the URL nor the config names one.
pub const DEFAULT_SCHEMA: &str = "workmill";

/// The longest schema name accepted, in bytes. PostgreSQL names are at most 63 bytes, and the
/// notification channels add 15 to the schema name (`workmill:<schema>:work`).
pub const MAX_SCHEMA_LEN: usize = 48;

const FORMS: &str =
    "expected postgres://user[:password]@host[:port]/database[?schema=name&...] (or postgresql://)";

/// Where a PostgreSQL queue keeps its tasks: a server, a database, and a schema in it.
#[derive(Clone)]
pub struct PostgresLocation {
    pub(crate) config: postgres::Config,
    pub(crate) schema: Option<String>,
    redacted: String,
}

impl fmt::Debug for PostgresLocation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PostgresLocation")
            .field("url", &self.redacted)
            .field("schema", &self.schema)
            .finish()
    }
}

impl PostgresLocation {
    /// Reads a backend URL.
    ///
    /// `postgres://user:secret@db.example:5432/app?schema=jobs` connects to database `app`
    /// and keeps the queue in schema `jobs` (created on first open). Every other query
    /// parameter is a libpq-style connection setting understood by the `postgres` crate
    /// (`application_name`, `connect_timeout`, `options`, `keepalives`, ...); an unknown one
    /// is refused rather than ignored. TLS is not built in, so `sslmode=require` is refused.
    pub fn parse(url: &str) -> Result<PostgresLocation, QueueError> {
        let redacted = redact(url);
        let invalid = |reason: String| QueueError::InvalidUrl {
            url: redacted.clone(),
            reason,
        };
        let Some(rest) = url
            .strip_prefix("postgres://")
            .or_else(|| url.strip_prefix("postgresql://"))
        else {
            let scheme = url.split_once(':').map_or(url, |(scheme, _)| scheme);
            return Err(invalid(format!(
                "the scheme is {:?}, not \"postgres\"; {FORMS}",
                redact(scheme)
            )));
        };
        if rest.contains('#') {
            return Err(invalid("fragments (#...) are not read".to_owned()));
        }
        let (address, query) = rest.split_once('?').unwrap_or((rest, ""));
        let mut schema = None;
        let mut settings = Vec::new();
        for pair in query.split('&').filter(|p| !p.is_empty()) {
            match pair.split_once('=') {
                Some(("schema", name)) => {
                    if schema.is_some() {
                        return Err(invalid("the schema is given twice".to_owned()));
                    }
                    validate_schema_name(name).map_err(&invalid)?;
                    schema = Some(name.to_owned());
                }
                Some(_) => settings.push(pair),
                None => {
                    return Err(invalid(format!(
                        "the query parameter {:?} has no value; write key=value",
                        redact_pair(pair)
                    )));
                }
            }
        }
        let mut connect = format!("postgres://{address}");
        if !settings.is_empty() {
            connect.push('?');
            connect.push_str(&settings.join("&"));
        }
        let mut config: postgres::Config = connect
            .parse()
            .map_err(|err: postgres::Error| invalid(format!("{err}; {FORMS}")))?;
        if config.get_hosts().is_empty() && config.get_hostaddrs().is_empty() {
            return Err(invalid(format!("no host is named; {FORMS}")));
        }
        if config.get_ssl_mode() == postgres::config::SslMode::Require {
            return Err(invalid(
                "sslmode=require needs TLS, which this build of workmill does not include; \
                 connect over a trusted network or through a TLS proxy"
                    .to_owned(),
            ));
        }
        if config.get_application_name().is_none() {
            config.application_name("workmill");
        }
        Ok(PostgresLocation {
            config,
            schema,
            redacted,
        })
    }

    /// The schema named in the URL, if any.
    pub fn schema(&self) -> Option<&str> {
        self.schema.as_deref()
    }

    /// The URL with any password replaced by `***`, for messages and logs.
    pub fn redacted(&self) -> &str {
        &self.redacted
    }
}

/// Checks a schema name: 1 to [`MAX_SCHEMA_LEN`] bytes of lowercase ASCII letters, digits and
/// underscores, starting with a letter or underscore, and not `pg_...` (reserved by PostgreSQL).
///
/// The rules keep the name usable without quoting in `psql` and inside channel names.
pub fn validate_schema_name(name: &str) -> Result<(), String> {
    let rules = "schema names are 1 to 48 lowercase letters, digits or underscores, starting with a letter or underscore";
    let reason = if name.is_empty() {
        "the schema name is empty"
    } else if name.len() > MAX_SCHEMA_LEN {
        "the schema name is longer than 48 bytes"
    } else if name.starts_with(|c: char| c.is_ascii_digit()) {
        "the schema name starts with a digit"
    } else if !name
        .bytes()
        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
    {
        "the schema name has a character other than a-z, 0-9 and _"
    } else if name.starts_with("pg_") {
        "names starting with pg_ are reserved by PostgreSQL"
    } else {
        return Ok(());
    };
    Err(format!("{reason} ({name:?}); {rules}"))
}

/// `url` with the password of its user part, and any `password=` parameter, replaced by `***`.
pub(crate) fn redact(url: &str) -> String {
    let (scheme, rest) = match url.split_once("://") {
        Some((scheme, rest)) => (Some(scheme), rest),
        None => (None, url),
    };
    // The user part ends at the last `@`: a password may hold `?`, `/` or `@` unescaped,
    // and splitting off the query first would leave such a password in plain sight. (An `@`
    // in a query value then hides more than the password, which only errs on the safe side.)
    let (user_info, host_part) = match rest.rsplit_once('@') {
        Some((user_info, host_part)) => (Some(user_info), host_part),
        None => (None, rest),
    };
    let (host, query) = match host_part.split_once('?') {
        Some((host, query)) => (host, Some(query)),
        None => (host_part, None),
    };
    let address = match user_info {
        Some(user_info) => match user_info.split_once(':') {
            Some((user, _password)) => format!("{user}:***@{host}"),
            None => format!("{user_info}@{host}"),
        },
        None => host.to_owned(),
    };
    let mut out = String::new();
    if let Some(scheme) = scheme {
        out.push_str(scheme);
        out.push_str("://");
    }
    out.push_str(&address);
    if let Some(query) = query {
        out.push('?');
        let pairs: Vec<String> = query.split('&').map(redact_pair).collect();
        out.push_str(&pairs.join("&"));
    }
    out
}

fn redact_pair(pair: &str) -> String {
    match pair.split_once('=') {
        Some(("password", _)) => "password=***".to_owned(),
        _ => pair.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_schemes_and_the_schema_parameter() {
        let location =
            PostgresLocation::parse("postgres://postgres@127.0.0.1:5432/test?schema=jobs").unwrap();
        assert_eq!(location.schema(), Some("jobs"));
        assert_eq!(location.config.get_dbname(), Some("test"));
        assert_eq!(location.config.get_ports(), [5432]);
        assert_eq!(location.config.get_application_name(), Some("workmill"));
        let location = PostgresLocation::parse(
            "postgresql://me@db.example/app?application_name=billing&connect_timeout=3",
        )
        .unwrap();
        assert_eq!(location.schema(), None);
        assert_eq!(location.config.get_user(), Some("me"));
        assert_eq!(location.config.get_application_name(), Some("billing"));
    }

    #[test]
    fn passwords_never_reach_a_message() {
        assert_eq!(
            redact("postgres://me:s3cret@host/db?password=other&schema=a"),
            "postgres://me:***@host/db?password=***&schema=a"
        );
        assert_eq!(redact("postgres://me@host/db"), "postgres://me@host/db");
        // Unescaped `?`, `/` and `@` in a password stay hidden too.
        for password in ["pa?ss", "pa/ss", "p@ss", "p?a@s/s"] {
            let url = format!("postgres://me:{password}@host/db?schema=a");
            assert_eq!(
                redact(&url),
                "postgres://me:***@host/db?schema=a",
                "{password}"
            );
            let message = PostgresLocation::parse(&format!("{url}&bogus=1"))
                .map(|_| String::new())
                .unwrap_or_else(|err| err.to_string());
            assert!(!message.contains(password), "{message}");
        }
        let err = PostgresLocation::parse("postgres://me:s3cret@host/db?bogus=1").unwrap_err();
        let message = err.to_string();
        assert!(!message.contains("s3cret"), "{message}");
        assert!(message.contains("me:***@host"), "{message}");
        let location = PostgresLocation::parse("postgres://me:s3cret@host/db").unwrap();
        assert!(!format!("{location:?}").contains("s3cret"));
    }

    #[test]
    fn bad_urls_say_what_is_wrong() {
        let cases = [
            ("sqlite://tasks.db", "scheme is \"sqlite\""),
            ("redis://h", "scheme is \"redis\""),
            ("localhost/db", "scheme"),
            ("postgres://h/db?schema=Jobs", "a-z, 0-9"),
            ("postgres://h/db?schema=", "empty"),
            ("postgres://h/db?schema=9lives", "starts with a digit"),
            ("postgres://h/db?schema=pg_mine", "reserved"),
            ("postgres://h/db?schema=a&schema=b", "twice"),
            ("postgres://h/db?schema", "no value"),
            ("postgres://h/db?colour=blue", "colour"),
            ("postgres://h:notaport/db", "port"),
            ("postgres://h/db?sslmode=require", "TLS"),
            ("postgres://h/db#frag", "fragments"),
            ("postgres:///db", "no host"),
        ];
        for (url, expected) in cases {
            let err = PostgresLocation::parse(url).unwrap_err();
            assert!(
                matches!(&err, QueueError::InvalidUrl { .. }),
                "{url}: {err:?}"
            );
            let message = err.to_string();
            assert!(message.contains(expected), "{url}: {message}");
        }
        let long = "s".repeat(MAX_SCHEMA_LEN + 1);
        let err = PostgresLocation::parse(&format!("postgres://h/db?schema={long}")).unwrap_err();
        assert!(err.to_string().contains("longer than 48"), "{err}");
        assert!(validate_schema_name(&"s".repeat(MAX_SCHEMA_LEN)).is_ok());
        assert!(validate_schema_name("_private_2").is_ok());
    }
}
