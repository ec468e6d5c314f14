//! The review console (`/console`): server-rendered pages for the people who review held
//! posts, in Chinese, usable from the keyboard.
//!
//! Pages: the queue (filters, age, deadline), one post (every hit marked at its place with
//! its rule, category, legal basis and normalisation steps; the poster's history), reports
//! due with their countdown, rule statistics from verdicts, and the audit trail of a post
//! or an account. Templates (askama) are checked at compile time and escape every value.
//!
//! Who: a login by user name and password (`[[server.users]]`, argon2) or by an API key
//! with the `review` role opens a session (an HttpOnly, SameSite=Strict cookie); an
//! `Authorization: Bearer` review key works without one. Forms carry the session's CSRF
//! token. Personal fields are shown only to the `audit` role. The console reads the queue
//! and the audit store and gives verdicts through the same path as the API.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use askama::Template;
use axum::extract::{ConnectInfo, Form, Path, Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{Html, IntoResponse, Redirect, Response};
use serde::Deserialize;
use shenhe::audit::{AuditRecord, AuditStore, Filter};
use shenhe::review::{ReviewFilter, ReviewItem, Status, Verdict};

use super::auth::{bearer, Caller, Role};
use super::App;

const COOKIE: &str = "shenhe_session";
/// A session lasts a working day.
const SESSION_TTL: Duration = Duration::from_secs(12 * 3600);

/// Logged-in sessions, by token.
#[derive(Default)]
pub struct Sessions(Mutex<HashMap<String, Session>>);

#[derive(Clone)]
struct Session {
    caller: Caller,
    csrf: String,
    expires: Instant,
}

fn token() -> String {
    let mut raw = [0u8; 32];
    getrandom::getrandom(&mut raw).expect("the operating system gives randomness");
    hex::encode(raw)
}

impl Sessions {
    fn open(&self, caller: Caller) -> (String, Session) {
        let session = Session {
            caller,
            csrf: token(),
            expires: Instant::now() + SESSION_TTL,
        };
        let id = token();
        let mut map = self.0.lock().unwrap_or_else(|e| e.into_inner());
        let now = Instant::now();
        map.retain(|_, s| s.expires > now);
        map.insert(id.clone(), session.clone());
        (id, session)
    }

    fn get(&self, id: &str) -> Option<Session> {
        let map = self.0.lock().unwrap_or_else(|e| e.into_inner());
        map.get(id).filter(|s| s.expires > Instant::now()).cloned()
    }

    fn close(&self, id: &str) {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).remove(id);
    }
}

/// Who is looking at the console: from the session cookie (with its CSRF token) or a
/// bearer key with the review role (no cookie: no CSRF to fear).
struct Viewer {
    caller: Caller,
    csrf: Option<String>,
    session: Option<String>,
}

impl Viewer {
    fn of(app: &App, headers: &HeaderMap, peer: IpAddr) -> Option<Viewer> {
        if let Some(id) = cookie(headers, COOKIE) {
            if let Some(s) = app.sessions.get(&id) {
                return Some(Viewer {
                    caller: s.caller,
                    csrf: Some(s.csrf),
                    session: Some(id),
                });
            }
        }
        let caller = app
            .credentials
            .load()
            .keys
            .admit(bearer(headers), Role::Review, Some(peer))
            .ok()?;
        Some(Viewer {
            caller,
            csrf: None,
            session: None,
        })
    }

    /// A form's token matches the session's (always, for a bearer key).
    fn allows(&self, csrf: &str) -> bool {
        self.csrf.as_deref().is_none_or(|want| {
            want.len() == csrf.len()
                && want
                    .bytes()
                    .zip(csrf.bytes())
                    .fold(0u8, |acc, (a, b)| acc | (a ^ b))
                    == 0
        })
    }

    fn csrf(&self) -> String {
        self.csrf.clone().unwrap_or_default()
    }
}

fn cookie(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.to_owned())
}

fn page(t: impl Template) -> Response {
    match t.render() {
        Ok(html) => Html(html).into_response(),
        Err(e) => (
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("the page could not be drawn: {e}"),
        )
            .into_response(),
    }
}

