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
    /// A step sent a request into a full queue: the world's bounds are too small for it.
    #[error("the trap search for device dev{device} overflowed a device's request queue (the world's bound)")]
    Overflow {
        /// The device asked about.
        device: usize,
    },
}

/// Whether `action` is a protocol step for the trap test of `device`: anything but a crash, a
/// broken connection, or another device's user acting.
pub const fn is_protocol_step(action: &Action, device: u8) -> bool {
    match *action {
        Action::Crash(_) | Action::LoseConnection(_) => false,
        Action::User(d, _) => d == device,
        Action::Start(_)
        | Action::ServerReceives(_)
        | Action::ClientReceives(_)
        | Action::ClientReceivesPush(_)
        | Action::RetryTimer(_)
        | Action::KeepAliveTimer(_)
        | Action::Expire { .. } => true,
    }
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
            if next.step(cfg, a).overflow {
                return Err(TrapError::Overflow { device });
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checker::{check, Options};
    use crate::client::UserAction;
    use crate::config::{resolve_variant, variants_dir};
    use crate::props::Prop;
    use crate::trace::Trace;

    fn variant(name: &str) -> Config {
        resolve_variant(name, &variants_dir()).unwrap().1
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
}
