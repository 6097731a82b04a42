//! R's vectorised arithmetic (`+ - * / ^`) on logical, integer and double vectors, as Opal's
//! rewrite `base::'op'(lhs, rhs)` runs it in R: recycling the shorter operand (R warns when the
//! lengths are not multiples; there is no warning channel here, so it silently recycles),
//! integer results for `+ - *` on integers and logicals with overflow giving NA, doubles for `/`
//! and `^`, NA and NaN kept apart as R's C code keeps them, and the result's attributes as R's
//! `R_binary` sets them.

use super::ast::BinaryOp;
use crate::error::DsError;
use crate::value::{RObject, Vector, na_real};

/// An operand's values: integers (logicals are integers here, as in R) or doubles.
enum Values<'a> {
    Integers(std::borrow::Cow<'a, [Option<i32>]>),
    Doubles(&'a [f64]),
}

impl Values<'_> {
    fn len(&self) -> usize {
        match self {
            Values::Integers(v) => v.len(),
            Values::Doubles(v) => v.len(),
        }
    }

    /// The `i`-th value as a double (`NA_integer_` becomes `NA_real_`, as R's `R_INTEGER`).
    fn double(&self, i: usize) -> f64 {
        match self {
            Values::Integers(v) => v.get(i).copied().flatten().map_or_else(na_real, f64::from),
            Values::Doubles(v) => v.get(i).copied().unwrap_or_else(na_real),
        }
    }
}

fn values<'a>(x: &'a RObject, op: BinaryOp) -> Result<Values<'a>, DsError> {
    if x.is_factor() {
        // R's Ops.factor warns this and returns NAs; refusing says the same more usefully.
        return Err(DsError::failed(format!(
            "'{}' not meaningful for factors",
            op.symbol()
        )));
    }
    if x.is_data_frame() {
        return Err(DsError::failed(
            "arithmetic on a data frame is not supported",
        ));
    }
    match &x.vector {
        // R treats NULL as integer(0) here.
        Vector::Null => Ok(Values::Integers(Vec::new().into())),
        Vector::Logical(v) => Ok(Values::Integers(
            v.iter()
                .map(|b| b.map(i32::from))
                .collect::<Vec<_>>()
                .into(),
        )),
        Vector::Integer(v) => Ok(Values::Integers(v.as_slice().into())),
        Vector::Double(v) => Ok(Values::Doubles(v)),
        Vector::Character(_) | Vector::List(_) => {
            Err(DsError::failed("non-numeric argument to binary operator"))
        }
    }
}

/// `x op y` as R computes it.
pub fn binary(op: BinaryOp, x: &RObject, y: &RObject) -> Result<RObject, DsError> {
    match op {
        BinaryOp::Not => {
            return Err(DsError::failed(
                "2 arguments passed to '!' which requires 1",
            ));
        }
        BinaryOp::MatrixMultiply => {
            return Err(DsError::failed(
                "matrix multiplication (%*%) is not supported by this server",
            ));
        }
        _ => {}
    }
    let (xv, yv) = (values(x, op)?, values(y, op)?);
    let (nx, ny) = (xv.len(), yv.len());
    let n = if nx == 0 || ny == 0 { 0 } else { nx.max(ny) };
    let vector = match (&xv, &yv) {
        (Values::Integers(a), Values::Integers(b))
            if matches!(op, BinaryOp::Add | BinaryOp::Subtract | BinaryOp::Multiply) =>
        {
            Vector::Integer(
                (0..n)
                    .map(|i| integer_op(op, a[i % nx], b[i % ny]))
                    .collect(),
            )
        }
        (Values::Integers(a), Values::Integers(b)) => Vector::Double(
            (0..n)
                .map(|i| integer_to_double_op(op, a[i % nx], b[i % ny]))
                .collect(),
        ),
        _ => {
            // Which NaN R passes on when both operands are NaN (NA and NaN) depends on how its
            // C loops were compiled: measured on R 4.2 (x86-64), `+` and `*` on two doubles
            // (logicals count as doubles) pass on the right one when the right operand is the
            // recycled-over longer one or both are recycled; all else passes on the left one.
            let doubles = |v: &RObject| !matches!(v.vector, Vector::Integer(_));
            let right_first = matches!(op, BinaryOp::Add | BinaryOp::Multiply)
                && doubles(x)
                && doubles(y)
                && nx != ny
                && ny != 1;
            Vector::Double(
                (0..n)
                    .map(|i| double_op(op, xv.double(i % nx), yv.double(i % ny), right_first))
                    .collect(),
            )
        }
    };
    let mut result = RObject::new(vector);
    set_attributes(&mut result, x, y)?;
    Ok(result)
}

/// R's integer `+ - *`: NA in, NA out; a result outside R's integer range is NA (R warns).
fn integer_op(op: BinaryOp, x: Option<i32>, y: Option<i32>) -> Option<i32> {
    let (x, y) = (i64::from(x?), i64::from(y?));
    let value = match op {
        BinaryOp::Add => x + y,
        BinaryOp::Subtract => x - y,
        _ => x * y,
    };
    // R's integer range excludes i32::MIN, which is NA.
    i32::try_from(value).ok().filter(|v| *v != i32::MIN)
}

/// R's integer `/` and `^`, which give doubles.
fn integer_to_double_op(op: BinaryOp, x: Option<i32>, y: Option<i32>) -> f64 {
    if op == BinaryOp::Power && (x == Some(1) || y == Some(0)) {
        return 1.0;
    }
    match (x, y) {
        (Some(x), Some(y)) if op == BinaryOp::Power => r_pow(f64::from(x), f64::from(y)),
        (Some(x), Some(y)) => f64::from(x) / f64::from(y),
        _ => na_real(),
    }
}

