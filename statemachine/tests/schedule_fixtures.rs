//! Data-driven scheduler tests in the raft-rs style: each file under `tests/schedule/`
//! is a list of blocks, a command (and for `load`, its YAML) above `----`, and below it
//! what the cluster says (`ok` or the rejection) followed by every replica's placement
//! or pending reason. `UPDATE_EXPECT=1` rewrites the outputs (expect-test).
//!
//! Commands: `peer NAME [tags=a,b] [cpu=MILLIS] [memory=MB]` (the first creates the
//! cluster), `facts PEER [cpu=MILLIS] [memory=MB] [gpus=N] [disk=GB]`, `load PATH` + YAML,
//! `run PATH [tag=T] [peer=P] [NAME=VALUE...]`, `update PATH [NAME=VALUE...]`,
//! `scale PATH N`, `stop PATH`, `purge PATH`, `down PEER`, `up PEER`, `leave PEER`,
//! `tag PEER +a -b`. `run` and `update` are evaluated as a receiving peer would
//! (placement scripts, host ports) before they are applied.

use std::collections::BTreeMap;
use std::path::Path;

use monk_scripting::arrow::StubHost;
use monk_statemachine::evaluate::evaluate_command;
use monk_statemachine::view::instances;
use monk_statemachine::*;

struct Cluster {
    state: State,
    index: u64,
}

impl Cluster {
    fn apply(&mut self, mut command: Command) -> String {
        if let Err(e) = evaluate_command(&self.state, &mut command, &mut StubHost) {
            return format!("refused before proposing: {e}");
        }
        self.index += 1;
        let entry = Entry {
            index: self.index,
            term: 1,
            proposal: Proposal {
                format_version: FORMAT_VERSION,
                proposed_at_ms: 0,
                actor: "test".into(),
                request_id: self.index.to_string(),
                command,
            },
        };
        let applied = apply(&mut self.state, &entry).expect("applies");
        self.state
            .check_invariants()
            .unwrap_or_else(|v| panic!("after entry {}: {v}", self.index));
        match applied {
            Applied::Accepted { .. } => "ok".into(),
            Applied::Rejected { reason } => format!("rejected: {reason}"),
        }
    }

    fn peer_id(&self, name: &str) -> PeerId {
        self.state
            .peers()
            .values()
            .find(|p| p.name == name)
            .map_or(999, |p| p.id)
    }

    fn placements(&self) -> String {
        instances(&self.state)
            .iter()
            .map(|i| match (&i.peer_name, &i.pending) {
                (Some(peer), _) => format!("{}#{} {peer}\n", i.path, i.replica),
                (None, Some(why)) => format!("{}#{} pending: {why}\n", i.path, i.replica),
                (None, None) => format!("{}#{} pending\n", i.path, i.replica),
            })
            .collect()
    }
}

/// `key=value` words, and the bare words left over.
fn options(words: &[&str]) -> (BTreeMap<String, String>, Vec<String>) {
    let mut keyed = BTreeMap::new();
    let mut bare = Vec::new();
    for w in words {
        match w.split_once('=') {
            Some((k, v)) => {
                keyed.insert(k.to_string(), v.to_string());
            }
            None => bare.push(w.to_string()),
        }
    }
    (keyed, bare)
}

fn number(opts: &BTreeMap<String, String>, key: &str) -> u64 {
    opts.get(key).map_or(0, |v| v.parse().expect("a number"))
}

fn yaml_tree(yaml: &str) -> monk_scripting::tree::Tree {
    monk_scripting::monkscript::syntax::parse(yaml)
        .expect("fixture YAML parses")
        .documents
        .remove(0)
        .to_tree()
}

