//! Identifier patterns: NHS numbers (valid modulus-11 check digit only), full UK postcodes,
//! dates of birth and e-mail addresses, found in text streamed in chunks or in single table
//! cells.
//!
//! Every pattern is ASCII and stays within one line, so text can be scanned line-block by
//! line-block in place, and the findings never depend on how the input was chunked.

use std::sync::LazyLock;

use memchr::{memchr, memchr_iter, memrchr};
use regex::bytes::{Regex, RegexBuilder};

use super::policy::{Action, Policy};
use super::record::{Finding, Findings, mask};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum IdKind {
    Nhs = 0,
    Postcode = 1,
    Email = 2,
    Dob = 3,
}

fn build(pattern: &str) -> Regex {
    // Unicode off: ASCII classes and word boundaries keep the DFA fast on any bytes.
    RegexBuilder::new(pattern)
        .unicode(false)
        .build()
        .expect("built-in identifier pattern compiles")
}

/// Ten digits, or 3-3-4 separated by single spaces or hyphens.
static NHS: LazyLock<Regex> = LazyLock::new(|| {
    build(r"\b(?:[0-9]{10}|[0-9]{3} [0-9]{3} [0-9]{4}|[0-9]{3}-[0-9]{3}-[0-9]{4})\b")
});

/// A full UK postcode (outward and inward code), after the Royal Mail format rules.
const POSTCODE: &str = r"\b(?:GIR ?0AA|[A-PR-UWYZ](?:[0-9]{1,2}|[A-HK-Y][0-9]{1,2}|[0-9][A-HJKPS-UW]|[A-HK-Y][0-9][ABEHMNPRV-Y]) ?[0-9][ABD-HJLNP-UW-Z]{2})\b";
static POSTCODE_UPPER: LazyLock<Regex> = LazyLock::new(|| build(POSTCODE));
static POSTCODE_ANY_CASE: LazyLock<Regex> = LazyLock::new(|| build(&format!("(?i){POSTCODE}")));

/// Bounded lengths (local part 64, labels 63, at most 5 labels) keep every match shorter than
/// the overlap kept between pieces of an overlong line.
static EMAIL: LazyLock<Regex> = LazyLock::new(|| {
    build(
        r"[A-Za-z0-9._%+\-]{1,64}@[A-Za-z0-9\-]{1,63}(?:\.[A-Za-z0-9\-]{1,63}){0,4}\.[A-Za-z]{2,24}\b",
    )
});

const MONTH: &str = r"(?:jan|feb|mar|apr|may|jun|jul|aug|sep|oct|nov|dec)[a-z]{0,6}\.?";
fn date_pattern() -> String {
    format!(
        r"(?:[0-9]{{1,2}}[/.\-][0-9]{{1,2}}[/.\-](?:[0-9]{{4}}|[0-9]{{2}})|[0-9]{{4}}[\-/][0-9]{{1,2}}[\-/][0-9]{{1,2}}|[0-9]{{1,2}}(?:st|nd|rd|th)?[ \t]+{MONTH},?[ \t]+[0-9]{{4}}|{MONTH}[ \t]+[0-9]{{1,2}}(?:st|nd|rd|th)?,?[ \t]+[0-9]{{4}})"
    )
}

/// A date in a date-of-birth column.
static DATE: LazyLock<Regex> = LazyLock::new(|| build(&format!(r"(?i)\b{}\b", date_pattern())));

/// "DOB: 01/02/1980", "date of birth 1 Feb 1980", "born on 1980-02-01" anywhere in text.
static DOB_TEXT: LazyLock<Regex> = LazyLock::new(|| {
    build(&format!(
        r"(?i)\b(?:dob|d\.o\.b\.?|date[ \t]+of[ \t]+birth|birth[ \t]*date|born(?:[ \t]+on)?)[ \t]*[:=\-]?[ \t]*{}\b",
        date_pattern()
    ))
});

