//! The built-in campaigns, kept as TOML files under `runner/presets/` (the
//! same format as a user's campaign file) and compiled in.

use crate::campaign::CampaignConfig;

/// One built-in campaign.
#[derive(Clone, Copy, Debug)]
pub struct Preset {
    /// Its name, as `faultline campaign --preset NAME` takes it.
    pub name: &'static str,
    /// What it is for, in one line.
    pub about: &'static str,
    /// Its TOML text.
    pub text: &'static str,
}

/// Every built-in campaign.
pub const PRESETS: &[Preset] = &[
    Preset {
        name: "demo",
        about: "three timeout settings under leader isolation, leader pause and 20 % message loss (a few minutes)",
        text: include_str!("../presets/demo.toml"),
    },
    Preset {
        name: "bug-hunt",
        about: "every known-bug variant under the faults that expose it, and the correct node under the same, 5 repeats (about 20 minutes)",
        text: include_str!("../presets/bug-hunt.toml"),
    },
    Preset {
        name: "bug-hunt-ci",
        about: "the short bug hunt CI runs: the cheapest exposures, and the correct node",
        text: include_str!("../presets/bug-hunt-ci.toml"),
    },
    Preset {
        name: "membership",
        about: "membership changes under partitions, crashes and pauses (about 5 minutes)",
        text: include_str!("../presets/membership.toml"),
    },
    Preset {
        name: "net-compare",
        about: "partition-leader and 20 % loss on both network backends, proxy and kernel, 3 repeats (about 5 minutes; needs root, ip and nft)",
        text: include_str!("../presets/net-compare.toml"),
    },
    Preset {
        name: "append",
        about: "list-append transactions (two keys each) on faultline's node and etcd under the demo's faults, strict serializable, with the node's stale-read variant and etcd's serializable reads as positive controls (about 4 minutes; etcd's settings need etcd, root, ip and nft)",
        text: include_str!("../presets/append.toml"),
    },
    Preset {
        name: "locks",
        about: "locks with leases on faultline's node and etcd, unfenced and fenced, under pause-leader, the holders' client pauses, partition-leader and delay: unfenced caught under client pauses (the positive control), fenced safe under all (about 6 minutes; etcd's settings need etcd, root, ip and nft)",
        text: include_str!("../presets/locks.toml"),
    },
    Preset {
        name: "etcd",
        about: "etcd: its default timeouts, faster and slower, under partition-leader, pause-leader, crash-leader and 20 % loss, and serializable reads as the positive control (about 7 minutes; needs etcd, root, ip and nft)",
        text: include_str!("../presets/etcd.toml"),
    },
    Preset {
        name: "disk",
        about: "faultline's node under every disk fault, and the disk-only bug variants as controls: ack-before-fsync, ignore-fsync-error, no-dir-fsync (the last under all three disk models) (about 7 minutes; needs root and fuse3)",
        text: include_str!("../presets/disk.toml"),
    },
    Preset {
        name: "slow-disk",
        about: "three timeout settings under fsyncs 200 ms slower on the leader, and on a majority (about 3 minutes; needs root and fuse3)",
        text: include_str!("../presets/slow-disk.toml"),
    },
    Preset {
        name: "etcd-disk",
        about: "etcd under power losses (of one member, a majority, all), torn writes and corruption, each under the posix and journaled disk models (about 7 minutes; needs etcd, root and fuse3)",
        text: include_str!("../presets/etcd-disk.toml"),
    },
    Preset {
        name: "nats",
        about: "NATS JetStream (its KV store) under leader isolation, pause, crash and packet loss, with and without compare-and-set, and direct reads as the positive control (about 6 minutes; needs nats-server, root, ip and nft)",
        text: include_str!("../presets/nats.toml"),
    },
    Preset {
        name: "nats-disk",
        about: "NATS JetStream under a power loss of every member 65 s in (posix and names-durable), one member's power loss with a paused or isolated leader, and damage to a minority's files: the shapes of the published NATS findings (about 9 minutes; needs nats-server, root, fuse3, ip and nft)",
        text: include_str!("../presets/nats-disk.toml"),
    },
    Preset {
        name: "figure-16",
        about: "the Raft paper's Figure 16 on real processes: time to elect a new leader after the leader crashed, 100 trials per election timeout range (about 40 minutes)",
        text: include_str!("../presets/figure-16.toml"),
    },
    Preset {
        name: "figure-16-quick",
        about: "the same with 3 trials per range (about 2 minutes)",
        text: include_str!("../presets/figure-16-quick.toml"),
    },
];

/// The names of every preset, comma-separated (for messages).
pub fn names() -> String {
    PRESETS
        .iter()
        .map(|p| p.name)
        .collect::<Vec<_>>()
        .join(", ")
}

/// The preset `name`, parsed.
pub fn load(name: &str) -> anyhow::Result<CampaignConfig> {
    let preset = PRESETS.iter().find(|p| p.name == name).ok_or_else(|| {
        anyhow::anyhow!(
            "unknown preset {} (known: {})",
            crate::store::shown(name),
            names()
        )
    })?;
    CampaignConfig::parse(preset.text, &format!("preset {name}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every fault window is one sample of the comparison: the demo gives
    /// each (setting, fault) cell at least six.
    #[test]
    fn the_demo_gathers_six_windows_per_cell() {
        let demo = load("demo").unwrap();
        let mut per_cell: std::collections::BTreeMap<(String, String), usize> = Default::default();
        for r in demo.runs().unwrap() {
            let windows =
                faultline_nemesis::schedule::plan(&r.plan.schedule, r.plan.time_limit).len();
            *per_cell
                .entry((r.plan.stored.setting.clone(), r.fault.clone()))
                .or_default() += windows;
        }
        assert_eq!(per_cell.len(), 9);
        for (cell, n) in per_cell {
            assert!(n >= 6, "{cell:?} gets {n} windows");
        }
    }

    #[test]
    fn every_preset_parses_and_validates() {
        for p in PRESETS {
            let c = load(p.name).unwrap_or_else(|e| panic!("{}: {e:#}", p.name));
            assert_eq!(c.name.as_deref(), Some(p.name), "a preset names itself");
            let runs = c.runs().unwrap_or_else(|e| panic!("{}: {e:#}", p.name));
            assert!(!runs.is_empty(), "{}", p.name);
        }
        assert!(load("no-such-preset")
            .unwrap_err()
            .to_string()
            .contains("known: demo"));
    }
}
