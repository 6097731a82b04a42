//! Totals: the sums of the rows a total covers, and whether a total agrees with them, reveals a
//! suppressed cell, or cannot be checked.

use super::classify::Cell;

/// Sums of the non-total rows of one column over a stretch of rows (`rows` is filled in from
/// the table's row counters when a total is judged: it is the same for every column).
#[derive(Clone, Copy, Debug, Default)]
pub(super) struct RowSpan {
    pub(super) rows: u64,
    pub(super) sum: u128,
    pub(super) suppressed: u64,
    /// The row of the last suppressed cell (the only one when `suppressed == 1`).
    pub(super) suppressed_row: u64,
}

impl RowSpan {
    #[inline]
    pub(super) fn add(&mut self, cell: Cell, row: u64) {
        match cell {
            Cell::Count(v) => self.sum += u128::from(v),
            Cell::Suppressed => {
                self.suppressed += 1;
                self.suppressed_row = row;
            }
            _ => {}
        }
    }
}

#[derive(Debug)]
pub(super) enum Judgement {
    Consistent,
    /// The one suppressed cell of a view that the total covers: total − others reveals it.
    Recoverable {
        row: u64,
    },
    /// Suppressed cells make the sum unknown.
    Inconclusive,
    Mismatch,
    NoRows,
}

pub(super) fn judge(total: u64, views: &[RowSpan]) -> Judgement {
    let views: Vec<&RowSpan> = views.iter().filter(|v| v.rows > 0).collect();
    if views.is_empty() {
        return Judgement::NoRows;
    }
    if views
        .iter()
        .any(|v| v.suppressed == 0 && v.sum == u128::from(total))
    {
        return Judgement::Consistent;
    }
    if let Some(v) = views
        .iter()
        .find(|v| v.suppressed == 1 && v.sum <= u128::from(total))
    {
        return Judgement::Recoverable {
            row: v.suppressed_row,
        };
    }
    if views.iter().any(|v| v.suppressed > 0) {
        Judgement::Inconclusive
    } else {
        Judgement::Mismatch
    }
}
