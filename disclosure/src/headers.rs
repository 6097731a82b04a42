//! Column headers and configured names as words, so that `Date_of-Birth`, `dateOfBirth` and
//! `date of birth` match each other: the policy validates its names with it and the table rules
//! match headers with it.

/// A header or configured name as lower-case words: `Date_of-Birth`, `dateOfBirth` and
/// `date of birth` all become `[date, of, birth]`, so names match however a tool spells them.
pub fn words(name: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut prev_lower = false;
    for c in name.chars() {
        if c.is_alphanumeric() {
            // camelCase boundary: a capital after a lower-case letter or digit starts a word.
            if c.is_uppercase() && prev_lower && !cur.is_empty() {
                out.push(std::mem::take(&mut cur));
            }
            prev_lower = c.is_lowercase() || c.is_ascii_digit();
            cur.extend(c.to_lowercase());
        } else {
            prev_lower = false;
            if !cur.is_empty() {
                out.push(std::mem::take(&mut cur));
            }
        }
    }
    if !cur.is_empty() {
        out.push(cur);
    }
    out
}

/// Whether `needle`'s words appear, in order and adjacent, among `hay`'s words.
pub fn words_contain(hay: &[String], needle: &[String]) -> bool {
    !needle.is_empty() && hay.windows(needle.len()).any(|w| w == needle)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_words() {
        assert_eq!(words("Date_of-Birth"), ["date", "of", "birth"]);
        assert_eq!(words("dateOfBirth"), ["date", "of", "birth"]);
        assert_eq!(words("patientID"), ["patient", "id"]);
        assert_eq!(words("NHS number "), ["nhs", "number"]);
        assert_eq!(words("d.o.b"), ["d", "o", "b"]);
        assert_eq!(words("count_2019"), ["count", "2019"]);
        assert!(words("--").is_empty());
        let h = words("region_id");
        assert!(words_contain(&h, &words("id")));
        assert!(!words_contain(&words("valid"), &words("id")));
        assert!(words_contain(
            &words("Patient date of birth"),
            &words("date of birth")
        ));
        assert!(!words_contain(
            &words("date of death"),
            &words("date of birth")
        ));
        assert!(!words_contain(&h, &[]));
    }
}
