//! `shenhe serve`, driven as a forum back end drives it: the real binary on a loopback port,
//! plain HTTP/1.1 over a socket (no client library between the test and the wire).

mod common;

use std::collections::HashSet;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use common::server::{http, read_reply, Server};
use serde_json::{json, Value};

/// A decision of the service as `shenhe scan` gives it: the service holds posts decided
/// `review` in its queue, and their decisions (only theirs) carry the item's `review_id`.
fn without_review_id(mut d: Value) -> Value {
    let id = d.as_object_mut().unwrap().remove("review_id");
    assert_eq!(id.is_some(), d["action"] == "review", "{d}");
    d
}

/// The bundled sample posts, as lines.
fn sample() -> Vec<String> {
    std::fs::read_to_string(common::manifest().join("examples/posts.jsonl"))
        .unwrap()
        .lines()
        .map(str::to_owned)
        .collect()
}

/// `shenhe scan` over `lines` with the bundled rules: its output lines.
fn scan(lines: &[String], dir: &Path) -> Vec<Value> {
    let input = dir.join("in.jsonl");
    std::fs::write(&input, lines.join("\n") + "\n").unwrap();
    let out = common::run(&["scan", "-q", "-i", input.to_str().unwrap()], b"");
    assert_eq!(common::code(&out), 0, "{}", common::stderr(&out));
    common::json_lines(&out)
}

