//! The OpenAPI 3.1 document of every route, generated from the handlers' annotations and
//! the typed bodies, and served at `GET /openapi.json` without a credential.
//!
//! Five things are added to what the annotations say: the `v1` aliases of seed operations
//! (one handler, two paths), form fields beside JSON for every request body, the bearer
//! security scheme, the failures the edge and the extractors answer on any route
//! (`401`, `403`, `429`, `503`; `400` and `413` for input; `404` for a path naming nothing),
//! each with the one error shape, and the headers the edge puts on every answer (the
//! request id, the rate limit's standing, `Retry-After` on a `429`).

use std::sync::LazyLock;

use axum::http::header::CONTENT_TYPE;
use axum::response::IntoResponse;
use utoipa::openapi::header::HeaderBuilder;
use utoipa::openapi::path::{Operation, ParameterIn, PathItem};
use utoipa::openapi::response::ResponseBuilder;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::{ContentBuilder, OpenApi as Document, Ref, RefOr, Type};
use utoipa::{Modify, OpenApi};

use super::{connectors, jobs, metrics, observe, tokens};

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Eddy",
        description = "Incremental SQL over change data capture: connectors, jobs and their \
            environments' tokens. Every failure is `{\"error\": {\"code\", \"message\", \
            \"field\"?}}` (see `ErrorCode`)."
    ),
    paths(
        connectors::create_connector,
        jobs::create_job,
        jobs::delete_job,
        jobs::job_status_of_environment,
        jobs::job_status,
        jobs::list_jobs,
        jobs::remove_job,
        jobs::pause_job,
        jobs::resume_job,
        observe::job_results,
        observe::job_runs,
        observe::job_logs,
        connectors::list_connectors,
        connectors::test_connector,
        connectors::get_connector,
        connectors::delete_connector,
        connectors::connector_schemas,
        connectors::connector_tables,
        connectors::connector_columns,
        tokens::issue,
        tokens::list,
        tokens::revoke,
        metrics::metrics_of_visible_jobs,
        super::healthz,
        serve,
    ),
    components(schemas(super::error::ErrorCode)),
    modifiers(&Aliases, &FormBodies, &Bearer, &EdgeFailures, &EdgeHeaders),
    security(("bearer" = [])),
    tags(
        (name = "seed", description = "The seed service's endpoints, as it named them"),
        (name = "jobs", description = "Jobs: list, create, inspect, pause, resume, delete"),
        (name = "connectors", description = "Connectors and their databases' catalogs"),
        (name = "tokens", description = "An environment's tokens: issue, list, revoke"),
        (name = "service", description = "Health, metrics and this document"),
    ),
)]
struct ApiDoc;

/// The document, as the service serves it.
fn document() -> Document {
    ApiDoc::openapi()
}

static SERVED: LazyLock<String> =
    LazyLock::new(|| document().to_json().expect("the document serializes"));

/// This document; needs no credential.
#[utoipa::path(
    get, path = "/openapi.json", tag = "service", security(()),
    responses((status = 200, description = "This OpenAPI 3.1 document", body = Object)),
)]
pub async fn serve() -> impl IntoResponse {
    ([(CONTENT_TYPE, "application/json")], SERVED.as_str())
}

/// `POST /v1/jobs` is `POST /createJob` and `GET /v1/jobs/{id}` is `GET /jobStatus/{id}`.
struct Aliases;

impl Modify for Aliases {
    fn modify(&self, openapi: &mut Document) {
        let paths = &mut openapi.paths.paths;
        let operation = |paths: &std::collections::BTreeMap<String, PathItem>,
                         path: &str,
                         pick: fn(&PathItem) -> &Option<Operation>,
                         id: &str| {
            let mut operation = pick(&paths[path]).clone().expect("an annotated operation");
            operation.operation_id = Some(id.to_string());
            operation.tags = Some(vec!["jobs".to_string()]);
            operation
        };
        let create = operation(paths, "/createJob", |item| &item.post, "create_v1_job");
        let status = operation(paths, "/jobStatus/{id}", |item| &item.get, "get_v1_job");
        paths.get_mut("/v1/jobs").expect("listed").post = Some(create);
        paths.get_mut("/v1/jobs/{id}").expect("annotated").get = Some(status);
    }
}

/// Every body is read as JSON or as form fields (`Fields`), as the seed service read it.
struct FormBodies;

impl Modify for FormBodies {
    fn modify(&self, openapi: &mut Document) {
        let bodies = (openapi.paths.paths.values_mut())
            .flat_map(|item| [&mut item.post, &mut item.delete])
            .flatten()
            .filter_map(|operation| operation.request_body.as_mut());
        for body in bodies {
            let json = body.content["application/json"].clone();
            (body.content).insert("application/x-www-form-urlencoded".to_string(), json);
        }
    }
}

