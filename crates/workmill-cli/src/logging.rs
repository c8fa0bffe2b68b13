//! The binary's log on stderr.
//!
//! The library reports what goes wrong out of sight of any caller (a worker waiting for a store
//! it cannot open, leases it could not extend, outcomes it could not record) only through
//! `tracing`; without a subscriber those events go nowhere, and a worker on a store that is
//! down would wait in silence. The binary installs one that writes `WARN` and above to stderr,
//! or the level that [`LOG_ENV`] names.
//!
//! Only the binary installs it ([`crate::main`]): the library's entry points
//! ([`crate::main_with_args`], [`crate::run_with_output`]) leave the process's global
//! subscriber to whoever calls them, tests included.

use std::ffi::OsStr;

use tracing_subscriber::filter::LevelFilter;

use crate::error::CliError;

/// The environment variable that sets the log level.
pub const LOG_ENV: &str = "WORKMILL_LOG";

/// The level when [`LOG_ENV`] is unset or empty: what needs an operator's eye, no chatter.
pub const DEFAULT_LEVEL: LevelFilter = LevelFilter::WARN;

/// The level that `value` (the variable's value, if set) names: `off`, `error`, `warn`,
/// `info`, `debug` or `trace`, in any case, or 0 to 5; unset or empty is [`DEFAULT_LEVEL`].
///
/// Anything else is a usage error rather than a silent fallback: an operator who asked for
/// `debug` and misspelt it would otherwise get the default and think nothing was happening.
pub fn level(value: Option<&OsStr>) -> Result<LevelFilter, CliError> {
    let Some(value) = value else {
        return Ok(DEFAULT_LEVEL);
    };
    let text = value
        .to_str()
        .map(str::trim)
        .ok_or_else(|| bad_level(value))?;
    if text.is_empty() {
        return Ok(DEFAULT_LEVEL);
    }
    text.parse().map_err(|_| bad_level(value))
}

fn bad_level(value: &OsStr) -> CliError {
    CliError::Usage(format!(
        "{LOG_ENV}={:?} is not a log level; use off, error, warn, info, debug or trace \
         (unset, it is warn)",
        value.to_string_lossy()
    ))
}

/// Installs the stderr log at the level [`LOG_ENV`] names, for the rest of the process.
///
/// Errors: a value of [`LOG_ENV`] that is not a level. A subscriber already installed (by an
/// embedding program) is left in place.
pub fn install_from_env() -> Result<(), CliError> {
    let level = level(std::env::var_os(LOG_ENV).as_deref())?;
    // Stderr, unbuffered: a log line is seen at once, and never mixes with a command's result
    // on stdout (`--json` stays parseable).
    let _already_installed = tracing_subscriber::fmt()
        .with_max_level(level)
        .with_writer(std::io::stderr)
        .try_init();
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::EXIT_USAGE;

    fn parsed(value: &str) -> Result<LevelFilter, CliError> {
        level(Some(OsStr::new(value)))
    }

    #[test]
    fn unset_or_empty_is_warn_and_names_and_numbers_are_levels() {
        assert_eq!(level(None).unwrap(), LevelFilter::WARN);
        assert_eq!(parsed("").unwrap(), LevelFilter::WARN);
        assert_eq!(parsed(" ").unwrap(), LevelFilter::WARN);
        assert_eq!(parsed("info").unwrap(), LevelFilter::INFO);
        assert_eq!(parsed(" DEBUG ").unwrap(), LevelFilter::DEBUG);
        assert_eq!(parsed("off").unwrap(), LevelFilter::OFF);
        assert_eq!(parsed("trace").unwrap(), LevelFilter::TRACE);
        assert_eq!(parsed("1").unwrap(), LevelFilter::ERROR);
    }

    #[test]
    fn anything_else_is_a_usage_error_that_lists_the_levels() {
        for value in ["verbose", "warning", "workmill=debug", "6"] {
            let error = parsed(value).unwrap_err();
            assert_eq!(error.exit_code(), EXIT_USAGE, "{value}");
            let message = error.to_string();
            assert!(
                message.contains(&format!("WORKMILL_LOG={value:?}"))
                    && message.contains("off, error, warn, info, debug or trace"),
                "{message}"
            );
        }
        #[cfg(unix)]
        {
            use std::ffi::OsString;
            use std::os::unix::ffi::OsStringExt;

            let not_utf8 = OsString::from_vec(vec![0x64, 0xff]);
            assert_eq!(level(Some(&not_utf8)).unwrap_err().exit_code(), EXIT_USAGE);
        }
    }
}
