//! The words every human report uses for what the run computed: the
//! retention interval method and confidence taken from the run's own
//! settings (never a fixed "bootstrap" or "95%"), the mark on figures built
//! on latencies recorded earlier, and reasons with their numbers rounded
//! for people. Display only: nothing here is compared with anything.

use std::sync::LazyLock;

use regex::Regex;

use super::numbers::{confidence, significant};
use crate::gate::ClusterBy;
use crate::stats::IntervalMethod;
use crate::summary::Summary;

/// The mark on a latency or speedup built on latencies recorded earlier.
pub(crate) const RECORDED_MARK: &str = "*";

/// The footnote explaining [`RECORDED_MARK`] in a report of `summary`:
/// where its recorded latencies can come from, an answers file named only
/// when a model of the run read one.
pub(crate) fn recorded_note(summary: &Summary) -> String {
    let sources = if summary.reads_answers() {
        "replayed from a transcript, served from a response cache or given in an answers file"
    } else {
        "replayed from a transcript or served from a response cache"
    };
    format!(
        "built on latencies recorded earlier ({sources}), not measured in this run: they \
         reflect the runtime, machine and load of the recording, so a speedup against them can \
         be far off"
    )
}

/// The retention interval method of the run, for people:
/// "Fieller interval", "BCa paired bootstrap, 10,000 resamples", ...
pub(crate) fn retention_method(summary: &Summary) -> String {
    let st = &summary.statistics;
    let clustered = !matches!(st.clusters, ClusterBy::None);
    let method = method_name(st.interval, summary.bootstrap_resamples, clustered);
    match &st.clusters {
        ClusterBy::None => method,
        c => format!("{method}, clustered by {}", String::from(c.clone())),
    }
}

/// The interval method of the swap plan's lower bounds, for people: the
/// run's method on each category's items, which are not clustered there
/// (seed given for the bootstrap methods).
pub(crate) fn swap_method(summary: &Summary) -> String {
    let st = &summary.statistics;
    let mut method = method_name(st.interval, summary.bootstrap_resamples, false);
    if st.interval.resamples() {
        method.push_str(&format!(", seed {}", summary.seed));
    }
    if !matches!(st.clusters, ClusterBy::None) {
        method.push_str("; items are not clustered here");
    }
    method
}

/// A retention interval method for people; `clustered`: the items are
/// (which widens the score interval).
fn method_name(method: IntervalMethod, resamples: usize, clustered: bool) -> String {
    match method {
        IntervalMethod::Score if clustered => "score interval (fractional scores on their \
            expected pass/fail cells), widened to hold Fieller's clustered interval"
            .into(),
        IntervalMethod::Score => {
            "score interval (fractional scores on their expected pass/fail cells)".into()
        }
        IntervalMethod::Fieller => "Fieller interval".into(),
        IntervalMethod::DeltaLog => "delta method on log retention".into(),
        IntervalMethod::Bca => format!("BCa paired bootstrap, {} resamples", thousands(resamples)),
        IntervalMethod::Percentile => format!(
            "percentile paired bootstrap, {} resamples",
            thousands(resamples)
        ),
    }
}

/// `10000` -> `10,000`.
pub(crate) fn thousands(n: usize) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// The confidence of the retention criteria: "90%" when every gate has
/// the same, else "each gate's (90%, 95%)"; `None` without gates.
pub(crate) fn gate_confidence(summary: &Summary) -> Option<String> {
    levels(summary.gates.iter().map(|g| g.thresholds.confidence))
}

/// The confidence of the accuracy intervals, from the intervals themselves
/// (summaries that predate it: the gates' confidence).
pub(crate) fn accuracy_confidence(summary: &Summary) -> Option<String> {
    levels(
        summary
            .model_stats
            .iter()
            .filter_map(|s| s.accuracy_interval.confidence),
    )
    .or_else(|| gate_confidence(summary))
}

fn levels(values: impl Iterator<Item = f64>) -> Option<String> {
    let mut all: Vec<f64> = values.collect();
    all.sort_by(f64::total_cmp);
    all.dedup();
    match all.as_slice() {
        [] => None,
        [one] => Some(confidence(*one)),
        many => Some(format!(
            "each gate's ({})",
            many.iter()
                .map(|c| confidence(*c))
                .collect::<Vec<_>>()
                .join(", ")
        )),
    }
}

