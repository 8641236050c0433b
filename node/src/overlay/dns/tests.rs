//! The responder's tests: answers built by hand, malformed and random packets, and
//! `serve` end to end on loopback with a scripted upstream.

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
    assert!(reply.has(FLAG_QR) && reply.has(FLAG_AA) && reply.has(FLAG_RA) && reply.has(FLAG_RD));
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

#[tokio::test]
async fn a_name_too_big_for_udp_is_answered_whole_over_tcp() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let addresses: Vec<Ipv4Addr> = (0..40).map(|i| Ipv4Addr::new(10, 211, 1, i)).collect();
    let zone: Arc<dyn Names> = Arc::new(Zone::with(&[("many.web.monk", addresses.clone())]));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let at = listener.local_addr().unwrap();
    let (stop, stopped) = oneshot::channel::<()>();
    let server = tokio::spawn(serve_tcp(listener, zone.clone(), async move {
        let _ = stopped.await;
    }));
    // Over UDP the answer is truncated ...
    let q = query(31, "many.web.monk", TYPE_A);
    assert!(answered(answer(&q, zone.as_ref())).has(FLAG_TC));
    // ... over TCP it holds all 40 records; a second query on the same connection too,
    // and a name outside the zone gets SERVFAIL.
    let mut stream = tokio::net::TcpStream::connect(at).await.unwrap();
    for (id, name, records) in [(32, "many.web.monk", 40), (33, "example.com", 0)] {
        let q = query(id, name, TYPE_A);
        let mut framed = (q.len() as u16).to_be_bytes().to_vec();
        framed.extend_from_slice(&q);
        stream.write_all(&framed).await.unwrap();
        let mut length = [0u8; 2];
        timeout(REPLY_WITHIN, stream.read_exact(&mut length))
            .await
            .unwrap()
            .unwrap();
        let mut reply = vec![0u8; usize::from(u16::from_be_bytes(length))];
        stream.read_exact(&mut reply).await.unwrap();
        let parsed = parse(&reply);
        assert_eq!(parsed.id, id);
        assert!(!parsed.has(FLAG_TC));
        assert_eq!(parsed.records.len(), records, "{name}");
        if records == 0 {
            assert_eq!(parsed.rcode(), Rcode::ServFail as u16);
        } else {
            let got: Vec<Ipv4Addr> = parsed.records.iter().map(|(_, a)| *a).collect();
            assert_eq!(got, addresses);
        }
    }
    let _ = stop.send(());
    timeout(REPLY_WITHIN, server).await.unwrap().unwrap();
}
