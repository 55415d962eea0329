//! Per-second figures of a run: sessions at every whole second of simulated time, and the
//! requests the server received in every second, by primitive.
//!
//! Why a grid of whole seconds: a run is cut into partitions of users that are simulated one
//! after another or side by side ([`super::partition`]), so no partition sees the others'
//! sessions at the instant of one of its own events. What the partitions can add up exactly is
//! a figure taken at times fixed in advance: each records its count at every whole second (the
//! state after all its events before that millisecond), and the run's figure at that second is
//! the sum. Peaks (`live_peak`, `orphan_peak`, requests per second) are therefore the largest
//! of these sums, the same whatever the partitions and threads.

use imps_model::msg::Primitive;

/// The kinds of message the server receives, as counted per second: the requests a client
/// sends, the `Status` a client may answer a Disconnect with, and anything else.
pub const REQ_KINDS: usize = 11;

/// The wire names of [`REQ_KINDS`], in index order.
pub const REQ_NAMES: [&str; REQ_KINDS] = [
    "Login-Request",
    "Logout-Request",
    "KeepAlive-Request",
    "Service-Request",
    "ClientCapability-Request",
    "JoinGroup-Request",
    "LeaveGroup-Request",
    "UpdatePresence-Request",
    "Polling-Request",
    "Status",
    "other",
];

/// The index in [`REQ_NAMES`] of a message the server receives.
pub const fn req_kind(p: &Primitive) -> usize {
    match p {
        Primitive::LoginRequest(_) => 0,
        Primitive::LogoutRequest => 1,
        Primitive::KeepAliveRequest { .. } => 2,
        Primitive::ServiceRequest => 3,
        Primitive::ClientCapabilityRequest => 4,
        Primitive::JoinGroupRequest { .. } => 5,
        Primitive::LeaveGroupRequest { .. } => 6,
        Primitive::UpdatePresenceRequest { .. } => 7,
        Primitive::PollingRequest => 8,
        Primitive::Status { .. } => 9,
        // Answers and Disconnects come from the server; a client never sends them.
        Primitive::LoginResponse(_)
        | Primitive::KeepAliveResponse { .. }
        | Primitive::ServiceResponse { .. }
        | Primitive::ClientCapabilityResponse { .. }
        | Primitive::JoinGroupResponse { .. }
        | Primitive::LeaveGroupResponse { .. }
        | Primitive::Disconnect { .. } => 10,
    }
}

/// The per-second figures of a partition, or (added up) of a run. Index `s` of the session
/// counts is the state after every event before `s * 1000` ms (for the last point, the end of
/// the run); index `s` of `load` and `back` counts what happened in `[s * 1000, s * 1000 +
/// 1000)`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Grid {
    /// Active sessions at the server.
    pub live: Vec<u32>,
    /// Devices holding a session.
    pub holding: Vec<u32>,
    /// Orphaned sessions.
    pub orphans: Vec<u32>,
    /// Devices the outage hit that got back in, in each second (empty without an outage).
    pub back: Vec<u32>,
    /// Requests received in each second, by kind.
    pub load: Vec<[u32; REQ_KINDS]>,
}

impl Grid {
    /// Whole seconds from 0 to `end_ms`.
    pub const fn points(end_ms: u64) -> usize {
        (end_ms / 1000) as usize + 1
    }

    /// An empty grid for a run that ends at `end_ms`; `outage`: count the devices back in.
    pub fn new(end_ms: u64, outage: bool) -> Grid {
        let n = Grid::points(end_ms);
        Grid {
            live: vec![0; n],
            holding: vec![0; n],
            orphans: vec![0; n],
            back: if outage { vec![0; n] } else { Vec::new() },
            load: vec![[0; REQ_KINDS]; n],
        }
    }

    /// Bytes held, for memory accounting.
    pub fn bytes(&self) -> usize {
        4 * (self.live.len() + self.holding.len() + self.orphans.len() + self.back.len())
            + std::mem::size_of::<[u32; REQ_KINDS]>() * self.load.len()
    }

    /// Add another partition's grid (of the same run).
    pub fn add(&mut self, o: &Grid) {
        fn sum(a: &mut Vec<u32>, b: &[u32]) {
            if a.len() < b.len() {
                a.resize(b.len(), 0);
            }
            for (x, y) in a.iter_mut().zip(b) {
                *x = x.saturating_add(*y);
            }
        }
        sum(&mut self.live, &o.live);
        sum(&mut self.holding, &o.holding);
        sum(&mut self.orphans, &o.orphans);
        sum(&mut self.back, &o.back);
        if self.load.len() < o.load.len() {
            self.load.resize(o.load.len(), [0; REQ_KINDS]);
        }
        for (x, y) in self.load.iter_mut().zip(&o.load) {
            for k in 0..REQ_KINDS {
                x[k] = x[k].saturating_add(y[k]);
            }
        }
    }

    /// The largest value of a series and the first second where it is reached.
    pub fn peak(series: &[u32]) -> (u64, usize) {
        series
            .iter()
            .enumerate()
            .fold((0u64, 0usize), |(best, at), (i, v)| {
                if u64::from(*v) > best {
                    (u64::from(*v), i)
                } else {
                    (best, at)
                }
            })
    }

    /// Requests per second, all kinds together.
    pub fn total_load(&self) -> Vec<u32> {
        self.load
            .iter()
            .map(|k| k.iter().fold(0u32, |a, b| a.saturating_add(*b)))
            .collect()
    }

    /// The first whole second at or after `from_ms` by which at least `want` devices were
    /// back in (counting the backs before that second), as ms after `from_ms`; `None` when
    /// it never happens.
    pub fn time_to_back(&self, from_ms: u64, want: u64) -> Option<u64> {
        let mut seen = 0u64;
        for (s, b) in self.back.iter().enumerate() {
            let t = s as u64 * 1000;
            if t >= from_ms && seen >= want {
                return Some(t - from_ms);
            }
            seen += u64::from(*b);
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn partitions_add_up_and_peaks_are_of_the_sums() {
        let mut a = Grid::new(3000, true);
        let mut b = Grid::new(3000, true);
        a.live = vec![5, 9, 2, 0];
        b.live = vec![5, 0, 9, 1];
        a.load[1][0] = 7;
        b.load[1][2] = 3;
        a.back = vec![0, 1, 1, 0];
        b.back = vec![0, 0, 2, 0];
        let mut g = Grid::new(3000, true);
        g.add(&a);
        g.add(&b);
        assert_eq!(g.live, vec![10, 9, 11, 1]);
        assert_eq!(
            Grid::peak(&g.live),
            (11, 2),
            "not 9 + 9: the peaks fall in other seconds"
        );
        assert_eq!(g.total_load(), vec![0, 10, 0, 0]);
        // 4 devices hit at 1000 ms: 3 back by second 3 (1 in second 1, 3 in second 2).
        assert_eq!(g.time_to_back(1000, 3), Some(2000));
        assert_eq!(g.time_to_back(1000, 1), Some(1000));
        assert_eq!(g.time_to_back(1000, 5), None);
    }

    #[test]
    fn every_primitive_has_a_kind() {
        use imps_model::codes::ResultCode;
        assert_eq!(req_kind(&Primitive::LogoutRequest), 1);
        assert_eq!(
            REQ_NAMES[req_kind(&Primitive::PollingRequest)],
            "Polling-Request"
        );
        assert_eq!(
            REQ_NAMES[req_kind(&Primitive::Status {
                result: ResultCode::Success
            })],
            "Status"
        );
    }
}
