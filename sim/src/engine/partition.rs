//! A run cut into partitions of users, simulated on several threads, and added up into one
//! result that does not depend on the number of threads.
//!
//! Why it can be cut: users are independent in this protocol. The server is sharded by user
//! ([`imps_model::server::UserServer`]), every device belongs to one user, every random stream
//! is keyed by the device (or the user), and nothing the CR asks of the server couples two
//! users except the SAP-wide session limit (`server.max_sessions_total`). So partition `k` holds
//! the users `k * partition_users .. (k + 1) * partition_users` and their devices, with its own
//! event queue, message slab and Session-ID range ([`Part`]), and is simulated from start to end
//! on its own ([`Sim`]), one partition after another on each thread: a partition's tables fit
//! in the caches, and only `threads` partitions are in memory at once.
//!
//! Why the result does not depend on the threads: the partitions are a function of the users
//! (`scenario.partition_users`), never of the threads, and everything is added up in a way that
//! does not depend on the order in which partitions finish: counts are summed, histograms
//! merged, per-second figures summed second by second ([`Grid`]), the first violation is the
//! earliest by (time, partition, event), and the digest is the xxh3-64 of the partitions'
//! digests in partition order (a run of one partition keeps that partition's digest).
//!
//! A run with `server.max_sessions_total` set couples every user (a login of one may be
//! refused with 609 because of the others' sessions): it runs as one partition, on one thread
//! ([`coupling`] says why). A run stopped by a safety violation ends, in every partition, at
//! the earliest violation's millisecond: when one partition stops, the others are run again up
//! to that time, so that the stopped run's figures are those of one instant.

use super::grid::{Grid, REQ_KINDS, REQ_NAMES};
use super::hist::LogHistogram;
use super::result::{
    Load, PrimitiveLoad, RunResult, Sample, Storm, ViolationRecord, MAX_STUCK_IDS,
};
use super::sim::{is_invariant, Part, PartOutput, Progress, RunOutput, RunSpec, Sim, SimError};
use imps_model::config::Config;
use imps_model::props::{Kind as PropKind, Prop, PropSet};
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::mpsc;
use std::time::Duration;

/// Why a variant's runs cannot be cut into partitions; `None` when they can.
pub fn coupling(cfg: &Config) -> Option<String> {
    let max = cfg.server.max_sessions_total;
    (max > 0).then(|| {
        format!(
            "server.max_sessions_total = {max} couples every user's sessions (a login is refused with 609 \
             because of other users' sessions), so its runs are one partition, on one thread"
        )
    })
}

/// The partitions of a run of `devices` devices with `devices_per_user` devices per user.
pub fn partitions(
    devices: u32,
    devices_per_user: u32,
    partition_users: u32,
    cfg: &Config,
) -> Vec<Part> {
    let users = u64::from(devices.div_ceil(devices_per_user));
    let per = if coupling(cfg).is_some() {
        users
    } else {
        u64::from(partition_users).clamp(1, users.max(1))
    };
    let count = users.div_ceil(per).max(1);
    // Each partition hands out Session-IDs from its own range, so that an ID names one session
    // of the run (validation logs of many devices need that); one partition keeps 0..
    let span = (u64::from(u32::MAX) / count) as u32;
    (0..count)
        .map(|k| {
            let first = k * per * u64::from(devices_per_user);
            let last = ((k + 1) * per * u64::from(devices_per_user)).min(u64::from(devices));
            Part {
                index: k as u32,
                first_device: first as u32,
                devices: (last - first) as u32,
                session_base: (k * u64::from(span)) as u32,
                session_span: span,
            }
        })
        .collect()
}

/// Where a property was first violated: (time, partition, event in the partition, device).
type FirstAt = (u64, u32, u64, u32);

/// Everything the partitions' outputs add up to, merged as they arrive in any order.
#[derive(Default)]
struct Acc {
    parts: usize,
    events: u64,
    digests: Vec<u64>,
    end_ms: u64,
    logins: super::result::Logins,
    result_codes: Vec<u64>,
    ttr: LogHistogram,
    sessions: super::result::Sessions,
    faults: super::result::Faults,
    messages: u64,
    trapped: u64,
    slow: u64,
    /// Per partition, its trapped and slow ids (capped), put in order at the end.
    ids: BTreeMap<u32, (Vec<u32>, Vec<u32>)>,
    downtime_ms: u64,
    series: Vec<Sample>,
    grid: Grid,
    /// Per property: count, and the first occurrence as (time, partition, event, device).
    violations: Vec<(u64, Option<FirstAt>)>,
    witnesses: PropSet,
    /// The earliest stop: (time, partition, property).
    stop: Option<(u64, u32, Prop)>,
    storm: Option<(u64, u64, u64, LogHistogram)>,
    trace: Vec<super::sim::TraceEntry>,
    log: Vec<super::vlog::LogEntry>,
}

