//! The ratings reduced to what the normal equations of SPEC §10 need.
//!
//! Eliminating θ (θ_c = Σ_{i∈c} ω_i (y_i − b_r(i)) / W_c) from the normal
//! equations leaves, for the leniencies b alone,
//!
//! ```text
//! (λ I + L) b = g
//! ```
//!
//! with, per cell c and rater r, B_cr = Σ ω_i over r's ratings of c,
//! W_c = Σ_r B_cr, ȳ_cr and ȳ_c the weighted mean levels of r in c and of c,
//!
//! ```text
//! (L v)_r = Σ_c B_cr (v_r − u_c(v)),  u_c(v) = Σ_s B_cs v_s / W_c
//! g_r     = Σ_c B_cr (ȳ_cr − ȳ_c).
//! ```
//!
//! L is the Laplacian of the graph linking raters who share cells (edge
//! weight Σ_c B_cr B_cs / W_c), so λ I + L is a symmetric M-matrix whose every
//! row sums to λ. A cell with a single rater adds nothing to L or g, which is
//! why only shared cells ("panels") enter the solve, and why a rater without
//! any gets exactly b_r = 0.

use super::ratings::Row;

/// One rater's ratings of one cell.
#[derive(Debug, Clone, Copy)]
struct Entry {
    rater: u32,
    /// B_cr.
    weight: f64,
    /// ȳ_cr.
    mean: f64,
}

pub(super) struct Design {
    /// Per cell: one past its last row and one past its last entry.
    cell_row_end: Vec<usize>,
    cell_entry_end: Vec<usize>,
    /// Per cell: W_c and ȳ_c.
    cell_weight: Vec<f64>,
    cell_mean: Vec<f64>,
    entries: Vec<Entry>,
    /// Cells rated by at least two raters: the only ones that enter L and g.
    shared_cells: Vec<u32>,
    /// Per rater: k_r, ω_r, overlap_r.
    pub rater_ratings: Vec<u64>,
    pub rater_weight: Vec<f64>,
    pub rater_overlap: Vec<u64>,
}

impl Design {
    /// `rows` in canonical order (by cell, then rater).
    pub fn new(rows: &[Row], raters: usize) -> Self {
        let mut design = Design {
            cell_row_end: Vec::new(),
            cell_entry_end: Vec::new(),
            cell_weight: Vec::new(),
            cell_mean: Vec::new(),
            entries: Vec::new(),
            shared_cells: Vec::new(),
            rater_ratings: vec![0; raters],
            rater_weight: vec![0.0; raters],
            rater_overlap: vec![0; raters],
        };
        let mut start = 0;
        for cell in rows.chunk_by(Row::same_cell) {
            start += cell.len();
            design.add_cell(cell, start);
        }
        design
    }

    fn add_cell(&mut self, rows: &[Row], row_end: usize) {
        let first_entry = self.entries.len();
        let (mut cell_weight, mut cell_sum) = (0.0, 0.0);
        for by_rater in rows.chunk_by(|a, b| a.rater == b.rater) {
            let rater = by_rater[0].rater;
            let (mut weight, mut sum) = (0.0, 0.0);
            for row in by_rater {
                weight += row.weight;
                sum += row.weight * row.level;
            }
            self.rater_ratings[rater as usize] += by_rater.len() as u64;
            self.rater_weight[rater as usize] += weight;
            cell_weight += weight;
            cell_sum += sum;
            self.entries.push(Entry {
                rater,
                weight,
                mean: sum / weight,
            });
        }
        let cell = self.cell_weight.len();
        if self.entries.len() - first_entry > 1 {
            self.shared_cells.push(cell as u32);
            for entry in &self.entries[first_entry..] {
                self.rater_overlap[entry.rater as usize] += 1;
            }
        }
        self.cell_row_end.push(row_end);
        self.cell_entry_end.push(self.entries.len());
        self.cell_weight.push(cell_weight);
        self.cell_mean.push(cell_sum / cell_weight);
    }

    pub fn raters(&self) -> usize {
        self.rater_weight.len()
    }

    pub fn cells(&self) -> usize {
        self.cell_weight.len()
    }

    fn cell_entries(&self, cell: usize) -> &[Entry] {
        let start = if cell == 0 {
            0
        } else {
            self.cell_entry_end[cell - 1]
        };
        &self.entries[start..self.cell_entry_end[cell]]
    }

    fn shared(&self) -> impl Iterator<Item = (usize, &[Entry])> {
        self.shared_cells
            .iter()
            .map(|&cell| (cell as usize, self.cell_entries(cell as usize)))
    }

    /// g, the right-hand side.
    pub fn rhs(&self) -> Vec<f64> {
        let mut rhs = vec![0.0; self.raters()];
        for (cell, entries) in self.shared() {
            for entry in entries {
                rhs[entry.rater as usize] += entry.weight * (entry.mean - self.cell_mean[cell]);
            }
        }
        rhs
    }

    /// diag(λ I + L), the Jacobi preconditioner.
    pub fn diagonal(&self, lambda: f64) -> Vec<f64> {
        let mut diagonal = vec![lambda; self.raters()];
        for (cell, entries) in self.shared() {
            for entry in entries {
                diagonal[entry.rater as usize] +=
                    entry.weight * (1.0 - entry.weight / self.cell_weight[cell]);
            }
        }
        diagonal
    }

    /// out = (λ I + L) v, from the entries rather than a formed matrix: cost
    /// linear in the ratings of shared cells, whatever the panel sizes.
    pub fn apply(&self, lambda: f64, v: &[f64], out: &mut [f64]) {
        for (out, v) in out.iter_mut().zip(v) {
            *out = lambda * v;
        }
        for (cell, entries) in self.shared() {
            let cell_mean = self.weighted_mean(cell, entries, v);
            for entry in entries {
                let r = entry.rater as usize;
                out[r] += entry.weight * (v[r] - cell_mean);
            }
        }
    }

    /// u_c(v) = Σ_s B_cs v_s / W_c. A single rater's cell gives that
    /// rater's v exactly, where (B·v)/B could be off by an ulp.
    fn weighted_mean(&self, cell: usize, entries: &[Entry], v: &[f64]) -> f64 {
        if let [only] = entries {
            return v[only.rater as usize];
        }
        let sum: f64 = entries.iter().map(|e| e.weight * v[e.rater as usize]).sum();
        sum / self.cell_weight[cell]
    }

    /// s = sqrt(Σ_i ω_i (y_i − θ_c − b_r)² / Σ_i ω_i) at the leniencies `b`,
    /// with θ_c = ȳ_c − u_c(b); 0 without ratings.
    pub fn residual_scale(&self, rows: &[Row], b: &[f64]) -> f64 {
        let (mut squares, mut total) = (0.0, 0.0);
        let mut start = 0;
        for (cell, &end) in self.cell_row_end.iter().enumerate() {
            let cell_mean = self.cell_mean[cell];
            let shift = self.weighted_mean(cell, self.cell_entries(cell), b);
            for row in &rows[start..end] {
                // y − θ − b = (y − ȳ_c) − (b_r − u_c): both differences small.
                let residual = (row.level - cell_mean) - (b[row.rater as usize] - shift);
                squares += row.weight * residual * residual;
                total += row.weight;
            }
            start = end;
        }
        if total > 0.0 {
            (squares / total).sqrt()
        } else {
            0.0
        }
    }
}
