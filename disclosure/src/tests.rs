//! Whole-record tests: every rule on files that pass and files that fail, the edge cases of
//! real CSVs, chunking, and garbage that must never panic.

use super::*;
use rand::{Rng, SeedableRng};

fn policy() -> Policy {
    Policy::with_defaults("test")
}

fn check(name: &str, text: &str) -> DisclosureRecord {
    check_bytes(&policy(), name, text.as_bytes())
}

fn rule(r: &DisclosureRecord, id: RuleId) -> &RuleResult {
    r.rule(id)
        .unwrap_or_else(|| panic!("no {id} in the record of {}: {r:#?}", r.file))
}

fn outcome(r: &DisclosureRecord, id: RuleId) -> Outcome {
    rule(r, id).outcome
}

/// (row, column) of each listed finding.
fn cells(r: &DisclosureRecord, id: RuleId) -> Vec<(u64, u64)> {
    rule(r, id)
        .findings
        .iter()
        .map(|f| (f.row.unwrap(), f.column.unwrap()))
        .collect()
}

/// A table every rule passes: counts ≥ 10, multiples of 5, no zeros, a consistent total.
const CLEAN: &str = "region,count\nNorth,15\nSouth,20\nEast,35\nTotal,70\n";

#[test]
fn a_clean_table_passes_every_rule() {
    let r = check("t.csv", CLEAN);
    for res in &r.rules {
        assert_eq!(res.outcome, Outcome::Pass, "{}: {}", res.rule, res.message);
    }
    assert_eq!(r.outcome, Outcome::Pass);
    assert!(!r.blocked);
    assert_eq!(r.content, Content::Table);
    assert_eq!(
        r.rules.len(),
        RuleId::ALL.len(),
        "every rule ran on a table"
    );
    assert!(r.not_applicable.is_empty());
    let t = r.table.as_ref().unwrap();
    assert_eq!((t.data_rows, t.columns, t.delimiter.as_str()), (4, 2, ","));
    assert_eq!(t.count_columns, ["count"]);
    assert_eq!(
        rule(&r, RuleId::Totals).message,
        "1 total matches their cells"
    );
}

// ---- gatekeeping -------------------------------------------------------------------------

#[test]
fn file_types() {
    assert_eq!(
        outcome(&check("out/t.CSV", CLEAN), RuleId::FileType),
        Outcome::Pass
    );
    for name in ["t.exe", "t.svg", "README", "t.csv.zip"] {
        let r = check(name, "hello");
        assert_eq!(outcome(&r, RuleId::FileType), Outcome::Fail, "{name}");
        assert!(r.blocked, "{name}");
    }
    // An unlisted type is still scanned for identifiers.
    let r = check("t.xyz", "NHS 943 476 5919");
    assert_eq!(outcome(&r, RuleId::NhsNumber), Outcome::Fail);
    assert!(r.not_applicable.contains(&RuleId::TextEncoding));
}

#[test]
fn binary_files_need_their_signature_and_a_human() {
    let png = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR";
    let r = check_bytes(&policy(), "plot.png", png);
    assert_eq!(outcome(&r, RuleId::FileType), Outcome::Warn);
    assert!(!r.blocked);
    assert_eq!(r.content, Content::Binary);
    assert!(r.not_applicable.contains(&RuleId::NhsNumber));
    assert!(r.not_applicable.contains(&RuleId::MinCellCount));
    let fake = check("plot.png", "region,count\nNorth,4\n");
    assert_eq!(outcome(&fake, RuleId::FileType), Outcome::Fail);
    assert!(rule(&fake, RuleId::FileType).message.contains("not a PNG"));
    assert!(fake.blocked);
    let pdf = check("report.pdf", "%PDF-1.7\n...");
    assert_eq!(outcome(&pdf, RuleId::FileType), Outcome::Warn);
    // A PNG signature split across chunks still counts.
    let p = policy();
    let mut c = Checker::new(&p, "plot.png");
    for b in png.chunks(3) {
        c.update(b);
    }
    assert_eq!(outcome(&c.finish(), RuleId::FileType), Outcome::Warn);
}

