//! The review console in a real browser: headless Chromium driven over WebDriver
//! (chromedriver, spoken to in plain HTTP/JSON), as a reviewer uses it: log in, open the
//! queue, open a post, give a verdict with one key, see it leave the queue. Screenshots of
//! the queue and of a post page are saved under target/ (console-queue.png,
//! console-post.png).
//!
//! Needs Debian's chromium and chromium-driver. Without them the test says so and passes,
//! unless SHENHE_BROWSER_TEST=required (as `.ci/run` sets it), when it fails.

mod common;

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::server::{http, Server};
use serde_json::{json, Value};

const PASSWORD: &str = "审核员的长密码-2026";

struct Driver {
    child: Child,
    addr: SocketAddr,
    session: String,
    _profile: tempfile::TempDir,
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = http(
            self.addr,
            "DELETE",
            &format!("/session/{}", self.session),
            None,
            b"",
        );
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn found(program: &str) -> Option<PathBuf> {
    ["/usr/bin", "/usr/local/bin", "/usr/lib/chromium"]
        .iter()
        .map(|d| PathBuf::from(d).join(program))
        .find(|p| p.is_file())
}

impl Driver {
    /// chromedriver on a free port and a headless Chromium session; `None` when they are
    /// not installed.
    fn start() -> Option<Driver> {
        let (Some(driver), Some(browser)) = (found("chromedriver"), found("chromium")) else {
            let required = std::env::var("SHENHE_BROWSER_TEST").is_ok_and(|v| v == "required");
            assert!(
                !required,
                "the console's browser test needs chromium and chromedriver: apt-get install chromium chromium-driver"
            );
            eprintln!(
                "SKIPPED: no chromium/chromedriver (apt-get install chromium chromium-driver)"
            );
            return None;
        };
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let child = Command::new(driver)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let addr: SocketAddr = ([127, 0, 0, 1], port).into();
        let deadline = Instant::now() + Duration::from_secs(20);
        while TcpStream::connect(addr).is_err() {
            assert!(Instant::now() < deadline, "chromedriver did not start");
            std::thread::sleep(Duration::from_millis(50));
        }
        let profile = tempfile::tempdir().unwrap();
        let caps = json!({"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            "goog:chromeOptions": {
                "binary": browser,
                "args": ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                         "--disable-quic", "--no-first-run", "--disable-background-networking",
                         "--disable-component-update", "--disable-sync", "--window-size=1280,900",
                         format!("--user-data-dir={}", profile.path().display())]
            }
        }}});
        let r = http(addr, "POST", "/session", None, caps.to_string().as_bytes());
        assert_eq!(r.status, 200, "new session: {}", r.text());
        let session = r.json()["value"]["sessionId"].as_str().unwrap().to_owned();
        let driver = Driver {
            child,
            addr,
            session,
            _profile: profile,
        };
        // Finding an element waits (up to 10 s) for the page that has it: a click that
        // submits a form returns before the next page is there.
        driver.call("POST", "/timeouts", json!({"implicit": 10_000}));
        Some(driver)
    }

    fn call(&self, method: &str, path: &str, body: Value) -> Value {
        let body = if method == "GET" {
            Vec::new()
        } else {
            body.to_string().into_bytes()
        };
        let r = http(
            self.addr,
            method,
            &format!("/session/{}{path}", self.session),
            None,
            &body,
        );
        assert_eq!(r.status, 200, "{method} {path}: {}", r.text());
        r.json()["value"].clone()
    }

    fn go(&self, url: &str) {
        self.call("POST", "/url", json!({ "url": url }));
    }

    fn url(&self) -> String {
        self.call("GET", "/url", json!({}))
            .as_str()
            .unwrap()
            .to_owned()
    }

    fn find(&self, css: &str) -> String {
        let v = self.call(
            "POST",
            "/element",
            json!({"using": "css selector", "value": css}),
        );
        v.as_object()
            .unwrap()
            .values()
            .next()
            .unwrap()
            .as_str()
            .unwrap()
            .to_owned()
    }

    /// The number of elements matching `css` once it is `want` (a page still loading), or
    /// what it is after 10 s.
    fn count(&self, css: &str, want: usize) -> usize {
        let js = format!("return document.querySelectorAll({}).length", json!(css));
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let n = self.script(&js).as_u64().unwrap() as usize;
            if n == want || Instant::now() > deadline {
                return n;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn type_into(&self, css: &str, text: &str) {
        let e = self.find(css);
        self.call(
            "POST",
            &format!("/element/{e}/value"),
            json!({ "text": text }),
        );
    }

    fn click(&self, css: &str) {
        let e = self.find(css);
        self.call("POST", &format!("/element/{e}/click"), json!({}));
    }

    fn text(&self, css: &str) -> String {
        let e = self.find(css);
        self.call("GET", &format!("/element/{e}/text"), json!({}))
            .as_str()
            .unwrap()
            .to_owned()
    }

    fn script(&self, js: &str) -> Value {
        self.call("POST", "/execute/sync", json!({"script": js, "args": []}))
    }

    /// One key pressed and released, as a person types it (to whatever has the focus).
    fn press(&self, key: &str) {
        self.call(
            "POST",
            "/actions",
            json!({"actions": [{"type": "key", "id": "keyboard", "actions": [
                {"type": "keyDown", "value": key}, {"type": "keyUp", "value": key}]}]}),
        );
    }

    /// Waits until the page's address ends with `suffix`.
    fn wait_for_url(&self, pred: impl Fn(&str) -> bool) -> String {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let u = self.url();
            if pred(&u) {
                return u;
            }
            assert!(Instant::now() < deadline, "still at {u}");
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn screenshot(&self, name: &str) -> PathBuf {
        let b64 = self.call("GET", "/screenshot", json!({}));
        let png = base64_decode(b64.as_str().unwrap());
        assert!(png.starts_with(b"\x89PNG"), "a PNG");
        let dir = common::manifest().join("target");
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join(name);
        std::fs::write(&path, png).unwrap();
        path
    }
}

fn base64_decode(s: &str) -> Vec<u8> {
    let value = |c: u8| -> u32 {
        match c {
            b'A'..=b'Z' => (c - b'A') as u32,
            b'a'..=b'z' => (c - b'a' + 26) as u32,
            b'0'..=b'9' => (c - b'0' + 52) as u32,
            b'+' => 62,
            b'/' => 63,
            _ => panic!("not base64: {c}"),
        }
    };
    let bytes: Vec<u8> = s.bytes().filter(|&c| c != b'=' && c != b'\n').collect();
    let mut out = Vec::with_capacity(bytes.len() * 3 / 4);
    for chunk in bytes.chunks(4) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |acc, (i, &c)| acc | value(c) << (18 - 6 * i));
        out.extend_from_slice(&n.to_be_bytes()[1..chunk.len()]);
    }
    out
}

