//! A hand-written reader for the Prisma schema language that turns models into source tables.
//!
//! Only what decides a table's shape is interpreted (names, `@map`, ids, scalar and native
//! types); everything else (defaults, relations, indexes, generators) is checked for syntax and
//! then dropped, so a schema that Prisma accepts is read without Eddy knowing every attribute's
//! meaning.

mod native;
mod syntax;
#[cfg(test)]
mod tests;

use std::collections::HashSet;
use std::sync::Arc;

use arrow::datatypes::{DataType, Field, TimeUnit};

use super::{Catalog, ColumnDef, Provider, TableDef};
use crate::error::{Error, Result};
use native::{native_attr, native_type};
use syntax::*;

/// Parses a Prisma schema into one table per model.
///
/// The datasource's provider decides the default native type of each scalar (Prisma's
/// documented defaults); without a datasource the schema is read as PostgreSQL. Relation fields
/// and `@ignore`d fields are not columns; `@@ignore`d models, views and composite types are not
/// tables.
pub fn parse(source: &str) -> Result<Catalog> {
    let document = Parser::new(source)?.document()?;
    let provider = provider(&document.datasources)?;
    let scope = Scope::new(&document, provider)?;
    let mut tables: Vec<TableDef> = Vec::new();
    for model in document.blocks.iter().filter(|b| b.is_table()) {
        let table = scope.table(model)?;
        if tables.iter().any(|t| t.name == table.name) {
            return Err(schema_error(
                model.line,
                format!("table `{}` is defined twice", table.name),
            ));
        }
        tables.push(table);
    }
    Ok(Catalog { provider, tables })
}

fn schema_error(line: usize, message: impl Into<String>) -> Error {
    Error::Schema {
        line,
        message: message.into(),
    }
}

fn provider(datasources: &[ConfigBlock]) -> Result<Provider> {
    match datasources {
        [] => Ok(Provider::PostgreSql),
        [datasource] => datasource_provider(datasource),
        [_, second, ..] => Err(schema_error(
            second.line,
            "a schema may have only one datasource",
        )),
    }
}

fn datasource_provider(datasource: &ConfigBlock) -> Result<Provider> {
    let setting = datasource
        .settings
        .iter()
        .find(|s| s.key == "provider")
        .ok_or_else(|| {
            schema_error(
                datasource.line,
                format!("datasource `{}` has no provider", datasource.name),
            )
        })?;
    match &setting.value {
        Expr::Str(name) if name == "postgresql" || name == "postgres" => Ok(Provider::PostgreSql),
        Expr::Str(name) if name == "mysql" => Ok(Provider::MySql),
        Expr::Str(name) => Err(schema_error(
            setting.line,
            format!("provider `{name}` is not supported: Eddy reads postgresql and mysql schemas"),
        )),
        _ => Err(schema_error(
            setting.line,
            "expected the provider as a string, e.g. provider = \"postgresql\"",
        )),
    }
}

/// Prisma's scalar types; `Debug` prints their Prisma names.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Scalar {
    String,
    Boolean,
    Int,
    BigInt,
    Float,
    Decimal,
    DateTime,
    Json,
    Bytes,
}

impl Scalar {
    fn from_name(name: &str) -> Option<Self> {
        Some(match name {
            "String" => Scalar::String,
            "Boolean" => Scalar::Boolean,
            "Int" => Scalar::Int,
            "BigInt" => Scalar::BigInt,
            "Float" => Scalar::Float,
            "Decimal" => Scalar::Decimal,
            "DateTime" => Scalar::DateTime,
            "Json" => Scalar::Json,
            "Bytes" => Scalar::Bytes,
            _ => return None,
        })
    }

    /// The type of Prisma's default native type, which is the same on PostgreSQL and MySQL:
    /// `decimal(65,30)` for Decimal and millisecond timestamps (`timestamp(3)`/`datetime(3)`).
    fn default_type(self) -> DataType {
        match self {
            Scalar::String | Scalar::Json => DataType::Utf8,
            Scalar::Boolean => DataType::Boolean,
            Scalar::Int => DataType::Int32,
            Scalar::BigInt => DataType::Int64,
            Scalar::Float => DataType::Float64,
            Scalar::Decimal => DataType::Decimal256(65, 30),
            Scalar::DateTime => DataType::Timestamp(TimeUnit::Millisecond, None),
            Scalar::Bytes => DataType::Binary,
        }
    }
}

