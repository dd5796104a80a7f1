//! What the catalog says: the schemas, tables and columns a connector can capture (for its
//! metadata endpoints), and of a captured table its columns' kinds and nullability, and its
//! primary key (pgoutput's own key flags mark the replica identity, which under REPLICA
//! IDENTITY FULL is every column, not the key Debezium writes).

use tokio_postgres::Client;

use crate::config::PgConfig;
use crate::error::{Error, Result};
use crate::pgoutput::Relation;
use crate::preflight::TableName;
use crate::preflight::connect;
use crate::values::Kind;

/// A column of a captured table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Column {
    pub name: String,
    pub kind: Kind,
    pub not_null: bool,
}

/// A captured table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Table {
    pub name: TableName,
    pub oid: u32,
    pub columns: Vec<Column>,
    /// Indexes into `columns` of the primary key, in key order; empty without one.
    pub key: Vec<usize>,
}

/// Reads a table by OID, as it is now.
pub async fn table(client: &Client, oid: u32) -> Result<Table> {
    table_if_exists(client, oid)
        .await?
        .ok_or_else(|| Error::Postgres(format!("table with OID {oid} no longer exists")))
}

/// Reads a table by OID, as it is now; `None` once it was dropped.
pub async fn table_if_exists(client: &Client, oid: u32) -> Result<Option<Table>> {
    let Some(head) = client
        .query_opt(
            "SELECT n.nspname::text, c.relname::text FROM pg_class c \
             JOIN pg_namespace n ON n.oid = c.relnamespace WHERE c.oid = $1",
            &[&oid],
        )
        .await?
    else {
        return Ok(None);
    };
    let name = TableName {
        schema: head.get(0),
        name: head.get(1),
    };
    let rows = client
        .query(
            "SELECT a.attname::text, a.atttypid, a.atttypmod, a.attnotnull, t.typcategory::text, \
                    t.typelem, COALESCE(i.pos, 0)::int \
             FROM pg_attribute a JOIN pg_type t ON t.oid = a.atttypid \
             LEFT JOIN LATERAL ( \
                 SELECT k.pos FROM pg_index x, unnest(x.indkey) WITH ORDINALITY k(attnum, pos) \
                 WHERE x.indrelid = a.attrelid AND x.indisprimary AND k.attnum = a.attnum \
             ) i ON true \
             WHERE a.attrelid = $1 AND a.attnum > 0 AND NOT a.attisdropped ORDER BY a.attnum",
            &[&oid],
        )
        .await?;
    let mut columns = Vec::with_capacity(rows.len());
    let mut key: Vec<(i32, usize)> = Vec::new();
    for (index, row) in rows.iter().enumerate() {
        let type_oid: u32 = row.get(1);
        let modifier: i32 = row.get(2);
        let category: String = row.get(4);
        let element: u32 = row.get(5);
        let kind = match Kind::of_builtin(type_oid, modifier) {
            Some(kind) => kind,
            // Enums, domains and other catalog types: their text; arrays of them, arrays of
            // text.
            None if element != 0 && category == "A" => Kind::Array(Box::new(
                Kind::of_builtin(element, -1).unwrap_or(Kind::Text),
            )),
            None => Kind::Text,
        };
        let position: i32 = row.get(6);
        if position > 0 {
            key.push((position, index));
        }
        columns.push(Column {
            name: row.get(0),
            kind,
            not_null: row.get(3),
        });
    }
    key.sort();
    Ok(Some(Table {
        name,
        oid,
        columns,
        key: key.into_iter().map(|(_, index)| index).collect(),
    }))
}

/// A table as a Relation message describes it: the stream's columns, which may be older
/// than the catalog's when the table changed since (a column added while its earlier
/// changes are still being read), with nullability, key and catalog types taken from
/// `current` by column name. Without `current` (the table was dropped before its last
/// changes were read) the key is the replica identity, which is the primary key unless the
/// table's identity is FULL.
pub fn as_streamed(relation: &Relation, current: Option<&Table>) -> Table {
    let by_name =
        |name: &str| current.and_then(|current| current.columns.iter().find(|c| c.name == name));
    let columns: Vec<Column> = relation
        .columns
        .iter()
        .map(|c| {
            let known = by_name(&c.name);
            Column {
                name: c.name.clone(),
                kind: Kind::of_builtin(c.type_oid, c.type_modifier)
                    .or_else(|| known.map(|k| k.kind.clone()))
                    .unwrap_or(Kind::Text),
                not_null: known.is_some_and(|k| k.not_null),
            }
        })
        .collect();
    let key = match current {
        Some(current) => current
            .key
            .iter()
            .filter_map(|&i| {
                let name = &current.columns[i].name;
                columns.iter().position(|c| &c.name == name)
            })
            .collect(),
        None if relation.replica_identity != b'f' => (relation.columns.iter().enumerate())
            .filter(|(_, c)| c.identity)
            .map(|(i, _)| i)
            .collect(),
        None => Vec::new(),
    };
    Table {
        name: TableName {
            schema: relation.schema.clone(),
            name: relation.name.clone(),
        },
        oid: relation.oid,
        columns,
        key,
    }
}

