//! The event queue: a monotone radix heap over 16-byte events ordered by `(time, sequence)`.
//!
//! Why a radix heap: a discrete-event simulator only ever pops the earliest event and only ever
//! pushes events at or after the current time, so the queue may be *monotone*. A radix heap
//! exploits that: an event lives in the bucket named by the highest hexadecimal digit in which
//! its time differs from the current time (and that digit), and moves only towards lower
//! buckets, at most once per digit. Pushes are a `Vec::push`; no comparison-based sift. The
//! events of the current millisecond are sorted by sequence number when the time gets there.
//!
//! Why `(time, sequence)` keys: two events at the same millisecond pop in the order they were
//! pushed, whatever the queue does inside. The key packs both into one `u64` (time in the high
//! [`TIME_BITS`] bits, the sequence number in the low [`SEQ_BITS`] bits), so keys are unique and
//! the pop order is the total order of keys: no implementation detail can change it (a test
//! checks the queue against a binary heap on the keys).

/// Bits of the key that hold the time (ms): 2^30 ms is about 298 hours.
pub const TIME_BITS: u32 = 30;
/// Bits of the key that hold the sequence number: 2^34 pushes per run.
pub const SEQ_BITS: u32 = 64 - TIME_BITS;
/// The largest time an event may carry, ms.
pub const MAX_TIME_MS: u64 = (1 << TIME_BITS) - 1;
/// The largest sequence number.
pub const MAX_SEQ: u64 = (1 << SEQ_BITS) - 1;
/// Bits of [`Event::tag`] that hold the event's payload; the kind takes the 4 bits above.
pub const AUX_BITS: u32 = 28;
/// Mask of the payload bits.
pub const AUX_MASK: u32 = (1 << AUX_BITS) - 1;

/// What an event does. Stored in the top 4 bits of [`Event::tag`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum Kind {
    /// The device powers on (first start, or restart after a crash).
    Start = 0,
    /// The device's crash process fires.
    Crash = 1,
    /// The device's user acts (join, leave, presence).
    UserAct = 2,
    /// The device's armed timer fires; payload: timer generation and kind.
    ClientTimer = 3,
    /// A request reaches the server; payload: message slot.
    ToServer = 4,
    /// An answer reaches the device; payload: message slot.
    ToClient = 5,
    /// A server-initiated Disconnect reaches the device; payload: message slot.
    Push = 6,
    /// The device notices that its connection broke (a lost request or answer); payload:
    /// the connection epoch.
    ConnLost = 7,
    /// A session's Time-To-Live timer at the server; payload: the Session-ID less the
    /// partition's first Session-ID.
    Ttl = 8,
    /// The correlated outage hits the device (`scenario.outage_*`); for a server restart, the
    /// event is on the user's first device and hits the user's server shard.
    Outage = 9,
}

impl Kind {
    const ALL: [Kind; 10] = [
        Kind::Start,
        Kind::Crash,
        Kind::UserAct,
        Kind::ClientTimer,
        Kind::ToServer,
        Kind::ToClient,
        Kind::Push,
        Kind::ConnLost,
        Kind::Ttl,
        Kind::Outage,
    ];

    /// The kind's name, for traces and errors.
    pub const fn name(self) -> &'static str {
        match self {
            Kind::Start => "start",
            Kind::Crash => "crash",
            Kind::UserAct => "user-action",
            Kind::ClientTimer => "client-timer",
            Kind::ToServer => "to-server",
            Kind::ToClient => "to-client",
            Kind::Push => "push",
            Kind::ConnLost => "connection-lost",
            Kind::Ttl => "ttl",
            Kind::Outage => "outage",
        }
    }
}

/// One scheduled event: 16 bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Event {
    /// `time_ms << SEQ_BITS | seq`.
    pub key: u64,
    /// The device the event concerns.
    pub device: u32,
    /// `kind << AUX_BITS | payload`.
    pub tag: u32,
}

