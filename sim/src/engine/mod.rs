//! The deterministic discrete-event simulator.
//!
//! The model checker answers "can it deadlock?" within small bounds; the simulator answers
//! "how often, how long, at what cost?" at the scale of an operator: a million devices,
//! hours of simulated time, realistic timers. It drives the protocol core's own state machines
//! ([`imps_model::client::Client`], [`imps_model::server::UserServer`]), the same code the
//! checker explores, and evaluates the same monitors ([`imps_model::props`]) after every event.
//!
//! * [`queue`]: events ordered by `(time, sequence)` in a radix heap.
//! * [`rng`]: one seeded Xoshiro stream per device and purpose; deterministic samplers.
//! * [`scenario`]: the typed scenario (devices, faults, timers) and its validation.
//! * [`sim`]: the event loop of one partition: devices, server, network, crashes, outages,
//!   monitors, metrics.
//! * [`partition`]: a run cut into partitions of users, on threads, added up into one result
//!   that does not depend on the threads.
//! * [`grid`]: per-second figures (sessions, requests by primitive) that partitions add up.
//! * [`classify`]: devices left without a session, trapped (the checker's deadlock) or slow.
//! * [`result`]: what a run produces, as exact plain data.
//! * [`sweep`]: (variant, seed) units, shards, and their aggregation into a report.
//! * [`report`], [`plot`], [`trace`]: text, JSON, Markdown, SVG, Mermaid and XML outputs.
//! * [`vlog`]: the traced devices as a validation log for `imps validate`.
//!
//! The same seed and configuration give the same event sequence, hence the same digest, on
//! any machine: time is virtual, randomness comes from named generators seeded by the run's
//! seed, no `HashMap` is iterated, and floating point is limited to `+ - * /`.
//!
//! ```
//! use imps_model::variant::{resolve_variant, variants_dir};
//! use imps_sim::engine::scenario::{Dur, Scenario};
//! use imps_sim::engine::sim::{run, RunSpec};
//!
//! let (name, variant) = resolve_variant("post-cr", &variants_dir()).unwrap();
//! let scenario = Scenario { devices: 200, duration: Dur(600_000), ..Scenario::default() };
//! let spec = RunSpec {
//!     threads: 2,
//!     variant: &name,
//!     cfg: &variant.cfg,
//!     expected: variant.expected_violated(),
//!     scenario: &scenario,
//!     seed: 7,
//!     trace_devices: &[],
//! };
//! let a = run(&spec, &mut |_| {}).unwrap().result;
//! let b = run(&spec, &mut |_| {}).unwrap().result;
//! assert_eq!(a.digest, b.digest, "a seed reproduces the run");
//! assert_eq!(a.trapped_devices + a.slow_devices, 0);
//! ```

pub mod classify;
pub mod grid;
pub mod hist;
pub mod partition;
pub mod plot;
pub mod queue;
pub mod report;
pub mod result;
pub mod rng;
pub mod scenario;
pub mod sim;
pub mod sweep;
pub mod trace;
pub mod vlog;
