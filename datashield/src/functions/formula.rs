//! Model formulas: R's `terms()` and `model.matrix()` for the formulas DataSHIELD's grammar can
//! write (`y ~ a + b*c - 1`, `(a+b)^2`, `a %in% b`), as `glm()` builds them with its defaults:
//! complete cases over every formula variable, unused factor levels dropped, treatment contrasts.
//!
//! Terms follow R's encoding (src/library/stats/src/model.c, read for behaviour): a term is a set
//! of variables; `+` appends, `:` takes all pairwise unions, `*` is `a + b + a:b`, `^n` crosses a
//! term list with itself, `%in%` adds all variables of the right to each term of the left, `-`
//! deletes, and `1`/`0` switch the intercept (inverted inside the right of a `-`). Terms are then
//! ordered by how many variables they have, stably; a variable's position is its first appearance
//! (the response first), which also orders the variables inside a term's label.

use crate::error::DsError;
use crate::language::{FormulaExpr, FormulaOp};
use crate::value::{RObject, Vector};

/// The terms of a formula: `variables[0]` is the response.
#[derive(Clone, Debug, PartialEq)]
pub struct Terms {
    pub variables: Vec<String>,
    /// Each term's variables, as sorted indices into `variables`.
    pub terms: Vec<Vec<usize>>,
    pub intercept: bool,
}

impl Terms {
    /// R's `attr(terms, "term.labels")`.
    #[cfg(test)]
    pub fn labels(&self) -> Vec<String> {
        self.terms
            .iter()
            .map(|term| {
                term.iter()
                    .map(|&v| self.variables[v].as_str())
                    .collect::<Vec<_>>()
                    .join(":")
            })
            .collect()
    }
}

/// The most variables a formula may name (terms are small sets of them).
const MAX_VARIABLES: usize = 64;
/// The most terms an expansion may reach (`(a+b+…)^k` grows fast; the products of two lists of
/// this size stay small enough to build).
const MAX_TERMS: usize = 256;
/// The most model-matrix columns a formula may ask for (factors with many levels multiply in
/// interactions).
const MAX_COLUMNS: usize = 4096;
/// The most cells (rows × columns) of a model matrix, to bound memory (400 MB of doubles).
const MAX_CELLS: usize = 50_000_000;

/// R's `terms(response ~ rhs)`.
pub fn terms(response: &str, rhs: &FormulaExpr) -> Result<Terms, DsError> {
    let mut encoder = Encoder {
        variables: vec![response.to_owned()],
        intercept: true,
        parity: true,
    };
    let encoded = encoder.encode(rhs)?;
    // Stable ordering by the number of variables in a term (R's default, keep.order = FALSE).
    let mut ordered: Vec<Vec<usize>> = Vec::with_capacity(encoded.len());
    let max_order = encoded.iter().map(Vec::len).max().unwrap_or(0);
    for order in 1..=max_order {
        ordered.extend(encoded.iter().filter(|t| t.len() == order).cloned());
    }
    // model.matrix() drops a term that is just the response ("the response appeared on the
    // right-hand side and was dropped"); the coefficients are those of the remaining terms.
    ordered.retain(|term| term.as_slice() != [0]);
    Ok(Terms {
        variables: encoder.variables,
        terms: ordered,
        intercept: encoder.intercept,
    })
}

struct Encoder {
    variables: Vec<String>,
    intercept: bool,
    /// False inside the right operand of `-`, where `1` removes the intercept and `0` adds it.
    parity: bool,
}

type TermList = Vec<Vec<usize>>;

impl Encoder {
    fn encode(&mut self, expr: &FormulaExpr) -> Result<TermList, DsError> {
        let terms = self.encode_unchecked(expr)?;
        if terms.len() > MAX_TERMS {
            return Err(DsError::failed(format!(
                "the formula expands to more than {MAX_TERMS} terms"
            )));
        }
        Ok(terms)
    }

