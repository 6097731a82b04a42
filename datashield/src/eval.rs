//! Evaluating a parsed, allow-listed call against one session's symbols. Nothing here reaches
//! beyond the session: a symbol is looked up in the session's own table, a function in the
//! profile's method table, and nothing else exists.

use std::collections::BTreeMap;

use crate::error::DsError;
use crate::language::{Arg, Expr};
use crate::settings::DisclosureSettings;
use crate::value::{RObject, Vector};

/// Whether a call computes a result for the client or a value kept in the session.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum MethodKind {
    Aggregate,
    Assign,
}

impl MethodKind {
    pub fn as_str(self) -> &'static str {
        match self {
            MethodKind::Aggregate => "aggregate",
            MethodKind::Assign => "assign",
        }
    }
}

/// A server-side function, in Rust.
pub type Builtin = fn(&Invocation<'_>) -> Result<RObject, DsError>;

/// A function a profile can allow: its DataSHIELD name, the R package whose function it stands in
/// for (method listings show `dsBase::meanDS`, as Opal does), and its implementation.
#[derive(Clone, Copy, Debug)]
pub struct Method {
    pub name: &'static str,
    pub kind: MethodKind,
    pub package: &'static str,
    pub builtin: Builtin,
}

impl Method {
    /// dsBase's aggregate function `name`.
    pub fn aggregate(name: &'static str, builtin: Builtin) -> Method {
        Method {
            name,
            kind: MethodKind::Aggregate,
            package: "dsBase",
            builtin,
        }
    }

    /// dsBase's assign function `name`.
    pub fn assign(name: &'static str, builtin: Builtin) -> Method {
        Method {
            name,
            kind: MethodKind::Assign,
            package: "dsBase",
            builtin,
        }
    }

    /// The R function it stands in for, as Opal lists it (`dsBase::meanDS`).
    pub fn target(&self) -> String {
        format!("{}::{}", self.package, self.name)
    }
}

/// The methods one profile allows, by kind and name.
#[derive(Clone, Debug, Default)]
pub struct MethodTable {
    methods: BTreeMap<(MethodKind, &'static str), Method>,
}

impl MethodTable {
    pub fn new(methods: impl IntoIterator<Item = Method>) -> MethodTable {
        MethodTable {
            methods: methods.into_iter().map(|m| ((m.kind, m.name), m)).collect(),
        }
    }

    pub fn get(&self, kind: MethodKind, name: &str) -> Option<&Method> {
        self.methods
            .iter()
            .find(|((k, n), _)| *k == kind && *n == name)
            .map(|(_, m)| m)
    }

    pub fn of_kind(&self, kind: MethodKind) -> impl Iterator<Item = &Method> {
        self.methods.values().filter(move |m| m.kind == kind)
    }
}

/// A session's symbols (R's global environment of the session).
/// Values are shared: a table assigned whole in many sessions is held once.
pub type Symbols = BTreeMap<String, std::sync::Arc<RObject>>;

/// Everything a call can see.
pub struct Env<'a> {
    pub symbols: &'a Symbols,
    pub settings: &'a DisclosureSettings,
    pub methods: &'a MethodTable,
    /// Which table functions are looked up in (an assign expression may call assign methods).
    pub kind: MethodKind,
    /// `datashield.seed`, for the functions that add seeded noise.
    pub seed: i32,
}

impl Env<'_> {
    /// Evaluates an expression (already allow-listed) to a value.
    pub fn evaluate(&self, expr: &Expr) -> Result<RObject, DsError> {
        match expr {
            Expr::Symbol(name) => self.lookup(name),
            Expr::Str(text) => Ok(RObject::string(text.clone())),
            Expr::Number {
                value,
                integer: true,
            } => Ok(RObject::integer(*value as i32)),
            Expr::Number {
                value,
                integer: false,
            } => Ok(RObject::double(*value)),
            Expr::Range { from, to } => range(*from, *to),
            Expr::Paren(inner) => self.evaluate(inner),
            Expr::Call { function, args } => {
                let method =
                    self.methods
                        .get(self.kind, function)
                        .ok_or_else(|| DsError::NoSuchMethod {
                            kind: self.kind.as_str(),
                            name: function.clone(),
                        })?;
                (method.builtin)(&Invocation {
                    function: method.name,
                    args,
                    env: self,
                })
            }
            Expr::Binary { op, lhs, rhs } => {
                let (x, y) = (self.evaluate(lhs)?, self.evaluate(rhs)?);
                crate::language::ops::binary(*op, &x, &y)
            }
            Expr::Formula { .. } => Err(DsError::failed(
                "a formula can only be an argument of a model function",
            )),
        }
    }

    /// A symbol, following `$` into list elements and data frame columns (`D$age`).
    pub fn lookup(&self, path: &str) -> Result<RObject, DsError> {
        let mut parts = path.split('$');
        let root = parts.next().unwrap_or_default();
        // R's constants, which no session symbol can shadow (R refuses to assign to them).
        if let Some(constant) = constant(root) {
            return match parts.next() {
                None => Ok(constant),
                Some(_) => Err(DsError::failed("$ operator is invalid for atomic vectors")),
            };
        }
        let mut value: &RObject = self
            .symbols
            .get(root)
            .ok_or_else(|| DsError::failed(format!("object '{root}' not found")))?;
        for part in parts {
            value = match &value.vector {
                Vector::List(_) => value.element(part).ok_or_else(|| {
                    DsError::failed(format!(
                        "object '{path}' not found: '{root}' has no element '{part}'"
                    ))
                })?,
                _ => return Err(DsError::failed("$ operator is invalid for atomic vectors")),
            };
        }
        Ok(value.clone())
    }
}

