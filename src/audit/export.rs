//! Audit records as rows for people: the CSV of `audit export --format csv`.

use super::{AuditRecord, Personal};
use crate::post::PostId;

/// What stands in for a sealed personal field read without the store's key.
pub const WITHHELD: &str = "(withheld)";

/// The start of a CSV export: the byte-order mark and the header line.
pub const CSV_HEAD: &str = "\u{feff}seq,day,run,line,post_id,post_time,scan_time,user_id,ip,port,identity_ref,verified,board,title,text,categories,action,report,measures,rules,ruleset,hash,caller,event\n";

impl AuditRecord {
    /// The post id as text (`-` when the post had none).
    pub fn post_id_text(&self) -> String {
        match &self.post_id {
            Some(PostId::Int(i)) => i.to_string(),
            Some(PostId::Str(s)) => s.clone(),
            None => "-".to_owned(),
        }
    }

    /// The record as one CSV row under [`CSV_HEAD`] (no line break): quoted as RFC 4180
    /// says, cells a spreadsheet would run as a formula defused, sealed fields read without
    /// the key shown as [`WITHHELD`].
    pub fn csv_row(&self) -> String {
        let personal = |f: &dyn Fn(&Personal) -> Option<String>| match &self.personal {
            None => WITHHELD.to_owned(),
            Some(p) => f(p).unwrap_or_default(),
        };
        let mut rules: Vec<String> = self
            .hits
            .as_array()
            .map(|hits| {
                hits.iter()
                    .filter_map(|h| h["rule"].as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default();
        rules.dedup();
        crate::csv::row([
            self.seq.to_string(),
            self.day.clone(),
            self.run.to_string(),
            self.line.map(|l| l.to_string()).unwrap_or_default(),
            self.post_id_text(),
            self.post_time.clone().unwrap_or_default(),
            self.scan_time.clone(),
            self.user_id.clone().unwrap_or_default(),
            personal(&|p| p.ip.clone()),
            personal(&|p| p.port.map(|x| x.to_string())),
            personal(&|p| p.identity_ref.clone()),
            personal(&|p| p.verified.map(|x| x.to_string())),
            self.content.board.clone().unwrap_or_default(),
            self.content.title.clone().unwrap_or_default(),
            self.content.text.clone(),
            self.categories
                .iter()
                .map(u16::to_string)
                .collect::<Vec<_>>()
                .join(" "),
            self.action.clone(),
            self.report.to_string(),
            self.measures.join(" "),
            rules.join(" "),
            self.ruleset.clone(),
            self.hash.clone(),
            self.caller.clone().unwrap_or_default(),
            self.event
                .as_ref()
                .map(|e| e.to_string())
                .unwrap_or_default(),
        ])
    }
}