fn to_login() -> Response {
    Redirect::to("/console/login").into_response()
}

fn refused(status: StatusCode, why: &str) -> Response {
    (status, why.to_owned()).into_response()
}

/// Why a page is not shown: nobody logged in (to the login page), or no review role.
enum Unseen {
    Login,
    Forbidden,
}

impl Unseen {
    fn response(self) -> Response {
        match self {
            Unseen::Login => to_login(),
            Unseen::Forbidden => refused(
                StatusCode::FORBIDDEN,
                "this account does not have the review role",
            ),
        }
    }
}

/// The viewer, when allowed the console (role review).
fn reviewer(app: &App, headers: &HeaderMap, peer: IpAddr) -> Result<Viewer, Unseen> {
    match Viewer::of(app, headers, peer) {
        Some(v) if v.caller.has(Role::Review) => Ok(v),
        Some(_) => Err(Unseen::Forbidden),
        None => Err(Unseen::Login),
    }
}

#[derive(Template)]
#[template(path = "login.html")]
struct LoginPage {
    error: Option<String>,
}

/// `GET /console/login`.
pub async fn login_page() -> Response {
    page(LoginPage { error: None })
}

#[derive(Deserialize)]
pub struct LoginForm {
    #[serde(default)]
    name: String,
    #[serde(default)]
    password: String,
    #[serde(default)]
    key: String,
}

/// `POST /console/login`: a user and password, or a review key; a session cookie.
pub async fn login(
    State(app): State<Arc<App>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    Form(form): Form<LoginForm>,
) -> Response {
    let peer = peer.ip();
    let caller = if !form.key.trim().is_empty() {
        app.credentials
            .load()
            .keys
            .admit(Some(form.key.trim()), Role::Review, Some(peer))
            .ok()
    } else {
        let user = app
            .credentials
            .load()
            .users
            .iter()
            .find(|u| u.name == form.name)
            .cloned();
        let password = form.password;
        // argon2 takes tens of milliseconds of CPU: off the async threads. An unknown name
        // costs the same as a wrong password.
        tokio::task::spawn_blocking(move || match user {
            Some(u) if u.verify(&password) => {
                let allowed = u.limits().admit(jiff::Timestamp::now(), Some(peer));
                if let Err(why) = &allowed {
                    tracing::warn!(target: "shenhe::console", user = %u.name, refused = ?why, "console login refused");
                }
                allowed.ok().map(|()| Caller::new(&u.name, &u.roles))
            }
            Some(_) => None,
            None => {
                let _ = super::auth::UserConfig::verify(&DUMMY_USER, &password);
                None
            }
        })
        .await
        .ok()
        .flatten()
    };
    let Some(caller) = caller.filter(|c| c.has(Role::Review)) else {
        tracing::warn!(target: "shenhe::console", name = %form.name, "console login refused");
        let mut res = page(LoginPage {
            error: Some("用户名、密码或密钥不对，或没有审核权限。".into()),
        });
        *res.status_mut() = StatusCode::UNAUTHORIZED;
        return res;
    };
    tracing::info!(target: "shenhe::console", user = %caller.name, "console login");
    let (id, _) = app.sessions.open(caller);
    let secure = if app.config.tls_cert.is_some() {
        "; Secure"
    } else {
        ""
    };
    let mut res = Redirect::to("/console").into_response();
    res.headers_mut().insert(
        header::SET_COOKIE,
        format!(
            "{COOKIE}={id}; Path=/console; HttpOnly; SameSite=Strict; Max-Age={}{secure}",
            SESSION_TTL.as_secs()
        )
        .parse()
        .expect("a valid header"),
    );
    res
}

/// Verified against when the name is unknown, so that a wrong name takes as long as a
/// wrong password (the hash of a random password; never matches in practice).
static DUMMY_USER: std::sync::LazyLock<super::auth::UserConfig> = std::sync::LazyLock::new(|| {
    super::auth::UserConfig {
        name: String::new(),
        password: "$argon2id$v=19$m=19456,t=2,p=1$c2hlbmhlLWR1bW15LXNhbHQ$2w3bDbB3kCP3Gh1nyD4uHSbhW8mIwI9cP1Zr9qRuXPo".into(),
        roles: Vec::new(),
        expires: None,
        allow_from: Vec::new(),
    }
});