/// The constants of R's grammar that DataSHIELD's grammar reads as symbols. `T` and `F` are
/// not among them: in R they are ordinary variables.
fn constant(name: &str) -> Option<RObject> {
    Some(match name {
        "TRUE" => RObject::logical(true),
        "FALSE" => RObject::logical(false),
        "NULL" => RObject::null(),
        "NA" => RObject::logicals(vec![None]),
        "NA_integer_" => RObject::integers(vec![None]),
        "NA_real_" => RObject::double(crate::value::na_real()),
        "NA_character_" => RObject::new(Vector::Character(vec![None])),
        "Inf" => RObject::double(f64::INFINITY),
        "NaN" => RObject::double(f64::NAN),
        _ => return None,
    })
}

fn range(from: i64, to: i64) -> Result<RObject, DsError> {
    const LONGEST: i64 = 10_000_000;
    if (to - from).abs() >= LONGEST {
        return Err(DsError::failed(format!(
            "the range {from}:{to} is longer than {LONGEST}"
        )));
    }
    let fits = |n: i64| {
        i32::try_from(n).map_err(|_| DsError::failed(format!("{n} is outside R's integer range")))
    };
    let (from, to) = (fits(from)?, fits(to)?);
    let values: Vec<Option<i32>> = if from <= to {
        (from..=to).map(Some).collect()
    } else {
        (to..=from).rev().map(Some).collect()
    };
    Ok(RObject::integers(values))
}

/// One call of a builtin: its arguments, unevaluated, and the environment to evaluate them in.
pub struct Invocation<'a> {
    pub function: &'static str,
    pub args: &'a [Arg],
    pub env: &'a Env<'a>,
}

impl Invocation<'_> {
    /// The argument R would bind to the parameter `name` at `position` (0-based among the
    /// parameters): an exactly named argument first, else the `position`-th unnamed one.
    pub fn arg(&self, position: usize, name: &str) -> Option<&Expr> {
        if let Some(named) = self.args.iter().find(|a| a.name.as_deref() == Some(name)) {
            return Some(&named.value);
        }
        self.args
            .iter()
            .filter(|a| a.name.is_none())
            .nth(position)
            .map(|a| &a.value)
    }

    /// The evaluated argument; R's error when it is missing.
    pub fn value(&self, position: usize, name: &str) -> Result<RObject, DsError> {
        let expr = self.arg(position, name).ok_or_else(|| self.missing(name))?;
        self.env.evaluate(expr)
    }

    /// The evaluated argument, or `None` when absent or `NULL`.
    pub fn optional_value(&self, position: usize, name: &str) -> Result<Option<RObject>, DsError> {
        match self.arg(position, name) {
            None => Ok(None),
            Some(Expr::Symbol(s)) if s == "NULL" => Ok(None),
            Some(expr) => {
                let value = self.env.evaluate(expr)?;
                Ok(if matches!(value.vector, Vector::Null) {
                    None
                } else {
                    Some(value)
                })
            }
        }
    }

    /// An argument that must be a single string (a literal, or anything evaluating to one).
    pub fn string(&self, position: usize, name: &str) -> Result<String, DsError> {
        let value = self.value(position, name)?;
        match &value.vector {
            Vector::Character(v) if v.len() == 1 && v[0].is_some() => {
                Ok(v[0].clone().unwrap_or_default())
            }
            _ => Err(DsError::failed(format!(
                "{}: the argument '{name}' must be a single string",
                self.function
            ))),
        }
    }

    /// An argument that must be a single number; `default` when absent.
    pub fn number(
        &self,
        position: usize,
        name: &str,
        default: Option<f64>,
    ) -> Result<f64, DsError> {
        let Some(expr) = self.arg(position, name) else {
            return default.ok_or_else(|| self.missing(name));
        };
        let value = self.env.evaluate(expr)?;
        match value.as_doubles().as_deref() {
            Some([Some(x)]) => Ok(*x),
            _ => Err(DsError::failed(format!(
                "{}: the argument '{name}' must be a single number",
                self.function
            ))),
        }
    }

    /// An object named by a string argument, as dsBase's `eval(parse(text = x))` of a name:
    /// `'D$age'` or `D$age` both give the column. Only a symbol path can be named this way.
    pub fn named_object(&self, position: usize, name: &str) -> Result<RObject, DsError> {
        let expr = self.arg(position, name).ok_or_else(|| self.missing(name))?;
        match expr {
            Expr::Str(path) => self.lookup_path(path),
            other => self.env.evaluate(other),
        }
    }

    /// Refuses anything but a symbol path (`D`, `D$age`) where a string names an object: dsBase
    /// evaluates such strings, and here nothing else may be evaluated from one.
    pub fn check_path(&self, path: &str) -> Result<(), DsError> {
        let valid = !path.is_empty()
            && path.split('$').all(|part| {
                part.chars()
                    .next()
                    .is_some_and(|c| c.is_ascii_alphabetic() || c == '.')
                    && part
                        .chars()
                        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_'))
            });
        if valid {
            Ok(())
        } else {
            Err(DsError::failed(format!(
                "{}: '{path}' is not the name of an object",
                self.function
            )))
        }
    }

    /// The object a symbol path names.
    pub fn lookup_path(&self, path: &str) -> Result<RObject, DsError> {
        self.check_path(path)?;
        self.env.lookup(path)
    }

    fn missing(&self, name: &str) -> DsError {
        DsError::failed(format!(
            "{}: argument \"{name}\" is missing, with no default",
            self.function
        ))
    }
}
