//! Calibration of the gate's retention statistics, shown by simulation.
//!
//! A scenario fixes the true joint distribution of one item's paired binary
//! outcomes (teacher right/wrong × student right/wrong) and a suite size
//! `n`. Each simulation draws `n` items from it, computes the retention
//! interval with every [`IntervalMethod`] under test, and asks the gate
//! ([`crate::gate::decide`]) for a verdict with the threshold set to the
//! *true* retention. Over many simulations:
//!
//! - **coverage**: the share of two-sided intervals that contain the true
//!   retention (target: the nominal confidence);
//! - **lower coverage**: the share of one-sided lower bounds at or below it
//!   (target: the nominal confidence);
//! - **PASS rate**: the share of PASS verdicts. At true retention equal to the
//!   threshold a PASS is a false pass, so the target is at most `1 - c`.
//!
//! Simulations in which the gate could not measure retention (teacher
//! correct on fewer than `min_teacher_correct` items) are left out of the
//! coverages and count as not PASS. Every estimate is a binomial share, so
//! its Monte Carlo standard error is `sqrt(p (1 - p) / sims)`
//! ([`monte_carlo_se`]); tests allow three of them.
//!
//! Scenarios are parametrised by the teacher accuracy `p_T`, the retention
//! `R` (student accuracy `p_S = R p_T`) and the agreement: the correlation
//! `φ` of the two outcomes as a fraction of the largest `φ` the margins
//! allow. Regenerate the table of docs/calibration.md with
//! `cargo run --release --example calibration`.

use rand::{RngCore, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};
use thiserror::Error;

use crate::gate::{self, GateError, GateInput, GateThresholds, Verdict};
use crate::stats::{BootstrapOptions, IntervalMethod, StatsError, retention_estimate};

/// A failure of the calibration simulation.
#[derive(Debug, Error)]
pub enum CalibrationError {
    /// A scenario parameter out of range.
    #[error("scenario {field} = {value} is invalid: expected {expected}")]
    Scenario {
        /// Which parameter.
        field: &'static str,
        /// The value given.
        value: f64,
        /// The allowed range.
        expected: &'static str,
    },
    /// A statistic rejected its input.
    #[error("statistics: {0}")]
    Stats(#[from] StatsError),
    /// The gate rejected its input.
    #[error("gate: {0}")]
    Gate(#[from] GateError),
}

/// Probabilities of the four outcomes of one paired binary item.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Cells {
    /// Both right.
    pub both: f64,
    /// Teacher right, student wrong.
    pub teacher_only: f64,
    /// Student right, teacher wrong.
    pub student_only: f64,
    /// Both wrong.
    pub neither: f64,
}

impl Cells {
    /// Cells with teacher accuracy `p_T`, retention `R` (so `p_S = R p_T`)
    /// and `agreement` in [0, 1]: the outcome correlation φ as a fraction of
    /// the largest φ these margins allow (0: independent, 1: the student is
    /// right only where the teacher is, or the reverse when `R > 1`).
    pub fn from_retention(
        teacher_accuracy: f64,
        retention: f64,
        agreement: f64,
    ) -> Result<Self, CalibrationError> {
        let (pt, ps) = (teacher_accuracy, teacher_accuracy * retention);
        check("teacher accuracy", pt, pt > 0.0 && pt < 1.0, "in (0, 1)")?;
        check(
            "retention",
            retention,
            ps > 0.0 && ps < 1.0,
            "with 0 < R p_T < 1",
        )?;
        check(
            "agreement",
            agreement,
            (0.0..=1.0).contains(&agreement),
            "in [0, 1]",
        )?;
        let both = pt * ps + agreement * (pt.min(ps) - pt * ps);
        Self::from_both(pt, ps, both)
    }

    /// Cells with teacher accuracy `p_T`, student accuracy `p_S` and
    /// discordance `d` = P(exactly one is right).
    pub fn from_rates(
        teacher_accuracy: f64,
        student_accuracy: f64,
        discordance: f64,
    ) -> Result<Self, CalibrationError> {
        let (pt, ps) = (teacher_accuracy, student_accuracy);
        check("teacher accuracy", pt, pt > 0.0 && pt < 1.0, "in (0, 1)")?;
        check(
            "student accuracy",
            ps,
            (0.0..=1.0).contains(&ps),
            "in [0, 1]",
        )?;
        Self::from_both(pt, ps, (pt + ps - discordance) / 2.0)
    }

