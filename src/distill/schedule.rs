//! Learning-rate schedule: linear warmup, then cosine decay to a floor.

use serde::{Deserialize, Serialize};

/// Linear warmup from `peak / warmup` to `peak` over the first `warmup`
/// steps, then a half cosine from `peak` down to `min` at the last step.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct LrSchedule {
    /// Learning rate at the end of warmup.
    pub peak: f64,
    /// Learning rate at the last step.
    pub min: f64,
    /// Number of warmup steps.
    pub warmup: usize,
    /// Total number of optimizer steps.
    pub total: usize,
}

impl LrSchedule {
    /// The learning rate of optimizer step `step` (0-based).
    ///
    /// Warmup: `peak * (step + 1) / warmup` for `step < warmup`. Then, with
    /// `t = (step - warmup) / (total - warmup - 1)` clamped to `[0, 1]`,
    /// `min + (peak - min) * (1 + cos(pi * t)) / 2`, so the first step after
    /// warmup uses `peak` and the last step uses `min`.
    pub fn lr(&self, step: usize) -> f64 {
        if step < self.warmup {
            return self.peak * (step + 1) as f64 / self.warmup as f64;
        }
        let decay_steps = self.total.saturating_sub(self.warmup + 1);
        let t = if decay_steps == 0 {
            0.0
        } else {
            ((step - self.warmup) as f64 / decay_steps as f64).min(1.0)
        };
        self.min + (self.peak - self.min) * 0.5 * (1.0 + (std::f64::consts::PI * t).cos())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() < 1e-12
    }

    #[test]
    fn warmup_then_cosine_matches_hand_computed_values() {
        let s = LrSchedule {
            peak: 1e-3,
            min: 1e-4,
            warmup: 4,
            total: 14,
        };
        // Warmup: 1e-3 * k / 4 for k = 1..4.
        assert!(close(s.lr(0), 2.5e-4));
        assert!(close(s.lr(1), 5.0e-4));
        assert!(close(s.lr(3), 1.0e-3));
        // Decay over steps 4..=13, t = (step - 4) / 9.
        assert!(close(s.lr(4), 1.0e-3));
        // t = 1/3: cos(pi/3) = 0.5 -> 1e-4 + 9e-4 * 0.75 = 7.75e-4.
        assert!(close(s.lr(7), 7.75e-4));
        // t = 4/9: cos(4pi/9) = 0.17364817766693041 (Python math.cos)
        // -> 1e-4 + 9e-4 * 0.5 * 1.17364817766693041.
        assert!(close(s.lr(8), 6.281416799501188e-4));
        // t = 2/3: cos(2pi/3) = -0.5 -> 1e-4 + 9e-4 * 0.25 = 3.25e-4.
        assert!(close(s.lr(10), 3.25e-4));
        assert!(close(s.lr(13), 1.0e-4));
        // Past the end it stays at the floor.
        assert!(close(s.lr(20), 1.0e-4));
    }

    #[test]
    fn degenerate_schedules_stay_finite() {
        let no_warmup = LrSchedule {
            peak: 0.01,
            min: 0.0,
            warmup: 0,
            total: 3,
        };
        // t = 0, 1/2, 1.
        assert!(close(no_warmup.lr(0), 0.01));
        assert!(close(no_warmup.lr(1), 0.005));
        assert!(close(no_warmup.lr(2), 0.0));
        let one_step = LrSchedule {
            peak: 0.01,
            min: 0.001,
            warmup: 0,
            total: 1,
        };
        assert!(close(one_step.lr(0), 0.01));
    }
}
