//! `shenhe serve` started for a test: the real binary on a loopback port with a config of
//! its own (a sealed audit store unless told otherwise, keys for every role), and plain
//! HTTP/1.1 over a socket (no client library between the test and the wire).

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;
use shenhe::audit::{AuditKey, AuditStore, Filter};

pub struct Server {
    pub child: Child,
    pub addr: SocketAddr,
    pub dir: tempfile::TempDir,
    pub moderate: String,
    pub admin: String,
    pub slow: String,
    /// A key with the `review` role (named alice) and one with `review` and `audit` (carol).
    pub reviewer: String,
    pub auditor: String,
    pub key: AuditKey,
    pub log: std::sync::Arc<std::sync::Mutex<String>>,
}

/// A key of our own and its SHA-256, so the config can be written without the binary.
pub fn key_pair(name: &str) -> (String, String) {
    use sha2::{Digest, Sha256};
    let key = format!("shk_test_{name}_{}", "7".repeat(40));
    let digest = hex::encode(Sha256::digest(key.as_bytes()));
    (key, digest)
}

impl Server {
    /// Starts the service with `extra` lines added to `[server]`.
    pub fn start(extra: &str) -> Server {
        let dir = tempfile::tempdir().unwrap();
        Server::start_in(dir, extra)
    }

    pub fn start_in(dir: tempfile::TempDir, extra: &str) -> Server {
        Server::start_with(dir, extra, "")
    }

    /// With `extra` lines in `[server]` and `tail` after the keys (other tables).
    pub fn start_with(dir: tempfile::TempDir, extra: &str, tail: &str) -> Server {
        // A restart in the same directory keeps the store's key.
        let key_file = dir.path().join("audit.key");
        let key = match AuditKey::from_file(&key_file) {
            Ok(key) => key,
            Err(_) => AuditKey::generate(),
        };
        std::fs::write(&key_file, key.to_hex()).unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&key_file, std::fs::Permissions::from_mode(0o600)).unwrap();
        let (moderate, m) = key_pair("forum");
        let (admin, a) = key_pair("ops");
        let (slow, s) = key_pair("slow");
        let (reviewer, r) = key_pair("alice");
        let (auditor, u) = key_pair("carol");
        // `extra` starting with "# no audit" leaves the store out.
        let store = if extra.starts_with("# no audit") {
            ""
        } else {
            "audit = \"audit.db\"\naudit_key_file = \"audit.key\"\n"
        };
        let config = format!(
            "[server]\nlisten = \"127.0.0.1:0\"\n{store}{extra}\n\
             [[server.keys]]\nname = \"forum\"\nsha256 = \"{m}\"\nroles = [\"moderate\"]\n\
             [[server.keys]]\nname = \"ops\"\nsha256 = \"{a}\"\nroles = [\"admin\"]\n\
             [[server.keys]]\nname = \"slow\"\nsha256 = \"{s}\"\nroles = [\"moderate\"]\nrate_limit = 2\n\
             [[server.keys]]\nname = \"alice\"\nsha256 = \"{r}\"\nroles = [\"review\"]\n\
             [[server.keys]]\nname = \"carol\"\nsha256 = \"{u}\"\nroles = [\"review\", \"audit\"]\n{tail}"
        );
        std::fs::write(dir.path().join("shenhe.toml"), config).unwrap();
        let mut child = super::shenhe()
            .args(["serve", "--config"])
            .arg(dir.path().join("shenhe.toml"))
            .env_remove("SHENHE_AUDIT_KEY")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let log = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
        let mut stderr = BufReader::new(child.stderr.take().unwrap());
        let sink = log.clone();
        std::thread::spawn(move || {
            let mut line = String::new();
            while stderr.read_line(&mut line).unwrap_or(0) > 0 {
                sink.lock().unwrap().push_str(&line);
                line.clear();
            }
        });
        let mut first = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut first)
            .unwrap();
        let addr = first
            .trim()
            .rsplit("://")
            .next()
            .and_then(|a| a.parse().ok())
            .unwrap_or_else(|| {
                std::thread::sleep(Duration::from_millis(200));
                panic!("no address in {first:?}; log: {}", log.lock().unwrap())
            });
        Server {
            child,
            addr,
            dir,
            moderate,
            admin,
            slow,
            reviewer,
            auditor,
            key,
            log,
        }
    }

    pub fn db(&self) -> PathBuf {
        self.dir.path().join("audit.db")
    }

    pub fn call(&self, method: &str, path: &str, key: Option<&str>, body: &[u8]) -> Reply {
        http(self.addr, method, path, key, body)
    }

    pub fn moderate(&self, body: &str) -> Reply {
        self.call(
            "POST",
            "/v1/moderate",
            Some(&self.moderate),
            body.as_bytes(),
        )
    }

    pub fn signal(&self, sig: &str) {
        let ok = Command::new("kill")
            .args([sig, &self.child.id().to_string()])
            .status()
            .unwrap()
            .success();
        assert!(ok, "kill {sig}");
    }

    /// Waits for the process to exit; its exit code.
    pub fn wait(&mut self) -> Option<i32> {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status.code();
            }
            assert!(Instant::now() < deadline, "the service did not stop");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Every record in the store (verified first) but the service's records of the keys
    /// and users in force (events of kind `credentials`, one at each start or reload that
    /// changes them): what the posts and people's acts left.
    pub fn records(&self) -> Vec<shenhe::audit::AuditRecord> {
        self.all_records()
            .into_iter()
            .filter(|r| r.event.as_ref().is_none_or(|e| e["kind"] != "credentials"))
            .collect()
    }

    /// Every record in the store, verified first.
    pub fn all_records(&self) -> Vec<shenhe::audit::AuditRecord> {
        let store = AuditStore::open(self.db(), Some(self.key.clone())).unwrap();
        assert_eq!(store.verify(None).unwrap().problem, None, "audit verify");
        let mut out = Vec::new();
        store
            .query(&Filter::default(), |r| {
                out.push(r);
                Ok(())
            })
            .unwrap();
        out
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Reply {
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(&self.body)))
    }

    pub fn text(&self) -> String {
        String::from_utf8(self.body.clone()).unwrap()
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// One HTTP/1.1 request on a fresh connection; the reply with a chunked body decoded.
pub fn http(addr: SocketAddr, method: &str, path: &str, key: Option<&str>, body: &[u8]) -> Reply {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
    let auth = key.map_or(String::new(), |k| format!("Authorization: Bearer {k}\r\n"));
    let head = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n{auth}Content-Type: application/json\r\nContent-Length: {}\r\n\r\n",
        body.len()
    );
    s.write_all(head.as_bytes()).unwrap();
    s.write_all(body).unwrap();
    read_reply(s)
}

