//! tlsforge TLS client conformance suite.
//!
//! One probe script (`probe.py`, Python 2.7 and 3.x unchanged) runs under every interpreter
//! against servers this crate starts on 127.0.0.1; each case's outcome is compared with the
//! contract in CONFORMANCE.md (newest CPython's default context, no common-name fallback).
//!
//! ```no_run
//! use tlsforge_conformance::{run, Config, Interpreter};
//! let cfg = Config {
//!     interpreters: vec![Interpreter { name: "ours-2.7".into(), python: "/opt/py27/bin/python".into(), reference: false }],
//!     out_dir: "target/conformance".into(),
//!     filter: None,
//!     jobs: 4,
//! };
//! let report = run(&cfg).unwrap();
//! assert_eq!(report.mismatches(), 0);
//! ```

pub mod cases;
pub mod hello;
pub mod pip;
pub mod pki;
pub mod proc;
pub mod report;
pub mod server;
mod suites;
pub mod trust;

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result};
use serde::Deserialize;
use serde_json::{json, Value};

use cases::{CaseDef, Group, HelloCheck, How, Materials, ProbeSpec};
use hello::{rate, version_name, ClientHello};
pub use report::{
    judge, CaseInfo, CaseResult, Expect, InterpreterReport, Observed, Report, Verdict,
};
use server::{Captures, Listener, Script, ScriptLog, ScriptObs};

/// The probe script, embedded so the binary is self-contained.
pub const PROBE_PY: &str = include_str!("../probe.py");

/// Per-case probe timeout (seconds): a hang is a failure.
const CASE_TIMEOUT: u64 = 10;
/// Bound on one probe process.
const PROCESS_TIMEOUT: Duration = Duration::from_secs(60);
const PIP_TIMEOUT: Duration = Duration::from_secs(90);

#[derive(Debug, Clone)]
pub struct Interpreter {
    pub name: String,
    pub python: PathBuf,
    /// A reference interpreter is shown but its divergences don't fail the run.
    pub reference: bool,
}

#[derive(Debug, Clone)]
pub struct Config {
    pub interpreters: Vec<Interpreter>,
    /// conformance.json and conformance.html go here.
    pub out_dir: PathBuf,
    /// Only these cases: comma-separated ids, id prefixes or title substrings (case-insensitive).
    pub filter: Option<String>,
    /// Probe processes running at once (all interpreters together).
    pub jobs: usize,
}

/// One JSON line of probe output.
#[derive(Debug, Clone, Deserialize, PartialEq)]
pub struct ProbeLine {
    pub id: String,
    pub outcome: String,
    #[serde(default)]
    pub error_class: Option<String>,
    #[serde(default)]
    pub error: Option<String>,
    #[serde(default)]
    pub version: Option<String>,
    #[serde(default)]
    pub cipher: Option<String>,
    #[serde(default)]
    pub alpn: Option<String>,
    #[serde(default)]
    pub ms: Option<u64>,
    /// ssl.get_default_verify_paths() inside the probe's namespace (trust-* cases).
    #[serde(default)]
    pub verify_paths: Option<Value>,
}

impl ProbeLine {
    pub fn observed(&self) -> Observed {
        let msg = || self.error.clone().unwrap_or_default();
        match self.outcome.as_str() {
            "accept" => Observed::Accept {
                version: self.version.clone(),
                cipher: self.cipher.clone(),
                alpn: self.alpn.clone(),
            },
            "refuse" => Observed::Refuse {
                class: self.error_class.clone().unwrap_or_default(),
                message: msg(),
            },
            "timeout" => Observed::Timeout { message: msg() },
            other => Observed::Error {
                message: format!(
                    "{}: {} {}",
                    other,
                    self.error_class.clone().unwrap_or_default(),
                    msg()
                ),
            },
        }
    }
}

/// Split probe stdout into the meta object (if any) and per-case lines. Lines that are not JSON
/// (a crashing interpreter's noise) are skipped.
pub fn parse_probe_output(stdout: &str) -> (Option<Value>, HashMap<String, ProbeLine>) {
    let mut meta = None;
    let mut lines = HashMap::new();
    for l in stdout.lines() {
        let l = l.trim();
        if !l.starts_with('{') {
            continue;
        }
        let Ok(v) = serde_json::from_str::<Value>(l) else {
            continue;
        };
        if let Some(m) = v.get("meta") {
            meta = Some(m.clone());
        } else if let Ok(p) = serde_json::from_value::<ProbeLine>(v) {
            lines.insert(p.id.clone(), p);
        }
    }
    (meta, lines)
}

