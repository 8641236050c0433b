//! A scriptable in-memory container runtime for simulations and executor tests: images
//! can be made missing, containers can be made to exit, and every call is counted. It
//! is an extra test layer; the Docker runtime is what `monkd` uses and is tested
//! against the real engine.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Mutex;

use monk_statemachine::PeerId;

use super::runtime::{PullAuth, PullLogin, RuntimeError, RuntimeResult};
use super::{key_of, label, ContainerRuntime, Observed, RunState, Wanted};

/// What the engine says about an id it does not hold.
fn no_container(what: &str, id: &str) -> RuntimeError {
    RuntimeError::Engine {
        what: what.to_string(),
        status: Some(404),
        message: format!("no container {id}"),
    }
}

#[derive(Clone, Debug)]
struct FakeContainer {
    name: String,
    labels: BTreeMap<String, String>,
    state: RunState,
}

#[derive(Debug, Default)]
struct Inner {
    next_id: u64,
    containers: BTreeMap<String, FakeContainer>,
    missing_images: BTreeSet<String>,
    /// Every image asked for, with the credential it came with.
    pulls: Vec<(String, Option<PullAuth>)>,
    creates: u64,
    removes: u64,
    /// What `exec` of a command line answers (any container).
    exec_answers: BTreeMap<String, Result<String, String>>,
}

/// The fake runtime. Every image is present unless [`FakeRuntime::remove_image`] said
/// otherwise.
#[derive(Debug, Default)]
pub struct FakeRuntime {
    inner: Mutex<Inner>,
}

impl FakeRuntime {
    fn with<T>(&self, f: impl FnOnce(&mut Inner) -> T) -> T {
        f(&mut self.inner.lock().unwrap_or_else(|p| p.into_inner()))
    }

    pub fn remove_image(&self, image: &str) {
        self.with(|i| i.missing_images.insert(image.to_string()));
    }

    /// Every image `ensure_image` was asked for, with the credential it came with.
    pub fn pulls(&self) -> Vec<(String, Option<PullAuth>)> {
        self.with(|i| i.pulls.clone())
    }

    /// Makes `exec` of `command` (joined with spaces) answer `answer`.
    pub fn answer_exec(&self, command: &str, answer: Result<&str, &str>) {
        let answer = answer.map(String::from).map_err(String::from);
        self.with(|i| i.exec_answers.insert(command.to_string(), answer));
    }

    /// Makes the container with this name exit with `code`.
    pub fn exit(&self, name: &str, code: i64) {
        self.with(|i| {
            for c in i.containers.values_mut().filter(|c| c.name == name) {
                c.state = RunState::Exited(Some(code));
            }
        });
    }

    /// Removes a container behind the executor's back.
    pub fn delete(&self, name: &str) {
        self.with(|i| i.containers.retain(|_, c| c.name != name));
    }

    /// `(name, running)` of every container, by name.
    pub fn containers(&self) -> Vec<(String, bool)> {
        let mut out: Vec<(String, bool)> = self.with(|i| {
            i.containers
                .values()
                .map(|c| (c.name.clone(), c.state == RunState::Running))
                .collect()
        });
        out.sort();
        out
    }

    /// How many containers were created and removed so far.
    pub fn counts(&self) -> (u64, u64) {
        self.with(|i| (i.creates, i.removes))
    }
}

#[async_trait::async_trait]
impl ContainerRuntime for FakeRuntime {
    async fn list(&self, cluster: &str, peer: PeerId) -> RuntimeResult<Vec<Observed>> {
        let peer = peer.to_string();
        Ok(self.with(|i| {
            i.containers
                .iter()
                .filter(|(_, c)| {
                    c.labels.get(label::CLUSTER).map(String::as_str) == Some(cluster)
                        && c.labels.get(label::PEER) == Some(&peer)
                })
                .map(|(id, c)| {
                    let (key, generation, spec_hash) = key_of(&c.labels);
                    Observed {
                        id: id.clone(),
                        name: c.name.clone(),
                        key,
                        generation,
                        spec_hash,
                        state: c.state.clone(),
                        // Long up, so a fresh container counts as running at once.
                        created_unix: 0,
                        ip: None,
                        started_unix: None,
                        restarts: 0,
                    }
                })
                .collect()
        }))
    }

    async fn ensure_image(&self, image: &str, login: &PullLogin) -> RuntimeResult<()> {
        let auth = login.as_ref().ok().cloned().flatten();
        self.with(|i| i.pulls.push((image.to_string(), auth)));
        match (self.with(|i| i.missing_images.contains(image)), login) {
            (false, _) => Ok(()),
            (true, Err(why)) => Err(RuntimeError::engine(
                "not present locally, and no pull without its login",
                why.clone(),
            )),
            (true, Ok(_)) => Err(RuntimeError::engine(
                format!("{image} is not present locally and pulling it failed"),
                "no such image in the fake runtime",
            )),
        }
    }

    async fn create(&self, w: &Wanted) -> RuntimeResult<String> {
        self.with(|i| {
            if i.containers.values().any(|c| c.name == w.name) {
                return Err(RuntimeError::Engine {
                    what: format!("creating container {}", w.name),
                    status: Some(409),
                    message: format!("the name {} is already in use", w.name),
                });
            }
            i.next_id += 1;
            i.creates += 1;
            let id = format!("fake{:06}", i.next_id);
            i.containers.insert(
                id.clone(),
                FakeContainer {
                    name: w.name.clone(),
                    labels: w.labels.clone(),
                    state: RunState::Running,
                },
            );
            Ok(id)
        })
    }

    async fn start(&self, id: &str) -> RuntimeResult<()> {
        self.with(|i| match i.containers.get_mut(id) {
            Some(c) => {
                c.state = RunState::Running;
                Ok(())
            }
            None => Err(no_container(&format!("starting {id}"), id)),
        })
    }

    async fn exec_output(&self, id: &str, command: Vec<String>) -> RuntimeResult<(i64, String)> {
        let shown = command.join(" ");
        let answer = self.with(|i| match i.containers.get(id) {
            Some(c) if c.state == RunState::Running => Ok(i
                .exec_answers
                .get(&shown)
                .cloned()
                .unwrap_or_else(|| Err(format!("{shown}: command not found")))),
            _ => Err(RuntimeError::engine(
                format!("exec {shown}"),
                format!("container {id} is not running"),
            )),
        })?;
        answer
            .map(|out| (0, out))
            .map_err(|e| RuntimeError::engine("exec", e))
    }

    async fn logs(
        &self,
        id: &str,
        _tail: u32,
        _since: i64,
    ) -> RuntimeResult<Vec<(String, String)>> {
        match self.with(|i| i.containers.contains_key(id)) {
            true => Ok(Vec::new()),
            false => Err(no_container(&format!("reading the logs of {id}"), id)),
        }
    }

    async fn remove(&self, id: &str, _grace_secs: u64) -> RuntimeResult<()> {
        self.with(|i| {
            if i.containers.remove(id).is_some() {
                i.removes += 1;
            }
        });
        Ok(())
    }
}
