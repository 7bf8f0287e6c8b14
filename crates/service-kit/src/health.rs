//! `<service> --health-check`: the container's own health probe. A distroless image has no
//! curl or shell, so the binary checks itself: GET /health on its own port, exit 0 or 1.

use std::{net::SocketAddr, process::ExitCode, time::Duration};

use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::TcpStream,
};

/// Whether the process was started as `<binary> --health-check`.
pub fn requested() -> bool {
    std::env::args().nth(1).as_deref() == Some("--health-check")
}

/// Asks the service listening at `addr` (0.0.0.0 means this host) for `/health`, within 2 s.
pub async fn check(addr: SocketAddr) -> ExitCode {
    let mut target = addr;
    if target.ip().is_unspecified() {
        target.set_ip(std::net::Ipv4Addr::LOCALHOST.into());
    }
    match tokio::time::timeout(Duration::from_secs(2), probe(target)).await {
        Ok(Ok(true)) => ExitCode::SUCCESS,
        Ok(Ok(false)) => {
            eprintln!("unhealthy: {target}/health did not answer 200");
            ExitCode::FAILURE
        }
        Ok(Err(e)) => {
            eprintln!("unhealthy: {target}: {e}");
            ExitCode::FAILURE
        }
        Err(_) => {
            eprintln!("unhealthy: {target}/health did not answer within 2 s");
            ExitCode::FAILURE
        }
    }
}

async fn probe(addr: SocketAddr) -> std::io::Result<bool> {
    let mut stream = TcpStream::connect(addr).await?;
    stream
        .write_all(b"GET /health HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
        .await?;
    let mut head = [0u8; 12];
    stream.read_exact(&mut head).await?;
    Ok(head.starts_with(b"HTTP/1.1 200"))
}