/// `filter` is a comma-separated list; a case is selected if any item equals its id, prefixes
/// its id, or occurs in its title (case-insensitive). Items starting with `!` exclude the
/// cases they match (e.g. `!pip` under an emulator that cannot run a venv's interpreter).
fn selected(c: &CaseDef, filter: &Option<String>) -> bool {
    let Some(f) = filter else { return true };
    let matches = |f: &str| {
        let id = c.id.to_lowercase();
        id == f || id.starts_with(f) || c.title.to_lowercase().contains(f)
    };
    let items: Vec<String> = f
        .split(',')
        .map(|x| x.trim().to_lowercase())
        .filter(|x| !x.is_empty())
        .collect();
    let (excludes, includes): (Vec<&String>, Vec<&String>) =
        items.iter().partition(|x| x.starts_with('!'));
    let included = includes.is_empty() || includes.iter().any(|f| matches(f));
    included && !excludes.iter().any(|f| matches(&f[1..]))
}

/// Shared state for one run.
struct Env<'a> {
    cases: &'a [CaseDef],
    mat: &'a Materials,
    probe: &'a Path,
    work: &'a Path,
    ports: &'a HashMap<String, Result<u16, String>>,
    pip_ports: pip::IndexPorts,
    sem: &'a proc::Semaphore,
    /// pip runs are heavier and longer: they have their own limit.
    pip_sem: &'a proc::Semaphore,
    /// /private on the host for the macOS layouts: Err(reason) if it could not be made.
    private: Result<(), String>,
}

fn alert_name(d: u8) -> &'static str {
    match d {
        10 => "unexpected_message",
        20 => "bad_record_mac",
        40 => "handshake_failure",
        42 => "bad_certificate",
        47 => "illegal_parameter",
        50 => "decode_error",
        70 => "protocol_version",
        71 => "insufficient_security",
        80 => "internal_error",
        86 => "inappropriate_fallback",
        109 => "missing_extension",
        _ => "other",
    }
}

fn run_probe_process(
    sem: &proc::Semaphore,
    mut cmd: Command,
) -> (HashMap<String, ProbeLine>, String) {
    let _permit = sem.acquire();
    match proc::run_cmd(&mut cmd, PROCESS_TIMEOUT) {
        Ok(o) => {
            let (_, lines) = parse_probe_output(&o.stdout);
            let mut note = String::new();
            if o.timed_out {
                note = format!("probe process killed after {} s", PROCESS_TIMEOUT.as_secs());
            } else if !o.success() {
                let err: Vec<&str> = o.stderr.lines().rev().take(3).collect();
                note = format!(
                    "probe exited {:?}: {}",
                    o.status.and_then(|s| s.code()),
                    err.into_iter().rev().collect::<Vec<_>>().join(" | ")
                );
            }
            (lines, note)
        }
        Err(e) => (HashMap::new(), format!("{:#}", e)),
    }
}

fn probe_entry(id: &str, p: &ProbeSpec, port: u16, mat: &Materials) -> Value {
    let url = format!("https://{}:{}/", p.host, port);
    json!({
        "id": id,
        "kind": p.kind,
        "addr": "127.0.0.1",
        "port": port,
        "host": p.host,
        "url": url,
        "cafile": p.cafile.as_ref().map(|c| c.display().to_string()),
        "cert": if p.client_cert { Some(mat.client_cert.display().to_string()) } else { None },
        "key": if p.client_cert { Some(mat.client_key.display().to_string()) } else { None },
        "alpn": p.alpn,
        "timeout": CASE_TIMEOUT,
        "verify_paths": matches!(p.group, Group::Layout(_)),
    })
}

fn scripted_observed(script: &Script, log: &ScriptLog) -> Option<(Observed, String)> {
    let log = log.lock().unwrap();
    let (hello, obs) = log.last()?.clone();
    let what = script.describe();
    let offered = hello
        .as_ref()
        .map(|h| match script {
            Script::Ssl3 => format!(
                "client offered {}",
                hello::versions_offered(h)
                    .iter()
                    .map(|v| version_name(*v))
                    .collect::<Vec<_>>()
                    .join(",")
            ),
            _ => {
                let o: Vec<String> = script
                    .codes()
                    .iter()
                    .filter(|c| h.cipher_suites.contains(c))
                    .map(|c| hello::suite_info(*c).name)
                    .collect();
                if o.is_empty() {
                    "client offered none of these suites".to_string()
                } else {
                    format!("client offered {}", o.join(","))
                }
            }
        })
        .unwrap_or_default();
    let o = match obs.clone() {
        ScriptObs::Alert(_, d) => Observed::Refuse {
            class: "alert".into(),
            message: format!(
                "client sent alert {} ({}) after the {}",
                alert_name(d),
                d,
                what
            ),
        },
        ScriptObs::Closed => Observed::Refuse {
            class: "closed".into(),
            message: format!("client hung up after the {}", what),
        },
        ScriptObs::Continued | ScriptObs::Proceeded(_) => Observed::Accept {
            version: Some(if matches!(script, Script::Ssl3) {
                "SSLv3".into()
            } else {
                "TLSv1.2".into()
            }),
            cipher: Some(what.clone()),
            alpn: None,
        },
        ScriptObs::NoHello(e) => Observed::Error {
            message: format!("no ClientHello: {}", e),
        },
    };
    let how = match &obs {
        ScriptObs::Continued => "; the client waited for more of the server's flight",
        ScriptObs::Proceeded(22) => "; the client answered with its ClientKeyExchange",
        _ => "",
    };
    Some((o, format!("scripted server: {}; {}{}", what, offered, how)))
}