    fn from_both(pt: f64, ps: f64, both: f64) -> Result<Self, CalibrationError> {
        let cells = Cells {
            both,
            teacher_only: pt - both,
            student_only: ps - both,
            neither: 1.0 - pt - ps + both,
        };
        let tol = -1e-12;
        if [
            cells.both,
            cells.teacher_only,
            cells.student_only,
            cells.neither,
        ]
        .iter()
        .any(|&p| p < tol || p.is_nan())
        {
            return Err(CalibrationError::Scenario {
                field: "discordance",
                value: cells.teacher_only + cells.student_only,
                expected: "a joint distribution with non-negative cells",
            });
        }
        Ok(cells)
    }

    /// Teacher accuracy.
    pub fn teacher_accuracy(&self) -> f64 {
        self.both + self.teacher_only
    }

    /// Student accuracy.
    pub fn student_accuracy(&self) -> f64 {
        self.both + self.student_only
    }

    /// True retention `p_S / p_T`.
    pub fn retention(&self) -> f64 {
        self.student_accuracy() / self.teacher_accuracy()
    }

    /// P(exactly one model is right).
    pub fn discordance(&self) -> f64 {
        self.teacher_only + self.student_only
    }

    /// Correlation φ of the two outcomes.
    pub fn correlation(&self) -> f64 {
        let (pt, ps) = (self.teacher_accuracy(), self.student_accuracy());
        let sd = (pt * (1.0 - pt) * ps * (1.0 - ps)).sqrt();
        if sd > 0.0 {
            (self.both - pt * ps) / sd
        } else {
            0.0
        }
    }

    /// Draws one item: (teacher score, student score).
    pub fn draw(&self, rng: &mut ChaCha8Rng) -> (f64, f64) {
        let u = (rng.next_u64() >> 11) as f64 / (1u64 << 53) as f64;
        if u < self.both {
            (1.0, 1.0)
        } else if u < self.both + self.teacher_only {
            (1.0, 0.0)
        } else if u < self.both + self.teacher_only + self.student_only {
            (0.0, 1.0)
        } else {
            (0.0, 0.0)
        }
    }
}

fn check(
    field: &'static str,
    value: f64,
    ok: bool,
    expected: &'static str,
) -> Result<(), CalibrationError> {
    if ok && value.is_finite() {
        Ok(())
    } else {
        Err(CalibrationError::Scenario {
            field,
            value,
            expected,
        })
    }
}

/// One simulated setting: suite size, true outcome distribution, and the
/// retention threshold the gate applies.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Scenario {
    /// Paired items per simulated suite.
    pub n: usize,
    /// The true outcome distribution.
    pub cells: Cells,
    /// The gate's `min_retention`. For calibration it equals the true
    /// retention; for power checks it lies below it.
    pub threshold: f64,
}

impl Scenario {
    /// A calibration scenario: threshold at the true retention.
    pub fn at_threshold(n: usize, cells: Cells) -> Self {
        Scenario {
            n,
            cells,
            threshold: cells.retention(),
        }
    }
}

/// How to simulate.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SimulationOptions {
    /// Simulated suites per scenario.
    pub simulations: u32,
    /// Bootstrap resamples per simulated suite (bootstrap methods only).
    pub resamples: u32,
    /// Confidence of the intervals and the gate.
    pub confidence: f64,
    /// The gate's minimum number of teacher-correct items.
    pub min_teacher_correct: u64,
    /// Seed of the simulated data (each scenario derives its own stream).
    pub seed: u64,
    /// Methods to evaluate, on the same simulated data.
    pub methods: Vec<IntervalMethod>,
}

impl Default for SimulationOptions {
    fn default() -> Self {
        Self {
            simulations: 2000,
            resamples: 1000,
            confidence: 0.95,
            min_teacher_correct: gate::DEFAULT_MIN_TEACHER_CORRECT,
            seed: 2026,
            methods: IntervalMethod::ALL.to_vec(),
        }
    }
}

/// What the simulation measured for one method in one scenario.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct MethodResult {
    /// The interval method.
    pub method: IntervalMethod,
    /// Simulations in which retention was measurable.
    pub measured: u32,
    /// Share of measured two-sided intervals containing the true retention.
    pub coverage: f64,
    /// Share of measured one-sided lower bounds at or below the true retention.
    pub lower_coverage: f64,
    /// Share of all simulations the gate called PASS.
    pub pass_rate: f64,
}

/// Results of one scenario.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ScenarioResult {
    /// The scenario.
    pub scenario: Scenario,
    /// Simulations run.
    pub simulations: u32,
    /// One entry per method, in the order asked.
    pub methods: Vec<MethodResult>,
}

