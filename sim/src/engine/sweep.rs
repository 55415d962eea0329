//! Sweeps: (variant, seed) units, shards of them, JSON Lines records, and the aggregation of
//! records into a report.
//!
//! A sweep is the variants of a run times a range of seeds. Unit `i` is seed
//! `seeds.start + i / variants`, variant `i % variants`: the variants of one seed are
//! neighbours. Shard `K/N` runs the units with `i % N == K`, so shards need no coordination;
//! each writes one JSON line per unit ([`UnitRecord`]). `imps merge` reads the lines of all
//! shards, checks that they belong to one sweep and that every unit ran exactly once, and
//! builds the report with [`aggregate`], the very function an unsharded run uses: the merged
//! report is the unsharded one.

use super::hist::LogHistogram;
use super::result::{Faults, Logins, PrimitiveLoad, RunResult, Sample, Sessions};
use super::scenario::{Scenario, MAX_SEED};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fmt;

/// Everything that identifies a sweep: a shard's records merge only with records of the same.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SweepId {
    /// xxh3-64 of the resolved configuration (scenario and every variant's knobs), hex.
    pub config_hash: String,
    /// The scenario's name (or path) as given.
    pub scenario_name: String,
    /// The resolved scenario.
    pub scenario: Scenario,
    /// The variants, in command-line order.
    pub variants: Vec<String>,
    /// Seeds `[start, end)`.
    pub seeds: [u64; 2],
    /// The flags that reproduce the configuration (scenario, devices, duration, `--set`s),
    /// for replay commands.
    pub replay_args: String,
}

impl SweepId {
    /// Number of units.
    pub fn units(&self) -> u64 {
        (self.seeds[1] - self.seeds[0]) * self.variants.len() as u64
    }

    /// The (variant, seed) of unit `i`.
    pub fn unit(&self, i: u64) -> (&str, u64) {
        let n = self.variants.len() as u64;
        (&self.variants[(i % n) as usize], self.seeds[0] + i / n)
    }

    /// The command that replays one run and traces a device.
    pub fn replay(&self, variant: &str, seed: u64, device: Option<u32>) -> String {
        let mut cmd = format!(
            "imps simulate --variant {variant} {} --seed {seed}",
            self.replay_args
        );
        if let Some(d) = device {
            cmd.push_str(&format!(
                " --trace-device {d} --out trace-{variant}-{seed}-{d}"
            ));
        }
        cmd
    }
}

/// `--shard K/N`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Shard {
    /// This shard, `0..n`.
    pub k: u64,
    /// Shards.
    pub n: u64,
}

impl Shard {
    /// Whether unit `i` belongs to this shard.
    pub const fn owns(&self, i: u64) -> bool {
        i % self.n == self.k
    }
}

impl fmt::Display for Shard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.k, self.n)
    }
}

impl std::str::FromStr for Shard {
    type Err = String;

    fn from_str(s: &str) -> Result<Shard, String> {
        let bad = || {
            format!("expected K/N with 0 <= K < N (e.g. 0/4; K is a 0-based index such as JOB_COMPLETION_INDEX), found `{s}`")
        };
        let (k, n) = s.split_once('/').ok_or_else(bad)?;
        let k: u64 = k.trim().parse().map_err(|_| bad())?;
        let n: u64 = n.trim().parse().map_err(|_| bad())?;
        if n == 0 || k >= n {
            return Err(bad());
        }
        Ok(Shard { k, n })
    }
}

/// `--seeds A..B` (B excluded) or `A..=B`; seeds are 0 to [`MAX_SEED`], as `--seed`.
pub fn parse_seeds(s: &str) -> Result<[u64; 2], String> {
    let bad = || {
        format!("expected a seed range A..B (B excluded) or A..=B, with A < B and seeds from 0 to {MAX_SEED}, found `{s}`")
    };
    let (a, b, inclusive) = match s.split_once("..=") {
        Some((a, b)) => (a, b, true),
        None => {
            let (a, b) = s.split_once("..").ok_or_else(bad)?;
            (a, b, false)
        }
    };
    let a: u64 = a.trim().parse().map_err(|_| bad())?;
    let b: u64 = b.trim().parse().map_err(|_| bad())?;
    let end = if inclusive {
        b.checked_add(1).ok_or_else(bad)?
    } else {
        b
    };
    if end <= a || end - 1 > MAX_SEED {
        return Err(bad());
    }
    if end - a > 1_000_000 {
        return Err(format!("at most 1000000 seeds in one sweep, found `{s}`"));
    }
    Ok([a, end])
}

/// One JSON line of a shard.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UnitRecord {
    /// The sweep.
    pub sweep: SweepId,
    /// The unit's index.
    pub unit: u64,
    /// The result.
    pub result: RunResult,
}

/// Quantiles of a histogram.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Quantiles {
    /// Values counted.
    pub count: u64,
    /// Median.
    pub p50: u64,
    /// 90th percentile.
    pub p90: u64,
    /// 99th percentile.
    pub p99: u64,
    /// Largest.
    pub max: u64,
}

impl Quantiles {
    /// The quantiles of `h`.
    pub fn of(h: &LogHistogram) -> Quantiles {
        Quantiles {
            count: h.count(),
            p50: h.quantile_permille(500),
            p90: h.quantile_permille(900),
            p99: h.quantile_permille(990),
            max: h.max(),
        }
    }
}

