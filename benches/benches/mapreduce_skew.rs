//! Group `mapreduce`, items of skewed cost: 2,000 items whose cost grows as i², mapped and
//! reduced by workmill (adaptive and per-worker chunking) against rayon and a sequential loop,
//! interleaved round by round (`interleaved`), each timed inside its pool.

use std::hint::black_box;

use rayon::prelude::*;
use workmill_benches::executor::{pools, skewed_work, timed};
use workmill_benches::interleaved::{self, Contender};
use workmill_mapreduce::{Chunking, MapReduce};

const ITEMS: u64 = 2_000;

fn main() {
    let (ours, theirs) = pools();
    let expected = (0..ITEMS).map(skewed_work).fold(0, |a, b| a ^ b);
    let workmill = |chunking| {
        let run = MapReduce::new().chunking(chunking);
        let ours = &ours;
        move || {
            ours.install(|| {
                timed(1, || {
                    let x = run.map_reduce(0..black_box(ITEMS), skewed_work, |a, b| a ^ b);
                    assert_eq!(x, Some(expected));
                })
            })
        }
    };
    interleaved::run_cases(
        "mapreduce_skew",
        "mapreduce",
        vec![(
            "skew2000",
            Box::new(|settings| {
                interleaved::measure(
                    settings,
                    "mapreduce",
                    "skew2000",
                    vec![
                        Contender::new("workmill", workmill(Chunking::Adaptive)),
                        Contender::new("workmill-per_worker", workmill(Chunking::PER_WORKER)),
                        Contender::new("rayon", || {
                            theirs.install(|| {
                                timed(1, || {
                                    let x = (0..black_box(ITEMS))
                                        .into_par_iter()
                                        .map(skewed_work)
                                        .reduce(|| 0, |a, b| a ^ b);
                                    assert_eq!(x, expected);
                                })
                            })
                        }),
                        Contender::new("sequential", || {
                            timed(1, || {
                                let x =
                                    (0..black_box(ITEMS)).map(skewed_work).fold(0, |a, b| a ^ b);
                                assert_eq!(x, expected);
                            })
                        }),
                    ],
                )
            }),
        )],
    );
}
