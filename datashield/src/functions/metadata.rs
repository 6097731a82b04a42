//! Metadata functions: what an object is, never what it holds.

use crate::error::DsError;
use crate::eval::{Invocation, Method};
use crate::functions::numeric::{count_na, is_na, r_int};
use crate::settings::{DisclosureSettings, PrivacyControlLevel};
use crate::value::{RObject, Vector};

pub fn methods() -> Vec<Method> {
    vec![
        Method::aggregate("classDS", class_ds),
        Method::aggregate("dimDS", dim_ds),
        Method::aggregate("lengthDS", length_ds),
        Method::aggregate("colnamesDS", colnames_ds),
        Method::aggregate("namesDS", names_ds),
        Method::aggregate("isValidDS", is_valid_ds),
        Method::aggregate("numNaDS", num_na_ds),
        Method::aggregate("isNaDS", is_na_ds),
        Method::aggregate("levelsDS", levels_ds),
        Method::aggregate("testObjExistsDS", test_obj_exists_ds),
        Method::aggregate("listDisclosureSettingsDS", list_disclosure_settings_ds),
    ]
}

/// dsBase's `checkPermissivePrivacyControlLevel(levels)`: the function runs only under one of
/// `allowed`.
pub(crate) fn check_privacy_level(
    settings: &DisclosureSettings,
    allowed: &[PrivacyControlLevel],
) -> Result<(), DsError> {
    if allowed.contains(&settings.privacy_control_level) {
        Ok(())
    } else {
        Err(DsError::disclosure(
            "datashield.privacyControlLevel",
            "BLOCKED: The server is running in 'non-permissive' mode which has caused this method to be blocked",
        ))
    }
}

/// `classDS("x")`: R's `class(x)`.
fn class_ds(call: &Invocation<'_>) -> Result<RObject, DsError> {
    let x = call.named_object(0, "x")?;
    Ok(RObject::strings(x.class()))
}

/// `dimDS("x")`: `dim(x)`, an integer vector for a data frame or matrix, else NULL.
fn dim_ds(call: &Invocation<'_>) -> Result<RObject, DsError> {
    let x = call.named_object(0, "x")?;
    if x.is_data_frame() {
        let nrow = r_int(x.nrow().unwrap_or(0))?;
        return Ok(RObject::integers(vec![Some(nrow), Some(r_int(x.len())?)]));
    }
    Ok(match x.attr("dim") {
        Some(dim) => RObject::new(dim.vector.clone()),
        None => RObject::null(),
    })
}

/// `lengthDS("x")`: `length(x)` (an integer; a data frame's is its number of columns).
fn length_ds(call: &Invocation<'_>) -> Result<RObject, DsError> {
    let x = call.named_object(0, "x")?;
    Ok(RObject::integer(r_int(x.len())?))
}

/// `colnamesDS("x")`: a data frame's names, a matrix's column names, else NULL.
fn colnames_ds(call: &Invocation<'_>) -> Result<RObject, DsError> {
    let x = call.named_object(0, "x")?;
    if x.is_data_frame() {
        return Ok(x
            .attr("names")
            .map(|n| RObject::new(n.vector.clone()))
            .unwrap_or_else(RObject::null));
    }
    let dimnames = x.attr("dimnames").map(|d| &d.vector);
    match (x.dim().map(|d| d.len()), dimnames) {
        (Some(2), Some(Vector::List(dimnames))) => Ok(dimnames
            .get(1)
            .map(|columns| RObject::new(columns.vector.clone()))
            .unwrap_or_else(RObject::null)),
        _ => Ok(RObject::null()),
    }
}

/// `namesDS("x")`: the names of a list (anything `is.list`, data frames included).
///
/// dsBase means to refuse names longer than nfilter.stringShort, but its check measures the
/// wrong thing and never fires; refusing here would refuse what every dsBase server answers.
fn names_ds(call: &Invocation<'_>) -> Result<RObject, DsError> {
    let x = call.named_object(0, "xname.transmit")?;
    if !matches!(x.vector, Vector::List(_)) {
        // dsBase pastes the class onto its message, once per class string.
        let message: String = x
            .class()
            .iter()
            .map(|class| format!("The input object is not of class <list>{class}"))
            .collect();
        return Err(DsError::failed(message));
    }
    Ok(x.attr("names")
        .map(|n| RObject::new(n.vector.clone()))
        .unwrap_or_else(RObject::null))
}

