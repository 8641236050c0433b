//! The containers' resolver: a small DNS responder, authoritative for the zone
//! [`ZONE`] (`web.hello.monk`, `main.web.hello.monk`) and a forwarder for every other
//! name. monkd runs one per peer on the container network's gateway, UDP port 53.
//! [`answer`] is the pure part (one query packet in; a reply, or the decision to
//! forward or drop, out); [`serve`] is the socket loop around it, relaying the names
//! that are not ours to the host's resolvers ([`upstreams_from_resolv_conf`]) from a
//! task per query. The wire format (RFC 1035) is hand-rolled and deliberately small:
//! one question per query, A records only, no EDNS, no TCP, no SOA in negative
//! answers (so resolvers do not cache them: a name may appear at any moment); a zone
//! reply that does not fit [`UDP_REPLY_BYTES_MAX`] carries TC and no answers.

use std::future::Future;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV6};
use std::sync::Arc;
use std::time::Duration;

use tokio::net::UdpSocket;
use tokio::task::JoinSet;
use tracing::debug;

/// The zone this responder is authoritative for.
pub const ZONE: &str = "monk";
/// TTL of the A records we answer, seconds: short, because names follow replicas that
/// move between peers and a cached stale address is a failed connection.
pub const ANSWER_TTL_SECS: u32 = 5;
/// Largest reply sent over UDP without EDNS (RFC 1035 §4.2.1).
pub const UDP_REPLY_BYTES_MAX: usize = 512;
/// Largest datagram read from a client or an upstream: the usual EDNS buffer size,
/// above the 1232 bytes resolvers advertise since DNS flag day 2020.
pub const PACKET_BYTES_MAX: usize = 4096;
/// How long to wait for one upstream before trying the next: a resolver answers from
/// its cache in milliseconds and recurses in well under a second; glibc's stub gives
/// up on us after 5 s.
pub const UPSTREAM_TIMEOUT: Duration = Duration::from_secs(2);
/// Forwarded queries in flight at once; beyond, the client gets SERVFAIL at once. Each
/// holds a task and a socket (a file descriptor) for at most
/// `UPSTREAMS_MAX * UPSTREAM_TIMEOUT`; the containers of one peer ask far fewer than
/// 256 uncached names in that time.
pub const FORWARDS_IN_FLIGHT_MAX: usize = 256;
/// Upstreams taken from resolv.conf, as glibc does (its `MAXNS`): each one tried adds
/// up to `UPSTREAM_TIMEOUT` to a failing forward.
pub const UPSTREAMS_MAX: usize = 3;
/// The port upstream resolvers listen on.
pub const DNS_PORT: u16 = 53;
/// Pause after a failed read from the responder's socket, so a socket that keeps
/// failing does not spin a core.
const RECEIVE_ERROR_PAUSE: Duration = Duration::from_millis(10);

const HEADER_BYTES: usize = 12;
const LABEL_BYTES_MAX: usize = 63;
const NAME_BYTES_MAX: usize = 255;
/// An answer record: name (a pointer to the question), type, class, TTL, length, IPv4.
const A_RECORD_BYTES: usize = 16;
/// A compression pointer to the name at offset 12, the question's.
const POINTER_TO_QUESTION: u16 = 0xC000 | HEADER_BYTES as u16;
const TYPE_A: u16 = 1;
const TYPE_ANY: u16 = 255;
const CLASS_IN: u16 = 1;
const CLASS_ANY: u16 = 255;
const FLAG_QR: u16 = 0x8000;
const OPCODE_MASK: u16 = 0x7800;
const FLAG_AA: u16 = 0x0400;
const FLAG_TC: u16 = 0x0200;
const FLAG_RD: u16 = 0x0100;
const FLAG_RA: u16 = 0x0080;

/// What the zone answers for one name.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Lookup {
    /// The name exists; its addresses (none: it exists but has no A records).
    Addresses(Vec<Ipv4Addr>),
    /// The name is in the zone and there is no such name.
    NoSuchName,
    /// Not in our zone: forward.
    NotOurs,
}

/// The zone's contents. [`answer`] asks only about names in [`ZONE`], lower case,
/// without a trailing dot (`web.hello.monk`), made of letters, digits, `-` and `_`.
pub trait Names: Send + Sync + 'static {
    fn lookup(&self, name: &str) -> Lookup;
}

/// What to do with one query packet.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Reply {
    /// Send these bytes back to the client.
    Answer(Vec<u8>),
    /// The name is not ours: relay the query to an upstream.
    Forward,
    /// Garbage not worth an answer.
    Drop,
}

/// A reply code (RFC 1035 §4.1.1).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Rcode {
    NoError = 0,
    FormErr = 1,
    ServFail = 2,
    NxDomain = 3,
    NotImp = 4,
}

/// The fields of a query's header we act on.
#[derive(Clone, Copy, Debug)]
struct Header {
    id: u16,
    flags: u16,
    questions: u16,
}

fn read_u16(bytes: &[u8], at: usize) -> Option<u16> {
    let pair = bytes.get(at..at.checked_add(2)?)?;
    Some(u16::from_be_bytes(pair.try_into().ok()?))
}

