//! Group `balance`: runs the simulator's standard suite, writes its table beside the summary
//! (`balance-sim.md`) and adds the default strategy's p99 over the oracle's, and its batch
//! makespan over the lower bound, as summary rows (`rows/balance.json`).

use std::fmt::Write as _;
use std::fs;

use serde_json::{Value, json};
use workmill_balance::sim::{Suite, standard_scenarios, standard_strategies};
use workmill_benches::interleaved::Settings;
use workmill_benches::{out_dir, quick};

fn main() {
    // The flags `cargo bench` hands every bench: only the filter matters here. A filter that
    // does not select the simulator's cases (`balance/sim/...`) skips it, as it skips the
    // other benches' cases, so that its rows do not fill a summary asked of other cases.
    let settings = match Settings::from_args(std::env::args().skip(1)) {
        Ok(settings) => settings,
        Err(message) => {
            eprintln!("balance_sim: {message}");
            std::process::exit(2);
        }
    };
    if !settings.selects("balance", "sim") {
        eprintln!(
            "balance_sim: the filter {:?} selects none of this bench's cases (balance/sim/...)",
            settings.filter.as_deref().unwrap_or_default()
        );
        return;
    }
    let tasks = if quick() { 20_000 } else { 50_000 };
    let seed = 2026;
    let started = std::time::Instant::now();
    let suite = Suite::run(&standard_scenarios(tasks, seed));
    let elapsed = started.elapsed();
    let default = standard_strategies()[0].0;

    let mut table = String::new();
    let _ = writeln!(
        table,
        "# Balance simulator\n\nThe seed's profile (2 fast at 0.2 s, 3 medium at 0.5 s, 2 slow at 1.0 s, 1 unreliable at \
         0.3 s failing 30%), {tasks} tasks per Poisson run ({} in the batch), seed {seed}, virtual time; \
         every dispatcher under the pool's default health tracking and 3 attempts per task. \
         Latencies are from arrival to success, in virtual seconds. The default strategy is the `Pool`'s: `{default}`. \
         The suite took {:.1} s of real time.",
        (tasks / 5).max(1),
        elapsed.as_secs_f64()
    );
    table.push_str(&suite.markdown());

    let mut rows: Vec<Value> = Vec::new();
    for row in suite.rows.iter().filter(|r| r.report.dispatcher == default) {
        if row.batch {
            rows.push(json!({
                "group": "balance",
                "case": format!("sim/{}/makespan", row.scenario),
                "workmill_ns": row.report.makespan * 1e9,
                "baseline": "bound N/capacity",
                "baseline_ns": row.makespan_bound * 1e9,
                "ratio": row.makespan_vs_bound(),
                "unit": "ns (virtual makespan)",
            }));
        } else {
            rows.push(json!({
                "group": "balance",
                "case": format!("sim/{}/p99", row.scenario),
                "workmill_ns": row.report.p99 * 1e9,
                "baseline": "oracle SED (true rates)",
                "baseline_ns": row.oracle_p99 * 1e9,
                "ratio": row.p99_vs_oracle(),
                "unit": "ns (virtual p99)",
            }));
        }
    }

    let out = out_dir();
    let rows_dir = out.join("rows");
    fs::create_dir_all(&rows_dir).expect("the bench output directory can be created");
    fs::write(out.join("balance-sim.md"), &table).expect("balance-sim.md can be written");
    let json = serde_json::to_string_pretty(&Value::Array(rows)).expect("rows serialize");
    fs::write(rows_dir.join("balance.json"), json + "\n")
        .expect("rows/balance.json can be written");
    println!("{table}");
    println!("wrote {}", out.join("balance-sim.md").display());
}