#[test]
fn file_sizes() {
    let p = Policy::from_yaml(
        "name: small\nrules:\n  file-size: {maxSize: 40}\n  file-type:\n    types: [{extensions: [csv], content: table, maxSize: 20}, {extensions: [txt], content: text}]\n",
    )
    .unwrap();
    let r = check_bytes(&p, "t.csv", b"region,count\nNorth,15\n");
    assert_eq!(r.size, 22);
    assert_eq!(
        outcome(&r, RuleId::FileType),
        Outcome::Fail,
        "over the csv type's 20 bytes"
    );
    assert_eq!(outcome(&r, RuleId::FileSize), Outcome::Pass);
    let r = check_bytes(&p, "t.txt", &[b'a'; 41]);
    assert_eq!(outcome(&r, RuleId::FileType), Outcome::Pass);
    assert_eq!(outcome(&r, RuleId::FileSize), Outcome::Fail);
    assert!(r.blocked);
    assert_eq!(
        outcome(&check_bytes(&p, "t.txt", &[b'a'; 40]), RuleId::FileSize),
        Outcome::Pass
    );
}

#[test]
fn text_encodings() {
    assert_eq!(
        outcome(&check("t.txt", "plain"), RuleId::TextEncoding),
        Outcome::Pass
    );
    // Latin-1: scanned byte by byte, reviewers told, nothing blocked.
    let r = check_bytes(&policy(), "t.csv", b"region,count\nCaf\xe9,4\n");
    assert_eq!(outcome(&r, RuleId::TextEncoding), Outcome::Warn);
    assert!(rule(&r, RuleId::TextEncoding).message.contains("offset 16"));
    assert_eq!(
        cells(&r, RuleId::MinCellCount),
        [(2, 2)],
        "the table is still read"
    );
    assert_eq!(
        rule(&r, RuleId::MinCellCount).findings[0].value.as_deref(),
        Some("4")
    );
    // NUL bytes: UTF-16 without a BOM hides every digit from the scan.
    let utf16: Vec<u8> = "NHS 9434765919"
        .encode_utf16()
        .flat_map(|u| u.to_le_bytes())
        .collect();
    let r = check_bytes(&policy(), "t.txt", &utf16);
    assert_eq!(outcome(&r, RuleId::TextEncoding), Outcome::Fail);
    assert!(r.blocked);
    // With a BOM: not scanned at all, and the identifier rules say so instead of passing.
    let mut bom16 = vec![0xFF, 0xFE];
    bom16.extend_from_slice(&utf16);
    let r = check_bytes(&policy(), "t.csv", &bom16);
    assert_eq!(outcome(&r, RuleId::TextEncoding), Outcome::Fail);
    assert!(rule(&r, RuleId::TextEncoding).message.contains("UTF-16LE"));
    assert_eq!(outcome(&r, RuleId::NhsNumber), Outcome::Warn);
    assert_eq!(outcome(&r, RuleId::MinCellCount), Outcome::Warn);
}

#[test]
fn a_utf8_bom_is_not_part_of_the_first_header() {
    let r = check("t.csv", "\u{feff}count,region\n4,North\n");
    assert_eq!(outcome(&r, RuleId::TextEncoding), Outcome::Pass);
    assert_eq!(
        rule(&r, RuleId::MinCellCount).findings[0].header.as_deref(),
        Some("count")
    );
    assert_eq!(r.table.unwrap().count_columns, ["count"]);
}

// ---- identifiers -------------------------------------------------------------------------

#[test]
fn nhs_numbers_in_tables_need_a_valid_check_digit() {
    let r = check("t.csv", "ref,n\n9434765919,15\n\"943 476 5919\",20\n");
    assert_eq!(outcome(&r, RuleId::NhsNumber), Outcome::Fail);
    assert!(r.blocked);
    assert_eq!(cells(&r, RuleId::NhsNumber), [(2, 1), (3, 1)]);
    let f = &rule(&r, RuleId::NhsNumber).findings[0];
    assert_eq!(f.header.as_deref(), Some("ref"));
    assert_eq!(
        f.value.as_deref(),
        Some("94********"),
        "masked in the record"
    );

    let r = check("t.csv", "ref,n\n9434765918,15\n");
    assert_eq!(outcome(&r, RuleId::NhsNumber), Outcome::Pass);
    assert!(
        rule(&r, RuleId::NhsNumber)
            .message
            .contains("1 ten-digit number with an invalid check digit")
    );
}

