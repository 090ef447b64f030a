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
        check_destination(&e.ssh)
            .map_err(|why| anyhow::anyhow!("host {:?}: ssh = {:?} {why}", e.name, e.ssh))?;
        anyhow::ensure!(
            e.port != Some(0),
            "host {:?}: port = 0 is not a port (1 to 65535)",
            e.name
        );
        let given = e.dir.unwrap_or_else(|| DEFAULT_DIR.to_string());
        check_word("dir", &given, &e.name)?;
        let dir = working_dir(&given)
            .map_err(|why| anyhow::anyhow!("host {:?}: dir = {given:?} {why}", e.name))?;
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

/// Top-level directories of a system (and a few below `/usr` and `/var`)
/// that are never a run's working directory: `DIR/bin`, `DIR/runs` and
/// the run marker are written there, and `hosts clean` removes below it.
const SYSTEM_DIRS: &[&str] = &[
    "/bin",
    "/boot",
    "/dev",
    "/etc",
    "/home",
    "/lib",
    "/lib32",
    "/lib64",
    "/libx32",
    "/media",
    "/mnt",
    "/opt",
    "/proc",
    "/root",
    "/run",
    "/sbin",
    "/srv",
    "/sys",
    "/tmp",
    "/usr",
    "/var",
    "/usr/bin",
    "/usr/sbin",
    "/usr/lib",
    "/usr/local",
    "/usr/local/bin",
    "/usr/share",
    "/var/lib",
    "/var/log",
    "/var/tmp",
    "/var/run",
];

/// The working directory `dir`, normalised (`.` and `..` resolved as
/// written, repeated and trailing `/` dropped), or why it is refused: one
/// that resolves to `/`, to a system directory ([`SYSTEM_DIRS`]), to the
/// login's home itself or above it, or that starts with `~` (it would not
/// be expanded: a relative path is already taken from the home).
pub fn working_dir(dir: &str) -> Result<String, String> {
    if dir.starts_with('~') {
        return Err(
            "starts with '~': give a path relative to the login's home without it, or an absolute one"
                .into(),
        );
    }
    let absolute = dir.starts_with('/');
    let mut parts: Vec<&str> = Vec::new();
    for p in dir.split('/') {
        match p {
            "" | "." => {}
            ".." => {
                if parts.pop().is_none() && !absolute {
                    return Err("leads out of the login's home directory".into());
                }
            }
            p => parts.push(p),
        }
    }
    if parts.is_empty() {
        return Err(if absolute {
            "resolves to /, not a directory of its own".into()
        } else {
            "resolves to the login's home itself, not a directory of its own".into()
        });
    }
    let norm = format!("{}{}", if absolute { "/" } else { "" }, parts.join("/"));
    if absolute && SYSTEM_DIRS.contains(&norm.as_str()) {
        return Err(format!(
            "resolves to {norm}, a system directory, not a directory of its own"
        ));
    }
    Ok(norm)
}

/// Why ssh destination `ssh` could reach ssh as an option, if it could:
/// the `ssh://[user@]host[:port]` form is taken apart as ssh (and the
/// `openssh` crate, which passes the destination without `--`) takes it,
/// and no part may start with '-'; a port in it must be 1 to 65535.
fn check_destination(ssh: &str) -> Result<(), String> {
    let (user, host, port) = match ssh.strip_prefix("ssh://") {
        Some(rest) => {
            let (user, rest) = match rest.rfind('@') {
                Some(at) => (Some(&rest[..at]), &rest[at + 1..]),
                None => (None, rest),
            };
            let (host, port) = match rest.rfind(':') {
                Some(c) if !rest.starts_with('[') || rest[..c].ends_with(']') => {
                    (&rest[..c], Some(&rest[c + 1..]))
                }
                _ => (rest, None),
            };
            (user, host, port)
        }
        None => match ssh.rfind('@') {
            Some(at) => (Some(&ssh[..at]), &ssh[at + 1..], None),
            None => (None, ssh, None),
        },
    };
    if ssh.starts_with('-') || host.starts_with('-') || user.is_some_and(|u| u.starts_with('-')) {
        return Err("starts with '-' (ssh would read it as an option)".into());
    }
    if host.is_empty() {
        return Err("names no host".into());
    }
    if let Some(p) = port {
        match p.parse::<u16>() {
            Ok(n) if n > 0 => {}
            _ => return Err(format!("has port {p:?}, not a port (1 to 65535)")),
        }
    }
    Ok(())
}