#[derive(Deserialize)]
pub struct CsrfForm {
    #[serde(default)]
    csrf: String,
}

/// `POST /console/logout`.
pub async fn logout(
    State(app): State<Arc<App>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    Form(form): Form<CsrfForm>,
) -> Response {
    if let Some(v) = Viewer::of(&app, &headers, peer.ip()) {
        if let (Some(id), true) = (&v.session, v.allows(&form.csrf)) {
            app.sessions.close(id);
        }
    }
    let mut res = to_login();
    res.headers_mut().insert(
        header::SET_COOKIE,
        format!("{COOKIE}=; Path=/console; HttpOnly; SameSite=Strict; Max-Age=0")
            .parse()
            .expect("a valid header"),
    );
    res
}

/// How long ago, in Chinese, from RFC 3339 `at` to now.
fn age(at: &str) -> String {
    let Ok(t) = at.parse::<jiff::Timestamp>() else {
        return at.to_owned();
    };
    let s = jiff::Timestamp::now().duration_since(t).as_secs();
    span_zh(s.max(0))
}

fn span_zh(s: i64) -> String {
    match s {
        s if s < 60 => format!("{s} 秒"),
        s if s < 3600 => format!("{} 分钟", s / 60),
        s if s < 86400 => format!("{} 小时 {} 分", s / 3600, s % 3600 / 60),
        s => format!("{} 天 {} 小时", s / 86400, s % 86400 / 3600),
    }
}

/// Time left until RFC 3339 `at` (or how long overdue), and whether it is overdue.
fn countdown(at: &str) -> (String, bool) {
    let Ok(t) = at.parse::<jiff::Timestamp>() else {
        return (at.to_owned(), false);
    };
    let s = t.duration_since(jiff::Timestamp::now()).as_secs();
    if s < 0 {
        (format!("已逾期 {}", span_zh(-s)), true)
    } else {
        (format!("剩 {}", span_zh(s)), false)
    }
}

fn excerpt(text: &str, n: usize) -> String {
    let mut out: String = text.chars().take(n).collect();
    if text.chars().count() > n {
        out.push('…');
    }
    out
}

fn categories(list: &[u16]) -> String {
    list.iter()
        .map(u16::to_string)
        .collect::<Vec<_>>()
        .join(" ")
}

fn post_id(item: &ReviewItem) -> String {
    match &item.post.id {
        Some(shenhe::PostId::Int(i)) => i.to_string(),
        Some(shenhe::PostId::Str(s)) => s.clone(),
        None => "-".into(),
    }
}

struct QueueRow {
    id: i64,
    age: String,
    due: String,
    overdue: bool,
    board: String,
    categories: String,
    action: String,
    excerpt: String,
    status: String,
}

#[derive(Template)]
#[template(path = "queue.html")]
struct QueuePage {
    nav: &'static str,
    who: String,
    csrf: String,
    flash: Option<String>,
    statuses: Vec<(&'static str, &'static str)>,
    status: String,
    category: String,
    board: String,
    rows: Vec<QueueRow>,
}

#[derive(Deserialize, Default)]
pub struct QueueQuery {
    status: Option<String>,
    category: Option<String>,
    board: Option<String>,
    done: Option<i64>,
}

