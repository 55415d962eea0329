//! The per-device deadlock test on one world: is a device that wants a session *trapped*?
//!
//! A device that wants a session is trapped in a world state when no sequence of *protocol
//! steps alone* leads to a state where it holds one. Protocol steps are every action of the
//! world ([`World::actions`]) except the faults and the choices of other people: a crash
//! ([`Action::Crash`]), a broken connection ([`Action::LoseConnection`]) and the actions of
//! another device's user ([`Action::User`] of a device other than the one in question). The
//! device's own user actions, message deliveries, timers, restarts after a crash that already
//! happened ([`Action::Start`]) and the server's Time-To-Live expiry ([`Action::Expire`]) are
//! protocol steps: the system may count on them to get the device back in, and on nothing
//! else. So a trap is a state the device cannot leave however the protocol is scheduled; a
//! device that is merely unlucky (every path back in is still open) is not trapped.
//!
//! This is the definition of `no_deadlock`, asked of one world rather than of a whole state
//! graph, so that a driver that does not explore (the simulator) can ask it of a state it
//! reached: [`trapped`] searches the states reachable by protocol steps, breadth first, in
//! canonical form ([`World::canonicalize`]) so that the search is finite, and bounded by a
//! number of states: hitting the bound is an error ([`TrapError::Limit`]), never a silent
//! "not trapped". The world's crash and connection-loss budgets play no part: those actions
//! are never taken.

use crate::config::Config;
use crate::world::{Action, World};
use rustc_hash::FxHashSet;
use std::collections::VecDeque;

/// Why [`trapped`] could not answer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TrapError {
    /// The search passed its bound on states.
    #[error("the trap search for device dev{device} passed its bound of {limit} states")]
    Limit {
        /// The device asked about.
        device: usize,
        /// The bound.
        limit: usize,
    },
    /// The world has no such device.
    #[error("no device dev{device}: the world has {devices} devices")]
    NoSuchDevice {
        /// The device asked about.
        device: usize,
        /// Devices in the world.
        devices: usize,
    },
    /// A step outgrew a device's queue: the world's bounds are too small for it.
    #[error("the trap search for device dev{device} outgrew the world's bounds: {what}")]
    Overflow {
        /// The device asked about.
        device: usize,
        /// The bound.
        what: crate::world::Overflow,
    },
}

/// Whether `action` is a protocol step for the trap test of `device`: anything but a crash, a
/// broken connection, or another device's user acting.
/// The same classification as the checker's `no_deadlock` ([`super::liveness::WayOut`]).
pub const fn is_protocol_step(action: &Action, device: u8) -> bool {
    super::liveness::WayOut::of(action).devices() & (1 << device) != 0
}

/// Whether `device` wants a session in `world` and no sequence of protocol steps
/// ([`is_protocol_step`]) leads to a state where it holds one. A device that does not want a
/// session, or holds one, is not trapped.
///
/// Searches at most `limit` distinct (canonical) states; past that it returns
/// [`TrapError::Limit`].
pub fn trapped(
    cfg: &Config,
    world: &World,
    device: usize,
    limit: usize,
) -> Result<bool, TrapError> {
    let devices = world.devices.len();
    if device >= devices || device > usize::from(u8::MAX) {
        return Err(TrapError::NoSuchDevice { device, devices });
    }
    if !world.wants_session(device) || world.holds_session(device) {
        return Ok(false);
    }
    let d = device as u8;
    let mut start = world.clone();
    start.canonicalize();
    let mut seen: FxHashSet<World> = FxHashSet::default();
    let mut queue: VecDeque<World> = VecDeque::new();
    seen.insert(start.clone());
    queue.push_back(start);
    let mut actions = Vec::new();
    while let Some(w) = queue.pop_front() {
        actions.clear();
        w.actions(cfg, &mut actions);
        for &a in actions.iter().filter(|a| is_protocol_step(a, d)) {
            let mut next = w.clone();
            if let Some(what) = next.step(cfg, a).overflow {
                return Err(TrapError::Overflow { device, what });
            }
            if next.holds_session(device) {
                return Ok(false);
            }
            next.canonicalize();
            if seen.contains(&next) {
                continue;
            }
            if seen.len() >= limit {
                return Err(TrapError::Limit { device, limit });
            }
            seen.insert(next.clone());
            queue.push_back(next);
        }
    }
    Ok(true)
}

