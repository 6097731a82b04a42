//! How a reviewer sees a file: what kind of preview it gets, a table read from its first bytes,
//! and which cells the disclosure checks flagged. Pure functions; the pages render them.

use std::collections::BTreeMap;

use crate::disclosure::record::{DisclosureRecord, Outcome};

/// The most bytes of a file read for an on-page preview; larger files show their beginning.
pub const PREVIEW_BYTES: usize = 512 * 1024;
/// The most table rows rendered on a page (the checks always read the whole file).
pub const PREVIEW_ROWS: usize = 500;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Table {
        delimiter: u8,
    },
    Image {
        mime: &'static str,
    },
    Pdf,
    Text,
    /// Shown by its checks only; the reviewer downloads it to look inside.
    Other,
}

impl Kind {
    /// The type a file of this kind is served with for viewing in the browser; `None` for kinds
    /// that are only downloaded.
    pub fn inline_mime(self) -> Option<&'static str> {
        match self {
            Kind::Table { .. } | Kind::Text => Some("text/plain; charset=utf-8"),
            Kind::Image { mime } => Some(mime),
            Kind::Pdf => Some("application/pdf"),
            Kind::Other => None,
        }
    }
}

/// The preview kind from the file name's extension (never from the bytes: a reviewer must not be
/// shown active content, so SVG and HTML are text).
pub fn kind_of(file_name: &str) -> Kind {
    let extension = file_name
        .rsplit_once('.')
        .map(|(_, ext)| ext.to_ascii_lowercase())
        .unwrap_or_default();
    match extension.as_str() {
        "csv" => Kind::Table { delimiter: b',' },
        "tsv" | "tab" => Kind::Table { delimiter: b'\t' },
        "png" => Kind::Image { mime: "image/png" },
        "jpg" | "jpeg" => Kind::Image { mime: "image/jpeg" },
        "gif" => Kind::Image { mime: "image/gif" },
        "webp" => Kind::Image { mime: "image/webp" },
        "pdf" => Kind::Pdf,
        "txt" | "md" | "log" | "json" | "yaml" | "yml" | "r" | "py" | "sql" | "do" | "sas"
        | "html" | "svg" | "tex" | "rmd" | "ipynb" => Kind::Text,
        _ => Kind::Other,
    }
}

/// The start of a table, as rows of cells (row 0 is the header).
#[derive(Debug, PartialEq, Eq)]
pub struct Table {
    pub rows: Vec<Vec<String>>,
    /// More rows (or bytes) follow than are shown.
    pub truncated: bool,
}

/// Reads the rows in `bytes` (the first `PREVIEW_BYTES` of a file). `complete` says whether the
/// bytes are the whole file; if not, a last row cut in the middle is dropped.
pub fn table(bytes: &[u8], delimiter: u8, complete: bool) -> Table {
    let mut reader = csv::ReaderBuilder::new()
        .delimiter(delimiter)
        .has_headers(false)
        .flexible(true)
        .from_reader(bytes);
    let mut rows = Vec::new();
    let mut truncated = !complete;
    for record in reader.byte_records() {
        let Ok(record) = record else {
            truncated = true;
            break;
        };
        if rows.len() == PREVIEW_ROWS {
            truncated = true;
            break;
        }
        rows.push(
            record
                .iter()
                .map(|cell| String::from_utf8_lossy(cell).into_owned())
                .collect::<Vec<_>>(),
        );
    }
    if !complete && !rows.is_empty() {
        // The last row read may be cut off mid-way: better not shown than shown wrong.
        rows.pop();
    }
    Table { rows, truncated }
}

/// The start of a text file as text; invalid UTF-8 is shown with replacement characters.
pub fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// One check's note on one table cell.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Flag {
    pub rule: String,
    pub outcome: Outcome,
    pub note: String,
}

