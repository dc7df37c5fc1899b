//! The crypto data path: content payloads (criterion) and the block path over a big stream
//! (timed by hand, median of 3 rounds, with same-run baselines).
//!
//! - `block_cipher/*`: the two candidate block ciphers on 1 MiB in place (see `seal::block`).
//! - `payload_bytes/*` and `payload_ops/*`: `ContentKey::seal` / `open` of 1 KiB and 64 KiB
//!   payloads, as MB/s and as payloads/s.
//! - `stream`: chunk+seal `CLOISON_BENCH_MIB` MiB (default 1024) of random bytes from a `Read`,
//!   dropping each block as it comes (as a pipeline that sends or stores it would), then open and
//!   verify every block. Each figure comes with a ratio to a plain BLAKE3 pass plus a plain
//!   AES-256-GCM pass (ring, in place, 1 MiB pieces) over the same number of bytes, measured in
//!   the same round, so it does not depend on how busy the machine is. A FastCDC-only pass (cut
//!   points, no hashing or sealing) is printed for the breakdown, next to fastcdc's own `StreamCDC`
//!   over the same bytes, and the pipeline `seal::chunker` replaces (StreamCDC's chunks, each
//!   sealed with `seal_chunk`). Lines are `key=value`.
//!
//! Run: `cargo bench -p cloison-node --bench seal`. `cargo test --benches` runs it once on 16 MiB.

use std::hint::black_box;
use std::io::Cursor;
use std::time::{Duration, Instant};

use chacha20poly1305::XChaCha20Poly1305;
use chacha20poly1305::aead::{AeadInOut, KeyInit};
use cloison_node::seal::{ContentKey, ConvergenceSecret, EpochKey, SealedBlock, open_block};
use criterion::{BenchmarkId, Criterion, Throughput};
use fastcdc::v2020::{Normalization, StreamCDC};
use rand::{Rng, SeedableRng, rngs::StdRng};
use ring::aead::{AES_256_GCM, Aad, LessSafeKey, Nonce, UnboundKey};

fn payloads(c: &mut Criterion) {
    let mut rng = StdRng::seed_from_u64(1);
    let key = ContentKey::derive(&EpochKey::generate(&mut rng), &[7; 16]);
    let header = vec![0x11u8; 200];
    for (group, per_byte) in [("payload_bytes", true), ("payload_ops", false)] {
        let mut g = c.benchmark_group(group);
        g.measurement_time(Duration::from_secs(2))
            .warm_up_time(Duration::from_millis(500));
        for size in [1024usize, 64 * 1024] {
            let plain = vec![0x5au8; size];
            let sealed = key.seal(&header, &plain, &mut rng).unwrap();
            g.throughput(if per_byte {
                Throughput::Bytes(size as u64)
            } else {
                Throughput::Elements(1)
            });
            g.bench_with_input(BenchmarkId::new("seal", size), &plain, |b, p| {
                b.iter(|| black_box(key.seal(&header, p, &mut rng).unwrap()))
            });
            g.bench_with_input(BenchmarkId::new("open", size), &sealed, |b, s| {
                b.iter(|| black_box(key.open(&header, s).unwrap()))
            });
        }
        g.finish();
    }
}

/// The block-cipher choice, reproducible: ring AES-256-GCM against RustCrypto
/// XChaCha20-Poly1305 on 1 MiB in place.
fn ciphers(c: &mut Criterion) {
    let mut g = c.benchmark_group("block_cipher");
    g.measurement_time(Duration::from_secs(2))
        .warm_up_time(Duration::from_millis(500))
        .throughput(Throughput::Bytes(1 << 20));
    let mut buf = vec![0x5au8; 1 << 20];
    let aes = LessSafeKey::new(UnboundKey::new(&AES_256_GCM, &[9; 32]).unwrap());
    g.bench_function("ring_aes256gcm_1MiB", |b| {
        b.iter(|| {
            aes.seal_in_place_separate_tag(
                Nonce::assume_unique_for_key([0; 12]),
                Aad::empty(),
                &mut buf,
            )
            .unwrap()
        })
    });
    let x = XChaCha20Poly1305::new(&[9u8; 32].into());
    g.bench_function("rustcrypto_xchacha20poly1305_1MiB", |b| {
        b.iter(|| {
            x.encrypt_inout_detached(&[0u8; 24].into(), b"", buf.as_mut_slice().into())
                .unwrap()
        })
    });
    g.finish();
}

