//! Aggregating: the runs of each (workload, server) pair reduced to one [`Cell`] of medians
//! over the rounds, laid out as a [`Table`] with a row per workload and a column per server.

use super::measure::Record;
use super::{Spec, Target};

/// Medians of one (workload, server) cell.
#[derive(Debug, Clone)]
pub(super) struct Cell {
    pub(super) ops: f64,
    pub(super) ops_min: f64,
    pub(super) ops_max: f64,
    pub(super) p50: f64,
    pub(super) p99: f64,
    pub(super) p999: f64,
    pub(super) max: f64,
    pub(super) foreign: f64,
    pub(super) server_cpu: f64,
    pub(super) generator_cpu: f64,
    pub(super) errors: u64,
    pub(super) misses: u64,
    pub(super) rejected: u64,
    pub(super) runs: usize,
}

/// The median; NaN for no values.
fn median(mut values: Vec<f64>) -> f64 {
    if values.is_empty() {
        return f64::NAN;
    }
    values.sort_by(|a, b| a.total_cmp(b));
    let n = values.len();
    if n % 2 == 1 {
        values[n / 2]
    } else {
        (values[n / 2 - 1] + values[n / 2]) / 2.0
    }
}

/// The cell of the runs of one (workload, server): medians, the throughput range, summed
/// reply counts.
fn cell(records: &[&Record]) -> Cell {
    let get = |f: fn(&Record) -> f64| records.iter().map(|r| f(r)).collect::<Vec<_>>();
    let ops = get(|r| r.ops);
    Cell {
        ops: median(ops.clone()),
        ops_min: ops.iter().copied().fold(f64::INFINITY, f64::min),
        ops_max: ops.iter().copied().fold(0.0, f64::max),
        p50: median(get(|r| r.p50)),
        p99: median(get(|r| r.p99)),
        p999: median(get(|r| r.p999)),
        max: median(get(|r| r.max)),
        foreign: median(get(|r| r.cpu.foreign)),
        server_cpu: median(get(|r| r.cpu.server)),
        generator_cpu: median(get(|r| r.cpu.generator)),
        errors: records.iter().map(|r| r.counts.errors).sum(),
        misses: records.iter().map(|r| r.counts.misses).sum(),
        rejected: records.iter().map(|r| r.counts.rejected).sum(),
        runs: records.len(),
    }
}

/// The cells of a comparison: `rows[w][s]` is workload `w` on server `s` (in the order of
/// the specs and targets it was built from), `None` where every run failed.
pub(super) struct Table {
    /// One row per workload.
    pub(super) rows: Vec<Vec<Option<Cell>>>,
    /// The server labels, one per column.
    pub(super) labels: Vec<String>,
    /// For each sessiond server, the column its ratios are taken from.
    pub(super) sessiond_columns: Vec<usize>,
}

impl Table {
    /// Groups `records` by workload and server label and reduces each group to a cell.
    pub(super) fn new(specs: &[Spec], targets: &[Target], records: &[Record]) -> Table {
        let labels: Vec<String> = targets.iter().map(|t| t.label.clone()).collect();
        let sessiond_columns = targets
            .iter()
            .filter(|t| t.is_sessiond)
            .map(|t| {
                labels
                    .iter()
                    .position(|l| *l == t.label)
                    .expect("a sessiond label")
            })
            .collect();
        let rows = specs
            .iter()
            .map(|spec| {
                labels
                    .iter()
                    .map(|label| {
                        let rs: Vec<&Record> = records
                            .iter()
                            .filter(|r| r.workload == spec.name && &r.server == label)
                            .collect();
                        (!rs.is_empty()).then(|| cell(&rs))
                    })
                    .collect()
            })
            .collect();
        Table {
            rows,
            labels,
            sessiond_columns,
        }
    }

    /// One figure of every cell, row by row (for the chart).
    pub(super) fn figure(&self, f: fn(&Cell) -> f64) -> Vec<Vec<Option<f64>>> {
        self.rows
            .iter()
            .map(|row| row.iter().map(|c| c.as_ref().map(f)).collect())
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn medians() {
        assert_eq!(median(vec![3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(vec![4.0, 1.0, 2.0, 3.0]), 2.5);
    }
}
