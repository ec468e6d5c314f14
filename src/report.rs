//! Reports to the authorities: for each decision with `report = true`, a record an officer
//! can act on without asking anything back, and the files `shenhe scan --reports DIR`
//! writes (one JSON file per report, a CSV index, an HTML page for the officer on duty).

use std::fmt::Write as _;
use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::category::LEGAL_BASIS;
use crate::post::{Decision, Hit, Post, PostId, Poster, RulesetInfo};
use crate::rules::RuleSet;
use crate::vocab::{Action, Measure};

/// The duties the law attaches to a finding, quoted in every report.
pub const DUTIES: [&str; 2] = [
    "《互联网信息服务管理办法》第十六条：互联网信息服务提供者发现其网站传输的信息明显属于本办法第十五条所列内容之一的，应当立即停止传输，保存有关记录，并向国家有关机关报告。",
    "《中华人民共和国网络安全法》第四十七条：网络运营者发现法律、行政法规禁止发布或者传输的信息的，应当立即停止传输该信息，采取消除等处置措施，防止信息扩散，保存有关记录，并向有关主管部门报告。",
];

/// The default time to act on a report: 24 hours after detection.
pub const DEFAULT_DEADLINE_HOURS: u32 = 24;

/// A category as a report names it, with its legal basis.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReportCategory {
    /// The category number.
    pub number: u16,
    /// Its official title (or the custom title).
    pub title: String,
    /// English gloss.
    pub gloss: String,
    /// The provision it rests on (第十五条第（七）项), or the rule set for custom ones.
    pub basis: String,
}

impl ReportCategory {
    /// Category `n` of `rules`, with the provision it rests on.
    pub fn of(rules: &RuleSet, n: u16) -> ReportCategory {
        let c = rules.category(n);
        let (title, gloss) = c.map_or((String::new(), String::new()), |c| {
            (c.title.clone(), c.gloss.clone())
        });
        let basis = match c {
            Some(c) if c.is_statutory() => format!("{LEGAL_BASIS}第{}项", c.label()),
            _ => format!("规则集 {} 自定义类别 {n}", rules.info().name),
        };
        ReportCategory {
            number: n,
            title,
            gloss,
            basis,
        }
    }
}

/// One report to the authorities.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Report {
    /// The post's id.
    pub post_id: Option<PostId>,
    /// The input line, when scanned from a file.
    pub line: Option<u64>,
    /// The board.
    pub board: Option<String>,
    /// The title.
    pub title: Option<String>,
    /// The full original text.
    pub text: String,
    /// When it was published (the post's `time`, as given).
    pub published: Option<String>,
    /// When shenhe detected it (RFC 3339, at the calendar's UTC offset: +08:00 by default).
    pub detected: String,
    /// When the report is due (RFC 3339, at the same offset).
    pub deadline: String,
    /// Account, real-name reference, IP and source port, as the forum gave them.
    pub poster: Option<Poster>,
    /// Each category with its number, official title and legal basis.
    pub categories: Vec<ReportCategory>,
    /// The duties the law attaches (stop, delete, keep records, report).
    pub duties: Vec<String>,
    /// The rules and the matched spans.
    pub hits: Vec<Hit>,
    /// The action taken.
    pub action: Action,
    /// Account measures from escalation.
    pub measures: Vec<Measure>,
    /// Problems with the post's metadata.
    pub warnings: Vec<String>,
    /// The rule set: name, version and hash.
    pub ruleset: Arc<RulesetInfo>,
}

/// RFC 3339 at `utc_offset_hours` (UTC+08:00 in China), to the second.
fn local_time(ts: jiff::Timestamp, utc_offset_hours: i8) -> String {
    let ts = jiff::Timestamp::from_second(ts.as_second()).unwrap_or(ts);
    let offset = jiff::tz::Offset::from_hours(utc_offset_hours).unwrap_or(jiff::tz::Offset::UTC);
    ts.display_with_offset(offset).to_string()
}