    fn encode_unchecked(&mut self, expr: &FormulaExpr) -> Result<TermList, DsError> {
        match expr {
            FormulaExpr::Variable(name) => self.variable(name),
            FormulaExpr::Number(n) => self.number(*n),
            FormulaExpr::Paren(inner) => self.encode(inner),
            FormulaExpr::Op { op, lhs, rhs } => match op {
                FormulaOp::Plus => {
                    let mut left = self.encode(lhs)?;
                    left.extend(self.encode(rhs)?);
                    Ok(trim(left))
                }
                FormulaOp::Minus => self.delete(Some(lhs), rhs),
                FormulaOp::Colon => {
                    let left = self.encode(lhs)?;
                    let right = self.encode(rhs)?;
                    Ok(trim(interact(&left, &right)))
                }
                FormulaOp::Times => {
                    let left = self.encode(lhs)?;
                    let right = self.encode(rhs)?;
                    let both = interact(&left, &right);
                    let mut all = left;
                    all.extend(right);
                    all.extend(both);
                    Ok(trim(all))
                }
                FormulaOp::Power => {
                    let power = match strip_parens(rhs) {
                        FormulaExpr::Number(n) if n.fract() == 0.0 && *n >= 2.0 && *n <= 64.0 => {
                            *n as usize
                        }
                        _ => return Err(DsError::failed("invalid power in formula")),
                    };
                    let left = self.encode(lhs)?;
                    let mut result = left.clone();
                    for _ in 1..power {
                        result = trim(interact(&left, &result));
                        if result.len() > MAX_TERMS {
                            return Err(DsError::failed(format!(
                                "the formula expands to more than {MAX_TERMS} terms"
                            )));
                        }
                    }
                    Ok(result)
                }
                FormulaOp::In => {
                    let left = self.encode(lhs)?;
                    let right = self.encode(rhs)?;
                    let all_right: Vec<usize> = union_all(&right);
                    Ok(trim(left.iter().map(|t| union(t, &all_right)).collect()))
                }
            },
        }
    }

    /// `lhs - rhs` (or unary `- rhs` when `lhs` is `None`).
    fn delete(
        &mut self,
        lhs: Option<&FormulaExpr>,
        rhs: &FormulaExpr,
    ) -> Result<TermList, DsError> {
        let left = match lhs {
            Some(lhs) => self.encode(lhs)?,
            None => Vec::new(),
        };
        self.parity = !self.parity;
        let right = self.encode(rhs);
        self.parity = !self.parity;
        let right = right?;
        Ok(left.into_iter().filter(|t| !right.contains(t)).collect())
    }

    fn number(&mut self, n: f64) -> Result<TermList, DsError> {
        if n == 1.0 {
            self.intercept = self.parity;
        } else if n == 0.0 && !n.is_sign_negative() {
            self.intercept = !self.parity;
        } else if n == -1.0 || (n == 0.0 && n.is_sign_negative()) {
            // The grammar reads `-1` as one number; R reads it as unary minus applied to 1.
            return self.delete(None, &FormulaExpr::Number(-n));
        } else {
            return Err(DsError::failed("invalid model formula in ExtractVars"));
        }
        Ok(Vec::new())
    }

