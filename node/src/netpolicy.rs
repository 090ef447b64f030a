//! Which addresses faultline may bind to and connect to: loopback
//! (127.0.0.0/8, ::1) always, the run's private range ([`PRIVATE_NET`])
//! only inside a network namespace created for a run (`--net kernel`),
//! which has no route to any other network, and the addresses of the
//! hosts an inventory the user gave lists (`--hosts`, [`allow_inventory`]). Every
//! connect and every bind of faultline goes through [`allowed`] first, so
//! no packet of a test can leave the machine.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicBool, Ordering};

/// The private range of a kernel-backend run: the controller's bridge is
/// `.1`, node slot `i` (1-based) is `.(10 + i)`.
pub const PRIVATE_NET: Ipv4Addr = Ipv4Addr::new(10, 99, 0, 0);
/// The prefix length of [`PRIVATE_NET`].
pub const PRIVATE_PREFIX: u8 = 24;

static SEALED: AtomicBool = AtomicBool::new(false);
static INVENTORY: std::sync::Mutex<Vec<IpAddr>> = std::sync::Mutex::new(Vec::new());

/// Allow these addresses too: the hosts of an inventory the user gave
/// (`faultline run --hosts`), which the run's members and clients reach.
/// Exactly these addresses, no range around them.
pub fn allow_inventory(addrs: &[IpAddr]) {
    let mut list = INVENTORY.lock().unwrap_or_else(|e| e.into_inner());
    for a in addrs {
        if !list.contains(a) {
            list.push(*a);
        }
    }
}

fn in_inventory(ip: IpAddr) -> bool {
    INVENTORY
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .contains(&ip)
}

/// Whether `ip` lies in [`PRIVATE_NET`].
pub fn in_private_net(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => {
            let mask = u32::MAX << (32 - PRIVATE_PREFIX);
            u32::from(v4) & mask == u32::from(PRIVATE_NET) & mask
        }
        IpAddr::V6(_) => false,
    }
}

/// The bridge's address in a kernel-backend run (the controller's side).
pub fn bridge_ip() -> Ipv4Addr {
    let [a, b, c, _] = PRIVATE_NET.octets();
    Ipv4Addr::new(a, b, c, 1)
}

/// The address of node slot `slot` (1-based) in a kernel-backend run.
pub fn slot_ip(slot: usize) -> Ipv4Addr {
    let [a, b, c, _] = PRIVATE_NET.octets();
    Ipv4Addr::new(a, b, c, 10 + slot.min(200) as u8)
}

/// The IPv4 routes of this process's network namespace that lead outside
/// [`PRIVATE_NET`] (from `/proc/self/net/route`: the main table, which in
/// a namespace a run created is the only one), each as `DEST/MASK via GW dev IF`.
pub fn routes_outside_private_net() -> Result<Vec<String>, String> {
    let text = std::fs::read_to_string("/proc/self/net/route")
        .map_err(|e| format!("reading /proc/self/net/route: {e}"))?;
    Ok(outside_routes(&text))
}

fn outside_routes(table: &str) -> Vec<String> {
    let hex = |s: &str| {
        u32::from_str_radix(s, 16)
            .ok()
            .map(|v| Ipv4Addr::from(v.swap_bytes()))
    };
    let private = u32::from(PRIVATE_NET);
    let private_mask = u32::MAX << (32 - PRIVATE_PREFIX);
    table
        .lines()
        .skip(1)
        .filter_map(|line| {
            let f: Vec<&str> = line.split_whitespace().collect();
            let (dev, dest, gw, mask) = (
                f.first()?,
                hex(f.get(1)?)?,
                hex(f.get(2)?)?,
                hex(f.get(7)?)?,
            );
            let (d, m) = (u32::from(dest), u32::from(mask));
            let inside = m >= private_mask && d & private_mask == private && gw.is_unspecified();
            (!inside).then(|| format!("{dest}/{} via {gw} dev {dev}", m.count_ones()))
        })
        .collect()
}

/// Declare that this process lives in a sealed network namespace of a run,
/// so that [`PRIVATE_NET`] addresses become allowed: refused while any
/// route leads anywhere else (the machine's own namespace has some).
pub fn declare_sealed() -> Result<(), String> {
    let outside = routes_outside_private_net()?;
    if let Some(r) = outside.first() {
        return Err(format!(
            "refusing the private range {PRIVATE_NET}/{PRIVATE_PREFIX}: this network namespace has a route outside it ({r}), so it is not a run's sealed namespace (--net kernel makes those)"
        ));
    }
    SEALED.store(true, Ordering::SeqCst);
    Ok(())
}

/// Whether [`declare_sealed`] succeeded in this process.
pub fn is_sealed() -> bool {
    SEALED.load(Ordering::SeqCst)
}

/// Whether faultline may connect to or bind `addr`; the error says why not.
pub fn allowed(addr: SocketAddr) -> Result<(), String> {
    if addr.ip().is_loopback()
        || (is_sealed() && in_private_net(addr.ip()))
        || in_inventory(addr.ip())
    {
        return Ok(());
    }
    if in_private_net(addr.ip()) {
        Err(format!(
            "{addr} is in the private range of a kernel-network run, which is only reachable inside that run's sealed namespaces"
        ))
    } else {
        Err(format!(
            "{addr} is not a loopback address: faultline keeps all traffic on this machine (127.0.0.0/8)"
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_is_always_allowed_and_other_networks_never() {
        assert!(allowed("127.0.0.1:7000".parse().unwrap()).is_ok());
        assert!(allowed("[::1]:7000".parse().unwrap()).is_ok());
        for a in [
            "10.0.0.1:80",
            "192.168.1.1:80",
            "8.8.8.8:53",
            "0.0.0.0:7000",
        ] {
            let e = allowed(a.parse().unwrap()).unwrap_err();
            assert!(e.contains("not a loopback address"), "{e}");
        }
    }

    #[test]
    fn an_inventory_allows_exactly_its_addresses() {
        let near = "192.0.2.200:7000".parse().unwrap();
        assert!(allowed(near).is_err());
        allow_inventory(&["192.0.2.201".parse().unwrap()]);
        assert!(allowed("192.0.2.201:7000".parse().unwrap()).is_ok());
        assert!(allowed(near).is_err());
    }

    #[test]
    fn a_namespace_with_a_route_elsewhere_is_not_sealed() {
        let head =
            "Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT\n";
        // 10.99.0.0/24 dev flbr0 (little-endian hex, as the kernel prints it).
        let private = "flbr0\t0000630A\t00000000\t0001\t0\t0\t0\t00FFFFFF\t0\t0\t0\n";
        let default = "eth0\t00000000\t0100A8C0\t0003\t0\t0\t0\t00000000\t0\t0\t0\n";
        assert!(outside_routes(&format!("{head}{private}")).is_empty());
        assert_eq!(
            outside_routes(&format!("{head}{private}{default}")),
            ["0.0.0.0/0 via 192.168.0.1 dev eth0"]
        );
        assert!(outside_routes(head).is_empty());
    }

    #[test]
    fn the_private_range_is_its_slash_24_only() {
        assert!(in_private_net(slot_ip(1).into()));
        assert!(in_private_net(bridge_ip().into()));
        assert!(!in_private_net("10.99.1.1".parse().unwrap()));
        assert!(!in_private_net("10.98.0.11".parse().unwrap()));
        assert_eq!(slot_ip(3), Ipv4Addr::new(10, 99, 0, 13));
    }
}
