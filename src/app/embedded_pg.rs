//! A private PostgreSQL cluster run from the machine's PostgreSQL installation.
//!
//! `serve` uses it when no database URL is configured, and the test harness uses
//! it for its throwaway cluster. Layout under the data directory:
//!
//! ```text
//! <data_dir>/            owned by the caller, mode 0755
//!   ladder.lock          flock held for as long as this process uses the cluster
//!   superuser.password   the password of the superuser `ladder` (0600)
//!   app.password         the password of the application role `ladder_app` (0600)
//!   pgdata/              the cluster, owned by the user PostgreSQL runs as (0700);
//!                        its unix socket lives here too, no TCP port is opened
//! ```
//!
//! Every connection authenticates with a password (SCRAM-SHA-256), so a
//! process that can reach the socket but cannot read the data directory's
//! password files is nobody to the cluster. The superuser owns the schema
//! and runs the migrations; the service connects as `ladder_app`, which row-
//! level security binds to one tenant per request (migration 0007). Both
//! passwords are generated when the cluster is created; a cluster made
//! before passwords were used gets them on its next start.
//!
//! PostgreSQL refuses to run as root, so when this process is root the cluster's
//! processes run as an unprivileged account (Debian's `postgres` by default),
//! which must be able to traverse every directory above the data directory.

use std::fs::{self, File};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::os::unix::io::AsRawFd;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::Command;

/// The superuser name initdb gives the cluster, whoever runs it.
pub const SUPERUSER: &str = "ladder";
const LOCK_FILE: &str = "ladder.lock";
const SUPERUSER_PASSWORD_FILE: &str = "superuser.password";
const APP_PASSWORD_FILE: &str = "app.password";
/// Only password logins, over the socket only.
const PG_HBA: &str =
    "# Set by ladder: password logins over the unix socket only.\nlocal all all scram-sha-256\n";
const CLUSTER_DIR: &str = "pgdata";
/// The port only names the socket file; no TCP listener is opened.
pub const SOCKET_PORT: u16 = 5432;
const BINARIES: [&str; 3] = ["initdb", "pg_ctl", "postgres"];

#[derive(Debug, thiserror::Error)]
pub enum EmbeddedError {
    #[error(
        "PostgreSQL is not installed: no initdb, pg_ctl and postgres found ({searched}). \
         Install it with `apt-get install postgresql` (Debian/Ubuntu), \
         or point --pg-bin-dir at the directory that holds those programs"
    )]
    NotInstalled { searched: String },
    #[error(
        "the data directory {0} is already in use by another ladder process; \
         stop it first or pass a different --data-dir"
    )]
    InUse(PathBuf),
    #[error(
        "running as root, PostgreSQL must run as an unprivileged user, but the user `{0}` does not \
         exist; install PostgreSQL (`apt-get install postgresql` creates `postgres`) or name another \
         user with --pg-user"
    )]
    NoSuchUser(String),
    #[error(
        "the user `{user}` that runs PostgreSQL cannot traverse {path} (mode {mode:o}); choose a \
         --data-dir below directories it can reach, for example /var/lib/ladder"
    )]
    NotTraversable {
        user: String,
        path: PathBuf,
        mode: u32,
    },
    #[error("{step} failed: {detail}")]
    Command { step: String, detail: String },
    #[error("{context}: {source}")]
    Io {
        context: String,
        source: std::io::Error,
    },
}

fn io_err(context: impl Into<String>) -> impl FnOnce(std::io::Error) -> EmbeddedError {
    let context = context.into();
    move |source| EmbeddedError::Io { context, source }
}

/// How to find and run PostgreSQL.
#[derive(Debug, Clone)]
pub struct EmbeddedConfig {
    pub data_dir: PathBuf,
    /// Look only here for initdb, pg_ctl and postgres; otherwise search PATH,
    /// `pg_config --bindir` and /usr/lib/postgresql/*/bin.
    pub bin_dir: Option<PathBuf>,
    /// The account the cluster runs as when this process is root.
    pub system_user: String,
    /// Trade durability for speed (fsync off); for throwaway test clusters only.
    pub ephemeral: bool,
}

