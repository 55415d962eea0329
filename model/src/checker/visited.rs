//! The set of visited states: an open-addressing hash table of state numbers, each slot
//! carrying a 32-bit fingerprint of its state's hash next to the number.
//!
//! The fingerprint is the top 32 bits of the hash, and its leading bits the home slot; the
//! hash's low [`SEGMENT_BITS`] bits choose one of the table's segments. So
//! - a probe rejects other states without reading them: the states it meets near a home
//!   share the fingerprint's leading log2(segment capacity) bits, and the rest tell them
//!   apart, so a look-up reads the state array once per hit and about once in
//!   2^(32 - log2 segment capacity) other states met (one in 800 on 1 x 5 x 1; taking the
//!   segment from the fingerprint as well left one in 13);
//! - growing a segment re-homes its entries from their fingerprints alone, in one
//!   sequential pass, without reading the state array;
//! - the segments grow one at a time, each when it is 7/8 full, so a growth holds the old
//!   and the new copy of one segment only, not of the whole table: the table's growth no
//!   longer sets the exploration's peak memory (on 1 x 4 x 1 it did, by half the table);
//! - a segment grows by a quarter, not by doubling (its home slot is the fingerprint's bits
//!   scaled to its capacity, which need not be a power of two), so the table is always
//!   between 70 % and 87.5 % full. Doubling at 4/5 left it anywhere from 40 % full, and
//!   where the exploration ended just after the segments doubled (1 x 4 x 1, 2 x 3 x 1)
//!   its slots took 19-20 bytes per state instead of 9-11. Ordered hashing (below) keeps
//!   the look-ups short at that load.
//!
//! The explorer prefetches a look-up's home slot ([`Visited::prefetch`]) and then the state
//! it will most likely compare against ([`Visited::candidate`]) well before the look-up, so
//! that the look-up finds both in cache.

/// log2 of the number of segments.
pub const SEGMENT_BITS: u32 = 6;

/// Cache lines of slots prefetched past the place of a state that is likely new.
const RUN_LINES: usize = 4;

/// The capacity of a segment of a new table.
const FIRST_SLOTS: usize = 64;

/// One segment: a linear-probing table of its own, kept in fingerprint order (ordered
/// hashing): a look-up for a state that is not there stops at the first larger fingerprint,
/// not at the next empty slot, so it reads about as many slots as one that finds its state
/// (2.3 at 72 % full, 4.5 at 87.5 %, where plain linear probing reads 6.9 and 32.5). Runs
/// do not wrap around: the slots past the last home are an overflow area, lengthened when a
/// run reaches its end.
/// Slot value 0 is empty; otherwise the high half is the fingerprint and the low half the
/// state number plus one.
#[derive(Debug)]
struct Segment {
    slots: Vec<u64>,
    /// The home slots (the rest of `slots` is overflow).
    homes: usize,
    len: usize,
}

/// The visited set.
#[derive(Debug)]
pub struct Visited {
    segments: Vec<Segment>,
    len: usize,
}

/// The outcome of [`Visited::find`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Probe {
    /// The state is there, with this number.
    Found(u32),
    /// The state is not there; this is the place where it goes (segment in the high half,
    /// slot in the low half), for [`Visited::insert_at`].
    Vacant(usize),
}

impl Segment {
    fn new(homes: usize) -> Segment {
        Segment {
            slots: vec![0; homes],
            homes,
            len: 0,
        }
    }

    /// The home slot: the fingerprint read as a fraction of 1 and scaled to the home slots,
    /// so that the homes keep the fingerprints' order.
    fn home(&self, fingerprint: u32) -> usize {
        ((u64::from(fingerprint) * self.homes as u64) >> 32) as usize
    }

    /// Put `v` at slot `i`, shifting the run from `i` up by one (into the next empty slot,
    /// lengthening the overflow by one when there is none).
    fn place(&mut self, i: usize, v: u64) {
        let end = match self.slots[i..].iter().position(|&x| x == 0) {
            Some(k) => i + k,
            None => self.lengthen(),
        };
        self.slots.copy_within(i..end, i + 1);
        self.slots[i] = v;
    }

    /// Add one empty slot to the overflow, and return it. Exactly one: a doubling capacity
    /// would double the segment.
    fn lengthen(&mut self) -> usize {
        self.slots.reserve_exact(1);
        self.slots.push(0);
        self.slots.len() - 1
    }

