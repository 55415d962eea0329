//! The knobs come first: `config.rs` reads nothing of the protocol core or of the properties
//! (the core reads its knobs, the properties read the core, and a variant's `[expect]` table,
//! which names properties, is read by `variant.rs`, after both). Without this, config →
//! props → client/server → config was a circle.

/// Every `crate::...` path in the code (not the comments) of a source file of this crate.
fn crate_paths(file: &str) -> Vec<String> {
    let path = format!("{}/src/{file}", env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    let mut out = Vec::new();
    for line in text.lines() {
        let code = line.split("//").next().unwrap_or("");
        let mut rest = code;
        while let Some(i) = rest.find("crate::") {
            let tail = &rest[i + "crate::".len()..];
            let end = tail
                .find(|c: char| !(c.is_alphanumeric() || c == '_'))
                .unwrap_or(tail.len());
            out.push(tail[..end].to_string());
            rest = &tail[end..];
        }
    }
    out
}

#[test]
fn the_knobs_read_nothing_of_the_core_or_the_properties() {
    let used = crate_paths("config.rs");
    assert!(
        used.iter().all(|m| m == "io"),
        "config.rs uses crate::{used:?}; it may use crate::io only"
    );
    // The test reads what it means to: the loader of variant files does use the properties.
    assert!(crate_paths("variant.rs").iter().any(|m| m == "props"));
}
