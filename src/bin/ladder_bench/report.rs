//! The table: one row per workload, printed and, with `--json`, written as a
//! JSON array of objects.

use serde::Serialize;

use crate::load::Measured;

/// What a row's `ratio` must satisfy. `ratio` is the figure the target is
/// about: a ratio to the baseline for relative targets, the measured figure in
/// the target's own unit (MiB, M items/s) for absolute ones.
#[derive(Debug, Clone, Copy)]
pub enum Target {
    AtLeast(f64, &'static str),
    AtMost(f64, &'static str),
}

impl Target {
    fn met(self, ratio: f64) -> bool {
        match self {
            Target::AtLeast(bound, _) => ratio >= bound,
            Target::AtMost(bound, _) => ratio <= bound,
        }
    }

    fn text(self) -> String {
        match self {
            Target::AtLeast(bound, unit) => format!(">= {bound}{unit}"),
            Target::AtMost(bound, unit) => format!("<= {bound}{unit}"),
        }
    }
}

#[derive(Debug, Serialize)]
pub struct Row {
    pub workload: String,
    /// Operations completed in the measured time (printed, not in the JSON).
    #[serde(skip)]
    pub operations: Option<u64>,
    pub ops_per_s: Option<f64>,
    pub p50_ms: Option<f64>,
    pub p95_ms: Option<f64>,
    pub p99_ms: Option<f64>,
    pub baseline: String,
    pub baseline_ops_per_s: Option<f64>,
    pub ratio: f64,
    pub target: String,
    pub pass: bool,
}

impl Row {
    /// A measured workload against its baseline.
    pub fn measured(
        workload: impl Into<String>,
        measured: &Measured,
        baseline: impl Into<String>,
        baseline_ops_per_s: Option<f64>,
        ratio: f64,
        target: Target,
    ) -> Self {
        Self {
            workload: workload.into(),
            operations: Some(measured.operations),
            ops_per_s: Some(measured.per_second()),
            p50_ms: Some(measured.latency_ms(0.50)),
            p95_ms: Some(measured.latency_ms(0.95)),
            p99_ms: Some(measured.latency_ms(0.99)),
            baseline: baseline.into(),
            baseline_ops_per_s,
            ratio,
            target: target.text(),
            pass: target.met(ratio),
        }
    }

    /// A figure without operations (memory).
    pub fn figure(workload: impl Into<String>, value: f64, target: Target) -> Self {
        Self {
            workload: workload.into(),
            operations: None,
            ops_per_s: None,
            p50_ms: None,
            p95_ms: None,
            p99_ms: None,
            baseline: "-".into(),
            baseline_ops_per_s: None,
            ratio: value,
            target: target.text(),
            pass: target.met(value),
        }
    }
}

fn number(value: Option<f64>, decimals: usize) -> String {
    value.map_or_else(|| "-".into(), |v| format!("{v:.decimals$}"))
}

/// The rows as a plain-text table (Markdown-compatible).
pub fn table(rows: &[Row]) -> String {
    let header = [
        "workload",
        "operations",
        "ops/s",
        "p50 ms",
        "p95 ms",
        "p99 ms",
        "baseline",
        "baseline ops/s",
        "ratio",
        "target",
        "pass",
    ];
    let cells: Vec<[String; 11]> = rows
        .iter()
        .map(|r| {
            [
                r.workload.clone(),
                r.operations.map_or_else(|| "-".into(), |n| n.to_string()),
                number(r.ops_per_s, 0),
                number(r.p50_ms, 2),
                number(r.p95_ms, 2),
                number(r.p99_ms, 2),
                r.baseline.clone(),
                number(r.baseline_ops_per_s, 0),
                format!("{:.2}", r.ratio),
                r.target.clone(),
                if r.pass { "pass" } else { "FAIL" }.into(),
            ]
        })
        .collect();
    let mut widths = header.map(str::len);
    for row in &cells {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(cell.chars().count());
        }
    }
    let line = |cells: &[String]| {
        let padded: Vec<String> = cells
            .iter()
            .zip(widths)
            .enumerate()
            // Text left, numbers right.
            .map(|(i, (cell, width))| match i {
                0 | 6 | 9 => format!("{cell:<width$}"),
                _ => format!("{cell:>width$}"),
            })
            .collect();
        format!("| {} |\n", padded.join(" | "))
    };
    let mut out = line(&header.map(String::from));
    let rule: Vec<String> = widths.iter().map(|w| "-".repeat(*w)).collect();
    out.push_str(&line(&rule));
    for row in &cells {
        out.push_str(&line(row));
    }
    out
}
