//! `distill-gate plan` and the items needed of INCONCLUSIVE gates, checked
//! by simulating the gate itself: at the planned size, the real estimate and
//! the real verdict rule ([`distill_gate::gate::decide_verdict`], the verdict
//! of `decide` without its own items calculation) must pass (or decide)
//! with the stated probability.
//!
//! The fast checks run in CI (about 4 s in release mode); the longer sweep
//! (about 25 s) is ignored by default:
//!
//! ```sh
//! cargo test --release --test plan -- --ignored
//! ```

use std::process::Command;

use distill_gate::calibration::{Cells, Scenario, SimulationOptions, monte_carlo_se, simulate};
use distill_gate::gate::{self, GateInput, GateThresholds, Verdict};
use distill_gate::plan::{PlanInput, plan};
use distill_gate::stats::{
    BootstrapOptions, CellShares, Goal, IntervalMethod, PairedCells, RetentionRule, items_to_add,
    retention_estimate, verdict_odds,
};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

fn input(pt: f64, r: f64, d: f64, t: f64, c: f64, power: f64) -> PlanInput {
    PlanInput {
        teacher_accuracy: pt,
        retention: r,
        disagreement: d,
        threshold: t,
        confidence: c,
        power,
        min_teacher_correct: 10,
        method: IntervalMethod::Score,
    }
}

#[test]
fn the_normal_approximation_matches_statsmodels() {
    // statsmodels 0.15.0 `NormalIndPower().solve_power(effect_size=δ/σ_D, alpha=1-c,
    // power=pw, ratio=0, alternative="larger")` with δ = p_S - t p_T and
    // σ_D² = Var(S) + t² Var(T) - 2 t Cov(S, T) of the binary table
    // (tests/reference/calibration_reference.py); the plan reports its ceiling.
    for (i, want) in [
        (input(0.8, 0.98, 0.1, 0.95, 0.95, 0.8), PLAN_REF[0]),
        (input(0.5, 1.0, 0.2, 0.9, 0.95, 0.9), PLAN_REF[1]),
        (input(0.9, 0.99, 0.05, 0.95, 0.99, 0.8), PLAN_REF[2]),
    ] {
        let p = plan(&i).unwrap();
        assert_eq!(p.normal_approximation, Some(want.ceil() as u64), "{i:?}");
    }
}
const PLAN_REF: [f64; 3] = [1026.3903693669697, 625.1608565725754, 371.73572605046087];

/// Simulated suites per setting in the fast check.
const SIMS: u32 = 500;

/// The tolerance of a simulated share against the exact probability `p`:
/// three Monte Carlo standard errors plus one point for the tails the
/// exact sum leaves out and the bisection's float boundary.
fn tolerance(p: f64, sims: u32) -> f64 {
    3.0 * monte_carlo_se(p, sims) + 0.01
}

/// Plans `i`, simulates the gate `sims` times at the planned size and
/// checks the pass rate against the plan's exact probability (itself at
/// least the wanted power and, as the smallest size reaching it, at most
/// `overshoot` above it). Returns the planned size.
fn check_plan(i: &PlanInput, sims: u32, stream: u64, overshoot: f64) -> usize {
    let p = plan(i).unwrap();
    let n = p.items.unwrap_or_else(|| panic!("no plan for {i:?}")) as usize;
    let probability = p.probability.expect("an exact plan");
    assert!(
        probability >= i.power && probability <= i.power + overshoot,
        "{i:?}: n = {n}, probability {probability}"
    );
    // The smallest such size: one item fewer falls short.
    let rule = RetentionRule {
        threshold: i.threshold,
        confidence: i.confidence,
        min_teacher_correct: i.min_teacher_correct,
        method: i.method,
    };
    let shares = CellShares::from_rates(
        i.teacher_accuracy,
        i.teacher_accuracy * i.retention,
        i.disagreement,
    )
    .unwrap();
    let fewer = verdict_odds(&rule, &PairedCells::default(), &shares, n as u64 - 1)
        .unwrap()
        .unwrap();
    assert!(fewer.pass < i.power, "{i:?}: n - 1 = {}: {fewer:?}", n - 1);
    let cells = Cells::from_rates(
        i.teacher_accuracy,
        i.teacher_accuracy * i.retention,
        i.disagreement,
    )
    .unwrap();
    let opts = SimulationOptions {
        simulations: sims,
        methods: vec![i.method],
        confidence: i.confidence,
        min_teacher_correct: i.min_teacher_correct,
        seed: 18,
        ..SimulationOptions::default()
    };
    let scenario = Scenario {
        n,
        cells,
        threshold: i.threshold,
    };
    let rate = simulate(&scenario, &opts, stream).unwrap().methods[0].pass_rate;
    assert!(
        (rate - probability).abs() <= tolerance(probability, sims),
        "{i:?}: n = {n}: simulated PASS rate {rate}, planned {probability}"
    );
    n
}

