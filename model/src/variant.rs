//! A variant file: a TOML file under `specs/variants/` with the sections `[server]`,
//! `[client]` and `[env]` (its [`Config`]) and an optional `[expect]` table, the verdicts the
//! checker is expected to give (written from what it found, by `imps check --bless`).
//!
//! The expectations are kept apart from the knobs: the protocol core reads a [`Config`] and
//! nothing of what anyone expects of it, and an `[expect]` table names properties, which
//! judge the core, so it is read here, after both.

use crate::config::{invalid, ClientConfig, Config, ConfigError, EnvConfig, ServerConfig};
use crate::props::{Kind as PropKind, Prop, PropSet};
use crate::specs::{Entry, Kind, SpecsDir};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// A verdict a variant file may expect for a property.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Verdict {
    /// The property holds within the bounds (a witness: it was reached).
    Holds,
    /// The checker found a counterexample.
    Violated,
    /// A witness that no reachable state shows.
    NotReached,
}

impl Verdict {
    /// Every verdict.
    pub const ALL: [Verdict; 3] = [Verdict::Holds, Verdict::Violated, Verdict::NotReached];

    /// The verdict as written in reports and files.
    pub const fn as_str(self) -> &'static str {
        match self {
            Verdict::Holds => "holds",
            Verdict::Violated => "violated",
            Verdict::NotReached => "not-reached",
        }
    }
}

/// A variant: its knobs and bounds, and the verdicts expected of it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Variant {
    /// The knobs and bounds.
    pub cfg: Config,
    /// Expected verdicts by property name (checked: every name is a property, every verdict
    /// one that its kind of property can have).
    pub expect: BTreeMap<String, Verdict>,
}

/// A variant file as written: the configuration's sections and `[expect]`. A missing
/// section takes its defaults, as in [`Config`], whose default is its sections' defaults.
#[derive(Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
struct File {
    description: String,
    server: ServerConfig,
    client: ClientConfig,
    env: EnvConfig,
    expect: BTreeMap<String, Verdict>,
}

impl Variant {
    /// Parse a variant from TOML text; `origin` names the file in errors.
    pub fn from_toml(text: &str, origin: &str) -> Result<Variant, ConfigError> {
        let f: File = toml::from_str(text)
            .map_err(|e| invalid(origin, crate::io::toml_error_line(text, &e)))?;
        let v = Variant {
            cfg: Config {
                description: f.description,
                server: f.server,
                client: f.client,
                env: f.env,
            },
            expect: f.expect,
        };
        v.cfg.validate().map_err(|m| invalid(origin, m))?;
        for (name, &verdict) in &v.expect {
            check_expectation(name, verdict).map_err(|m| invalid(origin, m))?;
        }
        Ok(v)
    }

    /// Read a variant file.
    pub fn load(path: &Path) -> Result<Variant, ConfigError> {
        let text = crate::io::read_capped_string(path, crate::io::Cap::VARIANT_FILE)?;
        Variant::from_toml(&text, &path.display().to_string())
    }

    /// The verdict expected for `p`, if the variant says.
    pub fn expected(&self, p: Prop) -> Option<Verdict> {
        self.expect.get(p.name()).copied()
    }

    /// The properties that the variant expects to be violated (a simulation lets them be
    /// violated and goes on).
    pub fn expected_violated(&self) -> PropSet {
        let mut s = PropSet::default();
        for &p in Prop::ALL {
            s.flag(p, self.expected(p) == Some(Verdict::Violated));
        }
        s
    }

    /// Apply one `section.knob=value` override ([`Variant::apply_sets`] with one).
    pub fn apply_set(&mut self, assignment: &str) -> Result<(), ConfigError> {
        self.apply_sets(&[assignment])
    }