fn last_capture(c: &Captures) -> Result<ClientHello, String> {
    c.lock()
        .unwrap()
        .last()
        .cloned()
        .unwrap_or_else(|| Err("no connection reached the inspector".into()))
}

fn hello_check(
    check: HelloCheck,
    host: &Result<ClientHello, String>,
    ip: &Result<ClientHello, String>,
) -> (Observed, String) {
    let host = match host {
        Ok(h) => h,
        Err(e) => {
            return (
                Observed::Error {
                    message: format!("no ClientHello captured: {}", e),
                },
                String::new(),
            )
        }
    };
    let r = rate(host);
    match check {
        HelloCheck::Basics => {
            let ip = match ip {
                Ok(h) => h,
                Err(e) => {
                    return (
                        Observed::Error {
                            message: format!("no ClientHello for the IP literal: {}", e),
                        },
                        String::new(),
                    )
                }
            };
            let mut problems = Vec::new();
            if host.compression_methods != [0] || ip.compression_methods != [0] {
                problems.push(format!(
                    "compression methods {:?}",
                    host.compression_methods
                ));
            }
            if host.sni.as_deref() != Some("hello.test") {
                problems.push(format!("SNI for hello.test was {:?}", host.sni));
            }
            if ip.sni.is_some() {
                problems.push(format!("SNI {:?} sent for an IP literal", ip.sni));
            }
            if host.sslv2_format || ip.sslv2_format {
                problems.push("SSLv2-compatible hello".into());
            }
            let ok = problems.is_empty();
            let detail = if ok {
                "compression [null]; SNI hello.test; none for 127.0.0.1; TLS record format"
                    .to_string()
            } else {
                problems.join("; ")
            };
            (Observed::Check { ok }, detail)
        }
        HelloCheck::PqShare => (
            Observed::Check {
                ok: r.pq_hybrid_share,
            },
            format!("key shares [{}]", r.key_shares.join(",")),
        ),
        HelloCheck::NoOldVersions => {
            let old: Vec<&String> = r
                .versions_offered
                .iter()
                .filter(|v| matches!(v.as_str(), "SSLv3" | "TLSv1.0" | "TLSv1.1"))
                .collect();
            (
                Observed::Check {
                    ok: old.is_empty() && !host.sslv2_format,
                },
                format!("versions offered: {}", r.versions_offered.join(",")),
            )
        }
        HelloCheck::FsAeadOnly => {
            let mut bad: Vec<String> = r.non_fs_suites.clone();
            for s in r.non_aead_suites.iter().chain(&r.weak_suites) {
                if !bad.contains(s) {
                    bad.push(s.clone());
                }
            }
            let ok = bad.is_empty();
            let detail = if ok {
                format!("{} suites, all TLS 1.3 or FS-AEAD", r.suites_offered)
            } else {
                format!(
                    "{} of {} suites not FS-AEAD: {}{}",
                    bad.len(),
                    r.suites_offered,
                    bad.iter().take(6).cloned().collect::<Vec<_>>().join(","),
                    if bad.len() > 6 { ",..." } else { "" }
                )
            };
            (Observed::Check { ok }, detail)
        }
    }
}

/// Outcomes per case id: (observed, detail, ms).
type Outcomes = BTreeMap<String, (Observed, String, u64)>;

/// An outcome with no detail and no time.
fn bare(o: Observed) -> (Observed, String, u64) {
    (o, String::new(), 0)
}

/// One interpreter's run: what every step after the meta query needs.
struct InterpRun<'a> {
    env: &'a Env<'a>,
    interp: &'a Interpreter,
    meta: &'a Value,
    /// Python's major version (2 or 3).
    major: u32,
    /// This interpreter's scratch directory.
    work: &'a Path,
}

/// The per-interpreter servers and the probe entries that point at them.
struct OwnServers {
    /// ClientHellos the inspector saw for hello.test and for 127.0.0.1.
    cap_host: Captures,
    cap_ip: Captures,
    /// Kept alive until the probes are done.
    listeners: Vec<Listener>,
    /// Probe entries per probe process.
    groups: BTreeMap<Group, Vec<Value>>,
    script_logs: HashMap<String, (Script, ScriptLog)>,
}

/// What the probe processes and pip reported.
struct ProbeReports {
    lines: HashMap<String, ProbeLine>,
    /// Per probe-process group (by name): why it produced nothing, or what its namespace did.
    group_notes: HashMap<String, String>,
    pip: Option<pip::PipResult>,
}