impl Report {
    /// The report of `decision` on `post`, detected at `detected`, due `deadline_hours` later,
    /// its times shown at `utc_offset_hours` (8 in China).
    pub fn new(
        post: &Post,
        decision: &Decision,
        rules: &RuleSet,
        detected: jiff::Timestamp,
        deadline_hours: u32,
        utc_offset_hours: i8,
    ) -> Report {
        let categories = decision
            .categories
            .iter()
            .map(|&n| ReportCategory::of(rules, n))
            .collect();
        let deadline = detected
            .checked_add(jiff::SignedDuration::from_hours(i64::from(deadline_hours)))
            .unwrap_or(detected);
        Report {
            post_id: decision.id.clone(),
            line: decision.line,
            board: post.board.clone(),
            title: post.title.clone(),
            text: post.text.clone(),
            published: post.time.clone(),
            detected: local_time(detected, utc_offset_hours),
            deadline: local_time(deadline, utc_offset_hours),
            poster: post.poster.clone(),
            categories,
            duties: DUTIES.iter().map(|d| (*d).to_owned()).collect(),
            hits: decision.hits.clone(),
            action: decision.action,
            measures: decision.measures.clone(),
            warnings: decision.warnings.clone(),
            ruleset: decision.ruleset.clone(),
        }
    }

    /// A file name for this report: the line (or a sequence number) and the id, cleaned
    /// to letters, digits, `-` and `_`, and cut to at most 64 characters and 96 bytes (a
    /// file name may not exceed 255 bytes). Two reports may get the same name (`post.1` and
    /// `post/1`): [`ReportWriter::write`] then numbers the second.
    pub fn file_name(&self, seq: u64) -> String {
        let id = match &self.post_id {
            Some(PostId::Int(i)) => i.to_string(),
            Some(PostId::Str(s)) => {
                let mut out = String::new();
                for c in s.chars().take(64) {
                    let c = if c.is_alphanumeric() || c == '-' || c == '_' {
                        c
                    } else {
                        '_'
                    };
                    if out.len() + c.len_utf8() > 96 {
                        break;
                    }
                    out.push(c);
                }
                out
            }
            None => "noid".to_owned(),
        };
        format!("report-{:08}-{id}.json", self.line.unwrap_or(seq))
    }
}

/// Writes reports into a directory: `report-….json` each (never overwriting one already
/// there), `index.csv` (UTF-8 with BOM, so spreadsheet programs show Chinese) row by row as
/// they come, and `index.html` on [`flush`](ReportWriter::flush) and
/// [`finish`](ReportWriter::finish).
#[derive(Debug)]
pub struct ReportWriter {
    dir: PathBuf,
    csv: BufWriter<File>,
    html_rows: String,
    seq: u64,
    /// Report files in the indexes: one row each, never two (their number is the count).
    listed: std::collections::HashSet<String>,
}

/// The start of `index.csv`: a UTF-8 BOM (so spreadsheet programs show Chinese) and the
/// header line.
const CSV_HEAD: &str = "\u{feff}post_id,line,detected,deadline,published,board,title,user_id,identity_ref,verified,ip,port,categories,basis,rules,matched,action,measures,ruleset_hash,file,text\n";

impl ReportWriter {
    /// Creates the directory if needed and starts a new index (one scan's reports).
    pub fn create(dir: impl AsRef<Path>) -> io::Result<ReportWriter> {
        let dir = dir.as_ref().to_path_buf();
        crate::fsx::private_dir_all(&dir)?;
        let index = dir.join("index.csv");
        crate::fsx::replace(&index, CSV_HEAD.as_bytes())?;
        let csv = BufWriter::new(crate::fsx::append_no_follow(&index)?);
        Ok(ReportWriter {
            dir,
            csv,
            html_rows: String::new(),
            seq: 0,
            listed: Default::default(),
        })
    }

