//! The overlay network's addressing, decided by `apply` and the same on every peer: the
//! cluster's range ([`Ipv4Net`], `monk cluster new --overlay`, default
//! [`OVERLAY_RANGE_DEFAULT`]), each peer's WireGuard identity as it advertises it
//! ([`OverlayIdentity`]: public key and underlay endpoint, never a private key), and
//! the rule that gives each peer its overlay address and container subnet
//! ([`allocate`]).
//!
//! The rule: the range `B/p` is split in two halves. Peer `N` gets the overlay address
//! `B + N` from the lower half and the container subnet `U + (N - 1) * 256` (a /24)
//! from the upper half `U/(p+1)`. Peer ids are never reused (`next_peer_id` only
//! grows), so no two peers, past or present, ever share an address or a subnet; a
//! range holds `2^(23 - p)` peers (128 for a /16), and a join beyond that is refused.

use std::fmt;
use std::net::Ipv4Addr;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::apply::Rejection;
use crate::command::PeerId;
use crate::state::State;

/// The range a cluster uses when `cluster-created` names none.
pub const OVERLAY_RANGE_DEFAULT: &str = "10.211.0.0/16";
/// Longest prefix an overlay range may have: a /20 still holds 8 container subnets.
pub const OVERLAY_RANGE_PREFIX_MAX: u8 = 20;
/// Shortest prefix an overlay range may have (a /8, the largest private block).
pub const OVERLAY_RANGE_PREFIX_MIN: u8 = 8;
/// Prefix of each peer's container subnet.
pub const CONTAINER_SUBNET_PREFIX: u8 = 24;
/// Longest endpoint (`host:port`) a peer may advertise, in bytes.
pub const OVERLAY_ENDPOINT_BYTES_MAX: usize = 255;

/// An IPv4 network `a.b.c.d/p` whose host bits are zero; text in the log and state.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Ipv4Net {
    base: Ipv4Addr,
    prefix: u8,
}

impl Ipv4Net {
    /// The network `base/prefix`; refused when `prefix > 32` or a host bit is set.
    pub fn new(base: Ipv4Addr, prefix: u8) -> Result<Ipv4Net, String> {
        if prefix > 32 {
            return Err(format!("prefix /{prefix} is longer than 32 bits"));
        }
        let net = Ipv4Net { base, prefix };
        if u32::from(base) & !net.mask() != 0 {
            return Err(format!(
                "{base}/{prefix} has host bits set (the network is {}/{prefix})",
                Ipv4Addr::from(u32::from(base) & net.mask())
            ));
        }
        Ok(net)
    }

    pub fn base(&self) -> Ipv4Addr {
        self.base
    }

    pub fn prefix(&self) -> u8 {
        self.prefix
    }

    fn mask(&self) -> u32 {
        u32::MAX
            .checked_shl(32 - u32::from(self.prefix))
            .unwrap_or(0)
    }

    /// Whether `addr` lies in this network.
    pub fn contains(&self, addr: Ipv4Addr) -> bool {
        u32::from(addr) & self.mask() == u32::from(self.base)
    }

    /// How many addresses the network spans.
    pub fn size(&self) -> u64 {
        1u64 << (32 - u32::from(self.prefix))
    }
}

impl fmt::Display for Ipv4Net {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.base, self.prefix)
    }
}

impl FromStr for Ipv4Net {
    type Err = String;
    fn from_str(text: &str) -> Result<Ipv4Net, String> {
        let (addr, prefix) = text
            .split_once('/')
            .ok_or_else(|| format!("{text:?} is not an IPv4 network like 10.211.0.0/16"))?;
        let base = addr
            .parse::<Ipv4Addr>()
            .map_err(|e| format!("{text:?}: {addr:?} is not an IPv4 address ({e})"))?;
        let prefix = prefix
            .parse::<u8>()
            .map_err(|e| format!("{text:?}: {prefix:?} is not a prefix length ({e})"))?;
        Ipv4Net::new(base, prefix)
    }
}

