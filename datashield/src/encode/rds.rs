//! R's `serialize(x, NULL)`: the XDR (big-endian) binary format, version 3, uncompressed — what
//! Rock sends R clients (DSOpal asks for `application/octet-stream`) and `unserialize()` reads.
//!
//! Written as R 4.2.2 writes it, byte for byte: each item is a flags word (type, object bit,
//! attribute bit, tag bit, and the "levels" bits that carry a string's encoding) followed by its
//! length and data, then its attributes as a tagged pairlist. A symbol is written in full the
//! first time and as a reference into the stream's table afterwards, as R does.

use crate::value::{RObject, Vector};

/// The R release this writer's header names (and whose output it reproduces): 4.2.2.
pub const WRITER_R_VERSION: (u8, u8, u8) = (4, 2, 2);
/// The oldest R that reads format version 3: 3.5.0.
const MIN_READER_VERSION: (u8, u8, u8) = (3, 5, 0);

// SEXP types and the special items of the stream (R's Rinternals.h and serialize.c).
const LISTSXP: u32 = 2;
const SYMSXP: u32 = 1;
const CHARSXP: u32 = 9;
const LGLSXP: u32 = 10;
const INTSXP: u32 = 13;
const REALSXP: u32 = 14;
const STRSXP: u32 = 16;
const VECSXP: u32 = 19;
const REFSXP: u32 = 255;
const NILVALUE_SXP: u32 = 254;

// Flag bits.
const IS_OBJECT: u32 = 1 << 8;
const HAS_ATTR: u32 = 1 << 9;
const HAS_TAG: u32 = 1 << 10;
// A CHARSXP's encoding, in the "levels" field (bits 12 and up).
const UTF8_LEVEL: u32 = 8 << 12;
const ASCII_LEVEL: u32 = 64 << 12;

/// R's NA_STRING is written as a CHARSXP of length -1.
const NA_LENGTH: i32 = -1;

/// `serialize(x, NULL)`'s bytes for `x` (native encoding "UTF-8").
pub fn to_rds(x: &RObject) -> Vec<u8> {
    let mut writer = Writer {
        out: Vec::new(),
        symbols: Vec::new(),
    };
    writer.out.extend_from_slice(b"X\n");
    writer.int(3);
    writer.version(WRITER_R_VERSION);
    writer.version(MIN_READER_VERSION);
    writer.length(b"UTF-8".len());
    writer.out.extend_from_slice(b"UTF-8");
    writer.item(x);
    writer.out
}

struct Writer {
    out: Vec<u8>,
    /// Symbols written so far; a symbol's reference is its 1-based position.
    symbols: Vec<String>,
}

impl Writer {
    fn int(&mut self, value: i32) {
        self.out.extend_from_slice(&value.to_be_bytes());
    }

    fn word(&mut self, value: u32) {
        self.out.extend_from_slice(&value.to_be_bytes());
    }

    fn version(&mut self, (major, minor, patch): (u8, u8, u8)) {
        self.word(u32::from(major) << 16 | u32::from(minor) << 8 | u32::from(patch));
    }

    /// A vector length. Lengths of 2^31-1 and more need R's long-vector form, which a
    /// DataSHIELD result never reaches; saturating keeps the writer total.
    fn length(&mut self, len: usize) {
        self.int(i32::try_from(len).unwrap_or(i32::MAX));
    }

    fn item(&mut self, x: &RObject) {
        let has_attributes = !x.attributes.is_empty();
        let mut flags = if has_attributes { HAS_ATTR } else { 0 };
        if x.attr("class").is_some() {
            flags |= IS_OBJECT;
        }
        match &x.vector {
            // NULL has no attributes in R; any set here are dropped, as R would.
            Vector::Null => return self.word(NILVALUE_SXP),
            Vector::Logical(v) => {
                self.word(LGLSXP | flags);
                self.length(v.len());
                for b in v {
                    self.int(b.map_or(i32::MIN, i32::from));
                }
            }
            Vector::Integer(v) => {
                self.word(INTSXP | flags);
                self.length(v.len());
                for i in v {
                    self.int(i.unwrap_or(i32::MIN));
                }
            }
            Vector::Double(v) => {
                self.word(REALSXP | flags);
                self.length(v.len());
                for d in v {
                    // The bits as they are: NA_real_'s payload and -0 survive.
                    self.out.extend_from_slice(&d.to_bits().to_be_bytes());
                }
            }
            Vector::Character(v) => {
                self.word(STRSXP | flags);
                self.length(v.len());
                for s in v {
                    self.charsxp(s.as_deref());
                }
            }
            Vector::List(v) => {
                self.word(VECSXP | flags);
                self.length(v.len());
                for item in v {
                    self.item(item);
                }
            }
        }
        if has_attributes {
            self.attributes(&x.attributes);
        }
    }

    /// The attribute pairlist: one tagged node per attribute, ended by R's NULL.
    fn attributes(&mut self, attributes: &[(String, RObject)]) {
        for (name, value) in attributes {
            self.word(LISTSXP | HAS_TAG);
            self.symbol(name);
            self.item(value);
        }
        self.word(NILVALUE_SXP);
    }

    fn symbol(&mut self, name: &str) {
        match self.symbols.iter().position(|s| s == name) {
            Some(index) => {
                let reference = u32::try_from(index + 1).unwrap_or(u32::MAX >> 8);
                self.word(reference << 8 | REFSXP);
            }
            None => {
                self.symbols.push(name.to_owned());
                self.word(SYMSXP);
                self.charsxp(Some(name));
            }
        }
    }

    /// A string: ASCII ones flagged ASCII, others UTF-8 (all our strings are UTF-8), NA as length -1.
    fn charsxp(&mut self, s: Option<&str>) {
        match s {
            None => {
                self.word(CHARSXP);
                self.int(NA_LENGTH);
            }
            Some(s) => {
                let level = if s.is_ascii() {
                    ASCII_LEVEL
                } else {
                    UTF8_LEVEL
                };
                self.word(CHARSXP | level);
                self.length(s.len());
                self.out.extend_from_slice(s.as_bytes());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_names_format_3_and_utf8() {
        let bytes = to_rds(&RObject::null());
        assert_eq!(&bytes[..2], b"X\n");
        assert_eq!(&bytes[2..6], &[0, 0, 0, 3]);
        assert_eq!(&bytes[6..10], &[0, 4, 2, 2]);
        assert_eq!(&bytes[10..14], &[0, 3, 5, 0]);
        assert_eq!(&bytes[14..23], b"\0\0\0\x05UTF-8");
        assert_eq!(&bytes[23..], &[0, 0, 0, 254]);
    }

    #[test]
    fn repeated_symbols_are_references() {
        let x = RObject::list(vec![
            RObject::named_list([("a", RObject::null())]),
            RObject::named_list([("b", RObject::null())]),
        ]);
        let bytes = to_rds(&x);
        let names = bytes.windows(5).filter(|w| w == b"names").count();
        assert_eq!(names, 1);
        assert!(bytes.windows(4).any(|w| w == [0, 0, 1, 255]));
    }
}
