//! One client's raw material: the ids it received ([`IdSet`], for exact
//! missing, duplicate and out-of-order counts) and its latency samples,
//! kept raw and folded into an HDR histogram in batches.

use hdrhistogram::Histogram;

/// Significant digits of every histogram (DESIGN.md: µs, 3 significant digits).
pub(crate) const SIGFIG: u8 = 3;

/// A set of event ids, one bit each, over a window of ids that grows as needed.
///
/// Ids in a window are contiguous, so a bitmap is the smallest exact record
/// of what arrived (100,000 events: 12.5 KB). `base` is a multiple of 64 so
/// growing downwards (an out-of-order first event) shifts whole words.
#[derive(Debug, Default)]
pub(crate) struct IdSet {
    pub(super) base: u64,
    pub(super) words: Vec<u64>,
    /// Largest span of ids (in bits) this set may cover; ids beyond are refused.
    pub(super) max_span: u64,
}

impl IdSet {
    pub(super) fn new(expected_hint: u64) -> Self {
        Self {
            base: 0,
            words: Vec::with_capacity(expected_hint.div_ceil(64).min(1 << 16) as usize + 1),
            // A misbehaving server sending id 10^18 must not make us allocate exabytes.
            max_span: expected_hint.saturating_mul(4).max(1 << 20),
        }
    }

    /// Inserts `id`; `Some(true)` if new, `Some(false)` if already present,
    /// `None` if it lies too far from the ids seen so far.
    pub(super) fn insert(&mut self, id: u64) -> Option<bool> {
        if self.words.is_empty() {
            self.base = id - id % 64;
            self.words.push(0);
        }
        if id < self.base {
            let new_base = id - id % 64;
            let extra = (self.base - new_base) / 64;
            if (self.words.len() as u64 + extra) * 64 > self.max_span {
                return None;
            }
            // Rare: an event older than the first one seen. Shift by whole words.
            self.words
                .splice(0..0, std::iter::repeat_n(0, extra as usize));
            self.base = new_base;
        }
        let off = id - self.base;
        if off >= self.max_span {
            return None;
        }
        let word = (off / 64) as usize;
        if word >= self.words.len() {
            self.words.resize(word + 1, 0);
        }
        let bit = 1u64 << (off % 64);
        let new = self.words[word] & bit == 0;
        self.words[word] |= bit;
        Some(new)
    }

    /// Number of ids in `lo..=hi` present.
    pub(super) fn count_in(&self, lo: u64, hi: u64) -> u64 {
        if self.words.is_empty() || hi < lo {
            return 0;
        }
        let top = self.base + self.words.len() as u64 * 64; // exclusive
        let lo = lo.max(self.base);
        let hi = hi.min(top - 1);
        if hi < lo {
            return 0;
        }
        let (a, b) = (lo - self.base, hi - self.base);
        let (wa, wb) = ((a / 64) as usize, (b / 64) as usize);
        let mut n = 0u64;
        for w in wa..=wb {
            let mut bits = self.words[w];
            if w == wa {
                bits &= u64::MAX << (a % 64);
            }
            if w == wb && b % 64 != 63 {
                bits &= (1u64 << (b % 64 + 1)) - 1;
            }
            n += u64::from(bits.count_ones());
        }
        n
    }

    /// Number of ids present.
    pub(super) fn len(&self) -> u64 {
        self.words.iter().map(|w| u64::from(w.count_ones())).sum()
    }
}

/// A µs histogram that starts small and grows as needed: where a client
/// with many samples folds them ([`Samples`]). It starts at the smallest
/// range (8 KB) and auto-resizes to the largest value actually seen (≈36 KB
/// for 100 ms, ≈45 KB for 1 s) rather than allocating 1 µs..60 s (70 KB) up
/// front. Counts are `u32` per client; totals are `u64`.
pub(crate) fn client_histogram() -> Histogram<u32> {
    // `new` is auto-resizing, lowest discernible value 1.
    Histogram::new(SIGFIG).expect("3 significant digits are valid")
}

/// An empty total histogram, µs, 1 µs to 60 s at 3 significant digits, growing beyond.
pub fn total_histogram() -> Histogram<u64> {
    let mut h = Histogram::new_with_bounds(1, 60_000_000, SIGFIG)
        .expect("constant histogram bounds are valid");
    h.auto(true);
    h
}

/// Raw samples a client keeps before folding them into a histogram: 32 KiB.
pub(crate) const RAW_SAMPLES: usize = 4096;

/// One client's samples of one quantity, µs.
///
/// A fleet has thousands of clients, each recording on its own; per-client
/// histograms (tens of KB each, resized as latencies grow) made the hot path
/// a random walk over hundreds of MB — page faults and cache misses that
/// profiles showed as a large share of the fleet's CPU at 5,000 clients. So
/// a client appends each sample to a plain vector (sized up front from the
/// events it expects, so it never reallocates in a normal run) and only a
/// client with more than [`RAW_SAMPLES`] folds them into a histogram; the
/// samples reach the totals' histogram at the end, unchanged.
#[derive(Debug, Default)]
pub(crate) struct Samples {
    pub(super) raw: Vec<u64>,
    pub(super) folded: Option<Histogram<u32>>,
}

impl Samples {
    pub(super) fn with_capacity(n: u64) -> Self {
        Self {
            raw: Vec::with_capacity((n as usize).min(RAW_SAMPLES)),
            folded: None,
        }
    }

    #[inline]
    pub(super) fn record(&mut self, us: u64) {
        if self.raw.len() >= RAW_SAMPLES {
            let h = self.folded.get_or_insert_with(client_histogram);
            for v in self.raw.drain(..) {
                record_n(h, v, 1);
            }
        }
        self.raw.push(us);
    }

    /// Every sample, in a total histogram.
    pub(super) fn total(&self) -> Histogram<u64> {
        let mut total = total_histogram();
        if let Some(h) = &self.folded {
            add_into(&mut total, h);
        }
        for &v in &self.raw {
            record_n(&mut total, v, 1);
        }
        total
    }
}

/// Records `n` samples of `value`, growing the histogram as needed.
///
/// (`saturating_record` would clamp to the current range instead of growing,
/// hiding outliers; it is only the fallback for values beyond any range.)
pub(crate) fn record_n<T: hdrhistogram::Counter>(h: &mut Histogram<T>, value: u64, n: T) {
    if h.record_n(value, n).is_err() {
        h.saturating_record_n(value, n);
    }
}

/// Adds a per-client `u32` histogram into a `u64` total.
pub(crate) fn add_into(total: &mut Histogram<u64>, h: &Histogram<u32>) {
    for v in h.iter_recorded() {
        record_n(total, v.value_iterated_to(), u64::from(v.count_at_value()));
    }
}