fn run_block(c: &mut Cluster, input: &[String]) -> String {
    let words: Vec<&str> = input[0].split_whitespace().collect();
    let (opts, bare) = options(&words[1..]);
    let arg = |i: usize| bare.get(i).cloned().unwrap_or_default();
    let result = match words[0] {
        "peer" => {
            let tags: Vec<String> = opts
                .get("tags")
                .map(|t| t.split(',').map(String::from).collect())
                .unwrap_or_default();
            let capacity = Capacity {
                cpu_millis: number(&opts, "cpu"),
                memory_mb: number(&opts, "memory"),
            };
            let name = arg(0);
            if c.state.cluster_name().is_none() {
                c.apply(Command::ClusterCreated {
                    name: "test".into(),
                    first_peer_name: name.clone(),
                    first_peer_address: format!("{name}:1"),
                    tags,
                    capacity,
                    facts: None,
                    admin_token_sha256: None,
                    overlay_range: None,
                    overlay: None,
                    open_network: false,
                })
            } else {
                c.apply(Command::JoinTokenIssued {
                    token_sha256: name.clone(),
                    expires_at_ms: None,
                });
                c.apply(Command::PeerJoined {
                    address: format!("{name}:1"),
                    token_sha256: name.clone(),
                    name,
                    tags,
                    capacity,
                    facts: None,
                    admitted_at_ms: None,
                    overlay: None,
                })
            }
        }
        "facts" => {
            let peer = c.peer_id(&arg(0));
            c.apply(Command::PeerFactsReported {
                peer,
                facts: PeerFacts {
                    cpu_millis: number(&opts, "cpu"),
                    memory_mb: number(&opts, "memory"),
                    gpus: number(&opts, "gpus") as u32,
                    disk_free_gb: number(&opts, "disk"),
                },
            })
        }
        "load" => {
            let yaml = input[1..].join("\n") + "\n";
            c.apply(Command::TemplatesLoaded {
                templates: vec![LoadedTemplate {
                    path: arg(0),
                    kind: "runnable".into(),
                    definition: yaml_tree(&yaml),
                }],
            })
        }
        "run" => {
            let mut overrides = opts.clone();
            let tag = overrides.remove("tag");
            let peer = overrides.remove("peer");
            c.apply(Command::WorkloadRun {
                path: arg(0),
                tag,
                peer,
                overrides,
                evaluated: None,
            })
        }
        "update" => c.apply(Command::WorkloadUpdate {
            path: arg(0),
            overrides: opts.clone(),
            evaluated: None,
        }),
        "scale" => c.apply(Command::WorkloadScale {
            path: arg(0),
            replicas: arg(1).parse().expect("a replica count"),
        }),
        "stop" => c.apply(Command::WorkloadStop { path: arg(0) }),
        "purge" => c.apply(Command::WorkloadPurge { path: arg(0) }),
        "down" => {
            let peer = c.peer_id(&arg(0));
            c.apply(Command::PeerDown {
                peer,
                reason: "silent".into(),
            })
        }
        "up" => {
            let peer = c.peer_id(&arg(0));
            c.apply(Command::PeerUp { peer })
        }
        "leave" => {
            let peer = c.peer_id(&arg(0));
            c.apply(Command::PeerLeft { peer })
        }
        "tag" => {
            let peer = c.peer_id(&arg(0));
            let pick = |sign: char| {
                bare[1..]
                    .iter()
                    .filter_map(|w| w.strip_prefix(sign).map(String::from))
                    .collect()
            };
            c.apply(Command::PeerTagged {
                peer,
                add: pick('+'),
                remove: pick('-'),
            })
        }
        other => panic!("unknown fixture command {other:?}"),
    };
    format!("{result}\n{}", c.placements())
}

/// Runs one fixture file; returns it with the actual outputs.
fn run_file(text: &str) -> String {
    let mut c = Cluster {
        state: State::default(),
        index: 0,
    };
    let mut out = String::new();
    let mut lines = text.lines().peekable();
    while let Some(line) = lines.next() {
        if line.trim().is_empty() || line.starts_with('#') {
            out.push_str(line);
            out.push('\n');
            continue;
        }
        let mut input = vec![line.to_string()];
        for next in lines.by_ref() {
            if next == "----" {
                break;
            }
            input.push(next.to_string());
        }
        // Skip the expected output: up to a blank line.
        for next in lines.by_ref() {
            if next.trim().is_empty() {
                break;
            }
        }
        out.push_str(&input.join("\n"));
        out.push_str("\n----\n");
        out.push_str(&run_block(&mut c, &input));
        out.push('\n');
    }
    out
}

#[test]
fn scheduler_fixtures() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/schedule");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .expect("tests/schedule exists")
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "txt"))
        .collect();
    files.sort();
    assert!(files.len() >= 5, "fixtures missing in {}", dir.display());
    for file in files {
        let text = std::fs::read_to_string(&file).expect("fixture readable");
        expect_test::expect_file![file].assert_eq(&run_file(&text));
    }
}