impl Header {
    /// The header of `packet`; `None` when it is shorter than a header.
    fn parse(packet: &[u8]) -> Option<Header> {
        if packet.len() < HEADER_BYTES {
            return None;
        }
        Some(Header {
            id: read_u16(packet, 0)?,
            flags: read_u16(packet, 2)?,
            questions: read_u16(packet, 4)?,
        })
    }

    fn is_response(&self) -> bool {
        self.flags & FLAG_QR != 0
    }

    fn opcode(&self) -> u16 {
        (self.flags & OPCODE_MASK) >> 11
    }
}

/// A query's one question.
struct Question<'a> {
    labels: Vec<&'a [u8]>,
    qtype: u16,
    qclass: u16,
    /// The question as it came (name, type, class), echoed in the reply.
    wire: &'a [u8],
}

/// The question after the header; `None` when it is cut short, uses a compression
/// pointer or a reserved label type, or its name is longer than 255 bytes.
fn parse_question(packet: &[u8]) -> Option<Question<'_>> {
    let mut at = HEADER_BYTES;
    let mut labels = Vec::new();
    loop {
        let len = usize::from(*packet.get(at)?);
        at += 1;
        if len == 0 {
            break;
        }
        // Compression pointers (0b11......) and the reserved label types (0b01......,
        // 0b10......) all read as lengths above 63.
        if len > LABEL_BYTES_MAX {
            return None;
        }
        labels.push(packet.get(at..at + len)?);
        at += len;
        // The name so far plus the root label's zero byte.
        if at - HEADER_BYTES + 1 > NAME_BYTES_MAX {
            return None;
        }
    }
    Some(Question {
        labels,
        qtype: read_u16(packet, at)?,
        qclass: read_u16(packet, at + 2)?,
        wire: packet.get(HEADER_BYTES..at + 4)?,
    })
}

/// Whose a question's name is.
enum Owner {
    /// Not in the zone.
    Elsewhere,
    /// In the zone, but with bytes no name of ours has.
    Impossible,
    /// In the zone: its lower-case dotted form.
    Ours(String),
}

fn owner(labels: &[&[u8]]) -> Owner {
    match labels.last() {
        Some(last) if last.eq_ignore_ascii_case(ZONE.as_bytes()) => {}
        _ => return Owner::Elsewhere,
    }
    let allowed = |b: &u8| b.is_ascii_alphanumeric() || *b == b'-' || *b == b'_';
    if !labels.iter().all(|label| label.iter().all(allowed)) {
        return Owner::Impossible;
    }
    let labels: Vec<String> = labels
        .iter()
        .map(|label| String::from_utf8_lossy(label).to_ascii_lowercase())
        .collect();
    Owner::Ours(labels.join("."))
}

/// Answers one query packet: ours from `names`, `Forward` for the rest, FORMERR (or
/// NOTIMP for an opcode other than QUERY) for a malformed query whose header is
/// readable, `Drop` for anything shorter and for responses (answering those would let
/// two responders echo errors at each other forever).
pub fn answer(query: &[u8], names: &dyn Names) -> Reply {
    let Some(header) = Header::parse(query) else {
        return Reply::Drop;
    };
    if header.is_response() {
        return Reply::Drop;
    }
    if header.opcode() != 0 {
        return Reply::Answer(reply(&header, None, Rcode::NotImp, &[]));
    }
    let question = match parse_question(query) {
        Some(question) if header.questions == 1 => question,
        _ => return Reply::Answer(reply(&header, None, Rcode::FormErr, &[])),
    };
    let lookup = match owner(&question.labels) {
        Owner::Elsewhere => return Reply::Forward,
        Owner::Impossible => Lookup::NoSuchName,
        Owner::Ours(name) => names.lookup(&name),
    };
    let addresses = match lookup {
        Lookup::NotOurs => return Reply::Forward,
        Lookup::NoSuchName => {
            return Reply::Answer(reply(&header, Some(&question), Rcode::NxDomain, &[]))
        }
        Lookup::Addresses(addresses) => addresses,
    };
    let wanted = matches!(question.qtype, TYPE_A | TYPE_ANY)
        && matches!(question.qclass, CLASS_IN | CLASS_ANY);
    let records = if wanted { &addresses[..] } else { &[] };
    Reply::Answer(reply(&header, Some(&question), Rcode::NoError, records))
}

/// A reply to `header`'s query: authoritative when it echoes a question of ours
/// (`question` given); truncated to header and question, with TC, when the records do
/// not fit `UDP_REPLY_BYTES_MAX`.
fn reply(
    header: &Header,
    question: Option<&Question<'_>>,
    rcode: Rcode,
    records: &[Ipv4Addr],
) -> Vec<u8> {
    let question_wire = question.map_or(&[][..], |q| q.wire);
    let full = HEADER_BYTES + question_wire.len() + records.len().saturating_mul(A_RECORD_BYTES);
    let count = u16::try_from(records.len())
        .ok()
        .filter(|_| full <= UDP_REPLY_BYTES_MAX);
    let mut flags = FLAG_QR | (header.flags & (OPCODE_MASK | FLAG_RD)) | FLAG_RA | rcode as u16;
    if question.is_some() && rcode != Rcode::ServFail {
        flags |= FLAG_AA;
    }
    if count.is_none() {
        flags |= FLAG_TC;
    }
    let mut out = Vec::with_capacity(full.min(UDP_REPLY_BYTES_MAX));
    out.extend_from_slice(&header.id.to_be_bytes());
    out.extend_from_slice(&flags.to_be_bytes());
    out.extend_from_slice(&u16::from(question.is_some()).to_be_bytes());
    out.extend_from_slice(&count.unwrap_or(0).to_be_bytes());
    out.extend_from_slice(&[0, 0, 0, 0]);
    out.extend_from_slice(question_wire);
    if count.is_some() {
        for address in records {
            out.extend_from_slice(&POINTER_TO_QUESTION.to_be_bytes());
            out.extend_from_slice(&TYPE_A.to_be_bytes());
            out.extend_from_slice(&CLASS_IN.to_be_bytes());
            out.extend_from_slice(&ANSWER_TTL_SECS.to_be_bytes());
            out.extend_from_slice(&4u16.to_be_bytes());
            out.extend_from_slice(&address.octets());
        }
    }
    out
}