fn run_interpreter(env: &Env, interp: &Interpreter) -> (InterpreterReport, Vec<CaseResult>) {
    let t0 = Instant::now();
    let mut rep = InterpreterReport {
        name: interp.name.clone(),
        python: interp.python.display().to_string(),
        reference: interp.reference,
        ..Default::default()
    };
    let work = env.work.join(format!("interp-{}", sanitize(&interp.name)));
    let _ = std::fs::create_dir_all(&work);

    // 1. What is this interpreter?
    let meta = match interpreter_meta(env, interp) {
        Ok(m) => m,
        Err(e) => {
            rep.notes.push(format!("interpreter did not start: {}", e));
            let results = did_not_start(env, interp, &e);
            rep.wall_ms = t0.elapsed().as_millis() as u64;
            return (rep, results);
        }
    };
    rep.version = meta["python"].as_str().unwrap_or("?").to_string();
    rep.openssl = meta["openssl"].as_str().unwrap_or("?").to_string();
    let major = meta["version_info"][0].as_u64().unwrap_or(3) as u32;
    rep.meta = meta.clone();
    let run = InterpRun {
        env,
        interp,
        meta: &meta,
        major,
        work: &work,
    };

    // 2. Per-interpreter servers: ClientHello inspector and scripted servers.
    let mut out = Outcomes::new();
    let servers = start_own_servers(env, &mut out);

    // 3. Probe processes (one per group) and pip, concurrently.
    let reports = run_probes(&run, &servers.groups, &mut out);
    drop(servers.listeners);

    // 4. Outcomes.
    let host_hello = last_capture(&servers.cap_host);
    let ip_hello = last_capture(&servers.cap_ip);
    if let Ok(h) = &host_hello {
        rep.hello_rating = Some(rate(h));
    }
    for c in env.cases {
        if out.contains_key(&c.id) {
            continue;
        }
        let entry = case_outcome(c, &reports, &servers.script_logs, &host_hello, &ip_hello);
        out.insert(c.id.clone(), entry);
    }
    note_hello_retry(&mut out, &host_hello);
    if let Some(r) = &reports.pip {
        rep.pip_note = format!("{}; {}", r.pip_version, r.summary);
    }
    for (g, n) in &reports.group_notes {
        rep.notes.push(format!("{}: {}", g, n));
    }
    let results = env
        .cases
        .iter()
        .map(|c| {
            let (observed, detail, ms) = out.remove(&c.id).unwrap();
            CaseResult {
                case: c.id.clone(),
                interpreter: interp.name.clone(),
                verdict: judge(&c.expect, &observed),
                observed,
                detail,
                ms,
            }
        })
        .collect();
    rep.wall_ms = t0.elapsed().as_millis() as u64;
    (rep, results)
}

/// `probe.py --meta`: the interpreter's versions, paths and modules, or why it did not start.
fn interpreter_meta(env: &Env, interp: &Interpreter) -> Result<Value, String> {
    let mut c = Command::new(&interp.python);
    c.arg(env.probe).arg("--meta");
    proc::probe_env(&mut c);
    let _p = env.sem.acquire();
    match proc::run_cmd(&mut c, Duration::from_secs(30)) {
        Ok(o) => match parse_probe_output(&o.stdout).0 {
            Some(m) => Ok(m),
            None => Err(format!(
                "no meta line (exit {:?}): {}",
                o.status.and_then(|s| s.code()),
                o.stderr.lines().last().unwrap_or("")
            )),
        },
        Err(e) => Err(format!("{:#}", e)),
    }
}

/// Every case an error: the interpreter did not start (`e`).
fn did_not_start(env: &Env, interp: &Interpreter, e: &str) -> Vec<CaseResult> {
    env.cases
        .iter()
        .map(|c| {
            let obs = Observed::Error {
                message: format!("interpreter did not start: {}", e),
            };
            CaseResult {
                case: c.id.clone(),
                interpreter: interp.name.clone(),
                verdict: judge(&c.expect, &obs),
                observed: obs,
                detail: String::new(),
                ms: 0,
            }
        })
        .collect()
}