/// dsBase's validity rule: an atomic vector is invalid when 0 < length < nfilter.tab, a factor
/// when some level has 1..nfilter.tab−1 members, a data frame or matrix when
/// 0 < nrow < nfilter.tab; anything else is invalid.
pub(crate) fn is_valid(x: &RObject, settings: &DisclosureSettings) -> bool {
    let small = |n: usize| n > 0 && (n as f64) < settings.nfilter_tab;
    let class = x.class();
    let single = |name: &str| class.len() == 1 && class[0] == name;
    if ["character", "integer", "logical", "numeric"]
        .iter()
        .any(|c| single(c))
    {
        return !small(x.len());
    }
    if single("factor") {
        let Vector::Integer(codes) = &x.vector else {
            return false;
        };
        let mut counts = vec![0_usize; x.levels().len()];
        for code in codes.iter().flatten() {
            if let Some(slot) = usize::try_from(*code)
                .ok()
                .and_then(|c| c.checked_sub(1))
                .and_then(|c| counts.get_mut(c))
            {
                *slot += 1;
            }
        }
        return !counts.into_iter().any(small);
    }
    // dsBase compares class(obj) == "matrix", which R ≥ 4.2 refuses for a two-string class;
    // a matrix is judged by its rows, as the rule intends.
    if single("data.frame") || class.first().is_some_and(|c| c == "matrix") {
        return !small(x.nrow().unwrap_or(0));
    }
    false
}

/// `isValidDS(obj)`: TRUE or FALSE by [`is_valid`].
fn is_valid_ds(call: &Invocation<'_>) -> Result<RObject, DsError> {
    let x = call.named_object(0, "obj")?;
    Ok(RObject::logical(is_valid(&x, call.env.settings)))
}

/// `numNaDS(x)`: `length(which(is.na(x)))`, an integer.
fn num_na_ds(call: &Invocation<'_>) -> Result<RObject, DsError> {
    let x = call.named_object(0, "xvect")?;
    Ok(RObject::integer(r_int(count_na(&x)?)?))
}

/// `isNaDS(x)`: TRUE when every value (every cell of a data frame) is NA, and for no values.
fn is_na_ds(call: &Invocation<'_>) -> Result<RObject, DsError> {
    let x = call.named_object(0, "xvect")?;
    let cells = if x.is_data_frame() {
        match &x.vector {
            Vector::List(columns) => columns.iter().map(RObject::len).sum(),
            _ => 0,
        }
    } else {
        is_na(&x).len()
    };
    Ok(RObject::logical(count_na(&x)? == cells))
}

/// `levelsDS(x)`: `list(Levels, ValidityMessage)`; banana and permissive only, and refused
/// when the levels are more than nfilter.levels.density of the length.
fn levels_ds(call: &Invocation<'_>) -> Result<RObject, DsError> {
    let x = call.named_object(0, "x")?;
    check_privacy_level(
        call.env.settings,
        &[PrivacyControlLevel::Permissive, PrivacyControlLevel::Banana],
    )?;
    let levels = x
        .attr("levels")
        .map(|l| RObject::new(l.vector.clone()))
        .unwrap_or_else(RObject::null);
    if (x.len() as f64) * call.env.settings.nfilter_levels_density < levels.len() as f64 {
        return Err(DsError::disclosure(
            "nfilter.levels.density",
            "FAILED: Result length less than nfilter.levels.density of input length.",
        ));
    }
    Ok(RObject::named_list([
        ("Levels", levels),
        ("ValidityMessage", RObject::string("VALID ANALYSIS")),
    ]))
}

/// `testObjExistsDS("name")`: `list(test.obj.exists, test.obj.class)`, the class NULL when
/// there is no such object. Only whole symbols exist (`exists("D$age")` is FALSE in R).
fn test_obj_exists_ds(call: &Invocation<'_>) -> Result<RObject, DsError> {
    let name = call.string(0, "test.obj.name")?;
    let found = call.env.symbols.get(&name);
    Ok(RObject::named_list([
        ("test.obj.exists", RObject::logical(found.is_some())),
        (
            "test.obj.class",
            found
                .map(|x| RObject::strings(x.class()))
                .unwrap_or_else(RObject::null),
        ),
    ]))
}

/// `listDisclosureSettingsDS()`: the settings by dsBase's names, in its order. The legacy
/// `datashield.privacyLevel` (reported as nfilter.privacy.old) is Opal's default, 5.
fn list_disclosure_settings_ds(call: &Invocation<'_>) -> Result<RObject, DsError> {
    let s = call.env.settings;
    Ok(RObject::named_list([
        (
            "datashield.privacyControlLevel",
            RObject::string(s.privacy_control_level.as_str()),
        ),
        ("nfilter.tab", RObject::double(s.nfilter_tab)),
        ("nfilter.subset", RObject::double(s.nfilter_subset)),
        ("nfilter.glm", RObject::double(s.nfilter_glm)),
        ("nfilter.string", RObject::double(s.nfilter_string)),
        (
            "nfilter.stringShort",
            RObject::double(s.nfilter_string_short),
        ),
        ("nfilter.kNN", RObject::double(s.nfilter_knn)),
        (
            "nfilter.levels.density",
            RObject::double(s.nfilter_levels_density),
        ),
        ("nfilter.levels.max", RObject::double(s.nfilter_levels_max)),
        ("nfilter.noise", RObject::double(s.nfilter_noise)),
        ("nfilter.privacy.old", RObject::double(5.0)),
    ]))
}
