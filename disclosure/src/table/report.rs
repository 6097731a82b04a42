//! The table rules' verdicts, one function per rule, from what the checker gathered while
//! reading: each returns the rule's outcome, its message and the cells it points at.

use std::collections::BTreeMap;

use super::{Candidate, Column, MAX_COLUMNS, TableChecker, TableReport};
use crate::policy::RuleId;
use crate::record::{Finding, Findings, Outcome, TableSummary, plural};

/// One rule's verdict on the table.
type Verdict = (RuleId, Outcome, String, Findings);

/// What every rule's verdict is computed from: the table as read, and the count columns (only
/// known once it has all been read).
struct Gathered<'t> {
    table: &'t TableChecker,
    data_rows: u64,
    count_cols: Vec<usize>,
    /// "12 counts in 3 count columns", for the messages of the cell-level rules.
    scope: String,
}

impl TableChecker {
    pub(super) fn report(mut self, overflow_row: Option<u64>) -> TableReport {
        let ragged = std::mem::take(&mut self.ragged);
        let gathered = Gathered::new(&self);
        let results = vec![
            gathered.table_structure(ragged, overflow_row),
            gathered.min_cell_count(),
            gathered.zeros(),
            gathered.rounding(),
            gathered.suppression(),
            gathered.totals(),
            gathered.row_level(),
        ];
        let summary = gathered.summary();
        TableReport {
            summary,
            ids: self.ids,
            results,
        }
    }
}

impl<'t> Gathered<'t> {
    fn new(table: &'t TableChecker) -> Self {
        let count_cols: Vec<usize> = (0..table.cols.len())
            .filter(|&i| table.cols[i].is_count())
            .collect();
        let count_cells: u64 = count_cols.iter().map(|&i| table.cols[i].counts).sum();
        let scope = format!(
            "{} in {}",
            plural(count_cells, "count", "counts"),
            plural(count_cols.len() as u64, "count column", "count columns")
        );
        Gathered {
            table,
            data_rows: table.rows.saturating_sub(1),
            count_cols,
            scope,
        }
    }

    fn is_count(&self, col: u32) -> bool {
        self.table
            .cols
            .get(col as usize)
            .is_some_and(Column::is_count)
    }

    fn header(&self, col: u32) -> Option<String> {
        self.table
            .cols
            .get(col as usize)
            .map(|c| c.header.clone())
            .filter(|h| !h.is_empty())
    }

    fn cell_finding(&self, row: u64, col: u32, value: String, note: Option<String>) -> Finding {
        Finding {
            row: Some(row),
            column: Some(u64::from(col) + 1),
            header: self.header(col),
            value: Some(value),
            note,
            ..Default::default()
        }
    }

    /// The candidates that turned out to be in count columns.
    fn collect(&self, candidates: &[Candidate], per_col: fn(&Column) -> u64) -> Findings {
        let mut f = Findings::default();
        for c in candidates.iter().filter(|c| self.is_count(c.col)) {
            f.push(|| self.cell_finding(c.row, c.col, c.value.to_string(), None));
        }
        // Exact totals, even when the candidate list was capped.
        f.total = self
            .count_cols
            .iter()
            .map(|&i| per_col(&self.table.cols[i]))
            .sum();
        f
    }

    fn no_counts(&self) -> bool {
        self.count_cols.is_empty()
    }

    fn no_counts_message(&self) -> String {
        if self.data_rows == 0 {
            "no data rows".to_string()
        } else {
            "no count columns found".to_string()
        }
    }

    fn table_structure(&self, ragged: Findings, overflow_row: Option<u64>) -> Verdict {
        let t = self.table;
        let mut outcome = Outcome::Pass;
        let mut notes = Vec::new();
        if t.rows == 0 {
            outcome = Outcome::Warn;
            notes.push("the file holds no table (it is empty)".to_string());
        } else if self.data_rows == 0 {
            outcome = Outcome::Warn;
            notes.push("the table has a header row and no data".to_string());
        }
        if ragged.total > 0 {
            outcome = outcome.max(Outcome::Warn);
            notes.push(format!(
                "{} a different number of fields from the header",
                plural(ragged.total, "row has", "rows have")
            ));
        }
        if t.wide_rows {
            outcome = outcome.max(Outcome::Warn);
            notes.push(format!(
                "columns past {MAX_COLUMNS} were scanned for identifiers but not checked as counts"
            ));
        }
        if let Some(row) = overflow_row {
            outcome = Outcome::Fail;
            notes.push(format!(
                "row {row} is longer than {} bytes: the table rules stop there (identifiers were still scanned)",
                t.record_limit
            ));
        }
        let message = if notes.is_empty() {
            format!(
                "{} data rows, {} columns, delimiter {:?}",
                self.data_rows,
                t.header_fields,
                t.delimiter.map(char::from).unwrap_or(',')
            )
        } else {
            notes.join("; ")
        };
        (RuleId::TableStructure, outcome, message, ragged)
    }

