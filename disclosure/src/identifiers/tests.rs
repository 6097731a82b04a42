use super::*;
use crate::policy::Policy;

fn scan() -> Scan {
    Scan::new(&Policy::with_defaults("t"))
}

fn kinds_in(hay: &str, dob_column: bool) -> Vec<(IdKind, String)> {
    let mut out = Vec::new();
    scan().block(
        hay.as_bytes(),
        [0; 4],
        hay.len(),
        dob_column,
        &mut |k, s, e| out.push((k, hay[s..e].to_string())),
    );
    out
}

fn text(chunks: &[&[u8]]) -> IdFindings {
    let mut t = TextScanner::new(scan());
    for c in chunks {
        t.update(c);
    }
    t.finish()
}

#[test]
fn nhs_check_digit() {
    assert!(is_valid_nhs_number(b"9434765919"));
    assert!(is_valid_nhs_number(b"4010232137"));
    assert!(!is_valid_nhs_number(b"9434765918"), "wrong check digit");
    assert!(!is_valid_nhs_number(b"9434765910"));
    // Remainder 1 gives check value 10: no valid number exists with these nine digits.
    assert!(!is_valid_nhs_number(b"1000000013"));
    assert!(!is_valid_nhs_number(b"0000000000"), "placeholder");
    assert!(!is_valid_nhs_number(b"1111111111"), "placeholder");
    assert!(!is_valid_nhs_number(b"943476591"), "nine digits");
    assert!(!is_valid_nhs_number(b"94347659190"));
    assert!(!is_valid_nhs_number(b"94347a5919"));
    // Every check digit but one is wrong for the same first nine digits.
    let valid = (0..10u8)
        .filter(|d| {
            is_valid_nhs_number(&[
                b'9',
                b'4',
                b'3',
                b'4',
                b'7',
                b'6',
                b'5',
                b'9',
                b'1',
                b'0' + d,
            ])
        })
        .count();
    assert_eq!(valid, 1);
}

#[test]
fn nhs_numbers_in_text_only_with_valid_check_digit() {
    let found = kinds_in(
        "patient 943 476 5919 and 943-476-5919 and 9434765919.",
        false,
    );
    assert_eq!(found.len(), 3, "{found:?}");
    assert!(found.iter().all(|(k, _)| *k == IdKind::Nhs));
    assert!(kinds_in("patient 943 476 5918 and 9434765918", false).is_empty());
    // Part of a longer number, a mixed separator, a decimal: not NHS numbers.
    assert!(kinds_in("94347659190 943 476-5919 0.9434765919 9434765919.5", false).is_empty());
    let mut invalid = 0;
    invalid += scan().block(b"9434765918", [0; 4], 10, false, &mut |_, _, _| {});
    assert_eq!(invalid, 1);
}

#[test]
fn postcodes() {
    for pc in [
        "SW1A 1AA", "M1 1AE", "B33 8TH", "CR2 6XH", "DN55 1PT", "W1A 0AX", "EC1A 1BB", "GIR 0AA",
        "SW1A1AA",
    ] {
        let found = kinds_in(&format!("lives at {pc}, near"), false);
        assert_eq!(found, vec![(IdKind::Postcode, pc.to_string())], "{pc}");
    }
    // Districts alone, impossible letters, lower case (by default), longer words.
    for not in [
        "SW1A",
        "Q1 1AA",
        "SW1A 1AI",
        "sw1a 1aa",
        "XSW1A 1AA",
        "AB12 3CDE",
        "123 456",
    ] {
        assert!(kinds_in(not, false).is_empty(), "{not}");
    }
    let mut p = Policy::with_defaults("t");
    p.uk_postcode.ignore_case = true;
    let mut n = 0;
    Scan::new(&p).block(b"sw1a 1aa", [0; 4], 8, false, &mut |_, _, _| n += 1);
    assert_eq!(n, 1);
}

#[test]
fn emails() {
    let found = kinds_in("mail jo.smith+x@nhs.net or a@b.co.uk now", false);
    assert_eq!(
        found,
        vec![
            (IdKind::Email, "jo.smith+x@nhs.net".to_string()),
            (IdKind::Email, "a@b.co.uk".to_string())
        ]
    );
    for not in ["@nhs.net", "jo@", "jo@nhs", "a @ b.com", "x@y.c"] {
        assert!(kinds_in(not, false).is_empty(), "{not}");
    }
}

