//! The inventory file (`hosts.toml`, `workers.toml`): the hosts faultline
//! may reach over SSH, and nothing else. `docs/campaigns.md` (workers)
//! describes the format:
//!
//! ```toml
//! [[host]]
//! name = "w1"                  # how faultline names it in output and pages
//! ssh = "root@192.0.2.11"      # ssh's destination: [user@]address, or a Host of your ssh config
//! port = 22                    # optional (ssh -p)
//! identity = "~/.ssh/id_ed25519"  # optional (ssh -i; only this key is offered)
//! ssh_config = "ssh_config"    # optional (ssh -F): a config file instead of ~/.ssh/config
//! known_hosts = "known_hosts"  # optional: a known-hosts file instead of ~/.ssh/known_hosts
//! dir = "/var/tmp/faultline"   # optional: the working directory on the host
//! address = "192.0.2.11"       # for --hosts: the address its peers and the clients use
//! peer_port = 7000             # optional (--hosts): the member's peer port
//! client_port = 7001           # optional (--hosts): the member's client port
//! ```
//!
//! Relative paths of files on this machine are relative to the inventory
//! file's directory; `dir` is on the host (relative: to the login's home).

use std::path::{Path, PathBuf};

use serde::Deserialize;

/// The working directory on a host when the inventory names none
/// (relative to the login's home directory).
pub const DEFAULT_DIR: &str = "faultline-work";

/// The most hosts one inventory may list.
pub const MAX_HOSTS: usize = 256;

/// One host of the inventory, as faultline uses it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Host {
    /// Its name in output and pages.
    pub name: String,
    /// ssh's destination: `[user@]address` or a `Host` of the ssh config.
    pub ssh: String,
    /// ssh's port, if not the config's.
    pub port: Option<u16>,
    /// The only key ssh offers, if given.
    pub identity: Option<PathBuf>,
    /// The ssh config file used instead of the user's, if given.
    pub ssh_config: Option<PathBuf>,
    /// The known-hosts file used instead of the user's, if given.
    pub known_hosts: Option<PathBuf>,
    /// The working directory on the host.
    pub dir: String,
    /// The address its peers and the clients reach its member at
    /// (`--hosts`; workers need none).
    pub address: Option<std::net::IpAddr>,
    /// The member's peer port (`--hosts`).
    pub peer_port: u16,
    /// The member's client port (`--hosts`).
    pub client_port: u16,
}

/// A member's peer port when the inventory names none.
pub const DEFAULT_PEER_PORT: u16 = 7000;
/// A member's client port when the inventory names none.
pub const DEFAULT_CLIENT_PORT: u16 = 7001;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    #[serde(default)]
    host: Vec<Entry>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Entry {
    name: String,
    ssh: String,
    port: Option<u16>,
    identity: Option<PathBuf>,
    ssh_config: Option<PathBuf>,
    known_hosts: Option<PathBuf>,
    dir: Option<String>,
    address: Option<String>,
    peer_port: Option<u16>,
    client_port: Option<u16>,
}

/// Read an inventory file; every error names the file (and the host).
pub fn load(path: &Path) -> anyhow::Result<Vec<Host>> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| anyhow::anyhow!("cannot read the inventory {}: {e}", path.display()))?;
    let base = path.parent().unwrap_or(Path::new("."));
    parse(&text, base).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))
}

/// Parse an inventory's text; relative local paths are taken from `base`.
pub fn parse(text: &str, base: &Path) -> anyhow::Result<Vec<Host>> {
    let file: File = toml::from_str(text).map_err(|e| anyhow::anyhow!("{}", e.message()))?;
    anyhow::ensure!(
        !file.host.is_empty(),
        "no hosts: list each as a [[host]] table with name and ssh"
    );
    anyhow::ensure!(
        file.host.len() <= MAX_HOSTS,
        "{} hosts; at most {MAX_HOSTS} are allowed",
        file.host.len()
    );
    let mut hosts: Vec<Host> = Vec::with_capacity(file.host.len());
    for e in file.host {
        check_word("name", &e.name, &e.name)?;
        anyhow::ensure!(
            !hosts.iter().any(|h| h.name == e.name),
            "host {:?} is listed twice",
            e.name
        );
        check_word("ssh", &e.ssh, &e.name)?;
        // ssh would read a destination that starts with '-' as an option.
        anyhow::ensure!(
            !e.ssh.starts_with('-'),
            "host {:?}: ssh = {:?} starts with '-'",
            e.name,
            e.ssh
        );
        let dir = e.dir.unwrap_or_else(|| DEFAULT_DIR.to_string());
        check_word("dir", &dir, &e.name)?;
        anyhow::ensure!(
            !dir.trim_end_matches('/').is_empty() && dir != "." && dir != "~",
            "host {:?}: dir = {dir:?} is not a directory of its own",
            e.name
        );
        let address = match &e.address {
            None => None,
            Some(a) => Some(a.parse::<std::net::IpAddr>().map_err(|_| {
                anyhow::anyhow!(
                    "host {:?}: address = {a:?} is not an IP address (give the address its peers and the clients use)",
                    e.name
                )
            })?),
        };
        let peer_port = e.peer_port.unwrap_or(DEFAULT_PEER_PORT);
        let client_port = e.client_port.unwrap_or(DEFAULT_CLIENT_PORT);
        anyhow::ensure!(
            peer_port != 0 && client_port != 0 && peer_port != client_port,
            "host {:?}: peer_port and client_port must be two different ports, not 0",
            e.name
        );
        let local = |p: Option<PathBuf>| p.map(|p| expand(&p, base));
        hosts.push(Host {
            name: e.name,
            ssh: e.ssh,
            port: e.port,
            identity: local(e.identity),
            ssh_config: local(e.ssh_config),
            known_hosts: local(e.known_hosts),
            dir,
            address,
            peer_port,
            client_port,
        });
    }
    Ok(hosts)
}

