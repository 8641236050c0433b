//! The overlay executor, one per peer, level-triggered like the container executor:
//! every tick it reads what the state wants of this peer's interface
//! ([`super::plan::desired`]) and firewall ([`super::firewall::rules`]), reads what the
//! interface holds, and carries out the difference. The interface appears only once
//! there is a remote peer to reach (a single peer needs none); the firewall and NAT
//! as soon as the peer has a container subnet. What it last saw is kept in
//! [`OverlayStatus`] for `monk system overlay` and `monk cluster peers`.

use std::collections::BTreeMap;
use std::net::Ipv4Addr;
use std::sync::Arc;

use monk_statemachine::PeerId;
use tracing::{info, warn};

use super::firewall::{self, Rules};
use super::plan::{self, Desired, Observed, ObservedPeer};
use super::uapi::PeerStatus;
use super::wireguard::{interface_name, Tunnel, TunnelError};
use crate::limits::OVERLAY_TICK;
use crate::Node;

/// What this peer's overlay executor last saw.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct OverlayStatus {
    /// Whether this peer takes part in the overlay (`monkd --no-overlay`).
    pub enabled: bool,
    /// The WireGuard interface, once there is one.
    pub interface: Option<String>,
    pub address: Option<Ipv4Addr>,
    pub listen_port: Option<u16>,
    /// Remote peers by cluster peer id, as the interface reports them.
    pub peers: BTreeMap<PeerId, PeerStatus>,
    /// Where the peer's DNS answers, once it does.
    pub dns: Option<Ipv4Addr>,
    /// How many firewall rules are loaded.
    pub firewall_rules: usize,
    /// The last error, until a pass succeeds.
    pub error: Option<String>,
}

/// Resolves each desired endpoint (`host:port`) to the `ip:port` text the interface
/// will report, so the planner compares like with like; a peer whose endpoint does not
/// resolve is left out this pass.
async fn resolved(mut desired: Desired) -> Desired {
    let mut peers = BTreeMap::new();
    for (key, mut peer) in std::mem::take(&mut desired.peers) {
        let found = tokio::net::lookup_host(peer.endpoint.clone()).await;
        match found {
            Ok(mut addrs) => {
                if let Some(addr) = addrs.next() {
                    peer.endpoint = addr.to_string();
                    peers.insert(key, peer);
                }
            }
            Err(e) => {
                warn!(peer = peer.peer, endpoint = %peer.endpoint, "overlay: cannot resolve the peer's endpoint: {e}")
            }
        }
    }
    desired.peers = peers;
    desired
}

/// One pass over the interface: start it if needed, address it, plan and apply.
async fn tunnel_pass(
    node: &Node,
    tunnel: &mut Option<Tunnel>,
    name: &str,
    desired: Desired,
    status: &mut OverlayStatus,
) -> Result<(), TunnelError> {
    if let Some(t) = tunnel.as_mut() {
        if let Some(why) = t.exited() {
            warn!("overlay: the WireGuard interface went away: {why}; starting it again");
            *tunnel = None;
        }
    }
    if tunnel.is_none() {
        if desired.peers.is_empty() {
            return Ok(());
        }
        let log = node.config.data_dir.join("wireguard.log");
        let started = Tunnel::start(
            &node.config.overlay.userspace,
            name,
            &node.wireguard_private_key(),
            node.config.overlay.listen_port,
            &log,
        )
        .await?;
        info!(
            interface = name,
            port = node.config.overlay.listen_port,
            "overlay: WireGuard interface up"
        );
        *tunnel = Some(started);
    }
    let Some(t) = tunnel.as_mut() else {
        return Ok(());
    };
    if let Some((address, range)) = desired.address {
        t.set_address(address, range).await?;
        status.address = Some(address);
    }
    let ids: BTreeMap<String, PeerId> = desired
        .peers
        .iter()
        .map(|(k, p)| (k.clone(), p.peer))
        .collect();
    let desired = resolved(desired).await;
    let device = t.status().await?;
    let observed = Observed {
        peers: device
            .peers
            .iter()
            .map(|p| {
                (
                    p.public_key.clone(),
                    ObservedPeer {
                        endpoint: p.endpoint.clone(),
                        allowed_ips: p.allowed_ips.clone(),
                    },
                )
            })
            .collect(),
    };
    let actions = plan::plan(&desired, &observed);
    if !actions.is_empty() {
        for action in &actions {
            info!(?action, "overlay: changing the interface");
        }
        t.apply(&actions).await?;
    }
    status.interface = Some(t.name.clone());
    status.listen_port = device.listen_port;
    status.peers = device
        .peers
        .into_iter()
        .filter_map(|p| Some((*ids.get(&p.public_key)?, p)))
        .collect();
    Ok(())
}

/// The peer's DNS responder on its container network's gateway, while it runs.
struct Dns {
    subnet: monk_statemachine::Ipv4Net,
    /// Dropping them stops the responder (UDP, TCP).
    _stop: [tokio::sync::oneshot::Sender<()>; 2],
}

