//! Where a run's wall time went: loading models, waiting for their
//! answers, scoring, statistics and reports. `run` prints the split and
//! writes it to `timings.json` in the run directory (never into
//! `summary.json`, which stays byte-identical across runs), so the
//! harness's own cost is measured on every run.

use std::time::Duration;

use serde::Serialize;

/// Seconds spent in each phase of one `run`.
#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct Timings {
    /// Reading the config, the suites and the journal.
    pub setup_secs: f64,
    /// Opening models (reading checkpoints, building decoders).
    pub model_load_secs: f64,
    /// Waiting for answers, per model in run order.
    pub model_secs: Vec<(String, f64)>,
    /// Waiting for the scoring thread after the last model answered
    /// (scoring that overlaps the models is in `scoring_busy_secs` only).
    pub scoring_secs: f64,
    /// The scoring thread's working time (scoring and journaling), most of
    /// it alongside the models.
    pub scoring_busy_secs: f64,
    /// Summarising the journal (intervals, bootstrap, gates).
    pub statistics_secs: f64,
    /// Writing every report.
    pub reports_secs: f64,
    /// The whole run, start to end.
    pub total_secs: f64,
}

impl Timings {
    /// Adds `d` to the model time of `model` (a new entry the first time).
    pub fn add_model(&mut self, model: &str, d: Duration) {
        match self.model_secs.iter_mut().find(|(m, _)| m == model) {
            Some((_, s)) => *s += d.as_secs_f64(),
            None => self.model_secs.push((model.to_string(), d.as_secs_f64())),
        }
    }

    /// Time spent waiting for models.
    pub fn models_total(&self) -> f64 {
        // From +0.0: an empty float sum is -0.0, which prints as "-0.00 s".
        self.model_secs.iter().fold(0.0, |total, (_, s)| total + s)
    }

    /// The share of the wall time not spent waiting for models' answers:
    /// the harness's own cost (setup, loading models, scoring not hidden
    /// behind the models, statistics, reports). `None` for a run that took
    /// no measurable time.
    pub fn harness_share(&self) -> Option<f64> {
        (self.total_secs > 0.0)
            .then(|| ((self.total_secs - self.models_total()) / self.total_secs).max(0.0))
    }

    /// One line for stderr.
    pub fn render(&self) -> String {
        let models: Vec<String> = self
            .model_secs
            .iter()
            .map(|(m, s)| format!("{m} {s:.2}"))
            .collect();
        format!(
            "time: {:.2} s in all; answering {:.2} s ({}); harness: setup {:.2}, loading models {:.2}, \
             scoring {:.2} after the models ({:.2} alongside), statistics {:.2}, reports {:.2} s \
             = {:.1}% of the run",
            self.total_secs,
            self.models_total(),
            if models.is_empty() {
                "none asked".to_string()
            } else {
                models.join(", ")
            },
            self.setup_secs,
            self.model_load_secs,
            self.scoring_secs,
            self.scoring_busy_secs,
            self.statistics_secs,
            self.reports_secs,
            100.0 * self.harness_share().unwrap_or(0.0),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_run_that_asked_nothing_answered_for_zero_seconds() {
        let line = Timings::default().render();
        assert!(line.contains("answering 0.00 s (none asked)"), "{line}");
    }

    #[test]
    fn harness_share_is_what_models_did_not_take() {
        let mut t = Timings {
            total_secs: 10.0,
            model_load_secs: 1.0,
            ..Timings::default()
        };
        t.add_model("a", Duration::from_secs(4));
        t.add_model("b", Duration::from_secs(3));
        t.add_model("a", Duration::from_millis(1500));
        assert_eq!(t.model_secs, vec![("a".into(), 5.5), ("b".into(), 3.0)]);
        assert!((t.harness_share().unwrap() - 0.15).abs() < 1e-12);
        assert!(t.render().contains("= 15.0% of the run"), "{}", t.render());
        assert_eq!(Timings::default().harness_share(), None);
    }
}
