//! Progress bars for the demo's long steps: drawn on stderr when stdout is a terminal and the
//! output is text, hidden otherwise (pipes, CI logs, `--json`).

use std::io::IsTerminal;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressStyle};

/// Makes the demo's bars, all shown or all hidden.
#[derive(Clone, Copy, Debug)]
pub(super) struct Progress {
    shown: bool,
}

impl Progress {
    /// Bars shown only when stdout is a terminal and `json` is off.
    pub(super) fn new(json: bool) -> Progress {
        Progress {
            shown: !json && std::io::stdout().is_terminal(),
        }
    }

    /// Whether bars are drawn; a hidden bar's step need not poll for its position.
    pub(super) fn shown(&self) -> bool {
        self.shown
    }

    /// A bar of `total` units, labelled `message`.
    pub(super) fn bar(&self, total: u64, message: &str) -> ProgressBar {
        if !self.shown {
            return ProgressBar::hidden();
        }
        let bar = ProgressBar::new(total);
        let style = ProgressStyle::with_template("{msg:<28} [{bar:30}] {pos}/{len} {elapsed}")
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> ");
        bar.set_style(style);
        bar.set_message(message.to_owned());
        bar.enable_steady_tick(Duration::from_millis(100));
        bar
    }
}