/// Login counts, as reported.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct LoginSummary {
    /// Login-Requests with credentials sent.
    pub attempted: u64,
    /// Successful Login-Responses received.
    pub succeeded: u64,
    /// Recoveries attempted.
    pub recoveries_attempted: u64,
    /// Recoveries that succeeded.
    pub recoveries_succeeded: u64,
}

/// A violated property, over the seeds.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ViolationSummary {
    /// The property.
    pub property: String,
    /// A safety invariant (stops a run unless expected), else a conformance monitor.
    pub invariant: bool,
    /// The variant expects it violated.
    pub expected: bool,
    /// Events that violated it, all seeds together.
    pub count: u64,
    /// The first seed where it occurred.
    pub first_seed: u64,
    /// The first event's number in that seed's run.
    pub first_event: u64,
    /// Its simulated time, ms.
    pub first_time_ms: u64,
    /// Its device.
    pub first_device: u32,
    /// The command that replays that run and traces that device.
    pub replay: String,
}

/// Devices of one seed without a session at the end of the liveness phase.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct StuckSeed {
    /// The seed.
    pub seed: u64,
    /// Devices without a session: trapped and slow.
    pub count: u64,
    /// Trapped devices: no protocol step leads them back to a session.
    pub trapped: u64,
    /// Slow devices: not trapped, not back yet.
    pub slow: u64,
    /// The first few trapped ids.
    pub first_trapped_ids: Vec<u32>,
    /// The first few slow ids.
    pub first_slow_ids: Vec<u32>,
    /// The command that replays the run and traces the first trapped device (the first slow
    /// one when none is trapped).
    pub replay: String,
}

/// The report of one variant over the sweep's seeds: the JSON object of `--format json`.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct VariantReport {
    /// The first seed.
    pub seed: u64,
    /// Seeds `[start, end)`.
    pub seeds: [u64; 2],
    /// The variant.
    pub variant: String,
    /// The configuration hash.
    pub config_hash: String,
    /// Devices per run.
    pub devices: u32,
    /// Users per run.
    pub users: u32,
    /// Simulated time of the faulty phase, s.
    pub sim_duration_s: f64,
    /// Simulated time of the liveness phase, s.
    pub liveness_s: f64,
    /// Events, all seeds.
    pub events: u64,
    /// Wall-clock time, s (machine-dependent).
    pub wall_s: f64,
    /// Events per wall-clock second (machine-dependent).
    pub events_per_s: f64,
    /// Devices without a session at the end of the liveness phase (trapped and slow), over the
    /// seeds whose run completed; `None` when every run was stopped by a violation.
    pub stuck_devices: Option<u64>,
    /// Of those, the trapped: no sequence of protocol steps leads them back to a session (the
    /// checker's deadlock). `None` when every run was stopped.
    pub trapped_devices: Option<u64>,
    /// Of those, the slow: not trapped, merely not back yet. `None` when every run was stopped.
    pub slow_devices: Option<u64>,
    /// Per seed with devices without a session: counts, first ids, replay command (the first
    /// [`LISTED_SEEDS`] such seeds).
    pub stuck: Vec<StuckSeed>,
    /// Seeds with devices without a session, all of them.
    pub stuck_seeds: u64,
    /// Login counts.
    pub logins: LoginSummary,
    /// Result codes of the server's messages, by code.
    pub result_codes: BTreeMap<String, u64>,
    /// Time from losing a session to holding one again, ms.
    pub time_to_recover_ms: Quantiles,
    /// Most orphaned sessions at once (largest over the seeds).
    pub orphan_sessions_peak: u64,
    /// Orphaned sessions at the end, all seeds.
    pub orphan_sessions_end: u64,
    /// Most active sessions at once (largest over the seeds).
    pub live_sessions_peak: u64,
    /// Session counts, all seeds.
    pub sessions: Sessions,
    /// Fault counts, all seeds.
    pub faults: Faults,
    /// Messages, all seeds.
    pub messages: u64,
    /// Share of device-time with a session, parts per million (over the seeds).
    pub availability_ppm: u64,
    /// Requests the server received in its busiest second (largest over the seeds).
    pub server_peak_requests_per_s: u64,
    /// Requests by primitive: in all (all seeds) and in the busiest second (largest over the
    /// seeds).
    pub requests_by_primitive: BTreeMap<String, PrimitiveLoad>,
    /// From the correlated outage until 99 % of the devices it hit held a session again, to
    /// the whole second, ms (largest over the seeds); `None` without an outage, or when a seed
    /// never got there.
    pub time_to_99pct_sessions_ms: Option<u64>,
    /// Messages the devices hit by the outage spent until each held a session again, per
    /// device back in (two decimals); `None` without an outage or without a device back in.
    pub messages_per_reentry: Option<f64>,
    /// What the correlated outage did; `None` without one.
    pub storm: Option<StormSummary>,
    /// Properties violated.
    pub violations: Vec<ViolationSummary>,
    /// Runs stopped by a violation: (seed, property), the first [`LISTED_SEEDS`].
    pub stopped: Vec<(u64, String)>,
    /// Runs stopped by a violation, all of them.
    pub stopped_seeds: u64,
    /// Witnesses reached in every seed.
    pub witnesses: Vec<String>,
    /// xxh3-64 over the seeds' digests in seed order, hex (the single run's digest for one seed).
    pub digest: String,
}

