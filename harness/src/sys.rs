//! The harness's calls into the operating system, in one place: the
//! open-file limit, CPU affinity, `sysconf`, and process-group signals.
//! Every `unsafe` block of the harness is here, each with its reason.

use std::sync::OnceLock;
use tokio::process::Command;

/// The soft `RLIMIT_NOFILE` of this process (what `open` actually enforces),
/// or `None` if it cannot be read or is unlimited.
pub fn open_file_limit() -> Option<u64> {
    let mut rl = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit only writes into the struct we pass, which is valid
    // and properly aligned for the duration of the call.
    #[allow(unsafe_code)]
    let rc = unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut rl) };
    (rc == 0 && rl.rlim_cur != libc::RLIM_INFINITY).then_some(rl.rlim_cur)
}

/// Raises the soft `RLIMIT_NOFILE` of this process to its hard limit and
/// returns the soft limit now in force (`None`: unknown or unlimited). The
/// fleet is then refused only when it cannot fit what the machine allows,
/// not what a shell's default happened to be; a failure leaves the limit as
/// it was (and validation reports the fleet that does not fit it).
pub fn raise_open_file_limit() -> Option<u64> {
    let mut rl = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit/setrlimit only read or write the struct we pass,
    // which is valid and properly aligned for the duration of each call.
    #[allow(unsafe_code)]
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut rl) == 0 && rl.rlim_cur < rl.rlim_max {
            let raised = libc::rlimit {
                rlim_cur: rl.rlim_max,
                rlim_max: rl.rlim_max,
            };
            if libc::setrlimit(libc::RLIMIT_NOFILE, &raised) != 0 {
                tracing::debug!("could not raise RLIMIT_NOFILE to {}", rl.rlim_max);
            }
        }
    }
    open_file_limit()
}

/// A CPU set holding `cpus` (numbers beyond the set's size are ignored).
pub fn cpu_set(cpus: &[usize]) -> libc::cpu_set_t {
    // SAFETY: cpu_set_t is a plain bit array; all zeros is the empty set.
    #[allow(unsafe_code)]
    let mut set: libc::cpu_set_t = unsafe { std::mem::zeroed() };
    for &c in cpus {
        if c < libc::CPU_SETSIZE as usize {
            // SAFETY: `c` is below CPU_SETSIZE, so the bit lies inside `set`.
            #[allow(unsafe_code)]
            unsafe {
                libc::CPU_SET(c, &mut set);
            }
        }
    }
    set
}

/// Sets the affinity of thread `tid` (0: the calling thread) to `set`.
///
/// Async-signal-safe (one system call), so it may run between fork and exec.
pub fn set_affinity(tid: libc::pid_t, set: &libc::cpu_set_t) -> std::io::Result<()> {
    // SAFETY: `set` is a valid cpu_set_t and its size is passed with it.
    #[allow(unsafe_code)]
    let rc = unsafe { libc::sched_setaffinity(tid, std::mem::size_of::<libc::cpu_set_t>(), set) };
    if rc == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}

/// The cores the calling thread may run on (empty if unknown).
pub fn allowed_cpus() -> Vec<usize> {
    allowed_cpus_of(0)
}

/// The cores process `pid` may run on (0: this thread), as
/// [`allowed_cpus`] (empty if unreadable, e.g. the process is gone).
pub fn allowed_cpus_of(pid: u32) -> Vec<usize> {
    let mut set = cpu_set(&[]);
    // SAFETY: `set` is a valid, writable cpu_set_t and its size is passed with it.
    #[allow(unsafe_code)]
    let rc = unsafe {
        libc::sched_getaffinity(
            pid as libc::pid_t,
            std::mem::size_of::<libc::cpu_set_t>(),
            &mut set,
        )
    };
    if rc != 0 {
        return Vec::new();
    }
    (0..libc::CPU_SETSIZE as usize)
        // SAFETY: `c` is below CPU_SETSIZE, so the bit lies inside `set`.
        .filter(|&c| {
            #[allow(unsafe_code)]
            unsafe {
                libc::CPU_ISSET(c, &set)
            }
        })
        .collect()
}

