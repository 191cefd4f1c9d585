//! The `kmsconf` binary: parse arguments, set up tracing, run one command, map its result to an
//! exit code. Everything else lives in the engine and providers crates.

mod cli;

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let args = cli::Args::parse();
    cli::init_tracing();
    match cli::run(args) {
        Ok(code) => code,
        Err(e) => {
            cli::report_error(&e);
            ExitCode::from(1)
        }
    }
}
