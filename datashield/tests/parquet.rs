//! Parquet tables as pyarrow writes them (pinned in tests/clients/parquet-requirements.txt): the
//! same values written as parquet and as CSV load into equal data frames, value by value, and
//! what is not read is refused with the column and the reason, never with a panic.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use trellis_datashield::catalogue::{Catalogue, ColumnType};
use trellis_datashield::value::{RObject, Vector, is_na_real};

/// The tables of tests/clients/write_parquet.py, written once for all the tests.
fn written() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let clients = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/clients");
        let setup = Command::new(clients.join("setup.sh"))
            .arg("parquet-requirements.txt")
            .output()
            .expect("run tests/clients/setup.sh");
        assert!(
            setup.status.success(),
            "installing pyarrow from PyPI failed: {}",
            String::from_utf8_lossy(&setup.stderr)
        );
        let python = String::from_utf8(setup.stdout).unwrap().trim().to_owned();
        let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("datashield-parquet");
        let _ = std::fs::remove_dir_all(&dir);
        let output = Command::new(python)
            .arg(clients.join("write_parquet.py"))
            .arg(&dir)
            .output()
            .expect("run write_parquet.py");
        assert!(
            output.status.success(),
            "pyarrow could not write the tables: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        dir
    })
}

/// Equal as R's `identical()` would have it: NA and NaN are told apart, and so are 0 and -0.
fn same_double(a: f64, b: f64) -> bool {
    is_na_real(a) == is_na_real(b) && (a.is_nan() && b.is_nan() || a.to_bits() == b.to_bits())
}

/// A double as R prints it apart: `NA` is not `NaN`.
fn shown(x: f64) -> String {
    if is_na_real(x) {
        "NA".into()
    } else {
        format!("{x:?}")
    }
}

fn assert_same(a: &RObject, b: &RObject, at: &str) {
    assert_eq!(a.attributes.len(), b.attributes.len(), "{at}: attributes");
    for ((name_a, value_a), (name_b, value_b)) in a.attributes.iter().zip(&b.attributes) {
        assert_eq!(name_a, name_b, "{at}: attribute names");
        assert_same(value_a, value_b, &format!("{at} attr({name_a})"));
    }
    match (&a.vector, &b.vector) {
        (Vector::Double(x), Vector::Double(y)) => {
            assert_eq!(x.len(), y.len(), "{at}: length");
            for (row, (x, y)) in x.iter().zip(y).enumerate() {
                assert!(
                    same_double(*x, *y),
                    "{at}[{}]: {} against {}",
                    row + 1,
                    shown(*x),
                    shown(*y)
                );
            }
        }
        (Vector::Integer(x), Vector::Integer(y)) => assert_eq!(x, y, "{at}"),
        (Vector::Logical(x), Vector::Logical(y)) => assert_eq!(x, y, "{at}"),
        (Vector::Character(x), Vector::Character(y)) => assert_eq!(x, y, "{at}"),
        (Vector::List(x), Vector::List(y)) => {
            assert_eq!(x.len(), y.len(), "{at}: length");
            for (i, (x, y)) in x.iter().zip(y).enumerate() {
                assert_same(x, y, &format!("{at}[[{}]]", i + 1));
            }
        }
        (x, y) => panic!("{at}: {} against {}", x.type_name(), y.type_name()),
    }
}

fn load_error(dir: &Path) -> String {
    match Catalogue::load(dir) {
        Ok(catalogue) => panic!("{} loaded: {:?}", dir.display(), catalogue.projects()),
        Err(e) => e.to_string(),
    }
}

#[test]
fn a_pyarrow_table_loads_as_the_same_values_written_as_csv_load() {
    let parquet = Catalogue::load(&written().join("parquet")).unwrap();
    let csv = Catalogue::load(&written().join("csv")).unwrap();
    let (parquet, csv) = (
        parquet.get("cohort.people").unwrap(),
        csv.get("cohort.people").unwrap(),
    );
    assert_eq!(parquet.rows(), 1000);
    assert_eq!(parquet.variables, csv.variables);
    assert_same(&parquet.frame, &csv.frame, "people");

    // What the comparison stands on, read directly: the types, and NA, NaN and the extremes.
    let types: Vec<_> = parquet.variables.iter().map(|v| v.column_type).collect();
    use ColumnType::*;
    assert_eq!(
        types,
        [
            Integer,
            Integer,
            Integer,
            Numeric,
            Numeric,
            Numeric,
            Numeric,
            Logical,
            Categorical,
            Character
        ]
    );
    let column = |name: &str| &parquet.frame.element(name).unwrap().vector;
    let Vector::Double(x) = column("x") else {
        panic!("x is numeric")
    };
    assert!(is_na_real(x[0]) && x[17].is_nan() && !is_na_real(x[17]));
    assert_eq!(
        (x[1], x[2], x[4].to_bits()),
        (f64::INFINITY, f64::NEG_INFINITY, (-0.0f64).to_bits())
    );
    let Vector::Double(f32s) = column("f32") else {
        panic!("f32 is numeric")
    };
    assert_eq!(f32s[1], f64::from(0.1f32));
    assert!(is_na_real(f32s[0]) && f32s[3].is_nan() && !is_na_real(f32s[3]));
    let Vector::Integer(n32) = column("n32") else {
        panic!("n32 is integer")
    };
    assert_eq!(
        &n32[..9],
        &[
            None,
            Some(-399),
            Some(-398),
            Some(-397),
            Some(-396),
            Some(-395),
            Some(-394),
            Some(i32::MAX),
            Some(-i32::MAX)
        ]
    );
    let Vector::Double(big) = column("big") else {
        panic!("big is numeric")
    };
    assert_eq!(big[0], -1.5e12);
    assert_eq!(
        big[3],
        (3_000_000_000i64 * -497 + 9_007_199_254_740_993) as f64
    );
    assert!(matches!(column("u32"), Vector::Double(v) if v[5] == 4_294_967_295.0));
    let site = parquet.frame.element("site").unwrap();
    assert!(site.is_factor());
    assert_eq!(site.levels(), ["north", "south", "east"]);
    assert!(
        matches!(&site.vector, Vector::Integer(v) if v[..4] == [None, Some(2), Some(3), Some(1)])
    );
    assert!(
        matches!(column("flag"), Vector::Logical(v) if v[..4] == [None, Some(false), Some(false), Some(true)])
    );
    assert!(
        matches!(column("note"), Vector::Character(v) if v[0].is_none() && v[1].as_deref() == Some("a, quoted \"note\"") && v[5].as_deref() == Some("zürich"))
    );
}

