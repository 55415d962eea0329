//! Where the spec files come from: the named variants (`specs/variants/*.toml`), the
//! simulator's scenarios (`specs/scenarios/*.toml`) and the requirement catalogue
//! (`specs/requirements.toml`).
//!
//! They are built into the crate (by `build.rs`, from the workspace the binary was built in),
//! so that `cargo install --path sim`, or a copy of the binary in a container image, gives an
//! `imps` that knows `post-cr` and `smoke` in any directory. A `specs/variants` (or
//! `specs/scenarios`, or `specs/requirements.toml`) under the current directory takes
//! precedence, whole: a project of one's own names its own variants.
//!
//! ```
//! use imps_model::specs::{Kind, SpecsDir};
//!
//! let built_in = SpecsDir::BuiltIn(Kind::Variants);
//! assert!(built_in.names().unwrap().contains(&"post-cr".to_string()));
//! assert!(built_in.entry("post-cr").is_some());
//! assert!(built_in.entry("no-such-variant").is_none());
//! ```

use std::path::{Path, PathBuf};

mod built_in {
    include!(concat!(env!("OUT_DIR"), "/specs.rs"));
}

/// A kind of named spec file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// `specs/variants/*.toml`.
    Variants,
    /// `specs/scenarios/*.toml`.
    Scenarios,
}

impl Kind {
    /// The folder under `specs/`.
    pub const fn folder(self) -> &'static str {
        match self {
            Kind::Variants => "variants",
            Kind::Scenarios => "scenarios",
        }
    }

    const fn built_in(self) -> &'static [(&'static str, &'static str)] {
        match self {
            Kind::Variants => built_in::VARIANTS,
            Kind::Scenarios => built_in::SCENARIOS,
        }
    }
}

/// Where the named files of one kind are: a directory, or the copies built into the binary.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SpecsDir {
    /// A directory of `NAME.toml` files.
    Disk(PathBuf),
    /// The files of the workspace's `specs/<kind>` at build time.
    BuiltIn(Kind),
}

/// One named file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Entry {
    /// A file on disk.
    File(PathBuf),
    /// A built-in file: its text, and the name errors give it
    /// (`specs/variants/post-cr.toml (built in)`).
    BuiltIn {
        /// How errors name it.
        origin: String,
        /// Its contents.
        text: &'static str,
    },
}

impl SpecsDir {
    /// `specs/<kind>` under the current directory when it is a directory, else the built-in
    /// files.
    pub fn find(kind: Kind) -> SpecsDir {
        let local = Path::new("specs").join(kind.folder());
        if local.is_dir() {
            SpecsDir::Disk(local)
        } else {
            SpecsDir::BuiltIn(kind)
        }
    }

    /// Where the files are, for listings: the directory, or `built in`.
    pub fn describe(&self) -> String {
        match self {
            SpecsDir::Disk(dir) => dir.display().to_string(),
            SpecsDir::BuiltIn(kind) => format!("built in: specs/{}", kind.folder()),
        }
    }

    /// The names (file stems of the `.toml` files), sorted.
    pub fn names(&self) -> std::io::Result<Vec<String>> {
        Ok(self.entries()?.into_iter().map(|(n, _)| n).collect())
    }

    /// Every named file, sorted by name.
    pub fn entries(&self) -> std::io::Result<Vec<(String, Entry)>> {
        match self {
            SpecsDir::Disk(dir) => {
                let mut out: Vec<(String, Entry)> = std::fs::read_dir(dir)?
                    .filter_map(Result::ok)
                    .map(|e| e.path())
                    .filter(|p| p.extension().is_some_and(|x| x == "toml"))
                    .filter_map(|p| {
                        let name = p.file_stem()?.to_string_lossy().into_owned();
                        Some((name, Entry::File(p)))
                    })
                    .collect();
                out.sort_by(|a, b| a.0.cmp(&b.0));
                Ok(out)
            }
            SpecsDir::BuiltIn(kind) => Ok(kind
                .built_in()
                .iter()
                .map(|&(name, _)| (name.to_string(), self.entry(name).expect("listed")))
                .collect()),
        }
    }

    /// The file a command-line argument names, and the name it goes by: an argument ending
    /// in `.toml` or with a directory part is a path, named by its file stem; any other is a
    /// name, a file stem in this directory (`None` when there is no such file).
    pub fn resolve(&self, name_or_path: &str) -> Option<(String, Entry)> {
        let p = Path::new(name_or_path);
        if name_or_path.ends_with(".toml") || p.components().count() > 1 {
            let name = p
                .file_stem()
                .map(|s| s.to_string_lossy().into_owned())
                .unwrap_or_else(|| name_or_path.to_string());
            return Some((name, Entry::File(p.to_path_buf())));
        }
        Some((name_or_path.to_string(), self.entry(name_or_path)?))
    }

    /// The file named `name`, if there is one.
    pub fn entry(&self, name: &str) -> Option<Entry> {
        match self {
            SpecsDir::Disk(dir) => {
                let file = dir.join(format!("{name}.toml"));
                file.exists().then_some(Entry::File(file))
            }
            SpecsDir::BuiltIn(kind) => {
                kind.built_in()
                    .iter()
                    .find(|(n, _)| *n == name)
                    .map(|&(n, text)| Entry::BuiltIn {
                        origin: format!("specs/{}/{n}.toml (built in)", kind.folder()),
                        text,
                    })
            }
        }
    }
}

/// The requirement catalogue: `specs/requirements.toml` under the current directory when it
/// exists, else the built-in one.
pub fn requirements() -> Entry {
    let local = Path::new("specs").join("requirements.toml");
    if local.is_file() {
        Entry::File(local)
    } else {
        Entry::BuiltIn {
            origin: "specs/requirements.toml (built in)".to_string(),
            text: built_in::REQUIREMENTS,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn workspace(rel: &str) -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../specs")
            .join(rel)
    }

    /// The binary carries exactly the workspace's files (build.rs reruns when one changes).
    #[test]
    fn the_built_in_files_are_the_workspaces() {
        for kind in [Kind::Variants, Kind::Scenarios] {
            let on_disk = SpecsDir::Disk(workspace(kind.folder()));
            let built_in = SpecsDir::BuiltIn(kind);
            assert_eq!(built_in.names().unwrap(), on_disk.names().unwrap());
            assert!(!built_in.names().unwrap().is_empty());
            for (name, entry) in built_in.entries().unwrap() {
                let Entry::BuiltIn { origin, text } = entry else {
                    panic!("{name}: not built in");
                };
                let file = workspace(kind.folder()).join(format!("{name}.toml"));
                assert_eq!(text, std::fs::read_to_string(&file).unwrap(), "{origin}");
                assert_eq!(
                    origin,
                    format!("specs/{}/{name}.toml (built in)", kind.folder())
                );
            }
        }
        assert_eq!(
            built_in::REQUIREMENTS,
            std::fs::read_to_string(workspace("requirements.toml")).unwrap()
        );
    }
}