/// Starts the responder for `subnet` unless it runs there already. The gateway
/// address exists once the engine made the container network (with the first
/// container), so binding fails until then and is tried again next tick.
async fn ensure_dns(
    node: &Arc<Node>,
    dns: &mut Option<Dns>,
    subnet: monk_statemachine::Ipv4Net,
) -> Result<(), String> {
    if dns.as_ref().is_some_and(|d| d.subnet == subnet) {
        return Ok(());
    }
    *dns = None;
    let gateway = firewall::gateway(subnet);
    let socket = match tokio::net::UdpSocket::bind((gateway, super::dns::DNS_PORT)).await {
        Ok(socket) => socket,
        // No container network yet: nothing needs the DNS either.
        Err(e) if e.kind() == std::io::ErrorKind::AddrNotAvailable => return Ok(()),
        Err(e) => return Err(format!("DNS on {gateway}:{}: {e}", super::dns::DNS_PORT)),
    };
    let upstream: Vec<std::net::SocketAddr> = super::dns::upstreams_from_resolv_conf(
        &std::fs::read_to_string("/etc/resolv.conf").unwrap_or_default(),
    )
    .into_iter()
    .filter(|a| a.ip() != std::net::IpAddr::V4(gateway))
    .collect();
    let tcp = tokio::net::TcpListener::bind((gateway, super::dns::DNS_PORT))
        .await
        .map_err(|e| format!("DNS over TCP on {gateway}:{}: {e}", super::dns::DNS_PORT))?;
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let (stop_tcp, tcp_stopped) = tokio::sync::oneshot::channel::<()>();
    let names = Arc::new(super::names::StateNames::new(node.clone()));
    tokio::spawn(super::dns::serve(
        socket,
        names.clone(),
        upstream,
        async move {
            let _ = stopped.await;
        },
    ));
    tokio::spawn(super::dns::serve_tcp(tcp, names, async move {
        let _ = tcp_stopped.await;
    }));
    info!(%gateway, "overlay: DNS for *.{} answering on the container network", super::dns::ZONE);
    *dns = Some(Dns {
        subnet,
        _stop: [stop, stop_tcp],
    });
    Ok(())
}

/// Runs the overlay executor for `node` until it shuts down (nothing when the peer
/// takes no part in the overlay).
pub async fn run(node: Arc<Node>) {
    node.set_overlay_status(OverlayStatus {
        enabled: node.config.overlay.enabled,
        ..OverlayStatus::default()
    });
    if !node.config.overlay.enabled {
        return;
    }
    let name = interface_name(&node.config.data_dir);
    let mut tunnel: Option<Tunnel> = None;
    let mut loaded: Option<Rules> = None;
    // The rules the state wants and the applied index they were computed at: the
    // permitted pairs are recomputed only when the state moved, not every tick.
    let mut wanted = (u64::MAX, Rules::default());
    let mut last_error: Option<String> = None;
    let mut dns: Option<Dns> = None;
    loop {
        tokio::time::sleep(OVERLAY_TICK).await;
        // Held for the whole pass: a shutdown removing the chains waits for it, and
        // once it removed them this loop sees `is_shut_down` and ends.
        let _pass = node.overlay_pass().lock().await;
        if node.is_shut_down() {
            return;
        }
        let Some(me) = node.peer_id().await else {
            continue;
        };
        let (desired, subnet) = node.with_state(|s| {
            let applied = s.last_applied_index();
            if applied != wanted.0 {
                wanted = (applied, firewall::rules(s, me));
            }
            (
                plan::desired(s, me),
                super::container_subnet(&node.config.overlay, s, me),
            )
        });
        let rules = &wanted.1;
        let mut status = OverlayStatus {
            enabled: true,
            ..OverlayStatus::default()
        };
        let mut errors = Vec::new();
        if let Err(e) = tunnel_pass(&node, &mut tunnel, &name, desired, &mut status).await {
            errors.push(e.to_string());
        }
        if !rules.filter.is_empty() && loaded.as_ref() != Some(rules) {
            match firewall::apply(rules).await {
                Ok(()) => {
                    info!(rules = rules.filter.len(), "overlay: firewall loaded");
                    loaded = Some(rules.clone());
                }
                Err(e) => errors.push(format!("firewall: {e}")),
            }
        }
        if let Some(subnet) = subnet {
            if let Err(e) = ensure_dns(&node, &mut dns, subnet).await {
                errors.push(e);
            }
        }
        status.dns = dns.as_ref().map(|d| firewall::gateway(d.subnet));
        status.firewall_rules = loaded.as_ref().map_or(0, |r| r.filter.len());
        let error = (!errors.is_empty()).then(|| errors.join("; "));
        if error != last_error {
            if let Some(e) = &error {
                warn!("overlay: {e}");
            }
            last_error = error.clone();
        }
        status.error = error;
        node.set_overlay_status(status);
    }
}
