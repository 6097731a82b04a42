//! R's object model, as far as session symbols and DataSHIELD results need it.
//!
//! The shapes mirror R's own (a vector plus an ordered attribute list), so that the JSON encoder
//! can follow jsonlite's rules and the RDS writer can emit what `base::serialize()` would, without
//! either having to guess what a "factor" or "data.frame" is: those are attributes, as in R.

/// R's `NA_integer_`.
pub const NA_INTEGER: i32 = i32::MIN;

/// R's `NA_real_`: a NaN whose low word is 1954. Any other NaN is R's `NaN`.
pub fn na_real() -> f64 {
    f64::from_bits(0x7FF0_0000_0000_07A2)
}

/// Whether a double is R's `NA_real_` (not merely `NaN`).
pub fn is_na_real(x: f64) -> bool {
    x.is_nan() && (x.to_bits() & 0xFFFF_FFFF) == 1954
}

/// The payload of an R vector. Missing values are `None`, except for doubles, which carry R's own
/// NA bit pattern so that `NA` and `NaN` stay distinct (R's `is.na` is true for both).
#[derive(Clone, Debug)]
pub enum Vector {
    Null,
    Logical(Vec<Option<bool>>),
    Integer(Vec<Option<i32>>),
    Double(Vec<f64>),
    Character(Vec<Option<String>>),
    List(Vec<RObject>),
}

impl Vector {
    pub fn len(&self) -> usize {
        match self {
            Vector::Null => 0,
            Vector::Logical(v) => v.len(),
            Vector::Integer(v) => v.len(),
            Vector::Double(v) => v.len(),
            Vector::Character(v) => v.len(),
            Vector::List(v) => v.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// R's `typeof()`.
    pub fn type_name(&self) -> &'static str {
        match self {
            Vector::Null => "NULL",
            Vector::Logical(_) => "logical",
            Vector::Integer(_) => "integer",
            Vector::Double(_) => "double",
            Vector::Character(_) => "character",
            Vector::List(_) => "list",
        }
    }
}

/// An R object: a vector with its attributes, in the order R keeps them.
#[derive(Clone, Debug)]
pub struct RObject {
    pub vector: Vector,
    pub attributes: Vec<(String, RObject)>,
}

impl RObject {
    pub fn new(vector: Vector) -> RObject {
        RObject {
            vector,
            attributes: Vec::new(),
        }
    }

    pub fn null() -> RObject {
        RObject::new(Vector::Null)
    }

    pub fn double(x: f64) -> RObject {
        RObject::new(Vector::Double(vec![x]))
    }

    pub fn doubles(xs: Vec<f64>) -> RObject {
        RObject::new(Vector::Double(xs))
    }

    pub fn integer(x: i32) -> RObject {
        RObject::new(Vector::Integer(vec![Some(x)]))
    }

    pub fn integers(xs: Vec<Option<i32>>) -> RObject {
        RObject::new(Vector::Integer(xs))
    }

    pub fn logical(x: bool) -> RObject {
        RObject::new(Vector::Logical(vec![Some(x)]))
    }

    pub fn logicals(xs: Vec<Option<bool>>) -> RObject {
        RObject::new(Vector::Logical(xs))
    }

    pub fn string(s: impl Into<String>) -> RObject {
        RObject::new(Vector::Character(vec![Some(s.into())]))
    }

    pub fn strings<S: Into<String>>(xs: impl IntoIterator<Item = S>) -> RObject {
        RObject::new(Vector::Character(
            xs.into_iter().map(|s| Some(s.into())).collect(),
        ))
    }

    /// `list(name = value, …)`.
    pub fn named_list<S: Into<String>>(items: impl IntoIterator<Item = (S, RObject)>) -> RObject {
        let (names, values): (Vec<String>, Vec<RObject>) = items
            .into_iter()
            .map(|(name, value)| (name.into(), value))
            .unzip();
        RObject::new(Vector::List(values)).with_attr("names", RObject::strings(names))
    }