impl ScenarioResult {
    /// The result of `method`, if it was evaluated.
    pub fn method(&self, method: IntervalMethod) -> Option<&MethodResult> {
        self.methods.iter().find(|m| m.method == method)
    }
}

/// Monte Carlo standard error of a share `p` estimated from `sims` runs.
pub fn monte_carlo_se(p: f64, sims: u32) -> f64 {
    (p * (1.0 - p) / f64::from(sims.max(1))).sqrt()
}

/// Simulates one scenario (see the module docs). `stream` selects the
/// scenario's random stream, so scenarios run in any order give the same
/// numbers.
pub fn simulate(
    scenario: &Scenario,
    opts: &SimulationOptions,
    stream: u64,
) -> Result<ScenarioResult, CalibrationError> {
    check(
        "threshold",
        scenario.threshold,
        scenario.threshold > 0.0,
        "a finite number > 0",
    )?;
    let truth = scenario.cells.retention();
    let mut rng = ChaCha8Rng::seed_from_u64(opts.seed);
    rng.set_stream(stream);
    let mut thresholds = GateThresholds::new(scenario.threshold);
    thresholds.confidence = opts.confidence;
    thresholds.min_teacher_correct = opts.min_teacher_correct;
    let mut counts = vec![[0u32; 4]; opts.methods.len()];
    let mut teacher = vec![0.0; scenario.n];
    let mut student = vec![0.0; scenario.n];
    for sim in 0..opts.simulations {
        for (t, s) in teacher.iter_mut().zip(student.iter_mut()) {
            (*t, *s) = scenario.cells.draw(&mut rng);
        }
        let bootstrap = BootstrapOptions {
            resamples: opts.resamples,
            seed: u64::from(sim),
            confidence: opts.confidence,
        };
        for (method, count) in opts.methods.iter().zip(counts.iter_mut()) {
            let retention = retention_estimate(&teacher, &student, None, *method, &bootstrap)?;
            if let Some(e) = retention.measured()
                && e.teacher_correct >= opts.min_teacher_correct as f64
            {
                count[0] += 1;
                count[1] += u32::from(e.interval.contains(truth));
                count[2] += u32::from(e.lower_bound <= truth);
            }
            let input = GateInput::retention_only(retention);
            count[3] +=
                u32::from(gate::decide_verdict(&thresholds, &input)?.verdict == Verdict::Pass);
        }
    }
    let share = |k: u32, of: u32| {
        if of == 0 {
            0.0
        } else {
            f64::from(k) / f64::from(of)
        }
    };
    Ok(ScenarioResult {
        scenario: *scenario,
        simulations: opts.simulations,
        methods: opts
            .methods
            .iter()
            .zip(&counts)
            .map(|(&method, c)| MethodResult {
                method,
                measured: c[0],
                coverage: share(c[1], c[0]),
                lower_coverage: share(c[2], c[0]),
                pass_rate: share(c[3], opts.simulations),
            })
            .collect(),
    })
}

/// Simulates every scenario on up to `threads` threads; results in input order.
pub fn simulate_all(
    scenarios: &[Scenario],
    opts: &SimulationOptions,
    threads: usize,
) -> Result<Vec<ScenarioResult>, CalibrationError> {
    use std::sync::Mutex;
    use std::sync::atomic::{AtomicUsize, Ordering};
    let next = AtomicUsize::new(0);
    let results: Mutex<Vec<Option<Result<ScenarioResult, CalibrationError>>>> =
        Mutex::new((0..scenarios.len()).map(|_| None).collect());
    std::thread::scope(|scope| {
        for _ in 0..threads.max(1).min(scenarios.len()) {
            scope.spawn(|| {
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let Some(s) = scenarios.get(i) else { break };
                    let r = simulate(s, opts, i as u64);
                    if let Ok(mut all) = results.lock()
                        && let Some(slot) = all.get_mut(i)
                    {
                        *slot = Some(r);
                    }
                }
            });
        }
    });
    let results = results.into_inner().unwrap_or_default();
    results
        .into_iter()
        .zip(scenarios)
        .enumerate()
        .map(|(i, (r, s))| r.unwrap_or_else(|| simulate(s, opts, i as u64)))
        .collect()
}

