//! What the end-to-end tests of the simulator share.

use std::path::Path;
use std::process::{Command, Output};

/// Run the `imps` binary with these arguments in `dir`.
pub fn imps(args: &[&str], dir: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_imps"))
        .args(args)
        .current_dir(dir)
        .output()
        .expect("the imps binary runs")
}