    /// Apply `section.knob=value` overrides: those of `[expect]`
    /// (`expect.no_deadlock=holds`) to the expectations, the others to the configuration
    /// ([`Config::apply_sets`], which checks the result once). Nothing changes on an error.
    pub fn apply_sets<S: AsRef<str>>(&mut self, assignments: &[S]) -> Result<(), ConfigError> {
        let mut expect = self.expect.clone();
        let mut knobs = Vec::new();
        for a in assignments.iter().map(AsRef::as_ref) {
            // The configuration says what is wrong with a knob, or with an assignment that
            // is not `section.knob=value`; a section it does not know may be this one.
            let Some((section, name, value)) = a.split_once('=').and_then(|(key, value)| {
                let (section, name) = key.trim().split_once('.')?;
                Some((section.trim(), name.trim(), value))
            }) else {
                knobs.push(a);
                continue;
            };
            if section != "expect" {
                if !["server", "client", "env"].contains(&section) {
                    return Err(invalid(
                        format!("--set {a}"),
                        format!(
                            "unknown section `{section}`, expected one of: server, client, env, expect"
                        ),
                    ));
                }
                knobs.push(a);
                continue;
            }
            let origin = format!("--set {a}");
            let value = value.trim();
            let value = value
                .strip_prefix('"')
                .and_then(|v| v.strip_suffix('"'))
                .unwrap_or(value);
            let verdict = Verdict::ALL
                .into_iter()
                .find(|v| v.as_str() == value)
                .ok_or_else(|| {
                    invalid(
                        &origin,
                        format!(
                            "unknown verdict `{value}`, expected one of: holds, violated, not-reached"
                        ),
                    )
                })?;
            check_expectation(name, verdict).map_err(|m| invalid(&origin, m))?;
            expect.insert(name.to_string(), verdict);
        }
        self.cfg.apply_sets(&knobs)?;
        self.expect = expect;
        Ok(())
    }
}

/// Whether `[expect] name = verdict` names a property and a verdict its kind can have.
fn check_expectation(name: &str, verdict: Verdict) -> Result<(), String> {
    let Some(p) = Prop::from_name(name) else {
        let known: Vec<&str> = Prop::ALL.iter().map(|p| p.name()).collect();
        return Err(format!(
            "[expect] names an unknown property `{name}`; expected one of: {}",
            known.join(", ")
        ));
    };
    let (kind, fits, allowed) = match p.kind() {
        PropKind::Witness => (
            "witness",
            verdict != Verdict::Violated,
            "\"holds\" (reached) or \"not-reached\"",
        ),
        PropKind::Safety => (
            "safety",
            verdict != Verdict::NotReached,
            "\"holds\" or \"violated\"",
        ),
        PropKind::Liveness => (
            "liveness",
            verdict != Verdict::NotReached,
            "\"holds\" or \"violated\"",
        ),
    };
    if fits {
        Ok(())
    } else {
        Err(format!(
            "[expect] {name} = \"{}\": a {kind} property is {allowed}",
            verdict.as_str()
        ))
    }
}

/// The named variants: `specs/variants` under the current directory when there is one (a
/// project of your own), else the ones built into the binary ([`crate::specs`]).
pub fn variants_dir() -> SpecsDir {
    SpecsDir::find(Kind::Variants)
}

/// A named variant or a path, resolved and loaded. A name is a file stem in `dir`; an
/// argument ending in `.toml` or with a directory part is a path, named by its file stem.
pub fn resolve_variant(
    name_or_path: &str,
    dir: &SpecsDir,
) -> Result<(String, Variant), ConfigError> {
    match dir.resolve(name_or_path) {
        Some((name, Entry::File(file))) => Ok((name, Variant::load(&file)?)),
        Some((name, Entry::BuiltIn { origin, text })) => {
            Ok((name, Variant::from_toml(text, &origin)?))
        }
        None => Err(ConfigError::UnknownVariant {
            name: name_or_path.to_string(),
            known: named_variants(dir)?
                .into_iter()
                .map(|(n, _)| n)
                .collect::<Vec<_>>()
                .join(", "),
        }),
    }
}