/// The grid of docs/calibration.md: `n` from 50 to 2,000; teacher accuracy
/// 0.3, 0.7 and 0.95; weak (0.2) and strong (0.9) agreement; true retention
/// 0.95 (the default threshold).
pub fn full_grid() -> Result<Vec<Scenario>, CalibrationError> {
    let mut out = Vec::new();
    for pt in [0.3, 0.7, 0.95] {
        for agreement in [0.2, 0.9] {
            let cells = Cells::from_retention(pt, 0.95, agreement)?;
            for n in [50, 100, 200, 500, 1000, 2000] {
                out.push(Scenario::at_threshold(n, cells));
            }
        }
    }
    Ok(out)
}

/// The results as a markdown table: one row per scenario, coverage of the
/// two-sided interval / of the one-sided bound / PASS rate per method, in percent.
pub fn markdown_table(results: &[ScenarioResult]) -> String {
    let methods: Vec<IntervalMethod> = results
        .first()
        .map(|r| r.methods.iter().map(|m| m.method).collect())
        .unwrap_or_default();
    let mut out = String::from("| n | p_T | R | φ | discordance |");
    for m in &methods {
        out.push_str(&format!(" {m}: coverage / lower / PASS % |"));
    }
    out.push_str("\n|---:|---:|---:|---:|---:|");
    out.push_str(&"---|".repeat(methods.len()));
    out.push('\n');
    for r in results {
        let c = &r.scenario.cells;
        out.push_str(&format!(
            "| {} | {} | {:.3} | {:.2} | {:.3} |",
            r.scenario.n,
            c.teacher_accuracy(),
            r.scenario.threshold,
            c.correlation(),
            c.discordance()
        ));
        for m in &r.methods {
            out.push_str(&format!(
                " {:.1} / {:.1} / {:.1} |",
                100.0 * m.coverage,
                100.0 * m.lower_coverage,
                100.0 * m.pass_rate
            ));
        }
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cells_have_the_asked_margins_and_correlation() {
        let c = Cells::from_retention(0.7, 0.95, 0.0).unwrap();
        assert!((c.teacher_accuracy() - 0.7).abs() < 1e-15);
        assert!((c.retention() - 0.95).abs() < 1e-12);
        assert!(c.correlation().abs() < 1e-12);
        // Full agreement: the student is right only where the teacher is.
        let c = Cells::from_retention(0.7, 0.95, 1.0).unwrap();
        assert!(c.student_only.abs() < 1e-15);
        assert!((c.discordance() - (0.7 - 0.665)).abs() < 1e-12);
        let c = Cells::from_rates(0.9, 0.88, 0.06).unwrap();
        assert!((c.teacher_only - 0.04).abs() < 1e-12 && (c.student_only - 0.02).abs() < 1e-12);
        assert!(Cells::from_rates(0.9, 0.5, 0.1).is_err());
        assert!(Cells::from_retention(0.9, 1.2, 0.5).is_err());
        assert!(Cells::from_retention(0.0, 0.9, 0.5).is_err());
    }

    #[test]
    fn draws_follow_the_cells() {
        // Chi-square over the 4 cells, 3 degrees of freedom:
        // P(χ² > 16.27) = 0.001 (scipy `chi2.isf(0.001, 3)`).
        let c = Cells::from_retention(0.7, 0.95, 0.5).unwrap();
        let mut rng = ChaCha8Rng::seed_from_u64(3);
        let mut k = [0u32; 4];
        let draws = 100_000;
        for _ in 0..draws {
            let (t, s) = c.draw(&mut rng);
            k[usize::from(t == 0.0) * 2 + usize::from(s == 0.0)] += 1;
        }
        let p = [c.both, c.teacher_only, c.student_only, c.neither];
        let chi2: f64 = k
            .iter()
            .zip(p)
            .map(|(&o, p)| {
                let e = p * f64::from(draws);
                (f64::from(o) - e).powi(2) / e
            })
            .sum();
        assert!(chi2 < 16.27, "{k:?} {chi2}");
    }

    #[test]
    fn parallel_and_serial_runs_agree() {
        let cells = Cells::from_retention(0.7, 0.95, 0.5).unwrap();
        let scenarios = [
            Scenario::at_threshold(60, cells),
            Scenario::at_threshold(80, cells),
        ];
        let opts = SimulationOptions {
            simulations: 50,
            resamples: 100,
            ..SimulationOptions::default()
        };
        let par = simulate_all(&scenarios, &opts, 2).unwrap();
        let ser = simulate_all(&scenarios, &opts, 1).unwrap();
        assert_eq!(par, ser);
        let table = markdown_table(&par);
        assert_eq!(table.lines().count(), 4, "{table}");
        assert!(table.contains("| 60 | 0.7 | 0.950 |"), "{table}");
    }
}