/// Start the ClientHello inspectors (if a case needs them) and the scripted servers, and sort
/// every case with a server into its probe group; cases that cannot be served go to `out`.
fn start_own_servers(env: &Env, out: &mut Outcomes) -> OwnServers {
    let mut own = OwnServers {
        cap_host: Arc::new(Mutex::new(Vec::new())),
        cap_ip: Arc::new(Mutex::new(Vec::new())),
        listeners: Vec::new(),
        groups: BTreeMap::new(),
        script_logs: HashMap::new(),
    };
    if env.cases.iter().any(|c| matches!(c.how, How::Hello(_))) {
        for (id, host, cap) in [
            ("_hello_host", "hello.test", &own.cap_host),
            ("_hello_ip", "127.0.0.1", &own.cap_ip),
        ] {
            match server::start_inspector(cap.clone()) {
                Ok(l) => {
                    let p = ProbeSpec::tls(host, &env.mat.root_pem);
                    own.groups
                        .entry(Group::Default)
                        .or_default()
                        .push(probe_entry(id, &p, l.port, env.mat));
                    own.listeners.push(l);
                }
                Err(e) => cap.lock().unwrap().push(Err(format!("inspector: {:#}", e))),
            }
        }
    }
    for c in env.cases {
        match &c.how {
            How::Tls { probe, .. } => match &env.ports[&c.id] {
                Ok(port) => own
                    .groups
                    .entry(probe.group)
                    .or_default()
                    .push(probe_entry(&c.id, probe, *port, env.mat)),
                Err(e) => {
                    out.insert(
                        c.id.clone(),
                        bare(Observed::NotServable { reason: e.clone() }),
                    );
                }
            },
            How::Scripted { script, probe } => {
                let log: ScriptLog = Arc::new(Mutex::new(Vec::new()));
                match server::start_scripted(script.clone(), log.clone()) {
                    Ok(l) => {
                        own.groups
                            .entry(probe.group)
                            .or_default()
                            .push(probe_entry(&c.id, probe, l.port, env.mat));
                        own.listeners.push(l);
                        own.script_logs.insert(c.id.clone(), (script.clone(), log));
                    }
                    Err(e) => {
                        out.insert(
                            c.id.clone(),
                            bare(Observed::Error {
                                message: format!("{:#}", e),
                            }),
                        );
                    }
                }
            }
            How::NotServable(r) => {
                out.insert(
                    c.id.clone(),
                    bare(Observed::NotServable { reason: r.clone() }),
                );
            }
            _ => {}
        }
    }
    own
}

/// Run one probe process per group and, beside them, pip; groups that cannot run here put
/// their cases in `out`.
fn run_probes(
    run: &InterpRun,
    groups: &BTreeMap<Group, Vec<Value>>,
    out: &mut Outcomes,
) -> ProbeReports {
    let pip_cases: Vec<(String, pip::PipCase)> = run
        .env
        .cases
        .iter()
        .filter_map(|c| match c.how {
            How::Pip(p) => Some((c.id.clone(), p)),
            _ => None,
        })
        .collect();
    let mut lines: HashMap<String, ProbeLine> = HashMap::new();
    let mut group_notes: HashMap<String, String> = HashMap::new();
    let mut pip_result = None;
    std::thread::scope(|s| {
        let pip_handle = (!pip_cases.is_empty()).then(|| s.spawn(move || run_pip(run, &pip_cases)));
        let mut handles = Vec::new();
        for (group, entries) in groups {
            let Some(cmd) = group_command(run, *group, entries, &mut group_notes, out) else {
                continue;
            };
            let name = group.name().to_string();
            let sem = run.env.sem;
            handles.push(s.spawn(move || (name, run_probe_process(sem, cmd))));
        }
        for h in handles {
            let (name, (got, note)) = h.join().unwrap();
            lines.extend(got);
            if !note.is_empty() {
                group_notes
                    .entry(name)
                    .and_modify(|n| n.push_str(&format!("; {}", note)))
                    .or_insert(note);
            }
        }
        pip_result = pip_handle.map(|h| h.join().unwrap());
    });
    ProbeReports {
        lines,
        group_notes,
        pip: pip_result,
    }
}

/// The pip cases, under the pip limit (not servable without ensurepip).
fn run_pip(run: &InterpRun, cases: &[(String, pip::PipCase)]) -> pip::PipResult {
    let (env, meta) = (run.env, run.meta);
    if meta["ensurepip"].is_null() {
        let why = format!(
            "no ensurepip module ({})",
            meta["ensurepip_error"].as_str().unwrap_or("?")
        );
        return pip::PipResult::all(cases, Observed::NotServable { reason: why }, "-");
    }
    let _permit = env.pip_sem.acquire();
    let t = Instant::now();
    let mut r = pip::run(&pip::PipJob {
        python: &run.interp.python,
        major: run.major,
        work: &run.work.join("pip"),
        ca_pem: &env.mat.root_pem,
        ports: env.pip_ports,
        cases,
        meta,
        layout_files: &env.mat.layout_files,
        private: &env.private,
        timeout: PIP_TIMEOUT,
    });
    r.summary = format!("{} ({:.1} s)", r.summary, t.elapsed().as_secs_f64());
    r
}

