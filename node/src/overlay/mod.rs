//! The WireGuard overlay between peers (issue 12), the parts that do not touch an
//! interface yet: this peer's key pair in its data dir (`key.rs`), the identity it
//! advertises (public key and underlay endpoint, [`OverlayConfig`]), the reporter that
//! proposes `peer-overlay-changed` when the state holds another one, and the pure
//! planner an executor will carry out (`plan.rs`). Addresses and subnets are decided by
//! `apply` (`monk_statemachine::overlay`).

pub mod dns;
pub mod executor;
pub mod firewall;
pub mod key;
pub mod names;
pub mod plan;
pub mod uapi;
pub mod wireguard;

use std::sync::Arc;

use monk_statemachine::{Command, Ipv4Net, OverlayIdentity, PeerId, State};
use tracing::{info, warn};

use crate::limits::OVERLAY_CHECK_INTERVAL;
use crate::Node;

/// WireGuard's usual UDP port, `monkd --wg-listen-port`'s default.
pub const WIREGUARD_PORT_DEFAULT: u16 = 51820;

/// Where this peer's WireGuard listens and how others reach it (`monkd
/// --wg-listen-port`, `--wg-endpoint`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OverlayConfig {
    pub listen_port: u16,
    /// `host:port` other peers send to; `None`: the advertise address's host and
    /// `listen_port`.
    pub endpoint: Option<String>,
    /// Whether this peer takes part in the overlay (`monkd --no-overlay` turns it
    /// off): a WireGuard interface, its container network on the subnet the state
    /// gives it, the firewall and the DNS. Off, its containers reach only containers
    /// on the same peer, by the engine's own names. Off in [`Default`] (in-process
    /// peers and tests share one network namespace); `monkd` turns it on.
    pub enabled: bool,
    /// The userspace WireGuard program (`monkd --wg-userspace`).
    pub userspace: String,
}

impl Default for OverlayConfig {
    fn default() -> OverlayConfig {
        OverlayConfig {
            listen_port: WIREGUARD_PORT_DEFAULT,
            endpoint: None,
            enabled: false,
            userspace: wireguard::USERSPACE_DEFAULT.into(),
        }
    }
}

/// The container subnet this peer's network uses: the one the state gives it, when
/// it takes part in the overlay.
pub fn container_subnet(config: &OverlayConfig, state: &State, me: PeerId) -> Option<Ipv4Net> {
    if !config.enabled {
        return None;
    }
    state.peer(me)?.overlay.as_ref().map(|o| o.subnet)
}

impl OverlayConfig {
    /// The endpoint to advertise for a peer whose API address is `advertise`.
    pub fn endpoint(&self, advertise: &str) -> String {
        if let Some(endpoint) = &self.endpoint {
            return endpoint.clone();
        }
        let host = advertise
            .rsplit_once(':')
            .map_or(advertise, |(host, _)| host);
        format!("{host}:{}", self.listen_port)
    }
}

/// The `peer-overlay-changed` that `me` should propose when the state holds no or
/// another identity for it; `None` when the state agrees (or `me` is not a member).
pub fn identity_change(state: &State, me: PeerId, own: &OverlayIdentity) -> Option<Command> {
    let peer = state.peer(me).filter(|p| p.is_member())?;
    let held = peer.overlay.as_ref().and_then(|o| o.wireguard.as_ref());
    (held != Some(own)).then(|| Command::PeerOverlayChanged {
        peer: me,
        public_key: own.public_key.clone(),
        endpoint: own.endpoint.clone(),
    })
}

/// Proposes this peer's identity whenever the state holds another one: at start after
/// a new `--wg-endpoint` or port, and in a cluster created before the overlay existed.
pub async fn run_reporter(node: Arc<Node>) {
    let mut ticks = node.member_ticks(OVERLAY_CHECK_INTERVAL);
    while let Some(id) = ticks.next().await {
        let own = node.overlay_identity();
        let Some(command) = node.with_state(|s| identity_change(s, id, &own)) else {
            continue;
        };
        let proposal = node.stamp(format!("peer:{id}"), command);
        match node.propose(proposal).await {
            Ok(outcome) if outcome.applied.is_accepted() => {
                info!(endpoint = %own.endpoint, public_key = %own.public_key, "advertised this peer's WireGuard identity")
            }
            Ok(outcome) => warn!(
                "the cluster refused this peer's WireGuard identity: {:?}",
                outcome.applied
            ),
            Err(e) => warn!("could not advertise this peer's WireGuard identity: {e}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_endpoint_follows_the_advertise_host_unless_given() {
        let config = OverlayConfig::default();
        assert_eq!(config.endpoint("10.0.0.5:44001"), "10.0.0.5:51820");
        assert_eq!(
            config.endpoint("[2001:db8::1]:44001"),
            "[2001:db8::1]:51820"
        );
        let config = OverlayConfig {
            listen_port: 51999,
            ..OverlayConfig::default()
        };
        assert_eq!(config.endpoint("host-a:44001"), "host-a:51999");
        let config = OverlayConfig {
            listen_port: 51999,
            endpoint: Some("203.0.113.9:443".into()),
            ..OverlayConfig::default()
        };
        assert_eq!(config.endpoint("host-a:44001"), "203.0.113.9:443");
    }

    #[test]
    fn a_peer_proposes_its_identity_only_when_the_state_holds_another() {
        use super::plan::tests::{identity, Log};
        let mut log = Log::cluster(2);
        assert_eq!(identity_change(&log.state, 2, &identity(2)), None);
        let moved = OverlayIdentity {
            endpoint: "198.51.100.2:51999".into(),
            ..identity(2)
        };
        let change = identity_change(&log.state, 2, &moved).unwrap();
        assert_eq!(change.kind(), "peer-overlay-changed");
        log.ok(change);
        assert_eq!(identity_change(&log.state, 2, &moved), None);
        log.ok(Command::PeerLeft { peer: 2 });
        assert_eq!(identity_change(&log.state, 2, &identity(7)), None);
        assert_eq!(identity_change(&log.state, 9, &identity(9)), None);
    }
}