/// SERVFAIL for a query we meant to forward, with its question echoed.
fn servfail(query: &[u8]) -> Option<Vec<u8>> {
    let header = Header::parse(query)?;
    let question = parse_question(query);
    Some(reply(&header, question.as_ref(), Rcode::ServFail, &[]))
}

/// The host's resolvers from resolv.conf text: the `nameserver` lines, IPv4 and IPv6
/// (with a numeric `%scope`; one naming an interface is skipped), port 53, the first
/// `UPSTREAMS_MAX` distinct ones in order. Loopback resolvers (systemd-resolved's
/// 127.0.0.53, a local dnsmasq) are kept: monkd forwards from the host, where they are
/// reachable; a caller that wants them out filters them.
pub fn upstreams_from_resolv_conf(text: &str) -> Vec<SocketAddr> {
    let mut upstreams = Vec::new();
    for line in text.lines() {
        let mut words = line.split_whitespace();
        if words.next() != Some("nameserver") {
            continue;
        }
        let Some(address) = words.next().and_then(nameserver) else {
            continue;
        };
        if !upstreams.contains(&address) {
            upstreams.push(address);
        }
        if upstreams.len() == UPSTREAMS_MAX {
            break;
        }
    }
    upstreams
}

fn nameserver(word: &str) -> Option<SocketAddr> {
    let (address, scope) = match word.split_once('%') {
        Some((address, scope)) => (address, Some(scope)),
        None => (word, None),
    };
    match (address.parse::<IpAddr>().ok()?, scope) {
        (IpAddr::V4(v4), None) => Some(SocketAddr::from((v4, DNS_PORT))),
        (IpAddr::V4(_), Some(_)) => None,
        (IpAddr::V6(v6), scope) => {
            let scope_id = scope.map_or(Some(0), |s| s.parse().ok())?;
            Some(SocketAddrV6::new(v6, DNS_PORT, 0, scope_id).into())
        }
    }
}

/// The bounds of one responder: `serve` uses the named consts; tests shrink them.
#[derive(Clone, Copy, Debug)]
struct Bounds {
    upstream_timeout: Duration,
    forwards_in_flight_max: usize,
}

impl Bounds {
    const DEFAULT: Bounds = Bounds {
        upstream_timeout: UPSTREAM_TIMEOUT,
        forwards_in_flight_max: FORWARDS_IN_FLIGHT_MAX,
    };
}

/// Runs until `shutdown` resolves: reads queries from `socket`, answers ours, and
/// forwards the others to `upstream` from a task each (the first upstream that answers
/// within `UPSTREAM_TIMEOUT`; SERVFAIL when none does or the list is empty), relaying
/// the upstream's reply with the client's id. Forwards still in flight at shutdown are
/// abandoned (their clients retry), so the socket is closed when this returns.
pub async fn serve(
    socket: UdpSocket,
    names: Arc<dyn Names>,
    upstream: Vec<SocketAddr>,
    shutdown: impl Future<Output = ()>,
) {
    serve_within(socket, names, upstream, shutdown, Bounds::DEFAULT).await
}

async fn serve_within(
    socket: UdpSocket,
    names: Arc<dyn Names>,
    upstream: Vec<SocketAddr>,
    shutdown: impl Future<Output = ()>,
    bounds: Bounds,
) {
    let socket = Arc::new(socket);
    let upstream: Arc<[SocketAddr]> = upstream.into();
    let mut forwards = JoinSet::new();
    let mut buffer = vec![0u8; PACKET_BYTES_MAX];
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        let received = tokio::select! {
            () = &mut shutdown => break,
            received = socket.recv_from(&mut buffer) => received,
        };
        let (len, client) = match received {
            Ok(received) => received,
            Err(e) => {
                debug!("DNS: could not read a query: {e}");
                tokio::time::sleep(RECEIVE_ERROR_PAUSE).await;
                continue;
            }
        };
        let query = buffer.get(..len).unwrap_or_default();
        let reply = match answer(query, names.as_ref()) {
            Reply::Answer(reply) => reply,
            Reply::Drop => continue,
            Reply::Forward => {
                while forwards.try_join_next().is_some() {}
                if forwards.len() < bounds.forwards_in_flight_max {
                    let forward = forward(
                        Arc::clone(&socket),
                        client,
                        query.to_vec(),
                        Arc::clone(&upstream),
                        bounds.upstream_timeout,
                    );
                    forwards.spawn(forward);
                    continue;
                }
                debug!(%client, "DNS: {} forwards in flight, SERVFAIL", forwards.len());
                let Some(reply) = servfail(query) else {
                    continue;
                };
                reply
            }
        };
        send(&socket, &reply, client).await;
    }
    forwards.shutdown().await;
}