impl Acc {
    fn new(parts: usize) -> Acc {
        Acc {
            parts,
            digests: vec![0; parts],
            result_codes: vec![0; 1000],
            ttr: LogHistogram::new(),
            violations: vec![(0, None); Prop::ALL.len()],
            ..Acc::default()
        }
    }

    fn add(&mut self, o: PartOutput) {
        let k = o.part.index;
        self.events += o.events;
        self.digests[k as usize] = o.digest;
        self.end_ms = self.end_ms.max(o.end_ms);
        self.logins.add(&o.logins);
        for (a, b) in self.result_codes.iter_mut().zip(&o.result_codes) {
            *a += b;
        }
        self.ttr
            .checked_merge(&o.ttr)
            .expect("invariant: a run's histogram counts fit in 64 bits");
        let (s, t) = (&mut self.sessions, &o.sessions);
        s.created += t.created;
        s.recovered += t.recovered;
        s.ended_logout += t.ended_logout;
        s.ended_expired += t.ended_expired;
        s.ended_replaced += t.ended_replaced;
        s.ended_restart += t.ended_restart;
        s.live_end += t.live_end;
        s.orphan_end += t.orphan_end;
        let (f, g) = (&mut self.faults, &o.faults);
        f.crashes += g.crashes;
        f.lost_messages += g.lost_messages;
        f.connection_losses += g.connection_losses;
        f.answers_to_dead_connections += g.answers_to_dead_connections;
        f.outage_crashes += g.outage_crashes;
        f.outage_connection_losses += g.outage_connection_losses;
        self.messages += o.messages;
        self.trapped += o.trapped.0;
        self.slow += o.slow.0;
        if !o.trapped.1.is_empty() || !o.slow.1.is_empty() {
            self.ids.insert(k, (o.trapped.1, o.slow.1));
        }
        self.downtime_ms += o.downtime_ms;
        if self.series.is_empty() {
            self.series = o.series;
        } else {
            for (a, b) in self.series.iter_mut().zip(&o.series) {
                debug_assert_eq!(
                    a.t_ms, b.t_ms,
                    "invariant: partitions sample at the same times"
                );
                a.live += b.live;
                a.holding += b.holding;
                a.orphans += b.orphans;
            }
        }
        self.grid.add(&o.grid);
        for (p, (count, first, t, dev)) in o.violations.iter().enumerate() {
            if *count == 0 {
                continue;
            }
            let v = &mut self.violations[p];
            v.0 += count;
            let here = (*t, k, *first, *dev);
            if v.1.is_none_or(|x| (here.0, here.1) < (x.0, x.1)) {
                v.1 = Some(here);
            }
        }
        self.witnesses = PropSet(self.witnesses.0 | o.witnesses.0);
        if let Some((p, t)) = o.stop {
            if self.stop.is_none_or(|(t0, k0, _)| (t, k) < (t0, k0)) {
                self.stop = Some((t, k, p));
            }
        }
        if let Some((hit, back, msgs, h)) = o.storm {
            let acc = self
                .storm
                .get_or_insert_with(|| (0, 0, 0, LogHistogram::new()));
            acc.0 += hit;
            acc.1 += back;
            acc.2 += msgs;
            acc.3
                .checked_merge(&h)
                .expect("invariant: a run's histogram counts fit in 64 bits");
        }
        self.trace.extend(o.trace);
        self.log.extend(o.log);
    }
}