fn mbps(bytes: usize, d: Duration) -> f64 {
    bytes as f64 / d.as_secs_f64() / 1e6
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// A plain BLAKE3 pass over `data` in 1 MiB pieces.
fn blake3_pass(data: &[u8]) -> Duration {
    let t = Instant::now();
    for piece in data.chunks(1 << 20) {
        black_box(blake3::hash(piece));
    }
    t.elapsed()
}

/// A plain AES-256-GCM pass (ring, in place) over `work` in 1 MiB pieces.
fn aes_pass(work: &mut [u8]) -> Duration {
    let key = LessSafeKey::new(UnboundKey::new(&AES_256_GCM, &[9; 32]).unwrap());
    let t = Instant::now();
    for piece in work.chunks_mut(1 << 20) {
        let tag = key
            .seal_in_place_separate_tag(Nonce::assume_unique_for_key([0; 12]), Aad::empty(), piece)
            .unwrap();
        let _tag = black_box(tag);
    }
    t.elapsed()
}

fn stream(full: bool) {
    let mib: usize = if full {
        std::env::var("CLOISON_BENCH_MIB")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or(1024)
    } else {
        16
    };
    let rounds = if full { 3 } else { 1 };
    let mut data = vec![0u8; mib << 20];
    StdRng::seed_from_u64(2).fill_bytes(&mut data);
    let secret = ConvergenceSecret::from_bytes(&[3; 32]);
    // The gear seed as `seal` derives it (first 8 bytes, little endian, of a derived key).
    let d = blake3::derive_key("cloison 2026 cdc-seed v1", &[3; 32]);
    let secret_seed = u64::from_le_bytes([d[0], d[1], d[2], d[3], d[4], d[5], d[6], d[7]]);
    let blocks: Vec<SealedBlock> = secret
        .seal_stream(Cursor::new(&data[..]))
        .collect::<Result<_, _>>()
        .unwrap();
    let block_bytes: usize = blocks.iter().map(|b| b.bytes.len()).sum();
    let mut work = vec![1u8; data.len().max(block_bytes)];

    let (mut seal, mut seal_ratio, mut cdc, mut scdc, mut sscdc, mut open, mut open_ratio) =
        (vec![], vec![], vec![], vec![], vec![], vec![], vec![]);
    for round in 1..=rounds {
        let t = Instant::now();
        let mut n = 0usize;
        for b in secret.seal_stream(Cursor::new(&data[..])) {
            n += black_box(b.unwrap()).bytes.len();
        }
        let t_seal = t.elapsed();
        assert_eq!(n, block_bytes);
        let t = Instant::now();
        black_box(secret.chunk_bounds(Cursor::new(&data[..])).unwrap());
        let t_cdc = t.elapsed();
        // fastcdc's own StreamCDC over the same bytes (chunk Vecs dropped as they come).
        let t = Instant::now();
        for c in StreamCDC::with_level_and_seed(
            Cursor::new(&data[..]),
            256 << 10,
            1 << 20,
            4 << 20,
            Normalization::Level1,
            secret_seed,
        ) {
            black_box(c.unwrap().length);
        }
        let t_stream_cdc = t.elapsed();
        // The pipeline `seal::chunker` replaces: StreamCDC's chunk Vecs, each sealed.
        let t = Instant::now();
        let mut m = 0usize;
        for c in StreamCDC::with_level_and_seed(
            Cursor::new(&data[..]),
            256 << 10,
            1 << 20,
            4 << 20,
            Normalization::Level1,
            secret_seed,
        ) {
            let c = c.unwrap();
            m += black_box(secret.seal_chunk(&c.data, c.offset).unwrap())
                .bytes
                .len();
        }
        let t_seal_via_stream_cdc = t.elapsed();
        assert_eq!(m, block_bytes);
        let base = blake3_pass(&data) + aes_pass(&mut work[..data.len()]);

        let t = Instant::now();
        let mut out = 0usize;
        for b in &blocks {
            out += black_box(open_block(&b.bytes, &b.id, &b.key).unwrap()).len();
        }
        let t_open = t.elapsed();
        assert_eq!(out, data.len());
        let mut all = Vec::with_capacity(block_bytes);
        for b in &blocks {
            all.extend_from_slice(&b.bytes);
        }
        let base_open = blake3_pass(&all) + aes_pass(&mut work[..block_bytes]);
        drop(all);

        let stream_cdc_mbps = mbps(data.len(), t_stream_cdc);
        let r = (
            mbps(data.len(), t_seal),
            t_seal.as_secs_f64() / base.as_secs_f64(),
            mbps(data.len(), t_cdc),
            mbps(data.len(), t_open),
            t_open.as_secs_f64() / base_open.as_secs_f64(),
        );
        println!(
            "stream round={round} mib={mib} blocks={} seal_mbps={:.0} seal_ratio_to_blake3_plus_aes={:.2} \
             baseline_mbps={:.0} cdc_only_mbps={:.0} stream_cdc_only_mbps={:.0} seal_via_stream_cdc_mbps={:.0} open_mbps={:.0} open_ratio_to_blake3_plus_aes={:.2} \
             baseline_open_mbps={:.0}",
            blocks.len(),
            r.0,
            r.1,
            mbps(data.len(), base),
            r.2,
            stream_cdc_mbps,
            mbps(data.len(), t_seal_via_stream_cdc),
            r.3,
            r.4,
            mbps(block_bytes, base_open),
        );
        seal.push(r.0);
        seal_ratio.push(r.1);
        cdc.push(r.2);
        scdc.push(stream_cdc_mbps);
        sscdc.push(mbps(data.len(), t_seal_via_stream_cdc));
        open.push(r.3);
        open_ratio.push(r.4);
    }
    println!(
        "stream median mib={mib} rounds={rounds} padding_overhead_pct={:.2} seal_mbps={:.0} \
         seal_ratio_to_blake3_plus_aes={:.2} cdc_only_mbps={:.0} stream_cdc_only_mbps={:.0} seal_via_stream_cdc_mbps={:.0} open_mbps={:.0} \
         open_ratio_to_blake3_plus_aes={:.2}",
        (block_bytes as f64 / data.len() as f64 - 1.0) * 100.0,
        median(seal),
        median(seal_ratio),
        median(cdc),
        median(scdc),
        median(sscdc),
        median(open),
        median(open_ratio),
    );
}

fn main() {
    let full = std::env::args().any(|a| a == "--bench");
    let mut c = Criterion::default().configure_from_args();
    ciphers(&mut c);
    payloads(&mut c);
    stream(full);
    c.final_summary();
}