    fn variable(&mut self, name: &str) -> Result<TermList, DsError> {
        // The grammar lets `-` into identifiers, so `x-1` may arrive as one symbol; R reads it as
        // `x - 1`, so it is split here and encoded as that subtraction.
        if name.contains('-') {
            let mut parts = name.split('-').map(|part| {
                if part.is_empty() {
                    Err(DsError::failed(format!("invalid model formula: '{name}'")))
                } else if let Ok(n) = part.parse::<f64>() {
                    Ok(FormulaExpr::Number(n))
                } else {
                    Ok(FormulaExpr::Variable(part.to_owned()))
                }
            });
            let first = parts
                .next()
                .unwrap_or_else(|| Err(DsError::failed("invalid model formula")))?;
            let mut expr = first;
            for part in parts {
                expr = FormulaExpr::Op {
                    op: FormulaOp::Minus,
                    lhs: Box::new(expr),
                    rhs: Box::new(part?),
                };
            }
            return self.encode(&expr);
        }
        let index = match self.variables.iter().position(|v| v == name) {
            Some(index) => index,
            None => {
                if self.variables.len() >= MAX_VARIABLES {
                    return Err(DsError::failed(format!(
                        "a formula may name at most {MAX_VARIABLES} variables"
                    )));
                }
                self.variables.push(name.to_owned());
                self.variables.len() - 1
            }
        };
        Ok(vec![vec![index]])
    }
}

fn strip_parens(expr: &FormulaExpr) -> &FormulaExpr {
    match expr {
        FormulaExpr::Paren(inner) => strip_parens(inner),
        other => other,
    }
}

fn union(a: &[usize], b: &[usize]) -> Vec<usize> {
    let mut out: Vec<usize> = a.iter().chain(b).copied().collect();
    out.sort_unstable();
    out.dedup();
    out
}

fn union_all(terms: &TermList) -> Vec<usize> {
    terms.iter().fold(Vec::new(), |acc, t| union(&acc, t))
}

/// Every union of a left term with a right term, left terms outermost (R's order).
fn interact(left: &TermList, right: &TermList) -> TermList {
    left.iter()
        .flat_map(|l| right.iter().map(move |r| union(l, r)))
        .collect()
}

/// Drops repeated and empty terms, keeping first occurrences.
fn trim(terms: TermList) -> TermList {
    let mut seen = std::collections::HashSet::new();
    terms
        .into_iter()
        .filter(|term| !term.is_empty() && seen.insert(term.clone()))
        .collect()
}

/// One model variable's values, as a model frame holds them.
#[derive(Clone, Debug, PartialEq)]
pub enum Column {
    Numeric(Vec<Option<f64>>),
    /// A factor, or a logical or character vector, which model.matrix() treats as one.
    /// `logical` keeps that it was logical (a binomial response reads it as 0/1).
    Categorical {
        codes: Vec<Option<usize>>,
        levels: Vec<String>,
        logical: bool,
    },
}

impl Column {
    fn len(&self) -> usize {
        match self {
            Column::Numeric(v) => v.len(),
            Column::Categorical { codes, .. } => codes.len(),
        }
    }

    pub fn is_na(&self, row: usize) -> bool {
        match self {
            Column::Numeric(v) => v.get(row).is_none_or(Option::is_none),
            Column::Categorical { codes, .. } => codes.get(row).is_none_or(Option::is_none),
        }
    }

    /// The rows `rows`, with the levels no kept row uses dropped (`drop.unused.levels = TRUE`).
    pub fn subset(&self, rows: &[usize]) -> Column {
        match self {
            Column::Numeric(v) => {
                Column::Numeric(rows.iter().map(|&r| v.get(r).copied().flatten()).collect())
            }
            Column::Categorical {
                codes,
                levels,
                logical,
            } => {
                let kept: Vec<Option<usize>> = rows
                    .iter()
                    .map(|&r| codes.get(r).copied().flatten())
                    .collect();
                let mut used = vec![false; levels.len()];
                for code in kept.iter().flatten() {
                    if let Some(slot) = used.get_mut(*code) {
                        *slot = true;
                    }
                }
                let mut new_index = vec![None; levels.len()];
                let mut new_levels = Vec::new();
                for (i, level) in levels.iter().enumerate() {
                    if used[i] {
                        new_index[i] = Some(new_levels.len());
                        new_levels.push(level.clone());
                    }
                }
                let codes = kept
                    .iter()
                    .map(|c| c.and_then(|c| new_index.get(c).copied().flatten()))
                    .collect();
                Column::Categorical {
                    codes,
                    levels: new_levels,
                    logical: *logical,
                }
            }
        }
    }
}