/// Run the partitions on `threads` threads; each partition stops after `halt_ms` (or, when
/// `follow_stops`, after the earliest stop seen so far, since a stop makes the others run
/// again anyway). Returns the merged outputs, or the lowest partition's error.
fn run_all(
    spec: &RunSpec<'_>,
    parts: &[Part],
    threads: usize,
    halt_ms: Option<u64>,
    progress: &mut dyn FnMut(Progress),
) -> Result<Acc, SimError> {
    let end_ms = {
        let cfg = spec.cfg;
        spec.scenario.duration.ms() + spec.scenario.liveness_ms(cfg)
    };
    let next = AtomicUsize::new(0);
    let earliest_stop = AtomicU64::new(halt_ms.unwrap_or(u64::MAX));
    let done_ms = AtomicU64::new(0);
    let events = AtomicU64::new(0);
    let mut acc = Acc::new(parts.len());
    let mut errors: BTreeMap<u32, SimError> = BTreeMap::new();
    std::thread::scope(|scope| {
        let (tx, rx) = mpsc::channel::<(u32, Result<PartOutput, SimError>)>();
        for _ in 0..threads {
            let tx = tx.clone();
            let (next, earliest_stop, done_ms, events) = (&next, &earliest_stop, &done_ms, &events);
            scope.spawn(move || loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                let Some(&part) = parts.get(i) else { break };
                let halt = match earliest_stop.load(Ordering::Relaxed) {
                    u64::MAX => None,
                    t => Some(t),
                };
                let (mut last_ms, mut last_events) = (0u64, 0u64);
                let mut tick = |p: Progress| {
                    done_ms.fetch_add(p.now_ms - last_ms, Ordering::Relaxed);
                    events.fetch_add(p.events - last_events, Ordering::Relaxed);
                    (last_ms, last_events) = (p.now_ms, p.events);
                };
                let out = Sim::new(spec, part).run(halt, &mut tick);
                if let Ok(o) = &out {
                    done_ms.fetch_add(end_ms.saturating_sub(last_ms), Ordering::Relaxed);
                    events.fetch_add(o.events - last_events, Ordering::Relaxed);
                    if let Some((_, t)) = o.stop {
                        earliest_stop.fetch_min(t, Ordering::Relaxed);
                    }
                }
                if tx.send((part.index, out)).is_err() {
                    break;
                }
            });
        }
        drop(tx);
        let n = parts.len() as u64;
        loop {
            match rx.recv_timeout(Duration::from_millis(200)) {
                Ok((_, Ok(o))) => acc.add(o),
                Ok((k, Err(e))) => {
                    errors.insert(k, e);
                }
                Err(mpsc::RecvTimeoutError::Timeout) => {}
                Err(mpsc::RecvTimeoutError::Disconnected) => break,
            }
            progress(Progress {
                now_ms: done_ms.load(Ordering::Relaxed) / n,
                end_ms,
                events: events.load(Ordering::Relaxed),
            });
        }
    });
    // A stop makes every partition run again to its time, where errors may not happen.
    if let (Some(e), None) = (errors.into_values().next(), acc.stop) {
        return Err(e);
    }
    Ok(acc)
}

/// Run one simulation: its partitions on `spec.threads` threads, added up into one result.
pub fn run(spec: &RunSpec<'_>, progress: &mut dyn FnMut(Progress)) -> Result<RunOutput, SimError> {
    let sc = spec.scenario;
    let parts = partitions(
        sc.devices,
        sc.devices_per_user,
        sc.partition_users,
        spec.cfg,
    );
    let threads = spec.threads.clamp(1, parts.len());
    let mut acc = run_all(spec, &parts, threads, None, progress)?;
    if let Some((t, _, _)) = acc.stop {
        // Every partition ends at the earliest stop's millisecond.
        acc = run_all(spec, &parts, threads, Some(t), progress)?;
        assert_eq!(
            acc.stop.map(|s| s.0),
            Some(t),
            "invariant: run again to the earliest stop, the partitions stop there"
        );
    }
    Ok(finish(spec, &parts, threads, acc))
}

/// The busiest second of each kind in each interval between two points of `series`.
fn load_series(grid: &Grid, series: &[Sample]) -> BTreeMap<String, Vec<u64>> {
    let mut per_kind = vec![vec![0u64; series.len()]; REQ_KINDS];
    let mut from = 0usize;
    for (i, s) in series.iter().enumerate() {
        let to = ((s.t_ms / 1000) as usize + 1).min(grid.load.len());
        for second in grid.load.get(from..to).unwrap_or(&[]) {
            for k in 0..REQ_KINDS {
                per_kind[k][i] = per_kind[k][i].max(u64::from(second[k]));
            }
        }
        from = from.max(to);
    }
    per_kind
        .into_iter()
        .enumerate()
        .filter(|(_, v)| v.iter().any(|x| *x > 0))
        .map(|(k, v)| (REQ_NAMES[k].to_string(), v))
        .collect()
}

