//! The policy's table parameters, prepared once per file: lower-cased markers, header words, and
//! the first bytes that rule most cells out at once.

use crate::headers::words;
use crate::policy::Policy;

/// The policy's table parameters, prepared once per file.
#[derive(Debug)]
pub(super) struct PreparedPolicy {
    pub(super) non_count: Vec<Vec<String>>,
    pub(super) missing: Vec<Vec<u8>>,
    pub(super) markers: Vec<Vec<u8>>,
    /// The longest missing or suppression marker, and the first bytes of all of them (either
    /// case): most text cells skip both lists at once.
    pub(super) marker_max_len: usize,
    pub(super) marker_first: [bool; 256],
    pub(super) less_than_markers: bool,
    pub(super) dob_columns: Vec<Vec<String>>,
    pub(super) total_labels: Vec<Vec<u8>>,
    /// First letters of the labels: most text cells are ruled out without normalising them.
    pub(super) label_first: [bool; 256],
    pub(super) total_label_words: Vec<Vec<String>>,
    pub(super) identifier_columns: Vec<Vec<String>>,
    pub(super) threshold: u64,
    pub(super) base: u64,
    pub(super) midpoint6_suffix: Option<String>,
    pub(super) max_rows: u64,
}

impl PreparedPolicy {
    pub(super) fn new(p: &Policy) -> PreparedPolicy {
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
        PreparedPolicy {
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
