//! Bandwidth limits over time the caller gives (unix milliseconds; nothing here reads a clock):
//! [`Bucket`], a token bucket that paces bulk transfers, and [`Meter`], the current rate over
//! the last few seconds. The engine paces its block requests with a bucket (the receive limit);
//! the daemon paces the block data it sends with another (the send limit) and meters both
//! directions for `cloison status`.
//!
//! Invariants: an item goes only once the balance covers it (paid before it goes, so over a
//! transfer of `n` bytes the last item leaves `(n - burst) / rate` after the first, whatever the
//! items' sizes); the balance holds at most the burst plus the cost of the item waiting, so an
//! item larger than the burst is never stuck, a shell that wakes late loses nothing, and an
//! idle bucket lets through at most its burst at once; over any interval of `t` ms a bucket lets through at most
//! `burst + rate·t/1000` bytes; time that goes backwards adds nothing. All arithmetic
//! saturates: no value given overflows it.

/// The burst of a bucket: this many milliseconds' worth of its rate.
pub const BURST_MS: u64 = 250;
/// The smallest burst, in bytes.
pub const MIN_BURST: u64 = 16 * 1024;
/// One KiB/s in bytes per second (the unit of the limits users set).
pub const KIB: u64 = 1024;

/// A token bucket of `rate` bytes per second.
///
/// Balances are kept in thousandths of a byte, so that `rate` bytes per second is exactly
/// `rate` thousandths per millisecond and no refill is lost to rounding.
#[derive(Debug, Clone)]
pub struct Bucket {
    /// Bytes per second (at least 1).
    rate: u64,
    /// The most the balance holds beyond the item waiting, in thousandths of a byte.
    burst: i64,
    /// The balance, in thousandths of a byte (negative after a correction: debt).
    balance: i64,
    /// The cost of the item last found not ready (0: none waits).
    want: i64,
    /// When the balance was last brought up to date.
    last: u64,
}

/// `bytes` in thousandths of a byte.
fn milli(bytes: u64) -> i64 {
    i64::try_from(bytes.saturating_mul(1000)).unwrap_or(i64::MAX)
}

impl Bucket {
    /// A full bucket of `rate` bytes per second (0 counts as 1), at time `now`.
    pub fn new(rate: u64, now: u64) -> Bucket {
        let rate = rate.max(1);
        let burst = milli((rate.saturating_mul(BURST_MS) / 1000).max(MIN_BURST));
        Bucket {
            rate,
            burst,
            balance: burst,
            want: 0,
            last: now,
        }
    }

    /// Its rate, in bytes per second.
    pub fn rate(&self) -> u64 {
        self.rate
    }

    fn refill(&mut self, now: u64) {
        if now <= self.last {
            return;
        }
        let elapsed = now - self.last;
        self.last = now;
        let add = i64::try_from(self.rate.saturating_mul(elapsed)).unwrap_or(i64::MAX);
        let cap = self.burst.saturating_add(self.want);
        self.balance = self.balance.saturating_add(add).min(cap);
    }

    /// Whether an item of `bytes` may go now (then [`Bucket::take`] it). If not, the bucket
    /// remembers it as the item waiting, for [`Bucket::ready_at`].
    pub fn ready(&mut self, now: u64, bytes: u64) -> bool {
        self.refill(now);
        let need = milli(bytes);
        if self.balance >= need {
            self.want = 0;
            true
        } else {
            self.want = need;
            false
        }
    }

    /// Charges `bytes` (the balance may go negative: a correction after the fact).
    pub fn take(&mut self, now: u64, bytes: u64) {
        self.refill(now);
        self.balance = self.balance.saturating_sub(milli(bytes));
    }

    /// Gives back `bytes` charged for something that did not happen (never above the burst).
    pub fn refund(&mut self, bytes: u64) {
        self.balance = self.balance.saturating_add(milli(bytes)).min(self.burst);
    }

    /// When the item last found not ready may go, as far as the time given so far tells (the
    /// time last given if none waits).
    pub fn ready_at(&self) -> u64 {
        if self.want <= self.balance {
            return self.last;
        }
        // balance + rate·t >= want  ⇔  t >= (want - balance) / rate.
        let short = self.want.abs_diff(self.balance);
        self.last.saturating_add(short.div_ceil(self.rate))
    }
}

/// Width of one slot of a [`Meter`], in ms.
pub const METER_SLOT_MS: u64 = 500;
/// Slots a [`Meter`] keeps: its rate covers the last `(METER_SLOTS - 1) · METER_SLOT_MS` ms and
/// the current slot.
pub const METER_SLOTS: usize = 8;

/// The rate of a stream of bytes over the last few seconds.
#[derive(Debug, Clone, Default)]
pub struct Meter {
    /// Per slot: its index (`now / METER_SLOT_MS`) and the bytes counted in it.
    slots: [(u64, u64); METER_SLOTS],
}

impl Meter {
    /// Counts `bytes` at time `now`.
    pub fn add(&mut self, now: u64, bytes: u64) {
        let index = now / METER_SLOT_MS;
        let slot = &mut self.slots[(index % METER_SLOTS as u64) as usize];
        if slot.0 != index {
            *slot = (index, 0);
        }
        slot.1 = slot.1.saturating_add(bytes);
    }