/// Clock ticks per second (`sysconf(_SC_CLK_TCK)`, read once; 100 if unknown).
pub fn clock_ticks() -> u64 {
    static HZ: OnceLock<u64> = OnceLock::new();
    *HZ.get_or_init(|| sysconf(libc::_SC_CLK_TCK).unwrap_or(100))
}

/// The page size in bytes (`sysconf(_SC_PAGESIZE)`, read once; 4096 if unknown).
pub fn page_size() -> u64 {
    static PAGE: OnceLock<u64> = OnceLock::new();
    *PAGE.get_or_init(|| sysconf(libc::_SC_PAGESIZE).unwrap_or(4096))
}

fn sysconf(name: libc::c_int) -> Option<u64> {
    // SAFETY: sysconf only reads a system constant; any name is allowed
    // (an unknown one returns -1).
    #[allow(unsafe_code)]
    let v = unsafe { libc::sysconf(name) };
    u64::try_from(v).ok().filter(|&v| v > 0)
}

/// Sends `signal` to the process group led by `pid`: our child, started
/// with `process_group(0)` and not yet reaped (we hold its `Child`), so the
/// group id cannot have been reused by anyone else.
pub(crate) fn signal_group(pid: u32, signal: libc::c_int) {
    let Ok(pid) = libc::pid_t::try_from(pid) else {
        return;
    };
    if pid <= 0 {
        return;
    }
    // SAFETY: kill has no memory effects; `-pid` names our child's group only.
    #[allow(unsafe_code)]
    unsafe {
        libc::kill(-pid, signal);
    }
}

/// Sends `signal` to every descendant of `pid` (listed first, then
/// signalled), for children that left its process group (a browser that
/// playwright starts in a group of its own), then to `pid`'s group.
pub(crate) fn signal_tree(pid: u32, signal: libc::c_int) {
    let mut all = Vec::new();
    let mut pending = vec![pid];
    while let Some(p) = pending.pop() {
        let Ok(tasks) = std::fs::read_dir(format!("/proc/{p}/task")) else {
            continue;
        };
        for t in tasks.flatten() {
            if let Ok(c) = std::fs::read_to_string(t.path().join("children")) {
                for child in c.split_whitespace().filter_map(|v| v.parse::<u32>().ok()) {
                    if all.len() < 4096 {
                        all.push(child);
                        pending.push(child);
                    }
                }
            }
        }
    }
    for child in all {
        if let Ok(c) = libc::pid_t::try_from(child) {
            // SAFETY: kill has no memory effects; `c` was a descendant of
            // our own unreaped child a moment ago.
            #[allow(unsafe_code)]
            unsafe {
                libc::kill(c, signal);
            }
        }
    }
    signal_group(pid, signal);
}

/// What every server process gets before exec: death with the harness
/// (`PR_SET_PDEATHSIG`) and its cores (`cpus`, none: not pinned).
pub(crate) fn pre_exec_setup(cmd: &mut Command, cpus: &[usize]) {
    // Built before the fork: the child must not allocate.
    let cpus = (!cpus.is_empty()).then(|| cpu_set(cpus));
    // SAFETY: the closure runs in the forked child before exec and only
    // calls prctl and sched_setaffinity, which are async-signal-safe; it
    // reads a copy of the CPU set and touches no other memory of the parent.
    #[allow(unsafe_code)]
    unsafe {
        cmd.pre_exec(move || {
            // The server dies with the harness even on SIGKILL. (The
            // signal follows the spawning *thread*; runtime worker
            // threads live as long as the runtime, which outlives it.)
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            // Pinned before exec, so every thread the server starts
            // inherits the placement and it never runs elsewhere.
            if let Some(set) = &cpus {
                set_affinity(0, set)?;
            }
            Ok(())
        });
    }
}

/// Whether this process runs as root (the kernel link emulator needs it).
pub fn is_root() -> bool {
    // SAFETY: geteuid takes no arguments, cannot fail and touches no memory.
    #[allow(unsafe_code)]
    let uid = unsafe { libc::geteuid() };
    uid == 0
}
