//! The built binary: `serve` spawned as a process that knows its URL from the start-up banner,
//! and the CLI run to completion.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};

/// The built binary.
pub(crate) fn binary() -> &'static str {
    env!("CARGO_BIN_EXE_order-listener")
}

/// The binary running `serve` on port 0; knows its URL from the start-up banner. Killed when
/// dropped, so that a failing test leaves no process behind.
pub(crate) struct RunningBinary {
    /// The process.
    pub child: Child,
    /// The listener URL it printed.
    pub listener_url: String,
    /// The start-up banner, line by line.
    pub banner: Vec<String>,
}

impl RunningBinary {
    /// `http://127.0.0.1:PORT` of the admin port, as the banner names it.
    pub(crate) fn admin_url(&self) -> String {
        banner_value(&self.banner, "admin API")
            .and_then(|rest| rest.split_whitespace().next().map(str::to_owned))
            .expect("the banner names the admin API")
    }
}

impl Drop for RunningBinary {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts `order-listener serve --plain-http --allow-anonymous` on `data_dir` and waits for its
/// banner.
pub(crate) fn start_binary(data_dir: &Path) -> RunningBinary {
    start_binary_with(data_dir, None)
}

/// As [`start_binary`], with a config file.
pub(crate) fn start_binary_with(data_dir: &Path, config: Option<&Path>) -> RunningBinary {
    let mut command = Command::new(binary());
    command.args([
        "serve",
        "--plain-http",
        "--allow-anonymous",
        "--listen",
        "127.0.0.1:0",
        "--admin-listen",
        "127.0.0.1:0",
    ]);
    if let Some(config) = config {
        command.arg("--config").arg(config);
    }
    spawn_serve(command.arg("--data-dir").arg(data_dir))
}

/// Spawns a prepared `serve` command and reads its banner, up to the curl line after
/// "Try it:".
pub(crate) fn spawn_serve(command: &mut Command) -> RunningBinary {
    spawn_serve_logging(command.env("RUST_LOG", "warn"), Stdio::inherit())
}

/// As [`start_binary_with`], logging at debug level into the file `log`.
pub(crate) fn start_binary_logging(data_dir: &Path, config: &Path, log: &Path) -> RunningBinary {
    start_binary_logging_at(data_dir, config, log, Some("debug"))
}

/// As [`start_binary_logging`], with `RUST_LOG` set to `rust_log`, or unset so that the
/// configuration's `log_level` rules.
pub(crate) fn start_binary_logging_at(
    data_dir: &Path,
    config: &Path,
    log: &Path,
    rust_log: Option<&str>,
) -> RunningBinary {
    let mut command = Command::new(binary());
    command
        .args(["serve", "--plain-http", "--allow-anonymous"])
        .args(["--listen", "127.0.0.1:0", "--admin-listen", "127.0.0.1:0"])
        .arg("--config")
        .arg(config)
        .arg("--data-dir")
        .arg(data_dir);
    match rust_log {
        Some(filter) => command.env("RUST_LOG", filter),
        None => command.env_remove("RUST_LOG"),
    };
    let file = std::fs::File::create(log).expect("the log file is created");
    spawn_serve_logging(&mut command, Stdio::from(file))
}

/// Spawns a prepared `serve` command with its log going to `stderr`, and reads its banner.
pub(crate) fn spawn_serve_logging(command: &mut Command, stderr: Stdio) -> RunningBinary {
    let mut child = command
        .stdout(Stdio::piped())
        .stderr(stderr)
        .spawn()
        .expect("the binary starts");
    let stdout = child.stdout.take().expect("stdout is piped");
    let mut lines = BufReader::new(stdout).lines();
    let mut banner = Vec::new();
    loop {
        let line = lines
            .next()
            .expect("the banner ends with a curl line")
            .expect("stdout is text");
        let last = banner
            .last()
            .is_some_and(|previous: &String| previous.starts_with("Try it:"));
        banner.push(line);
        if last {
            break;
        }
    }
    let listener_url = banner
        .iter()
        .find_map(|line| line.trim().strip_prefix("Listener API  POST "))
        .expect("the banner names the Listener API")
        .trim()
        .to_owned();
    // Keep draining stdout so the child never blocks on a full pipe.
    std::thread::spawn(move || for _ in lines {});
    RunningBinary {
        child,
        listener_url,
        banner,
    }
}

/// The value the banner prints after `label` (`"admin token"`, `"console"`, …).
pub(crate) fn banner_value(banner: &[String], label: &str) -> Option<String> {
    banner.iter().find_map(|line| {
        let rest = line.trim().strip_prefix(label)?;
        rest.starts_with(' ').then(|| rest.trim().to_owned())
    })
}

/// Runs the CLI with arguments and returns (exit success, stdout, stderr).
pub(crate) fn run_cli(args: &[&str]) -> (bool, String, String) {
    let output = Command::new(binary())
        .args(args)
        .env("RUST_LOG", "warn")
        .output()
        .expect("the CLI runs");
    (
        output.status.success(),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

/// Runs `serve` with `args` (after `serve`) and `env` (`RUST_LOG` is unset unless `env` sets
/// it), expecting it to refuse to start: returns its standard error once it has exited with a
/// failure. Fails the test if it starts instead (it is then killed after [`PATIENCE`]).
pub(crate) fn serve_refusal(args: &[&str], env: &[(&str, &str)]) -> String {
    let mut command = Command::new(binary());
    command
        .arg("serve")
        .args(args)
        .env_remove("RUST_LOG")
        .envs(env.iter().copied())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let child = command.spawn().expect("the binary starts");
    let pid = nix::unistd::Pid::from_raw(child.id() as i32);
    let (sender, exited) = std::sync::mpsc::channel();
    std::thread::spawn(move || sender.send(child.wait_with_output()));
    let output = match exited.recv_timeout(crate::helpers::PATIENCE) {
        Ok(output) => output.expect("the binary's output is read"),
        Err(_) => {
            let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGKILL);
            panic!("`serve {}` started; it should have refused", args.join(" "));
        }
    };
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    assert!(
        !output.status.success(),
        "`serve {}` exited 0; it should have refused: {stderr}",
        args.join(" ")
    );
    assert_ne!(output.status.code(), Some(101), "a panic: {stderr}");
    stderr
}

/// Runs the CLI with `args`, its standard output a pipe whose reader is closed before it
/// starts (as `| head` leaves it once it has its lines: every write fails with EPIPE), and
/// `RUST_BACKTRACE=1`, so that a panic would show; returns (exit status, stderr).
pub(crate) fn run_cli_into_a_closed_pipe(args: &[&str]) -> (std::process::ExitStatus, String) {
    let (reader, writer) = std::io::pipe().expect("a pipe");
    drop(reader);
    let output = Command::new(binary())
        .args(args)
        .env("RUST_LOG", "warn")
        .env("RUST_BACKTRACE", "1")
        .stdin(Stdio::null())
        .stdout(writer)
        .stderr(Stdio::piped())
        .output()
        .expect("the CLI runs");
    (
        output.status,
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

/// Runs the CLI with `args`, then `--config config` and `--data-dir data_dir`, off the async
/// runtime's threads; returns (exit success, stdout, stderr).
pub(crate) async fn run_cli_on(
    args: &[&str],
    config: &Path,
    data_dir: &Path,
) -> (bool, String, String) {
    let mut all: Vec<String> = args.iter().map(|arg| (*arg).to_owned()).collect();
    all.extend([
        "--config".to_owned(),
        config.to_str().expect("a UTF-8 path").to_owned(),
        "--data-dir".to_owned(),
        data_dir.to_str().expect("a UTF-8 path").to_owned(),
    ]);
    tokio::task::spawn_blocking(move || {
        let args: Vec<&str> = all.iter().map(String::as_str).collect();
        run_cli(&args)
    })
    .await
    .expect("the CLI's thread ends")
}