/// `GET /console`: the queue, oldest first.
pub async fn queue(
    State(app): State<Arc<App>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    Query(q): Query<QueueQuery>,
) -> Response {
    let viewer = match reviewer(&app, &headers, peer.ip()) {
        Ok(v) => v,
        Err(unseen) => return unseen.response(),
    };
    let Some(reviews) = app.reviews.clone() else {
        return refused(
            StatusCode::NOT_FOUND,
            "this service keeps no review queue: it needs an audit store",
        );
    };
    let status = q.status.clone().unwrap_or_else(|| "open".into());
    let filter = ReviewFilter {
        status: Status::parse(&status),
        category: q.category.as_deref().and_then(|c| c.trim().parse().ok()),
        board: q.board.clone().filter(|b| !b.trim().is_empty()),
        limit: Some(500),
    };
    let open_only = status == "open";
    let items = match tokio::task::spawn_blocking(move || reviews.list(&filter)).await {
        Ok(Ok(items)) => items,
        _ => return refused(StatusCode::SERVICE_UNAVAILABLE, "the queue cannot be read"),
    };
    let rows = items
        .iter()
        .filter(|i| !open_only || i.status != Status::Decided)
        .map(|i| {
            let (due, overdue) = if i.status == Status::Decided {
                ("—".to_owned(), false)
            } else {
                countdown(&i.deadline)
            };
            QueueRow {
                id: i.id,
                age: age(&i.created),
                due,
                overdue,
                board: i.post.board.clone().unwrap_or_default(),
                categories: categories(&i.decision.categories),
                action: i.decision.action.as_str().into(),
                excerpt: excerpt(&i.post.text, 60),
                status: status_zh(i).into(),
            }
        })
        .collect();
    page(QueuePage {
        nav: "queue",
        who: viewer.caller.name.to_string(),
        csrf: viewer.csrf(),
        flash: q.done.map(|id| format!("#{id} 已处理。")),
        statuses: vec![
            ("open", "待处理"),
            ("pending", "未领取"),
            ("claimed", "已领取"),
            ("decided", "已审结"),
        ],
        status,
        category: q.category.unwrap_or_default(),
        board: q.board.unwrap_or_default(),
        rows,
    })
}

fn status_zh(i: &ReviewItem) -> &'static str {
    match (i.status, i.verdict) {
        (Status::Pending, _) => "未领取",
        (Status::Claimed, _) => "已领取",
        (Status::Decided, Some(Verdict::Approve)) => "已通过",
        (Status::Decided, Some(Verdict::Remove)) => "已删除",
        (Status::Decided, Some(Verdict::Report)) => "已删除并报送",
        (Status::Decided, None) => "已审结",
    }
}

struct Segment {
    text: String,
    mark: bool,
    rules: String,
}

/// The text cut where hits begin and end: marked parts carry the rules that hit them.
fn segments(text: &str, hits: &[shenhe::Hit]) -> Vec<Segment> {
    let mut spans: Vec<(usize, usize, Vec<String>)> = Vec::new();
    let mut in_text: Vec<&shenhe::Hit> = hits
        .iter()
        .filter(|h| h.field == shenhe::Field::Text && h.start < h.end && h.end <= text.len())
        .collect();
    in_text.sort_by_key(|h| (h.start, h.end));
    for h in in_text {
        match spans.last_mut() {
            Some((_, end, rules)) if h.start < *end => {
                *end = (*end).max(h.end);
                if !rules.iter().any(|r| **r == *h.rule) {
                    rules.push(h.rule.to_string());
                }
            }
            _ => spans.push((h.start, h.end, vec![h.rule.to_string()])),
        }
    }
    let mut out = Vec::new();
    let mut at = 0;
    for (start, end, rules) in spans {
        let (Some(before), Some(marked)) = (text.get(at..start), text.get(start..end)) else {
            continue;
        };
        if !before.is_empty() {
            out.push(Segment {
                text: before.into(),
                mark: false,
                rules: String::new(),
            });
        }
        out.push(Segment {
            text: marked.into(),
            mark: true,
            rules: rules.join(", "),
        });
        at = end;
    }
    if let Some(rest) = text.get(at..).filter(|r| !r.is_empty()) {
        out.push(Segment {
            text: rest.into(),
            mark: false,
            rules: String::new(),
        });
    }
    out
}

struct HitRow {
    span: String,
    field: String,
    matched: String,
    term: String,
    rule: String,
    category: String,
    basis: String,
    steps: String,
}

