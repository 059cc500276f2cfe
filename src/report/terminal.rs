//! The human view: one line per task per host; on a terminal an overall progress line (task
//! results of those planned, elapsed time, the play) above a spinner per host; a recap table
//! at the end.

use std::collections::HashMap;
use std::io::{IsTerminal, Write};
use std::sync::Mutex;

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};

use super::{Event, Observer, Status};

pub struct TerminalView {
    verbose: u8,
    color: bool,
    progress: Option<Progress>,
}

struct Progress {
    multi: MultiProgress,
    bars: Mutex<HashMap<String, ProgressBar>>,
    /// The whole run: task results so far of those planned, and the time since it started.
    overall: Mutex<Option<ProgressBar>>,
}

impl TerminalView {
    pub fn new(no_progress: bool, verbose: u8) -> Self {
        let tty = std::io::stderr().is_terminal() && std::io::stdout().is_terminal();
        let ci = std::env::var_os("CI").is_some();
        let progress = (tty && !ci && !no_progress).then(|| Progress {
            multi: MultiProgress::with_draw_target(ProgressDrawTarget::stderr()),
            bars: Mutex::new(HashMap::new()),
            overall: Mutex::new(None),
        });
        TerminalView {
            verbose,
            color: tty && std::env::var_os("NO_COLOR").is_none(),
            progress,
        }
    }

    fn paint(&self, text: &str, status: Status) -> String {
        if !self.color {
            return text.to_string();
        }
        let code = match status {
            Status::Ok => "32",
            Status::Changed => "33",
            Status::Failed | Status::Unreachable => "31",
            Status::Skipped => "36",
        };
        format!("\x1b[{code}m{text}\x1b[0m")
    }

    fn line(&self, text: &str) {
        match &self.progress {
            Some(p) => {
                let _ = p.multi.println(text);
            }
            None => {
                let mut out = std::io::stdout().lock();
                let _ = writeln!(out, "{text}");
            }
        }
    }

    /// The overall line, above the hosts' spinners: `[12s] 45/120 task results, 6 hosts`.
    fn plan(&self, tasks: u64) {
        let Some(p) = &self.progress else { return };
        let Ok(mut overall) = p.overall.lock() else {
            return;
        };
        let bar = p.multi.insert(0, ProgressBar::new(tasks));
        if let Ok(style) =
            ProgressStyle::with_template("[{elapsed:>4}] {bar:24} {pos}/{len} task results  {msg}")
        {
            bar.set_style(style);
        }
        bar.enable_steady_tick(std::time::Duration::from_millis(500));
        *overall = Some(bar);
    }

    fn tick(&self, host: &str, task: &str) {
        let Some(p) = &self.progress else { return };
        if let Ok(overall) = p.overall.lock()
            && let Some(bar) = overall.as_ref()
        {
            // Loops and handlers add results the plan did not count.
            if bar.position() + 1 > bar.length().unwrap_or(0) {
                bar.set_length(bar.position() + 1);
            }
            bar.inc(1);
        }
        let Ok(mut bars) = p.bars.lock() else { return };
        let bar = bars.entry(host.to_string()).or_insert_with(|| {
            let b = p.multi.add(ProgressBar::new_spinner());
            if let Ok(style) =
                ProgressStyle::with_template("{spinner} {prefix:>12} {pos:>3} tasks  {msg}")
            {
                b.set_style(style);
            }
            b.set_prefix(host.to_string());
            b
        });
        bar.inc(1);
        bar.set_message(task.to_string());
    }
}

impl Observer for TerminalView {
    fn event(&self, event: &Event) {
        match event {
            Event::RunStart { what, hosts, check } => {
                let mode = if *check {
                    " (check mode: nothing will be changed)"
                } else {
                    ""
                };
                self.line(&format!("{what} on {} host(s){mode}", hosts.len()));
            }
            Event::RunPlan { tasks } => self.plan(*tasks),
            Event::PlayStart { play, hosts } => {
                self.line(&format!("\n== {play}  [{}]", hosts.join(", ")));
                if let Some(p) = &self.progress
                    && let Ok(overall) = p.overall.lock()
                    && let Some(bar) = overall.as_ref()
                {
                    bar.set_message(format!("{play} ({} hosts)", hosts.len()));
                }
            }
            Event::Task {
                host,
                task,
                status,
                msg,
                diff,
                output,
                ms,
            } => {
                self.tick(host, task);
                let word = self.paint(&format!("{:<9}", status.word()), *status);
                let mut text = format!("{word} {host:<10} {task}");
                if !msg.is_empty() {
                    text.push_str(&format!(": {msg}"));
                }
                if self.verbose > 0 {
                    text.push_str(&format!("  ({ms} ms)"));
                }
                self.line(&text);
                if let Some(d) = diff {
                    for l in d.lines() {
                        self.line(&format!("    {l}"));
                    }
                }
                if self.verbose > 0 && !output.is_empty() {
                    for l in output.lines() {
                        self.line(&format!("    | {l}"));
                    }
                }
            }
            Event::ReadsAhead {
                host,
                reads,
                round_trips,
                ms,
            } => {
                if self.verbose > 0 {
                    let trips = if *round_trips == 1 {
                        "one round trip".to_string()
                    } else {
                        format!("{round_trips} round trips")
                    };
                    self.line(&format!(
                        "{:<9} {host:<10} {reads} queries of the next tasks, in {trips}  ({ms} ms)",
                        "read"
                    ));
                }
            }
            Event::Unreachable { host, error } => {
                let word = self.paint(&format!("{:<9}", "unreach"), Status::Unreachable);
                self.line(&format!("{word} {host:<10} {error}"));
            }
            Event::Probe {
                probe,
                pass,
                evidence,
            } => {
                let (w, s) = if *pass {
                    ("PASS", Status::Ok)
                } else {
                    ("FAIL", Status::Failed)
                };
                self.line(&format!("{} {probe}: {evidence}", self.paint(w, s)));
            }
            Event::Warning { text } => self.line(&format!("warning: {text}")),
            Event::Info { text } => self.line(text),
            Event::Result { .. } => {}
            Event::Recap {
                hosts,
                elapsed_ms,
                check,
            } => {
                self.finish();
                let mut out = String::from("\nRECAP");
                if *check {
                    out.push_str(" (check mode: \"changed\" means would change)");
                }
                for h in hosts {
                    let state = if h.unreachable {
                        self.paint("  UNREACHABLE", Status::Unreachable)
                    } else {
                        String::new()
                    };
                    out.push_str(&format!(
                        "\n  {:<12} ok={:<3} changed={:<3} failed={:<3} skipped={:<3}{}",
                        h.host, h.ok, h.changed, h.failed, h.skipped, state
                    ));
                    if self.verbose > 0 {
                        out.push_str(&format!(" round_trips={}", h.round_trips));
                    }
                }
                out.push_str(&format!("\n  {:.2} s", *elapsed_ms as f64 / 1000.0));
                self.line(&out);
            }
        }
    }

    fn finish(&self) {
        if let Some(p) = &self.progress {
            if let Ok(mut bars) = p.bars.lock() {
                for (_, b) in bars.drain() {
                    b.finish_and_clear();
                }
            }
            if let Ok(mut overall) = p.overall.lock()
                && let Some(bar) = overall.take()
            {
                bar.finish_and_clear();
            }
        }
    }
}