#[test]
fn identifiers_in_text_files() {
    let text =
        "Patient 943 476 5919 seen\nDOB: 01/02/1980\ncontact: jo.bloggs@nhs.net\nat SW1A 1AA\n";
    let r = check("notes.txt", text);
    for id in [
        RuleId::NhsNumber,
        RuleId::DateOfBirth,
        RuleId::EmailAddress,
        RuleId::UkPostcode,
    ] {
        assert_eq!(outcome(&r, id), Outcome::Fail, "{id}");
        assert_eq!(rule(&r, id).findings_total, 1, "{id}");
    }
    let line = |id| rule(&r, id).findings[0].line;
    assert_eq!(line(RuleId::NhsNumber), Some(1));
    assert_eq!(line(RuleId::DateOfBirth), Some(2));
    assert_eq!(line(RuleId::EmailAddress), Some(3));
    assert_eq!(line(RuleId::UkPostcode), Some(4));
    assert!(r.blocked);
    assert_eq!(r.content, Content::Text);
    assert!(r.table.is_none());
    assert!(r.not_applicable.contains(&RuleId::MinCellCount));

    let clean = check(
        "notes.md",
        "# Results\nThe model fitted well (n = 1500, p < 0.05) in SW1A.\n",
    );
    for id in [
        RuleId::NhsNumber,
        RuleId::DateOfBirth,
        RuleId::EmailAddress,
        RuleId::UkPostcode,
    ] {
        assert_eq!(outcome(&clean, id), Outcome::Pass, "{id}");
    }
    assert!(!clean.blocked);
}

#[test]
fn identifiers_in_table_cells() {
    let r = check(
        "t.csv",
        "site,notes,n\nA,call jo@example.org,15\nB,near M1 1AE,20\nC,DOB: 1/2/80,25\nD,fine,30\n",
    );
    assert_eq!(cells(&r, RuleId::EmailAddress), [(2, 2)]);
    assert_eq!(cells(&r, RuleId::UkPostcode), [(3, 2)]);
    assert_eq!(cells(&r, RuleId::DateOfBirth), [(4, 2)]);
    assert_eq!(
        rule(&r, RuleId::EmailAddress).findings[0].header.as_deref(),
        Some("notes")
    );
}

#[test]
fn dates_of_birth_by_column_name() {
    let r = check(
        "t.csv",
        "DateOfBirth,n\n1980-02-01,15\n01/03/1975,20\nunknown,25\n",
    );
    assert_eq!(cells(&r, RuleId::DateOfBirth), [(2, 1), (3, 1)]);
    // Dates in other columns are not dates of birth.
    let r = check("t.csv", "admission_date,n\n2020-02-01,15\n");
    assert_eq!(outcome(&r, RuleId::DateOfBirth), Outcome::Pass);
}

#[test]
fn postcode_districts_pass() {
    let r = check("t.csv", "district,n\nSW1A,15\nM1,20\nEC1A,25\n");
    assert_eq!(outcome(&r, RuleId::UkPostcode), Outcome::Pass);
}

// ---- table rules --------------------------------------------------------------------------

#[test]
fn min_cell_count() {
    let r = check("t.csv", "region,count\nNorth,15\nSouth,4\nWest,0\n");
    let res = rule(&r, RuleId::MinCellCount);
    assert_eq!(res.outcome, Outcome::Fail);
    assert!(res.blocking);
    assert_eq!(res.findings.len(), 1, "zero is the zeros rule's business");
    let f = &res.findings[0];
    assert_eq!(
        (f.row, f.column, f.header.as_deref(), f.value.as_deref()),
        (Some(3), Some(2), Some("count"), Some("4"))
    );
    assert!(r.blocked);

    // The threshold is the policy's.
    let p = Policy::from_yaml("name: x\nrules:\n  min-cell-count: {threshold: 4}\n").unwrap();
    let r = check_bytes(&p, "t.csv", b"region,count\nNorth,15\nSouth,4\n");
    assert_eq!(outcome(&r, RuleId::MinCellCount), Outcome::Pass);
    let r = check_bytes(&p, "t.csv", b"region,count\nNorth,15\nSouth,3\n");
    assert_eq!(outcome(&r, RuleId::MinCellCount), Outcome::Fail);
}

#[test]
fn zeros_inform_without_blocking() {
    let r = check("t.csv", "region,count\nNorth,15\nSouth,0\n");
    let z = rule(&r, RuleId::Zeros);
    assert_eq!(z.outcome, Outcome::Fail);
    assert_eq!(z.action, Action::Inform);
    assert!(!z.blocking);
    assert_eq!(cells(&r, RuleId::Zeros), [(3, 2)]);
    assert_eq!(r.outcome, Outcome::Fail);
    assert!(!r.blocked, "zeros only inform by default");
    assert_eq!(
        outcome(&check("t.csv", CLEAN), RuleId::Zeros),
        Outcome::Pass
    );
}