/// `Authorization: Bearer <token>`: the admin credential or an environment's token.
struct Bearer;

impl Modify for Bearer {
    fn modify(&self, openapi: &mut Document) {
        let scheme = HttpBuilder::new()
            .scheme(HttpAuthScheme::Bearer)
            .description(Some(
                "The admin credential, or a token of one environment (`eddy_<id>_<secret>`)",
            ))
            .build();
        (openapi.components.get_or_insert_with(Default::default))
            .add_security_scheme("bearer", SecurityScheme::Http(scheme));
    }
}

/// A failure an operation may answer, whichever it is: its status, what it means, and
/// which operations it applies to.
type Failure = (&'static str, &'static str, fn(&Operation) -> bool);

/// What the edge, the extractors and any lookup by path answer, on the operations each
/// applies to; an operation's own annotation, where it has one for the status, is kept.
const EDGE_FAILURES: [Failure; 7] = [
    (
        "400",
        "`invalid_request`, `invalid_schema`, `invalid_query`: a missing or wrong field, \
         parameter or body",
        |op| op.request_body.is_some() || op.parameters.is_some(),
    ),
    (
        "401",
        "`missing_credential`, `invalid_token`, `expired_token`",
        |op| op.security.is_none(),
    ),
    (
        "403",
        "`forbidden`: another environment's resource, or an `Origin` not allowed",
        |_| true,
    ),
    (
        "404",
        "`not_found`: no such job, connector or token (of the environment) as the path names",
        |op| (op.parameters.iter().flatten()).any(|p| matches!(p.parameter_in, ParameterIn::Path)),
    ),
    ("413", "`payload_too_large`: a body over 2 MiB", |op| {
        op.request_body.is_some()
    }),
    (
        "429",
        "`rate_limited`: over the caller's requests per minute (see `Retry-After`)",
        |_| true,
    ),
    (
        "503",
        "`request_timeout`: over the request time limit; what it changed may stand",
        |_| true,
    ),
];

struct EdgeFailures;

impl Modify for EdgeFailures {
    fn modify(&self, openapi: &mut Document) {
        let operations = (openapi.paths.paths.values_mut())
            .flat_map(|item| [&mut item.get, &mut item.post, &mut item.delete])
            .flatten();
        for operation in operations {
            for (status, description, applies) in EDGE_FAILURES {
                if !applies(operation) || operation.responses.responses.contains_key(status) {
                    continue;
                }
                let content = ContentBuilder::new()
                    .schema(Some(Ref::from_schema_name("ErrorBody")))
                    .build();
                let response = ResponseBuilder::new()
                    .description(description)
                    .content("application/json", content)
                    .build();
                (operation.responses.responses).insert(status.to_string(), response.into());
            }
        }
    }
}

/// A header the edge sets: its name, its type, its description, and whether every answer
/// of an operation carries it; `only` names the one status it is on, if any.
type EdgeHeader = (&'static str, Type, &'static str, Option<&'static str>);

const EDGE_HEADERS: [EdgeHeader; 5] = [
    (
        "X-Request-Id",
        Type::String,
        "The request's id (the caller's own `X-Request-Id`, or a new one), as the log names it",
        None,
    ),
    (
        "X-RateLimit-Limit",
        Type::Integer,
        "Requests per minute the caller may make (when the request carries a credential)",
        None,
    ),
    (
        "X-RateLimit-Remaining",
        Type::Integer,
        "Requests the caller may still make in this minute (when it carries a credential)",
        None,
    ),
    (
        "X-RateLimit-Reset",
        Type::Integer,
        "Seconds until the caller's allowance is whole again (when it carries a credential)",
        None,
    ),
    (
        "Retry-After",
        Type::Integer,
        "Seconds to wait before the next request",
        Some("429"),
    ),
];

struct EdgeHeaders;

impl Modify for EdgeHeaders {
    fn modify(&self, openapi: &mut Document) {
        let responses = (openapi.paths.paths.values_mut())
            .flat_map(|item| [&mut item.get, &mut item.post, &mut item.delete])
            .flatten()
            .flat_map(|operation| operation.responses.responses.iter_mut());
        for (status, response) in responses {
            let RefOr::T(response) = response else {
                continue;
            };
            for (name, kind, description, only) in EDGE_HEADERS {
                if only.is_some_and(|only| only != status) {
                    continue;
                }
                let header = HeaderBuilder::new()
                    .schema(utoipa::openapi::ObjectBuilder::new().schema_type(kind))
                    .description(Some(description))
                    .build();
                response.headers.insert(name.to_string(), header);
            }
        }
    }
}
