//! `shenhe serve`: the HTTP moderation service over the library's pipeline, for back ends
//! that cannot link a library (PHP-FPM, Ruby, Java). Routes in `routes.rs`, the Shumei
//! wire-compatible route in `shumei.rs`, keys and roles in `auth.rs`, logs and metrics in
//! `observe.rs`, the config file in `config.rs`.
//!
//! A 2xx answer to a moderation call means the decision's audit record is committed (the
//! pipeline's group commit). SIGTERM (or Ctrl-C) stops accepting, lets calls in flight
//! finish, closes the audit run and exits 0. SIGHUP reloads the configured rules and
//! the config's keys and users. Scheduled backups of the audit store in `backups.rs`,
//! reads of personal data in `records.rs`, key rotation in `rotate.rs`.

mod auth;
mod backups;
mod config;
mod console;
mod observe;
mod records;
mod review;
mod rotate;
mod routes;
mod shumei;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use axum::extract::DefaultBodyLimit;
use axum::routing::{get, post};
use axum::Router;
use axum_server::accept::NoDelayAcceptor;
use metrics_exporter_prometheus::PrometheusHandle;
use shenhe::audit::{AuditKey, AuditStore};
use shenhe::review::ReviewQueue;
use shenhe::{Engine, EngineHandle, Limits, Pipeline, RuleSet};
use tower_http::timeout::{RequestBodyTimeoutLayer, TimeoutLayer};

use auth::{Credentials, Role};
use config::ServerConfig;

#[derive(clap::Args)]
#[command(args_conflicts_with_subcommands = true)]
pub struct Args {
    #[command(subcommand)]
    command: Option<KeyCommand>,
    /// The service's configuration (TOML, table [server]); flags override it.
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    /// Address and port to listen on (default 127.0.0.1:8080; port 0 picks a free one).
    #[arg(long, value_name = "ADDR")]
    listen: Option<String>,
    /// Rule file or directory (repeatable), instead of the config's; the bundled rules
    /// when neither gives any.
    #[arg(long = "rules", value_name = "PATH")]
    rules: Vec<PathBuf>,
    /// Audit store (SQLite): every decision is committed before it is answered.
    #[arg(long, value_name = "DB")]
    audit: Option<PathBuf>,
    /// The key that seals personal fields in the audit store (default: the config's, else
    /// SHENHE_AUDIT_KEY).
    #[arg(long, value_name = "FILE")]
    audit_key_file: Option<PathBuf>,
    /// Reports directory.
    #[arg(long, value_name = "DIR")]
    reports: Option<PathBuf>,
    /// TLS certificate chain (PEM).
    #[arg(long, value_name = "PEM", requires = "tls_key")]
    tls_cert: Option<PathBuf>,
    /// TLS private key (PEM).
    #[arg(long, value_name = "PEM", requires = "tls_cert")]
    tls_key: Option<PathBuf>,
}

#[derive(clap::Subcommand)]
enum KeyCommand {
    /// API keys.
    Key {
        #[command(subcommand)]
        command: KeyAction,
    },
    /// Console users (log in by password).
    User {
        #[command(subcommand)]
        command: UserAction,
    },
}

#[derive(clap::Subcommand)]
enum UserAction {
    /// Read a password (the first line of standard input) and print the config block
    /// with its argon2 hash.
    New {
        /// The user's name (recorded with their verdicts).
        #[arg(long)]
        name: String,
        /// What they may do (repeatable): review, and audit to see personal fields.
        #[arg(long = "role", value_name = "ROLE", required = true)]
        roles: Vec<Role>,
    },
}

#[derive(clap::Subcommand)]
enum KeyAction {
    /// Print a fresh API key (once: only its SHA-256 is kept) and the config block for it.
    New {
        /// Who will call with it (recorded in the logs).
        #[arg(long)]
        name: String,
        /// What it may do (repeatable).
        #[arg(long = "role", value_name = "ROLE", required = true)]
        roles: Vec<Role>,
    },
    /// Replace the key of a name in the config file: a new key (printed once) with the same
    /// roles, the old one kept working until the grace period ends. The service takes it at
    /// its next reload (SIGHUP, POST /admin/reload) and records the change then.
    Rotate {
        /// The key's name.
        #[arg(long)]
        name: String,
        /// How long the old key keeps working: 24h, 90m, 0s (at once).
        #[arg(long, value_name = "DURATION", default_value = "24h")]
        grace: String,
        /// The service's config file, edited in place.
        #[arg(long, value_name = "FILE")]
        config: PathBuf,
    },
}

