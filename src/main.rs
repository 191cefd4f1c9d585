//! The `kmsconf` binary: parse arguments, set up tracing, run one command, map its result to an
//! exit code. Everything else lives in `kmsconf-app`, which the commands call and whose results
//! they render.

mod cli;

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    // clap exits 2 on a usage error, which `plan --detailed-exitcode` means "changes": a bad
    // flag must be an error (1), as every other failure is
    let args = match cli::Args::try_parse() {
        Ok(args) => args,
        Err(e) => {
            let _ = e.print();
            return if e.use_stderr() {
                ExitCode::from(1)
            } else {
                ExitCode::SUCCESS
            };
        }
    };
    // a knowledge table compiled in that does not read stops here, with its file, line and
    // column, before any command reads it
    let run = cli::init_tracing()
        .and_then(|()| kmsconf_model::load_tables().map_err(cli::CliError::from))
        .and_then(|()| {
            cli::raise_open_file_limit();
            cli::run(args)
        });
    match run {
        Ok(code) => code,
        Err(e) => {
            cli::report_error(&e);
            ExitCode::from(1)
        }
    }
}
