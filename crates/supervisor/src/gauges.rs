//! Resource gauges for `status`: CPU, memory, Postern's own resident memory, the data disk.

use std::path::Path;

use postern_control::Gauges;
use sysinfo::{Pid, ProcessRefreshKind, ProcessesToUpdate, System};

/// Keeps the previous CPU sample so that each reading covers the time since the last one.
#[derive(Debug)]
pub struct GaugeSampler {
    system: System,
}

impl GaugeSampler {
    pub fn new() -> Self {
        let mut system = System::new();
        system.refresh_cpu_usage();
        Self { system }
    }

    /// Samples now; `services` are the pids whose memory counts as Postern's besides our own.
    pub fn sample(&mut self, data: &Path, services: &[u32]) -> Gauges {
        self.system.refresh_cpu_usage();
        self.system.refresh_memory();
        let mut pids: Vec<Pid> = services.iter().map(|p| Pid::from_u32(*p)).collect();
        pids.push(Pid::from_u32(std::process::id()));
        self.system.refresh_processes_specifics(
            ProcessesToUpdate::Some(&pids),
            true,
            ProcessRefreshKind::nothing().with_memory(),
        );
        let postern_rss = pids
            .iter()
            .filter_map(|p| self.system.process(*p))
            .map(sysinfo::Process::memory)
            .sum();
        let (data_disk_used, data_disk_total) = match nix::sys::statvfs::statvfs(data) {
            Ok(s) => {
                let block = s.fragment_size();
                let total = s.blocks() * block;
                (total - s.blocks_available() * block, total)
            }
            Err(_) => (0, 0),
        };
        Gauges {
            cpu_percent: self.system.global_cpu_usage(),
            ram_used: self.system.used_memory(),
            ram_total: self.system.total_memory(),
            postern_rss,
            data_disk_used,
            data_disk_total,
        }
    }
}

impl Default for GaugeSampler {
    fn default() -> Self {
        Self::new()
    }
}