/// Every named variant in `dir`, sorted by name.
pub fn named_variants(dir: &SpecsDir) -> Result<Vec<(String, Entry)>, ConfigError> {
    dir.entries().map_err(|source| ConfigError::Io {
        path: PathBuf::from(dir.describe()),
        source,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::ClientIdScope;

    #[test]
    fn unknown_fields_in_a_file_name_the_file_and_the_place() {
        let e = Variant::from_toml(
            "[server]\nduplicate_clientid = \"allow\"\n",
            "specs/variants/x.toml",
        )
        .unwrap_err()
        .to_string();
        assert!(e.starts_with("specs/variants/x.toml:"), "{e}");
        assert!(
            e.contains("line 2") && e.contains("duplicate_clientid"),
            "{e}"
        );
        let e = Variant::from_toml("[client]\nclient_id_scope = \"handset\"\n", "x.toml")
            .unwrap_err()
            .to_string();
        assert!(e.contains("client_id_scope") && e.contains("device"), "{e}");
        let e = Variant::from_toml("[servers]\n", "x.toml")
            .unwrap_err()
            .to_string();
        assert!(e.contains("servers") && e.contains("expect"), "{e}");
    }

    /// A file's sections are the configuration's and `[expect]`; `--set` reaches both, and
    /// a bad expectation (unknown property, unknown verdict, one its kind cannot have) is
    /// refused, from a file or a flag, naming where it came from.
    #[test]
    fn expectations_are_read_checked_and_set_apart_from_the_knobs() {
        let text = "description = \"d\"\n[client]\nclient_id_scope = \"user\"\n\
                    [expect]\nno_deadlock = \"violated\"\nreach_608 = \"holds\"\n";
        assert_eq!(
            Variant::from_toml("", "e.toml").unwrap(),
            Variant::default()
        );
        let mut v = Variant::from_toml(text, "v.toml").unwrap();
        assert_eq!(v.cfg.description, "d");
        assert_eq!(v.cfg.client.client_id_scope, ClientIdScope::User);
        assert_eq!(v.expected(Prop::NoDeadlock), Some(Verdict::Violated));
        assert_eq!(v.expected(Prop::Reach608), Some(Verdict::Holds));
        assert_eq!(
            v.expected_violated().iter().collect::<Vec<_>>(),
            [Prop::NoDeadlock]
        );
        v.apply_sets(&["expect.no_deadlock=holds", "env.max_crashes=2"])
            .unwrap();
        assert_eq!(v.expected(Prop::NoDeadlock), Some(Verdict::Holds));
        assert_eq!(v.cfg.env.max_crashes, 2);
        let before = v.clone();
        for (set, says) in [
            ("expect.no_such_property=holds", "no_such_property"),
            ("expect.no_deadlock=perhaps", "perhaps"),
            ("expect.reach_608=violated", "witness"),
            ("expect.no_deadlock=not-reached", "liveness"),
        ] {
            let e = v
                .apply_sets(&["env.max_crashes=1", set])
                .unwrap_err()
                .to_string();
            assert!(
                e.contains(&format!("--set {set}")) && e.contains(says),
                "{e}"
            );
            assert_eq!(v, before, "a refused --set changes nothing");
        }
        for (file, says) in [
            (
                "[expect]\nno_such_property = \"holds\"\n",
                "no_such_property",
            ),
            ("[expect]\nreach_608 = \"violated\"\n", "witness"),
        ] {
            let e = Variant::from_toml(file, "w.toml").unwrap_err().to_string();
            assert!(e.starts_with("w.toml:") && e.contains(says), "{e}");
        }
        let e = v.apply_set("bogus.x=1").unwrap_err().to_string();
        assert!(e.contains("`bogus`") && e.contains("expect"), "{e}");
        let e = Config::default()
            .apply_set("expect.no_deadlock=holds")
            .unwrap_err()
            .to_string();
        assert!(e.contains("variant"), "{e}");
    }
}