/// Write `group`'s cases file and build the command that runs the probe on it: in a namespace
/// for the system-store and layout groups, with SSL_CERT_FILE or SSL_CERT_DIR for theirs. None
/// if it cannot run (the reason is in `notes`, or the cases are in `out` as not servable).
fn group_command(
    run: &InterpRun,
    group: Group,
    entries: &[Value],
    notes: &mut HashMap<String, String>,
    out: &mut Outcomes,
) -> Option<Command> {
    let (env, python) = (run.env, &run.interp.python);
    let file = run.work.join(format!("cases-{}.json", group.name()));
    if let Err(e) = std::fs::write(&file, serde_json::to_vec_pretty(entries).unwrap()) {
        notes.insert(group.name().into(), format!("writing cases: {}", e));
        return None;
    }
    // Namespace groups build their own command and may be unservable here.
    let namespaced = match group {
        Group::SystemStore => Some(trust::command(
            python,
            env.probe,
            &file,
            run.meta,
            &env.mat.trust_bundle,
            &env.mat.trust_dir,
            run.work,
        )),
        Group::Layout(layout) => Some(trust::layout_command(
            layout,
            &[
                python.as_os_str(),
                env.probe.as_os_str(),
                file.as_os_str(),
                "1".as_ref(),
            ],
            run.meta,
            &env.mat.layout_files,
            run.work,
            &env.private,
        )),
        _ => None,
    };
    match namespaced {
        Some(Ok((mut c, note))) => {
            proc::probe_env(&mut c);
            if !note.is_empty() {
                notes.insert(group.name().into(), note);
            }
            Some(c)
        }
        Some(Err(reason)) => {
            for e in entries {
                out.insert(
                    e["id"].as_str().unwrap().to_string(),
                    bare(Observed::NotServable {
                        reason: reason.clone(),
                    }),
                );
            }
            None
        }
        None => {
            let mut c = Command::new(python);
            c.arg(env.probe).arg(&file).arg("16");
            proc::probe_env(&mut c);
            match group {
                Group::CertFile => {
                    c.env("SSL_CERT_FILE", &env.mat.trust_bundle);
                }
                Group::CertDir => {
                    c.env("SSL_CERT_DIR", &env.mat.trust_dir);
                }
                _ => {}
            }
            Some(c)
        }
    }
}

/// The name of the probe group `c` runs in, if it runs in a probe process.
fn group_of(c: &CaseDef) -> Option<String> {
    match &c.how {
        How::Tls { probe, .. } | How::Scripted { probe, .. } => {
            Some(probe.group.name().to_string())
        }
        _ => None,
    }
}

/// `c`'s outcome from what the probes, the servers and pip reported.
fn case_outcome(
    c: &CaseDef,
    reports: &ProbeReports,
    script_logs: &HashMap<String, (Script, ScriptLog)>,
    host_hello: &Result<ClientHello, String>,
    ip_hello: &Result<ClientHello, String>,
) -> (Observed, String, u64) {
    let line = reports.lines.get(&c.id);
    let ms = line.and_then(|l| l.ms).unwrap_or(0);
    let missing = || {
        let note = group_of(c)
            .and_then(|g| reports.group_notes.get(&g).cloned())
            .unwrap_or_default();
        Observed::Error {
            message: format!("no result from the probe ({})", note),
        }
    };
    match &c.how {
        How::Tls { .. } => match line {
            Some(l) => {
                let o = l.observed();
                let detail = tls_detail(c, l, &o, &reports.group_notes);
                (o, detail, ms)
            }
            None => (missing(), String::new(), 0),
        },
        How::Scripted { .. } => {
            let (script, log) = &script_logs[&c.id];
            let client = line
                .map(|l| {
                    format!(
                        "; probe saw: {} {}",
                        l.outcome,
                        l.error.clone().unwrap_or_default()
                    )
                })
                .unwrap_or_default();
            match scripted_observed(script, log) {
                Some((o, d)) => (o, format!("{}{}", d, client), ms),
                None => (missing(), client, 0),
            }
        }
        How::Hello(check) => {
            let (o, d) = hello_check(*check, host_hello, ip_hello);
            (o, d, 0)
        }
        How::Pip(_) => match reports.pip.as_ref().and_then(|r| r.outcomes.get(&c.id)) {
            Some((o, d)) => (o.clone(), d.clone(), 0),
            None => bare(Observed::Error {
                message: "pip not run".into(),
            }),
        },
        How::NotServable(r) => bare(Observed::NotServable { reason: r.clone() }),
    }
}

/// The detail of a TLS case's probe line `l` (observed `o`), with its group's notes.
fn tls_detail(
    c: &CaseDef,
    l: &ProbeLine,
    o: &Observed,
    group_notes: &HashMap<String, String>,
) -> String {
    let detail = match o {
        Observed::Accept { .. } => o.describe(),
        _ => format!(
            "{}: {}",
            l.error_class.clone().unwrap_or_default(),
            l.error.clone().unwrap_or_default()
        ),
    };
    let detail = match (c.id.as_str(), group_notes.get("system_store")) {
        ("51", Some(n)) => format!("{} [{}]", detail, n),
        _ => detail,
    };
    let detail = match &l.verify_paths {
        Some(vp) => format!(
            "{}; default verify paths: {}",
            detail,
            describe_verify_paths(vp)
        ),
        None => detail,
    };
    match group_of(c)
        .filter(|g| g.starts_with("trust-"))
        .and_then(|g| group_notes.get(&g))
    {
        Some(n) => format!("{} [{}]", detail, n),
        None => detail,
    }
}

