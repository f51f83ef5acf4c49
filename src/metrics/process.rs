//! The process collector's standard metrics (`process_cpu_seconds_total`,
//! `process_resident_memory_bytes`, `process_virtual_memory_bytes`, `process_open_fds`,
//! `process_max_fds`, `process_start_time_seconds`), which Flux's dashboards chart for every
//! controller, read from `/proc/self` at each scrape. Off Linux they are simply absent.

use std::sync::atomic::AtomicU64;

use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

// USER_HZ, the unit of /proc's CPU times: 100 on every Linux ABI.
const TICKS_PER_SECOND: f64 = 100.0;

/// One reading of the process's figures.
#[derive(Clone, Debug, Default, PartialEq)]
pub(crate) struct Sample {
    pub cpu_seconds: f64,
    pub resident_bytes: u64,
    pub virtual_bytes: u64,
    pub start_time_seconds: f64,
    pub open_fds: Option<u64>,
    pub max_fds: Option<u64>,
}

/// Parses `/proc/self/stat`, `/proc/self/status` and `/proc/stat`'s `btime`; `None` when a
/// field is missing.
pub(crate) fn parse(stat: &str, status: &str, proc_stat: &str) -> Option<Sample> {
    // The command name may hold spaces and parentheses: fields are counted after its last ')'.
    let after_name = &stat[stat.rfind(')')? + 1..];
    let fields: Vec<&str> = after_name.split_whitespace().collect();
    // proc(5) numbers the fields from 1; the state, field 3, is the first after the name.
    let field = |n: usize| fields.get(n - 3).and_then(|v| v.parse::<u64>().ok());
    let ticks = field(14)? + field(15)?;
    let start_ticks = field(22)?;
    let virtual_bytes = field(23)?;
    let resident_kb = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse::<u64>().ok())?;
    let boot = proc_stat
        .lines()
        .find_map(|l| l.strip_prefix("btime "))
        .and_then(|v| v.trim().parse::<u64>().ok())?;
    Some(Sample {
        cpu_seconds: ticks as f64 / TICKS_PER_SECOND,
        resident_bytes: resident_kb * 1024,
        virtual_bytes,
        start_time_seconds: boot as f64 + start_ticks as f64 / TICKS_PER_SECOND,
        open_fds: None,
        max_fds: None,
    })
}

/// The soft limit of open files from `/proc/self/limits`.
pub(crate) fn parse_max_fds(limits: &str) -> Option<u64> {
    let line = limits.lines().find(|l| l.starts_with("Max open files"))?;
    line["Max open files".len()..]
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

/// Reads the current figures; `None` off Linux or when `/proc` is unreadable.
pub(crate) fn read() -> Option<Sample> {
    let read = |p: &str| std::fs::read_to_string(p).ok();
    let mut sample = parse(
        &read("/proc/self/stat")?,
        &read("/proc/self/status")?,
        &read("/proc/stat")?,
    )?;
    sample.open_fds = std::fs::read_dir("/proc/self/fd")
        .ok()
        .map(|d| d.count() as u64);
    sample.max_fds = read("/proc/self/limits").and_then(|l| parse_max_fds(&l));
    Some(sample)
}

type FloatGauge = Gauge<f64, AtomicU64>;

/// The registered process metrics.
pub(crate) struct ProcessMetrics {
    cpu: Counter<f64, AtomicU64>,
    resident: Gauge,
    virtual_memory: Gauge,
    start_time: FloatGauge,
    open_fds: Gauge,
    max_fds: Gauge,
}

impl ProcessMetrics {
    pub(crate) fn register(registry: &mut Registry) -> ProcessMetrics {
        let m = ProcessMetrics {
            cpu: Counter::default(),
            resident: Gauge::default(),
            virtual_memory: Gauge::default(),
            start_time: FloatGauge::default(),
            open_fds: Gauge::default(),
            max_fds: Gauge::default(),
        };
        registry.register(
            "process_cpu_seconds",
            "Total user and system CPU time spent in seconds",
            m.cpu.clone(),
        );
        registry.register(
            "process_resident_memory_bytes",
            "Resident memory size in bytes",
            m.resident.clone(),
        );
        registry.register(
            "process_virtual_memory_bytes",
            "Virtual memory size in bytes",
            m.virtual_memory.clone(),
        );
        registry.register(
            "process_start_time_seconds",
            "Start time of the process since unix epoch in seconds",
            m.start_time.clone(),
        );
        registry.register(
            "process_open_fds",
            "Number of open file descriptors",
            m.open_fds.clone(),
        );
        registry.register(
            "process_max_fds",
            "Maximum number of open file descriptors",
            m.max_fds.clone(),
        );
        m
    }

    /// Brings the figures up to date.
    pub(crate) fn refresh(&self) {
        let Some(s) = read() else {
            return;
        };
        // A counter only goes up: add what was spent since the last scrape.
        let spent = s.cpu_seconds - self.cpu.get();
        if spent > 0.0 {
            self.cpu.inc_by(spent);
        }
        let gauge = |g: &Gauge, v: u64| {
            g.set(i64::try_from(v).unwrap_or(i64::MAX));
        };
        gauge(&self.resident, s.resident_bytes);
        gauge(&self.virtual_memory, s.virtual_bytes);
        self.start_time.set(s.start_time_seconds);
        if let Some(n) = s.open_fds {
            gauge(&self.open_fds, n);
        }
        if let Some(n) = s.max_fds {
            gauge(&self.max_fds, n);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn proc_files_are_read_as_the_process_collector_reads_them() {
        let stat = "4242 (ocisource (x) y) S 1 4242 4242 0 -1 4194560 2817 0 0 0 150 50 0 0 20 0 \
                    12 0 123400 987654321 4321 18446744073709551615 1 1 0 0 0 0 0 0 0 0 0 0 17 \
                    1 0 0 0 0 0";
        let status = "Name:\tocisource\nVmPeak:\t  99999 kB\nVmRSS:\t   17000 kB\nThreads:\t12\n";
        let proc_stat = "cpu  1 2 3\nbtime 1764000000\nprocesses 5\n";
        let s = parse(stat, status, proc_stat).unwrap();
        assert_eq!(s.cpu_seconds, 2.0);
        assert_eq!(s.resident_bytes, 17000 * 1024);
        assert_eq!(s.virtual_bytes, 987_654_321);
        assert_eq!(s.start_time_seconds, 1_764_000_000.0 + 1234.0);
        assert!(parse("garbage", status, proc_stat).is_none());
        assert!(parse(stat, "Name: x\n", proc_stat).is_none());
        let limits = "Limit                     Soft Limit           Hard Limit           Units\n\
                      Max cpu time              unlimited            unlimited            seconds\n\
                      Max open files            1048576              1048576              files\n";
        assert_eq!(parse_max_fds(limits), Some(1_048_576));
    }

    #[test]
    fn this_process_is_measured() {
        let s = read().unwrap();
        assert!(s.resident_bytes > 1 << 20, "{s:?}");
        assert!(s.open_fds.unwrap() > 0);
        assert!(s.max_fds.unwrap() > 0);
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs_f64();
        assert!(s.start_time_seconds <= now + 1.0 && s.start_time_seconds > now - 86400.0 * 365.0);
    }
}
