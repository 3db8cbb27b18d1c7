//! From a parsed command line to its flow and the rendering of its report: [`run`].

use std::io::Write;

use clap::CommandFactory;

use crate::cli::{config, render, runner, Cli, Command};
use crate::core::error::{self, Exit};
use crate::core::limits;
use crate::engine::{self, inspect, progress, query};

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
    let limits = match &cli.command {
        Command::Backup(a) => Some(a.limits),
        Command::Restore(a) => Some(a.limits),
        Command::Migrate(a) => Some(a.limits),
        Command::Convert(a) => Some(a.limits),
        Command::List(a) => Some(a.limits),
        Command::Verify(a) => Some(a.limits),
        Command::Export(a) => Some(a.limits),
        _ => None,
    };
    if let Some(l) = limits {
        limits::set_max_message_size(l.max_message_size);
    }
    match cli.command {
        Command::Completions { shell } => {
            let mut cmd = Cli::command();
            clap_complete::generate(shell, &mut cmd, "mailkeep", &mut std::io::stdout());
            Exit::Ok
        }
        Command::List(args) if !inspect::is_server(&args.source) => {
            let listed = inspect::list::open(&args.source).and_then(|archive| {
                let mut out = render::ListPrinter::start(&archive, args.json, args.messages);
                let listing = archive.read(out.per_message())?;
                out.finish(&listing);
                Ok(listing.exit)
            });
            listed.unwrap_or_else(|e| fail(&e, None))
        }
        Command::List(args) if args.messages => fail(
            &error::Error::Usage(
                "--messages lists the messages of an archive, not of a server".into(),
            ),
            None,
        ),
        Command::List(args) => match config::imap_query(&args.source, &args.server, 100)
            .and_then(|q| query::list(&q))
        {
            Ok(listing) => {
                render::print_server_list(&listing, args.json);
                listing.exit
            }
            Err(e) => fail(&e, None),
        },
        Command::Verify(args) => match config::verify_plan(&args) {
            Ok(plan) => {
                let report = inspect::verify::run(&plan);
                render::print_verify(&report, plan.output);
                report.exit
            }
            Err(e) => fail(&e, args.json.then_some("verify")),
        },
        Command::Export(args) => {
            match config::export_plan(&args)
                .and_then(|plan| Ok((inspect::export::run(&plan)?, plan.output)))
            {
                Ok((report, output)) => {
                    render::print_export(&report, output);
                    report.exit
                }
                Err(e) => fail(&e, args.output.json.then_some("export")),
            }
        }
        Command::Quota(args) => {
            match config::imap_query(&args.source, &args.server, args.warn_at)
                .and_then(|q| query::quota(&q))
            {
                Ok(report) => {
                    render::print_quota(&report, args.json);
                    report.exit
                }
                Err(e) => fail(&e, None),
            }
        }
        Command::Backup(args) if config::is_zip_archive(&args.archive) => {
            let plan = match config::zip_backup_plan(&args) {
                Ok(p) => p,
                Err(e) => return fail(&e, args.output.json.then_some("backup")),
            };
            let report = engine::backup_to_zip(&plan);
            render::print_convert(&report, plan.output);
            report.exit
        }
        Command::Backup(args) => {
            let plan = match config::backup_plan(&args) {
                Ok(p) => p,
                Err(e) => return fail(&e, args.output.json.then_some("backup")),
            };
            let mut progress = progress::Progress::new(!plan.output.quiet && !plan.output.json);
            let report = engine::backup(&plan, &mut progress);
            render::print_run(&report, plan.output);
            report.exit
        }
        Command::Migrate(args) => {
            let plan = match config::migrate_plan(&args) {
                Ok(p) => p,
                Err(e) => return fail(&e, args.output.json.then_some("migrate")),
            };
            let report = engine::migrate::run(&plan);
            render::print_migrate(&report, plan.restore.output);
            report.exit
        }
        Command::Convert(args) => {
            let plan = match config::convert_plan(&args) {
                Ok(p) => p,
                Err(e) => return fail(&e, args.output.json.then_some("convert")),
            };
            let report = engine::convert::convert(&plan);
            render::print_convert(&report, plan.output);
            report.exit
        }
        Command::Run(args) => runner::run(&args),
        Command::Prune(args) => {
            let plan = match config::prune_plan(&args) {
                Ok(p) => p,
                Err(e) => return fail(&e, args.output.json.then_some("prune")),
            };
            let report = engine::prune::prune(&plan);
            render::print_prune(&report, plan.output);
            report.exit
        }
        Command::Restore(args) => {
            let plan = match config::restore_plan(&args) {
                Ok(p) => p,
                Err(e) => return fail(&e, args.output.json.then_some("restore")),
            };
            let report = engine::restore::restore(&plan);
            render::print_restore(&report, plan.output);
            report.exit
        }
    }
}

/// Reports an error that stopped a command before it had a report: one line on stderr and,
/// with `--json` (`json_command` is then the command's name), a minimal report object on
/// stdout, so a script reading the JSON always gets one.
fn fail(e: &error::Error, json_command: Option<&str>) -> Exit {
    let mut stderr = std::io::stderr();
    let _ = writeln!(
        stderr,
        "{}",
        crate::engine::report::one_line(&format!("mailkeep: {e}"))
    );
    if let Some(command) = json_command {
        let report = serde_json::json!({
            "command": command,
            "error": e.to_string(),
            "exit": e.exit(),
            "exit_code": e.exit().code(),
        });
        let mut stdout = std::io::stdout().lock();
        let written = writeln!(stdout, "{report}").and_then(|()| stdout.flush());
        if let Some(line) = written.err().as_ref().and_then(error::stdout_failure) {
            let _ = writeln!(stderr, "{}", crate::engine::report::one_line(&line));
        }
    }
    e.exit()
}