/// Whether ten ASCII digits form an NHS number: weights 10..2 on the first nine digits,
/// `11 - (sum mod 11)` is the check digit (11 means 0, 10 means no valid number).
pub fn is_valid_nhs_number(digits: &[u8]) -> bool {
    if digits.len() != 10 || !digits.iter().all(u8::is_ascii_digit) {
        return false;
    }
    // Ten identical digits pass the arithmetic but are placeholders, never issued.
    if digits.iter().all(|&d| d == digits[0]) {
        return false;
    }
    let sum: u32 = digits[..9]
        .iter()
        .zip((2..=10u32).rev())
        .map(|(&d, w)| u32::from(d - b'0') * w)
        .sum();
    let check = match 11 - sum % 11 {
        11 => 0,
        10 => return false,
        c => c,
    };
    u32::from(digits[9] - b'0') == check
}

const DIGIT: u8 = 1;
const UPPER: u8 = 2;
const LOWER: u8 = 4;
const AT: u8 = 8;

/// Byte classes for the prefilter, one table lookup per byte.
static CLASS: [u8; 256] = {
    let mut t = [0u8; 256];
    let mut i = 0;
    while i < 256 {
        t[i] = match i as u8 {
            b'0'..=b'9' => DIGIT,
            b'A'..=b'Z' => UPPER,
            b'a'..=b'z' => LOWER,
            b'@' => AT,
            _ => 0,
        };
        i += 1;
    }
    t
};

/// Which identifier rules run, from the policy.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Scan {
    on: [bool; 4],
    postcode_any_case: bool,
}

/// Below this length a haystack is a cell or a short line: cheap byte-class counts decide which
/// patterns can match at all, so most table cells never reach a regex.
const PREFILTER_MAX: usize = 256;

impl Scan {
    pub fn new(policy: &Policy) -> Scan {
        Scan {
            on: [
                policy.nhs_number.action != Action::Off,
                policy.uk_postcode.action != Action::Off,
                policy.email_address.action != Action::Off,
                policy.date_of_birth.action != Action::Off,
            ],
            postcode_any_case: policy.uk_postcode.ignore_case,
        }
    }

    pub fn nhs(&self) -> bool {
        self.on[IdKind::Nhs as usize]
    }

    pub fn any(&self) -> bool {
        self.on.iter().any(|&b| b)
    }