    /// `list(value, …)` without names.
    pub fn list(values: Vec<RObject>) -> RObject {
        RObject::new(Vector::List(values))
    }

    /// `factor()` from 1-based codes into `levels` (`None` is NA).
    pub fn factor(codes: Vec<Option<i32>>, levels: Vec<String>) -> RObject {
        RObject::new(Vector::Integer(codes))
            .with_attr("levels", RObject::strings(levels))
            .with_attr("class", RObject::string("factor"))
    }

    /// `data.frame()` with R's compact automatic row names (`c(NA_integer_, -nrow)`).
    /// Every column must have `nrow` elements.
    pub fn data_frame<S: Into<String>>(
        columns: impl IntoIterator<Item = (S, RObject)>,
        nrow: usize,
    ) -> RObject {
        let (names, values): (Vec<String>, Vec<RObject>) = columns
            .into_iter()
            .map(|(name, value)| (name.into(), value))
            .unzip();
        let nrow = i32::try_from(nrow).expect("a data frame has fewer than 2^31 rows");
        RObject::new(Vector::List(values))
            .with_attr("names", RObject::strings(names))
            .with_attr("class", RObject::string("data.frame"))
            .with_attr("row.names", RObject::integers(vec![None, Some(-nrow)]))
    }

    /// A numeric matrix from column-major `data` (R's own order).
    pub fn matrix(data: Vec<f64>, nrow: usize, ncol: usize) -> RObject {
        debug_assert_eq!(data.len(), nrow * ncol);
        let dim = |n: usize| Some(i32::try_from(n).expect("a matrix dimension fits an R integer"));
        RObject::doubles(data).with_attr("dim", RObject::integers(vec![dim(nrow), dim(ncol)]))
    }

    /// Sets (or replaces, keeping its place) an attribute.
    pub fn with_attr(mut self, name: &str, value: RObject) -> RObject {
        self.set_attr(name, value);
        self
    }

    pub fn set_attr(&mut self, name: &str, value: RObject) {
        match self.attributes.iter_mut().find(|(key, _)| key == name) {
            Some((_, slot)) => *slot = value,
            None => self.attributes.push((name.to_owned(), value)),
        }
    }

    pub fn attr(&self, name: &str) -> Option<&RObject> {
        self.attributes
            .iter()
            .find(|(key, _)| key == name)
            .map(|(_, value)| value)
    }

    /// The `class` attribute's strings (empty when there is none).
    pub fn explicit_class(&self) -> Vec<&str> {
        self.attr("class")
            .map(|class| class.str_values())
            .unwrap_or_default()
    }

    /// R's `class(x)`: the `class` attribute, or the implicit class from `dim` and the type.
    pub fn class(&self) -> Vec<String> {
        let explicit = self.explicit_class();
        if !explicit.is_empty() {
            return explicit.into_iter().map(str::to_owned).collect();
        }
        if let Some(dim) = self.attr("dim") {
            return if dim.len() == 2 {
                vec!["matrix".into(), "array".into()]
            } else {
                vec!["array".into()]
            };
        }
        let implicit = match self.vector {
            Vector::Null => "NULL",
            Vector::Logical(_) => "logical",
            Vector::Integer(_) => "integer",
            Vector::Double(_) => "numeric",
            Vector::Character(_) => "character",
            Vector::List(_) => "list",
        };
        vec![implicit.into()]
    }

    pub fn inherits(&self, class: &str) -> bool {
        self.explicit_class().contains(&class)
    }

    pub fn is_factor(&self) -> bool {
        self.inherits("factor")
    }

    pub fn is_data_frame(&self) -> bool {
        self.inherits("data.frame")
    }

