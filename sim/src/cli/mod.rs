//! The commands of the `imps` CLI, one file each, over the checker (`imps_model::checker`),
//! the simulator ([`crate::engine`]) and trace validation (`imps_model::validate`); and the
//! command line's own pieces: flag value parsers ([`flags`]) and a shard's result file
//! ([`shard_file`]).

pub mod check;
pub mod decode;
pub mod diff;
pub mod flags;
pub mod repair;
pub mod shard_file;
pub mod simulate;
pub mod validate;
pub mod variants;
