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
use super::result::{Faults, Logins, RunResult, Sample, Sessions};
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
    /// Per seed with devices without a session: counts, first ids, replay command.
    pub stuck: Vec<StuckSeed>,
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
    /// Properties violated.
    pub violations: Vec<ViolationSummary>,
    /// Runs stopped by a violation: (seed, property).
    pub stopped: Vec<(u64, String)>,
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
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
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

fn combine_digests(results: &[&RunResult]) -> String {
    if let [one] = results {
        return one.digest.clone();
    }
    let mut h = xxhash_rust::xxh3::Xxh3::new();
    for r in results {
        h.update(r.digest.as_bytes());
    }
    format!("{:016x}", h.digest())
}

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

fn variant_report(
    sweep: &SweepId,
    variant: &str,
    runs: &[&RunResult],
) -> Result<(VariantReport, Vec<Sample>, LogHistogram), MergeError> {
    let first = runs[0];
    let mut logins = Logins::default();
    let mut codes: BTreeMap<u16, u64> = BTreeMap::new();
    let mut ttr = LogHistogram::new();
    let mut sessions = Sessions::default();
    let mut faults = Faults::default();
    let (mut events, mut wall_ms, mut messages) = (0u64, 0u64, 0u64);
    let (mut trapped, mut slow, mut completed) = (0u64, 0u64, 0u64);
    let (mut device_ms, mut down_ms) = (0u128, 0u128);
    let mut stuck = Vec::new();
    let mut stopped = Vec::new();
    let mut violations: Vec<ViolationSummary> = Vec::new();
    let mut witnesses: Option<Vec<String>> = None;
    let mut series: Vec<Sample> = first
        .series
        .iter()
        .map(|s| Sample {
            t_ms: s.t_ms,
            ..Sample::default()
        })
        .collect();
    for r in runs {
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
        add(&mut events, r.events, "events")?;
        add(&mut wall_ms, r.wall_ms, "wall_ms")?;
        add(&mut messages, r.messages, "messages")?;
        let mut stuck_here = r.trapped_devices;
        add(&mut stuck_here, r.slow_devices, "trapped and slow devices")?;
        if !r.stopped() {
            completed += 1;
            add(&mut trapped, r.trapped_devices, "trapped_devices")?;
            add(&mut slow, r.slow_devices, "slow_devices")?;
        }
        let l = &r.logins;
        add(&mut logins.attempted, l.attempted, "logins.attempted")?;
        add(&mut logins.succeeded, l.succeeded, "logins.succeeded")?;
        add(
            &mut logins.recoveries_attempted,
            l.recoveries_attempted,
            "logins.recoveries_attempted",
        )?;
        add(
            &mut logins.recoveries_succeeded,
            l.recoveries_succeeded,
            "logins.recoveries_succeeded",
        )?;
        for (c, n) in &r.result_codes {
            add(codes.entry(*c).or_default(), *n, "result_codes")?;
        }
        ttr.checked_merge(&r.time_to_recover_ms)
            .ok_or_else(|| MergeError::Overflow {
                variant: variant.to_string(),
                seed: r.seed,
                what: "time_to_recover_ms",
            })?;
        let s = &r.sessions;
        add(&mut sessions.created, s.created, "sessions.created")?;
        add(&mut sessions.recovered, s.recovered, "sessions.recovered")?;
        add(
            &mut sessions.ended_logout,
            s.ended_logout,
            "sessions.ended_logout",
        )?;
        add(
            &mut sessions.ended_expired,
            s.ended_expired,
            "sessions.ended_expired",
        )?;
        add(
            &mut sessions.ended_replaced,
            s.ended_replaced,
            "sessions.ended_replaced",
        )?;
        sessions.live_peak = sessions.live_peak.max(s.live_peak);
        add(&mut sessions.live_end, s.live_end, "sessions.live_end")?;
        sessions.orphan_peak = sessions.orphan_peak.max(s.orphan_peak);
        add(
            &mut sessions.orphan_end,
            s.orphan_end,
            "sessions.orphan_end",
        )?;
        let f = &r.faults;
        add(&mut faults.crashes, f.crashes, "faults.crashes")?;
        add(
            &mut faults.lost_messages,
            f.lost_messages,
            "faults.lost_messages",
        )?;
        add(
            &mut faults.connection_losses,
            f.connection_losses,
            "faults.connection_losses",
        )?;
        add(
            &mut faults.answers_to_dead_connections,
            f.answers_to_dead_connections,
            "faults.answers_to_dead_connections",
        )?;
        // At most 2^32 devices x 2^64 ms per run and 2^20 runs: 2^116, no overflow.
        device_ms += u128::from(r.devices) * u128::from(r.end_ms);
        down_ms += u128::from(r.downtime_ms);
        if stuck_here > 0 {
            let first = r
                .trapped_device_ids
                .first()
                .or(r.slow_device_ids.first())
                .copied();
            stuck.push(StuckSeed {
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
        if let Some(p) = &r.stopped_by {
            stopped.push((r.seed, p.clone()));
        }
        for v in &r.violations {
            match violations.iter_mut().find(|x| x.property == v.property) {
                Some(x) => add(&mut x.count, v.count, "violations.count")?,
                None => violations.push(ViolationSummary {
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
        witnesses = Some(match witnesses {
            None => r.witnesses.clone(),
            Some(w) => w.into_iter().filter(|x| r.witnesses.contains(x)).collect(),
        });
        for (acc, s) in series.iter_mut().zip(&r.series) {
            add(&mut acc.live, s.live, "series.live")?;
            add(&mut acc.holding, s.holding, "series.holding")?;
            add(&mut acc.orphans, s.orphans, "series.orphans")?;
        }
    }
    let n = runs.len() as u64;
    for s in &mut series {
        s.live /= n;
        s.holding /= n;
        s.orphans /= n;
    }
    let availability_ppm = ppm(device_ms, down_ms).ok_or_else(|| MergeError::Overflow {
        variant: variant.to_string(),
        seed: first.seed,
        what: "availability (devices x end_ms)",
    })?;
    let wall_s = wall_ms as f64 / 1000.0;
    let report = VariantReport {
        seed: sweep.seeds[0],
        seeds: sweep.seeds,
        variant: variant.to_string(),
        config_hash: sweep.config_hash.clone(),
        devices: first.devices,
        users: first.users,
        sim_duration_s: first.sim_duration_ms as f64 / 1000.0,
        liveness_s: first.liveness_ms as f64 / 1000.0,
        events,
        wall_s,
        events_per_s: if wall_ms == 0 {
            0.0
        } else {
            (events as f64 / wall_s).round()
        },
        stuck_devices: (completed > 0)
            .then(|| trapped.checked_add(slow))
            .map(|sum| {
                sum.ok_or_else(|| MergeError::Overflow {
                    variant: variant.to_string(),
                    seed: first.seed,
                    what: "trapped and slow devices",
                })
            })
            .transpose()?,
        trapped_devices: (completed > 0).then_some(trapped),
        slow_devices: (completed > 0).then_some(slow),
        stuck,
        logins: LoginSummary {
            attempted: logins.attempted,
            succeeded: logins.succeeded,
            recoveries_attempted: logins.recoveries_attempted,
            recoveries_succeeded: logins.recoveries_succeeded,
        },
        result_codes: codes.into_iter().map(|(c, n)| (c.to_string(), n)).collect(),
        time_to_recover_ms: Quantiles::of(&ttr),
        orphan_sessions_peak: sessions.orphan_peak,
        orphan_sessions_end: sessions.orphan_end,
        live_sessions_peak: sessions.live_peak,
        sessions,
        faults,
        messages,
        availability_ppm,
        violations,
        stopped,
        witnesses: witnesses.unwrap_or_default(),
        digest: combine_digests(runs),
    };
    Ok((report, series, ttr))
}

/// The paired comparison of two variants. Called once [`variant_report`] has summed the same
/// figures of the same runs without overflow, so its sums cannot overflow either.
fn compare(sweep: &SweepId, base: usize, other: usize, results: &[RunResult]) -> Comparison {
    const SUMMED: &str = "invariant: variant_report summed these figures without overflow";
    let nv = sweep.variants.len();
    let pick = |v: usize| -> Vec<&RunResult> { results.iter().skip(v).step_by(nv).collect() };
    let (a, b) = (pick(base), pick(other));
    let sum = |rs: &[&RunResult], f: &dyn Fn(&RunResult) -> u64| -> u64 {
        rs.iter()
            .try_fold(0u64, |acc, r| acc.checked_add(f(r)))
            .expect(SUMMED)
    };
    let complete = |rs: &[&RunResult]| rs.iter().all(|r| !r.stopped());
    let comparable = complete(&a) && complete(&b);
    let (mut both, mut only_a, mut only_b, mut exact) = (0u64, 0u64, 0u64, true);
    for (x, y) in a.iter().zip(&b).filter(|_| comparable) {
        let all_ids = |r: &RunResult| r.trapped_device_ids.len() as u64 == r.trapped_devices;
        exact &= (all_ids(x) && all_ids(y)) || x.trapped_devices == 0 || y.trapped_devices == 0;
        let common = x
            .trapped_device_ids
            .iter()
            .filter(|d| y.trapped_device_ids.binary_search(d).is_ok())
            .count() as u64;
        both += common;
        only_a += x.trapped_devices.saturating_sub(common);
        only_b += y.trapped_devices.saturating_sub(common);
    }
    let merged = |rs: &[&RunResult]| {
        let mut h = LogHistogram::new();
        for r in rs {
            h.checked_merge(&r.time_to_recover_ms).expect(SUMMED);
        }
        h
    };
    let (ha, hb) = (merged(&a), merged(&b));
    let avail = |rs: &[&RunResult]| {
        let dm: u128 = rs
            .iter()
            .map(|r| u128::from(r.devices) * u128::from(r.end_ms))
            .sum();
        let down: u128 = rs.iter().map(|r| u128::from(r.downtime_ms)).sum();
        ppm(dm, down).expect(SUMMED)
    };
    let peak = |rs: &[&RunResult]| rs.iter().map(|r| r.sessions.orphan_peak).max().unwrap_or(0);
    // Trapped and slow devices exist only for runs that reached the end of the liveness phase.
    let liveness =
        |rs: &[&RunResult], f: &dyn Fn(&RunResult) -> u64| complete(rs).then(|| sum(rs, f));
    let quantile =
        |h: &LogHistogram, permille| (h.count() > 0).then(|| h.quantile_permille(permille));
    Comparison {
        baseline: sweep.variants[base].clone(),
        variant: sweep.variants[other].clone(),
        same_crashes: complete(&a)
            && complete(&b)
            && a.iter()
                .zip(&b)
                .all(|(x, y)| x.faults.crashes == y.faults.crashes),
        trapped_devices: Paired::maybe(
            liveness(&a, &|r| r.trapped_devices),
            liveness(&b, &|r| r.trapped_devices),
        ),
        slow_devices: Paired::maybe(
            liveness(&a, &|r| r.slow_devices),
            liveness(&b, &|r| r.slow_devices),
        ),
        trapped_in_both: both,
        trapped_only_baseline: only_a,
        trapped_only_variant: only_b,
        trapped_overlap_exact: exact,
        orphan_sessions_peak: Paired::new(peak(&a), peak(&b)),
        time_to_recover_p50_ms: Paired::maybe(quantile(&ha, 500), quantile(&hb, 500)),
        time_to_recover_p99_ms: Paired::maybe(quantile(&ha, 990), quantile(&hb, 990)),
        availability_ppm: Paired::new(avail(&a), avail(&b)),
        logins_attempted: Paired::new(
            sum(&a, &|r| r.logins.attempted),
            sum(&b, &|r| r.logins.attempted),
        ),
        messages: Paired::new(sum(&a, &|r| r.messages), sum(&b, &|r| r.messages)),
        events: Paired::new(sum(&a, &|r| r.events), sum(&b, &|r| r.events)),
    }
}

/// Build the report of a sweep from its results in unit order.
///
/// # Errors
///
/// [`MergeError::Overflow`] when a sum over the seeds does not fit in 64 bits (only records
/// read from files, damaged or forged, can hold such numbers).
pub fn aggregate(sweep: SweepId, results: &[RunResult]) -> Result<Report, MergeError> {
    let nv = sweep.variants.len();
    let mut runs = Vec::new();
    let mut series = Vec::new();
    let mut ttr = Vec::new();
    for (v, name) in sweep.variants.iter().enumerate() {
        let rs: Vec<&RunResult> = results.iter().skip(v).step_by(nv).collect();
        let (r, s, h) = variant_report(&sweep, name, &rs)?;
        runs.push(r);
        series.push(s);
        ttr.push(h);
    }
    let comparison = (1..nv).map(|v| compare(&sweep, 0, v, results)).collect();
    Ok(Report {
        sweep,
        runs,
        comparison,
        series,
        ttr,
    })
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
