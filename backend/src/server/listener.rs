//! The listening socket and the process's descriptor budget: a backlog that takes bursts of
//! connects, and the soft open-file limit raised to the hard one.

use std::net::SocketAddr;

use socket2::{Domain, Protocol, Socket, Type};

/// The largest default backlog: more only queues connections that would wait too long anyway.
pub const MAX_DEFAULT_BACKLOG: u32 = 4096;

/// Backlog when `net.core.somaxconn` cannot be read (the Linux default since 5.4).
const FALLBACK_BACKLOG: u32 = 1024;

/// The default listen backlog: `net.core.somaxconn` (the kernel caps any larger request to it),
/// at most [`MAX_DEFAULT_BACKLOG`]. tokio's `TcpListener::bind` asks for 128, which a burst of
/// a few hundred connects overflows: the dropped SYNs are retried only after a second.
pub fn default_backlog() -> u32 {
    std::fs::read_to_string("/proc/sys/net/core/somaxconn")
        .ok()
        .and_then(|raw| raw.trim().parse::<u32>().ok())
        .filter(|n| *n > 0)
        .unwrap_or(FALLBACK_BACKLOG)
        .min(MAX_DEFAULT_BACKLOG)
}

/// Binds `addr` and listens with `backlog`, for tokio.
pub fn bind(addr: SocketAddr, backlog: u32) -> std::io::Result<tokio::net::TcpListener> {
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
    // Restarting must not wait for the previous process's TIME_WAIT sockets to expire.
    socket.set_reuse_address(true)?;
    socket.set_nonblocking(true)?;
    socket.bind(&addr.into())?;
    socket.listen(i32::try_from(backlog).unwrap_or(i32::MAX))?;
    tokio::net::TcpListener::from_std(socket.into())
}

/// The highest soft open-file limit asked for: Linux's default `fs.nr_open`.
#[cfg(unix)]
const NOFILE_CEILING: u64 = 1 << 20;

/// Raises the soft open-file limit to the hard limit, as Go's runtime does at startup: the soft
/// limit (1,024 under systemd and Docker defaults) is a compatibility setting for `select(2)`,
/// which this process does not use. Returns the limit now in force, if it can be read.
#[cfg(unix)]
pub fn raise_nofile_limit() -> Option<u64> {
    use nix::sys::resource::{Resource, getrlimit, setrlimit};
    let (soft, hard) = getrlimit(Resource::RLIMIT_NOFILE).ok()?;
    // An unlimited hard limit cannot be the soft one (the kernel caps it at fs.nr_open).
    let target = hard.min(NOFILE_CEILING);
    if soft < target && setrlimit(Resource::RLIMIT_NOFILE, target, hard).is_ok() {
        return Some(target);
    }
    Some(soft)
}

/// Raises the soft open-file limit where the platform has one.
#[cfg(not(unix))]
pub fn raise_nofile_limit() -> Option<u64> {
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_backlog_follows_somaxconn_within_the_cap() {
        let backlog = default_backlog();
        assert!((1..=MAX_DEFAULT_BACKLOG).contains(&backlog));
        if let Ok(raw) = std::fs::read_to_string("/proc/sys/net/core/somaxconn") {
            let somaxconn: u32 = raw.trim().parse().unwrap();
            assert_eq!(backlog, somaxconn.min(MAX_DEFAULT_BACKLOG));
        }
    }
}
