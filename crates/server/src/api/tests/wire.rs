//! The schemas stated for other crates' types match what those types serialize: the same
//! property names for structs, the same values for enums.

use std::collections::BTreeSet;

use eddy_engine::Format;
use eddy_engine::normalize::TableOrder;
use eddy_postgres::catalog::{ColumnSummary, TableSummary};
use eddy_postgres::connector::{State, Status};
use eddy_postgres::preflight::{Check, Outcome};
use serde::Serialize;
use serde_json::Value;
use utoipa::PartialSchema;

use crate::api::wire::external::{
    CheckSchema, ColumnSummarySchema, ConnectorStateName, ConnectorStatusSchema, FormatName,
    OutcomeName, TableOrderSchema, TableSummarySchema,
};

fn schema_of<S: PartialSchema>() -> Value {
    serde_json::to_value(S::schema()).unwrap()
}

fn properties<S: PartialSchema>() -> BTreeSet<String> {
    (schema_of::<S>()["properties"].as_object())
        .expect("an object schema")
        .keys()
        .cloned()
        .collect()
}

fn keys(value: impl Serialize) -> BTreeSet<String> {
    (serde_json::to_value(value).unwrap().as_object())
        .expect("an object")
        .keys()
        .cloned()
        .collect()
}

fn values<S: PartialSchema>() -> BTreeSet<String> {
    (schema_of::<S>()["enum"].as_array())
        .expect("an enum schema")
        .iter()
        .map(|v| v.as_str().expect("a string value").to_string())
        .collect()
}

fn serialized<T: Serialize>(variants: impl IntoIterator<Item = T>) -> BTreeSet<String> {
    (variants.into_iter())
        .map(|v| match serde_json::to_value(v).unwrap() {
            Value::String(name) => name,
            other => panic!("{other} is not a name"),
        })
        .collect()
}

#[test]
fn the_schemas_of_other_crates_types_are_what_they_serialize() {
    let order = TableOrder {
        table: "public.orders".into(),
        by: "arrival".into(),
        reason: None,
        positioned_events: 0,
        arrival_events: 1,
        superseded_events: 0,
    };
    assert_eq!(properties::<TableOrderSchema>(), keys(order));
    assert_eq!(
        properties::<ConnectorStatusSchema>(),
        keys(Status::default())
    );
    let check = Check {
        name: "wal_level".into(),
        outcome: Outcome::Pass,
        reason: String::new(),
    };
    assert_eq!(properties::<CheckSchema>(), keys(check));
    let table = TableSummary {
        name: "orders".into(),
        row_estimate: -1,
        size_bytes: 0,
    };
    assert_eq!(properties::<TableSummarySchema>(), keys(table));
    let column = ColumnSummary {
        name: "id".into(),
        r#type: "bigint".into(),
        nullable: false,
        primary_key: true,
    };
    assert_eq!(properties::<ColumnSummarySchema>(), keys(column));

    let formats = [Format::Upsert, Format::Debezium, Format::DebeziumUpdate];
    assert_eq!(values::<FormatName>(), serialized(formats));
    let states = [
        State::Starting,
        State::Snapshotting,
        State::Streaming,
        State::Failed,
    ];
    assert_eq!(values::<ConnectorStateName>(), serialized(states));
    let outcomes = [
        Outcome::Pass,
        Outcome::Warn,
        Outcome::Fail,
        Outcome::Skipped,
    ];
    assert_eq!(values::<OutcomeName>(), serialized(outcomes));
}
