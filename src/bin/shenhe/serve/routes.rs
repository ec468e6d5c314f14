//! The routes: each reads the request, hands the post to the library's pipeline ([`decide`]:
//! a decision is answered once its audit record is committed), and writes the contract's
//! JSON back.

use std::sync::Arc;

use axum::body::{Body, Bytes};
use axum::extract::rejection::BytesRejection;
use axum::extract::{Extension, Request, State};
use axum::http::{header, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use shenhe::{Decision, ErrorKind, LineError, Moderated, Post};
use tokio_stream::StreamExt;

use super::auth::{bearer, Caller, Refusal, Role};
use super::observe::{count_decision, error, Outcome};
use super::App;

/// Lets a call through when its key has `role` and is within its rate.
pub async fn require(
    State((app, role)): State<(Arc<App>, Role)>,
    mut req: Request,
    next: Next,
) -> Response {
    let peer = req
        .extensions()
        .get::<axum::extract::ConnectInfo<std::net::SocketAddr>>()
        .map(|c| c.0.ip());
    match app
        .credentials
        .load()
        .keys
        .admit(bearer(req.headers()), role, peer)
    {
        Ok(caller) => {
            req.extensions_mut().insert(caller.clone());
            let mut res = next.run(req).await;
            res.extensions_mut().insert(caller);
            res
        }
        Err(r) => refusal(r),
    }
}

/// 401, 403 or 429, with the reason.
pub fn refusal(r: Refusal) -> Response {
    match r {
        Refusal::Unknown => {
            let mut res = error(
                StatusCode::UNAUTHORIZED,
                "no API key, or not one this service knows: send Authorization: Bearer KEY",
            );
            res.headers_mut()
                .insert(header::WWW_AUTHENTICATE, "Bearer".parse().expect("valid"));
            res
        }
        Refusal::Forbidden(role) => error(
            StatusCode::FORBIDDEN,
            format!("this key does not have the {} role", role.as_str()),
        ),
        Refusal::Expired => error(
            StatusCode::UNAUTHORIZED,
            "this key has expired: ask for a new one",
        ),
        Refusal::NotFromHere => error(
            StatusCode::FORBIDDEN,
            "this key may not be used from this address (allow_from)",
        ),
        Refusal::TooMany(after) => {
            let mut res = error(
                StatusCode::TOO_MANY_REQUESTS,
                format!("over this key's rate limit: retry in {after} s"),
            );
            res.headers_mut().insert(
                header::RETRY_AFTER,
                after.to_string().parse().expect("digits"),
            );
            res
        }
    }
}

/// Runs `f` on the blocking pool; a panic there is a 500, never a dropped connection.
async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> T + Send + 'static,
) -> Result<T, Response> {
    tokio::task::spawn_blocking(f).await.map_err(|_| {
        error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal error: nothing was decided or recorded",
        )
    })
}

/// A body the extractor refused (too large, unreadable), as a JSON error.
fn body_refused(r: BytesRejection) -> Response {
    error(r.status(), r.body_text())
}

/// The status for an error line: 413 over a limit, 503 when the post was decided but its
/// record or report could not be kept (the caller retries; the post stays unpublished),
/// 400 for anything that is not a post.
fn status_of(kind: ErrorKind) -> StatusCode {
    match kind {
        ErrorKind::TooLarge => StatusCode::PAYLOAD_TOO_LARGE,
        ErrorKind::Audit | ErrorKind::AuditKey | ErrorKind::Io => StatusCode::SERVICE_UNAVAILABLE,
        _ => StatusCode::BAD_REQUEST,
    }
}

fn json_bytes(status: StatusCode, body: Vec<u8>) -> Response {
    (status, [(header::CONTENT_TYPE, "application/json")], body).into_response()
}

fn decided(d: &Decision) -> Response {
    count_decision(d);
    let mut res = json_bytes(StatusCode::OK, shenhe::jsonl::decision_line(d));
    res.extensions_mut()
        .insert(Outcome(d.action.as_str().into()));
    res
}

fn refused_post(e: &LineError) -> Response {
    let mut res = json_bytes(status_of(e.kind), e.to_line());
    res.extensions_mut().insert(Outcome("error".into()));
    res
}

/// Largest body decided on the connection's thread (a scan of tens of microseconds).
const INLINE_MAX_BYTES: usize = 16 << 10;

