//! The nftables side of the kernel backend: the table every node's
//! namespace starts with, the rules a fault adds, and reading back the
//! rules and counters. Only text is built here; [`super::KernelNet`] runs
//! it with `nft -f -` inside the node's namespace.
//!
//! Each node's table `inet faultline` has two input chains: `faults`
//! (priority 0), where a fault's drop rules go, each tagged with the
//! fault's comment, and `count` (priority 10), which counts what got
//! through. Per peer `P` there are two named counters: `drop_P` (packets
//! from P that a fault dropped) and `seen_P` (packets from P let in).
//! Client traffic (from the controller's bridge address) matches no rule.

use std::net::IpAddr;

use serde_json::Value;

/// The table's name (family `inet`) in a run's own namespaces; on the
/// hosts of an inventory it carries the run's id ([`host_table`]).
pub const TABLE: &str = "faultline";

/// The table of run `run` on a host of an inventory.
pub fn host_table(run: &str) -> String {
    format!("{TABLE}_{run}")
}

/// `ip saddr A` or `ip6 saddr A`.
fn saddr(ip: IpAddr) -> String {
    match ip {
        IpAddr::V4(a) => format!("ip saddr {a}"),
        IpAddr::V6(a) => format!("ip6 saddr {a}"),
    }
}

/// The ruleset a node's namespace (or host) starts with, for these peers,
/// as table `table`.
pub fn base_ruleset(table: &str, peers: &[(String, IpAddr)]) -> String {
    let mut s = format!("table inet {table} {{\n");
    for (id, _) in peers {
        s.push_str(&format!(
            "  counter drop_{id} {{ }}\n  counter seen_{id} {{ }}\n"
        ));
    }
    s.push_str("  chain faults {\n    type filter hook input priority 0; policy accept;\n  }\n");
    s.push_str("  chain count {\n    type filter hook input priority 10; policy accept;\n");
    for (id, ip) in peers {
        s.push_str(&format!("    {} counter name \"seen_{id}\"\n", saddr(*ip)));
    }
    s.push_str("  }\n}\n");
    s
}

/// The comment that marks the rules of fault `tag`.
pub fn tag_comment(tag: u64) -> String {
    format!("fault-{tag}")
}

/// A rule that drops packets from peer `from` at `ip`: all of them, or
/// with probability `p` (nft `numgen random`, in steps of 1/10000).
pub fn drop_rule(table: &str, tag: u64, from: &str, ip: IpAddr, p: Option<f64>) -> String {
    let chance = match p {
        Some(p) if p < 1.0 => {
            let n = (p.clamp(0.0, 1.0) * 10_000.0).round() as u32;
            format!(" numgen random mod 10000 < {n}")
        }
        _ => String::new(),
    };
    format!(
        "add rule inet {table} faults {}{chance} counter name \"drop_{from}\" drop comment \"{}\"\n",
        saddr(ip),
        tag_comment(tag)
    )
}

/// The objects of `nft -j` output.
fn items(json: &str) -> Result<Vec<Value>, String> {
    let mut v: Value = serde_json::from_str(json).map_err(|e| format!("nft's JSON: {e}"))?;
    match v["nftables"].take() {
        Value::Array(items) => Ok(items),
        _ => Err("nft's JSON has no 'nftables' list".into()),
    }
}

/// The commands that delete the given rule handles of chain `faults`.
pub fn delete_rules(table: &str, handles: &[u64]) -> String {
    handles
        .iter()
        .map(|h| format!("delete rule inet {table} faults handle {h}\n"))
        .collect()
}

/// From `nft -j list chain inet faultline faults`: the handles of the
/// rules whose comment is `comment` (every fault rule when `None`).
pub fn rule_handles(json: &str, comment: Option<&str>) -> Result<Vec<u64>, String> {
    let items = items(json)?;
    Ok(items
        .iter()
        .filter_map(|i| i.get("rule"))
        .filter(|r| match comment {
            Some(c) => r["comment"].as_str() == Some(c),
            None => r["comment"]
                .as_str()
                .is_some_and(|c| c.starts_with("fault-")),
        })
        .filter_map(|r| r["handle"].as_u64())
        .collect())
}

/// From `nft -j list chain inet faultline faults`: every rule's comment.
pub fn rule_comments(json: &str) -> Result<Vec<String>, String> {
    let items = items(json)?;
    Ok(items
        .iter()
        .filter_map(|i| i.get("rule"))
        .map(|r| r["comment"].as_str().unwrap_or("").to_string())
        .collect())
}

/// One named counter: (name, packets, bytes).
pub type Counter = (String, u64, u64);

/// From `nft -j list counters table inet faultline`: every counter.
pub fn counters(json: &str) -> Result<Vec<Counter>, String> {
    let items = items(json)?;
    Ok(items
        .iter()
        .filter_map(|i| i.get("counter"))
        .filter_map(|c| {
            Some((
                c["name"].as_str()?.to_string(),
                c["packets"].as_u64().unwrap_or(0),
                c["bytes"].as_u64().unwrap_or(0),
            ))
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_base_table_counts_each_peer_and_has_an_empty_fault_chain() {
        let s = base_ruleset(TABLE, &[("n2".into(), "10.99.0.12".parse().unwrap())]);
        assert!(s.contains("counter drop_n2 { }"));
        assert!(s.contains("ip saddr 10.99.0.12 counter name \"seen_n2\""));
        assert!(s.contains(
            "chain faults {\n    type filter hook input priority 0; policy accept;\n  }"
        ));
    }

    #[test]
    fn drop_rules_are_tagged_and_loss_is_in_ten_thousandths() {
        let ip: IpAddr = "10.99.0.11".parse().unwrap();
        assert_eq!(
            drop_rule(TABLE, 7, "n1", ip, None),
            "add rule inet faultline faults ip saddr 10.99.0.11 counter name \"drop_n1\" drop comment \"fault-7\"\n"
        );
        assert!(drop_rule(TABLE, 7, "n1", ip, Some(0.2))
            .contains("numgen random mod 10000 < 2000 counter"));
        assert!(!drop_rule(TABLE, 7, "n1", ip, Some(1.0)).contains("numgen"));
        let t = host_table("r1");
        let v6 = drop_rule(&t, 1, "n2", "fd00::2".parse().unwrap(), None);
        assert!(
            v6.starts_with("add rule inet faultline_r1 faults ip6 saddr fd00::2 counter"),
            "{v6}"
        );
    }

    #[test]
    fn handles_and_counters_are_read_from_nfts_json() {
        let rules = r#"{"nftables": [{"metainfo": {"version": "1.0.6"}},
          {"chain": {"family": "inet", "table": "faultline", "name": "faults", "handle": 1}},
          {"rule": {"chain": "faults", "handle": 5, "comment": "fault-1", "expr": []}},
          {"rule": {"chain": "faults", "handle": 6, "comment": "fault-2", "expr": []}}]}"#;
        assert_eq!(rule_handles(rules, Some("fault-1")).unwrap(), vec![5]);
        assert_eq!(rule_handles(rules, None).unwrap(), vec![5, 6]);
        assert_eq!(
            delete_rules(TABLE, &[5]),
            "delete rule inet faultline faults handle 5\n"
        );
        let c = r#"{"nftables": [{"metainfo": {}}, {"counter": {"family": "inet", "name": "drop_n2", "table": "faultline", "handle": 2, "packets": 3, "bytes": 180}}]}"#;
        assert_eq!(counters(c).unwrap(), vec![("drop_n2".into(), 3, 180)]);
        assert!(counters("not json").unwrap_err().contains("nft's JSON"));
    }
}
