//! `cargo xtask bench`: builds nothing; runs the pinned pyperformance
//! subset of recipes/bench.toml on each built interpreter and on the stock
//! interpreter of the same minor version (pyenv's), then the TLS client
//! benchmark (tests/bench/tls_bench.py) against a local TLS server
//! (tests/bench/tls_server.c),
//! and prints figures and ratios. A benchmark, not a test: it asserts
//! nothing.

use anyhow::{bail, Context, Result};
use serde::Deserialize;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use crate::pipeline::{self, Options};
use crate::util::{commit_dir, is_complete, mark_complete, workspace_root, Cache, KeyBuilder};

#[derive(Deserialize)]
struct BenchFile {
    benchmarks: Vec<String>,
    pyperf_args: Vec<String>,
    /// Rounds per benchmark, ours and stock alternating (the order flips
    /// each round); the ratio is the median of the rounds' ratios.
    rounds: usize,
    /// Bulk and handshake runs per interpreter, alternating likewise.
    tls_rounds: usize,
    /// Size of the file each bulk run downloads.
    tls_bulk_mib: usize,
    /// OpenSSL's names of the ciphers timed alone (tests/bench/aead_speed.c).
    aead_ciphers: Vec<String>,
    python3: Sources,
    python2: Sources,
}

#[derive(Deserialize)]
struct Sources {
    requirements: String,
    script: String,
    pythonpath: Vec<String>,
}