async fn send(socket: &UdpSocket, reply: &[u8], client: SocketAddr) {
    if let Err(e) = socket.send_to(reply, client).await {
        debug!(%client, "DNS: could not send a reply: {e}");
    }
}

/// Relays `query` to the upstreams and the reply (or SERVFAIL) to `client`.
async fn forward(
    socket: Arc<UdpSocket>,
    client: SocketAddr,
    query: Vec<u8>,
    upstream: Arc<[SocketAddr]>,
    timeout: Duration,
) {
    let reply = match relay(&query, &upstream, timeout).await {
        Some(reply) => reply,
        None => match servfail(&query) {
            Some(reply) => reply,
            None => return,
        },
    };
    send(&socket, &reply, client).await;
}

/// Why one upstream gave no reply.
#[derive(Debug, thiserror::Error)]
enum ForwardError {
    #[error("no reply within {0:?}")]
    Timeout(Duration),
    #[error("{0}")]
    Io(#[from] std::io::Error),
    #[error("a reply larger than {PACKET_BYTES_MAX} bytes")]
    TooLarge,
}

/// The first upstream's reply to `query`, carrying `query`'s id.
async fn relay(query: &[u8], upstream: &[SocketAddr], timeout: Duration) -> Option<Vec<u8>> {
    let id = Header::parse(query)?.id;
    for &server in upstream {
        let asked = tokio::time::timeout(timeout, ask(query, server)).await;
        match asked.unwrap_or(Err(ForwardError::Timeout(timeout))) {
            Ok(mut reply) => {
                set_id(&mut reply, id);
                return Some(reply);
            }
            Err(e) => debug!(%server, "DNS: upstream gave no reply: {e}"),
        }
    }
    None
}

/// Sends `query` to `server` under a fresh id from a fresh ephemeral socket (connected,
/// so only `server` can answer it) and waits for the reply with that id.
async fn ask(query: &[u8], server: SocketAddr) -> Result<Vec<u8>, ForwardError> {
    let local: SocketAddr = match server {
        SocketAddr::V4(_) => (Ipv4Addr::UNSPECIFIED, 0).into(),
        SocketAddr::V6(_) => (Ipv6Addr::UNSPECIFIED, 0).into(),
    };
    let socket = UdpSocket::bind(local).await?;
    socket.connect(server).await?;
    let id = fresh_id(query);
    let mut outgoing = query.to_vec();
    set_id(&mut outgoing, id);
    socket.send(&outgoing).await?;
    // One byte more than the largest reply we take, to tell a full one from a cut one.
    let mut buffer = vec![0u8; PACKET_BYTES_MAX + 1];
    loop {
        let len = socket.recv(&mut buffer).await?;
        if len > PACKET_BYTES_MAX {
            return Err(ForwardError::TooLarge);
        }
        let reply = buffer.get(..len).unwrap_or_default();
        if Header::parse(reply).is_some_and(|h| h.id == id && h.is_response()) {
            return Ok(reply.to_vec());
        }
    }
}

/// A random id for the upstream query, so an off-path forger must guess it as well as
/// the ephemeral port; the client's own id if the system has no randomness.
fn fresh_id(query: &[u8]) -> u16 {
    let mut bytes = [0u8; 2];
    match getrandom::getrandom(&mut bytes) {
        Ok(()) => u16::from_be_bytes(bytes),
        Err(_) => Header::parse(query).map_or(0, |h| h.id),
    }
}

fn set_id(packet: &mut [u8], id: u16) {
    if let Some(head) = packet.get_mut(..2) {
        head.copy_from_slice(&id.to_be_bytes());
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;
    use std::sync::Mutex;
    use std::time::Instant;

    use proptest::prelude::*;
    use tokio::sync::oneshot;
    use tokio::time::timeout;

    use super::*;

    /// Long enough for any reply on loopback on a busy 2-core machine.
    const REPLY_WITHIN: Duration = Duration::from_secs(5);

    /// A zone with fixed names that remembers what it was asked.
    #[derive(Default)]
    struct Zone {
        names: HashMap<String, Vec<Ipv4Addr>>,
        asked: Mutex<Vec<String>>,
    }

    impl Zone {
        fn with(names: &[(&str, Vec<Ipv4Addr>)]) -> Zone {
            Zone {
                names: names
                    .iter()
                    .map(|(n, a)| (n.to_string(), a.clone()))
                    .collect(),
                asked: Mutex::default(),
            }
        }

        fn asked(&self) -> Vec<String> {
            self.asked.lock().expect("not poisoned").clone()
        }
    }

    impl Names for Zone {
        fn lookup(&self, name: &str) -> Lookup {
            self.asked
                .lock()
                .expect("not poisoned")
                .push(name.to_owned());
            match self.names.get(name) {
                Some(addresses) => Lookup::Addresses(addresses.clone()),
                None => Lookup::NoSuchName,
            }
        }
    }

    fn hello() -> Zone {
        Zone::with(&[
            (
                "web.hello.monk",
                vec![Ipv4Addr::new(10, 211, 1, 2), Ipv4Addr::new(10, 211, 2, 7)],
            ),
            ("main.web.hello.monk", vec![Ipv4Addr::new(10, 211, 1, 2)]),
        ])
    }

    const TYPE_AAAA: u16 = 28;

    /// A query as a stub resolver sends it: RD set, one question, class IN.
    fn query(id: u16, name: &str, qtype: u16) -> Vec<u8> {
        let mut q = Vec::new();
        q.extend_from_slice(&id.to_be_bytes());
        q.extend_from_slice(&FLAG_RD.to_be_bytes());
        q.extend_from_slice(&[0, 1, 0, 0, 0, 0, 0, 0]);
        for label in name.split('.').filter(|l| !l.is_empty()) {
            q.push(u8::try_from(label.len()).expect("a short label"));
            q.extend_from_slice(label.as_bytes());
        }
        q.push(0);
        q.extend_from_slice(&qtype.to_be_bytes());
        q.extend_from_slice(&CLASS_IN.to_be_bytes());
        q
    }

    /// The parts of a reply the tests look at.
    #[derive(Debug)]
    struct Parsed {
        id: u16,
        flags: u16,
        questions: u16,
        answers: u16,
        /// The question section as sent.
        question: Vec<u8>,
        /// (TTL, address) of each answer record.
        records: Vec<(u32, Ipv4Addr)>,
    }

    impl Parsed {
        fn rcode(&self) -> u16 {
            self.flags & 0x000F
        }

        fn has(&self, flag: u16) -> bool {
            self.flags & flag != 0
        }
    }

    fn parse(reply: &[u8]) -> Parsed {
        let header = Header::parse(reply).expect("a header");
        let answers = read_u16(reply, 6).expect("ANCOUNT");
        let (question, mut at) = if header.questions == 1 {
            let q = parse_question(reply).expect("a question");
            (q.wire.to_vec(), HEADER_BYTES + q.wire.len())
        } else {
            (Vec::new(), HEADER_BYTES)
        };
        let mut records = Vec::new();
        for _ in 0..answers {
            let record = &reply[at..at + A_RECORD_BYTES];
            assert_eq!(record[..2], POINTER_TO_QUESTION.to_be_bytes());
            assert_eq!(record[2..6], [0, 1, 0, 1], "type A, class IN");
            let ttl = u32::from_be_bytes(record[6..10].try_into().unwrap());
            assert_eq!(record[10..12], [0, 4]);
            records.push((
                ttl,
                Ipv4Addr::new(record[12], record[13], record[14], record[15]),
            ));
            at += A_RECORD_BYTES;
        }
        assert_eq!(at, reply.len(), "nothing after the answers");
        Parsed {
            id: header.id,
            flags: header.flags,
            questions: header.questions,
            answers,
            question,
            records,
        }
    }

    fn answered(reply: Reply) -> Parsed {
        match reply {
            Reply::Answer(bytes) => parse(&bytes),
            other => panic!("expected an answer, got {other:?}"),
        }
    }

    #[test]
    fn an_a_query_for_a_zone_name_gets_its_addresses_authoritatively() {
        let zone = hello();
        let q = query(0xBEEF, "web.hello.monk", TYPE_A);
        let reply = answered(answer(&q, &zone));
        assert_eq!(reply.id, 0xBEEF);
        assert!(
            reply.has(FLAG_QR) && reply.has(FLAG_AA) && reply.has(FLAG_RA) && reply.has(FLAG_RD)
        );
        assert!(!reply.has(FLAG_TC));
        assert_eq!(reply.rcode(), Rcode::NoError as u16);
        assert_eq!(reply.questions, 1);
        assert_eq!(reply.question, q[HEADER_BYTES..]);
        assert_eq!(
            reply.records,
            vec![
                (ANSWER_TTL_SECS, Ipv4Addr::new(10, 211, 1, 2)),
                (ANSWER_TTL_SECS, Ipv4Addr::new(10, 211, 2, 7))
            ]
        );
        let mut no_recursion = query(7, "main.web.hello.monk", TYPE_ANY);
        no_recursion[2] &= !((FLAG_RD >> 8) as u8);
        let reply = answered(answer(&no_recursion, &zone));
        assert!(!reply.has(FLAG_RD), "RD is copied, not set");
        assert_eq!(
            reply.records,
            vec![(ANSWER_TTL_SECS, Ipv4Addr::new(10, 211, 1, 2))]
        );
    }

    #[test]
    fn an_aaaa_query_for_a_zone_name_gets_no_data() {
        let zone = hello();
        let q = query(12, "web.hello.monk", TYPE_AAAA);
        let reply = answered(answer(&q, &zone));
        assert_eq!(reply.rcode(), Rcode::NoError as u16);
        assert!(reply.has(FLAG_AA));
        assert_eq!(reply.answers, 0);
        assert_eq!(reply.question, q[HEADER_BYTES..]);
    }

    #[test]
    fn an_unknown_zone_name_gets_nxdomain() {
        let zone = hello();
        for name in ["db.hello.monk", "monk"] {
            let q = query(13, name, TYPE_A);
            let reply = answered(answer(&q, &zone));
            assert_eq!(reply.rcode(), Rcode::NxDomain as u16, "{name}");
            assert!(reply.has(FLAG_AA));
            assert_eq!(reply.answers, 0);
            assert_eq!(reply.question, q[HEADER_BYTES..]);
        }
        assert_eq!(zone.asked(), ["db.hello.monk", "monk"]);
    }

    #[test]
    fn a_zone_name_with_bytes_no_name_has_gets_nxdomain_without_asking() {
        let zone = hello();
        for name in ["we b.hello.monk", "web.hel\u{e9}lo.monk", "*.hello.monk"] {
            let reply = answered(answer(&query(14, name, TYPE_A), &zone));
            assert_eq!(reply.rcode(), Rcode::NxDomain as u16, "{name}");
        }
        // One label `hello.monk` (a dot inside it) is not the name `hello.monk`.
        let mut dotted = query(15, "x.monk", TYPE_A);
        dotted.splice(HEADER_BYTES..HEADER_BYTES + 2, [3, b'a', b'.', b'b']);
        assert_eq!(
            answered(answer(&dotted, &zone)).rcode(),
            Rcode::NxDomain as u16
        );
        assert!(zone.asked().is_empty());
    }

    #[test]
    fn names_outside_the_zone_are_forwarded_without_asking() {
        let zone = hello();
        for name in ["example.com", "monk.example.com", "notmonk", "monkx", ""] {
            assert_eq!(
                answer(&query(16, name, TYPE_A), &zone),
                Reply::Forward,
                "{name:?}"
            );
        }
        assert!(zone.asked().is_empty());
    }

    #[test]
    fn a_zone_name_the_names_disown_is_forwarded() {
        struct Nothing;
        impl Names for Nothing {
            fn lookup(&self, _: &str) -> Lookup {
                Lookup::NotOurs
            }
        }
        assert_eq!(
            answer(&query(17, "web.hello.monk", TYPE_A), &Nothing),
            Reply::Forward
        );
    }

    #[test]
    fn names_are_matched_without_case_or_trailing_dot() {
        let zone = hello();
        let q = query(18, "WEB.Hello.MONK.", TYPE_A);
        let reply = answered(answer(&q, &zone));
        assert_eq!(reply.rcode(), Rcode::NoError as u16);
        assert_eq!(reply.records.len(), 2);
        assert_eq!(
            reply.question,
            q[HEADER_BYTES..],
            "the question keeps its case"
        );
        assert_eq!(zone.asked(), ["web.hello.monk"]);
    }

    #[test]
    fn malformed_queries_get_formerr_when_the_header_is_readable() {
        let zone = hello();
        let good = query(0x0A0B, "web.hello.monk", TYPE_A);
        let formerr = |packet: &[u8], why: &str| {
            let reply = answered(answer(packet, &zone));
            assert_eq!(reply.rcode(), Rcode::FormErr as u16, "{why}");
            assert_eq!(reply.id, 0x0A0B, "{why}");
            assert!(reply.has(FLAG_QR) && !reply.has(FLAG_AA), "{why}");
            assert_eq!((reply.questions, reply.answers), (0, 0), "{why}");
        };
        let mut none = good.clone();
        none[5] = 0;
        formerr(&none, "no question");
        let mut two = good.clone();
        two[5] = 2;
        formerr(&two, "two questions");
        formerr(&good[..good.len() - 1], "cut in the class");
        formerr(&good[..HEADER_BYTES + 5], "cut in a label");
        formerr(&good[..HEADER_BYTES], "no question bytes");
        let mut pointer = good[..HEADER_BYTES].to_vec();
        pointer.extend_from_slice(&[0xC0, 0x0C, 0, 1, 0, 1]);
        formerr(&pointer, "a compression pointer");
        let mut long_label = good[..HEADER_BYTES].to_vec();
        long_label.push(64);
        long_label.extend_from_slice(&[b'a'; 64]);
        long_label.extend_from_slice(&[4, b'm', b'o', b'n', b'k', 0, 0, 1, 0, 1]);
        formerr(&long_label, "a 64-byte label");
        let long_name = format!("{}.monk", vec!["a".repeat(63); 4].join("."));
        formerr(&query(0x0A0B, &long_name, TYPE_A), "a 260-byte name");
        let longest = format!(
            "{}.{}.monk",
            vec!["a".repeat(63); 3].join("."),
            "a".repeat(56)
        );
        assert_eq!(longest.len() + 2, NAME_BYTES_MAX);
        let reply = answered(answer(&query(0x0A0B, &longest, TYPE_A), &zone));
        assert_eq!(
            reply.rcode(),
            Rcode::NxDomain as u16,
            "a 255-byte name is fine"
        );

        let mut notify = good.clone();
        notify[2] |= 4 << 3;
        let reply = answered(answer(&notify, &zone));
        assert_eq!(reply.rcode(), Rcode::NotImp as u16);
        assert_eq!(reply.flags & OPCODE_MASK, 4 << 11, "the opcode is echoed");

        assert_eq!(answer(&good[..11], &zone), Reply::Drop, "no header");
        assert_eq!(answer(&[], &zone), Reply::Drop);
        let mut response = good.clone();
        response[2] |= 0x80;
        assert_eq!(answer(&response, &zone), Reply::Drop, "a response");
        assert_eq!(
            zone.asked(),
            [longest],
            "only the well-formed query was looked up"
        );
    }

    #[test]
    fn a_reply_too_large_for_udp_is_truncated_to_header_and_question() {
        let addresses =
            |n: u8| -> Vec<Ipv4Addr> { (0..n).map(|i| Ipv4Addr::new(10, 211, 0, i)).collect() };
        // 12 (header) + 14 (question of `big.monk`) + 30 × 16 = 506 bytes: fits.
        let zone = Zone::with(&[("big.monk", addresses(30)), ("bigger.monk", addresses(31))]);
        let reply = answered(answer(&query(19, "big.monk", TYPE_A), &zone));
        assert!(!reply.has(FLAG_TC));
        assert_eq!(reply.records.len(), 30);
        // 12 + 17 + 31 × 16 = 525 bytes: does not.
        let q = query(20, "bigger.monk", TYPE_A);
        let Reply::Answer(bytes) = answer(&q, &zone) else {
            panic!("an answer")
        };
        assert_eq!(bytes.len(), q.len());
        let reply = parse(&bytes);
        assert!(reply.has(FLAG_TC) && reply.has(FLAG_AA));
        assert_eq!(reply.rcode(), Rcode::NoError as u16);
        assert_eq!((reply.questions, reply.answers), (1, 0));
        assert_eq!(reply.question, q[HEADER_BYTES..]);
    }

    #[test]
    fn resolv_conf_nameservers_become_upstreams() {
        let text = "# generated\n\
            search example.com\n\
            nameserver 127.0.0.53\n\
            nameserver   2001:db8::1  # a comment\n\
            ;nameserver 192.0.2.1\n\
            nameserver 127.0.0.53\n\
            nameserver fe80::1%eth0\n\
            nameserver not-an-address\n\
            nameserver\n\
            options edns0 trust-ad\n\
            nameserver 192.0.2.2\n\
            nameserver 192.0.2.3\n";
        let expected: Vec<SocketAddr> = ["127.0.0.53:53", "[2001:db8::1]:53", "192.0.2.2:53"]
            .iter()
            .map(|a| a.parse().unwrap())
            .collect();
        assert_eq!(upstreams_from_resolv_conf(text), expected);
        let scoped = upstreams_from_resolv_conf("nameserver fe80::1%3\nnameserver 10.0.0.1%3\n");
        assert_eq!(
            scoped,
            [SocketAddr::from(SocketAddrV6::new(
                "fe80::1".parse().unwrap(),
                53,
                0,
                3
            ))]
        );
        assert!(upstreams_from_resolv_conf("").is_empty());
    }

    fn assert_keeps_the_id(packet: &[u8]) -> Result<(), TestCaseError> {
        if let Reply::Answer(reply) = answer(packet, &hello()) {
            prop_assert!(reply.len() >= HEADER_BYTES);
            prop_assert_eq!(&reply[..2], &packet[..2]);
            prop_assert!(reply[2] & 0x80 != 0, "QR set");
            prop_assert!(reply.len() <= UDP_REPLY_BYTES_MAX);
        }
        Ok(())
    }

    proptest! {
        /// Any bytes at all: no panic, and every answer is a reply to the same id.
        #[test]
        fn any_bytes_get_a_reply_with_their_id_or_none(
            packet in proptest::collection::vec(any::<u8>(), 0..600),
        ) {
            assert_keeps_the_id(&packet)?;
        }

        /// A well-formed query with bytes overwritten, cut or appended, to reach the
        /// question parser with plausible input.
        #[test]
        fn damaged_queries_get_a_reply_with_their_id_or_none(
            name in "[a-zA-Z0-9.-]{0,80}(\\.monk)?",
            edits in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 0..6),
            cut in any::<prop::sample::Index>(),
            tail in proptest::collection::vec(any::<u8>(), 0..40),
        ) {
            let mut packet = query(0x5151, &name, TYPE_A);
            for (at, byte) in edits {
                let at = at.index(packet.len());
                packet[at] = byte;
            }
            packet.truncate(cut.index(packet.len() + 1).max(1));
            packet.extend_from_slice(&tail);
            assert_keeps_the_id(&packet)?;
        }
    }

    /// A responder on 127.0.0.1 and a client connected to it; `stop` ends it.
    struct Running {
        client: UdpSocket,
        stop: oneshot::Sender<()>,
        served: tokio::task::JoinHandle<()>,
    }

    async fn start(upstream: Vec<SocketAddr>, bounds: Bounds) -> Running {
        let socket = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let address = socket.local_addr().unwrap();
        let (stop, stopped) = oneshot::channel();
        let shutdown = async move {
            let _ = stopped.await;
        };
        let served = tokio::spawn(serve_within(
            socket,
            Arc::new(hello()),
            upstream,
            shutdown,
            bounds,
        ));
        let client = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        client.connect(address).await.unwrap();
        Running {
            client,
            stop,
            served,
        }
    }

    impl Running {
        async fn ask(&self, packet: &[u8]) -> Vec<u8> {
            self.client.send(packet).await.unwrap();
            receive(&self.client).await
        }

        async fn stop(self) {
            let _ = self.stop.send(());
            timeout(REPLY_WITHIN, self.served)
                .await
                .expect("stops in time")
                .unwrap();
        }
    }

    async fn receive(socket: &UdpSocket) -> Vec<u8> {
        let mut buffer = vec![0u8; PACKET_BYTES_MAX];
        let len = timeout(REPLY_WITHIN, socket.recv(&mut buffer))
            .await
            .expect("a reply in time")
            .unwrap();
        buffer.truncate(len);
        buffer
    }

    /// An address on 127.0.0.1 with nothing listening: sending there is refused.
    async fn closed_port() -> SocketAddr {
        let socket = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        socket.local_addr().unwrap()
    }

    #[tokio::test]
    async fn serve_answers_zone_names_and_relays_the_rest_with_the_client_id() {
        let upstream = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let refusing = closed_port().await;
        let running = start(
            vec![refusing, upstream.local_addr().unwrap()],
            Bounds::DEFAULT,
        )
        .await;

        let ours = parse(
            &running
                .ask(&query(0x1111, "main.web.hello.monk", TYPE_A))
                .await,
        );
        assert_eq!(ours.id, 0x1111);
        assert_eq!(
            ours.records,
            vec![(ANSWER_TTL_SECS, Ipv4Addr::new(10, 211, 1, 2))]
        );

        let question = query(0x2222, "example.com", TYPE_A);
        running.client.send(&question).await.unwrap();
        let mut buffer = vec![0u8; PACKET_BYTES_MAX];
        let (len, forwarder) = timeout(REPLY_WITHIN, upstream.recv_from(&mut buffer))
            .await
            .expect("the query reaches the upstream past the refusing one")
            .unwrap();
        let forwarded = &buffer[..len];
        assert_eq!(
            forwarded[2..],
            question[2..],
            "relayed as asked, but for the id"
        );
        let mut upstream_reply = forwarded.to_vec();
        upstream_reply[2] |= 0x80;
        upstream_reply[3] |= 0x80;
        upstream_reply[7] = 1;
        upstream_reply.extend_from_slice(&[
            0xC0, 0x0C, 0, 1, 0, 1, 0, 0, 0x0E, 0x10, 0, 4, 192, 0, 2, 80,
        ]);
        let mut stray = upstream_reply.clone();
        stray[0] ^= 0xFF;
        upstream.send_to(&stray, forwarder).await.unwrap();
        upstream.send_to(&upstream_reply, forwarder).await.unwrap();

        let relayed = receive(&running.client).await;
        assert_eq!(relayed[..2], [0x22, 0x22], "the client's id");
        assert_eq!(
            relayed[2..],
            upstream_reply[2..],
            "the upstream's reply, not the stray one"
        );
        assert_eq!(
            parse(&relayed).records,
            vec![(3600, Ipv4Addr::new(192, 0, 2, 80))]
        );
        running.stop().await;
    }

    #[tokio::test]
    async fn a_silent_upstream_gets_the_client_servfail_within_the_bound() {
        let silent = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let socket = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let address = socket.local_addr().unwrap();
        let (stop, stopped) = oneshot::channel::<()>();
        let upstream = vec![silent.local_addr().unwrap()];
        let served = tokio::spawn(serve(socket, Arc::new(hello()), upstream, async move {
            let _ = stopped.await;
        }));
        let client = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        client.connect(address).await.unwrap();

        let asked = Instant::now();
        client
            .send(&query(0x3333, "example.org", TYPE_A))
            .await
            .unwrap();
        let reply = parse(&receive(&client).await);
        let waited = asked.elapsed();
        assert_eq!(reply.id, 0x3333);
        assert_eq!(reply.rcode(), Rcode::ServFail as u16);
        assert!(!reply.has(FLAG_AA));
        assert_eq!(
            reply.question,
            query(0x3333, "example.org", TYPE_A)[HEADER_BYTES..]
        );
        assert!(
            waited >= UPSTREAM_TIMEOUT,
            "waited the upstream out: {waited:?}"
        );
        assert!(
            waited < UPSTREAM_TIMEOUT + Duration::from_secs(2),
            "{waited:?}"
        );
        let _ = stop.send(());
        timeout(REPLY_WITHIN, served)
            .await
            .expect("stops in time")
            .unwrap();
    }

    #[tokio::test]
    async fn with_no_upstream_the_client_gets_servfail_at_once() {
        let running = start(Vec::new(), Bounds::DEFAULT).await;
        let reply = parse(&running.ask(&query(0x4444, "example.net", TYPE_A)).await);
        assert_eq!((reply.id, reply.rcode()), (0x4444, Rcode::ServFail as u16));
        running.stop().await;
    }

    #[tokio::test]
    async fn forwards_beyond_the_bound_get_servfail_at_once_and_shutdown_abandons_the_rest() {
        let silent = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let bounds = Bounds {
            upstream_timeout: Duration::from_secs(60),
            forwards_in_flight_max: 1,
        };
        let running = start(vec![silent.local_addr().unwrap()], bounds).await;
        running
            .client
            .send(&query(0x5555, "one.example", TYPE_A))
            .await
            .unwrap();
        let mut buffer = vec![0u8; PACKET_BYTES_MAX];
        timeout(REPLY_WITHIN, silent.recv_from(&mut buffer))
            .await
            .expect("the first query is forwarded")
            .unwrap();
        let reply = parse(&running.ask(&query(0x6666, "two.example", TYPE_A)).await);
        assert_eq!((reply.id, reply.rcode()), (0x6666, Rcode::ServFail as u16));
        let ours = parse(&running.ask(&query(0x7777, "web.hello.monk", TYPE_A)).await);
        assert_eq!(ours.records.len(), 2, "zone names are still answered");
        running.stop().await;
    }
}