/// A console user's config block, with the password hashed by `shenhe serve user new`.
fn user_block(name: &str, roles: &[&str]) -> String {
    let mut args = vec!["serve", "user", "new", "--name", name];
    for r in roles {
        args.extend(["--role", r]);
    }
    let out = common::run(&args, format!("{PASSWORD}\n").as_bytes());
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn a_reviewer_logs_in_opens_a_post_and_removes_it_with_one_key() {
    let Some(browser) = Driver::start() else {
        return;
    };
    let s = Server::start_with(
        tempfile::tempdir().unwrap(),
        "",
        &user_block("王审核", &["review"]),
    );
    // Two held posts; the first carries markup that must show as text, never run.
    for (id, text) in [
        (
            "c1",
            "紧急扩散！<script>window.pwned = 1</script><b>明天全城停水停电</b>",
        ),
        ("c2", "开光转运符，包你发财"),
    ] {
        let post = json!({"id": id, "text": text, "board": "chat",
                          "poster": {"user_id": format!("u-{id}"), "ip": format!("203.0.113.{}", id.len())}});
        let d = s.moderate(&post.to_string()).json();
        assert_eq!(d["action"], "review", "{d}");
    }
    let base = format!("http://{}", s.addr);

    // Not logged in: the login page.
    browser.go(&format!("{base}/console"));
    browser.wait_for_url(|u| u.ends_with("/console/login"));
    browser.type_into("#name", "王审核");
    browser.type_into("#password", "wrong password");
    browser.click("#login");
    assert!(browser.text("#error").contains("不对"));
    browser.type_into("#name", "王审核");
    browser.type_into("#password", PASSWORD);
    browser.click("#login");
    browser.wait_for_url(|u| u.ends_with("/console"));

    // The queue: both posts, oldest first.
    assert_eq!(browser.count("#queue tr.row", 2), 2);
    let queue_png = browser.screenshot("console-queue.png");

    // Enter opens the selected (first) post.
    browser.press("\u{E007}");
    browser.wait_for_url(|u| u.ends_with("/console/reviews/1"));
    assert_eq!(browser.text("#text mark"), "紧急扩散");
    assert!(
        browser
            .text("#text")
            .contains("<script>window.pwned = 1</script><b>明天全城停水停电</b>"),
        "markup shows as text"
    );
    assert_eq!(
        browser.script("return typeof window.pwned"),
        json!("undefined")
    );
    assert_eq!(browser.count("#text b", 0), 0);
    assert!(browser.text("#hits").contains("rumour.chain-message"));
    assert!(
        browser.text("#hits").contains("第十五条"),
        "the legal basis"
    );
    let post_png = browser.screenshot("console-post.png");

    // One key: remove. The console moves on to the next open post.
    browser.press("r");
    browser.wait_for_url(|u| u.ends_with("/console/reviews/2"));
    browser.go(&format!("{base}/console"));
    assert_eq!(
        browser.count("#queue tr.row", 1),
        1,
        "the decided post left the queue"
    );
    assert_eq!(browser.count("#queue a[href='/console/reviews/1']", 0), 0);

    // The verdict is the reviewer's, in the audit chain.
    let verdicts: Vec<_> = s
        .records()
        .into_iter()
        .filter(|r| r.event.is_some())
        .collect();
    assert_eq!(verdicts.len(), 1);
    assert_eq!(verdicts[0].caller.as_deref(), Some("王审核"));
    assert_eq!(verdicts[0].event.as_ref().unwrap()["verdict"], "remove");
    for png in [queue_png, post_png] {
        assert!(
            std::fs::metadata(&png).unwrap().len() > 10_000,
            "{}",
            png.display()
        );
    }
}