    /// Opens a directory to add reports to, keeping those already there (a long-running
    /// moderator, restarted; a resumed scan): numbering continues after the highest report
    /// there, `index.html` lists the old reports and the new, and `index.csv` is rebuilt
    /// from the report files (one row each, in file order: a row lost to a crash comes
    /// back, none is doubled) and appended to. A report a resumed scan decides again (same
    /// input line, same file name) is rewritten in place and keeps its one row.
    pub fn open(dir: impl AsRef<Path>) -> io::Result<ReportWriter> {
        let dir = dir.as_ref().to_path_buf();
        crate::fsx::private_dir_all(&dir)?;
        let mut names: Vec<String> = std::fs::read_dir(&dir)?
            .filter_map(|e| e.ok()?.file_name().into_string().ok())
            .filter(|n| n.starts_with("report-") && n.ends_with(".json"))
            .collect();
        names.sort();
        let mut csv = String::from(CSV_HEAD);
        let (mut html_rows, mut seq) = (String::new(), 0);
        for name in &names {
            let number = name["report-".len()..]
                .split('-')
                .next()
                .unwrap_or_default();
            seq = seq.max(number.parse().unwrap_or(0));
            let report = std::fs::read(dir.join(name))
                .ok()
                .and_then(|b| serde_json::from_slice::<Report>(&b).ok());
            match report {
                Some(r) => {
                    html_rows.push_str(&html_row(&r, name));
                    csv.push_str(&csv_row(&r, name));
                    csv.push('\n');
                }
                None => {
                    let _ = writeln!(
                        html_rows,
                        "<tr><td colspan=\"9\">{} (unreadable)</td></tr>",
                        esc(name)
                    );
                }
            }
        }
        // Replaced whole, so a crash while rebuilding leaves the old index, never half.
        let index = dir.join("index.csv");
        crate::fsx::replace(&index, csv.as_bytes())?;
        let file = crate::fsx::append_no_follow(&index)?;
        Ok(ReportWriter {
            dir,
            csv: BufWriter::new(file),
            html_rows,
            seq,
            listed: names.into_iter().collect(),
        })
    }

    /// Writes one report and its index row; returns the path of its JSON file.
    pub fn write(&mut self, report: &Report) -> io::Result<PathBuf> {
        self.seq += 1;
        let base = report.file_name(self.seq);
        let (mut name, mut k) = (base.clone(), 1);
        let json = serde_json::to_vec_pretty(report).map_err(io::Error::other)?;
        let path = loop {
            let path = self.dir.join(&name);
            // Private, and never through a symbolic link: anything already at the name
            // (a link included) makes this a new name.
            match crate::fsx::create_private(&path) {
                Ok(mut f) => {
                    f.write_all(&json)?;
                    break path;
                }
                // A scan's report is named by its input line: a resumed scan that decides
                // the line again writes the same report again, in place. Another post's
                // report under the same name (another scan into this folder, ids that
                // clean to the same name) is kept: this one gets the next number.
                Err(e)
                    if e.kind() == io::ErrorKind::AlreadyExists
                        && report.line.is_some()
                        && same_post(&path, report) =>
                {
                    crate::fsx::replace(&path, &json)?;
                    break path;
                }
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
                    k += 1;
                    name = format!("{}-{k}.json", base.trim_end_matches(".json"));
                }
                Err(e) => return Err(e),
            }
        };
        if self.listed.contains(&name) {
            // Already in both indexes (listed when the directory was opened).
            return Ok(path);
        }
        writeln!(self.csv, "{}", csv_row(report, &name))?;
        // Row by row: a process killed later loses no index row of a written report.
        self.csv.flush()?;
        self.html_rows.push_str(&html_row(report, &name));
        self.listed.insert(name);
        Ok(path)
    }

    /// Flushes the CSV and writes `index.html`; returns the number of reports listed.
    pub fn flush(&mut self) -> io::Result<u64> {
        self.csv.flush()?;
        let count = self.listed.len() as u64;
        let page = html_page(&self.html_rows, count);
        crate::fsx::replace(&self.dir.join("index.html"), page.as_bytes())?;
        Ok(count)
    }

    /// Flushes and closes; returns the number of reports listed.
    pub fn finish(mut self) -> io::Result<u64> {
        self.flush()
    }
}