/// The pinned sdists, downloaded with hashes checked and unpacked, once.
fn sources(cache: &Cache, s: &Sources) -> Result<PathBuf> {
    let req = workspace_root().join(&s.requirements);
    let text = fs::read(&req).with_context(|| format!("reading {}", req.display()))?;
    let tools = cache.dir("tools")?;
    let dir = tools.join(format!(
        "bench-{}",
        KeyBuilder::new("bench").add("requirements", &text).finish()
    ));
    let _lock = crate::util::lock_build(&dir)?;
    if is_complete(&dir) {
        return Ok(dir);
    }
    crate::prereqs::ensure(&[("import pip", "python3-pip")])?;
    let work = crate::cache::tempdir_in(&tools)?;
    let downloads = work.path().join("sdists");
    let out = Command::new("python3")
        .args(["-m", "pip", "download", "--require-hashes", "--no-deps"])
        .args(["--no-binary", ":all:", "--disable-pip-version-check", "-d"])
        .arg(&downloads)
        .arg("-r")
        .arg(&req)
        .output()
        .context("running pip download")?;
    if !out.status.success() {
        bail!(
            "pip download of {} failed:\n{}",
            req.display(),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let tree = work.path().join("out");
    for e in fs::read_dir(&downloads)? {
        let sdist = e?.path();
        let name = sdist.file_name().unwrap().to_string_lossy().to_string();
        let stem = name.trim_end_matches(".tar.gz");
        crate::extract::extract(&sdist, &tree.join(stem))?;
    }
    mark_complete(&tree)?;
    commit_dir(&tree, &dir)?;
    Ok(dir)
}

/// `extract` strips the archive's top directory; the recipe's paths name it.
fn source_path(dir: &Path, rel: &str) -> PathBuf {
    dir.join(rel)
}

/// Mean of every value pyperf recorded, in seconds.
fn pyperf_mean(json: &Path) -> Result<f64> {
    let v: serde_json::Value = serde_json::from_slice(&fs::read(json)?)?;
    let values: Vec<f64> = v["benchmarks"]
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|b| b["runs"].as_array().into_iter().flatten())
        .flat_map(|r| r["values"].as_array().into_iter().flatten())
        .filter_map(|x| x.as_f64())
        .collect();
    if values.is_empty() {
        bail!("{} holds no values", json.display());
    }
    Ok(values.iter().sum::<f64>() / values.len() as f64)
}

fn run_pyperf(
    exe: &Path,
    script: &Path,
    pythonpath: &str,
    args: &[String],
    out: &Path,
) -> Result<f64> {
    let _ = fs::remove_file(out);
    let o = Command::new(exe)
        .arg(script)
        .args(args)
        .arg("--inherit-environ=PYTHONPATH")
        .arg("-o")
        .arg(out)
        .env("PYTHONPATH", pythonpath)
        .output()
        .with_context(|| format!("running {}", exe.display()))?;
    if !o.status.success() {
        bail!(
            "{} {}: {}",
            exe.display(),
            script.display(),
            String::from_utf8_lossy(&o.stderr)
                .lines()
                .last()
                .unwrap_or("")
        );
    }
    pyperf_mean(out)
}

/// `rounds` pairs of (ours, stock), the two run alternately and the order
/// flipped each round, so that a machine getting slower or faster during
/// the benchmark weighs on both alike.
fn alternating<T>(
    rounds: usize,
    mut ours: impl FnMut() -> Result<T>,
    mut stock: impl FnMut() -> Result<T>,
) -> Result<Vec<(T, T)>> {
    (0..rounds.max(1))
        .map(|round| {
            if round % 2 == 0 {
                let s = stock()?;
                Ok((ours()?, s))
            } else {
                let o = ours()?;
                Ok((o, stock()?))
            }
        })
        .collect()
}

fn median(mut xs: Vec<f64>) -> f64 {
    xs.sort_by(f64::total_cmp);
    let n = xs.len();
    if n == 0 {
        f64::NAN
    } else if n % 2 == 1 {
        xs[n / 2]
    } else {
        (xs[n / 2 - 1] + xs[n / 2]) / 2.0
    }
}

/// A pyperf mean in the unit that shows it (unpack_sequence's are tens of
/// nanoseconds, nbody's hundreds of milliseconds).
fn duration(seconds: f64) -> String {
    let (scale, unit) = match seconds {
        s if s >= 1.0 => (1.0, "s"),
        s if s >= 1e-3 => (1e3, "ms"),
        s if s >= 1e-6 => (1e6, "us"),
        _ => (1e9, "ns"),
    };
    format!("{:.1} {unit}", seconds * scale)
}

fn geometric_mean(xs: &[f64]) -> f64 {
    (xs.iter().map(|x| x.ln()).sum::<f64>() / xs.len() as f64).exp()
}

/// `only`: "pyperformance" or "tls" runs that part alone.
pub fn run(opts: &Options, only: Option<&str>, against: &[PathBuf]) -> Result<()> {
    let file: BenchFile = toml::from_str(&fs::read_to_string(
        workspace_root().join("recipes/bench.toml"),
    )?)?;
    let cache = Cache::from_env()?;
    let built = pipeline::build(&Options {
        require_cached: true,
        ..opts.clone()
    })?;
    let scratch = tempfile::tempdir()?;
    let against = against
        .iter()
        .map(|p| Ok((series_of(p)?, p.clone())))
        .collect::<Result<Vec<_>>>()?;
    let mut pairs = Vec::new();
    for a in &built {
        let series: String = a.version.split('.').take(2).collect::<Vec<_>>().join(".");
        let chosen = against
            .iter()
            .find(|(s, _)| *s == series)
            .map(|(_, p)| p.clone());
        let Some(stock) = chosen.or_else(|| crate::regrtest::stock_interpreter(&series)) else {
            println!(
                "CPython {}: no stock {series} on this machine to compare with",
                a.version
            );
            continue;
        };
        pairs.push((a, crate::validate::python_exe(&a.root, a.python2), stock));
    }
    for (a, ours, stock) in pairs.iter().filter(|_| only != Some("tls")) {
        let src = if a.python2 {
            &file.python2
        } else {
            &file.python3
        };
        let dir = sources(&cache, src)?;
        let pythonpath = src
            .pythonpath
            .iter()
            .map(|p| source_path(&dir, p).display().to_string())
            .collect::<Vec<_>>()
            .join(":");
        println!(
            "\npyperformance on CPython {} (ours: {}; stock: {}), pyperf {}",
            a.version,
            ours.display(),
            stock.display(),
            file.pyperf_args.join(" ")
        );
        println!(
            "{:<18} {:>12} {:>12} {:>8}",
            "benchmark", "ours", "stock", "ratio"
        );
        let mut ratios = Vec::new();
        for b in &file.benchmarks {
            let script = source_path(&dir, &src.script.replace("{name}", b));
            let out = scratch.path().join(format!("{b}.json"));
            let run = |exe: &Path| run_pyperf(exe, &script, &pythonpath, &file.pyperf_args, &out);
            match alternating(file.rounds, || run(ours), || run(stock)) {
                Ok(rounds) => {
                    let ratio = median(rounds.iter().map(|(o, s)| s / o).collect());
                    ratios.push(ratio);
                    let o = median(rounds.iter().map(|r| r.0).collect());
                    let s = median(rounds.iter().map(|r| r.1).collect());
                    println!(
                        "{b:<18} {:>12} {:>12} {:>7.2}x",
                        duration(o),
                        duration(s),
                        ratio
                    );
                }
                Err(e) => println!("{b:<18} failed: {e:#}"),
            }
        }
        if !ratios.is_empty() {
            println!(
                "geometric mean: ours ({}) is {:.2}x the stock {} ({} benchmarks; >1 = faster)",
                a.version,
                geometric_mean(&ratios),
                stock.display(),
                ratios.len()
            );
        }
    }
    if only == Some("pyperformance") {
        return Ok(());
    }
    let mut prefixes: Vec<&Path> = pairs
        .iter()
        .map(|(a, ..)| a.openssl_prefix.as_path())
        .collect();
    prefixes.sort();
    prefixes.dedup();
    for prefix in prefixes {
        ciphers(prefix, scratch.path(), &file.aead_ciphers)?;
    }
    tls(
        &pairs
            .iter()
            .map(|(a, o, s)| (a.version.clone(), o.clone(), s.clone()))
            .collect::<Vec<_>>(),
        scratch.path(),
        &file,
    )
}

/// The `major.minor` an interpreter reports (`--against` must name one of
/// a version that was built).
fn series_of(python: &Path) -> Result<String> {
    let series = crate::util::stdout_of(
        Command::new(python).args([
            "-c",
            "import sys; sys.stdout.write('%d.%d' % sys.version_info[:2])",
        ]),
        &format!("--against {}", python.display()),
    )?;
    if series.is_empty() {
        bail!("--against {}: not a Python interpreter", python.display());
    }
    Ok(series)
}

/// The AEAD ciphers of TLS 1.3 alone (tests/bench/aead_speed.c, 16 KiB
/// records decrypted and verified), in our OpenSSL and in the machine's
/// libcrypto that the stock interpreters load: what the TLS figures owe to
/// OpenSSL's assembly rather than to the interpreter.
fn ciphers(openssl_prefix: &Path, scratch: &Path, suites: &[String]) -> Result<()> {
    crate::prereqs::ensure(&[("/usr/include/openssl/evp.h", "libssl-dev")])?;
    let source = workspace_root().join("tests/bench/aead_speed.c");
    let ours = scratch.join("aead-ours");
    let stock = scratch.join("aead-stock");
    let include = openssl_prefix.join("include");
    let builds: [(&Path, Vec<std::ffi::OsString>); 2] = [
        (
            &ours,
            vec![
                "-I".into(),
                include.into(),
                openssl_prefix.join("lib/libcrypto.a").into(),
                "-lpthread".into(),
            ],
        ),
        (&stock, vec!["-lcrypto".into()]),
    ];
    for (exe, args) in builds {
        compile(&source, &args, exe)?;
    }
    // (cipher -> MB/s, OpenSSL) per side; the best of three runs
    let speeds = |exe: &Path| -> Result<Vec<(f64, String)>> {
        let mut best: Vec<(f64, String)> = vec![(0.0, String::new()); suites.len()];
        for _ in 0..3 {
            let out = crate::util::stdout_of(Command::new(exe).args(suites), "aead_speed")?;
            for (line, slot) in out.lines().zip(best.iter_mut()) {
                let mut f = line.splitn(3, ' ').skip(1);
                let rate: f64 = f
                    .next()
                    .unwrap_or("")
                    .parse()
                    .context("aead_speed output")?;
                if rate > slot.0 {
                    *slot = (rate, f.next().unwrap_or("").to_string());
                }
            }
        }
        Ok(best)
    };
    let (o, s) = (speeds(&ours)?, speeds(&stock)?);
    println!(
        "\nOpenSSL's AEAD ciphers alone (16 KiB records decrypted; best of 3): ours {}, stock {}",
        o[0].1, s[0].1
    );
    println!(
        "{:<20} {:>10} {:>10} {:>8}",
        "cipher", "ours MB/s", "stock MB/s", "ratio"
    );
    for (i, suite) in suites.iter().enumerate() {
        println!(
            "{suite:<20} {:>10.0} {:>10.0} {:>7.2}x",
            o[i].0,
            s[i].0,
            o[i].0 / s[i].0
        );
    }
    Ok(())
}

/// Compiles one of tests/bench's C programs with the machine's cc (`args`:
/// include paths and the libraries to link).
fn compile(source: &Path, args: &[std::ffi::OsString], exe: &Path) -> Result<()> {
    crate::util::stdout_of(
        Command::new("cc")
            .args(["-O2", "-Wall"])
            .arg(source)
            .args(args)
            .arg("-o")
            .arg(exe),
        &format!("compiling {}", source.display()),
    )?;
    Ok(())
}

/// One bulk transfer's figures, or the best of several.
struct Bulk {
    mb_s: f64,
    cpu_ms_per_mb: f64,
    /// The server's CPU time over the transfer's wall time (NaN where
    /// /proc cannot tell).
    server_busy: f64,
    /// How often the client slept waiting for data (voluntary context
    /// switches): each wait is a wakeup the server pays for.
    waits: f64,
}

impl Bulk {
    /// The best of each figure over the rounds (each may come from another round).
    fn best<'a>(runs: impl Iterator<Item = &'a Bulk>) -> Bulk {
        runs.fold(
            Bulk {
                mb_s: 0.0,
                cpu_ms_per_mb: f64::MAX,
                server_busy: f64::MAX,
                waits: f64::MAX,
            },
            |b, r| Bulk {
                mb_s: b.mb_s.max(r.mb_s),
                cpu_ms_per_mb: b.cpu_ms_per_mb.min(r.cpu_ms_per_mb),
                // (the least busy round: "at least")
                server_busy: b.server_busy.min(r.server_busy),
                waits: b.waits.min(r.waits),
            },
        )
    }
}