#[test]
fn one_post_at_a_time_and_the_batch_route_decide_as_shenhe_scan_does() {
    let posts = sample();
    let expected = scan(&posts, tempfile::tempdir().unwrap().path());
    let single = Server::start("");
    for (i, (p, want)) in posts.iter().zip(&expected).enumerate() {
        let r = single.moderate(p);
        let mut want = want.clone();
        want.as_object_mut().unwrap().remove("line");
        if want.get("error").is_some() {
            assert!(
                matches!(r.status, 400 | 413),
                "line {}: {}",
                i + 1,
                r.text()
            );
            assert_eq!(r.json()["error"], want["error"], "line {}", i + 1);
        } else {
            assert_eq!(r.status, 200, "line {}: {}", i + 1, r.text());
            assert_eq!(without_review_id(r.json()), want, "line {}", i + 1);
        }
    }
    // Every decided post is recorded, in order, naming the key that asked.
    let decided = expected.iter().filter(|d| d.get("error").is_none()).count();
    let records = single.records();
    assert_eq!(records.len(), decided);
    assert!(records.iter().all(|r| r.caller.as_deref() == Some("forum")));

    let batch = Server::start("");
    let body = posts.join("\n");
    let r = batch.call(
        "POST",
        "/v1/moderate/batch",
        Some(&batch.moderate),
        body.as_bytes(),
    );
    assert_eq!(r.status, 200);
    assert_eq!(r.header("content-type"), Some("application/x-ndjson"));
    let got: Vec<Value> = r
        .text()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let got: Vec<Value> = got.into_iter().map(without_review_id).collect();
    assert_eq!(got, expected);
    let records = batch.records();
    assert_eq!(records.len(), decided);
    assert!(records.iter().all(|r| r.caller.as_deref() == Some("forum")));
    // The key's name is kept where `audit query --caller` finds it.
    let db = batch.db();
    let query = |caller: &str| {
        let out = common::run(
            &[
                "audit",
                "query",
                "--json",
                "--caller",
                caller,
                "--db",
                db.to_str().unwrap(),
            ],
            b"",
        );
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    };
    let found = query("forum");
    assert_eq!(found.lines().count(), decided);
    assert!(
        found.lines().all(|l| l.contains(r#""caller":"forum""#)),
        "{found}"
    );
    assert_eq!(query("ops").lines().count(), 0);
}

#[test]
fn without_a_store_small_posts_are_decided_alike_and_large_ones_too() {
    let s = Server::start("# no audit");
    let posts = sample();
    let expected = scan(&posts, tempfile::tempdir().unwrap().path());
    for (p, want) in posts.iter().zip(&expected).take(100) {
        let mut want = want.clone();
        want.as_object_mut().unwrap().remove("line");
        let r = s.moderate(p);
        if want.get("error").is_none() {
            assert_eq!(r.json(), want);
        } else {
            assert_ne!(r.status, 200);
        }
    }
    // Over the inline size: through the blocking pool, same decision shape.
    let big =
        json!({ "id": "big", "text": format!("{}出售冰毒", "好".repeat(10_000)) }).to_string();
    let r = s.moderate(&big);
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["action"], "delete");
    assert!(!s.db().exists(), "no store was asked for");
}

#[test]
fn keys_and_roles_decide_who_may_call_what() {
    let s = Server::start("");
    let post = br#"{"text":"hello"}"#;
    let none = s.call("POST", "/v1/moderate", None, post);
    assert_eq!(none.status, 401);
    assert_eq!(none.header("www-authenticate"), Some("Bearer"));
    assert_eq!(
        s.call("POST", "/v1/moderate", Some("shk_guess"), post)
            .status,
        401
    );
    // A moderate key cannot reload; an admin key cannot moderate.
    let r = s.call("POST", "/admin/reload", Some(&s.moderate), b"");
    assert_eq!(r.status, 403);
    assert!(r.json()["error"].as_str().unwrap().contains("admin"));
    assert_eq!(
        s.call("POST", "/v1/moderate", Some(&s.admin), post).status,
        403
    );
    assert_eq!(
        s.call("GET", "/admin/ruleset", Some(&s.admin), b"").status,
        200
    );
    // Open routes.
    assert_eq!(s.call("GET", "/healthz", None, b"").status, 200);
    let ready = s.call("GET", "/readyz", None, b"");
    assert_eq!(ready.status, 200);
    assert_eq!(ready.json()["status"], "ready");
    assert_eq!(s.call("GET", "/nowhere", None, b"").status, 404);
    // The key's rate: 2 a second for "slow", so a burst of 10 meets 429 with Retry-After.
    let statuses: Vec<u16> = (0..10)
        .map(|_| s.call("POST", "/v1/moderate", Some(&s.slow), post).status)
        .collect();
    assert!(
        statuses.contains(&200) && statuses.contains(&429),
        "{statuses:?}"
    );
    let refused = s.call("POST", "/v1/moderate", Some(&s.slow), post);
    if refused.status == 429 {
        assert!(refused.header("retry-after").is_some());
    }
    // The log names the key, the route and the status, one JSON object per request, and
    // never the post's text or the poster's address.
    let r = s.moderate(r#"{"id":"L1","text":"出售冰毒","poster":{"ip":"198.51.100.23"}}"#);
    assert_eq!(r.status, 200);
    let id = r.header("x-request-id").unwrap().to_owned();
    std::thread::sleep(Duration::from_millis(200));
    let log = s.log.lock().unwrap().clone();
    let line: Value = log
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .find(|l| l["request_id"] == id.as_str())
        .unwrap_or_else(|| panic!("no log line for {id}: {log}"));
    assert_eq!(line["key"], "forum");
    assert_eq!(line["route"], "/v1/moderate");
    assert_eq!(line["status"], 200);
    assert_eq!(line["outcome"], "delete");
    assert!(
        !log.contains("198.51.100.23") && !log.contains("冰毒"),
        "{log}"
    );
}

#[test]
fn bad_input_is_refused_with_a_reason_and_never_allowed() {
    let s = Server::start("max_post_bytes = 1000\nrequest_timeout_secs = 2");
    let bad = s.moderate(r#"{"text": "unterminated"#);
    assert_eq!(bad.status, 400);
    assert!(
        bad.json()["error"].as_str().unwrap().contains("EOF"),
        "{}",
        bad.text()
    );
    let no_text = s.moderate(r#"{"id":"t1","title":"出售冰毒"}"#);
    assert_eq!(no_text.status, 400);
    assert_eq!(no_text.json()["id"], "t1");
    assert!(no_text.json()["error"].as_str().unwrap().contains("text"));
    let dup = s.moderate(r#"{"text":"出售冰毒","text":"ok"}"#);
    assert_eq!(dup.status, 400, "{}", dup.text());
    // Text over max_post_bytes, and a body over twice it plus 64 KiB.
    let long = json!({ "text": "好".repeat(400) }).to_string();
    let r = s.moderate(&long);
    assert_eq!(r.status, 413, "{}", r.text());
    let huge = json!({ "text": "a".repeat(100_000) }).to_string();
    assert_eq!(s.moderate(&huge).status, 413);
    let bad_utf8 = s.call(
        "POST",
        "/v1/moderate",
        Some(&s.moderate),
        b"{\"text\":\"\xff\"}",
    );
    assert_eq!(bad_utf8.status, 400);
    // /v1/check explains without recording.
    let c = s.call(
        "POST",
        "/v1/check",
        Some(&s.moderate),
        r#"{"text":"网络赌场"}"#.as_bytes(),
    );
    assert_eq!(c.status, 200);
    assert_eq!(c.json()["hits"][0]["rule"], "gambling.promotion");
    assert_eq!(
        s.call("POST", "/v1/check", Some(&s.moderate), b"[]").status,
        400
    );
    // A client that announces a body and never sends it is cut off, and nothing is allowed.
    let mut slow = TcpStream::connect(s.addr).unwrap();
    write!(
        slow,
        "POST /v1/moderate HTTP/1.1\r\nHost: t\r\nAuthorization: Bearer {}\r\nContent-Length: 50\r\n\r\n{{\"text\":",
        s.moderate
    )
    .unwrap();
    let started = Instant::now();
    slow.set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    let r = read_reply(slow);
    assert_eq!(r.status, 408);
    assert!(started.elapsed() < Duration::from_secs(15));
    // Nothing refused was recorded.
    assert_eq!(s.records().len(), 0);
}

#[test]
fn a_broken_rule_set_is_refused_and_a_good_one_replaces_the_rules_atomically() {
    let dir = tempfile::tempdir().unwrap();
    let rules = dir.path().join("rules.toml");
    let v1 = "[ruleset]\nname = \"site\"\nversion = \"1\"\n\n[[rule]]\nid = \"spam.one\"\ncategory = 9\nseverity = \"high\"\naction = \"block\"\nterms = [\"苹果手机抽奖\"]\n";
    std::fs::write(&rules, v1).unwrap();
    let s = Server::start_in(dir, &format!("rules = [{:?}]", rules.to_str().unwrap()));
    let before = s.call("GET", "/admin/ruleset", Some(&s.admin), b"").json();
    assert_eq!(before["ruleset"]["name"], "site");
    assert_eq!(
        s.moderate(r#"{"text":"苹果手机抽奖"}"#).json()["action"],
        "block"
    );

    // A broken file: 422 naming file:line:column; the old rules keep deciding.
    std::fs::write(&rules, v1.replace("terms = [", "terms = [[")).unwrap();
    let r = s.call("POST", "/admin/reload", Some(&s.admin), b"");
    assert_eq!(r.status, 422);
    let e = r.json()["error"].as_str().unwrap().to_owned();
    assert!(e.contains("rules.toml:10:"), "{e}");
    let after = s.call("GET", "/admin/ruleset", Some(&s.admin), b"").json();
    assert_eq!(after["ruleset"]["hash"], before["ruleset"]["hash"]);
    assert_eq!(
        s.moderate(r#"{"text":"苹果手机抽奖"}"#).json()["action"],
        "block"
    );

    // A good one, named in the body.
    let other = s.dir.path().join("other.toml");
    std::fs::write(&other, v1.replace("苹果手机抽奖", "免费领取红包")).unwrap();
    let body = json!({ "rules": [other] }).to_string();
    let r = s.call("POST", "/admin/reload", Some(&s.admin), body.as_bytes());
    assert_eq!(r.status, 200, "{}", r.text());
    assert_ne!(r.json()["ruleset"]["hash"], before["ruleset"]["hash"]);
    assert_eq!(
        s.moderate(r#"{"text":"苹果手机抽奖"}"#).json()["action"],
        "allow"
    );
    assert_eq!(
        s.moderate(r#"{"text":"免费领取红包"}"#).json()["action"],
        "block"
    );

    // SIGHUP reloads the configured file.
    std::fs::write(&rules, v1.replace("苹果手机抽奖", "点击链接中奖")).unwrap();
    s.signal("-HUP");
    let deadline = Instant::now() + Duration::from_secs(20);
    while s.moderate(r#"{"text":"点击链接中奖"}"#).json()["action"] != "block" {
        assert!(Instant::now() < deadline, "SIGHUP did not reload");
        std::thread::sleep(Duration::from_millis(100));
    }
    let metrics = s.call("GET", "/metrics", None, b"").text();
    assert!(
        metrics.contains("shenhe_reloads_total{outcome=\"error\"} 1"),
        "{metrics}"
    );
    assert!(
        metrics.contains("shenhe_reloads_total{outcome=\"ok\"} 2"),
        "{metrics}"
    );
    assert!(metrics.contains("shenhe_ruleset_info{name=\"site\",version=\"1\""));
    assert!(metrics.contains("shenhe_decisions_total{action=\"block\"}"));
    assert!(metrics.contains(
        "shenhe_http_request_duration_seconds_bucket{route=\"/v1/moderate\",le=\"0.005\"}"
    ));
    assert!(metrics.contains("shenhe_audit_records_total"));
    // Each reload that took effect is an audit record naming who asked, before the posts
    // it decided; the refused one left none. The store verifies.
    let reloads: Vec<_> = s
        .records()
        .into_iter()
        .filter_map(|r| {
            let e = r.event?;
            (e["kind"] == "reload").then(|| (r.caller.unwrap(), e["ruleset"]["name"].clone()))
        })
        .collect();
    assert_eq!(
        reloads,
        [
            ("ops".to_owned(), json!("site")),
            ("SIGHUP".to_owned(), json!("site"))
        ]
    );
}

#[test]
fn the_shumei_route_speaks_their_shapes() {
    let s = Server::start("");
    let call = |body: Value| {
        s.call(
            "POST",
            "/compat/shumei/text/v4",
            None,
            body.to_string().as_bytes(),
        )
    };
    let req = |key: &str, text: &str| {
        json!({ "accessKey": key, "appId": "default", "eventId": "post", "type": "TEXTRISK",
                "data": { "text": text, "tokenId": "u42", "ip": "203.0.113.9" } })
    };
    let r = call(req(&s.moderate, "朋友说：网络赌场又开了"));
    assert_eq!(r.status, 200);
    let v = r.json();
    assert_eq!(v["code"], 1100);
    assert_eq!(v["riskLevel"], "REJECT");
    assert_eq!(v["riskLabel1"], "ban");
    assert_eq!(v["riskLabel3"], "gambling.promotion");
    let word = &v["riskDetail"]["matchedLists"][0]["words"][0];
    assert_eq!(word["word"], "网络赌场");
    assert_eq!(word["position"], json!([4, 8]));
    assert_eq!(v["auxInfo"]["filteredText"], "朋友说：＊＊＊＊又开了");
    assert_eq!(r.header("x-request-id").unwrap(), v["requestId"]);

    let clean = call(req(&s.moderate, "周末一起去爬山吗")).json();
    assert_eq!(
        (clean["code"].clone(), clean["riskLevel"].clone()),
        (json!(1100), json!("PASS"))
    );
    assert_eq!(clean["riskLabel1"], "normal");

    // Never PASS when nothing was decided.
    for (body, code) in [
        (req("wrong", "周末一起去爬山吗"), 9101),
        (req(&s.admin, "周末一起去爬山吗"), 9101),
        (
            json!({ "accessKey": s.moderate, "data": { "tokenId": "u1" } }),
            1902,
        ),
        (json!({ "accessKey": s.moderate }), 1902),
    ] {
        let v = call(body).json();
        assert_eq!(v["code"], code, "{v}");
        assert_ne!(v["riskLevel"], "PASS");
    }
    let not_json = s.call("POST", "/compat/shumei/text/v4", None, b"{");
    assert_eq!(not_json.json()["code"], 1902);
    // The two decided posts are recorded with the poster's account.
    let recs = s.records();
    assert_eq!(recs.len(), 2);
    assert_eq!(recs[0].user_id.as_deref(), Some("u42"));
    assert_eq!(recs[0].caller.as_deref(), Some("forum"));
}

#[test]
fn sigterm_finishes_what_is_in_flight_and_exits_zero() {
    let mut s = Server::start("");
    let addr = s.addr;
    let key = s.moderate.clone();
    // A batch in flight when the signal arrives: half its body sent before, half after.
    let body: String = (0..3000)
        .map(|i| format!("{{\"id\":\"b{i}\",\"text\":\"第{i}条：出售冰毒\"}}\n"))
        .collect();
    let mut c = TcpStream::connect(addr).unwrap();
    write!(
        c,
        "POST /v1/moderate/batch HTTP/1.1\r\nHost: t\r\nConnection: close\r\nAuthorization: Bearer {key}\r\nContent-Length: {}\r\n\r\n",
        body.len()
    )
    .unwrap();
    let (first, second) = body.split_at(body.len() / 2);
    c.write_all(first.as_bytes()).unwrap();
    std::thread::sleep(Duration::from_millis(300));
    s.signal("-TERM");
    std::thread::sleep(Duration::from_millis(500));
    assert!(
        s.child.try_wait().unwrap().is_none(),
        "exited with a call in flight"
    );
    c.write_all(second.as_bytes()).unwrap();
    c.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
    let r = read_reply(c);
    assert_eq!(r.status, 200);
    assert_eq!(r.text().lines().count(), 3000);
    assert!(r
        .text()
        .lines()
        .all(|l| l.contains("\"action\":\"delete\"")));
    assert_eq!(s.wait(), Some(0));
    assert_eq!(s.records().len(), 3000);
    assert!(TcpStream::connect(addr).is_err(), "still accepting");
}

#[test]
fn after_kill_9_under_load_every_acknowledged_decision_is_in_the_store() {
    let s = Server::start("");
    let (addr, key) = (s.addr, s.moderate.clone());
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let workers: Vec<_> = (0..8)
        .map(|w| {
            let (key, stop) = (key.clone(), stop.clone());
            std::thread::spawn(move || {
                let mut acked = Vec::new();
                for i in 0.. {
                    if stop.load(std::sync::atomic::Ordering::Relaxed) {
                        break;
                    }
                    let id = format!("w{w}-{i}");
                    let body = json!({ "id": id, "text": format!("{i}号帖子：网络赌场"),
                                       "poster": { "user_id": format!("u{w}") } });
                    let Ok(mut c) = TcpStream::connect(addr) else { break };
                    let req = format!(
                        "POST /v1/moderate HTTP/1.1\r\nHost: t\r\nConnection: close\r\nAuthorization: Bearer {key}\r\nContent-Length: {}\r\n\r\n{body}",
                        body.to_string().len()
                    );
                    if c.write_all(req.as_bytes()).is_err() {
                        break;
                    }
                    let mut reply = Vec::new();
                    let _ = c.read_to_end(&mut reply);
                    if reply.starts_with(b"HTTP/1.1 200") {
                        acked.push(id);
                    }
                }
                acked
            })
        })
        .collect();
    std::thread::sleep(Duration::from_millis(1500));
    s.signal("-KILL");
    std::thread::sleep(Duration::from_millis(100));
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let acked: Vec<String> = workers
        .into_iter()
        .flat_map(|w| w.join().unwrap())
        .collect();
    assert!(acked.len() > 50, "only {} acknowledged", acked.len());
    eprintln!("{} acknowledged before kill -9", acked.len());
    let stored: HashSet<String> = s
        .records()
        .into_iter()
        .filter_map(|r| match r.post_id {
            Some(shenhe::PostId::Str(s)) => Some(s),
            _ => None,
        })
        .collect();
    let lost: Vec<&String> = acked.iter().filter(|id| !stored.contains(*id)).collect();
    assert!(
        lost.is_empty(),
        "{} acknowledged, {} not in the store: {:?}",
        acked.len(),
        lost.len(),
        &lost[..lost.len().min(5)]
    );
    // The CLI agrees: the chain verifies.
    let out = common::run(&["audit", "verify", "--db", s.db().to_str().unwrap()], b"");
    assert_eq!(common::code(&out), 0, "{}", common::stderr(&out));
}

#[test]
fn a_config_that_cannot_work_is_refused_before_listening() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("shenhe.toml");
    std::fs::write(&cfg, "[server]\nlisten = \"127.0.0.1:0\"\nlisen = 1\n").unwrap();
    let out = common::run(&["serve", "--config", cfg.to_str().unwrap()], b"");
    assert_eq!(common::code(&out), 2);
    assert!(
        common::stderr(&out).contains("shenhe.toml:3:1"),
        "{}",
        common::stderr(&out)
    );
    std::fs::write(&cfg, "[server]\nlisten = \"127.0.0.1:0\"\n").unwrap();
    let out = common::run(&["serve", "--config", cfg.to_str().unwrap()], b"");
    assert_eq!(common::code(&out), 2);
    assert!(
        common::stderr(&out).contains("no API keys"),
        "{}",
        common::stderr(&out)
    );
    // `serve key new` prints a key once and a block that admits it.
    let out = common::run(
        &[
            "serve", "key", "new", "--name", "forum", "--role", "moderate",
        ],
        b"",
    );
    assert_eq!(common::code(&out), 0);
    let text = common::stdout(&out);
    let key = text.lines().next().unwrap();
    assert!(key.starts_with("shk_") && key.len() == 68, "{key}");
    let block: toml::Value = toml::from_str(text.split_once('\n').unwrap().1).unwrap();
    use sha2::Digest;
    assert_eq!(
        block["server"]["keys"][0]["sha256"].as_str().unwrap(),
        hex::encode(sha2::Sha256::digest(key.as_bytes()))
    );
}

#[test]
fn tls_serves_the_same_routes_over_https() {
    let dir = tempfile::tempdir().unwrap();
    let made = Command::new("openssl")
        .args([
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
        ])
        .args(["-nodes", "-days", "2", "-subj", "/CN=localhost"])
        .args(["-addext", "subjectAltName=IP:127.0.0.1"])
        .args(["-keyout", "key.pem", "-out", "cert.pem"])
        .current_dir(dir.path())
        .output()
        .expect("openssl (the README's test command installs it)");
    assert!(
        made.status.success(),
        "{}",
        String::from_utf8_lossy(&made.stderr)
    );
    let s = Server::start_in(dir, "tls_cert = \"cert.pem\"\ntls_key = \"key.pem\"");
    let curl = |path: &str, body: Option<&str>| {
        let mut c = Command::new("curl");
        c.args(["-sS", "--cacert"])
            .arg(s.dir.path().join("cert.pem"))
            .args(["-w", "\n%{http_code}", "-H"])
            .arg(format!("Authorization: Bearer {}", s.moderate));
        if let Some(b) = body {
            c.args(["--data-binary", b]);
        }
        let out = c
            .arg(format!("https://127.0.0.1:{}{path}", s.addr.port()))
            .output()
            .expect("curl (the README's test command installs it)");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let text = String::from_utf8(out.stdout).unwrap();
        let (body, code) = text.rsplit_once('\n').unwrap();
        (code.to_owned(), body.to_owned())
    };
    let (code, body) = curl("/v1/moderate", Some(r#"{"id":"s1","text":"网络赌场"}"#));
    assert_eq!(code, "200", "{body}");
    assert_eq!(
        serde_json::from_str::<Value>(&body).unwrap()["action"],
        "delete"
    );
    assert_eq!(curl("/healthz", None).0, "200");
    // Plain HTTP on the TLS port is not answered as HTTP.
    let plain = std::panic::catch_unwind(|| http(s.addr, "GET", "/healthz", None, b""));
    assert!(plain.map_or(true, |r| r.status != 200));
    assert_eq!(s.records().len(), 1);
}

#[test]
fn expired_keys_and_keys_used_from_elsewhere_are_refused() {
    let block = |name: &str, extra: &str| {
        let (key, digest) = common::server::key_pair(name);
        (
            key,
            format!("[[server.keys]]\nname = \"{name}\"\nsha256 = \"{digest}\"\nroles = [\"moderate\"]\n{extra}\n"),
        )
    };
    let (expired, a) = block("old", "expires = \"2020-01-01T00:00:00+08:00\"");
    let (current, b) = block("current", "expires = \"2099-01-01T00:00:00+08:00\"");
    let (elsewhere, c) = block("office", "allow_from = [\"10.0.0.0/8\", \"2001:db8::/32\"]");
    let (here, d) = block("local", "allow_from = [\"127.0.0.1/32\"]");
    let s = Server::start_with(tempfile::tempdir().unwrap(), "", &format!("{a}{b}{c}{d}"));
    let post = r#"{"id":"k1","text":"周末一起去爬山吗"}"#.as_bytes();
    let call = |key: &str| s.call("POST", "/v1/moderate", Some(key), post);
    let old = call(&expired);
    assert_eq!(old.status, 401, "{}", old.text());
    assert!(old.text().contains("expired"), "{}", old.text());
    assert_eq!(call(&current).status, 200);
    let far = call(&elsewhere);
    assert_eq!(far.status, 403, "{}", far.text());
    assert!(far.text().contains("allow_from"), "{}", far.text());
    assert_eq!(call(&here).status, 200);
    // The log says why, naming the key.
    std::thread::sleep(Duration::from_millis(200));
    let log = s.log.lock().unwrap().clone();
    assert!(
        log.contains("\"key\":\"old\"") && log.contains("Expired"),
        "{log}"
    );
    // A config whose expiry is not a time is refused before listening.
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("shenhe.toml");
    let (_, bad) = block("typo", "expires = \"next year\"");
    std::fs::write(&cfg, format!("[server]\nlisten = \"127.0.0.1:0\"\n{bad}")).unwrap();
    let out = common::run(&["serve", "--config", cfg.to_str().unwrap()], b"");
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("not an RFC 3339 time"));
}

/// Polls `f` until it returns `Some`, for at most `secs` seconds.
fn eventually<T>(secs: u64, what: &str, mut f: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(Instant::now() < deadline, "waited {secs} s for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn a_personal_data_query_through_the_service_is_recorded_naming_the_key() {
    let s = Server::start("");
    for post in [
        r#"{"id":"q1","text":"出售冰毒","poster":{"user_id":"u77","ip":"198.51.100.7","port":50123}}"#,
        r#"{"id":"q2","text":"周末一起去爬山吗","poster":{"user_id":"u78","ip":"198.51.100.8"}}"#,
    ] {
        assert_eq!(s.moderate(post).status, 200);
    }
    let get = |path: &str, key: &str| s.call("GET", path, Some(key), b"");
    // Only the audit role reads personal data, and only naming whose.
    assert_eq!(get("/v1/audit/records?user=u77", &s.moderate).status, 403);
    assert_eq!(get("/v1/audit/records?user=u77", &s.reviewer).status, 403);
    assert_eq!(
        s.call("GET", "/v1/audit/records?user=u77", None, b"")
            .status,
        401
    );
    let none = get("/v1/audit/records", &s.auditor);
    assert_eq!(none.status, 400, "{}", none.text());
    assert!(none.text().contains("?user=ID"), "{}", none.text());
    // The records, sealed fields opened.
    let r = get("/v1/audit/records?user=u77", &s.auditor);
    assert_eq!(r.status, 200, "{}", r.text());
    let v = r.json();
    assert_eq!(v["count"], 1, "{v}");
    assert_eq!(v["records"][0]["post_id"], "q1");
    assert_eq!(v["records"][0]["personal"]["ip"], "198.51.100.7");
    assert_eq!(v["records"][0]["personal"]["port"], 50123);
    let by_ip = get("/v1/audit/records?ip=198.51.100.0/24", &s.auditor).json();
    assert_eq!(by_ip["count"], 2, "{by_ip}");
    let by_post = get("/v1/audit/records?post=q2", &s.auditor).json();
    assert_eq!(by_post["records"][0]["user_id"], "u78", "{by_post}");
    // Each read is a record naming the key, with its filter and count (refused calls left
    // none); the store verifies.
    let reads: Vec<(String, Value)> = s
        .records()
        .into_iter()
        .filter_map(|r| {
            let e = r.event?;
            (e["kind"] == "read").then(|| (r.caller.unwrap(), e))
        })
        .collect();
    assert_eq!(reads.len(), 3, "{reads:?}");
    assert!(reads.iter().all(|(caller, _)| caller == "carol"));
    assert_eq!(reads[0].1["filter"], json!({"user": "u77"}));
    assert_eq!(reads[1].1["filter"], json!({"ip": "198.51.100.0/24"}));
    assert_eq!(reads[2].1["filter"], json!({"post": "q2"}));
    let counts: Vec<&Value> = reads.iter().map(|(_, e)| &e["count"]).collect();
    assert_eq!(counts, [1, 2, 1]);
    let db = s.db();
    let verify = common::run(&["audit", "verify", "--db", db.to_str().unwrap()], b"");
    assert_eq!(common::code(&verify), 0, "{}", common::stdout(&verify));
    // The command line cannot record a read while the service holds the store: it says
    // where to read instead, and shows nothing.
    let key_file = s.dir.path().join("audit.key");
    let out = common::run(
        &[
            "audit",
            "query",
            "--db",
            db.to_str().unwrap(),
            "--key-file",
            key_file.to_str().unwrap(),
            "--operator",
            "张三",
            "--user",
            "u77",
        ],
        b"",
    );
    assert_eq!(common::code(&out), 2);
    let err = common::stderr(&out);
    assert!(
        err.contains("shenhe serve") && err.contains("GET /v1/audit/records"),
        "{err}"
    );
    assert!(common::stdout(&out).is_empty());
}

#[test]
fn a_rotated_keys_old_value_works_during_grace_and_is_refused_after() {
    let s = Server::start("");
    let config = s.dir.path().join("shenhe.toml");
    let rotate = |grace: &str| -> String {
        let out = common::run(
            &[
                "serve",
                "key",
                "rotate",
                "--name",
                "forum",
                "--grace",
                grace,
                "--config",
                config.to_str().unwrap(),
            ],
            b"",
        );
        assert_eq!(common::code(&out), 0, "{}", common::stderr(&out));
        common::stdout(&out).trim().to_owned()
    };
    let post = r#"{"id":"r1","text":"周末一起去爬山吗"}"#.as_bytes();
    let call = |key: &str| s.call("POST", "/v1/moderate", Some(key), post);
    let first = rotate("1h");
    assert!(first.starts_with("shk_"), "{first}");
    // The service takes the new key when it reads its config again.
    assert_eq!(call(&first).status, 401);
    let reload = s.call("POST", "/admin/reload", Some(&s.admin), b"");
    assert_eq!(reload.status, 200, "{}", reload.text());
    assert_eq!(call(&first).status, 200);
    assert_eq!(
        call(&s.moderate).status,
        200,
        "the old key works during its grace period"
    );
    // A second rotation without grace: every earlier key of the name ends now.
    let second = rotate("0s");
    s.signal("-HUP");
    eventually(30, "the SIGHUP reload", || {
        (call(&second).status == 200).then_some(())
    });
    for old in [&s.moderate, &first] {
        let r = call(old);
        assert_eq!(r.status, 401, "{}", r.text());
        assert!(r.text().contains("expired"), "{}", r.text());
    }
    // Rotating a name the config does not have changes nothing and says which it has.
    let before = std::fs::read_to_string(&config).unwrap();
    let out = common::run(
        &[
            "serve",
            "key",
            "rotate",
            "--name",
            "nobody",
            "--config",
            config.to_str().unwrap(),
        ],
        b"",
    );
    assert_eq!(common::code(&out), 2);
    assert!(
        common::stderr(&out).contains("no key named \"nobody\""),
        "{}",
        common::stderr(&out)
    );
    assert_eq!(std::fs::read_to_string(&config).unwrap(), before);
    // Each change of the keys in force is in the chain, naming who made the service read
    // it, never with a key itself; the store verifies.
    let records = s.all_records();
    let changes: Vec<(String, Value)> = records
        .iter()
        .filter_map(|r| {
            let e = r.event.clone()?;
            (e["kind"] == "credentials").then(|| (r.caller.clone().unwrap(), e))
        })
        .collect();
    let callers: Vec<&str> = changes.iter().map(|(c, _)| c.as_str()).collect();
    assert_eq!(callers, ["shenhe serve start", "ops", "SIGHUP"]);
    let id = |key: &str| {
        use sha2::{Digest, Sha256};
        hex::encode(Sha256::digest(key.as_bytes()))[..12].to_owned()
    };
    let said = changes[1].1["changes"].to_string();
    assert!(
        said.contains(&format!("key forum {} added", id(&first))),
        "{said}"
    );
    assert!(
        said.contains(&format!("key forum {}: expires null", id(&s.moderate))),
        "{said}"
    );
    let all = serde_json::to_string(&records).unwrap();
    for key in [&s.moderate, &first, &second] {
        assert!(!all.contains(key.as_str()), "a key in the audit store");
    }
}

#[test]
fn scheduled_backups_are_verified_recorded_and_reported_in_metrics() {
    let s = Server::start_with(
        tempfile::tempdir().unwrap(),
        "",
        "[audit]\nbackup_dir = \"backups\"\nbackup_every = \"1s\"\nbackup_keep = 2\n",
    );
    assert_eq!(s.moderate(r#"{"id":"b1","text":"出售冰毒"}"#).status, 200);
    let backups = || -> Vec<Value> {
        s.records()
            .into_iter()
            .filter_map(|r| r.event.filter(|e| e["kind"] == "backup"))
            .collect()
    };
    let taken = eventually(60, "three scheduled backups", || {
        let b = backups();
        (b.len() >= 3).then_some(b)
    });
    let metrics = s.call("GET", "/metrics", None, b"").text();
    let value = |name: &str| -> f64 {
        metrics
            .lines()
            .find_map(|l| l.strip_prefix(&format!("{name} ")))
            .unwrap_or_else(|| panic!("no {name} in {metrics}"))
            .parse()
            .unwrap()
    };
    assert!(value("shenhe_audit_backup_last_timestamp_seconds") > 1.7e9);
    assert!(value("shenhe_audit_backup_last_records") >= 2.0);
    assert_eq!(value("shenhe_audit_backup_failures_total"), 0.0);
    // Rotation removed the oldest; the last backup recorded proves itself with its head.
    assert!(taken
        .iter()
        .any(|e| !e["removed"].as_array().unwrap().is_empty()));
    let dir = s.dir.path().join("backups");
    for e in &taken {
        for gone in e["removed"].as_array().unwrap() {
            assert!(!dir.join(gone.as_str().unwrap()).exists(), "{gone}");
        }
    }
    let last = taken.last().unwrap();
    let file = dir.join(last["file"].as_str().unwrap());
    let out = common::run(
        &[
            "audit",
            "verify",
            "--db",
            file.to_str().unwrap(),
            "--expect-head",
            last["head"].as_str().unwrap(),
        ],
        b"",
    );
    assert_eq!(common::code(&out), 0, "{}", common::stdout(&out));
    // The backup holds the decision made before it.
    let mut shown = String::new();
    let out = common::run(
        &["audit", "query", "--db", file.to_str().unwrap(), "--json"],
        b"",
    );
    shown.push_str(&common::stdout(&out));
    assert!(shown.contains("\"post_id\":\"b1\""), "{shown}");
}

#[test]
fn a_new_key_piped_to_a_reader_that_stops_early_is_not_a_crash() {
    // `shenhe serve key new ... | head -1`: the reader keeps the key and goes; the rest of
    // the output meets a closed pipe. It panicked there (exit 101) once in a while.
    for _ in 0..5 {
        let mut child = common::shenhe()
            .args([
                "serve", "key", "new", "--name", "forum", "--role", "moderate",
            ])
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        drop(child.stdout.take());
        let out = child.wait_with_output().unwrap();
        assert_eq!(
            out.status.code(),
            Some(0),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

#[test]
fn the_service_prunes_its_store_past_retention_and_records_it() {
    // A store with a decision recorded long ago, then the service on it with pruning on.
    let dir = tempfile::tempdir().unwrap();
    let key = shenhe::audit::AuditKey::generate();
    std::fs::write(dir.path().join("audit.key"), key.to_hex()).unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(
        dir.path().join("audit.key"),
        std::fs::Permissions::from_mode(0o600),
    )
    .unwrap();
    {
        let mut store =
            shenhe::audit::AuditStore::open(dir.path().join("audit.db"), Some(key)).unwrap();
        let run = store.begin_run(None, None, "hash").unwrap();
        let post = shenhe::Post::from_json(r#"{"id":"old","text":"出售冰毒"}"#).unwrap();
        let d = shenhe::Engine::bundled().scan(&post);
        let long_ago = "2025-01-02T08:00:00Z".parse().unwrap();
        store
            .append(run, vec![(None, &post, &d)], long_ago)
            .unwrap();
    }
    let s = Server::start_with(dir, "", "[audit]\nprune_max_days = 190\n");
    let pruned = eventually(30, "a prune recorded", || {
        s.records()
            .into_iter()
            .find_map(|r| r.event.filter(|e| e["kind"] == "prune"))
    });
    assert_eq!(pruned["records"], 1, "{pruned}");
    assert_eq!(pruned["days"], json!(["2025-01-02"]), "{pruned}");
    let old = Some(shenhe::PostId::Str("old".into()));
    assert!(
        s.records().iter().all(|r| r.post_id != old),
        "the old record is gone"
    );
    // The service goes on recording, and the store still verifies.
    assert_eq!(s.moderate(r#"{"id":"new","text":"出售冰毒"}"#).status, 200);
    let out = common::run(
        &[
            "audit",
            "verify",
            "--db",
            s.dir.path().join("audit.db").to_str().unwrap(),
        ],
        b"",
    );
    assert_eq!(common::code(&out), 0, "{}", common::stdout(&out));
    // Fewer days than the floor: refused before listening, naming the key.
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("shenhe.toml");
    std::fs::write(
        &cfg,
        format!("[server]\nlisten = \"127.0.0.1:0\"\naudit = \"audit.db\"\n\n[[server.keys]]\nname = \"f\"\nsha256 = \"{}\"\nroles = [\"moderate\"]\n\n[audit]\nprune_max_days = 100\n", "0".repeat(64)),
    )
    .unwrap();
    let out = common::run(&["serve", "--config", cfg.to_str().unwrap()], b"");
    assert_ne!(common::code(&out), 0);
    assert!(
        common::stderr(&out).contains("prune_max_days = 100"),
        "{}",
        common::stderr(&out)
    );
}

#[test]
fn after_its_store_fails_and_mends_the_service_is_ready_again_without_a_post() {
    let s = Server::start("");
    assert_eq!(s.moderate(r#"{"id":"f1","text":"出售冰毒"}"#).status, 200);
    // The store breaks under the service: the next post is not acknowledged, and the
    // service says it is not ready.
    let c = rusqlite::Connection::open(s.db()).unwrap();
    c.execute_batch("ALTER TABLE records RENAME TO gone")
        .unwrap();
    let failed = s.moderate(r#"{"id":"f2","text":"出售冰毒"}"#);
    assert_eq!(failed.status, 503, "{}", failed.text());
    let ready = s.call("GET", "/readyz", None, b"");
    assert_eq!(ready.status, 503, "{}", ready.text());
    assert!(ready.text().contains("no such table"), "{}", ready.text());
    // Mended. No post comes (a balancer heeding /readyz sends none): the service's own
    // check finds the store working and records that it did.
    c.execute_batch("ALTER TABLE gone RENAME TO records")
        .unwrap();
    eventually(30, "ready again", || {
        (s.call("GET", "/readyz", None, b"").status == 200).then_some(())
    });
    let checks: Vec<Value> = s
        .records()
        .into_iter()
        .filter_map(|r| r.event.filter(|e| e["kind"] == "store_check"))
        .collect();
    assert_eq!(checks.len(), 1, "{checks:?}");
    assert!(
        checks[0]["after"]
            .as_str()
            .is_some_and(|a| a.contains("no such table")),
        "{checks:?}"
    );
    assert_eq!(s.moderate(r#"{"id":"f2","text":"出售冰毒"}"#).status, 200);
    let db = s.db();
    let verify = common::run(&["audit", "verify", "--db", db.to_str().unwrap()], b"");
    assert_eq!(common::code(&verify), 0, "{}", common::stdout(&verify));
}
