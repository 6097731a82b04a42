use super::classify::normalise;
use super::*;

fn cfg() -> PreparedPolicy {
    PreparedPolicy::new(&Policy::with_defaults("t"))
}

fn class(s: &str) -> Cell {
    classify(s.as_bytes(), &cfg())
}

#[test]
fn cells_are_classified() {
    assert_eq!(class(""), Cell::Missing);
    assert_eq!(class("NA"), Cell::Missing);
    assert_eq!(class("n/a"), Cell::Missing);
    assert_eq!(class("-"), Cell::Missing);
    assert_eq!(class("15"), Cell::Count(15));
    assert_eq!(class("0"), Cell::Count(0));
    assert_eq!(class("007"), Cell::Count(7));
    assert_eq!(class("12.0"), Cell::Count(12));
    assert_eq!(class("1,234"), Cell::Count(1234));
    assert_eq!(class("1,234,567"), Cell::Count(1_234_567));
    assert_eq!(class("18446744073709551615"), Cell::Count(u64::MAX));
    for n in [
        "-5",
        "+5",
        "0.5",
        ".5",
        "12.50",
        "1e3",
        "2.5E-3",
        "45%",
        "12.5 %",
        "18446744073709551616",
    ] {
        assert_eq!(class(n), Cell::Number, "{n}");
    }
    for t in [
        "0-9",
        "10-19",
        "1,2",
        "12,34",
        "1,2345",
        ",123",
        "123,",
        "1.2.3",
        "e5",
        ".",
        "2020-01-01",
        "abc",
    ] {
        assert_eq!(class(t), Cell::Text, "{t}");
    }
    for s in [
        "*",
        "**",
        "[REDACTED]",
        "[redacted]",
        "c",
        "C",
        "..",
        "x",
        "~",
        "<10",
        "< 10",
        "<=7",
        "≤7",
    ] {
        assert_eq!(class(s), Cell::Suppressed, "{s}");
    }
    assert_eq!(class("12."), Cell::Number);
    assert_eq!(class("1,234.00"), Cell::Count(1234));
    assert_eq!(class("-1,234"), Cell::Number);
    assert_eq!(class("1e"), Cell::Text);
    assert_eq!(class("%"), Cell::Text);
    assert_eq!(class("<"), Cell::Text);
    assert_eq!(class("<x"), Cell::Text);
    for l in [
        "Total",
        "TOTAL",
        "all",
        "Grand total",
        "grand  Total",
        "Totals:",
    ] {
        assert_eq!(class(l), Cell::TotalLabel, "{l}");
    }
    assert_eq!(class("Totally"), Cell::Text);
    assert_eq!(class("All ages"), Cell::Text);
}

#[test]
fn less_than_markers_can_be_switched_off() {
    let mut p = Policy::with_defaults("t");
    p.suppression.less_than_markers = false;
    assert_eq!(classify(b"<10", &PreparedPolicy::new(&p)), Cell::Text);
}

#[test]
fn normalised_labels() {
    let mut buf = [0u8; 64];
    assert_eq!(
        normalise(b"  Grand--TOTAL ", &mut buf),
        Some(&b"grand total"[..])
    );
    assert_eq!(normalise(&[b'a'; 65], &mut buf), None);
    assert_eq!(normalise(b"", &mut buf), Some(&b""[..]));
}

#[test]
fn judging_totals() {
    let v = |rows, sum, suppressed| RowSpan {
        rows,
        sum,
        suppressed,
        suppressed_row: 7,
    };
    assert!(matches!(judge(10, &[v(2, 10, 0)]), Judgement::Consistent));
    assert!(matches!(
        judge(10, &[v(2, 9, 0), v(3, 10, 0)]),
        Judgement::Consistent
    ));
    assert!(matches!(judge(10, &[v(2, 9, 0)]), Judgement::Mismatch));
    assert!(matches!(
        judge(10, &[v(2, 6, 1)]),
        Judgement::Recoverable { row: 7 }
    ));
    // The others already exceed the total: the suppressed cell is not what makes it up.
    assert!(matches!(judge(10, &[v(2, 11, 1)]), Judgement::Inconclusive));
    assert!(matches!(judge(10, &[v(3, 6, 2)]), Judgement::Inconclusive));
    assert!(matches!(judge(10, &[v(0, 0, 0)]), Judgement::NoRows));
    assert!(matches!(judge(10, &[]), Judgement::NoRows));
}

fn run(t: &mut TableChecker, bytes: &[u8]) {
    t.update(bytes);
}

#[test]
fn the_delimiter_is_guessed_from_the_header() {
    let policy = Policy::with_defaults("t");
    let scan = Scan::new(&policy);
    for (text, want) in [
        (&b"a,b;c\n"[..], ","),
        (b"a;b;c\n", ";"),
        (b"a\tb\tc\n", "\t"),
        (b"\"x;y\",b\n", ","),
        (b"single\n", ","),
    ] {
        let mut t = TableChecker::new(&policy, scan, None);
        run(&mut t, text);
        assert_eq!(t.finish().summary.delimiter, want, "{text:?}");
    }
    // A header longer than the sniffing window still decides.
    let mut long = vec![b'a'; SNIFF_BYTES + 10];
    long[5] = b';';
    let mut t = TableChecker::new(&policy, scan, None);
    for c in long.chunks(1000) {
        run(&mut t, c);
    }
    assert_eq!(t.finish().summary.delimiter, ";");
}

#[test]
fn an_overlong_record_stops_the_table_but_not_the_identifier_scan() {
    let policy = Policy::with_defaults("t");
    let scan = Scan::new(&policy);
    let mut text = b"region,count\nNorth,4\n\"".to_vec();
    text.extend(std::iter::repeat_n(b'x', 10_000));
    text.extend_from_slice(b"\",15\nnote 9434765919 a@b.com\n");
    let mut t = TableChecker::new(&policy, scan, Some(b',')).with_record_limit(4096);
    for c in text.chunks(700) {
        t.update(c);
    }
    let report = t.finish();
    let get = |id| report.results.iter().find(|r| r.0 == id).unwrap();
    let structure = get(RuleId::TableStructure);
    assert_eq!(structure.1, Outcome::Fail);
    assert!(structure.2.contains("row 3"), "{}", structure.2);
    assert_eq!(
        get(RuleId::MinCellCount).3.total,
        1,
        "rows before it were checked"
    );
    assert_eq!(report.ids.by_kind[IdKind::Nhs as usize].total, 1);
    assert_eq!(report.ids.by_kind[IdKind::Email as usize].total, 1);
    let note = report.ids.by_kind[IdKind::Nhs as usize].list[0]
        .note
        .clone()
        .unwrap();
    assert!(note.starts_with("after row 3"), "{note}");
}

#[test]
fn candidates_are_capped_but_tallies_are_exact() {
    let policy = Policy::with_defaults("t");
    let mut t = TableChecker::new(&policy, Scan::new(&policy), Some(b','));
    t.update(b"a,n\n");
    let row = b"x,3\n".repeat(MAX_CANDIDATES + 10);
    t.update(&row);
    let report = t.finish();
    let min = report
        .results
        .iter()
        .find(|r| r.0 == RuleId::MinCellCount)
        .unwrap();
    assert_eq!(min.3.total, MAX_CANDIDATES as u64 + 10);
    assert!(min.3.list.len() <= crate::record::MAX_LISTED_FINDINGS);
}
