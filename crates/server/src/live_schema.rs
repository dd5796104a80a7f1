//! A job's Prisma schema checked against the live catalog when the connector is Eddy's own:
//! every field of a table the query reads must be a column of that table, of a type the
//! field's Arrow type can hold; a database it cannot read is a `400` on `connectionString`.

use arrow::datatypes::DataType;
use eddy_engine::schema::{Catalog, TableDef};
use eddy_postgres::PgConfig;
use eddy_postgres::catalog::{self, ColumnSummary};

use crate::error::{Error, Result};

/// Checks the models of `tables` (database names) against `schema` in the database.
pub async fn check(
    postgres: &PgConfig,
    prisma: &Catalog,
    tables: &[String],
    schema: &str,
) -> Result<()> {
    for name in tables {
        let Some(table) = prisma.table(name) else {
            continue;
        };
        let columns = catalog::columns(postgres, schema, name)
            .await
            .map_err(|e| match e {
                eddy_postgres::Error::Postgres(m) if m.ends_with("does not exist") => {
                    Error::invalid("schema", format!("model `{}`: {m}", table.model))
                }
                // As the connector's preflight says of a database it cannot reach: the
                // request's connection string is at fault, not this service.
                other => Error::invalid(
                    "connectionString",
                    format!("the database's catalog cannot be read: {other}"),
                ),
            })?;
        check_table(table, &columns, schema)?;
    }
    Ok(())
}

fn check_table(table: &TableDef, columns: &[ColumnSummary], schema: &str) -> Result<()> {
    for field in &table.columns {
        let place = format!("{}.{}", table.model, field.field);
        let Some(column) = columns.iter().find(|c| c.name == field.name) else {
            return Err(Error::invalid(
                "schema",
                format!(
                    "field `{place}` has no column `{}` in table {schema}.{}",
                    field.name, table.name
                ),
            ));
        };
        if !holds(&field.data_type, &column.r#type) {
            return Err(Error::invalid(
                "schema",
                format!(
                    "field `{place}` ({:?}) cannot hold column {schema}.{}.{} of type {}",
                    field.data_type, table.name, column.name, column.r#type
                ),
            ));
        }
    }
    Ok(())
}

/// Whether values of a PostgreSQL type (as `format_type` prints it) fit the Arrow type a
/// Prisma field decodes into. Types with a text form (text, varchar, uuid, json, enums)
/// are held by any string field.
fn holds(arrow: &DataType, pg: &str) -> bool {
    let integer = |widest: u8| match pg {
        "smallint" => widest >= 2,
        "integer" => widest >= 4,
        "bigint" => widest >= 8,
        _ => false,
    };
    match arrow {
        DataType::Int16 => integer(2),
        DataType::Int32 => integer(4),
        DataType::Int64 => integer(8),
        DataType::Float32 => pg == "real",
        DataType::Float64 => pg == "real" || pg == "double precision",
        DataType::Boolean => pg == "boolean",
        DataType::Binary | DataType::LargeBinary => pg == "bytea",
        DataType::Date32 | DataType::Date64 => pg == "date",
        DataType::Decimal128(p, s) | DataType::Decimal256(p, s) => {
            decimal_fits(pg, u32::from(*p), i32::from(*s))
        }
        DataType::Timestamp(_, zone) => {
            pg.starts_with("timestamp") && zone.is_some() != pg.contains("without")
        }
        DataType::Time32(_) | DataType::Time64(_) => {
            pg.starts_with("time")
                && pg.ends_with("without time zone")
                && !pg.starts_with("timestamp")
        }
        DataType::List(_) | DataType::LargeList(_) => pg.ends_with("[]"),
        DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View => {
            !(integer(8)
                || matches!(
                    pg,
                    "real" | "double precision" | "boolean" | "bytea" | "date"
                )
                || pg.starts_with("numeric")
                || pg.starts_with("timestamp")
                || pg.starts_with("time"))
        }
        _ => true,
    }
}

/// `numeric(p', s')` fits `decimal(p, s)` when the scales are equal and the digits fit;
/// an unconstrained `numeric` carries its own scale per value, which the decoder reads.
fn decimal_fits(pg: &str, precision: u32, scale: i32) -> bool {
    if pg == "numeric" {
        return true;
    }
    let Some(inner) = pg
        .strip_prefix("numeric(")
        .and_then(|r| r.strip_suffix(')'))
    else {
        return false;
    };
    let mut parts = inner.split(',').map(|p| p.trim().parse::<i32>().ok());
    match (parts.next().flatten(), parts.next().flatten().or(Some(0))) {
        (Some(p), Some(s)) => s == scale && p as u32 <= precision,
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::datatypes::TimeUnit;

    #[test]
    fn types_that_cannot_hold_the_column_are_told_apart() {
        for (arrow, pg, fits) in [
            (DataType::Int32, "integer", true),
            (DataType::Int32, "bigint", false),
            (DataType::Int64, "integer", true),
            (DataType::Decimal128(12, 2), "numeric(12,2)", true),
            (DataType::Decimal128(65, 30), "numeric(12,2)", false),
            (DataType::Decimal128(10, 2), "numeric(12,2)", false),
            (DataType::Decimal128(20, 4), "numeric", true),
            (DataType::Utf8, "text", true),
            (DataType::Utf8, "uuid", true),
            (DataType::Utf8, "mood", true),
            (DataType::Utf8, "integer", false),
            (
                DataType::Timestamp(TimeUnit::Millisecond, None),
                "timestamp(3) without time zone",
                true,
            ),
            (
                DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())),
                "timestamp with time zone",
                true,
            ),
            (
                DataType::Timestamp(TimeUnit::Microsecond, None),
                "timestamp with time zone",
                false,
            ),
            (DataType::Boolean, "text", false),
        ] {
            assert_eq!(holds(&arrow, pg), fits, "{arrow:?} vs {pg}");
        }
    }
}