#[test]
fn rounding() {
    let r = check("t.csv", "region,count\nNorth,15\nSouth,12\nEast,1000\n");
    assert_eq!(cells(&r, RuleId::Rounding), [(3, 2)]);
    assert_eq!(outcome(&r, RuleId::Rounding), Outcome::Fail);
    let p = Policy::from_yaml("name: x\nrules:\n  rounding: {base: 10}\n").unwrap();
    let r = check_bytes(&p, "t.csv", b"region,count\nNorth,15\nSouth,20\n");
    assert_eq!(cells(&r, RuleId::Rounding), [(2, 2)]);
}

#[test]
fn midpoint6_columns() {
    let r = check("t.csv", "group,deaths_midpoint6\na,3\nb,9\nc,0\nd,15\n");
    assert_eq!(outcome(&r, RuleId::Rounding), Outcome::Pass);
    // Midpoint-6 replaces small-number suppression, so 3 and 9 are not below-threshold counts.
    assert_eq!(outcome(&r, RuleId::MinCellCount), Outcome::Pass);
    let r = check("t.csv", "group,deaths_midpoint6\na,3\nb,10\n");
    assert_eq!(cells(&r, RuleId::Rounding), [(3, 2)]);
}

#[test]
fn suppression_markers_keep_a_count_column_and_hide_their_cells() {
    let r = check(
        "t.csv",
        "region,n\nNorth,*\nSouth,<10\nEast,[REDACTED]\nWest,c\nMid,..\nFar,≤7\nNear,15\n",
    );
    assert_eq!(r.table.as_ref().unwrap().count_columns, ["n"]);
    assert_eq!(outcome(&r, RuleId::MinCellCount), Outcome::Pass);
    let s = rule(&r, RuleId::Suppression);
    assert_eq!(s.outcome, Outcome::Pass);
    assert!(s.message.starts_with("6 suppressed cells"), "{}", s.message);
    // Unknown text is not a marker: the column is no longer counts.
    let r = check("t.csv", "region,n\nNorth,hidden\nSouth,4\n");
    assert!(r.table.unwrap().count_columns.is_empty());
}

#[test]
fn a_suppressed_cell_recoverable_from_a_row_total_fails() {
    let r = check(
        "t.csv",
        "region,male,female,total\nNorth,*,15,25\nSouth,20,20,40\n",
    );
    let s = rule(&r, RuleId::Suppression);
    assert_eq!(s.outcome, Outcome::Fail);
    assert!(s.blocking);
    assert_eq!(cells(&r, RuleId::Suppression), [(2, 2)]);
    assert_eq!(s.findings[0].header.as_deref(), Some("male"));
    assert!(
        s.findings[0].value.is_none(),
        "the record never shows the recovered value"
    );
    // Two suppressed cells in the row: neither can be recovered.
    let r = check(
        "t.csv",
        "region,male,female,total\nNorth,*,*,25\nSouth,20,20,40\n",
    );
    assert_eq!(outcome(&r, RuleId::Suppression), Outcome::Pass);
    assert_eq!(outcome(&r, RuleId::Totals), Outcome::Warn);
}

#[test]
fn a_suppressed_cell_recoverable_from_a_total_row_fails() {
    let r = check("t.csv", "region,n\nNorth,*\nSouth,20\nEast,25\nTotal,60\n");
    assert_eq!(cells(&r, RuleId::Suppression), [(2, 2)]);
    let r = check("t.csv", "region,n\nNorth,*\nSouth,<10\nEast,25\nTotal,60\n");
    assert_eq!(outcome(&r, RuleId::Suppression), Outcome::Pass);
    let t = rule(&r, RuleId::Totals);
    assert_eq!(t.outcome, Outcome::Warn);
    assert!(t.message.contains("suppressed"), "{}", t.message);
}