pub fn read_reply(s: TcpStream) -> Reply {
    let mut r = BufReader::new(s);
    let mut line = String::new();
    r.read_line(&mut line).unwrap();
    let status: u16 = line
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or_else(|| panic!("no status line: {line:?}"));
    let mut headers = Vec::new();
    loop {
        line.clear();
        r.read_line(&mut line).unwrap();
        let l = line.trim_end();
        if l.is_empty() {
            break;
        }
        let (k, v) = l.split_once(':').unwrap();
        headers.push((k.trim().to_owned(), v.trim().to_owned()));
    }
    let chunked = headers
        .iter()
        .any(|(k, v)| k.eq_ignore_ascii_case("transfer-encoding") && v.contains("chunked"));
    let mut body = Vec::new();
    if chunked {
        loop {
            line.clear();
            r.read_line(&mut line).unwrap();
            let n = usize::from_str_radix(line.trim(), 16).unwrap();
            if n == 0 {
                break;
            }
            let mut chunk = vec![0; n + 2];
            r.read_exact(&mut chunk).unwrap();
            body.extend_from_slice(&chunk[..n]);
        }
    } else if let Some((_, n)) = headers
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case("content-length"))
    {
        // Exactly the body: a peer may keep the connection open (chromedriver does).
        body = vec![0; n.parse().unwrap()];
        r.read_exact(&mut body).unwrap();
    } else {
        r.read_to_end(&mut body).unwrap();
    }
    Reply {
        status,
        headers,
        body,
    }
}
