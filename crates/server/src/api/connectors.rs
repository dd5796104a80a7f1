//! The connector routes: the seed's `createConnector`, and `/v1/connectors` with the live
//! catalog of one of Eddy's own connectors (schemas, tables, columns).

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use eddy_postgres::catalog::{ColumnSummary, TableSummary};
use serde::Deserialize;
use utoipa::IntoParams;

use super::error::{ApiError, ErrorBody};
use super::fields::{Fields, Params};
use super::tokens::with_token;
use super::wire::external::{ColumnSummarySchema, TableSummarySchema};
use super::wire::{ConnectorCreated, ConnectorDeleted, PreflightReport};
use super::{Answer, ok};
use crate::auth::Caller;
use crate::error::Error;
use crate::pg_connectors::PgConnectorView;
use crate::service::{ConnectorView, Environment, Service};

/// Called by the admin, the answer carries a new token for the environment.
#[utoipa::path(
    post, path = "/createConnector", tag = "seed",
    request_body = Environment,
    responses(
        (status = 201, description = "The connector; a token for the environment when the admin called", body = ConnectorCreated),
        (status = 502, description = "`connect_failed`, `postgres_failed`: the connector could not be registered", body = ErrorBody),
    ),
)]
pub async fn create_connector(
    State(service): State<Arc<Service>>,
    caller: Caller,
    Fields(request): Fields<Environment>,
) -> Result<Response, ApiError> {
    let (connector, issued) = service.create_connector(&caller, request).await?;
    let body = ConnectorCreated {
        id: connector.name.clone(),
        name: connector.name,
        status: connector.state,
        token: issued.as_ref().map(Into::into),
    };
    Ok(with_token(StatusCode::CREATED, body, issued.as_ref()))
}

/// The connectors the caller may see, with their state.
#[utoipa::path(
    get, path = "/v1/connectors", tag = "connectors",
    responses(
        (status = 200, description = "The connectors the caller may see", body = Vec<ConnectorView>),
        (status = 502, description = "`connect_failed`: Kafka Connect could not be asked", body = ErrorBody),
    ),
)]
pub async fn list_connectors(
    State(service): State<Arc<Service>>,
    caller: Caller,
) -> Answer<Vec<ConnectorView>> {
    ok(service.connectors(&caller).await?)
}

/// Runs the preflight checks of a PostgreSQL connection: `200` with every check, pass or
/// fail, and its reason.
#[utoipa::path(
    post, path = "/v1/connectors/test", tag = "connectors",
    request_body = Environment,
    responses((status = 200, description = "Every check, pass or fail", body = PreflightReport)),
)]
pub async fn test_connector(
    State(service): State<Arc<Service>>,
    caller: Caller,
    Fields(request): Fields<Environment>,
) -> Answer<PreflightReport> {
    ok(service.test_connector(&caller, request).await?.into())
}

/// One of Eddy's own connectors and its progress.
#[utoipa::path(
    get, path = "/v1/connectors/{name}", tag = "connectors",
    params(("name" = String, Path, description = "The connector's name, `<environmentId>-connector`")),
    responses(
        (status = 200, description = "The connector", body = PgConnectorView),
    ),
)]
pub async fn get_connector(
    State(service): State<Arc<Service>>,
    caller: Caller,
    Path(name): Path<String>,
) -> Answer<PgConnectorView> {
    service.may_use_connector(&caller, &name)?;
    let view = (service.postgres_connectors().view(&name).await)
        .ok_or_else(|| Error::NotFound(format!("connector `{name}`")))?;
    ok(view)
}

/// Stops one of Eddy's own connectors and drops its slot and publication.
#[utoipa::path(
    delete, path = "/v1/connectors/{name}", tag = "connectors",
    params(("name" = String, Path, description = "The connector's name, `<environmentId>-connector`")),
    responses(
        (status = 200, description = "The connector, deleted", body = ConnectorDeleted),
        (status = 409, description = "`conflict`: stopped, but its slot or publication stays", body = ErrorBody),
    ),
)]
pub async fn delete_connector(
    State(service): State<Arc<Service>>,
    caller: Caller,
    Path(name): Path<String>,
) -> Answer<ConnectorDeleted> {
    service.may_use_connector(&caller, &name)?;
    if !service.postgres_connectors().delete(&name).await? {
        return Err(Error::NotFound(format!("connector `{name}`")).into());
    }
    ok(ConnectorDeleted {
        name,
        status: "DELETED".into(),
    })
}