#[derive(Template)]
#[template(path = "item.html")]
struct ItemPage {
    nav: &'static str,
    who: String,
    csrf: String,
    error: Option<String>,
    id: i64,
    status: String,
    title: Option<String>,
    board: String,
    post_id: String,
    created: String,
    due: String,
    overdue: bool,
    action: String,
    claimed_by: Option<String>,
    segments: Vec<Segment>,
    hits: Vec<HitRow>,
    user: String,
    personal: Option<String>,
    history: String,
    decided: bool,
    verdict: String,
    reviewer: String,
    decided_at: String,
    note: Option<String>,
    prev: Option<i64>,
    next: Option<i64>,
}

#[derive(Deserialize, Default)]
pub struct ItemQuery {
    error: Option<String>,
}

/// The audit store, opened for reading (its own connection: the pipeline keeps writing).
fn store(app: &App) -> Option<AuditStore> {
    let db = app.config.audit.as_ref()?;
    AuditStore::open(db, app.audit_key.clone()).ok()
}

/// The account's offences and the verdicts on its posts, from the audit store.
fn history(app: &App, user: Option<&str>) -> String {
    let Some(user) = user else {
        return "（无账号）".into();
    };
    let Some(store) = store(app) else {
        return "（审计库不可读）".into();
    };
    let filter = Filter {
        user: Some(user.to_owned()),
        ..Filter::default()
    };
    let (mut posts, mut flagged, mut removed, mut approved) = (0, 0, 0, 0);
    let counted = store.query(&filter, |r| {
        match &r.event {
            None => {
                posts += 1;
                if r.action != "allow" {
                    flagged += 1;
                }
            }
            Some(e) if e["verdict"] == "approve" => approved += 1,
            Some(_) => removed += 1,
        }
        Ok(())
    });
    match counted {
        Ok(_) => format!(
            "审计库中 {posts} 帖，机器判定违规 {flagged} 次；人工结论：删除或报送 {removed}，通过 {approved}"
        ),
        Err(_) => "（审计库不可读）".into(),
    }
}