#[test]
fn total_rows() {
    let long = "age,sex,n\n0-9,M,15\n0-9,F,20\n0-9,All,35\n10-19,M,25\n10-19,F,30\n10-19,All,55\nAll,All,90\n";
    let r = check("t.csv", long);
    assert_eq!(
        outcome(&r, RuleId::Totals),
        Outcome::Pass,
        "{}",
        rule(&r, RuleId::Totals).message
    );
    assert_eq!(
        rule(&r, RuleId::Totals).message,
        "3 totals match their cells"
    );
    assert_eq!(r.table.as_ref().unwrap().count_columns, ["n"]);

    let wrong = long.replace("All,All,90", "All,All,95");
    let r = check("t.csv", &wrong);
    let t = rule(&r, RuleId::Totals);
    assert_eq!(t.outcome, Outcome::Fail);
    assert!(!t.blocking, "totals inform by default");
    assert_eq!(cells(&r, RuleId::Totals), [(8, 3)]);
    assert_eq!(t.findings[0].value.as_deref(), Some("95"));
    assert!(
        t.findings[0].note.as_ref().unwrap().contains("sum to 90"),
        "{:?}",
        t.findings[0].note
    );

    // A total written above its group.
    let r = check("t.csv", "group,n\nAll,45\na,20\nb,25\nAll,35\nc,15\nd,20\n");
    assert_eq!(
        rule(&r, RuleId::Totals).message,
        "2 totals match their cells"
    );
    let r = check("t.csv", "group,n\nAll,45\na,20\nb,30\n");
    assert_eq!(cells(&r, RuleId::Totals), [(2, 2)]);
}

#[test]
fn total_columns() {
    let r = check(
        "t.csv",
        "region,male,female,Total\nNorth,10,15,25\nSouth,20,20,40\n",
    );
    assert_eq!(outcome(&r, RuleId::Totals), Outcome::Pass);
    assert_eq!(
        rule(&r, RuleId::Totals).message,
        "2 totals match their cells"
    );
    let r = check(
        "t.csv",
        "region,male,female,total_patients\nNorth,10,15,30\nSouth,20,20,40\n",
    );
    assert_eq!(cells(&r, RuleId::Totals), [(2, 4)]);
    // A decimal column is not summed into the total.
    let r = check(
        "t.csv",
        "region,male,female,mean,total\nNorth,10,15,2.5,25\n",
    );
    assert_eq!(outcome(&r, RuleId::Totals), Outcome::Pass);
}

#[test]
fn no_totals_is_a_pass() {
    let r = check("t.csv", "region,count\nNorth,15\n");
    assert_eq!(rule(&r, RuleId::Totals).message, "no totals found");
}

#[test]
fn row_level_data() {
    let r = check("t.csv", "patient_id,count\np1,10\n");
    let rl = rule(&r, RuleId::RowLevel);
    assert_eq!(rl.outcome, Outcome::Fail);
    assert_eq!(cells(&r, RuleId::RowLevel), [(1, 1)]);
    assert_eq!(rl.findings[0].header.as_deref(), Some("patient_id"));
    assert!(r.blocked);
    let p = Policy::from_yaml("name: x\nrules:\n  row-level: {maxRows: 3}\n").unwrap();
    let three = b"region,count\na,10\nb,10\nc,10\n";
    assert_eq!(
        outcome(&check_bytes(&p, "t.csv", three), RuleId::RowLevel),
        Outcome::Pass
    );
    let four = b"region,count\na,10\nb,10\nc,10\nd,10\n";
    let r = check_bytes(&p, "t.csv", four);
    assert_eq!(outcome(&r, RuleId::RowLevel), Outcome::Fail);
    assert!(rule(&r, RuleId::RowLevel).message.contains("4 data rows"));
    // Region names and postcode districts are not row-level identifiers.
    let r = check(
        "t.csv",
        "region_name,postcode_district,count\nNorth,SW1A,10\n",
    );
    assert_eq!(outcome(&r, RuleId::RowLevel), Outcome::Pass);
}

// ---- reading real CSVs ----------------------------------------------------------------------