impl Event {
    /// Build an event; `time_ms` and `seq` must be within [`MAX_TIME_MS`] and [`MAX_SEQ`].
    pub const fn new(time_ms: u64, seq: u64, device: u32, kind: Kind, aux: u32) -> Event {
        debug_assert!(time_ms <= MAX_TIME_MS && seq <= MAX_SEQ);
        Event {
            key: time_ms << SEQ_BITS | seq,
            device,
            tag: (kind as u32) << AUX_BITS | (aux & AUX_MASK),
        }
    }

    /// The event's time, ms.
    pub const fn time_ms(&self) -> u64 {
        self.key >> SEQ_BITS
    }

    /// The event's sequence number.
    pub const fn seq(&self) -> u64 {
        self.key & MAX_SEQ
    }

    /// The event's kind.
    pub fn kind(&self) -> Kind {
        let k = (self.tag >> AUX_BITS) as usize;
        *Kind::ALL
            .get(k)
            .expect("invariant: an event's kind is one of Kind::ALL")
    }

    /// The event's payload.
    pub const fn aux(&self) -> u32 {
        self.tag & AUX_MASK
    }

    /// The 16 bytes that the run digest hashes.
    pub fn to_bytes(&self) -> [u8; 16] {
        let mut b = [0u8; 16];
        b[..8].copy_from_slice(&self.key.to_le_bytes());
        b[8..12].copy_from_slice(&self.device.to_le_bytes());
        b[12..].copy_from_slice(&self.tag.to_le_bytes());
        b
    }
}

/// Buckets whose capacity exceeds this many events are freed once emptied, so that a burst
/// (every device's first event at time 0) does not pin its memory for the whole run.
const KEEP_CAPACITY: usize = 4096;
/// Bits of time per radix digit: buckets are 16 per level.
const DIGIT_BITS: u32 = 4;
/// Buckets per level.
const FAN: usize = 1 << DIGIT_BITS;
/// Levels: enough digits for [`TIME_BITS`].
const LEVELS: usize = TIME_BITS.div_ceil(DIGIT_BITS) as usize;

/// A monotone radix heap of [`Event`]s, with 16-way buckets.
///
/// The radix part works on the time alone. An event whose time differs from the current time
/// first in hexadecimal digit `p`, where its digit is `d`, sits in bucket `16 p + d`: every event
/// of a lower bucket is earlier, and an event moves only to lower buckets, at most once per
/// level (eight levels of four bits). Level 0 holds exact milliseconds. The events of the current
/// millisecond are kept apart, sorted by key (hence by sequence number) when the time moves
/// there; events pushed for the current millisecond afterwards carry larger sequence numbers and
/// are appended, so they stay sorted and are read front to back.
#[derive(Debug)]
pub struct RadixQueue {
    /// The current time: the time of the last event popped.
    now_ms: u64,
    len: usize,
    /// Bit `b` set: bucket `b` is non-empty.
    nonempty: u128,
    buckets: Vec<Vec<Event>>,
    /// The events of the current millisecond, in key order.
    current: Vec<Event>,
    /// Read position in `current`.
    head: usize,
}

impl Default for RadixQueue {
    fn default() -> Self {
        Self::new()
    }
}

/// The bucket of time `t` when the current time is `now` (`t > now`).
#[inline]
fn bucket_of(t: u64, now: u64) -> usize {
    let x = t ^ now;
    debug_assert!(x != 0);
    let p = (63 - x.leading_zeros()) / DIGIT_BITS;
    let digit = (t >> (p * DIGIT_BITS)) as usize & (FAN - 1);
    p as usize * FAN + digit
}

impl RadixQueue {
    /// An empty queue.
    pub fn new() -> RadixQueue {
        RadixQueue {
            now_ms: 0,
            len: 0,
            nonempty: 0,
            buckets: (0..LEVELS * FAN).map(|_| Vec::new()).collect(),
            current: Vec::new(),
            head: 0,
        }
    }