/// A metric of two variants, and the difference (second minus first). A value is `None`
/// (`null` in JSON) where the metric does not exist: trapped and slow devices of a variant whose
/// run was stopped by a violation, recovery times of a variant with no recovery.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct Paired {
    /// The baseline's value.
    pub baseline: Option<i128>,
    /// The other variant's value.
    pub variant: Option<i128>,
    /// `variant - baseline`, when both exist.
    pub diff: Option<i128>,
}

impl Paired {
    fn new(a: u64, b: u64) -> Paired {
        Paired::maybe(Some(a), Some(b))
    }

    fn maybe(a: Option<u64>, b: Option<u64>) -> Paired {
        let (a, b) = (a.map(i128::from), b.map(i128::from));
        Paired {
            baseline: a,
            variant: b,
            diff: a.zip(b).map(|(a, b)| b - a),
        }
    }
}

/// The paired comparison of a variant with the baseline (the first variant) on the same seeds,
/// hence the same device behaviour.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Comparison {
    /// The first variant.
    pub baseline: String,
    /// The other.
    pub variant: String,
    /// Crashes hit the same devices at the same times in both (a check of the pairing).
    pub same_crashes: bool,
    /// Trapped devices (`None` for a variant with a run stopped by a violation).
    pub trapped_devices: Paired,
    /// Slow devices (`None` for a variant with a run stopped by a violation).
    pub slow_devices: Paired,
    /// Devices trapped in both runs of a seed (0 when a run of either variant was stopped).
    pub trapped_in_both: u64,
    /// Trapped with the baseline only.
    pub trapped_only_baseline: u64,
    /// Trapped with the variant only.
    pub trapped_only_variant: u64,
    /// The three counts above are exact (every trapped id was recorded).
    pub trapped_overlap_exact: bool,
    /// Peak orphaned sessions.
    pub orphan_sessions_peak: Paired,
    /// Median time to recover, ms (`None` for a variant with no recovery).
    pub time_to_recover_p50_ms: Paired,
    /// 99th percentile time to recover, ms (`None` for a variant with no recovery).
    pub time_to_recover_p99_ms: Paired,
    /// Availability, ppm.
    pub availability_ppm: Paired,
    /// Login attempts.
    pub logins_attempted: Paired,
    /// Messages.
    pub messages: Paired,
    /// Events.
    pub events: Paired,
    /// Requests in the server's busiest second.
    pub server_peak_requests_per_s: Paired,
    /// Time until 99 % of the devices the outage hit held a session again, ms.
    pub time_to_99pct_sessions_ms: Paired,
    /// Messages per device back in after the outage.
    pub messages_per_reentry: PairedRatio,
}

/// A ratio of two variants: the values, and the variant's over the baseline's.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct PairedRatio {
    /// The baseline's value.
    pub baseline: Option<f64>,
    /// The other variant's value.
    pub variant: Option<f64>,
    /// `variant / baseline`, two decimals, when both exist.
    pub ratio: Option<f64>,
}

impl PairedRatio {
    fn new(a: Option<f64>, b: Option<f64>) -> PairedRatio {
        PairedRatio {
            baseline: a,
            variant: b,
            ratio: a
                .zip(b)
                .filter(|(a, _)| *a > 0.0)
                .map(|(a, b)| (b / a * 100.0).round() / 100.0),
        }
    }
}

/// The whole report: one [`VariantReport`] per variant, and the comparisons.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Report {
    /// The sweep.
    pub sweep: SweepId,
    /// Per variant.
    pub runs: Vec<VariantReport>,
    /// Each variant after the first against the first.
    pub comparison: Vec<Comparison>,
    /// Sessions-over-time series per variant, averaged over the seeds (for plots).
    #[serde(skip)]
    pub series: Vec<Vec<Sample>>,
    /// Time-to-recover histograms per variant (for plots).
    #[serde(skip)]
    pub ttr: Vec<LogHistogram>,
    /// Per variant, per primitive, the busiest second of each interval of `series`, averaged
    /// over the seeds (for plots).
    #[serde(skip)]
    pub load: Vec<BTreeMap<String, Vec<u64>>>,
}

/// Why records do not make a sweep.
#[derive(Debug, thiserror::Error)]
pub enum MergeError {
    /// A record whose sweep description cannot be right (damaged or forged).
    #[error("{origin}: the record's sweep is invalid: {message}")]
    BadSweep {
        /// File and line.
        origin: String,
        /// What is wrong.
        message: String,
    },
    /// Records of different sweeps.
    #[error("{origin}: record of another sweep (config {found}, variants {found_variants:?}, seeds {found_seeds:?}); expected config {expected}")]
    OtherSweep {
        /// Where.
        origin: String,
        /// The expected config hash.
        expected: String,
        /// The found config hash.
        found: String,
        /// The found variants.
        found_variants: Vec<String>,
        /// The found seeds.
        found_seeds: [u64; 2],
    },
    /// A unit index out of range, or with the wrong (variant, seed).
    #[error("{origin}: unit {unit} is not ({variant}, seed {seed}) of this sweep")]
    BadUnit {
        /// Where.
        origin: String,
        /// The unit.
        unit: u64,
        /// The variant found.
        variant: String,
        /// The seed found.
        seed: u64,
    },
    /// A unit twice.
    #[error("{origin}: unit {unit} ({variant}, seed {seed}) ran twice (first in {first})")]
    Duplicate {
        /// Where.
        origin: String,
        /// The first place.
        first: String,
        /// The unit.
        unit: u64,
        /// Its variant.
        variant: String,
        /// Its seed.
        seed: u64,
    },
    /// Units missing.
    #[error("{missing} of {total} units missing, e.g. unit {example} ({variant}, seed {seed}): run the shards that own them")]
    Missing {
        /// How many.
        missing: u64,
        /// Of how many.
        total: u64,
        /// One of them.
        example: u64,
        /// Its variant.
        variant: String,
        /// Its seed.
        seed: u64,
    },
    /// No records at all.
    #[error("no records: give the JSON Lines files that `imps simulate --shard K/N` wrote")]
    Empty,
    /// A figure summed over the seeds does not fit in 64 bits.
    #[error("{variant}: {what} summed over the seeds overflows 64 bits at seed {seed}: the record holds a number no run gives")]
    Overflow {
        /// The variant.
        variant: String,
        /// The seed whose record made the sum overflow.
        seed: u64,
        /// The figure.
        what: &'static str,
    },
}

