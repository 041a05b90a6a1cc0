//! `distill-gate plan`: sample sizes checked against statsmodels and by
//! simulation of the default gate.

use distill_gate::calibration::{Cells, Scenario, SimulationOptions, monte_carlo_se, simulate};
use distill_gate::plan::{PlanInput, plan};
use distill_gate::stats::IntervalMethod;

fn input(pt: f64, r: f64, d: f64, t: f64, c: f64, power: f64) -> PlanInput {
    PlanInput {
        teacher_accuracy: pt,
        retention: r,
        disagreement: d,
        threshold: t,
        confidence: c,
        power,
    }
}

#[test]
fn matches_statsmodels_normal_power() {
    // statsmodels 0.15.0 `NormalIndPower().solve_power(effect_size=δ/σ_D, alpha=1-c,
    // power=pw, ratio=0, alternative="larger")` with δ = p_S - t p_T and
    // σ_D² = Var(S) + t² Var(T) - 2 t Cov(S, T) of the binary table
    // (tests/reference/calibration_reference.py); the plan is its ceiling.
    for (i, want) in [
        (input(0.8, 0.98, 0.1, 0.95, 0.95, 0.8), PLAN_REF[0]),
        (input(0.5, 1.0, 0.2, 0.9, 0.95, 0.9), PLAN_REF[1]),
        (input(0.9, 0.99, 0.05, 0.95, 0.99, 0.8), PLAN_REF[2]),
    ] {
        let p = plan(&i).unwrap();
        assert_eq!(p.items, Some(want.ceil() as u64), "{i:?}");
    }
}
const PLAN_REF: [f64; 3] = [1026.3903693669697, 625.1608565725754, 371.73572605046087];

#[test]
fn simulated_power_at_the_planned_size_is_the_target() {
    // The default gate (score interval) at the planned n passes with
    // probability close to the planned 80%: the formula is a normal
    // approximation, so allow 3 Monte Carlo standard errors plus 3 points.
    let i = input(0.8, 0.98, 0.1, 0.95, 0.95, 0.8);
    let n = plan(&i).unwrap().items.unwrap() as usize;
    let cells = Cells::from_rates(0.8, 0.8 * 0.98, 0.1).unwrap();
    let opts = SimulationOptions {
        simulations: 1000,
        methods: vec![IntervalMethod::default()],
        seed: 5,
        ..SimulationOptions::default()
    };
    let scenario = Scenario {
        n,
        cells,
        threshold: 0.95,
    };
    let power = simulate(&scenario, &opts, 0).unwrap().methods[0].pass_rate;
    let tol = 3.0 * monte_carlo_se(0.8, opts.simulations) + 0.03;
    assert!(
        (power - 0.8).abs() < tol,
        "n = {n}: simulated power {power}"
    );
    // And at a quarter of the items the power is far lower.
    let quarter = Scenario {
        n: n / 4,
        ..scenario
    };
    let low = simulate(&quarter, &opts, 1).unwrap().methods[0].pass_rate;
    assert!(low < 0.5, "n = {}: {low}", n / 4);
}