    /// Bytes per second over the slots that are still recent at `now`.
    pub fn rate(&self, now: u64) -> u64 {
        let index = now / METER_SLOT_MS;
        let oldest = index.saturating_sub(METER_SLOTS as u64 - 1);
        let bytes: u64 = self
            .slots
            .iter()
            .filter(|(i, _)| *i >= oldest && *i <= index)
            .map(|(_, b)| *b)
            .fold(0, u64::saturating_add);
        let span = (index - oldest) * METER_SLOT_MS + now % METER_SLOT_MS + 1;
        bytes.saturating_mul(1000) / span
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// Sends `item`-byte items through a bucket of `rate` B/s for `ms` ms, stepping time by
    /// `step` ms and sending whenever the bucket is ready; returns the bytes sent.
    fn pump(rate: u64, item: u64, ms: u64, step: u64) -> u64 {
        let mut b = Bucket::new(rate, 0);
        let mut sent = 0;
        let mut now = 0;
        while now < ms {
            while b.ready(now, item) {
                b.take(now, item);
                sent += item;
            }
            now += step;
        }
        sent
    }

    #[test]
    fn a_bucket_holds_its_rate_over_ten_seconds() {
        let rate = 2048 * KIB;
        // One-MiB items (blocks), the loop waking every 7 ms: 10 s give 20 MiB and the burst,
        // less at most a step and an item.
        let sent = pump(rate, 1 << 20, 10_000, 7);
        let want = rate * 10;
        assert!(
            sent + (1 << 20) + rate * 7 / 1000 >= want,
            "{sent} < {want}"
        );
        assert!(sent <= want + rate / 4, "{sent} > {want}");
    }

    #[test]
    fn an_item_larger_than_the_burst_waits_until_it_is_paid_for() {
        let mut b = Bucket::new(100 * KIB, 0);
        // The 25 KiB burst does not cover 400 KiB: it waits 3.75 s for the rest.
        assert!(!b.ready(0, 400 * KIB));
        assert_eq!(b.ready_at(), 3_750);
        assert!(!b.ready(3_749, 400 * KIB));
        assert!(b.ready(3_750, 400 * KIB));
        b.take(3_750, 400 * KIB);
        assert!(!b.ready(3_750, 1));
        assert_eq!(b.ready_at(), 3_751);
    }

    #[test]
    fn an_idle_bucket_holds_only_its_burst() {
        let mut b = Bucket::new(1000 * KIB, 0);
        b.take(0, 1);
        // The burst (250 ms worth) goes at once, then nothing more.
        assert!(b.ready(3_600_000, 250 * KIB));
        b.take(3_600_000, 250 * KIB);
        assert!(!b.ready(3_600_000, 1));
        // A large item after a long wait still waits for its own cost less the burst.
        let mut b = Bucket::new(1000 * KIB, 0);
        assert!(!b.ready(3_600_000, 1250 * KIB));
        assert_eq!(b.ready_at(), 3_601_000);
    }

    #[test]
    fn time_going_backwards_adds_nothing_and_refunds_are_capped() {
        let mut b = Bucket::new(10 * KIB, 1_000);
        b.take(1_000, 100 * KIB);
        assert!(!b.ready(0, 1));
        let at = b.ready_at();
        assert!(!b.ready(0, 1));
        assert_eq!(b.ready_at(), at);
        b.refund(u64::MAX);
        assert!(b.ready(1_000, MIN_BURST));
        b.take(1_000, MIN_BURST);
        assert!(!b.ready(1_000, 1), "the refund filled more than the burst");
    }

    #[test]
    fn a_meter_reports_what_went_through_lately() {
        let mut m = Meter::default();
        for t in (0..4_000).step_by(100) {
            m.add(t, 1_000); // 10,000 B/s
        }
        let r = m.rate(3_999);
        assert!((9_000..=11_000).contains(&r), "{r}");
        // Four seconds of silence later, nothing is recent.
        assert_eq!(m.rate(8_000), 0);
    }

    proptest! {
        /// Whatever the rate, item size and wake-up step (up to the burst's length, as a shell
        /// that sleeps until [`Bucket::ready_at`] does), the bytes let through in `ms` stay
        /// within one burst above `rate · ms`, and at most one item and one step's worth below.
        #[test]
        fn a_bucket_holds_its_rate(
            rate_kib in 1u64..20_000,
            item in 4096u64..(8 << 20),
            step in 1u64..=BURST_MS,
        ) {
            let rate = rate_kib * KIB;
            let ms = 10_000;
            let sent = pump(rate, item, ms, step);
            let burst = (rate * BURST_MS / 1000).max(MIN_BURST);
            let ideal = rate * ms / 1000;
            prop_assert!(sent <= ideal + burst, "{} > {}", sent, ideal);
            prop_assert!(sent + item + rate * step / 1000 + 1 >= ideal, "{} < {}", sent, ideal);
        }

        #[test]
        fn no_input_overflows(rate in any::<u64>(), now in any::<u64>(), bytes in any::<u64>()) {
            let mut b = Bucket::new(rate, now / 2);
            b.take(now, bytes);
            b.refund(bytes);
            let _ = b.ready(now, bytes);
            let _ = b.ready_at();
            let mut m = Meter::default();
            m.add(now, bytes);
            m.add(now, bytes);
            let _ = m.rate(now);
        }
    }
}
