//! RESP parsing and encoding: the bytes-to-command and reply-to-bytes steps
//! that every request pays, before and after its engine step.
//!
//! They are hot because they run once per request on the connection task,
//! outside any lock: with a shard's engine step costing well under a
//! microsecond, a slow parser or encoder caps what one core can serve, and
//! pipelined clients feed many frames through one read.
//!
//! - `parse`: [`RequestReader::next`] on one `QPUSH q <100 B>` frame, on a
//!   pipeline of 16 such frames in one buffer, and on the same QPUSH sent
//!   inline. Its peer in the same run is `redis-protocol`'s general
//!   decoder on the same frame, which has none of the reader's limits and
//!   returns a frame rather than arguments: the ratio says how the
//!   reader compares with a general-purpose RESP parser.
//! - `encode`: [`encode`] of an integer reply (QPUSH's) and of a QPULL
//!   reply (one `[queue, id, payload (100 B), attempt]`), in RESP2 and
//!   RESP3.
//!
//! Run with `cargo bench -p quern-server --bench resp`.

use std::hint::black_box;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use quern_server::resp::{encode, Protocol, Reply, RequestLimits, RequestReader};
use quern_server::{DEFAULT_MAX_BATCH, DEFAULT_MAX_PAYLOAD};

/// The limits a server with default settings reads requests with (see
/// `Settings::request_limits`); the limits only bound the work, they do
/// not change it for frames this small.
const LIMITS: RequestLimits = RequestLimits {
    max_bulk: DEFAULT_MAX_PAYLOAD,
    max_args: DEFAULT_MAX_BATCH + 64,
    max_request: 1 << 30,
    max_inline: 64 << 10,
};

/// Frames in the pipelined buffer, as `redis-benchmark -P 16` sends.
const PIPELINE: usize = 16;

fn payload() -> Bytes {
    Bytes::from(vec![b'x'; 100])
}

/// `QPUSH q <payload>` as a RESP array of bulk strings.
fn qpush_frame(payload: &[u8]) -> Vec<u8> {
    let mut frame = b"*3\r\n$5\r\nQPUSH\r\n$1\r\nq\r\n".to_vec();
    frame.extend_from_slice(format!("${}\r\n", payload.len()).as_bytes());
    frame.extend_from_slice(payload);
    frame.extend_from_slice(b"\r\n");
    frame
}

/// Every request in `buf`, to check the inputs before measuring.
fn read_all(reader: &mut RequestReader, mut buf: BytesMut) -> Vec<Vec<Bytes>> {
    let mut requests = Vec::new();
    while let Some(args) = reader.next(&mut buf, &LIMITS).expect("valid request") {
        requests.push(args);
    }
    requests
}

fn parse(c: &mut Criterion) {
    let payload = payload();
    let one = qpush_frame(&payload);
    let pipeline = one.repeat(PIPELINE);
    let mut inline = b"QPUSH q ".to_vec();
    inline.extend_from_slice(&payload);
    inline.extend_from_slice(b"\r\n");

    let mut reader = RequestReader::default();
    for (input, frames) in [(&one, 1), (&pipeline, PIPELINE), (&inline, 1)] {
        let got = read_all(&mut reader, BytesMut::from(&input[..]));
        assert_eq!(got.len(), frames, "every frame parses");
        assert!(got.iter().all(|args| args.len() == 3 && args[2] == payload));
    }

    let mut group = c.benchmark_group("parse");
    // Each input is copied into a fresh buffer outside the timing, as a
    // socket read would leave it. Each request's arguments are dropped
    // inside it, as the connection drops them once the command has run.
    let mut case = |name: &str, input: &[u8], frames: usize| {
        group.throughput(Throughput::Bytes(input.len() as u64));
        group.bench_function(name, |b| {
            b.iter_batched(
                || BytesMut::from(input),
                |mut buf| {
                    let mut read = 0;
                    while let Some(args) = reader.next(&mut buf, &LIMITS).expect("valid request") {
                        black_box(args);
                        read += 1;
                    }
                    debug_assert_eq!(read, frames);
                },
                BatchSize::SmallInput,
            )
        });
    };
    case("qpush", &one, 1);
    case("qpush_pipeline_16", &pipeline, PIPELINE);
    case("qpush_inline", &inline, 1);

    // The peer: a general-purpose RESP decoder on the same frame.
    group.throughput(Throughput::Bytes(one.len() as u64));
    group.bench_function("qpush_redis_protocol_decode_only", |b| {
        b.iter_batched(
            || BytesMut::from(&one[..]),
            |mut buf| {
                let frame = redis_protocol::resp2::decode::decode_bytes_mut(&mut buf)
                    .expect("valid frame")
                    .expect("whole frame");
                black_box(frame);
            },
            BatchSize::SmallInput,
        )
    });
    group.finish();
}

fn encoding(c: &mut Criterion) {
    let queue = Bytes::from_static(b"emails");
    // As `jobs_reply` builds it for one pulled job.
    let pull_reply = Reply::Array(vec![Reply::Array(vec![
        Reply::Bulk(queue),
        Reply::Int(1_234_567),
        Reply::Bulk(payload()),
        Reply::Int(1),
    ])]);
    let int_reply = Reply::Int(1_234_567);

    let mut group = c.benchmark_group("encode");
    let mut out = BytesMut::with_capacity(64 << 10);
    for (name, reply) in [("int", &int_reply), ("qpull", &pull_reply)] {
        for (version, protocol) in [("resp2", Protocol::Resp2), ("resp3", Protocol::Resp3)] {
            out.clear();
            encode(&mut out, reply.clone(), protocol);
            group.throughput(Throughput::Bytes(out.len() as u64));
            // The reply is cloned outside the timing (encode consumes it);
            // the output buffer is reused, as a connection's is.
            group.bench_function(format!("{name}_{version}"), |b| {
                b.iter_batched(
                    || reply.clone(),
                    |reply| {
                        out.clear();
                        encode(&mut out, reply, protocol);
                        black_box(out.len())
                    },
                    BatchSize::SmallInput,
                )
            });
        }
    }
    group.finish();
}

criterion_group! {
    name = benches;
    // Short runs: these are sub-microsecond paths, and the whole bench
    // should finish in well under a minute on two cores.
    config = Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(2))
        .sample_size(50);
    targets = parse, encoding
}
criterion_main!(benches);
