//! SSH hosts on one machine, for the tests of worker hosts: a private
//! network of the test's own (a "control" network namespace with a bridge,
//! one namespace per host joined to it by a veth pair, no route anywhere
//! else), each host running its own `sshd` (Debian's openssh-server) on
//! its private address, with host keys, an authorized key, a known-hosts
//! file and an ssh config generated into a temporary directory — never the
//! machine's own sshd, keys or `~/.ssh`. The faultline under test runs in
//! the control namespace, so the hosts are the only thing it can reach.
//!
//! Dropping the fixture kills every process in every host's namespace (the
//! sshd, and whatever ran through it), then the namespaces go with their
//! last descriptor.

use std::net::Ipv4Addr;
use std::os::unix::fs::MetadataExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use faultline_nemesis::net::kernel::netns::Namespace;

/// The hosts' network: the bridge is `.1`, host `i` (from 1) is `.(10+i)`.
const NET: [u8; 3] = [10, 98, 0];

/// One host: its namespace, its sshd and its working directory.
pub struct SshHost {
    /// Its name in the inventory (`w1`, ...).
    pub name: String,
    /// Its address on the private network.
    pub ip: Ipv4Addr,
    /// Its working directory (on this machine's file system).
    pub workdir: PathBuf,
    ns: Namespace,
    sshd: Child,
}

/// Several SSH hosts and the control namespace that reaches them.
pub struct SshHosts {
    /// The hosts, in order.
    pub hosts: Vec<SshHost>,
    /// The inventory listing them all (`workers.toml`).
    pub inventory: PathBuf,
    ctl: Namespace,
    /// Keys, configs, logs and working directories.
    pub dir: tempfile::TempDir,
}

/// Why the fixture cannot run here, if it cannot.
fn missing() -> Option<String> {
    if let Err(e) = faultline_nemesis::net::kernel::netns::check_prerequisites() {
        return Some(e);
    }
    for (p, package) in [
        ("/usr/sbin/sshd", "openssh-server"),
        ("/usr/bin/ssh", "openssh-client"),
        ("/usr/bin/ssh-keygen", "openssh-client"),
    ] {
        if !Path::new(p).exists() {
            return Some(format!(
                "{p} is missing: install the Debian package {package}"
            ));
        }
    }
    None
}

