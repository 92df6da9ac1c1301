//! Runs one template comparison a given number of times, for counting its instructions: the
//! criterion benchmark (`benches/compare.rs`) gives the time, which on a shared machine moves
//! with the load; the instruction count does not.
//!
//! ```text
//! cargo build --release -p palmgate-matcher --example compare_count
//! for n in 10000 20000; do
//!   valgrind --tool=callgrind --callgrind-out-file=/dev/null \
//!     target/release/examples/compare_count $n 2>&1 | grep Collected
//! done
//! ```
//!
//! The difference of the two counts over 10 000 is the instructions of one comparison.

use std::hint::black_box;
use std::process::ExitCode;

use palmgate_matcher::compare;

#[path = "../benches/support/mod.rs"]
mod support;
use support::pseudo_random_template;

fn main() -> ExitCode {
    let Some(Ok(count)) = std::env::args().nth(1).map(|a| a.parse::<u32>()) else {
        eprintln!("usage: compare_count COMPARISONS");
        return ExitCode::FAILURE;
    };
    let probe = pseudo_random_template(1);
    let reference = pseudo_random_template(2);
    let start = std::time::Instant::now();
    let mut mismatched = 0u32;
    for _ in 0..count {
        let result = compare(black_box(&probe), black_box(&reference)).expect("same algorithm");
        mismatched = mismatched.wrapping_add(result.mismatched_bits());
    }
    let elapsed = start.elapsed();
    println!(
        "{count} comparisons, {:.3} µs each (checksum {mismatched})",
        elapsed.as_secs_f64() * 1e6 / f64::from(count.max(1))
    );
    ExitCode::SUCCESS
}