/// What every route shares.
pub struct App {
    pipeline: Pipeline,
    /// The keys and console users in force (replaced whole by a reload of the config).
    credentials: arc_swap::ArcSwap<Credentials>,
    /// The config file, read again at each reload for its keys and users.
    config_path: Option<PathBuf>,
    config: ServerConfig,
    /// Scheduled backups of the audit store.
    backups: backups::Backups,
    limits: Limits,
    /// No reports to write: small posts are scanned on the async threads, and their records
    /// go to the group commit, which the task awaits without holding a thread.
    inline: bool,
    metrics: PrometheusHandle,
    started: Instant,
    requests: AtomicU64,
    /// One reload at a time.
    reloading: tokio::sync::Mutex<()>,
    /// The review queue, beside the audit store (none without one).
    reviews: Option<Arc<ReviewQueue>>,
    /// One verdict at a time (a second on the same item is then refused, not recorded).
    verdicts: tokio::sync::Mutex<()>,
    /// Wakes the callback delivery after a verdict.
    callbacks: tokio::sync::Notify,
    /// The console's logged-in sessions.
    sessions: console::Sessions,
    /// The audit store's key, for the console's reads of the store.
    audit_key: Option<AuditKey>,
}

impl App {
    fn next_request_id(&self) -> String {
        let n = self.requests.fetch_add(1, Ordering::Relaxed);
        format!("{:08x}-{n:x}", self.started_epoch())
    }

    /// The start time in seconds, distinguishing request ids across restarts.
    fn started_epoch(&self) -> u32 {
        static EPOCH: std::sync::OnceLock<u32> = std::sync::OnceLock::new();
        *EPOCH.get_or_init(|| jiff::Timestamp::now().as_second() as u32)
    }

    fn ruleset_summary(&self) -> serde_json::Value {
        let engine = self.pipeline.engine().load();
        let info = engine.rules().info();
        serde_json::json!({
            "ruleset": { "name": info.name, "version": info.version, "hash": info.hash },
            "rules": engine.rules().rules().len(),
        })
    }

    /// Loads `paths` (the configured rules when `None`) and swaps them in, at the request
    /// of `who` (a key's name, or the signal). The reload is an audit record (who, the
    /// paths, the new rule set), committed before the swap: a reload that cannot be
    /// recorded does not happen. On error the rules in force stay, and the message names
    /// file:line:column.
    async fn reload(
        self: &Arc<Self>,
        paths: Option<Vec<PathBuf>>,
        who: &str,
    ) -> Result<serde_json::Value, String> {
        let _one = self.reloading.lock().await;
        let paths = paths.unwrap_or_else(|| self.config.rules.clone());
        let limits = self.limits;
        let recorder = self.clone();
        let who = who.to_owned();
        let built = tokio::task::spawn_blocking(move || {
            let credentials = recorder.reread_credentials()?;
            let engine = build_engine(&paths, limits).map_err(|e| e.to_string())?;
            let info = engine.rules().info();
            let mut events = vec![serde_json::json!({
                "kind": "reload",
                "rules": paths,
                "ruleset": { "name": info.name, "version": info.version, "hash": info.hash },
            })];
            if let Some(c) = &credentials {
                events.extend(recorder.credentials_event(c).map_err(|e| e.to_string())?);
            }
            recorder
                .pipeline
                .record_events(&who, &events)
                .map_err(|e| {
                    format!("the reload could not be recorded, so it was not made: {e}")
                })?;
            Ok::<_, String>((engine, credentials))
        })
        .await
        .map_err(|_| "internal error while loading the rules".to_owned())
        .and_then(|r| r);
        match built {
            Ok((engine, credentials)) => {
                if let Some(c) = credentials {
                    c.keys.keep_buckets_of(&self.credentials.load().keys);
                    self.credentials.store(Arc::new(c));
                }
                self.pipeline.engine().reload(engine);
                metrics::counter!("shenhe_reloads_total", "outcome" => "ok").increment(1);
                let summary = self.ruleset_summary();
                tracing::info!(target: "shenhe::rules", ruleset = %summary["ruleset"], "rules reloaded");
                Ok(summary)
            }
            Err(e) => {
                metrics::counter!("shenhe_reloads_total", "outcome" => "error").increment(1);
                tracing::warn!(target: "shenhe::rules", error = %e, "reload refused: the rules in force stay");
                Err(e)
            }
        }
    }
}

