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
