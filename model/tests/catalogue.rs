//! The requirement catalogue (`specs/requirements.toml`) and the properties cite each other
//! exactly: every normative statement is checked or explained, every check exists, and every
//! property cites the statements it checks.

use imps_model::props::Prop;
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use imps_model::catalogue::{Catalogue, KnobKind};

fn root() -> &'static Path {
    Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/.."))
}

fn catalogue() -> Catalogue {
    Catalogue::load(&root().join("specs/requirements.toml")).unwrap()
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

/// Every knob of `[server]` and `[client]` has a catalogue entry naming requirements that
/// exist; an open knob lists values the knob accepts, the default among them; a knob the CR
/// fixes (`must`) names a requirement of level MUST or MUST NOT.
#[test]
fn every_knob_is_in_the_catalogue() {
    use imps_model::config::{Config, KNOBS};
    let c = catalogue();
    for k in KNOBS.iter().filter(|k| !k.key.starts_with("env.")) {
        let e = c
            .knob(k.key)
            .unwrap_or_else(|| panic!("{} has no [[knob]] entry", k.key));
        for id in &e.requirements {
            assert!(
                c.requirement(id).is_some(),
                "{}: no requirement {id}",
                k.key
            );
        }
        match e.kind {
            KnobKind::Open => {
                assert!(!e.values.is_empty(), "{}: an open knob lists values", k.key);
                let default = imps_model::config::knob_values(&Config::default())
                    .into_iter()
                    .find(|(key, _)| key == k.key)
                    .map(|(_, v)| v.trim_matches('"').to_string())
                    .unwrap();
                assert!(
                    e.values.contains(&default),
                    "{}: the default {default} is among the values",
                    k.key
                );
                if let Some(t) = &e.takes {
                    assert!(e.values.contains(t), "{}: takes {t}, not a value", k.key);
                }
                for v in &e.values {
                    let mut cfg = Config::default();
                    cfg.apply_set(&format!("{}={v}", k.key))
                        .unwrap_or_else(|err| panic!("{}: value {v}: {err}", k.key));
                }
            }
            KnobKind::Must => {
                assert!(
                    e.requirements.iter().any(|id| c
                        .requirement(id)
                        .unwrap()
                        .level
                        .starts_with("MUST")),
                    "{}: a must knob names a MUST",
                    k.key
                );
                assert!(
                    e.values.is_empty(),
                    "{}: only open knobs list values",
                    k.key
                );
            }
            KnobKind::Tuning | KnobKind::Environment => {
                assert!(
                    e.values.is_empty(),
                    "{}: only open knobs list values",
                    k.key
                )
            }
        }
    }
    for e in &c.knob {
        assert!(
            KNOBS.iter().any(|k| k.key == e.key),
            "[[knob]] {} is not a knob",
            e.key
        );
    }
}

/// The README's counts of the catalogue's statements are the catalogue's.
#[test]
fn readme_counts_the_catalogue() {
    let c = catalogue();
    let count = |level: &str| c.requirement.iter().filter(|r| r.level == level).count();
    let sentence = format!(
        "lists the {} normative statements of Change1 to Change5 ({} MUST,\n{} MUST NOT, {} SHOULD, {} SHOULD NOT, {} MAY, {} RECOMMENDED)",
        c.requirement.len(),
        count("MUST"),
        count("MUST NOT"),
        count("SHOULD"),
        count("SHOULD NOT"),
        count("MAY"),
        count("RECOMMENDED"),
    );
    let readme = std::fs::read_to_string(root().join("README.md")).unwrap();
    assert!(
        readme.contains(&sentence),
        "README.md should say: {sentence}"
    );
    let kind = |k: imps_model::props::Kind| Prop::ALL.iter().filter(|p| p.kind() == k).count();
    use imps_model::props::Kind;
    let props = format!(
        "({} safety properties, {} liveness properties, {}\nwitnesses)",
        kind(Kind::Safety),
        kind(Kind::Liveness),
        kind(Kind::Witness)
    );
    assert!(readme.contains(&props), "README.md should say: {props}");
}
