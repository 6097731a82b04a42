//! CSV/TSV tables: count columns found heuristically, then the minimum-count, zeros, rounding,
//! suppression, totals and row-level rules, plus identifier scanning of every cell.
//!
//! Input is pushed in chunks through `csv-core` (no copy of the file, one record buffered at a
//! time, no allocation per cell). Which columns are counts is only known at the end, so the
//! cell-level rules collect candidates for every plausible column and the end keeps those in
//! count columns; exact per-column tallies keep the totals right even past the candidate cap.

use csv_core::{ReadRecordResult, Reader, ReaderBuilder};
use memchr::memchr;

use super::identifiers::{IdFindings, IdKind, Scan, TextScanner, is_valid_nhs_number};
use super::policy::{Policy, RuleId, words, words_contain};
use super::record::{Finding, Findings, Outcome, TableSummary, mask, n_of, show};

/// Candidates kept per cell-level rule before the count columns are known.
const MAX_CANDIDATES: usize = 50_000;
/// Columns analysed as possible counts; cells past this are still scanned for identifiers.
const MAX_COLUMNS: usize = 100_000;
/// One record's unescaped bytes; past this the table is not analysed further (the rest of the
/// file is still scanned for identifiers as text).
const MAX_RECORD_BYTES: usize = 64 << 20;
/// Bytes looked at to guess the delimiter of a `.csv` (`,` `;` or tab).
const SNIFF_BYTES: usize = 64 << 10;

/// The policy's table parameters, prepared once per file.
#[derive(Debug)]
struct Config {
    non_count: Vec<Vec<String>>,
    missing: Vec<Vec<u8>>,
    markers: Vec<Vec<u8>>,
    /// The longest missing or suppression marker, and the first bytes of all of them (either
    /// case): most text cells skip both lists at once.
    marker_max_len: usize,
    marker_first: [bool; 256],
    less_than_markers: bool,
    dob_columns: Vec<Vec<String>>,
    total_labels: Vec<Vec<u8>>,
    /// First letters of the labels: most text cells are ruled out without normalising them.
    label_first: [bool; 256],
    total_label_words: Vec<Vec<String>>,
    identifier_columns: Vec<Vec<String>>,
    threshold: u64,
    base: u64,
    midpoint6_suffix: Option<String>,
    max_rows: u64,
}

impl Config {
    fn new(p: &Policy) -> Config {
        let lower = |v: &[String]| -> Vec<Vec<u8>> {
            v.iter()
                .map(|s| s.trim().to_ascii_lowercase().into_bytes())
                .collect()
        };
        let word_lists =
            |v: &[String]| -> Vec<Vec<String>> { v.iter().map(|s| words(s)).collect() };
        let missing = lower(&p.tables.missing_markers);
        let markers = lower(&p.suppression.markers);
        let total_labels: Vec<Vec<u8>> = p
            .totals
            .labels
            .iter()
            .map(|l| words(l).join(" ").into_bytes())
            .collect();
        let mut marker_first = [false; 256];
        for m in missing.iter().chain(&markers) {
            if let Some(&b) = m.first() {
                marker_first[usize::from(b)] = true;
                marker_first[usize::from(b.to_ascii_uppercase())] = true;
            }
        }
        let mut label_first = [false; 256];
        for l in &total_labels {
            if let Some(&b) = l.first() {
                label_first[usize::from(b)] = true;
            }
        }
        Config {
            non_count: word_lists(&p.tables.non_count_columns),
            marker_max_len: missing
                .iter()
                .chain(&markers)
                .map(Vec::len)
                .max()
                .unwrap_or(0),
            marker_first,
            missing,
            markers,
            less_than_markers: p.suppression.less_than_markers,
            dob_columns: word_lists(&p.date_of_birth.columns),
            total_labels,
            label_first,
            total_label_words: word_lists(&p.totals.labels),
            identifier_columns: word_lists(&p.row_level.identifier_columns),
            threshold: p.min_cell_count.threshold,
            // max(1): a Policy built in code, unvalidated, must not divide by zero.
            base: p.rounding.base.max(1),
            midpoint6_suffix: p
                .rounding
                .midpoint6_suffix
                .as_ref()
                .map(|s| s.to_ascii_lowercase()),
            max_rows: p.row_level.max_rows,
        }
    }
}

/// What one cell holds, for the table rules.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Cell {
    Missing,
    Count(u64),
    Suppressed,
    /// Negative, decimal, percentage, or too long for a count.
    Number,
    Text,
    /// Text that labels a total row ("Total", "All").
    TotalLabel,
}

/// Sums of the non-total rows of one column over a stretch of rows (`rows` is filled in from
/// the table's row counters when a total is judged: it is the same for every column).
#[derive(Clone, Copy, Debug, Default)]
struct View {
    rows: u64,
    sum: u128,
    suppressed: u64,
    /// The row of the last suppressed cell (the only one when `suppressed == 1`).
    suppressed_row: u64,
}

