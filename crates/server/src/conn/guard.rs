//! The cross-protocol guard: recognising an HTTP request sent to a memcached or RESP port.
//!
//! A web page can make a browser POST to `http://127.0.0.1:6379/` (or any address the
//! browser reaches); the body is attacker-chosen, and a line-based protocol would run each
//! of its lines as a command ("cross-protocol scripting"). Redis defends by treating `POST`
//! and `Host:` as commands that log "Possible SECURITY ATTACK detected" and close the
//! connection; sessiond does the same on both listeners, and also recognises any HTTP
//! request line (`GET / HTTP/1.1`), so that a request whose body would follow is cut off
//! at its first line.
//!
//! Where it is applied, and why it is cheap: RESP checks the name of every command (one or
//! two case-insensitive comparisons, as Redis does). memcached text checks only the first
//! line of a connection, and only if it starts with an upper-case letter (memcached's
//! commands are lower-case): later lines cannot be told from data blocks without the
//! decoder's state, and an attack's request line always comes first.
//!
//! What this module deliberately does not do: parse HTTP, or answer it (the connection is
//! closed without a reply, as Redis does).

use bytes::Bytes;

/// HTTP methods, as a request line spells them (they are case-sensitive).
const METHODS: [&[u8]; 9] = [
    b"GET", b"POST", b"PUT", b"DELETE", b"HEAD", b"OPTIONS", b"PATCH", b"CONNECT", b"TRACE",
];

/// Whether `line` (without its line ending) is an HTTP request line (`<METHOD> <target>
/// HTTP/<version>`), or starts like a POST or a `Host:` header.
pub(crate) fn is_http_line(line: &[u8]) -> bool {
    let starts = |prefix: &[u8]| {
        line.len() >= prefix.len() && line[..prefix.len()].eq_ignore_ascii_case(prefix)
    };
    if starts(b"post ") || starts(b"host:") {
        return true;
    }
    let mut words = line.split(|&b| b == b' ');
    match (words.next(), words.next(), words.next(), words.next()) {
        (Some(method), Some(target), Some(version), None) => {
            METHODS.contains(&method) && !target.is_empty() && version.starts_with(b"HTTP/")
        }
        _ => false,
    }
}

/// Whether a RESP command is Redis's tell of an HTTP request: named `POST` or `Host:` (any
/// case), or three arguments that form an HTTP request line (an inline `GET / HTTP/1.1`;
/// no Redis command has that shape, since `GET` takes one argument).
pub(crate) fn is_http_command(args: &[Bytes]) -> bool {
    let Some(name) = args.first() else {
        return false;
    };
    if name.eq_ignore_ascii_case(b"post") || name.eq_ignore_ascii_case(b"host:") {
        return true;
    }
    args.len() == 3 && METHODS.contains(&&name[..]) && args[2].starts_with(b"HTTP/")
}

/// Logs a detected attempt, in Redis's words.
pub(crate) fn log_attack(listener: &str) {
    tracing::warn!(
        listener,
        "Possible SECURITY ATTACK detected. It looks like somebody is sending POST or Host: \
         commands to sessiond. This is likely due to an attacker attempting to use Cross \
         Protocol Scripting to compromise your sessiond instance. Connection aborted."
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn http_lines() {
        for line in [
            &b"POST / HTTP/1.1"[..],
            b"POST /x",
            b"post /",
            b"Host: 127.0.0.1:11211",
            b"HOST:x",
            b"GET / HTTP/1.1",
            b"PUT /a/b?c=d HTTP/1.0",
            b"OPTIONS * HTTP/1.1",
        ] {
            assert!(is_http_line(line), "{}", String::from_utf8_lossy(line));
        }
        for line in [
            &b"get / HTTP/1.1"[..],
            b"GET /",
            b"GET  HTTP/1.1",
            b"GET / HTTP/1.1 extra",
            b"set POST 0 0 5",
            b"POSTMAN",
            b"Hostname",
            b"",
            b"\x80\x01",
        ] {
            assert!(!is_http_line(line), "{}", String::from_utf8_lossy(line));
        }
    }

    #[test]
    fn http_commands() {
        let args = |words: &[&str]| -> Vec<Bytes> {
            words
                .iter()
                .map(|w| Bytes::copy_from_slice(w.as_bytes()))
                .collect()
        };
        assert!(is_http_command(&args(&["POST", "/", "HTTP/1.1"])));
        assert!(is_http_command(&args(&["post"])));
        assert!(is_http_command(&args(&["Host:", "localhost"])));
        assert!(is_http_command(&args(&["GET", "/", "HTTP/1.1"])));
        assert!(!is_http_command(&args(&["GET", "post"])));
        assert!(!is_http_command(&args(&["SET", "/", "HTTP/1.1"])));
        assert!(!is_http_command(&args(&["get", "/", "HTTP/1.1"])));
        assert!(!is_http_command(&args(&["hostname"])));
        assert!(!is_http_command(&[]));
    }
}