/// Where in the connector's database to look.
#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct CatalogQuery {
    /// The schema (required).
    schema: Option<String>,
    /// The table (required for its columns).
    table: Option<String>,
}

/// The connection of one of Eddy's own connectors the caller may use, for its catalog
/// endpoints.
fn catalog_of(
    service: &Service,
    caller: &Caller,
    name: &str,
) -> Result<eddy_postgres::PgConfig, ApiError> {
    service.may_use_connector(caller, name)?;
    Ok(service
        .postgres_connectors()
        .postgres(name)
        .ok_or_else(|| Error::NotFound(format!("connector `{name}`")))?)
}

/// A catalog read's answer: what it read, or its error as the API states it.
fn catalog_reply<T>(read: eddy_postgres::Result<T>) -> Answer<T> {
    ok(read.map_err(|e| match e {
        eddy_postgres::Error::Postgres(m) if m.ends_with("does not exist") => {
            Error::NotFound(m.trim_end_matches(" does not exist").to_string())
        }
        eddy_postgres::Error::Postgres(m) => Error::Postgres(m),
        other => Error::Postgres(other.to_string()),
    })?)
}

fn required_query(field: &str, value: Option<String>) -> Result<String, ApiError> {
    value
        .filter(|v| !v.is_empty())
        .ok_or_else(|| Error::invalid(field, "is required (a query parameter)").into())
}

/// The schemas of the connector's database, read live from the catalog.
#[utoipa::path(
    get, path = "/v1/connectors/{name}/schemas", tag = "connectors",
    params(("name" = String, Path, description = "The connector's name")),
    responses(
        (status = 200, description = "The schemas that hold tables", body = Vec<String>),
        (status = 502, description = "`postgres_failed`: the database could not be read", body = ErrorBody),
    ),
)]
pub async fn connector_schemas(
    State(service): State<Arc<Service>>,
    caller: Caller,
    Path(name): Path<String>,
) -> Answer<Vec<String>> {
    let postgres = catalog_of(&service, &caller, &name)?;
    catalog_reply(eddy_postgres::catalog::schemas(&postgres).await)
}

/// `?schema=`'s tables with their row estimate and size.
#[utoipa::path(
    get, path = "/v1/connectors/{name}/tables", tag = "connectors",
    params(("name" = String, Path, description = "The connector's name"), CatalogQuery),
    responses(
        (status = 200, description = "The schema's tables", body = Vec<TableSummarySchema>),
        (status = 400, description = "`invalid_request`: no `schema`", body = ErrorBody),
        (status = 404, description = "`not_found`: no such connector or schema", body = ErrorBody),
        (status = 502, description = "`postgres_failed`: the database could not be read", body = ErrorBody),
    ),
)]
pub async fn connector_tables(
    State(service): State<Arc<Service>>,
    caller: Caller,
    Path(name): Path<String>,
    Params(query): Params<CatalogQuery>,
) -> Answer<Vec<TableSummary>> {
    let postgres = catalog_of(&service, &caller, &name)?;
    let schema = required_query("schema", query.schema)?;
    catalog_reply(eddy_postgres::catalog::tables(&postgres, &schema).await)
}

/// `?schema=&table=`'s columns: type, nullability, primary key.
#[utoipa::path(
    get, path = "/v1/connectors/{name}/columns", tag = "connectors",
    params(("name" = String, Path, description = "The connector's name"), CatalogQuery),
    responses(
        (status = 200, description = "The table's columns", body = Vec<ColumnSummarySchema>),
        (status = 400, description = "`invalid_request`: no `schema` or `table`", body = ErrorBody),
        (status = 404, description = "`not_found`: no such connector, schema or table", body = ErrorBody),
        (status = 502, description = "`postgres_failed`: the database could not be read", body = ErrorBody),
    ),
)]
pub async fn connector_columns(
    State(service): State<Arc<Service>>,
    caller: Caller,
    Path(name): Path<String>,
    Params(query): Params<CatalogQuery>,
) -> Answer<Vec<ColumnSummary>> {
    let postgres = catalog_of(&service, &caller, &name)?;
    let schema = required_query("schema", query.schema)?;
    let table = required_query("table", query.table)?;
    catalog_reply(eddy_postgres::catalog::columns(&postgres, &schema, &table).await)
}
