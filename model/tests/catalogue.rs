//! The requirement catalogue (`specs/requirements.toml`) and the properties cite each other
//! exactly: every normative statement is checked or explained, every check exists, and every
//! property cites the statements it checks.

use imps_model::props::Prop;
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct Catalogue {
    requirement: Vec<Requirement>,
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)]
struct Requirement {
    id: String,
    change: String,
    section: String,
    level: String,
    actor: String,
    text: String,
    checks: Vec<String>,
    not_modelled: Option<String>,
    note: Option<String>,
}

fn root() -> &'static Path {
    Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/.."))
}

fn catalogue() -> Catalogue {
    let text = std::fs::read_to_string(root().join("specs/requirements.toml")).unwrap();
    toml::from_str(&text).unwrap()
}

/// Every test function name in the workspace's Rust sources.
fn test_functions() -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    let mut stack = vec![root().join("model"), root().join("sim")];
    while let Some(dir) = stack.pop() {
        for e in std::fs::read_dir(&dir).unwrap().flatten() {
            let p = e.path();
            if p.is_dir() && !p.ends_with("target") {
                stack.push(p);
            } else if p.extension().is_some_and(|x| x == "rs") {
                let src = std::fs::read_to_string(&p).unwrap();
                for line in src.lines() {
                    if let Some(rest) = line.trim_start().strip_prefix("fn ") {
                        out.insert(rest.split('(').next().unwrap().to_string());
                    }
                }
            }
        }
    }
    out
}

#[test]
fn every_entry_is_checked_or_explained() {
    let cat = catalogue();
    assert!(
        cat.requirement.len() >= 80,
        "every normative statement of Change1..Change5"
    );
    let mut ids = BTreeSet::new();
    for r in &cat.requirement {
        assert!(ids.insert(r.id.clone()), "duplicate id {}", r.id);
        assert!(
            [
                "MUST",
                "MUST NOT",
                "SHOULD",
                "SHOULD NOT",
                "MAY",
                "RECOMMENDED"
            ]
            .contains(&r.level.as_str()),
            "{}: level {}",
            r.id,
            r.level
        );
        match (r.checks.is_empty(), &r.not_modelled) {
            (false, None) => {}
            (true, Some(why)) => assert!(why.len() > 10, "{}: say why it is not modelled", r.id),
            (false, Some(_)) => panic!("{}: both checks and not_modelled", r.id),
            (true, None) => panic!("{}: no check and no reason", r.id),
        }
    }
}

#[test]
fn every_check_exists() {
    let tests = test_functions();
    for r in &catalogue().requirement {
        for c in &r.checks {
            match c.strip_prefix("test:") {
                Some(t) => assert!(tests.contains(t), "{}: no test fn {t}", r.id),
                None => assert!(Prop::from_name(c).is_some(), "{}: no property {c}", r.id),
            }
        }
    }
}

#[test]
fn every_property_cites_exactly_the_entries_that_cite_it() {
    let mut cited: BTreeMap<&str, Vec<String>> = BTreeMap::new();
    let cat = catalogue();
    for r in &cat.requirement {
        for c in &r.checks {
            cited.entry(c.as_str()).or_default().push(r.id.clone());
        }
    }
    for p in Prop::ALL {
        let from_catalogue = cited.get(p.name()).cloned().unwrap_or_default();
        let from_code: Vec<String> = p.requirements().iter().map(|s| s.to_string()).collect();
        assert!(!from_code.is_empty(), "{} cites no requirement", p.name());
        assert_eq!(
            from_code,
            from_catalogue,
            "{}: doc citation and catalogue disagree",
            p.name()
        );
    }
}