    fn min_cell_count(&self) -> Verdict {
        let t = self.table;
        let f = self.collect(&t.below, |c| c.below);
        let numeric_non_counts = t
            .cols
            .iter()
            .filter(|c| !c.excluded && c.numbers > 0 && c.texts == 0)
            .count();
        let (outcome, message) = if f.total > 0 {
            (
                Outcome::Fail,
                format!(
                    "{} below the threshold of {} ({})",
                    plural(f.total, "count is", "counts are"),
                    t.cfg.threshold,
                    self.scope
                ),
            )
        } else if self.no_counts() && numeric_non_counts > 0 {
            (
                Outcome::Warn,
                format!(
                    "no count columns; {} decimals or negative numbers, whose underlying counts cannot be checked here",
                    plural(
                        numeric_non_counts as u64,
                        "numeric column holds",
                        "numeric columns hold"
                    )
                ),
            )
        } else if self.no_counts() {
            (Outcome::Pass, self.no_counts_message())
        } else {
            (
                Outcome::Pass,
                format!(
                    "every count is 0 or at least {} ({})",
                    t.cfg.threshold, self.scope
                ),
            )
        };
        (RuleId::MinCellCount, outcome, message, f)
    }

    fn zeros(&self) -> Verdict {
        let f = self.collect(&self.table.zeros, |c| c.zeros);
        let (outcome, message) = if f.total > 0 {
            (
                Outcome::Fail,
                format!(
                    "{} zero: a zero can disclose that nobody in a group has an attribute",
                    plural(f.total, "count is", "counts are")
                ),
            )
        } else if self.no_counts() {
            (Outcome::Pass, self.no_counts_message())
        } else {
            (Outcome::Pass, format!("no zero counts ({})", self.scope))
        };
        (RuleId::Zeros, outcome, message, f)
    }

    fn rounding(&self) -> Verdict {
        let base = self.table.cfg.base;
        let f = self.collect(&self.table.unrounded, |c| c.unrounded);
        let (outcome, message) = if f.total > 0 {
            (
                Outcome::Fail,
                format!(
                    "{} not rounded to a multiple of {base} (or midpoint-6 where the header says so)",
                    plural(f.total, "count is", "counts are"),
                ),
            )
        } else if self.no_counts() {
            (Outcome::Pass, self.no_counts_message())
        } else {
            (
                Outcome::Pass,
                format!("every count is a multiple of {base} ({})", self.scope),
            )
        };
        (RuleId::Rounding, outcome, message, f)
    }

    fn suppression(&self) -> Verdict {
        let t = self.table;
        let suppressed: u64 = self.count_cols.iter().map(|&i| t.cols[i].suppressed).sum();
        // One cell may be recoverable from its row's total and its column's: list it once.
        let mut by_cell: BTreeMap<(u64, u32), Vec<String>> = BTreeMap::new();
        for r in t
            .recoverable
            .iter()
            .filter(|r| self.is_count(r.col) && self.is_count(r.total_at.1))
        {
            let (trow, tcol) = r.total_at;
            let note = if trow == r.row {
                format!(
                    "the only suppressed cell of row {}, whose total is in column {}",
                    r.row,
                    tcol + 1
                )
            } else {
                format!("the only suppressed cell that the total in row {trow} covers")
            };
            by_cell.entry((r.row, r.col)).or_default().push(note);
        }
        let mut f = Findings::default();
        for ((row, col), notes) in by_cell {
            f.push(|| Finding {
                row: Some(row),
                column: Some(u64::from(col) + 1),
                header: self.header(col),
                note: Some(notes.join("; ")),
                ..Default::default()
            });
        }
        let (outcome, message) = if f.total > 0 {
            (
                Outcome::Fail,
                format!(
                    "{} be recovered by subtracting the other cells from a total",
                    plural(f.total, "suppressed cell can", "suppressed cells can")
                ),
            )
        } else if suppressed > 0 {
            (
                Outcome::Pass,
                format!(
                    "{}; none can be recovered from a total in this table",
                    plural(suppressed, "suppressed cell", "suppressed cells")
                ),
            )
        } else {
            (Outcome::Pass, "no suppressed cells".to_string())
        };
        (RuleId::Suppression, outcome, message, f)
    }

