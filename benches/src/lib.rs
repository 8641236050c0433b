//! Cluster benchmarks live in `benches/`; the in-process cluster they run on (gRPC on
//! loopback, RocksDB with fsync on disk) is `monk-testkit`'s.

pub use monk_testkit::inproc::{grpc_cluster as cluster, InProcessPeer as BenchPeer};