    /// Reports `(kind, start, end)` for each identifier in `hay` whose kind-`k` match starts in
    /// `starts[k]..accept_before`. `dob_column` also reports bare dates (the cell is in a
    /// date-of-birth column). Returns how many NHS-shaped numbers had an invalid check digit.
    pub fn block(
        &self,
        hay: &[u8],
        starts: [usize; 4],
        accept_before: usize,
        dob_column: bool,
        found: &mut impl FnMut(IdKind, usize, usize),
    ) -> u64 {
        let mut want = self.on;
        let mut want_dob_text = self.on[IdKind::Dob as usize];
        let mut want_date = dob_column && self.on[IdKind::Dob as usize];
        if hay.len() <= PREFILTER_MAX {
            let (mut seen, mut digits) = (0u8, 0usize);
            for &b in hay {
                let c = CLASS[usize::from(b)];
                seen |= c;
                digits += usize::from(c & DIGIT);
            }
            let (upper, lower, at) = (seen & UPPER != 0, seen & LOWER != 0, seen & AT != 0);
            want[IdKind::Nhs as usize] &= digits >= 10;
            want[IdKind::Email as usize] &= at;
            let letters = upper || (self.postcode_any_case && lower);
            want[IdKind::Postcode as usize] &= digits >= 1 && letters && hay.len() >= 5;
            want_dob_text &= (upper || lower) && digits >= 4;
            want_date &= digits >= 4;
        } else {
            want[IdKind::Email as usize] &= memchr(b'@', hay).is_some();
        }

        let mut invalid_nhs = 0;
        if want[IdKind::Nhs as usize] {
            each_match(&NHS, hay, starts[0], accept_before, |s, e| {
                let m = &hay[s..e];
                // A fraction (0.9434765919) or the whole part of a decimal is a number, not an id.
                let decimal = (s > 0 && hay[s - 1] == b'.')
                    || (hay.get(e) == Some(&b'.')
                        && hay.get(e + 1).is_some_and(u8::is_ascii_digit));
                let mut digits = [0u8; 10];
                let mut n = 0;
                for &b in m {
                    if b.is_ascii_digit() && n < 10 {
                        digits[n] = b;
                        n += 1;
                    }
                }
                if decimal {
                } else if is_valid_nhs_number(&digits[..n]) {
                    found(IdKind::Nhs, s, e);
                } else {
                    invalid_nhs += 1;
                }
            });
        }
        if want[IdKind::Postcode as usize] {
            let postcode: &Regex = if self.postcode_any_case {
                &POSTCODE_ANY_CASE
            } else {
                &POSTCODE_UPPER
            };
            each_match(postcode, hay, starts[1], accept_before, |s, e| {
                found(IdKind::Postcode, s, e)
            });
        }
        if want[IdKind::Email as usize] {
            each_match(&EMAIL, hay, starts[2], accept_before, |s, e| {
                found(IdKind::Email, s, e)
            });
        }
        if want_date {
            // In a date-of-birth column every date counts; the keyword search would only repeat it.
            each_match(&DATE, hay, starts[3], accept_before, |s, e| {
                found(IdKind::Dob, s, e)
            });
        } else if want_dob_text {
            each_match(&DOB_TEXT, hay, starts[3], accept_before, |s, e| {
                found(IdKind::Dob, s, e)
            });
        }
        invalid_nhs
    }
}

fn each_match(re: &Regex, hay: &[u8], from: usize, before: usize, mut f: impl FnMut(usize, usize)) {
    let mut pos = from;
    while pos < before && pos <= hay.len() {
        let Some(m) = re.find_at(hay, pos) else { break };
        if m.start() >= before {
            break;
        }
        f(m.start(), m.end());
        pos = m.end().max(m.start() + 1);
    }
}

/// What the identifier rules found, per kind.
#[derive(Debug, Default)]
pub(crate) struct IdFindings {
    pub by_kind: [Findings; 4],
    pub invalid_nhs: u64,
}

/// Lines longer than this are scanned in pieces, each overlapping the next by [`OVERLAP`].
const MAX_PENDING: usize = 1 << 20;
/// Longer than any identifier match (an e-mail is at most 64 + 1 + 5 × 64 + 24 bytes).
const OVERLAP: usize = 512;

/// Scans a text file streamed in chunks of any size, holding at most one partial line
/// (or [`MAX_PENDING`] bytes of an overlong one).
#[derive(Debug)]
pub(crate) struct TextScanner {
    scan: Scan,
    /// The unscanned partial line at the end of the input so far (never holds a newline).
    carry: Vec<u8>,
    /// Absolute offset of `carry[0]`, or of the next byte when it is empty.
    carry_abs: u64,
    /// Per kind: matches starting before this were reported already (overlong-line pieces).
    resume: [u64; 4],
    /// Newlines are counted up to here; `line` is the 1-based line there, starting at `line_start`.
    counted_to: u64,
    line: u64,
    line_start: u64,
    matches: Vec<(usize, usize, IdKind)>,
    pub found: IdFindings,
}

impl TextScanner {
    pub fn new(scan: Scan) -> TextScanner {
        TextScanner {
            scan,
            carry: Vec::new(),
            carry_abs: 0,
            resume: [0; 4],
            counted_to: 0,
            line: 1,
            line_start: 0,
            matches: Vec::new(),
            found: IdFindings::default(),
        }
    }

