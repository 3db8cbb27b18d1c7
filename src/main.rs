//! The `mailkeep` binary: parse the command line, run it, exit with its status. Nothing else.

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let cli = mailkeep::cli::Cli::parse();
    mailkeep::protocol::net::set_trace(cli.trace);
    ExitCode::from(mailkeep::run(cli).code())
}
