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
        parse_and_expand(&text);
    }
}