/// Decides one post for `caller` and records it. A small post is scanned on the
/// connection's own thread and its record handed to the pipeline's group commit, which the
/// task awaits without holding a thread; with reports to write (files), or a large post,
/// it all runs on the blocking pool. Measured with a sealed store, wrk at 16 connections:
/// see `scripts/bench-serve.sh` and the README.
pub async fn decide(app: &Arc<App>, body: Bytes, caller: &Caller) -> Result<Moderated, Response> {
    if !app.inline || body.len() > INLINE_MAX_BYTES {
        let app = app.clone();
        let name = caller.name.clone();
        return blocking(move || app.pipeline.moderate_json_by(&body, Some(&name))).await;
    }
    let (tx, rx) = tokio::sync::oneshot::channel();
    app.pipeline
        .moderate_json_then(&body, Some(&caller.name), move |moderated| {
            let _ = tx.send(moderated);
        });
    rx.await.map_err(|_| {
        error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal error: nothing was decided or recorded",
        )
    })
}

/// `POST /v1/moderate`: one post → its decision, recorded.
pub async fn moderate(
    State(app): State<Arc<App>>,
    Extension(caller): Extension<Caller>,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let body = match body {
        Ok(b) => b,
        Err(r) => return body_refused(r),
    };
    match decide(&app, body, &caller).await {
        Ok(Ok(d)) => decided(&d),
        Ok(Err(e)) => refused_post(&e),
        Err(res) => res,
    }
}

/// Lines taken per pipeline batch: large enough for one commit to carry many records,
/// small enough that the first decisions stream back early.
const BATCH_LINES: usize = 256;

/// `POST /v1/moderate/batch`: JSON Lines of posts → JSON Lines of decisions, one per input
/// line, in order, streamed as each group of lines is decided and recorded.
pub async fn moderate_batch(
    State(app): State<Arc<App>>,
    Extension(caller): Extension<Caller>,
    req: Request,
) -> Response {
    let limit = app.config.max_batch_bytes;
    let declared = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok());
    if declared.is_some_and(|n| n > limit) {
        return error(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!("a batch may be at most {limit} bytes (max_batch_bytes)"),
        );
    }
    let (tx, rx) = tokio::sync::mpsc::channel::<Result<Bytes, std::io::Error>>(4);
    let mut input = req.into_body().into_data_stream();
    tokio::spawn(async move {
        let mut pending: Vec<u8> = Vec::new();
        let (mut read, mut next_line) = (0usize, 1u64);
        let mut ended = false;
        while !ended {
            let mut lines: Vec<Vec<u8>> = Vec::new();
            while lines.len() < BATCH_LINES && !ended {
                if let Some(nl) = pending.iter().position(|&b| b == b'\n') {
                    let rest = pending.split_off(nl + 1);
                    pending.pop();
                    lines.push(std::mem::replace(&mut pending, rest));
                    continue;
                }
                match input.next().await {
                    Some(Ok(data)) => {
                        read += data.len();
                        if read > limit {
                            let e = LineError::new(
                                None,
                                format!("the batch is over {limit} bytes (max_batch_bytes): the rest was not read"),
                                ErrorKind::TooLarge,
                            )
                            .at_line(next_line + lines.len() as u64);
                            let _ =
                                decide_lines(&app, &caller, &mut lines, &mut next_line, &tx).await;
                            let _ = tx.send(Ok(Bytes::from(e.to_line()))).await;
                            return;
                        }
                        pending.extend_from_slice(&data);
                    }
                    Some(Err(e)) => {
                        // The client went away or stopped sending: what it sent whole is
                        // decided and recorded; nothing is made up for the rest.
                        tracing::warn!(target: "shenhe::http", "batch body unreadable: {e}");
                        let _ = decide_lines(&app, &caller, &mut lines, &mut next_line, &tx).await;
                        return;
                    }
                    None => {
                        ended = true;
                        if !pending.is_empty() {
                            lines.push(std::mem::take(&mut pending));
                        }
                    }
                }
            }
            if decide_lines(&app, &caller, &mut lines, &mut next_line, &tx)
                .await
                .is_err()
            {
                return;
            }
        }
    });
    let mut res = (
        StatusCode::OK,
        [(header::CONTENT_TYPE, "application/x-ndjson")],
        Body::from_stream(tokio_stream::wrappers::ReceiverStream::new(rx)),
    )
        .into_response();
    res.extensions_mut().insert(Outcome("batch".into()));
    res
}