/// A NaN as the FPU passes it on: the same payload (R's NA keeps its 1954), made quiet.
fn quiet(x: f64) -> f64 {
    f64::from_bits(x.to_bits() | 0x0008_0000_0000_0000)
}

fn double_op(op: BinaryOp, x: f64, y: f64, right_first: bool) -> f64 {
    if op == BinaryOp::Power {
        return r_pow(x, y);
    }
    // With two NaNs, the FPU passes on one of them (see `binary`); Rust's compiler may swap
    // operands too, so the choice is made here explicitly.
    if right_first && y.is_nan() {
        return quiet(y);
    }
    if x.is_nan() {
        return quiet(x);
    }
    if y.is_nan() {
        return quiet(y);
    }
    match op {
        BinaryOp::Add => x + y,
        BinaryOp::Subtract => x - y,
        BinaryOp::Multiply => x * y,
        _ => x / y,
    }
}

/// R's `R_POW`/`R_pow`, special cases in R's order, `pow()` of the C library (the same glibc
/// function R calls) for the rest.
fn r_pow(x: f64, y: f64) -> f64 {
    if y == 2.0 {
        return if x.is_nan() { quiet(x) } else { x * x };
    }
    if x == 1.0 || y == 0.0 {
        return 1.0;
    }
    if x == 0.0 {
        return if y > 0.0 {
            0.0
        } else if y < 0.0 {
            f64::INFINITY
        } else {
            y
        };
    }
    if x.is_finite() && y.is_finite() {
        return x.powf(y);
    }
    if x.is_nan() || y.is_nan() {
        // R's `x + y`; as compiled, the right operand's NaN wins (NA^NaN is NaN, NaN^NA is NA).
        return if y.is_nan() { quiet(y) } else { quiet(x) };
    }
    if !x.is_finite() {
        if x > 0.0 {
            return if y < 0.0 { 0.0 } else { f64::INFINITY };
        }
        if y.is_finite() && y == y.floor() {
            return if y < 0.0 {
                0.0
            } else if y % 2.0 != 0.0 {
                x
            } else {
                -x
            };
        }
    }
    if !y.is_finite() && x >= 0.0 {
        return if y > 0.0 {
            if x >= 1.0 { f64::INFINITY } else { 0.0 }
        } else if x < 1.0 {
            f64::INFINITY
        } else {
            0.0
        };
    }
    f64::NAN
}

/// The result's attributes, following R's `R_binary` and `copyMostAttrib`: most attributes
/// (all but names, dim and dimnames) from the longer operand (both when equally long, the left
/// winning); `dim` and `dimnames` from an array operand; else `names` from the operand as long
/// as the result, the left first.
fn set_attributes(result: &mut RObject, x: &RObject, y: &RObject) -> Result<(), DsError> {
    let (nx, ny, n) = (x.len(), y.len(), result.len());
    let (xarray, yarray) = (x.attr("dim").is_some(), y.attr("dim").is_some());
    // A length-1 array with a longer plain vector loses its dim (and dimnames; R warns), but R
    // still takes the array branch below, so the result gets neither dim nor names.
    let dropped = |array: bool, na: usize, other_array: bool, nb: usize| {
        array && !other_array && na == 1 && nb != 1
    };
    let (xdropped, ydropped) = (
        dropped(xarray, nx, yarray, ny),
        dropped(yarray, ny, xarray, nx),
    );
    let dims = if xarray && yarray {
        if x.dim() != y.dim() {
            return Err(DsError::failed("non-conformable arrays"));
        }
        x.attr("dim")
    } else if xarray && (ny != 0 || nx == 0) {
        if xdropped { None } else { x.attr("dim") }
    } else if yarray && (nx != 0 || ny == 0) {
        if ydropped { None } else { y.attr("dim") }
    } else {
        None
    };
    // R returns a zero-length result before copying attributes from the operands.
    let most = |from: &RObject, into: &mut RObject| {
        if n == 0 {
            return;
        }
        for (name, value) in &from.attributes {
            if !matches!(name.as_str(), "names" | "dim" | "dimnames") {
                into.set_attr(name, value.clone());
            }
        }
    };
    if nx > ny {
        most(x, result);
    } else if nx == ny {
        most(y, result);
        most(x, result);
    } else {
        most(y, result);
    }
    if let Some(dims) = dims {
        let wrong_zero = (xarray && nx == 0 && ny > 1) || (yarray && ny == 0 && nx > 1);
        if !wrong_zero {
            let product: usize = match &dims.vector {
                Vector::Integer(d) => d.iter().map(|d| d.unwrap_or(0).max(0) as usize).product(),
                Vector::Double(d) => d.iter().map(|d| d.max(0.0) as usize).product(),
                _ => 0,
            };
            if product != n {
                return Err(DsError::failed(format!(
                    "dims [product {product}] do not match the length of object [{n}]"
                )));
            }
            result.set_attr("dim", dims.clone());
            let dimnames = [(xarray && !xdropped, x), (yarray && !ydropped, y)]
                .into_iter()
                .find_map(|(a, o)| a.then(|| o.attr("dimnames")).flatten());
            if let Some(dimnames) = dimnames {
                result.set_attr("dimnames", dimnames.clone());
            }
        }
    } else if xarray || yarray {
        // R's array branch without dims (a dropped length-1 array): no names either.
    } else if let Some(names) = [x, y]
        .into_iter()
        .filter(|o| o.len() == n)
        .find_map(|o| o.attr("names"))
    {
        result.set_attr("names", names.clone());
    }
    Ok(())
}