impl EmbeddedConfig {
    /// A cluster for tests and benchmarks: the installation's binaries, run as
    /// `postgres` when we are root, fsync off. `data_dir` must be traversable
    /// by that account (somewhere under /tmp, not under root's home).
    pub fn throwaway(data_dir: PathBuf) -> Self {
        Self {
            data_dir,
            bin_dir: None,
            system_user: "postgres".into(),
            ephemeral: true,
        }
    }
}

/// The account the cluster's processes run as, when it differs from ours.
#[derive(Debug, Clone)]
struct RunAs {
    name: String,
    uid: u32,
    gid: u32,
}

/// A running cluster; stopped by [`EmbeddedPostgres::stop`] or on drop.
#[derive(Debug)]
pub struct EmbeddedPostgres {
    data_dir: PathBuf,
    cluster_dir: PathBuf,
    bin_dir: PathBuf,
    run_as: Option<RunAs>,
    running: bool,
    // Held for the cluster's lifetime: the flock is what keeps a second process out.
    _lock: File,
}

impl EmbeddedPostgres {
    /// Creates the cluster on first use, reuses it later, and starts it.
    pub fn start(config: &EmbeddedConfig) -> Result<Self, EmbeddedError> {
        let bin_dir = find_bin_dir(config.bin_dir.as_deref())?;
        let run_as = run_as(&config.system_user)?;
        fs::create_dir_all(&config.data_dir)
            .map_err(io_err(format!("creating {}", config.data_dir.display())))?;
        let data_dir = fs::canonicalize(&config.data_dir)
            .map_err(io_err(format!("resolving {}", config.data_dir.display())))?;
        let lock = lock(&data_dir)?;
        let cluster_dir = data_dir.join(CLUSTER_DIR);
        if let Some(user) = &run_as {
            // The cluster user must reach the data directory through every parent.
            fs::set_permissions(&data_dir, fs::Permissions::from_mode(0o755))
                .map_err(io_err(format!("chmod {}", data_dir.display())))?;
            check_traversable(&data_dir, user)?;
        }
        let mut pg = EmbeddedPostgres {
            data_dir: data_dir.clone(),
            cluster_dir,
            bin_dir,
            run_as,
            running: false,
            _lock: lock,
        };
        if !pg.cluster_dir.join("PG_VERSION").exists() {
            pg.init(config.ephemeral)?;
        } else {
            if pg.cluster_dir.join("postmaster.pid").exists() {
                // We hold the lock, so a running postmaster is an orphan of a ladder
                // that died; stop it (or clear its stale pid file) before starting ours.
                let _ = pg.pg_ctl(&["stop", "-m", "fast", "-w"]);
            }
            if !pg.data_dir.join(SUPERUSER_PASSWORD_FILE).exists() {
                pg.require_passwords()?;
            }
        }
        pg.password_file(APP_PASSWORD_FILE)?;
        pg.pg_ctl(&[
            "start",
            "-w",
            "-t",
            "60",
            "-l",
            &pg.cluster_dir.join("server.log").to_string_lossy(),
        ])?;
        pg.running = true;
        Ok(pg)
    }

    /// The directory holding the unix socket to connect through.
    pub fn socket_dir(&self) -> &Path {
        &self.cluster_dir
    }

    /// The superuser's password.
    pub fn superuser_password(&self) -> Result<String, EmbeddedError> {
        self.password_file(SUPERUSER_PASSWORD_FILE)
    }

    /// The application role's password.
    pub fn app_password(&self) -> Result<String, EmbeddedError> {
        self.password_file(APP_PASSWORD_FILE)
    }

