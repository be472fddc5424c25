//! In a real terminal, netvm is as transparent as the shell expects: `Ctrl-Z` stops
//! the job (and `fg` resumes it), `Ctrl-C` interrupts it, and an interactive bash
//! run under netvm keeps its own job control.
//!
//! tmux provides the terminal; each step waits (bounded) until the screen shows
//! what it should, so nothing depends on timing.

mod common;

use std::process::Command;
use std::time::{Duration, Instant};

use common::{DEADLINE, NETVM};

/// A tmux server and session of its own, killed on drop.
struct Terminal {
    socket: String,
}

impl Terminal {
    fn new(tag: &str) -> Self {
        let socket = format!("netvm-test-{}-{tag}", std::process::id());
        let terminal = Self { socket };
        terminal.tmux(&["new-session", "-d", "-x", "160", "-y", "50", "bash", "--norc", "-i"]);
        terminal.wait_for("shell>");
        terminal
    }

    fn tmux(&self, args: &[&str]) -> String {
        let output = Command::new("tmux")
            .args(["-L", &self.socket, "-f", "/dev/null"])
            .args(args)
            .env_remove("TMUX")
            .env("PS1", "shell> ")
            .output()
            .expect("tmux runs");
        String::from_utf8_lossy(&output.stdout).into_owned()
    }

    /// Types `text` and Enter.
    fn type_line(&self, text: &str) {
        self.tmux(&["send-keys", "-t", "0", "-l", text]);
        self.tmux(&["send-keys", "-t", "0", "Enter"]);
    }

    /// Presses a key such as `C-z`.
    fn press(&self, key: &str) {
        self.tmux(&["send-keys", "-t", "0", key]);
    }

    fn screen(&self) -> String {
        self.tmux(&["capture-pane", "-t", "0", "-p"])
    }

    /// Waits until the screen contains `text`.
    fn wait_for(&self, text: &str) {
        let start = Instant::now();
        loop {
            let screen = self.screen();
            if screen.contains(text) {
                return;
            }
            assert!(start.elapsed() < DEADLINE, "the screen never showed {text:?}:\n{screen}");
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Terminal {
    fn drop(&mut self) {
        self.tmux(&["kill-server"]);
    }
}

fn have_tmux() -> bool {
    Command::new("tmux").arg("-V").output().is_ok_and(|o| o.status.success())
}

#[test]
fn ctrl_z_fg_and_ctrl_c_reach_a_command_under_netvm() {
    assert!(have_tmux(), "tmux is needed (see the README's test dependencies)");
    let terminal = Terminal::new("jobs");
    // The job reads the terminal: only a job resumed in the foreground can answer.
    // `ru''nning` prints `running` only once the job runs: Ctrl-Z before that
    // would reach the shell still reading the command line.
    terminal.type_line(&format!(
        "{NETVM} run -- sh -c 'echo ru''nning; read x; echo got-$x; sleep 600'"
    ));
    terminal.wait_for("running");
    terminal.press("C-z");
    terminal.wait_for("Stopped");
    terminal.type_line("fg");
    terminal.type_line("abc");
    terminal.wait_for("got-abc");
    terminal.press("C-c");
    terminal.type_line("echo status=$?");
    terminal.wait_for("status=130");
}

#[test]
fn an_interactive_bash_under_netvm_keeps_its_job_control() {
    assert!(have_tmux(), "tmux is needed (see the README's test dependencies)");
    let terminal = Terminal::new("bash");
    // The quotes keep the typed command line from looking like the prompt.
    terminal.type_line(&format!("{NETVM} run -- env PS1='in''ner> ' bash --norc -i"));
    terminal.wait_for("inner>");
    terminal.type_line("sh -c 'echo ru''nning; read x; echo got-$x; sleep 600'");
    terminal.wait_for("running");
    terminal.press("C-z");
    terminal.wait_for("Stopped");
    terminal.type_line("fg");
    terminal.type_line("xyz");
    terminal.wait_for("got-xyz");
    terminal.press("C-c");
    terminal.type_line("echo inner=$?; exit 4");
    terminal.wait_for("inner=130");
    terminal.type_line("echo outer=$?");
    terminal.wait_for("outer=4");
}
