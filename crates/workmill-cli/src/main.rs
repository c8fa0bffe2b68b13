//! The `workmill` binary: parses the command line and exits with the code the command gives.

use std::process::ExitCode;

fn main() -> ExitCode {
    ExitCode::from(workmill_cli::main_with_args(std::env::args_os()))
}