    /// The password kept in `name` under the data directory, generated
    /// (readable by this process's user only) if there is none yet.
    fn password_file(&self, name: &str) -> Result<String, EmbeddedError> {
        let path = self.data_dir.join(name);
        match fs::read_to_string(&path) {
            Ok(password) => return Ok(password.trim().to_string()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(io_err(format!("reading {}", path.display()))(e)),
        }
        let password = new_password();
        write_private(&path, &password)?;
        Ok(password)
    }

    /// A cluster created before ladder used passwords trusted every local
    /// connection: give the superuser its password (in single-user mode,
    /// before the server starts) and accept password logins only.
    fn require_passwords(&self) -> Result<(), EmbeddedError> {
        let password = new_password();
        let dir = self.cluster_dir.to_string_lossy().into_owned();
        // The password is hexadecimal: nothing in it needs quoting.
        let statement = format!("ALTER ROLE {SUPERUSER} PASSWORD '{password}';\n");
        self.run_with_input(
            "postgres",
            &["--single", "-D", &dir, "postgres"],
            &statement,
        )?;
        write_private(&self.data_dir.join(SUPERUSER_PASSWORD_FILE), &password)?;
        let hba = self.cluster_dir.join("pg_hba.conf");
        fs::write(&hba, PG_HBA).map_err(io_err(format!("writing {}", hba.display())))
    }

    /// Stops the cluster (fast shutdown: open sessions are ended cleanly).
    pub fn stop(mut self) -> Result<(), EmbeddedError> {
        self.stop_inner()
    }

    fn stop_inner(&mut self) -> Result<(), EmbeddedError> {
        if !self.running {
            return Ok(());
        }
        self.running = false;
        self.pg_ctl(&["stop", "-m", "fast", "-w", "-t", "60"])
    }

    fn init(&self, ephemeral: bool) -> Result<(), EmbeddedError> {
        fs::create_dir_all(&self.cluster_dir)
            .map_err(io_err(format!("creating {}", self.cluster_dir.display())))?;
        fs::set_permissions(&self.cluster_dir, fs::Permissions::from_mode(0o700))
            .map_err(io_err(format!("chmod {}", self.cluster_dir.display())))?;
        if let Some(user) = &self.run_as {
            std::os::unix::fs::chown(&self.cluster_dir, Some(user.uid), Some(user.gid))
                .map_err(io_err(format!("chown {}", self.cluster_dir.display())))?;
        }
        let dir = self.cluster_dir.to_string_lossy().into_owned();
        // initdb reads the superuser's password from a file, as the user the
        // cluster runs as; that copy lives only while initdb runs.
        let password = self.password_file(SUPERUSER_PASSWORD_FILE)?;
        let pwfile = self.data_dir.join("initdb.password");
        write_private(&pwfile, &password)?;
        if let Some(user) = &self.run_as {
            std::os::unix::fs::chown(&pwfile, Some(user.uid), Some(user.gid))
                .map_err(io_err(format!("chown {}", pwfile.display())))?;
        }
        let initdb = self.run(
            "initdb",
            &[
                "-D",
                &dir,
                "-U",
                SUPERUSER,
                &format!("--pwfile={}", pwfile.display()),
                "--auth-local=scram-sha-256",
                "--auth-host=scram-sha-256",
                "--encoding=UTF8",
                "--locale=C",
                "--no-instructions",
            ],
        );
        let _ = fs::remove_file(&pwfile);
        initdb?;
        let hba = self.cluster_dir.join("pg_hba.conf");
        fs::write(&hba, PG_HBA).map_err(io_err(format!("writing {}", hba.display())))?;
        // Only a unix socket inside the cluster directory: nothing listens on TCP,
        // and only users who can enter the directory can connect.
        let mut settings = format!(
            "\n# Set by ladder\nlisten_addresses = ''\nunix_socket_directories = '{}'\nport = {SOCKET_PORT}\nmax_connections = 200\n",
            dir.replace('\'', "''")
        );
        if ephemeral {
            settings.push_str("fsync = off\nsynchronous_commit = off\nfull_page_writes = off\n");
        }
        let conf = self.cluster_dir.join("postgresql.conf");
        let mut existing =
            fs::read_to_string(&conf).map_err(io_err(format!("reading {}", conf.display())))?;
        existing.push_str(&settings);
        fs::write(&conf, existing).map_err(io_err(format!("writing {}", conf.display())))
    }

    fn pg_ctl(&self, args: &[&str]) -> Result<(), EmbeddedError> {
        let dir = self.cluster_dir.to_string_lossy().into_owned();
        let mut full = vec!["-D", dir.as_str()];
        full.extend_from_slice(args);
        self.run("pg_ctl", &full)
    }

    fn run(&self, program: &str, args: &[&str]) -> Result<(), EmbeddedError> {
        self.run_with_input(program, args, "")
    }

    /// Runs one of the cluster's programs as the cluster's user, `input` on
    /// its standard input.
    fn run_with_input(
        &self,
        program: &str,
        args: &[&str],
        input: &str,
    ) -> Result<(), EmbeddedError> {
        use std::io::Write;
        let mut cmd = Command::new(self.bin_dir.join(program));
        // The cluster user may not be able to enter our working directory.
        cmd.args(args)
            .current_dir("/")
            .env_remove("PGDATA")
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped());
        if let Some(user) = &self.run_as {
            cmd.uid(user.uid).gid(user.gid);
        }
        let step = format!("{program} {}", args.first().copied().unwrap_or_default());
        let running = || io_err(format!("running {}", self.bin_dir.join(program).display()));
        let mut child = cmd.spawn().map_err(running())?;
        if let Some(mut stdin) = child.stdin.take() {
            stdin.write_all(input.as_bytes()).map_err(running())?;
        }
        let output = child.wait_with_output().map_err(running())?;
        if output.status.success() {
            return Ok(());
        }
        let mut detail = String::from_utf8_lossy(&output.stderr).trim().to_string();
        if detail.is_empty() {
            detail = String::from_utf8_lossy(&output.stdout).trim().to_string();
        }
        let log = self.cluster_dir.join("server.log");
        if let Ok(text) = fs::read_to_string(&log) {
            let tail: Vec<&str> = text.lines().rev().take(5).collect();
            detail.push_str("\nserver log tail:\n");
            detail.push_str(&tail.into_iter().rev().collect::<Vec<_>>().join("\n"));
        }
        Err(EmbeddedError::Command { step, detail })
    }
}