/// What a name used as a field type refers to, besides scalars.
struct Scope<'a> {
    provider: Provider,
    /// Models and views: a field of one of these types is a relation, not a column.
    relations: HashSet<&'a str>,
    enums: HashSet<&'a str>,
    composites: HashSet<&'a str>,
}

impl<'a> Scope<'a> {
    fn new(document: &'a Document, provider: Provider) -> Result<Self> {
        let mut scope = Scope {
            provider,
            relations: HashSet::new(),
            enums: HashSet::new(),
            composites: HashSet::new(),
        };
        let mut seen = HashSet::new();
        for (name, line) in &document.enums {
            declare(&mut seen, name, *line)?;
            scope.enums.insert(name.as_str());
        }
        for block in &document.blocks {
            declare(&mut seen, &block.name, block.line)?;
            match block.kind {
                BlockKind::Model | BlockKind::View => scope.relations.insert(&block.name),
                BlockKind::Type => scope.composites.insert(&block.name),
            };
        }
        Ok(scope)
    }

    fn table(&self, model: &Block) -> Result<TableDef> {
        check_attrs(&model.attrs, BLOCK_ATTRIBUTES)?;
        let mut columns: Vec<ColumnDef> = Vec::new();
        for (i, field) in model.fields.iter().enumerate() {
            check_attrs(&field.attrs, FIELD_ATTRIBUTES)?;
            if model.fields[..i].iter().any(|f| f.name == field.name) {
                let message = format!(
                    "field `{}` is defined twice in `{}`",
                    field.name, model.name
                );
                return Err(schema_error(field.line, message));
            }
            let Some(column) = self.column(model, field)? else {
                continue;
            };
            if columns.iter().any(|c| c.name == column.name) {
                let message = format!(
                    "column `{}` is defined twice in `{}`",
                    column.name, model.name
                );
                return Err(schema_error(field.line, message));
            }
            columns.push(column);
        }
        Ok(TableDef {
            name: mapped_name(&model.attrs, &model.name)?,
            model: model.name.clone(),
            primary_key: primary_key(model, &columns)?,
            columns,
        })
    }

    /// The field's column, or `None` when the field is not stored in this table.
    fn column(&self, model: &Block, field: &FieldDecl) -> Result<Option<ColumnDef>> {
        if find_attr(&field.attrs, "ignore").is_some() {
            return Ok(None);
        }
        let Some(element) = self.element_type(model, field)? else {
            return Ok(None);
        };
        let data_type = match field.arity {
            Arity::List => self.list(model, field, element)?,
            Arity::Required | Arity::Optional => element,
        };
        Ok(Some(ColumnDef {
            name: mapped_name(&field.attrs, &field.name)?,
            field: field.name.clone(),
            data_type,
            // Prisma cannot mark a list optional, but the array column behind it can be NULL.
            nullable: field.arity != Arity::Required,
        }))
    }

    /// The type of one value of the field, or `None` for a relation field.
    fn element_type(&self, model: &Block, field: &FieldDecl) -> Result<Option<DataType>> {
        let unsupported = |message: String| unsupported(model, field, message);
        let name = match &field.ty {
            TypeName::Named(name) => name.as_str(),
            TypeName::Unsupported(db_type) => {
                return unsupported_type(self.provider, db_type)
                    .map(Some)
                    .map_err(unsupported);
            }
        };
        if self.relations.contains(name) {
            return Ok(None);
        }
        let native = native_attr(field)?;
        if self.enums.contains(name) {
            return match native {
                None => Ok(Some(DataType::Utf8)),
                Some(native) => Err(unsupported(format!(
                    "native type {} is not supported for enum `{name}`",
                    native.label
                ))),
            };
        }
        if self.composites.contains(name) {
            return Err(unsupported(format!(
                "composite type `{name}` is not supported"
            )));
        }
        let scalar =
            Scalar::from_name(name).ok_or_else(|| unsupported(format!("unknown type `{name}`")))?;
        match native {
            None => Ok(Some(scalar.default_type())),
            Some(native) => native_type(self.provider, scalar, &native)
                .map(Some)
                .map_err(unsupported),
        }
    }

    fn list(&self, model: &Block, field: &FieldDecl, element: DataType) -> Result<DataType> {
        match self.provider {
            Provider::PostgreSql => Ok(DataType::List(Arc::new(Field::new("item", element, true)))),
            Provider::MySql => Err(unsupported(
                model,
                field,
                "scalar lists are not supported on MySQL".to_string(),
            )),
        }
    }
}

