//! McNemar's exact test on paired pass/fail outcomes.
//!
//! Of the `b + c` discordant items (exactly one model right), under the null
//! hypothesis of equal accuracy each is equally likely to favour either
//! model, so `b ~ Binomial(b + c, 1/2)`. The two-sided exact p-value is
//! `min(1, 2 · P(X <= min(b, c)))` (the exact form of McNemar's test, as in
//! `statsmodels.stats.contingency_tables.mcnemar(exact=True)`).

use serde::{Deserialize, Serialize};
use statrs::distribution::{Binomial, DiscreteCDF};

use super::StatsError;

/// The 2×2 table of paired outcomes and the exact McNemar test.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct McNemar {
    /// Number of paired items.
    pub n: u64,
    /// Items both models got right.
    pub both_correct: u64,
    /// `b`: items only the teacher got right.
    pub teacher_only: u64,
    /// `c`: items only the student got right.
    pub student_only: u64,
    /// Items both models got wrong.
    pub both_wrong: u64,
    /// Share of items on which the two models agree, `(n - b - c) / n`.
    pub agreement_rate: f64,
    /// Two-sided exact p-value; 1 when there are no discordant items.
    pub p_value: f64,
}

/// Exact McNemar test on paired pass/fail outcomes (`true` = correct).
///
/// Errors on mismatched lengths or empty input.
pub fn mcnemar_exact(teacher: &[bool], student: &[bool]) -> Result<McNemar, StatsError> {
    if teacher.len() != student.len() {
        return Err(StatsError::LengthMismatch {
            teacher: teacher.len(),
            student: student.len(),
        });
    }
    if teacher.is_empty() {
        return Err(StatsError::Empty { what: "McNemar" });
    }
    let mut cells = [0u64; 4];
    for (&t, &s) in teacher.iter().zip(student) {
        cells[usize::from(t) * 2 + usize::from(s)] += 1;
    }
    let [both_wrong, student_only, teacher_only, both_correct] = cells;
    let discordant = teacher_only + student_only;
    let p_value = if discordant == 0 {
        1.0
    } else {
        let bin = Binomial::new(0.5, discordant).map_err(|e| StatsError::Distribution {
            distribution: "binomial",
            detail: e.to_string(),
        })?;
        (2.0 * bin.cdf(teacher_only.min(student_only))).min(1.0)
    };
    let n = teacher.len() as u64;
    Ok(McNemar {
        n,
        both_correct,
        teacher_only,
        student_only,
        both_wrong,
        agreement_rate: (both_correct + both_wrong) as f64 / n as f64,
        p_value,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Paired outcomes with the given cell counts.
    fn table(both: usize, t_only: usize, s_only: usize, neither: usize) -> (Vec<bool>, Vec<bool>) {
        let mut t = Vec::new();
        let mut s = Vec::new();
        for (count, tv, sv) in [
            (both, true, true),
            (t_only, true, false),
            (s_only, false, true),
            (neither, false, false),
        ] {
            t.extend(std::iter::repeat_n(tv, count));
            s.extend(std::iter::repeat_n(sv, count));
        }
        (t, s)
    }

    #[test]
    fn p_values_match_statsmodels_and_scipy() {
        // (a, b, c, d, p): p from statsmodels 0.15.0
        // `mcnemar(np.array([[a, b], [c, d]]), exact=True).pvalue`, equal to scipy 1.17.1
        // `binomtest(min(b, c), b + c, 0.5).pvalue` in every case
        // (tests/reference/stats_reference.py). b = teacher only, c = student only.
        let cases = [
            (50, 10, 3, 37, 0.09228515625),
            (20, 0, 5, 0, 0.0625),
            (10, 25, 25, 40, 1.0),
            (3, 1, 0, 2, 1.0),
            (0, 480, 400, 120, 0.007707305043339153),
            (100, 40, 12, 8, 0.0001275387838557407),
        ];
        for (a, b, c, d, p) in cases {
            let (t, s) = table(a, b, c, d);
            let m = mcnemar_exact(&t, &s).unwrap();
            assert_eq!(
                (m.both_correct, m.teacher_only, m.student_only, m.both_wrong),
                (a as u64, b as u64, c as u64, d as u64)
            );
            assert!(
                (m.p_value - p).abs() <= 1e-12 * p.max(1e-300) + 1e-15,
                "{a} {b} {c} {d}: {} vs {p}",
                m.p_value
            );
            let n = (a + b + c + d) as f64;
            assert!((m.agreement_rate - (a + d) as f64 / n).abs() < 1e-15);
        }
    }

    #[test]
    fn no_discordant_pairs_gives_p_one() {
        let (t, s) = table(5, 0, 0, 3);
        let m = mcnemar_exact(&t, &s).unwrap();
        assert_eq!(m.p_value, 1.0);
        assert_eq!(m.agreement_rate, 1.0);
    }

    #[test]
    fn invalid_inputs_are_errors() {
        assert!(matches!(
            mcnemar_exact(&[true], &[true, false]),
            Err(StatsError::LengthMismatch {
                teacher: 1,
                student: 2
            })
        ));
        assert!(matches!(
            mcnemar_exact(&[], &[]),
            Err(StatsError::Empty { .. })
        ));
    }
}