/// Sorts and deduplicates strings as R's `sort()` does in a UTF-8 locale with ICU (R's default
/// there: `icuGetCollate()` is "root"), which is how R on a DataSHIELD server orders factor levels.
pub fn sort_levels(mut levels: Vec<String>) -> Vec<String> {
    levels.sort_by(|a, b| collate(a, b));
    levels.dedup();
    levels
}

/// ICU root collation for ASCII text: first by primary weights (white space and punctuation in
/// CLDR's order, then digits, then letters without case), then by case, lowercase first, from
/// the left; other characters come after ASCII, by code point (an approximation).
pub fn collate(a: &str, b: &str) -> std::cmp::Ordering {
    const PUNCTUATION: &str = "\t\n\r _-,;:!?.'\"()[]{}@*/\\&#%`^+<=>|~$";
    let primary = |c: char| -> u32 {
        if let Some(i) = PUNCTUATION.find(c) {
            i as u32
        } else if c.is_ascii_digit() {
            100 + (c as u32 - '0' as u32)
        } else if c.is_ascii_alphabetic() {
            200 + (c.to_ascii_lowercase() as u32 - 'a' as u32)
        } else {
            1000 + c as u32
        }
    };
    let pa = a.chars().map(primary);
    let pb = b.chars().map(primary);
    pa.cmp(pb)
        .then_with(|| {
            a.chars()
                .map(|c| c.is_ascii_uppercase())
                .cmp(b.chars().map(|c| c.is_ascii_uppercase()))
        })
        .then_with(|| a.cmp(b))
}

/// Turns an R object into a model-frame column (`name` for messages).
pub fn column(name: &str, value: &RObject) -> Result<Column, DsError> {
    if value.is_factor() {
        let levels: Vec<String> = value.levels().into_iter().map(str::to_owned).collect();
        let Vector::Integer(codes) = &value.vector else {
            return Err(DsError::failed(format!(
                "invalid type ({}) for variable '{name}'",
                value.vector.type_name()
            )));
        };
        let codes = codes
            .iter()
            .map(|c| {
                c.and_then(|c| usize::try_from(c).ok())
                    .and_then(|c| c.checked_sub(1))
                    .filter(|&c| c < levels.len())
            })
            .collect();
        return Ok(Column::Categorical {
            codes,
            levels,
            logical: false,
        });
    }
    if value
        .dim()
        .is_some_and(|d| d.len() == 2 && d.get(1) != Some(&1))
        || value.is_data_frame()
    {
        return Err(DsError::failed(format!(
            "invalid type for variable '{name}': it is not a vector"
        )));
    }
    match &value.vector {
        Vector::Integer(_) | Vector::Double(_) => {
            Ok(Column::Numeric(value.as_doubles().unwrap_or_default()))
        }
        Vector::Logical(v) => {
            let present = |b: bool| v.contains(&Some(b));
            let levels: Vec<String> = [(false, "FALSE"), (true, "TRUE")]
                .iter()
                .filter(|(b, _)| present(*b))
                .map(|(_, s)| (*s).to_owned())
                .collect();
            let codes = v
                .iter()
                .map(|x| {
                    x.and_then(|b| {
                        levels
                            .iter()
                            .position(|l| l == if b { "TRUE" } else { "FALSE" })
                    })
                })
                .collect();
            Ok(Column::Categorical {
                codes,
                levels,
                logical: true,
            })
        }
        Vector::Character(v) => {
            let levels = sort_levels(v.iter().flatten().cloned().collect());
            let codes = v
                .iter()
                .map(|x| x.as_ref().and_then(|s| levels.iter().position(|l| l == s)))
                .collect();
            Ok(Column::Categorical {
                codes,
                levels,
                logical: false,
            })
        }
        other => Err(DsError::failed(format!(
            "invalid type ({}) for variable '{name}'",
            other.type_name()
        ))),
    }
}

