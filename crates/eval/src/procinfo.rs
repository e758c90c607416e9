//! Process CPU time and memory, the machine's CPU model and load, from `/proc` through the
//! `procfs` crate. Linux only: elsewhere every reader answers `None` (or empty), so the
//! benchmarks run without server-side numbers.

/// What the benchmarks need from `/proc/<pid>/stat`.
#[derive(Debug, Clone)]
pub struct ProcStat {
    pub comm: String,
    pub ppid: u32,
    /// utime + stime + cutime + cstime, clock ticks (all threads; reaped children).
    pub ticks: u64,
}

/// Resident memory of one process, KiB.
#[derive(Debug, Clone, Copy)]
pub struct ProcMem {
    /// VmRSS.
    pub rss_kib: u64,
    /// VmHWM (peak RSS).
    pub hwm_kib: Option<u64>,
}

#[cfg(target_os = "linux")]
mod imp {
    use super::{ProcMem, ProcStat};
    use procfs::process::{FDTarget, Process};
    use procfs::Current;

    fn process(pid: u32) -> Option<Process> {
        Process::new(i32::try_from(pid).ok()?).ok()
    }

    pub(super) fn stat(pid: u32) -> Option<ProcStat> {
        let s = process(pid)?.stat().ok()?;
        Some(ProcStat {
            comm: s.comm,
            ppid: u32::try_from(s.ppid).ok()?,
            ticks: s.utime
                + s.stime
                + u64::try_from(s.cutime).unwrap_or(0)
                + u64::try_from(s.cstime).unwrap_or(0),
        })
    }

    pub(super) fn memory(pid: u32) -> Option<ProcMem> {
        let s = process(pid)?.status().ok()?;
        Some(ProcMem {
            rss_kib: s.vmrss?,
            hwm_kib: s.vmhwm,
        })
    }

    pub(super) fn peak_rss_kib() -> Option<u64> {
        Process::myself().ok()?.status().ok()?.vmhwm
    }

    pub(super) fn all_pids() -> Vec<u32> {
        procfs::process::all_processes()
            .map(|it| {
                it.filter_map(|p| p.ok())
                    .filter_map(|p| u32::try_from(p.pid()).ok())
                    .collect()
            })
            .unwrap_or_default()
    }

    pub(super) fn ticks_per_second() -> u64 {
        procfs::ticks_per_second()
    }

    pub(super) fn listening_inodes(port: u16) -> Vec<u64> {
        let mut inodes = Vec::new();
        for table in [procfs::net::tcp(), procfs::net::tcp6()] {
            let Ok(entries) = table else { continue };
            inodes.extend(
                entries
                    .iter()
                    .filter(|e| {
                        e.local_address.port() == port && e.state == procfs::net::TcpState::Listen
                    })
                    .map(|e| e.inode),
            );
        }
        inodes
    }

    pub(super) fn has_socket(pid: u32, inodes: &[u64]) -> bool {
        let Some(fds) = process(pid).and_then(|p| p.fd().ok()) else {
            return false;
        };
        fds.filter_map(|f| f.ok())
            .any(|f| matches!(f.target, FDTarget::Socket(i) if inodes.contains(&i)))
    }

    pub(super) fn cpu_model() -> Option<String> {
        procfs::CpuInfo::current()
            .ok()?
            .model_name(0)
            .map(|s| s.trim().to_string())
    }

    pub(super) fn loadavg() -> Option<String> {
        let l = procfs::LoadAverage::current().ok()?;
        Some(format!("{:.2} {:.2} {:.2}", l.one, l.five, l.fifteen))
    }
}

#[cfg(not(target_os = "linux"))]
mod imp {
    use super::{ProcMem, ProcStat};

