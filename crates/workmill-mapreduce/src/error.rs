//! `MapReduceError`: what the `try_` functions return when a map or reduce panicked.

use std::any::Any;

/// Why a `try_` map-reduce returned no result.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum MapReduceError {
    /// A map, fold or reduce closure panicked. Chunks not yet started were
    /// skipped, and every chunk had stopped before this was returned.
    #[error(
        "a map or reduce closure panicked: {message}; the chunks still running were finished and the rest skipped"
    )]
    Panicked {
        /// The panic's message, or a placeholder when its payload was not a string.
        message: String,
    },
}

impl MapReduceError {
    /// The error for a caught panic, worded as the executor words it.
    pub(crate) fn from_panic(payload: &(dyn Any + Send)) -> MapReduceError {
        MapReduceError::Panicked {
            message: workmill_executor::panic_message(payload),
        }
    }
}
