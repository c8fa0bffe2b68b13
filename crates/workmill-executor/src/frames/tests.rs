//! Tests of the join frames: which frames are shared, owner versus thief claims, and a loom check of the join latch.

use super::*;
use crate::job::StackJob;
use crate::latch::SpinLatch;
use crate::registry::Registry;
use crate::sync::{Arc, AtomicUsize, Ordering, thread};

#[cfg(not(workmill_loom))]
mod std_tests {
    use super::*;

    fn header(n: usize) -> *const JobHeader {
        // Distinct fake addresses; these tests never execute the frames.
        ptr::without_provenance(n * 64)
    }

    /// Claims the oldest shared frame as a thief does, without running it (the headers are fake).
    fn claim(shared: &SharedFrames) -> Option<*const JobHeader> {
        shared.slots.iter().find_map(|slot| {
            let header = slot.swap(ptr::null_mut(), Ordering::AcqRel);
            (!header.is_null()).then_some(header.cast_const())
        })
    }

    #[test]
    fn only_the_oldest_unclaimed_frame_is_shared() {
        let shared = SharedFrames::new();
        // SAFETY: `shared` outlives `frames`; the fake headers are never dereferenced.
        let frames = unsafe { LocalFrames::new(&shared) };
        for n in 1..=3 {
            // SAFETY: see above.
            let pushed = unsafe { frames.push(header(n)) };
            let expected = if n == 1 {
                Pushed::Fresh
            } else {
                Pushed::Private
            };
            assert_eq!(pushed, Some(expected), "no demand yet");
        }
        assert_eq!(frames.depth(), 3);
        assert_eq!(shared.live(), 1, "one shared frame per worker");
        assert_eq!(shared.shared_count.load(Ordering::Relaxed), 1);
        // The youngest two are private: popped inline without any claim.
        assert_eq!(frames.pop(), Popped::Inline);
        assert_eq!(frames.pop(), Popped::Inline);
        assert_eq!(shared.live(), 1);
        // The oldest is shared and unclaimed: the owner takes it back.
        assert_eq!(frames.pop(), Popped::Inline);
        assert_eq!(shared.live(), 0);
        assert_eq!(frames.depth(), 0);
    }

    #[test]
    fn a_claimed_frame_is_replaced_by_the_next_oldest_private_one() {
        let shared = SharedFrames::new();
        // SAFETY: `shared` outlives `frames`; headers are never dereferenced here.
        let frames = unsafe { LocalFrames::new(&shared) };
        // SAFETY: see above.
        unsafe { frames.push(header(1)) }.unwrap();
        // A thief claims frame 0 (without running it: the pointer is fake).
        let claimed = shared.slots[0].swap(ptr::null_mut(), Ordering::AcqRel);
        assert_eq!(claimed.cast_const(), header(1));
        // SAFETY: see above.
        let pushed = unsafe { frames.push(header(2)) };
        assert_eq!(pushed, Some(Pushed::Replacement), "a replacement is demand");
        assert_eq!(shared.live(), 1, "the new frame replaced the claimed one");
        // SAFETY: see above.
        unsafe { frames.push(header(3)) }.unwrap();
        assert_eq!(shared.live(), 1);
        assert_eq!(frames.pop(), Popped::Inline);
        assert_eq!(frames.pop(), Popped::Inline);
        assert_eq!(
            frames.pop(),
            Popped::Claimed,
            "the owner learns that frame 0 was taken"
        );
    }

    #[test]
    fn after_a_claim_every_pending_frame_is_offered() {
        let shared = SharedFrames::new();
        // SAFETY: as above.
        let frames = unsafe { LocalFrames::new(&shared) };
        for n in 1..=3 {
            // SAFETY: as above.
            unsafe { frames.push(header(n)) }.unwrap();
        }
        assert_eq!(
            shared.live(),
            1,
            "no demand yet: only the oldest is offered"
        );
        assert_eq!(claim(&shared), Some(header(1)));
        // SAFETY: as above.
        let pushed = unsafe { frames.push(header(4)) };
        assert_eq!(pushed, Some(Pushed::Replacement));
        assert_eq!(
            shared.live(),
            3,
            "a thief came: frames 2, 3 and the new 4 are all offered"
        );
        // A thief that comes back finds the next oldest at once.
        assert_eq!(claim(&shared), Some(header(2)));
        // SAFETY: as above.
        let pushed = unsafe { frames.push(header(5)) };
        assert_eq!(
            pushed,
            Some(Pushed::Private),
            "frames are still on offer: no new demand"
        );
        assert_eq!(frames.pop(), Popped::Inline, "frame 5 was private");
        assert_eq!(
            frames.pop(),
            Popped::Inline,
            "frame 4 was shared, unclaimed"
        );
        assert_eq!(
            frames.pop(),
            Popped::Inline,
            "frame 3 was shared, unclaimed"
        );
        assert_eq!(frames.pop(), Popped::Claimed, "frame 2 was taken");
        assert_eq!(frames.pop(), Popped::Claimed, "frame 1 was taken");
        assert_eq!(shared.live(), 0);
    }