#[test]
fn empty_and_na_strings_are_values_in_parquet_only_nulls_are_missing() {
    let catalogue = Catalogue::load(&written().join("text")).unwrap();
    let frame = &catalogue.get("cohort.t").unwrap().frame;
    assert!(matches!(
        &frame.element("s").unwrap().vector,
        Vector::Character(v) if v == &[Some(String::new()), Some("NA".to_owned()), None]
    ));
}

#[test]
fn what_is_not_read_is_refused_with_the_column_and_the_reason() {
    let refused = written().join("refused");
    for (case, expected) in [
        ("timestamp", "the column 'when' is a timestamp (INT64)"),
        ("date", "the column 'born' is a date (INT32)"),
        ("decimal", "the column 'amount' is a decimal"),
        ("list", "the column 'tags' is a list"),
        ("struct", "the column 'pair' is a struct"),
        ("binary", "the column 'blob' is binary (BYTE_ARRAY)"),
        (
            "int64_range",
            "column 'count': row 3: 3000000000 is outside R's integers",
        ),
        (
            "level",
            "row 3, column 'site': 'west' is not one of its levels (north, south, east)",
        ),
        (
            "declared_type",
            "declares 'flag' integer, but the file holds logical values",
        ),
        (
            "na_integer",
            "column 'n': row 2: -2147483648 is outside R's integers",
        ),
        (
            "zstd",
            "the column 'n' is compressed with ZSTD(ZstdLevel(1)), which is not read",
        ),
        (
            "clash",
            "the table cohort.people is both a CSV and a parquet file",
        ),
    ] {
        let error = load_error(&refused.join(case));
        assert!(error.contains(expected), "{case}: {error}");
    }
}

#[test]
fn a_truncated_or_damaged_file_is_refused_never_a_panic() {
    let good = std::fs::read(written().join("parquet/cohort/people.parquet")).unwrap();
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("datashield-parquet-damaged");
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(dir.join("cohort")).unwrap();
    let path = dir.join("cohort/people.parquet");
    let load = |bytes: &[u8]| {
        std::fs::write(&path, bytes).unwrap();
        std::panic::catch_unwind(|| Catalogue::load(&dir).map(|_| ()))
    };
    // Cut anywhere: the trailing magic bytes are gone, or the footer, or what it points at.
    for length in (0..good.len()).step_by(97).chain([good.len() - 1]) {
        let result =
            load(&good[..length]).unwrap_or_else(|_| panic!("panicked at length {length}"));
        let error = result.expect_err(&format!("loaded {length} of {} bytes", good.len()));
        assert!(error.to_string().contains("people.parquet"), "{error}");
    }
    assert!(
        load(&good[..good.len() - 1])
            .unwrap()
            .unwrap_err()
            .to_string()
            .contains("not a readable parquet file")
    );
    // Bytes overwritten: a value may change unnoticed (pyarrow writes no page checksums), but
    // nothing may panic. (Byte 31345 with 0xA5 gave a negative chunk offset, which the parquet
    // crate asserts against; every byte with each of 0xA5, 0xFF, 0x80, 0x01, 0x7F was tried once.)
    let mut refused = 0;
    for at in (4..good.len() - 8).step_by(31) {
        for pattern in [0xA5, 0xFF] {
            let mut damaged = good.clone();
            damaged[at] ^= pattern;
            match load(&damaged) {
                Err(_) => panic!("panicked with byte {at} xor {pattern:#x}"),
                Ok(result) => refused += usize::from(result.is_err()),
            }
        }
    }
    assert!(refused > 0, "no damage was noticed at all");
}
