//! The Kafka Connect schema a message carries when `schemas.enable=true`.
//!
//! It is read once per distinct schema (messages repeat it verbatim) and gives, per column,
//! the encoding Debezium used. It is also checked against the Prisma model, so that a table
//! whose database columns disagree with the job's schema is reported instead of misread.

use std::collections::HashMap;

use arrow::datatypes::DataType;
use serde::Deserialize;

use crate::schema::{ColumnDef, MYSQL_UNSIGNED_BIGINT, TableDef};

/// What the inline schema says about one column.
#[derive(Debug, Clone, PartialEq)]
pub struct FieldHint {
    /// The Connect type: `int32`, `bytes`, `string`, `struct`, ...
    pub connect_type: String,
    /// The semantic type name, e.g. `io.debezium.time.MicroTimestamp`.
    pub name: Option<String>,
    /// The `scale` parameter of a fixed-scale `Decimal`.
    pub scale: Option<i32>,
}

#[derive(Debug, Deserialize)]
struct ConnectSchema {
    #[serde(rename = "type")]
    connect_type: String,
    #[serde(default)]
    fields: Vec<ConnectField>,
    name: Option<String>,
    #[serde(default)]
    parameters: HashMap<String, serde_json::Value>,
}

#[derive(Debug, Deserialize)]
struct ConnectField {
    field: String,
    #[serde(flatten)]
    schema: ConnectSchema,
}

/// Hints for `columns` (in order) from a value schema; `None` where the schema lacks the
/// column. Errors name the column whose declared type the schema contradicts.
pub fn resolve(
    raw: &str,
    table: &TableDef,
    columns: &[usize],
) -> Result<Vec<Option<FieldHint>>, String> {
    let envelope: ConnectSchema =
        serde_json::from_str(raw).map_err(|e| format!("unreadable inline schema: {e}"))?;
    let named = |name: &str| envelope.fields.iter().find(|f| f.field == name);
    let row = named("after")
        .or_else(|| named("before"))
        .ok_or("inline schema has no `before`/`after` struct")?;
    columns
        .iter()
        .map(|&i| {
            let column = &table.columns[i];
            let Some(field) = row.schema.fields.iter().find(|f| f.field == column.name) else {
                return Ok(None);
            };
            let hint = FieldHint {
                connect_type: field.schema.connect_type.clone(),
                name: field.schema.name.clone(),
                scale: field
                    .schema
                    .parameters
                    .get("scale")
                    .and_then(|s| s.as_str())
                    .and_then(|s| s.parse().ok()),
            };
            check(table, column, &hint)?;
            Ok(Some(hint))
        })
        .collect()
}

