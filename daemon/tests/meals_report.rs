//! `palmgate meals report` as a canteen operator runs it: the CSV, the summary, the receipts a
//! card counted that are missing from the events, and the exit status.

use std::process::Command;

use palmgate::event::{CardId, EventKind, MealRecord, NewEvent, Outcome, Timestamp};

/// Period `index` of 2026-12-07 (local days since 1970-01-01 × 16 + index).
const LUNCH: u32 = 20_794 * 16;

fn meal_line(id: u64, gate: &str, card: u8, period: u32, counter: u32) -> String {
    let event = NewEvent::new(EventKind::MealServed, Timestamp::from_unix_ms(0))
        .door("line-1")
        .card(CardId::new(&[card; 16]).expect("card"))
        .result(Outcome::Granted)
        .meal(MealRecord {
            period,
            period_name: Some("lunch".into()),
            group: Some("staff".into()),
            count: 1,
            allowance: 1,
            receipt: Some("ab".into()),
            receipt_counter: Some(counter),
            gate_time: Some(1),
        });
    String::from_utf8(event.into_event(id, gate).to_json()).expect("utf-8")
}

fn report(events: &str) -> std::process::Output {
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("events.jsonl");
    std::fs::write(&file, events).expect("events");
    Command::new(env!("CARGO_BIN_EXE_palmgate"))
        .args([
            "meals",
            "report",
            "--from",
            "2026-12-07",
            "--to",
            "2026-12-08",
            "--events",
        ])
        .arg(&file)
        .output()
        .expect("run palmgate")
}

#[test]
fn a_gap_in_a_cards_receipt_counters_is_a_warning_with_the_csv() {
    // Card 1 ate on the 7th (counter 3) and the 8th (counter 5): counter 4 never reached the
    // events. Card 2 has no gap.
    let events = [
        meal_line(1, "a", 1, LUNCH, 3),
        meal_line(2, "a", 2, LUNCH, 1),
        meal_line(3, "b", 1, LUNCH + 16, 5),
    ]
    .join("\n");
    let output = report(&events);
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stderr}");
    assert_eq!(stdout.lines().count(), 4, "header and three rows: {stdout}");
    let warnings: Vec<&str> = stderr
        .lines()
        .filter(|l| l.contains(": warning: "))
        .collect();
    assert_eq!(warnings.len(), 1, "{stderr}");
    assert!(
        warnings[0].contains(&format!(
            "card {}: receipt counter 4 is missing",
            "01".repeat(16)
        )) && warnings[0].contains("(2026-12-07)")
            && warnings[0].contains("(2026-12-08)"),
        "{stderr}"
    );
    assert!(
        stderr.ends_with(
            "3 meal(s) counted, 0 duplicate(s), 0 line(s) refused, 1 receipt(s) missing\n"
        ),
        "{stderr}"
    );

    // The missing receipt, recovered by a gate later: no warning.
    let events = format!("{events}\n{}", meal_line(4, "a", 1, LUNCH + 16, 4));
    let output = report(&events);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stderr}");
    assert!(!stderr.contains("warning"), "{stderr}");
    assert!(stderr.ends_with("0 receipt(s) missing\n"), "{stderr}");
}

#[test]
fn a_line_that_is_not_an_event_is_named_and_fails_the_run() {
    let events = format!("{}\n{{\"kind\":\n", meal_line(1, "a", 1, LUNCH, 1));
    let output = report(&events);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("line 2: not a palmgate event"), "{stderr}");
    assert!(stderr.contains("1 meal(s) counted"), "{stderr}");
}