impl Serialize for Ipv4Net {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Ipv4Net {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Ipv4Net, D::Error> {
        String::deserialize(d)?
            .parse()
            .map_err(serde::de::Error::custom)
    }
}

/// The range used when none is named ([`OVERLAY_RANGE_DEFAULT`]).
pub fn default_range() -> Ipv4Net {
    Ipv4Net {
        base: Ipv4Addr::new(10, 211, 0, 0),
        prefix: 16,
    }
}

/// Whether `range` can be a cluster's overlay range (a prefix between
/// [`OVERLAY_RANGE_PREFIX_MIN`] and [`OVERLAY_RANGE_PREFIX_MAX`]).
pub fn check_range(range: Ipv4Net) -> Result<(), String> {
    let p = range.prefix;
    if !(OVERLAY_RANGE_PREFIX_MIN..=OVERLAY_RANGE_PREFIX_MAX).contains(&p) {
        return Err(format!(
            "overlay range {range}: the prefix must be between /{OVERLAY_RANGE_PREFIX_MIN} and /{OVERLAY_RANGE_PREFIX_MAX}"
        ));
    }
    Ok(())
}

/// How many peer ids `range` can place (the container subnets in its upper half).
pub fn peers_in(range: Ipv4Net) -> u64 {
    (range.size() / 2) >> (32 - CONTAINER_SUBNET_PREFIX)
}

/// Peer `peer`'s overlay address and container subnet in `range` (the rule in the
/// module documentation); `None` when the range has no room for that id.
pub fn allocate(range: Ipv4Net, peer: PeerId) -> Option<(Ipv4Addr, Ipv4Net)> {
    if peer == 0 || peer > peers_in(range) {
        return None;
    }
    let base = u64::from(u32::from(range.base));
    let half = range.size() / 2;
    let address = u32::try_from(base + peer).ok()?;
    let subnet = u32::try_from(base + half + (peer - 1) * 256).ok()?;
    let subnet = Ipv4Net::new(Ipv4Addr::from(subnet), CONTAINER_SUBNET_PREFIX).ok()?;
    Some((Ipv4Addr::from(address), subnet))
}

/// What a peer advertises so others can reach it over WireGuard.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct OverlayIdentity {
    /// Its X25519 public key, base64 as WireGuard writes it (44 characters).
    pub public_key: String,
    /// Where its WireGuard listens on the underlay: `host:port`.
    pub endpoint: String,
}

/// The characters a 32-byte key's base64 may end with before its `=`: the last
/// character carries 4 bits of the key and 2 zero bits.
const KEY_LAST_CHARS: &str = "AEIMQUYcgkosw048";

/// Whether `identity` is well formed: a base64 X25519 public key and a `host:port`.
pub fn check_identity(identity: &OverlayIdentity) -> Result<(), String> {
    let key = identity.public_key.as_bytes();
    let base64_char = |b: &u8| b.is_ascii_alphanumeric() || *b == b'+' || *b == b'/';
    let key_ok = key.len() == 44
        && key[43] == b'='
        && key[..43].iter().all(base64_char)
        && KEY_LAST_CHARS.as_bytes().contains(&key[42]);
    if !key_ok {
        return Err(format!(
            "{:?} is not a WireGuard public key (44 characters of base64 of 32 bytes)",
            identity.public_key
        ));
    }
    check_endpoint(&identity.endpoint)
}

/// Whether `endpoint` is a WireGuard endpoint: `host:port`, port 1-65535, printable
/// ASCII, at most [`OVERLAY_ENDPOINT_BYTES_MAX`] bytes.
pub fn check_endpoint(endpoint: &str) -> Result<(), String> {
    let port = endpoint
        .rsplit_once(':')
        .filter(|(host, _)| !host.is_empty())
        .and_then(|(_, port)| port.parse::<u16>().ok())
        .filter(|port| *port != 0);
    let printable = endpoint.chars().all(|c| c.is_ascii_graphic());
    if port.is_none() || !printable || endpoint.len() > OVERLAY_ENDPOINT_BYTES_MAX {
        return Err(format!(
            "{endpoint:?} is not a WireGuard endpoint (host:port, port 1-65535)"
        ));
    }
    Ok(())
}

/// A peer's place on the overlay: what `apply` allocated and what it advertised.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PeerOverlay {
    /// Its address on the overlay (lower half of the range).
    pub address: Ipv4Addr,
    /// The subnet its containers get addresses from (upper half of the range).
    pub subnet: Ipv4Net,
    /// Its public key and endpoint; `None` until it advertised them (a peer of a
    /// cluster whose range appeared after it joined).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub wireguard: Option<OverlayIdentity>,
}

/// The range a peer is placed in when it joins or advertises an identity: the
/// cluster's, or the default for a cluster created before the overlay existed (which
/// then also places every member). Refused when `newcomer` or a member to be placed
/// does not fit.
pub(crate) fn range_for(state: &State, newcomer: Option<PeerId>) -> Result<Ipv4Net, Rejection> {
    let range = state.overlay_range.unwrap_or_else(default_range);
    let members = state.members().map(|p| p.id);
    let placed: Vec<PeerId> = match state.overlay_range {
        Some(_) => newcomer.into_iter().collect(),
        None => newcomer.into_iter().chain(members).collect(),
    };
    for id in placed {
        if allocate(range, id).is_none() {
            return Err(Rejection::Limit {
                what: format!("peers ever admitted to the overlay range {range}"),
                max: usize::try_from(peers_in(range)).unwrap_or(usize::MAX),
            });
        }
    }
    Ok(range)
}