/// `GET /console/reviews/{id}`: one post.
pub async fn item(
    State(app): State<Arc<App>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    Path(id): Path<i64>,
    Query(q): Query<ItemQuery>,
) -> Response {
    let viewer = match reviewer(&app, &headers, peer.ip()) {
        Ok(v) => v,
        Err(unseen) => return unseen.response(),
    };
    let Some(reviews) = app.reviews.clone() else {
        return refused(StatusCode::NOT_FOUND, "no review queue");
    };
    let worker = app.clone();
    let found = tokio::task::spawn_blocking(move || {
        let item = reviews.get(id)?;
        let open = reviews.list(&ReviewFilter {
            status: None,
            limit: Some(1000),
            ..ReviewFilter::default()
        })?;
        let open: Vec<i64> = open
            .iter()
            .filter(|i| i.status != Status::Decided)
            .map(|i| i.id)
            .collect();
        let history = item.as_ref().map(|i| {
            history(
                &worker,
                i.post.poster.as_ref().and_then(|p| p.user_id.as_deref()),
            )
        });
        Ok::<_, shenhe::Error>((item, open, history))
    })
    .await;
    let (item, open, history) = match found {
        Ok(Ok((Some(item), open, history))) => (item, open, history.unwrap_or_default()),
        Ok(Ok((None, ..))) => return refused(StatusCode::NOT_FOUND, "没有这一条"),
        _ => return refused(StatusCode::SERVICE_UNAVAILABLE, "the queue cannot be read"),
    };
    let engine = app.pipeline.engine().load();
    let rules = engine.rules();
    let hits = item
        .decision
        .hits
        .iter()
        .map(|h| {
            let c = shenhe::report::ReportCategory::of(rules, h.category);
            let sealed = h.field == shenhe::Field::Name && !viewer.caller.has(Role::Audit);
            HitRow {
                span: format!("{}–{}", h.char_start, h.char_end),
                field: h.field.as_str().into(),
                matched: if sealed {
                    shenhe::audit::SEALED_MATCH.into()
                } else {
                    h.matched.clone()
                },
                term: if sealed {
                    shenhe::audit::SEALED_MATCH.into()
                } else {
                    h.term.to_string()
                },
                rule: h.rule.to_string(),
                category: format!("{} {}", h.category, c.title),
                basis: c.basis,
                steps: if h.steps.is_empty() {
                    "（原文）".into()
                } else {
                    h.steps.join(" → ")
                },
            }
        })
        .collect();
    let poster = item.post.poster.clone().unwrap_or_default();
    let personal = viewer.caller.has(Role::Audit).then(|| {
        let mut parts = Vec::new();
        if let Some(ip) = &poster.ip {
            parts.push(match poster.port {
                Some(p) => format!("IP {ip}:{p}"),
                None => format!("IP {ip}"),
            });
        }
        if let Some(r) = &poster.identity_ref {
            parts.push(format!("实名 {r}"));
        }
        if let Some(n) = &poster.name {
            parts.push(format!("昵称 {n}"));
        }
        parts.join(" · ")
    });
    let place = open.iter().position(|&i| i == id);
    let (prev, next) = match place {
        Some(p) => (p.checked_sub(1).map(|k| open[k]), open.get(p + 1).copied()),
        None => (
            open.iter().rev().find(|&&i| i < id).copied(),
            open.iter().find(|&&i| i > id).copied(),
        ),
    };
    let (due, overdue) = countdown(&item.deadline);
    page(ItemPage {
        nav: "queue",
        who: viewer.caller.name.to_string(),
        csrf: viewer.csrf(),
        error: q.error,
        id,
        status: status_zh(&item).into(),
        title: item.post.title.clone(),
        board: item.post.board.clone().unwrap_or_else(|| "-".into()),
        post_id: post_id(&item),
        created: item.created.clone(),
        due,
        overdue: overdue && item.status != Status::Decided,
        action: item.decision.action.as_str().into(),
        claimed_by: item.claimed_by.clone(),
        segments: segments(&item.post.text, &item.decision.hits),
        hits,
        user: poster.user_id.clone().unwrap_or_else(|| "-".into()),
        personal,
        history,
        decided: item.status == Status::Decided,
        verdict: item.verdict.map_or("", Verdict::as_str).into(),
        reviewer: item.reviewer.clone().unwrap_or_default(),
        decided_at: item.decided_at.clone().unwrap_or_default(),
        note: item.note.clone(),
        prev,
        next,
    })
}

#[derive(Deserialize)]
pub struct VerdictForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    verdict: String,
    #[serde(default)]
    note: String,
}

/// `POST /console/reviews/{id}/verdict`: the verdict, then the next open item.
pub async fn verdict(
    State(app): State<Arc<App>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    Path(id): Path<i64>,
    Form(form): Form<VerdictForm>,
) -> Response {
    let viewer = match reviewer(&app, &headers, peer.ip()) {
        Ok(v) => v,
        Err(unseen) => return unseen.response(),
    };
    if !viewer.allows(&form.csrf) {
        return refused(
            StatusCode::FORBIDDEN,
            "the form is stale or not ours (CSRF token): reload the page",
        );
    }
    let back = |why: &str| {
        let q = serde_urlencoded_pair("error", why);
        Redirect::to(&format!("/console/reviews/{id}?{q}")).into_response()
    };
    let Some(v) = Verdict::parse(&form.verdict) else {
        return back("请选择结论：通过、删除或删除并报送。");
    };
    let note = Some(form.note.trim().to_owned()).filter(|n| !n.is_empty());
    if note.as_ref().is_some_and(|n| n.len() > 4096) {
        return back("备注过长（最多 4096 字节）。");
    }
    match super::review::take_verdict(&app, id, v, viewer.caller.name.to_string(), note).await {
        Ok(_) => {
            let reviews = app.reviews.clone();
            let next = tokio::task::spawn_blocking(move || {
                reviews?
                    .list(&ReviewFilter {
                        limit: Some(1000),
                        ..ReviewFilter::default()
                    })
                    .ok()?
                    .into_iter()
                    .find(|i| i.status != Status::Decided && i.id != id)
                    .map(|i| i.id)
            })
            .await
            .ok()
            .flatten();
            match next {
                Some(n) => Redirect::to(&format!("/console/reviews/{n}")).into_response(),
                None => Redirect::to(&format!("/console?done={id}")).into_response(),
            }
        }
        Err((_, why)) => back(&why),
    }
}

