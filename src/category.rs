//! The nine prohibited categories of Article 15 of 《互联网信息服务管理办法》 and the
//! custom categories a rule set declares.
//!
//! This module owns the official text; it knows nothing about rules or matching.

use serde::Serialize;

/// One category: its number, Chinese title and an English gloss.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Category {
    /// 1–9 for the items of Article 15; 100 and above for custom categories.
    pub number: u16,
    /// The official Chinese text (for 1–9) or the title given in `[categories]`.
    pub title: String,
    /// An English gloss (empty for custom categories that give none).
    pub gloss: String,
}

impl Category {
    /// The Chinese ordinal of an Article 15 item, `（七）` for 7; for a custom category, `#N`.
    pub fn label(&self) -> String {
        const ORD: [&str; 9] = ["一", "二", "三", "四", "五", "六", "七", "八", "九"];
        match self.number {
            n @ 1..=9 => format!("（{}）", ORD[n as usize - 1]),
            n => format!("#{n}"),
        }
    }

    /// True for the nine statutory categories.
    pub fn is_statutory(&self) -> bool {
        (1..=9).contains(&self.number)
    }
}

/// The preamble of Article 15, which every item completes.
pub const ARTICLE_15_PREAMBLE: &str =
    "互联网信息服务提供者不得制作、复制、发布、传播含有下列内容的信息";

/// The legal basis cited in reports: the source of the nine categories.
pub const LEGAL_BASIS: &str = "《互联网信息服务管理办法》第十五条";

const NINE: [(&str, &str); 9] = [
    (
        "反对宪法所确定的基本原则的",
        "opposing the basic principles determined by the Constitution",
    ),
    (
        "危害国家安全，泄露国家秘密，颠覆国家政权，破坏国家统一的",
        "endangering national security, divulging state secrets, subverting state power or undermining national unity",
    ),
    (
        "损害国家荣誉和利益的",
        "harming the honour and interests of the state",
    ),
    (
        "煽动民族仇恨、民族歧视，破坏民族团结的",
        "inciting ethnic hatred or ethnic discrimination, or undermining ethnic unity",
    ),
    (
        "破坏国家宗教政策，宣扬邪教和封建迷信的",
        "undermining the state's religious policy, or propagating cults and feudal superstition",
    ),
    (
        "散布谣言，扰乱社会秩序，破坏社会稳定的",
        "spreading rumours, disturbing social order or undermining social stability",
    ),
    (
        "散布淫秽、色情、赌博、暴力、凶杀、恐怖或者教唆犯罪的",
        "spreading obscenity, pornography, gambling, violence, murder or terror, or inciting crime",
    ),
    (
        "侮辱或者诽谤他人，侵害他人合法权益的",
        "insulting or defaming others, or infringing their lawful rights and interests",
    ),
    (
        "含有法律、行政法规禁止的其他内容的",
        "other content prohibited by laws and administrative regulations",
    ),
];

/// The nine categories of Article 15, in order (item 1 first).
pub fn article_15() -> Vec<Category> {
    (1..=9).filter_map(statutory).collect()
}

/// One of the nine statutory categories, `None` outside 1–9.
pub fn statutory(number: u16) -> Option<Category> {
    let (title, gloss) = NINE.get((number as usize).checked_sub(1)?)?;
    Some(Category {
        number,
        title: (*title).to_owned(),
        gloss: (*gloss).to_owned(),
    })
}

/// The smallest number a custom category may have.
pub const FIRST_CUSTOM: u16 = 100;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nine_categories_with_official_text() {
        let all = article_15();
        assert_eq!(all.len(), 9);
        assert_eq!(all[6].number, 7);
        assert!(all[6].title.contains("赌博"));
        assert_eq!(all[6].label(), "（七）");
        assert!(statutory(0).is_none());
        assert!(statutory(10).is_none());
        assert!(all
            .iter()
            .all(|c| c.title.ends_with('的') && !c.gloss.is_empty()));
    }
}
