//! Progress of a wait, on stderr (stdout stays the command's result, so `-o json`
//! is never mixed with it): a live line per replica on a terminal (`indicatif`), one
//! plain line per change of a replica's phase otherwise (CI logs, pipes), nothing
//! with `-q`. What a phase is comes from `wait.rs`; this module only draws it.

use std::collections::BTreeMap;
use std::io::IsTerminal;
use std::time::Duration;

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use monk_statemachine::view::InstanceView;

use crate::wait::{replica_label, Phase};

/// How often a live spinner turns: often enough to show the command is alive, rarely
/// enough to cost nothing on a slow terminal.
const SPINNER_TICK: Duration = Duration::from_millis(120);

/// How progress is shown.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// Redrawn lines on a terminal.
    Live,
    /// One line per change, for logs and pipes.
    Lines,
    /// Nothing (`-q`).
    Silent,
}

impl Mode {
    /// Live when stderr is a terminal, plain lines when it is not, nothing with `-q`.
    pub fn choose(quiet: bool) -> Mode {
        match (quiet, std::io::stderr().is_terminal()) {
            (true, _) => Mode::Silent,
            (false, true) => Mode::Live,
            (false, false) => Mode::Lines,
        }
    }
}

type Key = (String, u32);

/// The display of one wait.
pub struct Progress {
    mode: Mode,
    multi: MultiProgress,
    bars: BTreeMap<Key, ProgressBar>,
    /// What was last shown per replica, so only changes are drawn or printed.
    shown: BTreeMap<Key, String>,
}

fn style(template: &str) -> ProgressStyle {
    ProgressStyle::with_template(template).unwrap_or_else(|_| ProgressStyle::default_spinner())
}

impl Progress {
    pub fn new(mode: Mode) -> Progress {
        let target = match mode {
            Mode::Live => ProgressDrawTarget::stderr(),
            Mode::Lines | Mode::Silent => ProgressDrawTarget::hidden(),
        };
        Progress {
            mode,
            multi: MultiProgress::with_draw_target(target),
            bars: BTreeMap::new(),
            shown: BTreeMap::new(),
        }
    }

    /// Shows one look at the replicas, `elapsed` into the wait.
    pub fn show(&mut self, replicas: &[InstanceView], elapsed: Duration) {
        if self.mode == Mode::Silent {
            return;
        }
        let keys: Vec<Key> = replicas
            .iter()
            .map(|i| (i.path.clone(), i.replica))
            .collect();
        let gone: Vec<Key> = self
            .bars
            .keys()
            .filter(|k| !keys.contains(k))
            .cloned()
            .collect();
        for key in gone {
            if let Some(bar) = self.bars.remove(&key) {
                bar.finish_and_clear();
                self.multi.remove(&bar);
            }
        }
        for (i, key) in replicas.iter().zip(keys) {
            let phase = Phase::of(i);
            let label = replica_label(i);
            let line = format!("{label}: {}", phase.text());
            if self.shown.get(&key) == Some(&line) {
                continue;
            }
            self.shown.insert(key.clone(), line.clone());
            match self.mode {
                Mode::Lines => eprintln!("{:>6.1}s  {line}", elapsed.as_secs_f64()),
                Mode::Live => self.draw(key, &label, &phase),
                Mode::Silent => {}
            }
        }
    }

    /// Updates a replica's live line (message first, then the style, so no frame
    /// shows the new mark with the old words), adding the line on first sight.
    fn draw(&mut self, key: Key, label: &str, phase: &Phase) {
        let style = match phase.is_up() {
            true => style("✔ {prefix}: {msg}"),
            false => style("{spinner} {prefix}: {msg}  {elapsed}"),
        };
        if let Some(bar) = self.bars.get(&key) {
            bar.set_prefix(label.to_string());
            bar.set_message(phase.text());
            bar.set_style(style);
            return;
        }
        let bar = ProgressBar::new_spinner()
            .with_style(style)
            .with_prefix(label.to_string())
            .with_message(phase.text());
        let bar = self.multi.add(bar);
        bar.enable_steady_tick(SPINNER_TICK);
        self.bars.insert(key, bar);
    }

    /// Ends the display: on success the live lines are cleared (the result printed
    /// next says the same); on failure they stay, showing where each replica stood.
    pub fn finish(self, success: bool) {
        for bar in self.bars.values() {
            match success {
                true => bar.finish_and_clear(),
                false => bar.abandon(),
            }
        }
    }
}
