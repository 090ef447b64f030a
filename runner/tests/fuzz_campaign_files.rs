//! Campaign files come from users: arbitrary text, and the built-in presets
//! with bytes edited, parse to a campaign or to one error, and a campaign
//! that parses expands to runs or to one error — never a panic.

use faultline_runner::campaign::CampaignConfig;
use faultline_runner::presets::PRESETS;
use proptest::prelude::*;

fn parse_and_expand(text: &str) {
    if let Ok(c) = CampaignConfig::parse(text, "fuzz.toml") {
        let _ = c.runs();
    }
}

fn config() -> ProptestConfig {
    ProptestConfig {
        cases: 1000,
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn any_text_parses_or_fails(text in "[\\[\\]=\"a-z_0-9.,+:@&\\n -]{0,300}") {
        parse_and_expand(&text);
    }

    #[test]
    fn an_edited_preset_parses_or_fails(which in 0..PRESETS.len(), at in any::<prop::sample::Index>(), c in "[\\[\\]=\"a-z0-9.,+:@&\\n -]", op in 0..3u8) {
        let mut text: Vec<char> = PRESETS[which].text.chars().collect();
        let i = at.index(text.len());
        let ch = c.chars().next().unwrap_or(' ');
        match op {
            0 => text[i] = ch,
            1 => { text.remove(i); }
            _ => text.insert(i, ch),
        }
        parse_and_expand(&text.into_iter().collect::<String>());
    }

    #[test]
    fn numbers_in_a_campaign_are_checked(time_limit in any::<f64>(), interval in any::<f64>(), heartbeat in any::<u64>()) {
        let text = format!(
            "faults = [\"partition-leader\"]\n[run]\ntime_limit = {time_limit:?}\nfault_interval = {interval:?}\n[[setting]]\nname = \"s\"\nheartbeat = {heartbeat}\n"
        );
        // Whatever the numbers, a campaign that expands to runs has only
        // numbers within the documented bounds (docs/bad-input.md): finite,
        // above 0, at most a week, and a heartbeat of at least 1 ms below
        // the default election timeout's 150 ms.
        let expanded = CampaignConfig::parse(&text, "fuzz.toml").and_then(|c| c.runs());
        let week = 7.0 * 24.0 * 3600.0;
        let in_bounds = time_limit.is_finite()
            && interval.is_finite()
            && time_limit > 0.0
            && interval > 0.0
            && time_limit <= week
            && interval <= week
            && (1..150).contains(&heartbeat);
        if let Ok(runs) = expanded {
            prop_assert!(in_bounds, "accepted out of bounds: {text}");
            prop_assert_eq!(runs.len(), 1);
        }
    }
}

/// The property above is not vacuous: numbers within the bounds expand to
/// a run, and each bound refuses.
#[test]
fn numbers_within_the_bounds_are_accepted_and_past_them_refused() {
    let text = |t: &str, i: &str, h: &str| {
        format!(
            "faults = [\"partition-leader\"]\n[run]\ntime_limit = {t}\nfault_interval = {i}\n[[setting]]\nname = \"s\"\nheartbeat = {h}\n"
        )
    };
    let runs = |t: &str| CampaignConfig::parse(t, "t.toml").and_then(|c| c.runs());
    assert_eq!(runs(&text("20.0", "2.0", "50")).unwrap().len(), 1);
    for bad in [
        text("0.0", "2.0", "50"),
        text("20.0", "-1.0", "50"),
        text("inf", "2.0", "50"),
        text("1e9", "2.0", "50"),
        text("20.0", "2.0", "0"),
        text("20.0", "2.0", "400"),
    ] {
        assert!(runs(&bad).is_err(), "{bad}");
    }
}
