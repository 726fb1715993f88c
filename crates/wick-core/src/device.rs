//! Choosing the compute device.

use candle_core::Device;
use serde::{Deserialize, Serialize};

use crate::error::{Result, WickError};

/// The device the user asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DeviceChoice {
    /// CUDA if built with `cuda` and a GPU answers, else Metal likewise, else CPU.
    #[default]
    Auto,
    Cpu,
    Cuda(usize),
    Metal,
}

impl std::str::FromStr for DeviceChoice {
    type Err = WickError;

    fn from_str(s: &str) -> Result<Self> {
        match s.to_ascii_lowercase().as_str() {
            "auto" => Ok(Self::Auto),
            "cpu" => Ok(Self::Cpu),
            "metal" => Ok(Self::Metal),
            "cuda" | "gpu" => Ok(Self::Cuda(0)),
            other => match other.strip_prefix("cuda:").and_then(|i| i.parse().ok()) {
                Some(i) => Ok(Self::Cuda(i)),
                None => Err(WickError::Device(format!(
                    "unknown device {s:?}; use auto, cpu, cuda, cuda:N or metal"
                ))),
            },
        }
    }
}

impl DeviceChoice {
    /// The concrete device this choice opens here (never `Auto`).
    pub fn resolve(self) -> Result<DeviceChoice> {
        Ok(match (self, self.open()?) {
            (Self::Cuda(i), Device::Cuda(_)) => Self::Cuda(i),
            (_, Device::Cuda(_)) => Self::Cuda(0),
            (_, Device::Metal(_)) => Self::Metal,
            (_, Device::Cpu) => Self::Cpu,
        })
    }

    /// Opens the device. A GPU counts as present only when it can really be opened.
    pub fn open(self) -> Result<Device> {
        match self {
            Self::Cpu => Ok(Device::Cpu),
            Self::Cuda(i) => open_cuda(i),
            Self::Metal => open_metal(),
            Self::Auto => Ok(open_cuda(0)
                .or_else(|_| open_metal())
                .unwrap_or(Device::Cpu)),
        }
    }
}

/// Fixes candle's CPU thread count for the life of the process; call it first thing in `main`, before
/// any other thread starts (it sets an environment variable). A count the user chose with
/// `RAYON_NUM_THREADS` is left alone.
///
/// Why: candle 0.11 works its default thread count out again on every matrix multiply, and on Linux
/// machines without a preferred-core list that means reading and parsing `/proc/cpuinfo` each time
/// (`strace -f -e openat` counted 26,000 opens during `wick bench --serve --duration-secs 1`, six
/// one-second load cells; `perf` put the kernel's cpuinfo formatting at about 15% of the CPU time). candle reads `RAYON_NUM_THREADS` first, so setting it to the same number once turns
/// that into a variable lookup.
pub fn fix_cpu_thread_count() {
    if std::env::var_os("RAYON_NUM_THREADS").is_none() {
        std::env::set_var(
            "RAYON_NUM_THREADS",
            candle_core::utils::get_num_threads().to_string(),
        );
    }
}

/// Makes glibc keep freed memory for reuse instead of handing large blocks back to the kernel; call
/// it first thing in `main`, next to [`fix_cpu_thread_count`].
///
/// Why: glibc serves allocations above 32 MB with a fresh `mmap` and returns them with `munmap` on
/// free, so every training step's large activations (a ResNet-18 stem at batch 16 is 51 MB) arrive
/// as new pages the kernel must fault in and zero. Raising the mmap and trim thresholds to 1 GB
/// keeps them in the heap: ResNet-18 features at 224×224 went from 44 to 53 images/s (the
/// `wick bench` row; one run each with the thresholds set through glibc's environment variables).
/// The cost is that the process keeps its peak heap until exit rather than shrinking after a run.
pub fn keep_freed_memory_for_reuse() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        const ONE_GB: libc::c_int = 1 << 30;
        // SAFETY: mallopt only changes two of glibc's tuning parameters; it is called before
        // other threads allocate (first thing in main), and a refused value just leaves the default.
        unsafe {
            libc::mallopt(libc::M_MMAP_THRESHOLD, ONE_GB);
            libc::mallopt(libc::M_TRIM_THRESHOLD, ONE_GB);
        }
    }
}

fn open_cuda(i: usize) -> Result<Device> {
    if !cfg!(feature = "cuda") {
        return Err(WickError::Device("this build of Wick has no CUDA support; rebuild with `--features cuda`, or use --device cpu".into()));
    }
    Device::new_cuda(i).map_err(|e| {
        WickError::Device(format!(
            "CUDA device {i} could not be opened ({e}); use --device cpu"
        ))
    })
}

fn open_metal() -> Result<Device> {
    if !cfg!(feature = "metal") {
        return Err(WickError::Device("this build of Wick has no Metal support; rebuild with `--features metal`, or use --device cpu".into()));
    }
    Device::new_metal(0).map_err(|e| {
        WickError::Device(format!(
            "the Metal device could not be opened ({e}); use --device cpu"
        ))
    })
}

/// A short human name for a device.
pub fn describe(device: &Device) -> String {
    match device {
        Device::Cpu => format!("CPU ({} threads)", candle_core::utils::get_num_threads()),
        Device::Cuda(_) => "CUDA GPU".into(),
        Device::Metal(_) => "Metal GPU".into(),
    }
}

/// Devices this build can use right now, for pickers: always CPU, plus each GPU that opens.
pub fn available_devices() -> Vec<DeviceChoice> {
    let mut out = vec![DeviceChoice::Cpu];
    if cfg!(feature = "cuda") {
        for i in 0..16 {
            if open_cuda(i).is_err() {
                break;
            }
            out.push(DeviceChoice::Cuda(i));
        }
    }
    if open_metal().is_ok() {
        out.push(DeviceChoice::Metal);
    }
    out
}
