//! A hand-driven line connection, for what real clients will not do: hostile input,
//! connections from chosen loopback addresses, sessions kept open across admin changes.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{IpAddr, SocketAddr, TcpStream};
use std::time::Duration;

pub struct Raw {
    reader: BufReader<TcpStream>,
    writer: TcpStream,
}

impl Raw {
    pub fn connect(to: SocketAddr) -> Raw {
        Raw::from_stream(TcpStream::connect(to).unwrap())
    }

    /// From a chosen source address (any 127.0.0.0/8 address works on loopback), so a
    /// test can be several clients.
    pub fn connect_from(source: IpAddr, to: SocketAddr) -> Raw {
        Raw::from_stream(connect_from(source, to).expect("connect from a loopback address"))
    }

    fn from_stream(stream: TcpStream) -> Raw {
        stream
            .set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        Raw {
            reader: BufReader::new(stream.try_clone().unwrap()),
            writer: stream,
        }
    }

    /// The next line, with its line end; empty when the server closed.
    pub fn line(&mut self) -> String {
        let mut line = String::new();
        let _ = self.reader.read_line(&mut line);
        line
    }

    pub fn send(&mut self, bytes: &[u8]) {
        let _ = self.writer.write_all(bytes);
    }

    /// Sends a command line and returns the first line of the answer.
    pub fn command(&mut self, command: &str) -> String {
        self.send(format!("{command}\r\n").as_bytes());
        self.line()
    }

    /// An SMTP reply: its lines up to the last (`250 ` rather than `250-`).
    pub fn smtp_reply(&mut self) -> String {
        let mut reply = String::new();
        loop {
            let line = self.line();
            reply.push_str(&line);
            if line.len() < 4 || line.as_bytes()[3] == b' ' {
                return reply;
            }
        }
    }

    /// Lines up to and including the one tagged `tag` (IMAP); stops early, with what it
    /// has, when the server closes or goes quiet for the read timeout.
    pub fn until_tagged(&mut self, tag: &str) -> Vec<String> {
        let mut lines = Vec::new();
        loop {
            let line = self.line();
            if line.is_empty() {
                return lines;
            }
            let done = line.starts_with(&format!("{tag} "));
            lines.push(line);
            if done {
                return lines;
            }
        }
    }

    /// Reads whatever bytes come next (lines or not); 0 when the server closed.
    pub fn read_bytes(&mut self, buffer: &mut [u8]) -> usize {
        self.reader.read(buffer).unwrap_or(0)
    }

    /// [`Raw::read_bytes`] with the error (a timeout, a reset) told apart from the end.
    pub fn read_some(&mut self, buffer: &mut [u8]) -> std::io::Result<usize> {
        self.reader.read(buffer)
    }

    pub fn set_read_timeout(&mut self, timeout: Duration) {
        self.writer.set_read_timeout(Some(timeout)).unwrap();
    }

    /// Sends all of `bytes`; false when the server closed or reset the connection.
    pub fn try_send(&mut self, bytes: &[u8]) -> bool {
        self.writer.write_all(bytes).is_ok()
    }

    /// Whether the server closed the connection (reads what is left).
    pub fn closed(&mut self) -> bool {
        let mut rest = Vec::new();
        self.reader.read_to_end(&mut rest).is_ok()
    }
}

/// A TCP connection bound to `source` first.
pub fn connect_from(source: IpAddr, to: SocketAddr) -> Option<TcpStream> {
    use nix::sys::socket::{AddressFamily, SockFlag, SockType, SockaddrIn, bind, connect, socket};
    use std::os::fd::AsRawFd;
    let (IpAddr::V4(source), SocketAddr::V4(to)) = (source, to) else {
        panic!("IPv4 only");
    };
    let socket = socket(
        AddressFamily::Inet,
        SockType::Stream,
        SockFlag::SOCK_CLOEXEC,
        None,
    )
    .ok()?;
    bind(
        socket.as_raw_fd(),
        &SockaddrIn::from(std::net::SocketAddrV4::new(source, 0)),
    )
    .ok()?;
    connect(socket.as_raw_fd(), &SockaddrIn::from(to)).ok()?;
    Some(TcpStream::from(socket))
}
