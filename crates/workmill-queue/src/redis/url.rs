//! Parsing `redis://` and `rediss://` URLs: where the server is, how to log in, which database, which key prefix.

use std::fmt;

use workmill_core::QueueError;

const FORMS: &str =
    "expected redis://[[user]:password@]host[:port][/db][?prefix=name], or rediss:// for TLS";

/// A checked Redis URL. `Debug` and error messages never show the password.
#[derive(Clone, PartialEq, Eq)]
pub struct RedisUrl {
    /// True for `rediss://`: the connection is encrypted with TLS.
    pub tls: bool,
    /// The server's host name or address.
    pub host: String,
    /// The server's port, 6379 unless given.
    pub port: u16,
    /// The logical database, 0 unless given.
    pub db: u32,
    /// The ACL user, if the URL names one.
    pub username: Option<String>,
    /// The key prefix from `?prefix=`, if given.
    pub prefix: Option<String>,
    /// The URL the redis client connects with: the given one without workmill's own parameters.
    pub(crate) connect: String,
    has_password: bool,
}

impl fmt::Debug for RedisUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisUrl")
            .field("tls", &self.tls)
            .field("host", &self.host)
            .field("port", &self.port)
            .field("db", &self.db)
            .field("username", &self.username)
            .field("password", &self.has_password.then_some("***"))
            .field("prefix", &self.prefix)
            .finish()
    }
}

impl fmt::Display for RedisUrl {
    /// The URL with its password replaced by `***`, for logs and messages.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let scheme = if self.tls { "rediss" } else { "redis" };
        write!(f, "{scheme}://")?;
        match (&self.username, self.has_password) {
            (Some(user), true) => write!(f, "{user}:***@")?,
            (Some(user), false) => write!(f, "{user}@")?,
            (None, true) => write!(f, ":***@")?,
            (None, false) => {}
        }
        if self.host.contains(':') {
            write!(f, "[{}]:{}/{}", self.host, self.port, self.db)
        } else {
            write!(f, "{}:{}/{}", self.host, self.port, self.db)
        }
    }
}

/// `url` with the password between `:` and `@` replaced by `***`.
pub(crate) fn redact(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(authority_end);
    match authority.rsplit_once('@') {
        Some((userinfo, host)) => match userinfo.split_once(':') {
            Some((user, _)) => format!("{scheme}://{user}:***@{host}{tail}"),
            None => url.to_owned(),
        },
        None => url.to_owned(),
    }
}

impl RedisUrl {
    /// Reads a backend URL.
    ///
    /// `redis://127.0.0.1` is database 0 on port 6379; `redis://:secret@host:6380/2` logs in
    /// with a password and selects database 2; `redis://worker:secret@host` logs in as an
    /// ACL user; `rediss://` does the same over TLS. `?prefix=name` puts the queue's keys
    /// under `name:` (default `workmill`). Other settings go in
    /// [`RedisConfig`](super::RedisConfig), so an unknown parameter is refused rather than
    /// silently ignored.
    pub fn parse(url: &str) -> Result<RedisUrl, QueueError> {
        let invalid = |reason: String| QueueError::InvalidUrl {
            url: redact(url),
            reason,
        };
        let (scheme, rest) = url
            .split_once("://")
            .ok_or_else(|| invalid(format!("it has no scheme; {FORMS}")))?;
        let tls = match scheme {
            "redis" => false,
            "rediss" => true,
            other => {
                return Err(invalid(format!(
                    "the scheme is {other:?}, not \"redis\" or \"rediss\"; {FORMS}"
                )));
            }
        };
        if rest.contains('#') {
            return Err(invalid(
                "fragments are not read; set options with RedisConfig instead".to_owned(),
            ));
        }
        if url.chars().any(|c| c.is_control() || c.is_whitespace()) {
            return Err(invalid(
                "it contains whitespace or a control character".to_owned(),
            ));
        }
        let (before_query, query) = rest.split_once('?').unwrap_or((rest, ""));
        let (authority, path) = match before_query.find('/') {
            Some(slash) => before_query.split_at(slash),
            None => (before_query, ""),
        };
        let (userinfo, host_port) = match authority.rsplit_once('@') {
            Some((userinfo, host_port)) => (Some(userinfo), host_port),
            None => (None, authority),
        };
        let (username, has_password) = match userinfo {
            None => (None, false),
            Some(info) => match info.split_once(':') {
                Some((user, password)) => {
                    if password.is_empty() {
                        return Err(invalid(
                            "the password after ':' is empty; leave out the ':' for no password"
                                .to_owned(),
                        ));
                    }
                    ((!user.is_empty()).then(|| user.to_owned()), true)
                }
                None if info.is_empty() => {
                    return Err(invalid(format!("nothing stands before '@'; {FORMS}")));
                }
                None => (Some(info.to_owned()), false),
            },
        };
        let (host, port) = split_host_port(host_port).map_err(invalid)?;
        let db = match path.trim_start_matches('/') {
            "" => 0,
            text => text.parse::<u32>().map_err(|_| {
                invalid(format!(
                    "the path {path:?} is not a database number; write /0, /1, ... or nothing"
                ))
            })?,
        };
        let mut prefix = None;
        for pair in query.split('&').filter(|p| !p.is_empty()) {
            let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
            match name {
                "prefix" if value.is_empty() => {
                    return Err(invalid("the prefix is empty".to_owned()));
                }
                "prefix" => prefix = Some(value.to_owned()),
                _ => {
                    return Err(invalid(format!(
                        "unknown parameter {name:?}; the URL takes only ?prefix=name, \
                         other settings go in RedisConfig"
                    )));
                }
            }
        }
        let connect = format!("{scheme}://{authority}/{db}");
        Ok(RedisUrl {
            tls,
            host,
            port,
            db,
            username,
            prefix,
            connect,
            has_password,
        })
    }
}