/// Check that `records` (with the place each came from) are every unit of one sweep exactly
/// once, and return the results in unit order.
pub fn collect(
    records: Vec<(String, UnitRecord)>,
) -> Result<(SweepId, Vec<RunResult>), MergeError> {
    let Some((first_origin, sweep)) = records.first().map(|(o, r)| (o.clone(), r.sweep.clone()))
    else {
        return Err(MergeError::Empty);
    };
    let bad = |message: String| MergeError::BadSweep {
        origin: first_origin.clone(),
        message,
    };
    let [a, b] = sweep.seeds;
    if a >= b || b - a > 1_000_000 || b - 1 > MAX_SEED {
        return Err(bad(format!(
            "seeds {a}..{b}: expected A < B, at most 1,000,000 seeds, each at most {MAX_SEED}"
        )));
    }
    let mut names = sweep.variants.clone();
    names.sort();
    names.dedup();
    if sweep.variants.is_empty() || names.len() != sweep.variants.len() {
        return Err(bad(format!(
            "variants {:?}: expected distinct names, at least one",
            sweep.variants
        )));
    }
    let total = sweep.units();
    let mut slots: Vec<Option<(String, RunResult)>> = vec![None; total as usize];
    for (origin, rec) in records {
        if rec.sweep != sweep {
            return Err(MergeError::OtherSweep {
                origin,
                expected: sweep.config_hash.clone(),
                found: rec.sweep.config_hash,
                found_variants: rec.sweep.variants,
                found_seeds: rec.sweep.seeds,
            });
        }
        let ok = rec.unit < total
            && sweep.unit(rec.unit) == (rec.result.variant.as_str(), rec.result.seed);
        if !ok {
            return Err(MergeError::BadUnit {
                origin,
                unit: rec.unit,
                variant: rec.result.variant,
                seed: rec.result.seed,
            });
        }
        let slot = &mut slots[rec.unit as usize];
        if let Some((first, _)) = slot {
            return Err(MergeError::Duplicate {
                origin,
                first: first.clone(),
                unit: rec.unit,
                variant: rec.result.variant,
                seed: rec.result.seed,
            });
        }
        *slot = Some((origin, rec.result));
    }
    let missing: Vec<u64> = (0..total)
        .filter(|&i| slots[i as usize].is_none())
        .collect();
    if let Some(&example) = missing.first() {
        let (variant, seed) = sweep.unit(example);
        return Err(MergeError::Missing {
            missing: missing.len() as u64,
            total,
            example,
            variant: variant.to_string(),
            seed,
        });
    }
    let results = slots
        .into_iter()
        .map(|s| s.expect("invariant: no unit missing").1)
        .collect();
    Ok((sweep, results))
}

/// How many trapped (and slow) ids a report lists per seed.
const SHOWN_IDS: usize = 20;

/// How many seeds a report lists with devices without a session, and with a stopped run: the
/// first ones; the counts cover them all. A sweep's memory does not grow with its seeds.
pub const LISTED_SEEDS: usize = 100;

/// The share of `device_ms` that is not `down_ms`, in parts per million; `None` when the
/// product does not fit (records that no run gives).
fn ppm(device_ms: u128, down_ms: u128) -> Option<u64> {
    let up = device_ms - down_ms.min(device_ms);
    Some(
        up.checked_mul(1_000_000)?
            .checked_div(device_ms)
            .map_or(0, |v| v as u64),
    )
}

/// What a correlated outage did, over the seeds.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct StormSummary {
    /// `crash`, `connection-loss` or `server-restart`.
    pub kind: String,
    /// When it hit, ms.
    pub at_ms: u64,
    /// Devices holding a session that it hit, all seeds.
    pub devices_hit: u64,
    /// Of those, the ones back in before the end.
    pub devices_back: u64,
    /// Messages of the devices back in, from the outage to holding a session again.
    pub messages_to_reentry: u64,
    /// Time from the outage to holding a session again, ms.
    pub time_to_reentry_ms: Quantiles,
}

/// A variant's report, and what its plots need: the sessions series, the time-to-recover
/// histogram, the load series.
type VariantParts = (
    VariantReport,
    Vec<Sample>,
    LogHistogram,
    BTreeMap<String, Vec<u64>>,
);

