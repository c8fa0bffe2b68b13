//! The `workmill` binary: installs its log on stderr, parses the command line and exits with
//! the code the command gives.

use std::process::ExitCode;

fn main() -> ExitCode {
    ExitCode::from(workmill_cli::main())
}