/// Kills the server when the benchmark ends, however it ends.
struct Server(Child);
impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// User + system CPU seconds of a running process (Linux's /proc).
fn cpu_seconds(pid: u32) -> Option<f64> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the command name's ")": state is the first, utime
    // and stime the 12th and 13th (clock ticks).
    let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
    let ticks: f64 = fields.get(11)?.parse::<f64>().ok()? + fields.get(12)?.parse::<f64>().ok()?;
    let per_second = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    (per_second > 0).then(|| ticks / per_second as f64)
}

fn free_port() -> Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

/// The loopback pair of the TLS benchmark: the compiled server, the
/// directory with its certificate and key, and the CPUs (client, server)
/// the two are pinned to.
struct Loopback {
    server_exe: PathBuf,
    dir: PathBuf,
    cpus: Option<(usize, usize)>,
}

impl Loopback {
    /// tests/bench/tls_server.c on `port`, serving `mib` MiB of body with
    /// one TLS 1.3 cipher suite; it says "ready" once it listens.
    fn server(&self, port: u16, ciphersuite: &str, mib: usize) -> Result<Server> {
        use std::io::BufRead;
        let mut child = pin(&mut Command::new(&self.server_exe), self.cpus.map(|c| c.1))
            .arg(port.to_string())
            .args(["cert.pem", "key.pem", ciphersuite])
            .arg(mib.to_string())
            .current_dir(&self.dir)
            .stdout(Stdio::piped())
            .spawn()
            .context("starting tests/bench/tls_server")?;
        let mut line = String::new();
        let stdout = child.stdout.take().context("the server's stdout")?;
        let server = Server(child);
        std::io::BufReader::new(stdout).read_line(&mut line)?;
        if line.trim() != "ready" {
            bail!("tests/bench/tls_server did not start on port {port} (its error is above)");
        }
        Ok(server)
    }