/// Sets the cluster's range and places every member that has no overlay yet (checked
/// by [`range_for`] first).
pub(crate) fn set_range(state: &mut State, range: Ipv4Net) {
    state.overlay_range = Some(range);
    let unplaced = state
        .peers
        .values_mut()
        .filter(|p| p.is_member() && p.overlay.is_none());
    for peer in unplaced {
        if let Some((address, subnet)) = allocate(range, peer.id) {
            peer.overlay = Some(PeerOverlay {
                address,
                subnet,
                wireguard: None,
            });
        }
    }
}

/// Checks an advertised identity, and that no member other than `peer` uses its key
/// (WireGuard tells peers apart by key).
pub(crate) fn check_advertised(
    state: &State,
    identity: &OverlayIdentity,
    peer: Option<PeerId>,
) -> Result<(), Rejection> {
    check_identity(identity).map_err(|why| Rejection::InvalidOverlay { why })?;
    let holder = state.members().find(|p| {
        Some(p.id) != peer
            && p.overlay
                .as_ref()
                .and_then(|o| o.wireguard.as_ref())
                .is_some_and(|w| w.public_key == identity.public_key)
    });
    match holder {
        Some(other) => Err(Rejection::PeerConflict {
            peer: other.id,
            what: "WireGuard public key".into(),
            value: identity.public_key.clone(),
        }),
        None => Ok(()),
    }
}

/// Records `identity` as `peer`'s (placed by [`set_range`] first).
pub(crate) fn set_identity(state: &mut State, peer: PeerId, identity: &OverlayIdentity) {
    let overlay = state.peers.get_mut(&peer).and_then(|p| p.overlay.as_mut());
    if let Some(overlay) = overlay {
        overlay.wireguard = Some(identity.clone());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn net(text: &str) -> Ipv4Net {
        text.parse().unwrap()
    }

    #[test]
    fn the_rule_on_the_default_range() {
        let range = default_range();
        assert_eq!(range.to_string(), OVERLAY_RANGE_DEFAULT);
        assert_eq!(net(OVERLAY_RANGE_DEFAULT), range);
        assert_eq!(peers_in(range), 128);
        assert_eq!(
            allocate(range, 1),
            Some(("10.211.0.1".parse().unwrap(), net("10.211.128.0/24")))
        );
        assert_eq!(
            allocate(range, 128),
            Some(("10.211.0.128".parse().unwrap(), net("10.211.255.0/24")))
        );
        assert_eq!(allocate(range, 0), None);
        assert_eq!(allocate(range, 129), None);
    }

    #[test]
    fn ranges_are_checked() {
        assert!("10.211.0.1/16".parse::<Ipv4Net>().is_err());
        assert!("10.211.0.0/33".parse::<Ipv4Net>().is_err());
        assert!("10.211.0.0".parse::<Ipv4Net>().is_err());
        assert!(check_range(net("10.211.0.0/21")).is_err());
        assert!(check_range(net("10.0.0.0/7")).is_err());
        assert!(check_range(net("10.0.0.0/8")).is_ok());
        assert_eq!(peers_in(net("10.0.0.0/8")), 32768);
        assert_eq!(peers_in(net("10.16.0.0/20")), 8);
        assert_eq!(
            allocate(net("255.0.0.0/8"), 32768).map(|(_, s)| s),
            Some(net("255.255.255.0/24"))
        );
    }

    #[test]
    fn identities_are_checked() {
        let ok = OverlayIdentity {
            public_key: format!("{}=", "A".repeat(43)),
            endpoint: "192.0.2.1:51820".into(),
        };
        assert_eq!(check_identity(&ok), Ok(()));
        let v6 = OverlayIdentity {
            endpoint: "[2001:db8::1]:51820".into(),
            ..ok.clone()
        };
        assert_eq!(check_identity(&v6), Ok(()));
        for key in [
            "",
            "short=",
            &format!("{}B=", "A".repeat(42)),
            &"A".repeat(44),
        ] {
            let bad = OverlayIdentity {
                public_key: key.into(),
                ..ok.clone()
            };
            assert!(check_identity(&bad).is_err(), "{key}");
        }
        for endpoint in ["", "host", ":51820", "host:0", "host:70000", "a b:1"] {
            let bad = OverlayIdentity {
                endpoint: endpoint.into(),
                ..ok.clone()
            };
            assert!(check_identity(&bad).is_err(), "{endpoint}");
        }
    }
}