    /// Events in the queue.
    pub const fn len(&self) -> usize {
        self.len
    }

    /// Whether the queue is empty.
    pub const fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Bytes held by the buckets (capacity, not length), for memory accounting.
    pub fn capacity_bytes(&self) -> usize {
        let events: usize =
            self.buckets.iter().map(Vec::capacity).sum::<usize>() + self.current.capacity();
        events * std::mem::size_of::<Event>()
    }

    /// Add an event. Its time must not be before the last event popped (the queue is
    /// monotone), and its sequence number must exceed every sequence number pushed before.
    #[inline]
    pub fn push(&mut self, ev: Event) {
        let t = ev.time_ms();
        assert!(
            t >= self.now_ms,
            "invariant: events are never scheduled in the past ({t} < {})",
            self.now_ms
        );
        if t == self.now_ms {
            debug_assert!(
                self.current.last().is_none_or(|l| l.key < ev.key),
                "invariant: sequence numbers increase"
            );
            self.current.push(ev);
        } else {
            let b = bucket_of(t, self.now_ms);
            self.buckets[b].push(ev);
            self.nonempty |= 1 << b;
        }
        self.len += 1;
    }

    /// Remove and return the event with the smallest key.
    #[inline]
    pub fn pop(&mut self) -> Option<Event> {
        if self.len == 0 {
            return None;
        }
        if self.head == self.current.len() {
            self.advance();
        }
        let ev = self.current[self.head];
        self.head += 1;
        self.len -= 1;
        Some(ev)
    }

    /// Remove and return the smallest event if it has the same time as the last one popped.
    /// Unlike a peek, this never moves the queue's current time, so events can still be
    /// pushed for any time from now on.
    #[inline]
    pub fn pop_same_time(&mut self) -> Option<Event> {
        let ev = *self.current.get(self.head)?;
        self.head += 1;
        self.len -= 1;
        Some(ev)
    }