fn run(cmd: &mut Command, what: &str) {
    let out = cmd.output().unwrap_or_else(|e| panic!("{what}: {e}"));
    assert!(
        out.status.success(),
        "{what}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn keygen(path: &Path) {
    run(
        Command::new("/usr/bin/ssh-keygen")
            .args([
                "-q",
                "-t",
                "ed25519",
                "-N",
                "",
                "-C",
                "faultline-test",
                "-f",
            ])
            .arg(path),
        "ssh-keygen",
    );
}

impl SshHosts {
    /// Start `n` hosts; None (after one line saying why) where root, `ip`,
    /// `nft` or OpenSSH are missing, except under `CI=true`, where that
    /// fails the test.
    pub fn start(test: &str, n: usize) -> Option<SshHosts> {
        SshHosts::start_with(test, &vec![""; n])
    }

    /// Start one host per entry of `extra`, each entry added to that
    /// host's sshd_config (e.g. `SetEnv PATH=/usr/bin:/bin`).
    pub fn start_with(test: &str, extra: &[&str]) -> Option<SshHosts> {
        let n = extra.len();
        if let Some(why) = missing() {
            if std::env::var("CI").as_deref() == Ok("true") {
                panic!("{test}: SSH hosts are needed under CI=true: {why}");
            }
            println!("{test}: skipped: {why}");
            return None;
        }
        // sshd insists on its privilege-separation directory.
        let _ = std::fs::create_dir_all("/run/sshd");
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        keygen(&d.join("id"));
        let ctl = Namespace::new().expect("a control namespace");
        let [a, b, c] = NET;
        ctl.run(
            "ip",
            &["-batch", "-"],
            Some(&format!(
                "link set lo up\nlink add br0 type bridge\naddr add {a}.{b}.{c}.1/24 dev br0\nlink set br0 up\n"
            )),
        )
        .expect("the control namespace's bridge");
        let mut hosts = Vec::new();
        let mut known = String::new();
        let mut inventory = String::new();
        for i in 1..=n {
            let name = format!("w{i}");
            let ip = Ipv4Addr::new(a, b, c, 10 + i as u8);
            let hd = d.join(&name);
            let workdir = hd.join("work");
            std::fs::create_dir_all(&workdir).unwrap();
            let ns = Namespace::new().expect("a host namespace");
            let veth = format!("hv{i}");
            ctl.run(
                "ip",
                &[
                    "link",
                    "add",
                    &veth,
                    "type",
                    "veth",
                    "peer",
                    "name",
                    "eth0",
                    "netns",
                    &ns.path(),
                ],
                None,
            )
            .expect("a host's veth pair");
            ctl.run("ip", &["link", "set", &veth, "master", "br0", "up"], None)
                .expect("joining the bridge");
            ns.run(
                "ip",
                &["-batch", "-"],
                Some(&format!(
                    "link set lo up\naddr add {ip}/24 dev eth0\nlink set eth0 up\n"
                )),
            )
            .expect("a host's address");
            keygen(&hd.join("host_key"));
            let pubkey = std::fs::read_to_string(hd.join("host_key.pub")).unwrap();
            let mut words = pubkey.split_whitespace();
            known.push_str(&format!(
                "{ip} {} {}\n",
                words.next().unwrap(),
                words.next().unwrap()
            ));
            let cfg = hd.join("sshd_config");
            std::fs::write(
                &cfg,
                format!(
                    "ListenAddress {ip}:22\nHostKey {hk}\nAuthorizedKeysFile {ak}\nPidFile none\n\
                     UsePAM no\nStrictModes no\nPermitRootLogin prohibit-password\n\
                     PasswordAuthentication no\nKbdInteractiveAuthentication no\n\
                     X11Forwarding no\nPrintMotd no\nMaxSessions 100\nMaxStartups 100\nLogLevel ERROR\n{extra}\n",
                    hk = hd.join("host_key").display(),
                    ak = d.join("id.pub").display(),
                    extra = extra[i - 1]
                ),
            )
            .unwrap();
            let log = std::fs::File::create(hd.join("sshd.log")).unwrap();
            let mut cmd = Command::new("/usr/sbin/sshd");
            cmd.args(["-D", "-e", "-f"])
                .arg(&cfg)
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(log)
                .process_group(0);
            ns.enter_on_spawn(&mut cmd);
            let sshd = cmd.spawn().expect("starting sshd");
            inventory.push_str(&format!(
                "[[host]]\nname = \"{name}\"\nssh = \"root@{ip}\"\nidentity = \"{id}\"\n\
                 ssh_config = \"{cfg}\"\nknown_hosts = \"{known}\"\ndir = \"{work}\"\naddress = \"{ip}\"\n\n",
                id = d.join("id").display(),
                cfg = d.join("ssh_config").display(),
                known = d.join("known_hosts").display(),
                work = workdir.display()
            ));
            hosts.push(SshHost {
                name,
                ip,
                workdir,
                ns,
                sshd,
            });
        }
        std::fs::write(d.join("known_hosts"), known).unwrap();
        // ssh reads this file instead of ~/.ssh/config and /etc/ssh/ssh_config.
        std::fs::write(
            d.join("ssh_config"),
            "Host *\n  StrictHostKeyChecking yes\n  GlobalKnownHostsFile /dev/null\n  UpdateHostKeys no\n",
        )
        .unwrap();
        let inv = d.join("workers.toml");
        std::fs::write(&inv, inventory).unwrap();
        let fixture = SshHosts {
            hosts,
            inventory: inv,
            ctl,
            dir,
        };
        for h in &fixture.hosts {
            fixture.wait_listening(h);
        }
        Some(fixture)
    }

    /// Poll (bounded) until `h`'s sshd accepts connections.
    fn wait_listening(&self, h: &SshHost) {
        let fd = self.ctl.path();
        let ip = h.ip;
        let ok = std::thread::spawn(move || {
            let ns = std::fs::File::open(fd).unwrap();
            use std::os::fd::AsRawFd;
            // SAFETY: setns moves only this short-lived thread.
            assert_eq!(
                unsafe { libc::setns(ns.as_raw_fd(), libc::CLONE_NEWNET) },
                0
            );
            let deadline = Instant::now() + super::DEADLINE;
            while Instant::now() < deadline {
                let addr = std::net::SocketAddr::from((ip, 22));
                if std::net::TcpStream::connect_timeout(&addr, Duration::from_secs(1)).is_ok() {
                    return true;
                }
                std::thread::sleep(super::POLL);
            }
            false
        })
        .join()
        .unwrap();
        assert!(
            ok,
            "sshd of {} did not listen: {}",
            h.name,
            std::fs::read_to_string(self.dir.path().join(&h.name).join("sshd.log"))
                .unwrap_or_default()
        );
    }

    /// A key that no host accepts (for a host entry with the wrong key).
    pub fn wrong_key(&self) -> PathBuf {
        let p = self.dir.path().join("wrong_id");
        if !p.exists() {
            keygen(&p);
        }
        p
    }

    /// `faultline ARGS`, to be started in the control namespace.
    pub fn faultline(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(super::faultline_bin());
        cmd.args(args);
        self.ctl.enter_on_spawn(&mut cmd);
        cmd
    }

    /// Run `program args` in host `i`'s namespace (its `nft`, say).
    pub fn on_host(&self, i: usize, program: &str, args: &[&str]) -> Result<String, String> {
        self.hosts[i].ns.run(program, args, None)
    }

    /// The processes in host `i`'s namespace (sshd and all it started).
    pub fn processes(&self, i: usize) -> Vec<u32> {
        let ino = std::fs::metadata(self.hosts[i].ns.path())
            .map(|m| m.ino())
            .unwrap();
        let mut out = Vec::new();
        for e in std::fs::read_dir("/proc").unwrap().flatten() {
            let Ok(pid) = e.file_name().to_string_lossy().parse::<u32>() else {
                continue;
            };
            if std::fs::metadata(format!("/proc/{pid}/ns/net")).is_ok_and(|m| m.ino() == ino) {
                out.push(pid);
            }
        }
        out
    }

    /// Send `sig` to every sshd process of host `i` (the listener and its
    /// connections); SIGSTOP makes the host stop answering.
    pub fn signal_sshd(&self, i: usize, sig: i32) {
        for pid in self.processes(i) {
            let comm = std::fs::read_to_string(format!("/proc/{pid}/comm")).unwrap_or_default();
            if comm.trim() == "sshd" {
                // SAFETY: a signal to a process of the test's own host.
                unsafe { libc::kill(pid as i32, sig) };
            }
        }
    }
}

impl Drop for SshHosts {
    fn drop(&mut self) {
        for i in 0..self.hosts.len() {
            // Bounded: a process that outlives 10 rounds is reported.
            for _ in 0..10 {
                let left = self.processes(i);
                if left.is_empty() {
                    break;
                }
                for pid in left {
                    // SAFETY: signals to processes of the test's own host.
                    unsafe {
                        libc::kill(pid as i32, libc::SIGCONT);
                        libc::kill(pid as i32, libc::SIGKILL);
                    }
                }
                std::thread::sleep(Duration::from_millis(100));
            }
            let _ = self.hosts[i].sshd.wait();
        }
    }
}
