//! What the service says about itself: one structured log line per request, Prometheus
//! metrics, and the JSON error bodies every route shares.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use axum::extract::{ConnectInfo, MatchedPath, Request, State};
use axum::http::{HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use shenhe::Decision;

use super::auth::Caller;
use super::App;

/// The request's id: in the log line, the `X-Request-Id` header and the compat routes'
/// `requestId`.
#[derive(Clone, Debug)]
pub struct RequestId(pub String);

/// What a route decided, for the log line: an action, or a count of lines for a batch.
#[derive(Clone, Debug)]
pub struct Outcome(pub String);

/// Latency buckets, in seconds: from half a millisecond (a post decided in memory) to ten
/// seconds (a large batch).
const BUCKETS: &[f64] = &[
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// Installs the process's metrics recorder.
pub fn install_metrics() -> anyhow::Result<PrometheusHandle> {
    Ok(PrometheusBuilder::new()
        .set_buckets_for_metric(Matcher::Suffix("_seconds".into()), BUCKETS)?
        .install_recorder()?)
}

/// Logs and counts every request: id, key name, route, status, latency, outcome. Never a
/// post's text or personal fields.
pub async fn observe(State(app): State<Arc<App>>, mut req: Request, next: Next) -> Response {
    let started = Instant::now();
    let id = app.next_request_id();
    req.extensions_mut().insert(RequestId(id.clone()));
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map_or("unmatched", |p| p.as_str())
        .to_owned();
    let method = req.method().clone();
    let peer = req
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0.to_string())
        .unwrap_or_default();
    let mut res = next.run(req).await;
    let seconds = started.elapsed().as_secs_f64();
    let status = res.status().as_u16();
    let key = res.extensions().get::<Caller>().map(|c| c.name.clone());
    let outcome = res.extensions().get::<Outcome>().map(|o| o.0.clone());
    metrics::counter!("shenhe_http_requests_total", "route" => route.clone(), "status" => status.to_string())
        .increment(1);
    metrics::histogram!("shenhe_http_request_duration_seconds", "route" => route.clone())
        .record(seconds);
    tracing::info!(
        target: "shenhe::http",
        request_id = %id,
        key = key.as_deref().unwrap_or("-"),
        peer = %peer,
        method = %method,
        route = %route,
        status,
        latency_ms = (seconds * 1e6).round() / 1e3,
        outcome = outcome.as_deref().unwrap_or("-"),
    );
    if let Ok(v) = HeaderValue::from_str(&id) {
        res.headers_mut().insert("x-request-id", v);
    }
    res
}

/// Counts a decision by action and by category.
pub fn count_decision(d: &Decision) {
    metrics::counter!("shenhe_decisions_total", "action" => d.action.as_str()).increment(1);
    for c in &d.categories {
        metrics::counter!("shenhe_decision_categories_total", "category" => c.to_string())
            .increment(1);
    }
}

/// `{"error": …, "status": …}` with that status.
pub fn error(status: StatusCode, message: impl Into<String>) -> Response {
    let body = serde_json::json!({ "error": message.into(), "status": status.as_u16() });
    (status, axum::Json(body)).into_response()
}

/// The metrics the recorder does not hold: the rule set in force (a label set that changes
/// on reload), the audit store's commits, uptime.
pub fn render_state(app: &App) -> String {
    let engine = app.pipeline.engine().load();
    let info = engine.rules().info();
    let mut out = String::new();
    out.push_str("# HELP shenhe_ruleset_info The rule set in force (value 1).\n");
    out.push_str("# TYPE shenhe_ruleset_info gauge\n");
    out.push_str(&format!(
        "shenhe_ruleset_info{{name=\"{}\",version=\"{}\",hash=\"{}\"}} 1\n",
        label(&info.name),
        label(&info.version),
        label(&info.hash)
    ));
    out.push_str("# HELP shenhe_ruleset_rules Rules in the rule set in force.\n");
    out.push_str("# TYPE shenhe_ruleset_rules gauge\n");
    out.push_str(&format!(
        "shenhe_ruleset_rules {}\n",
        engine.rules().rules().len()
    ));
    if let Some(a) = app.pipeline.audit_figures() {
        let rows = [
            (
                "shenhe_audit_commits_total",
                "counter",
                "Audit store commits (disk flushes).",
                a.commits as f64,
            ),
            (
                "shenhe_audit_records_total",
                "counter",
                "Decisions recorded in the audit store.",
                a.records as f64,
            ),
            (
                "shenhe_audit_commit_seconds_total",
                "counter",
                "Time spent committing to the audit store.",
                a.commit_seconds,
            ),
            (
                "shenhe_audit_healthy",
                "gauge",
                "1 when the last audit commit succeeded.",
                if a.last_error.is_none() { 1.0 } else { 0.0 },
            ),
        ];
        for (name, kind, help, value) in rows {
            out.push_str(&format!(
                "# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {value}\n"
            ));
        }
    }
    out.push_str(&super::backups::render(app));
    out.push_str("# HELP shenhe_uptime_seconds Seconds since the service started.\n");
    out.push_str("# TYPE shenhe_uptime_seconds gauge\n");
    out.push_str(&format!(
        "shenhe_uptime_seconds {:.3}\n",
        app.started.elapsed().as_secs_f64()
    ));
    out
}

/// A Prometheus label value: backslash, quote and newline escaped.
fn label(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}
