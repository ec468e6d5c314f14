//! What the service says about itself: one structured log line per request, Prometheus
//! metrics, and the JSON error bodies every route shares.

use std::borrow::Cow;
use std::collections::HashMap;
use std::fmt::{self, Write as _};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use axum::extract::{ConnectInfo, MatchedPath, Request, State};
use axum::http::{HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use shenhe::Decision;
use tracing::field::{Field, Visit};
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields};
use tracing_subscriber::registry::LookupSpan;

use super::auth::Caller;
use super::App;

/// The request's id: in the log line, the `X-Request-Id` header and the compat routes'
/// `requestId`.
#[derive(Clone, Debug)]
pub struct RequestId(pub String);

/// What a route decided, for the log line: an action, or a count of lines for a batch.
#[derive(Clone, Debug)]
pub struct Outcome(pub Cow<'static, str>);

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
    // Borrowed or copied, not formatted, until the line is written: a request's own
    // allocations are a measurable share of its time under load.
    let matched = req.extensions().get::<MatchedPath>().cloned();
    let route = matched.as_ref().map_or("unmatched", |p| p.as_str());
    let method = req.method().clone();
    let peer = req
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0);
    let mut res = next.run(req).await;
    let seconds = started.elapsed().as_secs_f64();
    let status = res.status().as_u16();
    let key = res.extensions_mut().remove::<Caller>();
    let outcome = res.extensions_mut().remove::<Outcome>();
    counter(
        "shenhe_http_requests_total",
        &[("route", route), ("status", status_label(status))],
    )
    .increment(1);
    histogram("shenhe_http_request_duration_seconds", &[("route", route)]).record(seconds);
    tracing::info!(
        target: "shenhe::http",
        request_id = %id,
        key = key.as_ref().map_or("-", |c| &*c.name),
        peer = %Peer(peer),
        method = %method,
        route = %route,
        status,
        latency_ms = (seconds * 1e6).round() / 1e3,
        outcome = outcome.as_ref().map_or("-", |o| &*o.0),
    );
    if let Ok(v) = HeaderValue::from_str(&id) {
        res.headers_mut().insert("x-request-id", v);
    }
    res
}

/// The peer's address as the log line shows it: empty when unknown.
struct Peer(Option<SocketAddr>);

impl fmt::Display for Peer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            Some(a) => a.fmt(f),
            None => Ok(()),
        }
    }
}

/// Where log lines go: standard error, one write a line, except on the service's worker
/// threads, which keep their lines and write them together when they have nothing else to
/// do (tokio parks them: [`park_log`]), when 16 KiB are waiting, or when they stop. Under
/// load a worker seldom parks, and one write per line was ~3% of the service's CPU and
/// 6-8% of its posts/s (wrk at 16 connections, sealed store, 3 alternated runs). A line
/// waits at most until its worker is idle or 16 KiB (about 50 request lines) have
/// followed it; a `kill -9` loses the lines still waiting (the audit store, not the log,
/// is the record of what was decided).
pub struct LogOut;

const LOG_BUFFER: usize = 16 << 10;

thread_local! {
    /// Whether this thread keeps its lines (a worker: set when it first parks).
    static KEEPS_LINES: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
    static LINES: std::cell::RefCell<Vec<u8>> = const { std::cell::RefCell::new(Vec::new()) };
}

