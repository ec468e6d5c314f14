//! Per-thread copies of the literal groups' character automata.
//!
//! A scan reads its group's automaton (the double array, the start filter's bit sets) at
//! random for nearly every character. Two threads reading the same few hundred kilobytes
//! that way can run far slower than two threads each reading a copy of its own, depending
//! on where the host puts the two cores: on this project's 2-core virtual machines a 1 MiB
//! table read at random took 1.15 s on one thread and, on each of two threads sharing it,
//! 1.46–1.84 s at one time and 1.26–1.30 s at another; with a copy each, 1.14–1.19 s both
//! times. At the first time, daachorse over the peers' 10k lexicon on 3,000-char posts gave
//! 1.45–1.68× one thread's throughput from two threads sharing the automaton and 1.85–1.95×
//! with a copy each (two processes: 1.95×). Multi-socket servers are expected to behave the
//! same way (not measured here). So each scanning thread beyond the first reads
//! a copy, made on its first scan: threads are numbered as they first scan and take the
//! originals or a copy in turn, at most one copy per further core. An engine whose automata
//! are large keeps none (the memory would outweigh the gain), nor do the huge groups on
//! aho-corasick's NFA. Numbers are the process's, never reused: threads that come and go
//! (a pool made per job) or more threads than cores may share a slot while another is idle,
//! and a copy, once made, stays with the engine until it is dropped (a reload builds a new
//! engine without copies).

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::OnceLock;

use daachorse::CharwiseDoubleArrayAhoCorasick;

use super::start_filter::StartBits;

/// A literal group's automaton and start filter bits, copied for one thread.
pub(super) struct GroupCopy {
    pub(super) ac: CharwiseDoubleArrayAhoCorasick<u32>,
    pub(super) bits: Option<StartBits>,
}

/// A copy of every literal group that has a character automaton (`None` for the others),
/// in the matcher's group order.
pub(super) type AutomataCopy = Box<[Option<GroupCopy>]>;

/// Automata smaller than this together are not copied: they stay in each core's own cache
/// and cost little to share (a 64 KiB table: 5% at the moment a 1 MiB one cost 27–60%),
/// while a copy per engine and thread is memory to allocate and free at every reload.
const MIN_COPY_BYTES: usize = 256 << 10;
/// Automata larger than this together are not copied.
const MAX_COPY_BYTES: usize = 8 << 20;
/// Copies at most, however many cores (threads beyond share them in turn): at most 56 MiB
/// more for the largest automata copied.
const MAX_COPIES: usize = 7;

/// The copies of a matcher's automata, made on demand, one per slot.
pub(super) struct Copies {
    /// Threads numbered k (modulo `slots.len() + 1`) read `slots[k - 1]`; number 0 reads
    /// the originals.
    slots: Box<[OnceLock<AutomataCopy>]>,
}

impl Copies {
    /// Room for one copy per core beyond the first, for automata of `bytes` in all.
    pub(super) fn for_size(bytes: usize) -> Copies {
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        let n = if !(MIN_COPY_BYTES..=MAX_COPY_BYTES).contains(&bytes) {
            0
        } else {
            (cores - 1).min(MAX_COPIES)
        };
        Copies::new(n)
    }

    /// Room for `n` copies.
    pub(super) fn new(n: usize) -> Copies {
        Copies {
            slots: (0..n).map(|_| OnceLock::new()).collect(),
        }
    }

    /// The copy this thread reads, made by `make` when it is the slot's first; `None`: the
    /// originals.
    pub(super) fn for_this_thread(
        &self,
        make: impl FnOnce() -> AutomataCopy,
    ) -> Option<&AutomataCopy> {
        if self.slots.is_empty() {
            return None;
        }
        match thread_number() % (self.slots.len() + 1) {
            0 => None,
            k => Some(self.slots[k - 1].get_or_init(make)),
        }
    }

    /// How many copies were made.
    #[cfg(test)]
    pub(super) fn made(&self) -> usize {
        self.slots.iter().filter(|s| s.get().is_some()).count()
    }
}

/// This thread's number: 0, 1, 2… in the order threads first ask.
fn thread_number() -> usize {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    thread_local! {
        static NUMBER: usize = NEXT.fetch_add(1, Ordering::Relaxed);
    }
    NUMBER.with(|n| *n)
}
