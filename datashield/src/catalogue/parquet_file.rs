//! Parquet tables (as Armadillo keeps them; tested on pyarrow's files), read column by column
//! with the `parquet` crate's own readers. Only flat columns of R's atomic types are read;
//! anything else is refused by name and type, so that no value is ever guessed at.

use std::fs::File;

use parquet::basic::{Compression, ConvertedType, LogicalType, Repetition, Type as PhysicalType};
use parquet::column::reader::ColumnReaderImpl;
use parquet::data_type::{
    BoolType, ByteArrayType, DataType, DoubleType, FloatType, Int32Type, Int64Type,
};
use parquet::file::reader::{FileReader, SerializedFileReader};
use parquet::schema::types::Type;

use super::{ColumnType, Dictionary, Values, Variable, build_frame, r_integer};
use crate::value::{RObject, na_real};

/// Values decoded per call: bounds memory per step, whatever a page claims.
const BATCH: usize = 8192;

/// The parquet types read, by what R makes of them.
#[derive(Clone, Copy)]
enum Kind {
    Boolean,
    Int32,
    UInt32,
    Int64,
    UInt64,
    Float,
    Double,
    Text,
}

/// Reads a parquet file into a data frame (rows count from 1 in messages).
pub(super) fn read_parquet(
    file: File,
    dictionary: Option<&Dictionary>,
) -> Result<(Vec<Variable>, RObject), String> {
    let reader =
        SerializedFileReader::new(file).map_err(|e| format!("not a readable parquet file: {e}"))?;
    let metadata = reader.metadata().file_metadata();
    let fields = metadata.schema_descr().root_schema().get_fields();
    // Every field is checked to be one flat column, so field `i` is leaf column `i`.
    let kinds = fields
        .iter()
        .map(|f| kind(f))
        .collect::<Result<Vec<_>, _>>()?;
    let names: Vec<String> = fields.iter().map(|f| f.name().to_owned()).collect();
    check_chunks(&reader, &names)?;
    let nrow = usize::try_from(metadata.num_rows())
        .map_err(|_| format!("the file claims {} rows", metadata.num_rows()))?;
    build_frame(&names, nrow, dictionary, 1, |i, declared| {
        read_column(&reader, i, &names[i], kinds[i], declared)
            .map_err(|e| format!("column '{}': {e}", names[i]))
    })
}

/// Refuses, before any page is read, the column chunks the reader could not read sensibly.
fn check_chunks(reader: &SerializedFileReader<File>, names: &[String]) -> Result<(), String> {
    for group in reader.metadata().row_groups() {
        for (chunk, name) in group.columns().iter().zip(names) {
            // Only snappy is built in (pyarrow's default); name the codec rather than fail later.
            if !matches!(
                chunk.compression(),
                Compression::UNCOMPRESSED | Compression::SNAPPY
            ) {
                return Err(format!(
                    "the column '{name}' is compressed with {}, which is not read: write the file with snappy (pyarrow's default) or uncompressed",
                    chunk.compression()
                ));
            }
            // The crate's reader asserts against these, which only a damaged footer has.
            if chunk
                .dictionary_page_offset()
                .unwrap_or(chunk.data_page_offset())
                < 0
                || chunk.compressed_size() < 0
            {
                return Err(format!(
                    "not a readable parquet file: the column '{name}' has a negative offset or size"
                ));
            }
        }
    }
    Ok(())
}

/// What a top-level field is read as, or why it is not read.
fn kind(field: &Type) -> Result<Kind, String> {
    let info = field.get_basic_info();
    let logical = info.logical_type_ref();
    let refuse = |what: String| {
        Err(format!(
            "the column '{}' is {what}, which is not read: only integer, floating-point, boolean and string columns are",
            field.name()
        ))
    };
    if field.is_group() {
        return refuse(match logical {
            Some(LogicalType::List) => "a list".into(),
            Some(LogicalType::Map) => "a map".into(),
            _ => "a struct".into(),
        });
    }
    if info.has_repetition() && info.repetition() == Repetition::REPEATED {
        return refuse("a repeated field (a list)".into());
    }
    let physical = field.get_physical_type();
    let converted = info.converted_type();
    use ConvertedType as C;
    use PhysicalType as P;
    // Old writers give only the converted type, new ones both: either may speak.
    let signed = |int: &parquet::basic::IntType| int.is_signed;
    Ok(match (physical, logical, converted) {
        (P::BOOLEAN, None, C::NONE) => Kind::Boolean,
        (P::INT32, None, C::NONE | C::INT_8 | C::INT_16 | C::INT_32) => Kind::Int32,
        (P::INT32, Some(LogicalType::Integer(int)), _) if signed(int) => Kind::Int32,
        (P::INT32, Some(LogicalType::Integer(_)), _)
        | (P::INT32, None, C::UINT_8 | C::UINT_16 | C::UINT_32) => Kind::UInt32,
        (P::INT64, None, C::NONE | C::INT_64) => Kind::Int64,
        (P::INT64, Some(LogicalType::Integer(int)), _) if signed(int) => Kind::Int64,
        (P::INT64, Some(LogicalType::Integer(_)), _) | (P::INT64, None, C::UINT_64) => Kind::UInt64,
        (P::FLOAT, None, C::NONE) => Kind::Float,
        (P::DOUBLE, None, C::NONE) => Kind::Double,
        (P::BYTE_ARRAY, Some(LogicalType::String | LogicalType::Enum), _)
        | (P::BYTE_ARRAY, None, C::UTF8 | C::ENUM) => Kind::Text,
        _ => return refuse(type_description(physical, logical, converted)),
    })
}