#[test]
fn count_columns_are_whole_numbers_only() {
    // Decimals: not counts, and reviewers are told the counts behind them are unchecked.
    let r = check("t.csv", "group,value\na,0.5\nb,4.25\n");
    assert!(r.table.as_ref().unwrap().count_columns.is_empty());
    assert_eq!(outcome(&r, RuleId::MinCellCount), Outcome::Warn);
    // Negative numbers: not counts, so 3 is not a small count.
    let r = check("t.csv", "group,change\na,-5\nb,3\n");
    assert!(r.table.as_ref().unwrap().count_columns.is_empty());
    assert_ne!(outcome(&r, RuleId::MinCellCount), Outcome::Fail);
    assert_eq!(outcome(&r, RuleId::Rounding), Outcome::Pass);
    // Years, ages, ids by header; a 1, 2, 3 row index by its values.
    let r = check("t.csv", "year,age,n\n2019,4,15\n2020,7,20\n");
    assert_eq!(r.table.as_ref().unwrap().count_columns, ["n"]);
    assert_eq!(outcome(&r, RuleId::Rounding), Outcome::Pass);
    let r = check("t.csv", "\"\",n\n\"1\",15\n\"2\",20\n\"3\",25\n");
    assert_eq!(r.table.as_ref().unwrap().count_columns, ["n"]);
    assert_eq!(outcome(&r, RuleId::MinCellCount), Outcome::Pass);
    // pandas writes integer columns with gaps as 12.0; thousands may be grouped.
    let r = check("t.csv", "group,n,m\na,12.0,\"1,235\"\nb,,2000\n");
    assert_eq!(r.table.as_ref().unwrap().count_columns, ["n", "m"]);
    assert_eq!(cells(&r, RuleId::Rounding), [(2, 2)]);
    assert_eq!(
        rule(&r, RuleId::Rounding).findings[0].value.as_deref(),
        Some("12")
    );
}

#[test]
fn quoted_fields_with_commas_and_newlines() {
    let r = check(
        "t.csv",
        "area,note,n\n\"London, City of\",\"two\nlines\",15\n\"Bristol, City of\",\"said \"\"hi\"\"\",4\n",
    );
    assert_eq!(r.table.as_ref().unwrap().data_rows, 2);
    assert_eq!(outcome(&r, RuleId::TableStructure), Outcome::Pass);
    assert_eq!(cells(&r, RuleId::MinCellCount), [(3, 3)]);
}

#[test]
fn tsv_semicolons_crlf_and_no_final_newline() {
    let r = check("t.tsv", "region\tcount\nNorth\t4\n");
    assert_eq!(r.table.as_ref().unwrap().delimiter, "\t");
    assert_eq!(cells(&r, RuleId::MinCellCount), [(2, 2)]);
    let r = check("t.csv", "region;count\nNorth;4\n");
    assert_eq!(r.table.as_ref().unwrap().delimiter, ";");
    assert_eq!(cells(&r, RuleId::MinCellCount), [(2, 2)]);
    let r = check("t.csv", "region,count\r\nNorth,15\r\nSouth,4");
    assert_eq!(cells(&r, RuleId::MinCellCount), [(3, 2)]);
    assert_eq!(
        rule(&r, RuleId::MinCellCount).findings[0].value.as_deref(),
        Some("4")
    );
    // A header with no delimiter at all is a one-column table.
    let r = check("t.csv", "count\n4\n15\n");
    assert_eq!(cells(&r, RuleId::MinCellCount), [(2, 1)]);
}

#[test]
fn empty_and_header_only_tables() {
    let r = check("t.csv", "");
    assert_eq!(r.size, 0);
    assert_eq!(outcome(&r, RuleId::TableStructure), Outcome::Warn);
    assert!(rule(&r, RuleId::TableStructure).message.contains("empty"));
    assert!(!r.blocked);
    for id in [
        RuleId::MinCellCount,
        RuleId::Zeros,
        RuleId::RowLevel,
        RuleId::NhsNumber,
    ] {
        assert_eq!(outcome(&r, id), Outcome::Pass, "{id}");
    }
    let r = check("t.csv", "region,count\n");
    assert_eq!(outcome(&r, RuleId::TableStructure), Outcome::Warn);
    assert!(rule(&r, RuleId::TableStructure).message.contains("no data"));
    assert_eq!(rule(&r, RuleId::MinCellCount).message, "no data rows");
    assert_eq!(check("t.txt", "").outcome, Outcome::Pass);
}

#[test]
fn ragged_rows_are_shown_and_still_checked() {
    let r = check("t.csv", "a,b\nx,15\ny,4,extra\nz\n");
    let s = rule(&r, RuleId::TableStructure);
    assert_eq!(s.outcome, Outcome::Warn);
    let rows: Vec<u64> = s.findings.iter().map(|f| f.row.unwrap()).collect();
    assert_eq!(rows, [3, 4]);
    assert_eq!(
        s.findings[0].note.as_deref(),
        Some("3 fields; the header has 2")
    );
    assert_eq!(cells(&r, RuleId::MinCellCount), [(3, 2)]);
}

