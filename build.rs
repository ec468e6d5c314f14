//! Embeds the bundled rule sets (`rules/*.toml` and `rules/lexicons/*.txt`) into the
//! library, so `shenhe scan` works from any directory without `--rules`.

use std::fmt::Write as _;
use std::path::Path;

fn collect(dir: &Path, rel: &str, out: &mut Vec<(String, String)>) {
    let mut entries: Vec<_> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("reading {}: {e}", dir.display()))
        .map(|e| e.expect("directory entry").path())
        .collect();
    entries.sort();
    for path in entries {
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        let rel_name = if rel.is_empty() {
            name.clone()
        } else {
            format!("{rel}/{name}")
        };
        if path.is_dir() {
            collect(&path, &rel_name, out);
        } else if name.ends_with(".toml") || name.ends_with(".txt") {
            let abs = path.canonicalize().expect("canonical path");
            out.push((rel_name, abs.to_string_lossy().into_owned()));
        }
    }
}

fn main() {
    // Read at run time, not with env!(): a build-script binary reused for another checkout
    // must not embed that checkout's rules.
    let manifest = std::env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR");
    let rules = Path::new(&manifest).join("rules");
    println!("cargo:rerun-if-changed=rules");
    let mut files = Vec::new();
    collect(&rules, "", &mut files);
    for (_, abs) in &files {
        println!("cargo:rerun-if-changed={abs}");
    }
    let mut src = String::from(
        "/// Every bundled rule file and lexicon, by path relative to `rules/`.\n\
         pub(crate) static BUNDLED: &[(&str, &str)] = &[\n",
    );
    for (rel, abs) in &files {
        writeln!(src, "    ({rel:?}, include_str!({abs:?})),").unwrap();
    }
    src.push_str("];\n");
    let out = Path::new(&std::env::var("OUT_DIR").unwrap()).join("bundled.rs");
    std::fs::write(out, src).expect("writing bundled.rs");
}
