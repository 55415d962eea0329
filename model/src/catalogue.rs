//! The requirement catalogue (`specs/requirements.toml`): every normative statement of the CR
//! with its ID, level and the properties that check it, and every knob of the model with the
//! statements it concerns and whether the CR leaves it open.
//!
//! `imps diff` uses it to say which requirements a knob difference touches, and `imps repair`
//! to search only the knobs the CR leaves open, only over values that break no MUST.

use crate::specs::Entry;
use serde::Deserialize;
use std::path::{Path, PathBuf};

/// The whole catalogue.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Catalogue {
    /// The normative statements, in document order.
    pub requirement: Vec<Requirement>,
    /// The knobs of `[server]` and `[client]`.
    #[serde(default)]
    pub knob: Vec<KnobEntry>,
}

/// One normative statement.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Requirement {
    /// `CR-<section>-<NN>`.
    pub id: String,
    /// The change block of the CR it comes from.
    pub change: String,
    /// The CR's section.
    pub section: String,
    /// MUST, MUST NOT, SHOULD, SHOULD NOT, MAY or RECOMMENDED.
    pub level: String,
    /// server, client or both.
    pub actor: String,
    /// The statement as written.
    pub text: String,
    /// The properties (and `test:` names) that check it.
    pub checks: Vec<String>,
    /// Why it is not checked, when `checks` is empty.
    pub not_modelled: Option<String>,
    /// A remark on the source text.
    pub note: Option<String>,
}

/// What the CR says of a knob.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum KnobKind {
    /// A MAY, a SHOULD or an implementation choice: a candidate for `imps repair`.
    Open,
    /// The CR fixes the value; the other values model implementations that break a MUST.
    Must,
    /// A timer or size with no effect on the checker's verdicts.
    Tuning,
    /// What the user or the network does.
    Environment,
}

/// One knob.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KnobEntry {
    /// `section.knob`.
    pub key: String,
    /// What the CR leaves open.
    pub kind: KnobKind,
    /// The statements it concerns.
    pub requirements: Vec<String>,
    /// For an open knob, the values that break no MUST.
    #[serde(default)]
    pub values: Vec<String>,
    /// For an open knob, the value that takes its MAY or follows its SHOULD.
    pub takes: Option<String>,
}

/// Why the catalogue could not be read.
#[derive(Debug, thiserror::Error)]
pub enum CatalogueError {
    /// The file could not be read, or is larger than [`crate::io::Cap::CATALOGUE`].
    #[error("{0}")]
    Read(#[from] crate::io::ReadError),
    /// The file is not a catalogue.
    #[error("{path}: {message}")]
    Parse {
        /// The file.
        path: PathBuf,
        /// What was expected.
        message: String,
    },
}

impl Catalogue {
    /// The catalogue the commands use: `specs/requirements.toml` under the current directory
    /// when it exists, else the one built into the binary ([`crate::specs::requirements`]).
    pub fn find() -> Result<Catalogue, CatalogueError> {
        match crate::specs::requirements() {
            Entry::File(path) => Catalogue::load(&path),
            Entry::BuiltIn { origin, text } => Catalogue::from_toml(text, Path::new(&origin)),
        }
    }

    /// Read a catalogue file.
    pub fn load(path: &Path) -> Result<Catalogue, CatalogueError> {
        let text = crate::io::read_capped_string(path, crate::io::Cap::CATALOGUE)?;
        Catalogue::from_toml(&text, path)
    }

    /// Parse a catalogue; `origin` names it in errors.
    pub fn from_toml(text: &str, origin: &Path) -> Result<Catalogue, CatalogueError> {
        toml::from_str(text).map_err(|e| CatalogueError::Parse {
            path: origin.to_path_buf(),
            message: crate::io::toml_error_line(text, &e),
        })
    }

    /// The requirement with this ID.
    pub fn requirement(&self, id: &str) -> Option<&Requirement> {
        self.requirement.iter().find(|r| r.id == id)
    }

    /// The entry of this knob.
    pub fn knob(&self, key: &str) -> Option<&KnobEntry> {
        self.knob.iter().find(|k| k.key == key)
    }

    /// The knob's requirements as `ID (LEVEL)`, for reports.
    pub fn knob_requirements(&self, key: &str) -> Vec<String> {
        self.knob(key)
            .map(|k| {
                k.requirements
                    .iter()
                    .map(|id| match self.requirement(id) {
                        Some(r) => format!("{id} ({})", r.level),
                        None => id.clone(),
                    })
                    .collect()
            })
            .unwrap_or_default()
    }
}