impl std::io::Write for LogOut {
    fn write(&mut self, line: &[u8]) -> std::io::Result<usize> {
        if !KEEPS_LINES.with(std::cell::Cell::get) {
            return std::io::stderr().write(line);
        }
        let full = LINES.with(|l| {
            let mut l = l.borrow_mut();
            l.extend_from_slice(line);
            l.len() >= LOG_BUFFER
        });
        if full {
            flush_log();
        }
        Ok(line.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// A worker thread is about to sleep: writes its lines, and from now on it keeps them.
pub fn park_log() {
    KEEPS_LINES.with(|k| k.set(true));
    flush_log();
}

/// Writes this thread's waiting lines.
pub fn flush_log() {
    LINES.with(|l| {
        let mut l = l.borrow_mut();
        if !l.is_empty() {
            let _ = std::io::Write::write_all(&mut std::io::stderr().lock(), &l);
            l.clear();
        }
    });
}

/// Counts a decision by action and by category.
pub fn count_decision(d: &Decision) {
    counter("shenhe_decisions_total", &[("action", d.action.as_str())]).increment(1);
    for c in &d.categories {
        let mut digits = [0u8; 5];
        let mut at = digits.len();
        let mut n = *c;
        loop {
            at -= 1;
            digits[at] = b'0' + (n % 10) as u8;
            n /= 10;
            if n == 0 {
                break;
            }
        }
        let category = std::str::from_utf8(&digits[at..]).unwrap_or_default();
        counter(
            "shenhe_decision_categories_total",
            &[("category", category)],
        )
        .increment(1);
    }
}

fn status_label(status: u16) -> &'static str {
    match status {
        200 => "200",
        400 => "400",
        401 => "401",
        403 => "403",
        404 => "404",
        413 => "413",
        429 => "429",
        503 => "503",
        // Rare: leaked once per distinct status, which are at most a few hundred.
        other => {
            static OTHERS: std::sync::Mutex<Vec<(u16, &'static str)>> =
                std::sync::Mutex::new(Vec::new());
            let mut known = OTHERS.lock().unwrap_or_else(|e| e.into_inner());
            if let Some((_, s)) = known.iter().find(|(n, _)| *n == other) {
                return s;
            }
            let s: &'static str = Box::leak(other.to_string().into_boxed_str());
            known.push((other, s));
            s
        }
    }
}

thread_local! {
    /// This thread's handles on the request metrics, by name and label values (the
    /// recorder's own lookup builds and hashes a key of owned strings at every call: with
    /// the log line, a tenth of a request's time under load), and the key being looked up.
    static HANDLES: std::cell::RefCell<(String, HashMap<String, Handle>)> = Default::default();
}

#[derive(Clone)]
enum Handle {
    Counter(metrics::Counter),
    Histogram(metrics::Histogram),
}

/// The handle on `name` with `labels`, from this thread's cache or registered now.
fn handle(
    name: &'static str,
    labels: &[(&'static str, &str)],
    register: impl FnOnce(Vec<metrics::Label>) -> Handle,
) -> Handle {
    HANDLES.with(|h| {
        let (key, cache) = &mut *h.borrow_mut();
        key.clear();
        key.push_str(name);
        for (_, v) in labels {
            key.push('\0');
            key.push_str(v);
        }
        if let Some(found) = cache.get(key.as_str()) {
            return found.clone();
        }
        let made = register(
            labels
                .iter()
                .map(|(k, v)| metrics::Label::new(*k, v.to_string()))
                .collect(),
        );
        cache.insert(key.clone(), made.clone());
        made
    })
}

/// The counter `name` with `labels`.
pub fn counter(name: &'static str, labels: &[(&'static str, &str)]) -> metrics::Counter {
    match handle(name, labels, |l| {
        Handle::Counter(metrics::counter!(name, l))
    }) {
        Handle::Counter(c) => c,
        Handle::Histogram(_) => metrics::counter!(name),
    }
}

/// The histogram `name` with `labels`.
pub fn histogram(name: &'static str, labels: &[(&'static str, &str)]) -> metrics::Histogram {
    match handle(name, labels, |l| {
        Handle::Histogram(metrics::histogram!(name, l))
    }) {
        Handle::Histogram(h) => h,
        Handle::Counter(_) => metrics::histogram!(name),
    }
}

/// The log's line format: one JSON object a line, `timestamp` (UTC, microseconds), `level`,
/// the event's fields (`message` among them when it has one), `target`; as
/// tracing-subscriber's JSON format with flattened events writes them, written straight
/// into the line (its format serialises every value through serde and formats each
/// displayed field into a string of its own first: 1.5 µs a request line against 0.56).
pub struct JsonLines;

impl<S, N> FormatEvent<S, N> for JsonLines
where
    S: tracing::Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(
        &self,
        _ctx: &FmtContext<'_, S, N>,
        mut out: Writer<'_>,
        event: &tracing::Event<'_>,
    ) -> fmt::Result {
        let meta = event.metadata();
        write!(
            out,
            "{{\"timestamp\":\"{:.6}\",\"level\":\"{}\"",
            jiff::Timestamp::now(),
            meta.level()
        )?;
        let mut fields = JsonFields {
            out: &mut out,
            result: Ok(()),
        };
        event.record(&mut fields);
        fields.result?;
        out.write_str(",\"target\":\"")?;
        Escaped(&mut out).write_str(meta.target())?;
        out.write_str("\"}\n")
    }
}

