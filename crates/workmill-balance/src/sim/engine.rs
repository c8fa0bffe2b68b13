//! The event loop of the simulator: arrivals, dispatch, service, failures, retries and health, in virtual nanoseconds.

use std::cmp::Ordering;
use std::collections::{BinaryHeap, VecDeque};
use std::time::Duration;

use workmill_core::{BalanceError, Balancer, Candidate, Load, Outcome, Request};

use super::dist::{exponential, stream, work};
use super::report::{RunReport, quantile};
use super::{Arrivals, Dispatch, Scenario};
use crate::clock::ManualClock;
use crate::health::{Dispatch as Admission, HealthTracker};
use crate::metrics::WorkerMetrics;
use crate::strategy::ShortestExpectedDelay;

const NANOS_PER_SECOND: f64 = 1e9;

/// The shortest health-check interval the simulator ticks at (1 ms), whatever the scenario says.
const MIN_TICK: u64 = 1_000_000;

fn to_nanos(seconds: f64) -> u64 {
    (seconds * NANOS_PER_SECOND).round().max(0.0) as u64
}

fn to_seconds(nanos: u64) -> f64 {
    nanos as f64 / NANOS_PER_SECOND
}

struct TaskState {
    arrival: u64,
    work: f64,
    key: u64,
    attempts: u32,
    first_start: Option<u64>,
}

#[derive(Clone, Copy)]
struct Attempt {
    task: usize,
    dispatched_at: u64,
    admission: Admission,
}

struct WorkerSim {
    queue: VecDeque<Attempt>,
    running: usize,
    metrics: WorkerMetrics,
    busy_nanos: u128,
    failures: fastrand::Rng,
    idle_since: u64,
}

enum EventKind {
    Arrival,
    Done {
        worker: usize,
        attempt: Attempt,
        service: u64,
        success: bool,
    },
    Tick,
    SlowdownStarts,
    SlowdownEnds,
}

struct Event {
    at: u64,
    seq: u64,
    kind: EventKind,
}

impl PartialEq for Event {
    fn eq(&self, other: &Event) -> bool {
        (self.at, self.seq) == (other.at, other.seq)
    }
}
impl Eq for Event {}
impl PartialOrd for Event {
    fn partial_cmp(&self, other: &Event) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Event {
    /// Reversed, so that the max-heap pops the earliest event (ties in scheduling order).
    fn cmp(&self, other: &Event) -> Ordering {
        (other.at, other.seq).cmp(&(self.at, self.seq))
    }
}

enum Mode {
    Strategy(Box<dyn Balancer>),
    Oracle(ShortestExpectedDelay),
    Central(VecDeque<(usize, Option<usize>)>),
}

struct Engine<'a> {
    scenario: &'a Scenario,
    clock: &'a ManualClock,
    now: u64,
    seq: u64,
    events: BinaryHeap<Event>,
    tasks: Vec<TaskState>,
    workers: Vec<WorkerSim>,
    health: HealthTracker,
    mode: Mode,
    waiting: VecDeque<(usize, Option<usize>)>,
    candidates: Vec<Candidate>,
    slowed: bool,
    arrival_rng: fastrand::Rng,
    work_rng: fastrand::Rng,
    key_rng: fastrand::Rng,
    finished: usize,
    last_progress: u64,
    report: RunReport,
    latencies: Vec<f64>,
}

/// Runs `scenario` with `dispatch` deciding where tasks go, and reports what it measured.
///
/// `clock` is set to the virtual time before each event; give the same clock
/// to any strategy that reads time (such as [`PeakEwma`](crate::PeakEwma) and
/// [`Adaptive`](crate::Adaptive)).
/// Use a fresh clock per run: a clock never goes back.
pub fn simulate(scenario: &Scenario, dispatch: Dispatch, clock: &ManualClock) -> RunReport {
    let name = dispatch.name().to_owned();
    let mode = match dispatch {
        Dispatch::Balancer(_, balancer) => Mode::Strategy(balancer),
        Dispatch::Oracle => Mode::Oracle(
            ShortestExpectedDelay::with_rates(
                scenario
                    .workers
                    .iter()
                    .map(|w| w.slots as f64 / w.mean_service)
                    .collect(),
            )
            .discount_errors(false),
        ),
        Dispatch::CentralQueue => Mode::Central(VecDeque::new()),
    };
    let seed = scenario.seed;
    let mut engine = Engine {
        scenario,
        clock,
        now: 0,
        seq: 0,
        events: BinaryHeap::new(),
        tasks: Vec::with_capacity(scenario.arrivals.tasks()),
        workers: (0..scenario.workers.len())
            .map(|i| WorkerSim {
                queue: VecDeque::new(),
                running: 0,
                metrics: WorkerMetrics::new(scenario.windows),
                busy_nanos: 0,
                failures: stream(seed, 0x100 + i as u64),
                idle_since: 0,
            })
            .collect(),
        health: HealthTracker::new(scenario.health.clone(), scenario.workers.len())
            .seed(stream(seed, 4).u64(..)),
        mode,
        waiting: VecDeque::new(),
        candidates: Vec::with_capacity(scenario.workers.len()),
        slowed: false,
        arrival_rng: stream(seed, 1),
        work_rng: stream(seed, 2),
        key_rng: stream(seed, 3),
        finished: 0,
        last_progress: 0,
        report: empty_report(name, scenario.arrivals.tasks()),
        latencies: Vec::with_capacity(scenario.arrivals.tasks()),
    };
    engine.run();
    engine.finish()
}