/// `key=value` for a query string, the value percent-encoded.
fn serde_urlencoded_pair(key: &str, value: &str) -> String {
    let mut out = format!("{key}=");
    for b in value.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

struct ReportRow {
    post_id: String,
    detected: String,
    deadline: String,
    left: String,
    overdue: bool,
    categories: String,
    source: String,
    excerpt: String,
}

#[derive(Template)]
#[template(path = "reports.html")]
struct ReportsPage {
    nav: &'static str,
    who: String,
    csrf: String,
    days: i64,
    rows: Vec<ReportRow>,
}

/// Reports listed on the reports page: those of the last month.
const REPORT_DAYS: i64 = 30;

/// `GET /console/reports`: posts that must be reported, with the time left.
pub async fn reports(
    State(app): State<Arc<App>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
) -> Response {
    let viewer = match reviewer(&app, &headers, peer.ip()) {
        Ok(v) => v,
        Err(unseen) => return unseen.response(),
    };
    let hours = i64::from(app.config.report_deadline_hours);
    let worker = app.clone();
    let rows = tokio::task::spawn_blocking(move || {
        let store = store(&worker)?;
        let filter = Filter {
            since: Some(
                jiff::Timestamp::now() - jiff::SignedDuration::from_hours(24 * REPORT_DAYS),
            ),
            ..Filter::default()
        };
        let mut rows = Vec::new();
        store
            .query(&filter, |r| {
                if r.report {
                    rows.push(report_row(&r, hours));
                }
                Ok(())
            })
            .ok()?;
        rows.reverse();
        Some(rows)
    })
    .await
    .ok()
    .flatten();
    let Some(rows) = rows else {
        return refused(
            StatusCode::SERVICE_UNAVAILABLE,
            "the audit store cannot be read",
        );
    };
    page(ReportsPage {
        nav: "reports",
        who: viewer.caller.name.to_string(),
        csrf: viewer.csrf(),
        days: REPORT_DAYS,
        rows,
    })
}

fn report_row(r: &AuditRecord, hours: i64) -> ReportRow {
    let deadline = r
        .scan_time
        .parse::<jiff::Timestamp>()
        .map(|t| (t + jiff::SignedDuration::from_hours(hours)).to_string())
        .unwrap_or_default();
    let (left, overdue) = countdown(&deadline);
    ReportRow {
        post_id: r.post_id_text(),
        detected: r.scan_time.clone(),
        deadline,
        left,
        overdue,
        categories: categories(&r.categories),
        source: match (&r.event, &r.caller) {
            (Some(_), Some(c)) => format!("审核员 {c}"),
            _ => "规则".into(),
        },
        excerpt: excerpt(&r.content.text, 40),
    }
}

struct RuleRow {
    rule: String,
    held: u64,
    decided: u64,
    approved: u64,
    removed: u64,
    reported: u64,
    precision: String,
}

#[derive(Template)]
#[template(path = "rules.html")]
struct RulesPage {
    nav: &'static str,
    who: String,
    csrf: String,
    rows: Vec<RuleRow>,
}

/// `GET /console/rules`: per rule, what reviewers made of what it held.
pub async fn rules(
    State(app): State<Arc<App>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
) -> Response {
    let viewer = match reviewer(&app, &headers, peer.ip()) {
        Ok(v) => v,
        Err(unseen) => return unseen.response(),
    };
    let Some(reviews) = app.reviews.clone() else {
        return refused(StatusCode::NOT_FOUND, "no review queue");
    };
    let items = tokio::task::spawn_blocking(move || {
        reviews.list(&ReviewFilter {
            limit: Some(i64::MAX as usize),
            ..ReviewFilter::default()
        })
    })
    .await;
    let Ok(Ok(items)) = items else {
        return refused(StatusCode::SERVICE_UNAVAILABLE, "the queue cannot be read");
    };
    let rows = shenhe::review::rule_statistics(&items)
        .into_iter()
        .map(|s| RuleRow {
            precision: s
                .precision()
                .map_or("—".into(), |p| format!("{:.0}%", p * 100.0)),
            decided: s.decided(),
            rule: s.rule,
            held: s.held,
            approved: s.approved,
            removed: s.removed,
            reported: s.reported,
        })
        .collect();
    page(RulesPage {
        nav: "rules",
        who: viewer.caller.name.to_string(),
        csrf: viewer.csrf(),
        rows,
    })
}

struct TrailRow {
    seq: i64,
    time: String,
    post_id: String,
    user: String,
    ip: String,
    action: String,
    event: String,
    caller: String,
    excerpt: String,
}

#[derive(Template)]
#[template(path = "trail.html")]
struct TrailPage {
    nav: &'static str,
    who: String,
    csrf: String,
    subject: String,
    rows: Vec<TrailRow>,
}

#[derive(Deserialize, Default)]
pub struct TrailQuery {
    user: Option<String>,
    post: Option<String>,
}

/// `GET /console/trail?user=ID` or `?post=ID`: every audit record of an account or a post
/// (at most 500, newest last); IP addresses only for the audit role.
pub async fn trail(
    State(app): State<Arc<App>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    Query(q): Query<TrailQuery>,
) -> Response {
    let viewer = match reviewer(&app, &headers, peer.ip()) {
        Ok(v) => v,
        Err(unseen) => return unseen.response(),
    };
    let audit = viewer.caller.has(Role::Audit);
    let subject = match (&q.user, &q.post) {
        (Some(u), _) => format!("账号 {u}"),
        (None, Some(p)) => format!("帖子 {p}"),
        (None, None) => return refused(StatusCode::BAD_REQUEST, "give ?user=ID or ?post=ID"),
    };
    let worker = app.clone();
    let reader = viewer.caller.name.to_string();
    let rows = tokio::task::spawn_blocking(move || {
        let store = store(&worker)?;
        let filter = Filter {
            user: q.user.clone(),
            ..Filter::default()
        };
        let mut rows = Vec::new();
        store
            .query(&filter, |r| {
                if q.post.as_ref().is_none_or(|p| *p == r.post_id_text()) && rows.len() < 500 {
                    rows.push(trail_row(&r, audit));
                }
                Ok(())
            })
            .ok()?;
        // The audit role sees addresses: a read of personal data, recorded before it is
        // shown (a read that cannot be recorded shows nothing).
        if audit {
            let event = serde_json::json!({
                "kind": "read",
                "via": "console trail",
                "filter": { "user": q.user, "post": q.post },
                "count": rows.len(),
            });
            worker.pipeline.record_event(&reader, &event).ok()?;
        }
        Some(rows)
    })
    .await
    .ok()
    .flatten();
    let Some(rows) = rows else {
        return refused(
            StatusCode::SERVICE_UNAVAILABLE,
            "the audit store cannot be read",
        );
    };
    page(TrailPage {
        nav: "queue",
        who: viewer.caller.name.to_string(),
        csrf: viewer.csrf(),
        subject,
        rows,
    })
}

fn trail_row(r: &AuditRecord, audit: bool) -> TrailRow {
    let ip = match (&r.personal, audit) {
        (Some(p), true) => p.ip.clone().unwrap_or_default(),
        _ => shenhe::audit::WITHHELD.into(),
    };
    TrailRow {
        seq: r.seq,
        time: r.scan_time.clone(),
        post_id: r.post_id_text(),
        user: r.user_id.clone().unwrap_or_default(),
        ip,
        action: r.action.clone(),
        event: r
            .event
            .as_ref()
            .map(|e| {
                format!(
                    "{} {}",
                    e["kind"].as_str().unwrap_or(""),
                    e["verdict"].as_str().unwrap_or("")
                )
            })
            .unwrap_or_else(|| "机器判定".into()),
        caller: r.caller.clone().unwrap_or_default(),
        excerpt: excerpt(&r.content.text, 40),
    }
}