/// 42 only exercises a HelloRetryRequest if the client's first key shares miss P-384.
fn note_hello_retry(out: &mut Outcomes, host_hello: &Result<ClientHello, String>) {
    if let (Some(entry), Ok(h)) = (out.get_mut("42"), host_hello) {
        let shares: Vec<String> = h
            .key_share_groups
            .iter()
            .map(|g| hello::group_name(*g))
            .collect();
        let hrr = !h.key_share_groups.contains(&0x0018);
        entry.1 = format!(
            "{}; first key shares [{}] vs server P-384 only: {}",
            entry.1,
            shares.join(","),
            if hrr {
                "HelloRetryRequest needed"
            } else {
                "no HRR needed (case not exercised)"
            }
        );
    }
}

/// `cafile=... capath=... (openssl_cafile=..., openssl_capath=...)`; None shown as -.
fn describe_verify_paths(vp: &Value) -> String {
    if let Some(e) = vp["error"].as_str() {
        return format!("error {}", e);
    }
    let g = |k: &str| vp[k].as_str().unwrap_or("-").to_string();
    format!(
        "cafile={} capath={} (openssl_cafile={}, openssl_capath={})",
        g("cafile"),
        g("capath"),
        g("openssl_cafile"),
        g("openssl_capath")
    )
}

