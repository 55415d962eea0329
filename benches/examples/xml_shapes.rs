//! Writes the decoder benchmark's shapes (`imps_benches::xml_shapes`) as files, one
//! `NAME.xml` each, to time `imps decode` on them:
//!
//! ```sh
//! cargo run --release -p imps-benches --example xml_shapes -- target/xml-shapes
//! for f in target/xml-shapes/*.xml; do
//!   /usr/bin/time -f "%e s  %M KB  $f" target/release/imps decode "$f" > /dev/null
//! done
//! ```

use std::path::PathBuf;
use std::process::ExitCode;

fn main() -> ExitCode {
    let Some(dir) = std::env::args_os().nth(1).map(PathBuf::from) else {
        eprintln!("usage: xml_shapes DIR");
        return ExitCode::from(2);
    };
    if let Err(e) = std::fs::create_dir_all(&dir) {
        eprintln!("xml_shapes: {}: {e}", dir.display());
        return ExitCode::from(2);
    }
    for (name, doc) in imps_benches::xml_shapes::all() {
        let path = dir.join(format!("{name}.xml"));
        if let Err(e) = std::fs::write(&path, doc) {
            eprintln!("xml_shapes: {}: {e}", path.display());
            return ExitCode::from(2);
        }
        println!("{} ({} bytes)", path.display(), doc_len(&path));
    }
    ExitCode::SUCCESS
}

fn doc_len(path: &std::path::Path) -> u64 {
    std::fs::metadata(path).map_or(0, |m| m.len())
}
