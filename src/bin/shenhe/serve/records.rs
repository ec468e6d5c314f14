//! `GET /v1/audit/records?user=ID|ip=ADDR|post=ID` (role `audit`): a person's or a post's
//! audit records with their sealed personal fields opened. Every such read is itself an
//! audit record (`{"kind":"read","filter":…,"count":N}`, naming the key), committed before
//! the records are sent: a read that cannot be recorded shows nothing.

use std::sync::Arc;

use axum::extract::rejection::QueryRejection;
use axum::extract::{Extension, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use shenhe::audit::{AuditStore, Filter};

use super::auth::Caller;
use super::observe::{error, Outcome};
use super::App;

/// Records sent by default, and at most.
const DEFAULT_LIMIT: usize = 1000;
const MAX_LIMIT: usize = 10_000;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RecordsQuery {
    user: Option<String>,
    ip: Option<String>,
    post: Option<String>,
    limit: Option<usize>,
}

/// The filter a query names, or why it names none.
fn filter(q: &RecordsQuery) -> Result<Filter, String> {
    let ip = match q.ip.as_deref().map(str::trim) {
        None => None,
        Some(s) => Some(match s.parse::<ipnet::IpNet>() {
            Ok(net) => net,
            Err(_) => s
                .parse::<std::net::IpAddr>()
                .map(ipnet::IpNet::from)
                .map_err(|_| format!("ip={s:?}: not an IP address or CIDR network"))?,
        }),
    };
    let f = Filter {
        user: q.user.clone().filter(|u| !u.is_empty()),
        post: q.post.clone().filter(|p| !p.is_empty()),
        ip,
        ..Filter::default()
    };
    if !f.names_a_subject() {
        return Err("name whose records: ?user=ID, ?ip=ADDR (or CIDR) or ?post=ID".into());
    }
    Ok(f)
}

/// `GET /v1/audit/records`: `{"count":N,"truncated":bool,"records":[…]}`, oldest first.
pub async fn records(
    State(app): State<Arc<App>>,
    Extension(caller): Extension<Caller>,
    query: Result<Query<RecordsQuery>, QueryRejection>,
) -> Response {
    let q = match query {
        Ok(Query(q)) => q,
        Err(r) => return error(StatusCode::BAD_REQUEST, r.body_text()),
    };
    let filter = match filter(&q) {
        Ok(f) => f,
        Err(e) => return error(StatusCode::BAD_REQUEST, e),
    };
    let limit = q.limit.unwrap_or(DEFAULT_LIMIT).clamp(1, MAX_LIMIT);
    let Some(db) = app.config.audit.clone() else {
        return error(StatusCode::NOT_FOUND, "this service has no audit store");
    };
    let worker = app.clone();
    let name = caller.name.clone();
    let read = tokio::task::spawn_blocking(move || {
        // A connection of its own for reading: the pipeline keeps writing meanwhile.
        let store = AuditStore::open(&db, worker.audit_key.clone()).map_err(|e| {
            (
                StatusCode::SERVICE_UNAVAILABLE,
                format!("the audit store cannot be read: {e}"),
            )
        })?;
        let mut found = Vec::new();
        let mut matched = 0u64;
        store
            .query(&filter, |r| {
                matched += 1;
                if found.len() < limit {
                    found.push(r);
                }
                Ok(())
            })
            .map_err(|e| (StatusCode::BAD_REQUEST, e.to_string()))?;
        let event = serde_json::json!({
            "kind": "read",
            "via": "GET /v1/audit/records",
            "filter": filter.to_json(),
            "count": found.len(),
            "matched": matched,
        });
        worker.pipeline.record_event(&name, &event).map_err(|e| {
            (
                StatusCode::SERVICE_UNAVAILABLE,
                format!("the read could not be recorded, so nothing is shown: {e}"),
            )
        })?;
        Ok::<_, (StatusCode, String)>((found, matched))
    })
    .await;
    match read {
        Ok(Ok((found, matched))) => {
            let body = serde_json::json!({
                "count": found.len(),
                "truncated": matched > found.len() as u64,
                "records": found,
            });
            let mut res = (StatusCode::OK, axum::Json(body)).into_response();
            res.extensions_mut().insert(Outcome(
                format!("read {}", matched.min(limit as u64)).into(),
            ));
            res
        }
        Ok(Err((status, e))) => error(status, e),
        Err(_) => error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal error: nothing was read",
        ),
    }
}