    /// tests/bench/tls_bench.py run by the interpreter `exe` against the
    /// server on `port`.
    fn client(&self, exe: &Path, port: u16, args: &[&str]) -> Result<serde_json::Value> {
        let o = pin(&mut Command::new(exe), self.cpus.map(|c| c.0))
            .arg(workspace_root().join("tests/bench/tls_bench.py"))
            .arg(port.to_string())
            .arg(self.dir.join("cert.pem"))
            .args(args)
            .env_clear()
            .output()?;
        if !o.status.success() {
            bail!("{}: {}", exe.display(), String::from_utf8_lossy(&o.stderr));
        }
        Ok(serde_json::from_slice(&o.stdout)?)
    }
}

/// The CPUs this process may run on (Linux's affinity mask).
fn allowed_cpus() -> Vec<usize> {
    // SAFETY: cpu_set_t is plain data; sched_getaffinity fills it.
    let mut set: libc::cpu_set_t = unsafe { std::mem::zeroed() };
    if unsafe { libc::sched_getaffinity(0, std::mem::size_of_val(&set), &mut set) } != 0 {
        return Vec::new();
    }
    (0..libc::CPU_SETSIZE as usize)
        .filter(|&c| unsafe { libc::CPU_ISSET(c, &set) })
        .collect()
}

