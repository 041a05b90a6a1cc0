//! Numbers formatted for people. Display only: nothing formatted here is
//! ever compared with anything.

use crate::summary::Interval;

/// The text of a number that is not there.
pub(crate) const MISSING: &str = "—";

/// `f(x)`, or [`MISSING`] without a value.
pub(crate) fn opt(x: Option<f64>, f: fn(f64) -> String) -> String {
    x.map_or_else(|| MISSING.to_string(), f)
}

/// The text for NaN and infinities, or `None` for a finite number.
fn non_finite(x: f64) -> Option<String> {
    if x.is_nan() {
        Some("n/a".into())
    } else if x == f64::INFINITY {
        Some("∞".into())
    } else if x == f64::NEG_INFINITY {
        Some("-∞".into())
    } else {
        None
    }
}

/// `x` with `decimals` decimals, never a negative zero: `-0.0004` with
/// two decimals is `0.00`, not `-0.00`.
pub(crate) fn fixed(x: f64, decimals: usize) -> String {
    let text = format!("{x:.decimals$}");
    match text.strip_prefix('-') {
        Some(rest) if rest.chars().all(|c| c == '0' || c == '.') => rest.to_string(),
        _ => text,
    }
}

/// A fraction as a percentage with one decimal: `0.8204` -> `82.0%`.
pub(crate) fn percent(x: f64) -> String {
    non_finite(x).unwrap_or_else(|| format!("{}%", fixed(x * 100.0, 1)))
}

/// An interval of fractions as percentages: `[62.3%, 78.5%]`.
pub(crate) fn percent_interval(i: &Interval) -> String {
    format!("[{}, {}]", percent(i.lower), percent(i.upper))
}

/// A ratio with three decimals: `0.95123` -> `0.951`.
pub(crate) fn ratio(x: f64) -> String {
    non_finite(x).unwrap_or_else(|| fixed(x, 3))
}

/// An interval of ratios: `[0.902, 1.003]`.
pub(crate) fn ratio_interval(i: &Interval) -> String {
    format!("[{}, {}]", ratio(i.lower), ratio(i.upper))
}

/// A number with `digits` significant digits (p-values use 3): `0.031249` ->
/// `0.0312`; very small or very large numbers in scientific notation.
pub(crate) fn significant(x: f64, digits: u32) -> String {
    if let Some(s) = non_finite(x) {
        return s;
    }
    if x == 0.0 {
        return "0".into();
    }
    let digits = digits.max(1);
    let magnitude = x.abs().log10().floor() as i32;
    if magnitude < -4 || magnitude >= digits as i32 {
        return format!("{:.*e}", (digits - 1) as usize, x);
    }
    let decimals = (digits as i32 - 1 - magnitude).max(0) as usize;
    let text = fixed(x, decimals);
    // Rounding can carry into the next power of ten (0.09996 -> "0.1000"):
    // then one decimal fewer keeps `digits` significant digits.
    let carried = text
        .parse::<f64>()
        .is_ok_and(|r| r.abs() >= 10f64.powi(magnitude + 1));
    if carried && decimals > 0 {
        fixed(x, decimals - 1)
    } else {
        text
    }
}

/// A p-value with three significant digits.
pub(crate) fn p_value(p: f64) -> String {
    significant(p, 3)
}

/// Milliseconds with a precision that suits the size: `1.23 ms`, `45.6 ms`, `812 ms`.
pub(crate) fn millis(ms: f64) -> String {
    if let Some(s) = non_finite(ms) {
        return s;
    }
    let decimals = if ms.abs() < 10.0 {
        2
    } else if ms.abs() < 1000.0 {
        1
    } else {
        0
    };
    format!("{} ms", fixed(ms, decimals))
}

/// A model's dollars, marked `≈` when any of its token counts are
/// estimated (its server reported no usage; see `Summary::warnings`).
pub(crate) fn model_dollars(stats: &crate::summary::ModelStats, x: f64) -> String {
    if stats.estimated_usage > 0 {
        format!("≈{}", dollars(x))
    } else {
        dollars(x)
    }
}

/// Dollars: two decimals from one dollar up, three significant digits below.
pub(crate) fn dollars(x: f64) -> String {
    if let Some(s) = non_finite(x) {
        return s;
    }
    let sign = if x < 0.0 { "-" } else { "" };
    let a = x.abs();
    if a == 0.0 {
        "$0".into()
    } else if a >= 1.0 {
        format!("{sign}${a:.2}")
    } else {
        format!("{sign}${}", significant(a, 3))
    }
}

/// A speed-up factor: `4.21×`, `12.3×`.
pub(crate) fn factor(x: f64) -> String {
    if let Some(s) = non_finite(x) {
        return s;
    }
    format!("{}×", fixed(x, if x.abs() < 10.0 { 2 } else { 1 }))
}

/// Tokens per second with one decimal.
pub(crate) fn rate(x: f64) -> String {
    non_finite(x).unwrap_or_else(|| fixed(x, 1))
}

/// A confidence level as a percentage without trailing zeros: `0.95` -> `95%`, `0.975` -> `97.5%`.
pub(crate) fn confidence(c: f64) -> String {
    if let Some(s) = non_finite(c) {
        return s;
    }
    let text = format!("{:.2}", c * 100.0);
    let text = text.trim_end_matches('0').trim_end_matches('.');
    format!("{text}%")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn significant_digits() {
        assert_eq!(significant(0.031249, 3), "0.0312");
        assert_eq!(significant(1.0, 3), "1.00");
        assert_eq!(significant(0.5, 3), "0.500");
        assert_eq!(significant(0.12345, 3), "0.123");
        assert_eq!(significant(0.09996, 3), "0.100");
        assert_eq!(significant(0.0009996, 3), "0.00100");
        assert_eq!(significant(0.00001234, 3), "1.23e-5");
        assert_eq!(significant(123456.0, 3), "1.23e5");
        assert_eq!(significant(0.0, 3), "0");
        assert_eq!(significant(f64::NAN, 3), "n/a");
    }

    #[test]
    fn display_formats() {
        assert_eq!(percent(0.8204), "82.0%");
        assert_eq!(percent(1.0), "100.0%");
        assert_eq!(ratio(0.95149), "0.951");
        assert_eq!(ratio(f64::INFINITY), "∞");
        assert_eq!(
            percent_interval(&Interval {
                lower: 0.6234,
                upper: 0.785,
                confidence: None,
                method: None,
            }),
            "[62.3%, 78.5%]"
        );
        assert_eq!(millis(1.234), "1.23 ms");
        assert_eq!(millis(45.64), "45.6 ms");
        assert_eq!(millis(812.4), "812.4 ms");
        assert_eq!(millis(1812.4), "1812 ms");
        assert_eq!(dollars(3.4), "$3.40");
        assert_eq!(dollars(0.01234), "$0.0123");
        assert_eq!(dollars(-0.5), "-$0.500");
        assert_eq!(dollars(0.0), "$0");
        assert_eq!(factor(4.213), "4.21×");
        assert_eq!(factor(12.34), "12.3×");
        assert_eq!(confidence(0.95), "95%");
        assert_eq!(confidence(0.975), "97.5%");
        assert_eq!(confidence(0.9), "90%");
        // Never a negative zero.
        assert_eq!(millis(-0.0004), "0.00 ms");
        assert_eq!(percent(-0.00001), "0.0%");
        assert_eq!(ratio(-0.0001), "0.000");
        assert_eq!(millis(-12.34), "-12.3 ms");
        assert_eq!(fixed(-0.004, 2), "0.00");
        assert_eq!(fixed(-0.006, 2), "-0.01");
    }
}
