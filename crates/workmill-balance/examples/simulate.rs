//! Runs the simulator's standard suite and prints its table: `cargo run --release --example simulate [TASKS] [SEED]`.

use workmill_balance::sim::{Suite, standard_scenarios};

fn main() {
    let mut args = std::env::args().skip(1);
    let tasks = args.next().and_then(|a| a.parse().ok()).unwrap_or(50_000);
    let seed = args.next().and_then(|a| a.parse().ok()).unwrap_or(2026);
    let suite = Suite::run(&standard_scenarios(tasks, seed));
    println!("{}", suite.markdown());
}