    /// Grow the home slots by a quarter (rounded up to a whole cache line of slots). The
    /// entries are in fingerprint order, so they are re-homed in one sequential pass, each
    /// at its new home or just after the entry before it.
    fn grow(&mut self) {
        let homes = (self.homes + self.homes / 4).next_multiple_of(8);
        assert!(
            homes <= u32::MAX as usize,
            "invariant: fewer than 2^32 slots a segment"
        );
        let old = std::mem::replace(&mut self.slots, vec![0; homes]);
        self.homes = homes;
        let mut next = 0;
        for v in old.into_iter().filter(|&v| v != 0) {
            let i = self.home((v >> 32) as u32).max(next);
            if i == self.slots.len() {
                self.lengthen();
            }
            self.slots[i] = v;
            next = i + 1;
        }
    }
}

impl Visited {
    /// An empty set with room for a few thousand states.
    pub fn new() -> Visited {
        Visited {
            segments: (0..1 << SEGMENT_BITS)
                .map(|_| Segment::new(FIRST_SLOTS))
                .collect(),
            len: 0,
        }
    }

    /// The number of states in the set.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether the set is empty.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The slots of the table, over all segments.
    pub fn capacity(&self) -> usize {
        self.segments.iter().map(|s| s.slots.len()).sum()
    }

    fn segment(hash: u64) -> usize {
        (hash & ((1 << SEGMENT_BITS) - 1)) as usize
    }

    /// Start loading the home slot of `hash` into the cache.
    pub fn prefetch(&self, hash: u64) {
        let fp = (hash >> 32) as u32;
        let seg = &self.segments[Self::segment(hash)];
        prefetch_index::prefetch_index(&seg.slots, seg.home(fp));
    }

    /// The first state whose fingerprint matches `hash` along its probe sequence, if any: the
    /// state a [`Visited::find`] will most likely compare against. Where there is none the
    /// state is most likely new, and its insertion will shift the run after its place up to
    /// the next empty slot, a few cache lines on at this load: those lines are prefetched.
    pub fn candidate(&self, hash: u64) -> Option<u32> {
        match self.find(hash, |_| true) {
            Probe::Found(n) => Some(n),
            Probe::Vacant(slot) => {
                let (seg, i) = Self::place_of(slot);
                let seg = &self.segments[seg];
                for line in 1..=RUN_LINES {
                    prefetch_index::prefetch_index(
                        &seg.slots,
                        (i + 8 * line).min(seg.slots.len() - 1),
                    );
                }
                None
            }
        }
    }

    /// Look for the state with this hash; `eq(n)` tells whether state `n` is the one sought.
    pub fn find(&self, hash: u64, mut eq: impl FnMut(u32) -> bool) -> Probe {
        let fp = (hash >> 32) as u32;
        let s = Self::segment(hash);
        let seg = &self.segments[s];
        let mut i = seg.home(fp);
        loop {
            // Past the overflow's end reads as empty.
            let v = seg.slots.get(i).copied().unwrap_or(0);
            let at = (v >> 32) as u32;
            if v == 0 || at > fp {
                return Probe::Vacant(s << 32 | i);
            }
            if at == fp && eq(v as u32 - 1) {
                return Probe::Found(v as u32 - 1);
            }
            i += 1;
        }
    }

    /// The segment and the slot of a place that [`Visited::find`] returned as vacant.
    fn place_of(slot: usize) -> (usize, usize) {
        (slot >> 32, slot & 0xffff_ffff)
    }

    /// Put state `n` with this hash in the place that [`Visited::find`] returned as vacant
    /// (with no insertion in between), shifting the states after it in its run.
    pub fn insert_at(&mut self, slot: usize, hash: u64, n: u32) {
        assert!(n < u32::MAX, "invariant: fewer than 2^32 - 1 states");
        let (seg, i) = Self::place_of(slot);
        let seg = &mut self.segments[seg];
        seg.place(i, (hash >> 32) << 32 | u64::from(n + 1));
        seg.len += 1;
        self.len += 1;
        // At most 7/8 full: in fingerprint order, look-ups read 4.5 slots or fewer.
        if seg.len * 8 > seg.homes * 7 {
            seg.grow();
        }
    }
}