/// Writes what it is given as the inside of a JSON string.
struct Escaped<'a, W: fmt::Write>(&'a mut W);

impl<W: fmt::Write> fmt::Write for Escaped<'_, W> {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        let mut plain = 0;
        for (i, b) in s.bytes().enumerate() {
            let escape = match b {
                b'"' => "\\\"",
                b'\\' => "\\\\",
                b'\n' => "\\n",
                b'\r' => "\\r",
                b'\t' => "\\t",
                0..=0x1f | 0x7f => "",
                _ => continue,
            };
            self.0.write_str(&s[plain..i])?;
            if escape.is_empty() {
                write!(self.0, "\\u{b:04x}")?;
            } else {
                self.0.write_str(escape)?;
            }
            plain = i + 1;
        }
        self.0.write_str(&s[plain..])
    }
}

/// An event's fields as `,"name":value` pairs.
struct JsonFields<'a, 'w> {
    out: &'a mut Writer<'w>,
    result: fmt::Result,
}

impl JsonFields<'_, '_> {
    fn field(&mut self, field: &Field, value: impl FnOnce(&mut Writer<'_>) -> fmt::Result) {
        if self.result.is_err() {
            return;
        }
        self.result = (|| {
            self.out.write_str(",\"")?;
            Escaped(&mut *self.out).write_str(field.name())?;
            self.out.write_str("\":")?;
            value(self.out)
        })();
    }
}

impl Visit for JsonFields<'_, '_> {
    fn record_str(&mut self, field: &Field, value: &str) {
        self.field(field, |out| {
            out.write_char('"')?;
            Escaped(out).write_str(value)?;
            out.write_char('"')
        });
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.field(field, |out| {
            out.write_char('"')?;
            write!(Escaped(out), "{value:?}")?;
            out.write_char('"')
        });
    }