/// A value of one word: not empty, no blanks, no control characters, at
/// most 200 bytes (it ends up on ssh's command line and in file names).
fn check_word(field: &str, value: &str, host: &str) -> anyhow::Result<()> {
    anyhow::ensure!(
        !value.is_empty()
            && value.len() <= 200
            && !value
                .chars()
                .any(|c| c.is_whitespace() || faultline_rundir::quote::hidden_char(c)),
        "host {}: {field} = {} must be one word of at most 200 bytes, without control or direction characters",
        faultline_rundir::quote::quoted(host),
        faultline_rundir::quote::quoted(value)
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
        assert!(e.contains("host 'a': ssh"), "{e}");
        let e = err("[[host]]\nname = \"a\\u202eb\"\nssh = \"x\"\n");
        assert!(e.contains("\\u{202e}") && !e.contains('\u{202e}'), "{e}");
        let e = err("[[host]]\nname = \"a\"\nssh = \"x\"\n[[host]]\nname = \"a\"\nssh = \"y\"\n");
        assert!(e.contains("listed twice"), "{e}");
        let e = err("[[host]]\nname = \"a\"\nssh = \"x\"\nsh = 1\n");
        assert!(e.contains("unknown field"), "{e}");
        let e = err("[[host]]\nname = \"a\"\nssh = \"x\"\ndir = \"/\"\n");
        assert!(e.contains("not a directory of its own"), "{e}");
        assert!(!e.contains('\n'), "{e}");
        // Bypasses of the directory check: each resolves to / , a system
        // directory or the home, or would not be expanded.
        for dir in [
            "/.",
            "/usr/..",
            "..",
            "~/",
            "~",
            ".",
            "a/../..",
            "/usr/./",
            "//etc//",
            "/var/tmp/..",
        ] {
            let e = err(&format!(
                "[[host]]\nname = \"a\"\nssh = \"x\"\ndir = \"{dir}\"\n"
            ));
            assert!(e.contains(&format!("dir = {dir:?}")), "{dir}: {e}");
        }
        assert_eq!(working_dir("/var/tmp/./fl/").unwrap(), "/var/tmp/fl");
        assert_eq!(working_dir("a/../b").unwrap(), "b");
        // The URL form cannot smuggle an option to ssh.
        for ssh in [
            "ssh://-oProxyCommand=x",
            "ssh://root@-oProxyCommand=x",
            "ssh://-l@x",
            "-x",
            "root@-x",
        ] {
            let e = err(&format!("[[host]]\nname = \"a\"\nssh = \"{ssh}\"\n"));
            assert!(e.contains("starts with '-'"), "{ssh}: {e}");
        }
        assert!(err("[[host]]\nname = \"a\"\nssh = \"ssh://x:0\"\n").contains("not a port"));
        assert!(parse(
            "[[host]]\nname = \"a\"\nssh = \"ssh://root@x:2222\"\n",
            Path::new(".")
        )
        .is_ok());
        let e = err("[[host]]\nname = \"a\"\nssh = \"x\"\nport = 0\n");
        assert!(e.contains("port = 0 is not a port"), "{e}");
        let e = err("[[host]]\nname = \"a\"\nssh = \"x\"\naddress = \"a.example\"\n");
        assert!(e.contains("not an IP address"), "{e}");
        let e = err("[[host]]\nname = \"a\"\nssh = \"x\"\npeer_port = 7001\n");
        assert!(e.contains("two different ports"), "{e}");
    }
}