/// Splits `host[:port]` or `[v6-address][:port]`.
fn split_host_port(text: &str) -> Result<(String, u16), String> {
    let (host, port) = if let Some(rest) = text.strip_prefix('[') {
        let (host, after) = rest
            .split_once(']')
            .ok_or_else(|| "an IPv6 address opened with '[' is not closed with ']'".to_owned())?;
        match after {
            "" => (host, None),
            _ => match after.strip_prefix(':') {
                Some(port) => (host, Some(port)),
                None => return Err(format!("unexpected {after:?} after the IPv6 address")),
            },
        }
    } else {
        match text.rsplit_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (text, None),
        }
    };
    if host.is_empty() {
        return Err(format!("the host is empty; {FORMS}"));
    }
    let port = match port {
        None => 6379,
        Some(port) => match port.parse::<u16>() {
            Ok(0) | Err(_) => {
                return Err(format!("the port {port:?} is not a number from 1 to 65535"));
            }
            Ok(port) => port,
        },
    };
    Ok((host.to_owned(), port))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_password_database_and_prefix_forms() {
        let url = RedisUrl::parse("redis://127.0.0.1").unwrap();
        assert_eq!(
            (url.tls, url.host.as_str(), url.port, url.db),
            (false, "127.0.0.1", 6379, 0)
        );
        assert_eq!(url.connect, "redis://127.0.0.1/0");

        let url = RedisUrl::parse("redis://:s3cret@cache.internal:6380/2?prefix=billing").unwrap();
        assert_eq!(
            (url.host.as_str(), url.port, url.db, url.prefix.as_deref()),
            ("cache.internal", 6380, 2, Some("billing"))
        );
        assert_eq!(url.username, None);
        assert_eq!(url.connect, "redis://:s3cret@cache.internal:6380/2");
        assert!(!format!("{url:?}").contains("s3cret"));
        assert_eq!(url.to_string(), "redis://:***@cache.internal:6380/2");

        let url = RedisUrl::parse("rediss://worker:pw@[::1]:7000/").unwrap();
        assert!(url.tls);
        assert_eq!(
            (url.host.as_str(), url.port, url.username.as_deref()),
            ("::1", 7000, Some("worker"))
        );
        assert_eq!(url.to_string(), "rediss://worker:***@[::1]:7000/0");
    }

    #[test]
    fn bad_urls_say_what_is_wrong_without_showing_the_password() {
        let cases = [
            ("sqlite://tasks.db", "scheme is \"sqlite\""),
            ("127.0.0.1:6379", "no scheme"),
            ("redis://", "host is empty"),
            ("redis://:pw@", "host is empty"),
            ("redis://host:http", "port \"http\""),
            ("redis://host:0", "port \"0\""),
            ("redis://host:70000", "port \"70000\""),
            ("redis://host/zero", "not a database number"),
            ("redis://host/-1", "not a database number"),
            ("redis://host?timeout=5", "unknown parameter \"timeout\""),
            ("redis://host?prefix=", "prefix is empty"),
            ("redis://host#insecure", "fragments"),
            ("redis://:@host", "password after ':' is empty"),
            ("redis://@host", "before '@'"),
            ("redis://[::1:6379", "not closed"),
            ("redis://ho st", "whitespace"),
            ("redis://:hunter2@host:bad", "port"),
        ];
        for (url, expected) in cases {
            let err = RedisUrl::parse(url).unwrap_err();
            let QueueError::InvalidUrl { url: shown, reason } = &err else {
                panic!("{url}: expected InvalidUrl, got {err:?}");
            };
            assert!(reason.contains(expected), "{url}: {reason}");
            assert!(
                !shown.contains("hunter2"),
                "{url}: the password leaked: {shown}"
            );
        }
    }

    #[test]
    fn redaction_hides_only_the_password() {
        assert_eq!(
            redact("redis://u:pw@h:1/2?prefix=x"),
            "redis://u:***@h:1/2?prefix=x"
        );
        assert_eq!(redact("redis://h:1"), "redis://h:1");
        assert_eq!(redact("redis://user@h"), "redis://user@h");
        assert_eq!(redact("no scheme"), "no scheme");
    }
}