impl Drop for EmbeddedPostgres {
    fn drop(&mut self) {
        if let Err(e) = self.stop_inner() {
            eprintln!("ladder: stopping the embedded PostgreSQL failed: {e}");
        }
    }
}

/// A password of 244 random bits (two v4 UUIDs), in hexadecimal.
fn new_password() -> String {
    format!(
        "{}{}",
        uuid::Uuid::new_v4().simple(),
        uuid::Uuid::new_v4().simple()
    )
}

/// Writes a file only this process's user can read.
fn write_private(path: &Path, contents: &str) -> Result<(), EmbeddedError> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut file = File::options()
        .create(true)
        .truncate(true)
        .write(true)
        .mode(0o600)
        .open(path)
        .map_err(io_err(format!("creating {}", path.display())))?;
    // An existing file keeps its mode on open: make sure of it.
    fs::set_permissions(path, fs::Permissions::from_mode(0o600))
        .map_err(io_err(format!("chmod {}", path.display())))?;
    file.write_all(contents.as_bytes())
        .map_err(io_err(format!("writing {}", path.display())))
}

fn lock(data_dir: &Path) -> Result<File, EmbeddedError> {
    let path = data_dir.join(LOCK_FILE);
    let file = File::options()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .map_err(io_err(format!("opening {}", path.display())))?;
    // SAFETY: flock on a descriptor we own; released when the file is closed.
    let rc = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) };
    if rc != 0 {
        return Err(EmbeddedError::InUse(data_dir.to_path_buf()));
    }
    Ok(file)
}

