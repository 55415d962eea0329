//! The deterministic simulator over the IMPS protocol core, and the commands of the `imps`
//! CLI.
#![warn(missing_docs)]

pub mod check_cmd;
pub mod decode_cmd;
pub mod output;
pub mod variants_cmd;