#[test]
fn planned_sizes_pass_with_the_stated_power_from_tiny_to_large_suites() {
    // (teacher accuracy, retention, disagreement, threshold), the default
    // gate (score interval, confidence 0.95, min_teacher_correct 10, power
    // 0.8). Small suites have few possible tables, so the probability at
    // the smallest size reaching 80% can overshoot it by a step: at most 8
    // points here.
    let settings = [
        (0.9, 1.0, 0.0, 0.8),   // tiny: 11 items right for both suffice
        (0.1, 1.0, 0.02, 0.7),  // the min_teacher_correct floor decides
        (0.8, 1.0, 0.0, 0.95),  // issue 18: the old plan said 2 items
        (0.3, 1.0, 0.06, 0.9),  // a weak teacher
        (0.8, 0.98, 0.1, 0.95), // about a thousand items
    ];
    let mut sizes = Vec::new();
    for (k, (pt, r, d, t)) in settings.into_iter().enumerate() {
        let i = input(pt, r, d, t, 0.95, 0.8);
        sizes.push(check_plan(&i, SIMS, k as u64, 0.08));
    }
    // The grid spans tiny to large suites.
    assert!(sizes.iter().any(|&n| n <= 20), "{sizes:?}");
    assert!(sizes.iter().any(|&n| n >= 900), "{sizes:?}");
    // The issue's example: 80% of 68 items right for both, and 52 of them
    // needed (module `stats::power`); the normal approximation said 2.
    let p = plan(&input(0.8, 1.0, 0.0, 0.95, 0.95, 0.8)).unwrap();
    assert_eq!((p.items, p.normal_approximation), (Some(68), Some(2)));
}

#[test]
fn the_plan_uses_the_configured_interval_and_floor() {
    // Fieller's interval has no null variance: with no disagreement its
    // bound is 1 on any suite, so only the floor (10 teacher-right items)
    // holds it back.
    let mut i = input(0.8, 1.0, 0.0, 0.95, 0.95, 0.8);
    i.method = IntervalMethod::Fieller;
    let n = check_plan(&i, SIMS, 10, 0.08);
    assert!((12..=16).contains(&n), "{n}");
    // A higher floor takes more items.
    i.min_teacher_correct = 40;
    let m = check_plan(&i, SIMS, 11, 0.08);
    assert!(m > 50 && m < 60, "{m}");
}

/// The share of `sims` suites, each the `current` items plus `more` drawn
/// from `shares`, that the real gate decides (PASS or FAIL).
fn simulated_decided(
    rule: &RetentionRule,
    current: &PairedCells,
    shares: &CellShares,
    more: u64,
    sims: u32,
    seed: u64,
) -> f64 {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut th = GateThresholds::new(rule.threshold);
    th.confidence = rule.confidence;
    th.min_teacher_correct = rule.min_teacher_correct;
    let opts = BootstrapOptions {
        confidence: rule.confidence,
        resamples: 1000,
        ..BootstrapOptions::default()
    };
    let cells = Cells {
        both: shares.both,
        teacher_only: shares.teacher_only,
        student_only: shares.student_only,
        neither: shares.neither,
    };
    let mut decided = 0;
    for _ in 0..sims {
        let mut t = Vec::new();
        let mut s = Vec::new();
        let mut push = |count: u64, tv: f64, sv: f64| {
            for _ in 0..count {
                t.push(tv);
                s.push(sv);
            }
        };
        push(current.both, 1.0, 1.0);
        push(current.teacher_only, 1.0, 0.0);
        push(current.student_only, 0.0, 1.0);
        push(current.neither, 0.0, 0.0);
        for _ in 0..more {
            let (tv, sv) = cells.draw(&mut rng);
            push(1, tv, sv);
        }
        let retention = retention_estimate(&t, &s, None, rule.method, &opts).unwrap();
        let input = GateInput::retention_only(retention);
        if gate::decide_verdict(&th, &input).unwrap().verdict != Verdict::Inconclusive {
            decided += 1;
        }
    }
    f64::from(decided) / f64::from(sims)
}

