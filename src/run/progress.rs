//! Progress of a run on stderr: a live line per model on a terminal, one
//! line per finished model otherwise (CI logs stay short).

use std::io::{IsTerminal, Write};
use std::time::Instant;

/// Reports items done, rate, ETA, errors and running cost.
pub struct Progress {
    enabled: bool,
    live: bool,
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
        }
    }

    /// One item finished.
    pub fn item_done(&mut self, error: bool, cost: f64) {
        self.done += 1;
        self.errors += usize::from(error);
        self.cost += cost;
        if self.live {
            eprint!("\r{}", self.line());
            let _ = std::io::stderr().flush();
        }
    }

    /// The model finished.
    pub fn finish_model(&mut self) {
        if !self.enabled {
            return;
        }
        if self.live {
            eprint!("\r");
        }
        eprintln!("{}", self.line());
    }

    fn line(&self) -> String {
        let fresh = self.done - self.resumed;
        let secs = self.started.elapsed().as_secs_f64();
        let rate = if secs > 0.0 { fresh as f64 / secs } else { 0.0 };
        let eta = if rate > 0.0 {
            format!("{:.0}s", (self.total - self.done) as f64 / rate)
        } else {
            "-".to_string()
        };
        format!(
            "{}: {}/{} items, {:.1}/s, ETA {}, {} errors, ${:.4}",
            self.model, self.done, self.total, rate, eta, self.errors, self.cost
        )
    }
}
