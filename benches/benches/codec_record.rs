//! Group `codec`: encoding and decoding a realistic `TaskRecord` with the default codec (postcard)
//! against serde_json, and against bincode 2 when the `bincode` feature is on.

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use workmill_benches::realistic_record;
use workmill_core::{Codec, Postcard, TaskRecord};

fn encode(c: &mut Criterion) {
    let record = realistic_record();
    let mut group = c.benchmark_group("codec/encode");
    group.bench_function("workmill", |b| {
        b.iter(|| Postcard.encode(black_box(&record)))
    });
    group.bench_function("serde_json", |b| {
        b.iter(|| serde_json::to_vec(black_box(&record)))
    });
    #[cfg(feature = "bincode")]
    group.bench_function("bincode", |b| {
        b.iter(|| workmill_core::Bincode.encode(black_box(&record)))
    });
    group.finish();
}

fn decode(c: &mut Criterion) {
    let record = realistic_record();
    let postcard = Postcard.encode(&record).expect("a record encodes");
    let json = serde_json::to_vec(&record).expect("a record encodes");
    let mut group = c.benchmark_group("codec/decode");
    group.bench_function("workmill", |b| {
        b.iter(|| Postcard.decode::<TaskRecord>(black_box(&postcard)))
    });
    group.bench_function("serde_json", |b| {
        b.iter(|| serde_json::from_slice::<TaskRecord>(black_box(&json)))
    });
    #[cfg(feature = "bincode")]
    {
        let bincode = workmill_core::Bincode
            .encode(&record)
            .expect("a record encodes");
        group.bench_function("bincode", |b| {
            b.iter(|| workmill_core::Bincode.decode::<TaskRecord>(black_box(&bincode)))
        });
    }
    group.finish();
}

criterion_group!(benches, encode, decode);
criterion_main!(benches);
