use super::*;

const SHIPPED: &str = include_str!("../../../policies/egress/default.yaml");

fn err(yaml: &str) -> String {
    Policy::from_yaml(yaml).unwrap_err().to_string()
}

#[test]
fn shipped_default_policy_loads_and_equals_the_built_in_defaults() {
    let shipped = Policy::from_yaml(SHIPPED).unwrap();
    let mut defaults = Policy::with_defaults("default");
    defaults.description = shipped.description.clone();
    // The file's comments promise that a rule left out runs "with the defaults shown here".
    assert_eq!(shipped, defaults);
    assert_eq!(shipped.min_cell_count.threshold, 10);
    assert_eq!(shipped.rounding.base, 5);
    assert_eq!(shipped.action(RuleId::Zeros), Action::Inform);
    assert_eq!(shipped.action(RuleId::NhsNumber), Action::Block);
}

#[test]
fn shipped_policy_file_on_disk_loads_through_load() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../policies/egress/default.yaml");
    let p = Policy::load(&path).unwrap();
    assert_eq!(p.name, "default");
}

#[test]
fn minimal_policy_has_every_rule_on() {
    let p = Policy::from_yaml("name: minimal").unwrap();
    for rule in RuleId::ALL {
        assert_ne!(p.action(rule), Action::Off, "{rule}");
    }
}

#[test]
fn rules_can_be_tuned_and_switched_off() {
    let p = Policy::from_yaml(
        "name: strict\nrules:\n  min-cell-count: {threshold: 8, action: inform}\n  zeros: {action: off}\n  rounding:\n  nhs-number: {}\n",
    )
    .unwrap();
    assert_eq!(p.min_cell_count.threshold, 8);
    assert_eq!(p.action(RuleId::MinCellCount), Action::Inform);
    assert_eq!(p.action(RuleId::Zeros), Action::Off);
    // Null and empty mappings keep the defaults, including the default action.
    assert_eq!(p.rounding, RoundingRule::default());
    assert_eq!(p.action(RuleId::NhsNumber), Action::Block);
}

#[test]
fn a_simple_rule_without_action_keeps_its_own_default_action() {
    let p = Policy::from_yaml("name: x\nrules:\n  zeros: {}\n  table-structure: {}\n").unwrap();
    assert_eq!(p.action(RuleId::Zeros), Action::Inform);
    assert_eq!(p.action(RuleId::TableStructure), Action::Inform);
}

#[test]
fn bad_policies_name_the_rule() {
    let cases = [
        (
            "name: x\nrules:\n  min-cell-count: {threshold: 0}\n",
            "rule \"min-cell-count\": threshold must be at least 1",
        ),
        (
            "name: x\nrules:\n  rounding: {base: 1}\n",
            "rule \"rounding\": base must be at least 2",
        ),
        (
            "name: x\nrules:\n  min-cell-count: {treshold: 5}\n",
            "rule \"min-cell-count\": unknown field `treshold`",
        ),
        (
            "name: x\nrules:\n  min-cell-count: {threshold: -3}\n",
            "rule \"min-cell-count\": invalid value",
        ),
        (
            "name: x\nrules:\n  zeros: {action: maybe}\n",
            "rule \"zeros\": unknown variant `maybe`",
        ),
        (
            "name: x\nrules:\n  zeros: {threshold: 3}\n",
            "rule \"zeros\": unknown field `threshold`",
        ),
        (
            "name: x\nrules:\n  file-size: {maxSize: 16 parsecs}\n",
            "rule \"file-size\": invalid size \"16 parsecs\"",
        ),
        (
            "name: x\nrules:\n  file-size: {maxSize: 0}\n",
            "rule \"file-size\": maxSize must be at least 1 byte",
        ),
        (
            "name: x\nrules:\n  file-type: {types: []}\n",
            "rule \"file-type\": types must list at least one file type",
        ),
        (
            "name: x\nrules:\n  file-type:\n    types: [{extensions: [.csv], content: table}]\n",
            "rule \"file-type\": extension \".csv\" must be letters and digits only",
        ),
        (
            "name: x\nrules:\n  file-type:\n    types: [{extensions: [csv], content: table}, {extensions: [CSV], content: text}]\n",
            "rule \"file-type\": extension \"csv\" is listed twice",
        ),
        (
            "name: x\nrules:\n  file-type:\n    types: [{extensions: [csv], content: spreadsheet}]\n",
            "rule \"file-type\": unknown variant `spreadsheet`",
        ),
        (
            "name: x\nrules:\n  suppression: {markers: [\"*\", \"  \"]}\n",
            "rule \"suppression\": markers must not be blank",
        ),
        (
            "name: x\nrules:\n  suppression: {markers: [\"5\"]}\n",
            "rule \"suppression\": marker \"5\" is a number",
        ),
        (
            "name: x\nrules:\n  suppression: {markers: [\"-\"]}\n",
            "rule \"suppression\": marker \"-\" is also listed in tables.missingMarkers",
        ),
        (
            "name: x\nrules:\n  totals: {labels: []}\n",
            "rule \"totals\": labels must list at least one label",
        ),
        (
            "name: x\nrules:\n  row-level: {maxRows: 0}\n",
            "rule \"row-level\": maxRows must be at least 1",
        ),
        (
            "name: x\nrules:\n  date-of-birth: {columns: [\"--\"]}\n",
            "rule \"date-of-birth\": columns: \"--\" has no letters or digits",
        ),
        (
            "name: x\nrules:\n  rounding: {midpoint6Suffix: \"\"}\n",
            "rule \"rounding\": midpoint6Suffix must not be empty",
        ),
    ];
    for (yaml, want) in cases {
        let got = err(yaml);
        assert!(
            got.starts_with(want),
            "policy {yaml:?}\n  got:  {got}\n  want: {want}"
        );
    }
}

