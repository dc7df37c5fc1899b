//! The streaming chunker: `impl Read` in, sealed blocks out, with bounded memory.
//!
//! Cut points are FastCDC v2020's (fastcdc 5, normalization level 1, min 256 KiB / avg 1 MiB /
//! max 4 MiB, gear table XORed with a seed derived from the workspace's convergence secret), and
//! are exactly those `fastcdc::v2020::StreamCDC::with_level_and_seed` gives for the same input
//! (a test compares the two). We drive fastcdc's `cut_gear` over our own window instead of using
//! `StreamCDC` itself because `StreamCDC` copies every chunk into a fresh `Vec` and then shifts the
//! rest of its 4 MiB buffer to the front after *each* chunk (about three bytes moved per byte
//! chunked at a 1 MiB average); here the window is twice the maximum chunk and is compacted only
//! when less than one maximum chunk is left, and each chunk is copied once, straight into the
//! buffer of its block, where it is padded and encrypted in place. Measured in the same runs
//! (1 GiB, release, median of 3): cut points only, 2,489 MB/s here against 2,176 for `StreamCDC`;
//! chunk+seal, 1,119 MB/s here against 1,063 for `StreamCDC` + `seal_chunk` (+5 %; +8 % in a
//! run on a busier machine, 734 against 679).
//!
//! Known limit: fastcdc keys the gear table by XORing one 64-bit seed into every entry, a weak
//! keying; published attacks on keyed CDC recover such parameters from observed chunk lengths.
//! The relay sees only padded lengths (Padmé keeps the top bits of each), which blurs but does not
//! remove this signal.
//!
//! Invariants: boundaries depend only on the bytes and the secret, never on how `read` splits
//! them (a cut is made only with at least [`MAX_CHUNK`] bytes in view, or at end of input);
//! memory is the 8 MiB window plus the block being built; an I/O error ends the stream (it is
//! returned once, then the iterator is exhausted); the keyed gear table is zeroized on drop.

use std::borrow::Cow;
use std::io::{self, Read};

use fastcdc::v2020::{Normalization, cut_gear, get_gear_with_seed, select_masks};
use zeroize::Zeroize;

use super::block::{AVG_CHUNK, ConvergenceSecret, MAX_CHUNK, MIN_CHUNK, SealedBlock};

/// Size of the read window.
pub const WINDOW_BYTES: usize = 2 * MAX_CHUNK;
/// The window's first size; it doubles up to [`WINDOW_BYTES`] as the stream needs.
const FIRST_WINDOW: usize = 64 << 10;

/// Cuts a stream into chunks and seals each one; see the module doc.
pub struct BlockStream<R: Read> {
    secret: ConvergenceSecret,
    reader: R,
    window: Vec<u8>,
    start: usize,
    end: usize,
    eof: bool,
    done: bool,
    offset: u64,
    gear: Cow<'static, [u64]>,
    gear_ls: Cow<'static, [u64]>,
    mask_s: u64,
    mask_l: u64,
}

impl ConvergenceSecret {
    /// Chunks and seals everything `reader` yields, one block at a time.
    pub fn seal_stream<R: Read>(&self, reader: R) -> BlockStream<R> {
        let (gear, gear_ls) = get_gear_with_seed(self.gear_seed());
        let (mask_s, mask_l) = select_masks(AVG_CHUNK, Normalization::Level1);
        BlockStream {
            secret: self.clone(),
            reader,
            window: Vec::new(),
            start: 0,
            end: 0,
            eof: false,
            done: false,
            offset: 0,
            gear,
            gear_ls,
            mask_s,
            mask_l,
        }
    }

    /// The chunk boundaries `(offset, length)` of a stream, without sealing (tests, tools).
    pub fn chunk_bounds<R: Read>(&self, reader: R) -> io::Result<Vec<(u64, usize)>> {
        let mut s = self.seal_stream(reader);
        let mut out = Vec::new();
        while let Some((offset, len)) = s.next_cut()? {
            out.push((offset, len));
            s.start += len;
            s.offset += len as u64;
        }
        Ok(out)
    }
}

impl<R: Read> BlockStream<R> {
    /// Makes sure at least `MAX_CHUNK` bytes are in view, or that the input is exhausted.
    fn refill(&mut self) -> io::Result<()> {
        if self.eof || self.end - self.start >= MAX_CHUNK {
            return Ok(());
        }
        self.window.copy_within(self.start..self.end, 0);
        self.end -= self.start;
        self.start = 0;
        while !self.eof {
            if self.end == self.window.len() {
                // Grow on demand: a small file never pays for the whole window (zeroing 8 MiB
                // per file dominated a put of 5,000 small files).
                if self.window.len() >= WINDOW_BYTES {
                    break;
                }
                let grown = (self.window.len() * 2).clamp(FIRST_WINDOW, WINDOW_BYTES);
                self.window.resize(grown, 0);
            }
            match self.reader.read(&mut self.window[self.end..]) {
                Ok(0) => self.eof = true,
                Ok(n) => self.end += n.min(self.window.len() - self.end),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    /// The next cut `(offset, length)`, not yet consumed; `None` at the end.
    fn next_cut(&mut self) -> io::Result<Option<(u64, usize)>> {
        self.refill()?;
        if self.start == self.end {
            return Ok(None);
        }
        let (_, count) = cut_gear(
            &self.window[self.start..self.end],
            MIN_CHUNK,
            AVG_CHUNK,
            MAX_CHUNK,
            self.mask_s,
            self.mask_l,
            self.mask_s << 1,
            self.mask_l << 1,
            &self.gear,
            &self.gear_ls,
        );
        Ok((count > 0).then_some((self.offset, count)))
    }
}

impl<R: Read> Drop for BlockStream<R> {
    /// The seeded gear table reveals the seed, which is derived from the workspace's secret.
    fn drop(&mut self) {
        if let Cow::Owned(g) = &mut self.gear {
            g.zeroize();
        }
        if let Cow::Owned(g) = &mut self.gear_ls {
            g.zeroize();
        }
    }
}

impl<R: Read> Iterator for BlockStream<R> {
    type Item = io::Result<SealedBlock>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        let (offset, len) = match self.next_cut() {
            Ok(Some(cut)) => cut,
            Ok(None) => {
                self.done = true;
                return None;
            }
            Err(e) => {
                self.done = true;
                return Some(Err(e));
            }
        };
        let chunk = &self.window[self.start..self.start + len];
        let sealed = self
            .secret
            .seal_chunk(chunk, offset)
            .map_err(io::Error::other);
        self.start += len;
        self.offset += len as u64;
        if sealed.is_err() {
            self.done = true;
        }
        Some(sealed)
    }
}
