//! What a cell holds, for the table rules: missing, a count, suppressed, another number, text or
//! a total's label. Cheap tests come first: most cells are numbers.

use super::prepared::PreparedPolicy;

/// What one cell holds, for the table rules.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Cell {
    Missing,
    Count(u64),
    Suppressed,
    /// Negative, decimal, percentage, or too long for a count.
    Number,
    Text,
    /// Text that labels a total row ("Total", "All").
    TotalLabel,
}

/// What the table rules see in a trimmed cell. Cheap tests first: most cells are numbers.
#[inline]
pub(super) fn classify(cell: &[u8], cfg: &PreparedPolicy) -> Cell {
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
pub(super) fn number(cell: &[u8]) -> Option<Cell> {
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
pub(super) fn is_less_than(cell: &[u8]) -> bool {
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
pub(super) fn normalise<'a>(cell: &[u8], buf: &'a mut [u8; 64]) -> Option<&'a [u8]> {
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
