//! Plain-text tables for people: a header row and left-aligned columns two spaces apart.

/// Renders `rows` under `headers`; every row has as many cells as there are headers (missing
/// cells are blank, extra ones are dropped). Widths count characters, not bytes.
pub fn render(headers: &[&str], rows: &[Vec<String>]) -> String {
    let mut widths: Vec<usize> = headers.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(cell.chars().count());
        }
    }
    let line = |cells: Vec<&str>| {
        let mut out = String::new();
        for (i, width) in widths.iter().enumerate() {
            let cell = cells.get(i).copied().unwrap_or("");
            if i + 1 == widths.len() {
                out.push_str(cell);
            } else {
                out.push_str(cell);
                out.push_str(&" ".repeat(width - cell.chars().count() + 2));
            }
        }
        out.trim_end().to_string() + "\n"
    };
    let mut out = line(headers.to_vec());
    for row in rows {
        out.push_str(&line(row.iter().map(String::as_str).collect()));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn columns_are_as_wide_as_their_widest_cell() {
        let rows = vec![
            vec![
                "e2e-cli".to_string(),
                "Active".into(),
                "Cohort study".into(),
            ],
            vec!["p".to_string(), "".into(), "Ünïcode".into()],
        ];
        assert_eq!(
            render(&["NAME", "PHASE", "TITLE"], &rows),
            "NAME     PHASE   TITLE\n\
             e2e-cli  Active  Cohort study\n\
             p                Ünïcode\n"
        );
    }

    #[test]
    fn an_empty_table_is_its_header_and_short_rows_are_padded() {
        assert_eq!(render(&["A", "B"], &[]), "A  B\n");
        assert_eq!(render(&["A", "B"], &[vec!["x".into()]]), "A  B\nx\n");
    }
}
