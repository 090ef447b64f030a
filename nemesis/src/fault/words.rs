//! A fault in words: how `--nemesis` writes one ([`Fault`]'s `Display`)
//! and reads one back (`FromStr`, [`parse_list`]), from the one name table
//! ([`super::KINDS`]).

use std::fmt;
use std::str::FromStr;

use super::*;

fn target_str(t: &Target) -> String {
    match t {
        Target::All => "all".into(),
        Target::Leader => "leader".into(),
        Target::RandomNode => "node".into(),
        Target::Minority => "minority".into(),
        Target::Majority => "majority".into(),
        Target::Follower => "follower".into(),
        Target::Node(id) => id.clone(),
    }
}

impl fmt::Display for Fault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let Some(kind) = self.kind() else {
            let Fault::Combined { parts, together } = self else {
                unreachable!("only a combination has no kind")
            };
            let names: Vec<String> = parts.iter().map(|p| p.to_string()).collect();
            return write!(f, "{}", names.join(if *together { "&" } else { "+" }));
        };
        let name = kind.name();
        match self.class() {
            Class::Partition(
                Shape::Bridge(Target::RandomNode) | Shape::Lag(Target::RandomNode),
            ) => {
                write!(f, "{name}")
            }
            Class::Partition(Shape::Bridge(t) | Shape::Lag(t)) => {
                write!(f, "{name}@{}", target_str(t))
            }
            Class::Message(Rule::Delay { ms, jitter_ms }, t) => {
                write!(f, "{name}:{ms}:{jitter_ms}@{}", target_str(t))
            }
            Class::Message(Rule::Loss(p) | Rule::Duplicate(p) | Rule::Reorder(p), t) => {
                write!(f, "{name}:{p}@{}", target_str(t))
            }
            Class::Process(Proc::Pause(t) | Proc::Crash(t))
                if matches!(
                    kind,
                    Kind::PauseLeader
                        | Kind::PauseMinority
                        | Kind::CrashLeader
                        | Kind::CrashMinority
                        | Kind::CrashAll
                ) =>
            {
                let _ = t;
                write!(f, "{name}")
            }
            Class::Process(Proc::Pause(t) | Proc::Crash(t)) => {
                write!(f, "{name}@{}", target_str(t))
            }
            Class::Process(Proc::Restart { every_ms, target }) => {
                write!(f, "{name}:{every_ms}@{}", target_str(target))
            }
            Class::Disk(DiskOp::Corrupt { truncate }, t) => {
                let how = if truncate { "truncate" } else { "bitflip" };
                write!(f, "{name}:{how}@{}", target_str(t))
            }
            Class::Disk(DiskOp::Slow(ms), t) => write!(f, "{name}:{ms}@{}", target_str(t)),
            Class::Disk(
                DiskOp::LoseUnsynced | DiskOp::Torn | DiskOp::Full | DiskOp::FsyncError,
                t,
            ) => write!(f, "{name}@{}", target_str(t)),
            Class::Partition(
                Shape::Isolate { .. } | Shape::Halves | Shape::Ring | Shape::OneWay { .. },
            )
            | Class::Figure8
            | Class::Membership { .. }
            | Class::Combined { .. } => write!(f, "{name}"),
        }
    }
}

impl FromStr for Fault {
    type Err = String;