    pub(super) fn stat(_pid: u32) -> Option<ProcStat> {
        None
    }
    pub(super) fn memory(_pid: u32) -> Option<ProcMem> {
        None
    }
    pub(super) fn peak_rss_kib() -> Option<u64> {
        None
    }
    pub(super) fn all_pids() -> Vec<u32> {
        Vec::new()
    }
    pub(super) fn ticks_per_second() -> u64 {
        100
    }
    pub(super) fn listening_inodes(_port: u16) -> Vec<u64> {
        Vec::new()
    }
    pub(super) fn has_socket(_pid: u32, _inodes: &[u64]) -> bool {
        false
    }
    pub(super) fn cpu_model() -> Option<String> {
        None
    }
    pub(super) fn loadavg() -> Option<String> {
        None
    }
}

/// `/proc/<pid>/stat`, if the process exists.
pub fn stat(pid: u32) -> Option<ProcStat> {
    imp::stat(pid)
}

/// VmRSS and VmHWM of `pid`.
pub fn memory(pid: u32) -> Option<ProcMem> {
    imp::memory(pid)
}

/// Peak resident set size of this process (VmHWM), in MiB.
pub fn peak_rss_mib() -> Option<f64> {
    imp::peak_rss_kib().map(|kib| kib as f64 / 1024.0)
}

/// Every process id.
pub fn all_pids() -> Vec<u32> {
    imp::all_pids()
}

/// Clock ticks per second (`CLK_TCK`), the unit of [`ProcStat::ticks`].
pub fn ticks_per_second() -> u64 {
    imp::ticks_per_second()
}

/// The direct children of `pid`.
pub fn children(pid: u32) -> Vec<u32> {
    all_pids()
        .into_iter()
        .filter(|&p| stat(p).is_some_and(|s| s.ppid == pid))
        .collect()
}

/// `root` and all its descendants (by ppid), root first.
pub fn process_tree(root: u32) -> Vec<u32> {
    let parents: Vec<(u32, u32)> = all_pids()
        .into_iter()
        .filter_map(|p| stat(p).map(|s| (p, s.ppid)))
        .collect();
    let mut tree = vec![root];
    let mut i = 0;
    while i < tree.len() {
        let parent = tree[i];
        for &(p, pp) in &parents {
            if pp == parent && !tree.contains(&p) {
                tree.push(p);
            }
        }
        i += 1;
    }
    tree
}

/// CPU ticks of `root` and all its descendants, if `root` exists.
pub fn tree_ticks(root: u32) -> Option<u64> {
    stat(root)?;
    Some(
        process_tree(root)
            .into_iter()
            .filter_map(|p| stat(p).map(|s| s.ticks))
            .sum(),
    )
}

/// The process listening on a local TCP port (IPv4 or IPv6): of the processes holding the
/// listening socket, the one whose parent does not (the uvicorn master, not its workers).
pub fn listener_pid(port: u16) -> Option<u32> {
    let inodes = imp::listening_inodes(port);
    if inodes.is_empty() {
        return None;
    }
    let owners: Vec<u32> = all_pids()
        .into_iter()
        .filter(|&pid| imp::has_socket(pid, &inodes))
        .collect();
    owners
        .iter()
        .copied()
        .find(|&p| stat(p).is_some_and(|s| !owners.contains(&s.ppid)))
}

/// The first CPU's model name, or `unknown`.
pub fn cpu_model() -> String {
    imp::cpu_model().unwrap_or_else(|| "unknown".into())
}

/// The 1, 5 and 15 minute load averages, `"0.52 0.58 0.59"` (empty if unknown).
pub fn loadavg() -> String {
    imp::loadavg().unwrap_or_default()
}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    use super::*;

    #[test]
    fn reads_this_process() {
        let me = std::process::id();
        let s = stat(me).expect("own stat");
        assert!(s.ppid > 0);
        assert!(memory(me).is_some_and(|m| m.rss_kib > 0));
        assert!(peak_rss_mib().is_some_and(|m| m > 0.0));
        assert!(process_tree(me).starts_with(&[me]));
        assert!(tree_ticks(me).is_some());
        assert!(ticks_per_second() > 0);
        assert_eq!(loadavg().split(' ').count(), 3);
        assert!(all_pids().contains(&me));
    }

    #[test]
    fn finds_the_listener() {
        let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let port = l.local_addr().expect("addr").port();
        assert_eq!(listener_pid(port), Some(std::process::id()));
    }
}
