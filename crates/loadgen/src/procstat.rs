//! CPU and memory accounting from `/proc`, for the noise column and the memory comparison.
//!
//! The machine is shared, so every run records how much CPU went to *other* processes:
//! machine-wide busy ticks (`/proc/stat`) minus the server's and the generator's own
//! (`/proc/<pid>/stat`). Ticks are USER_HZ (100 per second on every Linux this runs on).

use std::time::{Duration, Instant};

use anyhow::Context;

/// USER_HZ: the unit of every tick count in `/proc`.
pub const TICKS_PER_SEC: f64 = 100.0;

/// Busy ticks of the whole machine (user, nice, system, irq, softirq, steal; not idle or
/// iowait).
pub fn machine_busy_ticks() -> anyhow::Result<u64> {
    let stat = std::fs::read_to_string("/proc/stat").context("reading /proc/stat")?;
    let line = stat.lines().next().context("empty /proc/stat")?;
    let fields: Vec<u64> = line
        .split_whitespace()
        .skip(1)
        .filter_map(|f| f.parse().ok())
        .collect();
    let get = |i: usize| fields.get(i).copied().unwrap_or(0);
    // user nice system idle iowait irq softirq steal
    Ok(get(0) + get(1) + get(2) + get(5) + get(6) + get(7))
}

/// User plus system ticks of process `pid` (all its threads); `None` once it has gone.
pub fn process_ticks(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name may contain spaces and parentheses; fields resume after the last ')'.
    let rest = &stat[stat.rfind(')')? + 2..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // After ')': state is field 3 of the man page, so utime (14) and stime (15) are 11 and 12.
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    Some(utime + stime)
}

/// Resident set size of `pid` in bytes (`VmRSS`).
pub fn rss_bytes(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}

/// Number of CPUs the machine has (capacity for the percentages).
pub fn cpus() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

/// A snapshot taken before a run, to be closed with [`CpuWindow::finish`].
#[derive(Debug, Clone, Copy)]
pub struct CpuWindow {
    at: Instant,
    machine: u64,
    server: u64,
    generator: u64,
    server_pid: Option<u32>,
}

/// CPU use over a window, as percentages of one core (so 2 cores fully busy = 200%).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct CpuUse {
    /// The server process.
    pub server: f64,
    /// The load generator (this process).
    pub generator: f64,
    /// Everything else on the machine (other engineers' builds, kernel threads not charged
    /// to a process, the journal's fsync kworkers, …).
    pub foreign: f64,
    /// The window length.
    pub elapsed: Duration,
}

impl CpuWindow {
    /// Starts a window; `server_pid` is the server process, if it is one.
    pub fn start(server_pid: Option<u32>) -> anyhow::Result<CpuWindow> {
        Ok(CpuWindow {
            at: Instant::now(),
            machine: machine_busy_ticks()?,
            server: server_pid.and_then(process_ticks).unwrap_or(0),
            generator: process_ticks(std::process::id()).unwrap_or(0),
            server_pid,
        })
    }

    /// Ends the window.
    pub fn finish(&self) -> anyhow::Result<CpuUse> {
        let elapsed = self.at.elapsed();
        let machine = machine_busy_ticks()?.saturating_sub(self.machine);
        let server = self
            .server_pid
            .and_then(process_ticks)
            .unwrap_or(self.server)
            .saturating_sub(self.server);
        let generator = process_ticks(std::process::id())
            .unwrap_or(self.generator)
            .saturating_sub(self.generator);
        let foreign = machine.saturating_sub(server + generator);
        let pct =
            |ticks: u64| ticks as f64 / TICKS_PER_SEC / elapsed.as_secs_f64().max(1e-9) * 100.0;
        Ok(CpuUse {
            server: pct(server),
            generator: pct(generator),
            foreign: pct(foreign),
            elapsed,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_this_process() {
        let me = std::process::id();
        assert!(process_ticks(me).is_some());
        assert!(rss_bytes(me).unwrap() > 0);
        assert!(machine_busy_ticks().unwrap() > 0);
        let window = CpuWindow::start(Some(me)).unwrap();
        let use_ = window.finish().unwrap();
        assert!(use_.foreign >= 0.0);
    }
}