fn check(table: &TableDef, column: &ColumnDef, hint: &FieldHint) -> Result<(), String> {
    if let Some(loss) = super::value::lossy_hint(&column.data_type, hint) {
        return Err(format!(
            "column `{}` (model `{}`, field `{}`) {loss}",
            column.name, table.model, column.field
        ));
    }
    let t = hint.connect_type.as_str();
    let is_int = matches!(t, "int8" | "int16" | "int32" | "int64");
    let is_float = matches!(t, "float" | "double" | "float32" | "float64");
    let is_bits = hint.name.as_deref() == Some("io.debezium.data.Bits");
    let ok = match &column.data_type {
        DataType::Boolean => t == "boolean" || is_int,
        d if d.is_integer() => is_int,
        DataType::Float32 | DataType::Float64 => is_float,
        // `bigint.unsigned.handling.mode=long` sends BIGINT UNSIGNED as an int64.
        d if *d == MYSQL_UNSIGNED_BIGINT && t == "int64" => true,
        DataType::Decimal128(..) | DataType::Decimal256(..) => {
            matches!(t, "bytes" | "struct" | "string") || is_float
        }
        DataType::Utf8 | DataType::LargeUtf8 => t == "string",
        // MySQL's BIT(n) comes little-endian: only a `Bytes @db.Bit(n)` column reverses it.
        DataType::Binary => matches!(t, "bytes" | "string") && !is_bits,
        DataType::FixedSizeBinary(_) => is_bits,
        DataType::Duration(_) => is_int,
        DataType::Date32 | DataType::Time32(_) | DataType::Time64(_) | DataType::Timestamp(..) => {
            is_int || t == "string"
        }
        DataType::List(_) => t == "array",
        _ => false,
    };
    if ok {
        Ok(())
    } else {
        Err(format!(
            "column `{}` (model `{}`, field `{}`) is {} in the Prisma schema but the event's \
             schema says {}{}",
            column.name,
            table.model,
            column.field,
            column.data_type,
            t,
            hint.name
                .as_deref()
                .map(|n| format!(" ({n})"))
                .unwrap_or_default()
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::schema::Catalog;

    const SCHEMA: &str = r#"{"type":"struct","fields":[
        {"type":"struct","optional":true,"field":"before","fields":[]},
        {"type":"struct","optional":true,"field":"after","fields":[
            {"type":"int32","optional":false,"field":"id"},
            {"type":"bytes","optional":true,"name":"org.apache.kafka.connect.data.Decimal",
             "parameters":{"scale":"2","connect.decimal.precision":"12"},"field":"amount"},
            {"type":"string","optional":true,"field":"status"}]},
        {"type":"string","optional":false,"field":"op"}]}"#;

    fn table(prisma_fields: &str) -> TableDef {
        let source =
            format!("model Order {{\n id Int @id\n {prisma_fields}\n @@map(\"orders\")\n}}");
        Catalog::from_prisma(&source).unwrap().tables.remove(0)
    }

    #[test]
    fn hints_carry_semantic_type_and_scale() {
        let table = table("amount Decimal? @db.Decimal(12, 2)\n missing String?");
        let hints = resolve(SCHEMA, &table, &[0, 1, 2]).unwrap();
        assert_eq!(hints[0].as_ref().unwrap().connect_type, "int32");
        let amount = hints[1].as_ref().unwrap();
        assert_eq!(amount.connect_type, "bytes");
        assert_eq!(
            amount.name.as_deref(),
            Some("org.apache.kafka.connect.data.Decimal")
        );
        assert_eq!(amount.scale, Some(2));
        assert_eq!(
            hints[2], None,
            "a column the event's schema lacks has no hint"
        );
    }

    /// MySQL's BIT(n) is little-endian bytes: read as a plain `Bytes` column it would come out
    /// reversed, so only `Bytes @db.Bit(n)` takes it.
    #[test]
    fn bits_only_into_a_bit_column() {
        let bits = r#"{"type":"struct","fields":[{"type":"struct","optional":true,"field":"after","fields":[
            {"type":"bytes","optional":true,"name":"io.debezium.data.Bits","field":"flags"}]}]}"#;
        let mysql = |field: &str| {
            let source = format!(
                "datasource db {{\n provider = \"mysql\"\n}}\nmodel T {{\n id Int @id\n {field}\n}}"
            );
            Catalog::from_prisma(&source).unwrap().tables.remove(0)
        };
        assert!(resolve(bits, &mysql("flags Bytes? @db.Bit(16)"), &[1]).is_ok());
        let err = resolve(bits, &mysql("flags Bytes? @db.Blob"), &[1]).unwrap_err();
        assert!(err.contains("io.debezium.data.Bits"), "{err}");
    }

    #[test]
    fn contradicting_prisma_type_names_model_and_field() {
        let table = table("amount Int?");
        let err = resolve(SCHEMA, &table, &[1]).unwrap_err();
        assert_eq!(
            err,
            "column `amount` (model `Order`, field `amount`) is Int32 in the Prisma schema but \
             the event's schema says bytes (org.apache.kafka.connect.data.Decimal)"
        );
    }
}
