//! Which settings of the knobs the CR leaves open are consistent with a log
//! (`imps validate --infer`).
//!
//! From each named variant, a search changes one knob of [`OPEN_KNOBS`] at a time,
//! keeping a change when it takes the log further (the first departure comes later) and
//! stopping at the settings under which the log conforms, up to [`InferOptions::max_changes`]
//! changes and [`InferOptions::max_runs`] validations. For each consistent setting, each
//! open knob is then tried at every other value: the knob is **pinned** when no other value
//! conforms (by the line where the last other value departs), **open** otherwise.

use super::explain::{knob_value, with_knob, OPEN_KNOBS};
use super::obs::{describe_obs, ObKind, Prepared};
use super::{validate, Options, ValidateError, Validation};
use crate::config::knob_values;
use std::collections::{BTreeMap, VecDeque};

/// Bounds of the inference.
#[derive(Clone, Copy, Debug)]
pub struct InferOptions {
    /// States per user, as for a validation.
    pub max_states: usize,
    /// Knob changes from a named variant.
    pub max_changes: usize,
    /// Validations in all.
    pub max_runs: usize,
}

impl Default for InferOptions {
    fn default() -> Self {
        InferOptions {
            max_states: 100_000,
            max_changes: 4,
            max_runs: 4000,
        }
    }
}

/// What the log says of one open knob, in one consistent setting.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum KnobStatus {
    /// No other value conforms.
    Pinned {
        /// The knob.
        knob: &'static str,
        /// Its value.
        value: String,
        /// `file:line` where the last other value departs.
        at: String,
        /// That line.
        observed: String,
        /// The value that held out longest, and what it allowed there.
        rival: String,
        /// What the rival allowed at that line.
        rival_allowed: Vec<String>,
    },
    /// Other values conform too.
    Open {
        /// The knob.
        knob: &'static str,
        /// Every value that conforms, this setting's first.
        values: Vec<String>,
    },
}

/// A setting of the knobs under which the log conforms.
#[derive(Clone, Debug)]
pub struct Setting {
    /// The named variant it starts from.
    pub base: String,
    /// The knob changes from it.
    pub changes: Changes,
    /// What the log says of each open knob.
    pub knobs: Vec<KnobStatus>,
    /// Other consistent settings that pin the same knobs to the same values (they differ
    /// only in knobs the log leaves open), by name.
    pub also: Vec<String>,
}

impl Setting {
    /// The pinned knobs and their values.
    pub fn pins(&self) -> Vec<(&'static str, &str)> {
        self.knobs
            .iter()
            .filter_map(|k| match k {
                KnobStatus::Pinned { knob, value, .. } => Some((*knob, value.as_str())),
                KnobStatus::Open { .. } => None,
            })
            .collect()
    }

    /// How many knobs the log pins.
    pub fn pinned(&self) -> usize {
        self.knobs
            .iter()
            .filter(|k| matches!(k, KnobStatus::Pinned { .. }))
            .count()
    }

    /// `base` or `base + k=v + ...`.
    pub fn name(&self) -> String {
        let mut s = self.base.clone();
        for (k, v) in &self.changes {
            s.push_str(&format!(" + {k}={v}"));
        }
        s
    }
}

/// What the inference found.
#[derive(Clone, Debug)]
pub struct InferReport {
    /// The consistent settings, most specific first (most knobs pinned, then fewest changes
    /// from a named variant).
    pub settings: Vec<Setting>,
    /// Each named variant and where the log departs from it (`None`: it conforms).
    pub bases: Vec<(String, Option<String>)>,
    /// Validations run.
    pub runs: usize,
    /// The search stopped at [`InferOptions::max_runs`] before trying every change.
    pub truncated: bool,
}

/// Knob changes from a named variant, in the order they were made.
pub type Changes = Vec<(&'static str, &'static str)>;

struct Runner<'a> {
    p: &'a Prepared,
    opts: InferOptions,
    runs: usize,
    cache: BTreeMap<String, Option<usize>>,
}

fn signature(v: &Validation) -> String {
    knob_values(&v.cfg)
        .into_iter()
        .filter(|(k, _)| k.starts_with("server.") || k.starts_with("client."))
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(",")
}

impl Runner<'_> {
    /// The departure line's index, or `None` when the log conforms.
    fn check(&mut self, v: &Validation) -> Result<Option<usize>, ValidateError> {
        let sig = signature(v);
        if let Some(r) = self.cache.get(&sig) {
            return Ok(*r);
        }
        self.runs += 1;
        let opts = Options {
            max_states: self.opts.max_states,
            allowed: false,
            explain: false,
        };
        let r = validate(self.p, v, opts)?.departure.map(|d| d.line);
        self.cache.insert(sig, r);
        Ok(r)
    }
}

fn changed(v: &Validation, knob: &str, value: &str) -> Option<Validation> {
    let cfg = with_knob(&v.cfg, knob, value)?;
    Some(Validation { cfg, ..v.clone() })
}