/// Why the stream of `now` cannot go on from what was captured as `before`: a column
/// dropped or retyped (events would silently lack it, or change its JSON type under a
/// reader). An added column is followed, as Debezium follows it.
pub fn incompatible_change(before: &Table, now: &Table) -> Option<String> {
    let table = format!("{}.{}", before.name.schema, before.name.name);
    before.columns.iter().find_map(
        |old| match now.columns.iter().find(|c| c.name == old.name) {
            None => Some(format!("column `{}` of {table} was dropped", old.name)),
            Some(new) if new.kind != old.kind => Some(format!(
                "column `{}` of {table} changed type ({:?} to {:?})",
                old.name, old.kind, new.kind
            )),
            Some(_) => None,
        },
    )
}

/// Of `oids`, the tables that no longer exist, and the WAL position the check was made at
/// (everything written before the drop lies before it).
pub async fn dropped_tables(client: &Client, oids: &[u32]) -> Result<(Vec<u32>, String)> {
    let row = client
        .query_one(
            "SELECT array(SELECT o FROM unnest($1::oid[]) o \
                          WHERE NOT EXISTS (SELECT 1 FROM pg_class c WHERE c.oid = o)), \
                    pg_current_wal_lsn()::text",
            &[&oids],
        )
        .await?;
    Ok((row.get(0), row.get(1)))
}

/// The tables a publication captures, by OID, in schema and name order (the order
/// Debezium snapshots them in).
pub async fn published_tables(client: &Client, publication: &str) -> Result<Vec<u32>> {
    let rows = client
        .query(
            "SELECT c.oid FROM pg_publication_tables p \
             JOIN pg_namespace n ON n.nspname = p.schemaname \
             JOIN pg_class c ON c.relnamespace = n.oid AND c.relname = p.tablename \
             WHERE p.pubname = $1 ORDER BY p.schemaname, p.tablename",
            &[&publication],
        )
        .await?;
    Ok(rows.iter().map(|r| r.get(0)).collect())
}

async fn session(config: &PgConfig) -> Result<Client> {
    connect(config).await.map_err(Error::Postgres)
}

/// A table as the connector metadata endpoints list it.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct TableSummary {
    pub name: String,
    /// The planner's estimate (`reltuples`); `-1` before the table was first analyzed.
    pub row_estimate: i64,
    /// Heap, indexes and TOAST, in bytes.
    pub size_bytes: i64,
}

/// A column as the connector metadata endpoints list it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ColumnSummary {
    pub name: String,
    /// As `format_type` prints it: `numeric(12,2)`, `timestamp(3) without time zone`.
    pub r#type: String,
    pub nullable: bool,
    pub primary_key: bool,
}

/// The schemas that hold tables, system schemas left out.
pub async fn schemas(config: &PgConfig) -> Result<Vec<String>> {
    let rows = session(config)
        .await?
        .query(
            "SELECT DISTINCT n.nspname::text FROM pg_namespace n \
             JOIN pg_class c ON c.relnamespace = n.oid AND c.relkind IN ('r', 'p') \
             WHERE n.nspname NOT IN ('pg_catalog', 'information_schema') \
               AND n.nspname NOT LIKE 'pg_toast%' ORDER BY 1",
            &[],
        )
        .await?;
    Ok(rows.iter().map(|r| r.get(0)).collect())
}

/// The tables of `schema`, with their estimated rows and size.
pub async fn tables(config: &PgConfig, schema: &str) -> Result<Vec<TableSummary>> {
    let rows = session(config)
        .await?
        .query(
            "SELECT c.relname::text, c.reltuples::bigint, pg_total_relation_size(c.oid) \
             FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace \
             WHERE n.nspname = $1 AND c.relkind IN ('r', 'p') ORDER BY 1",
            &[&schema],
        )
        .await?;
    Ok(rows
        .iter()
        .map(|r| TableSummary {
            name: r.get(0),
            row_estimate: r.get(1),
            size_bytes: r.get(2),
        })
        .collect())
}

/// The columns of `schema.table`; an error names a table that does not exist.
pub async fn columns(config: &PgConfig, schema: &str, table: &str) -> Result<Vec<ColumnSummary>> {
    let rows = session(config)
        .await?
        .query(
            "SELECT a.attname::text, format_type(a.atttypid, a.atttypmod), NOT a.attnotnull, \
                    EXISTS (SELECT 1 FROM pg_index i WHERE i.indrelid = c.oid AND i.indisprimary \
                            AND a.attnum = ANY(i.indkey)) \
             FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace \
             JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped \
             WHERE n.nspname = $1 AND c.relname = $2 AND c.relkind IN ('r', 'p') \
             ORDER BY a.attnum",
            &[&schema, &table],
        )
        .await?;
    if rows.is_empty() {
        return Err(Error::Postgres(format!(
            "table {schema}.{table} does not exist"
        )));
    }
    Ok(rows
        .iter()
        .map(|r| ColumnSummary {
            name: r.get(0),
            r#type: r.get(1),
            nullable: r.get(2),
            primary_key: r.get(3),
        })
        .collect())
}
