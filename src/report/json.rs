//! `summary.json`: the [`Summary`] pretty-printed. Deterministic (the
//! summary holds only sequences, nothing is added): the same summary always
//! gives byte-identical output, so two runs can be compared with `diff`.

use std::path::Path;

use super::finite::first_non_finite;
use super::{Exporter, ReportContext, ReportError};
use crate::summary::Summary;

/// The file name of the summary.
pub const SUMMARY_FILE: &str = "summary.json";

/// Writes `summary.json`.
#[derive(Debug, Clone, Copy, Default)]
pub struct SummaryJson;

impl Exporter for SummaryJson {
    fn file_name(&self) -> &'static str {
        SUMMARY_FILE
    }

    fn render(&self, ctx: &ReportContext<'_>) -> Result<Vec<u8>, ReportError> {
        render_summary(ctx.summary)
    }
}

/// The summary as pretty-printed JSON with a trailing newline. Fails when a
/// number is NaN or infinite (JSON has no such numbers; serde_json would
/// write `null`, which loads back as `None` or not at all), naming the field.
pub fn render_summary(summary: &Summary) -> Result<Vec<u8>, ReportError> {
    if let Some((field, value)) = first_non_finite(summary) {
        return Err(ReportError::NotRepresentable {
            file: SUMMARY_FILE,
            field,
            value,
        });
    }
    let mut bytes = serde_json::to_vec_pretty(summary).map_err(|source| ReportError::Json {
        file: SUMMARY_FILE,
        source,
    })?;
    bytes.push(b'\n');
    Ok(bytes)
}

/// Loads a `summary.json` written by [`render_summary`].
pub fn read_summary(path: &Path) -> Result<Summary, ReportError> {
    let bytes = std::fs::read(path).map_err(|source| ReportError::Io {
        path: path.to_path_buf(),
        action: "read",
        source,
    })?;
    serde_json::from_slice(&bytes).map_err(|source| ReportError::ReadSummary {
        path: path.to_path_buf(),
        source,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::summary::{GateResult, Verdict};

    fn with_threshold(min_retention: f64, confidence: f64) -> Summary {
        let mut summary = crate::report::tests::bare_summary();
        summary.gates.push(GateResult {
            student: "s".into(),
            suite: "x".into(),
            category: None,
            verdict: Verdict::Pass,
            reasons: Vec::new(),
            items_needed: None,
            thresholds: crate::gate::GateThresholds {
                confidence,
                ..crate::gate::GateThresholds::new(min_retention)
            },
        });
        summary
    }

    #[test]
    fn floats_load_back_bit_for_bit() {
        // 0.9531 - 0.01 is 0.9430999999999999 in f64; serde_json without
        // `float_roundtrip` reads that text back as 0.9431, one ulp off.
        let tricky = 0.9531_f64 - 0.01;
        let summary = with_threshold(tricky, 0.95);
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(SUMMARY_FILE);
        std::fs::write(&path, render_summary(&summary).unwrap()).unwrap();
        let back = read_summary(&path).unwrap();
        assert_eq!(
            back.gates[0].thresholds.min_retention.to_bits(),
            tricky.to_bits()
        );
        assert_eq!(back, summary);
    }

    #[test]
    fn nan_is_refused_with_its_field() {
        let err = render_summary(&with_threshold(0.95, f64::NAN)).unwrap_err();
        assert_eq!(
            err.to_string(),
            "summary.json: gates[0].thresholds.confidence is NaN, which JSON cannot represent"
        );
    }
}
