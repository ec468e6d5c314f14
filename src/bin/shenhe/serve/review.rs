//! The review queue over HTTP (role `review`) and the callbacks that tell the forum of
//! each verdict.
//!
//! A verdict is taken in this order: the item must be undecided; a `report` verdict's
//! report is written; the verdict's audit record is committed (the reviewer is the key's
//! name); then the queue marks the item decided and queues the callback in one
//! transaction. A crash in between leaves the verdict in the evidence and the item open
//! (a reviewer can give it again), never an item decided without its record. Verdicts are
//! taken one at a time, so a second verdict on an item is refused (409), not recorded.
//!
//! Callbacks are POSTed from the outbox by one task, signed with HMAC-SHA256 over the body
//! (`X-Shenhe-Signature: sha256=<hex>`), retried with a doubling delay (1 s up to 10 min)
//! until the forum answers 2xx; the outbox is in the store, so a restart resumes them.

use std::sync::Arc;
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::{Extension, Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use hmac::{Hmac, Mac};
use serde::Deserialize;
use serde_json::{json, Value};
use shenhe::review::{ReviewFilter, ReviewItem, Status, Verdict};
use shenhe::ErrorKind;

use super::auth::{Caller, Role};
use super::observe::{error, Outcome};
use super::App;

/// `[review]` in the config file.
#[derive(Deserialize, Debug, Default, Clone)]
#[serde(deny_unknown_fields, default)]
pub struct ReviewConfig {
    /// Where each verdict is POSTed (http://…); none: no callbacks.
    pub callback_url: Option<String>,
    /// The HMAC-SHA256 key of the callbacks' signature.
    pub callback_secret: Option<String>,
    /// Hours a held post may wait for its verdict (default 24).
    pub deadline_hours: Option<u32>,
}

impl ReviewConfig {
    /// Refuses what cannot work, before anything is opened.
    pub fn check(&self) -> anyhow::Result<()> {
        match (&self.callback_url, &self.callback_secret) {
            (Some(url), Some(secret)) => {
                let uri: axum::http::Uri = url
                    .parse()
                    .map_err(|e| anyhow::anyhow!("[review] callback_url = {url:?}: {e}"))?;
                if uri.scheme_str() != Some("http") || uri.host().is_none() {
                    anyhow::bail!(
                        "[review] callback_url = {url:?}: expected http://host[:port]/path \
                         (callbacks over https are not supported yet: put the forum's \
                         internal address, or a local TLS proxy)"
                    );
                }
                if secret.len() < 16 {
                    anyhow::bail!("[review] callback_secret: at least 16 characters");
                }
                Ok(())
            }
            (Some(_), None) => anyhow::bail!("[review] callback_url needs a callback_secret"),
            (None, Some(_)) => anyhow::bail!("[review] callback_secret without a callback_url"),
            (None, None) => Ok(()),
        }
    }
}

/// The answer of the queue's routes when the service keeps none (no audit store).
fn no_queue() -> Response {
    error(
        StatusCode::NOT_FOUND,
        "this service keeps no review queue: it needs an audit store",
    )
}

fn status_of(kind: ErrorKind) -> StatusCode {
    match kind {
        ErrorKind::NotFound => StatusCode::NOT_FOUND,
        ErrorKind::Conflict => StatusCode::CONFLICT,
        ErrorKind::InvalidValue => StatusCode::UNPROCESSABLE_ENTITY,
        _ => StatusCode::SERVICE_UNAVAILABLE,
    }
}

fn failed(e: &shenhe::Error) -> Response {
    error(status_of(e.kind()), e.to_string())
}

/// An item as the API shows it: the poster's personal fields only to the `audit` role.
pub fn shown(item: &ReviewItem, caller: &Caller) -> Value {
    let mut v = serde_json::to_value(item).expect("items serialise");
    if !caller.has(Role::Audit) {
        if let Some(poster) = v["post"].get_mut("poster").and_then(Value::as_object_mut) {
            poster.retain(|k, _| k == "user_id");
        }
        // A hit in the display name shows where, not what.
        if let Some(hits) = v["decision"]["hits"].as_array_mut() {
            for h in hits.iter_mut().filter(|h| h["field"] == "name") {
                h["matched"] = json!(shenhe::audit::SEALED_MATCH);
                h["term"] = json!(shenhe::audit::SEALED_MATCH);
            }
        }
        if let Some(fields) = v["decision"]["masked_fields"].as_array_mut() {
            fields.retain(|f| f["field"] != "name");
        }
    }
    v
}

#[derive(Deserialize)]
pub struct ListQuery {
    status: Option<String>,
    category: Option<u16>,
    board: Option<String>,
    limit: Option<usize>,
}

/// `GET /v1/reviews?status=&category=&board=&limit=`: items, oldest first.
pub async fn list(
    State(app): State<Arc<App>>,
    Extension(caller): Extension<Caller>,
    Query(q): Query<ListQuery>,
) -> Response {
    let Some(queue) = app.reviews.clone() else {
        return no_queue();
    };
    let status = match q.status.as_deref().map(|s| (s, Status::parse(s))) {
        None => None,
        Some((_, Some(s))) => Some(s),
        Some((s, None)) => {
            return error(
                StatusCode::BAD_REQUEST,
                format!("status={s}: expected pending, claimed or decided"),
            )
        }
    };
    let filter = ReviewFilter {
        status,
        category: q.category,
        board: q.board,
        limit: Some(q.limit.unwrap_or(100).min(1000)),
    };
    match tokio::task::spawn_blocking(move || queue.list(&filter)).await {
        Ok(Ok(items)) => {
            let items: Vec<Value> = items.iter().map(|i| shown(i, &caller)).collect();
            axum::Json(json!({ "items": items })).into_response()
        }
        Ok(Err(e)) => failed(&e),
        Err(_) => error(StatusCode::INTERNAL_SERVER_ERROR, "internal error"),
    }
}

/// `GET /v1/reviews/{id}`.
pub async fn one(
    State(app): State<Arc<App>>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<i64>,
) -> Response {
    let Some(queue) = app.reviews.clone() else {
        return no_queue();
    };
    match tokio::task::spawn_blocking(move || queue.get(id)).await {
        Ok(Ok(Some(item))) => axum::Json(shown(&item, &caller)).into_response(),
        Ok(Ok(None)) => error(StatusCode::NOT_FOUND, format!("no review {id}")),
        Ok(Err(e)) => failed(&e),
        Err(_) => error(StatusCode::INTERNAL_SERVER_ERROR, "internal error"),
    }
}

/// `POST /v1/reviews/{id}/claim`: the item is the caller's until decided.
pub async fn claim(
    State(app): State<Arc<App>>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<i64>,
) -> Response {
    let Some(queue) = app.reviews.clone() else {
        return no_queue();
    };
    let who = caller.name.clone();
    match tokio::task::spawn_blocking(move || queue.claim(id, &who, jiff::Timestamp::now())).await {
        Ok(Ok(item)) => axum::Json(shown(&item, &caller)).into_response(),
        Ok(Err(e)) => failed(&e),
        Err(_) => error(StatusCode::INTERNAL_SERVER_ERROR, "internal error"),
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct VerdictBody {
    verdict: String,
    #[serde(default)]
    note: Option<String>,
}

/// `POST /v1/reviews/{id}/verdict` with `{"verdict": "approve"|"remove"|"report", "note": …}`.
pub async fn verdict(
    State(app): State<Arc<App>>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<i64>,
    body: Bytes,
) -> Response {
    let body: VerdictBody = match serde_json::from_slice(&body) {
        Ok(b) => b,
        Err(e) => {
            return error(
                StatusCode::BAD_REQUEST,
                format!(
                "expected {{\"verdict\": \"approve\"|\"remove\"|\"report\", \"note\": \"…\"}}: {e}"
            ),
            )
        }
    };
    let Some(v) = Verdict::parse(&body.verdict) else {
        return error(
            StatusCode::BAD_REQUEST,
            format!(
                "verdict {:?}: expected approve, remove or report",
                body.verdict
            ),
        );
    };
    if body.note.as_ref().is_some_and(|n| n.len() > 4096) {
        return error(
            StatusCode::PAYLOAD_TOO_LARGE,
            "a note may be at most 4096 bytes",
        );
    }
    let mut res = match take_verdict(&app, id, v, caller.name.to_string(), body.note).await {
        Ok(item) => axum::Json(shown(&item, &caller)).into_response(),
        Err((status, why)) => error(status, why),
    };
    res.extensions_mut().insert(Outcome(v.as_str().into()));
    res
}

/// The verdict's whole order (see the module's doc), one verdict at a time; the API and
/// the console both take verdicts here. The error is the status and why.
pub async fn take_verdict(
    app: &Arc<App>,
    id: i64,
    v: Verdict,
    who: String,
    note: Option<String>,
) -> Result<ReviewItem, (StatusCode, String)> {
    let internal = || {
        (
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal error".to_owned(),
        )
    };
    let queue = app.reviews.clone().ok_or((
        StatusCode::NOT_FOUND,
        "this service keeps no review queue: it needs an audit store".to_owned(),
    ))?;
    let _one = app.verdicts.lock().await;
    let pipeline_app = app.clone();
    let decided = tokio::task::spawn_blocking(move || {
        let item = queue.undecided(id)?;
        pipeline_app
            .pipeline
            .record_verdict(&item, v, &who, note.as_deref())?;
        queue.decide(id, &who, v, note.as_deref(), jiff::Timestamp::now())
    })
    .await
    .map_err(|_| internal())?;
    match decided {
        Ok(item) => {
            metrics::counter!("shenhe_review_verdicts_total", "verdict" => v.as_str()).increment(1);
            app.callbacks.notify_one();
            Ok(item)
        }
        Err(e) => Err((status_of(e.kind()), e.to_string())),
    }
}

/// `sha256=<hex HMAC-SHA256 of body with secret>`: the `X-Shenhe-Signature` header.
pub fn signature(secret: &str, body: &[u8]) -> String {
    let mut mac = Hmac::<sha2::Sha256>::new_from_slice(secret.as_bytes())
        .expect("HMAC takes keys of any length");
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

/// Delivers the outbox's callbacks for as long as the service runs: whatever is due, then
/// sleeps until the next is due or a verdict wakes it.
pub async fn deliver(app: Arc<App>) {
    let (Some(queue), Some(url), Some(secret)) = (
        app.reviews.clone(),
        app.config.review.callback_url.clone(),
        app.config.review.callback_secret.clone(),
    ) else {
        return;
    };
    let client = hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
        .build_http::<http_body_util::Full<Bytes>>();
    loop {
        let q = queue.clone();
        let due = tokio::task::spawn_blocking(move || q.due_callbacks(jiff::Timestamp::now(), 64))
            .await
            .ok()
            .and_then(|r| {
                r.map_err(|e| tracing::warn!(target: "shenhe::review", error = %e, "cannot read the callback outbox"))
                    .ok()
            })
            .unwrap_or_default();
        for cb in due {
            let outcome = post_callback(&client, &url, &secret, &cb).await;
            let q = queue.clone();
            let now = jiff::Timestamp::now();
            let noted = match &outcome {
                Ok(()) => {
                    tracing::info!(target: "shenhe::review", review_id = cb.review_id, attempts = cb.attempts + 1, "callback delivered");
                    tokio::task::spawn_blocking(move || q.delivered(cb.id, now)).await
                }
                Err(e) => {
                    let wait = backoff(cb.attempts);
                    tracing::warn!(target: "shenhe::review", review_id = cb.review_id, attempts = cb.attempts + 1, retry_in_s = wait.as_secs(), error = %e, "callback not delivered");
                    let e = e.clone();
                    let next = now + wait;
                    tokio::task::spawn_blocking(move || q.failed(cb.id, &e, next)).await
                }
            };
            if let Ok(Err(e)) = noted {
                tracing::warn!(target: "shenhe::review", error = %e, "cannot note a callback's outcome");
            }
        }
        let q = queue.clone();
        let next = tokio::task::spawn_blocking(move || q.next_callback_at())
            .await
            .ok()
            .and_then(Result::ok)
            .flatten();
        let sleep = match next {
            Some(at) => {
                let ms = at.duration_since(jiff::Timestamp::now()).as_millis();
                Duration::from_millis(ms.clamp(0, 600_000) as u64)
            }
            None => Duration::from_secs(600),
        };
        if sleep.is_zero() {
            continue;
        }
        tokio::select! {
            _ = app.callbacks.notified() => {}
            _ = tokio::time::sleep(sleep) => {}
        }
    }
}

/// 1 s after the first failure, doubling, at most 10 minutes.
fn backoff(attempts: u32) -> jiff::SignedDuration {
    jiff::SignedDuration::from_secs(1i64 << attempts.min(10))
        .min(jiff::SignedDuration::from_mins(10))
}

type Client = hyper_util::client::legacy::Client<
    hyper_util::client::legacy::connect::HttpConnector,
    http_body_util::Full<Bytes>,
>;

async fn post_callback(
    client: &Client,
    url: &str,
    secret: &str,
    cb: &shenhe::review::Callback,
) -> Result<(), String> {
    let body = Bytes::from(cb.body.clone());
    let req = axum::http::Request::post(url)
        .header("content-type", "application/json")
        .header("x-shenhe-signature", signature(secret, &body))
        .header("x-shenhe-delivery", cb.id.to_string())
        .body(http_body_util::Full::new(body))
        .map_err(|e| e.to_string())?;
    match tokio::time::timeout(Duration::from_secs(10), client.request(req)).await {
        Err(_) => Err("no answer within 10 s".into()),
        Ok(Err(e)) => Err(e.to_string()),
        Ok(Ok(res)) if res.status().is_success() => Ok(()),
        Ok(Ok(res)) => Err(format!("answered {}", res.status())),
    }
}
