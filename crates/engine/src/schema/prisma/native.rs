//! `@db.*` native types: which apply to which scalar, and the Arrow type each stands for.

use arrow::datatypes::{DataType, TimeUnit};

use super::syntax::FieldDecl;
use super::*;

/// A `@db.Name(args)` attribute.
pub(super) struct Native<'a> {
    /// As written, e.g. `@db.VarChar`, for messages.
    pub(super) label: String,
    /// The part after the datasource name, e.g. `VarChar`.
    pub(super) name: &'a str,
    pub(super) args: Vec<u32>,
}

pub(super) fn native_attr(field: &FieldDecl) -> Result<Option<Native<'_>>> {
    let mut natives = field.attrs.iter().filter_map(|a| {
        let (_, name) = a.name.split_once('.')?;
        Some((a, name))
    });
    let Some((attr, name)) = natives.next() else {
        return Ok(None);
    };
    if let Some((second, _)) = natives.next() {
        let message = format!("field `{}` has more than one native type", field.name);
        return Err(schema_error(second.line, message));
    }
    let args = attr
        .args
        .iter()
        .map(|arg| match (&arg.name, &arg.value) {
            (None, Expr::Num(number)) => number.parse::<u32>().ok(),
            _ => None,
        })
        .collect::<Option<Vec<u32>>>()
        .ok_or_else(|| {
            let message = format!("arguments of `{}` must be whole numbers", attr.label());
            schema_error(attr.line, message)
        })?;
    Ok(Some(Native {
        label: attr.label(),
        name,
        args,
    }))
}

/// The type of a native type override, or a message saying why it cannot be used.
pub(super) fn native_type(
    provider: Provider,
    scalar: Scalar,
    native: &Native,
) -> Result<DataType, String> {
    let mapped = match provider {
        Provider::PostgreSql => postgres_native(scalar, native),
        Provider::MySql => mysql_native(scalar, native),
    };
    mapped.unwrap_or_else(|| {
        Err(format!(
            "native type {} is not supported for {scalar:?}",
            native.label
        ))
    })
}

/// `None` when the native type does not exist for this scalar on PostgreSQL.
pub(super) fn postgres_native(scalar: Scalar, native: &Native) -> Option<Result<DataType, String>> {
    use Scalar::*;
    Some(match (scalar, native.name) {
        (String, "Text" | "Uuid" | "Xml" | "Inet" | "Citext") => simple(native, DataType::Utf8),
        (String, "VarChar" | "Char" | "Bit" | "VarBit") => sized(native, DataType::Utf8),
        (Boolean, "Boolean") => simple(native, DataType::Boolean),
        (Int, "Integer") => simple(native, DataType::Int32),
        (Int, "SmallInt") => simple(native, DataType::Int16),
        (Int, "Oid") => simple(native, DataType::Int64),
        (BigInt, "BigInt") => simple(native, DataType::Int64),
        (Float, "DoublePrecision") => simple(native, DataType::Float64),
        (Float, "Real") => simple(native, DataType::Float32),
        (Decimal, "Decimal") => decimal_args(native, Scalar::Decimal.default_type()),
        (Decimal, "Money") => simple(native, DataType::Decimal128(19, 2)),
        (DateTime, "Timestamp") => precision(native, 6).map(|p| timestamp(p, false)),
        (DateTime, "Timestamptz") => precision(native, 6).map(|p| timestamp(p, true)),
        (DateTime, "Date") => simple(native, DataType::Date32),
        (DateTime, "Time") => precision(native, 6).map(time),
        (DateTime, "Timetz") => precision(native, 6).map(|_| DataType::Utf8),
        (Json, "Json" | "JsonB") => simple(native, DataType::Utf8),
        (Bytes, "ByteA") => simple(native, DataType::Binary),
        _ => return None,
    })
}