/// A parquet type as its writer would name it, for refusals.
fn type_description(
    physical: PhysicalType,
    logical: Option<&LogicalType>,
    converted: ConvertedType,
) -> String {
    let logical = match logical {
        Some(LogicalType::Date) => "a date".into(),
        Some(LogicalType::Time(_)) => "a time of day".into(),
        Some(LogicalType::Timestamp(_)) => "a timestamp".into(),
        Some(LogicalType::Decimal(_)) => "a decimal".into(),
        Some(other) => format!("{other:?}"),
        None if converted != ConvertedType::NONE => format!("{converted:?}"),
        None => match physical {
            PhysicalType::BYTE_ARRAY => "binary".into(),
            PhysicalType::FIXED_LEN_BYTE_ARRAY => "fixed-length binary".into(),
            PhysicalType::INT96 => "an INT96 timestamp".into(),
            other => format!("{other:?}"),
        },
    };
    format!("{logical} ({physical:?})")
}

/// Column `i`'s values, as `declared` asks where the type allows.
fn read_column(
    reader: &SerializedFileReader<File>,
    i: usize,
    name: &str,
    kind: Kind,
    declared: Option<ColumnType>,
) -> Result<Values, String> {
    Ok(match kind {
        Kind::Boolean => Values::Logical(read_leaf::<BoolType>(reader, i)?),
        Kind::Int32 => integers(
            read_leaf::<Int32Type>(reader, i)?,
            i128::from,
            name,
            declared,
        )?,
        // Unsigned values are stored in the signed type's bits.
        Kind::UInt32 => integers(
            read_leaf::<Int32Type>(reader, i)?,
            |x| i128::from(x as u32),
            name,
            declared,
        )?,
        Kind::Int64 => integers(
            read_leaf::<Int64Type>(reader, i)?,
            i128::from,
            name,
            declared,
        )?,
        Kind::UInt64 => integers(
            read_leaf::<Int64Type>(reader, i)?,
            |x| i128::from(x as u64),
            name,
            declared,
        )?,
        Kind::Float => doubles(read_leaf::<FloatType>(reader, i)?),
        Kind::Double => doubles(read_leaf::<DoubleType>(reader, i)?),
        Kind::Text => Values::Character(
            read_leaf::<ByteArrayType>(reader, i)?
                .into_iter()
                .enumerate()
                .map(|(row, x)| {
                    x.map(|bytes| {
                        String::from_utf8(bytes.data().to_vec())
                            .map_err(|_| format!("row {}: the text is not UTF-8", row + 1))
                    })
                    .transpose()
                })
                .collect::<Result<_, _>>()?,
        ),
    })
}

/// A file's integers (widened so that no width or sign is lost) as R integers, or as doubles
/// when the dictionary declares the column numeric, which also reads those beyond R's integers.
fn integers<T>(
    values: Vec<Option<T>>,
    widen: impl Fn(T) -> i128,
    name: &str,
    declared: Option<ColumnType>,
) -> Result<Values, String> {
    if declared == Some(ColumnType::Numeric) {
        // Exact up to 2^53, rounded beyond, as R's as.numeric.
        return Ok(Values::Numeric(
            values
                .into_iter()
                .map(|x| x.map_or_else(na_real, |x| widen(x) as f64))
                .collect(),
        ));
    }
    values
        .into_iter()
        .enumerate()
        .map(|(row, x)| {
            let Some(x) = x.map(&widen) else {
                return Ok(None);
            };
            r_integer(x).map(Some).ok_or_else(|| {
                format!(
                    "row {}: {x} is outside R's integers (±2147483647); declare '{name}' numeric in the data dictionary to read it as doubles",
                    row + 1
                )
            })
        })
        .collect::<Result<_, _>>()
        .map(Values::Integer)
}

/// Floats widened exactly; nulls become R's `NA`; a stored NaN stays NaN.
fn doubles<T: Into<f64>>(values: Vec<Option<T>>) -> Values {
    Values::Numeric(
        values
            .into_iter()
            .map(|x| x.map_or_else(na_real, Into::into))
            .collect(),
    )
}

/// Every value of leaf column `i` over all row groups, `None` for a null.
fn read_leaf<T: DataType>(
    reader: &SerializedFileReader<File>,
    i: usize,
) -> Result<Vec<Option<T::T>>, String> {
    let max_def = reader
        .metadata()
        .file_metadata()
        .schema_descr()
        .column(i)
        .max_def_level();
    let mut out = Vec::new();
    for group in 0..reader.num_row_groups() {
        let column = reader
            .get_row_group(group)
            .and_then(|g| g.get_column_reader(i))
            .map_err(|e| e.to_string())?;
        let mut column: ColumnReaderImpl<T> = T::get_column_reader(column)
            .ok_or("the column's pages do not have its schema's type")?;
        loop {
            let (mut levels, mut values) = (Vec::new(), Vec::new());
            let (records, _, _) = column
                .read_records(
                    BATCH,
                    (max_def > 0).then_some(&mut levels),
                    None,
                    &mut values,
                )
                .map_err(|e| e.to_string())?;
            if records == 0 {
                break;
            }
            if max_def == 0 {
                out.extend(values.into_iter().map(Some));
                continue;
            }
            // Values are packed: one per level at the maximum definition level.
            let mut values = values.into_iter();
            for level in levels {
                out.push(if level == max_def {
                    Some(values.next().ok_or("fewer values than definition levels")?)
                } else {
                    None
                });
            }
        }
    }
    Ok(out)
}