    fn record_error(&mut self, field: &Field, value: &(dyn std::error::Error + 'static)) {
        self.field(field, |out| {
            out.write_char('"')?;
            write!(Escaped(out), "{value}")?;
            out.write_char('"')
        });
    }

    fn record_u64(&mut self, field: &Field, value: u64) {
        self.field(field, |out| write!(out, "{value}"));
    }

    fn record_i64(&mut self, field: &Field, value: i64) {
        self.field(field, |out| write!(out, "{value}"));
    }

    fn record_bool(&mut self, field: &Field, value: bool) {
        self.field(field, |out| write!(out, "{value}"));
    }

    fn record_f64(&mut self, field: &Field, value: f64) {
        // JSON has no NaN or infinity: null, as serde_json writes them.
        self.field(field, |out| {
            if value.is_finite() {
                write!(out, "{value}")
            } else {
                out.write_str("null")
            }
        });
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

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use super::*;

    /// The lines `emit` logs at info and above, in the service's format, parsed.
    fn logged(emit: impl FnOnce()) -> Vec<serde_json::Value> {
        let buffer = Arc::new(Mutex::new(Vec::<u8>::new()));
        let sink = buffer.clone();
        let subscriber = tracing_subscriber::fmt()
            .event_format(JsonLines)
            .with_max_level(tracing::Level::INFO)
            .with_writer(move || Sink(sink.clone()))
            .finish();
        tracing::subscriber::with_default(subscriber, emit);
        let text = String::from_utf8(buffer.lock().unwrap().clone()).unwrap();
        text.lines()
            .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
            .collect()
    }

    struct Sink(Arc<Mutex<Vec<u8>>>);

    impl std::io::Write for Sink {
        fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(b);
            Ok(b.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn log_lines_are_json_objects_with_every_field_escaped_and_typed() {
        let peer: SocketAddr = "127.0.0.1:33364".parse().unwrap();
        let lines = logged(|| {
            tracing::info!(
                target: "shenhe::http",
                request_id = %"6b133f3b-0",
                key = "forum \"main\"\\\n\t\u{1}",
                peer = %peer,
                status = 200u16,
                delta = -3i64,
                latency_ms = 0.731,
                ratio = f64::NAN,
                sealed = true,
                outcome = "审核 allow",
            );
            tracing::warn!(target: "shenhe::serve", records = 5u64, "reload failed: {}", "rules.toml:3:7 \"x\"");
            tracing::debug!("not at info");
        });
        assert_eq!(lines.len(), 2, "{lines:?}");
        let a = &lines[0];
        assert_eq!(a["level"], "INFO");
        assert_eq!(a["target"], "shenhe::http");
        assert_eq!(a["request_id"], "6b133f3b-0");
        assert_eq!(a["key"], "forum \"main\"\\\n\t\u{1}");
        assert_eq!(a["peer"], "127.0.0.1:33364");
        assert_eq!(a["status"], 200);
        assert_eq!(a["delta"], -3);
        assert_eq!(a["latency_ms"], 0.731);
        assert!(a["ratio"].is_null());
        assert_eq!(a["sealed"], true);
        assert_eq!(a["outcome"], "审核 allow");
        let stamp: jiff::Timestamp = a["timestamp"].as_str().unwrap().parse().unwrap();
        assert!((jiff::Timestamp::now() - stamp).get_seconds().abs() < 60);
        let b = &lines[1];
        assert_eq!(b["level"], "WARN");
        assert_eq!(b["message"], "reload failed: rules.toml:3:7 \"x\"");
        assert_eq!(b["records"], 5);
    }

    #[test]
    fn a_worker_keeps_its_lines_until_it_parks_or_16_kib_wait() {
        use std::io::Write;
        let waiting = || LINES.with(|l| l.borrow().len());
        std::thread::spawn(move || {
            LogOut
                .write_all(b"{\"before\":\"parking: written at once\"}\n")
                .unwrap();
            assert_eq!(waiting(), 0);
            park_log();
            let line = b"{\"level\":\"INFO\"}\n";
            LogOut.write_all(line).unwrap();
            LogOut.write_all(line).unwrap();
            assert_eq!(waiting(), 2 * line.len(), "kept");
            park_log();
            assert_eq!(waiting(), 0, "written when the thread parks");
            // A line as long as the buffer (blank, so that the test's output stays quiet).
            let mut long = vec![b' '; LOG_BUFFER - 1];
            long.push(b'\n');
            LogOut.write_all(line).unwrap();
            LogOut.write_all(&long).unwrap();
            assert_eq!(waiting(), 0, "written once 16 KiB wait");
        })
        .join()
        .unwrap();
    }

    #[test]
    fn a_label_set_has_one_handle_whatever_thread_or_call_asks() {
        let recorder = metrics_exporter_prometheus::PrometheusBuilder::new().build_recorder();
        let handle = recorder.handle();
        metrics::with_local_recorder(&recorder, || {
            for status in [200, 200, 413, 599, 599] {
                counter(
                    "t_requests_total",
                    &[("route", "/v1/moderate"), ("status", status_label(status))],
                )
                .increment(1);
            }
            counter(
                "t_requests_total",
                &[("route", "/v1/check"), ("status", "200")],
            )
            .increment(2);
            histogram("t_seconds", &[("route", "/v1/check")]).record(0.25);
        });
        let text = handle.render();
        for line in [
            "t_requests_total{route=\"/v1/moderate\",status=\"200\"} 2",
            "t_requests_total{route=\"/v1/moderate\",status=\"413\"} 1",
            "t_requests_total{route=\"/v1/moderate\",status=\"599\"} 2",
            "t_requests_total{route=\"/v1/check\",status=\"200\"} 2",
            "t_seconds_count{route=\"/v1/check\"} 1",
        ] {
            assert!(text.contains(line), "{line} not in\n{text}");
        }
    }
}