/// One sentence on the lower bound: "The lower bound is one-sided at 90%
/// (Fieller interval)", with the family-wise note when the gates were
/// judged at adjusted confidences.
pub(crate) fn lower_bound_sentence(summary: &Summary) -> String {
    let at = gate_confidence(summary).unwrap_or_else(|| "the gate's confidence".into());
    let mut text = format!(
        "the lower bound is one-sided at {at} ({})",
        retention_method(summary)
    );
    if !summary.statistics.adjusted_confidences.is_empty() {
        text.push_str(&format!(
            "; with the {} adjustment each gate was judged at its adjusted confidence \
             (listed with the statistics)",
            summary.statistics.family_wise
        ));
    }
    text
}

/// One sentence on the accuracy intervals: "Accuracy intervals are
/// two-sided 90% Wilson intervals (Student t for fractional scores)".
pub(crate) fn accuracy_sentence(summary: &Summary) -> String {
    let at = accuracy_confidence(summary)
        .map(|c| format!("{c} "))
        .unwrap_or_default();
    format!(
        "Accuracy intervals are two-sided {at}Wilson intervals (Student t intervals for \
         fractional scores)."
    )
}

/// Decimal numbers in a reason.
static NUMBER: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"-?\d+\.\d+(?:e-?\d+)?").expect("valid regex"));

/// Digits after the point beyond which a number in a reason is rounded.
const SHORT_DECIMALS: usize = 4;

/// A gate's reason with its numbers rounded for people: a number with more
/// than four decimals (`0.13333333333333333`) gets three significant
/// digits, or as many more as it takes to keep its order against every
/// short number of the same reason (a bound of 0.94999 next to a threshold
/// of 0.95 stays `0.94999`, never `0.950`). The unrounded reason stays in
/// `summary.json`.
pub(crate) fn readable(reason: &str) -> String {
    let short: Vec<f64> = NUMBER
        .find_iter(reason)
        .filter(|m| !is_long(m.as_str()))
        .filter_map(|m| m.as_str().parse().ok())
        .collect();
    NUMBER
        .replace_all(reason, |caps: &regex::Captures<'_>| {
            let text = &caps[0];
            match text.parse::<f64>() {
                Ok(x) if is_long(text) => rounded(x, &short),
                _ => text.to_string(),
            }
        })
        .into_owned()
}

fn is_long(text: &str) -> bool {
    let mantissa = text.split('e').next().unwrap_or(text);
    mantissa
        .split('.')
        .nth(1)
        .is_some_and(|d| d.len() > SHORT_DECIMALS)
}

/// `x` with the fewest significant digits (at least 3) that keep its order
/// against each of `others`.
fn rounded(x: f64, others: &[f64]) -> String {
    for digits in 3..=17 {
        let text = significant(x, digits);
        let Ok(back) = text.parse::<f64>() else {
            return text;
        };
        let keeps = others
            .iter()
            .all(|o| x.partial_cmp(o) == back.partial_cmp(o) || x.partial_cmp(o).is_none());
        if keeps && !(back == 0.0 && x != 0.0) {
            return text;
        }
    }
    format!("{x}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_numbers_are_rounded_and_keep_their_order() {
        assert_eq!(
            readable(
                "retention 0.13333333333333333 is below the threshold 0.95 (one-sided lower \
                 bound 0.08765432109876543 at confidence 0.95, 120 items)"
            ),
            "retention 0.133 is below the threshold 0.95 (one-sided lower bound 0.0877 at \
             confidence 0.95, 120 items)"
        );
        // 0.9499999 would print as 0.950 with three digits, beside 0.95.
        let r = readable("retention 0.9499999871 is below the threshold 0.95");
        assert_eq!(r, "retention 0.94999999 is below the threshold 0.95");
        // Short numbers and names are left alone.
        assert_eq!(
            readable("qwen2.5 speedup 23.7x meets the minimum 2.0x"),
            "qwen2.5 speedup 23.7x meets the minimum 2.0x"
        );
        // Never a rounded zero for a number that is not zero.
        assert_eq!(readable("error rate 0.0000012345"), "error rate 1.23e-6");
    }

    #[test]
    fn the_swap_plans_method_is_the_runs_own() {
        let mut summary = crate::report::tests::bare_summary();
        summary.statistics.interval = IntervalMethod::Score;
        assert_eq!(
            swap_method(&summary),
            "score interval (fractional scores on their expected pass/fail cells)"
        );
        summary.statistics.interval = IntervalMethod::Bca;
        summary.bootstrap_resamples = 2000;
        summary.seed = 7;
        summary.statistics.clusters = ClusterBy::Meta("template".into());
        assert_eq!(
            swap_method(&summary),
            "BCa paired bootstrap, 2,000 resamples, seed 7; items are not clustered here"
        );
    }

    #[test]
    fn thousands_separators() {
        assert_eq!(thousands(10_000), "10,000");
        assert_eq!(thousands(999), "999");
        assert_eq!(thousands(1_234_567), "1,234,567");
    }
}