    /// R's `length(x)` (a data frame's length is its number of columns).
    pub fn len(&self) -> usize {
        self.vector.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The number of rows of a data frame (from its row names) or matrix; `None` for others.
    pub fn nrow(&self) -> Option<usize> {
        if let Some(row_names) = self.attr("row.names") {
            return Some(match &row_names.vector {
                Vector::Integer(v) if v.len() == 2 && v[0].is_none() => {
                    v[1].map_or(0, |n| n.unsigned_abs() as usize)
                }
                other => other.len(),
            });
        }
        self.dim().and_then(|dim| dim.first().copied())
    }

    /// The `dim` attribute, if any.
    pub fn dim(&self) -> Option<Vec<usize>> {
        let dim = self.attr("dim")?;
        match &dim.vector {
            Vector::Integer(v) => Some(v.iter().map(|d| d.unwrap_or(0).max(0) as usize).collect()),
            Vector::Double(v) => Some(v.iter().map(|d| *d as usize).collect()),
            _ => None,
        }
    }

    /// The `names` attribute as strings (empty when there is none).
    pub fn names(&self) -> Vec<&str> {
        self.attr("names")
            .map(|names| names.str_values())
            .unwrap_or_default()
    }

    /// `x$name` on a list or data frame: the first element so named.
    pub fn element(&self, name: &str) -> Option<&RObject> {
        let Vector::List(items) = &self.vector else {
            return None;
        };
        let index = self
            .names()
            .iter()
            .position(|candidate| *candidate == name)?;
        items.get(index)
    }

    /// A factor's levels (empty when it has none).
    pub fn levels(&self) -> Vec<&str> {
        self.attr("levels")
            .map(|levels| levels.str_values())
            .unwrap_or_default()
    }

    /// The non-missing strings of a character vector (empty for any other type).
    pub fn str_values(&self) -> Vec<&str> {
        match &self.vector {
            Vector::Character(v) => v.iter().filter_map(|s| s.as_deref()).collect(),
            _ => Vec::new(),
        }
    }

    /// The values of an atomic numeric-like vector as doubles, NA as `None` (R's `as.numeric`
    /// for logical, integer, double and factor codes). `None` for other types.
    pub fn as_doubles(&self) -> Option<Vec<Option<f64>>> {
        match &self.vector {
            Vector::Logical(v) => Some(
                v.iter()
                    .map(|x| x.map(|b| if b { 1.0 } else { 0.0 }))
                    .collect(),
            ),
            Vector::Integer(v) => Some(v.iter().map(|x| x.map(f64::from)).collect()),
            Vector::Double(v) => Some(
                v.iter()
                    .map(|x| {
                        if is_na_real(*x) || x.is_nan() {
                            None
                        } else {
                            Some(*x)
                        }
                    })
                    .collect(),
            ),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn na_real_is_r_bit_pattern_and_distinct_from_nan() {
        assert!(is_na_real(na_real()));
        assert!(!is_na_real(f64::NAN));
        assert!(!is_na_real(1.0));
    }

    #[test]
    fn data_frame_has_compact_row_names_and_implicit_classes_follow_r() {
        let df = RObject::data_frame([("age", RObject::doubles(vec![1.0, 2.0, 3.0]))], 3);
        assert_eq!(df.nrow(), Some(3));
        assert_eq!(df.len(), 1);
        assert_eq!(df.class(), vec!["data.frame"]);
        assert_eq!(df.element("age").map(RObject::len), Some(3));
        assert!(df.element("sex").is_none());
        assert_eq!(
            RObject::matrix(vec![0.0; 6], 2, 3).class(),
            vec!["matrix", "array"]
        );
        assert_eq!(RObject::double(1.0).class(), vec!["numeric"]);
        assert_eq!(
            RObject::factor(vec![Some(1)], vec!["a".into()]).class(),
            vec!["factor"]
        );
    }

    #[test]
    fn set_attr_replaces_in_place() {
        let x = RObject::double(1.0)
            .with_attr("names", RObject::string("a"))
            .with_attr("dim", RObject::integer(1));
        let x = x.with_attr("names", RObject::string("b"));
        assert_eq!(
            x.attributes
                .iter()
                .map(|(k, _)| k.as_str())
                .collect::<Vec<_>>(),
            vec!["names", "dim"]
        );
        assert_eq!(x.names(), vec!["b"]);
    }
}
