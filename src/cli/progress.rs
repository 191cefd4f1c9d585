//! Progress while hosts are discovered or applied: on a terminal, one live line per host and a
//! bar for the fleet (on stderr); otherwise plain log lines on stderr, so stdout stays the plan.

use std::collections::BTreeMap;
use std::io::IsTerminal;
use std::time::Duration;

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};

pub struct Progress {
    live: Option<Live>,
}

struct Live {
    multi: MultiProgress,
    fleet: ProgressBar,
    hosts: BTreeMap<String, ProgressBar>,
}

impl Progress {
    /// Progress for `verb` ("planning", "applying") over `hosts`.
    pub fn new(verb: &str, hosts: &[String]) -> Self {
        if !std::io::stderr().is_terminal() || hosts.is_empty() {
            return Self { live: None };
        }
        let multi = MultiProgress::with_draw_target(ProgressDrawTarget::stderr());
        let line = ProgressStyle::with_template("{spinner} {prefix:.bold} {msg}")
            .unwrap_or_else(|_| ProgressStyle::default_spinner());
        let bar = ProgressStyle::with_template("{prefix} [{bar:30}] {pos}/{len} hosts {elapsed}")
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> ");
        let hosts = hosts
            .iter()
            .map(|h| {
                let pb = multi.add(
                    ProgressBar::new_spinner()
                        .with_style(line.clone())
                        .with_prefix(h.clone()),
                );
                pb.set_message("waiting");
                pb.enable_steady_tick(Duration::from_millis(120));
                (h.clone(), pb)
            })
            .collect::<BTreeMap<_, _>>();
        let fleet = multi.add(
            ProgressBar::new(hosts.len() as u64)
                .with_style(bar)
                .with_prefix(verb.to_string()),
        );
        Self {
            live: Some(Live {
                multi,
                fleet,
                hosts,
            }),
        }
    }

    /// The host is working on `what`.
    pub fn update(&self, host: &str, what: &str) {
        match &self.live {
            Some(live) => {
                if let Some(pb) = live.hosts.get(host) {
                    pb.set_message(what.to_string());
                }
            }
            None => note!("{host}: {what}"),
        }
    }

    /// The host is done, with `summary`.
    pub fn done(&self, host: &str, summary: &str) {
        match &self.live {
            Some(live) => {
                if let Some(pb) = live.hosts.get(host) {
                    pb.finish_with_message(summary.to_string());
                }
                live.fleet.inc(1);
            }
            None => note!("{host}: {summary}"),
        }
    }

    /// Removes the live lines before the plan or report is printed.
    pub fn finish(self) {
        if let Some(live) = self.live {
            live.fleet.finish_and_clear();
            for pb in live.hosts.values() {
                pb.finish_and_clear();
            }
            let _ = live.multi.clear();
        }
    }
}