#[test]
fn dates_of_birth_in_text() {
    for t in [
        "DOB: 01/02/1980",
        "dob 1/2/80",
        "D.O.B. 01-02-1980",
        "Date of birth = 1980-02-01",
        "born on 1 February 1980",
        "Birthdate: Feb 1st, 1980",
        "birth date 12.11.1975",
    ] {
        let found = kinds_in(t, false);
        assert_eq!(found.len(), 1, "{t}: {found:?}");
        assert_eq!(found[0].0, IdKind::Dob, "{t}");
    }
    // A date without the keyword, or the keyword without a date, is not a date of birth.
    for not in [
        "admitted 01/02/1980",
        "DOB: unknown",
        "doberman 01/02/1980",
        "DOB:\n01/02/1980",
    ] {
        assert!(kinds_in(not, false).is_empty(), "{not}");
    }
}

#[test]
fn bare_dates_count_only_in_date_of_birth_columns() {
    assert_eq!(kinds_in("1980-02-01", true).len(), 1);
    assert_eq!(kinds_in("01/02/1980", true).len(), 1);
    assert_eq!(kinds_in("1 Feb 1980", true).len(), 1);
    assert!(kinds_in("1980-02-01", false).is_empty());
    assert!(kinds_in("1980", true).is_empty());
    assert!(kinds_in("unknown", true).is_empty());
}

#[test]
fn rules_switched_off_find_nothing() {
    let mut p = Policy::with_defaults("t");
    p.nhs_number.action = Action::Off;
    p.email_address.action = Action::Off;
    let mut n = 0;
    Scan::new(&p).block(b"9434765919 a@b.com", [0; 4], 18, false, &mut |_, _, _| {
        n += 1
    });
    assert_eq!(n, 0);
}

#[test]
fn text_findings_have_line_and_column() {
    let f = text(&[b"first line\nsecond 943 476 5919\r\nthird a@b.com\n"]);
    let nhs = &f.by_kind[IdKind::Nhs as usize];
    assert_eq!(nhs.total, 1);
    assert_eq!((nhs.list[0].line, nhs.list[0].column), (Some(2), Some(8)));
    assert_eq!(nhs.list[0].value.as_deref(), Some("94* *** ****"));
    let email = &f.by_kind[IdKind::Email as usize];
    assert_eq!(
        (email.list[0].line, email.list[0].column),
        (Some(3), Some(7))
    );
}

#[test]
fn chunking_never_changes_text_findings() {
    let mut doc = Vec::new();
    for i in 0..200 {
        doc.extend_from_slice(
            format!(
                "line {i}: contact jo{i}@example.org, NHS 943 476 5919, SW1A 1AA, DOB: 01/02/1980\n"
            )
            .as_bytes(),
        );
    }
    doc.extend_from_slice(b"no newline at the end 9434765919");
    let whole = text(&[&doc]);
    let summary = |f: &IdFindings| {
        f.by_kind
            .iter()
            .map(|k| {
                (
                    k.total,
                    k.list
                        .iter()
                        .map(|x| (x.line, x.column))
                        .collect::<Vec<_>>(),
                )
            })
            .collect::<Vec<_>>()
    };
    assert_eq!(whole.by_kind[IdKind::Nhs as usize].total, 201);
    assert_eq!(whole.by_kind[IdKind::Email as usize].total, 200);
    assert_eq!(whole.by_kind[IdKind::Postcode as usize].total, 200);
    assert_eq!(whole.by_kind[IdKind::Dob as usize].total, 200);
    for size in [1, 2, 3, 7, 64, 1000, 4096] {
        let chunks: Vec<&[u8]> = doc.chunks(size).collect();
        assert_eq!(
            summary(&text(&chunks)),
            summary(&whole),
            "chunk size {size}"
        );
    }
}

#[test]
fn overlong_lines_are_scanned_in_overlapping_pieces() {
    // One 3 MiB line, identifiers placed across every piece boundary region.
    let mut line = vec![b' '; 3 * MAX_PENDING];
    let mut placed = Vec::new();
    let mut pos = 100;
    while pos + 20 < line.len() {
        line[pos..pos + 10].copy_from_slice(b"9434765919");
        placed.push(pos as u64 + 1);
        pos += 4093;
    }
    line.extend_from_slice(b"\nnext a@b.com\n");
    for size in [MAX_PENDING / 3 + 7, 65536, 1 << 22] {
        let chunks: Vec<&[u8]> = line.chunks(size).collect();
        let f = text(&chunks);
        let nhs = &f.by_kind[IdKind::Nhs as usize];
        assert_eq!(nhs.total, placed.len() as u64, "chunk size {size}");
        let cols: Vec<u64> = nhs.list.iter().map(|x| x.column.unwrap()).collect();
        assert_eq!(cols, placed[..cols.len()], "chunk size {size}");
        assert!(nhs.list.iter().all(|x| x.line == Some(1)));
        let email = &f.by_kind[IdKind::Email as usize];
        assert_eq!((email.total, email.list[0].line), (1, Some(2)));
    }
}