#[test]
fn error_reports_which_rule_programmatically() {
    let e = Policy::from_yaml("name: x\nrules:\n  rounding: {base: 0}\n").unwrap_err();
    assert_eq!(e.rule(), Some(RuleId::Rounding));
}

#[test]
fn bad_top_level_structure_is_rejected() {
    assert!(
        err("name: x\nrules:\n  min-cel-count: {}\n")
            .starts_with("egress policy: unknown rule \"min-cel-count\" (known rules: file-type,")
    );
    assert!(err("rules: {}\n").contains("missing field `name`"));
    assert!(err("name: \"  \"\n").contains("name must not be empty"));
    assert!(err("name: x\nextra: 1\n").contains("unknown field `extra`"));
    assert!(err("name: x\nrules: [1, 2]\n").starts_with("egress policy:"));
    assert!(err("name: x\nrules:\n  zeros: {}\n  zeros: {}\n").contains("duplicate"));
    assert!(
        err("name: x\ntables: {nonCountColumns: [\"!!\"]}\n")
            .starts_with("section \"tables\": nonCountColumns")
    );
    assert!(err(": : :\n\t- [").starts_with("egress policy:"));
    assert!(err("").starts_with("egress policy:"));
}

#[test]
fn load_errors_name_the_file() {
    let dir = std::env::temp_dir().join(format!("trellis-policy-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("bad.yaml");
    std::fs::write(&path, "name: x\nrules:\n  min-cell-count: {threshold: 0}\n").unwrap();
    let e = Policy::load(&path).unwrap_err();
    assert_eq!(e.rule(), Some(RuleId::MinCellCount));
    assert!(
        e.to_string()
            .ends_with("bad.yaml: rule \"min-cell-count\": threshold must be at least 1"),
        "{e}"
    );
    let missing = Policy::load(&dir.join("missing.yaml")).unwrap_err();
    assert!(matches!(missing, PolicyError::Read { .. }), "{missing}");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn sizes_parse_with_units() {
    use super::size::parse_size;
    assert_eq!(parse_size("16MiB"), Ok(16 << 20));
    assert_eq!(parse_size("16 MiB"), Ok(16 << 20));
    assert_eq!(parse_size("1GB"), Ok(1_000_000_000));
    assert_eq!(parse_size("512kib"), Ok(512 << 10));
    assert_eq!(parse_size("100"), Ok(100));
    assert_eq!(parse_size("100B"), Ok(100));
    assert!(parse_size("MiB").is_err());
    assert!(parse_size("1.5MiB").is_err());
    assert!(parse_size("99999999999999TiB").is_err());
    let p = Policy::from_yaml("name: x\nrules:\n  file-size: {maxSize: 1048576}\n").unwrap();
    assert_eq!(p.file_size.max_size, ByteSize(1 << 20));
}

#[test]
fn file_types_and_upload_limits() {
    let p = Policy::from_yaml(
        "name: x\nrules:\n  file-size: {maxSize: 10MiB}\n  file-type:\n    types:\n      - {extensions: [CSV], content: table, maxSize: 1MiB}\n      - {extensions: [txt], content: text}\n",
    )
    .unwrap();
    assert_eq!(
        p.file_type("out/Table.CSV").unwrap().content,
        Content::Table
    );
    assert!(p.file_type("notes.txt").is_some());
    assert!(p.file_type("image.svg").is_none());
    assert!(p.file_type("csv").is_none());
    assert!(p.file_type(".csv").is_none());
    assert_eq!(p.max_upload_size("t.csv"), Some(1 << 20));
    assert_eq!(p.max_upload_size("t.txt"), Some(10 << 20));
    let inform = Policy::from_yaml(
        "name: x\nrules:\n  file-size: {action: inform}\n  file-type: {action: inform}\n",
    )
    .unwrap();
    assert_eq!(inform.max_upload_size("t.csv"), None);
}

#[test]
fn extensions() {
    assert_eq!(extension("a.csv"), Some("csv"));
    assert_eq!(extension("dir.d/a.tar.gz"), Some("gz"));
    assert_eq!(extension("dir.d/README"), None);
    assert_eq!(extension(".bashrc"), None);
    assert_eq!(extension("trailing."), None);
}
