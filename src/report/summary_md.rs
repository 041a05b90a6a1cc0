//! The short Markdown summary of a run (`--summary-md PATH`), for
//! `$GITHUB_STEP_SUMMARY` or a pull-request comment: the verdict table and
//! one line per student, no links (the run directory may not be reachable
//! from where it is read).

use std::path::{Path, PathBuf};

use super::labels::{RECORDED_MARK, lower_bound_sentence, recorded_note};
use super::markdown::{escape, verdict_md};
use super::numbers::{MISSING, confidence, percent, ratio};
use super::{GateRow, gate_rows, items_needed, overall_verdict, verdict_counts};
use crate::gate::Verdict;
use crate::summary::Summary;

/// The short summary could not be appended to the file `--summary-md` names.
#[derive(Debug, thiserror::Error)]
#[error("--summary-md {}", path.display())]
pub struct AppendError {
    /// The file.
    pub path: PathBuf,
    /// The I/O error.
    #[source]
    pub source: std::io::Error,
}

/// Appends `text` to the file at `path` (created if missing), as
/// `$GITHUB_STEP_SUMMARY` expects.
pub fn append(path: &Path, text: &str) -> Result<(), AppendError> {
    std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .and_then(|mut file| std::io::Write::write_all(&mut file, text.as_bytes()))
        .map_err(|source| AppendError {
            path: path.to_path_buf(),
            source,
        })
}

/// The short summary of a run.
pub fn render_run(summary: &Summary) -> String {
    let rows = gate_rows(summary);
    let mut out = format!(
        "### distill-gate: {}: {}\n\n{} (exit code {}).\n\n",
        escape(&summary.run),
        verdict_md(overall_verdict(summary)),
        verdict_counts(summary),
        summary.exit_code
    );
    super::markdown::contamination(&mut out, summary);
    if rows.is_empty() {
        out.push_str("No gates: the run has no students.\n");
        return out;
    }
    out.push_str(
        "| Student | Suite | Verdict | Student acc | Retention | Lower bound | Threshold |\n",
    );
    out.push_str("|---|---|---|---:|---:|---:|---:|\n");
    for r in &rows {
        let c = r.comparison;
        out.push_str(&format!(
            "| {} | {} | {} | {} | {} | {} | ≥ {} ({}) |\n",
            escape(&r.gate.student),
            escape(&r.gate.scope()),
            verdict_md(r.gate.verdict),
            r.student
                .map_or_else(|| MISSING.into(), |s| percent(s.accuracy)),
            c.and_then(|c| c.retention)
                .map_or_else(|| MISSING.into(), ratio),
            c.and_then(|c| c.retention_lower)
                .map_or_else(|| MISSING.into(), ratio),
            ratio(r.gate.thresholds.min_retention),
            confidence(r.gate.thresholds.confidence),
        ));
    }
    out.push_str(&format!(
        "\nRetention = student / teacher accuracy on the same items; {}.\n\n",
        escape(&lower_bound_sentence(summary))
    ));
    let mut students: Vec<&str> = Vec::new();
    for r in &rows {
        if !students.contains(&r.gate.student.as_str()) {
            students.push(&r.gate.student);
        }
    }
    let mut marked = false;
    for student in students {
        let mine: Vec<&GateRow<'_>> = rows.iter().filter(|r| r.gate.student == student).collect();
        let (line, recorded) = student_line(student, &mine);
        marked |= recorded;
        out.push_str(&format!("- {}\n", escape(&line)));
    }
    if marked {
        out.push_str(&format!(
            "\n\\{RECORDED_MARK} {}.\n",
            escape(&recorded_note(summary))
        ));
    }
    out
}

/// "s2m: FAIL on coding (retention 0.81 below 0.95); PASS on logistics",
/// and whether a reason in it is marked as resting on recorded latencies.
fn student_line(student: &str, rows: &[&GateRow<'_>]) -> (String, bool) {
    let mut marked = false;
    let worst = if rows.iter().any(|r| r.gate.verdict == Verdict::Fail) {
        Verdict::Fail
    } else if rows.iter().any(|r| r.gate.verdict == Verdict::Inconclusive) {
        Verdict::Inconclusive
    } else {
        Verdict::Pass
    };
    let parts: Vec<String> = rows
        .iter()
        .map(|r| {
            let mut p = format!("{} {}", r.gate.scope(), r.gate.verdict);
            if r.gate.verdict != Verdict::Pass {
                if let Some((first, recorded)) = r.reasons().into_iter().next() {
                    marked |= recorded;
                    p.push_str(&format!(" ({first})"));
                }
                if r.gate.verdict == Verdict::Inconclusive
                    && let Some(n) = items_needed(r)
                {
                    p.push_str(&format!("; {n}"));
                }
            }
            p
        })
        .collect();
    (format!("{student}: {worst}: {}", parts.join("; ")), marked)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::tests::bare_summary;

    #[test]
    fn a_summary_without_gates_says_so() {
        let s = bare_summary();
        let md = render_run(&s);
        assert!(md.starts_with("### distill-gate: "), "{md}");
        assert!(md.contains("No gates"), "{md}");
        assert!(
            !md.contains("](") && !md.contains("http"),
            "link-free: {md}"
        );
    }
}
