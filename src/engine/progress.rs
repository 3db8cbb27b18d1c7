//! Progress on stderr: an indicatif bar (bytes, messages, ETA) when stderr is a terminal and
//! the run is not `--quiet`; nothing otherwise (cron gets only the summary or the errors).

use std::io::IsTerminal;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

/// A progress view of a run.
pub struct Progress {
    bar: Option<ProgressBar>,
    messages: u64,
    total_messages: u64,
}

impl Progress {
    /// A bar when `enabled` and stderr is a terminal; otherwise a silent view.
    pub fn new(enabled: bool) -> Progress {
        let bar = (enabled && std::io::stderr().is_terminal()).then(|| {
            let b = ProgressBar::with_draw_target(Some(0), ProgressDrawTarget::stderr());
            b.set_style(
                ProgressStyle::with_template(
                    "{prefix} [{bar:30}] {decimal_bytes}/{decimal_total_bytes} {msg} ({eta})",
                )
                .expect("static template")
                .progress_chars("=> "),
            );
            b
        });
        Progress {
            bar,
            messages: 0,
            total_messages: 0,
        }
    }

    /// Sets what is to be transferred: message count and bytes (as the server reports them).
    pub fn start(&mut self, prefix: &str, messages: u64, bytes: u64) {
        self.total_messages = messages;
        if let Some(b) = &self.bar {
            b.set_prefix(prefix.to_string());
            b.set_length(bytes);
            b.set_message(format!("0/{messages} messages"));
        }
    }

    /// Adds work discovered later (IMAP: each mailbox's new messages).
    pub fn add_work(&mut self, messages: u64, bytes: u64) {
        self.total_messages += messages;
        if let Some(b) = &self.bar {
            b.inc_length(bytes);
            b.set_message(format!(
                "{}/{} messages",
                self.messages, self.total_messages
            ));
        }
    }

    /// One message of `bytes` done.
    pub fn message_done(&mut self, bytes: u64) {
        self.messages += 1;
        if let Some(b) = &self.bar {
            b.inc(bytes);
            b.set_message(format!(
                "{}/{} messages",
                self.messages, self.total_messages
            ));
        }
    }

    /// Removes the bar.
    pub fn finish(&self) {
        if let Some(b) = &self.bar {
            b.finish_and_clear();
        }
    }
}
