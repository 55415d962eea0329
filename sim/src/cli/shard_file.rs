//! The file of one shard of a sweep, `DIR/shard-K-of-N.jsonl`: one JSON line per unit,
//! appended (and synced) as soon as the unit is done, so that a shard interrupted by a
//! preemption or a time limit keeps the units it finished, and a rerun of the same shard runs
//! only the others.
//!
//! On opening, the records already in the file must be units of this sweep that this shard
//! owns, each once; otherwise the file is refused (it belongs to another sweep, or was
//! damaged), and nothing is overwritten. A last line without its newline was cut short by an
//! interruption: it is dropped, and its unit runs again.

use crate::engine::result::RunResult;
use crate::engine::sweep::{Shard, SweepId, UnitRecord};
use std::collections::BTreeMap;
use std::io::{BufRead, Write};
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
    /// The units the file held when it was opened, and whether each failed (`fails`).
    done: BTreeMap<u64, bool>,
}

impl ShardFile {
    /// The path of `shard`'s file in `dir`.
    pub fn path_in(dir: &Path, shard: Shard) -> PathBuf {
        dir.join(format!("shard-{}-of-{}.jsonl", shard.k, shard.n))
    }

    /// Open `shard`'s file in `dir` for `sweep`, creating it (and `dir`) when there is none,
    /// and read the units it already holds, one line at a time: only their indices and whether
    /// each `fails` are kept, so that a long shard is continued in constant memory.
    pub fn open(
        dir: &Path,
        shard: Shard,
        sweep: &SweepId,
        fails: &dyn Fn(&RunResult) -> bool,
    ) -> Result<ShardFile, ShardFileError> {
        let path = ShardFile::path_in(dir, shard);
        let io = |source| ShardFileError::Io {
            path: path.clone(),
            source,
        };
        std::fs::create_dir_all(dir).map_err(io)?;
        let mut reader = match std::fs::File::open(&path) {
            Ok(f) => Some(std::io::BufReader::new(f)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
            Err(e) => return Err(io(e)),
        };
        let mut done = BTreeMap::new();
        // Only lines with their newline are complete; the rest was cut short.
        let (mut complete, mut total) = (0u64, 0u64);
        let mut line = String::new();
        for n in 0.. {
            let Some(r) = reader.as_mut() else { break };
            line.clear();
            let read = r.read_line(&mut line).map_err(io)?;
            if read == 0 {
                break;
            }
            total += read as u64;
            if !line.ends_with('\n') {
                break;
            }
            complete = total;
            let foreign = |why: String| ShardFileError::Foreign {
                path: path.clone(),
                line: n + 1,
                why,
            };
            if line.trim().is_empty() {
                continue;
            }
            let rec: UnitRecord = serde_json::from_str(&line).map_err(|e| {
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
            if done.insert(rec.unit, fails(&rec.result)).is_some() {
                return Err(foreign("a unit the file already holds".to_string()));
            }
        }
        let mut file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .map_err(io)?;
        let len = file.metadata().map_err(io)?.len();
        if complete < len {
            file.set_len(complete).map_err(io)?;
        }
        file.flush().map_err(io)?;
        Ok(ShardFile { path, file, done })
    }

    /// The file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The units the file held when it was opened, by unit index, and whether each failed.
    pub fn done(&self) -> &BTreeMap<u64, bool> {
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