/// `None` when the native type does not exist for this scalar on MySQL.
///
/// Where MySQL's own default differs from PostgreSQL's, a native type without arguments
/// takes MySQL's: `DATETIME`/`TIMESTAMP` have precision 0, `DECIMAL` is `DECIMAL(10,0)` and
/// `BIT` is `BIT(1)`. `TIME` is a duration, not a time of day ([`crate::schema::MYSQL_TIME`]).
pub(super) fn mysql_native(scalar: Scalar, native: &Native) -> Option<Result<DataType, String>> {
    use Scalar::*;
    Some(match (scalar, native.name) {
        (String, "VarChar" | "Char") => sized(native, DataType::Utf8),
        (String, "Text" | "TinyText" | "MediumText" | "LongText") => simple(native, DataType::Utf8),
        // Prisma 7 writes `Boolean @db.TinyInt`; older schemas spell it `@db.TinyInt(1)`.
        (Boolean, "TinyInt") if native.args.is_empty() || native.args == [1] => {
            Ok(DataType::Boolean)
        }
        (Boolean, "Bit") if native.args == [1] => Ok(DataType::Boolean),
        (Int, "Int" | "MediumInt" | "UnsignedSmallInt" | "UnsignedMediumInt" | "Year") => {
            simple(native, DataType::Int32)
        }
        (Int, "SmallInt" | "TinyInt" | "UnsignedTinyInt") => simple(native, DataType::Int16),
        (Int, "UnsignedInt") => simple(native, DataType::Int64),
        (BigInt, "BigInt") => simple(native, DataType::Int64),
        (BigInt, "UnsignedBigInt") => simple(native, crate::schema::MYSQL_UNSIGNED_BIGINT),
        (Float, "Double") => simple(native, DataType::Float64),
        (Float, "Float") => simple(native, DataType::Float32),
        (Decimal, "Decimal") => decimal_args(native, DataType::Decimal128(10, 0)),
        (DateTime, "DateTime") => precision(native, 0).map(|p| timestamp(p, false)),
        (DateTime, "Timestamp") => precision(native, 0).map(|p| timestamp(p, true)),
        (DateTime, "Date") => simple(native, DataType::Date32),
        (DateTime, "Time") => precision(native, 0).map(|_| crate::schema::MYSQL_TIME),
        (Json, "Json") => simple(native, DataType::Utf8),
        (Bytes, "Blob" | "LongBlob" | "MediumBlob" | "TinyBlob") => {
            simple(native, DataType::Binary)
        }
        (Bytes, "Binary" | "VarBinary") => sized(native, DataType::Binary),
        (Bytes, "Bit") => bits(native),
        _ => return None,
    })
}

/// `BIT(n)` as bytes, n from 2 to 64. Debezium sends a `BIT(1)` (MySQL's default width) as
/// a boolean, so it is declared `Boolean @db.Bit(1)`.
fn bits(native: &Native) -> Result<DataType, String> {
    at_most(native, 1)?;
    match native.args.first().copied().unwrap_or(1) {
        1 => Err(format!(
            "{} of 1 bit arrives as a boolean: declare the field `Boolean @db.Bit(1)`",
            native.label
        )),
        n @ 2..=64 => Ok(crate::schema::mysql_bits(n)),
        n => Err(format!(
            "{}({n}) is out of range: MySQL's BIT holds 1 to 64 bits",
            native.label
        )),
    }
}

pub(super) fn at_most(native: &Native, max: usize) -> Result<(), String> {
    if native.args.len() <= max {
        return Ok(());
    }
    let allowed = match max {
        0 => "no arguments".to_string(),
        1 => "at most 1 argument".to_string(),
        n => format!("at most {n} arguments"),
    };
    Err(format!(
        "native type {} takes {allowed}, found {}",
        native.label,
        native.args.len()
    ))
}

/// A native type without arguments.
pub(super) fn simple(native: &Native, data_type: DataType) -> Result<DataType, String> {
    at_most(native, 0).map(|()| data_type)
}

/// A native type with an optional length that does not change the Arrow type.
pub(super) fn sized(native: &Native, data_type: DataType) -> Result<DataType, String> {
    at_most(native, 1).map(|()| data_type)
}

/// The fractional-second precision of a time type; it decides the Arrow unit.
pub(super) fn precision(native: &Native, default: u32) -> Result<u32, String> {
    at_most(native, 1)?;
    match native.args.first().copied().unwrap_or(default) {
        p if p <= 6 => Ok(p),
        p => Err(format!(
            "precision of {} must be at most 6, found {p}",
            native.label
        )),
    }
}

pub(super) fn decimal_args(native: &Native, default: DataType) -> Result<DataType, String> {
    at_most(native, 2)?;
    match native.args.as_slice() {
        [] => Ok(default),
        [precision] => decimal(native, *precision, 0),
        [precision, scale, ..] => decimal(native, *precision, *scale),
    }
}

/// Arrow's narrowest decimal that holds the precision.
pub(super) fn decimal(native: &Native, precision: u32, scale: u32) -> Result<DataType, String> {
    let out_of_range = || {
        format!(
            "{}({precision}, {scale}) is out of range: precision must be 1 to 76 and scale at most the precision",
            native.label
        )
    };
    let p = u8::try_from(precision).map_err(|_| out_of_range())?;
    let s = i8::try_from(scale).map_err(|_| out_of_range())?;
    match p {
        1..=38 if scale <= precision => Ok(DataType::Decimal128(p, s)),
        39..=76 if scale <= precision => Ok(DataType::Decimal256(p, s)),
        _ => Err(out_of_range()),
    }
}

/// Precision 0 to 3 fits milliseconds (what Debezium sends for them); 4 to 6 needs microseconds.
pub(super) fn timestamp(precision: u32, utc: bool) -> DataType {
    let unit = if precision <= 3 {
        TimeUnit::Millisecond
    } else {
        TimeUnit::Microsecond
    };
    DataType::Timestamp(unit, utc.then(|| "UTC".into()))
}

pub(super) fn time(precision: u32) -> DataType {
    if precision <= 3 {
        DataType::Time32(TimeUnit::Millisecond)
    } else {
        DataType::Time64(TimeUnit::Microsecond)
    }
}
