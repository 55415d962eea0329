//! `imps variants`: the named variants and every knob with its default and meaning.

use imps_model::config::{knob_values, Config, ConfigError, KNOBS};
use imps_model::specs::SpecsDir;
use imps_model::variant::{named_variants, resolve_variant};
use std::io::Write;

/// Print the listing of the named variants in `dir`, then every knob.
pub fn list(dir: &SpecsDir, out: &mut dyn Write) -> Result<(), ConfigError> {
    let named = named_variants(dir)?;
    let io = |e: std::io::Error| ConfigError::Io {
        path: "<stdout>".into(),
        source: e,
    };
    writeln!(out, "Named variants ({}):", dir.describe()).map_err(io)?;
    let width = named.iter().map(|(n, _)| n.len()).max().unwrap_or(0);
    for (name, _) in &named {
        let (_, variant) = resolve_variant(name, dir)?;
        writeln!(out, "  {name:width$}  {}", variant.cfg.description).map_err(io)?;
    }
    writeln!(
        out,
        "\nKnobs (default, values: meaning); override any with --set section.knob=value:"
    )
    .map_err(io)?;
    let defaults = knob_values(&Config::default());
    for k in KNOBS {
        let default = defaults
            .iter()
            .find(|(key, _)| key == k.key)
            .map(|(_, v)| v.as_str())
            .unwrap_or("?");
        writeln!(
            out,
            "  {} = {}\n      {}: {}",
            k.key, default, k.values, k.meaning
        )
        .map_err(io)?;
    }
    Ok(())
}

/// Print one variant's resolved knobs (after `--set`), as TOML.
pub fn show(name: &str, cfg: &Config, out: &mut dyn Write) -> std::io::Result<()> {
    writeln!(out, "# variant {name}: {}", cfg.description)?;
    let mut section = String::new();
    for (key, value) in knob_values(cfg) {
        let (s, k) = key.split_once('.').unwrap_or(("", &key));
        if s != section {
            writeln!(out, "\n[{s}]")?;
            section = s.to_string();
        }
        writeln!(out, "{k} = {value}")?;
    }
    Ok(())
}