/// Finds the directory holding initdb, pg_ctl and postgres.
pub fn find_bin_dir(explicit: Option<&Path>) -> Result<PathBuf, EmbeddedError> {
    let has_all = |dir: &Path| BINARIES.iter().all(|b| dir.join(b).is_file());
    if let Some(dir) = explicit {
        return if has_all(dir) {
            Ok(dir.to_path_buf())
        } else {
            Err(EmbeddedError::NotInstalled {
                searched: format!("looked in {}", dir.display()),
            })
        };
    }
    let mut candidates: Vec<PathBuf> = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).collect())
        .unwrap_or_default();
    if let Ok(out) = Command::new("pg_config").arg("--bindir").output()
        && out.status.success()
    {
        candidates.push(PathBuf::from(String::from_utf8_lossy(&out.stdout).trim()));
    }
    // Debian installs each major version side by side; prefer the newest.
    let mut versioned: Vec<(u32, PathBuf)> = fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let major = e.file_name().to_string_lossy().parse::<u32>().ok()?;
            Some((major, e.path().join("bin")))
        })
        .collect();
    versioned.sort_by_key(|(major, _)| std::cmp::Reverse(*major));
    candidates.extend(versioned.into_iter().map(|(_, p)| p));
    candidates
        .into_iter()
        .find(|dir| has_all(dir))
        .map(|dir| {
            // A PATH entry may hold symlinks into the real installation.
            fs::canonicalize(dir.join("pg_ctl"))
                .ok()
                .and_then(|p| p.parent().map(Path::to_path_buf))
                .filter(|real| has_all(real))
                .unwrap_or(dir)
        })
        .ok_or_else(|| EmbeddedError::NotInstalled {
            searched: "searched PATH, `pg_config --bindir` and /usr/lib/postgresql/*/bin".into(),
        })
}

fn run_as(system_user: &str) -> Result<Option<RunAs>, EmbeddedError> {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        return Ok(None);
    }
    let name = std::ffi::CString::new(system_user)
        .map_err(|_| EmbeddedError::NoSuchUser(system_user.to_string()))?;
    // SAFETY: getpwnam returns a pointer into static storage or null; we copy
    // the two numbers out before any other call can overwrite it.
    let entry = unsafe { libc::getpwnam(name.as_ptr()) };
    if entry.is_null() {
        return Err(EmbeddedError::NoSuchUser(system_user.to_string()));
    }
    let (uid, gid) = unsafe { ((*entry).pw_uid, (*entry).pw_gid) };
    if uid == 0 {
        return Err(EmbeddedError::NoSuchUser(format!(
            "{system_user} (it is root)"
        )));
    }
    Ok(Some(RunAs {
        name: system_user.to_string(),
        uid,
        gid,
    }))
}

fn check_traversable(dir: &Path, user: &RunAs) -> Result<(), EmbeddedError> {
    for ancestor in dir.ancestors() {
        let meta =
            fs::metadata(ancestor).map_err(io_err(format!("stat {}", ancestor.display())))?;
        let mode = meta.mode();
        let allowed = if meta.uid() == user.uid {
            mode & 0o100 != 0
        } else if meta.gid() == user.gid {
            mode & 0o010 != 0
        } else {
            mode & 0o001 != 0
        };
        if !allowed {
            return Err(EmbeddedError::NotTraversable {
                user: user.name.clone(),
                path: ancestor.to_path_buf(),
                mode: mode & 0o7777,
            });
        }
    }
    Ok(())
}

/// The default data directory: per user, somewhere the cluster user can reach.
/// Root's home is usually mode 0700, which the `postgres` account cannot enter,
/// so root gets /var/lib/ladder.
pub fn default_data_dir() -> PathBuf {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } == 0 {
        return PathBuf::from("/var/lib/ladder");
    }
    if let Some(xdg) = std::env::var_os("XDG_DATA_HOME") {
        return PathBuf::from(xdg).join("ladder");
    }
    match std::env::var_os("HOME") {
        Some(home) => PathBuf::from(home).join(".local/share/ladder"),
        None => std::env::temp_dir().join("ladder"),
    }
}