    pub fn update(&mut self, chunk: &[u8]) {
        if !self.scan.any() {
            return;
        }
        let mut rest = chunk;
        if !self.carry.is_empty() {
            match memchr(b'\n', rest) {
                Some(i) => {
                    self.carry.extend_from_slice(&rest[..=i]);
                    rest = &rest[i + 1..];
                    self.flush_carry();
                }
                None => {
                    self.carry.extend_from_slice(rest);
                    self.flush_long_carry();
                    return;
                }
            }
        }
        // Whole lines are scanned where they lie, without copying.
        if let Some(j) = memrchr(b'\n', rest) {
            let (lines, tail) = rest.split_at(j + 1);
            let abs = self.carry_abs;
            self.scan_piece(lines, abs, lines.len());
            self.advance(lines, abs, abs + lines.len() as u64);
            self.carry_abs += lines.len() as u64;
            rest = tail;
        }
        self.carry.extend_from_slice(rest);
        self.flush_long_carry();
    }

    pub fn finish(mut self) -> IdFindings {
        if self.scan.any() && !self.carry.is_empty() {
            self.flush_carry();
        }
        self.found
    }

    fn flush_carry(&mut self) {
        let carry = std::mem::take(&mut self.carry);
        let abs = self.carry_abs;
        self.scan_piece(&carry, abs, carry.len());
        self.advance(&carry, abs, abs + carry.len() as u64);
        self.carry_abs += carry.len() as u64;
        self.carry = carry;
        self.carry.clear();
    }

    /// An overlong line: scan all but the last [`OVERLAP`] bytes, and keep those (they may hold
    /// the start of an identifier that continues in the next chunk).
    fn flush_long_carry(&mut self) {
        if self.carry.len() <= MAX_PENDING {
            return;
        }
        let carry = std::mem::take(&mut self.carry);
        let abs = self.carry_abs;
        let cut = carry.len() - OVERLAP;
        self.scan_piece(&carry, abs, cut);
        let cut_abs = abs + cut as u64;
        self.advance(&carry, abs, cut_abs);
        for r in &mut self.resume {
            *r = (*r).max(cut_abs);
        }
        // Keep a little context before the cut for word boundaries.
        let keep_from = cut - 16;
        self.carry = carry;
        self.carry.drain(..keep_from);
        self.carry_abs = abs + keep_from as u64;
    }

    /// Reports matches starting before `accept_before` in `piece` (at absolute offset `abs`).
    fn scan_piece(&mut self, piece: &[u8], abs: u64, accept_before: usize) {
        let starts = self
            .resume
            .map(|r| usize::try_from(r.saturating_sub(abs)).unwrap_or(usize::MAX));
        let mut matches = std::mem::take(&mut self.matches);
        matches.clear();
        self.found.invalid_nhs +=
            self.scan
                .block(piece, starts, accept_before, false, &mut |k, s, e| {
                    matches.push((s, e, k))
                });
        matches.sort_unstable_by_key(|m| m.0);
        for &(s, e, kind) in &matches {
            let s_abs = abs + s as u64;
            self.advance(piece, abs, s_abs);
            let (line, column) = (self.line, s_abs - self.line_start + 1);
            self.found.by_kind[kind as usize].push(|| Finding {
                line: Some(line),
                column: Some(column),
                value: Some(mask(&piece[s..e])),
                ..Default::default()
            });
            let r = &mut self.resume[kind as usize];
            *r = (*r).max(abs + e as u64);
        }
        self.matches = matches;
    }

    /// Counts the newlines of `piece` (at absolute `abs`) between `counted_to` and `to`.
    fn advance(&mut self, piece: &[u8], abs: u64, to: u64) {
        if to <= self.counted_to {
            return;
        }
        let from = (self.counted_to.max(abs) - abs) as usize;
        let end = ((to - abs) as usize).min(piece.len());
        if from < end {
            for i in memchr_iter(b'\n', &piece[from..end]) {
                self.line += 1;
                self.line_start = abs + (from + i) as u64 + 1;
            }
        }
        self.counted_to = to;
    }
}

#[cfg(test)]
mod tests;