impl View {
    #[inline]
    fn add(&mut self, cell: Cell, row: u64) {
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
struct Column {
    header: String,
    /// Never a count column (its header says it is an id, a year, an age...).
    excluded: bool,
    identifier: bool,
    dob: bool,
    total: bool,
    midpoint6: bool,
    counts: u64,
    numbers: u64,
    texts: u64,
    suppressed: u64,
    /// 0/1, then +1 each row: a row index, not counts.
    index_like: bool,
    last: Option<u64>,
    segment: View,
    grand: View,
    /// Summed into some row's total check while it still looked like a count column.
    contributed: bool,
    below: u64,
    zeros: u64,
    unrounded: u64,
}

impl Column {
    fn new(header: String, cfg: &Config) -> Column {
        let w = words(&header);
        let any = |lists: &[Vec<String>]| lists.iter().any(|n| words_contain(&w, n));
        let identifier = any(&cfg.identifier_columns);
        let dob = any(&cfg.dob_columns);
        let total = cfg.total_label_words.contains(&w)
            || w.first().is_some_and(|f| f == "total" || f == "totals")
            || w.last().is_some_and(|f| f == "total" || f == "totals");
        let midpoint6 = cfg
            .midpoint6_suffix
            .as_ref()
            .is_some_and(|s| header.trim().to_ascii_lowercase().ends_with(s.as_str()));
        Column {
            excluded: identifier || dob || any(&cfg.non_count),
            identifier,
            dob,
            total,
            midpoint6,
            header,
            counts: 0,
            numbers: 0,
            texts: 0,
            suppressed: 0,
            index_like: true,
            last: None,
            segment: View::default(),
            grand: View::default(),
            contributed: false,
            below: 0,
            zeros: 0,
            unrounded: 0,
        }
    }

    /// Could still be a count column, judging by the cells so far.
    fn plausible(&self) -> bool {
        !self.excluded && self.numbers == 0 && self.texts == 0
    }

    fn is_count(&self) -> bool {
        self.plausible() && self.counts > 0 && !(self.index_like && self.counts >= 3)
    }
}

#[derive(Clone, Copy, Debug)]
struct Candidate {
    row: u64,
    col: u32,
    value: u64,
}

/// A total row's cell, judged against the rows above it and all rows, and (once read) the
/// rows below it.
#[derive(Clone, Copy, Debug)]
struct PendingTotal {
    row: u64,
    col: u32,
    total: u64,
    above: View,
    all: View,
}

#[derive(Debug)]
enum Judgement {
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

fn judge(total: u64, views: &[View]) -> Judgement {
    let views: Vec<&View> = views.iter().filter(|v| v.rows > 0).collect();
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

#[derive(Debug)]
struct TotalFinding {
    /// A "Total" column checked across its row (relies on which columns are counts).
    across_row: bool,
    row: u64,
    col: u32,
    total: u64,
    note: String,
}

#[derive(Debug)]
struct Recoverable {
    row: u64,
    col: u32,
    /// Where the total that reveals it is (row, column).
    total_at: (u64, u32),
}

/// A table read in chunks.
#[derive(Debug)]
pub(crate) struct TableChecker {
    cfg: Config,
    scan: Scan,
    delimiter: Option<u8>,
    sniff: Vec<u8>,
    rdr: Reader,
    out: Vec<u8>,
    out_len: usize,
    ends: Vec<usize>,
    ends_len: usize,
    record_limit: usize,
    /// Records read (the header is record 1).
    rows: u64,
    header_fields: usize,
    cols: Vec<Column>,
    total_cols: Vec<usize>,
    cells: Vec<Cell>,
    wide_rows: bool,
    ids: IdFindings,
    below: Vec<Candidate>,
    zeros: Vec<Candidate>,
    unrounded: Vec<Candidate>,
    recoverable: Vec<Recoverable>,
    total_mismatches: Vec<TotalFinding>,
    totals_checked: u64,
    totals_inconclusive: u64,
    pending: Vec<PendingTotal>,
    /// Non-total data rows since the last total row, and in all.
    segment_rows: u64,
    grand_rows: u64,
    ragged: Findings,
    /// Set when a record outgrew `record_limit`: the rest is scanned as text only.
    overflow: Option<(u64, TextScanner)>,
}

impl TableChecker {
    /// `delimiter`: `Some` for a known format (TSV), `None` to guess from the first line.
    pub fn new(policy: &Policy, scan: Scan, delimiter: Option<u8>) -> TableChecker {
        TableChecker {
            cfg: Config::new(policy),
            scan,
            delimiter,
            sniff: Vec::new(),
            rdr: Reader::new(),
            out: vec![0; 4096],
            out_len: 0,
            ends: vec![0; 64],
            ends_len: 0,
            record_limit: MAX_RECORD_BYTES,
            rows: 0,
            header_fields: 0,
            cols: Vec::new(),
            total_cols: Vec::new(),
            cells: Vec::new(),
            wide_rows: false,
            ids: IdFindings::default(),
            below: Vec::new(),
            zeros: Vec::new(),
            unrounded: Vec::new(),
            recoverable: Vec::new(),
            total_mismatches: Vec::new(),
            totals_checked: 0,
            totals_inconclusive: 0,
            pending: Vec::new(),
            segment_rows: 0,
            grand_rows: 0,
            ragged: Findings::default(),
            overflow: None,
        }
        .with_reader()
    }

    fn with_reader(mut self) -> Self {
        if let Some(d) = self.delimiter {
            self.rdr = ReaderBuilder::new().delimiter(d).build();
        }
        self
    }

    #[cfg(test)]
    fn with_record_limit(mut self, limit: usize) -> Self {
        self.record_limit = limit;
        self
    }

    pub fn update(&mut self, chunk: &[u8]) {
        if chunk.is_empty() {
            return;
        }
        if self.delimiter.is_none() {
            // Hold the start of the file until the first line is complete.
            self.sniff.extend_from_slice(chunk);
            if memchr(b'\n', &self.sniff).is_none() && self.sniff.len() < SNIFF_BYTES {
                return;
            }
            self.decide_delimiter();
            let held = std::mem::take(&mut self.sniff);
            self.feed(&held, false);
            return;
        }
        self.feed(chunk, false);
    }

    fn decide_delimiter(&mut self) {
        let line_end = memchr(b'\n', &self.sniff).unwrap_or(self.sniff.len());
        let (mut counts, mut quoted) = ([0usize; 3], false);
        for &b in &self.sniff[..line_end] {
            match b {
                b'"' => quoted = !quoted,
                b',' if !quoted => counts[0] += 1,
                b';' if !quoted => counts[1] += 1,
                b'\t' if !quoted => counts[2] += 1,
                _ => {}
            }
        }
        // Comma unless another delimiter is strictly more common in the header.
        let best = (0..3).max_by_key(|&i| (counts[i], i == 0)).unwrap_or(0);
        let d = [b',', b';', b'\t'][best];
        self.delimiter = Some(d);
        self.rdr = ReaderBuilder::new().delimiter(d).build();
    }

    fn feed(&mut self, mut input: &[u8], eof: bool) {
        if let Some((_, text)) = &mut self.overflow {
            text.update(input);
            return;
        }
        loop {
            // csv-core reads an empty input as the end of the file.
            if input.is_empty() && !eof {
                return;
            }
            let (res, nin, nout, nend) = self.rdr.read_record(
                input,
                &mut self.out[self.out_len..],
                &mut self.ends[self.ends_len..],
            );
            input = &input[nin..];
            self.out_len += nout;
            self.ends_len += nend;
            match res {
                ReadRecordResult::InputEmpty => {
                    if eof {
                        return;
                    }
                }
                ReadRecordResult::OutputFull => {
                    if self.out.len() >= self.record_limit {
                        self.start_overflow(input);
                        return;
                    }
                    let grown = (self.out.len() * 2).min(self.record_limit);
                    self.out.resize(grown, 0);
                }
                ReadRecordResult::OutputEndsFull => {
                    // Fields take at least one byte each, so the record limit bounds this too.
                    let grown = self.ends.len() * 2;
                    self.ends.resize(grown, 0);
                }
                ReadRecordResult::Record => {
                    self.record();
                    self.out_len = 0;
                    self.ends_len = 0;
                }
                ReadRecordResult::End => return,
            }
        }
    }

    /// A record too long to hold: stop reading the table, scan the rest as text.
    fn start_overflow(&mut self, rest: &[u8]) {
        let mut text = TextScanner::new(self.scan);
        text.update(&self.out[..self.out_len]);
        text.update(rest);
        self.overflow = Some((self.rows + 1, text));
        self.out = Vec::new();
        self.out_len = 0;
        self.ends_len = 0;
    }

    fn record(&mut self) {
        self.rows += 1;
        let row = self.rows;
        let n = self.ends_len;
        if row == 1 {
            self.header_fields = n;
            let mut start = 0;
            for i in 0..n {
                let end = self.ends[i];
                let raw = &self.out[start..end];
                start = end;
                if i < MAX_COLUMNS {
                    let col = Column::new(show(raw), &self.cfg);
                    if col.total {
                        self.total_cols.push(i);
                    }
                    self.cols.push(col);
                }
            }
        } else if n != self.header_fields {
            let header_fields = self.header_fields;
            self.ragged.push(|| Finding {
                row: Some(row),
                note: Some(format!("{n} fields; the header has {header_fields}")),
                ..Default::default()
            });
        }

        // Pass 1: identifiers and cell classes (no allocation unless something is found).
        self.cells.clear();
        let mut total_row = false;
        let mut start = 0;
        for i in 0..n {
            let end = self.ends[i];
            let raw = self.out[start..end].trim_ascii();
            start = end;
            let cell = if row > 1 {
                classify(raw, &self.cfg)
            } else {
                Cell::Text
            };
            let col = self.cols.get(i);
            let finding = |s: usize, e: usize| Finding {
                row: Some(row),
                column: Some(i as u64 + 1),
                header: col.map(|c| c.header.clone()).filter(|h| !h.is_empty()),
                value: Some(mask(&raw[s..e])),
                ..Default::default()
            };
            match cell {
                // A whole number can only be an NHS number (and only with exactly ten digits);
                // other numbers and markers cannot hold any identifier we look for.
                Cell::Count(_)
                    if raw.len() == 10 && self.scan.nhs() && raw.iter().all(u8::is_ascii_digit) =>
                {
                    if is_valid_nhs_number(raw) {
                        self.ids.by_kind[IdKind::Nhs as usize].push(|| finding(0, raw.len()));
                    } else {
                        self.ids.invalid_nhs += 1;
                    }
                }
                Cell::Text | Cell::TotalLabel if raw.len() >= 5 => {
                    let dob = row > 1 && col.is_some_and(|c| c.dob);
                    let by_kind = &mut self.ids.by_kind;
                    self.ids.invalid_nhs +=
                        self.scan
                            .block(raw, [0; 4], raw.len(), dob, &mut |k: IdKind, s, e| {
                                by_kind[k as usize].push(|| finding(s, e))
                            });
                }
                _ => {}
            }
            if row > 1 {
                total_row |= cell == Cell::TotalLabel;
                self.cells.push(cell);
            }
        }
        if row == 1 {
            return;
        }

        // Pass 2: column tallies and candidates.
        for (i, &cell) in self.cells.iter().enumerate() {
            if i >= MAX_COLUMNS {
                self.wide_rows = true;
                break;
            }
            if i >= self.cols.len() {
                self.cols.push(Column::new(String::new(), &self.cfg));
            }
            let col = &mut self.cols[i];
            let c = i as u32;
            match cell {
                Cell::Count(v) => {
                    col.counts += 1;
                    if !total_row {
                        let next = col.last.map_or(v <= 1, |l| l.checked_add(1) == Some(v));
                        col.index_like &= next;
                        col.last = Some(v);
                    }
                    if !col.excluded {
                        let cand = Candidate {
                            row,
                            col: c,
                            value: v,
                        };
                        if v == 0 {
                            col.zeros += 1;
                            keep(&mut self.zeros, cand);
                        } else if v < self.cfg.threshold && !col.midpoint6 {
                            col.below += 1;
                            keep(&mut self.below, cand);
                        }
                        let rounded = if col.midpoint6 {
                            v == 0 || (v >= 3 && (v - 3) % 6 == 0)
                        } else {
                            v % self.cfg.base == 0
                        };
                        if !rounded {
                            col.unrounded += 1;
                            keep(&mut self.unrounded, cand);
                        }
                    }
                }
                Cell::Suppressed => {
                    col.suppressed += 1;
                    col.index_like = false;
                }
                Cell::Number => {
                    col.numbers += 1;
                    col.index_like = false;
                }
                Cell::Text | Cell::TotalLabel => {
                    col.texts += 1;
                    col.index_like = false;
                }
                Cell::Missing => col.index_like = false,
            }
            if !total_row {
                col.segment.add(cell, row);
                col.grand.add(cell, row);
            }
        }
        if !total_row {
            self.segment_rows += 1;
            self.grand_rows += 1;
        }

        self.row_totals(row);
        if total_row {
            self.total_row(row);
        }
    }

    /// A column headed "Total" must equal the sum of the other count columns in its row.
    fn row_totals(&mut self, row: u64) {
        for ti in 0..self.total_cols.len() {
            let t = self.total_cols[ti];
            let Some(&Cell::Count(total)) = self.cells.get(t) else {
                continue;
            };
            let (mut sum, mut n, mut suppressed, mut suppressed_col) = (0u128, 0u64, 0u64, 0usize);
            for (i, &cell) in self.cells.iter().enumerate().take(self.cols.len()) {
                let col = &mut self.cols[i];
                if col.total || !col.plausible() {
                    continue;
                }
                match cell {
                    Cell::Count(v) => {
                        sum += u128::from(v);
                        n += 1;
                        col.contributed = true;
                    }
                    Cell::Suppressed => {
                        suppressed += 1;
                        suppressed_col = i;
                        col.contributed = true;
                    }
                    _ => {}
                }
            }
            if n + suppressed == 0 {
                continue;
            }
            self.totals_checked += 1;
            match suppressed {
                0 if sum == u128::from(total) => {}
                0 => self.total_mismatches.push(TotalFinding {
                    across_row: true,
                    row,
                    col: t as u32,
                    total,
                    note: format!("the other count columns of this row sum to {sum}"),
                }),
                1 if sum <= u128::from(total) => self.recoverable.push(Recoverable {
                    row,
                    col: suppressed_col as u32,
                    total_at: (row, t as u32),
                }),
                _ => self.totals_inconclusive += 1,
            }
        }
    }

    /// A row labelled Total/All: judge the previous total row against the rows since it, and
    /// this one against the rows above it and all rows so far.
    fn total_row(&mut self, row: u64) {
        self.resolve_pending();
        for (i, &cell) in self.cells.iter().enumerate().take(self.cols.len()) {
            let col = &mut self.cols[i];
            if let Cell::Count(total) = cell
                && !col.excluded
            {
                self.pending.push(PendingTotal {
                    row,
                    col: i as u32,
                    total,
                    above: View {
                        rows: self.segment_rows,
                        ..col.segment
                    },
                    all: View {
                        rows: self.grand_rows,
                        ..col.grand
                    },
                });
            }
            col.segment = View::default();
        }
        for col in self.cols.iter_mut().skip(self.cells.len()) {
            col.segment = View::default();
        }
        self.segment_rows = 0;
    }

    fn resolve_pending(&mut self) {
        for p in std::mem::take(&mut self.pending) {
            let below = View {
                rows: self.segment_rows,
                ..self.cols[p.col as usize].segment
            };
            match judge(p.total, &[p.above, below, p.all]) {
                Judgement::Consistent => self.totals_checked += 1,
                Judgement::NoRows => {}
                Judgement::Recoverable { row } => {
                    self.totals_checked += 1;
                    self.recoverable.push(Recoverable {
                        row,
                        col: p.col,
                        total_at: (p.row, p.col),
                    });
                }
                Judgement::Inconclusive => {
                    self.totals_checked += 1;
                    self.totals_inconclusive += 1;
                }
                Judgement::Mismatch => {
                    self.totals_checked += 1;
                    let mut parts = Vec::new();
                    if p.above.rows > 0 {
                        parts.push(format!(
                            "the rows above it since the last total sum to {}",
                            p.above.sum
                        ));
                    }
                    if below.rows > 0 {
                        parts.push(format!("the rows below it sum to {}", below.sum));
                    }
                    parts.push(format!("all rows before it sum to {}", p.all.sum));
                    self.total_mismatches.push(TotalFinding {
                        across_row: false,
                        row: p.row,
                        col: p.col,
                        total: p.total,
                        note: parts.join("; "),
                    });
                }
            }
        }
    }

    pub fn finish(mut self) -> TableReport {
        if self.delimiter.is_none() {
            self.decide_delimiter();
            let held = std::mem::take(&mut self.sniff);
            self.feed(&held, false);
        }
        let mut overflow_row = None;
        if let Some((row, text)) = self.overflow.take() {
            overflow_row = Some(row);
            let found = text.finish();
            for (mine, theirs) in self.ids.by_kind.iter_mut().zip(found.by_kind) {
                let unlisted = theirs.total - theirs.list.len() as u64;
                for f in theirs.list {
                    let line = f.line.unwrap_or(0);
                    mine.push(|| Finding {
                        note: Some(format!("after row {row}, line {line} of the unparsed rest")),
                        ..f
                    });
                }
                mine.total += unlisted;
            }
            self.ids.invalid_nhs += found.invalid_nhs;
        } else {
            self.feed(&[], true);
        }
        self.resolve_pending();
        self.report(overflow_row)
    }

    fn report(self, overflow_row: Option<u64>) -> TableReport {
        let cfg = &self.cfg;
        let data_rows = self.rows.saturating_sub(1);
        let count_cols: Vec<usize> = (0..self.cols.len())
            .filter(|&i| self.cols[i].is_count())
            .collect();
        let is_count = |c: u32| self.cols.get(c as usize).is_some_and(Column::is_count);
        let header = |c: u32| {
            self.cols
                .get(c as usize)
                .map(|col| col.header.clone())
                .filter(|h| !h.is_empty())
        };
        let cell_finding = |row: u64, col: u32, value: String, note: Option<String>| Finding {
            row: Some(row),
            column: Some(u64::from(col) + 1),
            header: header(col),
            value: Some(value),
            note,
            ..Default::default()
        };
        let collect = |cands: &[Candidate], per_col: fn(&Column) -> u64| {
            let mut f = Findings::default();
            for c in cands.iter().filter(|c| is_count(c.col)) {
                f.push(|| cell_finding(c.row, c.col, c.value.to_string(), None));
            }
            // Exact totals, even when the candidate list was capped.
            f.total = count_cols.iter().map(|&i| per_col(&self.cols[i])).sum();
            f
        };
        let mut results = Vec::new();
        let count_cells: u64 = count_cols.iter().map(|&i| self.cols[i].counts).sum();
        let no_counts = count_cols.is_empty();
        let no_counts_message = || {
            if data_rows == 0 {
                "no data rows".to_string()
            } else {
                "no count columns found".to_string()
            }
        };
        let where_ = format!(
            "{} in {}",
            n_of(count_cells, "count", "counts"),
            n_of(count_cols.len() as u64, "count column", "count columns")
        );

        // table-structure
        {
            let mut outcome = Outcome::Pass;
            let mut notes = Vec::new();
            if self.rows == 0 {
                outcome = Outcome::Warn;
                notes.push("the file holds no table (it is empty)".to_string());
            } else if data_rows == 0 {
                outcome = Outcome::Warn;
                notes.push("the table has a header row and no data".to_string());
            }
            if self.ragged.total > 0 {
                outcome = outcome.max(Outcome::Warn);
                notes.push(format!(
                    "{} a different number of fields from the header",
                    n_of(self.ragged.total, "row has", "rows have")
                ));
            }
            if self.wide_rows {
                outcome = outcome.max(Outcome::Warn);
                notes.push(format!(
                    "columns past {MAX_COLUMNS} were scanned for identifiers but not checked as counts"
                ));
            }
            if let Some(row) = overflow_row {
                outcome = Outcome::Fail;
                notes.push(format!(
                    "row {row} is longer than {} bytes: the table rules stop there (identifiers were still scanned)",
                    self.record_limit
                ));
            }
            let message = if notes.is_empty() {
                format!(
                    "{data_rows} data rows, {} columns, delimiter {:?}",
                    self.header_fields,
                    self.delimiter.map(char::from).unwrap_or(',')
                )
            } else {
                notes.join("; ")
            };
            results.push((RuleId::TableStructure, outcome, message, self.ragged));
        }

        // min-cell-count
        {
            let f = collect(&self.below, |c| c.below);
            let numeric_non_counts = self
                .cols
                .iter()
                .filter(|c| !c.excluded && c.numbers > 0 && c.texts == 0)
                .count();
            let (outcome, message) = if f.total > 0 {
                (
                    Outcome::Fail,
                    format!(
                        "{} below the threshold of {} ({where_})",
                        n_of(f.total, "count is", "counts are"),
                        cfg.threshold
                    ),
                )
            } else if no_counts && numeric_non_counts > 0 {
                (
                    Outcome::Warn,
                    format!(
                        "no count columns; {} decimals or negative numbers, whose underlying counts cannot be checked here",
                        n_of(
                            numeric_non_counts as u64,
                            "numeric column holds",
                            "numeric columns hold"
                        )
                    ),
                )
            } else if no_counts {
                (Outcome::Pass, no_counts_message())
            } else {
                (
                    Outcome::Pass,
                    format!("every count is 0 or at least {} ({where_})", cfg.threshold),
                )
            };
            results.push((RuleId::MinCellCount, outcome, message, f));
        }

        // zeros
        {
            let f = collect(&self.zeros, |c| c.zeros);
            let (outcome, message) = if f.total > 0 {
                (
                    Outcome::Fail,
                    format!(
                        "{} zero: a zero can disclose that nobody in a group has an attribute",
                        n_of(f.total, "count is", "counts are")
                    ),
                )
            } else if no_counts {
                (Outcome::Pass, no_counts_message())
            } else {
                (Outcome::Pass, format!("no zero counts ({where_})"))
            };
            results.push((RuleId::Zeros, outcome, message, f));
        }

        // rounding
        {
            let f = collect(&self.unrounded, |c| c.unrounded);
            let (outcome, message) = if f.total > 0 {
                (
                    Outcome::Fail,
                    format!(
                        "{} not rounded to a multiple of {} (or midpoint-6 where the header says so)",
                        n_of(f.total, "count is", "counts are"),
                        cfg.base
                    ),
                )
            } else if no_counts {
                (Outcome::Pass, no_counts_message())
            } else {
                (
                    Outcome::Pass,
                    format!("every count is a multiple of {} ({where_})", cfg.base),
                )
            };
            results.push((RuleId::Rounding, outcome, message, f));
        }

        // suppression
        {
            let suppressed: u64 = count_cols.iter().map(|&i| self.cols[i].suppressed).sum();
            // One cell may be recoverable from its row's total and its column's: list it once.
            let mut by_cell: std::collections::BTreeMap<(u64, u32), Vec<String>> =
                Default::default();
            for r in self
                .recoverable
                .iter()
                .filter(|r| is_count(r.col) && is_count(r.total_at.1))
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
                    header: header(col),
                    note: Some(notes.join("; ")),
                    ..Default::default()
                });
            }
            let (outcome, message) = if f.total > 0 {
                (
                    Outcome::Fail,
                    format!(
                        "{} be recovered by subtracting the other cells from a total",
                        n_of(f.total, "suppressed cell can", "suppressed cells can")
                    ),
                )
            } else if suppressed > 0 {
                (
                    Outcome::Pass,
                    format!(
                        "{}; none can be recovered from a total in this table",
                        n_of(suppressed, "suppressed cell", "suppressed cells")
                    ),
                )
            } else {
                (Outcome::Pass, "no suppressed cells".to_string())
            };
            results.push((RuleId::Suppression, outcome, message, f));
        }

        // totals
        {
            // A column that looked like counts early and was not (an index, a code) was summed
            // into the row totals before that was known: those checks cannot be trusted.
            let tainted: Vec<&str> = self
                .cols
                .iter()
                .filter(|c| c.contributed && !c.is_count())
                .map(|c| c.header.as_str())
                .collect();
            let row_totals_reliable = tainted.is_empty();
            let mut f = Findings::default();
            for t in self
                .total_mismatches
                .iter()
                .filter(|t| is_count(t.col) && (row_totals_reliable || !t.across_row))
            {
                f.push(|| cell_finding(t.row, t.col, t.total.to_string(), Some(t.note.clone())));
            }
            let (outcome, message) = if f.total > 0 {
                (
                    Outcome::Fail,
                    format!(
                        "{} from the sum of the cells they total",
                        n_of(f.total, "total differs", "totals differ")
                    ),
                )
            } else if !row_totals_reliable && !self.total_cols.is_empty() {
                (
                    Outcome::Warn,
                    format!(
                        "row totals could not be checked: columns {tainted:?} looked like counts at first and are not"
                    ),
                )
            } else if self.totals_inconclusive > 0 {
                (
                    Outcome::Warn,
                    format!(
                        "{} not be checked because the cells they total are suppressed",
                        n_of(self.totals_inconclusive, "total could", "totals could")
                    ),
                )
            } else if self.totals_checked > 0 {
                (
                    Outcome::Pass,
                    format!(
                        "{} their cells",
                        n_of(self.totals_checked, "total matches", "totals match")
                    ),
                )
            } else {
                (Outcome::Pass, "no totals found".to_string())
            };
            results.push((RuleId::Totals, outcome, message, f));
        }

        // row-level
        {
            let mut f = Findings::default();
            for (i, c) in self.cols.iter().enumerate().filter(|(_, c)| c.identifier) {
                f.push(|| Finding {
                    row: Some(1),
                    column: Some(i as u64 + 1),
                    header: Some(c.header.clone()),
                    note: Some("an identifier-like column".into()),
                    ..Default::default()
                });
            }
            let many = data_rows > cfg.max_rows;
            let (outcome, message) = match (many, f.total) {
                (false, 0) => (
                    Outcome::Pass,
                    format!(
                        "{data_rows} data rows, at most {} allowed; no identifier-like columns",
                        cfg.max_rows
                    ),
                ),
                (true, 0) => (
                    Outcome::Fail,
                    format!(
                        "{data_rows} data rows: more than {} looks like row-level data",
                        cfg.max_rows
                    ),
                ),
                (false, n) => (
                    Outcome::Fail,
                    format!(
                        "{}: this looks like row-level data",
                        n_of(n, "identifier-like column", "identifier-like columns")
                    ),
                ),
                (true, n) => (
                    Outcome::Fail,
                    format!(
                        "{data_rows} data rows (more than {}) and {}: this looks like row-level data",
                        cfg.max_rows,
                        n_of(n, "identifier-like column", "identifier-like columns")
                    ),
                ),
            };
            results.push((RuleId::RowLevel, outcome, message, f));
        }

        TableReport {
            summary: TableSummary {
                delimiter: self
                    .delimiter
                    .map(|d| char::from(d).to_string())
                    .unwrap_or_else(|| ",".into()),
                data_rows,
                columns: self.header_fields as u64,
                count_columns: count_cols
                    .iter()
                    .map(|&i| self.cols[i].header.clone())
                    .collect(),
            },
            ids: self.ids,
            results,
        }
    }
}

fn keep(list: &mut Vec<Candidate>, c: Candidate) {
    if list.len() < MAX_CANDIDATES {
        list.push(c);
    }
}

/// What the table rules see in a trimmed cell. Cheap tests first: most cells are numbers.
#[inline]
fn classify(cell: &[u8], cfg: &Config) -> Cell {
    let Some(&first) = cell.first() else {
        return Cell::Missing;
    };
    if (first.is_ascii_digit() || matches!(first, b'+' | b'-' | b'.'))
        && let Some(c) = number(cell)
    {
        return c;
    }
    if cell.len() <= cfg.marker_max_len && cfg.marker_first[usize::from(first)] {
        if cfg.missing.iter().any(|m| cell.eq_ignore_ascii_case(m)) {
            return Cell::Missing;
        }
        if cfg.markers.iter().any(|m| cell.eq_ignore_ascii_case(m)) {
            return Cell::Suppressed;
        }
    }
    if cfg.less_than_markers && is_less_than(cell) {
        return Cell::Suppressed;
    }
    let label_start = cell
        .iter()
        .find(|b| b.is_ascii_alphanumeric())
        .is_some_and(|b| cfg.label_first[usize::from(b.to_ascii_lowercase())]);
    if label_start {
        let mut buf = [0u8; 64];
        if let Some(norm) = normalise(cell, &mut buf)
            && cfg.total_labels.iter().any(|l| l.as_slice() == norm)
        {
            return Cell::TotalLabel;
        }
    }
    Cell::Text
}

/// Reads a number in one pass: `Count` for a whole number ≥ 0 (digits, optionally grouped by
/// commas as in "1,234", optionally with a zero fraction as in "12.0", which is how pandas writes
/// integer columns that have gaps); `Number` for any other number (signed, decimal, exponent,
/// trailing `%`, too large); `None` for anything else ("10-19", "2020-01-01", "1,2").
#[inline]
fn number(cell: &[u8]) -> Option<Cell> {
    let mut s = cell;
    let mut plain = true;
    if let Some(rest) = s.strip_suffix(b"%") {
        s = rest.trim_ascii_end();
        plain = false;
    }
    if let [b'+' | b'-', rest @ ..] = s {
        s = rest;
        plain = false;
    }
    let (mut v, mut fits) = (0u64, true);
    let (mut int_digits, mut group, mut grouped) = (0usize, 0usize, false);
    let mut i = 0;
    while let Some(&b) = s.get(i) {
        match b {
            b'0'..=b'9' => {
                match v
                    .checked_mul(10)
                    .and_then(|x| x.checked_add(u64::from(b - b'0')))
                {
                    Some(x) => v = x,
                    None => fits = false,
                }
                int_digits += 1;
                group += 1;
            }
            // A first group of 1-3 digits, then groups of exactly 3.
            b',' => {
                if group == 0 || group > 3 || (grouped && group != 3) {
                    return None;
                }
                grouped = true;
                group = 0;
            }
            _ => break,
        }
        i += 1;
    }
    if grouped && group != 3 {
        return None;
    }
    let (mut dot, mut frac_digits, mut frac_zero) = (false, 0usize, true);
    if s.get(i) == Some(&b'.') {
        dot = true;
        i += 1;
        while let Some(&b) = s.get(i).filter(|b| b.is_ascii_digit()) {
            frac_digits += 1;
            frac_zero &= b == b'0';
            i += 1;
        }
    }
    if int_digits + frac_digits == 0 {
        return None;
    }
    if let Some(b'e' | b'E') = s.get(i) {
        i += 1;
        if let Some(b'+' | b'-') = s.get(i) {
            i += 1;
        }
        let start = i;
        while s.get(i).is_some_and(u8::is_ascii_digit) {
            i += 1;
        }
        if i == start {
            return None;
        }
        plain = false;
    }
    if i != s.len() {
        return None;
    }
    let whole = int_digits > 0 && (!dot || (frac_digits > 0 && frac_zero));
    Some(if plain && fits && whole {
        Cell::Count(v)
    } else {
        Cell::Number
    })
}

/// `<10`, `< 10`, `<=7`, `≤7`.
fn is_less_than(cell: &[u8]) -> bool {
    let rest = if let Some(r) = cell.strip_prefix("≤".as_bytes()) {
        r
    } else if let Some(r) = cell.strip_prefix(b"<") {
        r.strip_prefix(b"=").unwrap_or(r)
    } else {
        return false;
    };
    let rest = rest.trim_ascii();
    !rest.is_empty() && rest.iter().all(u8::is_ascii_digit)
}

/// Lower-case ASCII words joined by single spaces, in `buf` (None if longer than it).
fn normalise<'a>(cell: &[u8], buf: &'a mut [u8; 64]) -> Option<&'a [u8]> {
    let mut n = 0;
    let mut gap = false;
    for &b in cell {
        if b.is_ascii_alphanumeric() {
            if gap && n > 0 {
                *buf.get_mut(n)? = b' ';
                n += 1;
            }
            *buf.get_mut(n)? = b.to_ascii_lowercase();
            n += 1;
            gap = false;
        } else {
            gap = true;
        }
    }
    Some(&buf[..n])
}

/// The table's part of the record.
#[derive(Debug)]
pub(crate) struct TableReport {
    pub summary: TableSummary,
    pub ids: IdFindings,
    pub results: Vec<(RuleId, Outcome, String, Findings)>,
}

#[cfg(test)]
mod tests;