/// The type of an `Unsupported("…")` field whose Debezium encoding Eddy knows: MySQL's
/// `SET`, which Prisma has no type for (prisma/orm#10620), arrives as the comma-joined text
/// MySQL shows. Anything else (`geometry`, `point`, …) cannot be held.
fn unsupported_type(provider: Provider, db_type: &str) -> std::result::Result<DataType, String> {
    let lower = db_type.trim_start().to_ascii_lowercase();
    if provider == Provider::MySql && lower.starts_with("set(") {
        return Ok(DataType::Utf8);
    }
    Err(format!("type Unsupported(\"{db_type}\") is not supported"))
}

fn unsupported(model: &Block, field: &FieldDecl, message: String) -> Error {
    Error::Unsupported {
        model: model.name.clone(),
        field: field.name.clone(),
        message,
    }
}

/// Records a model, view, type or enum name; Prisma gives all of them one namespace.
fn declare<'a>(seen: &mut HashSet<&'a str>, name: &'a str, line: usize) -> Result<()> {
    if Scalar::from_name(name).is_some() || name == "Unsupported" {
        return Err(schema_error(
            line,
            format!("`{name}` is a built-in type name"),
        ));
    }
    if !seen.insert(name) {
        return Err(schema_error(line, format!("`{name}` is defined twice")));
    }
    Ok(())
}

/// Attributes Prisma defines; an unknown one is most likely a typo (`@Id`) that would
/// otherwise silently change the table.
const FIELD_ATTRIBUTES: &[&str] = &[
    "id",
    "map",
    "default",
    "unique",
    "updatedAt",
    "relation",
    "ignore",
    "shardKey",
];
const BLOCK_ATTRIBUTES: &[&str] = &[
    "id", "map", "unique", "index", "schema", "ignore", "fulltext", "shardKey",
];

fn check_attrs(attrs: &[Attribute], known: &[&str]) -> Result<()> {
    let is_known = |a: &&Attribute| {
        known.contains(&a.name.as_str()) || (a.sigil == "@" && a.name.contains('.'))
    };
    match attrs.iter().find(|a| !is_known(a)) {
        None => Ok(()),
        Some(attr) => Err(schema_error(
            attr.line,
            format!("unknown attribute `{}`", attr.label()),
        )),
    }
}

/// The database name given by `@map`/`@@map`, else the Prisma name.
fn mapped_name(attrs: &[Attribute], prisma_name: &str) -> Result<String> {
    let Some(attr) = find_attr(attrs, "map") else {
        return Ok(prisma_name.to_string());
    };
    match attr.arg("name") {
        Some(Expr::Str(name)) => Ok(name.clone()),
        _ => Err(schema_error(
            attr.line,
            format!("expected a string argument to `{}`", attr.label()),
        )),
    }
}

fn primary_key(model: &Block, columns: &[ColumnDef]) -> Result<Vec<usize>> {
    let mut ids: Vec<(Vec<&str>, usize)> = model
        .fields
        .iter()
        .filter(|f| find_attr(&f.attrs, "id").is_some())
        .map(|f| (vec![f.name.as_str()], f.line))
        .collect();
    for attr in model.attrs.iter().filter(|a| a.name == "id") {
        ids.push((id_fields(attr)?, attr.line));
    }
    match ids.as_slice() {
        [] => Ok(Vec::new()),
        [(fields, line)] => fields
            .iter()
            .map(|name| id_column(model, columns, name, *line))
            .collect(),
        [_, (_, line), ..] => Err(schema_error(
            *line,
            format!("model `{}` has more than one id", model.name),
        )),
    }
}

fn id_column(model: &Block, columns: &[ColumnDef], field: &str, line: usize) -> Result<usize> {
    columns
        .iter()
        .position(|c| c.field == field)
        .ok_or_else(|| {
            let message = format!(
                "the id of model `{}` names `{field}`, which is not a column of it",
                model.name
            );
            schema_error(line, message)
        })
}

/// The Prisma field names of a `@@id`, in its order; sort options such as `a(sort: Desc)`
/// do not change which columns form the key.
fn id_fields(attr: &Attribute) -> Result<Vec<&str>> {
    let invalid = || {
        schema_error(
            attr.line,
            "expected `@@id([field, ...])` with at least one field",
        )
    };
    let Some(Expr::Array(items)) = attr.arg("fields") else {
        return Err(invalid());
    };
    let names = items
        .iter()
        .map(|item| match item {
            Expr::Ident(name) | Expr::Call(name) => Ok(name.as_str()),
            _ => Err(invalid()),
        })
        .collect::<Result<Vec<_>>>()?;
    if names.is_empty() {
        return Err(invalid());
    }
    Ok(names)
}