/// Decides `lines` as one pipeline batch and sends their output lines; `Err` when the
/// response's reader is gone.
async fn decide_lines(
    app: &Arc<App>,
    caller: &Caller,
    lines: &mut Vec<Vec<u8>>,
    next_line: &mut u64,
    tx: &tokio::sync::mpsc::Sender<Result<Bytes, std::io::Error>>,
) -> Result<(), ()> {
    if lines.is_empty() {
        return Ok(());
    }
    let first = *next_line;
    *next_line += lines.len() as u64;
    let batch = std::mem::take(lines);
    let app = app.clone();
    let caller = caller.name.clone();
    let out = tokio::task::spawn_blocking(move || {
        let refs: Vec<&[u8]> = batch.iter().map(Vec::as_slice).collect();
        let mut out = Vec::with_capacity(batch.iter().map(Vec::len).sum::<usize>() * 2);
        for (i, r) in app
            .pipeline
            .moderate_json_batch_by(&refs, Some(&caller))
            .into_iter()
            .enumerate()
        {
            let n = first + i as u64;
            match r {
                Ok(mut d) => {
                    count_decision(&d);
                    d.line = Some(n);
                    out.extend_from_slice(&shenhe::jsonl::decision_line(&d));
                }
                Err(e) => out.extend_from_slice(&e.at_line(n).to_line()),
            }
        }
        out
    })
    .await
    .unwrap_or_else(|_| {
        let e = LineError::new(
            None,
            format!(
                "internal error: lines {first} to {} were not decided",
                *next_line - 1
            ),
            ErrorKind::Audit,
        );
        e.to_line()
    });
    tx.send(Ok(Bytes::from(out))).await.map_err(|_| ())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CheckRequest {
    text: String,
}

/// `POST /v1/check`: `{"text": …}` → what `shenhe check --json` prints (the engine's
/// decision alone: nothing recorded, no escalation).
pub async fn check(State(app): State<Arc<App>>, body: Result<Bytes, BytesRejection>) -> Response {
    let body = match body {
        Ok(b) => b,
        Err(r) => return body_refused(r),
    };
    let req: CheckRequest = match serde_json::from_slice(&body) {
        Ok(r) => r,
        Err(e) => {
            return error(
                StatusCode::BAD_REQUEST,
                format!("expected {{\"text\": \"…\"}}: {e}"),
            )
        }
    };
    let max = app.limits.max_post_bytes;
    if req.text.len() > max {
        return error(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!("text over {max} bytes (max_post_bytes)"),
        );
    }
    match blocking(move || {
        app.pipeline
            .engine()
            .load()
            .scan(&Post::from_text(req.text))
    })
    .await
    {
        Ok(d) => {
            let body = shenhe::jsonl::decision_json(&d);
            let mut res = json_bytes(StatusCode::OK, body);
            res.extensions_mut()
                .insert(Outcome(d.action.as_str().into()));
            res
        }
        Err(res) => res,
    }
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct ReloadRequest {
    #[serde(default)]
    rules: Option<Vec<std::path::PathBuf>>,
}

/// `POST /admin/reload`: `{"rules": [PATH…]}`, or no body for the configured rules. The new
/// rule set replaces the old one atomically; one that does not load leaves the old one
/// serving and gets 422 naming file:line:column.
pub async fn reload(
    State(app): State<Arc<App>>,
    Extension(caller): Extension<Caller>,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let body = match body {
        Ok(b) => b,
        Err(r) => return body_refused(r),
    };
    let req: ReloadRequest = if body.iter().all(u8::is_ascii_whitespace) {
        ReloadRequest::default()
    } else {
        match serde_json::from_slice(&body) {
            Ok(r) => r,
            Err(e) => {
                return error(
                    StatusCode::BAD_REQUEST,
                    format!("expected {{\"rules\": [\"PATH\", …]}} or no body: {e}"),
                )
            }
        }
    };
    match app.reload(req.rules, &caller.name).await {
        Ok(summary) => (StatusCode::OK, axum::Json(summary)).into_response(),
        Err(e) => error(StatusCode::UNPROCESSABLE_ENTITY, e),
    }
}

/// `GET /admin/ruleset`: the rule set in force.
pub async fn ruleset(State(app): State<Arc<App>>) -> Response {
    axum::Json(app.ruleset_summary()).into_response()
}

/// `GET /healthz`: the process answers.
pub async fn healthz() -> Response {
    axum::Json(serde_json::json!({ "status": "ok" })).into_response()
}

/// `GET /readyz`: rules loaded and, with an audit store, its last commit succeeded (after a
/// failure, the service's own check commits every few seconds until one succeeds).
pub async fn readyz(State(app): State<Arc<App>>) -> Response {
    let failing = app.pipeline.audit_figures().and_then(|f| f.last_error);
    match failing {
        None => axum::Json(serde_json::json!({
            "status": "ready",
            "ruleset": app.ruleset_summary()["ruleset"],
        }))
        .into_response(),
        Some(e) => error(
            StatusCode::SERVICE_UNAVAILABLE,
            format!("the audit store's last commit failed: {e}"),
        ),
    }
}

/// `GET /metrics`: Prometheus text.
pub async fn metrics(State(app): State<Arc<App>>) -> Response {
    let mut text = app.metrics.render();
    text.push_str(&super::observe::render_state(&app));
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        text,
    )
        .into_response()
}

/// Any other path.
pub async fn not_found() -> Response {
    error(StatusCode::NOT_FOUND, "no such route")
}