/// The variables of a formula, resolved, before any row is dropped.
#[derive(Clone, Debug)]
pub struct ModelFrame {
    pub terms: Terms,
    /// One column per variable of `terms`, full length.
    pub columns: Vec<Column>,
    pub nrow: usize,
}

impl ModelFrame {
    /// Resolves every variable of `terms` with `resolve`; all must have one length.
    pub fn new(
        terms: Terms,
        resolve: &dyn Fn(&str) -> Result<RObject, DsError>,
    ) -> Result<ModelFrame, DsError> {
        let mut columns = Vec::with_capacity(terms.variables.len());
        let mut nrow = None;
        for name in &terms.variables {
            let column = column(name, &resolve(name)?)?;
            match nrow {
                None => nrow = Some(column.len()),
                Some(n) if n != column.len() => {
                    return Err(DsError::failed(format!(
                        "variable lengths differ (found for '{name}')"
                    )));
                }
                Some(_) => {}
            }
            columns.push(column);
        }
        Ok(ModelFrame {
            terms,
            columns,
            nrow: nrow.unwrap_or(0),
        })
    }

    /// The rows with no missing value in any formula variable (R's `na.omit` of the frame).
    pub fn complete_rows(&self) -> Vec<usize> {
        (0..self.nrow)
            .filter(|&r| self.columns.iter().all(|c| !c.is_na(r)))
            .collect()
    }
}

/// A numeric model matrix, column-major, with R's column names.
#[derive(Clone, Debug, PartialEq)]
pub struct ModelMatrix {
    pub nrow: usize,
    pub names: Vec<String>,
    pub columns: Vec<Vec<f64>>,
}

impl ModelMatrix {
    pub fn ncol(&self) -> usize {
        self.columns.len()
    }

    /// Keeps the rows `rows` (indices into this matrix).
    pub fn rows(&self, rows: &[usize]) -> ModelMatrix {
        ModelMatrix {
            nrow: rows.len(),
            names: self.names.clone(),
            columns: self
                .columns
                .iter()
                .map(|c| rows.iter().map(|&r| c[r]).collect())
                .collect(),
        }
    }
}