    fn totals(&self) -> Verdict {
        let t = self.table;
        // A column that looked like counts early and was not (an index, a code) was summed
        // into the row totals before that was known: those checks cannot be trusted.
        let tainted: Vec<&str> = t
            .cols
            .iter()
            .filter(|c| c.contributed && !c.is_count())
            .map(|c| c.header.as_str())
            .collect();
        let row_totals_reliable = tainted.is_empty();
        let mut f = Findings::default();
        for m in t
            .total_mismatches
            .iter()
            .filter(|m| self.is_count(m.col) && (row_totals_reliable || !m.across_row))
        {
            f.push(|| self.cell_finding(m.row, m.col, m.total.to_string(), Some(m.note.clone())));
        }
        let (outcome, message) = if f.total > 0 {
            (
                Outcome::Fail,
                format!(
                    "{} from the sum of the cells they total",
                    plural(f.total, "total differs", "totals differ")
                ),
            )
        } else if !row_totals_reliable && !t.total_cols.is_empty() {
            (
                Outcome::Warn,
                format!(
                    "row totals could not be checked: columns {tainted:?} looked like counts at first and are not"
                ),
            )
        } else if t.totals_inconclusive > 0 {
            (
                Outcome::Warn,
                format!(
                    "{} not be checked because the cells they total are suppressed",
                    plural(t.totals_inconclusive, "total could", "totals could")
                ),
            )
        } else if t.totals_checked > 0 {
            (
                Outcome::Pass,
                format!(
                    "{} their cells",
                    plural(t.totals_checked, "total matches", "totals match")
                ),
            )
        } else {
            (Outcome::Pass, "no totals found".to_string())
        };
        (RuleId::Totals, outcome, message, f)
    }

    fn row_level(&self) -> Verdict {
        let (data_rows, max_rows) = (self.data_rows, self.table.cfg.max_rows);
        let mut f = Findings::default();
        for (i, c) in self
            .table
            .cols
            .iter()
            .enumerate()
            .filter(|(_, c)| c.identifier)
        {
            f.push(|| Finding {
                row: Some(1),
                column: Some(i as u64 + 1),
                header: Some(c.header.clone()),
                note: Some("an identifier-like column".into()),
                ..Default::default()
            });
        }
        let many = data_rows > max_rows;
        let (outcome, message) = match (many, f.total) {
            (false, 0) => (
                Outcome::Pass,
                format!(
                    "{data_rows} data rows, at most {max_rows} allowed; no identifier-like columns"
                ),
            ),
            (true, 0) => (
                Outcome::Fail,
                format!("{data_rows} data rows: more than {max_rows} looks like row-level data"),
            ),
            (false, n) => (
                Outcome::Fail,
                format!(
                    "{}: this looks like row-level data",
                    plural(n, "identifier-like column", "identifier-like columns")
                ),
            ),
            (true, n) => (
                Outcome::Fail,
                format!(
                    "{data_rows} data rows (more than {max_rows}) and {}: this looks like row-level data",
                    plural(n, "identifier-like column", "identifier-like columns")
                ),
            ),
        };
        (RuleId::RowLevel, outcome, message, f)
    }

    fn summary(&self) -> TableSummary {
        let t = self.table;
        TableSummary {
            delimiter: t
                .delimiter
                .map(|d| char::from(d).to_string())
                .unwrap_or_else(|| ",".into()),
            data_rows: self.data_rows,
            columns: t.header_fields as u64,
            count_columns: self
                .count_cols
                .iter()
                .map(|&i| t.cols[i].header.clone())
                .collect(),
        }
    }
}
