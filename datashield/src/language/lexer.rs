//! The tokens of DataSHIELD's v2 grammar (datashield4j's `datashield-v2.jjt`), matched the way
//! JavaCC matches them: the longest token wins at each position, whitespace is only space, tab,
//! CR and LF, and any other character is an error. The input is ASCII by construction: no
//! token admits anything else.

use crate::error::DsError;

/// One token and the byte offset it starts at.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Token {
    pub kind: TokenKind,
    pub offset: usize,
}

#[derive(Clone, Debug, PartialEq)]
pub(crate) enum TokenKind {
    /// `R_IDENTIFIER`: a letter, then letters, digits, `_ $ . -`.
    Ident(String),
    /// `R_STRING`/`R_DBLSTRING`, without the quotes.
    Str(String),
    /// `NUMBER`, as written (it may start with `-`).
    Number(String),
    /// `RANGE`: `digits:digits`.
    Range(String, String),
    /// One of `/ ! = %*% + - * ^ : %in%`.
    Op(&'static str),
    Comma,
    LParen,
    RParen,
    Tilde,
    Semicolon,
    End,
}

impl TokenKind {
    /// How the token reads in an error message.
    pub fn describe(&self) -> String {
        match self {
            TokenKind::Ident(s) => format!("'{s}'"),
            TokenKind::Str(s) => format!("the string '{s}'"),
            TokenKind::Number(s) => format!("'{s}'"),
            TokenKind::Range(a, b) => format!("'{a}:{b}'"),
            TokenKind::Op(op) => format!("'{op}'"),
            TokenKind::Comma => "','".into(),
            TokenKind::LParen => "'('".into(),
            TokenKind::RParen => "')'".into(),
            TokenKind::Tilde => "'~'".into(),
            TokenKind::Semicolon => "';'".into(),
            TokenKind::End => "end of input".into(),
        }
    }
}

/// The 1-based column (in characters) of a byte offset, for error messages.
pub(crate) fn column(text: &str, offset: usize) -> usize {
    text.get(..offset)
        .map_or(offset, |head| head.chars().count())
        + 1
}

fn is_string_char(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'+' | b'-' | b';' | b':' | b',' | b'$')
}

fn is_ident_char(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'_' | b'$' | b'.' | b'-')
}

fn digits(bytes: &[u8], mut i: usize) -> usize {
    while bytes.get(i).is_some_and(u8::is_ascii_digit) {
        i += 1;
    }
    i
}

/// The end of the longest `NUMBER` at `start`, if one starts there:
/// `-? ( D+ L? ( . D+ L? )? | . D+ L? ) ( [eE] [+-]? D+ )?`.
fn number_end(bytes: &[u8], start: usize) -> Option<usize> {
    let at = |i: usize| bytes.get(i).copied();
    let is_digit = |i: usize| at(i).is_some_and(|b| b.is_ascii_digit());
    let mut i = start;
    if at(i) == Some(b'-') {
        i += 1;
    }
    // An INTEGER (digits, optional L) then optionally `.` INTEGER, or `.` INTEGER alone.
    let integer = |i: usize| -> Option<usize> {
        if !is_digit(i) {
            return None;
        }
        let end = digits(bytes, i);
        Some(if at(end) == Some(b'L') { end + 1 } else { end })
    };
    i = match integer(i) {
        Some(end) => match (at(end), integer(end + 1)) {
            (Some(b'.'), Some(fraction)) => fraction,
            _ => end,
        },
        None if at(i) == Some(b'.') => integer(i + 1)?,
        None => return None,
    };
    if matches!(at(i), Some(b'e' | b'E')) {
        let mut j = i + 1;
        if matches!(at(j), Some(b'+' | b'-')) {
            j += 1;
        }
        if is_digit(j) {
            i = digits(bytes, j);
        }
    }
    Some(i)
}