impl Default for Visited {
    fn default() -> Self {
        Visited::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A hash with chosen fingerprint bits, to force collisions.
    fn hash(fp: u32, low: u32) -> u64 {
        u64::from(fp) << 32 | u64::from(low)
    }

    #[test]
    fn finds_what_was_inserted_across_growth_and_collisions() {
        let mut v = Visited::new();
        // Many states share a fingerprint (same home slot, so long probe runs), and many
        // more force the table to grow several times.
        let key = |n: u32| {
            hash(
                if n % 3 == 0 {
                    7
                } else {
                    n.wrapping_mul(2_654_435_761)
                },
                n,
            )
        };
        for n in 0..20_000u32 {
            match v.find(key(n), |m| m == n) {
                Probe::Vacant(slot) => v.insert_at(slot, key(n), n),
                Probe::Found(m) => panic!("state {n} found as {m} before its insertion"),
            }
        }
        assert_eq!(v.len(), 20_000);
        for n in 0..20_000u32 {
            assert_eq!(v.find(key(n), |m| m == n), Probe::Found(n));
            assert!(v.candidate(key(n)).is_some());
        }
        assert!(matches!(
            v.find(key(20_000), |m| m == 20_000),
            Probe::Vacant(_)
        ));
    }

    /// Filling the table grows its segments one by one: an insertion grows at most one
    /// segment, by a quarter of it (a small part of the table, never doubling at once), and
    /// once every segment has grown the table stays between 2/3 and 7/8 full.
    #[test]
    fn segments_grow_one_at_a_time() {
        let mut v = Visited::new();
        let mut cap = v.capacity();
        for n in 0..200_000u32 {
            let h = u64::from(n).wrapping_mul(0x9e37_79b9_7f4a_7c15);
            let Probe::Vacant(slot) = v.find(h, |m| m == n) else {
                panic!("state {n} found before its insertion");
            };
            v.insert_at(slot, h, n);
            let now = v.capacity();
            let grew = now - cap;
            assert!(grew <= cap / 128, "{cap} -> {now}");
            assert!(v.len() * 8 <= now * 7);
            if n >= 20_000 {
                assert!(v.len() * 3 >= now * 2, "{} states in {now} slots", v.len());
            }
            cap = now;
        }
        assert!(cap > 4096, "the segments grew");
    }

    /// States whose fingerprints are the largest (home: the last slot) and the smallest
    /// pile up past the last home and at the first: the overflow lengthens to hold them,
    /// every segment stays in fingerprint order, and every state is found again, before and
    /// after the segments grow.
    #[test]
    fn runs_past_the_last_home_lengthen_the_overflow() {
        let mut v = Visited::new();
        let key = |n: u32| match n % 4 {
            0 => hash(u32::MAX, n),
            1 => hash(u32::MAX - (n % 5), n),
            2 => hash(0, n),
            _ => hash(n.wrapping_mul(2_654_435_761), n),
        };
        for n in 0..5_000u32 {
            match v.find(key(n), |m| m == n) {
                Probe::Vacant(slot) => v.insert_at(slot, key(n), n),
                Probe::Found(m) => panic!("state {n} found as {m} before its insertion"),
            }
            if n % 997 == 0 || n == 4_999 {
                for seg in &v.segments {
                    let fps: Vec<u64> = seg
                        .slots
                        .iter()
                        .filter(|&&x| x != 0)
                        .map(|&x| x >> 32)
                        .collect();
                    assert!(
                        fps.windows(2).all(|w| w[0] <= w[1]),
                        "a segment out of order"
                    );
                    assert_eq!(fps.len(), seg.len);
                }
                for m in 0..=n {
                    assert_eq!(v.find(key(m), |j| j == m), Probe::Found(m), "state {m}");
                }
            }
        }
        assert!(
            v.segments.iter().any(|s| s.slots.len() > s.homes),
            "some overflow"
        );
    }

    #[test]
    fn equal_fingerprints_are_told_apart_by_the_state() {
        let mut v = Visited::new();
        for n in 0..10u32 {
            let Probe::Vacant(slot) = v.find(hash(42, 0), |m| m == n) else {
                panic!("state {n} found before its insertion");
            };
            v.insert_at(slot, hash(42, 0), n);
        }
        for n in 0..10u32 {
            assert_eq!(v.find(hash(42, 0), |m| m == n), Probe::Found(n));
        }
        assert_eq!(v.candidate(hash(42, 0)), Some(0));
    }
}
