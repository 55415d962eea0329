//! Benchmarks of the CSP XML decoder on the shapes that used to take it quadratic time, up to
//! its 1 MiB cap: 65,536 empty elements (256 KiB, and padded to 960 KiB), as many `<a/>` as
//! fit in 1 MiB (about 262,000), one element with as many attributes as fit (about 149,000),
//! chains of elements nested to the deepest level accepted, and an ordinary Login-Request.
//! Each is a valid Login-Request whose filler the decoder skips (`imps_benches::xml_shapes`).
//!
//! `cargo bench -p imps-benches --bench xml`. Throughput is in bytes per second; the same
//! shapes as files for `imps decode`: `cargo run --release -p imps-benches --example xml_shapes`.

use criterion::{criterion_main, Criterion, Throughput};
use imps_model::xml::{decode, to_envelope};
use std::hint::black_box;

/// `decode` of each shape, then the mapping to the core (which reads the positions kept).
fn decoding(c: &mut Criterion) {
    let mut g = c.benchmark_group("decode");
    g.sample_size(20);
    for (name, doc) in imps_benches::xml_shapes::all() {
        let decoded = decode(&doc).unwrap_or_else(|e| panic!("{name} decodes: {e}"));
        to_envelope(&decoded).unwrap_or_else(|e| panic!("{name} maps to the core: {e}"));
        g.throughput(Throughput::Bytes(doc.len() as u64));
        g.bench_function(name, |b| {
            b.iter(|| black_box(decode(black_box(&doc)).map(|d| d.primitive.len())))
        });
    }
    g.finish();
}

/// Every benchmark of this file (what `criterion_group!` would generate, with a doc comment).
fn benches() {
    let mut c = Criterion::default().configure_from_args();
    decoding(&mut c);
}

criterion_main!(benches);
