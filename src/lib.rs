//! mailkeep: back up POP3 and IMAP mail into open archives (Maildir, mbox), without ever losing
//! or duplicating a message. See README.md for the user's view and DESIGN.md in the shared
//! material for the architecture; `main.rs` is only glue around [`run`].

pub mod archive;
pub mod cli;
pub mod config;
pub mod credentials;
pub mod endpoint;
pub mod engine;
pub mod error;
pub mod headers;
pub mod imap;
pub mod ledger;
pub mod lock;
pub mod mbox;
pub mod message;
pub mod mutf7;
pub mod net;
pub mod pop3;
pub mod progress;
pub mod query;
pub mod report;
pub mod sink;

use std::io::Write;

use clap::CommandFactory;

use crate::cli::{Cli, Command};
use crate::error::Exit;

/// Runs one parsed command line and returns the exit status. Prints the report (summary line,
/// or JSON with `--json`) on stdout and warnings and errors on stderr, one line each.
pub fn run(cli: Cli) -> Exit {
    // Archives and state are private: files 0600, folders 0700, whatever the caller's umask.
    // SAFETY: umask and signal only change process-wide settings; no memory is involved.
    unsafe {
        libc::umask(0o077);
        // A file-size limit (RLIMIT_FSIZE) must give EFBIG, a clean error, not a kill.
        libc::signal(libc::SIGXFSZ, libc::SIG_IGN);
    }
    match cli.command {
        Command::Completions { shell } => {
            let mut cmd = Cli::command();
            clap_complete::generate(shell, &mut cmd, "mailkeep", &mut std::io::stdout());
            Exit::Ok
        }
        Command::List(args) => match config::imap_query(&args.source, &args.server, args.json, 100)
            .and_then(|q| query::list(&q))
        {
            Ok(exit) => exit,
            Err(e) => fail(&e),
        },
        Command::Quota(args) => {
            match config::imap_query(&args.source, &args.server, args.json, args.warn_at)
                .and_then(|q| query::quota(&q))
            {
                Ok(exit) => exit,
                Err(e) => fail(&e),
            }
        }
        Command::Backup(args) => {
            let plan = match config::backup_plan(&args) {
                Ok(p) => p,
                Err(e) => return fail(&e),
            };
            let mut progress = progress::Progress::new(!plan.output.quiet && !plan.output.json);
            let report = engine::backup(&plan, &mut progress);
            print_report(&report, plan.output);
            report.exit
        }
    }
}

fn fail(e: &error::Error) -> Exit {
    let _ = writeln!(std::io::stderr(), "mailkeep: {e}");
    e.exit()
}

fn print_report(report: &report::RunReport, out: config::Output) {
    let mut stderr = std::io::stderr();
    if !out.quiet {
        for w in &report.warnings {
            let _ = writeln!(stderr, "mailkeep: warning: {w}");
        }
    }
    for f in &report.failures {
        let _ = writeln!(stderr, "mailkeep: {} {}: {}", f.mailbox, f.message, f.error);
    }
    if let Some(e) = &report.error {
        let _ = writeln!(stderr, "mailkeep: {e}");
    }
    let mut stdout = std::io::stdout();
    if out.json {
        let _ = serde_json::to_writer(&mut stdout, report);
        let _ = writeln!(stdout);
    } else if (!out.quiet || report.exit != Exit::Ok)
        && (report.error.is_none() || report.fetched > 0)
    {
        let _ = writeln!(stdout, "{report}");
    }
}