#[test]
fn very_wide_rows() {
    let n = 20_000;
    let header: Vec<String> = (0..n).map(|i| format!("c{i}")).collect();
    let mut row: Vec<String> = vec!["15".into(); n];
    row[n - 1] = "4".into();
    let text = format!(
        "{}\n{}\n{}\n",
        header.join(","),
        row.join(","),
        vec!["20"; n].join(",")
    );
    let r = check("wide.csv", &text);
    assert_eq!(r.table.as_ref().unwrap().count_columns.len(), n);
    assert_eq!(cells(&r, RuleId::MinCellCount), [(2, n as u64)]);
    assert_eq!(
        rule(&r, RuleId::MinCellCount).findings[0].header.as_deref(),
        Some("c19999")
    );
}

#[test]
fn many_findings_are_counted_past_the_listed_ones() {
    let mut text = String::from("region,count\n");
    for i in 0..3000 {
        text.push_str(&format!("r{i},3\n"));
    }
    let r = check("t.csv", &text);
    let m = rule(&r, RuleId::MinCellCount);
    assert_eq!(m.findings_total, 3000);
    assert_eq!(m.findings.len(), record::MAX_LISTED_FINDINGS);
}

// ---- the record as a whole ----------------------------------------------------------------------

#[test]
fn rules_switched_off_are_left_out() {
    let p = Policy::from_yaml(
        "name: x\nrules:\n  zeros: {action: off}\n  min-cell-count: {action: off}\n",
    )
    .unwrap();
    let r = check_bytes(&p, "t.csv", b"region,count\nNorth,0\nSouth,4\n");
    assert!(r.rule(RuleId::Zeros).is_none());
    assert!(r.rule(RuleId::MinCellCount).is_none());
    assert!(!r.not_applicable.contains(&RuleId::Zeros));
    assert_eq!(outcome(&r, RuleId::Rounding), Outcome::Fail);
    assert!(!r.blocked, "rounding only informs");
    let r = check_bytes(&p, "t.txt", b"x");
    assert!(!r.not_applicable.contains(&RuleId::Zeros));
    assert!(r.not_applicable.contains(&RuleId::Totals));
}

#[test]
fn inform_rules_never_block_and_block_rules_do() {
    let p = Policy::from_yaml(
        "name: x\nrules:\n  min-cell-count: {action: inform}\n  zeros: {action: block}\n",
    )
    .unwrap();
    let r = check_bytes(&p, "t.csv", b"region,count\nNorth,15\nSouth,4\n");
    assert_eq!(outcome(&r, RuleId::MinCellCount), Outcome::Fail);
    assert!(!r.blocked);
    let r = check_bytes(&p, "t.csv", b"region,count\nNorth,15\nSouth,0\n");
    assert!(r.blocked);
    assert_eq!(
        r.blocking_rules().map(|x| x.rule).collect::<Vec<_>>(),
        [RuleId::Zeros]
    );
}

#[test]
fn record_json_shape() {
    let r = check("t.csv", "region,count\nNorth,15\nSouth,4\n");
    let json = serde_json::to_value(&r).unwrap();
    assert_eq!(json["file"], "t.csv");
    assert_eq!(json["content"], "table");
    assert_eq!(json["blocked"], true);
    assert_eq!(json["outcome"], "fail");
    assert_eq!(json["table"]["countColumns"][0], "count");
    let rules = json["rules"].as_array().unwrap();
    let m = rules
        .iter()
        .find(|x| x["rule"] == "min-cell-count")
        .unwrap();
    assert_eq!(m["outcome"], "fail");
    assert_eq!(m["action"], "block");
    assert_eq!(m["blocking"], true);
    assert_eq!(
        m["findings"][0],
        serde_json::json!({"row": 3, "column": 2, "header": "count", "value": "4"})
    );
    assert_eq!(serde_json::from_value::<DisclosureRecord>(json).unwrap(), r);
}

#[test]
fn check_reader_reads_in_pieces() {
    struct Trickle<'a>(&'a [u8]);
    impl Read for Trickle<'_> {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            let n = self.0.len().min(buf.len()).min(5);
            buf[..n].copy_from_slice(&self.0[..n]);
            self.0 = &self.0[n..];
            Ok(n)
        }
    }
    let text = "region,count\nNorth,15\nSouth,4\n";
    let r = check_reader(&policy(), "t.csv", Trickle(text.as_bytes())).unwrap();
    assert_eq!(r, check("t.csv", text));
    struct Broken;
    impl Read for Broken {
        fn read(&mut self, _: &mut [u8]) -> io::Result<usize> {
            Err(io::Error::other("disk on fire"))
        }
    }
    assert!(check_reader(&policy(), "t.csv", Broken).is_err());
}

