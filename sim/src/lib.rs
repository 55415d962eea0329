//! The deterministic simulator over the IMPS protocol core ([`engine`]), and the commands of
//! the `imps` CLI ([`cli`]).
#![warn(missing_docs)]

pub mod cli;
pub mod engine;
pub mod hugepages;
pub mod output;