    /// The current millisecond is used up: move the time to the earliest pending event and
    /// gather the events of that millisecond, in key order.
    #[cold]
    #[inline(never)]
    fn advance(&mut self) {
        self.current.clear();
        self.head = 0;
        let b = self.nonempty.trailing_zeros() as usize;
        debug_assert!(
            b < self.buckets.len(),
            "invariant: a non-empty queue has a non-empty bucket"
        );
        self.nonempty &= !(1 << b);
        let mut v = std::mem::take(&mut self.buckets[b]);
        if b < FAN {
            // Level 0: the bucket is one exact millisecond.
            self.now_ms = (self.now_ms & !(FAN as u64 - 1)) | b as u64;
            std::mem::swap(&mut self.current, &mut v);
        } else {
            let now = v
                .iter()
                .map(Event::time_ms)
                .min()
                .expect("invariant: a non-empty bucket has a minimum");
            self.now_ms = now;
            for ev in v.drain(..) {
                let t = ev.time_ms();
                if t == now {
                    self.current.push(ev);
                } else {
                    let j = bucket_of(t, now);
                    self.buckets[j].push(ev);
                    self.nonempty |= 1 << j;
                }
            }
        }
        if v.capacity() <= KEEP_CAPACITY {
            self.buckets[b] = v;
        }
        self.current.sort_unstable_by_key(|e| e.key);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn xorshift(x: &mut u64) -> u64 {
        *x ^= *x << 13;
        *x ^= *x >> 7;
        *x ^= *x << 17;
        *x
    }

    #[test]
    fn pops_in_time_then_sequence_order() {
        let mut q = RadixQueue::new();
        let mut seq = 0;
        let mut x = 0x1234_5678_u64;
        let mut now = 0;
        let mut popped = Vec::new();
        for _ in 0..2000 {
            for _ in 0..(xorshift(&mut x) % 3) {
                let t = now + xorshift(&mut x) % 50;
                q.push(Event::new(t, seq, seq as u32, Kind::Start, 0));
                seq += 1;
            }
            if let Some(e) = q.pop() {
                assert!(e.time_ms() >= now);
                now = e.time_ms();
                popped.push(e.key);
            }
        }
        while let Some(e) = q.pop() {
            popped.push(e.key);
        }
        assert_eq!(popped.len() as u64, seq);
        assert!(
            popped.windows(2).all(|w| w[0] < w[1]),
            "keys pop in increasing order"
        );
    }

    #[test]
    fn pops_exactly_like_a_binary_heap_on_keys() {
        use std::cmp::Reverse;
        use std::collections::BinaryHeap;
        let mut q = RadixQueue::new();
        let mut reference = BinaryHeap::new();
        let mut x = 0xDEAD_BEEF_u64;
        let (mut seq, mut now, mut popped) = (0u64, 0u64, 0u64);
        for step in 0..200_000u64 {
            if now > MAX_TIME_MS / 2 {
                break;
            }
            let r = xorshift(&mut x);
            if r % 20 < 11 || reference.is_empty() {
                // Delays from 0 ms to hours, so that every level of the heap is used.
                let delay = match (r >> 8) % 16 {
                    0..=4 => r >> 60,
                    5..=9 => (r >> 40) % 300,
                    10..=14 => (r >> 30) % 200_000,
                    _ => (r >> 20) % 20_000_000,
                };
                let e = Event::new(now + delay, seq, step as u32, Kind::ToServer, 0);
                seq += 1;
                q.push(e);
                reference.push(Reverse(e.key));
            } else {
                let e = if r % 7 == 0 {
                    q.pop_same_time().or_else(|| q.pop())
                } else {
                    q.pop()
                }
                .unwrap();
                assert_eq!(Some(Reverse(e.key)), reference.pop(), "step {step}");
                now = e.time_ms();
                popped += 1;
            }
            assert_eq!(q.len(), reference.len());
        }
        assert!(popped > 50_000, "{popped}");
        while let Some(Reverse(k)) = reference.pop() {
            assert_eq!(q.pop().map(|e| e.key), Some(k));
        }
        assert!(q.pop().is_none());
    }

    #[test]
    fn same_time_events_pop_in_push_order() {
        let mut q = RadixQueue::new();
        for s in 0..100u64 {
            q.push(Event::new(7, s, (99 - s) as u32, Kind::ToServer, s as u32));
        }
        let order: Vec<u64> = std::iter::from_fn(|| q.pop()).map(|e| e.seq()).collect();
        assert_eq!(order, (0..100).collect::<Vec<_>>());
    }

    #[test]
    fn pop_same_time_takes_only_the_current_millisecond() {
        let mut q = RadixQueue::new();
        for (s, t) in [5u64, 5, 9, 5, 7].iter().enumerate() {
            q.push(Event::new(*t, s as u64, 0, Kind::Start, 0));
        }
        let first = q.pop().unwrap();
        assert_eq!((first.time_ms(), first.seq()), (5, 0));
        assert_eq!(q.pop_same_time().map(|e| e.seq()), Some(1));
        assert_eq!(q.pop_same_time().map(|e| e.seq()), Some(3));
        assert_eq!(q.pop_same_time(), None);
        q.push(Event::new(6, 5, 0, Kind::Start, 0)); // still allowed: 6 > 5
        assert_eq!(q.pop().map(|e| e.time_ms()), Some(6));
        assert_eq!(q.pop().map(|e| e.time_ms()), Some(7));
    }

    #[test]
    fn event_fields_round_trip() {
        let e = Event::new(MAX_TIME_MS, MAX_SEQ, u32::MAX, Kind::Ttl, AUX_MASK);
        assert_eq!(e.time_ms(), MAX_TIME_MS);
        assert_eq!(e.seq(), MAX_SEQ);
        assert_eq!(e.kind(), Kind::Ttl);
        assert_eq!(e.aux(), AUX_MASK);
        assert_eq!(std::mem::size_of::<Event>(), 16);
    }
}