/// Splits `text` into tokens (the last is `End`).
pub(crate) fn tokenize(text: &str) -> Result<Vec<Token>, DsError> {
    let bytes = text.as_bytes();
    let mut tokens = Vec::new();
    let mut i = 0;
    let error = |offset: usize, what: String| {
        DsError::Parse(format!("{what} at column {}", column(text, offset)))
    };
    while let Some(&b) = bytes.get(i) {
        let start = i;
        let kind = match b {
            b' ' | b'\t' | b'\r' | b'\n' => {
                i += 1;
                continue;
            }
            b'a'..=b'z' | b'A'..=b'Z' => {
                while bytes.get(i).copied().is_some_and(is_ident_char) {
                    i += 1;
                }
                TokenKind::Ident(text[start..i].to_owned())
            }
            b'\'' | b'"' => {
                i += 1;
                while bytes.get(i).copied().is_some_and(is_string_char) {
                    i += 1;
                }
                match bytes.get(i) {
                    Some(&close) if close == b && i > start + 1 => {
                        i += 1;
                        TokenKind::Str(text[start + 1..i - 1].to_owned())
                    }
                    Some(&close) if close == b => {
                        return Err(error(start, "an empty string is not allowed".into()));
                    }
                    None => return Err(error(start, "unterminated string".into())),
                    Some(_) => {
                        let c = text[i..].chars().next().unwrap_or(' ');
                        return Err(error(
                            i,
                            format!(
                                "{c:?} is not allowed in a string (only letters, digits and _ . + - ; : , $ are)"
                            ),
                        ));
                    }
                }
            }
            b'0'..=b'9' | b'.' | b'-' => {
                let number = number_end(bytes, start);
                // RANGE: digits ':' digits, when longer than the NUMBER here.
                let range = b
                    .is_ascii_digit()
                    .then(|| digits(bytes, start))
                    .and_then(|colon| {
                        (bytes.get(colon) == Some(&b':')
                            && bytes.get(colon + 1).is_some_and(u8::is_ascii_digit))
                        .then(|| (colon, digits(bytes, colon + 1)))
                    });
                match (number, range) {
                    (number, Some((colon, end))) if number.is_none_or(|n| end > n) => {
                        i = end;
                        TokenKind::Range(
                            text[start..colon].to_owned(),
                            text[colon + 1..end].to_owned(),
                        )
                    }
                    (Some(end), _) => {
                        i = end;
                        TokenKind::Number(text[start..end].to_owned())
                    }
                    (None, _) if b == b'-' => {
                        i += 1;
                        TokenKind::Op("-")
                    }
                    (None, _) => return Err(error(start, "unexpected '.'".into())),
                }
            }
            b'%' => {
                let op = ["%*%", "%in%"]
                    .into_iter()
                    .find(|op| text[start..].starts_with(op));
                let Some(op) = op else {
                    return Err(error(
                        start,
                        "unknown operator (only %*% and %in% are allowed)".into(),
                    ));
                };
                i += op.len();
                TokenKind::Op(op)
            }
            _ => {
                i += 1;
                match b {
                    b'/' => TokenKind::Op("/"),
                    b'!' => TokenKind::Op("!"),
                    b'=' => TokenKind::Op("="),
                    b'+' => TokenKind::Op("+"),
                    b'*' => TokenKind::Op("*"),
                    b'^' => TokenKind::Op("^"),
                    b':' => TokenKind::Op(":"),
                    b',' => TokenKind::Comma,
                    b'(' => TokenKind::LParen,
                    b')' => TokenKind::RParen,
                    b'~' => TokenKind::Tilde,
                    b';' => TokenKind::Semicolon,
                    _ => {
                        let c = text[start..].chars().next().unwrap_or(' ');
                        return Err(error(start, format!("character {c:?} is not allowed")));
                    }
                }
            }
        };
        tokens.push(Token {
            kind,
            offset: start,
        });
    }
    tokens.push(Token {
        kind: TokenKind::End,
        offset: text.len(),
    });
    Ok(tokens)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kinds(text: &str) -> Vec<TokenKind> {
        tokenize(text)
            .map(|t| t.into_iter().map(|t| t.kind).collect())
            .unwrap_or_default()
    }

    #[test]
    fn longest_match_as_javacc() {
        use TokenKind::*;
        assert_eq!(kinds("x-1"), vec![Ident("x-1".into()), End]);
        assert_eq!(
            kinds("3-1"),
            vec![Number("3".into()), Number("-1".into()), End]
        );
        assert_eq!(
            kinds("3 - 1"),
            vec![Number("3".into()), Op("-"), Number("1".into()), End]
        );
        assert_eq!(kinds("1:10"), vec![Range("1".into(), "10".into()), End]);
        assert_eq!(
            kinds("-1:10"),
            vec![Number("-1".into()), Op(":"), Number("10".into()), End]
        );
        assert_eq!(
            kinds("1.5e-3L"),
            vec![Number("1.5e-3".into()), Ident("L".into()), End]
        );
        assert_eq!(
            kinds("1e"),
            vec![Number("1".into()), Ident("e".into()), End]
        );
        assert_eq!(kinds(".5"), vec![Number(".5".into()), End]);
        assert_eq!(kinds("1L.5L"), vec![Number("1L.5L".into()), End]);
        assert_eq!(
            kinds("a%in%b"),
            vec![Ident("a".into()), Op("%in%"), Ident("b".into()), End]
        );
        assert_eq!(kinds("'D$x'"), vec![Str("D$x".into()), End]);
    }

    #[test]
    fn errors_say_what_and_where() {
        let message = |text: &str| {
            tokenize(text)
                .err()
                .map(|e| e.to_string())
                .unwrap_or_default()
        };
        assert_eq!(
            message("f(a b [1])"),
            "character '[' is not allowed at column 7"
        );
        assert_eq!(
            message("f('a b')"),
            "' ' is not allowed in a string (only letters, digits and _ . + - ; : , $ are) at column 5"
        );
        assert_eq!(
            message("f('')"),
            "an empty string is not allowed at column 3"
        );
        assert_eq!(message("f('abc"), "unterminated string at column 3");
        assert_eq!(
            message("f(\"a')"),
            "'\\'' is not allowed in a string (only letters, digits and _ . + - ; : , $ are) at column 5"
        );
        assert_eq!(message("é"), "character 'é' is not allowed at column 1");
        assert_eq!(
            message("x %% y"),
            "unknown operator (only %*% and %in% are allowed) at column 3"
        );
    }
}