/// Figures of one variant, added up as the seeds' results arrive.
#[derive(Default)]
struct VariantAcc {
    runs: u64,
    first: Option<(u32, u32, u64, u64)>,
    logins: Logins,
    codes: BTreeMap<u16, u64>,
    ttr: LogHistogram,
    sessions: Sessions,
    faults: Faults,
    events: u64,
    wall_ms: u64,
    messages: u64,
    trapped: u64,
    slow: u64,
    completed: u64,
    device_ms: u128,
    down_ms: u128,
    stuck: Vec<StuckSeed>,
    stuck_seeds: u64,
    stopped: Vec<(u64, String)>,
    stopped_seeds: u64,
    violations: Vec<ViolationSummary>,
    witnesses: Option<Vec<String>>,
    series: Vec<Sample>,
    by_primitive: BTreeMap<String, PrimitiveLoad>,
    peak_requests: u64,
    load_series: BTreeMap<String, Vec<u64>>,
    storm: Option<(StormSummary, LogHistogram)>,
    /// The largest time to 99 % over the seeds; `Some(None)` once a seed never got there.
    to_99pct: Option<Option<u64>>,
    digest: Option<(String, xxhash_rust::xxh3::Xxh3)>,
}

impl VariantAcc {
    fn add(&mut self, sweep: &SweepId, variant: &str, r: &RunResult) -> Result<(), MergeError> {
        // Every count is a sum over the seeds: records that `imps merge` read from files can
        // hold any number, and a sum that does not fit is an error, not a wrapped figure.
        let add = |acc: &mut u64, v: u64, what: &'static str| {
            *acc = acc.checked_add(v).ok_or_else(|| MergeError::Overflow {
                variant: variant.to_string(),
                seed: r.seed,
                what,
            })?;
            Ok::<(), MergeError>(())
        };
        self.runs += 1;
        self.first
            .get_or_insert((r.devices, r.users, r.sim_duration_ms, r.liveness_ms));
        add(&mut self.events, r.events, "events")?;
        add(&mut self.wall_ms, r.wall_ms, "wall_ms")?;
        add(&mut self.messages, r.messages, "messages")?;
        let mut stuck_here = r.trapped_devices;
        add(&mut stuck_here, r.slow_devices, "trapped and slow devices")?;
        if !r.stopped() {
            self.completed += 1;
            add(&mut self.trapped, r.trapped_devices, "trapped_devices")?;
            add(&mut self.slow, r.slow_devices, "slow_devices")?;
        }
        let l = &r.logins;
        let acc = &mut self.logins;
        add(&mut acc.attempted, l.attempted, "logins.attempted")?;
        add(&mut acc.succeeded, l.succeeded, "logins.succeeded")?;
        add(
            &mut acc.recoveries_attempted,
            l.recoveries_attempted,
            "logins.recoveries_attempted",
        )?;
        add(
            &mut acc.recoveries_succeeded,
            l.recoveries_succeeded,
            "logins.recoveries_succeeded",
        )?;
        for (c, n) in &r.result_codes {
            add(self.codes.entry(*c).or_default(), *n, "result_codes")?;
        }
        self.ttr
            .checked_merge(&r.time_to_recover_ms)
            .ok_or_else(|| MergeError::Overflow {
                variant: variant.to_string(),
                seed: r.seed,
                what: "time_to_recover_ms",
            })?;
        let (s, acc) = (&r.sessions, &mut self.sessions);
        add(&mut acc.created, s.created, "sessions.created")?;
        add(&mut acc.recovered, s.recovered, "sessions.recovered")?;
        add(
            &mut acc.ended_logout,
            s.ended_logout,
            "sessions.ended_logout",
        )?;
        add(
            &mut acc.ended_expired,
            s.ended_expired,
            "sessions.ended_expired",
        )?;
        add(
            &mut acc.ended_replaced,
            s.ended_replaced,
            "sessions.ended_replaced",
        )?;
        add(
            &mut acc.ended_restart,
            s.ended_restart,
            "sessions.ended_restart",
        )?;
        acc.live_peak = acc.live_peak.max(s.live_peak);
        add(&mut acc.live_end, s.live_end, "sessions.live_end")?;
        acc.orphan_peak = acc.orphan_peak.max(s.orphan_peak);
        add(&mut acc.orphan_end, s.orphan_end, "sessions.orphan_end")?;
        let (f, acc) = (&r.faults, &mut self.faults);
        add(&mut acc.crashes, f.crashes, "faults.crashes")?;
        add(
            &mut acc.lost_messages,
            f.lost_messages,
            "faults.lost_messages",
        )?;
        add(
            &mut acc.connection_losses,
            f.connection_losses,
            "faults.connection_losses",
        )?;
        add(
            &mut acc.answers_to_dead_connections,
            f.answers_to_dead_connections,
            "faults.answers_to_dead_connections",
        )?;
        add(
            &mut acc.outage_crashes,
            f.outage_crashes,
            "faults.outage_crashes",
        )?;
        add(
            &mut acc.outage_connection_losses,
            f.outage_connection_losses,
            "faults.outage_connection_losses",
        )?;
        // At most 2^32 devices x 2^64 ms per run and 2^20 runs: 2^116, no overflow.
        self.device_ms += u128::from(r.devices) * u128::from(r.end_ms);
        self.down_ms += u128::from(r.downtime_ms);
        if stuck_here > 0 {
            self.stuck_seeds += 1;
            if self.stuck.len() < LISTED_SEEDS {
                let first = r
                    .trapped_device_ids
                    .first()
                    .or(r.slow_device_ids.first())
                    .copied();
                self.stuck.push(StuckSeed {
                    seed: r.seed,
                    count: stuck_here,
                    trapped: r.trapped_devices,
                    slow: r.slow_devices,
                    first_trapped_ids: r
                        .trapped_device_ids
                        .iter()
                        .take(SHOWN_IDS)
                        .copied()
                        .collect(),
                    first_slow_ids: r.slow_device_ids.iter().take(SHOWN_IDS).copied().collect(),
                    replay: sweep.replay(variant, r.seed, first),
                });
            }
        }
        if let Some(p) = &r.stopped_by {
            self.stopped_seeds += 1;
            if self.stopped.len() < LISTED_SEEDS {
                self.stopped.push((r.seed, p.clone()));
            }
        }
        for v in &r.violations {
            match self
                .violations
                .iter_mut()
                .find(|x| x.property == v.property)
            {
                Some(x) => add(&mut x.count, v.count, "violations.count")?,
                None => self.violations.push(ViolationSummary {
                    property: v.property.clone(),
                    invariant: v.invariant,
                    expected: v.expected,
                    count: v.count,
                    first_seed: r.seed,
                    first_event: v.first_event,
                    first_time_ms: v.first_time_ms,
                    first_device: v.first_device,
                    replay: sweep.replay(variant, r.seed, Some(v.first_device)),
                }),
            }
        }
        self.witnesses = Some(match self.witnesses.take() {
            None => r.witnesses.clone(),
            Some(w) => w.into_iter().filter(|x| r.witnesses.contains(x)).collect(),
        });
        if self.series.is_empty() {
            self.series = r
                .series
                .iter()
                .map(|s| Sample {
                    t_ms: s.t_ms,
                    ..Sample::default()
                })
                .collect();
        }
        for (acc, s) in self.series.iter_mut().zip(&r.series) {
            add(&mut acc.live, s.live, "series.live")?;
            add(&mut acc.holding, s.holding, "series.holding")?;
            add(&mut acc.orphans, s.orphans, "series.orphans")?;
        }
        self.peak_requests = self.peak_requests.max(r.load.peak_requests_per_s);
        for (k, l) in &r.load.by_primitive {
            let acc = self.by_primitive.entry(k.clone()).or_default();
            add(&mut acc.total, l.total, "load.by_primitive.total")?;
            acc.peak_per_s = acc.peak_per_s.max(l.peak_per_s);
        }
        for (k, points) in &r.load.series {
            let acc = self
                .load_series
                .entry(k.clone())
                .or_insert_with(|| vec![0; points.len()]);
            for (a, p) in acc.iter_mut().zip(points) {
                add(a, *p, "load.series")?;
            }
        }
        match &r.storm {
            Some(st) => {
                let (sum, h) = self.storm.get_or_insert_with(|| {
                    (
                        StormSummary {
                            kind: st.kind.clone(),
                            at_ms: st.at_ms,
                            devices_hit: 0,
                            devices_back: 0,
                            messages_to_reentry: 0,
                            time_to_reentry_ms: Quantiles::of(&LogHistogram::new()),
                        },
                        LogHistogram::new(),
                    )
                });
                add(&mut sum.devices_hit, st.devices_hit, "storm.devices_hit")?;
                add(&mut sum.devices_back, st.devices_back, "storm.devices_back")?;
                add(
                    &mut sum.messages_to_reentry,
                    st.messages_to_reentry,
                    "storm.messages_to_reentry",
                )?;
                h.checked_merge(&st.time_to_reentry_ms)
                    .ok_or_else(|| MergeError::Overflow {
                        variant: variant.to_string(),
                        seed: r.seed,
                        what: "storm.time_to_reentry_ms",
                    })?;
                self.to_99pct = Some(match (self.to_99pct, st.time_to_99pct_sessions_ms) {
                    (None, t) => t,
                    (Some(Some(a)), Some(b)) => Some(a.max(b)),
                    (Some(_), _) => None,
                });
            }
            None => self.to_99pct = Some(None),
        }
        match &mut self.digest {
            None => {
                let mut h = xxhash_rust::xxh3::Xxh3::new();
                h.update(r.digest.as_bytes());
                self.digest = Some((r.digest.clone(), h));
            }
            Some((_, h)) => h.update(r.digest.as_bytes()),
        }
        Ok(())
    }

    fn report(self, sweep: &SweepId, variant: &str) -> Result<VariantParts, MergeError> {
        let n = self.runs.max(1);
        let (devices, users, sim_ms, live_ms) = self.first.unwrap_or_default();
        let series: Vec<Sample> = self
            .series
            .into_iter()
            .map(|s| Sample {
                t_ms: s.t_ms,
                live: s.live / n,
                holding: s.holding / n,
                orphans: s.orphans / n,
            })
            .collect();
        let load_series = self
            .load_series
            .into_iter()
            .map(|(k, v)| (k, v.into_iter().map(|x| x / n).collect()))
            .collect();
        let availability_ppm =
            ppm(self.device_ms, self.down_ms).ok_or_else(|| MergeError::Overflow {
                variant: variant.to_string(),
                seed: sweep.seeds[0],
                what: "availability (devices x end_ms)",
            })?;
        let wall_s = self.wall_ms as f64 / 1000.0;
        let completed = self.completed;
        let storm = self.storm.map(|(mut s, h)| {
            s.time_to_reentry_ms = Quantiles::of(&h);
            s
        });
        let messages_per_reentry = storm.as_ref().and_then(|s| {
            (s.devices_back > 0).then(|| {
                (s.messages_to_reentry as f64 / s.devices_back as f64 * 100.0).round() / 100.0
            })
        });
        let digest = match self.digest {
            Some((one, _)) if self.runs == 1 => one,
            Some((_, h)) => format!("{:016x}", h.digest()),
            None => String::new(),
        };
        let report = VariantReport {
            seed: sweep.seeds[0],
            seeds: sweep.seeds,
            variant: variant.to_string(),
            config_hash: sweep.config_hash.clone(),
            devices,
            users,
            sim_duration_s: sim_ms as f64 / 1000.0,
            liveness_s: live_ms as f64 / 1000.0,
            events: self.events,
            wall_s,
            events_per_s: if self.wall_ms == 0 {
                0.0
            } else {
                (self.events as f64 / wall_s).round()
            },
            stuck_devices: (completed > 0)
                .then(|| self.trapped.checked_add(self.slow))
                .map(|sum| {
                    sum.ok_or_else(|| MergeError::Overflow {
                        variant: variant.to_string(),
                        seed: sweep.seeds[0],
                        what: "trapped and slow devices",
                    })
                })
                .transpose()?,
            trapped_devices: (completed > 0).then_some(self.trapped),
            slow_devices: (completed > 0).then_some(self.slow),
            stuck: self.stuck,
            stuck_seeds: self.stuck_seeds,
            logins: LoginSummary {
                attempted: self.logins.attempted,
                succeeded: self.logins.succeeded,
                recoveries_attempted: self.logins.recoveries_attempted,
                recoveries_succeeded: self.logins.recoveries_succeeded,
            },
            result_codes: self
                .codes
                .into_iter()
                .map(|(c, n)| (c.to_string(), n))
                .collect(),
            time_to_recover_ms: Quantiles::of(&self.ttr),
            orphan_sessions_peak: self.sessions.orphan_peak,
            orphan_sessions_end: self.sessions.orphan_end,
            live_sessions_peak: self.sessions.live_peak,
            sessions: self.sessions,
            faults: self.faults,
            messages: self.messages,
            availability_ppm,
            server_peak_requests_per_s: self.peak_requests,
            requests_by_primitive: self.by_primitive,
            time_to_99pct_sessions_ms: self.to_99pct.flatten(),
            messages_per_reentry,
            storm,
            violations: self.violations,
            stopped: self.stopped,
            stopped_seeds: self.stopped_seeds,
            witnesses: self.witnesses.unwrap_or_default(),
            digest,
        };
        Ok((report, series, self.ttr, load_series))
    }
}