/// The flagged cells of a table, by spreadsheet coordinates (row 1 is the header; 1-based
/// columns), as the disclosure record gives them. Findings without both coordinates (a whole
/// column or file) are not cell flags.
pub fn cell_flags(record: &DisclosureRecord) -> BTreeMap<(u64, u64), Vec<Flag>> {
    let mut flags: BTreeMap<(u64, u64), Vec<Flag>> = BTreeMap::new();
    for rule in &record.rules {
        if rule.outcome == Outcome::Pass {
            continue;
        }
        for finding in &rule.findings {
            if let (Some(row), Some(column)) = (finding.row, finding.column) {
                flags.entry((row, column)).or_default().push(Flag {
                    rule: rule.rule.name().to_string(),
                    outcome: rule.outcome,
                    note: finding.note.clone().unwrap_or_else(|| rule.message.clone()),
                });
            }
        }
    }
    flags
}

/// The worst outcome among a cell's flags, for its highlight.
pub fn worst(flags: &[Flag]) -> Outcome {
    if flags.iter().any(|f| f.outcome == Outcome::Fail) {
        Outcome::Fail
    } else {
        Outcome::Warn
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::disclosure::{Policy, check_bytes};

    #[test]
    fn kinds_come_from_the_extension_and_active_content_is_text() {
        assert_eq!(kind_of("counts.CSV"), Kind::Table { delimiter: b',' });
        assert_eq!(kind_of("counts.tsv"), Kind::Table { delimiter: b'\t' });
        assert_eq!(kind_of("fig.PNG"), Kind::Image { mime: "image/png" });
        assert_eq!(kind_of("paper.pdf"), Kind::Pdf);
        assert_eq!(kind_of("chart.svg"), Kind::Text);
        assert_eq!(kind_of("page.html"), Kind::Text);
        assert_eq!(kind_of("model.rds"), Kind::Other);
        assert_eq!(kind_of("no-extension"), Kind::Other);
        assert_eq!(Kind::Other.inline_mime(), None);
        assert_eq!(Kind::Text.inline_mime(), Some("text/plain; charset=utf-8"));
    }

    #[test]
    fn a_complete_table_is_read_whole_with_quotes_and_ragged_rows() {
        let t = table(b"area,count\n\"North, East\",12\nSouth\n", b',', true);
        assert_eq!(
            t.rows,
            vec![
                vec!["area".to_string(), "count".into()],
                vec!["North, East".into(), "12".into()],
                vec!["South".into()],
            ]
        );
        assert!(!t.truncated);
    }

    #[test]
    fn a_cut_table_drops_its_possibly_partial_last_row() {
        let t = table(b"a\tb\n1\t2\n3\t4", b'\t', false);
        assert_eq!(t.rows.len(), 2);
        assert_eq!(t.rows[1], vec!["1".to_string(), "2".into()]);
        assert!(t.truncated);
    }

    #[test]
    fn long_tables_stop_at_the_row_limit() {
        let mut csv = String::from("n\n");
        for i in 0..(PREVIEW_ROWS + 10) {
            csv.push_str(&format!("{i}\n"));
        }
        let t = table(csv.as_bytes(), b',', true);
        assert_eq!(t.rows.len(), PREVIEW_ROWS);
        assert!(t.truncated);
    }

    #[test]
    fn small_counts_are_flagged_at_their_cells() {
        let policy = Policy::with_defaults("test");
        let csv = b"region,patients\nNorth,120\nSouth,3\nEast,250\n";
        let record = check_bytes(&policy, "counts.csv", csv);
        let flags = cell_flags(&record);
        // "3" is row 3 (the header is row 1), column 2.
        let cell = flags.get(&(3, 2)).expect("the small count is flagged");
        assert_eq!(worst(cell), Outcome::Fail);
        assert!(cell.iter().any(|f| f.rule == "min-cell-count"), "{cell:?}");
        assert!(
            !flags.contains_key(&(2, 2)),
            "120 is not flagged: {flags:?}"
        );
    }
}