impl App {
    /// The keys and users of the config file as it is now (none when the service was
    /// started without one); a config that no longer loads refuses the reload.
    fn reread_credentials(&self) -> Result<Option<Credentials>, String> {
        let Some(path) = &self.config_path else {
            return Ok(None);
        };
        let c = ServerConfig::load(path)
            .and_then(|c| c.check().map(|_| c))
            .map_err(|e| format!("{e:#}: the rules, keys and users in force stay"))?;
        Ok(Some(Credentials::new(
            &c.keys,
            &c.users,
            self.config.rate_limit,
        )))
    }

    /// The audit event that records `c` when its keys or users differ from those the
    /// store last recorded (none when they are the same, or there is no store):
    /// `{"kind":"credentials","keys":…,"users":…,"changes":[…]}`, never a key or hash whole.
    fn credentials_event(&self, c: &Credentials) -> shenhe::Result<Option<serde_json::Value>> {
        let before = self
            .pipeline
            .last_event("credentials")?
            .and_then(|r| r.event)
            .unwrap_or_else(|| serde_json::json!({ "keys": [], "users": [] }));
        let before = serde_json::json!({ "keys": before["keys"], "users": before["users"] });
        if before == c.summary {
            return Ok(None);
        }
        let mut event = c.summary.clone();
        event["kind"] = "credentials".into();
        event["changes"] = auth::changes(&before, &c.summary).into();
        Ok(Some(event))
    }
}

/// The engine for `paths` (the bundled rules when none) compiled with `limits`, at start
/// and on every reload, with what its scans load on first use already loaded: the service
/// listens, or swaps the new rules in, only then, so the first calls after a start or a
/// reload do not wait for jieba's dictionary (they did, up to 265 ms at 16 connections,
/// with every connection queued behind them).
fn build_engine(paths: &[PathBuf], limits: Limits) -> shenhe::Result<Engine> {
    let rules = if paths.is_empty() {
        RuleSet::bundled()
    } else {
        RuleSet::from_paths(paths)?
    };
    let engine = Engine::with_limits(&rules, limits)?;
    engine.warm_up();
    Ok(engine)
}

/// Writes `text` to standard output; a reader gone before the end (`| head -1` keeps the
/// key and closes the pipe) is not an error. `print!` panicked there (exit 101, after the
/// key was shown).
fn out(text: &str) -> anyhow::Result<()> {
    use std::io::Write;
    let mut stdout = std::io::stdout().lock();
    match stdout
        .write_all(text.as_bytes())
        .and_then(|()| stdout.flush())
    {
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        written => written.context("writing to standard output"),
    }
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    match args.command {
        Some(KeyCommand::Key {
            command: KeyAction::New { name, roles },
        }) => {
            let (key, block) = auth::new_key(&name, &roles)?;
            out(&format!("{key}\n"))?;
            eprintln!(
                "shenhe serve: the key above is shown once; only its SHA-256 goes in the config:\n"
            );
            out(&format!("\n{block}"))?;
            return Ok(ExitCode::SUCCESS);
        }
        Some(KeyCommand::Key {
            command:
                KeyAction::Rotate {
                    name,
                    grace,
                    config,
                },
        }) => {
            let grace = rotate::grace(&grace)?;
            let r = rotate::rotate(&config, &name, grace, jiff::Timestamp::now())?;
            out(&format!("{}\n", r.key))?;
            eprintln!(
                "shenhe serve: key {name:?} rotated in {}: the key above is shown once; give it to {name}. \
                 The old key{} keep{} working until {}. The running service takes the change at its next \
                 reload (kill -HUP, or POST /admin/reload) and records it in the audit store then.",
                config.display(),
                if r.old == 1 { "" } else { "s" },
                if r.old == 1 { "s" } else { "" },
                jiff::Timestamp::from_second(r.until.as_second()).unwrap_or(r.until)
            );
            return Ok(ExitCode::SUCCESS);
        }
        Some(KeyCommand::User {
            command: UserAction::New { name, roles },
        }) => {
            let mut password = String::new();
            std::io::stdin()
                .read_line(&mut password)
                .context("reading the password from standard input")?;
            let password = password.trim_end_matches(['\n', '\r']);
            out(&auth::new_user(&name, password, &roles)?)?;
            return Ok(ExitCode::SUCCESS);
        }
        None => {}
    }
    let config = configure(&args)?;
    let addr = config.check()?;
    init_logs();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .on_thread_park(observe::park_log)
        .on_thread_stop(observe::flush_log)
        .enable_all()
        .build()
        .context("starting the service's threads")?;
    runtime.block_on(serve(config, args.config.clone(), addr))
}