/// The paired comparison of a variant with the baseline, added up seed by seed.
#[derive(Clone, Debug)]
struct PairAcc {
    same_crashes: bool,
    both: u64,
    only_a: u64,
    only_b: u64,
    exact: bool,
}

impl Default for PairAcc {
    fn default() -> Self {
        PairAcc {
            same_crashes: true,
            both: 0,
            only_a: 0,
            only_b: 0,
            exact: true,
        }
    }
}

impl PairAcc {
    /// The runs of one seed: `x` of the baseline, `y` of the variant.
    fn add(&mut self, x: &RunResult, y: &RunResult) {
        self.same_crashes &= !x.stopped() && !y.stopped() && x.faults.crashes == y.faults.crashes;
        if x.stopped() || y.stopped() {
            return;
        }
        let all_ids = |r: &RunResult| r.trapped_device_ids.len() as u64 == r.trapped_devices;
        self.exact &=
            (all_ids(x) && all_ids(y)) || x.trapped_devices == 0 || y.trapped_devices == 0;
        let common = x
            .trapped_device_ids
            .iter()
            .filter(|d| y.trapped_device_ids.binary_search(d).is_ok())
            .count() as u64;
        self.both += common;
        self.only_a += x.trapped_devices.saturating_sub(common);
        self.only_b += y.trapped_devices.saturating_sub(common);
    }
}