/// Items an INCONCLUSIVE run needs: decides with the stated probability
/// when that many items, drawn at the observed rates, are added.
fn check_more(current: PairedCells, rule: RetentionRule, sims: u32, seed: u64) -> u64 {
    let shares = CellShares::observed(&current).unwrap();
    let more = items_to_add(&rule, &current, &shares, 0.8, Goal::Decide)
        .unwrap()
        .unwrap();
    assert_eq!(more.total, current.n() + more.more);
    let probability = more.probability.expect("exact");
    let rate = simulated_decided(&rule, &current, &shares, more.more, sims, seed);
    assert!(
        (rate - probability).abs() <= tolerance(probability, sims),
        "{current:?}: {} more: decided in {rate} of simulations, stated {probability}",
        more.more
    );
    more.more
}

#[test]
fn items_to_add_to_an_inconclusive_run_decide_it_with_the_stated_power() {
    let rule = RetentionRule {
        threshold: 0.95,
        confidence: 0.95,
        min_teacher_correct: 10,
        method: IntervalMethod::Score,
    };
    // Issue 18: an 8-item run was told one more item would decide it.
    let eight = PairedCells {
        both: 7,
        teacher_only: 0,
        student_only: 0,
        neither: 1,
    };
    let more = check_more(eight, rule, SIMS, 1);
    assert!(more > 40, "{more}");
    // Below the floor with a worse student: more items decide it (a FAIL).
    check_more(
        PairedCells {
            both: 5,
            teacher_only: 2,
            student_only: 0,
            neither: 1,
        },
        rule,
        SIMS,
        2,
    );
    // Above the floor, point above the threshold, lower bound below.
    check_more(
        PairedCells {
            both: 100,
            teacher_only: 2,
            student_only: 3,
            neither: 15,
        },
        rule,
        SIMS,
        3,
    );
}

#[test]
fn plan_command_prints_the_exact_total() {
    let out = Command::new(env!("CARGO_BIN_EXE_distill-gate"))
        .args([
            "plan",
            "--teacher-accuracy",
            "0.8",
            "--retention",
            "1",
            "--disagreement",
            "0",
        ])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{text}");
    assert!(
        text.contains(
            "68 paired items in total (a fresh suite) PASS with probability at least 80%"
        ),
        "{text}"
    );
    assert!(
        text.contains("score interval, at least 10 teacher-right items"),
        "{text}"
    );
}

/// The longer sweep: more settings, both analytic methods, powers 0.5 to
/// 0.9, 2,000 suites each. Tiny suites have few possible tables, so the
/// probability at the smallest size reaching the power can overshoot it by
/// a large step (12 items at teacher accuracy 0.9 give 66% where 11 give
/// 31%): only the simulation and the minimality are checked here.
#[test]
#[ignore]
fn sweep_of_planned_sizes() {
    let mut stream = 100;
    for method in [IntervalMethod::Score, IntervalMethod::Fieller] {
        for (pt, r, d, t) in [
            (0.9, 1.0, 0.0, 0.8),
            (0.95, 1.0, 0.05, 0.9),
            (0.1, 1.0, 0.02, 0.7),
            (0.5, 1.0, 0.2, 0.9),
            (0.8, 1.0, 0.0, 0.95),
            (0.3, 1.0, 0.06, 0.9),
            (0.7, 0.99, 0.08, 0.9),
            (0.8, 0.98, 0.1, 0.95),
        ] {
            for power in [0.5, 0.8, 0.9] {
                let mut i = input(pt, r, d, t, 0.95, power);
                i.method = method;
                stream += 1;
                check_plan(&i, 2000, stream, 1.0);
            }
        }
    }
}