fn finish(spec: &RunSpec<'_>, parts: &[Part], threads: usize, acc: Acc) -> RunOutput {
    let sc = spec.scenario;
    let cfg = spec.cfg;
    let expected = |p: Prop| spec.expected.contains(p);
    let violations = Prop::ALL
        .iter()
        .filter(|p| p.kind() == PropKind::Safety)
        .filter_map(|&p| {
            let (count, first) = acc.violations[p as usize];
            let (t, _, ev, dev) = first?;
            (count > 0).then(|| ViolationRecord {
                property: p.name().to_string(),
                invariant: is_invariant(p),
                expected: expected(p),
                count,
                first_event: ev,
                first_time_ms: t,
                first_device: dev,
            })
        })
        .collect();
    let mut trapped_ids = Vec::new();
    let mut slow_ids = Vec::new();
    for (t, s) in acc.ids.values() {
        trapped_ids.extend(t.iter().take(MAX_STUCK_IDS - trapped_ids.len()));
        slow_ids.extend(s.iter().take(MAX_STUCK_IDS - slow_ids.len()));
    }
    let mut sessions = acc.sessions;
    sessions.live_peak = Grid::peak(&acc.grid.live).0;
    sessions.orphan_peak = Grid::peak(&acc.grid.orphans).0;
    let total = acc.grid.total_load();
    let (peak, peak_at) = Grid::peak(&total);
    let by_primitive = (0..REQ_KINDS)
        .filter_map(|k| {
            let col: Vec<u32> = acc.grid.load.iter().map(|s| s[k]).collect();
            let sum: u64 = col.iter().map(|x| u64::from(*x)).sum();
            (sum > 0).then(|| {
                (
                    REQ_NAMES[k].to_string(),
                    PrimitiveLoad {
                        total: sum,
                        peak_per_s: Grid::peak(&col).0,
                    },
                )
            })
        })
        .collect();
    let load = Load {
        peak_requests_per_s: peak,
        peak_at_ms: peak_at as u64 * 1000,
        by_primitive,
        series: load_series(&acc.grid, &acc.series),
    };
    let storm = acc.storm.map(|(hit, back, msgs, h)| {
        let at = sc.outage_at.ms();
        let want = (hit * 99).div_ceil(100);
        Storm {
            kind: sc.outage_kind.name().to_string(),
            at_ms: at,
            devices_hit: hit,
            devices_back: back,
            time_to_99pct_sessions_ms: if hit == 0 {
                None
            } else {
                acc.grid.time_to_back(at, want)
            },
            messages_to_reentry: msgs,
            time_to_reentry_ms: h,
        }
    });
    let digest = match acc.digests.as_slice() {
        [one] => *one,
        many => {
            let mut h = xxhash_rust::xxh3::Xxh3::new();
            for d in many {
                h.update(&d.to_le_bytes());
            }
            h.digest()
        }
    };
    let result_codes = acc
        .result_codes
        .iter()
        .enumerate()
        .filter(|(_, c)| **c > 0)
        .map(|(code, c)| (code as u16, *c))
        .collect();
    let stop = acc.stop;
    let liveness_ms = sc.liveness_ms(cfg);
    let mut trace = acc.trace;
    let mut log = acc.log;
    // In event order within a partition; across partitions, by time (a stable sort keeps the
    // partitions' order within a millisecond).
    trace.sort_by_key(|e| e.time_ms);
    log.sort_by_key(|e| e.time_ms);
    let result = RunResult {
        variant: spec.variant.to_string(),
        seed: spec.seed,
        devices: sc.devices,
        users: sc.devices.div_ceil(sc.devices_per_user),
        sim_duration_ms: sc.duration.ms(),
        liveness_ms,
        end_ms: acc.end_ms,
        events: acc.events,
        wall_ms: 0,
        digest: format!("{digest:016x}"),
        logins: acc.logins,
        result_codes,
        time_to_recover_ms: acc.ttr,
        sessions,
        faults: acc.faults,
        messages: acc.messages,
        trapped_devices: acc.trapped,
        trapped_device_ids: trapped_ids,
        slow_devices: acc.slow,
        slow_device_ids: slow_ids,
        downtime_ms: acc.downtime_ms,
        series: acc.series,
        load,
        storm,
        partitions: parts.len() as u32,
        violations,
        stopped_by: stop.map(|(_, _, p)| p.name().to_string()),
        witnesses: acc.witnesses.iter().map(|p| p.name().to_string()).collect(),
    };
    debug_assert_eq!(acc.parts, parts.len());
    RunOutput {
        threads,
        result,
        trace,
        log,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn partitions_cover_the_devices_in_whole_users_and_ids_do_not_overlap() {
        let cfg = Config::default();
        let parts = partitions(10_001, 2, 1000, &cfg);
        assert_eq!(parts.len(), 6, "5,001 users in partitions of 1,000");
        let mut next = 0;
        for (k, p) in parts.iter().enumerate() {
            assert_eq!(p.index as usize, k);
            assert_eq!(p.first_device, next);
            assert_eq!(p.first_device % 2, 0);
            next += p.devices;
            assert_eq!(
                u64::from(p.session_base) + u64::from(p.session_span),
                u64::from(
                    parts
                        .get(k + 1)
                        .map_or(p.session_base + p.session_span, |q| q.session_base)
                )
            );
        }
        assert_eq!(next, 10_001);
        let one = partitions(100, 2, 8192, &cfg);
        assert_eq!(
            (one.len(), one[0].session_base),
            (1, 0),
            "one partition: IDs from 0"
        );
    }

    #[test]
    fn a_sap_wide_session_limit_makes_one_partition() {
        let mut cfg = Config::default();
        cfg.apply_set("server.max_sessions_total=100").unwrap();
        assert!(coupling(&cfg)
            .unwrap()
            .contains("one partition, on one thread"));
        assert_eq!(partitions(100_000, 2, 1000, &cfg).len(), 1);
    }
}