/// A value of one word: not empty, no blanks, no control characters, at
/// most 200 bytes (it ends up on ssh's command line and in file names).
fn check_word(field: &str, value: &str, host: &str) -> anyhow::Result<()> {
    anyhow::ensure!(
        !value.is_empty()
            && value.len() <= 200
            && !value.chars().any(|c| c.is_whitespace() || c.is_control()),
        "host {host:?}: {field} = {value:?} must be one word of at most 200 bytes"
    );
    Ok(())
}

/// `~/x` from the home directory, a relative path from `base`.
fn expand(p: &Path, base: &Path) -> PathBuf {
    if let Ok(rest) = p.strip_prefix("~") {
        if let Some(home) = std::env::var_os("HOME") {
            return PathBuf::from(home).join(rest);
        }
    }
    if p.is_relative() {
        base.join(p)
    } else {
        p.to_path_buf()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_inventory_lists_hosts_with_defaults_and_local_paths_from_its_directory() {
        let hosts = parse(
            "[[host]]\nname = \"w1\"\nssh = \"root@192.0.2.1\"\nport = 2222\nidentity = \"keys/id\"\n\
             [[host]]\nname = \"w2\"\nssh = \"worker-two\"\ndir = \"/var/tmp/fl\"\n",
            Path::new("/etc/fl"),
        )
        .unwrap();
        assert_eq!(hosts.len(), 2);
        assert_eq!(hosts[0].port, Some(2222));
        assert_eq!(hosts[0].identity, Some(PathBuf::from("/etc/fl/keys/id")));
        assert_eq!(hosts[0].dir, DEFAULT_DIR);
        assert_eq!(hosts[1].dir, "/var/tmp/fl");
        assert_eq!(hosts[1].identity, None);
        assert_eq!(hosts[0].address, None);
        assert_eq!(hosts[0].peer_port, DEFAULT_PEER_PORT);
        let with = parse(
            "[[host]]\nname = \"h1\"\nssh = \"h1\"\naddress = \"10.0.0.5\"\nclient_port = 2379\n",
            Path::new("."),
        )
        .unwrap();
        assert_eq!(with[0].address, Some("10.0.0.5".parse().unwrap()));
        assert_eq!(with[0].client_port, 2379);
    }

    #[test]
    fn a_bad_inventory_is_one_line_naming_the_host_and_field() {
        let err = |text: &str| parse(text, Path::new(".")).unwrap_err().to_string();
        assert!(err("").contains("no hosts"), "{}", err(""));
        let e = err("[[host]]\nname = \"a\"\nssh = \"-oProxyCommand=x\"\n");
        assert!(e.contains("starts with '-'"), "{e}");
        let e = err("[[host]]\nname = \"a\"\nssh = \"x y\"\n");
        assert!(e.contains("host \"a\": ssh"), "{e}");
        let e = err("[[host]]\nname = \"a\"\nssh = \"x\"\n[[host]]\nname = \"a\"\nssh = \"y\"\n");
        assert!(e.contains("listed twice"), "{e}");
        let e = err("[[host]]\nname = \"a\"\nssh = \"x\"\nsh = 1\n");
        assert!(e.contains("unknown field"), "{e}");
        let e = err("[[host]]\nname = \"a\"\nssh = \"x\"\ndir = \"/\"\n");
        assert!(e.contains("not a directory of its own"), "{e}");
        assert!(!e.contains('\n'), "{e}");
        let e = err("[[host]]\nname = \"a\"\nssh = \"x\"\naddress = \"a.example\"\n");
        assert!(e.contains("not an IP address"), "{e}");
        let e = err("[[host]]\nname = \"a\"\nssh = \"x\"\npeer_port = 7001\n");
        assert!(e.contains("two different ports"), "{e}");
    }
}
