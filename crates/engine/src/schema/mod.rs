//! Source tables as the engine sees them: database names, Arrow types and primary keys.
//!
//! The catalog is built from the job's Prisma schema ([`prisma`]); it is the single source of
//! truth for how a Debezium value is decoded and how SQL names resolve.

pub mod prisma;

use std::sync::Arc;

use arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit};

use crate::error::{Error, Result};

/// The database a schema describes; it decides Prisma's default native types.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Provider {
    PostgreSql,
    MySql,
}

/// MySQL's `BIGINT UNSIGNED` (Prisma's `@db.UnsignedBigInt`): every value up to 2^64 - 1,
/// exactly. Debezium's default `bigint.unsigned.handling.mode=long` sends it as an `int64`,
/// which wraps above 2^63 - 1; the decoder refuses such a negative number rather than guess.
pub const MYSQL_UNSIGNED_BIGINT: DataType = DataType::Decimal128(20, 0);

/// MySQL's `TIME`: a signed duration (-838:59:59 to 838:59:59), not a time of day, kept in
/// the microseconds Debezium sends (`io.debezium.time.MicroTime`).
pub const MYSQL_TIME: DataType = DataType::Duration(TimeUnit::Microsecond);

/// MySQL's `BIT(n)` for n > 1 (Prisma's `Bytes @db.Bit(n)`): the column's bytes, big-endian as
/// MySQL shows them (Debezium sends them little-endian, `io.debezium.data.Bits`).
pub fn mysql_bits(bits: u32) -> DataType {
    DataType::FixedSizeBinary(bits.div_ceil(8) as i32)
}

/// One column of a source table.
#[derive(Debug, Clone, PartialEq)]
pub struct ColumnDef {
    /// The database column name (`@map`, else the Prisma field name); SQL and Debezium use it.
    pub name: String,
    /// The Prisma field name, for error messages.
    pub field: String,
    /// The Arrow type values are decoded into. Its unit or scale is the one the database
    /// column has, which is what Debezium's schemaless encodings are interpreted against.
    pub data_type: DataType,
    pub nullable: bool,
}

/// One source table (a Prisma model).
#[derive(Debug, Clone, PartialEq)]
pub struct TableDef {
    /// The database table name (`@@map`, else the model name); the last part of the topic.
    pub name: String,
    /// The Prisma model name, for error messages.
    pub model: String,
    pub columns: Vec<ColumnDef>,
    /// Indices into `columns` of the primary key (`@id` or `@@id`); empty when there is none.
    pub primary_key: Vec<usize>,
}

impl TableDef {
    /// The table as an Arrow schema, columns in declaration order.
    pub fn arrow_schema(&self) -> SchemaRef {
        let fields: Vec<Field> = self
            .columns
            .iter()
            .map(|c| Field::new(&c.name, c.data_type.clone(), c.nullable))
            .collect();
        Arc::new(Schema::new(fields))
    }

    /// The index of the column with this database name.
    pub fn column_index(&self, name: &str) -> Option<usize> {
        self.columns.iter().position(|c| c.name == name)
    }
}

/// All source tables of a job.
#[derive(Debug, Clone, PartialEq)]
pub struct Catalog {
    pub provider: Provider,
    pub tables: Vec<TableDef>,
}

impl Catalog {
    /// Parses a Prisma schema into a catalog; see [`prisma::parse`].
    pub fn from_prisma(source: &str) -> Result<Self> {
        prisma::parse(source)
    }

    /// The table with this database name.
    pub fn table(&self, name: &str) -> Option<&TableDef> {
        self.tables.iter().find(|t| t.name == name)
    }

    /// The index of the table with this database name.
    pub fn table_index(&self, name: &str) -> Result<usize> {
        self.tables
            .iter()
            .position(|t| t.name == name)
            .ok_or_else(|| Error::Query(format!("unknown table `{name}`")))
    }
}