/// The config file with the flags laid over it.
fn configure(args: &Args) -> anyhow::Result<ServerConfig> {
    let mut c = match &args.config {
        Some(path) => ServerConfig::load(path)?,
        None => ServerConfig::default(),
    };
    if let Some(l) = &args.listen {
        c.listen = l.clone();
    }
    if !args.rules.is_empty() {
        c.rules = args.rules.clone();
    }
    for (flag, slot) in [
        (&args.audit, &mut c.audit),
        (&args.audit_key_file, &mut c.audit_key_file),
        (&args.reports, &mut c.reports),
        (&args.tls_cert, &mut c.tls_cert),
        (&args.tls_key, &mut c.tls_key),
    ] {
        if flag.is_some() {
            slot.clone_from(flag);
        }
    }
    if c.audit_key_file.is_some() && c.audit.is_none() {
        bail!("an audit key file without an audit store (--audit DB or [server] audit)");
    }
    Ok(c)
}

/// Structured logs on standard error, one JSON object a line; `SHENHE_LOG` filters them
/// (default `info`). A worker thread keeps its lines until it has nothing to do, 16 KiB
/// wait, or it stops ([`observe::LogOut`]).
fn init_logs() {
    let filter = tracing_subscriber::EnvFilter::try_from_env("SHENHE_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    tracing_subscriber::fmt()
        .event_format(observe::JsonLines)
        .with_env_filter(filter)
        .with_writer(|| observe::LogOut)
        .init();
}

/// The pipeline, and the review queue beside its audit store (held posts go into it).
fn pipeline(
    config: &ServerConfig,
    engine: Engine,
    key: Option<AuditKey>,
) -> anyhow::Result<(Pipeline, Option<Arc<ReviewQueue>>)> {
    let mut b = Pipeline::builder(EngineHandle::new(engine))
        .escalation(config.escalation)
        .report_deadline_hours(config.report_deadline_hours)
        .run_files("shenhe serve", config.listen.as_str());
    let mut reviews = None;
    if let Some(db) = &config.audit {
        let store = AuditStore::open(db, key.clone()).with_context(|| db.display().to_string())?;
        let queue = ReviewQueue::open(db, key, config.review.callback_url.is_some())
            .with_context(|| db.display().to_string())?
            .with_deadline_hours(
                config
                    .review
                    .deadline_hours
                    .unwrap_or(shenhe::review::DEFAULT_REVIEW_HOURS),
            );
        let queue = Arc::new(queue);
        b = b.audit(store).review_queue(queue.clone());
        reviews = Some(queue);
    }
    if let Some(dir) = &config.reports {
        b = b.reports(dir);
    }
    let pipeline = match &config.audit {
        Some(db) => b.build().with_context(|| db.display().to_string())?,
        None => b.build()?,
    };
    Ok((pipeline, reviews))
}

async fn serve(
    config: ServerConfig,
    config_path: Option<PathBuf>,
    addr: SocketAddr,
) -> anyhow::Result<ExitCode> {
    let limits = Limits {
        max_hits: config.max_hits,
        max_post_bytes: config.max_post_bytes,
    };
    let rules = config.rules.clone();
    let engine = tokio::task::spawn_blocking(move || build_engine(&rules, limits)).await??;
    let audit_key = match (&config.audit, &config.audit_key_file) {
        (None, _) => None,
        (Some(_), Some(f)) => Some(AuditKey::from_file(f)?),
        (Some(_), None) => AuditKey::from_env()?,
    };
    let (pipeline, reviews) = pipeline(&config, engine, audit_key.clone())?;
    let metrics = observe::install_metrics()?;
    let tls = match (&config.tls_cert, &config.tls_key) {
        (Some(cert), Some(key)) => {
            let _ = rustls::crypto::ring::default_provider().install_default();
            Some(
                axum_server::tls_rustls::RustlsConfig::from_pem_file(cert, key)
                    .await
                    .with_context(|| {
                        format!(
                            "TLS certificate {} and key {}",
                            cert.display(),
                            key.display()
                        )
                    })?,
            )
        }
        _ => None,
    };
    let app = Arc::new(App {
        pipeline,
        credentials: arc_swap::ArcSwap::from_pointee(Credentials::new(
            &config.keys,
            &config.users,
            config.rate_limit,
        )),
        config_path,
        backups: backups::Backups::default(),
        limits,
        inline: config.reports.is_none(),
        metrics,
        started: Instant::now(),
        requests: AtomicU64::new(0),
        reloading: tokio::sync::Mutex::new(()),
        reviews,
        verdicts: tokio::sync::Mutex::new(()),
        callbacks: tokio::sync::Notify::new(),
        sessions: console::Sessions::default(),
        audit_key,
        config,
    });
    // The keys and users in force, recorded when they differ from the store's last record
    // of them (a rotation, a new user, an edit made while the service was down).
    let recorder = app.clone();
    tokio::task::spawn_blocking(move || {
        let c = recorder.credentials.load();
        match recorder.credentials_event(&c)? {
            Some(event) => recorder.pipeline.record_event("shenhe serve start", &event),
            None => Ok(()),
        }
    })
    .await?
    .context("recording the keys and users in force in the audit store")?;
    backups::start(&app)?;
    backups::start_prune(&app)?;
    let router = router(&app);
    let listener =
        std::net::TcpListener::bind(addr).with_context(|| format!("cannot listen on {addr}"))?;
    listener.set_nonblocking(true)?;
    let local = listener.local_addr()?;
    let handle = axum_server::Handle::new();
    tokio::spawn(signals(app.clone(), handle.clone()));
    tokio::spawn(upkeep(app.clone()));
    tokio::spawn(review::deliver(app.clone()));
    let scheme = if tls.is_some() { "https" } else { "http" };
    let summary = app.ruleset_summary();
    tracing::info!(target: "shenhe::serve", addr = %local, scheme, ruleset = %summary["ruleset"], keys = app.credentials.load().summary["keys"].as_array().map_or(0, Vec::len), audit = app.config.audit.is_some(), "listening");
    println!("shenhe serve: listening on {scheme}://{local}");
    let service = router.into_make_service_with_connect_info::<SocketAddr>();
    // TCP_NODELAY on every connection, as HTTP servers set it: a streamed batch answer goes
    // out in many small writes, and without it each could wait for the client's delayed
    // acknowledgement of the one before (Nagle). One-post answers, written in one piece,
    // measured the same either way.
    let served = match tls {
        Some(tls) => {
            let tls = axum_server::tls_rustls::RustlsAcceptor::new(tls).acceptor(NoDelayAcceptor);
            let mut server = axum_server::from_tcp(listener).acceptor(tls).handle(handle);
            slow_clients(server.http_builder());
            server.serve(service).await
        }
        None => {
            let mut server = axum_server::from_tcp(listener)
                .acceptor(NoDelayAcceptor)
                .handle(handle);
            slow_clients(server.http_builder());
            server.serve(service).await
        }
    };
    served.context("serving")?;
    // Every call in flight has been answered: close the audit run.
    let finished = app.pipeline.finish()?;
    tracing::info!(target: "shenhe::serve", records = finished.records, commits = finished.commits, "stopped");
    Ok(ExitCode::SUCCESS)
}

/// Clients that send their headers too slowly are cut off (the body has its own timeout).
fn slow_clients(b: &mut hyper_util::server::conn::auto::Builder<hyper_util::rt::TokioExecutor>) {
    b.http1()
        .timer(hyper_util::rt::TokioTimer::new())
        .header_read_timeout(Duration::from_secs(10));
}

fn router(app: &Arc<App>) -> Router {
    let c = &app.config;
    let post_limit = c.max_post_bytes.saturating_mul(2).saturating_add(64 << 10);
    let role = |r: Role| axum::middleware::from_fn_with_state((app.clone(), r), routes::require);
    let moderate = Router::new()
        .route("/v1/moderate", post(routes::moderate))
        .route("/v1/check", post(routes::check))
        .layer(DefaultBodyLimit::max(post_limit))
        .route_layer(role(Role::Moderate));
    // The batch route reads its body as a stream, bounded by max_batch_bytes itself.
    let batch = Router::new()
        .route("/v1/moderate/batch", post(routes::moderate_batch))
        .route_layer(role(Role::Moderate));
    let admin = Router::new()
        .route("/admin/reload", post(routes::reload))
        .route("/admin/ruleset", get(routes::ruleset))
        .layer(DefaultBodyLimit::max(64 << 10))
        .route_layer(role(Role::Admin));
    let audit = Router::new()
        .route("/v1/audit/records", get(records::records))
        .route_layer(role(Role::Audit));
    let reviews = Router::new()
        .route("/v1/reviews", get(review::list))
        .route("/v1/reviews/{id}", get(review::one))
        .route("/v1/reviews/{id}/claim", post(review::claim))
        .route("/v1/reviews/{id}/verdict", post(review::verdict))
        .layer(DefaultBodyLimit::max(64 << 10))
        .route_layer(role(Role::Review));
    // The console checks its viewer itself (a session cookie or a review key).
    let console = Router::new()
        .route("/console", get(console::queue))
        .route(
            "/console/login",
            get(console::login_page).post(console::login),
        )
        .route("/console/logout", post(console::logout))
        .route("/console/reviews/{id}", get(console::item))
        .route("/console/reviews/{id}/verdict", post(console::verdict))
        .route("/console/reports", get(console::reports))
        .route("/console/rules", get(console::rules))
        .route("/console/trail", get(console::trail))
        .layer(DefaultBodyLimit::max(64 << 10));
    let open = Router::new()
        .route("/compat/shumei/text/v4", post(shumei::text_v4))
        .layer(DefaultBodyLimit::max(post_limit))
        .route("/healthz", get(routes::healthz))
        .route("/readyz", get(routes::readyz))
        .route("/metrics", get(routes::metrics));
    let timeout = Duration::from_secs(c.request_timeout_secs.max(1));
    Router::new()
        .merge(moderate)
        .merge(batch)
        .merge(admin)
        .merge(audit)
        .merge(reviews)
        .merge(console)
        .merge(open)
        .fallback(routes::not_found)
        .layer(RequestBodyTimeoutLayer::new(timeout))
        .layer(TimeoutLayer::with_status_code(
            axum::http::StatusCode::REQUEST_TIMEOUT,
            timeout,
        ))
        .layer(axum::middleware::from_fn_with_state(
            app.clone(),
            observe::observe,
        ))
        .with_state(app.clone())
}

/// SIGTERM and SIGINT stop the service gracefully; SIGHUP reloads the configured rules.
async fn signals(app: Arc<App>, handle: axum_server::Handle) {
    use tokio::signal::unix::{signal, SignalKind};
    let (Ok(mut term), Ok(mut int), Ok(mut hup)) = (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
        signal(SignalKind::hangup()),
    ) else {
        tracing::error!(target: "shenhe::serve", "cannot watch signals: SIGTERM would not stop gracefully");
        return;
    };
    loop {
        tokio::select! {
            _ = term.recv() => break,
            _ = int.recv() => break,
            _ = hup.recv() => {
                let _ = app.reload(None, "SIGHUP").await;
            }
        }
    }
    tracing::info!(target: "shenhe::serve", in_flight = handle.connection_count(), "stopping: no new connections, finishing the calls in flight");
    handle.graceful_shutdown(Some(Duration::from_secs(30)));
}

/// After a failed commit the service is not ready (`/readyz` 503), and a balancer that
/// heeds it sends nothing more, so no post's commit would ever show the store working
/// again. So the service tries a commit of its own: a record that the store was checked
/// after that failure. Once it commits, the service is ready again; until then, every
/// upkeep tick tries again.
async fn check_a_failed_store(app: &Arc<App>) {
    let Some(failure) = app.pipeline.audit_figures().and_then(|f| f.last_error) else {
        return;
    };
    let worker = app.clone();
    let event = serde_json::json!({ "kind": "store_check", "after": failure });
    let checked =
        tokio::task::spawn_blocking(move || worker.pipeline.record_event("shenhe serve", &event))
            .await;
    match checked {
        Ok(Ok(())) => {
            tracing::info!(target: "shenhe::serve", after = %failure, "the audit store commits again: ready");
        }
        Ok(Err(e)) => {
            tracing::warn!(target: "shenhe::serve", error = %e, "the audit store still fails: not ready");
        }
        Err(_) => {
            tracing::error!(target: "shenhe::serve", "internal error while checking the audit store");
        }
    }
}

/// Housekeeping for the metrics recorder (histograms are drained into their buckets), the
/// check of a failed audit store, and the review queue's gauges.
async fn upkeep(app: Arc<App>) {
    let mut every = tokio::time::interval(Duration::from_secs(5));
    loop {
        every.tick().await;
        app.metrics.run_upkeep();
        check_a_failed_store(&app).await;
        if let Some(q) = app.reviews.clone() {
            let counts =
                tokio::task::spawn_blocking(move || (q.open_count(), q.undelivered())).await;
            if let Ok((Ok(open), Ok(undelivered))) = counts {
                metrics::gauge!("shenhe_review_open").set(open as f64);
                metrics::gauge!("shenhe_review_callbacks_undelivered").set(undelivered as f64);
            }
        }
    }
}