fn empty_report(dispatcher: String, tasks: usize) -> RunReport {
    RunReport {
        dispatcher,
        tasks,
        completed: 0,
        out_of_retries: 0,
        attempts: 0,
        failed_attempts: 0,
        attempts_to_failing: 0,
        dispatch_waits: 0,
        ejections: 0,
        throughput: 0.0,
        p50: f64::NAN,
        p99: f64::NAN,
        p999: f64::NAN,
        mean_latency: f64::NAN,
        mean_wait: f64::NAN,
        makespan: 0.0,
        utilisation: 0.0,
        in_system_at_last_arrival: 0,
    }
}

impl Engine<'_> {
    fn schedule(&mut self, at: u64, kind: EventKind) {
        self.seq += 1;
        self.events.push(Event {
            at,
            seq: self.seq,
            kind,
        });
    }

    fn total(&self) -> usize {
        self.scenario.arrivals.tasks()
    }

    fn run(&mut self) {
        match self.scenario.arrivals {
            Arrivals::Poisson { .. } => {
                if self.total() > 0 {
                    let gap = self.next_gap();
                    self.schedule(gap, EventKind::Arrival);
                }
            }
            Arrivals::Batch { tasks } => {
                for _ in 0..tasks {
                    let task = self.new_task();
                    match &mut self.mode {
                        Mode::Central(queue) => queue.push_back((task, None)),
                        _ => self.waiting.push_back((task, None)),
                    }
                }
                self.report.in_system_at_last_arrival = tasks;
            }
        }
        if let Some(slow) = self.scenario.slowdown {
            self.schedule(to_nanos(slow.from), EventKind::SlowdownStarts);
            self.schedule(to_nanos(slow.until), EventKind::SlowdownEnds);
        }
        self.schedule(
            to_nanos(self.scenario.health.interval.as_secs_f64()),
            EventKind::Tick,
        );
        if matches!(self.mode, Mode::Central(_)) {
            self.pull_idle();
        } else {
            self.drain_waiting();
        }

        while let Some(event) = self.events.pop() {
            self.now = event.at;
            self.clock.set(Duration::from_nanos(self.now));
            match event.kind {
                EventKind::Arrival => self.on_arrival(),
                EventKind::Done {
                    worker,
                    attempt,
                    service,
                    success,
                } => self.on_done(worker, attempt, service, success),
                EventKind::Tick => self.on_tick(),
                EventKind::SlowdownStarts => self.set_slowed(true),
                EventKind::SlowdownEnds => self.set_slowed(false),
            }
        }
    }

    fn next_gap(&mut self) -> u64 {
        to_nanos(exponential(
            &mut self.arrival_rng,
            1.0 / self.scenario.arrival_rate(),
        ))
    }

    fn new_task(&mut self) -> usize {
        let keys = self.scenario.keys.max(1);
        self.tasks.push(TaskState {
            arrival: self.now,
            work: work(&mut self.work_rng, self.scenario.shape),
            key: self.key_rng.u64(..keys),
            attempts: 0,
            first_start: None,
        });
        self.tasks.len() - 1
    }

    fn on_arrival(&mut self) {
        let task = self.new_task();
        if self.tasks.len() < self.total() {
            // A load of zero draws an endless gap: the next arrival is at the end of time.
            let gap = self.next_gap();
            self.schedule(self.now.saturating_add(gap), EventKind::Arrival);
        } else {
            self.report.in_system_at_last_arrival = self.tasks.len() - self.finished - 1;
        }
        if let Mode::Central(queue) = &mut self.mode {
            queue.push_back((task, None));
            self.pull_idle();
        } else if !self.waiting.is_empty() || !self.try_dispatch(task, None) {
            self.report.dispatch_waits += 1;
            self.waiting.push_back((task, None));
        }
    }

    fn on_tick(&mut self) {
        self.health.tick(Duration::from_nanos(self.now));
        if matches!(self.mode, Mode::Central(_)) {
            self.pull_idle();
        } else {
            self.drain_waiting();
        }
        let idle = self.workers.iter().all(|w| w.running == 0);
        let stuck = idle
            && self.now.saturating_sub(self.last_progress)
                > to_nanos(self.scenario.health.max_ejection.as_secs_f64()).saturating_mul(2);
        if self.finished < self.total() && !stuck {
            // A zero interval (which `HealthConfig::validate` refuses, but the scenario's
            // field is public) would tick forever at one instant.
            let interval = to_nanos(self.scenario.health.interval.as_secs_f64()).max(MIN_TICK);
            self.schedule(self.now.saturating_add(interval), EventKind::Tick);
        }
    }

    fn set_slowed(&mut self, slowed: bool) {
        self.slowed = slowed;
        if let (Some(slow), Mode::Oracle(oracle)) = (self.scenario.slowdown, &mut self.mode) {
            let profile = &self.scenario.workers[slow.worker];
            let factor = if slowed { slow.factor } else { 1.0 };
            oracle.set_rate(
                slow.worker,
                profile.slots as f64 / (profile.mean_service * factor),
            );
        }
    }

    /// The load the dispatcher sees now, stale measurements forgotten as the pool forgets them.
    fn load_of(&self, worker: usize) -> Load {
        let now = Duration::from_nanos(self.now);
        let w = &self.workers[worker];
        Load {
            running: w.running,
            queued: w.queue.len(),
            capacity: if self.scenario.bounded_queues {
                self.scenario.workers[worker].capacity
            } else {
                0
            },
            mean_latency: w.metrics.mean_service(now),
            error_rate: w.metrics.error_rate(now),
        }
    }

    /// Offers a task to the strategy, as the pool does; false if no worker takes it.
    fn try_dispatch(&mut self, task: usize, excluded: Option<usize>) -> bool {
        let now = Duration::from_nanos(self.now);
        let mut candidates = std::mem::take(&mut self.candidates);
        candidates.clear();
        for (index, profile) in self.scenario.workers.iter().enumerate() {
            candidates.push(Candidate {
                index,
                load: self.load_of(index),
                healthy: self.health.admits(index, now),
                weight: profile.weight,
            });
        }
        let request = Request::keyed(self.tasks[task].key);
        let picked = self.pick(&mut candidates, &request, excluded);
        self.candidates = candidates;
        match picked {
            Ok(worker) if worker < self.workers.len() => {
                let load = self.load_of(worker);
                if load.is_saturated() {
                    return false;
                }
                self.assign(task, worker);
                true
            }
            _ => false,
        }
    }

    /// Picks as the pool does ([`HealthTracker::pick`]).
    fn pick(
        &mut self,
        candidates: &mut [Candidate],
        request: &Request,
        excluded: Option<usize>,
    ) -> Result<usize, BalanceError> {
        let balancer: &mut dyn Balancer = match &mut self.mode {
            Mode::Strategy(b) => b.as_mut(),
            Mode::Oracle(o) => o,
            Mode::Central(_) => return Err(BalanceError::NoWorkers),
        };
        self.health.pick(balancer, candidates, request, excluded)
    }

    fn assign(&mut self, task: usize, worker: usize) {
        let admission = self.health.on_dispatch(worker);
        // As the pool does at dispatch: the worker's measurements last while it has a job.
        self.workers[worker]
            .metrics
            .dispatch(Duration::from_nanos(self.now));
        self.tasks[task].attempts += 1;
        self.report.attempts += 1;
        if self.scenario.workers[worker].failure_rate > 0.0 {
            self.report.attempts_to_failing += 1;
        }
        self.workers[worker].queue.push_back(Attempt {
            task,
            dispatched_at: self.now,
            admission,
        });
        self.start_ready(worker);
    }

    fn start_ready(&mut self, worker: usize) {
        let profile = &self.scenario.workers[worker];
        while self.workers[worker].running < profile.slots {
            let Some(attempt) = self.workers[worker].queue.pop_front() else {
                break;
            };
            let slowdown = match self.scenario.slowdown {
                Some(slow) if self.slowed && slow.worker == worker => slow.factor,
                _ => 1.0,
            };
            let task = &mut self.tasks[attempt.task];
            task.first_start.get_or_insert(self.now);
            let service = to_nanos(task.work * profile.mean_service * slowdown).max(1);
            let w = &mut self.workers[worker];
            let success = w.failures.f64() >= profile.failure_rate;
            w.running += 1;
            w.busy_nanos += u128::from(service);
            self.schedule(
                self.now.saturating_add(service),
                EventKind::Done {
                    worker,
                    attempt,
                    service,
                    success,
                },
            );
        }
    }

    /// Central queue: each idle admitted worker, longest idle first, pulls the
    /// first task it did not just fail.
    fn pull_idle(&mut self) {
        let now = Duration::from_nanos(self.now);
        let mut idle: Vec<usize> = (0..self.workers.len())
            .filter(|&i| self.workers[i].running < self.scenario.workers[i].slots)
            .collect();
        idle.sort_by_key(|&i| self.workers[i].idle_since);
        for worker in idle {
            while self.workers[worker].running < self.scenario.workers[worker].slots {
                let Mode::Central(queue) = &mut self.mode else {
                    return;
                };
                let Some(position) = queue.iter().position(|&(_, ex)| ex != Some(worker)) else {
                    break;
                };
                if !self.health.admits(worker, now) {
                    break;
                }
                let Some((task, _)) = queue.remove(position) else {
                    break;
                };
                self.assign(task, worker);
            }
        }
    }

    fn drain_waiting(&mut self) {
        while let Some(&(task, excluded)) = self.waiting.front() {
            if !self.try_dispatch(task, excluded) {
                break;
            }
            self.waiting.pop_front();
        }
    }

    fn on_done(&mut self, worker: usize, attempt: Attempt, service: u64, success: bool) {
        self.last_progress = self.now;
        let w = &mut self.workers[worker];
        w.running -= 1;
        if w.running == 0 {
            w.idle_since = self.now;
        }
        let now = Duration::from_nanos(self.now);
        w.metrics
            .record(Duration::from_nanos(service), success, now);
        if self.health.record(worker, attempt.admission, success, now) {
            self.report.ejections += 1;
        }
        let outcome = Outcome {
            worker,
            latency: Duration::from_nanos(self.now - attempt.dispatched_at),
            success,
        };
        match &mut self.mode {
            Mode::Strategy(b) => b.observe(&outcome),
            Mode::Oracle(o) => o.observe(&outcome),
            Mode::Central(_) => {}
        }

        let task = attempt.task;
        if success {
            self.finished += 1;
            self.report.completed += 1;
            self.latencies
                .push(to_seconds(self.now - self.tasks[task].arrival));
        } else {
            self.report.failed_attempts += 1;
            if self.tasks[task].attempts < self.scenario.max_attempts {
                match &mut self.mode {
                    Mode::Central(queue) => queue.push_front((task, Some(worker))),
                    _ => {
                        if !self.try_dispatch(task, Some(worker)) {
                            self.report.dispatch_waits += 1;
                            self.waiting.push_front((task, Some(worker)));
                        }
                    }
                }
            } else {
                self.finished += 1;
                self.report.out_of_retries += 1;
            }
        }
        if matches!(self.mode, Mode::Central(_)) {
            self.pull_idle();
        } else {
            self.start_ready(worker);
            self.drain_waiting();
        }
        self.report.makespan = to_seconds(self.now);
    }

    fn finish(mut self) -> RunReport {
        let mut report = self.report;
        self.latencies.sort_by(f64::total_cmp);
        let latencies = &self.latencies;
        if !latencies.is_empty() {
            report.p50 = quantile(latencies, 0.5);
            report.p99 = quantile(latencies, 0.99);
            report.p999 = quantile(latencies, 0.999);
            report.mean_latency = latencies.iter().sum::<f64>() / latencies.len() as f64;
        }
        let waits: Vec<f64> = self
            .tasks
            .iter()
            .filter_map(|t| t.first_start.map(|s| to_seconds(s - t.arrival)))
            .collect();
        if !waits.is_empty() {
            report.mean_wait = waits.iter().sum::<f64>() / waits.len() as f64;
        }
        let first_arrival = self.tasks.first().map_or(0.0, |t| to_seconds(t.arrival));
        let span = report.makespan - first_arrival;
        if span > 0.0 {
            report.throughput = report.completed as f64 / span;
        }
        let slot_time: f64 = self
            .scenario
            .workers
            .iter()
            .map(|w| w.slots as f64)
            .sum::<f64>()
            * report.makespan;
        if slot_time > 0.0 {
            let busy: u128 = self.workers.iter().map(|w| w.busy_nanos).sum();
            report.utilisation = busy as f64 / NANOS_PER_SECOND / slot_time;
        }
        report
    }
}