fn chunked(
    p: &Policy,
    name: &str,
    bytes: &[u8],
    sizes: &mut impl FnMut() -> usize,
) -> DisclosureRecord {
    let mut c = Checker::new(p, name);
    let mut rest = bytes;
    while !rest.is_empty() {
        let n = sizes().clamp(1, rest.len());
        c.update(&rest[..n]);
        rest = &rest[n..];
    }
    c.finish()
}

#[test]
fn chunking_never_changes_the_record() {
    let mut text = String::from("\u{feff}area,sex,notes,n,total\n");
    for i in 0..300 {
        let n = [15, 4, 0, 20, 12][i % 5];
        let note = match i % 7 {
            0 => "\"a, b\"".to_string(),
            1 => "jo@nhs.net".to_string(),
            2 => "\"943 476 5919\"".to_string(),
            3 => "\"multi\nline\"".to_string(),
            _ => "x".to_string(),
        };
        text.push_str(&format!(
            "a{},{},{note},{n},{n}\r\n",
            i / 2,
            ["M", "All"][i % 2]
        ));
    }
    let p = policy();
    let whole = check_bytes(&p, "t.csv", text.as_bytes());
    assert!(whole.blocked);
    for size in [1, 2, 3, 5, 64, 1000] {
        assert_eq!(
            chunked(&p, "t.csv", text.as_bytes(), &mut || size),
            whole,
            "chunks of {size}"
        );
    }
    let mut rng = rand::rngs::StdRng::seed_from_u64(1);
    let rand_sizes = chunked(&p, "t.csv", text.as_bytes(), &mut || {
        rng.random_range(1..200)
    });
    assert_eq!(rand_sizes, whole);
}

#[test]
fn garbage_never_panics_and_chunking_never_matters() {
    let p = policy();
    let mut rng = rand::rngs::StdRng::seed_from_u64(42);
    let alphabet = b",;\t\"\n\r *<=0123456789.-eE%abcTotalAl@ \xff\xfe\x00\xef\xbb\xbf";
    let seeds: [&[u8]; 4] = [
        CLEAN.as_bytes(),
        b"a,b\n\"x,1\n",
        b"\xef\xbb\xbfn\n1\n",
        b"\xff\xfe",
    ];
    for round in 0..600 {
        let mut bytes: Vec<u8> = match round % 3 {
            0 => (0..rng.random_range(0..400))
                .map(|_| rng.random())
                .collect(),
            1 => (0..rng.random_range(0..400))
                .map(|_| alphabet[rng.random_range(0..alphabet.len())])
                .collect(),
            _ => seeds[round % seeds.len()].to_vec(),
        };
        if round % 3 == 2 && !bytes.is_empty() {
            for _ in 0..rng.random_range(1..4) {
                let i = rng.random_range(0..bytes.len());
                bytes[i] = alphabet[rng.random_range(0..alphabet.len())];
            }
        }
        for name in ["t.csv", "t.tsv", "t.txt", "t.png", "t"] {
            let whole = check_bytes(&p, name, &bytes);
            serde_json::to_string(&whole).unwrap();
            assert_eq!(whole.blocked, whole.rules.iter().any(|r| r.blocking));
            let again = chunked(&p, name, &bytes, &mut || rng.random_range(1..17));
            assert_eq!(again, whole, "{name} {bytes:?}");
        }
    }
}

#[test]
fn a_cell_recoverable_two_ways_is_listed_once() {
    let r = check(
        "t.csv",
        "region,male,female,total\nNorth,*,15,25\nSouth,20,10,30\nTotal,30,25,55\n",
    );
    let s = rule(&r, RuleId::Suppression);
    assert_eq!(
        s.message,
        "1 suppressed cell can be recovered by subtracting the other cells from a total"
    );
    assert_eq!(cells(&r, RuleId::Suppression), [(2, 2)]);
    let note = s.findings[0].note.as_deref().unwrap();
    assert!(note.contains("row 2") && note.contains("row 4"), "{note}");
}
