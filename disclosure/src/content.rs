//! What kind of bytes a file holds: byte-order marks, UTF-8 validity and NUL bytes (tracked in
//! chunks), and the signatures of the binary formats we allow.

use memchr::memchr;

/// A byte-order mark at the start of a file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Bom {
    None,
    Utf8,
    /// UTF-16 or UTF-32: every ASCII character is padded with NUL bytes, so a byte scan is blind.
    Wide(&'static str),
}

/// Looks at the first (up to) four bytes.
pub(crate) fn bom(head: &[u8]) -> Bom {
    match head {
        [0x00, 0x00, 0xFE, 0xFF, ..] => Bom::Wide("UTF-32BE"),
        [0xFF, 0xFE, 0x00, 0x00, ..] => Bom::Wide("UTF-32LE"),
        [0xEF, 0xBB, 0xBF, ..] => Bom::Utf8,
        [0xFE, 0xFF, ..] => Bom::Wide("UTF-16BE"),
        [0xFF, 0xFE, ..] => Bom::Wide("UTF-16LE"),
        _ => Bom::None,
    }
}

/// Tracks UTF-8 validity and NUL bytes across chunks; stops validating at the first error.
#[derive(Debug, Default)]
pub(crate) struct Utf8Tracker {
    /// An incomplete sequence at the end of the previous chunk.
    partial: [u8; 4],
    partial_len: usize,
    offset: u64,
    pub first_invalid: Option<u64>,
    pub first_nul: Option<u64>,
}

impl Utf8Tracker {
    pub fn update(&mut self, chunk: &[u8]) {
        if self.first_nul.is_none()
            && let Some(i) = memchr(0, chunk)
        {
            self.first_nul = Some(self.offset + i as u64);
        }
        if self.first_invalid.is_none() {
            self.validate(chunk);
        }
        self.offset += chunk.len() as u64;
    }

    fn validate(&mut self, chunk: &[u8]) {
        let mut data = chunk;
        let mut base = self.offset;
        if self.partial_len > 0 {
            let width = match self.partial[0] {
                0xF0..=0xFF => 4,
                0xE0..=0xEF => 3,
                _ => 2,
            };
            let need = width - self.partial_len;
            if data.len() < need {
                self.partial[self.partial_len..self.partial_len + data.len()].copy_from_slice(data);
                self.partial_len += data.len();
                return;
            }
            let mut seq = [0u8; 4];
            seq[..self.partial_len].copy_from_slice(&self.partial[..self.partial_len]);
            seq[self.partial_len..width].copy_from_slice(&data[..need]);
            let start = self.offset - self.partial_len as u64;
            self.partial_len = 0;
            if std::str::from_utf8(&seq[..width]).is_err() {
                self.first_invalid = Some(start);
                return;
            }
            data = &data[need..];
            base += need as u64;
        }
        if let Err(e) = std::str::from_utf8(data) {
            let at = e.valid_up_to();
            match e.error_len() {
                // Cut off at the end of the chunk: may complete in the next one.
                None => {
                    let tail = &data[at..];
                    self.partial[..tail.len()].copy_from_slice(tail);
                    self.partial_len = tail.len();
                }
                Some(_) => self.first_invalid = Some(base + at as u64),
            }
        }
    }

    /// At the end of the file: a sequence still incomplete is invalid.
    pub fn finish(&mut self) {
        if self.first_invalid.is_none() && self.partial_len > 0 {
            self.first_invalid = Some(self.offset - self.partial_len as u64);
        }
    }
}

/// The signature a file of this extension must start with, if we know one.
pub(crate) fn signature(ext: &str) -> Option<(&'static str, &'static [&'static [u8]])> {
    Some(match ext.to_ascii_lowercase().as_str() {
        "png" => ("PNG", &[b"\x89PNG\r\n\x1a\n"]),
        "jpg" | "jpeg" => ("JPEG", &[b"\xFF\xD8\xFF"]),
        "gif" => ("GIF", &[b"GIF87a", b"GIF89a"]),
        "pdf" => ("PDF", &[b"%PDF-"]),
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn track(chunks: &[&[u8]]) -> Utf8Tracker {
        let mut t = Utf8Tracker::default();
        for c in chunks {
            t.update(c);
        }
        t.finish();
        t
    }

    #[test]
    fn boms() {
        assert_eq!(bom(b"\xEF\xBB\xBFa,b"), Bom::Utf8);
        assert_eq!(bom(b"\xFF\xFEa\x00"), Bom::Wide("UTF-16LE"));
        assert_eq!(bom(b"\xFE\xFF\x00a"), Bom::Wide("UTF-16BE"));
        assert_eq!(bom(b"\xFF\xFE\x00\x00"), Bom::Wide("UTF-32LE"));
        assert_eq!(bom(b"\x00\x00\xFE\xFF"), Bom::Wide("UTF-32BE"));
        assert_eq!(bom(b"a,b"), Bom::None);
        assert_eq!(bom(b""), Bom::None);
    }

    #[test]
    fn utf8_split_across_chunks_is_valid() {
        let text = "café, naïve, 😀 ok".as_bytes();
        for split in 0..text.len() {
            let t = track(&[&text[..split], &text[split..]]);
            assert_eq!(t.first_invalid, None, "split at {split}");
        }
        // One byte at a time too.
        let bytes: Vec<&[u8]> = text.chunks(1).collect();
        assert_eq!(track(&bytes).first_invalid, None);
    }

    #[test]
    fn invalid_utf8_is_located() {
        assert_eq!(
            track(&[b"abc\xE9def"]).first_invalid,
            Some(3),
            "Latin-1 e-acute"
        );
        assert_eq!(track(&[b"ab", b"c\xFFd"]).first_invalid, Some(3));
        // A sequence cut off by the end of the file.
        assert_eq!(track(&[b"ab\xE2\x82"]).first_invalid, Some(2));
        // A sequence whose continuation arrives in the next chunk but is wrong.
        assert_eq!(track(&[b"ab\xE2", b"\x82x"]).first_invalid, Some(2));
        assert_eq!(track(&[b"abc\x00def"]).first_nul, Some(3));
        assert_eq!(track(&[b"abc", b"de\x00"]).first_nul, Some(5));
    }

    #[test]
    fn signatures() {
        let (name, sigs) = signature("PNG").unwrap();
        assert_eq!(name, "PNG");
        assert!(sigs.iter().any(|s| b"\x89PNG\r\n\x1a\nrest".starts_with(s)));
        assert!(signature("csv").is_none());
    }
}