/// Whether the report file at `path` (a regular file, not a link) reports the same post
/// from the same input line: a resumed scan deciding it again.
fn same_post(path: &Path, report: &Report) -> bool {
    if crate::fsx::is_symlink(path) {
        return false;
    }
    std::fs::read(path)
        .ok()
        .and_then(|b| serde_json::from_slice::<Report>(&b).ok())
        .is_some_and(|old| {
            old.line == report.line && old.post_id == report.post_id && old.text == report.text
        })
}

/// One `index.csv` row (no line break) for `report`, written as file `name`.
fn csv_row(report: &Report, name: &str) -> String {
    let p = report.poster.clone().unwrap_or_default();
    let opt = |s: &Option<String>| s.clone().unwrap_or_default();
    let fields: Vec<String> = vec![
        report.post_id.as_ref().map(id_text).unwrap_or_default(),
        report.line.map(|l| l.to_string()).unwrap_or_default(),
        report.detected.clone(),
        report.deadline.clone(),
        opt(&report.published),
        opt(&report.board),
        opt(&report.title),
        opt(&p.user_id),
        opt(&p.identity_ref),
        p.verified.map(|v| v.to_string()).unwrap_or_default(),
        opt(&p.ip),
        p.port.map(|v| v.to_string()).unwrap_or_default(),
        report
            .categories
            .iter()
            .map(|c| c.number.to_string())
            .collect::<Vec<_>>()
            .join(" "),
        report
            .categories
            .iter()
            .map(|c| c.basis.clone())
            .collect::<Vec<_>>()
            .join("; "),
        distinct(report.hits.iter().map(|h| h.rule.to_string())).join(" "),
        distinct(report.hits.iter().map(|h| h.matched.clone())).join(" "),
        report.action.as_str().to_owned(),
        report
            .measures
            .iter()
            .map(|m| format!("{m:?}").to_lowercase())
            .collect::<Vec<_>>()
            .join(" "),
        report.ruleset.hash.clone(),
        name.to_owned(),
        report.text.clone(),
    ];
    crate::csv::row(&fields)
}

fn id_text(id: &PostId) -> String {
    match id {
        PostId::Int(i) => i.to_string(),
        PostId::Str(s) => s.clone(),
    }
}

fn distinct(items: impl Iterator<Item = String>) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for i in items {
        if !out.contains(&i) {
            out.push(i);
        }
    }
    out
}

fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

