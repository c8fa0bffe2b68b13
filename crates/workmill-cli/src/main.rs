//! The `workmill` binary: parses the command line, installs its log on stderr and exits with
//! the code the command gives.

use std::process::ExitCode;

fn main() -> ExitCode {
    ExitCode::from(workmill_cli::main())
}
