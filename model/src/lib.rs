//! placeholder, being written
pub mod codes;
pub mod msg;
pub mod xml;