/// The comparison of two variants' reports, with the counts of [`PairAcc`].
fn compare(a: &VariantReport, b: &VariantReport, pair: &PairAcc) -> Comparison {
    let complete = |v: &VariantReport| v.stopped_seeds == 0;
    let comparable = complete(a) && complete(b);
    let liveness = |v: &VariantReport, f: fn(&VariantReport) -> Option<u64>| {
        if complete(v) {
            f(v)
        } else {
            None
        }
    };
    let quantile = |v: &VariantReport, f: fn(&Quantiles) -> u64| {
        (v.time_to_recover_ms.count > 0).then(|| f(&v.time_to_recover_ms))
    };
    Comparison {
        baseline: a.variant.clone(),
        variant: b.variant.clone(),
        same_crashes: comparable && pair.same_crashes,
        trapped_devices: Paired::maybe(
            liveness(a, |v| v.trapped_devices),
            liveness(b, |v| v.trapped_devices),
        ),
        slow_devices: Paired::maybe(
            liveness(a, |v| v.slow_devices),
            liveness(b, |v| v.slow_devices),
        ),
        trapped_in_both: if comparable { pair.both } else { 0 },
        trapped_only_baseline: if comparable { pair.only_a } else { 0 },
        trapped_only_variant: if comparable { pair.only_b } else { 0 },
        trapped_overlap_exact: pair.exact,
        orphan_sessions_peak: Paired::new(a.orphan_sessions_peak, b.orphan_sessions_peak),
        time_to_recover_p50_ms: Paired::maybe(quantile(a, |q| q.p50), quantile(b, |q| q.p50)),
        time_to_recover_p99_ms: Paired::maybe(quantile(a, |q| q.p99), quantile(b, |q| q.p99)),
        availability_ppm: Paired::new(a.availability_ppm, b.availability_ppm),
        logins_attempted: Paired::new(a.logins.attempted, b.logins.attempted),
        messages: Paired::new(a.messages, b.messages),
        events: Paired::new(a.events, b.events),
        server_peak_requests_per_s: Paired::new(
            a.server_peak_requests_per_s,
            b.server_peak_requests_per_s,
        ),
        time_to_99pct_sessions_ms: Paired::maybe(
            a.time_to_99pct_sessions_ms,
            b.time_to_99pct_sessions_ms,
        ),
        messages_per_reentry: PairedRatio::new(a.messages_per_reentry, b.messages_per_reentry),
    }
}