/// [`trapped`] for every device of `world` at once, with one search where one suffices: the
/// states reachable by the protocol steps that are common to all devices (no user acts) are
/// searched once; a device seen holding a session there is not trapped, and a device never
/// seen holding one is trapped unless it is somewhere idle or holding (the only phases in which
/// its own user may act, which its own search allows): for those, its own search decides.
///
/// Each bound of `limit` states applies to each search.
pub fn trapped_all(cfg: &Config, world: &World, limit: usize) -> Result<Vec<bool>, TrapError> {
    let n = world.devices.len();
    if n > usize::from(u8::MAX) + 1 {
        return Err(TrapError::NoSuchDevice {
            device: n - 1,
            devices: n,
        });
    }
    // Devices still to be shown a way back in.
    let mut open: Vec<bool> = (0..n)
        .map(|d| world.wants_session(d) && !world.holds_session(d))
        .collect();
    let first_open = open.iter().position(|&o| o);
    let Some(first_open) = first_open else {
        return Ok(vec![false; n]);
    };
    let mut user_may_act = vec![false; n];
    let mark = |w: &World, open: &mut Vec<bool>, user_may_act: &mut Vec<bool>| {
        for d in 0..n {
            if w.holds_session(d) {
                open[d] = false;
            } else if !w.wants_session(d) {
                user_may_act[d] = true;
            }
        }
    };
    let mut start = world.clone();
    start.canonicalize();
    mark(&start, &mut open, &mut user_may_act);
    let mut seen: FxHashSet<World> = FxHashSet::default();
    let mut queue: VecDeque<World> = VecDeque::new();
    seen.insert(start.clone());
    queue.push_back(start);
    let mut actions = Vec::new();
    'search: while let Some(w) = queue.pop_front() {
        actions.clear();
        w.actions(cfg, &mut actions);
        for &a in actions.iter() {
            let common = match a {
                Action::User(..) => false,
                other => is_protocol_step(&other, 0),
            };
            if !common {
                continue;
            }
            let mut next = w.clone();
            if let Some(what) = next.step(cfg, a).overflow {
                return Err(TrapError::Overflow {
                    device: first_open,
                    what,
                });
            }
            next.canonicalize();
            if seen.contains(&next) {
                continue;
            }
            mark(&next, &mut open, &mut user_may_act);
            if !open.iter().any(|&o| o) {
                break 'search;
            }
            if seen.len() >= limit {
                return Err(TrapError::Limit {
                    device: first_open,
                    limit,
                });
            }
            seen.insert(next.clone());
            queue.push_back(next);
        }
    }
    drop(seen);
    (0..n)
        .map(|d| match (open[d], user_may_act[d]) {
            (false, _) => Ok(false),
            (true, false) => Ok(true),
            (true, true) => trapped(cfg, world, d, limit),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checker::{check, Options};
    use crate::client::UserAction;
    use crate::props::Prop;
    use crate::trace::Trace;
    use crate::variant::{resolve_variant, variants_dir};

    fn variant(name: &str) -> Config {
        resolve_variant(name, &variants_dir()).unwrap().1.cfg
    }

    /// The checker's `no_deadlock` counterexample of a variant.
    fn deadlock_trace(cfg: &Config) -> Trace {
        let o = check(cfg, "test", Options::default(), &mut |_| {}).unwrap();
        o.results
            .into_iter()
            .find(|r| r.prop == Prop::NoDeadlock)
            .and_then(|r| r.trace)
            .expect("the variant deadlocks")
    }

    const LIMIT: usize = 100_000;

    #[test]
    fn faults_and_other_users_are_not_protocol_steps() {
        assert!(!is_protocol_step(&Action::Crash(0), 0));
        assert!(!is_protocol_step(&Action::LoseConnection(0), 0));
        assert!(!is_protocol_step(&Action::User(1, UserAction::Login), 0));
        assert!(is_protocol_step(&Action::User(0, UserAction::Login), 0));
        assert!(is_protocol_step(&Action::Start(1), 0));
        assert!(is_protocol_step(&Action::Expire { user: 0, index: 0 }, 0));
        assert!(is_protocol_step(&Action::RetryTimer(1), 0));
    }

    /// Along the pre-CR counterexample, the device is not trapped until its crash, and trapped
    /// from the crash on: the Login-Request it sent before crashing is still on its way and
    /// will make a session it never learns of, whose Client-ID every later login collides with.
    #[test]
    fn the_pre_cr_counterexample_is_trapped_from_the_crash_on() {
        let cfg = variant("pre-cr");
        let t = deadlock_trace(&cfg);
        let d = usize::from(t.device.expect("a deadlock names its device"));
        let loop_start = t.loop_start.expect("a deadlock is a lasso");
        assert!(!trapped(&cfg, &t.initial, d, LIMIT).unwrap());
        let verdicts: Vec<bool> = t
            .steps
            .iter()
            .map(|s| trapped(&cfg, &s.state, d, LIMIT).unwrap())
            .collect();
        let first = verdicts
            .iter()
            .position(|&v| v)
            .expect("the trace reaches a trap");
        assert!(
            verdicts[first..].iter().all(|&v| v),
            "once trapped, always trapped: {verdicts:?}"
        );
        assert_eq!(
            t.steps[first].action,
            Action::Crash(d as u8),
            "{verdicts:?}"
        );
        assert!(first < loop_start, "the lasso's cycle is inside the trap");
    }

    /// The trap of pre-cr is an orphaned session holding the device's Client-ID; with expiry,
    /// a protocol step, the same world is no trap.
    #[test]
    fn expiry_is_a_protocol_step() {
        let cfg = variant("pre-cr");
        let t = deadlock_trace(&cfg);
        let d = usize::from(t.device.unwrap());
        let at_trap = &t.steps[t.loop_start.unwrap() - 1].state;
        assert!(trapped(&cfg, at_trap, d, LIMIT).unwrap());
        let mut expiring = cfg.clone();
        expiring.apply_set("server.ttl_expiry=true").unwrap();
        assert!(!trapped(&expiring, at_trap, d, LIMIT).unwrap());
        // Crashes left in the world's budget change nothing: they are not protocol steps.
        let mut more = at_trap.clone();
        more.crashes_left = 3;
        more.losses_left = 3;
        assert!(trapped(&cfg, &more, d, LIMIT).unwrap());
    }

    #[test]
    fn the_bound_is_an_error_naming_it_and_bad_devices_are_errors() {
        let cfg = variant("pre-cr");
        let t = deadlock_trace(&cfg);
        let d = usize::from(t.device.unwrap());
        let at_trap = &t.steps[t.loop_start.unwrap() - 1].state;
        let e = trapped(&cfg, at_trap, d, 1).unwrap_err();
        assert_eq!(
            e,
            TrapError::Limit {
                device: d,
                limit: 1
            }
        );
        assert!(e.to_string().contains("bound of 1 states"), "{e}");
        assert!(matches!(
            trapped(&cfg, at_trap, 9, LIMIT),
            Err(TrapError::NoSuchDevice { device: 9, .. })
        ));
    }

    #[test]
    fn a_device_that_wants_no_session_or_holds_one_is_not_trapped() {
        let cfg = variant("post-cr");
        let mut w = World::new(&cfg);
        assert!(!trapped(&cfg, &w, 0, LIMIT).unwrap(), "down, not trapped");
        w.devices[0].client.phase = crate::client::Phase::Idle;
        assert!(!trapped(&cfg, &w, 0, 1).unwrap(), "idle: wants nothing");
    }

    /// The search for all devices at once gives each device's own verdict, on every state of
    /// small worlds with two devices whose users may log out and in (so that a device's own
    /// user acts on the way back in).
    #[test]
    fn one_search_for_all_devices_agrees_with_one_per_device() {
        let mut checked = (0, 0);
        for (name, sets) in [
            (
                "pre-cr",
                &["env.devices_per_user=2", "env.user_logouts=true"][..],
            ),
            (
                "post-cr-expiry",
                &["env.devices_per_user=2", "env.user_logouts=true"][..],
            ),
            ("post-cr-two-crashes", &[][..]),
        ] {
            let mut cfg = variant(name);
            for s in sets {
                cfg.apply_set(s).unwrap();
            }
            let mut w0 = World::new(&cfg);
            w0.canonicalize();
            let mut seen: FxHashSet<World> = FxHashSet::default();
            let mut queue = VecDeque::from([w0.clone()]);
            seen.insert(w0);
            let mut actions = Vec::new();
            while let Some(w) = queue.pop_front() {
                let all = trapped_all(&cfg, &w, LIMIT).unwrap();
                for (d, &t) in all.iter().enumerate() {
                    assert_eq!(
                        t,
                        trapped(&cfg, &w, d, LIMIT).unwrap(),
                        "{name} dev{d} {w:?}"
                    );
                    checked.0 += 1;
                    checked.1 += usize::from(t);
                }
                actions.clear();
                w.actions(&cfg, &mut actions);
                for &a in &actions {
                    let mut x = w.clone();
                    x.step(&cfg, a);
                    x.canonicalize();
                    if seen.len() < 1500 && seen.insert(x.clone()) {
                        queue.push_back(x);
                    }
                }
            }
        }
        assert!(checked.1 > 0 && checked.1 < checked.0, "{checked:?}");
    }
}
