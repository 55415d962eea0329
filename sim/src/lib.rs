//! The deterministic simulator over the IMPS protocol core, and the commands of the `imps`
//! CLI.
#![warn(missing_docs)]

pub mod check_cmd;
pub mod decode_cmd;
pub mod diff_cmd;
pub mod engine;
pub mod flags;
pub mod output;
pub mod repair_cmd;
pub mod shard_file;
pub mod simulate_cmd;
pub mod validate_cmd;
pub mod variants_cmd;