fn sanitize(s: &str) -> String {
    s.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '.' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

/// The servers every interpreter shares: one per TLS case, and the pip index servers.
struct SharedServers {
    /// Kept alive for the whole run.
    listeners: Vec<Listener>,
    /// Per TLS case: its server's port, or why it could not be started.
    ports: HashMap<String, Result<u16, String>>,
    pip_ports: pip::IndexPorts,
}

impl SharedServers {
    fn start(cases: &[CaseDef], mat: &Materials) -> Result<SharedServers> {
        let mut listeners = Vec::new();
        let mut ports: HashMap<String, Result<u16, String>> = HashMap::new();
        for c in cases {
            if let How::Tls { server, .. } = &c.how {
                let r = match server {
                    Ok(spec) => server::start_tls(spec.clone())
                        .map_err(|e| format!("server cannot be configured: {:#}", e)),
                    Err(e) => Err(e.clone()),
                };
                ports.insert(
                    c.id.clone(),
                    r.as_ref().map(|l| l.port).map_err(|e| e.clone()),
                );
                if let Ok(l) = r {
                    listeners.push(l);
                }
            }
        }
        let mut pip_ports = pip::IndexPorts::default();
        if cases.iter().any(|c| matches!(c.how, How::Pip(_))) {
            let site = pip::index_site()?;
            let serve = |chain: &server::Chain| {
                server::start_tls(server::TlsSpec {
                    app: server::App::Http(site.clone()),
                    ..server::TlsSpec::new(chain.clone())
                })
            };
            let good = serve(&mat.index_chain)?;
            let wrong = serve(&mat.index_wrong_chain)?;
            let untrusted = serve(&mat.index_untrusted_chain)?;
            pip_ports = pip::IndexPorts {
                good: Some(good.port),
                wrong_host: Some(wrong.port),
                untrusted: Some(untrusted.port),
            };
            listeners.extend([good, wrong, untrusted]);
        }
        Ok(SharedServers {
            listeners,
            ports,
            pip_ports,
        })
    }
}

/// The macOS layouts mount over /private, which Linux lacks: made for the run if a selected
/// case needs it (trust.rs).
fn private_dir_for(cases: &[CaseDef]) -> Option<Result<trust::PrivateDir, String>> {
    let needs_private = cases.iter().any(|c| match &c.how {
        How::Tls { probe, .. } => matches!(probe.group, Group::Layout(l) if l.needs_private()),
        How::Pip(pip::PipCase::Layout(l)) => l.needs_private(),
        _ => false,
    });
    if needs_private {
        Some(trust::PrivateDir::acquire())
    } else {
        None
    }
}

/// Run the suite for every interpreter; writes `conformance.json` and `conformance.html` to
/// `cfg.out_dir`.
pub fn run(cfg: &Config) -> Result<Report> {
    let t0 = Instant::now();
    let started_unix = SystemTime::now().duration_since(UNIX_EPOCH)?.as_secs();
    let tmp = proc::TempDir::new("tlsforge-conformance")?;
    let probe = tmp.path().join("probe.py");
    std::fs::write(&probe, PROBE_PY)?;
    let pki_dir = tmp.path().join("pki");
    std::fs::create_dir_all(&pki_dir)?;
    let (mat, all) = cases::build(&pki_dir).context("building the test PKI")?;
    let cases: Vec<CaseDef> = all
        .into_iter()
        .filter(|c| selected(c, &cfg.filter))
        .collect();
    anyhow::ensure!(
        !cases.is_empty(),
        "no case matches the filter {:?}",
        cfg.filter
    );

    let shared = SharedServers::start(&cases, &mat)?;
    let private_guard = private_dir_for(&cases);
    let private = match &private_guard {
        Some(Err(e)) => Err(e.clone()),
        _ => Ok(()),
    };
    let sem = proc::Semaphore::new(cfg.jobs.max(1));
    let pip_sem = proc::Semaphore::new(2);
    let env = Env {
        cases: &cases,
        mat: &mat,
        probe: &probe,
        work: tmp.path(),
        ports: &shared.ports,
        pip_ports: shared.pip_ports,
        sem: &sem,
        pip_sem: &pip_sem,
        private,
    };
    let per: Vec<(InterpreterReport, Vec<CaseResult>)> = std::thread::scope(|s| {
        let hs: Vec<_> = cfg
            .interpreters
            .iter()
            .map(|i| s.spawn(|| run_interpreter(&env, i)))
            .collect();
        hs.into_iter()
            .map(|h| h.join().expect("interpreter thread panicked"))
            .collect()
    });
    drop(shared.listeners);
    drop(private_guard);

    let mut report = Report {
        started_unix,
        cases: cases
            .iter()
            .map(|c| CaseInfo {
                id: c.id.clone(),
                title: c.title.clone(),
                expect: c.expect.clone(),
                origin: c.origin.to_string(),
            })
            .collect(),
        ..Default::default()
    };
    for (r, results) in per {
        report.interpreters.push(r);
        report.results.extend(results);
    }
    report.wall_ms = t0.elapsed().as_millis() as u64;
    write_report(&cfg.out_dir, &report)?;
    Ok(report)
}

/// `conformance.json` and `conformance.html` in `out_dir`.
fn write_report(out_dir: &Path, report: &Report) -> Result<()> {
    std::fs::create_dir_all(out_dir).with_context(|| format!("creating {}", out_dir.display()))?;
    std::fs::write(
        out_dir.join("conformance.json"),
        serde_json::to_vec_pretty(report)?,
    )?;
    std::fs::write(out_dir.join("conformance.html"), report.html())?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filter_includes_and_excludes() {
        let dir = proc::TempDir::new("tlsforge-filter-test").unwrap();
        let (_, all) = cases::build(dir.path()).unwrap();
        let pick = |f: &str| {
            all.iter()
                .filter(|c| selected(c, &Some(f.to_string())))
                .map(|c| c.id.clone())
                .collect::<Vec<_>>()
        };
        assert!(pick("!pip").len() + 2 <= all.len(), "pip cases excluded");
        assert!(!pick("!pip").iter().any(|id| id.starts_with("53")));
        assert_eq!(pick("22"), vec!["22".to_string()]);
        assert!(pick("trust-,!trust-empty")
            .iter()
            .all(|id| id.starts_with("trust-") && id != "trust-empty"));
    }

    #[test]
    fn parses_probe_json_lines() {
        let out = r#"{"meta": {"python": "2.7.18", "version_info": [2, 7, 18]}}
Traceback noise that is not JSON
{"alpn": null, "cipher": "TLS_AES_256_GCM_SHA384", "error": null, "error_class": null, "id": "01", "ms": 12, "outcome": "accept", "version": "TLSv1.3"}
{"alpn": null, "cipher": null, "error": "[SSL: CERTIFICATE_VERIFY_FAILED] certificate verify failed: certificate has expired (_ssl.c:1006)", "error_class": "SSLCertVerificationError", "id": "02", "ms": 5, "outcome": "refuse", "version": null}
{"id": "03", "outcome": "timeout", "error_class": "timeout", "error": "The read operation timed out"}
{"id": "04", "outcome": "error", "error_class": "ConnectionRefusedError", "error": "[Errno 111] Connection refused"}
"#;
        let (meta, lines) = parse_probe_output(out);
        assert_eq!(meta.unwrap()["python"], "2.7.18");
        assert_eq!(lines.len(), 4);
        assert_eq!(
            lines["01"].observed(),
            Observed::Accept {
                version: Some("TLSv1.3".into()),
                cipher: Some("TLS_AES_256_GCM_SHA384".into()),
                alpn: None
            }
        );
        assert!(
            matches!(lines["02"].observed(), Observed::Refuse { ref class, .. } if class == "SSLCertVerificationError")
        );
        assert!(matches!(lines["03"].observed(), Observed::Timeout { .. }));
        assert!(matches!(lines["04"].observed(), Observed::Error { .. }));
        assert_eq!(
            judge(&Expect::Refuse, &lines["01"].observed()),
            Verdict::Mismatch
        );
        assert_eq!(
            judge(&Expect::Refuse, &lines["03"].observed()),
            Verdict::Mismatch
        );
    }

    #[test]
    fn catalogue_covers_the_contract_table() {
        let tmp = proc::TempDir::new("tlsforge-conformance-test").unwrap();
        let (_, cases) = cases::build(tmp.path()).unwrap();
        assert!(cases.len() >= 60, "{} cases", cases.len());
        for n in 1..=53 {
            let id = format!("{:02}", n);
            assert!(
                cases.iter().any(|c| c.id == id || c.id.starts_with(&id)),
                "case {} missing",
                id
            );
        }
        let mut ids: Vec<&str> = cases.iter().map(|c| c.id.as_str()).collect();
        ids.sort();
        ids.dedup();
        assert_eq!(ids.len(), cases.len(), "duplicate case ids");
    }
}
