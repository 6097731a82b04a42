//! CSV/TSV tables: count columns found heuristically, then the minimum-count, zeros, rounding,
//! suppression, totals and row-level rules, plus identifier scanning of every cell.
//!
//! Input is pushed in chunks through `csv-core` (no copy of the file, one record buffered at a
//! time, no allocation per cell). Which columns are counts is only known at the end, so the
//! cell-level rules collect candidates for every plausible column and the end keeps those in
//! count columns; exact per-column tallies keep the totals right even past the candidate cap.

use csv_core::{ReadRecordResult, Reader, ReaderBuilder};
use memchr::memchr;

mod classify;
mod prepared;
mod report;
mod totals;

use crate::headers::{words, words_contain};
use crate::identifiers::{IdFindings, IdKind, Scan, TextScanner, is_valid_nhs_number};
use crate::policy::{Policy, RuleId};
use crate::record::{Finding, Findings, Outcome, TableSummary, mask, show};
use classify::{Cell, classify};
use prepared::PreparedPolicy;
use totals::{Judgement, RowSpan, judge};

/// Candidates kept per cell-level rule before the count columns are known.
const MAX_CANDIDATES: usize = 50_000;
/// Columns analysed as possible counts; cells past this are still scanned for identifiers.
const MAX_COLUMNS: usize = 100_000;
/// One record's unescaped bytes; past this the table is not analysed further (the rest of the
/// file is still scanned for identifiers as text).
const MAX_RECORD_BYTES: usize = 64 << 20;
/// Bytes looked at to guess the delimiter of a `.csv` (`,` `;` or tab).
const SNIFF_BYTES: usize = 64 << 10;

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
    segment: RowSpan,
    grand: RowSpan,
    /// Summed into some row's total check while it still looked like a count column.
    contributed: bool,
    below: u64,
    zeros: u64,
    unrounded: u64,
}

impl Column {
    fn new(header: String, cfg: &PreparedPolicy) -> Column {
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
            segment: RowSpan::default(),
            grand: RowSpan::default(),
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
    above: RowSpan,
    all: RowSpan,
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
    cfg: PreparedPolicy,
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
            cfg: PreparedPolicy::new(policy),
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
                            push_capped(&mut self.zeros, cand);
                        } else if v < self.cfg.threshold && !col.midpoint6 {
                            col.below += 1;
                            push_capped(&mut self.below, cand);
                        }
                        let rounded = if col.midpoint6 {
                            v == 0 || (v >= 3 && (v - 3) % 6 == 0)
                        } else {
                            v % self.cfg.base == 0
                        };
                        if !rounded {
                            col.unrounded += 1;
                            push_capped(&mut self.unrounded, cand);
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
                    above: RowSpan {
                        rows: self.segment_rows,
                        ..col.segment
                    },
                    all: RowSpan {
                        rows: self.grand_rows,
                        ..col.grand
                    },
                });
            }
            col.segment = RowSpan::default();
        }
        for col in self.cols.iter_mut().skip(self.cells.len()) {
            col.segment = RowSpan::default();
        }
        self.segment_rows = 0;
    }

    fn resolve_pending(&mut self) {
        for p in std::mem::take(&mut self.pending) {
            let below = RowSpan {
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
}

/// Keeps a candidate unless the list is full (the exact tallies go on counting).
fn push_capped(list: &mut Vec<Candidate>, c: Candidate) {
    if list.len() < MAX_CANDIDATES {
        list.push(c);
    }
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
