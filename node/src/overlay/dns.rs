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
    answer_within(query, names, UDP_REPLY_BYTES_MAX)
}

/// [`answer`] for a transport whose replies may hold `reply_max` bytes (TCP: 65,535).
pub fn answer_within(query: &[u8], names: &dyn Names, reply_max: usize) -> Reply {
    let Some(header) = Header::parse(query) else {
        return Reply::Drop;
    };
    if header.is_response() {
        return Reply::Drop;
    }
    let reply = |header: &Header, question: Option<&Question<'_>>, rcode, records: &[Ipv4Addr]| {
        reply(header, question, rcode, records, reply_max)
    };
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
/// not fit `reply_max` bytes.
fn reply(
    header: &Header,
    question: Option<&Question<'_>>,
    rcode: Rcode,
    records: &[Ipv4Addr],
    reply_max: usize,
) -> Vec<u8> {
    let question_wire = question.map_or(&[][..], |q| q.wire);
    let full = HEADER_BYTES + question_wire.len() + records.len().saturating_mul(A_RECORD_BYTES);
    let count = u16::try_from(records.len())
        .ok()
        .filter(|_| full <= reply_max);
    let mut flags = FLAG_QR | (header.flags & (OPCODE_MASK | FLAG_RD)) | FLAG_RA | rcode as u16;
    if question.is_some() && rcode != Rcode::ServFail {
        flags |= FLAG_AA;
    }
    if count.is_none() {
        flags |= FLAG_TC;
    }
    let mut out = Vec::with_capacity(full.min(reply_max));
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
    Some(reply(
        &header,
        question.as_ref(),
        Rcode::ServFail,
        &[],
        UDP_REPLY_BYTES_MAX,
    ))
}

/// Longest DNS message over TCP (its two-byte length prefix).
pub const TCP_MESSAGE_BYTES_MAX: usize = u16::MAX as usize;
/// How long a TCP client may take to send a query before the connection is closed.
pub const TCP_IDLE_TIMEOUT: Duration = Duration::from_secs(10);
/// TCP connections served at once (beyond it, new ones wait in the backlog).
pub const TCP_CONNECTIONS_MAX: usize = 64;

/// DNS over TCP on `listener` until `shutdown`: what a client asks after a truncated
/// UDP answer (a name with more containers than 512 bytes hold). Names of the zone are
/// answered whole; others get SERVFAIL (their UDP answers come from the host's
/// resolvers, relayed as they are).
pub async fn serve_tcp(
    listener: tokio::net::TcpListener,
    names: Arc<dyn Names>,
    shutdown: impl Future<Output = ()>,
) {
    let mut connections = JoinSet::new();
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        let accepted = tokio::select! {
            () = &mut shutdown => break,
            accepted = listener.accept() => accepted,
        };
        while connections.try_join_next().is_some() {}
        let Ok((stream, _)) = accepted else {
            tokio::time::sleep(RECEIVE_ERROR_PAUSE).await;
            continue;
        };
        if connections.len() >= TCP_CONNECTIONS_MAX {
            continue;
        }
        let names = Arc::clone(&names);
        connections.spawn(async move {
            let _ =
                tokio::time::timeout(TCP_IDLE_TIMEOUT * 6, serve_connection(stream, names)).await;
        });
    }
    connections.shutdown().await;
}

/// Answers the queries of one TCP connection, each prefixed with its length.
async fn serve_connection(mut stream: tokio::net::TcpStream, names: Arc<dyn Names>) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    loop {
        let mut length = [0u8; 2];
        match tokio::time::timeout(TCP_IDLE_TIMEOUT, stream.read_exact(&mut length)).await {
            Ok(Ok(_)) => {}
            _ => return,
        }
        let mut query = vec![0u8; usize::from(u16::from_be_bytes(length))];
        if stream.read_exact(&mut query).await.is_err() {
            return;
        }
        let reply = match answer_within(&query, names.as_ref(), TCP_MESSAGE_BYTES_MAX) {
            Reply::Answer(reply) => reply,
            Reply::Drop => return,
            Reply::Forward => match servfail(&query) {
                Some(reply) => reply,
                None => return,
            },
        };
        let Ok(len) = u16::try_from(reply.len()) else {
            return;
        };
        let mut framed = len.to_be_bytes().to_vec();
        framed.extend_from_slice(&reply);
        if stream.write_all(&framed).await.is_err() {
            return;
        }
    }
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
mod tests;
