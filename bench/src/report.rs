//! The results table (Markdown, to paste into BENCHMARKS.md) and the
//! targets the numbers are held to.

use std::fmt::{self, Write as _};

/// One measured quantity for each server.
#[derive(Debug, Clone, PartialEq)]
pub struct Row {
    /// Which workload, e.g. `(a) bulk`.
    pub workload: String,
    /// What was measured, with its unit.
    pub metric: &'static str,
    /// `host-tap`'s value.
    pub host: Option<f64>,
    /// The kernel baseline's value.
    pub kernel: Option<f64>,
    /// `tap-echo`'s value.
    pub echo: Option<f64>,
}

impl Row {
    /// A row without values yet.
    pub fn new(workload: impl Into<String>, metric: &'static str) -> Row {
        Row {
            workload: workload.into(),
            metric,
            host: None,
            kernel: None,
            echo: None,
        }
    }

    /// `host-tap`'s value divided by the kernel baseline's.
    pub fn host_over_kernel(&self) -> Option<f64> {
        ratio(self.host, self.kernel)
    }

    /// `host-tap`'s value divided by `tap-echo`'s.
    pub fn host_over_echo(&self) -> Option<f64> {
        ratio(self.host, self.echo)
    }
}

fn ratio(numerator: Option<f64>, denominator: Option<f64>) -> Option<f64> {
    match (numerator, denominator) {
        (Some(n), Some(d)) if d > 0.0 => Some(n / d),
        _ => None,
    }
}

/// A number with as many decimals as its size deserves; `-` for none.
pub fn number(value: Option<f64>) -> String {
    match value {
        None => "-".to_owned(),
        Some(v) if v.abs() >= 100.0 => format!("{v:.0}"),
        Some(v) if v.abs() >= 10.0 => format!("{v:.1}"),
        Some(v) => format!("{v:.2}"),
    }
}

/// The rows as a Markdown table.
pub fn table(rows: &[Row]) -> String {
    let header = [
        "workload",
        "metric",
        "host-tap",
        "kernel (loopback)",
        "tap-echo",
        "host-tap / kernel",
        "host-tap / tap-echo",
    ];
    let cells: Vec<[String; 7]> = rows
        .iter()
        .map(|row| {
            [
                row.workload.clone(),
                row.metric.to_owned(),
                number(row.host),
                number(row.kernel),
                number(row.echo),
                number(row.host_over_kernel()),
                number(row.host_over_echo()),
            ]
        })
        .collect();
    let mut widths = header.map(str::len);
    for row in &cells {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(cell.chars().count());
        }
    }
    let mut out = String::new();
    let mut line = |cells: &[String]| {
        out.push('|');
        for (i, (cell, width)) in cells.iter().zip(widths).enumerate() {
            // Text left, numbers right.
            if i < 2 {
                let _ = write!(out, " {cell:<width$} |");
            } else {
                let _ = write!(out, " {cell:>width$} |");
            }
        }
        out.push('\n');
    };
    line(&header.map(str::to_owned));
    line(&widths.map(|w| "-".repeat(w)));
    for row in &cells {
        line(row);
    }
    out
}

/// Whether a target was met.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Met.
    Met,
    /// Missed.
    Missed,
    /// Not measured in this run.
    NotMeasured,
}

impl fmt::Display for Verdict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Verdict::Met => "met",
            Verdict::Missed => "MISSED",
            Verdict::NotMeasured => "not measured",
        })
    }
}

/// A target and how this run did.
#[derive(Debug, Clone, PartialEq)]
pub struct Target {
    /// What is wanted.
    pub goal: &'static str,
    /// How it went.
    pub verdict: Verdict,
    /// The numbers behind the verdict.
    pub detail: String,
}

impl Target {
    /// Judges `value` (if measured) with `met`.
    pub fn judge(
        goal: &'static str,
        value: Option<f64>,
        met: impl Fn(f64) -> bool,
        detail: impl Fn(f64) -> String,
    ) -> Target {
        match value {
            None => Target {
                goal,
                verdict: Verdict::NotMeasured,
                detail: String::new(),
            },
            Some(v) => Target {
                goal,
                verdict: if met(v) {
                    Verdict::Met
                } else {
                    Verdict::Missed
                },
                detail: detail(v),
            },
        }
    }
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "- {}: **{}**", self.goal, self.verdict)?;
        if !self.detail.is_empty() {
            write!(f, " ({})", self.detail)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_get_fewer_decimals_as_they_grow() {
        assert_eq!(number(Some(0.0312)), "0.03");
        assert_eq!(number(Some(12.345)), "12.3");
        assert_eq!(number(Some(12345.6)), "12346");
        assert_eq!(number(None), "-");
    }

    #[test]
    fn ratios_need_both_values_and_a_non_zero_denominator() {
        let mut row = Row::new("(a) bulk", "MiB/s");
        row.host = Some(50.0);
        assert_eq!(row.host_over_kernel(), None);
        row.kernel = Some(0.0);
        assert_eq!(row.host_over_kernel(), None);
        row.echo = Some(100.0);
        assert_eq!(row.host_over_echo(), Some(0.5));
    }

    #[test]
    fn the_table_is_markdown_with_aligned_columns() {
        let mut row = Row::new("(a) bulk", "MiB/s");
        row.host = Some(80.0);
        row.echo = Some(100.0);
        let table = table(&[row]);
        let lines: Vec<&str> = table.lines().collect();
        assert_eq!(lines.len(), 3);
        assert!(lines[0].starts_with("| workload"), "{table}");
        assert!(
            lines[1].starts_with("|---") || lines[1].starts_with("| ---"),
            "{table}"
        );
        assert!(
            lines[2].contains(" 80.0 |") && lines[2].contains(" 0.80 |"),
            "{table}"
        );
        let widths: Vec<usize> = lines.iter().map(|l| l.chars().count()).collect();
        assert!(widths.iter().all(|&w| w == widths[0]), "{table}");
    }

    #[test]
    fn a_target_is_judged_only_when_measured() {
        let missed = Target::judge("p99 < 2 ms", Some(3.0), |v| v < 2.0, |v| format!("{v} ms"));
        assert_eq!(missed.verdict, Verdict::Missed);
        assert_eq!(missed.to_string(), "- p99 < 2 ms: **MISSED** (3 ms)");
        let unknown = Target::judge("p99 < 2 ms", None, |v| v < 2.0, |v| format!("{v}"));
        assert_eq!(unknown.verdict, Verdict::NotMeasured);
    }
}