/// The report of a sweep, built as its results arrive in unit order, keeping only what the
/// report needs: sums, merged histograms, the largest peaks, the first seeds' lists. Its
/// memory does not grow with the number of seeds.
pub struct Aggregator {
    sweep: SweepId,
    variants: Vec<VariantAcc>,
    pairs: Vec<PairAcc>,
    /// The baseline's result of the current seed, for the paired comparisons.
    baseline: Option<RunResult>,
    next: u64,
}

impl Aggregator {
    /// An empty report of `sweep`.
    pub fn new(sweep: SweepId) -> Aggregator {
        let nv = sweep.variants.len();
        Aggregator {
            variants: (0..nv).map(|_| VariantAcc::default()).collect(),
            pairs: vec![PairAcc::default(); nv.saturating_sub(1)],
            baseline: None,
            next: 0,
            sweep,
        }
    }

    /// Add the result of the next unit (units come in order: 0, 1, 2, ...).
    ///
    /// # Errors
    ///
    /// [`MergeError::Overflow`] when a sum over the seeds does not fit in 64 bits (only
    /// records read from files, damaged or forged, can hold such numbers).
    pub fn push(&mut self, r: &RunResult) -> Result<(), MergeError> {
        let nv = self.sweep.variants.len() as u64;
        let v = (self.next % nv) as usize;
        debug_assert_eq!(
            self.sweep.unit(self.next),
            (r.variant.as_str(), r.seed),
            "invariant: units arrive in order"
        );
        self.next += 1;
        let name = self.sweep.variants[v].clone();
        self.variants[v].add(&self.sweep, &name, r)?;
        if v == 0 {
            self.baseline = Some(r.clone());
        } else if let Some(b) = &self.baseline {
            self.pairs[v - 1].add(b, r);
        }
        Ok(())
    }

    /// The report.
    ///
    /// # Errors
    ///
    /// As [`Aggregator::push`].
    pub fn finish(self) -> Result<Report, MergeError> {
        let mut runs = Vec::new();
        let mut series = Vec::new();
        let mut ttr = Vec::new();
        let mut load = Vec::new();
        for (acc, name) in self.variants.into_iter().zip(&self.sweep.variants) {
            let (r, s, h, l) = acc.report(&self.sweep, name)?;
            runs.push(r);
            series.push(s);
            ttr.push(h);
            load.push(l);
        }
        let comparison = self
            .pairs
            .iter()
            .enumerate()
            .map(|(i, p)| compare(&runs[0], &runs[i + 1], p))
            .collect();
        Ok(Report {
            sweep: self.sweep,
            runs,
            comparison,
            series,
            ttr,
            load,
        })
    }
}

/// Build the report of a sweep from its results in unit order ([`Aggregator`]).
///
/// # Errors
///
/// [`MergeError::Overflow`] when a sum over the seeds does not fit in 64 bits (only records
/// read from files, damaged or forged, can hold such numbers).
pub fn aggregate(sweep: SweepId, results: &[RunResult]) -> Result<Report, MergeError> {
    let mut a = Aggregator::new(sweep);
    for r in results {
        a.push(r)?;
    }
    a.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shards_partition_the_units() {
        let n = 5;
        for i in 0..23u64 {
            let owners: Vec<u64> = (0..n).filter(|&k| Shard { k, n }.owns(i)).collect();
            assert_eq!(owners.len(), 1);
        }
        assert_eq!("2/4".parse::<Shard>().unwrap(), Shard { k: 2, n: 4 });
        for bad in ["4/4", "1", "a/b", "0/0", "-1/3"] {
            assert!(
                bad.parse::<Shard>().unwrap_err().contains("expected K/N"),
                "{bad}"
            );
        }
    }

    #[test]
    fn seed_ranges() {
        assert_eq!(parse_seeds("1..5").unwrap(), [1, 5]);
        assert_eq!(parse_seeds("1..=5").unwrap(), [1, 6]);
        assert_eq!(
            parse_seeds("9223372036854775806..=9223372036854775807").unwrap(),
            [MAX_SEED - 1, MAX_SEED + 1]
        );
        for bad in [
            "5..5",
            "5..1",
            "1-5",
            "x..3",
            "-1..3",
            "1..=18446744073709551615",
            "1..=9223372036854775808",
            "1..9223372036854775809",
        ] {
            assert!(parse_seeds(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn units_are_seed_major() {
        let s = SweepId {
            config_hash: "x".into(),
            scenario_name: "default".into(),
            scenario: Scenario::default(),
            variants: vec!["a".into(), "b".into()],
            seeds: [10, 13],
            replay_args: String::new(),
        };
        assert_eq!(s.units(), 6);
        assert_eq!(s.unit(0), ("a", 10));
        assert_eq!(s.unit(1), ("b", 10));
        assert_eq!(s.unit(5), ("b", 12));
    }
}