    #[test]
    fn a_last_look_claims_an_offer_that_stands_and_not_one_taken_back() {
        use crate::worker::{FRAME_PATIENCE, ripens_or_goes};
        use std::time::Instant;
        let shared = SharedFrames::new();
        assert!(!ripens_or_goes(&shared), "nothing offered");
        // SAFETY: as above.
        let frames = unsafe { LocalFrames::new(&shared) };
        // SAFETY: as above.
        unsafe { frames.push(header(1)) }.unwrap();
        let start = Instant::now();
        assert!(ripens_or_goes(&shared), "an offer that stands ripens");
        assert!(
            start.elapsed() >= FRAME_PATIENCE,
            "but only after the patience"
        );
        assert_eq!(frames.pop(), Popped::Inline, "taken back by its owner");
        assert!(!ripens_or_goes(&shared), "an offer taken back is gone");
    }

    #[test]
    fn share_all_exposes_every_private_frame_oldest_first() {
        let shared = SharedFrames::new();
        // SAFETY: as above.
        let frames = unsafe { LocalFrames::new(&shared) };
        for n in 1..=4 {
            // SAFETY: as above.
            unsafe { frames.push(header(n)) }.unwrap();
        }
        frames.share_all();
        assert_eq!(shared.live(), 4);
        for _ in 0..4 {
            assert_eq!(frames.pop(), Popped::Inline);
        }
        assert_eq!(shared.live(), 0);
    }

    #[test]
    fn a_full_frame_stack_refuses_more() {
        let shared = SharedFrames::new();
        // SAFETY: as above.
        let frames = unsafe { LocalFrames::new(&shared) };
        for n in 0..CAPACITY {
            // SAFETY: as above.
            assert!(unsafe { frames.push(header(n + 1)) }.is_some());
        }
        // SAFETY: as above.
        assert!(unsafe { frames.push(header(CAPACITY + 1)) }.is_none());
        for _ in 0..CAPACITY {
            frames.pop();
        }
        assert_eq!(frames.depth(), 0);
    }
}

/// The owner of a join and a thief race for its second closure; the owner
/// then waits on the job's latch, possibly asleep. Exactly one of them runs
/// the closure, the owner always gets its result, and no wake-up is lost.
fn race_owner_and_thief(registry: Arc<Registry>) {
    let runs = Arc::new(AtomicUsize::new(0));
    let job_runs = Arc::clone(&runs);
    let job = StackJob::new(
        move |_migrated| {
            job_runs.fetch_add(1, Ordering::Relaxed);
            42
        },
        SpinLatch::new(&registry, 0),
    );
    // SAFETY: the registry outlives the frames; `job` outlives its frame.
    let frames = unsafe { LocalFrames::new(&registry.thread_infos[0].frames) };
    // SAFETY: `job` stays in place until popped, or until its latch is set.
    unsafe { frames.push(job.header()) }.unwrap();
    let thief = {
        let registry = Arc::clone(&registry);
        thread::spawn(move || {
            if let Some(stolen) = registry.thread_infos[0].frames.steal() {
                // SAFETY: the claim made the job ours to run, once.
                unsafe { stolen.execute() };
            }
        })
    };
    let result = match frames.pop() {
        Popped::Inline => job.run_inline(false),
        Popped::Claimed => {
            let sleep = &registry.sleep;
            let mut idle = sleep.start_looking(0);
            while !job.latch.core.probe() {
                sleep.no_work_found(&mut idle, &job.latch.core);
            }
            // SAFETY: the latch is set.
            unsafe { job.into_result() }
        }
    };
    assert_eq!(result, 42);
    thief.join().unwrap();
    assert_eq!(
        runs.load(Ordering::Relaxed),
        1,
        "the closure ran exactly once"
    );
}

#[cfg(not(workmill_loom))]
#[test]
fn an_owner_and_a_thief_never_both_run_a_frame() {
    let registry = Registry::for_test(2);
    let rounds = if cfg!(miri) { 20 } else { 2_000 };
    for _ in 0..rounds {
        race_owner_and_thief(Arc::clone(&registry));
    }
}

#[cfg(workmill_loom)]
#[test]
fn loom_join_latch() {
    loom::model(|| race_owner_and_thief(Registry::for_test(2)));
}
