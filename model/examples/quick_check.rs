//! Check one variant and print the verdicts (a development aid; `imps check` is the tool).
use imps_model::checker::{check, Options};
use imps_model::config::{resolve_variant, variants_dir};

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (name, mut cfg) = resolve_variant(&args[0], &variants_dir()).unwrap();
    for s in &args[1..] {
        cfg.apply_set(s).unwrap();
    }
    let t = std::time::Instant::now();
    let out = check(&cfg, &name, Options::default(), &mut |_| {}).unwrap();
    println!(
        "{name}: {} states, {} edges, depth {}, comps {:?}, {:?}",
        out.states,
        out.edges,
        out.depth,
        out.components,
        t.elapsed()
    );
    for r in &out.results {
        println!("  {:50} {}", r.prop.name(), r.verdict.as_str());
        if let Some(tr) = &r.trace {
            if r.prop.name() == "no_deadlock" || std::env::var("TRACES").is_ok() {
                print!("{}", tr.text());
            }
        }
    }
}
