//! The file of one shard of a sweep, `DIR/shard-K-of-N.jsonl`: one JSON line per unit,
//! appended (and synced) as soon as the unit is done, so that a shard interrupted by a
//! preemption or a time limit keeps the units it finished, and a rerun of the same shard runs
//! only the others.
//!
//! On opening, the records already in the file must be units of this sweep that this shard
//! owns, each once; otherwise the file is refused (it belongs to another sweep, or was
//! damaged), and nothing is overwritten. A last line without its newline was cut short by an
//! interruption: it is dropped, and its unit runs again.

use crate::engine::sweep::{Shard, SweepId, UnitRecord};
use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};

/// Why a shard file cannot be continued.
#[derive(Debug, thiserror::Error)]
pub enum ShardFileError {
    /// The file could not be read or written.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// A line is not a unit of this sweep and shard.
    #[error("{}:{line}: {why}; the file is left as it is: remove it to run the shard from scratch, or give another --out", path.display())]
    Foreign {
        /// The file.
        path: PathBuf,
        /// The line (from 1).
        line: usize,
        /// What is wrong with it.
        why: String,
    },
}

/// An open shard file.
pub struct ShardFile {
    path: PathBuf,
    file: std::fs::File,
    done: BTreeMap<u64, UnitRecord>,
}

impl ShardFile {
    /// The path of `shard`'s file in `dir`.
    pub fn path_in(dir: &Path, shard: Shard) -> PathBuf {
        dir.join(format!("shard-{}-of-{}.jsonl", shard.k, shard.n))
    }

    /// Open `shard`'s file in `dir` for `sweep`, creating it (and `dir`) when there is none,
    /// and read the units it already holds.
    pub fn open(dir: &Path, shard: Shard, sweep: &SweepId) -> Result<ShardFile, ShardFileError> {
        let path = ShardFile::path_in(dir, shard);
        let io = |source| ShardFileError::Io {
            path: path.clone(),
            source,
        };
        std::fs::create_dir_all(dir).map_err(io)?;
        let text = match std::fs::read_to_string(&path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
            Err(e) => return Err(io(e)),
        };
        let mut done = BTreeMap::new();
        // Only lines with their newline are complete; the rest was cut short.
        let complete = text.rfind('\n').map_or(0, |i| i + 1);
        for (n, line) in text[..complete].lines().enumerate() {
            let foreign = |why: String| ShardFileError::Foreign {
                path: path.clone(),
                line: n + 1,
                why,
            };
            if line.trim().is_empty() {
                continue;
            }
            let rec: UnitRecord = serde_json::from_str(line).map_err(|e| {
                foreign(format!("not a unit record of `imps simulate --shard`: {e}"))
            })?;
            if rec.sweep != *sweep {
                return Err(foreign(format!(
                    "a unit of another sweep (config {}, variants {}, seeds {}..{}); this run is config {}",
                    rec.sweep.config_hash,
                    rec.sweep.variants.join(", "),
                    rec.sweep.seeds[0],
                    rec.sweep.seeds[1],
                    sweep.config_hash
                )));
            }
            let theirs = (rec.result.variant.as_str(), rec.result.seed);
            if rec.unit >= sweep.units() || !shard.owns(rec.unit) || sweep.unit(rec.unit) != theirs
            {
                return Err(foreign(format!(
                    "unit {} ({}, seed {}) is not a unit of shard {shard}",
                    rec.unit, theirs.0, theirs.1
                )));
            }
            if done.insert(rec.unit, rec).is_some() {
                return Err(foreign("a unit the file already holds".to_string()));
            }
        }
        let mut file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .map_err(io)?;
        if complete < text.len() {
            file.set_len(complete as u64).map_err(io)?;
        }
        file.flush().map_err(io)?;
        Ok(ShardFile { path, file, done })
    }

    /// The file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The units the file held when it was opened, by unit index.
    pub fn done(&self) -> &BTreeMap<u64, UnitRecord> {
        &self.done
    }

    /// Append a unit's line, and sync it to the disk before the next unit runs.
    pub fn append(&mut self, rec: &UnitRecord) -> Result<(), ShardFileError> {
        let mut line = serde_json::to_string(rec).expect("invariant: records serialize");
        line.push('\n');
        self.file
            .write_all(line.as_bytes())
            .and_then(|()| self.file.sync_data())
            .map_err(|source| ShardFileError::Io {
                path: self.path.clone(),
                source,
            })
    }
}