/// The CPUs the TLS client and the server are pinned to: the first and the
/// last allowed one, so that they never share a core and the scheduler
/// cannot move either (None with fewer than two CPUs).
fn tls_cpus() -> Option<(usize, usize)> {
    let cpus = allowed_cpus();
    (cpus.len() >= 2).then(|| (cpus[0], cpus[cpus.len() - 1]))
}

/// Runs `cmd` on one CPU only.
fn pin(cmd: &mut Command, cpu: Option<usize>) -> &mut Command {
    use std::os::unix::process::CommandExt;
    let Some(cpu) = cpu else { return cmd };
    // SAFETY: the hook only calls async-signal-safe sched_setaffinity in the child.
    unsafe {
        cmd.pre_exec(move || {
            let mut set: libc::cpu_set_t = std::mem::zeroed();
            libc::CPU_SET(cpu, &mut set);
            if libc::sched_setaffinity(0, std::mem::size_of_val(&set), &set) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        })
    }
}

/// Handshake CPU and bulk MB/s (AES-128-GCM and ChaCha20-Poly1305, TLS
/// 1.3) of each interpreter as a client of tests/bench/tls_server.c, built
/// against the machine's OpenSSL (the same server for both columns).
fn tls(pairs: &[(String, PathBuf, PathBuf)], scratch: &Path, file: &BenchFile) -> Result<()> {
    let tls_rounds = file.tls_rounds;
    crate::prereqs::ensure(&[
        ("openssl", "openssl"),
        ("/usr/include/openssl/ssl.h", "libssl-dev"),
    ])?;
    let dir = scratch.join("tls");
    fs::create_dir_all(&dir)?;
    let pair = Loopback {
        server_exe: scratch.join("tls_server"),
        dir: dir.clone(),
        cpus: tls_cpus(),
    };
    compile(
        &workspace_root().join("tests/bench/tls_server.c"),
        &["-lssl".into(), "-lcrypto".into()],
        &pair.server_exe,
    )?;
    let status = Command::new("openssl")
        .args([
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-nodes",
        ])
        .args([
            "-keyout",
            "key.pem",
            "-out",
            "cert.pem",
            "-days",
            "2",
            "-subj",
            "/CN=localhost",
        ])
        .args(["-addext", "subjectAltName=DNS:localhost"])
        .current_dir(&dir)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()?;
    if !status.success() {
        bail!("openssl req could not make the benchmark's certificate");
    }
    println!(
        "\nTLS client against tests/bench/tls_server.c on loopback (the machine's OpenSSL; P-256 certificate, TLS 1.3, {} MiB per bulk run; {})",
        file.tls_bulk_mib,
        match pair.cpus {
            Some((client, server)) => format!("client on CPU {client}, server on CPU {server}"),
            None => "one CPU: client and server share it".to_string(),
        }
    );
    println!(
        "(the server writes ~64 records per write(2), so the bulk rate should be the client's; its CPU share is printed below; the client's CPU ms per MB is the interpreter's own cost)"
    );
    println!(
        "{:<10} {:<6} {:>16} {:>18} {:>18}",
        "CPython", "who", "handshake CPU ms", "AES-128-GCM", "ChaCha20-Poly1305"
    );
    println!(
        "{:<10} {:<6} {:>16} {:>18} {:>18}",
        "", "", "", "MB/s  CPU ms/MB", "MB/s  CPU ms/MB"
    );
    for (version, ours, stock) in pairs {
        // Handshake CPU: the lowest of the rounds; bulk: the best rate.
        let port = free_port()?;
        let handshakes = {
            let _s = pair.server(port, "TLS_AES_128_GCM_SHA256", 0)?;
            // (CPU ms, the OpenSSL the interpreter reports)
            let cpu = |exe: &Path| -> Result<(f64, String)> {
                let v = pair.client(exe, port, &["handshake", "300"])?;
                let ms = v["handshake_cpu_ms"]
                    .as_f64()
                    .context("no handshake_cpu_ms")?;
                Ok((ms, v["openssl"].as_str().unwrap_or("").to_string()))
            };
            alternating(tls_rounds, || cpu(ours), || cpu(stock))?
        };
        let cpu_o = handshakes.iter().map(|r| r.0 .0).fold(f64::MAX, f64::min);
        let cpu_s = handshakes.iter().map(|r| r.1 .0).fold(f64::MAX, f64::min);
        // Per cipher, [ours, stock], each the best of its rounds.
        let mut bulk: Vec<[Bulk; 2]> = Vec::new();
        for suite in ["TLS_AES_128_GCM_SHA256", "TLS_CHACHA20_POLY1305_SHA256"] {
            let port = free_port()?;
            let server = pair.server(port, suite, file.tls_bulk_mib)?;
            let run = |exe: &Path| -> Result<Bulk> {
                let before = cpu_seconds(server.0.id());
                let v = pair.client(exe, port, &["bulk", "big"])?;
                let mb_s = v["bulk_mb_s"].as_f64().context("no bulk_mb_s")?;
                let mb = v["bytes"].as_f64().context("no bytes")? / 1e6;
                let server_cpu = cpu_seconds(server.0.id()).zip(before).map(|(a, b)| a - b);
                Ok(Bulk {
                    mb_s,
                    cpu_ms_per_mb: v["bulk_cpu_ms_per_mb"]
                        .as_f64()
                        .context("no bulk_cpu_ms_per_mb")?,
                    server_busy: server_cpu.map_or(f64::NAN, |c| c / (mb / mb_s)),
                    waits: v["bulk_waits"].as_f64().context("no bulk_waits")?,
                })
            };
            let runs = alternating(tls_rounds, || run(ours), || run(stock))?;
            bulk.push([
                Bulk::best(runs.iter().map(|r| &r.0)),
                Bulk::best(runs.iter().map(|r| &r.1)),
            ]);
        }
        let (ossl_o, ossl_s) = (&handshakes[0].0 .1, &handshakes[0].1 .1);
        for (i, who, cpu, ossl) in [(0, "ours", cpu_o, ossl_o), (1, "stock", cpu_s, ossl_s)] {
            let (aes, chacha) = (&bulk[0][i], &bulk[1][i]);
            println!(
                "{version:<10} {who:<6} {cpu:>16.3} {:>8.0} {:>9.3} {:>8.0} {:>9.3}   {ossl}",
                aes.mb_s, aes.cpu_ms_per_mb, chacha.mb_s, chacha.cpu_ms_per_mb
            );
        }
        let ratio = |c: usize, f: fn(&Bulk) -> f64| f(&bulk[c][0]) / f(&bulk[c][1]);
        // A server on CPU for the whole transfer sets the wall rate; the
        // client's own ceiling is then 1 MB per its CPU time per MB.
        let busy = |c: usize| 100.0 * bulk[c][0].server_busy.min(bulk[c][1].server_busy);
        let ceiling = |b: &Bulk| 1000.0 / b.cpu_ms_per_mb;
        println!(
            "{version:<10} the server on CPU for >= {:.0} % (AES-GCM) and {:.0} % (ChaCha20) of every transfer; the clients' own ceilings (MB per client CPU second): AES-GCM ours {:.0}, stock {:.0}; ChaCha20 ours {:.0}, stock {:.0}; times the client waited for data (fewest): AES-GCM ours {:.0}, stock {:.0}; ChaCha20 ours {:.0}, stock {:.0}",
            busy(0),
            busy(1),
            ceiling(&bulk[0][0]),
            ceiling(&bulk[0][1]),
            ceiling(&bulk[1][0]),
            ceiling(&bulk[1][1]),
            bulk[0][0].waits,
            bulk[0][1].waits,
            bulk[1][0].waits,
            bulk[1][1].waits,
        );
        println!(
            "{version:<10} ratio  handshake CPU ours/stock {:.2}x; bulk CPU per MB ours/stock {:.2}x AES-GCM, {:.2}x ChaCha20 (<=1 is better); bulk MB/s ours/stock {:.2}x AES-GCM, {:.2}x ChaCha20 (>=1 is better); {tls_rounds} alternating rounds",
            cpu_o / cpu_s,
            ratio(0, |b| b.cpu_ms_per_mb),
            ratio(1, |b| b.cpu_ms_per_mb),
            ratio(0, |b| b.mb_s),
            ratio(1, |b| b.mb_s),
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rounds_alternate_and_the_median_is_taken() {
        let order = std::cell::RefCell::new(Vec::new());
        let rounds = alternating(
            3,
            || {
                order.borrow_mut().push("ours");
                Ok(1.0)
            },
            || {
                order.borrow_mut().push("stock");
                Ok(2.0)
            },
        )
        .unwrap();
        assert_eq!(rounds, [(1.0, 2.0); 3]);
        assert_eq!(
            *order.borrow(),
            ["stock", "ours", "ours", "stock", "stock", "ours"]
        );
        assert_eq!(median(vec![3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(vec![4.0, 1.0, 2.0, 3.0]), 2.5);
        let failed: Result<Vec<(f64, f64)>> = alternating(2, || Ok(1.0), || bail!("no stock"));
        assert!(failed.is_err());
    }

    /// A process's CPU time grows while it computes; a pid that does not
    /// exist has none. (It spins until 0.1 s of CPU is counted rather than
    /// for a fixed wall time: on a machine busy with a build, 200 ms of
    /// wall time gave this thread 20 ms of CPU.)
    #[test]
    fn cpu_seconds_counts_a_busy_process() {
        let me = std::process::id();
        let before = cpu_seconds(me).unwrap();
        let start = std::time::Instant::now();
        let mut x = 0u64;
        let mut used = 0.0;
        while used < 0.1 && start.elapsed().as_secs() < 20 {
            for _ in 0..1_000_000 {
                x = x.wrapping_mul(6364136223846793005).wrapping_add(1);
            }
            used = cpu_seconds(me).unwrap() - before;
        }
        std::hint::black_box(x);
        assert!(used >= 0.1, "{used} s of CPU counted in 20 s of spinning");
        assert!(cpu_seconds(u32::MAX).is_none());
    }

    #[test]
    fn a_pinned_child_runs_on_that_cpu_only() {
        let cpu = *allowed_cpus()
            .last()
            .expect("this process runs on some CPU");
        let out = pin(&mut Command::new("sh"), Some(cpu))
            .args(["-c", "grep Cpus_allowed_list /proc/self/status"])
            .output()
            .unwrap();
        let line = String::from_utf8_lossy(&out.stdout);
        assert_eq!(
            line.split_whitespace().last(),
            Some(cpu.to_string().as_str())
        );
    }

    #[test]
    fn an_against_interpreter_is_known_by_its_minor_version() {
        let series = series_of(Path::new("python3")).unwrap();
        let (major, minor) = series.split_once('.').unwrap();
        assert_eq!(major, "3");
        assert!(minor.parse::<u32>().is_ok(), "{series}");
        let err = series_of(Path::new("true")).unwrap_err().to_string();
        assert!(err.contains("--against true: not a Python"), "{err}");
        assert!(series_of(Path::new("/nonexistent/python")).is_err());
    }

    #[test]
    fn durations_are_shown_in_a_unit_that_keeps_their_digits() {
        assert_eq!(duration(0.196107), "196.1 ms");
        assert_eq!(duration(5.62e-8), "56.2 ns");
        assert_eq!(duration(7.4e-5), "74.0 us");
        assert_eq!(duration(2.5), "2.5 s");
    }

    #[test]
    fn pyperf_mean_reads_every_run_and_geometric_mean_is_right() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("b.json");
        fs::write(
            &p,
            r#"{"benchmarks":[{"runs":[{"warmups":[[1,9.0]]},{"values":[1.0,3.0]},{"values":[2.0]}]}]}"#,
        )
        .unwrap();
        assert_eq!(pyperf_mean(&p).unwrap(), 2.0);
        fs::write(&p, r#"{"benchmarks":[{"runs":[{"warmups":[[1,9.0]]}]}]}"#).unwrap();
        assert!(pyperf_mean(&p).is_err());
        assert!((geometric_mean(&[2.0, 8.0]) - 4.0).abs() < 1e-12);
    }
}
