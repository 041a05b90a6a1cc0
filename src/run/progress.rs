//! Progress of a run on stderr, drawn by `indicatif`: on a terminal a live
//! bar per model (items done / total, rate, ETA, errors, running cost); when
//! stderr is not a terminal (CI logs), one line per finished model.

use std::io::IsTerminal;
use std::time::Instant;

use indicatif::{ProgressBar, ProgressStyle};

/// The live bar's layout (indicatif template).
const TEMPLATE: &str =
    "{prefix:.bold} [{bar:30.cyan/blue}] {pos}/{len} items, {per_sec}, ETA {eta}, {msg}";

/// Reports items done, rate, ETA, errors and running cost.
pub struct Progress {
    enabled: bool,
    live: bool,
    bar: Option<ProgressBar>,
    model: String,
    total: usize,
    done: usize,
    resumed: usize,
    errors: usize,
    cost: f64,
    started: Instant,
}

impl Progress {
    /// `enabled = false` prints nothing (e.g. `--quiet`).
    pub fn new(enabled: bool) -> Self {
        Self {
            enabled,
            live: enabled && std::io::stderr().is_terminal(),
            bar: None,
            model: String::new(),
            total: 0,
            done: 0,
            resumed: 0,
            errors: 0,
            cost: 0.0,
            started: Instant::now(),
        }
    }

    /// A model starts; `already` items were journaled by an earlier attempt.
    pub fn start_model(&mut self, model: &str, total: usize, already: usize) {
        self.model = model.to_string();
        self.total = total;
        self.done = already;
        self.resumed = already;
        self.errors = 0;
        self.cost = 0.0;
        self.started = Instant::now();
        if self.enabled && already == total {
            eprintln!("{model}: {total}/{total} already in the journal");
            return;
        }
        if self.live {
            let style = ProgressStyle::with_template(TEMPLATE)
                .unwrap_or_else(|_| ProgressStyle::default_bar())
                .progress_chars("=> ");
            let bar = ProgressBar::new(total as u64).with_style(style);
            bar.set_prefix(model.to_string());
            bar.set_position(already as u64);
            // Rate and ETA count this attempt's items only, not resumed ones.
            bar.reset_eta();
            bar.set_message(self.tail());
            self.bar = Some(bar);
        }
    }

    /// One item finished.
    pub fn item_done(&mut self, error: bool, cost: f64) {
        self.done += 1;
        self.errors += usize::from(error);
        self.cost += cost;
        if let Some(bar) = &self.bar {
            bar.set_message(self.tail());
            bar.inc(1);
        }
    }

    /// The model finished: the bar is replaced by the one-line summary.
    pub fn finish_model(&mut self) {
        if let Some(bar) = self.bar.take() {
            bar.finish_and_clear();
        }
        if self.enabled {
            eprintln!("{}", self.line());
        }
    }

    /// "3 errors, $0.0123".
    fn tail(&self) -> String {
        format!("{} errors, ${:.4}", self.errors, self.cost)
    }

    /// The line printed when a model finishes.
    fn line(&self) -> String {
        let fresh = self.done - self.resumed;
        let secs = self.started.elapsed().as_secs_f64();
        let rate = if secs > 0.0 { fresh as f64 / secs } else { 0.0 };
        format!(
            "{}: {}/{} items in {:.1}s, {:.1}/s, {}",
            self.model,
            self.done,
            self.total,
            secs,
            rate,
            self.tail()
        )
    }
}