/// Infer the settings consistent with `p`, starting from `bases` (named variants read for
/// validation).
///
/// # Errors
///
/// When a validation passes a bound.
pub fn infer(
    p: &Prepared,
    bases: &[(String, Validation)],
    opts: InferOptions,
) -> Result<InferReport, ValidateError> {
    let mut r = Runner {
        p,
        opts,
        runs: 0,
        cache: BTreeMap::new(),
    };
    let mut truncated = false;
    let mut found: Vec<(String, Changes, Validation)> = Vec::new();
    let mut base_verdicts = Vec::new();
    let mut visited: BTreeMap<String, ()> = BTreeMap::new();
    for (name, base) in bases {
        let first = r.check(base)?;
        base_verdicts.push((name.clone(), first.map(|l| p.locate(l))));
        let mut queue: VecDeque<(Changes, Validation, Option<usize>)> = VecDeque::new();
        queue.push_back((Vec::new(), base.clone(), first));
        while let Some((changes, v, dep)) = queue.pop_front() {
            let Some(line) = dep else {
                found.push((name.clone(), changes, v));
                continue;
            };
            if changes.len() >= opts.max_changes {
                continue;
            }
            for &(knob, values) in OPEN_KNOBS {
                if changes.iter().any(|(k, _)| *k == knob) {
                    continue;
                }
                let current = knob_value(&v.cfg, knob);
                for &value in values {
                    if value == current {
                        continue;
                    }
                    let Some(child) = changed(&v, knob, value) else {
                        continue;
                    };
                    let sig = signature(&child);
                    if visited.insert(sig, ()).is_some() {
                        continue;
                    }
                    if r.runs >= opts.max_runs {
                        truncated = true;
                        continue;
                    }
                    let d = r.check(&child)?;
                    if d.is_none_or(|l| l > line) {
                        let mut c = changes.clone();
                        c.push((knob, value));
                        queue.push_back((c, child, d));
                    }
                }
            }
        }
    }
    // One entry per distinct setting, the first way it was reached.
    let mut seen: BTreeMap<String, ()> = BTreeMap::new();
    let mut settings = Vec::new();
    for (base, changes, v) in found {
        if seen.insert(signature(&v), ()).is_some() {
            continue;
        }
        let mut knobs = Vec::new();
        for &(knob, values) in OPEN_KNOBS {
            let current = knob_value(&v.cfg, knob);
            let mut conform = vec![current.clone()];
            let mut last: Option<(usize, &'static str)> = None;
            for &value in values {
                if value == current {
                    continue;
                }
                let Some(alt) = changed(&v, knob, value) else {
                    continue;
                };
                match r.check(&alt)? {
                    None => conform.push(value.to_string()),
                    Some(l) => {
                        if last.is_none_or(|(b, _)| l > b) {
                            last = Some((l, value));
                        }
                    }
                }
            }
            if conform.len() > 1 {
                knobs.push(KnobStatus::Open {
                    knob,
                    values: conform,
                });
                continue;
            }
            let Some((line, rival)) = last else {
                continue;
            };
            let alt = changed(&v, knob, rival).expect("invariant: the rival was built before");
            let report = validate(
                p,
                &alt,
                Options {
                    max_states: opts.max_states,
                    allowed: true,
                    explain: false,
                },
            )?;
            // What the rival allows that way first (the line's device, the line's direction).
            let observed = observed_at(p, line);
            let way = observed.split(':').next().unwrap_or_default().to_string();
            let mut rival_allowed = report.departure.map(|d| d.allowed).unwrap_or_default();
            rival_allowed.sort_by_key(|a| !a.starts_with(&way));
            knobs.push(KnobStatus::Pinned {
                knob,
                value: current,
                at: p.locate(line),
                observed,
                rival: rival.to_string(),
                rival_allowed,
            });
        }
        settings.push(Setting {
            base,
            changes,
            knobs,
            also: Vec::new(),
        });
    }
    settings.sort_by(|a, b| {
        b.pinned()
            .cmp(&a.pinned())
            .then(a.changes.len().cmp(&b.changes.len()))
    });
    // One entry per set of pins: the log cannot tell the others apart.
    let mut merged: Vec<Setting> = Vec::new();
    for s in settings {
        match merged.iter_mut().find(|m| m.pins() == s.pins()) {
            Some(m) => m.also.push(s.name()),
            None => merged.push(s),
        }
    }
    let settings = merged;
    Ok(InferReport {
        settings,
        bases: base_verdicts,
        runs: r.runs,
        truncated,
    })
}

/// Line `idx` of the log in one line of text.
pub fn observed_at(p: &Prepared, idx: usize) -> String {
    for u in &p.users {
        if let Some(ob) = u.obs.iter().find(|o| o.line == idx) {
            let dev = &u.devices[ob.device as usize];
            return match &ob.kind {
                ObKind::Msg(o) => describe_obs(u, dev, o),
                ObKind::Event(e) => format!("{dev}: event {}", e.as_str()),
            };
        }
    }
    String::new()
}