    fn from_str(s: &str) -> Result<Fault, String> {
        let s = s.trim();
        let q = faultline_rundir::quote::quoted(s);
        if s.contains('+') && s.contains('&') {
            return Err(format!(
                "{q}: join parts with '+' (one after another) or '&' (all at once), not both"
            ));
        }
        if let Some(sep) = ['+', '&'].into_iter().find(|c| s.contains(*c)) {
            let parts = s
                .split(sep)
                .map(|p| {
                    if p.trim().is_empty() {
                        Err(format!("{q}: empty part around '{sep}'"))
                    } else {
                        p.parse::<Fault>()
                    }
                })
                .collect::<Result<Vec<_>, _>>()?;
            return Ok(Fault::Combined {
                parts,
                together: sep == '&',
            });
        }
        let (body, target) = match s.split_once('@') {
            Some((b, t)) => {
                let t = match t {
                    "all" => Target::All,
                    "leader" => Target::Leader,
                    "node" => Target::RandomNode,
                    "minority" => Target::Minority,
                    "majority" => Target::Majority,
                    "follower" => Target::Follower,
                    id if !id.is_empty() => Target::Node(id.to_string()),
                    _ => return Err(format!("{q}: empty target after @")),
                };
                (b, Some(t))
            }
            None => (s, None),
        };
        let mut parts = body.split(':');
        let name = parts.next().unwrap_or("");
        let args: Vec<&str> = parts.collect();
        let num = |i: usize, default: f64| -> Result<f64, String> {
            match args.get(i) {
                None => Ok(default),
                Some(a) => a.parse::<f64>().map_err(|_| {
                    format!(
                        "{q}: {} is not a number",
                        faultline_rundir::quote::quoted(a)
                    )
                }),
            }
        };
        let ms = |i: usize, default: u64| -> Result<u64, String> {
            match args.get(i) {
                None => Ok(default),
                Some(a) => a.trim_end_matches("ms").parse::<u64>().map_err(|_| {
                    format!(
                        "{q}: {} is not a whole number of milliseconds",
                        faultline_rundir::quote::quoted(a)
                    )
                }),
            }
        };
        let no_args = |f: Fault| -> Result<Fault, String> {
            if !args.is_empty() || target.is_some() {
                return Err(format!("{q}: {name} takes no parameters or target"));
            }
            Ok(f)
        };
        let node_target = |t: Option<Target>, d: Target| t.unwrap_or(d);
        let Some(kind) = Kind::from_name(name) else {
            return Err(format!(
                "unknown fault {} (known: {})",
                faultline_rundir::quote::quoted(name),
                KINDS.join(", ")
            ));
        };
        let fault = match kind {
            Kind::PartitionNode => no_args(Fault::PartitionNode)?,
            Kind::PartitionLeader => no_args(Fault::PartitionLeader)?,
            Kind::PartitionHalves => no_args(Fault::PartitionHalves)?,
            Kind::PartitionBridge if args.is_empty() => Fault::PartitionBridge {
                bridge: node_target(target, Target::RandomNode),
            },
            Kind::PartitionBridge => return Err(format!("{q}: partition-bridge takes no parameters")),
            Kind::PartitionRing => no_args(Fault::PartitionRing)?,
            Kind::OneWayIn => no_args(Fault::OneWayIn)?,
            Kind::OneWayOut => no_args(Fault::OneWayOut)?,
            Kind::Lag if args.is_empty() => Fault::Lag { target: node_target(target, Target::RandomNode) },
            Kind::Lag => return Err(format!("{q}: lag takes no parameters (the node's --snapshot-entries decides how far behind it falls)")),
            Kind::Loss => Fault::Loss { p: num(0, 0.2)?, target: node_target(target, Target::All) },
            Kind::Delay => Fault::Delay { ms: ms(0, 100)?, jitter_ms: ms(1, 50)?, target: node_target(target, Target::All) },
            Kind::Duplicate => Fault::Duplicate { p: num(0, 0.2)?, target: node_target(target, Target::All) },
            Kind::Reorder => Fault::Reorder { p: num(0, 0.3)?, target: node_target(target, Target::All) },
            Kind::Pause => Fault::Pause { target: node_target(target, Target::RandomNode) },
            Kind::PauseLeader => no_args(Fault::Pause { target: Target::Leader })?,
            Kind::PauseMinority => no_args(Fault::Pause { target: Target::Minority })?,
            Kind::Crash => Fault::Crash { target: node_target(target, Target::RandomNode) },
            Kind::CrashLeader => no_args(Fault::Crash { target: Target::Leader })?,
            Kind::CrashMinority => no_args(Fault::Crash { target: Target::Minority })?,
            Kind::CrashAll => no_args(Fault::Crash { target: Target::All })?,
            Kind::Restart if args.len() <= 1 => Fault::Restart { every_ms: ms(0, 500)?, target: node_target(target, Target::RandomNode) },
            Kind::Restart => return Err(format!("{q}: too many parameters")),
            Kind::Membership => no_args(Fault::Membership)?,
            Kind::MembershipSplit => no_args(Fault::MembershipSplit)?,
            Kind::LoseUnsynced if args.is_empty() => Fault::LoseUnsynced { target: node_target(target, Target::RandomNode) },
            Kind::TornWrite if args.is_empty() => Fault::TornWrite { target: node_target(target, Target::RandomNode) },
            Kind::DiskFull if args.is_empty() => Fault::DiskFull { target: node_target(target, Target::RandomNode) },
            Kind::FsyncError if args.is_empty() => Fault::FsyncError { target: node_target(target, Target::RandomNode) },
            Kind::LoseUnsynced | Kind::TornWrite | Kind::DiskFull | Kind::FsyncError => {
                return Err(format!("{q}: {name} takes no parameters, only a target (@leader, @follower, @nX, @minority, @majority, @all)"))
            }
            Kind::Corrupt if args.len() <= 1 => Fault::Corrupt {
                truncate: match args.first().copied() {
                    None | Some("bitflip") => false,
                    Some("truncate") => true,
                    Some(other) => return Err(format!("{q}: corrupt takes bitflip or truncate, not {}", faultline_rundir::quote::quoted(other))),
                },
                target: node_target(target, Target::RandomNode),
            },
            Kind::SlowDisk if args.len() <= 1 => Fault::SlowDisk { ms: ms(0, 200)?, target: node_target(target, Target::RandomNode) },
            Kind::Corrupt | Kind::SlowDisk => return Err(format!("{q}: too many parameters")),
            Kind::Figure8 if args.is_empty() && target.is_none() => Fault::Figure8,
            Kind::Figure8 => {
                return Err(format!(
                    "{q}: figure-8 takes no parameter and no target (message filters, not link delays, time its steps)"
                ))
            }
        };
        if matches!(
            fault,
            Fault::Loss { .. }
                | Fault::Delay { .. }
                | Fault::Duplicate { .. }
                | Fault::Reorder { .. }
        ) && args.len() > if kind == Kind::Delay { 2 } else { 1 }
        {
            return Err(format!("{q}: too many parameters"));
        }
        Ok(fault)
    }
}

/// Parse a comma-separated list of faults, validated for `n` nodes.
pub fn parse_list(list: &str, n: usize) -> Result<Vec<Fault>, String> {
    let faults: Vec<Fault> = list
        .split(',')
        .filter(|s| !s.trim().is_empty())
        .map(str::parse)
        .collect::<Result<_, _>>()?;
    for f in &faults {
        f.validate(n)?;
    }
    Ok(faults)
}