fn html_row(r: &Report, file: &str) -> String {
    let p = r.poster.clone().unwrap_or_default();
    let o = |s: &Option<String>| esc(s.as_deref().unwrap_or("—"));
    let mut cats = String::new();
    for c in &r.categories {
        let _ = write!(
            cats,
            "<div>{} {}<br><small>{}</small></div>",
            c.number,
            esc(&c.title),
            esc(&c.basis)
        );
    }
    let mut hits = String::new();
    for h in &r.hits {
        let _ = write!(
            hits,
            "<div><code>{}</code> 「{}」 {}..{}</div>",
            esc(&h.rule),
            esc(&h.matched),
            h.char_start,
            h.char_end
        );
    }
    let measures: Vec<String> = r
        .measures
        .iter()
        .map(|m| format!("{m:?}").to_lowercase())
        .collect();
    format!(
        "<tr><td><a href=\"{file}\">{id}</a><br><small>line {line}</small></td><td>{board}<br>{title}</td>\
         <td class=\"text\">{text}</td><td>{published}</td><td>{detected}</td><td><b>{deadline}</b></td>\
         <td>{user}<br><small>{identity}</small><br>verified: {verified}</td><td>{ip}<br>port {port}</td>\
         <td>{cats}</td><td>{hits}</td><td>{action}<br>{measures}</td><td><small>{rs} {ver}<br>{hash}</small></td></tr>\n",
        file = esc(file),
        id = esc(&r.post_id.as_ref().map(id_text).unwrap_or_else(|| "—".into())),
        line = r.line.map(|l| l.to_string()).unwrap_or_else(|| "—".into()),
        board = o(&r.board),
        title = o(&r.title),
        text = esc(&r.text),
        published = o(&r.published),
        detected = esc(&r.detected),
        deadline = esc(&r.deadline),
        user = o(&p.user_id),
        identity = o(&p.identity_ref),
        verified = p.verified.map_or("—".to_owned(), |v| v.to_string()),
        ip = o(&p.ip),
        port = p.port.map_or("—".to_owned(), |v| v.to_string()),
        action = r.action.as_str(),
        measures = measures.join(" "),
        rs = esc(&r.ruleset.name),
        ver = esc(&r.ruleset.version),
        hash = esc(&r.ruleset.hash[..r.ruleset.hash.len().min(16)]),
    )
}

fn html_page(rows: &str, count: u64) -> String {
    let duties: String = DUTIES
        .iter()
        .map(|d| format!("<li>{}</li>", esc(d)))
        .collect();
    format!(
        "<!DOCTYPE html>\n<html lang=\"zh-CN\"><head><meta charset=\"utf-8\"><title>待报告信息 ({count})</title>\n\
         <style>body{{font-family:sans-serif;margin:1em}}table{{border-collapse:collapse}}td,th{{border:1px solid #999;padding:4px;vertical-align:top}}td.text{{max-width:28em;white-space:pre-wrap}}</style></head><body>\n\
         <h1>待报告信息：{count} 条</h1>\n<p>依据：</p><ul>{duties}</ul>\n\
         <table><thead><tr><th>帖子</th><th>版块 / 标题</th><th>原文</th><th>发布时间</th><th>发现时间</th><th>报告期限</th>\
         <th>账号 / 实名 / 认证</th><th>IP / 端口</th><th>类别与依据</th><th>命中规则</th><th>处置</th><th>规则集</th></tr></thead>\n\
         <tbody>\n{rows}</tbody></table></body></html>\n"
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Engine;

    #[test]
    fn a_report_carries_everything_an_officer_needs() {
        let engine = Engine::bundled();
        let post = Post::from_json(
            r#"{"id":"p7","text":"出售冰毒，同城交易","title":"好货","board":"life","time":"2026-11-20T08:00:00+08:00",
                "poster":{"user_id":"u1","identity_ref":"kyc-1","verified":true,"ip":"203.0.113.7","port":51234}}"#,
        )
        .unwrap();
        let d = engine.scan(&post);
        assert!(d.report);
        let detected: jiff::Timestamp = "2026-11-25T07:00:00Z".parse().unwrap();
        let r = Report::new(&post, &d, engine.rules(), detected, 24, 8);
        assert_eq!(r.detected, "2026-11-25T15:00:00+08:00");
        assert_eq!(r.deadline, "2026-11-26T15:00:00+08:00");
        assert_eq!(r.text, post.text);
        assert_eq!(r.categories[0].number, 7);
        assert_eq!(
            r.categories[0].basis,
            "《互联网信息服务管理办法》第十五条第（七）项"
        );
        assert_eq!(r.poster.as_ref().unwrap().port, Some(51234));
        assert_eq!(r.duties.len(), 2);
        assert_eq!(r.file_name(1), "report-00000001-p7.json");
    }

    #[test]
    fn html_is_escaped() {
        assert_eq!(esc("<b>&"), "&lt;b&gt;&amp;");
    }
}