/// R's `model.matrix()` of the frame's rows `rows` (already complete), with treatment contrasts.
/// Also returns the response column restricted to those rows.
pub fn model_matrix(frame: &ModelFrame, rows: &[usize]) -> Result<(ModelMatrix, Column), DsError> {
    let terms = &frame.terms;
    let columns: Vec<Column> = frame.columns.iter().map(|c| c.subset(rows)).collect();
    let response = columns
        .first()
        .cloned()
        .unwrap_or(Column::Numeric(Vec::new()));
    // model.matrix() sets contrasts on every factor on the right-hand side, which needs 2 levels.
    // (Every variable of the frame, even one whose terms were all subtracted.)
    let single_level = columns
        .iter()
        .skip(1)
        .any(|c| matches!(c, Column::Categorical { levels, .. } if levels.len() < 2));
    if single_level {
        return Err(DsError::failed(
            "contrasts can be applied only to factors with 2 or more levels",
        ));
    }
    let is_factor = |v: usize| matches!(columns[v], Column::Categorical { .. });
    // R's factor pattern: a factor in a term is coded by contrasts when the term without it is
    // empty or contained in an earlier term; otherwise by a full set of indicators.
    let mut full: Vec<Vec<bool>> = terms
        .terms
        .iter()
        .enumerate()
        .map(|(j, term)| {
            term.iter()
                .map(|&v| {
                    let rest: Vec<usize> = term.iter().copied().filter(|&w| w != v).collect();
                    let contained = rest.is_empty()
                        || terms.terms[..j]
                            .iter()
                            .any(|earlier| rest.iter().all(|w| earlier.contains(w)));
                    !contained
                })
                .collect()
        })
        .collect();
    // Without an intercept, the first factor of the first term having one gets all its levels.
    if !terms.intercept {
        'first: for (j, term) in terms.terms.iter().enumerate() {
            for (k, &v) in term.iter().enumerate() {
                if is_factor(v) {
                    full[j][k] = true;
                    break 'first;
                }
            }
        }
    }
    let width = |v: usize, full: bool| match &columns[v] {
        Column::Numeric(_) => 1,
        Column::Categorical { levels, .. } => levels.len().saturating_sub(usize::from(!full)),
    };
    let ncol: usize = usize::from(terms.intercept)
        + terms
            .terms
            .iter()
            .enumerate()
            .map(|(j, term)| {
                term.iter().enumerate().fold(1usize, |acc, (k, &v)| {
                    acc.saturating_mul(width(v, full[j][k]))
                })
            })
            .fold(0usize, usize::saturating_add);
    if ncol > MAX_COLUMNS {
        return Err(DsError::failed(format!(
            "the model matrix would have {ncol} columns, more than {MAX_COLUMNS}"
        )));
    }
    let n = rows.len();
    if ncol.saturating_mul(n) > MAX_CELLS {
        return Err(DsError::failed(format!(
            "the model matrix would have {n} × {ncol} cells, more than {MAX_CELLS}"
        )));
    }
    let mut out = ModelMatrix {
        nrow: n,
        names: Vec::new(),
        columns: Vec::new(),
    };
    if terms.intercept {
        out.names.push("(Intercept)".into());
        out.columns.push(vec![1.0; n]);
    }
    for (j, term) in terms.terms.iter().enumerate() {
        let mut built: Vec<(String, Vec<f64>)> = vec![(String::new(), vec![1.0; n])];
        for (k, &v) in term.iter().enumerate() {
            let name = &terms.variables[v];
            let var_columns: Vec<(String, Vec<f64>)> = match &columns[v] {
                Column::Numeric(values) => vec![(
                    name.clone(),
                    values.iter().map(|x| x.unwrap_or(f64::NAN)).collect(),
                )],
                Column::Categorical { codes, levels, .. } => {
                    let first = if full[j][k] { 0 } else { 1 };
                    (first..levels.len())
                        .map(|level| {
                            let indicator = codes
                                .iter()
                                .map(|c| if *c == Some(level) { 1.0 } else { 0.0 })
                                .collect();
                            (format!("{name}{}", levels[level]), indicator)
                        })
                        .collect()
                }
            };
            // The earlier variables vary fastest, as in R's column order.
            let mut next = Vec::with_capacity(built.len() * var_columns.len());
            for (var_name, var_values) in &var_columns {
                for (name_so_far, values) in &built {
                    let joined = if name_so_far.is_empty() {
                        var_name.clone()
                    } else {
                        format!("{name_so_far}:{var_name}")
                    };
                    next.push((
                        joined,
                        values.iter().zip(var_values).map(|(a, b)| a * b).collect(),
                    ));
                }
            }
            built = next;
        }
        for (name, values) in built {
            out.names.push(name);
            out.columns.push(values);
        }
    }
    Ok((out, response))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn var(name: &str) -> FormulaExpr {
        FormulaExpr::Variable(name.into())
    }

    fn op(op: FormulaOp, lhs: FormulaExpr, rhs: FormulaExpr) -> FormulaExpr {
        FormulaExpr::Op {
            op,
            lhs: Box::new(lhs),
            rhs: Box::new(rhs),
        }
    }

    #[test]
    fn terms_follow_r_ordering_and_intercept_rules() {
        // y ~ (x + a + b)^2
        let rhs = op(
            FormulaOp::Power,
            FormulaExpr::Paren(Box::new(op(
                FormulaOp::Plus,
                op(FormulaOp::Plus, var("x"), var("a")),
                var("b"),
            ))),
            FormulaExpr::Number(2.0),
        );
        let t = terms("y", &rhs).unwrap();
        assert_eq!(t.labels(), vec!["x", "a", "b", "x:a", "x:b", "a:b"]);
        assert!(t.intercept);
        // y ~ x - 1, and the lexer's one-symbol form
        let t = terms(
            "y",
            &op(FormulaOp::Minus, var("x"), FormulaExpr::Number(1.0)),
        )
        .unwrap();
        assert!(!t.intercept);
        let t = terms("y", &var("x-1")).unwrap();
        assert!(!t.intercept);
        assert_eq!(t.labels(), vec!["x"]);
        // y ~ x - 0 keeps it, y ~ x + 0 drops it, y ~ -1 + x drops it
        assert!(
            terms(
                "y",
                &op(FormulaOp::Minus, var("x"), FormulaExpr::Number(0.0))
            )
            .unwrap()
            .intercept
        );
        assert!(
            !terms(
                "y",
                &op(FormulaOp::Plus, var("x"), FormulaExpr::Number(0.0))
            )
            .unwrap()
            .intercept
        );
        assert!(
            !terms(
                "y",
                &op(FormulaOp::Plus, FormulaExpr::Number(-1.0), var("x"))
            )
            .unwrap()
            .intercept
        );
        // x %in% a, x*a - x
        assert_eq!(
            terms("y", &op(FormulaOp::In, var("x"), var("a")))
                .unwrap()
                .labels(),
            vec!["x:a"]
        );
        let t = terms(
            "y",
            &op(
                FormulaOp::Minus,
                op(FormulaOp::Times, var("x"), var("a")),
                var("x"),
            ),
        )
        .unwrap();
        assert_eq!(t.labels(), vec!["a", "x:a"]);
    }

    #[test]
    fn runaway_expansions_are_refused() {
        let mut sum = var("v0");
        for i in 1..30 {
            sum = op(FormulaOp::Plus, sum, var(&format!("v{i}")));
        }
        let power = op(
            FormulaOp::Power,
            FormulaExpr::Paren(Box::new(sum)),
            FormulaExpr::Number(30.0),
        );
        assert!(
            terms("y", &power)
                .unwrap_err()
                .to_string()
                .contains("more than 256 terms")
        );
    }

    #[test]
    fn bad_formulas_are_refused_as_r_refuses_them() {
        let two = op(FormulaOp::Plus, var("x"), FormulaExpr::Number(2.0));
        assert_eq!(
            terms("y", &two).unwrap_err().to_string(),
            "invalid model formula in ExtractVars"
        );
        let power = op(FormulaOp::Power, var("x"), FormulaExpr::Number(1.0));
        assert_eq!(
            terms("y", &power).unwrap_err().to_string(),
            "invalid power in formula"
        );
        assert!(terms("y", &var("x--1")).is_err());
    }

    #[test]
    fn collation_is_icu_roots_for_ascii() {
        let sorted = sort_levels(
            [
                "b", "B", "a", "A", "a1", "a_b", "a.b", "a-b", "ab", "aB", "Ab", "10", "2", "1a",
                "_x", ".x", "Z", "z", "a b", "aa",
            ]
            .iter()
            .map(|s| s.to_string())
            .collect(),
        );
        // R 4.2 with ICU: sort() of the same strings.
        let r = "_x .x 10 1a 2 a A a b a_b a-b a.b a1 aa ab aB Ab b B z Z";
        assert_eq!(sorted.join(" "), r);
    }

    #[test]
    fn unused_levels_are_dropped_and_codes_renumbered() {
        let c = Column::Categorical {
            codes: vec![Some(0), Some(2), None, Some(2)],
            levels: vec!["a".into(), "b".into(), "c".into()],
            logical: false,
        };
        let s = c.subset(&[1, 3]);
        assert_eq!(
            s,
            Column::Categorical {
                codes: vec![Some(0), Some(0)],
                levels: vec!["c".into()],
                logical: false
            }
        );
    }
}
